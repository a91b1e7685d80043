//! The Kubernetes objects that make up a Flink cluster, built from the spec: the Flink
//! configuration ConfigMap, the JobManager Deployment and its Services, and in standalone
//! mode the TaskManager Deployment. (In native mode the JobManager creates TaskManager pods
//! itself, as Flink's native Kubernetes integration does.)

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::{json, Value};

use crate::config::{self, EffectiveConfig};
use crate::crd::{FlinkDeployment, FlinkDeploymentSpec, KubernetesDeploymentMode, Resource};

/// Annotation on the JobManager Deployment: the resource generation it was built from.
pub const GENERATION_ANNOTATION: &str = "flinkdeployment.flink.apache.org/generation";
pub const MAIN_CONTAINER: &str = "flink-main-container";
pub const MERGE_ARRAYS_BY_NAME: &str = "kubernetes.operator.pod-template.merge-arrays-by-name";

pub fn config_map_name(cluster_id: &str) -> String {
    format!("flink-config-{cluster_id}")
}
pub fn rest_service_name(cluster_id: &str) -> String {
    format!("{cluster_id}-rest")
}
pub fn taskmanager_deployment_name(cluster_id: &str) -> String {
    format!("{cluster_id}-taskmanager")
}
/// Selector of the HA ConfigMaps Flink's Kubernetes HA services write for a cluster.
pub fn ha_config_map_selector(cluster_id: &str) -> String {
    format!("app={cluster_id},configmap-type=high-availability")
}
pub fn jobmanager_pod_selector(cluster_id: &str) -> String {
    format!("app={cluster_id},component=jobmanager")
}

/// How the cluster should start: what the JobManager restores its job from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeployOptions {
    /// `execution.savepoint.path`: a savepoint or retained checkpoint to start the job from.
    pub savepoint_path: Option<String>,
    /// The job id to run the application's job with (kept across last-state upgrades).
    pub job_id: Option<String>,
    pub allow_non_restored_state: bool,
}

/// Everything `deploy` writes, in the order it writes it.
#[derive(Debug, Clone)]
pub struct ClusterObjects {
    pub config_map: ConfigMap,
    pub services: Vec<Service>,
    pub jobmanager: Deployment,
    pub taskmanager: Option<Deployment>,
}

fn owner_reference(fd: &FlinkDeployment) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: crate::crd::API_VERSION.to_string(),
        kind: "FlinkDeployment".to_string(),
        name: fd.metadata.name.clone()?,
        uid: fd.metadata.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

fn memory_of(
    resource: Option<&Resource>,
    reqs: Option<&k8s_openapi::api::core::v1::ResourceRequirements>,
) -> Option<String> {
    resource.and_then(|r| r.memory.clone()).or_else(|| {
        reqs.and_then(|r| {
            r.requests
                .as_ref()
                .and_then(|m| m.get("memory"))
                .or_else(|| r.limits.as_ref().and_then(|m| m.get("memory")))
                .map(|q| q.0.clone())
        })
    })
}

fn cpu_of(
    resource: Option<&Resource>,
    reqs: Option<&k8s_openapi::api::core::v1::ResourceRequirements>,
) -> Option<String> {
    resource
        .and_then(|r| r.cpu.map(|c| c.to_string()))
        .or_else(|| {
            reqs.and_then(|r| {
                r.requests
                    .as_ref()
                    .and_then(|m| m.get("cpu"))
                    .or_else(|| r.limits.as_ref().and_then(|m| m.get("cpu")))
                    .map(|q| q.0.clone())
            })
        })
}

/// The Flink configuration the cluster runs with: the user's, then what the spec implies,
/// then what the operator must control (cluster id, target, restore path, job id).
pub fn flink_configuration(
    namespace: &str,
    name: &str,
    spec: &FlinkDeploymentSpec,
    conf: &EffectiveConfig,
    options: &DeployOptions,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = conf
        .values()
        .iter()
        .filter(|(k, _)| !k.starts_with("kubernetes.operator."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let jm = spec.job_manager.as_ref();
    let tm = spec.task_manager.as_ref();
    if let Some(m) = memory_of(
        jm.and_then(|j| j.resource.as_ref()),
        jm.and_then(|j| j.resources.as_ref()),
    ) {
        out.entry("jobmanager.memory.process.size".into())
            .or_insert(m);
    }
    if let Some(m) = memory_of(
        tm.and_then(|t| t.resource.as_ref()),
        tm.and_then(|t| t.resources.as_ref()),
    ) {
        out.entry("taskmanager.memory.process.size".into())
            .or_insert(m);
    }
    if let Some(c) = cpu_of(
        jm.and_then(|j| j.resource.as_ref()),
        jm.and_then(|j| j.resources.as_ref()),
    ) {
        out.entry("kubernetes.jobmanager.cpu.amount".into())
            .or_insert(c);
    }
    if let Some(c) = cpu_of(
        tm.and_then(|t| t.resource.as_ref()),
        tm.and_then(|t| t.resources.as_ref()),
    ) {
        out.entry("kubernetes.taskmanager.cpu.amount".into())
            .or_insert(c);
    }
    out.insert("kubernetes.cluster-id".into(), name.to_string());
    out.insert("kubernetes.namespace".into(), namespace.to_string());
    if let Some(image) = &spec.image {
        out.insert("kubernetes.container.image.ref".into(), image.clone());
    }
    out.insert(
        "kubernetes.service-account".into(),
        spec.service_account_or_default().to_string(),
    );
    out.insert(
        "kubernetes.jobmanager.replicas".into(),
        jm.and_then(|j| j.replicas).unwrap_or(1).to_string(),
    );
    match &spec.job {
        Some(job) => {
            out.insert("execution.target".into(), "kubernetes-application".into());
            if let Some(jar) = &job.jar_uri {
                out.insert("pipeline.jars".into(), jar.clone());
            }
            if let Some(p) = job.parallelism.filter(|p| *p > 0) {
                out.insert("parallelism.default".into(), p.to_string());
            }
            if let Some(class) = &job.entry_class {
                out.insert("$internal.application.main".into(), class.clone());
            }
            if let Some(args) = &job.args {
                out.insert("$internal.application.program-args".into(), args.join(";"));
            }
            // The operator observes terminal jobs itself; the cluster must outlive its job.
            out.insert(
                "execution.shutdown-on-application-finish".into(),
                "false".into(),
            );
            if let Some(path) = &options.savepoint_path {
                out.insert(config::SAVEPOINT_PATH.into(), path.clone());
            }
            if options.allow_non_restored_state {
                out.insert(
                    "execution.savepoint.ignore-unclaimed-state".into(),
                    "true".into(),
                );
            }
            if let Some(id) = &options.job_id {
                out.insert(config::JOB_ID.into(), id.clone());
            }
        }
        None => {
            out.insert("execution.target".into(), "kubernetes-session".into());
        }
    }
    out
}

/// Merges `overlay` into `base` the way upstream merges pod templates: objects key by key,
/// arrays element by element (by position, or by `name` when configured), scalars replaced.
pub fn merge_json(base: &mut Value, overlay: &Value, arrays_by_name: bool) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) if !v.is_null() => merge_json(existing, v, arrays_by_name),
                    Some(_) => {}
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(o)) => {
            let named = |a: &Vec<Value>| {
                a.iter()
                    .all(|x| x.get("name").and_then(Value::as_str).is_some())
            };
            if arrays_by_name && named(b) && named(o) {
                for item in o {
                    let name = item.get("name").cloned();
                    match b.iter_mut().find(|x| x.get("name") == name.as_ref()) {
                        Some(existing) => merge_json(existing, item, arrays_by_name),
                        None => b.push(item.clone()),
                    }
                }
            } else {
                for (i, item) in o.iter().enumerate() {
                    if i < b.len() {
                        merge_json(&mut b[i], item, arrays_by_name);
                    } else {
                        b.push(item.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn pod_template_value(pod: Option<&Pod>) -> Value {
    pod.map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
        .filter(|v| v.is_object())
        .unwrap_or_else(|| json!({}))
}

/// The pod template for one component: the shared template, then the component's own.
pub fn merged_pod_template(
    base: Option<&Pod>,
    component: Option<&Pod>,
    arrays_by_name: bool,
) -> Value {
    let mut merged = pod_template_value(base);
    merge_json(&mut merged, &pod_template_value(component), arrays_by_name);
    merged
}

fn resources_value(
    resource: Option<&Resource>,
    reqs: Option<&k8s_openapi::api::core::v1::ResourceRequirements>,
) -> Value {
    if let Some(r) = reqs {
        return serde_json::to_value(r).unwrap_or_else(|_| json!({}));
    }
    let mut requests = serde_json::Map::new();
    if let Some(r) = resource {
        if let Some(cpu) = r.cpu {
            requests.insert("cpu".into(), json!(cpu.to_string()));
        }
        if let Some(m) = &r.memory {
            requests.insert("memory".into(), json!(m));
        }
        if let Some(e) = &r.ephemeral_storage {
            requests.insert("ephemeral-storage".into(), json!(e));
        }
    }
    json!({"requests": requests.clone(), "limits": requests})
}

#[allow(clippy::too_many_arguments)]
fn component_deployment(
    fd: &FlinkDeployment,
    spec: &FlinkDeploymentSpec,
    conf: &EffectiveConfig,
    component: &str,
    deployment_name: &str,
    replicas: i32,
    template: Value,
    resources: Value,
    args: Vec<&str>,
) -> Deployment {
    let ns = fd.metadata.namespace.clone().unwrap_or_default();
    let name = fd.metadata.name.clone().unwrap_or_default();
    let arrays_by_name = conf
        .get(MERGE_ARRAYS_BY_NAME)
        .map(|v| v.eq_ignore_ascii_case("true"))
        .unwrap_or(false);
    let labels = json!({"app": name, "component": component, "type": "flink-native-kubernetes"});
    let generated = json!({
        "metadata": {"labels": labels},
        "spec": {
            "serviceAccountName": spec.service_account_or_default(),
            "containers": [{
                "name": MAIN_CONTAINER,
                "image": spec.image.clone().unwrap_or_else(|| "flink".to_string()),
                "imagePullPolicy": spec.image_pull_policy.clone().unwrap_or_else(|| "IfNotPresent".to_string()),
                "args": args,
                "resources": resources,
                "ports": [{"name": "rest", "containerPort": conf.rest_port()}],
                "volumeMounts": [{"name": "flink-config-volume", "mountPath": "/opt/flink/conf"}]
            }],
            "volumes": [{"name": "flink-config-volume", "configMap": {"name": config_map_name(&name)}}]
        }
    });
    // The user's template is the base; the operator's generated parts go on top, and the
    // main container is found by name so user sidecars and mounts survive.
    let mut pod = template;
    merge_main_container(&mut pod, &generated, arrays_by_name);
    let mut annotations = serde_json::Map::new();
    if let Some(g) = fd.metadata.generation {
        annotations.insert(GENERATION_ANNOTATION.into(), json!(g.to_string()));
    }
    let value = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name,
            "namespace": ns,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": owner_reference(fd).map(|o| vec![o]).unwrap_or_default(),
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "Recreate"},
            "template": pod,
        }
    });
    serde_json::from_value(value).expect("generated Deployment is well-formed")
}

/// Puts the generated main container, volumes and labels into the user's pod template.
fn merge_main_container(pod: &mut Value, generated: &Value, arrays_by_name: bool) {
    let _ = arrays_by_name;
    let obj = pod.as_object_mut().expect("pod template is an object");
    obj.remove("apiVersion");
    obj.remove("kind");
    obj.remove("status");
    let meta = obj.entry("metadata").or_insert_with(|| json!({}));
    merge_json(meta, &generated["metadata"], true);
    let spec = obj.entry("spec").or_insert_with(|| json!({}));
    let spec_obj = spec.as_object_mut().expect("pod spec is an object");
    spec_obj
        .entry("serviceAccountName")
        .or_insert_with(|| generated["spec"]["serviceAccountName"].clone());
    let containers = spec_obj.entry("containers").or_insert_with(|| json!([]));
    merge_json(containers, &generated["spec"]["containers"], true);
    // The main container comes first, as Flink places it.
    if let Some(list) = containers.as_array_mut() {
        if let Some(pos) = list.iter().position(|c| c["name"] == MAIN_CONTAINER) {
            let main = list.remove(pos);
            list.insert(0, main);
        }
    }
    let volumes = spec_obj.entry("volumes").or_insert_with(|| json!([]));
    merge_json(volumes, &generated["spec"]["volumes"], true);
}

/// Builds every object of the cluster for `fd` with the given restore options.
pub fn build(
    fd: &FlinkDeployment,
    spec: &FlinkDeploymentSpec,
    conf: &EffectiveConfig,
    options: &DeployOptions,
) -> ClusterObjects {
    let ns = fd.metadata.namespace.clone().unwrap_or_default();
    let name = fd.metadata.name.clone().unwrap_or_default();
    let owner = owner_reference(fd).map(|o| vec![o]);
    let flink_conf = flink_configuration(&ns, &name, spec, conf, options);
    let conf_text: String = flink_conf
        .iter()
        .map(|(k, v)| format!("{k}: {v}\n"))
        .collect();
    let mut data = BTreeMap::new();
    data.insert("config.yaml".to_string(), conf_text);
    if let Some(logs) = &spec.log_configuration {
        for (k, v) in logs {
            data.insert(k.clone(), v.clone());
        }
    }
    let config_map: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": config_map_name(&name), "namespace": ns,
                     "labels": {"app": name, "type": "flink-native-kubernetes"},
                     "ownerReferences": owner.clone().unwrap_or_default()},
        "data": data,
    }))
    .expect("generated ConfigMap is well-formed");
    let rest_port = conf.rest_port();
    let selector =
        json!({"app": name, "component": "jobmanager", "type": "flink-native-kubernetes"});
    let services: Vec<Service> = vec![
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": ns, "labels": {"app": name, "type": "flink-native-kubernetes"},
                            "ownerReferences": owner.clone().unwrap_or_default()},
               "spec": {"clusterIP": "None", "selector": selector,
                        "ports": [{"name": "jobmanager-rpc", "port": 6123}, {"name": "blobserver", "port": 6124}]}}),
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": rest_service_name(&name), "namespace": ns, "labels": {"app": name, "type": "flink-native-kubernetes"},
                            "ownerReferences": owner.clone().unwrap_or_default()},
               "spec": {"type": "ClusterIP", "selector": selector,
                        "ports": [{"name": "rest", "port": rest_port, "targetPort": rest_port}]}}),
    ]
    .into_iter()
    .map(|v| serde_json::from_value(v).expect("generated Service is well-formed"))
    .collect();
    let arrays_by_name = conf
        .get(MERGE_ARRAYS_BY_NAME)
        .map(|v| v.eq_ignore_ascii_case("true"))
        .unwrap_or(false);
    let jm = spec.job_manager.as_ref();
    let tm = spec.task_manager.as_ref();
    let jm_template = merged_pod_template(
        spec.pod_template.as_deref(),
        jm.and_then(|j| j.pod_template.as_deref()),
        arrays_by_name,
    );
    // The container entrypoints Flink's image knows: native clusters start through
    // kubernetes-jobmanager.sh, standalone ones through the plain role names.
    let standalone = spec.mode == Some(KubernetesDeploymentMode::Standalone);
    let jm_args = match (standalone, spec.job.is_some()) {
        (false, true) => vec!["kubernetes-jobmanager.sh", "kubernetes-application"],
        (false, false) => vec!["kubernetes-jobmanager.sh", "kubernetes-session"],
        (true, true) => vec!["standalone-job"],
        (true, false) => vec!["jobmanager"],
    };
    let jobmanager = component_deployment(
        fd,
        spec,
        conf,
        "jobmanager",
        &name,
        jm.and_then(|j| j.replicas).unwrap_or(1),
        jm_template,
        resources_value(
            jm.and_then(|j| j.resource.as_ref()),
            jm.and_then(|j| j.resources.as_ref()),
        ),
        jm_args,
    );
    let taskmanager = (spec.mode == Some(KubernetesDeploymentMode::Standalone)).then(|| {
        let tm_template = merged_pod_template(
            spec.pod_template.as_deref(),
            tm.and_then(|t| t.pod_template.as_deref()),
            arrays_by_name,
        );
        component_deployment(
            fd,
            spec,
            conf,
            "taskmanager",
            &taskmanager_deployment_name(&name),
            taskmanager_replicas(spec, conf),
            tm_template,
            resources_value(
                tm.and_then(|t| t.resource.as_ref()),
                tm.and_then(|t| t.resources.as_ref()),
            ),
            vec!["taskmanager"],
        )
    });
    ClusterObjects {
        config_map,
        services,
        jobmanager,
        taskmanager,
    }
}

/// TaskManagers needed: the explicit replica count, else parallelism over slots.
pub fn taskmanager_replicas(spec: &FlinkDeploymentSpec, conf: &EffectiveConfig) -> i32 {
    if let Some(r) = spec.task_manager.as_ref().and_then(|t| t.replicas) {
        return r;
    }
    let slots: i32 = conf
        .get("taskmanager.numberOfTaskSlots")
        .and_then(|v| v.parse().ok())
        .filter(|s| *s > 0)
        .unwrap_or(1);
    let parallelism = spec
        .job
        .as_ref()
        .and_then(|j| j.parallelism)
        .unwrap_or(1)
        .max(1);
    (parallelism + slots - 1) / slots
}
