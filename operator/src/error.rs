//! Why a reconcile failed: one enum for every stage, whose variants also name the
//! failure in the reconcile metrics.

use crate::owner::BuildError;
use crate::secrets::RandomError;

/// Why a reconcile failed; it is retried with per-object backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The resource cannot be built (it was never stored).
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A child could not be encoded for the API (a bug: builders make typed objects).
    #[error("encoding {what}: {source}")]
    Encode {
        /// Which child.
        what: String,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// A Kubernetes API call failed.
    #[error("{action}: {source}")]
    Kube {
        /// What was being done.
        action: String,
        /// The API's answer.
        #[source]
        source: kube::Error,
    },
    /// A secret could not be generated.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// A backup's finalizer could not be added, run or removed.
    #[error("backup finalizer")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// Not done yet (a backup's files being deleted): retried shortly.
    #[error("waiting for {0}")]
    Waiting(String),
}

impl Error {
    /// Every value [`Error::reason`] takes.
    pub const REASONS: &'static [&'static str] =
        &["build", "encode", "kube", "random", "finalizer", "waiting"];

    /// The metric label of the failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Build(_) => "build",
            Self::Encode { .. } => "encode",
            Self::Kube { .. } => "kube",
            Self::Random(_) => "random",
            Self::Finalizer(_) => "finalizer",
            Self::Waiting(_) => "waiting",
        }
    }
}

/// Maps a Kubernetes API error to [`Error::Kube`] saying what was being done.
pub fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |source| Error::Kube { action, source }
}
