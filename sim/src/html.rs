//! A picture of a run: one self-contained HTML page (inline SVG and CSS, nothing fetched)
//! with a swimlane per resource. Lifecycle state, JobManager status and job state are
//! coloured bands over virtual time; Kubernetes events, faults and steps are markers; every
//! band and marker has hover text.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::timeline::{Entry, What};

const LABEL_WIDTH: f64 = 230.0;
const PLOT_WIDTH: f64 = 1000.0;
const ROW: f64 = 18.0;
const GAP: f64 = 14.0;

/// Escapes text for HTML and SVG.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The colour of a state, by what it means for the user.
fn colour(state: &str) -> &'static str {
    match state {
        "STABLE" | "RUNNING" | "READY" => "#2e9d5b",
        "DEPLOYED" | "DEPLOYED_NOT_READY" => "#9ccc65",
        "CREATED" | "RECONCILING" | "INITIALIZING" => "#90a4ae",
        "UPGRADING" | "DEPLOYING" | "RESTARTING" | "CANCELLING" | "FAILING" => "#f2a33a",
        "FAILED" | "ERROR" => "#d64541",
        "ROLLING_BACK" | "ROLLED_BACK" => "#8e5cc4",
        "SUSPENDED" | "MISSING" | "FINISHED" | "CANCELED" => "#bdbdbd",
        "DELETING" | "DELETED" => "#546e7a",
        _ => "#cfd8dc",
    }
}

const LEGEND: [(&str, &str); 8] = [
    ("STABLE, RUNNING, READY", "STABLE"),
    ("DEPLOYED, DEPLOYED_NOT_READY", "DEPLOYED"),
    ("CREATED, RECONCILING", "CREATED"),
    ("UPGRADING, DEPLOYING, RESTARTING", "UPGRADING"),
    ("FAILED, ERROR", "FAILED"),
    ("ROLLING_BACK, ROLLED_BACK", "ROLLED_BACK"),
    ("SUSPENDED, MISSING, FINISHED", "SUSPENDED"),
    ("DELETING, DELETED", "DELETED"),
];

fn offset(ms: u64) -> String {
    let s = ms / 1000;
    if ms.is_multiple_of(1000) {
        format!("+{}:{:02}", s / 60, s % 60)
    } else {
        format!("+{}:{:02}.{:03}", s / 60, s % 60, ms % 1000)
    }
}

/// A resource's lanes: state changes per row, and its events.
#[derive(Default)]
struct Lanes<'a> {
    rows: [Vec<(u64, &'a str)>; 3],
    events: Vec<&'a Entry>,
}

const ROW_NAMES: [&str; 3] = [
    "lifecycleState",
    "jobManagerDeploymentStatus",
    "jobStatus.state",
];

pub fn render_html(title: &str, entries: &[Entry], end_ms: u64) -> String {
    let end = end_ms
        .max(entries.iter().map(|e| e.at_ms).max().unwrap_or(0))
        .max(1000);
    let x = |ms: u64| LABEL_WIDTH + (ms as f64 / end as f64) * PLOT_WIDTH;
    let mut lanes: BTreeMap<&str, Lanes> = BTreeMap::new();
    let mut world: Vec<&Entry> = Vec::new();
    for e in entries {
        match &e.what {
            What::LifecycleState(s) => {
                lanes.entry(&e.resource).or_default().rows[0].push((e.at_ms, s))
            }
            What::JobManagerDeploymentStatus(s) => {
                lanes.entry(&e.resource).or_default().rows[1].push((e.at_ms, s))
            }
            What::JobState(s) => lanes.entry(&e.resource).or_default().rows[2].push((e.at_ms, s)),
            What::Event { .. } => lanes.entry(&e.resource).or_default().events.push(e),
            What::ReconciliationState(_) => {}
            What::Step(_) if e.resource != "world" => {
                lanes.entry(&e.resource).or_default().events.push(e)
            }
            _ => world.push(e),
        }
    }
    let lane_height = 4.0 * ROW + 16.0;
    let top = 48.0;
    let height = top + ROW + GAP + lanes.len() as f64 * (lane_height + GAP) + 10.0;
    let width = LABEL_WIDTH + PLOT_WIDTH + 20.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    // Time axis, at round steps.
    let step = [
        1u64, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
    ]
    .into_iter()
    .map(|s| s * 1000)
    .find(|s| end / s <= 12)
    .unwrap_or(end / 12 + 1);
    let mut t = 0;
    while t <= end {
        let px = x(t);
        let _ = write!(
            svg,
            r##"<line x1="{px:.1}" y1="{y1}" x2="{px:.1}" y2="{y2}" stroke="#e0e0e0"/><text x="{px:.1}" y="{ty}" text-anchor="middle" fill="#555">{}</text>"##,
            offset(t),
            y1 = top - 6.0,
            y2 = height - 10.0,
            ty = top - 10.0,
        );
        t += step;
    }
    // The world lane: steps, faults, heals, failures.
    let mut y = top;
    let _ = write!(
        svg,
        r##"<text x="8" y="{:.1}" font-weight="bold">steps and faults</text>"##,
        y + 13.0
    );
    for e in &world {
        let (shape, fill, text) = match &e.what {
            What::Step(s) => ("step", "#607d8b", format!("step: {s}")),
            What::Fault(s) => ("fault", "#d64541", format!("fault: {s}")),
            What::Heal(s) => ("heal", "#2e9d5b", format!("fault ends: {s}")),
            What::Failure(s) => ("fail", "#b71c1c", format!("FAILED: {s}")),
            _ => ("step", "#607d8b", e.to_string()),
        };
        let px = x(e.at_ms);
        let hover = format!("{} {}", offset(e.at_ms), escape(&text));
        match shape {
            "step" => {
                let _ = write!(
                    svg,
                    r#"<rect class="marker step" x="{:.1}" y="{:.1}" width="3" height="{ROW}" fill="{fill}"><title>{hover}</title></rect>"#,
                    px - 1.5,
                    y
                );
            }
            "fail" => {
                let _ = write!(
                    svg,
                    r#"<text class="marker failure" x="{px:.1}" y="{:.1}" text-anchor="middle" font-size="16" fill="{fill}">✖<title>{hover}</title></text>"#,
                    y + 15.0
                );
            }
            _ => {
                let (a, b) = if shape == "fault" {
                    (y + 2.0, y + ROW - 2.0)
                } else {
                    (y + ROW - 2.0, y + 2.0)
                };
                let _ = write!(
                    svg,
                    r#"<polygon class="marker {shape}" points="{:.1},{a:.1} {:.1},{b:.1} {:.1},{b:.1}" fill="{fill}"><title>{hover}</title></polygon>"#,
                    px,
                    px - 6.0,
                    px + 6.0
                );
            }
        }
    }
    y += ROW + GAP;
    for (resource, lane) in &lanes {
        let _ = write!(
            svg,
            r##"<rect x="4" y="{:.1}" width="{:.1}" height="{lane_height:.1}" fill="#fafafa" stroke="#eeeeee"/><text x="8" y="{:.1}" font-weight="bold">{}</text>"##,
            y - 4.0,
            width - 8.0,
            y + 8.0,
            escape(resource)
        );
        for (i, row) in lane.rows.iter().enumerate() {
            let ry = y + 12.0 + (i + 1) as f64 * ROW;
            let _ = write!(
                svg,
                r##"<text x="16" y="{:.1}" fill="#555">{}</text>"##,
                ry + 12.0,
                ROW_NAMES[i]
            );
            for (j, (from, state)) in row.iter().enumerate() {
                let to = row.get(j + 1).map(|n| n.0).unwrap_or(end);
                let (x0, x1) = (x(*from), x(to));
                let w = (x1 - x0).max(1.5);
                let hover = format!(
                    "{} {}={} from {} to {}",
                    escape(resource),
                    ROW_NAMES[i],
                    escape(state),
                    offset(*from),
                    offset(to)
                );
                let _ = write!(
                    svg,
                    r##"<rect class="band" x="{x0:.1}" y="{ry:.1}" width="{w:.1}" height="{:.1}" fill="{}" stroke="#ffffff" stroke-width="0.5"><title>{hover}</title></rect>"##,
                    ROW - 3.0,
                    colour(state)
                );
                if w > 70.0 {
                    let _ = write!(
                        svg,
                        r##"<text x="{:.1}" y="{:.1}" fill="#ffffff" pointer-events="none">{}</text>"##,
                        x0 + 4.0,
                        ry + 11.0,
                        escape(state)
                    );
                }
            }
        }
        let _ = write!(
            svg,
            r##"<text x="16" y="{:.1}" fill="#555">events</text>"##,
            y + 24.0
        );
        for e in &lane.events {
            let px = x(e.at_ms);
            let (fill, text) = match &e.what {
                What::Event {
                    kind,
                    reason,
                    message,
                } => (
                    if kind == "Warning" {
                        "#e65100"
                    } else {
                        "#1e88e5"
                    },
                    format!("{kind} {reason}: {message}"),
                ),
                _ => ("#607d8b", e.describe()),
            };
            let _ = write!(
                svg,
                r#"<circle class="marker event" cx="{px:.1}" cy="{:.1}" r="4" fill="{fill}"><title>{} {}</title></circle>"#,
                y + 20.0,
                offset(e.at_ms),
                escape(&text)
            );
        }
        y += lane_height + GAP;
    }
    svg.push_str("</svg>");
    let mut legend = String::new();
    for (label, state) in LEGEND {
        let _ = write!(
            legend,
            r#"<span><i style="background:{}"></i>{}</span>"#,
            colour(state),
            escape(label)
        );
    }
    legend.push_str(r#"<span><i class="dot" style="background:#1e88e5"></i>Normal event</span><span><i class="dot" style="background:#e65100"></i>Warning event</span><span><i class="tri" style="border-bottom-color:#d64541"></i>fault</span><span><i class="tri down" style="border-top-color:#2e9d5b"></i>fault ends</span><span><i style="background:#607d8b;width:3px"></i>step</span>"#);
    let mut rows = String::new();
    for e in entries {
        let _ = writeln!(
            rows,
            "<tr><td>{}</td><td>{}</td></tr>",
            offset(e.at_ms),
            escape(&e.describe())
        );
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 16px; color: #222; }}
h1 {{ font-size: 18px; }}
.marker:hover, .band:hover {{ opacity: 0.75; }}
table {{ border-collapse: collapse; font-size: 12px; font-family: monospace; }}
td {{ padding: 1px 8px; border-bottom: 1px solid #eee; vertical-align: top; }}
details {{ margin-top: 16px; }}
.legend {{ display: flex; flex-wrap: wrap; gap: 6px 18px; font-size: 12px; margin: 8px 0 0 8px; }}
.legend i {{ display: inline-block; width: 12px; height: 12px; margin-right: 5px; vertical-align: -2px; }}
.legend i.dot {{ border-radius: 6px; width: 9px; height: 9px; }}
.legend i.tri {{ width: 0; height: 0; border-left: 6px solid transparent; border-right: 6px solid transparent; border-bottom: 12px solid; }}
.legend i.tri.down {{ border-bottom: 0; border-top: 12px solid; }}
</style></head>
<body>
<h1>{title}</h1>
<p>Virtual time since the start of the run. Hover over a band or marker for details.</p>
{svg}
<div class="legend">{legend}</div>
<details><summary>The timeline as text ({n} entries)</summary><table>
{rows}</table></details>
</body></html>
"#,
        title = escape(title),
        n = entries.len()
    )
}
