//! Shared helpers for the end-to-end tests: a platform on a fresh set of databases,
//! and a small JSON client for its gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test
#![allow(dead_code)]

use agora::{Platform, PlatformConfig};
use agora_common::testing;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;

pub struct TestPlatform {
    pub platform: Option<Platform>,
    pub base: String,
    pub state_dir: PathBuf,
    pub config: PlatformConfig,
}

pub fn config() -> PlatformConfig {
    let state_dir = std::env::temp_dir().join(testing::unique_prefix("agora_state"));
    let mut config = PlatformConfig::new(
        testing::server_url(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        state_dir,
    );
    config.database_prefix = testing::unique_prefix("e2e");
    config.workers = 1;
    // Generous by default; the throttling tests set their own.
    config.auth_limits.registrations_per_minute = 10_000;
    config.auth_limits.logins_per_minute = 10_000;
    config
}

pub async fn start() -> TestPlatform {
    start_with(config()).await
}

pub async fn start_with(config: PlatformConfig) -> TestPlatform {
    let platform = match Platform::start(config.clone()).await {
        Ok(p) => p,
        Err(e) => panic!("platform did not start: {e}"),
    };
    TestPlatform {
        base: format!("http://{}", platform.gateway_addr),
        platform: Some(platform),
        state_dir: config.state_dir.clone(),
        config,
    }
}

impl TestPlatform {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn listening(&self, name: &str) -> agora::Listening {
        self.platform
            .as_ref()
            .and_then(|p| p.service(name))
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    /// A URL on a service's own API port (bypassing the gateway).
    pub fn service_url(&self, name: &str, path: &str) -> String {
        format!("http://{}{path}", self.listening(name).api)
    }

    /// A URL on a service's operations port.
    pub fn ops_url(&self, name: &str, path: &str) -> String {
        format!("http://{}{path}", self.listening(name).ops)
    }

    pub async fn stop(&mut self) {
        if let Some(p) = self.platform.take() {
            p.stop().await;
        }
    }
}

impl Drop for TestPlatform {
    /// The state dir only holds the test's signing key; the databases live on the
    /// throwaway cluster that `hack/test.sh` removes.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: awc::http::header::HeaderMap,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 9457 problem with this status.
    pub fn assert_problem(&self, status: u16) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{:?}",
            self.headers
        );
        assert_eq!(self.body["status"], status, "{}", self.body);
        assert!(
            self.body["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("https://")),
            "{}",
            self.body
        );
        assert!(
            self.body["title"].is_string() && self.body["detail"].is_string(),
            "{}",
            self.body
        );
        assert!(self.header("x-request-id").is_some(), "no request id");
    }

    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap()
    }
}

pub fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .finish()
}

/// Sends `req` with an optional bearer token, headers and raw body: the status, the
/// headers and the body, or why there are none.
pub async fn exchange(
    mut req: awc::ClientRequest,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<(&str, Vec<u8>)>,
) -> Result<(u16, awc::http::header::HeaderMap, Vec<u8>), String> {
    if let Some(token) = token {
        req = req.insert_header(("authorization", format!("Bearer {token}")));
    }
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let sent = match body {
        Some((content_type, bytes)) => {
            req.insert_header(("content-type", content_type))
                .send_body(bytes)
                .await
        }
        None => req.send().await,
    };
    let mut resp = sent.map_err(|e| e.to_string())?;
    let raw = resp
        .body()
        .limit(16 * 1024 * 1024)
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_vec();
    Ok((resp.status().as_u16(), resp.headers().clone(), raw))
}

/// Sends a request with an optional bearer token and raw body.
pub async fn send(
    method: &str,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<(&str, Vec<u8>)>,
) -> Reply {
    let method =
        awc::http::Method::from_bytes(method.as_bytes()).unwrap_or_else(|_| panic!("method"));
    let (status, headers, raw) = exchange(client().request(method, url), token, headers, body)
        .await
        .unwrap_or_else(|e| panic!("request to {url} failed: {e}"));
    Reply {
        status,
        headers,
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw,
    }
}

pub async fn post_json(url: &str, token: Option<&str>, body: Value) -> Reply {
    send(
        "POST",
        url,
        token,
        &[],
        Some(("application/json", body.to_string().into_bytes())),
    )
    .await
}

pub async fn post_raw(url: &str, content_type: &str, body: Vec<u8>) -> Reply {
    send("POST", url, None, &[], Some((content_type, body))).await
}

pub async fn get(url: &str, token: Option<&str>) -> Reply {
    send("GET", url, token, &[], None).await
}

/// Registers `name` (password `password-<name>`) and returns the token response.
pub async fn register(p: &TestPlatform, name: &str) -> Value {
    let reply = post_json(
        &p.url("/api/v1/auth/register"),
        None,
        json!({"username": name, "email": format!("{name}@example.org"), "password": format!("password-{name}")}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

/// The status of `GET /auth/me` with the access token of a token response.
pub async fn me_status(p: &TestPlatform, session: &Value) -> u16 {
    get(
        &p.url("/api/v1/auth/me"),
        Some(&token(session, "access_token")),
    )
    .await
    .status
}

pub fn token(body: &Value, field: &str) -> String {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {body}"))
        .to_owned()
}

// A person's calls through the gateway, as the social scenarios make them.

/// A registered person.
pub struct Person {
    pub id: String,
    pub name: String,
    pub token: String,
}

pub async fn person(p: &TestPlatform, name: &str) -> Person {
    let body = register(p, name).await;
    Person {
        id: body["user"]["id"].as_str().unwrap().to_owned(),
        name: name.to_owned(),
        token: token(&body, "access_token"),
    }
}

pub async fn call(
    p: &TestPlatform,
    who: &Person,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Reply {
    send(
        method,
        &p.url(path),
        Some(&who.token),
        &[],
        body.map(|b| ("application/json", b.to_string().into_bytes())),
    )
    .await
}

pub async fn ok(
    p: &TestPlatform,
    who: &Person,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let reply = call(p, who, method, path, body).await;
    assert!(
        (200..300).contains(&reply.status),
        "{method} {path}: {} {}",
        reply.status,
        reply.body
    );
    reply.body
}

pub async fn befriend(p: &TestPlatform, a: &Person, b: &Person) {
    let request = ok(
        p,
        a,
        "POST",
        "/api/v1/relations/friend-requests",
        Some(json!({"to": b.id})),
    )
    .await;
    let id = request["id"].as_str().unwrap();
    let accepted = ok(
        p,
        b,
        "POST",
        &format!("/api/v1/relations/friend-requests/{id}/accept"),
        None,
    )
    .await;
    assert_eq!(accepted["status"], "accepted");
}

pub fn texts(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|post| post["text"].as_str().unwrap().to_owned())
        .collect()
}

/// A small PNG whose pixels depend on `seed`.
pub fn png(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8, y as u8, seed]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

pub async fn upload(
    p: &TestPlatform,
    who: &Person,
    file: &[u8],
    visibility: &str,
    tags: &str,
) -> Value {
    let boundary = "agora-e2e-boundary";
    let mut body = Vec::new();
    body.extend(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.png\"\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend(file);
    for (name, value) in [("visibility", visibility), ("tags", tags)] {
        body.extend(
            format!(
                "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}"
            )
            .as_bytes(),
        );
    }
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let reply = send(
        "POST",
        &p.url("/api/v1/photos"),
        Some(&who.token),
        &[],
        Some((&content_type, body)),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

/// A server-sent event stream read as an `EventSource` would: events split at blank
/// lines (bytes are buffered until then, so a character split across chunks is whole).
pub struct Events {
    body: std::pin::Pin<
        Box<
            dyn futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>,
        >,
    >,
    buffer: Vec<u8>,
}

/// One server-sent event (a comment line is `event` ":").
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl Events {
    /// Sends `req`; the stream when it answers 200 `text/event-stream`, else the status.
    pub async fn send(req: awc::ClientRequest) -> Result<Self, u16> {
        let resp = req.send().await.unwrap();
        if resp.status() != 200 {
            return Err(resp.status().as_u16());
        }
        assert_eq!(
            resp.headers().get("content-type").unwrap(),
            "text/event-stream"
        );
        Ok(Self {
            body: Box::pin(resp),
            buffer: Vec::new(),
        })
    }

    /// `GET url` with an optional bearer token and `Last-Event-ID`.
    pub async fn open(
        url: &str,
        token: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Result<Self, u16> {
        let mut req = client().get(url);
        if let Some(token) = token {
            req = req.insert_header(("authorization", format!("Bearer {token}")));
        }
        if let Some(id) = last_event_id {
            req = req.insert_header(("last-event-id", id));
        }
        Self::send(req).await
    }

    /// The next event (comments included), within `wait`.
    pub async fn next(&mut self, wait: std::time::Duration) -> Option<Event> {
        use futures_util::StreamExt;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let mut event = Event {
                    id: None,
                    event: "message".into(),
                    data: String::new(),
                };
                for line in String::from_utf8(block).unwrap().lines() {
                    if let Some(comment) = line.strip_prefix(':') {
                        event.event = ":".into();
                        event.data = comment.trim().into();
                    } else if let Some((field, value)) = line.split_once(": ") {
                        match field {
                            "id" => event.id = Some(value.into()),
                            "event" => event.event = value.into(),
                            "data" => event.data = value.into(),
                            _ => {}
                        }
                    }
                }
                return Some(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??;
            self.buffer.extend_from_slice(&chunk.ok()?);
        }
    }

    /// The next event of this type (others, such as `unread` counts, skipped), within
    /// `wait` in all.
    pub async fn next_of(&mut self, event: &str, wait: std::time::Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let next = self.next(left).await?;
            if next.event == event {
                return Some(next);
            }
        }
    }

    /// The next event that is not a comment.
    pub async fn next_event(&mut self, wait: std::time::Duration) -> Option<Event> {
        loop {
            let event = self.next(wait).await?;
            if event.event != ":" {
                return Some(event);
            }
        }
    }
}

/// A variable of the tests' S3 server (versitygw, `hack/s3-server.sh`).
pub fn s3_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is unset: run the tests with hack/test.sh, or eval \"$(hack/s3-server.sh start)\"")
    })
}
