//! Counter snapshots: the one place per-CPU counter maps are read and
//! summed over CPUs, from a live instance's maps or from its pins. `stats`,
//! `stats --watch`, the lab's live line, `/metrics` and the benchmarks all
//! read counters through here; rendering is [`super::report`].

use std::path::Path;

use anyhow::Result;
use aya::maps::{Array, Map, MapData, PerCpuArray};
use icmp_common::{
    counters::{Counters, TYPE_SLOTS, type_index},
    ratelimit::Scope,
    reason::{Action, Family, Reason},
};

use crate::map_names;

/// Counters of one instance, summed over CPUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub verdicts: [u64; Reason::COUNT as usize],
    pub actions: [u64; Action::COUNT as usize],
    pub received: Vec<u64>,
    pub sent: Vec<u64>,
    /// Not sent for a rate limit, by scope × family × type.
    pub rate_limited: Vec<u64>,
    /// ICMP messages too short to parse, by family.
    pub in_errors: [u64; 2],
}

/// Slot `index` of a per-CPU `u64` array map, summed over CPUs.
pub fn sum_per_cpu(map: &Map, index: u32) -> Result<u64> {
    let map: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(map)?;
    Ok(map.get(&index, 0)?.iter().sum())
}

/// The `COUNTERS` entries (one per CPU), summed field by field.
pub fn sum_counters(map: &Map) -> Result<Counters> {
    fn add(total: &mut [u64], x: &[u64]) {
        for (t, x) in total.iter_mut().zip(x) {
            *t += x;
        }
    }
    // One entry per CPU (a plain array: see `icmp-ebpf/src/maps.rs`).
    let map: Array<&MapData, Counters> = Array::try_from(map)?;
    // Boxed: two 20 KiB values do not belong on a thread's stack.
    let mut total = Box::<Counters>::default();
    for cpu in 0..map.len() {
        let c = map.get(&cpu, 0)?;
        add(&mut total.hot, &c.hot);
        add(&mut total.actions, &c.actions);
        add(&mut total.verdicts, &c.verdicts);
        add(&mut total.icmp_in_errors, &c.icmp_in_errors);
        add(&mut total.received, &c.received);
        add(&mut total.sent, &c.sent);
        add(&mut total.rate_limited, &c.rate_limited);
    }
    Ok(*total)
}

/// Slots `0..len` of a per-CPU `u64` array map, each summed over CPUs.
pub fn sum_per_cpu_all(map: &Map, len: u32) -> Result<Vec<u64>> {
    let map: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(map)?;
    (0..len).map(|i| Ok(map.get(&i, 0)?.iter().sum())).collect()
}

impl Snapshot {
    /// The totals of the per-CPU `COUNTERS` values, the hot-path words
    /// spread into the counters they stand for.
    fn from_counters(mut c: Counters) -> Self {
        c.fold_hot();
        Self {
            verdicts: c.verdicts,
            actions: c.actions,
            received: c.received.to_vec(),
            sent: c.sent.to_vec(),
            rate_limited: c.rate_limited.to_vec(),
            in_errors: c.icmp_in_errors,
        }
    }

    /// Reads a loaded instance's counters.
    pub fn of(r: &crate::dataplane::load::Responder) -> Result<Self> {
        Self::read(|name| r.map(name))
    }

    /// Reads a loaded instance's maps (`map` looks one up by name).
    pub fn read<'a>(map: impl Fn(&str) -> Result<&'a Map>) -> Result<Self> {
        Ok(Self::from_counters(sum_counters(map(map_names::COUNTERS)?)?))
    }

    /// Reads the maps pinned under an instance directory.
    pub fn from_pins(dir: &Path) -> Result<Self> {
        let data = crate::dataplane::pins::open_map(&dir.join(map_names::COUNTERS))?;
        Ok(Self::from_counters(sum_counters(&Map::Array(data))?))
    }

    pub fn verdict(&self, r: Reason) -> u64 {
        self.verdicts[r as usize]
    }

    pub fn received(&self, f: Family, icmp_type: u8) -> u64 {
        self.received[type_index(f, icmp_type) as usize]
    }

    pub fn sent(&self, f: Family, icmp_type: u8) -> u64 {
        self.sent[type_index(f, icmp_type) as usize]
    }

    /// Messages of this type not sent (or, inbound, requests refused) for
    /// the `scope` limit.
    pub fn limited(&self, scope: Scope, f: Family, icmp_type: u8) -> u64 {
        self.rate_limited[(scope as u32 * TYPE_SLOTS + type_index(f, icmp_type)) as usize]
    }

    pub(super) fn limited_in(&self, scope: Scope) -> &[u64] {
        let start = (scope as u32 * TYPE_SLOTS) as usize;
        &self.rate_limited[start..start + TYPE_SLOTS as usize]
    }

    /// Frames the program has seen (every frame has exactly one verdict).
    pub fn frames(&self) -> u64 {
        self.verdicts.iter().sum()
    }

    pub fn action(&self, a: Action) -> u64 {
        self.actions[a as usize]
    }

    /// Errors not sent because a suppression rule applied.
    pub fn suppressed(&self) -> u64 {
        Reason::ALL
            .iter()
            .filter(|r| r.is_suppression())
            .map(|r| self.verdict(*r))
            .sum()
    }

    /// Counters that moved from `earlier` to `self`.
    pub fn since(&self, earlier: &Self) -> Self {
        let sub = |a: &[u64], b: &[u64]| a.iter().zip(b).map(|(x, y)| x.saturating_sub(*y)).collect::<Vec<_>>();
        Self {
            verdicts: sub(&self.verdicts, &earlier.verdicts).try_into().expect("same length"),
            actions: sub(&self.actions, &earlier.actions).try_into().expect("same length"),
            received: sub(&self.received, &earlier.received),
            sent: sub(&self.sent, &earlier.sent),
            rate_limited: sub(&self.rate_limited, &earlier.rate_limited),
            in_errors: sub(&self.in_errors, &earlier.in_errors)
                .try_into()
                .expect("same length"),
        }
    }
}
