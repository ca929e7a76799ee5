//! Faults: `kill -9` of `icmpxdp attach` at every step of starting an
//! instance, a flood from a million spoofed sources against a smaller
//! bucket map, and config reloads racing a flood.

use icmp_user::observe::counters::Snapshot;
use std::{
    net::Ipv4Addr,
    path::Path,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use aya::programs::{TestRun as _, TestRunOptions};
use icmp_common::{Config, Reason, ratelimit::Limit};
use icmp_user::{
    config::{AnswerPrefixes, PortBitmaps, Settings},
    dataplane::{config_maps::Pinned, load::Responder, pins},
};
use icmpxdp_tests::{
    BCAST4, ETH_P_IP, Frame, PEER4, US4, US6, XDP_TX, icmpxdp_bin, ipv4, output, ping, require_root, udp4, unique_lab,
};

const STEPS: [&str; 5] = ["claimed", "maps_pinned", "attached", "meta_written", "link_pinned"];

fn xdp_attached(ns: &str, iface: &str) -> bool {
    let (_, links, _) = output(Command::new("ip").args(["-n", ns, "link", "show", iface]));
    links.contains("prog/xdp") || links.contains("xdpgeneric")
}

#[test]
fn kill_9_of_attach_at_every_step_then_a_normal_start_recovers() {
    let l = unique_lab();
    let ns = l.responder_ns.as_str();
    let iface = l.responder_if.as_str();
    let instance = l.instance();
    let dir = pins::instance_dir(&instance);
    let meta = pins::Meta::path(&instance);
    for step in STEPS {
        let st = Command::new(icmpxdp_bin())
            .args(["--netns", ns, "attach", "--iface", iface])
            .env("ICMPXDP_TEST_KILL_AT", step)
            .status()
            .unwrap();
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(st.signal(), Some(libc::SIGKILL), "{step}: killed there");
        // Only a pinned link outlives the process.
        assert_eq!(
            xdp_attached(ns, iface),
            step == "link_pinned",
            "{step}: attached after the kill?"
        );
        let (ok, status, _) = output(Command::new(icmpxdp_bin()).arg("status"));
        assert!(ok);
        if dir.exists() {
            let line = status.lines().find(|x| x.starts_with(&instance)).unwrap_or_default();
            let live = step == "link_pinned";
            assert_eq!(line.contains("stale"), !live, "{step}: status says {line:?}");
        }
        if step == "link_pinned" {
            // The attachment was complete: it answers, and `detach` removes it.
            assert_eq!(ping(&l, false, 2), (2, 2), "{step}: the pinned attachment answers");
            let (ok, _, err) = output(Command::new(icmpxdp_bin()).args(["--netns", ns, "detach", "--iface", iface]));
            assert!(ok, "{step}: detach: {err}");
        }
        // A normal start recovers whatever was left, and works.
        let (ok, out, err) = output(Command::new(icmpxdp_bin()).args(["--netns", ns, "attach", "--iface", iface]));
        assert!(ok, "{step}: a normal attach after the kill: {out} {err}");
        assert!(xdp_attached(ns, iface));
        assert_eq!(ping(&l, false, 2), (2, 2), "{step}: answered after recovery");
        let (ok, status, _) = output(Command::new(icmpxdp_bin()).arg("status"));
        let line = status.lines().find(|x| x.starts_with(&instance)).unwrap_or_default();
        assert!(
            ok && line.contains("attach") && !line.contains("stale"),
            "{step}: {line:?}"
        );
        let (ok, _, err) = output(Command::new(icmpxdp_bin()).args(["--netns", ns, "detach", "--iface", iface]));
        assert!(ok, "{step}: detach: {err}");
        assert!(!xdp_attached(ns, iface), "{step}: nothing attached after detach");
        assert!(!dir.exists(), "{step}: no pins left");
        assert!(!meta.exists(), "{step}: no metadata left");
    }
}

fn udp_frame(src: Ipv4Addr) -> Vec<u8> {
    Frame::new(
        ETH_P_IP,
        ipv4(src, US4, 17, 64, &[], &udp4(src, US4, 4000, 33434, b"flood")),
    )
    .bytes()
}

fn run(r: &mut Responder, frame: &[u8], out: &mut [u8]) -> u32 {
    let opts = TestRunOptions {
        data_in: Some(frame),
        data_out: Some(out),
        ..TestRunOptions::default()
    };
    r.program().test_run(opts).expect("test_run").return_value
}

#[test]
fn a_million_spoofed_sources_are_held_by_the_global_cap() {
    require_root();
    // 1e6 distinct sources against 65536 buckets: the LRU evicts, evicted
    // sources come back with a full burst, and the global bucket alone must
    // hold the total to its rate plus its burst.
    let (rate, burst) = (2000u32, 50u32);
    let mut r = Responder::load_with(65536).unwrap();
    let cfg = Config {
        per_source: Limit::new(1_000_000_000, 6),
        global: Limit::per_second(rate, burst),
        ..Config::default()
    };
    r.set_config(&cfg).unwrap();
    let mut set = icmp_common::AddrSet::default();
    set.push_v4(US4.octets());
    set.push_v4_broadcast(BCAST4.octets());
    set.push_v6(US6.octets());
    r.set_addrs(&set).unwrap();
    let mut out = vec![0u8; 2048];
    let start = Instant::now();
    let mut sent = 0u64;
    const SOURCES: u32 = 1_000_000;
    for i in 0..SOURCES {
        // 10.0.0.0/8 and up: every frame a new source.
        let src = Ipv4Addr::from(0x0a00_0000 + i);
        if run(&mut r, &udp_frame(src), &mut out) == XDP_TX {
            sent += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let s = Snapshot::of(&r).unwrap();
    assert_eq!(s.verdict(Reason::UnreachableSent), sent);
    assert_eq!(
        s.verdict(Reason::UnreachableSent)
            + s.verdict(Reason::RateLimitedGlobal)
            + s.verdict(Reason::RateLimitedPerSource),
        u64::from(SOURCES),
        "every datagram is sent or limited"
    );
    // The coarse clock ticks every few ms: allow one tick of credit either way.
    let tick = 0.01;
    let most = f64::from(burst) + f64::from(rate) * (elapsed + tick);
    let least = f64::from(burst) + f64::from(rate) * (elapsed - tick).max(0.0);
    eprintln!("{SOURCES} spoofed sources in {elapsed:.2} s: {sent} errors sent (cap {least:.0}–{most:.0})");
    assert!((sent as f64) <= most, "{sent} errors > the global cap {most:.0}");
    assert!(
        (sent as f64) >= least * 0.98,
        "{sent} errors, far under the cap {least:.0}: the cap is not what limits"
    );
    assert_eq!(
        s.verdict(Reason::RateLimitedPerSource),
        0,
        "fresh sources are never over their own limit"
    );
}

/// A settings pair differing in two fields that show in the same error: the
/// TTL and the quote length. A half-written config would mix them.
fn settings(ttl: u8, error_size: u16) -> Settings {
    Settings {
        config: Config {
            ttl,
            v4_error_size: error_size,
            per_source: Limit::UNLIMITED,
            global: Limit::UNLIMITED,
            ..Config::default()
        },
        ports: PortBitmaps(vec![0; icmp_common::config::PORT_SLOTS as usize]),
        answer_prefixes: AnswerPrefixes::default(),
        max_sources: 4096,
    }
}

#[test]
fn a_reload_racing_a_flood_shows_the_old_or_the_new_config_only() {
    require_root();
    pins::ensure_bpffs().unwrap();
    let dir = Path::new(pins::BPFFS).join(format!("icmpxdp-test-race-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut r = Responder::load().unwrap();
    let (a, b) = (settings(10, 56), settings(200, 576));
    r.apply(&a).unwrap();
    let mut set = icmp_common::AddrSet::default();
    set.push_v4(US4.octets());
    r.set_addrs(&set).unwrap();
    r.pin_maps(&dir).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reloads = {
        let (stop, dir) = (Arc::clone(&stop), dir.clone());
        std::thread::spawn(move || {
            let mut maps = Pinned::open(&dir).unwrap();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                maps.apply(if n.is_multiple_of(2) { &b } else { &a }).unwrap();
                n += 1;
            }
            n
        })
    };
    let payload = vec![0x5a; 600];
    let frame = Frame::new(
        ETH_P_IP,
        ipv4(PEER4, US4, 17, 64, &[], &udp4(PEER4, US4, 4000, 33434, &payload)),
    )
    .bytes();
    let mut out = vec![0u8; 2048];
    let (mut old, mut new) = (0u64, 0u64);
    for _ in 0..50_000 {
        let opts = TestRunOptions {
            data_in: Some(&frame),
            data_out: Some(&mut out),
            ..TestRunOptions::default()
        };
        let res = r.program().test_run(opts).unwrap();
        assert_eq!(res.return_value, XDP_TX);
        let len = res.data_size_out as usize - 14;
        let ttl = out[14 + 8];
        match (ttl, len) {
            (10, 56) => old += 1,
            (200, 576) => new += 1,
            other => panic!("a half-applied config: (ttl, length) = {other:?}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let n = reloads.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    eprintln!("{n} reloads during 50000 errors: {old} with the old config, {new} with the new");
    assert!(
        n > 10 && old > 0 && new > 0,
        "the race was run: {n} reloads, {old}/{new}"
    );
}
