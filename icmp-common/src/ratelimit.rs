//! Token buckets, as GCRA (the generic cell rate algorithm, "virtual
//! scheduling"): a bucket is a single `u64`, the theoretical arrival time
//! (TAT) of the next message. That makes an update one compare-and-exchange,
//! so concurrent CPUs never corrupt a bucket or lose an update.
//!
//! A [`Limit`] of `interval` and `burst` is exactly a token bucket holding
//! `burst` tokens, refilled one per `interval`: in any window of length `t`
//! at most `burst + floor(t / interval)` messages conform, and a source quiet
//! for `burst × interval` has its whole burst again. Linux's
//! `inet_peer_xrlim_allow` (per peer: `icmp_ratelimit` ms, burst 6) and
//! `icmp_global_allow` (`icmp_msgs_per_sec`, `icmp_msgs_burst`) are buckets
//! of this kind.

use crate::reason::Reason;

/// A rate: one message per `interval_ns`, up to `burst` at once.
/// `interval_ns == 0` means unlimited.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub interval_ns: u64,
    /// `(burst - 1) × interval_ns`, computed once by [`Limit::new`] so the
    /// XDP program never multiplies 64-bit numbers (BPF has no 128-bit
    /// multiply for the overflow check).
    pub tolerance_ns: u64,
}

impl Limit {
    pub const UNLIMITED: Self = Self {
        interval_ns: 0,
        tolerance_ns: 0,
    };

    /// `burst` 0 behaves as 1.
    pub const fn new(interval_ns: u64, burst: u32) -> Self {
        let extra = if burst == 0 { 0 } else { burst as u64 - 1 };
        Self {
            interval_ns,
            tolerance_ns: interval_ns.saturating_mul(extra),
        }
    }

    /// The burst this limit was made with.
    pub const fn burst(&self) -> u64 {
        match self.tolerance_ns.checked_div(self.interval_ns) {
            Some(extra) => extra + 1,
            None => 0, // unlimited
        }
    }

    /// `per_sec` messages a second (0: unlimited).
    pub const fn per_second(per_sec: u32, burst: u32) -> Self {
        if per_sec == 0 {
            Self::UNLIMITED
        } else {
            Self::new(1_000_000_000 / per_sec as u64, burst)
        }
    }

    pub const fn is_unlimited(&self) -> bool {
        self.interval_ns == 0
    }

    /// If a message at `now` conforms to a bucket whose TAT is `tat`, the
    /// bucket's new TAT; `None` if it is over the limit (bucket unchanged).
    /// A never-used bucket has TAT 0 and so a full burst.
    #[inline(always)]
    pub const fn admit(&self, tat: u64, now: u64) -> Option<u64> {
        if self.interval_ns == 0 {
            return Some(tat);
        }
        let base = if tat > now { tat } else { now };
        // Conforming while the backlog is at most burst - 1 intervals.
        if base - now > self.tolerance_ns {
            None
        } else {
            Some(base.saturating_add(self.interval_ns))
        }
    }
}

/// Refusal memo: entries per CPU (a power of two; the XDP program's
/// `REFUSALS` map holds this many per possible CPU).
pub const REFUSAL_SLOTS: u32 = 64;

/// Refusal memo (`refusal_memo_until`): how long a refusal is remembered.
pub const REFUSAL_MEMO_NS: u64 = 10_000_000;
/// The wait a refusal must have ahead of it to be remembered: the memo's
/// length plus a tick of the coarse clock the memo is checked against
/// (≤ 4 ms at HZ=250), with room to spare.
pub const REFUSAL_MEMO_MIN_WAIT_NS: u64 = 2 * REFUSAL_MEMO_NS;

impl Limit {
    /// How long after `now` a bucket whose TAT is `tat` stays over the
    /// limit (0: a message at `now` conforms).
    #[inline(always)]
    pub const fn wait_ns(&self, tat: u64, now: u64) -> u64 {
        if self.interval_ns == 0 || tat <= now || tat - now <= self.tolerance_ns {
            0
        } else {
            tat - now - self.tolerance_ns
        }
    }
}

/// Until when a Port Unreachable refused by a per-source bucket that stays
/// over its limit for `wait` more ns may be refused again for the same
/// datagram tuple without asking the socket table or the bucket (see the
/// XDP program's refusal memo): [`REFUSAL_MEMO_NS`] from `now`, and only if
/// the bucket cannot admit anything in that time, coarse clock included —
/// so the memo never refuses a message the limit would have let through.
/// `None`: not remembered.
#[inline(always)]
pub const fn refusal_memo_until(wait: u64, now: u64) -> Option<u64> {
    if wait >= REFUSAL_MEMO_MIN_WAIT_NS {
        Some(now.saturating_add(REFUSAL_MEMO_NS))
    } else {
        None
    }
}

/// Whether the refusal memo can hold anything for a message type at all:
/// only a per-source bucket refuses into it, so the type must be rate
/// limited (`limited`, from the ratemask), and a refusal waits at most one
/// interval, so a bucket refilling faster than [`REFUSAL_MEMO_MIN_WAIT_NS`]
/// never waits long enough to be remembered. When it cannot, the program
/// does not look (the memo's line is then not read at all).
#[inline(always)]
pub const fn refusal_memo_possible(per_source: &Limit, limited: bool) -> bool {
    limited && per_source.interval_ns >= REFUSAL_MEMO_MIN_WAIT_NS
}

/// Which bucket said no.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    PerSource = 0,
    Global = 1,
    Inbound = 2,
}

impl Scope {
    pub const COUNT: u32 = 3;
    pub const ALL: [Self; 3] = [Self::PerSource, Self::Global, Self::Inbound];

    pub const fn label(self) -> &'static str {
        match self {
            Self::PerSource => "per_source",
            Self::Global => "global",
            Self::Inbound => "inbound",
        }
    }

    pub const fn reason(self) -> Reason {
        match self {
            Self::PerSource => Reason::RateLimitedPerSource,
            Self::Global => Reason::RateLimitedGlobal,
            Self::Inbound => Reason::RateLimitedInbound,
        }
    }
}

/// The outgoing check in Linux's order (since the 2024 commit "icmp: change the order
/// of rate limits"): the per-peer bucket first, so a peer over its own limit
/// spends no global credit; then the host-wide bucket.
#[inline(always)]
pub fn outgoing(per_source: impl FnOnce() -> bool, global: impl FnOnce() -> bool) -> Result<(), Scope> {
    if !per_source() {
        return Err(Scope::PerSource);
    }
    if !global() {
        return Err(Scope::Global);
    }
    Ok(())
}

/// Whether ICMP type `kind` is rate limited under an IPv4 ratemask (bit `n`
/// for type `n`, as `net.ipv4.icmp_ratemask`; types above 31 never).
#[inline(always)]
pub const fn limited_v4(ratemask: u32, kind: u8) -> bool {
    kind < 32 && ratemask & (1 << kind) != 0
}

/// Whether ICMPv6 type `kind` is limited under a 256-bit ratemask (as
/// `net.ipv6.icmp.ratemask`).
#[inline(always)]
pub const fn limited_v6(ratemask: &[u32; 8], kind: u8) -> bool {
    ratemask[(kind >> 5) as usize] & (1 << (kind & 31)) != 0
}

/// Linux's default `net.ipv4.icmp_ratemask`: Destination Unreachable, Source
/// Quench, Time Exceeded, Parameter Problem.
pub const DEFAULT_RATEMASK_V4: u32 = (1 << 3) | (1 << 4) | (1 << 11) | (1 << 12);

/// Linux's default `net.ipv6.icmp.ratemask`: "0-1,3-127" — every error but
/// Packet Too Big.
pub const DEFAULT_RATEMASK_V6: [u32; 8] = [!(1 << 2), u32::MAX, u32::MAX, u32::MAX, 0, 0, 0, 0];

/// Key of a per-source bucket: the source address cut to its prefix, so one
/// host with many addresses shares one budget.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketKey {
    /// [`Scope::PerSource`] or [`Scope::Inbound`]: separate budgets.
    pub scope: u8,
    /// 4 or 6.
    pub family: u8,
    pub _pad: [u8; 2],
    pub addr: [u8; 16],
}

/// `addr` with every bit after the first `prefix` cleared.
#[inline(always)]
pub const fn mask_prefix<const N: usize>(addr: &[u8; N], prefix: u8) -> [u8; 16] {
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < N {
        let bits = prefix as i32 - (i as i32) * 8;
        out[i] = if bits >= 8 {
            addr[i]
        } else if bits <= 0 {
            0
        } else {
            addr[i] & !(0xffu8 >> bits)
        };
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bucket of 1/s burst 6 (Linux's defaults): after six messages at
    /// t = 0 the seventh waits a whole second; at 1000/s burst 1 nothing
    /// waits long enough to be remembered.
    #[test]
    fn waits_and_memos_follow_the_limit() {
        let l = Limit::new(1_000_000_000, 6);
        let mut tat = 0;
        for _ in 0..6 {
            assert_eq!(l.wait_ns(tat, 0), 0);
            tat = l.admit(tat, 0).unwrap();
        }
        assert_eq!(l.admit(tat, 0), None, "the seventh is refused");
        assert_eq!(l.wait_ns(tat, 0), 1_000_000_000, "until one interval has passed");
        assert_eq!(l.wait_ns(tat, 400_000_000), 600_000_000);
        assert_eq!(refusal_memo_until(l.wait_ns(tat, 0), 0), Some(10_000_000));
        assert_eq!(
            refusal_memo_until(l.wait_ns(tat, 990_000_000), 990_000_000),
            None,
            "10 ms before the next token: not remembered"
        );
        let fast = Limit::new(1_000_000, 1);
        let tat = fast.admit(0, 0).unwrap();
        assert_eq!(fast.wait_ns(tat, 0), 1_000_000);
        assert_eq!(refusal_memo_until(fast.wait_ns(tat, 0), 0), None);
        assert_eq!(Limit::UNLIMITED.wait_ns(u64::MAX, 0), 0);
    }

    /// The memo is looked at only where a refusal could be in it: a limited
    /// type under a bucket of at most 50/s (an interval of 20 ms or more).
    #[test]
    fn the_memo_is_possible_only_for_slow_limited_buckets() {
        assert!(refusal_memo_possible(&Limit::per_second(1, 6), true), "Linux's default");
        assert!(refusal_memo_possible(&Limit::per_second(50, 1), true), "20 ms exactly");
        assert!(!refusal_memo_possible(&Limit::per_second(51, 1), true), "19.6 ms");
        assert!(
            !refusal_memo_possible(&Limit::per_second(1, 6), false),
            "type not in the ratemask"
        );
        assert!(!refusal_memo_possible(&Limit::UNLIMITED, true), "no per-source limit");
        // Every refusal of a 51/s bucket waits less than the minimum.
        let l = Limit::per_second(51, 1);
        let tat = l.admit(0, 0).unwrap();
        assert!(l.wait_ns(tat, 0) < REFUSAL_MEMO_MIN_WAIT_NS);
    }
    use proptest::prelude::*;
    use std::vec::Vec;

    /// Runs arrivals (sorted times) through one bucket; returns the allowed times.
    fn simulate(limit: &Limit, arrivals: &[u64]) -> Vec<u64> {
        let mut tat = 0;
        let mut ok = Vec::new();
        for &t in arrivals {
            if let Some(new) = limit.admit(tat, t) {
                tat = new;
                ok.push(t);
            }
        }
        ok
    }

    #[test]
    fn exactly_burst_then_limited() {
        let l = Limit::new(1_000_000_000, 6);
        let now = 5_000_000_000;
        let allowed = simulate(&l, &[now; 20]);
        assert_eq!(allowed.len(), 6, "Linux's burst of 6");
        // one more after one interval, not before
        let mut tat = 0;
        for _ in 0..6 {
            tat = l.admit(tat, now).unwrap();
        }
        assert_eq!(l.admit(tat, now + 999_999_999), None);
        assert!(l.admit(tat, now + 1_000_000_000).is_some());
    }

    #[test]
    fn unlimited_and_zero_burst() {
        assert_eq!(Limit::UNLIMITED.admit(7, 100), Some(7));
        assert_eq!(Limit::per_second(0, 5), Limit::UNLIMITED);
        let one = Limit::new(10, 0);
        assert_eq!(simulate(&one, &[100; 5]).len(), 1, "burst 0 behaves as 1");
        assert_eq!(Limit::new(1000, 6).burst(), 6);
    }

    #[test]
    fn ratemasks() {
        for t in [3u8, 4, 11, 12] {
            assert!(limited_v4(DEFAULT_RATEMASK_V4, t));
        }
        for t in [0u8, 5, 8, 13, 31, 32, 200] {
            assert!(!limited_v4(DEFAULT_RATEMASK_V4, t), "{t}");
        }
        for t in (0u8..128).filter(|t| *t != 2) {
            assert!(limited_v6(&DEFAULT_RATEMASK_V6, t), "{t}");
        }
        assert!(!limited_v6(&DEFAULT_RATEMASK_V6, 2));
        assert!(!limited_v6(&DEFAULT_RATEMASK_V6, 129));
    }

    #[test]
    fn prefixes() {
        let a = [192u8, 0, 2, 77];
        assert_eq!(&mask_prefix(&a, 32)[..4], &a);
        assert_eq!(&mask_prefix(&a, 24)[..4], &[192, 0, 2, 0]);
        assert_eq!(&mask_prefix(&a, 20)[..4], &[192, 0, 0, 0]);
        assert_eq!(&mask_prefix(&a, 0)[..4], &[0, 0, 0, 0]);
        let mut b = [0xffu8; 16];
        let m = mask_prefix(&b, 64);
        assert_eq!(m[..8], [0xff; 8]);
        assert_eq!(m[8..], [0; 8]);
        b[0] = 0x20;
        assert_eq!(mask_prefix(&b, 3)[0], 0x20);
        assert_eq!(mask_prefix(&b, 128), b);
    }

    #[test]
    fn per_source_first() {
        let mut global_asked = false;
        assert_eq!(
            outgoing(
                || false,
                || {
                    global_asked = true;
                    true
                }
            ),
            Err(Scope::PerSource)
        );
        assert!(!global_asked, "no global credit spent for a peer over its limit");
        assert_eq!(outgoing(|| true, || false), Err(Scope::Global));
        assert_eq!(outgoing(|| true, || true), Ok(()));
    }

    proptest! {
        #[test]
        fn never_more_than_rate_times_t_plus_burst(
            interval in 1u64..1_000_000,
            burst in 1u32..50,
            gaps in proptest::collection::vec(0u64..400_000, 1..400),
            start in 0u64..10_000_000_000,
        ) {
            let l = Limit::new(interval, burst);
            let mut t = start;
            let arrivals: Vec<u64> = gaps.iter().map(|g| { t += g; t }).collect();
            let ok = simulate(&l, &arrivals);
            // Every window [ok[i], ok[j]] (closed) holds j - i + 1 allowed
            // messages; it must be at most burst + floor(len / interval).
            for i in 0..ok.len() {
                for j in i..ok.len() {
                    let n = (j - i + 1) as u64;
                    let bound = u64::from(burst) + (ok[j] - ok[i]) / interval;
                    prop_assert!(n <= bound, "window {}..{}: {} > {}", ok[i], ok[j], n, bound);
                }
            }
        }

        #[test]
        fn a_quiet_source_regains_its_full_burst(
            interval in 1u64..1_000_000,
            burst in 1u32..50,
            used in 0u32..100,
            extra_quiet in 0u64..1_000_000,
        ) {
            let l = Limit::new(interval, burst);
            let mut tat = 0;
            let now = 1_000_000_000;
            for _ in 0..used {
                if let Some(t) = l.admit(tat, now) { tat = t; }
            }
            let later = now + interval * u64::from(burst) + extra_quiet;
            let mut n = 0;
            for _ in 0..burst * 2 {
                if let Some(t) = l.admit(tat, later) { tat = t; n += 1; }
            }
            prop_assert_eq!(n, burst);
        }

        #[test]
        fn sustained_rate_is_the_configured_rate(
            interval in 1_000u64..1_000_000,
            burst in 1u32..20,
        ) {
            // Offered far above the rate for 1000 intervals: allowed =
            // burst + 1000 (one per interval after the burst), never more.
            let l = Limit::new(interval, burst);
            let step = interval / 7 + 1;
            let arrivals: Vec<u64> = (0..(1000 * interval / step)).map(|k| 1_000_000 + k * step).collect();
            let ok = simulate(&l, &arrivals).len() as u64;
            let span = arrivals.last().unwrap() - arrivals[0];
            prop_assert!(ok <= u64::from(burst) + span / interval);
            if burst >= 2 {
                // The tolerance absorbs the arrivals' phase: nothing is lost.
                prop_assert!(ok + 1 >= u64::from(burst) + span / interval);
            } else {
                // Burst 1 has no tolerance: each admission can come up to
                // `step - 1` after its due time, and that slack is lost (as
                // in Linux's `inet_peer_xrlim_allow` with one token), so the
                // spacing is at most `interval + step - 1`.
                prop_assert!(ok >= span / (interval + step - 1), "ok {}", ok);
            }
        }
    }
}
