//! The Kubernetes calls of one reconcile: server-side apply of the desired
//! objects under one field manager, reading the pods, and the two
//! infrastructure steps (resize the StatefulSet, restart a pod).

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Error;
use crate::crd::MatchEngineClusterSpec;
use crate::desired::{self, CONFIG_HASH_ANNOTATION, ClusterRef, node_id, pod_ordinal};
use crate::driver::SlotState;

/// The one field manager of every object the operator writes.
pub const FIELD_MANAGER: &str = "matchengine-operator";

/// One cluster's objects, as the reconciler reaches them.
pub struct Resources<'a> {
    pub client: Client,
    pub cluster: &'a ClusterRef,
    pub spec: &'a MatchEngineClusterSpec,
    pub owner: OwnerReference,
}

impl std::fmt::Debug for Resources<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resources")
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

async fn apply<K>(api: &Api<K>, name: &str, object: &K) -> Result<K, Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    // force: the operator owns these fields; a conflicting manager (e.g. a
    // human's kubectl edit) is overridden, as a controller must.
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(name, &params, &Patch::Apply(object))
        .await
        .map_err(Error::Kube)
}

impl Resources<'_> {
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.cluster.namespace)
    }

    /// The StatefulSet as it is, `None` before it exists.
    pub async fn statefulset(&self) -> Result<Option<StatefulSet>, Error> {
        self.api::<StatefulSet>()
            .get_opt(&self.cluster.statefulset_name())
            .await
            .map_err(Error::Kube)
    }

    /// Applies the ConfigMap and both Services.
    pub async fn apply_config_and_services(&self) -> Result<(), Error> {
        let c = self.cluster;
        let config = desired::config_map(c, self.spec, &self.owner);
        apply(&self.api::<ConfigMap>(), &c.config_map_name(), &config).await?;
        let headless = desired::headless_service(c, &self.owner);
        apply(
            &self.api::<Service>(),
            &c.headless_service_name(),
            &headless,
        )
        .await?;
        let client = desired::client_service(c, self.spec, &self.owner);
        apply(&self.api::<Service>(), &c.client_service_name(), &client).await?;
        Ok(())
    }

    /// Applies the StatefulSet with `replicas` pods; returns the template's
    /// configuration hash.
    pub async fn apply_statefulset(&self, replicas: u32) -> Result<String, Error> {
        let (sts, hash) = desired::statefulset(self.cluster, self.spec, replicas, &self.owner);
        apply(
            &self.api::<StatefulSet>(),
            &self.cluster.statefulset_name(),
            &sts,
        )
        .await?;
        Ok(hash)
    }

    pub async fn apply_pdb(&self, voters: u32) -> Result<(), Error> {
        let pdb = desired::pod_disruption_budget(self.cluster, voters, &self.owner);
        apply(
            &self.api::<PodDisruptionBudget>(),
            &self.cluster.pdb_name(),
            &pdb,
        )
        .await?;
        Ok(())
    }

    pub async fn pods(&self) -> Result<Vec<Pod>, Error> {
        let params = ListParams::default().labels(&self.cluster.pod_selector());
        let pods = self.api::<Pod>().list(&params).await.map_err(Error::Kube)?;
        Ok(pods.items)
    }

    /// Deletes a pod (gracefully: the node hands leadership over and
    /// flushes on SIGTERM); the StatefulSet recreates it on the current
    /// template.
    pub async fn restart_pod(&self, ordinal: u32) -> Result<(), Error> {
        self.api::<Pod>()
            .delete(&self.cluster.pod_name(ordinal), &DeleteParams::default())
            .await
            .map_err(Error::Kube)?;
        Ok(())
    }
}

/// The StatefulSet's size.
pub fn replicas(sts: &StatefulSet) -> u32 {
    let replicas = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    u32::try_from(replicas).unwrap_or(0)
}

/// The size and class the StatefulSet's volume claims were created with:
/// Kubernetes does not let them change, so a spec that asks for others is
/// applied with these instead (and the user told).
pub fn storage_in_use(sts: &StatefulSet) -> Option<(Quantity, Option<String>)> {
    let claim = sts
        .spec
        .as_ref()?
        .volume_claim_templates
        .as_ref()?
        .first()?;
    let spec = claim.spec.as_ref()?;
    let size = spec
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")?
        .clone();
    Some((size, spec.storage_class_name.clone()))
}

/// One slot per ordinal up to the larger of the StatefulSet's size and the
/// highest pod seen (pods above it may still be terminating).
pub fn slots(cluster: &ClusterRef, pods: &[Pod], provisioned: u32, hash: &str) -> Vec<SlotState> {
    let by_ordinal: std::collections::BTreeMap<u32, &Pod> = pods
        .iter()
        .filter_map(|p| pod_ordinal(&cluster.name, &p.name_any()).map(|o| (o, p)))
        .collect();
    let top = by_ordinal
        .keys()
        .next_back()
        .map_or(provisioned, |&o| provisioned.max(o + 1));
    (0..top)
        .map(|ordinal| match by_ordinal.get(&ordinal) {
            Some(pod) => SlotState {
                node_id: node_id(ordinal),
                exists: true,
                terminating: pod.metadata.deletion_timestamp.is_some(),
                current: pod
                    .annotations()
                    .get(CONFIG_HASH_ANNOTATION)
                    .map(String::as_str)
                    == Some(hash),
            },
            None => SlotState {
                node_id: node_id(ordinal),
                exists: false,
                terminating: false,
                current: true,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::tests::cluster_ref;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pod(name: &str, hash: &str, terminating: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                annotations: Some([(CONFIG_HASH_ANNOTATION.to_owned(), hash.to_owned())].into()),
                deletion_timestamp: terminating
                    .then_some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    #[test]
    fn slots_cover_the_statefulset_and_stray_pods() {
        let pods = [
            pod("books-0", "h2", false),
            pod("books-2", "h1", false),
            pod("books-3", "h2", true),
            pod("other-0", "h2", false),
        ];
        let slots = slots(&cluster_ref(), &pods, 3, "h2");
        assert_eq!(slots.len(), 4);
        assert_eq!(
            slots[0],
            SlotState {
                node_id: 1,
                exists: true,
                terminating: false,
                current: true
            }
        );
        assert!(!slots[1].exists);
        assert!(slots[2].exists && !slots[2].current);
        assert!(slots[3].terminating);
    }
}
