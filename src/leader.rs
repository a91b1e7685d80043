//! Leader election with a `coordination.k8s.io/v1` Lease, so that of several replicas only one
//! reconciles at a time.
//!
//! The holder renews the lease every `retry_period`. It considers itself leader only while its
//! last successful renewal is younger than `renew_deadline`, which is shorter than
//! `lease_duration`: a replica that cannot renew stops acting before any other may take the
//! lease over (others wait `lease_duration` past the last renewal they saw). Every write names
//! the resourceVersion read, so two replicas racing for an expired lease cannot both win.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::Client;

/// Timing of the election (client-go's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What to do with the lease as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nobody has made it yet.
    Create,
    /// It is ours: renew it.
    Renew,
    /// Its holder let it expire: take it over.
    TakeOver,
    /// Someone else holds it.
    Wait,
}

/// The decision, from the lease's spec, the time (epoch ms) and who we are.
pub fn step(spec: Option<&LeaseSpec>, now_ms: i64, me: &str) -> Step {
    let Some(spec) = spec else {
        return Step::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder == me {
        return Step::Renew;
    }
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0.as_millisecond())
        .unwrap_or(0);
    let duration_ms = spec.lease_duration_seconds.unwrap_or(15) as i64 * 1000;
    if holder.is_empty() || now_ms >= renewed + duration_ms {
        Step::TakeOver
    } else {
        Step::Wait
    }
}

fn micro_time(ms: i64) -> Option<MicroTime> {
    Timestamp::from_millisecond(ms).ok().map(MicroTime)
}

/// The lease spec after `step`, written by `me` at `now_ms`.
pub fn next_spec(
    old: Option<&LeaseSpec>,
    step: Step,
    now_ms: i64,
    me: &str,
    timing: Timing,
) -> LeaseSpec {
    let mut spec = old.cloned().unwrap_or_default();
    if step != Step::Renew {
        spec.acquire_time = micro_time(now_ms);
        spec.lease_transitions =
            Some(spec.lease_transitions.unwrap_or(0) + i32::from(old.is_some()));
    }
    spec.holder_identity = Some(me.to_string());
    spec.renew_time = micro_time(now_ms);
    spec.lease_duration_seconds = Some(timing.lease_duration.as_secs() as i32);
    spec
}

/// Whether a replica that last renewed at `renewed_at` may still act at `now_ms`.
pub fn leading(renewed_at: Option<i64>, now_ms: i64, timing: Timing) -> bool {
    renewed_at
        .map(|t| now_ms - t < timing.renew_deadline.as_millis() as i64)
        .unwrap_or(false)
}

/// One replica's side of the election.
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    /// When we last renewed successfully (epoch ms), while we hold the lease.
    renewed_at: Option<i64>,
}

impl LeaderElector {
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timing: Timing,
    ) -> Self {
        LeaderElector {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            timing,
            renewed_at: None,
        }
    }

    /// True while we may act: the last renewal is younger than the renew deadline.
    pub fn is_leader(&self, now_ms: i64) -> bool {
        leading(self.renewed_at, now_ms, self.timing)
    }

    pub fn retry_period(&self) -> Duration {
        self.timing.retry_period
    }

    /// One round: read the lease and create, renew or take it over if we may. Errors (the API
    /// unreachable, a lost race) leave us as we were; `is_leader` lapses by itself if renewals
    /// keep failing.
    pub async fn try_acquire_or_renew(&mut self, now_ms: i64) -> Result<(), String> {
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| format!("read lease {}: {e}", self.name))?;
        let spec = current.as_ref().and_then(|l| l.spec.as_ref());
        let decided = step(spec, now_ms, &self.identity);
        let new_spec = next_spec(spec, decided, now_ms, &self.identity, self.timing);
        let written = match (decided, current) {
            (Step::Wait, _) => {
                self.renewed_at = None;
                return Ok(());
            }
            (Step::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(new_spec),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (_, Some(mut lease)) => {
                // Replace with the resourceVersion read: a concurrent writer makes this 409.
                lease.spec = Some(new_spec);
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
            (_, None) => return Ok(()),
        };
        match written {
            Ok(_) => {
                if !self.is_leader(now_ms) {
                    tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
                }
                self.renewed_at = Some(now_ms);
                Ok(())
            }
            Err(e) => Err(format!("write lease {}: {e}", self.name)),
        }
    }

    /// Gives the lease up on shutdown, so another replica need not wait for it to expire.
    pub async fn release(&mut self) {
        if self.renewed_at.take().is_none() {
            return;
        }
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await {
            if let Some(spec) = lease.spec.as_mut() {
                if spec.holder_identity.as_deref() == Some(&self.identity) {
                    spec.holder_identity = None;
                    let _ = self
                        .api
                        .replace(&self.name, &PostParams::default(), &lease)
                        .await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(who: &str, renewed_ms: i64) -> LeaseSpec {
        next_spec(None, Step::Create, renewed_ms, who, Timing::default())
    }

    #[test]
    fn a_live_lease_is_respected_and_an_expired_one_taken_over() {
        assert_eq!(step(None, 0, "a"), Step::Create);
        let lease = held_by("a", 100_000);
        assert_eq!(step(Some(&lease), 101_000, "a"), Step::Renew);
        assert_eq!(step(Some(&lease), 114_999, "b"), Step::Wait);
        assert_eq!(step(Some(&lease), 115_000, "b"), Step::TakeOver);
        let released = LeaseSpec {
            holder_identity: None,
            ..lease
        };
        assert_eq!(step(Some(&released), 101_000, "b"), Step::TakeOver);
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_does_not() {
        let lease = held_by("a", 0);
        assert_eq!(lease.lease_transitions, Some(0));
        let renewed = next_spec(Some(&lease), Step::Renew, 2_000, "a", Timing::default());
        assert_eq!(renewed.lease_transitions, Some(0));
        assert_eq!(renewed.acquire_time, lease.acquire_time);
        let taken = next_spec(
            Some(&renewed),
            Step::TakeOver,
            20_000,
            "b",
            Timing::default(),
        );
        assert_eq!(taken.lease_transitions, Some(1));
        assert_eq!(taken.holder_identity.as_deref(), Some("b"));
    }

    #[test]
    fn the_holder_stops_acting_before_anyone_may_take_over() {
        let t = Timing::default();
        assert!(t.renew_deadline < t.lease_duration);
        assert!(leading(Some(100_000), 109_999, t));
        assert!(!leading(Some(100_000), 110_000, t));
        // Others may take over only at 115_000.
        assert_eq!(step(Some(&held_by("a", 100_000)), 110_000, "b"), Step::Wait);
        assert!(!leading(None, 100_000, t));
    }
}
