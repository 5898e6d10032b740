//! Logs and traces.
//!
//! Logs: JSON lines in containers, readable lines in a terminal; inside a traced span
//! every line names its `trace_id` and `span_id`.
//!
//! Traces: `tracing` spans become OpenTelemetry spans exported by OTLP, configured by
//! the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`,
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and `_ARG`,
//! `OTEL_SDK_DISABLED`). Without an endpoint nothing is exported and no OpenTelemetry
//! layer is installed. Each service of a process exports under its own `service.name`
//! ([`register`]), which is how `agora up` shows seven services, not one.

#[cfg(feature = "testing")]
pub mod capture;
mod export;
mod logs;
pub mod propagation;
#[cfg(feature = "db")]
pub(crate) mod queries;
mod routing;
mod sampling;

pub use export::spans_dropped;
pub use routing::{ServiceScoped, current_service, in_service, serve_as};
pub use sampling::{ROOT, Root, start as start_trace};

use opentelemetry_sdk::trace::SdkTracerProvider;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object a line (containers, log collectors).
    Json,
    /// Compact human-readable lines (a terminal).
    Text,
}

impl LogFormat {
    /// `LOG_FORMAT=json|text` when set, else JSON unless stdout is a terminal.
    pub fn from_env() -> Result<Self, TelemetryError> {
        match std::env::var("LOG_FORMAT").ok().as_deref() {
            None | Some("") => Ok(Self::detect()),
            Some(value) => Self::parse(value),
        }
    }

    /// `json` or `text`.
    pub fn parse(value: &str) -> Result<Self, TelemetryError> {
        match value {
            "json" => Ok(Self::Json),
            "text" => Ok(Self::Text),
            other => Err(TelemetryError::Invalid {
                variable: "LOG_FORMAT",
                value: other.to_owned(),
                expected: "json or text",
            }),
        }
    }

    /// JSON unless stdout is a terminal.
    pub fn detect() -> Self {
        if std::io::stdout().is_terminal() {
            Self::Text
        } else {
            Self::Json
        }
    }
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `http/protobuf` (port 4318; `/v1/traces` is appended to the endpoint).
    HttpProtobuf,
    /// `grpc` (port 4317).
    Grpc,
}

/// Where and how spans are exported; `None` endpoint: they are not.
#[derive(Debug, Clone)]
pub struct TraceSettings {
    /// The collector's base URL (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub endpoint: Option<String>,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` (default `http/protobuf`).
    pub protocol: Protocol,
    /// `OTEL_SERVICE_NAME`: replaces the default name of a single-service process.
    pub service_name: Option<String>,
}

/// What the telemetry settings refused.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A variable has a value it cannot take.
    #[error("{variable}={value:?}: expected {expected}")]
    Invalid {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
        /// What it may be.
        expected: &'static str,
    },
    /// The exporter could not be built (a malformed endpoint).
    #[error("cannot build the OTLP span exporter")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
    /// The exporter's thread could not be started.
    #[error("cannot start the span export thread")]
    Thread(#[source] std::io::Error),
}

impl TraceSettings {
    /// From the standard `OTEL_*` variables.
    pub fn from_env() -> Result<Self, TelemetryError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let disabled = match var("OTEL_SDK_DISABLED").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(TelemetryError::Invalid {
                    variable: "OTEL_SDK_DISABLED",
                    value: other.to_owned(),
                    expected: "true or false",
                });
            }
        };
        let protocol = match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .as_deref()
        {
            None | Some("http/protobuf") => Protocol::HttpProtobuf,
            Some("grpc") => Protocol::Grpc,
            Some(other) => {
                return Err(TelemetryError::Invalid {
                    variable: "OTEL_EXPORTER_OTLP_PROTOCOL",
                    value: other.to_owned(),
                    expected: "http/protobuf or grpc",
                });
            }
        };
        Ok(Self {
            endpoint: if disabled {
                None
            } else {
                var("OTEL_EXPORTER_OTLP_ENDPOINT")
            },
            protocol,
            service_name: var("OTEL_SERVICE_NAME"),
        })
    }

    /// Settings that export nothing.
    pub fn off() -> Self {
        Self {
            endpoint: None,
            protocol: Protocol::HttpProtobuf,
            service_name: None,
        }
    }
}

static TRACING: AtomicBool = AtomicBool::new(false);
static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// Where registered services' spans go.
#[derive(Clone)]
enum Sink {
    /// An OTLP collector.
    Otlp(TraceSettings),
    /// Memory, for tests that look at spans.
    #[cfg(feature = "testing")]
    Memory(capture::Captured),
}
static PROVIDERS: Mutex<Vec<SdkTracerProvider>> = Mutex::new(Vec::new());

/// Whether spans are exported (an endpoint was configured at [`init_with`]).
pub fn tracing_enabled() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// Logs from `LOG_FORMAT`/`RUST_LOG` and traces from the `OTEL_*` variables. A bad
/// value is reported and leaves tracing off (the process still logs).
pub fn init() {
    let format = LogFormat::from_env();
    let traces = TraceSettings::from_env();
    let problem = format
        .as_ref()
        .err()
        .or(traces.as_ref().err())
        .map(ToString::to_string);
    let _ = init_with(
        format.unwrap_or_else(|_| LogFormat::detect()),
        traces.unwrap_or_else(|_| TraceSettings::off()),
    );
    if let Some(problem) = problem {
        tracing::error!(error = %problem, "telemetry settings refused; tracing is off");
    }
}

/// Installs the global subscriber once (later calls are no-ops and return `Ok`).
///
/// `RUST_LOG` filters log lines (default `info`); spans at `info` and above from
/// Agora's own code are traced when an endpoint is set.
pub fn init_with(format: LogFormat, traces: TraceSettings) -> Result<(), TelemetryError> {
    let traced = traces.endpoint.is_some();
    install(format, traced.then_some(Sink::Otlp(traces)), None);
    Ok(())
}

/// The subscriber; with a sink, the OpenTelemetry layer too, sampling as `sampler`
/// says (the `OTEL_TRACES_SAMPLER` variables when `None`). The first call wins.
fn install(
    format: LogFormat,
    sink: Option<Sink>,
    sampler: Option<Box<dyn opentelemetry_sdk::trace::ShouldSample>>,
) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    // Colours only for a terminal: `--log-format text` into a file stays plain.
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal());
    let fmt = match format {
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .map_event_format(logs::WithTraceIds::new)
            .boxed(),
        LogFormat::Text => fmt
            .compact()
            .map_event_format(logs::WithTraceIds::new)
            .boxed(),
    };
    // Log lines keep the level `RUST_LOG` asks for; of spans they need only the roots
    // (a request's id, a job's kind), so the others cost nothing unless traced.
    // The level hint is passed on: without it the combination has none, the global
    // maximum becomes TRACE, and every `trace!` of every dependency is checked at run
    // time on every call (a few per cent of a proxied request's CPU).
    let hint = filter.max_level_hint().unwrap_or(LevelFilter::TRACE);
    let fmt_filter = filter.and(
        tracing_subscriber::filter::filter_fn(|metadata| {
            metadata.is_event() || sampling::is_root(metadata)
        })
        .with_max_level_hint(hint),
    );
    let otel = sink.is_some().then(|| {
        tracing_opentelemetry::layer()
            .with_tracer(routing::RoutingTracer)
            .with_level(false)
            .with_target(false)
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            // No OpenTelemetry context is attached on every poll of every instrumented
            // future: parents come from the span tree, propagation asks the span itself.
            .with_context_activation(false)
            // Spans only, of sampled traces: log lines stay log lines (with the
            // trace's ids), and an unsampled request passes no span through the layer.
            .with_filter(
                traced_targets().and(tracing_subscriber::filter::dynamic_filter_fn(
                    sampling::traced,
                )),
            )
    });
    let installed = tracing_subscriber::registry()
        .with(fmt.with_filter(fmt_filter))
        .with(otel)
        .try_init()
        .is_ok();
    // `try_init` fails only when a subscriber exists already (tests, embedded runs):
    // the first settings stay.
    if installed && let Some(sink) = sink {
        sampling::configure(sampler);
        if let Ok(mut slot) = SINK.lock() {
            *slot = Some(sink);
        }
        TRACING.store(true, Ordering::Relaxed);
    }
}

/// Spans worth exporting: Agora's own at `info` and above; never the HTTP and gRPC
/// stacks' (the exporter's own requests would trace themselves).
fn traced_targets() -> Targets {
    Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("h2", LevelFilter::OFF)
        .with_target("hyper", LevelFilter::OFF)
        .with_target("hyper_util", LevelFilter::OFF)
        .with_target("tonic", LevelFilter::OFF)
        .with_target("tower", LevelFilter::OFF)
        .with_target("reqwest", LevelFilter::OFF)
        .with_target("opentelemetry", LevelFilter::OFF)
        .with_target("opentelemetry_sdk", LevelFilter::OFF)
        .with_target("opentelemetry_otlp", LevelFilter::OFF)
}

/// Starts exporting the spans of `service` (`users`, `gateway`, …) under
/// `service.name` `agora-<service>` (or `OTEL_SERVICE_NAME` in a single-service
/// process, `shared_process` false). Idempotent; a no-op while tracing is off.
pub fn register(service: &'static str, shared_process: bool) -> Result<(), TelemetryError> {
    if !tracing_enabled() || routing::registered(service) {
        return Ok(());
    }
    let Some(sink) = SINK.lock().ok().and_then(|s| s.clone()) else {
        return Ok(());
    };
    let configured = match &sink {
        Sink::Otlp(settings) => settings.service_name.clone(),
        #[cfg(feature = "testing")]
        Sink::Memory(_) => None,
    };
    let name = match (configured, shared_process) {
        (Some(name), false) => name,
        _ => format!("agora-{service}"),
    };
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(name)
        .build();
    // Sampling is decided at the root ([`start_trace`]): what reaches the SDK is sampled.
    let provider = SdkTracerProvider::builder()
        .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOn)
        .with_resource(resource.clone());
    let provider = match sink {
        Sink::Otlp(settings) => {
            provider.with_span_processor(export::QueueProcessor::start(&settings, &resource)?)
        }
        #[cfg(feature = "testing")]
        Sink::Memory(captured) => provider.with_span_processor(
            opentelemetry_sdk::trace::SimpleSpanProcessor::new(captured.exporter_for(service)),
        ),
    }
    .build();
    routing::add(service, &provider);
    if let Ok(mut providers) = PROVIDERS.lock() {
        providers.push(provider);
    }
    Ok(())
}

/// Whether the current span belongs to a sampled trace: work done only for exported
/// spans (a statement's SQL text) is skipped for the others.
pub fn current_sampled() -> bool {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if !tracing_enabled() {
        return false;
    }
    let current = tracing::Span::current();
    !current.is_none() && current.context().span().span_context().is_sampled()
}

/// Names `span` now that its name is known (a server span after routing): the
/// OpenTelemetry span may have started already, and recording `otel.name` would not
/// rename it.
/// The name is formatted only for a sampled span: otherwise this costs nothing.
pub fn rename(span: &tracing::Span, name: std::fmt::Arguments<'_>) {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if tracing_enabled() {
        let cx = span.context();
        let otel = cx.span();
        if otel.is_recording() {
            otel.update_name(name.to_string());
        }
    }
}

/// Runs CPU-heavy `work` on the blocking pool inside `span` (password hashing, image
/// decoding), as the current service: the step shows as its own span of the request.
pub async fn blocking<R: Send + 'static>(
    span: tracing::Span,
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, actix_web::error::BlockingError> {
    let service = current_service();
    actix_web::web::block(move || {
        routing::within(service, move || {
            let result = span.in_scope(work);
            // Closed (and so exported) while the service is still named.
            drop(span);
            result
        })
    })
    .await
}

/// Sends what is queued and stops the exporters (at the end of `main`).
pub fn shutdown() {
    let providers = PROVIDERS
        .lock()
        .map(|mut p| std::mem::take(&mut *p))
        .unwrap_or_default();
    for provider in providers {
        if let Err(err) = provider.shutdown() {
            tracing::warn!(error = %err, "span exporter did not shut down cleanly");
        }
    }
}
