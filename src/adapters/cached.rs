//! Reads of FlinkDeployments and FlinkSessionJobs from the watches' reflector stores instead
//! of a GET per reconcile; everything else goes to the API through [`KubeClient`].
//!
//! A cache can be behind. The watch that wakes a reconcile has updated the store first, so a
//! change by someone else is seen; the operator's own writes are the risk: right after one,
//! the store may still hold the copy before it, and a status write from that stale copy would
//! fail with 409. So the resourceVersion of every object the operator writes is remembered,
//! and while the store holds another version of that object the read goes to the API.
//! Objects not in the store (not listed yet, just created) are read from the API too.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::{ObjectRef, Store};
use serde::de::DeserializeOwned;

use super::kube::KubeClient;
use crate::crd::{FlinkDeployment, FlinkSessionJob};
use crate::ports::{EventRecord, KubeApi, KubeError};

/// The stores of one kind: one per watch (all namespaces, or one per watched namespace).
#[derive(Default, Clone)]
pub struct Stores {
    /// (namespace, or None for all; the kind's API resource; the store)
    pub scopes: Vec<(Option<String>, ApiResource, Store<DynamicObject>)>,
}

impl Stores {
    fn get(&self, namespace: &str, name: &str) -> Option<std::sync::Arc<DynamicObject>> {
        let (_, resource, store) = self
            .scopes
            .iter()
            .find(|(scope, _, _)| scope.as_deref().map(|s| s == namespace).unwrap_or(true))?;
        store.get(&ObjectRef::new_with(name, resource.clone()).within(namespace))
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
    fn cached<K: DeserializeOwned>(
        &self,
        stores: &Stores,
        kind: &'static str,
        namespace: &str,
        name: &str,
    ) -> Option<K> {
        let object = stores.get(namespace, name)?;
        let key = (kind, namespace.to_string(), name.to_string());
        let written = self
            .written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some(rv) = written {
            if object.metadata.resource_version.as_deref() != Some(rv.as_str()) {
                return None;
            }
        }
        let value = serde_json::to_value(object.as_ref()).ok()?;
        serde_json::from_value(value).ok()
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
    ) -> Result<Option<FlinkDeployment>, KubeError> {
        if let Some(fd) = self.cached(&self.deployments, "FlinkDeployment", namespace, name) {
            self.count(true);
            return Ok(Some(fd));
        }
        self.count(false);
        self.inner.get_flink_deployment(namespace, name).await
    }

    async fn update_flink_deployment_status(
        &self,
        resource: &FlinkDeployment,
    ) -> Result<FlinkDeployment, KubeError> {
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
    ) -> Result<Option<Deployment>, KubeError> {
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
    ) -> Result<Vec<Pod>, KubeError> {
        self.inner.list_pods(namespace, label_selector).await
    }
    async fn publish_event(&self, event: &EventRecord) -> Result<(), KubeError> {
        self.inner.publish_event(event).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher::Event;

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
        let resource = ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("flink.apache.org", "v1beta1", "FlinkDeployment"),
            "flinkdeployments",
        );
        let mut writer = Writer::new(resource.clone());
        for o in objects {
            writer.apply_watcher_event(&Event::Apply(o.clone()));
        }
        let stores = Stores {
            scopes: vec![(None, resource, writer.as_reader())],
        };
        // Nothing answers here: a read that reaches the API fails.
        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap()))
                .unwrap();
        CachedKube::new(KubeClient::new(client, None), stores, Stores::default())
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
