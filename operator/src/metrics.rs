//! The operator's own observability: Prometheus metrics of its reconciles, and a small
//! HTTP server for `/metrics`, `/healthz` and `/readyz` (the probes of its Deployment).

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The label of a failed reconcile: the error's kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// `build`, `kube`, `random`.
    pub reason: String,
}

/// The labels of a platform's backup metrics. Not `namespace`: a scrape sets that to
/// the operator's own.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlatformLabels {
    /// The platform's namespace.
    pub platform_namespace: String,
    /// The platform's name.
    pub platform: String,
}

/// Per platform with `spec.backup`: its newest completed and failed backups and its
/// schedule's period (for `AgoraBackupFailed` and `AgoraBackupTooOld`).
#[derive(Default)]
pub struct BackupMetrics {
    last_success: Family<PlatformLabels, Gauge>,
    last_failure: Family<PlatformLabels, Gauge>,
    last_size: Family<PlatformLabels, Gauge>,
    last_duration: Family<PlatformLabels, Gauge>,
    period: Family<PlatformLabels, Gauge>,
}

fn labels(namespace: &str, platform: &str) -> PlatformLabels {
    PlatformLabels {
        platform_namespace: namespace.to_owned(),
        platform: platform.to_owned(),
    }
}

impl BackupMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "backup_last_success_timestamp_seconds",
            "When the platform's newest completed backup completed (Unix time)",
            self.last_success.clone(),
        );
        registry.register(
            "backup_last_failure_timestamp_seconds",
            "When the platform's newest failed backup failed (Unix time)",
            self.last_failure.clone(),
        );
        registry.register(
            "backup_last_size_bytes",
            "The size of the platform's newest completed backup",
            self.last_size.clone(),
        );
        registry.register(
            "backup_last_duration_seconds",
            "How long the platform's newest completed backup took",
            self.last_duration.clone(),
        );
        registry.register(
            "backup_schedule_period_seconds",
            "The period of the platform's backup schedule",
            self.period.clone(),
        );
    }

    /// The platform's newest completed backup, newest failure time and period.
    pub fn record(
        &self,
        namespace: &str,
        platform: &str,
        last: Option<&crate::backup::SocialPlatformBackupStatus>,
        last_failure: Option<i64>,
        period: Option<i64>,
    ) {
        let labels = labels(namespace, platform);
        if let Some(last) = last {
            let completed = last.completed_at.as_ref().map(|t| t.0.as_second());
            if let Some(completed) = completed {
                self.last_success.get_or_create(&labels).set(completed);
            }
            if let Some(size) = last.size_bytes {
                self.last_size.get_or_create(&labels).set(size);
            }
            if let (Some(started), Some(completed)) =
                (last.started_at.as_ref().map(|t| t.0.as_second()), completed)
            {
                self.last_duration
                    .get_or_create(&labels)
                    .set(completed - started);
            }
        }
        if let Some(failed) = last_failure {
            self.last_failure.get_or_create(&labels).set(failed);
        }
        if let Some(period) = period {
            self.period.get_or_create(&labels).set(period);
        }
    }

    /// Drops a platform's series (it no longer has `spec.backup`).
    pub fn forget(&self, namespace: &str, platform: &str) {
        let labels = labels(namespace, platform);
        for family in [
            &self.last_success,
            &self.last_failure,
            &self.last_size,
            &self.last_duration,
            &self.period,
        ] {
            family.remove(&labels);
        }
    }
}

/// Reconcile metrics.
pub struct Metrics {
    /// The platforms' backups.
    pub backups: BackupMetrics,
    registry: Registry,
    reconciles: Counter,
    failures: Family<FailureLabels, Counter>,
    duration: Histogram,
    /// Whether the API server answered the last reconcile (readiness).
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("agora_operator");
        let reconciles = Counter::default();
        let failures = Family::<FailureLabels, Counter>::default();
        // Every reason starts at zero: the first failure is a rise `rate()` sees.
        for reason in crate::error::Error::REASONS {
            let _ = failures.get_or_create(&FailureLabels {
                reason: (*reason).to_owned(),
            });
        }
        let duration = Histogram::new(exponential_buckets(0.01, 2.0, 12));
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "reconcile_failures",
            "Reconciles that failed, by reason",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "How long reconciles take",
            duration.clone(),
        );
        let backups = BackupMetrics::default();
        backups.register(&mut registry);
        Self {
            backups,
            registry,
            reconciles,
            failures,
            duration,
            ready: AtomicBool::new(true),
        }
    }
}

impl Metrics {
    /// Starts timing a reconcile.
    pub fn start(&self) -> Instant {
        self.reconciles.inc();
        Instant::now()
    }

    /// Records a reconcile's end.
    pub fn finish(&self, started: Instant, failure: Option<&'static str>) {
        self.duration.observe(started.elapsed().as_secs_f64());
        if let Some(reason) = failure {
            self.failures
                .get_or_create(&FailureLabels {
                    reason: reason.to_owned(),
                })
                .inc();
        }
        // Ready while the API server answers: a failure that is not about the API
        // (a bad spec) leaves readiness alone.
        self.ready.store(failure != Some("kube"), Ordering::Relaxed);
    }

    /// The text `/metrics` serves.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

fn route(metrics: &Metrics, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&hyper::Method::GET, "/metrics") => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        (&hyper::Method::GET, "/healthz") => respond(
            StatusCode::OK,
            "application/json",
            r#"{"status":"ok"}"#.into(),
        ),
        (&hyper::Method::GET, "/readyz") if metrics.ready.load(Ordering::Relaxed) => respond(
            StatusCode::OK,
            "application/json",
            r#"{"status":"ready"}"#.into(),
        ),
        (&hyper::Method::GET, "/readyz") => respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "application/json",
            r#"{"status":"not ready","reason":"the Kubernetes API is failing"}"#.into(),
        ),
        _ => respond(
            StatusCode::NOT_FOUND,
            "application/json",
            r#"{"status":404}"#.into(),
        ),
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "ops listener accept failed");
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let response = route(&metrics, &req);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(%error, %peer, "ops connection ended with an error");
            }
        });
    }
}

/// Where the ops server listens: `OPS_LISTEN_ADDR`, default `0.0.0.0:9090`.
pub fn listen_addr() -> SocketAddr {
    std::env::var("OPS_LISTEN_ADDR")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 9090)))
}
