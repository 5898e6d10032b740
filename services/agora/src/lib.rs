//! The whole Agora platform in one process, for laptops, demos and end-to-end tests:
//! each service runs in-process on its own loopback port, exactly as it would in its
//! own container, and the gateway routes to them.

pub mod backup;
pub mod postgres;
pub mod seed;

use actix_web::dev::ServerHandle;
use agora_common::client::ServiceToken;
use agora_common::client_addr::TrustedProxies;
use agora_common::config::ServiceBasics;
use agora_common::db;
use agora_common::server::Serving;
use agora_common::telemetry::in_service;
use ipnet::IpNet;
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
    /// How long a just-rotated refresh token may be presented again.
    pub refresh_reuse_grace_secs: u64,
    /// The credential of internal routes (random per start: every service is here).
    pub internal_token: ServiceToken,
    /// The comment line that keeps idle notification streams open (15 s; tests shorten
    /// it).
    pub stream_heartbeat: std::time::Duration,
    /// Where completed erasures are logged, beside the backups (none: not logged).
    pub erasure_log: Option<agora_common::store::Location>,
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
            refresh_reuse_grace_secs: 30,
            internal_token: random_service_token(),
            stream_heartbeat: std::time::Duration::from_secs(15),
            erasure_log: None,
        }
    }
}

/// The key that signs photo share links: made once per state directory and kept, so
/// links stay valid across restarts.
fn share_link_key(state_dir: &std::path::Path) -> Result<Vec<u8>, PlatformError> {
    let path = state_dir.join("keys").join("photos-share-link-key");
    let state = |source| PlatformError::State {
        path: path.clone(),
        source,
    };
    match std::fs::read(&path) {
        Ok(key) if key.len() >= 32 => return Ok(key),
        Ok(_) => {} // too short to be ours: replace it
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(state(e)),
    }
    let key = agora_keys::random_hex(32)
        .map_err(|e| state(std::io::Error::other(e)))?
        .into_bytes();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(state)?;
    }
    postgres::write_private(&path, &key).map_err(state)?;
    Ok(key)
}

/// A fresh random service credential (256 bits, hex).
fn random_service_token() -> ServiceToken {
    let mut bytes = [0u8; 32];
    // The OS random source failing is not something to run on: fall back to a UUIDv4
    // pair (also from the OS) rather than a fixed value.
    if getrandom::fill(&mut bytes).is_err() {
        bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    ServiceToken::new(&hex).unwrap_or_else(|| unreachable!("64 characters"))
}

impl PlatformConfig {
    /// Creates (if needed) the database of `service` and returns its URL.
    async fn database(&self, service: &str) -> Result<String, db::DbError> {
        db::ensure_database(
            &self.database_server_url,
            &format!("{}_{service}", self.database_prefix),
        )
        .await
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
    /// The relations service failed to start.
    #[error("relations service: {0}")]
    Relations(#[from] agora_relations::StartError),
    /// The users service failed to start.
    #[error("users service: {0}")]
    Users(#[from] agora_users::StartError),
    /// The photos service failed to start.
    #[error("photos service: {0}")]
    Photos(#[from] agora_photos::StartError),
    /// The events service failed to start.
    #[error("events service: {0}")]
    Events(#[from] agora_events::StartError),
    /// The notifications service failed to start.
    #[error("notifications service: {0}")]
    Notifications(#[from] agora_notifications::StartError),
    /// Local state (a key file) could not be read or written.
    #[error("state in {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The gateway could not be built.
    #[error("gateway: {0}")]
    Gateway(#[from] agora_gateway::BuildError),
    /// A service declared no route policy, so the gateway could not route to it.
    #[error("the {0} service declares no route policy")]
    NoRoutePolicy(&'static str),
    /// The span exporter could not be started.
    #[error("tracing: {0}")]
    Telemetry(#[from] agora_common::telemetry::TelemetryError),
    /// A listener could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Where one running service listens.
#[derive(Debug, Clone, Copy)]
pub struct Listening {
    /// The service's name.
    pub name: &'static str,
    /// Its API.
    pub api: SocketAddr,
    /// Its operations endpoints (`/healthz`, `/readyz`, `/metrics`, `/openapi.json`).
    pub ops: SocketAddr,
}

/// The running platform.
pub struct Platform {
    /// Where the gateway listens.
    pub gateway_addr: SocketAddr,
    /// Where each service listens (for diagnostics and tests).
    pub services: Vec<Listening>,
    handles: Vec<ServerHandle>,
    tasks: Vec<(&'static str, tokio::task::JoinHandle<std::io::Result<()>>)>,
}

fn listen(addr: SocketAddr) -> Result<TcpListener, PlatformError> {
    TcpListener::bind(addr).map_err(|source| PlatformError::Listen { addr, source })
}

const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

impl Platform {
    /// Creates the databases, starts every service, then the gateway. If any step
    /// fails, what was already started is stopped again.
    pub async fn start(config: PlatformConfig) -> Result<Self, PlatformError> {
        let mut platform = Self {
            gateway_addr: config.listen,
            services: Vec::new(),
            handles: Vec::new(),
            tasks: Vec::new(),
        };
        match platform.start_all(&config).await {
            Ok(()) => Ok(platform),
            Err(err) => {
                platform.stop().await;
                Err(err)
            }
        }
    }

    async fn start_all(&mut self, config: &PlatformConfig) -> Result<(), PlatformError> {
        // Each service exports its spans under its own name (when tracing is on).
        for name in [
            "relations",
            "photos",
            "users",
            "events",
            "notifications",
            "auth",
            "gateway",
        ] {
            agora_common::telemetry::register(name, true)?;
        }
        let mut upstreams = Vec::new();
        // Services verify tokens with the auth service's JWKS, and the auth service tells
        // users and relations of new accounts: its port is taken first, so the others
        // can start before it and know where it will be.
        let auth_listener = listen(LOOPBACK)?;
        let auth_addr = auth_listener
            .local_addr()
            .map_err(|source| PlatformError::Listen {
                addr: LOOPBACK,
                source,
            })?;
        let basics = |database_url: String| ServiceBasics {
            database_url,
            db_pool_size: 10,
            jwks_url: format!("http://{auth_addr}/api/v1/auth/jwks"),
            issuer: "agora".into(),
            audience: "agora".into(),
            service_token: config.internal_token.clone(),
        };

        // The notifications service asks relations about blocks, and relations (like
        // users and events) tells it of what happened: its port is taken first too.
        let notifications_listener = listen(LOOPBACK)?;
        let notifications_url = format!(
            "http://{}",
            notifications_listener
                .local_addr()
                .map_err(|source| PlatformError::Listen {
                    addr: LOOPBACK,
                    source,
                })?
        );

        // relations, then users (which asks relations)
        let relations = agora_relations::Config {
            basics: basics(config.database("relations").await?),
            notifications_url: Some(notifications_url.clone()),
        };
        let relations = self.run(
            in_service("relations", agora_relations::build(relations)).await?,
            None,
            config.workers,
        )?;
        let relations_url = relations.base_url.clone();
        upstreams.push(relations);

        // photos (bytes under the state directory), then users (which asks photos)
        let photos = agora_photos::Config {
            basics: basics(config.database("photos").await?),
            storage: agora_photos::storage::StorageConfig::Directory(
                config.state_dir.join("photos"),
            ),
            share_link_key: share_link_key(&config.state_dir)?,
            max_upload: agora_photos::DEFAULT_MAX_UPLOAD,
            limits: agora_photos::imaging::DecodeLimits::default(),
            decode_concurrency: config.workers.max(1),
            relations_url: Some(relations_url.clone()),
        };
        let photos = self.run(
            in_service("photos", agora_photos::build(photos)).await?,
            None,
            config.workers,
        )?;
        let photos_url = photos.base_url.clone();
        upstreams.push(photos);

        let users = agora_users::Config {
            basics: basics(config.database("users").await?),
            relations_url: relations_url.clone(),
            photos_url: Some(photos_url.clone()),
            notifications_url: Some(notifications_url.clone()),
        };
        let users = self.run(
            in_service("users", agora_users::build(users)).await?,
            None,
            config.workers,
        )?;
        let users_url = users.base_url.clone();
        upstreams.push(users);

        let events = agora_events::Config {
            basics: basics(config.database("events").await?),
            relations_url: relations_url.clone(),
            notifications_url: Some(notifications_url.clone()),
        };
        let events = self.run(
            in_service("events", agora_events::build(events)).await?,
            None,
            config.workers,
        )?;
        let events_url = events.base_url.clone();
        upstreams.push(events);

        let mut notifications = agora_notifications::Config::new(
            basics(config.database("notifications").await?),
            relations_url.clone(),
        );
        notifications.heartbeat = config.stream_heartbeat;
        upstreams.push(self.run(
            in_service("notifications", agora_notifications::build(notifications)).await?,
            Some(notifications_listener),
            config.workers,
        )?);

        // auth
        let mut auth = agora_auth::Config::new(
            config.database("auth").await?,
            agora_auth::SigningKeySource::File {
                path: config.state_dir.join("keys").join("auth-signing-key.pem"),
                generate: true,
            },
        );
        auth.limits = config.auth_limits.clone();
        auth.access_ttl_secs = config.access_ttl_secs;
        auth.trusted_proxies = behind_the_gateway();
        auth.refresh_reuse_grace_secs = config.refresh_reuse_grace_secs;
        auth.account_subscribers = vec![
            ("users", users_url.clone()),
            ("relations", relations_url.clone()),
        ];
        auth.erasure_services = vec![
            ("users", users_url),
            ("relations", relations_url),
            ("photos", photos_url),
            ("events", events_url),
            ("notifications", notifications_url),
        ];
        auth.service_token = Some(config.internal_token.clone());
        auth.erasure_log = config.erasure_log.clone();
        upstreams.push(self.run(
            in_service("auth", agora_auth::build(auth)).await?,
            Some(auth_listener),
            config.workers,
        )?);

        // The gateway last, so it never routes to a service that is not listening.
        let mut gateway = agora_gateway::Config::new(upstreams);
        gateway.rate_limit_per_minute = config.rate_limit_per_minute;
        let gateway = agora_gateway::build(gateway)?;
        let serving = gateway
            .serve(listen(config.listen)?, listen(LOOPBACK)?, config.workers)
            .map_err(|source| PlatformError::Listen {
                addr: config.listen,
                source,
            })?;
        self.gateway_addr = serving.api_addr;
        self.track("gateway", serving);
        Ok(())
    }

    /// Serves a service on loopback ports; returns it as a gateway upstream.
    fn run(
        &mut self,
        service: agora_common::Service,
        api: Option<TcpListener>,
        workers: usize,
    ) -> Result<agora_gateway::Upstream, PlatformError> {
        let name = service.name;
        let policy = service
            .policy
            .clone()
            .ok_or(PlatformError::NoRoutePolicy(name))?;
        let api = match api {
            Some(listener) => listener,
            None => listen(LOOPBACK)?,
        };
        let serving = service
            .serve(api, listen(LOOPBACK)?, workers)
            .map_err(|source| PlatformError::Listen {
                addr: LOOPBACK,
                source,
            })?;
        let upstream = agora_gateway::Upstream::new(
            format!("http://{}", serving.api_addr),
            format!("http://{}", serving.ops_addr),
            policy,
        );
        self.track(name, serving);
        Ok(upstream)
    }

    fn track(&mut self, name: &'static str, serving: Serving) {
        self.services.push(Listening {
            name,
            api: serving.api_addr,
            ops: serving.ops_addr,
        });
        for server in [serving.api, serving.ops] {
            self.handles.push(server.handle());
            self.tasks.push((name, tokio::spawn(server)));
        }
    }

    /// Where a service listens.
    pub fn service(&self, name: &str) -> Option<Listening> {
        self.services.iter().find(|s| s.name == name).copied()
    }

    /// The API server handle of one service (to stop it, e.g. in tests).
    pub fn server_handle(&self, name: &str) -> Option<ServerHandle> {
        let index = self.services.iter().position(|s| s.name == name)?;
        self.handles.get(index * 2).cloned()
    }

    /// Serves until `shutdown` resolves or a server exits on its own (which is a
    /// failure: the platform is then incomplete), then stops everything.
    pub async fn run_until(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), String> {
        let (names, watched): (Vec<&'static str>, Vec<_>) =
            std::mem::take(&mut self.tasks).into_iter().unzip();
        let outcome = tokio::select! {
            () = shutdown => Ok(()),
            (result, index, rest) = futures_util::future::select_all(watched) => {
                self.tasks = rest.into_iter().map(|task| ("", task)).collect();
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
        // Every service at once: each server waits for its open connections, idle
        // keep-alive ones too until they time out, and one after another those waits
        // added up to half a minute.
        let (gateway, services): (Vec<_>, Vec<_>) =
            self.handles.iter().enumerate().partition(|(index, _)| {
                self.services
                    .get(index / 2)
                    .is_some_and(|s| s.name == "gateway")
            });
        for stage in [gateway, services] {
            futures_util::future::join_all(stage.into_iter().map(|(_, h)| h.stop(true))).await;
        }
        for (_, task) in self.tasks {
            let _ = task.await;
        }
    }
}

/// Services trust the gateway's `X-Forwarded-For` entry: it is one hop away on loopback.
fn behind_the_gateway() -> TrustedProxies {
    TrustedProxies::new(vec![IpNet::from(LOOPBACK.ip())], 1)
}
