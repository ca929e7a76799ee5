//! Which IP protocols get Protocol Unreachable: every protocol neither open
//! by config (`protocol_unreachable.open_protocols`) nor bound by a raw
//! socket in this network namespace (`/proc/net/raw`, `/proc/net/raw6`,
//! re-read by a running `run` every second), written to the program's
//! `CLOSED_PROTOCOLS` map. With the feature off, nothing is closed.

use std::fs;

use anyhow::{Context as _, Result};
use icmp_common::{Config, config::FLAG_PROTO_UNREACH};

/// Protocols with a raw socket open, per family (bit n = protocol n).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawProtocols {
    pub v4: [u32; 8],
    pub v6: [u32; 8],
}

fn set(bits: &mut [u32; 8], p: u8) {
    bits[usize::from(p >> 5)] |= 1 << (p & 31);
}

/// The protocol of each raw socket in a `/proc/net/raw*` table: for a raw
/// socket, the "port" of `local_address` is its protocol.
fn parse_raw_table(text: &str) -> Vec<u8> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|local| local.rsplit(':').next())
        .filter_map(|port| u16::from_str_radix(port, 16).ok())
        .filter_map(|p| u8::try_from(p).ok())
        .collect()
}

/// The raw sockets of the calling thread's network namespace.
pub fn raw_protocols() -> Result<RawProtocols> {
    let mut out = RawProtocols::default();
    for (file, bits) in [("raw", &mut out.v4), ("raw6", &mut out.v6)] {
        let path = format!("/proc/thread-self/net/{file}");
        // No IPv6 (raw6 absent) means no IPv6 raw sockets.
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {path}")),
        };
        for p in parse_raw_table(&text) {
            set(bits, p);
        }
    }
    Ok(out)
}

/// The `CLOSED_PROTOCOLS` map's two slots (IPv4, IPv6) for `cfg`.
pub fn closed(cfg: &Config, raw: &RawProtocols) -> [[u32; 8]; 2] {
    if !cfg.has(FLAG_PROTO_UNREACH) {
        return [[0; 8]; 2];
    }
    let close = |raw: &[u32; 8]| -> [u32; 8] { std::array::from_fn(|i| !(cfg.open_protocols[i] | raw[i])) };
    [close(&raw.v4), close(&raw.v6)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_tables_name_protocols() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                     1: 00000000:00FD 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0 0\n\
                     58: 00000000:003A 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0 0\n";
        assert_eq!(parse_raw_table(table), vec![253, 58]);
    }

    #[test]
    fn closed_is_what_neither_config_nor_a_socket_opens() {
        let mut cfg = Config::default();
        assert_eq!(
            closed(&cfg, &RawProtocols::default()),
            [[0; 8]; 2],
            "off: nothing closed"
        );
        cfg.flags |= FLAG_PROTO_UNREACH;
        let mut raw = RawProtocols::default();
        set(&mut raw.v4, 253);
        let c = closed(&cfg, &raw);
        let is = |bits: &[u32; 8], p: u8| bits[usize::from(p >> 5)] >> (p & 31) & 1 == 1;
        for p in [1u8, 2, 4, 6, 17, 41, 47, 50, 51, 58, 132, 136] {
            assert!(!is(&c[0], p) && !is(&c[1], p), "{p} open by default");
        }
        assert!(!is(&c[0], 253), "a raw socket opens 253 for IPv4");
        assert!(is(&c[1], 253), "but not for IPv6");
        assert!(is(&c[0], 254) && is(&c[0], 0) && is(&c[1], 89));
    }
}
