//! In-place rewrites. Checksums are updated incrementally (RFC 1624): swapping
//! source and destination leaves every sum unchanged (the IPv4 header sum and
//! the ICMPv6 pseudo-header sum are symmetric in them), so only the TTL /
//! hop-limit word and the type word need an update.
//!
//! Each updated 32-bit word (TTL, protocol, header checksum; type, code,
//! ICMP checksum) is written with one 4-byte store. Byte and half-word
//! stores would do the same, but a later 4-byte load of that word (the
//! header checksum check reads the header in 32-bit words) cannot be
//! forwarded from them and waits for them to reach the cache: in repeat-mode
//! benchmarks `perf` put most of the echo path's samples on that load.

use icmp_common::checksum::{icmp4_canonical, replace16};

use crate::parse::{EthHdr, IcmpHdr, Ipv4Hdr, Ipv6Hdr, word};

#[inline(always)]
pub fn swap_macs(eth: &mut EthHdr) {
    core::mem::swap(&mut eth.dst, &mut eth.src);
}

/// Echo request → echo reply (type `reply_type`, code kept as Linux does).
#[inline(always)]
pub fn echo_reply_v4(ip: &mut Ipv4Hdr, icmp: &mut IcmpHdr, ttl: u8, reply_type: u8) {
    let check = replace16(word(ip.check), word([ip.ttl, ip.proto]), word([ttl, ip.proto])).to_ne_bytes();
    let word_at = (ip as *mut Ipv4Hdr)
        .cast::<u8>()
        .wrapping_add(core::mem::offset_of!(Ipv4Hdr, ttl));
    store_word(word_at, [ttl, ip.proto, check[0], check[1]]);
    core::mem::swap(&mut ip.src, &mut ip.dst);

    set_type(icmp, reply_type, true);
}

#[inline(always)]
pub fn echo_reply_v6(ip: &mut Ipv6Hdr, icmp: &mut IcmpHdr, hop_limit: u8, reply_type: u8) {
    // The hop limit is not covered by any checksum.
    ip.hop_limit = hop_limit;
    core::mem::swap(&mut ip.src, &mut ip.dst);
    set_type(icmp, reply_type, false);
}

#[inline(always)]
fn set_type(icmp: &mut IcmpHdr, kind: u8, v4: bool) {
    let check = replace16(word(icmp.check), word([icmp.kind, icmp.code]), word([kind, icmp.code]));
    let check = if v4 { icmp4_canonical(check) } else { check }.to_ne_bytes();
    store_word(
        (icmp as *mut IcmpHdr).cast::<u8>(),
        [kind, icmp.code, check[0], check[1]],
    );
}

/// Writes the 4 bytes at `at` with one 32-bit store. Volatile: LLVM would
/// otherwise store only the bytes that changed, one at a time.
#[inline(always)]
fn store_word(at: *mut u8, bytes: [u8; 4]) {
    // SAFETY: callers derive `at` from a whole-header pointer, at the first
    // byte of a 4-byte run of fields in that `#[repr(C)]` header (ttl,
    // proto, check / kind, code, check), which lies inside the frame.
    unsafe { core::intrinsics::unaligned_volatile_store(at.cast::<u32>(), u32::from_ne_bytes(bytes)) };
}
