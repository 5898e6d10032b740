//! The gateway as its own process; configuration from the environment.

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    agora_common::runtime::run_service(|env| async move {
        agora_gateway::Config::from_env(&env).map(agora_gateway::build)
    })
    .await
}
