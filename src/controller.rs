//! The controller loop's bookkeeping: which resource to reconcile when. Deterministic (ordered
//! maps, time from the caller), so the simulator runs this very code in virtual time and
//! production drives it from a tokio timer and kube watches.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::config::EffectiveConfig;
use crate::reconcile::{self, Context, ReconcileError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    FlinkDeployment,
    FlinkSessionJob,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::FlinkDeployment => "FlinkDeployment",
            Kind::FlinkSessionJob => "FlinkSessionJob",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

/// Counters for benchmarks and metrics; plain numbers, no global state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub reconciles: u64,
    pub errors: u64,
}

/// The work queue: one due time per resource, and a failure count for backoff.
#[derive(Debug, Default)]
pub struct Scheduler {
    /// Point lookups only, never iterated (so hashed: an ordered map of string keys costs a
    /// dozen comparisons per lookup at 10,000 resources).
    /// Each key is one allocation shared by both: an entry of the ordered queue is two words
    /// instead of eight, and rescheduling copies no key.
    due: HashMap<Arc<ObjectKey>, i64>,
    /// The same entries ordered by (due time, key): the next one is the first.
    queue: BTreeSet<(i64, Arc<ObjectKey>)>,
    failures: HashMap<ObjectKey, u32>,
    pub counters: Counters,
}

impl Scheduler {
    /// Something changed: reconcile as soon as possible.
    pub fn notify(&mut self, key: ObjectKey, now: i64) {
        match self.due.get(&key).copied() {
            Some(at) if at <= now => {}
            _ => self.schedule(key, now),
        }
    }

    /// Reconcile at `at`, unless something brings it forward.
    pub fn schedule(&mut self, key: ObjectKey, at: i64) {
        let shared = match self.due.remove_entry(&key) {
            Some((shared, old)) => {
                self.queue.remove(&(old, shared.clone()));
                shared
            }
            None => Arc::new(key),
        };
        self.due.insert(shared.clone(), at);
        self.queue.insert((at, shared));
    }

    pub fn forget(&mut self, key: &ObjectKey) {
        if let Some((shared, at)) = self.due.remove_entry(key) {
            self.queue.remove(&(at, shared));
        }
        self.failures.remove(key);
    }

    pub fn next_due(&self) -> Option<i64> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// The resource due first (ties broken by key order), if any is due by `now`.
    pub fn pop_due(&mut self, now: i64) -> Option<ObjectKey> {
        if self.queue.first()?.0 > now {
            return None;
        }
        let (_, key) = self.queue.pop_first()?;
        self.due.remove(&*key);
        // The queue and the map held the only two references: no copy.
        Some(Arc::try_unwrap(key).unwrap_or_else(|shared| (*shared).clone()))
    }

    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }

    /// Whether the resource has a reconcile coming.
    pub fn is_scheduled(&self, key: &ObjectKey) -> bool {
        self.due.contains_key(key)
    }

    /// Retry after an error: `kubernetes.operator.retry.*`, exponential; after the last
    /// attempt, fall back to the reconcile interval so nothing is left behind for good.
    pub fn backoff(&mut self, key: &ObjectKey, conf: &EffectiveConfig) -> Duration {
        let n = self.failures.entry(key.clone()).or_insert(0);
        *n += 1;
        if *n > conf.retry_max_attempts() {
            return conf.reconcile_interval();
        }
        let factor = conf.retry_interval_multiplier().powi(*n as i32 - 1);
        Duration::from_millis((conf.retry_initial_interval().as_millis() as f64 * factor) as u64)
    }

    pub fn succeeded(&mut self, key: &ObjectKey) {
        self.failures.remove(key);
    }

    /// The user changed the spec: a failing resource starts its backoff over. The change may
    /// be the fix, and a transient error after it should not wait as long as the errors
    /// before it did (the backoff grows past a quarter hour).
    pub fn restart_backoff(&mut self, key: &ObjectKey) {
        self.failures.remove(key);
    }

    /// A reconcile of `key` that started at `started` (ms) ended: due again after its requeue
    /// interval, forgotten when the resource is gone, or retried with backoff after an error.
    pub fn reconciled(
        &mut self,
        key: &ObjectKey,
        started: i64,
        result: Result<Option<reconcile::Requeue>, ReconcileError>,
        operator_config: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), ReconcileError> {
        self.counters.reconciles += 1;
        match result {
            Ok(Some(requeue)) => {
                self.succeeded(key);
                self.schedule(key.clone(), started + requeue.0.as_millis() as i64);
                Ok(())
            }
            Ok(None) => {
                self.forget(key);
                Ok(())
            }
            Err(e) => {
                self.counters.errors += 1;
                let conf = EffectiveConfig::new(operator_config, &Default::default());
                let delay = self.backoff(key, &conf);
                self.schedule(key.clone(), started + delay.as_millis() as i64);
                Err(e)
            }
        }
    }
}

/// Which resource a watched change concerns, if any is worth a reconcile. Generation-aware as
/// upstream: a FlinkDeployment's status-only writes (the operator's own) are not news, its
/// deletion mark is news once; a JobManager Deployment's changes wake its FlinkDeployment;
/// a FlinkSessionJob's changes wake the session cluster it names.
#[derive(Debug, Default)]
pub struct WatchFilter {
    /// Hashed: looked up per watched change, never listed.
    seen: HashMap<(String, String, String), (i64, bool)>,
    /// Resources whose generation or deletion mark changed since last seen (see
    /// `take_new_specs`).
    new_specs: Vec<ObjectKey>,
}

impl WatchFilter {
    /// The resources to reconcile because of this change (none, one or two). The production
    /// watches pass only the fields `operator::watched_fields` picks: a field read here that it
    /// does not pick is missing there.
    pub fn on_change(
        &mut self,
        kind: &str,
        namespace: &str,
        name: &str,
        object: &serde_json::Value,
        deleted: bool,
    ) -> Vec<ObjectKey> {
        let key = |kind: Kind, name: &str| ObjectKey {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        match kind {
            "FlinkDeployment" | "FlinkSessionJob" => {
                let own = if kind == "FlinkDeployment" {
                    Kind::FlinkDeployment
                } else {
                    Kind::FlinkSessionJob
                };
                let mut out = Vec::new();
                let generation = object["metadata"]["generation"].as_i64().unwrap_or(0);
                let marked = object["metadata"].get("deletionTimestamp").is_some();
                let id = (kind.to_string(), namespace.to_string(), name.to_string());
                let news = if deleted {
                    self.seen.remove(&id);
                    true
                } else {
                    let before = self.seen.insert(id, (generation, marked));
                    if before.map(|b| b != (generation, marked)).unwrap_or(false) {
                        self.new_specs.push(key(own, name));
                    }
                    before != Some((generation, marked))
                };
                if news {
                    out.push(key(own, name));
                }
                // A session job coming or going matters to its session cluster (deletion waits on it).
                if own == Kind::FlinkSessionJob && (news || deleted) {
                    if let Some(session) = object["spec"]["deploymentName"].as_str() {
                        out.push(key(Kind::FlinkDeployment, session));
                    }
                }
                out
            }
            "Deployment" => object["metadata"]["ownerReferences"]
                .as_array()
                .and_then(|refs| refs.iter().find(|r| r["kind"] == "FlinkDeployment"))
                .and_then(|r| r["name"].as_str())
                .map(|n| vec![key(Kind::FlinkDeployment, n)])
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// The resources the user changed (a new generation, or marked for deletion) in the
    /// changes seen since the last call; not the first sight of one (after a restart every
    /// resource is new).
    pub fn take_new_specs(&mut self) -> Vec<ObjectKey> {
        std::mem::take(&mut self.new_specs)
    }

    /// Forget everything, as a restarted process does.
    pub fn reset(&mut self) {
        self.seen.clear();
        self.new_specs.clear();
    }
}

/// Reconciles one resource and schedules its next look. Returns the error, if any, for
/// logging; the retry is already scheduled.
pub async fn reconcile_key(
    ctx: &Context<'_>,
    scheduler: &mut Scheduler,
    key: &ObjectKey,
) -> Result<(), ReconcileError> {
    let started = ctx.clock.now_millis();
    let result = reconcile_once(ctx, key).await;
    scheduler.reconciled(key, started, result, ctx.operator_config)
}

/// One reconcile of `key`, without the work queue's bookkeeping ([`Scheduler::reconciled`]
/// does that when it ends): the in-cluster operator runs several of these at once.
pub async fn reconcile_once(
    ctx: &Context<'_>,
    key: &ObjectKey,
) -> Result<Option<reconcile::Requeue>, ReconcileError> {
    match key.kind {
        Kind::FlinkDeployment => {
            reconcile::deployment::reconcile(ctx, &key.namespace, &key.name).await
        }
        Kind::FlinkSessionJob => {
            reconcile::session_job::reconcile(ctx, &key.namespace, &key.name).await
        }
    }
}

/// The reconciles in flight of a loop that runs several at once (the in-cluster operator, up to
/// `kubernetes.operator.reconcile.parallelism`): a JobManager that answers slowly, or not until
/// the REST client's timeout, holds up its own resource's reconcile and no other. Never two
/// reconciles of one resource at once: one that falls due while its last reconcile runs waits
/// for it, and then runs at once.
pub struct InFlight<F> {
    running: BTreeSet<ObjectKey>,
    again: BTreeSet<ObjectKey>,
    futures: futures::stream::FuturesUnordered<F>,
}

impl<F> Default for InFlight<F> {
    fn default() -> Self {
        InFlight {
            running: BTreeSet::new(),
            again: BTreeSet::new(),
            futures: futures::stream::FuturesUnordered::new(),
        }
    }
}

impl<F: std::future::Future<Output = (ObjectKey, O)>, O> InFlight<F> {
    /// Starts the reconciles that are due at `now`, while fewer than `limit` run.
    pub fn start_due(
        &mut self,
        scheduler: &mut Scheduler,
        now: i64,
        limit: usize,
        mut start: impl FnMut(ObjectKey) -> F,
    ) {
        while self.running.len() < limit {
            let Some(key) = scheduler.pop_due(now) else {
                return;
            };
            if self.running.contains(&key) {
                self.again.insert(key);
                continue;
            }
            self.running.insert(key.clone());
            self.futures.push(start(key));
        }
    }

    /// Whether another reconcile may start (the loop need not wake for what is due otherwise).
    pub fn has_room(&self, limit: usize) -> bool {
        self.running.len() < limit
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// The next reconcile to end, with what it returned; None when none runs. Its bookkeeping is
    /// the caller's ([`Scheduler::reconciled`]), then [`InFlight::ended`].
    pub async fn next(&mut self) -> Option<(ObjectKey, O)> {
        use futures::StreamExt;
        self.futures.next().await
    }

    /// `key`'s reconcile ended and its bookkeeping is done: it may run again, and runs at
    /// `now` if it fell due meanwhile.
    pub fn ended(&mut self, key: &ObjectKey, scheduler: &mut Scheduler, now: i64) {
        self.running.remove(key);
        if self.again.remove(key) {
            scheduler.notify(key.clone(), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ObjectKey {
        ObjectKey {
            kind: Kind::FlinkDeployment,
            namespace: "default".into(),
            name: name.into(),
        }
    }

    #[tokio::test]
    async fn a_hung_reconcile_holds_up_no_other_and_no_resource_runs_twice_at_once() {
        use futures::future::{FutureExt, LocalBoxFuture};
        let mut scheduler = Scheduler::default();
        for name in ["a", "b", "c"] {
            scheduler.schedule(key(name), 0);
        }
        let (release_a, a_released) = futures::channel::oneshot::channel::<()>();
        let mut a_released = Some(a_released);
        let mut started: Vec<String> = Vec::new();
        // `a`'s JobManager does not answer until released; the others answer at once.
        let mut start = |k: ObjectKey| -> LocalBoxFuture<'static, (ObjectKey, ())> {
            started.push(k.name.clone());
            match (k.name.as_str(), a_released.take()) {
                ("a", Some(released)) => async move {
                    let _ = released.await;
                    (k, ())
                }
                .boxed_local(),
                _ => async move { (k, ()) }.boxed_local(),
            }
        };
        let mut in_flight = InFlight::default();
        in_flight.start_due(&mut scheduler, 0, 2, &mut start);
        assert_eq!(in_flight.len(), 2, "a and b start, c waits for room");
        let (done, ()) = in_flight.next().await.unwrap();
        assert_eq!(done.name, "b", "b ends while a hangs");
        in_flight.ended(&done, &mut scheduler, 0);
        in_flight.start_due(&mut scheduler, 0, 2, &mut start);
        let (done, ()) = in_flight.next().await.unwrap();
        assert_eq!(done.name, "c");
        in_flight.ended(&done, &mut scheduler, 0);
        // A watch event makes a due while its reconcile still runs: it waits for it.
        scheduler.notify(key("a"), 0);
        in_flight.start_due(&mut scheduler, 0, 2, &mut start);
        assert_eq!(in_flight.len(), 1);
        assert_eq!(started, ["a", "b", "c"], "a did not start a second time");
        release_a.send(()).unwrap();
        let (done, ()) = in_flight.next().await.unwrap();
        assert_eq!(done.name, "a");
        // ... and runs at once when the first ends.
        in_flight.ended(&done, &mut scheduler, 0);
        assert!(in_flight.is_empty());
        assert_eq!(scheduler.pop_due(0), Some(key("a")));
        assert!(in_flight.next().await.is_none());
    }

    #[tokio::test]
    async fn a_bound_of_one_runs_one_reconcile_at_a_time() {
        use futures::future::{pending, FutureExt, LocalBoxFuture};
        let mut scheduler = Scheduler::default();
        for name in ["a", "b"] {
            scheduler.schedule(key(name), 0);
        }
        let mut in_flight: InFlight<LocalBoxFuture<'static, (ObjectKey, ())>> = InFlight::default();
        in_flight.start_due(&mut scheduler, 0, 1, |_| pending().boxed_local());
        assert_eq!(in_flight.len(), 1);
        assert!(!in_flight.has_room(1));
        assert_eq!(scheduler.next_due(), Some(0), "b is still due");
    }

    #[test]
    fn watch_filter_ignores_status_only_changes() {
        let mut f = WatchFilter::default();
        let v = |g: i64, marked: bool| {
            let mut o = serde_json::json!({"metadata": {"generation": g}});
            if marked {
                o["metadata"]["deletionTimestamp"] = serde_json::json!("t");
            }
            o
        };
        let names = |keys: Vec<ObjectKey>| {
            keys.into_iter()
                .map(|k| format!("{}/{}", k.kind.as_str(), k.name))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(f.on_change("FlinkDeployment", "ns", "a", &v(1, false), false)),
            ["FlinkDeployment/a"]
        );
        assert!(f
            .on_change("FlinkDeployment", "ns", "a", &v(1, false), false)
            .is_empty());
        assert_eq!(
            f.on_change("FlinkDeployment", "ns", "a", &v(2, false), false)
                .len(),
            1
        );
        assert_eq!(
            f.on_change("FlinkDeployment", "ns", "a", &v(2, true), false)
                .len(),
            1
        );
        assert!(f
            .on_change("FlinkDeployment", "ns", "a", &v(2, true), false)
            .is_empty());
        let dep = serde_json::json!({"metadata": {"ownerReferences": [{"kind": "FlinkDeployment", "name": "a"}]}});
        assert_eq!(
            names(f.on_change("Deployment", "ns", "a", &dep, false)),
            ["FlinkDeployment/a"]
        );
        let job =
            serde_json::json!({"metadata": {"generation": 1}, "spec": {"deploymentName": "s"}});
        assert_eq!(
            names(f.on_change("FlinkSessionJob", "ns", "j", &job, false)),
            ["FlinkSessionJob/j", "FlinkDeployment/s"]
        );
        assert!(f
            .on_change("FlinkSessionJob", "ns", "j", &job, false)
            .is_empty());
        assert_eq!(
            names(f.on_change("FlinkSessionJob", "ns", "j", &job, true)),
            ["FlinkSessionJob/j", "FlinkDeployment/s"]
        );
        assert!(f.on_change("ConfigMap", "ns", "c", &dep, false).is_empty());
    }

    #[test]
    fn due_order_then_key_order() {
        let mut s = Scheduler::default();
        s.schedule(key("b"), 10);
        s.schedule(key("a"), 10);
        s.schedule(key("c"), 5);
        assert_eq!(s.pop_due(4), None);
        assert_eq!(s.pop_due(10), Some(key("c")));
        assert_eq!(s.pop_due(10), Some(key("a")));
        assert_eq!(s.pop_due(10), Some(key("b")));
        assert!(s.is_empty());
    }

    #[test]
    fn notify_brings_forward_never_back() {
        let mut s = Scheduler::default();
        s.schedule(key("a"), 100);
        s.notify(key("a"), 50);
        assert_eq!(s.next_due(), Some(50));
        s.notify(key("a"), 70);
        assert_eq!(s.next_due(), Some(50));
    }

    #[test]
    fn backoff_grows_then_falls_back_to_the_interval() {
        let mut s = Scheduler::default();
        let conf = EffectiveConfig::default();
        assert_eq!(s.backoff(&key("a"), &conf), Duration::from_secs(5));
        assert_eq!(s.backoff(&key("a"), &conf), Duration::from_millis(7500));
        for _ in 0..13 {
            s.backoff(&key("a"), &conf);
        }
        assert_eq!(s.backoff(&key("a"), &conf), Duration::from_secs(60));
        s.succeeded(&key("a"));
        assert_eq!(s.backoff(&key("a"), &conf), Duration::from_secs(5));
    }

    #[test]
    fn a_new_spec_starts_the_backoff_over() {
        let mut s = Scheduler::default();
        let conf = EffectiveConfig::default();
        for _ in 0..10 {
            s.backoff(&key("a"), &conf);
        }
        assert!(s.backoff(&key("a"), &conf) > Duration::from_secs(200));
        s.notify(key("a"), 0);
        assert!(s.backoff(&key("a"), &conf) > Duration::from_secs(200));
        s.restart_backoff(&key("a"));
        assert_eq!(s.backoff(&key("a"), &conf), Duration::from_secs(5));
    }
}
