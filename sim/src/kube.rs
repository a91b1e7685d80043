//! A fake Kubernetes API server: objects as JSON with resourceVersion and optimistic
//! concurrency, generation, the status subresource, finalizers and deletionTimestamp, owner
//! references with garbage collection, and a watch stream.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use serde_json::{json, Value};

use crate::invariants::BYSTANDER_LABEL;

/// (kind, namespace, name): ordered, so every listing is in a stable order.
pub type Key = (String, String, String);

/// A change to an object, as a watch delivers it.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchEvent {
    pub key: Key,
    /// The object after the change (before deletion for a delete), shared with the store:
    /// an object is never changed in place once handed out, a write stores a new one.
    pub object: Arc<Value>,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    NotFound(String),
    Conflict(String),
    Invalid(String),
}

#[derive(Debug, Default, Clone)]
pub struct KubeStore {
    /// By key, for the point reads that most requests are (hashed: an ordered map of string
    /// keys cost a dozen comparisons per read at 10,000 deployments).
    /// Each with its resourceVersion as a number: readers that only compare versions (the
    /// ports' kept decodings) need not look into the object.
    /// Keyed by [`flat_key`]: one short string compared per lookup, not the key's three (each a
    /// separate allocation, which at 10,000 deployments missed the cache three times). That
    /// one allocation is shared with the indexes below, whose entries are then a pointer each.
    objects: FxHashMap<FlatKey, (u64, Arc<Value>)>,
    /// The same keys in order, for lists: every listing is in a stable order, never the hash
    /// map's. [`flat_key`]s order as their keys do.
    order: BTreeSet<FlatKey>,
    /// Names by (kind, namespace, `app` label): label-selected lists without a scan.
    by_app: FxHashMap<(String, String, String), BTreeSet<String>>,
    /// Keys by the uids their owner references name: garbage collection without a scan.
    owned_by: FxHashMap<String, BTreeSet<FlatKey>>,
    /// Keys of the objects labelled [`BYSTANDER_LABEL`]: the invariants look at them once a
    /// virtual minute, without a scan of every ConfigMap and Service.
    bystanders: BTreeSet<FlatKey>,
    /// Keys of the objects changed since the last [`KubeStore::take_changes`], when
    /// [`KubeStore::track_changes`] turned it on (the world's controllers follow it).
    changes: Option<Vec<Key>>,
    /// Keys of the Flink resources changed, and of the ConfigMaps created or removed, since the
    /// last [`KubeStore::take_check_changes`], once [`KubeStore::track_check_changes`] turned it
    /// on: what the invariants' periodic look must see again (they read nothing else there).
    /// Flat, one allocation each: they are put in order once a virtual minute, and at 10,000
    /// deployments sorting the three-string keys of a minute's changes (each string cold by
    /// then) was the largest part of what the simulator's reads cost there more than ten
    /// times the 1,000 run's.
    check_changes: Option<Vec<Box<str>>>,
    next_resource_version: u64,
    next_uid: u64,
    /// Changes not yet delivered to watchers.
    pub pending_watch: Vec<WatchEvent>,
    /// Every change with the resourceVersion it took, for API clients that watch (the served
    /// API, `flink-sim serve`). Off (None) unless [`KubeStore::keep_history`] turned it on, so
    /// scenario runs are untouched.
    pub history: Option<History>,
}

/// How a change shows in a watch stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One change as a watch stream shows it: the resourceVersion it took, its type, the key and
/// the object (for a deletion: its last state, with the deletion's resourceVersion).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub resource_version: u64,
    pub change: ChangeType,
    pub key: Key,
    pub object: Arc<Value>,
}

/// The newest changes, oldest first, at most `limit` of them.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub changes: VecDeque<Change>,
    pub limit: usize,
    /// The resourceVersion before the oldest change kept: a watch from an older one has
    /// missed changes (410 Gone).
    pub horizon: u64,
    live: BTreeSet<Key>,
}

/// A stored object's key as [`flat_key`] makes it, shared by the store's map and indexes.
type FlatKey = Arc<str>;

/// A key as one string, its parts apart by NUL (which no kind, namespace or name contains).
/// NUL sorts before every other character, so flat keys sort as the keys they stand for.
fn flat_key((kind, namespace, name): &Key) -> Box<str> {
    let mut flat = String::with_capacity(kind.len() + namespace.len() + name.len() + 2);
    for (i, part) in [kind, namespace, name].into_iter().enumerate() {
        if i > 0 {
            flat.push('\0');
        }
        flat.push_str(part);
    }
    flat.into_boxed_str()
}

/// A [`Key`] borrowed: (kind, namespace, name).
pub type KeyRef<'a> = (&'a str, &'a str, &'a str);

/// The (kind, namespace, name) a [`flat_key`] stands for, borrowed from it.
fn parts(flat: &str) -> KeyRef<'_> {
    let mut parts = flat.splitn(3, '\0');
    let mut next = || parts.next().unwrap_or_default();
    (next(), next(), next())
}

/// The key a [`flat_key`] stands for.
fn unflat(flat: &str) -> Key {
    let (kind, namespace, name) = parts(flat);
    key_of(kind, namespace, name)
}

/// The flat keys in `set` that begin with `prefix`, in order.
fn with_prefix<'a>(
    set: &'a BTreeSet<FlatKey>,
    prefix: &'a str,
) -> impl Iterator<Item = &'a FlatKey> + 'a {
    use std::ops::Bound;
    set.range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
        .take_while(move |k| k.starts_with(prefix))
}

pub fn key_of(kind: &str, namespace: &str, name: &str) -> Key {
    (kind.to_string(), namespace.to_string(), name.to_string())
}

fn meta(v: &Value) -> &Value {
    &v["metadata"]
}

/// `a=b,c=d` against an object's labels.
pub fn labels_match(obj: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (k, v) = term.split_once('=').unwrap_or((term, ""));
        obj["metadata"]["labels"][k.trim()].as_str() == Some(v.trim())
    })
}

fn is_bystander(obj: &Value) -> bool {
    obj["metadata"]["labels"].get(BYSTANDER_LABEL).is_some()
}

/// The `app` label of an object, if it has one as text.
fn app_label(obj: &Value) -> Option<&str> {
    obj["metadata"]["labels"]["app"].as_str()
}

/// The uids an object's owner references name.
fn owner_uids(obj: &Value) -> Vec<&str> {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .map(|refs| refs.iter().filter_map(|r| r["uid"].as_str()).collect())
        .unwrap_or_default()
}

/// The value a selector (`a=b,c=d`) requires of the `app` label, if it names one.
fn selector_app(selector: &str) -> Option<&str> {
    selector.split(',').find_map(|term| {
        let (k, v) = term.split_once('=')?;
        (k.trim() == "app").then(|| v.trim())
    })
}

impl KubeStore {
    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(&*flat_key(key)).map(|(_, v)| &**v)
    }

    /// An object with its resourceVersion.
    pub fn get_versioned(&self, key: &Key) -> Option<(u64, &Value)> {
        self.objects.get(&*flat_key(key)).map(|(rv, v)| (*rv, &**v))
    }

    /// The stored object itself (shared): for readers that keep it across writes to the store.
    pub fn get_shared(&self, key: &Key) -> Option<Arc<Value>> {
        self.objects.get(&*flat_key(key)).map(|(_, v)| v.clone())
    }

    /// Objects of a kind in a namespace, in name order.
    pub fn list(&self, kind: &str, namespace: &str) -> Vec<&Value> {
        let prefix = format!("{kind}\0{namespace}\0");
        self.listed(&prefix)
    }

    /// The objects whose flat keys begin with `prefix`, in key order.
    fn listed(&self, prefix: &str) -> Vec<&Value> {
        with_prefix(&self.order, prefix)
            .filter_map(|k| self.objects.get(k).map(|(_, v)| &**v))
            .collect()
    }

    /// Objects of a kind in a namespace that match a label selector (`a=b,c=d`), in name
    /// order: [`KubeStore::list`] filtered by [`labels_match`], without looking at the others
    /// when the selector names an `app`.
    pub fn list_selected(&self, kind: &str, namespace: &str, selector: &str) -> Vec<&Value> {
        let Some(app) = selector_app(selector) else {
            return self
                .list(kind, namespace)
                .into_iter()
                .filter(|o| labels_match(o, selector))
                .collect();
        };
        self.with_app(kind, namespace, app)
            .into_iter()
            .filter(|o| labels_match(o, selector))
            .collect()
    }

    /// Objects of a kind in every namespace, in (namespace, name) order.
    pub fn list_all(&self, kind: &str) -> Vec<&Value> {
        self.listed(&format!("{kind}\0"))
    }

    /// The objects labelled [`BYSTANDER_LABEL`], in key order.
    pub fn bystanders(&self) -> impl Iterator<Item = (Key, &Value)> {
        self.bystanders
            .iter()
            .filter_map(|k| Some((unflat(k), &*self.objects.get(k)?.1)))
    }

    /// Objects whose owner references name `uid`, in key order.
    pub fn dependents(&self, uid: &str) -> Vec<(KeyRef<'_>, &Arc<Value>)> {
        self.owned_by
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|k| Some((parts(k), &self.objects.get(k)?.1)))
            .collect()
    }

    /// Objects of a kind in a namespace whose `app` label is `app`, in name order.
    pub fn with_app(&self, kind: &str, namespace: &str, app: &str) -> Vec<&Value> {
        self.app_keys(kind, namespace, app)
            .filter_map(|k| self.get(&k))
            .collect()
    }

    /// The keys of the objects of a kind in a namespace whose `app` label is `app`, in name
    /// order.
    fn app_keys<'a>(
        &'a self,
        kind: &'a str,
        namespace: &'a str,
        app: &str,
    ) -> impl Iterator<Item = Key> + 'a {
        let index = (kind.to_string(), namespace.to_string(), app.to_string());
        self.by_app
            .get(&index)
            .into_iter()
            .flatten()
            .map(move |name| key_of(kind, namespace, name))
    }

    /// Records the keys of changed objects from now on, for [`KubeStore::take_changes`].
    pub fn track_changes(&mut self) {
        self.changes.get_or_insert_with(Vec::new);
    }

    /// Keys changed (created, written, marked or removed) since the last call, in order,
    /// possibly repeated.
    pub fn take_changes(&mut self) -> Vec<Key> {
        self.changes
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Records the changes the invariants' periodic look needs from now on, for
    /// [`KubeStore::take_check_changes`].
    pub fn track_check_changes(&mut self) {
        self.check_changes.get_or_insert_with(Vec::new);
    }

    /// The Flink resources changed and the ConfigMaps created or removed since the last call,
    /// in order, each once; `None` when nothing was tracked (look at everything).
    pub fn take_check_changes(&mut self) -> Option<Vec<Key>> {
        self.check_changes.as_mut().map(|changes| {
            let mut changes = std::mem::take(changes);
            changes.sort_unstable();
            changes.dedup();
            changes.iter().map(|flat| unflat(flat)).collect()
        })
    }

    /// A ConfigMap counts when it comes or goes (HA metadata exists or not), a Flink resource
    /// on every change.
    fn note_for_checks(&mut self, key: &Key, came_or_went: bool) {
        let wanted = match key.0.as_str() {
            "FlinkDeployment" | "FlinkSessionJob" => true,
            "ConfigMap" => came_or_went,
            _ => false,
        };
        if let (true, Some(changes)) = (wanted, self.check_changes.as_mut()) {
            changes.push(flat_key(key));
        }
    }

    /// Stores an object, keeping the indexes.
    fn put(&mut self, key: Key, obj: Arc<Value>) {
        let new_app = app_label(&obj).map(str::to_string);
        let new_owners: Vec<String> = owner_uids(&obj).into_iter().map(String::from).collect();
        let bystander = is_bystander(&obj);
        let rv = obj["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let lookup = flat_key(&key);
        let (flat, old) = match self.objects.get_mut(&*lookup) {
            Some(stored) => {
                let old = std::mem::replace(stored, (rv, obj)).1;
                (self.shared_key(&lookup), Some(old))
            }
            None => {
                let flat: FlatKey = Arc::from(lookup);
                self.objects.insert(flat.clone(), (rv, obj));
                self.order.insert(flat.clone());
                self.note_for_checks(&key, true);
                (flat, None)
            }
        };
        if bystander {
            self.bystanders.insert(flat.clone());
        } else if old.as_deref().is_some_and(is_bystander) {
            self.bystanders.remove(&flat);
        }
        let old_owners: Vec<String> = old
            .as_ref()
            .map(|o| owner_uids(o).into_iter().map(String::from).collect())
            .unwrap_or_default();
        if old_owners != new_owners {
            self.unindex_owners(&flat, &old_owners);
            for uid in new_owners {
                self.owned_by.entry(uid).or_default().insert(flat.clone());
            }
        }
        let old_app = old.as_deref().and_then(app_label).map(str::to_string);
        if old_app != new_app || old.is_none() {
            if let Some(app) = old_app {
                self.unindex(&key, app);
            }
            if let Some(app) = new_app {
                self.by_app
                    .entry((key.0.clone(), key.1.clone(), app))
                    .or_default()
                    .insert(key.2.clone());
            }
        }
    }

    /// The stored key's own allocation, for the indexes.
    fn shared_key(&self, flat: &str) -> FlatKey {
        self.objects
            .get_key_value(flat)
            .map_or_else(|| Arc::from(flat), |(k, _)| k.clone())
    }

    fn unindex(&mut self, key: &Key, app: String) {
        let index = (key.0.clone(), key.1.clone(), app);
        if let Some(names) = self.by_app.get_mut(&index) {
            names.remove(&key.2);
            if names.is_empty() {
                self.by_app.remove(&index);
            }
        }
    }

    fn unindex_owners(&mut self, key: &str, uids: &[String]) {
        for uid in uids {
            if let Some(keys) = self.owned_by.get_mut(uid) {
                keys.remove(key);
                if keys.is_empty() {
                    self.owned_by.remove(uid);
                }
            }
        }
    }

    /// Removes an object, keeping the indexes.
    fn take(&mut self, key: &Key) -> Option<Arc<Value>> {
        let flat = flat_key(key);
        let (_, obj) = self.objects.remove(&*flat)?;
        self.order.remove(&*flat);
        self.note_for_checks(key, true);
        if is_bystander(&obj) {
            self.bystanders.remove(&*flat);
        }
        if let Some(app) = app_label(&obj).map(str::to_string) {
            self.unindex(key, app);
        }
        let owners: Vec<String> = owner_uids(&obj).into_iter().map(String::from).collect();
        self.unindex_owners(&flat, &owners);
        Some(obj)
    }

    /// Every object's key, in order.
    pub fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.order.iter().map(|k| unflat(k))
    }

    /// Keeps the newest `limit` changes in [`KubeStore::history`] from now on; deletions then
    /// take a resourceVersion of their own, as they do in a real API server.
    pub fn keep_history(&mut self, limit: usize) {
        let live = self.keys().collect();
        self.history = Some(History {
            changes: VecDeque::new(),
            limit: limit.max(1),
            horizon: self.next_resource_version,
            live,
        });
    }

    /// The newest resourceVersion handed out: what a list is "as of".
    pub fn resource_version(&self) -> u64 {
        self.next_resource_version
    }

    fn bump(&mut self, obj: &mut Value) {
        self.next_resource_version += 1;
        obj["metadata"]["resourceVersion"] = json!(self.next_resource_version.to_string());
    }

    fn emit(&mut self, key: &Key, object: &Arc<Value>, deleted: bool) {
        if let Some(changes) = self.changes.as_mut() {
            changes.push(key.clone());
        }
        self.note_for_checks(key, false);
        self.pending_watch.push(WatchEvent {
            key: key.clone(),
            object: object.clone(),
            deleted,
        });
        if self.history.is_some() {
            self.record_change(key, object, deleted);
        }
    }

    fn record_change(&mut self, key: &Key, object: &Arc<Value>, deleted: bool) {
        let mut object = object.clone();
        let resource_version = if deleted {
            self.next_resource_version += 1;
            Arc::make_mut(&mut object)["metadata"]["resourceVersion"] =
                json!(self.next_resource_version.to_string());
            self.next_resource_version
        } else {
            object["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|rv| rv.parse().ok())
                .unwrap_or(self.next_resource_version)
        };
        let Some(history) = self.history.as_mut() else {
            return;
        };
        let change = if deleted {
            history.live.remove(key);
            ChangeType::Deleted
        } else if history.live.insert(key.clone()) {
            ChangeType::Added
        } else {
            ChangeType::Modified
        };
        history.changes.push_back(Change {
            resource_version,
            change,
            key: key.clone(),
            object,
        });
        while history.changes.len() > history.limit {
            if let Some(old) = history.changes.pop_front() {
                history.horizon = old.resource_version;
            }
        }
    }

    fn key_from(obj: &Value) -> Result<Key, ApiError> {
        let kind = obj["kind"]
            .as_str()
            .ok_or_else(|| ApiError::Invalid("kind is required".into()))?;
        let name = meta(obj)["name"]
            .as_str()
            .ok_or_else(|| ApiError::Invalid("metadata.name is required".into()))?;
        let ns = meta(obj)["namespace"].as_str().unwrap_or("default");
        Ok(key_of(kind, ns, name))
    }

    /// Create, with uid, generation 1 and a creation timestamp.
    pub fn create(&mut self, mut obj: Value, now_rfc3339: &str) -> Result<Arc<Value>, ApiError> {
        let key = Self::key_from(&obj)?;
        if self.objects.contains_key(&*flat_key(&key)) {
            return Err(ApiError::Conflict(format!(
                "{}/{} already exists",
                key.0, key.2
            )));
        }
        self.next_uid += 1;
        let m = obj["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::Invalid("metadata must be an object".into()))?;
        m.insert("namespace".into(), json!(key.1));
        m.insert(
            "uid".into(),
            json!(format!("00000000-0000-4000-8000-{:012x}", self.next_uid)),
        );
        m.insert("generation".into(), json!(1));
        m.insert("creationTimestamp".into(), json!(now_rfc3339));
        m.remove("deletionTimestamp");
        self.bump(&mut obj);
        let obj = Arc::new(obj);
        self.put(key.clone(), obj.clone());
        self.emit(&key, &obj, false);
        Ok(obj)
    }

    /// Replace everything but status (and server-owned metadata); generation moves on a
    /// spec change. `expected_rv` makes it optimistic.
    pub fn update(
        &mut self,
        mut obj: Value,
        expected_rv: Option<&str>,
    ) -> Result<Arc<Value>, ApiError> {
        let key = Self::key_from(&obj)?;
        let Some(current) = self.get_shared(&key) else {
            return Err(ApiError::NotFound(format!("{}/{}", key.0, key.2)));
        };
        check_rv(&current, expected_rv)?;
        let spec_changed = current.get("spec") != obj.get("spec");
        for field in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "generation",
            "namespace",
        ] {
            match current["metadata"].get(field) {
                Some(v) => {
                    obj["metadata"][field] = v.clone();
                }
                None => {
                    if let Some(m) = obj["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        if spec_changed {
            let g = current["metadata"]["generation"].as_i64().unwrap_or(1);
            obj["metadata"]["generation"] = json!(g + 1);
        }
        match current.get("status") {
            Some(s) => obj["status"] = s.clone(),
            None => {
                if let Some(o) = obj.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        self.bump(&mut obj);
        let obj = Arc::new(obj);
        self.put(key.clone(), obj.clone());
        self.emit(&key, &obj, false);
        self.finish_deletion_if_done(&key);
        Ok(obj)
    }

    /// The status subresource: only status changes.
    pub fn update_status(
        &mut self,
        key: &Key,
        status: Value,
        expected_rv: Option<&str>,
    ) -> Result<Arc<Value>, ApiError> {
        let not_found = || ApiError::NotFound(format!("{}/{}", key.0, key.2));
        check_rv(self.get(key).ok_or_else(not_found)?, expected_rv)?;
        // In place: a status write leaves labels and owners, so the indexes, as they are.
        self.modify_status(key, status).ok_or_else(not_found)
    }

    /// [`KubeStore::modify`] replacing the status (see [`KubeStore::modify_replacing`]).
    fn modify_status(&mut self, key: &Key, status: Value) -> Option<Arc<Value>> {
        self.modify_replacing(key, Some("status"), |object| object["status"] = status)
    }

    /// Internal writes (controllers of the simulated cluster): status without conflicts.
    pub fn set_status(&mut self, key: &Key, status: Value) {
        // Unchanged (the common case) costs a comparison, not a copy.
        if self.get(key).and_then(|c| c.get("status")) == Some(&status) {
            return;
        }
        self.modify_status(key, status);
    }

    /// A write that changes an object where it is stored (status writes, and the simulated
    /// cluster's own controllers, such as Flink's HA services recording a checkpoint): a new
    /// resourceVersion and a watch event, as [`KubeStore::update`] gives, without copying the
    /// object unless a watch event, the journal or a reader still holds it. `change` must leave
    /// the labels, owner references and finalizers as they are (the indexes are not updated).
    /// Returns the object now stored; None if there is no such object.
    pub fn modify(&mut self, key: &Key, change: impl FnOnce(&mut Value)) -> Option<Arc<Value>> {
        self.modify_replacing(key, None, change)
    }

    /// [`KubeStore::modify`] by a `change` that replaces the top-level field `replaced` whole.
    /// When the object is shared (a watch event not yet delivered, the journal), its copy
    /// leaves that field out: a second status write in one reconcile copied the whole object,
    /// the old status included, and at 10,000 deployments that copy read a cold tree.
    fn modify_replacing(
        &mut self,
        key: &Key,
        replaced: Option<&str>,
        change: impl FnOnce(&mut Value),
    ) -> Option<Arc<Value>> {
        let (rv, stored) = self.objects.get_mut(&*flat_key(key))?;
        self.next_resource_version += 1;
        *rv = self.next_resource_version;
        if let (Some(replaced), Some(fields)) = (replaced, stored.as_object()) {
            if Arc::strong_count(stored) > 1 {
                let copy = fields
                    .iter()
                    .map(|(k, v)| {
                        let v = if k == replaced {
                            Value::Null
                        } else {
                            v.clone()
                        };
                        (k.clone(), v)
                    })
                    .collect();
                *stored = Arc::new(Value::Object(copy));
            }
        }
        let object = Arc::make_mut(stored);
        change(object);
        object["metadata"]["resourceVersion"] = json!(self.next_resource_version.to_string());
        let current = stored.clone();
        self.emit(key, &current, false);
        Some(current)
    }

    /// A JSON merge patch (RFC 7386) of an object's `spec`, made where the object is stored:
    /// the same object, resourceVersion, generation and watch event as
    /// [`KubeStore::update`] with the patched object would give, without copying the whole
    /// object (unless a watch event or a reader still holds it).
    pub fn patch_spec(&mut self, key: &Key, spec_patch: &Value) -> Result<Arc<Value>, ApiError> {
        let stored = self
            .modify(key, |object| {
                if crate::runner::merge_patch(&mut object["spec"], spec_patch) {
                    let g = object["metadata"]["generation"].as_i64().unwrap_or(1);
                    object["metadata"]["generation"] = json!(g + 1);
                }
            })
            .ok_or_else(|| ApiError::NotFound(format!("{}/{}", key.0, key.2)))?;
        self.finish_deletion_if_done(key);
        Ok(stored)
    }

    /// Deletion: with finalizers, only marks the object; without, removes it and collects
    /// what it owns.
    pub fn delete(&mut self, key: &Key, now_rfc3339: &str) -> Result<(), ApiError> {
        let Some(current) = self.get(key) else {
            return Err(ApiError::NotFound(format!("{}/{}", key.0, key.2)));
        };
        let has_finalizers = current["metadata"]["finalizers"]
            .as_array()
            .map(|f| !f.is_empty())
            .unwrap_or(false);
        if has_finalizers {
            if current["metadata"].get("deletionTimestamp").is_none() {
                // Only marked: the object stays, with its labels and owners (no re-indexing).
                self.modify(key, |object| {
                    object["metadata"]["deletionTimestamp"] = json!(now_rfc3339)
                });
            }
            return Ok(());
        }
        // Removed as it is: a copy of a cold object per deletion was most of what deleting a
        // cluster's objects cost at 10,000 deployments.
        self.remove(key);
        Ok(())
    }

    fn finish_deletion_if_done(&mut self, key: &Key) {
        let Some(current) = self.get(key) else {
            return;
        };
        let marked = current["metadata"].get("deletionTimestamp").is_some();
        let empty = current["metadata"]["finalizers"]
            .as_array()
            .map(|f| f.is_empty())
            .unwrap_or(true);
        if marked && empty {
            self.remove(key);
        }
    }

    /// Removes an object and, transitively, everything it owns.
    fn remove(&mut self, key: &Key) {
        let Some(obj) = self.take(key) else {
            return;
        };
        self.emit(key, &obj, true);
        let uid = obj["metadata"]["uid"].as_str().unwrap_or_default();
        // In key order, as a scan of every object would find them.
        let owned: Vec<Key> = self
            .owned_by
            .get(uid)
            .map(|keys| keys.iter().map(|k| unflat(k)).collect())
            .unwrap_or_default();
        for k in owned {
            self.remove(&k);
        }
    }
}

fn check_rv(current: &Value, expected: Option<&str>) -> Result<(), ApiError> {
    if let Some(rv) = expected {
        let actual = current["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        if rv != actual {
            return Err(ApiError::Conflict(format!(
                "the object has been modified; please apply your changes to the latest version (resourceVersion {rv} is not {actual})"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cr(name: &str) -> Value {
        json!({"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
               "metadata": {"name": name, "namespace": "default"}, "spec": {"image": "a"}})
    }

    /// A spec patch where the object is stored gives what an update with the patched object
    /// gives: the same object, resourceVersion, generation and watch events.
    #[test]
    fn a_spec_patch_in_place_is_an_update_of_the_patched_object() {
        let key = key_of("FlinkDeployment", "default", "x");
        let patches = [
            json!({"image": "b"}),
            json!({"image": "b"}),
            json!({"job": {"state": "suspended"}}),
            json!({"image": null}),
            json!({"image": null}),
            json!({"extra": {"a": {"b": 1}}}),
        ];
        let mut by_update = KubeStore::default();
        let mut in_place = KubeStore::default();
        for s in [&mut by_update, &mut in_place] {
            s.create(cr("x"), "t").unwrap();
            s.update_status(&key, json!({"a": 1}), None).unwrap();
        }
        for patch in &patches {
            let mut changed = by_update.get(&key).unwrap().clone();
            crate::runner::merge_patch(&mut changed["spec"], patch);
            let updated = by_update.update(changed, None).unwrap();
            let patched = in_place.patch_spec(&key, patch).unwrap();
            assert_eq!(patched, updated, "after {patch}");
        }
        assert_eq!(
            in_place.get(&key).unwrap()["metadata"]["generation"],
            json!(5),
            "the repeated patches changed nothing"
        );
        assert_eq!(in_place.pending_watch, by_update.pending_watch);
        assert!(matches!(
            in_place.patch_spec(&key_of("FlinkDeployment", "default", "y"), &json!({})),
            Err(ApiError::NotFound(_))
        ));
    }

    /// A status write to an object still held elsewhere (here by its watch events) leaves the
    /// held versions as they were and stores what an update with the new status would: the
    /// same fields in the same order, the new status in the old one's place.
    #[test]
    fn a_status_write_to_a_shared_object_copies_all_but_the_status() {
        let key = key_of("FlinkDeployment", "default", "x");
        let mut s = KubeStore::default();
        let mut with_status = cr("x");
        with_status["status"] = json!({"a": 1});
        with_status["extra"] = json!({"after": "status"});
        s.create(with_status, "t").unwrap();
        let first = s.update_status(&key, json!({"a": 2}), None).unwrap();
        let held = s.get_shared(&key).unwrap();
        assert!(Arc::ptr_eq(&first, &held));
        let second = s.update_status(&key, json!({"b": 3}), None).unwrap();
        assert_eq!(
            held["status"],
            json!({"a": 2}),
            "the held version is untouched"
        );
        let mut expected = (*held).clone();
        expected["status"] = json!({"b": 3});
        expected["metadata"]["resourceVersion"] = second["metadata"]["resourceVersion"].clone();
        assert_eq!(*second, expected);
        let order = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(order(&second), order(&held));
        assert_eq!(s.pending_watch.last().unwrap().object, second);
        // Internal status writes take the same way.
        s.set_status(&key, json!({"c": 4}));
        assert_eq!(s.get(&key).unwrap()["status"], json!({"c": 4}));
        assert_eq!(second["status"], json!({"b": 3}));
    }

    /// The invariants' feed: the Flink resources changed and the ConfigMaps that came or
    /// went, in key order, each once, whatever the order and number of the writes.
    #[test]
    fn check_changes_come_in_order_each_once() {
        let mut s = KubeStore::default();
        assert_eq!(s.take_check_changes(), None);
        s.track_check_changes();
        for name in ["b", "a", "c"] {
            s.create(cr(name), "t").unwrap();
        }
        for name in ["c", "a", "c"] {
            let key = key_of("FlinkDeployment", "default", name);
            s.update_status(&key, json!({"n": 1}), None).unwrap();
        }
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a-cluster-config-map", "namespace": "default"}, "data": {}});
        s.create(cm, "t").unwrap();
        let cm_key = key_of("ConfigMap", "default", "a-cluster-config-map");
        s.modify(&cm_key, |cm| cm["data"]["k"] = json!("v"));
        let names = |changes: Vec<Key>| -> Vec<String> {
            changes
                .into_iter()
                .map(|k| format!("{}/{}", k.0, k.2))
                .collect()
        };
        assert_eq!(
            names(s.take_check_changes().unwrap()),
            [
                "ConfigMap/a-cluster-config-map",
                "FlinkDeployment/a",
                "FlinkDeployment/b",
                "FlinkDeployment/c"
            ]
        );
        // A ConfigMap changed in place is no news; taken means gone.
        s.modify(&cm_key, |cm| cm["data"]["k"] = json!("w"));
        assert_eq!(s.take_check_changes(), Some(Vec::new()));
    }

    #[test]
    fn a_deletion_without_finalizers_removes_and_with_them_marks() {
        let mut s = KubeStore::default();
        let key = key_of("FlinkDeployment", "default", "x");
        let mut held = cr("x");
        held["metadata"]["finalizers"] = json!(["f"]);
        s.create(held, "t").unwrap();
        s.delete(&key, "later").unwrap();
        let marked = s.get(&key).expect("a finalizer holds it");
        assert_eq!(marked["metadata"]["deletionTimestamp"], json!("later"));
        assert_eq!(marked["metadata"]["finalizers"], json!(["f"]));
        let rv = marked["metadata"]["resourceVersion"].clone();
        s.delete(&key, "again").unwrap();
        assert_eq!(
            s.get(&key).unwrap()["metadata"]["resourceVersion"],
            rv,
            "marked once"
        );
        let other = key_of("FlinkDeployment", "default", "y");
        s.create(cr("y"), "t").unwrap();
        s.delete(&other, "now").unwrap();
        assert!(s.get(&other).is_none());
        assert!(s.pending_watch.last().unwrap().deleted);
    }

    #[test]
    fn stale_writes_conflict_and_generation_follows_spec() {
        let mut s = KubeStore::default();
        let created = s.create(cr("x"), "t").unwrap();
        let rv = created["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        let key = key_of("FlinkDeployment", "default", "x");
        s.update_status(&key, json!({"a": 1}), Some(&rv)).unwrap();
        assert!(matches!(
            s.update_status(&key, json!({"a": 2}), Some(&rv)),
            Err(ApiError::Conflict(_))
        ));
        let mut changed = s.get(&key).unwrap().clone();
        changed["spec"]["image"] = json!("b");
        let updated = s.update(changed, None).unwrap();
        assert_eq!(updated["metadata"]["generation"], json!(2));
        assert_eq!(
            updated["status"],
            json!({"a": 1}),
            "status survives a spec update"
        );
    }

    #[test]
    fn finalizers_hold_deletion_and_owners_collect_dependents() {
        let mut s = KubeStore::default();
        let mut owner = cr("x");
        owner["metadata"]["finalizers"] = json!(["f"]);
        let owner = s.create(owner, "t").unwrap();
        let uid = owner["metadata"]["uid"].clone();
        s.create(json!({"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default",
            "ownerReferences": [{"uid": uid, "kind": "FlinkDeployment", "name": "x", "apiVersion": "v"}]}}), "t").unwrap();
        let key = key_of("FlinkDeployment", "default", "x");
        s.delete(&key, "t2").unwrap();
        assert!(s.get(&key).unwrap()["metadata"]["deletionTimestamp"].is_string());
        let mut obj = s.get(&key).unwrap().clone();
        obj["metadata"]["finalizers"] = json!([]);
        s.update(obj, None).unwrap();
        assert!(s.get(&key).is_none());
        assert!(s.get(&key_of("ConfigMap", "default", "c")).is_none());
    }
}
