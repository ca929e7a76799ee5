//! `icmpxdp attach`, `detach` and `status`: an attachment that outlives the
//! process (its program and link pinned), its removal, and the list of
//! instances with their owner and config.

use std::io::Write as _;

use anyhow::{Context as _, Result, bail};
use icmp_user::dataplane::{
    config_maps::Pinned,
    links::instance_attached,
    pins::{self as pin, InstanceLock},
};

use super::{instance::Instance, require_privileges};
use crate::RunOpts;

/// `icmpxdp attach`: every interface or none (a failure detaches those
/// already attached by this call).
pub(crate) fn attach(ifaces: &[String], netns: Option<&str>, opts: &RunOpts) -> Result<()> {
    let cfg = opts.config()?;
    require_privileges()?;
    let mut done: Vec<Instance> = Vec::new();
    for iface in ifaces {
        let mut i = Instance::start(iface, netns, opts, &cfg, None).with_context(|| format!("attaching to {iface}"))?;
        i.responder.pin_attachment(i.pins.path())?;
        super::fault_point("link_pinned");
        done.push(i);
    }
    for i in done {
        let ns = netns.map_or_else(String::new, |n| format!("--netns {n} "));
        say!(
            "icmpxdp: {} stays attached after this process exits; `icmpxdp {ns}detach --iface {}` removes it",
            i.name,
            i.iface
        );
        let Instance { pins, .. } = i;
        pins.keep();
    }
    Ok(())
}

pub(crate) fn detach(ifaces: &[String], netns: Option<&str>) -> Result<()> {
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

pub(crate) fn status(as_json: bool) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut rows = Vec::new();
    for name in pin::list_instances()? {
        let meta = pin::Meta::read(&name);
        let cfg = Pinned::open(&pin::instance_dir(&name)).and_then(|p| p.config()).ok();
        let attached = instance_attached(&name)?;
        rows.push((name, meta, cfg, attached));
    }
    if as_json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(name, m, c, attached)| {
                serde_json::json!({
                    "instance": name,
                    "live": pin::is_live(name),
                    "attached": attached,
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
        "{:<36} {:<8} {:<7} {:>7} {:<14} {:>9}  config",
        "instance",
        "attached",
        "mode",
        "program",
        "owner",
        "uptime"
    );
    for (name, m, c, attached) in rows {
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
        let summary = if !pin::is_live(&name) {
            "pins left by a killed run: the next start on it, or `icmpxdp detach`, removes them".to_owned()
        } else if !attached {
            "NOT ATTACHED: the interface is gone (a `run` attaches again when it returns)".to_owned()
        } else {
            c.as_ref().map_or_else(|| "unreadable".to_owned(), config_summary)
        };
        let yes_no = if attached { "yes" } else { "no" };
        say!("{name:<36} {yes_no:<8} {mode:<7} {prog:>7} {owner:<14} {up:>9}  {summary}");
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
    let mode = if c.has(icmp_common::config::FLAG_SHADOW) {
        "SHADOW (decides and counts, passes every frame), "
    } else {
        ""
    };
    format!(
        "{mode}echo {}, unreachable {}, ttl {}, per-source {}, global {}",
        on(FLAG_ECHO_V4, FLAG_ECHO_V6),
        on(FLAG_UNREACH_V4, FLAG_UNREACH_V6),
        c.ttl,
        limit(&c.per_source),
        limit(&c.global)
    )
}
