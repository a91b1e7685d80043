//! Validation of FlinkDeployment and FlinkSessionJob, covering what the upstream operator's
//! DefaultValidator checks, plus a structural check against the CRD schema. Unlike upstream,
//! every problem is reported, not only the first. The same code backs `flink-operator
//! validate`, the reconciler (an invalid spec is refused and the last good one kept) and,
//! later, the admission webhook.
//!
//! One deliberate difference from upstream: `serviceAccount` is optional and defaults to
//! `flink` (see [`crate::crd::DEFAULT_SERVICE_ACCOUNT`]).

pub mod quantity;
pub mod schema;

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::config::{self, EffectiveConfig};
use crate::crd::{
    FlinkDeployment, FlinkDeploymentSpec, FlinkSessionJob, FlinkSessionJobSpec, JobState,
    KubernetesDeploymentMode, Resource, UpgradeMode,
};
use quantity::{parse_memory, parse_quantity};

/// One thing wrong, at a field path (`spec.job.parallelism`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn at(path: &str, message: impl Into<String>) -> Self {
        Problem {
            path: path.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// The service account Flink pods run as: the spec's, or `flink`.
pub fn effective_service_account(spec: &FlinkDeploymentSpec) -> &str {
    spec.service_account_or_default()
}

/// Configuration keys the operator owns; a user value would break it.
const FORBIDDEN_KEYS: [&str; 3] = [
    "kubernetes.namespace",
    "kubernetes.cluster-id",
    "high-availability.cluster-id",
];
const LOG_CONFIG_FILES: [&str; 2] = ["log4j-console.properties", "logback-console.xml"];

/// `metadata.name` as upstream allows it: a DNS label of at most 45 characters.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 45
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && (b.len() == 1 || b[b.len() - 1] != b'-')
}

fn flat_config(conf: Option<&crate::crd::FlinkConfiguration>) -> BTreeMap<String, String> {
    conf.map(|c| c.flatten()).unwrap_or_default()
}

/// Validates a FlinkDeployment; `last_reconciled` is the spec in force (for change rules).
pub fn validate_deployment(
    fd: &FlinkDeployment,
    last_reconciled: Option<&FlinkDeploymentSpec>,
    operator_defaults: &BTreeMap<String, String>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let spec = &fd.spec;
    let name = fd.metadata.name.as_deref().unwrap_or_default();
    if !valid_name(name) {
        out.push(Problem::at(
            "metadata.name",
            format!("'{name}' is not a valid name: lower case letters, digits and '-', starting with a letter, at most 45 characters"),
        ));
    }
    let own = flat_config(spec.flink_configuration.as_ref());
    let conf = EffectiveConfig::new(operator_defaults, &own);
    match spec.flink_version {
        None => out.push(Problem::at(
            "spec.flinkVersion",
            "Flink Version must be defined.",
        )),
        Some(v) if !v.is_supported() => out.push(Problem::at(
            "spec.flinkVersion",
            format!("{v:?} is not supported; the operator supports v1_15 and newer"),
        )),
        _ => {}
    }
    check_forbidden_keys(&own, &mut out);
    if conf.rollback_enabled() && !conf.ha_enabled() {
        out.push(Problem::at(
            &format!("spec.flinkConfiguration.{}", config::ROLLBACK_ENABLED),
            "rollback requires high availability (high-availability.type)",
        ));
    }
    if conf.get("kubernetes.operator.cluster.health-check.enabled") == Some("true")
        && !conf.jm_deployment_recovery()
    {
        out.push(Problem::at(
            "spec.flinkConfiguration.kubernetes.operator.cluster.health-check.enabled",
            "the cluster health check requires kubernetes.operator.jm-deployment-recovery.enabled",
        ));
    }
    if let Some(ingress) = &spec.ingress {
        match ingress.template.as_deref() {
            None | Some("") => out.push(Problem::at(
                "spec.ingress.template",
                "an ingress needs a template",
            )),
            Some(t) => {
                if let Err(e) = render_ingress_template(
                    t,
                    name,
                    fd.metadata.namespace.as_deref().unwrap_or("default"),
                ) {
                    out.push(Problem::at("spec.ingress.template", e));
                }
            }
        }
    }
    if let Some(logs) = &spec.log_configuration {
        for key in logs.keys() {
            if !LOG_CONFIG_FILES.contains(&key.as_str()) {
                out.push(Problem::at(
                    &format!("spec.logConfiguration.{key}"),
                    format!(
                        "unsupported log configuration file; use {}",
                        LOG_CONFIG_FILES.join(" or ")
                    ),
                ));
            }
        }
    }
    let tm_replicas = spec.task_manager.as_ref().and_then(|t| t.replicas);
    if let Some(job) = &spec.job {
        check_job(job, &conf, "spec.job", tm_replicas.is_some(), &mut out);
    }
    let jm = spec.job_manager.as_ref();
    let tm = spec.task_manager.as_ref();
    check_memory_defined(
        "spec.jobManager",
        jm.and_then(|j| j.resource.as_ref()),
        jm.and_then(|j| j.resources.as_ref()),
        &conf,
        "jobmanager",
        &mut out,
    );
    check_memory_defined(
        "spec.taskManager",
        tm.and_then(|t| t.resource.as_ref()),
        tm.and_then(|t| t.resources.as_ref()),
        &conf,
        "taskmanager",
        &mut out,
    );
    if let Some(jm) = jm {
        check_resources(
            "spec.jobManager",
            jm.resource.as_ref(),
            jm.resources.as_ref(),
            &mut out,
        );
        match jm.replicas {
            Some(r) if r < 1 => out.push(Problem::at(
                "spec.jobManager.replicas",
                "must be at least 1",
            )),
            Some(r) if r > 1 && !conf.ha_enabled() => out.push(Problem::at(
                "spec.jobManager.replicas",
                "more than one JobManager requires high availability (high-availability.type)",
            )),
            _ => {}
        }
    }
    if let Some(tm) = tm {
        check_resources(
            "spec.taskManager",
            tm.resource.as_ref(),
            tm.resources.as_ref(),
            &mut out,
        );
        if matches!(tm.replicas, Some(r) if r < 1) {
            out.push(Problem::at(
                "spec.taskManager.replicas",
                "must be at least 1",
            ));
        }
    }
    if let Some(window) = conf.get("job.autoscaler.metrics.window") {
        match crate::duration::parse_duration(window) {
            Err(e) => out.push(Problem::at(
                "spec.flinkConfiguration.job.autoscaler.metrics.window",
                e,
            )),
            Ok(w) if w < conf.reconcile_interval() => out.push(Problem::at(
                "spec.flinkConfiguration.job.autoscaler.metrics.window",
                "must not be shorter than kubernetes.operator.reconcile.interval",
            )),
            _ => {}
        }
    }
    if let Some(last) = last_reconciled {
        check_deployment_change(last, spec, &mut out);
    }
    out
}

fn check_forbidden_keys(own: &BTreeMap<String, String>, out: &mut Vec<Problem>) {
    for key in FORBIDDEN_KEYS {
        if own.contains_key(key) {
            out.push(Problem::at(
                &format!("spec.flinkConfiguration.{key}"),
                "is set by the operator and may not be configured",
            ));
        }
    }
}

/// Job rules shared by application deployments and session jobs.
fn check_job(
    job: &crate::crd::JobSpec,
    conf: &EffectiveConfig,
    path: &str,
    replicas_given: bool,
    out: &mut Vec<Problem>,
) {
    let mode = job.upgrade_mode();
    if mode != UpgradeMode::Stateless && conf.checkpoints_dir().is_none() {
        out.push(Problem::at(
            &format!("{path}.upgradeMode"),
            format!(
                "{} upgrades need checkpoints: set state.checkpoints.dir in flinkConfiguration",
                mode.as_str()
            ),
        ));
    }
    if conf.savepoints_dir().is_none() {
        let reason = if mode == UpgradeMode::Savepoint {
            Some(format!("{path}.upgradeMode: savepoint upgrades"))
        } else if job.savepoint_trigger_nonce.is_some() {
            Some(format!("{path}.savepointTriggerNonce: manual savepoints"))
        } else if conf.periodic_savepoint_interval().is_some() {
            Some("spec.flinkConfiguration.kubernetes.operator.periodic.savepoint.interval: periodic savepoints".to_string())
        } else if conf
            .get("kubernetes.operator.job.upgrade.last-state.max.allowed.checkpoint.age")
            .is_some()
        {
            Some("spec.flinkConfiguration.kubernetes.operator.job.upgrade.last-state.max.allowed.checkpoint.age: a maximum checkpoint age".to_string())
        } else {
            None
        };
        if let Some(reason) = reason {
            let (field, what) = reason.split_once(": ").unwrap();
            out.push(Problem::at(field, format!("{what} need a savepoint directory: set state.savepoints.dir in flinkConfiguration")));
        }
    }
    match job.parallelism {
        Some(p) if p < 1 => out.push(Problem::at(
            &format!("{path}.parallelism"),
            "must be at least 1",
        )),
        None if !replicas_given => out.push(Problem::at(
            &format!("{path}.parallelism"),
            "must be set (or spec.taskManager.replicas)",
        )),
        _ => {}
    }
    if job.savepoint_redeploy_nonce.is_some()
        && job
            .initial_savepoint_path
            .as_deref()
            .unwrap_or("")
            .is_empty()
    {
        out.push(Problem::at(
            &format!("{path}.savepointRedeployNonce"),
            "needs job.initialSavepointPath to redeploy from",
        ));
    }
}

fn check_memory_defined(
    path: &str,
    resource: Option<&Resource>,
    resources: Option<&k8s_openapi::api::core::v1::ResourceRequirements>,
    conf: &EffectiveConfig,
    component: &str,
    out: &mut Vec<Problem>,
) {
    let in_resource = resource.and_then(|r| r.memory.as_ref()).is_some();
    let in_resources = resources
        .map(|r| {
            r.requests
                .as_ref()
                .map(|m| m.contains_key("memory"))
                .unwrap_or(false)
                || r.limits
                    .as_ref()
                    .map(|m| m.contains_key("memory"))
                    .unwrap_or(false)
        })
        .unwrap_or(false);
    let in_config = [
        format!("{component}.memory.process.size"),
        format!("{component}.memory.flink.size"),
    ]
    .iter()
    .any(|k| conf.get(k).is_some())
        || (component == "jobmanager" && conf.get("jobmanager.memory.heap.size").is_some())
        || (component == "taskmanager"
            && conf.get("taskmanager.memory.task.heap.size").is_some()
            && conf.get("taskmanager.memory.managed.size").is_some());
    if !(in_resource || in_resources || in_config) {
        out.push(Problem::at(
            &format!("{path}.resource.memory"),
            format!("memory must be defined (resource.memory, resources.requests.memory, or {component}.memory.process.size)"),
        ));
    }
}

fn check_resources(
    path: &str,
    resource: Option<&Resource>,
    resources: Option<&k8s_openapi::api::core::v1::ResourceRequirements>,
    out: &mut Vec<Problem>,
) {
    if let Some(r) = resource {
        if matches!(r.cpu, Some(c) if c <= 0.0 || !c.is_finite()) {
            out.push(Problem::at(
                &format!("{path}.resource.cpu"),
                "must be greater than 0",
            ));
        }
        if let Some(m) = &r.memory {
            if let Err(e) = parse_memory(m) {
                out.push(Problem::at(&format!("{path}.resource.memory"), e));
            }
        }
        if let Some(e) = &r.ephemeral_storage {
            if let Err(e) = parse_quantity(e) {
                out.push(Problem::at(&format!("{path}.resource.ephemeralStorage"), e));
            }
        }
    }
    let Some(r) = resources else { return };
    let mut parsed: BTreeMap<(&str, String), f64> = BTreeMap::new();
    for (kind, map) in [("requests", &r.requests), ("limits", &r.limits)] {
        for (name, q) in map.iter().flatten() {
            let field = format!("{path}.resources.{kind}.{name}");
            match parse_quantity(&q.0) {
                Ok(v) if v < 0.0 => out.push(Problem::at(&field, "must not be negative")),
                Ok(v) if v == 0.0 && (name == "cpu" || name == "memory") => {
                    out.push(Problem::at(&field, "must be greater than 0"))
                }
                Ok(v) => {
                    parsed.insert((kind, name.clone()), v);
                }
                Err(e) => out.push(Problem::at(&field, e)),
            }
        }
    }
    for name in ["cpu", "memory", "ephemeral-storage"] {
        if let (Some(req), Some(lim)) = (
            parsed.get(&("requests", name.to_string())),
            parsed.get(&("limits", name.to_string())),
        ) {
            if req > lim {
                out.push(Problem::at(
                    &format!("{path}.resources.requests.{name}"),
                    "must not exceed resources.limits",
                ));
            }
        }
    }
}

fn check_deployment_change(
    last: &FlinkDeploymentSpec,
    new: &FlinkDeploymentSpec,
    out: &mut Vec<Problem>,
) {
    if last.job.is_some() != new.job.is_some() {
        out.push(Problem::at("spec.job", "cannot switch between a session cluster and an application deployment; create a new resource"));
    }
    let mode = |s: &FlinkDeploymentSpec| s.mode.unwrap_or(KubernetesDeploymentMode::Native);
    if mode(last) != mode(new) {
        out.push(Problem::at(
            "spec.mode",
            "cannot change between native and standalone mode",
        ));
    }
    let suspended_stateful = last
        .job
        .as_ref()
        .map(|j| {
            j.desired_state() == JobState::Suspended && j.upgrade_mode() == UpgradeMode::LastState
        })
        .unwrap_or(false);
    if suspended_stateful && last.flink_version != new.flink_version {
        out.push(Problem::at(
            "spec.flinkVersion",
            "cannot change the Flink version of a job suspended in last-state mode; resume it first or use savepoint mode",
        ));
    }
}

/// Renders an ingress template (`{{name}}`, `{{namespace}}`) and checks the result.
pub fn render_ingress_template(
    template: &str,
    name: &str,
    namespace: &str,
) -> Result<String, String> {
    let rendered = template
        .replace("{{name}}", name)
        .replace("{{namespace}}", namespace);
    if let Some(start) = rendered.find("{{") {
        let end = rendered[start..]
            .find("}}")
            .map(|e| start + e + 2)
            .unwrap_or(rendered.len());
        return Err(format!(
            "unknown placeholder {} (use {{{{name}}}} and {{{{namespace}}}})",
            &rendered[start..end]
        ));
    }
    if rendered.chars().any(char::is_whitespace) {
        return Err(format!("'{rendered}' is not a valid host or path"));
    }
    let host = rendered.split('/').next().unwrap_or("");
    let host_ok = host.is_empty()
        || host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if !host_ok {
        return Err(format!("'{host}' is not a valid host name"));
    }
    Ok(rendered)
}

/// Validates a FlinkSessionJob; `session` is its FlinkDeployment when known.
pub fn validate_session_job(
    job: &FlinkSessionJob,
    session: Option<&FlinkDeployment>,
    last_reconciled: Option<&FlinkSessionJobSpec>,
    operator_defaults: &BTreeMap<String, String>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let name = job.metadata.name.as_deref().unwrap_or_default();
    if !valid_name(name) {
        out.push(Problem::at(
            "metadata.name",
            format!("'{name}' is not a valid name"),
        ));
    }
    match job.spec.deployment_name.as_deref() {
        None | Some("") => out.push(Problem::at(
            "spec.deploymentName",
            "the session cluster (a FlinkDeployment without job) must be named",
        )),
        Some(d) if !valid_name(d) => out.push(Problem::at(
            "spec.deploymentName",
            format!("'{d}' is not a valid FlinkDeployment name"),
        )),
        _ => {}
    }
    if let Some(last) = last_reconciled {
        if last.deployment_name != job.spec.deployment_name {
            out.push(Problem::at(
                "spec.deploymentName",
                "cannot be changed; create a new FlinkSessionJob",
            ));
        }
    }
    let own = flat_config(job.spec.flink_configuration.as_ref());
    check_forbidden_keys(&own, &mut out);
    let mut merged = session
        .map(|s| flat_config(s.spec.flink_configuration.as_ref()))
        .unwrap_or_default();
    merged.extend(own);
    let conf = EffectiveConfig::new(operator_defaults, &merged);
    match &job.spec.job {
        None => out.push(Problem::at("spec.job", "a session job needs a job")),
        Some(j) => check_job(j, &conf, "spec.job", false, &mut out),
    }
    if let Some(s) = session {
        if s.spec.job.is_some() {
            out.push(Problem::at(
                "spec.deploymentName",
                format!(
                    "{} is an application deployment, not a session cluster",
                    s.metadata.name.as_deref().unwrap_or("")
                ),
            ));
        }
    }
    out
}

/// What `validate_manifest_text` found in one file.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    /// One line each: `FILE: KIND/NAME: field.path: message` or `FILE:LINE:COLUMN: message`.
    pub problems: Vec<String>,
    /// Documents that were skipped, and why.
    pub notes: Vec<String>,
    /// FlinkDeployment and FlinkSessionJob documents seen.
    pub resources: usize,
}

/// `FILE:LINE:COLUMN: message` from a YAML parser error.
pub fn yaml_error(file: &str, error: &serde_saphyr::Error) -> String {
    let text = error.to_string();
    let first = text
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ");
    if let Some(rest) = first.strip_prefix("line ") {
        let mut parts = rest.splitn(2, ": ");
        let position = parts.next().unwrap_or("");
        let message = parts.next().unwrap_or("");
        if let Some((line, column)) = position.split_once(" column ") {
            return format!("{file}:{line}:{column}: {message}");
        }
    }
    format!("{file}: {first}")
}

/// The OpenAPI schema of each kind, generated once: it is a constant of the build.
fn crd_schemas() -> &'static BTreeMap<String, Value> {
    static SCHEMAS: std::sync::OnceLock<BTreeMap<String, Value>> = std::sync::OnceLock::new();
    SCHEMAS.get_or_init(|| {
        crate::crd::crds()
            .into_iter()
            .map(|c| {
                let schema = serde_json::to_value(&c.spec.versions[0].schema).unwrap_or_default();
                (c.spec.names.kind.clone(), schema["openAPIV3Schema"].clone())
            })
            .collect()
    })
}

/// Validates every document of a multi-document manifest file.
pub fn validate_manifest_text(file: &str, text: &str) -> Report {
    let mut report = Report::default();
    let docs: Vec<Value> = match serde_saphyr::from_multiple(text) {
        Ok(d) => d,
        Err(e) => {
            report.problems.push(yaml_error(file, &e));
            return report;
        }
    };
    let crds = crd_schemas();
    // Session clusters defined in the same file, for their session jobs.
    let mut deployments: BTreeMap<String, FlinkDeployment> = BTreeMap::new();
    let mut jobs = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let number = i + 1;
        let Value::Object(map) = doc else {
            report.problems.push(format!(
                "{file}: document {number}: a Kubernetes object must be a mapping"
            ));
            continue;
        };
        let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
        let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let name = doc["metadata"]["name"].as_str().unwrap_or("");
        let Some(schema) = crds
            .get(kind)
            .filter(|_| api_version == crate::crd::API_VERSION)
        else {
            let what = if kind.is_empty() {
                "no kind".to_string()
            } else {
                format!("{api_version} {kind}")
            };
            report.notes.push(format!(
                "{file}: document {number} ({what}) skipped: not a Flink resource"
            ));
            continue;
        };
        report.resources += 1;
        let label = format!(
            "{file}: {kind}/{}",
            if name.is_empty() { "?" } else { name }
        );
        let mut problems = Vec::new();
        if name.is_empty() {
            problems.push(Problem::at("metadata.name", "is required"));
        }
        for part in ["spec", "status"] {
            if let Some(v) = map.get(part) {
                schema::check(v, &schema["properties"][part], part, &mut problems);
            }
        }
        if map.get("spec").is_none() {
            problems.push(Problem::at("spec", "is required"));
        }
        for key in map.keys() {
            if !["apiVersion", "kind", "metadata", "spec", "status"].contains(&key.as_str()) {
                problems.push(Problem::at(key, "unknown field"));
            }
        }
        if problems.is_empty() {
            match kind {
                "FlinkDeployment" => match serde_json::from_value::<FlinkDeployment>(doc.clone()) {
                    Ok(fd) => {
                        problems.extend(validate_deployment(&fd, None, &BTreeMap::new()));
                        deployments.insert(name.to_string(), fd);
                    }
                    Err(e) => problems.push(Problem::at("", e.to_string())),
                },
                _ => match serde_json::from_value::<FlinkSessionJob>(doc.clone()) {
                    Ok(job) => jobs.push((label.clone(), job)),
                    Err(e) => problems.push(Problem::at("", e.to_string())),
                },
            }
        }
        report
            .problems
            .extend(problems.iter().map(|p| format!("{label}: {p}")));
    }
    for (label, job) in jobs {
        let session = job
            .spec
            .deployment_name
            .as_ref()
            .and_then(|d| deployments.get(d));
        for p in validate_session_job(&job, session, None, &BTreeMap::new()) {
            report.problems.push(format!("{label}: {p}"));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("basic-example"));
        assert!(valid_name("a"));
        assert!(!valid_name("Basic"));
        assert!(!valid_name("-a"));
        assert!(!valid_name("a-"));
        assert!(!valid_name("1a"));
        assert!(!valid_name(&"a".repeat(46)));
    }

    #[test]
    fn ingress_templates() {
        assert_eq!(
            render_ingress_template("{{name}}.{{namespace}}.flink.k8s.io", "a", "ns").unwrap(),
            "a.ns.flink.k8s.io"
        );
        assert_eq!(
            render_ingress_template("/{{namespace}}/{{name}}(/|$)(.*)", "a", "ns").unwrap(),
            "/ns/a(/|$)(.*)"
        );
        assert!(render_ingress_template("{{nam}}.example.com", "a", "ns")
            .unwrap_err()
            .contains("{{nam}}"));
        assert!(render_ingress_template("bad host.example.com", "a", "ns").is_err());
    }
}
