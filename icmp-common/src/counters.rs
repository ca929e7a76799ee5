//! Counter layout shared by the XDP program and the loader.
//!
//! Every counter lives in one per-CPU value, `COUNTERS` (a [`Counters`]):
//! a frame touches one map element, found with one lookup, and the lines of
//! that element it counts in — not one per-CPU allocation per counter
//! (each element of a per-CPU array is an allocation of its own, reached
//! through a pointer table: two cache lines per counter map per frame).
//!
//! - `actions`, then `verdicts` (one slot per [`Reason`]; every frame lands
//!   in exactly one, so the verdicts add up to the frames processed): the
//!   common outcomes share the first 64 bytes with the actions;
//! - `received` / `sent`: ICMP messages by [`type_index`] (family × type);
//! - `rate_limited`: scope × [`type_index`].

use crate::{
    ratelimit::Scope,
    reason::{Action, Family, Reason},
};

/// The per-CPU value of `COUNTERS` (about 20 KiB; a per-CPU value may be
/// up to 32 KiB).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters {
    /// By [`Action`] code (aborted, drop, pass, tx, redirect).
    pub actions: [u64; Action::COUNT as usize],
    /// By [`Reason`].
    pub verdicts: [u64; Reason::COUNT as usize],
    /// ICMP messages too short to parse, by family (`Icmp_InErrors`).
    pub icmp_in_errors: [u64; 2],
    /// ICMP messages received, by [`type_index`].
    pub received: [u64; TYPE_SLOTS as usize],
    /// ICMP messages sent, by [`type_index`].
    pub sent: [u64; TYPE_SLOTS as usize],
    /// Not sent (or refused, inbound) by a rate limit: scope × [`type_index`].
    pub rate_limited: [u64; (Scope::COUNT * TYPE_SLOTS) as usize],
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            actions: [0; Action::COUNT as usize],
            verdicts: [0; Reason::COUNT as usize],
            icmp_in_errors: [0; 2],
            received: [0; TYPE_SLOTS as usize],
            sent: [0; TYPE_SLOTS as usize],
            rate_limited: [0; (Scope::COUNT * TYPE_SLOTS) as usize],
        }
    }
}

/// Slots in `received` and `sent`.
pub const TYPE_SLOTS: u32 = 512;

/// Index of (family, ICMP type) in `received` / `sent`.
#[inline(always)]
pub const fn type_index(family: Family, icmp_type: u8) -> u32 {
    ((family as u32) << 8) | icmp_type as u32
}

/// Name of an ICMP / ICMPv6 type, for humans and metric labels.
pub const fn type_name(family: Family, icmp_type: u8) -> Option<&'static str> {
    match family {
        Family::V4 => match icmp_type {
            0 => Some("echo_reply"),
            3 => Some("destination_unreachable"),
            4 => Some("source_quench"),
            5 => Some("redirect"),
            8 => Some("echo_request"),
            9 => Some("router_advertisement"),
            10 => Some("router_solicitation"),
            11 => Some("time_exceeded"),
            12 => Some("parameter_problem"),
            13 => Some("timestamp_request"),
            14 => Some("timestamp_reply"),
            15 => Some("information_request"),
            16 => Some("information_reply"),
            17 => Some("address_mask_request"),
            18 => Some("address_mask_reply"),
            _ => None,
        },
        Family::V6 => match icmp_type {
            1 => Some("destination_unreachable"),
            2 => Some("packet_too_big"),
            3 => Some("time_exceeded"),
            4 => Some("parameter_problem"),
            128 => Some("echo_request"),
            129 => Some("echo_reply"),
            133 => Some("router_solicitation"),
            134 => Some("router_advertisement"),
            135 => Some("neighbor_solicitation"),
            136 => Some("neighbor_advertisement"),
            137 => Some("redirect"),
            143 => Some("mld2_report"),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_index_is_within_slots() {
        assert_eq!(type_index(Family::V6, 255), TYPE_SLOTS - 1);
        assert_eq!(type_index(Family::V4, 8), 8);
        assert_eq!(type_index(Family::V6, 128), 256 + 128);
    }
}
