//! Per-CPU counters: no atomics needed, the loader sums across CPUs.

use aya_ebpf::btf_maps::PerCpuArray;
use icmp_common::{
    counters::type_index,
    reason::{Action, Family, Reason},
};

use crate::maps::{COUNTERS, RX_TYPES, TX_TYPES};

#[inline(always)]
fn bump<const N: usize>(map: &PerCpuArray<u64, N>, index: u32) {
    if let Some(slot) = map.get_ptr_mut(index) {
        // SAFETY: a per-CPU slot is only touched by this CPU, and XDP programs
        // are not preempted mid-run.
        unsafe { *slot += 1 };
    }
}

#[inline(always)]
fn opaque(x: u32) -> u32 {
    // SAFETY: a read of a local.
    unsafe { core::ptr::read_volatile(&x) }
}

/// A frame's outcome: its verdict and its action, in one per-CPU value.
#[inline(always)]
pub fn outcome(reason: Reason, action: Action) {
    if let Some(c) = COUNTERS.get_ptr_mut(0) {
        // SAFETY: this CPU's value; XDP programs are not preempted mid-run.
        let c = unsafe { &mut *c };
        // Through a volatile read: LLVM knows an enum's range and would drop
        // the bounds check, which the verifier, not knowing it, needs.
        let (r, a) = (opaque(reason as u32), opaque(action as u32));
        if let Some(v) = c.verdicts.get_mut(r as usize) {
            *v += 1;
        }
        if let Some(a) = c.actions.get_mut(a as usize) {
            *a += 1;
        }
    }
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
    if let Some(c) = COUNTERS.get_ptr_mut(0) {
        // SAFETY: as in `outcome`.
        if let Some(e) = unsafe { &mut *c }.icmp_in_errors.get_mut(family as usize) {
            *e += 1;
        }
    }
}
