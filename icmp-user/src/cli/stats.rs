//! `icmpxdp stats` (a table, `--json`, or `--watch` for per-second rates)
//! and `icmpxdp serve-metrics`.

use std::{io::Write as _, net::SocketAddr, sync::atomic::Ordering, time::Duration};

use anyhow::{Result, bail};
use icmp_common::config::FLAG_SHADOW;
use icmp_user::{
    dataplane::{config_maps::Pinned, pins as pin},
    observe::{counters::Snapshot, metrics},
};

use super::{instances_named, signals};

pub(crate) fn stats(iface: Option<&str>, netns: Option<&str>, as_json: bool) -> Result<()> {
    let names = instances_named(iface, netns)?;
    if as_json && names.len() > 1 {
        bail!("several instances are running ({}): pass --iface", names.join(", "));
    }
    for name in names {
        let dir = pin::instance_dir(&name);
        let snap = Snapshot::from_pins(&dir)?;
        let shadow = Pinned::open(&dir)?.config()?.has(FLAG_SHADOW);
        if as_json {
            let mut v = snap.to_json(&name);
            v["mode"] = (if shadow { "shadow" } else { "active" }).into();
            say!("{v}");
        } else {
            if shadow {
                say!(
                    "{name}: SHADOW MODE: every frame is passed to the kernel; the counts below are what icmpxdp would have done"
                );
            }
            say_raw!("{}", snap.to_table(&name));
        }
    }
    Ok(())
}

/// `stats --watch`: per-second rates, refreshed in place on a terminal.
pub(crate) fn watch(iface: Option<&str>, netns: Option<&str>) -> Result<()> {
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

/// Serves `/metrics` for the named instances (every instance, as they come
/// and go, when `ifaces` is empty) until SIGINT/SIGTERM.
pub(crate) fn serve_metrics(addr: SocketAddr, ifaces: &[String], netns: Option<&str>) -> Result<()> {
    let names = (!ifaces.is_empty()).then(|| ifaces.iter().map(|i| pin::instance_name(i, netns)).collect());
    let sig = signals()?;
    metrics::spawn_server(addr, names)?;
    say!("icmpxdp: metrics at http://{addr}/metrics");
    while !sig.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
