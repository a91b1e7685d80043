//! Sieve's "intermediate states", for every scenario in `scenarios/`: the operator is
//! killed right after each of its writes to the Kubernetes API in turn (it restarts with
//! nothing but what it wrote), and every await, expect and invariant must hold all the same.

use std::path::{Path, PathBuf};

use flink_sim::load::load_scenario;
use flink_sim::runner::Simulation;
use flink_sim::timeline::render;

fn scenarios(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            scenarios(&path, out);
        } else if path.extension().map(|e| e == "yaml").unwrap_or(false) {
            out.push(path);
        }
    }
}

#[test]
fn every_scenario_survives_a_crash_after_any_write() {
    let mut files = Vec::new();
    scenarios(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios"),
        &mut files,
    );
    files.sort();
    assert!(files.len() > 30);
    let mut crash_points = 0;
    for file in files {
        let scenario = load_scenario(&file).unwrap();
        let reference = Simulation::new(&scenario).run(&scenario);
        assert!(
            reference.failure.is_none(),
            "{}: {:?}",
            file.display(),
            reference.failure
        );
        for n in 1..=reference.operator_writes {
            let mut sim = Simulation::new(&scenario);
            sim.crash_after_write(n);
            let outcome = sim.run(&scenario);
            if let Some(failure) = &outcome.failure {
                panic!(
                    "{}, operator crashed after write {n}:\n{}\n{failure}",
                    file.display(),
                    render(&outcome.timeline)
                );
            }
            let crashed = format!("operator crashed after write {n}");
            assert!(
                outcome
                    .timeline
                    .iter()
                    .any(|e| e.describe().contains(&crashed)),
                "{}: the crash after write {n} did not happen",
                file.display()
            );
            crash_points += 1;
        }
    }
    println!("{crash_points} crash points, all held");
    assert!(crash_points > 500, "only {crash_points} crash points");
}
