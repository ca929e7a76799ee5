//! Prometheus metrics, read from the pinned per-CPU maps at every scrape and
//! summed over CPUs: no second copy is kept in userspace. Served as
//! OpenMetrics or Prometheus text, whichever the scraper asks for
//! ([`super::exposition`]).
//!
//! Labels: `iface` (the instance), `family`, `type`, `reason`, `scope`,
//! `action`, `result`, `version` — never an address. Every series of a known
//! ICMP type exists from zero, so a dashboard panel never lacks one; unknown
//! types share `type="other"`. See the README for the list.

use std::{net::SocketAddr, sync::Arc};

use anyhow::{Context as _, Result};
use axum::{
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse as _,
};
use icmp_common::{
    counters::{type_index, type_name},
    ratelimit::Scope,
    reason::{Action, Family, Reason},
};

use super::exposition::{Family as MetricFamily, Kind, openmetrics, prometheus_text};
use crate::{
    dataplane::{links, pins as pin},
    observe::counters::Snapshot,
};

type Labels = Vec<(&'static str, String)>;

/// The type label of each slot: the known types by name, every other type
/// folded into `other` (so a fuzzer's random types cannot make 500 series).
fn types(f: Family) -> impl Iterator<Item = (String, Vec<u8>)> {
    let mut known: Vec<(String, Vec<u8>)> = (0..=255u8)
        .filter_map(|t| type_name(f, t).map(|n| (n.to_owned(), vec![t])))
        .collect();
    known.push((
        "other".to_owned(),
        (0..=255u8).filter(|t| type_name(f, *t).is_none()).collect(),
    ));
    known.into_iter()
}

/// One instance as a scrape sees it.
pub struct InstanceView {
    pub name: String,
    /// Its program holds an interface now (checked in the kernel's links).
    pub attached: bool,
    /// Counters, for a live instance (a stale one's are frozen: left out).
    pub counters: Option<Snapshot>,
    /// Config reloads that took effect and that were refused.
    pub reloads: (u64, u64),
    /// In shadow mode (decides and counts, passes every frame).
    pub shadow: bool,
}

/// Reads the given instances (every pinned one if `None`). Errors — no
/// permission to the pins or to the kernel's link list — are errors, so a
/// scrape fails visibly instead of answering with no series.
pub fn collect(instances: Option<&[String]>) -> Result<Vec<InstanceView>> {
    let names = match instances {
        Some(n) => n.to_vec(),
        None => pin::list_instances()?,
    };
    let mut out = Vec::new();
    for name in names {
        let dir = pin::instance_dir(&name);
        if !dir.exists() {
            // Named but not (or no longer) there: attached 0, no counters.
            out.push(InstanceView {
                name,
                attached: false,
                counters: None,
                reloads: (0, 0),
                shadow: false,
            });
            continue;
        }
        let live = pin::is_live(&name);
        let counters = if live {
            Some(Snapshot::from_pins(&dir).with_context(|| format!("reading the counters of {name}"))?)
        } else {
            None
        };
        let meta = pin::Meta::read(&name);
        let shadow = crate::dataplane::config_maps::Pinned::open(&dir)
            .and_then(|p| p.config())
            .is_ok_and(|c| c.has(icmp_common::config::FLAG_SHADOW));
        out.push(InstanceView {
            shadow,
            attached: links::instance_attached(&name)?,
            reloads: meta.map_or((0, 0), |m| (m.reloads_ok, m.reloads_failed)),
            counters,
            name,
        });
    }
    Ok(out)
}

/// The metric families for these instances.
pub fn families(views: &[InstanceView]) -> Vec<MetricFamily> {
    let mut build = MetricFamily::new("icmpxdp_build_info", "icmpxdp's version (value 1)", Kind::Gauge);
    build.add(vec![("version", env!("CARGO_PKG_VERSION").to_owned())], 1);
    let mut attached = MetricFamily::new(
        "icmpxdp_attached",
        "1 while the instance's XDP program holds its interface, 0 when it is gone or stale",
        Kind::Gauge,
    );
    let mut shadow = MetricFamily::new(
        "icmpxdp_shadow_mode",
        "1 in shadow mode: decisions and counters as in active mode, every frame passed to the kernel",
        Kind::Gauge,
    );
    let mut reloads = MetricFamily::new(
        "icmpxdp_config_reloads",
        "Config reloads, by result (ok: applied; failed: refused, config unchanged)",
        Kind::Counter,
    );
    let mut frames = MetricFamily::new("icmpxdp_frames", "Frames the XDP program processed", Kind::Counter);
    let mut verdicts = MetricFamily::new(
        "icmpxdp_verdicts",
        "Frames by the reason of their outcome",
        Kind::Counter,
    );
    let mut suppressed = MetricFamily::new(
        "icmpxdp_suppressed_errors",
        "ICMP errors not sent by a suppression rule (RFC 1122/1812/4443)",
        Kind::Counter,
    );
    let mut actions = MetricFamily::new("icmpxdp_actions", "Frames by XDP action", Kind::Counter);
    let mut received = MetricFamily::new(
        "icmpxdp_received_messages",
        "ICMP messages received, by family and type",
        Kind::Counter,
    );
    let mut sent = MetricFamily::new(
        "icmpxdp_sent_messages",
        "ICMP messages sent from XDP, by family and type",
        Kind::Counter,
    );
    let mut limited = MetricFamily::new(
        "icmpxdp_rate_limited",
        "Replies and errors not sent (or requests refused) by a rate limit",
        Kind::Counter,
    );
    let mut netstat: Vec<MetricFamily> = Vec::new();
    for v in views {
        let l = |pairs: &[(&'static str, String)]| {
            let mut out: Labels = vec![("iface", v.name.clone())];
            out.extend_from_slice(pairs);
            out
        };
        attached.add(l(&[]), u64::from(v.attached));
        shadow.add(l(&[]), u64::from(v.shadow));
        reloads.add(l(&[("result", "ok".into())]), v.reloads.0);
        reloads.add(l(&[("result", "failed".into())]), v.reloads.1);
        let Some(s) = &v.counters else { continue };
        frames.add(l(&[]), s.frames());
        for r in Reason::ALL {
            verdicts.add(l(&[("reason", r.label().into())]), s.verdict(r));
            if let Some(rule) = r.label().strip_prefix("suppressed_") {
                suppressed.add(l(&[("reason", rule.into())]), s.verdict(r));
            }
        }
        for a in Action::ALL {
            actions.add(l(&[("action", a.label().into())]), s.action(a));
        }
        for f in Family::ALL {
            for (label, slots) in types(f) {
                let sum = |counts: &[u64]| -> u64 { slots.iter().map(|t| counts[type_index(f, *t) as usize]).sum() };
                let fl = || l(&[("family", f.label().into()), ("type", label.clone())]);
                received.add(fl(), sum(&s.received));
                sent.add(fl(), sum(&s.sent));
                for scope in Scope::ALL {
                    let n: u64 = slots.iter().map(|t| s.limited(scope, f, *t)).sum();
                    limited.add(
                        l(&[
                            ("family", f.label().into()),
                            ("type", label.clone()),
                            ("scope", scope.label().into()),
                        ]),
                        n,
                    );
                }
            }
        }
        for (name, value) in netstat_values(s) {
            match netstat.iter_mut().find(|f| f.name.ends_with(name)) {
                Some(f) => f.add(l(&[]), value),
                None => {
                    let mut f = MetricFamily::new(
                        format!("icmpxdp_netstat_{name}"),
                        "What XDP handled, in node_exporter's node_netstat_* names: once XDP answers, the kernel's own counters go blind",
                        Kind::Unknown,
                    );
                    f.add(l(&[]), value);
                    netstat.push(f);
                }
            }
        }
    }
    let mut all = vec![
        build, attached, shadow, reloads, frames, verdicts, suppressed, actions, received, sent, limited,
    ];
    all.extend(netstat);
    all
}

/// node_exporter's netstat names (`/proc/net/snmp` and `snmp6`) for what XDP
/// handled.
fn netstat_values(s: &Snapshot) -> Vec<(&'static str, u64)> {
    let total = |counts: &[u64], f: Family| -> u64 { (0..=255u8).map(|t| counts[type_index(f, t) as usize]).sum() };
    let limited = |scope: Scope, f: Family| -> u64 { (0..=255u8).map(|t| s.limited(scope, f, t)).sum() };
    vec![
        ("Icmp_InMsgs", total(&s.received, Family::V4) + s.in_errors[0]),
        ("Icmp_InErrors", s.in_errors[0]),
        ("Icmp_InEchos", s.received(Family::V4, 8)),
        ("Icmp_OutMsgs", total(&s.sent, Family::V4)),
        ("Icmp_OutEchoReps", s.sent(Family::V4, 0)),
        ("Icmp_OutDestUnreachs", s.sent(Family::V4, 3)),
        ("Icmp_OutRateLimitGlobal", limited(Scope::Global, Family::V4)),
        ("Icmp_OutRateLimitHost", limited(Scope::PerSource, Family::V4)),
        ("Icmp6_InMsgs", total(&s.received, Family::V6) + s.in_errors[1]),
        ("Icmp6_InErrors", s.in_errors[1]),
        ("Icmp6_InEchos", s.received(Family::V6, 128)),
        ("Icmp6_OutMsgs", total(&s.sent, Family::V6)),
        ("Icmp6_OutEchoReplies", s.sent(Family::V6, 129)),
        ("Icmp6_OutDestUnreachs", s.sent(Family::V6, 1)),
        ("Icmp6_OutRateLimitHost", limited(Scope::PerSource, Family::V6)),
    ]
}

/// The body and content type for a scrape that sent `accept`.
pub fn render(instances: Option<&[String]>, accept: &str) -> Result<(String, &'static str)> {
    let f = families(&collect(instances)?);
    Ok(if accept.contains("application/openmetrics-text") {
        (
            openmetrics(&f),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    } else {
        (prometheus_text(&f), "text/plain; version=0.0.4; charset=utf-8")
    })
}

/// `/healthz`: 200 while every instance served is attached (its program
/// holds its interface), 503 saying which is not — what a readiness or
/// liveness probe asks.
pub fn health(instances: Option<&[String]>) -> (StatusCode, String) {
    match collect(instances) {
        Ok(views) if views.is_empty() => (StatusCode::SERVICE_UNAVAILABLE, "no icmpxdp instance\n".to_owned()),
        Ok(views) => {
            let down: Vec<&str> = views.iter().filter(|v| !v.attached).map(|v| v.name.as_str()).collect();
            if down.is_empty() {
                (StatusCode::OK, "ok\n".to_owned())
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not attached: {}\n", down.join(", ")),
                )
            }
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}\n")),
    }
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
            let for_health = Arc::clone(&instances);
            let app = axum::Router::new()
                .route(
                    "/healthz",
                    axum::routing::get(move || {
                        let instances = Arc::clone(&for_health);
                        async move { health(instances.as_ref().as_deref()) }
                    }),
                )
                .route(
                    "/metrics",
                    axum::routing::get(move |headers: HeaderMap| {
                        let instances = Arc::clone(&instances);
                        async move {
                            let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
                            match render(instances.as_ref().as_deref(), accept) {
                                Ok((body, ctype)) => ([(header::CONTENT_TYPE, ctype)], body).into_response(),
                                // A 500, so Prometheus marks the target down
                                // instead of scraping an empty page as healthy.
                                Err(e) => (
                                    StatusCode::INTERNAL_SERVER_ERROR,
                                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
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
