//! The FlinkDeployment reconcile: observe → validate → reconcile, then the status.

use super::diff::{diff, DiffType};
use super::events::*;
use super::observe::{self, job_state};
use super::upgrade::{self, record_reconciled};
use super::{savepoint, Context, ReconcileError, Requeue, Run};
use crate::crd::{
    FlinkDeploymentSpec, FlinkJobState, JobManagerDeploymentStatus as Jm, JobState,
    ReconciliationState, DEPLOYMENT_FINALIZER,
};
use crate::ports::EventType;

/// Reconciles one FlinkDeployment. `Ok(None)` means the resource is gone.
pub async fn reconcile(
    ctx: &Context<'_>,
    namespace: &str,
    name: &str,
) -> Result<Option<Requeue>, ReconcileError> {
    let Some(fd) = ctx.kube.get_flink_deployment(namespace, name).await? else {
        return Ok(None);
    };
    // The operator's defaults for this namespace and Flink version.
    let defaults =
        crate::config::defaults_for(ctx.operator_config, namespace, fd.spec.flink_version);
    let ctx = &Context {
        operator_config: &defaults,
        ..*ctx
    };
    let mut run = Run::new(ctx, fd, namespace, name);
    if run.fd.metadata.deletion_timestamp.is_some() {
        return super::cleanup::cleanup(&mut run).await;
    }
    ensure_finalizer(&mut run).await?;
    let result = reconcile_live(&mut run).await;
    if let Err(ReconcileError::UpgradeFailed(message)) = &result {
        upgrade::report_upgrade_failure(&mut run, message).await;
        run.write_status().await?;
    }
    result
}

async fn ensure_finalizer(run: &mut Run<'_>) -> Result<(), ReconcileError> {
    // Looked at in place: every reconcile comes here, and the finalizer is nearly always there.
    let finalizers = &run.fd.metadata.finalizers;
    if finalizers
        .iter()
        .flatten()
        .any(|f| f == DEPLOYMENT_FINALIZER)
    {
        return Ok(());
    }
    let mut finalizers = finalizers.clone().unwrap_or_default();
    finalizers.push(DEPLOYMENT_FINALIZER.to_string());
    run.fd = std::sync::Arc::new(
        run.ctx
            .kube
            .set_flink_deployment_finalizers(&run.fd, finalizers)
            .await?,
    );
    Ok(())
}

async fn reconcile_live(run: &mut Run<'_>) -> Result<Option<Requeue>, ReconcileError> {
    observe::observe(run).await?;
    let desired = validated_spec(run).await;
    // What was observed is recorded before anything is acted on, as upstream does.
    run.write_status().await?;
    let Some(desired) = desired else {
        return Ok(Some(requeue(run)));
    };
    let reconciled = run.last_reconciled();
    let Some(reconciled) = reconciled else {
        upgrade::first_deploy(run, &desired).await?;
        run.write_status().await?;
        return Ok(Some(requeue(run)));
    };
    let recon_state = run
        .status
        .reconciliation_status
        .as_ref()
        .and_then(|r| r.state);
    if recon_state == Some(ReconciliationState::RollingBack) {
        upgrade::perform_rollback(run).await?;
        run.write_status().await?;
        return Ok(Some(requeue(run)));
    }
    let (diff_type, changes) = diff(&reconciled.spec, &desired);
    let upgrading = recon_state == Some(ReconciliationState::Upgrading);
    if diff_type == DiffType::Ignore && !upgrading {
        if upgrade::should_roll_back(run).await? {
            upgrade::start_rollback(run).await?;
            upgrade::perform_rollback(run).await?;
            run.write_status().await?;
            return Ok(Some(requeue(run)));
        }
        record_ignored_changes(run, &reconciled.spec, &desired);
        if run.upgrade_failed() {
            // The change that failed was withdrawn.
            run.clear_error();
        }
        other_changes(run, &desired, &reconciled.spec).await?;
        run.write_status().await?;
        return Ok(Some(requeue(run)));
    }
    // A retry after a failed upgrade is not news: the events were emitted the first time.
    let retrying = run.upgrade_failed();
    if !upgrading && !retrying {
        if recon_state == Some(ReconciliationState::RolledBack) && is_deployed_spec(run, &desired) {
            // Back to the spec that runs after a rollback: nothing to redeploy.
            record_reconciled(
                run,
                &desired,
                desired.job.as_ref().map(|j| j.desired_state()),
                None,
                ReconciliationState::Deployed,
                false,
            );
            run.write_status().await?;
            return Ok(Some(requeue(run)));
        }
        let kind = match diff_type {
            DiffType::SavepointRedeploy => "SAVEPOINT_REDEPLOY",
            _ => "UPGRADE",
        };
        run.event(
            EventType::Normal,
            SPEC_CHANGED,
            COMPONENT_JOB,
            format!(
                "{kind} change(s) detected ({}), starting reconciliation.",
                changes.join(", ")
            ),
        )
        .await;
    }
    if diff_type == DiffType::SavepointRedeploy {
        upgrade::savepoint_redeploy(run, &desired).await?;
    } else {
        let finished = Box::pin(upgrade::upgrade(run, &desired)).await?;
        if !finished {
            run.write_status().await?;
            return Ok(Some(Requeue(
                run.config_of(&desired).progress_check_interval(),
            )));
        }
    }
    run.clear_error();
    run.write_status().await?;
    Ok(Some(requeue(run)))
}

/// The spec a reconcile works towards: the resource's own, or the last reconciled one while
/// the resource's is invalid. Shared with where it was read, not copied (every reconcile has
/// one).
enum Desired {
    Resource(std::sync::Arc<crate::crd::FlinkDeployment>),
    Reconciled(super::SharedSpec),
}

impl std::ops::Deref for Desired {
    type Target = FlinkDeploymentSpec;
    fn deref(&self) -> &FlinkDeploymentSpec {
        match self {
            Desired::Resource(fd) => &fd.spec,
            Desired::Reconciled(stored) => &stored.spec,
        }
    }
}

/// Validates the spec. An invalid spec is reported and the last reconciled one stays in
/// charge; `None` when there is none (nothing was ever deployed).
async fn validated_spec(run: &mut Run<'_>) -> Option<Desired> {
    let reconciled = run.last_reconciled();
    let problems = crate::validation::validate_deployment(
        &run.fd,
        reconciled.as_ref().map(|s| &s.spec),
        run.ctx.operator_config,
    );
    // Borrowed mutably (which copies the status) only when there is something to record or
    // to clear.
    let stale = super::is_error_of(run.status.error.as_deref(), "ValidationException");
    let news = if problems.is_empty() && !stale {
        None
    } else {
        super::record_problems(&mut run.status.error, &problems)
    };
    if problems.is_empty() {
        return Some(Desired::Resource(run.fd.clone()));
    }
    // As upstream: the invalid spec is not reconciled, so its generation is not observed.
    std::sync::Arc::make_mut(&mut run.fd).metadata.generation = run.status.observed_generation;
    if let Some(message) = news {
        run.event(
            EventType::Warning,
            VALIDATION_ERROR,
            COMPONENT_OPERATOR,
            message,
        )
        .await;
    }
    reconciled.map(Desired::Reconciled)
}

fn is_deployed_spec(run: &Run<'_>, desired: &FlinkDeploymentSpec) -> bool {
    run.last_stable()
        .map(|s| diff(&s.spec, desired).0 == DiffType::Ignore)
        .unwrap_or(false)
}

/// Changes that need no restart (nonces, upgrade mode, operator settings) are recorded so
/// that the reconciled spec always says what is in force.
fn record_ignored_changes(
    run: &mut Run<'_>,
    reconciled: &FlinkDeploymentSpec,
    desired: &FlinkDeploymentSpec,
) {
    if merged_is_reconciled(desired, reconciled) {
        if run.status.observed_generation != run.fd.metadata.generation {
            run.status.observed_generation = run.fd.metadata.generation;
        }
        return;
    }
    // The desired spec, with the reconciled job's fields kept, is what is now in force.
    let mut merged = desired.clone();
    if let (Some(m), Some(r)) = (merged.job.as_mut(), reconciled.job.as_ref()) {
        super::keep_reconciled_job_fields(m, r);
    }
    let generation = run.fd.metadata.generation;
    let recon = run
        .status
        .reconciliation_status
        .get_or_insert_with(Default::default);
    let was_stable = recon.last_reconciled_spec == recon.last_stable_spec;
    let first = false;
    recon.last_reconciled_spec = Some(crate::crd::StoredSpec::new(merged, first).to_json().into());
    if was_stable {
        recon.last_stable_spec = recon.last_reconciled_spec.clone();
    }
    run.status.observed_generation = generation;
}

/// Whether the desired spec with the reconciled job's fields kept (see
/// [`super::keep_reconciled_job_fields`]) is the reconciled spec, exactly: then there is
/// nothing to record. Nearly every reconcile it is; found by copying at most the job, not the
/// whole spec (a stored spec says `state: running` where the user's usually says nothing, so
/// the kept fields differ on most reconciles: with that copy of every steady deployment's
/// spec, recording took 5 % of the benchmark's samples).
pub(super) fn merged_is_reconciled(
    desired: &FlinkDeploymentSpec,
    reconciled: &FlinkDeploymentSpec,
) -> bool {
    let same_job = match (desired.job.as_ref(), reconciled.job.as_ref()) {
        (Some(d), Some(r)) if !super::has_reconciled_job_fields(d, r) => {
            let mut merged = d.clone();
            super::keep_reconciled_job_fields(&mut merged, r);
            merged == *r
        }
        (d, r) => d == r,
    };
    same_job && desired.same_but_job_by(reconciled, |a, b| a == b)
}

/// Everything besides spec changes: snapshots, failed jobs, a lost JobManager.
async fn other_changes(
    run: &mut Run<'_>,
    desired: &FlinkDeploymentSpec,
    deployed: &FlinkDeploymentSpec,
) -> Result<(), ReconcileError> {
    let conf = run.config_of(deployed);
    let running_wanted = deployed
        .job
        .as_ref()
        .map(|j| j.desired_state() == JobState::Running)
        .unwrap_or(true);
    let recon_deployed = matches!(
        run.status
            .reconciliation_status
            .as_ref()
            .and_then(|r| r.state),
        Some(ReconciliationState::Deployed) | Some(ReconciliationState::RolledBack)
    );
    if !running_wanted && recon_deployed {
        return upgrade::remove_suspended_leftovers(run, deployed).await;
    }
    if !running_wanted || !recon_deployed {
        return Ok(());
    }
    if deployed.job.is_some() && job_state(run) == Some(FlinkJobState::Failed) {
        if conf.restart_failed_jobs() {
            upgrade::restart_failed_job(run, deployed).await?;
        }
        return Ok(());
    }
    if run.status.job_manager_deployment_status == Some(Jm::Missing)
        && conf.jm_deployment_recovery()
    {
        let terminal = job_state(run)
            .map(|s| s.is_globally_terminal())
            .unwrap_or(false);
        if !terminal {
            upgrade::recover_jobmanager(run, deployed).await?;
        }
        return Ok(());
    }
    if deployed.job.is_some() {
        savepoint::trigger_snapshots(run, desired, deployed).await?;
    }
    Ok(())
}

/// When to look again, by what is going on (upstream's rescheduling rules).
fn requeue(run: &Run<'_>) -> Requeue {
    let reconciled = run.last_reconciled();
    let spec = reconciled.as_ref().map(|s| &s.spec).unwrap_or(&run.fd.spec);
    let conf = run.config_of(spec);
    let recon = run
        .status
        .reconciliation_status
        .as_ref()
        .and_then(|r| r.state);
    if matches!(
        recon,
        Some(ReconciliationState::Upgrading) | Some(ReconciliationState::RollingBack)
    ) {
        return Requeue(std::time::Duration::ZERO);
    }
    let pending = run
        .status
        .job_status
        .as_ref()
        .map(|j| {
            j.savepoint_info
                .as_ref()
                .map(|i| i.trigger_id.is_some())
                .unwrap_or(false)
                || j.checkpoint_info
                    .as_ref()
                    .map(|i| i.trigger_id.is_some())
                    .unwrap_or(false)
        })
        .unwrap_or(false);
    let base = match run.status.job_manager_deployment_status {
        Some(Jm::Deploying) => conf.progress_check_interval(),
        Some(Jm::DeployedNotReady) => conf.rest_ready_delay(),
        Some(Jm::Ready)
            if pending
                || job_state(run) != Some(FlinkJobState::Running)
                    && spec.job.is_some()
                    && !job_state(run)
                        .map(|s| s.is_globally_terminal())
                        .unwrap_or(false) =>
        {
            conf.progress_check_interval()
        }
        _ => conf.reconcile_interval(),
    };
    // A periodic savepoint due sooner than the next look brings the next look forward.
    let periodic = conf.periodic_savepoint_interval().map(|interval| {
        let last = run
            .status
            .job_status
            .as_ref()
            .and_then(|j| j.savepoint_info.as_ref())
            .and_then(|i| i.last_periodic_savepoint_timestamp)
            .or_else(|| {
                run.status
                    .job_status
                    .as_ref()
                    .and_then(|j| j.start_time.as_ref())
                    .and_then(|t| t.parse().ok())
            })
            .unwrap_or_else(|| run.now());
        let due = last + interval.as_millis() as i64 - run.now();
        std::time::Duration::from_millis(due.max(1000) as u64)
    });
    Requeue(periodic.map(|p| p.min(base)).unwrap_or(base))
}
