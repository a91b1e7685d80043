//! The reconcile protocol against mocked ports: what is written to Kubernetes and asked of
//! Flink, in which order, for the paths where order decides whether state survives.

use std::collections::BTreeMap;

use mockall::predicate::*;

use super::deployment::reconcile;
use super::{Context, ReconcileError};
use crate::crd::*;
use crate::ports::*;

struct FixedClock(i64);
impl Clock for FixedClock {
    fn now_millis(&self) -> i64 {
        self.0
    }
}

const NOW: i64 = 1_000_000;
const SAVEPOINT: &str = "file:///sp/savepoint-abc";

fn spec(parallelism: i32) -> FlinkDeploymentSpec {
    FlinkDeploymentSpec {
        image: Some("flink:2.3".into()),
        flink_version: Some(FlinkVersion::v2_3),
        flink_configuration: Some(FlinkConfiguration::from_pairs([
            ("state.savepoints.dir", "file:///sp"),
            ("state.checkpoints.dir", "file:///cp"),
        ])),
        job_manager: Some(JobManagerSpec {
            resource: Some(Resource {
                cpu: Some(1.0),
                memory: Some("2048m".into()),
                ephemeral_storage: None,
            }),
            ..Default::default()
        }),
        task_manager: Some(TaskManagerSpec {
            resource: Some(Resource {
                cpu: Some(1.0),
                memory: Some("2048m".into()),
                ephemeral_storage: None,
            }),
            ..Default::default()
        }),
        job: Some(JobSpec {
            jar_uri: Some("local:///job.jar".into()),
            parallelism: Some(parallelism),
            upgrade_mode: Some(UpgradeMode::Savepoint),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A running deployment (parallelism 2) whose spec now asks for parallelism 4, with the
/// upgrade already under way: `savepoint_info` says what the status recorded of it.
fn mid_upgrade(savepoint_info: SavepointInfo, upgrade_path: Option<&str>) -> FlinkDeployment {
    let mut fd = FlinkDeployment::new("app", spec(4));
    fd.metadata.namespace = Some("default".into());
    fd.metadata.uid = Some("uid-1".into());
    fd.metadata.generation = Some(2);
    fd.metadata.resource_version = Some("10".into());
    fd.metadata.finalizers = Some(vec![DEPLOYMENT_FINALIZER.into()]);
    let reconciled = StoredSpec::new(spec(2), false).to_json();
    fd.status = Some(FlinkDeploymentStatus {
        job_manager_deployment_status: Some(JobManagerDeploymentStatus::Ready),
        observed_generation: Some(1),
        job_status: Some(JobStatus {
            job_id: Some("j1".into()),
            state: Some(FlinkJobState::Running),
            start_time: Some("100".into()),
            upgrade_savepoint_path: upgrade_path.map(str::to_string),
            savepoint_info: Some(savepoint_info),
            ..Default::default()
        }),
        reconciliation_status: Some(ReconciliationStatus {
            reconciliation_timestamp: Some(500),
            last_reconciled_spec: Some(reconciled.clone().into()),
            last_stable_spec: Some(reconciled.into()),
            state: Some(ReconciliationState::Upgrading),
        }),
        lifecycle_state: Some(ResourceLifecycleState::Upgrading),
        ..Default::default()
    });
    fd
}

fn pending_trigger() -> SavepointInfo {
    SavepointInfo {
        trigger_id: Some("t1".into()),
        trigger_timestamp: Some(900),
        trigger_type: Some(SnapshotTriggerType::Upgrade),
        ..Default::default()
    }
}

/// A JobManager Deployment as the observer reads it.
fn view(json: serde_json::Value) -> std::sync::Arc<DeploymentView> {
    std::sync::Arc::new(serde_json::from_value(json).unwrap())
}

fn operation(json: serde_json::Value) -> AsyncOperation {
    decode(json).unwrap()
}

fn status_of(fd: &FlinkDeployment) -> &FlinkDeploymentStatus {
    fd.status.as_ref().unwrap()
}

/// Status writes return what was written, with a new resourceVersion.
fn echo(fd: FlinkDeployment) -> Result<std::sync::Arc<FlinkDeployment>, KubeError> {
    let mut out = fd;
    let rv: u64 = out
        .metadata
        .resource_version
        .as_deref()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    out.metadata.resource_version = Some((rv + 1).to_string());
    Ok(std::sync::Arc::new(out))
}

fn run(kube: &MockKubeApi, flink: &MockFlinkApi) -> Result<Option<super::Requeue>, ReconcileError> {
    let clock = FixedClock(NOW);
    let conf = BTreeMap::new();
    let artifacts = crate::ports::MockArtifactFetcher::new();
    let ctx = Context {
        kube,
        flink,
        artifacts: &artifacts,
        clock: &clock,
        operator_config: &conf,
    };
    block_on(reconcile(&ctx, "default", "app"))
}

/// The mocks answer at once, so one poll finishes a reconcile.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("mocked ports never wait"),
    }
}

/// What the reconciler said to Kubernetes, in order: `status LIFECYCLE RECON [savepoint]`,
/// `delete NAME`, `apply-config-map [restore PATH]`, `apply-deployment`, `finalizers N`.
#[derive(Clone, Default)]
struct Protocol(
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    std::sync::Arc<std::sync::Mutex<Vec<FlinkDeploymentStatus>>>,
);

impl Protocol {
    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    fn statuses(&self) -> Vec<FlinkDeploymentStatus> {
        self.1.lock().unwrap().clone()
    }
    /// Index of the first line starting with `prefix`; fails the test if there is none.
    fn first(&self, prefix: &str) -> usize {
        let lines = self.lines();
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in {lines:#?}"))
    }

    /// Records every status write, delete and apply.
    fn watch(&self, kube: &mut MockKubeApi) {
        let p = self.clone();
        kube.expect_update_flink_deployment_status()
            .returning(move |fd| {
                let s = status_of(&fd);
                let recon = s
                    .reconciliation_status
                    .as_ref()
                    .and_then(|r| r.state)
                    .map(|r| r.as_str())
                    .unwrap_or("-");
                let lifecycle = s.lifecycle_state.map(|l| l.as_str()).unwrap_or("-");
                let savepoint = s
                    .job_status
                    .as_ref()
                    .and_then(|j| j.upgrade_savepoint_path.as_deref())
                    .unwrap_or("-");
                p.push(format!("status {lifecycle} {recon} {savepoint}"));
                p.1.lock().unwrap().push(s.clone());
                echo(fd)
            });
        let p = self.clone();
        kube.expect_delete_deployment().returning(move |_, name| {
            p.push(format!("delete {name}"));
            Ok(())
        });
        let p = self.clone();
        kube.expect_apply_config_map().returning(move |cm| {
            let text = &cm.data.as_ref().unwrap()["config.yaml"];
            let restore = text
                .lines()
                .find_map(|l| l.strip_prefix("execution.savepoint.path: "))
                .unwrap_or("-");
            let parallelism = text
                .lines()
                .find_map(|l| l.strip_prefix("parallelism.default: "))
                .unwrap_or("-");
            p.push(format!(
                "apply-config-map restore={restore} parallelism={parallelism}"
            ));
            Ok(())
        });
        let p = self.clone();
        kube.expect_apply_deployment().returning(move |d| {
            let image = serde_json::to_value(d).unwrap()["spec"]["template"]["spec"]["containers"]
                [0]["image"]
                .clone();
            p.push(format!(
                "apply-deployment image={}",
                image.as_str().unwrap_or("-")
            ));
            Ok(())
        });
        kube.expect_apply_service().returning(|_| Ok(()));
        kube.expect_publish_event().returning(|_| Ok(()));
    }
}

fn allow_deploy(kube: &mut MockKubeApi) {
    kube.expect_apply_config_map().returning(|_| Ok(()));
    kube.expect_apply_service().returning(|_| Ok(()));
    kube.expect_apply_deployment().returning(|_| Ok(()));
    kube.expect_publish_event().returning(|_| Ok(()));
    kube.expect_list_config_maps().returning(|_, _| Ok(vec![]));
}

#[test]
fn savepoint_location_is_in_status_before_the_jobmanager_is_deleted() {
    let fd = mid_upgrade(pending_trigger(), None);
    let mut kube = MockKubeApi::new();
    let mut flink = MockFlinkApi::new();
    kube.expect_get_flink_deployment()
        .returning(move |_, _| Ok(Some(std::sync::Arc::new(fd.clone()))));
    flink
        .expect_savepoint_status()
        .with(always(), eq("j1"), eq("t1"))
        .times(1)
        .returning(|_, _, _| Ok(operation(serde_json::json!({"status": {"id": "COMPLETED"}, "operation": {"location": SAVEPOINT}}))));
    kube.expect_list_config_maps().returning(|_, _| Ok(vec![]));
    let protocol = Protocol::default();
    protocol.watch(&mut kube);
    let result = run(&kube, &flink);
    assert!(result.is_ok(), "{result:?}");
    let recorded = protocol.first(&format!("status UPGRADING UPGRADING {SAVEPOINT}"));
    assert!(
        recorded < protocol.first("delete app"),
        "{:#?}",
        protocol.lines()
    );
}

#[test]
fn a_failed_upgrade_savepoint_aborts_and_changes_nothing() {
    let fd = mid_upgrade(pending_trigger(), None);
    let mut kube = MockKubeApi::new();
    let mut flink = MockFlinkApi::new();
    kube.expect_get_flink_deployment()
        .returning(move |_, _| Ok(Some(std::sync::Arc::new(fd.clone()))));
    flink.expect_savepoint_status().times(1).returning(|_, _, _| {
        Ok(operation(serde_json::json!({"status": {"id": "COMPLETED"}, "operation": {"failure-cause": {"class": "x", "stack-trace": "declined"}}})))
    });
    let protocol = Protocol::default();
    protocol.watch(&mut kube);
    let result = run(&kube, &flink);
    assert!(
        matches!(result, Err(ReconcileError::UpgradeFailed(_))),
        "{result:?}"
    );
    // Nothing was deleted or deployed; the status says the old spec still runs.
    let lines = protocol.lines();
    assert!(lines.iter().all(|l| l.starts_with("status")), "{lines:#?}");
    let last = protocol.statuses().pop().unwrap();
    let recon = last.reconciliation_status.as_ref().unwrap();
    assert_eq!(recon.state, Some(ReconciliationState::Deployed));
    assert_eq!(
        recon.last_reconciled_spec,
        Some(StoredSpec::new(spec(2), false).to_json().into())
    );
    assert_eq!(last.lifecycle_state, Some(ResourceLifecycleState::Stable));
    assert!(last
        .job_status
        .as_ref()
        .unwrap()
        .savepoint_info
        .as_ref()
        .unwrap()
        .trigger_id
        .is_none());
    assert!(last.error.as_deref().unwrap().contains("declined"));
}

#[test]
fn after_a_crash_between_savepoint_and_teardown_no_second_savepoint_is_taken() {
    // The savepoint completed and was recorded; then the operator died before deleting.
    let info = SavepointInfo {
        last_savepoint: Some(Savepoint {
            time_stamp: Some(950),
            location: Some(SAVEPOINT.into()),
            trigger_type: Some(SnapshotTriggerType::Upgrade),
            format_type: None,
            trigger_nonce: None,
        }),
        ..Default::default()
    };
    let fd = mid_upgrade(info, Some(SAVEPOINT));
    let mut kube = MockKubeApi::new();
    let mut flink = MockFlinkApi::new();
    kube.expect_get_flink_deployment()
        .returning(move |_, _| Ok(Some(std::sync::Arc::new(fd.clone()))));
    flink.expect_stop_with_savepoint().never();
    flink.expect_trigger_savepoint().never();
    kube.expect_delete_deployment()
        .times(2)
        .returning(|_, _| Ok(()));
    allow_deploy(&mut kube);
    // The new cluster is deployed from the recorded savepoint.
    kube.expect_update_flink_deployment_status().returning(echo);
    let result = run(&kube, &flink);
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn the_new_cluster_starts_from_the_recorded_savepoint() {
    let fd = mid_upgrade(pending_trigger(), None);
    let mut kube = MockKubeApi::new();
    let mut flink = MockFlinkApi::new();
    kube.expect_get_flink_deployment()
        .returning(move |_, _| Ok(Some(std::sync::Arc::new(fd.clone()))));
    flink
        .expect_savepoint_status()
        .returning(|_, _, _| Ok(operation(serde_json::json!({"status": {"id": "COMPLETED"}, "operation": {"location": SAVEPOINT}}))));
    kube.expect_update_flink_deployment_status().returning(echo);
    kube.expect_delete_deployment().returning(|_, _| Ok(()));
    kube.expect_apply_config_map()
        .withf(|cm| {
            cm.data.as_ref().unwrap()["config.yaml"]
                .contains(&format!("execution.savepoint.path: {SAVEPOINT}"))
        })
        .times(1)
        .returning(|_| Ok(()));
    kube.expect_apply_service().returning(|_| Ok(()));
    kube.expect_apply_deployment()
        .times(1)
        .returning(|_| Ok(()));
    kube.expect_publish_event().returning(|_| Ok(()));
    kube.expect_list_config_maps().returning(|_, _| Ok(vec![]));
    assert!(run(&kube, &flink).is_ok());
}

#[test]
fn a_running_job_gets_a_stop_with_savepoint_recorded_before_anything_else() {
    // Upgrade just detected: status says STABLE, spec asks for parallelism 4.
    let mut fd = mid_upgrade(SavepointInfo::default(), None);
    let st = fd.status.as_mut().unwrap();
    st.reconciliation_status.as_mut().unwrap().state = Some(ReconciliationState::Deployed);
    st.lifecycle_state = Some(ResourceLifecycleState::Stable);
    let mut kube = MockKubeApi::new();
    let mut flink = MockFlinkApi::new();
    kube.expect_get_flink_deployment()
        .returning(move |_, _| Ok(Some(std::sync::Arc::new(fd.clone()))));
    // Observation of the running cluster.
    kube.expect_get_deployment().returning(|_, _| {
        Ok(Some(view(
            serde_json::json!({"metadata": {"name": "app"}, "status": {"availableReplicas": 1}}),
        )))
    });
    // A JobManager whose replicas are all available: its pods are not looked at.
    kube.expect_list_pods().never();
    flink.expect_overview().returning(|_| {
        decode(serde_json::json!({"taskmanagers": 1, "slots-total": 2, "slots-available": 0, "flink-version": "2.3.0"}))
    });
    flink.expect_list_jobs().returning(|_| {
        Ok(vec![JobOverview {
            jid: "j1".into(),
            name: "job".into(),
            state: "RUNNING".into(),
            start_time: 100,
            end_time: -1,
            last_modification: 100,
        }])
    });
    kube.expect_publish_event().returning(|_| Ok(()));
    flink
        .expect_stop_with_savepoint()
        .with(
            always(),
            eq("j1"),
            eq(Some("file:///sp".to_string())),
            eq(false),
        )
        .times(1)
        .returning(|_, _, _, _| Ok("t9".into()));
    kube.expect_update_flink_deployment_status().returning(echo);
    kube.expect_delete_deployment().never();
    kube.expect_apply_deployment().never();
    let result = run(&kube, &flink);
    assert!(result.is_ok(), "{result:?}");
}

fn fresh(spec: FlinkDeploymentSpec) -> FlinkDeployment {
    let mut fd = FlinkDeployment::new("app", spec);
    fd.metadata.namespace = Some("default".into());
    fd.metadata.uid = Some("uid-1".into());
    fd.metadata.generation = Some(1);
    fd.metadata.resource_version = Some("1".into());
    fd
}

#[test]
fn first_deploy_records_the_attempt_before_creating_anything() {
    let fd = fresh(spec(2));
    let mut kube = MockKubeApi::new();
    let flink = MockFlinkApi::new();
    kube.expect_get_flink_deployment()
        .returning(move |_, _| Ok(Some(std::sync::Arc::new(fd.clone()))));
    let protocol = Protocol::default();
    let p = protocol.clone();
    kube.expect_set_flink_deployment_finalizers()
        .withf(|_, f| f == &vec![DEPLOYMENT_FINALIZER.to_string()])
        .times(1)
        .returning(move |fd, f| {
            p.push(format!("finalizers {}", f.len()));
            let mut out = fd.clone();
            out.metadata.finalizers = Some(f);
            Ok(out)
        });
    protocol.watch(&mut kube);
    assert!(run(&kube, &flink).is_ok());
    assert_eq!(
        protocol.lines(),
        vec![
            "finalizers 1",
            "status CREATED - -",
            "status UPGRADING UPGRADING -",
            "status UPGRADING UPGRADING -",
            "apply-config-map restore=- parallelism=2",
            "apply-deployment image=flink:2.3",
            "status DEPLOYED DEPLOYED -",
        ]
    );
    // The attempt is recorded, then the job id it will run under, then the cluster is made.
    let with_id = &protocol.statuses()[2];
    assert!(with_id
        .job_status
        .as_ref()
        .and_then(|j| j.job_id.as_ref())
        .is_some());
    let first = &protocol.statuses()[1];
    let stored = StoredSpec::<FlinkDeploymentSpec>::parse(
        first
            .reconciliation_status
            .as_ref()
            .unwrap()
            .last_reconciled_spec
            .as_ref()
            .unwrap(),
    )
    .unwrap();
    assert!(stored.resource_metadata.first_deployment);
    assert_eq!(
        stored.spec.job.unwrap().state,
        Some(JobState::Suspended),
        "in flight until deployed"
    );
}

#[test]
fn an_invalid_spec_change_touches_nothing_that_runs() {
    // Stable, running; the new spec asks for parallelism 0.
    let mut fd = mid_upgrade(SavepointInfo::default(), None);
    fd.spec = spec(0);
    let st = fd.status.as_mut().unwrap();
    st.reconciliation_status.as_mut().unwrap().state = Some(ReconciliationState::Deployed);
    let mut kube = MockKubeApi::new();
    let mut flink = MockFlinkApi::new();
    kube.expect_get_flink_deployment()
        .returning(move |_, _| Ok(Some(std::sync::Arc::new(fd.clone()))));
    kube.expect_get_deployment().returning(|_, _| {
        Ok(Some(view(
            serde_json::json!({"metadata": {"name": "app"}, "status": {"availableReplicas": 1}}),
        )))
    });
    kube.expect_list_pods().returning(|_, _| Ok(vec![]));
    flink.expect_overview().returning(|_| {
        decode(serde_json::json!({"taskmanagers": 1, "slots-total": 2, "slots-available": 0, "flink-version": "2.3.0"}))
    });
    flink.expect_list_jobs().returning(|_| {
        Ok(vec![JobOverview {
            jid: "j1".into(),
            name: "job".into(),
            state: "RUNNING".into(),
            start_time: 100,
            end_time: -1,
            last_modification: 100,
        }])
    });
    kube.expect_publish_event()
        .withf(|e| {
            e.reason == "ValidationError"
                && e.event_type == EventType::Warning
                && e.message.contains("parallelism")
        })
        .times(1)
        .returning(|_| Ok(()));
    kube.expect_delete_deployment().never();
    kube.expect_apply_deployment().never();
    kube.expect_apply_config_map().never();
    flink.expect_stop_with_savepoint().never();
    flink.expect_cancel_job().never();
    let statuses = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = statuses.clone();
    kube.expect_update_flink_deployment_status()
        .returning(move |fd| {
            seen.lock().unwrap().push(status_of(&fd).clone());
            echo(fd)
        });
    assert!(run(&kube, &flink).is_ok());
    let statuses = statuses.lock().unwrap();
    assert_eq!(
        statuses.len(),
        1,
        "one write: the observation with the error"
    );
    let s = &statuses[0];
    assert!(s.error.as_deref().unwrap().contains("ValidationException"));
    assert_eq!(
        s.observed_generation,
        Some(1),
        "the invalid generation is not observed"
    );
    assert_eq!(
        s.reconciliation_status
            .as_ref()
            .unwrap()
            .last_reconciled_spec,
        Some(StoredSpec::new(spec(2), false).to_json().into())
    );
}

#[test]
fn a_stateless_upgrade_drops_ha_metadata_and_starts_empty() {
    let mut fd = mid_upgrade(SavepointInfo::default(), Some(SAVEPOINT));
    fd.spec.job.as_mut().unwrap().upgrade_mode = Some(UpgradeMode::Stateless);
    let mut kube = MockKubeApi::new();
    let flink = MockFlinkApi::new();
    kube.expect_get_flink_deployment()
        .returning(move |_, _| Ok(Some(std::sync::Arc::new(fd.clone()))));
    kube.expect_update_flink_deployment_status().returning(echo);
    kube.expect_delete_deployment()
        .times(2)
        .returning(|_, _| Ok(()));
    kube.expect_list_config_maps().returning(|_, _| {
        Ok(vec![serde_json::from_value(
            serde_json::json!({"metadata": {"name": "app-cluster-config-map"}}),
        )
        .unwrap()])
    });
    kube.expect_delete_config_map()
        .with(eq("default"), eq("app-cluster-config-map"))
        .times(1)
        .returning(|_, _| Ok(()));
    kube.expect_apply_config_map()
        .withf(|cm| !cm.data.as_ref().unwrap()["config.yaml"].contains("execution.savepoint.path"))
        .times(1)
        .returning(|_| Ok(()));
    kube.expect_apply_service().returning(|_| Ok(()));
    kube.expect_apply_deployment()
        .times(1)
        .returning(|_| Ok(()));
    kube.expect_publish_event().returning(|_| Ok(()));
    assert!(run(&kube, &flink).is_ok());
}

#[test]
fn deletion_keeps_the_finalizer_until_the_jobmanager_is_gone() {
    for jobmanager_still_there in [true, false] {
        let mut fd = mid_upgrade(SavepointInfo::default(), None);
        fd.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        fd.status
            .as_mut()
            .unwrap()
            .reconciliation_status
            .as_mut()
            .unwrap()
            .state = Some(ReconciliationState::Deployed);
        let mut kube = MockKubeApi::new();
        let flink = MockFlinkApi::new();
        kube.expect_get_flink_deployment()
            .returning(move |_, _| Ok(Some(std::sync::Arc::new(fd.clone()))));
        kube.expect_update_flink_deployment_status().returning(echo);
        kube.expect_publish_event().returning(|_| Ok(()));
        kube.expect_delete_deployment().returning(|_, _| Ok(()));
        kube.expect_list_config_maps().returning(|_, _| Ok(vec![]));
        kube.expect_get_deployment().returning(move |_, _| {
            Ok(jobmanager_still_there
                .then(|| view(serde_json::json!({"metadata": {"name": "app"}}))))
        });
        kube.expect_set_flink_deployment_finalizers()
            .withf(|_, f| f.is_empty())
            .times(if jobmanager_still_there { 0 } else { 1 })
            .returning(|fd, _| Ok(fd.clone()));
        let result = run(&kube, &flink).unwrap();
        assert_eq!(result.is_some(), jobmanager_still_there);
    }
}

#[test]
fn rollback_after_the_readiness_timeout_restores_the_upgrade_savepoint() {
    // The new spec (parallelism 4, a broken image) never came up; the stable one is 2.
    let mut broken = spec(4);
    broken.image = Some("flink:broken".into());
    let mut fd = mid_upgrade(SavepointInfo::default(), Some(SAVEPOINT));
    fd.spec = broken.clone();
    fd.spec
        .flink_configuration
        .as_mut()
        .unwrap()
        .entries_mut()
        .insert(
            "kubernetes.operator.deployment.rollback.enabled".into(),
            serde_json::json!("true"),
        );
    // With HA metadata left by the old job: its checkpoint is older than the upgrade's
    // savepoint, so it must not be what the rollback restores.
    let ha = |mut s: FlinkDeploymentSpec| {
        s.flink_configuration
            .as_mut()
            .unwrap()
            .entries_mut()
            .insert(
                "high-availability.type".into(),
                serde_json::json!("kubernetes"),
            );
        s
    };
    fd.spec = ha(fd.spec.clone());
    let mut reconciled = fd.spec.clone();
    reconciled.job.as_mut().unwrap().state = Some(JobState::Running);
    let st = fd.status.as_mut().unwrap();
    st.reconciliation_status.as_mut().unwrap().last_stable_spec =
        Some(StoredSpec::new(ha(spec(2)), false).to_json().into());
    st.job_manager_deployment_status = Some(JobManagerDeploymentStatus::Error);
    st.job_status.as_mut().unwrap().state = Some(FlinkJobState::Reconciling);
    let recon = st.reconciliation_status.as_mut().unwrap();
    recon.state = Some(ReconciliationState::Deployed);
    recon.last_reconciled_spec = Some(StoredSpec::new(reconciled, false).to_json().into());
    recon.reconciliation_timestamp = Some(NOW - 301_000);
    let mut kube = MockKubeApi::new();
    let flink = MockFlinkApi::new();
    kube.expect_get_flink_deployment()
        .returning(move |_, _| Ok(Some(std::sync::Arc::new(fd.clone()))));
    kube.expect_get_deployment()
        .returning(|_, _| Ok(Some(view(serde_json::json!({"metadata": {"name": "app"}})))));
    kube.expect_list_pods().returning(|_, _| {
        Ok(vec![serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "status": {"containerStatuses": [
            {"name": "flink-main-container", "ready": false, "restartCount": 0, "image": "flink:broken", "imageID": "",
             "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}}]}})).unwrap()])
    });
    kube.expect_publish_event().returning(|_| Ok(()));
    kube.expect_list_config_maps().returning(|_, selector| {
        let map = if selector.contains("high-availability") {
            serde_json::json!({"metadata": {"name": "app-cluster-config-map"},
                "data": {"checkpointID-j1": "file:///cp/j1/chk-3"}})
        } else {
            // The failed deployment's configuration: what it was started from.
            serde_json::json!({"metadata": {"name": "flink-config-app"},
                "data": {"config.yaml": format!("execution.savepoint.path: {SAVEPOINT}\n")}})
        };
        Ok(vec![serde_json::from_value(map).unwrap()])
    });
    let protocol = Protocol::default();
    protocol.watch(&mut kube);
    let result = run(&kube, &flink);
    assert!(result.is_ok(), "{result:?}");
    let rolling = protocol.first("status ROLLING_BACK ROLLING_BACK");
    let delete = protocol.first("delete app");
    let restore = protocol.first(&format!(
        "apply-config-map restore={SAVEPOINT} parallelism=2"
    ));
    let image = protocol.first("apply-deployment image=flink:2.3");
    let rolled = protocol.first("status ROLLED_BACK ROLLED_BACK");
    assert!(
        rolling < delete && delete < restore && restore < image && image < rolled,
        "{:#?}",
        protocol.lines()
    );
}

/// A status the operator writes must read back equal, or the next reconcile writes it again:
/// the Running condition's time is whole seconds, as the API server serialises it.
#[test]
fn a_condition_time_survives_a_write_and_read_back() {
    let condition = k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        type_: "Running".into(),
        status: "True".into(),
        reason: "JobRunning".into(),
        message: "Job status RUNNING".into(),
        last_transition_time: super::condition_time(1_767_225_601_504),
        observed_generation: None,
    };
    let text = serde_json::to_value(&condition).unwrap();
    assert_eq!(text["lastTransitionTime"], "2026-01-01T00:00:01Z");
    let read_back: k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition =
        serde_json::from_value(text).unwrap();
    assert_eq!(read_back, condition);
}

#[test]
fn the_reconciled_job_fields_check_agrees_with_the_merge() {
    let base = JobSpec {
        jar_uri: Some("local:///job.jar".into()),
        ..Default::default()
    };
    let variants = [
        JobSpec {
            savepoint_trigger_nonce: Some(7),
            ..base.clone()
        },
        JobSpec {
            checkpoint_trigger_nonce: Some(3),
            ..base.clone()
        },
        JobSpec {
            state: Some(JobState::Suspended),
            upgrade_mode: Some(UpgradeMode::Savepoint),
            ..base.clone()
        },
        JobSpec {
            upgrade_mode: Some(UpgradeMode::LastState),
            ..base.clone()
        },
        base.clone(),
    ];
    for reconciled in &variants {
        for desired in &variants {
            let mut merged = desired.clone();
            super::keep_reconciled_job_fields(&mut merged, reconciled);
            assert!(super::has_reconciled_job_fields(&merged, reconciled));
            assert_eq!(
                super::has_reconciled_job_fields(desired, reconciled),
                &merged == desired,
                "{desired:?} against {reconciled:?}"
            );
        }
    }
}

/// The check that a change needs nothing recorded answers as merging the reconciled job's
/// fields into a copy of the desired spec and comparing it with the reconciled one does.
#[test]
fn the_nothing_to_record_check_agrees_with_the_merged_copy() {
    use crate::crd::FlinkDeploymentSpec;
    let job = JobSpec {
        jar_uri: Some("local:///job.jar".into()),
        ..Default::default()
    };
    let config = |pairs: serde_json::Value| -> Option<crate::crd::FlinkConfiguration> {
        serde_json::from_value(pairs).ok()
    };
    let base = FlinkDeploymentSpec {
        image: Some("flink:2.0".into()),
        flink_configuration: config(serde_json::json!({"taskmanager.numberOfTaskSlots": "2"})),
        job: Some(job.clone()),
        ..Default::default()
    };
    let with_job = |j: JobSpec| FlinkDeploymentSpec {
        job: Some(j),
        ..base.clone()
    };
    let variants = [
        base.clone(),
        with_job(JobSpec {
            state: Some(JobState::Running),
            ..job.clone()
        }),
        with_job(JobSpec {
            state: Some(JobState::Suspended),
            upgrade_mode: Some(UpgradeMode::Savepoint),
            ..job.clone()
        }),
        with_job(JobSpec {
            savepoint_trigger_nonce: Some(7),
            ..job.clone()
        }),
        with_job(JobSpec {
            parallelism: Some(4),
            ..job.clone()
        }),
        FlinkDeploymentSpec {
            image: Some("flink:2.1".into()),
            ..base.clone()
        },
        // The same configuration, written nested: the same to Flink, not the same text.
        FlinkDeploymentSpec {
            flink_configuration: config(
                serde_json::json!({"taskmanager": {"numberOfTaskSlots": "2"}}),
            ),
            ..base.clone()
        },
        FlinkDeploymentSpec {
            job: None,
            ..base.clone()
        },
    ];
    let mut equal = 0;
    for reconciled in &variants {
        for desired in &variants {
            let mut merged = desired.clone();
            if let (Some(m), Some(r)) = (merged.job.as_mut(), reconciled.job.as_ref()) {
                super::keep_reconciled_job_fields(m, r);
            }
            let expected = merged == *reconciled;
            equal += usize::from(expected);
            assert_eq!(
                super::deployment::merged_is_reconciled(desired, reconciled),
                expected,
                "{desired:?} against {reconciled:?}"
            );
        }
    }
    assert!(
        equal > variants.len(),
        "some pairs differ only in kept fields"
    );
}

#[test]
fn same_text_compares_with_what_would_be_formatted() {
    let app = "fd-1";
    assert!(super::same_text(
        "component=taskmanager,app=fd-1",
        format_args!("component=taskmanager,app={app}")
    ));
    for other in [
        "component=taskmanager,app=fd-10",
        "component=taskmanager,app=fd-",
        "",
    ] {
        assert!(!super::same_text(
            other,
            format_args!("component=taskmanager,app={app}")
        ));
    }
}

#[test]
fn the_working_status_is_the_one_read_until_something_changes_it() {
    let mut read = fresh(spec(2));
    read.status = Some(FlinkDeploymentStatus {
        error: Some("an error".into()),
        ..Default::default()
    });
    let read = std::sync::Arc::new(read);
    let mut status = super::WorkingStatus::new(read.clone());
    assert_eq!(status.error.as_deref(), Some("an error"));
    assert!(status.is_as_read(&read), "read, not copied");

    status.error = None;
    assert!(!status.is_as_read(&read), "a change makes a copy");
    assert_eq!(status.error, None);
    assert_eq!(
        status_of(&read).error.as_deref(),
        Some("an error"),
        "what was read stays as it was"
    );

    // None read: the default status, owned from the start.
    let bare = std::sync::Arc::new(fresh(spec(2)));
    assert!(bare.status.is_none());
    let status = super::WorkingStatus::new(bare.clone());
    assert_eq!(*status, FlinkDeploymentStatus::default());
    assert!(!status.is_as_read(&bare));
}

/// A reconcile builds a spec's effective configuration once, with or without a
/// `flinkConfiguration` of its own, and a spec with another configuration gets its own.
#[test]
fn a_reconcile_builds_each_configuration_once() {
    let (kube, flink) = (MockKubeApi::new(), MockFlinkApi::new());
    let artifacts = crate::ports::MockArtifactFetcher::new();
    let clock = FixedClock(NOW);
    let operator = BTreeMap::from([("k".to_string(), "operator".to_string())]);
    let ctx = Context {
        kube: &kube,
        flink: &flink,
        artifacts: &artifacts,
        clock: &clock,
        operator_config: &operator,
    };
    let fd = fresh(spec(2));
    let (ns, name) = (fd.metadata.namespace.clone(), fd.metadata.name.clone());
    let run = super::Run::new(
        &ctx,
        std::sync::Arc::new(fd.clone()),
        ns.as_deref().unwrap_or_default(),
        name.as_deref().unwrap_or_default(),
    );
    let mut bare = fd.spec.clone();
    bare.flink_configuration = None;
    let mut other = fd.spec.clone();
    other.flink_configuration = Some(FlinkConfiguration::from_pairs([("k", "own")]));
    for spec in [&fd.spec, &bare, &other] {
        assert!(std::sync::Arc::ptr_eq(
            &run.config_of(spec),
            &run.config_of(&spec.clone())
        ));
    }
    assert_eq!(run.config_of(&bare).get("k"), Some("operator"));
    assert_eq!(run.config_of(&other).get("k"), Some("own"));
    assert!(!std::sync::Arc::ptr_eq(
        &run.config_of(&fd.spec),
        &run.config_of(&bare)
    ));
}
