//! NetworkPolicies: a platform's pods accept only the traffic they are meant to get. The
//! services open their API and ops ports and nothing else, to anyone (the ingress
//! controller and the monitoring run in namespaces of their own, under labels this
//! operator cannot know); the database takes connections only from its own platform's
//! pods (services and provisioning Job). Ingress rules only: egress stays open, so DNS
//! and the API server need no per-cluster addresses.

use crate::build::{API_PORT, OPS_PORT, Owner};
use crate::database;
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

fn port(number: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(number)),
        protocol: Some("TCP".to_owned()),
        ..NetworkPolicyPort::default()
    }
}

fn same_platform(owner: &Owner) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/instance".to_owned(),
                    owner.name().to_owned(),
                ),
                ("app.kubernetes.io/part-of".to_owned(), "agora".to_owned()),
            ])),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    }
}

fn policy(owner: &Owner, component: &str, ingress: Vec<NetworkPolicyIngressRule>) -> NetworkPolicy {
    NetworkPolicy {
        metadata: owner.meta(component, owner.child_name(component)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(owner.selector(component)),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(ingress),
            ..NetworkPolicySpec::default()
        }),
    }
}

/// A service's policy: its API port (the edge, the other services) and its ops port
/// (probes, scrapes) from anywhere; no other port.
pub fn service_policy(owner: &Owner, service: &str) -> NetworkPolicy {
    policy(
        owner,
        service,
        vec![NetworkPolicyIngressRule {
            ports: Some(vec![port(API_PORT), port(OPS_PORT)]),
            from: None,
        }],
    )
}

/// The database's policy: PostgreSQL's port from its platform's pods only.
pub fn database_policy(owner: &Owner) -> NetworkPolicy {
    policy(
        owner,
        database::COMPONENT,
        vec![NetworkPolicyIngressRule {
            ports: Some(vec![port(database::PORT)]),
            from: Some(vec![same_platform(owner)]),
        }],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_admits_only_its_platform() {
        let p: crate::SocialPlatform = serde_json::from_value(serde_json::json!({
            "apiVersion": "agora.dev/v1alpha1",
            "kind": "SocialPlatform",
            "metadata": {"name": "demo", "namespace": "social", "uid": "1234"},
            "spec": {"host": "demo.example"},
        }))
        .unwrap();
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
        let users = service_policy(&owner, "users").spec.unwrap();
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
}
