//! Validation: every upstream example is valid; each manifest of the invalid corpus gets exactly
//! one clear problem naming the field (or the line and column); the semantic and spec-change
//! rules through the library API; `flink-operator validate` exit codes and robustness.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use flink_operator::crd::{FlinkDeployment, FlinkDeploymentSpec, FlinkSessionJob};
use flink_operator::validation::{
    effective_service_account, validate_deployment, validate_manifest_bytes,
    validate_manifest_files, validate_manifest_text, validate_session_job, Problem,
};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flink-operator"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

fn examples() -> Vec<PathBuf> {
    yaml_files(&root().join("../shared/examples"))
}

fn no_defaults() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn defaults(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A valid application deployment, as YAML, to change one thing at a time.
const APP: &str = "
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: app
  namespace: flink
spec:
  image: flink:2.3
  flinkVersion: v2_3
  flinkConfiguration:
    state.checkpoints.dir: file:///cp
    state.savepoints.dir: file:///sp
  jobManager:
    resource: {memory: 2048m, cpu: 1}
  taskManager:
    resource: {memory: 2048m, cpu: 1}
  job:
    jarURI: local:///opt/flink/job.jar
    parallelism: 2
    upgradeMode: savepoint
";

const SESSION: &str = "
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: session
  namespace: flink
spec:
  flinkVersion: v2_3
  jobManager:
    resource: {memory: 2g, cpu: 1}
  taskManager:
    resource: {memory: 2g, cpu: 1}
";

const SESSION_JOB: &str = "
apiVersion: flink.apache.org/v1beta1
kind: FlinkSessionJob
metadata:
  name: job
  namespace: flink
spec:
  deploymentName: session
  job:
    jarURI: https://repo.example.com/job.jar
    parallelism: 2
    upgradeMode: stateless
";

fn deployment(yaml: &str) -> FlinkDeployment {
    serde_saphyr::from_str(yaml).unwrap()
}

fn session_job(yaml: &str) -> FlinkSessionJob {
    serde_saphyr::from_str(yaml).unwrap()
}

/// `path: message` of each problem.
fn shown(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

fn paths(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.path.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// Examples and the invalid corpus.

#[test]
fn every_upstream_example_is_valid() {
    let files = examples();
    assert!(files.len() >= 8, "{files:?}");
    // All together through the binary (session jobs meet their session clusters)…
    let out = bin().arg("validate").args(&files).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.ends_with(&format!(
            "{} files, 10 resources, 0 problems\n",
            files.len()
        )),
        "{stdout}"
    );
    // …and one by one through the library.
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let problems = validate_manifest_text(&file.display().to_string(), &text);
        assert!(problems.is_empty(), "{}: {problems:#?}", file.display());
    }
}

#[test]
fn invalid_manifests_are_refused_with_one_problem_naming_the_field() {
    let corpus = yaml_files(&root().join("tests/fixtures/invalid"));
    assert!(corpus.len() >= 40, "{}", corpus.len());
    insta::glob!("fixtures/invalid/*.yaml", |path| {
        let name = format!(
            "tests/fixtures/invalid/{}",
            path.file_name().unwrap().to_string_lossy()
        );
        let bytes = std::fs::read(path).unwrap();
        let report = validate_manifest_bytes(&[(name.as_str(), bytes.as_slice())]);
        let expected = if name.ends_with("other-kinds-only.yaml") {
            0
        } else {
            1
        };
        assert_eq!(report.problems().count(), expected, "{report}");
        insta::assert_snapshot!(report.to_string());
    });
}

#[test]
fn the_binary_prints_what_the_library_reports() {
    for fixture in [
        "unknown-nested-field.yaml",
        "yaml-syntax.yaml",
        "other-kinds-only.yaml",
    ] {
        let relative = format!("tests/fixtures/invalid/{fixture}");
        let out = bin()
            .current_dir(root())
            .args(["validate", &relative])
            .output()
            .unwrap();
        let text = std::fs::read_to_string(root().join(&relative)).unwrap();
        let report = validate_manifest_files(&[(relative.as_str(), text.as_str())]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), report.to_string());
        let code = if report.is_valid() { 0 } else { 1 };
        assert_eq!(out.status.code(), Some(code), "{relative}");
    }
}

#[test]
fn one_line_per_problem_in_the_documented_format() {
    let out = bin()
        .current_dir(root())
        .args([
            "validate",
            "tests/fixtures/invalid/unknown-nested-field.yaml",
            "tests/fixtures/invalid/yaml-syntax.yaml",
            "tests/fixtures/invalid/other-kinds-only.yaml",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout,
        "tests/fixtures/invalid/unknown-nested-field.yaml: FlinkDeployment/bad: spec.podTemplate.spec.containers[0].imagee: unknown field (did you mean image?)\n\
         tests/fixtures/invalid/yaml-syntax.yaml:7:15: illegal placement of ':' indicator\n\
         tests/fixtures/invalid/other-kinds-only.yaml: note: document 1 (v1 ConfigMap) skipped: not a FlinkDeployment or FlinkSessionJob\n\
         3 files, 1 resources, 2 problems\n"
    );
}

// ---------------------------------------------------------------------------------------------
// Exit codes and robustness.

#[test]
fn unreadable_files_and_usage_are_exit_2() {
    let out = bin()
        .args([
            "validate",
            root()
                .join("../shared/examples/basic.yaml")
                .to_str()
                .unwrap(),
            "/no/such/file.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.yaml"));
    assert!(out.stdout.is_empty());
    let dir = bin()
        .args(["validate", root().join("tests").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(dir.status.code(), Some(2), "a directory is not a file");
    for args in [&["validate"][..], &["frobnicate"], &[], &["crd", "extra"]] {
        let out = bin().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
    }
}

#[test]
fn garbage_never_panics_the_binary() {
    let inputs: [&[u8]; 10] = [
        b"",
        b"---\n---\n",
        b"\x00\x01\x02\xff",
        b"apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\n",
        b"apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata: 3\nspec: []\n",
        b"apiVersion: flink.apache.org/v1beta1\nkind: FlinkSessionJob\nmetadata: {name: x}\nspec: {job: {parallelism: -1}, deploymentName: 7}\n",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        b"a: &x [*x]\n",
        b"42\n",
        b"kind: FlinkDeployment\nspec: {jobManager: {resources: {requests: {cpu: [1]}}}}\n",
    ];
    let dir = std::env::temp_dir().join(format!("flink-operator-garbage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let file = dir.join(format!("g{i}.yaml"));
        std::fs::write(&file, input).unwrap();
        files.push(file);
    }
    let deep = dir.join("deep.yaml");
    std::fs::write(&deep, "[".repeat(200_000)).unwrap();
    files.push(deep);
    let out = bin().arg("validate").args(&files).output().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("g2.yaml: not a text file"), "{stdout}");
    assert!(stdout.contains("11 files"), "{stdout}");
}

#[test]
fn truncated_and_mangled_examples_never_panic() {
    // Every example cut short at many points, and with characters swapped for YAML
    // punctuation: the validator must answer, not panic.
    let mut checked = 0;
    for file in examples() {
        let text = std::fs::read_to_string(&file).unwrap();
        let boundaries: Vec<usize> = (0..text.len())
            .step_by(23)
            .filter(|i| text.is_char_boundary(*i))
            .collect();
        for &cut in &boundaries {
            validate_manifest_text("cut.yaml", &text[..cut]);
            for swap in [":", "-", "[", "{", "\"", "&a", "*a", "\t", "!!"] {
                let mangled = format!("{}{swap}{}", &text[..cut], &text[cut..]);
                validate_manifest_text("mangled.yaml", &mangled);
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "{checked}");
}

// ---------------------------------------------------------------------------------------------
// Semantic rules through the library.

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let text = APP
        .replace("name: app", "name: App")
        .replace("flinkVersion: v2_3", "flinkVersion: v1_14")
        .replace(
            "state.checkpoints.dir: file:///cp",
            "kubernetes.namespace: other",
        )
        .replace("parallelism: 2", "parallelism: 0")
        .replace(
            "{memory: 2048m, cpu: 1}\n  taskManager",
            "{memory: lots, cpu: 0}\n  taskManager",
        );
    let problems = validate_deployment(&deployment(&text), None, &no_defaults());
    assert_eq!(
        paths(&problems),
        vec![
            "metadata.name",
            "spec.flinkVersion",
            "spec.flinkConfiguration.kubernetes.namespace",
            "spec.job.upgradeMode",
            "spec.job.parallelism",
            "spec.jobManager.resource.cpu",
            "spec.jobManager.resource.memory",
        ],
        "{problems:#?}"
    );
}

#[test]
fn the_base_manifests_are_valid() {
    assert_eq!(
        validate_deployment(&deployment(APP), None, &no_defaults()),
        vec![]
    );
    assert_eq!(
        validate_deployment(&deployment(SESSION), None, &no_defaults()),
        vec![]
    );
    let job = session_job(SESSION_JOB);
    assert_eq!(
        validate_session_job(&job, Some(&deployment(SESSION)), None, &no_defaults()),
        vec![]
    );
    assert_eq!(
        validate_session_job(&job, None, None, &no_defaults()),
        vec![]
    );
}

#[test]
fn service_account_is_optional_and_defaults_to_flink() {
    let fd = deployment(APP);
    assert_eq!(fd.spec.service_account, None);
    assert_eq!(effective_service_account(&fd.spec), "flink");
    let named = deployment(&APP.replace(
        "  image: flink:2.3",
        "  image: flink:2.3\n  serviceAccount: jobs",
    ));
    assert_eq!(effective_service_account(&named.spec), "jobs");
}

#[test]
fn names_follow_the_upstream_rule() {
    for (name, ok) in [
        ("a", true),
        ("basic-example", true),
        (&"a".repeat(45)[..], true),
        (&"a".repeat(46)[..], false),
        ("1abc", false),
        ("abc-", false),
        ("ab.c", false),
        ("Abc", false),
    ] {
        let fd = deployment(&APP.replace("name: app", &format!("name: '{name}'")));
        let problems = validate_deployment(&fd, None, &no_defaults());
        assert_eq!(problems.is_empty(), ok, "{name}: {problems:?}");
    }
}

#[test]
fn supported_flink_versions() {
    for (version, ok) in [
        ("v1_13", false),
        ("v1_14", false),
        ("v1_15", true),
        ("v1_18", true),
        ("v1_20", true),
        ("v2_4", true),
    ] {
        let fd = deployment(&APP.replace("v2_3", version));
        assert_eq!(
            validate_deployment(&fd, None, &no_defaults()).is_empty(),
            ok,
            "{version}"
        );
    }
}

#[test]
fn high_availability_from_either_key_or_the_operator_defaults() {
    let rollback = APP.replace(
        "state.savepoints.dir: file:///sp",
        "state.savepoints.dir: file:///sp\n    kubernetes.operator.deployment.rollback.enabled: \"true\"",
    );
    let fd = deployment(&rollback);
    assert_eq!(
        paths(&validate_deployment(&fd, None, &no_defaults())),
        vec!["spec.flinkConfiguration.kubernetes.operator.deployment.rollback.enabled"]
    );
    for ha in [
        "high-availability.type: kubernetes",
        "high-availability: zookeeper",
        "high-availability.type: org.example.MyHaServicesFactory",
    ] {
        let with_ha = rollback.replace(
            "state.checkpoints.dir: file:///cp",
            &format!("state.checkpoints.dir: file:///cp\n    {ha}"),
        );
        assert_eq!(
            validate_deployment(&deployment(&with_ha), None, &no_defaults()),
            vec![],
            "{ha}"
        );
    }
    let operator_ha = defaults(&[("high-availability.type", "kubernetes")]);
    assert_eq!(validate_deployment(&fd, None, &operator_ha), vec![]);
    let none = rollback.replace(
        "state.checkpoints.dir: file:///cp",
        "state.checkpoints.dir: file:///cp\n    high-availability.type: NONE",
    );
    assert_eq!(
        validate_deployment(&deployment(&none), None, &operator_ha).len(),
        1
    );
    // Standby JobManagers need HA too.
    let standby = APP.replace(
        "cpu: 1}\n  taskManager",
        "cpu: 1}\n    replicas: 2\n  taskManager",
    );
    assert_eq!(
        paths(&validate_deployment(
            &deployment(&standby),
            None,
            &no_defaults()
        )),
        vec!["spec.jobManager.replicas"]
    );
    assert_eq!(
        validate_deployment(&deployment(&standby), None, &operator_ha),
        vec![]
    );
}

#[test]
fn parallelism_is_not_needed_when_taskmanager_replicas_are_set() {
    let no_parallelism = APP.replace("    parallelism: 2\n", "");
    assert_eq!(
        shown(&validate_deployment(
            &deployment(&no_parallelism),
            None,
            &no_defaults()
        )),
        vec!["spec.job.parallelism: must be set (at least 1), or spec.taskManager.replicas"]
    );
    let replicas = no_parallelism.replace(
        "resource: {memory: 2048m, cpu: 1}\n  job",
        "resource: {memory: 2048m, cpu: 1}\n    replicas: 3\n  job",
    );
    assert_eq!(
        validate_deployment(&deployment(&replicas), None, &no_defaults()),
        vec![]
    );
    // A session cluster has no job: neither is needed.
    assert_eq!(
        validate_deployment(&deployment(SESSION), None, &no_defaults()),
        vec![]
    );
}

#[test]
fn memory_may_come_from_flink_configuration_or_resources() {
    let bare = APP.replace(
        "    resource: {memory: 2048m, cpu: 1}\n",
        "    resource: {cpu: 1}\n",
    );
    assert_eq!(
        paths(&validate_deployment(
            &deployment(&bare),
            None,
            &no_defaults()
        )),
        vec![
            "spec.jobManager.resource.memory",
            "spec.taskManager.resource.memory"
        ]
    );
    let in_config = bare.replace(
        "state.savepoints.dir: file:///sp",
        "state.savepoints.dir: file:///sp\n    jobmanager.memory.process.size: 1600m\n    taskmanager.memory.flink.size: 1g",
    );
    assert_eq!(
        validate_deployment(&deployment(&in_config), None, &no_defaults()),
        vec![]
    );
    let operator = defaults(&[
        ("jobmanager.memory.process.size", "1600m"),
        ("taskmanager.memory.process.size", "1728m"),
    ]);
    assert_eq!(
        validate_deployment(&deployment(&bare), None, &operator),
        vec![]
    );
    let limits = bare.replace(
        "    resource: {cpu: 1}\n  taskManager",
        "    resources: {limits: {memory: 2Gi, cpu: \"1\"}}\n  taskManager",
    );
    assert_eq!(
        paths(&validate_deployment(
            &deployment(&limits),
            None,
            &no_defaults()
        )),
        vec!["spec.taskManager.resource.memory"]
    );
}

#[test]
fn resource_requirements_are_parsed_and_compared() {
    let with = |jm: &str| {
        let text = APP.replace(
            "    resource: {memory: 2048m, cpu: 1}\n  taskManager",
            &format!("    resources: {jm}\n  taskManager"),
        );
        shown(&validate_deployment(
            &deployment(&text),
            None,
            &no_defaults(),
        ))
    };
    assert_eq!(
        with("{requests: {memory: 2048m, cpu: 500m}, limits: {memory: 2Gi, cpu: \"1\"}}"),
        Vec::<String>::new(),
        "2048m is a Flink size (2 GiB), equal to the 2Gi limit"
    );
    assert_eq!(
        with("{requests: {cpu: \"2\", memory: 1g}, limits: {cpu: 1500m}}"),
        vec!["spec.jobManager.resources.requests.cpu: request 2 must not exceed the limit 1500m"]
    );
    assert_eq!(
        with("{requests: {memory: 3g}, limits: {memory: 2Gi}}"),
        vec!["spec.jobManager.resources.requests.memory: request 3g must not exceed the limit 2Gi"]
    );
    assert_eq!(
        with("{requests: {memory: 1g, cpu: \"0\", ephemeral-storage: \"-1Gi\"}}"),
        vec![
            "spec.jobManager.resources.requests.cpu: '0' must be greater than 0",
            "spec.jobManager.resources.requests.ephemeral-storage: '-1Gi' must not be negative",
        ]
    );
    assert_eq!(
        with("{requests: {memory: 0Mi}}"),
        vec!["spec.jobManager.resources.requests.memory: '0Mi' must be a positive memory size"]
    );
}

#[test]
fn ingress_templates_render_with_name_and_namespace() {
    let ingress = |template: &str| {
        let text = APP.replace(
            "  image: flink:2.3",
            &format!("  image: flink:2.3\n  ingress:\n    template: \"{template}\""),
        );
        validate_deployment(&deployment(&text), None, &no_defaults())
    };
    assert_eq!(ingress("{{name}}.{{namespace}}.flink.k8s.io"), vec![]);
    assert_eq!(ingress("/{{namespace}}/{{name}}(/|$)(.*)"), vec![]);
    assert_eq!(
        shown(&ingress("{{name}}.{{ns}}.example.com")),
        vec!["spec.ingress.template: unknown placeholder {{ns}} (use {{name}} and {{namespace}})"]
    );
    assert_eq!(paths(&ingress("")), vec!["spec.ingress.template"]);
    assert_eq!(
        paths(&ingress("bad_host.example.com")),
        vec!["spec.ingress.template"]
    );
}

#[test]
fn autoscaler_metric_window_against_the_reconcile_interval() {
    let autoscaler = |extra: &str, operator: &BTreeMap<String, String>| {
        let text = APP.replace(
            "state.savepoints.dir: file:///sp",
            &format!(
                "state.savepoints.dir: file:///sp\n    job.autoscaler.enabled: \"true\"{extra}"
            ),
        );
        shown(&validate_deployment(&deployment(&text), None, operator))
    };
    // Default window 15 min, default reconcile interval 1 min.
    assert_eq!(autoscaler("", &no_defaults()), Vec::<String>::new());
    assert_eq!(
        autoscaler("\n    job.autoscaler.metrics.window: 5m", &no_defaults()),
        Vec::<String>::new()
    );
    let slow = defaults(&[("kubernetes.operator.reconcile.interval", "10 min")]);
    assert_eq!(
        autoscaler("\n    job.autoscaler.metrics.window: 5m", &slow),
        vec!["spec.flinkConfiguration.job.autoscaler.metrics.window: the autoscaler metric window (5min) must not be shorter than the reconcile interval (kubernetes.operator.reconcile.interval = 10min): the autoscaler needs two samples per window"]
    );
    assert_eq!(
        autoscaler("\n    kubernetes.operator.reconcile.interval: 30s\n    job.autoscaler.metrics.window: 20s", &slow).len(),
        1,
        "the spec's reconcile interval overrides the operator's"
    );
    assert_eq!(
        autoscaler("\n    job.autoscaler.metrics.window: soon", &no_defaults()).len(),
        1
    );
    assert_eq!(
        autoscaler("\n    job.autoscaler.utilization.target: \"1.5\"", &no_defaults()),
        vec!["spec.flinkConfiguration.job.autoscaler.utilization.target: 1.5 is out of range: must be within [0, 1]"]
    );
}

#[test]
fn health_check_requires_deployment_recovery() {
    let text = APP.replace(
        "state.savepoints.dir: file:///sp",
        "state.savepoints.dir: file:///sp\n    kubernetes.operator.cluster.health-check.enabled: \"true\"",
    );
    assert_eq!(
        validate_deployment(&deployment(&text), None, &no_defaults()),
        vec![],
        "recovery is on by default"
    );
    let off = defaults(&[(
        "kubernetes.operator.jm-deployment-recovery.enabled",
        "false",
    )]);
    assert_eq!(
        paths(&validate_deployment(&deployment(&text), None, &off)),
        vec!["spec.flinkConfiguration.kubernetes.operator.cluster.health-check.enabled"]
    );
}

#[test]
fn savepoint_directory_rules() {
    let stateless = APP
        .replace("upgradeMode: savepoint", "upgradeMode: stateless")
        .replace("    state.savepoints.dir: file:///sp\n", "");
    assert_eq!(
        validate_deployment(&deployment(&stateless), None, &no_defaults()),
        vec![]
    );
    let periodic = defaults(&[("kubernetes.operator.periodic.savepoint.interval", "1h")]);
    assert_eq!(
        paths(&validate_deployment(
            &deployment(&stateless),
            None,
            &periodic
        )),
        vec!["spec.flinkConfiguration.kubernetes.operator.periodic.savepoint.interval"]
    );
    let disabled = defaults(&[("kubernetes.operator.periodic.savepoint.interval", "0")]);
    assert_eq!(
        validate_deployment(&deployment(&stateless), None, &disabled),
        vec![]
    );
    let redeploy = APP.replace(
        "upgradeMode: savepoint",
        "upgradeMode: savepoint\n    savepointRedeployNonce: 1\n    initialSavepointPath: file:///sp/savepoint-1",
    );
    assert_eq!(
        validate_deployment(&deployment(&redeploy), None, &no_defaults()),
        vec![]
    );
}

// ---------------------------------------------------------------------------------------------
// Session jobs.

#[test]
fn session_jobs_are_checked_against_their_session_cluster() {
    let session = deployment(SESSION);
    let savepoint_job =
        session_job(&SESSION_JOB.replace("upgradeMode: stateless", "upgradeMode: savepoint"));
    // Without the cluster, the configuration-dependent rules cannot be judged.
    assert_eq!(
        validate_session_job(&savepoint_job, None, None, &no_defaults()),
        vec![]
    );
    assert_eq!(
        paths(&validate_session_job(
            &savepoint_job,
            Some(&session),
            None,
            &no_defaults()
        )),
        vec!["spec.job.upgradeMode", "spec.job.upgradeMode"]
    );
    // Directories from the session cluster's configuration count…
    let configured = deployment(&SESSION.replace(
        "  flinkVersion: v2_3",
        "  flinkVersion: v2_3\n  flinkConfiguration:\n    state.checkpoints.dir: file:///cp\n    state.savepoints.dir: file:///sp",
    ));
    assert_eq!(
        validate_session_job(&savepoint_job, Some(&configured), None, &no_defaults()),
        vec![]
    );
    // …and so do the job's own.
    let own = session_job(&SESSION_JOB.replace(
        "  deploymentName: session",
        "  deploymentName: session\n  flinkConfiguration:\n    state.checkpoints.dir: file:///cp\n    state.savepoints.dir: file:///sp",
    ).replace("upgradeMode: stateless", "upgradeMode: savepoint"));
    assert_eq!(
        validate_session_job(&own, Some(&session), None, &no_defaults()),
        vec![]
    );
    // An application deployment is no session cluster.
    let app = deployment(&APP.replace("name: app", "name: session"));
    assert_eq!(
        shown(&validate_session_job(
            &session_job(SESSION_JOB),
            Some(&app),
            None,
            &no_defaults()
        )),
        vec!["spec.deploymentName: session is an application deployment, not a session cluster"]
    );
}

#[test]
fn session_job_required_fields() {
    let missing = session_job(
        "apiVersion: flink.apache.org/v1beta1\nkind: FlinkSessionJob\nmetadata: {name: j}\nspec: {}\n",
    );
    assert_eq!(
        paths(&validate_session_job(&missing, None, None, &no_defaults())),
        vec!["spec.deploymentName", "spec.job"]
    );
    let no_parallelism = session_job(&SESSION_JOB.replace("    parallelism: 2\n", ""));
    assert_eq!(
        paths(&validate_session_job(
            &no_parallelism,
            None,
            None,
            &no_defaults()
        )),
        vec!["spec.job.parallelism"]
    );
}

#[test]
fn session_job_jar_uri_rules() {
    let jar = |uri: &str, operator: &BTreeMap<String, String>| {
        let job = session_job(&SESSION_JOB.replace("https://repo.example.com/job.jar", uri));
        shown(&validate_session_job(&job, None, None, operator))
    };
    assert_eq!(
        jar("https://repo.example.com:8443/a/job.jar", &no_defaults()),
        Vec::<String>::new()
    );
    assert_eq!(
        jar("s3://bucket/job.jar", &no_defaults()),
        vec!["spec.job.jarURI: scheme 's3' is not allowed (allowed: https; see kubernetes.operator.user.artifacts.allowed-schemes)"]
    );
    let s3 = defaults(&[(
        "kubernetes.operator.user.artifacts.allowed-schemes",
        "https;s3",
    )]);
    assert_eq!(jar("s3://bucket/job.jar", &s3), Vec::<String>::new());
    assert_eq!(
        jar("/opt/job.jar", &no_defaults()),
        vec!["spec.job.jarURI: '/opt/job.jar' must include a scheme (e.g. https://)"]
    );
    assert_eq!(
        jar("https://127.0.0.1/job.jar", &no_defaults()),
        vec!["spec.job.jarURI: host '127.0.0.1' is a restricted address (see kubernetes.operator.user.artifacts.disallow-restricted-hosts)"]
    );
    let open = defaults(&[(
        "kubernetes.operator.user.artifacts.disallow-restricted-hosts",
        "false",
    )]);
    assert_eq!(
        jar("https://localhost/job.jar", &open),
        Vec::<String>::new()
    );
}

#[test]
fn a_session_job_meets_its_cluster_across_files() {
    let unconfigured_job = SESSION_JOB.replace("upgradeMode: stateless", "upgradeMode: last-state");
    // Alone, the job cannot be judged on its cluster's configuration: a note says so.
    let alone = validate_manifest_files(&[("job.yaml", &unconfigured_job)]);
    assert!(alone.is_valid(), "{alone}");
    assert_eq!(alone.notes().count(), 1, "{alone}");
    // With the session cluster in another file, it can.
    let together =
        validate_manifest_files(&[("session.yaml", SESSION), ("job.yaml", &unconfigured_job)]);
    assert_eq!(
        together.problems().map(ToString::to_string).collect::<Vec<_>>(),
        vec!["job.yaml: FlinkSessionJob/job: spec.job.upgradeMode: last-state upgrades need checkpoints: set state.checkpoints.dir in flinkConfiguration"]
    );
    // A cluster of the same name in another namespace is not it.
    let elsewhere = SESSION.replace("namespace: flink", "namespace: other");
    let apart = validate_manifest_files(&[
        ("session.yaml", &elsewhere),
        ("job.yaml", &unconfigured_job),
    ]);
    assert!(apart.is_valid(), "{apart}");
}

// ---------------------------------------------------------------------------------------------
// Spec changes against the last reconciled spec.

fn spec(yaml: &str) -> FlinkDeploymentSpec {
    deployment(yaml).spec
}

#[test]
fn cannot_switch_between_session_and_application() {
    let to_app = validate_deployment(
        &deployment(&APP.replace("name: app", "name: session")),
        Some(&spec(SESSION)),
        &no_defaults(),
    );
    assert_eq!(paths(&to_app), vec!["spec.job"]);
    assert!(to_app[0]
        .message
        .contains("session cluster to an application"));
    let to_session = validate_deployment(&deployment(SESSION), Some(&spec(APP)), &no_defaults());
    assert_eq!(paths(&to_session), vec!["spec.job"]);
    assert!(to_session[0]
        .message
        .contains("application deployment to a session"));
    assert_eq!(
        validate_deployment(&deployment(APP), Some(&spec(APP)), &no_defaults()),
        vec![]
    );
}

#[test]
fn cannot_switch_between_native_and_standalone() {
    let standalone = APP.replace(
        "  image: flink:2.3",
        "  image: flink:2.3\n  mode: standalone",
    );
    let native = APP.replace("  image: flink:2.3", "  image: flink:2.3\n  mode: native");
    assert_eq!(
        shown(&validate_deployment(
            &deployment(&standalone),
            Some(&spec(APP)),
            &no_defaults()
        )),
        vec![
            "spec.mode: cannot switch from native to standalone mode; create a new FlinkDeployment"
        ]
    );
    assert_eq!(
        paths(&validate_deployment(
            &deployment(APP),
            Some(&spec(&standalone)),
            &no_defaults()
        )),
        vec!["spec.mode"]
    );
    // No mode is native.
    assert_eq!(
        validate_deployment(&deployment(&native), Some(&spec(APP)), &no_defaults()),
        vec![]
    );
}

#[test]
fn cannot_change_flink_version_while_suspended_in_last_state() {
    let suspended = |mode: &str| {
        spec(&APP.replace(
            "upgradeMode: savepoint",
            &format!("upgradeMode: {mode}\n    state: suspended"),
        ))
    };
    let upgraded = |mode: &str| {
        deployment(
            &APP.replace("v2_3", "v2_4")
                .replace("upgradeMode: savepoint", &format!("upgradeMode: {mode}")),
        )
    };
    assert_eq!(
        paths(&validate_deployment(
            &upgraded("last-state"),
            Some(&suspended("last-state")),
            &no_defaults()
        )),
        vec!["spec.flinkVersion"]
    );
    assert_eq!(
        paths(&validate_deployment(
            &upgraded("savepoint"),
            Some(&suspended("last-state")),
            &no_defaults()
        )),
        vec!["spec.flinkVersion"]
    );
    // Allowed: a stateless restart, a job suspended with a savepoint, a running job.
    assert_eq!(
        validate_deployment(
            &upgraded("stateless"),
            Some(&suspended("last-state")),
            &no_defaults()
        ),
        vec![]
    );
    assert_eq!(
        validate_deployment(
            &upgraded("last-state"),
            Some(&suspended("savepoint")),
            &no_defaults()
        ),
        vec![]
    );
    let running = spec(&APP.replace("upgradeMode: savepoint", "upgradeMode: last-state"));
    assert_eq!(
        validate_deployment(&upgraded("last-state"), Some(&running), &no_defaults()),
        vec![]
    );
    // The same version is no change.
    let same = deployment(&APP.replace("upgradeMode: savepoint", "upgradeMode: last-state"));
    assert_eq!(
        validate_deployment(&same, Some(&suspended("last-state")), &no_defaults()),
        vec![]
    );
}

#[test]
fn a_session_job_cannot_move_to_another_cluster() {
    let job = session_job(SESSION_JOB);
    let last =
        session_job(&SESSION_JOB.replace("deploymentName: session", "deploymentName: old-session"))
            .spec;
    assert_eq!(
        shown(&validate_session_job(&job, None, Some(&last), &no_defaults())),
        vec!["spec.deploymentName: cannot be changed (was 'old-session'); create a new FlinkSessionJob"]
    );
    assert_eq!(
        validate_session_job(&job, None, Some(&job.spec), &no_defaults()),
        vec![]
    );
}
