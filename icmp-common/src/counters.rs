//! Counter layout shared by the XDP program and the loader.
//!
//! Three per-CPU array maps hold plain `u64` counters:
//! - `RX_TYPES` / `TX_TYPES`: ICMP messages received / sent, indexed by
//!   [`type_index`] (family × type, 2 × 256 slots);
//! - `VERDICTS`: one slot per [`Reason`]. Every frame the program sees lands in
//!   exactly one slot, so the slots add up to the frames processed.

/// Address family of an ICMP message.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4 = 0,
    V6 = 1,
}

impl Family {
    pub const ALL: [Self; 2] = [Self::V4, Self::V6];

    pub const fn label(self) -> &'static str {
        match self {
            Self::V4 => "ipv4",
            Self::V6 => "ipv6",
        }
    }
}

/// Slots in `RX_TYPES` and `TX_TYPES`.
pub const TYPE_SLOTS: u32 = 512;

/// Index of (family, ICMP type) in `RX_TYPES` / `TX_TYPES`.
#[inline(always)]
pub const fn type_index(family: Family, icmp_type: u8) -> u32 {
    ((family as u32) << 8) | icmp_type as u32
}

/// What the program did with a frame, and why. One counter slot each.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Echo request answered in place with XDP_TX.
    EchoAnswered = 0,
    /// Not IPv4/IPv6, or not ICMP: XDP_PASS untouched.
    NotIcmp = 1,
    /// ICMP but not an echo request (replies, errors, ND, …): the kernel's.
    NotEchoRequest = 2,
    /// Destination is not one of the interface's addresses.
    NotOurs = 3,
    /// IP destination is broadcast or multicast (icmp_echo_ignore_broadcasts).
    BroadcastDestination = 4,
    /// Frame sent to a link-layer broadcast/multicast MAC.
    LinkBroadcast = 5,
    /// Source is not a single host (zero, loopback, multicast, reserved…).
    BadSource = 6,
    /// IPv4 options or IPv6 extension headers: left to the kernel.
    IpOptions = 7,
    /// IPv4 fragment or IPv6 Fragment header.
    Fragment = 8,
    /// Truncated or malformed headers (short frame, bad IHL, bad length,
    /// bad IPv4 header checksum).
    Malformed = 9,
    /// The program is loaded but disabled by config (or has no config yet).
    Disabled = 10,
}

impl Reason {
    pub const COUNT: u32 = 11;

    pub const ALL: [Self; Self::COUNT as usize] = [
        Self::EchoAnswered,
        Self::NotIcmp,
        Self::NotEchoRequest,
        Self::NotOurs,
        Self::BroadcastDestination,
        Self::LinkBroadcast,
        Self::BadSource,
        Self::IpOptions,
        Self::Fragment,
        Self::Malformed,
        Self::Disabled,
    ];

    /// Stable snake_case name used in `icmpxdp stats` and metrics.
    pub const fn label(self) -> &'static str {
        match self {
            Self::EchoAnswered => "echo_answered",
            Self::NotIcmp => "not_icmp",
            Self::NotEchoRequest => "not_echo_request",
            Self::NotOurs => "not_ours",
            Self::BroadcastDestination => "broadcast_destination",
            Self::LinkBroadcast => "link_broadcast",
            Self::BadSource => "bad_source",
            Self::IpOptions => "ip_options",
            Self::Fragment => "fragment",
            Self::Malformed => "malformed",
            Self::Disabled => "disabled",
        }
    }

    /// The XDP action this reason ends in.
    pub const fn action(self) -> Action {
        match self {
            Self::EchoAnswered => Action::Tx,
            _ => Action::Pass,
        }
    }
}

/// XDP actions as counted (derived from [`Reason::action`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Tx,
    Pass,
    Drop,
}

impl Action {
    pub const fn label(self) -> &'static str {
        match self {
            Self::Tx => "tx",
            Self::Pass => "pass",
            Self::Drop => "drop",
        }
    }
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
    fn reasons_are_dense_and_in_order() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
        }
    }

    #[test]
    fn type_index_is_within_slots() {
        assert_eq!(type_index(Family::V6, 255), TYPE_SLOTS - 1);
        assert_eq!(type_index(Family::V4, 8), 8);
        assert_eq!(type_index(Family::V6, 128), 256 + 128);
    }
}
