//! The validating admission webhook: `POST /validate` with an `admission.k8s.io/v1`
//! AdmissionReview, served over HTTPS (rustls). It runs the same validation as
//! `flink-operator validate`, so a bad manifest is refused at `kubectl apply` time with the
//! message the command line would print. A session job is validated with the session cluster
//! it names, read from the API as upstream's webhook does.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::crd::FlinkDeployment;
use crate::ports::KubeApi;

/// AdmissionReview bodies are small; anything larger is refused unread.
const MAX_BODY: usize = 3 << 20;

/// The answer to one AdmissionReview request: allowed, or refused with the problems.
pub async fn review(request: &Value, kube: &dyn KubeApi) -> Value {
    let uid = request["request"]["uid"].clone();
    let refuse = |message: String| {
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": uid, "allowed": false,
                         "status": {"code": 422, "reason": "Invalid", "message": message}}
        })
    };
    let allow = || {
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": uid, "allowed": true}
        })
    };
    let operation = request["request"]["operation"].as_str().unwrap_or("");
    let object = &request["request"]["object"];
    if !matches!(operation, "CREATE" | "UPDATE") || object.is_null() {
        return allow();
    }
    // A resource on its way out is not judged again (its finalizer must be able to finish).
    if object["metadata"].get("deletionTimestamp").is_some() {
        return allow();
    }
    let mut documents = vec![("request", object.to_string())];
    if object["kind"] == "FlinkSessionJob" {
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .or_else(|| request["request"]["namespace"].as_str())
            .unwrap_or("default");
        if let Some(session) = object["spec"]["deploymentName"].as_str() {
            if let Ok(Some(fd)) = kube.get_flink_deployment(namespace, session).await {
                documents.push(("session", session_document((*fd).clone())));
            }
        }
    }
    let files: Vec<(&str, &str)> = documents.iter().map(|(f, t)| (*f, t.as_str())).collect();
    let report = crate::validation::validate_manifest_files(&files);
    let problems: Vec<String> = report
        .problems()
        .filter(|p| p.file == "request")
        .map(|p| match p.position {
            Some(_) => p.problem.message.clone(),
            None if p.resource.is_empty() => p.problem.to_string(),
            None => format!("{}: {}", p.resource, p.problem),
        })
        .collect();
    if problems.is_empty() {
        allow()
    } else {
        refuse(problems.join("; "))
    }
}

/// The session cluster as a document to validate beside the job (its status dropped: only
/// its spec matters, and the validator judges the spec alone).
fn session_document(mut fd: FlinkDeployment) -> String {
    fd.status = None;
    fd.metadata.managed_fields = None;
    serde_json::to_string(&fd).unwrap_or_default()
}

/// TLS settings from PEM files (the certificate chain and its private key), as cert-manager
/// or a Secret mounts them.
pub fn tls_acceptor(cert_file: &str, key_file: &str) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| format!("{cert_file}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{cert_file}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{cert_file}: no certificate in it"));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| format!("{key_file}: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("{cert_file}, {key_file}: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The TLS settings, re-read when the certificate file changes (cert-manager renews it in
/// place), so a renewed certificate is served without a restart.
pub struct TlsFiles {
    cert_file: String,
    key_file: String,
    current: std::sync::Mutex<(Option<std::time::SystemTime>, TlsAcceptor)>,
}

impl TlsFiles {
    pub fn load(cert_file: &str, key_file: &str) -> Result<Self, String> {
        let acceptor = tls_acceptor(cert_file, key_file)?;
        Ok(TlsFiles {
            cert_file: cert_file.to_string(),
            key_file: key_file.to_string(),
            current: std::sync::Mutex::new((modified(cert_file), acceptor)),
        })
    }

    /// The acceptor for the next connection; a new certificate that does not load yet (say,
    /// the key not written) keeps the old one in service.
    fn acceptor(&self) -> TlsAcceptor {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let now = modified(&self.cert_file);
        if now != current.0 {
            match tls_acceptor(&self.cert_file, &self.key_file) {
                Ok(acceptor) => {
                    tracing::info!(file = %self.cert_file, "webhook certificate reloaded");
                    *current = (now, acceptor);
                }
                Err(e) => tracing::warn!(error = %e, "webhook certificate not reloaded"),
            }
        }
        current.1.clone()
    }
}

fn modified(file: &str) -> Option<std::time::SystemTime> {
    std::fs::metadata(file).and_then(|m| m.modified()).ok()
}

/// Serves the webhook on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<TlsFiles>,
    kube: Arc<dyn KubeApi>,
) -> std::io::Result<()> {
    loop {
        let (tcp, peer) = listener.accept().await?;
        let tls = tls.acceptor();
        let kube = kube.clone();
        tokio::spawn(async move {
            let stream = match tls.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let service = service_fn(move |request: Request<Incoming>| {
                let kube = kube.clone();
                async move { Ok::<_, Infallible>(answer(request, kube.as_ref()).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(request: Request<Incoming>, kube: &dyn KubeApi) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    };
    if request.method() != Method::POST || request.uri().path() != "/validate" {
        return reply(
            StatusCode::NOT_FOUND,
            r#"{"error":"POST /validate"}"#.into(),
        );
    }
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": e.to_string()}).to_string(),
            )
        }
    };
    let Ok(review_request) = serde_json::from_slice::<Value>(&body) else {
        return reply(
            StatusCode::BAD_REQUEST,
            r#"{"error":"the body is not an AdmissionReview"}"#.into(),
        );
    };
    reply(
        StatusCode::OK,
        review(&review_request, kube).await.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MockKubeApi;

    fn basic() -> Value {
        json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "metadata": {"name": "basic-example", "namespace": "default"},
            "spec": {
                "image": "flink:2.2", "flinkVersion": "v2_2", "serviceAccount": "flink",
                "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"},
                "jobManager": {"resource": {"memory": "2048m", "cpu": 1}},
                "taskManager": {"resource": {"memory": "2048m", "cpu": 1}},
                "job": {"jarURI": "local:///opt/flink/examples/streaming/StateMachineExample.jar",
                        "parallelism": 2, "upgradeMode": "stateless"}
            }
        })
    }

    fn admission(operation: &str, object: Value) -> Value {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
               "request": {"uid": "u-1", "operation": operation, "namespace": "default",
                           "object": object}})
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_valid_deployment_is_allowed_and_a_bad_one_refused_with_the_validator_message() {
        let kube = MockKubeApi::new();
        let ok = block_on(review(&admission("CREATE", basic()), &kube));
        assert_eq!(ok["response"]["allowed"], true, "{ok}");
        assert_eq!(ok["response"]["uid"], "u-1");

        let mut bad = basic();
        bad["spec"]["job"]["parallelism"] = json!(-1);
        bad["spec"].as_object_mut().unwrap().remove("flinkVersion");
        let refused = block_on(review(&admission("UPDATE", bad), &kube));
        assert_eq!(refused["response"]["allowed"], false, "{refused}");
        let message = refused["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.contains("FlinkDeployment/basic-example: spec.flinkVersion"),
            "{message}"
        );
        assert!(message.contains("spec.job.parallelism"), "{message}");
        // Deletes are never refused.
        let delete = block_on(review(&admission("DELETE", json!(null)), &kube));
        assert_eq!(delete["response"]["allowed"], true);
    }

    #[test]
    fn a_session_job_is_judged_with_the_cluster_it_names() {
        let mut kube = MockKubeApi::new();
        kube.expect_get_flink_deployment()
            .withf(|ns, name| ns == "default" && name == "basic-example")
            .returning(|_, _| {
                Ok(Some(std::sync::Arc::new(
                    serde_json::from_value(basic()).unwrap(),
                )))
            });
        let job = json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkSessionJob",
            "metadata": {"name": "job", "namespace": "default"},
            "spec": {"deploymentName": "basic-example",
                     "job": {"jarURI": "https://repo.example.com/job.jar", "parallelism": 1}}
        });
        let refused = block_on(review(&admission("CREATE", job), &kube));
        let message = refused["response"]["status"]["message"].as_str().unwrap();
        assert!(message.contains("not a session cluster"), "{message}");
    }

    #[test]
    fn admission_reviews_are_answered_over_https() {
        let dir =
            std::env::temp_dir().join(format!("flink-operator-webhook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert_file, key_file) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert_file, cert.cert.pem()).unwrap();
        std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
        let tls = Arc::new(
            TlsFiles::load(cert_file.to_str().unwrap(), key_file.to_str().unwrap()).unwrap(),
        );

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let port = runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let kube: Arc<dyn KubeApi> = Arc::new(MockKubeApi::new());
            tokio::spawn(serve(listener, tls, kube));
            port
        });
        let post = |object: Value| {
            let out = std::process::Command::new("curl")
                .args([
                    "-sS",
                    "--cacert",
                    cert_file.to_str().unwrap(),
                    "-H",
                    "content-type: application/json",
                    "--data-binary",
                    "@-",
                ])
                .arg(format!("https://localhost:{port}/validate"))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut child| {
                    use std::io::Write;
                    child
                        .stdin
                        .take()
                        .unwrap()
                        .write_all(admission("CREATE", object).to_string().as_bytes())?;
                    child.wait_with_output()
                })
                .expect("curl runs");
            serde_json::from_slice::<Value>(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
        };
        assert_eq!(post(basic())["response"]["allowed"], true);
        let mut bad = basic();
        bad["spec"]["job"]["upgradeMode"] = json!("sometimes");
        let refused = post(bad);
        assert_eq!(refused["response"]["allowed"], false, "{refused}");
        assert!(refused["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("spec.job.upgradeMode"));

        // A renewed certificate (written in place, as cert-manager does) is served at once.
        let renewed = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(&key_file, renewed.signing_key.serialize_pem()).unwrap();
        std::fs::write(&cert_file, renewed.cert.pem()).unwrap();
        assert_eq!(
            post(basic())["response"]["allowed"],
            true,
            "trusted with the new CA"
        );
        runtime.shutdown_background();
    }
}
