//! Events are served in two versions, as in Kubernetes: core `v1` and `events.k8s.io/v1`
//! (what kube's `Recorder` writes). Both are views of the same stored objects, kept in the
//! core form; these convert between the two with the API server's field mapping.

use serde_json::{Map, Value};

/// `events.k8s.io/v1` field → core `v1` field (the others are the same in both).
const RENAMED: [(&str, &str); 7] = [
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(obj: &Value, pairs: impl Iterator<Item = (&'static str, &'static str)>) -> Value {
    let Some(m) = obj.as_object() else {
        return obj.clone();
    };
    let mut out: Map<String, Value> = m.clone();
    for (from, to) in pairs {
        // A field of the other version's name that this one does not have is dropped.
        out.remove(to);
        if let Some(v) = m.get(from) {
            out.insert(to.to_string(), v.clone());
            out.remove(from);
        }
    }
    Value::Object(out)
}

/// A stored (core) Event as `events.k8s.io/v1` shows it.
pub fn to_events_v1(core: &Value) -> Value {
    rename(core, RENAMED.iter().map(|(e, c)| (*c, *e)))
}

/// An `events.k8s.io/v1` Event in the stored (core) form.
pub fn to_core(event: &Value) -> Value {
    rename(event, RENAMED.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_two_versions_map_field_by_field() {
        let v1 = json!({"metadata": {"name": "e"}, "regarding": {"kind": "FlinkDeployment", "name": "x"},
                        "note": "submitted", "reason": "Submit", "reportingController": "op",
                        "reportingInstance": "op-0", "eventTime": "2026-01-01T00:00:00.000000Z",
                        "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"}});
        let core = to_core(&v1);
        assert_eq!(core["involvedObject"]["name"], "x");
        assert_eq!(core["message"], "submitted");
        assert_eq!(core["reportingComponent"], "op");
        assert_eq!(core["series"]["count"], 2);
        assert!(core.get("note").is_none() && core.get("regarding").is_none());
        assert_eq!(to_events_v1(&core), v1);
    }
}
