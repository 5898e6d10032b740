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

/// Where a service binary serves its operations endpoints: `OPS_LISTEN_ADDR` (default
/// `0.0.0.0:9090`). Probes and metric scrapes go there; it is never routed publicly.
pub fn ops_listen_addr(env: &Env) -> Result<SocketAddr, ConfigError> {
    env.parse_or("OPS_LISTEN_ADDR", SocketAddr::from(([0, 0, 0, 0], 9090)))
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
/// The operations port is bound first and answers while `build` runs (healthy, not
/// ready). Start-up errors are printed once, clearly, and turn into a
/// non-zero exit code.
pub async fn run_service<F, Fut, E>(name: &'static str, build: F) -> ExitCode
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = Result<Service, E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    crate::telemetry::init();
    if let Err(err) = crate::telemetry::register(name, false) {
        return fail(&crate::problem::Chain(&err));
    }
    crate::telemetry::serve_as(name);
    let code = run_built(build).await;
    crate::telemetry::shutdown();
    code
}

async fn run_built<F, Fut, E>(build: F) -> ExitCode
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = Result<Service, E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let env = Env::process();
    let addrs = listen_addr(&env)
        .and_then(|api| ops_listen_addr(&env).map(|ops| (api, ops)))
        .and_then(|addrs| workers(&env).map(|w| (addrs, w)));
    let ((api_addr, ops_addr), workers) = match addrs {
        Ok(v) => v,
        Err(err) => return fail(&err),
    };
    let bind = |addr: SocketAddr| {
        TcpListener::bind(addr).map_err(|err| format!("cannot listen on {addr}: {err}"))
    };
    let ops_listener = match bind(ops_addr) {
        Ok(l) => l,
        Err(err) => return fail(&err),
    };
    // Building may wait (for the database, for upstreams): the probes get their answers
    // meanwhile, from a small server on a duplicate of the same socket.
    let starting = match ops_listener
        .try_clone()
        .and_then(crate::server::serve_starting)
    {
        Ok(s) => s,
        Err(err) => return fail(&format!("cannot serve: {err}")),
    };
    let starting_handle = starting.handle();
    let starting_task = tokio::spawn(starting);
    let built = tokio::select! {
        built = build(env) => built,
        () = shutdown_signal() => {
            tracing::info!("shutting down before start-up finished");
            starting_handle.stop(false).await;
            return ExitCode::SUCCESS;
        }
    };
    starting_handle.stop(true).await;
    let _ = starting_task.await;
    let service = match built {
        Ok(s) => s,
        Err(err) => {
            let err: Box<dyn std::error::Error + Send + Sync> = err.into();
            return fail(&crate::problem::Chain(err.as_ref()));
        }
    };
    // The API port opens only now: until then a connection is refused, not queued.
    let serving = match bind(api_addr).and_then(|api| {
        service
            .serve(api, ops_listener, workers)
            .map_err(|err| format!("cannot serve: {err}"))
    }) {
        Ok(s) => s,
        Err(err) => return fail(&err),
    };
    let (api, ops) = (serving.api.handle(), serving.ops.handle());
    let mut api_task = tokio::spawn(serving.api);
    let mut ops_task = tokio::spawn(serving.ops);
    let code = tokio::select! {
        () = shutdown_signal() => {
            tracing::info!("shutting down");
            ExitCode::SUCCESS
        }
        _ = &mut api_task => fail(&"the API server stopped unexpectedly"),
        _ = &mut ops_task => fail(&"the operations server stopped unexpectedly"),
    };
    // Both at once: each waits for its open connections (up to its shutdown timeout).
    futures_util::future::join(api.stop(true), ops.stop(true)).await;
    code
}

fn fail(err: &dyn std::fmt::Display) -> ExitCode {
    tracing::error!(error = %err, "start-up failed");
    eprintln!("error: {err}");
    ExitCode::FAILURE
}
