//! What the program did with a frame and why: the [`Reason`] (one counter
//! slot each), the XDP [`Action`], and the address [`Family`].
//!
//! The leaf of the crate: it imports nothing, so every other module (the
//! rate limiter, the config, the decisions) can name a reason without an
//! import circle.

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

/// What the program did with a frame, and why. One counter slot each.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Echo request answered in place with XDP_TX.
    EchoAnswered = 0,
    /// Destination Unreachable / Port Unreachable sent with XDP_TX.
    UnreachableSent,
    /// Neither ICMP nor UDP, or not IP at all: XDP_PASS untouched.
    OtherProtocol,
    /// ICMP but not an echo request (replies, errors, ND, …): the kernel's.
    NotEchoRequest,
    /// Destination is not one of the interface's addresses.
    NotOurs,
    /// Echo to a broadcast or multicast IP destination (left to the kernel,
    /// like icmp_echo_ignore_broadcasts).
    BroadcastDestination,
    /// Echo in a frame sent to a link-layer broadcast/multicast MAC.
    LinkBroadcast,
    /// Echo from a source that is not a single host.
    BadSource,
    /// IPv4 options or IPv6 extension headers: left to the kernel.
    IpOptions,
    /// Fragment the kernel must reassemble (an echo fragment, or the first
    /// fragment of a UDP datagram).
    Fragment,
    /// Truncated or malformed headers (short frame, bad IHL, lying length
    /// fields, bad IPv4 header checksum, bad UDP length).
    Malformed,
    /// Disabled by config (or no config written yet).
    Disabled,
    /// UDP to an open port: delivered to the kernel untouched.
    PortOpen,
    /// An error was due but the driver left no headroom to build it in
    /// (`bpf_xdp_adjust_head` failed); the datagram went to the kernel.
    NoHeadroom,
    /// No error about an ICMP error message (RFC 1122 §3.2.2).
    SuppressedIcmpError,
    /// No error about a datagram to a broadcast/multicast address.
    SuppressedBroadcastDestination,
    /// No error about a frame sent to a link-layer broadcast/multicast.
    SuppressedLinkBroadcast,
    /// No error about a fragment other than the first.
    SuppressedNonFirstFragment,
    /// No error about a datagram whose source is not a single host.
    SuppressedBadSource,
    /// The reply or error was over its source's bucket: not sent.
    RateLimitedPerSource,
    /// The reply or error was over the host-wide bucket: not sent.
    RateLimitedGlobal,
    /// An echo request over its source's inbound limit.
    RateLimitedInbound,
    /// A reply or error would have left with a source that is not a single
    /// host (loopback, unspecified, multicast, reserved, a broadcast): never
    /// sent, whatever the config; the frame goes to the kernel.
    UnsendableSource,
    /// ICMP Timestamp request answered in place (`timestamp.action`).
    TimestampAnswered,
    /// An ICMP type addressed to us that `[policy]` drops.
    PolicyDropped,
    /// Protocol Unreachable (ICMPv6: Parameter Problem, unknown next
    /// header) sent for a datagram of a protocol nothing here handles.
    ProtocolUnreachableSent,
    /// Address Mask request answered (`address_mask.action`).
    AddressMaskAnswered,
    /// Time Exceeded sent for a datagram the host would forward with TTL ≤ 1
    /// (`router.time_exceeded`).
    TimeExceededSent,
    /// Fragmentation Needed (ICMPv6 Packet Too Big) sent for a datagram the
    /// host would forward that exceeds the egress MTU (`router.frag_needed`).
    FragNeededSent,
    /// A router error was due but the route back to the source has no known
    /// neighbour (or leaves a VLAN-tagged ingress by another interface):
    /// the kernel's.
    NoRouteBack,
    /// Time Exceeded sent by `bpf_redirect` out of the interface the route
    /// back to the source uses (not the one the datagram came in by).
    TimeExceededRedirected,
    /// Fragmentation Needed / Packet Too Big sent by `bpf_redirect`, as
    /// [`Reason::TimeExceededRedirected`].
    FragNeededRedirected,
}

impl Reason {
    pub const COUNT: u32 = 32;

    pub const ALL: [Self; Self::COUNT as usize] = [
        Self::EchoAnswered,
        Self::UnreachableSent,
        Self::OtherProtocol,
        Self::NotEchoRequest,
        Self::NotOurs,
        Self::BroadcastDestination,
        Self::LinkBroadcast,
        Self::BadSource,
        Self::IpOptions,
        Self::Fragment,
        Self::Malformed,
        Self::Disabled,
        Self::PortOpen,
        Self::NoHeadroom,
        Self::SuppressedIcmpError,
        Self::SuppressedBroadcastDestination,
        Self::SuppressedLinkBroadcast,
        Self::SuppressedNonFirstFragment,
        Self::SuppressedBadSource,
        Self::RateLimitedPerSource,
        Self::RateLimitedGlobal,
        Self::RateLimitedInbound,
        Self::UnsendableSource,
        Self::TimestampAnswered,
        Self::PolicyDropped,
        Self::ProtocolUnreachableSent,
        Self::AddressMaskAnswered,
        Self::TimeExceededSent,
        Self::FragNeededSent,
        Self::NoRouteBack,
        Self::TimeExceededRedirected,
        Self::FragNeededRedirected,
    ];

    /// Stable snake_case name used in `icmpxdp stats` and metrics.
    pub const fn label(self) -> &'static str {
        match self {
            Self::EchoAnswered => "echo_answered",
            Self::UnreachableSent => "unreachable_sent",
            Self::OtherProtocol => "other_protocol",
            Self::NotEchoRequest => "not_echo_request",
            Self::NotOurs => "not_ours",
            Self::BroadcastDestination => "broadcast_destination",
            Self::LinkBroadcast => "link_broadcast",
            Self::BadSource => "bad_source",
            Self::IpOptions => "ip_options",
            Self::Fragment => "fragment",
            Self::Malformed => "malformed",
            Self::Disabled => "disabled",
            Self::PortOpen => "port_open",
            Self::NoHeadroom => "no_headroom",
            Self::SuppressedIcmpError => "suppressed_icmp_error",
            Self::SuppressedBroadcastDestination => "suppressed_broadcast_destination",
            Self::SuppressedLinkBroadcast => "suppressed_link_broadcast",
            Self::SuppressedNonFirstFragment => "suppressed_non_first_fragment",
            Self::SuppressedBadSource => "suppressed_bad_source",
            Self::RateLimitedPerSource => "rate_limited_per_source",
            Self::RateLimitedGlobal => "rate_limited_global",
            Self::RateLimitedInbound => "rate_limited_inbound",
            Self::UnsendableSource => "unsendable_source",
            Self::TimestampAnswered => "timestamp_answered",
            Self::PolicyDropped => "policy_dropped",
            Self::ProtocolUnreachableSent => "protocol_unreachable_sent",
            Self::AddressMaskAnswered => "address_mask_answered",
            Self::TimeExceededSent => "time_exceeded_sent",
            Self::NoRouteBack => "no_route_back",
            Self::FragNeededSent => "frag_needed_sent",
            Self::TimeExceededRedirected => "time_exceeded_redirected",
            Self::FragNeededRedirected => "frag_needed_redirected",
        }
    }

    /// The reason with this slot number; out of range is `Malformed`.
    /// (No table lookup: the XDP program calls this on a value the verifier
    /// knows nothing about, and a table index must be provably bounded.)
    #[inline(always)]
    pub const fn from_index(i: u64) -> Self {
        if i < Self::COUNT as u64 {
            // SAFETY: `Reason` is `repr(u32)` with the dense values
            // 0..COUNT (checked by `reasons_are_dense_and_in_order`).
            unsafe { core::mem::transmute::<u32, Self>(i as u32) }
        } else {
            Self::Malformed
        }
    }

    pub const fn is_suppression(self) -> bool {
        matches!(
            self,
            Self::SuppressedIcmpError
                | Self::SuppressedBroadcastDestination
                | Self::SuppressedLinkBroadcast
                | Self::SuppressedNonFirstFragment
                | Self::SuppressedBadSource
        )
    }
}

/// XDP actions, counted in `COUNTERS.actions` (slot = XDP action code):
/// a suppressed datagram is passed or dropped depending on config, so the
/// action cannot be derived from the [`Reason`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Aborted = 0,
    Drop = 1,
    Pass = 2,
    Tx = 3,
    /// A router error sent out of another interface (`bpf_redirect`).
    Redirect = 4,
}

impl Action {
    pub const COUNT: u32 = 5;
    pub const ALL: [Self; 5] = [Self::Aborted, Self::Drop, Self::Pass, Self::Tx, Self::Redirect];

    pub const fn label(self) -> &'static str {
        match self {
            Self::Aborted => "aborted",
            Self::Drop => "drop",
            Self::Pass => "pass",
            Self::Tx => "tx",
            Self::Redirect => "redirect",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_dense_and_in_order() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
            assert_eq!(Reason::from_index(i as u64), *r);
        }
        assert_eq!(Reason::from_index(u64::from(Reason::COUNT)), Reason::Malformed);
    }
}
