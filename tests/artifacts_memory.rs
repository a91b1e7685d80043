//! A large jar is streamed to disk, never held in memory. Alone in its test binary: the
//! peak memory of the process is the measure, and no other test may share the process.

mod common;
use common::{new_fetcher, request, Served, Server, MB};

use std::time::Duration;

use flink_operator::ports::ArtifactFetcher;

#[tokio::test]
async fn a_large_jar_streams_to_disk_without_being_held_in_memory() {
    let (server, url) = Server::start().await;
    let len = 384 * MB;
    server.put("/huge.jar", Served::Generated { len });
    let (fetcher, _) = new_fetcher("http-large", 2048 * MB, Duration::from_secs(300));
    // Linux resets the peak to the current size on "5" (earlier tests must not mask it).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_rss();
    let jar = fetcher
        .fetch(&request(&format!("{url}/huge.jar"), &[]))
        .await
        .expect("fetched");
    assert_eq!(jar.size, len);
    assert_eq!(std::fs::metadata(&jar.path).unwrap().len(), len);
    if let (Some(before), Some(after)) = (before, peak_rss()) {
        let grown = after.saturating_sub(before);
        assert!(
            grown < 96 * MB,
            "peak memory grew by {} MiB while fetching a {} MiB jar",
            grown / MB,
            len / MB
        );
    }
    std::fs::remove_file(&jar.path).unwrap();
}

/// Peak resident memory of this process (Linux).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
