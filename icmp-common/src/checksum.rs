//! Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! All functions work on 16-bit words *as they sit in memory*: callers read a
//! word with `u16::from_ne_bytes` and write the checksum back with
//! `to_ne_bytes`. The one's complement sum is byte-order independent as long
//! as every operand is taken the same way, so no byte swapping happens on the
//! hot path.

/// Folds a 32-bit accumulator to 16 bits with end-around carry.
#[inline(always)]
pub const fn fold(mut sum: u32) -> u16 {
    // Two folds suffice: after the first, the value is at most 0x1_fffe.
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// Folds a 64-bit accumulator to 16 bits with end-around carry.
#[inline(always)]
pub const fn fold64(mut sum: u64) -> u16 {
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    fold(sum as u32)
}

/// One's complement sum of `data` as native-endian 16-bit words (an odd
/// trailing byte is padded with zero, as RFC 1071 requires), added to `initial`.
pub fn sum_words(data: &[u8], initial: u32) -> u32 {
    let mut sum = initial as u64;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_ne_bytes([c[0], c[1]]) as u64;
    }
    if let [last] = chunks.remainder() {
        sum += u16::from_ne_bytes([*last, 0]) as u64;
    }
    // Fold 64 → 32 bits so callers can keep accumulating.
    while sum >> 32 != 0 {
        sum = (sum & 0xffff_ffff) + (sum >> 32);
    }
    sum as u32
}

/// Full checksum of `data` (the checksum field inside must be zero).
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum_words(data, 0))
}

/// RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')` for one 16-bit word changing
/// from `old` to `new`.
///
/// Equals a full recompute unless every summed word is zero after the
/// change (RFC 1624 §3: only then is the true sum +0, which eqn. 3 cannot
/// produce); see [`icmp4_canonical`] for the one place that can happen here.
#[inline(always)]
pub const fn replace16(check: u16, old: u16, new: u16) -> u16 {
    let sum = (!check) as u32 + (!old) as u32 + new as u32;
    !fold(sum)
}

/// Maps a computed ICMPv4 checksum of `0x0000` to `0xFFFF`.
///
/// Both are one's complement zero, and a receiver summing a message whose
/// content is not all zero accepts either. But an all-zero echo reply (id 0,
/// seq 0, zero payload) verifies only with `0xFFFF`, and the incremental
/// update cannot tell that case apart, so `0xFFFF` is the value that is valid
/// in every case. (ICMPv6 never needs this: its pseudo-header is never zero.)
#[inline(always)]
pub const fn icmp4_canonical(check: u16) -> u16 {
    if check == 0 { 0xffff } else { check }
}

/// True when `data` (checksum field included) sums to one's complement zero.
pub fn verify(data: &[u8]) -> bool {
    fold(sum_words(data, 0)) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// Writes the full checksum at `at` (a word offset in bytes).
    fn recompute(buf: &mut [u8], at: usize) -> u16 {
        buf[at..at + 2].copy_from_slice(&[0, 0]);
        let c = checksum(buf);
        buf[at..at + 2].copy_from_slice(&c.to_ne_bytes());
        c
    }

    fn word(buf: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes([buf[at], buf[at + 1]])
    }

    #[test]
    fn fold64_matches_word_sum() {
        // Summing native 64-bit words split into 32-bit halves, then folding,
        // equals the 16-bit word sum (how the XDP program sums quotes).
        let data: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
        let mut wide = 0u64;
        for c in data.chunks_exact(8) {
            let w = u64::from_ne_bytes(c.try_into().unwrap());
            wide += (w & 0xffff_ffff) + (w >> 32);
        }
        assert_eq!(fold64(wide), fold(sum_words(&data, 0)));
        assert_eq!(fold64(u64::MAX), 0xffff);
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 numerical example: words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(u16::from_be(fold(sum_words(&data, 0))), 0xddf2);
    }

    #[test]
    fn rfc1624_section4_example() {
        // RFC 1624 §4: the other header words sum to 0xCD7A, m = 0x5555, so
        // HC = ~(0xCD7A + 0x5555) = 0xDD2F. m changes to 0x3285; recomputing
        // gives ~(0xCD7A + 0x3285) = 0x0000. Eqn. 3 agrees …
        assert_eq!(replace16(0xdd2f, 0x5555, 0x3285), 0x0000);
        // … while eqn. 2 (HC - ~m - m', one's complement) yields 0xFFFF.
        let eqn2 = fold(0xdd2f + 0x5555 + (!0x3285u16) as u32);
        assert_eq!(eqn2, 0xffff);
    }

    #[test]
    fn all_zero_message_edge_case() {
        // An echo request with id 0, seq 0, no payload: type 8 code 0.
        let mut req = [8u8, 0, 0, 0, 0, 0, 0, 0];
        let c = recompute(&mut req, 2);
        assert_eq!(u16::from_be(c), 0xf7ff);
        // Incremental to type 0: eqn. 3 yields 0x0000, which does not verify
        // for an all-zero message; the canonical form 0xFFFF does and equals
        // the full recompute.
        let inc = replace16(c, word(&req, 0), 0);
        assert_eq!(inc, 0x0000);
        let mut reply = [0u8; 8];
        reply[2..4].copy_from_slice(&icmp4_canonical(inc).to_ne_bytes());
        assert!(verify(&reply));
        let mut full = [0u8; 8];
        assert_eq!(recompute(&mut full, 2), icmp4_canonical(inc));
    }

    #[test]
    fn sum_to_negative_zero_keeps_0000() {
        // Non-zero content summing to 0xFFFF: full recompute gives 0x0000,
        // incremental agrees, and the canonical 0xFFFF verifies too.
        let mut m = [0x08u8, 0x00, 0, 0, 0xf7, 0xff, 0, 0];
        let c = recompute(&mut m, 2);
        assert_eq!(c, 0x0000);
        assert!(verify(&m));
        m[2..4].copy_from_slice(&0xffffu16.to_ne_bytes());
        assert!(verify(&m));
    }

    proptest! {
        #[test]
        fn incremental16_equals_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 4..200usize),
            at in 0usize..100,
            new in any::<u16>(),
        ) {
            // Keep an even length so words stay aligned, checksum at 0..2.
            if data.len() % 2 == 1 { data.pop(); }
            let at = 2 + (at * 2) % (data.len() - 2);
            let at = at & !1;
            prop_assume!(at >= 2);
            let c = recompute(&mut data, 0);
            let old = word(&data, at);
            data[at..at + 2].copy_from_slice(&new.to_ne_bytes());
            let inc = replace16(c, old, new);
            let mut copy: Vec<u8> = data.clone();
            let full = recompute(&mut copy, 0);
            let all_zero = copy.iter().enumerate().all(|(i, b)| i < 2 || *b == 0);
            if all_zero {
                prop_assert_eq!(icmp4_canonical(inc), full);
            } else {
                prop_assert_eq!(inc, full);
            }
            data[0..2].copy_from_slice(&inc.to_ne_bytes());
            prop_assert!(verify(&data) || all_zero);
        }

        #[test]
        fn replacing_word_with_itself_is_identity_or_equivalent(
            check in any::<u16>(), w in any::<u16>(),
        ) {
            let c = replace16(check, w, w);
            // 0x0000 and 0xFFFF are the same one's complement value.
            prop_assert!(c == check || (c ^ check) == 0xffff && (c == 0 || c == 0xffff));
        }
    }
}
