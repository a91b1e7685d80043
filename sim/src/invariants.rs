//! Properties the world checks on every step of every run, whatever the scenario asserts:
//! what must never happen to a user's job, no matter what the operator did or what failed.
//!
//! - One job per resource: never two running jobs for the same FlinkDeployment.
//! - No state lost: when the operator starts a stateful job (upgrade mode savepoint or
//!   last-state), it restores the newest savepoint or checkpoint that resource's jobs had
//!   completed, unless the user named the state to start from (`initialSavepointPath`).
//!   Restarts a JobManager does by itself (Flink's own recovery) are not the operator's.
//!   Only this incarnation of the resource counts (a resource deleted and created again
//!   starts afresh), and a spec that asked for `stateless` since the last job frees it. A
//!   restore from a checkpoint must be from the newest checkpoint: Flink recovers from
//!   checkpoints only, so a savepoint taken after it is replayed from there, not lost.
//! - No job starts from a savepoint or checkpoint that was disposed; HA metadata of a
//!   stateful deployment is not deleted while the deployment lives.
//! - The status tells the truth, checked on every status the operator writes:
//!   `observedGeneration` never goes backwards (nor past `metadata.generation`); a
//!   `jobStatus.state` that turns RUNNING names a job that runs; a `lifecycleState` that turns
//!   STABLE with the job RUNNING runs the reconciled spec (its parallelism, its image);
//!   `lastSavepoint` and `upgradeSavepointPath` name savepoints that exist.
//! - Nothing left behind: when a resource leaves the API, its cluster objects, its Flink
//!   cluster and its jobs are gone (a job may still be CANCELLING).
//! - Nothing else touched: objects labelled `flink-sim/bystander` (the explorer adds
//!   some beside the resources) never change.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use crate::flink::RestoredFrom;
use crate::kube::{key_of, Key};
use crate::world::World;
use rustc_hash::{FxHashMap, FxHashSet};

/// The label that marks an object the operator must leave alone.
pub const BYSTANDER_LABEL: &str = "flink-sim/bystander";

/// Per-resource memories are hashed (looked up by key, never listed): at 10,000 deployments an
/// ordered map's string comparisons per lookup each missed the cache.
#[derive(Debug, Default)]
pub struct Invariants {
    jobs_checked: usize,
    reported: BTreeSet<String>,
    /// Checks made, for the explorer's summary.
    pub checks: u64,
    /// Whether a check has looked at every resource (the first one does).
    looked_at_all: bool,
    /// Per resource: its uid and when this incarnation was first seen.
    incarnations: FxHashMap<String, (String, i64)>,
    /// Per resource: a spec asking for stateless (or no job) was seen since its last job.
    stateless_since_job: FxHashSet<String>,
    /// Per resource: what the checks need of the last status written, and the highest
    /// observedGeneration. Not the object itself: kept, it made the next status write copy
    /// the whole resource (the fake API writes in place only what nothing else holds).
    last_status: FxHashMap<String, SeenStatus>,
    observed: FxHashMap<String, i64>,
    /// Bystanders by key: what they looked like first.
    bystanders: BTreeMap<Key, Value>,
    /// FlinkDeployments whose HA metadata exists, by resource.
    ha_seen: FxHashSet<String>,
    /// When each job was last seen RUNNING (a status written in a reconcile reports what
    /// the job was when the reconcile looked, the instant before it acted).
    seen_running: FxHashMap<String, i64>,
    /// Per resource: when its job last started from nothing rightly, so that the states before
    /// are not the operator's to restore: by the world (a JobManager that died without HA
    /// re-runs the job from scratch, Flink's own loss, documented as such in Flink) or by a
    /// stateless start the user asked for.
    fresh_start: FxHashMap<String, i64>,
}

/// What the checks compare a status write with: the one before it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SeenStatus {
    /// [`fingerprint`] of the whole status: the same means nothing to check again.
    fingerprint: u64,
    running: bool,
    stable: bool,
}

impl SeenStatus {
    fn of(status: &Value) -> Self {
        SeenStatus {
            fingerprint: fingerprint(status),
            running: status["jobStatus"]["state"].as_str() == Some("RUNNING"),
            stable: status["lifecycleState"].as_str() == Some("STABLE"),
        }
    }
}

/// A hash of a JSON value, the same in every run (FxHash has no random state). Two values
/// with their keys in another order hash differently: that only checks them again. Two
/// different statuses hashing the same (one chance in 2^64) would skip one write's checks.
fn fingerprint(v: &Value) -> u64 {
    use std::hash::{Hash, Hasher};
    fn walk(v: &Value, h: &mut rustc_hash::FxHasher) {
        match v {
            Value::Null => 0u8.hash(h),
            Value::Bool(b) => (1u8, b).hash(h),
            Value::Number(n) => (2u8, n.as_f64().map(f64::to_bits), n.as_i64()).hash(h),
            Value::String(s) => (3u8, s).hash(h),
            Value::Array(a) => {
                (4u8, a.len()).hash(h);
                a.iter().for_each(|x| walk(x, h));
            }
            Value::Object(o) => {
                (5u8, o.len()).hash(h);
                for (k, x) in o {
                    k.hash(h);
                    walk(x, h);
                }
            }
        }
    }
    let mut h = rustc_hash::FxHasher::default();
    walk(v, &mut h);
    h.finish()
}

fn split_owner(owner: &str) -> (&str, &str, &str) {
    let mut parts = owner.splitn(3, '/');
    (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    )
}

fn mode_of(spec: &Value) -> &str {
    if spec["job"].is_null() {
        return "stateless";
    }
    spec["job"]["upgradeMode"].as_str().unwrap_or("stateless")
}

/// The spec inside a stored `lastReconciledSpec` / `lastStableSpec` text.
fn stored_spec(text: &Value) -> Option<Value> {
    let v: Value = serde_json::from_str(text.as_str()?).ok()?;
    Some(if v.get("spec").is_some() {
        v["spec"].clone()
    } else {
        v
    })
}

/// Whether a stored spec text has a job that is not suspended. Reads only `job.state` (every
/// status write is checked; the whole spec is not needed for this).
fn stored_job_wanted(text: &Value) -> bool {
    #[derive(serde::Deserialize)]
    struct Job {
        state: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Spec {
        job: Option<Job>,
    }
    #[derive(serde::Deserialize)]
    struct Stored {
        // The current format nests the spec; the legacy one has it at the top level.
        spec: Option<Spec>,
        job: Option<Job>,
    }
    let Some(stored) = text
        .as_str()
        .and_then(|t| serde_json::from_str::<Stored>(t).ok())
    else {
        return false;
    };
    let job = match stored.spec {
        Some(spec) => spec.job,
        None => stored.job,
    };
    job.map(|j| j.state.as_deref() != Some("suspended"))
        .unwrap_or(false)
}

/// A rollback redeploys the last stable spec, and one that was stateless starts from nothing,
/// as upstream's does (it keeps a stable spec's stateless mode, else uses last-state).
fn rolls_back_to_stateless(resource: &Value) -> bool {
    let recon = &resource["status"]["reconciliationStatus"];
    matches!(
        recon["state"].as_str(),
        Some("ROLLING_BACK") | Some("ROLLED_BACK")
    ) && stored_spec(&recon["lastStableSpec"])
        .map(|spec| mode_of(&spec) == "stateless")
        .unwrap_or(false)
}

fn job_active(state: &str) -> bool {
    !crate::flink::is_terminal(state) && state != "CANCELLING"
}

impl Invariants {
    /// New violations since the last check, each reported once.
    pub fn check(&mut self, w: &World) -> Vec<String> {
        self.check_changed(w, None)
    }

    /// [`Invariants::check`], looking again only at the Flink resources in `changed` (and those
    /// whose HA ConfigMap came or went): what [`crate::kube::KubeStore::take_check_changes`]
    /// gave since the last check. `None`: at every resource.
    pub fn check_changed(&mut self, w: &World, changed: Option<Vec<Key>>) -> Vec<String> {
        self.checks += 1;
        // A feed is only the difference from a look at everything these checks made.
        let changed = changed.filter(|_| self.looked_at_all);
        self.looked_at_all = true;
        let mut found = Vec::new();
        // Each owner's first running job, hashed (at 10,000 jobs an ordered map's string
        // comparisons each missed the cache); the owners with more, in order.
        let mut first: FxHashMap<&str, &str> = FxHashMap::default();
        let mut running: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for job in w.clusters.values().flat_map(|c| c.jobs.iter()) {
            if job.state == "RUNNING" && !job.owner.is_empty() {
                match first.entry(&job.owner) {
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(&job.id);
                    }
                    std::collections::hash_map::Entry::Occupied(e) => {
                        running
                            .entry(&job.owner)
                            .or_insert_with(|| vec![*e.get()])
                            .push(&job.id);
                    }
                }
                // Looked at every virtual minute for every job: no new key unless it is new.
                match self.seen_running.get_mut(&job.id) {
                    Some(at) => *at = w.now,
                    None => {
                        self.seen_running.insert(job.id.clone(), w.now);
                    }
                }
            }
        }
        for (owner, mut jobs) in running {
            jobs.sort_unstable(); // the clusters are hashed: no order of their own
            found.push(format!(
                "{owner}: {} jobs run at once ({})",
                jobs.len(),
                jobs.join(", ")
            ));
        }
        self.follow_resources(w, changed, &mut found);
        for record in &w.jobs[self.jobs_checked..] {
            if let Some(path) = record.restored_from.path() {
                if w.disposed.contains(path) {
                    found.push(format!(
                        "{}: job {} started from {path}, which was disposed",
                        record.owner, record.job_id
                    ));
                }
            }
            if !record.operator_initiated {
                // The world restarted the job (a JobManager restart): from the newest state
                // with HA; without it, from what the deployment was started with, and what
                // came after that is lost by Flink's design, not by the operator.
                let newest = w
                    .state_log
                    .newest_first(&record.owner)
                    .find(|s| s.at <= record.submitted_at && !w.disposed.contains(&s.path()))
                    .map(|s| s.path());
                if newest.is_some() && record.restored_from.path() != newest.as_deref() {
                    self.fresh_start
                        .insert(record.owner.clone(), record.submitted_at);
                }
                continue;
            }
            let freed = self.stateless_since_job.remove(&record.owner);
            let (kind, ns, name) = split_owner(&record.owner);
            let Some(resource) = w.kube.get(&key_of(kind, ns, name)) else {
                continue;
            };
            let job = &resource["spec"]["job"];
            let stateless_now =
                mode_of(&resource["spec"]) == "stateless" || rolls_back_to_stateless(resource);
            if stateless_now || freed {
                // A stateless start gives up the states before it, also for the jobs its
                // cluster starts later (a JobManager that came up only after the spec moved
                // on to another mode still runs the stateless deploy).
                self.fresh_start
                    .insert(record.owner.clone(), record.submitted_at);
                if stateless_now {
                    self.stateless_since_job.insert(record.owner.clone());
                }
                continue;
            }
            let since = self
                .incarnations
                .get(&record.owner)
                .map(|(_, at)| *at)
                .unwrap_or(i64::MIN)
                .max(
                    self.fresh_start
                        .get(&record.owner)
                        .copied()
                        .unwrap_or(i64::MIN),
                );
            // Flink recovers from checkpoints only: a restore from a checkpoint (last-state)
            // replays what a newer savepoint holds, it does not lose it.
            let from_checkpoint = matches!(record.restored_from, RestoredFrom::Checkpoint(_));
            // The resource's own states, newest first, back to `since` (a walk along its
            // chain in the state log, not a look at every state ever taken).
            let Some(newest) = w
                .state_log
                .newest_first(&record.owner)
                .take_while(|s| s.at >= since)
                .filter(|s| s.at <= record.submitted_at)
                .map(|s| s.path())
                .find(|path| {
                    !w.disposed.contains(path) && (!from_checkpoint || path.contains("/chk-"))
                })
            else {
                continue;
            };
            let restored = record.restored_from.path();
            let chosen_by_user =
                restored.is_some() && restored == job["initialSavepointPath"].as_str();
            if restored != Some(newest.as_str()) && !chosen_by_user {
                found.push(format!(
                    "{}: job {} started from {} but the newest state was {}",
                    record.owner,
                    record.job_id,
                    restored.unwrap_or("nothing"),
                    newest
                ));
            }
        }
        self.jobs_checked = w.jobs.len();
        self.check_bystanders(w, &mut found);
        found.retain(|v| self.reported.insert(v.clone()));
        found
    }

    /// What the checks remember of each resource (its incarnation, a stateless spec, its HA
    /// metadata), brought up to date for every resource, or for those `changed` names: nothing
    /// else changes it. In (kind, namespace, name) order either way.
    fn follow_resources(&mut self, w: &World, changed: Option<Vec<Key>>, found: &mut Vec<String>) {
        let Some(changed) = changed else {
            for kind in ["FlinkDeployment", "FlinkSessionJob"] {
                for obj in w.kube.list_all(kind) {
                    self.follow_resource(w, kind, obj, found);
                }
            }
            return;
        };
        let resources: BTreeSet<Key> = changed
            .into_iter()
            .filter_map(|key| match key.0.as_str() {
                "ConfigMap" => key
                    .2
                    .strip_suffix("-cluster-config-map")
                    .map(|name| key_of("FlinkDeployment", &key.1, name)),
                _ => Some(key),
            })
            .collect();
        for key in resources {
            if let Some(obj) = w.kube.get(&key) {
                self.follow_resource(w, &key.0, obj, found);
            }
        }
    }

    fn follow_resource(&mut self, w: &World, kind: &str, obj: &Value, found: &mut Vec<String>) {
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let owner = format!("{kind}/{ns}/{name}");
        let uid = obj["metadata"]["uid"].as_str().unwrap_or_default();
        let fresh = self.incarnations.get(&owner).map(|(u, _)| u.as_str()) != Some(uid);
        if fresh {
            self.incarnations
                .insert(owner.clone(), (uid.to_string(), w.now));
            self.stateless_since_job.remove(&owner);
            self.last_status.remove(&owner);
            self.observed.remove(&owner);
            self.ha_seen.remove(&owner);
        }
        if mode_of(&obj["spec"]) == "stateless" && !self.stateless_since_job.contains(&owner) {
            self.stateless_since_job.insert(owner.clone());
        }
        if kind != "FlinkDeployment" {
            return;
        }
        let ha_key = key_of("ConfigMap", ns, &format!("{name}-cluster-config-map"));
        let ha = w.kube.get(&ha_key).is_some();
        if ha {
            if !self.ha_seen.contains(&owner) {
                self.ha_seen.insert(owner);
            }
        } else if self.ha_seen.remove(&owner) {
            let deleting = obj["metadata"].get("deletionTimestamp").is_some();
            let recon = &obj["status"]["reconciliationStatus"];
            let modes = [
                Some(obj["spec"].clone()),
                stored_spec(&recon["lastReconciledSpec"]),
                stored_spec(&recon["lastStableSpec"]),
            ];
            let stateless = modes.iter().any(|m| {
                m.as_ref()
                    .map(|m| mode_of(m) == "stateless")
                    .unwrap_or(false)
            });
            if !deleting && !stateless {
                found.push(format!(
                    "{owner}: its HA metadata was deleted while its {} job lives",
                    mode_of(&obj["spec"])
                ));
            }
        }
    }

    fn check_bystanders(&mut self, w: &World, found: &mut Vec<String>) {
        for (key, obj) in w.kube.bystanders() {
            if key.0 != "ConfigMap" && key.0 != "Service" {
                continue;
            }
            if obj["metadata"]["labels"][BYSTANDER_LABEL].is_null() {
                continue;
            }
            self.bystanders.entry(key).or_insert_with(|| obj.clone());
        }
        for (key, first) in &self.bystanders {
            let now = w.kube.get(key);
            let same = now
                .map(|o| o["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"])
                .unwrap_or(false);
            if !same {
                found.push(format!(
                    "{}/{}/{}: an object the operator did not create was {}",
                    key.0,
                    key.1,
                    key.2,
                    if now.is_some() { "changed" } else { "deleted" }
                ));
            }
        }
    }

    /// Checks every write to a Flink resource since the last look: the statuses the operator
    /// wrote (`Some`), and resources that left the API (`None`).
    pub fn check_writes(
        &mut self,
        w: &World,
        writes: &[(String, Option<Arc<Value>>)],
    ) -> Vec<String> {
        let mut found = Vec::new();
        for (id, obj) in writes {
            self.checks += 1;
            match obj {
                None => self.check_gone(w, id, &mut found),
                Some(obj) => self.check_status(w, id, obj, &mut found),
            }
        }
        found.retain(|v| self.reported.insert(v.clone()));
        found
    }

    fn check_gone(&mut self, w: &World, id: &str, found: &mut Vec<String>) {
        self.last_status.remove(id);
        self.observed.remove(id);
        self.incarnations.remove(id);
        self.ha_seen.remove(id);
        if w.kube
            .get(&{
                let (k, ns, n) = split_owner(id);
                key_of(k, ns, n)
            })
            .is_some()
        {
            return; // created again at once
        }
        let (kind, ns, name) = split_owner(id);
        let mut left = Vec::new();
        for c in w.clusters.values() {
            for j in c
                .jobs
                .iter()
                .filter(|j| j.owner == id && job_active(&j.state))
            {
                left.push(format!("job {} ({})", j.id, j.state));
            }
        }
        left.sort(); // the clusters are hashed: no order of their own
        if kind == "FlinkDeployment" {
            if w.clusters.contains_key(&(ns.to_string(), name.to_string())) {
                left.push("its Flink cluster".into());
            }
            for (k, n) in [
                ("Deployment", name.to_string()),
                ("Deployment", format!("{name}-taskmanager")),
                ("ConfigMap", format!("flink-config-{name}")),
                ("ConfigMap", format!("{name}-cluster-config-map")),
                ("Service", format!("{name}-rest")),
                ("Service", name.to_string()),
            ] {
                if w.kube.get(&key_of(k, ns, &n)).is_some() {
                    left.push(format!("{k}/{n}"));
                }
            }
        }
        if !left.is_empty() {
            found.push(format!(
                "{id}: deleted, but left behind {}",
                left.join(", ")
            ));
        }
    }

    fn check_status(&mut self, w: &World, id: &str, obj: &Arc<Value>, found: &mut Vec<String>) {
        let status = &obj["status"];
        let seen = SeenStatus::of(status);
        let before = match self.last_status.get_mut(id) {
            Some(before) => std::mem::replace(before, seen),
            None => {
                self.last_status.insert(id.to_string(), seen);
                SeenStatus::of(&Value::Null)
            }
        };
        if seen.fingerprint == before.fingerprint {
            return;
        }
        if status.is_null() {
            return;
        }
        // observedGeneration: never backwards, never ahead of the spec.
        if let Some(g) = status["observedGeneration"].as_i64() {
            let high = self.observed.entry(id.to_string()).or_insert(g);
            if g < *high {
                found.push(format!(
                    "{id}: observedGeneration went back from {} to {g}",
                    *high
                ));
            }
            *high = (*high).max(g);
            let generation = obj["metadata"]["generation"].as_i64().unwrap_or(0);
            if g > generation {
                found.push(format!(
                    "{id}: observedGeneration {g} is ahead of generation {generation}"
                ));
            }
        }
        let deleting = obj["metadata"].get("deletionTimestamp").is_some();
        let js = &status["jobStatus"];
        // Savepoints the status names exist.
        for (what, path) in [
            (
                "lastSavepoint",
                &js["savepointInfo"]["lastSavepoint"]["location"],
            ),
            ("upgradeSavepointPath", &js["upgradeSavepointPath"]),
        ] {
            if let Some(p) = path.as_str() {
                if w.disposed.contains(p) && !deleting {
                    found.push(format!(
                        "{id}: status.jobStatus.{what} names {p}, which was disposed"
                    ));
                }
            }
        }
        let (kind, ns, name) = split_owner(id);
        let job_wanted = stored_job_wanted(&status["reconciliationStatus"]["lastReconciledSpec"]);
        let running = js["state"].as_str() == Some("RUNNING");
        let turned_running = running && !before.running;
        let the_job = || {
            let job_id = js["jobId"].as_str()?;
            // The clusters the world recorded this job on, in cluster order. Every job a
            // cluster runs was recorded with it (the world's start and the REST submission
            // both record it), so no other cluster can hold it: a look at every cluster found
            // nothing more and cost O(clusters) per status write.
            let recorded: BTreeSet<&(String, String)> = w
                .jobs_of(id)
                .filter(|r| r.job_id == job_id)
                .map(|r| &r.cluster)
                .collect();
            recorded
                .into_iter()
                .filter_map(|c| w.clusters.get(c))
                .flat_map(|c| c.jobs.iter())
                .find(|j| j.id == job_id && j.owner == id)
        };
        if turned_running && job_wanted && !deleting {
            let job_id = js["jobId"].as_str().unwrap_or_default();
            let ok = the_job()
                .map(|j| j.state == "RUNNING" || j.last_modification == w.now)
                .unwrap_or(false)
                || self.seen_running.get(job_id) == Some(&w.now);
            if !ok {
                found.push(format!(
                    "{id}: status says job {} RUNNING, but it does not run",
                    js["jobId"].as_str().unwrap_or("?")
                ));
            }
        }
        let stable = status["lifecycleState"].as_str() == Some("STABLE");
        let turned_stable = stable && !before.stable;
        if turned_stable && running && job_wanted && !deleting {
            // Parsed whole only here, when a status turns STABLE.
            let Some(spec) = stored_spec(&status["reconciliationStatus"]["lastReconciledSpec"])
            else {
                return;
            };
            if let (Some(job), Some(p)) = (the_job(), spec["job"]["parallelism"].as_i64()) {
                let record = w.jobs_of(id).rev().find(|r| r.job_id == job.id);
                if let Some(r) = record {
                    if p > 0 && r.parallelism != p {
                        found.push(format!(
                            "{id}: STABLE with parallelism {p} reconciled, but the job runs with {}",
                            r.parallelism
                        ));
                    }
                }
            }
            // The Deployment as it is now: only if no later write of this reconcile moved on.
            let latest = w
                .kube
                .get(&key_of(kind, ns, name))
                .map(|o| &o["status"] == status)
                .unwrap_or(false);
            if kind == "FlinkDeployment" && latest {
                let image = w.kube.get(&key_of("Deployment", ns, name)).and_then(|d| {
                    d["spec"]["template"]["spec"]["containers"][0]["image"]
                        .as_str()
                        .map(str::to_string)
                });
                if let (Some(image), Some(wanted)) = (image, spec["image"].as_str()) {
                    if image != wanted {
                        found.push(format!(
                            "{id}: STABLE with image {wanted} reconciled, but the JobManager runs {image}"
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::flink::{ClusterTiming, FlinkCluster, RestoredFrom};
    use crate::scenario::ClusterSettings;
    use crate::world::JobRecord;
    use serde_json::json;

    #[test]
    fn a_status_fingerprint_follows_every_nested_change() {
        let status = json!({"lifecycleState": "STABLE",
            "jobStatus": {"state": "RUNNING", "savepointInfo": {"lastSavepoint": null}},
            "conditions": [{"type": "Running", "status": "True"}]});
        assert_eq!(fingerprint(&status), fingerprint(&status.clone()));
        for (pointer, other) in [
            ("/lifecycleState", json!("DEPLOYED")),
            ("/jobStatus/state", json!("FAILED")),
            ("/jobStatus/savepointInfo/lastSavepoint", json!({})),
            ("/conditions/0/status", json!("False")),
        ] {
            let mut changed = status.clone();
            *changed.pointer_mut(pointer).unwrap() = other;
            assert_ne!(fingerprint(&status), fingerprint(&changed), "{pointer}");
        }
        let seen = SeenStatus::of(&status);
        assert!(seen.running && seen.stable);
    }

    const OWNER: &str = "FlinkDeployment/default/app";

    fn world(mode: &str) -> World {
        let mut w = World::new(1, ClusterSettings::default());
        w.kube
            .create(
                json!({"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
                       "metadata": {"name": "app", "namespace": "default"},
                       "spec": {"job": {"upgradeMode": mode, "initialSavepointPath": "file:///chosen"}}}),
                "t",
            )
            .unwrap();
        let now = w.now;
        w.state_log.record(OWNER, now, "file:///sp/savepoint-1");
        w
    }

    fn start(w: &mut World, restored: RestoredFrom, by_operator: bool) {
        w.jobs.push(JobRecord {
            owner: OWNER.into(),
            job_id: format!("j{}", w.jobs.len()),
            cluster: ("default".into(), "app".into()),
            submitted_at: w.now + 1,
            restored_from: restored,
            parallelism: 1,
            last_state: "RUNNING".into(),
            deployment_uid: "u".into(),
            operator_initiated: by_operator,
        });
    }

    #[test]
    fn a_stateful_redeploy_that_drops_the_newest_state_is_caught() {
        let mut w = world("savepoint");
        start(&mut w, RestoredFrom::None, true);
        let v = Invariants::default().check(&w);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].contains("started from nothing but the newest state was file:///sp/savepoint-1")
        );
    }

    #[test]
    fn the_newest_state_the_users_choice_stateless_and_flink_own_restarts_are_fine() {
        for (mode, restored, by_operator) in [
            (
                "savepoint",
                RestoredFrom::Savepoint("file:///sp/savepoint-1".into()),
                true,
            ),
            (
                "last-state",
                RestoredFrom::Savepoint("file:///chosen".into()),
                true,
            ),
            ("stateless", RestoredFrom::None, true),
            ("savepoint", RestoredFrom::None, false),
        ] {
            let mut w = world(mode);
            start(&mut w, restored, by_operator);
            assert!(Invariants::default().check(&w).is_empty(), "{mode}");
        }
    }

    #[test]
    fn two_running_jobs_of_one_resource_are_caught_once() {
        let mut w = world("savepoint");
        let timing = ClusterTiming {
            job_startup_ms: 0,
            checkpoint_interval_ms: 1,
            savepoint_duration_ms: 1,
        };
        for name in ["app", "app-b"] {
            let mut c = FlinkCluster {
                namespace: "default".into(),
                name: name.into(),
                config: Default::default(),
                flink_version: "2.3.0".into(),
                jobs: Vec::new(),
                operations: Default::default(),
                jars: Default::default(),
                taskmanagers: 1,
                slots_per_tm: 1,
                ha: false,
                wake_at: None,
            };
            c.submit(
                format!("id-{name}"),
                "job".into(),
                1,
                RestoredFrom::None,
                OWNER.into(),
                0,
                &timing,
            );
            FlinkCluster::set_state(&mut c.jobs[0], "RUNNING", 0);
            w.clusters.insert(("default".into(), name.into()), c);
        }
        let mut inv = Invariants::default();
        let v = inv.check(&w);
        assert!(v.iter().any(|x| x.contains("2 jobs run at once")), "{v:?}");
        assert!(inv.check(&w).is_empty(), "reported once");
    }
    #[test]
    fn a_look_at_what_changed_sees_ha_metadata_go() {
        let ha = || {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "app-cluster-config-map", "namespace": "default"}})
        };
        let ha_key = key_of("ConfigMap", "default", "app-cluster-config-map");
        for fed in [true, false] {
            let mut w = world("savepoint");
            w.kube.create(ha(), "t").unwrap();
            w.kube.track_check_changes();
            let mut inv = Invariants::default();
            // The first look is at everything, whatever the feed says: it sees the metadata.
            assert!(inv.check_changed(&w, Some(Vec::new())).is_empty());
            w.kube.delete(&ha_key, "t").unwrap();
            let changed = w.kube.take_check_changes().unwrap();
            assert_eq!(changed, vec![ha_key.clone()], "a removal is in the feed");
            // Without the feed's key, the later look does not look at the resource again.
            let v = inv.check_changed(&w, Some(if fed { changed } else { Vec::new() }));
            assert_eq!(v.len(), usize::from(fed), "{v:?}");
            if fed {
                assert!(v[0].contains("its HA metadata was deleted while its savepoint job lives"));
            }
        }
    }
}
