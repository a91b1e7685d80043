//! Operator configuration: upstream key names and defaults, in one place. Values come from
//! the operator's own configuration, overridden per resource by `spec.flinkConfiguration`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::duration::parse_duration;

mod flat;
pub use flat::FlatConfig;

pub const RECONCILE_INTERVAL: &str = "kubernetes.operator.reconcile.interval";
pub const PROGRESS_CHECK_INTERVAL: &str = "kubernetes.operator.observer.progress-check.interval";
pub const REST_READY_DELAY: &str = "kubernetes.operator.observer.rest-ready.delay";
pub const ROLLBACK_ENABLED: &str = "kubernetes.operator.deployment.rollback.enabled";
pub const READINESS_TIMEOUT: &str = "kubernetes.operator.deployment.readiness.timeout";
pub const JOB_RESTART_FAILED: &str = "kubernetes.operator.job.restart.failed";
pub const JM_DEPLOYMENT_RECOVERY: &str = "kubernetes.operator.jm-deployment-recovery.enabled";
pub const PERIODIC_SAVEPOINT_INTERVAL: &str = "kubernetes.operator.periodic.savepoint.interval";
pub const PERIODIC_CHECKPOINT_INTERVAL: &str = "kubernetes.operator.periodic.checkpoint.interval";
pub const SAVEPOINT_FORMAT_TYPE: &str = "kubernetes.operator.savepoint.format.type";
pub const CHECKPOINT_TYPE: &str = "kubernetes.operator.checkpoint.type";
pub const SAVEPOINT_TRIGGER_GRACE_PERIOD: &str =
    "kubernetes.operator.savepoint.trigger.grace-period";
pub const SAVEPOINT_CLEANUP_ENABLED: &str = "kubernetes.operator.savepoint.cleanup.enabled";
pub const SAVEPOINT_HISTORY_MAX_COUNT: &str = "kubernetes.operator.savepoint.history.max.count";
pub const SAVEPOINT_HISTORY_MAX_AGE: &str = "kubernetes.operator.savepoint.history.max.age";
pub const SAVEPOINT_ON_DELETION: &str = "kubernetes.operator.job.savepoint-on-deletion";
pub const DRAIN_ON_SAVEPOINT_DELETION: &str = "kubernetes.operator.job.drain-on-savepoint-deletion";
pub const LAST_STATE_FALLBACK: &str = "kubernetes.operator.job.upgrade.last-state-fallback.enabled";
pub const RETRY_INITIAL_INTERVAL: &str = "kubernetes.operator.retry.initial.interval";
pub const RETRY_INTERVAL_MULTIPLIER: &str = "kubernetes.operator.retry.interval.multiplier";
pub const RETRY_MAX_ATTEMPTS: &str = "kubernetes.operator.retry.max.attempts";
pub const RECONCILE_PARALLELISM: &str = "kubernetes.operator.reconcile.parallelism";
pub const FLINK_CLIENT_TIMEOUT: &str = "kubernetes.operator.flink.client.timeout";
pub const BLOCK_ON_SESSION_JOBS: &str =
    "kubernetes.operator.session.deletion.block-on-session-jobs";
pub const SNAPSHOT_RESOURCE_ENABLED: &str = "kubernetes.operator.snapshot.resource.enabled";

/// Flink's own keys the operator reads.
pub const CHECKPOINTS_DIR: &str = "state.checkpoints.dir";
pub const SAVEPOINTS_DIR: &str = "state.savepoints.dir";
pub const CHECKPOINTS_DIR_2X: &str = "execution.checkpointing.dir";
pub const SAVEPOINTS_DIR_2X: &str = "execution.checkpointing.savepoint-dir";
pub const HA_TYPE: &str = "high-availability.type";
pub const HA_TYPE_LEGACY: &str = "high-availability";
pub const REST_PORT: &str = "rest.port";
pub const SAVEPOINT_PATH: &str = "execution.savepoint.path";
pub const JOB_ID: &str = "$internal.pipeline.job-id";

const VERSION_DEFAULTS: &str = "kubernetes.operator.default-configuration.flink-version.";
const NAMESPACE_DEFAULTS: &str = "kubernetes.operator.default-configuration.namespace.";

/// The operator's defaults for one resource, as upstream layers them: the plain keys, then
/// those under `kubernetes.operator.default-configuration.flink-version.<v1_18>.` (or
/// `<v1_18+>.` for that version and newer) matching the resource's Flink version, then those
/// under `kubernetes.operator.default-configuration.namespace.<namespace>.`.
pub fn defaults_for<'a>(
    operator: &'a BTreeMap<String, String>,
    namespace: &str,
    version: Option<crate::crd::FlinkVersion>,
) -> std::borrow::Cow<'a, BTreeMap<String, String>> {
    // Without per-version or per-namespace defaults (the usual case) they are the operator's
    // own, not a copy of them for every reconcile.
    if !operator
        .keys()
        .any(|k| k.starts_with(VERSION_DEFAULTS) || k.starts_with(NAMESPACE_DEFAULTS))
    {
        return std::borrow::Cow::Borrowed(operator);
    }
    let mut out: BTreeMap<String, String> = operator
        .iter()
        .filter(|(k, _)| !k.starts_with(VERSION_DEFAULTS) && !k.starts_with(NAMESPACE_DEFAULTS))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let version_name = version.map(|v| format!("{v:?}"));
    // Exact-version keys win over `+` ranges; among ranges the nearest (highest) wins.
    let mut by_version: Vec<(u8, crate::crd::FlinkVersion, &str, &str)> = Vec::new();
    for (k, v) in operator {
        let Some(rest) = k.strip_prefix(VERSION_DEFAULTS) else {
            continue;
        };
        let Some((selector, key)) = rest.split_once('.') else {
            continue;
        };
        let (name, plus) = match selector.strip_suffix('+') {
            Some(n) => (n, true),
            None => (selector, false),
        };
        let Ok(selected) =
            serde_json::from_value::<crate::crd::FlinkVersion>(serde_json::json!(name))
        else {
            continue;
        };
        let applies = match version {
            Some(v) if plus => v >= selected,
            Some(_) => version_name.as_deref() == Some(name),
            None => false,
        };
        if applies {
            by_version.push((u8::from(!plus), selected, key, v));
        }
    }
    by_version.sort();
    for (_, _, key, value) in by_version {
        out.insert(key.to_string(), value.to_string());
    }
    let own_namespace = format!("{NAMESPACE_DEFAULTS}{namespace}.");
    for (k, v) in operator {
        if let Some(key) = k.strip_prefix(&own_namespace) {
            out.insert(key.to_string(), v.clone());
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The effective configuration of one resource: operator defaults, then its own
/// `flinkConfiguration` on top. The two are kept apart, the resource's shared with its spec
/// ([`crate::crd::FlinkConfiguration::flat`]): a reconcile builds a few of these, and merging
/// copied every key and value of both each time.
#[derive(Debug, Clone, Default)]
pub struct EffectiveConfig {
    operator: FlatConfig,
    resource: Arc<FlatConfig>,
}

impl PartialEq for EffectiveConfig {
    fn eq(&self, other: &Self) -> bool {
        self.values() == other.values()
    }
}

impl EffectiveConfig {
    pub fn new(operator: &BTreeMap<String, String>, resource: &BTreeMap<String, String>) -> Self {
        Self::with_shared(operator, Arc::new(FlatConfig::from(resource)))
    }

    /// [`EffectiveConfig::new`] with a resource configuration that is already shared.
    pub fn with_shared(operator: &BTreeMap<String, String>, resource: Arc<FlatConfig>) -> Self {
        EffectiveConfig {
            operator: FlatConfig::from(operator),
            resource,
        }
    }

    /// The value in force: the resource's if it sets the key, else the operator's; an empty
    /// value counts as unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.resource
            .get(key)
            .or_else(|| self.operator.get(key))
            .filter(|v| !v.is_empty())
    }

    /// Every key in force with its value, in key order.
    pub fn values(&self) -> BTreeMap<String, String> {
        let mut values = self.operator.to_map();
        values.extend(
            self.resource
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        values
    }

    fn bool(&self, key: &str, default: bool) -> bool {
        self.get(key)
            .map(|v| v.eq_ignore_ascii_case("true"))
            .unwrap_or(default)
    }

    fn duration(&self, key: &str, default: Duration) -> Duration {
        self.get(key)
            .and_then(|v| parse_duration(v).ok())
            .unwrap_or(default)
    }

    pub fn reconcile_interval(&self) -> Duration {
        self.duration(RECONCILE_INTERVAL, Duration::from_secs(60))
    }
    pub fn progress_check_interval(&self) -> Duration {
        self.duration(PROGRESS_CHECK_INTERVAL, Duration::from_secs(10))
    }
    pub fn rest_ready_delay(&self) -> Duration {
        self.duration(REST_READY_DELAY, Duration::from_secs(10))
    }
    pub fn rollback_enabled(&self) -> bool {
        self.bool(ROLLBACK_ENABLED, false)
    }
    pub fn readiness_timeout(&self) -> Duration {
        self.duration(READINESS_TIMEOUT, Duration::from_secs(300))
    }
    pub fn restart_failed_jobs(&self) -> bool {
        self.bool(JOB_RESTART_FAILED, false)
    }
    pub fn jm_deployment_recovery(&self) -> bool {
        self.bool(JM_DEPLOYMENT_RECOVERY, true)
    }
    /// Off when unset, empty or zero. (Cron expressions are not supported yet.)
    pub fn periodic_savepoint_interval(&self) -> Option<Duration> {
        self.get(PERIODIC_SAVEPOINT_INTERVAL)
            .and_then(|v| parse_duration(v).ok())
            .filter(|d| !d.is_zero())
    }
    pub fn periodic_checkpoint_interval(&self) -> Option<Duration> {
        self.get(PERIODIC_CHECKPOINT_INTERVAL)
            .and_then(|v| parse_duration(v).ok())
            .filter(|d| !d.is_zero())
    }
    pub fn savepoint_format_type(&self) -> String {
        self.get(SAVEPOINT_FORMAT_TYPE)
            .unwrap_or("CANONICAL")
            .to_ascii_uppercase()
    }
    pub fn checkpoint_type(&self) -> String {
        self.get(CHECKPOINT_TYPE)
            .unwrap_or("FULL")
            .to_ascii_uppercase()
    }
    pub fn savepoint_trigger_grace_period(&self) -> Duration {
        self.duration(SAVEPOINT_TRIGGER_GRACE_PERIOD, Duration::from_secs(60))
    }
    pub fn savepoint_cleanup_enabled(&self) -> bool {
        self.bool(SAVEPOINT_CLEANUP_ENABLED, true)
    }
    pub fn savepoint_history_max_count(&self) -> usize {
        self.get(SAVEPOINT_HISTORY_MAX_COUNT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(10)
    }
    pub fn savepoint_history_max_age(&self) -> Duration {
        self.duration(SAVEPOINT_HISTORY_MAX_AGE, Duration::from_secs(24 * 3600))
    }
    pub fn savepoint_on_deletion(&self) -> bool {
        self.bool(SAVEPOINT_ON_DELETION, false)
    }
    pub fn drain_on_savepoint_deletion(&self) -> bool {
        self.bool(DRAIN_ON_SAVEPOINT_DELETION, false)
    }
    pub fn last_state_fallback(&self) -> bool {
        self.bool(LAST_STATE_FALLBACK, true)
    }
    pub fn block_on_session_jobs(&self) -> bool {
        self.bool(BLOCK_ON_SESSION_JOBS, true)
    }
    pub fn retry_initial_interval(&self) -> Duration {
        self.duration(RETRY_INITIAL_INTERVAL, Duration::from_secs(5))
    }
    pub fn retry_interval_multiplier(&self) -> f64 {
        self.get(RETRY_INTERVAL_MULTIPLIER)
            .and_then(|v| v.parse().ok())
            .unwrap_or(1.5)
    }
    /// How many reconciles of different resources may run at once: upstream's default 50, and
    /// -1 (any value below 1) for no bound.
    pub fn reconcile_parallelism(&self) -> usize {
        match self
            .get(RECONCILE_PARALLELISM)
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            Some(n) if n >= 1 => n as usize,
            Some(_) => usize::MAX,
            None => 50,
        }
    }
    /// How long a call to a JobManager's REST API may take (upstream's default, 10 s).
    pub fn flink_client_timeout(&self) -> Duration {
        self.duration(FLINK_CLIENT_TIMEOUT, Duration::from_secs(10))
    }
    pub fn retry_max_attempts(&self) -> u32 {
        self.get(RETRY_MAX_ATTEMPTS)
            .and_then(|v| v.parse().ok())
            .unwrap_or(15)
    }
    /// `state.checkpoints.dir`, or its Flink 2.x name `execution.checkpointing.dir`.
    pub fn checkpoints_dir(&self) -> Option<&str> {
        self.get(CHECKPOINTS_DIR)
            .or_else(|| self.get(CHECKPOINTS_DIR_2X))
    }
    /// `state.savepoints.dir`, or its Flink 2.x name `execution.checkpointing.savepoint-dir`.
    pub fn savepoints_dir(&self) -> Option<&str> {
        self.get(SAVEPOINTS_DIR)
            .or_else(|| self.get(SAVEPOINTS_DIR_2X))
    }
    /// Kubernetes or ZooKeeper HA (the new and the legacy key).
    pub fn ha_enabled(&self) -> bool {
        let v = self
            .get(HA_TYPE)
            .or_else(|| self.get(HA_TYPE_LEGACY))
            .unwrap_or("none");
        !v.eq_ignore_ascii_case("none")
    }
    pub fn rest_port(&self) -> u16 {
        self.get(REST_PORT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(8081)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_layered_by_flink_version_and_namespace() {
        use crate::crd::FlinkVersion;
        let operator = conf(&[
            ("kubernetes.operator.reconcile.interval", "60s"),
            ("a", "base"),
            ("kubernetes.operator.default-configuration.flink-version.v1_18+.a", "from 1.18"),
            ("kubernetes.operator.default-configuration.flink-version.v1_20+.a", "from 1.20"),
            ("kubernetes.operator.default-configuration.flink-version.v2_3.b", "only 2.3"),
            ("kubernetes.operator.default-configuration.namespace.team-a.kubernetes.operator.reconcile.interval", "15s"),
        ]);
        let old = defaults_for(&operator, "default", Some(FlinkVersion::v1_17));
        assert_eq!(old["a"], "base");
        assert!(!old.contains_key("b"));
        assert!(!old.keys().any(|k| k.contains("default-configuration")));
        let new = defaults_for(&operator, "team-a", Some(FlinkVersion::v2_3));
        assert_eq!(new["a"], "from 1.20");
        assert_eq!(new["b"], "only 2.3");
        assert_eq!(new["kubernetes.operator.reconcile.interval"], "15s");
        let v119 = defaults_for(&operator, "default", Some(FlinkVersion::v1_19));
        assert_eq!(v119["a"], "from 1.18");
        assert_eq!(v119["kubernetes.operator.reconcile.interval"], "60s");
    }

    #[test]
    fn resource_overrides_operator_defaults() {
        let c = EffectiveConfig::new(
            &conf(&[(READINESS_TIMEOUT, "1min"), (ROLLBACK_ENABLED, "false")]),
            &conf(&[(ROLLBACK_ENABLED, "true")]),
        );
        assert!(c.rollback_enabled());
        assert_eq!(c.readiness_timeout(), Duration::from_secs(60));
        assert_eq!(c.reconcile_interval(), Duration::from_secs(60));
    }

    #[test]
    fn reconcile_parallelism_follows_upstream_key() {
        let of = |v: &str| {
            EffectiveConfig::new(&conf(&[(RECONCILE_PARALLELISM, v)]), &Default::default())
                .reconcile_parallelism()
        };
        assert_eq!(EffectiveConfig::default().reconcile_parallelism(), 50);
        assert_eq!(of("8"), 8);
        assert_eq!(of("-1"), usize::MAX, "-1 is upstream's 'no bound'");
        assert_eq!(of("many"), 50, "not a number: the default");
        assert_eq!(
            EffectiveConfig::default().flink_client_timeout(),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn upstream_defaults() {
        let c = EffectiveConfig::default();
        assert_eq!(c.readiness_timeout(), Duration::from_secs(300));
        assert_eq!(c.progress_check_interval(), Duration::from_secs(10));
        assert!(!c.rollback_enabled());
        assert!(c.jm_deployment_recovery());
        assert!(!c.ha_enabled());
        assert_eq!(c.periodic_savepoint_interval(), None);
        assert_eq!(c.savepoint_history_max_count(), 10);
        assert_eq!(c.rest_port(), 8081);
    }

    #[test]
    fn state_directories_under_either_name() {
        let old = EffectiveConfig::new(
            &conf(&[]),
            &conf(&[(CHECKPOINTS_DIR, "a"), (SAVEPOINTS_DIR, "b")]),
        );
        let new = EffectiveConfig::new(
            &conf(&[]),
            &conf(&[(CHECKPOINTS_DIR_2X, "a"), (SAVEPOINTS_DIR_2X, "b")]),
        );
        for c in [old, new] {
            assert_eq!(
                (c.checkpoints_dir(), c.savepoints_dir()),
                (Some("a"), Some("b"))
            );
        }
    }

    #[test]
    fn ha_from_new_or_legacy_key() {
        assert!(EffectiveConfig::new(&conf(&[]), &conf(&[(HA_TYPE, "kubernetes")])).ha_enabled());
        assert!(
            EffectiveConfig::new(&conf(&[]), &conf(&[(HA_TYPE_LEGACY, "KUBERNETES")])).ha_enabled()
        );
        assert!(!EffectiveConfig::new(&conf(&[]), &conf(&[(HA_TYPE, "NONE")])).ha_enabled());
    }
}
