//! The scenario file: the public contract described in `scenarios/README.md`
//! (and `../shared/guide/scenarios.md`). These types are what a parsed file becomes.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

/// A parsed scenario file.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    pub seed: u64,
    /// Operator configuration, upstream key names, values as strings.
    pub operator: Vec<(String, String)>,
    pub cluster: ClusterSettings,
    pub steps: Vec<Step>,
    /// Where the file was read from (for relative `apply: {file: …}` paths and messages).
    pub path: PathBuf,
}

/// How the simulated world behaves. Defaults are documented in `scenarios/README.md`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSettings {
    /// Pod scheduled -> container running.
    pub pod_startup: Duration,
    /// Job submitted -> RUNNING.
    pub job_startup: Duration,
    pub checkpoint_interval: Duration,
    pub savepoint_duration: Duration,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            pod_startup: Duration::from_secs(5),
            job_startup: Duration::from_secs(5),
            checkpoint_interval: Duration::from_secs(10),
            savepoint_duration: Duration::from_secs(2),
        }
    }
}

/// `Kind/name` (namespace `default`) or `Kind/namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// One step; `line` is the 1-based line of the step in the file, for messages.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub line: usize,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create or update, like `kubectl apply`: the manifests (one or more documents).
    Apply(Vec<Value>),
    /// Run the world until the condition holds, or fail after `within`.
    Await {
        check: Check,
        within: Duration,
    },
    /// JSON merge patch of the resource.
    Patch {
        target: Target,
        merge: Value,
    },
    Fault(Fault),
    /// `heal: all` (None) or `heal: KIND` (Some(kind)).
    Heal(Option<FaultKind>),
    Advance(Duration),
    Expect(Check),
    Delete(Target),
    /// An extra named snapshot of all statuses at this point.
    Snapshot(String),
}

/// What `await` and `expect` assert.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub target: Target,
    /// A status subset (`status:`), matched key by key.
    pub status: Option<Value>,
    /// Assertions on the simulated Flink world (`job:`).
    pub job: Option<JobCheck>,
    /// `absent: true`: the target is gone.
    pub absent: bool,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct JobCheck {
    pub state: Option<String>,
    pub parallelism: Option<i64>,
    /// `none`, `savepoint` or `checkpoint`.
    pub restored_from: Option<String>,
    pub running_instances: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    ImagePull,
    JobManagerCrash,
    TaskManagerLoss,
    JobFailure,
    SavepointFailure,
    RestUnavailable,
    OperatorRestart,
    ApiConflict,
    StaleReads,
    DropWatchEvents,
    ArtifactFetch,
    /// An extension: the operator process dies in the middle of a reconcile, right after
    /// its `count`-th call (Kubernetes or Flink) from now.
    OperatorCrash,
}

impl FaultKind {
    pub const ALL: [FaultKind; 12] = [
        FaultKind::ImagePull,
        FaultKind::JobManagerCrash,
        FaultKind::TaskManagerLoss,
        FaultKind::JobFailure,
        FaultKind::SavepointFailure,
        FaultKind::RestUnavailable,
        FaultKind::OperatorRestart,
        FaultKind::ApiConflict,
        FaultKind::StaleReads,
        FaultKind::DropWatchEvents,
        FaultKind::ArtifactFetch,
        FaultKind::OperatorCrash,
    ];

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::ImagePull => "imagePull",
            FaultKind::JobManagerCrash => "jobManagerCrash",
            FaultKind::TaskManagerLoss => "taskManagerLoss",
            FaultKind::JobFailure => "jobFailure",
            FaultKind::SavepointFailure => "savepointFailure",
            FaultKind::RestUnavailable => "restUnavailable",
            FaultKind::OperatorRestart => "operatorRestart",
            FaultKind::ApiConflict => "apiConflict",
            FaultKind::StaleReads => "staleReads",
            FaultKind::DropWatchEvents => "dropWatchEvents",
            FaultKind::ArtifactFetch => "artifactFetch",
            FaultKind::OperatorCrash => "operatorCrash",
        }
    }
}

/// A fault as written in the file. Only the fields its kind allows are set.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    /// `imagePull`: pods with this image never start.
    pub image: Option<String>,
    pub target: Option<Target>,
    /// Active until this much time has passed.
    pub duration: Option<Duration>,
    /// Active until this many uses are spent.
    pub count: Option<u32>,
    /// `jobFailure`: FAILED (true) or restarting (false).
    pub terminal: Option<bool>,
    /// `artifactFetch`: the jarURI that fails (every one when not given).
    pub uri: Option<String>,
    /// `artifactFetch`: how it fails.
    pub error: Option<ArtifactFailure>,
}

/// How a jar download fails in the simulated world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArtifactFailure {
    NotFound,
    AccessDenied,
    TooLarge,
    Timeout,
    Unavailable,
}

impl ArtifactFailure {
    pub const ALL: [ArtifactFailure; 5] = [
        ArtifactFailure::NotFound,
        ArtifactFailure::AccessDenied,
        ArtifactFailure::TooLarge,
        ArtifactFailure::Timeout,
        ArtifactFailure::Unavailable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ArtifactFailure::NotFound => "notFound",
            ArtifactFailure::AccessDenied => "accessDenied",
            ArtifactFailure::TooLarge => "tooLarge",
            ArtifactFailure::Timeout => "timeout",
            ArtifactFailure::Unavailable => "unavailable",
        }
    }
}
