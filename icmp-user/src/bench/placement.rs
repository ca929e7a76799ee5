//! Where the end-to-end benchmark's threads run and how their CPU is read:
//! threaded NAPI, CPU pinning, SCHED_FIFO, `/proc/stat` and
//! `/proc/<pid>/schedstat`, and the lab's device facts (MAC, ifindex).

use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::dataplane::netns;

/// Busy and total jiffies of CPU `n` from /proc/stat.
pub(super) fn cpu_jiffies(n: usize) -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with(&format!("cpu{n} ")))
        .context("no such CPU in /proc/stat")?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    let total: u64 = v.iter().take(8).sum();
    Ok((total - idle, total))
}

pub(super) fn mac_of(ns: &str, dev: &str) -> Result<[u8; 6]> {
    let out = std::process::Command::new("ip")
        .args(["-n", ns, "-j", "link", "show", dev])
        .output()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("ip -j link")?;
    let text = v[0]["address"].as_str().context("no MAC address")?;
    let mut mac = [0u8; 6];
    for (i, b) in text.split(':').enumerate().take(6) {
        mac[i] = u8::from_str_radix(b, 16)?;
    }
    Ok(mac)
}

/// Frames `dev` (in `ns`) received, as `ip -s link` counts them: on a veth
/// with XDP, every frame the program ran on, whatever it returned — so
/// CPU over this is the responder's CPU per frame it handled, frames the
/// generator offered but the veth's ring dropped before XDP left out.
pub(super) fn rx_packets(ns: &str, dev: &str) -> Result<u64> {
    let out = std::process::Command::new("ip")
        .args(["-n", ns, "-j", "-s", "link", "show", dev])
        .output()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("ip -j -s link")?;
    v[0]["stats64"]["rx"]["packets"]
        .as_u64()
        .with_context(|| format!("no rx packet count for {dev} in {ns}"))
}

pub(super) fn ifindex_in(ns: &str, dev: &str) -> Result<u32> {
    let _inside = netns::enter(ns)?;
    nix::net::if_::if_nametoindex(dev).with_context(|| format!("ifindex of {dev}"))
}

/// Turns on threaded NAPI for `dev` in `ns`; returns its NAPI thread's pid.
pub(super) fn threaded_napi(ns: &str, dev: &str) -> Result<i32> {
    let st = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "sh",
            "-c",
            &format!("echo 1 > /sys/class/net/{dev}/threaded"),
        ])
        .status()?;
    if !st.success() {
        bail!("cannot enable threaded NAPI on {dev}");
    }
    // Comm names are cut at 15 bytes: "napi/<dev>-<id>".
    let prefix: String = format!("napi/{dev}-").chars().take(15).collect();
    for _ in 0..50 {
        for e in std::fs::read_dir("/proc")?.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim().starts_with(&prefix)) {
                return Ok(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("no NAPI thread {prefix}* for {dev}")
}

pub(super) fn pin_to_cpu(pid: i32, cpu: usize) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(pid), &set)
        .with_context(|| format!("pinning {pid} to CPU {cpu}"))
}

/// Pins a NAPI thread to `cpu` and makes it SCHED_FIFO: it runs as soon as
/// it has frames, ahead of any SCHED_OTHER thread on that CPU.
pub(super) fn napi_realtime(pid: i32, cpu: usize) -> Result<()> {
    pin_to_cpu(pid, cpu)?;
    let param = libc::sched_param { sched_priority: 50 };
    // SAFETY: a plain syscall on a thread id, with a valid parameter block.
    if unsafe { libc::sched_setscheduler(pid, libc::SCHED_FIFO, &param) } != 0 {
        bail!("SCHED_FIFO for NAPI thread {pid}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// CPU time (ns) a thread has run, from /proc/<pid>/schedstat.
pub(super) fn cpu_ns(pid: i32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))?;
    Ok(s.split_whitespace().next().context("schedstat")?.parse()?)
}

/// How many times thread `pid` has been scheduled in (`/proc/<pid>/schedstat`,
/// third field): for a NAPI thread, one per wake-up, each followed by polls
/// until the ring is empty — so frames per schedule is its batch size.
pub(super) fn times_scheduled(pid: i32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))?;
    Ok(s.split_whitespace()
        .nth(2)
        .context("schedstat: no timeslice count")?
        .parse()?)
}
