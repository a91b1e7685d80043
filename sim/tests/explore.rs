//! The explorer: a fixed range of seeds finds nothing, runs replay exactly, a planted bug is
//! caught and shrunk to a short scenario, and the systematic and history checks hold on
//! scenarios of the library.

use std::path::{Path, PathBuf};
use std::time::Duration;

use flink_sim::explore::run::{self, Settings};
use flink_sim::explore::{self, emit, workload, Options};
use flink_sim::load::{load_scenario, parse_scenario};
use flink_sim::scenario::{Action, FaultKind};
use flink_sim::world::Mutant;

fn library(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name)
}

fn quiet(_: u64, _: u64, _: usize) {}

/// CI's fixed seed range: an hour of random workload and every fault kind per seed, then
/// the liveness phase. `EXPLORE_SEEDS` widens it. Every bug found on the way has its shrunk
/// scenario in `scenarios/regressions/`.
#[test]
fn a_fixed_seed_range_holds_every_invariant() {
    let seeds = std::env::var("EXPLORE_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let opts = Options {
        seeds,
        start: 0,
        stop_at_first: false,
        shrink: false,
        ..Options::default()
    };
    let summary = explore::explore(&opts, &quiet);
    println!("{}", summary.render());
    for f in &summary.found {
        println!("{}", f.yaml);
    }
    assert_eq!(summary.runs, seeds);
    assert!(
        summary.violations.is_empty(),
        "violations: {:#?}",
        summary.violations
    );
    // Every kind of fault was injected somewhere in the range.
    for kind in FaultKind::ALL {
        assert!(
            summary.faults.get(kind.name()).copied().unwrap_or(0) > 0,
            "no {} fault in {seeds} seeds: {:?}",
            kind.name(),
            summary.faults
        );
    }
    assert!(summary.checks > 0);
}

/// Every regression scenario, as the workload of a run without random faults, passes the
/// explorer's checks too: liveness after its last step, and every invalid spec said in its
/// status (checks a scenario's own awaits do not make).
#[test]
fn every_regression_passes_the_explorer_checks() {
    let dir = library("regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().map(|e| e == "yaml").unwrap_or(false))
        .collect();
    files.sort();
    assert!(files.len() >= 29, "{} regressions", files.len());
    let opts = Options {
        seeds: 1,
        faults: Vec::new(),
        scenarios: files
            .iter()
            .map(|f| load_scenario(f).unwrap_or_else(|e| panic!("{e}")))
            .collect(),
        shrink: false,
        stop_at_first: false,
        ..Options::default()
    };
    let summary = explore::explore(&opts, &quiet);
    println!("{}", summary.render());
    assert_eq!(summary.runs, files.len() as u64);
    assert!(
        summary.violations.is_empty(),
        "violations: {:#?}",
        summary.violations
    );
}

#[test]
fn a_seed_replays_exactly_and_its_flat_run_too() {
    for seed in [3, 17] {
        let scenario = workload::generate(seed, Duration::from_secs(1800), &FaultKind::ALL);
        let a = run::execute(&scenario, &[], &Settings::default());
        let b = run::execute(&scenario, &[], &Settings::default());
        assert_eq!(a.end_state, b.end_state);
        assert_eq!(a.flat.steps, b.flat.steps);
        assert_eq!(a.checks, b.checks);
        // The flat run of a given scenario with random faults is the same run.
        let given = load_scenario(&library("savepoint-upgrade.yaml")).unwrap();
        let opts = Options {
            scenarios: vec![given],
            ..Options::default()
        };
        let (s, faults) = explore::plan(&opts, seed, 0);
        let with_faults = run::execute(&s, &faults, &Settings::default());
        let replay = run::execute(&with_faults.flat, &[], &Settings::default());
        assert_eq!(with_faults.end_state, replay.end_state, "seed {seed}");
        assert_eq!(with_faults.violation, replay.violation, "seed {seed}");
    }
}

#[test]
fn a_generated_scenario_written_as_yaml_reads_back_the_same() {
    for seed in 0..20 {
        let scenario = workload::generate(seed, Duration::from_secs(3600), &FaultKind::ALL);
        let text = emit::to_yaml(&scenario, "a comment");
        let back = parse_scenario(Path::new("back.yaml"), &text)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
        let actions = |s: &flink_sim::scenario::Scenario| {
            s.steps
                .iter()
                .map(|s| s.action.clone())
                .collect::<Vec<Action>>()
        };
        assert_eq!(actions(&back), actions(&scenario), "seed {seed}");
        assert_eq!(back.operator, scenario.operator);
        assert_eq!(back.cluster, scenario.cluster);
        assert_eq!(back.seed, scenario.seed);
    }
}

/// The planted bug (a savepoint-mode upgrade that takes no savepoint and restores an older
/// state) is found by random exploration and shrunk to a few steps, which fail with the bug
/// and pass without it.
#[test]
fn a_planted_bug_is_caught_and_shrunk() {
    let opts = Options {
        seeds: 200,
        start: 0,
        target_class: Some("state lost".into()),
        settings: Settings {
            mutant: Some(Mutant::SkipUpgradeSavepoint),
            ..Settings::default()
        },
        ..Options::default()
    };
    let summary = explore::explore(&opts, &quiet);
    let found = summary
        .found
        .first()
        .expect("the planted bug was not found");
    println!(
        "seed {}: {}\nshrunk from {} to {} steps in {} runs:\n{}",
        found.seed,
        found.violation.message,
        found.steps_before,
        found.shrunk.steps.len(),
        found.shrink_runs,
        found.yaml
    );
    assert_eq!(
        found.shrunk_violation.class, "state lost",
        "{:?}",
        found.shrunk_violation
    );
    assert!(
        found.shrunk.steps.len() <= 8,
        "shrunk to {} steps:\n{}",
        found.shrunk.steps.len(),
        found.yaml
    );
    // The file it printed is a scenario that fails with the bug and holds without it.
    let scenario = parse_scenario(Path::new("found.yaml"), &found.yaml).unwrap();
    let with_bug = run::execute(&scenario, &[], &opts.settings);
    assert_eq!(
        with_bug.violation.map(|v| v.class),
        Some("state lost".to_string())
    );
    let without = run::execute(&scenario, &[], &Settings::default());
    assert!(without.violation.is_none(), "{:?}", without.violation);
    // And the plain runner (the scenario test suite) catches it too: it is an invariant.
    let sim = flink_sim::runner::Simulation::new(&scenario);
    sim.ports.world.lock().unwrap().mutant = Some(Mutant::SkipUpgradeSavepoint);
    let outcome = sim.run(&scenario);
    assert!(
        outcome
            .failure
            .as_deref()
            .map(|f| f.contains("but the newest state was"))
            .unwrap_or(false),
        "{:?}",
        outcome.failure
    );
}

/// Sieve's three patterns on scenarios of the library: a crash after every write, a stale
/// view at every notification, every notification hidden; each run ends as the reference.
#[test]
fn systematic_points_end_as_the_reference() {
    for name in [
        "quickstart.yaml",
        "savepoint-upgrade.yaml",
        "session-jobs.yaml",
    ] {
        let scenario = load_scenario(&library(name)).unwrap();
        let report = explore::systematic::check(&scenario, &Settings::default());
        println!("{}", report.render());
        assert!(
            report.crash_points > 5 && report.hidden_points > 5,
            "{}",
            report.render()
        );
        assert!(report.failures.is_empty(), "{}", report.render());
    }
}

/// Acto's history oracles over the library's FlinkDeployment specs (a sample of pairs here;
/// `flink-sim explore --oracles` runs them all).
#[test]
fn history_oracles_hold_on_the_library() {
    let specs = explore::oracles::library_specs(&library(""));
    assert!(specs.len() > 10, "{} specs", specs.len());
    let report = explore::oracles::check(&specs, 40);
    println!("{}", report.render());
    assert!(report.pairs >= 20, "{}", report.render());
    assert!(report.failures.is_empty(), "{}", report.render());
}

#[test]
fn an_operator_crash_fault_kills_the_operator_mid_reconcile_and_it_recovers() {
    let text = r#"name: crash mid-reconcile
seed: 1
steps:
  - apply:
      apiVersion: flink.apache.org/v1beta1
      kind: FlinkDeployment
      metadata: {name: app, namespace: default}
      spec:
        image: flink:2.3
        flinkVersion: v2_3
        flinkConfiguration: {state.savepoints.dir: file:///sp, state.checkpoints.dir: file:///cp}
        jobManager: {resource: {memory: 2048m, cpu: 1}}
        taskManager: {resource: {memory: 2048m, cpu: 1}}
        job: {jarURI: local:///opt/flink/examples/streaming/StateMachineExample.jar, parallelism: 2, upgradeMode: savepoint}
  - await: {target: FlinkDeployment/app, status: {lifecycleState: STABLE}, within: 2m}
  - fault: {kind: operatorCrash, count: 3}
  - patch: {target: FlinkDeployment/app, merge: {spec: {job: {parallelism: 3}}}}
  - await: {target: FlinkDeployment/app, status: {lifecycleState: STABLE, jobStatus: {state: RUNNING}}, within: 5m}
  - expect: {target: FlinkDeployment/app, job: {parallelism: 3, restoredFrom: savepoint, runningInstances: 1}}
"#;
    let scenario = parse_scenario(Path::new("crash.yaml"), text).unwrap();
    let outcome = flink_sim::runner::Simulation::new(&scenario).run(&scenario);
    let timeline = flink_sim::timeline::render(&outcome.timeline);
    assert!(
        outcome.failure.is_none(),
        "{timeline}\n{:?}",
        outcome.failure
    );
    assert!(timeline.contains("operator crashed"), "{timeline}");
    assert!(timeline.contains("operatorCrash spent"), "{timeline}");
}
