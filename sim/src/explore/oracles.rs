//! History oracles (Acto's): over the FlinkDeployment specs of the scenario library, the
//! state reached from spec A then B equals the state from B applied fresh, and A → B → A
//! returns to A's state, job lineage aside.
//!
//! A history runs on one resource named `oracle`: each spec is applied, the world runs until
//! the resource is steady (as in the liveness phase), then one more minute (so checkpoints
//! exist), then the next spec. Compared: the status (lifecycle, JobManager, job and
//! reconciliation states, error type, the reconciled spec without the upgrade mode the
//! operator records it restored with), what runs (running jobs, parallelism) and the cluster
//! objects the operator built (Deployments, Services and the Flink ConfigMap), without
//! lineage: job ids, savepoint and checkpoint paths, generations, timestamps, the HA
//! metadata the previous job left.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::kube::key_of;
use crate::load::load_scenario;
use crate::runner::Simulation;
use crate::scenario::{Action, Scenario};
use flink_operator::crd::FlinkDeployment;

use super::run;

/// What the oracles found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub specs: usize,
    pub pairs: usize,
    pub failures: Vec<String>,
    /// Histories that end waiting for the user, as upstream does (see [`UPSTREAM`]): not
    /// comparable, counted.
    pub upstream: Vec<String>,
}

/// Where a history legitimately ends waiting for the user, by upstream's design: a
/// stateful upgrade that cannot be done without losing state or without a savepoint
/// directory in the running job's configuration (upstream takes the upgrade savepoint with the
/// deployed configuration, not the new one).
pub const UPSTREAM: [&str; 2] = [
    "Manual restore required",
    "No savepoint directory configured",
];

impl Report {
    pub fn render(&self) -> String {
        let mut out = format!(
            "history oracles: {} specs, {} pairs (A then B = B; A -> B -> A = A): {} failed, {} histories wait for the user as upstream does\n",
            self.specs,
            self.pairs,
            self.failures.len(),
            self.upstream.len()
        );
        for f in &self.failures {
            out.push_str(&format!("  {f}\n"));
        }
        out
    }
}

/// A spec from the library: where it came from, and the manifest renamed to `oracle`.
pub type Spec = (String, Value);

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().map(|e| e == "yaml").unwrap_or(false) {
            out.push(path);
        }
    }
}

/// The FlinkDeployment specs every scenario under `dir` applies.
pub fn library_specs(dir: &Path) -> Vec<Spec> {
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    specs_of(&files)
}

/// The FlinkDeployment specs these scenario files apply, each once.
pub fn specs_of(files: &[PathBuf]) -> Vec<Spec> {
    let mut out: Vec<Spec> = Vec::new();
    for file in files {
        let Ok(scenario) = load_scenario(file) else {
            continue;
        };
        for step in &scenario.steps {
            let Action::Apply(docs) = &step.action else {
                continue;
            };
            for doc in docs {
                if doc["kind"] != "FlinkDeployment" {
                    continue;
                }
                let manifest = json!({
                    "apiVersion": doc["apiVersion"],
                    "kind": "FlinkDeployment",
                    "metadata": {"name": "oracle", "namespace": "default"},
                    "spec": doc["spec"],
                });
                if !out.iter().any(|(_, m)| m == &manifest) {
                    out.push((file.display().to_string(), manifest));
                }
            }
        }
    }
    out
}

fn typed(manifest: &Value) -> Option<FlinkDeployment> {
    serde_json::from_value(manifest.clone()).ok()
}

fn valid(manifest: &Value, after: Option<&Value>) -> bool {
    let Some(fd) = typed(manifest) else {
        return false;
    };
    let previous = after.and_then(typed).map(|p| p.spec);
    flink_operator::validation::validate_deployment(&fd, previous.as_ref(), &BTreeMap::new())
        .is_empty()
}

/// Runs a history of specs; the normalised state at its end.
pub fn history(specs: &[&Value]) -> Result<String, String> {
    let scenario = Scenario {
        name: "history".into(),
        description: None,
        seed: 0,
        operator: Vec::new(),
        cluster: Default::default(),
        steps: Vec::new(),
        path: PathBuf::from("history.yaml"),
    };
    let mut sim = Simulation::new(&scenario);
    for (i, spec) in specs.iter().enumerate() {
        sim.act(&Action::Apply(vec![(*spec).clone()]))?;
        run::liveness(&mut sim, Duration::from_secs(15 * 60))
            .map_err(|e| format!("spec {} of the history: {e}", i + 1))?;
        let error = {
            let w = sim.ports.world.lock().unwrap_or_else(|e| e.into_inner());
            w.kube
                .get(&key_of("FlinkDeployment", "default", "oracle"))
                .and_then(|o| o["status"]["error"].as_str().map(str::to_string))
                .unwrap_or_default()
        };
        if UPSTREAM.iter().any(|u| error.contains(u)) {
            return Err(format!(
                "spec {} of the history waits for the user: {error}",
                i + 1
            ));
        }
        sim.act(&Action::Advance(Duration::from_secs(60)))?;
        if let Some(v) = sim.take_violation() {
            return Err(format!("invariant violated: {v}"));
        }
    }
    Ok(state(&sim))
}

/// The state compared (see the module's notes).
pub fn state(sim: &Simulation) -> String {
    let w = sim.ports.world.lock().unwrap_or_else(|e| e.into_inner());
    let Some(fd) = w.kube.get(&key_of("FlinkDeployment", "default", "oracle")) else {
        return "absent".into();
    };
    let s = &fd["status"];
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
    let owner = "FlinkDeployment/default/oracle";
    // A suspended job that once ran says SUSPENDED; one that never ran says nothing.
    let job_state = match (&s["jobStatus"]["state"], s["lifecycleState"].as_str()) {
        (Value::Null, Some("SUSPENDED")) => json!("SUSPENDED"),
        (state, _) => state.clone(),
    };
    let newest = w.newest_job(owner);
    let mut out = format!(
        "status: lifecycle={} jm={} job={} reconciliation={} error={} taskManager={}\nreconciled: {}\nruns: {} job(s), newest {}\n",
        s["lifecycleState"],
        s["jobManagerDeploymentStatus"],
        job_state,
        s["reconciliationStatus"]["state"],
        error_type,
        s["taskManager"],
        spec,
        w.running_instances(owner),
        newest
            .filter(|_| w.running_instances(owner) > 0)
            .map(|r| format!("{} parallelism {}", w.job_state(r), r.parallelism))
            .unwrap_or_else(|| "none".into()),
    );
    const LINEAGE: [&str; 3] = [
        "$internal.pipeline.job-id",
        "execution.savepoint.path",
        "execution.state-recovery.path",
    ];
    for kind in ["Deployment", "Service", "ConfigMap"] {
        for obj in w.kube.list(kind, "default") {
            let name = obj["metadata"]["name"].as_str().unwrap_or_default();
            if name.ends_with("-cluster-config-map") {
                continue; // HA metadata: the previous job's lineage
            }
            let mut body = json!({"spec": obj["spec"], "data": obj["data"], "labels": obj["metadata"]["labels"]});
            if let Some(a) = body
                .pointer_mut("/spec/template/metadata/annotations")
                .and_then(Value::as_object_mut)
            {
                a.clear();
            }
            if let Some(text) = body["data"]["config.yaml"].as_str() {
                let kept: Vec<&str> = text
                    .lines()
                    .filter(|l| !LINEAGE.iter().any(|k| l.starts_with(&format!("{k}:"))))
                    .collect();
                body["data"]["config.yaml"] = json!(kept.join("\n"));
            }
            out.push_str(&format!("{kind}/{name}: {body}\n"));
        }
    }
    out
}

fn first_difference(a: &str, b: &str) -> String {
    let extra: Vec<&str> = b.lines().filter(|l| !a.lines().any(|x| x == *l)).collect();
    let missing = a.lines().any(|l| !b.lines().any(|y| y == l));
    if !missing && !extra.is_empty() && a.contains("lifecycle=\"SUSPENDED\"") {
        let names: Vec<&str> = extra
            .iter()
            .map(|l| l.split(':').next().unwrap_or(l))
            .collect();
        return format!("{LEFT_OVER}: {}", names.join(", "));
    }
    for (x, y) in a.lines().zip(b.lines()) {
        if x != y {
            return format!("{x}  <>  {y}");
        }
    }
    format!("{} lines <> {} lines", a.lines().count(), b.lines().count())
}

/// A deployment suspended after it ran must keep nothing but what one created suspended
/// has (upstream's Services and Flink ConfigMap go with the JobManager Deployment).
const LEFT_OVER: &str = "objects left over after a suspend";

/// Checks the pairs of specs (at most `limit`): A then B equals B fresh; A → B → A equals A.
pub fn check(specs: &[Spec], limit: usize) -> Report {
    let usable: Vec<&Spec> = specs.iter().filter(|(_, m)| valid(m, None)).collect();
    let mut report = Report {
        specs: usable.len(),
        ..Default::default()
    };
    let mut fresh: BTreeMap<usize, Result<String, String>> = BTreeMap::new();
    let mut fresh_of = |i: usize| {
        fresh
            .entry(i)
            .or_insert_with(|| history(&[&usable[i].1]))
            .clone()
    };
    // Every ordered pair, in an order that mixes the library (a sample is a fair one).
    let mut pairs: Vec<(usize, usize)> = (0..usable.len())
        .flat_map(|a| (0..usable.len()).map(move |b| (a, b)))
        .filter(|(a, b)| a != b)
        .collect();
    pairs.sort_by_key(|(a, b)| {
        let mut d = super::workload::Dice::new((*a as u64) << 32 | *b as u64, 3);
        d.below(u64::MAX)
    });
    'pairs: for (a, b) in pairs {
        {
            if usable[a].1 == usable[b].1 {
                continue;
            }
            let (ma, mb) = (&usable[a].1, &usable[b].1);
            // Only changes the operator accepts (and back).
            if !valid(mb, Some(ma)) || !valid(ma, Some(mb)) {
                continue;
            }
            if report.pairs >= limit {
                break 'pairs;
            }
            report.pairs += 1;
            let name = format!("{} -> {}", usable[a].0, usable[b].0);
            let (Ok(only_a), Ok(only_b)) = (fresh_of(a), fresh_of(b)) else {
                report
                    .failures
                    .push(format!("{name}: a spec alone does not settle"));
                continue;
            };
            match super::quietly(|| std::panic::catch_unwind(|| history(&[ma, mb]))) {
                Ok(Ok(ab)) if ab == only_b => {}
                Ok(Ok(ab)) => report.failures.push(format!(
                    "history: {name}: A then B differs from B: {}",
                    first_difference(&only_b, &ab)
                )),
                Ok(Err(e)) => report
                    .failures
                    .push(format!("history: {name}: A then B: {e}")),
                Err(_) => report.failures.push(format!("history: {name}: panicked")),
            }
            match super::quietly(|| std::panic::catch_unwind(|| history(&[ma, mb, ma]))) {
                Ok(Ok(aba)) if aba == only_a => {}
                Ok(Ok(aba)) => report.failures.push(format!(
                    "history: {name}: A -> B -> A differs from A: {}",
                    first_difference(&only_a, &aba)
                )),
                Ok(Err(e)) => report
                    .failures
                    .push(format!("history: {name}: A -> B -> A: {e}")),
                Err(_) => report.failures.push(format!("history: {name}: panicked")),
            }
        }
    }
    let (upstream, failures): (Vec<String>, Vec<String>) = report
        .failures
        .drain(..)
        .partition(|f| UPSTREAM.iter().any(|u| f.contains(u)));
    report.failures = failures;
    report.upstream = upstream;
    report
}
