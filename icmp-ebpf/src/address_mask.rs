//! ICMP Address Mask reply (RFC 950): type 18, the request's identifier and
//! sequence number, and the network mask of the answering address; from
//! that address, back to the requester, built in the request's frame. A
//! request may come in a link-layer broadcast frame, so the reply's source
//! MAC is the interface's own (from the address set), not the request's
//! destination MAC.

use aya_ebpf::{bindings::xdp_md, helpers::bpf_xdp_adjust_tail, programs::XdpContext};
use icmp_common::{
    checksum::fold,
    reason::{Family, Reason},
};

use crate::frame::{get, put, words};
use crate::{count, maps::ADDRS};

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
    // Exactly 20 + 12 bytes after the link header.
    let delta = (l2_len + 32) as i64 - (ctx.data_end() - ctx.data()) as i64;
    // SAFETY: helper call on our own context.
    if delta != 0 && unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta as i32) } != 0 {
        return Reason::NoHeadroom as u64;
    }
    // New packet pointers after the resize, each checked against its own
    // volatile read of data_end (see `timestamp.rs`).
    // SAFETY: reading fields of the program's own context.
    let (data, end_macs, end_headers) = unsafe {
        (
            core::ptr::read_volatile(&(*ctx.ctx).data) as usize,
            core::ptr::read_volatile(&(*ctx.ctx).data_end) as usize,
            core::ptr::read_volatile(&(*ctx.ctx).data_end) as usize,
        )
    };
    let h = data + l2_len;
    if data + 12 > end_macs || l2_len > 22 || h + 32 > end_headers {
        return Reason::Malformed as u64;
    }
    // SAFETY: data..data+12 and h..h+32 are inside the frame (checked).
    unsafe {
        let (dmac, smac) = (get::<[u8; 6]>(data), get::<[u8; 6]>(data + 6));
        put(data, smac);
        // The interface's MAC when known (a broadcast request), else the
        // address the request was sent to.
        put(data + 6, if mac == [0; 6] { dmac } else { mac });
        let first = [0x45u8, tos];
        let total = 32u16.to_be_bytes();
        let ttl_proto = [ttl, 1u8];
        let sum = u16::from_ne_bytes(first) as u32
            + u16::from_ne_bytes(total) as u32
            + u16::from_ne_bytes(id) as u32
            + u16::from_ne_bytes(ttl_proto) as u32
            + words(from)
            + words(to);
        let check = (!fold(sum)).to_ne_bytes();
        put(h, [first[0], first[1], total[0], total[1]]);
        put(h + 4, [id[0], id[1], 0, 0]);
        put(h + 8, [ttl_proto[0], ttl_proto[1], check[0], check[1]]);
        put(h + 12, from);
        put(h + 16, to);
        let icmp_sum = u16::from_ne_bytes([18, 0]) as u32 + words(ident_seq) + words(mask);
        let icmp_check = (!fold(icmp_sum)).to_ne_bytes();
        put(h + 20, [18u8, 0, icmp_check[0], icmp_check[1]]);
        put(h + 24, ident_seq);
        put(h + 28, mask);
    }
    count::sent(Family::V4, 18);
    Reason::AddressMaskAnswered as u64
}
