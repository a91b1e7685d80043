//! Shared by the artifact tests: a small HTTP file server and fetcher helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::stream;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use flink_operator::adapters::artifacts::ObjectStoreFetcher;
use flink_operator::artifacts::ArtifactSettings;
use flink_operator::ports::*;

// ---- a small HTTP file server -------------------------------------------------------------

/// What the server serves at a path.
#[derive(Clone)]
pub enum Served {
    File {
        etag: String,
        body: Bytes,
    },
    /// Generated on the fly, never held in memory: `len` bytes of a repeating pattern.
    Generated {
        len: u64,
    },
    /// HEAD claims `claimed` bytes, GET sends `sent`.
    Liar {
        claimed: u64,
        sent: u64,
    },
    /// Never answers.
    Stall,
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
}

#[derive(Clone, Default)]
pub struct Server {
    files: Arc<Mutex<BTreeMap<String, Served>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn pattern(len: u64) -> Body {
    const CHUNK: u64 = 64 * 1024;
    let chunks = stream::iter((0..len.div_ceil(CHUNK)).map(move |i| {
        let n = CHUNK.min(len - i * CHUNK) as usize;
        Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; n])))
    }));
    StreamBody::new(chunks).boxed_unsync()
}

impl Server {
    pub async fn start() -> (Self, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let server = Server::default();
        let s = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |r| s.clone().answer(r));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (server, url)
    }

    pub fn put(&self, path: &str, served: Served) {
        self.files.lock().unwrap().insert(path.to_string(), served);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    async fn answer(self, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let head = request.method() == hyper::Method::HEAD;
        self.seen.lock().unwrap().push(Seen {
            method: request.method().to_string(),
            path: request.uri().path().to_string(),
            query: request.uri().query().map(str::to_string),
            authorization: request
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap_or("").to_string()),
        });
        let served = self
            .files
            .lock()
            .unwrap()
            .get(request.uri().path())
            .cloned();
        let response = Response::builder().header("last-modified", "Tue, 24 Nov 2026 10:00:00 GMT");
        let empty = || Empty::new().boxed_unsync();
        Ok(match served {
            None => Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body(empty())
                .unwrap(),
            Some(Served::File { etag, body }) => {
                let response = response
                    .header("etag", format!("\"{etag}\""))
                    .header("content-length", body.len());
                let body = if head {
                    empty()
                } else {
                    Full::new(body).boxed_unsync()
                };
                response.body(body).unwrap()
            }
            Some(Served::Generated { len }) => response
                .header("etag", "\"generated\"")
                .header("content-length", len)
                .body(if head { empty() } else { pattern(len) })
                .unwrap(),
            Some(Served::Liar { claimed, sent }) => {
                if head {
                    response
                        .header("etag", "\"liar\"")
                        .header("content-length", claimed)
                        .body(empty())
                        .unwrap()
                } else {
                    // The body runs past what HEAD said.
                    response
                        .header("etag", "\"liar\"")
                        .header("content-length", sent)
                        .body(pattern(sent))
                        .unwrap()
                }
            }
            Some(Served::Stall) => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                response.body(empty()).unwrap()
            }
        })
    }
}

// ---- helpers -------------------------------------------------------------------------------

/// A fresh cache directory for one test.
pub fn cache_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("artifacts")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn new_fetcher(name: &str, max_size: u64, timeout: Duration) -> (ObjectStoreFetcher, PathBuf) {
    fetcher_with_env(name, max_size, timeout, BTreeMap::new())
}

pub fn fetcher_with_env(
    name: &str,
    max_size: u64,
    timeout: Duration,
    env: BTreeMap<String, String>,
) -> (ObjectStoreFetcher, PathBuf) {
    let base = cache_dir(name);
    let settings = ArtifactSettings {
        base_dir: base.clone(),
        max_size,
        timeout,
        cache_ttl: Duration::from_secs(3600),
    };
    (ObjectStoreFetcher::new(settings, env), base)
}

pub fn fetcher_with_ttl(name: &str, ttl: Duration) -> (ObjectStoreFetcher, PathBuf) {
    let base = cache_dir(name);
    let settings = ArtifactSettings {
        base_dir: base.clone(),
        max_size: MB,
        timeout: Duration::from_secs(30),
        cache_ttl: ttl,
    };
    (ObjectStoreFetcher::new(settings, BTreeMap::new()), base)
}

pub fn request(uri: &str, config: &[(&str, &str)]) -> ArtifactRequest {
    ArtifactRequest {
        uri: uri.to_string(),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

pub const MB: u64 = 1 << 20;
