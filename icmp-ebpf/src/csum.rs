//! Summing packet bytes for checksums, with the bounds checks the verifier
//! needs on every access.

use aya_ebpf::programs::XdpContext;

/// One's complement sum (unfolded) of `len` bytes at packet address `start`,
/// or `None` if they are not all inside the frame. At most `MAX` bytes: the
/// loop bound the verifier sees.
///
/// `data_end` is loaded here with a volatile read: LLVM must not prove an
/// access in bounds from a length check made elsewhere (it would drop the
/// check, and the verifier, which does not follow that reasoning, would
/// reject the program). Every access below is checked against this `end`.
#[inline(always)]
pub fn sum_bytes<const MAX: usize>(ctx: &XdpContext, start: usize, len: usize) -> Option<u64> {
    if len > MAX {
        return None;
    }
    // SAFETY: reading a field of the program's own context.
    let end = unsafe { core::ptr::read_volatile(&(*ctx.ctx).data_end) } as usize;
    let mut sum = 0u64;
    let mut off = 0usize;
    // Eight bytes at a time: the two 32-bit halves of a native u64 add up to
    // the same folded sum as its four 16-bit words.
    let mut i = 0;
    while i < MAX / 8 {
        if off + 8 > len {
            break;
        }
        let p = start + off;
        if p + 8 > end {
            return None;
        }
        // SAFETY: bounds checked just above.
        let w = unsafe { core::ptr::read_unaligned(p as *const u64) };
        sum += (w & 0xffff_ffff) + (w >> 32);
        off += 8;
        i += 1;
    }
    // Up to three 16-bit words, then a lone byte padded with zero (RFC 1071).
    let mut j = 0;
    while j < 3 {
        if off + 2 > len {
            break;
        }
        let p = start + off;
        if p + 2 > end {
            return None;
        }
        // SAFETY: bounds checked just above.
        sum += unsafe { core::ptr::read_unaligned(p as *const u16) } as u64;
        off += 2;
        j += 1;
    }
    if off < len {
        let p = start + off;
        if p + 1 > end {
            return None;
        }
        // SAFETY: bounds checked just above.
        sum += u16::from_ne_bytes([unsafe { *(p as *const u8) }, 0]) as u64;
    }
    Some(sum)
}

