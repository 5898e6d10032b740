//! Batched export that never blocks or fails a request: ended spans go into a bounded
//! queue (a full queue drops them), a thread of its own sends them in batches (waking
//! once per batch, not once per span), and a collector that is down, slow or refusing
//! loses spans — counted in `agora_telemetry_spans_dropped_total` and logged at most
//! once a minute.

use super::{Protocol, TelemetryError, TraceSettings};
use opentelemetry::Context;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant};

/// Spans held at most while waiting for export; beyond it they are dropped.
pub(super) const QUEUE: usize = 4096;
/// Spans sent in one export request.
const BATCH: usize = 512;
/// A span waits at most this long for its batch to fill.
const LINGER: Duration = Duration::from_secs(1);
/// How often the export thread looks at the queue while a batch fills: the queue
/// holds what comes meanwhile (4096 spans in 50 ms is 80,000 spans a second).
const POLL: Duration = Duration::from_millis(50);
/// One export request may take this long.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Spans this process has dropped (queue full, collector failing) since it started.
pub fn spans_dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

enum Message {
    Span(Box<SpanData>),
    Flush(std::sync::mpsc::Sender<()>),
}

/// A span processor with a bounded queue and an export thread.
#[derive(Debug)]
pub(super) struct QueueProcessor {
    queue: SyncSender<Message>,
}

impl QueueProcessor {
    /// Builds the exporter (inside the thread's runtime: gRPC channels need one) and
    /// starts the thread.
    pub(super) fn start(
        settings: &TraceSettings,
        resource: &Resource,
    ) -> Result<Self, TelemetryError> {
        let (queue, spans) = std::sync::mpsc::sync_channel(QUEUE);
        let (built_tx, built_rx) = std::sync::mpsc::channel();
        let settings = settings.clone();
        let resource = resource.clone();
        std::thread::Builder::new()
            .name("span-export".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(err) => {
                        let _ = built_tx.send(Err(TelemetryError::Thread(err)));
                        return;
                    }
                };
                let exporter = {
                    let _inside = runtime.enter();
                    build_exporter(&settings)
                };
                match exporter {
                    Ok(mut exporter) => {
                        exporter.set_resource(&resource);
                        let _ = built_tx.send(Ok(()));
                        run(&runtime, &exporter, &spans);
                        let _ = exporter.shutdown();
                    }
                    Err(err) => {
                        let _ = built_tx.send(Err(TelemetryError::Exporter(err)));
                    }
                }
            })
            .map_err(TelemetryError::Thread)?;
        match built_rx.recv() {
            Ok(Ok(())) => Ok(Self { queue }),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(TelemetryError::Thread(std::io::Error::other(
                "the span export thread ended while starting",
            ))),
        }
    }
}

fn build_exporter(
    settings: &TraceSettings,
) -> Result<opentelemetry_otlp::SpanExporter, opentelemetry_otlp::ExporterBuildError> {
    let base = settings.endpoint.as_deref().unwrap_or_default();
    let builder = opentelemetry_otlp::SpanExporter::builder();
    match settings.protocol {
        Protocol::Grpc => builder
            .with_tonic()
            .with_endpoint(base)
            .with_timeout(EXPORT_TIMEOUT)
            .build(),
        Protocol::HttpProtobuf => builder
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(format!("{}/v1/traces", base.trim_end_matches('/')))
            .with_timeout(EXPORT_TIMEOUT)
            .build(),
    }
}

fn run(
    runtime: &tokio::runtime::Runtime,
    exporter: &opentelemetry_otlp::SpanExporter,
    spans: &Receiver<Message>,
) {
    let mut last_report: Option<Instant> = None;
    let mut batch: Vec<SpanData> = Vec::with_capacity(BATCH);
    let mut export = |batch: &mut Vec<SpanData>| {
        if batch.is_empty() {
            return;
        }
        let count = batch.len() as u64;
        let spans = std::mem::take(batch);
        // The timer is made inside the runtime: it needs its clock.
        let sent = runtime
            .block_on(async { tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(spans)).await });
        let failure = match sent {
            Ok(Ok(())) => return,
            Ok(Err(err)) => err.to_string(),
            Err(_) => "the collector did not answer in time".to_owned(),
        };
        DROPPED.fetch_add(count, Ordering::Relaxed);
        if last_report.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
            last_report = Some(Instant::now());
            tracing::warn!(error = %failure, dropped = count, "span export failed; spans dropped (logged at most once a minute)");
        }
    };
    loop {
        // Parked until a span comes: one wake-up per batch, not one per span.
        let first = match spans.recv() {
            Ok(message) => message,
            Err(_) => return,
        };
        let deadline = Instant::now() + LINGER;
        let mut next = Some(first);
        loop {
            while let Some(message) = next.take() {
                match message {
                    Message::Span(span) => batch.push(*span),
                    Message::Flush(done) => {
                        export(&mut batch);
                        let _ = done.send(());
                    }
                }
                if batch.len() >= BATCH {
                    export(&mut batch);
                }
                next = match spans.try_recv() {
                    Ok(message) => Some(message),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => {
                        export(&mut batch);
                        return;
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            // Asleep rather than waiting on the queue: a request ending a span then only
            // enqueues it, without waking this thread (a futex call and a context switch
            // per span otherwise, on the cores the requests need).
            std::thread::sleep(POLL.min(deadline - now));
            next = match spans.try_recv() {
                Ok(message) => Some(message),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => {
                    export(&mut batch);
                    return;
                }
            };
        }
        export(&mut batch);
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        match self.queue.try_send(Message::Span(Box::new(span))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        let (done, flushed) = std::sync::mpsc::channel();
        self.queue
            .send(Message::Flush(done))
            .map_err(|_| OTelSdkError::AlreadyShutdown)?;
        flushed
            .recv_timeout(EXPORT_TIMEOUT + LINGER)
            .map_err(|_| OTelSdkError::Timeout(EXPORT_TIMEOUT + LINGER))
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.force_flush()
    }

    fn set_resource(&mut self, _resource: &Resource) {
        // The exporter got the resource when it was built.
    }
}
