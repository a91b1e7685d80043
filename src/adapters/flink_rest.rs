//! The Flink REST API over HTTP. Per-call timeouts; GETs (safe to repeat) are retried with a
//! short backoff when the connection fails, nothing else is: a jar run or a savepoint trigger
//! sent twice could start two jobs or take two savepoints. Jars are streamed from disk, never
//! held in memory whole.
//!
//! HTTPS: an endpoint whose URL is `https://` (`FlinkEndpoint::with_https`, for clusters with
//! Flink's `security.ssl.rest.enabled: true`) is reached over TLS (rustls). The server's
//! certificate must chain to the system's roots or to the CA in the PEM file named by the
//! operator key [`REST_CA_FILE`], and name the host the operator connects to (the REST
//! Service, `<cluster-id>-rest.<namespace>`). Flink's own trust and key stores
//! (`security.ssl.rest.truststore`, `.keystore`) are JKS or PKCS12 files inside the cluster's
//! image, which the operator neither has nor can read: give it the CA as PEM. Client
//! certificates (`security.ssl.rest.authentication-enabled`) are not supported.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{stream, Stream, StreamExt, TryStreamExt};
use http::{Method, Request, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};

use crate::ports::*;

/// How many times a failed GET is tried again, and the first pause between tries.
const GET_RETRIES: u32 = 2;
const RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// How much of a jar is read from disk (and held in memory) at a time while uploading.
const UPLOAD_CHUNK: usize = 64 * 1024;

/// A request body: a small JSON document in one piece, or a jar streamed from disk.
type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// The operator key naming a PEM file with the CA certificate(s) that sign the JobManagers'
/// REST certificates (trusted besides the system's roots).
pub const REST_CA_FILE: &str = "kubernetes.operator.flink.rest.ca-file";

/// TCP, and TLS for `https://` URLs.
pub type DefaultConnector = HttpsConnector<HttpConnector>;

/// The client over a connector `C` (how a connection to `host:port` is made): TCP with TLS
/// for `https://` in production; anything hyper-util can connect through in tests, for
/// example a simulated network. Timeouts, retries and error mapping are the same whatever
/// the connector.
pub struct FlinkRestClient<C = DefaultConnector> {
    client: Client<C, Body>,
    timeout: Duration,
    /// When set, every endpoint is reached at this base URL instead of its own (local runs
    /// and tests, where the cluster's Service name does not resolve).
    url_override: Option<String>,
}

impl FlinkRestClient {
    /// Over TCP, with `timeout` for connecting and for each whole exchange; `https://`
    /// endpoints are trusted by the system's roots.
    pub fn new(timeout: Duration) -> Self {
        let roots = system_roots();
        FlinkRestClient::with_connector(tcp_connector(timeout, roots), timeout)
    }

    /// As [`FlinkRestClient::new`], also trusting the CA certificates in the PEM file `ca_file`.
    pub fn with_ca_file(timeout: Duration, ca_file: &Path) -> std::io::Result<Self> {
        let mut roots = system_roots();
        let invalid = |e: String| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", ca_file.display()),
            )
        };
        let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_file)
            .map_err(|e| invalid(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(e.to_string()))?;
        if certificates.is_empty() {
            return Err(invalid("no CERTIFICATE in the file".into()));
        }
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|e| invalid(format!("not a usable CA certificate: {e}")))?;
        }
        Ok(FlinkRestClient::with_connector(
            tcp_connector(timeout, roots),
            timeout,
        ))
    }

    /// From the operator's configuration: [`REST_CA_FILE`] if set.
    pub fn from_operator_config(
        operator_config: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> std::io::Result<Self> {
        match operator_config.get(REST_CA_FILE).map(|v| v.trim()) {
            Some(path) if !path.is_empty() => Self::with_ca_file(timeout, Path::new(path)),
            _ => Ok(Self::new(timeout)),
        }
    }
}

/// The system's trusted roots, read once per process (unreadable ones are skipped).
fn system_roots() -> rustls::RootCertStore {
    static NATIVE: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    let native = NATIVE.get_or_init(|| rustls_native_certs::load_native_certs().certs);
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(native.iter().cloned());
    roots
}

/// TCP with a connect timeout; TLS (ring, TLS 1.2 and 1.3) for `https://`, plain HTTP for
/// `http://`.
fn tcp_connector(timeout: Duration, roots: rustls::RootCertStore) -> DefaultConnector {
    let mut tcp = HttpConnector::new();
    tcp.set_connect_timeout(Some(timeout));
    tcp.enforce_http(false);
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp)
}

/// An error with its causes, for the messages of connection failures (hyper's own message is
/// only "client error (Connect)"; the cause says refused, timed out or which TLS check failed).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

impl<C> FlinkRestClient<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    /// Over any connector; `timeout` bounds each whole exchange (connecting included).
    pub fn with_connector(connector: C, timeout: Duration) -> Self {
        FlinkRestClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
            url_override: None,
        }
    }

    /// Reach clusters at this base URL instead of their Service. `{namespace}` and `{name}`
    /// in it are replaced by the cluster's (one proxy or gateway for many clusters, as
    /// `flink-sim serve --external-operator` offers); without them every cluster is there.
    pub fn with_url_override(mut self, base: impl Into<String>) -> Self {
        self.url_override = Some(base.into());
        self
    }

    fn url(&self, at: &FlinkEndpoint, path: &str) -> String {
        let base = match self.url_override.as_deref() {
            Some(template) => template
                .replace("{namespace}", &at.namespace)
                .replace("{name}", &at.cluster_id),
            None => at.url.clone(),
        };
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
                .map_err(|e| FlinkError::Unavailable(format!("{url}: {}", with_causes(&e))))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| FlinkError::Unavailable(format!("{url}: {}", with_causes(&e))))?
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
impl<C> FlinkApi for FlinkRestClient<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
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

#[cfg(test)]
mod tls_tests {
    //! HTTPS against a local TLS server whose certificate a freshly generated CA signed.

    use std::convert::Infallible;
    use std::path::PathBuf;

    use http::Response;
    use hyper::body::Incoming;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    use rustls::pki_types::PrivateKeyDer;

    use super::*;

    const OVERVIEW: &str = r#"{"taskmanagers":1,"slots-total":2,"slots-available":2,"jobs-running":0,"flink-version":"2.3.0"}"#;

    struct Pki {
        dir: PathBuf,
        ca_file: PathBuf,
        server: rustls::ServerConfig,
    }

    /// A CA, and a server certificate it signs for `localhost`, `127.0.0.1` and the REST
    /// Service name `app-rest.default`.
    fn make_pki(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!(
            "flink-operator-rest-tls-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "flink-operator test CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "app-rest.default".to_string(),
        ])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
        Pki {
            dir,
            ca_file,
            server,
        }
    }

    /// Serves `/overview` over TLS on 127.0.0.1; returns the port.
    async fn serve(config: rustls::ServerConfig) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: nothing to serve.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(|request: Request<Incoming>| async move {
                        let (status, body) = match request.uri().path() {
                            "/overview" => (200, OVERVIEW.to_string()),
                            path => (404, format!(r#"{{"errors":["Not found: {path}"]}}"#)),
                        };
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        port
    }

    fn at() -> FlinkEndpoint {
        FlinkEndpoint::for_cluster("default", "app", 8081).with_https(true)
    }

    #[test]
    fn an_ssl_rest_cluster_is_an_https_endpoint() {
        let plain = FlinkEndpoint::for_cluster("default", "app", 8081);
        assert_eq!(plain.url, "http://app-rest.default:8081");
        assert!(!plain.is_https());
        assert_eq!(plain.clone().with_https(false), plain);
        assert_eq!(at().url, "https://app-rest.default:8081");
        assert!(at().is_https());
        assert!(rest_ssl_enabled(Some("true")));
        assert!(rest_ssl_enabled(Some(" TRUE ")));
        assert!(!rest_ssl_enabled(Some("false")));
        assert!(!rest_ssl_enabled(None));
    }

    #[tokio::test]
    async fn https_with_the_ca_from_the_operator_configuration() {
        let pki = make_pki("trusted");
        let port = serve(pki.server).await;
        let config: BTreeMap<String, String> = [(
            REST_CA_FILE.to_string(),
            pki.ca_file.to_string_lossy().to_string(),
        )]
        .into_iter()
        .collect();
        let timeout = Duration::from_secs(5);
        for host in ["localhost", "127.0.0.1"] {
            let client = FlinkRestClient::from_operator_config(&config, timeout)
                .unwrap()
                .with_url_override(format!("https://{host}:{port}"));
            let overview = client.overview(&at()).await.unwrap();
            assert_eq!(overview.flink_version, "2.3.0", "{host}");
            let missing = client.checkpoints(&at(), "ffff").await;
            assert!(
                matches!(missing, Err(FlinkError::NotFound(ref m)) if m == "Not found: /jobs/ffff/checkpoints"),
                "{missing:?}"
            );
        }
        let _ = std::fs::remove_dir_all(&pki.dir);
    }

    #[tokio::test]
    async fn an_untrusted_certificate_is_refused_and_says_why() {
        let pki = make_pki("untrusted");
        let port = serve(pki.server).await;
        // The system's roots alone do not know the test CA.
        let client = FlinkRestClient::new(Duration::from_secs(5))
            .with_url_override(format!("https://localhost:{port}"));
        match client.overview(&at()).await {
            Err(FlinkError::Unavailable(m)) => {
                assert!(m.contains("certificate"), "{m}");
                assert!(m.contains("UnknownIssuer"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        // Trusting another CA does not help.
        let other_pki = make_pki("other-ca");
        let client = FlinkRestClient::with_ca_file(Duration::from_secs(5), &other_pki.ca_file)
            .unwrap()
            .with_url_override(format!("https://localhost:{port}"));
        assert!(matches!(
            client.overview(&at()).await,
            Err(FlinkError::Unavailable(_))
        ));
        let _ = std::fs::remove_dir_all(&pki.dir);
        let _ = std::fs::remove_dir_all(&other_pki.dir);
    }

    #[tokio::test]
    async fn plain_http_still_works_and_a_bad_ca_file_is_an_error() {
        let missing = FlinkRestClient::with_ca_file(
            Duration::from_secs(1),
            Path::new("/nonexistent/flink-ca.pem"),
        );
        assert!(missing.is_err());
        let pki = make_pki("not-pem");
        let not_pem = pki.dir.join("not.pem");
        std::fs::write(&not_pem, "not a certificate").unwrap();
        let err = FlinkRestClient::with_ca_file(Duration::from_secs(1), &not_pem)
            .err()
            .expect("no certificate in the file");
        assert!(err.to_string().contains("no CERTIFICATE"), "{err}");
        // Nothing listens there: plain HTTP is refused, as before.
        let client =
            FlinkRestClient::new(Duration::from_secs(2)).with_url_override("http://127.0.0.1:1");
        match client.overview(&at()).await {
            Err(FlinkError::Unavailable(m)) => assert!(m.contains("refused"), "{m}"),
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(&pki.dir);
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn the_override_may_name_each_cluster() {
        let at = FlinkEndpoint::for_cluster("team-a", "orders", 8081);
        let plain = FlinkRestClient::new(Duration::from_secs(1));
        assert_eq!(
            plain.url(&at, "/overview"),
            "http://orders-rest.team-a:8081/overview"
        );
        let https = FlinkEndpoint::for_cluster("team-a", "orders", 8081).with_https(true);
        assert_eq!(
            plain.url(&https, "/overview"),
            "https://orders-rest.team-a:8081/overview"
        );
        let one = FlinkRestClient::new(Duration::from_secs(1))
            .with_url_override("http://127.0.0.1:8081/");
        assert_eq!(one.url(&at, "/overview"), "http://127.0.0.1:8081/overview");
        let each = FlinkRestClient::new(Duration::from_secs(1))
            .with_url_override("http://127.0.0.1:9000/flink/{namespace}/{name}");
        assert_eq!(
            each.url(&at, "/jobs/overview"),
            "http://127.0.0.1:9000/flink/team-a/orders/jobs/overview"
        );
    }
}
