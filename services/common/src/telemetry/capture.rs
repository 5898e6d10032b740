//! Spans kept in memory, per service, for tests that check traces (the SDK's own
//! in-memory exporter: the real pipeline from `tracing` to exported span data).

use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use std::sync::{Arc, Mutex};

/// The spans every registered service exported.
#[derive(Clone, Default)]
pub struct Captured {
    exporters: Arc<Mutex<Vec<(&'static str, InMemorySpanExporter)>>>,
}

/// One exported span and the service that exported it.
#[derive(Debug, Clone)]
pub struct CapturedSpan {
    /// `gateway`, `users`, …
    pub service: &'static str,
    /// The span as exported.
    pub data: SpanData,
}

impl Captured {
    pub(super) fn exporter_for(&self, service: &'static str) -> InMemorySpanExporter {
        let exporter = InMemorySpanExporter::default();
        if let Ok(mut all) = self.exporters.lock() {
            all.push((service, exporter.clone()));
        }
        exporter
    }

    /// Every span exported so far.
    pub fn spans(&self) -> Vec<CapturedSpan> {
        let Ok(all) = self.exporters.lock() else {
            return Vec::new();
        };
        all.iter()
            .flat_map(|(service, exporter)| {
                exporter
                    .get_finished_spans()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|data| CapturedSpan { service, data })
            })
            .collect()
    }
}

/// Installs the subscriber with spans going to memory (JSON logs, as in a container),
/// sampled as the `OTEL_TRACES_SAMPLER` variables say (every trace, unset).
/// Call first in a test binary: the first subscriber of a process stays.
pub fn init_capturing() -> Captured {
    install_capturing(None)
}

/// The same, with traces sampled by `sampler` instead of the variables.
pub fn init_capturing_sampled(sampler: opentelemetry_sdk::trace::Sampler) -> Captured {
    install_capturing(Some(Box::new(sampler)))
}

fn install_capturing(sampler: Option<Box<dyn opentelemetry_sdk::trace::ShouldSample>>) -> Captured {
    let captured = Captured::default();
    super::install(
        super::LogFormat::Json,
        Some(super::Sink::Memory(captured.clone())),
        sampler,
    );
    captured
}
