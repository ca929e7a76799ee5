//! Writing config into a running program's maps — the live instance's own
//! maps, or the maps another `icmpxdp` pinned. One implementation for both,
//! so `run` (start and SIGHUP) and `icmpxdp reload` cannot drift apart.

use std::path::Path;

use anyhow::{Context as _, Result};
use aya::maps::{
    Array, Map, MapData,
    lpm_trie::{Key, LpmTrie},
};
use icmp_common::{Config, config::CONTROL_CONFIG_SLOT};

use crate::{
    config::{AnswerPrefixes, PortBitmaps, Settings},
    map_names,
};

/// Writes `cfg` into the `CONFIG` slot not in use, then points
/// `CONTROL[CONTROL_CONFIG_SLOT]` at it: a program run sees the old config
/// or the new one, never half of each.
pub fn write_config(config: &mut Map, control: &mut Map, cfg: &Config) -> Result<()> {
    let mut control: Array<&mut MapData, u64> = Array::try_from(control)?;
    let next = (control.get(&CONTROL_CONFIG_SLOT, 0).context("reading CONTROL")? & 1) ^ 1;
    let mut config: Array<&mut MapData, Config> = Array::try_from(config)?;
    config.set(next as u32, cfg, 0).context("writing CONFIG")?;
    control
        .set(CONTROL_CONFIG_SLOT, next, 0)
        .context("switching the CONFIG slot in CONTROL")?;
    Ok(())
}

/// The config in use.
pub fn read_config(config: &Map, control: &Map) -> Result<Config> {
    let control: Array<&MapData, u64> = Array::try_from(control)?;
    let slot = control.get(&CONTROL_CONFIG_SLOT, 0)? & 1;
    let config: Array<&MapData, Config> = Array::try_from(config)?;
    Ok(config.get(&(slot as u32), 0)?)
}

/// Writes the static port lists (every word, so stale bits are cleared),
/// then `CONTROL[CONTROL_OPEN_PORTS]`: whether any port is listed open (the
/// fast path reads `PORTS` only then). Words are written one by one: during
/// a reload a datagram may see some ports' old classification for a moment.
pub fn write_ports(ports: &mut Map, control: &mut Map, bitmaps: &PortBitmaps) -> Result<()> {
    let mut map: Array<&mut MapData, u64> = Array::try_from(ports)?;
    for (i, w) in bitmaps.0.iter().enumerate() {
        map.set(i as u32, w, 0).context("writing PORTS")?;
    }
    let some_open = bitmaps
        .0
        .iter()
        .take(icmp_common::config::PORT_WORDS as usize)
        .any(|w| *w != 0);
    let mut control: Array<&mut MapData, u64> = Array::try_from(control)?;
    control
        .set(icmp_common::config::CONTROL_OPEN_PORTS, u64::from(some_open), 0)
        .context("writing the open-ports word in CONTROL")
}

/// Makes the answer-prefix tries hold exactly `prefixes`: new entries are
/// inserted first, then stale ones removed, so a prefix in both the old and
/// the new config is never missing during a reload.
pub fn write_answer_prefixes(v4: &mut Map, v6: &mut Map, prefixes: &AnswerPrefixes) -> Result<()> {
    sync_trie::<4>(v4, &prefixes.v4).context("writing ANSWER_PREFIXES_V4")?;
    sync_trie::<16>(v6, &prefixes.v6).context("writing ANSWER_PREFIXES_V6")
}

fn sync_trie<const N: usize>(map: &mut Map, want: &[([u8; N], u8)]) -> Result<()> {
    let mut trie: LpmTrie<&mut MapData, [u8; N], u8> = LpmTrie::try_from(map)?;
    for (addr, len) in want {
        trie.insert(&Key::new(u32::from(*len), *addr), 1, 0)?;
    }
    let stale: Vec<Key<[u8; N]>> = trie
        .keys()
        .filter_map(Result::ok)
        .filter(|k| !want.contains(&(k.data(), k.prefix_len() as u8)))
        .collect();
    for k in stale {
        trie.remove(&k)?;
    }
    Ok(())
}

/// Writes the `CLOSED_PROTOCOLS` map for `cfg` and this namespace's raw
/// sockets (see [`crate::dataplane::protocols`]), then the fast path's word
/// in `CONTROL`: the `router.frag_needed` gate (the smallest MTU of this
/// namespace's interfaces, 0: off) and whether any protocol is closed.
/// The bitmaps first: the program never reads "closed" before they are in.
pub fn write_closed_protocols(protocols: &mut Map, control: &mut Map, cfg: &Config) -> Result<()> {
    let raw = crate::dataplane::protocols::raw_protocols()?;
    let closed = crate::dataplane::protocols::closed(cfg, &raw);
    let mut m: Array<&mut MapData, [u32; 8]> = Array::try_from(protocols)?;
    for (i, bits) in closed.iter().enumerate() {
        m.set(i as u32, bits, 0).context("writing CLOSED_PROTOCOLS")?;
    }
    let gate = if cfg.has(icmp_common::config::FLAG_ROUTER_FRAG_NEEDED) {
        smallest_mtu()?
    } else {
        0
    };
    let any = |bits: &[u32; 8]| bits.iter().any(|w| *w != 0);
    let word = icmp_common::config::fast_path_word(gate, any(&closed[0]), any(&closed[1]));
    let mut control: Array<&mut MapData, u64> = Array::try_from(control)?;
    control
        .set(icmp_common::config::CONTROL_FAST_PATH, word, 0)
        .context("writing the fast path's word in CONTROL")?;
    Ok(())
}

/// The smallest MTU of this namespace's interfaces but loopback
/// (SIOCGIFMTU on a socket of this namespace): a forwarded datagram no
/// longer than it fits every egress.
pub fn smallest_mtu() -> Result<u32> {
    // SAFETY: a plain socket, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    anyhow::ensure!(fd >= 0, "socket for SIOCGIFMTU: {}", std::io::Error::last_os_error());
    let mut smallest = u32::MAX;
    for iface in nix::net::if_::if_nameindex().context("listing interfaces")?.iter() {
        let name = iface.name().to_bytes();
        if name == b"lo" || name.len() >= libc::IFNAMSIZ {
            continue;
        }
        // SAFETY: a zeroed ifreq with a NUL-terminated name.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in req.ifr_name.iter_mut().zip(name) {
            *d = *s as libc::c_char;
        }
        // SAFETY: SIOCGIFMTU fills `ifr_ifru.ifru_mtu` of a valid ifreq.
        if unsafe { libc::ioctl(fd, libc::SIOCGIFMTU, &mut req) } == 0 {
            // SAFETY: the union member SIOCGIFMTU wrote.
            smallest = smallest.min(unsafe { req.ifr_ifru.ifru_mtu } as u32);
        }
    }
    // SAFETY: our own fd.
    unsafe { libc::close(fd) };
    // No interface but loopback: nothing is forwarded.
    Ok(if smallest == u32::MAX { 0 } else { smallest })
}

/// The maps a pinned instance is controlled through.
pub struct Pinned {
    config: Map,
    control: Map,
    ports: Map,
    prefixes_v4: Map,
    prefixes_v6: Map,
    protocols: Map,
}

impl Pinned {
    pub fn open(dir: &Path) -> Result<Self> {
        let data = |name: &str| -> Result<MapData> { crate::dataplane::pins::open_map(&dir.join(name)) };
        Ok(Self {
            config: Map::Array(data(map_names::CONFIG)?),
            control: Map::Array(data(map_names::CONTROL)?),
            ports: Map::Array(data(map_names::PORTS)?),
            prefixes_v4: Map::LpmTrie(data(map_names::ANSWER_PREFIXES_V4)?),
            prefixes_v6: Map::LpmTrie(data(map_names::ANSWER_PREFIXES_V6)?),
            protocols: Map::Array(data(map_names::CLOSED_PROTOCOLS)?),
        })
    }

    /// Applies validated settings (all but `max_sources`, fixed at load).
    pub fn apply(&mut self, s: &Settings) -> Result<()> {
        write_ports(&mut self.ports, &mut self.control, &s.ports)?;
        write_answer_prefixes(&mut self.prefixes_v4, &mut self.prefixes_v6, &s.answer_prefixes)?;
        write_closed_protocols(&mut self.protocols, &mut self.control, &s.config)?;
        write_config(&mut self.config, &mut self.control, &s.config)
    }

    pub fn config(&self) -> Result<Config> {
        read_config(&self.config, &self.control)
    }
}
