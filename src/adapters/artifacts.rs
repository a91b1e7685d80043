//! Fetches session-job jars with `object_store`: S3 (and Aliyun OSS through its S3 API), Azure
//! Blob Storage and ADLS Gen2, Google Cloud Storage and HTTP(S), plus local files. Nothing
//! needs installing into the operator's image, unlike upstream's Flink file-system plugins.
//!
//! Every download is bounded: the size is checked before (from the object's metadata) and
//! while streaming to disk, and the whole download has a deadline. Jars are cached under
//! `<base>/cache/<hash of URI>/<hash of ETag>/<file name>`: a changed object (new ETag) is
//! downloaded again and the old copy removed, and copies unused for the TTL are removed.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, GetOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::artifacts::{http_headers, redact, ArtifactSettings, JarSource, EMPTY_JAR};
use crate::ports::{ArtifactError, ArtifactFetcher, ArtifactRequest, FetchedJar};

/// The environment variables object stores read credentials from (`AWS_*`, `AZURE_*`,
/// `GOOGLE_*`, `OSS_*`), taken once at start so fetching reads no global state.
pub fn credential_env() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| {
            ["AWS_", "AZURE_", "GOOGLE_", "OSS_"]
                .iter()
                .any(|p| k.starts_with(p))
        })
        .collect()
}

pub struct ObjectStoreFetcher {
    settings: ArtifactSettings,
    env: BTreeMap<String, String>,
    /// Makes temporary download names unique within this process.
    downloads: AtomicU64,
}

impl ObjectStoreFetcher {
    pub fn new(settings: ArtifactSettings, env: BTreeMap<String, String>) -> Self {
        ObjectStoreFetcher {
            settings,
            env,
            downloads: AtomicU64::new(0),
        }
    }

    fn cache_dir(&self) -> PathBuf {
        self.settings.base_dir.join("cache")
    }

    async fn placeholder(&self) -> Result<FetchedJar, ArtifactError> {
        let path = self.settings.placeholder_path();
        if tokio::fs::metadata(&path).await.is_err() {
            create_dir(&self.settings.base_dir).await?;
            let tmp = self.temp_name(&path);
            tokio::fs::write(&tmp, EMPTY_JAR).await.map_err(io_error)?;
            tokio::fs::rename(&tmp, &path).await.map_err(io_error)?;
        }
        Ok(FetchedJar {
            path: path.to_string_lossy().to_string(),
            size: EMPTY_JAR.len() as u64,
        })
    }

    fn temp_name(&self, target: &FsPath) -> PathBuf {
        let n = self.downloads.fetch_add(1, Ordering::Relaxed);
        let mut name = target.as_os_str().to_owned();
        name.push(format!(".part-{}-{n}", std::process::id()));
        PathBuf::from(name)
    }

    async fn local_file(&self, uri: &str, path: &FsPath) -> Result<FetchedJar, ArtifactError> {
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => ArtifactError::NotFound { uri: redact(uri) },
                std::io::ErrorKind::PermissionDenied => ArtifactError::AccessDenied {
                    uri: redact(uri),
                    message: e.to_string(),
                },
                _ => ArtifactError::Unavailable {
                    uri: redact(uri),
                    message: e.to_string(),
                },
            })?;
        if !meta.is_file() {
            return Err(ArtifactError::Invalid {
                uri: redact(uri),
                reason: "is not a regular file".into(),
            });
        }
        self.check_size(uri, meta.len())?;
        Ok(FetchedJar {
            path: path.to_string_lossy().to_string(),
            size: meta.len(),
        })
    }

    fn check_size(&self, uri: &str, size: u64) -> Result<(), ArtifactError> {
        if size > self.settings.max_size {
            return Err(ArtifactError::TooLarge {
                uri: redact(uri),
                size,
                limit: self.settings.max_size,
            });
        }
        Ok(())
    }

    /// Downloads into the cache (or finds it there), within the deadline.
    async fn remote(
        &self,
        request: &ArtifactRequest,
        source: &JarSource,
    ) -> Result<FetchedJar, ArtifactError> {
        let uri = request.uri.as_str();
        let (store, location) = build_store(source, &request.config, &self.env, &self.settings)
            .map_err(|message| ArtifactError::Invalid {
                uri: redact(uri),
                reason: format!("cannot be read: {message}"),
            })?;
        let deadline = self.settings.timeout;
        let download = self.download(uri, source, store.as_ref(), &location);
        match tokio::time::timeout(deadline, download).await {
            Ok(result) => result,
            Err(_) => Err(ArtifactError::Timeout {
                uri: redact(uri),
                after: crate::duration::format_duration(deadline),
            }),
        }
    }

    async fn download(
        &self,
        uri: &str,
        source: &JarSource,
        store: &dyn ObjectStore,
        location: &ObjectPath,
    ) -> Result<FetchedJar, ArtifactError> {
        let meta = store
            .head(location)
            .await
            .map_err(|e| store_error(uri, e))?;
        self.check_size(uri, meta.size)?;
        // Without an ETag, the modification time and size tell versions apart.
        let version = meta
            .e_tag
            .clone()
            .unwrap_or_else(|| format!("{}/{}", meta.last_modified.timestamp_millis(), meta.size));
        let uri_dir = self.cache_dir().join(hex_digest(uri, 32));
        let version_dir = uri_dir.join(hex_digest(&version, 16));
        let target = version_dir.join(source.file_name());
        // The target is built from hex digests and a sanitised name: it cannot leave the cache.
        debug_assert!(target.starts_with(self.cache_dir()));
        if let Ok(m) = tokio::fs::metadata(&target).await {
            if m.len() == meta.size {
                touch(&target);
                self.cleanup(&uri_dir, &version_dir).await;
                return Ok(FetchedJar {
                    path: target.to_string_lossy().to_string(),
                    size: m.len(),
                });
            }
        }
        create_dir(&version_dir).await?;
        let tmp = self.temp_name(&target);
        let result = self
            .stream_to(uri, store, location, meta.e_tag.clone(), &tmp)
            .await;
        let size = match result {
            Ok(size) => size,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        tokio::fs::rename(&tmp, &target).await.map_err(io_error)?;
        self.cleanup(&uri_dir, &version_dir).await;
        Ok(FetchedJar {
            path: target.to_string_lossy().to_string(),
            size,
        })
    }

    /// Streams the object to `tmp` chunk by chunk, stopping as soon as it passes the limit
    /// (the metadata could be wrong, or the object replaced meanwhile).
    async fn stream_to(
        &self,
        uri: &str,
        store: &dyn ObjectStore,
        location: &ObjectPath,
        e_tag: Option<String>,
        tmp: &FsPath,
    ) -> Result<u64, ArtifactError> {
        let options = GetOptions {
            if_match: e_tag,
            ..Default::default()
        };
        let result = store
            .get_opts(location, options)
            .await
            .map_err(|e| store_error(uri, e))?;
        let mut stream = result.into_stream();
        let mut file = tokio::fs::File::create(tmp).await.map_err(io_error)?;
        let mut written: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| store_error(uri, e))?;
            written += chunk.len() as u64;
            self.check_size(uri, written)?;
            file.write_all(&chunk).await.map_err(io_error)?;
        }
        file.flush().await.map_err(io_error)?;
        file.sync_all().await.map_err(io_error)?;
        Ok(written)
    }

    /// Removes the other versions of this URI, and anything in the cache unused for the TTL
    /// (including downloads a crash left half done).
    async fn cleanup(&self, uri_dir: &FsPath, keep: &FsPath) {
        if let Ok(mut versions) = tokio::fs::read_dir(uri_dir).await {
            while let Ok(Some(entry)) = versions.next_entry().await {
                if entry.path() != keep {
                    let _ = tokio::fs::remove_dir_all(entry.path()).await;
                }
            }
        }
        let ttl = self.settings.cache_ttl;
        let Ok(mut uris) = tokio::fs::read_dir(self.cache_dir()).await else {
            return;
        };
        while let Ok(Some(uri_entry)) = uris.next_entry().await {
            let Ok(mut versions) = tokio::fs::read_dir(uri_entry.path()).await else {
                continue;
            };
            let mut left = 0;
            while let Ok(Some(version)) = versions.next_entry().await {
                if version.path() != keep && unused_for(&version.path(), ttl).await {
                    let _ = tokio::fs::remove_dir_all(version.path()).await;
                } else {
                    left += 1;
                }
            }
            if left == 0 {
                let _ = tokio::fs::remove_dir(uri_entry.path()).await;
            }
        }
    }
}

#[async_trait]
impl ArtifactFetcher for ObjectStoreFetcher {
    async fn fetch(&self, request: &ArtifactRequest) -> Result<FetchedJar, ArtifactError> {
        let source = JarSource::parse(&request.uri)?;
        match &source {
            JarSource::InImage { .. } => self.placeholder().await,
            JarSource::LocalFile { path } => self.local_file(&request.uri, path).await,
            _ => self.remote(request, &source).await,
        }
    }
}

/// True when nothing in `dir` was used (modified, or touched on a cache hit) for `ttl`.
async fn unused_for(dir: &FsPath, ttl: Duration) -> bool {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return true;
    };
    let now = SystemTime::now();
    while let Ok(Some(entry)) = entries.next_entry().await {
        let fresh = entry
            .metadata()
            .await
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| now.duration_since(t).ok())
            .map(|age| age < ttl)
            .unwrap_or(true);
        if fresh {
            return false;
        }
    }
    true
}

fn touch(path: &FsPath) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

fn hex_digest(text: &str, chars: usize) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .chars()
        .take(chars)
        .collect()
}

async fn create_dir(dir: &FsPath) -> Result<(), ArtifactError> {
    tokio::fs::create_dir_all(dir).await.map_err(io_error)
}

fn io_error(e: std::io::Error) -> ArtifactError {
    ArtifactError::Io {
        message: e.to_string(),
    }
}

fn store_error(uri: &str, e: object_store::Error) -> ArtifactError {
    let uri = redact(uri);
    match e {
        object_store::Error::NotFound { .. } => ArtifactError::NotFound { uri },
        object_store::Error::PermissionDenied { source, .. }
        | object_store::Error::Unauthenticated { source, .. } => ArtifactError::AccessDenied {
            uri,
            message: first_line(&source.to_string()),
        },
        other => {
            let text = other.to_string();
            // Some stores answer a bad signature or key with a plain 403 status.
            if text.contains("403") || text.contains("Forbidden") {
                ArtifactError::AccessDenied {
                    uri,
                    message: first_line(&text),
                }
            } else {
                ArtifactError::Unavailable {
                    uri,
                    message: first_line(&text),
                }
            }
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or(text)
        .chars()
        .take(300)
        .collect()
}

/// Every store gets the same timeouts and retries.
macro_rules! finish {
    ($builder:expr, $client:expr, $retry:expr) => {
        Arc::new(
            $builder
                .with_client_options($client)
                .with_retry($retry)
                .build()
                .map_err(|e| e.to_string())?,
        ) as Arc<dyn ObjectStore>
    };
}

/// The store for a source and the object's path in it, configured from the environment
/// first and then the Flink configuration keys users already set (which win).
pub fn build_store(
    source: &JarSource,
    conf: &BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
    settings: &ArtifactSettings,
) -> Result<(Arc<dyn ObjectStore>, ObjectPath), String> {
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| conf.get(*k).map(|v| v.trim().to_string()))
            .filter(|v| !v.is_empty())
    };
    // The fetcher's own deadline covers the whole download and is the one users see; the
    // client's is a backstop, a little later.
    let client = ClientOptions::new()
        .with_timeout(settings.timeout + Duration::from_secs(5))
        .with_connect_timeout(settings.timeout.min(Duration::from_secs(30)));
    let retry = RetryConfig {
        max_retries: 3,
        retry_timeout: settings.timeout,
        ..Default::default()
    };
    let path = |key: &str| ObjectPath::from_url_path(key).map_err(|e| e.to_string());
    match source {
        JarSource::S3 { bucket, key } => {
            let mut b = AmazonS3Builder::new();
            for (k, v) in env.iter().filter(|(k, _)| k.starts_with("AWS_")) {
                if let Ok(key) = k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                    b = b.with_config(key, v);
                }
            }
            let s3 = S3Settings {
                endpoint: get(&["s3.endpoint", "fs.s3a.endpoint"]),
                access_key: get(&["s3.access-key", "s3.access.key", "fs.s3a.access.key"]),
                secret_key: get(&["s3.secret-key", "s3.secret.key", "fs.s3a.secret.key"]),
                session_token: get(&["s3.session-token", "fs.s3a.session.token"]),
                region: get(&["s3.region", "fs.s3a.endpoint.region", "fs.s3a.region"]),
                path_style: get(&["s3.path.style.access", "fs.s3a.path.style.access"])
                    .map(|v| v.eq_ignore_ascii_case("true")),
            };
            let (b, allow_http) = s3.apply(b.with_bucket_name(bucket), bucket);
            let store = finish!(b, client.with_allow_http(allow_http), retry);
            Ok((store, path(key)?))
        }
        JarSource::Oss { bucket, key } => {
            let endpoint = get(&["fs.oss.endpoint"])
                .or_else(|| env.get("OSS_ENDPOINT").cloned())
                .ok_or("fs.oss.endpoint is not set (for example oss-cn-hangzhou.aliyuncs.com)")?;
            let host = endpoint
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string();
            // OSS regions are named in the endpoint: oss-<region>[-internal].aliyuncs.com.
            let region = get(&["fs.oss.region"]).unwrap_or_else(|| {
                host.split('.')
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("oss-")
                    .trim_end_matches("-internal")
                    .to_string()
            });
            let s3 = S3Settings {
                endpoint: Some(endpoint),
                access_key: get(&["fs.oss.accessKeyId"])
                    .or_else(|| env.get("OSS_ACCESS_KEY_ID").cloned()),
                secret_key: get(&["fs.oss.accessKeySecret"])
                    .or_else(|| env.get("OSS_ACCESS_KEY_SECRET").cloned()),
                session_token: get(&["fs.oss.securityToken"])
                    .or_else(|| env.get("OSS_SESSION_TOKEN").cloned()),
                region: Some(region),
                // OSS serves only virtual-hosted requests.
                path_style: Some(false),
            };
            let (b, allow_http) = s3.apply(AmazonS3Builder::new().with_bucket_name(bucket), bucket);
            let store = finish!(b, client.with_allow_http(allow_http), retry);
            Ok((store, path(key)?))
        }
        JarSource::Azure {
            account,
            container,
            key,
            tls,
        } => {
            let mut b = MicrosoftAzureBuilder::new();
            for (k, v) in env.iter().filter(|(k, _)| k.starts_with("AZURE_")) {
                if let Ok(key) = k.to_ascii_lowercase().parse::<AzureConfigKey>() {
                    b = b.with_config(key, v);
                }
            }
            b = b.with_account(account).with_container_name(container);
            let account_key = ["blob", "dfs"].iter().find_map(|svc| {
                get(&[&format!(
                    "fs.azure.account.key.{account}.{svc}.core.windows.net"
                )])
            });
            if let Some(k) = account_key {
                b = b.with_access_key(k);
            }
            let sas = ["blob", "dfs"].iter().find_map(|svc| {
                get(&[&format!(
                    "fs.azure.sas.{container}.{account}.{svc}.core.windows.net"
                )])
            });
            if let Some(s) = sas {
                b = b.with_config(AzureConfigKey::SasKey, s);
            }
            let store = finish!(b, client.with_allow_http(!tls), retry);
            Ok((store, path(key)?))
        }
        JarSource::Gcs { bucket, key } => {
            let mut b = GoogleCloudStorageBuilder::new();
            for (k, v) in env.iter().filter(|(k, _)| k.starts_with("GOOGLE_")) {
                if let Ok(key) = k.to_ascii_lowercase().parse::<GoogleConfigKey>() {
                    b = b.with_config(key, v);
                }
            }
            if let Some(file) = get(&[
                "fs.gs.auth.service.account.json.keyfile",
                "google.cloud.auth.service.account.json.keyfile",
            ]) {
                b = b.with_service_account_path(file);
            }
            // The GCS connector's service root (an emulator, a private endpoint); plain HTTP
            // only when it says so, as for S3 endpoints.
            let root =
                get(&["fs.gs.storage.root.url"]).or_else(|| env.get("GOOGLE_BASE_URL").cloned());
            if let Some(root) = &root {
                b = b.with_base_url(root.trim_end_matches('/'));
            }
            let allow_http = root.is_some_and(|r| r.starts_with("http://"));
            let store = finish!(
                b.with_bucket_name(bucket),
                client.with_allow_http(allow_http),
                retry
            );
            Ok((store, path(key)?))
        }
        JarSource::Http { url } => {
            let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
            let key = parsed.path().trim_start_matches('/').to_string();
            // The store is the origin (with any query, e.g. a presigned signature); the object
            // is the path.
            let mut base = parsed.clone();
            base.set_path("/");
            base.set_fragment(None);
            let mut headers = http::HeaderMap::new();
            for (k, v) in http_headers(conf) {
                let name = http::HeaderName::from_bytes(k.as_bytes())
                    .map_err(|e| format!("{}: header {k}: {e}", crate::artifacts::HTTP_HEADER))?;
                let value = http::HeaderValue::from_str(&v)
                    .map_err(|e| format!("{}: header {k}: {e}", crate::artifacts::HTTP_HEADER))?;
                headers.insert(name, value);
            }
            let client = client
                .with_allow_http(parsed.scheme() == "http")
                .with_default_headers(headers);
            let store = finish!(HttpBuilder::new().with_url(base.to_string()), client, retry);
            Ok((store, path(&key)?))
        }
        JarSource::InImage { .. } | JarSource::LocalFile { .. } => {
            Err("not a remote object".to_string())
        }
    }
}

/// What Flink's S3 (and OSS) keys say, applied to a builder already given the environment.
struct S3Settings {
    endpoint: Option<String>,
    access_key: Option<String>,
    secret_key: Option<String>,
    session_token: Option<String>,
    region: Option<String>,
    path_style: Option<bool>,
}

impl S3Settings {
    /// The builder, and whether plain HTTP is allowed (an `http://` endpoint says so).
    fn apply(self, mut b: AmazonS3Builder, bucket: &str) -> (AmazonS3Builder, bool) {
        let mut allow_http = false;
        if let Some(k) = self.access_key {
            b = b.with_config(AmazonS3ConfigKey::AccessKeyId, k);
        }
        if let Some(k) = self.secret_key {
            b = b.with_config(AmazonS3ConfigKey::SecretAccessKey, k);
        }
        if let Some(t) = self.session_token {
            b = b.with_config(AmazonS3ConfigKey::Token, t);
        }
        if let Some(r) = self.region {
            b = b.with_config(AmazonS3ConfigKey::Region, r);
        }
        // Hadoop's default is virtual-hosted style; object_store then wants the bucket in a
        // custom endpoint's host.
        let virtual_hosted = !self.path_style.unwrap_or(false);
        if let Some(endpoint) = self.endpoint {
            let with_scheme = if endpoint.contains("://") {
                endpoint
            } else {
                format!("https://{endpoint}")
            };
            allow_http = with_scheme.starts_with("http://");
            let endpoint = match (virtual_hosted, with_scheme.split_once("://")) {
                (true, Some((scheme, host))) if !host.starts_with(&format!("{bucket}.")) => {
                    format!("{scheme}://{bucket}.{}", host.trim_end_matches('/'))
                }
                _ => with_scheme.trim_end_matches('/').to_string(),
            };
            b = b.with_config(AmazonS3ConfigKey::Endpoint, endpoint);
        }
        b = b.with_config(
            AmazonS3ConfigKey::VirtualHostedStyleRequest,
            virtual_hosted.to_string(),
        );
        (b, allow_http)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn s3(pairs: &[(&str, &str)], bucket: &str) -> AmazonS3Builder {
        let c = conf(pairs);
        let get = |k: &str| c.get(k).cloned();
        S3Settings {
            endpoint: get("endpoint"),
            access_key: get("access"),
            secret_key: get("secret"),
            session_token: None,
            region: get("region"),
            path_style: get("path").map(|v| v == "true"),
        }
        .apply(AmazonS3Builder::new(), bucket)
        .0
    }

    #[test]
    fn s3_keys_become_object_store_settings() {
        let b = s3(
            &[
                ("endpoint", "http://127.0.0.1:9000"),
                ("access", "AK"),
                ("secret", "SK"),
                ("path", "true"),
            ],
            "jobs",
        );
        let v = |k| b.get_config_value(&k);
        assert_eq!(
            v(AmazonS3ConfigKey::Endpoint).as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(v(AmazonS3ConfigKey::AccessKeyId).as_deref(), Some("AK"));
        assert_eq!(v(AmazonS3ConfigKey::SecretAccessKey).as_deref(), Some("SK"));
        assert_eq!(
            v(AmazonS3ConfigKey::VirtualHostedStyleRequest).as_deref(),
            Some("false")
        );
    }

    #[test]
    fn virtual_hosted_endpoints_carry_the_bucket() {
        let b = s3(&[("endpoint", "oss-cn-hangzhou.aliyuncs.com")], "jobs");
        assert_eq!(
            b.get_config_value(&AmazonS3ConfigKey::Endpoint).as_deref(),
            Some("https://jobs.oss-cn-hangzhou.aliyuncs.com")
        );
    }

    #[test]
    fn oss_region_comes_from_its_endpoint() {
        let source = JarSource::parse("oss://jobs/a.jar").unwrap();
        let c = conf(&[
            ("fs.oss.endpoint", "oss-cn-hangzhou-internal.aliyuncs.com"),
            ("fs.oss.accessKeyId", "id"),
            ("fs.oss.accessKeySecret", "secret"),
        ]);
        let built = build_store(&source, &c, &BTreeMap::new(), &ArtifactSettings::default());
        let (store, path) = built.unwrap();
        assert_eq!(path.as_ref(), "a.jar");
        let text = format!("{store}");
        assert!(text.contains("jobs"), "{text}");
        let err = build_store(
            &source,
            &BTreeMap::new(),
            &BTreeMap::new(),
            &Default::default(),
        )
        .err()
        .unwrap();
        assert!(err.contains("fs.oss.endpoint"), "{err}");
    }

    #[test]
    fn unsafe_names_stay_inside_the_cache() {
        let source = JarSource::parse("https://h/..%2F..%2Fetc%2Fpasswd").unwrap();
        let name = source.file_name();
        assert!(!name.contains('/'), "{name}");
        let dir = PathBuf::from("/cache").join(hex_digest("u", 32)).join(name);
        assert!(dir.starts_with("/cache"));
    }
}
