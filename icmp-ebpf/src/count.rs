//! Per-CPU counters: no atomics needed, the loader sums across CPUs.

use aya_ebpf::btf_maps::PerCpuArray;
use icmp_common::{
    counters::type_index,
    reason::{Action, Family, Reason},
};

use crate::maps::{ACTIONS, ICMP_IN_ERRORS, RX_TYPES, TX_TYPES, VERDICTS};

#[inline(always)]
fn bump<const N: usize>(map: &PerCpuArray<u64, N>, index: u32) {
    if let Some(slot) = map.get_ptr_mut(index) {
        // SAFETY: a per-CPU slot is only touched by this CPU, and XDP programs
        // are not preempted mid-run.
        unsafe { *slot += 1 };
    }
}

#[inline(always)]
pub fn verdict(reason: Reason) {
    bump(&VERDICTS, reason as u32);
}

#[inline(always)]
pub fn action(action: Action) {
    bump(&ACTIONS, action as u32);
}

#[inline(always)]
pub fn received(family: Family, icmp_type: u8) {
    bump(&RX_TYPES, type_index(family, icmp_type));
}

#[inline(always)]
pub fn sent(family: Family, icmp_type: u8) {
    bump(&TX_TYPES, type_index(family, icmp_type));
}

/// An ICMP message too short to parse (`Icmp_InErrors`).
#[inline(always)]
pub fn in_error(family: Family) {
    bump(&ICMP_IN_ERRORS, family as u32);
}
