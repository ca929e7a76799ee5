//! Router-side errors (`[router]`) through BPF_PROG_TEST_RUN on the real
//! program, in a namespace of the test's own with forwarding on: each frame
//! "arrives" on the router's client-facing veth (`ctx.ingress_ifindex`), so
//! the program's `bpf_fib_lookup` asks that namespace's real FIB and
//! neighbour tables (neighbours and MACs fixed by the test).
//!
//! Expected frames are written from RFC 792 / RFC 1812 §4.3.2.3 (IPv4: a
//! new 20-byte header, TOS precedence 6 over the original's TOS bits, TTL
//! 64, as much of the original as fits in 576 bytes) and RFC 4443 (ICMPv6:
//! as much as fits in 1280 bytes), with the route back's MACs — not from
//! the program's code. The IPv4 ID is whatever the program chose.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    process::{Command, Stdio},
};

use icmp_common::{Config, Reason, counters::type_index, ratelimit::Limit, reason::Family};
use icmp_user::{config::FileConfig, observe::counters::Snapshot};
use icmpxdp_tests::{
    ETH_P_IP, ETH_P_IPV6, Frame, MAC_PEER, MAC_US, PEER4, PEER6, US4, US6, XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX,
    Xdp, fix_ipv4_checksum, icmp4, icmp6, in_netns, inet_checksum, ipv4, ipv6, output, payload, require_root, udp4,
    udp6,
};

/// Beyond the router's egress (MTU 1280).
const FAR4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const FAR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);
/// Routed back over the third link, not the ingress.
const BACK_SOURCE4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const BACK_SOURCE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 2);
const BACK_ROUTER4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// On the ingress's subnet, with no neighbour entry.
const UNKNOWN4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 9);
const MAC_BACK_ROUTER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x04];
const MAC_BACK_NEXT_HOP: [u8; 6] = [0x02, 0, 0, 0, 0, 0x03];

fn mac_str(m: [u8; 6]) -> String {
    m.map(|b| format!("{b:02x}")).join(":")
}

fn ip(args: &[&str]) {
    let (ok, _, err) = output(Command::new("ip").args(args));
    assert!(ok, "ip {args:?}: {err}");
}

/// The router's namespace and a peer namespace holding the far ends of its
/// three veths (`in`: the ingress, US4/US6 and MAC_US; `out`: MTU 1280
/// toward FAR4/FAR6; `back`: the route back to BACK_SOURCE4/6). Deleted on
/// drop.
struct RouterNs {
    router: String,
    peer: String,
}

impl RouterNs {
    fn create(tag: &str) -> Self {
        require_root();
        let id = std::process::id() % 100_000;
        let n = Self {
            router: format!("icmpxdp-t{id}-{tag}pr"),
            peer: format!("icmpxdp-t{id}-{tag}pp"),
        };
        for ns in [&n.router, &n.peer] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
            ip(&["netns", "add", ns]);
        }
        let r = n.router.as_str();
        for (dev, peer_dev) in [("in", "pin"), ("out", "pout"), ("back", "pback")] {
            ip(&[
                "link", "add", dev, "netns", r, "type", "veth", "peer", "name", peer_dev, "netns", &n.peer,
            ]);
            ip(&["-n", &n.peer, "link", "set", peer_dev, "up"]);
        }
        for (dev, mac, v4, v6) in [
            ("in", MAC_US, "192.0.2.1/24", "2001:db8::1/64"),
            ("out", [0x02, 0, 0, 0, 0, 0x05], "198.51.100.1/24", "2001:db8:2::1/64"),
            ("back", MAC_BACK_ROUTER, "203.0.113.1/24", "2001:db8:3::1/64"),
        ] {
            ip(&["-n", r, "link", "set", dev, "address", &mac_str(mac)]);
            ip(&["-n", r, "addr", "add", v4, "dev", dev]);
            ip(&["-n", r, "addr", "add", v6, "dev", dev, "nodad"]);
            ip(&["-n", r, "link", "set", dev, "up"]);
        }
        ip(&["-n", r, "link", "set", "out", "mtu", "1280"]);
        for (addr, mac, dev) in [
            (PEER4.to_string(), MAC_PEER, "in"),
            (PEER6.to_string(), MAC_PEER, "in"),
            ("203.0.113.2".into(), MAC_BACK_NEXT_HOP, "back"),
            ("2001:db8:3::2".into(), MAC_BACK_NEXT_HOP, "back"),
        ] {
            ip(&[
                "-n",
                r,
                "neigh",
                "replace",
                &addr,
                "lladdr",
                &mac_str(mac),
                "dev",
                dev,
                "nud",
                "permanent",
            ]);
        }
        ip(&[
            "-n",
            r,
            "route",
            "add",
            "198.18.0.0/24",
            "via",
            "203.0.113.2",
            "dev",
            "back",
        ]);
        ip(&[
            "-n",
            r,
            "-6",
            "route",
            "add",
            "2001:db8:9::/64",
            "via",
            "2001:db8:3::2",
            "dev",
            "back",
        ]);
        icmp_user::lab::sysctl_in(r, "net.ipv4.ip_forward", "1").unwrap();
        icmp_user::lab::sysctl_in(r, "net.ipv6.conf.all.forwarding", "1").unwrap();
        n
    }

    /// Runs `f` in the router's namespace with the program loaded and
    /// configured from `toml` (limits lifted unless it sets them; the
    /// address set is the ingress's), and the ingress's ifindex.
    fn with_program<T: Send + 'static>(&self, toml: &str, f: impl FnOnce(&mut Xdp, u32) -> T + Send + 'static) -> T {
        let toml = toml.to_owned();
        in_netns(&self.router, move || {
            let s = FileConfig::from_toml(&format!("{toml}\n")).unwrap().settings().unwrap();
            let limited = toml.contains("[rate_limit]");
            let cfg = Config {
                per_source: if limited { s.config.per_source } else { Limit::UNLIMITED },
                global: if limited { s.config.global } else { Limit::UNLIMITED },
                ..s.config
            };
            let addrs = icmp_user::dataplane::addrs::interface_addrs("in").unwrap().set;
            let mut x = Xdp::with_addrs(cfg, &addrs);
            x.responder
                .apply(&icmp_user::config::Settings { config: cfg, ..s })
                .unwrap();
            let ifindex = nix::net::if_::if_nametoindex("in").unwrap();
            f(&mut x, ifindex)
        })
    }
}

impl Drop for RouterNs {
    fn drop(&mut self) {
        for ns in [&self.router, &self.peer] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// An IPv4 router error as RFC 792 / RFC 1812 and Linux's `icmp_send` build
/// it: link header `l2` (the route back's MACs, the ingress's tags), a new
/// 20-byte header (TOS precedence 6 over the original's TOS bits, ID `id`,
/// no flags, TTL 64), then the ICMP message quoting as much of `original`
/// as fits in 576 bytes.
fn expected_v4(
    l2: &[u8],
    from: Ipv4Addr,
    to: Ipv4Addr,
    id: [u8; 2],
    kind: [u8; 2],
    rest: [u8; 4],
    original: &[u8],
) -> Vec<u8> {
    let quote = &original[..original.len().min(576 - 28)];
    let msg = icmp4(kind[0], kind[1], rest, quote);
    let len = (20 + msg.len()) as u16;
    let mut h = vec![0x45, (original[1] & 0x1e) | 0xc0];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&id);
    h.extend_from_slice(&[0, 0, 64, 1, 0, 0]);
    h.extend_from_slice(&from.octets());
    h.extend_from_slice(&to.octets());
    let c = inet_checksum(&[&h]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    [l2, &h, &msg].concat()
}

/// An ICMPv6 router error (RFC 4443): link header `l2`, an IPv6 header
/// (traffic class and flow label 0, hop limit 64), the message quoting as
/// much of `original` as fits in 1280 bytes.
fn expected_v6(l2: &[u8], from: Ipv6Addr, to: Ipv6Addr, kind: [u8; 2], rest: [u8; 4], original: &[u8]) -> Vec<u8> {
    let quote = &original[..original.len().min(1280 - 48)];
    let msg = icmp6(&from, &to, kind[0], kind[1], rest, quote);
    [l2, &ipv6(from, to, 58, 64, &msg)].concat()
}

/// Ethernet header (with `vlans` tags as [`Frame::with_vlans`] makes them).
fn l2(dst: [u8; 6], src: [u8; 6], vlans: usize, ethertype: u16) -> Vec<u8> {
    let mut f = Frame::new(ethertype, vec![]).with_vlans(vlans);
    f.dst_mac = dst;
    f.src_mac = src;
    f.bytes()
}

fn udp_v4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, len: usize) -> Vec<u8> {
    ipv4(
        src,
        dst,
        17,
        ttl,
        &[],
        &udp4(src, dst, 40000, 33434, &payload(len - 28, 7)),
    )
}

fn udp_v6(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, len: usize) -> Vec<u8> {
    ipv6(
        src,
        dst,
        17,
        hop_limit,
        &udp6(&src, &dst, 40000, 33434, &payload(len - 48, 9)),
    )
}

/// The expected frame out, given the frame out (for the fields the program
/// may choose: the IPv4 ID).
type Expected = Box<dyn Fn(&[u8]) -> Vec<u8> + Send>;

/// One case: the frame, the action and verdict, and the frame expected out
/// (`None`: the frame must come back unchanged).
struct Case {
    name: &'static str,
    frame: Vec<u8>,
    action: u32,
    verdict: Reason,
    expected: Option<Expected>,
}

/// The IPv4 ID of an IPv4 error frame out (link header `l2_len` bytes).
fn id_of(out: &[u8], l2_len: usize) -> [u8; 2] {
    [out[l2_len + 4], out[l2_len + 5]]
}

/// An IPv4 router error about `original` (behind `vlans` tags) sent back
/// by the ingress: XDP_TX, to the peer's MAC from ours, from US4, the
/// tags kept.
fn back_by_ingress_v4(
    name: &'static str,
    original: Vec<u8>,
    vlans: usize,
    verdict: Reason,
    kind: [u8; 2],
    rest: [u8; 4],
) -> Case {
    let frame = Frame::new(ETH_P_IP, original.clone()).with_vlans(vlans);
    let l2_len = frame.l2_len();
    Case {
        name,
        frame: frame.bytes(),
        action: XDP_TX,
        verdict,
        expected: Some(Box::new(move |out| {
            expected_v4(
                &l2(MAC_PEER, MAC_US, vlans, ETH_P_IP),
                US4,
                PEER4,
                id_of(out, l2_len),
                kind,
                rest,
                &original,
            )
        })),
    }
}

fn cases() -> Vec<Case> {
    const TE: [u8; 2] = [11, 0];
    let mut v = Vec::new();
    // Time Exceeded, IPv4, untagged and with one or two tags.
    for (name, vlans) in [("TE v4", 0), ("TE v4, one tag", 1), ("TE v4, QinQ", 2)] {
        let original = udp_v4(PEER4, FAR4, 1, 100);
        v.push(back_by_ingress_v4(
            name,
            original,
            vlans,
            Reason::TimeExceededSent,
            TE,
            [0; 4],
        ));
    }
    // With IP options (Record Route, 4 bytes of room + NOP): quoted whole.
    let opts = [7, 7, 4, 0, 0, 0, 0, 1];
    let body = udp4(PEER4, FAR4, 40000, 33434, &payload(40, 3));
    let mut original = ipv4(PEER4, FAR4, 17, 1, &opts, &body);
    original[1] = 0x28;
    fix_ipv4_checksum(&mut original);
    v.push(back_by_ingress_v4(
        "TE v4, IP options and a TOS",
        original,
        0,
        Reason::TimeExceededSent,
        TE,
        [0; 4],
    ));
    // A long datagram: the quote stops at 576 bytes in all.
    let original = udp_v4(PEER4, FAR4, 0, 1000);
    v.push(back_by_ingress_v4(
        "TE v4, TTL 0, long",
        original,
        0,
        Reason::TimeExceededSent,
        TE,
        [0; 4],
    ));
    // Fragmentation Needed: DF, over the egress MTU, next-hop MTU 1280.
    let original = udp_v4(PEER4, FAR4, 64, 1400);
    v.push(back_by_ingress_v4(
        "FN v4",
        original,
        0,
        Reason::FragNeededSent,
        [3, 4],
        [0, 0, 0x05, 0x00],
    ));
    // The route back leaves by another interface: redirected there, from
    // its address and with its MACs.
    {
        let original = udp_v4(BACK_SOURCE4, FAR4, 1, 100);
        v.push(Case {
            name: "TE v4, route back by another interface",
            frame: Frame::new(ETH_P_IP, original.clone()).bytes(),
            action: XDP_REDIRECT,
            verdict: Reason::TimeExceededRedirected,
            expected: Some(Box::new(move |out| {
                expected_v4(
                    &l2(MAC_BACK_NEXT_HOP, MAC_BACK_ROUTER, 0, ETH_P_IP),
                    BACK_ROUTER4,
                    BACK_SOURCE4,
                    id_of(out, 14),
                    [11, 0],
                    [0; 4],
                    &original,
                )
            })),
        });
    }
    // ICMPv6: Time Exceeded and Packet Too Big, back by the ingress; Time
    // Exceeded redirected, from the inbound interface's address.
    for (name, original, action, verdict, kind, rest, dst_mac, src_mac, to) in [
        (
            "TE v6",
            udp_v6(PEER6, FAR6, 1, 100),
            XDP_TX,
            Reason::TimeExceededSent,
            [3, 0],
            [0; 4],
            MAC_PEER,
            MAC_US,
            PEER6,
        ),
        (
            "PTB v6",
            udp_v6(PEER6, FAR6, 64, 1400),
            XDP_TX,
            Reason::FragNeededSent,
            [2, 0],
            [0, 0, 0x05, 0x00],
            MAC_PEER,
            MAC_US,
            PEER6,
        ),
        (
            "TE v6, route back by another interface",
            udp_v6(BACK_SOURCE6, FAR6, 1, 100),
            XDP_REDIRECT,
            Reason::TimeExceededRedirected,
            [3, 0],
            [0; 4],
            MAC_BACK_NEXT_HOP,
            MAC_BACK_ROUTER,
            BACK_SOURCE6,
        ),
    ] {
        let frame = Frame::new(ETH_P_IPV6, original.clone()).bytes();
        v.push(Case {
            name,
            frame,
            action,
            verdict,
            expected: Some(Box::new(move |_| {
                expected_v6(&l2(dst_mac, src_mac, 0, ETH_P_IPV6), US6, to, kind, rest, &original)
            })),
        });
    }
    // Left alone: to the kernel, unchanged.
    let unchanged = |name, frame: Vec<u8>, verdict| Case {
        name,
        frame,
        action: XDP_PASS,
        verdict,
        expected: None,
    };
    v.push(unchanged(
        "TTL 2: forwarded by the kernel",
        Frame::new(ETH_P_IP, udp_v4(PEER4, FAR4, 2, 100)).bytes(),
        Reason::NotOurs,
    ));
    {
        let mut l3 = udp_v4(PEER4, FAR4, 64, 1400);
        l3[6] = 0; // no DF: the kernel fragments it
        fix_ipv4_checksum(&mut l3);
        v.push(unchanged(
            "over the MTU without DF",
            Frame::new(ETH_P_IP, l3).bytes(),
            Reason::NotOurs,
        ));
    }
    v.push(unchanged(
        "no neighbour for the route back",
        Frame::new(ETH_P_IP, udp_v4(UNKNOWN4, FAR4, 1, 100)).bytes(),
        Reason::NoRouteBack,
    ));
    v.push(unchanged(
        "tagged, route back by another interface",
        Frame::new(ETH_P_IP, udp_v4(BACK_SOURCE4, FAR4, 1, 100))
            .with_vlans(1)
            .bytes(),
        Reason::NoRouteBack,
    ));
    // Suppressions (RFC 1812 §4.3.2.7).
    v.push(unchanged(
        "about an ICMP error",
        Frame::new(
            ETH_P_IP,
            ipv4(
                PEER4,
                FAR4,
                1,
                1,
                &[],
                &icmp4(3, 3, [0; 4], &udp_v4(FAR4, PEER4, 64, 40)),
            ),
        )
        .bytes(),
        Reason::SuppressedIcmpError,
    ));
    {
        let mut l3 = udp_v4(PEER4, FAR4, 1, 100);
        l3[6] = 0x00;
        l3[7] = 0x10; // offset 128 bytes: not the first fragment
        fix_ipv4_checksum(&mut l3);
        v.push(unchanged(
            "a non-first fragment",
            Frame::new(ETH_P_IP, l3).bytes(),
            Reason::SuppressedNonFirstFragment,
        ));
    }
    {
        let mut f = Frame::new(ETH_P_IP, udp_v4(PEER4, FAR4, 1, 100));
        f.dst_mac = [0xff; 6];
        v.push(unchanged(
            "sent to the link broadcast",
            f.bytes(),
            Reason::SuppressedLinkBroadcast,
        ));
    }
    v.push(unchanged(
        "from a source that is not a host",
        Frame::new(ETH_P_IP, udp_v4(Ipv4Addr::new(0, 0, 0, 7), FAR4, 1, 100)).bytes(),
        Reason::SuppressedBadSource,
    ));
    // Bad input: passed, counted malformed, never answered.
    {
        let mut l3 = udp_v4(PEER4, FAR4, 1, 100);
        l3[10] ^= 0x55;
        v.push(unchanged(
            "bad header checksum",
            Frame::new(ETH_P_IP, l3).bytes(),
            Reason::Malformed,
        ));
    }
    {
        let mut l3 = udp_v4(PEER4, FAR4, 1, 100);
        l3[2..4].copy_from_slice(&400u16.to_be_bytes()); // longer than the frame
        fix_ipv4_checksum(&mut l3);
        v.push(unchanged(
            "lying total length",
            Frame::new(ETH_P_IP, l3).bytes(),
            Reason::Malformed,
        ));
    }
    {
        let mut l3 = udp_v6(PEER6, FAR6, 1, 100);
        l3[4..6].copy_from_slice(&900u16.to_be_bytes());
        v.push(unchanged(
            "lying payload length, IPv6",
            Frame::new(ETH_P_IPV6, l3).bytes(),
            Reason::Malformed,
        ));
    }
    v
}

#[test]
fn router_errors_are_built_as_the_rfcs_say_and_suppressed_where_they_forbid() {
    let ns = RouterNs::create("p");
    let failures = ns.with_program("[router]\ntime_exceeded = true\nfrag_needed = true", |x, ifindex| {
        let mut failures = Vec::new();
        let cases = cases();
        for c in &cases {
            let (action, out) = x.run_on(&c.frame, ifindex);
            let want = c.expected.as_ref().map_or_else(|| c.frame.clone(), |e| e(&out));
            if action != c.action || out != want {
                failures.push(format!(
                    "{}: action {action} (want {})\n  out  {out:02x?}\n  want {want:02x?}",
                    c.name, c.action
                ));
            }
        }
        // Every frame one verdict, counted as the table says.
        let snap = Snapshot::of(&x.responder).unwrap();
        for r in Reason::ALL {
            let want = cases.iter().filter(|c| c.verdict == r).count() as u64;
            if snap.verdict(r) != want {
                failures.push(format!(
                    "verdict {}: {} counted, {want} in the table",
                    r.label(),
                    snap.verdict(r)
                ));
            }
        }
        for (family, kind, want) in [
            (Family::V4, 11, 6u64),
            (Family::V4, 3, 1),
            (Family::V6, 3, 2),
            (Family::V6, 2, 1),
        ] {
            let got = snap.sent[type_index(family, kind) as usize];
            if got != want {
                failures.push(format!("sent {family:?} type {kind}: {got}, want {want}"));
            }
        }
        failures
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Time Exceeded is in Linux's default ratemask (limited per source);
/// Fragmentation Needed is exempt (`icmpv4_mask_allow`).
#[test]
fn time_exceeded_is_rate_limited_and_frag_needed_is_not() {
    let ns = RouterNs::create("l");
    let toml = "[router]\ntime_exceeded = true\nfrag_needed = true\n[rate_limit]\nratelimit_ms = 1000\nburst = 2";
    let (te, fn_) = ns.with_program(toml, |x, ifindex| {
        let run = |x: &mut Xdp, l3: Vec<u8>| {
            (0..5)
                .map(|_| x.run_on(&Frame::new(ETH_P_IP, l3.clone()).bytes(), ifindex).0)
                .collect::<Vec<_>>()
        };
        (
            run(x, udp_v4(PEER4, FAR4, 1, 100)),
            run(x, udp_v4(PEER4, FAR4, 64, 1400)),
        )
    });
    assert_eq!(
        te,
        [XDP_TX, XDP_TX, XDP_DROP, XDP_DROP, XDP_DROP],
        "burst 2, then over the limit (dropped)"
    );
    assert_eq!(fn_, [XDP_TX; 5], "Fragmentation Needed is not limited");
}
