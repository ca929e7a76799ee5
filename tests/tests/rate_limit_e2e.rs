//! Bounded floods between namespaces against configured limits: what the
//! client receives per second stays within ±5% of rate × time + burst.
//! Every flood lasts FLOOD (2 s), is paced to at most ~100k datagrams/s
//! (far above every limit here) and sends at most MAX_SENDS.

use std::{
    mem::MaybeUninit,
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use icmp_user::lab::{self, Lab, ip};
use icmpxdp_tests::{Running, icmp4, in_netns, run_responder, stats_json, unique_lab};
use socket2::{Domain, Protocol, Socket, Type};

const FLOOD: Duration = Duration::from_secs(2);
const MAX_SENDS: u64 = 300_000;

fn with_config(l: &Lab, toml: &str) -> (Running, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("icmpxdp-{}-{}.toml", l.responder_ns, std::process::id()));
    std::fs::write(&path, toml).unwrap();
    let run = run_responder(l, &["--config", path.to_str().unwrap()]);
    (run, path)
}

/// Counts ICMP messages of `kind` arriving in the client namespace while
/// `running` is set (and 300 ms after, for the last ones in flight).
fn counter(l: &Lab, kind: u8, running: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let ns = l.client_ns.clone();
    std::thread::spawn(move || {
        in_netns(&ns, move || {
            let raw = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).unwrap();
            raw.set_recv_buffer_size(4 << 20).unwrap();
            raw.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
            let mut n = 0u64;
            let mut stop_at: Option<Instant> = None;
            loop {
                if stop_at.is_none() && !running.load(Ordering::Relaxed) {
                    stop_at = Some(Instant::now() + Duration::from_millis(300));
                }
                if stop_at.is_some_and(|t| Instant::now() > t) {
                    return n;
                }
                if let Ok(len) = raw.recv(&mut buf) {
                    // SAFETY: recv initialised `len` bytes.
                    let p: Vec<u8> = buf[..len].iter().map(|b| unsafe { b.assume_init() }).collect();
                    let ihl = usize::from(p[0] & 0x0f) * 4;
                    if p.len() > ihl && p[ihl] == kind && p[12..16] == lab::RESPONDER_V4.octets() {
                        n += 1;
                    }
                }
            }
        })
    })
}

/// Floods from the client for FLOOD (bounded by MAX_SENDS) with `send`,
/// while counting `kind` replies. Returns (replies, flood duration, sends).
fn flood(l: &Lab, kind: u8, send: impl FnMut(u64) + Send + 'static) -> (u64, Duration, u64) {
    let running = Arc::new(AtomicBool::new(true));
    let count = counter(l, kind, Arc::clone(&running));
    std::thread::sleep(Duration::from_millis(100)); // receiver ready
    let ns = l.client_ns.clone();
    let (elapsed, sends) = in_netns(&ns, move || {
        let mut send = send;
        let start = Instant::now();
        let mut i = 0u64;
        while start.elapsed() < FLOOD && i < MAX_SENDS {
            send(i);
            i += 1;
            if i.is_multiple_of(100) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        (start.elapsed(), i)
    });
    running.store(false, Ordering::Relaxed);
    (count.join().unwrap(), elapsed, sends)
}

/// Asserts `got` is within ±5% of `per_sec × elapsed + burst`.
fn assert_rate(what: &str, got: u64, per_sec: f64, burst: f64, elapsed: Duration) {
    let expected = per_sec * elapsed.as_secs_f64() + burst;
    let err = (got as f64 - expected).abs() / expected;
    println!(
        "{what}: {got} in {:.3} s, expected {expected:.1} ({:.2}% off)",
        elapsed.as_secs_f64(),
        err * 100.0
    );
    assert!(
        err <= 0.05,
        "{what}: got {got}, expected {expected:.1} ± 5% over {elapsed:?}"
    );
}

fn udp_flood_from(sources: Vec<Ipv4Addr>) -> impl FnMut(u64) + Send + 'static {
    let mut socks: Vec<UdpSocket> = Vec::new();
    let to: SocketAddr = (lab::RESPONDER_V4, 33434).into();
    move |i| {
        if socks.is_empty() {
            socks = sources.iter().map(|s| UdpSocket::bind((*s, 0)).unwrap()).collect();
        }
        let _ = socks[(i as usize) % socks.len()].send_to(b"flood", to);
    }
}

#[test]
fn one_source_gets_its_rate_plus_burst() {
    let l = unique_lab();
    let (_run, _cfg) = with_config(&l, "[rate_limit]\nratelimit_ms = 10\nburst = 6\nmsgs_per_sec = 0\n");
    let (errors, elapsed, sends) = flood(&l, 3, udp_flood_from(vec![lab::CLIENT_V4]));
    assert!(
        sends > 10_000,
        "the flood must offer far more than the limit ({sends} sent)"
    );
    assert_rate("errors/s, one source at 100/s burst 6", errors, 100.0, 6.0, elapsed);
    let s = stats_json(&l.instance());
    let sent = s["sent"]["ipv4"]["destination_unreachable"].as_u64().unwrap();
    assert_eq!(sent, errors, "every error sent arrived: {s}");
    let limited = s["rate_limited"]["per_source"]["ipv4"]["destination_unreachable"]
        .as_u64()
        .unwrap();
    assert!(
        limited + sent >= sends * 9 / 10,
        "the rest was limited and counted ({limited} + {sent} of {sends})"
    );
}

#[test]
fn many_sources_are_held_by_the_global_cap() {
    let l = unique_lab();
    let sources: Vec<Ipv4Addr> = (100..116).map(|i| Ipv4Addr::new(192, 0, 2, i)).collect();
    for s in &sources {
        ip(&[
            "-n",
            &l.client_ns,
            "addr",
            "add",
            &format!("{s}/24"),
            "dev",
            &l.client_if,
        ])
        .unwrap();
    }
    let (_run, _cfg) = with_config(
        &l,
        "[rate_limit]\nratelimit_ms = 1\nburst = 50\nmsgs_per_sec = 200\nmsgs_burst = 20\n",
    );
    let (errors, elapsed, _) = flood(&l, 3, udp_flood_from(sources));
    assert_rate(
        "errors/s, 16 sources against a global 200/s burst 20",
        errors,
        200.0,
        20.0,
        elapsed,
    );
    let s = stats_json(&l.instance());
    assert!(
        s["rate_limited"]["global"]["ipv4"]["destination_unreachable"]
            .as_u64()
            .unwrap()
            > 0,
        "{s}"
    );
}

fn echo_flood() -> impl FnMut(u64) + Send + 'static {
    let mut sock: Option<Socket> = None;
    let to: SocketAddr = (lab::RESPONDER_V4, 0).into();
    move |i| {
        let s = sock.get_or_insert_with(|| Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).unwrap());
        let seq = (i as u16).to_be_bytes();
        let _ = s.send_to(&icmp4(8, 0, [0x12, 0x34, seq[0], seq[1]], b"flood"), &to.into());
    }
}

#[test]
fn echo_replies_follow_the_ratemask_limit() {
    let l = unique_lab();
    let (_run, _cfg) = with_config(
        &l,
        "[rate_limit]\nratemask = [0, 3]\nratelimit_ms = 10\nburst = 6\nmsgs_per_sec = 0\n",
    );
    let (replies, elapsed, _) = flood(&l, 0, echo_flood());
    assert_rate("echo replies/s at 100/s burst 6", replies, 100.0, 6.0, elapsed);
}

#[test]
fn inbound_limit_drops_the_excess_and_counts_it() {
    let l = unique_lab();
    let (_run, _cfg) = with_config(
        &l,
        "[rate_limit.inbound_echo]\nper_sec = 100\nburst = 10\naction = \"drop\"\n",
    );
    let (replies, elapsed, sends) = flood(&l, 0, echo_flood());
    assert_rate(
        "echo replies/s with inbound 100/s burst 10",
        replies,
        100.0,
        10.0,
        elapsed,
    );
    let s = stats_json(&l.instance());
    let seen = s["received"]["ipv4"]["echo_request"].as_u64().unwrap();
    let answered = s["sent"]["ipv4"]["echo_reply"].as_u64().unwrap();
    let refused = s["rate_limited"]["inbound"]["ipv4"]["echo_request"].as_u64().unwrap();
    assert_eq!(
        seen,
        answered + refused,
        "every request answered or counted as refused: {s}"
    );
    assert_eq!(s["verdicts"]["rate_limited_inbound"].as_u64().unwrap(), refused);
    assert!(refused > sends / 2, "most of the flood refused ({refused} of {sends})");
    assert_eq!(
        s["actions"]["drop"].as_u64().unwrap(),
        refused,
        "refused requests are dropped in XDP"
    );
}
