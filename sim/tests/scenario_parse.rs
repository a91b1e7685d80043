//! Scenario files: the contract's example parses into what it says, and every malformed
//! file gets one message with file, line and column (snapshots of the messages).

use std::path::{Path, PathBuf};
use std::time::Duration;

use flink_sim::load::{load_scenario, parse_scenario};
use flink_sim::scenario::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_contract_example_parses_as_written() {
    let s = load_scenario(&root().join("scenarios/contract-example.yaml")).unwrap();
    assert_eq!(s.name, "savepoint upgrade to a broken image is rolled back");
    assert_eq!(s.seed, 7);
    assert_eq!(
        s.operator,
        vec![
            (
                "kubernetes.operator.deployment.rollback.enabled".to_string(),
                "true".to_string()
            ),
            (
                "kubernetes.operator.deployment.readiness.timeout".to_string(),
                "1min".to_string()
            ),
        ]
    );
    assert_eq!(s.cluster.savepoint_duration, Duration::from_secs(2));
    let kinds: Vec<&str> = s
        .steps
        .iter()
        .map(|st| match &st.action {
            Action::Apply(_) => "apply",
            Action::Await { .. } => "await",
            Action::Patch { .. } => "patch",
            Action::Fault(_) => "fault",
            Action::Heal(_) => "heal",
            Action::Advance(_) => "advance",
            Action::Expect(_) => "expect",
            Action::Delete(_) => "delete",
            Action::Snapshot(_) => "snapshot",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "apply", "apply", "await", "patch", "fault", "advance", "expect", "delete", "await",
            "expect", "snapshot"
        ]
    );
    let Action::Await { check, within } = &s.steps[2].action else {
        panic!()
    };
    assert_eq!(*within, Duration::from_secs(300));
    assert_eq!(
        check.target,
        Target {
            kind: "FlinkDeployment".into(),
            namespace: "default".into(),
            name: "basic".into()
        }
    );
    let Action::Fault(f) = &s.steps[4].action else {
        panic!()
    };
    assert_eq!(
        (f.kind, f.image.as_deref()),
        (FaultKind::ImagePull, Some("flink:no-such-tag"))
    );
    let Action::Expect(c) = &s.steps[6].action else {
        panic!()
    };
    assert_eq!(
        c.job.as_ref().unwrap().restored_from.as_deref(),
        Some("savepoint")
    );
    assert_eq!(s.steps[0].line, 13, "steps know their line");
}

#[test]
fn malformed_scenarios_name_file_line_and_column() {
    insta::glob!("fixtures/bad/*.yaml", |path| {
        let relative = Path::new("sim/tests/fixtures/bad").join(path.file_name().unwrap());
        let text = std::fs::read_to_string(path).unwrap();
        let error = parse_scenario(&relative, &text).expect_err("a malformed scenario is refused");
        let message = error.to_string();
        let position = message
            .strip_prefix(&format!("{}:", relative.display()))
            .expect("starts with the file");
        let mut parts = position.splitn(3, ':');
        assert!(
            parts.next().unwrap().parse::<u32>().is_ok(),
            "line in {message}"
        );
        assert!(
            parts.next().unwrap().parse::<u32>().is_ok(),
            "column in {message}"
        );
        insta::assert_snapshot!(message);
    });
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for text in [
        "",
        "- a\n- b\n",
        "name: [",
        "name: x\nsteps: 3\n",
        "name: x\nsteps:\n  - 7\n",
        "\u{0}\u{1}",
        "name: x\nsteps:\n  - fault: {kind: jobFailure}\n",
    ] {
        assert!(
            parse_scenario(Path::new("g.yaml"), text).is_err(),
            "{text:?}"
        );
    }
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn target(kind: &str, namespace: &str, name: &str) -> Target {
    Target {
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// The contract's example, step by step, with its `apply: {file: …}` read from a
/// two-document manifest beside it (integers stay integers).
#[test]
fn the_contract_example_fixture_parses_into_every_value() {
    let path = fixtures().join("contract-example.yaml");
    let s = load_scenario(&path).unwrap();
    let basic = || target("FlinkDeployment", "default", "basic");
    let expected = Scenario {
        name: "savepoint upgrade to a broken image is rolled back".into(),
        description: Some("free text".into()),
        seed: 7,
        operator: vec![
            (
                "kubernetes.operator.deployment.rollback.enabled".into(),
                "true".into(),
            ),
            (
                "kubernetes.operator.deployment.readiness.timeout".into(),
                "1min".into(),
            ),
        ],
        cluster: ClusterSettings {
            pod_startup: Duration::from_secs(5),
            job_startup: Duration::from_secs(5),
            checkpoint_interval: Duration::from_secs(10),
            savepoint_duration: Duration::from_secs(2),
        },
        steps: vec![
            Step {
                line: 15,
                action: Action::Apply(vec![serde_json::json!({
                    "apiVersion": "flink.apache.org/v1beta1",
                    "kind": "FlinkDeployment",
                    "metadata": {"name": "basic", "namespace": "default"},
                    "spec": {"image": "flink:2.3", "job": {"parallelism": 2, "upgradeMode": "savepoint"}}
                })]),
            },
            Step {
                line: 20,
                action: Action::Apply(vec![
                    serde_json::json!({
                        "apiVersion": "flink.apache.org/v1beta1",
                        "kind": "FlinkDeployment",
                        "metadata": {"name": "session", "namespace": "jobs"},
                        "spec": {
                            "image": "flink:2.3",
                            "flinkConfiguration": {"taskmanager.numberOfTaskSlots": 2}
                        }
                    }),
                    serde_json::json!({
                        "apiVersion": "flink.apache.org/v1beta1",
                        "kind": "FlinkSessionJob",
                        "metadata": {"name": "session-job", "namespace": "jobs"},
                        "spec": {
                            "deploymentName": "session",
                            "job": {
                                "jarURI": "https://example.invalid/job.jar",
                                "parallelism": 4,
                                "upgradeMode": "stateless"
                            }
                        }
                    }),
                ]),
            },
            Step {
                line: 21,
                action: Action::Await {
                    check: Check {
                        target: basic(),
                        status: Some(serde_json::json!(
                            {"lifecycleState": "STABLE", "jobStatus": {"state": "RUNNING"}}
                        )),
                        job: None,
                        absent: false,
                    },
                    within: Duration::from_secs(300),
                },
            },
            Step {
                line: 25,
                action: Action::Patch {
                    target: basic(),
                    merge: serde_json::json!({"spec": {"image": "flink:no-such-tag"}}),
                },
            },
            Step {
                line: 28,
                action: Action::Fault(Fault {
                    kind: FaultKind::ImagePull,
                    image: Some("flink:no-such-tag".into()),
                    target: None,
                    duration: None,
                    count: None,
                    terminal: None,
                    uri: None,
                    error: None,
                }),
            },
            Step {
                line: 29,
                action: Action::Advance(Duration::from_secs(120)),
            },
            Step {
                line: 30,
                action: Action::Expect(Check {
                    target: basic(),
                    status: Some(serde_json::json!({"lifecycleState": "ROLLED_BACK"})),
                    job: Some(JobCheck {
                        state: Some("RUNNING".into()),
                        parallelism: None,
                        restored_from: Some("savepoint".into()),
                        running_instances: Some(1),
                    }),
                    absent: false,
                }),
            },
            Step {
                line: 34,
                action: Action::Delete(basic()),
            },
            Step {
                line: 35,
                action: Action::Await {
                    check: Check {
                        target: basic(),
                        status: None,
                        job: None,
                        absent: true,
                    },
                    within: Duration::from_secs(120),
                },
            },
            Step {
                line: 36,
                action: Action::Expect(Check {
                    target: basic(),
                    status: None,
                    job: None,
                    absent: true,
                }),
            },
            Step {
                line: 37,
                action: Action::Snapshot("after-delete".into()),
            },
        ],
        path: path.clone(),
    };
    assert_eq!(s, expected);
}

#[test]
fn defaults_and_the_other_forms() {
    let text = "\
name: defaults
operator: {a: 1, b: true, c: 2.5}
steps:
  - fault: {kind: jobFailure, target: FlinkSessionJob/ns/j, terminal: true}
  - fault: {kind: apiConflict, count: 3}
  - fault: {kind: staleReads, for: 1500ms}
  - fault: {kind: operatorRestart}
  - heal: staleReads
  - heal: all
  - expect: {target: FlinkDeployment/x, job: {parallelism: 2}}
";
    let s = parse_scenario(Path::new("d.yaml"), text).unwrap();
    assert_eq!((s.seed, s.description.clone()), (0, None));
    assert_eq!(s.cluster, ClusterSettings::default());
    assert_eq!(
        s.operator,
        [("a", "1"), ("b", "true"), ("c", "2.5")].map(|(k, v)| (k.to_string(), v.to_string()))
    );
    let lines: Vec<usize> = s.steps.iter().map(|s| s.line).collect();
    assert_eq!(lines, [4, 5, 6, 7, 8, 9, 10]);
    let Action::Fault(f) = &s.steps[0].action else {
        panic!("{:?}", s.steps[0])
    };
    assert_eq!(
        (f.target.clone(), f.terminal),
        (Some(target("FlinkSessionJob", "ns", "j")), Some(true))
    );
    let Action::Fault(f) = &s.steps[1].action else {
        panic!()
    };
    assert_eq!((f.kind, f.count), (FaultKind::ApiConflict, Some(3)));
    let Action::Fault(f) = &s.steps[2].action else {
        panic!()
    };
    assert_eq!(f.duration, Some(Duration::from_millis(1500)));
    assert_eq!(s.steps[4].action, Action::Heal(Some(FaultKind::StaleReads)));
    assert_eq!(s.steps[5].action, Action::Heal(None));
}

/// A manifest file that is there but does not parse: the message names the scenario's
/// step (file, line, column) and the manifest's own position.
#[test]
fn an_unparsable_apply_file_names_both_positions() {
    let dir = fixtures();
    let error = load_scenario(&dir.join("unparsable-apply-file.yaml")).unwrap_err();
    let message = error
        .to_string()
        .replace(&format!("{}/", dir.display()), "");
    insta::assert_snapshot!(message);
    assert!(
        message.starts_with("unparsable-apply-file.yaml:3:19: ")
            && message.contains("manifests/broken.yaml:"),
        "{message}"
    );
}
