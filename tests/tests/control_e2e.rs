//! Operating a running instance: hot reload under load, invalid reloads.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use icmp_user::lab::{self, Lab};
use icmpxdp_tests::{Running, icmpxdp_bin, output, ping, ping_counts, run_responder, unique_lab};

fn config_file(l: &Lab) -> PathBuf {
    std::env::temp_dir().join(format!(
        "icmpxdp-control-{}-{}.toml",
        l.responder_ns,
        std::process::id()
    ))
}

/// The TTL of the reply to one ping: which config is live.
fn reply_ttl(l: &Lab) -> u32 {
    let mut cmd = l.client_command("ping");
    cmd.args(["-c", "1", "-W", "1", "-n", &lab::RESPONDER_V4.to_string()]);
    let (_, out, _) = output(&mut cmd);
    let at = out.find("ttl=").unwrap_or_else(|| panic!("no reply: {out}"));
    out[at + 4..].split_whitespace().next().unwrap().parse().unwrap()
}

fn reload(l: &Lab, cfg: &Path) -> (bool, String, String) {
    output(Command::new(icmpxdp_bin()).args(["reload", "--iface", &l.instance(), "--config", cfg.to_str().unwrap()]))
}

#[test]
fn twenty_reloads_under_a_ping_flood_lose_no_reply() {
    let l = unique_lab();
    let cfg = config_file(&l);
    std::fs::write(&cfg, "[ip]\nttl = 64\n").unwrap();
    let mut run = run_responder(&l, &["--config", cfg.to_str().unwrap()]);
    // Bounded flood spanning every reload: 1000 echo requests 2 ms apart
    // (~2 s; the 20 reloads take ~1.2 s), 15 s at most.
    let mut ping = l.client_command("ping");
    ping.args([
        "-i",
        "0.002",
        "-c",
        "1000",
        "-W",
        "1",
        "-w",
        "15",
        "-n",
        &lab::RESPONDER_V4.to_string(),
    ]);
    let mut flood = ping.stdout(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    for i in 0..20 {
        let ttl = if i % 2 == 0 { 100 } else { 64 };
        let ports = if i % 4 < 2 { "[\"33434-33534\"]" } else { "[]" };
        std::fs::write(
            &cfg,
            format!("[ip]\nttl = {ttl}\n[unreachable]\nclosed_ports = {ports}\n"),
        )
        .unwrap();
        if i % 2 == 0 {
            let (ok, out, err) = reload(&l, &cfg);
            assert!(ok && out.contains("config reloaded"), "reload {i}: {out} {err}");
        } else {
            // SAFETY: kill(2) on our own child.
            assert_eq!(unsafe { libc::kill(run.child.id() as i32, libc::SIGHUP) }, 0);
        }
        std::thread::sleep(Duration::from_millis(60));
    }
    assert!(
        flood.try_wait().unwrap().is_none(),
        "the flood outlasted the 20 reloads"
    );
    let out = flood.wait_with_output().unwrap();
    let (sent, received) = ping_counts(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(sent, 1000);
    assert_eq!(received, sent, "no reply lost across 20 reloads");
    // The last write (i = 19, SIGHUP) set TTL 64; the one before it 100.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(reply_ttl(&l), 64);
    assert!(run.stop().success());
    let _ = std::fs::remove_file(&cfg);
}

#[test]
fn an_invalid_reload_changes_nothing_and_says_why() {
    let l = unique_lab();
    let cfg = config_file(&l);
    std::fs::write(&cfg, "[ip]\nttl = 99\n").unwrap();
    let mut run = run_responder(&l, &["--config", cfg.to_str().unwrap()]);
    assert_eq!(reply_ttl(&l), 99);

    std::fs::write(&cfg, "[ip]\nttl = 0\n").unwrap();
    let (ok, _, err) = reload(&l, &cfg);
    assert!(!ok, "an invalid reload fails");
    assert!(
        err.contains("ip.ttl: must be between 1 and 255, got 0") && err.contains("unchanged"),
        "{err}"
    );
    assert_eq!(reply_ttl(&l), 99, "config unchanged");

    std::fs::write(&cfg, "[ip]\nttl = 5\nbogus = 1\n").unwrap();
    let (ok, _, err) = reload(&l, &cfg);
    assert!(!ok && err.contains("unknown field `bogus`"), "{err}");
    // SIGHUP with the invalid file: refused by the running process too.
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(run.child.id() as i32, libc::SIGHUP) }, 0);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(reply_ttl(&l), 99, "SIGHUP with a bad file changes nothing");
    assert!(run.child.try_wait().unwrap().is_none(), "and the process keeps running");

    std::fs::write(&cfg, "[ip]\nttl = 42\n").unwrap();
    assert!(reload(&l, &cfg).0);
    assert_eq!(reply_ttl(&l), 42, "a valid reload applies");
    assert!(run.stop().success());
    let _ = std::fs::remove_file(&cfg);
}

fn icmpxdp(args: &[&str]) -> (bool, String, String) {
    output(Command::new(icmpxdp_bin()).args(args))
}

#[test]
fn attach_outlives_its_process_until_detach() {
    let l = unique_lab();
    let (ns, iface, inst) = (l.responder_ns.as_str(), l.responder_if.as_str(), l.instance());
    let dir = Path::new("/sys/fs/bpf/icmpxdp").join(&inst);

    let (ok, out, err) = icmpxdp(&["--netns", ns, "attach", "--iface", iface]);
    assert!(ok, "{err}");
    assert!(out.contains("stays attached"), "{out}");
    assert!(dir.join("link").exists() && dir.join("prog").exists() && dir.join("COUNTERS").exists());
    assert_eq!(ping(&l, false, 3).1, 3, "answered after the attaching process exited");

    let (ok, st, _) = icmpxdp(&["status"]);
    assert!(ok);
    let line = st
        .lines()
        .find(|x| x.starts_with(&inst))
        .unwrap_or_else(|| panic!("{inst} not in status: {st}"));
    assert!(
        line.contains("driver") && line.contains("attach") && line.contains("echo v4+v6"),
        "{line}"
    );
    let (ok, js, _) = icmpxdp(&["status", "--json"]);
    assert!(ok && js.contains(&inst), "{js}");
    let (ok, stats, _) = icmpxdp(&["stats", "--iface", &inst, "--json"]);
    assert!(ok && stats.contains("\"echo_reply\":3"), "{stats}");

    // Over an existing attachment: refused, --replace offered; then replaced.
    let (ok, _, err) = icmpxdp(&["--netns", ns, "attach", "--iface", iface]);
    assert!(!ok && err.contains("--replace"), "{err}");
    let (ok, _, err) = icmpxdp(&["--netns", ns, "run", "--iface", iface]);
    assert!(
        !ok && err.contains("--replace"),
        "run over an attach is refused too: {err}"
    );
    let (ok, _, err) = icmpxdp(&[
        "--netns",
        ns,
        "attach",
        "--iface",
        iface,
        "--replace",
        "--set",
        "ip.ttl=33",
    ]);
    assert!(ok, "{err}");
    assert_eq!(reply_ttl(&l), 33, "the replacement answers");

    let (ok, out, err) = icmpxdp(&["--netns", ns, "detach", "--iface", iface]);
    assert!(ok && out.contains("detached"), "{out} {err}");
    assert_eq!(ping(&l, false, 3).1, 0, "no answers after detach");
    assert!(!dir.exists(), "no pins left");
    let (_, links, _) = output(Command::new("ip").args(["-n", ns, "link", "show", iface]));
    assert!(!links.contains("prog/xdp"), "{links}");
    let (ok, _, err) = icmpxdp(&["--netns", ns, "detach", "--iface", iface]);
    assert!(!ok && err.contains("nothing attached"), "{err}");
}

/// Fetches `url` from inside namespace `ns` with Python's urllib and parses
/// it with prometheus_client's OpenMetrics parser; returns
/// (content type, [(name, labels, value)]).
/// One parsed sample: metric name, labels, value.
type Sample = (String, serde_json::Map<String, serde_json::Value>, f64);

fn scrape(ns: &str, url: &str) -> (String, Vec<Sample>) {
    let script = r#"
import json, sys, urllib.request
from prometheus_client.openmetrics.parser import text_string_to_metric_families
req = urllib.request.Request(sys.argv[1], headers={"Accept": "application/openmetrics-text; version=1.0.0"})
r = urllib.request.urlopen(req, timeout=5)
body = r.read().decode()
out = [[s.name, s.labels, s.value] for f in text_string_to_metric_families(body) for s in f.samples]
print(json.dumps({"content_type": r.headers["Content-Type"], "samples": out}))
"#;
    let (ok, out, err) = output(Command::new("ip").args(["netns", "exec", ns, "python3", "-c", script, url]));
    assert!(ok, "scrape failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let samples = v["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s[0].as_str().unwrap().to_owned(),
                s[1].as_object().unwrap().clone(),
                s[2].as_f64().unwrap(),
            )
        })
        .collect();
    (v["content_type"].as_str().unwrap().to_owned(), samples)
}

#[test]
fn metrics_count_what_ping_received() {
    let l = unique_lab();
    let inst = l.instance();
    let addr = "127.0.0.1:9469"; // inside the lab's responder namespace
    let _run = Running::start(&[
        "--netns",
        &l.responder_ns,
        "run",
        "--iface",
        &l.responder_if,
        "--metrics-addr",
        addr,
    ]);
    let (_, v4_received) = ping(&l, false, 5);
    let (_, v6_received) = ping(&l, true, 3);
    assert_eq!((v4_received, v6_received), (5, 3));

    let (ctype, samples) = scrape(&l.responder_ns, &format!("http://{addr}/metrics"));
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    let value = |name: &str, want: &[(&str, &str)]| -> f64 {
        samples
            .iter()
            .find(|(n, labels, _)| {
                n == name
                    && want
                        .iter()
                        .all(|(k, v)| labels.get(*k).and_then(|x| x.as_str()) == Some(*v))
            })
            .unwrap_or_else(|| panic!("no sample {name} {want:?} in {samples:?}"))
            .2
    };
    let i = inst.as_str();
    assert_eq!(
        value(
            "icmpxdp_sent_messages_total",
            &[("iface", i), ("family", "ipv4"), ("type", "echo_reply")]
        ),
        5.0
    );
    assert_eq!(
        value(
            "icmpxdp_sent_messages_total",
            &[("iface", i), ("family", "ipv6"), ("type", "echo_reply")]
        ),
        3.0
    );
    assert_eq!(
        value(
            "icmpxdp_received_messages_total",
            &[("iface", i), ("family", "ipv4"), ("type", "echo_request")]
        ),
        5.0
    );
    assert_eq!(value("icmpxdp_netstat_Icmp_OutEchoReps", &[("iface", i)]), 5.0);
    assert_eq!(value("icmpxdp_netstat_Icmp6_OutEchoReplies", &[("iface", i)]), 3.0);
    assert_eq!(value("icmpxdp_attached", &[("iface", i)]), 1.0);
    // Known types exist from zero; unknown ones would share `other`.
    assert_eq!(
        value(
            "icmpxdp_sent_messages_total",
            &[("iface", i), ("family", "ipv4"), ("type", "time_exceeded")]
        ),
        0.0
    );
    assert_eq!(
        value(
            "icmpxdp_received_messages_total",
            &[("iface", i), ("family", "ipv6"), ("type", "other")]
        ),
        0.0
    );
    assert_eq!(
        value("icmpxdp_verdicts_total", &[("iface", i), ("reason", "echo_answered")]),
        8.0
    );
    assert_eq!(value("icmpxdp_actions_total", &[("iface", i), ("action", "tx")]), 8.0);
    assert_eq!(
        value(
            "icmpxdp_suppressed_errors_total",
            &[("iface", i), ("reason", "bad_source")]
        ),
        0.0
    );
    let frames = value("icmpxdp_frames_total", &[("iface", i)]);
    let by_action: f64 = samples
        .iter()
        .filter(|(n, _, _)| n == "icmpxdp_actions_total")
        .map(|s| s.2)
        .sum();
    assert_eq!(frames, by_action, "actions add up to frames");
    // Never a per-address label.
    for (n, labels, _) in &samples {
        for (k, v) in labels {
            let v = v.as_str().unwrap();
            assert!(
                v.parse::<std::net::IpAddr>().is_err() && k != "addr",
                "{n} has an address label {k}={v}"
            );
        }
    }
}
