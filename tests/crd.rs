//! The generated CRDs carry every property path, printer column and subresource of the
//! upstream CRDs, and are structural (what `kubectl apply` needs).

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

fn upstream(file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/upstream-crds")
        .join(file);
    serde_saphyr::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

fn paths(schema: &Value, at: &str, out: &mut BTreeSet<String>) {
    out.insert(at.to_string());
    if let Some(props) = schema["properties"].as_object() {
        for (k, v) in props {
            paths(v, &format!("{at}.{k}"), out);
        }
    }
    if schema["type"] == "array" {
        paths(&schema["items"], &format!("{at}[]"), out);
    }
}

fn structural(schema: &Value, at: &str, problems: &mut Vec<String>) {
    let typed = schema.get("type").is_some()
        || schema["x-kubernetes-preserve-unknown-fields"] == true
        || schema["x-kubernetes-int-or-string"] == true;
    if !typed {
        problems.push(at.to_string());
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
fn generated_crds_match_upstream_paths_columns_and_subresources() {
    let ours: Vec<Value> = flink_operator::crd::crds()
        .iter()
        .map(|c| serde_json::to_value(c).unwrap())
        .collect();
    for (mine, file) in ours.iter().zip([
        "flinkdeployments.flink.apache.org-v1.yml",
        "flinksessionjobs.flink.apache.org-v1.yml",
    ]) {
        let theirs = upstream(file);
        let (m, t) = (&mine["spec"]["versions"][0], &theirs["spec"]["versions"][0]);
        let (mut mp, mut tp) = (BTreeSet::new(), BTreeSet::new());
        paths(&m["schema"]["openAPIV3Schema"], "", &mut mp);
        paths(&t["schema"]["openAPIV3Schema"], "", &mut tp);
        let missing: Vec<_> = tp.difference(&mp).collect();
        assert!(
            missing.is_empty(),
            "{file}: missing {} paths, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        assert_eq!(
            m["additionalPrinterColumns"], t["additionalPrinterColumns"],
            "{file}: printer columns"
        );
        assert_eq!(m["subresources"], t["subresources"], "{file}: subresources");
        assert_eq!(
            mine["spec"]["names"]["shortNames"],
            theirs["spec"]["names"]["shortNames"]
        );
        assert_eq!(mine["spec"]["scope"], "Namespaced");
        let mut unstructured = Vec::new();
        structural(
            &m["schema"]["openAPIV3Schema"]["properties"]["spec"],
            "spec",
            &mut unstructured,
        );
        structural(
            &m["schema"]["openAPIV3Schema"]["properties"]["status"],
            "status",
            &mut unstructured,
        );
        assert!(
            unstructured.is_empty(),
            "{file}: untyped nodes {:?}",
            &unstructured[..unstructured.len().min(5)]
        );
        // Enums as upstream lists them (no null entry).
        let mode = &m["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["job"]
            ["properties"]["upgradeMode"]["enum"];
        assert_eq!(
            mode,
            &serde_json::json!(["savepoint", "last-state", "stateless"])
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
}
