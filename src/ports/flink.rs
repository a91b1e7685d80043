//! The Flink side: the JobManager's REST API, in the JSON shapes Flink 2.x returns
//! (../shared/guide/real-flink.md). Every adapter decodes Flink's JSON through these types,
//! so the fake and the real REST API cannot drift apart unnoticed.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Where a cluster's REST API is: `http://<cluster-id>-rest.<namespace>:<rest.port>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlinkEndpoint {
    pub namespace: String,
    pub cluster_id: String,
    pub url: String,
}

impl FlinkEndpoint {
    pub fn for_cluster(namespace: &str, cluster_id: &str, rest_port: u16) -> Self {
        FlinkEndpoint {
            namespace: namespace.to_string(),
            cluster_id: cluster_id.to_string(),
            url: format!("http://{cluster_id}-rest.{namespace}:{rest_port}"),
        }
    }

    /// The same endpoint over HTTPS when `https` holds: for clusters whose Flink
    /// configuration has [`REST_SSL_ENABLED`] true (see [`rest_ssl_enabled`]).
    pub fn with_https(mut self, https: bool) -> Self {
        if https {
            if let Some(rest) = self.url.strip_prefix("http://") {
                self.url = format!("https://{rest}");
            }
        }
        self
    }

    pub fn is_https(&self) -> bool {
        self.url.starts_with("https://")
    }
}

/// Flink's key: the JobManager's REST API speaks HTTPS.
pub const REST_SSL_ENABLED: &str = "security.ssl.rest.enabled";

/// Whether a cluster's REST API is HTTPS, from the value of [`REST_SSL_ENABLED`] in its Flink
/// configuration (Flink reads booleans case-insensitively; unset is false).
pub fn rest_ssl_enabled(value: Option<&str>) -> bool {
    value
        .map(|v| v.trim().eq_ignore_ascii_case("true"))
        .unwrap_or(false)
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlinkError {
    /// Connection refused, reset or timed out: the JobManager is not there (yet).
    #[error("Flink REST API unavailable: {0}")]
    Unavailable(String),
    /// HTTP 404: no such job, trigger or jar.
    #[error("not found: {0}")]
    NotFound(String),
    /// HTTP 409 and "already reached another terminal state".
    #[error("conflict: {0}")]
    Conflict(String),
    /// Any other error answer, with Flink's `errors` joined.
    #[error("HTTP {status}: {message}")]
    Http { status: u16, message: String },
    /// An answer that is not the JSON Flink sends.
    #[error("undecodable answer: {0}")]
    Decode(String),
}

impl FlinkError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, FlinkError::Unavailable(_))
    }
}

/// Decodes a Flink JSON answer, as every adapter must.
pub fn decode<T: for<'de> Deserialize<'de>>(value: serde_json::Value) -> Result<T, FlinkError> {
    serde_json::from_value(value).map_err(|e| FlinkError::Decode(e.to_string()))
}

/// `GET /overview`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterOverview {
    pub taskmanagers: i64,
    #[serde(rename = "slots-total")]
    pub slots_total: i64,
    #[serde(rename = "slots-available")]
    pub slots_available: i64,
    #[serde(rename = "jobs-running", default)]
    pub jobs_running: i64,
    #[serde(rename = "flink-version")]
    pub flink_version: String,
    #[serde(rename = "flink-commit", default)]
    pub flink_commit: Option<String>,
}

/// One entry of `GET /jobs/overview`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOverview {
    pub jid: String,
    pub name: String,
    pub state: String,
    #[serde(rename = "start-time")]
    pub start_time: i64,
    #[serde(rename = "end-time")]
    pub end_time: i64,
    #[serde(rename = "last-modification", default)]
    pub last_modification: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobsOverview {
    pub jobs: Vec<JobOverview>,
}

/// `POST /jars/upload`: the jar id is the last segment of `filename`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JarUploadResponse {
    pub filename: String,
    pub status: String,
}

impl JarUploadResponse {
    pub fn jar_id(&self) -> &str {
        self.filename.rsplit('/').next().unwrap_or(&self.filename)
    }
}

/// `POST /jars/:jarid/run` body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JarRunRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program_args_list: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_non_restored_state: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub savepoint_path: Option<String>,
    /// The job's own configuration, applied on top of the cluster's (Flink 1.17 and later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flink_configuration: Option<std::collections::BTreeMap<String, String>>,
}

/// `POST /jars/:jarid/run` answer; Flink 2.x adds `applicationId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JarRunResponse {
    pub jobid: String,
    #[serde(
        rename = "applicationId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub application_id: Option<String>,
}

/// `POST /jobs/:jid/savepoints`, `/stop`, `/checkpoints`: the asynchronous operation's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerResponse {
    #[serde(rename = "request-id")]
    pub request_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationStatusId {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OperationResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(
        rename = "failure-cause",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub failure_cause: Option<serde_json::Value>,
    #[serde(
        rename = "checkpointId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub checkpoint_id: Option<i64>,
}

/// `GET /jobs/:jid/savepoints/:trigger` (and checkpoints): IN_PROGRESS or COMPLETED; a
/// failed savepoint is COMPLETED with a `failure-cause`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AsyncOperation {
    pub status: OperationStatusId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationResult>,
}

/// What an asynchronous savepoint or checkpoint came to.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotOutcome {
    InProgress,
    Completed { location: Option<String> },
    Failed { cause: String },
}

impl AsyncOperation {
    pub fn outcome(&self) -> SnapshotOutcome {
        if self.status.id != "COMPLETED" {
            return SnapshotOutcome::InProgress;
        }
        match &self.operation {
            Some(op) if op.failure_cause.is_some() => SnapshotOutcome::Failed {
                cause: failure_text(op.failure_cause.as_ref().unwrap()),
            },
            Some(op) => SnapshotOutcome::Completed {
                location: op.location.clone(),
            },
            None => SnapshotOutcome::Completed { location: None },
        }
    }
}

/// The readable part of a `failure-cause`: the first line of its stack trace (the
/// `serialized-throwable` is a Java-serialized blob), else its class.
fn failure_text(cause: &serde_json::Value) -> String {
    cause
        .get("stack-trace")
        .and_then(|v| v.as_str())
        .and_then(|t| t.lines().next())
        .or_else(|| cause.get("class").and_then(|v| v.as_str()))
        .or_else(|| cause.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| cause.to_string())
}

/// `GET /jobs/:jid/checkpoints` (the parts the operator reads).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CheckpointStatistics {
    pub counts: CheckpointCounts,
    pub latest: LatestCheckpoints,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CheckpointCounts {
    pub restored: i64,
    pub total: i64,
    pub in_progress: i64,
    pub completed: i64,
    pub failed: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LatestCheckpoints {
    #[serde(default)]
    pub completed: Option<CompletedCheckpoint>,
    /// The newest savepoint (Flink keeps savepoints apart from checkpoints here).
    #[serde(default)]
    pub savepoint: Option<CompletedCheckpoint>,
    #[serde(default)]
    pub restored: Option<RestoredCheckpoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletedCheckpoint {
    pub id: i64,
    pub external_path: String,
    #[serde(default)]
    pub latest_ack_timestamp: i64,
    #[serde(default)]
    pub state_size: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoredCheckpoint {
    pub id: i64,
    pub restore_timestamp: i64,
    pub is_savepoint: bool,
    #[serde(default)]
    pub external_path: Option<String>,
}

/// `GET /jobs/:jid/exceptions`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExceptions {
    pub exception_history: ExceptionHistory,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExceptionHistory {
    pub entries: Vec<ExceptionEntry>,
    #[serde(default)]
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionEntry {
    pub exception_name: String,
    #[serde(default)]
    pub stacktrace: String,
    pub timestamp: i64,
    #[serde(default)]
    pub task_name: Option<String>,
}

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait FlinkApi: Send + Sync {
    async fn overview(&self, at: &FlinkEndpoint) -> Result<ClusterOverview, FlinkError>;
    async fn list_jobs(&self, at: &FlinkEndpoint) -> Result<Vec<JobOverview>, FlinkError>;
    /// Uploads a jar from the operator's local file system; returns the jar id.
    async fn upload_jar(&self, at: &FlinkEndpoint, local_path: &str) -> Result<String, FlinkError>;
    async fn run_jar(
        &self,
        at: &FlinkEndpoint,
        jar_id: &str,
        request: &JarRunRequest,
    ) -> Result<JarRunResponse, FlinkError>;
    async fn delete_jar(&self, at: &FlinkEndpoint, jar_id: &str) -> Result<(), FlinkError>;
    async fn trigger_savepoint(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        target_directory: Option<String>,
        format_type: &str,
    ) -> Result<String, FlinkError>;
    /// Stop-with-savepoint; the job ends FINISHED once the savepoint completes.
    async fn stop_with_savepoint(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        target_directory: Option<String>,
        drain: bool,
    ) -> Result<String, FlinkError>;
    async fn savepoint_status(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<AsyncOperation, FlinkError>;
    async fn trigger_checkpoint(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        checkpoint_type: &str,
    ) -> Result<String, FlinkError>;
    async fn checkpoint_status(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<AsyncOperation, FlinkError>;
    async fn checkpoints(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
    ) -> Result<CheckpointStatistics, FlinkError>;
    async fn cancel_job(&self, at: &FlinkEndpoint, job_id: &str) -> Result<(), FlinkError>;
    async fn exceptions(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
    ) -> Result<JobExceptions, FlinkError>;
    /// `POST /savepoint-disposal`; returns the trigger id.
    async fn dispose_savepoint(&self, at: &FlinkEndpoint, path: &str)
        -> Result<String, FlinkError>;
    /// `DELETE /cluster`.
    async fn shutdown_cluster(&self, at: &FlinkEndpoint) -> Result<(), FlinkError>;
}
