//! Observing a running instance: its per-CPU counters read and summed
//! ([`counters`], the only place that reads a counter map), rendered for
//! `stats` ([`report`]) and for Prometheus ([`metrics`], in the formats of
//! [`exposition`]).
//!
//! Nothing here writes to a map or changes what the program does.

pub mod counters;
pub mod exposition;
pub mod metrics;
pub mod report;
