//! The three-namespace router lab of the router tests: client — router
//! (forwarding on) — server, with probes that get the router's errors and
//! the masks of the fields two such errors may legitimately differ in.
//! Optionally a second client–router link that the route back to a second
//! client source takes, for errors that leave by another interface.

use std::{
    io::ErrorKind,
    mem::MaybeUninit,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{Running, in_netns, output, require_root};
use icmp_user::dataplane::{
    load::{Mode, Responder},
    netns,
};
use socket2::{Domain, Protocol, Socket, Type};

pub const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const ROUTER_IN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const ROUTER_OUT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
pub const ROUTER_IN6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
pub const ROUTER_OUT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);
pub const SERVER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);

/// Three namespaces and two veth pairs, deleted on drop.
pub struct RouterLab {
    pub client: String,
    pub router: String,
    pub server: String,
    pub client_if: String,
    pub router_in: String,
    pub router_out: String,
}

pub fn ip(args: &[&str]) {
    let (ok, _, err) = output(Command::new("ip").args(args));
    assert!(ok, "ip {args:?}: {err}");
}

impl RouterLab {
    /// `tag`: one letter, so that tests running at once do not share names.
    pub fn create(tag: &str) -> Self {
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
            // No duplicate address detection for the link-local address:
            // neighbour discovery works at once, not a second or two later.
            icmp_user::lab::sysctl_in(ns, &format!("net.ipv6.conf.{dev}.accept_dad"), "0").unwrap();
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
    pub fn client_pass(&self) -> Responder {
        let _inside = netns::enter(&self.client).unwrap();
        let mut p = Responder::load_pass().unwrap();
        p.attach(&self.client_if, Mode::Driver).unwrap();
        p
    }

    /// `icmpxdp run` on the router's client-facing interface with `sets`.
    pub fn run(&self, sets: &[&str]) -> Running {
        let mut args = vec!["--netns", &self.router, "run", "--iface", &self.router_in];
        for set in sets {
            args.extend(["--set", set]);
        }
        Running::start(&args)
    }

    /// The router's instance name, for `icmpxdp stats`.
    pub fn instance(&self) -> String {
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
/// and where it came from (an IP socket's sender; `None` on a packet socket).
pub fn recv_icmp(sock: &Socket, want: impl Fn(&[u8]) -> bool) -> Option<(Vec<u8>, Option<SocketAddr>)> {
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let end = Instant::now() + Duration::from_secs(2);
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    while Instant::now() < end {
        match sock.recv_from(&mut buf) {
            Ok((n, addr)) => {
                // SAFETY: recv initialised the first n bytes.
                let p: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
                if want(&p) {
                    return Some((p, addr.as_socket()));
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("raw recv: {e}"),
        }
    }
    None
}

/// Loads an nftables ruleset into namespace `ns`.
pub fn nft(ns: &str, rules: &str) {
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
pub fn probe(client_ns: &str) -> Option<Vec<u8>> {
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
pub fn probe6(client_ns: &str) -> Option<(Vec<u8>, Ipv6Addr)> {
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
                match from.expect("an IP socket address").ip() {
                    IpAddr::V6(a) => a,
                    IpAddr::V4(a) => a.to_ipv6_mapped(),
                },
            )
        })
    })
}

/// Sends one 1400-byte UDP datagram with DF from the client (path MTU
/// discovery on, the client's path cache flushed first) and returns the
/// ICMP Destination Unreachable it gets, IP header included.
pub fn probe_big(client_ns: &str) -> Option<Vec<u8>> {
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

/// Sends one 1400-byte UDP datagram over IPv6 from the client (its path
/// cache flushed first, so no earlier Packet Too Big shrank the path) and
/// returns the ICMPv6 Packet Too Big it gets (the message: raw ICMPv6
/// sockets see no IP header).
pub fn probe_big6(client_ns: &str) -> Option<Vec<u8>> {
    ip(&["-n", client_ns, "-6", "route", "flush", "cache"]);
    in_netns(client_ns, move || {
        let icmp = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).unwrap();
        let udp = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        let from: SocketAddr = (CLIENT6, 40001).into();
        udp.bind(&from.into()).unwrap();
        let to: SocketAddr = (SERVER6, 33434).into();
        udp.send_to(&[0x5a; 1400], &to.into()).unwrap();
        recv_icmp(&icmp, |p| p.first() == Some(&2)).map(|(p, _)| p)
    })
}

/// `traceroute -n -q 1 -w 1 -m 3 ARGS TO` from the client: the address of
/// each hop, in order.
pub fn traceroute(client_ns: &str, args: &[&str], to: &str) -> Vec<String> {
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        client_ns,
        "traceroute",
        "-n",
        "-q",
        "1",
        "-w",
        "1",
        "-m",
        "3",
    ]);
    cmd.args(args).arg(to);
    let (ok, out, err) = output(&mut cmd);
    assert!(ok, "traceroute {args:?} {to}: {err}");
    out.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(str::to_owned)
        .collect()
}

/// The ICMPv6 fields two Time Exceeded messages about two probes may
/// differ in: the checksum, and the quoted probe's flow label (Linux's
/// `auto_flowlabels` may differ per socket).
pub fn mask6(p: &[u8]) -> Vec<u8> {
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
pub fn mask(p: &[u8]) -> Vec<u8> {
    let mut p = p.to_vec();
    for r in [4..6, 10..12, 22..24, 32..34, 38..40] {
        p[r].fill(0);
    }
    p
}

/// The client's address on the second client–router link.
pub const BACK_CLIENT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
/// The router's address on the second link.
pub const BACK_ROUTER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// A second client source (on the client's loopback) that the router
/// routes back over the second link.
pub const BACK_SOURCE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const BACK_CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, 2);
pub const BACK_ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, 1);
pub const BACK_SOURCE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 2);

/// The second client–router link: datagrams from [`BACK_SOURCE`] /
/// [`BACK_SOURCE6`] reach the router by the first link (the client's
/// default route) while the router's route back to them leaves by this one.
pub struct BackLink {
    pub client_if: String,
    pub router_if: String,
}

impl RouterLab {
    /// Adds the second link (a veth pair; deleted with the namespaces),
    /// with fixed MACs, [`BACK_SOURCE`] / [`BACK_SOURCE6`] on the client's
    /// loopback, the router's routes back to them over the link, and
    /// reverse-path filtering off on the router (its route back is not the
    /// ingress: asymmetric on purpose).
    pub fn add_back_link(&self) -> BackLink {
        let stem = &self.client_if[..self.client_if.len() - 1];
        let b = BackLink {
            client_if: format!("{stem}k"),
            router_if: format!("{stem}b"),
        };
        ip(&[
            "link",
            "add",
            &b.client_if,
            "netns",
            &self.client,
            "type",
            "veth",
            "peer",
            "name",
            &b.router_if,
            "netns",
            &self.router,
        ]);
        for (ns, dev, mac, v4, v6) in [
            (&self.client, &b.client_if, BACK_CLIENT_MAC, BACK_CLIENT, BACK_CLIENT6),
            (&self.router, &b.router_if, BACK_ROUTER_MAC, BACK_ROUTER, BACK_ROUTER6),
        ] {
            ip(&["-n", ns, "link", "set", dev, "address", mac]);
            ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", dev]);
            ip(&["-n", ns, "addr", "add", &format!("{v6}/64"), "dev", dev, "nodad"]);
            // As in `create`: no duplicate address detection.
            icmp_user::lab::sysctl_in(ns, &format!("net.ipv6.conf.{dev}.accept_dad"), "0").unwrap();
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        ip(&[
            "-n",
            &self.client,
            "addr",
            "add",
            &format!("{BACK_SOURCE}/32"),
            "dev",
            "lo",
        ]);
        ip(&[
            "-n",
            &self.client,
            "addr",
            "add",
            &format!("{BACK_SOURCE6}/128"),
            "dev",
            "lo",
            "nodad",
        ]);
        ip(&[
            "-n",
            &self.router,
            "route",
            "add",
            "198.18.0.0/24",
            "via",
            &BACK_CLIENT.to_string(),
            "dev",
            &b.router_if,
        ]);
        ip(&[
            "-n",
            &self.router,
            "-6",
            "route",
            "add",
            "2001:db8:9::/64",
            "via",
            &BACK_CLIENT6.to_string(),
            "dev",
            &b.router_if,
        ]);
        for conf in ["all", "default", self.router_in.as_str(), b.router_if.as_str()] {
            icmp_user::lab::sysctl_in(&self.router, &format!("net.ipv4.conf.{conf}.rp_filter"), "0").unwrap();
        }
        b
    }

    /// `xdp_pass` on the client's `dev` (see [`RouterLab::client_pass`]).
    pub fn client_pass_on(&self, dev: &str) -> Responder {
        let _inside = netns::enter(&self.client).unwrap();
        let mut p = Responder::load_pass().unwrap();
        p.attach(dev, Mode::Driver).unwrap();
        p
    }
}

/// The MAC of the client's end of the second link.
pub const BACK_CLIENT_MAC: &str = "02:00:5e:00:71:02";
/// The MAC of the router's end of the second link.
pub const BACK_ROUTER_MAC: &str = "02:00:5e:00:71:01";

/// Sends a UDP probe with TTL (hop limit) 1 from `src` to `to` in the
/// client's namespace and returns the first whole Ethernet frame that
/// arrives on the client's `dev` carrying an ICMP Time Exceeded (IPv4
/// 11, ICMPv6 3), link header included: where the error came in, and with
/// which MACs, is part of what is compared.
pub fn probe_frame(client_ns: &str, dev: &str, src: IpAddr, to: IpAddr) -> Option<Vec<u8>> {
    let dev = std::ffi::CString::new(dev).unwrap();
    in_netns(client_ns, move || {
        use std::os::fd::FromRawFd as _;
        let all = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain syscalls on our own descriptors and structs.
        let packets = unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, all as libc::c_int);
            assert!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
            let s = Socket::from_raw_fd(fd);
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = all;
            sll.sll_ifindex = libc::if_nametoindex(dev.as_ptr()) as libc::c_int;
            assert!(sll.sll_ifindex > 0, "no interface {dev:?}");
            let r = libc::bind(
                fd,
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            );
            assert_eq!(r, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
            s
        };
        let udp = match src {
            IpAddr::V4(_) => {
                let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
                s.set_ttl_v4(1).unwrap();
                s
            }
            IpAddr::V6(_) => {
                let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
                s.set_unicast_hops_v6(1).unwrap();
                s
            }
        };
        udp.bind(&SocketAddr::new(src, 40002).into()).unwrap();
        udp.send_to(b"an error by another interface", &SocketAddr::new(to, 33434).into())
            .unwrap();
        recv_icmp(&packets, |f| {
            let ethertype = f.get(12..14);
            let v4 = ethertype == Some(&[0x08, 0x00])
                && f.get(23) == Some(&1)
                && f.get(14).map(|b| 14 + (b & 0x0f) as usize * 4).and_then(|at| f.get(at)) == Some(&11);
            let v6 = ethertype == Some(&[0x86, 0xdd]) && f.get(20) == Some(&58) && f.get(54) == Some(&3);
            v4 || v6
        })
        .map(|(f, _)| f)
    })
}
