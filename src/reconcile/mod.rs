//! Reconciliation: observe what runs, validate the spec, act to bring the cluster to it.
//!
//! The status is the operator's only memory. Every step that must survive a crash is
//! written to the status *before* the action that depends on it (for example the savepoint
//! location before the JobManager is deleted), so a restarted operator can finish any step
//! from what the API holds.

pub mod cleanup;
pub mod deployment;
pub mod diff;
pub mod events;
pub mod observe;
pub mod savepoint;
pub mod upgrade;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::EffectiveConfig;
use crate::crd::{FlinkDeployment, FlinkDeploymentSpec, FlinkDeploymentStatus, StoredSpec};
use crate::ports::{Clock, EventRecord, EventType, FlinkApi, FlinkError, KubeApi, KubeError};

/// What reconciliation works with: the ports and the operator's own configuration.
pub struct Context<'a> {
    pub kube: &'a dyn KubeApi,
    pub flink: &'a dyn FlinkApi,
    pub clock: &'a dyn Clock,
    /// The operator's configuration (upstream keys), before per-resource overrides.
    pub operator_config: &'a BTreeMap<String, String>,
}

/// When to look at the resource again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requeue(pub Duration);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error(transparent)]
    Flink(#[from] FlinkError),
    /// A stateful upgrade cannot go on without losing state; reported, retried with backoff.
    #[error("{0}")]
    UpgradeFailed(String),
}

/// One reconcile of one FlinkDeployment: the resource as last read or written, and the status
/// being worked on. Status writes go out only when something changed.
pub struct Run<'a> {
    pub ctx: &'a Context<'a>,
    pub fd: FlinkDeployment,
    pub status: FlinkDeploymentStatus,
    pub namespace: String,
    pub name: String,
}

impl<'a> Run<'a> {
    pub fn new(ctx: &'a Context<'a>, fd: FlinkDeployment) -> Self {
        let status = fd.status.clone().unwrap_or_default();
        let namespace = fd.metadata.namespace.clone().unwrap_or_default();
        let name = fd.metadata.name.clone().unwrap_or_default();
        Run {
            ctx,
            fd,
            status,
            namespace,
            name,
        }
    }

    pub fn now(&self) -> i64 {
        self.ctx.clock.now_millis()
    }

    /// Writes the status if it differs from what the API holds, with the lifecycle state
    /// derived from it. Optimistic: a stale resourceVersion fails with a conflict.
    pub async fn write_status(&mut self) -> Result<(), ReconcileError> {
        self.status.lifecycle_state = Some(crate::lifecycle::deployment_lifecycle(&{
            let mut s = self.status.clone();
            // Derive afresh; only DELETING/DELETED are sticky.
            if !matches!(
                s.lifecycle_state,
                Some(crate::crd::ResourceLifecycleState::Deleting)
                    | Some(crate::crd::ResourceLifecycleState::Deleted)
            ) {
                s.lifecycle_state = None;
            }
            s
        }));
        if self.fd.status.as_ref() == Some(&self.status) {
            return Ok(());
        }
        let mut desired = self.fd.clone();
        desired.status = Some(self.status.clone());
        self.fd = self
            .ctx
            .kube
            .update_flink_deployment_status(&desired)
            .await?;
        Ok(())
    }

    /// The effective configuration of a spec: operator defaults, then the spec's own.
    pub fn config_of(&self, spec: &FlinkDeploymentSpec) -> EffectiveConfig {
        let own = spec
            .flink_configuration
            .as_ref()
            .map(|c| c.flatten())
            .unwrap_or_default();
        EffectiveConfig::new(self.ctx.operator_config, &own)
    }

    pub fn last_reconciled(&self) -> Option<StoredSpec<FlinkDeploymentSpec>> {
        self.status
            .reconciliation_status
            .as_ref()
            .and_then(|r| r.last_reconciled_spec.as_deref())
            .and_then(|s| StoredSpec::parse(s).ok())
    }

    pub fn last_stable(&self) -> Option<StoredSpec<FlinkDeploymentSpec>> {
        self.status
            .reconciliation_status
            .as_ref()
            .and_then(|r| r.last_stable_spec.as_deref())
            .and_then(|s| StoredSpec::parse(s).ok())
    }

    pub async fn event(
        &self,
        event_type: EventType,
        reason: &str,
        component: &str,
        message: String,
    ) {
        let record = EventRecord {
            kind: "FlinkDeployment".to_string(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.fd.metadata.uid.clone(),
            event_type,
            reason: reason.to_string(),
            message,
            component: component.to_string(),
        };
        // An event that cannot be written must not stop reconciliation.
        if let Err(e) = self.ctx.kube.publish_event(&record).await {
            tracing::warn!(error = %e, reason, "could not publish event");
        }
    }
}

/// The error JSON upstream writes to `status.error` (a serialized FlinkResourceException).
pub fn error_json(kind: &str, message: &str) -> String {
    serde_json::json!({
        "type": format!("org.apache.flink.kubernetes.operator.exception.{kind}"),
        "message": message,
        "throwableList": []
    })
    .to_string()
}

/// A deterministic Flink job id (32 hex digits) from the resource and the deployment attempt,
/// so that no randomness or wall clock is needed and a re-run of the same step gets the same id.
pub fn derive_job_id(seed: &str) -> String {
    // FNV-1a, 128 bits: stable across builds and platforms.
    let mut hash: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in seed.bytes() {
        hash ^= b as u128;
        hash = hash.wrapping_mul(0x0000000001000000000000000000013B);
    }
    format!("{hash:032x}")
}

#[cfg(test)]
mod tests;
