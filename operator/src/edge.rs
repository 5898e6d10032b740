//! The edge: how clients reach the platform through the cluster's ingress controller.
//! Two Ingresses share the host: `<platform>` carries every service's area behind the
//! chosen auth middleware, `<platform>-public` the contract's public endpoints without
//! it (exact paths, which ingress controllers prefer over prefixes) and, for whatever
//! no service owns, the gateway (the merged OpenAPI document, problem+json 404s; the
//! shortest prefix, so any service's area wins over it). Public paths with an id in
//! them (photo content) cannot be an Ingress path: they stay behind the middleware,
//! whose `/verify` lets them through without a token. The services verify tokens
//! themselves too, so `authMiddleware: None` is still safe.

use crate::build::{API_PORT, Owner};
use crate::crd::{AuthMiddleware, SocialPlatform};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use std::collections::BTreeMap;

/// The path prefixes each service answers (its route policy's areas).
pub fn areas(service: &str) -> &'static [&'static str] {
    match service {
        "auth" => &["/api/v1/auth", "/.well-known/jwks.json"],
        "users" => &["/api/v1/users", "/api/v1/posts", "/api/v1/feed"],
        "photos" => &["/api/v1/photos"],
        "relations" => &["/api/v1/relations"],
        "events" => &["/api/v1/events"],
        _ => &[],
    }
}

/// The contract's public endpoints (no token), by workload: `(workload, path, exact)`.
const PUBLIC: [(&str, &str, bool); 7] = [
    ("auth", "/api/v1/auth/register", true),
    ("auth", "/api/v1/auth/login", true),
    ("auth", "/api/v1/auth/refresh", true),
    ("auth", "/api/v1/auth/jwks", true),
    ("auth", "/.well-known/jwks.json", true),
    ("gateway", "/api/v1/openapi.json", true),
    ("gateway", "/api/v1", false),
];

/// The forward-auth endpoint of the platform's auth service, inside the cluster.
pub fn verify_url(owner: &Owner, namespace: &str) -> String {
    format!(
        "http://{}.{namespace}.svc.cluster.local:{API_PORT}/api/v1/auth/verify",
        owner.child_name("auth")
    )
}

/// The name of the Traefik `Middleware`.
pub fn middleware_name(owner: &Owner) -> String {
    owner.child_name("forward-auth")
}

/// Traefik's `Middleware` API (`traefik.io/v1alpha1`).
pub fn middleware_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("traefik.io", "v1alpha1", "Middleware"),
        "middlewares",
    )
}

/// A Traefik forwardAuth `Middleware` asking the auth service's `/verify`, and passing
/// its `X-User-Id`/`X-User-Name` on to the services.
pub fn traefik_middleware(owner: &Owner, namespace: &str) -> DynamicObject {
    let mut object = DynamicObject::new(&middleware_name(owner), &middleware_resource())
        .within(namespace)
        .data(serde_json::json!({
            "spec": {"forwardAuth": {
                "address": verify_url(owner, namespace),
                "authResponseHeaders": ["X-User-Id", "X-User-Name"],
            }}
        }));
    object.metadata = owner.meta("edge", middleware_name(owner));
    object
}

fn path(owner: &Owner, service: &str, path: &str, exact: bool) -> HTTPIngressPath {
    HTTPIngressPath {
        path: Some(path.to_owned()),
        path_type: if exact { "Exact" } else { "Prefix" }.to_owned(),
        backend: IngressBackend {
            service: Some(IngressServiceBackend {
                name: owner.child_name(service),
                port: Some(ServiceBackendPort {
                    name: Some("http".to_owned()),
                    ..ServiceBackendPort::default()
                }),
            }),
            ..IngressBackend::default()
        },
    }
}

fn ingress(
    platform: &SocialPlatform,
    owner: &Owner,
    name: String,
    paths: Vec<HTTPIngressPath>,
    annotations: BTreeMap<String, String>,
) -> Ingress {
    let edge = &platform.spec.edge;
    let mut metadata = owner.meta("edge", name);
    metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: edge.class_name.clone(),
            tls: edge.tls.as_ref().map(|tls| {
                vec![IngressTLS {
                    hosts: Some(vec![platform.spec.host.clone()]),
                    secret_name: Some(tls.secret_name.clone()),
                }]
            }),
            rules: Some(vec![IngressRule {
                host: Some(platform.spec.host.clone()),
                http: Some(HTTPIngressRuleValue { paths }),
            }]),
            ..IngressSpec::default()
        }),
        status: None,
    }
}

/// The two Ingresses for the enabled services: `(protected, public)`.
pub fn ingresses(
    platform: &SocialPlatform,
    owner: &Owner,
    namespace: &str,
    enabled: &[&str],
) -> (Ingress, Ingress) {
    let protected_paths = enabled
        .iter()
        .flat_map(|service| {
            areas(service)
                .iter()
                .map(move |p| path(owner, service, p, false))
        })
        .collect();
    let annotations = match platform.spec.edge.auth_middleware {
        AuthMiddleware::Traefik => BTreeMap::from([(
            "traefik.ingress.kubernetes.io/router.middlewares".to_owned(),
            format!("{namespace}-{}@kubernetescrd", middleware_name(owner)),
        )]),
        AuthMiddleware::Nginx => BTreeMap::from([
            (
                "nginx.ingress.kubernetes.io/auth-url".to_owned(),
                verify_url(owner, namespace),
            ),
            (
                "nginx.ingress.kubernetes.io/auth-response-headers".to_owned(),
                "X-User-Id,X-User-Name".to_owned(),
            ),
        ]),
        AuthMiddleware::EnvoyGateway | AuthMiddleware::None => BTreeMap::new(),
    };
    let public_paths = PUBLIC
        .iter()
        .filter(|(service, ..)| enabled.contains(service))
        .map(|(service, p, exact)| path(owner, service, p, *exact))
        .collect();
    (
        ingress(
            platform,
            owner,
            owner.name().to_owned(),
            protected_paths,
            annotations,
        ),
        ingress(
            platform,
            owner,
            format!("{}-public", owner.name()),
            public_paths,
            BTreeMap::new(),
        ),
    )
}

/// Gateway API's `HTTPRoute` (`gateway.networking.k8s.io/v1`).
pub fn http_route_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    )
}

/// Envoy Gateway's `SecurityPolicy` (`gateway.envoyproxy.io/v1alpha1`).
pub fn security_policy_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.envoyproxy.io", "v1alpha1", "SecurityPolicy"),
        "securitypolicies",
    )
}

fn route_rule(owner: &Owner, service: &str, path: &str, exact: bool) -> serde_json::Value {
    serde_json::json!({
        "matches": [{"path": {"type": if exact { "Exact" } else { "PathPrefix" }, "value": path}}],
        "backendRefs": [{"name": owner.child_name(service), "port": API_PORT}],
    })
}

/// The two `HTTPRoute`s (`edge.kind: GatewayAPI`), `(protected, public)`, attached to
/// `edge.gateway`; the same split as the Ingresses.
pub fn http_routes(
    platform: &SocialPlatform,
    owner: &Owner,
    namespace: &str,
    enabled: &[&str],
) -> (DynamicObject, DynamicObject) {
    let gateway = platform.spec.edge.gateway.as_ref();
    let parent = serde_json::json!({
        "name": gateway.map(|g| g.name.clone()).unwrap_or_default(),
        "namespace": gateway
            .and_then(|g| g.namespace.clone())
            .unwrap_or_else(|| namespace.to_owned()),
    });
    let route = |name: String, rules: Vec<serde_json::Value>| {
        let mut object = DynamicObject::new(&name, &http_route_resource())
            .within(namespace)
            .data(serde_json::json!({"spec": {
                "parentRefs": [parent.clone()],
                "hostnames": [platform.spec.host],
                "rules": rules,
            }}));
        object.metadata = owner.meta("edge", name);
        object
    };
    let protected = enabled
        .iter()
        .flat_map(|service| {
            areas(service)
                .iter()
                .map(move |p| route_rule(owner, service, p, false))
        })
        .collect();
    let public = PUBLIC
        .iter()
        .filter(|(service, ..)| enabled.contains(service))
        .map(|(service, p, exact)| route_rule(owner, service, p, *exact))
        .collect();
    (
        route(owner.name().to_owned(), protected),
        route(format!("{}-public", owner.name()), public),
    )
}

/// An Envoy Gateway `SecurityPolicy` on the protected route: external authorization by
/// the auth service's `/verify`, passing `X-User-Id`/`X-User-Name` on. Envoy Gateway
/// makes `path` a prefix (Envoy's `path_prefix`): the check arrives as
/// `/api/v1/auth/verify/<original path>` with the original method, which the auth
/// service answers for exactly that reason.
pub fn security_policy(owner: &Owner, namespace: &str) -> DynamicObject {
    let name = owner.child_name("forward-auth");
    let mut object = DynamicObject::new(&name, &security_policy_resource())
        .within(namespace)
        .data(serde_json::json!({"spec": {
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": owner.name()}],
            "extAuth": {"http": {
                "backendRefs": [{"name": owner.child_name("auth"), "port": API_PORT}],
                "path": "/api/v1/auth/verify",
                "headersToBackend": ["X-User-Id", "X-User-Name"],
            }},
        }}));
    object.metadata = owner.meta("edge", name);
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(edge: serde_json::Value) -> SocialPlatform {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "agora.dev/v1alpha1",
            "kind": "SocialPlatform",
            "metadata": {"name": "demo", "namespace": "social", "uid": "1234"},
            "spec": {"host": "demo.example", "edge": edge},
        }))
        .unwrap()
    }

    #[test]
    fn protected_areas_get_the_middleware_and_public_paths_do_not() {
        let p = platform(serde_json::json!({"className": "traefik"}));
        let owner = Owner::of(&p).unwrap();
        let (protected, public) = ingresses(&p, &owner, "social", &["auth", "users", "relations"]);
        assert_eq!(
            protected.metadata.annotations.unwrap()["traefik.ingress.kubernetes.io/router.middlewares"],
            "social-demo-forward-auth@kubernetescrd"
        );
        let spec = protected.spec.unwrap();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("traefik"));
        let rule = &spec.rules.unwrap()[0];
        assert_eq!(rule.host.as_deref(), Some("demo.example"));
        let paths: Vec<(String, String)> = rule
            .http
            .as_ref()
            .unwrap()
            .paths
            .iter()
            .map(|p| {
                (
                    p.path.clone().unwrap(),
                    p.backend.service.as_ref().unwrap().name.clone(),
                )
            })
            .collect();
        assert!(paths.contains(&("/api/v1/feed".into(), "demo-users".into())));
        assert!(paths.contains(&("/api/v1/relations".into(), "demo-relations".into())));
        assert!(
            !paths.iter().any(|(p, _)| p.starts_with("/api/v1/photos")),
            "photos is not enabled"
        );
        assert!(public.metadata.annotations.is_none());
        let public_rules = public.spec.unwrap().rules.unwrap();
        let public_paths = &public_rules[0].http.as_ref().unwrap().paths;
        assert!(public_paths.iter().all(|p| p.path_type == "Exact"));
        assert_eq!(public_paths.len(), 5, "no gateway enabled");
        // With the gateway: its document, and the rest of /api/v1 as the shortest prefix.
        let (_, public) = ingresses(&p, &owner, "social", &["auth", "users", "gateway"]);
        let paths: Vec<(String, String, String)> = public.spec.unwrap().rules.unwrap()[0]
            .http
            .as_ref()
            .unwrap()
            .paths
            .iter()
            .map(|p| {
                (
                    p.path.clone().unwrap(),
                    p.path_type.clone(),
                    p.backend.service.as_ref().unwrap().name.clone(),
                )
            })
            .collect();
        assert!(paths.contains(&(
            "/api/v1/openapi.json".into(),
            "Exact".into(),
            "demo-gateway".into()
        )));
        assert!(paths.contains(&("/api/v1".into(), "Prefix".into(), "demo-gateway".into())));
        let middleware = traefik_middleware(&owner, "social");
        assert_eq!(
            middleware.data["spec"]["forwardAuth"]["address"],
            "http://demo-auth.social.svc.cluster.local:8080/api/v1/auth/verify"
        );
    }

    #[test]
    fn gateway_api_routes_attach_to_the_named_gateway() {
        let p = platform(serde_json::json!({
            "kind": "GatewayAPI", "authMiddleware": "EnvoyGateway",
            "gateway": {"name": "edge", "namespace": "gateways"},
        }));
        let owner = Owner::of(&p).unwrap();
        let (protected, public) = http_routes(&p, &owner, "social", &["auth", "users"]);
        assert_eq!(protected.metadata.name.as_deref(), Some("demo"));
        let spec = &protected.data["spec"];
        assert_eq!(
            spec["parentRefs"][0],
            serde_json::json!({"name": "edge", "namespace": "gateways"})
        );
        assert_eq!(spec["hostnames"][0], "demo.example");
        let rules = spec["rules"].as_array().unwrap();
        assert!(
            rules
                .iter()
                .any(|r| r["matches"][0]["path"]["value"] == "/api/v1/feed"
                    && r["backendRefs"][0]["name"] == "demo-users")
        );
        let public_rules = public.data["spec"]["rules"].as_array().unwrap();
        assert!(
            public_rules
                .iter()
                .all(|r| r["matches"][0]["path"]["type"] == "Exact")
        );
        let (_, public) = http_routes(&p, &owner, "social", &["auth", "gateway"]);
        let rules = public.data["spec"]["rules"].as_array().unwrap();
        assert!(rules.iter().any(|r| r["matches"][0]["path"]
            == serde_json::json!({"type": "PathPrefix", "value": "/api/v1"})
            && r["backendRefs"][0]["name"] == "demo-gateway"));
        let policy = security_policy(&owner, "social");
        assert_eq!(policy.data["spec"]["targetRefs"][0]["name"], "demo");
        assert_eq!(
            policy.data["spec"]["extAuth"]["http"]["path"],
            "/api/v1/auth/verify"
        );
    }

    #[test]
    fn nginx_and_none_need_no_custom_resources() {
        let p = platform(serde_json::json!({"authMiddleware": "Nginx"}));
        let owner = Owner::of(&p).unwrap();
        let (protected, _) = ingresses(&p, &owner, "social", &["auth"]);
        let annotations = protected.metadata.annotations.unwrap();
        assert!(
            annotations["nginx.ingress.kubernetes.io/auth-url"].ends_with("/api/v1/auth/verify")
        );
        let p = platform(serde_json::json!({"authMiddleware": "None"}));
        let (protected, _) = ingresses(&p, &Owner::of(&p).unwrap(), "social", &["auth"]);
        assert!(protected.metadata.annotations.is_none());
    }
}
