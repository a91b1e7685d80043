//! `flink-operator`: the operator's command line.
//!
//! * `flink-operator crd` prints the CustomResourceDefinitions as YAML.
//! * `flink-operator validate FILE...` checks manifests the way the operator (and the API
//!   server) would: one line per problem (`FILE: KIND/NAME: field.path: message`, or
//!   `FILE:LINE:COLUMN: message` for YAML syntax), notes for skipped documents, and a summary.
//!   Exit 0 when everything is valid, 1 when there is a problem, 2 for a usage error or an
//!   unreadable file.
//! * `flink-operator run [--config FILE] [--namespace NS]... [--flink-url URL]
//!   [--metrics-address HOST:PORT|none] [--log-format json|text]
//!   (`--flink-url` may hold `{namespace}` and `{name}`, replaced per cluster)
//!   [--webhook-address HOST:PORT --webhook-cert PEM --webhook-key PEM]` runs the operator against the
//!   cluster of the current kubeconfig (or in-cluster credentials). Logs are JSON lines by
//!   default, each with the resource it concerns; `/metrics`, `/healthz` and `/readyz` are
//!   served on 0.0.0.0:8085 unless told otherwise.

use std::process::ExitCode;

/// jemalloc, not glibc's malloc: the operator keeps one long-lived text per cached resource
/// and replaces it with a larger one as statuses are written, between the many short-lived
/// allocations of decoding watch events. glibc's malloc left the freed texts as holes it could
/// neither reuse nor hand back; jemalloc keeps sizes apart and returns emptied pages.
/// 10,000 FlinkDeployments cached: 53 MiB resident with glibc, 45 MiB with jemalloc
/// (BENCHMARKS.md, eleventh round).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const USAGE: &str = "usage: flink-operator crd\n       flink-operator validate FILE...\n       flink-operator run [--config FILE] [--namespace NS]... [--flink-url URL] [--metrics-address HOST:PORT|none] [--log-format json|text] [--webhook-address HOST:PORT --webhook-cert PEM --webhook-key PEM]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("crd") if args.len() == 1 => {
            print!("{}", flink_operator::crd::crds_yaml());
            ExitCode::SUCCESS
        }
        Some("validate") if args.len() > 1 => validate(&args[1..]),
        Some("run") => run(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn validate(files: &[String]) -> ExitCode {
    // Read everything first: an unreadable file is a usage error, reported before any output.
    let mut contents: Vec<Vec<u8>> = Vec::new();
    for file in files {
        match std::fs::read(file) {
            Ok(bytes) => contents.push(bytes),
            Err(e) => {
                eprintln!("flink-operator validate: cannot read {file}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let inputs: Vec<(&str, &[u8])> = files
        .iter()
        .zip(&contents)
        .map(|(f, b)| (f.as_str(), b.as_slice()))
        .collect();
    let report = flink_operator::validation::validate_manifest_bytes(&inputs);
    print!("{report}");
    if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run(args: &[String]) -> ExitCode {
    let mut options = flink_operator::operator::Options {
        metrics_address: Some("0.0.0.0:8085".into()),
        ..Default::default()
    };
    let mut namespaces = Vec::new();
    let mut json_logs = true;
    let (mut webhook_address, mut webhook_cert, mut webhook_key) = (None, None, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else {
            eprintln!("flink-operator run: {flag} needs a value\n{USAGE}");
            return ExitCode::from(2);
        };
        match flag.as_str() {
            "--config" => match flink_operator::operator::read_config(value) {
                Ok(conf) => {
                    options.config = conf;
                    options.config_file = Some(value.clone());
                }
                Err(e) => {
                    eprintln!("flink-operator run: {e}");
                    return ExitCode::from(2);
                }
            },
            "--namespace" => namespaces.push(value.clone()),
            "--flink-url" => options.flink_url_override = Some(value.clone()),
            "--webhook-address" => webhook_address = Some(value.clone()),
            "--webhook-cert" => webhook_cert = Some(value.clone()),
            "--webhook-key" => webhook_key = Some(value.clone()),
            "--metrics-address" if value == "none" => options.metrics_address = None,
            "--metrics-address" => options.metrics_address = Some(value.clone()),
            "--log-format" if value == "json" || value == "text" => json_logs = value == "json",
            other => {
                eprintln!("flink-operator run: unknown flag {other}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    options.webhook = match (webhook_address, webhook_cert, webhook_key) {
        (Some(address), Some(cert_file), Some(key_file)) => {
            Some(flink_operator::operator::WebhookOptions {
                address,
                cert_file,
                key_file,
            })
        }
        (None, None, None) => None,
        _ => {
            eprintln!("flink-operator run: the webhook needs --webhook-address, --webhook-cert and --webhook-key\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    options.namespaces = if namespaces.is_empty() {
        flink_operator::operator::watched_namespaces(&options.config)
    } else {
        namespaces
    };
    options.instance = std::env::var("POD_NAME").ok();
    options.own_namespace = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".into());
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if json_logs {
        // The current span (the resource being reconciled) goes on every line.
        tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    flink_operator::adapters::init_tls();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("flink-operator run: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .map_err(|e| format!("cannot reach the Kubernetes API: {e}"))?;
        // Kubernetes stops pods with SIGTERM; a terminal with Ctrl-C.
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(|e| format!("cannot listen for SIGTERM: {e}"))?;
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            Ok::<(), String>(())
        };
        let shutdown = async {
            if let Err(e) = shutdown.await {
                tracing::error!("{e}");
                std::future::pending::<()>().await;
            }
        };
        flink_operator::operator::run(client, options, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flink-operator run: {e}");
            ExitCode::FAILURE
        }
    }
}
