//! Port Unreachable end to end with real clients: the kernel's own answer
//! compared byte for byte with ours; ECONNREFUSED on a connected socket,
//! `traceroute`, and a socket bound in the responder opening its port.

use std::{
    io::ErrorKind,
    mem::MaybeUninit,
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use icmp_user::lab::{self, Lab};
use icmpxdp_tests::{
    block_kernel_unreachables, fix_ipv4_checksum, in_netns, ipv4, output, run_responder, stats_json, udp4, unique_lab,
};
use socket2::{Domain, Protocol, Socket, Type};

fn recv_matching(raw: &Socket, deadline: Duration, want: impl Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
    let end = Instant::now() + deadline;
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    while Instant::now() < end {
        raw.set_read_timeout(Some(
            end.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ))
        .unwrap();
        match raw.recv(&mut buf) {
            Ok(n) => {
                // SAFETY: recv initialised the first n bytes.
                let got: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
                if want(&got) {
                    return Some(got);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return None,
            Err(e) => panic!("raw recv: {e}"),
        }
    }
    None
}

/// Sends one exact IPv4 UDP datagram from the client (raw, IP_HDRINCL, so
/// both runs send identical bytes) and returns the ICMP error it provokes,
/// IP header included.
fn v4_error_for(l: &Lab, datagram: Vec<u8>, dport: u16) -> Option<Vec<u8>> {
    in_netns(&l.client_ns, move || {
        let icmp = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).unwrap();
        let send = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP)).unwrap();
        send.set_header_included_v4(true).unwrap();
        let to: SocketAddr = (lab::RESPONDER_V4, 0).into();
        send.send_to(&datagram, &to.into()).unwrap();
        recv_matching(&icmp, Duration::from_secs(2), |p| {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            // Destination Unreachable quoting our datagram's destination port.
            p.len() >= ihl + 8 + 28 && p[ihl] == 3 && p[ihl + 8 + 22..ihl + 8 + 24] == dport.to_be_bytes()
        })
    })
}

/// Sends a UDP datagram from a fixed client port to the responder and returns
/// the ICMPv6 message of the error it provokes (raw ICMPv6 sockets deliver
/// the message without the IPv6 header) and its source address.
fn v6_error_for(l: &Lab, sport: u16, dport: u16, payload: &'static [u8]) -> Option<(Vec<u8>, SocketAddr)> {
    in_netns(&l.client_ns, move || {
        let icmp = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).unwrap();
        let udp = UdpSocket::bind((lab::CLIENT_V6, sport)).unwrap();
        udp.send_to(payload, (lab::RESPONDER_V6, dport)).unwrap();
        let end = Instant::now() + Duration::from_secs(2);
        let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
        while Instant::now() < end {
            icmp.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
            if let Ok((n, from)) = icmp.recv_from(&mut buf) {
                // SAFETY: recv_from initialised the first n bytes.
                let m: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
                if m[0] == 1 && m.len() >= 8 + 48 && m[8 + 42..8 + 44] == dport.to_be_bytes() {
                    return Some((m, from.as_socket().unwrap()));
                }
            }
        }
        None
    })
}

#[test]
fn xdp_errors_match_the_kernels() {
    let l = unique_lab();
    let dport = 33455;
    let mut datagram = ipv4(
        lab::CLIENT_V4,
        lab::RESPONDER_V4,
        17,
        64,
        &[],
        &udp4(
            lab::CLIENT_V4,
            lab::RESPONDER_V4,
            45000,
            dport,
            b"differential test payload",
        ),
    );
    datagram[1] = 0x2b; // a TOS, to compare how both derive the error's TOS
    datagram[4..6].copy_from_slice(&0x4242u16.to_be_bytes());
    fix_ipv4_checksum(&mut datagram);

    // 1. The kernel answers (nothing attached).
    let kernel4 = v4_error_for(&l, datagram.clone(), dport).expect("the kernel sends Port Unreachable");
    let (kernel6, kernel6_from) = v6_error_for(&l, 45001, dport, b"differential v6").expect("kernel ICMPv6 error");

    // 2. The same datagrams with icmpxdp attached and the kernel's own
    // errors blocked, so what arrives is ours.
    block_kernel_unreachables(&l.responder_ns);
    let _run = run_responder(&l, &[]);
    let xdp4 = v4_error_for(&l, datagram, dport).expect("icmpxdp sends Port Unreachable");
    let (xdp6, xdp6_from) = v6_error_for(&l, 45001, dport, b"differential v6").expect("icmpxdp ICMPv6 error");

    // Fields that legitimately differ: the IPv4 ID (fresh per datagram on
    // both sides) and therefore the IPv4 header checksum.
    let mask = |p: &[u8]| {
        let mut p = p.to_vec();
        p[4..6].copy_from_slice(&[0, 0]);
        p[10..12].copy_from_slice(&[0, 0]);
        p
    };
    assert_eq!(xdp4.len(), kernel4.len(), "same length");
    assert_eq!(
        xdp4[1], kernel4[1],
        "TOS: kernel {:#x}, ours {:#x}",
        kernel4[1], xdp4[1]
    );
    assert_eq!(xdp4[6..8], kernel4[6..8], "flags (DF) and fragment offset");
    assert_eq!(xdp4[8], kernel4[8], "TTL");
    assert_eq!(xdp4[12..20], kernel4[12..20], "addresses");
    assert_eq!(xdp4[20..], kernel4[20..], "ICMP type, code, checksum and quote");
    assert_eq!(mask(&xdp4), mask(&kernel4), "everything else");

    assert_eq!(xdp6_from.ip(), kernel6_from.ip(), "ICMPv6 error source");
    assert_eq!(xdp6, kernel6, "ICMPv6 type, code, checksum and quote");
}

fn connected_udp(l: &Lab, v6: bool, dport: u16) -> Result<(), ErrorKind> {
    in_netns(&l.client_ns, move || {
        let (bind, to): (SocketAddr, SocketAddr) = if v6 {
            ((lab::CLIENT_V6, 0).into(), (lab::RESPONDER_V6, dport).into())
        } else {
            ((lab::CLIENT_V4, 0).into(), (lab::RESPONDER_V4, dport).into())
        };
        let s = UdpSocket::bind(bind).unwrap();
        s.connect(to).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        s.send(b"anyone there?").unwrap();
        let mut buf = [0u8; 64];
        match s.recv(&mut buf) {
            Ok(_) => Ok(()),
            Err(e) => Err(e.kind()),
        }
    })
}

#[test]
fn connected_socket_sees_econnrefused_from_xdp() {
    let l = unique_lab();
    block_kernel_unreachables(&l.responder_ns);
    // Without icmpxdp the kernel's error is blocked: silence.
    for v6 in [false, true] {
        let r = connected_udp(&l, v6, 9);
        assert!(
            matches!(r, Err(ErrorKind::WouldBlock | ErrorKind::TimedOut)),
            "v6={v6}: {r:?}"
        );
    }
    let _run = run_responder(&l, &[]);
    assert_eq!(connected_udp(&l, false, 9), Err(ErrorKind::ConnectionRefused));
    assert_eq!(connected_udp(&l, true, 9), Err(ErrorKind::ConnectionRefused));
    let s = stats_json(&l.instance());
    assert_eq!(s["sent"]["ipv4"]["destination_unreachable"], 1, "{s}");
    assert_eq!(s["sent"]["ipv6"]["destination_unreachable"], 1, "{s}");
    assert_eq!(s["verdicts"]["unreachable_sent"], 2, "{s}");
}

fn traceroute(l: &Lab, v6: bool) -> String {
    let mut cmd = l.client_command("traceroute");
    if v6 {
        cmd.arg("-6");
    }
    // UDP probes (the default), numeric, 1 probe per hop, 1 s wait, 3 hops.
    cmd.args(["-n", "-q", "1", "-w", "1", "-m", "3"]);
    cmd.arg(if v6 {
        lab::RESPONDER_V6.to_string()
    } else {
        lab::RESPONDER_V4.to_string()
    });
    let (_, out, err) = output(&mut cmd);
    assert!(out.contains("traceroute to"), "traceroute did not run: {err}");
    out
}

#[test]
fn traceroute_completes_at_the_responder() {
    let l = unique_lab();
    block_kernel_unreachables(&l.responder_ns);
    let silent = traceroute(&l, false);
    assert!(
        silent.contains(" 1  *"),
        "without XDP the kernel's errors are blocked: {silent}"
    );
    let _run = run_responder(&l, &[]);
    for v6 in [false, true] {
        let out = traceroute(&l, v6);
        let target = if v6 {
            lab::RESPONDER_V6.to_string()
        } else {
            lab::RESPONDER_V4.to_string()
        };
        let hops: Vec<&str> = out.lines().skip(1).collect();
        assert_eq!(hops.len(), 1, "reached in one hop, then stopped: {out}");
        assert!(hops[0].trim_start().starts_with(&format!("1  {target} ")), "{out}");
    }
}

#[test]
fn binding_a_socket_opens_the_port() {
    let l = unique_lab();
    block_kernel_unreachables(&l.responder_ns);
    let _run = run_responder(&l, &[]);
    let port = 47001;
    assert_eq!(
        connected_udp(&l, false, port),
        Err(ErrorKind::ConnectionRefused),
        "closed at first"
    );
    let server = in_netns(&l.responder_ns, move || {
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s
    });
    let r = connected_udp(&l, false, port);
    assert!(
        matches!(r, Err(ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "open port: no error, got {r:?}"
    );
    let mut buf = [0u8; 64];
    let (n, from) = server
        .recv_from(&mut buf)
        .expect("the datagram reached the bound socket");
    assert_eq!(&buf[..n], b"anyone there?");
    assert_eq!(from.ip(), lab::CLIENT_V4);
    drop(server);
    assert_eq!(
        connected_udp(&l, false, port),
        Err(ErrorKind::ConnectionRefused),
        "closed again"
    );
    let s = stats_json(&l.instance());
    assert_eq!(s["verdicts"]["port_open"], 1, "{s}");
}

/// The same real clients with the program in skb (generic) mode, the mode
/// `--mode auto` falls back to on a driver without native XDP: ping and a
/// connected UDP socket, the kernel's own replies and errors silenced.
#[test]
fn echo_and_econnrefused_in_skb_mode() {
    let l = unique_lab();
    block_kernel_unreachables(&l.responder_ns);
    let run = run_responder(&l, &["--mode", "skb"]);
    let attached = run.stdout_lines.last().unwrap();
    assert!(attached.contains("skb mode"), "{attached}");
    assert_eq!(icmpxdp_tests::ping(&l, false, 3), (3, 3), "IPv4 echo in skb mode");
    assert_eq!(icmpxdp_tests::ping(&l, true, 3), (3, 3), "IPv6 echo in skb mode");
    assert_eq!(connected_udp(&l, false, 9), Err(ErrorKind::ConnectionRefused));
    assert_eq!(connected_udp(&l, true, 9), Err(ErrorKind::ConnectionRefused));
    let s = stats_json(&l.instance());
    assert_eq!(s["verdicts"]["echo_answered"], 6, "{s}");
    assert_eq!(s["verdicts"]["unreachable_sent"], 2, "{s}");
}
