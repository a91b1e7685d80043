//! The timeline of a run: what changed, when (virtual time since the start of the run).

use std::fmt;

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Virtual milliseconds since the run started.
    pub at_ms: u64,
    /// `FlinkDeployment/default/basic`, or `world` for things not tied to a resource.
    pub resource: String,
    pub what: What,
}

#[derive(Clone, Debug, PartialEq)]
pub enum What {
    /// A scenario step began (`apply`, `patch`, ...), with a short description.
    Step(String),
    LifecycleState(String),
    JobManagerDeploymentStatus(String),
    /// The job state as the operator reports it in status.
    JobState(String),
    ReconciliationState(String),
    /// A Kubernetes Event the operator emitted.
    Event {
        kind: String,
        reason: String,
        message: String,
    },
    /// A fault was injected (or healed), with a description.
    Fault(String),
    Heal(String),
    /// An `await`/`expect` failed.
    Failure(String),
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.at_ms / 1000;
        let ms = self.at_ms % 1000;
        write!(f, "+{:>4}:{:02}.{:03} ", secs / 60, secs % 60, ms)?;
        match &self.what {
            What::Step(s) => write!(f, "step      {s}"),
            What::LifecycleState(s) => write!(f, "{} lifecycleState={s}", self.resource),
            What::JobManagerDeploymentStatus(s) => {
                write!(f, "{} jobManagerDeploymentStatus={s}", self.resource)
            }
            What::JobState(s) => write!(f, "{} jobStatus.state={s}", self.resource),
            What::ReconciliationState(s) => {
                write!(f, "{} reconciliationStatus.state={s}", self.resource)
            }
            What::Event {
                kind,
                reason,
                message,
            } => write!(f, "{} event {kind} {reason}: {message}", self.resource),
            What::Fault(s) => write!(f, "fault     {s}"),
            What::Heal(s) => write!(f, "heal      {s}"),
            What::Failure(s) => write!(f, "FAILED    {s}"),
        }
    }
}

/// The whole timeline as text, one entry a line.
pub fn render(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries {
        out.push_str(&e.to_string());
        out.push('\n');
    }
    out
}
