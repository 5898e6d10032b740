//! The erasure log: each completed erasure is written (by the outbox, at least once)
//! as one object beside the backups — the account and when, no personal data — so a
//! restore of an older backup can erase the person again before the platform serves.

use agora_common::accounts::ErasureRecord;
use agora_common::jobs::{JobError, JobHandler};
use agora_common::store::{Location, StoreError};
use futures_util::future::BoxFuture;
use object_store::{ObjectStore, PutOptions, PutPayload};
use std::sync::Arc;

/// The job kind of log writes.
pub const LOG_JOB: &str = "erasure.log";

/// Writes erasure records to the log's store.
pub struct ErasureLog {
    store: Arc<dyn ObjectStore>,
}

impl ErasureLog {
    /// The log at `location` (a directory, made if missing, or `s3://bucket/prefix`).
    pub fn open(location: &Location) -> Result<Self, StoreError> {
        if let Location::Directory(dir) = location {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Invalid(format!("{}: {e}", dir.display())))?;
        }
        Ok(Self {
            store: agora_common::store::open(location)?,
        })
    }
}

impl JobHandler for ErasureLog {
    fn kind(&self) -> &'static str {
        LOG_JOB
    }

    fn run(&self, payload: serde_json::Value) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async move {
            let record: ErasureRecord = serde_json::from_value(payload).map_err(JobError::new)?;
            let body = serde_json::to_vec(&record).map_err(JobError::new)?;
            self.store
                .put_opts(
                    &object_store::path::Path::from(record.key()),
                    PutPayload::from(body),
                    PutOptions::default(),
                )
                .await
                .map_err(JobError::new)?;
            tracing::info!(user_id = %record.account_id, "erasure logged");
            Ok(())
        })
    }
}
