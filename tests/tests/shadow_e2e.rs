//! Shadow mode (`mode = "shadow"`): icmpxdp decides, rate-limits and counts
//! as in active mode, and the kernel answers. The reply a client gets is
//! byte for byte the kernel's; icmpxdp's counters say what it would have
//! done; a reload to active mode loses no reply.

use std::{
    io::ErrorKind,
    mem::MaybeUninit,
    net::SocketAddr,
    process::Command,
    time::{Duration, Instant},
};

use icmp_user::lab::{self, Lab, sysctl_in};
use icmpxdp_tests::{
    fix_ipv4_checksum, icmp4, icmpxdp_bin, in_netns, ipv4, output, payload, run_responder, stats_json, unique_lab,
};
use socket2::{Domain, Protocol, Socket, Type};

/// Sends one exact IPv4 echo request (DF set, IP ID 0x4242) from the client
/// and returns the echo reply it gets, IP header included.
fn echo_reply(l: &Lab, ident: u16) -> Option<Vec<u8>> {
    let mut request = ipv4(
        lab::CLIENT_V4,
        lab::RESPONDER_V4,
        1,
        64,
        &[],
        &icmp4(8, 0, [(ident >> 8) as u8, ident as u8, 0, 1], &payload(40, 7)),
    );
    request[4..6].copy_from_slice(&0x4242u16.to_be_bytes());
    request[6] |= 0x40; // DF
    fix_ipv4_checksum(&mut request);
    in_netns(&l.client_ns, move || {
        let raw = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).unwrap();
        raw.set_header_included_v4(true).unwrap();
        let to: SocketAddr = (lab::RESPONDER_V4, 0).into();
        raw.send_to(&request, &to.into()).unwrap();
        let end = Instant::now() + Duration::from_secs(2);
        let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
        while Instant::now() < end {
            raw.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
            match raw.recv(&mut buf) {
                Ok(n) => {
                    // SAFETY: recv initialised the first n bytes.
                    let p: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
                    if p.len() >= 28 && p[20] == 0 && p[24..26] == ident.to_be_bytes() {
                        return Some(p);
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("raw recv: {e}"),
            }
        }
        None
    })
}

/// The fields two kernel replies to the same request may differ in: the
/// IP ID (fresh for every packet Linux sends) and so the header checksum.
fn mask(p: &[u8]) -> Vec<u8> {
    let mut p = p.to_vec();
    p[4..6].fill(0);
    p[10..12].fill(0);
    p
}

#[test]
fn shadow_mode_counts_what_it_would_do_and_the_kernel_answers() {
    let l = unique_lab();
    let instance = l.instance();
    // The kernel answers in this test (the lab switches that off).
    sysctl_in(&l.responder_ns, "net.ipv4.icmp_echo_ignore_all", "0").unwrap();

    let kernel = echo_reply(&l, 0x51).expect("the kernel answers without icmpxdp");
    assert_eq!(kernel[6] & 0x40, 0, "Linux's echo reply has DF clear");

    let mut run = run_responder(&l, &["--set", "mode=shadow"]);
    let shadow = echo_reply(&l, 0x51).expect("answered in shadow mode");
    assert_eq!(
        mask(&shadow),
        mask(&kernel),
        "the reply is the kernel's, byte for byte (an XDP reply would keep the request's DF and ID)"
    );
    let s = stats_json(&instance);
    assert_eq!(s["mode"], "shadow", "{s}");
    assert_eq!(s["verdicts"]["echo_answered"], 1, "it would have answered: {s}");
    assert_eq!(s["sent"]["ipv4"]["echo_reply"], 1, "{s}");
    assert_eq!(s["actions"]["tx"], 0, "but sent nothing: {s}");
    let (ok, status, _) = output(Command::new(icmpxdp_bin()).arg("status"));
    assert!(ok && status.contains("SHADOW"), "{status}");

    // The flip to active, under a ping stream: no reply lost, none doubled.
    let mut ping = l.client_command("ping");
    ping.args([
        "-c",
        "300",
        "-i",
        "0.01",
        "-W",
        "1",
        "-w",
        "10",
        "-n",
        &lab::RESPONDER_V4.to_string(),
    ]);
    let pinger = std::thread::spawn(move || output(&mut ping));
    std::thread::sleep(Duration::from_millis(1000));
    let (ok, out, err) = output(Command::new(icmpxdp_bin()).args([
        "--netns",
        &l.responder_ns,
        "reload",
        "--iface",
        &l.responder_if,
        "--set",
        "mode=active",
    ]));
    assert!(ok, "{out}{err}");
    let (_, ping_out, _) = pinger.join().unwrap();
    let (sent, received) = icmpxdp_tests::ping_counts(&ping_out);
    assert_eq!((sent, received), (300, 300), "{ping_out}");
    assert!(!ping_out.contains("DUP!"), "no reply twice: {ping_out}");
    let s = stats_json(&instance);
    assert_eq!(s["mode"], "active", "{s}");
    let tx = s["actions"]["tx"].as_u64().unwrap();
    assert!(
        tx > 0 && tx < 300,
        "XDP answered after the flip, the kernel before it: {s}"
    );
    assert!(run.stop().success());
}
