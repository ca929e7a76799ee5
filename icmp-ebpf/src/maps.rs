//! Every map of the program, in one place. Names are what the loader pins
//! under `/sys/fs/bpf/icmpxdp/<iface>/`.

use aya_ebpf::{
    macros::map,
    maps::{Array, PerCpuArray},
};
use icmp_common::{
    AddrSet, Config,
    config::PORT_SLOTS,
    counters::{Action, Reason, TYPE_SLOTS},
};

/// One [`Config`], written by the loader (hot reload rewrites it).
#[map]
pub static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

/// The interface's own addresses and directed broadcasts.
#[map]
pub static ADDRS: Array<AddrSet> = Array::with_max_entries(1, 0);

/// ICMP messages received, by family × type.
#[map]
pub static RX_TYPES: PerCpuArray<u64> = PerCpuArray::with_max_entries(TYPE_SLOTS, 0);

/// ICMP messages sent, by family × type.
#[map]
pub static TX_TYPES: PerCpuArray<u64> = PerCpuArray::with_max_entries(TYPE_SLOTS, 0);

/// Frames by final [`Reason`].
#[map]
pub static VERDICTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Reason::COUNT, 0);

/// Frames by XDP action (slot = action code).
#[map]
pub static ACTIONS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Action::COUNT, 0);

/// Static port policy: bitmap of open ports, then of closed ports.
#[map]
pub static PORTS: Array<u64> = Array::with_max_entries(PORT_SLOTS, 0);
