//! Event reasons, as upstream names them (EventRecorder.Reason).

pub const SUBMIT: &str = "Submit";
pub const SPEC_CHANGED: &str = "SpecChanged";
pub const SUSPENDED: &str = "Suspended";
pub const ROLLBACK: &str = "Rollback";
pub const JOB_STATUS_CHANGED: &str = "JobStatusChanged";
pub const SAVEPOINT_ERROR: &str = "SavepointError";
pub const CHECKPOINT_ERROR: &str = "CheckpointError";
pub const CLEANUP: &str = "Cleanup";
pub const CLEANUP_FAILED: &str = "CleanupFailed";
pub const MISSING: &str = "Missing";
pub const VALIDATION_ERROR: &str = "ValidationError";
pub const RECOVER_DEPLOYMENT: &str = "RecoverDeployment";
pub const UPGRADE_FAILED: &str = "UpgradeFailed";
pub const SAVEPOINT: &str = "Savepoint";
pub const UNSUPPORTED_FLINK_VERSION: &str = "UnsupportedFlinkVersion";
/// Ours: a session job's jar could not be fetched.
pub const ARTIFACT_FETCH_FAILED: &str = "ArtifactFetchFailed";

pub const COMPONENT_OPERATOR: &str = "Operator";
pub const COMPONENT_JOBMANAGER: &str = "JobManagerDeployment";
pub const COMPONENT_JOB: &str = "Job";
pub const COMPONENT_SNAPSHOT: &str = "Snapshot";
