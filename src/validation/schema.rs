//! The structural check of a manifest against the CRD's OpenAPI schema, as the API server
//! would do it: types, enum values and unknown fields, each reported with its field path.

use serde_json::Value;

use super::Problem;

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
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

/// Checks `value` against `schema`, adding one problem per mistake.
pub fn check(value: &Value, schema: &Value, path: &str, out: &mut Vec<Problem>) {
    // Absent and null are the same to the API server.
    if value.is_null() {
        return;
    }
    if schema["x-kubernetes-int-or-string"] == true {
        if !(value.is_string() || value.is_i64() || value.is_u64() || value.is_f64()) {
            out.push(Problem::at(
                path,
                format!("must be an integer or a string, not {}", type_name(value)),
            ));
        }
        return;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            let list: Vec<String> = allowed
                .iter()
                .map(|a| {
                    a.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| a.to_string())
                })
                .collect();
            let shown = value
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            out.push(Problem::at(
                path,
                format!("unsupported value '{shown}'; one of: {}", list.join(", ")),
            ));
            return;
        }
    }
    let expected = schema["type"].as_str();
    let ok = match (expected, value) {
        (None, _) => true,
        (Some("object"), Value::Object(_)) => true,
        (Some("array"), Value::Array(_)) => true,
        (Some("string"), Value::String(_)) => true,
        (Some("boolean"), Value::Bool(_)) => true,
        (Some("integer"), Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Some("number"), Value::Number(_)) => true,
        _ => false,
    };
    if !ok {
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
    match value {
        Value::Object(map) => {
            let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
            let properties = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            for (key, child) in map {
                let here = join(path, key);
                if let Some(sub) = properties.and_then(|p| p.get(key)) {
                    check(child, sub, &here, out);
                } else if additional.is_object() {
                    check(child, additional, &here, out);
                } else if additional == &Value::Bool(true)
                    || preserve
                    || (properties.is_none() && expected.is_none())
                {
                    // Free-form by design.
                } else {
                    let mut known: Vec<&String> =
                        properties.map(|p| p.keys().collect()).unwrap_or_default();
                    known.sort();
                    let hint = if known.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; known fields: {}",
                            known
                                .iter()
                                .map(|k| k.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    out.push(Problem::at(&here, format!("unknown field{hint}")));
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check(item, &schema["items"], &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(value: Value) -> Vec<String> {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "integer"},
            "mode": {"type": "string", "enum": ["native", "standalone"]},
            "conf": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "q": {"x-kubernetes-int-or-string": true},
            "list": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}
        }});
        let mut out = Vec::new();
        check(&value, &schema, "spec", &mut out);
        out.into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn types_enums_and_unknown_fields_with_paths() {
        assert!(problems(json!({"a": 1, "mode": "native", "conf": {"x": {"y": 1}}, "labels": {"k": "v"}, "q": "1Gi", "list": [{"name": "n"}]})).is_empty());
        assert_eq!(
            problems(json!({"a": "1"})),
            vec!["spec.a: must be of type integer, not string"]
        );
        assert_eq!(
            problems(json!({"mode": "hybrid"})),
            vec!["spec.mode: unsupported value 'hybrid'; one of: native, standalone"]
        );
        assert_eq!(
            problems(json!({"labels": {"k": 1}})),
            vec!["spec.labels.k: must be of type string, not integer"]
        );
        let p = problems(json!({"list": [{"name": "n"}, {"nmae": "x"}]}));
        assert_eq!(
            p,
            vec!["spec.list[1].nmae: unknown field; known fields: name"]
        );
        assert!(problems(json!({"q": 2})).is_empty());
    }
}
