//! Savepoints and checkpoints: the upgrade savepoint, manual ones by trigger nonce, periodic
//! ones, and the savepoint history with its cleanup. Recorded in the status fields
//! (`jobStatus.savepointInfo`, `checkpointInfo`, `upgradeSavepointPath`) as upstream does
//! with `kubernetes.operator.snapshot.resource.enabled: false`.

use super::events::*;
use super::observe::{endpoint, job_state};
use super::{ReconcileError, Run};
use crate::crd::{
    Checkpoint, CheckpointType, FlinkDeploymentSpec, FlinkJobState, JobManagerDeploymentStatus,
    Savepoint, SavepointFormatType, SavepointInfo, SnapshotTriggerType,
};
use crate::ports::{EventType, SnapshotOutcome};

fn format_type(text: &str) -> SavepointFormatType {
    match text {
        "NATIVE" => SavepointFormatType::Native,
        "CANONICAL" => SavepointFormatType::Canonical,
        _ => SavepointFormatType::Unknown,
    }
}

fn info_mut<'r>(run: &'r mut Run<'_>) -> &'r mut SavepointInfo {
    run.status
        .job_status
        .get_or_insert_with(Default::default)
        .savepoint_info
        .get_or_insert_with(Default::default)
}

fn job_id(run: &Run<'_>) -> String {
    run.status
        .job_status
        .as_ref()
        .and_then(|j| j.job_id.clone())
        .unwrap_or_default()
}

pub fn upgrade_savepoint_pending(run: &Run<'_>) -> bool {
    run.status
        .job_status
        .as_ref()
        .and_then(|j| j.savepoint_info.as_ref())
        .map(|i| i.trigger_id.is_some() && i.trigger_type == Some(SnapshotTriggerType::Upgrade))
        .unwrap_or(false)
}

fn any_savepoint_pending(run: &Run<'_>) -> bool {
    run.status
        .job_status
        .as_ref()
        .and_then(|j| j.savepoint_info.as_ref())
        .map(|i| i.trigger_id.is_some())
        .unwrap_or(false)
}

/// See [`super::state::upgrade_savepoint_since_deploy`].
pub fn upgrade_savepoint_since_deploy(run: &Run<'_>) -> Option<String> {
    super::state::upgrade_savepoint_since_deploy(
        run.status.job_status.as_ref(),
        run.status.reconciliation_status.as_ref(),
    )
}

/// See [`super::state::newest_known_state`].
pub fn newest_known_state(run: &Run<'_>) -> Option<String> {
    super::state::newest_known_state(run.status.job_status.as_ref())
}

/// Stop-with-savepoint for an upgrade. The trigger is written to status at once, so a
/// restarted operator polls it instead of taking a second one.
pub async fn trigger_upgrade_savepoint(
    run: &mut Run<'_>,
    deployed: &FlinkDeploymentSpec,
) -> Result<(), ReconcileError> {
    let conf = run.config_of(deployed);
    let at = endpoint(run, deployed);
    let dir = conf.savepoints_dir().map(str::to_string);
    let trigger = run
        .ctx
        .flink
        .stop_with_savepoint(&at, &job_id(run), dir, false)
        .await?;
    let now = run.now();
    let format = format_type(&conf.savepoint_format_type());
    let info = info_mut(run);
    info.trigger_id = Some(trigger);
    info.trigger_timestamp = Some(now);
    info.trigger_type = Some(SnapshotTriggerType::Upgrade);
    info.format_type = Some(format);
    run.write_status().await?;
    Ok(())
}

/// Polls the upgrade savepoint. `Some(location)` once it completed and is recorded in the
/// status (not yet written); an error if it failed, which aborts the upgrade.
pub async fn poll_upgrade_savepoint(
    run: &mut Run<'_>,
    deployed: &FlinkDeploymentSpec,
) -> Result<Option<String>, ReconcileError> {
    match poll_pending(run, deployed).await? {
        Polled::InProgress => Ok(None),
        Polled::Completed(location) => {
            run.status
                .job_status
                .get_or_insert_with(Default::default)
                .upgrade_savepoint_path = Some(location.clone());
            Ok(Some(location))
        }
        Polled::Failed(cause) => {
            // Nothing was torn down: the old spec still runs, as before the upgrade began.
            if let Some(recon) = run.status.reconciliation_status.as_mut() {
                recon.state = Some(crate::crd::ReconciliationState::Deployed);
            }
            run.write_status().await?;
            Err(ReconcileError::UpgradeFailed(format!(
                "Savepoint for the upgrade failed: {cause}"
            )))
        }
    }
}

enum Polled {
    InProgress,
    Completed(String),
    Failed(String),
}

/// Polls the pending savepoint trigger and records its outcome in the status.
async fn poll_pending(
    run: &mut Run<'_>,
    deployed: &FlinkDeploymentSpec,
) -> Result<Polled, ReconcileError> {
    let conf = run.config_of(deployed);
    let at = endpoint(run, deployed);
    let Some(trigger) = run
        .status
        .job_status
        .as_ref()
        .and_then(|j| j.savepoint_info.as_ref())
        .and_then(|i| i.trigger_id.clone())
    else {
        return Ok(Polled::InProgress);
    };
    let outcome = match run
        .ctx
        .flink
        .savepoint_status(&at, &job_id(run), &trigger)
        .await
    {
        Ok(op) => op.outcome(),
        // The trigger is gone with its JobManager: the savepoint never completed.
        Err(crate::ports::FlinkError::NotFound(_)) => SnapshotOutcome::Failed {
            cause: "the savepoint trigger is unknown to the JobManager".into(),
        },
        Err(e) if e.is_unavailable() => return Ok(Polled::InProgress),
        Err(e) => return Err(e.into()),
    };
    let now = run.now();
    let info = info_mut(run);
    let trigger_type = info.trigger_type.unwrap_or(SnapshotTriggerType::Unknown);
    let format = info.format_type;
    match outcome {
        SnapshotOutcome::InProgress => Ok(Polled::InProgress),
        SnapshotOutcome::Completed { location } => {
            let location = location.unwrap_or_default();
            let nonce = (trigger_type == SnapshotTriggerType::Manual)
                .then(|| {
                    deployed
                        .job
                        .as_ref()
                        .and_then(|j| j.savepoint_trigger_nonce)
                })
                .flatten();
            let savepoint = Savepoint {
                time_stamp: Some(now),
                location: Some(location.clone()),
                trigger_type: Some(trigger_type),
                format_type: format,
                trigger_nonce: nonce,
            };
            info.last_savepoint = Some(savepoint.clone());
            info.savepoint_history
                .get_or_insert_with(Vec::new)
                .push(savepoint);
            info.trigger_id = None;
            info.trigger_timestamp = None;
            info.trigger_type = None;
            info.format_type = None;
            run.event(
                EventType::Normal,
                SAVEPOINT,
                COMPONENT_SNAPSHOT,
                format!("Savepoint completed: {location}"),
            )
            .await;
            cleanup_history(run, deployed, &conf).await;
            Ok(Polled::Completed(location))
        }
        SnapshotOutcome::Failed { cause } => {
            if trigger_type == SnapshotTriggerType::Periodic {
                // Wait a full interval before the next attempt, as upstream does.
                info.last_periodic_savepoint_timestamp = Some(now);
            }
            info.trigger_id = None;
            info.trigger_timestamp = None;
            info.trigger_type = None;
            info.format_type = None;
            run.event(
                EventType::Warning,
                SAVEPOINT_ERROR,
                COMPONENT_SNAPSHOT,
                format!("Savepoint failed: {cause}"),
            )
            .await;
            Ok(Polled::Failed(cause))
        }
    }
}

/// Polls manual and periodic snapshots in flight (upgrade savepoints belong to the upgrade).
pub async fn observe_snapshots(
    run: &mut Run<'_>,
    deployed: &FlinkDeploymentSpec,
) -> Result<(), ReconcileError> {
    if any_savepoint_pending(run) && !upgrade_savepoint_pending(run) {
        poll_pending(run, deployed).await?;
    }
    poll_checkpoint(run, deployed).await
}

async fn poll_checkpoint(
    run: &mut Run<'_>,
    deployed: &FlinkDeploymentSpec,
) -> Result<(), ReconcileError> {
    let Some(info) = run
        .status
        .job_status
        .as_ref()
        .and_then(|j| j.checkpoint_info.clone())
    else {
        return Ok(());
    };
    let Some(trigger) = info.trigger_id.clone() else {
        return Ok(());
    };
    let at = endpoint(run, deployed);
    let outcome = match run
        .ctx
        .flink
        .checkpoint_status(&at, &job_id(run), &trigger)
        .await
    {
        Ok(op) => op.outcome(),
        Err(crate::ports::FlinkError::NotFound(_)) => SnapshotOutcome::Failed {
            cause: "the checkpoint trigger is unknown to the JobManager".into(),
        },
        Err(e) if e.is_unavailable() => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let now = run.now();
    let ci = run
        .status
        .job_status
        .get_or_insert_with(Default::default)
        .checkpoint_info
        .get_or_insert_with(Default::default);
    match outcome {
        SnapshotOutcome::InProgress => return Ok(()),
        SnapshotOutcome::Completed { .. } => {
            ci.last_checkpoint = Some(Checkpoint {
                time_stamp: Some(now),
                trigger_type: ci.trigger_type,
                format_type: ci.format_type,
                trigger_nonce: deployed
                    .job
                    .as_ref()
                    .and_then(|j| j.checkpoint_trigger_nonce),
            });
        }
        SnapshotOutcome::Failed { cause } => {
            run.event(
                EventType::Warning,
                CHECKPOINT_ERROR,
                COMPONENT_SNAPSHOT,
                format!("Checkpoint failed: {cause}"),
            )
            .await;
        }
    }
    let ci = run
        .status
        .job_status
        .get_or_insert_with(Default::default)
        .checkpoint_info
        .get_or_insert_with(Default::default);
    ci.trigger_id = None;
    ci.trigger_timestamp = None;
    ci.trigger_type = None;
    ci.format_type = None;
    Ok(())
}

/// Which snapshot is due, if any: a manual one when the spec's nonce differs from the one
/// acted on, else a periodic one when the interval has passed since the last (or since the
/// job started).
fn due_trigger(
    nonce: Option<i64>,
    acted_on: Option<i64>,
    interval: Option<std::time::Duration>,
    last_periodic: Option<i64>,
    job_started: Option<i64>,
    now: i64,
) -> Option<SnapshotTriggerType> {
    if nonce.is_some() && nonce != acted_on {
        return Some(SnapshotTriggerType::Manual);
    }
    let since = last_periodic.or(job_started).unwrap_or(now);
    interval
        .filter(|i| now - since >= i.as_millis() as i64)
        .map(|_| SnapshotTriggerType::Periodic)
}

/// Starts manual (nonce) and periodic savepoints and checkpoints, one of each kind at a
/// time, only while the job runs.
pub async fn trigger_snapshots(
    run: &mut Run<'_>,
    desired: &FlinkDeploymentSpec,
    deployed: &FlinkDeploymentSpec,
) -> Result<bool, ReconcileError> {
    if job_state(run) != Some(FlinkJobState::Running)
        || run.status.job_manager_deployment_status != Some(JobManagerDeploymentStatus::Ready)
    {
        return Ok(false);
    }
    let conf = run.config_of(desired);
    let now = run.now();
    let at = endpoint(run, deployed);
    let desired_job = desired.job.clone().unwrap_or_default();
    let deployed_job = deployed.job.clone().unwrap_or_default();
    let js = run.status.job_status.clone().unwrap_or_default();
    let started = js.start_time.as_ref().and_then(|t| t.parse().ok());
    let sp = js.savepoint_info.clone().unwrap_or_default();
    let savepoint_due = due_trigger(
        desired_job.savepoint_trigger_nonce,
        deployed_job.savepoint_trigger_nonce,
        conf.periodic_savepoint_interval(),
        sp.last_periodic_savepoint_timestamp,
        started,
        now,
    );
    if let (None, Some(kind)) = (&sp.trigger_id, savepoint_due) {
        let dir = conf.savepoints_dir().map(str::to_string);
        let format = conf.savepoint_format_type();
        let trigger = run
            .ctx
            .flink
            .trigger_savepoint(&at, &job_id(run), dir, &format)
            .await?;
        let info = info_mut(run);
        info.trigger_id = Some(trigger);
        info.trigger_timestamp = Some(now);
        info.trigger_type = Some(kind);
        info.format_type = Some(format_type(&format));
        if kind == SnapshotTriggerType::Periodic {
            // The interval counts from the trigger, as upstream does.
            info.last_periodic_savepoint_timestamp = Some(now);
        } else {
            consume_nonce(
                run,
                |j, n| j.savepoint_trigger_nonce = n,
                desired_job.savepoint_trigger_nonce,
            );
        }
        return Ok(true);
    }
    let cp = js.checkpoint_info.clone().unwrap_or_default();
    let checkpoint_due = due_trigger(
        desired_job.checkpoint_trigger_nonce,
        deployed_job.checkpoint_trigger_nonce,
        conf.periodic_checkpoint_interval(),
        cp.last_periodic_checkpoint_timestamp,
        started,
        now,
    );
    if let (None, Some(kind)) = (&cp.trigger_id, checkpoint_due) {
        let checkpoint_type = conf.checkpoint_type();
        let trigger = run
            .ctx
            .flink
            .trigger_checkpoint(&at, &job_id(run), &checkpoint_type)
            .await?;
        let ci = run
            .status
            .job_status
            .get_or_insert_with(Default::default)
            .checkpoint_info
            .get_or_insert_with(Default::default);
        ci.trigger_id = Some(trigger);
        ci.trigger_timestamp = Some(now);
        ci.trigger_type = Some(kind);
        ci.format_type = Some(if checkpoint_type == "INCREMENTAL" {
            CheckpointType::Incremental
        } else {
            CheckpointType::Full
        });
        if kind == SnapshotTriggerType::Periodic {
            ci.last_periodic_checkpoint_timestamp = Some(now);
        } else {
            consume_nonce(
                run,
                |j, n| j.checkpoint_trigger_nonce = n,
                desired_job.checkpoint_trigger_nonce,
            );
        }
        return Ok(true);
    }
    Ok(false)
}

/// Records a trigger nonce as acted on, in the reconciled spec (and the stable one if the
/// reconciled spec was stable, so that a manual savepoint does not make it "unstable").
fn consume_nonce(
    run: &mut Run<'_>,
    set: impl Fn(&mut crate::crd::JobSpec, Option<i64>),
    nonce: Option<i64>,
) {
    let Some(recon) = run.status.reconciliation_status.as_mut() else {
        return;
    };
    let was_stable = recon.last_reconciled_spec == recon.last_stable_spec;
    recon.last_reconciled_spec = recon
        .last_reconciled_spec
        .as_deref()
        .and_then(|t| crate::crd::StoredSpec::<FlinkDeploymentSpec>::parse(t).ok())
        .map(|mut s| {
            if let Some(job) = s.spec.job.as_mut() {
                set(job, nonce);
            }
            s.to_json()
        });
    if was_stable {
        recon.last_stable_spec = recon.last_reconciled_spec.clone();
    }
}

/// Trims the savepoint history by count and age. The newest savepoint and the one an upgrade
/// would restore from are never disposed: they are the job's state.
async fn cleanup_history(
    run: &mut Run<'_>,
    deployed: &FlinkDeploymentSpec,
    conf: &crate::config::EffectiveConfig,
) {
    if !conf.savepoint_cleanup_enabled() {
        return;
    }
    let now = run.now();
    let max_count = conf.savepoint_history_max_count().max(1);
    let max_age = conf.savepoint_history_max_age().as_millis() as i64;
    let protected: Vec<Option<String>> = vec![
        run.status
            .job_status
            .as_ref()
            .and_then(|j| j.upgrade_savepoint_path.clone()),
        run.status
            .job_status
            .as_ref()
            .and_then(|j| j.savepoint_info.as_ref())
            .and_then(|i| i.last_savepoint.as_ref())
            .and_then(|s| s.location.clone()),
    ];
    let history = info_mut(run).savepoint_history.take().unwrap_or_default();
    let count = history.len();
    let mut kept = Vec::new();
    let mut disposed = Vec::new();
    for (i, sp) in history.into_iter().enumerate() {
        let too_many = count - i > max_count;
        let too_old = now - sp.time_stamp.unwrap_or(now) > max_age;
        let manual = sp.trigger_type == Some(SnapshotTriggerType::Manual);
        if (too_many || too_old) && !manual && !protected.contains(&sp.location) {
            disposed.push(sp);
        } else {
            kept.push(sp);
        }
    }
    info_mut(run).savepoint_history = Some(kept);
    let at = endpoint(run, deployed);
    for sp in disposed {
        if let Some(location) = sp.location {
            // Best effort: a savepoint that cannot be disposed now is only disk space.
            let _ = run.ctx.flink.dispose_savepoint(&at, &location).await;
        }
    }
}
