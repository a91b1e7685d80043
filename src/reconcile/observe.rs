//! Observing a FlinkDeployment's cluster: the JobManager Deployment and its pods, the
//! cluster's REST API and the job, and marking the spec stable once it runs healthy.

use super::events::*;
use super::{error_json, ReconcileError, Run};
use crate::cluster::{self, GENERATION_ANNOTATION};
use crate::crd::{
    FlinkDeploymentSpec, FlinkJobState, JobManagerDeploymentStatus as Jm, JobState, JobStatus,
    ReconciliationState, StoredSpec,
};
use crate::ports::{EventType, PodView};

/// Container waiting reasons that mean the JobManager will not come up by itself.
pub const FAILURE_REASONS: [&str; 6] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "RunContainerError",
    "CreateContainerConfigError",
    "OOMKilled",
];

/// The first failure reason among the pods' containers, with its message.
pub fn pod_failure(pods: &[PodView]) -> Option<(String, String)> {
    for pod in pods {
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        let init = pod
            .status
            .as_ref()
            .and_then(|s| s.init_container_statuses.as_ref());
        for cs in statuses.into_iter().chain(init).flatten() {
            let waiting = cs.state.as_ref().and_then(|s| s.waiting.as_ref());
            let terminated = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
            if let Some(w) = waiting {
                let reason = w.reason.clone().unwrap_or_default();
                if FAILURE_REASONS.contains(&reason.as_str()) {
                    return Some((reason, w.message.clone().unwrap_or_default()));
                }
            }
            if let Some(t) = terminated {
                if t.reason.as_deref() == Some("OOMKilled") {
                    return Some(("OOMKilled".into(), t.message.clone().unwrap_or_default()));
                }
            }
        }
    }
    None
}

fn job_status_mut<'r>(run: &'r mut Run<'_>) -> &'r mut JobStatus {
    run.status.job_status.get_or_insert_with(Default::default)
}

pub fn job_state(run: &Run<'_>) -> Option<FlinkJobState> {
    run.status.job_status.as_ref().and_then(|j| j.state)
}

pub fn set_job_state(run: &mut Run<'_>, state: FlinkJobState) {
    if job_state(run) == Some(state) {
        return;
    }
    let now = run.now();
    let js = job_status_mut(run);
    js.state = Some(state);
    js.update_time = Some(now.to_string());
}

/// Observes the resource. Returns without looking when there is nothing deployed to observe.
pub async fn observe(run: &mut Run<'_>) -> Result<(), ReconcileError> {
    let Some(reconciled) = run.last_reconciled() else {
        return Ok(());
    };
    let recon_state = run
        .status
        .reconciliation_status
        .as_ref()
        .and_then(|r| r.state);
    if recon_state == Some(ReconciliationState::RollingBack) {
        return Ok(());
    }
    let job_suspended =
        reconciled.spec.job.as_ref().map(|j| j.desired_state()) == Some(JobState::Suspended);
    if recon_state == Some(ReconciliationState::Upgrading) {
        // Mid-upgrade: only a finished deploy (the cluster exists for the generation we
        // recorded) is observed; anything else is for the reconciler to carry on with.
        let deploying = job_suspended || reconciled.spec.job.is_none();
        if !deploying || !already_deployed(run).await? {
            if reconciled.resource_metadata.first_deployment && !already_deployed(run).await? {
                // The first deploy did not happen: forget it and start it again.
                if let Some(r) = run.status.reconciliation_status.as_mut() {
                    r.last_reconciled_spec = None;
                }
            }
            return Ok(());
        }
        mark_deployed_after_crash(run, (*reconciled).clone());
        return Ok(());
    }
    observe_jobmanager(run, &reconciled.spec, job_suspended).await?;
    if run.status.job_manager_deployment_status == Some(Jm::Ready) {
        if reconciled.spec.job.is_some() && !has_cluster_info(run) {
            // Once per cluster: what runs there (session clusters read it on every observe).
            if let Ok(overview) = run
                .ctx
                .flink
                .overview(&run.endpoint_of(&reconciled.spec))
                .await
            {
                record_cluster_info(run, &overview);
            }
        }
        if reconciled.spec.job.is_some() {
            if !job_suspended {
                observe_job(run, &reconciled.spec).await?;
                super::savepoint::observe_snapshots(run, &reconciled.spec).await?;
            }
        } else {
            observe_session_cluster(run, &reconciled.spec).await?;
        }
    }
    clear_error_when_healthy(run);
    Ok(())
}

/// Whether the JobManager Deployment of the generation recorded as reconciled exists.
async fn already_deployed(run: &Run<'_>) -> Result<bool, ReconcileError> {
    let Some(dep) = run
        .ctx
        .kube
        .get_deployment(&run.namespace, &run.name)
        .await?
    else {
        return Ok(false);
    };
    if dep.metadata.deletion_timestamp.is_some() {
        return Ok(false);
    }
    let annotated = dep
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(GENERATION_ANNOTATION))
        .cloned();
    Ok(annotated.is_some() && annotated == run.status.observed_generation.map(|g| g.to_string()))
}

/// The operator died after deploying but before recording it: record it now.
fn mark_deployed_after_crash(run: &mut Run<'_>, mut reconciled: StoredSpec<FlinkDeploymentSpec>) {
    if let Some(job) = reconciled.spec.job.as_mut() {
        job.state = Some(JobState::Running);
        set_job_state(run, FlinkJobState::Reconciling);
    }
    reconciled.resource_metadata.first_deployment = false;
    let recon = run
        .status
        .reconciliation_status
        .get_or_insert_with(Default::default);
    recon.last_reconciled_spec = Some(reconciled.to_json().into());
    recon.state = Some(ReconciliationState::Deployed);
    run.status.job_manager_deployment_status = Some(Jm::Deploying);
}

async fn observe_jobmanager(
    run: &mut Run<'_>,
    spec: &FlinkDeploymentSpec,
    job_suspended: bool,
) -> Result<(), ReconcileError> {
    let previous = run.status.job_manager_deployment_status;
    let deployment = run
        .ctx
        .kube
        .get_deployment(&run.namespace, &run.name)
        .await?;
    let Some(deployment) = deployment.filter(|d| d.metadata.deletion_timestamp.is_none()) else {
        if job_suspended {
            if previous != Some(Jm::Missing) {
                run.status.job_manager_deployment_status = Some(Jm::Missing);
            }
            return Ok(());
        }
        if previous != Some(Jm::Missing) && previous.is_some() {
            run.event(
                EventType::Warning,
                MISSING,
                COMPONENT_JOBMANAGER,
                "Missing JobManager deployment".to_string(),
            )
            .await;
            run.status.error = Some(error_json(
                "MissingJobManagerException",
                "Missing JobManager deployment",
            ));
        }
        run.status.job_manager_deployment_status = Some(Jm::Missing);
        if spec.job.is_some()
            && !job_state(run)
                .map(|s| s.is_globally_terminal())
                .unwrap_or(false)
        {
            set_job_state(run, FlinkJobState::Reconciling);
        }
        return Ok(());
    };
    // The pods say why a JobManager does not come up; one that is up needs no look at them
    // (as upstream's observer, which checks pods only while the Deployment is not ready).
    let pods = if deployment.fully_available() {
        Vec::new()
    } else {
        run.ctx
            .kube
            .list_pods(&run.namespace, &cluster::jobmanager_pod_selector(&run.name))
            .await?
    };
    if let Some((reason, message)) = pod_failure(&pods) {
        let text = format!("{reason}: {message}");
        if previous != Some(Jm::Error)
            || run
                .status
                .error
                .as_deref()
                .map(|e| !e.contains(&reason))
                .unwrap_or(true)
        {
            run.event(
                EventType::Warning,
                &reason,
                COMPONENT_JOBMANAGER,
                text.clone(),
            )
            .await;
        }
        run.status.job_manager_deployment_status = Some(Jm::Error);
        run.status.error = Some(error_json("DeploymentFailedException", &text));
        if spec.job.is_some() {
            set_job_state(run, FlinkJobState::Reconciling);
        }
        return Ok(());
    }
    let available = deployment
        .status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    let next = if available > 0 {
        match previous {
            Some(Jm::DeployedNotReady) | Some(Jm::Ready) => Jm::Ready,
            _ => Jm::DeployedNotReady,
        }
    } else {
        Jm::Deploying
    };
    if previous != Some(next) {
        run.status.job_manager_deployment_status = Some(next);
    }
    if next != Jm::Ready && spec.job.is_some() && job_state(run) == Some(FlinkJobState::Running) {
        set_job_state(run, FlinkJobState::Reconciling);
    }
    Ok(())
}

/// Mid-upgrade, when the upgrade waits for the cluster to answer: the JobManager, and the
/// job once the JobManager is ready (the upgrade is recorded, so nothing is marked stable).
pub async fn refresh_mid_upgrade(
    run: &mut Run<'_>,
    spec: &FlinkDeploymentSpec,
) -> Result<(), ReconcileError> {
    observe_jobmanager(run, spec, false).await?;
    if run.status.job_manager_deployment_status == Some(Jm::Ready) && spec.job.is_some() {
        observe_job(run, spec).await?;
    }
    run.write_status().await
}

/// Reads the job from the cluster and records what Flink says.
async fn observe_job(run: &mut Run<'_>, spec: &FlinkDeploymentSpec) -> Result<(), ReconcileError> {
    let at = run.endpoint_of(spec);
    let jobs = match run.ctx.flink.list_jobs(&at).await {
        Ok(jobs) => jobs,
        Err(e) if e.is_unavailable() => {
            // The REST API went away under a READY JobManager: look again soon.
            run.status.job_manager_deployment_status = Some(Jm::DeployedNotReady);
            set_job_state(run, FlinkJobState::Reconciling);
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let wanted = run
        .status
        .job_status
        .as_ref()
        .and_then(|j| j.job_id.clone());
    // An application cluster runs one job: the one the status names, else its newest.
    let found = jobs
        .iter()
        .find(|j| wanted.as_ref() == Some(&j.jid))
        .or_else(|| jobs.iter().max_by_key(|j| j.start_time));
    let Some(job) = found else {
        if job_state(run) != Some(FlinkJobState::Reconciling) || run.status.error.is_none() {
            // Before the job shows up it is simply not submitted yet; that is not an error.
            set_job_state(run, FlinkJobState::Reconciling);
        }
        return Ok(());
    };
    let new_state = FlinkJobState::parse(&job.state).unwrap_or(FlinkJobState::Reconciling);
    let old_state = job_state(run);
    let known = run.status.job_status.as_ref().is_some_and(|js| {
        js.job_id.as_deref() == Some(job.jid.as_str())
            && js.job_name.as_deref() == Some(job.name.as_str())
            && js
                .start_time
                .as_deref()
                .is_some_and(|t| super::same_text(t, format_args!("{}", job.start_time)))
    });
    if !known {
        let js = job_status_mut(run);
        js.job_id = Some(job.jid.clone());
        js.job_name = Some(job.name.clone());
        js.start_time = Some(job.start_time.to_string());
    }
    if old_state != Some(new_state) {
        set_job_state(run, new_state);
        let from = old_state.map(|s| s.as_str()).unwrap_or("UNKNOWN");
        run.event(
            EventType::Normal,
            JOB_STATUS_CHANGED,
            COMPONENT_JOB,
            format!("Job status changed from {from} to {}", new_state.as_str()),
        )
        .await;
        if new_state == FlinkJobState::Failed {
            let cause = run
                .ctx
                .flink
                .exceptions(&at, &job.jid)
                .await
                .ok()
                .and_then(|e| e.exception_history.entries.first().cloned())
                .map(|e| e.exception_name)
                .unwrap_or_else(|| "Job failed".to_string());
            run.status.error = Some(error_json("FlinkJobException", &cause));
            run.event(EventType::Warning, "Error", COMPONENT_JOB, cause)
                .await;
        }
        if new_state.is_globally_terminal() {
            let flink = run.ctx.flink;
            super::state::remember_latest_checkpoint(flink, &at, &job.jid, job_status_mut(run))
                .await;
        }
    }
    if new_state == FlinkJobState::Running {
        mark_stable_if_deployed(run);
    }
    Ok(())
}

async fn observe_session_cluster(
    run: &mut Run<'_>,
    spec: &FlinkDeploymentSpec,
) -> Result<(), ReconcileError> {
    let at = run.endpoint_of(spec);
    match run.ctx.flink.overview(&at).await {
        Ok(overview) => {
            record_cluster_info(run, &overview);
            mark_stable_if_deployed(run);
            Ok(())
        }
        Err(e) if e.is_unavailable() => {
            run.status.job_manager_deployment_status = Some(Jm::DeployedNotReady);
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn has_cluster_info(run: &Run<'_>) -> bool {
    run.status
        .cluster_info
        .as_ref()
        .map(|i| i.contains_key("flink-version"))
        .unwrap_or(false)
}

fn record_cluster_info(run: &mut Run<'_>, overview: &crate::ports::ClusterOverview) {
    let info = run.status.cluster_info.get_or_insert_with(Default::default);
    info.insert("flink-version".into(), overview.flink_version.clone());
    if let Some(commit) = &overview.flink_commit {
        info.insert("flink-revision".into(), commit.clone());
    }
    info.insert(
        "total-taskmanagers".into(),
        overview.taskmanagers.to_string(),
    );
    info.insert("total-slots".into(), overview.slots_total.to_string());
}

/// The reconciled spec runs healthy: it becomes the spec to roll back to.
pub fn mark_stable_if_deployed(run: &mut Run<'_>) {
    let due = run.status.reconciliation_status.as_ref().is_some_and(|r| {
        r.state == Some(ReconciliationState::Deployed)
            && r.last_reconciled_spec != r.last_stable_spec
    });
    if !due {
        return;
    }
    if let Some(recon) = run.status.reconciliation_status.as_mut() {
        recon.last_stable_spec = recon.last_reconciled_spec.clone();
    }
}

/// Upstream clears the error once the JobManager is fine, the job has not failed and the
/// reconciled spec is stable.
fn clear_error_when_healthy(run: &mut Run<'_>) {
    let stable = run
        .status
        .reconciliation_status
        .as_ref()
        .map(|r| r.last_reconciled_spec.is_some() && r.last_reconciled_spec == r.last_stable_spec)
        .unwrap_or(false);
    // An upgrade that failed stays reported until it goes through or the user reverts it.
    let upgrade_failed = run.upgrade_failed();
    if stable
        && !upgrade_failed
        && run.status.job_manager_deployment_status != Some(Jm::Error)
        && job_state(run) != Some(FlinkJobState::Failed)
    {
        run.clear_error();
    }
}
