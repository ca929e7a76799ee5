//! The per-path benchmark's report: the machine it ran on, met / missed
//! against each target, the Markdown table the README quotes, and the
//! sanity check the smoke test applies to it.

use std::fmt::Write as _;

use anyhow::{Result, bail, ensure};

use serde::Serialize;

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Repeat,
    Fresh,
}

#[derive(Clone, Debug, Serialize)]
pub struct PathResult {
    pub path: String,
    pub mode: Mode,
    /// Median (repeat mode) or 10%-trimmed mean (fresh mode) of the samples.
    pub median_ns: f64,
    pub min_ns: f64,
    pub floor_median_ns: f64,
    pub floor_min_ns: f64,
    /// median − floor median.
    pub over_floor_ns: f64,
    /// The target for `over_floor_ns`, where the project has one.
    pub target_ns: Option<f64>,
    pub met: Option<bool>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub cpu: String,
    pub cpus: usize,
    pub kernel: String,
    pub verified_insns: u32,
    pub options: String,
    pub paths: Vec<PathResult>,
    /// Port Unreachable with the limiter running in full (bucket lookup +
    /// compare-and-exchange, always admitting) minus the same path with the
    /// limiter skipped by the ratemask.
    pub limiter_added_ns: f64,
    pub limiter_target_ns: f64,
    /// The responder against the bare programs, attached, fresh frames.
    pub versus: Vec<super::versus::Comparison>,
    /// The global bucket written from one CPU and from two at once.
    pub contention: super::versus::Contention,
}

/// How a figure against its target is shown in the Markdown reports.
pub(crate) fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

pub(super) fn machine() -> (String, usize, String) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    (cpu, cpus, kernel)
}

pub(super) fn today() -> String {
    std::process::Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "### icmpxdp bench, {}\n", self.date);
        let _ = writeln!(
            s,
            "{} × {} vCPU, kernel {}; verifier: {} instructions processed.  ",
            self.cpu, self.cpus, self.kernel, self.verified_insns
        );
        let _ = writeln!(
            s,
            "{}. ns per packet through BPF_PROG_TEST_RUN; floor = an XDP_PASS program measured interleaved in the same mode; \
             \"median\" is the median in repeat mode and the 10%-trimmed mean with a fresh frame per call (the clock steps by 10 ns here).\n",
            self.options
        );
        let _ = writeln!(
            s,
            "| path | mode | median ns | min ns | floor median ns | over floor ns | target | |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---|");
        for p in &self.paths {
            let target = p.target_ns.map_or(String::new(), |t| format!("≤ {t:.0}"));
            let met = p.met.map_or("", verdict);
            let mode = match p.mode {
                Mode::Repeat => "repeat",
                Mode::Fresh => "fresh frame",
            };
            let _ = writeln!(
                s,
                "| {} | {mode} | {:.1} | {:.1} | {:.1} | {:.1} | {target} | {met} |",
                p.path, p.median_ns, p.min_ns, p.floor_median_ns, p.over_floor_ns
            );
        }
        let met = verdict(self.limiter_added_ns <= self.limiter_target_ns);
        let _ = writeln!(
            s,
            "\nRate limiter added on the Port Unreachable path: {:.1} ns (target ≤ {:.0} ns: {met}).",
            self.limiter_added_ns, self.limiter_target_ns
        );
        let _ = writeln!(
            s,
            "\n#### Against bare programs (every program attached; fresh frame per call; ns over the XDP_PASS floor)\n"
        );
        let _ = writeln!(s, "| path | icmpxdp ns | bare program | bare ns | ratio | target | |");
        let _ = writeln!(s, "|---|---:|---|---:|---:|---|---|");
        for c in &self.versus {
            let (bare_ns, ratio) = if c.bare.is_empty() {
                (String::new(), String::new())
            } else {
                (format!("{:.1}", c.bare_over_floor_ns), format!("{:.2}×", c.ratio))
            };
            let _ = writeln!(
                s,
                "| {} | {:.1} | {} | {bare_ns} | {ratio} | {} | {} |",
                c.path,
                c.icmpxdp_over_floor_ns,
                c.bare,
                c.target,
                verdict(c.met)
            );
        }
        let c = &self.contention;
        let _ = writeln!(
            s,
            "\nThe global bucket under two receive queues (Port Unreachable, every error admitted, so every one \
             compare-and-exchanges the global word; ns per error over the floor): one CPU {:.1} ns with the global \
             limit, {:.1} ns without; two CPUs at once {:.1} ns with, {:.1} ns without — the shared word costs {:.1} ns \
             per error alone and {:.1} ns when both CPUs write it.",
            c.one_cpu_global_on_ns,
            c.one_cpu_global_off_ns,
            c.two_cpus_global_on_ns,
            c.two_cpus_global_off_ns,
            c.one_cpu_global_on_ns - c.one_cpu_global_off_ns,
            c.two_cpus_global_on_ns - c.two_cpus_global_off_ns,
        );
        s
    }
}

/// Fails unless the report is well formed with non-zero figures (the smoke test).
pub fn validate(r: &Report) -> Result<()> {
    if r.paths.len() < 11 {
        bail!("only {} paths", r.paths.len());
    }
    if r.versus.len() < 8 {
        bail!("only {} rows against the bare programs", r.versus.len());
    }
    for p in &r.paths {
        ensure!(
            p.median_ns > 0.0 && p.floor_median_ns > 0.0 && p.min_ns > 0.0,
            "zero figure in {p:?}"
        );
    }
    Ok(())
}
