//! The rate limiter through BPF_PROG_TEST_RUN on the real program. Limits
//! use 10 s intervals so the clock cannot refill a bucket mid-test: counts
//! are exact.

use icmp_user::observe::counters::Snapshot;
use std::net::{Ipv4Addr, Ipv6Addr};

use icmp_common::{
    Config, Family, Reason,
    config::FLAG_INBOUND_LIMIT,
    config::{FLAG_INBOUND_DROP, FLAG_OVER_LIMIT_DROP},
    ratelimit::{DEFAULT_RATEMASK_V4, Limit, Scope},
};
use icmpxdp_tests::{
    ETH_P_IP, ETH_P_IPV6, Frame, US4, US6, XDP_DROP, XDP_PASS, XDP_TX, Xdp, icmp4, icmp6, ipv4, ipv6, udp4, udp6,
};

const TEN_S: u64 = 10_000_000_000;
const CLOSED: u16 = 33434;

fn cfg(per_source: Limit, global: Limit) -> Config {
    Config {
        per_source,
        global,
        ..Config::default()
    }
}

fn load(c: Config) -> Xdp {
    Xdp::load(c, &[US4], &[], &[US6])
}

fn udp_from(src: Ipv4Addr) -> Vec<u8> {
    Frame::new(
        ETH_P_IP,
        ipv4(src, US4, 17, 64, &[], &udp4(src, US4, 5000, CLOSED, b"x")),
    )
    .bytes()
}

fn udp6_from(src: Ipv6Addr) -> Vec<u8> {
    Frame::new(
        ETH_P_IPV6,
        ipv6(src, US6, 17, 64, &udp6(&src, &US6, 5000, CLOSED, b"x")),
    )
    .bytes()
}

fn echo_from(src: Ipv4Addr) -> Vec<u8> {
    Frame::new(
        ETH_P_IP,
        ipv4(src, US4, 1, 64, &[], &icmp4(8, 0, [0, 1, 0, 1], b"ping")),
    )
    .bytes()
}

/// Sends `n` frames, returns how many came back XDP_TX; every other one
/// must have the `other` action.
fn sent_of(x: &mut Xdp, frame: &[u8], n: usize, other: u32) -> usize {
    (0..n)
        .filter(|_| {
            let (a, _) = x.run(frame);
            assert!(a == XDP_TX || a == other, "action {a}");
            a == XDP_TX
        })
        .count()
}

#[test]
fn exactly_burst_errors_then_limited_per_source() {
    let mut x = load(cfg(Limit::new(TEN_S, 4), Limit::UNLIMITED));
    let a = Ipv4Addr::new(192, 0, 2, 2);
    assert_eq!(sent_of(&mut x, &udp_from(a), 10, XDP_DROP), 4, "burst 4, then nothing");
    let s = Snapshot::of(&x.responder).unwrap();
    assert_eq!(s.verdict(Reason::RateLimitedPerSource), 6);
    assert_eq!(s.limited(Scope::PerSource, Family::V4, 3), 6);
    assert_eq!(s.sent(Family::V4, 3), 4);
    // A second source has its own budget.
    let b = Ipv4Addr::new(192, 0, 2, 3);
    assert_eq!(sent_of(&mut x, &udp_from(b), 10, XDP_DROP), 4);
    // IPv6 too, per /64 by default.
    let v6a: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let v6b: Ipv6Addr = "2001:db8::ffff:2".parse().unwrap(); // same /64
    let v6c: Ipv6Addr = "2001:db8:0:1::2".parse().unwrap(); // another /64
    assert_eq!(sent_of(&mut x, &udp6_from(v6a), 3, XDP_DROP), 3);
    assert_eq!(
        sent_of(&mut x, &udp6_from(v6b), 5, XDP_DROP),
        1,
        "shares 2001:db8::/64 with the first"
    );
    assert_eq!(sent_of(&mut x, &udp6_from(v6c), 5, XDP_DROP), 4);
    assert_eq!(
        Snapshot::of(&x.responder)
            .unwrap()
            .limited(Scope::PerSource, Family::V6, 1),
        5
    );
}

#[test]
fn prefix_aggregation_puts_a_slash_24_in_one_bucket() {
    let mut c = cfg(Limit::new(TEN_S, 4), Limit::UNLIMITED);
    c.v4_prefix = 24;
    let mut x = load(c);
    assert_eq!(
        sent_of(&mut x, &udp_from(Ipv4Addr::new(198, 51, 100, 7)), 3, XDP_DROP),
        3
    );
    assert_eq!(
        sent_of(&mut x, &udp_from(Ipv4Addr::new(198, 51, 100, 200)), 5, XDP_DROP),
        1,
        "same /24"
    );
    assert_eq!(
        sent_of(&mut x, &udp_from(Ipv4Addr::new(198, 51, 101, 7)), 5, XDP_DROP),
        4,
        "next /24"
    );
}

#[test]
fn the_global_cap_holds_across_sources() {
    let mut x = load(cfg(Limit::UNLIMITED, Limit::new(TEN_S, 5)));
    let total: usize = (10..20)
        .map(|i| sent_of(&mut x, &udp_from(Ipv4Addr::new(192, 0, 2, i)), 3, XDP_DROP))
        .sum();
    assert_eq!(total, 5, "30 datagrams from 10 sources, global burst 5");
    let s = Snapshot::of(&x.responder).unwrap();
    assert_eq!(s.limited(Scope::Global, Family::V4, 3), 25);
    assert_eq!(s.verdict(Reason::RateLimitedGlobal), 25);
}

#[test]
fn a_source_over_its_own_limit_spends_no_global_credit() {
    let mut x = load(cfg(Limit::new(TEN_S, 1), Limit::new(TEN_S, 2)));
    let a = Ipv4Addr::new(192, 0, 2, 2);
    assert_eq!(sent_of(&mut x, &udp_from(a), 5, XDP_DROP), 1, "per-source burst 1");
    // Four refusals by a's own bucket left the global bucket its second credit.
    assert_eq!(sent_of(&mut x, &udp_from(Ipv4Addr::new(192, 0, 2, 3)), 1, XDP_DROP), 1);
    assert_eq!(
        sent_of(&mut x, &udp_from(Ipv4Addr::new(192, 0, 2, 4)), 1, XDP_DROP),
        0,
        "now global is empty"
    );
    let s = Snapshot::of(&x.responder).unwrap();
    assert_eq!(s.limited(Scope::PerSource, Family::V4, 3), 4);
    assert_eq!(s.limited(Scope::Global, Family::V4, 3), 1);
}

#[test]
fn echo_replies_are_limited_only_when_the_ratemask_says_so() {
    let tight = cfg(Limit::new(TEN_S, 2), Limit::new(TEN_S, 2));
    let mut x = load(tight);
    let a = Ipv4Addr::new(192, 0, 2, 2);
    assert_eq!(
        sent_of(&mut x, &echo_from(a), 10, XDP_DROP),
        10,
        "default ratemask: echo replies unlimited"
    );
    let mut x = load(Config {
        ratemask_v4: DEFAULT_RATEMASK_V4 | 1,
        ..tight
    });
    assert_eq!(
        sent_of(&mut x, &echo_from(a), 10, XDP_DROP),
        2,
        "type 0 in the ratemask"
    );
    assert_eq!(
        Snapshot::of(&x.responder)
            .unwrap()
            .limited(Scope::PerSource, Family::V4, 0),
        8
    );
    // ICMPv6: 129 added to the v6 mask.
    let mut mask6 = tight.ratemask_v6;
    mask6[129 / 32] |= 1 << (129 % 32);
    let mut x = load(Config {
        ratemask_v6: mask6,
        ..tight
    });
    let p6: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let e6 = Frame::new(
        ETH_P_IPV6,
        ipv6(p6, US6, 58, 64, &icmp6(&p6, &US6, 128, 0, [0; 4], b"x")),
    )
    .bytes();
    assert_eq!(sent_of(&mut x, &e6, 5, XDP_DROP), 2);
}

#[test]
fn over_the_limit_the_original_can_be_passed_instead() {
    let c = cfg(Limit::new(TEN_S, 1), Limit::UNLIMITED);
    let mut x = load(Config {
        flags: c.flags & !FLAG_OVER_LIMIT_DROP,
        ..c
    });
    let f = udp_from(Ipv4Addr::new(192, 0, 2, 2));
    assert_eq!(x.run(&f).0, XDP_TX);
    let (a, out) = x.run(&f);
    assert_eq!(a, XDP_PASS);
    assert_eq!(out, f, "passed untouched");
}

#[test]
fn inbound_echo_limit_drops_the_excess_and_counts_it() {
    let c = Config {
        inbound: Limit::new(TEN_S, 3),
        flags: Config::default().flags | FLAG_INBOUND_LIMIT,
        ..Config::default()
    };
    let mut x = load(c);
    let a = Ipv4Addr::new(192, 0, 2, 2);
    assert_eq!(sent_of(&mut x, &echo_from(a), 8, XDP_DROP), 3);
    let s = Snapshot::of(&x.responder).unwrap();
    assert_eq!(s.verdict(Reason::RateLimitedInbound), 5);
    assert_eq!(s.limited(Scope::Inbound, Family::V4, 8), 5);
    assert_eq!(
        sent_of(&mut x, &echo_from(Ipv4Addr::new(192, 0, 2, 3)), 4, XDP_DROP),
        3,
        "per source"
    );
    // "pass": the kernel gets the excess.
    let mut x = load(Config {
        flags: c.flags & !FLAG_INBOUND_DROP,
        ..c
    });
    assert_eq!(sent_of(&mut x, &echo_from(a), 5, XDP_PASS), 3);
    // Off by default.
    let mut x = load(Config::default());
    assert_eq!(sent_of(&mut x, &echo_from(a), 20, XDP_DROP), 20);
}

/// The refusal memo: once a source's bucket refuses and will not refill for
/// a while, the same datagram tuple is refused for the next 10 ms without
/// asking the socket table — so a socket bound in those 10 ms does not see
/// that source's datagrams yet — and after them the socket table is asked
/// again. The limit's count is exact throughout (README: *Rate limits*).
#[test]
fn a_refusal_is_remembered_for_ten_milliseconds_then_the_socket_table_is_asked() {
    use std::{
        net::UdpSocket,
        time::{Duration, Instant},
    };
    let mut x = load(cfg(Limit::new(TEN_S, 1), Limit::UNLIMITED));
    let a = Ipv4Addr::new(192, 0, 2, 2);
    // A port free now, bound below.
    let port = UdpSocket::bind("0.0.0.0:0").unwrap().local_addr().unwrap().port();
    let frame = |dport: u16| Frame::new(ETH_P_IP, ipv4(a, US4, 17, 64, &[], &udp4(a, US4, 5000, dport, b"x"))).bytes();
    assert_eq!(x.run(&frame(port)).0, XDP_TX, "the burst of 1");
    // The refusal and the probe after binding must fall in one 10 ms memo;
    // a test thread descheduled in between tries again (bounded).
    let mut remembered = false;
    for _ in 0..20 {
        let refused_at = Instant::now();
        assert_eq!(x.run(&frame(port)).0, XDP_DROP, "over the limit");
        let sock = UdpSocket::bind(("0.0.0.0", port)).unwrap();
        let (action, _) = x.run(&frame(port));
        let in_memo = refused_at.elapsed() < Duration::from_millis(3);
        if in_memo {
            assert_eq!(action, XDP_DROP, "refused from the memo, the new socket not asked");
            remembered = true;
            // After the memo: the socket table is asked, and the port is open.
            std::thread::sleep(Duration::from_millis(30));
            assert_eq!(x.run(&frame(port)).0, XDP_PASS, "open now: delivered");
            break;
        }
        drop(sock);
        std::thread::sleep(Duration::from_millis(30));
    }
    assert!(remembered, "no refusal and probe within 3 ms in 20 tries");
    let s = Snapshot::of(&x.responder).unwrap();
    assert_eq!(s.sent(Family::V4, 3), 1, "one error in all: the limit held");
    assert_eq!(s.verdict(Reason::PortOpen), 1);
    // Another port of the same source is not in the memo: asked, closed,
    // refused by the bucket.
    assert_eq!(x.run(&frame(CLOSED)).0, XDP_DROP);
    assert_eq!(
        Snapshot::of(&x.responder)
            .unwrap()
            .verdict(Reason::RateLimitedPerSource),
        s.verdict(Reason::RateLimitedPerSource) + 1
    );
}

/// A reload that takes Port Unreachable out of the ratemask lifts the
/// limit at once: the memo is looked at only where a refusal could be in it
/// (README: *Rate limits*), so a tuple refused just before the reload is
/// answered just after it, inside what would have been its 10 ms.
#[test]
fn a_reload_that_lifts_the_limit_ends_the_memo_at_once() {
    use std::time::{Duration, Instant};
    let limited = cfg(Limit::new(TEN_S, 1), Limit::UNLIMITED);
    let mut x = load(limited);
    let a = Ipv4Addr::new(192, 0, 2, 2);
    let f = udp_from(a);
    assert_eq!(x.run(&f).0, XDP_TX, "the burst of 1");
    // Bounded: the refusal, the reload and the probe must fall in one 10 ms
    // memo (a descheduled thread tries again).
    let mut checked = false;
    for _ in 0..20 {
        x.responder.set_config(&limited).unwrap();
        let refused_at = Instant::now();
        assert_eq!(x.run(&f).0, XDP_DROP, "over the limit: refused and remembered");
        x.responder
            .set_config(&Config {
                ratemask_v4: DEFAULT_RATEMASK_V4 & !(1 << 3),
                ..limited
            })
            .unwrap();
        let (action, _) = x.run(&f);
        if refused_at.elapsed() < Duration::from_millis(3) {
            assert_eq!(
                action, XDP_TX,
                "not limited any more: answered, not refused from the memo"
            );
            checked = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    assert!(checked, "no refusal, reload and probe within 3 ms in 20 tries");
}

/// A bucket that refills within 20 ms is never remembered: at 100/s burst
/// 1 a refusal waits at most 10 ms, so the next datagram of the same tuple
/// asks the socket table again — a socket bound right after the refusal
/// receives it (with a memo it would be dropped, as in the test above).
#[test]
fn a_bucket_that_refills_soon_is_not_remembered() {
    use std::net::UdpSocket;
    let mut x = load(cfg(Limit::new(10_000_000, 1), Limit::UNLIMITED));
    let a = Ipv4Addr::new(192, 0, 2, 2);
    let mut checked = false;
    // Bounded: a refusal needs two datagrams within one 10 ms interval.
    for _ in 0..20 {
        let port = UdpSocket::bind("0.0.0.0:0").unwrap().local_addr().unwrap().port();
        let f = Frame::new(ETH_P_IP, ipv4(a, US4, 17, 64, &[], &udp4(a, US4, 5000, port, b"x"))).bytes();
        let _ = x.run(&f);
        if x.run(&f).0 != XDP_DROP {
            continue; // the bucket refilled in between: try again
        }
        let _sock = UdpSocket::bind(("0.0.0.0", port)).unwrap();
        assert_eq!(
            x.run(&f).0,
            XDP_PASS,
            "not remembered: the socket table is asked, the port is open"
        );
        checked = true;
        break;
    }
    assert!(checked, "no refusal in 20 tries");
}

/// The rate at 100/s burst 1 (no memo at that rate): 300 ms of datagrams
/// every 1 ms get ~30 errors (the coarse clock's tick makes refills come in
/// steps of a few ms).
#[test]
fn the_rate_holds_at_a_hundred_per_second() {
    use std::time::{Duration, Instant};
    let mut x = load(cfg(Limit::new(10_000_000, 1), Limit::UNLIMITED));
    let f = udp_from(Ipv4Addr::new(192, 0, 2, 2));
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < Duration::from_millis(300) {
        if x.run(&f).0 == XDP_TX {
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!((20..=40).contains(&sent), "{sent} errors in 300 ms at 100/s");
}
