//! `flink-sim bench` on a small workload: the same seed gives the same counters, and the
//! steady-state properties hold (correctness, not timing: nothing here is timed).

use std::time::Duration;

use flink_sim::bench::{run, Options};

fn small() -> Options {
    Options {
        deployments: 20,
        duration: Duration::from_secs(600),
        seed: 7,
        ..Options::default()
    }
}

#[test]
fn the_same_seed_gives_the_same_counters() {
    let first = run(&small()).expect("the benchmark runs");
    let second = run(&small()).expect("the benchmark runs again");
    assert_eq!(first.counters_only(), second.counters_only());
    let other = run(&Options { seed: 8, ..small() }).expect("another seed runs");
    assert_ne!(
        first.counters_only(),
        other.counters_only(),
        "another seed draws another workload"
    );
}

#[test]
fn steady_deployments_cost_no_writes_and_one_flink_request_per_interval() {
    let report = run(&small()).expect("the benchmark runs");
    // The run did something worth measuring.
    assert_eq!(report.deployments, 20);
    assert!(report.reconciles > 0 && report.kube_writes > 0 && report.flink_requests > 0);
    assert!(report.transitions >= 20, "{report:?}");
    assert!(report.reactions > 0, "{report:?}");
    assert!(report.steady_deployment_hours > 0.5, "{report:?}");
    assert!(report.steady_reconciles > 0, "{report:?}");
    // While nothing changes, the operator writes nothing to Kubernetes...
    assert_eq!(report.steady_kube_writes_per_hour, 0.0, "{report:?}");
    // ...and asks each cluster at most once per observe interval: one request a reconcile,
    // and no two reconciles of a steady deployment closer than the interval.
    assert!(
        report.steady_flink_requests_per_reconcile <= 1.0,
        "{report:?}"
    );
    assert!(
        report.steady_min_reconcile_gap_ms >= report.observe_interval_ms,
        "{report:?}"
    );
    assert!(
        report.steady_flink_requests_per_interval > 0.5
            && report.steady_flink_requests_per_interval < 1.02,
        "{report:?}"
    );
    assert_eq!(report.stable_at_end, 20, "{report:?}");
}

#[test]
fn the_workload_mixes_modes_versions_changes_and_faults() {
    let plan = flink_sim::bench::workload::plan(200, Duration::from_secs(3600), 1);
    let modes: std::collections::BTreeSet<&str> =
        plan.deployments.iter().map(|d| d.mode.name()).collect();
    assert_eq!(modes.len(), 3, "{modes:?}");
    let versions: std::collections::BTreeSet<String> = plan
        .deployments
        .iter()
        .filter_map(|d| {
            d.manifest()["spec"]["flinkVersion"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert!(versions.len() >= 4, "{versions:?}");
    let kinds: std::collections::BTreeSet<&str> =
        plan.events.iter().map(|e| e.change.label()).collect();
    for kind in [
        "create",
        "upgrade",
        "savepoint",
        "suspend",
        "resume",
        "fault",
        "global fault",
    ] {
        assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
    }
    assert!(plan.events.windows(2).all(|w| w[0].at <= w[1].at));
    // Every manifest is valid as the operator (and the API server) would judge it.
    for d in &plan.deployments {
        let text = &d.manifest;
        let report = flink_operator::validation::validate_manifest_bytes(&[(
            d.name.as_str(),
            text.as_bytes(),
        )]);
        assert!(report.is_valid(), "{}: {report}", d.name);
    }
}
