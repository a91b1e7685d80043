//! Bad input never panics: property tests (proptest, stable Rust) of manifest parsing and
//! validation (`flink_operator::validation::validate_manifest_text`) and of scenario parsing
//! (`flink_sim::load::parse_scenario`). Inputs are arbitrary text, and valid documents with
//! random parts replaced, cut or shuffled. CI runs a few hundred cases of each
//! (`PROPTEST_CASES` raises it for a longer run).

use std::path::Path;

use proptest::prelude::*;

const MANIFEST: &str = r#"apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: basic
  namespace: default
spec:
  image: flink:2.3
  flinkVersion: v2_3
  flinkConfiguration:
    taskmanager.numberOfTaskSlots: "2"
    state.savepoints.dir: file:///flink-data/savepoints
    state.checkpoints.dir: file:///flink-data/checkpoints
  serviceAccount: flink
  jobManager:
    resource: {memory: 2048m, cpu: 1}
  taskManager:
    resource: {memory: 2048m, cpu: 1}
  job:
    jarURI: local:///opt/flink/examples/streaming/StateMachineExample.jar
    parallelism: 2
    upgradeMode: savepoint
    state: running
---
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata: {name: session, namespace: default}
spec:
  image: flink:2.3
  flinkVersion: v2_3
  jobManager: {resource: {memory: 1g, cpu: 0.5}}
  taskManager: {resource: {memory: 1g, cpu: 0.5}}
---
apiVersion: flink.apache.org/v1beta1
kind: FlinkSessionJob
metadata: {name: job, namespace: default}
spec:
  deploymentName: session
  job: {jarURI: "https://example.com/job.jar", parallelism: 1, upgradeMode: stateless}
"#;

const SCENARIO: &str = r#"name: fuzzed
seed: 3
operator:
  kubernetes.operator.deployment.rollback.enabled: "true"
cluster: {podStartup: 5s, checkpointInterval: 10s}
steps:
  - apply:
      apiVersion: flink.apache.org/v1beta1
      kind: FlinkDeployment
      metadata: {name: app, namespace: default}
      spec: {image: flink:2.3, flinkVersion: v2_3, job: {jarURI: local:///a.jar, parallelism: 2, upgradeMode: savepoint}}
  - await: {target: FlinkDeployment/app, status: {lifecycleState: STABLE}, job: {state: RUNNING, runningInstances: 1}, within: 2m}
  - patch: {target: FlinkDeployment/app, merge: {spec: {job: {parallelism: 4}}}}
  - fault: {kind: jobManagerCrash, target: FlinkDeployment/app, for: 30s}
  - fault: {kind: artifactFetch, error: notFound, count: 2}
  - fault: {kind: operatorCrash, count: 3}
  - heal: all
  - advance: 1min
  - expect: {target: FlinkDeployment/app, job: {restoredFrom: savepoint}}
  - snapshot: end-1
  - delete: FlinkDeployment/app
  - await: {target: FlinkDeployment/app, absent: true, within: 2m}
"#;

/// Pieces that mean something to the parsers, to splice into documents.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("- ".to_string()),
        Just(": ".to_string()),
        Just("\n".to_string()),
        Just("\n  ".to_string()),
        Just("---\n".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("<<: *a".to_string()),
        Just("!!binary ".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("\t".to_string()),
        Just("null".to_string()),
        Just("~".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("1e309".to_string()),
        Just("0x1F".to_string()),
        Just("true".to_string()),
        Just("2048xb".to_string()),
        Just("-5min".to_string()),
        Just("FlinkDeployment/".to_string()),
        Just("FlinkSessionJob/a/b/c".to_string()),
        Just("kind: nope".to_string()),
        Just("count: 0".to_string()),
        Just("within: forever".to_string()),
        Just("\u{feff}".to_string()),
        Just("é".to_string()),
        "[a-zA-Z0-9_.:/-]{0,12}",
    ]
}

/// A document with random edits: a splice of tokens at a char boundary, a cut, a swap of lines.
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    let len = base.len();
    (
        prop::collection::vec((0..=len, token()), 0..6),
        0..=len,
        prop::option::of((0usize..60, 0usize..60)),
    )
        .prop_map(move |(splices, cut, swap)| {
            let mut text = base.to_string();
            for (at, piece) in splices {
                let mut at = at.min(text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.insert_str(at, &piece);
            }
            if cut < len / 3 {
                let mut at = (len - cut).min(text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.truncate(at);
            }
            if let Some((a, b)) = swap {
                let mut lines: Vec<&str> = text.lines().collect();
                if a < lines.len() && b < lines.len() {
                    lines.swap(a, b);
                }
                text = lines.join("\n");
            }
            text
        })
}

fn cases() -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn manifest_validation_never_panics_on_any_text(text in "\\PC{0,400}") {
        let _ = flink_operator::validation::validate_manifest_text("fuzz.yaml", &text);
    }

    #[test]
    fn manifest_validation_never_panics_on_edited_manifests(text in mutated(MANIFEST)) {
        let _ = flink_operator::validation::validate_manifest_text("fuzz.yaml", &text);
    }

    #[test]
    fn scenario_parsing_never_panics_on_any_text(text in "\\PC{0,400}") {
        let _ = flink_sim::load::parse_scenario(Path::new("fuzz.yaml"), &text);
    }

    #[test]
    fn scenario_parsing_never_panics_on_edited_scenarios(text in mutated(SCENARIO)) {
        let _ = flink_sim::load::parse_scenario(Path::new("fuzz.yaml"), &text);
    }

    /// A scenario error always says where: FILE:LINE:COLUMN.
    #[test]
    fn scenario_errors_name_the_place(text in mutated(SCENARIO)) {
        if let Err(e) = flink_sim::load::parse_scenario(Path::new("fuzz.yaml"), &text) {
            prop_assert!(e.0.starts_with("fuzz.yaml:"), "{}", e.0);
        }
    }
}

#[test]
fn the_seed_documents_are_valid() {
    let problems = flink_operator::validation::validate_manifest_text("m.yaml", MANIFEST);
    assert!(problems.is_empty(), "{problems:?}");
    flink_sim::load::parse_scenario(Path::new("s.yaml"), SCENARIO).unwrap();
}
