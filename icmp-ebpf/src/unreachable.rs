//! Building an ICMP error in the frame of the datagram it is about.
//!
//! The frame grows at the front by the new IP + ICMP headers
//! (`bpf_xdp_adjust_head`), the link-layer header moves to the new front with
//! its MACs swapped (VLAN tags kept), the new headers are written in the gap,
//! and the original datagram stays where it was as the quote;
//! `bpf_xdp_adjust_tail` then cuts the frame after the quote. Nothing is
//! copied but the L2 header, and nothing is staged on the stack (the frames
//! of a BPF call chain share 512 bytes).

use aya_ebpf::{
    bindings::xdp_md,
    helpers::{bpf_get_prandom_u32, bpf_xdp_adjust_head, bpf_xdp_adjust_tail},
    programs::XdpContext,
};
use icmp_common::{
    Config,
    checksum::{fold, fold64},
    config::FLAG_SHADOW,
    counters::Hot,
    reason::{Family, Reason},
    unreachable::quote_len,
};

use crate::frame::{get, put};
use crate::{count, csum, ratelimit};

/// The largest IPv4 quote: 576 - 20 - 8 (never more, whatever the config).
const MAX_QUOTE_V4: usize = Config::MAX_V4_ERROR_SIZE as usize - 28;
/// The largest IPv6 quote: 1280 - 40 - 8.
const MAX_QUOTE_V6: usize = Config::MAX_V6_ERROR_SIZE as usize - 48;

/// Port Unreachable for the IPv4 datagram after the `l2_len`-byte link
/// header: rate limit, quote, build, send. The caller has decided that the
/// port is closed and no rule suppresses the error.
///
/// A BPF *global* function, verified once on its own with these scalar
/// arguments: inlined, its quote loop and error build were walked again for
/// every state reaching it (VLAN depths × header lengths × port outcomes),
/// close to the verifier's 1M-instruction budget. It therefore re-derives
/// its packet pointers from the context and re-checks every bound.
/// Returns the [`Reason`] slot.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn icmpxdp_port_unreachable_v4(ctx: *mut xdp_md, l2_len: u64, datagram_len: u64, ihl: u64) -> u64 {
    unreachable_v4(ctx, l2_len, datagram_len, ihl, 3)
}

/// Protocol Unreachable (3/2) for the IPv4 datagram after the link header:
/// [`icmpxdp_port_unreachable_v4`] with code 2.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn icmpxdp_protocol_unreachable_v4(ctx: *mut xdp_md, l2_len: u64, datagram_len: u64, ihl: u64) -> u64 {
    unreachable_v4(ctx, l2_len, datagram_len, ihl, 2)
}

#[inline(always)]
fn unreachable_v4(ctx: *mut xdp_md, l2_len: u64, datagram_len: u64, ihl: u64, code: u8) -> u64 {
    let ctx = XdpContext::new(ctx);
    let Some(cfg) = crate::maps::config() else {
        return Reason::Disabled as u64;
    };
    let (l2_len, datagram_len, ihl) = (l2_len as usize, datagram_len as usize, ihl as usize);
    if !(14..=22).contains(&l2_len) || !(20..=60).contains(&ihl) || datagram_len > 0xffff {
        return Reason::Malformed as u64;
    }
    let l3 = ctx.data() + l2_len;
    if l3 + 20 > ctx.data_end() {
        return Reason::Malformed as u64;
    }
    // SAFETY: l3..l3+20 is inside the frame (checked above).
    let (tos, src) = unsafe { (get::<u8>(l3 + 1), get::<[u8; 4]>(l3 + 12)) };
    // Clamped here too, not only by the loader: no config makes an error
    // larger than RFC 1812's 576 bytes.
    // The limiter before the quote's checksum: a refusal makes no pass over
    // the quote. `REMEMBER` goes up with the verdict (see `refusals`).
    let limited = ratelimit::outgoing_v4_raw(cfg, &src, 3);
    if limited != 0 {
        return ratelimit::refused_scope(limited).reason() as u64 | (limited & ratelimit::REMEMBER);
    }
    let error_size = (cfg.v4_error_size as usize).min(Config::MAX_V4_ERROR_SIZE as usize);
    let quote = quote_len(datagram_len, ihl, error_size, 28);
    let Some(sum) = csum::sum_bytes::<MAX_QUOTE_V4>(&ctx, l3, quote) else {
        return Reason::Malformed as u64;
    };
    let sent = if code == 2 {
        Reason::ProtocolUnreachableSent
    } else {
        Reason::UnreachableSent
    };
    if cfg.has(FLAG_SHADOW) {
        // Decided, limited and counted; the frame stays as it came.
        return sent_or_not(Family::V4, 3, sent, Ok(()), SHADOW);
    }
    // Linux: the original TOS bits with internetwork-control precedence.
    sent_or_not(
        Family::V4,
        3,
        sent,
        send_v4(
            &ctx,
            l2_len,
            (tos & 0x1e) | 0xc0,
            cfg.ttl,
            [3, code],
            [0; 4],
            None,
            quote,
            sum,
        ),
        !SHADOW,
    )
}

/// Port Unreachable for the IPv6 datagram after the link header; see
/// [`icmpxdp_port_unreachable_v4`].
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn icmpxdp_port_unreachable_v6(ctx: *mut xdp_md, l2_len: u64, datagram_len: u64) -> u64 {
    error_v6(ctx, l2_len, datagram_len, 1, 4, 0)
}

/// ICMPv6 Parameter Problem, unrecognized Next Header (4/1), pointing at the
/// IPv6 header's Next Header field (offset 6), as Linux sends for a
/// protocol it has no handler for.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn icmpxdp_protocol_unreachable_v6(ctx: *mut xdp_md, l2_len: u64, datagram_len: u64) -> u64 {
    error_v6(ctx, l2_len, datagram_len, 4, 1, 6)
}

#[inline(always)]
fn error_v6(ctx: *mut xdp_md, l2_len: u64, datagram_len: u64, kind: u8, code: u8, pointer: u32) -> u64 {
    let ctx = XdpContext::new(ctx);
    let Some(cfg) = crate::maps::config() else {
        return Reason::Disabled as u64;
    };
    let (l2_len, datagram_len) = (l2_len as usize, datagram_len as usize);
    if !(14..=22).contains(&l2_len) || datagram_len > 40 + 0xffff {
        return Reason::Malformed as u64;
    }
    let l3 = ctx.data() + l2_len;
    if l3 + 40 > ctx.data_end() {
        return Reason::Malformed as u64;
    }
    // SAFETY: l3..l3+40 is inside the frame (checked above).
    let src = unsafe { get::<[u8; 16]>(l3 + 8) };
    let limited = ratelimit::outgoing_v6_raw(cfg, &src, kind);
    if limited != 0 {
        return ratelimit::refused_scope(limited).reason() as u64 | (limited & ratelimit::REMEMBER);
    }
    let error_size = (cfg.v6_error_size as usize).min(Config::MAX_V6_ERROR_SIZE as usize);
    let quote = quote_len(datagram_len, 40, error_size, 48);
    let Some(sum) = csum::sum_bytes::<MAX_QUOTE_V6>(&ctx, l3, quote) else {
        return Reason::Malformed as u64;
    };
    let sent = if kind == 4 {
        Reason::ProtocolUnreachableSent
    } else {
        Reason::UnreachableSent
    };
    if cfg.has(FLAG_SHADOW) {
        return sent_or_not(Family::V6, kind, sent, Ok(()), SHADOW);
    }
    sent_or_not(
        Family::V6,
        kind,
        sent,
        send_v6(&ctx, l2_len, cfg.hop_limit, [kind, code], pointer, None, quote, sum),
        !SHADOW,
    )
}

/// The verdict in an error builder's answer (the low byte; above it, the
/// limiter's `REMEMBER` flag).
#[inline(always)]
pub fn verdict(answer: u64) -> Reason {
    Reason::from_index(answer & 0xff)
}

/// `shadow` for an error decided in shadow mode (not built).
const SHADOW: bool = true;

/// The verdict of an error built (`r`), or decided in shadow mode, and its
/// count: a Port Unreachable sent counts in one hot word (verdict, action
/// and message; see `count::hot`), in shadow mode field by field.
#[inline(always)]
fn sent_or_not(family: Family, kind: u8, sent: Reason, r: Result<(), Error>, shadow: bool) -> u64 {
    let reason = match r {
        Ok(()) if !shadow && sent == Reason::UnreachableSent => {
            count::hot(match family {
                Family::V4 => Hot::UnreachableV4,
                Family::V6 => Hot::UnreachableV6,
            });
            sent
        }
        Ok(()) => {
            count::sent(family, kind);
            sent
        }
        Err(Error::NoHeadroom) => Reason::NoHeadroom,
        Err(Error::Bounds) => Reason::Malformed,
    };
    reason as u64
}

pub(crate) enum Error {
    /// `bpf_xdp_adjust_head` refused: the frame is unchanged.
    NoHeadroom,
    /// A bounds check failed after the frame was changed (not expected).
    Bounds,
}

/// Grows the frame by `grow` bytes at the front and moves the `l2_len`-byte
/// link-layer header there, swapping source and destination MAC.
#[inline(always)]
fn make_room(ctx: &XdpContext, l2_len: usize, grow: usize) -> Result<usize, Error> {
    // SAFETY: helper call on our own context.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(grow as i32)) } != 0 {
        return Err(Error::NoHeadroom);
    }
    let (new, end) = (ctx.data(), ctx.data_end());
    let old = new + grow;
    if old + 14 > end {
        return Err(Error::Bounds);
    }
    // SAFETY: old..old+14 and new..new+14 are inside the frame (checked),
    // and do not overlap (grow ≥ 28).
    unsafe {
        let (dst_hi, dst_lo) = (get::<u32>(old), get::<u16>(old + 4));
        let (src_hi, src_lo) = (get::<u32>(old + 6), get::<u16>(old + 10));
        put(new, src_hi);
        put(new + 4, src_lo);
        put(new + 6, dst_hi);
        put(new + 10, dst_lo);
        put(new + 12, get::<u16>(old + 12));
    }
    // VLAN tags, 4 bytes each.
    let mut off = 14;
    while off < 22 {
        if off >= l2_len {
            break;
        }
        if old + off + 4 > end {
            return Err(Error::Bounds);
        }
        // SAFETY: checked just above; new + off < old.
        unsafe { put(new + off, get::<u32>(old + off)) };
        off += 4;
    }
    Ok(new)
}

/// Cuts the frame to `total` bytes from `data`.
#[inline(always)]
fn trim(ctx: &XdpContext, total: usize) -> Result<(), Error> {
    let delta = total as i64 - (ctx.data_end() - ctx.data()) as i64;
    // SAFETY: helper call on our own context; only ever shrinks.
    if delta < 0 && unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta as i32) } != 0 {
        return Err(Error::Bounds);
    }
    Ok(())
}

/// IPv4 error: 20-byte header (no options, DF clear and a fresh ID as Linux
/// sends them) + 8-byte ICMP header (`kind`/`code`, then `rest`) + `quote`
/// bytes whose sum is `quote_sum`. Back to the quoted original's source;
/// from where it was sent to, or from `from` (a router's error leaves from
/// the address the route back uses).
#[inline(always)]
#[expect(clippy::too_many_arguments, reason = "one call per error kind, all scalars")]
pub(crate) fn send_v4(
    ctx: &XdpContext,
    l2_len: usize,
    tos: u8,
    ttl: u8,
    [kind, code]: [u8; 2],
    rest: [u8; 4],
    from: Option<u32>,
    quote: usize,
    quote_sum: u64,
) -> Result<(), Error> {
    // SAFETY: helper without arguments.
    let id = unsafe { bpf_get_prandom_u32() } as u16;
    let data = make_room(ctx, l2_len, 28)?;
    let h = data + l2_len;
    if l2_len > 22 || h + 28 + 20 > ctx.data_end() {
        return Err(Error::Bounds);
    }
    let orig = h + 28;
    // SAFETY: h..h+48 (new headers + original IP header) is inside the
    // frame (checked above).
    unsafe {
        let from = from.unwrap_or_else(|| get::<u32>(orig + 16)); // from where it was sent to
        let to = get::<u32>(orig + 12); // back to its source
        let first = [0x45u8, tos];
        let total = ((28 + quote) as u16).to_be_bytes();
        let ttl_proto = [ttl, 1u8];
        // The header's sum from the values in registers: reading back what
        // was just stored, in other widths, stalls on store forwarding.
        // (Native 16-bit words; the fragment word and checksum are 0.)
        let sum = u16::from_ne_bytes(first) as u32
            + u16::from_ne_bytes(total) as u32
            + id as u32
            + u16::from_ne_bytes(ttl_proto) as u32
            + (from & 0xffff)
            + (from >> 16)
            + (to & 0xffff)
            + (to >> 16);
        let check = (!fold(sum)).to_ne_bytes();
        put(h, [first[0], first[1], total[0], total[1]]);
        let id = id.to_ne_bytes();
        put(h + 4, [id[0], id[1], 0, 0]); // no DF
        put(h + 8, [ttl_proto[0], ttl_proto[1], check[0], check[1]]);
        put(h + 12, from);
        put(h + 16, to);
        let icmp_check =
            (!fold64(u16::from_ne_bytes([kind, code]) as u64 + crate::frame::words(rest) as u64 + quote_sum))
                .to_ne_bytes();
        put(
            h + 20,
            [
                kind,
                code,
                icmp_check[0],
                icmp_check[1],
                rest[0],
                rest[1],
                rest[2],
                rest[3],
            ],
        );
    }
    trim(ctx, l2_len + 28 + quote)
}

/// IPv6 error: 40-byte header (traffic class and flow label 0, as Linux
/// sends them) + 8-byte ICMPv6 header (type 1 code 4) + quote, checksummed
/// with the pseudo-header. Addresses come, swapped, from the quoted header.
/// `from`: the source instead of where the datagram was sent to (a
/// router's error leaves from the address of the route back).
#[inline(always)]
#[expect(clippy::too_many_arguments, reason = "one call per error kind, all scalars")]
pub(crate) fn send_v6(
    ctx: &XdpContext,
    l2_len: usize,
    hop_limit: u8,
    [kind, code]: [u8; 2],
    pointer: u32,
    from: Option<[u64; 2]>,
    quote: usize,
    quote_sum: u64,
) -> Result<(), Error> {
    let payload_len = ((8 + quote) as u16).to_be_bytes();
    let pointer_be = pointer.to_be_bytes();
    let data = make_room(ctx, l2_len, 48)?;
    let h = data + l2_len;
    if l2_len > 22 || h + 48 + 40 > ctx.data_end() {
        return Err(Error::Bounds);
    }
    let orig = h + 48;
    // SAFETY: h..h+88 (new headers + original IPv6 header) is inside the
    // frame (checked above).
    unsafe {
        put(h, [0x60u8, 0, 0, 0]);
        put(h + 4, payload_len);
        put(h + 6, [58u8, hop_limit]);
        // Pseudo-header: both addresses (their sum does not care which is
        // which), the upper-layer length and next header 58; then the
        // ICMPv6 header (checksum 0) and the quote.
        let mut sum = quote_sum
            + u16::from_ne_bytes([kind, code]) as u64
            + u16::from_ne_bytes([pointer_be[0], pointer_be[1]]) as u64
            + u16::from_ne_bytes([pointer_be[2], pointer_be[3]]) as u64
            + u16::from_ne_bytes(payload_len) as u64
            + u16::from_ne_bytes([0, 58]) as u64;
        // In 8-byte words: an array copy compiles to a `memmove` call.
        let mut i = 0;
        while i < 2 {
            let s = match from {
                Some(f) => f[i],
                None => get::<u64>(orig + 24 + 8 * i), // from where it was sent to
            };
            let d = get::<u64>(orig + 8 + 8 * i); // back to its source
            sum += (s & 0xffff_ffff) + (s >> 32) + (d & 0xffff_ffff) + (d >> 32);
            put(h + 8 + 8 * i, s);
            put(h + 24 + 8 * i, d);
            i += 1;
        }
        put(h + 40, [kind, code]);
        put(h + 42, !fold64(sum));
        put(h + 44, pointer_be);
    }
    trim(ctx, l2_len + 48 + quote)
}
