//! The relations service as its own process (containers); configuration from the environment.

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    agora_common::runtime::run_service("relations", |env| async move {
        // Boxed, not stringified: `run_service` prints the whole cause chain.
        let config = agora_relations::Config::from_env(&env)
            .map_err(Box::<dyn std::error::Error + Send + Sync>::from)?;
        agora_relations::build(config)
            .await
            .map_err(Box::<dyn std::error::Error + Send + Sync>::from)
    })
    .await
}
