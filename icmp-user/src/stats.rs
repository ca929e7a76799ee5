//! Counter snapshots: read from a live instance's maps or from its pins,
//! summed over CPUs, rendered as a table or JSON.

use std::{borrow::Borrow, fmt::Write as _, path::Path};

use anyhow::{Context as _, Result};
use aya::maps::{Map, MapData, PerCpuArray};
use icmp_common::{
    counters::{Action, Family, Reason, TYPE_SLOTS, type_index, type_name},
    ratelimit::Scope,
};
use serde_json::{Map as JsonMap, Value, json};

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
}

fn sum_all<T: Borrow<MapData>>(map: &PerCpuArray<T, u64>, len: u32) -> Result<Vec<u64>> {
    (0..len).map(|i| Ok(map.get(&i, 0)?.iter().sum())).collect()
}

fn per_cpu(map: &Map) -> Result<PerCpuArray<&MapData, u64>> {
    Ok(PerCpuArray::try_from(map)?)
}

impl Snapshot {
    pub fn read(verdicts: &Map, actions: &Map, received: &Map, sent: &Map, rate_limited: &Map) -> Result<Self> {
        let v = sum_all(&per_cpu(verdicts)?, Reason::COUNT)?;
        let a = sum_all(&per_cpu(actions)?, Action::COUNT)?;
        Ok(Self {
            verdicts: v.try_into().expect("Reason::COUNT slots"),
            actions: a.try_into().expect("Action::COUNT slots"),
            received: sum_all(&per_cpu(received)?, TYPE_SLOTS)?,
            sent: sum_all(&per_cpu(sent)?, TYPE_SLOTS)?,
            rate_limited: sum_all(&per_cpu(rate_limited)?, Scope::COUNT * TYPE_SLOTS)?,
        })
    }

    /// Reads the maps pinned under an instance directory.
    pub fn from_pins(dir: &Path) -> Result<Self> {
        let open = |name: &str| -> Result<Map> {
            let path = dir.join(name);
            let data = MapData::from_pin(&path).with_context(|| format!("opening pinned map {}", path.display()))?;
            Ok(Map::PerCpuArray(data))
        };
        Self::read(
            &open(map_names::VERDICTS)?,
            &open(map_names::ACTIONS)?,
            &open(map_names::RX_TYPES)?,
            &open(map_names::TX_TYPES)?,
            &open(map_names::RATE_LIMITED)?,
        )
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

    fn limited_in(&self, scope: Scope) -> &[u64] {
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
        }
    }

    fn by_type(counts: &[u64]) -> impl Iterator<Item = (Family, u8, u64)> + '_ {
        Family::ALL.into_iter().flat_map(move |f| {
            (0..=255u8).filter_map(move |t| {
                let n = counts[type_index(f, t) as usize];
                (n != 0).then_some((f, t, n))
            })
        })
    }

    fn type_label(f: Family, t: u8) -> String {
        type_name(f, t).map_or_else(|| format!("type_{t}"), str::to_owned)
    }

    pub fn to_json(&self, instance: &str) -> Value {
        let types = |counts: &[u64]| {
            let mut out = JsonMap::new();
            for f in Family::ALL {
                out.insert(f.label().to_owned(), Value::Object(JsonMap::new()));
            }
            for (f, t, n) in Self::by_type(counts) {
                out[f.label()]
                    .as_object_mut()
                    .expect("object")
                    .insert(Self::type_label(f, t), json!(n));
            }
            Value::Object(out)
        };
        let actions: JsonMap<String, Value> = Action::ALL
            .iter()
            .map(|a| (a.label().to_owned(), json!(self.action(*a))))
            .collect();
        let verdicts: JsonMap<String, Value> = Reason::ALL
            .iter()
            .map(|r| (r.label().to_owned(), json!(self.verdict(*r))))
            .collect();
        json!({
            "instance": instance,
            "frames": self.frames(),
            "actions": actions,
            "suppressed": self.suppressed(),
            "verdicts": verdicts,
            "received": types(&self.received),
            "sent": types(&self.sent),
            "rate_limited": Scope::ALL.iter().map(|s| (s.label().to_owned(), types(self.limited_in(*s)))).collect::<JsonMap<_, _>>(),
        })
    }

    pub fn to_table(&self, instance: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "icmpxdp on {instance}: {} frames", self.frames());
        let _ = writeln!(
            s,
            "  actions: tx {}  pass {}  drop {}  aborted {}",
            self.action(Action::Tx),
            self.action(Action::Pass),
            self.action(Action::Drop),
            self.action(Action::Aborted)
        );
        let _ = writeln!(s, "  {:<34}{:>14}", "verdict", "frames");
        for r in Reason::ALL {
            let _ = writeln!(s, "  {:<34}{:>14}", r.label(), self.verdict(r));
        }
        let limited: Vec<(String, &[u64])> = Scope::ALL
            .iter()
            .map(|s| (format!("rate limited ({})", s.label()), self.limited_in(*s)))
            .collect();
        let mut sections: Vec<(&str, &[u64])> = vec![("received", &self.received), ("sent", &self.sent)];
        sections.extend(limited.iter().map(|(t, c)| (t.as_str(), *c)));
        for (title, counts) in sections {
            let _ = writeln!(s, "  {:<34}{:>14}", title, "messages");
            let mut any = false;
            for (f, t, n) in Self::by_type(counts) {
                any = true;
                let _ = writeln!(
                    s,
                    "    {:<32}{:>14}",
                    format!("{} {} ({t})", f.label(), Self::type_label(f, t)),
                    n
                );
            }
            if !any {
                let _ = writeln!(s, "    (none)");
            }
        }
        s
    }
}
