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
