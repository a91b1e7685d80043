//! The production Kubernetes adapter (`flink_operator::adapters::kube::KubeClient`, over a
//! real `kube::Client`) against `flink-sim serve` on a loopback port: every `KubeApi` method
//! with the HTTP requests it really sends (server-side apply, status replace, merge-patched
//! finalizers with the resourceVersion read, background deletes, label-selected lists,
//! events.k8s.io Events through kube's Recorder), and how the answers map to `KubeError`.
//!
//! The world runs without its own operator (`external_operator`), so nothing but the test
//! writes the custom resources. Waits are bounded polls.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use flink_operator::adapters::kube::KubeClient;
use flink_operator::crd::{FlinkDeployment, FlinkSessionJob};
use flink_operator::ports::{EventRecord, EventType, KubeApi, KubeError};
use flink_sim::serve::{start, ServeHandle, ServeOptions};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(60);

struct Server {
    handle: ServeHandle,
    client: kube::Client,
    kube: KubeClient,
}

/// A server with the CRDs installed, and the adapter pointed at it over plain HTTP.
fn server() -> Server {
    let (addr, handle) = start(ServeOptions {
        install_crds: true,
        external_operator: true,
        speed: 10.0,
        ..Default::default()
    })
    .expect("the server starts");
    flink_operator::adapters::init_tls();
    let url: http::Uri = format!("http://{addr}").parse().unwrap();
    let client = kube::Client::try_from(kube::Config::new(url)).expect("a client");
    let kube = KubeClient::new(client.clone(), Some("adapter-test".into()));
    Server {
        handle,
        client,
        kube,
    }
}

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("the test's object decodes")
}

fn flink_deployment(name: &str) -> FlinkDeployment {
    typed(json!({
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"image": "flink:2.2", "flinkVersion": "v2_2",
                 "job": {"jarURI": "local:///opt/flink/job.jar", "parallelism": 2, "upgradeMode": "stateless"}}
    }))
}

fn session_job(name: &str) -> FlinkSessionJob {
    typed(json!({
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkSessionJob",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"deploymentName": "session", "job": {"jarURI": "https://example.com/job.jar", "parallelism": 1}}
    }))
}

fn deployment(labels: Value, replicas: i64, image: &str, args: Value) -> Deployment {
    typed(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "default", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "app", "component": "jobmanager"}},
            "template": {
                "metadata": {"labels": {"app": "app", "component": "jobmanager", "type": "flink-native-kubernetes"}},
                "spec": {"containers": [{"name": "flink-main-container", "image": image, "args": args}]}
            }
        }
    }))
}

fn service(ports: Value, selector: Value) -> Service {
    typed(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "app-rest", "namespace": "default", "labels": {"app": "app"}},
        "spec": {"type": "ClusterIP", "ports": ports, "selector": selector}
    }))
}

fn config_map(name: &str, labels: Value, data: Value) -> ConfigMap {
    typed(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "data": data
    }))
}

fn conflict<T: std::fmt::Debug>(r: Result<T, KubeError>) -> String {
    match r {
        Err(KubeError::Conflict(m)) => m,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn not_found<T: std::fmt::Debug>(r: Result<T, KubeError>) -> String {
    match r {
        Err(KubeError::NotFound(m)) => m,
        other => panic!("expected not found, got {other:?}"),
    }
}

async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(last) if start.elapsed() > LIMIT => panic!("{what}: not within {LIMIT:?}: {last}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flink_deployments_status_and_finalizers_with_optimistic_concurrency() {
    let s = server();
    let k = &s.kube;
    assert!(matches!(
        k.get_flink_deployment("default", "fd").await,
        Ok(None)
    ));

    let api: Api<FlinkDeployment> = Api::namespaced(s.client.clone(), "default");
    api.create(&PostParams::default(), &flink_deployment("fd"))
        .await
        .expect("created");
    let read = k
        .get_flink_deployment("default", "fd")
        .await
        .unwrap()
        .expect("present");
    assert_eq!(read.metadata.generation, Some(1));
    assert_eq!(read.spec.job.as_ref().unwrap().parallelism, Some(2));

    // Status: replaced through /status with the resourceVersion read.
    let mut with_status = (*read).clone();
    with_status.status = typed(json!({"lifecycleState": "DEPLOYED", "error": "first"}));
    let updated = k
        .update_flink_deployment_status(with_status.clone())
        .await
        .expect("status written");
    assert_eq!(
        updated.status.as_ref().unwrap().error.as_deref(),
        Some("first")
    );
    assert_ne!(
        updated.metadata.resource_version,
        read.metadata.resource_version
    );
    // The same write again, from the stale read: 409.
    with_status.status = typed(json!({"error": "stale"}));
    let m = conflict(k.update_flink_deployment_status(with_status).await);
    assert!(m.contains("update status of FlinkDeployment fd"), "{m}");
    assert!(m.contains("(409)"), "{m}");
    // A status write leaves the spec and generation alone.
    let now = k
        .get_flink_deployment("default", "fd")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.status.as_ref().unwrap().error.as_deref(), Some("first"));
    assert_eq!(now.metadata.generation, Some(1));

    // Finalizers: a merge patch carrying the resourceVersion read.
    let finalizer = flink_operator::crd::DEPLOYMENT_FINALIZER.to_string();
    let with_finalizer = k
        .set_flink_deployment_finalizers(&now, vec![finalizer.clone()])
        .await
        .expect("finalizer set");
    assert_eq!(
        with_finalizer.metadata.finalizers,
        Some(vec![finalizer.clone()])
    );
    let m = conflict(k.set_flink_deployment_finalizers(&now, Vec::new()).await);
    assert!(m.contains("set finalizers of FlinkDeployment fd"), "{m}");
    let still = k
        .get_flink_deployment("default", "fd")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.metadata.finalizers, Some(vec![finalizer.clone()]));

    // Deleting holds while the finalizer is there; removing it lets the object go.
    api.delete("fd", &Default::default()).await.unwrap();
    let marked = k
        .get_flink_deployment("default", "fd")
        .await
        .unwrap()
        .unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    k.set_flink_deployment_finalizers(&marked, Vec::new())
        .await
        .expect("finalizer removed");
    assert!(matches!(
        k.get_flink_deployment("default", "fd").await,
        Ok(None)
    ));

    // 404 → NotFound: writes to what is not there.
    let m = not_found(k.update_flink_deployment_status((*marked).clone()).await);
    assert!(m.contains("(404)") && m.contains("not found"), "{m}");
    not_found(k.set_flink_deployment_finalizers(&marked, Vec::new()).await);
    drop(s.handle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_jobs_are_read_listed_and_written_the_same_way() {
    let s = server();
    let k = &s.kube;
    assert!(matches!(
        k.get_session_job("default", "job-a").await,
        Ok(None)
    ));
    assert!(k.list_session_jobs("default").await.unwrap().is_empty());
    let api: Api<FlinkSessionJob> = Api::namespaced(s.client.clone(), "default");
    for name in ["job-b", "job-a"] {
        api.create(&PostParams::default(), &session_job(name))
            .await
            .expect("created");
    }
    let listed: Vec<String> = k
        .list_session_jobs("default")
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.metadata.name.unwrap())
        .collect();
    assert_eq!(listed, ["job-a", "job-b"]);
    assert!(k.list_session_jobs("elsewhere").await.unwrap().is_empty());

    let read = k
        .get_session_job("default", "job-a")
        .await
        .unwrap()
        .unwrap();
    let mut with_status = read.clone();
    with_status.status = typed(json!({"lifecycleState": "UPGRADING"}));
    let updated = k.update_session_job_status(&with_status).await.unwrap();
    assert!(updated.status.is_some());
    conflict(k.update_session_job_status(&with_status).await);

    let f = flink_operator::crd::SESSION_JOB_FINALIZER.to_string();
    let set = k
        .set_session_job_finalizers(&updated, vec![f.clone()])
        .await
        .unwrap();
    assert_eq!(set.metadata.finalizers, Some(vec![f]));
    conflict(k.set_session_job_finalizers(&updated, Vec::new()).await);
    drop(s.handle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_creates_then_replaces_what_the_operator_owns() {
    let s = server();
    let k = &s.kube;
    assert_eq!(k.get_deployment("default", "app").await, Ok(None));

    // Deployment: created, then applied again with a label, an arg and the image changed.
    k.apply_deployment(&deployment(
        json!({"app": "app", "type": "flink-native-kubernetes", "old": "yes"}),
        1,
        "flink:2.1",
        json!(["jobmanager", "--old-flag"]),
    ))
    .await
    .expect("created by apply");
    let first = k.get_deployment("default", "app").await.unwrap().unwrap();
    assert_eq!(first.metadata.generation, Some(1));
    let managed = first.metadata.managed_fields.clone().unwrap_or_default();
    assert_eq!(managed.len(), 1, "{managed:?}");
    assert_eq!(
        managed[0].manager.as_deref(),
        Some(flink_operator::adapters::kube::FIELD_MANAGER)
    );
    assert_eq!(managed[0].operation.as_deref(), Some("Apply"));

    // The world's kubelet runs the pods; list_pods finds them by label.
    let (name, image) = eventually("the Deployment's pod", async || {
        let pods = k
            .list_pods("default", "app=app,component=jobmanager")
            .await
            .map_err(|e| e.to_string())?;
        // Decoded as the operator reads it: the name and the status, where the image shows
        // once the kubelet has started the container.
        let image = |pod: &flink_operator::ports::PodView| {
            let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
            Some(statuses.first()?.image.clone())
        };
        match pods.as_slice() {
            [pod] if image(pod).is_some() => Ok((pod.metadata.name.clone(), image(pod))),
            _ => Err(format!("{} pods, not yet started", pods.len())),
        }
    })
    .await;
    assert!(
        name.as_deref().is_some_and(|n| n.starts_with("app-")),
        "{name:?}"
    );
    assert_eq!(image.as_deref(), Some("flink:2.1"));
    assert!(k
        .list_pods("default", "app=other")
        .await
        .unwrap()
        .is_empty());

    k.apply_deployment(&deployment(
        json!({"app": "app", "type": "flink-native-kubernetes"}),
        2,
        "flink:2.2",
        json!(["jobmanager"]),
    ))
    .await
    .expect("updated by apply");
    let second = k.get_deployment("default", "app").await.unwrap().unwrap();
    let labels = second.metadata.labels.clone().unwrap();
    assert!(!labels.contains_key("old"), "no longer applied: {labels:?}");
    assert_eq!(second.spec.as_ref().unwrap().replicas, Some(2));
    // The operator reads back only a view; the whole object, as applied, from the API.
    let whole: k8s_openapi::api::apps::v1::Deployment =
        kube::Api::namespaced(s.client.clone(), "default")
            .get("app")
            .await
            .unwrap();
    let spec = whole.spec.as_ref().unwrap();
    let container = &spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(container.image.as_deref(), Some("flink:2.2"));
    assert_eq!(container.args, Some(vec!["jobmanager".to_string()]));
    assert_eq!(second.metadata.generation, Some(2));
    assert_eq!(
        second.metadata.uid, first.metadata.uid,
        "updated, not replaced"
    );
    assert_eq!(
        second
            .metadata
            .managed_fields
            .as_deref()
            .unwrap_or_default()
            .len(),
        1
    );

    // The same apply again changes nothing (no new generation).
    k.apply_deployment(&deployment(
        json!({"app": "app", "type": "flink-native-kubernetes"}),
        2,
        "flink:2.2",
        json!(["jobmanager"]),
    ))
    .await
    .unwrap();
    let third = k.get_deployment("default", "app").await.unwrap().unwrap();
    assert_eq!(third.metadata.generation, Some(2));

    // Service: ports and selector replaced.
    k.apply_service(&service(
        json!([{"name": "rest", "port": 8081}, {"name": "old", "port": 9999}]),
        json!({"app": "app", "component": "jobmanager", "old": "x"}),
    ))
    .await
    .expect("service created");
    k.apply_service(&service(
        json!([{"name": "rest", "port": 8082}]),
        json!({"app": "app", "component": "jobmanager"}),
    ))
    .await
    .expect("service updated");
    let svc: Service = Api::namespaced(s.client.clone(), "default")
        .get("app-rest")
        .await
        .unwrap();
    let spec = svc.spec.unwrap();
    let ports: Vec<i32> = spec.ports.unwrap().iter().map(|p| p.port).collect();
    assert_eq!(ports, [8082]);
    assert_eq!(
        spec.selector.unwrap(),
        BTreeMap::from([
            ("app".to_string(), "app".to_string()),
            ("component".to_string(), "jobmanager".to_string())
        ])
    );

    // ConfigMap: a key no longer applied goes, a changed one changes.
    let labels = json!({"app": "app", "type": "flink-native-kubernetes"});
    k.apply_config_map(&config_map(
        "flink-config-app",
        labels.clone(),
        json!({"config.yaml": "a: 1\n", "log4j.properties": "x"}),
    ))
    .await
    .expect("config map created");
    k.apply_config_map(&config_map(
        "flink-config-app",
        labels.clone(),
        json!({"config.yaml": "a: 2\n"}),
    ))
    .await
    .expect("config map updated");
    let cms = k
        .list_config_maps("default", "app=app,type=flink-native-kubernetes")
        .await
        .unwrap();
    assert_eq!(cms.len(), 1);
    // Applied again as it is: nothing is written, not even a new resourceVersion (so
    // watchers hear nothing).
    k.apply_config_map(&config_map(
        "flink-config-app",
        labels.clone(),
        json!({"config.yaml": "a: 2\n"}),
    ))
    .await
    .unwrap();
    let again = k
        .list_config_maps("default", "app=app,type=flink-native-kubernetes")
        .await
        .unwrap();
    assert_eq!(again[0].metadata, cms[0].metadata);
    assert_eq!(
        cms[0].data.clone().unwrap(),
        BTreeMap::from([("config.yaml".to_string(), "a: 2\n".to_string())])
    );
    drop(s.handle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_selected_and_sorted_and_deletes_are_idempotent() {
    let s = server();
    let k = &s.kube;
    let ours = json!({"app": "app", "type": "flink-native-kubernetes"});
    for name in ["c-three", "a-one", "b-two"] {
        k.apply_config_map(&config_map(name, ours.clone(), json!({"k": name})))
            .await
            .unwrap();
    }
    k.apply_config_map(&config_map(
        "other",
        json!({"app": "other", "type": "flink-native-kubernetes"}),
        json!({}),
    ))
    .await
    .unwrap();
    let names = |cms: Vec<ConfigMap>| -> Vec<String> {
        cms.into_iter().map(|c| c.metadata.name.unwrap()).collect()
    };
    assert_eq!(
        names(
            k.list_config_maps("default", "app=app,type=flink-native-kubernetes")
                .await
                .unwrap()
        ),
        ["a-one", "b-two", "c-three"]
    );
    assert_eq!(
        names(
            k.list_config_maps("default", "type=flink-native-kubernetes")
                .await
                .unwrap()
        ),
        ["a-one", "b-two", "c-three", "other"]
    );
    assert!(k
        .list_config_maps("kube-system", "app=app")
        .await
        .unwrap()
        .is_empty());

    // Deletes: present, then absent (Ok both times).
    k.delete_config_map("default", "b-two").await.unwrap();
    k.delete_config_map("default", "b-two").await.unwrap();
    assert_eq!(
        names(k.list_config_maps("default", "app=app").await.unwrap()),
        ["a-one", "c-three"]
    );

    k.apply_deployment(&deployment(
        json!({"app": "app"}),
        1,
        "flink:2.2",
        json!([]),
    ))
    .await
    .unwrap();
    k.apply_service(&service(json!([{"port": 8081}]), json!({"app": "app"})))
        .await
        .unwrap();
    eventually("the pod", async || {
        match k.list_pods("default", "app=app").await {
            Ok(p) if p.len() == 1 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    k.delete_deployment("default", "app").await.unwrap();
    k.delete_deployment("default", "app").await.unwrap();
    assert_eq!(k.get_deployment("default", "app").await, Ok(None));
    // Background propagation: the pods go with it.
    eventually("the pods are collected", async || {
        match k.list_pods("default", "app=app").await {
            Ok(p) if p.is_empty() => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    k.delete_service("default", "app-rest").await.unwrap();
    k.delete_service("default", "app-rest").await.unwrap();
    let services: Api<Service> = Api::namespaced(s.client.clone(), "default");
    assert!(services.get_opt("app-rest").await.unwrap().is_none());
    drop(s.handle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_published_through_events_k8s_io_and_listed_in_both_versions() {
    let s = server();
    let k = &s.kube;
    let api: Api<FlinkDeployment> = Api::namespaced(s.client.clone(), "default");
    let fd = api
        .create(&PostParams::default(), &flink_deployment("evented"))
        .await
        .unwrap();
    let event = EventRecord {
        kind: "FlinkDeployment".into(),
        namespace: "default".into(),
        name: "evented".into(),
        uid: fd.metadata.uid.clone(),
        event_type: EventType::Normal,
        reason: "Submit".into(),
        message: "Starting deployment".into(),
        component: "JobManagerDeployment".into(),
    };
    k.publish_event(&event).await.expect("published");
    // The same event again: kube's Recorder patches it into a series.
    k.publish_event(&event).await.expect("published again");
    let warning = EventRecord {
        event_type: EventType::Warning,
        reason: "Error".into(),
        message: "x".repeat(2000),
        ..event.clone()
    };
    k.publish_event(&warning).await.expect("a warning");

    let v1: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(s.client.clone(), "default");
    let mut listed = v1.list(&ListParams::default()).await.unwrap().items;
    listed.sort_by_key(|e| e.reason.clone());
    assert_eq!(listed.len(), 2, "{listed:?}");
    let (error, submit) = (&listed[0], &listed[1]);
    assert_eq!(submit.reason.as_deref(), Some("Submit"));
    assert_eq!(submit.note.as_deref(), Some("Starting deployment"));
    assert_eq!(submit.type_.as_deref(), Some("Normal"));
    assert_eq!(submit.action.as_deref(), Some("JobManagerDeployment"));
    assert_eq!(
        submit.reporting_controller.as_deref(),
        Some(flink_operator::adapters::kube::FIELD_MANAGER)
    );
    assert_eq!(submit.reporting_instance.as_deref(), Some("adapter-test"));
    assert_eq!(submit.series.as_ref().map(|s| s.count), Some(2));
    let regarding = submit.regarding.as_ref().unwrap();
    assert_eq!(regarding.name.as_deref(), Some("evented"));
    assert_eq!(regarding.uid, fd.metadata.uid);
    assert_eq!(error.type_.as_deref(), Some("Warning"));
    assert_eq!(error.note.as_ref().map(|n| n.len()), Some(1000));
    // One by name, too.
    let name = submit.metadata.name.clone().unwrap();
    assert_eq!(
        v1.get(&name).await.unwrap().reason.as_deref(),
        Some("Submit")
    );

    // The same Events as core v1 shows them (`kubectl get events`).
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(s.client.clone(), "default");
    let listed = core
        .list(&ListParams::default().fields("involvedObject.name=evented"))
        .await
        .unwrap()
        .items;
    assert_eq!(listed.len(), 2);
    let submit = listed
        .iter()
        .find(|e| e.reason.as_deref() == Some("Submit"))
        .unwrap();
    assert_eq!(submit.message.as_deref(), Some("Starting deployment"));
    assert_eq!(
        submit.involved_object.kind.as_deref(),
        Some("FlinkDeployment")
    );
    drop(s.handle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_serve_the_operators_leader_election() {
    use flink_operator::leader::{LeaderElector, Timing};
    use futures::{StreamExt, TryStreamExt};

    use k8s_openapi::api::coordination::v1::Lease;
    use kube::api::{DeleteParams, WatchEvent, WatchParams};

    let s = server();
    let leases: Api<Lease> = Api::namespaced(s.client.clone(), "default");
    let mut changes = leases
        .watch(&WatchParams::default().timeout(10), "0")
        .await
        .expect("a watch")
        .boxed();

    // Two electors against one Lease, on a clock of the test's (epoch ms).
    let timing = Timing {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
    };
    let t0 = 1_800_000_000_000i64;
    let mut a = LeaderElector::new(s.client.clone(), "default", "op-lease", "op-a", timing);
    let mut b = LeaderElector::new(s.client.clone(), "default", "op-lease", "op-b", timing);
    a.try_acquire_or_renew(t0)
        .await
        .expect("a creates the lease");
    assert!(a.is_leader(t0));
    b.try_acquire_or_renew(t0 + 100).await.unwrap();
    assert!(!b.is_leader(t0 + 100), "a holds it");
    a.try_acquire_or_renew(t0 + 1_000).await.expect("a renews");
    let lease = leases.get("op-lease").await.unwrap();
    let spec = lease.spec.clone().unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("op-a"));
    assert_eq!(spec.lease_duration_seconds, Some(3));
    assert_eq!(spec.lease_transitions, Some(0));
    // a stops renewing: at 3 s past its last renewal b takes over, and a knows it is not
    // leading any more.
    b.try_acquire_or_renew(t0 + 3_999).await.unwrap();
    assert!(!b.is_leader(t0 + 3_999));
    b.try_acquire_or_renew(t0 + 4_000)
        .await
        .expect("b takes over");
    assert!(b.is_leader(t0 + 4_000));
    a.try_acquire_or_renew(t0 + 4_100).await.unwrap();
    assert!(!a.is_leader(t0 + 4_100));
    let spec = leases.get("op-lease").await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("op-b"));
    assert_eq!(spec.lease_transitions, Some(1));
    // Released on shutdown: a may take it at once.
    b.release().await;
    a.try_acquire_or_renew(t0 + 4_200)
        .await
        .expect("a takes it back");
    assert!(a.is_leader(t0 + 4_200));

    // A replace from a stale read is 409, so two replicas cannot both win a race.
    let mut stale = lease.clone();
    stale.spec.as_mut().unwrap().holder_identity = Some("op-c".into());
    match leases
        .replace("op-lease", &PostParams::default(), &stale)
        .await
    {
        Err(kube::Error::Api(e)) => assert_eq!((e.code, e.reason.as_str()), (409, "Conflict")),
        other => panic!("expected 409, got {other:?}"),
    }
    // Created twice: 409 AlreadyExists.
    let mut again = lease.clone();
    again.metadata.resource_version = None;
    match leases.create(&PostParams::default(), &again).await {
        Err(kube::Error::Api(e)) => {
            assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"))
        }
        other => panic!("expected 409, got {other:?}"),
    }
    let names: Vec<String> = leases
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|l| l.metadata.name.unwrap())
        .collect();
    assert_eq!(names, ["op-lease"]);
    leases
        .delete("op-lease", &DeleteParams::default())
        .await
        .unwrap();
    assert!(leases.get_opt("op-lease").await.unwrap().is_none());

    // The watch saw it all: created, renewed and taken over, deleted.
    let mut seen = Vec::new();
    while let Ok(Ok(Some(event))) =
        tokio::time::timeout(Duration::from_secs(10), changes.try_next()).await
    {
        match event {
            WatchEvent::Added(l) | WatchEvent::Modified(l) => {
                seen.push(l.spec.unwrap().holder_identity.unwrap_or_default())
            }
            WatchEvent::Deleted(_) => {
                seen.push("deleted".into());
                break;
            }
            _ => {}
        }
    }
    assert_eq!(seen.first().map(String::as_str), Some("op-a"), "{seen:?}");
    assert!(seen.contains(&"op-b".to_string()), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("deleted"), "{seen:?}");
    drop(s.handle);
}
