//! Sieve's "intermediate states", for every scenario in `scenarios/`: the operator is
//! killed right after each of its writes to the Kubernetes API in turn (it restarts with
//! nothing but what it wrote), and every await, expect and invariant must hold all the same.

use std::path::{Path, PathBuf};

use flink_sim::load::load_scenario;
use flink_sim::runner::check_crash_points;
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
        match check_crash_points(&scenario) {
            Ok(n) => crash_points += n,
            Err((n, outcome)) => panic!(
                "{}, operator crashed after write {n}:\n{}\n{:?}",
                file.display(),
                render(&outcome.timeline),
                outcome.failure
            ),
        }
    }
    println!("{crash_points} crash points, all held");
    assert!(crash_points > 500, "only {crash_points} crash points");
}
