//! Facts about a job's state that both kinds (FlinkDeployment and FlinkSessionJob) read from
//! their status the same way: where the newest state is, and whether an upgrade savepoint
//! already stopped the job.

use crate::crd::{JobStatus, ReconciliationStatus, Savepoint, SavepointInfo, SnapshotTriggerType};
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

/// Records where an upgrade stopped the job (a checkpoint it was cancelled after) as the
/// upgrade's own snapshot: the state a restart goes on from, and a sign that the job was
/// already stopped (see [`upgrade_savepoint_since_deploy`]).
pub fn record_upgrade_state(job: &mut JobStatus, path: Option<String>, now: i64) {
    job.upgrade_savepoint_path = path.clone();
    job.savepoint_info
        .get_or_insert_with(Default::default)
        .last_savepoint = Some(Savepoint {
        time_stamp: Some(now),
        location: path,
        trigger_type: Some(SnapshotTriggerType::Upgrade),
        format_type: None,
        trigger_nonce: None,
    });
}

/// Forgets the snapshot trigger in flight: it ended, or its outcome can no longer be known.
pub fn clear_trigger(info: &mut SavepointInfo) {
    info.trigger_id = None;
    info.trigger_timestamp = None;
    info.trigger_type = None;
    info.format_type = None;
}

/// [`clear_trigger`] for a status that may hold no snapshot information.
pub fn clear_trigger_of(job: Option<&mut JobStatus>) {
    if let Some(info) = job.and_then(|j| j.savepoint_info.as_mut()) {
        clear_trigger(info);
    }
}

/// When a job stops for good, its newest checkpoint or savepoint (as Flink reports them)
/// becomes the state to restore from (a stop whose answer was lost still left its savepoint
/// there). Best effort: a cluster that does not
/// answer leaves the status as it is.
/// Returns whether the cluster answered.
pub async fn remember_latest_checkpoint(
    flink: &dyn FlinkApi,
    at: &FlinkEndpoint,
    job_id: &str,
    job: &mut JobStatus,
) -> bool {
    let Ok(stats) = flink.checkpoints(at, job_id).await else {
        return false;
    };
    // A stop-with-savepoint leaves its savepoint in `latest.savepoint`, not `completed`; a job
    // that stopped before its first checkpoint still has the state it was restored from.
    let restored = stats.latest.restored.and_then(|r| {
        r.external_path
            .map(|path| crate::ports::CompletedCheckpoint {
                id: r.id,
                external_path: path,
                latest_ack_timestamp: r.restore_timestamp,
                state_size: 0,
            })
    });
    let newest = [stats.latest.completed, stats.latest.savepoint, restored]
        .into_iter()
        .flatten()
        .max_by_key(|c| (c.latest_ack_timestamp, c.id));
    let Some(latest) = newest else {
        return true;
    };
    // Flink's newest of the job's checkpoints and savepoints is the newest state of the job:
    // every savepoint the status knows of this job is one of them or older. (The status's
    // timestamps are when the operator saw a savepoint complete, not when it did: they
    // cannot be compared with Flink's.)
    let info = job.savepoint_info.get_or_insert_with(Default::default);
    let known = info
        .last_savepoint
        .as_ref()
        .and_then(|s| s.location.as_deref());
    if known != Some(latest.external_path.as_str()) {
        info.last_savepoint = Some(Savepoint {
            time_stamp: Some(latest.latest_ack_timestamp),
            location: Some(latest.external_path),
            trigger_type: Some(SnapshotTriggerType::Unknown),
            format_type: None,
            trigger_nonce: None,
        });
    }
    true
}

/// A stop-with-savepoint whose answer was lost may still have reached Flink. It is marked in
/// the status (an upgrade trigger without id), so the next look waits for the job to stop
/// instead of stopping it a second time, which would fail once the first stop completes and
/// leave the savepoint it took unknown.
pub fn mark_stop_sent(job: &mut JobStatus, now: i64) {
    let info = job.savepoint_info.get_or_insert_with(Default::default);
    info.trigger_id = None;
    info.trigger_type = Some(SnapshotTriggerType::Upgrade);
    info.trigger_timestamp = Some(now);
}

/// When a stop was sent whose answer was lost, if one was.
pub fn stop_sent_at(job: Option<&JobStatus>) -> Option<i64> {
    let info = job?.savepoint_info.as_ref()?;
    match (&info.trigger_id, info.trigger_type) {
        (None, Some(SnapshotTriggerType::Upgrade)) => info.trigger_timestamp,
        _ => None,
    }
}

pub fn clear_stop_mark(job: &mut JobStatus) {
    if let Some(info) = job.savepoint_info.as_mut() {
        if info.trigger_id.is_none() {
            info.trigger_type = None;
            info.trigger_timestamp = None;
        }
    }
}

/// How long a stop-with-savepoint may take: Flink's `execution.checkpointing.timeout`
/// (default 10 min), after which a stop that was never seen to finish is sent again.
pub fn stop_timeout(conf: &crate::config::EffectiveConfig) -> std::time::Duration {
    conf.get("execution.checkpointing.timeout")
        .and_then(|v| crate::duration::parse_duration(v).ok())
        .unwrap_or(std::time::Duration::from_secs(600))
}
