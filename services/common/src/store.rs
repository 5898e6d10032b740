//! Where objects outside the databases are kept — a directory, or an S3-compatible
//! bucket — opened the same way by whoever writes there: the backups, and the auth
//! service's erasure log that sits beside them.

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::prefix::PrefixStore;
use std::sync::Arc;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The location or the credentials are unusable.
    #[error("{0}")]
    Invalid(String),
    /// The store refused.
    #[error("{what}")]
    Store {
        what: String,
        #[source]
        source: object_store::Error,
    },
}

/// A directory, or `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// A directory on this machine.
    Directory(std::path::PathBuf),
    /// A bucket (and a key prefix, possibly empty) of an S3-compatible store.
    S3 {
        /// The bucket.
        bucket: String,
        /// Keys start with `<prefix>/`.
        prefix: String,
    },
}

impl Location {
    /// `s3://bucket/prefix` or a path.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let Some(rest) = text.strip_prefix("s3://") else {
            return Ok(Self::Directory(text.into()));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(StoreError::Invalid(format!("{text}: no bucket")));
        }
        Ok(Self::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }
}

impl std::str::FromStr for Location {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Directory(dir) => write!(f, "{}", dir.display()),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// `scheme://bucket.host[:port][/path]` from an endpoint URL: the virtual-hosted form
/// object_store expects as the endpoint.
fn bucket_host(endpoint: &str, bucket: &str) -> String {
    match endpoint.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{bucket}.{rest}"),
        None => format!("{bucket}.{endpoint}"),
    }
}

/// The store at `location` (a directory must exist). A bucket is reached with the
/// standard variables: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`
/// (default us-east-1) and `AWS_ENDPOINT_URL` for a store other than AWS (then
/// path-style requests unless `AWS_S3_FORCE_PATH_STYLE=false`, plain HTTP allowed when
/// the URL says so).
pub fn open(location: &Location) -> Result<Arc<dyn ObjectStore>, StoreError> {
    open_as(location, "")
}

/// [`open`] with each variable's name prefixed by `vars` (`PHOTOS_AWS_ACCESS_KEY_ID`,
/// …): for a second store whose credentials differ from the first's.
pub fn open_as(location: &Location, vars: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let label = location.to_string();
    let store_err = |source| StoreError::Store {
        what: label.clone(),
        source,
    };
    Ok(match location {
        Location::Directory(dir) => {
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(store_err)?)
        }
        Location::S3 { bucket, prefix } => {
            let var = |name: &str| {
                std::env::var(format!("{vars}{name}"))
                    .ok()
                    .filter(|v| !v.is_empty())
            };
            let (Some(key), Some(secret)) =
                (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
            else {
                return Err(StoreError::Invalid(format!(
                    "{label}: set {vars}AWS_ACCESS_KEY_ID and {vars}AWS_SECRET_ACCESS_KEY"
                )));
            };
            let region = var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".into());
            let mut builder = AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region(region)
                .with_access_key_id(key)
                .with_secret_access_key(secret);
            if let Some(endpoint) = var("AWS_ENDPOINT_URL") {
                // Path-style unless AWS_S3_FORCE_PATH_STYLE=false asks for the bucket in
                // the host name (what most stores but AWS need is path-style).
                let virtual_hosted = var("AWS_S3_FORCE_PATH_STYLE").as_deref() == Some("false");
                let endpoint = if virtual_hosted {
                    bucket_host(&endpoint, bucket)
                } else {
                    endpoint
                };
                builder = builder
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_endpoint(endpoint)
                    .with_virtual_hosted_style_request(virtual_hosted);
            }
            let bucket = builder.build().map_err(store_err)?;
            if prefix.is_empty() {
                Arc::new(bucket)
            } else {
                Arc::new(PrefixStore::new(bucket, prefix.as_str()))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_virtual_hosted_endpoint_names_the_bucket_in_the_host() {
        assert_eq!(
            bucket_host("https://s3.example.com", "backups"),
            "https://backups.s3.example.com"
        );
        assert_eq!(
            bucket_host("http://minio:9000/", "b"),
            "http://b.minio:9000/"
        );
    }

    #[test]
    fn locations_are_a_bucket_with_a_prefix_or_a_directory() {
        assert_eq!(
            Location::parse("s3://backups/agora/prod/").unwrap(),
            Location::S3 {
                bucket: "backups".into(),
                prefix: "agora/prod".into()
            }
        );
        assert_eq!(
            Location::parse("s3://backups").unwrap(),
            Location::S3 {
                bucket: "backups".into(),
                prefix: String::new()
            }
        );
        assert!(Location::parse("s3:///x").is_err());
        assert_eq!(
            Location::parse("./b").unwrap(),
            Location::Directory("./b".into())
        );
    }
}
