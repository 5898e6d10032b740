//! One tracer per service of the process, picked by the thread (an actix worker
//! serves one service) or by the task ([`in_service`]) that starts the span.

use opentelemetry::Context;
use opentelemetry::trace::{SpanBuilder, TracerProvider as _};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, Span};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::RwLock;
use std::task::{Context as TaskContext, Poll};

static TRACERS: RwLock<Vec<(&'static str, SdkTracer)>> = RwLock::new(Vec::new());
static UNREGISTERED: std::sync::OnceLock<SdkTracer> = std::sync::OnceLock::new();

thread_local! {
    static CURRENT: Cell<Option<&'static str>> = const { Cell::new(None) };
}

pub(super) fn registered(service: &str) -> bool {
    TRACERS
        .read()
        .is_ok_and(|t| t.iter().any(|(name, _)| *name == service))
}

pub(super) fn add(service: &'static str, provider: &SdkTracerProvider) {
    if let Ok(mut tracers) = TRACERS.write() {
        tracers.push((service, provider.tracer("agora")));
    }
}

/// The service running on this thread or task, when one was named.
pub fn current_service() -> Option<&'static str> {
    CURRENT.with(Cell::get)
}

/// Spans started on this thread belong to `service` (called once per server worker).
pub fn serve_as(service: &'static str) {
    CURRENT.with(|c| c.set(Some(service)));
}

/// Runs `work` as `service` on this thread (a blocking-pool thread doing one
/// service's work).
pub fn within<R>(service: Option<&'static str>, work: impl FnOnce() -> R) -> R {
    let previous = CURRENT.with(|c| c.replace(service.or(c.get())));
    let result = work();
    CURRENT.with(|c| c.set(previous));
    result
}

/// Runs `future` as `service`: spans it starts, on any thread, are that service's.
pub fn in_service<F: Future>(service: &'static str, future: F) -> ServiceScoped<F> {
    ServiceScoped {
        service,
        inner: Some(Box::pin(future)),
    }
}

/// A future whose spans belong to one service; see [`in_service`].
pub struct ServiceScoped<F> {
    service: &'static str,
    inner: Option<Pin<Box<F>>>,
}

impl<F: Future> Future for ServiceScoped<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let service = self.service;
        let previous = CURRENT.with(|c| c.replace(Some(service)));
        let result = match self.inner.as_mut() {
            Some(inner) => inner.as_mut().poll(cx),
            None => Poll::Pending,
        };
        CURRENT.with(|c| c.set(previous));
        result
    }
}

impl<F> Drop for ServiceScoped<F> {
    fn drop(&mut self) {
        // Spans the inner future still holds end here, as its service's.
        let previous = CURRENT.with(|c| c.replace(Some(self.service)));
        drop(self.inner.take());
        CURRENT.with(|c| c.set(previous));
    }
}

/// The tracer `tracing-opentelemetry` builds spans with.
#[derive(Debug, Clone, Copy)]
pub(super) struct RoutingTracer;

impl opentelemetry::trace::Tracer for RoutingTracer {
    type Span = Span;

    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> Span {
        let current = CURRENT.with(Cell::get);
        let tracers = TRACERS.read();
        let tracer = tracers.as_ref().ok().and_then(|t| {
            current
                .and_then(|name| t.iter().find(|(n, _)| *n == name))
                .or_else(|| t.first())
                .map(|(_, tracer)| tracer.clone())
        });
        match tracer {
            Some(tracer) => tracer.build_with_context(builder, parent_cx),
            // Before any service registered: a provider with no processor records
            // nothing (made once, not per span).
            None => UNREGISTERED
                .get_or_init(|| SdkTracerProvider::builder().build().tracer("agora"))
                .build_with_context(builder, parent_cx),
        }
    }
}
