//! The lifecycle state shown in `status.lifecycleState`, derived exactly as upstream does
//! (CommonStatus#getLifecycleState): first matching rule wins.

use crate::crd::{
    FlinkDeploymentSpec, FlinkDeploymentStatus, FlinkJobState, FlinkSessionJobSpec,
    FlinkSessionJobStatus, JobManagerDeploymentStatus, JobState, ReconciliationState,
    ReconciliationStatus, ResourceLifecycleState as L, SpecText, StoredSpec,
};

/// Error texts that mean a stateful job cannot be recovered without a human.
const MANUAL_RESTORE_MARKERS: [&str; 3] = [
    "Manual restore required.",
    "It is possible that the job has finished or terminally failed, or the configmaps have been deleted.",
    "HA metadata is not available",
];

/// The inputs common to both kinds.
struct Facts<'a> {
    stored: Option<L>,
    reconciliation: Option<&'a ReconciliationStatus>,
    error: Option<&'a str>,
    job_state: Option<FlinkJobState>,
    reconciled_job_suspended: bool,
    jm_lost_with_manual_restore: bool,
}

fn derive(f: Facts) -> L {
    if matches!(f.stored, Some(L::Deleting) | Some(L::Deleted)) {
        return f.stored.unwrap();
    }
    let recon = f.reconciliation;
    if recon
        .and_then(|r| r.last_reconciled_spec.as_ref())
        .is_none()
    {
        return if f.error.map(str::is_empty).unwrap_or(true) {
            L::Created
        } else {
            L::Failed
        };
    }
    let recon = recon.unwrap();
    match recon.state {
        Some(ReconciliationState::Upgrading) | None => return L::Upgrading,
        Some(ReconciliationState::RollingBack) => return L::RollingBack,
        _ => {}
    }
    if f.reconciled_job_suspended {
        return L::Suspended;
    }
    if f.job_state == Some(FlinkJobState::Failed) {
        return L::Failed;
    }
    if f.jm_lost_with_manual_restore {
        return L::Failed;
    }
    if recon.state == Some(ReconciliationState::RolledBack) {
        return L::RolledBack;
    }
    if recon.last_reconciled_spec.is_some() && recon.last_reconciled_spec == recon.last_stable_spec
    {
        return L::Stable;
    }
    L::Deployed
}

fn job_suspended_in<T: ?Sized>(
    reconciled: Option<&T>,
    job_of: impl Fn(&T) -> Option<JobState>,
) -> bool {
    reconciled
        .and_then(job_of)
        .map(|s| s == JobState::Suspended)
        .unwrap_or(false)
}

pub fn deployment_lifecycle(status: &FlinkDeploymentStatus) -> L {
    deployment_lifecycle_given(status, |s| {
        StoredSpec::<FlinkDeploymentSpec>::parse(s)
            .ok()
            .and_then(|s| s.spec.job.map(|j| j.desired_state()))
    })
}

/// [`deployment_lifecycle`] with the job state of a stored spec text read by the caller (a
/// reconcile has the reconciled spec parsed already).
pub fn deployment_lifecycle_given(
    status: &FlinkDeploymentStatus,
    job_state_in: impl Fn(&SpecText) -> Option<JobState>,
) -> L {
    let reconciled = status
        .reconciliation_status
        .as_ref()
        .and_then(|r| r.last_reconciled_spec.as_ref());
    let jm_lost = matches!(
        status.job_manager_deployment_status,
        Some(JobManagerDeploymentStatus::Missing) | Some(JobManagerDeploymentStatus::Error)
    ) && status
        .error
        .as_deref()
        .map(|e| MANUAL_RESTORE_MARKERS.iter().any(|m| e.contains(m)))
        .unwrap_or(false);
    derive(Facts {
        stored: status.lifecycle_state,
        reconciliation: status.reconciliation_status.as_ref(),
        error: status.error.as_deref(),
        job_state: status.job_status.as_ref().and_then(|j| j.state),
        reconciled_job_suspended: job_suspended_in(reconciled, job_state_in),
        jm_lost_with_manual_restore: jm_lost,
    })
}

pub fn session_job_lifecycle(status: &FlinkSessionJobStatus) -> L {
    let reconciled = status
        .reconciliation_status
        .as_ref()
        .and_then(|r| r.last_reconciled_spec.as_deref());
    derive(Facts {
        stored: status.lifecycle_state,
        reconciliation: status.reconciliation_status.as_ref(),
        error: status.error.as_deref(),
        job_state: status.job_status.as_ref().and_then(|j| j.state),
        reconciled_job_suspended: job_suspended_in(reconciled, |s| {
            StoredSpec::<FlinkSessionJobSpec>::parse(s)
                .ok()
                .and_then(|s| s.spec.job.map(|j| j.desired_state()))
        }),
        // Extension of upstream (which says STABLE): a stateful job its session cluster lost
        // waits for the user; STABLE would claim it runs.
        jm_lost_with_manual_restore: status
            .error
            .as_deref()
            .map(|e| e.contains("Job Not Found"))
            .unwrap_or(false)
            && status.job_status.as_ref().and_then(|j| j.state) != Some(FlinkJobState::Running),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{JobSpec, JobStatus};

    fn stored(state: JobState) -> String {
        StoredSpec::new(
            FlinkDeploymentSpec {
                job: Some(JobSpec {
                    state: Some(state),
                    ..Default::default()
                }),
                ..Default::default()
            },
            false,
        )
        .to_json()
    }

    fn status(
        recon: Option<ReconciliationState>,
        reconciled: Option<String>,
        stable: Option<String>,
    ) -> FlinkDeploymentStatus {
        FlinkDeploymentStatus {
            reconciliation_status: Some(ReconciliationStatus {
                last_reconciled_spec: reconciled.map(Into::into),
                last_stable_spec: stable.map(Into::into),
                state: recon,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn before_first_deploy_created_or_failed() {
        assert_eq!(
            deployment_lifecycle(&FlinkDeploymentStatus::default()),
            L::Created
        );
        let s = FlinkDeploymentStatus {
            error: Some("bad".into()),
            ..Default::default()
        };
        assert_eq!(deployment_lifecycle(&s), L::Failed);
    }

    #[test]
    fn each_rule_in_order() {
        let running = stored(JobState::Running);
        let s = status(
            Some(ReconciliationState::Upgrading),
            Some(running.clone()),
            None,
        );
        assert_eq!(deployment_lifecycle(&s), L::Upgrading);
        let s = status(
            Some(ReconciliationState::RollingBack),
            Some(running.clone()),
            None,
        );
        assert_eq!(deployment_lifecycle(&s), L::RollingBack);
        let s = status(
            Some(ReconciliationState::Deployed),
            Some(stored(JobState::Suspended)),
            None,
        );
        assert_eq!(deployment_lifecycle(&s), L::Suspended);
        let mut s = status(
            Some(ReconciliationState::Deployed),
            Some(running.clone()),
            None,
        );
        s.job_status = Some(JobStatus {
            state: Some(FlinkJobState::Failed),
            ..Default::default()
        });
        assert_eq!(deployment_lifecycle(&s), L::Failed);
        let mut s = status(
            Some(ReconciliationState::Deployed),
            Some(running.clone()),
            None,
        );
        s.job_manager_deployment_status = Some(JobManagerDeploymentStatus::Missing);
        s.error = Some("HA metadata is not available to restore from".into());
        assert_eq!(deployment_lifecycle(&s), L::Failed);
        let s = status(
            Some(ReconciliationState::RolledBack),
            Some(running.clone()),
            Some(running.clone()),
        );
        assert_eq!(deployment_lifecycle(&s), L::RolledBack);
        let s = status(
            Some(ReconciliationState::Deployed),
            Some(running.clone()),
            Some(running.clone()),
        );
        assert_eq!(deployment_lifecycle(&s), L::Stable);
        let s = status(Some(ReconciliationState::Deployed), Some(running), None);
        assert_eq!(deployment_lifecycle(&s), L::Deployed);
    }

    #[test]
    fn deleting_and_deleted_stick() {
        let mut s = status(
            Some(ReconciliationState::Upgrading),
            Some(stored(JobState::Running)),
            None,
        );
        s.lifecycle_state = Some(L::Deleting);
        assert_eq!(deployment_lifecycle(&s), L::Deleting);
    }
}
