//! icmpxdp's loader as a library: the `icmpxdp` binary (whose subcommands
//! live in `src/cli/`) and the integration tests share it.
//!
//! Rooms follow the data: [`config`] (file → validated settings) →
//! [`dataplane`] (load, attach, write maps, pins) → [`observe`] (counters,
//! metrics). [`lab`] builds the two-namespace lab; [`bench`] measures.

pub mod bench;
pub mod config;
pub mod dataplane;
pub mod lab;
pub mod observe;

/// The XDP object, built by `build.rs` and embedded so the binary stands alone.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/icmp-ebpf"));

/// Name of the responder program in [`EBPF_OBJECT`].
pub const PROGRAM: &str = "icmpxdp";
/// Name of the pass-everything program (lab client side, benchmark floor).
pub const PASS_PROGRAM: &str = "xdp_pass";
/// Benchmark load generator (BPF_PROG_RUN, live frames).
pub const GEN_PROGRAM: &str = "xdp_gen";
/// Benchmark sink: counts and drops what comes back.
pub const SINK_PROGRAM: &str = "xdp_sink";

/// Map names, as pinned under the instance directory.
pub mod map_names {
    pub const CONFIG: &str = "CONFIG";
    /// The config slot in use and the capture lease (`icmp_common::config::CONTROL_*`).
    pub const CONTROL: &str = "CONTROL";
    pub const ADDRS: &str = "ADDRS";
    pub const COUNTERS: &str = "COUNTERS";
    pub const PORTS: &str = "PORTS";
    pub const BUCKETS: &str = "BUCKETS";
    pub const GLOBAL_BUCKET: &str = "GLOBAL_BUCKET";
    pub const ANSWER_PREFIXES_V4: &str = "ANSWER_PREFIXES_V4";
    pub const ANSWER_PREFIXES_V6: &str = "ANSWER_PREFIXES_V6";
    pub const CLOSED_PROTOCOLS: &str = "CLOSED_PROTOCOLS";
    /// Every map `icmpxdp` pins.
    pub const PINNED: [&str; 10] = [
        CONFIG,
        CONTROL,
        ADDRS,
        PORTS,
        COUNTERS,
        BUCKETS,
        GLOBAL_BUCKET,
        ANSWER_PREFIXES_V4,
        ANSWER_PREFIXES_V6,
        CLOSED_PROTOCOLS,
    ];
}
