//! The refusal memo: what makes a flooding source cheaper to refuse than
//! to answer.
//!
//! Refusing a Port Unreachable takes what answering takes up to the
//! limiter — the socket lookup (is the port closed?) and the source's
//! bucket in an LRU hash — and a one-source flood asks both again for every
//! datagram, to get the same "no". When the per-source bucket refuses and
//! will not admit anything for a while (`icmp_common::ratelimit::
//! refusal_memo_until`: at least 20 ms), the datagram's tuple (source,
//! destination, ports) is remembered on this CPU for 10 ms; a datagram with
//! the same tuple in that time, to a unicast MAC, is refused at once.
//!
//! What it trades: a socket bound to that port less than 10 ms ago (or a
//! reload that opened it) may see that source's datagrams dropped for the
//! rest of those 10 ms — the same source that is flooding it past its
//! limit. The rate never moves: nothing is remembered past the bucket's
//! next admission.

use aya_ebpf::helpers::bpf_ktime_get_coarse_ns;

use crate::maps::{REFUSAL_SLOTS, REFUSALS};

/// A datagram's tuple: source and destination (IPv4: both in word 0),
/// then ports and family.
pub type Tuple = [u64; 5];

#[inline(always)]
pub fn v4(src: &[u8; 4], dst: &[u8; 4], sport: [u8; 2], dport: [u8; 2]) -> Tuple {
    let addrs = (u32::from_ne_bytes(*src) as u64) << 32 | u32::from_ne_bytes(*dst) as u64;
    [addrs, 0, 0, 0, ports(sport, dport, 4)]
}

#[inline(always)]
pub fn v6(src: &[u8; 16], dst: &[u8; 16], sport: [u8; 2], dport: [u8; 2]) -> Tuple {
    let w = |a: &[u8; 16], i: usize| {
        u64::from_ne_bytes([
            a[i],
            a[i + 1],
            a[i + 2],
            a[i + 3],
            a[i + 4],
            a[i + 5],
            a[i + 6],
            a[i + 7],
        ])
    };
    [w(src, 0), w(src, 8), w(dst, 0), w(dst, 8), ports(sport, dport, 6)]
}

#[inline(always)]
fn ports(sport: [u8; 2], dport: [u8; 2], family: u8) -> u64 {
    (u16::from_ne_bytes(sport) as u64) << 16 | u16::from_ne_bytes(dport) as u64 | (family as u64) << 32
}

/// Whether a Port Unreachable of `family` can be in the memo under `cfg`
/// (`icmp_common::ratelimit::refusal_memo_possible`): with the type out of
/// the ratemask or a fast per-source bucket, the memo's line is not read.
#[inline(always)]
pub fn possible(cfg: &icmp_common::Config, family: icmp_common::Family) -> bool {
    let limited = match family {
        icmp_common::Family::V4 => icmp_common::ratelimit::limited_v4(cfg.ratemask_v4, 3),
        icmp_common::Family::V6 => icmp_common::ratelimit::limited_v6(&cfg.ratemask_v6, 1),
    };
    icmp_common::ratelimit::refusal_memo_possible(&cfg.per_source, limited)
}

/// This CPU's entry for `t`.
#[inline(always)]
fn slot(t: &Tuple) -> u32 {
    let x = t[0] ^ t[1] ^ t[2] ^ t[3] ^ t[4];
    let x = x ^ x >> 32;
    crate::maps::cpu().wrapping_mul(REFUSAL_SLOTS) | ((x ^ x >> 16 ^ x >> 8) as u32) & (REFUSAL_SLOTS - 1)
}

/// Whether `t` was refused less than 10 ms ago (and its bucket is still
/// over its limit). The clock is read only for a tuple that matches.
#[inline(always)]
pub fn refusing(t: &Tuple) -> bool {
    let Some(e) = REFUSALS.get(slot(t)) else {
        return false;
    };
    if e[0] != t[0] || e[1] != t[1] || e[2] != t[2] || e[3] != t[3] || e[4] != t[4] {
        return false;
    }
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    now < e[5]
}

/// Remembers `t`'s refusal for the memo's length from now.
#[inline(always)]
pub fn remember(t: &Tuple) {
    let Some(e) = REFUSALS.get_ptr_mut(slot(t)) else {
        return;
    };
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    // SAFETY: this CPU's entry; a program run is not preempted by another
    // on the same CPU.
    unsafe {
        // Word by word: a slice copy compiles to a byte-wise memmove.
        (*e)[0] = t[0];
        (*e)[1] = t[1];
        (*e)[2] = t[2];
        (*e)[3] = t[3];
        (*e)[4] = t[4];
        (*e)[5] = now.saturating_add(icmp_common::ratelimit::REFUSAL_MEMO_NS);
    }
}
