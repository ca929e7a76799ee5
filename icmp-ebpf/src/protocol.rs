//! Protocol Unreachable: a datagram to one of our addresses of a protocol
//! nothing here handles (the loader marks those closed in
//! `CLOSED_PROTOCOLS`: neither open by config nor bound by a raw socket).
//! The same rules as Port Unreachable decide (`icmp_common::unreachable`);
//! the errors are built by the same code with another type and code.

use aya_ebpf::programs::XdpContext;
use icmp_common::{
    Config,
    reason::Reason,
    unreachable::{
        DatagramV4, DatagramV6, Payload, error_source_v4, error_source_v6, suppress_v4, suppress_v6, target_v4,
        target_v6,
    },
};

use crate::{
    maps::ADDRS,
    parse::{EthHdr, Ipv4Hdr, Ipv6Hdr},
    unreachable,
};

/// IPv4: Destination Unreachable, Protocol Unreachable (3/2).
#[inline(always)]
pub fn v4(
    ctx: &XdpContext,
    eth: &EthHdr,
    ip: &Ipv4Hdr,
    l2_len: usize,
    datagram_len: usize,
    ihl: usize,
    cfg: &Config,
) -> Reason {
    let Some(addrs) = ADDRS.get(0) else {
        return Reason::Disabled;
    };
    let frag = u16::from_be_bytes(ip.frag_off);
    let d = DatagramV4 {
        eth_dst: &eth.dst,
        src: &ip.src,
        dst: &ip.dst,
        frag_offset: frag & 0x1fff,
        payload: Payload::Other,
    };
    if let Err(r) = target_v4(&d, frag & 0x2000 != 0, addrs) {
        return r;
    }
    if let Some(r) = suppress_v4(&d, cfg, addrs) {
        return r;
    }
    if let Err(r) = error_source_v4(&ip.dst, addrs) {
        return r;
    }
    unreachable::verdict(unreachable::icmpxdp_protocol_unreachable_v4(
        ctx.ctx,
        l2_len as u64,
        datagram_len as u64,
        ihl as u64,
    ))
}

/// IPv6: Parameter Problem, unrecognized Next Header (4/1, pointer 6).
#[inline(always)]
pub fn v6(ctx: &XdpContext, eth: &EthHdr, ip: &Ipv6Hdr, l2_len: usize, datagram_len: usize) -> Reason {
    let Some(addrs) = ADDRS.get(0) else {
        return Reason::Disabled;
    };
    let d = DatagramV6 {
        eth_dst: &eth.dst,
        src: &ip.src,
        dst: &ip.dst,
        frag_offset: 0,
        payload: Payload::Other,
    };
    if let Err(r) = target_v6(&d, false, addrs) {
        return r;
    }
    if let Some(r) = suppress_v6(&d) {
        return r;
    }
    if let Err(r) = error_source_v6(&ip.dst) {
        return r;
    }
    unreachable::verdict(unreachable::icmpxdp_protocol_unreachable_v6(
        ctx.ctx,
        l2_len as u64,
        datagram_len as u64,
    ))
}
