//! Batched export that never blocks or fails a request: ended spans go into a bounded
//! queue (a full queue drops them), one thread per process sends them in batches
//! (waking once per batch, not once per span), and a collector that is down, slow or
//! refusing loses spans — counted in `agora_telemetry_spans_dropped_total` and logged
//! at most once a minute.
//!
//! Under `agora up` every service exports under its own `service.name`: one exporter
//! each, but one thread, one runtime and one HTTP client for all of them (a thread,
//! runtime and TLS client per service cost tens of MiB of resident memory).

use super::{Protocol, TelemetryError, TraceSettings};
use opentelemetry::Context;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant};

/// Spans held at most while waiting for export (every service of the process
/// together); beyond it they are dropped.
pub(super) const QUEUE: usize = 8192;
/// Spans sent in one export request.
const BATCH: usize = 512;
/// A span waits at most this long for its batch to fill.
const LINGER: Duration = Duration::from_secs(1);
/// How often the export thread looks at the queue while batches fill: the queue holds
/// what comes meanwhile (8192 spans in 50 ms is 160,000 spans a second).
const POLL: Duration = Duration::from_millis(50);
/// One export request may take this long.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Spans this process has dropped (queue full, collector failing) since it started.
pub fn spans_dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

enum Message {
    /// An ended span for the exporter at this index.
    Span(usize, Box<SpanData>),
    /// Send everything queued, then answer.
    Flush(Sender<()>),
    /// Build an exporter (inside the thread's runtime: gRPC channels need one) and
    /// answer with its index.
    Add(
        Box<TraceSettings>,
        Resource,
        Sender<Result<usize, TelemetryError>>,
    ),
}

/// The process's export thread, started with its first exporter.
static THREAD: Mutex<Option<SyncSender<Message>>> = Mutex::new(None);

fn thread_gone() -> TelemetryError {
    TelemetryError::Thread(std::io::Error::other("the span export thread has ended"))
}

/// The export thread's queue (the thread is started on first use).
fn export_thread() -> Result<SyncSender<Message>, TelemetryError> {
    let mut slot = THREAD.lock().map_err(|_| thread_gone())?;
    if let Some(queue) = slot.as_ref() {
        return Ok(queue.clone());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(TelemetryError::Thread)?;
    let (queue, messages) = std::sync::mpsc::sync_channel(QUEUE);
    std::thread::Builder::new()
        .name("span-export".into())
        .spawn(move || run(&runtime, &messages))
        .map_err(TelemetryError::Thread)?;
    *slot = Some(queue.clone());
    Ok(queue)
}

/// A span processor feeding one exporter of the process's export thread.
#[derive(Debug)]
pub(super) struct QueueProcessor {
    queue: SyncSender<Message>,
    exporter: usize,
}

impl QueueProcessor {
    /// Adds an exporter for `resource` to the export thread (starting it if needed).
    pub(super) fn start(
        settings: &TraceSettings,
        resource: &Resource,
    ) -> Result<Self, TelemetryError> {
        let queue = export_thread()?;
        let (reply, added) = std::sync::mpsc::channel();
        queue
            .send(Message::Add(
                Box::new(settings.clone()),
                resource.clone(),
                reply,
            ))
            .map_err(|_| thread_gone())?;
        let exporter = added.recv().map_err(|_| thread_gone())??;
        Ok(Self { queue, exporter })
    }
}

fn build_exporter(
    settings: &TraceSettings,
    http: &mut Option<reqwest::Client>,
) -> Result<opentelemetry_otlp::SpanExporter, opentelemetry_otlp::ExporterBuildError> {
    let base = settings.endpoint.as_deref().unwrap_or_default();
    let builder = opentelemetry_otlp::SpanExporter::builder();
    match settings.protocol {
        Protocol::Grpc => builder
            .with_tonic()
            .with_endpoint(base)
            .with_timeout(EXPORT_TIMEOUT)
            .build(),
        Protocol::HttpProtobuf => {
            let client = match http {
                Some(client) => client.clone(),
                None => {
                    let client = reqwest::Client::builder()
                        .timeout(EXPORT_TIMEOUT)
                        .build()
                        .map_err(|e| {
                            opentelemetry_otlp::ExporterBuildError::InternalFailure(e.to_string())
                        })?;
                    http.insert(client).clone()
                }
            };
            builder
                .with_http()
                .with_http_client(client)
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(format!("{}/v1/traces", base.trim_end_matches('/')))
                .with_timeout(EXPORT_TIMEOUT)
                .build()
        }
    }
}

/// One exporter and the batch it is filling.
struct Exporter {
    exporter: opentelemetry_otlp::SpanExporter,
    batch: Vec<SpanData>,
}

/// Sends what is batched, whatever happens (a failure drops and counts the spans).
fn export(runtime: &tokio::runtime::Runtime, to: &mut Exporter, last_report: &mut Option<Instant>) {
    if to.batch.is_empty() {
        return;
    }
    let count = to.batch.len() as u64;
    let spans = std::mem::replace(&mut to.batch, Vec::with_capacity(BATCH));
    // The timer is made inside the runtime: it needs its clock.
    let sent = runtime
        .block_on(async { tokio::time::timeout(EXPORT_TIMEOUT, to.exporter.export(spans)).await });
    let failure = match sent {
        Ok(Ok(())) => return,
        Ok(Err(err)) => err.to_string(),
        Err(_) => "the collector did not answer in time".to_owned(),
    };
    DROPPED.fetch_add(count, Ordering::Relaxed);
    if last_report.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
        *last_report = Some(Instant::now());
        tracing::warn!(error = %failure, dropped = count, "span export failed; spans dropped (logged at most once a minute)");
    }
}

fn run(runtime: &tokio::runtime::Runtime, messages: &Receiver<Message>) {
    let mut exporters: Vec<Exporter> = Vec::new();
    let mut http = None;
    let mut last_report = None;
    let mut handle = |message: Message, exporters: &mut Vec<Exporter>| match message {
        Message::Span(index, span) => {
            if let Some(to) = exporters.get_mut(index) {
                to.batch.push(*span);
                if to.batch.len() >= BATCH {
                    export(runtime, to, &mut last_report);
                }
            }
        }
        Message::Flush(done) => {
            for to in exporters.iter_mut() {
                export(runtime, to, &mut last_report);
            }
            let _ = done.send(());
        }
        Message::Add(settings, resource, reply) => {
            let built = {
                let _inside = runtime.enter();
                build_exporter(&settings, &mut http)
            };
            let _ = reply.send(match built {
                Ok(mut exporter) => {
                    exporter.set_resource(&resource);
                    exporters.push(Exporter {
                        exporter,
                        batch: Vec::with_capacity(BATCH),
                    });
                    Ok(exporters.len() - 1)
                }
                Err(err) => Err(TelemetryError::Exporter(err)),
            });
        }
    };
    loop {
        // Parked until a message comes: one wake-up per batch, not one per span.
        let Ok(first) = messages.recv() else {
            return;
        };
        let deadline = Instant::now() + LINGER;
        let mut next = Some(first);
        loop {
            while let Some(message) = next.take() {
                handle(message, &mut exporters);
                next = match messages.try_recv() {
                    Ok(message) => Some(message),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => return,
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
            next = match messages.try_recv() {
                Ok(message) => Some(message),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => return,
            };
        }
        // The linger is over: every batch goes, full or not.
        handle(Message::Flush(std::sync::mpsc::channel().0), &mut exporters);
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        match self
            .queue
            .try_send(Message::Span(self.exporter, Box::new(span)))
        {
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
