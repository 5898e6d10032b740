//! The merged OpenAPI document of every routed service, served at
//! `/api/v1/openapi.json`. Each service's `/openapi.json` is fetched and cached briefly.

use crate::routes::RouteTable;
use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const CACHE_FOR: Duration = Duration::from_secs(60);

/// The last merged document.
#[derive(Default)]
pub struct MergedSpec {
    cached: Mutex<Option<(Instant, web::Bytes)>>,
}

/// Merges `paths` and `components` of several documents into one.
pub fn merge(docs: &[(&str, Value)]) -> Value {
    let mut paths = Map::new();
    let mut components: Map<String, Value> = Map::new();
    let mut tags = Vec::new();
    for (service, doc) in docs {
        if let Some(p) = doc.get("paths").and_then(Value::as_object) {
            paths.extend(p.clone());
        }
        if let Some(c) = doc.get("components").and_then(Value::as_object) {
            for (kind, entries) in c {
                if let (Some(entries), Some(target)) = (
                    entries.as_object(),
                    components
                        .entry(kind.clone())
                        .or_insert_with(|| json!({}))
                        .as_object_mut(),
                ) {
                    target.extend(entries.clone());
                }
            }
        }
        tags.push(json!({"name": service}));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Agora API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The public REST API of Agora, merged from every service."
        },
        "servers": [{"url": "/"}],
        "tags": tags,
        "paths": paths,
        "components": components,
    })
}

async fn fetch(client: &awc::Client, base_url: &str) -> Option<Value> {
    let mut resp = client
        .get(format!("{base_url}/openapi.json"))
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json::<Value>().limit(4 * 1024 * 1024).await.ok()
}

/// `GET /api/v1/openapi.json`.
pub async fn merged(
    table: web::Data<RouteTable>,
    client: web::Data<awc::Client>,
    spec: web::Data<MergedSpec>,
) -> HttpResponse {
    let hit = spec.cached.lock().ok().and_then(|c| {
        c.as_ref()
            .filter(|(at, _)| at.elapsed() < CACHE_FOR)
            .map(|(_, b)| b.clone())
    });
    let body = match hit {
        Some(body) => body,
        None => {
            let mut docs = Vec::new();
            let mut complete = true;
            for upstream in table.upstreams() {
                match fetch(&client, &upstream.base_url).await {
                    Some(doc) => docs.push((upstream.name, doc)),
                    None => {
                        complete = false;
                        tracing::warn!(upstream = upstream.name, "OpenAPI document unavailable");
                    }
                }
            }
            let body = web::Bytes::from(serde_json::to_vec(&merge(&docs)).unwrap_or_default());
            // A partial document is served but not cached, so it heals on the next call.
            if complete && let Ok(mut cache) = spec.cached.lock() {
                *cache = Some((Instant::now(), body.clone()));
            }
            body
        }
    };
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_paths_and_schemas() {
        let a = json!({"paths": {"/api/v1/auth/login": {}}, "components": {"schemas": {"A": {}}, "securitySchemes": {"bearer": {}}}});
        let b = json!({"paths": {"/api/v1/users/{id}": {}}, "components": {"schemas": {"B": {}}}});
        let merged = merge(&[("auth", a), ("users", b)]);
        assert!(merged["paths"]["/api/v1/auth/login"].is_object());
        assert!(merged["paths"]["/api/v1/users/{id}"].is_object());
        assert!(merged["components"]["schemas"]["A"].is_object());
        assert!(merged["components"]["schemas"]["B"].is_object());
        assert!(merged["components"]["securitySchemes"]["bearer"].is_object());
    }
}
