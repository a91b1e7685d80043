//! The simulated world: one virtual clock, one seeded random source, the fake API server,
//! a deployment controller and kubelet, and a fake Flink per running JobManager. Faults are
//! data the world consults; nothing here reads the wall clock or iterates a hash map.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde_json::{json, Value};

use crate::flink::{ClusterTiming, FlinkCluster, RestoredFrom};
use crate::kube::{key_of, Key, KubeStore, WatchEvent};
use crate::scenario::{ArtifactFailure, ClusterSettings, Fault, FaultKind};
use crate::state_log::StateLog;
use flink_operator::ports::EventRecord;

/// 2026-01-01T00:00:00Z: virtual time starts here, so timestamps look like real ones.
pub const EPOCH_MS: i64 = 1_767_225_600_000;

/// SplitMix64: small, fast, and the same sequence for the same seed everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn hex(&mut self, digits: usize) -> String {
        let mut s = String::new();
        while s.len() < digits {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(digits);
        s
    }
}

/// A fault in force, with what is left of it.
#[derive(Debug, Clone)]
pub struct ActiveFault {
    pub fault: Fault,
    pub until: Option<i64>,
    pub remaining: Option<u32>,
}

/// Requests and writes, for benchmarks and API-economy checks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorldCounters {
    pub kube_requests: u64,
    pub kube_writes: u64,
    pub flink_requests: u64,
    pub artifact_fetches: u64,
}

/// A job as the world remembers it, after its cluster is gone too.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub owner: String,
    pub job_id: String,
    pub cluster: (String, String),
    pub submitted_at: i64,
    pub restored_from: RestoredFrom,
    pub parallelism: i64,
    pub last_state: String,
    /// The JobManager Deployment the job started in: a new one means the operator deployed
    /// it; the same one means the JobManager restarted by itself.
    pub deployment_uid: String,
    pub operator_initiated: bool,
}

/// When each waiting pod's container (re)starts (`i64::MAX`: held by a fault until healed),
/// and the same entries in time order.
#[derive(Debug, Clone, Default)]
struct PodTimers {
    by_key: FxHashMap<Key, i64>,
    by_time: BTreeSet<(i64, Key)>,
}

impl PodTimers {
    fn insert(&mut self, key: Key, start_at: i64) {
        if let Some(old) = self.by_key.insert(key.clone(), start_at) {
            self.by_time.remove(&(old, key.clone()));
        }
        self.by_time.insert((start_at, key));
    }

    fn remove(&mut self, key: &Key) {
        if let Some(old) = self.by_key.remove(key) {
            self.by_time.remove(&(old, key.clone()));
        }
    }

    /// The pods whose time has come, in key order.
    fn due(&self, now: i64) -> Vec<Key> {
        let mut keys: Vec<Key> = self
            .by_time
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, k)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    /// The earliest start that is not held.
    fn next(&self) -> Option<i64> {
        self.by_time
            .first()
            .map(|(at, _)| *at)
            .filter(|at| *at != i64::MAX)
    }

    /// Every timer starts by `start` at the latest.
    fn bring_forward(&mut self, start: i64) {
        let later: Vec<Key> = self
            .by_time
            .iter()
            .filter(|(at, _)| *at > start)
            .map(|(_, k)| k.clone())
            .collect();
        for key in later {
            self.insert(key, start);
        }
    }
}

/// What the world's controllers remember of a pod to know whom its changes concern: the uid
/// its first owner reference names (the Deployment owning it) and its `app` label.
#[derive(Debug, Clone, PartialEq)]
struct PodMeta {
    owner_uid: Option<String>,
    app: String,
}

/// Bookkeeping that lets a tick look only at what changed: the deployment controller, the
/// kubelet and the Flink clusters each act on the objects that changed since they last
/// looked (or whose time has come), which is exactly where a look at everything would act.
#[derive(Debug, Clone, Default)]
struct Changed {
    pods: FxHashMap<Key, PodMeta>,
    deployment_by_uid: FxHashMap<String, Key>,
    deployment_uid: FxHashMap<Key, String>,
    /// Deployments whose pods the deployment controller must check.
    deployments: BTreeSet<Key>,
    /// Deployments whose status the kubelet must check.
    deployment_status: BTreeSet<Key>,
    /// (namespace, app) whose cluster must start or stop by its JobManager pods.
    apps: BTreeSet<(String, String)>,
    /// Clusters touched since they last ran (by the REST API, a fault, a start).
    clusters: BTreeSet<(String, String)>,
    /// When each cluster next changes by itself, in time order (each cluster's own entry is
    /// also in its [`FlinkCluster::wake_at`]).
    wakes: BTreeSet<(i64, (String, String))>,
    /// The newest job record per (cluster, job id) and per owner, over `jobs[..indexed]`.
    /// (Hashed, as the other per-owner indexes here: at 10,000 deployments an ordered map's
    /// dozen string comparisons per lookup each missed the cache.)
    job_by_id: FxHashMap<(String, String), FxHashMap<String, usize>>,
    job_by_owner: FxHashMap<String, usize>,
    /// Every job record's position per owner, in order, over `jobs[..jobs_indexed]`.
    jobs_of_owner: FxHashMap<String, Vec<usize>>,
    jobs_indexed: usize,
}

/// Whether a failure (a job's, a lost TaskManager) changes a job in this state. A job being
/// cancelled or already failing goes on to its end: a failure does not bring it back.
fn can_fail(state: &str) -> bool {
    !crate::flink::is_terminal(state) && state != "CANCELLING" && state != "FAILING"
}

pub struct World {
    pub now: i64,
    pub rng: Rng,
    pub settings: ClusterSettings,
    pub kube: KubeStore,
    /// Running Flink clusters by (namespace, name). Hashed: every REST call and every due
    /// checkpoint looks its cluster up, and at 10,000 clusters an ordered map's fourteen
    /// key comparisons each missed the cache. Nothing printed follows its order (the tick
    /// runs clusters in the order of its own sorted sets).
    pub clusters: FxHashMap<(String, String), FlinkCluster>,
    pod_timers: PodTimers,
    changed: Changed,
    pub faults: Vec<ActiveFault>,
    /// The operator's limits for jar downloads (from its configuration).
    pub artifact_settings: flink_operator::artifacts::ArtifactSettings,
    /// Savepoints the operator disposed of (the invariants check nothing names them).
    pub disposed: BTreeSet<String>,
    pub stale_view: Option<KubeStore>,
    pub counters: WorldCounters,
    /// Events the operator published, with their time.
    pub events: Vec<(i64, EventRecord)>,
    /// Fault and heal notes for the timeline: (time, resource, text, is_heal).
    pub fault_log: Vec<(i64, String, String, bool)>,
    pub jobs: Vec<JobRecord>,
    /// Watch events not yet delivered to the operator.
    pub watch_queue: Vec<WatchEvent>,
    /// Every change of a Flink resource and every event, in the order they happened.
    pub journal: Vec<(i64, Journal)>,
    /// Every checkpoint and savepoint that completed, in order.
    pub state_log: StateLog,
    /// The resource the operator is reconciling now: jobs it submits through a session
    /// cluster's REST API are recorded as that resource's.
    pub current_actor: String,
    /// Crash the operator right after its n-th write to the API (Sieve's intermediate
    /// states); set when it happened.
    pub crash_after_write: Option<u64>,
    pub operator_crashed: bool,
    /// A deliberately planted operator bug, to prove the explorer finds it (tests only).
    pub mutant: Option<Mutant>,
    /// The operator's reads of its resources, decoded once per resourceVersion.
    pub decoded_deployments: crate::ports::Decoded<Arc<flink_operator::crd::FlinkDeployment>>,
    pub decoded_session_jobs: crate::ports::Decoded<flink_operator::crd::FlinkSessionJob>,
    /// The JobManager Deployments as the operator's observer reads them (every observe).
    pub decoded_views: crate::ports::Decoded<Arc<flink_operator::ports::DeploymentView>>,
}

/// Operator bugs the world can plant, for testing the checks themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutant {
    /// A stop-with-savepoint takes no savepoint: the job is cancelled and the operation
    /// reports the newest savepoint the job already had (or started from), as an operator
    /// that skipped the upgrade savepoint would restore. Without one the stop fails.
    SkipUpgradeSavepoint,
}

/// What the timeline is made from.
#[derive(Debug, Clone)]
pub enum Journal {
    /// A Flink resource as written (None: removed).
    Resource(String, Option<std::sync::Arc<Value>>),
    Event(EventRecord),
}

pub fn rfc3339(ms: i64) -> String {
    // Days since the epoch to a civil date (Howard Hinnant's algorithm).
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn ms(d: std::time::Duration) -> i64 {
    d.as_millis() as i64
}

impl World {
    pub fn new(seed: u64, settings: ClusterSettings) -> Self {
        let mut kube = KubeStore::default();
        kube.track_changes();
        World {
            now: EPOCH_MS,
            rng: Rng::new(seed),
            settings,
            kube,
            clusters: FxHashMap::default(),
            pod_timers: PodTimers::default(),
            changed: Changed::default(),
            faults: Vec::new(),
            artifact_settings: Default::default(),
            disposed: BTreeSet::new(),
            stale_view: None,
            counters: WorldCounters::default(),
            events: Vec::new(),
            fault_log: Vec::new(),
            jobs: Vec::new(),
            watch_queue: Vec::new(),
            journal: Vec::new(),
            state_log: StateLog::default(),
            current_actor: String::new(),
            crash_after_write: None,
            operator_crashed: false,
            mutant: None,
            decoded_deployments: Default::default(),
            decoded_session_jobs: Default::default(),
            decoded_views: Default::default(),
        }
    }

    pub fn timing(&self) -> ClusterTiming {
        ClusterTiming {
            job_startup_ms: ms(self.settings.job_startup),
            checkpoint_interval_ms: ms(self.settings.checkpoint_interval),
            savepoint_duration_ms: ms(self.settings.savepoint_duration),
        }
    }

    pub fn now_rfc3339(&self) -> String {
        rfc3339(self.now)
    }

    // ---- faults ----

    pub fn fault_active(&self, kind: FaultKind, target: Option<(&str, &str)>) -> bool {
        self.faults.iter().any(|f| {
            f.fault.kind == kind
                && match (target, &f.fault.target) {
                    (Some((ns, name)), Some(t)) => t.namespace == ns && t.name == name,
                    _ => true,
                }
        })
    }

    /// Uses one count of a counted fault; true if one was in force.
    pub fn consume_fault(&mut self, kind: FaultKind, target: Option<(&str, &str)>) -> bool {
        let pos = self.faults.iter().position(|f| {
            f.fault.kind == kind
                && match (target, &f.fault.target) {
                    (Some((ns, name)), Some(t)) => t.namespace == ns && t.name == name,
                    _ => true,
                }
        });
        let Some(pos) = pos else { return false };
        self.spend(pos);
        true
    }

    /// Uses one count of the fault at `pos`, removing it when none is left.
    fn spend(&mut self, pos: usize) {
        if let Some(n) = self.faults[pos].remaining.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                let f = self.faults.remove(pos);
                self.fault_log.push((
                    self.now,
                    "world".into(),
                    format!("{} spent", f.fault.kind.name()),
                    true,
                ));
            }
        }
    }

    /// How the next download of `uri` fails, if an `artifactFetch` fault says so (one count
    /// of it is used).
    pub fn artifact_failure(&mut self, uri: &str) -> Option<ArtifactFailure> {
        let pos = self.faults.iter().position(|f| {
            f.fault.kind == FaultKind::ArtifactFetch
                && f.fault.uri.as_deref().map(|u| u == uri).unwrap_or(true)
        })?;
        let failure = self.faults[pos].fault.error;
        self.spend(pos);
        failure
    }

    fn image_blocked(&self, image: &str) -> bool {
        self.faults.iter().any(|f| {
            f.fault.kind == FaultKind::ImagePull && f.fault.image.as_deref() == Some(image)
        })
    }

    fn crash_held(&self, ns: &str, cluster: &str) -> bool {
        self.faults.iter().any(|f| {
            f.fault.kind == FaultKind::JobManagerCrash
                && f.fault
                    .target
                    .as_ref()
                    .map(|t| t.namespace == ns && t.name == cluster)
                    .unwrap_or(false)
                && f.until.is_some()
        })
    }

    /// A fault begins. Instant faults act now; lasting ones are consulted as the world runs.
    pub fn inject(&mut self, fault: Fault) {
        let now = self.now;
        let until = fault.duration.map(|d| now + ms(d));
        let target = fault
            .target
            .as_ref()
            .map(|t| (t.namespace.clone(), t.name.clone()));
        let label = target
            .as_ref()
            .map(|(ns, n)| format!("{}/{ns}/{n}", fault.target.as_ref().unwrap().kind))
            .unwrap_or_else(|| "world".into());
        self.fault_log
            .push((now, label, describe_fault(&fault), false));
        match fault.kind {
            FaultKind::JobManagerCrash => {
                if let Some((ns, name)) = &target {
                    self.crash_jobmanager(ns, name);
                }
                if until.is_none() {
                    return;
                }
            }
            FaultKind::TaskManagerLoss => {
                if let Some((ns, name)) = &target {
                    self.lose_taskmanagers(ns, name);
                }
                return;
            }
            FaultKind::JobFailure => {
                if let Some(t) = &fault.target {
                    self.fail_job(
                        &format!("{}/{}/{}", t.kind, t.namespace, t.name),
                        fault.terminal.unwrap_or(false),
                    );
                }
                return;
            }
            FaultKind::StaleReads => {
                self.stale_view = Some(self.kube.clone());
            }
            FaultKind::OperatorRestart => return,
            _ => {}
        }
        self.faults.push(ActiveFault {
            remaining: fault.count,
            until,
            fault,
        });
    }

    /// One call of the operator to the Kubernetes or Flink API: an `operatorCrash` fault
    /// counts it, and kills the process once its count is spent.
    pub fn operator_call(&mut self) {
        if let Some(pos) = self
            .faults
            .iter()
            .position(|f| f.fault.kind == FaultKind::OperatorCrash)
        {
            let last = self.faults[pos].remaining.unwrap_or(1) <= 1;
            if last {
                self.faults[pos].remaining = Some(1);
            }
            self.spend(pos);
            if last {
                self.operator_crashed = true;
            }
        }
    }

    /// `heal: all` or `heal: KIND`.
    pub fn heal(&mut self, kind: Option<FaultKind>) {
        let now = self.now;
        let (healed, kept): (Vec<_>, Vec<_>) = self
            .faults
            .drain(..)
            .partition(|f| kind.map(|k| f.fault.kind == k).unwrap_or(true));
        self.faults = kept;
        for f in healed {
            self.end_fault(&f);
        }
        self.fault_log.push((
            now,
            "world".into(),
            kind.map(|k| k.name().to_string())
                .unwrap_or_else(|| "all".into()),
            true,
        ));
    }

    fn end_fault(&mut self, f: &ActiveFault) {
        if f.fault.kind == FaultKind::StaleReads {
            self.stale_view = None;
        }
        if matches!(
            f.fault.kind,
            FaultKind::JobManagerCrash | FaultKind::ImagePull
        ) {
            // Held containers restart on the kubelet's next try.
            let start = self.now + ms(self.settings.pod_startup);
            self.pod_timers.bring_forward(start);
        }
    }

    fn expire_faults(&mut self) {
        let now = self.now;
        if !self
            .faults
            .iter()
            .any(|f| f.until.map(|u| u <= now).unwrap_or(false))
        {
            return;
        }
        let (expired, kept): (Vec<_>, Vec<_>) = self
            .faults
            .drain(..)
            .partition(|f| f.until.map(|u| u <= now).unwrap_or(false));
        self.faults = kept;
        for f in expired {
            self.fault_log.push((
                now,
                "world".into(),
                format!("{} ended", f.fault.kind.name()),
                true,
            ));
            self.end_fault(&f);
        }
    }

    fn crash_jobmanager(&mut self, ns: &str, name: &str) {
        let pods: Vec<Key> = self
            .kube
            .list_selected("Pod", ns, &format!("app={name},component=jobmanager"))
            .into_iter()
            .map(|p| {
                key_of(
                    "Pod",
                    ns,
                    p["metadata"]["name"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        let restart_at = self.now + ms(self.settings.pod_startup);
        for key in pods {
            self.set_pod_waiting(
                &key,
                "CrashLoopBackOff",
                "back-off restarting failed container flink-main-container",
            );
            self.pod_timers.insert(key, restart_at);
        }
        self.stop_cluster(ns, name);
    }

    fn lose_taskmanagers(&mut self, ns: &str, name: &str) {
        let now = self.now;
        let recover = ms(self.settings.pod_startup) + ms(self.settings.job_startup);
        self.touch_cluster(ns, name);
        if let Some(c) = self.clusters.get_mut(&(ns.to_string(), name.to_string())) {
            for job in c.jobs.iter_mut().filter(|j| can_fail(&j.state)) {
                job.exceptions.push((now, "org.apache.flink.runtime.jobmaster.JobMasterException: TaskManager with id tm-1 is no longer reachable.".into()));
                if job.checkpointing() {
                    FlinkCluster::set_state(job, "RESTARTING", now);
                    job.next_transition = Some((now + recover, "RUNNING"));
                } else {
                    FlinkCluster::set_state(job, "FAILING", now);
                    job.next_transition = Some((now + 1000, "FAILED"));
                }
                job.next_checkpoint = None;
            }
        }
    }

    /// Fails the jobs of a resource (`Kind/ns/name`): an application cluster's job, or one
    /// session job among others on its session cluster.
    fn fail_job(&mut self, owner: &str, terminal: bool) {
        let now = self.now;
        let startup = ms(self.settings.job_startup);
        // Every submission is recorded with its cluster, so only the clusters the owner's
        // records name can hold its jobs (a look at every cluster made each fault cost
        // O(clusters)). In key order: what a fault touches does not follow the map's order.
        self.index_jobs();
        let candidates: BTreeSet<(String, String)> =
            self.jobs_of(owner).map(|r| r.cluster.clone()).collect();
        for key in candidates {
            let Some(c) = self.clusters.get_mut(&key) else {
                continue;
            };
            if c.jobs.iter().any(|j| j.owner == owner) {
                self.changed.clusters.insert(key.clone());
            }
            for job in c
                .jobs
                .iter_mut()
                .filter(|j| j.owner == owner && can_fail(&j.state))
            {
                job.exceptions.push((
                    now,
                    "java.lang.RuntimeException: simulated job failure".into(),
                ));
                job.next_checkpoint = None;
                if terminal {
                    FlinkCluster::set_state(job, "FAILING", now);
                    job.next_transition = Some((now + 1000, "FAILED"));
                } else {
                    FlinkCluster::set_state(job, "RESTARTING", now);
                    job.next_transition = Some((now + startup, "RUNNING"));
                }
            }
        }
    }

    // ---- the deployment controller and kubelet ----

    fn set_pod_waiting(&mut self, key: &Key, reason: &str, message: &str) {
        if let Some(pod) = self.kube.get(key) {
            let mut status = pod["status"].clone();
            status["phase"] = json!("Pending");
            status["conditions"] = json!([{"type": "Ready", "status": "False"}]);
            status["containerStatuses"] = json!([{"name": "flink-main-container", "ready": false, "restartCount": 0,
                "image": pod["spec"]["containers"][0]["image"], "imageID": "",
                "state": {"waiting": {"reason": reason, "message": message}}}]);
            self.kube.set_status(key, status);
        }
    }

    fn set_pod_running(&mut self, key: &Key) {
        if let Some(pod) = self.kube.get(key) {
            let status = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "flink-main-container", "ready": true, "restartCount": 0,
                    "image": pod["spec"]["containers"][0]["image"], "imageID": "",
                    "state": {"running": {"startedAt": rfc3339(self.now)}}}]});
            self.kube.set_status(key, status);
        }
    }

    /// The pods a Deployment owns, by name.
    fn owned_pods(&self, namespace: &str, owner_uid: &Value) -> Vec<Arc<Value>> {
        let owned = |p: &Value| &p["metadata"]["ownerReferences"][0]["uid"] == owner_uid;
        let Some(uid) = owner_uid.as_str() else {
            return self
                .kube
                .list("Pod", namespace)
                .into_iter()
                .filter(|p| owned(p))
                .map(|p| Arc::new(p.clone()))
                .collect();
        };
        self.kube
            .dependents(uid)
            .into_iter()
            .filter(|(k, p)| k.0 == "Pod" && k.1 == namespace && owned(p))
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn pod_ready(pod: &Value) -> bool {
        pod["status"]["phase"] == "Running"
    }

    /// Takes in the API's changes since the last look: which Deployments, apps and pods they
    /// concern (before and after the change), and forgets the timers of pods that are gone.
    fn follow_changes(&mut self) {
        for key in self.kube.take_changes() {
            match key.0.as_str() {
                "Deployment" => {
                    let uid = self
                        .kube
                        .get(&key)
                        .and_then(|d| d["metadata"]["uid"].as_str())
                        .map(str::to_string);
                    let c = &mut self.changed;
                    if let Some(old) = c.deployment_uid.remove(&key) {
                        c.deployment_by_uid.remove(&old);
                    }
                    if let Some(uid) = uid {
                        c.deployment_by_uid.insert(uid.clone(), key.clone());
                        c.deployment_uid.insert(key.clone(), uid);
                    }
                    c.deployments.insert(key.clone());
                    c.deployment_status.insert(key);
                }
                "Pod" => {
                    let now = self.kube.get(&key).map(|p| PodMeta {
                        owner_uid: p["metadata"]["ownerReferences"][0]["uid"]
                            .as_str()
                            .map(str::to_string),
                        app: p["metadata"]["labels"]["app"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    });
                    if now.is_none() {
                        self.pod_timers.remove(&key);
                    }
                    let c = &mut self.changed;
                    let before = match &now {
                        Some(m) => c.pods.insert(key.clone(), m.clone()),
                        None => c.pods.remove(&key),
                    };
                    for meta in [before, now].into_iter().flatten() {
                        let owner = meta
                            .owner_uid
                            .as_ref()
                            .and_then(|uid| c.deployment_by_uid.get(uid))
                            .filter(|d| d.1 == key.1);
                        if let Some(d) = owner {
                            c.deployments.insert(d.clone());
                            c.deployment_status.insert(d.clone());
                        }
                        c.apps.insert((key.1.clone(), meta.app));
                    }
                }
                _ => {}
            }
        }
    }

    /// A cluster was touched outside its own run: it runs at the next tick.
    pub(crate) fn touch_cluster(&mut self, ns: &str, name: &str) {
        self.changed
            .clusters
            .insert((ns.to_string(), name.to_string()));
    }

    /// Removes a cluster (its JobManager is gone or was shut down).
    pub(crate) fn remove_cluster(&mut self, ns: &str, name: &str) -> Option<FlinkCluster> {
        let key = (ns.to_string(), name.to_string());
        self.changed.apps.insert(key.clone());
        self.changed.clusters.insert(key.clone());
        let mut cluster = self.clusters.remove(&key)?;
        self.set_wake(&key, &mut cluster, None);
        Some(cluster)
    }

    /// Moves a cluster's entry in the wake index to `at` (None: out of it).
    fn set_wake(&mut self, key: &(String, String), cluster: &mut FlinkCluster, at: Option<i64>) {
        if cluster.wake_at == at {
            return;
        }
        let wakes = &mut self.changed.wakes;
        if let Some(old) = cluster.wake_at.take() {
            wakes.remove(&(old, key.clone()));
        }
        if let Some(at) = at {
            wakes.insert((at, key.clone()));
        }
        cluster.wake_at = at;
    }

    /// Indexes job records added since the last look.
    fn index_jobs(&mut self) {
        let c = &mut self.changed;
        while c.jobs_indexed < self.jobs.len() {
            let i = c.jobs_indexed;
            let r = &self.jobs[i];
            c.job_by_id
                .entry(r.cluster.clone())
                .or_default()
                .insert(r.job_id.clone(), i);
            c.job_by_owner.insert(r.owner.clone(), i);
            c.jobs_of_owner.entry(r.owner.clone()).or_default().push(i);
            c.jobs_indexed += 1;
        }
    }

    /// The newest record of a job on a cluster.
    fn job_record_mut(
        &mut self,
        cluster: &(String, String),
        job_id: &str,
    ) -> Option<&mut JobRecord> {
        self.index_jobs();
        let i = *self.changed.job_by_id.get(cluster)?.get(job_id)?;
        self.jobs.get_mut(i)
    }

    /// Whether a Deployment's pods are what it asks for: as many as its replicas, all of
    /// its template (the deployment controller would do nothing).
    fn deployment_settled(&self, d: &Value) -> bool {
        let ns = d["metadata"]["namespace"].as_str().unwrap_or_default();
        let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let template_hash = format!("{:x}", fnv(&d["spec"]["template"].to_string()));
        let pods = self.owned_pods(ns, &d["metadata"]["uid"]);
        pods.len() as i64 == replicas.max(0)
            && pods
                .iter()
                .all(|p| p["metadata"]["labels"]["pod-template-hash"] == json!(template_hash))
    }

    fn reconcile_deployments(&mut self) {
        self.follow_changes();
        // Only Deployments that changed, or whose pods did, can need anything; in the order
        // a look at all of them would take.
        let keys = std::mem::take(&mut self.changed.deployments);
        let mut unsettled = Vec::new();
        for key in keys {
            let Some(d) = self.kube.get_shared(&key) else {
                continue;
            };
            let ns = d["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let name = d["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let uid = d["metadata"]["uid"].clone();
            let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
            let pods = self.owned_pods(&ns, &uid);
            // A changed pod template replaces the pods (the Recreate strategy).
            let template_hash = format!("{:x}", fnv(&d["spec"]["template"].to_string()));
            for p in &pods {
                if p["metadata"]["labels"]["pod-template-hash"] != json!(template_hash) {
                    let key = key_of(
                        "Pod",
                        &ns,
                        p["metadata"]["name"].as_str().unwrap_or_default(),
                    );
                    let _ = self.kube.delete(&key, &rfc3339(self.now));
                    self.pod_timers.remove(&key);
                }
            }
            let current = self.owned_pods(&ns, &uid);
            for _ in current.len() as i64..replicas {
                let pod_name = format!(
                    "{name}-{}-{}",
                    &template_hash[..template_hash.len().min(8)],
                    self.rng.hex(5)
                );
                let mut labels = d["spec"]["template"]["metadata"]["labels"].clone();
                if !labels.is_object() {
                    labels = json!({});
                }
                labels["pod-template-hash"] = json!(template_hash);
                let pod = json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": pod_name, "namespace": ns, "labels": labels,
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid, "controller": true}]},
                    "spec": d["spec"]["template"]["spec"].clone(),
                    "status": {"phase": "Pending"}});
                if self.kube.create(pod, &rfc3339(self.now)).is_ok() {
                    self.pod_timers.insert(
                        key_of("Pod", &ns, &pod_name),
                        self.now + ms(self.settings.pod_startup),
                    );
                }
            }
            let extra: Vec<Arc<Value>> = self
                .owned_pods(&ns, &uid)
                .into_iter()
                .skip(replicas.max(0) as usize)
                .collect();
            for p in extra {
                let key = key_of(
                    "Pod",
                    &ns,
                    p["metadata"]["name"].as_str().unwrap_or_default(),
                );
                let _ = self.kube.delete(&key, &rfc3339(self.now));
                self.pod_timers.remove(&key);
            }
            if !self.deployment_settled(&d) {
                // A pod that could not be created is tried again next time.
                unsettled.push(key);
            }
        }
        self.changed.deployments.extend(unsettled);
        // Timers of pods that are gone are forgotten as their removal comes in.
        self.follow_changes();
    }

    fn run_kubelet(&mut self) {
        let due = self.pod_timers.due(self.now);
        for key in due {
            // Read what is needed and let go of the pod: a status write to an object still
            // held elsewhere would copy it.
            let Some(pod) = self.kube.get(&key) else {
                continue;
            };
            let image = pod["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let cluster = pod["metadata"]["labels"]["app"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let jobmanager = pod["metadata"]["labels"]["component"] == "jobmanager";
            if self.image_blocked(&image) {
                self.set_pod_waiting(
                    &key,
                    "ErrImagePull",
                    &format!("failed to pull image \"{image}\": not found"),
                );
                // Retried while the fault lasts; the heal brings the retry forward.
                self.pod_timers.insert(key, i64::MAX);
                continue;
            }
            if self.crash_held(&key.1, &cluster) && jobmanager {
                self.set_pod_waiting(
                    &key,
                    "CrashLoopBackOff",
                    "back-off restarting failed container flink-main-container",
                );
                self.pod_timers.insert(key, i64::MAX);
                continue;
            }
            self.set_pod_running(&key);
            self.pod_timers.remove(&key);
        }
        // Deployment status follows its pods (only where they or it changed).
        self.follow_changes();
        let keys = std::mem::take(&mut self.changed.deployment_status);
        for key in keys {
            let Some(d) = self.kube.get(&key) else {
                continue;
            };
            let ns = d["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let uid = d["metadata"]["uid"].clone();
            let generation = d["metadata"]["generation"].clone();
            let pods = self.owned_pods(&ns, &uid);
            let ready = pods.iter().filter(|p| Self::pod_ready(p)).count() as i64;
            let status = json!({"replicas": pods.len(), "readyReplicas": ready, "availableReplicas": ready,
                                "observedGeneration": generation});
            self.kube.set_status(&key, status);
        }
    }

    // ---- Flink clusters ----

    /// Whether a JobManager pod labelled `app` is ready in the namespace.
    fn jobmanager_ready(&self, ns: &str, app: &str) -> bool {
        let ready = |p: &&Value| {
            Self::pod_ready(p)
                && p["metadata"]["labels"]["component"] == "jobmanager"
                && p["metadata"]["labels"]["app"].as_str().unwrap_or_default() == app
        };
        if app.is_empty() {
            // Pods without the label are not indexed by it.
            return self.kube.list("Pod", ns).iter().any(ready);
        }
        self.kube.with_app("Pod", ns, app).iter().any(ready)
    }

    /// A cluster runs exactly while one of its JobManager pods is ready. Only (namespace,
    /// app) pairs whose pods or cluster changed can be out of step; they are set right in
    /// the order a look at all pods and clusters would take.
    fn sync_clusters(&mut self) {
        self.follow_changes();
        let keys = std::mem::take(&mut self.changed.apps);
        let should_run: BTreeSet<(String, String)> = keys
            .iter()
            .filter(|(ns, app)| self.jobmanager_ready(ns, app))
            .cloned()
            .collect();
        for key in &keys {
            if self.clusters.contains_key(key) && !should_run.contains(key) {
                self.stop_cluster(&key.0, &key.1);
            }
        }
        for key in should_run {
            if !self.clusters.contains_key(&key) {
                self.start_cluster(&key.0, &key.1);
            }
        }
        // Stopping and starting only marked what was just set right.
        self.changed.apps.clear();
    }

    fn stop_cluster(&mut self, ns: &str, name: &str) {
        if let Some(c) = self.remove_cluster(ns, name) {
            let cluster = (ns.to_string(), name.to_string());
            for job in c.jobs {
                if let Some(r) = self.job_record_mut(&cluster, &job.id) {
                    r.last_state = if crate::flink::is_terminal(&job.state) {
                        job.state.clone()
                    } else {
                        "GONE".into()
                    };
                }
            }
        }
    }

    fn read_config(&self, ns: &str, name: &str) -> BTreeMap<String, String> {
        let cm = self
            .kube
            .get(&key_of("ConfigMap", ns, &format!("flink-config-{name}")));
        let text = cm
            .and_then(|c| c["data"]["config.yaml"].as_str())
            .unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Flink's Kubernetes HA services record each completed checkpoint of a job in the
    /// cluster's HA ConfigMap.
    fn record_ha_checkpoint(&mut self, key: &(String, String), job_id: &str, path: &str, now: i64) {
        let ha_key = Self::ha_config_map_key(&key.0, &key.1);
        let entry = format!("checkpointID-{job_id}");
        // In place (every HA job's checkpoint comes here): no copy of the ConfigMap.
        if self
            .kube
            .modify(&ha_key, |cm| cm["data"][entry.as_str()] = json!(path))
            .is_some()
        {
            return;
        }
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": ha_key.2, "namespace": key.0, "labels": {"app": key.1, "configmap-type": "high-availability", "type": "flink-native-kubernetes"}},
            "data": {}});
        cm["data"][entry] = json!(path);
        let _ = self.kube.create(cm, &rfc3339(now));
    }

    fn ha_config_map_key(ns: &str, name: &str) -> Key {
        key_of("ConfigMap", ns, &format!("{name}-cluster-config-map"))
    }

    fn start_cluster(&mut self, ns: &str, name: &str) {
        let config = self.read_config(ns, name);
        let version = config
            .get("kubernetes.container.image.ref")
            .and_then(|i| i.split(':').nth(1))
            .map(|v| format!("{v}.0"))
            .unwrap_or_else(|| "2.3.0".into());
        let slots = config
            .get("taskmanager.numberOfTaskSlots")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1i64)
            .max(1);
        let mut cluster = FlinkCluster {
            namespace: ns.into(),
            name: name.into(),
            flink_version: version,
            jobs: Vec::new(),
            operations: BTreeMap::new(),
            jars: BTreeMap::new(),
            taskmanagers: 0,
            slots_per_tm: slots,
            ha: crate::flink::ha_enabled(&config),
            config: Arc::new(config.clone()),
            wake_at: None,
        };
        if config.get("execution.target").map(String::as_str) == Some("kubernetes-application") {
            let job_id = config
                .get("$internal.pipeline.job-id")
                .cloned()
                .unwrap_or_else(|| self.rng.hex(32));
            let parallelism = config
                .get("parallelism.default")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1i64);
            cluster.taskmanagers = (parallelism + slots - 1) / slots;
            let ha_restore = if cluster.ha_enabled() {
                self.kube
                    .get(&Self::ha_config_map_key(ns, name))
                    .and_then(|cm| {
                        cm["data"][format!("checkpointID-{job_id}")]
                            .as_str()
                            .map(str::to_string)
                    })
            } else {
                None
            };
            let restored = match (ha_restore, config.get("execution.savepoint.path")) {
                (Some(path), _) => RestoredFrom::Checkpoint(path),
                (None, Some(path)) if path.contains("/chk-") => {
                    RestoredFrom::Checkpoint(path.clone())
                }
                (None, Some(path)) => RestoredFrom::Savepoint(path.clone()),
                (None, None) => RestoredFrom::None,
            };
            let job_name = config
                .get("$internal.application.main")
                .map(|c| c.rsplit('.').next().unwrap_or(c).to_string())
                .or_else(|| {
                    config.get("pipeline.jars").map(|j| {
                        j.rsplit('/')
                            .next()
                            .unwrap_or(j)
                            .trim_end_matches(".jar")
                            .to_string()
                    })
                })
                .unwrap_or_else(|| "job".into());
            let timing = self.timing();
            let owner = format!("FlinkDeployment/{ns}/{name}");
            let lost = restored
                .path()
                .map(|p| self.disposed.contains(p))
                .unwrap_or(false);
            cluster.submit(
                job_id.clone(),
                job_name,
                parallelism,
                restored.clone(),
                owner.clone(),
                self.now,
                &timing,
            );
            if lost {
                // Real Flink fails the job when the state to restore is gone.
                let job = cluster.jobs.last_mut().unwrap();
                job.exceptions.push((self.now, "java.io.FileNotFoundException: Cannot find checkpoint or savepoint file/directory".into()));
                FlinkCluster::set_state(job, "FAILED", self.now);
            }
            let deployment_uid = self
                .kube
                .get(&key_of("Deployment", ns, name))
                .and_then(|d| d["metadata"]["uid"].as_str().map(str::to_string))
                .unwrap_or_default();
            self.index_jobs();
            let operator_initiated = self
                .changed
                .job_by_owner
                .get(&owner)
                .map(|i| self.jobs[*i].deployment_uid != deployment_uid)
                .unwrap_or(true);
            self.jobs.push(JobRecord {
                owner,
                job_id,
                cluster: (ns.into(), name.into()),
                submitted_at: self.now,
                restored_from: restored,
                parallelism,
                last_state: "INITIALIZING".into(),
                deployment_uid,
                operator_initiated,
            });
        } else {
            cluster.taskmanagers = 1;
        }
        self.touch_cluster(ns, name);
        self.changed.apps.insert((ns.into(), name.into()));
        self.clusters.insert((ns.into(), name.into()), cluster);
    }

    fn run_clusters(&mut self) {
        let now = self.now;
        let timing = self.timing();
        // The clusters whose time has come and those touched since they last ran: in the
        // others nothing is due and every job record is up to date.
        let mut keys = std::mem::take(&mut self.changed.clusters);
        keys.extend(
            self.changed
                .wakes
                .iter()
                .take_while(|(at, _)| *at <= now)
                .map(|(_, k)| k.clone()),
        );
        for key in keys {
            // Taken out for the run (an empty one holds its place); nothing below looks it up.
            // A cluster removed since is out of the wake index already (`remove_cluster`).
            let Some(mut cluster) = self.clusters.get_mut(&key).map(std::mem::take) else {
                continue;
            };
            // Job state changes that are due.
            let ha = cluster.ha_enabled();
            for job in cluster.jobs.iter_mut() {
                if let Some((at, next)) = job.next_transition {
                    if at <= now {
                        job.next_transition = None;
                        if next == "RUNNING" && job.state == "INITIALIZING" {
                            FlinkCluster::set_state(job, "CREATED", now);
                        }
                        FlinkCluster::set_state(job, next, now);
                        if next == "RUNNING" && job.checkpoints_dir().is_some() {
                            job.next_checkpoint = Some(now + timing.checkpoint_interval_ms);
                        }
                    }
                }
                if let Some(at) = job.next_checkpoint {
                    if at <= now && job.state == "RUNNING" {
                        let dir = job.checkpoints_dir().unwrap_or_default();
                        let path = job.complete_checkpoint(&dir, now);
                        self.record_job_state(job, &path);
                        job.next_checkpoint = Some(now + timing.checkpoint_interval_ms);
                        if ha {
                            let id = job.id.clone();
                            self.record_ha_checkpoint(&key, &id, &path, now);
                        }
                    }
                }
            }
            // Savepoints and checkpoints that finish now.
            let due: Vec<String> = cluster
                .operations
                .iter()
                .filter(|(_, o)| o.result.is_none() && o.done_at <= now)
                .map(|(k, _)| k.clone())
                .collect();
            for trigger in due {
                let op = cluster.operations.get(&trigger).cloned().unwrap();
                let running = cluster
                    .job(&op.job_id)
                    .map(|j| j.state == "RUNNING")
                    .unwrap_or(false);
                let fail = !op.checkpoint
                    && self.consume_fault(FaultKind::SavepointFailure, Some((&key.0, &key.1)));
                let result = if !running {
                    Err("java.lang.IllegalStateException: the job is not running".to_string())
                } else if fail {
                    Err("org.apache.flink.runtime.checkpoint.CheckpointException: Checkpoint was declined (simulated savepoint failure)".to_string())
                } else if op.checkpoint {
                    let job = cluster.job_mut(&op.job_id).unwrap();
                    let dir = job
                        .checkpoints_dir()
                        .unwrap_or_else(|| "file:///checkpoints".into());
                    let path = job.complete_checkpoint(&dir, now);
                    self.record_job_state(job, &path);
                    // A checkpoint triggered through REST goes to the same store as the
                    // periodic ones, HA metadata included.
                    if cluster.ha_enabled() {
                        self.record_ha_checkpoint(&key, &op.job_id, &path, now);
                    }
                    Ok(path)
                } else {
                    match op.directory.clone() {
                        None => Err("java.lang.IllegalStateException: No savepoint directory configured (state.savepoints.dir)".into()),
                        Some(dir) => {
                            let path = format!("{}/savepoint-{}-{}", dir.trim_end_matches('/'), &op.job_id[..6.min(op.job_id.len())], self.rng.hex(12));
                            let owner = cluster.job(&op.job_id).map(|j| j.owner.clone()).unwrap_or_default();
                            self.record_state(&owner, &path);
                            if let Some(job) = cluster.job_mut(&op.job_id) {
                                // Savepoints share the checkpoint id sequence.
                                let id = job.checkpoints.last().map(|c| c.id).unwrap_or(0)
                                    .max(job.latest_savepoint.as_ref().map(|c| c.id).unwrap_or(0)) + 1;
                                job.latest_savepoint = Some(crate::flink::CompletedCheckpoint { id, path: path.clone(), at: now });
                            }
                            Ok(path)
                        }
                    }
                };
                if op.stop && result.is_ok() {
                    if let Some(job) = cluster.job_mut(&op.job_id) {
                        FlinkCluster::set_state(job, "FINISHED", now);
                    }
                }
                cluster.operations.get_mut(&trigger).unwrap().result = Some(result);
            }
            for job in cluster.jobs.iter_mut().filter(|j| j.record_behind) {
                if let Some(r) = self.job_record_mut(&key, &job.id) {
                    if r.last_state != job.state {
                        r.last_state = job.state.clone();
                    }
                    job.record_behind = false;
                }
            }
            let next = cluster.next_wake();
            self.set_wake(&key, &mut cluster, next);
            if let Some(place) = self.clusters.get_mut(&key) {
                *place = cluster;
            }
        }
    }

    /// Moves the world forward to `self.now`: faults expire, controllers act, jobs progress.
    pub fn tick(&mut self) {
        self.expire_faults();
        // A few rounds let a change ripple through (Deployment → pod → cluster) in one instant.
        for _ in 0..3 {
            self.reconcile_deployments();
            self.run_kubelet();
            self.sync_clusters();
            self.run_clusters();
        }
        self.flush_watch();
    }

    /// Moves the API server's changes to the operator's watch queue and the journal.
    pub fn flush_watch(&mut self) {
        let events = std::mem::take(&mut self.kube.pending_watch);
        for e in &events {
            if e.key.0 == "FlinkDeployment" || e.key.0 == "FlinkSessionJob" {
                let id = format!("{}/{}/{}", e.key.0, e.key.1, e.key.2);
                let obj = (!e.deleted).then(|| e.object.clone());
                self.journal.push((self.now, Journal::Resource(id, obj)));
            }
        }
        self.watch_queue.extend(events);
    }

    /// The next moment anything in the world changes by itself.
    pub fn next_wake(&self) -> Option<i64> {
        let timers = self.pod_timers.next();
        // Clusters wake when their index says, or, touched since they last ran, by their
        // own account.
        let indexed = self.changed.wakes.first().map(|(at, _)| *at);
        let touched = self
            .changed
            .clusters
            .iter()
            .filter_map(|k| self.clusters.get(k))
            .filter_map(|c| c.next_wake());
        let faults = self.faults.iter().filter_map(|f| f.until);
        timers
            .into_iter()
            .chain(indexed)
            .chain(touched)
            .chain(faults)
            .min()
    }

    fn record_state(&mut self, owner: &str, path: &str) {
        self.state_log.record(owner, self.now, path);
    }

    /// [`World::record_state`] of a job's checkpoint, by the owner id the job keeps: every
    /// running job comes here once a checkpoint interval.
    fn record_job_state(&mut self, job: &mut crate::flink::Job, path: &str) {
        let owner = *job
            .state_owner
            .get_or_insert_with(|| self.state_log.owner(&job.owner));
        self.state_log.push(owner, self.now, path);
    }

    /// Every job record of a resource (`jobs` entries of that owner), in order.
    pub fn jobs_of<'a>(
        &'a self,
        owner: &str,
    ) -> impl DoubleEndedIterator<Item = &'a JobRecord> + 'a {
        let c = &self.changed;
        let indexed = c
            .jobs_of_owner
            .get(owner)
            .map(|v| v.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|i| &self.jobs[*i]);
        let owner = owner.to_string();
        let rest = self.jobs[c.jobs_indexed.min(self.jobs.len())..]
            .iter()
            .filter(move |r| r.owner == owner);
        indexed.chain(rest)
    }

    /// The newest job the world started for a resource (`Kind/ns/name`).
    pub fn newest_job(&self, owner: &str) -> Option<&JobRecord> {
        self.jobs
            .iter()
            .filter(|r| r.owner == owner)
            .max_by_key(|r| r.submitted_at)
    }

    /// The state of a recorded job: live from its cluster while it is the newest record of
    /// that job id there (a HA restart re-records the same id), else its last known state.
    pub fn job_state(&self, record: &JobRecord) -> String {
        let newest = self
            .jobs
            .iter()
            .rev()
            .find(|r| r.job_id == record.job_id && r.cluster == record.cluster);
        let live = newest.map(|n| std::ptr::eq(n, record)).unwrap_or(false);
        live.then(|| {
            self.clusters
                .get(&record.cluster)
                .and_then(|c| c.job(&record.job_id))
                .map(|j| j.state.clone())
        })
        .flatten()
        .unwrap_or_else(|| record.last_state.clone())
    }

    /// Jobs of a resource that run right now, on any cluster.
    pub fn running_instances(&self, owner: &str) -> usize {
        self.clusters
            .values()
            .flat_map(|c| c.jobs.iter())
            .filter(|j| j.owner == owner && j.state == "RUNNING")
            .count()
    }
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The fault as the timeline shows it.
pub fn describe_fault(f: &Fault) -> String {
    let mut parts = vec![f.kind.name().to_string()];
    if let Some(t) = &f.target {
        parts.push(format!("target={}/{}/{}", t.kind, t.namespace, t.name));
    }
    if let Some(i) = &f.image {
        parts.push(format!("image={i}"));
    }
    if let Some(d) = f.duration {
        parts.push(format!(
            "for={}",
            flink_operator::duration::format_duration(d)
        ));
    }
    if let Some(c) = f.count {
        parts.push(format!("count={c}"));
    }
    if let Some(t) = f.terminal {
        parts.push(format!("terminal={t}"));
    }
    if let Some(u) = &f.uri {
        parts.push(format!("uri={u}"));
    }
    if let Some(e) = f.error {
        parts.push(format!("error={}", e.name()));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_seeded() {
        assert_eq!(Rng::new(7).hex(32), Rng::new(7).hex(32));
        assert_ne!(Rng::new(7).hex(32), Rng::new(8).hex(32));
    }

    #[test]
    fn rfc3339_of_the_epoch_start() {
        assert_eq!(rfc3339(EPOCH_MS), "2026-01-01T00:00:00Z");
        assert_eq!(rfc3339(EPOCH_MS + 90_061_000), "2026-01-02T01:01:01Z");
    }
}
