//! The program on a second real driver, tun/tap in native mode: frames are
//! written into the tap's fd as if from a wire, and what comes back — the
//! kernel's own answer without XDP, or the frame the program sent with
//! XDP_TX — is read from the same fd.
//!
//! - Differential: the same random valid echo requests and UDP datagrams to
//!   closed ports, answered once by Linux and once by icmpxdp, agree byte
//!   for byte except the fields listed in [`mask_legit_differences`].
//! - Multi-queue: two queues written from threads on both CPUs, every
//!   request answered, counters summed over CPUs; the host-wide error limit
//!   (one word both CPUs compare-and-exchange) holds across the queues.

use icmp_user::observe::counters::Snapshot;
use std::{process::Command, time::Duration};

use icmp_common::{Config, ratelimit::Limit};
use icmp_user::{
    bench::frames::{
        ETH_P_IP, ETH_P_IPV6, Frame, MAC_PEER, PEER4, PEER6, US4, US6, icmp4, icmp6, ipv4, ipv6, udp4, udp6,
    },
    dataplane::{
        addrs::interface_addrs,
        load::{Attached, Mode, Responder},
        netns,
    },
    lab::sysctl_in,
};
use icmpxdp_tests::{
    fuzz::Rng,
    tap::{MAC_TAP, Tap},
};

fn ns_name(what: &str) -> String {
    format!("icmpxdp-t{}-{what}", std::process::id() % 100_000)
}

/// Loads and attaches the responder in driver mode on the tap (limits off:
/// these tests send bursts to one peer).
fn attach(tap: &Tap) -> Responder {
    let _inside = netns::enter(&tap.ns).expect("enter the tap namespace");
    let mut r = Responder::load().expect("load");
    r.set_config(&Config {
        flags: Config::default().flags | icmp_common::config::FLAG_TIMESTAMP_ANSWER,
        per_source: Limit::UNLIMITED,
        global: Limit::UNLIMITED,
        ..Config::default()
    })
    .expect("config");
    r.set_addrs(&interface_addrs(&tap.name).expect("tap addresses").set)
        .expect("addrs");
    let got = r
        .attach(&tap.name, Mode::Driver)
        .expect("attach to the tap in driver mode");
    assert_eq!(got, Attached::Driver, "tun/tap has native XDP");
    r
}

/// Silences the kernel's own answers in the tap namespace, so what comes
/// back while XDP is attached provably came from XDP.
fn silence_kernel(ns: &str) {
    sysctl_in(ns, "net.ipv4.icmp_echo_ignore_all", "1").unwrap();
    sysctl_in(ns, "net.ipv6.icmp.echo_ignore_all", "1").unwrap();
    icmpxdp_tests::block_kernel_unreachables(ns);
    // Linux answers timestamps whatever the sysctls say.
    let st = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "nft",
            "add",
            "rule",
            "inet",
            "icmpxdp_test",
            "out",
            "icmp",
            "type",
            "timestamp-reply",
            "drop",
        ])
        .status()
        .unwrap();
    assert!(st.success(), "nft rule for timestamp replies");
}

fn frame(l3: Vec<u8>, v6: bool) -> Vec<u8> {
    let mut f = Frame::new(if v6 { ETH_P_IPV6 } else { ETH_P_IP }, l3);
    f.dst_mac = MAC_TAP;
    f.src_mac = MAC_PEER;
    f.bytes()
}

/// One random valid request of each kind, seeded: (frame, is it IPv6, what
/// identifies its answer).
fn requests(rng: &mut Rng) -> Vec<(Vec<u8>, bool, Vec<u8>)> {
    let mut out = Vec::new();
    let len = rng.below(200) as usize;
    let data = rng.bytes(len);
    let rest: [u8; 4] = rng.bytes(4).try_into().unwrap();
    // IPv4 echo with a random TOS and TTL.
    let mut l3 = ipv4(PEER4, US4, 1, 1 + rng.byte() % 200, &[], &icmp4(8, 0, rest, &data));
    l3[1] = rng.byte() & 0xfc;
    icmpxdp_tests::fix_ipv4_checksum(&mut l3);
    out.push((frame(l3, false), false, rest.to_vec()));
    // ICMPv6 echo.
    let l3 = ipv6(
        PEER6,
        US6,
        58,
        1 + rng.byte() % 200,
        &icmp6(&PEER6, &US6, 128, 0, rest, &data),
    );
    out.push((frame(l3, true), true, rest.to_vec()));
    // An IPv4 Timestamp request (12 bytes of data: originate, receive, transmit).
    let mut ts_data = rng.bytes(4);
    ts_data.extend([0u8; 8]);
    let mut l3 = ipv4(PEER4, US4, 1, 1 + rng.byte() % 200, &[], &icmp4(13, 0, rest, &ts_data));
    l3[1] = rng.byte() & 0xfc;
    icmpxdp_tests::fix_ipv4_checksum(&mut l3);
    out.push((frame(l3, false), false, rest.to_vec()));
    // UDP to a closed port, both families.
    let dport = 33434 + rng.below(100) as u16;
    let sport = 1024 + rng.below(60000) as u16;
    let mut l3 = ipv4(PEER4, US4, 17, 64, &[], &udp4(PEER4, US4, sport, dport, &data));
    l3[1] = rng.byte() & 0xfc;
    icmpxdp_tests::fix_ipv4_checksum(&mut l3);
    out.push((frame(l3, false), false, dport.to_be_bytes().to_vec()));
    let l3 = ipv6(PEER6, US6, 17, 64, &udp6(&PEER6, &US6, sport, dport, &data));
    out.push((frame(l3, true), true, dport.to_be_bytes().to_vec()));
    out
}

/// Whether `reply` answers the request identified by `key`.
fn answers(reply: &[u8], v6: bool, key: &[u8]) -> bool {
    if reply.len() < 14 + 28 || reply[0..6] != MAC_PEER {
        return false;
    }
    if v6 {
        if reply.len() < 14 + 48 {
            return false;
        }
        reply[12..14] == [0x86, 0xdd]
            && reply[14 + 6] == 58
            && match reply[14 + 40] {
                129 => reply[14 + 44..14 + 48] == *key,
                1 => reply.len() >= 14 + 48 + 44 && reply[14 + 48 + 42..14 + 48 + 44] == *key,
                _ => false,
            }
    } else {
        reply[12..14] == [0x08, 0x00]
            && reply[14 + 9] == 1
            && match reply[14 + 20] {
                0 | 14 => reply[14 + 24..14 + 28] == *key,
                3 => reply.len() >= 14 + 28 + 24 && reply[14 + 28 + 22..14 + 28 + 24] == *key,
                _ => false,
            }
    }
}

/// The fields in which Linux's answer and icmpxdp's legitimately differ:
///
/// - IPv4 echo reply: the IP ID and the DF bit (Linux builds a new header
///   from its ICMP socket, ID from `ip_select_ident`, DF clear; icmpxdp
///   rewrites the request in place and keeps its ID and flags), and so the
///   header checksum. TOS, TTL, addresses, the ICMP message: identical.
/// - IPv4 Port Unreachable: the IP ID (fresh on both sides) and the header
///   checksum.
/// - IPv6: the flow label only (Linux sets one from its flow hash,
///   `net.ipv6.auto_flowlabels`; icmpxdp keeps the request's on a reply and
///   sends 0 on an error). Traffic class, hop limit, addresses and the whole
///   ICMPv6 message are compared.
fn mask_legit_differences(f: &[u8], v6: bool) -> Vec<u8> {
    let mut f = f.to_vec();
    if !v6 && f.len() >= 14 + 40 && f[14 + 20] == 14 {
        // A timestamp reply: the clock readings (each checked against the
        // host's clock instead) and the ICMP checksum that covers them.
        f[14 + 22..14 + 24].fill(0);
        f[14 + 32..14 + 40].fill(0);
    }
    if v6 {
        f[14 + 1] &= 0xf0; // flow label, high 4 bits
        f[14 + 2..14 + 4].fill(0);
    } else {
        let ip = 14;
        f[ip + 4..ip + 6].fill(0); // ID
        f[ip + 6] &= !0x40; // DF
        f[ip + 10..ip + 12].fill(0); // header checksum
    }
    f
}

#[test]
fn answers_match_the_kernels_on_a_tap() {
    let ns = ns_name("tapdiff");
    std::thread::spawn(move || {
        let tap = Tap::create(&ns, "ixtap0", 1);
        let mut rng = Rng::new(0x7a9);
        let cases: Vec<_> = (0..25).flat_map(|_| requests(&mut rng)).collect();

        // 1. Linux answers (nothing attached).
        let mut kernel = Vec::new();
        for (f, v6, key) in &cases {
            tap.write(0, f);
            let got = tap.read_matching(Duration::from_secs(2), |r| answers(r, *v6, key));
            kernel.push(got.unwrap_or_else(|| panic!("the kernel answers {}", hex(f))));
        }

        // 2. icmpxdp answers, the kernel silenced.
        silence_kernel(&tap.ns);
        let r = attach(&tap);
        tap.drain();
        for (i, (f, v6, key)) in cases.iter().enumerate() {
            tap.write(0, f);
            let ours = tap
                .read_matching(Duration::from_secs(2), |r| answers(r, *v6, key))
                .unwrap_or_else(|| panic!("icmpxdp answers {}", hex(f)));
            assert_eq!(
                hex(&mask_legit_differences(&ours, *v6)),
                hex(&mask_legit_differences(&kernel[i], *v6)),
                "case {i}: icmpxdp's answer differs from Linux's\n  request {}",
                hex(f)
            );
            if !*v6 {
                assert!(
                    icmp_user::bench::frames::checksum_ok(&[&ours[14..34]]),
                    "IPv4 header checksum"
                );
            }
            if !*v6 && ours[14 + 20] == 14 {
                assert!(icmp_user::bench::frames::checksum_ok(&[&ours[34..]]), "ICMP checksum");
                let transmit = i64::from(u32::from_be_bytes(ours[14 + 36..14 + 40].try_into().unwrap()));
                let now = (std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis()
                    % 86_400_000) as i64;
                // Read before `now`, by at most the time reading the reply took.
                assert!(
                    (0..=10 + 20).contains(&(now - transmit)),
                    "transmit {transmit} within 10 ms of the host's clock ({now}, read just after)"
                );
            }
        }
        let s = Snapshot::of(&r).unwrap();
        assert_eq!(
            s.verdict(icmp_common::Reason::EchoAnswered),
            50,
            "50 echoes answered by XDP"
        );
        assert_eq!(
            s.verdict(icmp_common::Reason::TimestampAnswered),
            25,
            "25 timestamps answered by XDP"
        );
        assert_eq!(
            s.verdict(icmp_common::Reason::UnreachableSent),
            50,
            "50 errors sent by XDP"
        );
        drop(r);
        drop(tap);
    })
    .join()
    .expect("tap differential test");
}

/// Runs `write(tap, cpu)` on a thread pinned to each of CPUs 0 and 1 at
/// once (the program runs on the writer's CPU), writing to queue `cpu`.
fn on_both_cpus(tap: &std::sync::Arc<Tap>, write: impl Fn(&Tap, usize) + Send + Sync + Copy + 'static) {
    let writers: Vec<_> = (0..2usize)
        .map(|cpu| {
            let tap = std::sync::Arc::clone(tap);
            std::thread::spawn(move || {
                let mut set = nix::sched::CpuSet::new();
                set.set(cpu).unwrap();
                nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).unwrap();
                write(&tap, cpu);
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
}

#[test]
fn multi_queue_tap_answers_on_every_queue_and_cpu() {
    let ns = ns_name("tapmq");
    let tap = std::sync::Arc::new(Tap::create(&ns, "ixtapmq", 2));
    silence_kernel(&ns);
    let r = std::thread::scope(|s| s.spawn(|| attach(&tap)).join().unwrap());
    tap.drain();
    const PER_CPU: u16 = 20;
    // One writer per CPU: the program runs on the writer's CPU, so both
    // CPUs' counters move.
    on_both_cpus(&tap, |tap, cpu| {
        for seq in 0..PER_CPU {
            let rest = [cpu as u8, 0, 0, seq as u8];
            let l3 = ipv4(PEER4, US4, 1, 64, &[], &icmp4(8, 0, rest, b"multi-queue"));
            tap.write(cpu, &frame(l3, false));
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let mut answered = 0;
    while tap
        .read_matching(Duration::from_millis(500), |f| {
            f.len() > 34 && f[12..14] == [8, 0] && f[34] == 0
        })
        .is_some()
    {
        answered += 1;
    }
    assert_eq!(answered, 2 * PER_CPU, "every request answered, on whichever queue");
    let s = Snapshot::of(&r).unwrap();
    assert_eq!(s.verdict(icmp_common::Reason::EchoAnswered), u64::from(2 * PER_CPU));
    assert_eq!(s.frames(), s.actions.iter().sum::<u64>(), "counters add up");
    drop(r);
    let _ = Command::new("true").status();
}

/// Two receive queues on two CPUs flood Port Unreachable at once against a
/// host-wide limit of burst 50 (10 s intervals: no refill during the test):
/// never more than 50 errors leave, whichever queue asked — the global
/// bucket is one word both CPUs update with compare-and-exchange — and
/// every datagram is either answered or counted as refused by it. (A
/// compare-and-exchange lost twice refuses, so contention may only send
/// fewer; the README's *Benchmarks* give its cost.)
#[test]
fn the_global_limit_holds_across_two_queues_on_two_cpus() {
    const PER_CPU: u16 = 500;
    const BURST: u32 = 50;
    let ns = ns_name("tapgl");
    let tap = std::sync::Arc::new(Tap::create(&ns, "ixtapgl", 2));
    silence_kernel(&ns);
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            let mut r = attach(&tap);
            let _inside = netns::enter(&tap.ns).unwrap();
            r.set_config(&Config {
                per_source: Limit::UNLIMITED,
                global: Limit::new(10_000_000_000, BURST),
                ..Config::default()
            })
            .unwrap();
            r
        })
        .join()
        .unwrap()
    });
    tap.drain();
    on_both_cpus(&tap, |tap, cpu| {
        for seq in 0..PER_CPU {
            let sport = 20_000 + (cpu as u16) * 1000 + seq;
            let l3 = ipv4(PEER4, US4, 17, 64, &[], &udp4(PEER4, US4, sport, 9, b"two queues"));
            tap.write(cpu, &frame(l3, false));
        }
    });
    let mut answered = 0u64;
    while tap
        .read_matching(Duration::from_millis(500), |f| {
            f.len() > 34 && f[12..14] == [8, 0] && f[23] == 1 && f[34] == 3
        })
        .is_some()
    {
        answered += 1;
    }
    let s = Snapshot::of(&r).unwrap();
    let sent = s.sent(icmp_common::Family::V4, 3);
    let refused = s.limited(icmp_common::ratelimit::Scope::Global, icmp_common::Family::V4, 3);
    assert_eq!(answered, sent, "every error counted came out of a queue");
    assert!(sent <= u64::from(BURST), "{sent} errors past a burst of {BURST}");
    assert!(
        sent >= u64::from(BURST) - 5,
        "{sent} errors: contention refused more than a few"
    );
    assert_eq!(
        sent + refused,
        2 * u64::from(PER_CPU),
        "every datagram answered or refused by the global limit"
    );
    assert_eq!(s.frames(), s.actions.iter().sum::<u64>(), "counters add up");
    drop(r);
}

/// Address Mask through the loader's view of a real interface: the mask and
/// MAC in the reply are what `interface_addrs` read from the tap (192.0.2.1/24,
/// MAC_TAP), not test constants fed to the program. Linux itself sends
/// nothing (no handler for type 17): checked first, so the answer provably
/// comes from XDP.
#[test]
fn address_mask_requests_get_the_interface_s_mask_and_mac() {
    let ns = ns_name("tapmask");
    std::thread::spawn(move || {
        let tap = Tap::create(&ns, "ixtapmk", 1);
        let mut req = Frame::new(
            ETH_P_IP,
            ipv4(
                PEER4,
                std::net::Ipv4Addr::BROADCAST,
                1,
                64,
                &[],
                &icmp4(17, 0, [0x51, 0x7e, 0, 1], &[0; 4]),
            ),
        );
        req.dst_mac = [0xff; 6];
        let is_mask_reply = |r: &[u8]| r.len() >= 46 && r[12..14] == [8, 0] && r[23] == 1 && r[34] == 18;

        tap.write(0, &req.bytes());
        assert!(
            tap.read_matching(Duration::from_millis(500), is_mask_reply).is_none(),
            "Linux does not answer Address Mask requests"
        );

        let mut r = attach(&tap);
        r.set_config(&Config {
            flags: Config::default().flags | icmp_common::config::FLAG_ADDRESS_MASK_ANSWER,
            per_source: Limit::UNLIMITED,
            global: Limit::UNLIMITED,
            ..Config::default()
        })
        .expect("config");
        tap.drain();
        tap.write(0, &req.bytes());
        let reply = tap
            .read_matching(Duration::from_secs(2), is_mask_reply)
            .expect("icmpxdp answers the broadcast request");
        assert_eq!(&reply[..6], &MAC_PEER, "to the requester's MAC");
        assert_eq!(&reply[6..12], &MAC_TAP, "from the interface's MAC, read by the loader");
        assert_eq!(
            &reply[26..30],
            &US4.octets(),
            "from the address whose subnet holds the source"
        );
        assert_eq!(&reply[30..34], &PEER4.octets());
        assert_eq!(&reply[38..42], &[0x51, 0x7e, 0, 1], "identifier and sequence");
        assert_eq!(&reply[42..46], &[255, 255, 255, 0], "the /24 the loader read");
        assert!(icmp_user::bench::frames::checksum_ok(&[&reply[14..34]]));
        assert!(icmp_user::bench::frames::checksum_ok(&[&reply[34..46]]));
        let s = Snapshot::of(&r).unwrap();
        assert_eq!(s.verdict(icmp_common::Reason::AddressMaskAnswered), 1);
        drop(r);
        drop(tap);
    })
    .join()
    .expect("tap address mask test");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
