//! The trace and span ids on every log line written inside a traced span, so a log
//! search leads to the trace and back.

use opentelemetry::trace::TraceContextExt;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Wraps a log format: JSON lines get `"trace_id"` and `"span_id"` as their first
/// keys, text lines end with `trace_id=… span_id=…`.
pub(super) struct WithTraceIds<F>(F);

impl<F> WithTraceIds<F> {
    pub(super) fn new(inner: F) -> Self {
        Self(inner)
    }
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some((trace_id, span_id)) = ids(ctx) else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        if let Some(rest) = line.strip_prefix('{') {
            write!(
                writer,
                "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}"
            )
        } else {
            let body = line.trim_end_matches('\n');
            writeln!(writer, "{body} trace_id={trace_id} span_id={span_id}")
        }
    }
}

/// The current span's trace and span ids, when tracing is on.
fn ids<S, N>(ctx: &FmtContext<'_, S, N>) -> Option<(String, String)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    if !super::tracing_enabled() {
        return None;
    }
    let otel = ctx
        .lookup_current()
        .and_then(|current| {
            tracing::dispatcher::get_default(|dispatch| {
                tracing_opentelemetry::get_otel_context(&current.id(), dispatch)
            })
        })
        .map(|cx| cx.span().span_context().clone())
        .filter(opentelemetry::trace::SpanContext::is_valid);
    // An unsampled request's lines name its trace too (to find the caller's lines).
    let context = otel.or_else(super::sampling::unsampled)?;
    Some((
        context.trace_id().to_string(),
        context.span_id().to_string(),
    ))
}
