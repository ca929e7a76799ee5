//! `icmpxdp capture`: every decision of a running instance, with its verdict,
//! as pcapng for tcpdump/tshark/Wireshark, until Ctrl-C, SIGTERM or `-c`.
//! The filters and sampling run in the kernel (see `dataplane::capture`);
//! the summary on stderr says what was seen, kept and lost.

use std::{
    io::Write as _,
    path::Path,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use icmp_common::Reason;
use icmp_user::{
    dataplane::capture::{Capture, CaptureFilter, monotonic_ns},
    observe::pcapng::PcapngWriter,
};

use super::{one_instance, signals};

pub(crate) struct CaptureOpts<'a> {
    pub(crate) iface: Option<&'a str>,
    pub(crate) verdicts: &'a [String],
    pub(crate) actions: &'a [String],
    pub(crate) family: Option<u8>,
    pub(crate) sample: u32,
    pub(crate) count: Option<u64>,
    pub(crate) snaplen: u32,
    pub(crate) write: &'a Path,
}

fn filter(o: &CaptureOpts<'_>) -> Result<CaptureFilter> {
    let mut f = CaptureFilter {
        sample: o.sample,
        snaplen: o.snaplen,
        ..CaptureFilter::default()
    };
    if !o.verdicts.is_empty() {
        f.reasons = 0;
        for v in o.verdicts {
            let Some(r) = Reason::ALL.iter().find(|r| r.label() == v) else {
                let known: Vec<_> = Reason::ALL.iter().map(|r| r.label()).collect();
                bail!("--verdict {v}: no such verdict; one of: {}", known.join(", "));
            };
            f.reasons |= 1 << *r as u64;
        }
    }
    if !o.actions.is_empty() {
        f.actions = 0;
        for a in o.actions {
            f.actions |= 1
                << match a.as_str() {
                    "drop" => 1,
                    "pass" => 2,
                    "tx" => 3,
                    "redirect" => 4,
                    _ => bail!("--action {a}: one of tx, redirect, pass, drop"),
                };
        }
    }
    f.family = match o.family {
        None => 0,
        Some(4) => 4,
        Some(6) => 6,
        Some(n) => bail!("--family {n}: 4 or 6"),
    };
    Ok(f)
}

pub(crate) fn capture(netns: Option<&str>, o: &CaptureOpts<'_>) -> Result<()> {
    let filter = filter(o)?;
    let (name, meta) = one_instance(o.iface, netns)?;
    let sig = signals()?;
    let mut cap = Capture::start(meta.program_id, &filter).with_context(|| format!("starting a capture on {name}"))?;
    let realtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;
    let offset = realtime.wrapping_sub(monotonic_ns());
    let out: Box<dyn std::io::Write> = if o.write == Path::new("-") {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(o.write).with_context(|| format!("creating {}", o.write.display()))?,
        ))
    };
    let mut w = PcapngWriter::new(out, &meta.iface, filter.snaplen, offset)?;
    w.flush()?;
    eprintln!(
        "icmpxdp: capturing on {name} into {} (Ctrl-C to stop)",
        if o.write == Path::new("-") {
            "stdout".into()
        } else {
            o.write.display().to_string()
        }
    );
    let mut decisions = 0u64;
    let mut packets = 0u64;
    let mut renewed = Instant::now();
    'outer: while !sig.stop.load(Ordering::Relaxed) {
        // The program wakes this only for a batch; small ones are polled.
        cap.wait(Duration::from_millis(100));
        while let Some(r) = cap.next_record() {
            packets += u64::from(w.record(&r)?);
            decisions += 1;
            if o.count.is_some_and(|c| decisions >= c) {
                break 'outer;
            }
        }
        w.flush()?;
        if renewed.elapsed() >= Duration::from_secs(1) {
            cap.renew()?;
            renewed = Instant::now();
        }
    }
    cap.stop()?;
    w.flush()?;
    let s = cap.stats()?;
    eprintln!(
        "icmpxdp: {decisions} decisions captured ({packets} packets); {} decisions seen, {} matched the filters, \
         {} skipped by sampling, {} lost (ring buffer full)",
        s.seen, s.matched, s.sampled_out, s.lost
    );
    let _ = std::io::stderr().flush();
    Ok(())
}
