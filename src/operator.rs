//! `flink-operator run`: the in-cluster operator. Watches FlinkDeployments, FlinkSessionJobs
//! and the JobManager Deployments the operator made, feeds the changes to the same work
//! queue and reconcile functions the simulator drives, and reconciles what is due.
//!
//! Up to `kubernetes.operator.reconcile.parallelism` reconciles run at once, never two of one
//! resource (see [`InFlight`]). The watches are read on a thread of their own (see
//! `spawn_watch_thread`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use futures::FutureExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;
use tracing::Instrument;

use crate::adapters::artifacts::{credential_env, ObjectStoreFetcher};
use crate::adapters::cached::{CachedKube, StoreWriter, Stores};
use crate::adapters::flink_rest::FlinkRestClient;
use crate::adapters::kube::KubeClient;
use crate::adapters::metered::MeteredFlink;
use crate::artifacts::ArtifactSettings;
use crate::config::EffectiveConfig;
use crate::controller::{reconcile_once, InFlight, Scheduler, WatchFilter};
use crate::observability::{Health, Metrics};
use crate::ports::{Clock, SystemClock};
use crate::reconcile::Context;

/// How the operator is run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    /// The operator configuration (upstream keys).
    pub config: BTreeMap<String, String>,
    /// Reach every Flink cluster's REST API at this base URL instead of its Service (local
    /// runs against a single cluster).
    pub flink_url_override: Option<String>,
    /// This replica's name, for events.
    pub instance: Option<String>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served (`host:port`); none: not served.
    pub metrics_address: Option<String>,
    /// The validating webhook: address, certificate chain and key (PEM files).
    pub webhook: Option<WebhookOptions>,
    /// The namespace the operator runs in (for its Lease).
    pub own_namespace: String,
    /// The file `config` was read from, re-read when it changes (upstream's dynamic config).
    pub config_file: Option<String>,
}

#[derive(Debug, Clone)]
pub struct WebhookOptions {
    pub address: String,
    pub cert_file: String,
    pub key_file: String,
}

/// Upstream's leader-election keys: `kubernetes.operator.leader-election.enabled` (false),
/// `.lease-name` (required when enabled), `.lease-duration` (15s), `.renew-deadline` (10s),
/// `.retry-period` (2s). Returns the lease name and timing when enabled.
pub fn leader_election(
    config: &BTreeMap<String, String>,
) -> Result<Option<(String, crate::leader::Timing)>, String> {
    let key = |k: &str| format!("kubernetes.operator.leader-election.{k}");
    let get = |k: &str| {
        config
            .get(&key(k))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    if !get("enabled")
        .map(|v| v.eq_ignore_ascii_case("true"))
        .unwrap_or(false)
    {
        return Ok(None);
    }
    let name = get("lease-name").ok_or_else(|| {
        format!(
            "{} is required when leader election is enabled",
            key("lease-name")
        )
    })?;
    let mut timing = crate::leader::Timing::default();
    for (k, field) in [
        ("lease-duration", &mut timing.lease_duration),
        ("renew-deadline", &mut timing.renew_deadline),
        ("retry-period", &mut timing.retry_period),
    ] {
        if let Some(v) = get(k) {
            *field = crate::duration::parse_duration(v).map_err(|e| format!("{}: {e}", key(k)))?;
        }
    }
    if timing.renew_deadline >= timing.lease_duration
        || timing.retry_period >= timing.renew_deadline
    {
        return Err(format!(
            "leader election needs retry-period < renew-deadline < lease-duration ({}, {}, {})",
            crate::duration::format_duration(timing.retry_period),
            crate::duration::format_duration(timing.renew_deadline),
            crate::duration::format_duration(timing.lease_duration)
        ));
    }
    Ok(Some((name.to_string(), timing)))
}

/// `kubernetes.operator.dynamic.config.enabled` (default true).
fn dynamic_config(config: &BTreeMap<String, String>) -> bool {
    config
        .get("kubernetes.operator.dynamic.config.enabled")
        .map(|v| !v.trim().eq_ignore_ascii_case("false"))
        .unwrap_or(true)
}

/// `kubernetes.operator.dynamic.config.check.interval` (default 5 min), in ms.
fn reload_interval(config: &BTreeMap<String, String>) -> i64 {
    config
        .get("kubernetes.operator.dynamic.config.check.interval")
        .and_then(|v| crate::duration::parse_duration(v).ok())
        .unwrap_or(Duration::from_secs(300))
        .as_millis() as i64
}

/// `kubernetes.operator.watched.namespaces`, upstream's key: comma separated; empty or
/// `JOSDK_ALL_NAMESPACES` means all.
pub fn watched_namespaces(config: &BTreeMap<String, String>) -> Vec<String> {
    config
        .get("kubernetes.operator.watched.namespaces")
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty() && s != "JOSDK_ALL_NAMESPACES")
                .collect()
        })
        .unwrap_or_default()
}

fn flink_kind(kind: &str) -> ApiResource {
    let plural = if kind == "FlinkDeployment" {
        "flinkdeployments"
    } else {
        "flinksessionjobs"
    };
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("flink.apache.org", "v1beta1", kind),
        plural,
    )
}

/// One stream of (kind, change) for everything watched. Objects are read untyped, so a
/// resource that does not decode as our types (say, one without a spec) cannot stall the
/// watch; its reconcile reports the problem instead.
/// The watches, merged, with the stores of the Flink kinds they fill.
struct Watches {
    events: BoxStream<'static, (Source, ChangeOrError)>,
    count: usize,
    deployments: Stores,
    session_jobs: Stores,
}

fn changes(client: &Client, namespaces: &[String]) -> Watches {
    let mut streams = Vec::new();
    let (mut deployments, mut session_jobs) = (Stores::default(), Stores::default());
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().cloned().map(Some).collect()
    };
    for scope in scopes {
        for kind in ["FlinkDeployment", "FlinkSessionJob"] {
            let resource = flink_kind(kind);
            let api: Api<DynamicObject> = match &scope {
                Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
                None => Api::all_with(client.clone(), &resource),
            };
            let writer = StoreWriter::default();
            let stores = if kind == "FlinkDeployment" {
                &mut deployments
            } else {
                &mut session_jobs
            };
            stores.scopes.push((scope.clone(), writer.reader()));
            streams.push(watch(
                api,
                kind,
                streams.len(),
                watcher::Config::default(),
                Some(writer),
            ));
        }
        // The JobManager Deployments the operator made wake their FlinkDeployment.
        let jobmanagers = ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&());
        let api: Api<DynamicObject> = match &scope {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &jobmanagers),
            None => Api::all_with(client.clone(), &jobmanagers),
        };
        let config = watcher::Config::default().labels("type=flink-native-kubernetes");
        streams.push(watch(api, "Deployment", streams.len(), config, None));
    }
    Watches {
        count: streams.len(),
        events: stream::select_all(streams).boxed(),
        deployments,
        session_jobs,
    }
}

type ChangeOrError = Result<Event<DynamicObject>, watcher::Error>;

/// Which watch a change came from: the kind, and the stream's number (for readiness).
type Source = (String, usize);

fn watch(
    api: Api<DynamicObject>,
    kind: &'static str,
    index: usize,
    config: watcher::Config,
    store: Option<StoreWriter>,
) -> BoxStream<'static, (Source, ChangeOrError)> {
    // The watcher lists again by itself after 410 Gone; the backoff spaces out retries when
    // the API server is unreachable. The store is filled before each change is passed on.
    let raw = watcher::watcher(api, config);
    let stream = match store {
        Some(mut writer) => raw
            .inspect_ok(move |event| writer.apply(event))
            .default_backoff()
            .boxed(),
        None => raw.default_backoff().boxed(),
    };
    stream.map(move |e| ((kind.to_string(), index), e)).boxed()
}

/// What the watch thread tells the work loop.
enum WatchNews {
    /// Resources to reconcile because of one change, and those of them the user changed
    /// (their retry backoff starts over).
    Wake {
        keys: Vec<crate::controller::ObjectKey>,
        new_specs: Vec<crate::controller::ObjectKey>,
    },
    /// The watch with this number has listed its resources.
    Listed(usize),
    /// The watches ended (they do not by themselves).
    Ended,
}

/// Reads the watches on a thread of their own, as fast as the API server sends, whatever the
/// reconciles do: the stores are filled and the work loop is told what to reconcile.
///
/// Two reasons for the thread. Read between the reconciles' steps, the watches fell behind
/// while many reconciles ran (with 10,000 FlinkDeployments the operator's own status writes
/// came back a minute late, and a user's change would have waited as long). And every cached
/// object's text is made here, so it comes from this thread's allocator arena (glibc's malloc
/// and jemalloc both give a thread an arena of its own while threads are few), not from among
/// the reconciles' short-lived allocations, where it left the heap fragmented. The thread ends
/// when the work loop stops listening.
fn spawn_watch_thread(
    mut events: BoxStream<'static, (Source, ChangeOrError)>,
    metrics: Arc<Metrics>,
    news: tokio::sync::mpsc::UnboundedSender<WatchNews>,
) -> Result<std::thread::JoinHandle<()>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the watches' runtime: {e}"))?;
    let thread = std::thread::Builder::new()
        .name("watches".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut filter = WatchFilter::default();
                loop {
                    let item = tokio::select! {
                        item = events.next() => item,
                        _ = news.closed() => return,
                    };
                    let message = match item {
                        Some(((kind, index), Ok(event))) => {
                            if matches!(event, Event::InitDone) {
                                let _ = news.send(WatchNews::Listed(index));
                            }
                            let keys = on_event(&mut filter, &metrics, &kind, event);
                            let new_specs = filter.take_new_specs();
                            if keys.is_empty() && new_specs.is_empty() {
                                continue;
                            }
                            WatchNews::Wake { keys, new_specs }
                        }
                        Some(((kind, _), Err(e))) => {
                            tracing::warn!(kind, error = %e, "watch error; retrying");
                            continue;
                        }
                        None => WatchNews::Ended,
                    };
                    if news.send(message).is_err() {
                        return;
                    }
                }
            })
        })
        .map_err(|e| format!("cannot start the watches' thread: {e}"))?;
    Ok(thread)
}

/// The work queue's wake-ups from one watched change; the resources gauge follows it.
fn on_event(
    filter: &mut WatchFilter,
    metrics: &Metrics,
    kind: &str,
    event: Event<DynamicObject>,
) -> Vec<crate::controller::ObjectKey> {
    let (object, deleted) = match event {
        Event::Apply(o) | Event::InitApply(o) => (o, false),
        Event::Delete(o) => (o, true),
        Event::Init | Event::InitDone => return Vec::new(),
    };
    let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
    let name = object.metadata.name.as_deref().unwrap_or_default();
    if kind != "Deployment" {
        let state = object.data["status"]["lifecycleState"]
            .as_str()
            .filter(|_| !deleted);
        metrics.lifecycle(kind, namespace, name, state);
    }
    filter.on_change(kind, namespace, name, &watched_fields(&object), deleted)
}

/// The fields [`WatchFilter::on_change`] reads, as it reads them from a whole object: the
/// generation, the deletion mark, the owners and a session job's `deploymentName`. Built
/// instead of turning the whole object into JSON, which copied every spec and status (and the
/// managed fields) once per watch event, at start-up once per cached resource.
fn watched_fields(object: &DynamicObject) -> serde_json::Value {
    let m = &object.metadata;
    let mut metadata = serde_json::Map::new();
    if let Some(generation) = m.generation {
        metadata.insert("generation".into(), generation.into());
    }
    // Present or absent, as in the object: the filter asks whether the key is there.
    if let Some(at) = &m.deletion_timestamp {
        metadata.insert(
            "deletionTimestamp".into(),
            serde_json::to_value(at).unwrap_or_default(),
        );
    }
    if let Some(owners) = &m.owner_references {
        let owners = owners
            .iter()
            .map(|o| serde_json::json!({"kind": o.kind, "name": o.name}))
            .collect();
        metadata.insert("ownerReferences".into(), serde_json::Value::Array(owners));
    }
    let mut fields = serde_json::json!({ "metadata": metadata });
    if let Some(session) = object.data["spec"].get("deploymentName") {
        fields["spec"] = serde_json::json!({ "deploymentName": session });
    }
    fields
}

/// Runs until `shutdown` completes (or the watches end, which they do not by themselves).
pub async fn run(
    client: Client,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let artifacts = ArtifactSettings::from_operator_config(&options.config)?;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    if let Some(address) = &options.metrics_address {
        let (listener, local) = crate::observability::bind(address)
            .await
            .map_err(|e| format!("cannot serve metrics on {address}: {e}"))?;
        tracing::info!(%local, "serving /metrics, /healthz, /readyz");
        tokio::spawn(crate::observability::serve(
            listener,
            metrics.clone(),
            health.clone(),
        ));
    }
    if let Some(w) = &options.webhook {
        let tls = Arc::new(crate::webhook::TlsFiles::load(&w.cert_file, &w.key_file)?);
        let listener = tokio::net::TcpListener::bind(&w.address)
            .await
            .map_err(|e| format!("cannot serve the webhook on {}: {e}", w.address))?;
        let lookup: Arc<dyn crate::ports::KubeApi> =
            Arc::new(KubeClient::new(client.clone(), options.instance.clone()));
        tracing::info!(address = %w.address, "serving the validating webhook on /validate");
        tokio::spawn(crate::webhook::serve(listener, tls, lookup));
    }
    let watches = changes(&client, &options.namespaces);
    let kube = CachedKube::new(
        KubeClient::new(client.clone(), options.instance.clone()).with_metrics(metrics.clone()),
        watches.deployments.clone(),
        watches.session_jobs.clone(),
    );
    let timeout = EffectiveConfig::new(&options.config, &Default::default()).flink_client_timeout();
    let mut rest = FlinkRestClient::from_operator_config(&options.config, timeout)
        .map_err(|e| format!("{}: {e}", crate::adapters::flink_rest::REST_CA_FILE))?;
    if let Some(url) = &options.flink_url_override {
        rest = rest.with_url_override(url.clone());
    }
    let rest = MeteredFlink {
        inner: rest,
        metrics: metrics.clone(),
    };
    let fetcher = ObjectStoreFetcher::new(artifacts, credential_env());
    let clock = SystemClock;
    // Shared with the reconciles in flight; a reload replaces it for the ones that start after.
    let mut config = Arc::new(options.config.clone());
    let mut reload_at = clock.now_millis() + reload_interval(&config);
    let mut elector = match leader_election(&options.config)? {
        Some((lease, timing)) => {
            let identity = options
                .instance
                .clone()
                .unwrap_or_else(|| format!("flink-operator-{}", std::process::id()));
            Some(crate::leader::LeaderElector::new(
                client.clone(),
                &options.own_namespace,
                &lease,
                &identity,
                timing,
            ))
        }
        None => None,
    };
    let mut elect_at = 0i64;
    let mut scheduler = Scheduler::default();
    let streams = watches.count;
    let (news_tx, mut news) = tokio::sync::mpsc::unbounded_channel();
    // Not joined: the thread ends by itself once `news` is dropped, when this returns.
    spawn_watch_thread(watches.events, metrics.clone(), news_tx)?;
    // Ready once every watch has listed its resources.
    let mut listed = std::collections::BTreeSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let (kube, rest, fetcher, clock) = (&kube, &rest, &fetcher, &clock);
    let mut in_flight = InFlight::default();
    let mut limit = parallelism(&config);
    tracing::info!(namespaces = ?options.namespaces, "operator started");
    loop {
        let now = clock.now_millis();
        health.turned(now);
        if now >= reload_at {
            reload_at = now + reload_interval(&config);
            if let Some(file) = options
                .config_file
                .as_deref()
                .filter(|_| dynamic_config(&config))
            {
                match read_config(file) {
                    Ok(new) if new != *config => {
                        tracing::info!(
                            file,
                            "operator configuration changed; using it from now on"
                        );
                        config = Arc::new(new);
                        limit = parallelism(&config);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "operator configuration not reloaded"),
                }
            }
        }
        if let Some(e) = elector.as_mut() {
            if now >= elect_at {
                if let Err(err) = e.try_acquire_or_renew(now).await {
                    tracing::warn!(error = %err, "leader election");
                }
                elect_at = now + e.retry_period().as_millis() as i64;
            }
        }
        let leading = elector
            .as_ref()
            .map(|e| e.is_leader(clock.now_millis()))
            .unwrap_or(true);
        // Nothing is reconciled before every watch has listed its resources, as upstream's
        // informers must sync first: a reconcile reads other resources from the caches (a
        // session job its session cluster), and a list not interleaved with reconciles ends
        // sooner (a slow one outlives the API server's watch window and is listed again).
        let working = leading && listed.len() == streams;
        // A replica without the lease keeps its watches warm but starts nothing (and keeps what
        // is due: popping a key takes it out of the queue); reconciles already running end.
        if working {
            in_flight.start_due(&mut scheduler, now, limit, |key| {
                let config = config.clone();
                let span = tracing::info_span!("reconcile", kind = key.kind.as_str(), namespace = %key.namespace, name = %key.name);
                async move {
                    let started = clock.now_millis();
                    let start = Instant::now();
                    let ctx = Context {
                        kube,
                        flink: rest,
                        artifacts: fetcher,
                        clock,
                        operator_config: &config,
                    };
                    let result = reconcile_once(&ctx, &key).instrument(span).await;
                    (key, (started, start.elapsed(), result, config))
                }
                .boxed_local()
            });
        }
        // The first of: the next reconcile due (when one may start), the lease's next renewal.
        // Otherwise news from the watches or a reconcile's end wakes the loop.
        let next_wake = [
            (working && in_flight.has_room(limit))
                .then(|| scheduler.next_due())
                .flatten(),
            elector.is_some().then_some(elect_at),
        ]
        .into_iter()
        .flatten()
        .min();
        let idle = next_wake
            .map(|due| (due - clock.now_millis()).max(0) as u64)
            .unwrap_or(60_000);
        tokio::select! {
            Some((key, (started, elapsed, result, used))) = in_flight.next(), if !in_flight.is_empty() => {
                metrics.reconciled(key.kind.as_str(), result.is_ok(), elapsed);
                if let Err(e) = scheduler.reconciled(&key, started, result, &used) {
                    tracing::warn!(kind = key.kind.as_str(), namespace = %key.namespace, name = %key.name, error = %e, "reconcile failed; retrying with backoff");
                }
                in_flight.ended(&key, &mut scheduler, clock.now_millis());
            }
            first = news.recv() => {
                let Some(first) = first else {
                    return Err("the watches' thread ended".into());
                };
                // Everything the watches have told, at once.
                let mut next = Some(first);
                while let Some(message) = next.take().or_else(|| news.try_recv().ok()) {
                    match message {
                        WatchNews::Wake { keys, new_specs } => {
                            let now = clock.now_millis();
                            for key in keys {
                                scheduler.notify(key, now);
                            }
                            for key in new_specs {
                                scheduler.restart_backoff(&key);
                            }
                        }
                        WatchNews::Listed(index) => {
                            if listed.insert(index) && listed.len() == streams {
                                health.set_synced();
                            }
                        }
                        WatchNews::Ended => return Err("the watches ended".into()),
                    }
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(idle)) => {}
            _ = &mut shutdown => {
                tracing::info!(reconciles_running = in_flight.len(), "shutting down");
                // What runs ends first (each reconcile's calls have their own timeouts), before
                // the lease goes: another replica must not start on a resource this one is
                // still changing.
                let finish = async {
                    while let Some((key, (started, _, result, used))) = in_flight.next().await {
                        let _ = scheduler.reconciled(&key, started, result, &used);
                    }
                };
                if tokio::time::timeout(Duration::from_secs(60), finish).await.is_err() {
                    tracing::warn!("reconciles still running after 60 s were abandoned");
                }
                if let Some(e) = elector.as_mut() {
                    e.release().await;
                }
                return Ok(());
            }
        }
    }
}

/// `kubernetes.operator.reconcile.parallelism` of the operator's configuration.
fn parallelism(config: &BTreeMap<String, String>) -> usize {
    EffectiveConfig::new(config, &Default::default()).reconcile_parallelism()
}

/// Reads an operator configuration file: a YAML map of keys to scalars (upstream's
/// `config.yaml` / `flink-conf.yaml` form, flat keys). Nested maps are joined with dots.
pub fn read_config(path: &str) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let value: serde_json::Value =
        serde_saphyr::from_str(&text).map_err(|e| crate::validation::yaml_error(path, &e))?;
    let mut out = BTreeMap::new();
    flatten("", &value, &mut out).map_err(|e| format!("{path}: {e}"))?;
    Ok(out)
}

fn flatten(
    prefix: &str,
    value: &serde_json::Value,
    out: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    use serde_json::Value;
    match value {
        Value::Null if prefix.is_empty() => Ok(()),
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out)?;
            }
            Ok(())
        }
        Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
            Ok(())
        }
        Value::Number(_) | Value::Bool(_) => {
            out.insert(prefix.to_string(), value.to_string());
            Ok(())
        }
        _ if prefix.is_empty() => Err("the configuration must be a map of keys to values".into()),
        _ => Err(format!(
            "{prefix}: a value must be text, a number or a boolean"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{Kind, ObjectKey};

    fn deployment(name: &str, generation: i64) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "metadata": {"name": name, "namespace": "default", "generation": generation,
                "resourceVersion": generation.to_string()},
            "spec": {"flinkVersion": "v2_3"}
        }))
        .unwrap()
    }

    /// The filter gives the same wake-ups from the fields picked for it as from the whole
    /// object, for each thing it reads (a test of the picking: a field it missed would change
    /// the answer for one of these events).
    #[test]
    fn the_watch_filter_reads_the_same_from_the_picked_fields_as_from_the_object() {
        let objects = [
            (
                "FlinkDeployment",
                serde_json::json!({
                "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
                "metadata": {"name": "a", "namespace": "ns", "generation": 3,
                    "managedFields": [{"manager": "kubectl"}]},
                "spec": {"flinkVersion": "v2_3", "job": {"jarURI": "local:///x.jar"}},
                "status": {"lifecycleState": "STABLE"}}),
            ),
            (
                "FlinkDeployment",
                serde_json::json!({
                "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
                "metadata": {"name": "a", "namespace": "ns", "generation": 4},
                "spec": {"flinkVersion": "v2_3"}}),
            ),
            (
                "FlinkDeployment",
                serde_json::json!({
                "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
                "metadata": {"name": "a", "namespace": "ns", "generation": 4,
                    "deletionTimestamp": "2026-11-30T00:00:00Z", "finalizers": ["f"]},
                "spec": {"flinkVersion": "v2_3"}}),
            ),
            (
                "FlinkSessionJob",
                serde_json::json!({
                "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkSessionJob",
                "metadata": {"name": "j", "namespace": "ns", "generation": 1},
                "spec": {"deploymentName": "session", "job": {"jarURI": "local:///x.jar"}}}),
            ),
            (
                "Deployment",
                serde_json::json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "a", "namespace": "ns", "generation": 7,
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "Other", "name": "x", "uid": "1"},
                        {"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
                         "name": "a", "uid": "2", "controller": true}]},
                "spec": {"replicas": 1}}),
            ),
        ];
        let (mut whole, mut picked) = (WatchFilter::default(), WatchFilter::default());
        for deleted in [false, true] {
            for (kind, json) in &objects {
                let object: DynamicObject = serde_json::from_value(json.clone()).unwrap();
                let fields = watched_fields(&object);
                let from_whole = whole.on_change(kind, "ns", "n", json, deleted);
                let from_picked = picked.on_change(kind, "ns", "n", &fields, deleted);
                assert_eq!(from_picked, from_whole, "{kind} {json}");
                assert_eq!(picked.take_new_specs(), whole.take_new_specs(), "{kind}");
                assert!(!from_whole.is_empty(), "{kind} wakes something up");
            }
        }
    }

    #[test]
    fn the_watches_fill_the_store_while_the_work_loop_is_busy_and_stop_when_it_stops() {
        let mut writer = StoreWriter::default();
        let store = writer.reader();
        let mut events = vec![Event::Init];
        events.extend((0..100).map(|i| Event::InitApply(deployment(&format!("fd-{i}"), 1))));
        events.push(Event::InitDone);
        events.push(Event::Apply(deployment("fd-7", 2)));
        let source = || ("FlinkDeployment".to_string(), 0);
        // As `watch` makes them: the store is filled before the change is passed on; then the
        // watch stays open.
        let stream = stream::iter(events)
            .inspect(move |event| writer.apply(event))
            .map(move |event| (source(), Ok(event)))
            .chain(stream::pending())
            .boxed();
        let (tx, mut news) = tokio::sync::mpsc::unbounded_channel();
        let thread = spawn_watch_thread(stream, Arc::new(Metrics::new()), tx).unwrap();

        // Nothing reads the news yet (the work loop is busy): the store fills all the same.
        let waited = std::time::Instant::now();
        while !store
            .get("default", "fd-7")
            .is_some_and(|t| t.contains("\"generation\":2"))
        {
            assert!(
                waited.elapsed() < Duration::from_secs(30),
                "the store was not filled"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(store.len(), 100);

        let key = |name: &str| ObjectKey {
            kind: Kind::FlinkDeployment,
            namespace: "default".into(),
            name: name.into(),
        };
        let (mut woken, mut changed, mut listed) = (Vec::new(), Vec::new(), Vec::new());
        while let Ok(message) = news.try_recv() {
            match message {
                WatchNews::Wake { keys, new_specs } => {
                    woken.extend(keys);
                    changed.extend(new_specs);
                }
                WatchNews::Listed(index) => listed.push(index),
                WatchNews::Ended => panic!("the watch has not ended"),
            }
        }
        assert_eq!(woken.len(), 101, "each listed once, and fd-7 again");
        assert_eq!(woken.last(), Some(&key("fd-7")));
        assert_eq!(
            changed,
            vec![key("fd-7")],
            "a new generation: the user's change"
        );
        assert_eq!(listed, vec![0]);

        // The work loop stops listening: the thread ends, though its watch is still open.
        drop(news);
        thread.join().unwrap();
    }

    #[test]
    fn configuration_files_are_flat_maps_of_text() {
        let dir =
            std::env::temp_dir().join(format!("flink-operator-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.yaml");
        std::fs::write(
            &file,
            "kubernetes.operator.reconcile.interval: 30s\nkubernetes:\n  operator:\n    job.restart.failed: true\nrest.port: 8081\n",
        )
        .unwrap();
        let conf = read_config(file.to_str().unwrap()).unwrap();
        assert_eq!(conf["kubernetes.operator.reconcile.interval"], "30s");
        assert_eq!(conf["kubernetes.operator.job.restart.failed"], "true");
        assert_eq!(conf["rest.port"], "8081");
        std::fs::write(&file, "a: [1, 2]\n").unwrap();
        let err = read_config(file.to_str().unwrap()).unwrap_err();
        assert!(err.contains("a: a value must be"), "{err}");
    }

    #[test]
    fn leader_election_is_configured_with_upstream_keys() {
        let mut conf = BTreeMap::new();
        assert_eq!(leader_election(&conf), Ok(None));
        conf.insert(
            "kubernetes.operator.leader-election.enabled".into(),
            "true".into(),
        );
        let err = leader_election(&conf).unwrap_err();
        assert!(err.contains("lease-name is required"), "{err}");
        conf.insert(
            "kubernetes.operator.leader-election.lease-name".into(),
            "flink-operator-lease".into(),
        );
        let (name, timing) = leader_election(&conf).unwrap().unwrap();
        assert_eq!(name, "flink-operator-lease");
        assert_eq!(timing, crate::leader::Timing::default());
        conf.insert(
            "kubernetes.operator.leader-election.renew-deadline".into(),
            "20s".into(),
        );
        let err = leader_election(&conf).unwrap_err();
        assert!(
            err.contains("retry-period < renew-deadline < lease-duration"),
            "{err}"
        );
    }

    #[test]
    fn watched_namespaces_follow_upstream_key() {
        let mut conf = BTreeMap::new();
        assert!(watched_namespaces(&conf).is_empty());
        conf.insert(
            "kubernetes.operator.watched.namespaces".into(),
            "team-a, team-b".into(),
        );
        assert_eq!(watched_namespaces(&conf), ["team-a", "team-b"]);
    }
}
