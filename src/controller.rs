//! The controller loop's bookkeeping: which resource to reconcile when. Deterministic (ordered
//! maps, time from the caller), so the simulator runs this very code in virtual time and
//! production drives it from a tokio timer and kube watches.

use std::collections::{BTreeSet, HashMap};
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
    due: HashMap<ObjectKey, i64>,
    /// The same entries ordered by (due time, key): the next one is the first.
    queue: BTreeSet<(i64, ObjectKey)>,
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
        if let Some(old) = self.due.insert(key.clone(), at) {
            self.queue.remove(&(old, key.clone()));
        }
        self.queue.insert((at, key));
    }

    pub fn forget(&mut self, key: &ObjectKey) {
        if let Some(at) = self.due.remove(key) {
            self.queue.remove(&(at, key.clone()));
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
        self.due.remove(&key);
        Some(key)
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
    /// The resources to reconcile because of this change (none, one or two).
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
    let now = ctx.clock.now_millis();
    scheduler.counters.reconciles += 1;
    let result = match key.kind {
        Kind::FlinkDeployment => {
            reconcile::deployment::reconcile(ctx, &key.namespace, &key.name).await
        }
        Kind::FlinkSessionJob => {
            reconcile::session_job::reconcile(ctx, &key.namespace, &key.name).await
        }
    };
    match result {
        Ok(Some(requeue)) => {
            scheduler.succeeded(key);
            scheduler.schedule(key.clone(), now + requeue.0.as_millis() as i64);
            Ok(())
        }
        Ok(None) => {
            scheduler.forget(key);
            Ok(())
        }
        Err(e) => {
            scheduler.counters.errors += 1;
            let conf = EffectiveConfig::new(ctx.operator_config, &Default::default());
            let delay = scheduler.backoff(key, &conf);
            scheduler.schedule(key.clone(), now + delay.as_millis() as i64);
            Err(e)
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
