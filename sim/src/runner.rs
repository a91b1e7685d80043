//! Runs a scenario: the operator's real controller loop and reconcile code against the
//! simulated world, step by step, recording the timeline and checking every await/expect.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};

use serde_json::{json, Value};

use crate::invariants::Invariants;
use crate::kube::key_of;
use crate::ports::SimPorts;
use crate::scenario::{Action, Check, FaultKind, Scenario, Step, Target};
use crate::timeline::{Entry, What};
use crate::world::{Journal, World};
use flink_operator::artifacts::ArtifactSettings;
use flink_operator::controller::{self, Kind, ObjectKey, Scheduler, WatchFilter};
use flink_operator::reconcile::Context;

/// Simulated ports never wait, so a reconcile runs to completion in one poll.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = TaskContext::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => {
            panic!("a simulated port returned Pending; the simulation must never wait")
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub timeline: Vec<Entry>,
    /// The first failed await/expect, with the step's line, expected and actual.
    pub failure: Option<String>,
    /// Named snapshots taken by `snapshot:` steps, and the final one ("end").
    pub snapshots: Vec<(String, String)>,
    pub end_ms: u64,
    /// Writes the operator made to the Kubernetes API.
    pub operator_writes: u64,
}

/// The operator as it lives in the simulation: its in-memory state is only the work queue
/// and what it remembers of generations; a restart loses both.
pub struct Simulation {
    pub ports: SimPorts,
    pub scheduler: Scheduler,
    operator_config: BTreeMap<String, String>,
    watch: WatchFilter,
    invariants: Invariants,
    /// The first invariant violation, which fails the run.
    violation: Option<String>,
    timeline: Vec<Entry>,
    /// (Hashed: looked up per status write, never listed.)
    seen: rustc_hash::FxHashMap<String, [Option<String>; 4]>,
    faults_seen: usize,
    start: i64,
    /// False when an operator outside the world drives it (`flink-sim serve
    /// --external-operator`): the world runs, nothing in it reconciles.
    operator: bool,
    /// Sieve's unobserved and stale states, for `flink-sim explore --systematic`.
    pub notifications: NotificationPlan,
    /// When the operator next lists every resource (its watch re-established), which finds
    /// the resources it never heard of (their events were lost).
    next_resync: i64,
    /// Every reconcile with the requests it made, when asked for (`flink-sim bench`).
    reconcile_log: Option<Vec<ReconcileRecord>>,
    /// The invariants over the whole world run at most once per this many virtual ms (0:
    /// after every step; statuses written are checked every time regardless).
    state_check_interval: i64,
    next_state_check: i64,
    /// Print every reconcile and how it ended to stderr (`flink-sim run --trace`).
    pub trace: bool,
}

/// One reconcile, for benchmarks: which resource, when (epoch ms), and the requests it made.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconcileRecord {
    pub key: ObjectKey,
    pub at: i64,
    pub kube_requests: u64,
    pub kube_writes: u64,
    pub flink_requests: u64,
}

/// How often the operator's watches re-list (as a watch that times out and restarts does).
pub const RESYNC_MS: i64 = 5 * 60 * 1000;

/// Watch notifications the operator got, and what to do to one of them (by its 1-based
/// number): hide it (the operator sees the change only at its next resync), or make the
/// operator read, right then, the API as it was before the change (a lagging API server).
#[derive(Debug, Default)]
pub struct NotificationPlan {
    /// Notifications delivered (or hidden) so far.
    pub count: u64,
    pub hide: Option<u64>,
    pub stale: Option<u64>,
    /// The API as of the previous delivery, kept while `stale` is armed.
    before: Option<crate::kube::KubeStore>,
}

/// Reconciles of one resource one instant may run before the loop declares the operator stuck.
const MAX_RECONCILES_PER_INSTANT: usize = 200;

impl Simulation {
    pub fn new(scenario: &Scenario) -> Self {
        let mut world = World::new(scenario.seed, scenario.cluster.clone());
        let operator_config: BTreeMap<String, String> = scenario.operator.iter().cloned().collect();
        // The loader has checked these settings.
        world.artifact_settings =
            ArtifactSettings::from_operator_config(&operator_config).unwrap_or_default();
        let start = world.now;
        Simulation {
            ports: SimPorts {
                world: Arc::new(Mutex::new(world)),
            },
            scheduler: Scheduler::default(),
            operator_config,
            watch: WatchFilter::default(),
            invariants: Invariants::default(),
            violation: None,
            timeline: Vec::new(),
            seen: Default::default(),
            faults_seen: 0,
            start,
            operator: true,
            notifications: NotificationPlan::default(),
            next_resync: start + RESYNC_MS,
            reconcile_log: None,
            state_check_interval: 0,
            next_state_check: i64::MIN,
            trace: false,
        }
    }

    /// Runs the invariants over the whole world (each of them a look at every resource and
    /// cluster) at most once per `interval` of virtual time instead of after every step, for
    /// runs with thousands of resources (`flink-sim bench`). Every status the operator writes
    /// is still checked as it is written.
    pub fn check_world_every(&mut self, interval: std::time::Duration) {
        self.state_check_interval = interval.as_millis() as i64;
    }

    /// Records every reconcile from now on; [`Simulation::take_reconciles`] hands them out.
    pub fn log_reconciles(&mut self) {
        self.reconcile_log.get_or_insert_with(Vec::new);
    }

    /// The reconciles recorded since the last call.
    pub fn take_reconciles(&mut self) -> Vec<ReconcileRecord> {
        self.reconcile_log
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.ports.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> i64 {
        self.world().now
    }

    fn offset(&self) -> u64 {
        (self.now() - self.start).max(0) as u64
    }

    /// Watch events reach the operator, unless a `dropWatchEvents` fault eats them. Status-only
    /// changes of our resources are filtered (upstream is generation-aware).
    fn deliver_watch(&mut self) {
        let events = {
            let mut w = self.world();
            w.flush_watch();
            std::mem::take(&mut w.watch_queue)
        };
        let now = self.now();
        for event in events {
            let (kind, ns, name) = &event.key;
            let keys = self
                .watch
                .on_change(kind, ns, name, &event.object, event.deleted);
            let new_specs = self.watch.take_new_specs();
            for key in keys {
                if self.world().consume_fault(FaultKind::DropWatchEvents, None) {
                    continue;
                }
                self.notifications.count += 1;
                let n = self.notifications.count;
                if self.notifications.hide == Some(n) {
                    continue;
                }
                if self.notifications.stale == Some(n) {
                    self.stale_view_now();
                }
                if new_specs.contains(&key) {
                    self.scheduler.restart_backoff(&key);
                }
                self.scheduler.notify(key, now);
            }
        }
        if self.notifications.stale > Some(self.notifications.count) {
            let view = self.world().kube.clone();
            self.notifications.before = Some(view);
        }
    }

    /// The operator reads the API as of the previous delivery for the rest of this instant.
    fn stale_view_now(&mut self) {
        let before = self.notifications.before.take();
        let mut w = self.world();
        w.inject(crate::scenario::Fault {
            kind: FaultKind::StaleReads,
            image: None,
            target: None,
            duration: Some(std::time::Duration::from_millis(1)),
            count: None,
            terminal: None,
            uri: None,
            error: None,
        });
        if let Some(view) = before {
            w.stale_view = Some(view);
        }
    }

    /// The operator process restarts: only what it wrote to the API survives. On start it
    /// lists every resource, as a fresh watch does.
    pub fn restart_operator(&mut self) {
        self.scheduler = Scheduler::default();
        self.watch.reset();
        let now = self.now();
        let keys: Vec<(String, String, String)> = self
            .world()
            .kube
            .keys()
            .filter(|k| k.0 == "FlinkDeployment" || k.0 == "FlinkSessionJob")
            .collect();
        for (kind, namespace, name) in keys {
            let kind = if kind == "FlinkDeployment" {
                Kind::FlinkDeployment
            } else {
                Kind::FlinkSessionJob
            };
            self.scheduler.notify(
                ObjectKey {
                    kind,
                    namespace,
                    name,
                },
                now,
            );
        }
    }

    fn reconcile_due(&mut self) -> Result<(), String> {
        if !self.operator {
            self.world().watch_queue.clear();
            return Ok(());
        }
        // Reconciles of each resource at this instant: a resource that never settles is stuck.
        let mut counts: BTreeMap<ObjectKey, usize> = BTreeMap::new();
        loop {
            self.deliver_watch();
            self.resync();
            let now = self.now();
            let Some(key) = self.scheduler.pop_due(now) else {
                return Ok(());
            };
            let count = counts.entry(key.clone()).or_insert(0);
            *count += 1;
            if *count > MAX_RECONCILES_PER_INSTANT {
                return Err(format!("the operator reconciled {key:?} more than {MAX_RECONCILES_PER_INSTANT} times at one instant"));
            }
            let before = self
                .reconcile_log
                .is_some()
                .then(|| self.world().counters.clone());
            // Jobs a reconcile submits belong to the resource being reconciled.
            self.world().current_actor =
                format!("{}/{}/{}", key.kind.as_str(), key.namespace, key.name);
            let ctx = Context {
                kube: &self.ports,
                flink: &self.ports,
                artifacts: &self.ports,
                clock: &self.ports,
                operator_config: &self.operator_config,
            };
            // Errors are retried with backoff by the controller; the run shows their effects.
            let result = block_on(controller::reconcile_key(&ctx, &mut self.scheduler, &key));
            if self.trace {
                let ms = now - self.start;
                let at = format!("+{:>4}:{:02}.{:03}", ms / 60_000, ms / 1000 % 60, ms % 1000);
                let id = format!("{}/{}/{}", key.kind.as_str(), key.namespace, key.name);
                match result {
                    Ok(()) => eprintln!("{at} reconcile {id}: ok"),
                    Err(e) => eprintln!("{at} reconcile {id}: {e}"),
                }
            }
            if let Some(before) = before {
                let after = self.world().counters.clone();
                if let Some(log) = self.reconcile_log.as_mut() {
                    log.push(ReconcileRecord {
                        key: key.clone(),
                        at: now,
                        kube_requests: after.kube_requests - before.kube_requests,
                        kube_writes: after.kube_writes - before.kube_writes,
                        flink_requests: after.flink_requests - before.flink_requests,
                    });
                }
            }
            let crashed = std::mem::take(&mut self.world().operator_crashed);
            if crashed {
                let offset = self.offset();
                let writes = self.world().counters.kube_writes;
                self.timeline.push(Entry {
                    at_ms: offset,
                    resource: "world".into(),
                    what: What::Fault(format!("operator crashed after write {writes}")),
                });
                self.restart_operator();
            }
            self.world().tick();
            self.record();
        }
    }

    /// The Flink resources in the API the operator has no reconcile coming for.
    fn unscheduled(&self) -> Vec<ObjectKey> {
        let keys: Vec<(String, String, String)> = self
            .world()
            .kube
            .keys()
            .filter(|k| k.0 == "FlinkDeployment" || k.0 == "FlinkSessionJob")
            .collect();
        keys.into_iter()
            .map(|(kind, namespace, name)| ObjectKey {
                kind: if kind == "FlinkDeployment" {
                    Kind::FlinkDeployment
                } else {
                    Kind::FlinkSessionJob
                },
                namespace,
                name,
            })
            .filter(|k| !self.scheduler.is_scheduled(k))
            .collect()
    }

    /// The periodic re-list: resources whose events were lost are found.
    fn resync(&mut self) {
        let now = self.now();
        if now < self.next_resync {
            return;
        }
        self.next_resync = now + RESYNC_MS;
        for key in self.unscheduled() {
            self.scheduler.notify(key, now);
        }
    }

    /// The next re-list, when it would find something.
    fn resync_wake(&self) -> Option<i64> {
        (self.operator && !self.unscheduled().is_empty()).then_some(self.next_resync)
    }

    /// Starts the virtual clock at `epoch_ms` instead of 2026-01-01 (the served API starts
    /// it at the wall clock, so ages and timestamps read naturally). Only before anything ran.
    pub fn start_clock_at(&mut self, epoch_ms: i64) {
        self.world().now = epoch_ms;
        self.start = epoch_ms;
        self.next_resync = epoch_ms + RESYNC_MS;
    }

    /// No operator in the world from now on: one outside it (the real binary, through the
    /// served API) does the reconciling.
    pub fn without_operator(&mut self) {
        self.operator = false;
        self.scheduler = Scheduler::default();
    }

    /// The timeline recorded since the last call (the served API prints it as it goes).
    pub fn take_timeline(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.timeline)
    }

    /// The first invariant violation since the last call, if any.
    pub fn take_violation(&mut self) -> Option<String> {
        self.violation.take()
    }

    /// Kills the operator right after its `n`-th write to the Kubernetes API.
    pub fn crash_after_write(&mut self, n: u64) {
        self.world().crash_after_write = Some(n);
    }

    /// Writes the operator has made so far.
    pub fn operator_writes(&self) -> u64 {
        self.world().counters.kube_writes
    }

    /// Appends what happened since the last look to the timeline, in order.
    fn record(&mut self) {
        let (journal, faults) = {
            let mut w = self.world();
            w.flush_watch();
            let journal = std::mem::take(&mut w.journal);
            (journal, w.fault_log[self.faults_seen..].to_vec())
        };
        self.faults_seen += faults.len();
        for (at, resource, text, heal) in faults {
            let what = if heal {
                What::Heal(text)
            } else {
                What::Fault(text)
            };
            self.timeline.push(Entry {
                at_ms: (at - self.start) as u64,
                resource,
                what,
            });
        }
        // What was written to Flink resources, for the invariants on statuses (taken out of
        // the journal below, without a copy).
        let mut writes: Vec<(String, Option<Arc<Value>>)> = Vec::new();
        for (at, item) in journal {
            let at_ms = (at - self.start).max(0) as u64;
            match item {
                Journal::Event(e) => self.timeline.push(Entry {
                    at_ms,
                    resource: format!("{}/{}/{}", e.kind, e.namespace, e.name),
                    what: What::Event {
                        kind: e.event_type.as_str().to_string(),
                        reason: e.reason,
                        message: e.message,
                    },
                }),
                Journal::Resource(id, None) => {
                    self.seen.remove(&id);
                    self.timeline.push(Entry {
                        at_ms,
                        resource: id.clone(),
                        what: What::Step("removed from the API".into()),
                    });
                    writes.push((id, None));
                }
                Journal::Resource(id, Some(obj)) => {
                    let status = &obj["status"];
                    let now = [
                        status["lifecycleState"].as_str().map(str::to_string),
                        status["jobManagerDeploymentStatus"]
                            .as_str()
                            .map(str::to_string),
                        status["jobStatus"]["state"].as_str().map(str::to_string),
                        status["reconciliationStatus"]["state"]
                            .as_str()
                            .map(str::to_string),
                    ];
                    let before = match self.seen.get_mut(&id) {
                        Some(before) => before,
                        None => self.seen.entry(id.clone()).or_default(),
                    };
                    for (i, (a, b)) in before.iter().zip(now.iter()).enumerate() {
                        if let (true, Some(v)) = (a != b, b) {
                            let what = match i {
                                0 => What::LifecycleState(v.clone()),
                                1 => What::JobManagerDeploymentStatus(v.clone()),
                                2 => What::JobState(v.clone()),
                                _ => What::ReconciliationState(v.clone()),
                            };
                            self.timeline.push(Entry {
                                at_ms,
                                resource: id.clone(),
                                what,
                            });
                        }
                    }
                    *before = now;
                    writes.push((id, Some(obj)));
                }
            }
        }
        let offset = self.offset();
        let violations = {
            let mut w = self.ports.world.lock().unwrap_or_else(|e| e.into_inner());
            let mut found = self.invariants.check_writes(&w, &writes);
            if w.now >= self.next_state_check {
                self.next_state_check = w.now + self.state_check_interval;
                // The first look is at everything; from then on at what changed.
                let changed = w.kube.take_check_changes();
                if changed.is_none() {
                    w.kube.track_check_changes();
                }
                found.extend(self.invariants.check_changed(&w, changed));
            }
            found
        };
        for v in violations {
            self.timeline.push(Entry {
                at_ms: offset,
                resource: "world".into(),
                what: What::Failure(format!("invariant violated: {v}")),
            });
            self.violation.get_or_insert(v);
        }
    }
    /// Runs the world until `deadline` (epoch ms), or until `check` holds.
    pub fn run_until(&mut self, deadline: i64, check: Option<&Check>) -> Result<bool, String> {
        loop {
            self.world().tick();
            self.record();
            self.reconcile_due()?;
            if let Some(c) = check {
                if self.evaluate(c).is_ok() {
                    return Ok(true);
                }
            }
            let now = self.now();
            if now >= deadline {
                return Ok(false);
            }
            let world_wake = self.world().next_wake();
            let due = self.scheduler.next_due();
            // The re-list's look at every resource only matters when it would come first.
            let first = [world_wake, due]
                .into_iter()
                .flatten()
                .filter(|t| *t > now)
                .min();
            let resync = if first.map(|t| self.next_resync < t).unwrap_or(true) {
                self.resync_wake()
            } else {
                None
            };
            let next = [world_wake, due, resync]
                .into_iter()
                .flatten()
                .filter(|t| *t > now)
                .min()
                .unwrap_or(deadline)
                .min(deadline);
            self.world().now = next.max(now + 1);
        }
    }

    fn owner(target: &Target) -> String {
        format!("{}/{}/{}", target.kind, target.namespace, target.name)
    }

    /// Checks an await/expect now: Ok, or the actual state for the message.
    pub fn evaluate(&self, check: &Check) -> Result<(), String> {
        let w = self.world();
        let obj = w.kube.get(&key_of(
            &check.target.kind,
            &check.target.namespace,
            &check.target.name,
        ));
        if check.absent {
            return match obj {
                None => Ok(()),
                Some(o) => Err(format!(
                    "{} still exists (lifecycleState {})",
                    Self::owner(&check.target),
                    o["status"]["lifecycleState"]
                )),
            };
        }
        let Some(obj) = obj else {
            return Err(format!("{} does not exist", Self::owner(&check.target)));
        };
        if let Some(expected) = &check.status {
            if !subset(expected, &obj["status"]) {
                return Err(format!("status is {}", compact_status(&obj["status"])));
            }
        }
        if let Some(job) = &check.job {
            let owner = Self::owner(&check.target);
            let record = w.newest_job(&owner);
            let state = record.map(|r| {
                w.clusters
                    .get(&r.cluster)
                    .and_then(|c| c.job(&r.job_id))
                    .map(|j| j.state.clone())
                    .unwrap_or_else(|| r.last_state.clone())
            });
            let actual = json!({
                "state": state,
                "parallelism": record.map(|r| r.parallelism),
                "restoredFrom": record.map(|r| r.restored_from.name()),
                "runningInstances": w.running_instances(&owner),
            });
            let mut expected = serde_json::Map::new();
            if let Some(s) = &job.state {
                expected.insert("state".into(), json!(s));
            }
            if let Some(p) = job.parallelism {
                expected.insert("parallelism".into(), json!(p));
            }
            if let Some(r) = &job.restored_from {
                expected.insert("restoredFrom".into(), json!(r));
            }
            if let Some(n) = job.running_instances {
                expected.insert("runningInstances".into(), json!(n));
            }
            if !subset(&Value::Object(expected), &actual) {
                return Err(format!("job is {actual}"));
            }
        }
        Ok(())
    }

    /// Every resource's status, as the snapshot shows it.
    pub fn statuses(&self) -> String {
        let w = self.world();
        let mut out = String::new();
        for key in w
            .kube
            .keys()
            .filter(|k| k.0 == "FlinkDeployment" || k.0 == "FlinkSessionJob")
        {
            let obj = w.kube.get(&key).unwrap();
            out.push_str(&format!("{}/{}/{}:\n", key.0, key.1, key.2));
            let status = &obj["status"];
            for (label, value) in [
                ("lifecycleState", &status["lifecycleState"]),
                (
                    "jobManagerDeploymentStatus",
                    &status["jobManagerDeploymentStatus"],
                ),
                ("jobStatus.state", &status["jobStatus"]["state"]),
                (
                    "reconciliationStatus.state",
                    &status["reconciliationStatus"]["state"],
                ),
                (
                    "jobStatus.upgradeSavepointPath",
                    &status["jobStatus"]["upgradeSavepointPath"],
                ),
                (
                    "lastSavepoint",
                    &status["jobStatus"]["savepointInfo"]["lastSavepoint"]["location"],
                ),
                (
                    "savepointHistory",
                    &json!(status["jobStatus"]["savepointInfo"]["savepointHistory"]
                        .as_array()
                        .map(|h| h.len())),
                ),
                ("observedGeneration", &status["observedGeneration"]),
                ("error", &status["error"]),
            ] {
                if !value.is_null() {
                    out.push_str(&format!("  {label}: {}\n", value_text(value)));
                }
            }
        }
        let jobs: Vec<String> = w
            .jobs
            .iter()
            .map(|j| {
                let state = w
                    .clusters
                    .get(&j.cluster)
                    .and_then(|c| c.job(&j.job_id))
                    .map(|x| x.state.clone())
                    .unwrap_or_else(|| j.last_state.clone());
                format!(
                    "  {} +{} {} restoredFrom={}{}",
                    j.owner,
                    fmt_offset((j.submitted_at - self.start) as u64),
                    state,
                    j.restored_from.name(),
                    j.restored_from
                        .path()
                        .map(|p| format!(" ({p})"))
                        .unwrap_or_default()
                )
            })
            .collect();
        if !jobs.is_empty() {
            out.push_str("jobs submitted:\n");
            out.push_str(&jobs.join("\n"));
            out.push('\n');
        }
        out
    }

    fn apply(&mut self, manifest: &Value) -> Result<(), String> {
        let mut w = self.world();
        let kind = manifest["kind"].as_str().unwrap_or_default().to_string();
        let name = manifest["metadata"]["name"]
            .as_str()
            .ok_or("manifest without metadata.name")?
            .to_string();
        let ns = manifest["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let key = key_of(&kind, &ns, &name);
        let now = w.now_rfc3339();
        let mut obj = manifest.clone();
        obj["metadata"]["namespace"] = json!(ns);
        match w.kube.get(&key).cloned() {
            None => w
                .kube
                .create(obj, &now)
                .map(|_| ())
                .map_err(|e| format!("{e:?}")),
            Some(current) => {
                // Like `kubectl apply`: the manifest's spec and labels replace what is there.
                let mut updated = current.clone();
                updated["spec"] = obj["spec"].clone();
                for field in ["labels", "annotations"] {
                    if let Some(v) = obj["metadata"].get(field) {
                        updated["metadata"][field] = v.clone();
                    }
                }
                w.kube
                    .update(updated, None)
                    .map(|_| ())
                    .map_err(|e| format!("{e:?}"))
            }
        }
    }

    fn patch(&mut self, target: &Target, merge: &Value) -> Result<(), String> {
        let mut w = self.world();
        let key = key_of(&target.kind, &target.namespace, &target.name);
        let current = w
            .kube
            .get(&key)
            .cloned()
            .ok_or_else(|| format!("{} does not exist", Self::owner(target)))?;
        let mut updated = current.clone();
        merge_patch(&mut updated, merge);
        updated["status"] = current["status"].clone();
        w.kube
            .update(updated, None)
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    }

    fn step_text(step: &Step) -> String {
        match &step.action {
            Action::Apply(docs) => format!(
                "apply {}",
                docs.iter()
                    .map(|d| format!(
                        "{}/{}",
                        d["kind"].as_str().unwrap_or("?"),
                        d["metadata"]["name"].as_str().unwrap_or("?")
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Action::Await { check, within } => format!(
                "await {} within {}",
                Self::owner(&check.target),
                flink_operator::duration::format_duration(*within)
            ),
            Action::Patch { target, merge } => format!("patch {} {}", Self::owner(target), merge),
            Action::Fault(f) => format!("fault {}", f.kind.name()),
            Action::Heal(k) => format!("heal {}", k.map(|k| k.name()).unwrap_or("all")),
            Action::Advance(d) => {
                format!("advance {}", flink_operator::duration::format_duration(*d))
            }
            Action::Expect(c) => format!("expect {}", Self::owner(&c.target)),
            Action::Delete(t) => format!("delete {}", Self::owner(t)),
            Action::Snapshot(n) => format!("snapshot {n}"),
        }
    }

    /// Does one step that asserts nothing (apply, patch, delete, fault, heal, advance).
    pub fn act(&mut self, action: &Action) -> Result<(), String> {
        match action {
            Action::Apply(docs) => docs.iter().try_for_each(|d| self.apply(d)),
            Action::Patch { target, merge } => self.patch(target, merge),
            Action::Delete(target) => {
                let now = self.world().now_rfc3339();
                let key = key_of(&target.kind, &target.namespace, &target.name);
                self.world()
                    .kube
                    .delete(&key, &now)
                    .map_err(|e| format!("{e:?}"))
            }
            Action::Fault(f) => {
                self.world().inject(f.clone());
                if f.kind == FaultKind::OperatorRestart {
                    self.restart_operator();
                }
                Ok(())
            }
            Action::Heal(kind) => {
                self.world().heal(*kind);
                Ok(())
            }
            Action::Advance(d) => {
                let deadline = self.now() + d.as_millis() as i64;
                self.run_until(deadline, None).map(|_| ())
            }
            Action::Await { .. } | Action::Expect(_) | Action::Snapshot(_) => {
                Err("act: not an action".into())
            }
        }
    }

    /// Virtual time since the start, in milliseconds.
    pub fn elapsed_ms(&self) -> u64 {
        self.offset()
    }

    /// Invariant checks made so far.
    pub fn invariant_checks(&self) -> u64 {
        self.invariants.checks
    }

    /// Runs every step; stops at the first failed await or expect.
    pub fn run(mut self, scenario: &Scenario) -> Outcome {
        self.run_steps(scenario)
    }

    /// [`Simulation::run`], keeping the simulation to go on with (the timeline is handed over).
    pub fn run_steps(&mut self, scenario: &Scenario) -> Outcome {
        let mut failure = None;
        let mut snapshots = Vec::new();
        for step in &scenario.steps {
            let offset = self.offset();
            self.timeline.push(Entry {
                at_ms: offset,
                resource: "world".into(),
                what: What::Step(format!("line {}: {}", step.line, Self::step_text(step))),
            });
            let result: Result<(), String> = match &step.action {
                Action::Await { check, within } => {
                    let deadline = self.now() + within.as_millis() as i64;
                    match self.run_until(deadline, Some(check)) {
                        Ok(true) => Ok(()),
                        Ok(false) => Err(format!(
                            "await did not hold within {}: expected {}; actual: {}",
                            flink_operator::duration::format_duration(*within),
                            expectation(check),
                            self.evaluate(check).err().unwrap_or_default()
                        )),
                        Err(e) => Err(e),
                    }
                }
                Action::Expect(check) => {
                    let now = self.now();
                    self.run_until(now, None).and_then(|_| {
                        self.evaluate(check).map_err(|actual| {
                            format!(
                                "expect failed: expected {}; actual: {actual}",
                                expectation(check)
                            )
                        })
                    })
                }
                Action::Snapshot(name) => {
                    snapshots.push((name.clone(), self.statuses()));
                    Ok(())
                }
                other => self.act(other),
            };
            self.record();
            let result = match (result, self.violation.take()) {
                (Ok(()), Some(v)) => Err(format!("invariant violated: {v}")),
                (r, _) => r,
            };
            if let Err(e) = result {
                let message = format!("{}:{}: {e}", scenario.path.display(), step.line);
                let offset = self.offset();
                self.timeline.push(Entry {
                    at_ms: offset,
                    resource: "world".into(),
                    what: What::Failure(message.clone()),
                });
                failure = Some(message);
                break;
            }
        }
        snapshots.push(("end".into(), self.statuses()));
        let operator_writes = self.operator_writes();
        Outcome {
            end_ms: self.offset(),
            timeline: std::mem::take(&mut self.timeline),
            failure,
            snapshots,
            operator_writes,
        }
    }
}

fn expectation(check: &Check) -> String {
    let mut parts = Vec::new();
    if check.absent {
        parts.push("absent".to_string());
    }
    if let Some(s) = &check.status {
        parts.push(format!("status {s}"));
    }
    if let Some(j) = &check.job {
        parts.push(format!("job {j:?}"));
    }
    parts.join(", ")
}

fn compact_status(status: &Value) -> String {
    json!({
        "lifecycleState": status["lifecycleState"],
        "jobManagerDeploymentStatus": status["jobManagerDeploymentStatus"],
        "jobStatus": {"state": status["jobStatus"]["state"]},
        "reconciliationStatus": {"state": status["reconciliationStatus"]["state"]},
        "error": status["error"],
    })
    .to_string()
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn fmt_offset(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}.{:03}", s / 60, s % 60, ms % 1000)
}

/// A status subset: every key given is present with an equal value; lists element by element.
pub fn subset(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .all(|(k, v)| a.get(k).map(|x| subset(v, x)).unwrap_or(v.is_null())),
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| subset(x, y))
        }
        (Value::String(e), Value::Number(a)) | (Value::Number(a), Value::String(e)) => {
            e == &a.to_string()
        }
        (e, a) => e == a,
    }
}

/// RFC 7386 JSON merge patch. Returns whether `target` changed (a spec patched where it is
/// stored takes a new generation only then).
pub fn merge_patch(target: &mut Value, patch: &Value) -> bool {
    match patch {
        Value::Object(p) => {
            let mut changed = !target.is_object();
            if changed {
                *target = json!({});
            }
            let t = target.as_object_mut().unwrap();
            for (k, v) in p {
                if v.is_null() {
                    changed |= t.remove(k).is_some();
                } else {
                    changed |= merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
            changed
        }
        other if target == other => false,
        other => {
            *target = other.clone();
            true
        }
    }
}

/// Sieve's intermediate states: runs the scenario once for reference, then once per write
/// the operator made, killing it right after that write. `Ok(n)` when all `n` crash points
/// held every await, expect and invariant; else the first that did not, with its run.
pub fn check_crash_points(scenario: &Scenario) -> Result<u64, (u64, Outcome)> {
    let reference = Simulation::new(scenario).run(scenario);
    if reference.failure.is_some() {
        return Err((0, reference));
    }
    for n in 1..=reference.operator_writes {
        let mut sim = Simulation::new(scenario);
        sim.crash_after_write(n);
        let outcome = sim.run(scenario);
        let crashed = format!("operator crashed after write {n}");
        let happened = outcome
            .timeline
            .iter()
            .any(|e| e.describe().contains(&crashed));
        if outcome.failure.is_some() || !happened {
            return Err((n, outcome));
        }
    }
    Ok(reference.operator_writes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_rules() {
        assert!(subset(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!subset(&json!({"a": 1}), &json!({"a": 2})));
        assert!(subset(
            &json!({"a": {"b": "x"}}),
            &json!({"a": {"b": "x", "c": 1}})
        ));
        assert!(!subset(&json!({"l": [1]}), &json!({"l": [1, 2]})));
        assert!(subset(&json!({"g": "2"}), &json!({"g": 2})));
        assert!(!subset(&json!({"missing": 1}), &json!({})));
    }

    #[test]
    fn merge_patch_rules() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}});
        assert!(merge_patch(&mut t, &json!({"a": null, "b": {"c": 5}})));
        assert_eq!(t, json!({"b": {"c": 5, "d": 3}}));
        // What changes nothing says so: the same values, and removals of what is not there.
        assert!(!merge_patch(&mut t, &json!({"a": null, "b": {"c": 5}})));
        assert_eq!(t, json!({"b": {"c": 5, "d": 3}}));
        assert!(
            merge_patch(&mut t, &json!({"e": {"f": null}})),
            "a new member"
        );
        assert_eq!(t, json!({"b": {"c": 5, "d": 3}, "e": {}}));
    }
}
