//! The `flink-sim explore` command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{explore, parse_faults, Options};
use crate::load::load_scenario;
use crate::world::Mutant;

pub const USAGE: &str = "flink-sim explore [--seeds N] [--start S] [--duration D] [--faults LIST] [--scenario FILE...] [--systematic] [--oracles] [--threads N] [--keep-going] [--no-shrink] [--out DIR] [--plant-bug skip-upgrade-savepoint]";

fn usage_error(message: &str) -> ExitCode {
    eprintln!("{message}\nusage: {USAGE}");
    ExitCode::from(2)
}

/// `flink-sim explore ...`: exit 0 when nothing was violated, 1 on a violation, 2 for a
/// wrong command line.
pub fn main(args: &[String]) -> ExitCode {
    let mut opts = Options::default();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut systematic = false;
    let mut oracles = false;
    let mut out_dir: Option<PathBuf> = None;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let value = args.get(i + 1).cloned();
        let mut take = |what: &str| -> Result<String, ExitCode> {
            i += 1;
            value
                .clone()
                .ok_or_else(|| usage_error(&format!("{arg} needs {what}")))
        };
        let parsed: Result<(), ExitCode> = match arg {
            "--seeds" => take("a number").and_then(|v| {
                v.parse()
                    .map(|n| opts.seeds = n)
                    .map_err(|_| usage_error("--seeds needs a whole number"))
            }),
            "--start" => take("a number").and_then(|v| {
                v.parse()
                    .map(|n| opts.start = n)
                    .map_err(|_| usage_error("--start needs a whole number"))
            }),
            "--threads" => take("a number").and_then(|v| match v.parse::<usize>() {
                Ok(n) if n > 0 => {
                    opts.threads = n;
                    Ok(())
                }
                _ => Err(usage_error("--threads needs a positive number")),
            }),
            "--duration" => take("a duration").and_then(|v| {
                flink_operator::duration::parse_duration(&v)
                    .map(|d| opts.duration = d)
                    .map_err(|e| usage_error(&format!("--duration: {e}")))
            }),
            "--faults" => take("a list").and_then(|v| {
                parse_faults(&v)
                    .map(|f| opts.faults = f)
                    .map_err(|e| usage_error(&e))
            }),
            "--out" => take("a folder").map(|v| out_dir = Some(PathBuf::from(v))),
            "--plant-bug" => take("a bug name").and_then(|v| match v.as_str() {
                "skip-upgrade-savepoint" => {
                    opts.settings.mutant = Some(Mutant::SkipUpgradeSavepoint);
                    Ok(())
                }
                other => Err(usage_error(&format!(
                    "unknown bug `{other}`; known: skip-upgrade-savepoint"
                ))),
            }),
            "--scenario" => {
                let mut any = false;
                while let Some(next) = args.get(i + 1).filter(|a| !a.starts_with("--")) {
                    files.push(PathBuf::from(next));
                    i += 1;
                    any = true;
                }
                if any {
                    Ok(())
                } else {
                    Err(usage_error("--scenario needs at least one file"))
                }
            }
            "--systematic" => {
                systematic = true;
                Ok(())
            }
            "--oracles" => {
                oracles = true;
                Ok(())
            }
            "--keep-going" => {
                opts.stop_at_first = false;
                Ok(())
            }
            "--no-shrink" => {
                opts.shrink = false;
                Ok(())
            }
            other => Err(usage_error(&format!("unexpected argument '{other}'"))),
        };
        if let Err(code) = parsed {
            return code;
        }
        i += 1;
    }
    for file in &files {
        match load_scenario(file) {
            Ok(s) => opts.scenarios.push(s),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        }
    }
    if systematic {
        if opts.scenarios.is_empty() {
            return usage_error("--systematic needs --scenario FILE...");
        }
        return run_systematic(&opts);
    }
    if oracles {
        return run_oracles(&files);
    }
    run_explore(&opts, out_dir)
}

/// Progress on stderr: a bar on a terminal, a plain line every tenth otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last: Mutex<(Instant, u64)>,
}

impl Progress {
    fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:40}] {pos}/{len} runs ({per_sec}) {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            last: Mutex::new((Instant::now(), 0)),
        }
    }

    fn update(&self, done: u64, total: u64, violations: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(format!("{violations} violation(s)"));
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let step = (total / 10).max(1);
        if done == total || done >= last.1 + step || last.0.elapsed() >= Duration::from_secs(30) {
            *last = (Instant::now(), done);
            eprintln!("explore: {done}/{total} runs, {violations} violation(s)");
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn run_explore(opts: &Options, out_dir: Option<PathBuf>) -> ExitCode {
    let total = opts.seeds * opts.scenarios.len().max(1) as u64;
    println!(
        "explore: seeds {}..{} ({} runs), {} of workload and faults each, faults: {}",
        opts.start,
        opts.start + opts.seeds,
        total,
        flink_operator::duration::format_duration(opts.duration),
        if opts.faults.is_empty() {
            "none".to_string()
        } else {
            opts.faults
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(",")
        }
    );
    let progress = Progress::new(total);
    let summary = explore(opts, &|done, total, bad| progress.update(done, total, bad));
    progress.finish();
    print!("{}", summary.render());
    for (seed, v) in summary.violations.iter().take(20) {
        println!("seed {seed}: {} ({})", v.message, v.class);
    }
    for found in &summary.found {
        println!(
            "--- seed {}: {}\n--- shrunk from {} to {} steps in {} runs; the scenario:",
            found.seed,
            found.violation.message,
            found.steps_before,
            found.shrunk.steps.len(),
            found.shrink_runs
        );
        print!("{}", found.yaml);
        if let Some(dir) = &out_dir {
            let path = dir.join(format!("explore-seed-{}.yaml", found.seed));
            match std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&path, &found.yaml)) {
                Ok(()) => println!("--- written to {}", path.display()),
                Err(e) => eprintln!("cannot write {}: {e}", path.display()),
            }
        }
    }
    if summary.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run_systematic(opts: &Options) -> ExitCode {
    let mut failed = false;
    for scenario in &opts.scenarios {
        let report = super::systematic::check(scenario, &opts.settings);
        print!("{}", report.render());
        failed |= !report.failures.is_empty();
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn run_oracles(files: &[PathBuf]) -> ExitCode {
    let dir = PathBuf::from("scenarios");
    let specs = if files.is_empty() {
        super::oracles::library_specs(&dir)
    } else {
        super::oracles::specs_of(files)
    };
    let report = super::oracles::check(&specs, usize::MAX);
    print!("{}", report.render());
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
