//! The gateway as its own process; configuration from the environment, upstream
//! routes from the services themselves.

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    agora_common::runtime::run_service(|env| async move {
        let mut config = agora_gateway::Config::from_env(&env).map_err(|e| e.to_string())?;
        config.upstreams = agora_gateway::discover(&env)
            .await
            .map_err(|e| e.to_string())?;
        agora_gateway::build(config).map_err(|e| e.to_string())
    })
    .await
}
