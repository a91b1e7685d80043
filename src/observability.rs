//! What the running operator tells about itself: Prometheus metrics on `/metrics`, and
//! `/healthz` (the work loop is turning) and `/readyz` (every watch has listed once) for the
//! kubelet's probes. One small HTTP server serves all three.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn seconds_histogram() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The operator's metrics. Cheap to update from any task.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<Labels, Counter>,
    reconcile_seconds: Family<Labels, Histogram>,
    resources: Family<Labels, Gauge>,
    flink_requests: Family<Labels, Counter>,
    flink_seconds: Family<Labels, Histogram>,
    events: Family<Labels, Counter>,
    /// Last lifecycle state seen per resource, to move the resources gauge.
    states: Mutex<BTreeMap<(String, String, String), String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("flink_operator");
        let reconciles = Family::<Labels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by resource kind and outcome (ok, error)",
            reconciles.clone(),
        );
        let reconcile_seconds =
            Family::<Labels, Histogram>::new_with_constructor(seconds_histogram as fn() -> _);
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took, by resource kind",
            reconcile_seconds.clone(),
        );
        let resources = Family::<Labels, Gauge>::default();
        registry.register(
            "resources",
            "Resources by kind and status.lifecycleState",
            resources.clone(),
        );
        let flink_requests = Family::<Labels, Counter>::default();
        registry.register(
            "flink_rest_requests",
            "Flink REST API calls by call and outcome (ok, error)",
            flink_requests.clone(),
        );
        let flink_seconds =
            Family::<Labels, Histogram>::new_with_constructor(seconds_histogram as fn() -> _);
        registry.register(
            "flink_rest_duration_seconds",
            "Flink REST API call latency, by call",
            flink_seconds.clone(),
        );
        let events = Family::<Labels, Counter>::default();
        registry.register(
            "events",
            "Kubernetes events the operator emitted, by kind, type and reason: savepoint, upgrade, rollback and failure outcomes",
            events.clone(),
        );
        Metrics {
            registry,
            reconciles,
            reconcile_seconds,
            resources,
            flink_requests,
            flink_seconds,
            events,
            states: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn reconciled(&self, kind: &str, ok: bool, took: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.reconciles
            .get_or_create(&labels(&[("kind", kind), ("outcome", outcome)]))
            .inc();
        self.reconcile_seconds
            .get_or_create(&labels(&[("kind", kind)]))
            .observe(took.as_secs_f64());
    }

    pub fn flink_call(&self, call: &str, ok: bool, took: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.flink_requests
            .get_or_create(&labels(&[("call", call), ("outcome", outcome)]))
            .inc();
        self.flink_seconds
            .get_or_create(&labels(&[("call", call)]))
            .observe(took.as_secs_f64());
    }

    pub fn event(&self, kind: &str, event_type: &str, reason: &str) {
        self.events
            .get_or_create(&labels(&[
                ("kind", kind),
                ("type", event_type),
                ("reason", reason),
            ]))
            .inc();
    }

    /// A resource's lifecycle state as last seen (None: it is gone).
    pub fn lifecycle(&self, kind: &str, namespace: &str, name: &str, state: Option<&str>) {
        let key = (kind.to_string(), namespace.to_string(), name.to_string());
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let gauge = |state: &str| {
            self.resources
                .get_or_create(&labels(&[("kind", kind), ("state", state)]))
                .clone()
        };
        let old = match state {
            Some(s) => states.insert(key, s.to_string()),
            None => states.remove(&key),
        };
        if old.as_deref() == state {
            return;
        }
        if let Some(old) = old {
            gauge(&old).dec();
        }
        if let Some(new) = state {
            gauge(new).inc();
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// What the probes look at.
#[derive(Default)]
pub struct Health {
    /// When the work loop last turned (epoch ms).
    last_turn_ms: AtomicI64,
    /// Every watch has listed its resources once.
    synced: AtomicBool,
}

/// The loop wakes at least once a minute; three missed turns mean it is stuck.
const STUCK_AFTER_MS: i64 = 180_000;

impl Health {
    pub fn turned(&self, now_ms: i64) {
        self.last_turn_ms.store(now_ms, Ordering::Relaxed);
    }
    pub fn set_synced(&self) {
        self.synced.store(true, Ordering::Relaxed);
    }
    pub fn live(&self, now_ms: i64) -> bool {
        let last = self.last_turn_ms.load(Ordering::Relaxed);
        last > 0 && now_ms - last < STUCK_AFTER_MS
    }
    pub fn ready(&self, now_ms: i64) -> bool {
        self.live(now_ms) && self.synced.load(Ordering::Relaxed)
    }
}

fn now_ms() -> i64 {
    use crate::ports::Clock;
    crate::ports::SystemClock.now_millis()
}

/// Serves `/metrics`, `/healthz` and `/readyz` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let metrics = metrics.clone();
        let health = health.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let answer = answer(request.uri().path(), &metrics, &health);
                async move { Ok::<_, Infallible>(answer) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(path: &str, metrics: &Metrics, health: &Health) -> Response<Full<Bytes>> {
    let now = now_ms();
    let (status, content_type, body) = match path {
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        "/healthz" if health.live(now) => (StatusCode::OK, "text/plain", "ok\n".into()),
        "/healthz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "the work loop has not turned for 3 minutes\n".into(),
        ),
        "/readyz" if health.ready(now) => (StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready: the watches have not listed every resource yet\n".into(),
        ),
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

/// Binds the server's address (`host:port`).
pub async fn bind(address: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(address).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resources_gauge_follows_lifecycle_changes() {
        let m = Metrics::new();
        m.lifecycle("FlinkDeployment", "ns", "a", Some("DEPLOYED"));
        m.lifecycle("FlinkDeployment", "ns", "b", Some("DEPLOYED"));
        m.lifecycle("FlinkDeployment", "ns", "a", Some("STABLE"));
        m.lifecycle("FlinkDeployment", "ns", "b", None);
        let text = m.render();
        assert!(
            text.contains(r#"flink_operator_resources{kind="FlinkDeployment",state="STABLE"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"flink_operator_resources{kind="FlinkDeployment",state="DEPLOYED"} 0"#),
            "{text}"
        );
    }

    #[test]
    fn health_needs_a_recent_turn_and_readiness_a_full_list() {
        let h = Health::default();
        assert!(!h.live(1_000));
        h.turned(1_000);
        assert!(h.live(2_000));
        assert!(!h.ready(2_000));
        h.set_synced();
        assert!(h.ready(2_000));
        assert!(!h.live(1_000 + STUCK_AFTER_MS));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn metrics_and_probes_are_served_over_http() {
        let metrics = Arc::new(Metrics::new());
        metrics.reconciled("FlinkDeployment", true, Duration::from_millis(3));
        metrics.reconciled("FlinkDeployment", false, Duration::from_millis(5));
        metrics.event("FlinkDeployment", "Warning", "SavepointError");
        let health = Arc::new(Health::default());
        let (listener, address) = bind("127.0.0.1:0").await.unwrap();
        tokio::spawn(serve(listener, metrics.clone(), health.clone()));
        let get = |path: &str| {
            let url = format!("http://{address}{path}");
            async move {
                tokio::task::spawn_blocking(move || {
                    let out = std::process::Command::new("curl")
                        .args(["-s", "-w", "\n%{http_code}", &url])
                        .output()
                        .expect("curl runs");
                    String::from_utf8_lossy(&out.stdout).to_string()
                })
                .await
                .unwrap()
            }
        };
        let scraped = get("/metrics").await;
        assert!(scraped.ends_with("200"), "{scraped}");
        for line in [
            r#"flink_operator_reconciles_total{kind="FlinkDeployment",outcome="ok"} 1"#,
            r#"flink_operator_reconciles_total{kind="FlinkDeployment",outcome="error"} 1"#,
            r#"flink_operator_reconcile_duration_seconds_count{kind="FlinkDeployment"} 2"#,
            r#"flink_operator_events_total{kind="FlinkDeployment",type="Warning",reason="SavepointError"} 1"#,
        ] {
            assert!(scraped.contains(line), "missing {line} in\n{scraped}");
        }
        assert!(get("/healthz").await.ends_with("503"), "no turn yet");
        health.turned(now_ms());
        assert!(get("/healthz").await.ends_with("200"));
        assert!(get("/readyz").await.ends_with("503"), "not listed yet");
        health.set_synced();
        assert!(get("/readyz").await.ends_with("200"));
        assert!(get("/nothing").await.ends_with("404"));
    }
}
