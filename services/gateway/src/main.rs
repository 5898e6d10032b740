//! The gateway as its own process; configuration from the environment, upstream
//! routes from the services themselves.

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    agora_common::runtime::run_service("gateway", |env| async move {
        // Boxed, not stringified: `run_service` prints the whole cause chain.
        type BoxError = Box<dyn std::error::Error + Send + Sync>;
        let mut config = agora_gateway::Config::from_env(&env).map_err(BoxError::from)?;
        config.upstreams = agora_gateway::discover(&env)
            .await
            .map_err(BoxError::from)?;
        agora_gateway::build(config).map_err(BoxError::from)
    })
    .await
}
