//! The structural check of a manifest against the CRD's OpenAPI v3 schema, as the API server
//! applies it: value types (with `int32`/`int64` ranges), enum values, and unknown fields —
//! which the API server would silently prune — each reported with its full field path
//! (`spec.jobManager.podTemplate.spec.containers[0].imagee: unknown field`).
//!
//! Free-form places are respected: `x-kubernetes-preserve-unknown-fields` (e.g.
//! `flinkConfiguration`), `additionalProperties` maps (labels, `logConfiguration`, resource
//! requests) and `x-kubernetes-int-or-string` (quantities, ports).
//!
//! `required` lists are not enforced: the upstream CRDs declare none, so a manifest that the
//! upstream operator accepts must not be refused for leaving a field out. Required values are
//! the semantic rules' business.

use serde_json::Value;

use super::Problem;

/// `spec` + `job` → `spec.job`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The JSON type of a value, as the API server names it in messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(v: &Value) -> bool {
    matches!(v, Value::Number(n) if n.is_i64() || n.is_u64())
}

fn shown(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// Checks `value` against `schema`, adding one problem per mistake, with `path` as the field
/// path of `value`.
pub fn check(value: &Value, schema: &Value, path: &str, out: &mut Vec<Problem>) {
    let mut located = Vec::new();
    check_located(value, schema, path, "", &mut located);
    out.extend(located.into_iter().map(|(p, _)| p));
}

/// [`check`], with the JSON pointer (RFC 6901, below `pointer`) of each offending value, so a
/// caller can set the offending values aside and still read the rest.
pub fn check_located(
    value: &Value,
    schema: &Value,
    path: &str,
    pointer: &str,
    out: &mut Vec<(Problem, String)>,
) {
    let mut problems = Vec::new();
    walk(value, schema, path, pointer, &mut problems);
    out.extend(problems);
}

fn pointer_join(pointer: &str, key: &str) -> String {
    format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"))
}

fn walk(
    value: &Value,
    schema: &Value,
    path: &str,
    pointer: &str,
    out: &mut Vec<(Problem, String)>,
) {
    let mut here = Vec::new();
    check_node(value, schema, path, pointer, &mut here, out);
    out.extend(here.into_iter().map(|p| (p, pointer.to_string())));
}

/// Problems of the value itself go to `out_here`; those of its children to `out`.
fn check_node(
    value: &Value,
    schema: &Value,
    path: &str,
    pointer: &str,
    out: &mut Vec<Problem>,
    children: &mut Vec<(Problem, String)>,
) {
    // Absent and null are the same to the API server for the optional fields of these CRDs.
    if value.is_null() {
        return;
    }
    if schema["x-kubernetes-int-or-string"] == true {
        if !(value.is_string() || is_integer(value)) {
            let hint = if value.is_number() {
                format!(" (quote it: \"{value}\")")
            } else {
                String::new()
            };
            out.push(Problem::at(
                path,
                format!(
                    "must be an integer or a string, not {}{hint}",
                    type_name(value)
                ),
            ));
        }
        return;
    }
    let expected = schema["type"].as_str();
    let type_ok = match (expected, value) {
        (None, _) => true,
        (Some("object"), Value::Object(_)) => true,
        (Some("array"), Value::Array(_)) => true,
        (Some("string"), Value::String(_)) => true,
        (Some("boolean"), Value::Bool(_)) => true,
        (Some("integer"), v) => is_integer(v),
        (Some("number"), Value::Number(_)) => true,
        _ => false,
    };
    if !type_ok {
        out.push(Problem::at(
            path,
            format!(
                "must be of type {}, not {}",
                expected.unwrap_or("?"),
                type_name(value)
            ),
        ));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.is_empty() && !allowed.contains(value) {
            let list: Vec<String> = allowed.iter().map(shown).collect();
            out.push(Problem::at(
                path,
                format!(
                    "unsupported value '{}'; one of: {}",
                    shown(value),
                    list.join(", ")
                ),
            ));
            return;
        }
    }
    if let (Some("integer"), Some(format)) = (expected, schema["format"].as_str()) {
        let fits = match format {
            "int32" => value
                .as_i64()
                .map(|n| i32::try_from(n).is_ok())
                .unwrap_or(false),
            "int64" => value.as_i64().is_some(),
            _ => true,
        };
        if !fits {
            out.push(Problem::at(
                path,
                format!("{value} does not fit in an {format} integer"),
            ));
        }
    }
    match value {
        Value::Object(map) => check_object(map, schema, path, pointer, children),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(
                    item,
                    &schema["items"],
                    &format!("{path}[{i}]"),
                    &format!("{pointer}/{i}"),
                    children,
                );
            }
        }
        _ => {}
    }
}

fn check_object(
    map: &serde_json::Map<String, Value>,
    schema: &Value,
    path: &str,
    pointer: &str,
    out: &mut Vec<(Problem, String)>,
) {
    let properties = schema["properties"].as_object();
    let additional = &schema["additionalProperties"];
    let free_form = schema["x-kubernetes-preserve-unknown-fields"] == true
        || additional == &Value::Bool(true)
        || (properties.is_none() && schema.get("type").is_none());
    for (key, child) in map {
        let here = join(path, key);
        let child_pointer = pointer_join(pointer, key);
        if let Some(sub) = properties.and_then(|p| p.get(key)) {
            walk(child, sub, &here, &child_pointer, out);
        } else if additional.is_object() {
            walk(child, additional, &here, &child_pointer, out);
        } else if !free_form {
            let known: Vec<&str> = properties
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            out.push((
                Problem::at(&here, unknown_field_message(key, &known)),
                child_pointer,
            ));
        }
    }
}

/// `unknown field`, with the nearest known name when one is close, else the known names when
/// there are few.
fn unknown_field_message(key: &str, known: &[&str]) -> String {
    let nearest = known
        .iter()
        .map(|k| {
            (
                edit_distance(&key.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                *k,
            )
        })
        .min();
    match nearest {
        Some((d, k)) if d <= 2.max(key.len() / 4) && d < key.len() => {
            format!("unknown field (did you mean {k}?)")
        }
        _ if !known.is_empty() && known.len() <= 12 => {
            let mut sorted = known.to_vec();
            sorted.sort_unstable();
            format!("unknown field; known fields: {}", sorted.join(", "))
        }
        _ => "unknown field".to_string(),
    }
}

/// Levenshtein distance (insert, delete, substitute), for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(value: Value) -> Vec<String> {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "integer", "format": "int32"},
            "big": {"type": "integer", "format": "int64"},
            "cpu": {"type": "number"},
            "mode": {"type": "string", "enum": ["native", "standalone"]},
            "conf": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "empty": {"type": "object"},
            "q": {"x-kubernetes-int-or-string": true},
            "list": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "image": {"type": "string"}}}}
        }});
        let mut out = Vec::new();
        check(&value, &schema, "spec", &mut out);
        out.into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn valid_values_pass() {
        assert!(problems(json!({
            "a": 1, "big": 9_000_000_000i64, "cpu": 1, "mode": "native",
            "conf": {"x": {"y": [1, {"z": true}]}}, "labels": {"k": "v"},
            "q": "1Gi", "list": [{"name": "n"}], "empty": {}
        }))
        .is_empty());
        assert!(problems(json!({"q": 2, "cpu": 0.5, "a": null})).is_empty());
    }

    #[test]
    fn types_and_ranges() {
        assert_eq!(
            problems(json!({"a": "1"})),
            vec!["spec.a: must be of type integer, not string"]
        );
        assert_eq!(
            problems(json!({"a": 1.5})),
            vec!["spec.a: must be of type integer, not number"]
        );
        assert_eq!(
            problems(json!({"a": 3_000_000_000u64})),
            vec!["spec.a: 3000000000 does not fit in an int32 integer"]
        );
        assert_eq!(
            problems(json!({"big": u64::MAX})),
            vec!["spec.big: 18446744073709551615 does not fit in an int64 integer"]
        );
        assert_eq!(
            problems(json!({"q": 0.5})),
            vec!["spec.q: must be an integer or a string, not number (quote it: \"0.5\")"]
        );
        assert_eq!(
            problems(json!({"labels": {"k": 1}})),
            vec!["spec.labels.k: must be of type string, not integer"]
        );
        assert_eq!(
            problems(json!({"list": {"name": "n"}})),
            vec!["spec.list: must be of type array, not object"]
        );
    }

    #[test]
    fn enums() {
        assert_eq!(
            problems(json!({"mode": "hybrid"})),
            vec!["spec.mode: unsupported value 'hybrid'; one of: native, standalone"]
        );
        assert_eq!(
            problems(json!({"mode": 1})),
            vec!["spec.mode: must be of type string, not integer"]
        );
    }

    #[test]
    fn unknown_fields_with_full_paths() {
        assert_eq!(
            problems(json!({"list": [{"name": "n"}, {"imagee": "x"}]})),
            vec!["spec.list[1].imagee: unknown field (did you mean image?)"]
        );
        assert_eq!(
            problems(json!({"list": [{"zzzzzz": "x"}]})),
            vec!["spec.list[0].zzzzzz: unknown field; known fields: image, name"]
        );
        assert_eq!(
            problems(json!({"empty": {"x": 1}})),
            vec!["spec.empty.x: unknown field"]
        );
        // Every mistake, not only the first.
        assert_eq!(problems(json!({"mdoe": "x", "a": "y", "b": 1})).len(), 3);
    }

    #[test]
    fn pointers_locate_each_offending_value() {
        let schema = json!({"type": "object", "properties": {
            "list": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "integer"}}}},
            "m": {"type": "object", "additionalProperties": {"type": "string"}}
        }});
        let mut out = Vec::new();
        check_located(
            &json!({"list": [{"a": 1}, {"a": "x", "b": 2}], "m": {"k/1": 3}}),
            &schema,
            "spec",
            "/spec",
            &mut out,
        );
        let pointers: Vec<&str> = out.iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(
            pointers,
            vec!["/spec/list/1/a", "/spec/list/1/b", "/spec/m/k~11"]
        );
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("imagee", "image"), 1);
        assert_eq!(edit_distance("replica", "replicas"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
