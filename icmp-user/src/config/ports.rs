//! The `PORTS` map's contents: the open- and closed-port bitmaps made from
//! `unreachable.open_ports` / `unreachable.closed_ports`.

use anyhow::{Result, bail};
use icmp_common::config::{PORT_SLOTS, PORT_WORDS, port_slot};

use super::{FileConfig, PortSpec};

/// The `PORTS` map contents: open-port bitmap, then closed-port bitmap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortBitmaps(pub Vec<u64>);

impl PortBitmaps {
    fn mark(&mut self, port: u16, closed: bool) {
        let (slot, bit) = port_slot(port);
        let slot = slot + if closed { PORT_WORDS } else { 0 };
        self.0[slot as usize] |= bit;
    }

    pub fn is(&self, port: u16, closed: bool) -> bool {
        let (slot, bit) = port_slot(port);
        let slot = slot + if closed { PORT_WORDS } else { 0 };
        self.0[slot as usize] & bit != 0
    }
}

fn parse_ports(key: &str, specs: &[PortSpec], closed: bool, into: &mut PortBitmaps) -> Result<()> {
    let port = |i: usize, v: i64| -> Result<u16> {
        u16::try_from(v).map_err(|_| anyhow::anyhow!("{key}[{i}]: port must be between 0 and 65535, got {v}"))
    };
    for (i, spec) in specs.iter().enumerate() {
        let (lo, hi) = match spec {
            PortSpec::One(p) => (port(i, *p)?, port(i, *p)?),
            PortSpec::Range(r) => {
                let bad = || anyhow::anyhow!("{key}[{i}]: expected a port or a range like \"33434-33534\", got {r:?}");
                let (a, b) = r.split_once('-').ok_or_else(bad)?;
                let a: i64 = a.trim().parse().map_err(|_| bad())?;
                let b: i64 = b.trim().parse().map_err(|_| bad())?;
                let (a, b) = (port(i, a)?, port(i, b)?);
                if a > b {
                    bail!("{key}[{i}]: range {r:?} starts after it ends");
                }
                (a, b)
            }
        };
        for p in lo..=hi {
            into.mark(p, closed);
        }
    }
    Ok(())
}

impl FileConfig {
    /// The port lists as the `PORTS` map holds them (validated).
    pub fn port_bitmaps(&self) -> Result<PortBitmaps> {
        let mut b = PortBitmaps(vec![0; PORT_SLOTS as usize]);
        parse_ports("unreachable.closed_ports", &self.unreachable.closed_ports, true, &mut b)?;
        parse_ports("unreachable.open_ports", &self.unreachable.open_ports, false, &mut b)?;
        Ok(b)
    }
}
