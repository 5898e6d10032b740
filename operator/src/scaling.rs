//! How many pods a service runs and how it may lose them: its PodDisruptionBudget and
//! HorizontalPodAutoscaler (the Deployment itself is `build`'s).

use crate::crd::ServiceSpec;
use crate::owner::Owner;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A PodDisruptionBudget keeping one pod up during voluntary disruptions, when the
/// service has more than one (else it would block node drains forever).
pub fn disruption_budget(
    owner: &Owner,
    name: &str,
    spec: &ServiceSpec,
) -> Option<PodDisruptionBudget> {
    let most = spec
        .autoscaling
        .as_ref()
        .map_or(spec.replicas, |a| a.min_replicas);
    (spec.enabled && most > 1).then(|| PodDisruptionBudget {
        metadata: owner.meta(name, owner.child_name(name)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(owner.selector(name)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    })
}

/// A HorizontalPodAutoscaler on CPU, when asked for.
pub fn autoscaler(
    owner: &Owner,
    name: &str,
    spec: &ServiceSpec,
) -> Option<HorizontalPodAutoscaler> {
    let autoscaling = spec.autoscaling.as_ref().filter(|_| spec.enabled)?;
    Some(HorizontalPodAutoscaler {
        metadata: owner.meta(name, owner.child_name(name)),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_owned()),
                kind: "Deployment".to_owned(),
                name: owner.child_name(name),
            },
            min_replicas: Some(autoscaling.min_replicas),
            max_replicas: autoscaling.max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".to_owned(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".to_owned(),
                    target: MetricTarget {
                        type_: "Utilization".to_owned(),
                        average_utilization: Some(autoscaling.target_cpu_utilization),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            ..HorizontalPodAutoscalerSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::deployment;
    use crate::crd::Autoscaling;
    use crate::fixtures::platform;

    #[test]
    fn replicas_budgets_and_autoscaling_follow_the_spec() {
        let p = platform(serde_json::json!({
            "host": "demo.example",
            "services": {
                "users": {"replicas": 3, "image": "registry.local/users:dev"},
                "relations": {"autoscaling": {"minReplicas": 2, "maxReplicas": 5}},
            }
        }));
        let owner = Owner::of(&p).unwrap();
        let users = &p.spec.services.users;
        let d = deployment(&p, &owner, "users", users, "h");
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(
            spec.template.spec.unwrap().containers[0].image.as_deref(),
            Some("registry.local/users:dev")
        );
        assert!(disruption_budget(&owner, "users", users).is_some());
        assert!(autoscaler(&owner, "users", users).is_none());
        // One replica: no budget (it would block drains).
        assert!(disruption_budget(&owner, "auth", &p.spec.services.auth).is_none());

        let relations = &p.spec.services.relations;
        assert_eq!(
            relations.autoscaling,
            Some(Autoscaling {
                min_replicas: 2,
                max_replicas: 5,
                target_cpu_utilization: 75
            })
        );
        let hpa = autoscaler(&owner, "relations", relations)
            .unwrap()
            .spec
            .unwrap();
        assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(2), 5));
        assert_eq!(hpa.scale_target_ref.name, "demo-relations");
        // The autoscaler owns the count; the Deployment leaves it alone.
        let d = deployment(&p, &owner, "relations", relations, "h");
        assert_eq!(d.spec.unwrap().replicas, None);
        assert!(disruption_budget(&owner, "relations", relations).is_some());
    }
}
