//! Systematic mode (Sieve's three patterns, per scenario): a reference run, then one run per
//! point of it — the operator killed right after each of its writes (as `--crash-points`),
//! the operator reading a stale API at each watch notification, each notification hidden —
//! and each must hold every invariant and end (once faults heal and things settle) in the
//! reference's end state.

use crate::runner::Simulation;
use crate::scenario::{Action, Scenario};

use super::run::{self, Settings};

/// What the systematic runs of one scenario found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub scenario: String,
    pub crash_points: u64,
    pub stale_points: u64,
    pub hidden_points: u64,
    /// (the point, what went wrong)
    pub failures: Vec<(String, String)>,
}

impl Report {
    pub fn render(&self) -> String {
        let mut out = format!(
            "{}: {} crash points, {} stale views, {} hidden notifications: {}\n",
            self.scenario,
            self.crash_points,
            self.stale_points,
            self.hidden_points,
            if self.failures.is_empty() {
                "every run held its invariants and ended as the reference did".to_string()
            } else {
                format!("{} failed", self.failures.len())
            }
        );
        for (point, what) in &self.failures {
            out.push_str(&format!("  {point}: {what}\n"));
        }
        out
    }
}

/// A run that must hold every await and expect (as `--crash-points` does), then settles
/// (faults healed, steady states); returns its end state, writes and notifications.
fn strict(
    scenario: &Scenario,
    settings: &Settings,
    prepare: impl FnOnce(&mut Simulation),
) -> Result<(String, u64, u64), String> {
    let mut sim = Simulation::new(scenario);
    sim.ports
        .world
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .mutant = settings.mutant;
    prepare(&mut sim);
    let outcome = sim.run_steps(scenario);
    if let Some(f) = outcome.failure {
        return Err(f);
    }
    let writes = outcome.operator_writes;
    sim.act(&Action::Heal(None))?;
    run::liveness(&mut sim, settings.liveness_bound)?;
    Ok((run::end_state(&sim), writes, sim.notifications.count))
}

/// The first line where two end states differ.
fn difference(reference: &str, other: &str) -> String {
    let a: Vec<&str> = reference.lines().collect();
    let b: Vec<&str> = other.lines().collect();
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).copied(), b.get(i).copied());
        if x != y {
            return format!(
                "end state differs: reference {}, this run {}",
                x.unwrap_or("(nothing)"),
                y.unwrap_or("(nothing)")
            );
        }
    }
    String::new()
}

/// Runs the scenario's systematic points.
pub fn check(scenario: &Scenario, settings: &Settings) -> Report {
    let mut report = Report {
        scenario: scenario.path.display().to_string(),
        ..Default::default()
    };
    let (reference, writes, _) = match strict(scenario, settings, |_| {}) {
        Ok(r) => r,
        Err(e) => {
            report.failures.push(("reference run".into(), e));
            return report;
        }
    };
    // Crash right after each write.
    for n in 1..=writes {
        report.crash_points += 1;
        let point = format!("crash after write {n}");
        let result = super::quietly(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                strict(scenario, settings, |sim| sim.crash_after_write(n))
            }))
        });
        match result {
            Ok(Ok((end, _, _))) if end == reference => {}
            Ok(Ok((end, _, _))) => report.failures.push((point, difference(&reference, &end))),
            Ok(Err(e)) => report.failures.push((point, e)),
            Err(_) => report
                .failures
                .push((point, "the simulation panicked".into())),
        }
    }
    // Stale views and hidden notifications: the timing of awaits shifts, so they wait
    // without failing; the end state and the invariants are what count.
    let lenient = run::execute(scenario, &[], settings);
    if let Some(v) = &lenient.violation {
        report
            .failures
            .push(("reference run (lenient)".into(), v.message.clone()));
        return report;
    }
    let notifications = lenient.notifications;
    for i in 1..=notifications {
        for stale in [true, false] {
            let r = run::execute_with(scenario, &[], settings, |sim| {
                if stale {
                    sim.notifications.stale = Some(i);
                } else {
                    sim.notifications.hide = Some(i);
                }
            });
            let point = format!(
                "{} notification {i}",
                if stale { "stale view at" } else { "hidden" }
            );
            if stale {
                report.stale_points += 1;
            } else {
                report.hidden_points += 1;
            }
            if let Some(v) = r.violation {
                report.failures.push((point, v.message));
            } else if r.end_state != lenient.end_state {
                report
                    .failures
                    .push((point, difference(&lenient.end_state, &r.end_state)));
            }
        }
    }
    report
}
