//! Random workloads: for one seed, a scenario of application and session deployments and
//! session jobs with random (valid and invalid) specs, spec changes, suspends, resumes,
//! savepoint and checkpoint nonces, deletes and re-creates over time, and random faults of
//! the kinds asked for. Fault *rates* come from the seed too (swarm testing): one seed
//! hammers the API with conflicts, the next crashes JobManagers.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use crate::invariants::BYSTANDER_LABEL;
use crate::scenario::{
    Action, ArtifactFailure, ClusterSettings, Fault, FaultKind, Scenario, Step, Target,
};
use crate::world::Rng;

/// The generator's random source: SplitMix64 like the world's, from another stream.
pub struct Dice(Rng);

impl Dice {
    pub fn new(seed: u64, stream: u64) -> Self {
        Dice(Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ stream))
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.0.next_u64() % n
        }
    }
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// What the generator knows of a resource it made.
#[derive(Clone)]
struct Resource {
    target: Target,
    /// The manifest it was (or will again be) created with.
    manifest: Value,
    exists: bool,
    suspended: bool,
    savepoint_nonce: i64,
    checkpoint_nonce: i64,
    restart_nonce: i64,
    session_job: bool,
    /// Its spec is broken on purpose now.
    broken: bool,
}

const IMAGE: &str = "flink:2.3";
const OTHER_IMAGE: &str = "flink:2.3.1";
const BROKEN_IMAGE: &str = "flink:no-such-tag";
const JAR: &str = "local:///opt/flink/examples/streaming/StateMachineExample.jar";

fn target(kind: &str, name: &str) -> Target {
    Target {
        kind: kind.into(),
        namespace: "default".into(),
        name: name.into(),
    }
}

fn step(action: Action) -> Step {
    Step { line: 0, action }
}

fn app_manifest(d: &mut Dice, name: &str) -> Value {
    let mode = *d.pick(&[
        "stateless",
        "savepoint",
        "savepoint",
        "last-state",
        "last-state",
    ]);
    let ha = mode == "last-state" || d.chance(0.5);
    let mut conf = json!({
        "taskmanager.numberOfTaskSlots": d.range(1, 4).to_string(),
        "state.savepoints.dir": "file:///flink-data/savepoints",
        "state.checkpoints.dir": "file:///flink-data/checkpoints",
    });
    if ha {
        conf["high-availability.type"] = json!("kubernetes");
        conf["high-availability.storageDir"] = json!("file:///flink-data/ha");
    }
    let mut job = json!({"jarURI": JAR, "parallelism": d.range(1, 4), "upgradeMode": mode});
    if d.chance(0.1) {
        job["state"] = json!("suspended");
    }
    json!({
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "image": IMAGE,
            "flinkVersion": "v2_3",
            "flinkConfiguration": conf,
            "jobManager": {"resource": {"memory": "2048m", "cpu": 1}},
            "taskManager": {"resource": {"memory": "2048m", "cpu": 1}},
            "job": job,
        }
    })
}

fn session_manifest() -> Value {
    json!({
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "session", "namespace": "default"},
        "spec": {
            "image": IMAGE,
            "flinkVersion": "v2_3",
            "flinkConfiguration": {
                "taskmanager.numberOfTaskSlots": "8",
                "state.savepoints.dir": "file:///flink-data/savepoints",
                "state.checkpoints.dir": "file:///flink-data/checkpoints",
            },
            "jobManager": {"resource": {"memory": "2048m", "cpu": 1}},
            "taskManager": {"resource": {"memory": "2048m", "cpu": 1}},
        }
    })
}

fn session_job_manifest(d: &mut Dice, name: &str) -> Value {
    let mode = *d.pick(&["stateless", "savepoint", "last-state"]);
    json!({
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkSessionJob",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "deploymentName": "session",
            "job": {
                "jarURI": format!("https://artifacts.example.com/{name}.jar"),
                "parallelism": d.range(1, 3),
                "upgradeMode": mode,
            }
        }
    })
}

fn bystanders() -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "team-notes", "namespace": "default",
                            "labels": {"app": "app-1", BYSTANDER_LABEL: "true"}},
               "data": {"note": "not the operator's"}}),
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "app-1-dashboard", "namespace": "default",
                            "labels": {"app": "app-1", "component": "jobmanager", BYSTANDER_LABEL: "true"}},
               "spec": {"ports": [{"port": 80}]}}),
    ]
}

/// Ways to make a spec invalid that the schema accepts (an API server would take them;
/// the operator's validation must refuse them and say so in the status).
fn breakage(d: &mut Dice, session_job: bool) -> Value {
    if session_job {
        return d
            .pick(&[
                json!({"spec": {"job": {"parallelism": -2}}}),
                json!({"spec": {"job": {"jarURI": null}}}),
                json!({"spec": {"deploymentName": "no-such-session"}}),
            ])
            .clone();
    }
    d.pick(&[
        json!({"spec": {"job": {"parallelism": -1}}}),
        json!({"spec": {"jobManager": {"replicas": 0}}}),
        json!({"spec": {"taskManager": {"resource": {"memory": "lots"}}}}),
        json!({"spec": {"flinkVersion": null}}),
        json!({"spec": {"job": {"jarURI": null}}}),
        json!({"spec": {"flinkConfiguration": {"kubernetes.operator.periodic.savepoint.interval": "soon"}}}),
    ])
    .clone()
}

/// The scenario of one seed: `duration` of workload and faults, ending with `heal: all`.
pub fn generate(seed: u64, duration: Duration, kinds: &[FaultKind]) -> Scenario {
    let mut d = Dice::new(seed, 1);
    let total = duration.as_millis() as u64;
    let mut operator = Vec::new();
    if d.chance(0.3) {
        operator.push((
            "kubernetes.operator.periodic.savepoint.interval".into(),
            "5min".into(),
        ));
        operator.push((
            "kubernetes.operator.savepoint.history.max.count".into(),
            "2".into(),
        ));
    }
    if d.chance(0.3) {
        operator.push((
            "kubernetes.operator.deployment.rollback.enabled".into(),
            "true".into(),
        ));
        operator.push((
            "kubernetes.operator.deployment.readiness.timeout".into(),
            "1min".into(),
        ));
    }
    if d.chance(0.3) {
        operator.push((
            "kubernetes.operator.job.restart.failed".into(),
            "true".into(),
        ));
    }
    if d.chance(0.2) {
        operator.push((
            "kubernetes.operator.job.savepoint-on-deletion".into(),
            "true".into(),
        ));
    }
    let cluster = ClusterSettings {
        checkpoint_interval: Duration::from_secs(*d.pick(&[10, 30, 60])),
        ..ClusterSettings::default()
    };

    let mut resources: Vec<Resource> = Vec::new();
    for i in 1..=d.range(1, 3) {
        let name = format!("app-{i}");
        resources.push(Resource {
            target: target("FlinkDeployment", &name),
            manifest: app_manifest(&mut d, &name),
            exists: false,
            suspended: false,
            savepoint_nonce: 0,
            checkpoint_nonce: 0,
            restart_nonce: 0,
            session_job: false,
            broken: false,
        });
    }
    if d.chance(0.5) {
        resources.push(Resource {
            target: target("FlinkDeployment", "session"),
            manifest: session_manifest(),
            exists: false,
            suspended: false,
            savepoint_nonce: 0,
            checkpoint_nonce: 0,
            restart_nonce: 0,
            session_job: false,
            broken: false,
        });
        for i in 1..=d.range(1, 2) {
            let name = format!("sjob-{i}");
            resources.push(Resource {
                target: target("FlinkSessionJob", &name),
                manifest: session_job_manifest(&mut d, &name),
                exists: false,
                suspended: false,
                savepoint_nonce: 0,
                checkpoint_nonce: 0,
                restart_nonce: 0,
                session_job: true,
                broken: false,
            });
        }
    }
    for r in resources.iter_mut() {
        r.suspended = r.manifest["spec"]["job"]["state"] == "suspended";
    }

    // Timed events: (offset ms, what). Creation first, spread over the first minutes.
    let mut events: Vec<(u64, Event)> = Vec::new();
    for (i, _) in resources.iter().enumerate() {
        events.push((d.below(120_000.min(total / 4 + 1)), Event::Create(i)));
    }
    let workload_events = d.range(3, 16);
    for _ in 0..workload_events {
        events.push((d.range(30_000, total.max(30_001)), Event::Change));
    }
    // Swarm: each kind asked for is on for this seed with some probability, at its own rate.
    for kind in kinds {
        if !d.chance(0.6) {
            continue;
        }
        for _ in 0..d.range(1, 3) {
            events.push((d.range(20_000, total.max(20_001)), Event::Fault(*kind)));
        }
    }
    events.sort_by_key(|(at, _)| *at);

    let mut steps = Vec::new();
    for doc in bystanders() {
        steps.push(step(Action::Apply(vec![doc])));
    }
    let mut now = 0u64;
    for (at, event) in events {
        if at > now {
            steps.push(step(Action::Advance(Duration::from_millis(at - now))));
            now = at;
        }
        match event {
            Event::Create(i) => {
                let r = &mut resources[i];
                r.exists = true;
                steps.push(step(Action::Apply(vec![r.manifest.clone()])));
            }
            Event::Change => {
                if let Some(s) = change(&mut d, &mut resources) {
                    steps.push(s);
                }
            }
            Event::Fault(kind) => {
                if let Some(f) = fault(&mut d, kind, &resources) {
                    steps.push(step(Action::Fault(f)));
                }
            }
        }
    }
    if total > now {
        steps.push(step(Action::Advance(Duration::from_millis(total - now))));
    }
    steps.push(step(Action::Heal(None)));
    Scenario {
        name: format!("explore seed {seed}"),
        description: None,
        seed,
        operator,
        cluster,
        steps,
        path: PathBuf::from(format!("explore-seed-{seed}.yaml")),
    }
}

enum Event {
    Create(usize),
    Change,
    Fault(FaultKind),
}

/// One random change to one random resource.
fn change(d: &mut Dice, resources: &mut [Resource]) -> Option<Step> {
    let i = d.below(resources.len() as u64) as usize;
    let r = &mut resources[i];
    let t = r.target.clone();
    if !r.exists {
        // Gone: bring it back (perhaps with another spec).
        r.exists = true;
        r.broken = false;
        r.savepoint_nonce = 0;
        r.checkpoint_nonce = 0;
        r.restart_nonce = 0;
        r.suspended = r.manifest["spec"]["job"]["state"] == "suspended";
        return Some(step(Action::Apply(vec![r.manifest.clone()])));
    }
    let patch = |merge: Value| {
        Some(step(Action::Patch {
            target: t.clone(),
            merge,
        }))
    };
    let is_session_cluster = r.manifest["spec"]["job"].is_null();
    if r.broken && d.chance(0.6) {
        // Fixed again: the manifest's spec as it was, with what changed since kept.
        r.broken = false;
        return Some(step(Action::Apply(vec![r.manifest.clone()])));
    }
    let roll = d.below(100);
    match roll {
        0..=7 => {
            r.exists = false;
            Some(step(Action::Delete(t)))
        }
        8..=15 if is_session_cluster => {
            r.broken = true;
            patch(
                d.pick(&[
                    json!({"spec": {"jobManager": {"replicas": 0}}}),
                    json!({"spec": {"taskManager": {"resource": {"memory": "lots"}}}}),
                    json!({"spec": {"flinkVersion": null}}),
                ])
                .clone(),
            )
        }
        8..=15 => {
            r.broken = true;
            patch(breakage(d, r.session_job))
        }
        _ if is_session_cluster => {
            // A session cluster: its configuration or image changes.
            let slots = d.range(4, 8).to_string();
            let spec = &mut r.manifest["spec"];
            spec["flinkConfiguration"]["taskmanager.numberOfTaskSlots"] = json!(slots);
            patch(json!({"spec": {"flinkConfiguration": {"taskmanager.numberOfTaskSlots": slots}}}))
        }
        16..=35 => {
            let p = d.range(1, 4);
            r.manifest["spec"]["job"]["parallelism"] = json!(p);
            patch(json!({"spec": {"job": {"parallelism": p}}}))
        }
        36..=45 => {
            let state = if r.suspended { "running" } else { "suspended" };
            r.suspended = !r.suspended;
            r.manifest["spec"]["job"]["state"] = json!(state);
            patch(json!({"spec": {"job": {"state": state}}}))
        }
        46..=57 => {
            r.savepoint_nonce += 1;
            patch(json!({"spec": {"job": {"savepointTriggerNonce": r.savepoint_nonce}}}))
        }
        58..=65 => {
            r.checkpoint_nonce += 1;
            patch(json!({"spec": {"job": {"checkpointTriggerNonce": r.checkpoint_nonce}}}))
        }
        66..=71 => {
            r.restart_nonce += 1;
            patch(json!({"spec": {"restartNonce": r.restart_nonce}}))
        }
        72..=79 => {
            let modes: &[&str] = &["stateless", "savepoint", "last-state"];
            let mode = *d.pick(modes);
            if !r.session_job && mode == "last-state" {
                r.manifest["spec"]["flinkConfiguration"]["high-availability.type"] =
                    json!("kubernetes");
                r.manifest["spec"]["flinkConfiguration"]["high-availability.storageDir"] =
                    json!("file:///flink-data/ha");
            }
            r.manifest["spec"]["job"]["upgradeMode"] = json!(mode);
            patch(
                json!({"spec": {"job": {"upgradeMode": mode}, "flinkConfiguration": r.manifest["spec"]["flinkConfiguration"].clone()}}),
            )
        }
        80..=89 if !r.session_job => {
            let image = *d.pick(&[IMAGE, OTHER_IMAGE, BROKEN_IMAGE]);
            r.manifest["spec"]["image"] = json!(image);
            patch(json!({"spec": {"image": image}}))
        }
        80..=89 => {
            let jar = format!(
                "https://artifacts.example.com/{}-v{}.jar",
                t.name,
                d.range(1, 3)
            );
            r.manifest["spec"]["job"]["jarURI"] = json!(jar);
            patch(json!({"spec": {"job": {"jarURI": jar}}}))
        }
        _ => {
            let key = "pipeline.max-parallelism";
            let value = (d.range(1, 4) * 32).to_string();
            if r.session_job {
                patch(json!({"spec": {"job": {"args": [format!("--max={value}")]}}}))
            } else {
                r.manifest["spec"]["flinkConfiguration"][key] = json!(value);
                patch(json!({"spec": {"flinkConfiguration": {key: value}}}))
            }
        }
    }
}

fn some_deployment(d: &mut Dice, resources: &[Resource]) -> Option<Target> {
    let fds: Vec<&Resource> = resources
        .iter()
        .filter(|r| r.target.kind == "FlinkDeployment")
        .collect();
    (!fds.is_empty()).then(|| d.pick(&fds).target.clone())
}

fn some_owner(d: &mut Dice, resources: &[Resource]) -> Option<Target> {
    let owners: Vec<&Resource> = resources
        .iter()
        .filter(|r| r.target.name != "session")
        .collect();
    (!owners.is_empty()).then(|| d.pick(&owners).target.clone())
}

fn secs(d: &mut Dice, lo: u64, hi: u64) -> Option<Duration> {
    Some(Duration::from_secs(d.range(lo, hi)))
}

/// One fault of `kind`, aimed at one of the resources.
fn fault(d: &mut Dice, kind: FaultKind, resources: &[Resource]) -> Option<Fault> {
    let mut f = Fault {
        kind,
        image: None,
        target: None,
        duration: None,
        count: None,
        terminal: None,
        uri: None,
        error: None,
    };
    match kind {
        FaultKind::ImagePull => {
            f.image = Some((*d.pick(&[IMAGE, OTHER_IMAGE])).to_string());
            f.duration = secs(d, 20, 300);
        }
        FaultKind::JobManagerCrash => {
            f.target = some_deployment(d, resources);
            if d.chance(0.5) {
                f.duration = secs(d, 20, 180);
            }
        }
        FaultKind::TaskManagerLoss => {
            f.target = some_deployment(d, resources);
            f.count = Some(1);
        }
        FaultKind::JobFailure => {
            f.target = some_owner(d, resources);
            f.terminal = Some(d.chance(0.3));
        }
        FaultKind::SavepointFailure => {
            f.target = some_deployment(d, resources);
            f.count = Some(d.range(1, 3) as u32);
        }
        FaultKind::RestUnavailable => {
            f.target = some_deployment(d, resources);
            f.duration = secs(d, 10, 180);
        }
        FaultKind::OperatorRestart => {}
        FaultKind::ApiConflict | FaultKind::DropWatchEvents => {
            f.count = Some(d.range(1, 5) as u32);
        }
        FaultKind::StaleReads => {
            f.duration = secs(d, 2, 60);
        }
        FaultKind::ArtifactFetch => {
            f.error = Some(*d.pick(&ArtifactFailure::ALL));
            f.count = Some(d.range(1, 3) as u32);
        }
        FaultKind::OperatorCrash => {
            f.count = Some(d.range(1, 40) as u32);
        }
    }
    let needs_target = matches!(
        kind,
        FaultKind::JobManagerCrash
            | FaultKind::TaskManagerLoss
            | FaultKind::JobFailure
            | FaultKind::SavepointFailure
            | FaultKind::RestUnavailable
    );
    if needs_target && f.target.is_none() {
        return None;
    }
    Some(f)
}

/// Random faults for a given scenario (`explore --scenario`): (offset ms, fault), in order,
/// aimed at the resources the scenario applies.
pub fn faults_for(
    seed: u64,
    scenario: &Scenario,
    span_ms: u64,
    kinds: &[FaultKind],
) -> Vec<(u64, Fault)> {
    let mut d = Dice::new(seed, 2);
    let mut resources = Vec::new();
    for s in &scenario.steps {
        if let Action::Apply(docs) = &s.action {
            for doc in docs {
                let kind = doc["kind"].as_str().unwrap_or_default();
                if kind != "FlinkDeployment" && kind != "FlinkSessionJob" {
                    continue;
                }
                let name = doc["metadata"]["name"].as_str().unwrap_or_default();
                let ns = doc["metadata"]["namespace"].as_str().unwrap_or("default");
                let t = Target {
                    kind: kind.into(),
                    namespace: ns.into(),
                    name: name.into(),
                };
                if resources.iter().any(|r: &Resource| r.target == t) {
                    continue;
                }
                resources.push(Resource {
                    target: t,
                    manifest: doc.clone(),
                    exists: true,
                    suspended: false,
                    savepoint_nonce: 0,
                    checkpoint_nonce: 0,
                    restart_nonce: 0,
                    session_job: kind == "FlinkSessionJob",
                    broken: false,
                });
            }
        }
    }
    let mut out = Vec::new();
    for kind in kinds {
        if !d.chance(0.6) {
            continue;
        }
        for _ in 0..d.range(1, 3) {
            let at = d.below(span_ms.max(1));
            if let Some(f) = fault(&mut d, *kind, &resources) {
                out.push((at, f));
            }
        }
    }
    out.sort_by_key(|(at, _)| *at);
    out
}
