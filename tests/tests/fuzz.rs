//! Differential fuzz of the real program (see `icmpxdp_tests::fuzz` for the
//! generator and the invariants): every scenario config, then random configs
//! written straight into the map. `ICMPXDP_FUZZ_FRAMES` (default 100000 per
//! config) and `ICMPXDP_FUZZ_SEED` (default: a fixed seed, so CI is
//! repeatable) are what `cargo xtask fuzz --frames N --seed S` sets.

use icmp_common::Reason;
use icmpxdp_tests::{
    fuzz::{self, Scenario},
    require_root,
};

fn frames() -> u64 {
    std::env::var("ICMPXDP_FUZZ_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn seed() -> u64 {
    std::env::var("ICMPXDP_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x1c3f_2026)
}

fn fuzz_one(s: &Scenario, random_configs: bool) {
    let (seed, n) = (seed(), frames());
    let started = std::time::Instant::now();
    let o = fuzz::run(s, seed, n, random_configs);
    eprintln!(
        "fuzz {}{}: seed {seed}, {} frames in {:.1?}: aborted {} drop {} pass {} tx {}",
        s.name,
        if random_configs { " + random configs" } else { "" },
        o.frames,
        started.elapsed(),
        o.actions[0],
        o.actions[1],
        o.actions[2],
        o.actions[3]
    );
    assert!(o.failures.is_empty(), "{}", o.failures.join("\n"));
    // The generator must reach every outcome, or the invariants check little.
    assert!(o.frames >= n * 9 / 10, "most frames ran");
    assert!(o.actions[2] > 0, "some frames passed");
    if s.name == "shadow" {
        assert_eq!(o.actions[2], o.frames, "shadow mode passes every frame");
    } else if !random_configs {
        assert!(o.actions[3] > n / 500, "{}: at least 0.2% answered (tx)", s.name);
    }
    if s.name == "every_knob" {
        // Every kind of message the program builds, and the policy, reached.
        for want in [
            Reason::EchoAnswered,
            Reason::UnreachableSent,
            Reason::TimestampAnswered,
            Reason::AddressMaskAnswered,
            Reason::ProtocolUnreachableSent,
            Reason::PolicyDropped,
        ] {
            let got = o.verdicts.iter().find(|(r, _)| *r == want).map_or(0, |(_, n)| *n);
            assert!(got > 0, "every_knob: the generator never reached {want:?}");
        }
    }
}

#[test]
fn fuzz_every_scenario() {
    require_root();
    for s in fuzz::scenarios() {
        fuzz_one(&s, false);
    }
}

#[test]
fn fuzz_random_configs_in_the_map() {
    require_root();
    let s = fuzz::scenarios().remove(0);
    fuzz_one(&s, true);
}
