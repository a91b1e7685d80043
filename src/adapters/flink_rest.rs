//! The Flink REST API over HTTP. Per-call timeouts; GETs (safe to repeat) are retried with a
//! short backoff when the connection fails, nothing else is: a jar run or a savepoint trigger
//! sent twice could start two jobs or take two savepoints. Jars are streamed from disk, never
//! held in memory whole.

use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{stream, Stream, StreamExt, TryStreamExt};
use http::{Method, Request, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use crate::ports::*;

/// How many times a failed GET is tried again, and the first pause between tries.
const GET_RETRIES: u32 = 2;
const RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// How much of a jar is read from disk (and held in memory) at a time while uploading.
const UPLOAD_CHUNK: usize = 64 * 1024;

/// A request body: a small JSON document in one piece, or a jar streamed from disk.
type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub struct FlinkRestClient {
    client: Client<HttpConnector, Body>,
    timeout: Duration,
    /// When set, every endpoint is reached at this base URL instead of its own (local runs
    /// and tests, where the cluster's Service name does not resolve).
    url_override: Option<String>,
}

impl FlinkRestClient {
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        FlinkRestClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
            url_override: None,
        }
    }

    pub fn with_url_override(mut self, base: impl Into<String>) -> Self {
        self.url_override = Some(base.into());
        self
    }

    fn url(&self, at: &FlinkEndpoint, path: &str) -> String {
        let base = self.url_override.as_deref().unwrap_or(&at.url);
        format!("{}{path}", base.trim_end_matches('/'))
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<(Bytes, String)>,
    ) -> Result<Value, FlinkError> {
        let mut request = Request::builder().method(method).uri(url);
        let body = match body {
            Some((bytes, content_type)) => {
                request = request.header("content-type", content_type);
                Full::new(bytes)
            }
            None => Full::new(Bytes::new()),
        };
        let request = request
            .body(body.map_err(|never| match never {}).boxed_unsync())
            .map_err(|e| FlinkError::Http {
                status: 0,
                message: e.to_string(),
            })?;
        self.exchange(request, url).await
    }

    /// Sends one request and reads the whole answer, both within the client's timeout, and
    /// maps the answer to JSON or to a typed error.
    async fn exchange(&self, request: Request<Body>, url: &str) -> Result<Value, FlinkError> {
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| FlinkError::Unavailable(format!("{url}: {e}")))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| FlinkError::Unavailable(format!("{url}: {e}")))?
                .to_bytes();
            Ok::<_, FlinkError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                FlinkError::Unavailable(format!("{url}: no answer within {:?}", self.timeout))
            })??;
        let value: Value = if bytes.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(&bytes).map_err(|e| FlinkError::Decode(format!("{url}: {e}")))?
        };
        if status.is_success() {
            return Ok(value);
        }
        let message = value["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e.as_str())
                    .map(|e| e.lines().next().unwrap_or(e).to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_else(|| value.to_string());
        Err(match status {
            StatusCode::NOT_FOUND => FlinkError::NotFound(message),
            StatusCode::CONFLICT => FlinkError::Conflict(message),
            _ if message.contains("already reached another terminal state") => {
                FlinkError::Conflict(message)
            }
            s => FlinkError::Http {
                status: s.as_u16(),
                message,
            },
        })
    }

    /// A GET, retried when the connection fails (it changes nothing on the server).
    async fn get(&self, at: &FlinkEndpoint, path: &str) -> Result<Value, FlinkError> {
        let url = self.url(at, path);
        let mut delay = RETRY_BACKOFF;
        let mut attempt = 0;
        loop {
            match self.send(Method::GET, &url, None).await {
                Err(FlinkError::Unavailable(_)) if attempt < GET_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                other => return other,
            }
        }
    }

    /// Anything that changes the cluster: sent once.
    async fn post(&self, at: &FlinkEndpoint, path: &str, body: Value) -> Result<Value, FlinkError> {
        let bytes = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        self.send(
            Method::POST,
            &self.url(at, path),
            Some((bytes, "application/json".into())),
        )
        .await
    }
}

/// What comes before the jar's bytes in the multipart body `POST /jars/upload` expects: the
/// opening boundary and the headers of its one part, named `jarfile`.
fn multipart_jar_preamble(file_name: &str, boundary: &str) -> String {
    // A quote or a line break in the name would end the header early (escaped as browsers do).
    let file_name = file_name
        .replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    format!(
        "--{boundary}\r\n\
         Content-Disposition: form-data; name=\"jarfile\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/x-java-archive\r\n\r\n"
    )
}

/// What comes after the jar's bytes: the closing boundary.
fn multipart_jar_epilogue(boundary: &str) -> String {
    format!("\r\n--{boundary}--\r\n")
}

/// A boundary no jar will contain by accident (the jar is streamed, so it cannot be checked).
fn multipart_boundary() -> String {
    let random = |salt: u64| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(salt);
        hasher.finish()
    };
    format!("flink-operator-{:016x}{:016x}", random(1), random(2))
}

/// Exactly `len` bytes of `file`, read `UPLOAD_CHUNK` at a time; an error if the file ends
/// sooner (it shrank since its size was taken, which would break the Content-Length). Bytes
/// past `len` (the file grew) are not sent.
fn file_chunks(
    mut file: tokio::fs::File,
    len: u64,
    path: String,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let mut remaining = len;
    let mut buf = vec![0u8; UPLOAD_CHUNK];
    stream::poll_fn(move |cx: &mut Context<'_>| {
        if remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let mut read_buf = tokio::io::ReadBuf::new(&mut buf[..want]);
        match tokio::io::AsyncRead::poll_read(Pin::new(&mut file), cx, &mut read_buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(std::io::Error::new(
                e.kind(),
                format!("reading {path}: {e}"),
            )))),
            Poll::Ready(Ok(())) if read_buf.filled().is_empty() => {
                remaining = 0;
                Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{path} became shorter while it was being uploaded"),
                ))))
            }
            Poll::Ready(Ok(())) => {
                let chunk = Bytes::copy_from_slice(read_buf.filled());
                remaining -= chunk.len() as u64;
                Poll::Ready(Some(Ok(chunk)))
            }
        }
    })
}

#[async_trait]
impl FlinkApi for FlinkRestClient {
    async fn overview(&self, at: &FlinkEndpoint) -> Result<ClusterOverview, FlinkError> {
        decode(self.get(at, "/overview").await?)
    }

    async fn list_jobs(&self, at: &FlinkEndpoint) -> Result<Vec<JobOverview>, FlinkError> {
        Ok(decode::<JobsOverview>(self.get(at, "/jobs/overview").await?)?.jobs)
    }

    /// Streams the jar from disk (never whole in memory) with an exact Content-Length. Sent
    /// once, like every POST. The client's timeout bounds the whole exchange, the upload
    /// included.
    async fn upload_jar(&self, at: &FlinkEndpoint, local_path: &str) -> Result<String, FlinkError> {
        let cannot_read = |e: std::io::Error| FlinkError::Http {
            status: 0,
            message: format!("cannot read {local_path}: {e}"),
        };
        let file = tokio::fs::File::open(local_path)
            .await
            .map_err(cannot_read)?;
        let metadata = file.metadata().await.map_err(cannot_read)?;
        if !metadata.is_file() {
            return Err(FlinkError::Http {
                status: 0,
                message: format!("cannot read {local_path}: not a regular file"),
            });
        }
        let file_name = std::path::Path::new(local_path)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "job.jar".into());
        let boundary = multipart_boundary();
        let preamble = Bytes::from(multipart_jar_preamble(&file_name, &boundary));
        let epilogue = Bytes::from(multipart_jar_epilogue(&boundary));
        let content_length = preamble.len() as u64 + metadata.len() + epilogue.len() as u64;
        let chunks = stream::iter([Ok(preamble)])
            .chain(file_chunks(file, metadata.len(), local_path.to_string()))
            .chain(stream::iter([Ok(epilogue)]));
        let body = StreamBody::new(chunks.map_ok(Frame::data)).boxed_unsync();
        let url = self.url(at, "/jars/upload");
        let request = Request::builder()
            .method(Method::POST)
            .uri(&url)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header("content-length", content_length)
            .body(body)
            .map_err(|e| FlinkError::Http {
                status: 0,
                message: e.to_string(),
            })?;
        let answer = self.exchange(request, &url).await?;
        Ok(decode::<JarUploadResponse>(answer)?.jar_id().to_string())
    }

    async fn run_jar(
        &self,
        at: &FlinkEndpoint,
        jar_id: &str,
        request: &JarRunRequest,
    ) -> Result<JarRunResponse, FlinkError> {
        let body = serde_json::to_value(request).unwrap_or_default();
        decode(self.post(at, &format!("/jars/{jar_id}/run"), body).await?)
    }

    async fn delete_jar(&self, at: &FlinkEndpoint, jar_id: &str) -> Result<(), FlinkError> {
        self.send(
            Method::DELETE,
            &self.url(at, &format!("/jars/{jar_id}")),
            None,
        )
        .await
        .map(|_| ())
    }

    async fn trigger_savepoint(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        target_directory: Option<String>,
        format_type: &str,
    ) -> Result<String, FlinkError> {
        let body = json!({"target-directory": target_directory, "cancel-job": false, "formatType": format_type});
        Ok(decode::<TriggerResponse>(
            self.post(at, &format!("/jobs/{job_id}/savepoints"), body)
                .await?,
        )?
        .request_id)
    }

    async fn stop_with_savepoint(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        target_directory: Option<String>,
        drain: bool,
    ) -> Result<String, FlinkError> {
        let body = json!({"targetDirectory": target_directory, "drain": drain});
        Ok(
            decode::<TriggerResponse>(self.post(at, &format!("/jobs/{job_id}/stop"), body).await?)?
                .request_id,
        )
    }

    async fn savepoint_status(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<AsyncOperation, FlinkError> {
        decode(
            self.get(at, &format!("/jobs/{job_id}/savepoints/{trigger_id}"))
                .await?,
        )
    }

    async fn trigger_checkpoint(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        checkpoint_type: &str,
    ) -> Result<String, FlinkError> {
        let body = json!({"checkpointType": checkpoint_type});
        Ok(decode::<TriggerResponse>(
            self.post(at, &format!("/jobs/{job_id}/checkpoints"), body)
                .await?,
        )?
        .request_id)
    }

    async fn checkpoint_status(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<AsyncOperation, FlinkError> {
        decode(
            self.get(at, &format!("/jobs/{job_id}/checkpoints/{trigger_id}"))
                .await?,
        )
    }

    async fn checkpoints(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
    ) -> Result<CheckpointStatistics, FlinkError> {
        decode(self.get(at, &format!("/jobs/{job_id}/checkpoints")).await?)
    }

    async fn cancel_job(&self, at: &FlinkEndpoint, job_id: &str) -> Result<(), FlinkError> {
        self.send(
            Method::PATCH,
            &self.url(at, &format!("/jobs/{job_id}?mode=cancel")),
            None,
        )
        .await
        .map(|_| ())
    }

    async fn exceptions(
        &self,
        at: &FlinkEndpoint,
        job_id: &str,
    ) -> Result<JobExceptions, FlinkError> {
        decode(self.get(at, &format!("/jobs/{job_id}/exceptions")).await?)
    }

    async fn dispose_savepoint(
        &self,
        at: &FlinkEndpoint,
        path: &str,
    ) -> Result<String, FlinkError> {
        let body = json!({"savepoint-path": path});
        Ok(
            decode::<TriggerResponse>(self.post(at, "/savepoint-disposal", body).await?)?
                .request_id,
        )
    }

    async fn shutdown_cluster(&self, at: &FlinkEndpoint) -> Result<(), FlinkError> {
        self.send(Method::DELETE, &self.url(at, "/cluster"), None)
            .await
            .map(|_| ())
    }
}
