//! Rate limiting in the kernel: GCRA buckets (`icmp_common::ratelimit`) kept
//! in maps and updated with an atomic compare-and-exchange, so two CPUs
//! racing on one bucket never lose an update: the limit holds exactly.

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_ktime_get_coarse_ns};
use icmp_common::{
    Config,
    config::FLAG_INBOUND_LIMIT,
    ratelimit::{BucketKey, Limit, Scope, limited_v4, limited_v6, outgoing, refusal_memo_until},
    reason::Family,
};

use crate::maps::{BUCKETS, GLOBAL_BUCKET};

/// Attempts at a contended compare-and-exchange before giving up. Giving up
/// refuses the message: contention can only make the limit stricter, never
/// let more through. (Few tries also keep the verifier's path count down.)
const CAS_TRIES: usize = 2;

/// Time for the buckets: the coarse clock (~1-2 ns a call here, against
/// ~34 ns for `bpf_ktime_get_ns`); its tick of a few ms only makes refills
/// come in steps, never more than the rate allows.
#[inline(always)]
fn now() -> u64 {
    // SAFETY: helper without arguments.
    unsafe { bpf_ktime_get_coarse_ns() }
}

/// 0 when admitted (the bucket updated), else how long the bucket stays
/// over the limit, at least 1 (1 also when contention won).
#[inline(always)]
fn admit_shared(slot: *mut u64, limit: &Limit, now: u64) -> u64 {
    let mut i = 0;
    while i < CAS_TRIES {
        // SAFETY: `slot` points into a map value that stays valid for this
        // program run; reads and the exchange are 8-byte aligned.
        let seen = unsafe { core::ptr::read_volatile(slot) };
        let Some(next) = limit.admit(seen, now) else {
            return limit.wait_ns(seen, now).max(1);
        };
        if next == seen {
            return 0;
        }
        // SAFETY: as above; compiled to BPF_CMPXCHG.
        let (_, swapped) = unsafe {
            core::intrinsics::atomic_cxchg::<
                u64,
                { core::intrinsics::AtomicOrdering::SeqCst },
                { core::intrinsics::AtomicOrdering::SeqCst },
            >(slot, seen, next)
        };
        if swapped {
            return 0;
        }
        i += 1;
    }
    1
}

/// Per-source bucket of `key` (a new source starts with a full burst): 0
/// when admitted, else the wait as [`admit_shared`].
#[inline(always)]
fn admit_key(key: &BucketKey, limit: &Limit, now: u64) -> u64 {
    if limit.is_unlimited() {
        return 0;
    }
    if let Some(slot) = BUCKETS.get_ptr_mut(key) {
        return admit_shared(slot, limit, now);
    }
    // A new source: its first message conforms (full bucket). If another
    // CPU created the bucket in the meantime, refuse rather than race it.
    let first = now.saturating_add(limit.interval_ns);
    BUCKETS.insert(key, &first, BPF_NOEXIST as u64).is_err() as u64
}

#[inline(always)]
fn admit_global(limit: &Limit, now: u64) -> bool {
    if limit.is_unlimited() {
        return true;
    }
    match GLOBAL_BUCKET.get_ptr_mut(0) {
        Some(slot) => admit_shared(slot, limit, now) == 0,
        None => false,
    }
}

/// What a check is about, packed into one scalar for [`icmpxdp_rate_limit`].
#[inline(always)]
const fn request(family: u8, kind: u8, inbound: bool) -> u64 {
    family as u64 | (kind as u64) << 8 | (inbound as u64) << 16
}

/// The whole limiter decision, as a BPF *global* function: the kernel
/// verifies it once, on its own, and each call site only checks the call.
/// Inlined at four call sites, its branches multiplied with the states of
/// every path reaching it and took the program past the verifier's
/// 1M-instruction budget. Arguments are scalars (a global function cannot
/// take packet pointers): `req` from [`request`], the source address as two
/// big-endian halves (IPv4 in the high bytes of `hi`). Returns 0 when the
/// message may go, else 1 + the [`Scope`] that refused it (counted here).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn icmpxdp_rate_limit(req: u64, hi: u64, lo: u64) -> u64 {
    let Some(cfg) = crate::maps::config() else {
        return 0;
    };
    let family = (req & 0xff) as u8;
    let kind = (req >> 8 & 0xff) as u8;
    let inbound = req >> 16 & 1 == 1;
    let fam = if family == 4 { Family::V4 } else { Family::V6 };
    let t = now();
    let scope = if inbound { Scope::Inbound } else { Scope::PerSource };
    // Built once, in place: the frames of a BPF call chain share 512 bytes.
    let prefix = if family == 4 {
        cfg.v4_prefix.min(32)
    } else {
        cfg.v6_prefix
    };
    let (mhi, mlo) = prefix_masks(prefix);
    let mut key = BucketKey {
        scope: scope as u8,
        family,
        _pad: [0; 2],
        addr: [0; 16],
    };
    key.addr[..8].copy_from_slice(&(hi & mhi).to_be_bytes());
    key.addr[8..].copy_from_slice(&(lo & mlo).to_be_bytes());
    // The per-source bucket's wait when it refuses (for the refusal memo).
    let mut wait = 0;
    let verdict = if inbound {
        if !cfg.has(FLAG_INBOUND_LIMIT) || admit_key(&key, &cfg.inbound, t) == 0 {
            Ok(())
        } else {
            Err(Scope::Inbound)
        }
    } else {
        let limited = match fam {
            Family::V4 => limited_v4(cfg.ratemask_v4, kind),
            Family::V6 => limited_v6(&cfg.ratemask_v6, kind),
        };
        if !limited {
            return 0;
        }
        outgoing(
            || {
                wait = admit_key(&key, &cfg.per_source, t);
                wait == 0
            },
            || admit_global(&cfg.global, t),
        )
    };
    match verdict {
        Ok(()) => 0,
        Err(scope) => {
            count(scope, fam, kind);
            let remember = scope == Scope::PerSource && refusal_memo_until(wait, t).is_some();
            (1 + scope as u64) | (remember as u64) << 8
        }
    }
}

/// Set in a refusal by [`icmpxdp_rate_limit`] when the per-source bucket
/// stays over its limit long enough for the refusal to be remembered
/// (`icmp_common::ratelimit::refusal_memo_until`; see `refusals`).
pub const REMEMBER: u64 = 1 << 8;

/// Masks keeping the first `prefix` bits of a 128-bit address held as two
/// big-endian halves (`icmp_common::ratelimit::mask_prefix`, in registers).
#[inline(always)]
const fn prefix_masks(prefix: u8) -> (u64, u64) {
    let p = prefix as u32;
    let hi = if p >= 64 {
        u64::MAX
    } else if p == 0 {
        0
    } else {
        u64::MAX << (64 - p)
    };
    let lo = if p >= 128 {
        u64::MAX
    } else if p <= 64 {
        0
    } else {
        u64::MAX << (128 - p)
    };
    (hi, lo)
}

#[inline(always)]
fn call(req: u64, hi: u64, lo: u64) -> Result<(), Scope> {
    verdict(icmpxdp_rate_limit(req, hi, lo))
}

/// A raw answer of [`icmpxdp_rate_limit`] as a result: `Err` with the
/// refusing [`Scope`] when it is not 0.
#[inline(always)]
fn verdict(raw: u64) -> Result<(), Scope> {
    if raw & 0xff == 0 {
        Ok(())
    } else {
        Err(refused_scope(raw))
    }
}

#[inline(always)]
fn halves_v4(a: &[u8; 4]) -> (u64, u64) {
    ((u32::from_be_bytes(*a) as u64) << 32, 0)
}

#[inline(always)]
fn halves_v6(a: &[u8; 16]) -> (u64, u64) {
    let mut hi = [0u8; 8];
    let mut lo = [0u8; 8];
    hi.copy_from_slice(&a[..8]);
    lo.copy_from_slice(&a[8..]);
    (u64::from_be_bytes(hi), u64::from_be_bytes(lo))
}

#[inline(always)]
fn count(scope: Scope, family: Family, kind: u8) {
    crate::count::rate_limited(scope, family, kind);
}

// The wrappers below test the ratemask / inbound flag inline, so a type
// that is not limited (echo replies, by default) costs a flag test, not a
// function call.

/// May we send ICMP type `kind` to IPv4 `dst`? `Err(scope)` (counted) if not.
#[inline(always)]
pub fn outgoing_v4(cfg: &Config, dst: &[u8; 4], kind: u8) -> Result<(), Scope> {
    verdict(outgoing_v4_raw(cfg, dst, kind))
}

/// [`outgoing_v4`] with the limiter's raw answer: 0 when the message may
/// go, else 1 + the refusing [`Scope`], with [`REMEMBER`] set when the
/// refusal may be remembered.
#[inline(always)]
pub fn outgoing_v4_raw(cfg: &Config, dst: &[u8; 4], kind: u8) -> u64 {
    if !limited_v4(cfg.ratemask_v4, kind) {
        return 0;
    }
    let (hi, lo) = halves_v4(dst);
    icmpxdp_rate_limit(request(4, kind, false), hi, lo)
}

/// [`outgoing_v4_raw`] for ICMPv6.
#[inline(always)]
pub fn outgoing_v6_raw(cfg: &Config, dst: &[u8; 16], kind: u8) -> u64 {
    if !limited_v6(&cfg.ratemask_v6, kind) {
        return 0;
    }
    let (hi, lo) = halves_v6(dst);
    icmpxdp_rate_limit(request(6, kind, false), hi, lo)
}

/// The [`Scope`] of a raw refusal (non-zero) from [`outgoing_v4_raw`].
#[inline(always)]
pub fn refused_scope(raw: u64) -> Scope {
    match raw & 0xff {
        1 => Scope::PerSource,
        2 => Scope::Global,
        _ => Scope::Inbound,
    }
}

/// May we send ICMPv6 type `kind` to `dst`?
#[inline(always)]
pub fn outgoing_v6(cfg: &Config, dst: &[u8; 16], kind: u8) -> Result<(), Scope> {
    verdict(outgoing_v6_raw(cfg, dst, kind))
}

/// Is an incoming echo request (type `kind`) from `src` within the inbound limit?
#[inline(always)]
pub fn inbound_v4(cfg: &Config, src: &[u8; 4], kind: u8) -> Result<(), Scope> {
    if !cfg.has(FLAG_INBOUND_LIMIT) {
        return Ok(());
    }
    let (hi, lo) = halves_v4(src);
    call(request(4, kind, true), hi, lo)
}

#[inline(always)]
pub fn inbound_v6(cfg: &Config, src: &[u8; 16], kind: u8) -> Result<(), Scope> {
    if !cfg.has(FLAG_INBOUND_LIMIT) {
        return Ok(());
    }
    let (hi, lo) = halves_v6(src);
    call(request(6, kind, true), hi, lo)
}
