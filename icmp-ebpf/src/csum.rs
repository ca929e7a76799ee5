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
///
/// Not inlined: LLVM fully unrolls the loop when it is, and the spills
/// blow the caller's stack frame (512 bytes for a whole BPF call chain).
#[inline(never)]
pub fn sum_bytes<const MAX: usize>(ctx: &XdpContext, start: usize, len: usize) -> Option<u64> {
    if len > MAX {
        return None;
    }
    // SAFETY: reading a field of the program's own context.
    let end = unsafe { core::ptr::read_volatile(&(*ctx.ctx).data_end) } as usize;
    let mut sum = 0u64;
    let mut off = 0usize;
    // 32 bytes per bounds check: the verifier walks every iteration of this
    // loop for every path that reaches it, so fewer, fatter iterations keep
    // the program well inside its instruction budget. The two 32-bit halves
    // of a native u64 add up to the same folded sum as its four 16-bit words.
    let mut i = 0;
    while i < MAX / 32 {
        if off + 32 > len {
            break;
        }
        let p = start + off;
        if p + 32 > end {
            return None;
        }
        let mut k = 0;
        while k < 4 {
            // SAFETY: inside the 32 bytes checked above.
            let w = unsafe { core::ptr::read_unaligned((p + 8 * k) as *const u64) };
            sum += (w & 0xffff_ffff) + (w >> 32);
            k += 1;
        }
        off += 32;
        i += 1;
    }
    // The rest (< 32 bytes) in 16, 8, 4, 2 and 1-byte steps; a lone last
    // byte is padded with zero (RFC 1071).
    if off + 16 <= len {
        let p = start + off;
        if p + 16 > end {
            return None;
        }
        // SAFETY: bounds checked just above.
        let (a, b) = unsafe {
            (
                core::ptr::read_unaligned(p as *const u64),
                core::ptr::read_unaligned((p + 8) as *const u64),
            )
        };
        sum += (a & 0xffff_ffff) + (a >> 32) + (b & 0xffff_ffff) + (b >> 32);
        off += 16;
    }
    if off + 8 <= len {
        let p = start + off;
        if p + 8 > end {
            return None;
        }
        // SAFETY: bounds checked just above.
        let a = unsafe { core::ptr::read_unaligned(p as *const u64) };
        sum += (a & 0xffff_ffff) + (a >> 32);
        off += 8;
    }
    if off + 4 <= len {
        let p = start + off;
        if p + 4 > end {
            return None;
        }
        // SAFETY: bounds checked just above.
        sum += unsafe { core::ptr::read_unaligned(p as *const u32) } as u64;
        off += 4;
    }
    if off + 2 <= len {
        let p = start + off;
        if p + 2 > end {
            return None;
        }
        // SAFETY: bounds checked just above.
        sum += unsafe { core::ptr::read_unaligned(p as *const u16) } as u64;
        off += 2;
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
