//! `agora-operator` runs the SocialPlatform controller (in-cluster configuration, or
//! `KUBECONFIG` outside a cluster); `agora-operator crd` prints the CRD.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("crd") => match agora_operator::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: cannot render the CRD: {err}");
                ExitCode::FAILURE
            }
        },
        None => {
            tracing_subscriber::fmt()
                .json()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .init();
            match kube::Client::try_default().await {
                Ok(client) => {
                    tracing::info!("agora-operator started");
                    agora_operator::controller::run(client, None).await;
                    tracing::info!("agora-operator stopped");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: no Kubernetes configuration: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(other) => {
            eprintln!("usage: agora-operator [crd]   (unknown argument {other:?})");
            ExitCode::from(2)
        }
    }
}
