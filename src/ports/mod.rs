//! The ports: everything reconciliation knows of the outside world. Production implements
//! them with kube-rs and an HTTP client; the simulator with a fake cluster in virtual time.

pub mod artifacts;
pub mod flink;
pub mod kube;

pub use self::artifacts::*;
pub use self::flink::*;
pub use self::kube::*;

/// The only source of time reconciliation uses (epoch milliseconds).
pub trait Clock: Send + Sync {
    fn now_millis(&self) -> i64;
}

/// The real clock, for production.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}
