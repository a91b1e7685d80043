//! A Kubernetes operator for Apache Flink.
//!
//! Reconciliation (`reconcile`) sees the world only through the ports (`ports`): a Kubernetes
//! API, a Flink REST API and a clock. Production plugs in real adapters; the simulator
//! (`flink-sim`) plugs in a fake cluster running in virtual time.

pub mod adapters;
pub mod artifacts;
pub mod cluster;
pub mod config;
pub mod controller;
pub mod crd;
pub mod duration;
pub mod leader;
pub mod lifecycle;
pub mod observability;
pub mod operator;
pub mod ports;
pub mod reconcile;
pub mod validation;
pub mod webhook;
