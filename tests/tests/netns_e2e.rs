//! End to end, with real clients between two network namespaces: the
//! responder's kernel echo replies are off, so replies come from XDP or not
//! at all.

use std::{path::Path, process::Command};

use icmpxdp_tests::{icmpxdp_bin, output, ping, run_responder, stats_json, unique_lab};
use serde_json::Value;

const PINGS: u32 = 5;

#[test]
fn ping_is_answered_by_xdp_only_while_attached() {
    let l = unique_lab();
    // Baseline: with the kernel's echo replies off and nothing attached,
    // nobody answers, so any reply below is XDP's.
    assert_eq!(
        ping(&l, false, PINGS).1,
        0,
        "kernel must not answer IPv4 echo in the responder"
    );
    assert_eq!(
        ping(&l, true, PINGS).1,
        0,
        "kernel must not answer ICMPv6 echo in the responder"
    );

    let instance = l.instance();
    let mut run = run_responder(&l, &[]);
    let attached = run.stdout_lines.last().unwrap().clone();
    assert!(attached.contains("driver mode"), "veth supports native XDP: {attached}");
    assert!(Path::new(&format!("/sys/fs/bpf/icmpxdp/{instance}/COUNTERS")).exists());

    assert_eq!(ping(&l, false, PINGS), (PINGS, PINGS), "IPv4: every echo answered");
    assert_eq!(ping(&l, true, PINGS), (PINGS, PINGS), "IPv6: every echo answered");

    let s = stats_json(&instance);
    assert_eq!(s["sent"]["ipv4"]["echo_reply"], PINGS, "{s}");
    assert_eq!(s["sent"]["ipv6"]["echo_reply"], PINGS, "{s}");
    // The baseline pings went out before the program was attached, so the
    // requests it saw are exactly the answered ones.
    assert_eq!(s["received"]["ipv4"]["echo_request"], PINGS, "{s}");
    assert_eq!(s["received"]["ipv6"]["echo_request"], PINGS, "{s}");
    assert_eq!(s["verdicts"]["echo_answered"], 2 * PINGS, "{s}");
    let verdict_sum: u64 = s["verdicts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(Value::from(verdict_sum), s["frames"], "verdicts add up to frames: {s}");

    let status = run.stop();
    assert!(status.success(), "icmpxdp exits cleanly on SIGTERM: {status:?}");
    assert!(
        !Path::new(&format!("/sys/fs/bpf/icmpxdp/{instance}")).exists(),
        "pins removed on exit"
    );
    assert_eq!(ping(&l, false, PINGS).1, 0, "detached: no IPv4 replies");
    assert_eq!(ping(&l, true, PINGS).1, 0, "detached: no IPv6 replies");
}

#[test]
fn failures_are_explained_and_leave_nothing_attached() {
    let l = unique_lab();
    let bin = icmpxdp_bin();
    let ns = l.responder_ns.as_str();

    let (ok, _, err) = output(Command::new(&bin).args(["--netns", ns, "run", "--iface", "nosuch0"]));
    assert!(!ok);
    assert!(err.contains("`nosuch0` does not exist"), "{err}");
    assert!(!Path::new(&format!("/sys/fs/bpf/icmpxdp/nosuch0@{ns}")).exists());

    let (ok, _, err) = output(Command::new(&bin).args(["--netns", "icmpxdp-no-such-ns", "run", "--iface", "x"]));
    assert!(!ok);
    assert!(
        err.contains("network namespace `icmpxdp-no-such-ns` not found"),
        "{err}"
    );

    // Two interfaces, the second bad: the first must not stay attached.
    let (ok, _, err) =
        output(Command::new(&bin).args(["--netns", ns, "run", "--iface", &l.responder_if, "--iface", "nosuch1"]));
    assert!(!ok, "{err}");
    let (_, links, _) = output(Command::new("ip").args(["-n", ns, "link", "show", &l.responder_if]));
    assert!(!links.contains("prog/xdp"), "nothing left attached: {links}");

    // A second instance on the same interface is refused.
    let _first = run_responder(&l, &[]);
    let (ok, _, err) = output(Command::new(&bin).args(["--netns", ns, "run", "--iface", &l.responder_if]));
    assert!(!ok);
    assert!(err.contains("already running"), "{err}");

    let (ok, _, err) = output(Command::new(&bin).args(["stats", "--iface", "nosuch2"]));
    assert!(!ok);
    assert!(err.contains("not running on `nosuch2`"), "{err}");
}

#[test]
fn a_killed_run_leaves_stale_pins_that_the_next_run_clears() {
    let l = unique_lab();
    let ns = l.responder_ns.as_str();
    let instance = l.instance();
    let mut first = run_responder(&l, &[]);
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert!(
        Path::new(&format!("/sys/fs/bpf/icmpxdp/{instance}")).exists(),
        "SIGKILL leaves pins"
    );
    // The link died with the process: nothing answers.
    let (_, links, _) = output(Command::new("ip").args(["-n", ns, "link", "show", &l.responder_if]));
    assert!(!links.contains("prog/xdp"), "{links}");
    let (ok, st, _) = output(Command::new(icmpxdp_bin()).arg("status"));
    let line = st
        .lines()
        .find(|x| x.starts_with(&instance))
        .unwrap_or_else(|| panic!("{st}"));
    assert!(ok && line.contains("stale"), "status says the pins are stale: {line}");
    let (ok, _, err) = output(Command::new(icmpxdp_bin()).args(["stats", "--iface", &instance]));
    assert!(ok, "stale counters are still readable by name: {err}");

    let mut second = run_responder(&l, &[]);
    assert_eq!(ping(&l, false, 2), (2, 2));
    assert_eq!(
        stats_json(&instance)["sent"]["ipv4"]["echo_reply"],
        2,
        "counters start from zero"
    );
    assert!(second.stop().success());
}
