//! Facts about a job's state that both kinds (FlinkDeployment and FlinkSessionJob) read from
//! their status the same way: where the newest state is, and whether an upgrade savepoint
//! already stopped the job.

use crate::crd::{JobStatus, ReconciliationStatus, Savepoint, SnapshotTriggerType};
use crate::ports::{FlinkApi, FlinkEndpoint};

/// The newest state the status knows to restore from: the last savepoint (or the last
/// checkpoint recorded when the job stopped), else the upgrade savepoint path.
pub fn newest_known_state(job: Option<&JobStatus>) -> Option<String> {
    let js = job?;
    js.savepoint_info
        .as_ref()
        .and_then(|i| i.last_savepoint.as_ref())
        .and_then(|s| s.location.clone())
        .or_else(|| js.upgrade_savepoint_path.clone())
        .filter(|p| !p.is_empty())
}

/// The upgrade savepoint completed after the reconciled spec was deployed, if any: then the
/// job was already stopped with it and only what follows remains (a crash came in between).
pub fn upgrade_savepoint_since_deploy(
    job: Option<&JobStatus>,
    recon: Option<&ReconciliationStatus>,
) -> Option<String> {
    let deployed_at = recon?.reconciliation_timestamp?;
    let js = job?;
    let last = js.savepoint_info.as_ref()?.last_savepoint.as_ref()?;
    let recent =
        last.trigger_type == Some(SnapshotTriggerType::Upgrade) && last.time_stamp? > deployed_at;
    (recent && last.location.is_some() && last.location == js.upgrade_savepoint_path)
        .then(|| last.location.clone())
        .flatten()
}

/// When a job stops for good, its newest checkpoint becomes the state to restore from, if it
/// is newer than the last savepoint the status knows. Best effort: a cluster that does not
/// answer leaves the status as it is.
pub async fn remember_latest_checkpoint(
    flink: &dyn FlinkApi,
    at: &FlinkEndpoint,
    job_id: &str,
    job: &mut JobStatus,
) {
    let Ok(stats) = flink.checkpoints(at, job_id).await else {
        return;
    };
    let Some(latest) = stats.latest.completed else {
        return;
    };
    let info = job.savepoint_info.get_or_insert_with(Default::default);
    let known = info
        .last_savepoint
        .as_ref()
        .and_then(|s| s.time_stamp)
        .unwrap_or(0);
    if latest.latest_ack_timestamp > known {
        info.last_savepoint = Some(Savepoint {
            time_stamp: Some(latest.latest_ack_timestamp),
            location: Some(latest.external_path),
            trigger_type: Some(SnapshotTriggerType::Unknown),
            format_type: None,
            trigger_nonce: None,
        });
    }
}
