//! End-to-end benchmark over veth: replies per second and responder CPU per
//! reply, the kernel stack against icmpxdp, measured in one run.
//!
//! A generator namespace floods the responder namespace with the built-in
//! generator: `xdp_gen` run by BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES,
//! XDP_TX out of the generator's veth (`ping -f` and hping3 top out far below
//! what XDP answers). `xdp_sink` on the generator's veth counts what comes
//! back and drops it. Both veths use threaded NAPI.
//!
//! CPU placement, and why:
//! - CPU 1 runs the responder's NAPI thread and nothing else of ours, so
//!   CPU 1's busy share is the responder's, and its thread's CPU time
//!   (`/proc/<pid>/schedstat`) is the work per reply.
//! - CPU 0 runs the generator (this thread, inside BPF_PROG_RUN) and the
//!   sink's NAPI thread. The sink is SCHED_FIFO so it preempts the generator
//!   at its next batch: a sink that waited for the generator's time slice
//!   would let its 256-frame ring overflow and under-count replies.
//! - The responder's thread is SCHED_FIFO too, so nothing else that wakes on
//!   CPU 1 (kworkers, timers) delays it. With it SCHED_OTHER and the sink
//!   sharing CPU 1 (the first design), the responder waited behind the sink
//!   for whole slices and icmpxdp answered 40–60% of what it was offered.
//!
//! Bounded: `duration` per measurement and at most `max_frames` offered;
//! only namespaces it creates, removed at the end.

use std::{
    fmt::Write as _,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use aya::{
    maps::Array,
    programs::{TestRun as _, TestRunAttrs, TestRunOptions},
};
use icmp_common::{Config, Family, counters::type_index, ratelimit::Limit};
use serde::Serialize;

use super::placement::{
    cpu_jiffies, cpu_ns, ifindex_in, mac_of, napi_realtime, pin_to_cpu, rx_packets, threaded_napi, times_scheduled,
};
use crate::{
    GEN_PROGRAM, SINK_PROGRAM,
    bench::frames::{ETH_P_IP, Frame, icmp4, ipv4, udp4},
    bench::report::verdict,
    dataplane::load::{Mode, Responder},
    dataplane::netns,
    lab::{self, Lab, ip, sysctl_in},
    observe::counters::sum_per_cpu,
};

const FRAME_LEN: usize = 98;

#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub duration: Duration,
    pub max_frames: u64,
    /// Trials per (traffic, responder), interleaved; the median is reported.
    pub trials: usize,
}

impl Options {
    pub const FULL: Self = Self {
        duration: Duration::from_secs(2),
        max_frames: 50_000_000,
        trials: 5,
    };
    pub const QUICK: Self = Self {
        duration: Duration::from_millis(300),
        max_frames: 5_000_000,
        trials: 1,
    };
}

#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    pub traffic: &'static str,
    pub responder: &'static str,
    pub offered_per_s: f64,
    /// Replies the sink received back per second.
    pub replies_per_s: f64,
    /// Share of one CPU the responder's NAPI thread was busy
    /// (`/proc/<pid>/schedstat`).
    pub responder_cpu: f64,
    /// Busy share of the responder's CPU as a whole (`/proc/stat`).
    pub cpu1_busy: f64,
    /// Responder thread CPU time per reply.
    pub us_per_reply: f64,
    /// Frames the responder's program ran on per second (the responder
    /// veth's received frames: offered minus what its ring dropped).
    pub handled_per_s: f64,
    /// Responder thread CPU time per frame handled.
    pub us_per_frame: f64,
    /// Frames handled per time the responder's NAPI thread was scheduled
    /// in: its batch. Smaller batches mean more wake-ups per frame, and
    /// each costs the thread CPU whatever the program does.
    pub frames_per_wakeup: f64,
}

/// The program's own time per run in the NAPI loop, from the kernel's
/// BPF statistics (`BPF_ENABLE_STATS`: `run_time_ns` / `run_cnt`), in a
/// trial of its own: the statistics add two clock reads per run, so the
/// CPU figures are taken without them.
#[derive(Clone, Debug, Serialize)]
pub struct ProgramTime {
    pub traffic: &'static str,
    pub responder: &'static str,
    pub ns_per_run: f64,
    pub runs: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub measurements: Vec<Measurement>,
    pub program_times: Vec<ProgramTime>,
}

fn sink_count(sink: &mut Responder, family: Family, kind: u8) -> Result<u64> {
    sum_per_cpu(sink.map_named("SINK")?, type_index(family, kind))
}

/// Runs the generator on the current thread (already in the generator's
/// namespace and pinned) until `until` or `max` frames; returns frames offered.
fn generate(generator: &mut Responder, frame: &[u8], ifindex: u32, until: Instant, max: u64) -> Result<u64> {
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
    // rx_queue_index, egress_ifindex. The kernel wants data_end = the frame's
    // length and the device to send from.
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
    let mut sent = 0u64;
    let repeat = 100_000u32;
    while Instant::now() < until && sent < max {
        let opts = TestRunOptions {
            data_in: Some(frame),
            ctx_in: Some(&ctx),
            repeat,
            attrs: TestRunAttrs::new().xdp_live_frames(64),
            ..TestRunOptions::default()
        };
        generator
            .program()
            .test_run(opts)
            .context("BPF_PROG_RUN with live frames")?;
        sent += u64::from(repeat);
    }
    Ok(sent)
}

struct Bench {
    lab: Lab,
    generator: Responder,
    gen_ifindex: u32,
}

impl Bench {
    fn measure(
        &mut self,
        traffic: &'static str,
        responder: &'static str,
        frame: &[u8],
        reply: (Family, u8),
        opts: Options,
    ) -> Result<Measurement> {
        // A veth has a NAPI instance only while XDP runs on it, so threaded
        // NAPI is turned on (and its thread pinned) after each attach.
        let resp_napi = threaded_napi(&self.lab.responder_ns, &self.lab.responder_if)?;
        napi_realtime(resp_napi, 1)?;
        let sink_before = sink_count(self.lab.client_program().context("sink")?, reply.0, reply.1)?;
        let cpu_before = cpu_ns(resp_napi)?;
        let scheduled_before = times_scheduled(resp_napi)?;
        let jiffies_before = cpu_jiffies(1)?;
        let (resp_ns, resp_if) = (self.lab.responder_ns.clone(), self.lab.responder_if.clone());
        let rx_before = rx_packets(&resp_ns, &resp_if)?;
        let start = Instant::now();
        let offered = {
            let _inside = netns::enter(&self.lab.client_ns)?;
            generate(
                &mut self.generator,
                frame,
                self.gen_ifindex,
                start + opts.duration,
                opts.max_frames,
            )?
        };
        let elapsed = start.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(50)); // in-flight replies
        let replies = sink_count(self.lab.client_program().context("sink")?, reply.0, reply.1)? - sink_before;
        let cpu = (cpu_ns(resp_napi)? - cpu_before) as f64 / 1e9;
        let handled = rx_packets(&resp_ns, &resp_if)? - rx_before;
        let wakeups = times_scheduled(resp_napi)? - scheduled_before;
        let jiffies_after = cpu_jiffies(1)?;
        let busy = (jiffies_after.0 - jiffies_before.0) as f64 / ((jiffies_after.1 - jiffies_before.1).max(1)) as f64;
        Ok(Measurement {
            traffic,
            responder,
            offered_per_s: offered as f64 / elapsed,
            replies_per_s: replies as f64 / elapsed,
            responder_cpu: cpu / elapsed,
            cpu1_busy: busy,
            us_per_reply: if replies == 0 {
                f64::NAN
            } else {
                cpu * 1e6 / replies as f64
            },
            handled_per_s: handled as f64 / elapsed,
            us_per_frame: cpu * 1e6 / (handled.max(1) as f64),
            frames_per_wakeup: handled as f64 / wakeups.max(1) as f64,
        })
    }
}

impl Bench {
    /// `load`'s program, loaded and attached (driver mode) on the
    /// responder's veth; it stays attached until the returned value drops.
    fn attached(&self, load: impl FnOnce() -> Result<Responder>) -> Result<Responder> {
        let _inside = netns::enter(&self.lab.responder_ns)?;
        let mut x = load()?;
        x.attach(&self.lab.responder_if, Mode::Driver)?;
        Ok(x)
    }

    /// Runs one trial with the kernel's BPF statistics on and returns what
    /// `program` (attached on the responder) spent per run.
    fn program_time(
        &mut self,
        program: &mut Responder,
        traffic: &'static str,
        responder: &'static str,
        frame: &[u8],
        reply: (Family, u8),
        opts: Options,
    ) -> Result<ProgramTime> {
        let stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).context("BPF_ENABLE_STATS")?;
        let before = program.program().info()?;
        self.measure(traffic, responder, frame, reply, opts)?;
        let after = program.program().info()?;
        drop(stats);
        let runs = after.run_count() - before.run_count();
        let ns = after.run_time().saturating_sub(before.run_time()).as_nanos() as f64;
        Ok(ProgramTime {
            traffic,
            responder,
            ns_per_run: ns / runs.max(1) as f64,
            runs,
        })
    }
}

/// Share of the offered frames at or above which a responder is taken to
/// have kept up with the generator (a few frames are in flight at the end).
const KEPT_UP: f64 = 0.99;

/// One line per traffic kind: the ratios against the kernel and against
/// the bare program, each with its target, and what bounds the replies/s
/// ratio when icmpxdp answered all it was offered.
fn summary(k: &Measurement, x: &Measurement, bare: &Measurement) -> String {
    let rate = x.replies_per_s / k.replies_per_s;
    let cpu = k.us_per_reply / x.us_per_reply;
    let over_bare = x.us_per_reply / bare.us_per_reply - 1.0;
    let bare_target = if k.traffic == "echo" { 0.05 } else { 0.20 };
    let mut line = format!(
        "{}: icmpxdp answers {rate:.1}× the kernel's replies/s (target ≥ 8×: {}) at {cpu:.1}× less responder CPU per reply \
         (target ≥ 12×: {}); its CPU per reply is {:+.0}% of the bare program's (target ≤ +{:.0}%: {}).",
        k.traffic,
        verdict(rate >= 8.0),
        verdict(cpu >= 12.0),
        over_bare * 100.0,
        bare_target * 100.0,
        verdict(over_bare <= bare_target),
    );
    // Per frame handled: what the responder spent on each frame its program
    // ran on, whether or not the reply survived the way back (a reply the
    // sink's ring dropped still cost the responder its work).
    let _ = write!(
        line,
        " Per frame handled: {:.3} µs against the bare program's {:.3} ({:+.0}%); {:.1}% / {:.1}% of the frames handled came back as replies.",
        x.us_per_frame,
        bare.us_per_frame,
        (x.us_per_frame / bare.us_per_frame - 1.0) * 100.0,
        100.0 * x.replies_per_s / x.handled_per_s.max(1.0),
        100.0 * bare.replies_per_s / bare.handled_per_s.max(1.0),
    );
    let answered = x.replies_per_s / x.offered_per_s;
    if answered >= KEPT_UP {
        let _ = write!(
            line,
            " icmpxdp answered {:.1}% of what the generator offered with its CPU {:.0}% busy, so this ratio is bounded by the generator (two vCPUs: it shares CPU 0 with the sink), not by icmpxdp; at {:.3} µs per reply one CPU would answer about {:.1} M/s.",
            answered * 100.0,
            x.cpu1_busy * 100.0,
            x.us_per_reply,
            1.0 / x.us_per_reply,
        );
    }
    line
}

/// The trial with the median replies/s.
fn median_by_replies(mut v: Vec<Measurement>) -> Measurement {
    v.sort_by(|a, b| a.replies_per_s.total_cmp(&b.replies_per_s));
    v.swap_remove(v.len() / 2)
}

/// Runs every measurement; needs root and two CPUs.
pub fn run(opts: Options) -> Result<Report> {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        bail!("the end-to-end benchmark needs two CPUs (generator and responder apart)");
    }
    let name = "bn";
    if Lab::exists(name) {
        Lab::remove_stale(name);
    }
    let lab = Lab::create_with(name, SINK_PROGRAM)?;
    let (g, r) = (lab.client_ns.clone(), lab.responder_ns.clone());
    // The kernel answers in the baseline, unthrottled: no echo_ignore, no
    // ICMP rate limiting (ratemask 0) — the same work icmpxdp does unlimited.
    sysctl_in(&r, "net.ipv4.icmp_echo_ignore_all", "0")?;
    sysctl_in(&r, "net.ipv4.icmp_ratemask", "0")?;
    // CPU 0: this thread (the generator) and the sink; CPU 1: the responder.
    let sink_napi = threaded_napi(&g, &lab.client_if)?;
    napi_realtime(sink_napi, 0)?;
    pin_to_cpu(0, 0)?;

    let gen_mac = mac_of(&g, &lab.client_if)?;
    let resp_mac = mac_of(&r, &lab.responder_if)?;
    // The kernel must not depend on ARP under the flood (an ARP reply queues
    // behind the generator's frames and is lost): a static neighbour entry.
    let mac_text = gen_mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    ip(&[
        "-n",
        &r,
        "neigh",
        "replace",
        &lab::CLIENT_V4.to_string(),
        "lladdr",
        &mac_text,
        "dev",
        &lab.responder_if,
        "nud",
        "permanent",
    ])?;
    let frame = |l3: Vec<u8>| {
        let mut f = Frame::new(ETH_P_IP, l3);
        f.dst_mac = resp_mac;
        f.src_mac = gen_mac;
        f.bytes()
    };
    let echo = frame(ipv4(
        lab::CLIENT_V4,
        lab::RESPONDER_V4,
        1,
        64,
        &[],
        &icmp4(8, 0, [0x12, 0x34, 0, 1], &[0x5a; 56]),
    ));
    let udp = frame(ipv4(
        lab::CLIENT_V4,
        lab::RESPONDER_V4,
        17,
        64,
        &[],
        &udp4(lab::CLIENT_V4, lab::RESPONDER_V4, 40000, 9, &[0x5a; 56]),
    ));
    assert_eq!(echo.len(), FRAME_LEN);
    assert_eq!(udp.len(), FRAME_LEN);

    let generator = Responder::load_named(GEN_PROGRAM)?;
    let gen_ifindex = ifindex_in(&g, &lab.client_if)?;
    let resp_if = lab.responder_if.clone();
    let mut b = Bench {
        lab,
        generator,
        gen_ifindex,
    };
    let set_frame = |generator: &mut Responder, f: &[u8]| -> Result<()> {
        let mut m: Array<&mut aya::maps::MapData, [u8; FRAME_LEN]> =
            Array::try_from(generator.map_named("GEN_FRAME")?)?;
        m.set(0, <[u8; FRAME_LEN]>::try_from(f)?, 0)?;
        Ok(())
    };

    let mut out = Vec::new();
    let mut times = Vec::new();
    for (traffic, f, reply) in [
        ("echo", &echo, (Family::V4, 0u8)),
        ("udp to a closed port", &udp, (Family::V4, 3u8)),
    ] {
        let (mut kernel, mut xdp, mut bare) = (Vec::new(), Vec::new(), Vec::new());
        let bare_name = if traffic == "echo" {
            "bare_echo4"
        } else {
            "bare_unreach4"
        };
        for _ in 0..opts.trials {
            set_frame(&mut b.generator, f)?;
            // (a) the kernel answers; xdp_pass lets veth accept the XDP_TX'd frames.
            {
                let _pass = b.attached(Responder::load_pass)?;
                kernel.push(b.measure(traffic, "kernel", f, reply, opts)?);
            }
            // (b) icmpxdp answers, unlimited like the kernel above.
            {
                let _x = b.attached(unlimited_responder)?;
                xdp.push(b.measure(traffic, "icmpxdp", f, reply, opts)?);
            }
            // (c) the bare program: the rewrite and nothing else.
            {
                let _x = b.attached(|| Responder::load_named(bare_name))?;
                bare.push(b.measure(traffic, bare_name, f, reply, opts)?);
            }
        }
        out.push(median_by_replies(kernel));
        out.push(median_by_replies(xdp));
        out.push(median_by_replies(bare));
        // The program's own time per frame in the NAPI loop, icmpxdp then
        // the bare program, one trial each with the statistics on.
        {
            let mut x = b.attached(unlimited_responder)?;
            times.push(b.program_time(&mut x, traffic, "icmpxdp", f, reply, opts)?);
        }
        {
            let mut x = b.attached(|| Responder::load_named(bare_name))?;
            times.push(b.program_time(&mut x, traffic, bare_name, f, reply, opts)?);
        }
    }
    // A one-source flood to a closed port, refused by the per-source limit
    // (1/s, burst 1): CPU per refused datagram, against CPU per sent error.
    set_frame(&mut b.generator, &udp)?;
    let mut refused: Vec<Measurement> = Vec::new();
    for _ in 0..opts.trials {
        let _x = b.attached(refusing_responder)?;
        refused.push(b.measure(REFUSED_TRAFFIC, "icmpxdp", &udp, (Family::V4, 3u8), opts)?);
    }
    refused.sort_by(|a, b| a.us_per_frame.total_cmp(&b.us_per_frame));
    out.push(refused.swap_remove(refused.len() / 2));
    {
        let mut x = b.attached(refusing_responder)?;
        times.push(b.program_time(&mut x, REFUSED_TRAFFIC, "icmpxdp", &udp, (Family::V4, 3u8), opts)?);
    }
    // The floor under a refusal: the same flood into a program that only
    // counts and drops (`xdp_sink`) — what the veth's receive path costs per
    // frame whatever the program decides.
    let mut floor: Vec<Measurement> = Vec::new();
    for _ in 0..opts.trials {
        let _x = b.attached(|| Responder::load_named(SINK_PROGRAM))?;
        floor.push(b.measure(FLOOR_TRAFFIC, SINK_PROGRAM, &udp, (Family::V4, 3u8), opts)?);
    }
    floor.sort_by(|a, b| a.us_per_frame.total_cmp(&b.us_per_frame));
    out.push(floor.swap_remove(floor.len() / 2));
    {
        let mut x = b.attached(|| Responder::load_named(SINK_PROGRAM))?;
        times.push(b.program_time(&mut x, FLOOR_TRAFFIC, SINK_PROGRAM, &udp, (Family::V4, 3u8), opts)?);
    }
    let _ = ip(&["-n", &r, "link", "set", &resp_if, "xdp", "off"]);
    Ok(Report {
        measurements: out,
        program_times: times,
    })
}

/// icmpxdp as the lab's responder, answering without limits (as the
/// kernel does with `icmp_ratemask = 0`).
fn unlimited_responder() -> Result<Responder> {
    responder_with(Limit::UNLIMITED)
}

/// icmpxdp refusing a one-source flood: per source 1/s, burst 1.
fn refusing_responder() -> Result<Responder> {
    responder_with(Limit::new(1_000_000_000, 1))
}

fn responder_with(per_source: Limit) -> Result<Responder> {
    let mut x = Responder::load()?;
    let mut addrs = icmp_common::AddrSet::default();
    addrs.push_v4(lab::RESPONDER_V4.octets());
    x.set_addrs(&addrs)?;
    x.set_config(&Config {
        per_source,
        global: Limit::UNLIMITED,
        ..Config::default()
    })?;
    Ok(x)
}

/// The traffic label of the refused row.
const REFUSED_TRAFFIC: &str = "udp refused by the per-source limit";

/// The traffic label of the drop floor's row.
const FLOOR_TRAFFIC: &str = "udp, dropped by a program that only drops (floor)";

/// Whether a row's traffic gets no replies (a refusal or the drop floor):
/// its CPU is per frame, not per reply.
fn per_frame(m: &Measurement) -> bool {
    m.traffic == REFUSED_TRAFFIC || m.traffic == FLOOR_TRAFFIC
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| traffic | responder | offered/s | handled/s | replies/s | responder thread CPU | responder CPU busy | µs thread CPU per reply | µs per frame handled | frames per wake-up |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for m in &self.measurements {
            let per = if per_frame(m) {
                "—".to_string()
            } else {
                format!("{:.3}", m.us_per_reply)
            };
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0}% | {:.0}% | {per} | {:.3} | {:.1} |",
                m.traffic,
                m.responder,
                m.offered_per_s,
                m.handled_per_s,
                m.replies_per_s,
                m.responder_cpu * 100.0,
                m.cpu1_busy * 100.0,
                m.us_per_frame,
                m.frames_per_wakeup,
            );
        }
        for triple in self.measurements.chunks(3) {
            if let [k, x, bare] = triple {
                let _ = writeln!(s, "\n{}", summary(k, x, bare));
            }
        }
        let sent = self
            .measurements
            .iter()
            .find(|m| m.traffic == "udp to a closed port" && m.responder == "icmpxdp");
        let refused = self.measurements.iter().find(|m| m.traffic == REFUSED_TRAFFIC);
        let floor = self.measurements.iter().find(|m| m.traffic == FLOOR_TRAFFIC);
        if let (Some(sent), Some(refused)) = (sent, refused) {
            let ratio = refused.us_per_frame / sent.us_per_reply;
            let _ = write!(
                s,
                "\nudp refused by the per-source limit: {:.3} µs of responder CPU per refused datagram, {:.2}× the CPU per sent error (target ≤ 1/3: {})",
                refused.us_per_frame,
                ratio,
                verdict(ratio <= 1.0 / 3.0)
            );
            if let Some(floor) = floor {
                let over = (refused.us_per_frame - floor.us_per_frame) / (sent.us_per_reply - floor.us_per_frame);
                let _ = write!(
                    s,
                    "; over the {:.3} µs a frame costs a program that only drops, {:.2}× the sent error's",
                    floor.us_per_frame, over
                );
            }
            let _ = writeln!(s, ".");
        }
        if !self.program_times.is_empty() {
            let _ = writeln!(
                s,
                "\nThe program's own time in the NAPI loop (kernel BPF statistics, `run_time_ns / run_cnt`, one trial each with them on):\n"
            );
            let _ = writeln!(s, "| traffic | program | ns per run | runs |");
            let _ = writeln!(s, "|---|---|---:|---:|");
            for t in &self.program_times {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.1} | {} |",
                    t.traffic, t.responder, t.ns_per_run, t.runs
                );
            }
        }
        s
    }
}
