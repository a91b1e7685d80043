//! The HTML timeline of a known run holds its transitions, faults and events, escapes what
//! it shows, needs nothing from the network, and is the same bytes every time.

use std::path::PathBuf;

use flink_sim::html::render_html;
use flink_sim::load::load_scenario;
use flink_sim::runner::Simulation;
use flink_sim::timeline::{Entry, What};

fn page() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/savepoint-upgrade-rolled-back.yaml");
    let scenario = load_scenario(&path).unwrap();
    let outcome = Simulation::new(&scenario).run(&scenario);
    assert!(outcome.failure.is_none());
    render_html(&scenario.name, &outcome.timeline, outcome.end_ms)
}

#[test]
fn a_known_run_shows_its_transitions_faults_and_events() {
    let html = page();
    let resource = "FlinkDeployment/default/basic-checkpoint-ha-example";
    for needle in [
        &format!("{resource} lifecycleState=STABLE from +0:15"),
        &format!("{resource} lifecycleState=ROLLED_BACK from"),
        &format!("{resource} jobManagerDeploymentStatus=ERROR from"),
        "fault: imagePull image=flink:no-such-tag",
        "Warning Rollback: Rolling back failed deployment.",
        "Normal SpecChanged: UPGRADE change(s) detected (image)",
    ] {
        assert!(html.contains(needle), "missing {needle}");
    }
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 1);
}

#[test]
fn self_contained_and_deterministic() {
    let html = page();
    let external: Vec<&str> = html
        .match_indices("http")
        .map(|(i, _)| &html[i..(i + 40).min(html.len())])
        .filter(|s| !s.starts_with("http://www.w3.org/2000/svg"))
        .collect();
    assert!(
        external.is_empty(),
        "references outside the page: {external:?}"
    );
    assert!(!html.contains("<script src") && !html.contains("<link"));
    assert_eq!(html, page());
}

#[test]
fn text_is_escaped() {
    let entries = vec![Entry {
        at_ms: 1500,
        resource: "FlinkDeployment/default/x".into(),
        what: What::Event {
            kind: "Warning".into(),
            reason: "Error".into(),
            message: "<script>alert('x') & \"y\"</script>".into(),
        },
    }];
    let html = render_html("a <b> title", &entries, 10_000);
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"));
    assert!(html.contains("<title>a &lt;b&gt; title</title>"));
}

/// A run built by hand, so the page is checked independently of the simulator.
fn hand_built() -> Vec<Entry> {
    let fd = "FlinkDeployment/default/basic";
    let at = |at_ms: u64, resource: &str, what: What| Entry {
        at_ms,
        resource: resource.into(),
        what,
    };
    vec![
        at(
            0,
            "world",
            What::Step("line 3: apply FlinkDeployment/basic".into()),
        ),
        at(0, fd, What::LifecycleState("CREATED".into())),
        at(1_000, fd, What::LifecycleState("UPGRADING".into())),
        at(2_000, fd, What::LifecycleState("DEPLOYED".into())),
        at(
            2_000,
            fd,
            What::JobManagerDeploymentStatus("DEPLOYING".into()),
        ),
        at(7_000, fd, What::JobManagerDeploymentStatus("READY".into())),
        at(7_000, fd, What::JobState("RUNNING".into())),
        at(15_000, fd, What::LifecycleState("STABLE".into())),
        at(
            40_000,
            "world",
            What::Fault("restUnavailable FlinkDeployment/default/basic for 30s".into()),
        ),
        at(
            45_500,
            fd,
            What::Event {
                kind: "Warning".into(),
                reason: "RestError".into(),
                message: "GET /jobs failed: <connection refused> & retried".into(),
            },
        ),
        at(
            70_000,
            "world",
            What::Heal("restUnavailable FlinkDeployment/default/basic".into()),
        ),
    ]
}

#[test]
fn a_hand_built_run_shows_every_transition_fault_and_event() {
    let html = render_html("hand <built> & checked", &hand_built(), 90_000);
    let fd = "FlinkDeployment/default/basic";
    for needle in [
        format!("{fd} lifecycleState=CREATED from +0:00 to +0:01"),
        format!("{fd} lifecycleState=UPGRADING from +0:01 to +0:02"),
        format!("{fd} lifecycleState=DEPLOYED from +0:02 to +0:15"),
        format!("{fd} lifecycleState=STABLE from +0:15 to +1:30"),
        format!("{fd} jobManagerDeploymentStatus=DEPLOYING from +0:02 to +0:07"),
        format!("{fd} jobManagerDeploymentStatus=READY from +0:07 to +1:30"),
        format!("{fd} jobStatus.state=RUNNING from +0:07 to +1:30"),
        "+0:40 fault: restUnavailable FlinkDeployment/default/basic for 30s".into(),
        "+1:10 fault ends: restUnavailable FlinkDeployment/default/basic".into(),
        "+0:45.500 Warning RestError: GET /jobs failed: &lt;connection refused&gt; &amp; retried"
            .into(),
        "<title>hand &lt;built&gt; &amp; checked</title>".into(),
        ">+1:30</text>".into(),
    ] {
        assert!(html.contains(&needle), "missing {needle}");
    }
    assert!(!html.contains("<connection refused>") && !html.contains("<built>"));
    for scheme in ["http://", "https://"] {
        let others = html
            .match_indices(scheme)
            .filter(|(i, _)| !html[*i..].starts_with("http://www.w3.org/2000/svg\""))
            .count();
        assert_eq!(others, 0, "{scheme} reference in the page");
    }
    assert_eq!(
        html,
        render_html("hand <built> & checked", &hand_built(), 90_000)
    );
}
