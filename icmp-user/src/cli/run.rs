//! `icmpxdp run`: attach to every `--iface`, serve (SIGHUP reloads, the
//! address set follows the interface, optional `/metrics`) until SIGINT or
//! SIGTERM, then detach.

use std::{
    io::Write as _,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use icmp_user::observe::metrics;

use super::{Signals, instance::Instance, require_privileges, signals};
use crate::RunOpts;

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
pub(crate) fn serve(
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

pub(crate) fn run(ifaces: &[String], netns: Option<&str>, opts: &RunOpts) -> Result<()> {
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
        metrics::spawn_server(addr, Some(instances.iter().map(|i| i.name.clone()).collect()))?;
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
