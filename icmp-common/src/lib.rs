//! Shared definitions and decision logic of icmpxdp.
//!
//! Everything here is plain `no_std` Rust with no allocation: the XDP program
//! (`icmp-ebpf`) compiles it for `bpfel-unknown-none`, the loader uses the same
//! `#[repr(C)]` types to fill and read maps, and the host tests exercise the
//! exact functions the kernel runs.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod addr;
pub mod checksum;
pub mod config;
pub mod counters;
pub mod echo;
pub mod ratelimit;
pub mod unreachable;

pub use config::{AddrSet, Config};
pub use counters::{Family, Reason};
