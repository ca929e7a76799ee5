//! Router-side Time Exceeded (`router.time_exceeded`) in a three-namespace
//! lab: client — router (forwarding on) — server. The router's kernel
//! answers a TTL-1 probe once without XDP; then icmpxdp answers it, with the
//! router kernel's own Time Exceeded dropped by nftables, and the two are
//! compared byte for byte (but the IP IDs and the checksums over them).
//! The same for ICMPv6. traceroute (UDP, ICMP and IPv6) shows the router as
//! hop 1, the server as hop 2.

use std::{
    io::ErrorKind,
    mem::MaybeUninit,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use icmp_user::dataplane::{
    load::{Mode, Responder},
    netns,
};
use icmpxdp_tests::{Running, in_netns, output, require_root, stats_json};
use socket2::{Domain, Protocol, Socket, Type};

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const ROUTER_IN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const ROUTER_OUT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
const ROUTER_IN6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const ROUTER_OUT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);
const SERVER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);

/// Three namespaces and two veth pairs, deleted on drop.
struct RouterLab {
    client: String,
    router: String,
    server: String,
    client_if: String,
    router_in: String,
    router_out: String,
}

fn ip(args: &[&str]) {
    let (ok, _, err) = output(Command::new("ip").args(args));
    assert!(ok, "ip {args:?}: {err}");
}

impl RouterLab {
    /// `tag`: one letter, so that tests running at once do not share names.
    fn create(tag: &str) -> Self {
        require_root();
        let id = std::process::id() % 100_000;
        let l = Self {
            client: format!("icmpxdp-t{id}-{tag}c"),
            router: format!("icmpxdp-t{id}-{tag}r"),
            server: format!("icmpxdp-t{id}-{tag}s"),
            client_if: format!("r{tag}{id}c"),
            router_in: format!("r{tag}{id}i"),
            router_out: format!("r{tag}{id}o"),
        };
        let (router_out, server_if) = (l.router_out.clone(), format!("r{tag}{id}s"));
        for ns in [&l.client, &l.router, &l.server] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "link",
            "add",
            &l.client_if,
            "netns",
            &l.client,
            "type",
            "veth",
            "peer",
            "name",
            &l.router_in,
            "netns",
            &l.router,
        ]);
        ip(&[
            "link",
            "add",
            &router_out,
            "netns",
            &l.router,
            "type",
            "veth",
            "peer",
            "name",
            &server_if,
            "netns",
            &l.server,
        ]);
        for (ns, dev, addr) in [
            (&l.client, &l.client_if, format!("{CLIENT}/24")),
            (&l.router, &l.router_in, format!("{ROUTER_IN}/24")),
            (&l.router, &router_out, format!("{ROUTER_OUT}/24")),
            (&l.server, &server_if, format!("{SERVER}/24")),
        ] {
            ip(&["-n", ns, "addr", "add", &addr, "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        for (ns, dev, addr) in [
            (&l.client, &l.client_if, format!("{CLIENT6}/64")),
            (&l.router, &l.router_in, format!("{ROUTER_IN6}/64")),
            (&l.router, &router_out, format!("{ROUTER_OUT6}/64")),
            (&l.server, &server_if, format!("{SERVER6}/64")),
        ] {
            ip(&["-n", ns, "addr", "add", &addr, "dev", dev, "nodad"]);
        }
        ip(&[
            "-n",
            &l.client,
            "-6",
            "route",
            "add",
            "default",
            "via",
            &ROUTER_IN6.to_string(),
        ]);
        ip(&[
            "-n",
            &l.server,
            "-6",
            "route",
            "add",
            "default",
            "via",
            &ROUTER_OUT6.to_string(),
        ]);
        icmp_user::lab::sysctl_in(&l.router, "net.ipv6.conf.all.forwarding", "1").unwrap();
        icmp_user::lab::sysctl_in(&l.router, "net.ipv6.icmp.ratelimit", "0").unwrap();
        ip(&[
            "-n",
            &l.client,
            "route",
            "add",
            "default",
            "via",
            &ROUTER_IN.to_string(),
        ]);
        ip(&[
            "-n",
            &l.server,
            "route",
            "add",
            "default",
            "via",
            &ROUTER_OUT.to_string(),
        ]);
        icmp_user::lab::sysctl_in(&l.router, "net.ipv4.ip_forward", "1").unwrap();
        // The kernel's own ICMP rate limit off, so the comparison is not
        // at its mercy.
        icmp_user::lab::sysctl_in(&l.router, "net.ipv4.icmp_ratelimit", "0").unwrap();
        l
    }
}

impl RouterLab {
    /// `xdp_pass` on the client's veth: XDP_TX on a veth reaches the peer
    /// only if the peer runs XDP. Detached on drop.
    fn client_pass(&self) -> Responder {
        let _inside = netns::enter(&self.client).unwrap();
        let mut p = Responder::load_pass().unwrap();
        p.attach(&self.client_if, Mode::Driver).unwrap();
        p
    }

    /// `icmpxdp run` on the router's client-facing interface with `sets`.
    fn run(&self, sets: &[&str]) -> Running {
        let mut args = vec!["--netns", &self.router, "run", "--iface", &self.router_in];
        for set in sets {
            args.extend(["--set", set]);
        }
        Running::start(&args)
    }

    /// The router's instance name, for `icmpxdp stats`.
    fn instance(&self) -> String {
        format!("{}@{}", self.router_in, self.router)
    }
}

impl Drop for RouterLab {
    fn drop(&mut self) {
        for ns in [&self.client, &self.router, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// The first ICMP message on `sock` for which `want` holds, within 2 s,
/// and where it came from.
fn recv_icmp(sock: &Socket, want: impl Fn(&[u8]) -> bool) -> Option<(Vec<u8>, SocketAddr)> {
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let end = Instant::now() + Duration::from_secs(2);
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    while Instant::now() < end {
        match sock.recv_from(&mut buf) {
            Ok((n, addr)) => {
                // SAFETY: recv initialised the first n bytes.
                let p: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
                if want(&p) {
                    return Some((p, addr.as_socket().unwrap()));
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("raw recv: {e}"),
        }
    }
    None
}

/// Loads an nftables ruleset into namespace `ns`.
fn nft(ns: &str, rules: &str) {
    let mut nft = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(nft.stdin.as_mut().unwrap(), rules.as_bytes()).unwrap();
    drop(nft.stdin.take());
    assert!(nft.wait().unwrap().success(), "nft ruleset load failed");
}

/// Sends one UDP probe with TTL 1 from the client (port 40000 → server
/// 33434) and returns the ICMP Time Exceeded it gets, IP header included.
fn probe(client_ns: &str) -> Option<Vec<u8>> {
    in_netns(client_ns, move || {
        let icmp = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).unwrap();
        let udp = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        udp.set_ttl_v4(1).unwrap();
        let from: SocketAddr = (CLIENT, 40000).into();
        udp.bind(&from.into()).unwrap();
        let to: SocketAddr = (SERVER, 33434).into();
        udp.send_to(b"router-side time exceeded", &to.into()).unwrap();
        recv_icmp(&icmp, |p| p.len() > 20 && p[20] == 11).map(|(p, _)| p)
    })
}

/// Sends one UDP probe with hop limit 1 from the client over IPv6 and
/// returns the ICMPv6 Time Exceeded it gets (the message: raw ICMPv6
/// sockets see no IP header) and where it came from.
fn probe6(client_ns: &str) -> Option<(Vec<u8>, Ipv6Addr)> {
    in_netns(client_ns, move || {
        let icmp = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).unwrap();
        let udp = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        udp.set_unicast_hops_v6(1).unwrap();
        let from: SocketAddr = (CLIENT6, 40000).into();
        udp.bind(&from.into()).unwrap();
        let to: SocketAddr = (SERVER6, 33434).into();
        udp.send_to(b"router-side time exceeded, v6", &to.into()).unwrap();
        recv_icmp(&icmp, |p| p.first() == Some(&3)).map(|(p, from)| {
            (
                p,
                match from.ip() {
                    std::net::IpAddr::V6(a) => a,
                    std::net::IpAddr::V4(a) => a.to_ipv6_mapped(),
                },
            )
        })
    })
}

/// Sends one 1400-byte UDP datagram with DF from the client (path MTU
/// discovery on, the client's path cache flushed first) and returns the
/// ICMP Destination Unreachable it gets, IP header included.
fn probe_big(client_ns: &str) -> Option<Vec<u8>> {
    ip(&["-n", client_ns, "route", "flush", "cache"]);
    in_netns(client_ns, move || {
        use std::os::fd::AsRawFd as _;
        let icmp = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).unwrap();
        let udp = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        let on: libc::c_int = libc::IP_PMTUDISC_DO;
        // SAFETY: a valid int option on our own socket.
        let r = unsafe {
            libc::setsockopt(
                udp.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "IP_MTU_DISCOVER");
        let from: SocketAddr = (CLIENT, 40001).into();
        udp.bind(&from.into()).unwrap();
        let to: SocketAddr = (SERVER, 33434).into();
        udp.send_to(&[0x5a; 1400], &to.into()).unwrap();
        recv_icmp(&icmp, |p| p.len() > 21 && p[20] == 3 && p[21] == 4).map(|(p, _)| p)
    })
}

/// The ICMPv6 fields two Time Exceeded messages about two probes may
/// differ in: the checksum, and the quoted probe's flow label (Linux's
/// `auto_flowlabels` may differ per socket).
fn mask6(p: &[u8]) -> Vec<u8> {
    let mut p = p.to_vec();
    p[2..4].fill(0);
    p[9] &= 0xf0;
    p[10..12].fill(0);
    p
}

/// The fields two Time Exceeded messages about two probes may differ in:
/// the error's IP ID (fresh per packet) and header checksum, and the same
/// two fields of the quoted probe (the client's kernel gives each probe its
/// own ID). The ICMP checksum covers the quote, so it differs with them.
fn mask(p: &[u8]) -> Vec<u8> {
    let mut p = p.to_vec();
    for r in [4..6, 10..12, 22..24, 32..34, 38..40] {
        p[r].fill(0);
    }
    p
}

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
    for (flag, to, hop1) in [
        (None, SERVER.to_string(), ROUTER_IN.to_string()),
        (Some("-I"), SERVER.to_string(), ROUTER_IN.to_string()),
        (Some("-6"), SERVER6.to_string(), ROUTER_IN6.to_string()),
    ] {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &l.client,
            "traceroute",
            "-n",
            "-q",
            "1",
            "-w",
            "1",
            "-m",
            "3",
        ]);
        cmd.args(flag).arg(&to);
        let (ok, out, err) = output(&mut cmd);
        assert!(ok, "traceroute {flag:?}: {err}");
        let hops: Vec<&str> = out
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        assert_eq!(hops, [hop1, to], "traceroute {flag:?}: {out}");
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
    let rules = "table inet icmpxdp_test {\n\
                 chain out {\n\
                 type filter hook output priority 0; policy accept;\n\
                 icmp type destination-unreachable drop\n\
                 icmpv6 type packet-too-big drop\n\
                 }\n\
                 }\n";
    nft(&l.router, rules);
    assert!(probe_big(&l.client).is_none(), "the router's kernel is silenced");
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
