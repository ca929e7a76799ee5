//! Prometheus / OpenMetrics metrics, read from the pinned per-CPU maps at
//! every scrape and summed over CPUs: no second copy is kept in userspace.
//!
//! Labels: `iface` (the instance), `family`, `type`, `reason`, `scope`,
//! `action` — never an address. See the README for the list.

use std::{net::SocketAddr, sync::Arc};

use anyhow::{Context as _, Result};
use axum::response::IntoResponse as _;
use icmp_common::{
    counters::{type_index, type_name},
    ratelimit::Scope,
    reason::{Action, Family, Reason},
};
use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family as Fam, gauge::Gauge},
    registry::Registry,
};

use crate::{dataplane::pins as pin, observe::counters::Snapshot};

type Labels = Vec<(&'static str, String)>;

fn type_label(f: Family, t: u8) -> String {
    type_name(f, t).map_or_else(|| format!("type_{t}"), str::to_owned)
}

/// The OpenMetrics text for the given instances (all pinned ones if `None`).
pub fn render(instances: Option<&[String]>) -> Result<String> {
    let names = match instances {
        Some(n) => n.to_vec(),
        None => pin::list_instances()?,
    };
    let mut snaps = Vec::new();
    for name in names {
        let dir = pin::instance_dir(&name);
        // An instance that went away since the listing is skipped, not an error.
        if let Ok(s) = Snapshot::from_pins(&dir) {
            snaps.push((name, s));
        }
    }
    Ok(encode_snapshots(&snaps))
}

/// Encodes snapshots (one per instance) as OpenMetrics text.
pub fn encode_snapshots(snaps: &[(String, Snapshot)]) -> String {
    let mut reg = Registry::with_prefix("icmpxdp");
    let received = Fam::<Labels, Counter>::default();
    let sent = Fam::<Labels, Counter>::default();
    let frames = Fam::<Labels, Counter>::default();
    let verdicts = Fam::<Labels, Counter>::default();
    let suppressed = Fam::<Labels, Counter>::default();
    let limited = Fam::<Labels, Counter>::default();
    let actions = Fam::<Labels, Counter>::default();
    let instances = Fam::<Labels, Gauge>::default();
    // node_exporter's netstat names (node_netstat_Icmp_InEchos, …), so
    // dashboards built on those can be pointed at what XDP answered.
    let netstat = Fam::<Labels, Gauge>::default();

    for (iface, s) in snaps {
        let l = |pairs: &[(&'static str, String)]| {
            let mut v: Labels = vec![("iface", iface.clone())];
            v.extend_from_slice(pairs);
            v
        };
        instances.get_or_create(&l(&[])).set(1);
        frames.get_or_create(&l(&[])).inc_by(s.frames());
        for f in Family::ALL {
            for t in 0..=255u8 {
                let i = type_index(f, t) as usize;
                for (fam, counts) in [(&received, &s.received), (&sent, &s.sent)] {
                    if counts[i] != 0 {
                        fam.get_or_create(&l(&[("family", f.label().into()), ("type", type_label(f, t))]))
                            .inc_by(counts[i]);
                    }
                }
                for scope in Scope::ALL {
                    let n = s.limited(scope, f, t);
                    if n != 0 {
                        limited
                            .get_or_create(&l(&[
                                ("family", f.label().into()),
                                ("type", type_label(f, t)),
                                ("scope", scope.label().into()),
                            ]))
                            .inc_by(n);
                    }
                }
            }
        }
        for r in Reason::ALL {
            verdicts
                .get_or_create(&l(&[("reason", r.label().into())]))
                .inc_by(s.verdict(r));
            if let Some(rule) = r.label().strip_prefix("suppressed_") {
                suppressed
                    .get_or_create(&l(&[("reason", rule.into())]))
                    .inc_by(s.verdict(r));
            }
        }
        for a in Action::ALL {
            actions
                .get_or_create(&l(&[("action", a.label().into())]))
                .inc_by(s.action(a));
        }
        let v4_in: u64 = (0..=255u8).map(|t| s.received(Family::V4, t)).sum();
        let v4_out: u64 = (0..=255u8).map(|t| s.sent(Family::V4, t)).sum();
        let v6_in: u64 = (0..=255u8).map(|t| s.received(Family::V6, t)).sum();
        let v6_out: u64 = (0..=255u8).map(|t| s.sent(Family::V6, t)).sum();
        for (name, v) in [
            ("Icmp_InMsgs", v4_in),
            ("Icmp_InEchos", s.received(Family::V4, 8)),
            ("Icmp_OutMsgs", v4_out),
            ("Icmp_OutEchoReps", s.sent(Family::V4, 0)),
            ("Icmp_OutDestUnreachs", s.sent(Family::V4, 3)),
            ("Icmp6_InMsgs", v6_in),
            ("Icmp6_InEchos", s.received(Family::V6, 128)),
            ("Icmp6_OutMsgs", v6_out),
            ("Icmp6_OutEchoReplies", s.sent(Family::V6, 129)),
            ("Icmp6_OutDestUnreachs", s.sent(Family::V6, 1)),
        ] {
            netstat.get_or_create(&l(&[("counter", name.into())])).set(v as i64);
        }
    }
    reg.register(
        "received_messages",
        "ICMP messages received, by family and type",
        received,
    );
    reg.register("sent_messages", "ICMP messages sent from XDP, by family and type", sent);
    reg.register("frames", "Frames the XDP program processed", frames);
    reg.register("verdicts", "Frames by the reason of their outcome", verdicts);
    reg.register(
        "suppressed_errors",
        "ICMP errors not sent by a suppression rule (RFC 1122/1812/4443)",
        suppressed,
    );
    reg.register(
        "rate_limited",
        "Replies and errors not sent (or requests refused) by a rate limit",
        limited,
    );
    reg.register("actions", "Frames by XDP action", actions);
    reg.register("instances", "Interfaces icmpxdp is attached to", instances);
    reg.register(
        "netstat",
        "node_exporter-style ICMP totals of what XDP handled (label counter: Icmp_InEchos, Icmp_OutEchoReps, …)",
        netstat,
    );
    let mut out = String::new();
    encode(&mut out, &reg).expect("writing to a String cannot fail");
    out
}

/// Serves `/metrics` on `addr` until the process exits (on its own thread).
pub fn spawn_server(addr: SocketAddr, instances: Option<Vec<String>>) -> Result<std::thread::JoinHandle<()>> {
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("binding the metrics listener on {addr}"))?;
    listener.set_nonblocking(true)?;
    let instances = Arc::new(instances);
    Ok(std::thread::Builder::new().name("metrics".into()).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => return log::error!("metrics: {e}"),
        };
        rt.block_on(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => return log::error!("metrics: {e}"),
            };
            let app = axum::Router::new().route(
                "/metrics",
                axum::routing::get(move || {
                    let instances = Arc::clone(&instances);
                    async move {
                        match render(instances.as_ref().as_deref()) {
                            Ok(body) => (
                                [(
                                    axum::http::header::CONTENT_TYPE,
                                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                                )],
                                body,
                            )
                                .into_response(),
                            Err(e) => (
                                [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                                format!("icmpxdp: reading counters failed: {e:#}\n"),
                            )
                                .into_response(),
                        }
                    }
                }),
            );
            if let Err(e) = axum::serve(listener, app).await {
                log::error!("metrics server: {e}");
            }
        });
    })?)
}
