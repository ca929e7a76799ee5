//! Counter layout shared by the XDP program and the loader.
//!
//! Per-CPU array maps hold plain `u64` counters:
//! - `RX_TYPES` / `TX_TYPES`: ICMP messages received / sent, indexed by
//!   [`type_index`] (family × type, 2 × 256 slots);
//! - `VERDICTS`: one slot per [`Reason`](crate::reason::Reason). Every frame
//!   the program sees lands in exactly one slot, so the slots add up to the
//!   frames processed;
//! - `ACTIONS`: one slot per [`Action`](crate::reason::Action);
//! - `RATE_LIMITED`: scope × [`type_index`].

use crate::reason::Family;

/// Slots in `RX_TYPES` and `TX_TYPES`.
pub const TYPE_SLOTS: u32 = 512;

/// Index of (family, ICMP type) in `RX_TYPES` / `TX_TYPES`.
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
