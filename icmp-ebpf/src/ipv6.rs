//! IPv6: validate the header, hand echo requests to the decision, rewrite.

use icmp_common::{
    AddrSet, Config,
    counters::{Family, Reason},
    echo::{EchoV6, Verdict, decide_v6},
};

use crate::{
    count,
    maps::ADDRS,
    parse::{Cursor, EthHdr, IPPROTO_ICMPV6, IcmpHdr, Ipv6Hdr},
    rewrite,
};

const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;

/// Next-header values of extension headers (RFC 8200 §4, plus ESP/AH and the
/// mobility/HIP/shim6 headers) that may stand before the ICMPv6 header.
#[inline(always)]
const fn is_extension_header(next: u8) -> bool {
    matches!(next, 0 | 43 | 50 | 51 | 60 | 135 | 139 | 140)
}

const IPPROTO_FRAGMENT: u8 = 44;

#[inline(always)]
pub fn handle(cur: &mut Cursor, eth: &mut EthHdr, cfg: &Config) -> Reason {
    let Some(ip) = cur.next::<Ipv6Hdr>() else {
        return Reason::Malformed;
    };
    if ip.version_tc_flow[0] >> 4 != 6 {
        return Reason::Malformed;
    }
    let payload_len = u16::from_be_bytes(ip.payload_len) as usize;
    if payload_len > cur.remaining() {
        return Reason::Malformed;
    }
    match ip.next_header {
        IPPROTO_ICMPV6 => {}
        IPPROTO_FRAGMENT => return Reason::Fragment,
        n if is_extension_header(n) => return Reason::IpOptions,
        _ => return Reason::NotIcmp,
    }
    if payload_len < size_of::<IcmpHdr>() {
        return Reason::Malformed;
    }
    let Some(icmp) = cur.next::<IcmpHdr>() else {
        return Reason::Malformed;
    };
    count::received(Family::V6, icmp.kind);
    if icmp.kind != ICMPV6_ECHO_REQUEST {
        return Reason::NotEchoRequest;
    }
    let Some(addrs) = ADDRS.get(0) else {
        return Reason::Disabled;
    };
    decide_and_answer(eth, ip, icmp, cfg, addrs)
}

#[inline(always)]
fn decide_and_answer(
    eth: &mut EthHdr,
    ip: &mut Ipv6Hdr,
    icmp: &mut IcmpHdr,
    cfg: &Config,
    addrs: &AddrSet,
) -> Reason {
    let facts = EchoV6 {
        eth_dst: &eth.dst,
        src: &ip.src,
        dst: &ip.dst,
    };
    match decide_v6(&facts, cfg, addrs) {
        Verdict::Pass(reason) => reason,
        Verdict::Answer => {
            rewrite::swap_macs(eth);
            rewrite::echo_reply_v6(ip, icmp, cfg.hop_limit, ICMPV6_ECHO_REPLY);
            count::sent(Family::V6, ICMPV6_ECHO_REPLY);
            Reason::EchoAnswered
        }
    }
}
