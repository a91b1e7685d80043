//! The fake Flink answers in the shapes real Flink 2.3 does. JSON recorded from a real cluster
//! (tests/fixtures/flink-rest, by the real_flink setup) and the fake's JSON for the same calls
//! decode through the same port types, and every field the real answer has is in the fake's,
//! but for a short list of statistics nothing reads.

use std::collections::BTreeSet;
use std::path::Path;

use flink_operator::ports::*;
use flink_sim::flink::{ClusterTiming, FlinkCluster, Operation, RestoredFrom};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/flink-rest")
        .join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                paths(x, &p, out);
            }
        }
        Value::Array(items) => {
            for x in items {
                paths(x, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

/// Statistics real Flink reports that neither the operator nor the simulator uses.
const NOT_SIMULATED: [&str; 12] = [
    "summary",
    "history",
    "counts.in_progress_",
    "latest.savepoint",
    "latest.failed",
    "className",
    "savepointFormat",
    "checkpointed_size",
    "end_to_end_duration",
    "alignment_buffered",
    "processed_data",
    "persisted_data",
];

fn assert_covers(call: &str, real: &Value, fake: &Value) {
    let (mut r, mut f) = (BTreeSet::new(), BTreeSet::new());
    paths(real, "", &mut r);
    paths(fake, "", &mut f);
    let missing: Vec<&String> = r
        .iter()
        .filter(|p| !f.contains(*p))
        .filter(|p| {
            !NOT_SIMULATED
                .iter()
                .any(|n| p.split('.').any(|seg| seg.trim_end_matches("[]") == *n) || p.contains(n))
        })
        .collect();
    assert!(missing.is_empty(), "{call}: the fake lacks {missing:?}");
}

fn cluster() -> FlinkCluster {
    let timing = ClusterTiming {
        job_startup_ms: 1000,
        checkpoint_interval_ms: 1000,
        savepoint_duration_ms: 1000,
    };
    let mut c = FlinkCluster {
        namespace: "default".into(),
        name: "app".into(),
        config: std::sync::Arc::new(
            [(
                "state.checkpoints.dir".to_string(),
                "file:///cp".to_string(),
            )]
            .into_iter()
            .collect(),
        ),
        flink_version: "2.3.0".into(),
        jobs: Vec::new(),
        operations: Default::default(),
        jars: Default::default(),
        taskmanagers: 1,
        slots_per_tm: 2,
        ha: false,
        wake_at: None,
    };
    c.submit(
        "a".repeat(32),
        "state-job".into(),
        1,
        RestoredFrom::Savepoint("file:/sp/savepoint-1".into()),
        String::new(),
        0,
        &timing,
    );
    let job = &mut c.jobs[0];
    FlinkCluster::set_state(job, "RUNNING", 1000);
    job.complete_checkpoint("file:///cp", 2000);
    job.exceptions
        .push((3000, "java.lang.RuntimeException: boom".into()));
    c
}

fn op(result: Option<Result<String, String>>) -> Operation {
    Operation {
        job_id: "a".repeat(32),
        done_at: 0,
        stop: false,
        checkpoint: false,
        result,
        directory: None,
    }
}

#[test]
fn overview_and_job_list() {
    let c = cluster();
    let (real, fake) = (fixture("overview.json"), c.overview_json());
    decode::<ClusterOverview>(real.clone()).unwrap();
    decode::<ClusterOverview>(fake.clone()).unwrap();
    assert_covers("GET /overview", &real, &fake);
    let (real, fake) = (fixture("jobs-overview.json"), c.jobs_overview_json(5000));
    decode::<JobsOverview>(real.clone()).unwrap();
    decode::<JobsOverview>(fake.clone()).unwrap();
    assert_covers("GET /jobs/overview", &real, &fake);
}

#[test]
fn checkpoint_statistics_with_and_without_a_restore() {
    let c = cluster();
    let fake = c.checkpoints_json(&c.jobs[0]);
    for name in ["checkpoints.json", "checkpoints-restored.json"] {
        let real = fixture(name);
        decode::<CheckpointStatistics>(real.clone()).unwrap();
        assert_covers(name, &real, &fake);
    }
    let stats = decode::<CheckpointStatistics>(fake).unwrap();
    assert!(stats.latest.restored.unwrap().is_savepoint);
    let restored = decode::<CheckpointStatistics>(fixture("checkpoints-restored.json")).unwrap();
    assert!(
        restored.latest.restored.unwrap().is_savepoint,
        "the recorded run restored from a savepoint"
    );
}

#[test]
fn savepoint_operations_complete_or_fail_alike() {
    let c = cluster();
    let real = fixture("savepoint-completed.json");
    let fake = c.operation_json(&op(Some(Ok("file:/sp/savepoint-aaaaaa-1".into()))));
    assert_covers("savepoint completed", &real, &fake);
    assert!(matches!(
        decode::<AsyncOperation>(real).unwrap().outcome(),
        SnapshotOutcome::Completed { location: Some(_) }
    ));
    assert!(matches!(
        decode::<AsyncOperation>(fake).unwrap().outcome(),
        SnapshotOutcome::Completed { location: Some(_) }
    ));

    let real = fixture("savepoint-failed.json");
    let fake = c.operation_json(&op(Some(Err("declined".into()))));
    assert_covers("savepoint failed", &real, &fake);
    for (who, v) in [("real", real), ("fake", fake)] {
        match decode::<AsyncOperation>(v).unwrap().outcome() {
            SnapshotOutcome::Failed { cause } => assert!(
                cause.starts_with("java.util.concurrent.CompletionException"),
                "{who}: {cause}"
            ),
            other => panic!("{who}: {other:?}"),
        }
    }
    for name in ["savepoint-trigger.json", "stop-trigger.json"] {
        decode::<TriggerResponse>(fixture(name)).unwrap();
    }
}

#[test]
fn jars_and_exceptions() {
    let upload = decode::<JarUploadResponse>(fixture("jars-upload.json")).unwrap();
    assert!(upload.jar_id().ends_with("_state-job.jar"));
    let run = decode::<JarRunResponse>(fixture("jars-run.json")).unwrap();
    assert_eq!(run.jobid.len(), 32);
    assert!(run.application_id.is_some());
    let c = cluster();
    let (real, fake) = (fixture("exceptions.json"), c.exceptions_json(&c.jobs[0]));
    decode::<JobExceptions>(real.clone()).unwrap();
    decode::<JobExceptions>(fake.clone()).unwrap();
    assert_covers("GET /jobs/:jid/exceptions", &real, &fake);
    let errors = fixture("error-not-found.json");
    assert!(errors["errors"][0]
        .as_str()
        .unwrap()
        .contains("NotFoundException"));
}
