//! `spec.flinkConfiguration`: accepted flat (`a.b.c: v`) or nested (`a: {b: {c: v}}`), with
//! strings, numbers or booleans as values, as upstream examples write it. Kept as written
//! (so the stored spec round-trips) and flattened to Flink's `key: string` form on use.

use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct FlinkConfiguration(pub serde_json::Map<String, Value>);

impl JsonSchema for FlinkConfiguration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FlinkConfiguration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true
        })
    }
    fn inline_schema() -> bool {
        true
    }
}

impl FlinkConfiguration {
    /// Flink's flat view: nested keys joined with `.`, scalars as strings, lists joined by `;`.
    pub fn flatten(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (k, v) in &self.0 {
            flatten_into(k, v, &mut out);
        }
        out
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        FlinkConfiguration(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect(),
        )
    }
}

fn flatten_into(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                flatten_into(&format!("{prefix}.{k}"), v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), scalar_to_string(other));
        }
    }
}

/// The string Flink would read for a YAML scalar or list.
pub fn scalar_to_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => items
            .iter()
            .map(scalar_to_string)
            .collect::<Vec<_>>()
            .join(";"),
        Value::Object(_) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_flat_keys_flatten_alike() {
        let conf: FlinkConfiguration = serde_json::from_value(serde_json::json!({
            "taskmanager.numberOfTaskSlots": 2,
            "state": {"savepoints.dir": "file:///sp", "checkpoints.dir": "file:///cp"},
            "high-availability": {"type": "kubernetes"},
            "job.autoscaler": {"enabled": true, "target.utilization.boundary": 0.1},
            "env.java.opts": ["-Da", "-Db"]
        }))
        .unwrap();
        let flat = conf.flatten();
        assert_eq!(flat["taskmanager.numberOfTaskSlots"], "2");
        assert_eq!(flat["state.savepoints.dir"], "file:///sp");
        assert_eq!(flat["state.checkpoints.dir"], "file:///cp");
        assert_eq!(flat["high-availability.type"], "kubernetes");
        assert_eq!(flat["job.autoscaler.enabled"], "true");
        assert_eq!(flat["job.autoscaler.target.utilization.boundary"], "0.1");
        assert_eq!(flat["env.java.opts"], "-Da;-Db");
    }
}
