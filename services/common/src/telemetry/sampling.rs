//! Sampling decided once per trace, where it starts: a request's server span, a job,
//! a reconcile. A trace that is not sampled costs one span (which the log lines need
//! anyway), not one per step: the spans beneath an unsampled root never reach the
//! OpenTelemetry layer, and with tracing off they are not created at all.
//!
//! The decision is the configured sampler's (`OTEL_TRACES_SAMPLER` and `_ARG`, read by
//! the SDK, default parent-based): a remote parent's sampled flag is followed, a root
//! is sampled at the ratio. An unsampled trace still propagates: the work it covers
//! runs with its trace context (flag off) in a task-local, which calls and queued jobs
//! carry, so the services downstream skip it too instead of starting partial traces of
//! their own. No span is needed for that: with `RUST_LOG=warn` an unsampled request
//! makes none at all, as with tracing off.

use opentelemetry::Context as OtelContext;
use opentelemetry::trace::{SpanContext, SpanKind, TraceContextExt, TraceFlags, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SamplingDecision, ShouldSample};
use std::cell::Cell;
use std::sync::OnceLock;
use tracing::{Metadata, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The target of root spans (made by [`start`]): the only spans that may start a
/// trace. Every other span is traced only beneath a traced span.
pub const ROOT: &str = "agora::trace";

static SAMPLER: OnceLock<Box<dyn ShouldSample>> = OnceLock::new();

thread_local! {
    /// The decision for the root span being made on this thread (read by the filter
    /// while [`start`]'s closure creates it).
    static DECIDED: Cell<bool> = const { Cell::new(false) };
}

tokio::task_local! {
    /// The trace context of the unsampled trace the current task works for.
    static UNSAMPLED: SpanContext;
}

/// The sampler: `sampler`, or the standard variables' (once, when tracing is installed).
pub(super) fn configure(sampler: Option<Box<dyn ShouldSample>>) {
    let _ =
        SAMPLER.set(sampler.unwrap_or_else(|| opentelemetry_sdk::trace::Config::default().sampler));
}

/// Whether a trace with this (remote) parent is sampled; `trace_id` is the parent's
/// or the new trace's.
fn decide(sampler: &dyn ShouldSample, parent: Option<&OtelContext>, trace_id: TraceId) -> bool {
    let result = sampler.should_sample(parent, trace_id, "", &SpanKind::Internal, &[], &[]);
    matches!(result.decision, SamplingDecision::RecordAndSample)
}

/// A trace's root: its span, and the context an unsampled trace propagates.
pub struct Root {
    /// The root span (disabled when no layer wants it).
    pub span: tracing::Span,
    unsampled: Option<SpanContext>,
}

impl Root {
    /// Runs `work` as the trace's: inside its span and, when the trace is not sampled,
    /// with its context at hand for the calls and jobs it makes.
    pub async fn run<F: std::future::Future>(&self, work: F) -> F::Output {
        use tracing::Instrument;
        let work = work.instrument(self.span.clone());
        match &self.unsampled {
            Some(context) => UNSAMPLED.scope(context.clone(), work).await,
            None => work.await,
        }
    }

    /// Runs `work` (a log line) the same way, synchronously.
    pub fn in_scope<R>(&self, work: impl FnOnce() -> R) -> R {
        match &self.unsampled {
            Some(context) => UNSAMPLED.sync_scope(context.clone(), || self.span.in_scope(work)),
            None => self.span.in_scope(work),
        }
    }
}

/// Makes a root span with `make` (whose span must have target [`ROOT`]), sampled or
/// not as the sampler decides for `parent` (a received or stored trace context): a
/// sampled root continues `parent`; an unsampled one keeps the trace's id for
/// propagation ([`Root::run`]).
pub fn start(parent: Option<OtelContext>, make: impl FnOnce() -> tracing::Span) -> Root {
    let Some(sampler) = SAMPLER.get().filter(|_| super::tracing_enabled()) else {
        return Root {
            span: make(),
            unsampled: None,
        };
    };
    let remote = parent
        .as_ref()
        .map(|cx| cx.span().span_context().clone())
        .filter(SpanContext::is_valid);
    let ids = RandomIdGenerator::default();
    let trace_id = remote
        .as_ref()
        .map_or_else(|| ids.new_trace_id(), SpanContext::trace_id);
    let sampled = decide(sampler.as_ref(), parent.as_ref(), trace_id);
    DECIDED.set(sampled);
    let span = make();
    DECIDED.set(false);
    if sampled {
        if let Some(parent) = parent {
            let _ = span.set_parent(parent);
        }
        return Root {
            span,
            unsampled: None,
        };
    }
    let state = remote.map(|r| r.trace_state().clone()).unwrap_or_default();
    Root {
        span,
        unsampled: Some(SpanContext::new(
            trace_id,
            ids.new_span_id(),
            TraceFlags::default(),
            false,
            state,
        )),
    }
}

/// The OpenTelemetry layer's filter: a root span when its trace is sampled, any other
/// span only beneath a span the layer traces.
pub(super) fn traced<S>(metadata: &Metadata<'_>, cx: &Context<'_, S>) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    metadata.is_span()
        && if metadata.target() == ROOT {
            DECIDED.get()
        } else {
            cx.lookup_current().is_some()
        }
}

/// Root spans: the only spans log lines name (a request's id, a job's kind).
pub(super) fn is_root(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && metadata.target() == ROOT
}

/// The context of the unsampled trace the current task works for, if any.
pub(super) fn unsampled() -> Option<SpanContext> {
    UNSAMPLED.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::trace::Sampler;

    fn remote(flags: TraceFlags) -> OtelContext {
        OtelContext::new().with_remote_span_context(SpanContext::new(
            TraceId::from(7u128),
            opentelemetry::trace::SpanId::from(9u64),
            flags,
            true,
            Default::default(),
        ))
    }

    #[test]
    fn a_parent_based_sampler_follows_the_remote_flag_and_samples_roots_at_the_ratio() {
        let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(0.1)));
        let sampled = remote(TraceFlags::SAMPLED);
        let unsampled = remote(TraceFlags::default());
        assert!(decide(&sampler, Some(&sampled), TraceId::from(7u128)));
        assert!(!decide(&sampler, Some(&unsampled), TraceId::from(7u128)));
        let ids = RandomIdGenerator::default();
        let roots = (0..10_000)
            .filter(|_| decide(&sampler, None, ids.new_trace_id()))
            .count();
        assert!(
            (700..1300).contains(&roots),
            "{roots} of 10000 roots sampled"
        );
    }

    #[test]
    fn always_off_samples_no_root_and_always_on_every_one() {
        let id = TraceId::from(42u128);
        assert!(!decide(&Sampler::AlwaysOff, None, id));
        assert!(decide(&Sampler::AlwaysOn, None, id));
    }
}
