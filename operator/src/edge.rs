//! The edge: how clients reach the platform through the cluster's ingress controller.
//! Up to three Ingresses share the host: `<platform>` carries every service's area behind
//! the chosen auth middleware, `<platform>-public` the contract's public endpoints without
//! it (exact paths), and `<platform>-fallback` the gateway for whatever no service owns
//! (the merged OpenAPI document, problem+json 404s). Public paths with an id in them
//! (photo content) cannot be an Ingress path: they stay behind the middleware, whose
//! `/verify` lets them through without a token. The services verify tokens themselves
//! too, so `authMiddleware: None` is still safe.
//!
//! Ingress controllers disagree on which of two matching paths wins: ingress-nginx and the
//! Ingress spec prefer an exact path, then the longest prefix; Traefik ranks its routers by
//! the length of their rule, so `PathPrefix(`/api/v1/auth`)` would outrank
//! `Path(`/api/v1/auth/jwks`)` and send a public path through the middleware. Each
//! Ingress therefore carries an explicit Traefik priority (public > areas > fallback),
//! which is why the fallback prefix has an Ingress of its own.

use crate::crd::{AuthMiddleware, SocialPlatform};
use crate::owner::{API_PORT, Owner};
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
        "notifications" => &["/api/v1/notifications"],
        _ => &[],
    }
}

/// The contract's public endpoints (no token), by workload: `(workload, exact path)`.
const PUBLIC: [(&str, &str); 7] = [
    ("auth", "/api/v1/auth/register"),
    ("auth", "/api/v1/auth/login"),
    ("auth", "/api/v1/auth/refresh"),
    ("auth", "/api/v1/auth/jwks"),
    ("auth", "/.well-known/jwks.json"),
    ("gateway", "/api/v1/openapi.json"),
    // A browser's EventSource cannot send the token: the service checks a ticket.
    ("notifications", "/api/v1/notifications/stream"),
];

/// The gateway's prefix: the rest of the API, which no service owns.
const FALLBACK: &str = "/api/v1";

/// Traefik's per-router priority annotation (higher wins; unset, a rule's length).
const TRAEFIK_PRIORITY: &str = "traefik.ingress.kubernetes.io/router.priority";

/// Traefik priorities of the three Ingresses: exact public paths over the service areas
/// over the gateway's fallback prefix.
const PUBLIC_PRIORITY: &str = "300";
const PROTECTED_PRIORITY: &str = "200";
const FALLBACK_PRIORITY: &str = "100";

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

/// The most of `/verify`'s answer Traefik reads (a problem+json refusal is ~200 bytes).
const VERIFY_ANSWER_MAX_BYTES: u32 = 16 * 1024;

/// A Traefik forwardAuth `Middleware` asking the auth service's `/verify`, and passing
/// its `X-User-Id`/`X-User-Name` on to the services. `trustForwardHeader: false` said,
/// not left unset: Traefik then drops every `X-Forwarded-*` a client sent before setting
/// its own (unset, it kept some, such as `X-Forwarded-Prefix`, and warned of it).
pub fn traefik_middleware(owner: &Owner, namespace: &str) -> DynamicObject {
    let mut object = DynamicObject::new(&middleware_name(owner), &middleware_resource())
        .within(namespace)
        .data(serde_json::json!({
            "spec": {"forwardAuth": {
                "address": verify_url(owner, namespace),
                "authResponseHeaders": ["X-User-Id", "X-User-Name"],
                "trustForwardHeader": false,
                "maxResponseBodySize": VERIFY_ANSWER_MAX_BYTES,
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

/// The Ingresses of the edge for the enabled services.
pub struct Ingresses {
    /// Every service's area, behind the auth middleware.
    pub protected: Ingress,
    /// The contract's public endpoints, exact paths without the middleware.
    pub public: Ingress,
    /// The gateway's fallback prefix, when the gateway is enabled.
    pub fallback: Option<Ingress>,
}

/// The names of every Ingress the edge may have: `(protected, public, fallback)`.
pub fn ingress_names(owner: &Owner) -> [String; 3] {
    let name = owner.name();
    [
        name.to_owned(),
        format!("{name}-public"),
        format!("{name}-fallback"),
    ]
}

/// The Ingresses for the enabled services.
pub fn ingresses(
    platform: &SocialPlatform,
    owner: &Owner,
    namespace: &str,
    enabled: &[&str],
) -> Ingresses {
    let [protected_name, public_name, fallback_name] = ingress_names(owner);
    let priority = |value: &str| (TRAEFIK_PRIORITY.to_owned(), value.to_owned());
    let protected_paths = enabled
        .iter()
        .flat_map(|service| {
            areas(service)
                .iter()
                .map(move |p| path(owner, service, p, false))
        })
        .collect();
    let mut annotations = BTreeMap::from([priority(PROTECTED_PRIORITY)]);
    match platform.spec.edge.auth_middleware {
        AuthMiddleware::Traefik => {
            annotations.insert(
                "traefik.ingress.kubernetes.io/router.middlewares".to_owned(),
                format!("{namespace}-{}@kubernetescrd", middleware_name(owner)),
            );
        }
        AuthMiddleware::Nginx => {
            annotations.insert(
                "nginx.ingress.kubernetes.io/auth-url".to_owned(),
                verify_url(owner, namespace),
            );
            annotations.insert(
                "nginx.ingress.kubernetes.io/auth-response-headers".to_owned(),
                "X-User-Id,X-User-Name".to_owned(),
            );
        }
        AuthMiddleware::EnvoyGateway | AuthMiddleware::None => {}
    }
    let public_paths = PUBLIC
        .iter()
        .filter(|(service, _)| enabled.contains(service))
        .map(|(service, p)| path(owner, service, p, true))
        .collect();
    Ingresses {
        protected: ingress(
            platform,
            owner,
            protected_name,
            protected_paths,
            annotations,
        ),
        public: ingress(
            platform,
            owner,
            public_name,
            public_paths,
            BTreeMap::from([priority(PUBLIC_PRIORITY)]),
        ),
        fallback: enabled.contains(&"gateway").then(|| {
            ingress(
                platform,
                owner,
                fallback_name,
                vec![path(owner, "gateway", FALLBACK, false)],
                BTreeMap::from([priority(FALLBACK_PRIORITY)]),
            )
        }),
    }
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
    // Gateway API ranks an exact match over any prefix and a longer prefix over a
    // shorter one, so the fallback can share the public route.
    let public = PUBLIC
        .iter()
        .filter(|(service, _)| enabled.contains(service))
        .map(|(service, p)| route_rule(owner, service, p, true))
        .chain(
            enabled
                .contains(&"gateway")
                .then(|| route_rule(owner, "gateway", FALLBACK, false)),
        )
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
        crate::fixtures::platform(serde_json::json!({"host": "demo.example", "edge": edge}))
    }

    fn paths(ingress: &Ingress) -> Vec<(String, String, String)> {
        ingress.spec.as_ref().unwrap().rules.as_ref().unwrap()[0]
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
            .collect()
    }

    fn annotation<'a>(ingress: &'a Ingress, key: &str) -> Option<&'a str> {
        let annotations = ingress.metadata.annotations.as_ref()?;
        annotations.get(key).map(String::as_str)
    }

    fn priority(ingress: &Ingress) -> u32 {
        annotation(ingress, TRAEFIK_PRIORITY)
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn protected_areas_get_the_middleware_and_public_paths_do_not() {
        let p = platform(serde_json::json!({"className": "traefik"}));
        let owner = Owner::of(&p).unwrap();
        let edge = ingresses(&p, &owner, "social", &["auth", "users", "relations"]);
        assert_eq!(
            annotation(
                &edge.protected,
                "traefik.ingress.kubernetes.io/router.middlewares"
            ),
            Some("social-demo-forward-auth@kubernetescrd")
        );
        let spec = edge.protected.spec.as_ref().unwrap();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("traefik"));
        assert_eq!(
            spec.rules.as_ref().unwrap()[0].host.as_deref(),
            Some("demo.example")
        );
        let protected = paths(&edge.protected);
        assert!(protected.contains(&("/api/v1/feed".into(), "Prefix".into(), "demo-users".into())));
        assert!(protected.contains(&(
            "/api/v1/relations".into(),
            "Prefix".into(),
            "demo-relations".into()
        )));
        assert!(
            !protected
                .iter()
                .any(|(p, ..)| p.starts_with("/api/v1/photos")),
            "photos is not enabled"
        );
        assert_eq!(
            annotation(
                &edge.public,
                "traefik.ingress.kubernetes.io/router.middlewares"
            ),
            None
        );
        let public = paths(&edge.public);
        assert!(public.iter().all(|(_, kind, _)| kind == "Exact"));
        assert!(public.contains(&(
            "/api/v1/auth/login".into(),
            "Exact".into(),
            "demo-auth".into()
        )));
        assert_eq!(public.len(), 5, "no gateway enabled");
        assert!(edge.fallback.is_none(), "no gateway enabled");
        let middleware = traefik_middleware(&owner, "social");
        let forward_auth = &middleware.data["spec"]["forwardAuth"];
        assert_eq!(
            forward_auth["address"],
            "http://demo-auth.social.svc.cluster.local:8080/api/v1/auth/verify"
        );
        assert_eq!(forward_auth["trustForwardHeader"], false);
        assert_eq!(forward_auth["maxResponseBodySize"], 16 * 1024);
    }

    #[test]
    fn traefik_ranks_public_paths_over_areas_over_the_gateway_fallback() {
        let p = platform(serde_json::json!({"className": "traefik"}));
        let owner = Owner::of(&p).unwrap();
        let edge = ingresses(&p, &owner, "social", &["auth", "users", "gateway"]);
        assert!(paths(&edge.public).contains(&(
            "/api/v1/openapi.json".into(),
            "Exact".into(),
            "demo-gateway".into()
        )));
        let fallback = edge.fallback.as_ref().unwrap();
        assert_eq!(fallback.metadata.name.as_deref(), Some("demo-fallback"));
        assert_eq!(
            paths(fallback),
            [("/api/v1".into(), "Prefix".into(), "demo-gateway".into())]
        );
        assert_eq!(
            annotation(fallback, "traefik.ingress.kubernetes.io/router.middlewares"),
            None
        );
        // Left to rule lengths, `PathPrefix(`/api/v1/auth`)` beat `Path(`/api/v1/auth/jwks`)`.
        assert!(priority(&edge.public) > priority(&edge.protected));
        assert!(priority(&edge.protected) > priority(fallback));
        let names: Vec<_> = [&edge.protected, &edge.public, fallback]
            .iter()
            .map(|i| i.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ingress_names(&owner));
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
        let protected = ingresses(&p, &owner, "social", &["auth"]).protected;
        let annotations = protected.metadata.annotations.unwrap();
        assert!(
            annotations["nginx.ingress.kubernetes.io/auth-url"].ends_with("/api/v1/auth/verify")
        );
        let p = platform(serde_json::json!({"authMiddleware": "None"}));
        let protected = ingresses(&p, &Owner::of(&p).unwrap(), "social", &["auth"]).protected;
        assert_eq!(
            annotation(
                &protected,
                "traefik.ingress.kubernetes.io/router.middlewares"
            ),
            None
        );
        assert_eq!(
            annotation(&protected, "nginx.ingress.kubernetes.io/auth-url"),
            None
        );
    }
}
