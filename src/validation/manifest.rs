//! Validation of manifest files as users apply them: multi-document YAML, any kinds.
//!
//! Each document is parsed (a YAML syntax error is reported as `FILE:LINE:COLUMN: message`);
//! FlinkDeployment and FlinkSessionJob documents (`flink.apache.org/v1beta1`) are checked
//! structurally — `apiVersion`, `kind`, `metadata`, and `spec`/`status` against the generated
//! CRD schema — and then semantically ([`super::validate_deployment`],
//! [`super::validate_session_job`]). Other kinds are skipped with a note. A FlinkSessionJob
//! whose session FlinkDeployment (same name and namespace) is anywhere in the file set is
//! validated against it.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::rules::{dedup, valid_dns_label, valid_name, validate_deployment, validate_session_job};
use super::schema::{self, type_name};
use super::Problem;
use crate::crd::{FlinkDeployment, FlinkSessionJob, API_VERSION};

const GROUP: &str = "flink.apache.org";
/// The label that marks a canary resource (watched for operator health, never deployed).
pub const CANARY_LABEL: &str = "flink.apache.org/canary";

/// A problem in a file: in one of its resources, in a document that is not a resource, or in
/// the file as a whole (a YAML syntax error, with its position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    pub file: String,
    /// `FlinkDeployment/basic-example`, `document 2`, or empty for the whole file.
    pub resource: String,
    /// Line and column (1-based) of a YAML syntax error.
    pub position: Option<(u64, u64)>,
    pub problem: Problem,
}

impl fmt::Display for FileProblem {
    /// `FILE:LINE:COLUMN: message`, `FILE: KIND/NAME: field.path: message`, or `FILE: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((line, column)) = self.position {
            write!(f, "{}:{line}:{column}: {}", self.file, self.problem.message)
        } else if self.resource.is_empty() {
            write!(f, "{}: {}", self.file, self.problem)
        } else {
            write!(f, "{}: {}: {}", self.file, self.resource, self.problem)
        }
    }
}

/// What was found, in file and document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Problem(FileProblem),
    /// Something skipped or not checked; not a problem.
    Note {
        file: String,
        message: String,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Problem(p) => p.fmt(f),
            Finding::Note { file, message } => write!(f, "{file}: note: {message}"),
        }
    }
}

/// The outcome of validating a set of files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestReport {
    pub files: usize,
    /// FlinkDeployment and FlinkSessionJob documents seen.
    pub resources: usize,
    pub findings: Vec<Finding>,
}

impl ManifestReport {
    pub fn problems(&self) -> impl Iterator<Item = &FileProblem> {
        self.findings.iter().filter_map(|f| match f {
            Finding::Problem(p) => Some(p),
            Finding::Note { .. } => None,
        })
    }

    pub fn notes(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| matches!(f, Finding::Note { .. }))
    }

    pub fn is_valid(&self) -> bool {
        self.problems().next().is_none()
    }
}

impl fmt::Display for ManifestReport {
    /// One line per finding, then `N files, M resources, K problems`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(f, "{finding}")?;
        }
        writeln!(
            f,
            "{} files, {} resources, {} problems",
            self.files,
            self.resources,
            self.problems().count()
        )
    }
}

/// Validates every document of one multi-document manifest file. Notes about skipped
/// documents are dropped; use [`validate_manifest_files`] for the whole report.
pub fn validate_manifest_text(file: &str, text: &str) -> Vec<FileProblem> {
    validate_manifest_files(&[(file, text)])
        .problems()
        .cloned()
        .collect()
}

/// `FILE:LINE:COLUMN: message` for a YAML parser error (`FILE: message` without a position).
pub fn yaml_error(file: &str, error: &serde_saphyr::Error) -> String {
    let (position, message) = yaml_error_parts(error);
    match position {
        Some((line, column)) => format!("{file}:{line}:{column}: {message}"),
        None => format!("{file}: {message}"),
    }
}

/// The position and the one-line message of a YAML parser error.
pub fn yaml_error_parts(error: &serde_saphyr::Error) -> (Option<(u64, u64)>, String) {
    let text = error.to_string();
    let first = text.lines().next().unwrap_or("").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // The rendered message leads with `line L column C: `; the location says the same.
    let (mut position, mut message) = (None, first.to_string());
    if let Some(rest) = first.strip_prefix("line ") {
        if let Some((pos, msg)) = rest.split_once(": ") {
            if let Some((l, c)) = pos.split_once(" column ") {
                if let (Ok(l), Ok(c)) = (l.trim().parse(), c.trim().parse()) {
                    position = Some((l, c));
                    message = msg.to_string();
                }
            }
        }
    }
    if position.is_none() {
        position = error
            .location()
            .map(|l| (l.line(), l.column()))
            .filter(|(l, _)| *l > 0);
    }
    // Say it in the user's terms, not the parser's.
    if let Some((head, _)) = message.split_once(", set DuplicateKeyPolicy") {
        message = format!("{head}: a key may appear only once");
    }
    if message.starts_with("budget breached") {
        message = if message.contains("Depth") {
            "nested too deeply".to_string()
        } else {
            format!("too large to read ({message})")
        };
    }
    if message.is_empty() {
        message = "invalid YAML".to_string();
    }
    (position, message)
}

/// One Flink resource document, between the two passes.
struct Entry {
    file: usize,
    label: String,
    problems: Vec<Problem>,
    /// Notes about this resource, printed before its problems.
    notes: Vec<String>,
    /// A session job waiting for the second pass, with the paths of its structural problems.
    job: Option<(FlinkSessionJob, Vec<String>)>,
}

/// Where a document's findings go, in order.
enum Slot {
    Finding(Finding),
    Entry(usize),
}

/// Validates a set of files together: session jobs see session clusters defined in any of them.
pub fn validate_manifest_files(files: &[(&str, &str)]) -> ManifestReport {
    let files: Vec<(&str, Option<&str>)> = files.iter().map(|(f, t)| (*f, Some(*t))).collect();
    validate_files(&files)
}

/// [`validate_manifest_files`] for file contents as read: a file that is not UTF-8 text is a
/// problem of that file.
pub fn validate_manifest_bytes(files: &[(&str, &[u8])]) -> ManifestReport {
    let files: Vec<(&str, Option<&str>)> = files
        .iter()
        .map(|(f, b)| (*f, std::str::from_utf8(b).ok()))
        .collect();
    validate_files(&files)
}

fn validate_files(files: &[(&str, Option<&str>)]) -> ManifestReport {
    let mut report = ManifestReport {
        files: files.len(),
        ..ManifestReport::default()
    };
    let mut slots: Vec<Slot> = Vec::new();
    let mut entries: Vec<Entry> = Vec::new();
    // Deployments by (namespace, name), for session jobs; and where each resource was first seen.
    let mut deployments: BTreeMap<(String, String), FlinkDeployment> = BTreeMap::new();
    let mut seen: BTreeMap<(String, String, String), String> = BTreeMap::new();

    for (index, (file, text)) in files.iter().enumerate() {
        let Some(text) = text else {
            slots.push(Slot::Finding(Finding::Problem(FileProblem {
                file: file.to_string(),
                resource: String::new(),
                position: None,
                problem: Problem::at("", "not a text file (invalid UTF-8)"),
            })));
            continue;
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let docs: Vec<Value> = match serde_saphyr::from_multiple(text) {
            Ok(d) => d,
            Err(e) => {
                let (position, message) = yaml_error_parts(&e);
                let path = position
                    .map(|(l, c)| format!("line {l} column {c}"))
                    .unwrap_or_default();
                slots.push(Slot::Finding(Finding::Problem(FileProblem {
                    file: file.to_string(),
                    resource: String::new(),
                    position,
                    problem: Problem { path, message },
                })));
                continue;
            }
        };
        let mut documents: Vec<(String, &Value)> = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            let number = i + 1;
            // `kind: List` (or `FooList`) with `items`, as kubectl accepts.
            let is_list = doc["kind"]
                .as_str()
                .map(|k| k.ends_with("List"))
                .unwrap_or(false);
            match &doc["items"] {
                Value::Array(items) if is_list => {
                    for (j, item) in items.iter().enumerate() {
                        documents.push((format!("document {number} items[{j}]"), item));
                    }
                }
                _ => documents.push((format!("document {number}"), doc)),
            }
        }
        for (where_, doc) in documents {
            let note = |message: String| {
                Slot::Finding(Finding::Note {
                    file: file.to_string(),
                    message,
                })
            };
            let problem = |resource: &str, problem: Problem| {
                Slot::Finding(Finding::Problem(FileProblem {
                    file: file.to_string(),
                    resource: resource.to_string(),
                    position: None,
                    problem,
                }))
            };
            let map = match doc {
                Value::Null => continue,
                Value::Object(map) => map,
                other => {
                    slots.push(problem(
                        &where_,
                        Problem::at(
                            "",
                            format!(
                                "a Kubernetes object must be a mapping (apiVersion, kind, metadata…), not {}",
                                describe(other)
                            ),
                        ),
                    ));
                    continue;
                }
            };
            let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
            let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
            let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
            let ours = kind == "FlinkDeployment" || kind == "FlinkSessionJob";
            if !ours || !(api_version.is_empty() || group == GROUP) {
                let what = match (api_version, kind) {
                    ("", "") => "no apiVersion or kind".to_string(),
                    (a, "") => format!("{a}, no kind"),
                    ("", k) => format!("{k}, no apiVersion"),
                    (a, k) => format!("{a} {k}"),
                };
                if kind.is_empty() {
                    // kubectl refuses an object without a kind.
                    slots.push(problem(
                        &where_,
                        Problem::at("kind", format!("is required ({what})")),
                    ));
                } else {
                    let why = if group == GROUP {
                        "only FlinkDeployment and FlinkSessionJob are validated"
                    } else {
                        "not a FlinkDeployment or FlinkSessionJob"
                    };
                    slots.push(note(format!("{where_} ({what}) skipped: {why}")));
                }
                continue;
            }
            report.resources += 1;
            let entry = check_resource(
                (index, file, &where_),
                doc,
                map,
                &mut seen,
                &mut deployments,
            );
            slots.push(Slot::Entry(entries.len()));
            entries.push(entry);
        }
    }

    // Second pass: session jobs, now that every session cluster of the file set is known.
    let defaults = BTreeMap::new();
    for entry in &mut entries {
        if let Some((job, structural)) = entry.job.take() {
            let key = (
                job.metadata.namespace.clone().unwrap_or_default(),
                job.spec.deployment_name.clone().unwrap_or_default(),
            );
            let session = deployments.get(&key);
            if session.is_none() && valid_name(&key.1) {
                entry.notes.push(format!(
                    "{}: session cluster '{}' is not in these files; the rules that need its configuration were skipped",
                    entry.label, key.1
                ));
            }
            let semantic = validate_session_job(&job, session, None, &defaults);
            entry
                .problems
                .extend(semantic.into_iter().filter(|p| fresh(&structural, p)));
        }
    }

    for slot in slots {
        match slot {
            Slot::Finding(f) => report.findings.push(f),
            Slot::Entry(i) => {
                let entry = &entries[i];
                let file = files[entry.file].0;
                for message in &entry.notes {
                    report.findings.push(Finding::Note {
                        file: file.to_string(),
                        message: message.clone(),
                    });
                }
                for problem in dedup(entry.problems.clone()) {
                    report.findings.push(Finding::Problem(FileProblem {
                        file: file.to_string(),
                        resource: entry.label.clone(),
                        position: None,
                        problem,
                    }));
                }
            }
        }
    }
    report
}

/// The structural and semantic checks of one FlinkDeployment or FlinkSessionJob document;
/// session jobs wait in the entry for the second pass. `at` is (file index, file, document).
fn check_resource(
    at: (usize, &str, &str),
    doc: &Value,
    map: &serde_json::Map<String, Value>,
    seen: &mut BTreeMap<(String, String, String), String>,
    deployments: &mut BTreeMap<(String, String), FlinkDeployment>,
) -> Entry {
    let (index, file, where_) = at;
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let name = doc["metadata"]["name"].as_str().unwrap_or("");
    let namespace = doc["metadata"]["namespace"].as_str().unwrap_or("");
    let label = format!("{kind}/{}", if name.is_empty() { "?" } else { name });
    let mut entry = Entry {
        file: index,
        label,
        problems: Vec::new(),
        notes: Vec::new(),
        job: None,
    };
    // Offending values (JSON pointers), set aside so the rest can still be read.
    let mut aside: Vec<String> = Vec::new();
    check_document(map, api_version, &mut entry.problems, &mut aside);
    if !name.is_empty() {
        let key = (kind.to_string(), namespace.to_string(), name.to_string());
        let here = format!("{file} {where_}");
        if let Some(first) = seen.get(&key) {
            entry.problems.push(Problem::at(
                "metadata.name",
                format!("{kind} {name} is defined twice (first in {first}); the second replaces the first"),
            ));
        } else {
            seen.insert(key, here);
        }
    }
    let canary = doc["metadata"]["labels"][CANARY_LABEL]
        .as_str()
        .map(|v| v.eq_ignore_ascii_case("true"))
        .unwrap_or(false);
    if canary {
        entry.notes.push(format!(
            "{}: canary resource (label {CANARY_LABEL}): only its structure is checked",
            entry.label
        ));
    } else if map.get("spec").is_none_or(Value::is_null) {
        entry.problems.push(Problem::at("spec", "is required"));
    }
    let structural: Vec<String> = entry.problems.iter().map(|p| p.path.clone()).collect();
    let mut readable = doc.clone();
    for pointer in &aside {
        set_aside(&mut readable, pointer);
    }
    let structural_ok = entry.problems.is_empty();
    if kind == "FlinkDeployment" {
        match serde_json::from_value::<FlinkDeployment>(readable) {
            Ok(fd) => {
                if !canary {
                    let defaults = BTreeMap::new();
                    let semantic = validate_deployment(&fd, None, &defaults);
                    entry
                        .problems
                        .extend(semantic.into_iter().filter(|p| fresh(&structural, p)));
                }
                deployments
                    .entry((namespace.to_string(), name.to_string()))
                    .or_insert(fd);
            }
            Err(e) if structural_ok && !canary => {
                entry.problems.push(Problem::at("", e.to_string()))
            }
            Err(_) => {}
        }
    } else {
        match serde_json::from_value::<FlinkSessionJob>(readable) {
            Ok(job) if !canary => entry.job = Some((job, structural)),
            Ok(_) => {}
            Err(e) if structural_ok && !canary => {
                entry.problems.push(Problem::at("", e.to_string()))
            }
            Err(_) => {}
        }
    }
    entry
}

fn describe(v: &Value) -> String {
    match v {
        Value::Array(_) => "a list".to_string(),
        Value::String(s) if s.chars().count() > 40 => {
            format!("the text '{}…'", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("the text '{s}'"),
        other => format!("the {} {other}", type_name(other)),
    }
}

/// The OpenAPI schema of each kind, generated once: it is a constant of the build.
fn crd_schemas() -> &'static BTreeMap<String, Value> {
    static SCHEMAS: std::sync::OnceLock<BTreeMap<String, Value>> = std::sync::OnceLock::new();
    SCHEMAS.get_or_init(|| {
        crate::crd::crds()
            .into_iter()
            .map(|c| {
                let schema = serde_json::to_value(&c.spec.versions[0].schema).unwrap_or_default();
                (c.spec.names.kind.clone(), schema["openAPIV3Schema"].clone())
            })
            .collect()
    })
}

/// The structural part: top-level fields, apiVersion, metadata, spec and status.
fn check_document(
    map: &serde_json::Map<String, Value>,
    api_version: &str,
    out: &mut Vec<Problem>,
    aside: &mut Vec<String>,
) {
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version.is_empty() {
        out.push(Problem::at(
            "apiVersion",
            format!("is required ({API_VERSION})"),
        ));
    } else if api_version != API_VERSION {
        out.push(Problem::at(
            "apiVersion",
            format!("{api_version} is not served; use {API_VERSION}"),
        ));
    }
    for key in map.keys() {
        if !["apiVersion", "kind", "metadata", "spec", "status"].contains(&key.as_str()) {
            out.push(Problem::at(
                key,
                "unknown field; known fields: apiVersion, kind, metadata, spec, status",
            ));
        }
    }
    check_metadata(map.get("metadata"), out, aside);
    if let Some(schema) = crd_schemas().get(kind) {
        for part in ["spec", "status"] {
            if let Some(v) = map.get(part) {
                let mut located = Vec::new();
                schema::check_located(
                    v,
                    &schema["properties"][part],
                    part,
                    &format!("/{part}"),
                    &mut located,
                );
                for (problem, pointer) in located {
                    out.push(problem);
                    aside.push(pointer);
                }
            }
        }
    }
}

/// A semantic problem at (or below) a field whose structure is already reported says nothing
/// new (a bad enum value is set aside, and then "must be defined" would follow).
fn fresh(structural: &[String], p: &Problem) -> bool {
    !structural.iter().any(|s| {
        p.path == *s
            || (p.path.starts_with(s.as_str())
                && matches!(p.path.as_bytes().get(s.len()), Some(b'.' | b'[')))
    })
}

/// Removes the value at `pointer` (from its mapping; a list element becomes null).
fn set_aside(doc: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let key = last.replace("~1", "/").replace("~0", "~");
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(&key);
        }
        Some(Value::Array(items)) => {
            if let Some(item) = key.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *item = Value::Null;
            }
        }
        _ => {}
    }
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// `metadata` as the API server checks it for these kinds (ObjectMeta).
fn check_metadata(metadata: Option<&Value>, out: &mut Vec<Problem>, aside: &mut Vec<String>) {
    let map = match metadata {
        None | Some(Value::Null) => {
            out.push(Problem::at("metadata.name", "is required"));
            return;
        }
        Some(Value::Object(map)) => map,
        Some(other) => {
            out.push(Problem::at(
                "metadata",
                format!("must be of type object, not {}", type_name(other)),
            ));
            aside.push("/metadata".to_string());
            return;
        }
    };
    match map.get("name") {
        None | Some(Value::Null) => out.push(Problem::at("metadata.name", "is required")),
        Some(Value::String(s)) if s.is_empty() => {
            out.push(Problem::at("metadata.name", "is required"))
        }
        Some(Value::String(_)) => {}
        Some(other) => {
            out.push(Problem::at(
                "metadata.name",
                format!("must be of type string, not {}", type_name(other)),
            ));
            aside.push("/metadata/name".to_string());
        }
    }
    for (key, value) in map {
        let path = format!("metadata.{key}");
        let expected = match key.as_str() {
            "name" => continue,
            "namespace" | "generateName" | "uid" | "resourceVersion" | "selfLink"
            | "creationTimestamp" | "deletionTimestamp" => "string",
            "generation" | "deletionGracePeriodSeconds" => "integer",
            "labels" | "annotations" => "map",
            "finalizers" => "list of strings",
            "ownerReferences" | "managedFields" => "array",
            _ => {
                out.push(Problem::at(&path, "unknown field"));
                aside.push(format!("/metadata/{}", escape_pointer(key)));
                continue;
            }
        };
        if value.is_null() {
            continue;
        }
        let ok = match expected {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "array" => value.is_array(),
            "list of strings" => value
                .as_array()
                .map(|a| a.iter().all(Value::is_string))
                .unwrap_or(false),
            _ => value.is_object(),
        };
        if !ok {
            out.push(Problem::at(
                &path,
                format!("must be a {expected}, not {}", type_name(value)),
            ));
            aside.push(format!("/metadata/{}", escape_pointer(key)));
            continue;
        }
        if key == "namespace" {
            let ns = value.as_str().unwrap_or("");
            if !valid_dns_label(ns) {
                out.push(Problem::at(
                    &path,
                    format!("'{ns}' is not a valid namespace: lower case letters, digits and '-', at most 63 characters"),
                ));
            }
        }
        if key == "labels" || key == "annotations" {
            for (k, v) in value.as_object().into_iter().flatten() {
                let here = format!("{path}.{k}");
                match v {
                    Value::String(s) => {
                        if key == "labels" && !valid_label_value(s) {
                            out.push(Problem::at(
                                &here,
                                format!("'{s}' is not a valid label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"),
                            ));
                        }
                    }
                    other => {
                        out.push(Problem::at(
                            &here,
                            format!(
                                "must be of type string, not {} (quote it: \"{}\")",
                                type_name(other),
                                other
                            ),
                        ));
                        aside.push(format!("/metadata/{key}/{}", escape_pointer(k)));
                    }
                }
                if !valid_qualified_name(k) {
                    out.push(Problem::at(
                        &here,
                        format!("'{k}' is not a valid {} key: [prefix/]name, the name at most 63 letters, digits, '-', '_' or '.'", &key[..key.len() - 1]),
                    ));
                }
            }
        }
    }
}

fn valid_label_value(v: &str) -> bool {
    v.is_empty() || valid_name_part(v)
}

/// Letters, digits, `-`, `_`, `.`, at most 63, alphanumeric at both ends.
fn valid_name_part(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// A label or annotation key: an optional DNS-subdomain prefix and `/`, then a name part.
fn valid_qualified_name(k: &str) -> bool {
    match k.rsplit_once('/') {
        Some((prefix, name)) => super::rules::valid_object_name(prefix) && valid_name_part(name),
        None => valid_name_part(k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        validate_manifest_text("f.yaml", text)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const GOOD: &str = "apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata: {name: ok}
spec:
  flinkVersion: v1_20
  jobManager: {resource: {memory: 1g, cpu: 1}}
  taskManager: {resource: {memory: 1g, cpu: 1}}
";

    #[test]
    fn a_valid_deployment_has_no_problems() {
        assert_eq!(lines(GOOD), Vec::<String>::new());
    }

    #[test]
    fn yaml_errors_have_line_and_column() {
        let l = lines("a: b\n  c: d\n");
        assert_eq!(l.len(), 1);
        assert!(l[0].starts_with("f.yaml:2:"), "{l:?}");
    }

    #[test]
    fn metadata_is_checked() {
        let text = GOOD.replace(
            "metadata: {name: ok}",
            "metadata: {name: ok, namespace: Bad_NS, labels: {a: 1, 'b c': x}, lables: {}}",
        );
        let l = lines(&text);
        assert!(
            l.iter().any(|p| p.contains("metadata.namespace: 'Bad_NS'")),
            "{l:?}"
        );
        assert!(
            l.iter()
                .any(|p| p.contains("metadata.labels.a: must be of type string")),
            "{l:?}"
        );
        assert!(
            l.iter()
                .any(|p| p.contains("metadata.labels.b c: 'b c' is not a valid label key")),
            "{l:?}"
        );
        assert!(
            l.iter()
                .any(|p| p.contains("metadata.lables: unknown field")),
            "{l:?}"
        );
    }

    #[test]
    fn wrong_api_version_and_missing_name() {
        let l = lines(&GOOD.replace("v1beta1", "v1").replace("{name: ok}", "{}"));
        assert_eq!(
            l,
            vec![
                "f.yaml: FlinkDeployment/?: apiVersion: flink.apache.org/v1 is not served; use flink.apache.org/v1beta1",
                "f.yaml: FlinkDeployment/?: metadata.name: is required",
            ]
        );
    }

    #[test]
    fn lists_are_expanded_and_other_kinds_noted() {
        let text = format!(
            "apiVersion: v1\nkind: List\nitems:\n- {}\n- {{apiVersion: v1, kind: ConfigMap, metadata: {{name: c}}}}\n",
            serde_json::to_string(&serde_saphyr::from_str::<Value>(GOOD).unwrap()).unwrap()
        );
        let report = validate_manifest_files(&[("f.yaml", &text)]);
        assert_eq!(report.resources, 1);
        assert!(report.is_valid(), "{report}");
        assert_eq!(
            report.notes().map(ToString::to_string).collect::<Vec<_>>(),
            vec!["f.yaml: note: document 1 items[1] (v1 ConfigMap) skipped: not a FlinkDeployment or FlinkSessionJob"]
        );
    }

    #[test]
    fn canaries_are_not_deployments() {
        let text = "apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata:\n  name: canary\n  labels: {flink.apache.org/canary: \"true\"}\n";
        let report = validate_manifest_files(&[("f.yaml", text)]);
        assert!(report.is_valid(), "{report}");
        assert_eq!(report.notes().count(), 1);
    }

    #[test]
    fn scalars_and_lists_are_not_objects() {
        assert_eq!(
            lines("hello\n"),
            vec!["f.yaml: document 1: a Kubernetes object must be a mapping (apiVersion, kind, metadata…), not the text 'hello'"]
        );
        assert_eq!(lines("- a\n").len(), 1);
        assert_eq!(lines("").len(), 0);
    }

    #[test]
    fn qualified_names() {
        assert!(valid_qualified_name("app.kubernetes.io/name"));
        assert!(valid_qualified_name("flink.apache.org/canary"));
        assert!(valid_qualified_name("app"));
        assert!(!valid_qualified_name("/app"));
        assert!(!valid_qualified_name("a b"));
        assert!(valid_label_value(""));
        assert!(!valid_label_value("-x"));
    }
}
