//! Production implementations of the ports.

pub mod artifacts;
pub mod cached;
pub mod events;
pub mod flink_rest;
pub mod kube;
pub mod metered;

/// Two TLS back ends are linked in (kube's ring, object_store's aws-lc-rs), so rustls cannot
/// pick one by itself: the process chooses ring once, before any client is made.
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
