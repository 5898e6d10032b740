//! W3C trace context in and out: an incoming `traceparent` is the parent a request's
//! root span continues ([`super::start_trace`]), an outgoing call (or a queued job)
//! carries the current one.
//!
//! What a client sends is input: a `traceparent` that is not exactly one well-formed
//! header, or a `tracestate` longer than the W3C limit, is ignored (a fresh trace
//! starts) and fails nothing.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `traceparent` is `00-<32 hex>-<16 hex>-<2 hex>`: 55 bytes for version 00.
const TRACEPARENT_MAX: usize = 55;
/// W3C: at most 32 list members; 512 bytes is what the spec asks to keep.
const TRACESTATE_MAX: usize = 512;

struct Headers<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(self.traceparent),
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// The remote parent named by these headers, when they are acceptable.
pub fn extract(headers: &actix_web::http::header::HeaderMap) -> Option<Context> {
    if !super::tracing_enabled() {
        return None;
    }
    let mut parents = headers.get_all("traceparent");
    let traceparent = parents.next()?;
    if parents.next().is_some() || traceparent.len() > TRACEPARENT_MAX {
        return None;
    }
    let mut states = headers.get_all("tracestate");
    let tracestate = match (states.next(), states.next()) {
        (Some(state), None) if state.len() <= TRACESTATE_MAX => state.to_str().ok(),
        _ => None,
    };
    from_traceparent(traceparent.to_str().ok()?, tracestate)
}

/// The context a stored or received `traceparent` names, if it is valid.
pub fn from_traceparent(traceparent: &str, tracestate: Option<&str>) -> Option<Context> {
    let cx = TraceContextPropagator::new().extract(&Headers {
        traceparent,
        tracestate,
    });
    cx.span().span_context().is_valid().then_some(cx)
}

#[derive(Default)]
struct Collected(Vec<(&'static str, String)>);

impl Injector for Collected {
    fn set(&mut self, key: &str, value: String) {
        let key = match key {
            "traceparent" => "traceparent",
            "tracestate" => "tracestate",
            _ => return,
        };
        self.0.push((key, value));
    }
}

/// The `traceparent` (and `tracestate`) headers naming `span` as the parent of what
/// it calls; empty while tracing is off. In a trace that is not sampled (where `span`
/// was never created) they name the unsampled trace, flag off, so the callee does not
/// sample it either.
pub fn headers_for(span: &tracing::Span) -> Vec<(&'static str, String)> {
    if !super::tracing_enabled() {
        return Vec::new();
    }
    let mut cx = span.context();
    if !cx.span().span_context().is_valid() {
        let Some(unsampled) = super::sampling::unsampled() else {
            return Vec::new();
        };
        cx = Context::new().with_remote_span_context(unsampled);
    }
    let mut collected = Collected::default();
    TraceContextPropagator::new().inject_context(&cx, &mut collected);
    collected.0
}

/// The current span's `traceparent`, to store beside work done later (a queued job).
pub fn current_traceparent() -> Option<String> {
    headers_for(&tracing::Span::current())
        .into_iter()
        .find_map(|(key, value)| (key == "traceparent").then_some(value))
}
