//! The auth service as its own process (containers); configuration from the environment.

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    agora_common::runtime::run_service(|env| async move {
        let config = agora_auth::Config::from_env(&env).map_err(|e| e.to_string())?;
        agora_auth::build(config).await.map_err(|e| e.to_string())
    })
    .await
}
