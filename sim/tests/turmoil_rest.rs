//! The operator's real Flink REST adapter (`FlinkRestClient`) over turmoil's simulated
//! network, against the simulator's fake Flink served as HTTP (`flink_sim::flink_http`).
//!
//! A host named as the cluster's REST Service (`app-rest.default`) serves the fake; the
//! "operator" host runs the real client. The fake's world follows turmoil's clock: after every
//! turmoil step the test brings world time to the simulation's elapsed time, running every
//! world event due on the way (jobs starting, savepoints completing), exactly as the scenario
//! runner does between reconciles. Everything is seeded: the same seed gives the same trace,
//! which each test checks by running twice.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;

use flink_operator::adapters::flink_rest::FlinkRestClient;
use flink_operator::ports::*;
use flink_sim::flink_http::{FlinkHttp, HttpFault};
use flink_sim::ports::SimPorts;
use flink_sim::runner::block_on;
use flink_sim::scenario::ClusterSettings;
use flink_sim::world::{World, WorldCounters, EPOCH_MS};

/// The cluster's REST Service, as `FlinkEndpoint::for_cluster` names it: the turmoil host.
const JOBMANAGER: &str = "app-rest.default";
const OPERATOR: &str = "operator";
const REST_PORT: u16 = 8081;

fn endpoint() -> FlinkEndpoint {
    FlinkEndpoint::for_cluster("default", "app", REST_PORT)
}

// ---- the real client's connector over turmoil's network ----

/// Connects hyper-util's client through turmoil's TCP: `host:port` of the URL is a turmoil
/// host name.
#[derive(Clone)]
struct TurmoilConnector;

/// A turmoil TCP stream that sends what was written within one simulated millisecond as one
/// segment (as Nagle's algorithm would). Without it, how a streamed jar upload is cut into
/// segments would depend on when the real file reads finish, outside simulated time, and
/// turmoil draws one latency per segment: the same seed would not give the same run.
struct TurmoilStream {
    io: TokioIo<turmoil::net::TcpStream>,
    held: Vec<u8>,
    sent: usize,
    hold_until: Option<Pin<Box<tokio::time::Sleep>>>,
}

const HOLD_LIMIT: usize = 64 * 1024;

impl TurmoilStream {
    fn new(stream: turmoil::net::TcpStream) -> Self {
        TurmoilStream {
            io: TokioIo::new(stream),
            held: Vec::new(),
            sent: 0,
            hold_until: None,
        }
    }

    /// Sends everything held, once the millisecond it was written in is over.
    fn poll_send_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(hold) = self.hold_until.as_mut() {
            std::task::ready!(hold.as_mut().poll(cx));
            self.hold_until = None;
        }
        while self.sent < self.held.len() {
            let n = std::task::ready!(hyper::rt::Write::poll_write(
                Pin::new(&mut self.io),
                cx,
                &self.held[self.sent..]
            ))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.held.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Read for TurmoilStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for TurmoilStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.held.len() >= HOLD_LIMIT {
            std::task::ready!(this.poll_send_held(cx))?;
        }
        if this.hold_until.is_none() {
            this.hold_until = Some(Box::pin(tokio::time::sleep(Duration::from_millis(1))));
        }
        let n = buf.len().min(HOLD_LIMIT);
        this.held.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl Connection for TurmoilStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl tower_service::Service<Uri> for TurmoilConnector {
    type Response = TurmoilStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TurmoilStream>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host"))?
                .to_string();
            let port = uri.port_u16().unwrap_or(80);
            let stream = turmoil::net::TcpStream::connect((host.as_str(), port)).await?;
            Ok(TurmoilStream::new(stream))
        })
    }
}

fn rest_client(timeout: Duration) -> FlinkRestClient<TurmoilConnector> {
    FlinkRestClient::with_connector(TurmoilConnector, timeout)
}

// ---- the world, and its time following turmoil's ----

type Shared = Arc<Mutex<World>>;

fn lock(world: &Shared) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|e| e.into_inner())
}

/// A world with one session cluster `default/app` up: its configuration and a ready
/// JobManager pod, as the operator would have made them.
fn session_world(seed: u64, settings: ClusterSettings) -> Shared {
    let mut w = World::new(seed, settings);
    let now = w.now_rfc3339();
    let config = "execution.target: kubernetes-session\n\
                  state.savepoints.dir: file:///flink/savepoints\n\
                  state.checkpoints.dir: file:///flink/checkpoints\n\
                  taskmanager.numberOfTaskSlots: 2\n";
    w.kube
        .create(
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "flink-config-app", "namespace": "default"},
                   "data": {"config.yaml": config}}),
            &now,
        )
        .unwrap();
    w.kube
        .create(
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "app-jobmanager", "namespace": "default",
                                "labels": {"app": "app", "component": "jobmanager"}},
                   "spec": {"containers": [{"name": "flink-main-container", "image": "flink:2.3"}]},
                   "status": {"phase": "Running"}}),
            &now,
        )
        .unwrap();
    w.tick();
    assert!(w.clusters.contains_key(&("default".into(), "app".into())));
    Arc::new(Mutex::new(w))
}

/// Slow checkpoints out of the way: only triggered ones happen.
fn settings(savepoint_secs: u64) -> ClusterSettings {
    ClusterSettings {
        checkpoint_interval: Duration::from_secs(3600),
        savepoint_duration: Duration::from_secs(savepoint_secs),
        ..ClusterSettings::default()
    }
}

/// Brings the world to `to` (epoch ms): every event due on the way happens at its time, and
/// a request's effect (a new Deployment, say) is acted on at once, as the runner does.
struct Stepper {
    seen: WorldCounters,
}

impl Stepper {
    fn advance(&mut self, w: &mut World, to: i64) {
        if w.counters != self.seen {
            w.tick();
        }
        while let Some(at) = w.next_wake().filter(|t| *t > w.now && *t <= to) {
            w.now = at;
            w.tick();
        }
        w.now = w.now.max(to);
        self.seen = w.counters.clone();
    }
}

/// Runs one turmoil simulation: the fake Flink served on `JOBMANAGER`, `client` on
/// `OPERATOR`, world time following turmoil's. Message latency is drawn from
/// `latency_ms` (min, max) with the seed.
fn simulate(
    seed: u64,
    latency_ms: (u64, u64),
    world: &Shared,
    server: &FlinkHttp,
    client: impl Future<Output = turmoil::Result> + 'static,
    mut after_each_step: impl FnMut(&mut World),
) {
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .epoch(UNIX_EPOCH + Duration::from_millis(EPOCH_MS as u64))
        .simulation_duration(Duration::from_secs(1800))
        .min_message_latency(Duration::from_millis(latency_ms.0))
        .max_message_latency(Duration::from_millis(latency_ms.1))
        .build();
    let served = server.clone();
    sim.host(JOBMANAGER, move || {
        let server = served.clone();
        async move {
            let listener =
                turmoil::net::TcpListener::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), REST_PORT))
                    .await?;
            loop {
                let (stream, _) = listener.accept().await?;
                tokio::spawn(server.clone().serve_connection(stream));
            }
        }
    });
    sim.client(OPERATOR, client);
    let start = lock(world).now;
    let mut stepper = Stepper {
        seen: lock(world).counters.clone(),
    };
    loop {
        let done = sim.step().expect("the simulation runs");
        let now = start + sim.elapsed().as_millis() as i64;
        {
            let mut w = lock(world);
            stepper.advance(&mut w, now);
            after_each_step(&mut w);
        }
        if done {
            break;
        }
    }
}

/// Milliseconds of simulated time, for the client's own trace.
fn sim_ms() -> u128 {
    turmoil::sim_elapsed().unwrap_or_default().as_millis()
}

type Trace = Rc<RefCell<Vec<String>>>;

fn note(trace: &Trace, line: String) {
    trace
        .borrow_mut()
        .push(format!("{:>7} ms  {line}", sim_ms()));
}

/// The server's log, with times as offsets from the world's start.
fn server_trace(server: &FlinkHttp) -> Vec<String> {
    server
        .log()
        .iter()
        .map(|s| format!("{:>7} ms  server: {s}", s.at - EPOCH_MS))
        .collect()
}

fn jar_file(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("flink-sim-turmoil-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, b"PK\x05\x06 not much of a jar").unwrap();
    path.to_string_lossy().to_string()
}

/// A result as the comparison sees it: exact, but for an unreachable API, whose message says
/// how the transport failed (which differs between in-process and HTTP by nature).
fn shown<T: std::fmt::Debug>(r: &Result<T, FlinkError>) -> String {
    match r {
        Err(FlinkError::Unavailable(_)) => "Err(Unavailable)".into(),
        other => format!("{other:?}"),
    }
}

// ---- one script, run over HTTP and in process ----

type Sleep<'a> = &'a dyn Fn(u64) -> Pin<Box<dyn Future<Output = ()>>>;

/// What a run of the script saw: every answer in order, and the facts that do not depend on
/// exactly when each call was made.
#[derive(Debug, Default, PartialEq)]
struct Observed {
    answers: Vec<String>,
    facts: Vec<String>,
}

/// Every call of the FlinkApi port, the way the operator uses them: a job's life from upload
/// to a restore from its savepoint, then the errors Flink gives.
async fn script(api: &dyn FlinkApi, jar: &str, sleep: Sleep<'_>) -> Observed {
    let at = &endpoint();
    let mut o = Observed::default();
    macro_rules! answer {
        ($what:expr, $call:expr) => {{
            let r = $call;
            o.answers.push(format!("{}: {}", $what, shown(&r)));
            r
        }};
    }
    let overview = answer!("overview", api.overview(at).await).unwrap();
    o.facts.push(format!(
        "overview: {} taskmanagers, {} slots, Flink {}",
        overview.taskmanagers, overview.slots_total, overview.flink_version
    ));
    let jar_id = answer!("upload", api.upload_jar(at, jar).await).unwrap();
    o.facts.push(format!("jar {jar_id}"));
    let request = JarRunRequest {
        parallelism: Some(1),
        ..Default::default()
    };
    let run = answer!("run", api.run_jar(at, &jar_id, &request).await).unwrap();
    let job = run.jobid.clone();
    o.facts.push(format!("job {job}"));
    answer!("jobs", api.list_jobs(at).await).unwrap();
    sleep(6000).await;
    let jobs = answer!("jobs", api.list_jobs(at).await).unwrap();
    o.facts.push(format!("after start-up: {}", jobs[0].state));

    // A checkpoint, triggered and polled.
    let trigger = answer!("checkpoint", api.trigger_checkpoint(at, &job, "FULL").await).unwrap();
    loop {
        let op = answer!(
            "checkpoint status",
            api.checkpoint_status(at, &job, &trigger).await
        )
        .unwrap();
        if op.outcome() != SnapshotOutcome::InProgress {
            o.facts.push(format!("checkpoint: {:?}", op.operation));
            break;
        }
        sleep(500).await;
    }
    let stats = answer!("checkpoints", api.checkpoints(at, &job).await).unwrap();
    o.facts.push(format!(
        "latest checkpoint: {:?}",
        stats.latest.completed.map(|c| c.external_path)
    ));

    // A savepoint, triggered and polled.
    let trigger = answer!(
        "savepoint",
        api.trigger_savepoint(at, &job, None, "CANONICAL").await
    )
    .unwrap();
    let savepoint = loop {
        let op = answer!(
            "savepoint status",
            api.savepoint_status(at, &job, &trigger).await
        )
        .unwrap();
        match op.outcome() {
            SnapshotOutcome::InProgress => sleep(500).await,
            outcome => {
                o.facts.push(format!("savepoint: {outcome:?}"));
                match outcome {
                    SnapshotOutcome::Completed { location } => break location.unwrap(),
                    other => panic!("the savepoint did not complete: {other:?}"),
                }
            }
        }
    };
    answer!("exceptions", api.exceptions(at, &job).await).unwrap();

    // Stop-with-savepoint: the job finishes.
    let trigger = answer!(
        "stop",
        api.stop_with_savepoint(at, &job, Some("file:///flink/upgrades".into()), false)
            .await
    )
    .unwrap();
    let stopped_at = loop {
        let op = answer!(
            "stop status",
            api.savepoint_status(at, &job, &trigger).await
        )
        .unwrap();
        match op.outcome() {
            SnapshotOutcome::InProgress => sleep(500).await,
            SnapshotOutcome::Completed { location } => break location.unwrap(),
            other => panic!("the stop did not complete: {other:?}"),
        }
    };
    o.facts.push(format!("stopped with savepoint {stopped_at}"));
    let jobs = answer!("jobs", api.list_jobs(at).await).unwrap();
    o.facts.push(format!("after the stop: {}", jobs[0].state));

    // What Flink refuses.
    for r in [
        answer!(
            "savepoint of a finished job",
            api.trigger_savepoint(at, &job, None, "CANONICAL").await
        ),
        answer!(
            "unknown trigger",
            api.savepoint_status(at, &job, "0123456789abcdef0123456789abcdef")
                .await
                .map(|_| String::new())
        ),
    ] {
        o.facts.push(format!("refused: {}", shown(&r)));
    }
    let r = answer!("cancel a finished job", api.cancel_job(at, &job).await);
    o.facts.push(format!("refused: {}", shown(&r)));
    let r = answer!(
        "checkpoints of an unknown job",
        api.checkpoints(at, "ffffffffffffffffffffffffffffffff")
            .await
    );
    o.facts.push(format!("refused: {}", shown(&r)));

    // A new job restored from the stop's savepoint, then cancelled.
    let request = JarRunRequest {
        parallelism: Some(1),
        savepoint_path: Some(stopped_at.clone()),
        ..Default::default()
    };
    let run = answer!(
        "run from savepoint",
        api.run_jar(at, &jar_id, &request).await
    )
    .unwrap();
    let stats = answer!("checkpoints", api.checkpoints(at, &run.jobid).await).unwrap();
    o.facts.push(format!(
        "restored from {:?}",
        stats
            .latest
            .restored
            .map(|r| (r.is_savepoint, r.external_path))
    ));
    answer!("cancel", api.cancel_job(at, &run.jobid).await).unwrap();
    sleep(1500).await;
    let jobs = answer!("jobs", api.list_jobs(at).await).unwrap();
    o.facts.push(format!(
        "jobs at the end: {:?}",
        jobs.iter().map(|j| j.state.as_str()).collect::<Vec<_>>()
    ));
    answer!("dispose", api.dispose_savepoint(at, &savepoint).await).unwrap();
    answer!("delete jar", api.delete_jar(at, &jar_id).await).unwrap();
    answer!("shutdown", api.shutdown_cluster(at).await).unwrap();
    // The JobManager's pod is still there: it comes back, empty.
    let jobs = answer!("jobs after shutdown", api.list_jobs(at).await);
    o.facts.push(format!("after shutdown: {}", shown(&jobs)));
    o
}

/// The in-process fake, each call made at the world time the HTTP run's call was served at
/// (taken from the server's log, in order).
struct Replay {
    ports: SimPorts,
    times: Mutex<std::collections::VecDeque<i64>>,
    stepper: Mutex<Stepper>,
}

impl Replay {
    fn new(world: Shared, times: Vec<i64>) -> Self {
        let seen = lock(&world).counters.clone();
        Replay {
            ports: SimPorts { world },
            times: Mutex::new(times.into()),
            stepper: Mutex::new(Stepper { seen }),
        }
    }

    fn next(&self) -> &SimPorts {
        let at = self
            .times
            .lock()
            .unwrap()
            .pop_front()
            .expect("the in-process run made more calls than the HTTP run");
        self.stepper
            .lock()
            .unwrap()
            .advance(&mut lock(&self.ports.world), at);
        &self.ports
    }
}

#[async_trait]
impl FlinkApi for Replay {
    async fn overview(&self, at: &FlinkEndpoint) -> Result<ClusterOverview, FlinkError> {
        self.next().overview(at).await
    }
    async fn list_jobs(&self, at: &FlinkEndpoint) -> Result<Vec<JobOverview>, FlinkError> {
        self.next().list_jobs(at).await
    }
    async fn upload_jar(&self, at: &FlinkEndpoint, local_path: &str) -> Result<String, FlinkError> {
        // Over HTTP the fake only learns the file name.
        let name = local_path.rsplit('/').next().unwrap_or(local_path);
        self.next().upload_jar(at, name).await
    }
    async fn run_jar(
        &self,
        at: &FlinkEndpoint,
        jar_id: &str,
        request: &JarRunRequest,
    ) -> Result<JarRunResponse, FlinkError> {
        self.next().run_jar(at, jar_id, request).await
    }
    async fn delete_jar(&self, at: &FlinkEndpoint, jar_id: &str) -> Result<(), FlinkError> {
        self.next().delete_jar(at, jar_id).await
    }
    async fn trigger_savepoint(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        target_directory: Option<String>,
        format_type: &str,
    ) -> Result<String, FlinkError> {
        self.next()
            .trigger_savepoint(at, job_id, target_directory, format_type)
            .await
    }
    async fn stop_with_savepoint(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        target_directory: Option<String>,
        drain: bool,
    ) -> Result<String, FlinkError> {
        self.next()
            .stop_with_savepoint(at, job_id, target_directory, drain)
            .await
    }
    async fn savepoint_status(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<AsyncOperation, FlinkError> {
        self.next().savepoint_status(at, job_id, trigger_id).await
    }
    async fn trigger_checkpoint(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        checkpoint_type: &str,
    ) -> Result<String, FlinkError> {
        self.next()
            .trigger_checkpoint(at, job_id, checkpoint_type)
            .await
    }
    async fn checkpoint_status(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<AsyncOperation, FlinkError> {
        self.next().checkpoint_status(at, job_id, trigger_id).await
    }
    async fn checkpoints(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
    ) -> Result<CheckpointStatistics, FlinkError> {
        self.next().checkpoints(at, job_id).await
    }
    async fn cancel_job(&self, at: &FlinkEndpoint, job_id: &str) -> Result<(), FlinkError> {
        self.next().cancel_job(at, job_id).await
    }
    async fn exceptions(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
    ) -> Result<JobExceptions, FlinkError> {
        self.next().exceptions(at, job_id).await
    }
    async fn dispose_savepoint(
        &self,
        at: &FlinkEndpoint,
        path: &str,
    ) -> Result<String, FlinkError> {
        self.next().dispose_savepoint(at, path).await
    }
    async fn shutdown_cluster(&self, at: &FlinkEndpoint) -> Result<(), FlinkError> {
        self.next().shutdown_cluster(at).await
    }
}

/// The script over HTTP on turmoil (with the given latency), then the same script in process
/// at the same world times. Returns both, and the HTTP run's trace.
fn script_both_ways(seed: u64, latency_ms: (u64, u64)) -> (Observed, Observed, Vec<String>) {
    let jar = jar_file("state-job.jar");
    let world = session_world(seed, settings(2));
    let server = FlinkHttp::new(world.clone());
    let observed: Rc<RefCell<Option<Observed>>> = Rc::default();
    let raw: Trace = Rc::default();
    {
        let (observed, raw, jar, faults) =
            (observed.clone(), raw.clone(), jar.clone(), server.clone());
        simulate(
            seed,
            latency_ms,
            &world,
            &server,
            async move {
                let client = rest_client(Duration::from_secs(5));
                let sleep = |ms: u64| -> Pin<Box<dyn Future<Output = ()>>> {
                    Box::pin(tokio::time::sleep(Duration::from_millis(ms)))
                };
                let seen = script(&client, &jar, &sleep).await;
                let job = seen
                    .facts
                    .iter()
                    .find_map(|f| f.strip_prefix("job "))
                    .unwrap_or_default()
                    .to_string();
                *observed.borrow_mut() = Some(seen);
                // Connections that close unanswered: a GET is tried three times, then the
                // client says Unavailable; two refusals are retried through.
                let at = &endpoint();
                faults.inject(Method::GET, "/overview", HttpFault::Refuse, 3);
                let r = client.overview(at).await;
                note(&raw, format!("overview, refused thrice: {}", shown(&r)));
                faults.inject(Method::GET, "/overview", HttpFault::Refuse, 2);
                let r = client.overview(at).await.map(|o| o.taskmanagers);
                note(&raw, format!("overview, refused twice: {}", shown(&r)));
                // Beyond the port: the job list, the details of a job gone with its
                // JobManager and of a new one (under /v1, as Flink also serves them), and a
                // path Flink does not serve.
                let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                    .build::<_, Empty<Bytes>>(TurmoilConnector);
                let jar_id = client.upload_jar(at, &jar).await?;
                let request = JarRunRequest::default();
                let fresh = client.run_jar(at, &jar_id, &request).await?.jobid;
                let (gone, fresh) = (format!("/jobs/{job}"), format!("/v1/jobs/{fresh}"));
                for path in ["/jobs/overview", &gone, &fresh, "/no/such/path"] {
                    let answer = http
                        .get(format!("http://{JOBMANAGER}:{REST_PORT}{path}").parse()?)
                        .await;
                    let line = match answer {
                        Ok(r) => {
                            let status = r.status();
                            let body = r.into_body().collect().await?.to_bytes();
                            format!(
                                "raw GET {path}: {status} {}",
                                String::from_utf8_lossy(&body)
                            )
                        }
                        Err(e) => format!("raw GET {path}: {e}"),
                    };
                    note(&raw, line);
                }
                Ok(())
            },
            |_| {},
        );
    }
    let over_http = observed.borrow_mut().take().expect("the script finished");
    let log = server.log();
    let mut trace = server_trace(&server);
    trace.extend(raw.borrow().iter().cloned());

    // In process, at the times the server saw each call.
    let times: Vec<i64> = log.iter().map(|s| s.at).collect();
    let replay = Replay::new(session_world(seed, settings(2)), times);
    let no_sleep = |_: u64| -> Pin<Box<dyn Future<Output = ()>>> { Box::pin(async {}) };
    let in_process = block_on(script(&replay, &jar, &no_sleep));
    (over_http, in_process, trace)
}

/// (a) Over HTTP, every call of the port decodes to exactly what the in-process fake gives at
/// the same world time: ids, states, timestamps, savepoint locations, errors.
#[test]
fn the_rest_api_over_http_answers_as_the_in_process_fake() {
    let (over_http, in_process, trace) = script_both_ways(7, (0, 0));
    println!("{}", trace.join("\n"));
    assert_eq!(over_http.answers, in_process.answers);
    assert_eq!(over_http.facts, in_process.facts);
    let facts = over_http.facts.join("\n");
    for expected in [
        "after start-up: RUNNING",
        "savepoint: Completed { location: Some(\"file:///flink/savepoints/savepoint-",
        "stopped with savepoint file:///flink/upgrades/savepoint-",
        "after the stop: FINISHED",
        "refused: Err(Conflict(",
        "refused: Err(NotFound(\"Operation 0123456789abcdef0123456789abcdef not found\"))",
        "restored from Some((true, Some(\"file:///flink/upgrades/savepoint-",
        "jobs at the end: [\"FINISHED\", \"CANCELED\"]",
        "after shutdown: Ok([])",
    ] {
        assert!(facts.contains(expected), "{expected}\nin\n{facts}");
    }
    let raw = trace.join("\n");
    assert!(
        raw.contains(
            "raw GET /no/such/path: 404 Not Found {\"errors\":[\"Not found: /no/such/path\"]}"
        ),
        "{raw}"
    );
    assert!(
        raw.contains("overview, refused thrice: Err(Unavailable)"),
        "{raw}"
    );
    assert!(raw.contains("overview, refused twice: Ok(1)"), "{raw}");
    let refused = trace
        .iter()
        .filter(|l| {
            l.ends_with("server: GET /overview -> no answer (connection closed (refuse fault))")
        })
        .count();
    assert_eq!(
        refused, 5,
        "three tries, then two and a third that is answered: {raw}"
    );
    // GET /jobs/:jid: the job's details.
    let details = raw
        .lines()
        .find(|l| l.contains("raw GET /v1/jobs/"))
        .expect("the job's details");
    let body: serde_json::Value =
        serde_json::from_str(&details[details.find('{').unwrap()..]).unwrap();
    assert_eq!(body["state"], "INITIALIZING", "{details}");
    assert!(body["timestamps"]["INITIALIZING"].is_i64(), "{details}");
    assert!(details.contains(body["jid"].as_str().unwrap()), "{details}");
    assert!(
        raw.contains(&format!(
            "404 Not Found {{\"errors\":[\"Job {} not found\"]}}",
            over_http
                .facts
                .iter()
                .find_map(|f| f.strip_prefix("job "))
                .unwrap()
        )),
        "{raw}"
    );
    // A request the whole way: the upload arrived as a multipart part named after the file.
    assert!(raw.contains("server: POST /jars/upload -> 200"), "{raw}");
}

/// (d) Latency on every message (200–400 ms each way, under the 5 s timeout) changes when
/// things happen, not what the operator learns: the same facts as without latency, and
/// still exactly the in-process answers at the times the calls arrived.
#[test]
fn latency_below_the_timeout_changes_nothing_the_operator_sees() {
    let (fast, _, _) = script_both_ways(11, (0, 0));
    let (slow, in_process, trace) = script_both_ways(11, (200, 400));
    println!("{}", trace.join("\n"));
    assert_eq!(slow.answers, in_process.answers);
    assert_eq!(slow.facts, fast.facts);
    // Twice with the same seed: the same trace.
    let (_, _, again) = script_both_ways(11, (200, 400));
    assert_eq!(trace, again);
}

// ---- faults on the way ----

/// What a fault run leaves behind for its assertions.
struct Run {
    trace: Vec<String>,
    server: Vec<flink_sim::flink_http::Served>,
    world: Shared,
    location: Option<String>,
}

fn count(served: &[flink_sim::flink_http::Served], method: &str, suffix: &str) -> usize {
    served
        .iter()
        .filter(|s| s.method == method && s.path.ends_with(suffix))
        .count()
}

/// Starts a job and waits until it runs; returns its id.
async fn start_job(api: &dyn FlinkApi, jar: &str, trace: &Trace) -> String {
    let at = &endpoint();
    let jar_id = api.upload_jar(at, jar).await.expect("upload");
    let request = JarRunRequest {
        parallelism: Some(1),
        ..Default::default()
    };
    let job = api.run_jar(at, &jar_id, &request).await.expect("run").jobid;
    note(trace, format!("client: job {job} submitted"));
    tokio::time::sleep(Duration::from_secs(6)).await;
    let jobs = api.list_jobs(at).await.expect("jobs");
    note(trace, format!("client: job {}", jobs[0].state));
    job
}

/// Polls a savepoint trigger every second until it is done, noting every answer.
async fn poll_until_done(
    api: &dyn FlinkApi,
    job: &str,
    trigger: &str,
    trace: &Trace,
    partitioned_until: Option<u128>,
) -> String {
    let at = &endpoint();
    loop {
        let started = sim_ms();
        let answer = api.savepoint_status(at, job, trigger).await;
        note(
            trace,
            format!("client: poll ({} ms) -> {answer:?}", sim_ms() - started),
        );
        match answer {
            Ok(op) => match op.outcome() {
                SnapshotOutcome::Completed { location } => return location.unwrap(),
                SnapshotOutcome::Failed { cause } => panic!("the savepoint failed: {cause}"),
                SnapshotOutcome::InProgress => {}
            },
            Err(FlinkError::Unavailable(_)) => {}
            Err(e) => panic!("a poll failed otherwise than unavailable: {e}"),
        }
        if let Some(until) = partitioned_until {
            if sim_ms() >= until {
                turmoil::repair(OPERATOR, JOBMANAGER);
                note(trace, "network: partition healed".into());
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Job, savepoint trigger, then polls; with `partition`, the network between the operator
/// and the JobManager is cut right after the first poll, for 25 s (longer than the 20 s the
/// savepoint takes).
fn savepoint_under_partition(seed: u64, partition: bool) -> Run {
    let jar = jar_file("state-job.jar");
    let world = session_world(seed, settings(20));
    let server = FlinkHttp::new(world.clone());
    let trace: Trace = Rc::default();
    let location: Rc<RefCell<Option<String>>> = Rc::default();
    {
        let (trace, location) = (trace.clone(), location.clone());
        simulate(
            seed,
            (5, 50),
            &world,
            &server,
            async move {
                let client = rest_client(Duration::from_secs(2));
                let at = &endpoint();
                let job = start_job(&client, &jar, &trace).await;
                let trigger = client
                    .trigger_savepoint(at, &job, None, "CANONICAL")
                    .await
                    .expect("trigger");
                note(&trace, format!("client: savepoint {trigger} triggered"));
                let first = client.savepoint_status(at, &job, &trigger).await;
                note(&trace, format!("client: poll -> {first:?}"));
                let mut heal_at = None;
                if partition {
                    turmoil::partition(OPERATOR, JOBMANAGER);
                    note(&trace, "network: partition operator <-> jobmanager".into());
                    heal_at = Some(sim_ms() + 25_000);
                }
                let found = poll_until_done(&client, &job, &trigger, &trace, heal_at).await;
                note(&trace, format!("client: savepoint at {found}"));
                *location.borrow_mut() = Some(found);
                Ok(())
            },
            |_| {},
        );
    }
    let mut lines = server_trace(&server);
    lines.extend(trace.borrow().iter().cloned());
    lines.sort_by_key(|l| l[..7].trim().parse::<u64>().unwrap_or(0));
    let location = location.borrow().clone();
    Run {
        trace: lines,
        server: server.log(),
        world,
        location,
    }
}

/// (b) A partition while the savepoint is polled: every poll in it fails as Unavailable (a
/// timeout; GETs are retried, to no avail), nothing is triggered or submitted again, and once
/// the network heals the poll finds the savepoint, at the location an undisturbed run gets.
#[test]
fn a_partition_during_the_savepoint_poll_only_delays_it() {
    let run = savepoint_under_partition(3, true);
    println!("{}", run.trace.join("\n"));
    let calm = savepoint_under_partition(3, false);
    assert_eq!(run.location, calm.location, "the same savepoint");
    assert!(run
        .location
        .as_deref()
        .unwrap_or_default()
        .starts_with("file:///flink/savepoints/savepoint-"));

    let trace = run.trace.join("\n");
    let cut = trace.find("network: partition operator").unwrap();
    let healed = trace.find("network: partition healed").unwrap();
    let during = &trace[cut..healed];
    assert!(
        during
            .lines()
            .filter(|l| l.contains("client: poll"))
            .all(|l| l.contains("-> Err(Unavailable(")),
        "{during}"
    );
    assert!(
        !during.contains("-> Ok"),
        "no answer crosses a partition: {during}"
    );
    assert!(
        !during.contains("server:"),
        "nothing reaches the server: {during}"
    );
    // The first poll goes out on the kept-alive connection and times out (2 s); its retries
    // and the later polls need new connections, which turmoil refuses across a partition.
    let polls: Vec<&str> = during
        .lines()
        .filter(|l| l.contains("client: poll"))
        .collect();
    assert!(polls.len() > 5, "{during}");
    assert!(
        polls[0].contains("client: poll (26"),
        "a timeout, then two retries: {}",
        polls[0]
    );

    assert_eq!(
        count(&run.server, "POST", "/savepoints"),
        1,
        "one savepoint triggered"
    );
    assert_eq!(count(&run.server, "POST", "/run"), 1, "one job submitted");
    let w = lock(&run.world);
    assert_eq!(w.jobs.len(), 1);
    let cluster = &w.clusters[&("default".to_string(), "app".to_string())];
    assert_eq!(cluster.operations.len(), 1);
    assert_eq!(
        cluster.jobs[0].state, "RUNNING",
        "a plain savepoint leaves the job running"
    );
    drop(w);

    // Same seed, same run.
    assert_eq!(run.trace, savepoint_under_partition(3, true).trace);
}

/// How the stop's answer goes missing.
#[derive(Clone, Copy, Debug)]
enum LostStop {
    /// The JobManager takes the request, then the connection drops.
    ConnectionDropped,
    /// The request arrives, the answer does not (a one-way partition) until the timeout.
    Timeout,
}

/// A stop-with-savepoint whose answer never reaches the client: the stop happened once; the
/// client says Unavailable; a later poll of the trigger (whose id the test reads from the
/// fake JobManager, as the client cannot know it) finds the savepoint, and the job FINISHED.
fn stop_with_lost_answer(seed: u64, how: LostStop) -> Run {
    let jar = jar_file("state-job.jar");
    let world = session_world(seed, settings(2));
    let server = FlinkHttp::new(world.clone());
    let trace: Trace = Rc::default();
    let location: Rc<RefCell<Option<String>>> = Rc::default();
    {
        let (trace, location, server, world) = (
            trace.clone(),
            location.clone(),
            server.clone(),
            world.clone(),
        );
        simulate(
            seed,
            (5, 50),
            &world.clone(),
            &server.clone(),
            async move {
                let client = rest_client(Duration::from_secs(2));
                let at = &endpoint();
                let job = start_job(&client, &jar, &trace).await;
                match how {
                    LostStop::ConnectionDropped => {
                        server.inject(Method::POST, "/stop", HttpFault::LoseAnswer, 1);
                        note(&trace, "fault: the next stop's answer is lost".into());
                    }
                    LostStop::Timeout => {
                        turmoil::partition_oneway(JOBMANAGER, OPERATOR);
                        note(&trace, "network: jobmanager -> operator cut".into());
                    }
                }
                let stop = client.stop_with_savepoint(at, &job, None, false).await;
                note(&trace, format!("client: stop -> {stop:?}"));
                assert!(
                    matches!(stop, Err(FlinkError::Unavailable(_))),
                    "the stop's answer was lost: {stop:?}"
                );
                if let LostStop::Timeout = how {
                    turmoil::repair(OPERATOR, JOBMANAGER);
                    note(&trace, "network: healed".into());
                }
                // The trigger exists on the JobManager.
                let trigger = {
                    let w = lock(&world);
                    let cluster = &w.clusters[&("default".to_string(), "app".to_string())];
                    let mut stops = cluster.operations.iter().filter(|(_, op)| op.stop);
                    let (trigger, _) = stops.next().expect("the stop reached the JobManager");
                    assert!(stops.next().is_none(), "one stop");
                    trigger.clone()
                };
                let found = poll_until_done(&client, &job, &trigger, &trace, None).await;
                note(&trace, format!("client: stopped with savepoint {found}"));
                let jobs = client.list_jobs(at).await.expect("jobs");
                note(&trace, format!("client: job {}", jobs[0].state));
                assert_eq!(jobs[0].state, "FINISHED");
                *location.borrow_mut() = Some(found);
                Ok(())
            },
            |_| {},
        );
    }
    let mut lines = server_trace(&server);
    lines.extend(trace.borrow().iter().cloned());
    lines.sort_by_key(|l| l[..7].trim().parse::<u64>().unwrap_or(0));
    let location = location.borrow().clone();
    Run {
        trace: lines,
        server: server.log(),
        world,
        location,
    }
}

/// (c) The stop's POST is sent once, never again by the client: whether the connection
/// drops after the JobManager took it or the answer does not come within the timeout, the
/// client reports Unavailable, exactly one stop happened, and polling its trigger finds the
/// savepoint.
#[test]
fn a_stop_whose_answer_is_lost_is_not_sent_again() {
    for how in [LostStop::ConnectionDropped, LostStop::Timeout] {
        let run = stop_with_lost_answer(5, how);
        println!("--- {how:?}\n{}", run.trace.join("\n"));
        assert_eq!(count(&run.server, "POST", "/stop"), 1, "{how:?}: one POST");
        assert!(run
            .location
            .as_deref()
            .unwrap_or_default()
            .starts_with("file:///flink/savepoints/savepoint-"));
        let trace = run.trace.join("\n");
        match how {
            LostStop::ConnectionDropped => {
                assert!(trace.contains("answer lost"), "{trace}");
            }
            LostStop::Timeout => assert!(trace.contains("no answer within 2s"), "{trace}"),
        }
        let w = lock(&run.world);
        assert_eq!(w.jobs.len(), 1, "one job");
        assert_eq!(
            w.state_log.len(),
            1,
            "one savepoint: {:?}",
            w.state_log.iter().map(|s| s.path()).collect::<Vec<_>>()
        );
        drop(w);
        assert_eq!(
            run.trace,
            stop_with_lost_answer(5, how).trace,
            "{how:?}: deterministic"
        );
    }
}

// ---- the operator's reconcile loop, its Flink port over the network ----

/// The operator's Flink port with every call's outcome noted (simulated time, call, result).
struct Noted<A> {
    inner: A,
    notes: Arc<Mutex<Vec<String>>>,
}

impl<A> Noted<A> {
    fn note<T: std::fmt::Debug>(&self, call: &str, r: &Result<T, FlinkError>) {
        let shown = match r {
            Ok(v) => {
                let v = format!("{v:?}");
                format!("Ok({})", v.chars().take(120).collect::<String>())
            }
            Err(e) => format!("Err({e})"),
        };
        self.notes
            .lock()
            .unwrap()
            .push(format!("{:>7} ms  operator: {call} -> {shown}", sim_ms()));
    }
}

#[async_trait]
impl<A: FlinkApi> FlinkApi for Noted<A> {
    async fn overview(&self, at: &FlinkEndpoint) -> Result<ClusterOverview, FlinkError> {
        let r = self.inner.overview(at).await;
        self.note("overview", &r);
        r
    }
    async fn list_jobs(&self, at: &FlinkEndpoint) -> Result<Vec<JobOverview>, FlinkError> {
        let r = self.inner.list_jobs(at).await;
        self.note(
            "list jobs",
            &r.as_ref()
                .map(|j| j.iter().map(|j| j.state.clone()).collect::<Vec<_>>())
                .map_err(Clone::clone),
        );
        r
    }
    async fn upload_jar(&self, at: &FlinkEndpoint, local_path: &str) -> Result<String, FlinkError> {
        let r = self.inner.upload_jar(at, local_path).await;
        self.note("upload jar", &r);
        r
    }
    async fn run_jar(
        &self,
        at: &FlinkEndpoint,
        jar_id: &str,
        request: &JarRunRequest,
    ) -> Result<JarRunResponse, FlinkError> {
        let r = self.inner.run_jar(at, jar_id, request).await;
        self.note("run jar", &r);
        r
    }
    async fn delete_jar(&self, at: &FlinkEndpoint, jar_id: &str) -> Result<(), FlinkError> {
        let r = self.inner.delete_jar(at, jar_id).await;
        self.note("delete jar", &r);
        r
    }
    async fn trigger_savepoint(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        target_directory: Option<String>,
        format_type: &str,
    ) -> Result<String, FlinkError> {
        let r = self
            .inner
            .trigger_savepoint(at, job_id, target_directory, format_type)
            .await;
        self.note("trigger savepoint", &r);
        r
    }
    async fn stop_with_savepoint(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        target_directory: Option<String>,
        drain: bool,
    ) -> Result<String, FlinkError> {
        let r = self
            .inner
            .stop_with_savepoint(at, job_id, target_directory, drain)
            .await;
        self.note("stop with savepoint", &r);
        r
    }
    async fn savepoint_status(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<AsyncOperation, FlinkError> {
        let r = self.inner.savepoint_status(at, job_id, trigger_id).await;
        self.note(
            "savepoint status",
            &r.as_ref().map(|o| o.outcome()).map_err(Clone::clone),
        );
        r
    }
    async fn trigger_checkpoint(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        checkpoint_type: &str,
    ) -> Result<String, FlinkError> {
        let r = self
            .inner
            .trigger_checkpoint(at, job_id, checkpoint_type)
            .await;
        self.note("trigger checkpoint", &r);
        r
    }
    async fn checkpoint_status(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<AsyncOperation, FlinkError> {
        let r = self.inner.checkpoint_status(at, job_id, trigger_id).await;
        self.note("checkpoint status", &r);
        r
    }
    async fn checkpoints(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
    ) -> Result<CheckpointStatistics, FlinkError> {
        let r = self.inner.checkpoints(at, job_id).await;
        self.note(
            "checkpoints",
            &r.as_ref()
                .map(|c| c.latest.completed.as_ref().map(|c| c.external_path.clone()))
                .map_err(Clone::clone),
        );
        r
    }
    async fn cancel_job(&self, at: &FlinkEndpoint, job_id: &str) -> Result<(), FlinkError> {
        let r = self.inner.cancel_job(at, job_id).await;
        self.note("cancel job", &r);
        r
    }
    async fn exceptions(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
    ) -> Result<JobExceptions, FlinkError> {
        let r = self.inner.exceptions(at, job_id).await;
        self.note(
            "exceptions",
            &r.as_ref()
                .map(|e| e.exception_history.entries.len())
                .map_err(Clone::clone),
        );
        r
    }
    async fn dispose_savepoint(
        &self,
        at: &FlinkEndpoint,
        path: &str,
    ) -> Result<String, FlinkError> {
        let r = self.inner.dispose_savepoint(at, path).await;
        self.note("dispose savepoint", &r);
        r
    }
    async fn shutdown_cluster(&self, at: &FlinkEndpoint) -> Result<(), FlinkError> {
        let r = self.inner.shutdown_cluster(at).await;
        self.note("shutdown cluster", &r);
        r
    }
}

const OWNER: &str = "FlinkDeployment/default/app";

fn flink_deployment() -> serde_json::Value {
    json!({
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "app", "namespace": "default"},
        "spec": {
            "image": "flink:2.3",
            "flinkVersion": "v2_3",
            "flinkConfiguration": {
                "taskmanager.numberOfTaskSlots": "2",
                "state.savepoints.dir": "file:///flink-data/savepoints",
                "state.checkpoints.dir": "file:///flink-data/checkpoints",
                "high-availability.type": "kubernetes",
                "high-availability.storageDir": "file:///flink-data/ha"
            },
            "jobManager": {"resource": {"memory": "2048m", "cpu": 1}},
            "taskManager": {"resource": {"memory": "2048m", "cpu": 1}},
            "job": {
                "jarURI": "local:///opt/flink/examples/streaming/StateMachineExample.jar",
                "parallelism": 2,
                "upgradeMode": "savepoint"
            }
        }
    })
}

/// What an upgrade run leaves behind.
struct UpgradeRun {
    trace: Vec<String>,
    server: Vec<flink_sim::flink_http::Served>,
    violations: Vec<String>,
    world: Shared,
}

/// The operator's real controller loop and reconcile code (as `flink_sim::runner` drives
/// them), with the real REST client as its Flink port over turmoil and the simulated
/// Kubernetes API in process. It deploys a savepoint-mode FlinkDeployment, then the test
/// changes its parallelism; with `partition`, the network between the operator and the
/// JobManager is cut for 20 s as soon as the upgrade savepoint's trigger is in the status,
/// while the savepoint (10 s) is being polled. The world's invariants are checked after
/// every turmoil step.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Disturbance {
    None,
    /// The network between the operator and the JobManager is cut for 20 s as soon as the
    /// upgrade savepoint's trigger is in the status.
    PartitionDuringPoll,
    /// The stop-with-savepoint is taken, its answer lost (the connection drops).
    LoseStopAnswer,
}

fn upgrade_over_turmoil(seed: u64, disturbance: Disturbance) -> UpgradeRun {
    let partition = disturbance == Disturbance::PartitionDuringPoll;
    use flink_operator::controller::{self, Scheduler, WatchFilter};
    use flink_operator::reconcile::Context;
    use std::collections::BTreeMap;

    let settings = ClusterSettings {
        savepoint_duration: Duration::from_secs(10),
        ..ClusterSettings::default()
    };
    let mut w = World::new(seed, settings);
    let now = w.now_rfc3339();
    w.kube.create(flink_deployment(), &now).unwrap();
    let world: Shared = Arc::new(Mutex::new(w));
    let server = FlinkHttp::new(world.clone());
    if disturbance == Disturbance::LoseStopAnswer {
        server.inject(Method::POST, "/stop", HttpFault::LoseAnswer, 1);
    }
    let trace: Trace = Rc::default();
    let violations: Rc<RefCell<Vec<String>>> = Rc::default();
    let calls: Arc<Mutex<Vec<String>>> = Arc::default();
    {
        let (trace, world, notes) = (trace.clone(), world.clone(), calls.clone());
        let mut invariants = flink_sim::invariants::Invariants::default();
        let found = violations.clone();
        simulate(
            seed,
            (5, 50),
            &world.clone(),
            &server,
            async move {
                let client = Noted {
                    inner: rest_client(Duration::from_secs(2)),
                    notes,
                };
                let ports = SimPorts {
                    world: world.clone(),
                };
                let config: BTreeMap<String, String> = BTreeMap::new();
                let mut scheduler = Scheduler::default();
                let mut watch = WatchFilter::default();
                let mut patched = false;
                let mut heal_at: Option<u128> = None;
                let mut healed = false;
                let mut last_seen = String::new();
                loop {
                    // Watch events reach the operator, as in the runner.
                    let (events, now) = {
                        let mut w = lock(&world);
                        w.flush_watch();
                        (std::mem::take(&mut w.watch_queue), w.now)
                    };
                    for e in events {
                        let (kind, ns, name) = &e.key;
                        for key in watch.on_change(kind, ns, name, &e.object, e.deleted) {
                            scheduler.notify(key, now);
                        }
                    }
                    if let Some(key) = scheduler.pop_due(now) {
                        lock(&world).current_actor =
                            format!("{}/{}/{}", key.kind.as_str(), key.namespace, key.name);
                        let ctx = Context {
                            kube: &ports,
                            flink: &client,
                            artifacts: &ports,
                            clock: &ports,
                            operator_config: &config,
                        };
                        if let Err(e) = controller::reconcile_key(&ctx, &mut scheduler, &key).await
                        {
                            note(&trace, format!("operator: reconcile failed: {e}"));
                        }
                        continue;
                    }
                    let status = {
                        let w = lock(&world);
                        w.kube
                            .get(&flink_sim::kube::key_of(
                                "FlinkDeployment",
                                "default",
                                "app",
                            ))
                            .map(|o| o["status"].clone())
                            .unwrap_or_default()
                    };
                    let seen = format!(
                        "status: {} / JobManager {} / job {} / reconciliation {}",
                        status["lifecycleState"].as_str().unwrap_or("-"),
                        status["jobManagerDeploymentStatus"].as_str().unwrap_or("-"),
                        status["jobStatus"]["state"].as_str().unwrap_or("-"),
                        status["reconciliationStatus"]["state"]
                            .as_str()
                            .unwrap_or("-"),
                    );
                    if seen != last_seen {
                        note(&trace, seen.clone());
                        last_seen = seen;
                    }
                    let stable_running = status["lifecycleState"] == "STABLE"
                        && status["jobStatus"]["state"] == "RUNNING";
                    if !patched && stable_running {
                        let mut w = lock(&world);
                        let key = flink_sim::kube::key_of("FlinkDeployment", "default", "app");
                        let mut fd = w.kube.get(&key).cloned().unwrap();
                        fd["spec"]["job"]["parallelism"] = json!(4);
                        w.kube.update(fd, None).unwrap();
                        patched = true;
                        drop(w);
                        note(&trace, "test: parallelism 2 -> 4".into());
                    }
                    let pending = status["jobStatus"]["savepointInfo"]["triggerId"].is_string();
                    if partition && patched && heal_at.is_none() && pending {
                        turmoil::partition(OPERATOR, JOBMANAGER);
                        heal_at = Some(sim_ms() + 20_000);
                        note(&trace, "network: partition operator <-> jobmanager".into());
                    }
                    if let (Some(at), false) = (heal_at, healed) {
                        if sim_ms() >= at {
                            turmoil::repair(OPERATOR, JOBMANAGER);
                            healed = true;
                            note(&trace, "network: partition healed".into());
                        }
                    }
                    let upgraded = {
                        let w = lock(&world);
                        w.newest_job(OWNER)
                            .map(|r| r.parallelism == 4 && w.job_state(r) == "RUNNING")
                            .unwrap_or(false)
                    };
                    if patched && stable_running && upgraded {
                        note(&trace, "test: upgraded".into());
                        return Ok(());
                    }
                    if sim_ms() > 600_000 {
                        return Err("the upgrade did not finish within 10 minutes".into());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            move |w| {
                for v in invariants.check(w) {
                    found
                        .borrow_mut()
                        .push(format!("+{} ms: {v}", w.now - EPOCH_MS));
                }
            },
        );
    }
    let mut lines = server_trace(&server);
    lines.extend(trace.borrow().iter().cloned());
    lines.extend(calls.lock().unwrap().iter().cloned());
    lines.sort_by_key(|l| l[..7].trim().parse::<u64>().unwrap_or(0));
    let violations = violations.borrow().clone();
    UpgradeRun {
        trace: lines,
        server: server.log(),
        violations,
        world,
    }
}

/// The real reconcile loop through a savepoint upgrade, its REST calls over the simulated
/// network, with a partition while the upgrade savepoint is polled: the operator keeps
/// polling (no second stop, no job started twice), and once the network heals it redeploys
/// from exactly the savepoint the stop took. The invariants (never two running jobs per
/// resource, a stateful redeploy restores the newest state) hold on every step.
#[test]
fn a_savepoint_upgrade_through_a_partition_with_the_real_reconcile_loop() {
    let run = upgrade_over_turmoil(9, Disturbance::PartitionDuringPoll);
    println!("{}", run.trace.join("\n"));
    assert!(run.violations.is_empty(), "{:?}", run.violations);
    let trace = run.trace.join("\n");
    let cut = trace
        .find("network: partition operator")
        .expect("the partition happened");
    let healed = trace.find("network: partition healed").unwrap();
    assert!(
        !trace[cut..healed].contains("server:"),
        "nothing crossed the partition: {}",
        &trace[cut..healed]
    );
    assert_eq!(
        count(&run.server, "POST", "/stop"),
        1,
        "one stop-with-savepoint"
    );
    assert_eq!(count(&run.server, "POST", "/savepoints"), 0);

    let w = lock(&run.world);
    let jobs: Vec<_> = w.jobs.iter().filter(|r| r.owner == OWNER).collect();
    assert_eq!(jobs.len(), 2, "the first job and the upgraded one");
    let savepoints: Vec<String> = w
        .state_log
        .iter()
        .filter(|s| s.owner == OWNER)
        .map(|s| s.path())
        .filter(|path| path.contains("/savepoint-"))
        .collect();
    assert_eq!(savepoints.len(), 1, "{savepoints:?}");
    assert_eq!(
        jobs[1].restored_from,
        flink_sim::flink::RestoredFrom::Savepoint(savepoints[0].clone())
    );
    assert_eq!(jobs[1].parallelism, 4);
    assert_eq!(w.running_instances(OWNER), 1);
    let status = &w
        .kube
        .get(&flink_sim::kube::key_of(
            "FlinkDeployment",
            "default",
            "app",
        ))
        .unwrap()["status"];
    assert_eq!(
        status["jobStatus"]["savepointInfo"]["lastSavepoint"]["location"],
        json!(savepoints[0])
    );
    let location = savepoints[0].to_string();
    drop(w);

    // Without the partition: the same savepoint, so the partition only delayed it.
    let calm = upgrade_over_turmoil(9, Disturbance::None);
    assert!(calm.violations.is_empty(), "{:?}", calm.violations);
    let w = lock(&calm.world);
    let last = w.newest_job(OWNER).unwrap();
    assert_eq!(
        last.restored_from,
        flink_sim::flink::RestoredFrom::Savepoint(location)
    );
    drop(w);

    // Same seed, same run.
    assert_eq!(
        run.trace,
        upgrade_over_turmoil(9, Disturbance::PartitionDuringPoll).trace
    );
}

/// Found by this harness: the upgrade's stop-with-savepoint reaches Flink but its answer is
/// lost. The operator used to send the stop again while the first was still running; the first
/// completed (savepoint taken, job FINISHED), the second failed, and the FINISHED job was
/// redeployed from its older checkpoint: the savepoint's state was lost. Now the lost stop is
/// marked in the status, the operator waits for the job to stop, and the savepoint the stop
/// took (read from the job's checkpoint statistics) is restored.
#[test]
fn a_lost_stop_answer_during_an_upgrade_loses_no_state() {
    let run = upgrade_over_turmoil(9, Disturbance::LoseStopAnswer);
    println!("{}", run.trace.join("\n"));
    assert_eq!(
        count(&run.server, "POST", "/stop"),
        1,
        "the stop is not sent again"
    );
    assert!(run.violations.is_empty(), "{:?}", run.violations);
}
