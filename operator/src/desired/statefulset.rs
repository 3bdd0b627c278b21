//! The StatefulSet of node pods: stable names, one PVC per pod, probes on
//! the node's plaintext gRPC health port, TLS from `spec.tls` (or, without
//! it, an admin API the node is told to leave open), and `OnDelete` updates
//! so that the planner, not the StatefulSet controller, picks which pod
//! restarts next (followers first, the leader last).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource, EnvVar,
    EnvVarSource, GRPCAction, ObjectFieldSelector, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, SeccompProfile, SecretVolumeSource, SecurityContext, Volume,
    VolumeMount, VolumeResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

use super::config::node_settings;
use super::{
    ADMIN_PORT, CLIENT_PORT, CONFIG_HASH_ANNOTATION, ClusterRef, HEALTH_PORT, LIVENESS_SERVICE,
    METRICS_PORT, RAFT_PORT, READINESS_SERVICE, config_hash,
};
use crate::crd::{AntiAffinity, MatchEngineClusterSpec};

/// Where the node keeps RocksDB and snapshots (the node's default).
pub const DATA_DIR: &str = "/var/lib/matchengine";
/// Where the TLS Secret is mounted when `spec.tls` is set.
pub const TLS_DIR: &str = "/etc/matchengine/tls";
/// The uid/gid of the node image's unprivileged user (see docker/).
const NODE_UID: i64 = 10001;
/// Long enough for a leader to hand leadership over and flush on SIGTERM.
const TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;

fn env_value(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

fn env_from_field(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn grpc_probe(port: u16, service: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        grpc: Some(GRPCAction {
            port: i32::from(port),
            service: Some(service.into()),
        }),
        period_seconds: Some(period_seconds),
        timeout_seconds: Some(2),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}

fn container_port(name: &str, port: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: i32::from(port),
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

fn node_container(cluster: &ClusterRef, spec: &MatchEngineClusterSpec) -> Container {
    let mut env = vec![
        env_from_field("POD_NAME", "metadata.name"),
        env_from_field("POD_NAMESPACE", "metadata.namespace"),
        env_value("MATCHENGINE_NODE_ID_FROM_HOSTNAME", "true"),
        env_value(
            "MATCHENGINE_ADVERTISE_HOST",
            format!(
                "$(POD_NAME).{}.{}.svc.{}",
                cluster.headless_service_name(),
                cluster.namespace,
                cluster.cluster_domain
            ),
        ),
    ];
    let mut volume_mounts = vec![VolumeMount {
        name: "data".into(),
        mount_path: DATA_DIR.into(),
        ..VolumeMount::default()
    }];
    if spec.tls.is_some() {
        env.push(env_value(
            "MATCHENGINE_TLS_CERT",
            format!("{TLS_DIR}/tls.crt"),
        ));
        env.push(env_value(
            "MATCHENGINE_TLS_KEY",
            format!("{TLS_DIR}/tls.key"),
        ));
        env.push(env_value("MATCHENGINE_TLS_CA", format!("{TLS_DIR}/ca.crt")));
        volume_mounts.push(VolumeMount {
            name: "tls".into(),
            mount_path: TLS_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    } else {
        // The node refuses to serve an admin API with neither TLS nor a
        // token unless told to: without spec.tls only the NetworkPolicy
        // (the chart's node policy: admin from nodes and the operator)
        // keeps others off it. Production clusters use spec.tls.
        env.push(env_value("MATCHENGINE_ADMIN_INSECURE", "true"));
    }
    Container {
        name: "node".into(),
        image: Some(spec.image.clone()),
        image_pull_policy: Some(spec.image_pull_policy.as_str().into()),
        ports: Some(vec![
            container_port("client", CLIENT_PORT),
            container_port("raft", RAFT_PORT),
            container_port("admin", ADMIN_PORT),
            container_port("metrics", METRICS_PORT),
            container_port("health", HEALTH_PORT),
        ]),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: cluster.config_map_name(),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }]),
        env: Some(env),
        resources: spec.resources.clone(),
        volume_mounts: Some(volume_mounts),
        // Opening RocksDB and loading a large snapshot may take a while:
        // the startup probe gives it two minutes before liveness applies.
        startup_probe: Some(grpc_probe(HEALTH_PORT, LIVENESS_SERVICE, 2, 60)),
        liveness_probe: Some(grpc_probe(HEALTH_PORT, LIVENESS_SERVICE, 10, 3)),
        readiness_probe: Some(grpc_probe(HEALTH_PORT, READINESS_SERVICE, 2, 2)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

fn default_affinity(cluster: &ClusterRef, mode: AntiAffinity) -> Option<Affinity> {
    let term = PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_labels: Some(cluster.selector_labels()),
            ..LabelSelector::default()
        }),
        topology_key: "kubernetes.io/hostname".into(),
        ..PodAffinityTerm::default()
    };
    let anti = match mode {
        AntiAffinity::None => return None,
        AntiAffinity::Preferred => PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    pod_affinity_term: term,
                    weight: 100,
                },
            ]),
            ..PodAntiAffinity::default()
        },
        AntiAffinity::Required => PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![term]),
            ..PodAntiAffinity::default()
        },
    };
    Some(Affinity {
        pod_anti_affinity: Some(anti),
        ..Affinity::default()
    })
}

fn non_empty<T>(items: &[T]) -> Option<Vec<T>>
where
    T: Clone,
{
    (!items.is_empty()).then(|| items.to_vec())
}

fn pod_spec(cluster: &ClusterRef, spec: &MatchEngineClusterSpec) -> PodSpec {
    let scheduling = &spec.scheduling;
    let volumes = spec.tls.as_ref().map(|tls| {
        vec![Volume {
            name: "tls".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(tls.secret_name.clone()),
                default_mode: Some(0o440),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        }]
    });
    PodSpec {
        containers: vec![node_container(cluster, spec)],
        // Nodes never call the Kubernetes API.
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_PERIOD_SECONDS),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(NODE_UID),
            run_as_group: Some(NODE_UID),
            fs_group: Some(NODE_UID),
            fs_group_change_policy: Some("OnRootMismatch".into()),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        affinity: scheduling
            .affinity
            .clone()
            .or_else(|| default_affinity(cluster, scheduling.anti_affinity)),
        node_selector: (!scheduling.node_selector.is_empty())
            .then(|| scheduling.node_selector.clone()),
        tolerations: non_empty(&scheduling.tolerations),
        topology_spread_constraints: non_empty(&scheduling.topology_spread_constraints),
        priority_class_name: scheduling.priority_class_name.clone(),
        image_pull_secrets: non_empty(&spec.image_pull_secrets),
        volumes,
        ..PodSpec::default()
    }
}

fn volume_claim(spec: &MatchEngineClusterSpec) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: spec.storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    spec.storage.size.clone(),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// The StatefulSet with `replicas` pods: the planner, not the spec, decides
/// that number, because members are added and removed one at a time.
/// Returns the StatefulSet and the configuration hash its pods carry.
pub fn statefulset(
    cluster: &ClusterRef,
    spec: &MatchEngineClusterSpec,
    replicas: u32,
    owner: &OwnerReference,
) -> (StatefulSet, String) {
    let mut template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(cluster.labels()),
            ..ObjectMeta::default()
        }),
        spec: Some(pod_spec(cluster, spec)),
    };
    // Serializing k8s-openapi types cannot fail (no maps with non-string
    // keys, no custom serializers that error); an empty part would only
    // weaken the hash, never break a cluster.
    let template_json = serde_json::to_vec(&template).unwrap_or_default();
    let settings_json = serde_json::to_vec(&node_settings(spec)).unwrap_or_default();
    let hash = config_hash(&[&template_json, &settings_json]);
    if let Some(metadata) = template.metadata.as_mut() {
        metadata.annotations = Some(BTreeMap::from([(
            CONFIG_HASH_ANNOTATION.to_owned(),
            hash.clone(),
        )]));
    }
    let policy = spec.storage.reclaim_policy.as_str();
    let sts = StatefulSet {
        metadata: cluster.metadata(cluster.statefulset_name(), owner),
        spec: Some(StatefulSetSpec {
            replicas: Some(i32::try_from(replicas).unwrap_or(i32::MAX)),
            service_name: Some(cluster.headless_service_name()),
            // Every pod starts at once: bootstrap and joining are decided
            // by the operator on admin answers, never on pod readiness.
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..StatefulSetUpdateStrategy::default()
            }),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some(policy.into()),
                    when_scaled: Some(policy.into()),
                },
            ),
            selector: LabelSelector {
                match_labels: Some(cluster.selector_labels()),
                ..LabelSelector::default()
            },
            template,
            volume_claim_templates: Some(vec![volume_claim(spec)]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    };
    (sts, hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::TlsSpec;
    use crate::desired::tests::{cluster, cluster_ref, owner};

    fn pod(spec: &MatchEngineClusterSpec) -> PodSpec {
        let (sts, _) = statefulset(&cluster_ref(), spec, 3, &owner());
        sts.spec.unwrap().template.spec.unwrap()
    }

    /// A container's environment, by name.
    fn env_of(container: &Container) -> BTreeMap<&str, Option<String>> {
        container
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| (e.name.as_str(), e.value.clone()))
            .collect()
    }

    #[test]
    fn statefulset_shape() {
        let mec = cluster(3);
        let (sts, hash) = statefulset(&cluster_ref(), &mec.spec, 2, &owner());
        assert_eq!(sts.metadata.name.as_deref(), Some("books"));
        let spec = sts.spec.unwrap();
        assert_eq!(spec.replicas, Some(2));
        assert_eq!(spec.service_name.as_deref(), Some("books-headless"));
        assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
        assert_eq!(
            spec.update_strategy.unwrap().type_.as_deref(),
            Some("OnDelete")
        );
        let retention = spec.persistent_volume_claim_retention_policy.unwrap();
        assert_eq!(retention.when_scaled.as_deref(), Some("Retain"));
        let claim = &spec.volume_claim_templates.unwrap()[0];
        assert_eq!(
            claim
                .spec
                .as_ref()
                .unwrap()
                .resources
                .as_ref()
                .unwrap()
                .requests
                .as_ref()
                .unwrap()["storage"]
                .0,
            "10Gi"
        );
        let annotations = spec.template.metadata.unwrap().annotations.unwrap();
        assert_eq!(annotations[CONFIG_HASH_ANNOTATION], hash);
    }

    #[test]
    fn node_container_probes_and_identity() {
        let pod = pod(&cluster(3).spec);
        assert_eq!(pod.termination_grace_period_seconds, Some(30));
        assert_eq!(pod.automount_service_account_token, Some(false));
        let c = &pod.containers[0];
        // Every probe on the plaintext health port: kubelet cannot do TLS.
        let grpc = |probe: &Option<Probe>| {
            let action = probe.as_ref().unwrap().grpc.clone().unwrap();
            (action.port, action.service.unwrap())
        };
        assert_eq!(grpc(&c.startup_probe), (7003, String::new()));
        assert_eq!(grpc(&c.liveness_probe), (7003, String::new()));
        assert_eq!(
            grpc(&c.readiness_probe),
            (7003, "matchengine.v1.Client".to_owned())
        );
        let ports: Vec<_> = c
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| (p.name.clone().unwrap(), p.container_port))
            .collect();
        assert_eq!(
            ports,
            [
                ("client".to_owned(), 7000),
                ("raft".to_owned(), 7001),
                ("admin".to_owned(), 7002),
                ("metrics".to_owned(), 9100),
                ("health".to_owned(), 7003)
            ]
        );
        let env = env_of(c);
        assert_eq!(
            env["MATCHENGINE_NODE_ID_FROM_HOSTNAME"].as_deref(),
            Some("true")
        );
        assert_eq!(
            env["MATCHENGINE_ADVERTISE_HOST"].as_deref(),
            Some("$(POD_NAME).books-headless.trading.svc.cluster.local")
        );
        assert!(!env.contains_key("MATCHENGINE_TLS_CERT"));
        // Without TLS the node must be told that an open admin API is meant.
        assert_eq!(env["MATCHENGINE_ADMIN_INSECURE"].as_deref(), Some("true"));
        let security = c.security_context.as_ref().unwrap();
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
    }

    #[test]
    fn default_anti_affinity_spreads_across_nodes() {
        let mut spec = cluster(3).spec;
        let anti = pod(&spec).affinity.unwrap().pod_anti_affinity.unwrap();
        let preferred = anti
            .preferred_during_scheduling_ignored_during_execution
            .unwrap();
        assert_eq!(
            preferred[0].pod_affinity_term.topology_key,
            "kubernetes.io/hostname"
        );
        spec.scheduling.anti_affinity = AntiAffinity::Required;
        let anti = pod(&spec).affinity.unwrap().pod_anti_affinity.unwrap();
        assert_eq!(
            anti.required_during_scheduling_ignored_during_execution
                .unwrap()
                .len(),
            1
        );
        spec.scheduling.anti_affinity = AntiAffinity::None;
        assert_eq!(pod(&spec).affinity, None);
    }

    #[test]
    fn tls_mounts_the_secret_and_secures_the_admin_api() {
        let mut spec = cluster(3).spec;
        spec.tls = Some(TlsSpec {
            secret_name: "books-tls".into(),
        });
        let pod = pod(&spec);
        let volume = &pod.volumes.unwrap()[0];
        assert_eq!(
            volume.secret.as_ref().unwrap().secret_name.as_deref(),
            Some("books-tls")
        );
        let mount = &pod.containers[0].volume_mounts.as_ref().unwrap()[1];
        assert_eq!(
            (
                mount.name.as_str(),
                mount.mount_path.as_str(),
                mount.read_only
            ),
            ("tls", "/etc/matchengine/tls", Some(true))
        );
        let env = env_of(&pod.containers[0]);
        for (name, file) in [
            ("MATCHENGINE_TLS_CERT", "tls.crt"),
            ("MATCHENGINE_TLS_KEY", "tls.key"),
            ("MATCHENGINE_TLS_CA", "ca.crt"),
        ] {
            assert_eq!(
                env[name].as_deref(),
                Some(format!("/etc/matchengine/tls/{file}").as_str())
            );
        }
        // With TLS the admin port requires mutual TLS: never "insecure".
        assert!(!env.contains_key("MATCHENGINE_ADMIN_INSECURE"));
    }

    #[test]
    fn hash_changes_with_image_and_config_but_not_replicas() {
        let mec = cluster(3);
        let c = cluster_ref();
        let (_, base) = statefulset(&c, &mec.spec, 3, &owner());
        let (_, scaled) = statefulset(&c, &mec.spec, 5, &owner());
        assert_eq!(base, scaled);
        let mut image = mec.spec.clone();
        image.image = "registry.example/matchengine-node:1.0.1".into();
        assert_ne!(statefulset(&c, &image, 3, &owner()).1, base);
        let mut raft = mec.spec.clone();
        raft.raft.election_timeout_max_ms = 900;
        assert_ne!(statefulset(&c, &raft, 3, &owner()).1, base);
        let mut tls = mec.spec.clone();
        tls.tls = Some(TlsSpec {
            secret_name: "books-tls".into(),
        });
        assert_ne!(statefulset(&c, &tls, 3, &owner()).1, base);
        // The membership threshold is the operator's, not the node's.
        let mut membership = mec.spec.clone();
        membership.membership.lag_max_entries = 5;
        assert_eq!(statefulset(&c, &membership, 3, &owner()).1, base);
    }
}
