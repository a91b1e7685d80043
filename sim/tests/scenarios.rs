//! Every scenario under `scenarios/` runs, holds its awaits and expects, produces the same
//! timeline twice (determinism), and matches its snapshot in `snapshots/`.

use std::path::Path;

use flink_sim::load::load_scenario;
use flink_sim::runner::Simulation;
use flink_sim::timeline::render;

fn run_text(path: &Path) -> String {
    let scenario = load_scenario(path).unwrap_or_else(|e| panic!("{e}"));
    let outcome = Simulation::new(&scenario).run(&scenario);
    if let Some(f) = &outcome.failure {
        panic!("{}\n{}", render(&outcome.timeline), f);
    }
    let mut text = format!("scenario: {} (seed {})\n", scenario.name, scenario.seed);
    text.push_str(&render(&outcome.timeline));
    for (name, statuses) in &outcome.snapshots {
        text.push_str(&format!("--- statuses at {name}\n{statuses}"));
    }
    text
}

#[test]
fn scenarios() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::glob!("../../scenarios", "**/*.yaml", |path| {
            let first = run_text(path);
            let second = run_text(path);
            assert_eq!(first, second, "{} is not deterministic", path.display());
            insta::assert_snapshot!(first);
        });
    });
}

/// A different seed changes the random parts of a run (job ids, savepoint names, pod names)
/// but not what happens to the resources, and the same seed repeats the run exactly.
#[test]
fn seeds_change_names_not_outcomes() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/savepoint-upgrade.yaml");
    let mut scenario = load_scenario(&path).unwrap();
    let lifecycle = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains("lifecycleState="))
            .map(str::to_string)
            .collect()
    };
    let mut runs = Vec::new();
    for seed in [1, 2, 1] {
        scenario.seed = seed;
        let outcome = Simulation::new(&scenario).run(&scenario);
        assert!(
            outcome.failure.is_none(),
            "seed {seed}: {:?}",
            outcome.failure
        );
        runs.push(render(&outcome.timeline));
    }
    assert_eq!(
        runs[0], runs[2],
        "the same seed repeats the run byte for byte"
    );
    assert_ne!(runs[0], runs[1], "another seed draws other savepoint names");
    assert_eq!(
        lifecycle(&runs[0]),
        lifecycle(&runs[1]),
        "and the same things happen"
    );
}

/// The world's record of each job keeps up with the job's state (what the runner and the
/// invariants read of a job once its cluster is gone): after every scenario of the library,
/// every live job's newest record holds the job's state.
#[test]
fn job_records_follow_the_live_jobs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut paths: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    paths.sort();
    let mut compared = 0;
    for path in &paths {
        let name = path.file_name().unwrap().to_string_lossy();
        let scenario = load_scenario(path).unwrap_or_else(|e| panic!("{e}"));
        let sim = Simulation::new(&scenario);
        let world = sim.ports.world.clone();
        let outcome = sim.run(&scenario);
        assert!(outcome.failure.is_none(), "{name}: {:?}", outcome.failure);
        let w = world.lock().unwrap();
        for job in w.clusters.values().flat_map(|c| c.jobs.iter()) {
            let record = w
                .jobs_of(&job.owner)
                .rev()
                .find(|r| r.job_id == job.id)
                .unwrap_or_else(|| panic!("{name}: no record of job {}", job.id));
            assert_eq!(record.last_state, job.state, "{name}: job {}", job.id);
            compared += 1;
        }
    }
    assert!(compared >= 10, "only {compared} live jobs to compare");
}
