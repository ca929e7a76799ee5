//! `icmpxdp`: attach the ICMP responder to interfaces, run a lab, read counters.

use std::{
    io::Write as _,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use icmp_common::{AddrSet, Family};
use icmp_user::{
    addrs::interface_addrs,
    config::{FileConfig, Settings},
    lab::{self, Lab},
    netns,
    pin::{self, InstanceLock, PinDir},
    responder::{Attached, Mode, Responder},
    stats::Snapshot,
};

#[derive(Parser)]
#[command(name = "icmpxdp", version, about = "ICMP responder and rate limiter in XDP")]
struct Cli {
    /// Work inside this network namespace (as named by `ip netns`).
    #[arg(long, global = true)]
    netns: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Attach to interfaces and answer until SIGINT/SIGTERM, then detach.
    Run {
        /// Interface to attach to (repeatable).
        #[arg(long = "iface", required = true)]
        ifaces: Vec<String>,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Start a two-namespace lab, attach in it, show live counters until Ctrl-C.
    Lab {
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Apply a new config to running instances without detaching.
    Reload {
        /// Only this interface (default: every running instance).
        #[arg(long)]
        iface: Option<String>,
        /// TOML config file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Override a config key: `--set rate_limit.burst=10` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Print the counters of running instances.
    Stats {
        /// Only this interface.
        #[arg(long)]
        iface: Option<String>,
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Validate a config file without attaching anything.
    CheckConfig { file: PathBuf },
    /// Measure ns/packet per path (BPF_PROG_TEST_RUN, against XDP_PASS).
    Bench {
        /// One JSON object instead of a Markdown table.
        #[arg(long)]
        json: bool,
        /// About a second instead of about a minute (a smoke run).
        #[arg(long)]
        quick: bool,
    },
}

#[derive(clap::Args)]
struct RunOpts {
    /// auto = driver mode, falling back to skb mode.
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    mode: Mode,
    /// TOML config file (see icmpxdp.example.toml); SIGHUP re-reads it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override a config key: `--set rate_limit.burst=10` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

impl RunOpts {
    /// The validated settings: what the loader writes into the program.
    fn config(&self) -> Result<Settings> {
        FileConfig::load(self.config.as_deref(), &self.sets)?.settings()
    }
}

/// One attached interface: dropping it detaches and removes its pins.
struct Instance {
    name: String,
    iface: String,
    // Field order is drop order: detach first, then unpin, then unlock.
    responder: Responder,
    _pins: PinDir,
    _lock: InstanceLock,
    addrs: AddrSet,
}

impl Instance {
    fn start(iface: &str, netns: Option<&str>, mode: Mode, settings: &Settings) -> Result<Self> {
        let name = pin::instance_name(iface, netns);
        let lock = InstanceLock::acquire(&name)?;
        let found = interface_addrs(iface)?;
        let mut responder = Responder::load_with(settings.max_sources)?;
        responder.set_config(&settings.config)?;
        responder.set_ports(&settings.ports)?;
        responder.set_addrs(&found.set)?;
        let pins = PinDir::create(&name, &lock)?;
        responder.pin_maps(pins.path())?;
        let attached: Attached = responder.attach(iface, mode)?;
        for a in &found.dropped {
            log::warn!("{iface}: address set full, not answering for {a}");
        }
        println!(
            "icmpxdp: attached to {iface} in {attached} mode (program id {}), counters pinned at {}",
            responder.program_id()?,
            pins.path().display()
        );
        Ok(Self {
            name,
            iface: iface.to_owned(),
            responder,
            _pins: pins,
            _lock: lock,
            addrs: found.set,
        })
    }

    /// Picks up address changes on the interface.
    fn refresh_addrs(&mut self) -> Result<()> {
        let found = interface_addrs(&self.iface)?;
        if found.set != self.addrs {
            self.responder.set_addrs(&found.set)?;
            self.addrs = found.set;
            log::info!("{}: addresses changed, address set updated", self.iface);
        }
        Ok(())
    }
}

fn require_privileges() -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    // CAP_NET_ADMIN (12) and CAP_BPF (39) are what attaching needs.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    if caps & (1 << 12) != 0 && caps & (1 << 39) != 0 {
        return Ok(());
    }
    bail!("icmpxdp needs root (or CAP_BPF and CAP_NET_ADMIN) to load and attach XDP programs; re-run as root")
}

/// SIGINT/SIGTERM stop; SIGHUP reloads the config.
struct Signals {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
}

fn signals() -> Result<Signals> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))?;
    Ok(Signals { stop, reload })
}

/// SIGHUP: re-reads the config; an invalid one changes nothing.
fn reload_all(instances: &mut [Instance], opts: &RunOpts, loaded_max_sources: u32) {
    match opts.config() {
        Ok(settings) => {
            if settings.max_sources != loaded_max_sources {
                log::warn!(
                    "rate_limit.max_sources changed to {} but stays {loaded_max_sources} until a restart (map size is fixed at load)",
                    settings.max_sources
                );
            }
            for i in instances.iter_mut() {
                match i.responder.apply(&settings) {
                    Ok(()) => log::info!("{}: config reloaded", i.name),
                    Err(e) => log::error!("{}: reload failed: {e:#}", i.name),
                }
            }
        }
        Err(e) => log::error!("reload refused, config unchanged: {e:#}"),
    }
}

/// Runs until a signal; `tick` is called about once a second.
fn serve(
    instances: &mut [Instance],
    sig: &Signals,
    opts: &RunOpts,
    max_sources: u32,
    mut tick: impl FnMut(&mut [Instance]),
) -> Result<()> {
    let mut last = Instant::now();
    while !sig.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if sig.reload.swap(false, Ordering::Relaxed) {
            reload_all(instances, opts, max_sources);
        }
        for i in instances.iter_mut() {
            i.responder.flush_logs();
        }
        if last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            for i in instances.iter_mut() {
                if let Err(e) = i.refresh_addrs() {
                    log::warn!("{}: {e:#}", i.iface);
                }
            }
            tick(instances);
        }
    }
    Ok(())
}

fn run(ifaces: &[String], netns: Option<&str>, opts: &RunOpts) -> Result<()> {
    let cfg = opts.config()?;
    require_privileges()?;
    let sig = signals()?;
    let mut instances = Vec::new();
    for iface in ifaces {
        // On error, the instances already started are dropped: detached.
        instances.push(Instance::start(iface, netns, opts.mode, &cfg).with_context(|| format!("starting on {iface}"))?);
    }
    serve(&mut instances, &sig, opts, cfg.max_sources, |_| {})?;
    for i in instances.drain(..).rev() {
        let name = i.name.clone();
        drop(i);
        println!("icmpxdp: detached from {name}");
    }
    Ok(())
}

const LAB_NAME: &str = "lab";

fn run_lab(opts: &RunOpts) -> Result<()> {
    let cfg = opts.config()?;
    require_privileges()?;
    let sig = signals()?;
    if Lab::exists(LAB_NAME) {
        println!("icmpxdp: removing a lab left over by an earlier run");
        Lab::remove_stale(LAB_NAME);
    }
    let lab = Lab::create(LAB_NAME)?;
    // Stay in the responder namespace while serving: the address refresh
    // reads the interface from there.
    let inside = netns::enter(&lab.responder_ns)?;
    let mut instances = vec![Instance::start(&lab.responder_if, Some(&lab.responder_ns), opts.mode, &cfg)?];
    println!(
        "\nLab ready: namespace {c} ({cv4}, {cv6}) ↔ namespace {r} ({rv4}, {rv6}).\n\
         The responder's kernel echo replies are off, so every reply below comes from XDP.\n\
         Try, in another terminal:\n  \
         ip netns exec {c} ping -c 5 {rv4}\n  \
         ip netns exec {c} ping -6 -c 5 {rv6}\n  \
         ip netns exec {c} traceroute -n {rv4}      (UDP to closed ports: Port Unreachable from XDP)\n  \
         icmpxdp stats\n\
         Ctrl-C stops icmpxdp and removes the lab.\n",
        c = lab.client_ns,
        r = lab.responder_ns,
        cv4 = lab::CLIENT_V4,
        cv6 = lab::CLIENT_V6,
        rv4 = lab::RESPONDER_V4,
        rv6 = lab::RESPONDER_V6,
    );
    let mut prev = instances[0].responder.snapshot()?;
    serve(&mut instances, &sig, opts, cfg.max_sources, |inst| {
        let Ok(now) = inst[0].responder.snapshot() else { return };
        let d = now.since(&prev);
        println!(
            "echo requests/s v4 {:>6} v6 {:>6} | replies/s v4 {:>6} v6 {:>6} | unreachables/s {:>6} | totals: tx {} pass {} suppressed {}",
            d.received(Family::V4, 8),
            d.received(Family::V6, 128),
            d.sent(Family::V4, 0),
            d.sent(Family::V6, 129),
            d.sent(Family::V4, 3) + d.sent(Family::V6, 1),
            now.action(icmp_common::counters::Action::Tx),
            now.action(icmp_common::counters::Action::Pass),
            now.suppressed(),
        );
        let _ = std::io::stdout().flush();
        prev = now;
    })?;
    drop(instances);
    drop(inside);
    drop(lab);
    println!("icmpxdp: detached, lab removed");
    Ok(())
}

fn instances_named(iface: Option<&str>, netns: Option<&str>) -> Result<Vec<String>> {
    let names = match iface {
        Some(i) => vec![pin::instance_name(i, netns)],
        None => pin::list_instances()?,
    };
    if names.is_empty() {
        bail!("no running icmpxdp instance (nothing pinned under {}); start one with `icmpxdp run --iface IF`", pin::PIN_ROOT);
    }
    for name in &names {
        let dir = pin::instance_dir(name);
        if !dir.exists() {
            bail!("icmpxdp is not running on `{name}` (no {}); running: {:?}", dir.display(), pin::list_instances()?);
        }
    }
    Ok(names)
}

/// `icmpxdp reload`: validate first (nothing is written if invalid), then
/// write every instance's pinned maps.
fn reload(iface: Option<&str>, netns: Option<&str>, config: Option<&std::path::Path>, sets: &[String]) -> Result<()> {
    let settings = FileConfig::load(config, sets)?.settings().context("reload refused, config unchanged")?;
    for name in instances_named(iface, netns)? {
        let mut maps = icmp_user::control::Pinned::open(&pin::instance_dir(&name))?;
        maps.apply(&settings).with_context(|| format!("reloading {name}"))?;
        println!("icmpxdp: {name}: config reloaded");
    }
    Ok(())
}

fn stats(iface: Option<&str>, netns: Option<&str>, as_json: bool) -> Result<()> {
    let names = instances_named(iface, netns)?;
    if as_json && names.len() > 1 {
        bail!("several instances are running ({}): pass --iface", names.join(", "));
    }
    for name in names {
        let snap = Snapshot::from_pins(&pin::instance_dir(&name))?;
        if as_json {
            println!("{}", snap.to_json(&name));
        } else {
            print!("{}", snap.to_table(&name));
        }
    }
    Ok(())
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = (|| -> Result<()> {
        // Entered for the whole process lifetime: attach, addresses and
        // sysctls all refer to this namespace. Before any thread is spawned.
        let _inside = match (&cli.netns, &cli.command) {
            (Some(ns), Command::Run { .. }) => Some(netns::enter(ns)?),
            _ => None,
        };
        match &cli.command {
            Command::Run { ifaces, opts } => run(ifaces, cli.netns.as_deref(), opts),
            Command::Lab { opts } => run_lab(opts),
            Command::Stats { iface, json } => stats(iface.as_deref(), cli.netns.as_deref(), *json),
            Command::Bench { json, quick } => {
                require_privileges()?;
                let report = icmp_user::bench::run(if *quick { icmp_user::bench::Options::QUICK } else { icmp_user::bench::Options::FULL })?;
                if *json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    print!("{}", report.markdown());
                }
                Ok(())
            }
            Command::Reload { iface, config, sets } => reload(iface.as_deref(), cli.netns.as_deref(), config.as_deref(), sets),
            Command::CheckConfig { file } => {
                FileConfig::from_file(file)?.settings()?;
                println!("{}: ok", file.display());
                Ok(())
            }
        }
    })();
    if let Err(e) = result {
        eprintln!("icmpxdp: error: {e:#}");
        std::process::exit(1);
    }
}
