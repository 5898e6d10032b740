//! Agora on a real node, through the Traefik ingress and its forwardAuth middleware, as
//! `hack/e2e.sh` deploys it (operator and platform charts, every pod a real container).
//! Built only with the `cluster-e2e` feature; `hack/e2e.sh` runs it after `up` with
//! `AGORA_URL` (the ingress), `AGORA_HOST` (the platform's host name), `KUBECONFIG`,
//! `AGORA_E2E_NAMESPACE` and `AGORA_E2E_PLATFORM`. The fault tests delete and change real
//! pods, so the tests run one at a time (`--test-threads 1`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod support;
// The CloudNativePG mode's tests (`hack/e2e.sh test` runs them on a platform in that mode).
#[path = "cluster/cloudnative_pg.rs"]
mod cloudnative_pg;
// The restore drill, on a platform of its own.
#[path = "cluster/backup_drill.rs"]
mod backup_drill;

use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run this through hack/e2e.sh"))
}

struct Reply {
    status: u16,
    content_type: String,
    /// `X-Request-Id`: set by every Agora service, never by Traefik, so a failure says
    /// who answered.
    request_id: Option<String>,
    /// `Server`: no Agora service sends one; a proxy on the way may (the one behind this
    /// machine's default route did, for a Service address that escaped the node).
    server: Option<String>,
    body: Value,
    raw: Vec<u8>,
}

impl Reply {
    fn describe(&self) -> String {
        format!(
            "{} [{}; request id {}; server {}] {}",
            self.status,
            self.content_type,
            self.request_id.as_deref().unwrap_or("none"),
            self.server.as_deref().unwrap_or("none"),
            String::from_utf8_lossy(&self.raw)
        )
    }
}

/// The platform as a client outside the cluster reaches it: the ingress URL, and the Host
/// header its rules match.
struct Edge {
    base: String,
    host: Option<String>,
    http: awc::Client,
}

impl Edge {
    fn new() -> Self {
        Edge {
            base: env("AGORA_URL").trim_end_matches('/').to_owned(),
            host: std::env::var("AGORA_HOST").ok().filter(|h| !h.is_empty()),
            http: awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish(),
        }
    }

    async fn try_send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Reply, String> {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(host) = &self.host {
            req = req.insert_header(("host", host.as_str()));
        }
        let (status, response_headers, raw) = support::exchange(req, token, headers, body)
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        let header = |name: &str| {
            response_headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Reply {
            status,
            content_type: header("content-type").unwrap_or_default(),
            request_id: header("x-request-id"),
            server: header("server"),
            body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
            raw,
        })
    }

    /// Opens a server-sent event stream at `path`.
    async fn stream(&self, path: &str, token: Option<&str>) -> Result<support::Events, u16> {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(host) = &self.host {
            req = req.insert_header(("host", host.as_str()));
        }
        if let Some(token) = token {
            req = req.insert_header(("authorization", format!("Bearer {token}")));
        }
        support::Events::send(req).await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.try_send(
            method,
            path,
            token,
            &[],
            body.map(|b| ("application/json", b.to_string().into_bytes())),
        )
        .await
        .unwrap_or_else(|e| panic!("{method} {e}"))
    }

    async fn ok(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let reply = self.send(method, path, token, body).await;
        assert!(
            (200..300).contains(&reply.status),
            "{method} {path}: {}",
            reply.describe()
        );
        reply.body
    }
}

/// `who` erases their account; the path of the erasure's status.
async fn leave(edge: &Edge, who: &Person) -> String {
    let answer = edge
        .send(
            "DELETE",
            "/api/v1/auth/me",
            Some(&who.token),
            Some(json!({"password": "correct horse battery"})),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.describe());
    let id = answer.body["deletion_id"].as_str().unwrap();
    format!("/api/v1/auth/deletions/{id}")
}

/// Waits until the erasure whose status is at `status` completes (a public route: no
/// token).
async fn erased(edge: &Edge, status: &str) {
    wait_ready(
        "the erasure to complete",
        Duration::from_secs(240),
        async || {
            let reply = edge.send("GET", status, None, None).await;
            assert_eq!(reply.status, 200, "{}", reply.describe());
            reply.body["status"] == "erased"
        },
    )
    .await;
}

struct Person {
    id: String,
    token: String,
    /// Signs in with the password "correct horse battery".
    username: String,
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}_{:x}", nanos % 0xffff_ffff_ffff)
}

async fn register(edge: &Edge, name: &str) -> Person {
    let username = unique(name);
    let body = edge
        .ok(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(
                json!({"username": username, "email": format!("{username}@example.com"),
                        "password": "correct horse battery"}),
            ),
        )
        .await;
    // A fresh login, as a person coming back would.
    let login = edge
        .ok(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"login": username, "password": "correct horse battery"})),
        )
        .await;
    Person {
        id: body["user"]["id"].as_str().unwrap().to_owned(),
        token: login["access_token"].as_str().unwrap().to_owned(),
        username,
    }
}

/// `kubectl` against the e2e cluster (KUBECONFIG from the environment), in the platform's
/// namespace; blocking, so it runs off the test's event loop.
async fn kubectl(args: &[&str]) -> String {
    kubectl_in(&env("AGORA_E2E_NAMESPACE"), args)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `kubectl -n namespace args…`: its output, or what went wrong.
async fn kubectl_in(namespace: &str, args: &[&str]) -> Result<String, String> {
    let mut all = vec!["-n".to_owned(), namespace.to_owned()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let shown = all.join(" ");
    let out = actix_web::rt::task::spawn_blocking(move || {
        std::process::Command::new("kubectl").args(&all).output()
    })
    .await
    .map_err(|e| format!("kubectl {shown}: {e}"))?
    .map_err(|e| format!("kubectl {shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "kubectl {shown}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn platform() -> String {
    env("AGORA_E2E_PLATFORM")
}

fn selector(service: &str) -> String {
    format!(
        "app.kubernetes.io/name={service},app.kubernetes.io/instance={}",
        platform()
    )
}

/// Requests the users service has answered so far, summed over its pods.
async fn users_requests(http: &awc::Client) -> f64 {
    per_pod(http, "users", "agora_http_requests_total{")
        .await
        .iter()
        .sum()
}

/// A metric of each pod of `service` (the sum of its series whose line starts with
/// `series`), read from each pod's operations port on the node's pod network.
async fn per_pod(http: &awc::Client, service: &str, series: &str) -> Vec<f64> {
    let ips = kubectl(&[
        "get",
        "pods",
        "-l",
        &selector(service),
        "-o",
        "jsonpath={.items[*].status.podIP}",
    ])
    .await;
    let mut values = Vec::new();
    for ip in ips.split_whitespace() {
        let mut resp = http
            .get(format!("http://{ip}:9090/metrics"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("metrics of {ip}: {e}"));
        let text = String::from_utf8(resp.body().await.unwrap().to_vec()).unwrap();
        values.push(
            text.lines()
                .filter(|l| l.starts_with(series))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>(),
        );
    }
    values
}

fn png(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8, y as u8, seed]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// Uploads a small PNG made from `seed` as `who`, with these form fields; its id.
async fn upload(edge: &Edge, who: &Person, seed: u8, fields: &[(&str, &str)]) -> String {
    let (content_type, body) = multipart(&png(seed), fields);
    let photo = edge
        .try_send(
            "POST",
            "/api/v1/photos",
            Some(&who.token),
            &[],
            Some((&content_type, body)),
        )
        .await
        .unwrap();
    assert_eq!(photo.status, 201, "{}", photo.describe());
    photo.body["id"].as_str().unwrap().to_owned()
}

fn multipart(file: &[u8], fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "agora-cluster-e2e";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend(file);
    for (name, value) in fields {
        body.extend(
            format!(
                "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}"
            )
            .as_bytes(),
        );
    }
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[actix_web::test]
async fn a_journey_through_the_ingress_with_forward_auth() {
    let edge = Edge::new();
    let alice = register(&edge, "alice").await;
    let bob = register(&edge, "bob").await;
    let me = edge
        .ok("GET", "/api/v1/users/me", Some(&alice.token), None)
        .await;
    assert_eq!(me["id"], alice.id.as_str());

    // No token, or a forged identity header without one: refused by the middleware, and
    // the users service never sees the request (its request counters stay put), while one
    // signed-in call does reach it.
    let before = users_requests(&edge.http).await;
    for headers in [
        vec![],
        vec![("x-user-id", bob.id.as_str()), ("x-user-name", "bob")],
    ] {
        for _ in 0..5 {
            let reply = edge
                .try_send("GET", "/api/v1/users/me", None, &headers, None)
                .await
                .unwrap();
            assert_eq!(reply.status, 401, "{}", reply.describe());
            assert_eq!(reply.content_type, "application/problem+json");
        }
    }
    let refused = users_requests(&edge.http).await;
    assert_eq!(
        refused, before,
        "an unauthenticated request reached the users service"
    );
    edge.ok("GET", "/api/v1/users/me", Some(&bob.token), None)
        .await;
    assert!(
        users_requests(&edge.http).await > refused,
        "the counters do not count"
    );
    // A forged header beside a real token changes nothing: the token says who calls.
    let reply = edge
        .try_send(
            "GET",
            "/api/v1/users/me",
            Some(&alice.token),
            &[("x-user-id", bob.id.as_str())],
            None,
        )
        .await
        .unwrap();
    assert_eq!(reply.body["id"], alice.id.as_str());

    // A public photo: uploaded, its bytes open to anyone (no token), used in a post.
    let photo_id = upload(
        &edge,
        &alice,
        7,
        &[("visibility", "public"), ("tags", "e2e")],
    )
    .await;
    let content = edge
        .send(
            "GET",
            &format!("/api/v1/photos/{photo_id}/content"),
            None,
            None,
        )
        .await;
    assert_eq!(content.status, 200);
    assert!(
        content.content_type.starts_with("image/"),
        "{}",
        content.content_type
    );
    assert!(!content.raw.is_empty());

    // Bob follows Alice and finds her post, with the photo, in his feed.
    let follow = edge
        .send(
            "PUT",
            &format!("/api/v1/relations/following/{}", alice.id),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(follow.status, 204);
    let post = edge
        .ok(
            "POST",
            "/api/v1/posts",
            Some(&alice.token),
            Some(json!({"text": "hello from a real node", "photo_ids": [photo_id]})),
        )
        .await;
    let feed = edge.ok("GET", "/api/v1/feed", Some(&bob.token), None).await;
    assert_eq!(feed["items"][0]["id"], post["id"], "{feed}");
    assert_eq!(feed["items"][0]["photos"][0]["id"], photo_id.as_str());
    // The merged contract is served through the ingress too (public, by the gateway).
    let doc = edge.ok("GET", "/api/v1/openapi.json", None, None).await;
    assert!(doc["paths"]["/api/v1/feed"].is_object());
}

/// What a steady client saw while something happened to the platform.
#[derive(Default)]
struct Stream {
    /// Posts whose creation was acknowledged (201).
    acked: Vec<String>,
    /// When each was acknowledged.
    acked_at: Vec<Instant>,
    requests: usize,
    failures: Vec<String>,
}

/// Writes a post and reads the feed, `per_second` pairs a second, until `stop` is set.
async fn steady(
    edge: &Edge,
    who: &Person,
    per_second: u64,
    stop: &std::cell::Cell<bool>,
) -> Stream {
    let mut out = Stream::default();
    let pause = Duration::from_millis(1000 / per_second);
    let mut i = 0;
    while !stop.get() {
        let started = Instant::now();
        i += 1;
        let body = json!({"text": format!("steady {i}")})
            .to_string()
            .into_bytes();
        match edge
            .try_send(
                "POST",
                "/api/v1/posts",
                Some(&who.token),
                &[],
                Some(("application/json", body)),
            )
            .await
        {
            Ok(r) if r.status == 201 => {
                out.acked.push(r.body["id"].as_str().unwrap().to_owned());
                out.acked_at.push(Instant::now());
            }
            Ok(r) => out.failures.push(format!("POST /posts: {}", r.describe())),
            Err(e) => out.failures.push(format!("POST {e}")),
        }
        match edge
            .try_send("GET", "/api/v1/feed?limit=5", Some(&who.token), &[], None)
            .await
        {
            Ok(r) if r.status == 200 => {}
            Ok(r) => out.failures.push(format!("GET /feed: {}", r.describe())),
            Err(e) => out.failures.push(format!("GET {e}")),
        }
        out.requests += 2;
        if let Some(left) = pause.checked_sub(started.elapsed()) {
            actix_web::rt::time::sleep(left).await;
        }
    }
    out
}

/// Runs `action` while a steady stream runs, and the stream for `tail` more afterwards.
async fn under_load<F: std::future::Future<Output = ()>>(
    edge: &Edge,
    who: &Person,
    tail: Duration,
    action: F,
) -> Stream {
    let stop = std::cell::Cell::new(false);
    let (stream, ()) = futures_util::join!(
        steady(edge, who, 10, &stop),
        stop_after(&stop, tail, action)
    );
    stream
}

/// For a stream that runs until `stop`: two seconds of it, then `action`, then `tail`
/// more, then `stop`.
async fn stop_after<F: std::future::Future<Output = ()>>(
    stop: &std::cell::Cell<bool>,
    tail: Duration,
    action: F,
) {
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    action.await;
    actix_web::rt::time::sleep(tail).await;
    stop.set(true);
}

async fn assert_all_readable(edge: &Edge, who: &Person, ids: &[String]) {
    for id in ids {
        let reply = edge
            .send(
                "GET",
                &format!("/api/v1/posts/{id}"),
                Some(&who.token),
                None,
            )
            .await;
        if reply.status != 200 {
            panic!(
                "acknowledged post {id} is gone: {}\nthe ingress's access log of it:\n{}",
                reply.describe(),
                ingress_saw(id).await
            );
        }
    }
}

/// The ingress's access-log lines naming `needle` (Traefik's lines name the router and
/// the backend that answered): for a failure whose answer came from no Agora process.
async fn ingress_saw(needle: &str) -> String {
    match kubectl_in("traefik", &["logs", "deploy/traefik", "--since=15m"]).await {
        Ok(log) => log
            .lines()
            .filter(|line| line.contains(needle))
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => e,
    }
}

/// The warnings and errors `service`'s pods logged in the last five minutes: for a
/// failure whose cause only the service saw (the database error behind a 503).
async fn warnings_of(service: &str) -> String {
    let args = [
        "logs",
        "-l",
        &selector(service),
        "--since=5m",
        "--prefix",
        "--tail=-1",
    ];
    match kubectl_in(&env("AGORA_E2E_NAMESPACE"), &args).await {
        Ok(log) => log
            .lines()
            .filter(|line| {
                line.contains(r#""level":"WARN""#) || line.contains(r#""level":"ERROR""#)
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => e,
    }
}

/// Waits until the users Deployment has rolled out (every replica new and ready).
async fn users_rolled_out() {
    kubectl(&[
        "rollout",
        "status",
        &format!("deployment/{}-users", platform()),
        "--timeout=180s",
    ])
    .await;
}

async fn wait_ready(what: &str, deadline: Duration, mut check: impl AsyncFnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !check().await {
        assert!(Instant::now() < until, "{what} within {deadline:?}");
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    }
}

#[actix_web::test]
async fn a_deleted_service_pod_is_replaced_without_a_failed_request() {
    let edge = Edge::new();
    let carol = register(&edge, "carol").await;
    let pods = kubectl(&[
        "get",
        "pods",
        "-l",
        &selector("users"),
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ])
    .await;
    let victim = pods
        .split_whitespace()
        .next()
        .expect("a users pod")
        .to_owned();
    let stream = under_load(&edge, &carol, Duration::from_secs(10), async {
        kubectl(&["delete", "pod", &victim, "--wait=false"]).await;
        users_rolled_out().await;
    })
    .await;
    assert!(stream.requests > 50, "only {} requests", stream.requests);
    assert!(
        stream.failures.is_empty(),
        "{} of {} requests failed: {:#?}",
        stream.failures.len(),
        stream.requests,
        stream.failures
    );
    let now = kubectl(&[
        "get",
        "pods",
        "-l",
        &selector("users"),
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ])
    .await;
    assert!(
        !now.split_whitespace().any(|p| p == victim),
        "{victim} is still there: {now}"
    );
    assert_all_readable(&edge, &carol, &stream.acked).await;
}

#[actix_web::test]
async fn a_platform_change_rolls_out_without_a_failed_request() {
    let edge = Edge::new();
    let dan = register(&edge, "dan").await;
    let marker = unique("rollout");
    let patch = json!({"spec": {"services": {"users": {"env": [{"name": "AGORA_E2E_MARKER", "value": marker}]}}}}).to_string();
    let name = platform();
    let stream = under_load(&edge, &dan, Duration::from_secs(5), async {
        kubectl(&[
            "patch",
            "socialplatform",
            &name,
            "--type",
            "merge",
            "-p",
            &patch,
        ])
        .await;
        let deployment = format!("deployment/{name}-users");
        // The operator applies the change; then the Deployment rolls.
        wait_ready(
            "the operator to update the users Deployment",
            Duration::from_secs(60),
            async || {
                kubectl(&[
                    "get",
                    &deployment,
                    "-o",
                    "jsonpath={.spec.template.spec.containers[0].env}",
                ])
                .await
                .contains(&marker)
            },
        )
        .await;
        kubectl(&["rollout", "status", &deployment, "--timeout=240s"]).await;
    })
    .await;
    assert!(
        stream.failures.is_empty(),
        "{} of {} requests failed: {:#?}",
        stream.failures.len(),
        stream.requests,
        stream.failures
    );
    assert_all_readable(&edge, &dan, &stream.acked).await;
}

#[actix_web::test]
async fn a_killed_database_loses_no_acknowledged_write() {
    let edge = Edge::new();
    let erin = register(&edge, "erin").await;
    let mut acked = Vec::new();
    for i in 0..20 {
        let post = edge
            .ok(
                "POST",
                "/api/v1/posts",
                Some(&erin.token),
                Some(json!({"text": format!("before the kill {i}")})),
            )
            .await;
        acked.push(post["id"].as_str().unwrap().to_owned());
    }
    let ips = kubectl(&[
        "get",
        "pods",
        "-l",
        &selector("users"),
        "-o",
        "jsonpath={.items[*].status.podIP}",
    ])
    .await;
    let readyz: Vec<String> = ips
        .split_whitespace()
        .map(|ip| format!("http://{ip}:9090/readyz"))
        .collect();
    assert!(!readyz.is_empty());
    let database = format!("{}-postgres-0", platform());
    // The kill lands in the middle of a steady stream of writes: requests may fail while
    // the database is away, but every write that was acknowledged must survive it.
    // SIGTERM, then SIGKILL a second later. Not `--force`: a force-deleted pod leaves the
    // API at once, and the StatefulSet's replacement may start on the same volume while
    // the old server still runs (two postmasters on one data directory, in separate
    // namespaces that hide each other's lock). That lost acknowledged posts once.
    let stream = under_load(&edge, &erin, Duration::from_secs(5), async {
        kubectl(&[
            "delete",
            "pod",
            &database,
            "--grace-period=1",
            "--wait=false",
        ])
        .await;
        // The services notice: their readiness (what the kubelet probes) fails while the
        // database is away.
        wait_ready(
            "the users pods to report not ready",
            Duration::from_secs(60),
            async || {
                for url in &readyz {
                    match edge.http.get(url).send().await {
                        Ok(r) if r.status().as_u16() == 503 => {}
                        _ => return false,
                    }
                }
                true
            },
        )
        .await;
        // ... and recover on their own once it is back.
        wait_ready("the platform to answer again", Duration::from_secs(240), async || {
            matches!(edge.try_send("GET", "/api/v1/feed", Some(&erin.token), &[], None).await, Ok(r) if r.status == 200)
        })
        .await;
        users_rolled_out().await;
    })
    .await;
    assert!(
        stream.acked.len() > 10,
        "the stream wrote only {} posts",
        stream.acked.len()
    );
    // That the database was away is what the readiness wait above saw (every users pod
    // answered 503). Requests need not fail: a refused connection is retried for up to
    // the kit's `FAILOVER_WAIT` (15 s), so writes may ride through a quick restart; when
    // the restart takes longer, some fail. Either way none that was acknowledged is lost.
    assert_all_readable(&edge, &erin, &stream.acked).await;
    assert_all_readable(&edge, &erin, &acked).await;
    // The newest acknowledged post is still the newest one the author sees.
    let feed = edge
        .ok("GET", "/api/v1/feed?limit=1", Some(&erin.token), None)
        .await;
    assert_eq!(
        feed["items"][0]["id"],
        stream.acked.last().unwrap().as_str()
    );
}

/// A JSON `GET` of an observability API inside the cluster (Jaeger's, Prometheus's).
async fn get_json(http: &awc::Client, url: &str) -> Value {
    let mut resp = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let body = resp.body().limit(64 * 1024 * 1024).await.unwrap();
    assert_eq!(
        resp.status(),
        200,
        "GET {url}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).unwrap()
}

/// Notifications through Traefik: the stream path is public at the edge (the service
/// checks the ticket or token), and a notification reaches every open stream, whichever
/// of the two notifications replicas holds it and whichever applied the notice.
#[actix_web::test]
async fn a_notification_reaches_every_stream_through_traefik_whichever_replica_holds_it() {
    let edge = Edge::new();
    let stream = "/api/v1/notifications/stream";
    let refused = edge.send("GET", stream, None, None).await;
    assert_eq!(refused.status, 401, "{}", refused.describe());
    assert!(
        refused.request_id.is_some(),
        "answered by the service, not the edge"
    );

    // One listener per stream, until both replicas hold some (each pod's gauge); tickets
    // and tokens in turn.
    let mut listeners = Vec::new();
    loop {
        let listener = register(&edge, "listener").await;
        let events = if listeners.len() % 2 == 0 {
            let ticket = edge
                .ok(
                    "POST",
                    "/api/v1/notifications/stream-tickets",
                    Some(&listener.token),
                    None,
                )
                .await;
            let path = format!("{stream}?ticket={}", ticket["ticket"].as_str().unwrap());
            edge.stream(&path, None).await
        } else {
            edge.stream(stream, Some(&listener.token)).await
        };
        let mut events = events.unwrap_or_else(|status| panic!("stream refused: {status}"));
        let first = events.next_event(Duration::from_secs(10)).await.unwrap();
        assert_eq!(first.event, "unread");
        listeners.push((listener, events));
        let open = per_pod(
            &edge.http,
            "notifications",
            "agora_notifications_open_streams",
        )
        .await;
        if open.len() == 2 && open.iter().all(|n| *n >= 1.0) {
            break;
        }
        assert!(
            listeners.len() < 12,
            "every stream on one replica: {open:?}"
        );
    }

    // Someone follows each: the stream gets it. (The 2 s of the contract are checked
    // through `agora up` and measured by the benchmark; here another test kills the
    // database meanwhile, and a replica's listener reconnects and catches up.)
    let follower = register(&edge, "follower").await;
    for (listener, events) in &mut listeners {
        let path = format!("/api/v1/relations/following/{}", listener.id);
        edge.ok("PUT", &path, Some(&follower.token), None).await;
        // Unread counts may come in between (after any change, or a listener's
        // reconnection): the notification is what counts.
        let event = events
            .next_of("notification", Duration::from_secs(20))
            .await
            .expect("a notification on the stream");
        let item: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(item["kind"], "follow");
        assert_eq!(item["actors"][0]["id"], follower.id.as_str());
    }
}

/// The spans of a Jaeger trace whose parent is not in it.
fn roots_of(trace: &Value) -> Vec<Value> {
    let spans = trace["spans"].as_array().cloned().unwrap_or_default();
    let ids: Vec<&str> = spans.iter().filter_map(|s| s["spanID"].as_str()).collect();
    spans
        .iter()
        .filter(|s| {
            !s["references"].as_array().into_iter().flatten().any(|r| {
                r["refType"] == "CHILD_OF"
                    && ids.contains(&r["spanID"].as_str().unwrap_or_default())
            })
        })
        .cloned()
        .collect()
}

/// The feed's trace in Jaeger: one tree from Traefik's span through users and relations,
/// with PostgreSQL spans; and Prometheus scraping every workload through the platform's
/// ServiceMonitor, with the platform's alert rules loaded.
#[actix_web::test]
async fn traces_reach_jaeger_and_prometheus_scrapes_every_workload() {
    let edge = Edge::new();
    let http = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let jaeger = env("AGORA_JAEGER_URL");
    let prometheus = env("AGORA_PROMETHEUS_URL");
    let alice = register(&edge, "traced").await;
    let bob = register(&edge, "followed").await;
    edge.ok(
        "POST",
        "/api/v1/posts",
        Some(&bob.token),
        Some(json!({"text": "traced post"})),
    )
    .await;
    edge.send(
        "PUT",
        &format!("/api/v1/relations/following/{}", bob.id),
        Some(&alice.token),
        None,
    )
    .await;
    let feed = edge
        .send("GET", "/api/v1/feed", Some(&alice.token), None)
        .await;
    assert_eq!(feed.status, 200, "{}", feed.describe());

    // Spans are batched (a second) and Jaeger indexes them as they come: poll.
    let url = format!(
        "{jaeger}/api/traces?service=agora-users&operation={}&tags={}&lookback=1h&limit=50",
        "GET%20%2Fapi%2Fv1%2Ffeed",
        // This test's own request: other tests read feeds too.
        urlencode(&json!({"user.id": alice.id}).to_string())
    );
    // Every exporter batches on its own (Traefik's too), so a trace can be
    // indexed with some spans still on their way: wait for a complete tree.
    let deadline = Instant::now() + Duration::from_secs(90);
    let (found, roots) = loop {
        let traces = get_json(&http, &url).await;
        let candidates: Vec<&Value> = traces["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|trace| {
                let services: Vec<&str> = trace["processes"]
                    .as_object()
                    .map(|p| {
                        p.values()
                            .filter_map(|v| v["serviceName"].as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                ["traefik", "agora-users", "agora-relations"]
                    .iter()
                    .all(|s| services.contains(s))
            })
            .collect();
        if let Some(trace) = candidates.iter().find(|t| roots_of(t).len() == 1) {
            break ((*trace).clone(), roots_of(trace));
        }
        assert!(
            Instant::now() < deadline,
            "no complete feed trace with one root in Jaeger: {traces}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let spans = found["spans"].as_array().unwrap();
    let process_of = |span: &Value| {
        found["processes"][span["processID"].as_str().unwrap_or_default()]["serviceName"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        process_of(&roots[0]),
        "traefik",
        "the ingress starts the trace"
    );
    let queries = spans
        .iter()
        .filter(|s| {
            s["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t["key"] == "db.system.name" && t["value"] == "postgresql")
        })
        .count();
    assert!(queries >= 2, "{queries} PostgreSQL spans in {found}");
    let text = found.to_string();
    assert!(!text.contains(&alice.token), "a token is on a span");

    // Prometheus: every workload scraped and up, the platform's rules loaded.
    let namespace = env("AGORA_E2E_NAMESPACE");
    let workloads = ["auth", "users", "relations", "photos", "events", "gateway"];
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let query = format!("up{{namespace=\"{namespace}\"}}");
        let url = format!("{prometheus}/api/v1/query?query={}", urlencode(&query));
        let result = get_json(&http, &url).await;
        let up: Vec<(String, String)> = result["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    // `up` carries the target's labels: job is the Service.
                    r["metric"]["job"].as_str().unwrap_or_default().to_owned(),
                    r["value"][1].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let platform = env("AGORA_E2E_PLATFORM");
        let all_up = workloads.iter().all(|w| {
            up.iter()
                .any(|(job, v)| *job == format!("{platform}-{w}") && v == "1")
        }) && up.iter().all(|(_, v)| v == "1");
        if all_up {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every workload is up: {up:?}"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let rules = get_json(&http, &format!("{prometheus}/api/v1/rules")).await;
    let names: Vec<&str> = rules["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .filter_map(|r| r["name"].as_str())
        .collect();
    for alert in [
        "AgoraWorkloadDown",
        "AgoraHighErrorRatio",
        "AgoraHighLatency",
        "AgoraDatabaseUnreachable",
        "AgoraOutboxJobTooOld",
    ] {
        assert!(names.contains(&alert), "{alert} not loaded: {names:?}");
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// The phase of a `SocialPlatformBackup`, or "" before it has one.
async fn backup_phase(name: &str) -> String {
    kubectl(&[
        "get",
        "socialplatformbackup",
        name,
        "-o",
        "jsonpath={.status.phase}",
    ])
    .await
}

/// A backup destination as an operator of the platform sets it up: Secrets `<name>-s3`
/// (the test S3 server's credentials) and `<name>-key` (a key made from `seed`), and
/// `spec.backup` of `platform` to the bucket under `prefix` (with `retention` if given).
async fn back_up_to_the_bucket(
    platform: &str,
    name: &str,
    seed: usize,
    prefix: &str,
    retention: Option<Value>,
) {
    let s3 = |v: &str| env(&format!("AGORA_E2E_S3_{v}"));
    let key: String = (0..32)
        .map(|i| format!("{:02x}", (i * seed + 11) % 256))
        .collect();
    let (credentials, sealing) = (format!("{name}-s3"), format!("{name}-key"));
    for (secret, pairs) in [
        (
            &credentials,
            vec![
                format!("--from-literal=AWS_ACCESS_KEY_ID={}", s3("ACCESS_KEY")),
                format!("--from-literal=AWS_SECRET_ACCESS_KEY={}", s3("SECRET_KEY")),
            ],
        ),
        (&sealing, vec![format!("--from-literal=key={key}")]),
    ] {
        let mut args = vec!["create", "secret", "generic", secret.as_str()];
        args.extend(pairs.iter().map(String::as_str));
        kubectl(&args).await;
    }
    let mut backup = json!({
        "schedule": "0 0 1 1 *",
        "destination": {"s3": {"endpoint": s3("ENDPOINT"), "bucket": s3("BUCKET"),
            "prefix": prefix, "forcePathStyle": true, "credentialsSecret": credentials}},
        "encryptionKeySecret": sealing});
    if let Some(retention) = retention {
        backup["retention"] = retention;
    }
    let patch = json!({"spec": {"backup": backup}}).to_string();
    kubectl(&[
        "patch",
        "socialplatform",
        platform,
        "--type",
        "merge",
        "-p",
        &patch,
    ])
    .await;
}

/// Creates the `SocialPlatformBackup` `name` of `platform`.
async fn request_backup(platform: &str, name: &str) {
    let backup = json!({"apiVersion": "agora.dev/v1alpha1", "kind": "SocialPlatformBackup",
        "metadata": {"name": name}, "spec": {"platform": platform}});
    create(&backup).await;
}

/// Creates the `SocialPlatformBackup` `name` of `platform` and waits until it completes.
async fn take_backup(platform: &str, name: &str) {
    request_backup(platform, name).await;
    wait_phase(name, "Completed").await;
}

/// Waits until the backup `name` is in `phase`; fails at once if it ends in another.
async fn wait_phase(name: &str, phase: &str) {
    let what = format!("backup {name} to be {phase}");
    wait_ready(&what, Duration::from_secs(300), async || {
        let now = backup_phase(name).await;
        assert!(
            now == phase || !matches!(now.as_str(), "Completed" | "Failed"),
            "backup {name} ended {now}, not {phase}: {}",
            kubectl(&["get", "socialplatformbackup", name, "-o", "yaml"]).await
        );
        now == phase
    })
    .await;
}

/// `kubectl create` of an object.
async fn create(object: &Value) {
    let manifest = std::env::temp_dir().join(unique("manifest"));
    std::fs::write(&manifest, object.to_string()).unwrap();
    kubectl(&["create", "-f", manifest.to_str().unwrap()]).await;
    let _ = std::fs::remove_file(&manifest);
}

/// A new platform `name` with the first's spec (changed by `change`), on the host
/// `<name>.<the first's domain>`, once Ready; the edge that reaches it.
async fn another_platform(name: &str, change: impl FnOnce(&mut Value)) -> Edge {
    let mut spec: Value = serde_json::from_str(
        &kubectl(&[
            "get",
            "socialplatform",
            &platform(),
            "-o",
            "jsonpath={.spec}",
        ])
        .await,
    )
    .unwrap();
    let host = format!(
        "{name}.{}",
        env("AGORA_HOST").split_once('.').map_or("", |(_, d)| d)
    );
    spec["host"] = json!(host);
    spec.as_object_mut().unwrap().remove("backup");
    change(&mut spec);
    create(
        &json!({"apiVersion": "agora.dev/v1alpha1", "kind": "SocialPlatform",
        "metadata": {"name": name}, "spec": spec}),
    )
    .await;
    kubectl(&[
        "wait",
        &format!("socialplatform/{name}"),
        "--for=condition=Ready",
        "--timeout=600s",
    ])
    .await;
    Edge {
        base: env("AGORA_URL").trim_end_matches('/').to_owned(),
        host: Some(host),
        http: awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish(),
    }
}

/// Deletes the platform `restored` and the backup (a Job deletes its files), then
/// stops the first platform's backups.
async fn forget_the_drill(restored: &str, backup: &str) {
    for (kind, name) in [
        ("socialplatform", restored),
        ("socialplatformbackup", backup),
    ] {
        kubectl(&["delete", kind, name, "--wait=true", "--timeout=180s"]).await;
    }
    kubectl(&[
        "patch",
        "socialplatform",
        &platform(),
        "--type",
        "json",
        "-p",
        r#"[{"op": "remove", "path": "/spec/backup"}]"#,
    ])
    .await;
}

#[actix_web::test]
async fn an_erasure_completes_although_a_service_s_pods_are_deleted_halfway() {
    let edge = Edge::new();
    let ivy = register(&edge, "ivy").await;
    let jon = register(&edge, "jon").await;
    let post = edge
        .ok(
            "POST",
            "/api/v1/posts",
            Some(&jon.token),
            Some(json!({"text": "jon's"})),
        )
        .await;
    let post = post["id"].as_str().unwrap();
    edge.ok(
        "POST",
        &format!("/api/v1/posts/{post}/comments"),
        Some(&ivy.token),
        Some(json!({"text": "ivy was here"})),
    )
    .await;
    edge.ok(
        "PUT",
        &format!("/api/v1/relations/following/{}", jon.id),
        Some(&ivy.token),
        None,
    )
    .await;
    let deletion = leave(&edge, &ivy).await;
    // Halfway: every pod of the notifications service goes; its part waits for them.
    kubectl(&[
        "delete",
        "pod",
        "-l",
        &selector("notifications"),
        "--wait=false",
    ])
    .await;
    // Her token is refused at the edge within 2 s, through Traefik and the gateway.
    let refused = Instant::now();
    loop {
        let reply = edge
            .send("GET", "/api/v1/feed", Some(&ivy.token), None)
            .await;
        if reply.status == 401 {
            break;
        }
        assert!(
            refused.elapsed() < Duration::from_secs(2),
            "still {} after 2 s",
            reply.describe()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    erased(&edge, &deletion).await;
    let after = edge
        .ok(
            "GET",
            &format!("/api/v1/posts/{post}"),
            Some(&jon.token),
            None,
        )
        .await;
    assert_eq!(after["comment_count"], 0, "{after}");
    let profile = edge
        .ok(
            "GET",
            &format!("/api/v1/users/{}", jon.id),
            Some(&jon.token),
            None,
        )
        .await;
    assert_eq!(profile["counts"]["followers"], 0, "{profile}");
    let gone = edge
        .send(
            "GET",
            &format!("/api/v1/users/{}", ivy.id),
            Some(&jon.token),
            None,
        )
        .await;
    assert_eq!(gone.status, 404, "{}", gone.describe());
}
