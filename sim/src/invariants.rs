//! Properties the world checks on every step of every run, whatever the scenario asserts:
//! what must never happen to a user's job, no matter what the operator did or what failed.
//!
//! - One job per resource: never two running jobs for the same FlinkDeployment.
//! - No state lost: when the operator starts a stateful job (upgrade mode savepoint or
//!   last-state), it restores the newest savepoint or checkpoint that resource's jobs had
//!   completed, unless the user named the state to start from (`initialSavepointPath`).
//!   Restarts a JobManager does by itself (Flink's own recovery) are not the operator's.

use std::collections::{BTreeMap, BTreeSet};

use crate::kube::key_of;
use crate::world::World;

#[derive(Debug, Default)]
pub struct Invariants {
    jobs_checked: usize,
    reported: BTreeSet<String>,
}

impl Invariants {
    /// New violations since the last check, each reported once.
    pub fn check(&mut self, w: &World) -> Vec<String> {
        let mut found = Vec::new();
        let mut running: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for job in w.clusters.values().flat_map(|c| c.jobs.iter()) {
            if job.state == "RUNNING" && !job.owner.is_empty() {
                running.entry(&job.owner).or_default().push(&job.id);
            }
        }
        for (owner, jobs) in running {
            if jobs.len() > 1 {
                found.push(format!(
                    "{owner}: {} jobs run at once ({})",
                    jobs.len(),
                    jobs.join(", ")
                ));
            }
        }
        for record in &w.jobs[self.jobs_checked..] {
            if !record.operator_initiated {
                continue;
            }
            let mut parts = record.owner.splitn(3, '/');
            let (kind, ns, name) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            let Some(resource) = w.kube.get(&key_of(kind, ns, name)) else {
                continue;
            };
            let job = &resource["spec"]["job"];
            let mode = job["upgradeMode"].as_str().unwrap_or("stateless");
            if mode == "stateless" {
                continue;
            }
            let Some(newest) = w.newest_state(&record.owner, record.submitted_at) else {
                continue;
            };
            let restored = record.restored_from.path();
            let chosen_by_user =
                restored.is_some() && restored == job["initialSavepointPath"].as_str();
            if restored != Some(newest.path.as_str()) && !chosen_by_user {
                found.push(format!(
                    "{}: job {} started from {} but the newest state was {}",
                    record.owner,
                    record.job_id,
                    restored.unwrap_or("nothing"),
                    newest.path
                ));
            }
        }
        self.jobs_checked = w.jobs.len();
        found.retain(|v| self.reported.insert(v.clone()));
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flink::{ClusterTiming, FlinkCluster, RestoredFrom};
    use crate::scenario::ClusterSettings;
    use crate::world::{JobRecord, StateRecord};
    use serde_json::json;

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
        w.state_log.push(StateRecord {
            at: w.now,
            owner: OWNER.into(),
            path: "file:///sp/savepoint-1".into(),
        });
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
}
