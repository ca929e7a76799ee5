//! `icmpxdp`: the command line (clap types) and the dispatch to `cli/`,
//! one file per subcommand.

mod cli;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use icmp_user::{
    config::{FileConfig, Settings},
    dataplane::{load::Mode, netns},
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
    #[command(after_help = "Examples:\n  icmpxdp run --iface eth0\n  \
        icmpxdp run --iface eth0 --config /etc/icmpxdp/icmpxdp.toml --metrics-addr 127.0.0.1:9469\n  \
        icmpxdp --netns blue run --iface veth1 --set rate_limit.burst=10")]
    Run {
        /// Interface to attach to (repeatable).
        #[arg(long = "iface", required = true)]
        ifaces: Vec<String>,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Attach, pin everything under /sys/fs/bpf/icmpxdp/<iface>/ and exit;
    /// the program keeps answering until `icmpxdp detach`.
    #[command(
        after_help = "Examples:\n  icmpxdp attach --iface eth0 --config /etc/icmpxdp/icmpxdp.toml\n  \
        icmpxdp --netns blue attach --iface veth1 --replace"
    )]
    Attach {
        /// Interface to attach to (repeatable).
        #[arg(long = "iface", required = true)]
        ifaces: Vec<String>,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Detach an `icmpxdp attach` and remove its pins (or the stale pins a
    /// killed `run` left).
    #[command(after_help = "Examples:\n  icmpxdp detach --iface eth0\n  icmpxdp --netns blue detach --iface veth1")]
    Detach {
        /// Interface to detach from (repeatable).
        #[arg(long = "iface", required = true)]
        ifaces: Vec<String>,
    },
    /// List instances: attached or not, mode, program, owner, uptime, config.
    #[command(after_help = "Examples:\n  icmpxdp status\n  icmpxdp status --json | jq '.[] | {instance, attached}'")]
    Status {
        /// One JSON array of instances instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Start a two-namespace lab, attach in it, show live counters until Ctrl-C.
    #[command(after_help = "Examples:\n  icmpxdp lab\n  icmpxdp lab --set rate_limit.ratelimit_ms=0")]
    Lab {
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Apply config changes to running instances without detaching: the
    /// instance's file (or --config) and every --set so far, plus these.
    #[command(after_help = "Examples:\n  icmpxdp reload --set ip.ttl=128\n  \
        icmpxdp reload --iface eth0 --config /etc/icmpxdp/icmpxdp.toml\n  \
        icmpxdp --netns blue reload --iface veth1 --set 'unreachable.closed_ports=[\"33434-33534\"]'")]
    Reload {
        /// Only this interface (default: every running instance).
        #[arg(long)]
        iface: Option<String>,
        /// TOML config file to use from now on (default: the one the
        /// instance was started with, re-read).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Override a config key: `--set rate_limit.burst=10` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Print the counters of running instances.
    #[command(after_help = "Examples:\n  icmpxdp stats\n  icmpxdp stats --iface eth0 --json\n  icmpxdp stats --watch")]
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
    /// Write every decision of a running instance as pcapng (the frame as
    /// received and, for replies and errors, as sent, each with its verdict
    /// as a comment), until Ctrl-C, SIGTERM or -c.
    #[command(after_help = "Examples:\n  icmpxdp capture -w icmp.pcapng\n  \
        icmpxdp capture --iface eth0 --verdict rate_limited_per_source -c 100 -w - | tcpdump -nr -\n  \
        icmpxdp capture --action tx --family 6 --sample 10 -w - | wireshark -k -i -")]
    Capture {
        /// The instance's interface (needed when several run).
        #[arg(long)]
        iface: Option<String>,
        /// Keep only this verdict (repeatable), e.g. `unreachable_sent`.
        #[arg(long = "verdict", value_name = "VERDICT")]
        verdicts: Vec<String>,
        /// Keep only this action (repeatable): tx, redirect, pass or drop.
        #[arg(long = "action", value_name = "ACTION")]
        actions: Vec<String>,
        /// Keep only IPv4 (4) or IPv6 (6).
        #[arg(long)]
        family: Option<u8>,
        /// Keep 1 matching decision in N (in the kernel).
        #[arg(long, default_value_t = 1, value_name = "N")]
        sample: u32,
        /// Stop after this many decisions.
        #[arg(short = 'c', long = "count", value_name = "COUNT")]
        count: Option<u64>,
        /// Bytes kept of each frame (at most 640).
        #[arg(long, default_value_t = 640, value_name = "BYTES")]
        snaplen: u32,
        /// Output file, or `-` for stdout.
        #[arg(short = 'w', long = "write", value_name = "FILE")]
        write: PathBuf,
    },
    /// Show the sources the rate limiter refuses most (refused/s, sent/s),
    /// refreshed every interval, until Ctrl-C.
    #[command(after_help = "Examples:\n  icmpxdp top\n  icmpxdp top --by prefix --interval 5\n  \
        icmpxdp top --once -c 20 --json")]
    Top {
        /// The instance's interface (needed when several run).
        #[arg(long)]
        iface: Option<String>,
        /// Rank single sources, or prefixes as the limiter counts them
        /// (rate_limit.ipv4_prefix / ipv6_prefix).
        #[arg(long, value_parser = ["source", "prefix"], default_value = "source")]
        by: String,
        /// Seconds per refresh.
        #[arg(long, default_value_t = 1.0, value_name = "S")]
        interval: f64,
        /// Keep 1 decision in N in the kernel (rates are scaled back up).
        #[arg(long, default_value_t = 1, value_name = "N")]
        sample: u32,
        /// One interval, one table (or JSON line), then exit.
        #[arg(long)]
        once: bool,
        /// Rows shown.
        #[arg(short = 'c', long = "count", default_value_t = 10, value_name = "N")]
        count: usize,
        /// One JSON object per interval instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Serve Prometheus metrics (/metrics) and a health check (/healthz) of
    /// attached instances until SIGINT/SIGTERM.
    #[command(
        after_help = "Examples:\n  icmpxdp serve-metrics\n  icmpxdp serve-metrics --metrics-addr 192.0.2.10:9469 --iface eth0"
    )]
    ServeMetrics {
        /// Address to listen on (with --netns, inside that namespace).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9469")]
        metrics_addr: std::net::SocketAddr,
        /// Only these interfaces (default: every instance, as they come and go).
        #[arg(long = "iface")]
        ifaces: Vec<String>,
    },
    /// Validate a config file without attaching anything.
    #[command(after_help = "Example:\n  icmpxdp check-config /etc/icmpxdp/icmpxdp.toml")]
    CheckConfig {
        /// The TOML config file (see icmpxdp.example.toml).
        file: PathBuf,
    },
    /// Measure ns/packet per path (BPF_PROG_TEST_RUN, against XDP_PASS),
    /// then replies/s and CPU per reply over veth, kernel against icmpxdp.
    #[command(after_help = "Examples:\n  icmpxdp bench\n  icmpxdp bench --quick --no-e2e --json")]
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
        /// Instead of measuring, run one path in a loop for `perf record`
        /// (echo4, echo6, pu4, pu4-default, pu4-sources, pu4-refused,
        /// bare-echo4, bare-unreach4, tcp, udp-open4: a fresh frame per
        /// call; echo4-warm, echo6-warm, bare-echo4-warm: repeat mode) for
        /// --seconds.
        #[arg(long, value_name = "PATH")]
        profile: Option<String>,
        /// How long --profile runs.
        #[arg(long, default_value_t = 5, requires = "profile")]
        seconds: u64,
        /// With --profile: write the program's JIT line map (machine code
        /// address → source line) to FILE first, for `cargo xtask profile`.
        #[arg(long, value_name = "FILE", requires = "profile")]
        jit_lines: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RunOpts {
    /// How to attach: auto = driver (native) mode, falling back to skb
    /// (generic) mode where the driver has none.
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
    /// Exit non-zero when an interface disappears (so a supervisor restarts
    /// icmpxdp), instead of waiting for it to come back and attaching again.
    #[arg(long)]
    exit_on_interface_loss: bool,
}

impl RunOpts {
    /// The validated settings: what the loader writes into the program.
    fn config(&self) -> Result<Settings> {
        FileConfig::load(self.config.as_deref(), &self.sets)?.settings()
    }
}

/// Logs to stderr; under systemd (`JOURNAL_STREAM` set) each line starts
/// with its syslog priority (`<3>` error … `<7>` debug), which journald reads,
/// so `journalctl -p warning` shows warnings and errors.
fn init_logging() {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        b.format(|buf, record| {
            use std::io::Write as _;
            let prio = match record.level() {
                log::Level::Error => 3,
                log::Level::Warn => 4,
                log::Level::Info => 6,
                log::Level::Debug | log::Level::Trace => 7,
            };
            writeln!(buf, "<{prio}>{}", record.args())
        });
    }
    b.init();
}

fn main() {
    init_logging();
    let cli = Cli::parse();
    let result = (|| -> Result<()> {
        let netns = cli.netns.as_deref();
        // Entered for the whole process lifetime: attach, addresses and
        // sysctls all refer to this namespace. Before any thread is spawned.
        let _inside = match (netns, &cli.command) {
            (
                Some(ns),
                Command::Run { .. } | Command::Attach { .. } | Command::ServeMetrics { .. } | Command::Reload { .. },
            ) => Some(netns::enter(ns)?),
            _ => None,
        };
        if let Some(ns) = netns {
            let ignored = match &cli.command {
                Command::Status { .. } => Some("status (it lists every namespace's instances)"),
                Command::Lab { .. } => Some("lab (it creates its own namespaces)"),
                Command::CheckConfig { .. } => Some("check-config (it attaches nothing)"),
                Command::Bench { .. } => Some("bench (it creates its own namespaces)"),
                _ => None,
            };
            if let Some(what) = ignored {
                anyhow::bail!("--netns {ns} does not apply to {what}; drop it");
            }
        }
        match &cli.command {
            Command::Run { ifaces, opts } => cli::run::run(ifaces, netns, opts),
            Command::Attach { ifaces, opts } => cli::lifecycle::attach(ifaces, netns, opts),
            Command::Detach { ifaces } => cli::lifecycle::detach(ifaces, netns),
            Command::Status { json } => cli::lifecycle::status(*json),
            Command::Lab { opts } => cli::lab::run_lab(opts),
            Command::Stats {
                iface,
                json,
                watch: false,
            } => cli::stats::stats(iface.as_deref(), netns, *json),
            Command::Stats { iface, watch: true, .. } => cli::stats::watch(iface.as_deref(), netns),
            Command::Capture {
                iface,
                verdicts,
                actions,
                family,
                sample,
                count,
                snaplen,
                write,
            } => cli::capture::capture(
                netns,
                &cli::capture::CaptureOpts {
                    iface: iface.as_deref(),
                    verdicts,
                    actions,
                    family: *family,
                    sample: *sample,
                    count: *count,
                    snaplen: *snaplen,
                    write,
                },
            ),
            Command::Top {
                iface,
                by,
                interval,
                sample,
                once,
                count,
                json,
            } => cli::top::top(
                netns,
                &cli::top::TopOpts {
                    iface: iface.as_deref(),
                    by_prefix: by == "prefix",
                    interval: *interval,
                    sample: *sample,
                    once: *once,
                    rows: *count,
                    json: *json,
                },
            ),
            Command::ServeMetrics { metrics_addr, ifaces } => cli::stats::serve_metrics(*metrics_addr, ifaces, netns),
            Command::Bench {
                profile: Some(path),
                seconds,
                jit_lines,
                ..
            } => cli::bench::profile(path, *seconds, jit_lines.as_deref()),
            Command::Bench {
                json, quick, no_e2e, ..
            } => cli::bench::bench(*json, *quick, *no_e2e),
            Command::Reload { iface, config, sets } => {
                cli::reload::reload(iface.as_deref(), netns, config.as_deref(), sets)
            }
            Command::CheckConfig { file } => cli::check_config::check_config(file),
        }
    })();
    if let Err(e) = result {
        eprintln!("icmpxdp: error: {e:#}");
        std::process::exit(1);
    }
}
