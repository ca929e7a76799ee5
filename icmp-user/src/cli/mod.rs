//! The subcommands of `icmpxdp`, one file each: what a person asked for,
//! in order, with the messages they see.
//!
//! Commands call the library's rooms (`config`, `dataplane`, `observe`,
//! `lab`, `bench`); nothing here opens or writes a BPF map itself.

use std::sync::{Arc, atomic::AtomicBool};

use anyhow::{Context as _, Result, bail};
use icmp_user::dataplane::pins as pin;

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

/// Fault injection for the tests (`tests/faults.rs`): with
/// `ICMPXDP_TEST_KILL_AT=<step>` in its environment the process SIGKILLs
/// itself on reaching that step of starting an instance (`claimed`,
/// `maps_pinned`, `attached`, `meta_written`, `link_pinned`), so the tests
/// can show that whatever a `kill -9` leaves, the next start recovers.
pub(crate) fn fault_point(step: &str) {
    if std::env::var_os("ICMPXDP_TEST_KILL_AT").is_some_and(|v| v == step) {
        // SAFETY: raise(2) with a valid signal number.
        unsafe { libc::raise(libc::SIGKILL) };
    }
}

pub(crate) mod bench;
pub(crate) mod capture;
pub(crate) mod check_config;
pub(crate) mod instance;
pub(crate) mod lab;
pub(crate) mod lifecycle;
pub(crate) mod notify;
pub(crate) mod reload;
pub(crate) mod run;
pub(crate) mod stats;
pub(crate) mod top;

pub(crate) fn require_privileges() -> Result<()> {
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
pub(crate) struct Signals {
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) reload: Arc<AtomicBool>,
}

pub(crate) fn signals() -> Result<Signals> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))?;
    Ok(Signals { stop, reload })
}

pub(crate) fn instances_named(iface: Option<&str>, netns: Option<&str>) -> Result<Vec<String>> {
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

/// The one instance `iface` names (or the only one running) and its
/// metadata: `capture` and `top` watch a single program.
pub(crate) fn one_instance(iface: Option<&str>, netns: Option<&str>) -> Result<(String, pin::Meta)> {
    let names = instances_named(iface, netns)?;
    let [name] = names.as_slice() else {
        bail!(
            "{} instances run ({}); choose one with --iface",
            names.len(),
            names.join(", ")
        );
    };
    let meta = pin::Meta::read(name).with_context(|| format!("no metadata for instance {name}: is it running?"))?;
    Ok((name.clone(), meta))
}
