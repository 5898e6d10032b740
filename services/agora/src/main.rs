//! `agora up`: the whole platform on this machine in one command.

use agora::postgres::LocalPostgres;
use agora::{Platform, PlatformConfig};
use clap::{Parser, Subcommand};
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "agora",
    version,
    about = "Agora, a small social network built as microservices"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Export every service's spans to this OpenTelemetry collector (OTLP), each under
    /// its own service.name; the standard OTEL_* variables apply as well.
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// Log lines as `json` or `text` (default: text on a terminal, else JSON).
    #[arg(long, global = true, env = "LOG_FORMAT", value_parser = ["json", "text"])]
    log_format: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Start PostgreSQL, every service and the gateway; Ctrl-C stops everything.
    Up {
        /// Where the gateway listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Local state: the PostgreSQL cluster and signing keys. Kept between runs.
        #[arg(long, default_value = ".agora")]
        state_dir: PathBuf,
        /// Use this PostgreSQL server instead of a local cluster (it must allow
        /// creating databases), e.g. postgres://agora:secret@db:5432/postgres.
        #[arg(long, env = "AGORA_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Requests per client address per minute at the gateway; 0 disables the limit
        /// (for benchmarks).
        #[arg(long, env = "GATEWAY_RATE_LIMIT_PER_MINUTE", default_value_t = agora_gateway::DEFAULT_RATE_LIMIT_PER_MINUTE)]
        rate_limit_per_minute: u32,
        /// Where each completed erasure is logged (a directory or s3://bucket/prefix,
        /// beside the backups), for `agora restore --erasure-log`.
        #[arg(long, env = "AUTH_ERASURE_LOG")]
        erasure_log: Option<agora::backup::Location>,
    },
    /// Back up a platform (running or not): every service's database, the photos and
    /// the keys, into a new directory. See docs/backup.md.
    Backup {
        /// The platform's state dir (as given to `agora up`).
        #[arg(long, default_value = ".agora")]
        state_dir: PathBuf,
        /// A directory to create (mode 0700), or an empty one; or s3://bucket/prefix
        /// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL).
        #[arg(long)]
        to: agora::backup::Location,
        /// Encrypt the signing and share-link keys with the key in this file (at least
        /// 32 random bytes, e.g. `openssl rand -hex 32`; the same file is needed to
        /// restore) and authenticate the manifest. Without it the backup is as secret
        /// as the state dir.
        #[arg(long)]
        encryption_key_file: Option<PathBuf>,
        /// The server `agora up` uses, if it was given --database-url.
        #[arg(long, env = "AGORA_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Instead of a state dir (a cluster's backup Job): a service's database as
        /// SERVICE=URL, repeated; `SERVICE=env:NAME` reads the URL from the variable
        /// NAME, so no password is on the command line.
        #[arg(long = "database", value_name = "SERVICE=URL", requires = "keys_dir")]
        databases: Vec<String>,
        /// With --database: the key files, named as the platform's keys Secret names
        /// them.
        #[arg(long, requires = "databases")]
        keys_dir: Option<PathBuf>,
        /// With --database: the photo store's directory, when photos are on a volume.
        #[arg(long, requires = "databases")]
        photos_dir: Option<PathBuf>,
        /// With --database: the photos' bucket (s3://bucket/prefix), when photos are in
        /// one: its objects are listed (key, size, ETag), not copied. Reached with the
        /// PHOTOS_-prefixed standard variables (PHOTOS_AWS_ACCESS_KEY_ID, …).
        #[arg(long, requires = "databases", conflicts_with = "photos_dir")]
        photos_bucket: Option<agora::backup::Location>,
        /// --to may hold an unfinished earlier attempt (no manifest): clear it; one
        /// that holds a complete backup is kept and reported.
        #[arg(long)]
        resume: bool,
        /// The platform the manifest records, as JSON (set by the operator).
        #[arg(long, env = "AGORA_BACKUP_PLATFORM", hide_env_values = true)]
        platform: Option<String>,
        /// Also write the outcome as JSON to this file (`{"size_bytes": N}` or
        /// `{"error": "..."}`): a Job's termination message.
        #[arg(long)]
        report_file: Option<PathBuf>,
    },
    /// Delete a backup's files: every object under the bucket prefix, or the directory.
    /// What a cluster's deletion Job runs when a backup is pruned or deleted.
    DeleteBackup {
        /// The backup's directory, or s3://bucket/prefix.
        at: agora::backup::Location,
    },
    /// Copy this binary to DEST (mode 0755), and the CA bundle `SSL_CERT_FILE` names
    /// beside it as `ca-certificates.crt`: how a backup Job puts `agora` beside the
    /// database image's `pg_dump` (the agora image has no shell; a database image may
    /// have no CA certificates, which the S3 client needs).
    #[command(hide = true)]
    CopyBinary {
        /// Where.
        dest: PathBuf,
    },
    /// Restore a backup into a new state dir, which `agora up --state-dir` then serves.
    /// Every file is checked first: a damaged backup restores nothing.
    Restore {
        /// The backup's directory, or s3://bucket/prefix.
        #[arg(long)]
        from: agora::backup::Location,
        /// A state dir to create, or an empty one.
        #[arg(long, required_unless_present = "keys_dir")]
        state_dir: Option<PathBuf>,
        /// The key file the backup was made with, if it was encrypted: the manifest
        /// must then be authenticated by it.
        #[arg(long)]
        encryption_key_file: Option<PathBuf>,
        /// Instead of a state dir (a cluster's restore Job): an empty database per
        /// service as SERVICE=URL (or SERVICE=env:NAME), restored as the URL's role.
        #[arg(long = "database", value_name = "SERVICE=URL", requires = "keys_dir")]
        databases: Vec<String>,
        /// With --database: where the key files are written.
        #[arg(long, requires = "databases", conflicts_with = "state_dir")]
        keys_dir: Option<PathBuf>,
        /// With --database: the photo store's directory (empty), photos on a volume.
        #[arg(long, requires = "databases")]
        photos_dir: Option<PathBuf>,
        /// With --database: the photos' bucket, which must hold every object the backup
        /// listed (PHOTOS_AWS_ACCESS_KEY_ID, … as for `agora backup`).
        #[arg(long, requires = "databases", conflicts_with = "photos_dir")]
        photos_bucket: Option<agora::backup::Location>,
        /// With --database: the databases already hold the data (CloudNativePG
        /// recovered them to a point in time): restore only the photos and the keys, and
        /// apply the erasure log to the databases.
        #[arg(long, requires = "databases")]
        databases_recovered: bool,
        /// Also write the outcome as JSON to this file (`{"restored": true}` or
        /// `{"error": "..."}`): a Job's termination message.
        #[arg(long)]
        report_file: Option<PathBuf>,
        /// The erasure log kept beside the backups (`agora up --erasure-log`): every
        /// erasure logged after the backup started is applied again before anything
        /// serves the restored data.
        #[arg(long)]
        erasure_log: Option<agora::backup::Location>,
    },
    /// Fill a running platform with demo data through its public API: people with
    /// profiles and avatars, follows and friendships, photos, posts, comments, reactions,
    /// events and RSVPs. The same --seed gives the same data.
    Seed {
        /// The platform's base URL (the gateway, or the ingress).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// How many people.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(2..=100_000))]
        users: u32,
        /// Average posts per person (the most active post several times more).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=1000))]
        posts_per_user: u32,
        /// Picks the data; usernames carry it, so two seeds can share a platform.
        #[arg(long, default_value_t = 1)]
        seed: u32,
        /// Every demo account's password.
        #[arg(
            long,
            env = "AGORA_SEED_PASSWORD",
            default_value = "agora-demo-password",
            hide_env_values = true
        )]
        password: String,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
        concurrency: u32,
    },
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = telemetry(&cli) {
        eprintln!("error: {err}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Up {
            listen,
            state_dir,
            database_url,
            rate_limit_per_minute,
            erasure_log,
        } => {
            up(
                listen,
                state_dir,
                database_url,
                rate_limit_per_minute,
                erasure_log,
            )
            .await
        }
        Command::Backup {
            state_dir,
            to,
            encryption_key_file,
            database_url,
            databases,
            keys_dir,
            photos_dir,
            photos_bucket,
            resume,
            platform,
            report_file,
        } => {
            let outcome = async {
                let encryption_key = encryption_key(encryption_key_file.as_deref())?;
                let explicit = match keys_dir {
                    Some(keys_dir) => Some(agora::backup::ExplicitSource {
                        databases: database_args(&databases)?,
                        keys_dir,
                        photos_dir,
                        photos_bucket,
                    }),
                    None => None,
                };
                let platform = platform
                    .map(|json| serde_json::from_str(&json))
                    .transpose()
                    .map_err(|e| format!("--platform: not JSON: {e}"))?;
                let options = agora::backup::BackupOptions {
                    state_dir,
                    to,
                    encryption_key,
                    database_url,
                    explicit,
                    resume,
                    platform,
                };
                let manifest = agora::backup::backup(&options, &|line| eprintln!("{line}"))
                    .await
                    .map_err(|e| agora_common::problem::Chain(&e).to_string())?;
                println!(
                    "backed up {} databases, {} photo objects and the keys into {}",
                    manifest.databases.len(),
                    manifest.photos.objects,
                    options.to
                );
                Ok::<_, String>(manifest.files.iter().map(|f| f.size).sum::<u64>())
            }
            .await;
            write_report(
                report_file.as_deref(),
                match &outcome {
                    Ok(size) => serde_json::json!({ "size_bytes": size }),
                    Err(error) => serde_json::json!({ "error": error }),
                },
            );
            outcome.map(|_| ())
        }
        Command::CopyBinary { dest } => copy_binary(&dest),
        Command::DeleteBackup { at } => agora::backup::delete(&at)
            .await
            .map(|()| println!("deleted the backup at {at}"))
            .map_err(|e| agora_common::problem::Chain(&e).to_string()),
        Command::Restore {
            from,
            state_dir,
            encryption_key_file,
            databases,
            keys_dir,
            photos_dir,
            photos_bucket,
            databases_recovered,
            report_file,
            erasure_log,
        } => {
            let outcome = async {
                let encryption_key = encryption_key(encryption_key_file.as_deref())?;
                let explicit = match keys_dir {
                    Some(keys_dir) => Some(agora::backup::ExplicitTarget {
                        databases: database_args(&databases)?,
                        keys_dir,
                        photos_dir,
                        photos_bucket,
                        databases_recovered,
                    }),
                    None => None,
                };
                let options = agora::backup::RestoreOptions {
                    from,
                    state_dir: state_dir.unwrap_or_default(),
                    encryption_key,
                    explicit,
                    erasure_log,
                };
                let manifest = agora::backup::restore(&options, &|line| eprintln!("{line}"))
                    .await
                    .map_err(|e| agora_common::problem::Chain(&e).to_string())?;
                match &options.explicit {
                    Some(_) => println!("restored the backup of {}", manifest.completed_at),
                    None => println!(
                        "restored the backup of {} into {}: start it with `agora up --state-dir {}`",
                        manifest.completed_at,
                        options.state_dir.display(),
                        options.state_dir.display()
                    ),
                }
                Ok::<(), String>(())
            }
            .await;
            write_report(
                report_file.as_deref(),
                match &outcome {
                    Ok(()) => serde_json::json!({ "restored": true }),
                    Err(error) => serde_json::json!({ "error": error }),
                },
            );
            outcome
        }
        Command::Seed {
            url,
            users,
            posts_per_user,
            seed,
            password,
            concurrency,
        } => {
            let options = agora::seed::SeedOptions {
                url,
                users: users as usize,
                posts_per_user: posts_per_user as usize,
                seed,
                password,
                concurrency: concurrency as usize,
            };
            run_seed(&options).await
        }
    };
    agora_common::telemetry::shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!(error = %message, "agora failed");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Logs and traces from the flags and the standard variables; a bad value stops here.
fn telemetry(cli: &Cli) -> Result<(), agora_common::telemetry::TelemetryError> {
    use agora_common::telemetry::{LogFormat, TraceSettings, init_with};
    let format = match cli.log_format.as_deref() {
        Some(value) => LogFormat::parse(value)?,
        None => LogFormat::detect(),
    };
    let mut traces = TraceSettings::from_env()?;
    // The flag (or the variable it reads) names the collector, unless the SDK is off.
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v == "true");
    if !disabled {
        traces.endpoint = cli.otlp_endpoint.clone().filter(|e| !e.is_empty());
    }
    init_with(format, traces)
}

async fn run_seed(options: &agora::seed::SeedOptions) -> Result<(), String> {
    eprintln!(
        "seeding {} with {} people (seed {})...",
        options.url, options.users, options.seed
    );
    let summary = agora::seed::run(options, &|line| eprintln!("  {line}"))
        .await
        .map_err(|e| agora_common::problem::Chain(&e).to_string())?;
    println!(
        "seeded: {} people, {} follows, {} friendships, {} photos, {} posts, {} comments, \
         {} reactions, {} events, {} RSVPs",
        summary.users,
        summary.follows,
        summary.friendships,
        summary.photos,
        summary.posts,
        summary.comments,
        summary.reactions,
        summary.events,
        summary.rsvps
    );
    println!("demo accounts (password: {}):", options.password);
    for (username, id) in &summary.demo_accounts {
        println!("  {username}  (id {id})");
    }
    Ok(())
}

/// Writes a Job's outcome where `--report-file` says (its termination message).
fn write_report(path: Option<&Path>, report: serde_json::Value) {
    if let Some(path) = path
        && let Err(e) = std::fs::write(path, report.to_string())
    {
        eprintln!("warning: cannot write {}: {e}", path.display());
    }
}

/// `--database SERVICE=URL` values; `env:NAME` URLs read from the environment.
fn database_args(args: &[String]) -> Result<Vec<(String, String)>, String> {
    args.iter()
        .map(|arg| {
            let (service, url) = arg
                .split_once('=')
                .ok_or_else(|| format!("--database {arg:?}: expected SERVICE=URL"))?;
            let url = match url.strip_prefix("env:") {
                Some(var) => std::env::var(var)
                    .map_err(|_| format!("--database {service}=env:{var}: {var} is not set"))?,
                None => url.to_owned(),
            };
            Ok((service.to_owned(), url))
        })
        .collect()
}

/// `agora copy-binary DEST`.
fn copy_binary(dest: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let me = std::env::current_exe().map_err(|e| format!("this binary: {e}"))?;
    std::fs::copy(&me, dest).map_err(|e| format!("copying to {}: {e}", dest.display()))?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", dest.display()))?;
    if let Some(bundle) = std::env::var_os("SSL_CERT_FILE").filter(|f| Path::new(f).is_file()) {
        let beside = dest.with_file_name("ca-certificates.crt");
        std::fs::copy(&bundle, &beside)
            .map_err(|e| format!("copying the CA bundle to {}: {e}", beside.display()))?;
    }
    Ok(())
}

/// The backup encryption key in `file` (a trailing newline is not part of it).
fn encryption_key(file: Option<&std::path::Path>) -> Result<Option<Vec<u8>>, String> {
    let Some(file) = file else {
        return Ok(None);
    };
    let mut key = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    while key.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
        key.pop();
    }
    // HKDF adds no work factor: the key must be random, not a passphrase.
    if key.len() < 32 {
        return Err(format!(
            "{}: an encryption key needs at least 32 bytes (e.g. `openssl rand -hex 32`)",
            file.display()
        ));
    }
    Ok(Some(key))
}

async fn up(
    listen: SocketAddr,
    state_dir: PathBuf,
    database_url: Option<String>,
    rate_limit_per_minute: u32,
    erasure_log: Option<agora::backup::Location>,
) -> Result<(), String> {
    std::fs::create_dir_all(&state_dir).map_err(|e| format!("{}: {e}", state_dir.display()))?;
    let state_dir = state_dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", state_dir.display()))?;
    // One `agora up` per state dir: the lock dies with the process, however it ends.
    let lock_path = state_dir.join("agora.lock");
    let lock = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        return Err(format!(
            "another `agora up` is already using {}",
            state_dir.display()
        ));
    }

    // The auth service's throttles, from the variables its own binary reads
    // (`AUTH_LOGINS_PER_MINUTE`, …): benchmarks sign in many people from one address.
    let auth_limits = agora_auth::Limits::from_env(&agora_common::config::Env::process())
        .map_err(|e| e.to_string())?;

    let local_pg = match database_url {
        Some(_) => None,
        None => {
            let dir = state_dir.clone();
            Some(
                tokio::task::spawn_blocking(move || LocalPostgres::start(&dir))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?,
            )
        }
    };
    let server_url = database_url.unwrap_or_else(|| {
        local_pg
            .as_ref()
            .map(LocalPostgres::url)
            .unwrap_or_default()
    });

    let mut config = PlatformConfig::new(server_url, listen, state_dir);
    config.rate_limit_per_minute = rate_limit_per_minute;
    config.auth_limits = auth_limits;
    config.erasure_log = erasure_log;
    let result = match Platform::start(config).await {
        Ok(platform) => {
            let base = format!("http://{}", platform.gateway_addr);
            tracing::info!(url = %base, "Agora is up");
            println!(
                "Agora is up: {base}/api/v1  (OpenAPI: {base}/api/v1/openapi.json). Ctrl-C stops it."
            );
            // Where each server listens: its operations port (metrics, readiness) is
            // reachable only here, and benchmarks call a service directly.
            for s in &platform.services {
                tracing::info!(service = s.name, api = %s.api, ops = %s.ops, "listening");
                println!("  {:<9} api http://{}  ops http://{}", s.name, s.api, s.ops);
            }
            platform
                .run_until(async {
                    agora_common::runtime::shutdown_signal().await;
                    tracing::info!("stopping");
                })
                .await
        }
        Err(err) => Err(agora_common::problem::Chain(&err).to_string()),
    };
    if let Some(pg) = local_pg {
        if let Err(err) = tokio::task::spawn_blocking(move || pg.stop())
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            tracing::error!(error = %err, "PostgreSQL did not stop cleanly");
        } else {
            tracing::info!("PostgreSQL stopped");
        }
    }
    drop(lock);
    result
}
