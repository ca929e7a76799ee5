//! Per-CPU counters: no atomics needed, the loader sums across CPUs.

use icmp_common::{
    counters::type_index,
    reason::{Action, Family, Reason},
};

use icmp_common::{
    counters::{Counters, Hot},
    ratelimit::Scope,
};

use crate::maps::COUNTERS;

/// This CPU's counters.
#[inline(always)]
fn counters() -> Option<&'static mut Counters> {
    // SAFETY: this CPU's entry; XDP programs are not preempted or
    // migrated mid-run, so nothing else touches it meanwhile.
    COUNTERS.get_ptr_mut(crate::maps::cpu()).map(|c| unsafe { &mut *c })
}

#[inline(always)]
fn opaque(x: u32) -> u32 {
    // SAFETY: a read of a local.
    unsafe { core::ptr::read_volatile(&x) }
}

/// A common outcome, in one word that stands for its verdict, action and
/// messages (see `icmp_common::counters::Hot`): the frames that make up
/// most traffic write one cache line of counters.
#[inline(always)]
pub fn hot(h: Hot) {
    if let Some(c) = counters()
        && let Some(n) = c.hot.get_mut(opaque(h as u32) as usize)
    {
        *n += 1;
    }
}

/// Whether the path already counted this outcome in a [`hot`] word: an echo
/// answered or a Port Unreachable sent with XDP_TX (in shadow mode their
/// action is pass and they are counted field by field).
#[inline(always)]
pub fn counted_hot(reason: Reason, action: Action) -> bool {
    action == Action::Tx && (reason == Reason::EchoAnswered || reason == Reason::UnreachableSent)
}

/// A frame's outcome: its verdict and its action, in one per-CPU value.
#[inline(always)]
pub fn outcome(reason: Reason, action: Action) {
    if let Some(c) = counters() {
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
    if let Some(c) = counters()
        && let Some(n) = c.received.get_mut(type_index(family, icmp_type) as usize)
    {
        *n += 1;
    }
}

#[inline(always)]
pub fn sent(family: Family, icmp_type: u8) {
    if let Some(c) = counters()
        && let Some(n) = c.sent.get_mut(type_index(family, icmp_type) as usize)
    {
        *n += 1;
    }
}

/// A message not sent (or, inbound, a request refused) by `scope`'s limit.
#[inline(always)]
pub fn rate_limited(scope: Scope, family: Family, icmp_type: u8) {
    let i = opaque(scope as u32 * icmp_common::counters::TYPE_SLOTS + type_index(family, icmp_type));
    if let Some(c) = counters()
        && let Some(n) = c.rate_limited.get_mut(i as usize)
    {
        *n += 1;
    }
}

/// An ICMP message too short to parse (`Icmp_InErrors`).
#[inline(always)]
pub fn in_error(family: Family) {
    if let Some(c) = counters()
        && let Some(e) = c.icmp_in_errors.get_mut(family as usize)
    {
        *e += 1;
    }
}
