//! The Helm chart (`deploy/helm/flink-operator`) and the plain manifests rendered from it
//! (`deploy/manifests/flink-operator.yaml`).
//!
//! The templates are rendered by Helm's own engine through `ci/render-chart.sh` (Helm's Go SDK
//! from PyPI, installed into a cache on first use), so every check here is on what `helm
//! install` would send to the API server. The RBAC tables below are the reference: each entry
//! names the call that needs it, and the chart grants exactly those (apiGroup, resource, verb)
//! triples, nothing missing and nothing more.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};

const RELEASE: &str = "flink-operator";
const NAMESPACE: &str = "flink-operator";
const CHART: &str = "deploy/helm/flink-operator";
const MANIFESTS: &str = "deploy/manifests/flink-operator.yaml";

/// One permission and the call that needs it. Method names in backquotes are `KubeClient`'s
/// (src/adapters/kube.rs); the test checks they exist and that every one is listed.
struct Grant {
    group: &'static str,
    resource: &'static str,
    verb: &'static str,
    why: &'static str,
}

const fn grant(
    group: &'static str,
    resource: &'static str,
    verb: &'static str,
    why: &'static str,
) -> Grant {
    Grant {
        group,
        resource,
        verb,
        why,
    }
}

const FLINK: &str = "flink.apache.org";

/// What the operator does in the namespaces it watches (a ClusterRole when it watches all).
const OPERATOR: &[Grant] = &[
    // Custom resources.
    grant(FLINK, "flinkdeployments", "get", "`get_flink_deployment` (Api::get_opt); the webhook reads a session job's cluster with it"),
    grant(FLINK, "flinkdeployments", "list", "the FlinkDeployment watch in operator.rs (a watcher lists first)"),
    grant(FLINK, "flinkdeployments", "watch", "the FlinkDeployment watch in operator.rs"),
    grant(FLINK, "flinkdeployments", "patch", "`set_flink_deployment_finalizers` (a merge patch of metadata.finalizers)"),
    grant(FLINK, "flinkdeployments/status", "update", "`update_flink_deployment_status` (Api::replace_status, a PUT of the status subresource)"),
    grant(FLINK, "flinkdeployments/finalizers", "update", "the cluster's Deployments, Services and ConfigMaps carry an ownerReference to their FlinkDeployment with blockOwnerDeletion (cluster.rs); the OwnerReferencesPermissionEnforcement admission plugin requires this"),
    grant(FLINK, "flinksessionjobs", "get", "`get_session_job` (Api::get_opt)"),
    grant(FLINK, "flinksessionjobs", "list", "`list_session_jobs` (Api::list) and the FlinkSessionJob watch in operator.rs"),
    grant(FLINK, "flinksessionjobs", "watch", "the FlinkSessionJob watch in operator.rs"),
    grant(FLINK, "flinksessionjobs", "patch", "`set_session_job_finalizers` (a merge patch of metadata.finalizers)"),
    grant(FLINK, "flinksessionjobs/status", "update", "`update_session_job_status` (Api::replace_status)"),
    // The Flink cluster's objects.
    grant("apps", "deployments", "get", "`get_deployment` (Api::get_opt)"),
    grant("apps", "deployments", "list", "the JobManager Deployment watch in operator.rs (label type=flink-native-kubernetes)"),
    grant("apps", "deployments", "watch", "the JobManager Deployment watch in operator.rs"),
    grant("apps", "deployments", "patch", "`apply_deployment` (server-side apply is a PATCH)"),
    grant("apps", "deployments", "create", "`apply_deployment`: an apply that creates the object is authorized as create as well"),
    grant("apps", "deployments", "delete", "`delete_deployment`"),
    grant("", "services", "patch", "`apply_service` (server-side apply)"),
    grant("", "services", "create", "`apply_service` when the Service does not exist yet"),
    grant("", "services", "delete", "`delete_service`"),
    grant("", "configmaps", "patch", "`apply_config_map` (server-side apply)"),
    grant("", "configmaps", "create", "`apply_config_map` when the ConfigMap does not exist yet"),
    grant("", "configmaps", "list", "`list_config_maps` (Api::list with a label selector)"),
    grant("", "configmaps", "delete", "`delete_config_map`"),
    grant("", "pods", "list", "`list_pods` (Api::list with a label selector)"),
    // Events about the custom resources, in their namespace.
    grant("events.k8s.io", "events", "create", "`publish_event`: kube's Recorder creates an event the first time"),
    grant("events.k8s.io", "events", "patch", "`publish_event`: a repeat is a merge patch of the event's series"),
];

/// Leader election, in the operator's own namespace (src/leader.rs).
const LEASE: &[Grant] = &[
    grant(
        "coordination.k8s.io",
        "leases",
        "create",
        "LeaderElector makes the Lease when there is none (Api::create; cannot be limited by name)",
    ),
    grant(
        "coordination.k8s.io",
        "leases",
        "get",
        "LeaderElector reads the Lease every retry period (Api::get_opt), this name only",
    ),
    grant(
        "coordination.k8s.io",
        "leases",
        "update",
        "LeaderElector renews, takes over and releases it (Api::replace), this name only",
    ),
];

/// What Flink's JobManager needs in native Kubernetes mode, as upstream's chart grants it (all
/// verbs): TaskManager pods; HA, leader and config ConfigMaps (cleaned up by label, hence
/// deletecollection); its own Deployment, owner of the TaskManager pods (blockOwnerDeletion:
/// deployments/finalizers) and deleted when an application finishes.
const JOB_RESOURCES: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "configmaps"),
    ("apps", "deployments"),
    ("apps", "deployments/finalizers"),
];
const JOB_VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

type Triple = (String, String, String);

fn triples(grants: &[Grant]) -> BTreeSet<Triple> {
    grants
        .iter()
        .map(|g| (g.group.into(), g.resource.into(), g.verb.into()))
        .collect()
}

fn job_triples() -> BTreeSet<Triple> {
    JOB_RESOURCES
        .iter()
        .flat_map(|(group, resource)| {
            JOB_VERBS
                .iter()
                .map(move |verb| (group.to_string(), resource.to_string(), verb.to_string()))
        })
        .collect()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    let path = root().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `ci/render-chart.sh ARGS...` (the release `flink-operator` in namespace `flink-operator`).
fn render_chart(args: &[String]) -> Result<String, String> {
    let out = Command::new("bash")
        .arg(root().join("ci/render-chart.sh"))
        .args(args)
        .env("RELEASE", RELEASE)
        .env("NAMESPACE", NAMESPACE)
        .output()
        .expect("bash runs");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).expect("UTF-8"))
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Values: a file in the chart's ci/ folder (`ci/x-values.yaml`) or an inline JSON object.
fn values_arg(v: &Value) -> String {
    match v {
        Value::String(file) => root().join(CHART).join(file).display().to_string(),
        other => other.to_string(),
    }
}

fn template_text(values: &[Value]) -> Result<String, String> {
    let mut args = vec!["template".to_string()];
    args.extend(values.iter().map(values_arg));
    render_chart(&args)
}

fn parse_docs(text: &str, what: &str) -> Vec<Value> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn template(values: &[Value]) -> Vec<Value> {
    let text = template_text(values).unwrap_or_else(|e| panic!("rendering {values:?}: {e}"));
    let docs = parse_docs(&text, "rendered chart");
    assert!(!docs.is_empty(), "{values:?} rendered nothing");
    docs
}

fn default_render() -> &'static [Value] {
    static DOCS: OnceLock<Vec<Value>> = OnceLock::new();
    DOCS.get_or_init(|| template(&[]))
}

fn all<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = all(docs, kind);
    assert_eq!(found.len(), 1, "one {kind} expected, found {}", found.len());
    found[0]
}

fn named<'a>(docs: &'a [Value], kind: &str, namespace: Option<&str>, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| {
            d["kind"] == kind
                && d["metadata"]["name"] == name
                && d["metadata"]["namespace"].as_str() == namespace
        })
        .unwrap_or_else(|| panic!("no {kind} {namespace:?}/{name}"))
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A Role's or ClusterRole's rules as (apiGroup, resource, verb), with the resourceNames each
/// triple is limited to (empty: any). Wildcards are refused outright.
fn rules(role: &Value) -> BTreeMap<Triple, Vec<String>> {
    let mut out = BTreeMap::new();
    for rule in role["rules"].as_array().expect("rules") {
        for group in strs(&rule["apiGroups"]) {
            for resource in strs(&rule["resources"]) {
                for verb in strs(&rule["verbs"]) {
                    for s in [group, resource, verb] {
                        assert!(!s.contains('*'), "a wildcard in {rule}");
                    }
                    let names: Vec<String> = strs(&rule["resourceNames"])
                        .into_iter()
                        .map(String::from)
                        .collect();
                    let key = (group.into(), resource.into(), verb.into());
                    assert!(
                        out.insert(key, names).is_none(),
                        "granted twice: {group} {resource} {verb}"
                    );
                }
            }
        }
    }
    out
}

fn granted(role: &Value) -> BTreeSet<Triple> {
    rules(role).into_keys().collect()
}

fn assert_grants(role: &Value, expected: &BTreeSet<Triple>) {
    let got = granted(role);
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} {}: missing {missing:?}, beyond the table {extra:?}",
        role["kind"],
        role["metadata"]["name"]
    );
}

/// The binding of `role` names it and binds exactly `account` (in `account_namespace`).
fn assert_bound(docs: &[Value], role: &Value, account: &str, account_namespace: &str) {
    let binding_kind = format!("{}Binding", role["kind"].as_str().unwrap());
    let namespace = role["metadata"]["namespace"].as_str();
    let role_name = role["metadata"]["name"].as_str().unwrap();
    let bindings: Vec<&Value> = all(docs, &binding_kind)
        .into_iter()
        .filter(|b| {
            b["metadata"]["namespace"].as_str() == namespace && b["roleRef"]["name"] == role_name
        })
        .collect();
    assert_eq!(
        bindings.len(),
        1,
        "one binding of {role_name} in {namespace:?}"
    );
    assert_eq!(bindings[0]["roleRef"]["kind"], role["kind"]);
    assert_eq!(
        bindings[0]["subjects"],
        json!([{"kind": "ServiceAccount", "name": account, "namespace": account_namespace}])
    );
}

fn deployment(docs: &[Value]) -> &Value {
    named(docs, "Deployment", Some(NAMESPACE), RELEASE)
}

fn container(docs: &[Value]) -> &Value {
    let containers = &deployment(docs)["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().map(Vec::len), Some(1));
    &containers[0]
}

fn args(docs: &[Value]) -> Vec<String> {
    strs(&container(docs)["args"])
        .into_iter()
        .map(String::from)
        .collect()
}

/// The value after `flag` in the container's arguments.
fn flag(docs: &[Value], flag: &str) -> Option<String> {
    let args = args(docs);
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).cloned()
}

/// The operator configuration the chart mounts, as `flink-operator run --config` reads it.
fn operator_config(docs: &[Value]) -> BTreeMap<String, String> {
    let path = flag(docs, "--config").expect("--config");
    let (dir, file) = path.rsplit_once('/').expect("an absolute path");
    let pod = &deployment(docs)["spec"]["template"]["spec"];
    let mount = container(docs)["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == dir)
        .unwrap_or_else(|| panic!("nothing mounted at {dir}"));
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume");
    let config_map = volume["configMap"]["name"].as_str().expect("a ConfigMap");
    let text = named(docs, "ConfigMap", Some(NAMESPACE), config_map)["data"][file]
        .as_str()
        .unwrap_or_else(|| panic!("{config_map} has no {file}"));
    let tmp = std::env::temp_dir().join(format!(
        "helm-chart-config-{}-{:?}.yaml",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, text).unwrap();
    let config = flink_operator::operator::read_config(tmp.to_str().unwrap());
    let _ = std::fs::remove_file(&tmp);
    config.unwrap_or_else(|e| panic!("the operator cannot read {file}: {e}"))
}

fn volume_mounted_at<'a>(docs: &'a [Value], path: &str) -> &'a Value {
    let mount = container(docs)["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == path)
        .unwrap_or_else(|| panic!("nothing mounted at {path}"));
    deployment(docs)["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume")
}

fn container_port(docs: &[Value], name: &str) -> i64 {
    container(docs)["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_i64())
        .unwrap_or_else(|| panic!("no container port {name}"))
}

/// The `impl KubeApi for KubeClient` methods of src/adapters/kube.rs.
fn adapter_methods() -> BTreeSet<String> {
    let text = read("src/adapters/kube.rs");
    let start = text
        .find("impl KubeApi for KubeClient")
        .expect("impl KubeApi for KubeClient");
    let body_start = start + text[start..].find('{').unwrap();
    let mut depth = 0;
    let mut end = text.len();
    for (i, c) in text[body_start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    end = body_start + i;
                    break;
                }
            }
            _ => {}
        }
    }
    text[body_start..end]
        .split("async fn ")
        .skip(1)
        .map(|s| s.split('(').next().unwrap().trim().to_string())
        .collect()
}

fn backquoted(s: &str) -> impl Iterator<Item = &str> {
    s.split('`').skip(1).step_by(2)
}

#[test]
fn the_rbac_table_names_every_kubernetes_call_of_the_adapter() {
    let methods = adapter_methods();
    assert!(methods.len() >= 10, "found {methods:?}");
    let cited: BTreeSet<&str> = OPERATOR.iter().flat_map(|g| backquoted(g.why)).collect();
    for m in &methods {
        assert!(
            cited.contains(m.as_str()),
            "KubeClient::{m} is in no RBAC table entry: add what it needs to OPERATOR (and the chart)"
        );
    }
    for c in &cited {
        assert!(
            methods.contains(*c),
            "the table cites `{c}`, which KubeClient does not have"
        );
    }
    // The watches of operator.rs: FlinkDeployment, FlinkSessionJob, and JobManager Deployments.
    let operator = read("src/operator.rs");
    assert!(operator.contains("watcher::watcher("));
    for kind in [
        "\"FlinkDeployment\"",
        "\"FlinkSessionJob\"",
        "apps::v1::Deployment",
    ] {
        assert!(
            operator.contains(kind),
            "operator.rs no longer watches {kind}"
        );
    }
}

#[test]
fn the_chart_ships_the_crds_the_operator_prints() {
    let path = format!("{CHART}/crds/flink-operator-crds.yaml");
    assert!(
        read(&path) == flink_operator::crd::crds_yaml(),
        "{path} is not what `flink-operator crd` prints: run ci/render-chart.sh"
    );
}

#[test]
fn every_yaml_file_in_deploy_parses() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            // Helm templates are Go templates, checked by rendering them.
            if path.is_dir() && path.file_name().unwrap() != "templates" {
                walk(&path, out);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("deploy"), &mut files);
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let docs = parse_docs(&text, &file.display().to_string());
        assert!(!docs.is_empty(), "{}: no document", file.display());
        if file.starts_with(root().join("deploy/manifests")) || file.ends_with("crds.yaml") {
            for doc in docs {
                assert!(
                    doc["apiVersion"].is_string()
                        && doc["kind"].is_string()
                        && doc["metadata"]["name"].is_string(),
                    "{}: a document without apiVersion, kind or name",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn the_plain_manifests_are_the_chart_rendered_with_default_values() {
    let committed = read(MANIFESTS);
    // After the header comment, exactly what the chart renders.
    let body = committed
        .find("\n---\n")
        .map(|at| &committed[at + 1..])
        .expect("documents");
    assert!(
        body == template_text(&[]).unwrap(),
        "{MANIFESTS} is not the chart rendered with its default values: run ci/render-chart.sh"
    );
}

#[test]
fn helm_lint_passes_for_the_default_and_example_values() {
    for values in [
        None,
        Some("ci/namespaced-values.yaml"),
        Some("ci/secret-tls-values.yaml"),
        Some("ci/service-monitor-values.yaml"),
        Some("ci/single-replica-values.yaml"),
    ] {
        let mut args = vec!["lint".to_string()];
        args.extend(values.map(|v| values_arg(&json!(v))));
        if let Err(e) = render_chart(&args) {
            panic!("helm lint with {values:?}: {e}");
        }
    }
}

#[test]
fn watching_all_namespaces_grants_the_table_cluster_wide() {
    let docs = default_render();
    let account = deployment(docs)["spec"]["template"]["spec"]["serviceAccountName"]
        .as_str()
        .unwrap();
    named(docs, "ServiceAccount", Some(NAMESPACE), account);

    let cluster_role = one(docs, "ClusterRole");
    assert_grants(cluster_role, &triples(OPERATOR));
    assert!(rules(cluster_role).values().all(Vec::is_empty));
    assert_bound(docs, cluster_role, account, NAMESPACE);
    assert_eq!(all(docs, "ClusterRoleBinding").len(), 1);

    // Roles in the release namespace: the Lease, and the flink account's.
    let roles = all(docs, "Role");
    assert_eq!(roles.len(), 2, "{roles:?}");
    let lease = roles
        .iter()
        .find(|r| granted(r).iter().any(|(_, res, _)| res == "leases"))
        .expect("the leader-election Role");
    assert_grants(lease, &triples(LEASE));
    assert_bound(docs, lease, account, NAMESPACE);
    let lease_name =
        operator_config(docs)["kubernetes.operator.leader-election.lease-name"].clone();
    assert_eq!(lease_name, "flink-operator-lease");
    for (triple, names) in rules(lease) {
        let expected: Vec<String> = if triple.2 == "create" {
            vec![]
        } else {
            vec![lease_name.clone()]
        };
        assert_eq!(names, expected, "{triple:?}");
    }

    let job = roles
        .iter()
        .find(|r| r["metadata"]["name"] != lease["metadata"]["name"])
        .unwrap();
    assert_eq!(job["metadata"]["namespace"], NAMESPACE);
    assert_grants(job, &job_triples());
    assert_bound(docs, job, "flink", NAMESPACE);
    named(docs, "ServiceAccount", Some(NAMESPACE), "flink");
    // Running Flink clusters keep their account when the chart goes.
    assert_eq!(
        named(docs, "ServiceAccount", Some(NAMESPACE), "flink")["metadata"]["annotations"]
            ["helm.sh/resource-policy"],
        "keep"
    );
    assert!(!operator_config(docs).contains_key("kubernetes.operator.watched.namespaces"));
}

#[test]
fn watching_namespaces_grants_the_table_there_and_nothing_cluster_wide() {
    let docs = template(&[json!("ci/namespaced-values.yaml")]);
    assert!(all(&docs, "ClusterRole").is_empty());
    assert!(all(&docs, "ClusterRoleBinding").is_empty());
    let account = deployment(&docs)["spec"]["template"]["spec"]["serviceAccountName"]
        .as_str()
        .unwrap()
        .to_string();
    for namespace in ["team-a", "team-b"] {
        let operator = named(&docs, "Role", Some(namespace), RELEASE);
        assert_grants(operator, &triples(OPERATOR));
        assert_bound(&docs, operator, &account, NAMESPACE);
        let job = named(&docs, "Role", Some(namespace), "flink-operator-job");
        assert_grants(job, &job_triples());
        assert_bound(&docs, job, "flink", namespace);
        named(&docs, "ServiceAccount", Some(namespace), "flink");
    }
    // Only the Lease's Role besides, in the release namespace.
    let roles = all(&docs, "Role");
    assert_eq!(roles.len(), 5);
    let lease = named(
        &docs,
        "Role",
        Some(NAMESPACE),
        "flink-operator-leader-election",
    );
    assert_grants(lease, &triples(LEASE));
    assert_eq!(
        operator_config(&docs)["kubernetes.operator.watched.namespaces"],
        "team-a,team-b"
    );
    // The webhook is asked about the watched namespaces only.
    let webhook = &one(&docs, "ValidatingWebhookConfiguration")["webhooks"][0];
    assert_eq!(
        webhook["namespaceSelector"],
        json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                                     "values": ["team-a", "team-b"]}]})
    );
}

#[test]
fn the_operator_runs_non_root_with_probes_its_config_and_an_artifact_cache() {
    let docs = default_render();
    let deployment = deployment(docs);
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = container(docs);
    assert_eq!(args(docs)[0], "run");

    // Non-root, read-only, no capabilities.
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_ne!(pod["securityContext"]["runAsUser"], 0);
    let security = &container["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));

    // Probes on the metrics port, which is where --metrics-address serves.
    let port = container_port(docs, "metrics");
    assert_eq!(port, 8085);
    assert_eq!(
        flag(docs, "--metrics-address").as_deref(),
        Some("0.0.0.0:8085")
    );
    for (probe, path) in [
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/healthz"),
    ] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(get["port"], "metrics", "{probe}");
    }

    // --config names the mounted ConfigMap's config.yaml, which the operator can read.
    assert_eq!(
        flag(docs, "--config").as_deref(),
        Some("/opt/flink-operator/conf/config.yaml")
    );
    let config = operator_config(docs);
    assert_eq!(
        config["kubernetes.operator.leader-election.enabled"],
        "true"
    );
    assert_eq!(config["kubernetes.operator.reconcile.interval"], "15s");

    // Session-job jars go to an emptyDir where the configuration says.
    assert_eq!(
        config["kubernetes.operator.user.artifacts.base.dir"],
        "/opt/flink/artifacts"
    );
    assert!(volume_mounted_at(docs, "/opt/flink/artifacts")["emptyDir"].is_object());

    // Requests and limits.
    for (kind, resource) in [
        ("requests", "memory"),
        ("limits", "memory"),
        ("requests", "cpu"),
    ] {
        assert!(
            container["resources"][kind][resource].is_string(),
            "resources.{kind}.{resource}"
        );
    }

    // Every flag passed is one `flink-operator run` knows, and the pod's identity is given.
    let main = read("src/main.rs");
    for arg in args(docs).iter().filter(|a| a.starts_with("--")) {
        assert!(
            main.contains(&format!("\"{arg}\"")),
            "src/main.rs has no {arg}"
        );
    }
    let env: BTreeMap<&str, &Value> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e))
        .collect();
    for read_var in main.split("env::var(\"").skip(1) {
        let name = read_var.split('"').next().unwrap();
        if name.starts_with("POD_") {
            assert!(env.contains_key(name), "src/main.rs reads {name}: not set");
        }
    }
    assert_eq!(
        env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
}

#[test]
fn the_webhook_serves_validate_on_443_with_a_cert_manager_certificate() {
    let docs = default_render();
    let service = named(docs, "Service", Some(NAMESPACE), "flink-operator-webhook");
    let port = &service["spec"]["ports"][0];
    assert_eq!(port["port"], 443);
    assert_eq!(port["targetPort"], "webhook");
    assert_eq!(container_port(docs, "webhook"), 9443);
    assert_eq!(
        flag(docs, "--webhook-address").as_deref(),
        Some("0.0.0.0:9443")
    );
    // The Service reaches the operator's pods.
    let pod_labels = &deployment(docs)["spec"]["template"]["metadata"]["labels"];
    for (k, v) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&pod_labels[k], v);
    }

    let configuration = one(docs, "ValidatingWebhookConfiguration");
    let webhooks = configuration["webhooks"].as_array().unwrap();
    assert_eq!(webhooks.len(), 1);
    let webhook = &webhooks[0];
    assert_eq!(
        webhook["clientConfig"]["service"],
        json!({"name": "flink-operator-webhook", "namespace": NAMESPACE, "path": "/validate", "port": 443})
    );
    assert_eq!(
        webhook["rules"],
        json!([{"apiGroups": ["flink.apache.org"], "apiVersions": ["v1beta1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["flinkdeployments", "flinksessionjobs"], "scope": "Namespaced"}])
    );
    assert_eq!(webhook["sideEffects"], "None");
    assert_eq!(webhook["admissionReviewVersions"], json!(["v1"]));
    assert!(webhook.get("namespaceSelector").is_none());

    // cert-manager: a self-signed Issuer, a Certificate for the Service's names, its CA injected,
    // its Secret mounted where --webhook-cert and --webhook-key point.
    let certificate = one(docs, "Certificate");
    let certificate_name = certificate["metadata"]["name"].as_str().unwrap();
    assert_eq!(
        configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!("{NAMESPACE}/{certificate_name}")
    );
    assert!(strs(&certificate["spec"]["dnsNames"])
        .contains(&"flink-operator-webhook.flink-operator.svc"));
    let issuer = one(docs, "Issuer");
    assert_eq!(
        certificate["spec"]["issuerRef"]["name"],
        issuer["metadata"]["name"]
    );
    assert!(issuer["spec"]["selfSigned"].is_object());
    let secret = &certificate["spec"]["secretName"];
    let dir = "/opt/flink-operator/webhook-tls";
    assert_eq!(
        volume_mounted_at(docs, dir)["secret"]["secretName"],
        *secret
    );
    assert_eq!(flag(docs, "--webhook-cert"), Some(format!("{dir}/tls.crt")));
    assert_eq!(flag(docs, "--webhook-key"), Some(format!("{dir}/tls.key")));
}

#[test]
fn without_cert_manager_the_webhook_uses_the_given_secret_and_ca() {
    let docs = template(&[json!("ci/secret-tls-values.yaml")]);
    assert!(all(&docs, "Certificate").is_empty());
    assert!(all(&docs, "Issuer").is_empty());
    let configuration = one(&docs, "ValidatingWebhookConfiguration");
    assert!(configuration["metadata"].get("annotations").is_none());
    assert_eq!(
        configuration["webhooks"][0]["clientConfig"]["caBundle"],
        "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="
    );
    assert_eq!(
        volume_mounted_at(&docs, "/opt/flink-operator/webhook-tls")["secret"]["secretName"],
        "flink-operator-webhook-tls"
    );

    let no_cert_manager = json!({"webhook": {"certManager": {"enabled": false}}});
    let e = template_text(std::slice::from_ref(&no_cert_manager)).unwrap_err();
    assert!(e.contains("webhook.tls."), "{e}");
    let e = template_text(&[
        no_cert_manager,
        json!({"webhook": {"tls": {"secretName": "mine"}}}),
    ])
    .unwrap_err();
    assert!(e.contains("webhook.tls.caBundle is required"), "{e}");

    // No webhook at all: no Service, configuration, certificate, port or flags.
    let docs = template(&[json!({"webhook": {"enabled": false}})]);
    assert!(all(&docs, "ValidatingWebhookConfiguration").is_empty());
    assert!(all(&docs, "Certificate").is_empty());
    assert_eq!(all(&docs, "Service").len(), 0);
    assert!(flag(&docs, "--webhook-address").is_none());
}

#[test]
fn the_service_monitor_scrapes_the_metrics_port() {
    let docs = template(&[json!("ci/service-monitor-values.yaml")]);
    let monitor = one(&docs, "ServiceMonitor");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["path"], "/metrics");
    let service = named(&docs, "Service", Some(NAMESPACE), "flink-operator-metrics");
    let port = &service["spec"]["ports"][0];
    assert_eq!(endpoint["port"], port["name"]);
    assert_eq!(port["targetPort"], "metrics");
    let service_labels = &service["metadata"]["labels"];
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(
            &service_labels[k], v,
            "the ServiceMonitor selects the Service"
        );
    }
    // And not the webhook's Service.
    let webhook = named(&docs, "Service", Some(NAMESPACE), "flink-operator-webhook");
    assert_ne!(
        webhook["metadata"]["labels"]["app.kubernetes.io/component"],
        monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
    );
}

#[test]
fn several_replicas_need_leader_election() {
    let e = template_text(&[json!({"leaderElection": {"enabled": false}})]).unwrap_err();
    assert!(
        e.contains("replicas > 1 needs leaderElection.enabled"),
        "{e}"
    );

    let docs = template(&[json!("ci/single-replica-values.yaml")]);
    assert_eq!(deployment(&docs)["spec"]["replicas"], 1);
    assert_eq!(deployment(&docs)["spec"]["strategy"]["type"], "Recreate");
    assert!(all(&docs, "Role")
        .iter()
        .all(|r| !granted(r).iter().any(|(_, res, _)| res == "leases")));
    let config = operator_config(&docs);
    assert_eq!(
        config["kubernetes.operator.leader-election.enabled"],
        "false"
    );
    assert!(!config.contains_key("kubernetes.operator.leader-election.lease-name"));
}
