//! Router-side errors: whether a datagram not addressed to this host is one
//! to send Time Exceeded about (RFC 1812 §5.3.1; Linux's `ip_forward`),
//! before the kernel's FIB is asked whether it would be forwarded at all.

use crate::{
    AddrSet, Config,
    addr::v6_is_multicast,
    config::{FLAG_ROUTER_FRAG_NEEDED, FLAG_ROUTER_TIME_EXCEEDED},
    reason::Reason,
    unreachable::{DatagramV4, DatagramV6, suppress_v4, suppress_v6, v4_dst_is_group},
};

/// Whether a datagram not addressed to this host is a candidate for a
/// router error: TTL ≤ 1 with `router.time_exceeded`, or — with
/// `router.frag_needed` — `oversize_df`: DF set and longer than the
/// smallest MTU on the host (only the FIB knows the egress MTU).
///
/// `None`: not a router case (addressed to this host, neither condition, or
/// the features off) — the frame goes on to the host-side rules.
/// `Some(Err)`: an error would be due but a rule suppresses it. `Some(Ok)`:
/// ask the FIB, and send it if the datagram would be forwarded.
#[inline(always)]
pub fn router_error_v4(
    d: &DatagramV4<'_>,
    ttl: u8,
    oversize_df: bool,
    cfg: &Config,
    addrs: &AddrSet,
) -> Option<Result<(), Reason>> {
    let time_exceeded = cfg.has(FLAG_ROUTER_TIME_EXCEEDED) && ttl <= 1;
    let frag_needed = cfg.has(FLAG_ROUTER_FRAG_NEEDED) && oversize_df;
    if !(time_exceeded || frag_needed) || addrs.has_v4(d.dst) || v4_dst_is_group(d.dst, addrs) {
        return None;
    }
    Some(match suppress_v4(d, cfg, addrs) {
        Some(r) => Err(r),
        None => Ok(()),
    })
}

/// [`router_error_v4`] for IPv6 (RFC 4443 §3.2, §3.3; Linux's
/// `ip6_forward`): hop limit ≤ 1, or `oversize` (a router never fragments
/// IPv6), not to one of our addresses nor to a multicast group.
#[inline(always)]
pub fn router_error_v6(
    d: &DatagramV6<'_>,
    hop_limit: u8,
    oversize: bool,
    cfg: &Config,
    addrs: &AddrSet,
) -> Option<Result<(), Reason>> {
    let time_exceeded = cfg.has(FLAG_ROUTER_TIME_EXCEEDED) && hop_limit <= 1;
    let too_big = cfg.has(FLAG_ROUTER_FRAG_NEEDED) && oversize;
    if !(time_exceeded || too_big) || addrs.has_v6(d.dst) || v6_is_multicast(d.dst) {
        return None;
    }
    Some(match suppress_v6(d) {
        Some(r) => Err(r),
        None => Ok(()),
    })
}

/// The source of a router error with `router.errors_use_inbound_ifaddr`:
/// as Linux's `inet_select_addr(dev, to, RT_SCOPE_LINK)` on the inbound
/// interface, its address whose subnet holds `to` (the error's
/// destination), else its first address. `None` when it has none.
#[inline(always)]
pub fn inbound_source_v4(addrs: &AddrSet, to: &[u8; 4]) -> Option<[u8; 4]> {
    let to = u32::from_be_bytes(*to);
    let mut i = 0;
    while i < crate::config::MAX_V4_ADDRS {
        if i as u32 >= addrs.v4_len {
            break;
        }
        let (a, m) = (u32::from_be_bytes(addrs.v4[i]), u32::from_be_bytes(addrs.v4_masks[i]));
        if m != 0 && a & m == to & m {
            return Some(addrs.v4[i]);
        }
        i += 1;
    }
    (addrs.v4_len > 0).then_some(addrs.v4[0])
}

/// The source of an ICMPv6 router error, as Linux's `icmp6_send` picks it
/// when the route back has no preferred source ("a more meaningful saddr
/// from input if": `ipv6_dev_get_saddr` on the inbound interface): among
/// the inbound interface's addresses of the same scope as `to` (link-local
/// with link-local, global with global), the one sharing the longest
/// prefix with `to` within the first 64 bits (a /64's subnet, RFC 6724
/// rule 8); the first on a tie. `None` when it has none: then the route
/// back's source is used.
#[inline(always)]
pub fn inbound_source_v6(addrs: &AddrSet, to: &[u8; 16]) -> Option<[u8; 16]> {
    inbound_index_v6(
        addrs,
        u64::from_be_bytes([to[0], to[1], to[2], to[3], to[4], to[5], to[6], to[7]]),
    )
    .map(|i| addrs.v6[i])
}

/// [`inbound_source_v6`] as an index into `addrs.v6`, from the first 64
/// bits of `to` (big-endian).
///
/// Branch-free inside the loop: in the XDP program every branch that kept
/// a different "best so far" would be a verifier state of its own (2^16 of
/// them). The values that decide are passed through [`opaque`] so that the
/// compiler does not turn the arithmetic back into compare-and-branch.
#[inline(always)]
pub fn inbound_index_v6(addrs: &AddrSet, to_hi: u64) -> Option<usize> {
    // 1 when x != 0.
    let nonzero = |x: u64| {
        let x = opaque(x);
        (x | x.wrapping_neg()) >> 63
    };
    let link_local = |hi: u64| 1 ^ nonzero((hi >> 54) ^ 0x3fa);
    // x with every bit below its highest set bit set: equal for equal
    // common prefixes, smaller for longer ones.
    let smear = |mut x: u64| {
        x |= x >> 1;
        x |= x >> 2;
        x |= x >> 4;
        x |= x >> 8;
        x |= x >> 16;
        x |= x >> 32;
        x >> 1
    };
    let (mut best, mut best_i) = (u64::MAX, 0u64);
    let mut i = 0;
    while i < crate::config::MAX_V6_ADDRS {
        if i as u32 >= addrs.v6_len {
            break;
        }
        let a = &addrs.v6[i];
        let hi = u64::from_be_bytes([a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]]);
        let eligible = 1 ^ link_local(hi) ^ link_local(to_hi);
        let s = smear(hi ^ to_hi);
        // s < best, unsigned (Hacker's Delight 2-12); strictly, so that the
        // first address wins a tie.
        let less = ((!s & best) | (!(s ^ best) & s.wrapping_sub(best))) >> 63;
        let take = 0u64.wrapping_sub(opaque(less & eligible));
        best = (best & !take) | (s & take);
        best_i = (best_i & !take) | (i as u64 & take);
        i += 1;
    }
    (best != u64::MAX).then_some(best_i as usize % crate::config::MAX_V6_ADDRS)
}

/// `x`, through a volatile read of a local: a value the compiler cannot
/// reason about (see [`inbound_index_v6`]).
#[inline(always)]
fn opaque(x: u64) -> u64 {
    // SAFETY: a read of a local.
    unsafe { core::ptr::read_volatile(&x) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unreachable::Payload;

    /// Cases written from RFC 1812 §4.3.2.7 and §5.3.1, not from the code.
    #[test]
    fn time_exceeded_cases() {
        let mut addrs = AddrSet::default();
        addrs.push_v4([192, 0, 2, 1]);
        addrs.push_v4_broadcast([192, 0, 2, 255]);
        let on = Config {
            flags: Config::default().flags | FLAG_ROUTER_TIME_EXCEEDED,
            ..Config::default()
        };
        let unicast = [2, 0, 0, 0, 0, 9];
        let d = |src: [u8; 4], dst: [u8; 4], mac: [u8; 6], frag: u16, payload: Payload| (src, dst, mac, frag, payload);
        let ask = |c: &Config, t: u8, (src, dst, mac, frag, payload): ([u8; 4], [u8; 4], [u8; 6], u16, Payload)| {
            router_error_v4(
                &DatagramV4 {
                    eth_dst: &mac,
                    src: &src,
                    dst: &dst,
                    frag_offset: frag,
                    payload,
                },
                t,
                false,
                c,
                &addrs,
            )
        };
        let transit = d([192, 0, 2, 2], [198, 51, 100, 2], unicast, 0, Payload::Udp);
        assert_eq!(ask(&on, 1, transit), Some(Ok(())), "TTL 1 in transit");
        let transit = d([192, 0, 2, 2], [198, 51, 100, 2], unicast, 0, Payload::Udp);
        assert_eq!(ask(&on, 0, transit), Some(Ok(())), "TTL 0 in transit");
        let transit = d([192, 0, 2, 2], [198, 51, 100, 2], unicast, 0, Payload::Udp);
        assert_eq!(ask(&on, 2, transit), None, "TTL 2 is forwarded");
        let transit = d([192, 0, 2, 2], [198, 51, 100, 2], unicast, 0, Payload::Udp);
        assert_eq!(ask(&Config::default(), 1, transit), None, "off by default");
        let to_us = d([192, 0, 2, 2], [192, 0, 2, 1], unicast, 0, Payload::Udp);
        assert_eq!(
            ask(&on, 1, to_us),
            None,
            "addressed to this host: delivered, not forwarded"
        );
        let bcast = d([192, 0, 2, 2], [192, 0, 2, 255], unicast, 0, Payload::Udp);
        assert_eq!(ask(&on, 1, bcast), None, "our broadcast is ours");
        let err = d([192, 0, 2, 2], [198, 51, 100, 2], unicast, 0, Payload::Icmp(3));
        assert_eq!(ask(&on, 1, err), Some(Err(Reason::SuppressedIcmpError)));
        let echo = d([192, 0, 2, 2], [198, 51, 100, 2], unicast, 0, Payload::Icmp(8));
        assert_eq!(ask(&on, 1, echo), Some(Ok(())), "traceroute -I");
        let frag = d([192, 0, 2, 2], [198, 51, 100, 2], unicast, 7, Payload::Other);
        assert_eq!(ask(&on, 1, frag), Some(Err(Reason::SuppressedNonFirstFragment)));
        let link = d([192, 0, 2, 2], [198, 51, 100, 2], [0xff; 6], 0, Payload::Udp);
        assert_eq!(ask(&on, 1, link), Some(Err(Reason::SuppressedLinkBroadcast)));
        let bad = d([0, 0, 0, 0], [198, 51, 100, 2], unicast, 0, Payload::Udp);
        assert_eq!(ask(&on, 1, bad), Some(Err(Reason::SuppressedBadSource)));
        let mcast = d([192, 0, 2, 2], [224, 0, 0, 9], unicast, 0, Payload::Udp);
        assert_eq!(ask(&on, 1, mcast), None, "multicast is not forwarded as unicast");

        // Fragmentation Needed: a candidate only with DF and oversize.
        let fnd = Config {
            flags: Config::default().flags | FLAG_ROUTER_FRAG_NEEDED,
            ..Config::default()
        };
        let big = |oversize_df: bool, dst: [u8; 4], payload: Payload| {
            router_error_v4(
                &DatagramV4 {
                    eth_dst: &unicast,
                    src: &[192, 0, 2, 2],
                    dst: &dst,
                    frag_offset: 0,
                    payload,
                },
                64,
                oversize_df,
                &fnd,
                &addrs,
            )
        };
        assert_eq!(
            big(true, [198, 51, 100, 2], Payload::Other),
            Some(Ok(())),
            "TCP with DF, too big"
        );
        assert_eq!(
            big(false, [198, 51, 100, 2], Payload::Other),
            None,
            "fits, or may be fragmented"
        );
        assert_eq!(big(true, [192, 0, 2, 1], Payload::Other), None, "ours: not forwarded");
        assert_eq!(
            big(true, [198, 51, 100, 2], Payload::Icmp(3)),
            Some(Err(Reason::SuppressedIcmpError))
        );
        assert_eq!(
            router_error_v4(
                &DatagramV4 {
                    eth_dst: &unicast,
                    src: &[192, 0, 2, 2],
                    dst: &[198, 51, 100, 2],
                    frag_offset: 0,
                    payload: Payload::Udp,
                },
                1,
                true,
                &on,
                &addrs,
            ),
            Some(Ok(())),
            "TTL 1 with only time_exceeded on"
        );
    }

    /// Linux's `inet_select_addr` with a destination: the address in its
    /// subnet, else the primary (first) one.
    #[test]
    fn inbound_source_picks_the_subnet_s_address() {
        let mut a = AddrSet::default();
        assert_eq!(inbound_source_v4(&a, &[192, 0, 2, 2]), None, "no address");
        a.push_v4([203, 0, 113, 1]);
        a.set_v4_mask([203, 0, 113, 1], [255, 255, 255, 0]);
        a.push_v4([192, 0, 2, 1]);
        a.set_v4_mask([192, 0, 2, 1], [255, 255, 255, 0]);
        assert_eq!(inbound_source_v4(&a, &[192, 0, 2, 2]), Some([192, 0, 2, 1]));
        assert_eq!(
            inbound_source_v4(&a, &[198, 51, 100, 9]),
            Some([203, 0, 113, 1]),
            "else the first"
        );
    }

    /// Linux's `icmp6_send` with no preferred source on the route back:
    /// `ipv6_dev_get_saddr` on the inbound interface — the address of the
    /// destination's scope sharing the longest prefix with it.
    #[test]
    fn inbound_source_v6_picks_the_closest_address_of_the_same_scope() {
        let v6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
        let mut a = AddrSet::default();
        assert_eq!(inbound_source_v6(&a, &v6("2001:db8:9::2")), None, "no address");
        a.push_v6(v6("fe80::1"));
        assert_eq!(
            inbound_source_v6(&a, &v6("2001:db8:9::2")),
            None,
            "a link-local address is not a source toward a global one"
        );
        a.push_v6(v6("2001:db8:1::1"));
        a.push_v6(v6("2001:db8:9::1"));
        a.push_v6(v6("2001:db8:9::77"));
        assert_eq!(
            inbound_source_v6(&a, &v6("2001:db8:9::2")),
            Some(v6("2001:db8:9::1")),
            "same /64, first"
        );
        assert_eq!(
            inbound_source_v6(&a, &v6("2001:db8:5::2")),
            Some(v6("2001:db8:1::1")),
            "else the first closest"
        );
        assert_eq!(
            inbound_source_v6(&a, &v6("fe80::9")),
            Some(v6("fe80::1")),
            "link-local to link-local"
        );
    }

    #[test]
    fn time_exceeded_v6_cases() {
        let ours = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let peer = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let far = [0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let mut addrs = AddrSet::default();
        addrs.push_v6(ours);
        let on = Config {
            flags: Config::default().flags | FLAG_ROUTER_TIME_EXCEEDED,
            ..Config::default()
        };
        let mac = [2, 0, 0, 0, 0, 9];
        let ask = |src: [u8; 16], dst: [u8; 16], hop: u8, payload: Payload| {
            router_error_v6(
                &DatagramV6 {
                    eth_dst: &mac,
                    src: &src,
                    dst: &dst,
                    frag_offset: 0,
                    payload,
                },
                hop,
                false,
                &on,
                &addrs,
            )
        };
        assert_eq!(ask(peer, far, 1, Payload::Udp), Some(Ok(())), "hop limit 1 in transit");
        assert_eq!(ask(peer, far, 2, Payload::Udp), None, "forwarded");
        assert_eq!(ask(peer, ours, 1, Payload::Udp), None, "ours");
        let mut group = far;
        group[0] = 0xff;
        assert_eq!(ask(peer, group, 1, Payload::Udp), None, "multicast");
        assert_eq!(
            ask(peer, far, 1, Payload::Icmp(1)),
            Some(Err(Reason::SuppressedIcmpError))
        );
        assert_eq!(ask(peer, far, 1, Payload::Icmp(128)), Some(Ok(())), "traceroute -6 -I");
        assert_eq!(
            ask([0; 16], far, 1, Payload::Udp),
            Some(Err(Reason::SuppressedBadSource))
        );
    }
}
