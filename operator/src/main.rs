//! `agora-operator` runs the SocialPlatform controller (in-cluster configuration, or
//! `KUBECONFIG` outside a cluster); `agora-operator crd` prints the SocialPlatform CRD
//! (`crd backups`: the SocialPlatformBackup CRD), `agora-operator
//! rbac` the permissions it needs (see `rbac`), `agora-operator alerts` the alert rules of
//! a reference platform (for promtool); `agora-operator request-backup` is what a backup
//! schedule's Job runs (creates a `SocialPlatformBackup` of `$PLATFORM`), and
//! `agora-operator store-keys` what a restore Job runs last (the keys into their Secret).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("crd") => match if std::env::args().nth(2).as_deref() == Some("backups") {
            agora_operator::backup_crd_yaml()
        } else {
            agora_operator::crd_yaml()
        } {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: cannot render the CRD: {err}");
                ExitCode::FAILURE
            }
        },
        Some("rbac") => match agora_operator::rbac::rules_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: cannot render the RBAC rules: {err}");
                ExitCode::FAILURE
            }
        },
        Some("alerts") => match agora_operator::monitoring::reference_rules() {
            Ok(rules) => {
                println!("{rules}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: cannot render the alert rules: {err}");
                ExitCode::FAILURE
            }
        },
        Some("store-keys") => match store_keys().await {
            Ok(secret) => {
                println!("stored the restored keys in secret {secret}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        },
        Some("request-backup") => match request_backup().await {
            Ok(name) => {
                println!("requested backup {name}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        },
        None => {
            // The services' logs and traces: JSON lines with trace ids, and a span per
            // reconcile exported by OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
            agora_common::telemetry::init();
            if let Err(error) = agora_common::telemetry::register("operator", false) {
                eprintln!("error: tracing: {error}");
                return ExitCode::FAILURE;
            }
            // kube's TLS provider, chosen explicitly (see the workspace's `rustls` entry).
            let _ = rustls::crypto::ring::default_provider().install_default();
            let client = match kube::Client::try_default().await {
                Ok(client) => client,
                Err(error) => {
                    eprintln!("error: no Kubernetes configuration: {error}");
                    return ExitCode::FAILURE;
                }
            };
            // The Lease lives beside the operator (downward API in its Deployment).
            let namespace = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".into());
            let identity = std::env::var("POD_NAME")
                .unwrap_or_else(|_| format!("agora-operator-{}", std::process::id()));
            let ctx = std::sync::Arc::new(agora_operator::controller::Context::new(client.clone()));
            let addr = agora_operator::metrics::listen_addr();
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => {
                    tokio::spawn(agora_operator::metrics::serve(
                        listener,
                        ctx.metrics.clone(),
                    ));
                }
                Err(error) => {
                    eprintln!("error: cannot listen on {addr} (OPS_LISTEN_ADDR): {error}");
                    return ExitCode::FAILURE;
                }
            }
            tracing::info!(%namespace, %identity, %addr, "agora-operator started; waiting for the lease");
            let outcome = agora_operator::leader::lead(
                client.clone(),
                &namespace,
                &identity,
                agora_operator::leader::Timing::default(),
                agora_operator::controller::run(ctx, None),
                shutdown_signal(),
            )
            .await;
            agora_common::telemetry::shutdown();
            match outcome {
                Ok(agora_operator::leader::Outcome::LostLease) => {
                    // Restart clean and rejoin the election.
                    tracing::error!("lost the lease to another replica; exiting");
                    ExitCode::FAILURE
                }
                Ok(_) => {
                    tracing::info!("agora-operator stopped");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    tracing::error!(error = %error, cause = ?std::error::Error::source(&error), "leader election failed");
                    ExitCode::FAILURE
                }
            }
        }
        Some(other) => {
            eprintln!(
                "usage: agora-operator [crd [backups]|rbac|alerts|request-backup|store-keys]   (unknown argument {other:?})"
            );
            ExitCode::from(2)
        }
    }
}

/// What the backup schedule's Job runs: creates a `SocialPlatformBackup` of `$PLATFORM`
/// in `$POD_NAMESPACE`, named after the time; the operator takes the backup.
async fn request_backup() -> Result<String, Box<dyn std::error::Error>> {
    use agora_operator::backup::jobs::{PLATFORM_LABEL, SCHEDULED_LABEL, scheduled_name};
    use agora_operator::backup::{SocialPlatformBackup, SocialPlatformBackupSpec};
    let platform = std::env::var("PLATFORM").map_err(|_| "PLATFORM is not set")?;
    let namespace = std::env::var("POD_NAMESPACE").map_err(|_| "POD_NAMESPACE is not set")?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = kube::Client::try_default().await?;
    let name = scheduled_name(&platform, k8s_openapi::jiff::Timestamp::now());
    let mut backup = SocialPlatformBackup::new(
        &name,
        SocialPlatformBackupSpec {
            platform: platform.clone(),
        },
    );
    backup.metadata.labels = Some(
        [
            (PLATFORM_LABEL, platform.as_str()),
            (SCHEDULED_LABEL, "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    );
    kube::Api::<SocialPlatformBackup>::namespaced(client, &namespace)
        .create(&kube::api::PostParams::default(), &backup)
        .await?;
    Ok(name)
}

/// What a restore Job's last container runs: `agora-operator store-keys DIR SECRET`
/// writes the key files `agora restore` left in DIR into the platform's keys Secret in
/// `$POD_NAMESPACE` (a backup without an internal token, a local one, gets a new one).
async fn store_keys() -> Result<String, Box<dyn std::error::Error>> {
    use k8s_openapi::ByteString;
    let mut args = std::env::args().skip(2);
    let (Some(dir), Some(secret)) = (args.next(), args.next()) else {
        return Err("usage: agora-operator store-keys DIR SECRET".into());
    };
    let namespace = std::env::var("POD_NAMESPACE").map_err(|_| "POD_NAMESPACE is not set")?;
    let mut data = std::collections::BTreeMap::new();
    for name in ["auth-signing-key", "share-link-key", "internal-token"] {
        let path = std::path::Path::new(&dir).join(name);
        match std::fs::read(&path) {
            Ok(bytes) => {
                data.insert(name.to_owned(), ByteString(bytes));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && name == "internal-token" => {
                let token = agora_operator::secrets::random_hex(32)?;
                data.insert(name.to_owned(), ByteString(token.into_bytes()));
            }
            Err(e) => return Err(format!("{}: {e}", path.display()).into()),
        }
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = kube::Client::try_default().await?;
    kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client, &namespace)
        .patch(
            &secret,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({ "data": data })),
        )
        .await?;
    Ok(secret)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
