//! The Kubernetes API over the simulated world's store: routing, discovery, list/get, create,
//! update, patch, delete, the `/status` subresource, selectors, validation of custom resources
//! against their CRD's schema, and errors as `Status` objects. Everything here is synchronous
//! over a [`KubeStore`]; `serve.rs` puts it on HTTP and streams watches.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

use super::patch;
use super::resources::{self, ResourceType, CRD_KIND};
use super::table::{self, IncludeObject};
use crate::kube::{key_of, ApiError, Key, KubeStore};
use crate::world::rfc3339;

/// Namespaces every cluster has; they cannot be deleted.
pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// A request, as the HTTP layer hands it over.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    pub query: Query,
    pub content_type: String,
    pub accept: String,
    pub body: Vec<u8>,
}

/// What the server says.
#[derive(Debug)]
pub enum Reply {
    Json {
        code: u16,
        body: Value,
        warnings: Vec<String>,
    },
    Text {
        code: u16,
        body: String,
    },
    /// A watch: the HTTP layer streams it with [`WatchSpec::initial`] and [`WatchSpec::next`].
    Watch(Box<WatchSpec>),
}

impl Reply {
    fn ok(body: Value) -> Self {
        Reply::Json {
            code: 200,
            body,
            warnings: Vec::new(),
        }
    }
}

/// What the server knows about itself and hands out.
#[derive(Debug, Default)]
pub struct ServerInfo {
    /// `127.0.0.1:PORT`.
    pub address: String,
    counter: AtomicU64,
    /// Lists being read page by page (`limit` and `continue`).
    pages: std::sync::Mutex<Pages>,
}

/// The rest of the lists read in pages: as the API server reads them from one etcd revision,
/// every page of a list shows the objects as they were at its first page. A list not read on
/// within [`PAGED_LISTS`] newer ones is forgotten, and its `continue` answered 410 Expired,
/// as the API server answers one whose revision was compacted.
#[derive(Debug, Default)]
struct Pages {
    next_id: u64,
    /// id → (the list's resourceVersion, the items not handed out yet)
    lists: std::collections::VecDeque<(u64, String, std::collections::VecDeque<Value>)>,
}

/// How many lists read in pages are kept at once.
const PAGED_LISTS: usize = 16;

impl ServerInfo {
    pub fn new(address: String) -> Self {
        ServerInfo {
            address,
            counter: AtomicU64::new(0),
            pages: Default::default(),
        }
    }

    /// The first page of `items` (all of them without a limit, or when they fit) and the
    /// `continue` token for the rest.
    fn first_page(
        &self,
        items: Vec<Value>,
        rv: &str,
        limit: Option<usize>,
    ) -> (Vec<Value>, Option<String>) {
        let Some(limit) = limit.filter(|l| *l < items.len()) else {
            return (items, None);
        };
        let mut rest: std::collections::VecDeque<Value> = items.into();
        let page: Vec<Value> = rest.drain(..limit).collect();
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        pages.next_id += 1;
        let id = pages.next_id;
        pages.lists.push_back((id, rv.to_string(), rest));
        while pages.lists.len() > PAGED_LISTS {
            pages.lists.pop_front();
        }
        (page, Some(format!("{rv}-{id}")))
    }

    /// The next page of the list a `continue` token names, its resourceVersion and the token
    /// for the rest; 410 Expired when it is not kept (or never was).
    fn next_page(
        &self,
        token: &str,
        limit: Option<usize>,
    ) -> Result<(Vec<Value>, String, Option<String>), Failure> {
        let expired = || {
            Failure::expired(
                "The provided continue parameter is too old to display a consistent list result. \
                 You can start a new list without the continue parameter.",
            )
        };
        let id: u64 = token
            .rsplit_once('-')
            .and_then(|(_, id)| id.parse().ok())
            .ok_or_else(expired)?;
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        let at = pages
            .lists
            .iter()
            .position(|(i, _, _)| *i == id)
            .ok_or_else(expired)?;
        let (_, rv, rest) = &mut pages.lists[at];
        let n = limit.unwrap_or(rest.len()).min(rest.len());
        let page: Vec<Value> = rest.drain(..n).collect();
        let rv = rv.clone();
        if rest.is_empty() {
            pages.lists.remove(at);
            Ok((page, rv, None))
        } else {
            Ok((page, rv, Some(token.to_string())))
        }
    }

    /// Five characters for `generateName`.
    fn suffix(&self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut n = self.counter.fetch_add(1, Ordering::Relaxed) * 7_919 + 104_729;
        let mut s = String::new();
        for _ in 0..5 {
            s.push(ALPHABET[(n % ALPHABET.len() as u64) as usize] as char);
            n /= ALPHABET.len() as u64;
        }
        s
    }
}

/// An error as the API server reports it: a `Status` object with an HTTP code.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
}

impl Failure {
    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if !self.details.is_null() {
            s["details"] = self.details.clone();
        }
        s
    }

    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Failure {
            code,
            reason,
            message: message.into(),
            details: Value::Null,
        }
    }

    fn about(mut self, rt: &ResourceType, name: &str) -> Self {
        self.details = json!({"name": name, "group": rt.group, "kind": rt.plural});
        self
    }

    pub fn no_such_path() -> Self {
        Failure::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Failure::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.qualified_plural()),
        )
        .about(rt, name)
    }

    fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Failure::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.qualified_plural()),
        )
        .about(rt, name)
    }

    fn conflict(rt: &ResourceType, name: &str, why: &str) -> Self {
        Failure::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                rt.qualified_plural()
            ),
        )
        .about(rt, name)
    }

    fn invalid(rt: &ResourceType, name: &str, causes: &[(String, String)]) -> Self {
        let texts: Vec<String> = causes
            .iter()
            .map(|(field, msg)| {
                if field.is_empty() {
                    msg.clone()
                } else {
                    format!("{field}: {msg}")
                }
            })
            .collect();
        let joined = if texts.len() == 1 {
            texts[0].clone()
        } else {
            format!("[{}]", texts.join(", "))
        };
        let mut f = Failure::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {joined}", rt.qualified_kind()),
        );
        f.details = json!({
            "name": name,
            "group": rt.group,
            "kind": rt.kind,
            "causes": causes.iter().map(|(field, msg)| json!({"reason": "FieldValueInvalid", "message": msg, "field": field})).collect::<Vec<_>>(),
        });
        f
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Failure::new(400, "BadRequest", message)
    }

    fn forbidden(rt: &ResourceType, name: &str, why: &str) -> Self {
        Failure::new(
            403,
            "Forbidden",
            format!("{} \"{name}\" is forbidden: {why}", rt.qualified_plural()),
        )
        .about(rt, name)
    }

    fn method_not_allowed() -> Self {
        Failure::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    fn unsupported_media(what: &str) -> Self {
        Failure::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml{what}"),
        )
    }

    pub fn expired(message: impl Into<String>) -> Self {
        Failure::new(410, "Expired", message)
    }
}

// ---- query strings and selectors ----

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A URL's query parameters (the last of a repeated one wins).
#[derive(Debug, Clone, Default)]
pub struct Query(pub BTreeMap<String, String>);

impl Query {
    pub fn parse(q: &str) -> Self {
        Query(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn flag(&self, k: &str) -> bool {
        matches!(self.0.get(k).map(String::as_str), Some("true" | "1" | ""))
            && self.0.contains_key(k)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A label or field selector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector(Vec<Requirement>);

fn split_terms(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn set_values(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

impl Selector {
    /// `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for term in split_terms(s) {
            let req = if let Some(k) = term.strip_prefix('!') {
                Requirement::NotExists(k.trim().to_string())
            } else if let Some((k, v)) = term.split_once(" notin ") {
                Requirement::NotIn(
                    k.trim().into(),
                    set_values(v).ok_or(format!("invalid selector {term:?}"))?,
                )
            } else if let Some((k, v)) = term.split_once(" in ") {
                Requirement::In(
                    k.trim().into(),
                    set_values(v).ok_or(format!("invalid selector {term:?}"))?,
                )
            } else if let Some((k, v)) = term.split_once("!=") {
                Requirement::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = term.split_once("==") {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = term.split_once('=') {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if term.contains(|c: char| c.is_whitespace() || c == '(' || c == ')') {
                return Err(format!("unable to parse requirement: {term:?}"));
            } else {
                Requirement::Exists(term)
            };
            reqs.push(req);
        }
        Ok(Selector(reqs))
    }

    fn matches_with(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => lookup(k).as_deref() == Some(v.as_str()),
            Requirement::NotEquals(k, v) => lookup(k).as_deref() != Some(v.as_str()),
            Requirement::In(k, vs) => lookup(k).map(|x| vs.contains(&x)).unwrap_or(false),
            Requirement::NotIn(k, vs) => lookup(k).map(|x| !vs.contains(&x)).unwrap_or(true),
            Requirement::Exists(k) => lookup(k).is_some(),
            Requirement::NotExists(k) => lookup(k).is_none(),
        })
    }

    /// As a label selector.
    pub fn matches_labels(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        self.matches_with(|k| labels.get(k).map(text))
    }

    /// As a field selector: dotted paths into the object; a missing field reads as "".
    pub fn matches_fields(&self, obj: &Value) -> bool {
        self.matches_with(|k| {
            Some(
                table::json_path(obj, &format!(".{k}"))
                    .map(text)
                    .unwrap_or_default(),
            )
        })
    }

    /// The name a `metadata.name=` field selector asks for.
    fn name(&self) -> Option<&str> {
        self.0.iter().find_map(|r| match r {
            Requirement::Equals(k, v) if k == "metadata.name" => Some(v.as_str()),
            _ => None,
        })
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

// ---- routing ----

#[derive(Debug, Clone, PartialEq)]
enum Route {
    Version,
    Health,
    Api,
    Apis,
    Group(String),
    GroupVersion(String, String),
    OpenApiRoot,
    OpenApiDoc(String, String),
    Resource {
        group: String,
        version: String,
        namespace: Option<String>,
        plural: String,
        name: Option<String>,
        sub: Option<String>,
        watch: bool,
    },
}

fn parse_route(path: &str) -> Option<Route> {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (group, version, rest) = match s.as_slice() {
        ["version"] => return Some(Route::Version),
        ["healthz" | "livez" | "readyz", ..] => return Some(Route::Health),
        ["api"] => return Some(Route::Api),
        ["apis"] => return Some(Route::Apis),
        ["apis", g] => return Some(Route::Group(g.to_string())),
        ["openapi", "v3"] => return Some(Route::OpenApiRoot),
        ["openapi", "v3", "api", v] => {
            return Some(Route::OpenApiDoc(String::new(), v.to_string()))
        }
        ["openapi", "v3", "apis", g, v] => {
            return Some(Route::OpenApiDoc(g.to_string(), v.to_string()))
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    if rest.is_empty() {
        return Some(Route::GroupVersion(group.into(), version.into()));
    }
    let (watch, rest) = match rest {
        ["watch", more @ ..] => (true, more),
        other => (false, other),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, more @ ..]
            if !(more.is_empty() && matches!(*plural, "status" | "finalize")) =>
        {
            (Some(ns.to_string()), [&[*plural][..], more].concat())
        }
        other => (None, other.to_vec()),
    };
    let (plural, name, sub) = match rest.as_slice() {
        [p] => (p.to_string(), None, None),
        [p, n] => (p.to_string(), Some(n.to_string()), None),
        [p, n, sub] => (p.to_string(), Some(n.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    Some(Route::Resource {
        group: group.into(),
        version: version.into(),
        namespace,
        plural,
        name,
        sub,
        watch,
    })
}

/// Answers one request against the store. `now` is the world's virtual time (epoch ms).
pub fn handle(
    store: &mut KubeStore,
    now: i64,
    info: &ServerInfo,
    req: &ApiRequest,
) -> Result<Reply, Failure> {
    let route = parse_route(&req.path).ok_or_else(Failure::no_such_path)?;
    let get_only = |reply: Value| -> Result<Reply, Failure> {
        if req.method == "GET" {
            Ok(Reply::ok(reply))
        } else {
            Err(Failure::method_not_allowed())
        }
    };
    match route {
        Route::Version => get_only(resources::version()),
        Route::Health => Ok(Reply::Text {
            code: 200,
            body: "ok".into(),
        }),
        Route::Api => get_only(resources::core_versions(&info.address)),
        Route::Apis => get_only(resources::group_list(&resources::all_types(store))),
        Route::Group(g) => resources::group(&resources::all_types(store), &g)
            .ok_or_else(Failure::no_such_path)
            .and_then(get_only),
        Route::GroupVersion(g, v) => resources::resource_list(&resources::all_types(store), &g, &v)
            .ok_or_else(Failure::no_such_path)
            .and_then(get_only),
        Route::OpenApiRoot => {
            let stamp: Vec<String> = store
                .list_all(CRD_KIND)
                .iter()
                .map(|c| text(&c["metadata"]["resourceVersion"]))
                .collect();
            get_only(resources::openapi_root(
                &resources::all_types(store),
                &stamp.join(","),
            ))
        }
        Route::OpenApiDoc(g, v) => resources::openapi_doc(store, &g, &v)
            .ok_or_else(Failure::no_such_path)
            .and_then(get_only),
        Route::Resource {
            group,
            version,
            namespace,
            plural,
            name,
            sub,
            watch,
        } => {
            let writes = matches!(req.method.as_str(), "POST" | "PUT" | "PATCH");
            let rt = resources::lookup(store, &group, &version, &plural, writes)
                .ok_or_else(Failure::no_such_path)?;
            if namespace.is_some() && !rt.namespaced {
                return Err(Failure::no_such_path());
            }
            if rt.namespaced && namespace.is_none() && name.is_some() {
                return Err(Failure::no_such_path());
            }
            if let Some(s) = &sub {
                if s != "status" || !rt.status {
                    return Err(Failure::no_such_path());
                }
            }
            let ns = if rt.namespaced {
                namespace.clone()
            } else {
                Some(String::new())
            };
            let dry_run = req.query.get("dryRun").is_some();
            let mut scratch;
            let target: &mut KubeStore = if dry_run && req.method != "GET" {
                scratch = store.clone();
                scratch.history = None;
                &mut scratch
            } else {
                store
            };
            let ctx = Ctx {
                rt: &rt,
                now,
                info,
                req,
            };
            match (req.method.as_str(), name) {
                ("GET", None) => {
                    if watch || req.query.flag("watch") {
                        ctx.watch(namespace).map(|w| Reply::Watch(Box::new(w)))
                    } else {
                        ctx.list(target, namespace.as_deref())
                    }
                }
                ("GET", Some(name)) => ctx.get(target, ns.as_deref().unwrap_or(""), &name),
                ("POST", None) => match ns {
                    Some(ns) => ctx.create(target, &ns),
                    None => Err(Failure::method_not_allowed()),
                },
                ("PUT", Some(name)) => {
                    ctx.update(target, ns.as_deref().unwrap_or(""), &name, sub.is_some())
                }
                ("PATCH", Some(name)) => {
                    ctx.patch(target, ns.as_deref().unwrap_or(""), &name, sub.is_some())
                }
                ("DELETE", Some(name)) if sub.is_none() => {
                    ctx.delete(target, ns.as_deref().unwrap_or(""), &name)
                }
                ("DELETE", None) => ctx.delete_collection(target, namespace.as_deref()),
                _ => Err(Failure::method_not_allowed()),
            }
        }
    }
}

/// The object as clients see it: apiVersion and kind of the version asked for, no namespace
/// on cluster-scoped objects.
pub fn outward(rt: &ResourceType, obj: &Value) -> Value {
    let mut o = if rt.group == EVENTS_GROUP {
        super::events::to_events_v1(obj)
    } else {
        obj.clone()
    };
    if let Some(m) = o.as_object_mut() {
        m.insert("apiVersion".into(), json!(rt.api_version()));
        m.insert("kind".into(), json!(rt.kind));
    }
    if !rt.namespaced {
        if let Some(m) = o["metadata"].as_object_mut() {
            m.remove("namespace");
        }
    }
    o
}

/// The group of the second version of Events (stored as core v1 Events).
const EVENTS_GROUP: &str = "events.k8s.io";

/// The object as stored: Events of `events.k8s.io/v1` in their core form.
fn inward(rt: &ResourceType, obj: Value) -> Value {
    if rt.group != EVENTS_GROUP {
        return obj;
    }
    let mut core = super::events::to_core(&obj);
    core["apiVersion"] = json!("v1");
    core
}

/// One manager's entry in `metadata.managedFields` for an apply.
fn apply_entry(rt: &ResourceType, manager: &str, fields: Value, now: i64) -> Value {
    json!({
        "manager": manager,
        "operation": "Apply",
        "apiVersion": rt.api_version(),
        "time": rfc3339(now),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    })
}

struct Ctx<'a> {
    rt: &'a ResourceType,
    now: i64,
    info: &'a ServerInfo,
    req: &'a ApiRequest,
}

/// How a list or watch wants objects: as they are, as a Table, or as metadata only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    Objects,
    Table(IncludeObject),
    Metadata,
}

fn shape(accept: &str, query: &Query) -> Shape {
    let first = accept.split(',').next().unwrap_or("");
    if first.contains("as=Table") {
        Shape::Table(IncludeObject::parse(query.get("includeObject")))
    } else if first.contains("as=PartialObjectMetadata") {
        Shape::Metadata
    } else {
        Shape::Objects
    }
}

fn partial(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

fn parse_body(req: &ApiRequest) -> Result<Value, Failure> {
    if req
        .content_type
        .starts_with("application/vnd.kubernetes.protobuf")
    {
        return super::proto::decode(&req.body).map_err(|e| {
            Failure::new(
                415,
                "UnsupportedMediaType",
                format!("the body of the request was in an unknown format: {e}"),
            )
        });
    }
    let text = std::str::from_utf8(&req.body)
        .map_err(|_| Failure::bad_request("the request body is not UTF-8"))?;
    if text.trim().is_empty() {
        return Err(Failure::bad_request("the request body is empty"));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Ok(v),
        Err(json_err) => {
            if req.content_type.contains("yaml") {
                serde_saphyr::from_str::<Value>(text)
                    .map_err(|e| Failure::bad_request(format!("error decoding YAML: {e}")))
            } else {
                Err(Failure::bad_request(format!(
                    "couldn't get version/kind; json parse error: {json_err}"
                )))
            }
        }
    }
}

fn remove_pointer(doc: &mut Value, pointer: &str) {
    let tokens: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((last, parents)) = tokens.split_last() else {
        return;
    };
    let mut cur = doc;
    for t in parents {
        cur = match cur {
            Value::Object(m) => match m.get_mut(t) {
                Some(v) => v,
                None => return,
            },
            Value::Array(a) => match t.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    match cur {
        Value::Object(m) => {
            m.remove(last);
        }
        Value::Array(a) => {
            if let Ok(i) = last.parse::<usize>() {
                if i < a.len() {
                    a.remove(i);
                }
            }
        }
        _ => {}
    }
}

impl Ctx<'_> {
    fn key(&self, ns: &str, name: &str) -> Key {
        key_of(&self.rt.kind, ns, name)
    }

    fn selectors(&self) -> Result<(Selector, Selector), Failure> {
        let labels = Selector::parse(self.req.query.get("labelSelector").unwrap_or(""))
            .map_err(Failure::bad_request)?;
        let fields = Selector::parse(self.req.query.get("fieldSelector").unwrap_or(""))
            .map_err(Failure::bad_request)?;
        Ok((labels, fields))
    }

    fn objects(&self, store: &KubeStore, namespace: Option<&str>) -> Vec<Value> {
        match (self.rt.namespaced, namespace) {
            (true, Some(ns)) => store.list(&self.rt.kind, ns),
            (true, None) => store.list_all(&self.rt.kind),
            (false, _) => store.list(&self.rt.kind, ""),
        }
        .into_iter()
        .map(|o| outward(self.rt, o))
        .collect()
    }

    /// A list, in pages of `limit` items when asked (`continue` for the next one).
    fn list(&self, store: &KubeStore, namespace: Option<&str>) -> Result<Reply, Failure> {
        let (labels, fields) = self.selectors()?;
        let limit = match self.req.query.get("limit") {
            None => None,
            Some(l) => match l.parse::<usize>() {
                Ok(0) => None,
                Ok(l) => Some(l),
                Err(_) => return Err(Failure::bad_request(format!("invalid limit: {l}"))),
            },
        };
        let (items, rv, more) = match self.req.query.get("continue") {
            Some(token) => self.info.next_page(token, limit)?,
            None => {
                let items: Vec<Value> = self
                    .objects(store, namespace)
                    .into_iter()
                    .filter(|o| labels.matches_labels(o) && fields.matches_fields(o))
                    .collect();
                let rv = store.resource_version().to_string();
                let (page, more) = self.info.first_page(items, &rv, limit);
                (page, rv, more)
            }
        };
        let mut reply = self.list_reply(items, &rv);
        if let Some(token) = more {
            reply["metadata"]["continue"] = json!(token);
        }
        Ok(Reply::ok(reply))
    }

    fn list_reply(&self, items: Vec<Value>, rv: &str) -> Value {
        match shape(&self.req.accept, &self.req.query) {
            Shape::Table(include) => table::table(self.rt, &items, self.now, rv, include),
            Shape::Metadata => json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": {"resourceVersion": rv},
                "items": items.iter().map(partial).collect::<Vec<_>>(),
            }),
            Shape::Objects => json!({
                "kind": format!("{}List", self.rt.kind),
                "apiVersion": self.rt.api_version(),
                "metadata": {"resourceVersion": rv},
                "items": items,
            }),
        }
    }

    fn current(&self, store: &KubeStore, ns: &str, name: &str) -> Result<Value, Failure> {
        store
            .get(&self.key(ns, name))
            .map(|o| outward(self.rt, o))
            .ok_or_else(|| Failure::not_found(self.rt, name))
    }

    fn get(&self, store: &KubeStore, ns: &str, name: &str) -> Result<Reply, Failure> {
        let obj = self.current(store, ns, name)?;
        Ok(Reply::ok(match shape(&self.req.accept, &self.req.query) {
            Shape::Table(include) => table::table(
                self.rt,
                std::slice::from_ref(&obj),
                self.now,
                &text(&obj["metadata"]["resourceVersion"]),
                include,
            ),
            Shape::Metadata => partial(&obj),
            Shape::Objects => obj,
        }))
    }

    /// The body of a create or update: the right kind, the URL's namespace and name.
    fn incoming(&self, ns: &str, url_name: Option<&str>) -> Result<Value, Failure> {
        let mut obj = parse_body(self.req)?;
        if !obj.is_object() {
            return Err(Failure::bad_request("the request body must be an object"));
        }
        let kind = obj["kind"].as_str().unwrap_or_default();
        let api_version = obj["apiVersion"].as_str().unwrap_or_default();
        if (!kind.is_empty() && kind != self.rt.kind)
            || (!api_version.is_empty() && api_version != self.rt.api_version())
        {
            return Err(Failure::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                self.rt.api_version()
            )));
        }
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        obj["apiVersion"] = json!(self.rt.api_version());
        obj["kind"] = json!(self.rt.kind);
        let body_ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        if self.rt.namespaced && !body_ns.is_empty() && body_ns != ns {
            return Err(Failure::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        obj["metadata"]["namespace"] = json!(ns);
        if let Some(url_name) = url_name {
            match obj["metadata"]["name"].as_str() {
                None | Some("") => obj["metadata"]["name"] = json!(url_name),
                Some(n) if n != url_name => {
                    return Err(Failure::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({url_name})"
                )))
                }
                _ => {}
            }
        }
        Ok(obj)
    }

    /// Custom resources against their CRD's schema: unknown fields are pruned (refused under
    /// `fieldValidation=Strict`, warned about under `Warn`); wrong types and values are 422.
    fn validate(
        &self,
        obj: &mut Value,
        status_only: bool,
        warnings: &mut Vec<String>,
    ) -> Result<(), Failure> {
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !status_only {
            let name_ok = if self.rt.kind == "Namespace" {
                flink_operator::validation::rules::valid_dns_label(&name)
            } else {
                flink_operator::validation::rules::valid_object_name(&name)
            };
            if !name_ok {
                return Err(Failure::invalid(
                    self.rt,
                    &name,
                    &[(
                        "metadata.name".into(),
                        format!("Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"),
                    )],
                ));
            }
        }
        if self.rt.kind == CRD_KIND && !status_only {
            let expected = format!(
                "{}.{}",
                text(&obj["spec"]["names"]["plural"]),
                text(&obj["spec"]["group"])
            );
            if name != expected {
                return Err(Failure::invalid(
                    self.rt,
                    &name,
                    &[(
                        "metadata.name".into(),
                        format!(
                            "Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
                        ),
                    )],
                ));
            }
        }
        let Some(schema) = self.rt.schema.as_ref().filter(|s| s.is_object()) else {
            return Ok(());
        };
        let mut body = obj.clone();
        if let Some(m) = body.as_object_mut() {
            m.remove("apiVersion");
            m.remove("kind");
            m.remove("metadata");
            if status_only {
                m.retain(|k, _| k == "status");
            } else {
                m.remove("status");
            }
        }
        let mut found = Vec::new();
        flink_operator::validation::schema::check_located(&body, schema, "", "", &mut found);
        let (unknown, wrong): (Vec<_>, Vec<_>) = found
            .into_iter()
            .partition(|(p, _)| p.message.starts_with("unknown field"));
        if !wrong.is_empty() {
            let causes: Vec<(String, String)> = wrong
                .iter()
                .map(|(p, _)| (p.path.clone(), format!("Invalid value: {}", p.message)))
                .collect();
            return Err(Failure::invalid(self.rt, &name, &causes));
        }
        if unknown.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = unknown
            .iter()
            .map(|(p, _)| format!("unknown field \"{}\"", p.path))
            .collect();
        match self.req.query.get("fieldValidation") {
            Some("Strict") => Err(Failure::bad_request(format!(
                "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                names.join(", "),
                kind = self.rt.kind,
                v = self.rt.version
            ))),
            other => {
                if other == Some("Warn") {
                    warnings.extend(names);
                }
                for (_, pointer) in unknown.iter().rev() {
                    remove_pointer(obj, pointer);
                }
                Ok(())
            }
        }
    }

    fn map_store_error(&self, name: &str, e: ApiError) -> Failure {
        match e {
            ApiError::NotFound(_) => Failure::not_found(self.rt, name),
            ApiError::Conflict(_) => Failure::conflict(
                self.rt,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ),
            ApiError::Invalid(m) => Failure::invalid(self.rt, name, &[(String::new(), m)]),
        }
    }

    fn namespace_usable(&self, store: &KubeStore, ns: &str, name: &str) -> Result<(), Failure> {
        if !self.rt.namespaced {
            return Ok(());
        }
        let namespaces = resources::builtins().remove(0);
        match store.get(&key_of("Namespace", "", ns)) {
            None => Err(Failure::not_found(&namespaces, ns)),
            Some(n) if n["status"]["phase"] == "Terminating" => Err(Failure::forbidden(
                self.rt,
                name,
                &format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    fn create(&self, store: &mut KubeStore, ns: &str) -> Result<Reply, Failure> {
        let obj = self.incoming(ns, None)?;
        self.create_object(store, ns, obj, None)
    }

    /// Creates `obj`; `managed`: the managedFields entry of the apply that creates it.
    fn create_object(
        &self,
        store: &mut KubeStore,
        ns: &str,
        mut obj: Value,
        managed: Option<Value>,
    ) -> Result<Reply, Failure> {
        if obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
        {
            match obj["metadata"]["generateName"].as_str() {
                Some(prefix) if !prefix.is_empty() => {
                    obj["metadata"]["name"] = json!(format!("{prefix}{}", self.info.suffix()))
                }
                _ => {
                    return Err(Failure::invalid(
                        self.rt,
                        "",
                        &[(
                            "metadata.name".into(),
                            "Required value: name or generateName is required".into(),
                        )],
                    ))
                }
            }
        }
        let name = text(&obj["metadata"]["name"]);
        self.namespace_usable(store, ns, &name)?;
        if let Some(m) = obj["metadata"].as_object_mut() {
            for field in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "deletionTimestamp",
                "generation",
                "managedFields",
            ] {
                m.remove(field);
            }
            if let Some(entry) = managed {
                m.insert("managedFields".into(), json!([entry]));
            }
        }
        if self.rt.status {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        let mut warnings = Vec::new();
        self.validate(&mut obj, false, &mut warnings)?;
        if store.get(&self.key(ns, &name)).is_some() {
            return Err(Failure::already_exists(self.rt, &name));
        }
        if self.rt.kind == "Namespace" && obj["spec"]["finalizers"].is_null() {
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
        }
        let obj = inward(self.rt, obj);
        store.create(obj, &rfc3339(self.now)).map_err(|e| match e {
            ApiError::Conflict(_) => Failure::already_exists(self.rt, &name),
            other => self.map_store_error(&name, other),
        })?;
        after_write(store, self.rt, ns, &name, self.now);
        let created = self.current(store, ns, &name)?;
        Ok(Reply::Json {
            code: 201,
            body: created,
            warnings,
        })
    }

    fn update(
        &self,
        store: &mut KubeStore,
        ns: &str,
        name: &str,
        status: bool,
    ) -> Result<Reply, Failure> {
        let mut obj = self.incoming(ns, Some(name))?;
        let current = self.current(store, ns, name)?;
        let rv = obj["metadata"]["resourceVersion"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if self.rt.custom && rv.is_none() {
            return Err(Failure::invalid(
                self.rt,
                name,
                &[(
                    "metadata.resourceVersion".into(),
                    "Invalid value: 0x0: must be specified for an update".into(),
                )],
            ));
        }
        let mut warnings = Vec::new();
        self.validate(&mut obj, status, &mut warnings)?;
        self.write(store, ns, name, obj, &current, rv, status)?;
        Ok(Reply::Json {
            code: 200,
            body: self.after(store, ns, name, &current)?,
            warnings,
        })
    }

    /// What a write leaves: the object, or (when it is gone) its last state.
    fn after(
        &self,
        store: &KubeStore,
        ns: &str,
        name: &str,
        before: &Value,
    ) -> Result<Value, Failure> {
        Ok(self
            .current(store, ns, name)
            .unwrap_or_else(|_| before.clone()))
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        store: &mut KubeStore,
        ns: &str,
        name: &str,
        obj: Value,
        current: &Value,
        rv: Option<String>,
        status: bool,
    ) -> Result<(), Failure> {
        let key = self.key(ns, name);
        let mut obj = inward(self.rt, obj);
        if status {
            store
                .update_status(&key, obj["status"].clone(), rv.as_deref())
                .map_err(|e| self.map_store_error(name, e))?;
        } else {
            if !self.rt.status {
                // Without a status subresource, a write replaces status too.
                let new_status = obj.get("status").cloned();
                obj["metadata"]["namespace"] = json!(ns);
                store
                    .update(obj, rv.as_deref())
                    .map_err(|e| self.map_store_error(name, e))?;
                if let Some(s) = new_status {
                    if current.get("status") != Some(&s) {
                        store.set_status(&key, s);
                    }
                }
            } else {
                obj["metadata"]["namespace"] = json!(ns);
                store
                    .update(obj, rv.as_deref())
                    .map_err(|e| self.map_store_error(name, e))?;
            }
            after_write(store, self.rt, ns, name, self.now);
        }
        Ok(())
    }

    fn patch(
        &self,
        store: &mut KubeStore,
        ns: &str,
        name: &str,
        status: bool,
    ) -> Result<Reply, Failure> {
        let ct = self
            .req
            .content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let body = parse_body(self.req)?;
        let apply = ct == "application/apply-patch+yaml";
        let manager = self.req.query.get("fieldManager").unwrap_or_default();
        if apply && manager.is_empty() {
            return Err(Failure::bad_request(
                "PATCH requests of type application/apply-patch+yaml must have fieldManager set",
            ));
        }
        let current = match self.current(store, ns, name) {
            Ok(c) => c,
            Err(nf) if apply && !status => {
                // Server-side apply creates what does not exist.
                let mut obj = body;
                if !obj.is_object() {
                    return Err(Failure::bad_request(
                        "the applied configuration must be an object",
                    ));
                }
                if obj["metadata"]["name"]
                    .as_str()
                    .map(|n| n != name)
                    .unwrap_or(false)
                {
                    return Err(nf);
                }
                obj["metadata"]["name"] = json!(name);
                obj["metadata"]["namespace"] = json!(ns);
                obj["apiVersion"] = json!(self.rt.api_version());
                obj["kind"] = json!(self.rt.kind);
                let fields = patch::applied_fields(&obj, false);
                let entry = apply_entry(self.rt, manager, fields, self.now);
                return self.create_object(store, ns, obj, Some(entry));
            }
            Err(e) => return Err(e),
        };
        let mut merged = current.clone();
        match ct.as_str() {
            "application/merge-patch+json" => {
                patch::merge_patch(&mut merged, &body);
            }
            "application/strategic-merge-patch+json" => {
                if self.rt.custom {
                    return Err(Failure::unsupported_media(
                        " (strategic merge patch is not supported for custom resources)",
                    ));
                }
                patch::strategic_merge(&mut merged, &body)
            }
            "application/json-patch+json" => {
                patch::json_patch(&mut merged, &body).map_err(|e| {
                    Failure::invalid(
                        self.rt,
                        name,
                        &[(String::new(), format!("the JSON patch does not apply: {e}"))],
                    )
                })?
            }
            "application/apply-patch+yaml" if status => patch::apply_merge(&mut merged, &body),
            "application/apply-patch+yaml" => {
                // What this manager applied last time and no longer applies goes.
                let fields = patch::applied_fields(&body, false);
                let entries: Vec<Value> = current["metadata"]["managedFields"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let is_apply = |e: &Value| e["operation"] == "Apply" && e["subresource"].is_null();
                let (mine, others): (Vec<&Value>, Vec<&Value>) = entries
                    .iter()
                    .filter(|e| is_apply(e))
                    .partition(|e| e["manager"] == manager);
                let others: Vec<&Value> = others.iter().map(|e| &e["fieldsV1"]).collect();
                if let Some(before) = mine.first() {
                    patch::prune_unapplied(&mut merged, &before["fieldsV1"], &fields, &others);
                }
                patch::apply_merge(&mut merged, &body);
                // The entry keeps its time while the manager's fields stay the same, so an
                // apply that changes nothing writes nothing.
                let mut entry = apply_entry(self.rt, manager, fields, self.now);
                if let Some(before) = mine.first().filter(|b| b["fieldsV1"] == entry["fieldsV1"]) {
                    entry["time"] = before["time"].clone();
                }
                let mut kept: Vec<Value> = Vec::new();
                let mut replaced = false;
                for e in &entries {
                    if is_apply(e) && e["manager"] == manager {
                        if !replaced {
                            kept.push(entry.clone());
                            replaced = true;
                        }
                    } else {
                        kept.push(e.clone());
                    }
                }
                if !replaced {
                    kept.push(entry);
                }
                merged["metadata"]["managedFields"] = json!(kept);
            }
            other => {
                return Err(Failure::unsupported_media(&format!(
                    " (got {})",
                    if other.is_empty() {
                        "no content type"
                    } else {
                        other
                    }
                )))
            }
        }
        if !merged.is_object() {
            return Err(Failure::bad_request("the patched object is not an object"));
        }
        let rv = text(&merged["metadata"]["resourceVersion"]);
        if rv != text(&current["metadata"]["resourceVersion"]) && !rv.is_empty() {
            return Err(Failure::conflict(
                self.rt,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        merged["metadata"]["name"] = json!(name);
        merged["metadata"]["namespace"] = json!(ns);
        merged["apiVersion"] = json!(self.rt.api_version());
        merged["kind"] = json!(self.rt.kind);
        let mut warnings = Vec::new();
        self.validate(&mut merged, status, &mut warnings)?;
        let mut unchanged = merged.clone();
        if !self.rt.namespaced {
            if let Some(m) = unchanged["metadata"].as_object_mut() {
                m.remove("namespace");
            }
        }
        if unchanged == current {
            // A patch that changes nothing writes nothing (no new resourceVersion, no event).
            return Ok(Reply::Json {
                code: 200,
                body: current,
                warnings,
            });
        }
        self.write(store, ns, name, merged, &current, None, status)?;
        Ok(Reply::Json {
            code: 200,
            body: self.after(store, ns, name, &current)?,
            warnings,
        })
    }

    fn delete(&self, store: &mut KubeStore, ns: &str, name: &str) -> Result<Reply, Failure> {
        let current = self.current(store, ns, name)?;
        let options = if self.req.body.iter().any(|b| !b.is_ascii_whitespace()) {
            parse_body(self.req)?
        } else {
            Value::Null
        };
        let pre = &options["preconditions"];
        if let Some(uid) = pre["uid"].as_str() {
            if current["metadata"]["uid"] != uid {
                return Err(Failure::conflict(
                    self.rt,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        text(&current["metadata"]["uid"])
                    ),
                ));
            }
        }
        if let Some(rv) = pre["resourceVersion"].as_str() {
            if current["metadata"]["resourceVersion"] != rv {
                return Err(Failure::conflict(
                    self.rt,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        text(&current["metadata"]["resourceVersion"])
                    ),
                ));
            }
        }
        let key = self.key(ns, name);
        if self.rt.kind == "Namespace" {
            if SYSTEM_NAMESPACES.contains(&name) {
                return Err(Failure::forbidden(
                    self.rt,
                    name,
                    "this namespace may not be deleted",
                ));
            }
            // Terminating: the server empties it, then removes it (see `serve.rs`).
            let mut status = current["status"].clone();
            status["phase"] = json!("Terminating");
            store.set_status(&key, status);
            return Ok(Reply::ok(self.after(store, ns, name, &current)?));
        }
        if self.rt.kind == CRD_KIND {
            // Its custom resources go with it.
            let kind = text(&current["spec"]["names"]["kind"]);
            let keys: Vec<Key> = store
                .list_all(&kind)
                .into_iter()
                .map(|o| {
                    key_of(
                        &kind,
                        o["metadata"]["namespace"].as_str().unwrap_or_default(),
                        o["metadata"]["name"].as_str().unwrap_or_default(),
                    )
                })
                .collect();
            for k in keys {
                let _ = store.delete(&k, &rfc3339(self.now));
            }
        }
        store
            .delete(&key, &rfc3339(self.now))
            .map_err(|e| self.map_store_error(name, e))?;
        Ok(Reply::ok(self.after(store, ns, name, &current)?))
    }

    fn delete_collection(
        &self,
        store: &mut KubeStore,
        namespace: Option<&str>,
    ) -> Result<Reply, Failure> {
        let (labels, fields) = self.selectors()?;
        let items: Vec<Value> = self
            .objects(store, namespace)
            .into_iter()
            .filter(|o| labels.matches_labels(o) && fields.matches_fields(o))
            .collect();
        for o in &items {
            let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
            let name = text(&o["metadata"]["name"]);
            let _ = self.delete(store, ns, &name);
        }
        Ok(Reply::ok(json!({
            "kind": format!("{}List", self.rt.kind),
            "apiVersion": self.rt.api_version(),
            "metadata": {"resourceVersion": store.resource_version().to_string()},
            "items": items,
        })))
    }

    fn watch(&self, namespace: Option<String>) -> Result<WatchSpec, Failure> {
        let (labels, fields) = self.selectors()?;
        let since =
            match self.req.query.get("resourceVersion") {
                None | Some("0") => None,
                Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                    Failure::bad_request(format!("invalid resource version {rv:?}"))
                })?),
            };
        Ok(WatchSpec {
            rt: self.rt.clone(),
            namespace: if self.rt.namespaced { namespace } else { None },
            labels,
            fields,
            shape: shape(&self.req.accept, &self.req.query),
            timeout: self
                .req
                .query
                .get("timeoutSeconds")
                .and_then(|t| t.parse().ok())
                .map(Duration::from_secs),
            since,
        })
    }
}

/// What the server itself does after a write: namespaces are Active, CRDs are Established.
fn after_write(store: &mut KubeStore, rt: &ResourceType, ns: &str, name: &str, now: i64) {
    let key = key_of(&rt.kind, ns, name);
    let Some(obj) = store.get(&key).cloned() else {
        return;
    };
    match rt.kind.as_str() {
        "Namespace" if obj["status"]["phase"].is_null() => {
            store.set_status(&key, json!({"phase": "Active"}));
        }
        CRD_KIND => {
            let at = obj["status"]["conditions"][0]["lastTransitionTime"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| rfc3339(now));
            let stored: Vec<Value> = obj["spec"]["versions"]
                .as_array()
                .map(|vs| {
                    vs.iter()
                        .filter(|v| v["storage"] == true)
                        .map(|v| v["name"].clone())
                        .collect()
                })
                .unwrap_or_default();
            store.set_status(
                &key,
                json!({
                    "acceptedNames": obj["spec"]["names"],
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                         "message": "no conflicts found", "lastTransitionTime": at},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                         "message": "the initial names have been accepted", "lastTransitionTime": at}
                    ],
                    "storedVersions": stored,
                }),
            );
        }
        _ => {}
    }
}

/// Creates a namespace as `kubectl create namespace` would (the served API's startup).
pub fn ensure_namespace(store: &mut KubeStore, name: &str, now: i64) {
    let key = key_of("Namespace", "", name);
    if store.get(&key).is_some() {
        return;
    }
    let obj = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "namespace": "", "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]}});
    if store.create(obj, &rfc3339(now)).is_ok() {
        store.set_status(&key, json!({"phase": "Active"}));
    }
}

/// Installs a CRD directly (`flink-sim serve --crds`), as if applied.
pub fn install_crd(store: &mut KubeStore, crd: Value, now: i64) {
    let Some(name) = crd["metadata"]["name"].as_str().map(str::to_string) else {
        return;
    };
    let mut crd = crd;
    crd["metadata"]["namespace"] = json!("");
    let key = key_of(CRD_KIND, "", &name);
    if store.get(&key).is_none() && store.create(crd, &rfc3339(now)).is_ok() {
        let rt = resources::builtins()
            .into_iter()
            .find(|r| r.kind == CRD_KIND)
            .expect("the CRD type is built in");
        after_write(store, &rt, "", &name, now);
    }
}

/// A watch, as asked for.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    pub rt: ResourceType,
    pub namespace: Option<String>,
    pub labels: Selector,
    pub fields: Selector,
    pub shape: Shape,
    pub timeout: Option<Duration>,
    /// Changes after this resourceVersion; None: the current state first, as ADDED events.
    pub since: Option<u64>,
}

impl WatchSpec {
    fn wanted(&self, key: &Key, obj: &Value) -> bool {
        key.0 == self.rt.kind
            && self
                .namespace
                .as_ref()
                .map(|ns| &key.1 == ns)
                .unwrap_or(true)
            && self.labels.matches_labels(obj)
            && if self.rt.group == EVENTS_GROUP {
                // Field selectors name the fields of the version watched.
                self.fields.matches_fields(&outward(&self.rt, obj))
            } else {
                self.fields.matches_fields(obj)
            }
    }

    fn event(&self, kind: &str, obj: &Value, now: i64) -> Value {
        let obj = outward(&self.rt, obj);
        let object = match self.shape {
            Shape::Objects => obj,
            Shape::Metadata => partial(&obj),
            Shape::Table(include) => table::table(
                &self.rt,
                std::slice::from_ref(&obj),
                now,
                &text(&obj["metadata"]["resourceVersion"]),
                include,
            ),
        };
        json!({"type": kind, "object": object})
    }

    /// The first events and the resourceVersion to go on from, or the Status of a watch from
    /// a resourceVersion too old to serve (410 Expired).
    pub fn initial(&self, store: &KubeStore, now: i64) -> Result<(Vec<Value>, u64), Failure> {
        let head = store.resource_version();
        match self.since {
            None => {
                let kind = &self.rt.kind;
                let objects: Vec<&Value> = match (&self.namespace, self.rt.namespaced) {
                    (Some(ns), true) => store.list(kind, ns),
                    (None, true) => store.list_all(kind),
                    (_, false) => store.list(kind, ""),
                };
                let events = objects
                    .into_iter()
                    .filter(|o| {
                        let key = key_of(
                            kind,
                            o["metadata"]["namespace"].as_str().unwrap_or_default(),
                            o["metadata"]["name"].as_str().unwrap_or_default(),
                        );
                        self.wanted(&key, o)
                    })
                    .map(|o| self.event("ADDED", o, now))
                    .collect();
                Ok((events, head))
            }
            Some(rv) => {
                let horizon = store.history.as_ref().map(|h| h.horizon).unwrap_or(head);
                if rv < horizon {
                    return Err(Failure::expired(format!(
                        "too old resource version: {rv} ({horizon})"
                    )));
                }
                Ok((Vec::new(), rv))
            }
        }
    }

    /// The events after `cursor`, which moves on.
    pub fn next(
        &self,
        store: &KubeStore,
        now: i64,
        cursor: &mut u64,
    ) -> Result<Vec<Value>, Failure> {
        let Some(history) = store.history.as_ref() else {
            return Ok(Vec::new());
        };
        if *cursor < history.horizon {
            return Err(Failure::expired(format!(
                "too old resource version: {cursor} ({})",
                history.horizon
            )));
        }
        let start = history
            .changes
            .partition_point(|c| c.resource_version <= *cursor);
        let mut out = Vec::new();
        for c in history.changes.range(start..) {
            *cursor = (*cursor).max(c.resource_version);
            if self.wanted(&c.key, &c.object) {
                out.push(self.event(c.change.as_str(), &c.object, now));
            }
        }
        Ok(out)
    }

    /// The name a `metadata.name=` field selector watches, if any.
    pub fn name(&self) -> Option<&str> {
        self.fields.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, query: &str, body: Value) -> ApiRequest {
        ApiRequest {
            method: method.into(),
            path: path.into(),
            query: Query::parse(query),
            content_type: "application/json".into(),
            accept: "application/json".into(),
            body: serde_json::to_vec(&body).unwrap(),
        }
    }

    fn json(reply: Result<Reply, Failure>) -> Value {
        match reply {
            Ok(Reply::Json { body, .. }) => body,
            Ok(other) => panic!("not JSON: {other:?}"),
            Err(f) => f.status(),
        }
    }

    #[test]
    fn lists_come_in_pages_of_one_moment() {
        let mut store = KubeStore::default();
        let info = ServerInfo::new("127.0.0.1:1".into());
        ensure_namespace(&mut store, "default", 0);
        let path = "/api/v1/namespaces/default/configmaps";
        let create = |store: &mut KubeStore, name: &str| {
            let cm = json!({"metadata": {"name": name}, "data": {"v": "1"}});
            json(handle(store, 0, &info, &request("POST", path, "", cm)));
        };
        for name in ["a", "b", "c", "d", "e"] {
            create(&mut store, name);
        }
        let list = |store: &mut KubeStore, query: &str| {
            json(handle(
                store,
                0,
                &info,
                &request("GET", path, query, Value::Null),
            ))
        };
        let names = |list: &Value| -> Vec<String> {
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        let all = list(&mut store, "");
        assert_eq!(names(&all), ["a", "b", "c", "d", "e"]);
        assert!(all["metadata"].get("continue").is_none());

        let first = list(&mut store, "limit=2");
        assert_eq!(names(&first), ["a", "b"]);
        let rv = first["metadata"]["resourceVersion"].clone();
        let token = first["metadata"]["continue"].as_str().unwrap().to_string();

        // Changes after the first page do not show in the next ones.
        create(&mut store, "f");
        let cm = json!({"metadata": {"name": "c"}, "data": {"v": "2"}});
        json(handle(
            &mut store,
            0,
            &info,
            &request("PUT", &format!("{path}/c"), "", cm),
        ));
        let second = list(&mut store, &format!("limit=2&continue={token}"));
        assert_eq!(names(&second), ["c", "d"]);
        assert_eq!(second["items"][0]["data"]["v"], "1");
        assert_eq!(second["metadata"]["resourceVersion"], rv);
        let token = second["metadata"]["continue"].as_str().unwrap().to_string();
        let last = list(&mut store, &format!("limit=2&continue={token}"));
        assert_eq!(names(&last), ["e"]);
        assert!(last["metadata"].get("continue").is_none());

        // Read to the end (or never kept): 410, and the client lists again.
        let gone = list(&mut store, &format!("limit=2&continue={token}"));
        assert_eq!(gone["code"], 410);
        assert_eq!(gone["reason"], "Expired");
    }

    #[test]
    fn routes() {
        assert_eq!(
            parse_route(
                "/apis/flink.apache.org/v1beta1/namespaces/default/flinkdeployments/x/status"
            ),
            Some(Route::Resource {
                group: "flink.apache.org".into(),
                version: "v1beta1".into(),
                namespace: Some("default".into()),
                plural: "flinkdeployments".into(),
                name: Some("x".into()),
                sub: Some("status".into()),
                watch: false,
            })
        );
        assert_eq!(
            parse_route("/api/v1/namespaces/foo/status"),
            Some(Route::Resource {
                group: "".into(),
                version: "v1".into(),
                namespace: None,
                plural: "namespaces".into(),
                name: Some("foo".into()),
                sub: Some("status".into()),
                watch: false,
            })
        );
        assert!(matches!(
            parse_route("/api/v1/watch/namespaces/default/pods"),
            Some(Route::Resource {
                watch: true,
                namespace: Some(_),
                ..
            })
        ));
        assert_eq!(
            parse_route("/api/v1"),
            Some(Route::GroupVersion("".into(), "v1".into()))
        );
        assert_eq!(parse_route("/nope"), None);
    }

    #[test]
    fn selectors() {
        let obj = json!({"metadata": {"name": "a", "labels": {"app": "x", "tier": "web"}}});
        let ok = |s: &str| Selector::parse(s).unwrap().matches_labels(&obj);
        assert!(ok("app=x,tier"));
        assert!(ok("app in (x, y),!missing"));
        assert!(!ok("app notin (x)"));
        assert!(!ok("app!=x"));
        assert!(Selector::parse("metadata.name=a")
            .unwrap()
            .matches_fields(&obj));
        assert_eq!(
            Query::parse("labelSelector=app%3Dx%2Ctier&watch=true").get("labelSelector"),
            Some("app=x,tier")
        );
    }
}
