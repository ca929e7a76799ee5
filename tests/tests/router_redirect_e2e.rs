//! Router errors whose route back to the source leaves by another interface
//! than the one the datagram came in by: sent by `bpf_redirect` out of that
//! interface, with its address and the neighbour's MACs, as the router's
//! kernel sends them. The lab's second client–router link carries the route
//! back to a second client source ([`BACK_SOURCE`]); probes from it enter
//! the router by the first link, where icmpxdp runs.

use icmpxdp_tests::{
    router_lab::{
        BACK_CLIENT_MAC, BACK_ROUTER, BACK_ROUTER_MAC, BACK_SOURCE, BACK_SOURCE6, ROUTER_IN6, RouterLab, SERVER,
        SERVER6, mask, mask6, nft, probe_frame, traceroute,
    },
    stats_json,
};

fn mac(s: &str) -> Vec<u8> {
    s.split(':').map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
}

/// The fields of two IPv6 Time Exceeded frames that may differ: the flow
/// label of the error (Linux's `auto_flowlabels`), and what [`mask6`]
/// masks in the message.
fn mask6_frame(f: &[u8]) -> Vec<u8> {
    let mut head = f[..54].to_vec();
    head[15] &= 0xf0;
    head[16..18].fill(0);
    head.extend(mask6(&f[54..]));
    head
}

#[test]
fn an_error_whose_route_back_leaves_by_another_interface_is_redirected_there() {
    let l = RouterLab::create("b");
    let back = l.add_back_link();
    let pass = l.client_pass();
    // A redirected frame reaches the veth's peer only if the peer runs XDP.
    let back_pass = l.client_pass_on(&back.client_if);
    let v4 = || probe_frame(&l.client, &back.client_if, BACK_SOURCE.into(), SERVER.into());
    let v6 = || probe_frame(&l.client, &back.client_if, BACK_SOURCE6.into(), SERVER6.into());

    let kernel = v4().expect("the router's kernel sends Time Exceeded over the second link");
    let kernel6 = v6().expect("the router's kernel sends ICMPv6 Time Exceeded over the second link");
    for f in [&kernel, &kernel6] {
        assert_eq!(f[..6], mac(BACK_CLIENT_MAC), "to the client's MAC on the second link");
        assert_eq!(
            f[6..12],
            mac(BACK_ROUTER_MAC),
            "from the router's MAC on the second link"
        );
    }
    assert_eq!(kernel[26..30], BACK_ROUTER.octets(), "from the route back's address");
    // Linux's icmp6_send takes the source from the inbound interface
    // (ipv6_dev_get_saddr on it) when the route back has no preferred one.
    assert_eq!(
        kernel6[22..38],
        ROUTER_IN6.octets(),
        "from the inbound interface's address"
    );

    nft(
        &l.router,
        "table inet icmpxdp_test {\n chain out {\n type filter hook output priority 0; policy accept;\n \
         icmp type time-exceeded drop\n icmpv6 type time-exceeded drop\n }\n }\n",
    );
    assert!(v4().is_none(), "the router's kernel is silenced");
    assert!(v6().is_none(), "the router's kernel is silenced (IPv6)");

    let run = l.run(&["router.time_exceeded=true"]);
    let instance = l.instance();
    let ours = v4().unwrap_or_else(|| panic!("icmpxdp redirects Time Exceeded: {}", stats_json(&instance)));
    assert_eq!(ours[..14], kernel[..14], "the same link header (MACs, ethertype)");
    assert_eq!(
        mask(&ours[14..]),
        mask(&kernel[14..]),
        "icmpxdp's Time Exceeded differs from Linux's\n  ours   {ours:02x?}\n  kernel {kernel:02x?}"
    );
    let ours6 = v6().unwrap_or_else(|| panic!("icmpxdp redirects ICMPv6 Time Exceeded: {}", stats_json(&instance)));
    assert_eq!(
        mask6_frame(&ours6),
        mask6_frame(&kernel6),
        "icmpxdp's ICMPv6 Time Exceeded differs from Linux's\n  ours   {ours6:02x?}\n  kernel {kernel6:02x?}"
    );

    // traceroute from the second source: hop 1 is the router (its address
    // on the second link for IPv4, on the inbound link for IPv6, as Linux
    // picks them; the error redirected by XDP), hop 2 the server.
    for (to, src, hop1) in [
        (SERVER.to_string(), BACK_SOURCE.to_string(), BACK_ROUTER.to_string()),
        (SERVER6.to_string(), BACK_SOURCE6.to_string(), ROUTER_IN6.to_string()),
    ] {
        assert_eq!(
            traceroute(&l.client, &["-s", &src], &to),
            [hop1, to.clone()],
            "traceroute -s {src}"
        );
    }

    let stats = stats_json(&instance);
    let redirected = stats["verdicts"]["time_exceeded_redirected"].as_u64().unwrap();
    assert!(
        redirected >= 4,
        "two probes and a hop of each traceroute at least: {stats}"
    );
    assert_eq!(stats["actions"]["redirect"].as_u64(), Some(redirected), "{stats}");
    assert_eq!(
        stats["verdicts"]["time_exceeded_sent"], 0,
        "none left by the ingress: {stats}"
    );
    assert_eq!(stats["verdicts"]["no_route_back"], 0, "{stats}");
    assert_eq!(
        stats["sent"]["ipv4"]["time_exceeded"].as_u64().map(|n| n >= 2),
        Some(true),
        "{stats}"
    );
    drop(run);
    drop(back_pass);
    drop(pass);
}
