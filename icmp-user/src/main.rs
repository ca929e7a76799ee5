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

/// `println!` that ignores a closed stdout: a daemon must not die because
/// whoever read its output went away (Rust ignores SIGPIPE, so `println!`
/// would panic on EPIPE).
macro_rules! say {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `print!` that ignores a closed stdout.
macro_rules! say_raw {
    ($($t:tt)*) => {{
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

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
    /// Attach, pin everything under /sys/fs/bpf/icmpxdp/<iface>/ and exit;
    /// the program keeps answering until `icmpxdp detach`.
    Attach {
        #[arg(long = "iface", required = true)]
        ifaces: Vec<String>,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Detach an `icmpxdp attach` and remove its pins.
    Detach {
        #[arg(long = "iface", required = true)]
        ifaces: Vec<String>,
    },
    /// List attached instances: mode, program, owner, uptime, config.
    Status {
        #[arg(long)]
        json: bool,
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
        /// Refresh every second with per-second rates, until Ctrl-C.
        #[arg(long, conflicts_with = "json")]
        watch: bool,
    },
    /// Serve Prometheus metrics of attached instances until SIGINT/SIGTERM.
    ServeMetrics {
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9469")]
        metrics_addr: std::net::SocketAddr,
        /// Only these interfaces (default: every instance, as they come and go).
        #[arg(long = "iface")]
        ifaces: Vec<String>,
    },
    /// Validate a config file without attaching anything.
    CheckConfig { file: PathBuf },
    /// Measure ns/packet per path (BPF_PROG_TEST_RUN, against XDP_PASS),
    /// then replies/s and CPU per reply over veth, kernel against icmpxdp.
    Bench {
        /// One JSON object instead of Markdown tables.
        #[arg(long)]
        json: bool,
        /// A second or two instead of about a minute (a smoke run).
        #[arg(long)]
        quick: bool,
        /// Only the per-path BPF_PROG_TEST_RUN figures.
        #[arg(long)]
        no_e2e: bool,
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
    /// Replace an existing `icmpxdp attach` on the interface.
    #[arg(long)]
    replace: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9469;
    /// with --netns, inside that namespace).
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
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
    fn start(iface: &str, netns: Option<&str>, opts: &RunOpts, settings: &Settings, pid: Option<u32>) -> Result<Self> {
        let mode = opts.mode;
        let name = pin::instance_name(iface, netns);
        let lock = pin::claim(&name, opts.replace)?;
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
        let program_id = responder.program_id()?;
        pin::Meta {
            iface: iface.to_owned(),
            netns: netns.map(str::to_owned),
            mode: attached.to_string(),
            program_id,
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            pid,
            config: opts.config.as_ref().map(|p| p.display().to_string()),
        }
        .write(&name)?;
        say!(
            "icmpxdp: attached to {iface} in {attached} mode (program id {program_id}), counters pinned at {}",
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
        instances.push(
            Instance::start(iface, netns, opts, &cfg, Some(std::process::id()))
                .with_context(|| format!("starting on {iface}"))?,
        );
    }
    if let Some(addr) = opts.metrics_addr {
        icmp_user::metrics::spawn_server(addr, Some(instances.iter().map(|i| i.name.clone()).collect()))?;
        say!("icmpxdp: metrics at http://{addr}/metrics");
    }
    serve(&mut instances, &sig, opts, cfg.max_sources, |_| {})?;
    for i in instances.drain(..).rev() {
        let name = i.name.clone();
        drop(i);
        say!("icmpxdp: detached from {name}");
    }
    Ok(())
}

const LAB_NAME: &str = "lab";

fn run_lab(opts: &RunOpts) -> Result<()> {
    let cfg = opts.config()?;
    require_privileges()?;
    let sig = signals()?;
    if Lab::exists(LAB_NAME) {
        say!("icmpxdp: removing a lab left over by an earlier run");
        Lab::remove_stale(LAB_NAME);
    }
    let lab = Lab::create(LAB_NAME)?;
    // Stay in the responder namespace while serving: the address refresh
    // reads the interface from there.
    let inside = netns::enter(&lab.responder_ns)?;
    let mut instances = vec![Instance::start(
        &lab.responder_if,
        Some(&lab.responder_ns),
        opts,
        &cfg,
        Some(std::process::id()),
    )?];
    say!(
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
    if let Some(addr) = opts.metrics_addr {
        icmp_user::metrics::spawn_server(addr, Some(vec![instances[0].name.clone()]))?;
        say!("icmpxdp: metrics at http://{addr}/metrics (in the responder namespace)");
    }
    let mut prev = instances[0].responder.snapshot()?;
    serve(&mut instances, &sig, opts, cfg.max_sources, |inst| {
        let Ok(now) = inst[0].responder.snapshot() else { return };
        let d = now.since(&prev);
        say!(
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
    say!("icmpxdp: detached, lab removed");
    Ok(())
}

/// `icmpxdp attach`: every interface or none (a failure detaches those
/// already attached by this call).
fn attach(ifaces: &[String], netns: Option<&str>, opts: &RunOpts) -> Result<()> {
    let cfg = opts.config()?;
    require_privileges()?;
    let mut done: Vec<Instance> = Vec::new();
    for iface in ifaces {
        let mut i = Instance::start(iface, netns, opts, &cfg, None).with_context(|| format!("attaching to {iface}"))?;
        i.responder.pin_attachment(i._pins.path())?;
        done.push(i);
    }
    for i in done {
        say!(
            "icmpxdp: {} stays attached after this process exits; `icmpxdp detach --iface {}` removes it",
            i.name,
            i.iface
        );
        let Instance { _pins, .. } = i;
        _pins.keep();
    }
    Ok(())
}

fn detach(ifaces: &[String], netns: Option<&str>) -> Result<()> {
    require_privileges()?;
    for iface in ifaces {
        let name = pin::instance_name(iface, netns);
        let lock = InstanceLock::acquire(&name).map_err(|e| e.context("`icmpxdp detach` removes what `icmpxdp attach` left; stop a running `icmpxdp run` with SIGTERM instead"))?;
        if !pin::instance_dir(&name).join(pin::LINK_PIN).exists() {
            if pin::instance_dir(&name).exists() {
                pin::remove_stale(&name, &lock)?;
                say!("icmpxdp: removed stale pins of {name} (left by a killed run)");
                continue;
            }
            bail!("nothing attached to `{name}` by `icmpxdp attach` (see `icmpxdp status`)");
        }
        pin::detach_pinned(&name)?;
        say!("icmpxdp: detached from {name}");
    }
    Ok(())
}

fn status(as_json: bool) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut rows = Vec::new();
    for name in pin::list_instances()? {
        let meta = pin::Meta::read(&name);
        let cfg = icmp_user::control::Pinned::open(&pin::instance_dir(&name))
            .and_then(|p| p.config())
            .ok();
        rows.push((name, meta, cfg));
    }
    if as_json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(name, m, c)| {
                serde_json::json!({
                    "instance": name,
                    "live": pin::is_live(name),
                    "meta": m,
                    "uptime_s": m.as_ref().map(|m| now.saturating_sub(m.started)),
                    "config": c.as_ref().map(config_summary),
                })
            })
            .collect();
        say!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    if rows.is_empty() {
        say!("no icmpxdp instance is attached");
        return Ok(());
    }
    say!(
        "{:<36} {:<7} {:>7} {:<14} {:>9}  config",
        "instance",
        "mode",
        "program",
        "owner",
        "uptime"
    );
    for (name, m, c) in rows {
        let (mode, prog, owner, up) = match &m {
            _ if !pin::is_live(&name) => ("-".into(), "-".into(), "stale".into(), "-".into()),
            Some(m) => (
                m.mode.clone(),
                m.program_id.to_string(),
                m.pid.map_or_else(|| "attach".to_owned(), |p| format!("run pid {p}")),
                format!("{}s", now.saturating_sub(m.started)),
            ),
            None => ("?".into(), "?".into(), "?".into(), "?".into()),
        };
        let summary = if pin::is_live(&name) {
            c.as_ref().map_or_else(|| "unreadable".to_owned(), config_summary)
        } else {
            "pins left by a killed run: the next start on it, or `icmpxdp detach`, removes them".to_owned()
        };
        say!("{name:<36} {mode:<7} {prog:>7} {owner:<14} {up:>9}  {summary}");
    }
    Ok(())
}

fn config_summary(c: &icmp_common::Config) -> String {
    use icmp_common::config::{FLAG_ECHO_V4, FLAG_ECHO_V6, FLAG_UNREACH_V4, FLAG_UNREACH_V6};
    let on = |v4: u32, v6: u32| match (c.has(v4), c.has(v6)) {
        (true, true) => "v4+v6",
        (true, false) => "v4",
        (false, true) => "v6",
        (false, false) => "off",
    };
    let limit = |l: &icmp_common::ratelimit::Limit| {
        if l.is_unlimited() {
            "off".to_owned()
        } else {
            format!("{}/s burst {}", 1_000_000_000 / l.interval_ns.max(1), l.burst())
        }
    };
    format!(
        "echo {}, unreachable {}, ttl {}, per-source {}, global {}",
        on(FLAG_ECHO_V4, FLAG_ECHO_V6),
        on(FLAG_UNREACH_V4, FLAG_UNREACH_V6),
        c.ttl,
        limit(&c.per_source),
        limit(&c.global)
    )
}

fn instances_named(iface: Option<&str>, netns: Option<&str>) -> Result<Vec<String>> {
    let names = match iface {
        Some(i) => vec![pin::instance_name(i, netns)],
        // Every live instance; stale pins (a killed run) are not counters anyone serves.
        None => pin::list_instances()?.into_iter().filter(|n| pin::is_live(n)).collect(),
    };
    if names.is_empty() {
        bail!(
            "no running icmpxdp instance (nothing pinned under {}); start one with `icmpxdp run --iface IF`",
            pin::PIN_ROOT
        );
    }
    for name in &names {
        let dir = pin::instance_dir(name);
        if !dir.exists() {
            bail!(
                "icmpxdp is not running on `{name}` (no {}); running: {:?}",
                dir.display(),
                pin::list_instances()?
            );
        }
    }
    Ok(names)
}

/// `icmpxdp reload`: validate first (nothing is written if invalid), then
/// write every instance's pinned maps.
fn reload(iface: Option<&str>, netns: Option<&str>, config: Option<&std::path::Path>, sets: &[String]) -> Result<()> {
    let settings = FileConfig::load(config, sets)?
        .settings()
        .context("reload refused, config unchanged")?;
    for name in instances_named(iface, netns)? {
        let mut maps = icmp_user::control::Pinned::open(&pin::instance_dir(&name))?;
        maps.apply(&settings).with_context(|| format!("reloading {name}"))?;
        say!("icmpxdp: {name}: config reloaded");
    }
    Ok(())
}

/// `stats --watch`: per-second rates, refreshed in place on a terminal.
fn watch(iface: Option<&str>, netns: Option<&str>) -> Result<()> {
    use std::io::IsTerminal as _;
    let sig = signals()?;
    let names = instances_named(iface, netns)?;
    let read = |n: &str| Snapshot::from_pins(&pin::instance_dir(n));
    let mut prev: Vec<Snapshot> = names.iter().map(|n| read(n)).collect::<Result<_>>()?;
    let tty = std::io::stdout().is_terminal();
    while !sig.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_secs(1));
        let mut screen = String::new();
        for (i, name) in names.iter().enumerate() {
            let now = read(name)?;
            screen.push_str(&now.since(&prev[i]).to_table(&format!("{name} (per second)")));
            prev[i] = now;
        }
        if tty {
            say_raw!("\x1b[2J\x1b[H");
        }
        say_raw!("{screen}");
        let _ = std::io::stdout().flush();
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
            say!("{}", snap.to_json(&name));
        } else {
            say_raw!("{}", snap.to_table(&name));
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
            (Some(ns), Command::Run { .. } | Command::Attach { .. } | Command::ServeMetrics { .. }) => {
                Some(netns::enter(ns)?)
            }
            _ => None,
        };
        match &cli.command {
            Command::Run { ifaces, opts } => run(ifaces, cli.netns.as_deref(), opts),
            Command::Attach { ifaces, opts } => attach(ifaces, cli.netns.as_deref(), opts),
            Command::Detach { ifaces } => detach(ifaces, cli.netns.as_deref()),
            Command::Status { json } => status(*json),
            Command::Lab { opts } => run_lab(opts),
            Command::Stats {
                iface,
                json,
                watch: false,
            } => stats(iface.as_deref(), cli.netns.as_deref(), *json),
            Command::Stats { iface, watch: true, .. } => watch(iface.as_deref(), cli.netns.as_deref()),
            Command::ServeMetrics { metrics_addr, ifaces } => {
                let names = (!ifaces.is_empty()).then(|| {
                    ifaces
                        .iter()
                        .map(|i| pin::instance_name(i, cli.netns.as_deref()))
                        .collect()
                });
                let sig = signals()?;
                icmp_user::metrics::spawn_server(*metrics_addr, names)?;
                say!("icmpxdp: metrics at http://{metrics_addr}/metrics");
                while !sig.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(())
            }
            Command::Bench { json, quick, no_e2e } => {
                require_privileges()?;
                let report = icmp_user::bench::run(if *quick {
                    icmp_user::bench::Options::QUICK
                } else {
                    icmp_user::bench::Options::FULL
                })?;
                let e2e = if *no_e2e {
                    None
                } else {
                    let o = if *quick {
                        icmp_user::bench_e2e::Options::QUICK
                    } else {
                        icmp_user::bench_e2e::Options::FULL
                    };
                    Some(icmp_user::bench_e2e::run(o)?)
                };
                if *json {
                    say!("{}", serde_json::json!({"paths": report, "end_to_end": e2e}));
                } else {
                    say_raw!("{}", report.markdown());
                    if let Some(e) = e2e {
                        say_raw!(
                            "\n#### End to end over veth (generator and responder on different CPUs)\n\n{}",
                            e.markdown()
                        );
                    }
                }
                Ok(())
            }
            Command::Reload { iface, config, sets } => {
                reload(iface.as_deref(), cli.netns.as_deref(), config.as_deref(), sets)
            }
            Command::CheckConfig { file } => {
                FileConfig::from_file(file)?.settings()?;
                say!("{}: ok", file.display());
                Ok(())
            }
        }
    })();
    if let Err(e) = result {
        eprintln!("icmpxdp: error: {e:#}");
        std::process::exit(1);
    }
}
