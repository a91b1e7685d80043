//! Reading scenario files into [`crate::scenario::Scenario`]. Errors name the file and, where
//! the YAML parser or the step list gives one, the line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::scenario::*;
use flink_operator::duration::parse_duration;

#[derive(Debug, Clone, PartialEq)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

const STEP_KEYS: [&str; 9] = [
    "apply", "await", "patch", "fault", "heal", "advance", "expect", "delete", "snapshot",
];
const TOP_KEYS: [&str; 6] = [
    "name",
    "description",
    "seed",
    "operator",
    "cluster",
    "steps",
];

pub fn load_scenario(path: &Path) -> Result<Scenario, LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError(format!("{}: cannot read: {e}", path.display())))?;
    parse_scenario(path, &text)
}

/// Lines where the top-level items of `steps:` begin.
fn step_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let mut in_steps = false;
    let mut indent = None;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("steps:") {
            in_steps = true;
            continue;
        }
        if !in_steps || line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') && !line.starts_with('-') {
            break;
        }
        let lead = line.len() - line.trim_start().len();
        if line.trim_start().starts_with("- ") || line.trim() == "-" {
            if indent.is_none() {
                indent = Some(lead);
            }
            if Some(lead) == indent {
                lines.push(i + 1);
            }
        }
    }
    lines
}

pub fn parse_scenario(path: &Path, text: &str) -> Result<Scenario, LoadError> {
    let file = path.display().to_string();
    let root: Value =
        serde_saphyr::from_str(text).map_err(|e| LoadError(format!("{file}: {e}")))?;
    let Value::Object(top) = &root else {
        return Err(LoadError(format!(
            "{file}:1:1: a scenario is a mapping with name and steps"
        )));
    };
    for k in top.keys() {
        if !TOP_KEYS.contains(&k.as_str()) {
            return Err(LoadError(format!(
                "{file}: unknown key `{k}`; valid keys: {}",
                TOP_KEYS.join(", ")
            )));
        }
    }
    let name = top
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| LoadError(format!("{file}: `name` is required")))?
        .to_string();
    let seed = match top.get("seed") {
        None => 0,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| LoadError(format!("{file}: `seed` must be a whole number")))?,
    };
    let operator = top
        .get("operator")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), flink_operator::crd::config::scalar_to_string(v)))
                .collect()
        })
        .unwrap_or_default();
    let mut cluster = ClusterSettings::default();
    if let Some(c) = top.get("cluster").and_then(Value::as_object) {
        for (k, v) in c {
            let d = duration(&file, k, v)?;
            match k.as_str() {
                "podStartup" => cluster.pod_startup = d,
                "jobStartup" => cluster.job_startup = d,
                "checkpointInterval" => cluster.checkpoint_interval = d,
                "savepointDuration" => cluster.savepoint_duration = d,
                _ => return Err(LoadError(format!("{file}: unknown cluster key `{k}`; valid keys: podStartup, jobStartup, checkpointInterval, savepointDuration"))),
            }
        }
    }
    let steps_value = top
        .get("steps")
        .and_then(Value::as_array)
        .ok_or_else(|| LoadError(format!("{file}: `steps` is required and must be a list")))?;
    let lines = step_lines(text);
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut steps = Vec::new();
    for (i, s) in steps_value.iter().enumerate() {
        let line = lines.get(i).copied().unwrap_or(0);
        let at = format!("{file}:{line}");
        let Value::Object(m) = s else {
            return Err(LoadError(format!(
                "{at}: a step is a mapping with one of: {}",
                STEP_KEYS.join(", ")
            )));
        };
        if m.len() != 1 {
            return Err(LoadError(format!(
                "{at}: a step has exactly one action, one of: {}",
                STEP_KEYS.join(", ")
            )));
        }
        let (k, v) = m.iter().next().unwrap();
        let action = step(&at, &base, k, v)?;
        steps.push(Step { line, action });
    }
    Ok(Scenario {
        name,
        description: top
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
        seed,
        operator,
        cluster,
        steps,
        path: PathBuf::from(path),
    })
}

fn duration(at: &str, key: &str, v: &Value) -> Result<Duration, LoadError> {
    let text = flink_operator::crd::config::scalar_to_string(v);
    parse_duration(&text).map_err(|e| LoadError(format!("{at}: `{key}`: {e}")))
}

fn target(at: &str, v: &Value) -> Result<Target, LoadError> {
    let s = v.as_str().ok_or_else(|| {
        LoadError(format!(
            "{at}: a target is Kind/name or Kind/namespace/name"
        ))
    })?;
    let parts: Vec<&str> = s.split('/').collect();
    let (kind, namespace, name) = match parts.as_slice() {
        [k, n] => (*k, "default", *n),
        [k, ns, n] => (*k, *ns, *n),
        _ => {
            return Err(LoadError(format!(
                "{at}: target `{s}` is not Kind/name or Kind/namespace/name"
            )))
        }
    };
    if kind != "FlinkDeployment" && kind != "FlinkSessionJob" {
        return Err(LoadError(format!(
            "{at}: target kind `{kind}` is not FlinkDeployment or FlinkSessionJob"
        )));
    }
    Ok(Target {
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
    })
}

fn check(at: &str, v: &Value, allowed: &[&str]) -> Result<Check, LoadError> {
    let m = v
        .as_object()
        .ok_or_else(|| LoadError(format!("{at}: expected a mapping")))?;
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(LoadError(format!(
                "{at}: unknown key `{k}`; valid keys: {}",
                allowed.join(", ")
            )));
        }
    }
    let t = target(
        at,
        m.get("target")
            .ok_or_else(|| LoadError(format!("{at}: `target` is required")))?,
    )?;
    let job = match m.get("job") {
        None => None,
        Some(j) => {
            let jm = j
                .as_object()
                .ok_or_else(|| LoadError(format!("{at}: `job` is a mapping")))?;
            let mut jc = JobCheck::default();
            for (k, v) in jm {
                match k.as_str() {
                    "state" => jc.state = v.as_str().map(str::to_string),
                    "parallelism" => jc.parallelism = v.as_i64(),
                    "restoredFrom" => jc.restored_from = v.as_str().map(str::to_string),
                    "runningInstances" => jc.running_instances = v.as_i64(),
                    _ => return Err(LoadError(format!("{at}: unknown job key `{k}`; valid keys: state, parallelism, restoredFrom, runningInstances"))),
                }
            }
            Some(jc)
        }
    };
    let absent = m.get("absent").and_then(Value::as_bool).unwrap_or(false);
    let status = m.get("status").cloned();
    if status.is_none() && job.is_none() && !absent {
        return Err(LoadError(format!(
            "{at}: give at least one of status, job, absent"
        )));
    }
    Ok(Check {
        target: t,
        status,
        job,
        absent,
    })
}

fn fault_kind(at: &str, s: &str) -> Result<FaultKind, LoadError> {
    FaultKind::ALL
        .iter()
        .copied()
        .find(|k| k.name() == s)
        .ok_or_else(|| {
            LoadError(format!(
                "{at}: unknown fault kind `{s}`; valid kinds: {}",
                FaultKind::ALL
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

fn step(at: &str, base: &Path, key: &str, v: &Value) -> Result<Action, LoadError> {
    Ok(match key {
        "apply" => {
            if let Some(f) = v.get("file").and_then(Value::as_str) {
                let p = base.join(f);
                let text = std::fs::read_to_string(&p)
                    .map_err(|e| LoadError(format!("{at}: cannot read {}: {e}", p.display())))?;
                let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
                    .map_err(|e| LoadError(format!("{}: {e}", p.display())))?;
                Action::Apply(docs.into_iter().filter(|d| !d.is_null()).collect())
            } else {
                Action::Apply(vec![v.clone()])
            }
        }
        "await" => {
            let within = v
                .get("within")
                .ok_or_else(|| LoadError(format!("{at}: `await` needs `within`")))?;
            Action::Await {
                within: duration(at, "within", within)?,
                check: check(at, v, &["target", "status", "job", "absent", "within"])?,
            }
        }
        "expect" => Action::Expect(check(at, v, &["target", "status", "job", "absent"])?),
        "patch" => Action::Patch {
            target: target(at, v.get("target").unwrap_or(&Value::Null))?,
            merge: v
                .get("merge")
                .cloned()
                .ok_or_else(|| LoadError(format!("{at}: `patch` needs `merge`")))?,
        },
        "delete" => Action::Delete(target(at, v)?),
        "advance" => Action::Advance(duration(at, "advance", v)?),
        "snapshot" => Action::Snapshot(
            v.as_str()
                .filter(|s| {
                    s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                })
                .ok_or_else(|| {
                    LoadError(format!("{at}: a snapshot name is letters, digits, - and _"))
                })?
                .to_string(),
        ),
        "heal" => {
            let s = v
                .as_str()
                .ok_or_else(|| LoadError(format!("{at}: `heal` is `all` or a fault kind")))?;
            Action::Heal(if s == "all" {
                None
            } else {
                Some(fault_kind(at, s)?)
            })
        }
        "fault" => {
            let m = v
                .as_object()
                .ok_or_else(|| LoadError(format!("{at}: a fault is a mapping with `kind`")))?;
            let kind = fault_kind(
                at,
                m.get("kind").and_then(Value::as_str).unwrap_or_default(),
            )?;
            let allowed: &[&str] = match kind {
                FaultKind::ImagePull => &["kind", "image", "for"],
                FaultKind::JobManagerCrash | FaultKind::RestUnavailable => {
                    &["kind", "target", "for"]
                }
                FaultKind::TaskManagerLoss | FaultKind::SavepointFailure => {
                    &["kind", "target", "count"]
                }
                FaultKind::JobFailure => &["kind", "target", "terminal"],
                FaultKind::OperatorRestart => &["kind"],
                FaultKind::ApiConflict | FaultKind::DropWatchEvents => &["kind", "count"],
                FaultKind::StaleReads => &["kind", "for"],
            };
            for k in m.keys() {
                if !allowed.contains(&k.as_str()) {
                    return Err(LoadError(format!(
                        "{at}: `{k}` is not a field of fault {}; valid fields: {}",
                        kind.name(),
                        allowed.join(", ")
                    )));
                }
            }
            Action::Fault(Fault {
                kind,
                image: m.get("image").and_then(Value::as_str).map(str::to_string),
                target: m.get("target").map(|t| target(at, t)).transpose()?,
                duration: m.get("for").map(|d| duration(at, "for", d)).transpose()?,
                count: m.get("count").and_then(Value::as_u64).map(|c| c as u32),
                terminal: m.get("terminal").and_then(Value::as_bool),
            })
        }
        other => {
            return Err(LoadError(format!(
                "{at}: unknown key `{other}` in step; valid keys: {}",
                STEP_KEYS.join(", ")
            )))
        }
    })
}
