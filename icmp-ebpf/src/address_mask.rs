//! ICMP Address Mask reply (RFC 950): type 18, the request's identifier and
//! sequence number, and the network mask of the answering address; from
//! that address, back to the requester, built in the request's frame. A
//! request may come in a link-layer broadcast frame, so the reply's source
//! MAC is the interface's own (from the address set), not the request's
//! destination MAC.

use aya_ebpf::{bindings::xdp_md, programs::XdpContext};
use icmp_common::{
    checksum::fold,
    reason::{Family, Reason},
};

use crate::{
    count,
    frame::{get, put, words},
    maps::ADDRS,
    query_reply::{V4Reply, resize_and_write_v4},
};

/// Builds and counts the reply from address `index` of the address set to
/// the request after the `l2_len`-byte link header. A BPF global function:
/// verified once with scalar arguments, every pointer re-derived and
/// re-checked. Returns the [`Reason`] slot.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn icmpxdp_address_mask_reply(ctx: *mut xdp_md, l2_len: u64, index: u64) -> u64 {
    let ctx = XdpContext::new(ctx);
    let (Some(cfg), Some(addrs)) = (crate::maps::config(), ADDRS.get(0)) else {
        return Reason::Disabled as u64;
    };
    let l2_len = l2_len as usize;
    let i = index as usize;
    if !(14..=22).contains(&l2_len) || i >= addrs.v4.len() {
        return Reason::Malformed as u64;
    }
    let (from, mask, mac) = (addrs.v4[i], addrs.v4_masks[i], addrs.mac);
    let ttl = cfg.ttl;
    let h = ctx.data() + l2_len;
    // SAFETY: reading a field of the program's own context.
    let end = unsafe { core::ptr::read_volatile(&(*ctx.ctx).data_end) } as usize;
    if h + 28 > end {
        return Reason::Malformed as u64;
    }
    // SAFETY: h..h+28 (IPv4 header, ICMP header) is inside the frame.
    let (tos, id, to, ident_seq) = unsafe {
        (
            get::<u8>(h + 1),
            get::<[u8; 2]>(h + 4),
            get::<[u8; 4]>(h + 12),
            get::<[u8; 4]>(h + 24),
        )
    };
    // Exactly 20 + 12 bytes after the link header. The interface's MAC
    // when known (a broadcast request), else the address the request was
    // sent to.
    let reply = V4Reply {
        tos,
        id,
        ttl,
        from,
        to,
        src_mac: (mac != [0; 6]).then_some(mac),
    };
    let icmp = match resize_and_write_v4::<32>(&ctx, l2_len, &reply) {
        Ok(icmp) => icmp,
        Err(r) => return r as u64,
    };
    let icmp_sum = u16::from_ne_bytes([18, 0]) as u32 + words(ident_seq) + words(mask);
    let icmp_check = (!fold(icmp_sum)).to_ne_bytes();
    // SAFETY: icmp..icmp+12 is inside the frame (`resize_and_write_v4`).
    unsafe {
        put(icmp, [18u8, 0, icmp_check[0], icmp_check[1]]);
        put(icmp + 4, ident_seq);
        put(icmp + 8, mask);
    }
    count::sent(Family::V4, 18);
    Reason::AddressMaskAnswered as u64
}
