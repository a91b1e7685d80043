// TEMPORARY until the validation module lands.
use std::collections::BTreeMap;
pub struct Problem {
    pub path: String,
    pub message: String,
}
impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}
pub fn validate_deployment(
    fd: &crate::crd::FlinkDeployment,
    _l: Option<&crate::crd::FlinkDeploymentSpec>,
    _d: &BTreeMap<String, String>,
) -> Vec<Problem> {
    let mut v = vec![];
    if fd
        .spec
        .job
        .as_ref()
        .and_then(|j| j.parallelism)
        .map(|p| p < 1)
        .unwrap_or(false)
    {
        v.push(Problem {
            path: "spec.job.parallelism".into(),
            message: "must be at least 1".into(),
        });
    }
    v
}
