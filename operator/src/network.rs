//! NetworkPolicies: a platform's pods accept and open only the traffic they are meant
//! to. In: the services open their API and ops ports and nothing else, to anyone (the
//! ingress controller and the monitoring run in namespaces of their own, under labels
//! this operator cannot know); the database takes connections only from its own
//! platform's pods (services and provisioning Job). Out: a workload reaches DNS and its
//! own platform's pods (the other services, the managed database), the CloudNativePG
//! cluster's pods in that mode, and anywhere only where the address is the user's own
//! and unknown here (an External database, an S3 endpoint), and the OTLP collector's
//! port when the platform traces; the database reaches nothing but DNS.

use crate::crd::{DatabaseMode, SocialPlatform};
use crate::database;
use crate::owner::{API_PORT, OPS_PORT, Owner};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

fn port(number: i32) -> NetworkPolicyPort {
    port_on(number, "TCP")
}

fn port_on(number: i32, protocol: &str) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(number)),
        protocol: Some(protocol.to_owned()),
        ..NetworkPolicyPort::default()
    }
}

/// Name resolution, wherever the cluster's DNS runs.
fn dns() -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        ports: Some(vec![port_on(53, "UDP"), port_on(53, "TCP")]),
        to: None,
    }
}

fn pods(labels: BTreeMap<String, String>) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(LabelSelector {
            match_labels: Some(labels),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    }
}

fn same_platform(owner: &Owner) -> NetworkPolicyPeer {
    pods(BTreeMap::from([
        (
            "app.kubernetes.io/instance".to_owned(),
            owner.name().to_owned(),
        ),
        ("app.kubernetes.io/part-of".to_owned(), "agora".to_owned()),
    ]))
}

fn policy(
    owner: &Owner,
    component: &str,
    ingress: Vec<NetworkPolicyIngressRule>,
    egress: Vec<NetworkPolicyEgressRule>,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: owner.meta(component, owner.child_name(component)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(owner.selector(component)),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
            ingress: Some(ingress),
            egress: Some(egress),
        }),
    }
}

/// A workload's policy. In: its API port (the edge, the other services) and its ops
/// port (probes, scrapes) from anywhere; no other port. Out: see the module docs.
pub fn service_policy(platform: &SocialPlatform, owner: &Owner, service: &str) -> NetworkPolicy {
    let mut egress = vec![
        dns(),
        NetworkPolicyEgressRule {
            ports: None,
            to: Some(vec![same_platform(owner)]),
        },
    ];
    let has_database = service != "gateway";
    match platform.spec.database.mode {
        DatabaseMode::CloudNativePg if has_database => egress.push(NetworkPolicyEgressRule {
            ports: Some(vec![port(database::PORT)]),
            to: Some(vec![pods(BTreeMap::from([(
                "cnpg.io/cluster".to_owned(),
                database::host(owner),
            )]))]),
        }),
        DatabaseMode::External if has_database => egress.push(anywhere()),
        _ => {}
    }
    let erasure_log = platform
        .spec
        .backup
        .as_ref()
        .is_some_and(|b| b.destination.s3.is_some());
    if (service == "photos" && platform.spec.photos.storage.s3.is_some())
        || (service == "auth" && erasure_log)
    {
        egress.push(anywhere());
    }
    // Spans go to the collector's port, wherever it runs.
    if let Some(tracing) = &platform.spec.observability.tracing {
        egress.push(NetworkPolicyEgressRule {
            ports: Some(vec![port(endpoint_port(&tracing.otlp_endpoint))]),
            to: None,
        });
    }
    policy(
        owner,
        service,
        vec![NetworkPolicyIngressRule {
            ports: Some(vec![port(API_PORT), port(OPS_PORT)]),
            from: None,
        }],
        egress,
    )
}

/// The port of an `http(s)://host[:port][/path]` endpoint (the scheme's when absent).
fn endpoint_port(endpoint: &str) -> i32 {
    let (scheme, rest) = endpoint.split_once("://").unwrap_or(("http", endpoint));
    let authority = rest.split('/').next().unwrap_or_default();
    let explicit = authority
        .rsplit_once(':')
        .filter(|(host, _)| !host.ends_with(']') || authority.starts_with('['))
        .and_then(|(_, port)| port.parse::<i32>().ok());
    explicit.unwrap_or(if scheme == "https" { 443 } else { 80 })
}

/// Any address, any port: for endpoints the user names by URL (unknown until resolved).
fn anywhere() -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        ports: None,
        to: None,
    }
}

/// The database's policy: PostgreSQL's port from its platform's pods only; out, DNS only.
pub fn database_policy(owner: &Owner) -> NetworkPolicy {
    policy(
        owner,
        database::COMPONENT,
        vec![NetworkPolicyIngressRule {
            ports: Some(vec![port(database::PORT)]),
            from: Some(vec![same_platform(owner)]),
        }],
        vec![dns()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_admits_only_its_platform() {
        let p = crate::fixtures::minimal();
        let owner = Owner::of(&p).unwrap();
        let db = database_policy(&owner).spec.unwrap();
        assert_eq!(
            db.pod_selector.unwrap().match_labels.unwrap()["app.kubernetes.io/name"],
            "postgres"
        );
        let rule = &db.ingress.unwrap()[0];
        let from = rule.from.as_ref().unwrap()[0]
            .pod_selector
            .as_ref()
            .unwrap();
        assert_eq!(
            from.match_labels.as_ref().unwrap()["app.kubernetes.io/instance"],
            "demo"
        );
        assert_eq!(
            rule.ports.as_ref().unwrap()[0].port,
            Some(IntOrString::Int(5432))
        );
        assert_eq!(db.egress.unwrap().len(), 1, "the database reaches DNS only");
        let users = service_policy(&p, &owner, "users").spec.unwrap();
        let egress = users.egress.clone().unwrap();
        assert_eq!(
            egress.len(),
            2,
            "DNS and the platform's own pods: {egress:?}"
        );
        assert!(
            egress
                .iter()
                .all(|rule| rule.to.is_some() || rule.ports.is_some())
        );
        let ports: Vec<_> = users.ingress.unwrap()[0]
            .ports
            .clone()
            .unwrap()
            .into_iter()
            .map(|p| p.port)
            .collect();
        assert_eq!(
            ports,
            [Some(IntOrString::Int(8080)), Some(IntOrString::Int(9090))]
        );
    }

    #[test]
    fn tracing_opens_the_collectors_port_only() {
        assert_eq!(endpoint_port("http://jaeger.tracing:4318"), 4318);
        assert_eq!(endpoint_port("http://jaeger.tracing:4317/"), 4317);
        assert_eq!(endpoint_port("https://otel.example"), 443);
        assert_eq!(endpoint_port("http://[::1]:4318/v1"), 4318);
        assert_eq!(endpoint_port("http://otel.example/v1"), 80);
        let traced = crate::fixtures::platform(serde_json::json!({"host": "demo.example",
            "observability": {"tracing": {"otlpEndpoint": "http://jaeger.tracing:4318"}}}));
        let owner = Owner::of(&traced).unwrap();
        let egress = service_policy(&traced, &owner, "users")
            .spec
            .unwrap()
            .egress
            .unwrap();
        let last = egress.last().unwrap();
        assert!(last.to.is_none());
        assert_eq!(
            last.ports.as_ref().unwrap()[0].port,
            Some(IntOrString::Int(4318))
        );
    }

    #[test]
    fn egress_opens_only_to_what_the_mode_needs() {
        let platform = |spec: serde_json::Value| -> crate::SocialPlatform {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "agora.dev/v1alpha1",
                "kind": "SocialPlatform",
                "metadata": {"name": "demo", "namespace": "social", "uid": "1234"},
                "spec": spec,
            }))
            .unwrap()
        };
        let open = |p: &crate::SocialPlatform, service: &str| {
            let owner = Owner::of(p).unwrap();
            service_policy(p, &owner, service)
                .spec
                .unwrap()
                .egress
                .unwrap()
                .iter()
                .any(|rule| rule.to.is_none() && rule.ports.is_none())
        };
        let cnpg = platform(serde_json::json!({
            "host": "demo.example", "database": {"mode": "CloudNativePG"},
        }));
        let owner = Owner::of(&cnpg).unwrap();
        let egress = service_policy(&cnpg, &owner, "users")
            .spec
            .unwrap()
            .egress
            .unwrap();
        let to_cluster = egress[2].to.as_ref().unwrap()[0]
            .pod_selector
            .as_ref()
            .unwrap();
        assert_eq!(
            to_cluster.match_labels.as_ref().unwrap()["cnpg.io/cluster"],
            "demo-postgres"
        );
        assert!(!open(&cnpg, "users"));
        let external = platform(serde_json::json!({
            "host": "demo.example",
            "database": {"mode": "External", "external": {"secretRef": {"name": "dbs"}}},
        }));
        assert!(open(&external, "users"), "an external database is anywhere");
        assert!(!open(&external, "gateway"), "the gateway has no database");
        let s3 = platform(
            serde_json::json!({"host": "demo.example", "photos": {"storage": {
                "s3": {"bucket": "photos", "secretRef": {"name": "s3-creds"}}
            }}}),
        );
        assert!(open(&s3, "photos"));
        assert!(!open(&s3, "users"));
    }
}
