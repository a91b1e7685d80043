//! A Flink REST API that counts and times every call of the one it wraps, for the
//! `flink_operator_flink_rest_*` metrics. Errors count as errors whatever their kind.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use crate::observability::Metrics;
use crate::ports::*;

pub struct MeteredFlink<F> {
    pub inner: F,
    pub metrics: Arc<Metrics>,
}

macro_rules! metered {
    ($self:ident, $call:literal, $future:expr) => {{
        let start = Instant::now();
        let result = $future.await;
        $self
            .metrics
            .flink_call($call, result.is_ok(), start.elapsed());
        result
    }};
}

#[async_trait]
impl<F: FlinkApi> FlinkApi for MeteredFlink<F> {
    async fn overview(&self, at: &FlinkEndpoint) -> Result<ClusterOverview, FlinkError> {
        metered!(self, "overview", self.inner.overview(at))
    }
    async fn list_jobs(&self, at: &FlinkEndpoint) -> Result<Vec<JobOverview>, FlinkError> {
        metered!(self, "list_jobs", self.inner.list_jobs(at))
    }
    async fn upload_jar(&self, at: &FlinkEndpoint, local_path: &str) -> Result<String, FlinkError> {
        metered!(self, "upload_jar", self.inner.upload_jar(at, local_path))
    }
    async fn run_jar(
        &self,
        at: &FlinkEndpoint,
        jar_id: &str,
        request: &JarRunRequest,
    ) -> Result<JarRunResponse, FlinkError> {
        metered!(self, "run_jar", self.inner.run_jar(at, jar_id, request))
    }
    async fn delete_jar(&self, at: &FlinkEndpoint, jar_id: &str) -> Result<(), FlinkError> {
        metered!(self, "delete_jar", self.inner.delete_jar(at, jar_id))
    }
    async fn trigger_savepoint(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        target_directory: Option<String>,
        format_type: &str,
    ) -> Result<String, FlinkError> {
        metered!(
            self,
            "trigger_savepoint",
            self.inner
                .trigger_savepoint(at, job_id, target_directory, format_type)
        )
    }
    async fn stop_with_savepoint(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        target_directory: Option<String>,
        drain: bool,
    ) -> Result<String, FlinkError> {
        metered!(
            self,
            "stop_with_savepoint",
            self.inner
                .stop_with_savepoint(at, job_id, target_directory, drain)
        )
    }
    async fn savepoint_status(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<AsyncOperation, FlinkError> {
        metered!(
            self,
            "savepoint_status",
            self.inner.savepoint_status(at, job_id, trigger_id)
        )
    }
    async fn trigger_checkpoint(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        checkpoint_type: &str,
    ) -> Result<String, FlinkError> {
        metered!(
            self,
            "trigger_checkpoint",
            self.inner.trigger_checkpoint(at, job_id, checkpoint_type)
        )
    }
    async fn checkpoint_status(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<AsyncOperation, FlinkError> {
        metered!(
            self,
            "checkpoint_status",
            self.inner.checkpoint_status(at, job_id, trigger_id)
        )
    }
    async fn checkpoints(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
    ) -> Result<CheckpointStatistics, FlinkError> {
        metered!(self, "checkpoints", self.inner.checkpoints(at, job_id))
    }
    async fn cancel_job(&self, at: &FlinkEndpoint, job_id: &str) -> Result<(), FlinkError> {
        metered!(self, "cancel_job", self.inner.cancel_job(at, job_id))
    }
    async fn exceptions(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
    ) -> Result<JobExceptions, FlinkError> {
        metered!(self, "exceptions", self.inner.exceptions(at, job_id))
    }
    async fn dispose_savepoint(
        &self,
        at: &FlinkEndpoint,
        path: &str,
    ) -> Result<String, FlinkError> {
        metered!(
            self,
            "dispose_savepoint",
            self.inner.dispose_savepoint(at, path)
        )
    }
    async fn shutdown_cluster(&self, at: &FlinkEndpoint) -> Result<(), FlinkError> {
        metered!(self, "shutdown_cluster", self.inner.shutdown_cluster(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_call_is_counted_with_its_outcome() {
        let mut inner = MockFlinkApi::new();
        inner.expect_list_jobs().returning(|_| Ok(vec![])).times(2);
        inner
            .expect_cancel_job()
            .returning(|_, _| Err(FlinkError::Unavailable("down".into())));
        let metrics = Arc::new(Metrics::new());
        let flink = MeteredFlink {
            inner,
            metrics: metrics.clone(),
        };
        let at = FlinkEndpoint::for_cluster("ns", "c", 8081);
        flink.list_jobs(&at).await.unwrap();
        flink.list_jobs(&at).await.unwrap();
        flink.cancel_job(&at, "j").await.unwrap_err();
        let text = metrics.render();
        assert!(
            text.contains(
                r#"flink_operator_flink_rest_requests_total{call="list_jobs",outcome="ok"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"flink_operator_flink_rest_requests_total{call="cancel_job",outcome="error"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("flink_operator_flink_rest_duration_seconds_count{call=\"list_jobs\"} 2"),
            "{text}"
        );
    }
}
