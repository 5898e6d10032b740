//! Building a person's export: a job of the auth service's outbox reads each service's
//! part through its internal route and writes the zip as the parts stream in, straight
//! into the photos service's storage (a streamed upload): no file, and never the
//! archive, is held whole.

use crate::archive::{ArchiveError, ZipStream};
use crate::db;
use agora_common::accounts::export_path;
use agora_common::client::{ClientError, ClientSettings, Credential, ServiceClient, ServiceToken};
use agora_common::db::DbPool;
use agora_common::jobs::{JobError, JobHandler};
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use std::time::Duration;
use uuid::Uuid;

/// The files each service contributes, in archive order (`photos/<id>.<ext>` follow).
const PARTS: [(&str, &str); 8] = [
    ("users", "profile.json"),
    ("users", "posts.json"),
    ("users", "comments.json"),
    ("users", "reactions.json"),
    ("relations", "relations.json"),
    ("events", "events.json"),
    ("notifications", "notifications.json"),
    ("photos", "photos.json"),
];

/// How long one export may take (the job's lease is longer).
pub const EXPORT_BUDGET: Duration = Duration::from_secs(600);

/// An archive file the photos service lists.
#[derive(Debug, serde::Deserialize)]
struct PhotoFile {
    id: Uuid,
    path: String,
}

/// Builds exports: the services holding a part, and the photos service, which also
/// keeps the archives.
pub struct Export {
    pool: DbPool,
    services: Vec<(&'static str, ServiceClient)>,
}

impl Export {
    /// An exporter reading from `services` (`(name, base URL)`).
    pub fn new(
        pool: DbPool,
        services: &[(&'static str, String)],
        token: &ServiceToken,
    ) -> Result<Self, ClientError> {
        let services = services
            .iter()
            .map(|(name, url)| {
                let settings = ClientSettings {
                    timeout: EXPORT_BUDGET,
                    service_token: Some(token.clone()),
                    ..Default::default()
                };
                Ok((
                    *name,
                    ServiceClient::new(name, url, settings)?.without_retries(),
                ))
            })
            .collect::<Result<_, ClientError>>()?;
        Ok(Self { pool, services })
    }

    fn client(&self, name: &str) -> Option<&ServiceClient> {
        self.services
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| c)
    }

    /// Writes every part of `user`'s data into `zip`.
    async fn write<S: crate::archive::Sink + Send>(
        &self,
        zip: &mut ZipStream<S>,
        user: Uuid,
    ) -> Result<(), ExportError> {
        for (service, file) in PARTS {
            // A service the platform does not run has nothing of anybody.
            let Some(client) = self.client(service) else {
                continue;
            };
            let body = client.get_stream(&export_path(user, file)).await?;
            zip.add(file, body).await?;
        }
        let Some(photos) = self.client("photos") else {
            return Ok(());
        };
        let mut after: Option<Uuid> = None;
        loop {
            let path = match after {
                Some(id) => format!("/internal/accounts/{user}/export-files?after={id}"),
                None => format!("/internal/accounts/{user}/export-files"),
            };
            let page: Vec<PhotoFile> = photos.get(&path, Credential::Service, None).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.id);
            for file in &page {
                let bytes = photos
                    .get_stream(&format!(
                        "/internal/accounts/{user}/export-files/{}",
                        file.id
                    ))
                    .await?;
                zip.add(&file.path, bytes).await?;
            }
        }
    }

    /// Builds `user`'s archive `id` and stores it; its size.
    async fn build(&self, user: Uuid, id: Uuid) -> Result<u64, ExportError> {
        let photos = self.client("photos").ok_or(ExportError::NoStorage)?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(8);
        let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        });
        let body = reqwest::Body::wrap_stream(chunks);
        let target = format!("/internal/exports/{user}/{id}");
        let upload = photos.put_stream(&target, body);
        let write = async {
            let mut zip = ZipStream::new(tx, chrono::Utc::now());
            match self.write(&mut zip, user).await {
                Ok(()) => Ok(zip.finish().await?.0),
                Err(e) => {
                    // The upload must fail, not store a truncated archive.
                    zip.abort().await;
                    Err(e)
                }
            }
        };
        let (uploaded, written) = futures_util::join!(upload, write);
        let size = written?;
        uploaded?;
        Ok(size)
    }
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A service's part could not be read, or the archive stored.
    #[error(transparent)]
    Service(#[from] agora_common::ApiError),
    /// The archive could not be written.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The platform has no photos service to keep archives.
    #[error("no photos service to store the archive")]
    NoStorage,
}

impl JobHandler for Export {
    fn kind(&self) -> &'static str {
        db::EXPORT_JOB
    }

    fn run(&self, payload: serde_json::Value) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async move {
            let id: Uuid = payload["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| JobError::new("an export job without its id"))?;
            let user = {
                let mut conn = self.pool.get().await.map_err(JobError::new)?;
                db::start_export(&mut conn, id)
                    .await
                    .map_err(JobError::new)?
            };
            let Some(user) = user else {
                return Ok(()); // finished, or its account was erased
            };
            let started = std::time::Instant::now();
            let built = self.build(user, id).await;
            let size = match &built {
                Ok(size) => {
                    tracing::info!(user_id = %user, export = %id, size, elapsed_ms = started.elapsed().as_millis() as u64, "export ready");
                    Some(*size)
                }
                Err(error) => {
                    tracing::warn!(user_id = %user, export = %id, error = %agora_common::problem::Chain(error), "export failed");
                    None
                }
            };
            let mut conn = self.pool.get().await.map_err(JobError::new)?;
            db::finish_export(&mut conn, id, size)
                .await
                .map_err(JobError::new)
        })
    }
}

/// Deletes the archives past their 7 days, then marks them expired (a failed deletion is
/// retried at the next round).
pub async fn expire(pool: &DbPool, photos: &ServiceClient) -> Result<usize, JobError> {
    let mut conn = pool.get().await.map_err(JobError::new)?;
    let due = db::expired_exports(&mut conn)
        .await
        .map_err(JobError::new)?;
    let mut expired = 0;
    for (user, id) in due {
        photos
            .send::<(), serde_json::Value>(
                reqwest::Method::DELETE,
                &format!("/internal/exports/{user}/{id}"),
                None,
                Credential::Service,
                None,
            )
            .await
            .map_err(JobError::new)?;
        db::expire_export(&mut conn, id)
            .await
            .map_err(JobError::new)?;
        expired += 1;
    }
    Ok(expired)
}

/// The archive's bytes, streamed from the photos service.
pub async fn archive(
    photos: &ServiceClient,
    user: Uuid,
    id: Uuid,
) -> Result<
    impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + use<>,
    agora_common::ApiError,
> {
    let stream = photos
        .get_stream(&format!("/internal/exports/{user}/{id}"))
        .await?;
    Ok(stream.map_err(std::io::Error::other).boxed())
}
