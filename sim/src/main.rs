//! `flink-sim`: runs scenarios against the simulated cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use flink_sim::load::load_scenario;
use flink_sim::runner::{check_crash_points, Simulation};
use flink_sim::timeline::render;

const USAGE: &str = "usage: flink-sim run FILE [--seed N] [--timeline OUT.html] [--crash-points]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("run") {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let mut file = None;
    let mut seed = None;
    let mut html = None;
    let mut crash_points = false;
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
    let outcome = Simulation::new(&scenario).run(&scenario);
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
