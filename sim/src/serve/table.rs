//! `kubectl get` output: the server renders objects as a `meta.k8s.io/v1` Table. Custom
//! resources use their CRD's printer columns (simple JSONPath); built-in types the columns the
//! real API server shows, as far as the simulated objects carry the data.

use serde_json::{json, Value};

use super::resources::ResourceType;

/// What a Table row carries besides its cells (`?includeObject=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// Milliseconds since the epoch of an RFC 3339 time (`2026-01-01T00:00:00Z`, fractions and
/// offsets allowed).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(|c| c.is_ascii_digit()).collect();
        rest = &frac[digits.len()..];
        let padded = format!("{digits:0<3}");
        millis = padded[..3].parse().ok()?;
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o[1..3].parse::<i64>().ok()? * 60 + o[4..6].parse::<i64>().ok()?)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) - offset_min * 60) * 1000 + millis)
}

/// Kubernetes' `HumanDuration`: `5s`, `3m2s`, `4h10m`, `2d3h`, ...
pub fn human_duration(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The age of a timestamp field, or `<unknown>`.
fn age(v: &Value, now: i64) -> Value {
    match v.as_str().and_then(parse_rfc3339) {
        Some(t) => json!(human_duration(now - t)),
        None => json!("<unknown>"),
    }
}

/// A JSONPath of printer columns, the simple forms: `.a.b`, `.a[0].b`, `.a['x.y']`,
/// `{.a.b}`. None when the path leads nowhere.
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let path = path.strip_prefix('$').unwrap_or(path);
    let mut cur = obj;
    let chars: Vec<char> = path.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let mut key = String::new();
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    key.push(chars[i]);
                    i += 1;
                }
                if key.is_empty() {
                    continue;
                }
                cur = cur.get(&key)?;
            }
            '[' => {
                let end = chars[i..].iter().position(|c| *c == ']')? + i;
                let inner: String = chars[i + 1..end].iter().collect();
                let inner = inner.trim();
                if let Some(quoted) = inner
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                {
                    cur = cur.get(quoted)?;
                } else {
                    let n: i64 = inner.parse().ok()?;
                    let arr = cur.as_array()?;
                    let idx = if n < 0 { arr.len() as i64 + n } else { n };
                    cur = arr.get(usize::try_from(idx).ok()?)?;
                }
                i = end + 1;
            }
            _ => {
                // A path without its leading dot: `status.x`.
                let mut key = String::new();
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    key.push(chars[i]);
                    i += 1;
                }
                cur = cur.get(&key)?;
            }
        }
    }
    Some(cur)
}

fn column(name: &str, type_: &str, format: &str, priority: i64, description: &str) -> Value {
    json!({"name": name, "type": type_, "format": format, "description": description, "priority": priority})
}

fn name_column() -> Value {
    column(
        "Name",
        "string",
        "name",
        0,
        "Name must be unique within a namespace.",
    )
}

fn age_column() -> Value {
    column(
        "Age",
        "string",
        "",
        0,
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    )
}

/// The column definitions for a type.
pub fn columns(rt: &ResourceType) -> Vec<Value> {
    if rt.custom {
        let mut out = vec![name_column()];
        for c in &rt.columns {
            out.push(column(
                &c.name,
                &c.type_,
                &c.format,
                c.priority,
                &c.description,
            ));
        }
        return out;
    }
    let s = |n: &str| column(n, "string", "", 0, "");
    let wide = |n: &str| column(n, "string", "", 1, "");
    match rt.kind.as_str() {
        "Pod" => vec![
            name_column(),
            s("Ready"),
            s("Status"),
            column("Restarts", "string", "", 0, ""),
            age_column(),
            wide("IP"),
            wide("Node"),
            wide("Nominated Node"),
            wide("Readiness Gates"),
        ],
        "Deployment" => vec![
            name_column(),
            s("Ready"),
            column("Up-to-date", "integer", "", 0, ""),
            column("Available", "integer", "", 0, ""),
            age_column(),
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        "Service" => vec![
            name_column(),
            s("Type"),
            s("Cluster-IP"),
            s("External-IP"),
            s("Port(s)"),
            age_column(),
            wide("Selector"),
        ],
        "ConfigMap" => vec![
            name_column(),
            column("Data", "integer", "", 0, ""),
            age_column(),
        ],
        "Namespace" => vec![name_column(), s("Status"), age_column()],
        "Lease" => vec![name_column(), s("Holder"), age_column()],
        "Event" => vec![
            s("Last Seen"),
            s("Type"),
            s("Reason"),
            s("Object"),
            s("Message"),
            wide("Subobject"),
            wide("Source"),
            wide("First Seen"),
            column("Count", "integer", "", 1, ""),
            column("Name", "string", "name", 1, ""),
        ],
        crate::serve::resources::CRD_KIND => {
            vec![name_column(), column("Created At", "date", "", 0, "")]
        }
        _ => vec![name_column(), age_column()],
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn or_none(s: String) -> Value {
    if s.is_empty() {
        json!("<none>")
    } else {
        json!(s)
    }
}

fn selector_text(v: &Value) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", text(v)))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// The cells of one object's row.
pub fn cells(rt: &ResourceType, obj: &Value, now: i64) -> Vec<Value> {
    let name = obj["metadata"]["name"].clone();
    let created = age(&obj["metadata"]["creationTimestamp"], now);
    if rt.custom {
        let mut out = vec![name];
        for c in &rt.columns {
            let v = json_path(obj, &c.json_path);
            out.push(match v {
                None | Some(Value::Null) => Value::Null,
                Some(v) if c.type_ == "date" => age(v, now),
                Some(Value::String(s)) => json!(s),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => v.clone(),
                Some(other) => json!(other.to_string()),
            });
        }
        return out;
    }
    let status = &obj["status"];
    let spec = &obj["spec"];
    match rt.kind.as_str() {
        "Pod" => {
            let statuses = status["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let total = spec["containers"]
                .as_array()
                .map(|c| c.len())
                .unwrap_or(0)
                .max(statuses.len());
            let ready = statuses.iter().filter(|c| c["ready"] == true).count();
            let restarts: i64 = statuses
                .iter()
                .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                .sum();
            let waiting = statuses
                .iter()
                .find_map(|c| c["state"]["waiting"]["reason"].as_str());
            let phase = if obj["metadata"].get("deletionTimestamp").is_some() {
                "Terminating".to_string()
            } else if let Some(w) = waiting {
                w.to_string()
            } else {
                status["phase"].as_str().unwrap_or("Pending").to_string()
            };
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(phase),
                json!(restarts.to_string()),
                created,
                or_none(text(&status["podIP"])),
                or_none(text(&spec["nodeName"])),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        "Deployment" => {
            let replicas = spec["replicas"].as_i64().unwrap_or(1);
            let ready = status["readyReplicas"].as_i64().unwrap_or(0);
            let updated = status["updatedReplicas"]
                .as_i64()
                .or_else(|| status["replicas"].as_i64())
                .unwrap_or(0);
            let available = status["availableReplicas"].as_i64().unwrap_or(0);
            let containers = spec["template"]["spec"]["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let names: Vec<String> = containers.iter().map(|c| text(&c["name"])).collect();
            let images: Vec<String> = containers.iter().map(|c| text(&c["image"])).collect();
            vec![
                name,
                json!(format!("{ready}/{replicas}")),
                json!(updated),
                json!(available),
                created,
                json!(names.join(",")),
                json!(images.join(",")),
                or_none(selector_text(&spec["selector"]["matchLabels"])),
            ]
        }
        "Service" => {
            let ports: Vec<String> = spec["ports"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!(
                                "{}/{}",
                                text(&p["port"]),
                                p["protocol"].as_str().unwrap_or("TCP")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            vec![
                name,
                json!(spec["type"].as_str().unwrap_or("ClusterIP")),
                or_none(text(&spec["clusterIP"])),
                json!("<none>"),
                or_none(ports.join(",")),
                created,
                or_none(selector_text(&spec["selector"])),
            ]
        }
        "ConfigMap" => {
            let data = obj["data"].as_object().map(|m| m.len()).unwrap_or(0)
                + obj["binaryData"].as_object().map(|m| m.len()).unwrap_or(0);
            vec![name, json!(data), created]
        }
        "Namespace" => vec![
            name,
            json!(status["phase"].as_str().unwrap_or("Active")),
            created,
        ],
        "Lease" => vec![name, json!(text(&spec["holderIdentity"])), created],
        "Event" => {
            let core;
            let obj = if rt.group == "events.k8s.io" {
                core = super::events::to_core(obj);
                &core
            } else {
                obj
            };
            let last = if obj["lastTimestamp"].is_string() {
                &obj["lastTimestamp"]
            } else {
                &obj["eventTime"]
            };
            let involved = &obj["involvedObject"];
            vec![
                age(last, now),
                obj["type"].clone(),
                obj["reason"].clone(),
                json!(format!(
                    "{}/{}",
                    text(&involved["kind"]).to_lowercase(),
                    text(&involved["name"])
                )),
                obj["message"].clone(),
                json!(text(&involved["fieldPath"])),
                json!(text(&obj["source"]["component"])),
                age(&obj["firstTimestamp"], now),
                json!(obj["count"].as_i64().unwrap_or(1)),
                name,
            ]
        }
        crate::serve::resources::CRD_KIND => {
            vec![name, obj["metadata"]["creationTimestamp"].clone()]
        }
        _ => vec![name, created],
    }
}

fn row(rt: &ResourceType, obj: &Value, now: i64, include: IncludeObject) -> Value {
    let mut row = json!({"cells": cells(rt, obj, now)});
    match include {
        IncludeObject::None => {}
        IncludeObject::Object => row["object"] = obj.clone(),
        IncludeObject::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            })
        }
    }
    row
}

/// A Table of objects.
pub fn table(
    rt: &ResourceType,
    objects: &[Value],
    now: i64,
    resource_version: &str,
    include: IncludeObject,
) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns(rt),
        "rows": objects.iter().map(|o| row(rt, o, now, include)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_read_as_kubectl_prints_them() {
        assert_eq!(human_duration(5_000), "5s");
        assert_eq!(human_duration(119_000), "119s");
        assert_eq!(human_duration(185_000), "3m5s");
        assert_eq!(human_duration(20 * 60_000), "20m");
        assert_eq!(human_duration(4 * 3_600_000 + 60_000), "4h1m");
        assert_eq!(human_duration(50 * 3_600_000), "2d2h");
    }

    #[test]
    fn rfc3339_round_trips() {
        let t = crate::world::EPOCH_MS + 90_061_000;
        assert_eq!(parse_rfc3339(&crate::world::rfc3339(t)), Some(t));
        assert_eq!(
            parse_rfc3339("2026-01-01T01:00:00.5+01:00"),
            Some(crate::world::EPOCH_MS + 500)
        );
    }

    #[test]
    fn simple_json_paths() {
        let v = json!({"status": {"jobStatus": {"state": "RUNNING"}, "list": [{"a": 1}],
                       "labels": {"x.y/z": "q"}}});
        assert_eq!(
            json_path(&v, ".status.jobStatus.state"),
            Some(&json!("RUNNING"))
        );
        assert_eq!(json_path(&v, ".status.list[0].a"), Some(&json!(1)));
        assert_eq!(json_path(&v, ".status.labels['x.y/z']"), Some(&json!("q")));
        assert_eq!(json_path(&v, "{.status.list[-1].a}"), Some(&json!(1)));
        assert_eq!(json_path(&v, ".status.missing"), None);
    }
}
