//! Integration-test support: a fresh database per test on the throwaway PostgreSQL
//! cluster that `hack/test.sh` starts (`AGORA_TEST_DATABASE_URL`), test keys and tokens
//! without the auth service, and a service served on loopback.

/// The server-level URL of the test cluster. Panics with instructions when unset:
/// tests never silently skip.
pub fn server_url() -> String {
    match std::env::var("AGORA_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "AGORA_TEST_DATABASE_URL is not set: run the tests with `hack/test.sh`, which starts \
             a throwaway PostgreSQL cluster (or point it at a server where you may create databases)"
        ),
    }
}

/// A unique database-name prefix for one test.
pub fn unique_prefix(name: &str) -> String {
    format!(
        "t_{name}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Creates an empty database with a unique name and returns its URL.
pub async fn fresh_database(name: &str) -> String {
    let db = unique_prefix(name);
    match crate::db::ensure_database(&server_url(), &db).await {
        Ok(url) => url,
        Err(e) => panic!("cannot create test database {db}: {e}"),
    }
}

/// Signing keys and access tokens for tests, without the auth service: a service under
/// test verifies with [`TestKeys::verifier`] and its tests call it with
/// [`TestKeys::token`].
pub struct TestKeys {
    issuer: crate::signing::TokenIssuer,
}

impl Default for TestKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl TestKeys {
    /// A fresh Ed25519 key; tokens say `iss` = `aud` = `agora`, as the platform's do.
    pub fn new() -> Self {
        let pem = match crate::signing::generate_pem() {
            Ok(pem) => pem,
            Err(e) => panic!("cannot generate a test key: {e}"),
        };
        let key = match crate::signing::KeyPair::from_pem(pem.as_bytes(), "test key") {
            Ok(key) => key,
            Err(e) => panic!("{e}"),
        };
        Self {
            issuer: crate::signing::TokenIssuer::new(
                key,
                Vec::new(),
                "agora".into(),
                "agora".into(),
                900,
            ),
        }
    }

    /// An access token for `user`.
    pub fn token(&self, user: uuid::Uuid, username: &str) -> String {
        match self.issuer.access_token(user, username) {
            Ok(token) => token,
            Err(e) => panic!("{e}"),
        }
    }

    /// A verifier that trusts exactly these keys.
    pub fn verifier(&self) -> crate::auth::TokenVerifier {
        crate::auth::TokenVerifier::new(
            "agora",
            "agora",
            crate::auth::KeySource::Static(self.issuer.jwks().clone()),
        )
    }

    /// The public key set (to serve as a JWKS).
    pub fn jwks(&self) -> &jsonwebtoken::jwk::JwkSet {
        self.issuer.jwks()
    }
}

/// A service serving on loopback ports for the length of a test.
pub struct TestServer {
    /// Base URL of its API, e.g. `http://127.0.0.1:41234`.
    pub api: String,
    /// Base URL of its operations endpoints.
    pub ops: String,
}

/// Serves `service` on loopback (one worker each) on the current actix runtime.
pub fn serve(service: crate::Service) -> TestServer {
    let bind = || match std::net::TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => panic!("cannot bind a loopback port: {e}"),
    };
    let serving = match service.serve(bind(), bind(), 1) {
        Ok(s) => s,
        Err(e) => panic!("cannot serve: {e}"),
    };
    let server = TestServer {
        api: format!("http://{}", serving.api_addr),
        ops: format!("http://{}", serving.ops_addr),
    };
    actix_web::rt::spawn(serving.api);
    actix_web::rt::spawn(serving.ops);
    server
}

/// Delivers an account to a service's `PUT /internal/accounts/{id}` as the auth
/// service's outbox would (panics unless it answers 204).
pub async fn deliver_account(base_url: &str, service_token: &str, id: uuid::Uuid, username: &str) {
    let delivery = crate::accounts::AccountCreated {
        id,
        username: username.to_owned(),
        created_at: chrono::Utc::now(),
    };
    let status = reqwest::Client::new()
        .put(format!("{base_url}{}", crate::accounts::account_path(id)))
        .bearer_auth(service_token)
        .json(&delivery)
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(
        status.ok(),
        Some(204),
        "delivering account {id} to {base_url}"
    );
}

/// The settings every service under test shares: its database, the platform's issuer
/// and audience, an unused JWKS URL (tests verify with [`TestKeys::verifier`]) and the
/// internal credential.
pub fn basics(database_url: String, internal_token: &str) -> crate::config::ServiceBasics {
    let Some(service_token) = crate::client::ServiceToken::new(internal_token) else {
        panic!("an internal token has at least 32 characters")
    };
    crate::config::ServiceBasics {
        database_url,
        db_pool_size: 10,
        jwks_url: "http://127.0.0.1:9/unused".into(),
        issuer: "agora".into(),
        audience: "agora".into(),
        service_token,
    }
}

/// One JSON call with a bearer token: the status and the body (`null` when empty or
/// not JSON). Panics only when the server cannot be reached.
pub async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut req = http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = match req.send().await {
        Ok(resp) => resp,
        Err(e) => panic!("{url}: {e}"),
    };
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// A person the services under test know: delivered as the auth service's outbox
/// would deliver them, with an access token of the test keys.
#[derive(Debug, Clone)]
pub struct Person {
    /// Their account id.
    pub id: uuid::Uuid,
    /// Their username (the requested name and a unique suffix).
    pub name: String,
    /// An access token for them.
    pub token: String,
}

/// Services under test on one key set and one internal credential, called as a REST
/// client would: each request goes to the service serving its path's area.
pub struct Harness {
    /// Signs the people's tokens; the services verify with [`TestKeys::verifier`].
    pub keys: TestKeys,
    /// The HTTP client of every call.
    pub http: reqwest::Client,
    internal_token: String,
    /// (path prefix, base URL); the first is the default.
    areas: Vec<(String, String)>,
    /// Base URLs of the services that keep accounts (told of every new person).
    account_keepers: Vec<String>,
}

impl Harness {
    /// A harness whose services take `internal_token` on their internal routes and
    /// verify tokens of `keys`.
    pub fn new(keys: TestKeys, internal_token: &str) -> Self {
        Self {
            keys,
            http: reqwest::Client::new(),
            internal_token: internal_token.to_owned(),
            areas: Vec::new(),
            account_keepers: Vec::new(),
        }
    }

    /// Requests to paths under `prefix` go to `base` (the first service added also
    /// takes every other path); it keeps accounts when `keeps_accounts` is set.
    pub fn serving(mut self, prefix: &str, base: &str, keeps_accounts: bool) -> Self {
        self.areas.push((prefix.to_owned(), base.to_owned()));
        if keeps_accounts {
            self.account_keepers.push(base.to_owned());
        }
        self
    }

    /// The URL of `path` on the service that serves it.
    pub fn url(&self, path: &str) -> String {
        // The longest matching prefix: `/api/v1/relations` before `/api/v1`.
        let base = self
            .areas
            .iter()
            .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .or(self.areas.first())
            .map_or("", |(_, base)| base.as_str());
        format!("{base}{path}")
    }

    /// A new person named `name` and a unique suffix (`name` at most 23 characters),
    /// known to every service that keeps accounts.
    pub async fn user(&self, name: &str) -> Person {
        let id = uuid::Uuid::now_v7();
        let suffix = id.simple().to_string();
        let name = format!("{name}_{}", &suffix[24..]);
        for base in &self.account_keepers {
            deliver_account(base, &self.internal_token, id, &name).await;
        }
        Person {
            token: self.keys.token(id, &name),
            id,
            name,
        }
    }

    /// One JSON call as `who`: the status and the body.
    pub async fn call(
        &self,
        who: &Person,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        call(&self.http, method, &self.url(path), &who.token, body).await
    }

    /// A call that must succeed (2xx); its body.
    pub async fn ok(
        &self,
        who: &Person,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let (status, body) = self.call(who, method.clone(), path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        body
    }
}
