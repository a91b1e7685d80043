//! Kubernetes events (`events.k8s.io/v1`) written as kube's `Recorder` writes them (the same
//! requests, the same objects), with a smaller memory of the recent ones.
//!
//! The `Recorder` remembers every event it published in the last 6 minutes, so that a
//! repetition (same type, action, reason, reporter and object) patches the first one into a
//! series with a count instead of making a new one. It keeps each as a whole `Event` object,
//! inline in a hash table: about 2 KiB a slot, spare slots included, or over 40 MiB after
//! 10,000 resources each got an event (an operator starting on resources it never saw). Here
//! a remembered event is its key, as one string, and the few fields of it that are not in the
//! key: its name, note, time and series.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::Client;

/// How long an event is remembered for a series (kube's `Recorder`: 6 minutes).
const REMEMBERED: SignedDuration = SignedDuration::from_mins(6);

/// Publishes events about objects; see the module's documentation.
pub struct EventPublisher {
    client: Client,
    recent: Mutex<RecentEvents>,
}

impl EventPublisher {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        EventPublisher {
            client,
            recent: Mutex::new(RecentEvents::new(reporter)),
        }
    }

    /// Creates the event, or, when the same one was published in the last 6 minutes,
    /// patches that one with the series' new count.
    pub async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let (key, event) = self.recent().prepare(ev, regarding, Timestamp::now());
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        match (&event.series, &event.metadata.name) {
            (Some(_), Some(name)) => {
                events
                    .patch(name, &PatchParams::default(), &Patch::Merge(&event))
                    .await?;
            }
            _ => {
                events.create(&PostParams::default(), &event).await?;
            }
        }
        self.recent().remember(key, &event);
        Ok(())
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, RecentEvents> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What is kept of a published event besides its key.
struct Recent {
    name: String,
    note: Option<String>,
    event_time: Timestamp,
    /// The series' count and last time, once repeated.
    series: Option<(i32, Timestamp)>,
}

impl Recent {
    /// When it stops counting as recent.
    fn expires(&self) -> Timestamp {
        self.series.map(|(_, at)| at).unwrap_or(self.event_time) + REMEMBERED
    }
}

/// The events published in the last 6 minutes, by key; pure (time from the caller).
struct RecentEvents {
    reporter: Reporter,
    events: HashMap<Box<str>, Recent>,
}

impl RecentEvents {
    fn new(reporter: Reporter) -> Self {
        RecentEvents {
            reporter,
            events: HashMap::new(),
        }
    }

    /// What identifies a repetition: as kube's `Recorder`, the type, action, reason and
    /// object (the reporter is this publisher's; no related object is ever given).
    fn key(ev: &Event, regarding: &ObjectReference) -> Box<str> {
        let type_ = match ev.type_ {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        };
        let secondary = ev
            .secondary
            .as_ref()
            .map(|r| serde_json::to_string(r).unwrap_or_default())
            .unwrap_or_default();
        format!(
            "{type_}\n{}\n{}\n{}\n{secondary}",
            ev.action,
            ev.reason,
            serde_json::to_string(regarding).unwrap_or_default()
        )
        .into()
    }

    /// Forgets what is too old, then gives the key and the event to write at `now`: a new one,
    /// or the remembered one with its series counted on.
    fn prepare(
        &mut self,
        ev: &Event,
        regarding: &ObjectReference,
        now: Timestamp,
    ) -> (Box<str>, K8sEvent) {
        self.events.retain(|_, e| e.expires() > now);
        let key = Self::key(ev, regarding);
        let (name, note, event_time, series) = match self.events.get(&key) {
            Some(e) => {
                let count = e.series.map(|(count, _)| count + 1).unwrap_or(2);
                (e.name.clone(), e.note.clone(), e.event_time, Some(count))
            }
            None => (
                format!(
                    "{}.{:x}",
                    regarding.name.as_ref().unwrap_or(&self.reporter.controller),
                    now.as_nanosecond()
                ),
                ev.note.clone(),
                now,
                None,
            ),
        };
        let event = K8sEvent {
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            deprecated_count: None,
            deprecated_first_timestamp: None,
            deprecated_last_timestamp: None,
            deprecated_source: None,
            event_time: Some(MicroTime(event_time)),
            regarding: Some(regarding.clone()),
            note,
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(name),
                ..Default::default()
            },
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            series: series.map(|count| EventSeries {
                count,
                last_observed_time: MicroTime(now),
            }),
            type_: Some(
                match ev.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            related: ev.secondary.clone(),
        };
        (key, event)
    }

    /// The event was written: remember it.
    fn remember(&mut self, key: Box<str>, event: &K8sEvent) {
        let Some(MicroTime(event_time)) = event.event_time else {
            return;
        };
        self.events.insert(
            key,
            Recent {
                name: event.metadata.name.clone().unwrap_or_default(),
                note: event.note.clone(),
                event_time,
                series: event
                    .series
                    .as_ref()
                    .map(|s| (s.count, s.last_observed_time.0)),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reporter() -> Reporter {
        Reporter {
            controller: "flink-kubernetes-operator".into(),
            instance: None,
        }
    }

    fn ev(reason: &str, note: &str) -> Event {
        Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(note.into()),
            action: "Job".into(),
            secondary: None,
        }
    }

    fn fd(name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("flink.apache.org/v1beta1".into()),
            kind: Some("FlinkDeployment".into()),
            namespace: Some("default".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    /// Prepares and records, as a successful publish does.
    fn publish(
        recent: &mut RecentEvents,
        ev: &Event,
        regarding: &ObjectReference,
        now: Timestamp,
    ) -> K8sEvent {
        let (key, event) = recent.prepare(ev, regarding, now);
        recent.remember(key, &event);
        event
    }

    #[test]
    fn the_first_event_is_new_as_kube_writes_it() {
        let mut recent = RecentEvents::new(reporter());
        let event = publish(&mut recent, &ev("Submit", "Starting"), &fd("a"), at(0));
        let expected = serde_json::json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "action": "Job",
            "eventTime": "2023-11-14T22:13:20.000000Z",
            "metadata": {"name": format!("a.{:x}", at(0).as_nanosecond()), "namespace": "default"},
            "note": "Starting",
            "reason": "Submit",
            "regarding": {"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
                "name": "a", "namespace": "default", "uid": "uid-a"},
            "reportingController": "flink-kubernetes-operator",
            "reportingInstance": "flink-kubernetes-operator",
            "type": "Normal"
        });
        assert_eq!(serde_json::to_value(&event).unwrap(), expected);
    }

    #[test]
    fn a_repetition_within_six_minutes_counts_on_the_first_one() {
        let mut recent = RecentEvents::new(reporter());
        let first = publish(&mut recent, &ev("Submit", "one"), &fd("a"), at(0));
        // Another object, another reason: new events.
        assert!(publish(&mut recent, &ev("Submit", "x"), &fd("b"), at(1))
            .series
            .is_none());
        assert!(
            publish(&mut recent, &ev("SpecChanged", "x"), &fd("a"), at(1))
                .series
                .is_none()
        );

        let second = publish(&mut recent, &ev("Submit", "two"), &fd("a"), at(60));
        assert_eq!(second.metadata.name, first.metadata.name);
        assert_eq!(
            second.note.as_deref(),
            Some("one"),
            "kube keeps the first note"
        );
        assert_eq!(second.event_time, first.event_time);
        let series = second.series.as_ref().unwrap();
        assert_eq!((series.count, series.last_observed_time.0), (2, at(60)));

        // Counted from the series' last time: still a repetition 6:59 after the first.
        let third = publish(&mut recent, &ev("Submit", "three"), &fd("a"), at(419));
        assert_eq!(third.series.as_ref().unwrap().count, 3);

        // Six minutes after that, forgotten: a new event.
        let fresh = publish(&mut recent, &ev("Submit", "four"), &fd("a"), at(419 + 360));
        assert!(fresh.series.is_none());
        assert_ne!(fresh.metadata.name, first.metadata.name);
        assert_eq!(fresh.note.as_deref(), Some("four"));
        assert_eq!(recent.events.len(), 1, "the others were forgotten");
    }

    #[test]
    fn an_event_not_written_is_not_remembered() {
        let mut recent = RecentEvents::new(reporter());
        let _ = recent.prepare(&ev("Submit", "one"), &fd("a"), at(0));
        let (_, event) = recent.prepare(&ev("Submit", "one"), &fd("a"), at(1));
        assert!(event.series.is_none());
    }
}
