//! Writing config into a running program's maps — the live instance's own
//! maps, or the maps another `icmpxdp` pinned. One implementation for both,
//! so `run` (start and SIGHUP) and `icmpxdp reload` cannot drift apart.

use std::path::Path;

use anyhow::{Context as _, Result};
use aya::maps::{Array, Map, MapData};
use icmp_common::Config;

use crate::{config::PortBitmaps, config::Settings, map_names};

/// Writes `cfg` into the `CONFIG` slot not in use, then flips
/// `ACTIVE_CONFIG` to it: a program run sees the old config or the new one,
/// never half of each.
pub fn write_config(config: &mut Map, active: &mut Map, cfg: &Config) -> Result<()> {
    let mut active: Array<&mut MapData, u32> = Array::try_from(active)?;
    let next = (active.get(&0, 0).context("reading ACTIVE_CONFIG")? & 1) ^ 1;
    let mut config: Array<&mut MapData, Config> = Array::try_from(config)?;
    config.set(next, cfg, 0).context("writing CONFIG")?;
    active.set(0, next, 0).context("switching ACTIVE_CONFIG")?;
    Ok(())
}

/// The config in use.
pub fn read_config(config: &Map, active: &Map) -> Result<Config> {
    let active: Array<&MapData, u32> = Array::try_from(active)?;
    let slot = active.get(&0, 0)? & 1;
    let config: Array<&MapData, Config> = Array::try_from(config)?;
    Ok(config.get(&slot, 0)?)
}

/// Writes the static port lists (every word, so stale bits are cleared).
/// Words are written one by one: during a reload a datagram may see some
/// ports' old classification for a moment.
pub fn write_ports(ports: &mut Map, bitmaps: &PortBitmaps) -> Result<()> {
    let mut map: Array<&mut MapData, u64> = Array::try_from(ports)?;
    for (i, w) in bitmaps.0.iter().enumerate() {
        map.set(i as u32, w, 0).context("writing PORTS")?;
    }
    Ok(())
}

/// The maps a pinned instance is controlled through.
pub struct Pinned {
    config: Map,
    active: Map,
    ports: Map,
}

impl Pinned {
    pub fn open(dir: &Path) -> Result<Self> {
        let open = |name: &str| -> Result<Map> {
            let path = dir.join(name);
            let data = MapData::from_pin(&path).with_context(|| format!("opening pinned map {}", path.display()))?;
            Ok(Map::Array(data))
        };
        Ok(Self {
            config: open(map_names::CONFIG)?,
            active: open(map_names::ACTIVE_CONFIG)?,
            ports: open(map_names::PORTS)?,
        })
    }

    /// Applies validated settings (all but `max_sources`, fixed at load).
    pub fn apply(&mut self, s: &Settings) -> Result<()> {
        write_ports(&mut self.ports, &s.ports)?;
        write_config(&mut self.config, &mut self.active, &s.config)
    }

    pub fn config(&self) -> Result<Config> {
        read_config(&self.config, &self.active)
    }
}
