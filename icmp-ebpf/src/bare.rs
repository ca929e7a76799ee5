//! Bench-only baselines: the rewrite of each path and nothing else — no
//! config, no counters, no address set, no rules, no rate limit, Ethernet
//! without VLAN tags, a 28-byte (IPv4) / 48-byte (IPv6) quote. `icmpxdp
//! bench` measures the responder against these in the same run, so a
//! ratio says what the responder's checks and bookkeeping cost over the
//! physical minimum of the same work. Never attached by `run`.

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

use crate::{
    csum,
    parse::{Cursor, EthHdr, IcmpHdr, Ipv4Hdr, Ipv6Hdr},
    rewrite, unreachable,
};

#[xdp]
pub fn bare_echo4(ctx: XdpContext) -> u32 {
    let mut cur = Cursor::new(&ctx);
    let (Some(eth), Some(ip), Some(icmp)) = (cur.next::<EthHdr>(), cur.next::<Ipv4Hdr>(), cur.next::<IcmpHdr>()) else {
        return xdp_action::XDP_PASS;
    };
    rewrite::swap_macs(eth);
    rewrite::echo_reply_v4(ip, icmp, 64, 0);
    xdp_action::XDP_TX
}

#[xdp]
pub fn bare_echo6(ctx: XdpContext) -> u32 {
    let mut cur = Cursor::new(&ctx);
    let (Some(eth), Some(ip), Some(icmp)) = (cur.next::<EthHdr>(), cur.next::<Ipv6Hdr>(), cur.next::<IcmpHdr>()) else {
        return xdp_action::XDP_PASS;
    };
    rewrite::swap_macs(eth);
    rewrite::echo_reply_v6(ip, icmp, 64, 129);
    xdp_action::XDP_TX
}

#[xdp]
pub fn bare_unreach4(ctx: XdpContext) -> u32 {
    let Some(sum) = csum::sum_bytes::<28>(&ctx, ctx.data() + 14, 28) else {
        return xdp_action::XDP_PASS;
    };
    let tos = if ctx.data() + 16 <= ctx.data_end() {
        // SAFETY: inside the frame (checked).
        unsafe { *((ctx.data() + 15) as *const u8) }
    } else {
        return xdp_action::XDP_PASS;
    };
    match unreachable::send_v4(&ctx, 14, (tos & 0x1e) | 0xc0, 64, [3, 3], [0; 4], None, 28, sum) {
        Ok(()) => xdp_action::XDP_TX,
        Err(_) => xdp_action::XDP_PASS,
    }
}

#[xdp]
pub fn bare_unreach6(ctx: XdpContext) -> u32 {
    let Some(sum) = csum::sum_bytes::<48>(&ctx, ctx.data() + 14, 48) else {
        return xdp_action::XDP_PASS;
    };
    match unreachable::send_v6(&ctx, 14, 64, [1, 4], 0, None, 48, sum) {
        Ok(()) => xdp_action::XDP_TX,
        Err(_) => xdp_action::XDP_PASS,
    }
}
