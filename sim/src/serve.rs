//! `flink-sim serve`: the simulated world with its Kubernetes API on HTTP, so `kubectl` works
//! against it.
//!
//! The world starts empty (no scenario); the operator runs inside it exactly as in
//! `flink-sim run` (the same [`Simulation`] and reconcile loop), or, with
//! [`ServeOptions::external_operator`], not at all: then a real `flink-operator run` is
//! pointed at the server, and reaches the world's JobManagers on the same port under
//! `/flink/{namespace}/{cluster}/` ([`flink_url`]). The world's virtual clock
//! follows the wall clock times `speed`, starting at the wall clock. A driver thread moves the
//! world on every few milliseconds and whenever a request changed something; an HTTP server
//! (plain http on 127.0.0.1, no authentication) answers the API from the world's store:
//! discovery, OpenAPI v3 enough for kubectl, list (Tables for `kubectl get`), watch, get,
//! create, update, patch (merge, JSON, strategic and apply, see [`patch`]), the `/status`
//! subresource and delete, for the built-in types in [`resources::builtins`] (Leases for
//! leader election and `events.k8s.io/v1` Events among them) and every installed CRD. Events
//! the in-world operator publishes become core/v1 Events.
//!
//! ```no_run
//! let (addr, handle) = flink_sim::serve::start(flink_sim::serve::ServeOptions::default()).unwrap();
//! println!("kubectl --server http://{addr} get flinkdeployments");
//! handle.wait();
//! ```

pub mod api;
pub mod events;
pub mod patch;
pub mod proto;
pub mod resources;
pub mod table;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use serde_json::{json, Value};

use crate::flink_http::{FlinkHttp, NoAnswer};
use crate::kube::key_of;
use crate::runner::Simulation;
use crate::scenario::{ClusterSettings, Scenario};
use crate::world::{rfc3339, World};
use api::{ApiRequest, Failure, Query, Reply, ServerInfo, WatchSpec};

/// How `flink-sim serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// 0: any free port.
    pub port: u16,
    /// Virtual time per wall time (1: real time; 50: a minute in 1.2 s).
    pub speed: f64,
    pub seed: u64,
    /// Install the operator's CRDs at startup (else `flink-operator crd | kubectl apply -f -`).
    pub install_crds: bool,
    /// Print the timeline (state changes, events) to stdout as it happens.
    pub print_timeline: bool,
    /// Operator configuration, upstream key names.
    pub operator: Vec<(String, String)>,
    pub cluster: ClusterSettings,
    /// Changes kept for watches that resume from a resourceVersion.
    pub history: usize,
    /// No operator inside the world: a real one (`flink-operator run`) is pointed at the
    /// served API, and at the JobManagers under `/flink/{namespace}/{cluster}/`.
    pub external_operator: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            port: 0,
            speed: 1.0,
            seed: 0,
            install_crds: false,
            print_timeline: false,
            operator: Vec::new(),
            cluster: ClusterSettings::default(),
            history: 10_000,
            external_operator: false,
        }
    }
}

/// Events older than this (virtual time) are removed, as the API server's TTL does.
const EVENT_TTL_MS: i64 = 3_600_000;
/// The largest request body taken (the CRDs are about 1 MiB of JSON).
const BODY_LIMIT: usize = 64 << 20;
/// How often (virtual time) the invariants look at the whole world.
const WORLD_CHECK: Duration = Duration::from_secs(1);
/// The driver's pace when nothing happens.
const TICK: Duration = Duration::from_millis(20);

struct Shared {
    world: Arc<Mutex<World>>,
    info: ServerInfo,
    /// The JobManagers' REST APIs, under `/flink/{namespace}/{cluster}/`.
    flink: FlinkHttp,
    /// The newest resourceVersion: watchers wake when it moves.
    changed: tokio::sync::watch::Sender<u64>,
    /// Wakes the driver after a write.
    kick: Mutex<mpsc::Sender<()>>,
    /// Watches being served now.
    watches: Arc<AtomicUsize>,
}

impl Shared {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self, rv: u64) {
        if *self.changed.borrow() != rv {
            self.changed.send_replace(rv);
        }
    }

    fn after_write(&self) {
        let rv = self.world().kube.resource_version();
        self.notify(rv);
        let _ = self.kick.lock().unwrap_or_else(|e| e.into_inner()).send(());
    }
}

/// The running server; dropping it stops it.
pub struct ServeHandle {
    addr: SocketAddr,
    world: Arc<Mutex<World>>,
    watches: Arc<AtomicUsize>,
    flink: FlinkHttp,
    stop: Arc<AtomicBool>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl ServeHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The simulated world (for tests: inspect it, inject faults).
    pub fn world(&self) -> Arc<Mutex<World>> {
        self.world.clone()
    }

    /// The JobManagers' REST APIs as served under `/flink/` (tests read its request log).
    pub fn flink(&self) -> FlinkHttp {
        self.flink.clone()
    }

    /// How many watch streams are open now (tests wait for `kubectl get -w` to be watching).
    pub fn open_watches(&self) -> usize {
        self.watches.load(Ordering::SeqCst)
    }

    /// Serves until the process ends.
    pub fn wait(mut self) {
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
    }

    /// Stops serving and the world.
    pub fn stop(self) {}

    fn shut_down(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
    }
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// A kubeconfig for the server (no credentials), with `default` as the namespace.
pub fn kubeconfig(addr: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: flink-sim\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: flink-sim\n  context:\n    cluster: flink-sim\n    namespace: default\n    user: flink-sim\ncurrent-context: flink-sim\nusers:\n- name: flink-sim\n  user: {{}}\npreferences: {{}}\n"
    )
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(crate::world::EPOCH_MS)
}

/// Starts the world and its API on 127.0.0.1:`port`; returns the address it listens on.
pub fn start(options: ServeOptions) -> std::io::Result<(SocketAddr, ServeHandle)> {
    if !(options.speed > 0.0 && options.speed.is_finite()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the speed must be a positive number",
        ));
    }
    let listener = std::net::TcpListener::bind(("127.0.0.1", options.port))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;

    let scenario = Scenario {
        name: "serve".into(),
        description: None,
        seed: options.seed,
        operator: options.operator.clone(),
        cluster: options.cluster.clone(),
        steps: Vec::new(),
        path: std::path::PathBuf::from("flink-sim-serve"),
    };
    let mut sim = Simulation::new(&scenario);
    sim.start_clock_at(wall_ms());
    if options.external_operator {
        sim.without_operator();
    }
    // A look at every resource and cluster after each of the driver's steps would make every
    // request wait on it with thousands of resources; the statuses are still checked as they
    // are written.
    sim.check_world_every(WORLD_CHECK);
    let world = sim.ports.world.clone();
    {
        let mut w = world.lock().unwrap_or_else(|e| e.into_inner());
        let now = w.now;
        w.kube.keep_history(options.history);
        for ns in api::SYSTEM_NAMESPACES {
            api::ensure_namespace(&mut w.kube, ns, now);
        }
        if options.install_crds {
            // Made once per process: generating the schemas takes a while.
            static CRDS: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
            let crds = CRDS.get_or_init(|| {
                flink_operator::crd::crds()
                    .iter()
                    .map(|crd| serde_json::to_value(crd).unwrap_or(Value::Null))
                    .collect()
            });
            for crd in crds {
                api::install_crd(&mut w.kube, crd.clone(), now);
            }
        }
        w.flush_watch();
    }
    let head = world
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .kube
        .resource_version();
    let (kick_tx, kick_rx) = mpsc::channel();
    let (changed, _) = tokio::sync::watch::channel(head);
    let flink = FlinkHttp::new(world.clone());
    let shared = Arc::new(Shared {
        world: world.clone(),
        info: ServerInfo::new(addr.to_string()),
        flink: flink.clone(),
        changed,
        kick: Mutex::new(kick_tx),
        watches: Arc::new(AtomicUsize::new(0)),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let watches = shared.watches.clone();

    let driver = {
        let shared = shared.clone();
        let stop = stop.clone();
        let options = options.clone();
        std::thread::Builder::new()
            .name("flink-sim-world".into())
            .spawn(move || drive(sim, &shared, &options, &stop, kick_rx))?
    };
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::Builder::new()
        .name("flink-sim-api".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("flink-sim serve: cannot start the HTTP runtime: {e}");
                    return;
                }
            };
            runtime.block_on(accept_loop(listener, shared, shutdown_rx));
            runtime.shutdown_background();
        })?;
    Ok((
        addr,
        ServeHandle {
            addr,
            world,
            watches,
            flink,
            stop,
            shutdown: Some(shutdown_tx),
            threads: vec![server, driver],
        },
    ))
}

// ---- the world ----

/// Moves the world with the wall clock; mirrors the operator's events into the API; empties
/// namespaces being deleted.
fn drive(
    mut sim: Simulation,
    shared: &Shared,
    options: &ServeOptions,
    stop: &AtomicBool,
    kick: mpsc::Receiver<()>,
) {
    let wall0 = Instant::now();
    let virtual0 = shared.world().now;
    let mut mirrored = 0usize;
    let mut event_seq = 0u64;
    let mut last_sweep = Instant::now();
    let mut last_error: Option<String> = None;
    while !stop.load(Ordering::SeqCst) {
        let elapsed = wall0.elapsed().as_secs_f64() * 1000.0 * options.speed;
        let target = virtual0 + elapsed as i64;
        let now = shared.world().now;
        match sim.run_until(target.max(now), None) {
            // Said once, not every tick while it lasts.
            Err(e) if last_error.as_ref() != Some(&e) => {
                eprintln!("flink-sim serve: {e}");
                last_error = Some(e);
            }
            Err(_) => {}
            Ok(_) => last_error = None,
        }
        {
            let mut w = shared.world();
            mirror_events(&mut w, &mut mirrored, &mut event_seq);
            empty_terminating_namespaces(&mut w);
            if last_sweep.elapsed() > Duration::from_secs(1) {
                expire_events(&mut w);
                last_sweep = Instant::now();
            }
            w.flush_watch();
        }
        let entries = sim.take_timeline();
        if options.print_timeline {
            for e in entries {
                println!("{e}");
            }
        }
        if let Some(v) = sim.take_violation() {
            eprintln!("flink-sim serve: invariant violated: {v}");
        }
        let rv = shared.world().kube.resource_version();
        shared.notify(rv);
        match kick.recv_timeout(TICK) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(TICK),
        }
        while kick.try_recv().is_ok() {}
    }
}

/// Each event the operator published becomes a core/v1 Event in its resource's namespace.
fn mirror_events(w: &mut World, mirrored: &mut usize, seq: &mut u64) {
    if *mirrored >= w.events.len() {
        return;
    }
    let new: Vec<_> = w.events[*mirrored..].to_vec();
    *mirrored = w.events.len();
    for (at, e) in new {
        *seq += 1;
        let uid = e.uid.clone().or_else(|| {
            w.kube
                .get(&key_of(&e.kind, &e.namespace, &e.name))
                .and_then(|o| o["metadata"]["uid"].as_str().map(str::to_string))
        });
        let t = rfc3339(at);
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": format!("{}.{:x}", e.name, (at as u64).wrapping_mul(1_000_000).wrapping_add(*seq)),
                "namespace": e.namespace,
            },
            "involvedObject": {
                "apiVersion": flink_operator::crd::API_VERSION,
                "kind": e.kind,
                "name": e.name,
                "namespace": e.namespace,
                "uid": uid,
            },
            "reason": e.reason,
            "message": e.message,
            "type": e.event_type.as_str(),
            "source": {"component": e.component},
            "reportingComponent": e.component,
            "reportingInstance": "flink-operator",
            "firstTimestamp": t,
            "lastTimestamp": t,
            "count": 1,
        });
        let _ = w.kube.create(event, &t);
    }
}

fn expire_events(w: &mut World) {
    let now = w.now;
    let old: Vec<_> = w
        .kube
        .list_all("Event")
        .into_iter()
        .filter(|e| {
            // Events written through events.k8s.io/v1 carry wall-clock times of their
            // writer; the world's clock says when they were stored.
            e["lastTimestamp"]
                .as_str()
                .or_else(|| e["metadata"]["creationTimestamp"].as_str())
                .and_then(table::parse_rfc3339)
                .map(|t| now - t > EVENT_TTL_MS)
                .unwrap_or(false)
        })
        .map(|e| {
            key_of(
                "Event",
                e["metadata"]["namespace"].as_str().unwrap_or_default(),
                e["metadata"]["name"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let t = w.now_rfc3339();
    for k in old {
        let _ = w.kube.delete(&k, &t);
    }
}

/// A namespace being deleted: delete what is in it; once empty, it goes.
fn empty_terminating_namespaces(w: &mut World) {
    let terminating: Vec<String> = w
        .kube
        .list("Namespace", "")
        .into_iter()
        .filter(|n| n["status"]["phase"] == "Terminating")
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    let t = w.now_rfc3339();
    for ns in terminating {
        let inside: Vec<_> = w.kube.keys().filter(|k| k.1 == ns).collect();
        if inside.is_empty() {
            let _ = w.kube.delete(&key_of("Namespace", "", &ns), &t);
            continue;
        }
        for k in inside {
            let marked = w
                .kube
                .get(&k)
                .map(|o| o["metadata"].get("deletionTimestamp").is_some())
                .unwrap_or(true);
            if !marked {
                let _ = w.kube.delete(&k, &t);
            }
        }
    }
}

// ---- HTTP ----

type ResponseBody = BoxBody<Bytes, Infallible>;

/// A streamed response body: one chunk per watch event.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("flink-sim serve: cannot listen: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let shared = shared.clone();
                        async move {
                            if req.uri().path().starts_with(FLINK_PREFIX) {
                                flink_answer(shared, req).await
                            } else {
                                Ok(answer(shared, req).await)
                            }
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

fn json_response(code: u16, body: &Value, warnings: &[String]) -> Response<ResponseBody> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut builder = Response::builder()
        .status(code)
        .header("Content-Type", "application/json")
        .header("Cache-Control", "no-cache, private");
    for w in warnings {
        builder = builder.header("Warning", format!("299 - {}", json!(w)));
    }
    builder
        .body(Full::new(Bytes::from(bytes)).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

/// Where the JobManagers' REST APIs are served: `/flink/{namespace}/{cluster}/...`.
pub const FLINK_PREFIX: &str = "/flink/";

/// The base URL of a cluster's JobManager REST API on the server at `addr`; with
/// `{namespace}` and `{name}` for the placeholders, what `flink-operator run --flink-url`
/// takes.
pub fn flink_url(addr: SocketAddr, namespace: &str, cluster: &str) -> String {
    format!("http://{addr}{FLINK_PREFIX}{namespace}/{cluster}")
}

/// A request to a JobManager: the world's fake Flink REST API for that cluster (see
/// [`crate::flink_http`]), the prefix taken off. When the world says the JobManager is not
/// reachable, the connection closes without an answer.
async fn flink_answer(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, NoAnswer> {
    let path = req.uri().path().to_string();
    let rest = path.strip_prefix(FLINK_PREFIX).unwrap_or_default();
    let mut segments = rest.splitn(3, '/');
    let (namespace, cluster) = (
        segments.next().unwrap_or_default().to_string(),
        segments.next().unwrap_or_default().to_string(),
    );
    if namespace.is_empty() || cluster.is_empty() {
        let body = json!({"errors": [format!("Not found: {path} (the JobManagers are at {FLINK_PREFIX}NAMESPACE/CLUSTER/...)")]});
        return Ok(json_response(404, &body, &[]));
    }
    let inner = format!("/{}", segments.next().unwrap_or_default());
    let inner = match req.uri().query() {
        Some(q) => format!("{inner}?{q}"),
        None => inner,
    };
    let write = req.method() != http::Method::GET;
    let (mut parts, body) = req.into_parts();
    parts.uri = inner
        .parse()
        .map_err(|e| NoAnswer(format!("bad path {inner}: {e}")))?;
    let at = flink_operator::ports::FlinkEndpoint {
        url: flink_url(
            shared
                .info
                .address
                .parse()
                .unwrap_or(([127, 0, 0, 1], 0).into()),
            &namespace,
            &cluster,
        ),
        namespace,
        cluster_id: cluster,
    };
    let answer = shared
        .flink
        .clone()
        .for_endpoint(at)
        .handle(Request::from_parts(parts, body))
        .await;
    if write {
        shared.after_write();
    }
    answer.map(|r| r.map(BodyExt::boxed))
}

async fn answer(shared: Arc<Shared>, req: Request<Incoming>) -> Response<ResponseBody> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut request = ApiRequest {
        method: req.method().as_str().to_string(),
        path: req.uri().path().to_string(),
        query: Query::parse(req.uri().query().unwrap_or("")),
        content_type: header("content-type"),
        accept: header("accept"),
        body: Vec::new(),
    };
    request.body = match http_body_util::Limited::new(req.into_body(), BODY_LIMIT)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes().to_vec(),
        Err(e) => {
            let f = Failure {
                code: 400,
                reason: "BadRequest",
                message: format!("cannot read the request body: {e}"),
                details: Value::Null,
            };
            return json_response(400, &f.status(), &[]);
        }
    };
    let reply = {
        let mut w = shared.world();
        let now = w.now;
        api::handle(&mut w.kube, now, &shared.info, &request)
    };
    let dry_run = request.query.get("dryRun").is_some();
    if request.method != "GET" && reply.is_ok() && !dry_run {
        shared.after_write();
    }
    match reply {
        Ok(Reply::Json {
            code,
            body,
            warnings,
        }) => json_response(code, &body, &warnings),
        Ok(Reply::Text { code, body }) => Response::builder()
            .status(code)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from(body)).boxed())
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed())),
        Ok(Reply::Watch(spec)) => watch_response(shared, *spec),
        Err(f) => json_response(f.code, &f.status(), &[]),
    }
}

/// Counts a watch as open while it lives.
struct OpenWatch(Arc<AtomicUsize>);

impl OpenWatch {
    fn new(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        OpenWatch(count)
    }
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn line(v: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(v).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn error_event(f: &Failure) -> Value {
    json!({"type": "ERROR", "object": f.status()})
}

/// A watch: the events as JSON lines, as they happen, until the client goes away or the
/// timeout passes.
fn watch_response(shared: Arc<Shared>, spec: WatchSpec) -> Response<ResponseBody> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1024);
    let mut changes = shared.changed.subscribe();
    tokio::spawn(async move {
        let _open = OpenWatch::new(shared.watches.clone());
        let deadline = spec.timeout.map(|t| tokio::time::Instant::now() + t);
        let first = {
            let w = shared.world();
            spec.initial(&w.kube, w.now)
        };
        let mut cursor = match first {
            Ok((events, cursor)) => {
                for e in events {
                    if tx.send(line(&e)).await.is_err() {
                        return;
                    }
                }
                cursor
            }
            Err(f) => {
                let _ = tx.send(line(&error_event(&f))).await;
                return;
            }
        };
        loop {
            let wait = Duration::from_millis(500);
            let woke = tokio::time::timeout(wait, changes.changed()).await;
            if let Ok(Err(_)) = woke {
                return; // the server is going away
            }
            if tx.is_closed() {
                return;
            }
            if deadline
                .map(|d| tokio::time::Instant::now() >= d)
                .unwrap_or(false)
            {
                return;
            }
            let events = {
                let w = shared.world();
                spec.next(&w.kube, w.now, &mut cursor)
            };
            match events {
                Ok(events) => {
                    for e in events {
                        if tx.send(line(&e)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(f) => {
                    let _ = tx.send(line(&error_event(&f))).await;
                    return;
                }
            }
        }
    });
    Response::builder()
        .status(200)
        .header("Content-Type", "application/json")
        .header("Cache-Control", "no-cache, private")
        .body(ChannelBody(rx).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}
