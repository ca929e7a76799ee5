//! Building an ICMP error in the frame of the datagram it is about.
//!
//! The frame grows at the front by the new IP + ICMP headers
//! (`bpf_xdp_adjust_head`), the link-layer header moves to the new front with
//! its MACs swapped (VLAN tags kept), the new headers go in the gap, and the
//! original datagram stays where it was as the quote; `bpf_xdp_adjust_tail`
//! then cuts the frame after the quote. Nothing is copied but the L2 header.

use aya_ebpf::{
    helpers::{bpf_get_prandom_u32, bpf_xdp_adjust_head, bpf_xdp_adjust_tail},
    programs::XdpContext,
};
use icmp_common::checksum::{fold, fold64};

pub enum Error {
    /// `bpf_xdp_adjust_head` refused: the frame is unchanged.
    NoHeadroom,
    /// A bounds check failed after the frame was changed (not expected).
    Bounds,
}

pub struct ErrorV4 {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub tos: u8,
    pub ttl: u8,
    pub kind: u8,
    pub code: u8,
}

pub struct ErrorV6 {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub hop_limit: u8,
    pub kind: u8,
    pub code: u8,
}

/// Moves the `N`-byte link-layer header `by` bytes towards the front, swapping
/// source and destination MAC on the way.
#[inline(always)]
fn move_l2<const N: usize>(ctx: &XdpContext, by: usize) -> Result<(), Error> {
    let (data, end) = (ctx.data(), ctx.data_end());
    if data + by + N > end {
        return Err(Error::Bounds);
    }
    // SAFETY: both ranges are inside the frame (checked above) and do not
    // overlap (`by` ≥ 28 > N).
    unsafe {
        let mut l2: [u8; N] = core::ptr::read_unaligned((data + by) as *const [u8; N]);
        let mut i = 0;
        while i < 6 {
            l2.swap(i, i + 6);
            i += 1;
        }
        core::ptr::write_unaligned(data as *mut [u8; N], l2);
    }
    Ok(())
}

/// Grows the frame by `grow` bytes at the front and moves the L2 header.
#[inline(always)]
fn make_room(ctx: &XdpContext, l2_len: usize, grow: usize) -> Result<(), Error> {
    // SAFETY: helper call on our own context.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(grow as i32)) } != 0 {
        return Err(Error::NoHeadroom);
    }
    match l2_len {
        14 => move_l2::<14>(ctx, grow),
        18 => move_l2::<18>(ctx, grow),
        _ => move_l2::<22>(ctx, grow),
    }
}

/// Writes `hdr` after the L2 header and cuts the frame to `total` bytes.
#[inline(always)]
fn write_and_trim<const N: usize>(ctx: &XdpContext, l2_len: usize, hdr: &[u8; N], total: usize) -> Result<(), Error> {
    let (data, end) = (ctx.data(), ctx.data_end());
    if l2_len > 22 || data + l2_len + N > end {
        return Err(Error::Bounds);
    }
    // SAFETY: inside the frame, checked above.
    unsafe { core::ptr::write_unaligned((data + l2_len) as *mut [u8; N], *hdr) };
    let delta = total as i64 - (end - data) as i64;
    // SAFETY: helper call on our own context; only ever shrinks.
    if delta < 0 && unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta as i32) } != 0 {
        return Err(Error::Bounds);
    }
    Ok(())
}

/// IPv4 error: 20-byte header (no options, DF clear and a fresh ID as Linux
/// sends them) + 8-byte ICMP header + `quote` bytes whose sum is `quote_sum`.
#[inline(always)]
pub fn send_v4(ctx: &XdpContext, l2_len: usize, e: &ErrorV4, quote: usize, quote_sum: u64) -> Result<(), Error> {
    let tot_len = (28 + quote) as u16;
    // SAFETY: helper without arguments.
    let id = unsafe { bpf_get_prandom_u32() } as u16;
    let mut h = [0u8; 28];
    h[0] = 0x45;
    h[1] = e.tos;
    h[2..4].copy_from_slice(&tot_len.to_be_bytes());
    h[4..6].copy_from_slice(&id.to_ne_bytes());
    h[8] = e.ttl;
    h[9] = 1; // ICMP
    h[12..16].copy_from_slice(&e.src);
    h[16..20].copy_from_slice(&e.dst);
    h[20] = e.kind;
    h[21] = e.code;
    let ip_sum = ip_header_sum(&h);
    h[10..12].copy_from_slice(&(!fold(ip_sum)).to_ne_bytes());
    let icmp_sum = u16::from_ne_bytes([e.kind, e.code]) as u64 + quote_sum;
    h[22..24].copy_from_slice(&(!fold64(icmp_sum)).to_ne_bytes());

    make_room(ctx, l2_len, 28)?;
    write_and_trim(ctx, l2_len, &h, l2_len + 28 + quote)
}

#[inline(always)]
fn ip_header_sum(h: &[u8; 28]) -> u32 {
    let mut sum = 0u32;
    let mut i = 0;
    while i < 20 {
        sum += u16::from_ne_bytes([h[i], h[i + 1]]) as u32;
        i += 2;
    }
    sum
}

/// IPv6 error: 40-byte header (traffic class and flow label 0, as Linux
/// sends them) + 8-byte ICMPv6 header + quote, checksummed with the
/// pseudo-header.
#[inline(always)]
pub fn send_v6(ctx: &XdpContext, l2_len: usize, e: &ErrorV6, quote: usize, quote_sum: u64) -> Result<(), Error> {
    let payload_len = (8 + quote) as u16;
    let mut h = [0u8; 48];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&payload_len.to_be_bytes());
    h[6] = 58; // ICMPv6
    h[7] = e.hop_limit;
    h[8..24].copy_from_slice(&e.src);
    h[24..40].copy_from_slice(&e.dst);
    h[40] = e.kind;
    h[41] = e.code;
    // Pseudo-header: both addresses, the upper-layer length, next header 58;
    // plus the ICMPv6 header (checksum 0) and the quote.
    let mut sum = quote_sum + u16::from_ne_bytes([e.kind, e.code]) as u64;
    sum += u16::from_ne_bytes(payload_len.to_be_bytes()) as u64 + u16::from_ne_bytes([0, 58]) as u64;
    let mut i = 8;
    while i < 40 {
        sum += u16::from_ne_bytes([h[i], h[i + 1]]) as u64;
        i += 2;
    }
    h[42..44].copy_from_slice(&(!fold64(sum)).to_ne_bytes());

    make_room(ctx, l2_len, 48)?;
    write_and_trim(ctx, l2_len, &h, l2_len + 48 + quote)
}
