//! The artifact fetcher against real peers: a local HTTP server run by the test, an
//! S3-compatible server (moto), Azure Blob Storage (Azurite) and Google Cloud Storage
//! (fake-gcs-server), all started on loopback by the project's own script (ci/peers.sh) and
//! stopped at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutPayload};

use flink_operator::adapters::artifacts::ObjectStoreFetcher;
use flink_operator::artifacts::{EMPTY_JAR, HTTP_HEADER};
use flink_operator::ports::*;

mod common;
use common::{
    cache_dir, fetcher_with_env, fetcher_with_ttl, files_under, new_fetcher, request, Served,
    Server, MB,
};

// ---- HTTP ----------------------------------------------------------------------------------

#[tokio::test]
async fn http_jars_are_cached_by_etag_and_fetched_again_when_changed() {
    let (server, url) = Server::start().await;
    server.put(
        "/jobs/a.jar",
        Served::File {
            etag: "v1".into(),
            body: Bytes::from_static(b"first jar"),
        },
    );
    let (fetcher, base) = new_fetcher("http-cache", 10 * MB, Duration::from_secs(30));
    let uri = format!("{url}/jobs/a.jar");

    let first = fetcher.fetch(&request(&uri, &[])).await.expect("fetched");
    assert_eq!(std::fs::read(&first.path).unwrap(), b"first jar");
    assert!(first.path.ends_with("/a.jar"), "{}", first.path);
    assert!(Path::new(&first.path).starts_with(&base));

    // Unchanged: only the metadata is asked for again.
    let again = fetcher.fetch(&request(&uri, &[])).await.expect("cached");
    assert_eq!(again, first);
    let methods: Vec<String> = server.seen().iter().map(|s| s.method.clone()).collect();
    assert_eq!(methods, ["HEAD", "GET", "HEAD"]);

    // Changed (new ETag): downloaded again, and the old copy is gone.
    server.put(
        "/jobs/a.jar",
        Served::File {
            etag: "v2".into(),
            body: Bytes::from_static(b"second jar"),
        },
    );
    let changed = fetcher.fetch(&request(&uri, &[])).await.expect("fetched");
    assert_ne!(changed.path, first.path);
    assert_eq!(std::fs::read(&changed.path).unwrap(), b"second jar");
    assert!(
        !Path::new(&first.path).exists(),
        "the stale copy is removed"
    );
    assert_eq!(files_under(&base.join("cache")).len(), 1);
}

#[tokio::test]
async fn jars_unused_for_the_ttl_leave_the_cache() {
    let (server, url) = Server::start().await;
    for name in ["/a.jar", "/b.jar"] {
        server.put(
            name,
            Served::File {
                etag: "1".into(),
                body: Bytes::from_static(b"jar"),
            },
        );
    }
    let fetch = |fetcher: ObjectStoreFetcher, base: std::path::PathBuf| {
        let url = url.clone();
        async move {
            let a = fetcher
                .fetch(&request(&format!("{url}/a.jar"), &[]))
                .await
                .unwrap();
            let b = fetcher
                .fetch(&request(&format!("{url}/b.jar"), &[]))
                .await
                .unwrap();
            (
                Path::new(&a.path).exists(),
                Path::new(&b.path).exists(),
                base,
            )
        }
    };
    // A long TTL keeps both; with none, fetching b clears the unused a (b itself stays).
    let (kept, _) = new_fetcher("ttl-long", MB, Duration::from_secs(30));
    assert!(fetch(kept, PathBuf::new()).await.0, "a is kept");
    let (zero_ttl, base) = fetcher_with_ttl("ttl-zero", Duration::ZERO);
    let (a, b, base) = fetch(zero_ttl, base).await;
    assert!(!a, "a was unused for longer than the TTL");
    assert!(b, "the jar just fetched is kept");
    assert_eq!(files_under(&base.join("cache")).len(), 1);
}

#[tokio::test]
async fn http_headers_from_the_configuration_and_the_query_reach_the_server() {
    let (server, url) = Server::start().await;
    server.put(
        "/private/b.jar",
        Served::File {
            etag: "1".into(),
            body: Bytes::from_static(b"jar"),
        },
    );
    let (fetcher, _) = new_fetcher("http-headers", MB, Duration::from_secs(30));
    let uri = format!("{url}/private/b.jar?signature=abc");
    let jar = fetcher
        .fetch(&request(
            &uri,
            &[(HTTP_HEADER, "Authorization:Bearer t0ken")],
        ))
        .await
        .expect("fetched");
    assert!(
        jar.path.ends_with("/b.jar"),
        "no query in the name: {}",
        jar.path
    );
    for seen in server.seen() {
        assert_eq!(seen.path, "/private/b.jar");
        assert_eq!(seen.query.as_deref(), Some("signature=abc"));
        assert_eq!(seen.authorization.as_deref(), Some("Bearer t0ken"));
    }
}

#[tokio::test]
async fn bad_jars_give_clear_errors_and_leave_nothing_in_the_cache() {
    let (server, url) = Server::start().await;
    server.put("/big.jar", Served::Generated { len: 5 * MB });
    server.put(
        "/liar.jar",
        Served::Liar {
            claimed: 1000,
            sent: 3 * MB,
        },
    );
    server.put("/stall.jar", Served::Stall);
    let (fetcher, base) = new_fetcher("http-errors", MB, Duration::from_secs(2));
    let fetch = |path: &str| {
        let uri = format!("{url}{path}");
        let fetcher = &fetcher;
        async move { fetcher.fetch(&request(&uri, &[])).await.unwrap_err() }
    };

    let missing = fetch("/missing.jar").await;
    assert!(
        matches!(missing, ArtifactError::NotFound { .. }),
        "{missing:?}"
    );
    assert!(missing.to_string().contains("/missing.jar"), "{missing}");

    let big = fetch("/big.jar").await;
    assert!(
        matches!(big, ArtifactError::TooLarge { size, limit, .. } if size == 5 * MB && limit == MB),
        "{big:?}"
    );
    assert!(
        !server
            .seen()
            .iter()
            .any(|s| s.method == "GET" && s.path == "/big.jar"),
        "an oversized jar is refused before downloading"
    );

    // The metadata said 1000 bytes; the download is cut off at the limit anyway.
    let liar = fetch("/liar.jar").await;
    assert!(matches!(liar, ArtifactError::TooLarge { .. }), "{liar:?}");

    let stall = fetch("/stall.jar").await;
    assert!(matches!(stall, ArtifactError::Timeout { .. }), "{stall:?}");
    assert!(stall.to_string().contains("within 2s"), "{stall}");

    assert_eq!(
        files_under(&base),
        Vec::<String>::new(),
        "no partial download left"
    );
}

#[tokio::test]
async fn local_paths_and_in_image_jars_need_no_download() {
    let (fetcher, base) = new_fetcher("local", MB, Duration::from_secs(5));
    let dir = cache_dir("local-source");
    std::fs::create_dir_all(&dir).unwrap();
    let jar = dir.join("job.jar");
    std::fs::write(&jar, b"local jar").unwrap();

    let plain = fetcher
        .fetch(&request(jar.to_str().unwrap(), &[]))
        .await
        .expect("plain path");
    assert_eq!(plain.path, jar.to_str().unwrap());
    let file_uri = format!("file://{}", jar.display());
    let by_uri = fetcher
        .fetch(&request(&file_uri, &[]))
        .await
        .expect("file://");
    assert_eq!(by_uri.path, plain.path);

    let missing = fetcher
        .fetch(&request("file:///no/such/job.jar", &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, ArtifactError::NotFound { .. }),
        "{missing:?}"
    );
    let directory = fetcher
        .fetch(&request(dir.to_str().unwrap(), &[]))
        .await
        .unwrap_err();
    assert!(
        directory.to_string().contains("not a regular file"),
        "{directory}"
    );

    // local:// is inside the Flink image: an empty jar is uploaded in its place.
    let in_image = fetcher
        .fetch(&request("local:///opt/flink/usrlib/job.jar", &[]))
        .await
        .expect("placeholder");
    assert!(Path::new(&in_image.path).starts_with(&base));
    assert_eq!(std::fs::read(&in_image.path).unwrap(), EMPTY_JAR);

    let unsupported = fetcher
        .fetch(&request("hdfs://namenode/jobs/a.jar", &[]))
        .await
        .unwrap_err();
    assert!(
        unsupported.to_string().contains("'hdfs' is not supported"),
        "{unsupported}"
    );
}

// ---- S3 (moto), Azure Blob Storage (Azurite) and Google Cloud Storage (fake-gcs-server) -----

struct Peers {
    env: BTreeMap<String, String>,
}

fn peers_script(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/ci/peers.sh"))
        .args(args)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "ci/peers.sh {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

impl Peers {
    fn start() -> Self {
        peers_script(&["start"]);
        let env = peers_script(&["env"])
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Peers { env }
    }

    fn var(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from ci/peers.sh env"))
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/ci/peers.sh"))
            .arg("stop")
            .status();
    }
}

/// One test for every peer, in order, so that stopping them at the end cannot cut another
/// test short.
#[tokio::test]
async fn jars_are_fetched_from_s3_azure_blob_storage_and_google_cloud_storage() {
    let peers = Peers::start();
    s3(&peers).await;
    azure(&peers).await;
    gcs(&peers).await;
}

async fn s3(peers: &Peers) {
    let endpoint = peers.var("FLINK_OPERATOR_TEST_S3_ENDPOINT");
    let access = peers.var("FLINK_OPERATOR_TEST_S3_ACCESS_KEY");
    let secret = peers.var("FLINK_OPERATOR_TEST_S3_SECRET_KEY");
    peers_script(&["s3-bucket", "jobs"]);
    // The test puts the object with object_store directly.
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("jobs")
        .with_endpoint(endpoint)
        .with_access_key_id(access)
        .with_secret_access_key(secret)
        .with_region("us-east-1")
        .with_allow_http(true)
        .build()
        .expect("S3 client");
    let content = Bytes::from(vec![7u8; 3 * MB as usize + 17]);
    store
        .put(
            &object_store::path::Path::from("releases/wordcount-1.0.jar"),
            PutPayload::from(content.clone()),
        )
        .await
        .expect("put");

    // The keys users already set for Flink's S3 file system.
    let conf = [
        ("s3.endpoint", endpoint),
        ("s3.access-key", access),
        ("s3.secret-key", secret),
        ("s3.path.style.access", "true"),
    ];
    let (fetcher, base) = new_fetcher("s3", 8 * MB, Duration::from_secs(60));
    for scheme in ["s3", "s3a"] {
        let uri = format!("{scheme}://jobs/releases/wordcount-1.0.jar");
        let jar = fetcher.fetch(&request(&uri, &conf)).await.expect("from S3");
        assert_eq!(std::fs::read(&jar.path).unwrap(), content, "{uri}");
        assert!(jar.path.ends_with("/wordcount-1.0.jar"));
        assert!(Path::new(&jar.path).starts_with(&base));
    }
    let missing = ["s3://jobs/releases/none.jar", "s3://no-such-bucket/a.jar"];
    refused_as_expected(
        &fetcher,
        "s3",
        "s3://jobs/releases/wordcount-1.0.jar",
        &missing,
        &conf,
    )
    .await;
}

/// Objects and buckets that are not there are NotFound; an object over the size limit is
/// TooLarge and leaves nothing in the cache.
async fn refused_as_expected(
    fetcher: &ObjectStoreFetcher,
    name: &str,
    jar: &str,
    missing: &[&str],
    conf: &[(&str, &str)],
) {
    for uri in missing {
        let err = fetcher.fetch(&request(uri, conf)).await.unwrap_err();
        assert!(
            matches!(err, ArtifactError::NotFound { .. }),
            "{uri}: {err:?}"
        );
    }
    let (small, small_base) = new_fetcher(&format!("{name}-small"), MB, Duration::from_secs(60));
    let too_large = small.fetch(&request(jar, conf)).await.unwrap_err();
    assert!(
        matches!(too_large, ArtifactError::TooLarge { .. }),
        "{too_large:?}"
    );
    assert_eq!(files_under(&small_base), Vec::<String>::new());
}

async fn azure(peers: &Peers) {
    let account = peers.var("FLINK_OPERATOR_TEST_AZURE_ACCOUNT");
    let key = peers.var("FLINK_OPERATOR_TEST_AZURE_KEY");
    peers_script(&["azure-container", "jobs"]);
    let store = object_store::azure::MicrosoftAzureBuilder::new()
        .with_use_emulator(true)
        .with_account(account)
        .with_access_key(key)
        .with_container_name("jobs")
        .build()
        .expect("Azure client");
    let content = Bytes::from_static(b"a jar in a blob");
    store
        .put(
            &object_store::path::Path::from("streaming/job.jar"),
            PutPayload::from(content.clone()),
        )
        .await
        .expect("put");

    // Azurite stands in for <account>.blob.core.windows.net; the key comes from the Flink
    // configuration key users set for the Hadoop Azure file system.
    let env: BTreeMap<String, String> =
        [("AZURE_STORAGE_USE_EMULATOR".to_string(), "true".to_string())].into();
    let key_name = format!("fs.azure.account.key.{account}.blob.core.windows.net");
    let conf = [(key_name.as_str(), key)];
    let (fetcher, _) = fetcher_with_env("azure", MB, Duration::from_secs(60), env.clone());
    for uri in [
        format!("wasbs://jobs@{account}.blob.core.windows.net/streaming/job.jar"),
        format!("wasb://jobs@{account}.blob.core.windows.net/streaming/job.jar"),
        format!("abfss://jobs@{account}.dfs.core.windows.net/streaming/job.jar"),
    ] {
        let jar = fetcher
            .fetch(&request(&uri, &conf))
            .await
            .expect("from Azure");
        assert_eq!(std::fs::read(&jar.path).unwrap(), content, "{uri}");
    }
    let missing = fetcher
        .fetch(&request(
            &format!("wasbs://jobs@{account}.blob.core.windows.net/streaming/none.jar"),
            &conf,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, ArtifactError::NotFound { .. }),
        "{missing:?}"
    );

    // A wrong account key: the signature is refused.
    let wrong = "d3Jvbmcga2V5IHdyb25nIGtleSB3cm9uZyBrZXkgd3Jvbmcga2V5IHdyb25nIGtleQ==";
    let (fresh, fresh_base) = fetcher_with_env("azure-denied", MB, Duration::from_secs(60), env);
    let denied = fresh
        .fetch(&request(
            &format!("wasbs://jobs@{account}.blob.core.windows.net/streaming/job.jar"),
            &[(key_name.as_str(), wrong)],
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(denied, ArtifactError::AccessDenied { .. }),
        "{denied:?}"
    );
    assert!(
        denied.to_string().contains("check the credentials"),
        "{denied}"
    );
    assert_eq!(files_under(&fresh_base), Vec::<String>::new());
}

async fn gcs(peers: &Peers) {
    let url = peers.var("FLINK_OPERATOR_TEST_GCS_URL");
    peers_script(&["gcs-bucket", "jobs"]);
    // A service-account file as users point Flink's GCS file system at, one an emulator takes:
    // no OAuth token exchange.
    let credentials = cache_dir("gcs-credentials").join("service-account.json");
    std::fs::create_dir_all(credentials.parent().unwrap()).unwrap();
    let account = serde_json::json!({
        "disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""
    });
    std::fs::write(&credentials, account.to_string()).unwrap();
    let keyfile = credentials.to_str().unwrap();
    // Put through the emulator's JSON API (it does not take object_store's XML API upload).
    let content = vec![3u8; 2 * MB as usize + 5];
    let upload = cache_dir("gcs-upload").join("topspeed-2.jar");
    std::fs::create_dir_all(upload.parent().unwrap()).unwrap();
    std::fs::write(&upload, &content).unwrap();
    peers_script(&[
        "gcs-put",
        "jobs",
        "releases/topspeed-2.jar",
        upload.to_str().unwrap(),
    ]);

    // Both keys users set for the GCS file system's service-account file, and the GCS
    // connector's key for the service's root URL (here the emulator, over plain HTTP).
    let root = ("fs.gs.storage.root.url", url);
    let (fetcher, base) = new_fetcher("gcs", 4 * MB, Duration::from_secs(60));
    for key in [
        "fs.gs.auth.service.account.json.keyfile",
        "google.cloud.auth.service.account.json.keyfile",
    ] {
        let conf = [(key, keyfile), root];
        let jar = fetcher
            .fetch(&request("gs://jobs/releases/topspeed-2.jar", &conf))
            .await
            .expect("from GCS");
        assert_eq!(std::fs::read(&jar.path).unwrap(), content, "{key}");
        assert!(jar.path.ends_with("/topspeed-2.jar"));
        assert!(Path::new(&jar.path).starts_with(&base));
    }
    let conf = [("fs.gs.auth.service.account.json.keyfile", keyfile), root];
    let missing = ["gs://jobs/releases/none.jar", "gs://no-such-bucket/a.jar"];
    refused_as_expected(
        &fetcher,
        "gcs",
        "gs://jobs/releases/topspeed-2.jar",
        &missing,
        &conf,
    )
    .await;
}
