//! The benchmark's workload: N application deployments with mixed upgrade modes and Flink
//! versions, created over the first minutes, then spec changes, manual savepoints,
//! suspend/resume and faults spread over the virtual duration. Everything is drawn from the
//! seed, so the same seed gives the same plan.

use std::time::Duration;

use serde_json::{json, Value};

use crate::scenario::{ClusterSettings, Fault, FaultKind, Target};
use crate::world::Rng;

/// Namespaces the deployments are spread over.
pub const NAMESPACES: usize = 10;

/// After an event that need not change the lifecycle state (a savepoint, a fault, a spec
/// change the operator reacts to late), a deployment counts as steady again only this long
/// after it, and once it is STABLE.
pub const SETTLE_MS: i64 = 5 * 60 * 1000;

/// The world the benchmark runs in: the simulator's defaults, with checkpoints every
/// minute (a common production interval) instead of every 10 seconds.
pub fn cluster_settings() -> ClusterSettings {
    ClusterSettings {
        checkpoint_interval: Duration::from_secs(60),
        ..ClusterSettings::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Stateless,
    Savepoint,
    LastState,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Stateless => "stateless",
            Mode::Savepoint => "savepoint",
            Mode::LastState => "last-state",
        }
    }
}

/// Flink versions in the mix: (flinkVersion, image tag, next version for an upgrade).
const VERSIONS: [(&str, &str); 6] = [
    ("v1_19", "1.19"),
    ("v1_20", "1.20"),
    ("v2_0", "2.0"),
    ("v2_1", "2.1"),
    ("v2_2", "2.2"),
    ("v2_3", "2.3"),
];

/// One deployment of the workload.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub namespace: String,
    pub name: String,
    pub mode: Mode,
    pub version: usize,
    /// As created, as compact JSON text (thousands of them wait for their time).
    pub manifest: String,
    /// While planning, the spec as the changes planned so far leave it.
    planned: Value,
}

impl Deployment {
    /// The manifest as created.
    pub fn manifest(&self) -> Value {
        serde_json::from_str(&self.manifest).expect("a manifest the plan wrote")
    }

    pub fn target(&self) -> Target {
        Target {
            kind: "FlinkDeployment".into(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

/// What happens at a planned moment.
#[derive(Debug, Clone)]
pub enum Change {
    /// The deployment is applied.
    Create,
    /// A spec change that needs an upgrade (JSON merge patch of the resource).
    Upgrade(Value),
    /// A manual savepoint (a new `savepointTriggerNonce`).
    Savepoint(i64),
    Suspend,
    Resume,
    /// A fault aimed at this deployment.
    Fault(Fault),
    /// A fault of the whole world (not aimed at one deployment).
    GlobalFault(Fault),
}

impl Change {
    /// A change of the resource's spec (what the reaction time is measured on).
    pub fn is_spec_change(&self) -> bool {
        matches!(
            self,
            Change::Upgrade(_) | Change::Savepoint(_) | Change::Suspend | Change::Resume
        )
    }

    /// The world's own delays between this change and STABLE (pod start, job start,
    /// savepoint), for changes that end in STABLE; None for the others.
    pub fn world_delay(&self, mode: Mode, cluster: &ClusterSettings) -> Option<i64> {
        let ms = |d: Duration| d.as_millis() as i64;
        let start = ms(cluster.pod_startup) + ms(cluster.job_startup);
        match self {
            Change::Create | Change::Resume => Some(start),
            Change::Upgrade(_) => Some(match mode {
                Mode::Savepoint => ms(cluster.savepoint_duration) + start,
                Mode::Stateless | Mode::LastState => start,
            }),
            _ => None,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Upgrade(_) => "upgrade",
            Change::Savepoint(_) => "savepoint",
            Change::Suspend => "suspend",
            Change::Resume => "resume",
            Change::Fault(_) => "fault",
            Change::GlobalFault(_) => "global fault",
        }
    }
}

/// One planned change: when (virtual ms since the start), to which deployment (None: the
/// world), what.
#[derive(Debug, Clone)]
pub struct Planned {
    pub at: i64,
    pub deployment: Option<usize>,
    pub change: Change,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub deployments: Vec<Deployment>,
    /// In time order (ties in the order drawn).
    pub events: Vec<Planned>,
    pub duration_ms: i64,
}

pub fn name_of(index: usize) -> String {
    format!("fd-{index:05}")
}

/// The deployment index from a resource name (`fd-00042`), if it is one of ours.
pub fn index_of(name: &str) -> Option<usize> {
    name.strip_prefix("fd-")?.parse().ok()
}

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[(rng.next_u64() % items.len() as u64) as usize]
}

fn uniform(rng: &mut Rng, from: i64, to: i64) -> i64 {
    if to <= from {
        return from;
    }
    from + (rng.next_u64() % (to - from) as u64) as i64
}

fn chance(rng: &mut Rng, percent: u64) -> bool {
    rng.next_u64() % 100 < percent
}

fn manifest(index: usize, mode: Mode, version: usize, rng: &mut Rng) -> Value {
    let (flink_version, tag) = VERSIONS[version];
    let flink2 = flink_version.starts_with("v2");
    let slots = 1 + rng.next_u64() % 2;
    let parallelism = 1 + rng.next_u64() % 4;
    let mut conf = serde_json::Map::new();
    conf.insert(
        "taskmanager.numberOfTaskSlots".into(),
        json!(slots.to_string()),
    );
    // Flink 2.x deployments use either name of the state directories.
    if flink2 && chance(rng, 50) {
        conf.insert(
            "execution.checkpointing.dir".into(),
            json!("file:///flink-data/checkpoints"),
        );
        conf.insert(
            "execution.checkpointing.savepoint-dir".into(),
            json!("file:///flink-data/savepoints"),
        );
    } else {
        conf.insert(
            "state.checkpoints.dir".into(),
            json!("file:///flink-data/checkpoints"),
        );
        conf.insert(
            "state.savepoints.dir".into(),
            json!("file:///flink-data/savepoints"),
        );
    }
    if mode == Mode::LastState {
        conf.insert("high-availability.type".into(), json!("kubernetes"));
        conf.insert(
            "high-availability.storageDir".into(),
            json!("file:///flink-data/ha"),
        );
    }
    json!({
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name_of(index), "namespace": format!("team-{}", index % NAMESPACES)},
        "spec": {
            "image": format!("flink:{tag}"),
            "flinkVersion": flink_version,
            "serviceAccount": "flink",
            "flinkConfiguration": conf,
            "jobManager": {"resource": {"memory": "2048m", "cpu": 1}},
            "taskManager": {"resource": {"memory": "2048m", "cpu": 1}},
            "job": {
                "jarURI": "local:///opt/flink/examples/streaming/StateMachineExample.jar",
                "parallelism": parallelism,
                "upgradeMode": mode.name(),
            }
        }
    })
}

/// A spec change that needs an upgrade: parallelism, TaskManager memory, a configuration
/// value or the Flink version (to the next one of the same major version, image with it).
/// Always a change: the planned spec follows the patches.
fn upgrade_patch(d: &mut Deployment, rng: &mut Rng, serial: i64) -> Value {
    let spec = &d.planned["spec"];
    let patch = match rng.next_u64() % 4 {
        1 => {
            let memory = spec["taskManager"]["resource"]["memory"]
                .as_str()
                .unwrap_or("2048m");
            let mb: i64 = memory.trim_end_matches('m').parse().unwrap_or(2048);
            let next = if mb >= 4096 { 2048 } else { mb + 256 };
            json!({"spec": {"taskManager": {"resource": {"memory": format!("{next}m")}}}})
        }
        2 => {
            json!({"spec": {"flinkConfiguration": {"pipeline.name": format!("revision-{serial}")}}})
        }
        3 if d.version + 1 < VERSIONS.len()
            && VERSIONS[d.version].0[..2] == VERSIONS[d.version + 1].0[..2] =>
        {
            d.version += 1;
            let (v, tag) = VERSIONS[d.version];
            json!({"spec": {"flinkVersion": v, "image": format!("flink:{tag}")}})
        }
        _ => {
            let p = spec["job"]["parallelism"].as_i64().unwrap_or(1);
            json!({"spec": {"job": {"parallelism": p % 4 + 1}}})
        }
    };
    crate::runner::merge_patch(&mut d.planned, &patch);
    patch
}

/// How many of a thing happen in `hours` at `per_hour`: the whole part, plus one more with
/// the chance of the fraction.
fn count(rng: &mut Rng, per_hour: f64, hours: f64) -> usize {
    let expected = per_hour * hours;
    let whole = expected.floor();
    let extra = (rng.next_u64() % 1_000_000) as f64 / 1_000_000.0 < expected - whole;
    whole as usize + usize::from(extra)
}

/// The plan for `n` deployments over `duration`.
pub fn plan(n: usize, duration: Duration, seed: u64) -> Plan {
    let mut rng = Rng::new(seed ^ 0xBE4C_4B00);
    let duration_ms = duration.as_millis() as i64;
    let hours = duration_ms as f64 / 3_600_000.0;
    // Deployments arrive over the first tenth of the run (at most 6 minutes).
    let arrival = (duration_ms / 10).clamp(1000, 6 * 60 * 1000);
    let mut deployments = Vec::with_capacity(n);
    let mut events = Vec::new();
    let mut serial = 0i64;
    for i in 0..n {
        let mode = *pick(
            &mut rng,
            &[
                Mode::Stateless,
                Mode::Stateless,
                Mode::Savepoint,
                Mode::Savepoint,
                Mode::LastState,
            ],
        );
        let version = (rng.next_u64() % VERSIONS.len() as u64) as usize;
        let manifest = manifest(i, mode, version, &mut rng);
        let mut d = Deployment {
            namespace: format!("team-{}", i % NAMESPACES),
            name: name_of(i),
            mode,
            version,
            manifest: manifest.to_string(),
            planned: manifest,
        };
        let created = uniform(&mut rng, 0, arrival);
        events.push(Planned {
            at: created,
            deployment: Some(i),
            change: Change::Create,
        });
        // Later changes, at least three minutes apart, from three minutes after creation
        // to a minute before the end.
        let from = created + 3 * 60 * 1000;
        let to = duration_ms - 60 * 1000;
        let mut kinds: Vec<u8> = Vec::new();
        kinds.extend(std::iter::repeat_n(0u8, count(&mut rng, 1.0, hours))); // upgrade
        kinds.extend(std::iter::repeat_n(1u8, count(&mut rng, 0.5, hours))); // savepoint
        kinds.extend(std::iter::repeat_n(2u8, count(&mut rng, 0.2, hours))); // suspend+resume
        kinds.extend(std::iter::repeat_n(3u8, count(&mut rng, 0.4, hours))); // fault
        let mut times: Vec<i64> = kinds.iter().map(|_| uniform(&mut rng, from, to)).collect();
        times.sort_unstable();
        let mut last = i64::MIN / 2;
        let mut suspended_until = i64::MIN;
        for (kind, at) in kinds.into_iter().zip(times) {
            if at - last < 3 * 60 * 1000 || at < suspended_until {
                continue;
            }
            last = at;
            serial += 1;
            let change = match kind {
                0 => Change::Upgrade(upgrade_patch(&mut d, &mut rng, serial)),
                1 => Change::Savepoint(serial),
                2 => {
                    // Resumed two to five minutes later.
                    let back = at + uniform(&mut rng, 2 * 60 * 1000, 5 * 60 * 1000);
                    if back < to {
                        events.push(Planned {
                            at: back,
                            deployment: Some(i),
                            change: Change::Resume,
                        });
                        suspended_until = back + 3 * 60 * 1000;
                        last = back;
                        Change::Suspend
                    } else {
                        Change::Savepoint(serial)
                    }
                }
                _ => Change::Fault(fault(&mut rng, &d)),
            };
            events.push(Planned {
                at,
                deployment: Some(i),
                change,
            });
        }
        d.planned = Value::Null;
        deployments.push(d);
    }
    // Faults of the whole world: a conflicting write or a lost watch event now and then.
    let global = count(&mut rng, n as f64 / 100.0, hours);
    for _ in 0..global {
        let kind = if chance(&mut rng, 50) {
            FaultKind::ApiConflict
        } else {
            FaultKind::DropWatchEvents
        };
        events.push(Planned {
            at: uniform(&mut rng, arrival, duration_ms),
            deployment: None,
            change: Change::GlobalFault(Fault {
                kind,
                image: None,
                target: None,
                duration: None,
                count: Some(1),
                terminal: None,
                uri: None,
                error: None,
            }),
        });
    }
    // Stable order: by time, then as drawn.
    events.sort_by_key(|e| e.at);
    Plan {
        deployments,
        events,
        duration_ms,
    }
}

fn fault(rng: &mut Rng, d: &Deployment) -> Fault {
    let mut f = Fault {
        kind: FaultKind::JobFailure,
        image: None,
        target: Some(d.target()),
        duration: None,
        count: None,
        terminal: None,
        uri: None,
        error: None,
    };
    match rng.next_u64() % 4 {
        0 => f.kind = FaultKind::JobManagerCrash,
        1 => f.kind = FaultKind::TaskManagerLoss,
        2 => f.terminal = Some(false),
        _ => {
            f.kind = FaultKind::RestUnavailable;
            f.duration = Some(Duration::from_secs(30));
        }
    }
    f
}
