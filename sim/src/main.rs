//! `flink-sim`: runs scenarios against the simulated cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use flink_sim::load::load_scenario;
use flink_sim::runner::{check_crash_points, Simulation};
use flink_sim::timeline::render;

/// The simulation allocates and frees small JSON values and strings at a high rate, and a
/// 10,000-deployment benchmark holds a gigabyte of them: glibc's malloc was the slowest at
/// that (mimalloc took 11 % less time), and jemalloc, the operator binary's allocator too,
/// took 7 % less than mimalloc tuned for this program at 1,000 x 1 h and 9 % less at 10,000,
/// with 25 MiB less resident (BENCHMARKS.md, twelfth round).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const USAGE: &str = "usage: flink-sim run FILE [--seed N] [--timeline OUT.html] [--crash-points] [--trace]\n       flink-sim serve [--port P] [--speed X] [--seed N] [--crds] [--kubeconfig FILE] [--quiet] [--external-operator]\n       flink-sim explore [--seeds N] [--start S] [--duration D] [--faults LIST] [--scenario FILE...] [--systematic] [--oracles] [--keep-going] [--out DIR]\n       flink-sim bench --deployments N [--duration 1h] [--seed S] [--operator KEY=VALUE]... [--progress]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        return serve(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("explore") {
        return flink_sim::explore::cli::main(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("bench") {
        return flink_sim::bench::main(&args[1..]);
    }
    if args.first().map(String::as_str) != Some("run") {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let mut file = None;
    let mut seed = None;
    let mut html = None;
    let mut crash_points = false;
    let mut trace = false;
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--seed" => match rest.next().and_then(|s| s.parse::<u64>().ok()) {
                Some(s) => seed = Some(s),
                None => {
                    eprintln!("--seed needs a whole number\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--crash-points" => crash_points = true,
            "--trace" => trace = true,
            "--timeline" => match rest.next() {
                Some(p) => html = Some(PathBuf::from(p)),
                None => {
                    eprintln!("--timeline needs a file name\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            other if file.is_none() && !other.starts_with("--") => {
                file = Some(PathBuf::from(other))
            }
            other => {
                eprintln!("unexpected argument '{other}'\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(file) = file else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let mut scenario = match load_scenario(&file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    if let Some(s) = seed {
        scenario.seed = s;
    }
    println!("scenario: {} (seed {})", scenario.name, scenario.seed);
    let mut simulation = Simulation::new(&scenario);
    simulation.trace = trace;
    let outcome = simulation.run(&scenario);
    print!("{}", render(&outcome.timeline));
    for (name, statuses) in &outcome.snapshots {
        println!("--- statuses at {name}");
        print!("{statuses}");
    }
    if let Some(path) = html {
        let page = flink_sim::html::render_html(&scenario.name, &outcome.timeline, outcome.end_ms);
        if let Err(e) = std::fs::write(&path, page) {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    if outcome.failure.is_none() && crash_points {
        // The same run again, with the operator killed after each of its writes in turn.
        match check_crash_points(&scenario) {
            Ok(n) => println!("--- crash points: the operator was killed after each of its {n} writes in turn; every check held"),
            Err((n, failed)) => {
                println!("--- crash points: killed after write {n}, the run went like this:");
                print!("{}", render(&failed.timeline));
                eprintln!("{}", failed.failure.unwrap_or_else(|| format!("the crash after write {n} did not happen")));
                return ExitCode::from(1);
            }
        }
    }
    match outcome.failure {
        None => ExitCode::SUCCESS,
        Some(f) => {
            eprintln!("{f}");
            ExitCode::from(1)
        }
    }
}

/// `flink-sim serve`: the simulated world's Kubernetes API on 127.0.0.1, for kubectl.
fn serve(args: &[String]) -> ExitCode {
    let mut options = flink_sim::serve::ServeOptions {
        print_timeline: true,
        ..Default::default()
    };
    let mut kubeconfig = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut value = |what: &str| -> Result<String, ExitCode> {
            rest.next().cloned().ok_or_else(|| {
                eprintln!("{arg} needs {what}\n{USAGE}");
                ExitCode::from(2)
            })
        };
        let parsed = match arg.as_str() {
            "--port" => value("a port number").and_then(|v| {
                v.parse().map(|p| options.port = p).map_err(|_| {
                    eprintln!("--port needs a port number\n{USAGE}");
                    ExitCode::from(2)
                })
            }),
            "--speed" => value("a positive number").and_then(|v| match v.parse::<f64>() {
                Ok(x) if x > 0.0 && x.is_finite() => {
                    options.speed = x;
                    Ok(())
                }
                _ => {
                    eprintln!("--speed needs a positive number\n{USAGE}");
                    Err(ExitCode::from(2))
                }
            }),
            "--seed" => value("a whole number").and_then(|v| {
                v.parse().map(|s| options.seed = s).map_err(|_| {
                    eprintln!("--seed needs a whole number\n{USAGE}");
                    ExitCode::from(2)
                })
            }),
            "--kubeconfig" => value("a file name").map(|v| kubeconfig = Some(PathBuf::from(v))),
            "--crds" => {
                options.install_crds = true;
                Ok(())
            }
            "--quiet" => {
                options.print_timeline = false;
                Ok(())
            }
            "--external-operator" => {
                options.external_operator = true;
                Ok(())
            }
            other => {
                eprintln!("unexpected argument '{other}'\n{USAGE}");
                Err(ExitCode::from(2))
            }
        };
        if let Err(code) = parsed {
            return code;
        }
    }
    let (addr, handle) = match flink_sim::serve::start(options.clone()) {
        Ok(started) => started,
        Err(e) => {
            eprintln!("flink-sim serve: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(path) = &kubeconfig {
        if let Err(e) = std::fs::write(path, flink_sim::serve::kubeconfig(addr)) {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    println!(
        "flink-sim serve: the simulated cluster's API is at http://{addr} (speed {}x, seed {})",
        options.speed, options.seed
    );
    match &kubeconfig {
        Some(path) => println!("  export KUBECONFIG={}", path.display()),
        None => println!("  kubectl --server http://{addr} get flinkdeployments"),
    }
    if !options.install_crds {
        println!("  install the CRDs: flink-operator crd | kubectl apply -f -");
    }
    if options.external_operator {
        println!(
            "  no operator inside: run one, e.g. flink-operator run --flink-url '{}' --metrics-address 127.0.0.1:0 --log-format text",
            flink_sim::serve::flink_url(addr, "{namespace}", "{name}")
        );
    }
    handle.wait();
    ExitCode::SUCCESS
}
