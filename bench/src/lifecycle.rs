//! Leaving Agora, measured: a person with `posts` posts, `comments` comments and
//! `photos` photos asks for their data export (the time until it is ready, the archive's
//! size and the time to fetch it, agora up's resident memory before and at its peak
//! meanwhile), then deletes their account (the time until their token is refused, and
//! until every service has erased them).

use crate::notify::rss_kib;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What to build and measure.
pub struct Settings {
    pub base: String,
    pub posts: usize,
    pub comments: usize,
    pub photos: usize,
    /// Each photo's width and height (distinct JPEGs).
    pub photo_size: (u32, u32),
    /// agora up's process, whose resident memory is sampled.
    pub pid: Option<u32>,
}

/// Why the measurement could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("{what}: {source}")]
    Request {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what}: HTTP {status} {body}")]
    Refused {
        what: String,
        status: u16,
        body: String,
    },
    #[error("{0}")]
    Photo(#[from] crate::baseline::BaselineError),
    #[error("{0} did not finish within {1:?}")]
    TooSlow(&'static str, Duration),
}

struct Caller<'a> {
    client: &'a reqwest::Client,
    base: &'a str,
    token: String,
}

impl Caller<'_> {
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<reqwest::Body>,
        content_type: &str,
    ) -> Result<reqwest::Response, LifecycleError> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.header("content-type", content_type).body(body);
        }
        let what = || format!("{method} {path}");
        let response = request
            .send()
            .await
            .map_err(|source| LifecycleError::Request {
                what: what(),
                source,
            })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Err(LifecycleError::Refused {
            what: what(),
            status,
            body,
        })
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, LifecycleError> {
        let response = self
            .send(
                method,
                path,
                body.map(|b| b.to_string().into()),
                "application/json",
            )
            .await?;
        let what = path.to_owned();
        let text = response
            .text()
            .await
            .map_err(|source| LifecycleError::Request { what, source })?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Samples `pid`'s resident memory every 100 ms until `stop`, keeping the peak.
fn sample_peak(
    pid: Option<u32>,
    stop: Arc<AtomicBool>,
) -> (Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
    let kept = peak.clone();
    let task = tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            kept.fetch_max(rss_kib(pid), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (peak, task)
}

/// Builds the person, exports, then erases them.
pub async fn run(client: &reqwest::Client, settings: Settings) -> Result<Value, LifecycleError> {
    let base = settings.base.as_str();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let username = format!("leaver_{}", nanos % 1_000_000_000_000);
    let password = "lifecycle-password";
    let registered = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"username": username, "email": format!("{username}@example.org"), "password": password}))
        .send()
        .await
        .map_err(|source| LifecycleError::Request {
            what: "register".into(),
            source,
        })?;
    let status = registered.status().as_u16();
    let session: Value = registered
        .json()
        .await
        .map_err(|source| LifecycleError::Request {
            what: "register".into(),
            source,
        })?;
    let token = session["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if status != 201 || token.is_empty() {
        return Err(LifecycleError::Refused {
            what: "register".into(),
            status,
            body: session.to_string(),
        });
    }
    let me = Caller {
        client,
        base,
        token,
    };

    // The person: posts, comments on them, photos.
    let built = Instant::now();
    let mut post_ids = Vec::with_capacity(settings.posts);
    for i in 0..settings.posts {
        let post = me
            .json(
                Method::POST,
                "/api/v1/posts",
                Some(json!({"text": format!("post {i} of the leaver")})),
            )
            .await?;
        post_ids.push(post["id"].as_str().unwrap_or_default().to_owned());
    }
    for i in 0..settings.comments {
        if post_ids.is_empty() {
            break;
        }
        let post = &post_ids[i % post_ids.len()];
        me.json(
            Method::POST,
            &format!("/api/v1/posts/{post}/comments"),
            Some(json!({"text": format!("comment {i}")})),
        )
        .await?;
    }
    let mut photo_bytes = 0u64;
    for i in 0..settings.photos {
        let (width, height) = settings.photo_size;
        let jpeg =
            crate::baseline::seeded_photo_jpeg(width, height, u32::try_from(i).unwrap_or(0))?;
        photo_bytes += jpeg.len() as u64;
        let boundary = "agora-bench-lifecycle";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&jpeg);
        body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"visibility\"\r\n\r\nprivate\r\n--{boundary}--\r\n").as_bytes());
        me.send(
            Method::POST,
            "/api/v1/photos",
            Some(body.into()),
            &format!("multipart/form-data; boundary={boundary}"),
        )
        .await?;
    }
    let build_seconds = built.elapsed().as_secs_f64();

    // The export, with agora up's memory sampled throughout.
    let rss_before = rss_kib(settings.pid);
    let stop = Arc::new(AtomicBool::new(false));
    let (peak, sampler) = sample_peak(settings.pid, stop.clone());
    let started = Instant::now();
    let export = me
        .json(Method::POST, "/api/v1/auth/me/exports", None)
        .await?;
    let id = export["id"].as_str().unwrap_or_default().to_owned();
    let limit = Duration::from_secs(600);
    let ready = loop {
        let status = me
            .json(Method::GET, &format!("/api/v1/auth/me/exports/{id}"), None)
            .await?;
        match status["status"].as_str() {
            Some("ready") => break status,
            Some("pending" | "running") => {}
            _ => {
                return Err(LifecycleError::Refused {
                    what: "export".into(),
                    status: 200,
                    body: status.to_string(),
                });
            }
        }
        if started.elapsed() > limit {
            return Err(LifecycleError::TooSlow("the export", limit));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let export_seconds = started.elapsed().as_secs_f64();
    let fetched = Instant::now();
    let mut archive = me
        .send(
            Method::GET,
            &format!("/api/v1/auth/me/exports/{id}/archive"),
            None,
            "",
        )
        .await?;
    let mut archive_bytes = 0u64;
    while let Some(chunk) = archive
        .chunk()
        .await
        .map_err(|source| LifecycleError::Request {
            what: "archive".into(),
            source,
        })?
    {
        archive_bytes += chunk.len() as u64;
    }
    let fetch_seconds = fetched.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let rss_peak = peak.load(Ordering::Relaxed);

    // The erasure.
    let erased = Instant::now();
    let deletion = me
        .json(
            Method::DELETE,
            "/api/v1/auth/me",
            Some(json!({"password": password})),
        )
        .await?;
    let deletion_id = deletion["deletion_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut token_refused_ms = None;
    loop {
        if token_refused_ms.is_none() {
            let probe = client
                .get(format!("{base}/api/v1/feed?limit=1"))
                .bearer_auth(&me.token)
                .send()
                .await
                .map_err(|source| LifecycleError::Request {
                    what: "feed".into(),
                    source,
                })?;
            if probe.status().as_u16() == 401 {
                token_refused_ms = Some(erased.elapsed().as_secs_f64() * 1000.0);
            }
        }
        let status: Value = client
            .get(format!("{base}/api/v1/auth/deletions/{deletion_id}"))
            .send()
            .await
            .map_err(|source| LifecycleError::Request {
                what: "deletion".into(),
                source,
            })?
            .json()
            .await
            .map_err(|source| LifecycleError::Request {
                what: "deletion".into(),
                source,
            })?;
        if status["status"] == "erased" && token_refused_ms.is_some() {
            break;
        }
        if erased.elapsed() > limit {
            return Err(LifecycleError::TooSlow("the erasure", limit));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let erase_seconds = erased.elapsed().as_secs_f64();
    Ok(json!({
        "posts": settings.posts,
        "comments": settings.comments,
        "photos": settings.photos,
        "photo_bytes": photo_bytes,
        "build_seconds": build_seconds,
        "export_seconds": export_seconds,
        "archive_bytes": archive_bytes,
        "archive_bytes_reported": ready["size_bytes"],
        "fetch_seconds": fetch_seconds,
        "rss_before_kib": rss_before,
        "rss_peak_kib": rss_peak,
        "token_refused_ms": token_refused_ms,
        "erase_seconds": erase_seconds,
    }))
}
