//! What kind of change separates two specs, by upstream's rules: nonces, the upgrade mode and
//! operator settings need no restart (IGNORE); a new `savepointRedeployNonce` redeploys from
//! `initialSavepointPath` (SAVEPOINT_REDEPLOY); anything else is an UPGRADE.

use serde::Serialize;
use serde_json::Value;

use crate::crd::{FlinkConfiguration, FlinkDeploymentSpec, FlinkSessionJobSpec, JobSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiffType {
    Ignore,
    Upgrade,
    SavepointRedeploy,
}

/// Job fields whose change never restarts the job.
const IGNORED_JOB_FIELDS: [&str; 6] = [
    "savepointTriggerNonce",
    "initialSavepointPath",
    "checkpointTriggerNonce",
    "upgradeMode",
    "allowNonRestoredState",
    "autoscalerResetNonce",
];

/// Configuration prefixes whose change never restarts the job.
const IGNORED_CONFIG_PREFIXES: [&str; 3] = [
    "job.autoscaler",
    "parallelism.default",
    "kubernetes.operator",
];

/// The largest change from `old` to `new`, with the changed paths for the SpecChanged event.
pub fn diff<S: Spec>(old: &S, new: &S) -> (DiffType, Vec<String>) {
    // The common case, a resource nobody changed, without serialising both specs.
    if same_but_default_state(old, new) {
        return (DiffType::Ignore, Vec::new());
    }
    diff_as_json(old, new)
}

/// The rules, on the specs as the API shows them.
fn diff_as_json<S: Serialize>(old: &S, new: &S) -> (DiffType, Vec<String>) {
    let old = serde_json::to_value(old).unwrap_or(Value::Null);
    let new = serde_json::to_value(new).unwrap_or(Value::Null);
    let mut changes = Vec::new();
    let mut worst = DiffType::Ignore;
    let keys = keys_of(&old, &new);
    for key in keys {
        let (a, b) = (old.get(&key), new.get(&key));
        if a == b {
            continue;
        }
        let kind = match key.as_str() {
            "job" => diff_job(a, b, &mut changes),
            "flinkConfiguration" => diff_config(a, b, &mut changes),
            // A nonce removed is not a request to restart.
            "restartNonce" if b.is_none() => DiffType::Ignore,
            _ => {
                changes.push(key.clone());
                DiffType::Upgrade
            }
        };
        worst = worst.max(kind);
    }
    (worst, changes)
}

/// A spec with an optional job; the reconciled one records the job's state, which the
/// user's often leaves out (`running`).
pub trait Spec: Serialize {
    fn job(&self) -> Option<&JobSpec>;
    /// Whether everything but the job is equal.
    fn same_but_job(&self, other: &Self) -> bool;
}

impl Spec for FlinkDeploymentSpec {
    fn job(&self) -> Option<&JobSpec> {
        self.job.as_ref()
    }
    fn same_but_job(&self, other: &Self) -> bool {
        // The configuration as Flink reads it: two that differ only in how they are written
        // (nested or dotted keys, a number or its text) are no change by `diff_config` either.
        self.same_but_job_by(other, FlinkConfiguration::same_flat)
    }
}

impl FlinkDeploymentSpec {
    /// Whether everything but the job is equal, the configurations by `same_config`.
    pub fn same_but_job_by(
        &self,
        other: &Self,
        same_config: fn(Option<&FlinkConfiguration>, Option<&FlinkConfiguration>) -> bool,
    ) -> bool {
        // Every field named, so that a new one cannot be forgotten here.
        let FlinkDeploymentSpec {
            job: _,
            restart_nonce,
            flink_configuration,
            image,
            image_pull_policy,
            service_account,
            flink_version,
            ingress,
            pod_template,
            job_manager,
            task_manager,
            log_configuration,
            mode,
        } = self;
        *restart_nonce == other.restart_nonce
            && same_config(
                flink_configuration.as_ref(),
                other.flink_configuration.as_ref(),
            )
            && *image == other.image
            && *image_pull_policy == other.image_pull_policy
            && *service_account == other.service_account
            && *flink_version == other.flink_version
            && *ingress == other.ingress
            && *pod_template == other.pod_template
            && *job_manager == other.job_manager
            && *task_manager == other.task_manager
            && *log_configuration == other.log_configuration
            && *mode == other.mode
    }
}

impl Spec for FlinkSessionJobSpec {
    fn job(&self) -> Option<&JobSpec> {
        self.job.as_ref()
    }
    fn same_but_job(&self, other: &Self) -> bool {
        let FlinkSessionJobSpec {
            job: _,
            restart_nonce,
            flink_configuration,
            deployment_name,
        } = self;
        *restart_nonce == other.restart_nonce
            && FlinkConfiguration::same_flat(
                flink_configuration.as_ref(),
                other.flink_configuration.as_ref(),
            )
            && *deployment_name == other.deployment_name
    }
}

/// Equal, but for a job state left out on one side where the other says `running`: no
/// change at all by the rules below.
fn same_but_default_state<S: Spec>(old: &S, new: &S) -> bool {
    let same_job = match (old.job(), new.job()) {
        (None, None) => true,
        (Some(a), Some(b)) if a.state == b.state => a == b,
        (Some(a), Some(b)) => a.desired_state() == b.desired_state() && same_but_state(a, b),
        _ => false,
    };
    same_job && old.same_but_job(new)
}

/// Whether two job specs are equal in every field but `state` (compared in place: a stored
/// spec says `state: running` where the user's often says nothing, so every reconcile of a
/// steady deployment comes here, and copying both specs to compare them was a copy too many).
fn same_but_state(a: &JobSpec, b: &JobSpec) -> bool {
    // Destructured, so that a new field cannot be forgotten here.
    let JobSpec {
        jar_uri,
        parallelism,
        entry_class,
        args,
        state: _,
        savepoint_trigger_nonce,
        initial_savepoint_path,
        checkpoint_trigger_nonce,
        upgrade_mode,
        allow_non_restored_state,
        savepoint_redeploy_nonce,
        autoscaler_reset_nonce,
    } = a;
    *jar_uri == b.jar_uri
        && *parallelism == b.parallelism
        && *entry_class == b.entry_class
        && *args == b.args
        && *savepoint_trigger_nonce == b.savepoint_trigger_nonce
        && *initial_savepoint_path == b.initial_savepoint_path
        && *checkpoint_trigger_nonce == b.checkpoint_trigger_nonce
        && *upgrade_mode == b.upgrade_mode
        && *allow_non_restored_state == b.allow_non_restored_state
        && *savepoint_redeploy_nonce == b.savepoint_redeploy_nonce
        && *autoscaler_reset_nonce == b.autoscaler_reset_nonce
}

fn keys_of(a: &Value, b: &Value) -> Vec<String> {
    let mut keys: Vec<String> = a
        .as_object()
        .into_iter()
        .chain(b.as_object())
        .flat_map(|m| m.keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn diff_job(a: Option<&Value>, b: Option<&Value>, changes: &mut Vec<String>) -> DiffType {
    let (Some(a), Some(b)) = (a, b) else {
        changes.push("job".into());
        return DiffType::Upgrade;
    };
    let mut worst = DiffType::Ignore;
    for key in keys_of(a, b) {
        let (x, y) = (a.get(&key), b.get(&key));
        if x == y {
            continue;
        }
        let kind = if IGNORED_JOB_FIELDS.contains(&key.as_str()) {
            DiffType::Ignore
        } else if key == "savepointRedeployNonce" {
            if y.is_none() {
                DiffType::Ignore
            } else {
                DiffType::SavepointRedeploy
            }
        } else if key == "state" && is_default_state(x) && is_default_state(y) {
            DiffType::Ignore
        } else {
            DiffType::Upgrade
        };
        if kind != DiffType::Ignore {
            changes.push(format!("job.{key}"));
        }
        worst = worst.max(kind);
    }
    worst
}

fn is_default_state(v: Option<&Value>) -> bool {
    v.map(|v| v == "running").unwrap_or(true)
}

fn diff_config(a: Option<&Value>, b: Option<&Value>, changes: &mut Vec<String>) -> DiffType {
    let flat = |v: Option<&Value>| {
        v.and_then(|v| serde_json::from_value::<crate::crd::FlinkConfiguration>(v.clone()).ok())
            .map(|c| c.flatten())
            .unwrap_or_default()
    };
    let (a, b) = (flat(a), flat(b));
    let mut worst = DiffType::Ignore;
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        if a.get(key) == b.get(key) || IGNORED_CONFIG_PREFIXES.iter().any(|p| key.starts_with(p)) {
            continue;
        }
        changes.push(format!("flinkConfiguration.{key}"));
        worst = DiffType::Upgrade;
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{FlinkConfiguration, FlinkDeploymentSpec, JobSpec, JobState, UpgradeMode};

    /// `same_but_state` is equality of the specs with `state` cleared, for a change of each
    /// field in turn (every field of a JobSpec is set in `full`).
    #[test]
    fn same_but_state_is_equality_without_the_state() {
        let full = serde_json::json!({"jarURI": "local:///a.jar", "parallelism": 2,
            "entryClass": "A", "args": ["x"], "state": "running", "savepointTriggerNonce": 1,
            "initialSavepointPath": "s3://sp", "checkpointTriggerNonce": 2,
            "upgradeMode": "savepoint", "allowNonRestoredState": true,
            "savepointRedeployNonce": 3, "autoscalerResetNonce": 4});
        let base: JobSpec = serde_json::from_value(full.clone()).unwrap();
        assert_eq!(
            serde_json::to_value(&base).unwrap(),
            full,
            "every field is set"
        );
        let without_state = |j: &JobSpec| JobSpec {
            state: None,
            ..j.clone()
        };
        for key in full.as_object().unwrap().keys() {
            let mut changed = full.clone();
            changed[key] = match key.as_str() {
                "state" => serde_json::json!("suspended"),
                "upgradeMode" => serde_json::json!("last-state"),
                "allowNonRestoredState" => serde_json::json!(false),
                "args" => serde_json::json!(["y"]),
                "parallelism"
                | "savepointTriggerNonce"
                | "checkpointTriggerNonce"
                | "savepointRedeployNonce"
                | "autoscalerResetNonce" => serde_json::json!(9),
                _ => serde_json::json!("other"),
            };
            let other: JobSpec = serde_json::from_value(changed).unwrap();
            assert_eq!(
                same_but_state(&base, &other),
                without_state(&base) == without_state(&other),
                "{key}"
            );
            assert_eq!(same_but_state(&base, &other), key == "state", "{key}");
        }
    }

    fn spec() -> FlinkDeploymentSpec {
        FlinkDeploymentSpec {
            image: Some("flink:2.2".into()),
            job: Some(JobSpec {
                jar_uri: Some("local:///job.jar".into()),
                parallelism: Some(2),
                ..Default::default()
            }),
            flink_configuration: Some(FlinkConfiguration::from_pairs([("a.b", "1")])),
            ..Default::default()
        }
    }

    #[test]
    fn nonces_mode_and_operator_keys_are_ignored() {
        let mut new = spec();
        let job = new.job.as_mut().unwrap();
        job.savepoint_trigger_nonce = Some(3);
        job.upgrade_mode = Some(UpgradeMode::Savepoint);
        job.state = Some(JobState::Running);
        new.flink_configuration = Some(FlinkConfiguration::from_pairs([
            ("a.b", "1"),
            ("kubernetes.operator.periodic.savepoint.interval", "1h"),
        ]));
        assert_eq!(diff(&spec(), &new).0, DiffType::Ignore);
    }

    #[test]
    fn image_parallelism_state_and_config_are_upgrades() {
        let mut new = spec();
        new.image = Some("flink:2.3".into());
        assert_eq!(
            diff(&spec(), &new),
            (DiffType::Upgrade, vec!["image".to_string()])
        );
        let mut new = spec();
        new.job.as_mut().unwrap().state = Some(JobState::Suspended);
        assert_eq!(diff(&spec(), &new).0, DiffType::Upgrade);
        let mut new = spec();
        new.flink_configuration = Some(FlinkConfiguration::from_pairs([("a.b", "2")]));
        assert_eq!(
            diff(&spec(), &new).1,
            vec!["flinkConfiguration.a.b".to_string()]
        );
    }

    #[test]
    fn the_shortcut_for_equal_specs_agrees_with_the_rules() {
        let with_state = |state: Option<JobState>, parallelism: i32| {
            let mut s = spec();
            let job = s.job.as_mut().unwrap();
            job.state = state;
            job.parallelism = Some(parallelism);
            s
        };
        let states = [None, Some(JobState::Running), Some(JobState::Suspended)];
        for a in states {
            for b in states {
                for p in [2, 3] {
                    let (old, new) = (with_state(a, 2), with_state(b, p));
                    assert_eq!(
                        diff(&old, &new),
                        diff_as_json(&old, &new),
                        "{a:?} -> {b:?}, {p}"
                    );
                }
            }
        }
        // Taken for the common case: the user left the state out, the operator recorded it.
        assert!(same_but_default_state(
            &with_state(Some(JobState::Running), 2),
            &with_state(None, 2)
        ));
        let mut no_job = spec();
        no_job.job = None;
        assert_eq!(diff(&no_job, &spec()), diff_as_json(&no_job, &spec()));
        assert_eq!(diff(&no_job, &no_job), (DiffType::Ignore, vec![]));
    }

    /// The shortcut compares configurations as Flink reads them: written another way (nested
    /// keys, a number for its text, absent for empty) is no change by the rules either, and a
    /// changed value is one by both.
    #[test]
    fn the_shortcut_reads_configurations_as_the_rules_do() {
        let with_conf = |conf: Option<serde_json::Value>| {
            let mut s = spec();
            s.flink_configuration = conf.map(|c| serde_json::from_value(c).unwrap());
            s
        };
        let dotted = with_conf(Some(serde_json::json!({"a.b": "1"})));
        let nested = with_conf(Some(serde_json::json!({"a": {"b": 1}})));
        let changed = with_conf(Some(serde_json::json!({"a": {"b": 2}})));
        let (absent, empty) = (with_conf(None), with_conf(Some(serde_json::json!({}))));
        for (old, new, same) in [
            (&dotted, &nested, true),
            (&absent, &empty, true),
            (&dotted, &changed, false),
            (&absent, &dotted, false),
        ] {
            assert_eq!(same_but_default_state(old, new), same);
            assert_eq!(diff(old, new), diff_as_json(old, new));
        }
        assert_eq!(diff(&dotted, &nested), (DiffType::Ignore, vec![]));
    }

    #[test]
    fn savepoint_redeploy_nonce_wins() {
        let mut new = spec();
        new.image = Some("flink:2.3".into());
        new.job.as_mut().unwrap().savepoint_redeploy_nonce = Some(1);
        assert_eq!(diff(&spec(), &new).0, DiffType::SavepointRedeploy);
    }

    #[test]
    fn removing_restart_nonce_is_ignored_adding_it_restarts() {
        let mut with = spec();
        with.restart_nonce = Some(1);
        assert_eq!(diff(&with, &spec()).0, DiffType::Ignore);
        assert_eq!(diff(&spec(), &with).0, DiffType::Upgrade);
    }
}
