//! The TOML config file (see `icmpxdp.example.toml`) and its translation into
//! the [`Config`] the program reads. Invalid files are rejected here, with the
//! key and the reason, before anything reaches the kernel.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use icmp_common::{
    Config,
    config::{
        FLAG_ANSWER_ANY_DST, FLAG_DROP_SUPPRESSED, FLAG_ECHO_V4, FLAG_ECHO_V6, FLAG_ENABLED, FLAG_LOG_DECISIONS,
        FLAG_PORTS_BY_SOCKET, FLAG_RESERVED_SOURCE_INVALID, FLAG_UNREACH_V4, FLAG_UNREACH_V6, PORT_SLOTS, PORT_WORDS,
        port_slot,
    },
};
use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub echo: Echo,
    pub unreachable: Unreachable,
    pub ip: Ip,
    pub debug: Debug,
}

/// How ports in neither list are classified.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PortPolicy {
    /// Closed when no UDP socket would receive the datagram (decided in XDP
    /// with `bpf_sk_lookup_udp`, exactly as the kernel delivers).
    Socket,
    /// Open: only `closed_ports` get errors.
    Listed,
}

/// What to do with a datagram whose error was suppressed.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SuppressedAction {
    Pass,
    Drop,
}

/// A port (`53`) or an inclusive range (`"33434-33534"`).
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(untagged)]
pub enum PortSpec {
    One(i64),
    Range(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Unreachable {
    /// Send Port Unreachable (3/3) for UDP to closed IPv4 ports.
    pub ipv4: bool,
    /// Send Port Unreachable (1/4) for UDP to closed IPv6 ports.
    pub ipv6: bool,
    pub policy: PortPolicy,
    /// Always closed (e.g. the traceroute range "33434-33534").
    pub closed_ports: Vec<PortSpec>,
    /// Never an error: wins over `closed_ports` and the policy.
    pub open_ports: Vec<PortSpec>,
    pub suppressed: SuppressedAction,
    /// Treat 240.0.0.0/4 sources as hosts (RFC 1812 §4.2.2.11 (e) says not).
    pub reserved_sources_are_hosts: bool,
    /// Largest IPv4 error, total length (RFC 1812 §4.3.2.3: 576).
    pub ipv4_error_size: i64,
    /// Largest IPv6 error (RFC 4443 §2.4(c): 1280).
    pub ipv6_error_size: i64,
}

impl Default for Unreachable {
    fn default() -> Self {
        Self {
            ipv4: true,
            ipv6: true,
            policy: PortPolicy::Socket,
            closed_ports: Vec::new(),
            open_ports: Vec::new(),
            suppressed: SuppressedAction::Pass,
            reserved_sources_are_hosts: false,
            ipv4_error_size: Config::MAX_V4_ERROR_SIZE.into(),
            ipv6_error_size: Config::MAX_V6_ERROR_SIZE.into(),
        }
    }
}

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

fn size_in(key: &str, v: i64, min: u16, max: u16) -> Result<u16> {
    match u16::try_from(v) {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => bail!("{key}: must be between {min} and {max}, got {v}"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Echo {
    /// Answer IPv4 echo requests (8 → 0).
    pub ipv4: bool,
    /// Answer ICMPv6 echo requests (128 → 129).
    pub ipv6: bool,
    /// Answer for any destination address, not only the interface's own.
    pub answer_any_destination: bool,
}

impl Default for Echo {
    fn default() -> Self {
        Self {
            ipv4: true,
            ipv6: true,
            answer_any_destination: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ip {
    /// TTL of IPv4 messages we send (net.ipv4.ip_default_ttl).
    pub ttl: i64,
    /// Hop limit of IPv6 messages we send (net.ipv6.conf.*.hop_limit).
    pub hop_limit: i64,
}

impl Default for Ip {
    fn default() -> Self {
        Self {
            ttl: Config::DEFAULT_TTL.into(),
            hop_limit: Config::DEFAULT_TTL.into(),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Debug {
    /// Log every decision through aya-log (slow; for debugging only).
    pub log_decisions: bool,
}

fn hop_count(key: &str, v: i64) -> Result<u8> {
    match u8::try_from(v) {
        Ok(n) if n >= 1 => Ok(n),
        _ => bail!("{key}: must be between 1 and 255, got {v}"),
    }
}

impl FileConfig {
    pub fn from_toml(text: &str) -> Result<Self> {
        Ok(toml::from_str(text)?)
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("invalid config {}", path.display()))
    }

    /// The port lists as the `PORTS` map holds them (validated).
    pub fn port_bitmaps(&self) -> Result<PortBitmaps> {
        let mut b = PortBitmaps(vec![0; PORT_SLOTS as usize]);
        parse_ports("unreachable.closed_ports", &self.unreachable.closed_ports, true, &mut b)?;
        parse_ports("unreachable.open_ports", &self.unreachable.open_ports, false, &mut b)?;
        Ok(b)
    }

    /// Validates everything and converts to what the program reads.
    pub fn to_config(&self) -> Result<Config> {
        self.port_bitmaps()?;
        let u = &self.unreachable;
        let mut flags = FLAG_ENABLED;
        for (on, flag) in [
            (self.echo.ipv4, FLAG_ECHO_V4),
            (self.echo.ipv6, FLAG_ECHO_V6),
            (self.echo.answer_any_destination, FLAG_ANSWER_ANY_DST),
            (self.debug.log_decisions, FLAG_LOG_DECISIONS),
            (u.ipv4, FLAG_UNREACH_V4),
            (u.ipv6, FLAG_UNREACH_V6),
            (u.policy == PortPolicy::Socket, FLAG_PORTS_BY_SOCKET),
            (u.suppressed == SuppressedAction::Drop, FLAG_DROP_SUPPRESSED),
            (!u.reserved_sources_are_hosts, FLAG_RESERVED_SOURCE_INVALID),
        ] {
            if on {
                flags |= flag;
            }
        }
        Ok(Config {
            flags,
            ttl: hop_count("ip.ttl", self.ip.ttl)?,
            hop_limit: hop_count("ip.hop_limit", self.ip.hop_limit)?,
            _pad: [0; 2],
            v4_error_size: size_in(
                "unreachable.ipv4_error_size",
                u.ipv4_error_size,
                Config::MIN_V4_ERROR_SIZE,
                Config::MAX_V4_ERROR_SIZE,
            )?,
            v6_error_size: size_in(
                "unreachable.ipv6_error_size",
                u.ipv6_error_size,
                Config::MIN_V6_ERROR_SIZE,
                Config::MAX_V6_ERROR_SIZE,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_program_defaults() {
        assert_eq!(FileConfig::default().to_config().unwrap(), Config::default());
        assert_eq!(FileConfig::from_toml("").unwrap().to_config().unwrap(), Config::default());
    }

    #[test]
    fn every_key_is_read() {
        let c = FileConfig::from_toml(
            "[echo]\nipv4 = false\nipv6 = true\nanswer_any_destination = true\n\
             [ip]\nttl = 128\nhop_limit = 255\n[debug]\nlog_decisions = true\n\
             [unreachable]\nipv4 = false\nipv6 = true\npolicy = \"listed\"\n\
             closed_ports = [\"33434-33534\", 7]\nopen_ports = [33500]\nsuppressed = \"drop\"\n\
             reserved_sources_are_hosts = true\nipv4_error_size = 56\nipv6_error_size = 96\n",
        )
        .unwrap();
        let ports = c.port_bitmaps().unwrap();
        assert!(ports.is(33434, true) && ports.is(33534, true) && ports.is(7, true));
        assert!(!ports.is(33433, true) && !ports.is(33535, true) && !ports.is(8, true));
        assert!(ports.is(33500, false) && !ports.is(33501, false));
        let c = c.to_config().unwrap();
        assert!(!c.has(FLAG_UNREACH_V4) && c.has(FLAG_UNREACH_V6));
        assert!(!c.has(FLAG_PORTS_BY_SOCKET) && c.has(FLAG_DROP_SUPPRESSED));
        assert!(!c.has(FLAG_RESERVED_SOURCE_INVALID));
        assert_eq!((c.v4_error_size, c.v6_error_size), (56, 96));
        assert_eq!(c.ttl, 128);
        assert_eq!(c.hop_limit, 255);
        assert!(!c.has(FLAG_ECHO_V4));
        assert!(c.has(FLAG_ECHO_V6 | FLAG_ANSWER_ANY_DST | FLAG_LOG_DECISIONS | FLAG_ENABLED));
    }

    #[test]
    fn invalid_values_name_the_key() {
        for (text, expect) in [
            ("[ip]\nttl = 0", "ip.ttl: must be between 1 and 255, got 0"),
            ("[ip]\nttl = 256", "ip.ttl: must be between 1 and 255, got 256"),
            ("[ip]\nhop_limit = -1", "ip.hop_limit: must be between 1 and 255, got -1"),
            ("[unreachable]\nipv4_error_size = 55", "unreachable.ipv4_error_size: must be between 56 and 576, got 55"),
            ("[unreachable]\nipv4_error_size = 577", "unreachable.ipv4_error_size: must be between 56 and 576, got 577"),
            ("[unreachable]\nipv6_error_size = 95", "unreachable.ipv6_error_size: must be between 96 and 1280, got 95"),
            ("[unreachable]\nipv6_error_size = 1281", "unreachable.ipv6_error_size: must be between 96 and 1280, got 1281"),
            ("[unreachable]\nclosed_ports = [70000]", "unreachable.closed_ports[0]: port must be between 0 and 65535, got 70000"),
            ("[unreachable]\nopen_ports = [1, -1]", "unreachable.open_ports[1]: port must be between 0 and 65535, got -1"),
            ("[unreachable]\nclosed_ports = [\"9-3\"]", "unreachable.closed_ports[0]: range \"9-3\" starts after it ends"),
            ("[unreachable]\nclosed_ports = [\"x\"]", "unreachable.closed_ports[0]: expected a port or a range like \"33434-33534\", got \"x\""),
            ("[unreachable]\nclosed_ports = [\"1-99999\"]", "unreachable.closed_ports[0]: port must be between 0 and 65535, got 99999"),
        ] {
            let err = FileConfig::from_toml(text).unwrap().to_config().unwrap_err();
            assert_eq!(err.to_string(), expect);
        }
        for (text, expect) in [
            ("[echo]\nipv5 = true", "unknown field `ipv5`"),
            ("[echo]\nipv4 = 1", "invalid type"),
            ("[nope]", "unknown field `nope`"),
            ("[unreachable]\npolicy = \"maybe\"", "unknown variant `maybe`, expected `socket` or `listed`"),
            ("[unreachable]\nsuppressed = \"reject\"", "unknown variant `reject`, expected `pass` or `drop`"),
        ] {
            let err = format!("{:#}", FileConfig::from_toml(text).unwrap_err());
            assert!(err.contains(expect), "{text:?}: {err}");
        }
    }
}
