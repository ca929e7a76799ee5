//! Router-side Time Exceeded (`router.time_exceeded`) in a three-namespace
//! lab: client — router (forwarding on) — server. The router's kernel
//! answers a TTL-1 probe once without XDP; then icmpxdp answers it, with the
//! router kernel's own Time Exceeded dropped by nftables, and the two are
//! compared byte for byte (but the IP IDs and the checksums over them).
//! The same for ICMPv6. traceroute (UDP, ICMP and IPv6) shows the router as
//! hop 1, the server as hop 2. Fragmentation Needed and Packet Too Big are
//! compared the same way, and teach `ping -M do` and `tracepath` the MTU.

use std::{net::Ipv4Addr, process::Command};

use icmpxdp_tests::{
    output,
    router_lab::{
        ROUTER_IN, ROUTER_IN6, RouterLab, SERVER, SERVER6, ip, mask, mask6, nft, probe, probe_big, probe_big6, probe6,
        traceroute,
    },
    stats_json,
};

#[test]
fn time_exceeded_from_xdp_matches_the_router_kernel_s() {
    let l = RouterLab::create("t");
    let pass = l.client_pass();

    let kernel = probe(&l.client).expect("the router's kernel sends Time Exceeded");
    let (kernel6, from6) = probe6(&l.client).expect("the router's kernel sends ICMPv6 Time Exceeded");
    assert_eq!(from6, ROUTER_IN6);
    assert_eq!(
        &kernel[12..16],
        &ROUTER_IN.octets(),
        "from the router's address toward the client"
    );

    let rules = "table inet icmpxdp_test {\n\
                 chain out {\n\
                 type filter hook output priority 0; policy accept;\n\
                 icmp type time-exceeded drop\n\
                 icmpv6 type time-exceeded drop\n\
                 }\n\
                 }\n";
    nft(&l.router, rules);
    assert!(probe(&l.client).is_none(), "the router's kernel is silenced");
    assert!(probe6(&l.client).is_none(), "the router's kernel is silenced (IPv6)");

    let run = l.run(&["router.time_exceeded=true"]);
    let instance = l.instance();
    let ours = probe(&l.client).unwrap_or_else(|| {
        panic!(
            "icmpxdp sends Time Exceeded; its verdicts: {}; run said {:?}",
            stats_json(&instance)["verdicts"],
            run.stdout_lines
        )
    });
    assert_eq!(
        mask(&ours),
        mask(&kernel),
        "icmpxdp's Time Exceeded differs from Linux's\n  ours   {ours:02x?}\n  kernel {kernel:02x?}"
    );

    let (ours6, from6) = probe6(&l.client).unwrap_or_else(|| {
        panic!(
            "icmpxdp sends ICMPv6 Time Exceeded; its verdicts: {}",
            stats_json(&instance)["verdicts"]
        )
    });
    assert_eq!(from6, ROUTER_IN6, "from the address of the route back");
    assert_eq!(
        mask6(&ours6),
        mask6(&kernel6),
        "icmpxdp's ICMPv6 Time Exceeded differs from Linux's\n  ours   {ours6:02x?}\n  kernel {kernel6:02x?}"
    );

    // traceroute, UDP, ICMP and IPv6: hop 1 the router (from XDP), hop 2
    // the server.
    for (flags, to, hop1) in [
        (&[][..], SERVER.to_string(), ROUTER_IN.to_string()),
        (&["-I"], SERVER.to_string(), ROUTER_IN.to_string()),
        (&["-6"], SERVER6.to_string(), ROUTER_IN6.to_string()),
    ] {
        assert_eq!(
            traceroute(&l.client, flags, &to),
            [hop1, to.clone()],
            "traceroute {flags:?}"
        );
    }
    let stats = stats_json(&instance);
    let sent = stats["verdicts"]["time_exceeded_sent"].as_u64().unwrap();
    assert!(sent >= 3, "one probe and a hop of each traceroute at least: {stats}");
    drop(run);
    drop(pass);
}

/// Fragmentation Needed / Packet Too Big (`router.frag_needed`): the
/// router's egress toward the server has MTU 1280; `ping -M do -s 1400`
/// and `tracepath` from the client learn it from XDP, the router kernel's
/// own errors dropped by nftables.
#[test]
fn frag_needed_and_packet_too_big_teach_the_client_the_path_mtu() {
    let l = RouterLab::create("f");
    ip(&["-n", &l.router, "link", "set", &l.router_out, "mtu", "1280"]);
    let pass = l.client_pass();
    let kernel = probe_big(&l.client).expect("the router's kernel sends Fragmentation Needed");
    let kernel6 = probe_big6(&l.client).expect("the router's kernel sends Packet Too Big");
    let rules = "table inet icmpxdp_test {\n\
                 chain out {\n\
                 type filter hook output priority 0; policy accept;\n\
                 icmp type destination-unreachable drop\n\
                 icmpv6 type packet-too-big drop\n\
                 }\n\
                 }\n";
    nft(&l.router, rules);
    assert!(probe_big(&l.client).is_none(), "the router's kernel is silenced");
    assert!(
        probe_big6(&l.client).is_none(),
        "the router's kernel is silenced (IPv6)"
    );
    let ping = |v6: bool| {
        // A fresh path cache: what the last probe taught is forgotten.
        ip(&["-n", &l.client, "route", "flush", "cache"]);
        ip(&["-n", &l.client, "-6", "route", "flush", "cache"]);
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns", "exec", &l.client, "ping", "-n", "-M", "do", "-s", "1400", "-c", "1", "-W", "1",
        ]);
        if v6 {
            cmd.arg("-6").arg(SERVER6.to_string());
        } else {
            cmd.arg(SERVER.to_string());
        }
        let (_, out, err) = output(&mut cmd);
        format!("{out}{err}")
    };
    let silent = ping(false);
    assert!(!silent.contains("mtu"), "the router kernel is silenced: {silent}");

    let run = l.run(&["router.frag_needed=true"]);
    let ours = probe_big(&l.client).expect("icmpxdp sends Fragmentation Needed");
    assert_eq!(&ours[24..28], &[0, 0, 0x05, 0x00], "next-hop MTU 1280");
    assert_eq!(
        mask(&ours),
        mask(&kernel),
        "icmpxdp's Fragmentation Needed differs from Linux's\n  ours   {ours:02x?}\n  kernel {kernel:02x?}"
    );
    let ours6 = probe_big6(&l.client).expect("icmpxdp sends Packet Too Big");
    assert_eq!(&ours6[4..8], &[0, 0, 0x05, 0x00], "MTU 1280");
    assert_eq!(
        mask6(&ours6),
        mask6(&kernel6),
        "icmpxdp's Packet Too Big differs from Linux's\n  ours   {ours6:02x?}\n  kernel {kernel6:02x?}"
    );
    let v4 = ping(false);
    assert!(v4.contains("Frag needed and DF set (mtu = 1280)"), "ping -M do: {v4}");
    let v6 = ping(true);
    assert!(v6.contains("Packet too big: mtu=1280"), "ping -6 -M do: {v6}");
    // A fresh path cache, then tracepath learns the MTU hop by hop.
    ip(&["-n", &l.client, "route", "flush", "cache"]);
    let (_, out, err) = output(
        Command::new("ip")
            .args(["netns", "exec", &l.client, "tracepath", "-n", "-m", "3"])
            .arg(SERVER.to_string()),
    );
    assert!(out.contains("pmtu 1280"), "tracepath: {out}{err}");
    let instance = l.instance();
    let stats = stats_json(&instance);
    assert!(stats["verdicts"]["frag_needed_sent"].as_u64().unwrap() >= 2, "{stats}");
    assert_eq!(
        stats["verdicts"]["no_route_back"], 0,
        "every error left by XDP_TX: {stats}"
    );
    assert_eq!(stats["actions"]["tx"], stats["verdicts"]["frag_needed_sent"], "{stats}");
    drop(run);
    drop(pass);
}

/// `router.errors_use_inbound_ifaddr` against Linux's
/// `net.ipv4.icmp_errors_use_inbound_ifaddr`: the route back to the client
/// prefers a secondary address (`src 192.0.2.77`), so the two rules pick
/// different sources; icmpxdp picks as Linux does, switch on or off.
#[test]
fn errors_use_inbound_ifaddr_picks_the_source_as_linux_does() {
    let l = RouterLab::create("i");
    let secondary = Ipv4Addr::new(192, 0, 2, 77);
    ip(&[
        "-n",
        &l.router,
        "addr",
        "add",
        &format!("{secondary}/24"),
        "dev",
        &l.router_in,
    ]);
    ip(&[
        "-n",
        &l.router,
        "route",
        "replace",
        "192.0.2.0/24",
        "dev",
        &l.router_in,
        "src",
        &secondary.to_string(),
    ]);
    let pass = l.client_pass();
    let default = probe(&l.client).expect("the router's kernel sends Time Exceeded");
    assert_eq!(&default[12..16], &secondary.octets(), "Linux: the route back's source");
    icmp_user::lab::sysctl_in(&l.router, "net.ipv4.icmp_errors_use_inbound_ifaddr", "1").unwrap();
    let inbound = probe(&l.client).expect("the router's kernel sends Time Exceeded");
    assert_eq!(
        &inbound[12..16],
        &ROUTER_IN.octets(),
        "Linux: the inbound interface's address"
    );

    nft(
        &l.router,
        "table inet icmpxdp_test {\n chain out {\n type filter hook output priority 0; policy accept;\n \
         icmp type time-exceeded drop\n }\n }\n",
    );
    let run = l.run(&["router.time_exceeded=true", "router.errors_use_inbound_ifaddr=true"]);
    let ours = probe(&l.client).expect("icmpxdp sends Time Exceeded");
    assert_eq!(mask(&ours), mask(&inbound), "switch on: as Linux with the sysctl on");
    let (ok, _, err) = output(Command::new(icmpxdp_tests::icmpxdp_bin()).args([
        "--netns",
        &l.router,
        "reload",
        "--iface",
        &l.router_in,
        "--set",
        "router.errors_use_inbound_ifaddr=false",
    ]));
    assert!(ok, "reload: {err}");
    let ours = probe(&l.client).expect("icmpxdp sends Time Exceeded");
    assert_eq!(mask(&ours), mask(&default), "switch off: as Linux by default");
    drop(run);
    drop(pass);
}
