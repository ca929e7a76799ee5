//! Echo responder through BPF_PROG_TEST_RUN on the real, verified program:
//! exact output bytes for answered frames, untouched frames and the right
//! counter for everything passed.

use icmp_user::observe::counters::Snapshot;
use std::net::{Ipv4Addr, Ipv6Addr};

use icmp_common::{
    Config, Family, Reason,
    config::{FLAG_ANSWER_ANY_DST, FLAG_ECHO_V4},
};
use icmpxdp_tests::{
    BCAST4, ETH_P_IP, ETH_P_IPV6, Frame, MAC_PEER, MAC_US, PEER4, PEER6, US4, US6, XDP_TX, Xdp, checksum_ok,
    fix_ipv4_checksum, icmp4, icmp6, icmp6_checksum_ok, ipv4, ipv6, payload,
};

fn xdp() -> Xdp {
    Xdp::load(Config::default(), &[US4], &[BCAST4], &[US6])
}

fn echo4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, data: &[u8]) -> Vec<u8> {
    ipv4(src, dst, 1, ttl, &[], &icmp4(8, 0, [0xbe, 0xef, 0, 7], data))
}

fn echo6(src: Ipv6Addr, dst: Ipv6Addr, hop: u8, data: &[u8]) -> Vec<u8> {
    ipv6(src, dst, 58, hop, &icmp6(&src, &dst, 128, 0, [0xbe, 0xef, 0, 7], data))
}

/// The reply a correct responder must produce, built from scratch here.
fn expected_reply4(req: &Frame, data: &[u8], ttl: u8) -> Vec<u8> {
    let mut reply = req.clone();
    reply.dst_mac = req.src_mac;
    reply.src_mac = req.dst_mac;
    // Same IP ID and flags as the request; fresh checksums.
    let mut l3 = ipv4(US4, PEER4, 1, ttl, &[], &icmp4(0, 0, [0xbe, 0xef, 0, 7], data));
    l3[4..8].copy_from_slice(&req.l3[4..8]);
    fix_ipv4_checksum(&mut l3);
    reply.l3 = l3;
    reply.bytes()
}

#[test]
fn ipv4_echo_is_answered_exactly() {
    let mut x = xdp();
    let mut answered = 0;
    for vlans in 0..=2 {
        for (i, size) in [0usize, 1, 56, 57, 1472].into_iter().enumerate() {
            let data = payload(size, i as u8);
            let req = Frame::new(ETH_P_IP, echo4(PEER4, US4, 17, &data)).with_vlans(vlans);
            let (action, out) = x.run(&req.bytes());
            assert_eq!(action, XDP_TX, "vlans {vlans} size {size}");
            assert_eq!(out, expected_reply4(&req, &data, 64), "vlans {vlans} size {size}");
            let l3 = &out[req.l2_len()..];
            assert!(checksum_ok(&[&l3[..20]]), "IPv4 header checksum");
            assert!(checksum_ok(&[&l3[20..]]), "ICMP checksum");
            answered += 1;
        }
    }
    let snap = Snapshot::of(&x.responder).unwrap();
    assert_eq!(snap.verdict(Reason::EchoAnswered), answered);
    assert_eq!(snap.received(Family::V4, 8), answered);
    assert_eq!(snap.sent(Family::V4, 0), answered);
    assert_eq!(snap.frames(), answered, "every frame has one verdict");
}

#[test]
fn ipv6_echo_is_answered_exactly() {
    let mut x = xdp();
    let mut answered = 0;
    for vlans in 0..=2 {
        for (i, size) in [0usize, 1, 56, 1452].into_iter().enumerate() {
            let data = payload(size, 100 + i as u8);
            let req = Frame::new(ETH_P_IPV6, echo6(PEER6, US6, 9, &data)).with_vlans(vlans);
            let (action, out) = x.run(&req.bytes());
            assert_eq!(action, XDP_TX, "vlans {vlans} size {size}");
            let mut want = req.clone();
            want.dst_mac = MAC_PEER;
            want.src_mac = MAC_US;
            want.l3 = ipv6(
                US6,
                PEER6,
                58,
                64,
                &icmp6(&US6, &PEER6, 129, 0, [0xbe, 0xef, 0, 7], &data),
            );
            assert_eq!(out, want.bytes(), "vlans {vlans} size {size}");
            assert!(icmp6_checksum_ok(&US6, &PEER6, &out[req.l2_len() + 40..]));
            answered += 1;
        }
    }
    let snap = Snapshot::of(&x.responder).unwrap();
    assert_eq!(snap.received(Family::V6, 128), answered);
    assert_eq!(snap.sent(Family::V6, 129), answered);
}

#[test]
fn program_stays_well_within_the_verifier_budget() {
    let mut x = xdp();
    let n = x.responder.verified_insns().unwrap();
    println!("verifier processed {n} instructions");
    assert!(n > 0, "kernel reports the count");
    // Headroom for later changes: fail early, well before the hard limit.
    assert!(n < 700_000, "verifier processed {n} of 1,000,000 instructions");
}

#[test]
fn all_zero_echo_reply_gets_ffff_checksum() {
    // id 0, seq 0, no payload: the reply's content is all zero, and only
    // 0xFFFF verifies (RFC 1624 §3).
    let mut x = xdp();
    let l3 = ipv4(PEER4, US4, 1, 64, &[], &icmp4(8, 0, [0; 4], &[]));
    let (action, out) = x.run(&Frame::new(ETH_P_IP, l3).bytes());
    assert_eq!(action, XDP_TX);
    assert_eq!(&out[14 + 20..], &[0, 0, 0xff, 0xff, 0, 0, 0, 0]);
    assert!(checksum_ok(&[&out[14 + 20..]]));
}

#[test]
fn configured_ttl_and_hop_limit_are_used() {
    let cfg = Config {
        ttl: 200,
        hop_limit: 7,
        ..Config::default()
    };
    let mut x = Xdp::load(cfg, &[US4], &[], &[US6]);
    let (a, out) = x.run(&Frame::new(ETH_P_IP, echo4(PEER4, US4, 64, b"abc")).bytes());
    assert_eq!(a, XDP_TX);
    assert_eq!(out[14 + 8], 200);
    assert!(checksum_ok(&[&out[14..34]]));
    let (a, out) = x.run(&Frame::new(ETH_P_IPV6, echo6(PEER6, US6, 64, b"abc")).bytes());
    assert_eq!(a, XDP_TX);
    assert_eq!(out[14 + 7], 7);
}

#[test]
fn not_ours_broadcast_and_bad_sources_are_passed() {
    let mut x = xdp();
    let f4 = |src, dst| Frame::new(ETH_P_IP, echo4(src, dst, 64, b"x")).bytes();
    x.assert_passed(&f4(PEER4, Ipv4Addr::new(192, 0, 2, 99)), Reason::NotOurs, "other host");
    for dst in [Ipv4Addr::BROADCAST, BCAST4, Ipv4Addr::new(224, 0, 0, 1)] {
        x.assert_passed(&f4(PEER4, dst), Reason::BroadcastDestination, &format!("to {dst}"));
    }
    for src in [
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::new(240, 0, 0, 1),
        BCAST4,
    ] {
        x.assert_passed(&f4(src, US4), Reason::BadSource, &format!("from {src}"));
    }
    let mut l2b = Frame::new(ETH_P_IP, echo4(PEER4, US4, 64, b"x"));
    l2b.dst_mac = [0xff; 6];
    x.assert_passed(&l2b.bytes(), Reason::LinkBroadcast, "link-layer broadcast");

    let f6 = |src, dst| Frame::new(ETH_P_IPV6, echo6(src, dst, 64, b"x")).bytes();
    x.assert_passed(
        &f6(PEER6, Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9)),
        Reason::NotOurs,
        "other v6",
    );
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    x.assert_passed(&f6(PEER6, all_nodes), Reason::BroadcastDestination, "ff02::1");
    x.assert_passed(&f6(Ipv6Addr::LOCALHOST, US6), Reason::BadSource, "from ::1");
    x.assert_passed(&f6(Ipv6Addr::UNSPECIFIED, US6), Reason::BadSource, "from ::");
    assert_eq!(Snapshot::of(&x.responder).unwrap().action(icmp_common::Action::Tx), 0);
}

#[test]
fn options_fragments_and_other_traffic_are_passed() {
    let mut x = xdp();
    let icmp = icmp4(8, 0, [0, 1, 0, 1], b"hello");
    // Record Route option (7), padded with End of Options.
    let rr = [7, 7, 4, 0, 0, 0, 0, 0];
    x.assert_passed(
        &Frame::new(ETH_P_IP, ipv4(PEER4, US4, 1, 64, &rr, &icmp)).bytes(),
        Reason::IpOptions,
        "IPv4 options",
    );
    let mut frag = ipv4(PEER4, US4, 1, 64, &[], &icmp);
    frag[6] = 0x20; // MF
    fix_ipv4_checksum(&mut frag);
    x.assert_passed(&Frame::new(ETH_P_IP, frag).bytes(), Reason::Fragment, "first fragment");
    let tcp = ipv4(PEER4, US4, 6, 64, &[], &[0; 20]);
    x.assert_passed(&Frame::new(ETH_P_IP, tcp).bytes(), Reason::OtherProtocol, "TCP");
    x.assert_passed(&Frame::new(0x0806, vec![0; 28]).bytes(), Reason::OtherProtocol, "ARP");
    let reply = ipv4(PEER4, US4, 1, 64, &[], &icmp4(0, 0, [0, 1, 0, 1], b"x"));
    x.assert_passed(
        &Frame::new(ETH_P_IP, reply).bytes(),
        Reason::NotEchoRequest,
        "echo reply",
    );

    // Hop-by-hop options header before ICMPv6.
    let mut hbh = vec![58, 0, 1, 4, 0, 0, 0, 0];
    hbh.extend_from_slice(&icmp6(&PEER6, &US6, 128, 0, [0; 4], b"x"));
    x.assert_passed(
        &Frame::new(ETH_P_IPV6, ipv6(PEER6, US6, 0, 64, &hbh)).bytes(),
        Reason::IpOptions,
        "v6 HBH",
    );
    let frag6 = ipv6(PEER6, US6, 44, 64, &[58, 0, 0, 1, 0, 0, 0, 1, 128, 0, 0, 0, 0, 0, 0, 0]);
    x.assert_passed(&Frame::new(ETH_P_IPV6, frag6).bytes(), Reason::Fragment, "v6 fragment");
    let ns = ipv6(PEER6, US6, 58, 255, &icmp6(&PEER6, &US6, 135, 0, [0; 4], &US6.octets()));
    x.assert_passed(
        &Frame::new(ETH_P_IPV6, ns).bytes(),
        Reason::NotEchoRequest,
        "neighbor solicitation",
    );
    // Three VLAN tags: beyond what we parse, so not IP to us.
    let mut three = Frame::new(ETH_P_IP, echo4(PEER4, US4, 64, b"x")).with_vlans(2);
    three.vlans.push((0x8100, 7));
    x.assert_passed(&three.bytes(), Reason::OtherProtocol, "three VLAN tags");
}

#[test]
fn malformed_and_truncated_frames_are_passed() {
    let mut x = xdp();
    let good = echo4(PEER4, US4, 64, &payload(32, 1));
    let frame = |l3: Vec<u8>| Frame::new(ETH_P_IP, l3).bytes();
    let with_header = |mut l3: Vec<u8>, f: &dyn Fn(&mut Vec<u8>)| {
        f(&mut l3);
        fix_ipv4_checksum(&mut l3);
        l3
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("cut inside the IPv4 header", frame(good[..12].to_vec())),
        (
            "cut inside the ICMP header",
            frame(with_header(good[..24].to_vec(), &|l| {
                l[2..4].copy_from_slice(&24u16.to_be_bytes())
            })),
        ),
        (
            "total length beyond the frame",
            frame(with_header(good.clone(), &|l| {
                l[2..4].copy_from_slice(&200u16.to_be_bytes())
            })),
        ),
        (
            "total length below the header",
            frame(with_header(good.clone(), &|l| {
                l[2..4].copy_from_slice(&19u16.to_be_bytes())
            })),
        ),
        (
            "total length leaves no ICMP header",
            frame(with_header(good.clone(), &|l| {
                l[2..4].copy_from_slice(&24u16.to_be_bytes())
            })),
        ),
        ("IHL below 5", frame(with_header(good.clone(), &|l| l[0] = 0x44))),
        ("version 5", frame(with_header(good.clone(), &|l| l[0] = 0x55))),
        (
            "bad header checksum",
            frame({
                let mut l = good.clone();
                l[10] ^= 0xff;
                l
            }),
        ),
        ("only an Ethernet header", Frame::new(ETH_P_IP, vec![]).bytes()),
        ("VLAN tag cut short", {
            let mut f = Frame::new(ETH_P_IP, vec![]).with_vlans(1).bytes();
            f.truncate(16);
            f
        }),
    ];
    for (what, f) in cases {
        x.assert_passed(&f, Reason::Malformed, what);
    }
    let e6 = echo6(PEER6, US6, 64, &payload(16, 2));
    let mut lying = e6.clone();
    lying[4..6].copy_from_slice(&500u16.to_be_bytes());
    x.assert_passed(
        &Frame::new(ETH_P_IPV6, lying).bytes(),
        Reason::Malformed,
        "v6 payload length beyond frame",
    );
    x.assert_passed(
        &Frame::new(ETH_P_IPV6, e6[..30].to_vec()).bytes(),
        Reason::Malformed,
        "v6 header cut",
    );
    let mut short = ipv6(PEER6, US6, 58, 64, &[128, 0, 0, 0]);
    short[4..6].copy_from_slice(&4u16.to_be_bytes());
    x.assert_passed(
        &Frame::new(ETH_P_IPV6, short).bytes(),
        Reason::Malformed,
        "v6 ICMP header cut",
    );
    let snap = Snapshot::of(&x.responder).unwrap();
    assert_eq!(snap.action(icmp_common::Action::Tx), 0);
}

#[test]
fn answer_any_destination_and_disabled_families() {
    let cfg = Config {
        flags: Config::default().flags | FLAG_ANSWER_ANY_DST,
        ..Config::default()
    };
    let mut x = Xdp::load(cfg, &[US4], &[], &[US6]);
    let elsewhere = Ipv4Addr::new(198, 51, 100, 7);
    let (a, out) = x.run(&Frame::new(ETH_P_IP, echo4(PEER4, elsewhere, 64, b"x")).bytes());
    assert_eq!(a, XDP_TX);
    assert_eq!(
        &out[14 + 12..14 + 16],
        &elsewhere.octets(),
        "reply comes from the address asked"
    );

    let cfg = Config {
        flags: Config::default().flags & !FLAG_ECHO_V4,
        ..Config::default()
    };
    let mut x = Xdp::load(cfg, &[US4], &[], &[US6]);
    x.assert_passed(
        &Frame::new(ETH_P_IP, echo4(PEER4, US4, 64, b"x")).bytes(),
        Reason::Disabled,
        "v4 echo off",
    );
    let (a, _) = x.run(&Frame::new(ETH_P_IPV6, echo6(PEER6, US6, 64, b"x")).bytes());
    assert_eq!(a, XDP_TX, "v6 still on");

    let off = Config {
        flags: 0,
        ..Config::default()
    };
    let mut x = Xdp::load(off, &[US4], &[], &[US6]);
    x.assert_passed(
        &Frame::new(ETH_P_IP, echo4(PEER4, US4, 64, b"x")).bytes(),
        Reason::Disabled,
        "program disabled",
    );
}

/// `COUNTERS` and `REFUSALS` hold an entry (a group) per CPU, indexed by
/// the CPU number: every way of loading the program sizes them to this
/// host's possible CPUs, or a frame on a CPU past them would go uncounted
/// (the benchmark's in-place echo loader once did not).
#[test]
fn every_load_sizes_the_per_cpu_tables() {
    use aya::maps::Array;
    use icmp_user::{dataplane::load::Responder, map_names};
    icmpxdp_tests::require_root();
    let cpus = aya::util::nr_cpus().unwrap() as u32;
    for (how, r) in [
        ("load", Responder::load()),
        ("load_with", Responder::load_with(100)),
        ("load_bench_echo_in_place", Responder::load_bench_echo_in_place()),
    ] {
        let r = r.unwrap();
        let counters: Array<_, icmp_common::counters::Counters> =
            Array::try_from(r.map(map_names::COUNTERS).unwrap()).unwrap();
        assert_eq!(counters.len(), cpus, "{how}: COUNTERS entries");
        let refusals: Array<_, [u64; 8]> = Array::try_from(r.map("REFUSALS").unwrap()).unwrap();
        assert_eq!(
            refusals.len(),
            cpus * icmp_common::ratelimit::REFUSAL_SLOTS,
            "{how}: REFUSALS entries"
        );
    }
}
