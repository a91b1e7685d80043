//! The FlinkSessionJob reconcile: a job submitted to the session cluster its
//! `deploymentName` names, through the cluster's REST API. Each session job is managed on
//! its own: changing, failing or deleting one leaves the others alone.
//!
//! Like a FlinkDeployment, every step that must survive a crash is in the status first: the
//! job id before the job is submitted (a retry finds the job instead of starting a second),
//! the savepoint trigger before polling it, the savepoint location before resubmitting.

use std::time::Duration;

use super::diff::{diff, DiffType};
use super::events::*;
use super::{derive_job_id, error_json, Context, ReconcileError, Requeue};
use crate::config::EffectiveConfig;
use crate::crd::{
    FlinkDeployment, FlinkJobState, FlinkSessionJob, FlinkSessionJobSpec, FlinkSessionJobStatus,
    JobManagerDeploymentStatus, JobState, ReconciliationState, ResourceLifecycleState,
    SnapshotTriggerType, StoredSpec, UpgradeMode, SESSION_JOB_FINALIZER,
};
use crate::ports::{
    ArtifactRequest, EventRecord, EventType, FetchedJar, FlinkEndpoint, FlinkError, JarRunRequest,
    SnapshotOutcome,
};

/// The error type recorded when a jar cannot be fetched.
const ARTIFACT_ERROR: &str = "ArtifactFetchException";

/// One reconcile of one FlinkSessionJob.
struct JobRun<'a> {
    ctx: &'a Context<'a>,
    job: FlinkSessionJob,
    status: FlinkSessionJobStatus,
    namespace: String,
    name: String,
}

enum Suspended {
    Pending,
    Done(Option<String>),
}

impl<'a> JobRun<'a> {
    fn now(&self) -> i64 {
        self.ctx.clock.now_millis()
    }

    fn config(
        &self,
        session: Option<&FlinkDeployment>,
        spec: &FlinkSessionJobSpec,
    ) -> EffectiveConfig {
        let mut merged = session
            .and_then(|s| s.spec.flink_configuration.as_ref())
            .map(|c| c.flatten())
            .unwrap_or_default();
        merged.extend(
            spec.flink_configuration
                .as_ref()
                .map(|c| c.flatten())
                .unwrap_or_default(),
        );
        EffectiveConfig::new(self.ctx.operator_config, &merged)
    }

    fn last_reconciled(&self) -> Option<StoredSpec<FlinkSessionJobSpec>> {
        self.status
            .reconciliation_status
            .as_ref()
            .and_then(|r| r.last_reconciled_spec.as_deref())
            .and_then(|s| StoredSpec::parse(s).ok())
    }

    fn recon_state(&self) -> Option<ReconciliationState> {
        self.status
            .reconciliation_status
            .as_ref()
            .and_then(|r| r.state)
    }

    fn job_state(&self) -> Option<FlinkJobState> {
        self.status.job_status.as_ref().and_then(|j| j.state)
    }

    fn job_id(&self) -> Option<String> {
        self.status
            .job_status
            .as_ref()
            .and_then(|j| j.job_id.clone())
    }

    fn set_job_state(&mut self, state: FlinkJobState) {
        let now = self.now();
        let js = self.status.job_status.get_or_insert_with(Default::default);
        if js.state != Some(state) {
            js.state = Some(state);
            js.update_time = Some(now.to_string());
        }
    }

    async fn event(&self, event_type: EventType, reason: &str, message: String) {
        let record = EventRecord {
            kind: "FlinkSessionJob".into(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.job.metadata.uid.clone(),
            event_type,
            reason: reason.into(),
            message,
            component: COMPONENT_JOB.into(),
        };
        if let Err(e) = self.ctx.kube.publish_event(&record).await {
            tracing::warn!(error = %e, reason, "could not publish event");
        }
    }

    async fn write_status(&mut self) -> Result<(), ReconcileError> {
        let sticky = matches!(
            self.status.lifecycle_state,
            Some(ResourceLifecycleState::Deleting) | Some(ResourceLifecycleState::Deleted)
        );
        let mut probe = self.status.clone();
        if !sticky {
            probe.lifecycle_state = None;
        }
        self.status.lifecycle_state = Some(crate::lifecycle::session_job_lifecycle(&probe));
        if self.job.status.as_ref() == Some(&self.status) {
            return Ok(());
        }
        let mut desired = self.job.clone();
        desired.status = Some(self.status.clone());
        self.job = self.ctx.kube.update_session_job_status(&desired).await?;
        Ok(())
    }

    fn record_reconciled(
        &mut self,
        spec: &FlinkSessionJobSpec,
        state: JobState,
        mode: Option<UpgradeMode>,
        recon: ReconciliationState,
    ) {
        let mut stored = spec.clone();
        if let Some(job) = stored.job.as_mut() {
            job.state = Some(state);
            if let Some(m) = mode {
                job.upgrade_mode = Some(m);
            }
        }
        let now = self.now();
        let generation = self.job.metadata.generation;
        let r = self
            .status
            .reconciliation_status
            .get_or_insert_with(Default::default);
        r.last_reconciled_spec = Some(StoredSpec::new(stored, false).to_json().into());
        r.state = Some(recon);
        r.reconciliation_timestamp = Some(now);
        self.status.observed_generation = generation;
    }

    fn mark_stable(&mut self) {
        if let Some(r) = self.status.reconciliation_status.as_mut() {
            if r.state == Some(ReconciliationState::Deployed) {
                r.last_stable_spec = r.last_reconciled_spec.clone();
            }
        }
    }
}

#[async_trait::async_trait]
impl super::savepoint::SnapshotHost for JobRun<'_> {
    fn job(&self) -> Option<&crate::crd::JobStatus> {
        self.status.job_status.as_ref()
    }
    fn job_mut(&mut self) -> &mut crate::crd::JobStatus {
        self.status.job_status.get_or_insert_with(Default::default)
    }
    fn reconciliation_mut(&mut self) -> Option<&mut crate::crd::ReconciliationStatus> {
        self.status.reconciliation_status.as_mut()
    }
    fn flink(&self) -> &dyn crate::ports::FlinkApi {
        self.ctx.flink
    }
    fn now(&self) -> i64 {
        self.ctx.clock.now_millis()
    }
    async fn snapshot_event(&self, event_type: EventType, reason: &str, message: String) {
        self.event(event_type, reason, message).await
    }
}

fn endpoint(session: &FlinkDeployment, conf: &EffectiveConfig) -> FlinkEndpoint {
    FlinkEndpoint::for_cluster(
        session.metadata.namespace.as_deref().unwrap_or_default(),
        session.metadata.name.as_deref().unwrap_or_default(),
        conf.rest_port(),
    )
    .with_https(crate::ports::rest_ssl_enabled(
        conf.get(crate::ports::REST_SSL_ENABLED),
    ))
}

fn ready(session: &FlinkDeployment) -> bool {
    session
        .status
        .as_ref()
        .and_then(|s| s.job_manager_deployment_status)
        == Some(JobManagerDeploymentStatus::Ready)
}

/// Reconciles one FlinkSessionJob. `Ok(None)` means it is gone.
pub async fn reconcile(
    ctx: &Context<'_>,
    namespace: &str,
    name: &str,
) -> Result<Option<Requeue>, ReconcileError> {
    let Some(job) = ctx.kube.get_session_job(namespace, name).await? else {
        return Ok(None);
    };
    // The session cluster the job was submitted to: `deploymentName` is immutable, so a
    // changed one is refused by validation, and the job (and its deletion) stays where it runs.
    let submitted_to = job
        .status
        .as_ref()
        .and_then(|s| s.reconciliation_status.as_ref())
        .and_then(|r| r.last_reconciled_spec.as_deref())
        .and_then(|s| StoredSpec::<FlinkSessionJobSpec>::parse(s).ok())
        .and_then(|l| l.spec.deployment_name);
    let session_name = submitted_to
        .or_else(|| job.spec.deployment_name.clone())
        .unwrap_or_default();
    let session = if session_name.is_empty() {
        None
    } else {
        ctx.kube
            .get_flink_deployment(namespace, &session_name)
            .await?
    };
    // The operator's defaults for this namespace and the session cluster's Flink version.
    let version = session.as_ref().and_then(|s| s.spec.flink_version);
    let defaults = crate::config::defaults_for(ctx.operator_config, namespace, version);
    let ctx = &Context {
        operator_config: &defaults,
        ..*ctx
    };
    let mut run = JobRun {
        ctx,
        status: job.status.clone().unwrap_or_default(),
        namespace: namespace.to_string(),
        name: name.to_string(),
        job,
    };
    if run.job.metadata.deletion_timestamp.is_some() {
        return cleanup(&mut run, session.as_deref()).await;
    }
    let finalizers = &run.job.metadata.finalizers;
    if !finalizers
        .iter()
        .flatten()
        .any(|f| f == SESSION_JOB_FINALIZER)
    {
        let mut finalizers = finalizers.clone().unwrap_or_default();
        finalizers.push(SESSION_JOB_FINALIZER.to_string());
        run.job = ctx
            .kube
            .set_session_job_finalizers(&run.job, finalizers)
            .await?;
    }
    let conf = run.config(session.as_deref(), &run.job.spec.clone());
    let result = reconcile_live(&mut run, session.as_deref(), &conf).await;
    match &result {
        Err(ReconcileError::UpgradeFailed(message)) => {
            let error = error_json("UpgradeFailureException", message);
            if run.status.error.as_deref() != Some(error.as_str()) {
                run.event(EventType::Warning, UPGRADE_FAILED, message.clone())
                    .await;
                run.status.error = Some(error);
            }
            run.write_status().await?;
        }
        Err(ReconcileError::Artifact(e)) => {
            // Nothing was changed for it: the jar is fetched before the running job is touched.
            // A lost job stays said beside it (the lifecycle and deletion go by it).
            let message = if job_missing(&run) {
                format!("{e}; and the job is lost: {JOB_NOT_FOUND}")
            } else {
                e.to_string()
            };
            let error = error_json(ARTIFACT_ERROR, &message);
            if run.status.error.as_deref() != Some(error.as_str()) {
                run.event(EventType::Warning, ARTIFACT_FETCH_FAILED, e.to_string())
                    .await;
                run.status.error = Some(error);
            }
            run.write_status().await?;
        }
        _ => {}
    }
    result
}

async fn reconcile_live(
    run: &mut JobRun<'_>,
    session: Option<&FlinkDeployment>,
    conf: &EffectiveConfig,
) -> Result<Option<Requeue>, ReconcileError> {
    let progress = Requeue(conf.progress_check_interval());
    let interval = Requeue(conf.reconcile_interval());
    // The session cluster must be there and answering.
    let Some(session) = session.filter(|s| ready(s)) else {
        if run.job_state() == Some(FlinkJobState::Running) {
            run.set_job_state(FlinkJobState::Reconciling);
        }
        let Some(_) = session else {
            // No such session cluster: that is an error the user has to fix.
            let message = format!(
                "The session cluster {} does not exist",
                run.job.spec.deployment_name.as_deref().unwrap_or("")
            );
            let error = error_json("MissingSessionJobException", &message);
            if run.status.error.as_deref() != Some(error.as_str()) {
                run.event(EventType::Warning, MISSING, message).await;
                run.status.error = Some(error);
            }
            run.write_status().await?;
            return Ok(Some(interval));
        };
        // The session cluster is coming up (or back): wait for it.
        run.write_status().await?;
        return Ok(Some(progress));
    };
    super::clear_error_of(&mut run.status.error, "MissingSessionJobException");
    let at = endpoint(session, conf);
    observe(run, &at).await?;
    if run.job_state() == Some(FlinkJobState::Running) {
        if let Some(reconciled) = run.last_reconciled() {
            let job = reconciled.spec.job.unwrap_or_default();
            super::savepoint::poll_snapshots(run, &at, conf, &job).await?;
        }
    }
    let last = run.last_reconciled();
    let problems = crate::validation::validate_session_job(
        &run.job,
        Some(session),
        last.as_ref().map(|l| &l.spec),
        run.ctx.operator_config,
    );
    // A lost job stays said (the lifecycle and deletion go by it) beside validation errors.
    let lost = job_missing(run);
    let before = run.status.error.clone();
    let mut news = super::record_problems(&mut run.status.error, &problems);
    if lost && !problems.is_empty() {
        let message = super::problems_message(&problems);
        let combined = error_json(
            "ValidationException",
            &format!("{message}; and the job is lost: {JOB_NOT_FOUND}"),
        );
        news = (before.as_deref() != Some(combined.as_str())).then_some(message);
        run.status.error = Some(combined);
    } else if lost && run.status.error.is_none() {
        run.status.error = Some(error_json(JOB_NOT_FOUND_ERROR, JOB_NOT_FOUND));
    }
    if let Some(message) = news {
        run.event(EventType::Warning, VALIDATION_ERROR, message)
            .await;
    }
    let desired = if problems.is_empty() {
        Some(run.job.spec.clone())
    } else {
        run.job.metadata.generation = run.status.observed_generation;
        last.as_ref().map(|l| l.spec.clone())
    };
    run.write_status().await?;
    let Some(desired) = desired else {
        return Ok(Some(interval));
    };
    let desired_state = desired
        .job
        .as_ref()
        .map(|j| j.desired_state())
        .unwrap_or(JobState::Running);
    let Some(last) = last else {
        // First deployment.
        if desired_state == JobState::Suspended {
            run.record_reconciled(
                &desired,
                JobState::Suspended,
                None,
                ReconciliationState::Deployed,
            );
            run.mark_stable();
            run.write_status().await?;
            return Ok(Some(interval));
        }
        let path = desired
            .job
            .as_ref()
            .and_then(|j| j.initial_savepoint_path.clone())
            .filter(|p| !p.is_empty());
        let jar = fetch_jar(run, conf, &desired).await?;
        if let Some(p) = &path {
            run.status
                .job_status
                .get_or_insert_with(Default::default)
                .upgrade_savepoint_path = Some(p.clone());
        }
        submit(run, &at, &desired, path, &jar).await?;
        return Ok(Some(progress));
    };
    let upgrading = run.recon_state() == Some(ReconciliationState::Upgrading);
    let (kind, changes) = diff(&last.spec, &desired);
    let deployed_running =
        last.spec.job.as_ref().map(|j| j.desired_state()) == Some(JobState::Running);
    if kind == DiffType::Ignore
        && !upgrading
        && deployed_running
        && run.job_state() == Some(FlinkJobState::Failed)
        && conf.restart_failed_jobs()
    {
        restart_failed(run, &at, conf, &last.spec).await?;
        return Ok(Some(progress));
    }
    if kind == DiffType::Ignore && !upgrading {
        record_ignored_changes(run, &last.spec, &desired);
        run.write_status().await?;
        if run.job_state() == Some(FlinkJobState::Running) {
            // Savepoints and checkpoints by nonce or interval, as for deployments.
            let reconciled_job = last.spec.job.clone().unwrap_or_default();
            let desired_job = desired.job.clone().unwrap_or_default();
            super::savepoint::start_snapshots(run, &at, conf, &desired_job, &reconciled_job)
                .await?;
            run.write_status().await?;
            if snapshot_pending(run) {
                return Ok(Some(progress));
            }
        }
        if run.job_state() == Some(FlinkJobState::Running)
            || run
                .job_state()
                .map(|s| s.is_globally_terminal())
                .unwrap_or(false)
            || desired_state == JobState::Suspended
        {
            return Ok(Some(interval));
        }
        return Ok(Some(progress));
    }
    if job_missing(run)
        && desired.job.as_ref().map(|j| j.upgrade_mode()) != Some(UpgradeMode::Stateless)
    {
        return Err(ReconcileError::UpgradeFailed(format!(
            "{JOB_NOT_FOUND}: the session cluster no longer knows the job and its newest state cannot be known here. Manual restore required: recreate the session job with initialSavepointPath set to its newest checkpoint or savepoint, or make it stateless."
        )));
    }
    // The new jar first: if it cannot be had, the running job is left alone.
    let jar = if desired_state == JobState::Running {
        Some(fetch_jar(run, conf, &desired).await?)
    } else {
        None
    };
    if !upgrading {
        run.event(
            EventType::Normal,
            SPEC_CHANGED,
            format!(
                "UPGRADE change(s) detected ({}), starting reconciliation.",
                changes.join(", ")
            ),
        )
        .await;
    }
    let was_running = last.spec.job.as_ref().map(|j| j.desired_state()) == Some(JobState::Running)
        && !job_missing(run);
    let restore = if was_running
        && run
            .job_state()
            .map(|s| !s.is_globally_terminal() || s == FlinkJobState::Finished)
            .unwrap_or(false)
    {
        let mode = desired
            .job
            .as_ref()
            .map(|j| j.upgrade_mode())
            .unwrap_or(UpgradeMode::Stateless);
        match suspend(run, &at, conf, mode).await {
            Ok(Suspended::Pending) => {
                run.write_status().await?;
                return Ok(Some(progress));
            }
            Ok(Suspended::Done(path)) => path,
            Err(ReconcileError::Flink(FlinkError::NotFound(_))) => {
                // The stop was refused: the cluster does not know the job (lost with it).
                // The next reconcile goes on as for any lost job.
                stop_found_no_job(run).await;
                run.write_status().await?;
                return Ok(Some(progress));
            }
            Err(e) => return Err(e),
        }
    } else {
        // Suspended, or the job already ended: restore from what is recorded.
        let stateless =
            desired.job.as_ref().map(|j| j.upgrade_mode()) == Some(UpgradeMode::Stateless);
        // A suspend recorded where it left the state (its savepoint, or the checkpoint it
        // cancelled after): newer than any savepoint before it.
        let suspended_with_state = last.spec.job.as_ref().map(|j| {
            j.desired_state() == JobState::Suspended && j.upgrade_mode() != UpgradeMode::Stateless
        }) == Some(true);
        let left_at = run
            .status
            .job_status
            .as_ref()
            .and_then(|j| j.upgrade_savepoint_path.clone())
            .filter(|_| suspended_with_state);
        if stateless {
            None
        } else {
            left_at.or_else(|| newest_known_state(run))
        }
    };
    if desired_state == JobState::Suspended {
        // Where the suspend left the state is what a resume restores from (see `left_at`),
        // also when the job had ended on its own before it could be stopped.
        if let Some(path) = &restore {
            run.status
                .job_status
                .get_or_insert_with(Default::default)
                .upgrade_savepoint_path = Some(path.clone());
        }
        run.record_reconciled(
            &desired,
            JobState::Suspended,
            Some(restore_mode(&restore)),
            ReconciliationState::Deployed,
        );
        run.set_job_state(FlinkJobState::Suspended);
        run.mark_stable();
        run.write_status().await?;
        return Ok(Some(interval));
    }
    run.status
        .job_status
        .get_or_insert_with(Default::default)
        .job_id = None;
    let Some(jar) = jar else {
        return Ok(Some(progress));
    };
    submit(run, &at, &desired, restore, &jar).await?;
    Ok(Some(progress))
}

/// Changes that need no restart (upgrade mode, operator settings) are recorded, so that the
/// reconciled spec says what is in force and the generation is observed.
fn record_ignored_changes(
    run: &mut JobRun<'_>,
    reconciled: &FlinkSessionJobSpec,
    desired: &FlinkSessionJobSpec,
) {
    let mut merged = desired.clone();
    if let (Some(m), Some(r)) = (merged.job.as_mut(), reconciled.job.as_ref()) {
        super::keep_reconciled_job_fields(m, r);
    }
    let generation = run.job.metadata.generation;
    if &merged != reconciled {
        let r = run
            .status
            .reconciliation_status
            .get_or_insert_with(Default::default);
        let was_stable = r.last_reconciled_spec == r.last_stable_spec;
        r.last_reconciled_spec = Some(StoredSpec::new(merged, false).to_json().into());
        if was_stable {
            r.last_stable_spec = r.last_reconciled_spec.clone();
        }
    }
    run.status.observed_generation = generation;
}

/// `kubernetes.operator.job.restart.failed`: a FAILED job is submitted again from the spec in
/// force, from its newest state unless it is stateless.
async fn restart_failed(
    run: &mut JobRun<'_>,
    at: &FlinkEndpoint,
    conf: &EffectiveConfig,
    deployed: &FlinkSessionJobSpec,
) -> Result<(), ReconcileError> {
    let jar = fetch_jar(run, conf, deployed).await?;
    let stateless = deployed.job.as_ref().map(|j| j.upgrade_mode()) == Some(UpgradeMode::Stateless);
    let restore = if stateless {
        None
    } else {
        newest_known_state(run)
    };
    run.status.error = None;
    run.status
        .job_status
        .get_or_insert_with(Default::default)
        .job_id = None;
    submit(run, at, deployed, restore, &jar).await
}

/// The job's jar on the operator's disk, fetched (or found in the cache) from its jarURI.
async fn fetch_jar(
    run: &JobRun<'_>,
    conf: &EffectiveConfig,
    spec: &FlinkSessionJobSpec,
) -> Result<FetchedJar, ReconcileError> {
    let uri = spec
        .job
        .as_ref()
        .and_then(|j| j.jar_uri.clone())
        .unwrap_or_default();
    let request = ArtifactRequest {
        uri,
        config: conf.values(),
    };
    Ok(run.ctx.artifacts.fetch(&request).await?)
}

fn snapshot_pending(run: &JobRun<'_>) -> bool {
    let js = run.status.job_status.as_ref();
    js.and_then(|j| j.savepoint_info.as_ref())
        .map(|i| i.trigger_id.is_some())
        .unwrap_or(false)
        || js
            .and_then(|j| j.checkpoint_info.as_ref())
            .map(|i| i.trigger_id.is_some())
            .unwrap_or(false)
}

fn restore_mode(restore: &Option<String>) -> UpgradeMode {
    if restore.is_some() {
        UpgradeMode::Savepoint
    } else {
        UpgradeMode::Stateless
    }
}

fn newest_known_state(run: &JobRun<'_>) -> Option<String> {
    super::state::newest_known_state(run.status.job_status.as_ref())
}

fn upgrade_savepoint_since_deploy(run: &JobRun<'_>) -> Option<String> {
    super::state::upgrade_savepoint_since_deploy(
        run.status.job_status.as_ref(),
        run.status.reconciliation_status.as_ref(),
    )
}

/// Reads the job's state from the session cluster.
async fn observe(run: &mut JobRun<'_>, at: &FlinkEndpoint) -> Result<(), ReconcileError> {
    let Some(job_id) = run.job_id() else {
        return Ok(());
    };
    if run
        .last_reconciled()
        .and_then(|l| l.spec.job.map(|j| j.desired_state()))
        == Some(JobState::Suspended)
    {
        return Ok(());
    }
    let jobs = match run.ctx.flink.list_jobs(at).await {
        Ok(jobs) => jobs,
        Err(e) if e.is_unavailable() => {
            run.set_job_state(FlinkJobState::Reconciling);
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let Some(found) = jobs.iter().find(|j| j.jid == job_id) else {
        job_not_found(run).await;
        return Ok(());
    };
    super::clear_error_of(&mut run.status.error, JOB_NOT_FOUND);
    let state = FlinkJobState::parse(&found.state).unwrap_or(FlinkJobState::Reconciling);
    let before = run.job_state();
    {
        let js = run.status.job_status.get_or_insert_with(Default::default);
        js.job_name = Some(found.name.clone());
        js.start_time = Some(found.start_time.to_string());
    }
    if before != Some(state) {
        run.set_job_state(state);
        run.event(
            EventType::Normal,
            JOB_STATUS_CHANGED,
            format!(
                "Job status changed from {} to {}",
                before.map(|s| s.as_str()).unwrap_or("UNKNOWN"),
                state.as_str()
            ),
        )
        .await;
        if state == FlinkJobState::Failed {
            run.status.error = Some(error_json("FlinkJobException", "Job failed"));
        }
        if state.is_globally_terminal() {
            let flink = run.ctx.flink;
            let js = run.status.job_status.get_or_insert_with(Default::default);
            super::state::remember_latest_checkpoint(flink, at, &job_id, js).await;
        }
    }
    if state == FlinkJobState::Running {
        run.mark_stable();
        if run
            .status
            .error
            .as_deref()
            .map(|e| e.contains("FlinkJobException"))
            .unwrap_or(false)
        {
            run.status.error = None;
        }
    }
    Ok(())
}

/// The error type recorded when the session cluster does not know the job.
const JOB_NOT_FOUND_ERROR: &str = "JobNotFoundException";
/// The message of that error, which the lifecycle (FAILED) and deletion also go by.
const JOB_NOT_FOUND: &str = "Job Not Found";

/// The session cluster does not know the job (it was redeployed without HA, or the job was
/// cancelled behind the operator's back). As upstream: say so, and resubmit a stateless job;
/// a stateful one waits for the user, since the newest state it had cannot be known here
/// (checkpoints taken after the last observation are newer than anything in the status).
/// A spec change cannot bring it back from a state that is not known: it is refused (see
/// `reconcile_live`), unless it makes the job stateless.
async fn job_not_found(run: &mut JobRun<'_>) {
    let deployed = run.last_reconciled().and_then(|l| l.spec.job);
    let Some(deployed) = deployed else {
        return;
    };
    if run.recon_state() == Some(ReconciliationState::Upgrading) {
        return; // just submitted, or being replaced: the reconciler knows better
    }
    say_lost(run).await;
    if deployed.upgrade_mode() == UpgradeMode::Stateless {
        // Recorded as suspended: the next reconcile submits the spec again, fresh.
        if let Some(mut last) = run.last_reconciled() {
            if let Some(job) = last.spec.job.as_mut() {
                job.state = Some(JobState::Suspended);
            }
            if let Some(r) = run.status.reconciliation_status.as_mut() {
                r.last_reconciled_spec = Some(last.to_json().into());
            }
        }
    }
}

/// A stop (sent again after its answer was lost and its time ran out) was answered "no such
/// job": the session cluster lost the job, and the stop's savepoint with it. Said as for any
/// lost job; the stop is forgotten.
async fn stop_found_no_job(run: &mut JobRun<'_>) {
    super::state::clear_trigger_of(run.status.job_status.as_mut());
    if let Some(r) = run.status.reconciliation_status.as_mut() {
        r.state = Some(ReconciliationState::Deployed);
    }
    say_lost(run).await;
}

/// Says the job is lost (once), and that its state is not known.
async fn say_lost(run: &mut JobRun<'_>) {
    if !job_missing(run) {
        run.event(EventType::Warning, MISSING, JOB_NOT_FOUND.to_string())
            .await;
        run.status.error = Some(error_json(JOB_NOT_FOUND_ERROR, JOB_NOT_FOUND));
    }
    run.set_job_state(FlinkJobState::Reconciling);
}

/// The job is neither lost nor ended for good.
fn live_job(run: &JobRun<'_>) -> bool {
    !job_missing(run)
        && !run
            .job_state()
            .map(|s| s.is_globally_terminal())
            .unwrap_or(false)
}

/// Whether the session cluster was found not to know the job.
fn job_missing(run: &JobRun<'_>) -> bool {
    run.status
        .error
        .as_deref()
        .map(|e| e.contains(JOB_NOT_FOUND))
        .unwrap_or(false)
}

/// Uploads the jar and runs it with a job id recorded first, so a retry after a crash finds
/// the job instead of submitting it twice.
async fn submit(
    run: &mut JobRun<'_>,
    at: &FlinkEndpoint,
    spec: &FlinkSessionJobSpec,
    savepoint: Option<String>,
    jar: &FetchedJar,
) -> Result<(), ReconcileError> {
    let job_id = match (run.recon_state(), run.job_id()) {
        (Some(ReconciliationState::Upgrading), Some(id)) => id,
        _ => derive_job_id(&format!(
            "{}/{}/{}/{}",
            run.job.metadata.uid.clone().unwrap_or_default(),
            run.namespace,
            run.name,
            run.now()
        )),
    };
    let mode = if savepoint.is_some() {
        Some(UpgradeMode::Savepoint)
    } else {
        None
    };
    run.record_reconciled(
        spec,
        JobState::Suspended,
        mode,
        ReconciliationState::Upgrading,
    );
    {
        let js = run.status.job_status.get_or_insert_with(Default::default);
        js.job_id = Some(job_id.clone());
    }
    run.set_job_state(FlinkJobState::Reconciling);
    run.write_status().await?;
    let already = run
        .ctx
        .flink
        .list_jobs(at)
        .await?
        .iter()
        .any(|j| j.jid == job_id);
    if !already {
        let job = spec.job.clone().unwrap_or_default();
        let jar_id = run.ctx.flink.upload_jar(at, &jar.path).await?;
        let request = JarRunRequest {
            entry_class: job.entry_class.clone(),
            program_args_list: job.args.clone(),
            parallelism: job.parallelism,
            job_id: Some(job_id),
            allow_non_restored_state: job.allow_non_restored_state,
            savepoint_path: savepoint.clone(),
            flink_configuration: spec
                .flink_configuration
                .as_ref()
                .map(|c| c.flatten())
                .filter(|c| !c.is_empty()),
        };
        let result = run.ctx.flink.run_jar(at, &jar_id, &request).await;
        // The uploaded jar is not needed once the job runs (or failed to).
        let _ = run.ctx.flink.delete_jar(at, &jar_id).await;
        result?;
        let message = match &savepoint {
            Some(p) => format!("Starting job from {p}"),
            None => "Starting job".to_string(),
        };
        run.event(EventType::Normal, SUBMIT, message).await;
    }
    super::clear_error_of(&mut run.status.error, ARTIFACT_ERROR);
    super::clear_error_of(&mut run.status.error, JOB_NOT_FOUND);
    run.record_reconciled(spec, JobState::Running, mode, ReconciliationState::Deployed);
    run.write_status().await?;
    Ok(())
}

/// Stops the running job by the upgrade mode; the path to restore from when done.
async fn suspend(
    run: &mut JobRun<'_>,
    at: &FlinkEndpoint,
    conf: &EffectiveConfig,
    mode: UpgradeMode,
) -> Result<Suspended, ReconcileError> {
    let Some(job_id) = run.job_id() else {
        return Ok(Suspended::Done(None));
    };
    if run.recon_state() != Some(ReconciliationState::Upgrading) {
        run.event(
            EventType::Normal,
            SUSPENDED,
            "Suspending existing job.".to_string(),
        )
        .await;
        run.status
            .reconciliation_status
            .get_or_insert_with(Default::default)
            .state = Some(ReconciliationState::Upgrading);
    }
    match mode {
        UpgradeMode::Stateless => {
            match run.ctx.flink.cancel_job(at, &job_id).await {
                Ok(()) | Err(FlinkError::NotFound(_)) | Err(FlinkError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(Suspended::Done(None))
        }
        UpgradeMode::Savepoint => {
            let info = run
                .status
                .job_status
                .get_or_insert_with(Default::default)
                .savepoint_info
                .get_or_insert_with(Default::default);
            // A periodic or manual savepoint in flight is not the stop: let it finish (and be
            // recorded) first, or its completion would be taken for the job's stop.
            if info.trigger_id.is_some() && info.trigger_type != Some(SnapshotTriggerType::Upgrade)
            {
                let nonce = run
                    .last_reconciled()
                    .and_then(|l| l.spec.job)
                    .and_then(|j| j.savepoint_trigger_nonce);
                Box::pin(super::savepoint::poll_savepoint(run, at, conf, nonce)).await?;
                run.write_status().await?;
                return Ok(Suspended::Pending);
            }
            let Some(trigger) = info.trigger_id.clone() else {
                if let Some(path) = upgrade_savepoint_since_deploy(run) {
                    // Stopped with a savepoint already; a crash came before the next step.
                    return Ok(Suspended::Done(Some(path)));
                }
                let stopped = run
                    .job_state()
                    .map(|s| s.is_globally_terminal())
                    .unwrap_or(false);
                // A stop whose answer was lost: wait for the job to stop rather than stop it
                // twice (see state::mark_stop_sent).
                if let Some(sent) = super::state::stop_sent_at(run.status.job_status.as_ref()) {
                    let waited = Duration::from_millis((run.now() - sent).max(0) as u64);
                    if !stopped && waited < super::state::stop_timeout(conf) {
                        return Ok(Suspended::Pending);
                    }
                    let js = run.status.job_status.get_or_insert_with(Default::default);
                    super::state::clear_stop_mark(js);
                }
                if stopped {
                    // Its newest checkpoint or savepoint is the state to go on from; it must be
                    // read, not guessed.
                    let flink = run.ctx.flink;
                    let js = run.status.job_status.get_or_insert_with(Default::default);
                    if !super::state::remember_latest_checkpoint(flink, at, &job_id, js).await {
                        return Ok(Suspended::Pending);
                    }
                    run.write_status().await?;
                    return Ok(Suspended::Done(newest_known_state(run)));
                }
                let sent = run
                    .ctx
                    .flink
                    .stop_with_savepoint(
                        at,
                        &job_id,
                        conf.savepoints_dir().map(str::to_string),
                        false,
                    )
                    .await;
                let now = run.now();
                let trigger = match sent {
                    Ok(trigger) => trigger,
                    Err(e) if e.is_unavailable() => {
                        let js = run.status.job_status.get_or_insert_with(Default::default);
                        super::state::mark_stop_sent(js, now);
                        run.write_status().await?;
                        return Err(e.into());
                    }
                    Err(e) => return Err(e.into()),
                };
                let info = run
                    .status
                    .job_status
                    .get_or_insert_with(Default::default)
                    .savepoint_info
                    .get_or_insert_with(Default::default);
                info.trigger_id = Some(trigger);
                info.trigger_type = Some(SnapshotTriggerType::Upgrade);
                info.trigger_timestamp = Some(now);
                run.write_status().await?;
                return Ok(Suspended::Pending);
            };
            let outcome = match run.ctx.flink.savepoint_status(at, &job_id, &trigger).await {
                Ok(op) => op.outcome(),
                Err(e) if e.is_unavailable() => return Ok(Suspended::Pending),
                Err(FlinkError::NotFound(_)) => SnapshotOutcome::Failed {
                    cause: "the savepoint trigger is unknown to the JobManager".into(),
                },
                Err(e) => return Err(e.into()),
            };
            let now = run.now();
            let js = run.status.job_status.get_or_insert_with(Default::default);
            let info = js.savepoint_info.get_or_insert_with(Default::default);
            match outcome {
                SnapshotOutcome::InProgress => Ok(Suspended::Pending),
                SnapshotOutcome::Completed { location } => {
                    super::state::clear_trigger(info);
                    super::state::record_upgrade_state(js, location.clone(), now);
                    // The location is in the API before the job is started again.
                    run.write_status().await?;
                    Ok(Suspended::Done(location))
                }
                SnapshotOutcome::Failed { cause } => {
                    super::state::clear_trigger(info);
                    run.status
                        .reconciliation_status
                        .get_or_insert_with(Default::default)
                        .state = Some(ReconciliationState::Deployed);
                    run.event(
                        EventType::Warning,
                        SAVEPOINT_ERROR,
                        format!("Savepoint failed: {cause}"),
                    )
                    .await;
                    run.write_status().await?;
                    Err(ReconcileError::UpgradeFailed(format!(
                        "Savepoint for the upgrade failed: {cause}"
                    )))
                }
            }
        }
        UpgradeMode::LastState => {
            // Session jobs have no HA metadata of their own: the newest checkpoint is the last
            // state, and the job is cancelled after it is known.
            let stats = run.ctx.flink.checkpoints(at, &job_id).await?;
            let Some(latest) = stats.latest.completed else {
                return Err(ReconcileError::UpgradeFailed("No completed checkpoint to upgrade from in last-state mode. Manual restore required.".into()));
            };
            run.status
                .job_status
                .get_or_insert_with(Default::default)
                .upgrade_savepoint_path = Some(latest.external_path.clone());
            run.write_status().await?;
            match run.ctx.flink.cancel_job(at, &job_id).await {
                Ok(()) | Err(FlinkError::NotFound(_)) | Err(FlinkError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(Suspended::Done(Some(latest.external_path)))
        }
    }
}

/// Whether the session cluster is being deleted but waits for its session jobs first
/// (`block-on-session-jobs`): its cluster stays up until this job is gone, though no one
/// observes it any more, so its JobManager status is the last one seen before the deletion.
/// One last seen as up or coming up is taken as still able to run the job.
fn held_for_session_jobs(run: &JobRun<'_>, session: &FlinkDeployment) -> bool {
    let blocks =
        super::deployment_config(run.ctx.operator_config, &session.spec).block_on_session_jobs();
    let last_seen_up = matches!(
        session
            .status
            .as_ref()
            .and_then(|s| s.job_manager_deployment_status),
        Some(
            JobManagerDeploymentStatus::Ready
                | JobManagerDeploymentStatus::Deploying
                | JobManagerDeploymentStatus::DeployedNotReady
        )
    );
    session.metadata.deletion_timestamp.is_some() && blocks && last_seen_up
}

/// Deleting a session job cancels its job, with a savepoint when its mode asks for one.
async fn cleanup(
    run: &mut JobRun<'_>,
    session: Option<&FlinkDeployment>,
) -> Result<Option<Requeue>, ReconcileError> {
    if !run
        .job
        .metadata
        .finalizers
        .as_ref()
        .map(|f| f.iter().any(|x| x == SESSION_JOB_FINALIZER))
        .unwrap_or(false)
    {
        return Ok(None);
    }
    if run.status.lifecycle_state != Some(ResourceLifecycleState::Deleting) {
        run.status.lifecycle_state = Some(ResourceLifecycleState::Deleting);
        run.event(
            EventType::Normal,
            CLEANUP,
            "Cleaning up FlinkSessionJob".to_string(),
        )
        .await;
        run.write_status().await?;
    }
    let spec = run.job.spec.clone();
    // A session cluster that is up but not answering (REST down, JobManager restarting) may
    // still run the job: wait for it rather than leave the job running behind (upstream
    // removes the resource at once). A cluster that is gone or failing, or being deleted
    // without waiting for its session jobs, runs nothing of it.
    let may_run = live_job(run)
        && run.job_id().is_some()
        && run
            .last_reconciled()
            .and_then(|l| l.spec.job.map(|j| j.desired_state()))
            == Some(JobState::Running);
    let held = session.filter(|s| held_for_session_jobs(run, s));
    let coming_back = session
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .and_then(|s| s.status.as_ref())
        .and_then(|s| s.job_manager_deployment_status)
        .map(|jm| {
            matches!(
                jm,
                JobManagerDeploymentStatus::Deploying
                    | JobManagerDeploymentStatus::DeployedNotReady
            )
        })
        .unwrap_or(false);
    if may_run && coming_back {
        let conf = run.config(session, &spec);
        return Ok(Some(Requeue(conf.progress_check_interval())));
    }
    // A held session is asked directly: a cluster that does not answer fails this pass, which
    // is retried, rather than leave the job (and its savepoint on deletion) behind.
    let reachable = session.filter(|s| ready(s) || (may_run && held.is_some()));
    if let (Some(session), Some(_)) = (reachable, run.job_id()) {
        let conf = run.config(Some(session), &spec);
        let at = endpoint(session, &conf);
        observe(run, &at).await?;
        let running = live_job(run)
            && run
                .last_reconciled()
                .and_then(|l| l.spec.job.map(|j| j.desired_state()))
                != Some(JobState::Suspended);
        if running {
            let mode = spec
                .job
                .as_ref()
                .map(|j| j.upgrade_mode())
                .unwrap_or(UpgradeMode::Stateless);
            let mode = if mode == UpgradeMode::Savepoint {
                UpgradeMode::Savepoint
            } else {
                UpgradeMode::Stateless
            };
            match suspend(run, &at, &conf, mode).await {
                Ok(Suspended::Pending) => {
                    return Ok(Some(Requeue(
                        Duration::from_secs(2).min(conf.progress_check_interval()),
                    )))
                }
                Ok(Suspended::Done(_)) => {}
                // The stop was refused: the cluster does not know the job; nothing to stop.
                Err(ReconcileError::Flink(FlinkError::NotFound(_))) => stop_found_no_job(run).await,
                Err(e) => return Err(e),
            }
            run.set_job_state(FlinkJobState::Canceled);
        }
    }
    run.status.lifecycle_state = Some(ResourceLifecycleState::Deleted);
    run.write_status().await?;
    let finalizers: Vec<String> = run
        .job
        .metadata
        .finalizers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f != SESSION_JOB_FINALIZER)
        .collect();
    run.ctx
        .kube
        .set_session_job_finalizers(&run.job, finalizers)
        .await?;
    Ok(None)
}
