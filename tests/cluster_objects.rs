//! The Kubernetes objects built for each upstream example FlinkDeployment, as snapshots:
//! a change to what the operator would create shows up in review.

use std::path::Path;

use flink_operator::cluster::{self, DeployOptions};
use flink_operator::config::EffectiveConfig;
use flink_operator::crd::FlinkDeployment;

fn examples() -> Vec<(String, FlinkDeployment)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
        for doc in docs {
            if doc["kind"] == "FlinkDeployment" {
                let mut fd: FlinkDeployment = serde_json::from_value(doc).unwrap();
                fd.metadata.namespace = Some("default".into());
                fd.metadata.uid = Some("00000000-0000-4000-8000-000000000001".into());
                fd.metadata.generation = Some(1);
                let name = file.file_stem().unwrap().to_string_lossy().to_string();
                out.push((name, fd));
            }
        }
    }
    out
}

#[test]
fn objects_built_for_each_example() {
    let all = examples();
    assert!(
        all.len() >= 6,
        "expected the upstream examples, found {}",
        all.len()
    );
    for (name, fd) in all {
        let own = fd
            .spec
            .flink_configuration
            .as_ref()
            .map(|c| c.flatten())
            .unwrap_or_default();
        let conf = EffectiveConfig::new(&Default::default(), &own);
        let options = DeployOptions {
            savepoint_path: None,
            job_id: fd
                .spec
                .job
                .as_ref()
                .map(|_| "00000000000000000000000000000001".to_string()),
            allow_non_restored_state: false,
        };
        let objects = cluster::build(&fd, &fd.spec, &conf, &options);
        let mut docs = vec![serde_json::to_value(&objects.config_map).unwrap()];
        docs.extend(
            objects
                .services
                .iter()
                .map(|s| serde_json::to_value(s).unwrap()),
        );
        docs.push(serde_json::to_value(&objects.jobmanager).unwrap());
        if let Some(tm) = &objects.taskmanager {
            docs.push(serde_json::to_value(tm).unwrap());
        }
        insta::assert_yaml_snapshot!(format!("objects-{name}"), docs);
    }
}

#[test]
fn pod_templates_merge_base_then_component() {
    let fd: FlinkDeployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
        "metadata": {"name": "m", "namespace": "default", "uid": "u"},
        "spec": {
            "image": "flink:2.3", "flinkVersion": "v2_3",
            "podTemplate": {"spec": {"containers": [{"name": "flink-main-container", "env": [{"name": "A", "value": "base"}]}],
                                      "nodeSelector": {"pool": "flink"}}},
            "jobManager": {"resource": {"memory": "1g", "cpu": 1},
                           "podTemplate": {"spec": {"containers": [{"name": "flink-main-container", "env": [{"name": "A", "value": "jm"}]}]}}},
            "taskManager": {"resource": {"memory": "1g", "cpu": 1}},
            "job": {"jarURI": "local:///j.jar", "parallelism": 1}
        }
    }))
    .unwrap();
    let objects = cluster::build(
        &fd,
        &fd.spec,
        &EffectiveConfig::default(),
        &DeployOptions::default(),
    );
    let pod = serde_json::to_value(&objects.jobmanager.spec.unwrap().template).unwrap();
    assert_eq!(
        pod["spec"]["nodeSelector"]["pool"], "flink",
        "base template kept"
    );
    let main = &pod["spec"]["containers"][0];
    assert_eq!(main["name"], "flink-main-container");
    assert_eq!(
        main["env"][0]["value"], "jm",
        "component template wins over base"
    );
    assert_eq!(main["image"], "flink:2.3");
    assert_eq!(
        pod["spec"]["serviceAccountName"], "flink",
        "default service account"
    );
}
