//! Shrinking a failing run to the fewest steps that still fail the same way: delta debugging
//! over the flat steps (remove chunks, halving their size), then shorter advances, then
//! adjacent advances merged. Each try is a whole run, so a budget bounds the work.

use std::time::{Duration, Instant};

use crate::scenario::{Action, Scenario};

/// How much shrinking may cost.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub runs: usize,
    pub wall: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            runs: 2_000,
            wall: Duration::from_secs(120),
        }
    }
}

/// The smallest scenario found for which `fails` still holds (the input must fail).
/// Returns it and the number of runs tried.
pub fn shrink(
    scenario: &Scenario,
    budget: Budget,
    mut fails: impl FnMut(&Scenario) -> bool,
) -> (Scenario, usize) {
    let started = Instant::now();
    let mut tries = 0usize;
    let mut best = scenario.clone();
    let out_of_budget = |tries: &usize| *tries >= budget.runs || started.elapsed() >= budget.wall;
    let mut attempt = |candidate: &Scenario, tries: &mut usize| -> bool {
        *tries += 1;
        fails(candidate)
    };
    loop {
        let before = best.steps.len();
        // 1. Remove chunks of steps, large to small.
        let mut chunk = (best.steps.len() / 2).max(1);
        loop {
            let mut i = 0;
            while i < best.steps.len() {
                if out_of_budget(&tries) {
                    return (best, tries);
                }
                let mut candidate = best.clone();
                let end = (i + chunk).min(candidate.steps.len());
                candidate.steps.drain(i..end);
                if !candidate.steps.is_empty() && attempt(&candidate, &mut tries) {
                    best = candidate;
                } else {
                    i += chunk;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk = (chunk / 2).max(1);
        }
        // 2. Merge adjacent advances.
        let mut i = 0;
        while i + 1 < best.steps.len() {
            if let (Action::Advance(a), Action::Advance(b)) =
                (&best.steps[i].action, &best.steps[i + 1].action)
            {
                let mut candidate = best.clone();
                candidate.steps[i].action = Action::Advance(*a + *b);
                candidate.steps.remove(i + 1);
                if out_of_budget(&tries) {
                    return (best, tries);
                }
                if attempt(&candidate, &mut tries) {
                    best = candidate;
                    continue;
                }
            }
            i += 1;
        }
        // 3. Shorter advances: halve each while it still fails.
        for i in 0..best.steps.len() {
            loop {
                let Action::Advance(d) = best.steps[i].action else {
                    break;
                };
                let half = round(d / 2);
                if half.is_zero() || half == d || out_of_budget(&tries) {
                    break;
                }
                let mut candidate = best.clone();
                candidate.steps[i].action = Action::Advance(half);
                if attempt(&candidate, &mut tries) {
                    best = candidate;
                } else {
                    break;
                }
            }
        }
        if best.steps.len() >= before || out_of_budget(&tries) {
            return (best, tries);
        }
    }
}

/// Whole seconds (or milliseconds below one second), so the file reads well.
fn round(d: Duration) -> Duration {
    if d >= Duration::from_secs(1) {
        Duration::from_secs(d.as_secs())
    } else {
        Duration::from_millis(d.as_millis() as u64)
    }
}
