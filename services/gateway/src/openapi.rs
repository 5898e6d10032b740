//! The merged OpenAPI document of every routed service, served at
//! `/api/v1/openapi.json`. Each service's `/openapi.json` (on its ops port) is fetched,
//! all at once and with a short timeout, by one request at a time (the others wait for
//! its result), and the result is cached, so a slow or dead upstream cannot turn the
//! document into N slow fetches per call.

use crate::routes::RouteTable;
use actix_web::{HttpResponse, web};
use agora_common::ApiError;
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

/// How long a complete document is served from cache.
const CACHE_COMPLETE: Duration = Duration::from_secs(60);
/// How long a partial one (an upstream was down) is: short, so it heals soon.
const CACHE_PARTIAL: Duration = Duration::from_secs(5);
/// How long one upstream's document may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

/// The last merged document.
#[derive(Default)]
pub struct MergedSpec {
    cached: tokio::sync::Mutex<Option<(Instant, Duration, web::Bytes)>>,
}

/// Two services defined one schema name differently: the merged document would lie.
#[derive(Debug, thiserror::Error)]
#[error("services {first} and {second} define `{kind}` entry {name} differently")]
pub struct MergeConflict {
    /// Component kind (`schemas`, …).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// The service that defined it first.
    pub first: String,
    /// The service whose definition differs.
    pub second: String,
}

/// Merges `paths` and `components` of several documents into one. Identical shared
/// components (the kit's `Problem`) merge; different ones under one name are an error.
pub fn merge(docs: &[(&str, Value)]) -> Result<Value, MergeConflict> {
    let mut paths = Map::new();
    let mut components: Map<String, Value> = Map::new();
    let mut owners: std::collections::HashMap<(String, String), &str> = Default::default();
    let mut tags = Vec::new();
    for (service, doc) in docs {
        for (path, item) in doc
            .get("paths")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            match paths.get(path) {
                Some(existing) if existing != item => {
                    return Err(MergeConflict {
                        kind: "paths".to_owned(),
                        name: path.clone(),
                        first: String::from("another service"),
                        second: (*service).to_owned(),
                    });
                }
                Some(_) => {}
                None => {
                    paths.insert(path.clone(), item.clone());
                }
            }
        }
        for (kind, entries) in doc
            .get("components")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let Some(entries) = entries.as_object() else {
                continue;
            };
            let target = components.entry(kind.clone()).or_insert_with(|| json!({}));
            let Some(target) = target.as_object_mut() else {
                continue;
            };
            for (name, definition) in entries {
                match target.get(name) {
                    Some(existing) if existing != definition => {
                        return Err(MergeConflict {
                            kind: kind.clone(),
                            name: name.clone(),
                            first: owners
                                .get(&(kind.clone(), name.clone()))
                                .map_or_else(String::new, |s| (*s).to_owned()),
                            second: (*service).to_owned(),
                        });
                    }
                    Some(_) => {}
                    None => {
                        target.insert(name.clone(), definition.clone());
                        owners.insert((kind.clone(), name.clone()), service);
                    }
                }
            }
        }
        tags.push(json!({"name": service}));
    }
    Ok(json!({
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
    }))
}

async fn fetch(client: &awc::Client, ops_url: &str) -> Option<Value> {
    let mut resp = client
        .get(format!("{ops_url}/openapi.json"))
        .timeout(FETCH_TIMEOUT)
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
    table: &RouteTable,
    client: &awc::Client,
    spec: &MergedSpec,
) -> Result<HttpResponse, ApiError> {
    // Holding the lock across the fetch is the point: one fetch, everyone else waits.
    let mut cache = spec.cached.lock().await;
    let body = match cache.as_ref() {
        Some((at, ttl, body)) if at.elapsed() < *ttl => body.clone(),
        _ => {
            let fetched = futures_util::future::join_all(
                table
                    .upstreams()
                    .iter()
                    .map(|u| async move { (u.name(), fetch(client, &u.ops_url).await) }),
            )
            .await;
            let complete = fetched.iter().all(|(_, doc)| doc.is_some());
            let docs: Vec<(&str, Value)> = fetched
                .into_iter()
                .filter_map(|(name, doc)| {
                    if doc.is_none() {
                        tracing::warn!(upstream = name, "OpenAPI document unavailable");
                    }
                    doc.map(|d| (name, d))
                })
                .collect();
            let document = merge(&docs).map_err(|conflict| {
                tracing::error!(error = %conflict, "the services' OpenAPI documents conflict");
                ApiError::internal(conflict)
            })?;
            let body = web::Bytes::from(serde_json::to_vec(&document).map_err(ApiError::internal)?);
            let ttl = if complete {
                CACHE_COMPLETE
            } else {
                CACHE_PARTIAL
            };
            *cache = Some((Instant::now(), ttl, body.clone()));
            body
        }
    };
    drop(cache);
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("cache-control", "public, max-age=60"))
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_paths_and_schemas() {
        let problem = json!({"type": "object"});
        let a = json!({"paths": {"/api/v1/auth/login": {}}, "components": {"schemas": {"A": {}, "Problem": problem}, "securitySchemes": {"bearer": {}}}});
        let b = json!({"paths": {"/api/v1/users/{id}": {}}, "components": {"schemas": {"B": {}, "Problem": problem}}});
        let merged = merge(&[("auth", a), ("users", b)]).unwrap();
        assert!(merged["paths"]["/api/v1/auth/login"].is_object());
        assert!(merged["paths"]["/api/v1/users/{id}"].is_object());
        assert!(merged["components"]["schemas"]["A"].is_object());
        assert!(merged["components"]["schemas"]["B"].is_object());
        assert!(merged["components"]["securitySchemes"]["bearer"].is_object());
    }

    #[test]
    fn different_schemas_under_one_name_fail_loudly() {
        let a = json!({"components": {"schemas": {"User": {"type": "object"}}}});
        let b = json!({"components": {"schemas": {"User": {"type": "string"}}}});
        let err = merge(&[("auth", a), ("users", b)]).unwrap_err();
        assert_eq!((err.first.as_str(), err.second.as_str()), ("auth", "users"));
        assert_eq!(err.name, "User");
    }
}
