//! The permissions the operator needs, as data: exactly the resources and verbs the
//! controller and the leader election call (read each module's API calls against this
//! list when changing them). `agora-operator rbac` prints them; the Helm chart renders
//! that output (`charts/agora-operator/files/rbac.yaml`, checked for drift), and
//! `operator/tests/rbac.rs` runs the controller as a service account bound to exactly
//! these rules against a real API server.

use k8s_openapi::api::rbac::v1::PolicyRule;
use serde::Serialize;

/// One rule: verbs on resources of an API group (`""` = core).
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub group: &'static str,
    pub resources: &'static [&'static str],
    pub verbs: &'static [&'static str],
}

/// What a child the controller owns needs: watched (`list`, `watch`), written by
/// server-side apply (`patch`; `create` for the first apply), removed by the clean-up
/// when the spec drops it (`delete`; see `apply::owned_kinds`).
const OWNED: &[&str] = &["list", "watch", "create", "patch", "delete"];

/// Cluster-wide: the operator reconciles `SocialPlatform`s in every namespace.
pub const CLUSTER_RULES: &[Rule] = &[
    Rule {
        group: "agora.dev",
        resources: &["socialplatforms"],
        verbs: &["get", "list", "watch"],
    },
    Rule {
        group: "agora.dev",
        resources: &["socialplatforms/status"],
        verbs: &["patch"],
    },
    // Children carry controller owner references that block the owner's deletion; API
    // servers enforcing OwnerReferencesPermissionEnforcement (OpenShift) require this.
    Rule {
        group: "agora.dev",
        resources: &["socialplatforms/finalizers"],
        verbs: &["update"],
    },
    // Backups: taken (their Job), their phase written, their files' finalizer added and
    // removed (`patch`), pruned by retention; the scheduler's Role grants `create`,
    // which the operator must hold itself.
    Rule {
        group: "agora.dev",
        resources: &["socialplatformbackups"],
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
    },
    Rule {
        group: "agora.dev",
        resources: &["socialplatformbackups/status"],
        verbs: &["patch"],
    },
    // Backup Jobs are owned by their backup object.
    Rule {
        group: "agora.dev",
        resources: &["socialplatformbackups/finalizers"],
        verbs: &["update"],
    },
    // A backup's size and outcome: its pod's termination message.
    Rule {
        group: "",
        resources: &["pods"],
        verbs: &["list"],
    },
    // Generated secrets are created once and read back, never changed or deleted by the
    // operator (an External database's Secret is only read); `patch` only because the
    // restore Job's Role grants it on the restored platform's keys Secret, and a Role
    // can grant only what its creator holds.
    Rule {
        group: "",
        resources: &["secrets"],
        verbs: &["get", "list", "watch", "create", "patch"],
    },
    Rule {
        group: "",
        resources: &["configmaps", "services", "serviceaccounts"],
        verbs: OWNED,
    },
    // Photo volumes: created once, listed to report one the spec gave up (bytes are
    // data: never deleted by the operator).
    Rule {
        group: "",
        resources: &["persistentvolumeclaims"],
        verbs: &["get", "list", "create"],
    },
    Rule {
        group: "apps",
        resources: &["deployments"],
        verbs: OWNED,
    },
    // The managed database: applied, and reported (never deleted) when not wanted.
    Rule {
        group: "apps",
        resources: &["statefulsets"],
        verbs: &["list", "watch", "create", "patch"],
    },
    // Provisioning jobs: created once per service list, earlier ones deleted; backup
    // jobs: one per backup.
    Rule {
        group: "batch",
        resources: &["jobs"],
        verbs: &["get", "list", "watch", "create", "delete"],
    },
    // The backup schedule.
    Rule {
        group: "batch",
        resources: &["cronjobs"],
        verbs: OWNED,
    },
    // The schedule's permission to create backups, and nothing else.
    Rule {
        group: "rbac.authorization.k8s.io",
        resources: &["roles", "rolebindings"],
        verbs: OWNED,
    },
    Rule {
        group: "policy",
        resources: &["poddisruptionbudgets"],
        verbs: OWNED,
    },
    Rule {
        group: "autoscaling",
        resources: &["horizontalpodautoscalers"],
        verbs: OWNED,
    },
    Rule {
        group: "networking.k8s.io",
        resources: &["ingresses", "networkpolicies"],
        verbs: OWNED,
    },
    // Third-party edge objects: applied, listed and removed by the clean-up, not watched.
    Rule {
        group: "gateway.networking.k8s.io",
        resources: &["httproutes"],
        verbs: &["list", "create", "patch", "delete"],
    },
    Rule {
        group: "gateway.envoyproxy.io",
        resources: &["securitypolicies"],
        verbs: &["list", "create", "patch", "delete"],
    },
    Rule {
        group: "traefik.io",
        resources: &["middlewares"],
        verbs: &["list", "create", "patch", "delete"],
    },
    Rule {
        group: "monitoring.coreos.com",
        resources: &["servicemonitors", "prometheusrules"],
        verbs: &["list", "create", "patch", "delete"],
    },
    // CloudNativePG's objects hold the databases: applied, and reported (never deleted)
    // when not wanted; a cluster is also read before a base backup (does it archive
    // where the backup goes?).
    Rule {
        group: "postgresql.cnpg.io",
        resources: &["clusters"],
        verbs: &["get", "list", "create", "patch"],
    },
    Rule {
        group: "postgresql.cnpg.io",
        resources: &["databases"],
        verbs: &["list", "create", "patch"],
    },
    // A platform backup's base backup (CloudNativePG mode): created, then read until
    // it ends; it goes with its SocialPlatformBackup (owner reference).
    Rule {
        group: "postgresql.cnpg.io",
        resources: &["backups"],
        verbs: &["get", "create"],
    },
    // Kubernetes Events about platforms (a repeated event is patched).
    Rule {
        group: "events.k8s.io",
        resources: &["events"],
        verbs: &["create", "patch"],
    },
];

/// In the operator's own namespace: the leader-election Lease.
pub const NAMESPACE_RULES: &[Rule] = &[Rule {
    group: "coordination.k8s.io",
    resources: &["leases"],
    verbs: &["get", "create", "patch"],
}];

/// Rules in the Kubernetes API's shape.
pub fn policy_rules(rules: &[Rule]) -> Vec<PolicyRule> {
    rules
        .iter()
        .map(|rule| PolicyRule {
            api_groups: Some(vec![rule.group.to_owned()]),
            resources: Some(rule.resources.iter().map(|r| (*r).to_owned()).collect()),
            verbs: rule.verbs.iter().map(|v| (*v).to_owned()).collect(),
            ..PolicyRule::default()
        })
        .collect()
}

#[derive(Serialize)]
struct Printed {
    #[serde(rename = "clusterRules")]
    cluster_rules: Vec<PolicyRule>,
    #[serde(rename = "namespaceRules")]
    namespace_rules: Vec<PolicyRule>,
}

/// Both rule lists as YAML (`clusterRules:` and `namespaceRules:`), what the Helm chart
/// renders into its ClusterRole and Role.
pub fn rules_yaml() -> Result<String, serde_saphyr::ser::Error> {
    let mut yaml = String::from(
        "# Generated by `agora-operator rbac` from operator/src/rbac.rs; do not edit.\n",
    );
    yaml.push_str(&serde_saphyr::to_string(&Printed {
        cluster_rules: policy_rules(CLUSTER_RULES),
        namespace_rules: policy_rules(NAMESPACE_RULES),
    })?);
    Ok(yaml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_wildcards_and_no_resource_twice() {
        let mut seen = std::collections::HashSet::new();
        for rule in CLUSTER_RULES.iter().chain(NAMESPACE_RULES) {
            assert!(!rule.verbs.contains(&"*") && !rule.resources.contains(&"*"));
            assert!(!rule.verbs.is_empty());
            for resource in rule.resources {
                assert!(seen.insert((rule.group, *resource)), "{resource} twice");
            }
        }
    }
}
