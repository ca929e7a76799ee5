//! ICMP Address Mask (RFC 950, RFC 1122 §3.2.2.9), through BPF_PROG_TEST_RUN
//! on the real program. Linux never answers these (no handler: they reach
//! no socket), so there is no kernel reply to compare with; the expected
//! replies are written from RFC 950: type 18, code 0, the request's
//! identifier and sequence, the answering address's 32-bit mask, from that
//! address back to the requester.

use std::net::Ipv4Addr;

use icmp_common::{AddrSet, Config, Family, Reason, ratelimit::Limit};
use icmp_user::{config::FileConfig, observe::counters::Snapshot};
use icmpxdp_tests::{BCAST4, ETH_P_IP, Frame, MAC_US, PEER4, US4, XDP_DROP, XDP_TX, Xdp, checksum_ok, icmp4, ipv4};

/// A second subnet on the interface: 198.18.0.1/16.
const US4_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const BCAST4_B: Ipv4Addr = Ipv4Addr::new(198, 18, 255, 255);
/// The MAC the loader read for the interface (≠ MAC_US, the frames'
/// destination, so the test sees which one the reply comes from).
const IFACE_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0x01];

/// The program configured from TOML with US4/24 and US4_B/16, limits lifted.
fn xdp(toml: &str) -> Xdp {
    let s = FileConfig::from_toml(&format!("{toml}\n")).unwrap().settings().unwrap();
    let mut set = AddrSet::default();
    for (a, m, b) in [(US4, [255, 255, 255, 0], BCAST4), (US4_B, [255, 255, 0, 0], BCAST4_B)] {
        assert!(set.push_v4(a.octets()));
        set.set_v4_mask(a.octets(), m);
        assert!(set.push_v4_broadcast(b.octets()));
    }
    set.mac = IFACE_MAC;
    Xdp::with_addrs(
        Config {
            per_source: Limit::UNLIMITED,
            global: Limit::UNLIMITED,
            ..s.config
        },
        &set,
    )
}

const ANSWER: &str = "[address_mask]\naction = \"answer\"";

/// A request: identifier 0xbeef, sequence 3, mask field zero.
fn request(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    ipv4(src, dst, 1, 64, &[], &icmp4(17, 0, [0xbe, 0xef, 0, 3], &[0; 4]))
}

/// Checks `out` is RFC 950's reply from `from` with `mask` to `req`.
fn assert_reply(req: &Frame, out: &[u8], from: Ipv4Addr, mask: [u8; 4], what: &str) {
    let l2 = req.l2_len();
    assert_eq!(out.len(), l2 + 32, "{what}: 20 + 12 bytes after the link header");
    assert_eq!(&out[..6], &req.src_mac, "{what}: back to the requester's MAC");
    assert_eq!(&out[6..12], &IFACE_MAC, "{what}: from the interface's own MAC");
    assert_eq!(&out[12..l2], &req.bytes()[12..l2], "{what}: VLAN tags kept");
    let ip = &out[l2..l2 + 20];
    let icmp = &out[l2 + 20..];
    assert_eq!(ip[0], 0x45);
    assert_eq!(u16::from_be_bytes([ip[2], ip[3]]), 32, "{what}: total length");
    assert_eq!(&ip[6..8], &[0, 0], "{what}: not a fragment");
    assert_eq!(ip[8], 64, "{what}: TTL is ip.ttl");
    assert_eq!(ip[9], 1, "{what}: ICMP");
    assert!(checksum_ok(&[ip]), "{what}: IPv4 header checksum");
    assert_eq!(&ip[12..16], &from.octets(), "{what}: from the answering address");
    assert_eq!(&ip[16..20], &req.l3[12..16], "{what}: to the requester");
    assert_eq!(&icmp[..2], &[18, 0], "{what}: Address Mask Reply");
    assert!(checksum_ok(&[icmp]), "{what}: ICMP checksum");
    assert_eq!(&icmp[4..8], &[0xbe, 0xef, 0, 3], "{what}: identifier and sequence");
    assert_eq!(&icmp[8..12], &mask, "{what}: the mask");
}

#[test]
fn each_way_of_asking_gets_the_right_subnet_s_mask() {
    let mut x = xdp(ANSWER);
    let host_b = Ipv4Addr::new(198, 18, 7, 9);
    let cases = [
        (
            PEER4,
            US4,
            MAC_US,
            0,
            US4,
            [255, 255, 255, 0],
            "unicast to our /24 address",
        ),
        (
            PEER4,
            US4_B,
            MAC_US,
            0,
            US4_B,
            [255, 255, 0, 0],
            "unicast to our /16 address",
        ),
        (
            PEER4,
            BCAST4,
            [0xff; 6],
            0,
            US4,
            [255, 255, 255, 0],
            "directed broadcast of the /24",
        ),
        (
            host_b,
            BCAST4_B,
            [0xff; 6],
            1,
            US4_B,
            [255, 255, 0, 0],
            "directed broadcast of the /16, VLAN",
        ),
        (
            PEER4,
            Ipv4Addr::BROADCAST,
            [0xff; 6],
            0,
            US4,
            [255, 255, 255, 0],
            "255.255.255.255 from the /24",
        ),
        (
            host_b,
            Ipv4Addr::BROADCAST,
            [0xff; 6],
            2,
            US4_B,
            [255, 255, 0, 0],
            "255.255.255.255 from the /16, QinQ",
        ),
    ];
    for (src, dst, dst_mac, vlans, from, mask, what) in cases {
        let mut req = Frame::new(ETH_P_IP, request(src, dst)).with_vlans(vlans);
        req.dst_mac = dst_mac;
        let (action, out) = x.run(&req.bytes());
        assert_eq!(action, XDP_TX, "{what}");
        assert_reply(&req, &out, from, mask, what);
    }
    let s = Snapshot::of(&x.responder).unwrap();
    assert_eq!(s.verdict(Reason::AddressMaskAnswered), cases.len() as u64);
    assert_eq!(s.received(Family::V4, 17), cases.len() as u64);
    assert_eq!(s.sent(Family::V4, 18), cases.len() as u64);
}

#[test]
fn requests_that_are_not_ours_to_answer_go_to_the_kernel() {
    // The default leaves them alone (Linux ignores them).
    let mut x = xdp("");
    let f = Frame::new(ETH_P_IP, request(PEER4, US4)).bytes();
    x.assert_passed(&f, Reason::NotEchoRequest, "action pass (default)");

    let mut x = xdp(ANSWER);
    let bcast = |src, dst| {
        let mut f = Frame::new(ETH_P_IP, request(src, dst));
        f.dst_mac = [0xff; 6];
        f.bytes()
    };
    // A diskless host before it has an address: the reply would have to be
    // broadcast (RFC 1122 §3.2.2.9); the kernel's to deal with.
    let f = bcast(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST);
    x.assert_passed(&f, Reason::BadSource, "from 0.0.0.0");
    let f = bcast(BCAST4, Ipv4Addr::BROADCAST);
    x.assert_passed(&f, Reason::BadSource, "from our broadcast address");
    let f = bcast(Ipv4Addr::new(224, 0, 0, 1), Ipv4Addr::BROADCAST);
    x.assert_passed(&f, Reason::BadSource, "from a multicast address");
    // 255.255.255.255 from outside every subnet: no address is asked.
    let f = bcast(Ipv4Addr::new(203, 0, 113, 5), Ipv4Addr::BROADCAST);
    x.assert_passed(&f, Reason::NotOurs, "255.255.255.255 from another subnet");
    let f = Frame::new(ETH_P_IP, request(PEER4, Ipv4Addr::new(198, 51, 100, 1))).bytes();
    x.assert_passed(&f, Reason::NotOurs, "to an address not ours");
    // Shorter than RFC 950's 12 bytes of ICMP.
    let short = ipv4(PEER4, US4, 1, 64, &[], &icmp4(17, 0, [0xbe, 0xef, 0, 3], &[0; 2]));
    x.assert_passed(
        &Frame::new(ETH_P_IP, short).bytes(),
        Reason::Malformed,
        "10 bytes of ICMP",
    );
    // The echo knobs are echo-only.
    let mut any = xdp(&format!("{ANSWER}\n[echo]\nanswer_any_destination = true"));
    let f = Frame::new(ETH_P_IP, request(PEER4, Ipv4Addr::new(198, 51, 100, 1))).bytes();
    any.assert_passed(&f, Reason::NotOurs, "not ours, even with answer_any_destination");
}

#[test]
fn shadow_mode_counts_the_reply_it_would_send() {
    let mut x = xdp(&format!("mode = \"shadow\"\n{ANSWER}"));
    let f = Frame::new(ETH_P_IP, request(PEER4, US4)).bytes();
    x.assert_passed(&f, Reason::AddressMaskAnswered, "shadow");
}

#[test]
fn replies_follow_the_ratemask_and_drop_is_a_policy() {
    // Type 18 is not in Linux's default ratemask; with it in, the limit holds.
    let toml = format!("{ANSWER}\n[rate_limit]\nratemask = [18]");
    let mut x = xdp(&toml);
    x.responder
        .set_config(&Config {
            per_source: Limit::new(3_600_000_000_000, 2),
            ..FileConfig::from_toml(&toml).unwrap().to_config().unwrap()
        })
        .unwrap();
    let f = Frame::new(ETH_P_IP, request(PEER4, US4)).bytes();
    let actions: Vec<u32> = (0..4).map(|_| x.run(&f).0).collect();
    assert_eq!(
        actions,
        [XDP_TX, XDP_TX, XDP_DROP, XDP_DROP],
        "a burst of 2, then limited"
    );
    assert_eq!(x.verdict(Reason::RateLimitedPerSource), 2);

    let mut x = xdp("[address_mask]\naction = \"drop\"");
    assert_eq!(x.run(&f).0, XDP_DROP);
    assert_eq!(x.verdict(Reason::PolicyDropped), 1);
    let err = format!(
        "{:#}",
        FileConfig::from_toml("[address_mask]\naction = \"reply\"").unwrap_err()
    );
    assert!(
        err.contains("unknown variant `reply`, expected one of `answer`, `pass`, `drop`"),
        "{err}"
    );
}
