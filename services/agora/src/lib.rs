//! The whole Agora platform in one process, for laptops, demos and end-to-end tests:
//! each service runs in-process on its own loopback port, exactly as it would in its
//! own container, and the gateway routes to them.

pub mod postgres;

use actix_web::dev::{Server, ServerHandle};
use agora_common::db;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

/// How to start the platform.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    /// A PostgreSQL server URL where the per-service databases may be created.
    pub database_server_url: String,
    /// Database names are `<prefix>_<service>`.
    pub database_prefix: String,
    /// Where the gateway listens.
    pub listen: SocketAddr,
    /// Where local state (signing keys) lives.
    pub state_dir: PathBuf,
    /// Auth throttling.
    pub auth_limits: agora_auth::Limits,
    /// Access-token lifetime.
    pub access_ttl_secs: u64,
    /// Worker threads per service.
    pub workers: usize,
    /// The gateway's per-address budget (0 disables it).
    pub rate_limit_per_minute: u32,
}

impl PlatformConfig {
    /// Defaults for a local run against `database_server_url`.
    pub fn new(database_server_url: String, listen: SocketAddr, state_dir: PathBuf) -> Self {
        Self {
            database_server_url,
            database_prefix: "agora".into(),
            listen,
            state_dir,
            auth_limits: agora_auth::Limits::default(),
            access_ttl_secs: 900,
            workers: 2,
            rate_limit_per_minute: agora_gateway::DEFAULT_RATE_LIMIT_PER_MINUTE,
        }
    }
}

/// Why the platform did not start.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// Creating a database failed.
    #[error(transparent)]
    Database(#[from] db::DbError),
    /// The auth service failed to start.
    #[error("auth service: {0}")]
    Auth(#[from] agora_auth::StartError),
    /// A listener could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The running platform.
pub struct Platform {
    /// Where the gateway listens.
    pub gateway_addr: SocketAddr,
    /// Where each service listens (for diagnostics and tests).
    pub services: Vec<(&'static str, SocketAddr)>,
    handles: Vec<ServerHandle>,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

fn listen(addr: SocketAddr) -> Result<TcpListener, PlatformError> {
    TcpListener::bind(addr).map_err(|source| PlatformError::Listen { addr, source })
}

impl Platform {
    /// Creates the databases, starts every service, then the gateway.
    pub async fn start(config: PlatformConfig) -> Result<Self, PlatformError> {
        let mut platform = Self {
            gateway_addr: config.listen,
            services: Vec::new(),
            handles: Vec::new(),
            tasks: Vec::new(),
        };
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut upstreams = Vec::new();

        // auth
        let auth_db = db::ensure_database(
            &config.database_server_url,
            &format!("{}_auth", config.database_prefix),
        )
        .await?;
        let mut auth = agora_auth::Config::new(
            auth_db,
            agora_auth::SigningKeySource::File {
                path: config.state_dir.join("keys").join("auth-signing-key.pem"),
                generate: true,
            },
        );
        auth.limits = config.auth_limits.clone();
        auth.access_ttl_secs = config.access_ttl_secs;
        auth.trusted_proxy_hops = 1; // behind the gateway
        let auth = agora_auth::build(auth).await?;
        let addr = platform.run("auth", auth, listen(loopback)?, config.workers)?;
        upstreams.push(agora_gateway::Upstream {
            name: "auth",
            base_url: format!("http://{addr}"),
            max_body_bytes: agora_gateway::DEFAULT_MAX_BODY,
        });

        // The gateway last, so it never routes to a service that is not listening.
        let mut gateway = agora_gateway::Config::new(upstreams);
        gateway.rate_limit_per_minute = config.rate_limit_per_minute;
        let gateway = agora_gateway::build(gateway);
        let gateway_listener = listen(config.listen)?;
        platform.gateway_addr =
            platform.run("gateway", gateway, gateway_listener, config.workers)?;
        Ok(platform)
    }

    fn run(
        &mut self,
        name: &'static str,
        service: agora_common::Service,
        listener: TcpListener,
        workers: usize,
    ) -> Result<SocketAddr, PlatformError> {
        let addr = listener
            .local_addr()
            .map_err(|source| PlatformError::Listen {
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                source,
            })?;
        let server: Server = service
            .serve(listener, workers)
            .map_err(|source| PlatformError::Listen { addr, source })?;
        self.handles.push(server.handle());
        self.tasks.push(tokio::spawn(server));
        self.services.push((name, addr));
        Ok(addr)
    }

    /// The server handle of one service (to stop or pause it, e.g. in tests).
    pub fn server_handle(&self, name: &str) -> Option<ServerHandle> {
        let index = self.services.iter().position(|(n, _)| *n == name)?;
        self.handles.get(index).cloned()
    }

    /// Serves until `shutdown` resolves or a server exits on its own (which is a
    /// failure: the platform is then incomplete), then stops everything.
    pub async fn run_until(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), String> {
        let watched = std::mem::take(&mut self.tasks);
        let names: Vec<&'static str> = self.services.iter().map(|(n, _)| *n).collect();
        let outcome = tokio::select! {
            () = shutdown => Ok(()),
            (result, index, rest) = futures_util::future::select_all(watched) => {
                self.tasks = rest;
                let name = names.get(index).copied().unwrap_or("a service");
                Err(match result {
                    Ok(Ok(())) => format!("the {name} server stopped unexpectedly"),
                    Ok(Err(e)) => format!("the {name} server failed: {e}"),
                    Err(e) => format!("the {name} server crashed: {e}"),
                })
            }
        };
        self.stop().await;
        outcome
    }

    /// Stops the gateway first, then the services, letting in-flight requests finish.
    pub async fn stop(self) {
        for handle in self.handles.iter().rev() {
            handle.stop(true).await;
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
