//! A scenario written back as a scenario file (the contract in `scenarios/README.md`), so a
//! run the explorer found can be replayed with `flink-sim run` and kept in `scenarios/`.

use std::fmt::Write;

use serde_json::Value;

use crate::scenario::{Action, Check, Scenario, Target};
use flink_operator::duration::format_duration;

/// The scenario as YAML; `comment` lines go first, as `#` comments.
pub fn to_yaml(s: &Scenario, comment: &str) -> String {
    let mut out = String::new();
    for line in comment.lines() {
        let _ = writeln!(out, "# {line}");
    }
    let _ = writeln!(out, "name: {}", quote(&s.name));
    if let Some(d) = &s.description {
        let _ = writeln!(out, "description: {}", quote(d));
    }
    let _ = writeln!(out, "seed: {}", s.seed);
    if !s.operator.is_empty() {
        out.push_str("operator:\n");
        for (k, v) in &s.operator {
            let _ = writeln!(out, "  {}: {}", key(k), quote(v));
        }
    }
    let c = &s.cluster;
    let d = crate::scenario::ClusterSettings::default();
    let cluster: Vec<(&str, std::time::Duration, std::time::Duration)> = vec![
        ("podStartup", c.pod_startup, d.pod_startup),
        ("jobStartup", c.job_startup, d.job_startup),
        (
            "checkpointInterval",
            c.checkpoint_interval,
            d.checkpoint_interval,
        ),
        (
            "savepointDuration",
            c.savepoint_duration,
            d.savepoint_duration,
        ),
    ];
    if cluster.iter().any(|(_, v, def)| v != def) {
        out.push_str("cluster:\n");
        for (k, v, def) in cluster {
            if v != def {
                let _ = writeln!(out, "  {k}: {}", format_duration(v));
            }
        }
    }
    out.push_str("steps:\n");
    for step in &s.steps {
        out.push_str(&step_yaml(&step.action));
    }
    out
}

fn target(t: &Target) -> String {
    if t.namespace == "default" {
        format!("{}/{}", t.kind, t.name)
    } else {
        format!("{}/{}/{}", t.kind, t.namespace, t.name)
    }
}

fn step_yaml(a: &Action) -> String {
    match a {
        Action::Apply(docs) => docs
            .iter()
            .map(|d| format!("  - apply:\n{}", block(d, 6)))
            .collect(),
        Action::Patch { target: t, merge } => format!(
            "  - patch: {{target: {}, merge: {}}}\n",
            target(t),
            flow(merge)
        ),
        Action::Delete(t) => format!("  - delete: {}\n", target(t)),
        Action::Advance(d) => format!("  - advance: {}\n", format_duration(*d)),
        Action::Heal(None) => "  - heal: all\n".into(),
        Action::Heal(Some(k)) => format!("  - heal: {}\n", k.name()),
        Action::Snapshot(n) => format!("  - snapshot: {n}\n"),
        Action::Fault(f) => {
            let mut parts = vec![format!("kind: {}", f.kind.name())];
            if let Some(t) = &f.target {
                parts.push(format!("target: {}", target(t)));
            }
            if let Some(i) = &f.image {
                parts.push(format!("image: {}", quote(i)));
            }
            if let Some(d) = f.duration {
                parts.push(format!("for: {}", format_duration(d)));
            }
            if let Some(c) = f.count {
                parts.push(format!("count: {c}"));
            }
            if let Some(t) = f.terminal {
                parts.push(format!("terminal: {t}"));
            }
            if let Some(u) = &f.uri {
                parts.push(format!("uri: {}", quote(u)));
            }
            if let Some(e) = f.error {
                parts.push(format!("error: {}", e.name()));
            }
            format!("  - fault: {{{}}}\n", parts.join(", "))
        }
        Action::Await { check, within } => format!(
            "  - await: {{{}, within: {}}}\n",
            check_fields(check),
            format_duration(*within)
        ),
        Action::Expect(check) => format!("  - expect: {{{}}}\n", check_fields(check)),
    }
}

fn check_fields(c: &Check) -> String {
    let mut parts = vec![format!("target: {}", target(&c.target))];
    if let Some(s) = &c.status {
        parts.push(format!("status: {}", flow(s)));
    }
    if let Some(j) = &c.job {
        let mut fields = Vec::new();
        if let Some(s) = &j.state {
            fields.push(format!("state: {s}"));
        }
        if let Some(p) = j.parallelism {
            fields.push(format!("parallelism: {p}"));
        }
        if let Some(r) = &j.restored_from {
            fields.push(format!("restoredFrom: {r}"));
        }
        if let Some(n) = j.running_instances {
            fields.push(format!("runningInstances: {n}"));
        }
        parts.push(format!("job: {{{}}}", fields.join(", ")));
    }
    if c.absent {
        parts.push("absent: true".into());
    }
    parts.join(", ")
}

/// A key as plain YAML when it is safe, else quoted.
fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '$'))
        && !k.starts_with(['-', '$'])
        && !matches!(
            k,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        k.to_string()
    } else {
        quote(k)
    }
}

/// A string as a double-quoted scalar (JSON's escapes are YAML's too).
fn quote(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        other => other.to_string(),
    }
}

/// A value in flow style: `{a: 1, b: "x"}`.
fn flow(v: &Value) -> String {
    match v {
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", key(k), flow(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Array(a) => format!("[{}]", a.iter().map(flow).collect::<Vec<_>>().join(", ")),
        other => scalar(other),
    }
}

/// A mapping in block style at `indent`, small leaves in flow style.
fn block(v: &Value, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                match v {
                    Value::Object(inner) if !inner.is_empty() && flow(v).len() > 60 => {
                        let _ = writeln!(out, "{pad}{}:", key(k));
                        out.push_str(&block(v, indent + 2));
                    }
                    _ => {
                        let _ = writeln!(out, "{pad}{}: {}", key(k), flow(v));
                    }
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", flow(other));
        }
    }
    out
}
