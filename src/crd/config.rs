//! `spec.flinkConfiguration`: accepted flat (`a.b.c: v`) or nested (`a: {b: {c: v}}`), with
//! strings, numbers or booleans as values, as upstream examples write it. Kept as written
//! (so the stored spec round-trips) and flattened to Flink's `key: string` form on use.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Deserialize, Serialize, Clone, Default)]
#[serde(transparent)]
pub struct FlinkConfiguration {
    entries: serde_json::Map<String, Value>,
    /// The flat view, made on first use and shared by copies: every reconcile reads a
    /// resource's configuration a few times, and its spec is read once per change. Cleared by
    /// [`FlinkConfiguration::entries_mut`].
    #[serde(skip)]
    flat: std::sync::OnceLock<Arc<crate::config::FlatConfig>>,
}

impl PartialEq for FlinkConfiguration {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

/// As the entries (the flat view is derived from them).
impl std::fmt::Debug for FlinkConfiguration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FlinkConfiguration")
            .field(&self.entries)
            .finish()
    }
}

impl From<serde_json::Map<String, Value>> for FlinkConfiguration {
    fn from(entries: serde_json::Map<String, Value>) -> Self {
        FlinkConfiguration {
            entries,
            flat: Default::default(),
        }
    }
}

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
        self.flat().to_map()
    }

    /// [`FlinkConfiguration::flatten`], made once, packed and shared.
    pub fn flat(&self) -> Arc<crate::config::FlatConfig> {
        self.flat
            .get_or_init(|| {
                let mut out = BTreeMap::new();
                for (k, v) in &self.entries {
                    flatten_into(k, v, &mut out);
                }
                Arc::new(out.into())
            })
            .clone()
    }

    /// [`FlinkConfiguration::flat`] of a configuration that may be absent (empty then).
    pub fn flat_of(conf: Option<&FlinkConfiguration>) -> Arc<crate::config::FlatConfig> {
        conf.map(FlinkConfiguration::flat).unwrap_or_default()
    }

    /// Whether two configurations, either possibly absent, say the same to Flink: their flat
    /// views are equal (an absent one is empty). Compares two packed texts, not two maps of
    /// separately allocated keys and values.
    pub fn same_flat(a: Option<&FlinkConfiguration>, b: Option<&FlinkConfiguration>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => {
                let (a, b) = (a.flat(), b.flat());
                Arc::ptr_eq(&a, &b) || a == b
            }
            (Some(c), None) | (None, Some(c)) => c.flat().is_empty(),
            (None, None) => true,
        }
    }

    /// The entries as written.
    pub fn entries(&self) -> &serde_json::Map<String, Value> {
        &self.entries
    }

    /// The entries, to change them (the flat view is made again on its next use).
    pub fn entries_mut(&mut self) -> &mut serde_json::Map<String, Value> {
        self.flat = Default::default();
        &mut self.entries
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect::<serde_json::Map<_, _>>()
            .into()
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

    /// The flat view is kept, shared by copies, and made again after the entries change.
    #[test]
    fn the_flat_view_follows_the_entries() {
        let mut conf = FlinkConfiguration::from_pairs([("a.b", "1")]);
        assert!(Arc::ptr_eq(&conf.flat(), &conf.flat()));
        let copy = conf.clone();
        assert!(Arc::ptr_eq(&conf.flat(), &copy.flat()));
        conf.entries_mut().insert("c".into(), Value::Bool(true));
        assert_eq!(conf.flat().get("c"), Some("true"));
        assert_eq!(copy.flat().get("c"), None);
        assert_ne!(conf, copy);
        assert_eq!(
            format!("{copy:?}"),
            r#"FlinkConfiguration({"a.b": String("1")})"#
        );
    }
}
