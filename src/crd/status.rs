//! Status types, as the upstream CRDs define them. The status is the operator's only
//! memory: everything a restarted operator needs to continue is written here.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlinkDeploymentStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<JobStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_state: Option<ResourceLifecycleState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_info: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_manager_deployment_status: Option<JobManagerDeploymentStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciliation_status: Option<ReconciliationStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_manager: Option<TaskManagerInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlinkSessionJobStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<JobStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_state: Option<ResourceLifecycleState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciliation_status: Option<ReconciliationStatus>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskManagerInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<FlinkJobState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_savepoint_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_info: Option<SavepointInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_info: Option<CheckpointInfo>,
}

/// A Flink job's state as Flink reports it, plus RECONCILING (the operator's "not yet known").
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FlinkJobState {
    Initializing,
    Created,
    Running,
    Failing,
    Failed,
    Cancelling,
    Canceled,
    Finished,
    Restarting,
    Suspended,
    Reconciling,
}

impl FlinkJobState {
    /// Globally terminal: the job will not run again on its own.
    pub fn is_globally_terminal(self) -> bool {
        matches!(
            self,
            FlinkJobState::Failed | FlinkJobState::Canceled | FlinkJobState::Finished
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            FlinkJobState::Initializing => "INITIALIZING",
            FlinkJobState::Created => "CREATED",
            FlinkJobState::Running => "RUNNING",
            FlinkJobState::Failing => "FAILING",
            FlinkJobState::Failed => "FAILED",
            FlinkJobState::Cancelling => "CANCELLING",
            FlinkJobState::Canceled => "CANCELED",
            FlinkJobState::Finished => "FINISHED",
            FlinkJobState::Restarting => "RESTARTING",
            FlinkJobState::Suspended => "SUSPENDED",
            FlinkJobState::Reconciling => "RECONCILING",
        }
    }
    pub fn parse(s: &str) -> Option<FlinkJobState> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResourceLifecycleState {
    Created,
    Suspended,
    Upgrading,
    Deployed,
    Stable,
    RollingBack,
    RolledBack,
    Failed,
    Deleting,
    Deleted,
}

impl ResourceLifecycleState {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceLifecycleState::Created => "CREATED",
            ResourceLifecycleState::Suspended => "SUSPENDED",
            ResourceLifecycleState::Upgrading => "UPGRADING",
            ResourceLifecycleState::Deployed => "DEPLOYED",
            ResourceLifecycleState::Stable => "STABLE",
            ResourceLifecycleState::RollingBack => "ROLLING_BACK",
            ResourceLifecycleState::RolledBack => "ROLLED_BACK",
            ResourceLifecycleState::Failed => "FAILED",
            ResourceLifecycleState::Deleting => "DELETING",
            ResourceLifecycleState::Deleted => "DELETED",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobManagerDeploymentStatus {
    Ready,
    DeployedNotReady,
    Deploying,
    Missing,
    Error,
}

impl JobManagerDeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobManagerDeploymentStatus::Ready => "READY",
            JobManagerDeploymentStatus::DeployedNotReady => "DEPLOYED_NOT_READY",
            JobManagerDeploymentStatus::Deploying => "DEPLOYING",
            JobManagerDeploymentStatus::Missing => "MISSING",
            JobManagerDeploymentStatus::Error => "ERROR",
        }
    }
}

/// A spec as the status records it (`lastReconciledSpec`, `lastStableSpec`): JSON text of a
/// kilobyte or more that every reconcile copies along with the status and compares with the
/// stored one. Shared, so a copy is a reference count (at 10,000 deployments copying the
/// texts was 3 % of the simulator's time) and a comparison of copies is by address first.
/// In the API it is a plain string.
///
/// It also keeps its parse ([`SpecText::parsed`]): the text is the same for as long as the
/// object it was read with, and every reconcile reads it. A reader that keeps the object (the
/// simulator's API keeps its decoding per resourceVersion) parses it once; one that decodes the
/// object afresh each time (the operator's cache) parses it once per reconcile.
#[derive(Clone, Deserialize)]
#[serde(from = "String")]
pub struct SpecText(Arc<SpecTextInner>);

struct SpecTextInner {
    text: Box<str>,
    /// Set by the first [`SpecText::parsed`]; its type is the caller's.
    parsed: std::sync::OnceLock<Arc<dyn std::any::Any + Send + Sync>>,
}

impl SpecText {
    /// The text parsed by `parse`, kept with the text for the next call. A call that asks
    /// for another type than the kept parse's parses again (a text is read as one kind of
    /// spec only, so that does not happen).
    pub fn parsed<T: std::any::Any + Send + Sync>(&self, parse: impl FnOnce(&str) -> T) -> Arc<T> {
        if let Some(kept) = self.0.parsed.get() {
            if let Ok(kept) = kept.clone().downcast::<T>() {
                return kept;
            }
            return Arc::new(parse(&self.0.text));
        }
        let fresh = Arc::new(parse(&self.0.text));
        // Another thread may have kept its parse first: the same text, so the same value.
        let _ = self.0.parsed.set(fresh.clone());
        fresh
    }
}

impl PartialEq for SpecText {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.text == other.0.text
    }
}

impl Eq for SpecText {}

/// Written as the string it holds, without copying it first.
impl Serialize for SpecText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.text)
    }
}

/// The schema of a string, which it is in the API.
impl JsonSchema for SpecText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        String::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
    fn inline_schema() -> bool {
        true
    }
}

impl std::ops::Deref for SpecText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0.text
    }
}

impl From<String> for SpecText {
    fn from(text: String) -> Self {
        SpecText(Arc::new(SpecTextInner {
            text: text.into_boxed_str(),
            parsed: std::sync::OnceLock::new(),
        }))
    }
}

/// As the string it holds (status dumps read the same as before it was shared).
impl std::fmt::Debug for SpecText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0.text, f)
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconciliationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciliation_timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconciled_spec: Option<SpecText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_stable_spec: Option<SpecText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ReconciliationState>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReconciliationState {
    Deployed,
    Upgrading,
    RollingBack,
    RolledBack,
}

impl ReconciliationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReconciliationState::Deployed => "DEPLOYED",
            ReconciliationState::Upgrading => "UPGRADING",
            ReconciliationState::RollingBack => "ROLLING_BACK",
            ReconciliationState::RolledBack => "ROLLED_BACK",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SnapshotTriggerType {
    Manual,
    Periodic,
    Upgrade,
    Unknown,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SavepointFormatType {
    Canonical,
    Native,
    Unknown,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckpointType {
    Full,
    Incremental,
    Unknown,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Savepoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_stamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_type: Option<SnapshotTriggerType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_type: Option<SavepointFormatType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_nonce: Option<i64>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SavepointInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_savepoint: Option<Savepoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_type: Option<SnapshotTriggerType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_type: Option<SavepointFormatType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_history: Option<Vec<Savepoint>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_periodic_savepoint_timestamp: Option<i64>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_stamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_type: Option<SnapshotTriggerType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_type: Option<CheckpointType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_nonce: Option<i64>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checkpoint: Option<Checkpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_type: Option<SnapshotTriggerType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_type: Option<CheckpointType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_periodic_checkpoint_timestamp: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec text keeps its parse for every copy of it; the same text read again (a fresh
    /// decoding of the object) is parsed again, and compares equal.
    #[test]
    fn a_spec_text_is_parsed_once_per_text_read() {
        let parses = std::sync::atomic::AtomicUsize::new(0);
        let parse = |t: &str| {
            parses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            t.len()
        };
        let text = SpecText::from("{\"spec\":{}}".to_string());
        let copy = text.clone();
        assert_eq!(*text.parsed(parse), 11);
        assert_eq!(*copy.parsed(parse), 11);
        assert_eq!(parses.load(std::sync::atomic::Ordering::Relaxed), 1);
        let read_again: SpecText = serde_json::from_str("\"{\\\"spec\\\":{}}\"").unwrap();
        assert_eq!(read_again, text);
        assert_eq!(*read_again.parsed(parse), 11);
        assert_eq!(parses.load(std::sync::atomic::Ordering::Relaxed), 2);
        // Asked for another type, it parses again rather than answer wrongly.
        assert_eq!(*text.parsed(|t: &str| t.to_string()), "{\"spec\":{}}");
        assert_eq!(
            serde_json::to_string(&text).unwrap(),
            "\"{\\\"spec\\\":{}}\""
        );
    }

    #[test]
    fn a_spec_text_is_a_plain_string_in_the_api_and_shared_by_copies() {
        let recon: ReconciliationStatus = serde_json::from_value(serde_json::json!({
            "lastReconciledSpec": "{\"spec\":{}}",
            "state": "DEPLOYED"
        }))
        .unwrap();
        let copy = recon.clone();
        let (a, b) = (
            recon.last_reconciled_spec.as_deref().unwrap(),
            copy.last_reconciled_spec.as_deref().unwrap(),
        );
        assert_eq!(a, "{\"spec\":{}}");
        // A copy of the status points at the same text: nothing was copied.
        assert!(std::ptr::eq(a, b));
        assert_eq!(
            serde_json::to_value(&copy).unwrap()["lastReconciledSpec"],
            serde_json::json!("{\"spec\":{}}")
        );
        assert_eq!(
            format!("{:?}", copy.last_reconciled_spec.unwrap()),
            "\"{\\\"spec\\\":{}}\""
        );
    }
}
