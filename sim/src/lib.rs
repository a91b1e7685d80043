//! The deterministic simulator: a fake Kubernetes and fake Flink clusters in virtual time,
//! driving the operator's real reconciliation code through its ports.

pub mod bench;
pub mod explore;
pub mod flink;
pub mod flink_http;
pub mod html;
pub mod invariants;
pub mod kube;
pub mod load;
pub mod ports;
pub mod runner;
pub mod scenario;
pub mod serve;
pub mod state_log;
pub mod timeline;
pub mod world;
pub mod yaml;
