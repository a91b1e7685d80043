//! One exploration run: a scenario's steps (awaits wait but do not fail, expects are not
//! asserted: under random faults their timing is off), random faults injected at their
//! times, the world's invariants after every step, then every fault healed and the liveness
//! phase: each resource must reach a steady state within the bound and stay there.
//!
//! Everything that ran is kept as a flat scenario of plain steps (apply, patch, delete,
//! fault, heal, advance): run again, it does exactly the same, so it is what a violation is
//! reported and shrunk as.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use serde_json::Value;

use crate::runner::Simulation;
use crate::scenario::{Action, Check, Fault, FaultKind, Scenario, Step};
use crate::world::Mutant;

/// How runs are checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A planted operator bug (to test the checks).
    pub mutant: Option<Mutant>,
    /// Once the faults heal, every resource is steady within this much virtual time.
    pub liveness_bound: Duration,
    /// Run the liveness phase (heal, then wait for steady states) after the steps.
    pub liveness: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mutant: None,
            liveness_bound: LIVENESS_BOUND,
            liveness: true,
        }
    }
}

/// The documented liveness bound: after the last fault heals (and the workload stops), every
/// resource is STABLE, SUSPENDED, FAILED or ROLLED_BACK (or gone, if deleted) on its latest
/// spec within this much virtual time, and stays so for [`CONFIRM`].
pub const LIVENESS_BOUND: Duration = Duration::from_secs(15 * 60);
/// How long a steady state must hold to count.
pub const CONFIRM: Duration = Duration::from_secs(60);

/// A broken property, with a short class that shrinking keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub class: String,
    pub message: String,
    /// Virtual time of the violation since the start.
    pub at_ms: u64,
}

impl Violation {
    fn new(message: String, at_ms: u64) -> Self {
        let mut class = class_of(&message).to_string();
        if class == "liveness" {
            // Finer, so shrinking keeps to the same kind of stuck.
            let kind = if message.contains("FlinkSessionJob/") {
                "FlinkSessionJob"
            } else {
                "FlinkDeployment"
            };
            let why = if message.contains("observed generation") {
                "spec not observed"
            } else if message.contains("running job(s)") {
                "job not running"
            } else if message.contains("being deleted") {
                "not deleted"
            } else {
                "not steady"
            };
            class = format!("liveness: {kind} {why}");
        }
        Violation {
            class,
            message,
            at_ms,
        }
    }
}

/// The kind of a violation, for "does the shrunk run still fail the same way".
pub fn class_of(message: &str) -> &'static str {
    const CLASSES: [(&str, &str); 16] = [
        ("jobs run at once", "two running jobs"),
        ("but the newest state was", "state lost"),
        ("which was disposed", "disposed state used"),
        ("HA metadata was deleted", "HA metadata deleted"),
        ("observedGeneration", "observedGeneration"),
        ("but it does not run", "status lies: RUNNING"),
        ("STABLE with", "status lies: STABLE"),
        ("left behind", "left behind"),
        ("did not create", "foreign object touched"),
        ("liveness", "liveness"),
        ("invalid spec", "invalid spec unreported"),
        ("panicked", "panic"),
        ("reconciled", "reconcile loop"),
        ("end state", "end state differs"),
        ("history:", "history oracle"),
        ("", "other"),
    ];
    CLASSES
        .iter()
        .find(|(needle, _)| message.contains(needle))
        .map(|(_, class)| *class)
        .unwrap_or("other")
}

/// What one run gave.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub violation: Option<Violation>,
    /// What ran, as a scenario of plain steps.
    pub flat: Scenario,
    pub faults: BTreeMap<&'static str, u64>,
    pub checks: u64,
    pub end_ms: u64,
    /// Virtual time from the heal to steady states.
    pub settle_ms: Option<u64>,
    /// Resources by the state they ended in.
    pub end_states: BTreeMap<String, u64>,
    /// The end state, normalised (see [`end_state`]).
    pub end_state: String,
    /// Watch notifications the operator got.
    pub notifications: u64,
}

/// Runs `scenario` with `extra` faults (offset ms from the start, in order) injected at their
/// times, then checks liveness and the end.
pub fn execute(scenario: &Scenario, extra: &[(u64, Fault)], settings: &Settings) -> RunReport {
    execute_with(scenario, extra, settings, |_| {})
}

/// [`execute`], with a hook to prepare the simulation (crash points, notification plans).
pub fn execute_with(
    scenario: &Scenario,
    extra: &[(u64, Fault)],
    settings: &Settings,
    prepare: impl FnOnce(&mut Simulation),
) -> RunReport {
    let mut flat = Vec::new();
    let mut report = RunReport {
        violation: None,
        flat: scenario.clone(),
        faults: BTreeMap::new(),
        checks: 0,
        end_ms: 0,
        settle_ms: None,
        end_states: BTreeMap::new(),
        end_state: String::new(),
        notifications: 0,
    };
    let result = super::quietly(|| {
        catch_unwind(AssertUnwindSafe(|| {
            run(scenario, extra, settings, prepare, &mut flat, &mut report)
        }))
    });
    if let Err(panic) = result {
        let text = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into());
        report.violation = Some(Violation::new(
            format!("the simulation panicked: {text}"),
            report.end_ms,
        ));
    }
    report.flat.steps = flat;
    for step in &report.flat.steps {
        if let Action::Fault(f) = &step.action {
            *report.faults.entry(f.kind.name()).or_default() += 1;
        }
    }
    report
}

fn run(
    scenario: &Scenario,
    extra: &[(u64, Fault)],
    settings: &Settings,
    prepare: impl FnOnce(&mut Simulation),
    flat: &mut Vec<Step>,
    report: &mut RunReport,
) {
    let mut sim = Simulation::new(scenario);
    sim.ports
        .world
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .mutant = settings.mutant;
    prepare(&mut sim);
    let mut pending = extra.iter().cloned().peekable();
    let mut outcome = Ok(());
    for step in &scenario.steps {
        outcome = match &step.action {
            Action::Advance(d) => run_for(&mut sim, d.as_millis() as u64, None, &mut pending, flat),
            Action::Await { check, within } => run_for(
                &mut sim,
                within.as_millis() as u64,
                Some(check),
                &mut pending,
                flat,
            ),
            Action::Expect(_) | Action::Snapshot(_) => Ok(()),
            other => {
                // A patch or delete of what is not there changes nothing; that is fine here.
                let _ = sim.act(other);
                flat.push(plain(other.clone()));
                Ok(())
            }
        };
        if outcome.is_err() {
            break;
        }
        if let Some(v) = sim.take_violation() {
            outcome = Err(format!("invariant violated: {v}"));
            break;
        }
    }
    report.checks = sim.invariant_checks();
    report.end_ms = sim.elapsed_ms();
    if let Err(e) = outcome {
        report.violation = Some(Violation::new(e, sim.elapsed_ms()));
        return;
    }
    if settings.liveness {
        let _ = sim.act(&Action::Heal(None));
        flat.push(plain(Action::Heal(None)));
        let pending = |s: &Simulation| invalid_specs_reported(s, scenario).err();
        match liveness_with(&mut sim, settings.liveness_bound, &pending) {
            Ok(settle) => report.settle_ms = Some(settle),
            Err(e) => {
                report.checks = sim.invariant_checks();
                report.end_ms = sim.elapsed_ms();
                report.violation = Some(Violation::new(e, sim.elapsed_ms()));
                return;
            }
        }
        if let Err(e) = invalid_specs_reported(&sim, scenario) {
            report.violation = Some(Violation::new(e, sim.elapsed_ms()));
        }
    }
    report.checks = sim.invariant_checks();
    report.end_ms = sim.elapsed_ms();
    report.end_state = end_state(&sim);
    report.notifications = sim.notifications.count;
    let w = sim.ports.world.lock().unwrap_or_else(|e| e.into_inner());
    for kind in ["FlinkDeployment", "FlinkSessionJob"] {
        for obj in w.kube.list_all(kind) {
            let state = obj["status"]["lifecycleState"].as_str().unwrap_or("none");
            *report.end_states.entry(state.to_string()).or_default() += 1;
        }
    }
}

fn plain(action: Action) -> Step {
    Step { line: 0, action }
}

/// Runs the world for `ms` (until `check` holds, for an await), injecting the pending faults
/// that fall due, and records it as advances and fault steps.
fn run_for(
    sim: &mut Simulation,
    ms: u64,
    check: Option<&Check>,
    pending: &mut std::iter::Peekable<impl Iterator<Item = (u64, Fault)>>,
    flat: &mut Vec<Step>,
) -> Result<(), String> {
    let end = sim.elapsed_ms() + ms;
    let mut last = sim.elapsed_ms();
    loop {
        let next = pending.peek().map(|(at, _)| *at).filter(|at| *at < end);
        let stop = next.unwrap_or(end).max(sim.elapsed_ms());
        let deadline = now_epoch(sim) + (stop - sim.elapsed_ms()) as i64;
        let held = sim.run_until(deadline, check)?;
        if let Some(v) = sim.take_violation() {
            push_advance(flat, sim.elapsed_ms() - last);
            return Err(format!("invariant violated: {v}"));
        }
        if held {
            push_advance(flat, sim.elapsed_ms() - last);
            return Ok(());
        }
        match next {
            Some(_) => {
                let (_, fault) = pending.next().unwrap();
                push_advance(flat, sim.elapsed_ms() - last);
                last = sim.elapsed_ms();
                let action = Action::Fault(fault);
                sim.act(&action)?;
                flat.push(plain(action));
                if let Some(v) = sim.take_violation() {
                    return Err(format!("invariant violated: {v}"));
                }
            }
            None => {
                push_advance(flat, sim.elapsed_ms() - last);
                return Ok(());
            }
        }
    }
}

fn now_epoch(sim: &Simulation) -> i64 {
    sim.ports
        .world
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .now
}

fn push_advance(flat: &mut Vec<Step>, ms: u64) {
    if ms > 0 {
        flat.push(plain(Action::Advance(Duration::from_millis(ms))));
    }
}

/// The liveness phase: steady within the bound, and still steady [`CONFIRM`] later.
/// Returns the time it took.
pub(crate) fn liveness(sim: &mut Simulation, bound: Duration) -> Result<u64, String> {
    liveness_with(sim, bound, &|_| None)
}

/// [`liveness`], where `pending` names more that must settle (an invalid spec the operator
/// has not reported yet: it may not have seen it, when its watch event was lost, until the
/// next re-list).
fn liveness_with(
    sim: &mut Simulation,
    bound: Duration,
    pending: &dyn Fn(&Simulation) -> Option<String>,
) -> Result<u64, String> {
    let start = sim.elapsed_ms();
    let bound = bound.as_millis() as u64;
    let mut steady_since: Option<u64> = None;
    loop {
        let elapsed = sim.elapsed_ms() - start;
        match unsteady(sim).or_else(|| pending(sim)) {
            None => {
                let since = *steady_since.get_or_insert(elapsed);
                if elapsed - since >= CONFIRM.as_millis() as u64 {
                    return Ok(since);
                }
            }
            Some(why) => {
                steady_since = None;
                if elapsed >= bound {
                    return Err(format!(
                        "liveness: {} after the faults healed, {why}",
                        flink_operator::duration::format_duration(Duration::from_millis(bound))
                    ));
                }
            }
        }
        let deadline = now_epoch(sim) + 5_000;
        sim.run_until(deadline, None)?;
        if let Some(v) = sim.take_violation() {
            return Err(format!("invariant violated: {v}"));
        }
    }
}

const STEADY: [&str; 4] = ["STABLE", "SUSPENDED", "FAILED", "ROLLED_BACK"];

/// Why not every resource is steady, if one is not.
fn unsteady(sim: &Simulation) -> Option<String> {
    let w = sim.ports.world.lock().unwrap_or_else(|e| e.into_inner());
    for kind in ["FlinkDeployment", "FlinkSessionJob"] {
        for obj in w.kube.list_all(kind) {
            let name = obj["metadata"]["name"].as_str().unwrap_or_default();
            let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
            let id = format!("{kind}/{ns}/{name}");
            let status = &obj["status"];
            let state = status["lifecycleState"].as_str().unwrap_or("none");
            let error = status["error"].as_str().unwrap_or_default();
            if obj["metadata"].get("deletionTimestamp").is_some() {
                // A session cluster waits for its session jobs to be deleted first (upstream's
                // kubernetes.operator.session.deletion.block-on-session-jobs): the user's move.
                let blocked = kind == "FlinkDeployment"
                    && w.kube
                        .list("FlinkSessionJob", ns)
                        .iter()
                        .any(|j| j["spec"]["deploymentName"].as_str() == Some(name))
                    && error.contains("CleanupException");
                if blocked {
                    continue;
                }
                return Some(format!("{id} is still being deleted ({state})"));
            }
            if kind == "FlinkSessionJob" {
                // A session job waits for its session cluster, which is checked on its own.
                let session = obj["spec"]["deploymentName"].as_str().unwrap_or_default();
                let ready = w
                    .kube
                    .get(&crate::kube::key_of("FlinkDeployment", ns, session))
                    .map(|s| {
                        s["status"]["jobManagerDeploymentStatus"] == "READY"
                            && s["metadata"].get("deletionTimestamp").is_none()
                    })
                    .unwrap_or(false);
                if !ready {
                    continue;
                }
            }
            // Upstream's design: a stateful upgrade that would lose state stops and says
            // "Manual restore required"; it waits for the user, which is steady.
            if error.contains("Manual restore required") {
                continue;
            }
            if !STEADY.contains(&state) {
                return Some(format!(
                    "{id} is {state} (error: {})",
                    if error.is_empty() { "none" } else { error }
                ));
            }
            let generation = obj["metadata"]["generation"].as_i64();
            let observed = status["observedGeneration"].as_i64();
            if generation != observed && !error.contains("ValidationException") {
                return Some(format!(
                    "{id} is {state} but observed generation {observed:?} of {generation:?}"
                ));
            }
            // STABLE with a job wanted running: exactly that job runs.
            let reconciled = status["reconciliationStatus"]["lastReconciledSpec"]
                .as_str()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .map(|v| v["spec"].clone())
                .unwrap_or(Value::Null);
            let wants_job =
                !reconciled["job"].is_null() && reconciled["job"]["state"] != "suspended";
            if state == "STABLE" && wants_job {
                let running = w.running_instances(&id);
                let job_state = status["jobStatus"]["state"].as_str().unwrap_or("none");
                if running != 1 || job_state != "RUNNING" {
                    return Some(format!(
                        "{id} is STABLE (job {job_state}) with {running} running job(s)"
                    ));
                }
            }
        }
    }
    None
}

/// Every spec the operator's validation refuses shows an error in the status.
fn invalid_specs_reported(sim: &Simulation, scenario: &Scenario) -> Result<(), String> {
    use flink_operator::crd::{
        FlinkDeployment, FlinkDeploymentSpec, FlinkSessionJob, FlinkSessionJobSpec, StoredSpec,
    };
    let operator: BTreeMap<String, String> = scenario.operator.iter().cloned().collect();
    let w = sim.ports.world.lock().unwrap_or_else(|e| e.into_inner());
    let stored = |obj: &Value| {
        obj["status"]["reconciliationStatus"]["lastReconciledSpec"]
            .as_str()
            .map(str::to_string)
    };
    for obj in w.kube.list_all("FlinkDeployment") {
        let Ok(fd) = serde_json::from_value::<FlinkDeployment>(obj.clone()) else {
            continue;
        };
        if fd.metadata.deletion_timestamp.is_some() {
            continue; // a resource being deleted is not validated any more
        }
        let ns = fd.metadata.namespace.clone().unwrap_or_default();
        let defaults = flink_operator::config::defaults_for(&operator, &ns, fd.spec.flink_version);
        let reconciled = stored(obj)
            .and_then(|s| StoredSpec::<FlinkDeploymentSpec>::parse(&s).ok())
            .map(|s| s.spec);
        let problems =
            flink_operator::validation::validate_deployment(&fd, reconciled.as_ref(), &defaults);
        let error = obj["status"]["error"].as_str().unwrap_or_default();
        if !problems.is_empty() && !error.contains("ValidationException") {
            return Err(format!(
                "invalid spec without a status error: FlinkDeployment/{ns}/{} ({}); status.error: {}",
                obj["metadata"]["name"].as_str().unwrap_or_default(),
                problems[0],
                if error.is_empty() { "none" } else { error }
            ));
        }
    }
    for obj in w.kube.list_all("FlinkSessionJob") {
        let Ok(job) = serde_json::from_value::<FlinkSessionJob>(obj.clone()) else {
            continue;
        };
        let ns = job.metadata.namespace.clone().unwrap_or_default();
        let session_name = job.spec.deployment_name.clone().unwrap_or_default();
        let session = w
            .kube
            .get(&crate::kube::key_of("FlinkDeployment", &ns, &session_name))
            .and_then(|s| serde_json::from_value::<FlinkDeployment>(s.clone()).ok());
        let ready = session
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .map(|s| {
                s.job_manager_deployment_status
                    == Some(flink_operator::crd::JobManagerDeploymentStatus::Ready)
            })
            .unwrap_or(false);
        if !ready {
            continue; // validated once its session cluster is up
        }
        let defaults = flink_operator::config::defaults_for(
            &operator,
            &ns,
            session.as_ref().and_then(|s| s.spec.flink_version),
        );
        let reconciled = stored(obj)
            .and_then(|s| StoredSpec::<FlinkSessionJobSpec>::parse(&s).ok())
            .map(|s| s.spec);
        let problems = flink_operator::validation::validate_session_job(
            &job,
            session.as_ref(),
            reconciled.as_ref(),
            &defaults,
        );
        let error = obj["status"]["error"].as_str().unwrap_or_default();
        if !problems.is_empty() && !error.contains("ValidationException") {
            return Err(format!(
                "invalid spec without a status error: FlinkSessionJob/{ns}/{} ({}); status.error: {}",
                obj["metadata"]["name"].as_str().unwrap_or_default(),
                problems[0],
                if error.is_empty() { "none" } else { error }
            ));
        }
    }
    Ok(())
}

/// The end state, for comparing runs: per resource its lifecycle, JobManager, job and
/// reconciliation states, observed generation, error type and reconciled spec, and what
/// really runs for it (running jobs, the newest job's state and parallelism). Left out, as
/// they differ between equally good runs: timestamps, job ids, savepoint and checkpoint
/// paths and counts, the upgrade mode the operator records it restored with, events.
pub fn end_state(sim: &Simulation) -> String {
    let w = sim.ports.world.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = String::new();
    for kind in ["FlinkDeployment", "FlinkSessionJob"] {
        for obj in w.kube.list_all(kind) {
            let name = obj["metadata"]["name"].as_str().unwrap_or_default();
            let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
            let id = format!("{kind}/{ns}/{name}");
            let s = &obj["status"];
            let mut spec = s["reconciliationStatus"]["lastReconciledSpec"]
                .as_str()
                .and_then(|t| serde_json::from_str::<Value>(t).ok())
                .map(|v| v["spec"].clone())
                .unwrap_or(Value::Null);
            if let Some(job) = spec.get_mut("job").and_then(Value::as_object_mut) {
                job.remove("upgradeMode");
            }
            let error_type = s["error"]
                .as_str()
                .and_then(|e| serde_json::from_str::<Value>(e).ok())
                .map(|e| e["type"].clone())
                .unwrap_or(Value::Null);
            let newest = w.newest_job(&id);
            out.push_str(&format!(
                "{id}: lifecycle={} jm={} job={} reconciliation={} observedGeneration={} error={} running={} newest={} spec={}\n",
                s["lifecycleState"],
                s["jobManagerDeploymentStatus"],
                s["jobStatus"]["state"],
                s["reconciliationStatus"]["state"],
                s["observedGeneration"],
                error_type,
                w.running_instances(&id),
                newest
                    .map(|r| format!("{}@{}", w.job_state(r), r.parallelism))
                    .unwrap_or_else(|| "none".into()),
                spec
            ));
        }
    }
    out
}

/// Faults of one kind in a scenario's steps.
pub fn count_faults(steps: &[Step], kind: FaultKind) -> usize {
    steps
        .iter()
        .filter(|s| matches!(&s.action, Action::Fault(f) if f.kind == kind))
        .count()
}
