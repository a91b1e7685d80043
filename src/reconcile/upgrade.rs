//! Deploying, tearing down and upgrading clusters: first deploy, the three upgrade modes,
//! suspend and resume, rollback, and redeploys after failures.

use std::sync::Arc;
use std::time::Duration;

use super::events::*;
use super::observe::{job_state, set_job_state};
use super::savepoint;
use super::{derive_job_id, ReconcileError, Run};
use crate::cluster::{self, DeployOptions};
use crate::crd::{
    FlinkDeploymentSpec, FlinkJobState, JobManagerDeploymentStatus as Jm, JobState,
    ReconciliationState, StoredSpec, UpgradeMode,
};
use crate::ports::{EventType, FlinkError};

/// What a new deployment starts its job from.
#[derive(Debug, Clone, PartialEq)]
pub enum Restore {
    /// Empty state.
    Fresh,
    /// A savepoint or retained checkpoint path (`execution.savepoint.path`).
    Path(String),
    /// The latest checkpoint recorded in the HA metadata the previous cluster left.
    LastState,
}

impl Restore {
    /// The upgrade mode recorded in the reconciled spec for this restore.
    fn mode(&self) -> UpgradeMode {
        match self {
            Restore::Fresh => UpgradeMode::Stateless,
            Restore::Path(_) => UpgradeMode::Savepoint,
            Restore::LastState => UpgradeMode::LastState,
        }
    }
}

/// Is the job's state safe elsewhere, so that the cluster may go?
pub enum Suspend {
    /// Still working on it (a savepoint in flight, a job not yet running): look again later.
    Pending,
    /// The cluster is gone; restore like this.
    Done(Restore),
}

pub const MANUAL_RESTORE: &str = "Manual restore required.";

/// Whether the cluster's HA metadata holds a checkpoint of the current job (the last-state
/// upgrade's lifeline). Flink restores by job id: HA entries of an earlier job (one the
/// current job was started from a savepoint after) are older than the current job's start,
/// and a current job that has not checkpointed yet would start from nothing.
pub async fn ha_metadata_exists(run: &Run<'_>) -> Result<bool, ReconcileError> {
    Ok(ha_job_id(run).await?.is_some())
}

/// The current job's id if the cluster's HA metadata has a checkpoint of it
/// (`checkpointID-<job id>`).
async fn ha_job_id(run: &Run<'_>) -> Result<Option<String>, ReconcileError> {
    let maps = run
        .ctx
        .kube
        .list_config_maps(&run.namespace, &cluster::ha_config_map_selector(&run.name))
        .await?;
    let mut ids: Vec<String> = maps
        .iter()
        .flat_map(|cm| cm.data.iter().flat_map(|d| d.keys()))
        .filter_map(|k| k.strip_prefix("checkpointID-").map(str::to_string))
        .collect();
    ids.sort();
    let status_id = run
        .status
        .job_status
        .as_ref()
        .and_then(|j| j.job_id.clone());
    Ok(match status_id {
        Some(id) => ids.contains(&id).then_some(id),
        // A status from before job ids were recorded: the one job HA knows, if only one.
        None if ids.len() == 1 => ids.pop(),
        None => None,
    })
}

/// Deletes the cluster's Deployments. HA metadata is kept unless `delete_ha` is set.
pub async fn delete_cluster(run: &Run<'_>, delete_ha: bool) -> Result<(), ReconcileError> {
    let kube = run.ctx.kube;
    kube.delete_deployment(
        &run.namespace,
        &cluster::taskmanager_deployment_name(&run.name),
    )
    .await?;
    kube.delete_deployment(&run.namespace, &run.name).await?;
    if delete_ha {
        for cm in kube
            .list_config_maps(&run.namespace, &cluster::ha_config_map_selector(&run.name))
            .await?
        {
            if let Some(name) = cm.metadata.name {
                kube.delete_config_map(&run.namespace, &name).await?;
            }
        }
    }
    Ok(())
}

/// A suspended deployment keeps nothing of its cluster but the HA metadata (the user's
/// state), as upstream's, whose Services and Flink ConfigMap belong to the JobManager
/// Deployment and go with it. Ours are removed once the suspension is recorded, not with the
/// Deployment: until then a restarted operator reads from the ConfigMap what the cluster was
/// started from. The ConfigMap goes last, so its presence says whether anything is left
/// (one read per reconcile of a suspended deployment, no write).
pub async fn remove_suspended_leftovers(
    run: &Run<'_>,
    deployed: &FlinkDeploymentSpec,
) -> Result<(), ReconcileError> {
    let kube = run.ctx.kube;
    if flink_config_map(run).await?.is_none() {
        return Ok(());
    }
    let conf = run.config_of(deployed);
    let objects = cluster::build(&run.fd, deployed, &conf, &DeployOptions::default());
    for service in &objects.services {
        if let Some(service_name) = &service.metadata.name {
            kube.delete_service(&run.namespace, service_name).await?;
        }
    }
    kube.delete_config_map(&run.namespace, &cluster::config_map_name(&run.name))
        .await?;
    Ok(())
}

/// The Flink configuration ConfigMap the operator wrote for the current cluster, if any.
async fn flink_config_map(
    run: &Run<'_>,
) -> Result<Option<k8s_openapi::api::core::v1::ConfigMap>, ReconcileError> {
    let name = cluster::config_map_name(&run.name);
    let maps = run
        .ctx
        .kube
        .list_config_maps(
            &run.namespace,
            &format!("app={},type=flink-native-kubernetes", run.name),
        )
        .await?;
    Ok(maps
        .into_iter()
        .find(|m| m.metadata.name.as_deref() == Some(name.as_str())))
}

/// Creates (or replaces) every object of the cluster for `spec`.
pub async fn deploy(
    run: &mut Run<'_>,
    spec: &FlinkDeploymentSpec,
    restore: &Restore,
) -> Result<(), ReconcileError> {
    let conf = run.config_of(spec);
    let mut options = DeployOptions::default();
    if let Some(job) = &spec.job {
        options.allow_non_restored_state = job.allow_non_restored_state.unwrap_or(false);
        let current_id = match restore {
            // Flink finds the checkpoint in HA metadata by job id: use the one HA knows.
            Restore::LastState => ha_job_id(run).await?.or_else(|| {
                run.status
                    .job_status
                    .as_ref()
                    .and_then(|j| j.job_id.clone())
            }),
            _ => None,
        };
        options.job_id = Some(match (restore, current_id) {
            // Last-state keeps the job id: Flink finds its checkpoints in HA by it.
            (Restore::LastState, Some(id)) => id,
            _ => derive_job_id(&format!(
                "{}/{}/{}/{}",
                run.fd.metadata.uid.clone().unwrap_or_default(),
                run.namespace,
                run.name,
                run.now()
            )),
        });
        if let Restore::Path(p) = restore {
            options.savepoint_path = Some(p.clone());
        }
    }
    if spec.job.is_some() {
        // The job id goes to the API before the cluster that runs it, so that a restarted
        // operator looks for the job that was really started.
        run.status
            .job_status
            .get_or_insert_with(Default::default)
            .job_id = options.job_id.clone();
        run.write_status().await?;
    }
    let objects = cluster::build(&run.fd, spec, &conf, &options);
    let kube = run.ctx.kube;
    kube.apply_config_map(&objects.config_map).await?;
    for service in &objects.services {
        kube.apply_service(service).await?;
    }
    if let Some(tm) = &objects.taskmanager {
        kube.apply_deployment(tm).await?;
    }
    kube.apply_deployment(&objects.jobmanager).await?;
    let message = match restore {
        Restore::Path(p) => format!("Starting deployment from {p}"),
        Restore::LastState => "Starting deployment from the last state in HA metadata".to_string(),
        Restore::Fresh => "Starting deployment".to_string(),
    };
    run.event(EventType::Normal, SUBMIT, COMPONENT_JOBMANAGER, message)
        .await;
    run.status.job_manager_deployment_status = Some(Jm::Deploying);
    run.status.cluster_info = None;
    if spec.job.is_some() {
        let js = run.status.job_status.get_or_insert_with(Default::default);
        js.job_id = options.job_id.clone();
        set_job_state(run, FlinkJobState::Reconciling);
    }
    Ok(())
}

/// Records `spec` as reconciled, with the given job state and reconciliation state.
pub fn record_reconciled(
    run: &mut Run<'_>,
    spec: &FlinkDeploymentSpec,
    job_state: Option<JobState>,
    mode: Option<UpgradeMode>,
    state: ReconciliationState,
    first_deployment: bool,
) {
    let mut stored = spec.clone();
    if let Some(job) = stored.job.as_mut() {
        if let Some(s) = job_state {
            job.state = Some(s);
        }
        if let Some(m) = mode {
            job.upgrade_mode = Some(m);
        }
    }
    let now = run.now();
    let generation = run.fd.metadata.generation;
    let recon = run
        .status
        .reconciliation_status
        .get_or_insert_with(Default::default);
    recon.last_reconciled_spec = Some(StoredSpec::new(stored, first_deployment).to_json().into());
    recon.state = Some(state);
    recon.reconciliation_timestamp = Some(now);
    run.status.observed_generation = generation;
}

/// The first deployment of a resource.
pub async fn first_deploy(
    run: &mut Run<'_>,
    spec: &FlinkDeploymentSpec,
) -> Result<(), ReconcileError> {
    if let Some(job) = &spec.job {
        if job.desired_state() == JobState::Suspended {
            // Nothing to run: remember the spec, suspended and stable.
            record_reconciled(run, spec, None, None, ReconciliationState::Deployed, false);
            let recon = run.status.reconciliation_status.as_mut().unwrap();
            recon.last_stable_spec = recon.last_reconciled_spec.clone();
            return Ok(());
        }
    }
    let restore = match spec
        .job
        .as_ref()
        .and_then(|j| j.initial_savepoint_path.clone())
    {
        Some(path) if !path.is_empty() => {
            let js = run.status.job_status.get_or_insert_with(Default::default);
            js.upgrade_savepoint_path = Some(path.clone());
            Restore::Path(path)
        }
        _ => Restore::Fresh,
    };
    // Written before acting: a crash after this point is finished by the observer.
    let in_flight = spec.job.as_ref().map(|_| JobState::Suspended);
    record_reconciled(
        run,
        spec,
        in_flight,
        Some(restore.mode()),
        ReconciliationState::Upgrading,
        true,
    );
    run.write_status().await?;
    deploy(run, spec, &restore).await?;
    record_reconciled(
        run,
        spec,
        spec.job.as_ref().map(|_| JobState::Running),
        Some(restore.mode()),
        ReconciliationState::Deployed,
        false,
    );
    Ok(())
}

/// Brings the job's state to safety and removes the cluster, by `mode`.
async fn suspend_job(
    run: &mut Run<'_>,
    deployed: &FlinkDeploymentSpec,
    mode: UpgradeMode,
) -> Result<Suspend, ReconcileError> {
    let conf = run.config_of(deployed);
    let state = job_state(run);
    let jm = run.status.job_manager_deployment_status;
    let terminal = state.map(|s| s.is_globally_terminal()).unwrap_or(false);
    let reachable = jm == Some(Jm::Ready);
    if mode == UpgradeMode::Stateless {
        delete_cluster(run, true).await?;
        return Ok(Suspend::Done(Restore::Fresh));
    }
    // A stop whose answer was lost: wait for the job to stop rather than stop it twice; once
    // it has, the savepoint it took is the newest state. Mid-upgrade the observer does not
    // look at the job, so look here.
    let mut terminal = terminal;
    if let Some(sent) = super::state::stop_sent_at(run.status.job_status.as_ref()) {
        let at = run.endpoint_of(deployed);
        let job_id = run
            .status
            .job_status
            .as_ref()
            .and_then(|j| j.job_id.clone())
            .unwrap_or_default();
        let Ok(jobs) = run.ctx.flink.list_jobs(&at).await else {
            return Ok(Suspend::Pending);
        };
        let now_state = jobs
            .iter()
            .find(|j| j.jid == job_id)
            .and_then(|j| crate::crd::FlinkJobState::parse(&j.state));
        let stopped = now_state.map(|s| s.is_globally_terminal()).unwrap_or(false);
        let waited = Duration::from_millis((Run::now(run) - sent).max(0) as u64);
        if !stopped && waited < super::state::stop_timeout(&conf) {
            return Ok(Suspend::Pending);
        }
        if let (true, Some(state)) = (stopped, now_state) {
            let flink = run.ctx.flink;
            let js = run.status.job_status.get_or_insert_with(Default::default);
            if !super::state::remember_latest_checkpoint(flink, &at, &job_id, js).await {
                return Ok(Suspend::Pending);
            }
            super::observe::set_job_state(run, state);
            terminal = true;
        }
        super::state::clear_stop_mark(run.status.job_status.get_or_insert_with(Default::default));
        run.write_status().await?;
    }
    // A pending upgrade savepoint is finished first, whatever else happened since.
    if savepoint::upgrade_savepoint_pending(run) {
        return finish_upgrade_savepoint(run, deployed).await;
    }
    // Stopped with a savepoint already, and the operator died before the teardown.
    if let Some(path) = savepoint::upgrade_savepoint_since_deploy(run) {
        delete_cluster(run, false).await?;
        return Ok(Suspend::Done(Restore::Path(path)));
    }
    if terminal || !reachable {
        return suspend_without_running_job(run, deployed, terminal).await;
    }
    match mode {
        UpgradeMode::Savepoint => {
            if state != Some(FlinkJobState::Running) {
                if conf.last_state_fallback()
                    && conf.ha_enabled()
                    && ha_metadata_exists(run).await?
                {
                    delete_cluster(run, false).await?;
                    return Ok(Suspend::Done(Restore::LastState));
                }
                // Wait for the job to run (the observer does not look mid-upgrade).
                Box::pin(super::observe::refresh_mid_upgrade(run, deployed)).await?;
                return Ok(Suspend::Pending);
            }
            match savepoint::trigger_upgrade_savepoint(run, deployed).await {
                Ok(()) => {}
                // Refused because the job stopped already: perhaps by an earlier stop of ours
                // whose trigger was never recorded (its status write was lost). Wait for the
                // job as for a stop whose answer was lost: the newest state it recorded (that
                // stop's savepoint) is then restored, not left unknown.
                Err(ReconcileError::Flink(FlinkError::Conflict(_))) => {
                    let now = Run::now(run);
                    super::state::mark_stop_sent(
                        run.status.job_status.get_or_insert_with(Default::default),
                        now,
                    );
                    run.write_status().await?;
                }
                Err(e) => return Err(e),
            }
            Ok(Suspend::Pending)
        }
        UpgradeMode::LastState => {
            if conf.ha_enabled() && ha_metadata_exists(run).await? {
                delete_cluster(run, false).await?;
                return Ok(Suspend::Done(Restore::LastState));
            }
            // Without HA metadata the newest checkpoint is the last state.
            let at = run.endpoint_of(deployed);
            let job_id = run
                .status
                .job_status
                .as_ref()
                .and_then(|j| j.job_id.clone())
                .unwrap_or_default();
            let stats = run.ctx.flink.checkpoints(&at, &job_id).await?;
            let Some(latest) = stats.latest.completed else {
                return Err(ReconcileError::UpgradeFailed(format!(
                    "No completed checkpoint to upgrade from in last-state mode without HA metadata. {MANUAL_RESTORE}"
                )));
            };
            run.ctx.flink.cancel_job(&at, &job_id).await?;
            // Recorded as an upgrade savepoint is, so that an operator that dies before the
            // teardown goes on from it (upgrade_savepoint_since_deploy) rather than asking a
            // cluster that may have shut down with its cancelled job.
            let now = Run::now(run);
            let js = run.status.job_status.get_or_insert_with(Default::default);
            super::state::record_upgrade_state(js, Some(latest.external_path.clone()), now);
            run.write_status().await?;
            delete_cluster(run, false).await?;
            Ok(Suspend::Done(Restore::Path(latest.external_path)))
        }
        UpgradeMode::Stateless => unreachable!("handled above"),
    }
}

/// The upgrade savepoint was triggered earlier: finish it, record it, then tear down.
async fn finish_upgrade_savepoint(
    run: &mut Run<'_>,
    deployed: &FlinkDeploymentSpec,
) -> Result<Suspend, ReconcileError> {
    match savepoint::poll_upgrade_savepoint(run, deployed).await? {
        None => Ok(Suspend::Pending),
        Some(location) => {
            // The savepoint's location is in the API before anything is deleted.
            run.write_status().await?;
            delete_cluster(run, false).await?;
            Ok(Suspend::Done(Restore::Path(location)))
        }
    }
}

/// The job is not running (terminal, or the cluster is unreachable): restore from what is
/// known to be safe, or stop and say so.
async fn suspend_without_running_job(
    run: &mut Run<'_>,
    deployed: &FlinkDeploymentSpec,
    terminal: bool,
) -> Result<Suspend, ReconcileError> {
    // A deployment whose job never started holds no newer state than what it started from.
    if never_ran_since_deploy(run) {
        if let Some(restore) = Box::pin(start_state_of_current_deployment(run, deployed)).await? {
            delete_cluster(run, false).await?;
            return Ok(Suspend::Done(restore));
        }
    }
    let conf = run.config_of(deployed);
    if conf.ha_enabled() && ha_metadata_exists(run).await? && !terminal {
        delete_cluster(run, false).await?;
        return Ok(Suspend::Done(Restore::LastState));
    }
    // Only a job that stopped for good has its newest state in the status (recorded when it
    // was seen stopping); one that may still run may have checkpointed since.
    if let Some(path) = savepoint::newest_known_state(run).filter(|_| terminal) {
        delete_cluster(run, false).await?;
        return Ok(Suspend::Done(Restore::Path(path)));
    }
    if !terminal
        && run.status.job_manager_deployment_status != Some(Jm::Missing)
        && run.status.job_manager_deployment_status != Some(Jm::Error)
    {
        // Not reachable yet and nothing known: wait rather than guess. The observer does not
        // look mid-upgrade, so look here, or a cluster that comes up is never seen to.
        Box::pin(super::observe::refresh_mid_upgrade(run, deployed)).await?;
        return Ok(Suspend::Pending);
    }
    Err(ReconcileError::UpgradeFailed(format!(
        "JobManager deployment is missing and HA metadata is not available to make stateful upgrades. It is possible that the job has finished or terminally failed, or the configmaps have been deleted.{MANUAL_RESTORE}"
    )))
}

/// What the current deployment was started from, as its Flink configuration (the ConfigMap
/// the operator wrote for it) says: a savepoint or checkpoint path, else the last state in HA
/// metadata when HA holds the job, else nothing. None when that cannot be told (no
/// ConfigMap). The reconciled spec's upgrade mode is not enough: it follows the user's
/// upgradeMode once the deployment runs.
async fn start_state_of_current_deployment(
    run: &Run<'_>,
    deployed: &FlinkDeploymentSpec,
) -> Result<Option<Restore>, ReconcileError> {
    let stateless = deployed.job.as_ref().map(|j| j.upgrade_mode()) == Some(UpgradeMode::Stateless);
    let map = flink_config_map(run).await?;
    let Some(config) = map
        .as_ref()
        .and_then(|m| m.data.as_ref())
        .and_then(|d| d.get("config.yaml"))
    else {
        return Ok(stateless.then_some(Restore::Fresh));
    };
    let path = config
        .lines()
        .find_map(|l| l.strip_prefix("execution.savepoint.path: "))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty());
    Ok(Some(match path {
        Some(p) => Restore::Path(p),
        None if ha_metadata_exists(run).await? => Restore::LastState,
        None => Restore::Fresh,
    }))
}

/// The job of the current deployment never ran: it was never seen running (its start time
/// is recorded when it is first observed) and its JobManager never came up. A JobManager
/// that is up may have run the job (and checkpointed) while its REST API did not answer.
fn never_ran_since_deploy(run: &Run<'_>) -> bool {
    if matches!(
        run.status.job_manager_deployment_status,
        Some(Jm::DeployedNotReady) | Some(Jm::Ready)
    ) {
        return false;
    }
    let deployed_at = run
        .status
        .reconciliation_status
        .as_ref()
        .and_then(|r| r.reconciliation_timestamp)
        .unwrap_or(0);
    run.status
        .job_status
        .as_ref()
        .and_then(|j| j.start_time.as_ref())
        .and_then(|t| t.parse::<i64>().ok())
        .map(|started| started < deployed_at)
        .unwrap_or(true)
}

/// A spec change: suspend what runs by the upgrade mode, then deploy the new spec.
pub async fn upgrade(
    run: &mut Run<'_>,
    desired: &FlinkDeploymentSpec,
) -> Result<bool, ReconcileError> {
    // After a rollback the stable spec is what runs (the reconciled one failed): the upgrade
    // starts from it, and whatever happens to the upgrade, the status says so.
    if let Some(recon) = run.status.reconciliation_status.as_mut() {
        if recon.state == Some(ReconciliationState::RolledBack) && recon.last_stable_spec.is_some()
        {
            recon.last_reconciled_spec = recon.last_stable_spec.clone();
            recon.state = Some(ReconciliationState::Deployed);
        }
    }
    let Some(reconciled) = run.last_reconciled() else {
        return Ok(true);
    };
    let deployed = &reconciled.spec;
    if desired.job.is_none() {
        return upgrade_session_cluster(run, desired).await.map(|_| true);
    }
    let was_running = deployed.job.as_ref().map(|j| j.desired_state()) == Some(JobState::Running);
    let restore = if was_running {
        if run
            .status
            .reconciliation_status
            .as_ref()
            .and_then(|r| r.state)
            != Some(ReconciliationState::Upgrading)
        {
            if !run.upgrade_failed() {
                run.event(
                    EventType::Normal,
                    SUSPENDED,
                    COMPONENT_JOB,
                    "Suspending existing deployment.".to_string(),
                )
                .await;
            }
            let recon = run
                .status
                .reconciliation_status
                .get_or_insert_with(Default::default);
            recon.state = Some(ReconciliationState::Upgrading);
            run.write_status().await?;
        }
        let mode = desired
            .job
            .as_ref()
            .map(|j| j.upgrade_mode())
            .unwrap_or(UpgradeMode::Stateless);
        match Box::pin(suspend_job(run, deployed, mode)).await? {
            Suspend::Pending => return Ok(false),
            Suspend::Done(restore) => {
                // Where the state was left is what a resume starts from, not an older path.
                if let Restore::Path(path) = &restore {
                    run.status
                        .job_status
                        .get_or_insert_with(Default::default)
                        .upgrade_savepoint_path = Some(path.clone());
                }
                restore
            }
        }
    } else {
        // Resuming (or changing a suspended spec): restore as the last suspend recorded.
        resume_restore(run, deployed, desired).await?
    };
    let desired_state = desired
        .job
        .as_ref()
        .map(|j| j.desired_state())
        .unwrap_or(JobState::Running);
    // The cluster is down: record the new spec as in flight before deploying it.
    record_reconciled(
        run,
        desired,
        Some(JobState::Suspended),
        Some(restore.mode()),
        ReconciliationState::Upgrading,
        false,
    );
    if desired_state == JobState::Suspended {
        set_job_state(run, FlinkJobState::Suspended);
        run.status.job_manager_deployment_status = Some(Jm::Missing);
        let recon = run.status.reconciliation_status.as_mut().unwrap();
        recon.state = Some(ReconciliationState::Deployed);
        // A suspended spec is stable by definition.
        recon.last_stable_spec = recon.last_reconciled_spec.clone();
        return Ok(true);
    }
    run.write_status().await?;
    deploy(run, desired, &restore).await?;
    record_reconciled(
        run,
        desired,
        Some(JobState::Running),
        Some(restore.mode()),
        ReconciliationState::Deployed,
        false,
    );
    Ok(true)
}

/// How a suspended (or torn-down) job comes back.
async fn resume_restore(
    run: &mut Run<'_>,
    deployed: &FlinkDeploymentSpec,
    desired: &FlinkDeploymentSpec,
) -> Result<Restore, ReconcileError> {
    let desired_mode = desired
        .job
        .as_ref()
        .map(|j| j.upgrade_mode())
        .unwrap_or(UpgradeMode::Stateless);
    if desired_mode == UpgradeMode::Stateless {
        return Ok(Restore::Fresh);
    }
    let recorded = deployed
        .job
        .as_ref()
        .map(|j| j.upgrade_mode())
        .unwrap_or(UpgradeMode::Stateless);
    let conf = run.config_of(deployed);
    if recorded == UpgradeMode::LastState && conf.ha_enabled() && ha_metadata_exists(run).await? {
        return Ok(Restore::LastState);
    }
    match run
        .status
        .job_status
        .as_ref()
        .and_then(|j| j.upgrade_savepoint_path.clone())
    {
        Some(path) if recorded != UpgradeMode::Stateless => Ok(Restore::Path(path)),
        _ => Ok(savepoint::newest_known_state(run)
            .map(Restore::Path)
            .unwrap_or(Restore::Fresh)),
    }
}

/// Session clusters hold no job state of their own: any change redeploys them.
async fn upgrade_session_cluster(
    run: &mut Run<'_>,
    desired: &FlinkDeploymentSpec,
) -> Result<(), ReconcileError> {
    if run
        .status
        .reconciliation_status
        .as_ref()
        .and_then(|r| r.state)
        != Some(ReconciliationState::Upgrading)
    {
        record_reconciled(
            run,
            desired,
            None,
            None,
            ReconciliationState::Upgrading,
            false,
        );
        run.write_status().await?;
    }
    delete_cluster(run, false).await?;
    deploy(run, desired, &Restore::Fresh).await?;
    record_reconciled(
        run,
        desired,
        None,
        None,
        ReconciliationState::Deployed,
        false,
    );
    Ok(())
}

/// `savepointRedeployNonce`: throw away what runs and start from `initialSavepointPath`.
pub async fn savepoint_redeploy(
    run: &mut Run<'_>,
    desired: &FlinkDeploymentSpec,
) -> Result<(), ReconcileError> {
    let path = desired
        .job
        .as_ref()
        .and_then(|j| j.initial_savepoint_path.clone())
        .unwrap_or_default();
    delete_cluster(run, false).await?;
    let js = run.status.job_status.get_or_insert_with(Default::default);
    js.upgrade_savepoint_path = Some(path.clone());
    record_reconciled(
        run,
        desired,
        Some(JobState::Suspended),
        Some(UpgradeMode::Savepoint),
        ReconciliationState::Upgrading,
        false,
    );
    run.write_status().await?;
    deploy(run, desired, &Restore::Path(path)).await?;
    record_reconciled(
        run,
        desired,
        Some(JobState::Running),
        Some(UpgradeMode::Savepoint),
        ReconciliationState::Deployed,
        false,
    );
    let recon = run.status.reconciliation_status.as_mut().unwrap();
    recon.last_stable_spec = recon.last_reconciled_spec.clone();
    Ok(())
}

/// Upstream's rollback rule: the new spec did not become stable within the readiness
/// timeout, there is a stable spec to go back to, and its state can be restored.
pub async fn should_roll_back(run: &Run<'_>) -> Result<bool, ReconcileError> {
    let Some(recon) = run.status.reconciliation_status.as_ref() else {
        return Ok(false);
    };
    if recon.state != Some(ReconciliationState::Deployed)
        || recon.last_reconciled_spec == recon.last_stable_spec
    {
        return Ok(false);
    }
    let (Some(reconciled), Some(stable)) = (run.last_reconciled(), run.last_stable()) else {
        return Ok(false);
    };
    let conf = run.config_of(&reconciled.spec);
    if !conf.rollback_enabled() {
        return Ok(false);
    }
    if stable.spec.job.as_ref().map(|j| j.desired_state()) == Some(JobState::Suspended)
        || reconciled.spec.job.as_ref().map(|j| j.desired_state()) == Some(JobState::Suspended)
    {
        return Ok(false);
    }
    if stable.spec.flink_version != reconciled.spec.flink_version {
        return Ok(false);
    }
    let since = recon.reconciliation_timestamp.unwrap_or(0);
    if (run.now() - since) as u128 <= conf.readiness_timeout().as_millis() {
        return Ok(false);
    }
    if reconciled.spec.job.is_none() {
        return Ok(true);
    }
    let savepoint_mode =
        reconciled.spec.job.as_ref().map(|j| j.upgrade_mode()) == Some(UpgradeMode::Savepoint);
    let jm_never_ran = run.status.job_manager_deployment_status != Some(Jm::Ready)
        && job_state(run) != Some(FlinkJobState::Running);
    Ok((savepoint_mode && jm_never_ran) || (conf.ha_enabled() && ha_metadata_exists(run).await?))
}

/// Marks the rollback; the next step performs it.
pub async fn start_rollback(run: &mut Run<'_>) -> Result<(), ReconcileError> {
    run.event(
        EventType::Warning,
        ROLLBACK,
        COMPONENT_JOB,
        "Rolling back failed deployment.".to_string(),
    )
    .await;
    let recon = run
        .status
        .reconciliation_status
        .get_or_insert_with(Default::default);
    recon.state = Some(ReconciliationState::RollingBack);
    run.write_status().await?;
    Ok(())
}

/// Deploys the last stable spec again, restoring state as its upgrade mode allows.
pub async fn perform_rollback(run: &mut Run<'_>) -> Result<(), ReconcileError> {
    let (Some(reconciled), Some(stable)) = (run.last_reconciled(), run.last_stable()) else {
        return Ok(());
    };
    let mut reconciled = Arc::unwrap_or_clone(reconciled);
    let stateless =
        stable.spec.job.as_ref().map(|j| j.upgrade_mode()) == Some(UpgradeMode::Stateless);
    let conf = run.config_of(&stable.spec);
    // If the failed spec never ran its job, the state it was started from is still the
    // newest; otherwise its latest checkpoint is, in HA metadata.
    let unstarted = if never_ran_since_deploy(run) {
        Box::pin(start_state_of_current_deployment(run, &reconciled.spec)).await?
    } else {
        None
    };
    let restore = if stable.spec.job.is_none() || stateless {
        Restore::Fresh
    } else if let Some(restore) = unstarted {
        restore
    } else if conf.ha_enabled() && ha_metadata_exists(run).await? {
        Restore::LastState
    } else if let Some(path) = savepoint::newest_known_state(run) {
        Restore::Path(path)
    } else {
        return Err(ReconcileError::UpgradeFailed(format!(
            "Nothing to roll back from. {MANUAL_RESTORE}"
        )));
    };
    delete_cluster(run, stable.spec.job.is_none() || stateless).await?;
    deploy(run, &stable.spec, &restore).await?;
    if let Some(job) = reconciled.spec.job.as_mut() {
        job.upgrade_mode = Some(restore.mode());
    }
    let now = run.now();
    let recon = run
        .status
        .reconciliation_status
        .get_or_insert_with(Default::default);
    recon.last_reconciled_spec = Some(reconciled.to_json().into());
    recon.state = Some(ReconciliationState::RolledBack);
    recon.reconciliation_timestamp = Some(now);
    Ok(())
}

/// `kubernetes.operator.job.restart.failed`: a terminally failed job is redeployed from the
/// newest state known (or empty, for stateless jobs).
pub async fn restart_failed_job(
    run: &mut Run<'_>,
    deployed: &FlinkDeploymentSpec,
) -> Result<(), ReconcileError> {
    let stateless = deployed.job.as_ref().map(|j| j.upgrade_mode()) == Some(UpgradeMode::Stateless);
    let restore = match (stateless, savepoint::newest_known_state(run)) {
        (false, Some(path)) => Restore::Path(path),
        _ => Restore::Fresh,
    };
    // HA metadata is the job's state too: only a stateless job lets it go.
    delete_cluster(run, stateless).await?;
    run.status.error = None;
    deploy(run, deployed, &restore).await?;
    record_reconciled(
        run,
        deployed,
        Some(JobState::Running),
        Some(restore.mode()),
        ReconciliationState::Deployed,
        false,
    );
    Ok(())
}

/// The JobManager Deployment vanished while it should run: recreate it, if no state is lost
/// by doing so (stateless jobs, session clusters, or HA metadata to resume from).
pub async fn recover_jobmanager(
    run: &mut Run<'_>,
    deployed: &FlinkDeploymentSpec,
) -> Result<bool, ReconcileError> {
    let conf = run.config_of(deployed);
    let stateless = deployed
        .job
        .as_ref()
        .map(|j| j.upgrade_mode())
        .unwrap_or(UpgradeMode::Stateless)
        == UpgradeMode::Stateless;
    let restore = if deployed.job.is_none() || stateless {
        Restore::Fresh
    } else if conf.ha_enabled() && ha_metadata_exists(run).await? {
        Restore::LastState
    } else {
        return Ok(false);
    };
    run.event(
        EventType::Warning,
        RECOVER_DEPLOYMENT,
        COMPONENT_JOBMANAGER,
        "Recovering lost deployment".to_string(),
    )
    .await;
    deploy(run, deployed, &restore).await?;
    Ok(true)
}

/// Records an upgrade failure in status and as an event; the upgrade is retried with backoff.
pub async fn report_upgrade_failure(run: &mut Run<'_>, message: &str) {
    run.status.error = Some(super::with_problems(
        run.status.error.as_deref(),
        "UpgradeFailureException",
        message,
    ));
    run.event(
        EventType::Warning,
        UPGRADE_FAILED,
        COMPONENT_JOB,
        message.to_string(),
    )
    .await;
}
