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
