//! Deleting a FlinkDeployment: the finalizer holds the resource until its cluster is gone.

use std::time::Duration;

use super::events::*;
use super::observe::job_state;
use super::upgrade::delete_cluster;
use super::{ReconcileError, Requeue, Run};
use crate::crd::{
    FlinkDeploymentSpec, FlinkJobState, ResourceLifecycleState, DEPLOYMENT_FINALIZER,
};
use crate::ports::{EventType, FlinkError};

/// Runs the cleanup; returns when to look again, or None once the finalizer is removed.
pub async fn cleanup(run: &mut Run<'_>) -> Result<Option<Requeue>, ReconcileError> {
    let has_finalizer = run
        .fd
        .metadata
        .finalizers
        .as_ref()
        .map(|f| f.iter().any(|x| x == DEPLOYMENT_FINALIZER))
        .unwrap_or(false);
    if !has_finalizer {
        return Ok(None);
    }
    let deployed: Option<FlinkDeploymentSpec> = run.last_reconciled().map(|s| s.spec.clone());
    let conf = run.config_of(deployed.as_ref().unwrap_or(&run.fd.spec));
    if run.status.lifecycle_state != Some(ResourceLifecycleState::Deleting) {
        run.status.lifecycle_state = Some(ResourceLifecycleState::Deleting);
        run.event(
            EventType::Normal,
            CLEANUP,
            COMPONENT_OPERATOR,
            "Cleaning up FlinkDeployment".to_string(),
        )
        .await;
        run.write_status().await?;
    }
    let is_session = deployed
        .as_ref()
        .map(|s| s.job.is_none())
        .unwrap_or(run.fd.spec.job.is_none());
    if is_session && conf.block_on_session_jobs() {
        let mut users: Vec<String> = run
            .ctx
            .kube
            .list_session_jobs(&run.namespace)
            .await?
            .into_iter()
            .filter(|j| j.spec.deployment_name.as_deref() == Some(run.name.as_str()))
            .filter_map(|j| j.metadata.name)
            .collect();
        users.sort();
        if !users.is_empty() {
            let message = format!("The session jobs {users:?} should be deleted first");
            run.event(
                EventType::Warning,
                CLEANUP_FAILED,
                COMPONENT_OPERATOR,
                message.clone(),
            )
            .await;
            run.status.error = Some(super::error_json("CleanupException", &message));
            run.write_status().await?;
            return Ok(Some(Requeue(conf.reconcile_interval())));
        }
    }
    // A running job is stopped with a savepoint first when asked to.
    if let Some(spec) = deployed.as_ref().filter(|s| s.job.is_some()) {
        // Not again if it was taken already and a crash came before the teardown.
        let taken = super::savepoint::upgrade_savepoint_since_deploy(run).is_some();
        if conf.savepoint_on_deletion() && job_state(run) == Some(FlinkJobState::Running) && !taken
        {
            let pending = super::savepoint::upgrade_savepoint_pending(run);
            if !jobmanager_exists(run).await? {
                // An earlier pass deleted the cluster and its status write was lost (a
                // conflict, a crash): nothing runs to take a savepoint of, and no one is left
                // to say how a pending one ended.
                if pending {
                    super::state::clear_trigger_of(run.status.job_status.as_mut());
                    run.event(
                        EventType::Warning,
                        SAVEPOINT_ERROR,
                        COMPONENT_OPERATOR,
                        "Savepoint on deletion: the JobManager is gone, its outcome is unknown"
                            .to_string(),
                    )
                    .await;
                }
            } else if !pending {
                match super::savepoint::trigger_upgrade_savepoint(run, spec).await {
                    Ok(()) => return Ok(Some(Requeue(conf.progress_check_interval()))),
                    // The job already ended: there is nothing running to take a savepoint of.
                    Err(ReconcileError::Flink(FlinkError::Conflict(_)))
                    | Err(ReconcileError::Flink(FlinkError::NotFound(_))) => {}
                    Err(e) => return Err(e),
                }
            } else if super::savepoint::poll_upgrade_savepoint(run, spec)
                .await?
                .is_none()
            {
                return Ok(Some(Requeue(conf.progress_check_interval())));
            }
            run.write_status().await?;
        }
    }
    delete_cluster(run, true).await?;
    if jobmanager_exists(run).await? {
        return Ok(Some(Requeue(
            Duration::from_secs(2).min(conf.progress_check_interval()),
        )));
    }
    run.status.lifecycle_state = Some(ResourceLifecycleState::Deleted);
    run.write_status().await?;
    let finalizers: Vec<String> = run
        .fd
        .metadata
        .finalizers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f != DEPLOYMENT_FINALIZER)
        .collect();
    run.ctx
        .kube
        .set_flink_deployment_finalizers(&run.fd, finalizers)
        .await?;
    Ok(None)
}

async fn jobmanager_exists(run: &Run<'_>) -> Result<bool, ReconcileError> {
    Ok(run
        .ctx
        .kube
        .get_deployment(&run.namespace, &run.name)
        .await?
        .is_some())
}
