//! `icmpxdp bench`: per-path cost of the real program through
//! BPF_PROG_TEST_RUN, each against an XDP_PASS baseline measured in the same
//! run, interleaved.
//!
//! Paths that leave the frame as they found it (pass-through, suppressed,
//! rate-limited) run in repeat mode: one syscall, many runs on one buffer.
//! Paths that rewrite the frame (echo, Port Unreachable) would see their own
//! output on the second run, so they get a fresh frame per call (repeat 1);
//! their baseline is measured the same way, so the kernel's per-call timer
//! overhead is in both and cancels in "over floor". Echo is also measured in
//! repeat mode, on an instance loaded with `BENCH_ECHO_IN_PLACE` set (the
//! rewrite writes the request type back, so its output is again a request):
//! the verdict counter must then grow by exactly the number of runs, so
//! every run did the whole echo path. One run of every path is checked first
//! (XDP action, checksums), so the bench cannot time the wrong path.

use crate::observe::counters::Snapshot;
use std::net::Ipv4Addr;

use anyhow::{Context as _, Result, ensure};
use aya::programs::{TestRun as _, TestRunOptions};
use icmp_common::{AddrSet, Config, Reason, ratelimit::Limit};

use super::report::{Mode, PathResult, Report, machine, today};
use crate::{
    bench::frames::{
        ETH_P_IP, ETH_P_IPV6, Frame, PEER4, PEER6, US4, US6, checksum_ok, icmp4, icmp6, icmp6_checksum_ok, ipv4, ipv6,
        udp4, udp6,
    },
    dataplane::load::Responder,
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

/// One 64-byte frame at 10 GbE line rate (84 bytes on the wire at 10 Gb/s).
const LINE_RATE_NS: f64 = 67.2;

#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Interleaved rounds per path.
    pub trials: usize,
    /// Runs per repeat-mode call.
    pub repeat: u32,
    /// Fresh-frame calls per round.
    pub calls: usize,
}

impl Options {
    pub const FULL: Self = Self {
        trials: 15,
        repeat: 200_000,
        calls: 400,
    };
    /// About a second: for the smoke test.
    pub const QUICK: Self = Self {
        trials: 3,
        repeat: 20_000,
        calls: 50,
    };
}

struct Bench {
    prog: Responder,
    pass: Responder,
    opts: Options,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Mean of the middle 80%: fresh-frame timings come in the clock's 10 ns
/// steps here, so a median is that coarse; the mean of the trimmed samples
/// resolves below a step without letting interrupts skew it.
fn trimmed_mean(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let cut = v.len() / 10;
    let mid = &v[cut..v.len() - cut];
    mid.iter().sum::<f64>() / mid.len() as f64
}

fn run_once(r: &mut Responder, frame: &[u8], repeat: u32) -> Result<(u32, f64, Vec<u8>)> {
    let mut out = vec![0u8; frame.len() + 256];
    let opts = TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        repeat,
        ..TestRunOptions::default()
    };
    let res = r.program().test_run(opts).context("BPF_PROG_TEST_RUN")?;
    out.truncate(res.data_size_out as usize);
    Ok((res.return_value, res.duration.as_nanos() as f64, out))
}

impl Bench {
    /// Samples (ns per run) of the program and the baseline, interleaved.
    fn measure(&mut self, frame: &[u8], mode: Mode) -> Result<(Vec<f64>, Vec<f64>)> {
        let (mut path, mut floor) = (Vec::new(), Vec::new());
        for _ in 0..self.opts.trials {
            match mode {
                Mode::Repeat => {
                    path.push(run_once(&mut self.prog, frame, self.opts.repeat)?.1);
                    floor.push(run_once(&mut self.pass, frame, self.opts.repeat)?.1);
                }
                Mode::Fresh => {
                    for _ in 0..self.opts.calls {
                        path.push(run_once(&mut self.prog, frame, 1)?.1);
                        floor.push(run_once(&mut self.pass, frame, 1)?.1);
                    }
                }
            }
        }
        Ok((path, floor))
    }

    fn path(&mut self, name: &str, frame: &[u8], mode: Mode, target: Option<f64>) -> Result<PathResult> {
        let (mut p, mut f) = self.measure(frame, mode)?;
        let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let (pmin, fmin) = (min(&p), min(&f));
        let (pm, fm) = match mode {
            Mode::Repeat => (median(&mut p), median(&mut f)),
            Mode::Fresh => (trimmed_mean(&mut p), trimmed_mean(&mut f)),
        };
        let over = pm - fm;
        Ok(PathResult {
            path: name.to_owned(),
            mode,
            median_ns: pm,
            min_ns: pmin,
            floor_median_ns: fm,
            floor_min_ns: fmin,
            over_floor_ns: over,
            target_ns: target,
            met: target.map(|t| over <= t),
        })
    }
}

fn frame4(l3: Vec<u8>) -> Vec<u8> {
    Frame::new(ETH_P_IP, l3).bytes()
}

fn frame6(l3: Vec<u8>) -> Vec<u8> {
    Frame::new(ETH_P_IPV6, l3).bytes()
}

/// Checks one run of `frame` ends in `action` (and, for XDP_TX, that the
/// output's checksums verify); returns the output.
fn check(r: &mut Responder, what: &str, frame: &[u8], action: u32, v6: bool) -> Result<Vec<u8>> {
    let (a, _, out) = run_once(r, frame, 1)?;
    ensure!(
        a == action,
        "bench path `{what}`: XDP action {a}, expected {action}: the bench would time the wrong path"
    );
    if a == XDP_TX {
        let ok = if v6 {
            icmp6_checksum_ok(&US6, &PEER6, &out[14 + 40..])
        } else {
            checksum_ok(&[&out[14..34]]) && checksum_ok(&[&out[34..]])
        };
        ensure!(ok, "bench path `{what}`: bad checksum in the output");
    }
    Ok(out)
}

/// Checks the in-place echo instance: one run turns `frame` into the same
/// request with MACs and addresses swapped (so type, TTL and checksums come
/// out as they went in, verified), and `repeat` runs on one buffer count
/// `repeat` answered echoes.
fn check_in_place(r: &mut Responder, what: &str, frame: &[u8], v6: bool, repeat: u32) -> Result<()> {
    let out = check(r, what, frame, XDP_TX, v6)?;
    let mut expected = frame.to_vec();
    expected[..6].copy_from_slice(&frame[6..12]);
    expected[6..12].copy_from_slice(&frame[..6]);
    // Source and destination address: offset of the source, and length.
    let (at, n) = if v6 { (22, 16) } else { (26, 4) };
    expected[at..at + n].copy_from_slice(&frame[at + n..at + 2 * n]);
    expected[at + n..at + 2 * n].copy_from_slice(&frame[at..at + n]);
    ensure!(
        out == expected,
        "bench path `{what}`: the in-place rewrite did not give the swapped request"
    );
    let before = Snapshot::of(r)?.verdict(Reason::EchoAnswered);
    run_once(r, frame, repeat)?;
    let answered = Snapshot::of(r)?.verdict(Reason::EchoAnswered) - before;
    ensure!(
        answered == u64::from(repeat),
        "bench path `{what}`: {answered} of {repeat} repeat-mode runs answered: the bench would time the wrong path"
    );
    Ok(())
}

/// Runs every path; needs root (it loads programs).
pub fn run(opts: Options) -> Result<Report> {
    let unlimited = Config {
        per_source: Limit::UNLIMITED,
        global: Limit::UNLIMITED,
        ..Config::default()
    };
    let mut prog = Responder::load()?;
    let mut addrs = AddrSet::default();
    addrs.push_v4(US4.octets());
    addrs.push_v6(US6.octets());
    prog.set_addrs(&addrs)?;
    prog.set_config(&unlimited)?;
    let verified_insns = prog.verified_insns()?;
    let pass = Responder::load_pass()?;
    let mut b = Bench { prog, pass, opts };

    let tcp = frame4(ipv4(PEER4, US4, 6, 64, &[], &[0u8; 20]));
    let echo4 = frame4(ipv4(PEER4, US4, 1, 64, &[], &icmp4(8, 0, [0, 1, 0, 1], &[0x5a; 56])));
    let echo6 = frame6(ipv6(
        PEER6,
        US6,
        58,
        64,
        &icmp6(&PEER6, &US6, 128, 0, [0, 1, 0, 1], &[0x5a; 56]),
    ));
    let pu4 = frame4(ipv4(
        PEER4,
        US4,
        17,
        64,
        &[],
        &udp4(PEER4, US4, 40000, 33434, &[0x5a; 32]),
    ));
    let pu6 = frame6(ipv6(PEER6, US6, 17, 64, &udp6(&PEER6, &US6, 40000, 33434, &[0x5a; 32])));
    let suppressed = frame4(ipv4(
        PEER4,
        Ipv4Addr::BROADCAST,
        17,
        64,
        &[],
        &udp4(PEER4, Ipv4Addr::BROADCAST, 40000, 33434, b"x"),
    ));

    for (what, f, action, v6) in [
        ("tcp", &tcp, XDP_PASS, false),
        ("echo4", &echo4, XDP_TX, false),
        ("echo6", &echo6, XDP_TX, true),
        ("pu4", &pu4, XDP_TX, false),
        ("pu6", &pu6, XDP_TX, true),
        ("suppressed", &suppressed, XDP_PASS, false),
    ] {
        check(&mut b.prog, what, f, action, v6)?;
    }

    let line = Some(LINE_RATE_NS);
    let mut paths = vec![
        b.path("pass-through TCP", &tcp, Mode::Repeat, line)?,
        b.path("suppressed error (UDP to broadcast)", &suppressed, Mode::Repeat, line)?,
    ];

    // Echo in repeat mode, on the in-place instance. After one run the frame
    // is addressed to PEER, so PEER is one of its addresses too.
    let mut in_place = super::versus::in_place_echo()?;
    check_in_place(&mut in_place, "echo4 in place", &echo4, false, opts.repeat)?;
    check_in_place(&mut in_place, "echo6 in place", &echo6, true, opts.repeat)?;
    let normal = std::mem::replace(&mut b.prog, in_place);
    paths.push(b.path("IPv4 echo", &echo4, Mode::Repeat, Some(8.0))?);
    paths.push(b.path("ICMPv6 echo", &echo6, Mode::Repeat, Some(8.0))?);
    // The bare echoes in repeat mode (each run swaps the frame back, so
    // every run rewrites): beside the rows above, warm caches on both
    // sides, so what separates them is instructions, not cache misses.
    b.prog = Responder::load_named("bare_echo4")?;
    check(&mut b.prog, "bare_echo4", &echo4, XDP_TX, false)?;
    paths.push(b.path("IPv4 echo, bare_echo4", &echo4, Mode::Repeat, None)?);
    b.prog = Responder::load_named("bare_echo6")?;
    check(&mut b.prog, "bare_echo6", &echo6, XDP_TX, true)?;
    paths.push(b.path("ICMPv6 echo, bare_echo6", &echo6, Mode::Repeat, None)?);
    b.prog = normal;

    paths.extend([
        b.path("IPv4 echo", &echo4, Mode::Fresh, line)?,
        b.path("ICMPv6 echo", &echo6, Mode::Fresh, line)?,
        b.path("IPv4 Port Unreachable", &pu4, Mode::Fresh, Some(60.0))?,
        b.path("IPv6 Port Unreachable", &pu6, Mode::Fresh, Some(60.0))?,
    ]);

    // Capture (`icmpxdp capture`): the echo path with a capture running,
    // every frame kept and written (a thread on the other CPU empties the
    // ring as `capture` does), and kept but sampled out. The rows above are
    // the same path with no capture: the switch's load and branch.
    let id = b.prog.program_id()?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let capture = crate::dataplane::capture::Capture::start(id, &Default::default())?;
    let reader = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || -> Result<(crate::dataplane::capture::CaptureStats, u64)> {
            let mut capture = capture;
            let mut read = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                capture.wait(std::time::Duration::from_millis(10));
                while capture.next_record().is_some() {
                    read += 1;
                }
                capture.renew()?;
            }
            Ok((capture.stats()?, read))
        })
    };
    paths.push(b.path("IPv4 echo, capture on (every frame written)", &echo4, Mode::Fresh, None)?);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (written, _) = reader
        .join()
        .map_err(|_| anyhow::anyhow!("capture reader panicked"))??;
    if written.lost > written.written / 100 {
        eprintln!(
            "bench: capture lost {} of {} records (ring full): the row above is partly the cheaper failed write",
            written.lost, written.matched
        );
    }
    {
        let _sampled = crate::dataplane::capture::Capture::start(
            id,
            &crate::dataplane::capture::CaptureFilter {
                sample: u32::MAX,
                ..Default::default()
            },
        )?;
        paths.push(b.path("IPv4 echo, capture on (sampled out)", &echo4, Mode::Fresh, None)?);
    }

    // The limiter: the same Port Unreachable path with it running in full
    // (always admitting: a huge rate and burst, so every run does the bucket
    // lookup and both compare-and-exchanges) and with it skipped (ratemask 0).
    let full = Limit::new(1, u32::MAX);
    b.prog.set_config(&Config {
        per_source: full,
        global: full,
        ..unlimited
    })?;
    check(&mut b.prog, "pu4 with limiter", &pu4, XDP_TX, false)?;
    let on = b.path("IPv4 Port Unreachable, limiter on", &pu4, Mode::Fresh, None)?;
    b.prog.set_config(&Config {
        ratemask_v4: 0,
        ..unlimited
    })?;
    let off = b.path("IPv4 Port Unreachable, limiter skipped", &pu4, Mode::Fresh, None)?;
    // Refused by the limiter: the frame is dropped untouched, so repeat mode.
    let limited = Config {
        per_source: Limit::new(3_600_000_000_000, 1),
        ..unlimited
    };
    b.prog.set_config(&limited)?;
    let _ = run_once(&mut b.prog, &pu4, 1)?; // spends the one token
    check(&mut b.prog, "rate-limited", &pu4, XDP_DROP, false)?;
    paths.push(b.path("rate-limited error (dropped)", &pu4, Mode::Repeat, line)?);
    let limiter_added_ns = on.median_ns - off.median_ns;
    paths.push(on);
    paths.push(off);

    let (cpu, cpus, kernel) = machine();
    Ok(Report {
        date: today(),
        cpu,
        cpus,
        kernel,
        verified_insns,
        options: format!(
            "{} trials; repeat mode {} runs/call; fresh mode {} calls/trial",
            opts.trials, opts.repeat, opts.calls
        ),
        paths,
        limiter_added_ns,
        limiter_target_ns: 5.0,
        versus: super::versus::compare(opts.trials, opts.calls)?,
        contention: super::versus::contention(opts.trials * opts.calls * 2)?,
    })
}
