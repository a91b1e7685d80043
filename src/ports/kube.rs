//! The Kubernetes side: the Flink custom resources with their status, and the objects that
//! make up a Flink cluster (Deployments, Services, ConfigMaps, Pods) plus Events.

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodStatus, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use std::sync::Arc;

use crate::crd::{FlinkDeployment, FlinkSessionJob};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KubeError {
    /// The object does not exist (any more).
    #[error("not found: {0}")]
    NotFound(String),
    /// A write based on a stale resourceVersion (HTTP 409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Anything else the API server answered, or failing to reach it.
    #[error("kubernetes API error: {0}")]
    Api(String),
}

/// What the operator reads back of a JobManager Deployment: its metadata, desired replicas
/// and status. The pod template is the operator's own and never read back, so adapters need
/// not decode it (it is most of the object).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct DeploymentView {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<DeploymentReplicas>,
    #[serde(default)]
    pub status: Option<DeploymentStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct DeploymentReplicas {
    pub replicas: Option<i32>,
}

impl DeploymentView {
    /// Whether every desired replica (1 when unset) is available.
    pub fn fully_available(&self) -> bool {
        let desired = self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let available = self
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0);
        available >= desired
    }
}

impl From<Deployment> for DeploymentView {
    fn from(d: Deployment) -> Self {
        DeploymentView {
            metadata: d.metadata,
            spec: d.spec.map(|s| DeploymentReplicas {
                replicas: s.replicas,
            }),
            status: d.status,
        }
    }
}

/// What the operator reads of a JobManager pod: its name and status, to say why the
/// JobManager does not come up. Its spec is the operator's own pod template and never read
/// back, so adapters need not decode it (nor the metadata beyond the name).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PodView {
    #[serde(default)]
    pub metadata: ObjectName,
    #[serde(default)]
    pub status: Option<PodStatus>,
}

/// An object's name, the one part of its metadata some views need.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ObjectName {
    #[serde(default)]
    pub name: Option<String>,
}

impl From<Pod> for PodView {
    fn from(pod: Pod) -> Self {
        PodView {
            metadata: ObjectName {
                name: pod.metadata.name,
            },
            status: pod.status,
        }
    }
}

/// Normal or Warning, as Kubernetes Events have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// An Event about one of our custom resources.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    pub event_type: EventType,
    /// Upstream reasons: Submit, SpecChanged, Suspended, Rollback, JobStatusChanged, ...
    pub reason: String,
    pub message: String,
    /// Upstream's component label: Operator, JobManagerDeployment, Job, Snapshot.
    pub component: String,
}

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait KubeApi: Send + Sync {
    /// Shared: a reconcile reads the resource, and only its status changes (a copy of its own).
    async fn get_flink_deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<FlinkDeployment>>, KubeError>;
    /// Replaces the status subresource; 409 if `metadata.resourceVersion` is stale.
    async fn update_flink_deployment_status(
        &self,
        resource: FlinkDeployment,
    ) -> Result<Arc<FlinkDeployment>, KubeError>;
    /// Sets `metadata.finalizers`; 409 if `metadata.resourceVersion` is stale.
    async fn set_flink_deployment_finalizers(
        &self,
        resource: &FlinkDeployment,
        finalizers: Vec<String>,
    ) -> Result<FlinkDeployment, KubeError>;

    async fn get_session_job(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<FlinkSessionJob>, KubeError>;
    async fn list_session_jobs(&self, namespace: &str) -> Result<Vec<FlinkSessionJob>, KubeError>;
    async fn update_session_job_status(
        &self,
        resource: &FlinkSessionJob,
    ) -> Result<FlinkSessionJob, KubeError>;
    async fn set_session_job_finalizers(
        &self,
        resource: &FlinkSessionJob,
        finalizers: Vec<String>,
    ) -> Result<FlinkSessionJob, KubeError>;

    async fn get_deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<DeploymentView>>, KubeError>;
    /// Creates the Deployment, or replaces its spec, labels and annotations.
    async fn apply_deployment(&self, deployment: &Deployment) -> Result<(), KubeError>;
    /// Deletes it (and, by garbage collection, its pods); absent is not an error.
    async fn delete_deployment(&self, namespace: &str, name: &str) -> Result<(), KubeError>;
    async fn apply_service(&self, service: &Service) -> Result<(), KubeError>;
    async fn delete_service(&self, namespace: &str, name: &str) -> Result<(), KubeError>;
    async fn apply_config_map(&self, config_map: &ConfigMap) -> Result<(), KubeError>;
    /// ConfigMaps matching a label selector (`a=b,c=d`), sorted by name.
    async fn list_config_maps(
        &self,
        namespace: &str,
        label_selector: &str,
    ) -> Result<Vec<ConfigMap>, KubeError>;
    async fn delete_config_map(&self, namespace: &str, name: &str) -> Result<(), KubeError>;
    /// Pods matching a label selector (`a=b,c=d`), sorted by name.
    async fn list_pods(
        &self,
        namespace: &str,
        label_selector: &str,
    ) -> Result<Vec<PodView>, KubeError>;
    async fn publish_event(&self, event: &EventRecord) -> Result<(), KubeError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The simulator decodes the view straight from the object; the kube-rs adapter decodes a
    /// whole Pod and narrows it. Both must read the same.
    #[test]
    fn a_pod_view_reads_the_same_decoded_directly_or_from_a_pod() {
        let pod = serde_json::json!({
            "metadata": {"name": "app-5d8f-x1", "namespace": "ns", "labels": {"app": "app"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r",
                    "uid": "u1", "controller": true}]},
            "spec": {"containers": [{"name": "flink-main-container", "image": "flink:2.3"}]},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "flink-main-container",
                "ready": false, "restartCount": 3, "image": "flink:2.3", "imageID": "",
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}}]}
        });
        let direct: PodView = serde_json::from_value(pod.clone()).unwrap();
        let narrowed = PodView::from(serde_json::from_value::<Pod>(pod).unwrap());
        assert_eq!(direct, narrowed);
        assert_eq!(direct.metadata.name.as_deref(), Some("app-5d8f-x1"));
        let waiting = direct.status.unwrap().container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .waiting
            .unwrap();
        assert_eq!(waiting.reason.as_deref(), Some("CrashLoopBackOff"));
    }
}
