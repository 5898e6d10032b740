//! Start-up and shutdown shared by every service binary and the local runner.

use crate::config::{ConfigError, Env};
use crate::server::Service;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Where a service binary listens: `LISTEN_ADDR` (default `0.0.0.0:8080`).
pub fn listen_addr(env: &Env) -> Result<SocketAddr, ConfigError> {
    env.parse_or("LISTEN_ADDR", SocketAddr::from(([0, 0, 0, 0], 8080)))
}

/// Worker threads per server: `WORKERS` (default: available cores).
pub fn workers(env: &Env) -> Result<usize, ConfigError> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    env.int_in("WORKERS", cores, 1..=256)
}

/// The whole life of a single-service binary: logs, build, serve, stop on a signal.
///
/// Start-up errors are printed once, clearly, and turn into a non-zero exit code.
pub async fn run_service<F, Fut, E>(build: F) -> ExitCode
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = Result<Service, E>>,
    E: std::fmt::Display,
{
    crate::telemetry::init();
    let env = Env::process();
    let addr = match listen_addr(&env).and_then(|a| workers(&env).map(|w| (a, w))) {
        Ok(v) => v,
        Err(err) => return fail(&err),
    };
    let service = match build(env).await {
        Ok(s) => s,
        Err(err) => return fail(&err),
    };
    let server = match TcpListener::bind(addr.0).and_then(|l| service.serve(l, addr.1)) {
        Ok(s) => s,
        Err(err) => return fail(&format!("cannot listen on {}: {err}", addr.0)),
    };
    let handle = server.handle();
    let running = tokio::spawn(server);
    shutdown_signal().await;
    tracing::info!("shutting down");
    handle.stop(true).await;
    let _ = running.await;
    ExitCode::SUCCESS
}

fn fail(err: &dyn std::fmt::Display) -> ExitCode {
    tracing::error!(error = %err, "start-up failed");
    eprintln!("error: {err}");
    ExitCode::FAILURE
}
