//! `FlinkRestClient::upload_jar` against a tiny local HTTP server that takes the request
//! apart: the jar is streamed as one multipart part with an exact Content-Length, and its
//! bytes arrive unchanged.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use flink_operator::adapters::flink_rest::FlinkRestClient;
use flink_operator::ports::*;

/// What the server saw of the one request it answered.
#[derive(Debug)]
struct Received {
    method: String,
    path: String,
    content_length: Option<u64>,
    transfer_encoding: Option<String>,
    content_type: String,
    body: Bytes,
}

/// Serves one connection on 127.0.0.1:0, answers every request with `reply`, and hands the
/// first request over. Returns the base URL.
async fn serve_once(reply: &'static str) -> (String, oneshot::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (tx, rx) = oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let service = service_fn(move |request: Request<Incoming>| {
            let tx = tx.clone();
            async move {
                let header = |name: &str| {
                    request
                        .headers()
                        .get(name)
                        .map(|v| v.to_str().expect("ASCII header").to_string())
                };
                let content_length = header("content-length").map(|v| v.parse().expect("number"));
                let transfer_encoding = header("transfer-encoding");
                let content_type = header("content-type").unwrap_or_default();
                let method = request.method().to_string();
                let path = request.uri().path().to_string();
                let body = request
                    .into_body()
                    .collect()
                    .await
                    .expect("the whole body")
                    .to_bytes();
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send(Received {
                        method,
                        path,
                        content_length,
                        transfer_encoding,
                        content_type,
                        body,
                    });
                }
                Ok::<_, Infallible>(
                    Response::builder()
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from_static(reply.as_bytes())))
                        .unwrap(),
                )
            }
        });
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
    (url, rx)
}

/// A file of `len` pseudo-random bytes in a directory of its own; removed on drop.
struct TempJar {
    dir: PathBuf,
    path: PathBuf,
}

impl TempJar {
    fn new(test: &str, name: &str, len: usize) -> (Self, Vec<u8>) {
        let dir =
            std::env::temp_dir().join(format!("flink-rest-upload-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let content: Vec<u8> = (0..len)
            .map(|_| {
                // xorshift64: every byte value shows up, CR/LF and '-' included.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let path = dir.join(name);
        std::fs::write(&path, &content).expect("write the jar");
        (TempJar { dir, path }, content)
    }
}

impl Drop for TempJar {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The one part of a multipart/form-data body: its headers (lower-cased names) and content.
fn single_part(content_type: &str, body: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .unwrap_or_else(|| panic!("not multipart/form-data: {content_type}"));
    assert!(!boundary.is_empty() && boundary.len() <= 70, "{boundary}");
    let opening = format!("--{boundary}\r\n");
    let closing = format!("\r\n--{boundary}--\r\n");
    assert!(
        body.starts_with(opening.as_bytes()),
        "the body starts with the boundary"
    );
    assert!(
        body.ends_with(closing.as_bytes()),
        "the body ends with the closing boundary"
    );
    let inner = &body[opening.len()..body.len() - closing.len()];
    let split = inner
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the part's headers end");
    let headers = std::str::from_utf8(&inner[..split])
        .expect("headers are text")
        .split("\r\n")
        .map(|line| {
            let (name, value) = line.split_once(':').expect("a header line");
            (name.trim().to_ascii_lowercase(), value.trim().to_string())
        })
        .collect();
    let content = inner[split + 4..].to_vec();
    let delimiter = format!("\r\n--{boundary}");
    assert!(
        !content
            .windows(delimiter.len())
            .any(|w| w == delimiter.as_bytes()),
        "one part only, and the boundary does not occur in the content"
    );
    (headers, content)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_jar_streams_the_file_as_one_multipart_part() {
    // A few MB, not a multiple of the 64 KiB read size.
    let (jar, content) = TempJar::new("streams", "abc_job.jar", 5 * 1024 * 1024 + 12_345);
    let (url, received) =
        serve_once(r#"{"filename":"/tmp/x/abc_job.jar","status":"success"}"#).await;
    let client = FlinkRestClient::new(Duration::from_secs(30)).with_url_override(url);
    let at = FlinkEndpoint::for_cluster("default", "local", 8081);

    let jar_id = client
        .upload_jar(&at, jar.path.to_str().unwrap())
        .await
        .expect("upload");
    assert_eq!(jar_id, "abc_job.jar");

    let request = received.await.expect("the server saw the request");
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/jars/upload");
    assert_eq!(
        request.transfer_encoding, None,
        "sized, not chunked: {request:?}"
    );
    assert_eq!(
        request.content_length,
        Some(request.body.len() as u64),
        "Content-Length is the number of bytes sent"
    );
    let (headers, received_content) = single_part(&request.content_type, &request.body);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("part header {name} missing: {headers:?}"))
    };
    assert_eq!(
        header("content-disposition"),
        r#"form-data; name="jarfile"; filename="abc_job.jar""#
    );
    assert_eq!(header("content-type"), "application/x-java-archive");
    assert_eq!(received_content.len(), content.len());
    assert!(received_content == content, "the jar's bytes round-trip");
}

#[tokio::test]
async fn upload_jar_of_an_empty_file_sends_an_empty_part() {
    let (jar, _) = TempJar::new("empty", "empty.jar", 0);
    let (url, received) =
        serve_once(r#"{"filename":"/tmp/x/1_empty.jar","status":"success"}"#).await;
    let client = FlinkRestClient::new(Duration::from_secs(10)).with_url_override(url);
    let at = FlinkEndpoint::for_cluster("default", "local", 8081);

    let jar_id = client
        .upload_jar(&at, jar.path.to_str().unwrap())
        .await
        .expect("upload");
    assert_eq!(jar_id, "1_empty.jar");
    let request = received.await.expect("the server saw the request");
    assert_eq!(request.content_length, Some(request.body.len() as u64));
    let (_, received_content) = single_part(&request.content_type, &request.body);
    assert!(received_content.is_empty());
}

#[tokio::test]
async fn upload_jar_of_a_missing_file_names_the_path_and_sends_nothing() {
    // Nothing listens there: an attempt to connect would be an Unavailable error instead.
    let client =
        FlinkRestClient::new(Duration::from_secs(2)).with_url_override("http://127.0.0.1:1");
    let at = FlinkEndpoint::for_cluster("default", "local", 8081);
    let path = std::env::temp_dir().join("flink-rest-upload-missing/no-such.jar");
    let path = path.to_str().unwrap();

    match client.upload_jar(&at, path).await {
        Err(FlinkError::Http { status: 0, message }) => {
            assert!(message.contains(path), "the error names {path}: {message}")
        }
        other => panic!("expected a read error naming the path, got {other:?}"),
    }
}

#[tokio::test]
async fn upload_jar_of_a_directory_is_refused_before_sending() {
    let (jar, _) = TempJar::new("directory", "x.jar", 1);
    let client =
        FlinkRestClient::new(Duration::from_secs(2)).with_url_override("http://127.0.0.1:1");
    let at = FlinkEndpoint::for_cluster("default", "local", 8081);
    let dir = jar.dir.to_str().unwrap();

    match client.upload_jar(&at, dir).await {
        Err(FlinkError::Http { status: 0, message }) => {
            assert!(message.contains(dir), "the error names {dir}: {message}")
        }
        other => panic!("expected a read error naming the path, got {other:?}"),
    }
}

/// Serves one connection that counts the body's bytes without keeping them, and hands over
/// (Content-Length, bytes received).
async fn serve_counting(reply: &'static str) -> (String, oneshot::Receiver<(Option<u64>, u64)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (tx, rx) = oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let service = service_fn(move |request: Request<Incoming>| {
            let tx = tx.clone();
            async move {
                let content_length = request
                    .headers()
                    .get("content-length")
                    .map(|v| v.to_str().unwrap().parse().unwrap());
                let mut body = request.into_body();
                let mut received = 0u64;
                while let Some(frame) = body.frame().await {
                    if let Ok(data) = frame.expect("a frame").into_data() {
                        received += data.len() as u64;
                    }
                }
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send((content_length, received));
                }
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                    reply.as_bytes(),
                ))))
            }
        });
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
    (url, rx)
}

/// The process's peak resident memory so far, in KiB (Linux).
#[cfg(target_os = "linux")]
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_jar_does_not_hold_a_large_jar_in_memory() {
    // 512 MiB, sparse: no disk used, but every byte is read and sent.
    const LEN: u64 = 512 * 1024 * 1024;
    let (jar, _) = TempJar::new("large", "large.jar", 0);
    std::fs::File::options()
        .write(true)
        .open(&jar.path)
        .and_then(|f| f.set_len(LEN))
        .expect("a sparse file");
    let (url, received) =
        serve_counting(r#"{"filename":"/tmp/x/2_large.jar","status":"success"}"#).await;
    let client = FlinkRestClient::new(Duration::from_secs(120)).with_url_override(url);
    let at = FlinkEndpoint::for_cluster("default", "local", 8081);

    let before = peak_rss_kib();
    let jar_id = client
        .upload_jar(&at, jar.path.to_str().unwrap())
        .await
        .expect("upload");
    let grown_mib = (peak_rss_kib() - before) / 1024;
    assert_eq!(jar_id, "2_large.jar");
    let (content_length, bytes) = received.await.expect("the server saw the request");
    assert_eq!(content_length, Some(bytes));
    assert!(
        bytes > LEN,
        "the whole file and the multipart framing arrived"
    );
    assert!(
        grown_mib < 64,
        "peak memory grew by {grown_mib} MiB while uploading {} MiB",
        LEN / 1024 / 1024
    );
}
