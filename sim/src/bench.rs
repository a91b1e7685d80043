//! `flink-sim bench`: N application deployments through the operator's real controller loop
//! and reconcile code in virtual time, with spec changes, savepoints and faults spread over
//! the run (see [`workload`]). Prints one JSON object of figures on its last line.
//!
//! Everything but `wall_seconds`, `cpu_seconds` and `peak_rss_bytes` depends only on the options: the same
//! seed gives the same counters.
//!
//! - `reaction_ms_*`: virtual time from a spec change to the first reconcile of that resource
//!   that acts on it (makes a Kubernetes write).
//! - `stable_overhead_ms_*`: virtual time from a creation, an upgrade or a resume to STABLE,
//!   minus the world's own delays (pod start, job start, savepoint duration); only for
//!   transitions no other event of that deployment interrupted.
//! - `steady_*_per_hour`: per deployment-hour while the deployment is STABLE and nothing
//!   happened to it for [`workload::SETTLE_MS`] (and, after its creation, since it became
//!   STABLE).

pub mod track;
pub mod workload;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::kube::key_of;
use crate::runner::{merge_patch, Simulation};
use crate::scenario::{FaultKind, Scenario};
use crate::world::World;
use track::Tracker;
use workload::{Change, Plan};

pub const USAGE: &str = "flink-sim bench --deployments N [--duration 1h] [--seed S] [--operator KEY=VALUE]... [--progress] [--trace NAME]";

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub deployments: usize,
    pub duration: Duration,
    pub seed: u64,
    /// Operator configuration on top of the benchmark's (upstream keys).
    pub operator: Vec<(String, String)>,
    /// A line on stderr every virtual minute.
    pub progress: bool,
    /// Deployments (`fd-00042`) whose timeline and planned changes go to stderr.
    pub trace: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            deployments: 100,
            duration: Duration::from_secs(3600),
            seed: 1,
            operator: Vec::new(),
            progress: false,
            trace: Vec::new(),
        }
    }
}

/// The figures of a run. `wall_seconds`, `cpu_seconds` and `peak_rss_bytes` are measured; everything else
/// follows from the options.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub deployments: usize,
    pub seed: u64,
    /// The operator configuration it ran with.
    pub operator: Vec<(String, String)>,
    pub virtual_seconds: f64,
    pub wall_seconds: f64,
    /// CPU time of the process (user and system): unlike the wall time, not inflated by
    /// whatever else the machine runs.
    pub cpu_seconds: f64,
    pub reconciles: u64,
    pub reconcile_errors: u64,
    pub kube_requests: u64,
    pub kube_writes: u64,
    pub flink_requests: u64,
    pub peak_rss_bytes: u64,
    pub events: usize,
    pub spec_changes: usize,
    pub faults: usize,
    pub reaction_ms_p50: u64,
    pub reaction_ms_p99: u64,
    pub reaction_ms_max: u64,
    pub reactions: usize,
    pub stable_overhead_ms_p50: i64,
    pub stable_overhead_ms_p99: i64,
    pub stable_overhead_ms_max: i64,
    pub transitions: usize,
    pub steady_deployment_hours: f64,
    pub steady_reconciles: u64,
    pub steady_kube_requests_per_hour: f64,
    pub steady_kube_writes_per_hour: f64,
    pub steady_flink_requests_per_hour: f64,
    /// Flink requests per steady deployment per observe interval (the reconcile interval).
    pub steady_flink_requests_per_interval: f64,
    /// Flink requests per reconcile of a steady deployment.
    pub steady_flink_requests_per_reconcile: f64,
    /// The shortest time between two reconciles of one steady deployment (0: none seen).
    pub steady_min_reconcile_gap_ms: i64,
    /// The observe (reconcile) interval the operator ran with.
    pub observe_interval_ms: i64,
    pub stable_at_end: usize,
}

impl Report {
    pub fn to_json(&self) -> Value {
        json!({
            "deployments": self.deployments,
            "seed": self.seed,
            "operator": self
                .operator
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect::<serde_json::Map<String, Value>>(),
            "virtual_seconds": self.virtual_seconds,
            "wall_seconds": (self.wall_seconds * 1000.0).round() / 1000.0,
            "cpu_seconds": (self.cpu_seconds * 1000.0).round() / 1000.0,
            "reconciles": self.reconciles,
            "reconcile_errors": self.reconcile_errors,
            "kube_requests": self.kube_requests,
            "kube_writes": self.kube_writes,
            "flink_requests": self.flink_requests,
            "peak_rss_bytes": self.peak_rss_bytes,
            "events": self.events,
            "spec_changes": self.spec_changes,
            "faults": self.faults,
            "reaction_ms_p50": self.reaction_ms_p50,
            "reaction_ms_p99": self.reaction_ms_p99,
            "reaction_ms_max": self.reaction_ms_max,
            "reactions": self.reactions,
            "stable_overhead_ms_p50": self.stable_overhead_ms_p50,
            "stable_overhead_ms_p99": self.stable_overhead_ms_p99,
            "stable_overhead_ms_max": self.stable_overhead_ms_max,
            "transitions": self.transitions,
            "steady_deployment_hours": round3(self.steady_deployment_hours),
            "steady_reconciles": self.steady_reconciles,
            "steady_kube_requests_per_hour": round3(self.steady_kube_requests_per_hour),
            "steady_kube_writes_per_hour": round3(self.steady_kube_writes_per_hour),
            "steady_flink_requests_per_hour": round3(self.steady_flink_requests_per_hour),
            "steady_flink_requests_per_interval": round3(self.steady_flink_requests_per_interval),
            "steady_flink_requests_per_reconcile": round3(self.steady_flink_requests_per_reconcile),
            "steady_min_reconcile_gap_ms": self.steady_min_reconcile_gap_ms,
            "observe_interval_ms": self.observe_interval_ms,
            "stable_at_end": self.stable_at_end,
        })
    }

    /// The same report without what is measured rather than computed (for determinism checks).
    pub fn counters_only(&self) -> Report {
        Report {
            wall_seconds: 0.0,
            cpu_seconds: 0.0,
            peak_rss_bytes: 0,
            ..self.clone()
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The operator configuration the benchmark runs with unless `--operator` says otherwise:
/// upstream's defaults, but the observer looks every second while something is in progress
/// (upstream: 10 s for both), so that time to STABLE measures the operator rather than a
/// polling interval. Steady deployments are looked at every reconcile interval either way.
pub const OPERATOR_DEFAULTS: [(&str, &str); 2] = [
    ("kubernetes.operator.observer.progress-check.interval", "1s"),
    ("kubernetes.operator.observer.rest-ready.delay", "1s"),
];

/// [`OPERATOR_DEFAULTS`] with the `--operator` settings on top.
pub fn operator_config(options: &Options) -> Vec<(String, String)> {
    let mut config: std::collections::BTreeMap<String, String> = OPERATOR_DEFAULTS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    config.extend(options.operator.iter().cloned());
    config.into_iter().collect()
}

/// Runs the benchmark.
pub fn run(options: &Options) -> Result<Report, String> {
    let wall = Instant::now();
    let plan = workload::plan(options.deployments, options.duration, options.seed);
    let cluster = workload::cluster_settings();
    let scenario = Scenario {
        name: "bench".into(),
        description: None,
        seed: options.seed,
        operator: operator_config(options),
        cluster: cluster.clone(),
        steps: Vec::new(),
        path: PathBuf::from("bench"),
    };
    let operator_config: std::collections::BTreeMap<String, String> =
        scenario.operator.iter().cloned().collect();
    let interval_ms =
        flink_operator::config::EffectiveConfig::new(&operator_config, &Default::default())
            .reconcile_interval()
            .as_millis() as i64;
    let mut sim = Simulation::new(&scenario);
    sim.log_reconciles();
    // The invariants' look at the whole world is O(resources): once a virtual minute here
    // (each status written is still checked as it is written).
    sim.check_world_every(Duration::from_secs(60));
    let start = lock(&sim).now;
    let mut tracker = Tracker::new(&plan, cluster);
    let mut next_progress = 60_000;
    let mut i = 0;
    while i < plan.events.len() {
        let at = plan.events[i].at;
        advance(&mut sim, &mut tracker, start, at, &options.trace)?;
        while options.progress && at >= next_progress {
            eprintln!(
                "bench: +{}min virtual, {:.1}s wall, {} reconciles, {} MiB resident",
                next_progress / 60_000,
                wall.elapsed().as_secs_f64(),
                sim.scheduler.counters.reconciles,
                proc_status_kb("VmRSS:") / 1024
            );
            next_progress += 60_000;
        }
        while i < plan.events.len() && plan.events[i].at == at {
            let event = &plan.events[i];
            apply(&mut sim, &plan, event.deployment, &event.change)?;
            if let Some(d) = event.deployment.map(|i| &plan.deployments[i]) {
                if options.trace.contains(&d.name) {
                    eprintln!(
                        "{} {}/{} planned {:?}",
                        crate::runner::fmt_offset(at as u64),
                        d.namespace,
                        d.name,
                        event.change
                    );
                }
            }
            tracker.planned(event, at);
            i += 1;
        }
    }
    advance(
        &mut sim,
        &mut tracker,
        start,
        plan.duration_ms,
        &options.trace,
    )?;
    let counters = lock(&sim).counters.clone();
    let t = tracker.finish(plan.duration_ms, interval_ms);
    for (what, list) in [
        ("reactions", &t.slowest_reactions),
        ("transitions (overhead)", &t.slowest_transitions),
    ] {
        let text: Vec<String> = list
            .iter()
            .map(|(ms, i, kind)| format!("{} {kind} {ms}ms", workload::name_of(*i)))
            .collect();
        eprintln!("bench: slowest {what}: {}", text.join(", "));
    }
    Ok(Report {
        deployments: options.deployments,
        seed: options.seed,
        operator: scenario.operator.clone(),
        virtual_seconds: plan.duration_ms as f64 / 1000.0,
        wall_seconds: wall.elapsed().as_secs_f64(),
        cpu_seconds: cpu_seconds(),
        reconciles: sim.scheduler.counters.reconciles,
        reconcile_errors: sim.scheduler.counters.errors,
        kube_requests: counters.kube_requests,
        kube_writes: counters.kube_writes,
        flink_requests: counters.flink_requests,
        peak_rss_bytes: peak_rss_bytes(),
        events: plan.events.len(),
        spec_changes: plan
            .events
            .iter()
            .filter(|e| e.change.is_spec_change())
            .count(),
        faults: plan
            .events
            .iter()
            .filter(|e| matches!(e.change, Change::Fault(_) | Change::GlobalFault(_)))
            .count(),
        reaction_ms_p50: t.reaction_p50,
        reaction_ms_p99: t.reaction_p99,
        reaction_ms_max: t.reaction_max,
        reactions: t.reactions,
        stable_overhead_ms_p50: t.overhead_p50,
        stable_overhead_ms_p99: t.overhead_p99,
        stable_overhead_ms_max: t.overhead_max,
        transitions: t.transitions,
        steady_deployment_hours: t.steady_hours,
        steady_reconciles: t.steady_reconciles,
        steady_kube_requests_per_hour: t.per_hour(t.steady_kube_requests),
        steady_kube_writes_per_hour: t.per_hour(t.steady_kube_writes),
        steady_flink_requests_per_hour: t.per_hour(t.steady_flink_requests),
        steady_flink_requests_per_interval: t.per_hour(t.steady_flink_requests)
            * interval_ms as f64
            / 3_600_000.0,
        steady_flink_requests_per_reconcile: if t.steady_reconciles > 0 {
            t.steady_flink_requests as f64 / t.steady_reconciles as f64
        } else {
            0.0
        },
        steady_min_reconcile_gap_ms: if t.steady_min_gap_ms == i64::MAX {
            0
        } else {
            t.steady_min_gap_ms
        },
        observe_interval_ms: interval_ms,
        stable_at_end: t.stable_at_end,
    })
}

fn lock(sim: &Simulation) -> std::sync::MutexGuard<'_, World> {
    sim.ports.world.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the world to `at` (ms since the start) and hands what happened to the tracker.
fn advance(
    sim: &mut Simulation,
    tracker: &mut Tracker,
    start: i64,
    at: i64,
    trace: &[String],
) -> Result<(), String> {
    sim.run_until(start + at, None)?;
    // The events the operator published are kept for the served API to mirror; nothing
    // reads them here (the timeline has its own copy), and a run of thousands of
    // deployments publishes hundreds of thousands.
    lock(sim).events.clear();
    let timeline = sim.take_timeline();
    for e in &timeline {
        let name = e.resource.rsplit('/').next().unwrap_or_default();
        if trace.iter().any(|t| t == name) {
            eprintln!("{e}");
        }
    }
    let reconciles = sim.take_reconciles();
    tracker.absorb(start, &timeline, &reconciles);
    if let Some(v) = sim.take_violation() {
        return Err(format!("invariant violated: {v}"));
    }
    Ok(())
}

/// Applies one planned change to the world, as a user (or the world) would.
fn apply(
    sim: &mut Simulation,
    plan: &Plan,
    deployment: Option<usize>,
    change: &Change,
) -> Result<(), String> {
    let mut w = lock(sim);
    let d = deployment.map(|i| &plan.deployments[i]);
    let patch = |w: &mut World, merge: &Value| -> Result<(), String> {
        let d = d.ok_or("a patch needs a deployment")?;
        let key = key_of("FlinkDeployment", &d.namespace, &d.name);
        // The workload's changes are all to the spec: patched where the object is stored
        // (a copy of the whole JSON tree per change was a cold read of kilobytes at 10,000).
        if let (Some(spec), 1) = (merge.get("spec"), merge.as_object().map_or(0, |m| m.len())) {
            return w
                .kube
                .patch_spec(&key, spec)
                .map(|_| ())
                .map_err(|e| format!("{e:?}"));
        }
        let mut updated = w
            .kube
            .get(&key)
            .cloned()
            .ok_or_else(|| format!("{} does not exist", d.name))?;
        // A user's apply leaves the status alone (the status subresource owns it).
        let status = merge.get("status").map(|_| updated["status"].clone());
        merge_patch(&mut updated, merge);
        if let Some(status) = status {
            updated["status"] = status;
        }
        w.kube
            .update(updated, None)
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    };
    match change {
        Change::Create => {
            let d = d.ok_or("a creation needs a deployment")?;
            let now = w.now_rfc3339();
            w.kube
                .create(d.manifest(), &now)
                .map(|_| ())
                .map_err(|e| format!("{e:?}"))
        }
        Change::Upgrade(merge) => patch(&mut w, merge),
        Change::Savepoint(nonce) => patch(
            &mut w,
            &json!({"spec": {"job": {"savepointTriggerNonce": nonce}}}),
        ),
        Change::Suspend => patch(&mut w, &json!({"spec": {"job": {"state": "suspended"}}})),
        Change::Resume => patch(&mut w, &json!({"spec": {"job": {"state": "running"}}})),
        Change::Fault(f) | Change::GlobalFault(f) => {
            debug_assert!(f.kind != FaultKind::OperatorRestart);
            w.inject(f.clone());
            Ok(())
        }
    }
}

/// The peak resident set size of this process (`VmHWM`), in bytes; 0 where unknown.
pub fn peak_rss_bytes() -> u64 {
    proc_status_kb("VmHWM:") * 1024
}

/// CPU time (user and system) this process has used, in seconds; 0 where unknown. From
/// `/proc/self/stat` (fields 14 and 15, in clock ticks of 1/100 s, Linux's `USER_HZ`).
pub fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // The command name (field 2) may hold spaces: count fields after its ')'.
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

/// A `kB` field of `/proc/self/status`.
pub fn proc_status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// `flink-sim bench ARGS`: parses the arguments, runs, prints the figures (JSON, last line).
pub fn main(args: &[String]) -> std::process::ExitCode {
    use std::process::ExitCode;
    let mut options = Options::default();
    let mut deployments = None;
    let mut rest = args.iter();
    let usage = |message: String| {
        eprintln!("{message}\nusage: {USAGE}");
        ExitCode::from(2)
    };
    while let Some(arg) = rest.next() {
        let mut value = || rest.next().cloned();
        match arg.as_str() {
            "--deployments" => match value().and_then(|v| v.parse::<usize>().ok()) {
                Some(n) if n > 0 => deployments = Some(n),
                _ => return usage("--deployments needs a positive whole number".into()),
            },
            "--duration" => {
                match value().and_then(|v| flink_operator::duration::parse_duration(&v).ok()) {
                    Some(d) if d >= Duration::from_secs(60) => options.duration = d,
                    _ => {
                        return usage(
                            "--duration needs a duration of a minute or more (10min, 1h)".into(),
                        )
                    }
                }
            }
            "--seed" => match value().and_then(|v| v.parse().ok()) {
                Some(s) => options.seed = s,
                None => return usage("--seed needs a whole number".into()),
            },
            "--operator" => match value().as_deref().and_then(|v| v.split_once('=')) {
                Some((k, v)) => options.operator.push((k.to_string(), v.to_string())),
                None => return usage("--operator needs KEY=VALUE".into()),
            },
            "--progress" => options.progress = true,
            "--trace" => match value() {
                Some(name) => options.trace.push(name),
                None => return usage("--trace needs a deployment name (fd-00042)".into()),
            },
            other => return usage(format!("unexpected argument '{other}'")),
        }
    }
    let Some(n) = deployments else {
        return usage("--deployments is required".into());
    };
    options.deployments = n;
    match run(&options) {
        Ok(report) => {
            println!(
                "flink-sim bench: {} deployments, {} virtual, {:.1}s wall, {} reconciles",
                report.deployments,
                flink_operator::duration::format_duration(options.duration),
                report.wall_seconds,
                report.reconciles
            );
            println!("{}", report.to_json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("flink-sim bench: {e}");
            ExitCode::from(1)
        }
    }
}
