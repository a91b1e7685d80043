//! The operator's ports, implemented by the simulated world. Every answer goes through JSON
//! and the same decoding a real adapter uses.

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::flink::{FlinkCluster, Operation};
use crate::kube::{key_of, ApiError, Key, KubeStore};
use crate::scenario::{ArtifactFailure, FaultKind};
use crate::world::World;
use flink_operator::artifacts::{redact, JarSource};
use flink_operator::crd::{FlinkDeployment, FlinkSessionJob};
use flink_operator::ports::*;

#[derive(Clone)]
pub struct SimPorts {
    pub world: Arc<Mutex<World>>,
}

impl SimPorts {
    fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn typed<T: DeserializeOwned>(v: &Value) -> Result<T, KubeError> {
    // Straight from the stored object, without a copy of it.
    T::deserialize(v).map_err(undecodable)
}

/// Typed objects as last decoded, by key, with the resourceVersion they were decoded at.
/// Every write to the fake API takes a new resourceVersion, so an object with the same one is
/// the same object: its decoding is copied instead of done again (the decoding a real adapter
/// does once per watch event).
#[derive(Debug)]
pub struct Decoded<T> {
    /// Found by resourceVersion, which names one version of one object (every write takes a
    /// new one): a read compares an integer, not the key's three strings, which at 10,000
    /// deployments each missed the cache.
    by_version: rustc_hash::FxHashMap<u64, T>,
    /// The version kept per object, to let go of it when a newer one is kept (touched only
    /// when something is decoded).
    version_of: rustc_hash::FxHashMap<crate::kube::Key, u64>,
}

impl<T> Default for Decoded<T> {
    fn default() -> Self {
        Decoded {
            by_version: Default::default(),
            version_of: Default::default(),
        }
    }
}

impl<T> Decoded<T> {
    /// (0: no resourceVersion, never the same object.)
    fn get(&self, resource_version: u64) -> Option<&T> {
        if resource_version == 0 {
            return None;
        }
        self.by_version.get(&resource_version)
    }

    fn put(&mut self, key: crate::kube::Key, resource_version: u64, value: T) {
        if let Some(old) = self.version_of.insert(key, resource_version) {
            self.by_version.remove(&old);
        }
        self.by_version.insert(resource_version, value);
    }

    fn forget(&mut self, key: &crate::kube::Key) {
        if let Some(old) = self.version_of.remove(key) {
            self.by_version.remove(&old);
        }
    }

    /// How many decodings are kept (one per object at most).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_version.len()
    }
}

/// What the ports keep decoded per resourceVersion, and how it is decoded.
trait Stored: Clone {
    fn decode(v: &Value) -> Result<Self, KubeError>;
}

/// Shared: a reconcile reads its resource once and changes only a copy of the status.
impl Stored for Arc<FlinkDeployment> {
    fn decode(v: &Value) -> Result<Self, KubeError> {
        typed(v).map(Arc::new)
    }
}

impl Stored for FlinkSessionJob {
    fn decode(v: &Value) -> Result<Self, KubeError> {
        typed(v)
    }
}

/// Shared: the observer reads the JobManager Deployment every observe, and reads it only.
impl Stored for Arc<DeploymentView> {
    fn decode(v: &Value) -> Result<Self, KubeError> {
        typed(v).map(Arc::new)
    }
}

fn undecodable(e: serde_json::Error) -> KubeError {
    KubeError::Api(format!("undecodable object: {e}"))
}

fn to_value<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

fn api_err(e: ApiError) -> KubeError {
    match e {
        ApiError::NotFound(m) => KubeError::NotFound(m),
        ApiError::Conflict(m) => KubeError::Conflict(m),
        ApiError::Invalid(m) => KubeError::Api(m),
    }
}

impl World {
    /// What the operator reads: the truth, or a lagging copy under `staleReads`.
    fn view(&self) -> &KubeStore {
        self.stale_view.as_ref().unwrap_or(&self.kube)
    }

    fn read(&mut self) -> Result<(), KubeError> {
        self.died()?;
        self.counters.kube_requests += 1;
        self.operator_call();
        Ok(())
    }

    /// After a simulated crash, the dead process's remaining calls go nowhere.
    fn died(&self) -> Result<(), KubeError> {
        if self.operator_crashed {
            return Err(KubeError::Api("the operator process died".into()));
        }
        Ok(())
    }

    /// Every operator write passes here: counted, and refused under `apiConflict`.
    fn write(&mut self) -> Result<(), KubeError> {
        self.died()?;
        self.counters.kube_requests += 1;
        self.counters.kube_writes += 1;
        // A crash point: this write reaches the API, then the process dies.
        if self.crash_after_write == Some(self.counters.kube_writes) {
            self.operator_crashed = true;
        }
        self.operator_call();
        if self.consume_fault(FaultKind::ApiConflict, None) {
            return Err(KubeError::Conflict(
                "simulated conflict (apiConflict fault)".into(),
            ));
        }
        Ok(())
    }

    /// The object just written under `key`, decoded: the store's own while it is still
    /// there, else what was written.
    fn written<T: DeserializeOwned>(
        &self,
        key: &crate::kube::Key,
        written: &Value,
    ) -> Result<T, KubeError> {
        typed(self.kube.get(key).unwrap_or(written))
    }

    /// A status write to the API: only the status goes (as the status subresource takes it),
    /// so only the status is turned into JSON. Answers the key and the object now stored.
    fn write_status(
        &mut self,
        kind: &str,
        metadata: &ObjectMeta,
        status: Value,
    ) -> Result<(Key, Arc<Value>), KubeError> {
        self.write()?;
        let ns = metadata.namespace.as_deref().unwrap_or_default();
        let name = metadata.name.as_deref().unwrap_or_default();
        let rv = metadata.resource_version.as_deref();
        let key = key_of(kind, ns, name);
        let result = self.kube.update_status(&key, status, rv).map_err(api_err);
        self.flush_watch();
        Ok((key, result?))
    }

    /// A status write that answers the object as stored, decoded.
    fn update_status_of<T: DeserializeOwned + Clone>(
        &mut self,
        kind: &str,
        metadata: &ObjectMeta,
        status: Value,
        decoded: fn(&mut World) -> &mut Decoded<T>,
    ) -> Result<T, KubeError> {
        let (key, stored) = self.write_status(kind, metadata, status)?;
        let written: T = self.written(&key, &stored)?;
        // The decoding of what is stored now serves the next read of it.
        if let Some((rv, _)) = self.kube.get_versioned(&key) {
            decoded(self).put(key, rv, written.clone());
        }
        Ok(written)
    }

    /// A FlinkDeployment's status write. The answer is what a decoding of the stored object
    /// gives, without decoding all of it: the metadata is decoded (the server's: a new
    /// resourceVersion), the spec is the one sent (read at the resourceVersion the write
    /// named, or the write was refused) and so is the status (what was stored). A unit test
    /// holds the answer equal to a full decoding.
    fn update_deployment_status(
        &mut self,
        mut resource: FlinkDeployment,
    ) -> Result<Arc<FlinkDeployment>, KubeError> {
        let status = to_value(&resource.status);
        let (key, stored) = self.write_status("FlinkDeployment", &resource.metadata, status)?;
        resource.metadata = typed(&stored["metadata"])?;
        // Every test run (debug builds) holds the shortcut to a full decoding.
        #[cfg(debug_assertions)]
        {
            let full: FlinkDeployment = typed(&stored)?;
            assert!(
                full.status == resource.status && to_value(&full.spec) == to_value(&resource.spec),
                "a status write's answer differs from the stored object's decoding"
            );
        }
        let written = Arc::new(resource);
        if let Some((rv, _)) = self.kube.get_versioned(&key) {
            self.decoded_deployments.put(key, rv, written.clone());
        }
        Ok(written)
    }

    /// A FlinkDeployment, FlinkSessionJob or JobManager Deployment as the operator reads it:
    /// the decoding kept from the last read or write when the object has not changed since.
    fn get_decoded<T: Stored>(
        &mut self,
        kind: &str,
        ns: &str,
        name: &str,
        decoded: fn(&mut World) -> &mut Decoded<T>,
    ) -> Result<Option<T>, KubeError> {
        self.read()?;
        let key = key_of(kind, ns, name);
        // Taken out while the store is read, put back after.
        let mut kept = std::mem::take(decoded(self));
        let result = match self.view().get_versioned(&key) {
            None => {
                kept.forget(&key);
                Ok(None)
            }
            Some((rv, obj)) => match kept.get(rv) {
                Some(value) => Ok(Some(value.clone())),
                None => T::decode(obj).map(|value| {
                    kept.put(key, rv, value.clone());
                    Some(value)
                }),
            },
        };
        *decoded(self) = kept;
        result
    }

    fn set_finalizers_of<T: DeserializeOwned>(
        &mut self,
        kind: &str,
        obj: Value,
        finalizers: Vec<String>,
    ) -> Result<T, KubeError> {
        self.write()?;
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let key = key_of(kind, &ns, &name);
        let Some(mut current) = self.kube.get(&key).cloned() else {
            return Err(KubeError::NotFound(format!("{kind}/{name}")));
        };
        let rv = obj["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_string);
        current["metadata"]["finalizers"] = json!(finalizers);
        let result = self.kube.update(current, rv.as_deref()).map_err(api_err);
        self.flush_watch();
        // Removing the last finalizer of a deleted object removes it: report what was written.
        self.written(&key, &*result?)
    }

    /// Create, or replace labels, annotations, owner references and spec if they differ.
    fn apply_object(&mut self, mut obj: Value) -> Result<(), KubeError> {
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let key = key_of(&kind, &ns, &name);
        // The stored object's resourceVersion if it differs from `obj`, without copying it.
        let differs = self.kube.get(&key).map(|current| {
            let same = ["labels", "annotations", "ownerReferences"]
                .iter()
                .all(|f| current["metadata"].get(*f) == obj["metadata"].get(*f))
                && current.get("spec") == obj.get("spec")
                && current.get("data") == obj.get("data");
            (!same).then(|| current["metadata"]["resourceVersion"].clone())
        });
        match differs {
            None => {
                self.write()?;
                let now = self.now_rfc3339();
                self.kube.create(obj, &now).map(|_| ()).map_err(api_err)
            }
            Some(None) => self.read(),
            Some(Some(rv)) => {
                self.write()?;
                obj["metadata"]["resourceVersion"] = rv;
                self.kube.update(obj, None).map(|_| ()).map_err(api_err)
            }
        }
    }

    fn delete_object(&mut self, kind: &str, ns: &str, name: &str) -> Result<(), KubeError> {
        let key = key_of(kind, ns, name);
        if self.kube.get(&key).is_none() {
            self.read()?;
            return Ok(());
        }
        self.write()?;
        let now = self.now_rfc3339();
        self.kube.delete(&key, &now).map_err(api_err)
    }

    fn list_typed<T: DeserializeOwned>(
        &mut self,
        kind: &str,
        ns: &str,
        selector: &str,
    ) -> Result<Vec<T>, KubeError> {
        self.read()?;
        self.view()
            .list_selected(kind, ns, selector)
            .into_iter()
            .map(typed)
            .collect()
    }
}

#[async_trait]
impl KubeApi for SimPorts {
    async fn get_flink_deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<FlinkDeployment>>, KubeError> {
        self.lock()
            .get_decoded("FlinkDeployment", namespace, name, |w| {
                &mut w.decoded_deployments
            })
    }
    async fn update_flink_deployment_status(
        &self,
        resource: FlinkDeployment,
    ) -> Result<Arc<FlinkDeployment>, KubeError> {
        self.lock().update_deployment_status(resource)
    }
    async fn set_flink_deployment_finalizers(
        &self,
        resource: &FlinkDeployment,
        finalizers: Vec<String>,
    ) -> Result<FlinkDeployment, KubeError> {
        self.lock()
            .set_finalizers_of("FlinkDeployment", to_value(resource), finalizers)
    }
    async fn get_session_job(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<FlinkSessionJob>, KubeError> {
        self.lock()
            .get_decoded("FlinkSessionJob", namespace, name, |w| {
                &mut w.decoded_session_jobs
            })
    }
    async fn list_session_jobs(&self, namespace: &str) -> Result<Vec<FlinkSessionJob>, KubeError> {
        self.lock().list_typed("FlinkSessionJob", namespace, "")
    }
    async fn update_session_job_status(
        &self,
        resource: &FlinkSessionJob,
    ) -> Result<FlinkSessionJob, KubeError> {
        self.lock().update_status_of(
            "FlinkSessionJob",
            &resource.metadata,
            to_value(&resource.status),
            |w| &mut w.decoded_session_jobs,
        )
    }
    async fn set_session_job_finalizers(
        &self,
        resource: &FlinkSessionJob,
        finalizers: Vec<String>,
    ) -> Result<FlinkSessionJob, KubeError> {
        self.lock()
            .set_finalizers_of("FlinkSessionJob", to_value(resource), finalizers)
    }
    async fn get_deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<DeploymentView>>, KubeError> {
        self.lock()
            .get_decoded("Deployment", namespace, name, |w| &mut w.decoded_views)
    }
    async fn apply_deployment(&self, deployment: &Deployment) -> Result<(), KubeError> {
        self.lock().apply_object(to_value(deployment))
    }
    async fn delete_deployment(&self, namespace: &str, name: &str) -> Result<(), KubeError> {
        self.lock().delete_object("Deployment", namespace, name)
    }
    async fn apply_service(&self, service: &Service) -> Result<(), KubeError> {
        self.lock().apply_object(to_value(service))
    }
    async fn delete_service(&self, namespace: &str, name: &str) -> Result<(), KubeError> {
        self.lock().delete_object("Service", namespace, name)
    }
    async fn apply_config_map(&self, config_map: &ConfigMap) -> Result<(), KubeError> {
        self.lock().apply_object(to_value(config_map))
    }
    async fn list_config_maps(
        &self,
        namespace: &str,
        label_selector: &str,
    ) -> Result<Vec<ConfigMap>, KubeError> {
        self.lock()
            .list_typed("ConfigMap", namespace, label_selector)
    }
    async fn delete_config_map(&self, namespace: &str, name: &str) -> Result<(), KubeError> {
        self.lock().delete_object("ConfigMap", namespace, name)
    }
    async fn list_pods(
        &self,
        namespace: &str,
        label_selector: &str,
    ) -> Result<Vec<PodView>, KubeError> {
        self.lock().list_typed("Pod", namespace, label_selector)
    }
    async fn publish_event(&self, event: &EventRecord) -> Result<(), KubeError> {
        let mut w = self.lock();
        w.write()?;
        let now = w.now;
        w.flush_watch();
        w.events.push((now, event.clone()));
        w.journal
            .push((now, crate::world::Journal::Event(event.clone())));
        Ok(())
    }
}

/// Jars in the simulated world: every URI the real parser accepts holds a jar, unless an
/// `artifactFetch` fault says otherwise. The jar's place in the cache is named as the real
/// fetcher would (a digest of the URI, then the file name).
#[async_trait]
impl ArtifactFetcher for SimPorts {
    async fn fetch(&self, request: &ArtifactRequest) -> Result<FetchedJar, ArtifactError> {
        let source = JarSource::parse(&request.uri)?;
        let mut w = self.lock();
        w.counters.artifact_fetches += 1;
        let settings = w.artifact_settings.clone();
        if let JarSource::InImage { .. } = source {
            return Ok(FetchedJar {
                path: settings.placeholder_path().to_string_lossy().to_string(),
                size: flink_operator::artifacts::EMPTY_JAR.len() as u64,
            });
        }
        let uri = redact(&request.uri);
        match w.artifact_failure(&request.uri) {
            None => {}
            Some(ArtifactFailure::NotFound) => return Err(ArtifactError::NotFound { uri }),
            Some(ArtifactFailure::AccessDenied) => {
                return Err(ArtifactError::AccessDenied {
                    uri,
                    message: "403 Forbidden".into(),
                })
            }
            Some(ArtifactFailure::TooLarge) => {
                return Err(ArtifactError::TooLarge {
                    uri,
                    size: settings.max_size + 1,
                    limit: settings.max_size,
                })
            }
            Some(ArtifactFailure::Timeout) => {
                return Err(ArtifactError::Timeout {
                    uri,
                    after: flink_operator::duration::format_duration(settings.timeout),
                })
            }
            Some(ArtifactFailure::Unavailable) => {
                return Err(ArtifactError::Unavailable {
                    uri,
                    message: "connection refused".into(),
                })
            }
        }
        let path = match source {
            JarSource::LocalFile { path } => path,
            _ => settings
                .base_dir
                .join("cache")
                .join(&flink_operator::reconcile::derive_job_id(&request.uri)[..16])
                .join(source.file_name()),
        };
        Ok(FetchedJar {
            path: path.to_string_lossy().to_string(),
            size: 1 << 20,
        })
    }
}

impl Clock for SimPorts {
    fn now_millis(&self) -> i64 {
        self.lock().now
    }
}

impl World {
    /// The cluster behind an endpoint, if its REST API answers now, for a call that may
    /// change it.
    fn rest(&mut self, at: &FlinkEndpoint) -> Result<&mut FlinkCluster, FlinkError> {
        self.rest_answers(at)?;
        // What a call may have changed runs at the next tick.
        self.touch_cluster(&at.namespace, &at.cluster_id);
        self.clusters
            .get_mut(&(at.namespace.clone(), at.cluster_id.clone()))
            .ok_or_else(|| FlinkError::Unavailable(format!("connection refused: {}", at.url)))
    }

    /// The same for a call that only reads: nothing for the next tick to run.
    fn rest_read(&mut self, at: &FlinkEndpoint) -> Result<&FlinkCluster, FlinkError> {
        self.rest_answers(at)?;
        self.clusters
            .get(&(at.namespace.clone(), at.cluster_id.clone()))
            .ok_or_else(|| FlinkError::Unavailable(format!("connection refused: {}", at.url)))
    }

    /// Counts the call; fails it when the operator died or the REST API is down.
    fn rest_answers(&mut self, at: &FlinkEndpoint) -> Result<(), FlinkError> {
        if self.operator_crashed {
            return Err(FlinkError::Unavailable("the operator process died".into()));
        }
        self.counters.flink_requests += 1;
        self.operator_call();
        if self.fault_active(
            FaultKind::RestUnavailable,
            Some((&at.namespace, &at.cluster_id)),
        ) {
            return Err(FlinkError::Unavailable(format!(
                "connect to {} timed out",
                at.url
            )));
        }
        Ok(())
    }
}

/// The fake Flink's REST API, one function per call, each answering the JSON Flink sends (or
/// the error Flink's status code stands for). The in-process [`FlinkApi`] below decodes these
/// answers as every adapter does, and the HTTP server (`crate::flink_http`) sends them as
/// they are: both are the same fake.
impl World {
    /// `GET /overview`.
    pub fn rest_overview(&mut self, at: &FlinkEndpoint) -> Result<Value, FlinkError> {
        Ok(self.rest_read(at)?.overview_json())
    }

    /// `GET /jobs/overview`.
    pub fn rest_jobs_overview(&mut self, at: &FlinkEndpoint) -> Result<Value, FlinkError> {
        let now = self.now;
        Ok(self.rest_read(at)?.jobs_overview_json(now))
    }

    /// `GET /jobs/:jid`: the job's entry of `/jobs/overview` with the detail fields Flink adds
    /// (no vertices or plan: nothing reads them).
    pub fn rest_job(&mut self, at: &FlinkEndpoint, job_id: &str) -> Result<Value, FlinkError> {
        let now = self.now;
        let cluster = self.rest_read(at)?;
        if cluster.job(job_id).is_none() {
            return Err(FlinkError::NotFound(format!("Job {job_id} not found")));
        }
        let overview = cluster.jobs_overview_json(now);
        let mut job = overview["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["jid"] == job_id))
            .cloned()
            .unwrap_or_else(|| json!({}));
        let mut timestamps = serde_json::Map::new();
        if let Some(state) = job["state"].as_str() {
            timestamps.insert(state.to_string(), job["last-modification"].clone());
        }
        job["isStoppable"] = json!(false);
        job["maxParallelism"] = json!(-1);
        job["now"] = json!(now);
        job["timestamps"] = Value::Object(timestamps);
        job["vertices"] = json!([]);
        let counts: serde_json::Map<String, Value> = job["tasks"]
            .as_object()
            .map(|tasks| {
                tasks
                    .iter()
                    .map(|(state, n)| (state.to_ascii_uppercase(), n.clone()))
                    .collect()
            })
            .unwrap_or_default();
        job["status-counts"] = Value::Object(counts);
        job["plan"] = json!({"jid": job_id, "name": job["name"], "type": "STREAMING", "nodes": []});
        Ok(job)
    }

    /// `POST /jars/upload` of the jar named `path` (a path or only a file name: the fake keeps
    /// it to name jobs by).
    pub fn rest_upload_jar(&mut self, at: &FlinkEndpoint, path: &str) -> Result<Value, FlinkError> {
        let id = format!(
            "{}_{}",
            self.rng.hex(8),
            path.rsplit('/').next().unwrap_or(path)
        );
        let cluster = self.rest(at)?;
        cluster.jars.insert(id.clone(), path.to_string());
        Ok(json!({"filename": format!("/tmp/flink-web-upload/{id}"), "status": "success"}))
    }

    /// `POST /jars/:jarid/run`.
    pub fn rest_run_jar(
        &mut self,
        at: &FlinkEndpoint,
        jar_id: &str,
        request: &JarRunRequest,
    ) -> Result<Value, FlinkError> {
        let job_id = request.job_id.clone().unwrap_or_else(|| self.rng.hex(32));
        let app_id = self.rng.hex(32);
        let now = self.now;
        let timing = self.timing();
        let actor = self.current_actor.clone();
        let cluster = self.rest(at)?;
        let jar = cluster
            .jars
            .get(jar_id)
            .cloned()
            .ok_or_else(|| FlinkError::NotFound(format!("Jar file {jar_id} does not exist")))?;
        let restored = match &request.savepoint_path {
            Some(p) if p.contains("/chk-") => crate::flink::RestoredFrom::Checkpoint(p.clone()),
            Some(p) => crate::flink::RestoredFrom::Savepoint(p.clone()),
            None => crate::flink::RestoredFrom::None,
        };
        let name = request
            .entry_class
            .clone()
            .unwrap_or_else(|| jar.rsplit('/').next().unwrap_or(&jar).to_string());
        let owner = actor.clone();
        cluster.submit(
            job_id.clone(),
            name,
            request.parallelism.unwrap_or(1) as i64,
            restored.clone(),
            owner.clone(),
            now,
            &timing,
        );
        // The job's own configuration goes on top of the cluster's, as in Flink.
        if let (Some(job), Some(extra)) = (cluster.jobs.last_mut(), &request.flink_configuration) {
            job.add_config(extra);
        }
        let cluster_key = (cluster.namespace.clone(), cluster.name.clone());
        let parallelism = request.parallelism.unwrap_or(1) as i64;
        self.jobs.push(crate::world::JobRecord {
            owner,
            job_id: job_id.clone(),
            cluster: cluster_key,
            submitted_at: now,
            restored_from: restored,
            parallelism,
            last_state: "INITIALIZING".into(),
            deployment_uid: String::new(),
            operator_initiated: true,
        });
        Ok(json!({"jobid": job_id, "applicationId": app_id}))
    }

    /// `DELETE /jars/:jarid`.
    pub fn rest_delete_jar(
        &mut self,
        at: &FlinkEndpoint,
        jar_id: &str,
    ) -> Result<Value, FlinkError> {
        self.rest(at)?.jars.remove(jar_id);
        Ok(json!({}))
    }

    /// `POST /jobs/:jid/savepoints` (`stop` false), `/stop` (`stop`) or `/checkpoints`
    /// (`checkpoint`): `{"request-id": …}`.
    pub fn rest_trigger(
        &mut self,
        at: &FlinkEndpoint,
        job_id: &str,
        stop: bool,
        checkpoint: bool,
        directory: Option<String>,
    ) -> Result<Value, FlinkError> {
        let done_at = self.now
            + if checkpoint {
                1000
            } else {
                self.settings.savepoint_duration.as_millis() as i64
            };
        let trigger = self.rng.hex(32);
        let mutant = self.mutant;
        let now = self.now;
        let cluster = self.rest(at)?;
        let job = cluster
            .job(job_id)
            .ok_or_else(|| FlinkError::NotFound(format!("Job {job_id} not found")))?;
        if crate::flink::is_terminal(&job.state) {
            return Err(FlinkError::Conflict(format!(
                "Job {job_id} already reached another terminal state"
            )));
        }
        let directory = directory.or_else(|| job.savepoints_dir());
        if stop && !checkpoint && mutant == Some(crate::world::Mutant::SkipUpgradeSavepoint) {
            // The planted bug: no savepoint is taken; the job goes, and what it had is reported.
            let previous = job
                .latest_savepoint
                .as_ref()
                .map(|s| s.path.clone())
                .or_else(|| job.restored_from.path().map(str::to_string));
            let result =
                previous.ok_or_else(|| "java.lang.IllegalStateException: no savepoint".to_string());
            if let Some(job) = cluster.job_mut(job_id) {
                FlinkCluster::set_state(job, "FINISHED", now);
            }
            cluster.operations.insert(
                trigger.clone(),
                Operation {
                    job_id: job_id.into(),
                    done_at,
                    stop,
                    checkpoint,
                    result: Some(result),
                    directory,
                },
            );
            return Ok(json!({"request-id": trigger}));
        }
        cluster.operations.insert(
            trigger.clone(),
            Operation {
                job_id: job_id.into(),
                done_at,
                stop,
                checkpoint,
                result: None,
                directory,
            },
        );
        Ok(json!({"request-id": trigger}))
    }

    /// `GET /jobs/:jid/savepoints/:trigger` and `GET /jobs/:jid/checkpoints/:trigger`.
    pub fn rest_operation(
        &mut self,
        at: &FlinkEndpoint,
        trigger: &str,
    ) -> Result<Value, FlinkError> {
        let cluster = self.rest_read(at)?;
        let op = cluster
            .operations
            .get(trigger)
            .ok_or_else(|| FlinkError::NotFound(format!("Operation {trigger} not found")))?;
        Ok(cluster.operation_json(op))
    }

    /// `GET /jobs/:jid/checkpoints`.
    pub fn rest_checkpoints(
        &mut self,
        at: &FlinkEndpoint,
        job_id: &str,
    ) -> Result<Value, FlinkError> {
        let cluster = self.rest_read(at)?;
        let job = cluster
            .job(job_id)
            .ok_or_else(|| FlinkError::NotFound(format!("Job {job_id} not found")))?;
        Ok(cluster.checkpoints_json(job))
    }

    /// `PATCH /jobs/:jid?mode=cancel`.
    pub fn rest_cancel_job(
        &mut self,
        at: &FlinkEndpoint,
        job_id: &str,
    ) -> Result<Value, FlinkError> {
        let now = self.now;
        let cluster = self.rest(at)?;
        let job = cluster
            .job_mut(job_id)
            .ok_or_else(|| FlinkError::NotFound(format!("Job {job_id} not found")))?;
        if crate::flink::is_terminal(&job.state) {
            return Err(FlinkError::Conflict(format!(
                "Job {job_id} already reached another terminal state"
            )));
        }
        // Flink cancels asynchronously: CANCELLING first, CANCELED a moment later.
        FlinkCluster::set_state(job, "CANCELLING", now);
        job.next_transition = Some((now + 1000, "CANCELED"));
        job.next_checkpoint = None;
        Ok(json!({}))
    }

    /// `GET /jobs/:jid/exceptions`.
    pub fn rest_exceptions(
        &mut self,
        at: &FlinkEndpoint,
        job_id: &str,
    ) -> Result<Value, FlinkError> {
        let cluster = self.rest_read(at)?;
        let job = cluster
            .job(job_id)
            .ok_or_else(|| FlinkError::NotFound(format!("Job {job_id} not found")))?;
        Ok(cluster.exceptions_json(job))
    }

    /// `POST /savepoint-disposal`.
    pub fn rest_dispose_savepoint(
        &mut self,
        at: &FlinkEndpoint,
        path: &str,
    ) -> Result<Value, FlinkError> {
        self.rest(at)?;
        self.disposed.insert(path.to_string());
        Ok(json!({"request-id": self.rng.hex(32)}))
    }

    /// `DELETE /cluster`.
    pub fn rest_shutdown_cluster(&mut self, at: &FlinkEndpoint) -> Result<Value, FlinkError> {
        self.rest(at)?;
        self.remove_cluster(&at.namespace, &at.cluster_id);
        Ok(json!({}))
    }
}

/// The fake Flink in process: every answer is the JSON of the `rest_*` call above, decoded
/// through the port's types.
#[async_trait]
impl FlinkApi for SimPorts {
    async fn overview(&self, at: &FlinkEndpoint) -> Result<ClusterOverview, FlinkError> {
        decode(self.lock().rest_overview(at)?)
    }
    async fn list_jobs(&self, at: &FlinkEndpoint) -> Result<Vec<JobOverview>, FlinkError> {
        // Typed straight from the cluster (the same as decoding `GET /jobs/overview`, which
        // `flink::tests` holds): one of these per steady reconcile.
        Ok(self.lock().rest_read(at)?.jobs_overview())
    }
    async fn upload_jar(&self, at: &FlinkEndpoint, local_path: &str) -> Result<String, FlinkError> {
        let answer: JarUploadResponse = decode(self.lock().rest_upload_jar(at, local_path)?)?;
        Ok(answer.jar_id().to_string())
    }
    async fn run_jar(
        &self,
        at: &FlinkEndpoint,
        jar_id: &str,
        request: &JarRunRequest,
    ) -> Result<JarRunResponse, FlinkError> {
        decode(self.lock().rest_run_jar(at, jar_id, request)?)
    }
    async fn delete_jar(&self, at: &FlinkEndpoint, jar_id: &str) -> Result<(), FlinkError> {
        self.lock().rest_delete_jar(at, jar_id).map(|_| ())
    }
    async fn trigger_savepoint(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        target_directory: Option<String>,
        _format_type: &str,
    ) -> Result<String, FlinkError> {
        let answer = self
            .lock()
            .rest_trigger(at, job_id, false, false, target_directory)?;
        Ok(decode::<TriggerResponse>(answer)?.request_id)
    }
    async fn stop_with_savepoint(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        target_directory: Option<String>,
        _drain: bool,
    ) -> Result<String, FlinkError> {
        let answer = self
            .lock()
            .rest_trigger(at, job_id, true, false, target_directory)?;
        Ok(decode::<TriggerResponse>(answer)?.request_id)
    }
    async fn savepoint_status(
        &self,
        at: &FlinkEndpoint,
        _job_id: &str,
        trigger_id: &str,
    ) -> Result<AsyncOperation, FlinkError> {
        decode(self.lock().rest_operation(at, trigger_id)?)
    }
    async fn trigger_checkpoint(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        _checkpoint_type: &str,
    ) -> Result<String, FlinkError> {
        let answer = self.lock().rest_trigger(at, job_id, false, true, None)?;
        Ok(decode::<TriggerResponse>(answer)?.request_id)
    }
    async fn checkpoint_status(
        &self,
        at: &FlinkEndpoint,
        _job_id: &str,
        trigger_id: &str,
    ) -> Result<AsyncOperation, FlinkError> {
        decode(self.lock().rest_operation(at, trigger_id)?)
    }
    async fn checkpoints(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
    ) -> Result<CheckpointStatistics, FlinkError> {
        decode(self.lock().rest_checkpoints(at, job_id)?)
    }
    async fn cancel_job(&self, at: &FlinkEndpoint, job_id: &str) -> Result<(), FlinkError> {
        self.lock().rest_cancel_job(at, job_id).map(|_| ())
    }
    async fn exceptions(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
    ) -> Result<JobExceptions, FlinkError> {
        decode(self.lock().rest_exceptions(at, job_id)?)
    }
    async fn dispose_savepoint(
        &self,
        at: &FlinkEndpoint,
        path: &str,
    ) -> Result<String, FlinkError> {
        let answer = self.lock().rest_dispose_savepoint(at, path)?;
        Ok(decode::<TriggerResponse>(answer)?.request_id)
    }
    async fn shutdown_cluster(&self, at: &FlinkEndpoint) -> Result<(), FlinkError> {
        self.lock().rest_shutdown_cluster(at).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::block_on;
    use crate::scenario::ClusterSettings;

    fn ports_with(manifest: Value) -> SimPorts {
        let mut world = World::new(1, ClusterSettings::default());
        world.kube.create(manifest, "2026-01-01T00:00:00Z").unwrap();
        SimPorts {
            world: Arc::new(Mutex::new(world)),
        }
    }

    fn read(ports: &SimPorts) -> FlinkDeployment {
        (*block_on(ports.get_flink_deployment("default", "app"))
            .unwrap()
            .unwrap())
        .clone()
    }

    /// The kept decoding serves only the resourceVersion it was made at: a change by anyone
    /// else is read, a status write's answer is what the next read returns, a removal is seen.
    #[test]
    fn kept_decodings_follow_every_write() {
        let ports = ports_with(json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "metadata": {"name": "app", "namespace": "default"},
            "spec": {"image": "flink:2.2", "job": {"jarURI": "local:///a.jar", "parallelism": 1}}
        }));
        let first = read(&ports);
        assert_eq!(
            to_value(&read(&ports)),
            to_value(&first),
            "an unchanged resource reads the same"
        );

        // A user's spec change goes around the operator's port.
        {
            let mut w = ports.lock();
            let key = key_of("FlinkDeployment", "default", "app");
            let mut changed = w.kube.get(&key).unwrap().clone();
            changed["spec"]["job"]["parallelism"] = json!(3);
            w.kube.update(changed, None).unwrap();
        }
        let second = read(&ports);
        assert_eq!(second.spec.job.as_ref().unwrap().parallelism, Some(3));
        assert_eq!(
            ports.lock().decoded_deployments.len(),
            1,
            "a newer version's decoding replaces the older one"
        );
        assert_ne!(
            second.metadata.resource_version,
            first.metadata.resource_version
        );

        // The operator's status write: its answer and the next read agree with the store.
        let mut desired = second.clone();
        desired.status = Some(flink_operator::crd::FlinkDeploymentStatus {
            error: Some("written".into()),
            ..Default::default()
        });
        let answer = block_on(ports.update_flink_deployment_status(desired)).unwrap();
        let third = read(&ports);
        assert_eq!(to_value(&third), to_value(&*answer));
        assert_eq!(third.status.unwrap().error.as_deref(), Some("written"));
        let stored: FlinkDeployment = {
            let w = ports.lock();
            typed(
                w.kube
                    .get(&key_of("FlinkDeployment", "default", "app"))
                    .unwrap(),
            )
            .unwrap()
        };
        assert_eq!(to_value(&*answer), to_value(&stored));

        // Gone is gone.
        {
            let mut w = ports.lock();
            let key = key_of("FlinkDeployment", "default", "app");
            w.kube.delete(&key, "2026-01-01T00:01:00Z").unwrap();
        }
        assert!(block_on(ports.get_flink_deployment("default", "app"))
            .unwrap()
            .is_none());
        assert_eq!(ports.lock().decoded_deployments.len(), 0);
    }
}
