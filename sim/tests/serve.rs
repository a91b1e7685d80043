//! `flink-sim serve` driven by the real `kubectl`: the simulated world's API started
//! in-process on a free port at 50x speed, and kubectl pointed at it through a kubeconfig of
//! its own (in a temporary directory, with its own HOME and discovery cache), so it never
//! touches any other cluster.
//!
//! kubectl is `$FLINK_SIM_KUBECTL`, else `/usr/bin/kubectl`, else `kubectl` on the PATH. Every
//! wait is a bounded poll with a generous limit; nothing depends on timing beyond that.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flink_sim::serve::{start, ServeHandle, ServeOptions};
use serde_json::Value;

/// How long any state may take to show up (wall time; at 50x the world needs well under a
/// second for each of them).
const LIMIT: Duration = Duration::from_secs(90);

fn kubectl_binary() -> PathBuf {
    if let Ok(p) = std::env::var("FLINK_SIM_KUBECTL") {
        return PathBuf::from(p);
    }
    let default = Path::new("/usr/bin/kubectl");
    if default.exists() {
        return default.to_path_buf();
    }
    PathBuf::from("kubectl")
}

fn basic_yaml() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/examples/basic.yaml")
}

/// A server and a kubectl that talks only to it.
struct Cluster {
    handle: Option<ServeHandle>,
    dir: PathBuf,
    kubeconfig: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        drop(self.handle.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static DIRS: AtomicUsize = AtomicUsize::new(0);

impl Cluster {
    fn start(options: ServeOptions) -> Self {
        let (addr, handle) = start(options).expect("the server starts");
        let dir = std::env::temp_dir().join(format!(
            "flink-sim-serve-test-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, flink_sim::serve::kubeconfig(addr)).unwrap();
        Cluster {
            handle: Some(handle),
            dir,
            kubeconfig,
        }
    }

    fn fast() -> Self {
        Cluster::start(ServeOptions {
            speed: 50.0,
            ..Default::default()
        })
    }

    fn handle(&self) -> &ServeHandle {
        self.handle.as_ref().unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(kubectl_binary());
        c.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .env("HOME", &self.dir)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); set FLINK_SIM_KUBECTL to a kubectl binary",
                kubectl_binary().display()
            )
        });
        if let Some(text) = input {
            let mut stdin = child.stdin.take().unwrap();
            let text = text.to_string();
            // Written from a thread: kubectl may answer before it has read everything.
            std::thread::spawn(move || {
                let _ = stdin.write_all(text.as_bytes());
            });
        }
        child.wait_with_output().unwrap()
    }

    /// kubectl ARGS, which must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, None)
    }

    fn ok_with(&self, args: &[&str], input: Option<&str>) -> String {
        let out = self.run(args, input);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// kubectl ARGS, which must fail; its stderr.
    fn fails(&self, args: &[&str], input: Option<&str>) -> String {
        let out = self.run(args, input);
        assert!(
            !out.status.success(),
            "kubectl {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).to_string()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("kubectl prints JSON")
    }

    fn raw(&self, path: &str) -> Value {
        serde_json::from_str(&self.ok(&["get", "--raw", path])).expect("the API answers JSON")
    }

    fn install_crds(&self) {
        let out = self.ok_with(
            &["apply", "-f", "-"],
            Some(&flink_operator::crd::crds_yaml()),
        );
        assert!(
            out.contains("flinkdeployments.flink.apache.org created"),
            "{out}"
        );
        assert!(
            out.contains("flinksessionjobs.flink.apache.org created"),
            "{out}"
        );
    }

    /// Polls `observe` until it gives Some, or fails after LIMIT with the last observation.
    fn wait_for<T>(&self, what: &str, mut observe: impl FnMut() -> Result<T, String>) -> T {
        let start = Instant::now();
        loop {
            match observe() {
                Ok(v) => return v,
                Err(last) if start.elapsed() > LIMIT => {
                    panic!("{what}: not within {LIMIT:?}; last seen: {last}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn deployment(&self) -> Result<Value, String> {
        let out = self.run(
            &["get", "flinkdeployment", "basic-example", "-o", "json"],
            None,
        );
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).to_string());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
    }

    /// Waits until the FlinkDeployment is STABLE with `generation` observed.
    fn wait_stable(&self, generation: i64) -> Value {
        self.wait_for(&format!("STABLE at generation {generation}"), || {
            let d = self.deployment()?;
            let status = &d["status"];
            let stable = status["lifecycleState"] == "STABLE"
                && status["jobStatus"]["state"] == "RUNNING"
                && d["metadata"]["generation"] == generation
                && status["observedGeneration"] == generation;
            if stable {
                Ok(d)
            } else {
                Err(format!(
                    "generation {} {}",
                    d["metadata"]["generation"], d["status"]
                ))
            }
        })
    }
}

/// A background `kubectl get -w`: its lines as they come.
struct Watch {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Watch {
    fn start(cluster: &Cluster, args: &[&str]) -> Self {
        let mut child = cluster
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl starts");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Watch { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A table row of `kubectl get` as its columns.
fn columns(line: &str) -> Vec<String> {
    line.split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn kubectl_takes_a_flink_deployment_from_apply_to_stable_through_an_upgrade_to_deletion() {
    let c = Cluster::fast();

    // Before the CRDs are installed, the server does not know the type.
    let err = c.fails(&["get", "flinkdeployments"], None);
    assert!(
        err.contains("the server doesn't have a resource type"),
        "{err}"
    );

    // `flink-operator crd | kubectl apply -f -`.
    c.install_crds();
    let crd = c.json(&["get", "crd", "flinkdeployments.flink.apache.org"]);
    assert_eq!(crd["status"]["conditions"][1]["type"], "Established");
    assert_eq!(
        c.ok(&["get", "flinkdeployments"]).trim(),
        "",
        "no resources yet (the message goes to stderr)"
    );

    let watch = Watch::start(&c, &["get", "flinkdeployments", "-w"]);
    c.wait_for("kubectl get -w is watching", || {
        match c.handle().open_watches() {
            0 => Err("no watch yet".to_string()),
            _ => Ok(()),
        }
    });
    let applied = c.ok(&["apply", "-f", basic_yaml().to_str().unwrap()]);
    assert_eq!(
        applied.trim(),
        "flinkdeployment.flink.apache.org/basic-example created"
    );

    let d = c.wait_stable(1);
    assert_eq!(d["status"]["jobManagerDeploymentStatus"], "READY");
    assert_eq!(
        d["metadata"]["finalizers"][0],
        "flinkdeployments.flink.apache.org/finalizer"
    );

    // The CRD's printer columns.
    let table = c.ok(&["get", "flinkdeployments"]);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(
        columns(rows[0]),
        ["NAME", "JOB STATUS", "LIFECYCLE STATE"],
        "{table}"
    );
    assert_eq!(
        columns(rows[1]),
        ["basic-example", "RUNNING", "STABLE"],
        "{table}"
    );
    let yaml = c.ok(&["get", "flinkdeployment", "basic-example", "-o", "yaml"]);
    assert!(yaml.contains("lifecycleState: STABLE"), "{yaml}");
    assert!(yaml.contains("kind: FlinkDeployment"), "{yaml}");

    // The watch printed the header, then rows as the status moved, up to STABLE.
    let seen = c.wait_for("the watch shows STABLE", || {
        let lines = watch.lines();
        let stable = lines
            .iter()
            .any(|l| columns(l) == ["basic-example", "RUNNING", "STABLE"]);
        if stable && lines.len() >= 3 {
            Ok(lines)
        } else {
            Err(format!("{lines:?}"))
        }
    });
    assert_eq!(
        columns(&seen[0]),
        ["NAME", "JOB STATUS", "LIFECYCLE STATE"],
        "{seen:?}"
    );
    assert!(
        seen[1..].iter().all(|l| l.starts_with("basic-example")),
        "{seen:?}"
    );
    // Every status write is a row: the lifecycle went CREATED, then DEPLOYED, then STABLE.
    let states: Vec<String> = seen[1..]
        .iter()
        .map(|l| columns(l))
        .filter(|c| c.len() >= 2)
        .map(|c| c.last().unwrap().clone())
        .collect();
    let position = |s: &str| states.iter().position(|x| x == s);
    let (created, deployed, stable) = (
        position("CREATED"),
        position("DEPLOYED"),
        position("STABLE"),
    );
    assert!(
        created.is_some() && created < deployed && deployed < stable,
        "{seen:?}"
    );
    drop(watch);

    // Kubernetes Events from the operator, and the cluster it made.
    let events = c.json(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=basic-example",
    ]);
    let reasons: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"Submit"), "{reasons:?}");
    let deployments = c.ok(&["get", "deployments", "-o", "name"]);
    assert_eq!(deployments.trim(), "deployment.apps/basic-example");

    // An upgrade by patch goes through: a new generation, observed, STABLE again.
    let patched = c.ok(&[
        "patch",
        "flinkdeployment",
        "basic-example",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"job":{"parallelism":4}}}"#,
    ]);
    assert_eq!(
        patched.trim(),
        "flinkdeployment.flink.apache.org/basic-example patched"
    );
    let d = c.wait_stable(2);
    assert_eq!(d["spec"]["job"]["parallelism"], 4);
    assert!(d["status"]["reconciliationStatus"]["lastReconciledSpec"]
        .as_str()
        .unwrap()
        .contains(r#""parallelism":4"#));
    {
        let world = c.handle().world();
        let w = world.lock().unwrap();
        let job = w
            .newest_job("FlinkDeployment/default/basic-example")
            .expect("a job was submitted");
        assert_eq!(
            job.parallelism, 4,
            "the running job has the new parallelism"
        );
    }

    // Re-applying the edited file is an upgrade too.
    let edited = std::fs::read_to_string(basic_yaml())
        .unwrap()
        .replace("parallelism: 2", "parallelism: 3");
    let out = c.ok_with(&["apply", "-f", "-"], Some(&edited));
    assert_eq!(
        out.trim(),
        "flinkdeployment.flink.apache.org/basic-example configured"
    );
    let d = c.wait_stable(3);
    assert_eq!(d["spec"]["job"]["parallelism"], 3);

    // Deletion runs the finalizer (the operator's cleanup) and the object goes, with what it
    // owned. kubectl waits for it to be gone.
    let out = c.ok(&[
        "delete",
        "flinkdeployment",
        "basic-example",
        "--timeout=90s",
    ]);
    assert_eq!(
        out.trim(),
        "flinkdeployment.flink.apache.org \"basic-example\" deleted"
    );
    let err = c.fails(&["get", "flinkdeployment", "basic-example"], None);
    assert!(
        err.contains(r#"flinkdeployments.flink.apache.org "basic-example" not found"#),
        "{err}"
    );
    c.wait_for("the cluster's objects are gone", || {
        let left = c.ok(&["get", "deployments,pods,services,configmaps", "-o", "name"]);
        if left.trim().is_empty() {
            Ok(())
        } else {
            Err(left)
        }
    });
    c.wait_for("the operator's Cleanup event", || {
        let events = c.json(&["get", "events"]);
        let cleaned = events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "Cleanup");
        if cleaned {
            Ok(())
        } else {
            Err(events.to_string())
        }
    });
}

#[test]
fn api_errors_come_back_as_kubernetes_status_objects() {
    let c = Cluster::start(ServeOptions {
        speed: 50.0,
        install_crds: true,
        ..Default::default()
    });
    c.ok(&["apply", "-f", basic_yaml().to_str().unwrap()]);

    // 404 NotFound, for an object and for a path.
    let err = c.fails(&["get", "flinkdeployment", "nope"], None);
    assert!(
        err.contains(
            r#"Error from server (NotFound): flinkdeployments.flink.apache.org "nope" not found"#
        ),
        "{err}"
    );
    let err = c.fails(&["get", "--raw", "/apis/nope.example.com/v1/things"], None);
    assert!(err.contains("(NotFound)"), "{err}");

    // 409 AlreadyExists.
    let err = c.fails(&["create", "-f", basic_yaml().to_str().unwrap()], None);
    assert!(
        err.contains(r#"(AlreadyExists)"#) && err.contains(r#""basic-example" already exists"#),
        "{err}"
    );

    // 409 Conflict: a replace with a stale resourceVersion.
    let mut stale = c.json(&["get", "flinkdeployment", "basic-example"]);
    c.ok(&["label", "flinkdeployment", "basic-example", "touched=yes"]);
    stale["spec"]["job"]["parallelism"] = serde_json::json!(3);
    let err = c.fails(&["replace", "-f", "-"], Some(&stale.to_string()));
    assert!(
        err.contains("(Conflict)") && err.contains("the object has been modified"),
        "{err}"
    );

    // 422 Invalid: the CRD's schema says parallelism is an integer.
    let bad = std::fs::read_to_string(basic_yaml())
        .unwrap()
        .replace("parallelism: 2", "parallelism: two")
        .replace("basic-example", "bad-example");
    let err = c.fails(&["apply", "-f", "-"], Some(&bad));
    assert!(
        err.contains(r#"The FlinkDeployment "bad-example" is invalid: spec.job.parallelism"#),
        "{err}"
    );

    // 400 BadRequest: an unknown field under kubectl's default strict validation; pruned
    // without it.
    let unknown = std::fs::read_to_string(basic_yaml())
        .unwrap()
        .replace("  image: flink:2.2", "  image: flink:2.2\n  imagee: typo")
        .replace("basic-example", "typo-example");
    let err = c.fails(&["apply", "-f", "-"], Some(&unknown));
    assert!(
        err.contains(r#"strict decoding error: unknown field "spec.imagee""#),
        "{err}"
    );
    c.ok_with(&["apply", "--validate=false", "-f", "-"], Some(&unknown));
    let pruned = c.json(&["get", "flinkdeployment", "typo-example"]);
    assert!(pruned["spec"].get("imagee").is_none(), "{pruned}");
    assert_eq!(pruned["spec"]["image"], "flink:2.2");

    // 415: custom resources take no strategic merge patch (kubectl's default patch type).
    let err = c.fails(
        &[
            "patch",
            "flinkdeployment",
            "basic-example",
            "-p",
            r#"{"spec":{"job":{"parallelism":3}}}"#,
        ],
        None,
    );
    assert!(err.contains("strategic merge patch"), "{err}");

    // 405: POST to an object's path.
    let err = c.fails(
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/configmaps/x",
            "-f",
            "-",
        ],
        Some(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#),
    );
    assert!(err.contains("(MethodNotAllowed)"), "{err}");

    // 404 for content in a namespace that does not exist; 403 for deleting `default`.
    let err = c.fails(&["create", "configmap", "x", "-n", "nowhere"], None);
    assert!(err.contains(r#"namespaces "nowhere" not found"#), "{err}");
    let err = c.fails(&["delete", "namespace", "default"], None);
    assert!(err.contains("(Forbidden)"), "{err}");
}

#[test]
fn built_in_types_namespaces_status_and_server_side_apply() {
    let c = Cluster::start(ServeOptions {
        speed: 50.0,
        install_crds: true,
        ..Default::default()
    });

    // Typed kubectl commands (protobuf bodies) and label selectors.
    c.ok(&["create", "namespace", "team"]);
    c.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "team",
        "--from-literal=a=1",
    ]);
    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"applied","namespace":"team","labels":{"app":"x"}},"data":{"k":"1"}}"#;
    c.ok_with(&["apply", "-f", "-"], Some(cm));
    let out = c.ok_with(
        &["apply", "-f", "-"],
        Some(&cm.replace(r#""k":"1""#, r#""k":"2""#)),
    );
    assert_eq!(out.trim(), "configmap/applied configured");
    let listed = c.json(&["get", "configmaps", "-n", "team", "-l", "app=x"]);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["data"]["k"], "2");
    let table = c.ok(&["get", "configmaps", "-n", "team"]);
    assert_eq!(
        columns(table.lines().next().unwrap()),
        ["NAME", "DATA", "AGE"]
    );

    // Server-side apply creates, then merges over what is stored.
    let sj = std::fs::read_to_string(basic_yaml())
        .unwrap()
        .replace("basic-example", "ssa-example");
    let out = c.ok_with(&["apply", "--server-side", "-f", "-"], Some(&sj));
    assert_eq!(
        out.trim(),
        "flinkdeployment.flink.apache.org/ssa-example serverside-applied"
    );
    let out = c.ok_with(
        &["apply", "--server-side", "-f", "-"],
        Some(&sj.replace("parallelism: 2", "parallelism: 5")),
    );
    assert_eq!(
        out.trim(),
        "flinkdeployment.flink.apache.org/ssa-example serverside-applied"
    );
    let d = c.json(&["get", "flinkdeployment", "ssa-example"]);
    assert_eq!(d["spec"]["job"]["parallelism"], 5);
    assert_eq!(d["metadata"]["generation"], 2);

    // The status subresource: written through /status, ignored through the main resource.
    let through_status = c.json(&[
        "patch",
        "flinkdeployment",
        "ssa-example",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"error":"written by the test"}}"#,
    ]);
    assert_eq!(through_status["status"]["error"], "written by the test");
    let through_main = c.json(&[
        "patch",
        "flinkdeployment",
        "ssa-example",
        "--type=merge",
        "-p",
        r#"{"status":{"error":"not through the main resource"}}"#,
    ]);
    assert_ne!(
        through_main["status"]["error"],
        "not through the main resource"
    );
    // PUT of /status (`kubectl replace --subresource=status`) with the resourceVersion read;
    // the operator writes status too, so a conflict means: read again and retry.
    let replaced = c.wait_for("a status replace without conflict", || {
        let mut current = c.json(&["get", "flinkdeployment", "ssa-example"]);
        current["status"]["error"] = serde_json::json!("put by the test");
        let out = c.run(
            &[
                "replace",
                "--subresource=status",
                "-f",
                "-",
                "-o",
                "jsonpath={.status.error}",
            ],
            Some(&current.to_string()),
        );
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).to_string()),
            false if stderr.contains("(Conflict)") => Err(stderr),
            false => panic!("kubectl replace --subresource=status failed: {stderr}"),
        }
    });
    assert_eq!(replaced, "put by the test");
    let raw = c.raw(
        "/apis/flink.apache.org/v1beta1/namespaces/default/flinkdeployments/ssa-example/status",
    );
    assert_eq!(raw["kind"], "FlinkDeployment");

    // Deleting a namespace deletes what is in it, then the namespace.
    c.ok(&["delete", "namespace", "team", "--timeout=90s"]);
    let err = c.fails(&["get", "namespace", "team"], None);
    assert!(err.contains(r#"namespaces "team" not found"#), "{err}");
    let left = c.ok(&["get", "configmaps", "-A", "-o", "name"]);
    assert!(
        !left.contains("settings") && !left.contains("applied"),
        "{left}"
    );
}

#[test]
fn watches_resume_from_a_resource_version_and_expire_past_the_history() {
    let c = Cluster::start(ServeOptions {
        speed: 50.0,
        history: 20,
        ..Default::default()
    });
    let list = c.raw("/api/v1/namespaces/default/configmaps");
    let from: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    c.ok(&["create", "configmap", "w", "--from-literal=a=1"]);
    c.ok(&["label", "configmap", "w", "step=two"]);
    c.ok(&["create", "configmap", "other", "--from-literal=a=1"]);
    c.ok(&["delete", "configmap", "w"]);

    // Everything after `from`, for one name, then the stream ends at its timeout.
    let out = c.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={from}&fieldSelector=metadata.name%3Dw&timeoutSeconds=1"),
    ]);
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"], "{out}");
    assert_eq!(events[1]["object"]["metadata"]["labels"]["step"], "two");
    let rvs: Vec<u64> = events
        .iter()
        .map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        rvs.windows(2).all(|w| w[0] < w[1]) && rvs[0] > from,
        "{rvs:?}"
    );

    // A label selector; and without a resourceVersion, the current state comes first.
    let out = c.ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/configmaps?watch=true&labelSelector=step%3Dtwo&timeoutSeconds=1",
    ]);
    assert_eq!(out.trim(), "", "w is gone, nothing else has the label");
    let out = c.ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1",
    ]);
    let first: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["metadata"]["name"], "other");

    // Past the kept history (20 changes), a watch from an old resourceVersion gets 410 Gone.
    for i in 0..25 {
        c.ok(&[
            "label",
            "configmap",
            "other",
            &format!("n={i}"),
            "--overwrite",
        ]);
    }
    let out = c.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={from}&timeoutSeconds=1"),
    ]);
    let event: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(event["type"], "ERROR", "{out}");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");
}
