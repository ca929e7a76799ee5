//! `icmpxdp lab` (what `cargo xtask run` starts without `--iface`): two
//! namespaces joined by a veth, the responder attached on one side, a live
//! line of counters until Ctrl-C, then everything removed.

use std::io::Write as _;

use anyhow::Result;
use icmp_common::{Action, Family, Reason};
use icmp_user::{
    dataplane::netns,
    lab::{self, Lab},
    observe::{counters::Snapshot, metrics},
};

use super::{instance::Instance, require_privileges, run::serve, signals};
use crate::RunOpts;

const LAB_NAME: &str = "lab";

pub(crate) fn run_lab(opts: &RunOpts) -> Result<()> {
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
         {bin} stats\n\
         Ctrl-C stops icmpxdp and removes the lab.\n",
        bin = std::env::current_exe().map_or_else(|_| "icmpxdp".to_owned(), |p| p.display().to_string()),
        c = lab.client_ns,
        r = lab.responder_ns,
        cv4 = lab::CLIENT_V4,
        cv6 = lab::CLIENT_V6,
        rv4 = lab::RESPONDER_V4,
        rv6 = lab::RESPONDER_V6,
    );
    if let Some(addr) = opts.metrics_addr {
        metrics::spawn_server(addr, Some(vec![instances[0].name.clone()]))?;
        say!("icmpxdp: metrics at http://{addr}/metrics (in the responder namespace)");
    }
    let mut prev = Snapshot::of(&instances[0].responder)?;
    serve(&mut instances, &sig, opts, |inst| {
        let Ok(now) = Snapshot::of(&inst[0].responder) else {
            return;
        };
        let d = now.since(&prev);
        let limited = |s: &Snapshot| {
            s.verdict(Reason::RateLimitedPerSource)
                + s.verdict(Reason::RateLimitedGlobal)
                + s.verdict(Reason::RateLimitedInbound)
        };
        say!(
            "echo requests/s v4 {:>5} v6 {:>5} | replies/s v4 {:>5} v6 {:>5} | unreachables/s {:>5} | rate-limited/s {:>5} | \
             totals: tx {} pass {} drop {} suppressed {} rate-limited {}",
            d.received(Family::V4, 8),
            d.received(Family::V6, 128),
            d.sent(Family::V4, 0),
            d.sent(Family::V6, 129),
            d.sent(Family::V4, 3) + d.sent(Family::V6, 1),
            limited(&d),
            now.action(Action::Tx),
            now.action(Action::Pass),
            now.action(Action::Drop),
            now.suppressed(),
            limited(&now),
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
