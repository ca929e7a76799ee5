//! Protocol Unreachable (`[protocol_unreachable]`): a datagram to us of a
//! protocol that is neither open by config nor bound by a raw socket gets
//! IPv4 Destination Unreachable code 2 / ICMPv6 Parameter Problem code 1
//! pointing at the Next Header field, as Linux sends — checked through
//! BPF_PROG_TEST_RUN (exact bytes, written from RFC 792 / RFC 4443) and end
//! to end against Linux's own error, with a raw socket opening a protocol.

use std::{
    mem::MaybeUninit,
    net::{Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use icmp_common::{Config, Reason, config::FLAG_PROTO_UNREACH, ratelimit::Limit};
use icmp_user::lab;
use icmpxdp_tests::{
    BCAST4, ETH_P_IP, ETH_P_IPV6, Frame, PEER4, PEER6, US4, US6, XDP_TX, Xdp, block_kernel_unreachables, checksum_ok,
    icmp6_checksum_ok, in_netns, inet_checksum, ipv4, ipv6, payload, run_responder, stats_json, unique_lab,
};
use socket2::{Domain, Protocol, Socket, Type};

fn enabled() -> Config {
    Config {
        flags: Config::default().flags | FLAG_PROTO_UNREACH,
        per_source: Limit::UNLIMITED,
        global: Limit::UNLIMITED,
        ..Config::default()
    }
}

fn xdp(cfg: Config) -> Xdp {
    let mut x = Xdp::load(cfg, &[US4], &[BCAST4], &[US6]);
    x.responder.set_closed_protocols(&cfg).unwrap();
    x
}

#[test]
fn ipv4_protocol_unreachable_exact_bytes() {
    let mut x = xdp(enabled());
    let req = Frame::new(ETH_P_IP, ipv4(PEER4, US4, 253, 64, &[], &payload(100, 3)));
    let (action, out) = x.run(&req.bytes());
    assert_eq!(action, XDP_TX);
    // RFC 792 / RFC 1812 §4.3.2.3: IP header (TOS (orig & 0x1e) | 0xc0, as
    // Linux), ICMP 3/2, unused 0, the whole 120-byte datagram quoted.
    let l3 = &out[14..];
    assert_eq!(u16::from_be_bytes([l3[2], l3[3]]) as usize, 20 + 8 + 120);
    assert_eq!(l3[1], 0xc0);
    assert_eq!((l3[8], l3[9]), (64, 1));
    assert!(checksum_ok(&[&l3[..20]]));
    assert_eq!(&l3[12..16], &US4.octets());
    assert_eq!(&l3[16..20], &PEER4.octets());
    let icmp = &l3[20..];
    assert_eq!(&icmp[..2], &[3, 2], "Destination Unreachable, Protocol Unreachable");
    assert_eq!(&icmp[4..8], &[0; 4]);
    assert_eq!(&icmp[8..], &req.l3[..], "the datagram quoted");
    assert_eq!(inet_checksum(&[icmp]), 0);
    assert_eq!(x.verdict(Reason::ProtocolUnreachableSent), 1);
}

#[test]
fn ipv6_parameter_problem_points_at_the_next_header() {
    let mut x = xdp(enabled());
    let req = Frame::new(ETH_P_IPV6, ipv6(PEER6, US6, 253, 64, &payload(60, 4)));
    let (action, out) = x.run(&req.bytes());
    assert_eq!(action, XDP_TX);
    let l3 = &out[14..];
    assert_eq!(l3[6], 58);
    assert_eq!(&l3[8..24], &US6.octets());
    assert_eq!(&l3[24..40], &PEER6.octets());
    let icmp = &l3[40..];
    // RFC 4443 §3.4: type 4, code 1 (unrecognized Next Header), pointer to
    // the offending octet: the Next Header field, offset 6.
    assert_eq!(&icmp[..2], &[4, 1]);
    assert_eq!(&icmp[4..8], &6u32.to_be_bytes());
    assert_eq!(&icmp[8..], &req.l3[..]);
    assert!(icmp6_checksum_ok(&US6, &PEER6, icmp));
}

#[test]
fn open_protocols_broadcasts_and_the_switch_pass() {
    let mut off = xdp(Config {
        per_source: Limit::UNLIMITED,
        ..Config::default()
    });
    let p253 = |dst: Ipv4Addr| Frame::new(ETH_P_IP, ipv4(PEER4, dst, 253, 64, &[], &payload(20, 1))).bytes();
    off.assert_passed(&p253(US4), Reason::OtherProtocol, "off by default");
    let mut x = xdp(enabled());
    let tcp = Frame::new(ETH_P_IP, ipv4(PEER4, US4, 6, 64, &[], &payload(20, 1))).bytes();
    x.assert_passed(&tcp, Reason::OtherProtocol, "TCP is open");
    x.assert_passed(
        &p253(BCAST4),
        Reason::SuppressedBroadcastDestination,
        "no error about a broadcast",
    );
    x.assert_passed(&p253(Ipv4Addr::new(198, 51, 100, 1)), Reason::NotOurs, "not ours");
    // A raw socket for 253 in this namespace opens it (as a loaded handler).
    let _raw = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(253))).unwrap();
    x.responder.set_closed_protocols(&enabled()).unwrap();
    x.assert_passed(&p253(US4), Reason::OtherProtocol, "a raw socket for 253");
}

/// Sends one IPv4 datagram of protocol 253 from the client (raw,
/// IP_HDRINCL) and returns the ICMP error about it, IP header included.
fn error_for(l: &lab::Lab, datagram: Vec<u8>) -> Option<Vec<u8>> {
    in_netns(&l.client_ns, move || {
        let icmp = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).unwrap();
        let send = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(253))).unwrap();
        send.set_header_included_v4(true).unwrap();
        let to: SocketAddr = (lab::RESPONDER_V4, 0).into();
        send.send_to(&datagram, &to.into()).unwrap();
        let end = Instant::now() + Duration::from_secs(2);
        let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
        while Instant::now() < end {
            icmp.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
            if let Ok(n) = icmp.recv(&mut buf) {
                // SAFETY: recv initialised the first n bytes.
                let p: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
                if p.len() >= 48 && p[20] == 3 && p[20 + 8 + 9] == 253 {
                    return Some(p);
                }
            }
        }
        None
    })
}

#[test]
fn matches_linux_and_a_raw_socket_opens_the_protocol() {
    let l = unique_lab();
    let mut datagram = ipv4(lab::CLIENT_V4, lab::RESPONDER_V4, 253, 64, &[], &payload(64, 9));
    datagram[1] = 0x2b;
    icmpxdp_tests::fix_ipv4_checksum(&mut datagram);
    let kernel = error_for(&l, datagram.clone()).expect("Linux sends Protocol Unreachable");
    block_kernel_unreachables(&l.responder_ns);
    assert!(
        error_for(&l, datagram.clone()).is_none(),
        "the kernel's own error is blocked"
    );
    let _run = run_responder(&l, &["--set", "protocol_unreachable.enabled=true"]);
    let ours = error_for(&l, datagram.clone()).expect("icmpxdp sends Protocol Unreachable");
    let mask = |p: &[u8]| {
        let mut p = p.to_vec();
        p[4..6].fill(0); // IP ID: fresh on both sides
        p[10..12].fill(0); // and so the header checksum
        p
    };
    assert_eq!(mask(&ours), mask(&kernel), "byte for byte but the IP ID");
    let s = stats_json(&l.instance());
    assert_eq!(s["verdicts"]["protocol_unreachable_sent"], 1, "{s}");

    // A raw socket for 253 in the responder's namespace: within the run's
    // once-a-second refresh, 253 is open and nothing answers.
    let _raw = in_netns(&l.responder_ns, || {
        Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(253))).unwrap()
    });
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        error_for(&l, datagram).is_none(),
        "no error once a raw socket handles 253"
    );
    let s = stats_json(&l.instance());
    assert_eq!(s["verdicts"]["protocol_unreachable_sent"], 1, "{s}");
}
