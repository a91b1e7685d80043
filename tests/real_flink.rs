//! The Flink REST adapter against a real Apache Flink 2.3, started on loopback by the
//! project's own script (ci/flink-local.sh: installed from PyPI, stopped by PID at the end).
//! One test drives one cluster through a job's whole life, in order.

use std::process::Command;
use std::time::{Duration, Instant};

use flink_operator::adapters::flink_rest::FlinkRestClient;
use flink_operator::ports::*;

struct LocalFlink {
    url: String,
    jar: String,
}

fn script(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/ci/flink-local.sh"))
        .args(args)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "ci/flink-local.sh {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

impl LocalFlink {
    fn start() -> Self {
        script(&["start"]);
        let env = script(&["env"]);
        let var = |name: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{name} missing from ci/flink-local.sh env"))
                .to_string()
        };
        LocalFlink {
            url: var("FLINK_REST_URL"),
            jar: var("FLINK_TEST_JAR"),
        }
    }
}

impl Drop for LocalFlink {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/ci/flink-local.sh"))
            .arg("stop")
            .status();
    }
}

/// Polls `f` every 500 ms until it returns Some, or fails the test after `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn job_state(client: &FlinkRestClient, at: &FlinkEndpoint, job: &str) -> Option<String> {
    client
        .list_jobs(at)
        .await
        .ok()?
        .into_iter()
        .find(|j| j.jid == job)
        .map(|j| j.state)
}

async fn savepoint_location(
    client: &FlinkRestClient,
    at: &FlinkEndpoint,
    job: &str,
    trigger: &str,
) -> String {
    eventually("the savepoint", Duration::from_secs(60), || async {
        match client
            .savepoint_status(at, job, trigger)
            .await
            .ok()?
            .outcome()
        {
            SnapshotOutcome::InProgress => None,
            SnapshotOutcome::Completed { location } => location,
            SnapshotOutcome::Failed { cause } => panic!("savepoint failed: {cause}"),
        }
    })
    .await
}

async fn run_job(
    client: &FlinkRestClient,
    at: &FlinkEndpoint,
    flink: &LocalFlink,
    savepoint: Option<String>,
) -> String {
    let jar = flink.jar.as_str();
    let jar_id = client.upload_jar(at, jar).await.expect("upload");
    assert!(
        jar_id.ends_with("state-job.jar"),
        "jar id is the file name part: {jar_id}"
    );
    // A session job's own configuration rides along with the run request.
    let request = JarRunRequest {
        parallelism: Some(1),
        savepoint_path: savepoint,
        flink_configuration: Some(
            [(
                "execution.checkpointing.interval".to_string(),
                "1500ms".to_string(),
            )]
            .into(),
        ),
        ..Default::default()
    };
    let answer = client.run_jar(at, &jar_id, &request).await.expect("run");
    assert!(
        answer.application_id.is_some(),
        "Flink 2.x answers with an applicationId"
    );
    client.delete_jar(at, &jar_id).await.expect("delete jar");
    let job = answer.jobid;
    eventually("the job to run", Duration::from_secs(60), || async {
        (job_state(client, at, &job).await.as_deref() == Some("RUNNING")).then_some(())
    })
    .await;
    // The cluster says 2s; the job's configuration won.
    let config = Command::new("curl")
        .args([
            "-sf",
            &format!("{}/jobs/{job}/checkpoints/config", flink.url),
        ])
        .output()
        .expect("curl runs");
    let config: serde_json::Value =
        serde_json::from_slice(&config.stdout).expect("checkpoint config is JSON");
    assert_eq!(config["interval"], 1500, "{config}");
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_flink_job_lifecycle_through_the_rest_adapter() {
    let flink = LocalFlink::start();
    let client = FlinkRestClient::new(Duration::from_secs(10)).with_url_override(&flink.url);
    let at = FlinkEndpoint::for_cluster("default", "local", 8081);

    let overview = client.overview(&at).await.expect("overview");
    assert_eq!(overview.flink_version, "2.3.0");
    assert!(overview.taskmanagers >= 1);

    // Upload, run, checkpoints.
    let first = run_job(&client, &at, &flink, None).await;
    let stats = eventually(
        "a completed checkpoint",
        Duration::from_secs(60),
        || async {
            let s = client.checkpoints(&at, &first).await.ok()?;
            s.latest.completed.is_some().then_some(s)
        },
    )
    .await;
    assert_eq!(stats.counts.restored, 0, "a fresh job restored nothing");

    // A savepoint while the job keeps running.
    let trigger = client
        .trigger_savepoint(&at, &first, None, "CANONICAL")
        .await
        .expect("trigger");
    let savepoint = savepoint_location(&client, &at, &first, &trigger).await;
    assert!(savepoint.contains("savepoint-"), "{savepoint}");
    assert_eq!(
        job_state(&client, &at, &first).await.as_deref(),
        Some("RUNNING")
    );

    // Stop with a savepoint: the job finishes.
    let stop = client
        .stop_with_savepoint(&at, &first, None, false)
        .await
        .expect("stop");
    let final_savepoint = savepoint_location(&client, &at, &first, &stop).await;
    eventually(
        "the stopped job to finish",
        Duration::from_secs(30),
        || async {
            (job_state(&client, &at, &first).await.as_deref() == Some("FINISHED")).then_some(())
        },
    )
    .await;
    assert!(
        matches!(
            client.cancel_job(&at, &first).await,
            Err(FlinkError::Conflict(_))
        ),
        "a finished job cannot be cancelled"
    );

    // Resubmit from that savepoint: the checkpoint statistics show the restore.
    let second = run_job(&client, &at, &flink, Some(final_savepoint.clone())).await;
    let restored = client
        .checkpoints(&at, &second)
        .await
        .expect("checkpoints")
        .latest
        .restored
        .expect("restored");
    assert!(restored.is_savepoint);
    assert_eq!(
        restored.external_path.as_deref(),
        Some(final_savepoint.as_str())
    );

    // A TaskManager killed mid-job: the job restarts and recovers from its latest checkpoint.
    eventually(
        "a checkpoint of the second job",
        Duration::from_secs(60),
        || async {
            client
                .checkpoints(&at, &second)
                .await
                .ok()?
                .latest
                .completed
                .map(|_| ())
        },
    )
    .await;
    script(&["stop-taskmanager"]);
    // Flink shows the failure in the job's exception history (its state may read RUNNING
    // again at once, with tasks waiting for slots, and job details are cached for seconds).
    eventually(
        "the job to notice the lost TaskManager",
        Duration::from_secs(90),
        || async {
            let history = client.exceptions(&at, &second).await.ok()?;
            (!history.exception_history.entries.is_empty()).then_some(())
        },
    )
    .await;
    script(&["start-taskmanager"]);
    eventually("the job to run again", Duration::from_secs(120), || async {
        let s = client.checkpoints(&at, &second).await.ok()?;
        let running = job_state(&client, &at, &second).await.as_deref() == Some("RUNNING");
        (running && s.counts.restored >= 2).then_some(())
    })
    .await;

    // Cancel.
    client.cancel_job(&at, &second).await.expect("cancel");
    eventually(
        "the job to be cancelled",
        Duration::from_secs(30),
        || async {
            (job_state(&client, &at, &second).await.as_deref() == Some("CANCELED")).then_some(())
        },
    )
    .await;

    // Errors are typed.
    assert!(matches!(
        client
            .checkpoints(&at, "00000000000000000000000000000000")
            .await,
        Err(FlinkError::NotFound(_))
    ));
    assert!(matches!(
        client.checkpoints(&at, "not-a-job-id").await,
        Err(FlinkError::Http { status: 400, .. })
    ));
    let unreachable =
        FlinkRestClient::new(Duration::from_secs(2)).with_url_override("http://127.0.0.1:1");
    assert!(matches!(
        unreachable.overview(&at).await,
        Err(FlinkError::Unavailable(_))
    ));
}
