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

impl Entry {
    /// What happened, without the time.
    pub fn describe(&self) -> String {
        let r = &self.resource;
        match &self.what {
            What::Step(s) => format!("step      {s}"),
            What::LifecycleState(s) => format!("{r} lifecycleState={s}"),
            What::JobManagerDeploymentStatus(s) => format!("{r} jobManagerDeploymentStatus={s}"),
            What::JobState(s) => format!("{r} jobStatus.state={s}"),
            What::ReconciliationState(s) => format!("{r} reconciliationStatus.state={s}"),
            What::Event {
                kind,
                reason,
                message,
            } => format!("{r} event {kind} {reason}: {message}"),
            What::Fault(s) => format!("fault     {s}"),
            What::Heal(s) => format!("heal      {s}"),
            What::Failure(s) => format!("FAILED    {s}"),
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.at_ms / 1000;
        let ms = self.at_ms % 1000;
        write!(
            f,
            "+{:>4}:{:02}.{:03} {}",
            secs / 60,
            secs % 60,
            ms,
            self.describe()
        )
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
