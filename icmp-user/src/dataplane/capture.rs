//! Switching a responder's capture on and reading what it writes (see
//! `icmp-ebpf/src/capture.rs`). The capture's maps are found through the
//! program itself (its map ids), so the same code serves an instance run by
//! another process and a responder loaded by a test.
//!
//! The switch carries a lease: [`Capture::renew`] extends it, dropping a
//! [`Capture`] switches it off, and a capture that dies without either is
//! switched off by the program once its lease runs out ([`LEASE`]).

use std::{
    os::fd::{AsFd as _, AsRawFd as _},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use aya::maps::{Array, MapData, MapInfo, PerCpuArray, RingBuf};
use icmp_common::{
    capture::{CaptureControl, CaptureRecord, MAX_SNAPLEN, stat},
    config::CONTROL_CAPTURE_LEASE,
};

/// How long a capture stays on without a renewal.
pub const LEASE: Duration = Duration::from_secs(3);

/// What the kernel keeps.
#[derive(Debug, Clone, Copy)]
pub struct CaptureFilter {
    /// Bit `r`: keep verdict `Reason` slot `r`.
    pub reasons: u64,
    /// Bit `a`: keep XDP action `a`.
    pub actions: u32,
    /// 0: both families; 4 or 6.
    pub family: u32,
    /// Keep 1 matching frame in `sample`.
    pub sample: u32,
    /// Bytes kept per direction (at most [`MAX_SNAPLEN`]).
    pub snaplen: u32,
}

impl Default for CaptureFilter {
    fn default() -> Self {
        Self {
            reasons: u64::MAX,
            actions: u32::MAX,
            family: 0,
            sample: 1,
            snaplen: MAX_SNAPLEN as u32,
        }
    }
}

/// The capture counters, summed over CPUs, since this capture started.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CaptureStats {
    pub seen: u64,
    pub matched: u64,
    pub sampled_out: u64,
    pub lost: u64,
    pub written: u64,
}

/// A running capture on one responder program.
pub struct Capture {
    /// The program's `CONTROL` words: the lease is one of them.
    lease: Array<MapData, u64>,
    ring: RingBuf<MapData>,
    stats: PerCpuArray<MapData, u64>,
    /// The counters when this capture started (they are never reset, so
    /// two captures in a row do not race on them).
    base: [u64; stat::COUNT as usize],
}

/// CLOCK_MONOTONIC now, the clock of `bpf_ktime_get_ns`.
pub fn monotonic_ns() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// The map of program `program_id` named `name`.
fn program_map(program_id: u32, name: &str) -> Result<MapData> {
    let prog = aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == program_id)
        .with_context(|| format!("BPF program {program_id} is not loaded (the instance's program is gone)"))?;
    for id in prog.map_ids()?.unwrap_or_default() {
        let info = MapInfo::from_id(id)?;
        if info.name_as_str() == Some(name) {
            return Ok(MapData::from_id(id)?);
        }
    }
    bail!("program {program_id} has no {name} map: an icmpxdp older than capture; restart it to capture")
}

/// The capture switch of program `program_id` as the program left it: on
/// while a capture runs, and switched off by the program itself at the
/// first frame after a lease ran out.
pub fn switch_on(program_id: u32) -> Result<bool> {
    let control: Array<MapData, u64> = Array::try_from(aya::maps::Map::Array(program_map(
        program_id,
        crate::map_names::CONTROL,
    )?))?;
    Ok(control.get(&CONTROL_CAPTURE_LEASE, 0)? != 0)
}

fn sum(stats: &PerCpuArray<MapData, u64>) -> Result<[u64; stat::COUNT as usize]> {
    let mut out = [0; stat::COUNT as usize];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = stats.get(&(i as u32), 0)?.iter().sum();
    }
    Ok(out)
}

impl Capture {
    /// Switches the capture of program `program_id` on with `filter`.
    /// Refused while another capture holds a live lease on it.
    pub fn start(program_id: u32, filter: &CaptureFilter) -> Result<Self> {
        if filter.snaplen == 0 || filter.snaplen as usize > MAX_SNAPLEN {
            bail!("--snaplen {}: must be between 1 and {MAX_SNAPLEN}", filter.snaplen);
        }
        if filter.sample == 0 {
            bail!("--sample 0: must be 1 (every frame) or more");
        }
        let mut ctl: Array<MapData, CaptureControl> =
            Array::try_from(aya::maps::Map::Array(program_map(program_id, "CAPTURE_CTL")?))?;
        let lease: Array<MapData, u64> = Array::try_from(aya::maps::Map::Array(program_map(
            program_id,
            crate::map_names::CONTROL,
        )?))?;
        let mut ring = RingBuf::try_from(aya::maps::Map::RingBuf(program_map(program_id, "CAPTURE_RING")?))?;
        let stats = PerCpuArray::try_from(aya::maps::Map::PerCpuArray(program_map(program_id, "CAPTURE_STATS")?))?;
        let until = lease.get(&CONTROL_CAPTURE_LEASE, 0)?;
        if until != 0 && until > monotonic_ns() {
            bail!(
                "another capture is running on this instance; stop it first (or wait {} s after it was killed)",
                LEASE.as_secs()
            );
        }
        // Records a killed capture left behind are not this capture's.
        while ring.next().is_some() {}
        let base = sum(&stats)?;
        // The filters first, then the switch: the program never sees a
        // capture on with the last one's filters.
        let filters = CaptureControl {
            family: filter.family,
            reasons: filter.reasons,
            actions: filter.actions,
            sample: filter.sample,
            snaplen: filter.snaplen,
        };
        ctl.set(0, filters, 0).context("writing CAPTURE_CTL")?;
        let mut c = Self {
            lease,
            ring,
            stats,
            base,
        };
        c.renew()?;
        Ok(c)
    }

    /// Extends the lease by [`LEASE`] from now (switching the capture on).
    pub fn renew(&mut self) -> Result<()> {
        let until = monotonic_ns() + LEASE.as_nanos() as u64;
        self.lease
            .set(CONTROL_CAPTURE_LEASE, until, 0)
            .context("writing the capture lease in CONTROL")?;
        Ok(())
    }

    /// The next record, if one is waiting.
    pub fn next_record(&mut self) -> Option<CaptureRecord> {
        let item = self.ring.next()?;
        if item.len() < size_of::<CaptureRecord>() {
            return None;
        }
        // SAFETY: the program writes whole `CaptureRecord`s; read unaligned.
        Some(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<CaptureRecord>()) })
    }

    /// Waits up to `timeout` for a record to be readable.
    pub fn wait(&self, timeout: Duration) {
        let mut pfd = libc::pollfd {
            fd: self.ring.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
    }

    pub fn stats(&self) -> Result<CaptureStats> {
        let now = sum(&self.stats)?;
        let d = |i: u32| now[i as usize].wrapping_sub(self.base[i as usize]);
        Ok(CaptureStats {
            seen: d(stat::SEEN),
            matched: d(stat::MATCHED),
            sampled_out: d(stat::SAMPLED_OUT),
            lost: d(stat::LOST),
            written: d(stat::WRITTEN),
        })
    }

    /// Switches the capture off (also done on drop).
    pub fn stop(&mut self) -> Result<()> {
        self.lease
            .set(CONTROL_CAPTURE_LEASE, 0, 0)
            .context("switching the capture off in CONTROL")?;
        Ok(())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
