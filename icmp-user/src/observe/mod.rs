//! Observing a running instance: its per-CPU counters read and summed
//! ([`counters`], the only place that reads a counter map), rendered for
//! `stats` ([`report`]) and for Prometheus ([`metrics`], in the formats of
//! [`exposition`]), captured decisions as pcapng ([`pcapng`]) and
//! ranked by source ([`top`]).
//!
//! Nothing here writes to a map or changes what the program does.

pub mod counters;
pub mod exposition;
pub mod metrics;
pub mod pcapng;
pub mod report;
pub mod top;
