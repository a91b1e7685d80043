//! Every scenario under `scenarios/` runs, holds its awaits and expects, produces the same
//! timeline twice (determinism), and matches its snapshot in `snapshots/`.

use std::path::Path;

use flink_sim::load::load_scenario;
use flink_sim::runner::Simulation;
use flink_sim::timeline::render;

fn run_text(path: &Path) -> String {
    let scenario = load_scenario(path).unwrap_or_else(|e| panic!("{e}"));
    let outcome = Simulation::new(&scenario).run(&scenario);
    if let Some(f) = &outcome.failure {
        panic!("{}\n{}", render(&outcome.timeline), f);
    }
    let mut text = format!("scenario: {} (seed {})\n", scenario.name, scenario.seed);
    text.push_str(&render(&outcome.timeline));
    for (name, statuses) in &outcome.snapshots {
        text.push_str(&format!("--- statuses at {name}\n{statuses}"));
    }
    text
}

#[test]
fn scenarios() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::glob!("../../scenarios", "**/*.yaml", |path| {
            let first = run_text(path);
            let second = run_text(path);
            assert_eq!(first, second, "{} is not deterministic", path.display());
            insta::assert_snapshot!(first);
        });
    });
}
