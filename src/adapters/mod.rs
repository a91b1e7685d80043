//! Production implementations of the ports.

pub mod artifacts;
pub mod flink_rest;
pub mod kube;
pub mod metered;
