//! Integration-test helper for the local Kubernetes control plane of `hack/k8s-env.sh`.
//!
//! Start the control plane once (it builds its binaries on first use), then run tests:
//!
//! ```text
//! eval "$(hack/k8s-env.sh start)"     # exports KUBECONFIG
//! cargo test -p <crate>
//! hack/k8s-env.sh stop
//! ```
//!
//! [`TestEnv::connect`] returns an error naming `hack/k8s-env.sh start` when `KUBECONFIG`
//! is unset or the API server is not ready: tests using it fail, they never skip.
//! [`TestEnv::namespace`] creates a fresh, labelled namespace per test; call
//! [`TestNamespace::cleanup`] at the end of the test (dropping it deletes the namespace too,
//! best-effort, so a failing test does not leak it).

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::fmt::Debug;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde::de::DeserializeOwned;

/// Label set on every namespace created by this crate.
pub const MANAGED_LABEL: &str = "agora.dev/test-env";
/// Label carrying the prefix (usually the test name) a namespace was created for.
pub const PREFIX_LABEL: &str = "agora.dev/test-prefix";

/// How to start the control plane; repeated in every connection error.
pub const START_HINT: &str = "start the local control plane first: eval \"$(hack/k8s-env.sh start)\" \
     (from the repository root; it exports KUBECONFIG)";

/// Errors of the test helper. `Debug` prints the message (with its cause), so a test returning
/// `Result<(), Box<dyn Error>>` (or using `expect`) fails with a readable explanation.
#[derive(thiserror::Error)]
pub enum Error {
    /// `KUBECONFIG` is not set.
    #[error("KUBECONFIG is not set; {START_HINT}")]
    KubeconfigUnset,
    /// The kubeconfig could not be loaded.
    #[error("cannot load kubeconfig {path}: {source}; {START_HINT}")]
    Kubeconfig {
        /// Value of `KUBECONFIG`.
        path: String,
        /// Cause.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The API server did not answer `/readyz` with `ok`.
    #[error("the Kubernetes API server at {server} is not ready ({detail}); {START_HINT}")]
    NotReady {
        /// API server URL from the kubeconfig.
        server: String,
        /// What went wrong.
        detail: String,
    },
    /// A Kubernetes API call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A condition was not met in time.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        timeout: Duration,
    },
}

impl Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Every message already includes its cause.
        write!(f, "{self}")
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A connection to the running local control plane.
#[derive(Clone)]
pub struct TestEnv {
    client: Client,
    config: Config,
}

impl TestEnv {
    /// Connects using `KUBECONFIG` and checks that the API server is ready.
    ///
    /// Fails (never skips) with a message naming `hack/k8s-env.sh start` when `KUBECONFIG`
    /// is unset or the control plane is not running.
    pub async fn connect() -> Result<Self> {
        match std::env::var_os("KUBECONFIG") {
            Some(p) if !p.is_empty() => Self::connect_to(Path::new(&p)).await,
            _ => Err(Error::KubeconfigUnset),
        }
    }

    /// Like [`TestEnv::connect`], with an explicit kubeconfig file instead of `KUBECONFIG`.
    pub async fn connect_to(kubeconfig: &Path) -> Result<Self> {
        let path = kubeconfig.display().to_string();
        let kubeconfig_error = |source| Error::Kubeconfig {
            path: path.clone(),
            source,
        };
        let kubeconfig = Kubeconfig::read_from(kubeconfig).map_err(kubeconfig_error)?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(kubeconfig_error)?;
        let server = config.cluster_url.to_string();
        install_tls_provider();
        let client = Client::try_from(config.clone())?;
        let not_ready = |detail: String| Error::NotReady {
            server: server.clone(),
            detail,
        };
        let request = http::Request::get("/readyz")
            .body(Vec::new())
            .map_err(|e| not_ready(e.to_string()))?;
        match tokio::time::timeout(Duration::from_secs(20), client.request_text(request)).await {
            Ok(Ok(body)) if body.trim() == "ok" => Ok(Self { client, config }),
            Ok(Ok(body)) => Err(not_ready(format!("/readyz answered {body:?}"))),
            Ok(Err(e)) => Err(not_ready(e.to_string())),
            Err(_) => Err(not_ready("/readyz did not answer within 20s".to_owned())),
        }
    }

    /// The client (cheap to clone).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The client configuration loaded from `KUBECONFIG`.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Creates a fresh namespace `<prefix>-<random>`, labelled [`MANAGED_LABEL`]`=true`,
    /// and waits until its `default` ServiceAccount exists (so pods can be created at once).
    pub async fn namespace(&self, prefix: &str) -> Result<TestNamespace> {
        let prefix = sanitize_prefix(prefix);
        let name = format!("{prefix}-{}", random_suffix());
        let labels = BTreeMap::from([
            (MANAGED_LABEL.to_owned(), "true".to_owned()),
            (PREFIX_LABEL.to_owned(), prefix.clone()),
        ]);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        let namespace = TestNamespace {
            name,
            client: self.client.clone(),
            config: self.config.clone(),
            cleaned: false,
        };
        let sa: Api<ServiceAccount> = namespace.api();
        wait_until(
            &format!("ServiceAccount default in namespace {}", namespace.name),
            Duration::from_secs(30),
            || async { Ok(sa.get_opt("default").await?.is_some()) },
        )
        .await?;
        Ok(namespace)
    }
}

/// A namespace owned by one test; deleted by [`TestNamespace::cleanup`] or, best-effort, on drop.
pub struct TestNamespace {
    name: String,
    client: Client,
    config: Config,
    cleaned: bool,
}

impl Debug for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNamespace")
            .field("name", &self.name)
            .field("cleaned", &self.cleaned)
            .finish()
    }
}

impl TestNamespace {
    /// The namespace name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client (cheap to clone).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// A namespaced API handle in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Deletes the namespace and waits (up to 2 minutes) until it is gone.
    pub async fn cleanup(mut self) -> Result<()> {
        self.cleaned = true;
        delete_namespace(&self.client, &self.name).await?;
        let api = Api::<Namespace>::all(self.client.clone());
        wait_until(
            &format!("namespace {} to be deleted", self.name),
            Duration::from_secs(120),
            || async { Ok(api.get_opt(&self.name).await?.is_none()) },
        )
        .await
    }
}

impl Drop for TestNamespace {
    /// Best-effort: sends the delete request (does not wait for the namespace to go).
    ///
    /// Runs on its own thread and runtime with a new client, so it neither needs nor blocks
    /// the test's runtime (whose connections may not be driven while we wait here).
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let name = self.name.clone();
        let config = self.config.clone();
        let outcome = std::thread::spawn(move || -> std::result::Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let client = Client::try_from(config).map_err(|e| e.to_string())?;
                tokio::time::timeout(Duration::from_secs(15), delete_namespace(&client, &name))
                    .await
                    .map_err(|_| "timed out".to_owned())?
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!(
                "agora-kube-testenv: could not delete namespace {}: {e}",
                self.name
            ),
            Err(_) => eprintln!(
                "agora-kube-testenv: namespace {} cleanup thread panicked",
                self.name
            ),
        }
    }
}

async fn delete_namespace(client: &Client, name: &str) -> Result<()> {
    match Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Polls `check` every 250 ms until it returns `Ok(true)`, an error, or `timeout` passes.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: what.to_owned(),
                timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls object `name` until `ready` holds for it (a missing object counts as not ready).
pub async fn wait_for_object<K, P>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    mut ready: P,
) -> Result<K>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug,
    P: FnMut(&K) -> bool,
{
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        if let Some(obj) = api.get_opt(name).await? {
            if ready(&obj) {
                return Ok(obj);
            }
            last = Some(obj);
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("{name} (last seen: {last:?})"),
                timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Lower-cases `prefix` and keeps it a valid DNS-1123 label start (room left for the suffix).
fn sanitize_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(50);
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() {
        "test".to_owned()
    } else {
        out
    }
}

/// 8 random-ish lowercase alphanumerics (std only: a randomly keyed hash of time and a counter).
fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    let mut n = hasher.finish();
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut s = String::with_capacity(8);
    for _ in 0..8 {
        let idx = usize::try_from(n % 36).unwrap_or_default();
        s.push(char::from(ALPHABET[idx]));
        n /= 36;
    }
    s
}

/// kube's TLS provider (ring), installed once per process: a workspace build also
/// compiles rustls's aws-lc-rs (for the photos service's S3 client), and with two
/// providers rustls chooses neither on its own.
fn install_tls_provider() {
    // Err: one is installed already, which is all this wants.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_kubeconfig_fails_with_start_hint() {
        let dir = std::env::temp_dir().join(format!("agora-testenv-{}", random_suffix()));
        let err = TestEnv::connect_to(&dir.join("kubeconfig")).await.err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("hack/k8s-env.sh start"), "{msg}");
    }

    #[tokio::test]
    async fn unreachable_api_server_fails_with_start_hint()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        // A port nobody listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = std::env::temp_dir().join(format!("agora-testenv-{}", random_suffix()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n\
                 users:\n- name: u\n  user:\n    token: x\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n\
                 current-context: c\n"
            ),
        )?;
        let result = TestEnv::connect_to(&path).await;
        std::fs::remove_dir_all(&dir)?;
        match result {
            Err(e @ Error::NotReady { .. }) => {
                assert!(e.to_string().contains("hack/k8s-env.sh start"), "{e}");
                Ok(())
            }
            Err(e) => Err(format!("unexpected error: {e}").into()),
            Ok(_) => Err("connected to a closed port".into()),
        }
    }

    #[test]
    fn prefixes_are_dns_labels() {
        assert_eq!(
            sanitize_prefix("Deployment_GC::works"),
            "deployment-gc-works"
        );
        assert_eq!(sanitize_prefix("--"), "test");
        assert!(sanitize_prefix(&"x".repeat(100)).len() <= 50);
    }

    #[test]
    fn suffixes_differ() {
        let a = random_suffix();
        let b = random_suffix();
        assert_eq!(a.len(), 8);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }
}
