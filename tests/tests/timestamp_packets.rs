//! ICMP Timestamp (RFC 792) and the per-type drop policy, through
//! BPF_PROG_TEST_RUN on the real program. Expected replies are written from
//! RFC 792 and Linux's `icmp_timestamp`: a 20-byte IPv4 header and a
//! 20-byte ICMP message whatever the request's length, identifier, sequence
//! and originate copied, receive = transmit = ms since midnight UTC.

use std::{
    net::Ipv4Addr,
    time::{SystemTime, UNIX_EPOCH},
};

use icmp_common::{Config, Reason, ratelimit::Limit};
use icmp_user::config::FileConfig;
use icmpxdp_tests::{
    BCAST4, ETH_P_IP, Frame, PEER4, US4, US6, XDP_DROP, XDP_PASS, XDP_TX, Xdp, checksum_ok, fix_ipv4_checksum, icmp4,
    ipv4, payload,
};

/// The program configured from TOML, limits lifted unless the TOML sets them.
fn xdp(toml: &str) -> Xdp {
    let s = FileConfig::from_toml(&format!("{toml}\n")).unwrap().settings().unwrap();
    let mut x = Xdp::load(
        Config {
            per_source: Limit::UNLIMITED,
            global: Limit::UNLIMITED,
            ..s.config
        },
        &[US4],
        &[BCAST4],
        &[US6],
    );
    x.responder.set_ports(&s.ports).unwrap();
    x
}

fn now_ms() -> u32 {
    (SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() % 86_400_000) as u32
}

/// A timestamp request: identifier 0x1234, sequence 7, originate 0x01020304,
/// `extra` bytes of data after the three timestamps (negative: fewer).
fn request(dst: Ipv4Addr, data_len: usize) -> Vec<u8> {
    let mut data = vec![1, 2, 3, 4];
    data.extend(std::iter::repeat_n(0u8, 8));
    data.resize(data_len, 0x77);
    ipv4(PEER4, dst, 1, 61, &[], &icmp4(13, 0, [0x12, 0x34, 0, 7], &data))
}

#[test]
fn a_timestamp_request_gets_linux_s_reply() {
    let mut x = xdp("[timestamp]\naction = \"answer\"");
    for (data_len, vlans) in [(12usize, 0usize), (4, 0), (200, 0), (12, 1), (12, 2)] {
        let mut req = Frame::new(ETH_P_IP, request(US4, data_len)).with_vlans(vlans);
        req.l3[1] = 0x28; // a TOS
        fix_ipv4_checksum(&mut req.l3);
        let before = now_ms();
        let (action, out) = x.run(&req.bytes());
        let after = now_ms();
        assert_eq!(action, XDP_TX, "{data_len} bytes of data, {vlans} tags");
        let l2 = req.l2_len();
        assert_eq!(
            out.len(),
            l2 + 40,
            "20 + 20 bytes after the link header, whatever the request's length"
        );
        assert_eq!(&out[..6], &req.src_mac, "back to the sender's MAC");
        assert_eq!(&out[6..12], &req.dst_mac);
        assert_eq!(&out[12..l2], &req.bytes()[12..l2], "VLAN tags kept");
        let ip = &out[l2..l2 + 20];
        let icmp = &out[l2 + 20..];
        assert_eq!(ip[0], 0x45);
        assert_eq!(ip[1], 0x28, "TOS kept, as Linux does");
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]), 40);
        assert_eq!(&ip[6..8], &[0, 0], "DF clear, not a fragment");
        assert_eq!(ip[8], 64, "TTL: ip.ttl");
        assert_eq!(ip[9], 1);
        assert!(checksum_ok(&[ip]), "IPv4 header checksum");
        assert_eq!(&ip[12..16], &US4.octets(), "from the address asked");
        assert_eq!(&ip[16..20], &PEER4.octets(), "back to the sender");
        assert_eq!(&icmp[..2], &[14, 0], "Timestamp Reply");
        assert!(checksum_ok(&[icmp]), "ICMP checksum");
        assert_eq!(&icmp[4..8], &[0x12, 0x34, 0, 7], "identifier and sequence");
        assert_eq!(&icmp[8..12], &[1, 2, 3, 4], "originate");
        let receive = u32::from_be_bytes(icmp[12..16].try_into().unwrap());
        let transmit = u32::from_be_bytes(icmp[16..20].try_into().unwrap());
        assert_eq!(receive, transmit, "one clock reading for both");
        assert!(
            receive + 10 >= before && receive <= after + 10,
            "within 10 ms of the host's clock: {receive} not in {before}..{after}"
        );
    }
    let s = icmp_user::observe::counters::Snapshot::of(&x.responder).unwrap();
    assert_eq!(s.verdict(Reason::TimestampAnswered), 5);
    assert_eq!(s.received(icmp_common::Family::V4, 13), 5);
    assert_eq!(s.sent(icmp_common::Family::V4, 14), 5);
}

#[test]
fn timestamps_not_ours_to_answer_go_to_the_kernel() {
    // The default: pass (Linux answers timestamps itself).
    let mut x = xdp("");
    let f = Frame::new(ETH_P_IP, request(US4, 12)).bytes();
    x.assert_passed(&f, Reason::NotEchoRequest, "action pass (default)");

    let mut x = xdp("[timestamp]\naction = \"answer\"");
    // Shorter than Linux accepts: fewer than 4 data bytes.
    let f = Frame::new(ETH_P_IP, request(US4, 3)).bytes();
    x.assert_passed(&f, Reason::Malformed, "3 bytes of data");
    let f = Frame::new(ETH_P_IP, request(BCAST4, 12)).bytes();
    x.assert_passed(&f, Reason::BroadcastDestination, "to our broadcast");
    let f = Frame::new(ETH_P_IP, request(Ipv4Addr::new(198, 51, 100, 1), 12)).bytes();
    x.assert_passed(&f, Reason::NotOurs, "not ours");
    let mut opts = request(US4, 12);
    opts = ipv4(PEER4, US4, 1, 61, &[1, 1, 1, 1], &opts[20..]);
    x.assert_passed(&Frame::new(ETH_P_IP, opts).bytes(), Reason::IpOptions, "IP options");
    // answer_any_destination is an echo setting only.
    let mut any = xdp("[timestamp]\naction = \"answer\"\n[echo]\nanswer_any_destination = true");
    let f = Frame::new(ETH_P_IP, request(Ipv4Addr::new(198, 51, 100, 1), 12)).bytes();
    any.assert_passed(&f, Reason::NotOurs, "not ours, even with answer_any_destination");
}

#[test]
fn timestamp_replies_follow_the_ratemask_and_drop_is_a_policy() {
    // Type 14 is not in Linux's default ratemask; with it in, the limit holds.
    let mut x = xdp("[timestamp]\naction = \"answer\"\n[rate_limit]\nratemask = [14]");
    x.responder
        .set_config(&Config {
            per_source: Limit::new(3_600_000_000_000, 2),
            ..FileConfig::from_toml("[timestamp]\naction = \"answer\"\n[rate_limit]\nratemask = [14]")
                .unwrap()
                .to_config()
                .unwrap()
        })
        .unwrap();
    let f = Frame::new(ETH_P_IP, request(US4, 12)).bytes();
    let actions: Vec<u32> = (0..4).map(|_| x.run(&f).0).collect();
    assert_eq!(
        actions,
        [XDP_TX, XDP_TX, XDP_DROP, XDP_DROP],
        "a burst of 2, then limited"
    );

    let mut x = xdp("[timestamp]\naction = \"drop\"");
    let (action, _) = x.run(&f);
    assert_eq!(action, XDP_DROP);
    assert_eq!(x.verdict(Reason::PolicyDropped), 1);
}

#[test]
fn the_type_policy_drops_listed_types_addressed_to_us_only() {
    let mut x = xdp("[policy]\ndrop_ipv4_types = [13, 15, 17]");
    for kind in [13u8, 15, 17] {
        let f = Frame::new(
            ETH_P_IP,
            ipv4(PEER4, US4, 1, 64, &[], &icmp4(kind, 0, [0; 4], &payload(12, 1))),
        )
        .bytes();
        assert_eq!(x.run(&f).0, XDP_DROP, "type {kind} to us");
    }
    assert_eq!(x.verdict(Reason::PolicyDropped), 3);
    let elsewhere = Ipv4Addr::new(198, 51, 100, 1);
    let f = Frame::new(
        ETH_P_IP,
        ipv4(PEER4, elsewhere, 1, 64, &[], &icmp4(13, 0, [0; 4], &payload(12, 1))),
    )
    .bytes();
    assert_eq!(x.run(&f).0, XDP_PASS, "not addressed to us: not ours to drop");
    // Echo still answered.
    let f = Frame::new(
        ETH_P_IP,
        ipv4(PEER4, US4, 1, 64, &[], &icmp4(8, 0, [0; 4], &payload(12, 1))),
    )
    .bytes();
    assert_eq!(x.run(&f).0, XDP_TX);
}

#[test]
fn check_config_refuses_what_ipv6_cannot_do_without() {
    for (toml, expect) in [
        (
            "[policy]\ndrop_ipv6_types = [128, 135]",
            "policy.drop_ipv6_types[1]: ICMPv6 type 135 (neighbor solicitation) must not be dropped \
             (RFC 4890 §4.3.1: IPv6 does not work without it); set policy.force = true to drop it anyway",
        ),
        (
            "[policy]\ndrop_ipv4_types = [300]",
            "policy.drop_ipv4_types[0]: ICMP type must be between 0 and 255, got 300",
        ),
    ] {
        let err = FileConfig::from_toml(toml).unwrap().settings().unwrap_err();
        assert_eq!(err.to_string(), expect);
    }
    assert!(
        FileConfig::from_toml("[policy]\ndrop_ipv6_types = [135]\nforce = true")
            .unwrap()
            .settings()
            .is_ok()
    );
    let err = format!(
        "{:#}",
        FileConfig::from_toml("[timestamp]\naction = \"reply\"").unwrap_err()
    );
    assert!(
        err.contains("unknown variant `reply`, expected one of `answer`, `pass`, `drop`"),
        "{err}"
    );
}
