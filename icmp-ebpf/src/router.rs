//! Router-side errors (`[router]`): Time Exceeded for a datagram this host
//! would forward with TTL ≤ 1, as Linux's `ip_forward` sends it — asked of
//! the kernel's own FIB (`bpf_fib_lookup`), so forwarding decisions stay the
//! kernel's. The error leaves from the address and MACs of the route back
//! to the source: by XDP_TX when that route leaves by the ingress, by
//! `bpf_redirect` to its interface otherwise (`*_redirected`); when its
//! neighbour is unknown, or a VLAN-tagged frame's route back leaves by
//! another interface (the tag is the ingress VLAN's), the frame goes to the
//! kernel (`no_route_back`).

use aya_ebpf::{
    bindings::{
        BPF_FIB_LKUP_RET_FRAG_NEEDED, BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS, BPF_FIB_LOOKUP_SRC, xdp_md,
    },
    helpers::{bpf_fib_lookup, bpf_redirect},
    programs::XdpContext,
};
use icmp_common::{
    Config,
    addr::{v4_may_send_from, v6_may_send_from},
    checksum::fold64,
    config::{FLAG_ROUTER_FRAG_NEEDED, FLAG_ROUTER_INBOUND_IFADDR, FLAG_ROUTER_TIME_EXCEEDED, FLAG_SHADOW},
    reason::{Family, Reason},
    unreachable::quote_len,
    unreachable::{DatagramV4, DatagramV6, Payload},
};

use crate::{
    count, csum,
    frame::{get, put},
    maps::ADDRS,
    ratelimit,
    unreachable::{Error, send_v4, send_v6},
};

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const ICMPV6_TIME_EXCEEDED: u8 = 3;
const MAX_QUOTE_V6: usize = Config::MAX_V6_ERROR_SIZE as usize - 48;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_FRAG_NEEDED: u8 = 4;
const ICMPV6_PACKET_TOO_BIG: u8 = 2;
const MAX_QUOTE_V4: usize = Config::MAX_V4_ERROR_SIZE as usize - 28;

/// `struct bpf_fib_lookup` (uapi `bpf.h`, 64 bytes; 72 here) as nine 8-byte words
/// (little-endian, as bpfel is), written and read only whole: the verifier
/// refuses misaligned stack access, and a struct of narrow fields gets split
/// by the compiler into pieces stored at odd offsets (a 4-byte store at
/// offset 2 for `sport`/`dport`).
#[repr(C, align(8))]
struct Fib([u64; 9]);

impl Fib {
    /// family, l4_protocol, tot_len, ifindex, tos, ipv4_src, ipv4_dst (the
    /// addresses as in the packet, read as native words).
    fn v4(family: u8, proto: u8, tot_len: u16, ifindex: u32, tos: u8, src: u32, dst: u32) -> Self {
        let mut w = [0u64; 9];
        // family @0, l4_protocol @1, sport @2, dport @4, tot_len @6.
        w[0] = family as u64 | (proto as u64) << 8 | (tot_len as u64) << 48;
        // ifindex @8, tos @12.
        w[1] = ifindex as u64 | (tos as u64) << 32;
        // ipv4_src @16, ipv4_dst @32.
        w[2] = src as u64;
        w[4] = dst as u64;
        Self(w)
    }

    /// family, l4_protocol, tot_len, ifindex, ipv6_src @16, ipv6_dst @32
    /// (flowinfo 0).
    fn v6(proto: u8, tot_len: u16, ifindex: u32, src: [u64; 2], dst: [u64; 2]) -> Self {
        let mut w = [0u64; 9];
        w[0] = AF_INET6 as u64 | (proto as u64) << 8 | (tot_len as u64) << 48;
        w[1] = ifindex as u64;
        w[2] = src[0];
        w[3] = src[1];
        w[4] = dst[0];
        w[5] = dst[1];
        Self(w)
    }

    fn ipv6_src(&self) -> [u64; 2] {
        [self.0[2], self.0[3]]
    }

    /// The MTU the FIB reports with BPF_FIB_LKUP_RET_FRAG_NEEDED
    /// (`mtu_result`, in the union with `tot_len` at offset 6).
    fn mtu(&self) -> u16 {
        (self.0[0] >> 48) as u16
    }

    fn ifindex(&self) -> u32 {
        self.0[1] as u32
    }

    fn ipv4_src(&self) -> u32 {
        self.0[2] as u32
    }

    /// (smac @52, dmac @58): in a union with the `mark` input (6.x uapi).
    fn macs(&self) -> ([u8; 6], [u8; 6]) {
        let a = self.0[6].to_le_bytes();
        let b = self.0[7].to_le_bytes();
        (
            [a[4], a[5], a[6], a[7], b[0], b[1]],
            [b[2], b[3], b[4], b[5], b[6], b[7]],
        )
    }
}

/// `data_end`, read so that the compiler keeps every check against it.
#[inline(always)]
fn data_end(ctx: *mut xdp_md) -> usize {
    // SAFETY: a field of the program's own context.
    unsafe { core::ptr::read_volatile(&(*ctx).data_end) as usize }
}

#[inline(always)]
fn lookup(ctx: *mut xdp_md, p: &mut Fib, flags: u32) -> i64 {
    // SAFETY: helper on our own context with the uapi layout (64 bytes).
    unsafe { bpf_fib_lookup(ctx as *mut _, p.0.as_mut_ptr().cast(), 64, flags) }
}

/// The interface the error leaves by, from the route-back lookup's result
/// `r`: the route back's (XDP_TX when it is the ingress, `bpf_redirect`
/// otherwise, decided in [`finish`]). An unknown neighbour (the kernel
/// resolves it) or a tagged ingress whose route back leaves by another
/// interface (the frame's VLAN tag belongs to the ingress) is
/// `no_route_back`.
///
/// One branch, on a value computed without compares: a branch on `l2_len`
/// or on the interface here would split the verifier's states for the
/// whole build that follows (measured: 705k instructions instead of 547k).
#[inline(always)]
fn egress(r: u32, fib: &Fib, ingress: u32, l2_len: usize) -> Result<u32, Reason> {
    let ifindex = fib.ifindex();
    // 1 when x != 0, without a compare: the compiler lowers `!=` to a
    // branch, and each branch here would be a verifier state of its own.
    let nonzero = |x: u64| {
        // SAFETY: a read of a local.
        let x = unsafe { core::ptr::read_volatile(&x) };
        (x | x.wrapping_neg()) >> 63
    };
    let refused = nonzero((r ^ BPF_FIB_LKUP_RET_SUCCESS) as u64)
        | (nonzero(l2_len as u64 ^ 14) & nonzero((ifindex ^ ingress) as u64));
    // SAFETY: a read of a local.
    if unsafe { core::ptr::read_volatile(&refused) } != 0 {
        Err(Reason::NoRouteBack)
    } else {
        Ok(ifindex)
    }
}

/// The verdict of a router error `sent` out of another interface.
#[inline(always)]
fn redirected(sent: Reason) -> Reason {
    match sent {
        Reason::TimeExceededSent => Reason::TimeExceededRedirected,
        _ => Reason::FragNeededRedirected,
    }
}

/// `suppressed` when no suppression rule applies.
pub const NOT_SUPPRESSED: u64 = 0xff;

/// What [`icmpxdp_router_check_v4`] / [`icmpxdp_router_check_v6`] return
/// for a frame that is not a router case (addressed to this host, or the
/// feature off): the host-side rules follow.
pub const NOT_ROUTER: u64 = u64::MAX;

/// Added to the `suppressed` argument for the builder by the checks: a
/// router case, go on. Below it, a final [`Reason`] slot (malformed).
pub const GO: u64 = 1 << 32;

/// The router side's checks for the IPv4 datagram after the `l2_len`-byte
/// link header, a candidate (TTL ≤ 1 with `router.time_exceeded`, or
/// `oversize_df`): the rules (`icmp_common::router`) and the header
/// checksum. A BPF global function that never changes the frame, so the
/// caller's packet pointers stay valid when it answers [`NOT_ROUTER`]; the
/// verifier walks it once. Returns [`NOT_ROUTER`], a final [`Reason`] slot,
/// or [`GO`] + the `suppressed` argument for [`icmpxdp_router_error_v4`].
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn icmpxdp_router_check_v4(
    ctx: *mut xdp_md,
    l2_len: u64,
    datagram_len: u64,
    ihl: u64,
    oversize_df: u64,
) -> u64 {
    let xdp = XdpContext::new(ctx);
    let (Some(cfg), Some(addrs)) = (crate::maps::config(), ADDRS.get(0)) else {
        return NOT_ROUTER;
    };
    let (l2, len, ihl_b) = (l2_len as usize, datagram_len as usize, ihl as usize);
    if !(14..=22).contains(&l2) || !(20..=60).contains(&ihl_b) || len < ihl_b {
        return Reason::Malformed as u64;
    }
    let (data, l3) = (xdp.data(), xdp.data() + l2);
    // Each pointer checked on its own, against its own volatile read of
    // `data_end`: the verifier does not carry a bound on `l3` back to
    // `data`, and the compiler would drop a check it proves redundant.
    if data + 14 > data_end(ctx) || l3 + 20 > data_end(ctx) {
        return Reason::Malformed as u64;
    }
    // SAFETY: data..data+6 and l3..l3+20 are inside the frame (checked).
    let (eth_dst, ttl, frag, proto, src, dst) = unsafe {
        (
            get::<[u8; 6]>(data),
            get::<u8>(l3 + 8),
            u16::from_be_bytes(get::<[u8; 2]>(l3 + 6)),
            get::<u8>(l3 + 9),
            get::<[u8; 4]>(l3 + 12),
            get::<[u8; 4]>(l3 + 16),
        )
    };
    // The ICMP type, for the no-error-about-an-error rule.
    let payload = if proto == 1 {
        let p = l3 + ihl_b;
        // The whole ICMP header (a shorter one is malformed anyway; and a
        // one-byte check would be rewritten as `p >= end`, which the
        // verifier cannot use).
        if len < ihl_b + 8 || p + 8 > data_end(ctx) {
            return Reason::Malformed as u64;
        }
        // SAFETY: p is inside the frame (checked above).
        Payload::Icmp(unsafe { get::<u8>(p) })
    } else {
        Payload::Other
    };
    let d = DatagramV4 {
        eth_dst: &eth_dst,
        src: &src,
        dst: &dst,
        frag_offset: frag & 0x1fff,
        payload,
    };
    let suppressed = match icmp_common::router::router_error_v4(&d, ttl, oversize_df != 0, cfg, addrs) {
        None => return NOT_ROUTER,
        Some(Err(r)) => r as u64,
        Some(Ok(())) => NOT_SUPPRESSED,
    };
    // The kernel drops a header with a bad checksum; so do we (by passing).
    match csum::sum_bytes::<60>(&xdp, l3, ihl_b) {
        Some(sum) if fold64(sum) == 0xffff => GO + suppressed,
        _ => Reason::Malformed as u64,
    }
}

/// [`icmpxdp_router_check_v4`] for IPv6: a candidate by hop limit or
/// `oversize`. A datagram behind a Fragment header is left to the kernel.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn icmpxdp_router_check_v6(ctx: *mut xdp_md, l2_len: u64, datagram_len: u64, oversize: u64) -> u64 {
    let xdp = XdpContext::new(ctx);
    let (Some(cfg), Some(addrs)) = (crate::maps::config(), ADDRS.get(0)) else {
        return NOT_ROUTER;
    };
    let (l2, len) = (l2_len as usize, datagram_len as usize);
    if !(14..=22).contains(&l2) || len < 40 {
        return Reason::Malformed as u64;
    }
    let (data, l3) = (xdp.data(), xdp.data() + l2);
    if data + 14 > data_end(ctx) || l3 + 40 > data_end(ctx) {
        return Reason::Malformed as u64;
    }
    // SAFETY: data..data+6 and l3..l3+40 are inside the frame (checked).
    let (eth_dst, next, hop_limit, src, dst) = unsafe {
        (
            get::<[u8; 6]>(data),
            get::<u8>(l3 + 6),
            get::<u8>(l3 + 7),
            get::<[u8; 16]>(l3 + 8),
            get::<[u8; 16]>(l3 + 24),
        )
    };
    if next == 44 {
        return NOT_ROUTER;
    }
    let payload = if next == 58 {
        let p = l3 + 40;
        if len < 48 || p + 8 > data_end(ctx) {
            return Reason::Malformed as u64;
        }
        // SAFETY: p is inside the frame (checked above).
        Payload::Icmp(unsafe { get::<u8>(p) })
    } else {
        Payload::Other
    };
    let d = DatagramV6 {
        eth_dst: &eth_dst,
        src: &src,
        dst: &dst,
        frag_offset: 0,
        payload,
    };
    let suppressed = match icmp_common::router::router_error_v6(&d, hop_limit, oversize != 0, cfg, addrs) {
        None => return NOT_ROUTER,
        Some(Err(r)) => r as u64,
        Some(Ok(())) => NOT_SUPPRESSED,
    };
    GO + suppressed
}

/// The router error for the IPv4 datagram after the `l2_len`-byte link
/// header, not addressed to this host: would it be forwarded? Then, as
/// Linux's `ip_forward` checks them, Time Exceeded (11/0) for TTL ≤ 1
/// (`router.time_exceeded`), else Fragmentation Needed (3/4 with the
/// next-hop MTU) when the FIB says it exceeds the egress MTU and DF is set
/// (`router.frag_needed`). Suppressed (the caller's verdict, `suppressed`,
/// or [`NOT_SUPPRESSED`])? Route back? Rate limit (not for Fragmentation
/// Needed: Linux exempts it, `icmpv4_mask_allow`), quote, build.
/// A BPF global function (see `icmpxdp_port_unreachable_v4`). Returns the
/// [`Reason`] slot.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn icmpxdp_router_error_v4(
    ctx: *mut xdp_md,
    l2_len: u64,
    datagram_len: u64,
    ihl: u64,
    suppressed: u64,
) -> u64 {
    let xdp = XdpContext::new(ctx);
    let Some(cfg) = crate::maps::config() else {
        return Reason::Disabled as u64;
    };
    let (l2_len, datagram_len, ihl) = (l2_len as usize, datagram_len as usize, ihl as usize);
    if !(14..=22).contains(&l2_len) || !(20..=60).contains(&ihl) || datagram_len > 0xffff {
        return Reason::Malformed as u64;
    }
    let l3 = xdp.data() + l2_len;
    if l3 + 20 > xdp.data_end() {
        return Reason::Malformed as u64;
    }
    // SAFETY: l3..l3+20 is inside the frame (checked above).
    let (tos, ttl, df, proto, src, dst) = unsafe {
        (
            *((l3 + 1) as *const u8),
            *((l3 + 8) as *const u8),
            *((l3 + 6) as *const u8) & 0x40 != 0,
            *((l3 + 9) as *const u8),
            core::ptr::read_unaligned((l3 + 12) as *const [u8; 4]),
            core::ptr::read_unaligned((l3 + 16) as *const [u8; 4]),
        )
    };
    // SAFETY: a field of our own context.
    let ingress = unsafe { (*ctx).ingress_ifindex };
    // Would the kernel forward it? (A local, broadcast or unroutable
    // destination, or forwarding off on the ingress: not ours to answer.)
    let (src_word, dst_word) = (u32::from_ne_bytes(src), u32::from_ne_bytes(dst));
    // One struct for both lookups: a BPF call chain shares 512 bytes of stack.
    let mut fib = Fib::v4(AF_INET, proto, datagram_len as u16, ingress, tos, src_word, dst_word);
    let r = lookup(ctx, &mut fib, 0) as u32;
    if r != BPF_FIB_LKUP_RET_SUCCESS && r != BPF_FIB_LKUP_RET_NO_NEIGH && r != BPF_FIB_LKUP_RET_FRAG_NEEDED {
        return Reason::NotOurs as u64;
    }
    let (kind, code, rest, sent) = if ttl <= 1 && cfg.has(FLAG_ROUTER_TIME_EXCEEDED) {
        (ICMP_TIME_EXCEEDED, 0, [0; 4], Reason::TimeExceededSent)
    } else if r == BPF_FIB_LKUP_RET_FRAG_NEEDED && df && cfg.has(FLAG_ROUTER_FRAG_NEEDED) {
        let mtu = fib.mtu().to_be_bytes();
        (
            ICMP_DEST_UNREACH,
            ICMP_FRAG_NEEDED,
            [0, 0, mtu[0], mtu[1]],
            Reason::FragNeededSent,
        )
    } else {
        // Forwarded as it is: the kernel's.
        return Reason::NotOurs as u64;
    };
    if suppressed != NOT_SUPPRESSED {
        return Reason::from_index(suppressed) as u64;
    }
    // The route back: its egress, source address and MACs.
    fib = Fib::v4(AF_INET, 1, 0, ingress, tos, 0, src_word);
    let r = lookup(ctx, &mut fib, BPF_FIB_LOOKUP_SRC) as u32;
    let out = match egress(r, &fib, ingress, l2_len) {
        Ok(out) => out,
        Err(reason) => return reason as u64,
    };
    let mut from = fib.ipv4_src();
    if cfg.has(FLAG_ROUTER_INBOUND_IFADDR)
        && let Some(addrs) = ADDRS.get(0)
        && let Some(inbound) = icmp_common::router::inbound_source_v4(addrs, &src)
    {
        from = u32::from_ne_bytes(inbound);
    }
    if !v4_may_send_from(&from.to_ne_bytes()) {
        return Reason::UnsendableSource as u64;
    }
    let (smac, dmac) = fib.macs();
    let error_size = (cfg.v4_error_size as usize).min(Config::MAX_V4_ERROR_SIZE as usize);
    let quote = quote_len(datagram_len, ihl, error_size, 28);
    let Some(sum) = csum::sum_bytes::<MAX_QUOTE_V4>(&xdp, l3, quote) else {
        return Reason::Malformed as u64;
    };
    if kind == ICMP_TIME_EXCEEDED
        && let Err(scope) = ratelimit::outgoing_v4(cfg, &src, kind)
    {
        return scope.reason() as u64;
    }
    if cfg.has(FLAG_SHADOW) {
        count::sent(Family::V4, kind);
        return if out == ingress { sent } else { redirected(sent) } as u64;
    }
    let built = send_v4(
        &xdp,
        l2_len,
        (tos & 0x1e) | 0xc0,
        cfg.ttl,
        [kind, code],
        rest,
        Some(from),
        quote,
        sum,
    );
    finish(&xdp, built, (smac, dmac), (out, ingress), Family::V4, kind, sent)
}

/// The router error for the IPv6 datagram after the link header:
/// [`icmpxdp_router_error_v4`] for IPv6 (Linux's `ip6_forward`): Time
/// Exceeded (3/0) for hop limit ≤ 1, else Packet Too Big (2/0 with the
/// MTU) when the FIB says it exceeds the egress MTU (a router never
/// fragments IPv6); from the source address the route back selects.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn icmpxdp_router_error_v6(ctx: *mut xdp_md, l2_len: u64, datagram_len: u64, suppressed: u64) -> u64 {
    let xdp = XdpContext::new(ctx);
    let Some(cfg) = crate::maps::config() else {
        return Reason::Disabled as u64;
    };
    let (l2_len, datagram_len) = (l2_len as usize, datagram_len as usize);
    if !(14..=22).contains(&l2_len) || !(40..=40 + 0xffff).contains(&datagram_len) {
        return Reason::Malformed as u64;
    }
    let l3 = xdp.data() + l2_len;
    if l3 + 40 > xdp.data_end() {
        return Reason::Malformed as u64;
    }
    // SAFETY: l3..l3+40 is inside the frame (checked above).
    let (next, hop_limit, src, dst) = unsafe {
        (
            *((l3 + 6) as *const u8),
            *((l3 + 7) as *const u8),
            [get::<u64>(l3 + 8), get::<u64>(l3 + 16)],
            [get::<u64>(l3 + 24), get::<u64>(l3 + 32)],
        )
    };
    // SAFETY: a field of our own context.
    let ingress = unsafe { (*ctx).ingress_ifindex };
    let tot_len = datagram_len.min(0xffff) as u16;
    // One struct for both lookups: a BPF call chain shares 512 bytes of stack.
    let mut fib = Fib::v6(next, tot_len, ingress, src, dst);
    let r = lookup(ctx, &mut fib, 0) as u32;
    if r != BPF_FIB_LKUP_RET_SUCCESS && r != BPF_FIB_LKUP_RET_NO_NEIGH && r != BPF_FIB_LKUP_RET_FRAG_NEEDED {
        return Reason::NotOurs as u64;
    }
    let (kind, pointer, sent) = if hop_limit <= 1 && cfg.has(FLAG_ROUTER_TIME_EXCEEDED) {
        (ICMPV6_TIME_EXCEEDED, 0, Reason::TimeExceededSent)
    } else if r == BPF_FIB_LKUP_RET_FRAG_NEEDED && cfg.has(FLAG_ROUTER_FRAG_NEEDED) {
        (ICMPV6_PACKET_TOO_BIG, fib.mtu() as u32, Reason::FragNeededSent)
    } else {
        return Reason::NotOurs as u64;
    };
    if suppressed != NOT_SUPPRESSED {
        return Reason::from_index(suppressed) as u64;
    }
    fib = Fib::v6(58, 0, ingress, [0, 0], src);
    let r = lookup(ctx, &mut fib, BPF_FIB_LOOKUP_SRC) as u32;
    let out = match egress(r, &fib, ingress, l2_len) {
        Ok(out) => out,
        Err(reason) => return reason as u64,
    };
    // SAFETY: two u64 are sixteen bytes, in memory order (both ways).
    let src_bytes = unsafe { core::mem::transmute::<[u64; 2], [u8; 16]>(src) };
    // Linux's `icmp6_send` takes the source from the inbound interface
    // (`ipv6_dev_get_saddr` on it), not from the route back's.
    let i = icmpxdp_inbound_source_v6(u64::from_be(src[0]));
    let from = match ADDRS.get(0) {
        Some(addrs) if i < icmp_common::config::MAX_V6_ADDRS as u64 => {
            // SAFETY: sixteen bytes as two u64, in memory order.
            unsafe { core::mem::transmute::<[u8; 16], [u64; 2]>(addrs.v6[i as usize]) }
        }
        _ => fib.ipv6_src(),
    };
    // SAFETY: as above.
    let from_bytes = unsafe { core::mem::transmute::<[u64; 2], [u8; 16]>(from) };
    if !v6_may_send_from(&from_bytes) {
        return Reason::UnsendableSource as u64;
    }
    let (smac, dmac) = fib.macs();
    let error_size = (cfg.v6_error_size as usize).min(Config::MAX_V6_ERROR_SIZE as usize);
    let quote = quote_len(datagram_len, 40, error_size, 48);
    let Some(sum) = csum::sum_bytes::<MAX_QUOTE_V6>(&xdp, l3, quote) else {
        return Reason::Malformed as u64;
    };
    // Packet Too Big is outside Linux's default ratemask (0-1,3-127).
    if let Err(scope) = ratelimit::outgoing_v6(cfg, &src_bytes, kind) {
        return scope.reason() as u64;
    }
    if cfg.has(FLAG_SHADOW) {
        count::sent(Family::V6, kind);
        return if out == ingress { sent } else { redirected(sent) } as u64;
    }
    let built = send_v6(&xdp, l2_len, cfg.hop_limit, [kind, 0], pointer, Some(from), quote, sum);
    finish(&xdp, built, (smac, dmac), (out, ingress), Family::V6, kind, sent)
}

/// The index in the address set of the inbound interface's address an
/// ICMPv6 router error to `to_hi` (the destination's first 64 bits, as a
/// number) leaves from (`icmp_common::router::inbound_index_v6`), or
/// `u64::MAX`. A BPF global function: its loop over the addresses is
/// verified once, and the builder goes on from one state, not one per
/// loop exit.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn icmpxdp_inbound_source_v6(to_hi: u64) -> u64 {
    ADDRS
        .get(0)
        .and_then(|addrs| icmp_common::router::inbound_index_v6(addrs, to_hi))
        .map_or(u64::MAX, |i| i as u64)
}

/// After a build: the route back's MACs on the frame, its interface as the
/// redirect target when it is not the ingress (`*_redirected`), and the
/// count.
#[inline(always)]
fn finish(
    xdp: &XdpContext,
    built: Result<(), Error>,
    (smac, dmac): ([u8; 6], [u8; 6]),
    (out, ingress): (u32, u32),
    family: Family,
    kind: u8,
    sent: Reason,
) -> u64 {
    match built {
        Ok(()) => {
            let (data, end) = (xdp.data(), xdp.data_end());
            if data + 12 > end {
                return Reason::Malformed as u64;
            }
            // SAFETY: data..data+12 is inside the frame (checked).
            unsafe {
                put(data, dmac);
                put(data + 6, smac);
            }
            count::sent(family, kind);
            if out == ingress {
                return sent as u64;
            }
            // Returns XDP_REDIRECT (flags 0 are valid); the program returns
            // it too, as the verdict's action.
            // SAFETY: a helper with scalar arguments.
            unsafe { bpf_redirect(out, 0) };
            redirected(sent) as u64
        }
        Err(Error::NoHeadroom) => Reason::NoHeadroom as u64,
        Err(Error::Bounds) => Reason::Malformed as u64,
    }
}
