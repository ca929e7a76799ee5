//! `icmpxdp run`: attach to every `--iface`, serve (SIGHUP reloads, the
//! address set follows the interface, optional `/metrics`) until SIGINT or
//! SIGTERM, then detach.

use std::{
    io::Write as _,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use icmp_user::observe::metrics;

use super::{
    Signals,
    instance::{Instance, InterfaceEvent},
    notify,
    reload::reload_instance,
    require_privileges, signals,
};
use crate::RunOpts;

/// SIGHUP: each instance reloads its recorded config (the file, re-read, and
/// every `--set` so far, including those of `icmpxdp reload`); an invalid
/// one changes nothing. systemd hears RELOADING=1 / READY=1 around it.
fn reload_all(instances: &mut [Instance]) {
    notify::reloading();
    for i in instances.iter_mut() {
        let name = i.name.clone();
        match reload_instance(&name, None, &[], |s| i.responder.apply(s)) {
            Ok(r) => log::info!("{}", r.message(&name)),
            Err(e) => log::error!("{e:#}"),
        }
    }
    notify::ready();
}

/// Runs until a signal; `tick` is called about once a second.
pub(crate) fn serve(
    instances: &mut [Instance],
    sig: &Signals,
    opts: &RunOpts,
    mut tick: impl FnMut(&mut [Instance]),
) -> Result<()> {
    let mut last = Instant::now();
    while !sig.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if sig.reload.swap(false, Ordering::Relaxed) {
            reload_all(instances);
        }
        for i in instances.iter_mut() {
            i.responder.flush_logs();
        }
        if last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            for i in instances.iter_mut() {
                match i.follow_interface(opts.mode) {
                    Ok(InterfaceEvent::Lost) if opts.exit_on_interface_loss => {
                        bail!(
                            "{}: the interface disappeared; exiting (--exit-on-interface-loss), nothing is attached",
                            i.name
                        );
                    }
                    Ok(InterfaceEvent::Lost) => log::warn!(
                        "{}: the interface disappeared: nothing is answered until an interface named {} \
                         comes back, then icmpxdp attaches to it again (status and /metrics say attached 0)",
                        i.name,
                        i.iface
                    ),
                    Ok(InterfaceEvent::Reattached(mode)) => {
                        log::warn!("{}: the interface is back: attached again in {mode} mode", i.name);
                    }
                    Ok(InterfaceEvent::Unchanged) => {}
                    Err(e) => log::error!("{}: attaching to the re-created interface failed: {e:#}", i.name),
                }
                if i.is_attached()
                    && let Err(e) = i.refresh_addrs().and_then(|()| i.refresh_protocols())
                {
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
    notify::ready();
    serve(&mut instances, &sig, opts, |_| {})?;
    notify::stopping();
    for i in instances.drain(..).rev() {
        let name = i.name.clone();
        drop(i);
        say!("icmpxdp: detached from {name}");
    }
    Ok(())
}
