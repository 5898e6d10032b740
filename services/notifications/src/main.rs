//! The notifications service as its own process (containers); configuration from the
//! environment.

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    agora_common::runtime::run_service("notifications", |env| async move {
        // Boxed, not stringified: `run_service` prints the whole cause chain.
        let config = agora_notifications::Config::from_env(&env)
            .map_err(Box::<dyn std::error::Error + Send + Sync>::from)?;
        agora_notifications::build(config)
            .await
            .map_err(Box::<dyn std::error::Error + Send + Sync>::from)
    })
    .await
}
