//! Port Unreachable and the error-suppression rules through BPF_PROG_TEST_RUN
//! on the real program. Every suppression test fails if its rule is removed:
//! an error would then be built (XDP_TX) and the reason would not move.

use icmp_user::observe::counters::Snapshot;
use std::net::{Ipv4Addr, Ipv6Addr, UdpSocket};

use icmp_common::{
    Config, Family, Reason,
    config::{
        FLAG_DROP_SUPPRESSED, FLAG_PORTS_BY_SOCKET, FLAG_RESERVED_SOURCE_INVALID, FLAG_UNREACH_V4, PORT_SLOTS,
        PORT_WORDS,
    },
    ratelimit::Limit,
    reason::Action,
};
use icmp_user::config::PortBitmaps;
use icmpxdp_tests::{
    BCAST4, ETH_P_IP, ETH_P_IPV6, Frame, PEER4, PEER6, US4, US6, XDP_DROP, XDP_PASS, XDP_TX, Xdp, checksum_ok,
    fix_ipv4_checksum, icmp4, icmp6_checksum_ok, inet_checksum, ipv4, ipv6, payload, udp4, udp6,
};

/// The traceroute range start: nothing listens there.
const CLOSED: u16 = 33434;

/// The default config without rate limits: these tests send many errors to
/// one peer (limits have their own tests in `rate_limit_packets`).
fn unlimited() -> Config {
    Config {
        per_source: Limit::UNLIMITED,
        global: Limit::UNLIMITED,
        ..Config::default()
    }
}

fn xdp_with(cfg: Config) -> Xdp {
    Xdp::load(cfg, &[US4], &[BCAST4], &[US6])
}

fn xdp() -> Xdp {
    xdp_with(unlimited())
}

fn dgram4(src: Ipv4Addr, dst: Ipv4Addr, dport: u16, data: &[u8]) -> Vec<u8> {
    ipv4(src, dst, 17, 64, &[], &udp4(src, dst, 40000, dport, data))
}

fn dgram6(src: Ipv6Addr, dst: Ipv6Addr, dport: u16, data: &[u8]) -> Vec<u8> {
    ipv6(src, dst, 17, 64, &udp6(&src, &dst, 40000, dport, data))
}

/// The error a correct responder must build for `req` (IP ID taken from `got`).
fn expected_error4(req: &Frame, quote: usize, got: &[u8]) -> Vec<u8> {
    let l2 = req.l2_len();
    let orig = &req.l3;
    let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&orig[..quote]);
    let c = inet_checksum(&[&icmp]);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let total = 20 + icmp.len();
    let mut ip = vec![0x45, (orig[1] & 0x1e) | 0xc0];
    ip.extend_from_slice(&(total as u16).to_be_bytes());
    ip.extend_from_slice(&got[l2 + 4..l2 + 6]); // fresh ID: whatever was chosen
    ip.extend_from_slice(&[0, 0, 64, 1, 0, 0]); // no DF, TTL 64, ICMP
    ip.extend_from_slice(&orig[16..20]); // from the address it was sent to
    ip.extend_from_slice(&orig[12..16]); // back to its source
    let c = inet_checksum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&icmp);
    let mut want = req.clone();
    want.dst_mac = req.src_mac;
    want.src_mac = req.dst_mac;
    want.l3 = ip;
    want.bytes()
}

fn expected_error6(req: &Frame, quote: usize) -> Vec<u8> {
    let orig = &req.l3;
    let src: Ipv6Addr = <[u8; 16]>::try_from(&orig[24..40]).unwrap().into();
    let dst: Ipv6Addr = <[u8; 16]>::try_from(&orig[8..24]).unwrap().into();
    let mut icmp = vec![1, 4, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&orig[..quote]);
    let fixed = icmpxdp_tests::icmp6(&src, &dst, 1, 4, [0; 4], &orig[..quote]);
    icmp[2..4].copy_from_slice(&fixed[2..4]);
    let mut want = req.clone();
    want.dst_mac = req.src_mac;
    want.src_mac = req.dst_mac;
    want.l3 = ipv6(src, dst, 58, 64, &icmp);
    want.bytes()
}

#[test]
fn ipv4_port_unreachable_exact_bytes() {
    let mut x = xdp();
    let rr = [7, 7, 4, 0, 0, 0, 0, 1]; // Record Route option, IHL 7
    let mut sent = 0;
    for vlans in 0..=2 {
        for (size, options) in [
            (0usize, &[][..]),
            (1, &[][..]),
            (100, &[][..]),
            (520, &[][..]),
            (521, &[][..]),
            (1400, &[][..]),
            (40, &rr[..]),
            (1400, &rr[..]),
        ] {
            let data = payload(size, size as u8);
            let mut l3 = ipv4(PEER4, US4, 17, 61, options, &udp4(PEER4, US4, 40000, CLOSED, &data));
            l3[1] = 0x2b; // TOS: the error keeps bits 0x1e, adds precedence 0xc0
            fix_ipv4_checksum(&mut l3);
            let req = Frame::new(ETH_P_IP, l3).with_vlans(vlans);
            let (action, out) = x.run(&req.bytes());
            assert_eq!(action, XDP_TX, "vlans {vlans} size {size} options {}", options.len());
            let quote = req.l3.len().min(576 - 28);
            assert_eq!(
                out,
                expected_error4(&req, quote, &out),
                "vlans {vlans} size {size} options {}",
                options.len()
            );
            let ip = &out[req.l2_len()..];
            assert!(checksum_ok(&[&ip[..20]]) && checksum_ok(&[&ip[20..]]));
            assert!(ip.len() <= 576, "RFC 1812: at most 576 bytes");
            sent += 1;
        }
    }
    let snap = Snapshot::of(&x.responder).unwrap();
    assert_eq!(snap.verdict(Reason::UnreachableSent), sent);
    assert_eq!(snap.sent(Family::V4, 3), sent);
    assert_eq!(snap.action(Action::Tx), sent);
}

#[test]
fn ipv6_port_unreachable_exact_bytes() {
    let mut x = xdp();
    let mut sent = 0;
    for vlans in 0..=2 {
        for size in [0usize, 1, 200, 1184, 1185, 1400] {
            let req = Frame::new(ETH_P_IPV6, dgram6(PEER6, US6, CLOSED, &payload(size, 3))).with_vlans(vlans);
            let (action, out) = x.run(&req.bytes());
            assert_eq!(action, XDP_TX, "vlans {vlans} size {size}");
            let quote = req.l3.len().min(1280 - 48);
            assert_eq!(out, expected_error6(&req, quote), "vlans {vlans} size {size}");
            let ip = &out[req.l2_len()..];
            assert!(icmp6_checksum_ok(&US6, &PEER6, &ip[40..]));
            assert!(ip.len() <= 1280, "RFC 4443: at most the minimum MTU");
            sent += 1;
        }
    }
    assert_eq!(Snapshot::of(&x.responder).unwrap().sent(Family::V6, 1), sent);
}

#[test]
fn quote_length_is_configurable_down_to_header_plus_8() {
    let cfg = Config {
        v4_error_size: 56,
        v6_error_size: 96,
        ..unlimited()
    };
    let mut x = xdp_with(cfg);
    let req = Frame::new(ETH_P_IP, dgram4(PEER4, US4, CLOSED, &payload(300, 1)));
    let (a, out) = x.run(&req.bytes());
    assert_eq!(a, XDP_TX);
    assert_eq!(out, expected_error4(&req, 28, &out), "IP header + 8 bytes");
    // With options the minimum quote grows with the header (RFC 792).
    let opts = [7, 7, 4, 0, 0, 0, 0, 1];
    let with_opts = Frame::new(
        ETH_P_IP,
        ipv4(
            PEER4,
            US4,
            17,
            64,
            &opts,
            &udp4(PEER4, US4, 1, CLOSED, &payload(300, 2)),
        ),
    );
    let (a, out) = x.run(&with_opts.bytes());
    assert_eq!(a, XDP_TX);
    assert_eq!(out, expected_error4(&with_opts, 28 + 8, &out));
    let req6 = Frame::new(ETH_P_IPV6, dgram6(PEER6, US6, CLOSED, &payload(300, 1)));
    let (a, out) = x.run(&req6.bytes());
    assert_eq!(a, XDP_TX);
    assert_eq!(out, expected_error6(&req6, 48));
}

/// Runs `frame`: XDP_PASS (or `action`), unchanged, `reason` counted once.
fn assert_not_answered(x: &mut Xdp, frame: &[u8], reason: Reason, action: u32, what: &str) {
    let before = x.verdict(reason);
    let (got, out) = x.run(frame);
    assert_eq!(got, action, "{what}: action");
    if action == XDP_PASS {
        assert_eq!(out, frame, "{what}: passed untouched");
    }
    assert_eq!(x.verdict(reason), before + 1, "{what}: counted as {reason:?}");
}

#[test]
fn socket_policy_follows_real_sockets() {
    let mut x = xdp();
    // BPF_PROG_TEST_RUN runs in this process's network namespace, so a
    // socket bound here is what bpf_sk_lookup_udp finds.
    let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let frame = Frame::new(ETH_P_IP, dgram4(PEER4, US4, port, b"hello")).bytes();
    assert_not_answered(&mut x, &frame, Reason::PortOpen, XDP_PASS, "bound v4 port");
    drop(sock);
    let (a, _) = x.run(&frame);
    assert_eq!(a, XDP_TX, "closing the socket closes the port");

    let sock6 = UdpSocket::bind("[::]:0").unwrap();
    let port6 = sock6.local_addr().unwrap().port();
    let frame6 = Frame::new(ETH_P_IPV6, dgram6(PEER6, US6, port6, b"hello")).bytes();
    assert_not_answered(&mut x, &frame6, Reason::PortOpen, XDP_PASS, "bound v6 port");
    drop(sock6);
    assert_eq!(x.run(&frame6).0, XDP_TX);
}

#[test]
fn static_port_lists_and_their_precedence() {
    let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
    let bound = sock.local_addr().unwrap().port();
    let mut ports = PortBitmaps(vec![0; PORT_SLOTS as usize]);
    let file = icmp_user::config::FileConfig::from_toml(&format!(
        "[unreachable]\nclosed_ports = [{bound}, \"33434-33534\"]\nopen_ports = [33500]\n"
    ))
    .unwrap();
    ports.0 = file.port_bitmaps().unwrap().0;
    let mut x = xdp();
    x.responder.set_ports(&ports).unwrap();
    let f = |port| Frame::new(ETH_P_IP, dgram4(PEER4, US4, port, b"x")).bytes();
    assert_eq!(x.run(&f(bound)).0, XDP_TX, "listed closed wins over a bound socket");
    assert_eq!(x.run(&f(33434)).0, XDP_TX);
    assert_not_answered(
        &mut x,
        &f(33500),
        Reason::PortOpen,
        XDP_PASS,
        "listed open wins over listed closed",
    );

    // Policy "listed": only listed closed ports get errors.
    let listed = Config {
        flags: unlimited().flags & !FLAG_PORTS_BY_SOCKET,
        ..unlimited()
    };
    let mut x = xdp_with(listed);
    x.responder.set_ports(&ports).unwrap();
    assert_not_answered(
        &mut x,
        &f(40001),
        Reason::PortOpen,
        XDP_PASS,
        "unlisted port under policy listed",
    );
    assert_eq!(x.run(&f(33434)).0, XDP_TX);
    drop(sock);
}

/// UDP to a port listed open (`ports.open`) is open whatever else is true
/// of it, so the program passes it on its fast path, before the headers are
/// checked and the config read (README: *Verdicts*): untouched, `port_open`,
/// even to a broadcast address or with a bad header checksum. A fragment is
/// not (a later fragment's bytes where a UDP header would be are payload),
/// and once the list is emptied the same datagram gets its error again.
#[test]
fn udp_to_a_port_listed_open_is_passed_before_its_headers_are_checked() {
    const OPEN: u16 = 33500;
    let file = icmp_user::config::FileConfig::from_toml(&format!(
        "[unreachable]\nclosed_ports = [\"33434-33534\"]\nopen_ports = [{OPEN}]\n"
    ))
    .unwrap();
    let listed = file.port_bitmaps().unwrap();
    let mut x = xdp();
    x.responder.set_ports(&listed).unwrap();
    let v4 = |dst| Frame::new(ETH_P_IP, dgram4(PEER4, dst, OPEN, b"x")).bytes();
    x.assert_passed(&v4(US4), Reason::PortOpen, "v4 to us");
    x.assert_passed(
        &Frame::new(ETH_P_IPV6, dgram6(PEER6, US6, OPEN, b"x")).bytes(),
        Reason::PortOpen,
        "v6 to us",
    );
    x.assert_passed(&v4(BCAST4), Reason::PortOpen, "v4 to the subnet broadcast");
    let mut bad_sum = dgram4(PEER4, US4, OPEN, b"x");
    bad_sum[10] ^= 0xff;
    x.assert_passed(
        &Frame::new(ETH_P_IP, bad_sum).bytes(),
        Reason::PortOpen,
        "v4 with a bad header checksum",
    );

    // A later fragment whose payload reads like a UDP header to OPEN.
    let mut later = dgram4(PEER4, US4, OPEN, &payload(64, 1));
    later[6..8].copy_from_slice(&185u16.to_be_bytes());
    fix_ipv4_checksum(&mut later);
    x.assert_passed(
        &Frame::new(ETH_P_IP, later).bytes(),
        Reason::SuppressedNonFirstFragment,
        "a later fragment is not read as UDP",
    );
    let mut first = dgram4(PEER4, US4, OPEN, &payload(64, 1));
    first[6] = 0x20; // MF, offset 0
    fix_ipv4_checksum(&mut first);
    x.assert_passed(
        &Frame::new(ETH_P_IP, first).bytes(),
        Reason::Fragment,
        "a first fragment is the kernel's to reassemble",
    );

    // Emptied: the port is closed again (listed closed, 33434-33534).
    let mut none = listed.clone();
    none.0.iter_mut().take(PORT_WORDS as usize).for_each(|w| *w = 0);
    x.responder.set_ports(&none).unwrap();
    assert_eq!(x.run(&v4(US4)).0, XDP_TX, "no longer open: Port Unreachable");
}

#[test]
fn rule2_no_error_about_broadcast_or_multicast_destinations() {
    let mut x = xdp();
    for dst in [
        Ipv4Addr::BROADCAST,
        BCAST4,
        Ipv4Addr::new(224, 0, 0, 251),
        Ipv4Addr::new(239, 1, 2, 3),
    ] {
        let f = Frame::new(ETH_P_IP, dgram4(PEER4, dst, CLOSED, b"x")).bytes();
        assert_not_answered(
            &mut x,
            &f,
            Reason::SuppressedBroadcastDestination,
            XDP_PASS,
            &format!("to {dst}"),
        );
    }
    let f6 = Frame::new(ETH_P_IPV6, dgram6(PEER6, "ff02::1".parse().unwrap(), CLOSED, b"x")).bytes();
    assert_not_answered(
        &mut x,
        &f6,
        Reason::SuppressedBroadcastDestination,
        XDP_PASS,
        "to ff02::1",
    );
    assert_eq!(Snapshot::of(&x.responder).unwrap().action(Action::Tx), 0);
}

#[test]
fn rule3_no_error_about_link_layer_broadcast_frames() {
    let mut x = xdp();
    let mut f = Frame::new(ETH_P_IP, dgram4(PEER4, US4, CLOSED, b"x"));
    f.dst_mac = [0xff; 6];
    assert_not_answered(
        &mut x,
        &f.bytes(),
        Reason::SuppressedLinkBroadcast,
        XDP_PASS,
        "ff:ff:ff:ff:ff:ff",
    );
    f.dst_mac = [0x01, 0x00, 0x5e, 0, 0, 1];
    assert_not_answered(
        &mut x,
        &f.bytes(),
        Reason::SuppressedLinkBroadcast,
        XDP_PASS,
        "IPv4 multicast MAC",
    );
    let mut f6 = Frame::new(ETH_P_IPV6, dgram6(PEER6, US6, CLOSED, b"x"));
    f6.dst_mac = [0x33, 0x33, 0, 0, 0, 1];
    assert_not_answered(
        &mut x,
        &f6.bytes(),
        Reason::SuppressedLinkBroadcast,
        XDP_PASS,
        "IPv6 multicast MAC",
    );
}

#[test]
fn rule4_no_error_about_non_first_fragments() {
    let mut x = xdp();
    let mut l3 = dgram4(PEER4, US4, CLOSED, &payload(64, 1));
    l3[6..8].copy_from_slice(&185u16.to_be_bytes()); // offset 185 × 8 bytes
    fix_ipv4_checksum(&mut l3);
    let f = Frame::new(ETH_P_IP, l3).bytes();
    assert_not_answered(
        &mut x,
        &f,
        Reason::SuppressedNonFirstFragment,
        XDP_PASS,
        "v4 offset 185",
    );
    // The first fragment is the kernel's to reassemble (not a suppression).
    let mut first = dgram4(PEER4, US4, CLOSED, &payload(64, 1));
    first[6] = 0x20; // MF, offset 0
    fix_ipv4_checksum(&mut first);
    assert_not_answered(
        &mut x,
        &Frame::new(ETH_P_IP, first).bytes(),
        Reason::Fragment,
        XDP_PASS,
        "v4 first fragment",
    );

    let frag_hdr = |offset: u16| {
        let mut h = vec![17, 0];
        h.extend_from_slice(&((offset << 3) | 1).to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 9]);
        h
    };
    let mut body = frag_hdr(100);
    body.extend_from_slice(&payload(64, 1));
    let f6 = Frame::new(ETH_P_IPV6, ipv6(PEER6, US6, 44, 64, &body)).bytes();
    assert_not_answered(
        &mut x,
        &f6,
        Reason::SuppressedNonFirstFragment,
        XDP_PASS,
        "v6 offset 100",
    );
    let mut body = frag_hdr(0);
    body.extend_from_slice(&udp6(&PEER6, &US6, 1, CLOSED, b"x"));
    let f6 = Frame::new(ETH_P_IPV6, ipv6(PEER6, US6, 44, 64, &body)).bytes();
    assert_not_answered(&mut x, &f6, Reason::Fragment, XDP_PASS, "v6 first fragment");
    // Even when suppressed datagrams are dropped, fragments pass: their port
    // is unknown and they may belong to a datagram for an open port.
    let mut x = xdp_with(Config {
        flags: unlimited().flags | FLAG_DROP_SUPPRESSED,
        ..unlimited()
    });
    assert_not_answered(
        &mut x,
        &f,
        Reason::SuppressedNonFirstFragment,
        XDP_PASS,
        "dropping never drops fragments",
    );
}

#[test]
fn rule5_no_error_about_sources_that_are_not_single_hosts() {
    let mut x = xdp();
    for src in [
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::new(0, 1, 2, 3),
        Ipv4Addr::LOCALHOST,
        Ipv4Addr::new(224, 0, 0, 1),
        Ipv4Addr::new(240, 0, 0, 1),
        Ipv4Addr::BROADCAST,
        BCAST4,
    ] {
        let f = Frame::new(ETH_P_IP, dgram4(src, US4, CLOSED, b"x")).bytes();
        assert_not_answered(
            &mut x,
            &f,
            Reason::SuppressedBadSource,
            XDP_PASS,
            &format!("from {src}"),
        );
    }
    for src in [Ipv6Addr::UNSPECIFIED, Ipv6Addr::LOCALHOST, "ff02::1".parse().unwrap()] {
        let f = Frame::new(ETH_P_IPV6, dgram6(src, US6, CLOSED, b"x")).bytes();
        assert_not_answered(
            &mut x,
            &f,
            Reason::SuppressedBadSource,
            XDP_PASS,
            &format!("from {src}"),
        );
    }
    // 240.0.0.0/4 is configurable (RFC 1812 §4.2.2.11 (e)).
    let lax = Config {
        flags: unlimited().flags & !FLAG_RESERVED_SOURCE_INVALID,
        ..unlimited()
    };
    let mut x = xdp_with(lax);
    let f = Frame::new(ETH_P_IP, dgram4(Ipv4Addr::new(240, 0, 0, 1), US4, CLOSED, b"x")).bytes();
    assert_eq!(x.run(&f).0, XDP_TX, "240/4 treated as hosts when configured");
}

#[test]
fn suppressed_datagrams_can_be_dropped() {
    let mut x = xdp_with(Config {
        flags: unlimited().flags | FLAG_DROP_SUPPRESSED,
        ..unlimited()
    });
    let f = Frame::new(ETH_P_IP, dgram4(PEER4, Ipv4Addr::BROADCAST, CLOSED, b"x")).bytes();
    assert_not_answered(&mut x, &f, Reason::SuppressedBroadcastDestination, XDP_DROP, "dropped");
    let f = Frame::new(ETH_P_IP, dgram4(Ipv4Addr::LOCALHOST, US4, CLOSED, b"x")).bytes();
    assert_not_answered(&mut x, &f, Reason::SuppressedBadSource, XDP_DROP, "dropped");
    // A broadcast to an open port is not a suppression at all: delivered.
    let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let f = Frame::new(ETH_P_IP, dgram4(PEER4, Ipv4Addr::BROADCAST, port, b"x")).bytes();
    assert_not_answered(&mut x, &f, Reason::PortOpen, XDP_PASS, "broadcast to an open port");
    assert_eq!(Snapshot::of(&x.responder).unwrap().action(Action::Drop), 2);
}

#[test]
fn malformed_udp_is_never_answered() {
    let mut x = xdp();
    let good = dgram4(PEER4, US4, CLOSED, &payload(40, 1));
    let set_udp_len = |l3: &mut Vec<u8>, len: u16| l3[24..26].copy_from_slice(&len.to_be_bytes());
    let mut lying = good.clone();
    set_udp_len(&mut lying, 200);
    let mut short = good.clone();
    set_udp_len(&mut short, 7);
    let mut cut = good[..24].to_vec();
    cut[2..4].copy_from_slice(&24u16.to_be_bytes());
    fix_ipv4_checksum(&mut cut);
    let mut ip_lies = good.clone();
    ip_lies[2..4].copy_from_slice(&300u16.to_be_bytes());
    fix_ipv4_checksum(&mut ip_lies);
    for (what, l3) in [
        ("UDP length beyond the IP payload", lying),
        ("UDP length below its header", short),
        ("UDP header cut short", cut),
        ("datagram shorter than its IP header claims", ip_lies),
    ] {
        assert_not_answered(
            &mut x,
            &Frame::new(ETH_P_IP, l3).bytes(),
            Reason::Malformed,
            XDP_PASS,
            what,
        );
    }
    let mut l3 = dgram6(PEER6, US6, CLOSED, &payload(40, 1));
    l3[44..46].copy_from_slice(&300u16.to_be_bytes());
    assert_not_answered(
        &mut x,
        &Frame::new(ETH_P_IPV6, l3).bytes(),
        Reason::Malformed,
        XDP_PASS,
        "v6 UDP length lies",
    );
    let cut6 = ipv6(PEER6, US6, 17, 64, &[0x9c, 0x40, 0x82]);
    assert_not_answered(
        &mut x,
        &Frame::new(ETH_P_IPV6, cut6).bytes(),
        Reason::Malformed,
        XDP_PASS,
        "v6 UDP header cut",
    );
    assert_eq!(Snapshot::of(&x.responder).unwrap().action(Action::Tx), 0);
}

#[test]
fn not_ours_and_disabled() {
    let mut x = xdp();
    let f = Frame::new(ETH_P_IP, dgram4(PEER4, Ipv4Addr::new(192, 0, 2, 50), CLOSED, b"x")).bytes();
    assert_not_answered(&mut x, &f, Reason::NotOurs, XDP_PASS, "another host's datagram");
    let mut x = xdp_with(Config {
        flags: unlimited().flags & !FLAG_UNREACH_V4,
        ..unlimited()
    });
    let f = Frame::new(ETH_P_IP, dgram4(PEER4, US4, CLOSED, b"x")).bytes();
    assert_not_answered(&mut x, &f, Reason::Disabled, XDP_PASS, "unreachables off");
    // An ICMP error to us is never a candidate: the kernel gets it.
    let err = ipv4(
        PEER4,
        US4,
        1,
        64,
        &[],
        &icmp4(3, 3, [0; 4], &dgram4(US4, PEER4, 9, b"q")),
    );
    assert_not_answered(
        &mut x,
        &Frame::new(ETH_P_IP, err).bytes(),
        Reason::NotEchoRequest,
        XDP_PASS,
        "ICMP error",
    );
}
