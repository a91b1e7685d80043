//! Session-job jars: fetched from where users keep them onto the operator's disk, to be
//! uploaded to the session cluster.

use std::collections::BTreeMap;

use async_trait::async_trait;

/// What to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRequest {
    pub uri: String,
    /// Credentials, endpoints and HTTP headers: the merged configuration (operator defaults,
    /// the session cluster's and the job's `flinkConfiguration`).
    pub config: BTreeMap<String, String>,
}

/// A jar on the operator's disk, ready to upload. It belongs to the fetcher's cache: the
/// caller reads it and does not delete it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedJar {
    pub path: String,
    pub size: u64,
}

/// Why a jar could not be fetched. Every message names the (redacted) URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    #[error("jarURI '{uri}' {reason}")]
    Invalid { uri: String, reason: String },
    #[error(
        "jarURI '{uri}': the scheme '{scheme}' is not supported; use {}",
        crate::artifacts::SUPPORTED
    )]
    UnsupportedScheme { uri: String, scheme: String },
    #[error("jarURI '{uri}': no such file or object")]
    NotFound { uri: String },
    #[error("jarURI '{uri}': access denied, check the credentials ({message})")]
    AccessDenied { uri: String, message: String },
    #[error(
        "jarURI '{uri}': the jar is {size} bytes, over the limit of {limit} bytes ({})",
        crate::artifacts::MAX_SIZE
    )]
    TooLarge { uri: String, size: u64, limit: u64 },
    #[error(
        "jarURI '{uri}': the download did not finish within {after} ({})",
        crate::artifacts::DOWNLOAD_TIMEOUT
    )]
    Timeout { uri: String, after: String },
    #[error("jarURI '{uri}': {message}")]
    Unavailable { uri: String, message: String },
    #[error("artifact cache: {message}")]
    Io { message: String },
}

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait ArtifactFetcher: Send + Sync {
    /// The jar for `request.uri` on local disk, downloaded or from the cache.
    async fn fetch(&self, request: &ArtifactRequest) -> Result<FetchedJar, ArtifactError>;
}
