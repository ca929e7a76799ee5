//! Helpers for icmpxdp's integration tests: frame builders, an independent
//! checksum, BPF_PROG_TEST_RUN on the real program, labs and a guard for a
//! running `icmpxdp`.
//!
//! The checksum here is deliberately written independently of `icmp-common`
//! (big-endian words, plain loop) so that the program's checksums are checked
//! by code that does not share its bugs.

use std::{
    io::{BufRead as _, BufReader},
    net::{Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use aya::programs::{TestRun as _, TestRunOptions};
use icmp_common::{Config, Reason};
use icmp_user::{lab::Lab, responder::Responder};

pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;

pub const MAC_US: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const MAC_PEER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// Fails the test unless running as root: privileged tests never skip.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test loads XDP programs and creates network namespaces: run it as root (`cargo xtask test`)"
    );
}

/// RFC 1071 checksum over big-endian words.
pub fn inet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    let mut bytes = parts.iter().flat_map(|p| p.iter().copied());
    loop {
        match (bytes.next(), bytes.next()) {
            (Some(hi), Some(lo)) => sum += u64::from(u16::from_be_bytes([hi, lo])),
            (Some(hi), None) => {
                sum += u64::from(u16::from_be_bytes([hi, 0]));
                break;
            }
            _ => break,
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// True when the data, checksum included, sums to one's complement zero.
pub fn checksum_ok(parts: &[&[u8]]) -> bool {
    inet_checksum(parts) == 0
}

/// An Ethernet frame under construction: MACs, optional VLAN tags, payload.
#[derive(Clone)]
pub struct Frame {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// (TPID, TCI) pairs, outermost first.
    pub vlans: Vec<(u16, u16)>,
    pub ethertype: u16,
    pub l3: Vec<u8>,
}

impl Frame {
    pub fn new(ethertype: u16, l3: Vec<u8>) -> Self {
        Self {
            dst_mac: MAC_US,
            src_mac: MAC_PEER,
            vlans: Vec::new(),
            ethertype,
            l3,
        }
    }

    pub fn with_vlans(mut self, n: usize) -> Self {
        let tags = [(0x88a8, 100), (0x8100, 200)];
        self.vlans = match n {
            0 => vec![],
            1 => vec![(0x8100, 42)],
            _ => tags[..n.min(2)].to_vec(),
        };
        self
    }

    pub fn l2_len(&self) -> usize {
        14 + 4 * self.vlans.len()
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        for (tpid, tci) in &self.vlans {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&self.ethertype.to_be_bytes());
        f.extend_from_slice(&self.l3);
        f
    }
}

/// A deterministic payload of `len` bytes (seeded, so sizes differ in content).
pub fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// IPv4 header (with `options`, padded by the caller to 4 bytes) + body, with
/// a correct header checksum.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, ttl: u8, options: &[u8], body: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let ihl = 5 + options.len() / 4;
    let total = ihl * 4 + body.len();
    let mut h = vec![
        0x40 | ihl as u8,
        0,
        (total >> 8) as u8,
        total as u8,
        0x12,
        0x34,
        0x40, // DF
        0,
        ttl,
        proto,
        0,
        0,
    ];
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(options);
    let c = inet_checksum(&[&h]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(body);
    h
}

/// ICMP message with a correct checksum (ICMPv4: no pseudo-header).
pub fn icmp4(kind: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(data);
    let c = inet_checksum(&[&m]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn v6_pseudo(src: &Ipv6Addr, dst: &Ipv6Addr, len: usize, next: u8) -> Vec<u8> {
    let mut p = Vec::with_capacity(40);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&(len as u32).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, next]);
    p
}

/// ICMPv6 message with a correct checksum over the pseudo-header.
pub fn icmp6(src: &Ipv6Addr, dst: &Ipv6Addr, kind: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(data);
    let c = inet_checksum(&[&v6_pseudo(src, dst, m.len(), 58), &m]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// Verifies an ICMPv6 message's checksum with its pseudo-header.
pub fn icmp6_checksum_ok(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> bool {
    checksum_ok(&[&v6_pseudo(src, dst, msg.len(), 58), msg])
}

pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hop_limit: u8, body: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.push(next);
    h.push(hop_limit);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(body);
    h
}

/// The real program, loaded, configured and ready for BPF_PROG_TEST_RUN.
pub struct Xdp {
    pub responder: Responder,
}

impl Xdp {
    /// Loads the responder with `cfg` and the given own addresses.
    pub fn load(cfg: Config, v4: &[Ipv4Addr], v4_broadcast: &[Ipv4Addr], v6: &[Ipv6Addr]) -> Self {
        require_root();
        let mut responder = Responder::load().expect("load the XDP program (verifier)");
        responder.set_config(&cfg).expect("config");
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
        responder.set_addrs(&set).expect("addrs");
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

    pub fn verdict(&self, r: Reason) -> u64 {
        self.responder.snapshot().expect("snapshot").verdict(r)
    }
}

static LAB_SEQ: AtomicU32 = AtomicU32::new(0);

/// A lab with a name unique to this process and test.
pub fn unique_lab() -> Lab {
    require_root();
    let name = format!("t{}x{}", std::process::id() % 100_000, LAB_SEQ.fetch_add(1, Ordering::Relaxed));
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
        let mut child = Command::new(icmpxdp_bin())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn icmpxdp");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let done = line.contains("attached to");
                    lines.push(line);
                    if done {
                        break;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait();
                    panic!("icmpxdp {args:?} did not attach within 20 s ({status:?}); stdout: {lines:?}");
                }
            }
        }
        Self { child, stdout_lines: lines }
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

/// UDP datagram (header + payload) with a correct checksum over the IPv4
/// pseudo-header.
pub fn udp4(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut u = Vec::with_capacity(len);
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(len as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(len as u16).to_be_bytes());
    let c = match inet_checksum(&[&pseudo, &u]) {
        0 => 0xffff,
        c => c,
    };
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

/// UDP datagram with a correct checksum over the IPv6 pseudo-header.
pub fn udp6(src: &Ipv6Addr, dst: &Ipv6Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut u = Vec::with_capacity(len);
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(len as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let c = match inet_checksum(&[&v6_pseudo(src, dst, len, 17), &u]) {
        0 => 0xffff,
        c => c,
    };
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

/// Runs `f` on a thread that has entered network namespace `ns`; sockets it
/// creates live in that namespace even after it returns.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        let _inside = icmp_user::netns::enter(&ns).expect("enter netns");
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
