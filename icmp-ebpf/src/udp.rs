//! UDP: is the port closed, and if so, may we say so? Decisions come from
//! `icmp_common::unreachable`; this module gathers the facts.

use aya_ebpf::{
    bindings::{
        BPF_F_CURRENT_NETNS, bpf_sock_tuple, bpf_sock_tuple__bindgen_ty_1__bindgen_ty_1,
        bpf_sock_tuple__bindgen_ty_1__bindgen_ty_2,
    },
    helpers::{bpf_sk_lookup_udp, bpf_sk_release},
    programs::XdpContext,
};
use icmp_common::{
    AddrSet, Config,
    config::{FLAG_UNREACH_V4, FLAG_UNREACH_V6, PORT_WORDS, port_slot},
    ratelimit::Scope,
    reason::{Family, Reason},
    unreachable::{
        DatagramV4, DatagramV6, Payload, PortClass, classify_port, error_source_v4, error_source_v6, suppress_v4,
        suppress_v6, target_v4, target_v6,
    },
};

use crate::{
    count,
    maps::{ADDRS, PORTS},
    parse::{EthHdr, Ipv4Hdr, Ipv6Hdr},
    ratelimit, refusals, unreachable,
};

#[repr(C)]
pub struct UdpHdr {
    pub sport: [u8; 2],
    pub dport: [u8; 2],
    pub len: [u8; 2],
    pub check: [u8; 2],
}

/// Where the datagram sits in the frame.
pub struct Layout {
    /// Bytes of Ethernet + VLAN headers.
    pub l2_len: usize,
    /// Packet address of the UDP header.
    pub l4: usize,
    /// The IP datagram's length (header included).
    pub datagram_len: usize,
    /// IP header length (IPv4 options included; 40 for IPv6).
    pub ip_header_len: usize,
    pub end: usize,
}

/// The UDP header, if the frame and the IP length hold a valid one.
#[inline(always)]
fn udp_header(at: &Layout) -> Option<&'static UdpHdr> {
    if at.l4 + size_of::<UdpHdr>() > at.end {
        return None;
    }
    // SAFETY: bounds checked above; UdpHdr is byte-aligned.
    let udp = unsafe { &*(at.l4 as *const UdpHdr) };
    let len = u16::from_be_bytes(udp.len) as usize;
    (len >= size_of::<UdpHdr>() && len <= at.datagram_len - at.ip_header_len).then_some(udp)
}

/// Open or closed, by the static lists first, then (policy `socket`) by
/// whether a UDP socket would receive the datagram.
#[inline(always)]
fn port_is_closed(dport: [u8; 2], cfg: &Config, ask: impl FnOnce() -> bool) -> bool {
    let (slot, bit) = port_slot(u16::from_be_bytes(dport));
    let open = PORTS.get(slot).copied().unwrap_or(0);
    let closed = PORTS.get(slot + PORT_WORDS).copied().unwrap_or(0);
    match classify_port(open, closed, bit, cfg) {
        PortClass::Open => false,
        PortClass::Closed => true,
        PortClass::AskSockets => !ask(),
    }
}

/// True when `bpf_sk_lookup_udp` finds a socket for this tuple in the
/// interface's network namespace — exactly the kernel's own delivery decision.
///
/// `tuple` is the family's own member of `struct bpf_sock_tuple`, built
/// field by field: the helper reads only `size_of::<T>()` bytes, and a
/// zeroed 36-byte union costs a call to a `memset` subprogram per datagram.
#[inline(always)]
fn socket_exists<T>(ctx: &XdpContext, tuple: &mut T) -> bool {
    // SAFETY: `T` is the ipv4 or ipv6 member of the union, which starts at
    // offset 0, and the helper reads exactly its size; a returned socket
    // must be released, which we do at once.
    unsafe {
        let sk = bpf_sk_lookup_udp(
            ctx.ctx as *mut _,
            (tuple as *mut T).cast::<bpf_sock_tuple>(),
            size_of::<T>() as u32,
            BPF_F_CURRENT_NETNS as u64,
            0,
        );
        if sk.is_null() {
            return false;
        }
        bpf_sk_release(sk as *mut _);
    }
    true
}

#[inline(always)]
pub fn v4(ctx: &XdpContext, eth: &EthHdr, ip: &Ipv4Hdr, at: &Layout, cfg: &Config) -> Reason {
    if !cfg.has(FLAG_UNREACH_V4) {
        return Reason::Disabled;
    }
    let Some(addrs): Option<&AddrSet> = ADDRS.get(0) else {
        return Reason::Disabled;
    };
    let frag = u16::from_be_bytes(ip.frag_off);
    let d = DatagramV4 {
        eth_dst: &eth.dst,
        src: &ip.src,
        dst: &ip.dst,
        frag_offset: frag & 0x1fff,
        payload: Payload::Udp,
    };
    if let Err(r) = target_v4(&d, frag & 0x2000 != 0, addrs) {
        return r;
    }
    let Some(udp) = udp_header(at) else {
        return Reason::Malformed;
    };
    // A tuple refused moments ago, to a unicast MAC (the only frames a
    // refusal is remembered from), is refused again at once: no socket
    // lookup, no bucket (see `refusals`).
    let tuple = refusals::v4(&ip.src, &ip.dst, udp.sport, udp.dport);
    if eth.dst[0] & 1 == 0 && refusals::possible(cfg, Family::V4) && refusals::refusing(&tuple) {
        count::rate_limited(Scope::PerSource, Family::V4, 3);
        return Reason::RateLimitedPerSource;
    }
    let closed = port_is_closed(udp.dport, cfg, || {
        let mut t = bpf_sock_tuple__bindgen_ty_1__bindgen_ty_1 {
            saddr: u32::from_ne_bytes(ip.src),
            daddr: u32::from_ne_bytes(ip.dst),
            sport: u16::from_ne_bytes(udp.sport),
            dport: u16::from_ne_bytes(udp.dport),
        };
        socket_exists(ctx, &mut t)
    });
    if !closed {
        return Reason::PortOpen;
    }
    if let Some(r) = suppress_v4(&d, cfg, addrs) {
        return r;
    }
    if let Err(r) = error_source_v4(&ip.dst, addrs) {
        return r;
    }
    let answer = unreachable::icmpxdp_port_unreachable_v4(
        ctx.ctx,
        at.l2_len as u64,
        at.datagram_len as u64,
        at.ip_header_len as u64,
    );
    if answer & ratelimit::REMEMBER != 0 {
        refusals::remember(&tuple);
    }
    unreachable::verdict(answer)
}

#[inline(always)]
pub fn v6(ctx: &XdpContext, eth: &EthHdr, ip: &Ipv6Hdr, at: &Layout, frag: Option<u16>, cfg: &Config) -> Reason {
    if !cfg.has(FLAG_UNREACH_V6) {
        return Reason::Disabled;
    }
    let Some(addrs): Option<&AddrSet> = ADDRS.get(0) else {
        return Reason::Disabled;
    };
    let d = DatagramV6 {
        eth_dst: &eth.dst,
        src: &ip.src,
        dst: &ip.dst,
        frag_offset: frag.unwrap_or(0),
        payload: Payload::Udp,
    };
    if let Err(r) = target_v6(&d, frag.is_some(), addrs) {
        return r;
    }
    let Some(udp) = udp_header(at) else {
        return Reason::Malformed;
    };
    // A tuple refused moments ago, to a unicast MAC (the only frames a
    // refusal is remembered from), is refused again at once: no socket
    // lookup, no bucket (see `refusals`).
    let tuple = refusals::v6(&ip.src, &ip.dst, udp.sport, udp.dport);
    if eth.dst[0] & 1 == 0 && refusals::possible(cfg, Family::V6) && refusals::refusing(&tuple) {
        count::rate_limited(Scope::PerSource, Family::V6, 1);
        return Reason::RateLimitedPerSource;
    }
    let closed = port_is_closed(udp.dport, cfg, || {
        let words = |a: &[u8; 16]| {
            core::array::from_fn(|i| u32::from_ne_bytes([a[4 * i], a[4 * i + 1], a[4 * i + 2], a[4 * i + 3]]))
        };
        let mut t = bpf_sock_tuple__bindgen_ty_1__bindgen_ty_2 {
            saddr: words(&ip.src),
            daddr: words(&ip.dst),
            sport: u16::from_ne_bytes(udp.sport),
            dport: u16::from_ne_bytes(udp.dport),
        };
        socket_exists(ctx, &mut t)
    });
    if !closed {
        return Reason::PortOpen;
    }
    if let Some(r) = suppress_v6(&d) {
        return r;
    }
    if let Err(r) = error_source_v6(&ip.dst) {
        return r;
    }
    let answer = unreachable::icmpxdp_port_unreachable_v6(ctx.ctx, at.l2_len as u64, at.datagram_len as u64);
    if answer & ratelimit::REMEMBER != 0 {
        refusals::remember(&tuple);
    }
    unreachable::verdict(answer)
}
