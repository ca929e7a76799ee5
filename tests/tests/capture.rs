//! `icmpxdp capture`'s kernel side on the real program: while a capture
//! holds its lease, every decision is recorded with its verdict and action,
//! the frame as received and as sent; filters and sampling run in the
//! kernel; a capture dropped, or killed and left to expire, costs nothing
//! after.

use icmp_common::{Config, Reason, capture::CaptureRecord, ratelimit::Limit};
use icmp_user::dataplane::capture::{Capture, CaptureFilter, switch_on};
use icmpxdp_tests::{
    BCAST4, ETH_P_IP, ETH_P_IPV6, Frame, PEER4, PEER6, US4, US6, XDP_PASS, XDP_TX, Xdp, icmp4, icmp6, ipv4, ipv6,
    payload, udp4,
};

fn xdp() -> Xdp {
    Xdp::load(
        Config {
            per_source: Limit::UNLIMITED,
            global: Limit::UNLIMITED,
            ..Config::default()
        },
        &[US4],
        &[BCAST4],
        &[US6],
    )
}

fn attach(x: &mut Xdp, filter: CaptureFilter) -> Capture {
    let id = x.responder.program_id().expect("responder id");
    Capture::start(id, &filter).expect("start a capture")
}

fn drain(c: &mut Capture) -> Vec<CaptureRecord> {
    std::iter::from_fn(|| c.next_record()).collect()
}

fn echo4(seq: u8) -> Vec<u8> {
    Frame::new(
        ETH_P_IP,
        ipv4(PEER4, US4, 1, 64, &[], &icmp4(8, 0, [0, 1, 0, seq], &payload(40, seq))),
    )
    .bytes()
}

fn closed_udp() -> Vec<u8> {
    Frame::new(
        ETH_P_IP,
        ipv4(PEER4, US4, 17, 64, &[], &udp4(PEER4, US4, 40000, 9, b"x")),
    )
    .bytes()
}

fn echo6() -> Vec<u8> {
    Frame::new(
        ETH_P_IPV6,
        ipv6(PEER6, US6, 58, 64, &icmp6(&PEER6, &US6, 128, 0, [0, 2, 0, 1], b"six")),
    )
    .bytes()
}

#[test]
fn every_decision_is_captured_with_both_frames() {
    let mut x = xdp();
    let mut cap = attach(&mut x, CaptureFilter::default());
    let req = echo4(1);
    let (action, reply) = x.run(&req);
    assert_eq!(action, XDP_TX);
    let udp = closed_udp();
    let (action, error) = x.run(&udp);
    assert_eq!(action, XDP_TX);
    let other = Frame::new(0x0806, vec![0; 28]).bytes();
    assert_eq!(x.run(&other).0, XDP_PASS);

    let recs = drain(&mut cap);
    assert_eq!(recs.len(), 3, "one record per frame");
    let r = &recs[0];
    assert_eq!(Reason::from_index(u64::from(r.reason)), Reason::EchoAnswered);
    assert_eq!(u32::from(r.action), XDP_TX);
    assert_eq!(r.len_in as usize, req.len());
    assert_eq!(&r.frame_in[..r.caplen_in as usize], &req[..], "the request as received");
    assert_eq!(&r.frame_out[..r.caplen_out as usize], &reply[..], "the reply as sent");
    let r = &recs[1];
    assert_eq!(Reason::from_index(u64::from(r.reason)), Reason::UnreachableSent);
    assert_eq!(&r.frame_in[..r.caplen_in as usize], &udp[..]);
    assert_eq!(r.len_out as usize, error.len());
    assert_eq!(&r.frame_out[..r.caplen_out as usize], &error[..], "the whole error");
    let r = &recs[2];
    assert_eq!(Reason::from_index(u64::from(r.reason)), Reason::OtherProtocol);
    assert_eq!(u32::from(r.action), XDP_PASS);
    assert_eq!((r.len_out, r.caplen_out), (0, 0), "nothing sent");
    let s = cap.stats().unwrap();
    assert_eq!((s.seen, s.matched, s.written, s.lost), (3, 3, 3, 0));
}

#[test]
fn filters_sampling_and_snaplen_run_in_the_kernel() {
    let mut x = xdp();
    // Only IPv4 tx, 1 in 3, 20 bytes.
    let mut cap = attach(
        &mut x,
        CaptureFilter {
            actions: 1 << XDP_TX,
            family: 4,
            sample: 3,
            snaplen: 20,
            ..CaptureFilter::default()
        },
    );
    for seq in 0..9 {
        x.run(&echo4(seq));
        x.run(&echo6());
        x.run(&Frame::new(0x0806, vec![0; 28]).bytes());
    }
    let recs = drain(&mut cap);
    assert_eq!(recs.len(), 3, "9 matching, 1 in 3 kept");
    for r in &recs {
        assert_eq!(Reason::from_index(u64::from(r.reason)), Reason::EchoAnswered);
        assert_eq!((r.caplen_in, r.caplen_out), (20, 20), "snaplen");
        assert_eq!(r.len_in as usize, echo4(0).len(), "original length kept");
    }
    let s = cap.stats().unwrap();
    assert_eq!(s.seen, 27);
    assert_eq!(s.matched, 9);
    assert_eq!(s.sampled_out, 6);
    assert_eq!(s.written, 3);

    // By verdict: only unreachable_sent.
    drop(cap);
    let mut cap = attach(
        &mut x,
        CaptureFilter {
            reasons: 1 << Reason::UnreachableSent as u64,
            ..CaptureFilter::default()
        },
    );
    x.run(&echo4(1));
    x.run(&closed_udp());
    let recs = drain(&mut cap);
    assert_eq!(recs.len(), 1);
    assert_eq!(Reason::from_index(u64::from(recs[0].reason)), Reason::UnreachableSent);
}

#[test]
fn a_killed_capture_expires_and_a_second_one_is_refused_meanwhile() {
    let mut x = xdp();
    let cap = attach(&mut x, CaptureFilter::default());
    // As if killed: no stop, no renewal.
    std::mem::forget(cap);
    let id = x.responder.program_id().unwrap();
    let err = Capture::start(id, &CaptureFilter::default())
        .err()
        .expect("refused while the lease runs");
    assert!(err.to_string().contains("another capture is running"), "{err}");
    x.run(&echo4(1));
    std::thread::sleep(icmp_user::dataplane::capture::LEASE + std::time::Duration::from_millis(200));
    assert!(switch_on(id).unwrap(), "nothing has run since the lease ran out");
    // The first frame after expiry switches it off by itself.
    x.run(&echo4(9));
    assert!(!switch_on(id).unwrap(), "the program switched the expired capture off");
    let mut cap = Capture::start(id, &CaptureFilter::default()).expect("the lease expired");
    x.run(&echo4(2));
    let recs = drain(&mut cap);
    assert_eq!(
        recs.len(),
        1,
        "only the frame after the new capture started (stale records dropped)"
    );
    assert_eq!(recs[0].frame_in[..echo4(2).len()], echo4(2)[..]);
}

#[test]
fn a_dropped_capture_leaves_the_responder_as_it_was() {
    let mut x = xdp();
    let cap = attach(&mut x, CaptureFilter::default());
    drop(cap);
    // A second capture sees only what came after it attached.
    x.run(&echo4(1));
    let mut cap = attach(&mut x, CaptureFilter::default());
    x.run(&echo4(2));
    let recs = drain(&mut cap);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].frame_in[..echo4(2).len()], echo4(2)[..]);
    drop(cap);
    let (action, _) = x.run(&echo4(3));
    assert_eq!(action, XDP_TX, "still answering with the hooks back to empty");
}
