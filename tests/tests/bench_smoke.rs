//! The benchmark runs (about a second with --quick) and reports every path
//! with non-zero figures. No timing is asserted: speed is measured, not tested.

use std::process::Command;

use icmpxdp_tests::{icmpxdp_bin, output, require_root};
use serde_json::Value;

#[test]
fn bench_reports_every_path() {
    require_root();
    let (ok, out, err) = output(Command::new(icmpxdp_bin()).args(["bench", "--quick", "--json"]));
    assert!(ok, "icmpxdp bench failed: {err}");
    let all: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    let r = &all["paths"];
    let paths = r["paths"].as_array().expect("paths");
    let names: Vec<&str> = paths.iter().map(|p| p["path"].as_str().unwrap()).collect();
    for want in [
        "pass-through TCP",
        "IPv4 echo",
        "ICMPv6 echo",
        "IPv4 Port Unreachable",
        "IPv6 Port Unreachable",
        "suppressed error (UDP to broadcast)",
        "rate-limited error (dropped)",
        "IPv4 echo, bare_echo4",
        "ICMPv6 echo, bare_echo6",
    ] {
        assert!(names.contains(&want), "missing path {want}: {names:?}");
    }
    for p in paths {
        for key in ["median_ns", "min_ns", "floor_median_ns"] {
            assert!(p[key].as_f64().unwrap() > 0.0, "{key} is zero in {p}");
        }
    }
    assert!(r["verified_insns"].as_u64().unwrap() > 0);
    assert!(r["limiter_added_ns"].is_number());
    assert!(r["kernel"].as_str().unwrap().len() > 1);

    // End to end over veth: kernel and icmpxdp, echo and UDP, all measured.
    let e2e = all["end_to_end"]["measurements"].as_array().expect("end_to_end");
    // kernel, icmpxdp and the bare program for echo and for UDP, then the
    // refused one-source flood and the same flood into a drop-only program.
    assert_eq!(e2e.len(), 8, "{e2e:?}");
    assert_eq!(e2e[7]["responder"], "xdp_sink", "the drop floor last");
    for m in e2e {
        let refused = m["traffic"].as_str().unwrap().starts_with("udp refused") || m["responder"] == "xdp_sink";
        for key in ["offered_per_s", "replies_per_s", "responder_cpu"] {
            if refused && key == "replies_per_s" {
                continue;
            }
            assert!(m[key].as_f64().unwrap() > 0.0, "{key} is zero in {m}");
        }
        assert!(m["us_per_frame"].as_f64().unwrap() > 0.0, "{m}");
        // Frames the responder's program ran on: some, never more than offered.
        let handled = m["handled_per_s"].as_f64().unwrap();
        assert!(
            handled > 0.0 && handled <= m["offered_per_s"].as_f64().unwrap() * 1.01,
            "{m}"
        );
        assert!(m["frames_per_wakeup"].as_f64().unwrap() >= 1.0, "{m}");
    }
    // The program's own time per run in the NAPI loop, from the kernel's
    // BPF statistics: icmpxdp and the bare program for echo and UDP, the
    // refusal and the drop floor, each over runs that happened.
    let times = all["end_to_end"]["program_times"].as_array().expect("program_times");
    assert_eq!(times.len(), 6, "{times:?}");
    for t in times {
        assert!(t["runs"].as_u64().unwrap() > 0, "{t}");
        assert!(t["ns_per_run"].as_f64().unwrap() > 0.0, "{t}");
    }
    assert_eq!(e2e.iter().filter(|m| m["responder"] == "icmpxdp").count(), 3);
    assert_eq!(
        e2e.iter()
            .filter(|m| m["responder"].as_str().unwrap().starts_with("bare_"))
            .count(),
        2
    );

    let (ok, md, err) = output(Command::new(icmpxdp_bin()).args(["bench", "--quick", "--no-e2e"]));
    assert!(ok, "{err}");
    assert!(
        md.contains("| path | mode | median ns | min ns | floor median ns | over floor ns | target | |"),
        "{md}"
    );
    // The first table: one row per path.
    let first: Vec<&str> = md
        .lines()
        .skip_while(|l| !l.starts_with("| path | mode"))
        .take_while(|l| l.starts_with('|'))
        .filter(|l| l.starts_with("| ") && !l.starts_with("| path"))
        .collect();
    assert_eq!(first.len(), paths.len(), "{md}");

    // Against the bare programs: every row measured, each with its target.
    let versus = r["versus"].as_array().expect("versus");
    assert!(versus.len() >= 8, "{versus:?}");
    for row in versus {
        assert!(
            row["icmpxdp_over_floor_ns"].is_number() && row["met"].is_boolean(),
            "{row}"
        );
        assert!(!row["target"].as_str().unwrap().is_empty(), "{row}");
    }
    assert!(
        md.contains("| path | icmpxdp ns | bare program | bare ns | ratio | target | |"),
        "{md}"
    );
}
