//! Production implementations of the ports.

pub mod flink_rest;
