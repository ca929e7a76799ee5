//! `icmpxdp top` against a running instance: two clients in the lab flood a
//! closed UDP port (bounded: 60 and 30 datagrams), the limiter answers each
//! with Linux's burst of 6 and refuses the rest, and `top` ranks them by
//! refusals — by source, and by prefix as the limiter counts them.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use icmp_user::{
    dataplane::{capture::switch_on, pins::Meta},
    lab::{self, Lab},
};
use icmpxdp_tests::{icmpxdp_bin, in_netns, run_responder, unique_lab};

const SECOND_CLIENT: std::net::Ipv4Addr = std::net::Ipv4Addr::new(192, 0, 2, 3);

fn flood(l: &Lab, from: std::net::Ipv4Addr, n: usize) {
    in_netns(&l.client_ns, move || {
        let s = std::net::UdpSocket::bind((from, 0)).unwrap();
        for _ in 0..n {
            let _ = s.send_to(b"top", (lab::RESPONDER_V4, 9));
        }
    });
}

/// Runs `top --once --json` over a 3 s interval while both clients flood;
/// returns its one JSON line.
fn top_once(l: &Lab, by: &str) -> serde_json::Value {
    let child = Command::new(icmpxdp_bin())
        .args(["--netns", &l.responder_ns, "top", "--iface", &l.responder_if])
        .args(["--by", by, "--once", "--json", "--interval", "3", "-c", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn icmpxdp top");
    let id = Meta::read(&l.instance()).unwrap().program_id;
    let end = Instant::now() + Duration::from_secs(10);
    while !switch_on(id).unwrap() {
        assert!(Instant::now() < end, "top never switched the capture on");
        std::thread::sleep(Duration::from_millis(20));
    }
    flood(l, lab::CLIENT_V4, 60);
    flood(l, SECOND_CLIENT, 30);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "top failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not one JSON line ({e}): {text}"))
}

/// (key, refused, sent) per row, counts recovered from the per-second rates.
fn rows(v: &serde_json::Value, key: &str) -> Vec<(String, u64, u64)> {
    let secs = v["interval_s"].as_f64().unwrap();
    v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s[key].as_str().unwrap().to_owned(),
                (s["refused_per_s"].as_f64().unwrap() * secs).round() as u64,
                (s["sent_per_s"].as_f64().unwrap() * secs).round() as u64,
            )
        })
        .collect()
}

#[test]
fn top_ranks_the_sources_the_limiter_refuses() {
    let l = unique_lab();
    lab::ip(&[
        "-n",
        &l.client_ns,
        "addr",
        "add",
        &format!("{SECOND_CLIENT}/24"),
        "dev",
        &l.client_if,
    ])
    .unwrap();
    let run = run_responder(&l, &[]);
    let v = top_once(&l, "source");
    assert_eq!(
        rows(&v, "source"),
        [(lab::CLIENT_V4.to_string(), 54, 6), (SECOND_CLIENT.to_string(), 24, 6)],
        "{v}"
    );
    assert_eq!(v["lost_records"], 0);
    drop(run);

    // With the limiter counting /24s, both clients share one bucket: one
    // burst of 6 for the 90 datagrams, and one row.
    let run = run_responder(&l, &["--set", "rate_limit.ipv4_prefix=24"]);
    let v = top_once(&l, "prefix");
    assert_eq!(rows(&v, "prefix"), [("192.0.2.0/24".to_owned(), 84, 6)], "{v}");
    drop(run);
}
