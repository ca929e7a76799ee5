//! Port Unreachable: which UDP datagrams earn one, the ICMP error-suppression
//! rules (RFC 1122 §3.2.2, RFC 1812 §4.3.2.7, RFC 4443 §2.4(e)) and how much of
//! the datagram to quote.
//!
//! The program asks in this order, cheapest first:
//! 1. [`target_v4`] / [`target_v6`]: is the datagram for us at all, and is
//!    its UDP header here (not a fragment)?
//! 2. [`classify_port`]: open or closed (static lists, else socket lookup)?
//! 3. for a closed port, [`suppress_v4`] / [`suppress_v6`]: may we send an
//!    error about it?
//!
//! The suppression rules are checked only once the port is known to be
//! closed, so a broadcast to an open port (DHCP, say) is neither counted as a
//! suppression nor dropped when suppressed datagrams are configured to drop.

use crate::{
    addr::{
        mac_is_group, v4_is_limited_broadcast, v4_is_multicast, v4_is_single_host_source, v6_is_multicast,
        v6_is_single_host_source,
    },
    addr::{v4_may_send_from, v6_may_send_from},
    config::{AddrSet, Config, FLAG_PORTS_BY_SOCKET, FLAG_RESERVED_SOURCE_INVALID},
    reason::Reason,
};

/// What the offending datagram carries, as far as the rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    Udp,
    /// An ICMP / ICMPv6 message of this type.
    Icmp(u8),
    Other,
}

/// The facts about an IPv4 datagram an error would be about.
pub struct DatagramV4<'a> {
    pub eth_dst: &'a [u8; 6],
    pub src: &'a [u8; 4],
    pub dst: &'a [u8; 4],
    /// Fragment offset in 8-byte units (0 for the first or only fragment).
    pub frag_offset: u16,
    pub payload: Payload,
}

/// The facts about an IPv6 datagram an error would be about.
pub struct DatagramV6<'a> {
    pub eth_dst: &'a [u8; 6],
    pub src: &'a [u8; 16],
    pub dst: &'a [u8; 16],
    /// Offset from a Fragment header (0 when there is none).
    pub frag_offset: u16,
    pub payload: Payload,
}

/// ICMP types Linux treats as errors: Destination Unreachable (3), Source
/// Quench (4), Redirect (5), Time Exceeded (11), Parameter Problem (12), and
/// any type above 18 (`icmp_send`: `type > NR_ICMP_TYPES` counts as an error).
#[inline(always)]
pub const fn is_icmp4_error(kind: u8) -> bool {
    matches!(kind, 3 | 4 | 5 | 11 | 12) || kind > 18
}

/// ICMPv6 error messages are types 0–127 (RFC 4443 §2.1).
#[inline(always)]
pub const fn is_icmp6_error(kind: u8) -> bool {
    kind < 128
}

/// Broadcast or multicast IPv4 destination: 255.255.255.255, 224.0.0.0/4, or
/// a directed broadcast of one of the interface's subnets.
#[inline(always)]
pub fn v4_dst_is_group(dst: &[u8; 4], addrs: &AddrSet) -> bool {
    v4_is_limited_broadcast(dst) || v4_is_multicast(dst) || addrs.is_v4_broadcast(dst)
}

/// The error-suppression rules for IPv4, in a fixed order (the first that
/// applies is the one counted). `None`: an error may be sent.
#[inline(always)]
pub fn suppress_v4(d: &DatagramV4<'_>, cfg: &Config, addrs: &AddrSet) -> Option<Reason> {
    // 1. Never an error about an ICMP error.
    if let Payload::Icmp(kind) = d.payload
        && is_icmp4_error(kind)
    {
        return Some(Reason::SuppressedIcmpError);
    }
    // 3. … about a frame sent to a link-layer broadcast/multicast address.
    if mac_is_group(d.eth_dst) {
        return Some(Reason::SuppressedLinkBroadcast);
    }
    // 2. … about a datagram sent to a broadcast or multicast address.
    if v4_dst_is_group(d.dst, addrs) {
        return Some(Reason::SuppressedBroadcastDestination);
    }
    // 4. … about a fragment other than the first.
    if d.frag_offset != 0 {
        return Some(Reason::SuppressedNonFirstFragment);
    }
    // 5. … about a datagram whose source is not a single host.
    let reserved_is_host = !cfg.has(FLAG_RESERVED_SOURCE_INVALID);
    if !v4_is_single_host_source(d.src, reserved_is_host) || addrs.is_v4_broadcast(d.src) {
        return Some(Reason::SuppressedBadSource);
    }
    None
}

/// The error-suppression rules for IPv6 (RFC 4443 §2.4(e)), same order.
#[inline(always)]
pub fn suppress_v6(d: &DatagramV6<'_>) -> Option<Reason> {
    if let Payload::Icmp(kind) = d.payload
        && is_icmp6_error(kind)
    {
        return Some(Reason::SuppressedIcmpError);
    }
    if mac_is_group(d.eth_dst) {
        return Some(Reason::SuppressedLinkBroadcast);
    }
    if v6_is_multicast(d.dst) {
        return Some(Reason::SuppressedBroadcastDestination);
    }
    if d.frag_offset != 0 {
        return Some(Reason::SuppressedNonFirstFragment);
    }
    if !v6_is_single_host_source(d.src) {
        return Some(Reason::SuppressedBadSource);
    }
    None
}

/// Step 1 for IPv4: `Err(reason)` when the datagram is not ours to judge, or
/// its UDP header is not in this frame (a fragment); `Ok(())` to go on.
/// `more_fragments` is the MF flag.
///
/// "Ours" is the address set (and the broadcasts the host receives), never
/// `echo.answer_any_destination` or `echo.answer_prefixes`: those are echo
/// settings, and a host-side error about traffic in transit would consume
/// another host's datagram.
#[inline(always)]
pub fn target_v4(d: &DatagramV4<'_>, more_fragments: bool, addrs: &AddrSet) -> Result<(), Reason> {
    if !v4_dst_is_group(d.dst, addrs) && !addrs.has_v4(d.dst) {
        return Err(Reason::NotOurs);
    }
    if d.frag_offset != 0 {
        // No port to look at, so no error; counted as such whatever else
        // the frame is, and always passed (`action_for`): dropping it could
        // break a fragmented datagram to an open port, broadcast or not.
        return Err(Reason::SuppressedNonFirstFragment);
    }
    if more_fragments {
        // First fragment: the kernel reassembles and decides.
        return Err(Reason::Fragment);
    }
    Ok(())
}

/// Step 1 for IPv6 (see [`target_v4`]); `fragmented`: a Fragment header
/// was present.
#[inline(always)]
pub fn target_v6(d: &DatagramV6<'_>, fragmented: bool, addrs: &AddrSet) -> Result<(), Reason> {
    if !v6_is_multicast(d.dst) && !addrs.has_v6(d.dst) {
        return Err(Reason::NotOurs);
    }
    if d.frag_offset != 0 {
        return Err(Reason::SuppressedNonFirstFragment);
    }
    if fragmented {
        return Err(Reason::Fragment);
    }
    Ok(())
}

/// The last check before an IPv4 error is built: its source (the
/// datagram's destination) must be one we may send from, whatever the
/// config and the address set hold (an interface can carry 127.0.0.1).
#[inline(always)]
pub fn error_source_v4(dst: &[u8; 4], addrs: &AddrSet) -> Result<(), Reason> {
    if v4_may_send_from(dst) && !addrs.is_v4_broadcast(dst) {
        Ok(())
    } else {
        Err(Reason::UnsendableSource)
    }
}

/// [`error_source_v4`] for IPv6.
#[inline(always)]
pub fn error_source_v6(dst: &[u8; 16]) -> Result<(), Reason> {
    if v6_may_send_from(dst) {
        Ok(())
    } else {
        Err(Reason::UnsendableSource)
    }
}

/// How a port is classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortClass {
    Open,
    Closed,
    /// Neither list names it and the policy is `socket`: ask the kernel
    /// whether a UDP socket would receive the datagram.
    AskSockets,
}

/// Whether a port is open by static policy (`ports.open`), from the open
/// bitmap's word holding it. Such a port is open whatever else is true of
/// the datagram, so the program passes UDP to it on its fast path, before
/// the headers are checked and the config is read (verdict `port_open`).
#[inline(always)]
pub const fn listed_open(open_word: u64, bit: u64) -> bool {
    open_word & bit != 0
}

/// Step 2: explicit open ports win over explicit closed ports, which win
/// over the policy. `open_word` / `closed_word` are the bitmap words holding
/// the port, `bit` its bit (see [`crate::config::port_slot`]).
#[inline(always)]
pub const fn classify_port(open_word: u64, closed_word: u64, bit: u64, cfg: &Config) -> PortClass {
    if listed_open(open_word, bit) {
        PortClass::Open
    } else if closed_word & bit != 0 {
        PortClass::Closed
    } else if cfg.has(FLAG_PORTS_BY_SOCKET) {
        PortClass::AskSockets
    } else {
        PortClass::Open
    }
}

/// Bytes of the offending datagram to quote: as much as fits in an error of
/// `error_size` bytes after `new_headers` (IP + ICMP header), but never less
/// than its IP header plus 8 bytes (RFC 792), and never more than it has.
#[inline(always)]
pub const fn quote_len(datagram_len: usize, ip_header_len: usize, error_size: usize, new_headers: usize) -> usize {
    let budget = error_size.saturating_sub(new_headers);
    let minimum = ip_header_len + 8;
    let want = if budget > minimum { budget } else { minimum };
    if datagram_len < want { datagram_len } else { want }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
    const OURS: [u8; 4] = [192, 0, 2, 1];
    const PEER: [u8; 4] = [192, 0, 2, 2];
    const BCAST: [u8; 4] = [192, 0, 2, 255];

    fn addrs() -> AddrSet {
        let mut a = AddrSet::default();
        a.push_v4(OURS);
        a.push_v4_broadcast(BCAST);
        a.push_v6(v6(1));
        a
    }

    fn v6(last: u8) -> [u8; 16] {
        let mut x = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        x[15] = last;
        x
    }

    fn d4<'a>(eth: &'a [u8; 6], src: &'a [u8; 4], dst: &'a [u8; 4], off: u16, p: Payload) -> DatagramV4<'a> {
        DatagramV4 {
            eth_dst: eth,
            src,
            dst,
            frag_offset: off,
            payload: p,
        }
    }

    #[test]
    fn v4_plain_udp_is_allowed() {
        let cfg = Config::default();
        assert_eq!(
            suppress_v4(&d4(&MAC, &PEER, &OURS, 0, Payload::Udp), &cfg, &addrs()),
            None
        );
    }

    #[test]
    fn rule1_icmp_errors_every_type() {
        let (cfg, a) = (Config::default(), addrs());
        for kind in 0..=255u8 {
            let got = suppress_v4(&d4(&MAC, &PEER, &OURS, 0, Payload::Icmp(kind)), &cfg, &a);
            let error = matches!(kind, 3 | 4 | 5 | 11 | 12 | 19..=255);
            assert_eq!(got == Some(Reason::SuppressedIcmpError), error, "ICMP type {kind}");
            if !error {
                assert_eq!(got, None, "informational type {kind} may get an error");
            }
        }
        for kind in 0..=255u8 {
            let d = DatagramV6 {
                eth_dst: &MAC,
                src: &v6(2),
                dst: &v6(1),
                frag_offset: 0,
                payload: Payload::Icmp(kind),
            };
            assert_eq!(
                suppress_v6(&d) == Some(Reason::SuppressedIcmpError),
                kind < 128,
                "ICMPv6 type {kind}"
            );
        }
    }

    #[test]
    fn rule2_broadcast_and_multicast_destinations() {
        let (cfg, a) = (Config::default(), addrs());
        for dst in [
            [255, 255, 255, 255],
            BCAST,
            [224, 0, 0, 0],
            [224, 0, 0, 1],
            [239, 255, 255, 255],
        ] {
            assert_eq!(
                suppress_v4(&d4(&MAC, &PEER, &dst, 0, Payload::Udp), &cfg, &a),
                Some(Reason::SuppressedBroadcastDestination),
                "{dst:?}"
            );
        }
        for dst in [
            [223, 255, 255, 255],
            [192, 0, 2, 254],
            [240, 0, 0, 0],
            [255, 255, 255, 254],
        ] {
            assert_eq!(
                suppress_v4(&d4(&MAC, &PEER, &dst, 0, Payload::Udp), &cfg, &a),
                None,
                "{dst:?}"
            );
        }
        let mut mc = [0u8; 16];
        mc[0] = 0xff;
        let d = DatagramV6 {
            eth_dst: &MAC,
            src: &v6(2),
            dst: &mc,
            frag_offset: 0,
            payload: Payload::Udp,
        };
        assert_eq!(suppress_v6(&d), Some(Reason::SuppressedBroadcastDestination));
        let mut not_mc = mc;
        not_mc[0] = 0xfe;
        let d = DatagramV6 { dst: &not_mc, ..d };
        assert_eq!(suppress_v6(&d), None, "fe00:: is not multicast");
    }

    #[test]
    fn rule3_link_layer_group_frames() {
        let (cfg, a) = (Config::default(), addrs());
        for mac in [
            [0xff; 6],
            [0x01, 0x00, 0x5e, 0, 0, 1],
            [0x33, 0x33, 0, 0, 0, 1],
            [0x03, 0, 0, 0, 0, 0],
        ] {
            assert_eq!(
                suppress_v4(&d4(&mac, &PEER, &OURS, 0, Payload::Udp), &cfg, &a),
                Some(Reason::SuppressedLinkBroadcast)
            );
            let d = DatagramV6 {
                eth_dst: &mac,
                src: &v6(2),
                dst: &v6(1),
                frag_offset: 0,
                payload: Payload::Udp,
            };
            assert_eq!(suppress_v6(&d), Some(Reason::SuppressedLinkBroadcast));
        }
        assert_eq!(
            suppress_v4(
                &d4(&[0x02, 0xff, 0xff, 0xff, 0xff, 0xff], &PEER, &OURS, 0, Payload::Udp),
                &cfg,
                &a
            ),
            None
        );
    }

    #[test]
    fn rule4_non_first_fragments() {
        let (cfg, a) = (Config::default(), addrs());
        assert_eq!(
            suppress_v4(&d4(&MAC, &PEER, &OURS, 1, Payload::Udp), &cfg, &a),
            Some(Reason::SuppressedNonFirstFragment)
        );
        assert_eq!(
            suppress_v4(&d4(&MAC, &PEER, &OURS, 0x1fff, Payload::Other), &cfg, &a),
            Some(Reason::SuppressedNonFirstFragment)
        );
        let d = DatagramV6 {
            eth_dst: &MAC,
            src: &v6(2),
            dst: &v6(1),
            frag_offset: 1,
            payload: Payload::Udp,
        };
        assert_eq!(suppress_v6(&d), Some(Reason::SuppressedNonFirstFragment));
        // The step-1 gate: a non-first fragment never reaches a port lookup,
        // a first fragment is the kernel's to reassemble.
        assert_eq!(
            target_v4(&d4(&MAC, &PEER, &OURS, 5, Payload::Udp), false, &a),
            Err(Reason::SuppressedNonFirstFragment)
        );
        assert_eq!(
            target_v4(&d4(&MAC, &PEER, &OURS, 0, Payload::Udp), true, &a),
            Err(Reason::Fragment)
        );
        assert_eq!(target_v4(&d4(&MAC, &PEER, &OURS, 0, Payload::Udp), false, &a), Ok(()));
        assert_eq!(target_v6(&d, true, &a), Err(Reason::SuppressedNonFirstFragment));
    }

    #[test]
    fn rule5_sources_that_are_not_single_hosts() {
        let (cfg, a) = (Config::default(), addrs());
        for src in [
            [0, 0, 0, 0],
            [0, 1, 2, 3],
            [127, 0, 0, 1],
            [127, 255, 255, 255],
            [224, 0, 0, 1],
            [239, 255, 255, 255],
            [240, 0, 0, 1],
            [255, 255, 255, 254],
            [255, 255, 255, 255],
            BCAST,
        ] {
            assert_eq!(
                suppress_v4(&d4(&MAC, &src, &OURS, 0, Payload::Udp), &cfg, &a),
                Some(Reason::SuppressedBadSource),
                "{src:?}"
            );
        }
        for src in [
            [1, 0, 0, 0],
            [126, 255, 255, 255],
            [128, 0, 0, 0],
            [223, 255, 255, 255],
            [192, 0, 2, 0],
        ] {
            assert_eq!(
                suppress_v4(&d4(&MAC, &src, &OURS, 0, Payload::Udp), &cfg, &a),
                None,
                "{src:?}"
            );
        }
        // 240/4 configurable (RFC 1812 §4.2.2.11 (e)); 255.255.255.255 never.
        let lax = Config {
            flags: cfg.flags & !FLAG_RESERVED_SOURCE_INVALID,
            ..cfg
        };
        assert_eq!(
            suppress_v4(&d4(&MAC, &[240, 0, 0, 1], &OURS, 0, Payload::Udp), &lax, &a),
            None
        );
        assert_eq!(
            suppress_v4(&d4(&MAC, &[255; 4], &OURS, 0, Payload::Udp), &lax, &a),
            Some(Reason::SuppressedBadSource)
        );
        let mut lo = [0u8; 16];
        for last in [0u8, 1] {
            lo[15] = last;
            let d = DatagramV6 {
                eth_dst: &MAC,
                src: &lo,
                dst: &v6(1),
                frag_offset: 0,
                payload: Payload::Udp,
            };
            assert_eq!(suppress_v6(&d), Some(Reason::SuppressedBadSource), "::{last}");
        }
        let mut mc = v6(2);
        mc[0] = 0xff;
        let d = DatagramV6 {
            eth_dst: &MAC,
            src: &mc,
            dst: &v6(1),
            frag_offset: 0,
            payload: Payload::Udp,
        };
        assert_eq!(suppress_v6(&d), Some(Reason::SuppressedBadSource));
    }

    #[test]
    fn targets_and_ownership() {
        let a = addrs();
        let other = [192, 0, 2, 77];
        assert_eq!(
            target_v4(&d4(&MAC, &PEER, &other, 0, Payload::Udp), false, &a),
            Err(Reason::NotOurs)
        );
        // Broadcasts are "for us" (the host receives them); the rules decide later.
        assert_eq!(target_v4(&d4(&MAC, &PEER, &BCAST, 0, Payload::Udp), false, &a), Ok(()));
        let d = DatagramV6 {
            eth_dst: &MAC,
            src: &v6(2),
            dst: &v6(9),
            frag_offset: 0,
            payload: Payload::Udp,
        };
        assert_eq!(target_v6(&d, false, &a), Err(Reason::NotOurs));
    }

    #[test]
    fn non_first_fragments_are_always_that_whatever_else_they_are() {
        // A non-first fragment to a group address, in a link-layer broadcast
        // frame, or from a bad source: counted as a non-first fragment (and
        // so always passed), never under the rule that would drop it.
        let a = addrs();
        let group_mac = [0x01, 0, 0x5e, 0, 0, 0xfb];
        for (eth, src, dst) in [
            (MAC, PEER, [224, 0, 0, 251]),
            (MAC, PEER, BCAST),
            (group_mac, PEER, OURS),
            (MAC, [0, 0, 0, 0], OURS),
        ] {
            assert_eq!(
                target_v4(&d4(&eth, &src, &dst, 1, Payload::Udp), true, &a),
                Err(Reason::SuppressedNonFirstFragment),
                "{eth:?} {src:?} {dst:?}"
            );
        }
        let mut mc = v6(0xfb);
        mc[0] = 0xff;
        let d = DatagramV6 {
            eth_dst: &MAC,
            src: &v6(2),
            dst: &mc,
            frag_offset: 1,
            payload: Payload::Udp,
        };
        assert_eq!(target_v6(&d, true, &a), Err(Reason::SuppressedNonFirstFragment));
    }

    #[test]
    fn errors_never_leave_from_an_address_that_is_not_a_single_host() {
        let mut a = addrs();
        // An interface can carry loopback or odd addresses; the rule holds anyway.
        for dst in [
            [127, 0, 0, 1],
            [0, 0, 0, 1],
            [240, 0, 0, 1],
            [224, 0, 0, 1],
            [255; 4],
            BCAST,
        ] {
            a.push_v4(dst);
            assert_eq!(error_source_v4(&dst, &a), Err(Reason::UnsendableSource), "{dst:?}");
        }
        assert_eq!(error_source_v4(&OURS, &a), Ok(()));
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&OURS);
        let mut lo = [0u8; 16];
        lo[15] = 1;
        let mut mc = v6(1);
        mc[0] = 0xff;
        for dst in [[0u8; 16], lo, mc, mapped] {
            assert_eq!(error_source_v6(&dst), Err(Reason::UnsendableSource), "{dst:?}");
        }
        assert_eq!(error_source_v6(&v6(1)), Ok(()));
    }

    #[test]
    fn port_classes() {
        let cfg = Config::default();
        let listed = Config {
            flags: cfg.flags & !FLAG_PORTS_BY_SOCKET,
            ..cfg
        };
        assert_eq!(classify_port(1, 1, 1, &cfg), PortClass::Open, "open wins over closed");
        assert_eq!(classify_port(0, 1, 1, &cfg), PortClass::Closed);
        assert_eq!(classify_port(0, 0, 1, &cfg), PortClass::AskSockets);
        assert_eq!(classify_port(0, 0, 1, &listed), PortClass::Open);
        assert_eq!(
            classify_port(2, 2, 1, &cfg),
            PortClass::AskSockets,
            "other bits do not matter"
        );
    }

    #[test]
    fn quote_lengths() {
        // RFC 1812: as much as fits in 576 bytes (576 - 20 - 8 = 548).
        assert_eq!(quote_len(1000, 20, 576, 28), 548);
        assert_eq!(quote_len(100, 20, 576, 28), 100);
        // Configured down to the minimum: IP header + 8 bytes, options included.
        assert_eq!(quote_len(1000, 20, 56, 28), 28);
        assert_eq!(quote_len(1000, 60, 56, 28), 68, "never less than header + 8");
        assert_eq!(quote_len(30, 20, 56, 28), 28);
        // IPv6: 1280 - 40 - 8 = 1232.
        assert_eq!(quote_len(1500, 40, 1280, 48), 1232);
        assert_eq!(quote_len(1500, 40, 96, 48), 48);
    }
}
