//! The semantic rules: what upstream's `DefaultValidator` checks, reporting every problem
//! instead of the first one.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ResourceRequirements;

use super::quantity::{parse_memory, parse_quantity};
use super::Problem;
use crate::config::{self, EffectiveConfig};
use crate::crd::{
    FlinkConfiguration, FlinkDeployment, FlinkDeploymentSpec, FlinkSessionJob, FlinkSessionJobSpec,
    JobSpec, JobState, KubernetesDeploymentMode, Resource, UpgradeMode,
};
use crate::duration::{format_duration, parse_duration};

/// Configuration keys the operator sets itself; a user value would break it.
pub const FORBIDDEN_KEYS: [&str; 3] = [
    "kubernetes.namespace",
    "kubernetes.cluster-id",
    "high-availability.cluster-id",
];

/// The only files `spec.logConfiguration` may replace.
pub const LOG_CONFIG_FILES: [&str; 2] = ["log4j-console.properties", "logback-console.xml"];

pub const HEALTH_CHECK_ENABLED: &str = "kubernetes.operator.cluster.health-check.enabled";
pub const MAX_CHECKPOINT_AGE: &str =
    "kubernetes.operator.job.upgrade.last-state.max.allowed.checkpoint.age";
pub const ALLOWED_JAR_SCHEMES: &str = "kubernetes.operator.user.artifacts.allowed-schemes";
pub const DISALLOW_RESTRICTED_HOSTS: &str =
    "kubernetes.operator.user.artifacts.disallow-restricted-hosts";
pub const AUTOSCALER_ENABLED: &str = "job.autoscaler.enabled";
pub const AUTOSCALER_METRICS_WINDOW: &str = "job.autoscaler.metrics.window";
/// Upstream's default `job.autoscaler.metrics.window`.
pub const DEFAULT_METRICS_WINDOW: Duration = Duration::from_secs(15 * 60);

/// `metadata.name` of a FlinkDeployment (and `deploymentName` of a session job) as upstream
/// allows it: `[a-z]([-a-z\d]{0,43}[a-z\d])?` — at most 45 characters, because the operator
/// derives longer names (services, config maps) from it.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 45
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-'
}

/// A DNS-1123 subdomain (what the API server requires of any object name): at most 253
/// characters, dot-separated labels of lower case letters, digits and `-`.
pub fn valid_object_name(name: &str) -> bool {
    name.len() <= 253 && !name.is_empty() && name.split('.').all(valid_dns_label)
}

/// A DNS-1123 label (namespaces): at most 63 characters, lower case letters, digits and `-`,
/// starting and ending with a letter or digit.
pub fn valid_dns_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// The service account the Flink pods of a deployment run as.
///
/// Deliberate difference from upstream: upstream refuses a FlinkDeployment without
/// `spec.serviceAccount`; this operator does not require it and uses `flink` (the account the
/// Helm chart creates for Flink pods, [`crate::crd::DEFAULT_SERVICE_ACCOUNT`]) when the field is
/// missing or empty. Validation therefore never reports a missing service account.
pub fn effective_service_account(spec: &FlinkDeploymentSpec) -> &str {
    spec.service_account_or_default()
}

fn conf_path(key: &str) -> String {
    format!("spec.flinkConfiguration.{key}")
}

fn is_true(conf: &EffectiveConfig, key: &str) -> bool {
    conf.get(key)
        .map(|v| v.trim().eq_ignore_ascii_case("true"))
        .unwrap_or(false)
}

/// Validates a FlinkDeployment against upstream's rules, returning every problem found.
///
/// `last_reconciled` is the spec currently in force (for the spec-change rules), `None` before
/// the first deployment. `operator_defaults` is the operator's configuration
/// (`kubernetes.operator.reconcile.interval`, default Flink options…), which
/// `spec.flinkConfiguration` overrides.
pub fn validate_deployment(
    fd: &FlinkDeployment,
    last_reconciled: Option<&FlinkDeploymentSpec>,
    operator_defaults: &BTreeMap<String, String>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let spec = &fd.spec;
    let name = fd.metadata.name.as_deref().unwrap_or_default();
    check_deployment_name("metadata.name", name, &mut out);
    let own = FlinkConfiguration::flat_of(spec.flink_configuration.as_ref());
    let conf = EffectiveConfig::with_shared(operator_defaults, own.clone());

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
            &conf_path(config::ROLLBACK_ENABLED),
            "rollback requires high availability (high-availability.type)",
        ));
    }
    if is_true(&conf, HEALTH_CHECK_ENABLED) && !conf.jm_deployment_recovery() {
        out.push(Problem::at(
            &conf_path(HEALTH_CHECK_ENABLED),
            format!(
                "the cluster health check requires JobManager deployment recovery ({} must not be false)",
                config::JM_DEPLOYMENT_RECOVERY
            ),
        ));
    }
    if let Some(ingress) = &spec.ingress {
        match ingress.template.as_deref().map(str::trim) {
            None | Some("") => out.push(Problem::at(
                "spec.ingress.template",
                "an ingress needs a template, e.g. {{name}}.{{namespace}}.example.com or /{{namespace}}/{{name}}(/|$)(.*)",
            )),
            Some(t) => {
                let namespace = fd.metadata.namespace.as_deref().unwrap_or("default");
                if let Err(e) = render_ingress_template(t, name, namespace) {
                    out.push(Problem::at("spec.ingress.template", e));
                }
            }
        }
    }
    for key in spec.log_configuration.iter().flat_map(|l| l.keys()) {
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

    let tm = spec.task_manager.as_ref();
    let jm = spec.job_manager.as_ref();
    if let Some(job) = &spec.job {
        check_job_config(job, &conf, "spec.job", &mut out);
        check_job_spec(job, tm.and_then(|t| t.replicas).is_some(), &mut out);
    }
    check_memory_defined(
        "spec.jobManager",
        jm.and_then(|j| j.resource.as_ref()),
        jm.and_then(|j| j.resources.as_ref()),
        &conf,
        "jobmanager",
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
    check_memory_defined(
        "spec.taskManager",
        tm.and_then(|t| t.resource.as_ref()),
        tm.and_then(|t| t.resources.as_ref()),
        &conf,
        "taskmanager",
        &mut out,
    );
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
    check_autoscaler(&conf, &mut out);
    if let Some(last) = last_reconciled {
        check_deployment_change(last, spec, &mut out);
    }
    dedup(out)
}

fn check_deployment_name(path: &str, name: &str, out: &mut Vec<Problem>) {
    if name.is_empty() {
        out.push(Problem::at(path, "is required"));
    } else if !valid_name(name) {
        out.push(Problem::at(
            path,
            format!("'{name}' is not a valid name: lower case letters, digits and '-', starting with a letter, ending with a letter or digit, at most 45 characters"),
        ));
    }
}

fn check_forbidden_keys(own: &crate::config::FlatConfig, out: &mut Vec<Problem>) {
    for key in FORBIDDEN_KEYS {
        if own.contains_key(key) {
            out.push(Problem::at(
                &conf_path(key),
                "is set by the operator and may not be configured",
            ));
        }
    }
}

/// Job rules that depend on the effective configuration (deployment, or session cluster plus
/// session job).
fn check_job_config(job: &JobSpec, conf: &EffectiveConfig, path: &str, out: &mut Vec<Problem>) {
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
    if conf.savepoints_dir().is_some() {
        return;
    }
    let periodic = conf
        .get(config::PERIODIC_SAVEPOINT_INTERVAL)
        .filter(|v| parse_duration(v).map(|d| !d.is_zero()).unwrap_or(true));
    let need = if mode == UpgradeMode::Savepoint {
        Some((format!("{path}.upgradeMode"), "savepoint upgrades"))
    } else if job.savepoint_trigger_nonce.is_some() {
        Some((format!("{path}.savepointTriggerNonce"), "manual savepoints"))
    } else if periodic.is_some() {
        Some((
            conf_path(config::PERIODIC_SAVEPOINT_INTERVAL),
            "periodic savepoints",
        ))
    } else if conf.get(MAX_CHECKPOINT_AGE).is_some() {
        Some((
            conf_path(MAX_CHECKPOINT_AGE),
            "last-state upgrades with a maximum checkpoint age",
        ))
    } else {
        None
    };
    if let Some((field, what)) = need {
        out.push(Problem::at(
            &field,
            format!(
                "{what} need a savepoint directory: set state.savepoints.dir in flinkConfiguration"
            ),
        ));
    }
}

/// Job rules that need no configuration. `replicas_given`: `spec.taskManager.replicas` is set,
/// in which case upstream derives the parallelism and does not require `job.parallelism`.
fn check_job_spec(job: &JobSpec, replicas_given: bool, out: &mut Vec<Problem>) {
    if !replicas_given {
        match job.parallelism {
            Some(p) if p < 1 => out.push(Problem::at("spec.job.parallelism", "must be at least 1")),
            None => out.push(Problem::at(
                "spec.job.parallelism",
                "must be set (at least 1), or spec.taskManager.replicas",
            )),
            _ => {}
        }
    }
    if job.savepoint_redeploy_nonce.is_some()
        && job
            .initial_savepoint_path
            .as_deref()
            .unwrap_or("")
            .trim()
            .is_empty()
    {
        out.push(Problem::at(
            "spec.job.savepointRedeployNonce",
            "needs a non-empty spec.job.initialSavepointPath to redeploy from",
        ));
    }
}

fn check_memory_defined(
    path: &str,
    resource: Option<&Resource>,
    resources: Option<&ResourceRequirements>,
    conf: &EffectiveConfig,
    component: &str,
    out: &mut Vec<Problem>,
) {
    let in_resource = resource
        .and_then(|r| r.memory.as_deref())
        .map(|m| !m.trim().is_empty())
        .unwrap_or(false);
    let in_resources = resources
        .map(|r| {
            [&r.requests, &r.limits].iter().any(|m| {
                m.as_ref()
                    .map(|m| m.contains_key("memory"))
                    .unwrap_or(false)
            })
        })
        .unwrap_or(false);
    if in_resource || in_resources {
        return; // (before the configuration keys are spelled out: every reconcile validates)
    }
    let has = |suffix: &str| conf.get(&format!("{component}.{suffix}")).is_some();
    // What Flink's process-memory utilities accept: a total size, or the legacy heap size, or
    // (TaskManager) explicit heap and managed memory.
    let in_config = has("memory.process.size")
        || has("memory.flink.size")
        || has("heap.size")
        || (component == "jobmanager" && has("memory.heap.size"))
        || (component == "taskmanager"
            && has("memory.task.heap.size")
            && has("memory.managed.size"));
    if !in_config {
        out.push(Problem::at(
            &format!("{path}.resource.memory"),
            format!(
                "memory must be defined ({path}.resource.memory, {path}.resources.requests.memory, or {component}.memory.process.size in flinkConfiguration)"
            ),
        ));
    }
}

fn check_resources(
    path: &str,
    resource: Option<&Resource>,
    resources: Option<&ResourceRequirements>,
    out: &mut Vec<Problem>,
) {
    if let Some(r) = resource {
        if let Some(cpu) = r.cpu {
            if !(cpu > 0.0 && cpu.is_finite()) {
                out.push(Problem::at(
                    &format!("{path}.resource.cpu"),
                    "must be greater than 0",
                ));
            }
        }
        if let Some(m) = &r.memory {
            if let Err(e) = parse_memory(m) {
                out.push(Problem::at(&format!("{path}.resource.memory"), e));
            }
        }
        if let Some(s) = &r.ephemeral_storage {
            match parse_quantity(s) {
                Err(e) => out.push(Problem::at(&format!("{path}.resource.ephemeralStorage"), e)),
                Ok(v) if v < 0.0 => out.push(Problem::at(
                    &format!("{path}.resource.ephemeralStorage"),
                    "must not be negative",
                )),
                Ok(_) => {}
            }
        }
    }
    let Some(r) = resources else { return };
    // Parsed amounts, for the request <= limit rule.
    let mut amounts: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    for (section, map) in [("requests", &r.requests), ("limits", &r.limits)] {
        for (name, q) in map.iter().flatten() {
            let field = format!("{path}.resources.{section}.{name}");
            let parsed = match name.as_str() {
                // As upstream: a Flink memory size first (2048m is 2 GiB), then a quantity.
                "memory" => parse_memory(&q.0).map(|b| b as f64),
                "cpu" => parse_quantity(&q.0).and_then(|v| {
                    if v > 0.0 {
                        Ok(v)
                    } else {
                        Err(format!("'{}' must be greater than 0", q.0))
                    }
                }),
                _ => parse_quantity(&q.0).and_then(|v| {
                    if v >= 0.0 {
                        Ok(v)
                    } else {
                        Err(format!("'{}' must not be negative", q.0))
                    }
                }),
            };
            match parsed {
                Ok(v) => {
                    amounts.insert((section, name.as_str()), v);
                }
                Err(e) => out.push(Problem::at(&field, e)),
            }
        }
    }
    for ((section, name), request) in &amounts {
        if *section != "requests" {
            continue;
        }
        if let Some(limit) = amounts.get(&("limits", name)) {
            if request > limit {
                let text = |s: &str| {
                    let map = if s == "requests" {
                        &r.requests
                    } else {
                        &r.limits
                    };
                    map.as_ref()
                        .and_then(|m| m.get(*name))
                        .map(|q| q.0.clone())
                        .unwrap_or_default()
                };
                out.push(Problem::at(
                    &format!("{path}.resources.requests.{name}"),
                    format!(
                        "request {} must not exceed the limit {}",
                        text("requests"),
                        text("limits")
                    ),
                ));
            }
        }
    }
}

/// `job.autoscaler.*`: the options upstream's AutoscalerValidator range-checks (when the
/// autoscaler is enabled), and the metric window against the reconcile interval (when the
/// autoscaler is enabled or the window is given).
fn check_autoscaler(conf: &EffectiveConfig, out: &mut Vec<Problem>) {
    // The current key first, then upstream's fallback keys.
    let lookup = |key: &str| -> Option<(String, String)> {
        [
            format!("job.autoscaler.{key}"),
            format!("kubernetes.operator.job.autoscaler.{key}"),
        ]
        .into_iter()
        .find_map(|k| conf.get(&k).map(|v| (k.clone(), v.trim().to_string())))
    };
    let enabled = lookup("enabled")
        .map(|(_, v)| v.eq_ignore_ascii_case("true"))
        .unwrap_or(false);
    let window = lookup("metrics.window");
    if enabled || window.is_some() {
        let (key, parsed) = match &window {
            Some((k, v)) => (k.clone(), parse_duration(v)),
            None => (
                AUTOSCALER_METRICS_WINDOW.to_string(),
                Ok(DEFAULT_METRICS_WINDOW),
            ),
        };
        match parsed {
            Err(e) => out.push(Problem::at(&conf_path(&key), e)),
            Ok(w) if w < conf.reconcile_interval() => out.push(Problem::at(
                &conf_path(&key),
                format!(
                    "the autoscaler metric window ({}) must not be shorter than the reconcile interval ({} = {}): the autoscaler needs two samples per window",
                    format_duration(w),
                    config::RECONCILE_INTERVAL,
                    format_duration(conf.reconcile_interval())
                ),
            )),
            _ => {}
        }
    }
    if !enabled {
        return;
    }
    let number = |key: &str, out: &mut Vec<Problem>| -> Option<(String, f64)> {
        let (k, v) = lookup(key)?;
        match v.parse::<f64>() {
            Ok(n) if n.is_finite() => Some((k, n)),
            _ => {
                out.push(Problem::at(
                    &conf_path(&k),
                    format!("'{v}' is not a number"),
                ));
                None
            }
        }
    };
    let target_entry =
        number("utilization.target", out).or_else(|| number("target.utilization", out));
    let target = target_entry.as_ref().map(|(_, v)| *v).unwrap_or(0.7);
    let ranges: [(&str, f64, f64); 7] = [
        ("scale-down.max-factor", 0.0, f64::INFINITY),
        ("scale-up.max-factor", 0.0, f64::INFINITY),
        ("target.utilization.boundary", 0.0, f64::INFINITY),
        ("utilization.max", target, 1.0),
        ("utilization.min", 0.0, target),
        ("memory.gc-pressure.threshold", 0.0, 1.0),
        ("memory.heap-usage.threshold", 0.0, 1.0),
    ];
    let mut checked: Vec<(String, f64, f64, f64)> = Vec::new();
    if let Some((k, v)) = target_entry {
        checked.push((k, v, 0.0, 1.0));
    }
    for (key, min, max) in ranges {
        if let Some((k, v)) = number(key, out) {
            checked.push((k, v, min, max));
        }
    }
    for (k, v, min, max) in checked {
        if v < min || v > max {
            let max = if max.is_infinite() {
                "+Infinity".to_string()
            } else {
                max.to_string()
            };
            out.push(Problem::at(
                &conf_path(&k),
                format!("{v} is out of range: must be within [{min}, {max}]"),
            ));
        }
    }
}

fn check_deployment_change(
    last: &FlinkDeploymentSpec,
    new: &FlinkDeploymentSpec,
    out: &mut Vec<Problem>,
) {
    match (last.job.is_some(), new.job.is_some()) {
        (false, true) => out.push(Problem::at(
            "spec.job",
            "cannot switch from a session cluster to an application deployment; create a new FlinkDeployment",
        )),
        (true, false) => out.push(Problem::at(
            "spec.job",
            "cannot switch from an application deployment to a session cluster; create a new FlinkDeployment",
        )),
        _ => {}
    }
    let mode = |s: &FlinkDeploymentSpec| s.mode.unwrap_or(KubernetesDeploymentMode::Native);
    let name = |m: KubernetesDeploymentMode| match m {
        KubernetesDeploymentMode::Native => "native",
        KubernetesDeploymentMode::Standalone => "standalone",
    };
    if mode(last) != mode(new) {
        out.push(Problem::at(
            "spec.mode",
            format!(
                "cannot switch from {} to {} mode; create a new FlinkDeployment",
                name(mode(last)),
                name(mode(new))
            ),
        ));
    }
    if let (Some(last_job), Some(new_job)) = (&last.job, &new.job) {
        if new_job.upgrade_mode() != UpgradeMode::Stateless
            && last_job.desired_state() == JobState::Suspended
            && last_job.upgrade_mode() == UpgradeMode::LastState
            && last.flink_version != new.flink_version
        {
            out.push(Problem::at(
                "spec.flinkVersion",
                "cannot change the Flink version of a job suspended in last-state mode; resume it with the current version first, then upgrade",
            ));
        }
    }
}

/// Renders an ingress template (`{{name}}`, `{{namespace}}`, case-insensitive; an optional
/// `http://` or `https://` prefix) and checks that the result is a host and/or a path an
/// Ingress rule can carry.
pub fn render_ingress_template(
    template: &str,
    name: &str,
    namespace: &str,
) -> Result<String, String> {
    let rendered = replace_ignore_case(
        &replace_ignore_case(template.trim(), "{{name}}", name),
        "{{namespace}}",
        namespace,
    );
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
    if rendered
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!("'{rendered}' is not a valid host or path"));
    }
    let lower = rendered.to_ascii_lowercase();
    let without_scheme = ["http://", "https://"]
        .iter()
        .find(|p| lower.starts_with(*p))
        .map(|p| &rendered[p.len()..])
        .unwrap_or(&rendered);
    let authority = without_scheme.split('/').next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    let label_ok = |(i, l): (usize, &str)| {
        (i == 0 && l == "*")
            || (!l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-'))
    };
    let host_ok =
        host.is_empty() || (host.len() <= 253 && host.split('.').enumerate().all(label_ok));
    if !host_ok {
        return Err(format!(
            "'{host}' (from '{template}') is not a valid host name"
        ));
    }
    if host.is_empty() && !without_scheme.starts_with('/') {
        return Err(format!(
            "'{rendered}' is neither a host name nor a path starting with '/'"
        ));
    }
    Ok(rendered)
}

fn replace_ignore_case(text: &str, placeholder: &str, value: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    while let Some(found) = lower[rest..].find(placeholder) {
        out.push_str(&text[rest..rest + found]);
        out.push_str(value);
        rest += found + placeholder.len();
    }
    out.push_str(&text[rest..]);
    out
}

/// Validates a FlinkSessionJob, returning every problem found.
///
/// `session` is the FlinkDeployment named by `spec.deploymentName` when known; the rules that
/// depend on configuration (checkpoint and savepoint directories, autoscaler options) run only
/// then, on the merged configuration: operator defaults, the session cluster's
/// `flinkConfiguration`, the job's `flinkConfiguration`. `last_reconciled` is the spec in
/// force, for the `deploymentName` immutability rule.
///
/// `spec.job.jarURI` is required (upstream accepts a missing one at validation but cannot
/// submit the job: a session cluster has no bundled job jar). Its scheme must be in
/// `kubernetes.operator.user.artifacts.allowed-schemes` (default `https`), and with
/// `kubernetes.operator.user.artifacts.disallow-restricted-hosts` (default true) an http(s)
/// host may not be `localhost` or a loopback, private, link-local, unspecified or multicast IP
/// literal. Unlike upstream, host names are not resolved (validation stays offline).
pub fn validate_session_job(
    job: &FlinkSessionJob,
    session: Option<&FlinkDeployment>,
    last_reconciled: Option<&FlinkSessionJobSpec>,
    operator_defaults: &BTreeMap<String, String>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let name = job.metadata.name.as_deref().unwrap_or_default();
    if name.is_empty() {
        out.push(Problem::at("metadata.name", "is required"));
    } else if !valid_object_name(name) {
        out.push(Problem::at(
            "metadata.name",
            format!("'{name}' is not a valid name: lower case letters, digits, '-' and '.', at most 253 characters"),
        ));
    }
    let deployment_name = job.spec.deployment_name.as_deref().unwrap_or("");
    if deployment_name.is_empty() {
        out.push(Problem::at(
            "spec.deploymentName",
            "is required: the name of the session cluster (a FlinkDeployment without job) in the same namespace",
        ));
    } else if !valid_name(deployment_name) {
        out.push(Problem::at(
            "spec.deploymentName",
            format!("'{deployment_name}' is not a valid FlinkDeployment name"),
        ));
    }
    if let Some(last) = last_reconciled {
        if last.deployment_name != job.spec.deployment_name {
            out.push(Problem::at(
                "spec.deploymentName",
                format!(
                    "cannot be changed (was '{}'); create a new FlinkSessionJob",
                    last.deployment_name.as_deref().unwrap_or("")
                ),
            ));
        }
    }
    let own = FlinkConfiguration::flat_of(job.spec.flink_configuration.as_ref());
    check_forbidden_keys(&own, &mut out);
    match &job.spec.job {
        None => out.push(Problem::at(
            "spec.job",
            "is required: a session job needs a job (jarURI, parallelism…)",
        )),
        Some(j) => {
            let operator = EffectiveConfig::new(operator_defaults, &BTreeMap::new());
            check_jar_uri(j.jar_uri.as_deref(), &operator, &mut out);
            check_job_spec(j, false, &mut out);
        }
    }
    if let Some(s) = session {
        let session_name = s.metadata.name.as_deref().unwrap_or("");
        if session_name != deployment_name {
            out.push(Problem::at(
                "spec.deploymentName",
                format!("does not name the session cluster '{session_name}'"),
            ));
        }
        if s.spec.job.is_some() {
            out.push(Problem::at(
                "spec.deploymentName",
                format!("{session_name} is an application deployment, not a session cluster"),
            ));
        }
        let mut merged = FlinkConfiguration::flat_of(s.spec.flink_configuration.as_ref()).to_map();
        merged.extend(own.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let conf = EffectiveConfig::new(operator_defaults, &merged);
        if let Some(j) = &job.spec.job {
            check_job_config(j, &conf, "spec.job", &mut out);
        }
        check_autoscaler(&conf, &mut out);
    }
    dedup(out)
}

fn check_jar_uri(uri: Option<&str>, operator: &EffectiveConfig, out: &mut Vec<Problem>) {
    const PATH: &str = "spec.job.jarURI";
    let uri = uri.unwrap_or("").trim();
    if uri.is_empty() {
        out.push(Problem::at(
            PATH,
            "is required: the job jar for the session cluster (e.g. https://host/job.jar)",
        ));
        return;
    }
    let scheme = uri.split_once(':').map(|(s, _)| s).filter(|s| {
        s.bytes()
            .next()
            .map(|b| b.is_ascii_alphabetic())
            .unwrap_or(false)
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
    });
    let Some(scheme) = scheme else {
        out.push(Problem::at(
            PATH,
            format!("'{uri}' must include a scheme (e.g. https://)"),
        ));
        return;
    };
    let allowed: Vec<String> = operator
        .get(ALLOWED_JAR_SCHEMES)
        .unwrap_or("https")
        .split([',', ';'])
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    let scheme = scheme.to_ascii_lowercase();
    if !allowed.contains(&scheme) {
        out.push(Problem::at(
            PATH,
            format!(
                "scheme '{scheme}' is not allowed (allowed: {}; see {ALLOWED_JAR_SCHEMES})",
                allowed.join(", ")
            ),
        ));
        return;
    }
    let restricted = operator
        .get(DISALLOW_RESTRICTED_HOSTS)
        .map(|v| !v.trim().eq_ignore_ascii_case("false"))
        .unwrap_or(true);
    if restricted && (scheme == "http" || scheme == "https") {
        let rest = &uri[scheme.len() + 1..];
        let authority = rest
            .strip_prefix("//")
            .map(|r| r.split(['/', '?', '#']).next().unwrap_or(""))
            .unwrap_or("");
        let host_port = authority
            .rsplit_once('@')
            .map(|(_, h)| h)
            .unwrap_or(authority);
        let host = if let Some(v6) = host_port.strip_prefix('[') {
            v6.split(']').next().unwrap_or("")
        } else {
            host_port.split(':').next().unwrap_or("")
        };
        if host.is_empty() {
            out.push(Problem::at(PATH, format!("'{uri}' has no host")));
        } else if is_restricted_host(host) {
            out.push(Problem::at(
                PATH,
                format!("host '{host}' is a restricted address (see {DISALLOW_RESTRICTED_HOSTS})"),
            ));
        }
    }
}

fn is_restricted_host(host: &str) -> bool {
    use std::net::IpAddr;
    let lower = host.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return true;
    }
    match lower.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_multicast()
        }
        Ok(IpAddr::V6(ip)) => {
            let first = ip.segments()[0];
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (first & 0xffc0) == 0xfe80
                || (first & 0xfe00) == 0xfc00
                || ip
                    .to_ipv4_mapped()
                    .map(|v4| is_restricted_host(&v4.to_string()))
                    .unwrap_or(false)
        }
        Err(_) => false,
    }
}

/// Drops repeated problems, keeping the first of each.
pub(crate) fn dedup(problems: Vec<Problem>) -> Vec<Problem> {
    let mut seen = std::collections::BTreeSet::new();
    problems
        .into_iter()
        .filter(|p| seen.insert((p.path.clone(), p.message.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("basic-example"));
        assert!(valid_name("a"));
        assert!(valid_name("a1"));
        assert!(valid_name(&"a".repeat(45)));
        assert!(!valid_name(&"a".repeat(46)));
        assert!(!valid_name("Basic"));
        assert!(!valid_name("-a"));
        assert!(!valid_name("a-"));
        assert!(!valid_name("1a"));
        assert!(!valid_name("a.b"));
        assert!(!valid_name(""));
        assert!(valid_object_name("a.b-c"));
        assert!(!valid_object_name("a..b"));
        assert!(!valid_object_name("A"));
        assert!(valid_dns_label("flink-jobs"));
        assert!(!valid_dns_label("flink_jobs"));
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
        assert_eq!(
            render_ingress_template("https://{{NAME}}.example.com:8443/ui", "a", "ns").unwrap(),
            "https://a.example.com:8443/ui"
        );
        assert!(render_ingress_template("*.example.com", "a", "ns").is_ok());
        assert!(render_ingress_template("{{nam}}.example.com", "a", "ns")
            .unwrap_err()
            .contains("{{nam}}"));
        assert!(render_ingress_template("bad host.example.com", "a", "ns").is_err());
        assert!(render_ingress_template("under_score.example.com", "a", "ns").is_err());
        assert!(render_ingress_template("a..b", "a", "ns").is_err());
    }

    #[test]
    fn restricted_hosts() {
        for h in [
            "localhost",
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "fd00::1",
            "0.0.0.0",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_restricted_host(h), "{h}");
        }
        for h in ["repo1.maven.org", "8.8.8.8", "2001:db8::1"] {
            assert!(!is_restricted_host(h), "{h}");
        }
    }
}
