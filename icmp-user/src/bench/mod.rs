//! `icmpxdp bench`: the per-path cost through BPF_PROG_TEST_RUN
//! ([`testrun`]) and replies/s and CPU per reply over veth ([`e2e`]). The
//! frame builders ([`frames`]) are shared with the integration tests.
//!
//! Bench code never runs on the attach path: nothing in `cli::run` or
//! `dataplane` imports it.

pub mod e2e;
pub mod frames;
pub mod jit;
mod placement;
pub mod report;
pub mod testrun;
pub mod versus;
