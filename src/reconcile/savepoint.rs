//! Savepoints and checkpoints: the upgrade savepoint, manual ones by trigger nonce, periodic
//! ones, and the savepoint history with its cleanup. Recorded in the status fields
//! (`jobStatus.savepointInfo`, `checkpointInfo`, `upgradeSavepointPath`) as upstream does
//! with `kubernetes.operator.snapshot.resource.enabled: false`.
//!
//! The same code serves both kinds: a [`SnapshotHost`] is a resource being reconciled
//! (a FlinkDeployment's `Run`, a FlinkSessionJob's run) with its job status and ports.

use async_trait::async_trait;

use super::events::*;
use super::observe::job_state;
use super::{ReconcileError, Run};
use crate::config::EffectiveConfig;
use crate::crd::{
    Checkpoint, CheckpointType, FlinkDeploymentSpec, FlinkJobState, JobManagerDeploymentStatus,
    JobSpec, JobStatus, ReconciliationStatus, Savepoint, SavepointFormatType, SavepointInfo,
    SnapshotTriggerType,
};
use crate::ports::{EventType, FlinkApi, FlinkEndpoint, FlinkError, SnapshotOutcome};

/// What snapshot handling needs of a resource being reconciled.
#[async_trait]
pub trait SnapshotHost: Send {
    fn job(&self) -> Option<&JobStatus>;
    fn job_mut(&mut self) -> &mut JobStatus;
    fn reconciliation_mut(&mut self) -> Option<&mut ReconciliationStatus>;
    fn flink(&self) -> &dyn FlinkApi;
    fn now(&self) -> i64;
    async fn snapshot_event(&self, event_type: EventType, reason: &str, message: String);
}

#[async_trait]
impl SnapshotHost for Run<'_> {
    fn job(&self) -> Option<&JobStatus> {
        self.status.job_status.as_ref()
    }
    fn job_mut(&mut self) -> &mut JobStatus {
        self.status.job_status.get_or_insert_with(Default::default)
    }
    fn reconciliation_mut(&mut self) -> Option<&mut ReconciliationStatus> {
        self.status.reconciliation_status.as_mut()
    }
    fn flink(&self) -> &dyn FlinkApi {
        self.ctx.flink
    }
    fn now(&self) -> i64 {
        Run::now(self)
    }
    async fn snapshot_event(&self, event_type: EventType, reason: &str, message: String) {
        self.event(event_type, reason, COMPONENT_SNAPSHOT, message)
            .await
    }
}

fn format_type(text: &str) -> SavepointFormatType {
    match text {
        "NATIVE" => SavepointFormatType::Native,
        "CANONICAL" => SavepointFormatType::Canonical,
        _ => SavepointFormatType::Unknown,
    }
}

fn info_mut<H: SnapshotHost + ?Sized>(host: &mut H) -> &mut SavepointInfo {
    host.job_mut()
        .savepoint_info
        .get_or_insert_with(Default::default)
}

fn job_id<H: SnapshotHost + ?Sized>(host: &H) -> String {
    host.job()
        .and_then(|j| j.job_id.clone())
        .unwrap_or_default()
}

fn pending_trigger(job: Option<&JobStatus>) -> Option<(String, Option<SnapshotTriggerType>)> {
    let info = job?.savepoint_info.as_ref()?;
    Some((info.trigger_id.clone()?, info.trigger_type))
}

pub fn upgrade_savepoint_pending(run: &Run<'_>) -> bool {
    pending_trigger(run.status.job_status.as_ref())
        .map(|(_, t)| t == Some(SnapshotTriggerType::Upgrade))
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
    let at = run.endpoint_of(deployed);
    let dir = conf.savepoints_dir().map(str::to_string);
    let sent = run
        .ctx
        .flink
        .stop_with_savepoint(&at, &job_id(run), dir, false)
        .await;
    let now = Run::now(run);
    let trigger = match sent {
        Ok(trigger) => trigger,
        Err(e) if e.is_unavailable() => {
            super::state::mark_stop_sent(run.job_mut(), now);
            run.write_status().await?;
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
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
    let conf = run.config_of(deployed);
    let at = run.endpoint_of(deployed);
    match poll_savepoint(run, &at, &conf, None).await? {
        Polled::InProgress => Ok(None),
        Polled::Completed(location) => {
            run.job_mut().upgrade_savepoint_path = Some(location.clone());
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

pub enum Polled {
    InProgress,
    Completed(String),
    Failed(String),
}

/// Polls the pending savepoint trigger and records its outcome in the status.
/// `manual_nonce` is the nonce a manual savepoint answers.
pub async fn poll_savepoint<H: SnapshotHost + ?Sized>(
    host: &mut H,
    at: &FlinkEndpoint,
    conf: &EffectiveConfig,
    manual_nonce: Option<i64>,
) -> Result<Polled, ReconcileError> {
    let Some((trigger, _)) = pending_trigger(host.job()) else {
        return Ok(Polled::InProgress);
    };
    let outcome = match host
        .flink()
        .savepoint_status(at, &job_id(host), &trigger)
        .await
    {
        Ok(op) => op.outcome(),
        // The trigger is gone with its JobManager: the savepoint never completed.
        Err(FlinkError::NotFound(_)) => SnapshotOutcome::Failed {
            cause: "the savepoint trigger is unknown to the JobManager".into(),
        },
        Err(e) if e.is_unavailable() => return Ok(Polled::InProgress),
        Err(e) => return Err(e.into()),
    };
    let now = host.now();
    // A job that stopped for good had Flink's newest checkpoint or savepoint recorded when it
    // was seen stopping (state::remember_latest_checkpoint): this savepoint, completed before,
    // is that one or older, and must not take its place.
    let stopped = host
        .job()
        .and_then(|j| j.state)
        .map(|s| s.is_globally_terminal())
        .unwrap_or(false);
    let info = info_mut(host);
    let trigger_type = info.trigger_type.unwrap_or(SnapshotTriggerType::Unknown);
    let format = info.format_type;
    let polled = match outcome {
        SnapshotOutcome::InProgress => return Ok(Polled::InProgress),
        SnapshotOutcome::Completed { location } => {
            let location = location.unwrap_or_default();
            let savepoint = Savepoint {
                time_stamp: Some(now),
                location: Some(location.clone()),
                trigger_type: Some(trigger_type),
                format_type: format,
                trigger_nonce: manual_nonce.filter(|_| trigger_type == SnapshotTriggerType::Manual),
            };
            if !stopped || info.last_savepoint.is_none() {
                info.last_savepoint = Some(savepoint.clone());
            }
            info.savepoint_history
                .get_or_insert_with(Vec::new)
                .push(savepoint);
            Polled::Completed(location)
        }
        SnapshotOutcome::Failed { cause } => Polled::Failed(cause),
    };
    super::state::clear_trigger(info);
    match &polled {
        Polled::Completed(location) => {
            host.snapshot_event(
                EventType::Normal,
                SAVEPOINT,
                format!("Savepoint completed: {location}"),
            )
            .await;
            cleanup_history(host, at, conf).await;
        }
        Polled::Failed(cause) => {
            host.snapshot_event(
                EventType::Warning,
                SAVEPOINT_ERROR,
                format!("Savepoint failed: {cause}"),
            )
            .await;
        }
        Polled::InProgress => {}
    }
    Ok(polled)
}

/// Polls manual and periodic snapshots in flight (an upgrade savepoint belongs to the upgrade).
pub async fn poll_snapshots<H: SnapshotHost + ?Sized>(
    host: &mut H,
    at: &FlinkEndpoint,
    conf: &EffectiveConfig,
    job: &JobSpec,
) -> Result<(), ReconcileError> {
    let pending = pending_trigger(host.job());
    if pending.is_some() && pending.map(|(_, t)| t) != Some(Some(SnapshotTriggerType::Upgrade)) {
        poll_savepoint(host, at, conf, job.savepoint_trigger_nonce).await?;
    }
    poll_checkpoint(host, at, job.checkpoint_trigger_nonce).await
}

/// [`poll_snapshots`] for a FlinkDeployment.
pub async fn observe_snapshots(
    run: &mut Run<'_>,
    deployed: &FlinkDeploymentSpec,
) -> Result<(), ReconcileError> {
    let conf = run.config_of(deployed);
    let at = run.endpoint_of(deployed);
    let none = JobSpec::default();
    poll_snapshots(run, &at, &conf, deployed.job.as_ref().unwrap_or(&none)).await
}

async fn poll_checkpoint<H: SnapshotHost + ?Sized>(
    host: &mut H,
    at: &FlinkEndpoint,
    nonce: Option<i64>,
) -> Result<(), ReconcileError> {
    let Some(trigger) = host
        .job()
        .and_then(|j| j.checkpoint_info.as_ref())
        .and_then(|c| c.trigger_id.clone())
    else {
        return Ok(());
    };
    let outcome = match host
        .flink()
        .checkpoint_status(at, &job_id(host), &trigger)
        .await
    {
        Ok(op) => op.outcome(),
        Err(FlinkError::NotFound(_)) => SnapshotOutcome::Failed {
            cause: "the checkpoint trigger is unknown to the JobManager".into(),
        },
        Err(e) if e.is_unavailable() => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let now = host.now();
    let ci = host
        .job_mut()
        .checkpoint_info
        .get_or_insert_with(Default::default);
    match outcome {
        SnapshotOutcome::InProgress => return Ok(()),
        SnapshotOutcome::Completed { .. } => {
            ci.last_checkpoint = Some(Checkpoint {
                time_stamp: Some(now),
                trigger_type: ci.trigger_type,
                format_type: ci.format_type,
                trigger_nonce: nonce
                    .filter(|_| ci.trigger_type == Some(SnapshotTriggerType::Manual)),
            });
        }
        SnapshotOutcome::Failed { cause } => {
            host.snapshot_event(
                EventType::Warning,
                CHECKPOINT_ERROR,
                format!("Checkpoint failed: {cause}"),
            )
            .await;
        }
    }
    let ci = host
        .job_mut()
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
/// time. The caller makes sure the job runs. `desired` is the job as the spec asks for it,
/// `reconciled` the job as last acted on (its nonces say which requests were served).
pub async fn start_snapshots<H: SnapshotHost + ?Sized>(
    host: &mut H,
    at: &FlinkEndpoint,
    conf: &EffectiveConfig,
    desired: &JobSpec,
    reconciled: &JobSpec,
) -> Result<bool, ReconcileError> {
    let now = host.now();
    let js = host.job().cloned().unwrap_or_default();
    let started = js.start_time.as_ref().and_then(|t| t.parse().ok());
    let sp = js.savepoint_info.clone().unwrap_or_default();
    let savepoint_due = due_trigger(
        desired.savepoint_trigger_nonce,
        reconciled.savepoint_trigger_nonce,
        conf.periodic_savepoint_interval(),
        sp.last_periodic_savepoint_timestamp,
        started,
        now,
    );
    if let (None, Some(kind)) = (&sp.trigger_id, savepoint_due) {
        let dir = conf.savepoints_dir().map(str::to_string);
        let format = conf.savepoint_format_type();
        let trigger = host
            .flink()
            .trigger_savepoint(at, &job_id(host), dir, &format)
            .await?;
        let info = info_mut(host);
        info.trigger_id = Some(trigger);
        info.trigger_timestamp = Some(now);
        info.trigger_type = Some(kind);
        info.format_type = Some(format_type(&format));
        if kind == SnapshotTriggerType::Periodic {
            // The interval counts from the trigger, as upstream does.
            info.last_periodic_savepoint_timestamp = Some(now);
        } else {
            consume_nonce(
                host,
                "savepointTriggerNonce",
                desired.savepoint_trigger_nonce,
            );
        }
        return Ok(true);
    }
    let cp = js.checkpoint_info.clone().unwrap_or_default();
    let checkpoint_due = due_trigger(
        desired.checkpoint_trigger_nonce,
        reconciled.checkpoint_trigger_nonce,
        conf.periodic_checkpoint_interval(),
        cp.last_periodic_checkpoint_timestamp,
        started,
        now,
    );
    if let (None, Some(kind)) = (&cp.trigger_id, checkpoint_due) {
        let checkpoint_type = conf.checkpoint_type();
        let trigger = host
            .flink()
            .trigger_checkpoint(at, &job_id(host), &checkpoint_type)
            .await?;
        let ci = host
            .job_mut()
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
                host,
                "checkpointTriggerNonce",
                desired.checkpoint_trigger_nonce,
            );
        }
        return Ok(true);
    }
    Ok(false)
}

/// [`start_snapshots`] for a FlinkDeployment, while its job runs on a ready cluster.
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
    let at = run.endpoint_of(deployed);
    // Borrowed, not copied: this runs in every reconcile of a running job.
    let none = JobSpec::default();
    let (desired_job, deployed_job) = (
        desired.job.as_ref().unwrap_or(&none),
        deployed.job.as_ref().unwrap_or(&none),
    );
    start_snapshots(run, &at, &conf, desired_job, deployed_job).await
}

/// Records a trigger nonce (`field` of the stored job spec) as acted on, in the reconciled
/// spec, and in the stable one if the reconciled spec was stable, so that a manual snapshot
/// does not make it "unstable". Works on the stored JSON, so for either kind.
fn consume_nonce<H: SnapshotHost + ?Sized>(host: &mut H, field: &str, nonce: Option<i64>) {
    let Some(recon) = host.reconciliation_mut() else {
        return;
    };
    let was_stable = recon.last_reconciled_spec == recon.last_stable_spec;
    recon.last_reconciled_spec = recon.last_reconciled_spec.as_deref().and_then(|text| {
        let mut value: serde_json::Value = serde_json::from_str(text).ok()?;
        if let Some(job) = value
            .get_mut("spec")
            .and_then(|s| s.get_mut("job"))
            .and_then(|j| j.as_object_mut())
        {
            match nonce {
                Some(n) => job.insert(field.to_string(), serde_json::json!(n)),
                None => job.remove(field),
            };
        }
        serde_json::to_string(&value).ok().map(Into::into)
    });
    if was_stable {
        recon.last_stable_spec = recon.last_reconciled_spec.clone();
    }
}

/// Trims the savepoint history by count and age. The newest savepoint and the one an upgrade
/// would restore from are never disposed: they are the job's state.
async fn cleanup_history<H: SnapshotHost + ?Sized>(
    host: &mut H,
    at: &FlinkEndpoint,
    conf: &EffectiveConfig,
) {
    if !conf.savepoint_cleanup_enabled() {
        return;
    }
    let now = host.now();
    let max_count = conf.savepoint_history_max_count().max(1);
    let max_age = conf.savepoint_history_max_age().as_millis() as i64;
    let protected: Vec<Option<String>> = vec![
        host.job().and_then(|j| j.upgrade_savepoint_path.clone()),
        host.job()
            .and_then(|j| j.savepoint_info.as_ref())
            .and_then(|i| i.last_savepoint.as_ref())
            .and_then(|s| s.location.clone()),
    ];
    let history = info_mut(host).savepoint_history.take().unwrap_or_default();
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
    info_mut(host).savepoint_history = Some(kept);
    for sp in disposed {
        if let Some(location) = sp.location {
            // Best effort: a savepoint that cannot be disposed now is only disk space.
            let _ = host.flink().dispose_savepoint(at, &location).await;
        }
    }
}
