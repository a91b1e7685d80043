//! Reads of FlinkDeployments and FlinkSessionJobs from the watches' stores instead of a GET
//! per reconcile; everything else goes to the API through [`KubeClient`].
//!
//! A cache can be behind. The watch that wakes a reconcile has updated the store first, so a
//! change by someone else is seen; the operator's own writes are the risk: right after one,
//! the store may still hold the copy before it, and a status write from that stale copy would
//! fail with 409. So the resourceVersion of every object the operator writes is remembered,
//! and while the store holds another version of that object the read goes to the API.
//! Objects not in the store (not listed yet, just created) are read from the API too.
//!
//! The stores keep each object as compact JSON text, without `metadata.managedFields` and
//! kubectl's last-applied-configuration annotation (read by nothing here; a status write
//! sends the object back, and the API server takes only its status and resourceVersion). As
//! parsed JSON values an object takes several times the memory of its text, and a read
//! decodes the text into the typed object straight away. The text is kept LZ4-compressed: a
//! reconciled FlinkDeployment's status repeats its spec twice (the last reconciled and the
//! last stable spec), and its 2.5 KB shrink to about 1.1 KB, for well under a microsecond
//! per read to expand (BENCHMARKS.md, item 53: with 10,000 cached, 14 MB less heap).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{DynamicObject, ObjectMeta, TypeMeta};
use kube::runtime::watcher::Event;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::kube::KubeClient;
use crate::crd::{FlinkDeployment, FlinkSessionJob};
use crate::ports::{DeploymentView, EventRecord, KubeApi, KubeError, PodView};

/// kubectl's copy of what it last applied: the whole object again, never read here.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// (namespace, name)
type Key = (String, String);

/// An object's JSON text, compressed ([`pack`]).
type Packed = Arc<[u8]>;

type Objects = HashMap<Key, Packed>;

/// An object's JSON text as the store keeps it: LZ4 blocks with the length in front.
fn pack(text: &str) -> Packed {
    lz4_flex::compress_prepend_size(text.as_bytes()).into()
}

/// The JSON text back; none if the bytes are not what [`pack`] made (they always are).
fn unpack(packed: &[u8]) -> Option<String> {
    let bytes = lz4_flex::decompress_size_prepended(packed).ok()?;
    String::from_utf8(bytes).ok()
}

/// One watch's objects as the operator keeps them (see the module's documentation). Cloning
/// shares the store.
#[derive(Default, Clone)]
pub struct ObjectStore(Arc<RwLock<Objects>>);

impl ObjectStore {
    /// The object's JSON text, if the store holds it.
    pub fn get(&self, namespace: &str, name: &str) -> Option<String> {
        unpack(&self.packed(namespace, name)?)
    }

    /// The object as the store keeps it.
    fn packed(&self, namespace: &str, name: &str) -> Option<Packed> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Fills an [`ObjectStore`] from a watch's events, as kube's reflector does: changes go in as
/// they come, and a (re-)list is collected aside and replaces the store once complete.
#[derive(Default)]
pub struct StoreWriter {
    store: ObjectStore,
    listing: Objects,
}

impl StoreWriter {
    pub fn reader(&self) -> ObjectStore {
        self.store.clone()
    }

    pub fn apply(&mut self, event: &Event<DynamicObject>) {
        let store = || self.store.0.write().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Apply(o) => {
                if let Some((key, text)) = entry(o) {
                    store().insert(key, text);
                }
            }
            Event::Delete(o) => {
                if let Some((key, _)) = entry(o) {
                    store().remove(&key);
                }
            }
            Event::Init => self.listing = Objects::new(),
            Event::InitApply(o) => {
                if let Some((key, text)) = entry(o) {
                    // An object that did not change since it was stored keeps its stored text:
                    // a re-list does not hold every object twice until it is done.
                    let current = self.store.packed(&key.0, &key.1).filter(|c| *c == text);
                    self.listing.insert(key, current.unwrap_or(text));
                }
            }
            Event::InitDone => {
                let listed = std::mem::take(&mut self.listing);
                *store() = listed;
            }
        }
    }
}

/// The object as [`DynamicObject`] writes it, with the metadata trimmed.
#[derive(Serialize)]
struct Trimmed<'a> {
    #[serde(flatten)]
    types: &'a Option<TypeMeta>,
    metadata: ObjectMeta,
    #[serde(flatten)]
    data: &'a serde_json::Value,
}

/// The store's key and packed text for an object (none without a name).
fn entry(object: &DynamicObject) -> Option<(Key, Packed)> {
    let name = object.metadata.name.clone()?;
    let namespace = object.metadata.namespace.clone().unwrap_or_default();
    let mut metadata = object.metadata.clone();
    metadata.managed_fields = None;
    if let Some(annotations) = metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
    let text = serde_json::to_string(&Trimmed {
        types: &object.types,
        metadata,
        data: &object.data,
    })
    .ok()?;
    Some(((namespace, name), pack(&text)))
}

/// The stores of one kind: one per watch (all namespaces, or one per watched namespace).
#[derive(Default, Clone)]
pub struct Stores {
    /// (namespace, or None for all; the store)
    pub scopes: Vec<(Option<String>, ObjectStore)>,
}

impl Stores {
    fn get(&self, namespace: &str, name: &str) -> Option<String> {
        let (_, store) = self
            .scopes
            .iter()
            .find(|(scope, _)| scope.as_deref().map(|s| s == namespace).unwrap_or(true))?;
        store.get(namespace, name)
    }
}

pub struct CachedKube {
    inner: KubeClient,
    deployments: Stores,
    session_jobs: Stores,
    /// (kind, namespace, name) → the resourceVersion the operator last wrote.
    written: Mutex<BTreeMap<(&'static str, String, String), String>>,
    /// Reads answered from the stores and from the API, for the metrics and tests.
    pub reads: Mutex<(u64, u64)>,
}

impl CachedKube {
    pub fn new(inner: KubeClient, deployments: Stores, session_jobs: Stores) -> Self {
        CachedKube {
            inner,
            deployments,
            session_jobs,
            written: Mutex::new(BTreeMap::new()),
            reads: Mutex::new((0, 0)),
        }
    }

    fn remember(&self, kind: &'static str, meta: &kube::api::ObjectMeta) {
        let key = (
            kind,
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        );
        if let Some(rv) = &meta.resource_version {
            self.written
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, rv.clone());
        }
    }

    /// The cached copy, if it is there and not older than the operator's own last write.
    fn cached<K: DeserializeOwned + kube::Resource>(
        &self,
        stores: &Stores,
        kind: &'static str,
        namespace: &str,
        name: &str,
    ) -> Option<K> {
        let text = stores.get(namespace, name)?;
        let object: K = serde_json::from_str(&text).ok()?;
        let key = (kind, namespace.to_string(), name.to_string());
        let written = self
            .written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some(rv) = written {
            if object.meta().resource_version.as_deref() != Some(rv.as_str()) {
                return None;
            }
        }
        Some(object)
    }

    fn count(&self, from_cache: bool) {
        let mut reads = self.reads.lock().unwrap_or_else(|e| e.into_inner());
        if from_cache {
            reads.0 += 1;
        } else {
            reads.1 += 1;
        }
    }
}

#[async_trait]
impl KubeApi for CachedKube {
    async fn get_flink_deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<FlinkDeployment>>, KubeError> {
        if let Some(fd) = self.cached(&self.deployments, "FlinkDeployment", namespace, name) {
            self.count(true);
            return Ok(Some(Arc::new(fd)));
        }
        self.count(false);
        self.inner.get_flink_deployment(namespace, name).await
    }

    async fn update_flink_deployment_status(
        &self,
        resource: FlinkDeployment,
    ) -> Result<Arc<FlinkDeployment>, KubeError> {
        let written = self.inner.update_flink_deployment_status(resource).await?;
        self.remember("FlinkDeployment", &written.metadata);
        Ok(written)
    }

    async fn set_flink_deployment_finalizers(
        &self,
        resource: &FlinkDeployment,
        finalizers: Vec<String>,
    ) -> Result<FlinkDeployment, KubeError> {
        let written = self
            .inner
            .set_flink_deployment_finalizers(resource, finalizers)
            .await?;
        self.remember("FlinkDeployment", &written.metadata);
        Ok(written)
    }

    async fn get_session_job(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<FlinkSessionJob>, KubeError> {
        if let Some(job) = self.cached(&self.session_jobs, "FlinkSessionJob", namespace, name) {
            self.count(true);
            return Ok(Some(job));
        }
        self.count(false);
        self.inner.get_session_job(namespace, name).await
    }

    /// From the API: it decides whether a session cluster may go, and a job created a moment
    /// ago must not be missed.
    async fn list_session_jobs(&self, namespace: &str) -> Result<Vec<FlinkSessionJob>, KubeError> {
        self.inner.list_session_jobs(namespace).await
    }

    async fn update_session_job_status(
        &self,
        resource: &FlinkSessionJob,
    ) -> Result<FlinkSessionJob, KubeError> {
        let written = self.inner.update_session_job_status(resource).await?;
        self.remember("FlinkSessionJob", &written.metadata);
        Ok(written)
    }

    async fn set_session_job_finalizers(
        &self,
        resource: &FlinkSessionJob,
        finalizers: Vec<String>,
    ) -> Result<FlinkSessionJob, KubeError> {
        let written = self
            .inner
            .set_session_job_finalizers(resource, finalizers)
            .await?;
        self.remember("FlinkSessionJob", &written.metadata);
        Ok(written)
    }

    async fn get_deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<DeploymentView>>, KubeError> {
        self.inner.get_deployment(namespace, name).await
    }
    async fn apply_deployment(&self, deployment: &Deployment) -> Result<(), KubeError> {
        self.inner.apply_deployment(deployment).await
    }
    async fn delete_deployment(&self, namespace: &str, name: &str) -> Result<(), KubeError> {
        self.inner.delete_deployment(namespace, name).await
    }
    async fn apply_service(&self, service: &Service) -> Result<(), KubeError> {
        self.inner.apply_service(service).await
    }
    async fn delete_service(&self, namespace: &str, name: &str) -> Result<(), KubeError> {
        self.inner.delete_service(namespace, name).await
    }
    async fn apply_config_map(&self, config_map: &ConfigMap) -> Result<(), KubeError> {
        self.inner.apply_config_map(config_map).await
    }
    async fn list_config_maps(
        &self,
        namespace: &str,
        label_selector: &str,
    ) -> Result<Vec<ConfigMap>, KubeError> {
        self.inner.list_config_maps(namespace, label_selector).await
    }
    async fn delete_config_map(&self, namespace: &str, name: &str) -> Result<(), KubeError> {
        self.inner.delete_config_map(namespace, name).await
    }
    async fn list_pods(
        &self,
        namespace: &str,
        label_selector: &str,
    ) -> Result<Vec<PodView>, KubeError> {
        self.inner.list_pods(namespace, label_selector).await
    }
    async fn publish_event(&self, event: &EventRecord) -> Result<(), KubeError> {
        self.inner.publish_event(event).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(name: &str, rv: &str) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "metadata": {"name": name, "namespace": "default", "resourceVersion": rv},
            "spec": {"flinkVersion": "v2_3"}
        }))
        .unwrap()
    }

    fn cached_kube(objects: &[DynamicObject]) -> CachedKube {
        crate::adapters::init_tls();
        let mut writer = StoreWriter::default();
        for o in objects {
            writer.apply(&Event::Apply(o.clone()));
        }
        let stores = Stores {
            scopes: vec![(None, writer.reader())],
        };
        // Nothing answers here: a read that reaches the API fails.
        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap()))
                .unwrap();
        CachedKube::new(KubeClient::new(client, None), stores, Stores::default())
    }

    #[tokio::test]
    async fn the_store_drops_managed_fields_and_the_last_applied_copy_only() {
        let full = serde_json::json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "metadata": {
                "name": "a", "namespace": "team", "uid": "u-1", "resourceVersion": "7",
                "generation": 3, "creationTimestamp": "2025-01-01T00:00:00Z",
                "deletionTimestamp": "2025-01-02T00:00:00Z",
                "finalizers": ["flinkdeployments.flink.apache.org/finalizer"],
                "labels": {"team": "a"},
                "annotations": {"note": "kept", LAST_APPLIED: "{\"a\": 1}"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply",
                    "apiVersion": "flink.apache.org/v1beta1", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {}}}]
            },
            "spec": {"flinkVersion": "v2_3", "image": "flink:2.3",
                "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"},
                "job": {"jarURI": "local:///job.jar", "parallelism": 2, "upgradeMode": "savepoint"}},
            "status": {"lifecycleState": "STABLE", "observedGeneration": 3,
                "jobStatus": {"state": "RUNNING", "jobId": "j"},
                "reconciliationStatus": {"state": "DEPLOYED", "lastReconciledSpec": "{\"spec\": {}}"}}
        });
        let kube = cached_kube(&[serde_json::from_value(full.clone()).unwrap()]);
        let cached: FlinkDeployment = kube
            .cached(&kube.deployments, "FlinkDeployment", "team", "a")
            .unwrap();
        let mut expected: FlinkDeployment = serde_json::from_value(full).unwrap();
        assert!(expected.metadata.managed_fields.is_some());
        expected.metadata.managed_fields = None;
        expected
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .remove(LAST_APPLIED);
        assert_eq!(
            serde_json::to_value(&cached).unwrap(),
            serde_json::to_value(&expected).unwrap()
        );
    }

    #[test]
    fn the_store_keeps_a_reconciled_object_compressed() {
        let spec = r#"{"spec":{"job":{"jarURI":"local:///opt/flink/examples/streaming/StateMachineExample.jar","parallelism":2,"upgradeMode":"savepoint"},"image":"flink:2.3","flinkVersion":"v2_3","jobManager":{"resource":{"cpu":1.0,"memory":"2048m"}},"taskManager":{"resource":{"cpu":1.0,"memory":"2048m"}}}}"#;
        let mut o = object("a", "7");
        o.data["status"] = serde_json::json!({"lifecycleState": "STABLE",
            "reconciliationStatus": {"state": "DEPLOYED", "lastReconciledSpec": spec,
                "lastStableSpec": spec}});
        let (_, packed) = entry(&o).unwrap();
        let text = unpack(&packed).unwrap();
        assert_eq!(
            serde_json::from_str::<DynamicObject>(&text).unwrap().data,
            o.data
        );
        // The spec's second copy costs next to nothing.
        assert!(
            packed.len() * 5 < text.len() * 3,
            "{} of {}",
            packed.len(),
            text.len()
        );
    }

    #[test]
    fn a_list_replaces_the_store_once_complete() {
        let mut writer = StoreWriter::default();
        let store = writer.reader();
        writer.apply(&Event::Apply(object("a", "1")));
        writer.apply(&Event::Apply(object("b", "1")));
        writer.apply(&Event::Apply(object("a", "2")));
        assert_eq!(store.len(), 2);
        assert!(store.get("default", "a").unwrap().contains("\"2\""));
        writer.apply(&Event::Delete(object("b", "3")));
        assert!(store.get("default", "b").is_none());
        writer.apply(&Event::Apply(object("d", "4")));

        // A re-list: the old contents stay until it is done, then only what it listed is there.
        writer.apply(&Event::Init);
        writer.apply(&Event::InitApply(object("c", "5")));
        writer.apply(&Event::InitApply(object("a", "2")));
        let kept = store.packed("default", "a").unwrap();
        assert!(store.get("default", "c").is_none());
        assert!(store.get("default", "d").is_some());
        writer.apply(&Event::InitDone);
        assert!(
            store.get("default", "d").is_none(),
            "not listed again: gone"
        );
        assert!(store.get("default", "c").is_some());
        assert_eq!(store.len(), 2);
        let relisted = store.packed("default", "a").unwrap();
        assert!(Arc::ptr_eq(&kept, &relisted), "unchanged: the same text");
    }

    #[tokio::test]
    async fn reads_come_from_the_store_unless_the_operator_wrote_a_newer_version() {
        let kube = cached_kube(&[object("a", "4")]);
        let fd: Option<FlinkDeployment> =
            kube.cached(&kube.deployments, "FlinkDeployment", "default", "a");
        assert_eq!(fd.unwrap().metadata.resource_version.as_deref(), Some("4"));
        let missing: Option<FlinkDeployment> =
            kube.cached(&kube.deployments, "FlinkDeployment", "default", "b");
        assert!(missing.is_none(), "not in the store: the API is asked");

        // The operator wrote version 5; the store still has 4: not used.
        kube.remember("FlinkDeployment", &object("a", "5").metadata);
        let stale: Option<FlinkDeployment> =
            kube.cached(&kube.deployments, "FlinkDeployment", "default", "a");
        assert!(stale.is_none());
    }

    #[tokio::test]
    async fn a_stale_copy_sends_the_read_to_the_api() {
        let kube = cached_kube(&[object("a", "4")]);
        assert!(kube
            .get_flink_deployment("default", "a")
            .await
            .unwrap()
            .is_some());
        kube.remember("FlinkDeployment", &object("a", "5").metadata);
        let err = kube.get_flink_deployment("default", "a").await.unwrap_err();
        assert!(
            matches!(err, KubeError::Api(_)),
            "went to the (absent) API: {err:?}"
        );
        assert_eq!(*kube.reads.lock().unwrap(), (1, 1));
    }
}
