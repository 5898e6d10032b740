//! Prometheus metrics shared by every service: request counts and latencies per route,
//! and what the kit itself measures ([`KitMetrics`]: calls to other services, database
//! statements and pool waits, spans dropped). Labels come from bounded sets only.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::cell::RefCell;
use std::sync::{Arc, Mutex};

/// Labels of a finished request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method (`OTHER` for non-standard ones).
    pub method: &'static str,
    /// The matched route pattern (never the raw path, to bound cardinality).
    pub route: String,
    /// Status code.
    pub status: u16,
}

/// Labels of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// HTTP method (`OTHER` for non-standard ones).
    pub method: &'static str,
    /// The matched route pattern.
    pub route: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// HTTP metrics of one service, plus the registry they (and any service metrics) live in.
pub struct Metrics {
    registry: Registry,
    /// `http_requests_total`.
    pub requests: Family<RequestLabels, Counter>,
    /// `http_request_duration_seconds`.
    pub latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// `ready`: 1 when the last `/readyz` answer was ready, 0 when not; absent until the
    /// first (the kubelet asks every few seconds).
    pub ready: Family<Vec<(String, String)>, prometheus_client::metrics::gauge::Gauge>,
}

impl Metrics {
    /// A registry prefixed `agora` with the service's name as a constant label.
    pub fn new(service: &'static str) -> Self {
        let mut registry = Registry::with_prefix_and_labels(
            "agora",
            [(
                std::borrow::Cow::Borrowed("service"),
                std::borrow::Cow::Borrowed(service),
            )]
            .into_iter(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register("http_requests", "HTTP requests handled", requests.clone());
        kit_for(service).register(&mut registry);
        let ready = Family::default();
        registry.register(
            "ready",
            "Whether the last /readyz answer was ready (1) or not (0)",
            Family::clone(&ready),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to produce the response head",
            latency.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            ready,
        }
    }

    /// The registry, to add service-specific metrics before the server starts.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Counts a finished request and observes its latency.
    pub fn record(
        &self,
        method: &'static str,
        route: String,
        status: u16,
        elapsed: std::time::Duration,
    ) {
        self.latency
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    /// Records a `/readyz` answer.
    pub fn record_readiness(&self, ready: bool) {
        self.ready.get_or_create(&Vec::new()).set(i64::from(ready));
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Labels of a call to another service.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// The service called (`users`, `relations`, …).
    pub target: &'static str,
    /// `ok`, `refused` (a 4xx answer) or `failed` (unreachable, 5xx, undecodable).
    pub outcome: &'static str,
}

/// Labels of a database statement.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    /// `SELECT`, `INSERT`, … (`OTHER` for the rest).
    pub operation: &'static str,
}

/// Every `kind` of `agora_db_errors_total`.
pub const ERROR_KINDS: [&str; 7] = [
    "pool",
    "unavailable",
    "timeout",
    "unique_violation",
    "foreign_key_violation",
    "serialization_failure",
    "other",
];

/// Labels of a database failure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `pool`, `unavailable`, `timeout`, `unique_violation`, … (a fixed set).
    pub kind: &'static str,
}

/// Labels of a cache lookup.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `hit` or `miss`.
    pub result: &'static str,
}

/// Labels of the job queue's gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// The job kind (a fixed set per service).
    pub kind: String,
}

/// What the kit measures for one service, wherever in the service it happens.
#[derive(Debug)]
pub struct KitMetrics {
    /// `agora_client_calls_total`.
    pub calls: Family<CallLabels, Counter>,
    /// `agora_db_query_duration_seconds`.
    pub queries: Family<QueryLabels, Histogram, fn() -> Histogram>,
    /// `agora_db_pool_wait_seconds`.
    pub pool_wait: Histogram,
    /// `agora_db_errors_total`: failed checkouts (`pool`) and statements, by kind.
    pub db_errors: Family<ErrorLabels, Counter>,
    /// `agora_token_cache_lookups_total`: verified access tokens remembered or not.
    pub token_cache: Family<CacheLabels, Counter>,
    /// `agora_outbox_jobs`: jobs queued (due or not), per kind.
    pub outbox_jobs: Family<JobLabels, prometheus_client::metrics::gauge::Gauge>,
    /// `agora_outbox_oldest_job_age_seconds`, per kind.
    pub outbox_oldest: Family<
        JobLabels,
        prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>,
    >,
}

impl KitMetrics {
    fn new() -> Self {
        let kit = Self {
            calls: Family::default(),
            queries: Family::new_with_constructor(latency_histogram),
            pool_wait: latency_histogram(),
            db_errors: Family::default(),
            token_cache: Family::default(),
            outbox_jobs: Family::default(),
            outbox_oldest: Family::default(),
        };
        // Counters of a known label set start at zero: a first failure is then a rise
        // that `rate()` sees, not a series appearing.
        for kind in ERROR_KINDS {
            let _ = kit.db_errors.get_or_create(&ErrorLabels { kind });
        }
        for result in ["hit", "miss"] {
            let _ = kit.token_cache.get_or_create(&CacheLabels { result });
        }
        kit
    }

    /// Zero counters for calls to `target`, one per outcome (see [`KitMetrics::new`]).
    pub fn expect_calls_to(&self, target: &'static str) {
        for outcome in ["ok", "refused", "failed"] {
            let _ = self.calls.get_or_create(&CallLabels { target, outcome });
        }
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "client_calls",
            "Calls to other Agora services, by target and outcome",
            self.calls.clone(),
        );
        registry.register(
            "db_query_duration_seconds",
            "Database statement duration, by operation",
            self.queries.clone(),
        );
        registry.register(
            "db_pool_wait_seconds",
            "Time waited for a pooled database connection",
            self.pool_wait.clone(),
        );
        registry.register(
            "db_errors",
            "Database failures: no connection from the pool (pool) or a failed statement, by kind",
            self.db_errors.clone(),
        );
        registry.register(
            "token_cache_lookups",
            "Access-token verifications answered from the cache (hit) or not (miss)",
            self.token_cache.clone(),
        );
        registry.register(
            "outbox_jobs",
            "Jobs in the outbox, by kind",
            self.outbox_jobs.clone(),
        );
        registry.register(
            "outbox_oldest_job_age_seconds",
            "Age of the oldest job in the outbox, by kind",
            self.outbox_oldest.clone(),
        );
        registry.register_collector(Box::new(SpansDropped));
    }
}

static KIT: Mutex<Vec<(&'static str, Arc<KitMetrics>)>> = Mutex::new(Vec::new());

thread_local! {
    static KIT_CACHE: RefCell<Option<(&'static str, Arc<KitMetrics>)>> = const { RefCell::new(None) };
}

/// The kit metrics of `service` (made on first use).
pub fn kit_for(service: &'static str) -> Arc<KitMetrics> {
    let mut all = match KIT.lock() {
        Ok(all) => all,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some((_, kit)) = all.iter().find(|(name, _)| *name == service) {
        return kit.clone();
    }
    let kit = Arc::new(KitMetrics::new());
    all.push((service, kit.clone()));
    kit
}

/// The kit metrics of the service running on this thread or task (see
/// [`crate::telemetry::serve_as`]); the first service's when none is named.
pub fn kit() -> Arc<KitMetrics> {
    let service = crate::telemetry::current_service().or_else(|| {
        KIT.lock()
            .ok()
            .and_then(|all| all.first().map(|(name, _)| *name))
    });
    let Some(service) = service else {
        return kit_for("unknown");
    };
    KIT_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        match &*cache {
            Some((name, kit)) if *name == service => kit.clone(),
            _ => {
                let kit = kit_for(service);
                *cache = Some((service, kit.clone()));
                kit
            }
        }
    })
}

/// Counts a call to another service.
pub fn record_call(target: &'static str, outcome: &'static str) {
    kit()
        .calls
        .get_or_create(&CallLabels { target, outcome })
        .inc();
}

/// `agora_db_pool_connections{state}` and `agora_db_pool_max_connections`, read from
/// the pool at scrape time.
#[cfg(feature = "db")]
pub struct PoolGauges(pub crate::db::DbPool);

#[cfg(feature = "db")]
impl std::fmt::Debug for PoolGauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PoolGauges")
    }
}

#[cfg(feature = "db")]
impl prometheus_client::collector::Collector for PoolGauges {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::MetricType;
        use prometheus_client::metrics::gauge::ConstGauge;
        let status = self.0.status();
        let idle = i64::try_from(status.available).unwrap_or(0);
        let open = i64::try_from(status.size).unwrap_or(0);
        let mut family = encoder.encode_descriptor(
            "db_pool_connections",
            "Open pooled database connections, by state",
            None,
            MetricType::Gauge,
        )?;
        for (state, value) in [("idle", idle), ("in_use", (open - idle).max(0))] {
            let labels = [("state", state)];
            let metric = family.encode_family(&labels)?;
            ConstGauge::new(value).encode(metric)?;
        }
        let max = encoder.encode_descriptor(
            "db_pool_max_connections",
            "The pool's size limit",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::try_from(status.max_size).unwrap_or(0)).encode(max)
    }
}

/// `agora_telemetry_spans_dropped_total`: read from the exporter at scrape time.
#[derive(Debug)]
struct SpansDropped;

impl prometheus_client::collector::Collector for SpansDropped {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let counter = prometheus_client::metrics::counter::ConstCounter::new(
            crate::telemetry::spans_dropped(),
        );
        let metric = encoder.encode_descriptor(
            "telemetry_spans_dropped",
            "Spans the exporter dropped (queue full or collector failing)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        prometheus_client::encoding::EncodeMetric::encode(&counter, metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_request_counters() {
        let m = Metrics::new("auth");
        m.requests
            .get_or_create(&RequestLabels {
                method: "GET",
                route: "/x".into(),
                status: 200,
            })
            .inc();
        let text = m.encode();
        assert!(text.contains("agora_http_requests_total{"), "{text}");
        assert!(text.contains("service=\"auth\""), "{text}");
    }
}
