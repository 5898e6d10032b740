//! Span export that never fails a request: with the collector down, or answering every
//! export with an error, spans are dropped and counted, and the code that made them
//! carries on at once. (Its own test binary: the tracing subscriber is process-wide.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

use agora_common::telemetry::{self, LogFormat, Protocol, TraceSettings};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A collector that answers every request 503 (and counts them).
fn refusing_collector() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 65536];
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    (url, seen)
}

#[test]
fn a_refusing_collector_loses_spans_never_time() {
    let (url, seen) = refusing_collector();
    telemetry::init_with(
        LogFormat::Json,
        TraceSettings {
            endpoint: Some(url),
            protocol: Protocol::HttpProtobuf,
            service_name: Some("export-test".into()),
        },
    )
    .unwrap();
    telemetry::register("exporter", false).unwrap();
    telemetry::serve_as("exporter");
    assert!(telemetry::tracing_enabled());
    let before = telemetry::spans_dropped();
    let started = Instant::now();
    for i in 0..200 {
        let span = telemetry::start_trace(
            None,
            || tracing::info_span!(target: telemetry::ROOT, "work", i),
        )
        .span;
        let _entered = span.enter();
        tracing::info_span!("step").in_scope(|| {});
    }
    // Making 400 spans does not wait for the collector.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Flushing sends them; the collector refuses; they are counted as dropped.
    telemetry::shutdown();
    assert!(
        seen.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the collector was never asked"
    );
    assert!(
        telemetry::spans_dropped() >= before + 400,
        "{} dropped",
        telemetry::spans_dropped() - before
    );
}
