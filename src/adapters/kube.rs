//! The Kubernetes API through kube-rs. Objects the operator owns (the cluster's Deployments,
//! Services, ConfigMaps) are written with server-side apply under one field manager, so
//! fields other controllers or users set are left alone; status and finalizer writes carry
//! the resourceVersion read, so a stale write fails with 409 instead of losing an update.

use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::events::{Event, EventType as KubeEventType, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use super::events::EventPublisher;
use crate::crd::{FlinkDeployment, FlinkSessionJob};
use crate::ports::{DeploymentView, EventRecord, EventType, KubeApi, KubeError, PodView};

/// The field manager of every server-side apply, as upstream's operator names itself.
pub const FIELD_MANAGER: &str = "flink-kubernetes-operator";

pub struct KubeClient {
    client: Client,
    recorder: EventPublisher,
    metrics: Option<std::sync::Arc<crate::observability::Metrics>>,
}

impl KubeClient {
    /// `instance` tells replicas apart in events (the pod name, when known).
    pub fn new(client: Client, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_string(),
            instance,
        };
        KubeClient {
            recorder: EventPublisher::new(client.clone(), reporter),
            client,
            metrics: None,
        }
    }

    /// Counts the events published (savepoint, upgrade and failure outcomes).
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::observability::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), namespace)
    }
}

/// 404 and 409 keep their meaning; 410 Gone (a watch or list continuation too old) and every
/// other answer are API errors naming what was asked.
pub fn kube_error(what: &str, e: kube::Error) -> KubeError {
    match e {
        kube::Error::Api(status) => {
            let message = format!("{what}: {} ({})", status.message, status.code);
            match status.code {
                404 => KubeError::NotFound(message),
                409 => KubeError::Conflict(message),
                _ => KubeError::Api(message),
            }
        }
        other => KubeError::Api(format!("{what}: {other}")),
    }
}

fn name_of<K: Resource>(resource: &K) -> (String, String) {
    (
        resource.meta().namespace.clone().unwrap_or_default(),
        resource.meta().name.clone().unwrap_or_default(),
    )
}

async fn get<K>(api: Api<K>, kind: &str, name: &str) -> Result<Option<K>, KubeError>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name)
        .await
        .map_err(|e| kube_error(&format!("get {kind} {name}"), e))
}

/// Replaces the status subresource with the resourceVersion the caller read.
async fn replace_status<K>(api: Api<K>, kind: &str, resource: &K) -> Result<K, KubeError>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let name = resource.name_any();
    api.replace_status(&name, &PostParams::default(), resource)
        .await
        .map_err(|e| kube_error(&format!("update status of {kind} {name}"), e))
}

/// A merge patch of the finalizers that names the resourceVersion read: the API server
/// refuses it (409) if the object changed since.
async fn patch_finalizers<K>(
    api: Api<K>,
    kind: &str,
    resource: &K,
    finalizers: Vec<String>,
) -> Result<K, KubeError>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let name = resource.name_any();
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": resource.meta().resource_version,
    }});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| kube_error(&format!("set finalizers of {kind} {name}"), e))
}

/// Server-side apply, forced: the operator owns these objects' fields.
async fn apply<K>(api: Api<K>, kind: &str, object: &K) -> Result<(), KubeError>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let name = object.name_any();
    let mut object = object.clone();
    // Apply must not carry server-owned metadata.
    object.meta_mut().resource_version = None;
    object.meta_mut().managed_fields = None;
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&object),
    )
    .await
    .map(|_| ())
    .map_err(|e| kube_error(&format!("apply {kind} {name}"), e))
}

/// Deletes in the background (dependents go by garbage collection); absent is fine.
async fn delete<K>(api: Api<K>, kind: &str, name: &str) -> Result<(), KubeError>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(kube_error(&format!("delete {kind} {name}"), e)),
    }
}

/// Objects matching a label selector, sorted by name (the port's contract).
async fn list<K>(api: Api<K>, kind: &str, selector: &str) -> Result<Vec<K>, KubeError>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let params = if selector.is_empty() {
        ListParams::default()
    } else {
        ListParams::default().labels(selector)
    };
    let mut items = api
        .list(&params)
        .await
        .map_err(|e| kube_error(&format!("list {kind} ({selector})"), e))?
        .items;
    items.sort_by_key(|o| o.name_any());
    Ok(items)
}

#[async_trait]
impl KubeApi for KubeClient {
    async fn get_flink_deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<FlinkDeployment>>, KubeError> {
        let found: Option<FlinkDeployment> =
            get(self.api(namespace), "FlinkDeployment", name).await?;
        Ok(found.map(Arc::new))
    }

    async fn update_flink_deployment_status(
        &self,
        resource: FlinkDeployment,
    ) -> Result<Arc<FlinkDeployment>, KubeError> {
        let (ns, _) = name_of(&resource);
        replace_status(self.api(&ns), "FlinkDeployment", &resource)
            .await
            .map(Arc::new)
    }

    async fn set_flink_deployment_finalizers(
        &self,
        resource: &FlinkDeployment,
        finalizers: Vec<String>,
    ) -> Result<FlinkDeployment, KubeError> {
        let (ns, _) = name_of(resource);
        patch_finalizers(self.api(&ns), "FlinkDeployment", resource, finalizers).await
    }

    async fn get_session_job(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<FlinkSessionJob>, KubeError> {
        get(self.api(namespace), "FlinkSessionJob", name).await
    }

    async fn list_session_jobs(&self, namespace: &str) -> Result<Vec<FlinkSessionJob>, KubeError> {
        list(self.api(namespace), "FlinkSessionJob", "").await
    }

    async fn update_session_job_status(
        &self,
        resource: &FlinkSessionJob,
    ) -> Result<FlinkSessionJob, KubeError> {
        let (ns, _) = name_of(resource);
        replace_status(self.api(&ns), "FlinkSessionJob", resource).await
    }

    async fn set_session_job_finalizers(
        &self,
        resource: &FlinkSessionJob,
        finalizers: Vec<String>,
    ) -> Result<FlinkSessionJob, KubeError> {
        let (ns, _) = name_of(resource);
        patch_finalizers(self.api(&ns), "FlinkSessionJob", resource, finalizers).await
    }

    async fn get_deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<DeploymentView>>, KubeError> {
        let found: Option<Deployment> = get(self.api(namespace), "Deployment", name).await?;
        Ok(found.map(|d| Arc::new(DeploymentView::from(d))))
    }

    async fn apply_deployment(&self, deployment: &Deployment) -> Result<(), KubeError> {
        let (ns, _) = name_of(deployment);
        apply(self.api(&ns), "Deployment", deployment).await
    }

    async fn delete_deployment(&self, namespace: &str, name: &str) -> Result<(), KubeError> {
        delete::<Deployment>(self.api(namespace), "Deployment", name).await
    }

    async fn apply_service(&self, service: &Service) -> Result<(), KubeError> {
        let (ns, _) = name_of(service);
        apply(self.api(&ns), "Service", service).await
    }

    async fn delete_service(&self, namespace: &str, name: &str) -> Result<(), KubeError> {
        delete::<Service>(self.api(namespace), "Service", name).await
    }

    async fn apply_config_map(&self, config_map: &ConfigMap) -> Result<(), KubeError> {
        let (ns, _) = name_of(config_map);
        apply(self.api(&ns), "ConfigMap", config_map).await
    }

    async fn list_config_maps(
        &self,
        namespace: &str,
        label_selector: &str,
    ) -> Result<Vec<ConfigMap>, KubeError> {
        list(self.api(namespace), "ConfigMap", label_selector).await
    }

    async fn delete_config_map(&self, namespace: &str, name: &str) -> Result<(), KubeError> {
        delete::<ConfigMap>(self.api(namespace), "ConfigMap", name).await
    }

    async fn list_pods(
        &self,
        namespace: &str,
        label_selector: &str,
    ) -> Result<Vec<PodView>, KubeError> {
        let pods: Vec<Pod> = list(self.api(namespace), "Pod", label_selector).await?;
        Ok(pods.into_iter().map(PodView::from).collect())
    }

    async fn publish_event(&self, event: &EventRecord) -> Result<(), KubeError> {
        let regarding = ObjectReference {
            api_version: Some("flink.apache.org/v1beta1".into()),
            kind: Some(event.kind.clone()),
            namespace: Some(event.namespace.clone()),
            name: Some(event.name.clone()),
            uid: event.uid.clone(),
            ..Default::default()
        };
        let ev = Event {
            type_: match event.event_type {
                EventType::Normal => KubeEventType::Normal,
                EventType::Warning => KubeEventType::Warning,
            },
            reason: event.reason.clone(),
            // Events hold at most 1 kB of note.
            note: Some(event.message.chars().take(1000).collect()),
            // Upstream's component (Operator, JobManagerDeployment, Job, Snapshot) is the
            // closest thing to an action it records.
            action: event.component.clone(),
            secondary: None,
        };
        if let Some(m) = &self.metrics {
            m.event(&event.kind, event.event_type.as_str(), &event.reason);
        }
        self.recorder
            .publish(&ev, &regarding)
            .await
            .map_err(|e| kube_error(&format!("publish event {}", event.reason), e))
    }
}
