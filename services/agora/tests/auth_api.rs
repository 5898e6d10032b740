//! The auth part of the API contract, driven through the gateway as a REST client
//! would, against a real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod support;

use agora_common::auth::AccessClaims;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use support::*;

#[actix_web::test]
async fn register_login_me_and_jwks() {
    let p = start().await;
    let reply = post_json(
        &p.url("/api/v1/auth/register"),
        None,
        json!({"username": "Alice.B_1", "email": "Alice@Example.ORG", "password": "correct horse"}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert!(reply.header("x-request-id").is_some());
    let body = &reply.body;
    assert_eq!(body["user"]["username"], "alice.b_1");
    assert_eq!(body["user"]["email"], "alice@example.org");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(
        body["user"]["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let id = body["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        uuid::Uuid::parse_str(&id).map(|u| u.get_version_num()).ok(),
        Some(7)
    );

    // Login by username or email, any case.
    for login in [
        "alice.b_1",
        "ALICE.B_1",
        "alice@example.org",
        "ALICE@example.org",
    ] {
        let r = post_json(
            &p.url("/api/v1/auth/login"),
            None,
            json!({"login": login, "password": "correct horse"}),
        )
        .await;
        assert_eq!(r.status, 200, "{login}: {}", r.body);
        assert_eq!(r.body["user"]["id"], id.as_str());
        assert!(r.body["refresh_token"].is_string());
    }

    let access = token(body, "access_token");
    let me = get(&p.url("/api/v1/auth/me"), Some(&access)).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body, body["user"]);

    // The token's kid is published at both JWKS addresses; no private parts leak.
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(access.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    for path in ["/api/v1/auth/jwks", "/.well-known/jwks.json"] {
        let jwks = get(&p.url(path), None).await;
        assert_eq!(jwks.status, 200);
        let keys = jwks.body["keys"].as_array().cloned().unwrap();
        assert!(
            keys.iter()
                .any(|k| k["kid"] == header["kid"] && k["kty"] == "OKP"),
            "{}",
            jwks.body
        );
        assert!(keys.iter().all(|k| k.get("d").is_none()));
    }

    // Forward-auth.
    let verify = get(&p.url("/api/v1/auth/verify"), Some(&access)).await;
    assert_eq!(verify.status, 200);
    assert_eq!(verify.header("x-user-id"), Some(id.as_str()));
    assert_eq!(verify.header("x-user-name"), Some("alice.b_1"));
    get(&p.url("/api/v1/auth/verify"), None)
        .await
        .assert_problem(401);
    get(&p.url("/api/v1/auth/verify"), Some("garbage"))
        .await
        .assert_problem(401);

    // As an ingress middleware asks it, straight at the auth service: a public photo's
    // bytes pass without a token (and without identity), anything else does not.
    let verify_url = p.service_url("auth", "/api/v1/auth/verify");
    let content = "/api/v1/photos/0192f3a4-0000-7000-8000-000000000001/content?sig=x";
    for (method_header, uri_header) in [
        ("x-forwarded-method", "x-forwarded-uri"), // Traefik
        ("x-original-method", "x-original-uri"),   // ingress-nginx
    ] {
        for token in [None, Some("garbage")] {
            let r = send(
                "GET",
                &verify_url,
                token,
                &[(method_header, "GET"), (uri_header, content)],
                None,
            )
            .await;
            assert_eq!(r.status, 200, "{method_header} {token:?}: {}", r.body);
            assert_eq!(r.header("x-user-id"), None);
        }
        // A valid token on a public route still names the caller.
        let r = send(
            "GET",
            &verify_url,
            Some(&access),
            &[(method_header, "HEAD"), (uri_header, content)],
            None,
        )
        .await;
        assert_eq!(r.header("x-user-id"), Some(id.as_str()));
        // Writes to a photo, and other services' paths, are not public.
        for (method, uri) in [
            ("DELETE", content),
            ("GET", "/api/v1/photos/0192f3a4-0000-7000-8000-000000000001"),
            ("GET", "/api/v1/users/me"),
        ] {
            send(
                "GET",
                &verify_url,
                None,
                &[(method_header, method), (uri_header, uri)],
                None,
            )
            .await
            .assert_problem(401);
        }
    }
    // As Envoy Gateway's external authorization asks it: the original method, and the
    // original path after `/verify`.
    let envoy = |path: &str| p.service_url("auth", &format!("/api/v1/auth/verify{path}"));
    let r = send("GET", &envoy(content), None, &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-user-id"), None);
    send("POST", &envoy("/api/v1/posts"), None, &[], None)
        .await
        .assert_problem(401);
    let r = send("POST", &envoy("/api/v1/posts"), Some(&access), &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-user-name"), Some("alice.b_1"));
    send("DELETE", &envoy(content), None, &[], None)
        .await
        .assert_problem(401);
}

#[actix_web::test]
async fn register_rejects_bad_input_with_problems() {
    let p = start().await;
    let url = p.url("/api/v1/auth/register");

    let r = post_json(
        &url,
        None,
        json!({"username": "x", "email": "not-an-email", "password": "short"}),
    )
    .await;
    r.assert_problem(400);
    assert_eq!(r.error_fields(), ["username", "email", "password"]);

    let r = post_json(
        &url,
        None,
        json!({"username": "bad name!", "email": "a@b.org", "password": "longenough"}),
    )
    .await;
    r.assert_problem(400);
    assert_eq!(r.error_fields(), ["username"]);
    // Punctuation alone names nobody.
    for name in ["...", "___", "._."] {
        let r = post_json(
            &url,
            None,
            json!({"username": name, "email": "dots@b.org", "password": "longenough"}),
        )
        .await;
        r.assert_problem(400);
        assert_eq!(r.error_fields(), ["username"], "{name}");
    }

    let r = post_json(
        &url,
        None,
        json!({"username": "bob", "email": "b@b.org", "password": "x".repeat(129)}),
    )
    .await;
    assert_eq!(r.error_fields(), ["password"]);

    let r = post_json(
        &url,
        None,
        json!({"username": "bob", "email": "b@b.org", "password": "longenough", "admin": true}),
    )
    .await;
    r.assert_problem(400);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("unknown field")),
        "{}",
        r.body
    );

    let r = post_json(&url, None, json!({"username": "bob", "email": "b@b.org"})).await;
    r.assert_problem(400);

    let r = post_raw(&url, "application/json", b"{\"username\": ".to_vec()).await;
    r.assert_problem(400);
    let r = post_raw(&url, "application/json", b"[1,2]".to_vec()).await;
    r.assert_problem(400);
    let r = post_raw(&url, "text/plain", b"{}".to_vec()).await;
    r.assert_problem(415);
    let r = post_raw(&url, "application/json", vec![b' '; 100 * 1024]).await;
    r.assert_problem(413);
    // Wrong method on a known path.
    get(&url, None).await.assert_problem(401);

    // Nothing was written by any of those: the name is still free.
    register(&p, "bob").await;
}

#[actix_web::test]
async fn duplicates_conflict() {
    let p = start().await;
    register(&p, "carol").await;
    let url = p.url("/api/v1/auth/register");
    let r = post_json(
        &url,
        None,
        json!({"username": "CAROL", "email": "other@example.org", "password": "longenough"}),
    )
    .await;
    r.assert_problem(409);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("username"))
    );
    // A client tells the two conflicts apart by type, not by parsing English.
    assert_eq!(r.body["type"], "https://agora.dev/problems/username-taken");
    let r = post_json(
        &url,
        None,
        json!({"username": "carol2", "email": "Carol@Example.org", "password": "longenough"}),
    )
    .await;
    r.assert_problem(409);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("email"))
    );
    assert_eq!(r.body["type"], "https://agora.dev/problems/email-taken");
}

#[actix_web::test]
async fn fifty_concurrent_registrations_of_one_name_yield_one_account() {
    let p = start().await;
    let url = p.url("/api/v1/auth/register");
    let attempts = (0..50).map(|i| {
        let url = url.clone();
        async move {
            post_json(&url, None, json!({"username": "racer", "email": format!("racer{i}@example.org"), "password": "longenough"}))
                .await
                .status
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        49,
        "{statuses:?}"
    );
}

#[actix_web::test]
async fn wrong_credentials_get_one_generic_401() {
    let p = start().await;
    register(&p, "dave").await;
    let url = p.url("/api/v1/auth/login");
    let wrong = post_json(
        &url,
        None,
        json!({"login": "dave", "password": "password-wrong"}),
    )
    .await;
    wrong.assert_problem(401);
    let unknown = post_json(
        &url,
        None,
        json!({"login": "nobody", "password": "password-wrong"}),
    )
    .await;
    unknown.assert_problem(401);
    assert_eq!(wrong.body["detail"], unknown.body["detail"]);
    let r = post_json(&url, None, json!({"login": "", "password": ""})).await;
    r.assert_problem(400);
    assert_eq!(r.error_fields(), ["login", "password"]);
    post_json(
        &url,
        None,
        json!({"login": "dave", "password": "x", "remember": true}),
    )
    .await
    .assert_problem(400);
}

fn signing_key(p: &TestPlatform) -> jsonwebtoken::EncodingKey {
    let pem = std::fs::read(p.state_dir.join("keys/auth-signing-key.pem")).unwrap();
    jsonwebtoken::EncodingKey::from_ed_pem(&pem).unwrap_or_else(|e| panic!("key: {e}"))
}

fn forge(p: &TestPlatform, kid: &str, claims: &AccessClaims) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &signing_key(p)).unwrap()
}

#[actix_web::test]
async fn tampered_none_and_expired_tokens_are_refused() {
    let p = start().await;
    let body = register(&p, "erin").await;
    let access = token(&body, "access_token");
    let me = p.url("/api/v1/auth/me");
    assert_eq!(get(&me, Some(&access)).await.status, 200);

    let parts: Vec<&str> = access.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap().to_owned();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();

    // Payload changed (another name), signature kept.
    claims["name"] = json!("mallory");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    get(&me, Some(&tampered)).await.assert_problem(401);

    // alg=none, no signature.
    let none_header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    let none = format!("{none_header}.{}.", parts[1]);
    get(&me, Some(&none)).await.assert_problem(401);
    // HS256 "signed" with the public key, the classic confusion attack.
    let hs_header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "typ": "JWT", "kid": kid}).to_string());
    get(&me, Some(&format!("{hs_header}.{}.{}", parts[1], parts[2])))
        .await
        .assert_problem(401);

    // Validly signed but expired (beyond the 30 s leeway), wrong audience, wrong issuer.
    let now = jsonwebtoken::get_current_timestamp();
    let base: AccessClaims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap())
        .unwrap_or_else(|e| panic!("claims: {e}"));
    let expired = AccessClaims {
        iat: now - 3600,
        exp: now - 120,
        ..base.clone()
    };
    get(&me, Some(&forge(&p, &kid, &expired)))
        .await
        .assert_problem(401);
    let wrong_aud = AccessClaims {
        aud: "someone-else".into(),
        ..base.clone()
    };
    get(&me, Some(&forge(&p, &kid, &wrong_aud)))
        .await
        .assert_problem(401);
    let wrong_iss = AccessClaims {
        iss: "evil".into(),
        ..base.clone()
    };
    get(&me, Some(&forge(&p, &kid, &wrong_iss)))
        .await
        .assert_problem(401);
    // Unknown kid.
    get(&me, Some(&forge(&p, "no-such-kid", &base)))
        .await
        .assert_problem(401);
    // The genuine one still works, and a re-signed copy of it does too (control).
    assert_eq!(get(&me, Some(&forge(&p, &kid, &base))).await.status, 200);
    // Not a bearer scheme.
    let basic = send(
        "GET",
        &me,
        None,
        &[("authorization", "Basic ZXJpbjpwdw==")],
        None,
    )
    .await;
    basic.assert_problem(401);
}

#[actix_web::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let p = start().await;
    let first = register(&p, "frank").await;
    let url = p.url("/api/v1/auth/refresh");
    let r1 = token(&first, "refresh_token");

    let second = post_json(&url, None, json!({"refresh_token": r1})).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let r2 = token(&second.body, "refresh_token");
    assert_ne!(r1, r2);
    assert_eq!(second.body["user"]["username"], "frank");
    assert_eq!(me_status(&p, &second.body).await, 200);

    // A second session (another login) is a separate family.
    let other = post_json(
        &p.url("/api/v1/auth/login"),
        None,
        json!({"login": "frank", "password": "password-frank"}),
    )
    .await;
    let other_refresh = token(&other.body, "refresh_token");

    // Re-presenting r1 while r2 is unused (a lost response, a second tab): within the
    // grace period it is answered with the same successor (and a fresh access token),
    // so a replay never starts a second line of tokens.
    let again = post_json(&url, None, json!({"refresh_token": r1})).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(token(&again.body, "refresh_token"), r2);
    assert_eq!(me_status(&p, &again.body).await, 200);

    // Once the successor has been used, re-presenting r1 is reuse: 401, and the whole
    // family dies with it.
    let r3 = post_json(&url, None, json!({"refresh_token": r2})).await;
    assert_eq!(r3.status, 200, "{}", r3.body);
    let r3 = token(&r3.body, "refresh_token");
    let reuse = post_json(&url, None, json!({"refresh_token": r1})).await;
    reuse.assert_problem(401);
    assert_eq!(
        reuse.body["type"],
        "https://agora.dev/problems/refresh-token-reused"
    );
    for live in [&r2, &r3] {
        post_json(&url, None, json!({"refresh_token": live}))
            .await
            .assert_problem(401);
    }
    // The other session is untouched.
    assert_eq!(
        post_json(&url, None, json!({"refresh_token": other_refresh}))
            .await
            .status,
        200
    );

    post_json(&url, None, json!({"refresh_token": "made-up"}))
        .await
        .assert_problem(401);
    post_json(&url, None, json!({"refresh_token": ""}))
        .await
        .assert_problem(400);
    post_json(&url, None, json!({"token": "x"}))
        .await
        .assert_problem(400);
}

#[actix_web::test]
async fn reuse_after_the_grace_period_revokes_the_family() {
    let mut config = config();
    config.refresh_reuse_grace_secs = 1;
    let p = start_with(config).await;
    let first = register(&p, "gina").await;
    let url = p.url("/api/v1/auth/refresh");
    let r1 = token(&first, "refresh_token");
    let second = post_json(&url, None, json!({"refresh_token": r1})).await;
    assert_eq!(second.status, 200);
    let r2 = token(&second.body, "refresh_token");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    post_json(&url, None, json!({"refresh_token": r1}))
        .await
        .assert_problem(401);
    // Unused as it was, the successor went with the family.
    post_json(&url, None, json!({"refresh_token": r2}))
        .await
        .assert_problem(401);
}

#[actix_web::test]
async fn ten_concurrent_refreshes_of_one_token_all_succeed_on_one_line() {
    let p = start().await;
    let first = register(&p, "hank").await;
    let url = p.url("/api/v1/auth/refresh");
    let r1 = token(&first, "refresh_token");
    let replies = futures_util::future::join_all(
        (0..10).map(|_| post_json(&url, None, json!({"refresh_token": r1}))),
    )
    .await;
    for reply in &replies {
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    // Ten tabs, one successor: the session continues as one line.
    let successors: std::collections::BTreeSet<String> = replies
        .iter()
        .map(|r| token(&r.body, "refresh_token"))
        .collect();
    assert_eq!(successors.len(), 1, "{successors:?}");
    let r2 = successors.into_iter().next().unwrap();
    let next = post_json(&url, None, json!({"refresh_token": r2})).await;
    assert_eq!(next.status, 200, "{}", next.body);
    assert_eq!(me_status(&p, &next.body).await, 200);
}

#[actix_web::test]
async fn a_replay_within_the_grace_period_cannot_keep_a_second_line_alive() {
    let mut config = config();
    config.refresh_reuse_grace_secs = 2;
    let p = start_with(config).await;
    let first = register(&p, "ivy").await;
    let url = p.url("/api/v1/auth/refresh");
    let r0 = token(&first, "refresh_token");
    let owner = post_json(&url, None, json!({"refresh_token": r0})).await;
    let r1 = token(&owner.body, "refresh_token");
    // The thief replays the just-rotated token within the window: the same successor,
    // not a line of their own.
    let thief = post_json(&url, None, json!({"refresh_token": r0})).await;
    assert_eq!(thief.status, 200, "{}", thief.body);
    assert_eq!(token(&thief.body, "refresh_token"), r1);
    // The owner goes on; the thief's copy of r1 is then spent, and presenting it
    // after the window is reuse, which ends the session (the thief is caught).
    let r2 = token(
        &post_json(&url, None, json!({"refresh_token": r1}))
            .await
            .body,
        "refresh_token",
    );
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    post_json(&url, None, json!({"refresh_token": r1}))
        .await
        .assert_problem(401);
    post_json(&url, None, json!({"refresh_token": r2}))
        .await
        .assert_problem(401);
    post_json(&url, None, json!({"refresh_token": r0}))
        .await
        .assert_problem(401);
}

#[actix_web::test]
async fn logout_revokes_the_session() {
    let p = start().await;
    let session = register(&p, "grace").await;
    let access = token(&session, "access_token");
    let refresh = token(&session, "refresh_token");
    let logout = p.url("/api/v1/auth/logout");

    post_json(&logout, None, json!({"refresh_token": refresh}))
        .await
        .assert_problem(401);
    // Someone else cannot end grace's session.
    let heidi = register(&p, "heidi").await;
    let r = post_json(
        &logout,
        Some(&token(&heidi, "access_token")),
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        post_json(
            &p.url("/api/v1/auth/refresh"),
            None,
            json!({"refresh_token": refresh})
        )
        .await
        .status,
        200
    );

    // Grace logs out her (rotated) session.
    let grace = post_json(
        &p.url("/api/v1/auth/login"),
        None,
        json!({"login": "grace", "password": "password-grace"}),
    )
    .await;
    let r = token(&grace.body, "refresh_token");
    let out = post_json(&logout, Some(&access), json!({"refresh_token": r})).await;
    assert_eq!(out.status, 204, "{}", out.body);
    post_json(
        &p.url("/api/v1/auth/refresh"),
        None,
        json!({"refresh_token": r}),
    )
    .await
    .assert_problem(401);
}

#[actix_web::test]
async fn password_change_revokes_every_refresh_token() {
    let p = start().await;
    let s1 = register(&p, "ivan").await;
    let s2 = post_json(
        &p.url("/api/v1/auth/login"),
        None,
        json!({"login": "ivan", "password": "password-ivan"}),
    )
    .await;
    let access = token(&s1, "access_token");
    let url = p.url("/api/v1/auth/password");
    let put = |body: Value, token: Option<String>| {
        let url = url.clone();
        async move {
            send(
                "PUT",
                &url,
                token.as_deref(),
                &[],
                Some(("application/json", body.to_string().into_bytes())),
            )
            .await
        }
    };

    put(
        json!({"current_password": "password-ivan", "new_password": "brand new pw"}),
        None,
    )
    .await
    .assert_problem(401);
    let r = put(
        json!({"current_password": "wrong-one", "new_password": "brand new pw"}),
        Some(access.clone()),
    )
    .await;
    r.assert_problem(403);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("current_password")
    );
    let r = put(
        json!({"current_password": "password-ivan", "new_password": "short"}),
        Some(access.clone()),
    )
    .await;
    assert_eq!(r.error_fields(), ["new_password"]);

    let ok = put(
        json!({"current_password": "password-ivan", "new_password": "brand new pw"}),
        Some(access.clone()),
    )
    .await;
    assert_eq!(ok.status, 204, "{}", ok.body);
    for s in [&s1, &s2.body] {
        post_json(
            &p.url("/api/v1/auth/refresh"),
            None,
            json!({"refresh_token": token(s, "refresh_token")}),
        )
        .await
        .assert_problem(401);
    }
    let login = p.url("/api/v1/auth/login");
    post_json(
        &login,
        None,
        json!({"login": "ivan", "password": "password-ivan"}),
    )
    .await
    .assert_problem(401);
    assert_eq!(
        post_json(
            &login,
            None,
            json!({"login": "ivan", "password": "brand new pw"})
        )
        .await
        .status,
        200
    );
}

#[actix_web::test]
async fn failed_logins_are_throttled_per_account_without_lockout_leaks() {
    let mut config = support::config();
    config.auth_limits.account_free_failures = 3;
    config.auth_limits.account_backoff_secs = 60;
    let p = start_with(config).await;
    register(&p, "judy").await;
    let url = p.url("/api/v1/auth/login");
    for _ in 0..3 {
        post_json(
            &url,
            None,
            json!({"login": "judy", "password": "nope-nope"}),
        )
        .await
        .assert_problem(401);
    }
    let blocked = post_json(
        &url,
        None,
        json!({"login": "judy", "password": "password-judy"}),
    )
    .await;
    blocked.assert_problem(429);
    let retry: u64 = blocked
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // The email names the same account.
    post_json(
        &url,
        None,
        json!({"login": "judy@example.org", "password": "password-judy"}),
    )
    .await
    .assert_problem(429);
    // The stranger's failures slow down the stranger's address only: judy, from her
    // own address (a proxy the auth service trusts vouches for it), signs in at once.
    let from_elsewhere = send(
        "POST",
        &p.service_url("auth", "/api/v1/auth/login"),
        None,
        &[("x-forwarded-for", "198.51.100.7")],
        Some((
            "application/json",
            json!({"login": "judy", "password": "password-judy"})
                .to_string()
                .into_bytes(),
        )),
    )
    .await;
    assert_eq!(from_elsewhere.status, 200, "{}", from_elsewhere.body);
    // Unknown accounts are throttled the same way, so 429 tells nothing about existence.
    for _ in 0..3 {
        post_json(
            &url,
            None,
            json!({"login": "ghost", "password": "nope-nope"}),
        )
        .await
        .assert_problem(401);
    }
    post_json(
        &url,
        None,
        json!({"login": "ghost", "password": "nope-nope"}),
    )
    .await
    .assert_problem(429);
    // Other accounts are unaffected.
    register(&p, "ken").await;
    assert_eq!(
        post_json(
            &url,
            None,
            json!({"login": "ken", "password": "password-ken"})
        )
        .await
        .status,
        200
    );
}

#[actix_web::test]
async fn registrations_are_rate_limited_per_address() {
    let mut config = support::config();
    config.auth_limits.registrations_per_minute = 2;
    let p = start_with(config).await;
    register(&p, "liam").await;
    register(&p, "mia").await;
    let r = post_json(
        &p.url("/api/v1/auth/register"),
        None,
        json!({"username": "noah", "email": "noah@example.org", "password": "longenough"}),
    )
    .await;
    r.assert_problem(429);
    assert!(r.header("retry-after").is_some());
    // A client-supplied X-Forwarded-For does not buy a fresh budget: only the entry the
    // gateway appended is trusted.
    let spoofed = send(
        "POST",
        &p.url("/api/v1/auth/register"),
        None,
        &[("x-forwarded-for", "198.51.100.7")],
        Some((
            "application/json",
            json!({"username": "noah", "email": "noah@example.org", "password": "longenough"})
                .to_string()
                .into_bytes(),
        )),
    )
    .await;
    spoofed.assert_problem(429);
}

#[actix_web::test]
async fn data_and_keys_survive_a_restart() {
    let mut p = start().await;
    let first = register(&p, "olivia").await;
    let config = p.config.clone();
    p.stop().await;
    let p = start_with(config).await;
    let login = post_json(
        &p.url("/api/v1/auth/login"),
        None,
        json!({"login": "olivia", "password": "password-olivia"}),
    )
    .await;
    assert_eq!(login.status, 200);
    // The key was kept, so tokens from before the restart still verify.
    assert_eq!(me_status(&p, &first).await, 200);
}

#[actix_web::test]
async fn operations_endpoints() {
    let p = start().await;
    for path in ["/healthz", "/readyz"] {
        let r = get(&p.ops_url("auth", path), None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let r = get(&p.ops_url("gateway", path), None).await;
        assert_eq!(r.status, 200, "gateway {path}: {}", r.body);
    }
    register(&p, "pat").await;
    let metrics = get(&p.ops_url("auth", "/metrics"), None).await;
    let text = String::from_utf8_lossy(&metrics.raw);
    assert!(text.contains("agora_http_requests_total{"), "{text}");
    assert!(text.contains("route=\"/api/v1/auth/register\""), "{text}");
    let spec = get(&p.ops_url("auth", "/openapi.json"), None).await;
    assert!(spec.body["paths"]["/api/v1/auth/register"]["post"].is_object());
    let policy = get(&p.ops_url("auth", "/routes.json"), None).await;
    assert_eq!(policy.body["service"], "auth", "{}", policy.body);
    // The gateway merges every service's document.
    let merged = get(&p.url("/api/v1/openapi.json"), None).await;
    assert_eq!(merged.status, 200);
    assert!(
        merged.body["paths"]["/api/v1/auth/login"]["post"].is_object(),
        "{}",
        merged.body
    );
    assert!(merged.body["components"]["securitySchemes"]["bearer"].is_object());
    // Operations endpoints are on their own ports: not on the public ones, and not
    // routed through the gateway.
    for path in ["/metrics", "/readyz", "/healthz", "/api/v1/healthz"] {
        get(&p.url(path), None).await.assert_problem(404);
        get(&p.service_url("auth", path), None)
            .await
            .assert_problem(404);
    }
    let pat = post_json(
        &p.url("/api/v1/auth/login"),
        None,
        json!({"login": "pat", "password": "password-pat"}),
    )
    .await;
    let access = token(&pat.body, "access_token");
    get(&p.url("/api/v1/auth/metrics"), Some(&access))
        .await
        .assert_problem(404);
}

#[actix_web::test]
async fn undeclared_methods_get_405_with_allow_and_head_works() {
    let p = start().await;
    let session = register(&p, "quinn").await;
    let access = token(&session, "access_token");
    for (method, path, allow) in [
        ("DELETE", "/api/v1/auth/login", "POST"),
        ("GET", "/api/v1/auth/register", "POST"),
        ("POST", "/api/v1/auth/me", "GET, DELETE, HEAD"),
        ("PATCH", "/api/v1/auth/password", "PUT"),
        ("QUERY", "/api/v1/auth/jwks", "GET, HEAD"),
    ] {
        let r = send(method, &p.url(path), Some(&access), &[], None).await;
        r.assert_problem(405);
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
    // HEAD answers like GET, without a body.
    let head = send("HEAD", &p.url("/api/v1/auth/me"), Some(&access), &[], None).await;
    assert_eq!(head.status, 200);
    assert!(head.raw.is_empty());
    let head = send("HEAD", &p.url("/api/v1/auth/jwks"), None, &[], None).await;
    assert_eq!(head.status, 200);
}

#[actix_web::test]
async fn paths_with_dot_segments_are_refused() {
    let p = start().await;
    for path in [
        "/api/v1/auth/../auth/jwks",
        "/api/v1/auth/%2e%2e/auth/jwks",
        "/api/v1/auth/x%2Fy",
    ] {
        get(&p.url(path), None).await.assert_problem(400);
        // The services refuse them too, should anything route them there directly.
        get(&p.service_url("auth", path), None)
            .await
            .assert_problem(400);
    }
}

#[actix_web::test]
async fn the_platform_stops_when_one_of_its_servers_dies() {
    let mut p = start().await;
    let platform = p.platform.take().unwrap_or_else(|| panic!("not started"));
    let auth = platform
        .server_handle("auth")
        .unwrap_or_else(|| panic!("no auth server"));
    actix_web::rt::spawn(async move { auth.stop(false).await });
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        platform.run_until(std::future::pending::<()>()),
    )
    .await
    .unwrap_or_else(|_| panic!("run_until did not notice the dead server"));
    let message = outcome.err().unwrap();
    assert!(message.contains("auth"), "{message}");
    // Everything else was stopped too: the gateway no longer answers.
    let refused = awc::Client::default()
        .get(p.url("/api/v1/auth/jwks"))
        .send()
        .await;
    assert!(refused.is_err());
}
