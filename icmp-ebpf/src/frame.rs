//! Unaligned reads and writes at packet addresses, for the builders that
//! write whole headers (errors, timestamp and mask replies). Every caller
//! checks the bounds first, as the verifier needs.

/// # Safety
/// `p..p + size_of::<T>()` must be inside the frame.
#[inline(always)]
pub(crate) unsafe fn put<T>(p: usize, v: T) {
    // SAFETY: per the function contract.
    unsafe { core::ptr::write_unaligned(p as *mut T, v) }
}

/// # Safety
/// As [`put`].
#[inline(always)]
pub(crate) unsafe fn get<T>(p: usize) -> T {
    // SAFETY: per the function contract.
    unsafe { core::ptr::read_unaligned(p as *const T) }
}

/// The two native 16-bit words of 4 bytes, summed (for a checksum).
#[inline(always)]
pub(crate) fn words(b: [u8; 4]) -> u32 {
    u16::from_ne_bytes([b[0], b[1]]) as u32 + u16::from_ne_bytes([b[2], b[3]]) as u32
}
