//! `flink-sim explore`: many seeds of random workloads under random faults, each run checked
//! by the world's invariants on every step and for liveness once the faults heal; a violation
//! is shrunk to the fewest steps that still fail and printed as a scenario file.
//!
//! - [`workload`]: a seed's scenario (resources, spec changes, faults; rates from the seed).
//! - [`run`]: one run (faults at their times, invariants, liveness, end checks).
//! - [`shrink`]: delta debugging over the steps of a failing run.
//! - [`emit`]: a scenario written back as YAML.
//! - [`systematic`]: per scenario, a reference run and one run per crash, stale view and
//!   hidden notification point, each ending as the reference did.
//! - [`oracles`]: history oracles over the scenario library's specs (A then B equals B;
//!   A → B → A equals A).

pub mod cli;
pub mod emit;
pub mod oracles;
pub mod run;
pub mod shrink;
pub mod systematic;
pub mod workload;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::scenario::{Action, Check, Fault, FaultKind, Scenario, Step, Target};
use run::{RunReport, Settings, Violation};

/// What to explore.
#[derive(Debug, Clone)]
pub struct Options {
    /// How many seeds, from `start`.
    pub seeds: u64,
    pub start: u64,
    /// Virtual time of workload and faults per run (the liveness phase comes after).
    pub duration: Duration,
    /// Fault kinds to inject.
    pub faults: Vec<FaultKind>,
    /// Given scenarios as the workload (then only the faults are random).
    pub scenarios: Vec<Scenario>,
    pub settings: Settings,
    pub threads: usize,
    /// Shrink the first violation found.
    pub shrink: bool,
    pub shrink_budget: shrink::Budget,
    /// Stop at the first violation.
    pub stop_at_first: bool,
    /// Only violations whose class starts with this stop the exploration and are shrunk
    /// (others are still counted).
    pub target_class: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seeds: 100,
            start: 0,
            duration: Duration::from_secs(3600),
            faults: FaultKind::ALL.to_vec(),
            scenarios: Vec::new(),
            settings: Settings::default(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            shrink: true,
            shrink_budget: shrink::Budget::default(),
            stop_at_first: true,
            target_class: None,
        }
    }
}

/// A violation, shrunk.
#[derive(Debug, Clone)]
pub struct Found {
    pub seed: u64,
    pub violation: Violation,
    /// Steps of the failing run, and of the shrunk one.
    pub steps_before: usize,
    pub shrunk: Scenario,
    /// The violation of the shrunk run (the same class, perhaps other words).
    pub shrunk_violation: Violation,
    pub shrink_runs: usize,
    /// The shrunk run as a scenario file.
    pub yaml: String,
}

/// What an exploration did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub runs: u64,
    pub found: Vec<Found>,
    /// Violations seen (before shrinking), by seed.
    pub violations: Vec<(u64, Violation)>,
    pub faults: BTreeMap<&'static str, u64>,
    pub checks: u64,
    pub virtual_ms: u64,
    pub wall: Duration,
    pub end_states: BTreeMap<String, u64>,
    /// Time from the heal to steady states: the longest, and the sum (for the mean).
    pub settle_max_ms: u64,
    pub settle_sum_ms: u64,
    pub settled: u64,
}

impl Summary {
    fn add(&mut self, seed: u64, r: &RunReport) {
        self.runs += 1;
        for (k, n) in &r.faults {
            *self.faults.entry(k).or_default() += n;
        }
        self.checks += r.checks;
        self.virtual_ms += r.end_ms;
        for (k, n) in &r.end_states {
            *self.end_states.entry(k.clone()).or_default() += n;
        }
        if let Some(s) = r.settle_ms {
            self.settle_max_ms = self.settle_max_ms.max(s);
            self.settle_sum_ms += s;
            self.settled += 1;
        }
        if let Some(v) = &r.violation {
            self.violations.push((seed, v.clone()));
        }
    }

    /// The closing report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let minutes = self.wall.as_secs_f64() / 60.0;
        out.push_str(&format!(
            "explored {} runs, {:.1} virtual hours, in {:.1}s ({:.0} runs per minute)\n",
            self.runs,
            self.virtual_ms as f64 / 3_600_000.0,
            self.wall.as_secs_f64(),
            if minutes > 0.0 {
                self.runs as f64 / minutes
            } else {
                0.0
            }
        ));
        out.push_str(&format!("invariant checks: {}\n", self.checks));
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        out.push_str(&format!(
            "faults injected: {} ({})\n",
            self.faults.values().sum::<u64>(),
            faults.join(", ")
        ));
        let states: Vec<String> = self
            .end_states
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        out.push_str(&format!("resources ended: {}\n", states.join(", ")));
        if let Some(mean) = self.settle_sum_ms.checked_div(self.settled) {
            out.push_str(&format!(
                "steady after the heal: mean {}, longest {} (bound {})\n",
                crate::runner::fmt_offset(mean),
                crate::runner::fmt_offset(self.settle_max_ms),
                flink_operator::duration::format_duration(run::LIVENESS_BOUND)
            ));
        }
        out.push_str(&format!("violations: {}\n", self.violations.len()));
        let mut classes: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
        for (seed, v) in &self.violations {
            let e = classes.entry(v.class.as_str()).or_insert((0, *seed));
            e.0 += 1;
        }
        for (class, (n, seed)) in classes {
            out.push_str(&format!("  {class}: {n} (first: seed {seed})\n"));
        }
        out
    }
}

impl Options {
    fn wanted(&self, v: &Violation) -> bool {
        self.target_class
            .as_deref()
            .map(|c| v.class.starts_with(c))
            .unwrap_or(true)
    }
}

/// The workload and random faults of one run.
pub fn plan(opts: &Options, seed: u64, index: usize) -> (Scenario, Vec<(u64, Fault)>) {
    if opts.scenarios.is_empty() {
        return (
            workload::generate(seed, opts.duration, &opts.faults),
            Vec::new(),
        );
    }
    let scenario = opts.scenarios[index % opts.scenarios.len()].clone();
    let span = span_ms(&scenario).min(opts.duration.as_millis() as u64);
    let faults = workload::faults_for(seed, &scenario, span, &opts.faults);
    (scenario, faults)
}

/// How long a scenario's steps may take at most (advances and await bounds).
fn span_ms(s: &Scenario) -> u64 {
    s.steps
        .iter()
        .map(|step| match &step.action {
            Action::Advance(d) => d.as_millis() as u64,
            Action::Await { within, .. } => within.as_millis() as u64,
            _ => 0,
        })
        .sum()
}

/// Runs of an exploration: every seed, each with every scenario given (or its own workload).
fn runs(opts: &Options) -> Vec<(u64, usize)> {
    let per_seed = opts.scenarios.len().max(1);
    (opts.start..opts.start + opts.seeds)
        .flat_map(|seed| (0..per_seed).map(move |i| (seed, i)))
        .collect()
}

/// Progress as runs finish: (runs done, runs in all, violations so far).
pub type Progress<'a> = &'a (dyn Fn(u64, u64, usize) + Sync);

/// Explores; shrinks the first violation (by seed) when asked.
pub fn explore(opts: &Options, progress: Progress) -> Summary {
    let started = Instant::now();
    let work = runs(opts);
    let total = work.len() as u64;
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let summary = Mutex::new(Summary::default());
    std::thread::scope(|scope| {
        for _ in 0..opts.threads.max(1) {
            scope.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(seed, index)) = work.get(i as usize) else {
                    return;
                };
                let (scenario, faults) = plan(opts, seed, index);
                let report = run::execute(&scenario, &faults, &opts.settings);
                let mut s = summary.lock().unwrap_or_else(|e| e.into_inner());
                s.add(seed, &report);
                if report
                    .violation
                    .as_ref()
                    .map(|v| opts.wanted(v))
                    .unwrap_or(false)
                    && opts.stop_at_first
                {
                    stop.store(true, Ordering::Relaxed);
                }
                let (done, bad) = (s.runs, s.violations.len());
                drop(s);
                progress(done, total, bad);
            });
        }
    });
    let mut summary = summary.into_inner().unwrap_or_else(|e| e.into_inner());
    summary.violations.sort_by_key(|(seed, _)| *seed);
    if opts.shrink {
        if let Some((seed, _)) = summary
            .violations
            .iter()
            .find(|(_, v)| opts.wanted(v))
            .cloned()
        {
            let index = work
                .iter()
                .find(|(s, _)| *s == seed)
                .map(|w| w.1)
                .unwrap_or(0);
            if let Some(found) = reproduce_and_shrink(opts, seed, index) {
                summary.found.push(found);
            }
        }
    }
    summary.wall = started.elapsed();
    summary
}

/// Runs one seed again and shrinks its violation.
pub fn reproduce_and_shrink(opts: &Options, seed: u64, index: usize) -> Option<Found> {
    let (scenario, faults) = plan(opts, seed, index);
    let report = run::execute(&scenario, &faults, &opts.settings);
    let violation = report.violation.clone()?;
    let mut flat = report.flat.clone();
    flat.name = format!("explore seed {seed}: {}", violation.class);
    flat.description = None;
    let steps_before = flat.steps.len();
    let mut last = violation.clone();
    let (shrunk, shrink_runs) = shrink::shrink(&flat, opts.shrink_budget, |candidate| {
        let r = run::execute(candidate, &[], &opts.settings);
        match r.violation {
            Some(v) if v.class == violation.class => {
                last = v;
                true
            }
            _ => false,
        }
    });
    // The shrunk run's own words.
    let shrunk_violation = run::execute(&shrunk, &[], &opts.settings)
        .violation
        .unwrap_or(last);
    let yaml = repro_yaml(&shrunk, seed, &shrunk_violation, opts);
    Some(Found {
        seed,
        violation,
        steps_before,
        shrunk,
        shrunk_violation,
        shrink_runs,
        yaml,
    })
}

/// The scenario file of a shrunk run: its steps, then (for a liveness violation) an await of
/// the steady state the stuck resource should reach, so `flink-sim run` fails on it too.
pub fn repro_yaml(s: &Scenario, seed: u64, v: &Violation, opts: &Options) -> String {
    let mut s = s.clone();
    if v.class.starts_with("liveness") {
        if let Some(step) = liveness_await(&s, v) {
            s.steps.push(step);
        }
    } else {
        // Run on to the violation, so `flink-sim run` shows it too.
        let steps_ms: u64 = s
            .steps
            .iter()
            .map(|st| match &st.action {
                Action::Advance(d) => d.as_millis() as u64,
                _ => 0,
            })
            .sum();
        if v.at_ms >= steps_ms {
            s.steps.push(Step {
                line: 0,
                action: Action::Advance(Duration::from_secs((v.at_ms - steps_ms) / 1000 + 1)),
            });
        }
    }
    let mut comment = format!(
        "Found by flink-sim explore (seed {seed}), shrunk.\nViolation: {}\n",
        v.message
    );
    comment.push_str(
        "Replay with every explorer check (liveness, invalid specs reported):\n  flink-sim explore --scenario THIS_FILE --faults none --seeds 1\n",
    );
    if opts.settings.mutant.is_some() {
        comment.push_str("With the planted bug: add --plant-bug skip-upgrade-savepoint\n");
    }
    emit::to_yaml(&s, &comment)
}

fn liveness_await(s: &Scenario, v: &Violation) -> Option<Step> {
    // "... FlinkDeployment/default/app-1 is UPGRADING ..." → that resource.
    let id = v
        .message
        .split_whitespace()
        .find(|w| w.starts_with("FlinkDeployment/") || w.starts_with("FlinkSessionJob/"))?;
    let mut parts = id.split('/');
    let target = Target {
        kind: parts.next()?.to_string(),
        namespace: parts.next()?.to_string(),
        name: parts.next()?.trim_end_matches([',', ':']).to_string(),
    };
    // What the last spec applied asks for.
    let mut suspended = false;
    for step in &s.steps {
        match &step.action {
            Action::Apply(docs) => {
                for d in docs {
                    if d["metadata"]["name"] == target.name.as_str() {
                        suspended = d["spec"]["job"]["state"] == "suspended";
                    }
                }
            }
            Action::Patch { target: t, merge } if *t == target => {
                if let Some(state) = merge["spec"]["job"]["state"].as_str() {
                    suspended = state == "suspended";
                }
            }
            _ => {}
        }
    }
    let state = if suspended { "SUSPENDED" } else { "STABLE" };
    let deleted = v.message.contains("being deleted");
    Some(Step {
        line: 0,
        action: Action::Await {
            check: Check {
                target,
                status: (!deleted).then(|| serde_json::json!({"lifecycleState": state})),
                job: None,
                absent: deleted,
            },
            within: run::LIVENESS_BOUND,
        },
    })
}

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with panics on this thread kept quiet: a panic inside a run is a finding,
/// reported with its run, and the default hook would print every one to stderr. Other
/// threads (other tests) keep the hook they had.
pub fn quietly<T>(f: impl FnOnce() -> T) -> T {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = f();
    QUIET.with(|q| q.set(was));
    result
}

/// Parses `--faults`: `all`, `none`, or kind names separated by commas.
pub fn parse_faults(list: &str) -> Result<Vec<FaultKind>, String> {
    match list {
        "all" => return Ok(FaultKind::ALL.to_vec()),
        "none" | "" => return Ok(Vec::new()),
        _ => {}
    }
    list.split(',')
        .map(|name| {
            FaultKind::ALL
                .iter()
                .copied()
                .find(|k| k.name() == name.trim())
                .ok_or_else(|| {
                    let kinds: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                    format!(
                        "unknown fault kind `{name}`; valid: all, none, {}",
                        kinds.join(", ")
                    )
                })
        })
        .collect()
}
