//! Finding out what each upstream serves: its route policy, from `/routes.json` on its
//! operations port. The gateway keeps no table of areas or public paths of its own.

use crate::routes::Upstream;
use agora_common::config::{ConfigError, Env};
use agora_common::routing::RoutePolicy;
use std::time::{Duration, Instant};

/// An upstream could not be discovered.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// Bad settings.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The upstream never answered with a policy.
    #[error("no route policy from {url} within {waited:?}: {reason}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// How long we tried.
        waited: Duration,
        /// The last failure.
        reason: String,
    },
}

/// The upstreams named by `GATEWAY_UPSTREAMS` (comma-separated API base URLs, e.g.
/// `http://auth:8080,http://users:8080`), each asked for its route policy at
/// `GATEWAY_UPSTREAM_OPS_PORT` (default 9090) on the same host, retrying for up to
/// `GATEWAY_DISCOVERY_TIMEOUT_SECS` (default 180, as long as a service waits for its
/// database) while services start. The operations port answers meanwhile (healthy, not
/// ready).
pub async fn discover<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Vec<Upstream>, DiscoveryError> {
    let urls = env.required("GATEWAY_UPSTREAMS")?;
    let ops_port: u16 = env.int_in("GATEWAY_UPSTREAM_OPS_PORT", 9090, 1..=65535)?;
    let timeout =
        Duration::from_secs(env.int_in("GATEWAY_DISCOVERY_TIMEOUT_SECS", 180, 1..=3600)?);
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(3))
        .finish();
    let mut upstreams = Vec::new();
    for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let base_url = url.trim_end_matches('/').to_owned();
        let ops_url = ops_url(&base_url, ops_port).ok_or_else(|| ConfigError::Invalid {
            var: "GATEWAY_UPSTREAMS".into(),
            value: url.to_owned(),
            reason: "expected http://host:port".into(),
        })?;
        let policy = fetch_policy(&client, &ops_url, timeout).await?;
        tracing::info!(service = %policy.service, %base_url, areas = ?policy.areas, "upstream discovered");
        upstreams.push(Upstream::new(base_url, ops_url, policy));
    }
    Ok(upstreams)
}

/// `http://host:8080` → `http://host:<ops_port>`.
fn ops_url(base_url: &str, ops_port: u16) -> Option<String> {
    let (scheme, rest) = base_url.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains('/') {
        return None;
    }
    let host = match rest.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => rest,
    };
    Some(format!("{scheme}://{host}:{ops_port}"))
}

async fn fetch_policy(
    client: &awc::Client,
    ops_url: &str,
    timeout: Duration,
) -> Result<RoutePolicy, DiscoveryError> {
    let url = format!("{ops_url}/routes.json");
    let started = Instant::now();
    loop {
        let reason = match client.get(&url).send().await {
            Ok(mut resp) if resp.status().is_success() => {
                match resp.json::<Option<RoutePolicy>>().limit(256 * 1024).await {
                    Ok(Some(policy)) => return Ok(policy),
                    Ok(None) => "the service declares no routes".to_owned(),
                    Err(e) => e.to_string(),
                }
            }
            Ok(resp) => format!("answered {}", resp.status()),
            Err(e) => e.to_string(),
        };
        if started.elapsed() >= timeout {
            return Err(DiscoveryError::Unreachable {
                url,
                waited: started.elapsed(),
                reason,
            });
        }
        tracing::info!(%url, %reason, "waiting for an upstream");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_urls_keep_the_host() {
        assert_eq!(
            ops_url("http://auth:8080", 9090).as_deref(),
            Some("http://auth:9090")
        );
        assert_eq!(
            ops_url("http://auth", 9090).as_deref(),
            Some("http://auth:9090")
        );
        assert!(ops_url("auth:8080", 9090).is_none());
        assert!(ops_url("http://auth:8080/x", 9090).is_none());
    }
}
