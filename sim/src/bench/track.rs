//! Turns what a benchmark run did (the timeline's lifecycle states, each reconcile with the
//! requests it made) into the figures: reaction times, overhead to STABLE, and what steady
//! deployments cost.

use crate::runner::ReconcileRecord;
use crate::scenario::ClusterSettings;
use crate::timeline::{Entry, What};

use super::workload::{self, Change, Mode, Plan, Planned};

#[derive(Debug, Clone)]
struct Track {
    mode: Mode,
    stable: bool,
    /// When it last became STABLE (ms since the start).
    stable_at: i64,
    /// The last planned change to it, and how long after it it is not steady yet.
    last_event: i64,
    settle: i64,
    /// A transition being timed: since when, and the world's own share of it.
    measuring: Option<(i64, i64)>,
    /// A spec change waiting for the operator's first action on it, and what it was.
    reacting: Option<(i64, &'static str)>,
    /// What the timed transition was.
    measured: &'static str,
    /// The last reconcile in the current steady window.
    last_steady: Option<i64>,
}

impl Track {
    /// Steady from here on, while it stays STABLE.
    fn window_start(&self) -> i64 {
        self.stable_at.max(self.last_event + self.settle)
    }
}

/// What the tracker found.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub reaction_p50: u64,
    pub reaction_p99: u64,
    pub reaction_max: u64,
    pub reactions: usize,
    pub overhead_p50: i64,
    pub overhead_p99: i64,
    pub overhead_max: i64,
    pub transitions: usize,
    pub steady_hours: f64,
    pub steady_reconciles: u64,
    pub steady_kube_requests: u64,
    pub steady_kube_writes: u64,
    pub steady_flink_requests: u64,
    /// The shortest time between two reconciles of one deployment in one steady window.
    pub steady_min_gap_ms: i64,
    pub stable_at_end: usize,
    /// The slowest reactions and transitions: (ms, deployment, what).
    pub slowest_reactions: Vec<(i64, usize, &'static str)>,
    pub slowest_transitions: Vec<(i64, usize, &'static str)>,
}

impl Figures {
    /// A count per steady deployment-hour.
    pub fn per_hour(&self, count: u64) -> f64 {
        if self.steady_hours > 0.0 {
            count as f64 / self.steady_hours
        } else {
            0.0
        }
    }
}

pub struct Tracker {
    tracks: Vec<Track>,
    cluster: ClusterSettings,
    reactions: Vec<u64>,
    overheads: Vec<i64>,
    slowest_reactions: Vec<(i64, usize, &'static str)>,
    slowest_transitions: Vec<(i64, usize, &'static str)>,
    steady_ms: i64,
    figures: Figures,
}

/// Nearest-rank percentile of sorted values.
fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl Tracker {
    pub fn new(plan: &Plan, cluster: ClusterSettings) -> Self {
        Tracker {
            tracks: plan
                .deployments
                .iter()
                .map(|d| Track {
                    mode: d.mode,
                    stable: false,
                    stable_at: 0,
                    last_event: 0,
                    settle: 0,
                    measuring: None,
                    reacting: None,
                    measured: "",
                    last_steady: None,
                })
                .collect(),
            cluster,
            reactions: Vec::new(),
            overheads: Vec::new(),
            slowest_reactions: Vec::new(),
            slowest_transitions: Vec::new(),
            steady_ms: 0,
            figures: Figures {
                steady_min_gap_ms: i64::MAX,
                ..Figures::default()
            },
        }
    }

    fn index(&self, resource_name: &str) -> Option<usize> {
        workload::index_of(resource_name).filter(|i| *i < self.tracks.len())
    }

    /// Ends the steady window (if any) at `at`.
    fn close(&mut self, i: usize, at: i64) {
        let t = &mut self.tracks[i];
        if t.stable {
            self.steady_ms += (at - t.window_start()).max(0);
        }
        t.last_steady = None;
    }

    /// What happened up to now: timeline entries and reconciles, each in time order. At the
    /// same instant the timeline goes first: a reconcile that changed the lifecycle state is
    /// not steady.
    pub fn absorb(&mut self, start: i64, timeline: &[Entry], reconciles: &[ReconcileRecord]) {
        let (mut a, mut b) = (0, 0);
        while a < timeline.len() || b < reconciles.len() {
            let entry_at = timeline.get(a).map(|e| e.at_ms as i64);
            let record_at = reconciles.get(b).map(|r| r.at - start);
            match (entry_at, record_at) {
                (Some(e), Some(r)) if e <= r => {
                    self.entry(&timeline[a]);
                    a += 1;
                }
                (Some(_), None) => {
                    self.entry(&timeline[a]);
                    a += 1;
                }
                _ => {
                    self.reconcile(&reconciles[b], start);
                    b += 1;
                }
            }
        }
    }

    fn entry(&mut self, e: &Entry) {
        let What::LifecycleState(state) = &e.what else {
            return;
        };
        let Some(name) = e.resource.strip_prefix("FlinkDeployment/") else {
            return;
        };
        let Some(i) = name.rsplit('/').next().and_then(|n| self.index(n)) else {
            return;
        };
        let at = e.at_ms as i64;
        let stable = state == "STABLE";
        if stable && !self.tracks[i].stable {
            let t = &mut self.tracks[i];
            t.stable = true;
            t.stable_at = at;
            if let Some((since, world)) = t.measuring.take() {
                self.overheads.push(at - since - world);
                keep_slowest(
                    &mut self.slowest_transitions,
                    (at - since - world, i, t.measured),
                );
            }
        } else if !stable && self.tracks[i].stable {
            self.close(i, at);
            self.tracks[i].stable = false;
        }
    }

    fn reconcile(&mut self, r: &ReconcileRecord, start: i64) {
        let Some(i) = self.index(&r.key.name) else {
            return;
        };
        let at = r.at - start;
        let t = &mut self.tracks[i];
        if let Some((since, what)) = t.reacting {
            if at >= since && r.kube_writes > 0 {
                self.reactions.push((at - since) as u64);
                keep_slowest(&mut self.slowest_reactions, (at - since, i, what));
                t.reacting = None;
            }
        }
        if t.stable && at > t.window_start() {
            let f = &mut self.figures;
            if let Some(previous) = t.last_steady {
                f.steady_min_gap_ms = f.steady_min_gap_ms.min(at - previous);
            }
            t.last_steady = Some(at);
            f.steady_reconciles += 1;
            f.steady_kube_requests += r.kube_requests;
            f.steady_kube_writes += r.kube_writes;
            f.steady_flink_requests += r.flink_requests;
        }
    }

    /// A planned change was just applied at `at` (ms since the start).
    pub fn planned(&mut self, event: &Planned, at: i64) {
        let Some(i) = event.deployment.filter(|i| *i < self.tracks.len()) else {
            return;
        };
        self.close(i, at);
        let delay = event.change.world_delay(self.tracks[i].mode, &self.cluster);
        let t = &mut self.tracks[i];
        t.last_event = at;
        t.settle = match event.change {
            Change::Create => 0,
            _ => workload::SETTLE_MS,
        };
        // A transition another change interrupts is not timed.
        t.measuring = delay.map(|d| (at, d));
        t.measured = event.change.label();
        if event.change.is_spec_change() && t.reacting.is_none() {
            t.reacting = Some((at, event.change.label()));
        }
    }

    /// The figures, with the steady windows still open closed at `end`.
    pub fn finish(mut self, end: i64, _interval_ms: i64) -> Figures {
        for i in 0..self.tracks.len() {
            self.close(i, end);
        }
        self.reactions.sort_unstable();
        self.overheads.sort_unstable();
        let mut f = self.figures;
        f.reaction_p50 = percentile(&self.reactions, 0.50);
        f.reaction_p99 = percentile(&self.reactions, 0.99);
        f.reaction_max = self.reactions.last().copied().unwrap_or(0);
        f.reactions = self.reactions.len();
        f.overhead_p50 = percentile(&self.overheads, 0.50);
        f.overhead_p99 = percentile(&self.overheads, 0.99);
        f.overhead_max = self.overheads.last().copied().unwrap_or(0);
        f.transitions = self.overheads.len();
        f.steady_hours = self.steady_ms as f64 / 3_600_000.0;
        f.stable_at_end = self.tracks.iter().filter(|t| t.stable).count();
        f.slowest_reactions = self.slowest_reactions;
        f.slowest_transitions = self.slowest_transitions;
        f
    }
}

/// Keeps the five largest, largest first.
fn keep_slowest(list: &mut Vec<(i64, usize, &'static str)>, item: (i64, usize, &'static str)) {
    list.push(item);
    list.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    list.truncate(5);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&[7u64], 0.99), 7);
        assert_eq!(percentile::<u64>(&[], 0.5), 0);
    }
}
