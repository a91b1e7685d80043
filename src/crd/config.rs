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
    /// The entries as one canonical text, made on first use and shared by copies (see
    /// [`FlinkConfiguration::written`]). Cleared with the flat view.
    #[serde(skip)]
    written: std::sync::OnceLock<Arc<[u8]>>,
}

/// Equal as written: the same entries with the same values (in any order), by their
/// canonical texts. Every steady reconcile asks this of the resource's configuration and the
/// reconciled one; comparing the maps read every key and value of both, each an allocation
/// of its own. A text made for the comparison is the other side's when they are equal, so
/// the same two configurations compare next time by address alone.
impl PartialEq for FlinkConfiguration {
    fn eq(&self, other: &Self) -> bool {
        match (self.written.get(), other.written.get()) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            (Some(a), None) => other.written_sharing(a),
            (None, _) => self.written_sharing(&other.written()),
        }
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
            written: Default::default(),
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

    /// The entries as one canonical JSON text: object keys sorted at every level, a float
    /// zero written `0.0` whatever its sign. Two configurations have the same text exactly
    /// when their entries are equal as JSON values (which is order-blind for objects and
    /// takes `-0.0` for `0.0`).
    pub fn written(&self) -> Arc<[u8]> {
        self.written.get_or_init(|| self.canonical().into()).clone()
    }

    /// Whether the entries' text is `text`; made now if it was not, as `text` itself when
    /// they are equal.
    fn written_sharing(&self, text: &Arc<[u8]>) -> bool {
        let mine = self.written.get_or_init(|| {
            let mine = self.canonical();
            if mine[..] == text[..] {
                text.clone()
            } else {
                mine.into()
            }
        });
        Arc::ptr_eq(mine, text) || mine == text
    }

    fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_canonical_map(&self.entries, &mut out);
        out
    }

    /// The entries as written.
    pub fn entries(&self) -> &serde_json::Map<String, Value> {
        &self.entries
    }

    /// The entries, to change them (the flat view is made again on its next use).
    pub fn entries_mut(&mut self) -> &mut serde_json::Map<String, Value> {
        self.flat = Default::default();
        self.written = Default::default();
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

fn write_canonical_map(map: &serde_json::Map<String, Value>, out: &mut Vec<u8>) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push(b'{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Writing JSON to memory cannot fail.
        let _ = serde_json::to_writer(&mut *out, k.as_str());
        out.push(b':');
        write_canonical(v, out);
    }
    out.push(b'}');
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => write_canonical_map(map, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        // `-0.0 == 0.0` as JSON numbers, so one text for both.
        Value::Number(n) if n.is_f64() && n.as_f64() == Some(0.0) => out.extend_from_slice(b"0.0"),
        // Writing JSON to memory cannot fail.
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
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

    /// Equality by the canonical texts is equality of the entries as JSON values, over pairs
    /// of configurations that differ in order, form, type, sign of zero and nesting.
    #[test]
    fn equal_as_written_is_equal_as_json_values() {
        let configs = [
            serde_json::json!({}),
            serde_json::json!({"a.b": "1"}),
            serde_json::json!({"a.b": 1}),
            serde_json::json!({"a.b": 1.0}),
            serde_json::json!({"a": {"b": "1"}}),
            serde_json::json!({"a.b": "1", "c": true}),
            serde_json::json!({"c": true, "a.b": "1"}),
            serde_json::json!({"c": "true", "a.b": "1"}),
            serde_json::json!({"x": 0.0}),
            serde_json::json!({"x": -0.0}),
            serde_json::json!({"x": 0}),
            serde_json::json!({"x": null}),
            serde_json::json!({"x": ["p", "q"]}),
            serde_json::json!({"x": ["q", "p"]}),
            serde_json::json!({"x": "p;q"}),
            serde_json::json!({"n": {"b": 2, "a": {"z": [1, {"y": "\"", "w": "é"}]}}}),
            serde_json::json!({"n": {"a": {"z": [1, {"w": "é", "y": "\""}]}, "b": 2}}),
            serde_json::json!({"n": {"a": {"z": [1, {"w": "e", "y": "\""}]}, "b": 2}}),
            serde_json::json!({"k\"q": 1}),
            serde_json::json!({"k": {"\"q": 1}}),
        ];
        let parsed: Vec<FlinkConfiguration> = configs
            .iter()
            .map(|v| serde_json::from_value(v.clone()).unwrap())
            .collect();
        for (i, a) in parsed.iter().enumerate() {
            for (j, b) in parsed.iter().enumerate() {
                assert_eq!(
                    a == b,
                    configs[i] == configs[j],
                    "{} against {}",
                    configs[i],
                    configs[j]
                );
            }
        }
        // Equal ones compared share one text from then on.
        let fresh = |i: usize| -> FlinkConfiguration {
            serde_json::from_value(configs[i].clone()).unwrap()
        };
        let (a, b) = (fresh(5), fresh(6));
        assert!(a == b && Arc::ptr_eq(&a.written(), &b.written()));
        let (a, b) = (fresh(5), fresh(6));
        b.written();
        assert!(a == b && Arc::ptr_eq(&a.written(), &b.written()));
        let (a, b) = (fresh(5), fresh(7));
        assert!(a != b && !Arc::ptr_eq(&a.written(), &b.written()));
        // Made once, shared by copies, made again after a change.
        let mut conf = parsed[5].clone();
        assert!(Arc::ptr_eq(&conf.written(), &parsed[5].written()));
        conf.entries_mut().insert("c".into(), Value::Bool(false));
        assert_ne!(conf, parsed[5]);
        assert_eq!(&*conf.written(), br#"{"a.b":"1","c":false}"#);
    }
}
