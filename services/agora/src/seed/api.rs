//! The public REST API as the seeder calls it: JSON or multipart in, JSON out, waiting
//! out rate limits (429 with `Retry-After`) and brief unavailability (503), and turning
//! any other refusal into an error that says which call failed and why.

use serde_json::Value;
use std::time::Duration;

/// Why seeding stopped.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The platform refused a call.
    #[error("{method} {path} answered {status}: {detail}")]
    Refused {
        method: String,
        path: String,
        status: u16,
        detail: String,
    },
    /// The platform could not be reached.
    #[error("{method} {path}: {source}")]
    Transport {
        method: String,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    /// An image could not be drawn.
    #[error("drawing a photo: {0}")]
    Image(#[from] image::ImageError),
    /// The thread drawing an image stopped.
    #[error("the thread drawing a photo stopped: {0}")]
    Drawing(#[from] tokio::task::JoinError),
    /// The platform already holds this seed's people.
    #[error(
        "{0} already exists: this platform was seeded with this --seed; use another --seed or a fresh platform"
    )]
    AlreadySeeded(String),
}

impl SeedError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A request body.
pub enum Body {
    None,
    Json(Value),
    /// A photo upload: the bytes and the text fields.
    Photo {
        bytes: Vec<u8>,
        fields: Vec<(&'static str, String)>,
    },
}

/// The platform's API at a base URL.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

const ATTEMPTS: u32 = 20;

impl Api {
    pub fn new(base: &str) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: agora_common::client::http_client()
                .timeout(Duration::from_secs(60))
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// One call; `Value::Null` for an empty answer.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &Body,
    ) -> Result<Value, SeedError> {
        let transport = |source| SeedError::Transport {
            method: method.to_string(),
            path: path.to_owned(),
            source,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request = match body {
                Body::None => request,
                Body::Json(json) => request.json(json),
                Body::Photo { bytes, fields } => {
                    let part = reqwest::multipart::Part::bytes(bytes.clone())
                        .file_name("photo.jpg")
                        .mime_str("image/jpeg")
                        .map_err(transport)?;
                    let form = fields
                        .iter()
                        .fold(reqwest::multipart::Form::new(), |form, (name, value)| {
                            form.text(*name, value.clone())
                        })
                        .part("file", part);
                    request.multipart(form)
                }
            };
            let response = request.send().await.map_err(transport)?;
            let status = response.status().as_u16();
            if matches!(status, 429 | 503) && attempt < ATTEMPTS {
                let wait = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1)
                    .clamp(1, 60);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            let text = response.text().await.map_err(transport)?;
            let json = serde_json::from_str(&text).unwrap_or(Value::Null);
            if (200..300).contains(&status) {
                return Ok(json);
            }
            return Err(SeedError::Refused {
                method: method.to_string(),
                path: path.to_owned(),
                status,
                detail: json["detail"].as_str().unwrap_or(&text).to_owned(),
            });
        }
    }
}
