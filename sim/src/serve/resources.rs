//! The resource types the served API knows: a fixed set of built-in ones and whatever the
//! CustomResourceDefinitions in the store define; discovery documents and a minimal OpenAPI v3
//! built from them.

use serde_json::{json, Value};

use crate::kube::KubeStore;

pub const CRD_KIND: &str = "CustomResourceDefinition";

/// A printer column of a custom resource (`additionalPrinterColumns`).
#[derive(Clone, Debug, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

/// One served resource type (one group/version/plural).
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceType {
    /// `""` for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    /// Whether it has the `/status` subresource (writes to the main resource keep status).
    pub status: bool,
    /// Defined by a CustomResourceDefinition.
    pub custom: bool,
    /// Custom resources: the CRD's printer columns (Name comes first, always).
    pub columns: Vec<PrinterColumn>,
    /// Custom resources: the version's `openAPIV3Schema`, when asked for.
    pub schema: Option<Value>,
}

impl ResourceType {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `configmaps` or `flinkdeployments.flink.apache.org`, as error messages name it.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `FlinkDeployment.flink.apache.org`, as validation messages name it.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// The URL path of the collection (`namespace` for namespaced types, `None` = all).
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let root = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{root}/namespaces/{ns}/{}", self.plural),
            _ => format!("{root}/{}", self.plural),
        }
    }
}

fn builtin(
    group: &str,
    kind: &str,
    plural: &str,
    short: &[&str],
    namespaced: bool,
    status: bool,
    all: bool,
) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: if all { vec!["all".into()] } else { vec![] },
        namespaced,
        status,
        custom: false,
        columns: Vec::new(),
        schema: None,
    }
}

/// The built-in types: what the operator and the simulated cluster use, and what the CRDs need.
pub fn builtins() -> Vec<ResourceType> {
    vec![
        builtin("", "Namespace", "namespaces", &["ns"], false, true, false),
        builtin("", "ConfigMap", "configmaps", &["cm"], true, false, false),
        builtin("", "Service", "services", &["svc"], true, true, true),
        builtin("", "Pod", "pods", &["po"], true, true, true),
        builtin("", "Event", "events", &["ev"], true, false, false),
        builtin(
            "apps",
            "Deployment",
            "deployments",
            &["deploy"],
            true,
            true,
            true,
        ),
        builtin(
            "coordination.k8s.io",
            "Lease",
            "leases",
            &[],
            true,
            false,
            false,
        ),
        // The same Events as core v1's, in the version kube's Recorder writes (see `events`).
        builtin("events.k8s.io", "Event", "events", &[], true, false, false),
        builtin(
            "apiextensions.k8s.io",
            CRD_KIND,
            "customresourcedefinitions",
            &["crd", "crds"],
            false,
            true,
            false,
        ),
    ]
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The types one CRD defines: one per served version.
pub fn from_crd(crd: &Value, with_schema: bool) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let (Some(group), Some(kind), Some(plural)) = (
        spec["group"].as_str(),
        names["kind"].as_str(),
        names["plural"].as_str(),
    ) else {
        return Vec::new();
    };
    if crd["metadata"].get("deletionTimestamp").is_some() {
        return Vec::new();
    }
    spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .filter_map(|v| {
            let version = v["name"].as_str()?;
            let columns = v["additionalPrinterColumns"]
                .as_array()
                .map(|cols| {
                    cols.iter()
                        .map(|c| PrinterColumn {
                            name: c["name"].as_str().unwrap_or_default().to_string(),
                            type_: c["type"].as_str().unwrap_or("string").to_string(),
                            format: c["format"].as_str().unwrap_or_default().to_string(),
                            description: c["description"].as_str().unwrap_or_default().to_string(),
                            priority: c["priority"].as_i64().unwrap_or(0),
                            json_path: c["jsonPath"].as_str().unwrap_or_default().to_string(),
                        })
                        .collect()
                })
                // A CRD without printer columns shows its age, as the API server defaults it.
                .unwrap_or_else(|| {
                    vec![PrinterColumn {
                        name: "Age".into(),
                        type_: "date".into(),
                        format: String::new(),
                        description: String::new(),
                        priority: 0,
                        json_path: ".metadata.creationTimestamp".into(),
                    }]
                });
            Some(ResourceType {
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
                plural: plural.into(),
                singular: names["singular"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| kind.to_lowercase()),
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                namespaced: spec["scope"].as_str() != Some("Cluster"),
                status: v["subresources"].get("status").is_some(),
                custom: true,
                columns,
                schema: with_schema.then(|| v["schema"]["openAPIV3Schema"].clone()),
            })
        })
        .collect()
}

/// Every served type: the built-ins, then those of the CRDs in the store.
pub fn all_types(store: &KubeStore) -> Vec<ResourceType> {
    let mut out = builtins();
    for crd in store.list_all(CRD_KIND) {
        out.extend(from_crd(crd, false));
    }
    out
}

/// The type served at `group/version/plural`; for custom resources with the version's schema
/// when `with_schema` (it is large: only writes and the OpenAPI document need it).
pub fn lookup(
    store: &KubeStore,
    group: &str,
    version: &str,
    plural: &str,
    with_schema: bool,
) -> Option<ResourceType> {
    if let Some(rt) = builtins()
        .into_iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
    {
        return Some(rt);
    }
    store
        .list_all(CRD_KIND)
        .into_iter()
        .filter(|crd| crd["spec"]["group"] == group && crd["spec"]["names"]["plural"] == plural)
        .flat_map(|crd| from_crd(crd, with_schema))
        .find(|r| r.version == version)
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-flink-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

fn groups(types: &[ResourceType]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, versions)) => {
                if !versions.contains(&t.version) {
                    versions.push(t.version.clone());
                }
            }
            None => out.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    out
}

fn group_json(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)
    })
}

/// `/apis`.
pub fn group_list(types: &[ResourceType]) -> Value {
    let groups: Vec<Value> = groups(types)
        .iter()
        .map(|(g, vs)| group_json(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/GROUP`, if the group is served.
pub fn group(types: &[ResourceType], group: &str) -> Option<Value> {
    groups(types)
        .iter()
        .find(|(g, _)| g == group)
        .map(|(g, vs)| {
            let mut v = group_json(g, vs);
            v["kind"] = json!("APIGroup");
            v["apiVersion"] = json!("v1");
            v
        })
}

/// `/api/v1` or `/apis/GROUP/VERSION`, if served.
pub fn resource_list(types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let mine: Vec<&ResourceType> = types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if mine.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for t in mine {
        let mut r = json!({
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": VERBS,
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        resources.push(r);
        if t.status {
            resources.push(json!({
                "name": format!("{}/status", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources
    }))
}

/// `api/v1`, `apis/apps/v1`, ...: the OpenAPI v3 documents served.
fn openapi_paths(types: &[ResourceType]) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    for t in types {
        let path = if t.group.is_empty() {
            format!("api/{}", t.version)
        } else {
            format!("apis/{}/{}", t.group, t.version)
        };
        if !out.iter().any(|(p, _, _)| *p == path) {
            out.push((path, t.group.clone(), t.version.clone()));
        }
    }
    out
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// `/openapi/v3`: one document per group version. `stamp` changes whenever CRDs change, so
/// clients refetch (the hash is part of the URL they cache by).
pub fn openapi_root(types: &[ResourceType], stamp: &str) -> Value {
    let mut paths = serde_json::Map::new();
    for (path, group, version) in openapi_paths(types) {
        let names: Vec<String> = types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .map(|t| t.plural.clone())
            .collect();
        let hash = format!(
            "{:016X}",
            fnv(&format!("{stamp}/{path}/{}", names.join(",")))
        );
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
        );
    }
    json!({"paths": paths})
}

fn query_param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

/// The schema name of a custom resource's kind: `org.apache.flink.v1beta1.FlinkDeployment`.
fn schema_name(t: &ResourceType) -> String {
    let reversed: Vec<&str> = t.group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), t.version, t.kind)
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/GROUP/VERSION`: the operations with their
/// group-version-kind and parameters (kubectl checks that `fieldValidation` is supported here
/// before it leaves validation to the server), and the schemas of custom resources
/// (`kubectl explain`). Built-in types have no schema here. Patch bodies are listed without
/// the strategic merge type, so kubectl computes those patches from its compiled-in types.
pub fn openapi_doc(store: &KubeStore, group: &str, version: &str) -> Option<Value> {
    let types: Vec<ResourceType> = all_types(store)
        .into_iter()
        .filter(|t| t.group == group && t.version == version)
        .map(|t| {
            if t.custom {
                lookup(store, &t.group, &t.version, &t.plural, true).unwrap_or(t)
            } else {
                t
            }
        })
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for t in &types {
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let body = json!({"content": {
            "application/json-patch+json": {"schema": {"type": "object"}},
            "application/merge-patch+json": {"schema": {"type": "object"}},
            "application/apply-patch+yaml": {"schema": {"type": "object"}}
        }});
        let reference = if t.custom {
            json!({"$ref": format!("#/components/schemas/{}", schema_name(t))})
        } else {
            json!({"type": "object"})
        };
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}});
        let op = |action: &str, params: &[&str]| {
            json!({
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params.iter().map(|p| query_param(p)).collect::<Vec<_>>(),
                "responses": ok,
            })
        };
        let item = format!("{}/{{name}}", t.collection_path(Some("{namespace}")));
        let mut patch = op(
            "patch",
            &["dryRun", "fieldManager", "fieldValidation", "force"],
        );
        patch["requestBody"] = body.clone();
        let mut put = op("put", &["dryRun", "fieldManager", "fieldValidation"]);
        put["requestBody"] = json!({"content": {"application/json": {"schema": reference}}});
        paths.insert(
            item.clone(),
            json!({
                "get": op("get", &[]),
                "put": put,
                "patch": patch,
                "delete": op("delete", &["dryRun"]),
            }),
        );
        let mut post = op("post", &["dryRun", "fieldManager", "fieldValidation"]);
        post["requestBody"] = json!({"content": {"application/json": {"schema": reference}}});
        paths.insert(
            t.collection_path(Some("{namespace}")),
            json!({
                "get": op("list", &["labelSelector", "fieldSelector", "watch", "resourceVersion", "limit", "continue", "timeoutSeconds"]),
                "post": post,
            }),
        );
        if t.status {
            let mut patch = op(
                "patch",
                &["dryRun", "fieldManager", "fieldValidation", "force"],
            );
            patch["requestBody"] = body;
            paths.insert(
                format!("{item}/status"),
                json!({"get": op("get", &[]), "put": op("put", &["dryRun", "fieldManager", "fieldValidation"]), "patch": patch}),
            );
        }
        if let Some(schema) = &t.schema {
            let mut schema = schema.clone();
            if let Some(props) = schema["properties"].as_object_mut() {
                for (field, text) in [
                    ("apiVersion", "APIVersion defines the versioned schema of this representation of an object."),
                    ("kind", "Kind is a string value representing the REST resource this object represents."),
                ] {
                    props
                        .entry(field)
                        .or_insert_with(|| json!({"type": "string", "description": text}));
                }
                props.entry("metadata").or_insert_with(
                    || json!({"type": "object", "description": "Standard object's metadata."}),
                );
            }
            schema["x-kubernetes-group-version-kind"] = json!([gvk]);
            schemas.insert(schema_name(t), schema);
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0-flink-sim"},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_types_carry_printer_columns_and_scope() {
        let crds = flink_operator::crd::crds();
        let crd = serde_json::to_value(&crds[0]).unwrap();
        let types = from_crd(&crd, true);
        assert_eq!(types.len(), 1);
        let t = &types[0];
        assert_eq!(t.kind, "FlinkDeployment");
        assert_eq!(t.plural, "flinkdeployments");
        assert!(t.namespaced && t.status && t.custom);
        assert_eq!(
            t.columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["Job Status", "Lifecycle State"]
        );
        assert!(t.schema.as_ref().unwrap()["properties"]["spec"].is_object());
        assert_eq!(schema_name(t), "org.apache.flink.v1beta1.FlinkDeployment");
    }
}
