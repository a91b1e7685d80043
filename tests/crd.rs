//! The generated CRDs carry every property path, type, enum, printer column and subresource of
//! the upstream CRDs (`../shared/upstream-crds`), and are structural (what `kubectl apply` and
//! the API server's pruning need).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

const UPSTREAM: [(&str, &str); 2] = [
    (
        "FlinkDeployment",
        "flinkdeployments.flink.apache.org-v1.yml",
    ),
    (
        "FlinkSessionJob",
        "flinksessionjobs.flink.apache.org-v1.yml",
    ),
];

fn upstream(file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/upstream-crds")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Ours and upstream's CRD for each kind, as JSON.
fn pairs() -> Vec<(String, Value, Value)> {
    let ours: BTreeMap<String, Value> = flink_operator::crd::crds()
        .iter()
        .map(|c| (c.spec.names.kind.clone(), serde_json::to_value(c).unwrap()))
        .collect();
    assert_eq!(ours.len(), 2);
    UPSTREAM
        .iter()
        .map(|(kind, file)| {
            (
                kind.to_string(),
                ours.get(*kind)
                    .unwrap_or_else(|| panic!("no {kind} CRD"))
                    .clone(),
                upstream(file),
            )
        })
        .collect()
}

fn version(crd: &Value) -> &Value {
    &crd["spec"]["versions"][0]
}

fn root_schema(crd: &Value) -> &Value {
    &version(crd)["schema"]["openAPIV3Schema"]
}

/// Every schema node by path: `.spec.job.parallelism`, `[]` for array items, `{}` for map
/// values.
fn nodes<'a>(schema: &'a Value, at: &str, out: &mut BTreeMap<String, &'a Value>) {
    out.insert(at.to_string(), schema);
    if let Some(props) = schema["properties"].as_object() {
        for (k, v) in props {
            nodes(v, &format!("{at}.{k}"), out);
        }
    }
    if schema["items"].is_object() {
        nodes(&schema["items"], &format!("{at}[]"), out);
    }
    if schema["additionalProperties"].is_object() {
        nodes(&schema["additionalProperties"], &format!("{at}{{}}"), out);
    }
}

fn all_nodes(crd: &Value) -> BTreeMap<String, &Value> {
    let mut out = BTreeMap::new();
    nodes(root_schema(crd), "", &mut out);
    out
}

/// What a node admits: its type, or int-or-string, or anything (preserve-unknown, no type).
fn admits(node: &Value) -> String {
    if node["x-kubernetes-int-or-string"] == true {
        "int-or-string".to_string()
    } else if let Some(t) = node["type"].as_str() {
        t.to_string()
    } else if node["x-kubernetes-preserve-unknown-fields"] == true {
        "object".to_string()
    } else {
        "?".to_string()
    }
}

#[test]
fn every_upstream_property_path_is_generated() {
    for (kind, mine, theirs) in pairs() {
        let (m, t) = (all_nodes(&mine), all_nodes(&theirs));
        assert!(t.len() > 50, "{kind}: only {} upstream paths read", t.len());
        let missing: Vec<&String> = t.keys().filter(|p| !m.contains_key(*p)).collect();
        assert!(
            missing.is_empty(),
            "{kind}: {} upstream paths missing, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        for must in [
            ".spec.job.upgradeMode",
            ".spec.flinkConfiguration",
            ".status.jobStatus.state",
            ".status.reconciliationStatus.lastReconciledSpec",
        ] {
            assert!(m.contains_key(must), "{kind}: {must}");
        }
    }
}

#[test]
fn types_enums_and_free_form_places_match_upstream() {
    for (kind, mine, theirs) in pairs() {
        let (m, t) = (all_nodes(&mine), all_nodes(&theirs));
        let mut mismatches = Vec::new();
        for (path, up) in &t {
            let Some(ours) = m.get(path) else { continue };
            if admits(ours) != admits(up) {
                mismatches.push(format!(
                    "{path}: {} vs upstream {}",
                    admits(ours),
                    admits(up)
                ));
            }
            let values = |n: &Value| -> BTreeSet<String> {
                n["enum"]
                    .as_array()
                    .map(|a| a.iter().map(|v| v.to_string()).collect())
                    .unwrap_or_default()
            };
            if values(ours) != values(up) {
                mismatches.push(format!(
                    "{path}: enum {:?} vs upstream {:?}",
                    values(ours),
                    values(up)
                ));
            }
            if up["x-kubernetes-preserve-unknown-fields"] == true
                && ours["x-kubernetes-preserve-unknown-fields"] != true
            {
                mismatches.push(format!("{path}: upstream preserves unknown fields"));
            }
        }
        assert!(mismatches.is_empty(), "{kind}: {mismatches:#?}");
    }
}

#[test]
fn printer_columns_subresources_and_names_match_upstream() {
    for (kind, mine, theirs) in pairs() {
        let (m, t) = (version(&mine), version(&theirs));
        assert_eq!(
            m["additionalPrinterColumns"], t["additionalPrinterColumns"],
            "{kind}: printer columns"
        );
        assert!(
            t["additionalPrinterColumns"]
                .as_array()
                .is_some_and(|c| c.len() == 2),
            "{kind}: upstream columns not read"
        );
        assert_eq!(m["subresources"], t["subresources"], "{kind}: subresources");
        assert_eq!(m["name"], t["name"], "{kind}: version");
        assert_eq!(m["served"], true);
        assert_eq!(m["storage"], true);
        for field in ["group", "scope"] {
            assert_eq!(
                mine["spec"][field], theirs["spec"][field],
                "{kind}: {field}"
            );
        }
        assert_eq!(
            mine["spec"]["names"], theirs["spec"]["names"],
            "{kind}: names"
        );
        assert_eq!(mine["metadata"]["name"], theirs["metadata"]["name"]);
    }
}

/// Every node has a type, or is int-or-string, or preserves unknown fields — a structural
/// schema, which `apiextensions.k8s.io/v1` requires.
fn structural(schema: &Value, at: &str, problems: &mut Vec<String>) {
    let typed = schema.get("type").is_some()
        || schema["x-kubernetes-preserve-unknown-fields"] == true
        || schema["x-kubernetes-int-or-string"] == true;
    if !typed {
        problems.push(format!("{at}: no type"));
    }
    if schema["type"] == "array" && !schema["items"].is_object() {
        problems.push(format!("{at}: array without items"));
    }
    for forbidden in ["$ref", "definitions", "additionalItems", "uniqueItems"] {
        if schema.get(forbidden).is_some() {
            problems.push(format!("{at}: {forbidden}"));
        }
    }
    if let Some(props) = schema["properties"].as_object() {
        for (k, v) in props {
            structural(v, &format!("{at}.{k}"), problems);
        }
    }
    if schema["items"].is_object() {
        structural(&schema["items"], &format!("{at}[]"), problems);
    }
    if schema["additionalProperties"].is_object() {
        structural(
            &schema["additionalProperties"],
            &format!("{at}{{}}"),
            problems,
        );
    }
}

#[test]
fn the_generated_schemas_are_structural() {
    for (kind, mine, _) in pairs() {
        let mut problems = Vec::new();
        structural(root_schema(&mine), "", &mut problems);
        assert!(problems.is_empty(), "{kind}: {problems:#?}");
        // Enums as upstream lists them (no null entry).
        let mode = &root_schema(&mine)["properties"]["spec"]["properties"]["job"]["properties"]
            ["upgradeMode"]["enum"];
        assert_eq!(
            mode,
            &serde_json::json!(["savepoint", "last-state", "stateless"])
        );
    }
    // The check itself finds an untyped node.
    let mut problems = Vec::new();
    structural(
        &serde_json::json!({"type": "object", "properties": {"a": {"description": "x"}}}),
        "",
        &mut problems,
    );
    assert_eq!(problems, vec![".a: no type"]);
}

/// Upstream's CRDs declare no `required` fields; every field the generated CRD requires is one
/// the API server would demand where upstream does not. The pod schema from k8s-openapi brings
/// many (`podTemplate` requires `metadata`, `podTemplate.spec` requires `containers`), which
/// would make the API server refuse `examples/pod-template.yaml` (its JobManager pod template
/// has neither); `src/crd` drops them, as upstream requires nothing.
#[test]
fn required_fields_are_no_stricter_than_upstream() {
    for (kind, mine, theirs) in pairs() {
        let (m, t) = (all_nodes(&mine), all_nodes(&theirs));
        let stricter: Vec<String> = m
            .iter()
            .filter_map(|(path, node)| {
                let ours: BTreeSet<&str> = node["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let up: BTreeSet<&str> = t
                    .get(path)
                    .and_then(|n| n["required"].as_array())
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let extra: Vec<&&str> = ours.difference(&up).collect();
                (!extra.is_empty() && !path.starts_with(".status"))
                    .then(|| format!("{path}: {extra:?}"))
            })
            .collect();
        assert!(
            stricter.is_empty(),
            "{kind}: {} nodes require more than upstream, e.g. {:#?}",
            stricter.len(),
            &stricter[..stricter.len().min(5)]
        );
    }
}

#[test]
fn crd_command_prints_both_as_yaml_documents() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flink-operator"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let docs: Vec<&Value> = docs.iter().filter(|d| !d.is_null()).collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(
        docs[0]["metadata"]["name"],
        "flinkdeployments.flink.apache.org"
    );
    assert_eq!(
        docs[1]["metadata"]["name"],
        "flinksessionjobs.flink.apache.org"
    );
    let generated: Vec<Value> = flink_operator::crd::crds()
        .iter()
        .map(|c| serde_json::to_value(c).unwrap())
        .collect();
    assert_eq!(
        *docs[0], generated[0],
        "the printed CRD is the generated one"
    );
}
