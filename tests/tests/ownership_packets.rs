//! Never answer for what is not ours (issue 11), through BPF_PROG_TEST_RUN on
//! the real program: errors only for the host's own destinations whatever
//! the echo knobs say, no reply or error from an address that is not a single
//! host, non-first fragments never dropped, and `echo.answer_prefixes`.
//!
//! The first frames are the exact repros the differential fuzz found; each
//! test failed on the code before the fix.

use std::net::{Ipv4Addr, Ipv6Addr};

use icmp_common::{
    Config, Reason,
    config::{FLAG_ANSWER_ANY_DST, FLAG_DROP_SUPPRESSED},
    ratelimit::Limit,
};
use icmp_user::config::FileConfig;
use icmpxdp_tests::{
    BCAST4, ETH_P_IP, ETH_P_IPV6, Frame, PEER4, PEER6, US4, US6, XDP_TX, Xdp, icmp4, icmp6, ipv4, ipv6, payload,
};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn knobs(flags: u32) -> Config {
    Config {
        flags: Config::default().flags | flags,
        per_source: Limit::UNLIMITED,
        global: Limit::UNLIMITED,
        ..Config::default()
    }
}

fn xdp(cfg: Config) -> Xdp {
    Xdp::load(cfg, &[US4], &[BCAST4], &[US6])
}

#[test]
fn any_destination_knob_sends_no_error_for_transit_udp() {
    // UDP 10.88.0.1 → 10.88.1.2:8, a host we are not (a pod behind a node).
    let l3 = hex("4500001c1691000001118d8e0a5800010a5801020000000000080000");
    for flags in [FLAG_ANSWER_ANY_DST, FLAG_ANSWER_ANY_DST | FLAG_DROP_SUPPRESSED] {
        let mut x = xdp(knobs(flags));
        x.assert_passed(
            &Frame::new(ETH_P_IP, l3.clone()).bytes(),
            Reason::NotOurs,
            stringify!(Reason::NotOurs),
        );
        let v6 = ipv6(
            PEER6,
            "2001:db8:1::5".parse().unwrap(),
            17,
            64,
            &icmpxdp_tests::udp6(&PEER6, &"2001:db8:1::5".parse().unwrap(), 40000, 53, b"q"),
        );
        x.assert_passed(
            &Frame::new(ETH_P_IPV6, v6).bytes(),
            Reason::NotOurs,
            stringify!(Reason::NotOurs),
        );
    }
}

#[test]
fn no_reply_or_error_from_an_address_that_is_not_a_single_host() {
    let mut x = xdp(knobs(FLAG_ANSWER_ANY_DST));
    for dst in ["127.0.0.1", "0.0.0.0", "240.0.0.1", "0.1.2.3", "127.255.0.9"] {
        let dst: Ipv4Addr = dst.parse().unwrap();
        let req = ipv4(PEER4, dst, 1, 64, &[], &icmp4(8, 0, [0, 1, 0, 1], &payload(32, 1)));
        x.assert_passed(
            &Frame::new(ETH_P_IP, req).bytes(),
            Reason::UnsendableSource,
            stringify!(Reason::UnsendableSource),
        );
    }
    for dst in ["::1", "::", "::ffff:192.0.2.1"] {
        let dst: Ipv6Addr = dst.parse().unwrap();
        let req = ipv6(
            PEER6,
            dst,
            58,
            64,
            &icmp6(&PEER6, &dst, 128, 0, [0, 1, 0, 1], &payload(32, 1)),
        );
        x.assert_passed(
            &Frame::new(ETH_P_IPV6, req).bytes(),
            Reason::UnsendableSource,
            stringify!(Reason::UnsendableSource),
        );
    }
    // UDP 10.88.0.1 → 127.0.0.1:8: not ours, so no error from 127.0.0.1.
    // (The repro has a header checksum 2 off, which makes it
    // `malformed`; fixed here so the frame reaches the rule it is about.)
    let mut l3 = hex("4500001c82f9400040112e7c0a5800017f0000010000000000080000");
    icmpxdp_tests::fix_ipv4_checksum(&mut l3);
    x.assert_passed(
        &Frame::new(ETH_P_IP, l3.clone()).bytes(),
        Reason::NotOurs,
        stringify!(Reason::NotOurs),
    );
    // Even when the interface carries that address (icmpxdp on `lo`).
    let mut on_lo = Xdp::load(knobs(0), &[Ipv4Addr::LOCALHOST, US4], &[], &[Ipv6Addr::LOCALHOST, US6]);
    on_lo.assert_passed(
        &Frame::new(ETH_P_IP, l3).bytes(),
        Reason::UnsendableSource,
        stringify!(Reason::UnsendableSource),
    );
    let req = ipv4(
        PEER4,
        Ipv4Addr::LOCALHOST,
        1,
        64,
        &[],
        &icmp4(8, 0, [0, 1, 0, 1], &payload(8, 1)),
    );
    on_lo.assert_passed(
        &Frame::new(ETH_P_IP, req).bytes(),
        Reason::UnsendableSource,
        stringify!(Reason::UnsendableSource),
    );
    let lo6 = Ipv6Addr::LOCALHOST;
    let udp = ipv6(
        PEER6,
        lo6,
        17,
        64,
        &icmpxdp_tests::udp6(&PEER6, &lo6, 40000, 33434, b"x"),
    );
    on_lo.assert_passed(
        &Frame::new(ETH_P_IPV6, udp).bytes(),
        Reason::UnsendableSource,
        stringify!(Reason::UnsendableSource),
    );
}

#[test]
fn non_first_fragments_are_never_dropped() {
    // Fragment offset 1 of UDP to 224.0.0.251 (mDNS), suppressed = "drop".
    let l3 = hex("45000014f3c820010011503fcbeaa9eae00000fb");
    let mut x = xdp(knobs(FLAG_DROP_SUPPRESSED));
    let mut f = Frame::new(ETH_P_IP, l3);
    x.assert_passed(
        &f.bytes(),
        Reason::SuppressedNonFirstFragment,
        stringify!(Reason::SuppressedNonFirstFragment),
    );
    // … in a link-layer multicast frame, and to our directed broadcast.
    f.dst_mac = [0x01, 0x00, 0x5e, 0, 0, 0xfb];
    x.assert_passed(
        &f.bytes(),
        Reason::SuppressedNonFirstFragment,
        stringify!(Reason::SuppressedNonFirstFragment),
    );
    let mut frag = ipv4(PEER4, BCAST4, 17, 64, &[], &payload(16, 3));
    frag[6..8].copy_from_slice(&0x0002u16.to_be_bytes()); // offset 2, MF clear
    icmpxdp_tests::fix_ipv4_checksum(&mut frag);
    x.assert_passed(
        &Frame::new(ETH_P_IP, frag).bytes(),
        Reason::SuppressedNonFirstFragment,
        stringify!(Reason::SuppressedNonFirstFragment),
    );
    // IPv6: a non-first fragment of UDP to ff02::fb.
    let mc: Ipv6Addr = "ff02::fb".parse().unwrap();
    let mut body = vec![17, 0, 0, 8 << 3, 0, 0, 0, 7]; // Fragment: next UDP, offset 1
    body.extend_from_slice(&payload(16, 4));
    let v6 = ipv6(PEER6, mc, 44, 64, &body);
    x.assert_passed(
        &Frame::new(ETH_P_IPV6, v6).bytes(),
        Reason::SuppressedNonFirstFragment,
        stringify!(Reason::SuppressedNonFirstFragment),
    );
}

#[test]
fn ipv6_fragment_header_is_read_only_inside_the_payload() {
    let mut x = xdp(knobs(0));
    for payload_len in [0u16, 7] {
        // A Fragment header in the frame (padding) but past the payload length.
        let mut l3 = ipv6(PEER6, US6, 44, 64, &[]);
        l3.extend_from_slice(&[17, 0, 0, 8, 0, 0, 0, 1]);
        l3.extend_from_slice(&[0; 8]);
        l3[4..6].copy_from_slice(&payload_len.to_be_bytes());
        x.assert_passed(
            &Frame::new(ETH_P_IPV6, l3).bytes(),
            Reason::Malformed,
            stringify!(Reason::Malformed),
        );
    }
}

#[test]
fn answer_prefixes_answer_echo_and_nothing_else() {
    let file = FileConfig::from_toml(
        "[echo]\nanswer_prefixes = [\"198.51.100.0/24\", \"2001:db8:1::/48\"]\n\
         [rate_limit]\nratelimit_ms = 0\nmsgs_per_sec = 0\n",
    )
    .unwrap();
    let settings = file.settings().unwrap();
    let mut x = Xdp::load(settings.config, &[US4], &[BCAST4], &[US6]);
    x.responder.apply(&settings).unwrap();
    let vip: Ipv4Addr = "198.51.100.7".parse().unwrap();
    let req = ipv4(PEER4, vip, 1, 64, &[], &icmp4(8, 0, [0, 9, 0, 1], &payload(24, 2)));
    let (action, out) = x.run(&Frame::new(ETH_P_IP, req).bytes());
    assert_eq!(action, XDP_TX, "a VIP in the prefixes is answered");
    assert_eq!(&out[14 + 12..14 + 16], &vip.octets(), "from the VIP");
    let outside: Ipv4Addr = "198.51.101.7".parse().unwrap();
    let req = ipv4(PEER4, outside, 1, 64, &[], &icmp4(8, 0, [0, 9, 0, 1], &payload(24, 2)));
    x.assert_passed(
        &Frame::new(ETH_P_IP, req).bytes(),
        Reason::NotOurs,
        stringify!(Reason::NotOurs),
    );
    let vip6: Ipv6Addr = "2001:db8:1:2::9".parse().unwrap();
    let req = ipv6(
        PEER6,
        vip6,
        58,
        64,
        &icmp6(&PEER6, &vip6, 128, 0, [0, 9, 0, 1], &payload(24, 2)),
    );
    let (action, _) = x.run(&Frame::new(ETH_P_IPV6, req).bytes());
    assert_eq!(action, XDP_TX, "an IPv6 VIP in the prefixes is answered");
    // UDP to a VIP: not ours for errors.
    let udp = ipv4(
        PEER4,
        vip,
        17,
        64,
        &[],
        &icmpxdp_tests::udp4(PEER4, vip, 40000, 33434, b"x"),
    );
    x.assert_passed(
        &Frame::new(ETH_P_IP, udp).bytes(),
        Reason::NotOurs,
        stringify!(Reason::NotOurs),
    );
    // A reload to other prefixes removes the old ones from the trie.
    let other = FileConfig::from_toml(
        "[echo]\nanswer_prefixes = [\"203.0.113.0/24\"]\n[rate_limit]\nratelimit_ms = 0\nmsgs_per_sec = 0\n",
    )
    .unwrap()
    .settings()
    .unwrap();
    x.responder.apply(&other).unwrap();
    let req = ipv4(PEER4, vip, 1, 64, &[], &icmp4(8, 0, [0, 9, 0, 2], &payload(24, 2)));
    x.assert_passed(
        &Frame::new(ETH_P_IP, req).bytes(),
        Reason::NotOurs,
        stringify!(Reason::NotOurs),
    );
    let new_vip: Ipv4Addr = "203.0.113.1".parse().unwrap();
    let req = ipv4(PEER4, new_vip, 1, 64, &[], &icmp4(8, 0, [0, 9, 0, 3], &payload(24, 2)));
    assert_eq!(x.run(&Frame::new(ETH_P_IP, req).bytes()).0, XDP_TX);
}
