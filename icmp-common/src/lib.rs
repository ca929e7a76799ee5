//! Shared definitions and decision logic of icmpxdp.
//!
//! Everything here is plain `no_std` Rust with no allocation: the XDP program
//! (`icmp-ebpf`) compiles it for `bpfel-unknown-none`, the loader uses the same
//! `#[repr(C)]` types to fill and read maps, and the host tests exercise the
//! exact functions the kernel runs.
//!
//! Nothing here knows about aya or the kernel (the `user` feature only adds
//! `aya::Pod` impls): no map, no helper call, no allocation.
#![no_std]

#[cfg(test)]
extern crate std;

// Imports run one way, leaf first:
// reason ← ratelimit ← config ← {echo, unreachable, action}; addr,
// checksum and counters (← reason) stand beside them.
pub mod action;
pub mod addr;
pub mod capture;
pub mod checksum;
pub mod config;
pub mod counters;
pub mod echo;
pub mod ratelimit;
pub mod reason;
pub mod router;
pub mod unreachable;

pub use config::{AddrSet, Config};
pub use reason::{Action, Family, Reason};
