//! IPv4: validate the header, then echo (ICMP) or Port Unreachable (UDP).

use aya_ebpf::{maps::lpm_trie, programs::XdpContext};
use icmp_common::{
    AddrSet, Config,
    checksum::fold64,
    config::{
        FLAG_PROTO_UNREACH, FLAG_ROUTER_FRAG_NEEDED, FLAG_ROUTER_TIME_EXCEEDED, FLAG_SHADOW, FLAG_TYPE_POLICY, type_in,
    },
    counters::Hot,
    echo::{EchoV4, Verdict, address_mask_answer, decide_timestamp, decide_v4},
    reason::{Family, Reason},
};

use crate::{
    address_mask, count, csum,
    maps::{self, ADDRS, ANSWER_PREFIXES_V4},
    parse::{Cursor, EthHdr, IPPROTO_ICMP, IPPROTO_UDP, IcmpHdr, Ipv4Hdr},
    protocol, query_reply, ratelimit, rewrite, timestamp,
    udp::{self, Layout},
};

const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_TIMESTAMP_REQUEST: u8 = 13;
const ICMP_TIMESTAMP_REPLY: u8 = 14;
const ICMP_ADDRESS_MASK_REQUEST: u8 = 17;
const ICMP_ADDRESS_MASK_REPLY: u8 = 18;

#[inline(always)]
pub fn handle(ctx: &XdpContext, cur: &mut Cursor, eth: &mut EthHdr, l2_len: usize, cfg: &Config) -> Reason {
    let l3 = cur.pos;
    let Some(ip) = cur.next::<Ipv4Hdr>() else {
        return Reason::Malformed;
    };
    if ip.version_ihl >> 4 != 4 {
        return Reason::Malformed;
    }
    let ihl = ((ip.version_ihl & 0x0f) as usize) * 4;
    let tot_len = u16::from_be_bytes(ip.tot_len) as usize;
    // The frame may carry link-layer padding after the datagram, never less.
    if ihl < size_of::<Ipv4Hdr>() || tot_len < ihl || l3 + tot_len > cur.end() {
        return Reason::Malformed;
    }
    // A router's error, for any protocol (two compares while off): Time
    // Exceeded for TTL ≤ 1, Fragmentation Needed for DF datagrams longer
    // than the smallest MTU on the host.
    // The gate map is read only with the feature on (the config is at hand).
    let oversize_df = cfg.has(FLAG_ROUTER_FRAG_NEEDED) && u16::from_be_bytes(ip.frag_off) & 0x4000 != 0 && {
        let gate = maps::frag_gate() as usize;
        gate != 0 && tot_len > gate
    };
    // In BPF global functions, verified once on their own: the checks
    // (which leave the frame, and so `ip`, as it is) and the builder.
    if (ip.ttl <= 1 && cfg.has(FLAG_ROUTER_TIME_EXCEEDED)) || oversize_df {
        let (l2, len, ihl) = (l2_len as u64, tot_len as u64, ihl as u64);
        let r = crate::router::icmpxdp_router_check_v4(ctx.ctx, l2, len, ihl, oversize_df as u64);
        if r >= crate::router::GO && r != crate::router::NOT_ROUTER {
            let suppressed = r - crate::router::GO;
            return Reason::from_index(crate::router::icmpxdp_router_error_v4(
                ctx.ctx, l2, len, ihl, suppressed,
            ));
        }
        if r != crate::router::NOT_ROUTER {
            return Reason::from_index(r);
        }
    }
    if ip.proto != IPPROTO_ICMP && ip.proto != IPPROTO_UDP {
        if cfg.has(FLAG_PROTO_UNREACH) && maps::protocol_closed(0, ip.proto) {
            if fold64(header_sum(ctx, ip, l3, ihl)) != 0xffff {
                return Reason::Malformed;
            }
            return protocol::v4(ctx, eth, ip, l2_len, tot_len, ihl, cfg);
        }
        return Reason::OtherProtocol;
    }
    // The kernel drops a header with a bad checksum; so do we (by passing it
    // on). A valid header also makes the echo's incremental update exact.
    if fold64(header_sum(ctx, ip, l3, ihl)) != 0xffff {
        return Reason::Malformed;
    }
    if ip.proto == IPPROTO_UDP {
        let at = Layout {
            l2_len,
            l4: l3 + ihl,
            datagram_len: tot_len,
            ip_header_len: ihl,
            end: cur.end(),
        };
        return udp::v4(ctx, eth, ip, &at, cfg);
    }
    if ihl != size_of::<Ipv4Hdr>() {
        return Reason::IpOptions;
    }
    // Fragments (MF set or offset ≠ 0) are the kernel's to reassemble.
    if u16::from_be_bytes(ip.frag_off) & 0x3fff != 0 {
        return Reason::Fragment;
    }
    if tot_len < ihl + size_of::<IcmpHdr>() {
        count::in_error(Family::V4);
        return Reason::Malformed;
    }
    let Some(icmp) = cur.next::<IcmpHdr>() else {
        count::in_error(Family::V4);
        return Reason::Malformed;
    };
    let kind = icmp.kind;
    let reason = (|| {
        let Some(addrs) = ADDRS.get(0) else {
            return Reason::Disabled;
        };
        if cfg.has(FLAG_TYPE_POLICY) && type_in(&cfg.drop_types_v4, icmp.kind) && addrs.has_v4(&ip.dst) {
            return Reason::PolicyDropped;
        }
        match icmp.kind {
            ICMP_ECHO_REQUEST => answer_echo(eth, ip, icmp, cfg, addrs),
            ICMP_TIMESTAMP_REQUEST => {
                let facts = EchoV4 {
                    eth_dst: &eth.dst,
                    src: &ip.src,
                    dst: &ip.dst,
                };
                match decide_timestamp(&facts, cfg, addrs) {
                    Verdict::Pass(reason) => reason,
                    Verdict::Answer => {
                        if let Some(r) = query_reply::limit_or_shadow_v4(
                            cfg,
                            &ip.src,
                            ICMP_TIMESTAMP_REPLY,
                            Reason::TimestampAnswered,
                        ) {
                            return r;
                        }
                        Reason::from_index(timestamp::icmpxdp_timestamp_reply(
                            ctx.ctx,
                            l2_len as u64,
                            (tot_len - ihl - size_of::<IcmpHdr>()) as u64,
                        ))
                    }
                }
            }
            ICMP_ADDRESS_MASK_REQUEST => {
                let facts = EchoV4 {
                    eth_dst: &eth.dst,
                    src: &ip.src,
                    dst: &ip.dst,
                };
                match address_mask_answer(&facts, cfg, addrs) {
                    Err(reason) => reason,
                    Ok(index) => {
                        if tot_len < ihl + 12 {
                            count::in_error(Family::V4);
                            return Reason::Malformed;
                        }
                        if let Some(r) = query_reply::limit_or_shadow_v4(
                            cfg,
                            &ip.src,
                            ICMP_ADDRESS_MASK_REPLY,
                            Reason::AddressMaskAnswered,
                        ) {
                            return r;
                        }
                        Reason::from_index(address_mask::icmpxdp_address_mask_reply(
                            ctx.ctx,
                            l2_len as u64,
                            index as u64,
                        ))
                    }
                }
            }
            _ => Reason::NotEchoRequest,
        }
    })();
    // An echo answered in place was counted as received in its hot word
    // (`count::hot`); every other ICMP message is counted here.
    if !(reason == Reason::EchoAnswered && !cfg.has(FLAG_SHADOW)) {
        count::received(Family::V4, kind);
    }
    reason
}

/// One's complement sum of the header (unfolded); 0 if options run past
/// the frame. The 20-byte header without options — nearly every datagram —
/// is summed from the reference the cursor already bounds-checked, five
/// 32-bit loads inline; only a header with options goes through the
/// bounds-checked byte loop.
#[inline(always)]
fn header_sum(ctx: &XdpContext, ip: &Ipv4Hdr, l3: usize, ihl: usize) -> u64 {
    if ihl == size_of::<Ipv4Hdr>() {
        // SAFETY: `ip` is a 20-byte header inside the frame.
        let w: [u32; 5] = unsafe { core::ptr::read_unaligned((ip as *const Ipv4Hdr).cast()) };
        w.iter().map(|&x| u64::from(x)).sum()
    } else {
        csum::sum_bytes::<60>(ctx, l3, ihl).unwrap_or(0)
    }
}

#[inline(always)]
fn answer_echo(eth: &mut EthHdr, ip: &mut Ipv4Hdr, icmp: &mut IcmpHdr, cfg: &Config, addrs: &AddrSet) -> Reason {
    let facts = EchoV4 {
        eth_dst: &eth.dst,
        src: &ip.src,
        dst: &ip.dst,
    };
    let in_prefixes = || ANSWER_PREFIXES_V4.get(lpm_trie::Key::new(32, *facts.dst)).is_some();
    match decide_v4(&facts, cfg, addrs, in_prefixes) {
        Verdict::Pass(reason) => reason,
        Verdict::Answer => {
            if let Err(scope) = ratelimit::inbound_v4(cfg, &ip.src, ICMP_ECHO_REQUEST)
                .and_then(|()| ratelimit::outgoing_v4(cfg, &ip.src, ICMP_ECHO_REPLY))
            {
                return scope.reason();
            }
            let reply = maps::echo_reply_type(ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY);
            if cfg.has(FLAG_SHADOW) {
                count::sent(Family::V4, reply);
            } else {
                rewrite::swap_macs(eth);
                rewrite::echo_reply_v4(ip, icmp, cfg.ttl, reply);
                // Received, sent, verdict and action in one word.
                count::hot(Hot::EchoV4);
            }
            Reason::EchoAnswered
        }
    }
}
