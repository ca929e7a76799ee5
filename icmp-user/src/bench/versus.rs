//! The responder against bare programs that do only the rewrite of each
//! path (`icmp-ebpf/src/bare.rs`), side by side in one run: fresh frame by
//! fresh frame through BPF_PROG_TEST_RUN, each over an XDP_PASS floor
//! measured interleaved with it, reported as ratios with their targets.
//!
//! Every program measured here, the floor included, is *attached* (driver
//! mode, to a veth pair of its own in a namespace the bench creates): the
//! kernel then calls it through the XDP dispatcher's direct call, as it
//! calls a program on a NIC. A program that is only loaded is reached by a
//! retpolined indirect call, about 16 ns more per run, which would make any
//! comparison between an attached and an unattached program meaningless.

use std::net::Ipv4Addr;

use anyhow::{Context as _, Result, ensure};
use aya::programs::{TestRun as _, TestRunOptions};
use icmp_common::{
    AddrSet, Config,
    config::{FLAG_PORTS_BY_SOCKET, PORT_SLOTS, PORT_WORDS, port_slot},
    ratelimit::Limit,
};
use serde::Serialize;

use crate::{
    bench::frames::{ETH_P_IP, ETH_P_IPV6, Frame, PEER4, PEER6, US4, US6, icmp4, icmp6, ipv4, ipv6, udp4, udp6},
    config::PortBitmaps,
    dataplane::{load::Responder, netns},
    lab::ip,
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

/// One row: the responder's and the bare program's cost over the floor.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub path: String,
    /// The bare program it is compared with ("" for an absolute target).
    pub bare: String,
    pub icmpxdp_over_floor_ns: f64,
    pub bare_over_floor_ns: f64,
    pub ratio: f64,
    /// What the row must meet, in words, and whether it did.
    pub target: String,
    pub met: bool,
}

/// Veth pairs in a namespace of the bench's own, one per program.
struct Attachments {
    ns: String,
    next: usize,
}

impl Attachments {
    fn new() -> Result<Self> {
        let ns = format!("icmpxdp-bench-{}", std::process::id());
        let _ = ip(&["netns", "del", &ns]);
        ip(&["netns", "add", &ns])?;
        Ok(Self { ns, next: 0 })
    }

    /// Attaches `r` in driver mode to a veth of its own.
    fn attach(&mut self, r: &mut Responder) -> Result<()> {
        let (a, b) = (format!("ixb{}a", self.next), format!("ixb{}b", self.next));
        self.next += 1;
        ip(&["-n", &self.ns, "link", "add", &a, "type", "veth", "peer", "name", &b])?;
        ip(&["-n", &self.ns, "link", "set", &a, "up"])?;
        ip(&["-n", &self.ns, "link", "set", &b, "up"])?;
        let _inside = netns::enter(&self.ns)?;
        r.attach_for_test_run(&a)
            .with_context(|| format!("attaching a benchmark program to {a}"))?;
        Ok(())
    }
}

impl Drop for Attachments {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.ns]);
    }
}

fn run(r: &mut Responder, frame: &[u8], out: &mut [u8]) -> Result<(u32, f64)> {
    run_repeated(r, frame, out, 1)
}

/// `repeat` runs in one BPF_PROG_TEST_RUN call (one buffer: after the
/// first run the program sees its own output).
fn run_repeated(r: &mut Responder, frame: &[u8], out: &mut [u8], repeat: u32) -> Result<(u32, f64)> {
    let opts = TestRunOptions {
        data_in: Some(frame),
        data_out: Some(out),
        repeat,
        ..TestRunOptions::default()
    };
    let res = r.program().test_run(opts).context("BPF_PROG_TEST_RUN")?;
    Ok((res.return_value, res.duration.as_nanos() as f64))
}

/// 10%-trimmed mean: the clock steps coarsely and a VM has outliers.
fn trimmed_mean(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let cut = v.len() / 10;
    let kept = &v[cut..v.len() - cut];
    kept.iter().sum::<f64>() / kept.len() as f64
}

fn frame4(l3: Vec<u8>) -> Vec<u8> {
    Frame::new(ETH_P_IP, l3).bytes()
}

fn frame6(l3: Vec<u8>) -> Vec<u8> {
    Frame::new(ETH_P_IPV6, l3).bytes()
}

fn udp_from4(src: Ipv4Addr) -> Vec<u8> {
    frame4(ipv4(src, US4, 17, 64, &[], &udp4(src, US4, 40000, 33434, &[0x5a; 32])))
}

/// 4096 sources, one frame each, cycled.
fn many_sources() -> Vec<Vec<u8>> {
    (0..4096u32)
        .map(|i| udp_from4(Ipv4Addr::from(0xc633_0000 | i)))
        .collect()
}

/// The frames the paths are measured with (the table and `--profile`).
struct PathFrames {
    echo4: Vec<u8>,
    echo6: Vec<u8>,
    /// UDP to a closed port.
    pu4: Vec<u8>,
    pu6: Vec<u8>,
    tcp: Vec<u8>,
    /// UDP to [`OPEN_PORT`], open by static policy on `pu_bare_work`.
    udp_open4: Vec<u8>,
}

/// The port `pu_bare_work` lists open (`ports.open`): DNS, the service a
/// responder most often stands in front of.
const OPEN_PORT: u16 = 53;

impl PathFrames {
    fn new() -> Self {
        Self {
            echo4: frame4(ipv4(PEER4, US4, 1, 64, &[], &icmp4(8, 0, [0, 1, 0, 1], &[0x5a; 56]))),
            echo6: frame6(ipv6(
                PEER6,
                US6,
                58,
                64,
                &icmp6(&PEER6, &US6, 128, 0, [0, 1, 0, 1], &[0x5a; 56]),
            )),
            pu4: udp_from4(PEER4),
            pu6: frame6(ipv6(PEER6, US6, 17, 64, &udp6(&PEER6, &US6, 40000, 33434, &[0x5a; 32]))),
            tcp: frame4(ipv4(PEER4, US4, 6, 64, &[], &[0u8; 20])),
            udp_open4: frame4(ipv4(
                PEER4,
                US4,
                17,
                64,
                &[],
                &udp4(PEER4, US4, 40000, OPEN_PORT, &[0x5a; 32]),
            )),
        }
    }
}

/// What the rows are measured with.
struct Setup {
    floor: Responder,
    /// The default config, limits lifted out of the way of echo.
    echo: Responder,
    /// Port Unreachable doing only the bare program's work: a listed closed
    /// port (no socket lookup), 56 / 96-byte errors (28 / 48-byte quote),
    /// ratemask 0 (no limiter).
    pu_bare_work: Responder,
    /// The default config with a limiter that always admits.
    pu_default: Responder,
    /// One source over its per-source limit.
    pu_refused: Responder,
    bare_echo4: Responder,
    bare_echo6: Responder,
    bare_unreach4: Responder,
    bare_unreach6: Responder,
    _attached: Attachments,
}

fn responder(cfg: Config, ports: Option<&PortBitmaps>) -> Result<Responder> {
    let mut r = Responder::load()?;
    let mut addrs = AddrSet::default();
    addrs.push_v4(US4.octets());
    addrs.push_v6(US6.octets());
    r.set_addrs(&addrs)?;
    if let Some(p) = ports {
        r.set_ports(p)?;
    }
    r.set_config(&cfg)?;
    Ok(r)
}

fn setup() -> Result<Setup> {
    let unlimited = Config {
        per_source: Limit::UNLIMITED,
        global: Limit::UNLIMITED,
        ..Config::default()
    };
    let mut closed = PortBitmaps(vec![0; PORT_SLOTS as usize]);
    let (slot, bit) = port_slot(33434);
    closed.0[(slot + PORT_WORDS) as usize] |= bit;
    let (slot, bit) = port_slot(OPEN_PORT);
    closed.0[slot as usize] |= bit;
    let admitting = Limit::new(1, u32::MAX);
    let mut s = Setup {
        floor: Responder::load_pass()?,
        echo: responder(unlimited, None)?,
        pu_bare_work: responder(
            Config {
                flags: unlimited.flags & !FLAG_PORTS_BY_SOCKET,
                v4_error_size: Config::MIN_V4_ERROR_SIZE,
                v6_error_size: Config::MIN_V6_ERROR_SIZE,
                ratemask_v4: 0,
                ratemask_v6: [0; 8],
                ..unlimited
            },
            Some(&closed),
        )?,
        pu_default: responder(
            Config {
                per_source: admitting,
                global: admitting,
                ..Config::default()
            },
            None,
        )?,
        pu_refused: responder(
            Config {
                per_source: Limit::new(3_600_000_000_000, 1),
                ..Config::default()
            },
            None,
        )?,
        bare_echo4: Responder::load_named("bare_echo4")?,
        bare_echo6: Responder::load_named("bare_echo6")?,
        bare_unreach4: Responder::load_named("bare_unreach4")?,
        bare_unreach6: Responder::load_named("bare_unreach6")?,
        _attached: Attachments::new()?,
    };
    let a = &mut s._attached;
    for r in [
        &mut s.floor,
        &mut s.echo,
        &mut s.pu_bare_work,
        &mut s.pu_default,
        &mut s.pu_refused,
        &mut s.bare_echo4,
        &mut s.bare_echo6,
        &mut s.bare_unreach4,
        &mut s.bare_unreach6,
    ] {
        a.attach(r)?;
    }
    Ok(s)
}

/// Mean cost over the floor of `r` on `frames` (one per call, cycled),
/// measured in `trials` rounds of `calls` calls interleaved with the floor
/// and with `other` (the bare program on `other_frame`), so all three see
/// the same machine. Returns (r over floor, other over floor).
fn versus(
    floor: &mut Responder,
    r: &mut Responder,
    frames: &[Vec<u8>],
    other: &mut Responder,
    other_frame: &[u8],
    trials: usize,
    calls: usize,
) -> Result<(f64, f64)> {
    let mut out = vec![0u8; 2048];
    // Warm up: every frame once (a source's bucket exists, as it would for
    // a peer that keeps sending), and the caches.
    for f in frames.iter().chain(std::iter::repeat_n(&frames[0], 64)) {
        run(r, f, &mut out)?;
        run(floor, other_frame, &mut out)?;
        run(other, other_frame, &mut out)?;
    }
    let (mut fl, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
    let mut k = 0;
    for trial in 0..trials {
        // Blocks of `calls` runs of one program, the blocks' order rotating
        // from trial to trial. Not one call each in turn: the XDP dispatcher
        // picks its direct call by comparing program addresses, and
        // alternating programs every call mispredicts those branches (a few
        // ns, a different few for each program), which a NIC running one
        // program never sees.
        for step in 0..3 {
            for _ in 0..calls {
                match (step + trial) % 3 {
                    0 => fl.push(run(floor, other_frame, &mut out)?.1),
                    1 => {
                        a.push(run(r, &frames[k % frames.len()], &mut out)?.1);
                        k += 1;
                    }
                    _ => b.push(run(other, other_frame, &mut out)?.1),
                }
            }
        }
    }
    let f = trimmed_mean(&mut fl);
    Ok((trimmed_mean(&mut a) - f, trimmed_mean(&mut b) - f))
}

fn expect(r: &mut Responder, what: &str, frame: &[u8], action: u32) -> Result<()> {
    let mut out = vec![0u8; 2048];
    let (got, _) = run(r, frame, &mut out)?;
    ensure!(
        got == action,
        "bench `{what}`: XDP action {got}, expected {action}: it would time the wrong path"
    );
    Ok(())
}

/// Runs the side-by-side table (`trials` rounds of `calls` fresh frames).
pub fn compare(trials: usize, calls: usize) -> Result<Vec<Comparison>> {
    let mut s = setup()?;
    let PathFrames {
        echo4,
        echo6,
        pu4,
        pu6,
        tcp,
        udp_open4,
    } = PathFrames::new();
    // 4096 sources, one frame each, cycled: the bucket map and its cache
    // lines see what a spread of real peers costs.
    let many = many_sources();

    expect(&mut s.echo, "echo4", &echo4, XDP_TX)?;
    expect(&mut s.echo, "echo6", &echo6, XDP_TX)?;
    expect(&mut s.echo, "tcp", &tcp, XDP_PASS)?;
    expect(&mut s.pu_bare_work, "udp to an open port", &udp_open4, XDP_PASS)?;
    expect(&mut s.bare_echo4, "bare echo4", &echo4, XDP_TX)?;
    expect(&mut s.bare_echo6, "bare echo6", &echo6, XDP_TX)?;
    expect(&mut s.pu_bare_work, "pu4 bare work", &pu4, XDP_TX)?;
    expect(&mut s.pu_bare_work, "pu6 bare work", &pu6, XDP_TX)?;
    expect(&mut s.bare_unreach4, "bare pu4", &pu4, XDP_TX)?;
    expect(&mut s.bare_unreach6, "bare pu6", &pu6, XDP_TX)?;
    expect(&mut s.pu_default, "pu4 default", &pu4, XDP_TX)?;
    expect(&mut s.pu_refused, "pu4 first", &pu4, XDP_TX)?; // spends the one token
    expect(&mut s.pu_refused, "pu4 refused", &pu4, XDP_DROP)?;

    let mut rows = Vec::new();
    let mut row = |path: &str, bare: &str, (x, b): (f64, f64), limit: f64, plus: f64| {
        let ratio = x / b.max(0.1);
        let allowed = (b * limit).max(b + plus);
        let target = if plus > 0.0 {
            format!("≤ {limit}× bare or bare + {plus} ns")
        } else {
            format!("≤ {limit}× bare")
        };
        rows.push(Comparison {
            path: path.to_owned(),
            bare: bare.to_owned(),
            icmpxdp_over_floor_ns: x,
            bare_over_floor_ns: b,
            ratio,
            target,
            met: x <= allowed,
        });
    };
    let (t, c) = (trials, calls);
    row(
        "IPv4 echo, default config",
        "bare_echo4",
        versus(
            &mut s.floor,
            &mut s.echo,
            std::slice::from_ref(&echo4),
            &mut s.bare_echo4,
            &echo4,
            t,
            c,
        )?,
        1.5,
        6.0,
    );
    row(
        "ICMPv6 echo, default config",
        "bare_echo6",
        versus(
            &mut s.floor,
            &mut s.echo,
            std::slice::from_ref(&echo6),
            &mut s.bare_echo6,
            &echo6,
            t,
            c,
        )?,
        1.5,
        6.0,
    );
    row(
        "IPv4 Port Unreachable, the bare program's work",
        "bare_unreach4",
        versus(
            &mut s.floor,
            &mut s.pu_bare_work,
            std::slice::from_ref(&pu4),
            &mut s.bare_unreach4,
            &pu4,
            t,
            c,
        )?,
        1.5,
        0.0,
    );
    row(
        "IPv6 Port Unreachable, the bare program's work",
        "bare_unreach6",
        versus(
            &mut s.floor,
            &mut s.pu_bare_work,
            std::slice::from_ref(&pu6),
            &mut s.bare_unreach6,
            &pu6,
            t,
            c,
        )?,
        1.5,
        0.0,
    );
    row(
        "IPv4 Port Unreachable, default config (socket lookup, limiter admitting), one source",
        "bare_unreach4",
        versus(
            &mut s.floor,
            &mut s.pu_default,
            std::slice::from_ref(&pu4),
            &mut s.bare_unreach4,
            &pu4,
            t,
            c,
        )?,
        2.5,
        0.0,
    );
    row(
        "IPv4 Port Unreachable, default config, 4096 rotating sources",
        "bare_unreach4",
        versus(&mut s.floor, &mut s.pu_default, &many, &mut s.bare_unreach4, &pu4, t, c)?,
        3.0,
        0.0,
    );
    row(
        "IPv4 UDP refused by the per-source limit (dropped), vs the bare program answering",
        "bare_unreach4",
        versus(
            &mut s.floor,
            &mut s.pu_refused,
            std::slice::from_ref(&pu4),
            &mut s.bare_unreach4,
            &pu4,
            t,
            c,
        )?,
        1.0,
        0.0,
    );
    // Pass-through: no bare counterpart (the floor is one), an absolute
    // target. The bare echo only keeps the blocks' rotation the same.
    for (path, prog, frame) in [
        ("pass-through TCP".to_owned(), &mut s.echo, &tcp),
        (
            format!("pass-through UDP to a port open by static policy ({OPEN_PORT})"),
            &mut s.pu_bare_work,
            &udp_open4,
        ),
    ] {
        let (x, _) = versus(
            &mut s.floor,
            prog,
            std::slice::from_ref(frame),
            &mut s.bare_echo4,
            &echo4,
            t,
            c,
        )?;
        rows.push(Comparison {
            path,
            bare: String::new(),
            icmpxdp_over_floor_ns: x,
            bare_over_floor_ns: 0.0,
            ratio: 0.0,
            target: "≤ 5 ns".to_owned(),
            met: x <= 5.0,
        });
    }
    Ok(rows)
}

/// Runs one path of the table in a loop for `seconds`, for `perf record`
/// (see the README's profiling recipe): `echo4`, `echo6`, `pu4`, `pu4-default`,
/// `pu4-sources` (4096 rotating sources), `pu4-refused`, `bare-echo4`,
/// `bare-unreach4`, `tcp`, `udp-open4`, one fresh frame per call;
/// `echo4-warm`, `echo6-warm`, `bare-echo4-warm` in repeat mode.
/// With `jit_lines`, the profiled program's JIT line map is written there
/// first (see [`super::jit`]).
pub fn profile(path: &str, seconds: u64, jit_lines: Option<&std::path::Path>) -> Result<u64> {
    let mut s = setup()?;
    let PathFrames {
        echo4,
        echo6,
        pu4,
        tcp,
        udp_open4,
        ..
    } = PathFrames::new();
    let many = many_sources();
    // `-warm`: repeat mode on the in-place echo instance (its rewrite
    // leaves a valid request, so every run is the whole echo path), the
    // program's lines in cache: what is left is its instructions.
    let mut warm = match path {
        "echo4-warm" | "echo6-warm" => Some(in_place_echo()?),
        "bare-echo4-warm" => Some(Responder::load_named("bare_echo4")?),
        _ => None,
    };
    // A call with repeat > 1 installs the program in the XDP dispatcher
    // and removes it after (an RCU grace period each way, milliseconds):
    // many runs per call.
    let (repeat, calls) = if warm.is_some() { (1_000_000, 1) } else { (1, 1000) };
    let one = std::slice::from_ref;
    let (r, frames): (&mut Responder, &[Vec<u8>]) = match path {
        "echo4-warm" | "bare-echo4-warm" => (warm.as_mut().expect("loaded above"), one(&echo4)),
        "echo6-warm" => (warm.as_mut().expect("loaded above"), one(&echo6)),
        "echo4" => (&mut s.echo, one(&echo4)),
        "echo6" => (&mut s.echo, one(&echo6)),
        "pu4" => (&mut s.pu_bare_work, one(&pu4)),
        "pu4-default" => (&mut s.pu_default, one(&pu4)),
        "pu4-sources" => (&mut s.pu_default, &many),
        "pu4-refused" => (&mut s.pu_refused, one(&pu4)),
        "bare-echo4" => (&mut s.bare_echo4, one(&echo4)),
        "bare-unreach4" => (&mut s.bare_unreach4, one(&pu4)),
        "tcp" => (&mut s.echo, one(&tcp)),
        "udp-open4" => (&mut s.pu_bare_work, one(&udp_open4)),
        other => anyhow::bail!("no path `{other}` to profile"),
    };
    if let Some(out) = jit_lines {
        use std::os::fd::{AsFd as _, AsRawFd as _};
        let fd = r.program().fd()?.as_fd().as_raw_fd();
        std::fs::write(out, super::jit::read(fd)?.to_tsv()).with_context(|| format!("writing {}", out.display()))?;
    }
    let mut out = vec![0u8; 2048];
    let end = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let mut n = 0;
    let mut next = frames.iter().cycle();
    while std::time::Instant::now() < end {
        for _ in 0..calls {
            let frame = next.next().expect("at least one frame");
            run_repeated(r, frame, &mut out, repeat)?;
        }
        n += calls * u64::from(repeat);
    }
    Ok(n)
}

/// The global bucket under two receive queues: Port Unreachable with a
/// global limit that admits everything (every error compare-and-exchanges
/// the one global word), run on one CPU and then on both at once, against
/// the same with the global limit off. Returns ns per error over the floor
/// for (global on, global off) × (one CPU, two CPUs at once).
#[derive(Clone, Debug, Serialize)]
pub struct Contention {
    pub one_cpu_global_on_ns: f64,
    pub one_cpu_global_off_ns: f64,
    pub two_cpus_global_on_ns: f64,
    pub two_cpus_global_off_ns: f64,
}

/// BPF_PROG_TEST_RUN on a raw fd (shared by two threads): the run's
/// duration in ns, or `None` if the action was not `want`.
fn raw_test_run(fd: i32, frame: &[u8], out: &mut [u8], want: u32) -> Result<f64> {
    let mut attr = [0u8; 80];
    attr[0..4].copy_from_slice(&(fd as u32).to_ne_bytes());
    attr[8..12].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
    attr[12..16].copy_from_slice(&(out.len() as u32).to_ne_bytes());
    attr[16..24].copy_from_slice(&(frame.as_ptr() as u64).to_ne_bytes());
    attr[24..32].copy_from_slice(&(out.as_mut_ptr() as u64).to_ne_bytes());
    attr[32..36].copy_from_slice(&1u32.to_ne_bytes());
    // SAFETY: bpf(2) BPF_PROG_TEST_RUN with buffers that outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, 10, attr.as_mut_ptr(), attr.len()) };
    ensure!(r == 0, "BPF_PROG_TEST_RUN: {}", std::io::Error::last_os_error());
    let action = u32::from_ne_bytes(attr[4..8].try_into().unwrap());
    ensure!(action == want, "action {action}, expected {want}");
    Ok(f64::from(u32::from_ne_bytes(attr[36..40].try_into().unwrap())))
}

/// Mean ns per run of `fds` run at once, one thread per CPU, `calls` each.
fn concurrent(fds: &[(i32, u32)], frame: &[u8], calls: usize) -> Result<Vec<f64>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = fds
            .iter()
            .enumerate()
            .map(|(cpu, &(fd, want))| {
                s.spawn(move || -> Result<f64> {
                    let mut set = nix::sched::CpuSet::new();
                    set.set(cpu)?;
                    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)?;
                    let mut out = vec![0u8; 2048];
                    let mut v = Vec::with_capacity(calls);
                    for _ in 0..calls {
                        v.push(raw_test_run(fd, frame, &mut out, want)?);
                    }
                    Ok(trimmed_mean(&mut v))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("bench thread")).collect()
    })
}

pub fn contention(calls: usize) -> Result<Contention> {
    use std::os::fd::{AsFd as _, AsRawFd as _};
    let admitting = Limit::new(1, u32::MAX);
    let on = Config {
        per_source: Limit::UNLIMITED,
        global: admitting,
        ..Config::default()
    };
    let off = Config {
        global: Limit::UNLIMITED,
        ..on
    };
    let mut at = Attachments::new()?;
    let (mut r_on, mut r_off, mut floor) = (responder(on, None)?, responder(off, None)?, Responder::load_pass()?);
    for r in [&mut r_on, &mut r_off, &mut floor] {
        at.attach(r)?;
    }
    let fd = |r: &mut Responder| -> Result<i32> { Ok(r.program().fd()?.as_fd().as_raw_fd()) };
    let (on_fd, off_fd, floor_fd) = (fd(&mut r_on)?, fd(&mut r_off)?, fd(&mut floor)?);
    let pu4 = udp_from4(PEER4);
    let one = |fd: i32, want: u32| -> Result<f64> { Ok(concurrent(&[(fd, want)], &pu4, calls)?[0]) };
    let two = |fd: i32, want: u32| -> Result<f64> {
        let v = concurrent(&[(fd, want), (fd, want)], &pu4, calls)?;
        Ok(v.iter().sum::<f64>() / v.len() as f64)
    };
    let floor1 = one(floor_fd, XDP_PASS)?;
    let floor2 = two(floor_fd, XDP_PASS)?;
    Ok(Contention {
        one_cpu_global_on_ns: one(on_fd, XDP_TX)? - floor1,
        one_cpu_global_off_ns: one(off_fd, XDP_TX)? - floor1,
        two_cpus_global_on_ns: two(on_fd, XDP_TX)? - floor2,
        two_cpus_global_off_ns: two(off_fd, XDP_TX)? - floor2,
    })
}

/// The bench's in-place echo instance (`BENCH_ECHO_IN_PLACE`), unlimited,
/// with the peer's addresses as its own too: after one run the request is
/// addressed to the peer.
pub(super) fn in_place_echo() -> Result<Responder> {
    let mut r = Responder::load_bench_echo_in_place()?;
    let mut addrs = AddrSet::default();
    for a in [US4, PEER4] {
        addrs.push_v4(a.octets());
    }
    for a in [US6, PEER6] {
        addrs.push_v6(a.octets());
    }
    r.set_addrs(&addrs)?;
    r.set_config(&Config {
        per_source: Limit::UNLIMITED,
        global: Limit::UNLIMITED,
        ..Config::default()
    })?;
    Ok(r)
}
