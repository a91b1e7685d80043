//! A fake Flink cluster: one JobManager's REST API with Flink's job states, checkpoints on an
//! interval, savepoints that take time and can fail, stop-with-savepoint, cancel, and
//! restores that remember where their state came from. Answers are the JSON Flink 2.3 sends.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

/// Where a job's state came from when it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoredFrom {
    None,
    Savepoint(String),
    Checkpoint(String),
}

impl RestoredFrom {
    pub fn name(&self) -> &'static str {
        match self {
            RestoredFrom::None => "none",
            RestoredFrom::Savepoint(_) => "savepoint",
            RestoredFrom::Checkpoint(_) => "checkpoint",
        }
    }
    pub fn path(&self) -> Option<&str> {
        match self {
            RestoredFrom::None => None,
            RestoredFrom::Savepoint(p) | RestoredFrom::Checkpoint(p) => Some(p),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CompletedCheckpoint {
    pub id: i64,
    pub path: String,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub name: String,
    pub state: String,
    pub start_time: i64,
    pub end_time: i64,
    pub last_modification: i64,
    pub parallelism: i64,
    pub restored_from: RestoredFrom,
    pub checkpoints: Vec<CompletedCheckpoint>,
    /// When the job next changes state by itself (INITIALIZING → RUNNING, RESTARTING → ...).
    pub next_transition: Option<(i64, &'static str)>,
    pub next_checkpoint: Option<i64>,
    pub exceptions: Vec<(i64, String)>,
    /// The newest savepoint taken of this job (for `latest.savepoint`).
    pub latest_savepoint: Option<CompletedCheckpoint>,
    /// The job's configuration: the cluster's, with what its submission added on top.
    /// Shared with the cluster until a submission adds something (a copy per job was 30 MB
    /// of small long-lived strings at 10,000 deployments).
    /// Changed only through [`Job::add_config`], which keeps `checkpoints_at` in step.
    config: Arc<BTreeMap<String, String>>,
    /// Where its checkpoints go, read from `config` once: every checkpoint needs it, and at
    /// 10,000 clusters the two lookups in a cold map were a cache miss per key compared.
    checkpoints_at: Option<String>,
    /// Which resource this job runs for (FlinkDeployment or FlinkSessionJob), for assertions.
    pub owner: String,
    /// The world's record of this job ([`crate::world::JobRecord`]) has not caught up with
    /// `state` yet: set by every change of state, cleared when the world copies it over.
    /// Most runs of a cluster change no job's state (a checkpoint), and looking the record up
    /// to compare was a handful of cache misses per checkpoint at 10,000 clusters.
    pub record_behind: bool,
    /// `owner`'s id in the world's state log, once it recorded a state of this job's (valid
    /// for that world's log only; `owner` never changes once the job is submitted).
    pub state_owner: Option<crate::state_log::OwnerId>,
}

/// Where Flink writes checkpoints, by the 1.x or the 2.x key.
pub fn checkpoints_dir(config: &BTreeMap<String, String>) -> Option<String> {
    config
        .get("state.checkpoints.dir")
        .or_else(|| config.get("execution.checkpointing.dir"))
        .cloned()
}

pub fn savepoints_dir(config: &BTreeMap<String, String>) -> Option<String> {
    config
        .get("state.savepoints.dir")
        .or_else(|| config.get("execution.checkpointing.savepoint-dir"))
        .cloned()
}

impl Job {
    /// The job's own configuration on top of the cluster's, as Flink does at submission.
    pub fn add_config(&mut self, extra: &BTreeMap<String, String>) {
        Arc::make_mut(&mut self.config).extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.checkpoints_at = checkpoints_dir(&self.config);
    }
    pub fn checkpoints_dir(&self) -> Option<String> {
        self.checkpoints_at.clone()
    }
    pub fn savepoints_dir(&self) -> Option<String> {
        savepoints_dir(&self.config)
    }
    /// Checkpointing is on when an interval is configured or a checkpoint directory is set.
    pub fn checkpointing(&self) -> bool {
        self.config.contains_key("execution.checkpointing.interval")
            || self.checkpoints_dir().is_some()
    }

    /// Completes a checkpoint under `dir` and returns its path. Flink retains only the newest
    /// one by default (`state.checkpoints.num-retained: 1`): the one before is dropped.
    pub fn complete_checkpoint(&mut self, dir: &str, now: i64) -> String {
        // Savepoints and checkpoints share one id sequence.
        let id = self
            .checkpoints
            .last()
            .map(|c| c.id)
            .unwrap_or(0)
            .max(self.latest_savepoint.as_ref().map(|c| c.id).unwrap_or(0))
            + 1;
        let path = format!("{}/{}/chk-{id}", dir.trim_end_matches('/'), self.id);
        self.checkpoints.push(CompletedCheckpoint {
            id,
            path: path.clone(),
            at: now,
        });
        if self.checkpoints.len() > 1 {
            self.checkpoints.remove(0);
        }
        path
    }
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub job_id: String,
    pub done_at: i64,
    /// stop-with-savepoint (the job finishes) rather than a plain savepoint.
    pub stop: bool,
    pub checkpoint: bool,
    pub result: Option<Result<String, String>>,
    pub directory: Option<String>,
}

/// Timing and storage settings a cluster runs with.
#[derive(Debug, Clone)]
pub struct ClusterTiming {
    pub job_startup_ms: i64,
    pub checkpoint_interval_ms: i64,
    pub savepoint_duration_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct FlinkCluster {
    pub namespace: String,
    pub name: String,
    pub config: Arc<BTreeMap<String, String>>,
    pub flink_version: String,
    pub jobs: Vec<Job>,
    pub operations: BTreeMap<String, Operation>,
    pub jars: BTreeMap<String, String>,
    pub taskmanagers: i64,
    pub slots_per_tm: i64,
    /// Whether `config` turns high availability on: read once when the cluster starts (its
    /// configuration does not change while it runs), not at every checkpoint.
    pub ha: bool,
    /// When the world's wake index has this cluster due next (None: not in it). Kept with the
    /// cluster, which its run has in hand, instead of in a map by name: at 10,000 clusters
    /// that map's lookup at the end of every run missed the cache on its stored names.
    pub wake_at: Option<i64>,
}

/// Whether a Flink configuration turns high availability on.
pub fn ha_enabled(config: &BTreeMap<String, String>) -> bool {
    config
        .get("high-availability.type")
        .or_else(|| config.get("high-availability"))
        .is_some_and(|v| !v.eq_ignore_ascii_case("none"))
}

impl FlinkCluster {
    pub fn checkpoints_dir(&self) -> Option<String> {
        checkpoints_dir(&self.config)
    }
    pub fn savepoints_dir(&self) -> Option<String> {
        savepoints_dir(&self.config)
    }
    pub fn ha_enabled(&self) -> bool {
        self.ha
    }
    pub fn job(&self, id: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.id == id)
    }
    pub fn job_mut(&mut self, id: &str) -> Option<&mut Job> {
        self.jobs.iter_mut().find(|j| j.id == id)
    }

    /// Starts a job: INITIALIZING now, RUNNING after the job start-up time.
    #[allow(clippy::too_many_arguments)]
    pub fn submit(
        &mut self,
        id: String,
        name: String,
        parallelism: i64,
        restored_from: RestoredFrom,
        owner: String,
        now: i64,
        timing: &ClusterTiming,
    ) {
        self.jobs.push(Job {
            id,
            name,
            state: "INITIALIZING".into(),
            start_time: now,
            end_time: -1,
            last_modification: now,
            parallelism,
            restored_from,
            checkpoints: Vec::new(),
            next_transition: Some((now + timing.job_startup_ms, "RUNNING")),
            next_checkpoint: None,
            exceptions: Vec::new(),
            latest_savepoint: None,
            config: self.config.clone(),
            checkpoints_at: checkpoints_dir(&self.config),
            owner,
            record_behind: true,
            state_owner: None,
        });
    }

    pub fn set_state(job: &mut Job, state: &str, now: i64) {
        job.state = state.to_string();
        job.last_modification = now;
        job.record_behind = true;
        if matches!(state, "FINISHED" | "CANCELED" | "FAILED") {
            job.end_time = now;
            job.next_transition = None;
            job.next_checkpoint = None;
        }
    }

    /// The earliest moment something in this cluster changes by itself.
    pub fn next_wake(&self) -> Option<i64> {
        let jobs = self
            .jobs
            .iter()
            .flat_map(|j| [j.next_transition.map(|t| t.0), j.next_checkpoint]);
        let ops = self
            .operations
            .values()
            .filter(|o| o.result.is_none())
            .map(|o| Some(o.done_at));
        jobs.chain(ops).flatten().min()
    }

    // ---- the REST API, as JSON ----

    pub fn overview_json(&self) -> Value {
        let running = self.jobs.iter().filter(|j| j.state == "RUNNING").count();
        let used: i64 = self
            .jobs
            .iter()
            .filter(|j| !is_terminal(&j.state))
            .map(|j| j.parallelism)
            .sum();
        let total = self.taskmanagers * self.slots_per_tm;
        json!({
            "taskmanagers": self.taskmanagers,
            "slots-total": total,
            "slots-available": (total - used).max(0),
            "jobs-running": running,
            "jobs-finished": self.jobs.iter().filter(|j| j.state == "FINISHED").count(),
            "jobs-cancelled": self.jobs.iter().filter(|j| j.state == "CANCELED").count(),
            "jobs-failed": self.jobs.iter().filter(|j| j.state == "FAILED").count(),
            "flink-version": self.flink_version,
            "flink-commit": "simulated"
        })
    }

    /// `GET /jobs/overview` as the operator decodes it (the fields of
    /// [`JobOverview`]), straight from the jobs: the simulator's Flink port answers steady
    /// reconciles with this instead of building the JSON and decoding it again. A test holds
    /// it equal to the decoding of [`FlinkCluster::jobs_overview_json`].
    pub fn jobs_overview(&self) -> Vec<flink_operator::ports::JobOverview> {
        self.jobs
            .iter()
            .map(|j| flink_operator::ports::JobOverview {
                jid: j.id.clone(),
                name: j.name.clone(),
                state: j.state.to_string(),
                start_time: j.start_time,
                end_time: j.end_time,
                last_modification: j.last_modification,
            })
            .collect()
    }

    pub fn jobs_overview_json(&self, now: i64) -> Value {
        let jobs: Vec<Value> = self
            .jobs
            .iter()
            .map(|j| {
                let end = if j.end_time > 0 { j.end_time } else { now };
                let running = if j.state == "RUNNING" { j.parallelism } else { 0 };
                let finished = if j.state == "FINISHED" { j.parallelism } else { 0 };
                let canceled = if j.state == "CANCELED" { j.parallelism } else { 0 };
                let failed = if j.state == "FAILED" { j.parallelism } else { 0 };
                let waiting = j.parallelism - running - finished - canceled - failed;
                json!({
                    "jid": j.id, "name": j.name, "jobType": "STREAMING", "schedulerType": "Default",
                    "start-time": j.start_time, "end-time": j.end_time,
                    "duration": end - j.start_time, "state": j.state, "last-modification": j.last_modification,
                    "tasks": {"running": running, "canceling": 0, "canceled": canceled, "total": j.parallelism,
                              "created": waiting, "scheduled": 0, "deploying": 0, "reconciling": 0,
                              "finished": finished, "initializing": 0, "failed": failed},
                    "pending-operators": 0
                })
            })
            .collect();
        // Not `json!({"jobs": jobs})`: that would copy the array through serde.
        let mut answer = serde_json::Map::new();
        answer.insert("jobs".into(), Value::Array(jobs));
        Value::Object(answer)
    }

    pub fn checkpoints_json(&self, job: &Job) -> Value {
        let completed = job.checkpoints.last().map(|c| {
            json!({"id": c.id, "status": "COMPLETED", "is_savepoint": false, "checkpoint_type": "CHECKPOINT",
                   "external_path": c.path, "discarded": false, "latest_ack_timestamp": c.at,
                   "trigger_timestamp": c.at, "state_size": 1024 * c.id,
                   "num_subtasks": job.parallelism, "num_acknowledged_subtasks": job.parallelism, "tasks": {}})
        });
        let restored = match &job.restored_from {
            RestoredFrom::None => Value::Null,
            r => json!({"id": 1, "restore_timestamp": job.start_time,
                        "is_savepoint": matches!(r, RestoredFrom::Savepoint(_)),
                        "external_path": r.path()}),
        };
        let savepoint = job.latest_savepoint.as_ref().map(|c| {
            json!({"id": c.id, "status": "COMPLETED", "is_savepoint": true, "checkpoint_type": "SAVEPOINT",
                   "external_path": c.path, "discarded": false, "latest_ack_timestamp": c.at,
                   "trigger_timestamp": c.at, "state_size": 1024 * c.id,
                   "num_subtasks": job.parallelism, "num_acknowledged_subtasks": job.parallelism, "tasks": {}})
        });
        let n = job.checkpoints.len() as i64;
        json!({
            "counts": {"restored": if restored.is_null() { 0 } else { 1 }, "total": n, "in_progress": 0, "completed": n, "failed": 0},
            "latest": {"completed": completed, "savepoint": savepoint, "failed": null, "restored": restored},
            "history": []
        })
    }

    pub fn operation_json(&self, op: &Operation) -> Value {
        match &op.result {
            None => json!({"status": {"id": "IN_PROGRESS"}}),
            Some(Ok(location)) if op.checkpoint => {
                json!({"status": {"id": "COMPLETED"}, "operation": {"checkpointId": location.rsplit('-').next().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0)}})
            }
            Some(Ok(location)) => {
                json!({"status": {"id": "COMPLETED"}, "operation": {"location": location}})
            }
            Some(Err(cause)) => {
                json!({"status": {"id": "COMPLETED"}, "operation": {"failure-cause": {
                    "class": "java.util.concurrent.CompletionException",
                    "stack-trace": format!("java.util.concurrent.CompletionException: {cause}\n\tat simulated"),
                    // Flink sends the Java-serialized exception here; nobody reads it.
                    "serialized-throwable": "rO0ABXNyAClvcmcuYXBhY2hlLmZsaW5rLnV0aWwuU2VyaWFsaXplZFRocm93YWJsZQ=="
                }}})
            }
        }
    }

    pub fn exceptions_json(&self, job: &Job) -> Value {
        let entries: Vec<Value> = job
            .exceptions
            .iter()
            .rev()
            .map(|(at, name)| json!({"exceptionName": name, "stacktrace": format!("{name}\n\tat simulated"), "timestamp": at, "taskName": "Source: Sequence", "failureLabels": {}}))
            .collect();
        json!({"exceptionHistory": {"entries": entries, "truncated": false}})
    }
}

pub fn is_terminal(state: &str) -> bool {
    matches!(state, "FINISHED" | "CANCELED" | "FAILED")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_jobs_overview_is_the_decoded_rest_answer() {
        let timing = ClusterTiming {
            job_startup_ms: 5000,
            checkpoint_interval_ms: 1000,
            savepoint_duration_ms: 1000,
        };
        let mut c = FlinkCluster {
            namespace: "default".into(),
            name: "app".into(),
            flink_version: "2.3.0".into(),
            taskmanagers: 1,
            slots_per_tm: 2,
            ..Default::default()
        };
        for (i, state) in ["RUNNING", "FAILED", "CANCELED", "INITIALIZING"]
            .into_iter()
            .enumerate()
        {
            c.submit(
                format!("{i:032x}"),
                format!("job-{i}"),
                2,
                RestoredFrom::None,
                String::new(),
                1000 * i as i64,
                &timing,
            );
            FlinkCluster::set_state(&mut c.jobs[i], state, 7000 + i as i64);
        }
        let answer: flink_operator::ports::JobsOverview =
            serde_json::from_value(c.jobs_overview_json(9000)).unwrap();
        assert_eq!(answer.jobs.len(), 4);
        assert_eq!(c.jobs_overview(), answer.jobs);
    }
}
