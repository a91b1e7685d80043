//! The real `flink-operator run` binary against `flink-sim serve --external-operator`: the
//! simulated world's Kubernetes API and its JobManagers' REST APIs on one loopback port, the
//! operator a child process with a kubeconfig of its own, and kubectl driving it as a user
//! would (apply, patch, delete). Then two replicas with leader election: one holds the
//! Lease and reconciles, the other waits; killed with SIGKILL, the holder's lease expires
//! and the other takes over.
//!
//! The operator's timers are wall-clock while the world runs at `SPEED` times the wall clock,
//! so the operator gets short intervals (a reconcile every 2 s, progress checks every 1 s).
//! The binary is `$FLINK_OPERATOR_BIN`, else `flink-operator` next to this test's target
//! directory (built with `cargo build --bin flink-operator` if missing); kubectl is
//! `$FLINK_SIM_KUBECTL`, else `/usr/bin/kubectl`, else `kubectl` on the PATH. Every wait is a
//! bounded poll with a generous limit; no timing is asserted beyond those limits.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flink_sim::flink_http::{HttpFault, Served};
use flink_sim::serve::{flink_url, start, ServeHandle, ServeOptions};
use serde_json::Value;

/// How long any state may take to show up (wall time).
const LIMIT: Duration = Duration::from_secs(120);
/// Virtual time per wall time in the world.
const SPEED: f64 = 5.0;

const OPERATOR_CONFIG: &str = "\
kubernetes.operator.reconcile.interval: 2s
kubernetes.operator.observer.progress-check.interval: 1s
kubernetes.operator.observer.rest-ready.delay: 1s
kubernetes.operator.dynamic.config.enabled: false
";

const LEADER_ELECTION: &str = "\
kubernetes.operator.leader-election.enabled: true
kubernetes.operator.leader-election.lease-name: flink-operator-lease
kubernetes.operator.leader-election.lease-duration: 3s
kubernetes.operator.leader-election.renew-deadline: 2s
kubernetes.operator.leader-election.retry-period: 500ms
";

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

/// The newest modification time of the files under `path`.
fn newest(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter_map(|e| newest(&e.path()))
        .max()
}

/// The operator binary: `$FLINK_OPERATOR_BIN`, or `flink-operator` in this test's target
/// directory (`cargo test --workspace` builds it), built there first when it is missing or
/// older than the operator's sources.
fn operator_binary() -> PathBuf {
    if let Ok(p) = std::env::var("FLINK_OPERATOR_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test knows where it is");
    // target/<profile>/deps/<this test>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let binary = profile_dir.join("flink-operator");
    static BUILT: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sources = ["src", "Cargo.toml", "Cargo.lock"]
        .iter()
        .filter_map(|p| newest(&root.join(p)))
        .max();
    let stale = match (
        std::fs::metadata(&binary).and_then(|m| m.modified()),
        sources,
    ) {
        (Ok(built_at), Some(changed)) => built_at < changed,
        _ => true,
    };
    if stale && !*built {
        let target_dir = profile_dir.parent().expect("a target directory");
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo
            .args([
                "build",
                "--quiet",
                "--bin",
                "flink-operator",
                "--target-dir",
            ])
            .arg(target_dir)
            .current_dir(&root);
        if profile_dir.file_name().and_then(|n| n.to_str()) == Some("release") {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("cargo runs");
        assert!(status.success(), "cargo build --bin flink-operator failed");
        *built = true;
    }
    assert!(binary.exists(), "{} is missing", binary.display());
    binary
}

static DIRS: AtomicUsize = AtomicUsize::new(0);

/// The served world (no operator inside), and a kubectl that talks only to it.
struct World {
    started: Instant,
    handle: Option<ServeHandle>,
    addr: SocketAddr,
    dir: PathBuf,
    kubeconfig: PathBuf,
}

impl Drop for World {
    fn drop(&mut self) {
        drop(self.handle.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl World {
    fn start() -> Self {
        let (addr, handle) = start(ServeOptions {
            speed: SPEED,
            install_crds: true,
            external_operator: true,
            ..Default::default()
        })
        .expect("the server starts");
        let dir = std::env::temp_dir().join(format!(
            "flink-sim-external-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, flink_sim::serve::kubeconfig(addr)).unwrap();
        World {
            started: Instant::now(),
            handle: Some(handle),
            addr,
            dir,
            kubeconfig,
        }
    }

    fn handle(&self) -> &ServeHandle {
        self.handle.as_ref().unwrap()
    }

    /// Says how far the test got (shown when it fails, or with --nocapture).
    fn step(&self, what: &str) {
        eprintln!("{:7.1}s {what}", self.started.elapsed().as_secs_f64());
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(kubectl_binary())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .env("HOME", &self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}); set FLINK_SIM_KUBECTL to a kubectl binary",
                    kubectl_binary().display()
                )
            })
    }

    /// kubectl ARGS, which must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn json(&self, args: &[&str]) -> Result<Value, String> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.kubectl(&all);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).to_string());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
    }

    /// A configuration file for an operator.
    fn config(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Starts `flink-operator run` with `config`; `pod` names the replica (POD_NAME).
    fn operator(&self, config: &Path, pod: &str, flink_url: &str) -> Operator {
        let log = self.dir.join(format!("{pod}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(operator_binary())
            .args(["run", "--config"])
            .arg(config)
            .args([
                "--flink-url",
                flink_url,
                "--metrics-address",
                "127.0.0.1:0",
                "--log-format",
                "text",
            ])
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &self.dir)
            .env("POD_NAME", pod)
            .env("POD_NAMESPACE", "default")
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("the operator starts");
        let mut op = Operator {
            name: pod.to_string(),
            child: Some(child),
            log,
            metrics: None,
        };
        let metrics = wait_for(&format!("{pod} serves /metrics"), || {
            op.exited()?;
            metrics_address(&op.log_text()).ok_or_else(|| op.log_text())
        });
        op.metrics = Some(metrics);
        wait_for(&format!("{pod} is ready (its watches listed)"), || {
            op.exited()?;
            match http_get(metrics, "/readyz") {
                Some((200, _)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
        op
    }

    /// Waits until basic-example is STABLE and RUNNING with `generation` observed.
    fn wait_stable(&self, generation: i64, operators: &mut [&mut Operator]) -> Value {
        wait_for(&format!("STABLE at generation {generation}"), || {
            for op in operators.iter_mut() {
                op.exited()?;
            }
            let d = self.json(&["get", "flinkdeployment", "basic-example"])?;
            let status = &d["status"];
            let stable = status["lifecycleState"] == "STABLE"
                && status["jobStatus"]["state"] == "RUNNING"
                && d["metadata"]["generation"] == generation
                && status["observedGeneration"] == generation;
            if stable {
                Ok(d)
            } else {
                Err(format!(
                    "generation {}, status {}",
                    d["metadata"]["generation"], d["status"]
                ))
            }
        })
    }

    fn lease_holder(&self) -> Result<(String, i64), String> {
        let lease = self.json(&["get", "lease", "flink-operator-lease", "-n", "default"])?;
        let holder = lease["spec"]["holderIdentity"]
            .as_str()
            .ok_or_else(|| format!("no holder: {lease}"))?;
        Ok((
            holder.to_string(),
            lease["spec"]["leaseTransitions"].as_i64().unwrap_or(0),
        ))
    }
}

/// A running `flink-operator run`; killed when dropped.
struct Operator {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    metrics: Option<SocketAddr>,
}

impl Operator {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Err (with its log) if the process has ended.
    fn exited(&mut self) -> Result<(), String> {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => Ok(()),
            Some(Ok(Some(status))) => {
                panic!("{} exited ({status}):\n{}", self.name, self.log_text())
            }
            _ => Err(format!("{} is not running", self.name)),
        }
    }

    /// SIGKILL: no chance to release the lease.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `flink_operator_reconciles_total`, all kinds and outcomes.
    fn reconciles(&self) -> u64 {
        let (code, body) = http_get(self.metrics.unwrap(), "/metrics")
            .unwrap_or_else(|| panic!("{} does not answer /metrics", self.name));
        assert_eq!(code, 200, "{body}");
        body.lines()
            .filter(|l| l.starts_with("flink_operator_reconciles_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- {} log ----\n{}",
                self.name,
                tail(&self.log_text(), 80)
            );
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Without the terminal's colour codes.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The address of the line `serving /metrics, /healthz, /readyz local=127.0.0.1:PORT`.
fn metrics_address(log: &str) -> Option<SocketAddr> {
    let log = plain(log);
    let line = log.lines().find(|l| l.contains("serving /metrics"))?;
    let at = line.split("local=").nth(1)?;
    at.split_whitespace().next()?.parse().ok()
}

/// A plain HTTP/1.1 GET: the status code and body, None if nothing answers.
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// Polls `observe` until it gives Ok, or fails after LIMIT with the last observation.
fn wait_for<T>(what: &str, mut observe: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match observe() {
            Ok(v) => return v,
            Err(last) if start.elapsed() > LIMIT => {
                panic!("{what}: not within {LIMIT:?}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The `--flink-url` of the operators: one URL for every cluster, `{namespace}` and `{name}`
/// filled in by the operator's REST client.
fn operator_flink_url(addr: SocketAddr) -> String {
    flink_url(addr, "{namespace}", "{name}")
}

#[test]
fn the_real_operator_takes_basic_example_to_stable_through_an_upgrade_to_deletion() {
    let w = World::start();
    let config = w.config("operator.yaml", OPERATOR_CONFIG);
    let mut op = w.operator(&config, "flink-operator-0", &operator_flink_url(w.addr));
    w.step("operator started");

    let applied = w.ok(&["apply", "-f", basic_yaml().to_str().unwrap()]);
    w.step("applied");
    assert_eq!(
        applied.trim(),
        "flinkdeployment.flink.apache.org/basic-example created"
    );
    let d = w.wait_stable(1, &mut [&mut op]);
    w.step("STABLE");
    assert_eq!(d["status"]["jobManagerDeploymentStatus"], "READY");
    assert_eq!(
        d["metadata"]["finalizers"][0],
        "flinkdeployments.flink.apache.org/finalizer"
    );

    // What the operator made, by server-side apply under its field manager.
    let jm = w
        .json(&[
            "get",
            "deployment",
            "basic-example",
            "--show-managed-fields",
        ])
        .unwrap();
    assert_eq!(
        jm["metadata"]["managedFields"][0]["manager"],
        flink_operator::adapters::kube::FIELD_MANAGER
    );
    assert_eq!(
        jm["metadata"]["ownerReferences"][0]["kind"],
        "FlinkDeployment"
    );
    let services = w.ok(&["get", "services", "-o", "name"]);
    assert!(
        services.contains("service/basic-example-rest"),
        "{services}"
    );
    // It reached the JobManager over HTTP, under /flink/default/basic-example/.
    let log = w.handle().flink().log();
    assert!(
        log.iter()
            .any(|r| r.path.starts_with("/jobs") && r.status == Some(200)),
        "{log:?}"
    );
    // Its events, through events.k8s.io/v1, and as `kubectl get events` shows them.
    let events = w.json(&["get", "events.v1.events.k8s.io"]).unwrap();
    let submit = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reason"] == "Submit")
        .unwrap_or_else(|| panic!("no Submit event: {events}"));
    assert_eq!(submit["regarding"]["name"], "basic-example");
    assert_eq!(submit["reportingInstance"], "flink-operator-0");
    let table = w.ok(&["get", "events"]);
    assert!(
        table.contains("Submit") && table.contains("flinkdeployment/basic-example"),
        "{table}"
    );

    // An upgrade: a new generation, observed, STABLE again, the job at the new parallelism.
    w.ok(&[
        "patch",
        "flinkdeployment",
        "basic-example",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"job":{"parallelism":4}}}"#,
    ]);
    w.step("patched");
    let d = w.wait_stable(2, &mut [&mut op]);
    w.step("STABLE again");
    assert_eq!(d["spec"]["job"]["parallelism"], 4);
    {
        let world = w.handle().world();
        let world = world.lock().unwrap();
        let job = world
            .newest_job("FlinkDeployment/default/basic-example")
            .expect("a job was submitted");
        assert_eq!(
            job.parallelism, 4,
            "the running job has the new parallelism"
        );
        assert_eq!(
            world.running_instances("FlinkDeployment/default/basic-example"),
            1
        );
    }
    assert!(op.reconciles() > 0);

    // Deletion: the operator's finalizer runs, the object goes, and what it owned with it.
    let out = w.ok(&[
        "delete",
        "flinkdeployment",
        "basic-example",
        "--timeout=90s",
    ]);
    w.step("deleted");
    assert_eq!(
        out.trim(),
        "flinkdeployment.flink.apache.org \"basic-example\" deleted"
    );
    wait_for("the cluster's objects are gone", || {
        op.exited()?;
        let left = w.ok(&[
            "get",
            "flinkdeployments,deployments,pods,services,configmaps",
            "-o",
            "name",
        ]);
        if left.trim().is_empty() {
            Ok(())
        } else {
            Err(left)
        }
    });
    op.exited().unwrap();
}

#[test]
fn of_two_replicas_only_the_lease_holder_reconciles_and_the_other_takes_over_when_it_dies() {
    let w = World::start();
    let config = w.config(
        "operator.yaml",
        &format!("{OPERATOR_CONFIG}{LEADER_ELECTION}"),
    );
    let url = operator_flink_url(w.addr);
    let mut a = w.operator(&config, "flink-operator-a", &url);
    w.step("replica a started");
    let mut b = w.operator(&config, "flink-operator-b", &url);
    w.step("replica b started");

    let (holder, _) = wait_for("a replica holds the lease", || {
        a.exited()?;
        b.exited()?;
        w.lease_holder()
    });
    w.step(&format!("{holder} holds the lease"));
    assert!(
        holder == "flink-operator-a" || holder == "flink-operator-b",
        "{holder}"
    );
    let table = w.ok(&["get", "leases"]);
    assert!(
        table.contains("HOLDER") && table.contains(&format!("flink-operator-lease   {holder}")),
        "{table}"
    );

    w.ok(&["apply", "-f", basic_yaml().to_str().unwrap()]);
    w.step("applied");
    w.wait_stable(1, &mut [&mut a, &mut b]);
    w.step("STABLE");
    let (mut leader, mut standby) = if holder == "flink-operator-a" {
        (a, b)
    } else {
        (b, a)
    };
    // Still the same holder, and only it has reconciled anything.
    assert_eq!(w.lease_holder().unwrap().0, leader.name);
    assert!(leader.reconciles() > 0, "the holder reconciled");
    assert_eq!(standby.reconciles(), 0, "the standby did nothing");

    // SIGKILL: the lease is not released; it expires and the standby takes it.
    let (_, transitions) = w.lease_holder().unwrap();
    leader.kill();
    w.step(&format!("{} killed", leader.name));
    let (new_holder, new_transitions) = wait_for("the standby takes the lease", || {
        standby.exited()?;
        match w.lease_holder()? {
            (h, t) if h == standby.name => Ok((h, t)),
            (h, _) => Err(format!("held by {h}")),
        }
    });
    w.step(&format!("{new_holder} holds the lease"));
    assert_eq!(new_holder, standby.name);
    assert!(new_transitions > transitions, "{new_transitions}");
    // It takes up, unprompted, what came due while it waited (kept in its queue, not dropped).
    wait_for("the new leader reconciles before any change", || {
        standby.exited()?;
        match standby.reconciles() {
            0 => Err("no reconcile yet".to_string()),
            n => Ok(n),
        }
    });
    w.step("the new leader reconciled");

    // The new leader reconciles: a spec change goes through.
    w.ok(&[
        "patch",
        "flinkdeployment",
        "basic-example",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"job":{"parallelism":3}}}"#,
    ]);
    w.step("patched");
    let d = w.wait_stable(2, &mut [&mut standby]);
    w.step("STABLE again");
    assert_eq!(d["spec"]["job"]["parallelism"], 3);
    assert!(standby.reconciles() > 0, "the new leader reconciled");
    {
        let world = w.handle().world();
        let world = world.lock().unwrap();
        let job = world
            .newest_job("FlinkDeployment/default/basic-example")
            .unwrap();
        assert_eq!(job.parallelism, 3);
        assert_eq!(
            world.running_instances("FlinkDeployment/default/basic-example"),
            1
        );
    }
}

/// Two deployments; then one's JobManager stops answering (it holds every request, and the
/// operator's REST timeout is set beyond the test). The operator reconciles several resources
/// at once (`kubernetes.operator.reconcile.parallelism`), so the other deployment's spec change
/// goes through while that call hangs; and it never runs two reconciles of one resource at
/// once, so the hung JobManager sees one request, not one per reconcile interval. A loop that
/// reconciles one resource at a time would wait on the hung call for the whole test.
#[test]
fn a_jobmanager_that_never_answers_holds_up_no_other_deployment() {
    let w = World::start();
    let config = w.config(
        "operator.yaml",
        &format!("{OPERATOR_CONFIG}kubernetes.operator.flink.client.timeout: 1h\n"),
    );
    let mut op = w.operator(&config, "flink-operator-0", &operator_flink_url(w.addr));
    let basic = std::fs::read_to_string(basic_yaml()).unwrap();
    let other = w.config(
        "other.yaml",
        &basic.replace("name: basic-example", "name: other-example"),
    );
    w.ok(&["apply", "-f", basic_yaml().to_str().unwrap()]);
    w.ok(&["apply", "-f", other.to_str().unwrap()]);
    w.step("applied two deployments");
    let stable = |name: &str, generation: i64, op: &mut Operator| {
        wait_for(&format!("{name} STABLE at generation {generation}"), || {
            op.exited()?;
            let d = w.json(&["get", "flinkdeployment", name])?;
            let status = &d["status"];
            match status["lifecycleState"] == "STABLE"
                && status["jobStatus"]["state"] == "RUNNING"
                && status["observedGeneration"] == generation
            {
                true => Ok(d),
                false => Err(format!("status {status}")),
            }
        })
    };
    stable("basic-example", 1, &mut op);
    stable("other-example", 1, &mut op);
    w.step("both STABLE");

    let flink = w.handle().flink();
    flink.inject(
        http::Method::GET,
        "default/basic-example/",
        HttpFault::Hang,
        u32::MAX,
    );
    let held = |log: &[Served]| {
        log.iter()
            .filter(|r| r.cluster == "default/basic-example" && r.status.is_none())
            .count()
    };
    wait_for("basic-example's JobManager holds a request", || {
        op.exited()?;
        match held(&flink.log()) {
            0 => Err("none yet".to_string()),
            n => Ok(n),
        }
    });
    w.step("basic-example's reconcile hangs on its JobManager");

    w.ok(&[
        "patch",
        "flinkdeployment",
        "other-example",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"job":{"parallelism":3}}}"#,
    ]);
    let d = stable("other-example", 2, &mut op);
    w.step("other-example upgraded while basic-example's call hangs");
    assert_eq!(d["spec"]["job"]["parallelism"], 3);
    let log = flink.log();
    assert_eq!(
        held(&log),
        1,
        "one reconcile of basic-example at a time: {log:?}"
    );
    assert!(
        log.iter()
            .any(|r| r.cluster == "default/other-example" && r.status == Some(200)),
        "{log:?}"
    );
}
