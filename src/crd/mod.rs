//! The custom resources: types, the CRD manifests, and the stored-spec format.

pub mod config;
pub mod spec;
pub mod status;

pub use config::FlinkConfiguration;
pub use spec::*;
pub use status::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "flink.apache.org/v1beta1";
pub const DEPLOYMENT_FINALIZER: &str = "flinkdeployments.flink.apache.org/finalizer";
pub const SESSION_JOB_FINALIZER: &str = "flinksessionjobs.flink.apache.org/finalizer";

/// Both CRDs, FlinkDeployment first.
pub fn crds() -> Vec<CustomResourceDefinition> {
    [FlinkDeployment::crd(), FlinkSessionJob::crd()]
        .into_iter()
        .map(|crd| {
            let mut value = serde_json::to_value(&crd).expect("a CRD always serializes");
            strip_null_from_enums(&mut value);
            strip_required(&mut value);
            serde_json::from_value(value).expect("still a CRD")
        })
        .collect()
}

/// The upstream CRDs require no field at all (so a pod template may give only the parts it
/// changes, and a canary resource needs no spec); the generated Pod schema would require
/// `containers` and more. The API server must accept what upstream accepts.
fn strip_required(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            // A `required` list of field names, not a property that happens to be so named.
            if map.get("required").map(|r| r.is_array()).unwrap_or(false) {
                map.remove("required");
            }
            map.values_mut().for_each(strip_required);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_required),
        _ => {}
    }
}

/// Optional enums come out of the schema generator as `enum: [..., null]`; the upstream CRDs
/// (and what users see in `kubectl explain`) list only the values. `nullable` stays.
fn strip_null_from_enums(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Array(values)) = map.get_mut("enum") {
                values.retain(|x| !x.is_null());
            }
            map.values_mut().for_each(strip_null_from_enums);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_null_from_enums),
        _ => {}
    }
}

/// Both CRDs as multi-document YAML for `kubectl apply -f -`.
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        let value = serde_json::to_value(&crd).expect("a CRD always serializes");
        out.push_str(&serde_saphyr::to_string(&value).expect("JSON values always serialize"));
    }
    out
}

/// How `lastReconciledSpec` and `lastStableSpec` are stored, as upstream does:
/// `{"spec": …, "resource_metadata": {"apiVersion": …, "firstDeployment": …}}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StoredSpec<S> {
    pub spec: S,
    pub resource_metadata: ResourceMetadata,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceMetadata {
    pub api_version: String,
    pub first_deployment: bool,
}

impl<S: Serialize + for<'de> Deserialize<'de>> StoredSpec<S> {
    pub fn new(spec: S, first_deployment: bool) -> Self {
        StoredSpec {
            spec,
            resource_metadata: ResourceMetadata {
                api_version: API_VERSION.to_string(),
                first_deployment,
            },
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("specs always serialize")
    }

    /// Reads the current format, and the legacy one (the spec at the top level).
    pub fn parse(s: &str) -> Result<Self, serde_json::Error> {
        // The current format straight from the text (both fields are required, so this
        // succeeds exactly when the general path below would take its first branch);
        // anything else goes the general way.
        if let Ok(stored) = serde_json::from_str::<Self>(s) {
            return Ok(stored);
        }
        let value: serde_json::Value = serde_json::from_str(s)?;
        if value.get("spec").is_some() && value.get("resource_metadata").is_some() {
            return serde_json::from_value(value);
        }
        let mut value = value;
        if let Some(obj) = value.as_object_mut() {
            obj.remove("apiVersion");
        }
        Ok(StoredSpec::new(serde_json::from_value(value)?, false))
    }
}
