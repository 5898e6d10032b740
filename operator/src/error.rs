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
}

impl Error {
    /// Every value [`Error::reason`] takes.
    pub const REASONS: &'static [&'static str] = &["build", "encode", "kube", "random"];

    /// The metric label of the failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Build(_) => "build",
            Self::Encode { .. } => "encode",
            Self::Kube { .. } => "kube",
            Self::Random(_) => "random",
        }
    }
}

/// Maps a Kubernetes API error to [`Error::Kube`] saying what was being done.
pub fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |source| Error::Kube { action, source }
}
