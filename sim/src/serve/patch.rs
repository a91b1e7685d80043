//! The patch types kubectl sends. JSON merge patch (RFC 7386) and JSON patch (RFC 6902) are
//! exact. Two are approximations, documented in the README:
//! * strategic merge patch (built-in types only, as in Kubernetes): a merge patch in which
//!   lists of objects that all carry a `name` (containers, env, volumes, ports, ...) merge
//!   element by element by that name, `$patch: delete|replace` and
//!   `$deleteFromPrimitiveList/…` are honoured and other `$` directives are ignored;
//! * server-side apply: the applied configuration is merged over the stored object (maps
//!   merge, lists and scalars replace), and the fields a manager applied before but no longer
//!   applies are removed unless another manager applied them too. Each manager's applied
//!   fields are kept in `metadata.managedFields` (FieldsV1, with every list one atomic
//!   field); there are no conflicts between managers (as if every apply were forced), and
//!   fields set by other writes (update, patch) are owned by nobody.

use serde_json::{Map, Value};

pub use crate::runner::merge_patch;

/// The merge key of a list in a strategic merge patch, guessed from its elements.
fn merge_key(patch: &[Value], target: &[Value]) -> Option<&'static str> {
    let all_have = |k: &str| {
        patch
            .iter()
            .all(|e| e.get(k).is_some() || e.get("$patch").is_some())
            && target.iter().all(|e| e.get(k).is_some())
    };
    let objects = patch.iter().chain(target).all(Value::is_object);
    if !objects || patch.is_empty() {
        return None;
    }
    ["name", "containerPort", "port", "mountPath", "ip", "type"]
        .into_iter()
        .find(|k| all_have(k))
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

/// An approximation of Kubernetes' strategic merge patch (see the module docs).
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = strip_directives(patch);
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = strip_directives(patch);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    for (k, v) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(remove)) = (
                target.get_mut(field).and_then(Value::as_array_mut),
                v.as_array(),
            ) {
                list.retain(|x| !remove.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        let t = target.as_object_mut().unwrap();
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (t.get_mut(k), v) {
            (Some(Value::Array(current)), Value::Array(items)) => match merge_key(items, current) {
                Some(key) => {
                    for item in items {
                        let deleting = item.get("$patch").and_then(Value::as_str) == Some("delete");
                        let pos = current.iter().position(|c| c.get(key) == item.get(key));
                        match (pos, deleting) {
                            (Some(i), true) => {
                                current.remove(i);
                            }
                            (None, true) => {}
                            (Some(i), false) => strategic_merge(&mut current[i], item),
                            (None, false) => current.push(strip_directives(item)),
                        }
                    }
                }
                None => *current = items.iter().map(strip_directives).collect(),
            },
            (Some(current @ Value::Object(_)), Value::Object(_)) => strategic_merge(current, v),
            _ => {
                t.insert(k.clone(), strip_directives(v));
            }
        }
    }
}

/// Server-side apply, approximated: the applied configuration merged over the stored object.
pub fn apply_merge(target: &mut Value, applied: &Value) {
    match (target, applied) {
        (t @ Value::Object(_), Value::Object(a)) => {
            let t = t.as_object_mut().unwrap();
            for (k, v) in a {
                if v.is_null() {
                    continue;
                }
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        apply_merge(existing, v)
                    }
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, a) => *t = a.clone(),
    }
}

/// Metadata the server owns: never part of what an apply manages.
const SERVER_METADATA: [&str; 8] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "managedFields",
];

fn fields_of(v: &Value) -> Value {
    match v {
        Value::Object(m) if !m.is_empty() => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (format!("f:{k}"), fields_of(v)))
                .collect(),
        ),
        _ => Value::Object(Map::new()),
    }
}

/// The fields an applied configuration sets, as `managedFields[].fieldsV1` writes them
/// (`{"f:spec": {"f:replicas": {}}}`); lists are single fields. Without apiVersion, kind,
/// server-owned metadata and (`status_too` false) status.
pub fn applied_fields(applied: &Value, status_too: bool) -> Value {
    let mut body = applied.clone();
    if let Some(m) = body.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
        if !status_too {
            m.remove("status");
        }
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in SERVER_METADATA {
                meta.remove(f);
            }
        }
    }
    fields_of(&body)
}

/// Removes from `target` the fields in `before` (what a manager applied last time) that are
/// not in `now` (what it applies now) and that no manager in `others` applied.
pub fn prune_unapplied(target: &mut Value, before: &Value, now: &Value, others: &[&Value]) {
    let (Some(before), Some(t)) = (before.as_object(), target.as_object_mut()) else {
        return;
    };
    for (field, owned) in before {
        let Some(key) = field.strip_prefix("f:") else {
            continue;
        };
        let theirs: Vec<&Value> = others.iter().filter_map(|o| o.get(field)).collect();
        let leaf_of_others = theirs
            .iter()
            .any(|o| o.as_object().map(Map::is_empty).unwrap_or(true));
        match now.get(field) {
            Some(still) => {
                if let Some(child) = t.get_mut(key) {
                    prune_unapplied(child, owned, still, &theirs);
                }
            }
            None if theirs.is_empty() => {
                t.remove(key);
            }
            None if leaf_of_others => {}
            None => {
                if let Some(child) = t.get_mut(key) {
                    prune_unapplied(child, owned, &Value::Object(Map::new()), &theirs);
                }
            }
        }
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn parent_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for t in tokens {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(t)
                .ok_or_else(|| format!("missing path element {t:?}"))?,
            Value::Array(a) => {
                let i: usize = t.parse().map_err(|_| format!("invalid index {t:?}"))?;
                a.get_mut(i)
                    .ok_or_else(|| format!("index {i} out of range"))?
            }
            _ => return Err(format!("cannot descend into a scalar at {t:?}")),
        };
    }
    Ok(cur)
}

fn get_at(doc: &Value, path: &str) -> Result<Value, String> {
    doc.pointer(path)
        .cloned()
        .ok_or_else(|| format!("path {path:?} does not exist"))
}

fn remove_at(doc: &mut Value, path: &str) -> Result<Value, String> {
    let tokens = split_pointer(path)?;
    let (last, parent) = tokens
        .split_last()
        .ok_or("cannot remove the whole document")?;
    match parent_mut(doc, parent)? {
        Value::Object(m) => m
            .remove(last)
            .ok_or_else(|| format!("path {path:?} does not exist")),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("invalid index {last:?}"))?;
            if i >= a.len() {
                return Err(format!("index {i} out of range"));
            }
            Ok(a.remove(i))
        }
        _ => Err(format!("path {path:?} does not exist")),
    }
}

fn add_at(doc: &mut Value, path: &str, value: Value, replace: bool) -> Result<(), String> {
    let tokens = split_pointer(path)?;
    let Some((last, parent)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, parent)? {
        Value::Object(m) => {
            if replace && !m.contains_key(last) {
                return Err(format!("path {path:?} does not exist"));
            }
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" && !replace {
                a.push(value);
                return Ok(());
            }
            let i: usize = last
                .parse()
                .map_err(|_| format!("invalid index {last:?}"))?;
            if replace {
                let slot = a
                    .get_mut(i)
                    .ok_or_else(|| format!("index {i} out of range"))?;
                *slot = value;
            } else {
                if i > a.len() {
                    return Err(format!("index {i} out of range"));
                }
                a.insert(i, value);
            }
            Ok(())
        }
        _ => Err(format!("path {path:?} does not exist")),
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops.as_array().ok_or("a JSON patch must be a list")?;
    for op in ops {
        let path = op["path"].as_str().ok_or("every operation needs a path")?;
        match op["op"].as_str() {
            Some("add") => add_at(doc, path, op["value"].clone(), false)?,
            Some("replace") => add_at(doc, path, op["value"].clone(), true)?,
            Some("remove") => {
                remove_at(doc, path)?;
            }
            Some("test") => {
                if get_at(doc, path)? != op["value"] {
                    return Err(format!("test failed at {path:?}"));
                }
            }
            Some(kind @ ("move" | "copy")) => {
                let from = op["from"].as_str().ok_or("move and copy need from")?;
                let value = if kind == "move" {
                    remove_at(doc, from)?
                } else {
                    get_at(doc, from)?
                };
                add_at(doc, path, value, false)?;
            }
            other => return Err(format!("unknown operation {other:?}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_named_lists() {
        let mut t = json!({"spec": {"containers": [{"name": "a", "image": "x", "args": ["1"]},
                                                   {"name": "b", "image": "y"}]}});
        strategic_merge(
            &mut t,
            &json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                              "containers": [{"name": "a", "image": "z"},
                                             {"name": "b", "$patch": "delete"}]}}),
        );
        assert_eq!(
            t,
            json!({"spec": {"containers": [{"name": "a", "image": "z", "args": ["1"]}]}})
        );
    }

    #[test]
    fn json_patch_operations() {
        let mut d = json!({"a": [1, 2], "b": {"c": 1}});
        json_patch(
            &mut d,
            &json!([
                {"op": "add", "path": "/a/-", "value": 3},
                {"op": "replace", "path": "/b/c", "value": 2},
                {"op": "test", "path": "/b/c", "value": 2},
                {"op": "move", "from": "/b/c", "path": "/d"},
                {"op": "remove", "path": "/a/0"}
            ]),
        )
        .unwrap();
        assert_eq!(d, json!({"a": [2, 3], "b": {}, "d": 2}));
        assert!(json_patch(
            &mut d,
            &json!([{"op": "replace", "path": "/x", "value": 1}])
        )
        .is_err());
    }

    #[test]
    fn a_field_no_longer_applied_goes_unless_another_manager_applied_it() {
        let first = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}},
            "data": {"x": "1", "y": "2"}});
        let before = applied_fields(&first, false);
        assert_eq!(
            before,
            json!({"f:metadata": {"f:labels": {"f:a": {}, "f:b": {}}},
                   "f:data": {"f:x": {}, "f:y": {}}})
        );
        let second = json!({"metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"x": "3"}});
        let now = applied_fields(&second, false);
        let mut stored = first.clone();
        stored["data"]["z"] = json!("set by someone else");
        let other = json!({"f:metadata": {"f:labels": {"f:b": {}}}});
        prune_unapplied(&mut stored, &before, &now, &[&other]);
        apply_merge(&mut stored, &second);
        assert_eq!(stored["metadata"]["labels"], json!({"a": "1", "b": "2"}));
        assert_eq!(
            stored["data"],
            json!({"x": "3", "z": "set by someone else"})
        );
    }

    #[test]
    fn apply_merges_over_what_is_stored() {
        let mut t = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1, "l": [1, 2]}});
        apply_merge(
            &mut t,
            &json!({"metadata": {"labels": {"b": "2"}}, "spec": {"l": [3]}}),
        );
        assert_eq!(
            t,
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1, "l": [3]}})
        );
    }
}
