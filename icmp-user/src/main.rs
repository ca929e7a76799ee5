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
            (Some(ns), Command::Run { .. } | Command::Attach { .. } | Command::ServeMetrics { .. }) => {
                Some(netns::enter(ns)?)
            }
            _ => None,
        };
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
            Command::ServeMetrics { metrics_addr, ifaces } => cli::stats::serve_metrics(*metrics_addr, ifaces, netns),
            Command::Bench { json, quick, no_e2e } => cli::bench::bench(*json, *quick, *no_e2e),
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
