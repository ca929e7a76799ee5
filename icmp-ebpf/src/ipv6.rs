//! IPv6: validate the header, then echo (ICMPv6) or Port Unreachable (UDP).

use aya_ebpf::{maps::lpm_trie, programs::XdpContext};
use icmp_common::{
    AddrSet, Config,
    config::{FLAG_PROTO_UNREACH, FLAG_ROUTER_FRAG_NEEDED, FLAG_ROUTER_TIME_EXCEEDED, FLAG_SHADOW},
    counters::Hot,
    echo::{EchoV6, Verdict, decide_v6},
    reason::{Family, Reason},
};

use crate::{
    count,
    maps::{self, ADDRS, ANSWER_PREFIXES_V6},
    parse::{Cursor, EthHdr, IPPROTO_ICMPV6, IPPROTO_UDP, IcmpHdr, Ipv6Hdr},
    protocol, ratelimit, rewrite,
    udp::{self, Layout},
};

const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
const IPPROTO_FRAGMENT: u8 = 44;

/// Next-header values of extension headers (RFC 8200 §4, plus ESP/AH and the
/// mobility/HIP/shim6 headers) that may stand before the upper layer.
#[inline(always)]
const fn is_extension_header(next: u8) -> bool {
    matches!(next, 0 | 43 | 50 | 51 | 60 | 135 | 139 | 140)
}

/// An extension header or a Fragment header: what `handle` classifies
/// itself (the fast pass-through in `main` must leave these to it).
#[inline(always)]
pub const fn is_extension_or_fragment(next: u8) -> bool {
    next == IPPROTO_FRAGMENT || is_extension_header(next)
}

/// The 8-byte Fragment header (RFC 8200 §4.5).
#[repr(C)]
struct FragHdr {
    next_header: u8,
    _reserved: u8,
    offset_flags: [u8; 2],
    _id: [u8; 4],
}

#[inline(always)]
pub fn handle(ctx: &XdpContext, cur: &mut Cursor, eth: &mut EthHdr, l2_len: usize, cfg: &Config) -> Reason {
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
    // A router's error, for any upper layer (two compares while off): Time
    // Exceeded for hop limit ≤ 1, Packet Too Big for datagrams longer than
    // the smallest MTU on the host.
    let oversize = cfg.has(FLAG_ROUTER_FRAG_NEEDED) && {
        let gate = maps::frag_gate() as usize;
        gate != 0 && size_of::<Ipv6Hdr>() + payload_len > gate
    };
    // In BPF global functions, as for IPv4.
    if (ip.hop_limit <= 1 && cfg.has(FLAG_ROUTER_TIME_EXCEEDED)) || oversize {
        let (l2, len) = (l2_len as u64, (size_of::<Ipv6Hdr>() + payload_len) as u64);
        let r = crate::router::icmpxdp_router_check_v6(ctx.ctx, l2, len, oversize as u64);
        if r >= crate::router::GO && r != crate::router::NOT_ROUTER {
            let suppressed = r - crate::router::GO;
            return Reason::from_index(crate::router::icmpxdp_router_error_v6(ctx.ctx, l2, len, suppressed));
        }
        if r != crate::router::NOT_ROUTER {
            return Reason::from_index(r);
        }
    }
    let mut at = Layout {
        l2_len,
        l4: cur.pos,
        datagram_len: size_of::<Ipv6Hdr>() + payload_len,
        ip_header_len: size_of::<Ipv6Hdr>(),
        end: cur.end(),
    };
    match ip.next_header {
        IPPROTO_ICMPV6 => {}
        IPPROTO_UDP => return udp::v6(ctx, eth, ip, &at, None, cfg),
        IPPROTO_FRAGMENT => {
            // The Fragment header must lie inside the payload the IPv6 header
            // declares, not merely inside the frame (link-layer padding).
            if payload_len < size_of::<FragHdr>() {
                return Reason::Malformed;
            }
            let Some(fh) = cur.next::<FragHdr>() else {
                return Reason::Malformed;
            };
            if fh.next_header != IPPROTO_UDP {
                return Reason::Fragment;
            }
            at.l4 = cur.pos;
            let offset = u16::from_be_bytes(fh.offset_flags) >> 3;
            return udp::v6(ctx, eth, ip, &at, Some(offset), cfg);
        }
        n if is_extension_header(n) => return Reason::IpOptions,
        n if cfg.has(FLAG_PROTO_UNREACH) && maps::protocol_closed(1, n) => {
            return protocol::v6(ctx, eth, ip, l2_len, at.datagram_len);
        }
        _ => return Reason::OtherProtocol,
    }
    if payload_len < size_of::<IcmpHdr>() {
        count::in_error(Family::V6);
        return Reason::Malformed;
    }
    let Some(icmp) = cur.next::<IcmpHdr>() else {
        count::in_error(Family::V6);
        return Reason::Malformed;
    };
    let kind = icmp.kind;
    let reason = if kind != ICMPV6_ECHO_REQUEST {
        Reason::NotEchoRequest
    } else if let Some(addrs) = ADDRS.get(0) {
        answer_echo(eth, ip, icmp, cfg, addrs)
    } else {
        Reason::Disabled
    };
    // An echo answered in place was counted as received in its hot word
    // (`count::hot`); every other ICMP message is counted here.
    if !(reason == Reason::EchoAnswered && !cfg.has(FLAG_SHADOW)) {
        count::received(Family::V6, kind);
    }
    reason
}

#[inline(always)]
fn answer_echo(eth: &mut EthHdr, ip: &mut Ipv6Hdr, icmp: &mut IcmpHdr, cfg: &Config, addrs: &AddrSet) -> Reason {
    let facts = EchoV6 {
        eth_dst: &eth.dst,
        src: &ip.src,
        dst: &ip.dst,
    };
    let in_prefixes = || ANSWER_PREFIXES_V6.get(lpm_trie::Key::new(128, *facts.dst)).is_some();
    match decide_v6(&facts, cfg, addrs, in_prefixes) {
        Verdict::Pass(reason) => reason,
        Verdict::Answer => {
            if let Err(scope) = ratelimit::inbound_v6(cfg, &ip.src, ICMPV6_ECHO_REQUEST)
                .and_then(|()| ratelimit::outgoing_v6(cfg, &ip.src, ICMPV6_ECHO_REPLY))
            {
                return scope.reason();
            }
            let reply = maps::echo_reply_type(ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY);
            if cfg.has(FLAG_SHADOW) {
                count::sent(Family::V6, reply);
            } else {
                rewrite::swap_macs(eth);
                rewrite::echo_reply_v6(ip, icmp, cfg.hop_limit, reply);
                // Received, sent, verdict and action in one word.
                count::hot(Hot::EchoV6);
            }
            Reason::EchoAnswered
        }
    }
}
