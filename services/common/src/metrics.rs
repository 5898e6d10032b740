//! Prometheus metrics shared by every service: request counts and latencies per route.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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
        registry.register(
            "http_request_duration_seconds",
            "Time to produce the response head",
            latency.clone(),
        );
        Self {
            registry,
            requests,
            latency,
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

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
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
