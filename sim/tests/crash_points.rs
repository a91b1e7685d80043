//! Sieve's "intermediate states": for a scenario, crash the operator right after each of
//! its writes to the Kubernetes API in turn (it restarts with nothing but what it wrote) and
//! require the run to hold every await, expect and invariant all the same.

use std::path::PathBuf;

use flink_sim::load::load_scenario;
use flink_sim::runner::{Outcome, Simulation};
use flink_sim::timeline::render;

fn run(name: &str, crash_after: Option<u64>) -> Outcome {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name);
    let scenario = load_scenario(&path).unwrap();
    let mut sim = Simulation::new(&scenario);
    if let Some(n) = crash_after {
        sim.crash_after_write(n);
    }
    sim.run(&scenario)
}

fn every_crash_point(name: &str) {
    let reference = run(name, None);
    assert!(
        reference.failure.is_none(),
        "{name}: {:?}",
        reference.failure
    );
    assert!(
        reference.operator_writes > 5,
        "{name}: {} writes",
        reference.operator_writes
    );
    for n in 1..=reference.operator_writes {
        let outcome = run(name, Some(n));
        if let Some(failure) = &outcome.failure {
            panic!(
                "{name}, operator crashed after write {n}:\n{}\n{failure}",
                render(&outcome.timeline)
            );
        }
        assert!(
            outcome.timeline.iter().any(|e| e
                .describe()
                .contains(&format!("operator crashed after write {n}"))),
            "{name}: the crash after write {n} did not happen"
        );
    }
}

#[test]
fn savepoint_upgrade_survives_a_crash_after_any_write() {
    every_crash_point("savepoint-upgrade.yaml");
}

#[test]
fn last_state_upgrade_survives_a_crash_after_any_write() {
    every_crash_point("last-state-upgrade.yaml");
}

#[test]
fn suspend_and_resume_survive_a_crash_after_any_write() {
    every_crash_point("suspend-resume.yaml");
}

#[test]
fn rollback_survives_a_crash_after_any_write() {
    every_crash_point("savepoint-upgrade-rolled-back.yaml");
}

#[test]
fn session_jobs_survive_a_crash_after_any_write() {
    every_crash_point("session-jobs.yaml");
}

#[test]
fn deletion_survives_a_crash_after_any_write() {
    every_crash_point("quickstart.yaml");
}

#[test]
fn other_paths_survive_a_crash_after_any_write() {
    for name in [
        "stateless-upgrade.yaml",
        "restart-nonce.yaml",
        "terminal-failure-restart.yaml",
        "session-cluster.yaml",
        "savepoint-on-deletion.yaml",
        "last-state-suspend-resume.yaml",
        "savepoint-redeploy.yaml",
        "initially-suspended.yaml",
        "rollback-disabled.yaml",
        "session-job-failure.yaml",
        "manual-savepoint.yaml",
        "standalone-mode.yaml",
    ] {
        every_crash_point(name);
    }
}
