//! `icmpxdp top`: the sources (or source prefixes, as the limiter counts
//! them) the rate limiter refuses most, with their refused/s and sent/s,
//! refreshed every interval. Built on the capture path: the kernel keeps
//! only refusals and sent messages (sampled 1 in N with `--sample`, rates
//! scaled back up), so there is no per-source counter in the hot path.

use std::{
    io::{IsTerminal as _, Write as _},
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use icmp_user::{
    dataplane::{
        capture::{Capture, CaptureFilter},
        config_maps::Pinned,
        pins as pin,
    },
    observe::top::{REFUSALS, SENT, Tally, prefix_of, source_of},
};

use super::{one_instance, signals};

pub(crate) struct TopOpts<'a> {
    pub(crate) iface: Option<&'a str>,
    pub(crate) by_prefix: bool,
    pub(crate) interval: f64,
    pub(crate) sample: u32,
    pub(crate) once: bool,
    pub(crate) rows: usize,
    pub(crate) json: bool,
}

pub(crate) fn top(netns: Option<&str>, o: &TopOpts<'_>) -> Result<()> {
    if !(0.1..=3600.0).contains(&o.interval) {
        bail!("--interval {}: between 0.1 and 3600 seconds", o.interval);
    }
    let (name, meta) = one_instance(o.iface, netns)?;
    let (v4_len, v6_len) = if o.by_prefix {
        let cfg = Pinned::open(&pin::instance_dir(&name))?.config()?;
        (cfg.v4_prefix, cfg.v6_prefix)
    } else {
        (32, 128)
    };
    let mut reasons = 0u64;
    for r in REFUSALS.iter().chain(SENT.iter()) {
        reasons |= 1 << *r as u64;
    }
    let filter = CaptureFilter {
        reasons,
        sample: o.sample,
        // Only the addresses matter: two VLAN tags and an IPv6 header.
        snaplen: 64,
        ..CaptureFilter::default()
    };
    let sig = signals()?;
    let mut cap = Capture::start(meta.program_id, &filter).with_context(|| format!("watching {name}"))?;
    let tty = std::io::stdout().is_terminal() && !o.json;
    let interval = Duration::from_secs_f64(o.interval);
    while !sig.stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let mut tally = Tally::default();
        while started.elapsed() < interval && !sig.stop.load(Ordering::Relaxed) {
            cap.wait(Duration::from_millis(100));
            while let Some(r) = cap.next_record() {
                if let Some(src) = source_of(&r) {
                    let key = if o.by_prefix {
                        prefix_of(src, v4_len, v6_len)
                    } else {
                        src.to_string()
                    };
                    tally.add(key, icmp_common::Reason::from_index(u64::from(r.reason)));
                }
            }
            cap.renew()?;
        }
        let secs = started.elapsed().as_secs_f64();
        let scale = f64::from(o.sample.max(1)) / secs;
        let rows = tally.top(o.rows);
        let lost = cap.stats()?.lost;
        if o.json {
            let sources: Vec<_> = rows
                .iter()
                .map(|(k, c)| {
                    serde_json::json!({
                        if o.by_prefix { "prefix" } else { "source" }: k,
                        "refused_per_s": c.refused as f64 * scale,
                        "sent_per_s": c.sent as f64 * scale,
                    })
                })
                .collect();
            let line = serde_json::json!({
                "instance": name,
                "interval_s": secs,
                "sample": o.sample,
                "lost_records": lost,
                "sources": sources,
            });
            say!("{line}");
        } else {
            let mut screen = String::new();
            if tty {
                screen.push_str("\x1b[2J\x1b[H");
            }
            screen.push_str(&format!(
                "{name}: refused by the rate limiter, per second over {secs:.1} s{}\n",
                if o.sample > 1 {
                    format!(" (1 in {} sampled, scaled up)", o.sample)
                } else {
                    String::new()
                }
            ));
            screen.push_str(&format!(
                "{:<42} {:>12} {:>12}\n",
                if o.by_prefix { "prefix" } else { "source" },
                "refused/s",
                "sent/s"
            ));
            for (k, c) in &rows {
                screen.push_str(&format!(
                    "{k:<42} {:>12.1} {:>12.1}\n",
                    c.refused as f64 * scale,
                    c.sent as f64 * scale
                ));
            }
            if rows.is_empty() {
                screen.push_str("(nothing refused or sent)\n");
            }
            if lost > 0 {
                screen.push_str(&format!("{lost} records lost (ring buffer full): raise --sample\n"));
            }
            say_raw!("{screen}");
        }
        let _ = std::io::stdout().flush();
        if o.once {
            break;
        }
    }
    cap.stop()?;
    Ok(())
}
