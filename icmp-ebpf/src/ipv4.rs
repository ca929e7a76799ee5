//! IPv4: validate the header, hand echo requests to the decision, rewrite.

use icmp_common::{
    AddrSet, Config,
    checksum::{fold, sum_words_ipv4_header},
    counters::{Family, Reason},
    echo::{EchoV4, Verdict, decide_v4},
};

use crate::{
    count,
    maps::ADDRS,
    parse::{Cursor, EthHdr, IPPROTO_ICMP, IcmpHdr, Ipv4Hdr},
    rewrite,
};

const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;

#[inline(always)]
pub fn handle(cur: &mut Cursor, eth: &mut EthHdr, cfg: &Config) -> Reason {
    let Some(ip) = cur.next::<Ipv4Hdr>() else {
        return Reason::Malformed;
    };
    if ip.version_ihl >> 4 != 4 {
        return Reason::Malformed;
    }
    let ihl = ((ip.version_ihl & 0x0f) as usize) * 4;
    let tot_len = u16::from_be_bytes(ip.tot_len) as usize;
    // The frame may carry link-layer padding after the datagram, never less.
    if ihl < size_of::<Ipv4Hdr>() || tot_len < ihl || tot_len > cur.remaining() + size_of::<Ipv4Hdr>()
    {
        return Reason::Malformed;
    }
    if ip.proto != IPPROTO_ICMP {
        return Reason::NotIcmp;
    }
    if ihl != size_of::<Ipv4Hdr>() {
        return Reason::IpOptions;
    }
    // The kernel drops a header with a bad checksum; so do we (by passing it
    // on). Checking 20 bytes also makes the incremental update below exact.
    // SAFETY: `ip` points at a whole, bounds-checked 20-byte header.
    let header = unsafe { &*(ip as *const Ipv4Hdr as *const [u8; 20]) };
    if fold(sum_words_ipv4_header(header)) != 0xffff {
        return Reason::Malformed;
    }
    // Fragments (MF set or offset ≠ 0) are the kernel's to reassemble.
    if u16::from_be_bytes(ip.frag_off) & 0x3fff != 0 {
        return Reason::Fragment;
    }
    if tot_len < ihl + size_of::<IcmpHdr>() {
        return Reason::Malformed;
    }
    let Some(icmp) = cur.next::<IcmpHdr>() else {
        return Reason::Malformed;
    };
    count::received(Family::V4, icmp.kind);
    if icmp.kind != ICMP_ECHO_REQUEST {
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
    ip: &mut Ipv4Hdr,
    icmp: &mut IcmpHdr,
    cfg: &Config,
    addrs: &AddrSet,
) -> Reason {
    let facts = EchoV4 {
        eth_dst: &eth.dst,
        src: &ip.src,
        dst: &ip.dst,
    };
    match decide_v4(&facts, cfg, addrs) {
        Verdict::Pass(reason) => reason,
        Verdict::Answer => {
            rewrite::swap_macs(eth);
            rewrite::echo_reply_v4(ip, icmp, cfg.ttl, ICMP_ECHO_REPLY);
            count::sent(Family::V4, ICMP_ECHO_REPLY);
            Reason::EchoAnswered
        }
    }
}
