//! Helpers for icmpxdp's integration tests: frame builders, an independent
//! checksum, BPF_PROG_TEST_RUN on the real program, labs and a guard for a
//! running `icmpxdp`.
//!
//! Frame builders and the independent checksum live in `icmp_user::bench::frames`
//! (the benchmark uses them too) and are re-exported here.

use icmp_user::observe::counters::Snapshot;
use std::{
    io::{BufRead as _, BufReader},
    net::{Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

pub mod fuzz;
pub mod router_lab;
pub mod tap;

use aya::programs::{TestRun as _, TestRunOptions};
use icmp_common::{Config, Reason};
use icmp_user::{dataplane::load::Responder, lab::Lab};

pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const XDP_REDIRECT: u32 = 4;

pub use icmp_user::bench::frames::*;

/// Fails the test unless running as root: privileged tests never skip.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test loads XDP programs and creates network namespaces: run it as root (`cargo xtask test`)"
    );
}

/// The real program, loaded, configured and ready for BPF_PROG_TEST_RUN.
pub struct Xdp {
    pub responder: Responder,
}

impl Xdp {
    /// Loads the responder with `cfg` and the given own addresses.
    pub fn load(cfg: Config, v4: &[Ipv4Addr], v4_broadcast: &[Ipv4Addr], v6: &[Ipv6Addr]) -> Self {
        let mut set = icmp_common::AddrSet::default();
        for a in v4 {
            assert!(set.push_v4(a.octets()));
        }
        for a in v4_broadcast {
            assert!(set.push_v4_broadcast(a.octets()));
        }
        for a in v6 {
            assert!(set.push_v6(a.octets()));
        }
        Self::with_addrs(cfg, &set)
    }

    /// Loads the responder with `cfg` and a full address set (masks, MAC).
    pub fn with_addrs(cfg: Config, addrs: &icmp_common::AddrSet) -> Self {
        require_root();
        let mut responder = Responder::load().expect("load the XDP program (verifier)");
        responder.set_config(&cfg).expect("config");
        responder.set_addrs(addrs).expect("addrs");
        Self { responder }
    }

    /// Runs the program once on `frame`: (XDP action, frame afterwards).
    pub fn run(&mut self, frame: &[u8]) -> (u32, Vec<u8>) {
        let mut out = vec![0u8; frame.len() + 256];
        let opts = TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..TestRunOptions::default()
        };
        let r = self.responder.program().test_run(opts).expect("BPF_PROG_TEST_RUN");
        out.truncate(r.data_size_out as usize);
        (r.return_value, out)
    }

    /// Runs the program once on `frame` as if it arrived on `ifindex` (an
    /// interface of the calling thread's namespace, receive queue 0), so
    /// that helpers that ask the device's namespace (`bpf_fib_lookup`)
    /// see it: (XDP action, frame afterwards).
    pub fn run_on(&mut self, frame: &[u8], ifindex: u32) -> (u32, Vec<u8>) {
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
        // rx_queue_index, egress_ifindex.
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
        let mut out = vec![0u8; frame.len() + 256];
        let opts = TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: Some(&ctx),
            ..TestRunOptions::default()
        };
        let r = self.responder.program().test_run(opts).expect("BPF_PROG_TEST_RUN");
        out.truncate(r.data_size_out as usize);
        (r.return_value, out)
    }

    /// Runs `frame` and asserts XDP_PASS, the frame unchanged and exactly
    /// one more count for `reason` (`what` names the case in failures).
    pub fn assert_passed(&mut self, frame: &[u8], reason: Reason, what: &str) {
        let before = self.verdict(reason);
        let (action, out) = self.run(frame);
        assert_eq!(action, XDP_PASS, "{what}");
        assert_eq!(out, frame, "{what}: a passed frame must be untouched");
        assert_eq!(self.verdict(reason), before + 1, "{what}: counted as {reason:?}");
    }

    pub fn verdict(&self, r: Reason) -> u64 {
        Snapshot::of(&self.responder).expect("snapshot").verdict(r)
    }
}

static LAB_SEQ: AtomicU32 = AtomicU32::new(0);

/// A lab with a name unique to this process and test.
pub fn unique_lab() -> Lab {
    require_root();
    let name = format!(
        "t{}x{}",
        std::process::id() % 100_000,
        LAB_SEQ.fetch_add(1, Ordering::Relaxed)
    );
    Lab::create(&name).expect("create lab")
}

/// The `icmpxdp` binary under test (built by `cargo xtask test`).
pub fn icmpxdp_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ICMPXDP_BIN") {
        return PathBuf::from(p);
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
    for profile in ["debug", "release"] {
        let p = target.join(profile).join("icmpxdp");
        if p.exists() {
            return p;
        }
    }
    panic!("icmpxdp binary not found: run `cargo xtask test` (or set ICMPXDP_BIN)");
}

/// A running `icmpxdp run`, stopped with SIGTERM (and reaped) on drop.
pub struct Running {
    pub child: Child,
    pub stdout_lines: Vec<String>,
}

impl Running {
    /// Starts `icmpxdp ARGS` and waits (at most 20 s) for its "attached" line.
    pub fn start(args: &[&str]) -> Self {
        Self::start_until(args, "attached to")
    }

    /// Starts `icmpxdp ARGS` and waits (at most 20 s) for a line containing `marker`.
    pub fn start_until(args: &[&str], marker: &str) -> Self {
        let mut child = Command::new(icmpxdp_bin())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn icmpxdp");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining after `start` returns, so the child never
            // writes into a closed pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let done = line.contains(marker);
                    lines.push(line);
                    if done {
                        break;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait();
                    panic!("icmpxdp {args:?} printed no {marker:?} within 20 s ({status:?}); stdout: {lines:?}");
                }
            }
        }
        Self {
            child,
            stdout_lines: lines,
        }
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// Runs a command to completion, returning (success, stdout, stderr).
pub fn output(cmd: &mut Command) -> (bool, String, String) {
    let o = cmd.output().expect("run command");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Parses "N packets transmitted, M received" from ping's summary.
pub fn ping_counts(stdout: &str) -> (u32, u32) {
    let line = stdout
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping summary in {stdout:?}"));
    let nums: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(2)
        .map(|s| s.parse().expect("number"))
        .collect();
    (nums[0], nums[1])
}

/// Runs `f` on a thread that has entered network namespace `ns`; sockets it
/// creates live in that namespace even after it returns.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        let _inside = icmp_user::dataplane::netns::enter(&ns).expect("enter netns");
        f()
    })
    .join()
    .expect("netns thread panicked")
}

/// Loads an nftables ruleset into namespace `ns` that drops the ICMP
/// Destination Unreachable messages the kernel itself sends from there, so
/// any that arrive elsewhere provably came from XDP (XDP_TX frames never
/// traverse the output hook).
pub fn block_kernel_unreachables(ns: &str) {
    let rules = "table inet icmpxdp_test {\n\
                 chain out {\n\
                 type filter hook output priority 0; policy accept;\n\
                 icmp type destination-unreachable drop\n\
                 icmpv6 type destination-unreachable drop\n\
                 }\n\
                 }\n";
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("run nft (install nftables)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), rules.as_bytes()).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "nft ruleset load failed");
}

/// `icmpxdp --netns <responder ns> run --iface <responder if> EXTRA…`,
/// waited for until attached.
pub fn run_responder(l: &Lab, extra: &[&str]) -> Running {
    let mut args = vec!["--netns", &l.responder_ns, "run", "--iface", &l.responder_if];
    args.extend_from_slice(extra);
    Running::start(&args)
}

/// `count` pings (0.2 s apart, 1 s wait for the last) from the lab's client
/// to its responder, bounded at `max(count / 5 + 2, 3)` s overall: (sent,
/// received). Unanswered pings run to that deadline, so it stays tight.
pub fn ping(l: &Lab, v6: bool, count: u32) -> (u32, u32) {
    let mut cmd = l.client_command("ping");
    if v6 {
        cmd.arg("-6");
    }
    let deadline = (count / 5 + 2).max(3).to_string();
    cmd.args(["-c", &count.to_string(), "-i", "0.2", "-W", "1", "-w", &deadline, "-n"]);
    cmd.arg(if v6 {
        icmp_user::lab::RESPONDER_V6.to_string()
    } else {
        icmp_user::lab::RESPONDER_V4.to_string()
    });
    ping_counts(&output(&mut cmd).1)
}

/// `icmpxdp stats --iface INSTANCE --json`, parsed.
pub fn stats_json(instance: &str) -> serde_json::Value {
    let (ok, out, err) = output(Command::new(icmpxdp_bin()).args(["stats", "--iface", instance, "--json"]));
    assert!(ok, "icmpxdp stats failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("stats --json is not JSON ({e}): {out}"))
}
