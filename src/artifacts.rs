//! Where a session job's jar comes from: the `jarURI` forms users write, read without any I/O,
//! and the operator-level limits of fetching. The fetching itself is behind the
//! [`ArtifactFetcher`](crate::ports::ArtifactFetcher) port: production downloads with
//! `object_store` (`adapters::artifacts`), the simulator fakes it with the same parsing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::duration::parse_duration;
use crate::ports::ArtifactError;

pub const BASE_DIR: &str = "kubernetes.operator.user.artifacts.base.dir";
pub const HTTP_HEADER: &str = "kubernetes.operator.user.artifacts.http.header";
pub const MAX_SIZE: &str = "kubernetes.operator.user.artifacts.max-size";
pub const DOWNLOAD_TIMEOUT: &str = "kubernetes.operator.user.artifacts.download.timeout";
pub const CACHE_TTL: &str = "kubernetes.operator.user.artifacts.cache.ttl";

/// The schemes a jarURI may have, for messages.
pub const SUPPORTED: &str =
    "an absolute path, file://, local://, http(s)://, s3://, s3a://, oss://, wasb(s)://, abfs(s)://, gs://";

/// A jarURI, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JarSource {
    /// `local://…`: a jar inside the session cluster's image. The operator cannot read it;
    /// an empty jar is uploaded and the entry class comes from the cluster's classpath (as
    /// upstream does for a session job without a jar).
    InImage {
        path: String,
    },
    /// A plain absolute path or `file://`: on the operator's own disk.
    LocalFile {
        path: PathBuf,
    },
    Http {
        url: String,
    },
    S3 {
        bucket: String,
        key: String,
    },
    /// Aliyun OSS, through its S3-compatible API.
    Oss {
        bucket: String,
        key: String,
    },
    /// Azure Blob Storage (`wasb(s)://container@account.blob.core.windows.net/path`) and ADLS
    /// Gen2 (`abfs(s)://container@account.dfs.core.windows.net/path`); both are blobs.
    Azure {
        account: String,
        container: String,
        key: String,
        tls: bool,
    },
    Gcs {
        bucket: String,
        key: String,
    },
}

impl JarSource {
    /// Reads a jarURI. Errors name the URI (with any secret in it hidden) and what is wrong.
    pub fn parse(uri: &str) -> Result<JarSource, ArtifactError> {
        let invalid = |reason: &str| ArtifactError::Invalid {
            uri: redact(uri),
            reason: reason.to_string(),
        };
        let uri_trimmed = uri.trim();
        if uri_trimmed.is_empty() {
            return Err(invalid("is empty"));
        }
        if uri_trimmed.starts_with('/') {
            return Ok(JarSource::LocalFile {
                path: PathBuf::from(uri_trimmed),
            });
        }
        let url = url::Url::parse(uri_trimmed).map_err(|e| {
            invalid(&format!(
                "is neither an absolute path nor a URI ({e}); use {SUPPORTED}"
            ))
        })?;
        let host = url.host_str().unwrap_or("").to_string();
        let key = url.path().trim_start_matches('/').to_string();
        let need_object = |what: &str| -> Result<(), ArtifactError> {
            if host.is_empty() {
                return Err(invalid(&format!("names no {what}")));
            }
            if key.is_empty() || key.ends_with('/') {
                return Err(invalid(
                    "names no object (the path is empty or a directory)",
                ));
            }
            Ok(())
        };
        match url.scheme() {
            "file" => {
                let path = url
                    .to_file_path()
                    .map_err(|_| invalid("is not a local file path"))?;
                Ok(JarSource::LocalFile { path })
            }
            "local" => Ok(JarSource::InImage {
                path: url.path().to_string(),
            }),
            "http" | "https" => {
                if host.is_empty() {
                    return Err(invalid("names no host"));
                }
                Ok(JarSource::Http {
                    url: url.to_string(),
                })
            }
            "s3" | "s3a" | "s3p" => {
                need_object("bucket")?;
                Ok(JarSource::S3 { bucket: host, key })
            }
            "oss" => {
                need_object("bucket")?;
                Ok(JarSource::Oss { bucket: host, key })
            }
            "gs" => {
                need_object("bucket")?;
                Ok(JarSource::Gcs { bucket: host, key })
            }
            scheme @ ("wasb" | "wasbs" | "abfs" | "abfss") => {
                need_object("storage account")?;
                let container = url.username().to_string();
                if container.is_empty() {
                    return Err(invalid(
                        "names no container: write container@account.blob.core.windows.net",
                    ));
                }
                let account = host.split('.').next().unwrap_or("").to_string();
                Ok(JarSource::Azure {
                    account,
                    container,
                    key,
                    tls: scheme.ends_with('s'),
                })
            }
            other => Err(ArtifactError::UnsupportedScheme {
                uri: redact(uri),
                scheme: other.to_string(),
            }),
        }
    }

    /// The file name the jar gets in the cache (and in Flink): the last path segment, with
    /// anything but letters, digits, `.`, `_` and `-` replaced, so no URI can name a path
    /// outside the cache.
    pub fn file_name(&self) -> String {
        let raw = match self {
            JarSource::InImage { path } => path.as_str(),
            JarSource::LocalFile { path } => path.to_str().unwrap_or(""),
            JarSource::Http { url } => url.split(['?', '#']).next().unwrap_or(""),
            JarSource::S3 { key, .. }
            | JarSource::Oss { key, .. }
            | JarSource::Gcs { key, .. }
            | JarSource::Azure { key, .. } => key.as_str(),
        };
        safe_file_name(raw.rsplit('/').next().unwrap_or(""))
    }
}

/// A name that is one plain path segment: never empty, `.` or `..`, no separator.
pub fn safe_file_name(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = cleaned.trim_start_matches('.');
    if trimmed.is_empty() {
        "job.jar".to_string()
    } else {
        trimmed.chars().take(200).collect()
    }
}

/// The URI with its password and query (presigned URLs carry signatures there) hidden, for
/// status messages and logs.
pub fn redact(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            if url.query().is_some() {
                url.set_query(Some("***"));
            }
            url.to_string()
        }
        Err(_) => uri.to_string(),
    }
}

/// Operator-level limits of fetching. They are read from the operator's configuration only:
/// a resource's `flinkConfiguration` cannot raise them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactSettings {
    /// Where downloads are cached (upstream's key and default).
    pub base_dir: PathBuf,
    /// The largest jar fetched.
    pub max_size: u64,
    /// The longest one download may take, from the first request to the last byte.
    pub timeout: Duration,
    /// Cached jars unused for this long are removed.
    pub cache_ttl: Duration,
}

impl Default for ArtifactSettings {
    fn default() -> Self {
        ArtifactSettings {
            base_dir: PathBuf::from("/opt/flink/artifacts"),
            max_size: 2 << 30,
            timeout: Duration::from_secs(300),
            cache_ttl: Duration::from_secs(3600),
        }
    }
}

impl ArtifactSettings {
    /// From the operator configuration; a value that does not parse is an error naming the key.
    pub fn from_operator_config(conf: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut s = ArtifactSettings::default();
        let get = |k: &str| conf.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        if let Some(v) = get(BASE_DIR) {
            s.base_dir = PathBuf::from(v);
        }
        if let Some(v) = get(MAX_SIZE) {
            s.max_size = crate::validation::quantity::parse_memory(v)
                .map_err(|e| format!("{MAX_SIZE}: {e}"))?;
        }
        let duration = |k: &str, v: &str| parse_duration(v).map_err(|e| format!("{k}: {e}"));
        if let Some(v) = get(DOWNLOAD_TIMEOUT) {
            s.timeout = duration(DOWNLOAD_TIMEOUT, v)?;
        }
        if let Some(v) = get(CACHE_TTL) {
            s.cache_ttl = duration(CACHE_TTL, v)?;
        }
        Ok(s)
    }

    /// The empty jar uploaded for `local://` jars.
    pub fn placeholder_path(&self) -> PathBuf {
        self.base_dir.join("placeholder.jar")
    }
}

/// `k1:v1,k2:v2` (upstream's format of `kubernetes.operator.user.artifacts.http.header`).
pub fn http_headers(conf: &BTreeMap<String, String>) -> Vec<(String, String)> {
    conf.get(HTTP_HEADER)
        .map(|v| {
            v.split(',')
                .filter_map(|pair| pair.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// A minimal valid jar (an empty zip archive: just the end-of-central-directory record).
pub const EMPTY_JAR: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(uri: &str) -> JarSource {
        JarSource::parse(uri).unwrap()
    }

    #[test]
    fn every_supported_form_is_understood() {
        assert_eq!(
            parse("/opt/jobs/a.jar"),
            JarSource::LocalFile {
                path: "/opt/jobs/a.jar".into()
            }
        );
        assert_eq!(
            parse("file:///opt/jobs/a.jar"),
            JarSource::LocalFile {
                path: "/opt/jobs/a.jar".into()
            }
        );
        assert_eq!(
            parse("local:///opt/flink/usrlib/a.jar"),
            JarSource::InImage {
                path: "/opt/flink/usrlib/a.jar".into()
            }
        );
        assert_eq!(
            parse("s3a://bucket/jobs/a.jar"),
            JarSource::S3 {
                bucket: "bucket".into(),
                key: "jobs/a.jar".into()
            }
        );
        assert_eq!(
            parse("oss://b/a.jar"),
            JarSource::Oss {
                bucket: "b".into(),
                key: "a.jar".into()
            }
        );
        assert_eq!(
            parse("gs://b/x/a.jar"),
            JarSource::Gcs {
                bucket: "b".into(),
                key: "x/a.jar".into()
            }
        );
        assert_eq!(
            parse("abfss://jobs@acct.dfs.core.windows.net/x/a.jar"),
            JarSource::Azure {
                account: "acct".into(),
                container: "jobs".into(),
                key: "x/a.jar".into(),
                tls: true
            }
        );
        assert_eq!(
            parse("wasb://jobs@acct.blob.core.windows.net/a.jar"),
            JarSource::Azure {
                account: "acct".into(),
                container: "jobs".into(),
                key: "a.jar".into(),
                tls: false
            }
        );
        assert!(matches!(
            parse("https://h/a.jar?x=1"),
            JarSource::Http { .. }
        ));
    }

    #[test]
    fn bad_uris_are_errors_that_say_what_is_wrong() {
        let err = JarSource::parse("ftp://h/a.jar").unwrap_err().to_string();
        assert!(err.contains("'ftp' is not supported"), "{err}");
        let err = JarSource::parse("jobs/a.jar").unwrap_err().to_string();
        assert!(err.contains("neither an absolute path nor a URI"), "{err}");
        let err = JarSource::parse("s3://bucket/").unwrap_err().to_string();
        assert!(err.contains("names no object"), "{err}");
        let err = JarSource::parse("wasbs://acct.blob.core.windows.net/a.jar")
            .unwrap_err()
            .to_string();
        assert!(err.contains("names no container"), "{err}");
    }

    #[test]
    fn file_names_cannot_leave_the_cache() {
        // Dot segments are resolved while parsing: `x/..` names the bucket itself.
        assert!(JarSource::parse("s3://b/x/..").is_err());
        assert_eq!(
            parse("https://h/a%2F..%2Fb.jar").file_name(),
            "a_2F.._2Fb.jar"
        );
        assert_eq!(parse("https://h/x/a.jar?sig=1").file_name(), "a.jar");
        assert_eq!(safe_file_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_file_name(".."), "job.jar");
        assert_eq!(safe_file_name(""), "job.jar");
    }

    #[test]
    fn secrets_in_uris_are_hidden() {
        assert_eq!(
            redact("https://user:pw@h/a.jar?X-Amz-Signature=abc"),
            "https://user:***@h/a.jar?***"
        );
    }

    #[test]
    fn settings_come_from_the_operator_configuration() {
        let mut conf = BTreeMap::new();
        conf.insert(MAX_SIZE.to_string(), "64m".to_string());
        conf.insert(DOWNLOAD_TIMEOUT.to_string(), "30s".to_string());
        let s = ArtifactSettings::from_operator_config(&conf).unwrap();
        assert_eq!(s.max_size, 64 << 20);
        assert_eq!(s.timeout, Duration::from_secs(30));
        conf.insert(CACHE_TTL.to_string(), "soon".to_string());
        let err = ArtifactSettings::from_operator_config(&conf).unwrap_err();
        assert!(err.starts_with(CACHE_TTL), "{err}");
    }

    #[test]
    fn http_headers_are_read_in_upstream_format() {
        let mut conf = BTreeMap::new();
        conf.insert(HTTP_HEADER.to_string(), "a: 1, b:2,junk".to_string());
        assert_eq!(
            http_headers(&conf),
            vec![("a".into(), "1".into()), ("b".into(), "2".into())]
        );
    }
}
