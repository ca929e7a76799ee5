//! Whether to answer an echo or a timestamp request, given what the parser
//! found, and the timestamp a reply carries.
//!
//! The XDP program parses headers and hands the facts to these functions;
//! the rules live here so the host tests check exactly what the kernel runs.

use crate::{
    addr::{
        mac_is_group, v4_is_limited_broadcast, v4_is_multicast, v4_is_single_host_source, v4_may_send_from,
        v6_is_multicast, v6_is_single_host_source, v6_may_send_from,
    },
    config::{
        AddrSet, Config, FLAG_ANSWER_ANY_DST, FLAG_ANSWER_PREFIXES, FLAG_ECHO_V4, FLAG_ECHO_V6,
        FLAG_RESERVED_SOURCE_INVALID, FLAG_TIMESTAMP_ANSWER,
    },
    reason::Reason,
};

/// The outcome of a decision: answer it, or leave it to the kernel and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Answer,
    Pass(Reason),
}

/// IPv4 echo request facts.
pub struct EchoV4<'a> {
    pub eth_dst: &'a [u8; 6],
    pub src: &'a [u8; 4],
    pub dst: &'a [u8; 4],
}

/// IPv6 echo request facts.
pub struct EchoV6<'a> {
    pub eth_dst: &'a [u8; 6],
    pub src: &'a [u8; 16],
    pub dst: &'a [u8; 16],
}

/// Decides an IPv4 echo request. `in_answer_prefixes` says whether the
/// destination is in `echo.answer_prefixes`; it is asked only when the
/// destination is not one of ours and the prefixes are configured.
///
/// Broadcast and multicast destinations, link-layer group frames and odd
/// sources are left to the kernel, which answers (or not) by its own sysctls:
/// swapping addresses would otherwise send from a group address. Last, the
/// reply's source (the request's destination) must be one we may send from
/// ([`v4_may_send_from`]), whatever the config.
#[inline(always)]
pub fn decide_v4(p: &EchoV4<'_>, cfg: &Config, addrs: &AddrSet, in_answer_prefixes: impl FnOnce() -> bool) -> Verdict {
    if !cfg.has(FLAG_ECHO_V4) {
        return Verdict::Pass(Reason::Disabled);
    }
    query_v4(p, cfg, addrs, || {
        addrs.has_v4(p.dst) || cfg.has(FLAG_ANSWER_ANY_DST) || (cfg.has(FLAG_ANSWER_PREFIXES) && in_answer_prefixes())
    })
}

/// The rules an IPv4 query (echo, timestamp) is answered by, once its type
/// is on: no link-layer group frame, no broadcast or multicast destination,
/// a single-host source, a destination `ours` says is ours, and one we may
/// send from.
#[inline(always)]
fn query_v4(p: &EchoV4<'_>, cfg: &Config, addrs: &AddrSet, ours: impl FnOnce() -> bool) -> Verdict {
    if mac_is_group(p.eth_dst) {
        return Verdict::Pass(Reason::LinkBroadcast);
    }
    if v4_is_limited_broadcast(p.dst) || v4_is_multicast(p.dst) || addrs.is_v4_broadcast(p.dst) {
        return Verdict::Pass(Reason::BroadcastDestination);
    }
    if !v4_is_single_host_source(p.src, !cfg.has(FLAG_RESERVED_SOURCE_INVALID)) || addrs.is_v4_broadcast(p.src) {
        return Verdict::Pass(Reason::BadSource);
    }
    if !ours() {
        return Verdict::Pass(Reason::NotOurs);
    }
    if !v4_may_send_from(p.dst) {
        return Verdict::Pass(Reason::UnsendableSource);
    }
    Verdict::Answer
}

/// Decides an ICMP Timestamp request: the rules of [`decide_v4`], but only
/// for the host's own addresses (never `answer_any_destination` or the
/// answer prefixes: a timestamp is a statement about this host's clock).
/// With `timestamp.action` other than `answer` it is not ours to answer.
#[inline(always)]
pub fn decide_timestamp(p: &EchoV4<'_>, cfg: &Config, addrs: &AddrSet) -> Verdict {
    if !cfg.has(FLAG_TIMESTAMP_ANSWER) {
        return Verdict::Pass(Reason::NotEchoRequest);
    }
    query_v4(p, cfg, addrs, || addrs.has_v4(p.dst))
}

/// Which of the interface's IPv4 addresses answers an Address Mask request
/// (RFC 950, RFC 1122 §3.2.2.9), by its index in the address set: the one
/// asked (`dst` is ours), the one whose subnet's broadcast was asked, or —
/// asked by 255.255.255.255, as a diskless host does — the one whose subnet
/// holds the source. Requests come by broadcast, so link-layer and IP
/// broadcasts are not refused here; the source must still be a single host
/// (a reply to 0.0.0.0 would have to be broadcast; those go to the kernel).
#[inline(always)]
pub fn address_mask_answer(p: &EchoV4<'_>, cfg: &Config, addrs: &AddrSet) -> Result<usize, Reason> {
    if !cfg.has(crate::config::FLAG_ADDRESS_MASK_ANSWER) {
        return Err(Reason::NotEchoRequest);
    }
    if !v4_is_single_host_source(p.src, !cfg.has(FLAG_RESERVED_SOURCE_INVALID)) || addrs.is_v4_broadcast(p.src) {
        return Err(Reason::BadSource);
    }
    let word = |a: &[u8; 4]| u32::from_be_bytes(*a);
    let (src, dst) = (word(p.src), word(p.dst));
    let mut i = 0;
    while i < crate::config::MAX_V4_ADDRS {
        if i as u32 >= addrs.v4_len {
            break;
        }
        let (ours, mask) = (word(&addrs.v4[i]), word(&addrs.v4_masks[i]));
        // A zero mask is one the loader never read: no authority to answer.
        let asked = mask != 0
            && (dst == ours
                || (mask != u32::MAX && dst == ours | !mask)
                || (dst == u32::MAX && src & mask == ours & mask));
        if asked {
            if !v4_may_send_from(&addrs.v4[i]) {
                return Err(Reason::UnsendableSource);
            }
            return Ok(i);
        }
        i += 1;
    }
    Err(Reason::NotOurs)
}

/// Milliseconds since midnight UTC (RFC 792's timestamp), from the TAI
/// clock and TAI − UTC.
#[inline(always)]
pub const fn ms_since_midnight_utc(tai_ns: u64, tai_offset_ns: u64) -> u32 {
    ((tai_ns.wrapping_sub(tai_offset_ns) / 1_000_000) % 86_400_000) as u32
}

/// Decides an ICMPv6 echo request (same rules as [`decide_v4`]).
#[inline(always)]
pub fn decide_v6(p: &EchoV6<'_>, cfg: &Config, addrs: &AddrSet, in_answer_prefixes: impl FnOnce() -> bool) -> Verdict {
    if !cfg.has(FLAG_ECHO_V6) {
        return Verdict::Pass(Reason::Disabled);
    }
    if mac_is_group(p.eth_dst) {
        return Verdict::Pass(Reason::LinkBroadcast);
    }
    if v6_is_multicast(p.dst) {
        return Verdict::Pass(Reason::BroadcastDestination);
    }
    if !v6_is_single_host_source(p.src) {
        return Verdict::Pass(Reason::BadSource);
    }
    let ours =
        addrs.has_v6(p.dst) || cfg.has(FLAG_ANSWER_ANY_DST) || (cfg.has(FLAG_ANSWER_PREFIXES) && in_answer_prefixes());
    if !ours {
        return Verdict::Pass(Reason::NotOurs);
    }
    if !v6_may_send_from(p.dst) {
        return Verdict::Pass(Reason::UnsendableSource);
    }
    Verdict::Answer
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
    const OURS: [u8; 4] = [192, 0, 2, 1];
    const PEER: [u8; 4] = [192, 0, 2, 2];
    const BCAST: [u8; 4] = [192, 0, 2, 255];

    fn setup() -> (Config, AddrSet) {
        let mut a = AddrSet::default();
        a.push_v4(OURS);
        a.push_v4_broadcast(BCAST);
        a.push_v6(v6(1));
        (Config::default(), a)
    }

    fn v6(last: u8) -> [u8; 16] {
        let mut x = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        x[15] = last;
        x
    }

    fn v4(eth: [u8; 6], src: [u8; 4], dst: [u8; 4], cfg: &Config, a: &AddrSet) -> Verdict {
        decide_v4(
            &EchoV4 {
                eth_dst: &eth,
                src: &src,
                dst: &dst,
            },
            cfg,
            a,
            || false,
        )
    }

    #[test]
    fn v4_rules() {
        let (cfg, a) = setup();
        assert_eq!(v4(MAC, PEER, OURS, &cfg, &a), Verdict::Answer);
        assert_eq!(v4(MAC, PEER, [192, 0, 2, 9], &cfg, &a), Verdict::Pass(Reason::NotOurs));
        assert_eq!(
            v4([0xff; 6], PEER, OURS, &cfg, &a),
            Verdict::Pass(Reason::LinkBroadcast)
        );
        for dst in [[255; 4], BCAST, [224, 0, 0, 1], [239, 1, 2, 3]] {
            assert_eq!(
                v4(MAC, PEER, dst, &cfg, &a),
                Verdict::Pass(Reason::BroadcastDestination)
            );
        }
        for src in [[0, 0, 0, 0], [127, 0, 0, 1], [224, 0, 0, 5], [240, 0, 0, 1], BCAST] {
            assert_eq!(
                v4(MAC, src, OURS, &cfg, &a),
                Verdict::Pass(Reason::BadSource),
                "{src:?}"
            );
        }
        let any = Config {
            flags: cfg.flags | FLAG_ANSWER_ANY_DST,
            ..cfg
        };
        assert_eq!(v4(MAC, PEER, [198, 51, 100, 7], &any, &a), Verdict::Answer);
        // answer-any never makes a broadcast answerable
        assert_eq!(
            v4(MAC, PEER, BCAST, &any, &a),
            Verdict::Pass(Reason::BroadcastDestination)
        );
        // … nor a reply from an address that is not a single host (RFC 1122
        // §3.2.1.3; Linux drops such packets as martians).
        for dst in [
            [127, 0, 0, 1],
            [0, 0, 0, 0],
            [0, 1, 2, 3],
            [240, 0, 0, 1],
            [254, 1, 1, 1],
        ] {
            assert_eq!(
                v4(MAC, PEER, dst, &any, &a),
                Verdict::Pass(Reason::UnsendableSource),
                "{dst:?}"
            );
        }
        // Prefixes: asked only when configured and the destination is not ours.
        let prefixes = Config {
            flags: cfg.flags | FLAG_ANSWER_PREFIXES,
            ..cfg
        };
        let ask = |dst: [u8; 4], c: &Config, inside: bool| {
            let mut asked = false;
            let v = decide_v4(
                &EchoV4 {
                    eth_dst: &MAC,
                    src: &PEER,
                    dst: &dst,
                },
                c,
                &a,
                || {
                    asked = true;
                    inside
                },
            );
            (v, asked)
        };
        assert_eq!(ask([198, 51, 100, 7], &prefixes, true), (Verdict::Answer, true));
        assert_eq!(
            ask([198, 51, 100, 7], &prefixes, false),
            (Verdict::Pass(Reason::NotOurs), true)
        );
        assert_eq!(ask(OURS, &prefixes, false), (Verdict::Answer, false), "ours: no lookup");
        assert_eq!(
            ask([198, 51, 100, 7], &cfg, true),
            (Verdict::Pass(Reason::NotOurs), false),
            "flag off: no lookup"
        );
        assert_eq!(
            ask([127, 0, 0, 1], &prefixes, true),
            (Verdict::Pass(Reason::UnsendableSource), true)
        );
        let off = Config {
            flags: cfg.flags & !FLAG_ECHO_V4,
            ..cfg
        };
        assert_eq!(v4(MAC, PEER, OURS, &off, &a), Verdict::Pass(Reason::Disabled));
    }

    #[test]
    fn timestamp_rules_and_clock() {
        let (cfg, a) = setup();
        let on = Config {
            flags: cfg.flags | FLAG_TIMESTAMP_ANSWER | FLAG_ANSWER_ANY_DST,
            ..cfg
        };
        let t = |dst: [u8; 4], c: &Config| {
            decide_timestamp(
                &EchoV4 {
                    eth_dst: &MAC,
                    src: &PEER,
                    dst: &dst,
                },
                c,
                &a,
            )
        };
        assert_eq!(t(OURS, &cfg), Verdict::Pass(Reason::NotEchoRequest), "pass by default");
        assert_eq!(t(OURS, &on), Verdict::Answer);
        assert_eq!(t(BCAST, &on), Verdict::Pass(Reason::BroadcastDestination));
        assert_eq!(
            t([198, 51, 100, 7], &on),
            Verdict::Pass(Reason::NotOurs),
            "answer-any is for echo only"
        );
        // RFC 792: ms since midnight UT. 1970-01-02 00:00:01.500 UTC is
        // 86_401_500 ms after the epoch, so 1_500 ms past midnight; TAI ran
        // 37 s ahead.
        let tai_ns = (86_401_500 + 37_000) * 1_000_000;
        assert_eq!(ms_since_midnight_utc(tai_ns, 37_000_000_000), 1_500);
        assert_eq!(ms_since_midnight_utc(86_399_999 * 1_000_000, 0), 86_399_999);
        assert_eq!(ms_since_midnight_utc(86_400_000 * 1_000_000, 0), 0);
    }

    #[test]
    fn v6_rules() {
        let (cfg, a) = setup();
        let d = |eth: [u8; 6], src: [u8; 16], dst: [u8; 16]| {
            decide_v6(
                &EchoV6 {
                    eth_dst: &eth,
                    src: &src,
                    dst: &dst,
                },
                &cfg,
                &a,
                || false,
            )
        };
        assert_eq!(d(MAC, v6(2), v6(1)), Verdict::Answer);
        assert_eq!(d(MAC, v6(2), v6(3)), Verdict::Pass(Reason::NotOurs));
        assert_eq!(
            d([0x33, 0x33, 0, 0, 0, 1], v6(2), v6(1)),
            Verdict::Pass(Reason::LinkBroadcast)
        );
        let mut mc = [0u8; 16];
        mc[0] = 0xff;
        mc[1] = 0x02;
        mc[15] = 1;
        assert_eq!(d(MAC, v6(2), mc), Verdict::Pass(Reason::BroadcastDestination));
        let mut lo = [0u8; 16];
        lo[15] = 1;
        assert_eq!(d(MAC, lo, v6(1)), Verdict::Pass(Reason::BadSource));
        assert_eq!(d(MAC, [0; 16], v6(1)), Verdict::Pass(Reason::BadSource));
        assert_eq!(d(MAC, mc, v6(1)), Verdict::Pass(Reason::BadSource));
        let any = Config {
            flags: cfg.flags | FLAG_ANSWER_ANY_DST,
            ..cfg
        };
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[192, 0, 2, 1]);
        for dst in [lo, [0; 16], mapped] {
            assert_eq!(
                decide_v6(
                    &EchoV6 {
                        eth_dst: &MAC,
                        src: &v6(2),
                        dst: &dst,
                    },
                    &any,
                    &a,
                    || false,
                ),
                Verdict::Pass(Reason::UnsendableSource),
                "{dst:?}"
            );
        }
    }

    /// RFC 950 / RFC 1122 §3.2.2.9 cases, written from the RFC: which
    /// address answers (by index), or why none does.
    #[test]
    fn address_mask_requests() {
        let mut a = AddrSet::default();
        a.push_v4(OURS);
        a.set_v4_mask(OURS, [255, 255, 255, 0]);
        a.push_v4([10, 1, 0, 1]);
        a.set_v4_mask([10, 1, 0, 1], [255, 255, 0, 0]);
        a.push_v4([127, 0, 0, 1]);
        a.set_v4_mask([127, 0, 0, 1], [255, 0, 0, 0]);
        a.push_v4_broadcast(BCAST);
        let on = Config {
            flags: Config::default().flags | crate::config::FLAG_ADDRESS_MASK_ANSWER,
            ..Config::default()
        };
        let ask = |src: [u8; 4], dst: [u8; 4], cfg: &Config| {
            address_mask_answer(
                &EchoV4 {
                    eth_dst: &[0xff; 6],
                    src: &src,
                    dst: &dst,
                },
                cfg,
                &a,
            )
        };
        let all_ones = [255, 255, 255, 255];
        assert_eq!(ask(PEER, OURS, &on), Ok(0), "unicast to our address");
        assert_eq!(ask(PEER, [10, 1, 0, 1], &on), Ok(1), "our other address, any source");
        assert_eq!(ask(PEER, BCAST, &on), Ok(0), "our /24's broadcast");
        assert_eq!(ask(PEER, [10, 1, 255, 255], &on), Ok(1), "our /16's broadcast");
        assert_eq!(ask(PEER, all_ones, &on), Ok(0), "limited broadcast from the /24");
        assert_eq!(
            ask([10, 1, 9, 9], all_ones, &on),
            Ok(1),
            "limited broadcast from the /16"
        );
        assert_eq!(
            ask([203, 0, 113, 1], all_ones, &on),
            Err(Reason::NotOurs),
            "from no subnet of ours"
        );
        assert_eq!(ask(PEER, [198, 51, 100, 1], &on), Err(Reason::NotOurs));
        assert_eq!(
            ask([0, 0, 0, 0], all_ones, &on),
            Err(Reason::BadSource),
            "no address yet"
        );
        assert_eq!(ask(BCAST, OURS, &on), Err(Reason::BadSource), "from our broadcast");
        assert_eq!(ask([224, 0, 0, 5], OURS, &on), Err(Reason::BadSource), "from multicast");
        assert_eq!(
            ask(PEER, [127, 0, 0, 1], &on),
            Err(Reason::UnsendableSource),
            "never sent from loopback"
        );
        assert_eq!(
            ask(PEER, OURS, &Config::default()),
            Err(Reason::NotEchoRequest),
            "off by default"
        );
        let mut unknown = AddrSet::default();
        unknown.push_v4(OURS);
        let no_mask = address_mask_answer(
            &EchoV4 {
                eth_dst: &[0xff; 6],
                src: &PEER,
                dst: &[255, 255, 255, 255],
            },
            &on,
            &unknown,
        );
        assert_eq!(
            no_mask,
            Err(Reason::NotOurs),
            "an address whose mask is unknown never answers"
        );
    }
}
