//! The fake Flink's REST API served as HTTP, so the operator's real REST adapter
//! (`FlinkRestClient`) can talk to the simulated world: over a tokio `TcpListener` on
//! loopback, or over turmoil's simulated network.
//!
//! Every answer is the JSON of the world's `rest_*` calls (`crate::ports`), the very JSON the
//! in-process fake decodes, so both paths are one fake. Errors are Flink's:
//! `{"errors": [message]}` with 404 (no such job, trigger, jar or path), 409 (a job already
//! terminal), 400 (a request Flink would refuse). When the world says the REST API is
//! unreachable (no JobManager, a `restUnavailable` fault) the connection is closed without an
//! answer, which the client sees as a refused or reset connection.
//!
//! [`FlinkHttp`] is a hyper `Service`; serve it on any transport:
//!
//! ```text
//! let server = FlinkHttp::new(world.clone());
//! loop {
//!     let (stream, _) = listener.accept().await?; // tokio or turmoil TcpListener
//!     tokio::spawn(server.clone().serve_connection(stream));
//! }
//! ```
//!
//! The server never moves world time by itself: whoever runs the world steps it (the turmoil
//! tests step it alongside turmoil's clock). [`FlinkHttp::before_each_request`] can bring the
//! world up to date before each answer instead.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Buf, Bytes};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use serde_json::{json, Value};

use crate::world::World;
use flink_operator::ports::{FlinkEndpoint, FlinkError, JarRunRequest};

/// The most of a request body the server keeps: JSON bodies are small, and of a jar upload
/// only the part's headers matter (the rest is read and dropped).
const BODY_LIMIT: usize = 1 << 20;
const UPLOAD_HEAD: usize = 16 * 1024;

/// A fault of the HTTP layer itself, for the next requests that match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFault {
    /// The connection closes before the request reaches Flink: nothing happens.
    Refuse,
    /// Flink handles the request, then the connection closes before the answer is sent.
    LoseAnswer,
    /// The JobManager takes the request and never answers (a JobManager stuck in garbage
    /// collection, or on a node that went away with its connections open): only the client's
    /// own timeout ends the call. Nothing happens in Flink.
    Hang,
}

/// One request as the server saw it, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// World time (epoch ms) when it was handled.
    pub at: i64,
    pub method: String,
    /// Path and query.
    pub path: String,
    /// `namespace/cluster` of the JobManager asked (empty when no cluster is behind the host).
    pub cluster: String,
    /// The status sent; None when the connection was closed instead.
    pub status: Option<u16>,
    /// Why no answer was sent, or the error sent.
    pub note: String,
}

impl fmt::Display for Served {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "no answer".into());
        write!(f, "{} {} -> {status}", self.method, self.path)?;
        if !self.note.is_empty() {
            write!(f, " ({})", self.note)?;
        }
        Ok(())
    }
}

/// Why the server closed the connection instead of answering (hyper closes it when the
/// service fails).
#[derive(Debug)]
pub struct NoAnswer(pub String);

impl fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no answer: {}", self.0)
    }
}

impl std::error::Error for NoAnswer {}

#[derive(Debug)]
struct Armed {
    method: Method,
    path_contains: String,
    fault: HttpFault,
    remaining: u32,
}

#[derive(Debug, Default)]
struct ServerState {
    log: Vec<Served>,
    faults: Vec<Armed>,
}

type Hook = Arc<dyn Fn(&mut World) + Send + Sync>;

/// The fake Flink's REST API over HTTP. Cheap to clone; clones share the world, the log and
/// the faults.
#[derive(Clone)]
pub struct FlinkHttp {
    world: Arc<Mutex<World>>,
    endpoint: Option<FlinkEndpoint>,
    state: Arc<Mutex<ServerState>>,
    before: Option<Hook>,
}

/// A request body as the routes need it.
enum Payload {
    Json(Value),
    /// A body that is not JSON, with the parser's complaint.
    NotJson(String),
    /// The file name of a multipart upload's part.
    Upload(Result<String, String>),
}

impl FlinkHttp {
    /// Serves every cluster of the world: which one a request is for comes from its Host
    /// header, `<cluster-id>-rest.<namespace>[:port]` as `FlinkEndpoint::for_cluster` names it.
    pub fn new(world: Arc<Mutex<World>>) -> Self {
        FlinkHttp {
            world,
            endpoint: None,
            state: Arc::default(),
            before: None,
        }
    }

    /// Serves one cluster whatever the Host header says (a loopback address, say).
    pub fn for_endpoint(mut self, at: FlinkEndpoint) -> Self {
        self.endpoint = Some(at);
        self
    }

    /// Runs `hook` on the world before each request is handled (under the world's lock), for
    /// example to bring world time up to a clock of the caller's.
    pub fn before_each_request(
        mut self,
        hook: impl Fn(&mut World) + Send + Sync + 'static,
    ) -> Self {
        self.before = Some(Arc::new(hook));
        self
    }

    /// The next `count` requests with this method whose path contains `path_contains` suffer
    /// `fault`. The path is matched with its cluster in front (`default/basic-example/jobs`), so
    /// a fault can be for one JobManager.
    pub fn inject(&self, method: Method, path_contains: &str, fault: HttpFault, count: u32) {
        self.state().faults.push(Armed {
            method,
            path_contains: path_contains.to_string(),
            fault,
            remaining: count,
        });
    }

    /// Every request handled so far, in order.
    pub fn log(&self) -> Vec<Served> {
        self.state().log.clone()
    }

    fn state(&self) -> MutexGuard<'_, ServerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves HTTP/1.1 on one connection of any transport until the client closes it.
    pub async fn serve_connection<IO>(self, io: IO) -> Result<(), hyper::Error>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(io), self)
            .await
    }

    fn take_fault(&self, method: &Method, path: &str) -> Option<HttpFault> {
        let mut state = self.state();
        let pos = state
            .faults
            .iter()
            .position(|f| f.method == *method && path.contains(&f.path_contains))?;
        let armed = &mut state.faults[pos];
        let fault = armed.fault;
        armed.remaining = armed.remaining.saturating_sub(1);
        if armed.remaining == 0 {
            state.faults.remove(pos);
        }
        Some(fault)
    }

    /// The cluster a request is for.
    fn endpoint_of<B>(&self, request: &Request<B>) -> Option<FlinkEndpoint> {
        if let Some(at) = &self.endpoint {
            return Some(at.clone());
        }
        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| request.uri().authority().map(|a| a.to_string()))?;
        let name = host.split(':').next().unwrap_or(&host);
        let (cluster_id, namespace) = name.split_once("-rest.")?;
        Some(FlinkEndpoint {
            namespace: namespace.split('.').next().unwrap_or(namespace).to_string(),
            cluster_id: cluster_id.to_string(),
            url: format!("http://{host}"),
        })
    }

    /// Handles one request: an answer, or [`NoAnswer`] when the connection is to be closed.
    pub async fn handle<B>(&self, request: Request<B>) -> Result<Response<Full<Bytes>>, NoAnswer>
    where
        B: Body,
        B::Error: fmt::Display,
    {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or_default().to_string();
        let shown = match query.as_str() {
            "" => path.clone(),
            q => format!("{path}?{q}"),
        };
        let endpoint = self.endpoint_of(&request);
        let segments: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        // Flink serves its API under /v1 as well.
        let segments: Vec<&str> = match segments.first().map(String::as_str) {
            Some("v1") => segments[1..].iter().map(String::as_str).collect(),
            _ => segments.iter().map(String::as_str).collect(),
        };
        let upload = method == Method::POST && segments == ["jars", "upload"];
        let body = request.into_body();
        let payload = if upload {
            let head = read_body(body, UPLOAD_HEAD)
                .await
                .map_err(|e| NoAnswer(format!("reading the request: {e}")))?;
            Payload::Upload(multipart_file_name(&head))
        } else {
            let bytes = read_body(body, BODY_LIMIT)
                .await
                .map_err(|e| NoAnswer(format!("reading the request: {e}")))?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                Payload::Json(json!({}))
            } else {
                match serde_json::from_slice(&bytes) {
                    Ok(v) => Payload::Json(v),
                    Err(e) => Payload::NotJson(e.to_string()),
                }
            }
        };
        let cluster = endpoint
            .as_ref()
            .map(|at| format!("{}/{}", at.namespace, at.cluster_id))
            .unwrap_or_default();
        let fault = self.take_fault(&method, &format!("{cluster}{shown}"));
        if fault == Some(HttpFault::Hang) {
            self.state().log.push(Served {
                at: self.world().now,
                method: method.to_string(),
                path: shown,
                cluster,
                status: None,
                note: "held: no answer (hang fault)".into(),
            });
            return std::future::pending().await;
        }
        let mut world = self.world();
        if let Some(hook) = &self.before {
            hook(&mut world);
        }
        let at = world.now;
        let mut served = Served {
            at,
            method: method.to_string(),
            path: shown.clone(),
            cluster,
            status: None,
            note: String::new(),
        };
        let result = match (fault, &endpoint) {
            (Some(HttpFault::Refuse), _) => Err(FlinkError::Unavailable(
                "connection closed (refuse fault)".into(),
            )),
            (_, None) => Err(FlinkError::Unavailable(
                "no Flink cluster behind this host".into(),
            )),
            (_, Some(at)) => route(&mut world, at, &method, &segments, &query, payload),
        };
        drop(world);
        let answer = match result {
            Ok((status, value)) => {
                served.status = Some(status.as_u16());
                Ok(json_response(status, &value))
            }
            Err(FlinkError::Unavailable(message)) => {
                served.note = message.clone();
                Err(NoAnswer(message))
            }
            Err(e) => {
                let (status, message) = error_status(e);
                served.status = Some(status.as_u16());
                served.note = message.clone();
                Ok(json_response(status, &json!({ "errors": [message] })))
            }
        };
        // Flink did what was asked; the answer goes nowhere.
        let answer = match answer {
            Ok(response) if fault == Some(HttpFault::LoseAnswer) => {
                let status = served.status.take().unwrap_or(response.status().as_u16());
                served.note = format!("handled ({status}), answer lost");
                Err(NoAnswer("answer lost (loseAnswer fault)".into()))
            }
            other => other,
        };
        self.state().log.push(served);
        answer
    }
}

impl<B> hyper::service::Service<Request<B>> for FlinkHttp
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: fmt::Display,
{
    type Response = Response<Full<Bytes>>;
    type Error = NoAnswer;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, NoAnswer>> + Send>>;

    fn call(&self, request: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.handle(request).await })
    }
}

/// The status code and message Flink answers an error with.
fn error_status(e: FlinkError) -> (StatusCode, String) {
    match e {
        FlinkError::NotFound(m) => (StatusCode::NOT_FOUND, m),
        FlinkError::Conflict(m) => (StatusCode::CONFLICT, m),
        FlinkError::Http { status, message } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message,
        ),
        FlinkError::Decode(m) => (StatusCode::BAD_REQUEST, m),
        FlinkError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=UTF-8")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn bad_request(message: impl Into<String>) -> FlinkError {
    FlinkError::Http {
        status: 400,
        message: message.into(),
    }
}

/// The JSON body, or a 400 if it did not parse.
fn json_body(payload: Payload) -> Result<Value, FlinkError> {
    match payload {
        Payload::Json(v) => Ok(v),
        Payload::NotJson(e) => Err(bad_request(format!(
            "Request did not match expected format: {e}"
        ))),
        Payload::Upload(_) => Ok(json!({})),
    }
}

fn optional_string(body: &Value, key: &str) -> Option<String> {
    body.get(key).and_then(|v| v.as_str()).map(str::to_string)
}

type Routed = Result<(StatusCode, Value), FlinkError>;

fn ok(answer: Result<Value, FlinkError>) -> Routed {
    answer.map(|v| (StatusCode::OK, v))
}

fn accepted(answer: Result<Value, FlinkError>) -> Routed {
    answer.map(|v| (StatusCode::ACCEPTED, v))
}

/// The REST API's routes, over the world's `rest_*` calls.
fn route(
    w: &mut World,
    at: &FlinkEndpoint,
    method: &Method,
    segments: &[&str],
    query: &str,
    payload: Payload,
) -> Routed {
    match (method.as_str(), segments) {
        ("GET", ["overview"]) => ok(w.rest_overview(at)),
        ("GET", ["jobs", "overview"]) => ok(w.rest_jobs_overview(at)),
        ("POST", ["jars", "upload"]) => {
            let Payload::Upload(name) = payload else {
                return Err(bad_request("no multipart body"));
            };
            let name = name.map_err(bad_request)?;
            if !name.ends_with(".jar") {
                return Err(bad_request("Only Jar files are allowed."));
            }
            ok(w.rest_upload_jar(at, &name))
        }
        ("POST", ["jars", jar_id, "run"]) => {
            let body = json_body(payload)?;
            let request: JarRunRequest = serde_json::from_value(body)
                .map_err(|e| bad_request(format!("Request did not match expected format: {e}")))?;
            ok(w.rest_run_jar(at, jar_id, &request))
        }
        ("DELETE", ["jars", jar_id]) => ok(w.rest_delete_jar(at, jar_id)),
        ("GET", ["jobs", job_id]) => ok(w.rest_job(at, job_id)),
        ("PATCH", ["jobs", job_id]) => {
            let mode = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("mode="))
                .unwrap_or("cancel");
            if mode != "cancel" {
                return Err(bad_request(format!("Unsupported termination mode {mode}")));
            }
            accepted(w.rest_cancel_job(at, job_id))
        }
        ("POST", ["jobs", job_id, "savepoints"]) => {
            let body = json_body(payload)?;
            let cancel = body
                .get("cancel-job")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let dir = optional_string(&body, "target-directory");
            accepted(w.rest_trigger(at, job_id, cancel, false, dir))
        }
        ("GET", ["jobs", _job_id, "savepoints", trigger]) => ok(w.rest_operation(at, trigger)),
        ("POST", ["jobs", job_id, "stop"]) => {
            let body = json_body(payload)?;
            let dir = optional_string(&body, "targetDirectory");
            accepted(w.rest_trigger(at, job_id, true, false, dir))
        }
        ("POST", ["jobs", job_id, "checkpoints"]) => {
            json_body(payload)?;
            accepted(w.rest_trigger(at, job_id, false, true, None))
        }
        ("GET", ["jobs", _job_id, "checkpoints", trigger]) => ok(w.rest_operation(at, trigger)),
        ("GET", ["jobs", job_id, "checkpoints"]) => ok(w.rest_checkpoints(at, job_id)),
        ("GET", ["jobs", job_id, "exceptions"]) => ok(w.rest_exceptions(at, job_id)),
        ("POST", ["savepoint-disposal"]) => {
            let body = json_body(payload)?;
            let path = optional_string(&body, "savepoint-path")
                .ok_or_else(|| bad_request("Field 'savepoint-path' is missing"))?;
            accepted(w.rest_dispose_savepoint(at, &path))
        }
        ("DELETE", ["cluster"]) => ok(w.rest_shutdown_cluster(at)),
        _ => Err(FlinkError::NotFound(format!(
            "Not found: /{}",
            segments.join("/")
        ))),
    }
}

/// Reads a whole body, keeping at most `keep` bytes of it.
async fn read_body<B>(body: B, keep: usize) -> Result<Vec<u8>, String>
where
    B: Body,
    B::Error: fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(mut data) = frame.into_data() {
            while data.has_remaining() {
                let chunk = data.chunk();
                let n = chunk.len();
                let room = keep.saturating_sub(kept.len()).min(n);
                kept.extend_from_slice(&chunk[..room]);
                data.advance(n);
            }
        }
    }
    Ok(kept)
}

/// The file name of the first part of a multipart body, from its Content-Disposition.
fn multipart_file_name(head: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(head);
    let headers_end = text
        .find("\r\n\r\n")
        .ok_or("the multipart body has no part")?;
    let line = text[..headers_end]
        .split("\r\n")
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
        .ok_or("the part has no Content-Disposition")?;
    let start = line
        .find("filename=\"")
        .ok_or("the part has no file name")?
        + "filename=\"".len();
    let end = line[start..]
        .find('"')
        .ok_or("the part's file name is not closed")?;
    Ok(line[start..start + end]
        .replace("%22", "\"")
        .replace("%0D", "\r")
        .replace("%0A", "\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_of_a_multipart_part() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"jarfile\"; filename=\"my%22job.jar\"\r\nContent-Type: application/x-java-archive\r\n\r\nPK..";
        assert_eq!(multipart_file_name(body).unwrap(), "my\"job.jar");
        assert!(multipart_file_name(b"--b\r\n").is_err());
    }
}
