//! Reading scenario files into [`crate::scenario::Scenario`]. Every mistake is reported as
//! `FILE:LINE:COLUMN: message`, with the valid keys where a key is unknown.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::scenario::*;
use crate::yaml::{self, Kind, Node};
use flink_operator::duration::parse_duration;

#[derive(Debug, Clone, PartialEq)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

const TOP_KEYS: [&str; 6] = [
    "name",
    "description",
    "seed",
    "operator",
    "cluster",
    "steps",
];
const STEP_KEYS: [&str; 9] = [
    "apply", "await", "patch", "fault", "heal", "advance", "expect", "delete", "snapshot",
];
const CLUSTER_KEYS: [&str; 4] = [
    "podStartup",
    "jobStartup",
    "checkpointInterval",
    "savepointDuration",
];
const JOB_KEYS: [&str; 4] = ["state", "parallelism", "restoredFrom", "runningInstances"];

pub fn load_scenario(path: &Path) -> Result<Scenario, LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError(format!("{}: cannot read: {}", path.display(), io_text(&e))))?;
    parse_scenario(path, &text)
}

/// Positions errors in one file.
struct Reader<'a> {
    file: String,
    base: &'a Path,
}

impl Reader<'_> {
    fn err(&self, node: &Node, message: impl std::fmt::Display) -> LoadError {
        LoadError(format!(
            "{}:{}:{}: {message}",
            self.file, node.line, node.column
        ))
    }

    fn map<'n>(&self, node: &'n Node, what: &str) -> Result<&'n [(Node, Node)], LoadError> {
        node.entries().ok_or_else(|| {
            self.err(
                node,
                format!("{what} must be a mapping, not {}", node.type_name()),
            )
        })
    }

    /// Refuses keys outside `allowed`, naming the valid ones.
    fn only(
        &self,
        entries: &[(Node, Node)],
        allowed: &[&str],
        what: &str,
    ) -> Result<(), LoadError> {
        for (k, _) in entries {
            let key = k.key_text();
            if !allowed.contains(&key.as_str()) {
                return Err(self.err(
                    k,
                    format!(
                        "unknown key `{key}` in {what}; valid keys: {}",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn string(&self, node: &Node, what: &str) -> Result<String, LoadError> {
        node.as_str().map(str::to_string).ok_or_else(|| {
            self.err(
                node,
                format!("{what} must be text, not {}", node.type_name()),
            )
        })
    }

    fn duration(&self, node: &Node, what: &str) -> Result<Duration, LoadError> {
        let text = match &node.kind {
            Kind::Str(s) => s.clone(),
            Kind::Int(i) => i.to_string(),
            _ => {
                return Err(self.err(
                    node,
                    format!(
                        "{what} must be a duration like 10s or 5min, not {}",
                        node.type_name()
                    ),
                ))
            }
        };
        parse_duration(&text).map_err(|e| self.err(node, format!("{what}: {e}")))
    }

    fn uint(&self, node: &Node, what: &str) -> Result<u64, LoadError> {
        match node.kind {
            Kind::Int(i) if i >= 0 => Ok(i as u64),
            Kind::Int(i) => Err(self.err(node, format!("{what} must not be negative, not {i}"))),
            _ => Err(self.err(
                node,
                format!("{what} must be a whole number, not {}", node.type_name()),
            )),
        }
    }

    fn count(&self, node: &Node, what: &str) -> Result<u32, LoadError> {
        let n = self.uint(node, what)?;
        u32::try_from(n)
            .map_err(|_| self.err(node, format!("{what} is too large (at most {})", u32::MAX)))
    }

    fn target(&self, node: &Node) -> Result<Target, LoadError> {
        let s = self.string(node, "a target")?;
        let parts: Vec<&str> = s.split('/').collect();
        let (kind, namespace, name) = match parts.as_slice() {
            [k, n] => (*k, "default", *n),
            [k, ns, n] => (*k, *ns, *n),
            _ => {
                return Err(self.err(
                    node,
                    format!("target `{s}` is not Kind/name or Kind/namespace/name"),
                ))
            }
        };
        if kind != "FlinkDeployment" && kind != "FlinkSessionJob" {
            return Err(self.err(
                node,
                format!("target kind `{kind}` is not FlinkDeployment or FlinkSessionJob"),
            ));
        }
        if name.is_empty() || namespace.is_empty() {
            return Err(self.err(node, format!("target `{s}` has an empty name or namespace")));
        }
        Ok(Target {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        })
    }

    fn required<'n>(&self, parent: &'n Node, key: &str, what: &str) -> Result<&'n Node, LoadError> {
        parent
            .get(key)
            .ok_or_else(|| self.err(parent, format!("{what} needs `{key}`")))
    }
}

/// The YAML library's wording, without its advice about its own options.
fn plain_yaml_error(message: String) -> String {
    if let Some((head, _)) = message.split_once(", set DuplicateKeyPolicy") {
        return format!("{head}: a key may appear only once");
    }
    if message.contains("from_str_multiple") {
        let head: String = message.splitn(4, ':').take(3).collect::<Vec<_>>().join(":");
        return format!("{head}: a scenario file holds one YAML document");
    }
    message
}

/// An I/O error in words that do not depend on the platform.
fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        kind => kind.to_string(),
    }
}

pub fn parse_scenario(path: &Path, text: &str) -> Result<Scenario, LoadError> {
    let file = path.display().to_string();
    let root = yaml::parse(text).map_err(|e| {
        LoadError(plain_yaml_error(flink_operator::validation::yaml_error(
            &file, &e,
        )))
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let r = Reader { file, base: &base };
    let top = r.map(&root, "a scenario")?;
    r.only(top, &TOP_KEYS, "the scenario")?;
    let name = r.string(r.required(&root, "name", "a scenario")?, "`name`")?;
    let description = root
        .get("description")
        .map(|d| r.string(d, "`description`"))
        .transpose()?;
    let seed = root
        .get("seed")
        .map(|s| r.uint(s, "`seed`"))
        .transpose()?
        .unwrap_or(0);
    let mut operator = Vec::new();
    if let Some(op) = root.get("operator") {
        for (k, v) in r.map(op, "`operator`")? {
            let value = match &v.kind {
                Kind::Str(_) | Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => {
                    yaml::scalar_text(&v.to_value())
                }
                _ => {
                    return Err(r.err(
                        v,
                        format!(
                            "operator setting `{}` must be text, a number or a boolean",
                            k.key_text()
                        ),
                    ))
                }
            };
            operator.push((k.key_text(), value));
        }
        // The artifact limits are read once, at start, as the operator does.
        let conf = operator.iter().cloned().collect();
        if let Err(e) = flink_operator::artifacts::ArtifactSettings::from_operator_config(&conf) {
            return Err(r.err(op, format!("operator setting {e}")));
        }
    }
    let mut cluster = ClusterSettings::default();
    if let Some(c) = root.get("cluster") {
        let entries = r.map(c, "`cluster`")?;
        r.only(entries, &CLUSTER_KEYS, "`cluster`")?;
        for (k, v) in entries {
            let key = k.key_text();
            let d = r.duration(v, &format!("`{key}`"))?;
            match key.as_str() {
                "podStartup" => cluster.pod_startup = d,
                "jobStartup" => cluster.job_startup = d,
                "checkpointInterval" => cluster.checkpoint_interval = d,
                _ => cluster.savepoint_duration = d,
            }
        }
    }
    let steps_node = r.required(&root, "steps", "a scenario")?;
    let Kind::Seq(items) = &steps_node.kind else {
        return Err(r.err(
            steps_node,
            format!("`steps` must be a list, not {}", steps_node.type_name()),
        ));
    };
    let mut steps = Vec::new();
    for item in items {
        let entries = r.map(item, "a step")?;
        if entries.len() != 1 {
            return Err(r.err(
                item,
                format!(
                    "a step has exactly one action, one of: {}",
                    STEP_KEYS.join(", ")
                ),
            ));
        }
        let (k, v) = &entries[0];
        let key = k.key_text();
        if !STEP_KEYS.contains(&key.as_str()) {
            return Err(r.err(
                k,
                format!(
                    "unknown key `{key}` in step; valid keys: {}",
                    STEP_KEYS.join(", ")
                ),
            ));
        }
        steps.push(Step {
            line: item.line as usize,
            action: step(&r, &key, v)?,
        });
    }
    Ok(Scenario {
        name,
        description,
        seed,
        operator,
        cluster,
        steps,
        path: PathBuf::from(path),
    })
}

fn check(r: &Reader, v: &Node, allowed: &[&str], what: &str) -> Result<Check, LoadError> {
    let entries = r.map(v, what)?;
    r.only(entries, allowed, what)?;
    let target = r.target(r.required(v, "target", what)?)?;
    let job = match v.get("job") {
        None => None,
        Some(j) => {
            let je = r.map(j, "`job`")?;
            r.only(je, &JOB_KEYS, "`job`")?;
            let mut jc = JobCheck::default();
            for (k, x) in je {
                match k.key_text().as_str() {
                    "state" => jc.state = Some(r.string(x, "`job.state`")?),
                    "parallelism" => jc.parallelism = Some(r.uint(x, "`job.parallelism`")? as i64),
                    "restoredFrom" => {
                        let s = r.string(x, "`job.restoredFrom`")?;
                        if !["none", "savepoint", "checkpoint"].contains(&s.as_str()) {
                            return Err(r.err(
                                x,
                                format!(
                                    "`restoredFrom` is none, savepoint or checkpoint, not `{s}`"
                                ),
                            ));
                        }
                        jc.restored_from = Some(s);
                    }
                    _ => jc.running_instances = Some(r.uint(x, "`job.runningInstances`")? as i64),
                }
            }
            Some(jc)
        }
    };
    let absent = match v.get("absent") {
        None => false,
        Some(Node {
            kind: Kind::Bool(b),
            ..
        }) => *b,
        Some(other) => return Err(r.err(other, "`absent` must be true or false")),
    };
    let status = v
        .get("status")
        .map(|s| r.map(s, "`status`").map(|_| s.to_value()))
        .transpose()?;
    if status.is_none() && job.is_none() && !absent {
        return Err(r.err(
            v,
            format!("{what} needs at least one of status, job, absent"),
        ));
    }
    Ok(Check {
        target,
        status,
        job,
        absent,
    })
}

fn fault_kind(r: &Reader, node: &Node) -> Result<FaultKind, LoadError> {
    let s = r.string(node, "a fault kind")?;
    FaultKind::ALL
        .iter()
        .copied()
        .find(|k| k.name() == s)
        .ok_or_else(|| {
            let kinds: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
            r.err(
                node,
                format!(
                    "unknown fault kind `{s}`; valid kinds: {}",
                    kinds.join(", ")
                ),
            )
        })
}

/// The fields each fault kind takes (the contract's table).
fn fault_fields(kind: FaultKind) -> &'static [&'static str] {
    match kind {
        FaultKind::ImagePull => &["kind", "image", "for"],
        FaultKind::JobManagerCrash | FaultKind::RestUnavailable => &["kind", "target", "for"],
        FaultKind::TaskManagerLoss | FaultKind::SavepointFailure => &["kind", "target", "count"],
        FaultKind::JobFailure => &["kind", "target", "terminal"],
        FaultKind::OperatorRestart => &["kind"],
        FaultKind::ApiConflict | FaultKind::DropWatchEvents | FaultKind::OperatorCrash => {
            &["kind", "count"]
        }
        FaultKind::StaleReads => &["kind", "for"],
        FaultKind::ArtifactFetch => &["kind", "uri", "error", "for", "count"],
    }
}

fn step(r: &Reader, key: &str, v: &Node) -> Result<Action, LoadError> {
    Ok(match key {
        "apply" => match v.get("file") {
            Some(_) if v.entries().map(|e| e.len()) != Some(1) => {
                return Err(r.err(v, "`apply` takes either `file` alone or an inline manifest"));
            }
            Some(f) => {
                let name = r.string(f, "`file`")?;
                let p = r.base.join(&name);
                let text = std::fs::read_to_string(&p).map_err(|e| {
                    r.err(
                        f,
                        format!("cannot read the manifest {}: {}", p.display(), io_text(&e)),
                    )
                })?;
                let docs: Vec<Value> = serde_saphyr::from_multiple(&text).map_err(|e| {
                    r.err(
                        f,
                        format!(
                            "the manifest does not parse: {}",
                            flink_operator::validation::yaml_error(&p.display().to_string(), &e)
                        ),
                    )
                })?;
                let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
                if docs.is_empty() {
                    return Err(r.err(f, format!("{} holds no manifest", p.display())));
                }
                Action::Apply(docs)
            }
            _ => {
                let entries = r.map(v, "`apply`")?;
                for field in ["apiVersion", "kind", "metadata"] {
                    if !entries.iter().any(|(k, _)| k.key_text() == field) {
                        return Err(r.err(v, format!("an inline manifest needs `{field}` (or use `apply: {{file: PATH}}`)")));
                    }
                }
                Action::Apply(vec![v.to_value()])
            }
        },
        "await" => {
            let within = r.duration(r.required(v, "within", "`await`")?, "`within`")?;
            Action::Await {
                within,
                check: check(
                    r,
                    v,
                    &["target", "status", "job", "absent", "within"],
                    "`await`",
                )?,
            }
        }
        "expect" => Action::Expect(check(
            r,
            v,
            &["target", "status", "job", "absent"],
            "`expect`",
        )?),
        "patch" => {
            let entries = r.map(v, "`patch`")?;
            r.only(entries, &["target", "merge"], "`patch`")?;
            let merge = r.required(v, "merge", "`patch`")?;
            r.map(merge, "`merge`")?;
            Action::Patch {
                target: r.target(r.required(v, "target", "`patch`")?)?,
                merge: merge.to_value(),
            }
        }
        "delete" => Action::Delete(r.target(v)?),
        "advance" => Action::Advance(r.duration(v, "`advance`")?),
        "snapshot" => {
            let name = r.string(v, "`snapshot`")?;
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(r.err(v, "a snapshot name is letters, digits, - and _"));
            }
            Action::Snapshot(name)
        }
        "heal" => {
            let s = r.string(v, "`heal`")?;
            Action::Heal(if s == "all" {
                None
            } else {
                Some(fault_kind(r, v)?)
            })
        }
        _ => {
            let entries = r.map(v, "a fault")?;
            let kind = fault_kind(r, r.required(v, "kind", "a fault")?)?;
            let allowed = fault_fields(kind);
            for (k, _) in entries {
                let field = k.key_text();
                if !allowed.contains(&field.as_str()) {
                    return Err(r.err(
                        k,
                        format!(
                            "`{field}` is not a field of fault {}; valid fields: {}",
                            kind.name(),
                            allowed.join(", ")
                        ),
                    ));
                }
            }
            let count = v.get("count").map(|c| r.count(c, "`count`")).transpose()?;
            if count == Some(0) {
                return Err(r.err(v.get("count").unwrap(), "`count` must be at least 1"));
            }
            let terminal = match v.get("terminal") {
                None => None,
                Some(Node {
                    kind: Kind::Bool(b),
                    ..
                }) => Some(*b),
                Some(other) => return Err(r.err(other, "`terminal` must be true or false")),
            };
            let needs_target = allowed.contains(&"target");
            let target = v.get("target").map(|t| r.target(t)).transpose()?;
            if needs_target && target.is_none() {
                return Err(r.err(v, format!("fault {} needs `target`", kind.name())));
            }
            let image = v.get("image").map(|i| r.string(i, "`image`")).transpose()?;
            if kind == FaultKind::ImagePull && image.is_none() {
                return Err(r.err(v, "fault imagePull needs `image`"));
            }
            let uri = v.get("uri").map(|u| r.string(u, "`uri`")).transpose()?;
            let error = match v.get("error") {
                None if kind == FaultKind::ArtifactFetch => {
                    return Err(r.err(v, "fault artifactFetch needs `error`"));
                }
                None => None,
                Some(e) => {
                    let name = r.string(e, "`error`")?;
                    let found = ArtifactFailure::ALL.iter().find(|f| f.name() == name);
                    Some(*found.ok_or_else(|| {
                        let names: Vec<&str> =
                            ArtifactFailure::ALL.iter().map(|f| f.name()).collect();
                        r.err(
                            e,
                            format!("unknown error `{name}`; valid: {}", names.join(", ")),
                        )
                    })?)
                }
            };
            Action::Fault(Fault {
                kind,
                image,
                target,
                duration: v.get("for").map(|d| r.duration(d, "`for`")).transpose()?,
                count,
                terminal,
                uri,
                error,
            })
        }
    })
}
