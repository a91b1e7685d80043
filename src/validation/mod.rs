//! Validation of FlinkDeployment and FlinkSessionJob.
//!
//! Two layers:
//! * structural ([`schema`], [`manifest`]): a manifest as the API server would check it against
//!   the generated CRD schema — types, enum values, unknown fields, each with its full field
//!   path — plus `apiVersion`, `kind` and `metadata`;
//! * semantic ([`validate_deployment`], [`validate_session_job`]): the rules of upstream's
//!   `DefaultValidator`, plus the spec-change rules against the last reconciled spec.
//!
//! Unlike upstream, every problem is reported, not only the first. The same code backs
//! `flink-operator validate`, the reconciler (an invalid spec is refused and the last good one
//! stays in charge) and, later, the admission webhook.
//!
//! Deliberate difference from upstream: `spec.serviceAccount` is not required; it defaults to
//! `flink` (see [`effective_service_account`]).

pub mod manifest;
pub mod quantity;
pub mod rules;
pub mod schema;

use std::fmt;

pub use manifest::{
    validate_manifest_bytes, validate_manifest_files, validate_manifest_text, yaml_error,
    FileProblem, Finding, ManifestReport,
};
pub use quantity::{parse_memory, parse_quantity};
pub use rules::{
    effective_service_account, render_ingress_template, valid_name, validate_deployment,
    validate_session_job,
};

/// One thing wrong, at a field path (`spec.job.parallelism`) or a position (`line 3 column 5`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn at(path: &str, message: impl Into<String>) -> Self {
        Problem {
            path: path.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    /// `path: message`, or the message alone when there is no path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}
