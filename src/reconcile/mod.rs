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
pub mod session_job;
pub mod state;
pub mod upgrade;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::EffectiveConfig;
use crate::crd::{
    FlinkDeployment, FlinkDeploymentSpec, FlinkDeploymentStatus, SpecText, StoredSpec,
};
use crate::ports::{
    ArtifactError, ArtifactFetcher, Clock, EventRecord, EventType, FlinkApi, FlinkError, KubeApi,
    KubeError,
};

/// A stored spec parsed once and handed out to every reader in a reconcile.
pub type SharedSpec = Arc<StoredSpec<FlinkDeploymentSpec>>;

/// A resource's own configuration, flat and shared ([`crate::crd::FlinkConfiguration::flat`]).
type FlatConfig = Arc<crate::config::FlatConfig>;

/// What reconciliation works with: the ports and the operator's own configuration.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub kube: &'a dyn KubeApi,
    pub flink: &'a dyn FlinkApi,
    /// Fetches session jobs' jars.
    pub artifacts: &'a dyn ArtifactFetcher,
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
    /// A session job's jar could not be fetched; reported, retried with backoff.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// A stateful upgrade cannot go on without losing state; reported, retried with backoff.
    #[error("{0}")]
    UpgradeFailed(String),
}

/// One reconcile of one FlinkDeployment: the resource as last read or written, and the status
/// being worked on. Status writes go out only when something changed.
pub struct Run<'a> {
    pub ctx: &'a Context<'a>,
    /// As read: shared with the port's cache (only `status` below is changed by a reconcile).
    pub fd: Arc<FlinkDeployment>,
    pub status: WorkingStatus,
    pub namespace: String,
    pub name: String,
    /// The effective configurations built in this reconcile, by the address of the spec's own
    /// flat configuration, or for a spec without one (all they depend on besides the
    /// operator's; the entry keeps it alive, so the address is not reused): a reconcile asks
    /// for them a dozen times.
    configs: std::sync::Mutex<Vec<(Option<FlatConfig>, Arc<KeptConfig>)>>,
}

/// An effective configuration built in a reconcile, and what is derived from it.
struct KeptConfig {
    conf: Arc<EffectiveConfig>,
    /// The JobManager's REST endpoint, made on first use: a reconcile calls the REST API a
    /// few times, each call needing the endpoint (two lookups in the configuration and a URL).
    endpoint: std::sync::OnceLock<Arc<crate::ports::FlinkEndpoint>>,
}

/// A condition's time from epoch milliseconds: whole seconds (RFC 3339 without a fraction is
/// how Kubernetes serialises `metav1.Time`, so a finer time does not survive a write).
pub fn condition_time(epoch_ms: i64) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(epoch_ms.div_euclid(1000))
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

/// Whether `text` is what `args` would format to, without formatting it into a new string.
pub fn same_text(text: &str, args: std::fmt::Arguments) -> bool {
    /// Consumes `rest` as the formatted pieces come; fails at the first difference.
    struct Match<'t> {
        rest: &'t str,
    }
    impl std::fmt::Write for Match<'_> {
        fn write_str(&mut self, piece: &str) -> std::fmt::Result {
            match self.rest.strip_prefix(piece) {
                Some(rest) => {
                    self.rest = rest;
                    Ok(())
                }
                None => Err(std::fmt::Error),
            }
        }
    }
    let mut m = Match { rest: text };
    std::fmt::write(&mut m, args).is_ok() && m.rest.is_empty()
}

/// A FlinkDeployment's configuration: the operator's, overridden by its own.
pub fn deployment_config(
    operator_config: &std::collections::BTreeMap<String, String>,
    spec: &FlinkDeploymentSpec,
) -> EffectiveConfig {
    let own = crate::crd::FlinkConfiguration::flat_of(spec.flink_configuration.as_ref());
    EffectiveConfig::with_shared(operator_config, own)
}

/// The status a reconcile works on: the one read until something changes it, then a copy.
/// Most reconciles of a steady deployment change nothing, and copying the status at the start
/// touched and allocated every field of a status that was cold by then.
pub struct WorkingStatus {
    read: Arc<FlinkDeployment>,
    changed: Option<FlinkDeploymentStatus>,
}

impl WorkingStatus {
    fn new(read: Arc<FlinkDeployment>) -> Self {
        let changed = read.status.is_none().then(FlinkDeploymentStatus::default);
        WorkingStatus { read, changed }
    }

    /// Whether this is still the status as read from `fd`.
    pub fn is_as_read(&self, fd: &Arc<FlinkDeployment>) -> bool {
        self.changed.is_none() && Arc::ptr_eq(&self.read, fd)
    }
}

impl std::ops::Deref for WorkingStatus {
    type Target = FlinkDeploymentStatus;
    fn deref(&self) -> &FlinkDeploymentStatus {
        match (&self.changed, &self.read.status) {
            (Some(changed), _) => changed,
            (None, Some(read)) => read,
            // `new` makes a default status when none was read.
            (None, None) => unreachable!("a status read as none is copied at once"),
        }
    }
}

impl std::ops::DerefMut for WorkingStatus {
    fn deref_mut(&mut self) -> &mut FlinkDeploymentStatus {
        let read = &self.read;
        self.changed
            .get_or_insert_with(|| read.status.clone().unwrap_or_default())
    }
}

impl<'a> Run<'a> {
    /// `fd` as read by `namespace` and `name`: those are copied from the caller's key, whose
    /// strings are in cache, not from the resource's metadata, which seldom is.
    pub fn new(
        ctx: &'a Context<'a>,
        fd: Arc<FlinkDeployment>,
        namespace: &str,
        name: &str,
    ) -> Self {
        let status = WorkingStatus::new(fd.clone());
        Run {
            ctx,
            fd,
            status,
            namespace: namespace.to_string(),
            name: name.to_string(),
            configs: Default::default(),
        }
    }

    /// [`StoredSpec::parse`], kept with the text (a reconcile reads the reconciled and
    /// stable specs a dozen times; see [`SpecText::parsed`] for how long the parse is kept).
    fn stored_spec(&self, text: &SpecText) -> Option<SharedSpec> {
        let parse = |t: &str| StoredSpec::parse(t).ok().map(Arc::new);
        (*text.parsed(parse)).clone()
    }

    pub fn now(&self) -> i64 {
        self.ctx.clock.now_millis()
    }

    /// Clears the error, copying the status (see `WorkingStatus`) only when there is one.
    pub fn clear_error(&mut self) {
        if self.status.error.is_some() {
            self.status.error = None;
        }
    }

    /// Writes the status if it differs from what the API holds, with the lifecycle state
    /// derived from it. Optimistic: a stale resourceVersion fails with a conflict.
    pub async fn write_status(&mut self) -> Result<(), ReconcileError> {
        // Derived afresh (of the stored state only DELETING and DELETED count); set only when
        // it differs: a change copies the status, see `WorkingStatus`.
        let lifecycle = crate::lifecycle::deployment_lifecycle_given(&self.status, |text| {
            let spec = self.stored_spec(text)?;
            spec.spec.job.as_ref().map(|j| j.desired_state())
        });
        if self.status.lifecycle_state != Some(lifecycle) {
            self.status.lifecycle_state = Some(lifecycle);
        }
        self.derive_status_views();
        if self.status.is_as_read(&self.fd) || self.fd.status.as_ref() == Some(&*self.status) {
            return Ok(());
        }
        let mut desired = (*self.fd).clone();
        desired.status = Some((*self.status).clone());
        self.fd = self
            .ctx
            .kube
            .update_flink_deployment_status(desired)
            .await?;
        Ok(())
    }

    /// Fields derived from the rest of the status: the `Running` condition and the
    /// TaskManager view the scale subresource reads. Every reconcile derives them and nearly
    /// always finds them as they were: they are compared as they would be written, and built
    /// only when they differ.
    fn derive_status_views(&mut self) {
        use crate::crd::{FlinkJobState, JobManagerDeploymentStatus, JobState, TaskManagerInfo};
        let Some(reconciled) = self.last_reconciled() else {
            return;
        };
        let spec = &reconciled.spec;
        let suspended = spec.job.as_ref().map(|j| j.desired_state()) == Some(JobState::Suspended);
        let replicas = if suspended {
            0
        } else {
            crate::cluster::taskmanager_replicas(spec, &self.config_of(spec))
        };
        let app = &self.name;
        let selector = |s: &str| {
            if suspended {
                s.is_empty()
            } else {
                same_text(s, format_args!("component=taskmanager,app={app}"))
            }
        };
        let task_manager_as_derived = self.status.task_manager.as_ref().is_some_and(|t| {
            t.replicas == Some(replicas) && t.label_selector.as_deref().is_some_and(selector)
        });
        if !task_manager_as_derived {
            self.status.task_manager = Some(TaskManagerInfo {
                label_selector: Some(if suspended {
                    String::new()
                } else {
                    format!("component=taskmanager,app={app}")
                }),
                replicas: Some(replicas),
            });
        }
        // The condition's reason (a job state in camel case, or a JobManager's reason) and
        // message (a prefix and a state).
        let (running, reason, camel, message) = match (
            &spec.job,
            self.status.job_status.as_ref().and_then(|j| j.state),
        ) {
            (Some(_), state) => {
                let state = state.unwrap_or(FlinkJobState::Reconciling);
                let name = state.as_str();
                (
                    state == FlinkJobState::Running,
                    name,
                    true,
                    ("Job status ", name),
                )
            }
            (None, _) => {
                let jm = self
                    .status
                    .job_manager_deployment_status
                    .unwrap_or(JobManagerDeploymentStatus::Missing);
                let reason = match jm {
                    JobManagerDeploymentStatus::Ready => "JobManagerReady",
                    JobManagerDeploymentStatus::DeployedNotReady => "DeployedNotReady",
                    JobManagerDeploymentStatus::Deploying => "JobManagerIsDeploying",
                    JobManagerDeploymentStatus::Missing => "JobManagerDeploymentMissing",
                    JobManagerDeploymentStatus::Error => "Error",
                };
                (
                    jm == JobManagerDeploymentStatus::Ready,
                    reason,
                    false,
                    ("JobManager deployment ", jm.as_str()),
                )
            }
        };
        let as_reason = |text: &str| -> bool {
            if !camel {
                return text == reason;
            }
            // "RUNNING" is written "Running".
            text.len() == reason.len()
                && text
                    .chars()
                    .zip(reason.chars())
                    .enumerate()
                    .all(|(i, (t, r))| t == if i == 0 { r } else { r.to_ascii_lowercase() })
        };
        let status_text = if running { "True" } else { "False" };
        let conditions = self.status.conditions.as_deref().unwrap_or_default();
        let previous = conditions.iter().find(|c| c.type_ == "Running");
        if let ([_], Some(p)) = (conditions, previous) {
            if p.status == status_text
                && p.observed_generation.is_none()
                && as_reason(&p.reason)
                && p.message.strip_prefix(message.0) == Some(message.1)
            {
                return; // as derived, transition time included (the status did not flip)
            }
        }
        // The transition time moves only when the condition flips. Whole seconds, as the API
        // server stores it: with milliseconds, the status read back differed from the one
        // written, and the next reconcile wrote the same status again.
        let transition = match previous {
            Some(p) if p.status == status_text => p.last_transition_time.clone(),
            _ => condition_time(self.now()),
        };
        let reason = if camel {
            reason[..1].to_string() + &reason[1..].to_ascii_lowercase()
        } else {
            reason.to_string()
        };
        let message = format!("{}{}", message.0, message.1);
        self.status.conditions = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                type_: "Running".to_string(),
                status: status_text.to_string(),
                reason,
                message,
                last_transition_time: transition,
                observed_generation: None,
            },
        ]);
    }

    /// The effective configuration of a spec: operator defaults, then the spec's own.
    pub fn config_of(&self, spec: &FlinkDeploymentSpec) -> Arc<EffectiveConfig> {
        self.kept_config(spec).conf.clone()
    }

    /// The REST endpoint of this resource's JobManager under the configuration of `spec`.
    pub fn endpoint_of(&self, spec: &FlinkDeploymentSpec) -> Arc<crate::ports::FlinkEndpoint> {
        let kept = self.kept_config(spec);
        kept.endpoint
            .get_or_init(|| {
                let conf = &kept.conf;
                Arc::new(
                    crate::ports::FlinkEndpoint::for_cluster(
                        &self.namespace,
                        &self.name,
                        conf.rest_port(),
                    )
                    .with_https(crate::ports::rest_ssl_enabled(
                        conf.get(crate::ports::REST_SSL_ENABLED),
                    )),
                )
            })
            .clone()
    }

    fn kept_config(&self, spec: &FlinkDeploymentSpec) -> Arc<KeptConfig> {
        let own = spec.flink_configuration.as_ref().map(|c| c.flat());
        // By the flat view's address: the specs of one resource share it while unchanged,
        // and comparing the configurations themselves read every key of both.
        let same = |kept: &Option<FlatConfig>| match (kept, &own) {
            (Some(kept), Some(own)) => Arc::ptr_eq(kept, own),
            (kept, own) => kept.is_none() && own.is_none(),
        };
        let mut configs = self.configs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, kept)) = configs.iter().find(|(c, _)| same(c)) {
            return kept.clone();
        }
        let kept = Arc::new(KeptConfig {
            conf: Arc::new(EffectiveConfig::with_shared(
                self.ctx.operator_config,
                own.clone().unwrap_or_default(),
            )),
            endpoint: Default::default(),
        });
        remember(&mut configs, own, kept.clone());
        kept
    }

    pub fn last_reconciled(&self) -> Option<SharedSpec> {
        self.status
            .reconciliation_status
            .as_ref()
            .and_then(|r| r.last_reconciled_spec.as_ref())
            .and_then(|s| self.stored_spec(s))
    }

    /// An upgrade failed and is being retried (the error stays until it goes through).
    pub fn upgrade_failed(&self) -> bool {
        self.status
            .error
            .as_deref()
            .map(|e| e.contains("UpgradeFailureException"))
            .unwrap_or(false)
    }

    pub fn last_stable(&self) -> Option<SharedSpec> {
        self.status
            .reconciliation_status
            .as_ref()
            .and_then(|r| r.last_stable_spec.as_ref())
            .and_then(|s| self.stored_spec(s))
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

/// Keeps the last few results of a reconcile's repeated work (a handful of distinct keys
/// come up in one reconcile; the oldest goes first).
fn remember<K, V>(memo: &mut Vec<(K, V)>, key: K, value: V) {
    if memo.len() >= 4 {
        memo.remove(0);
    }
    memo.push((key, value));
}

/// Clears `error` if it is of the given kind (`ValidationException`, ...).
pub fn clear_error_of(error: &mut Option<String>, kind: &str) {
    if is_error_of(error.as_deref(), kind) {
        *error = None;
    }
}

/// Whether `error` is of `kind` (what [`clear_error_of`] clears).
pub fn is_error_of(error: Option<&str>, kind: &str) -> bool {
    error.is_some_and(|e| e.contains(kind))
}

/// For a change that needs no restart: the reconciled job's fields the new spec must not
/// rewrite. Nonces are consumed when acted on, the job state is what runs, and a suspended
/// job's recorded mode says how it comes back (from HA, a savepoint or fresh).
pub fn keep_reconciled_job_fields(
    merged: &mut crate::crd::JobSpec,
    reconciled: &crate::crd::JobSpec,
) {
    merged.savepoint_trigger_nonce = reconciled.savepoint_trigger_nonce;
    merged.checkpoint_trigger_nonce = reconciled.checkpoint_trigger_nonce;
    merged.state = reconciled.state;
    if reconciled.desired_state() == crate::crd::JobState::Suspended {
        merged.upgrade_mode = reconciled.upgrade_mode;
    }
}

/// Whether `merged` already holds what [`keep_reconciled_job_fields`] would set (then merging
/// changes nothing, and need not copy the spec to find out).
pub fn has_reconciled_job_fields(
    merged: &crate::crd::JobSpec,
    reconciled: &crate::crd::JobSpec,
) -> bool {
    merged.savepoint_trigger_nonce == reconciled.savepoint_trigger_nonce
        && merged.checkpoint_trigger_nonce == reconciled.checkpoint_trigger_nonce
        && merged.state == reconciled.state
        && (reconciled.desired_state() != crate::crd::JobState::Suspended
            || merged.upgrade_mode == reconciled.upgrade_mode)
}

/// The validation problems as one message.
pub fn problems_message(problems: &[crate::validation::Problem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Records validation problems in `error` (or clears a validation error when there are
/// none). Returns the message to publish as an event when the problems are news.
pub fn record_problems(
    error: &mut Option<String>,
    problems: &[crate::validation::Problem],
) -> Option<String> {
    if problems.is_empty() {
        clear_error_of(error, "ValidationException");
        return None;
    }
    let message = problems_message(problems);
    // Already said, alone or with what else stands in the way (see `with_problems`).
    let said = error
        .as_deref()
        .and_then(validation_message)
        .map(|m| m == message || m.starts_with(&format!("{message}; ")))
        .unwrap_or(false);
    if said {
        return None;
    }
    *error = Some(error_json("ValidationException", &message));
    Some(message)
}

/// The message of a recorded validation error, if `error` is one.
fn validation_message(error: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(error).ok()?;
    if !value["type"].as_str()?.ends_with(".ValidationException") {
        return None;
    }
    value["message"].as_str().map(str::to_string)
}

/// The error to record for `failure` (of type `kind`) when `error` holds this reconcile's
/// validation problems: both, so an invalid spec stays said while the last valid one
/// cannot be carried out (the failure's type is named in the message: the reconcile and
/// the lifecycle look for it). Otherwise the failure alone.
pub fn with_problems(error: Option<&str>, kind: &str, failure: &str) -> String {
    match error.and_then(validation_message) {
        Some(problems) => {
            let problems = problems.split("; and ").next().unwrap_or_default();
            error_json(
                "ValidationException",
                &format!("{problems}; and {kind}: {failure}"),
            )
        }
        None => error_json(kind, failure),
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
