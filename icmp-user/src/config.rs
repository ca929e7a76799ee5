//! The TOML config file (see `icmpxdp.example.toml`) and its translation into
//! the [`Config`] the program reads. Invalid files are rejected here, with the
//! key and the reason, before anything reaches the kernel.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use icmp_common::{
    Config,
    config::{
        FLAG_ANSWER_ANY_DST, FLAG_DROP_SUPPRESSED, FLAG_ECHO_V4, FLAG_ECHO_V6, FLAG_ENABLED, FLAG_INBOUND_DROP,
        FLAG_INBOUND_LIMIT, FLAG_LOG_DECISIONS, FLAG_OVER_LIMIT_DROP, FLAG_PORTS_BY_SOCKET,
        FLAG_RESERVED_SOURCE_INVALID, FLAG_UNREACH_V4, FLAG_UNREACH_V6, PORT_SLOTS, PORT_WORDS, port_slot,
    },
    ratelimit::{DEFAULT_RATEMASK_V4, Limit},
};
use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub echo: Echo,
    pub unreachable: Unreachable,
    pub rate_limit: RateLimit,
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

/// A ratemask: a number (`0x1818`, `6168`) or a list of types and ranges
/// (`"0-1,3-127"`, `[3, 4, 11, 12]`).
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(untagged)]
pub enum Ratemask {
    Number(i64),
    Text(String),
    Types(Vec<i64>),
}

/// What happens to the frame whose reply or error a limit refused.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OverLimit {
    Drop,
    Pass,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimit {
    /// Per-source interval between messages, ms (net.ipv4.icmp_ratelimit,
    /// net.ipv6.icmp.ratelimit); 0: no per-source limit.
    pub ratelimit_ms: i64,
    /// Per-source burst (Linux's XRLIM_BURST_FACTOR, 6).
    pub burst: i64,
    /// Host-wide messages per second (net.ipv4.icmp_msgs_per_sec); 0: none.
    pub msgs_per_sec: i64,
    /// Host-wide burst (net.ipv4.icmp_msgs_burst).
    pub msgs_burst: i64,
    /// ICMP types limited (net.ipv4.icmp_ratemask, default 0x1818).
    pub ratemask: Ratemask,
    /// ICMPv6 types limited (net.ipv6.icmp.ratemask, default "0-1,3-127").
    pub ratemask_v6: Ratemask,
    pub over_limit: OverLimit,
    /// Sources are aggregated to these prefixes.
    pub ipv4_prefix: i64,
    pub ipv6_prefix: i64,
    /// Most sources with a bucket (LRU map entries; fixed when attaching).
    pub max_sources: i64,
    pub inbound_echo: InboundEcho,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            ratelimit_ms: 1000,
            burst: 6,
            msgs_per_sec: 1000,
            msgs_burst: 50,
            ratemask: Ratemask::Number(i64::from(DEFAULT_RATEMASK_V4)),
            ratemask_v6: Ratemask::Text("0-1,3-127".into()),
            over_limit: OverLimit::Drop,
            ipv4_prefix: 32,
            ipv6_prefix: 64,
            max_sources: 65536,
            inbound_echo: InboundEcho::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundEcho {
    /// Echo requests per second per source (like nftables `limit rate`);
    /// 0: no inbound limit.
    pub per_sec: i64,
    pub burst: i64,
    /// Over the limit: "drop" in XDP, or "pass" to the kernel.
    pub action: OverLimit,
}

impl Default for InboundEcho {
    fn default() -> Self {
        Self {
            per_sec: 0,
            burst: 100,
            action: OverLimit::Drop,
        }
    }
}

fn ranged(key: &str, v: i64, lo: i64, hi: i64) -> Result<i64> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        bail!("{key}: must be between {lo} and {hi}, got {v}")
    }
}

/// Parses a ratemask into bits (types 0..bits).
fn ratemask_bits(key: &str, m: &Ratemask, bits: usize) -> Result<Vec<bool>> {
    let mut out = vec![false; bits];
    let mut set = |t: i64, i: usize| -> Result<()> {
        match usize::try_from(t) {
            Ok(t) if t < bits => {
                out[t] = true;
                Ok(())
            }
            _ => bail!("{key}[{i}]: ICMP type must be between 0 and {}, got {t}", bits - 1),
        }
    };
    match m {
        Ratemask::Number(n) => {
            if *n < 0 || (bits <= 32 && *n > i64::from(u32::MAX)) {
                bail!("{key}: must be a {bits}-bit mask, got {n}");
            }
            for b in 0..bits.min(63) {
                if n >> b & 1 == 1 {
                    set(b as i64, 0)?;
                }
            }
        }
        Ratemask::Types(v) => {
            for (i, t) in v.iter().enumerate() {
                set(*t, i)?;
            }
        }
        Ratemask::Text(t) => {
            let t = t.trim();
            if let Some(hex) = t.strip_prefix("0x") {
                let n = i64::from_str_radix(hex, 16).map_err(|_| anyhow::anyhow!("{key}: bad hex mask {t:?}"))?;
                return ratemask_bits(key, &Ratemask::Number(n), bits);
            }
            for (i, part) in t.split(',').filter(|p| !p.trim().is_empty()).enumerate() {
                let bad = || anyhow::anyhow!("{key}: expected types and ranges like \"0-1,3-127\", got {t:?}");
                let (a, b) = part.split_once('-').unwrap_or((part, part));
                let a: i64 = a.trim().parse().map_err(|_| bad())?;
                let b: i64 = b.trim().parse().map_err(|_| bad())?;
                if a > b {
                    bail!("{key}: range {part:?} starts after it ends");
                }
                for x in a..=b {
                    set(x, i)?;
                }
            }
        }
    }
    Ok(out)
}

/// Everything the loader writes into the program: validated config.
#[derive(Clone, Debug)]
pub struct Settings {
    pub config: Config,
    pub ports: PortBitmaps,
    /// Entries of the per-source bucket map (fixed at load time).
    pub max_sources: u32,
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
        Self::load(Some(path), &[])
    }

    /// The file (if any) with `KEY=VALUE` overrides from the command line
    /// applied on top (`rate_limit.burst=10`, `unreachable.closed_ports=[7]`;
    /// a value that is not TOML is taken as a string).
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Self> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            None => String::new(),
        };
        let mut table: toml::Table = toml::from_str(&text)
            .with_context(|| format!("invalid config {}", path.map_or("".into(), |p| p.display().to_string())))?;
        for o in overrides {
            let (key, value) = o
                .split_once('=')
                .with_context(|| format!("--set {o:?}: expected KEY=VALUE, e.g. rate_limit.burst=10"))?;
            let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(value.to_owned()));
            let mut parts: Vec<&str> = key.trim().split('.').collect();
            let last = parts
                .pop()
                .filter(|l| !l.is_empty())
                .with_context(|| format!("--set {o:?}: empty key"))?;
            let mut t = &mut table;
            for part in parts {
                t = t
                    .entry(part)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .with_context(|| format!("--set {o:?}: `{part}` is not a section"))?;
            }
            t.insert(last.to_owned(), value);
        }
        let file: Self = toml::Value::Table(table)
            .try_into()
            .map_err(anyhow::Error::from)
            .with_context(|| match path {
                Some(p) => format!("invalid config {}", p.display()),
                None => "invalid --set".to_owned(),
            })?;
        Ok(file)
    }

    /// The port lists as the `PORTS` map holds them (validated).
    pub fn port_bitmaps(&self) -> Result<PortBitmaps> {
        let mut b = PortBitmaps(vec![0; PORT_SLOTS as usize]);
        parse_ports("unreachable.closed_ports", &self.unreachable.closed_ports, true, &mut b)?;
        parse_ports("unreachable.open_ports", &self.unreachable.open_ports, false, &mut b)?;
        Ok(b)
    }

    /// Validates everything and converts to what the loader writes.
    pub fn settings(&self) -> Result<Settings> {
        let r = &self.rate_limit;
        let max_sources = ranged("rate_limit.max_sources", r.max_sources, 1, 1 << 24)? as u32;
        Ok(Settings {
            config: self.to_config()?,
            ports: self.port_bitmaps()?,
            max_sources,
        })
    }

    /// Validates everything and converts to what the program reads.
    pub fn to_config(&self) -> Result<Config> {
        self.port_bitmaps()?;
        let r = &self.rate_limit;
        let interval_ms = ranged("rate_limit.ratelimit_ms", r.ratelimit_ms, 0, 3_600_000)?;
        let burst = ranged("rate_limit.burst", r.burst, 1, 1_000_000)? as u32;
        let per_sec = ranged("rate_limit.msgs_per_sec", r.msgs_per_sec, 0, 100_000_000)? as u32;
        let msgs_burst = ranged("rate_limit.msgs_burst", r.msgs_burst, 1, 100_000_000)? as u32;
        let v4_prefix = ranged("rate_limit.ipv4_prefix", r.ipv4_prefix, 0, 32)? as u8;
        let v6_prefix = ranged("rate_limit.ipv6_prefix", r.ipv6_prefix, 0, 128)? as u8;
        let in_rate = ranged(
            "rate_limit.inbound_echo.per_sec",
            r.inbound_echo.per_sec,
            0,
            100_000_000,
        )? as u32;
        let in_burst = ranged("rate_limit.inbound_echo.burst", r.inbound_echo.burst, 1, 100_000_000)? as u32;
        ranged("rate_limit.max_sources", r.max_sources, 1, 1 << 24)?;
        let mut ratemask_v4 = 0u32;
        for (t, on) in ratemask_bits("rate_limit.ratemask", &r.ratemask, 32)?
            .into_iter()
            .enumerate()
        {
            if on {
                ratemask_v4 |= 1 << t;
            }
        }
        let mut ratemask_v6 = [0u32; 8];
        for (t, on) in ratemask_bits("rate_limit.ratemask_v6", &r.ratemask_v6, 256)?
            .into_iter()
            .enumerate()
        {
            if on {
                ratemask_v6[t / 32] |= 1 << (t % 32);
            }
        }
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
            (r.over_limit == OverLimit::Drop, FLAG_OVER_LIMIT_DROP),
            (in_rate > 0, FLAG_INBOUND_LIMIT),
            (r.inbound_echo.action == OverLimit::Drop, FLAG_INBOUND_DROP),
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
            ratemask_v4,
            ratemask_v6,
            per_source: Limit::new(interval_ms as u64 * 1_000_000, burst),
            global: Limit::per_second(per_sec, msgs_burst),
            inbound: if in_rate == 0 {
                Limit::UNLIMITED
            } else {
                Limit::per_second(in_rate, in_burst)
            },
            v4_prefix,
            v6_prefix,
            _pad2: [0; 6],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_program_defaults() {
        assert_eq!(FileConfig::default().to_config().unwrap(), Config::default());
        assert_eq!(
            FileConfig::from_toml("").unwrap().to_config().unwrap(),
            Config::default()
        );
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

        let r = FileConfig::from_toml(
            "[rate_limit]\nratelimit_ms = 250\nburst = 3\nmsgs_per_sec = 10\nmsgs_burst = 4\n\
             ratemask = [0, 3]\nratemask_v6 = \"1,128-129\"\nover_limit = \"pass\"\n\
             ipv4_prefix = 24\nipv6_prefix = 48\nmax_sources = 100\n\
             [rate_limit.inbound_echo]\nper_sec = 20\nburst = 5\naction = \"pass\"\n",
        )
        .unwrap();
        let s = r.settings().unwrap();
        let rl = s.config;
        assert_eq!(s.max_sources, 100);
        assert_eq!(rl.per_source, Limit::new(250_000_000, 3));
        assert_eq!(rl.global, Limit::new(100_000_000, 4));
        assert_eq!(rl.inbound, Limit::new(50_000_000, 5));
        assert_eq!(rl.ratemask_v4, 0b1001);
        assert_eq!(rl.ratemask_v6[0], 0b10);
        assert_eq!(rl.ratemask_v6[4], 0b11);
        assert_eq!((rl.v4_prefix, rl.v6_prefix), (24, 48));
        assert!(!rl.has(FLAG_OVER_LIMIT_DROP) && rl.has(FLAG_INBOUND_LIMIT) && !rl.has(FLAG_INBOUND_DROP));
        // Linux's forms of the same masks.
        let hex = FileConfig::from_toml("[rate_limit]\nratemask = \"0x1818\"\n")
            .unwrap()
            .to_config()
            .unwrap();
        assert_eq!(hex.ratemask_v4, DEFAULT_RATEMASK_V4);
        let dec = FileConfig::from_toml("[rate_limit]\nratemask = 6168\n")
            .unwrap()
            .to_config()
            .unwrap();
        assert_eq!(dec.ratemask_v4, DEFAULT_RATEMASK_V4);
        assert_eq!(
            FileConfig::default().to_config().unwrap().ratemask_v6,
            icmp_common::ratelimit::DEFAULT_RATEMASK_V6
        );
        assert_eq!(c.ttl, 128);
        assert_eq!(c.hop_limit, 255);
        assert!(!c.has(FLAG_ECHO_V4));
        assert!(c.has(FLAG_ECHO_V6 | FLAG_ANSWER_ANY_DST | FLAG_LOG_DECISIONS | FLAG_ENABLED));
    }

    #[test]
    fn command_line_overrides_win() {
        let dir = std::env::temp_dir().join(format!("icmpxdp-cfg-{}", std::process::id()));
        std::fs::write(&dir, "[ip]\nttl = 10\n[rate_limit]\nburst = 3\n").unwrap();
        let f = FileConfig::load(
            Some(&dir),
            &[
                "ip.ttl=20".into(),
                "unreachable.closed_ports=[\"1-2\", 9]".into(),
                "unreachable.policy=listed".into(),
            ],
        )
        .unwrap();
        std::fs::remove_file(&dir).unwrap();
        let s = f.settings().unwrap();
        assert_eq!(s.config.ttl, 20, "--set wins over the file");
        assert_eq!(s.config.per_source.burst(), 3, "the file's other keys stay");
        assert!(s.ports.is(2, true) && s.ports.is(9, true) && !s.ports.is(3, true));
        assert!(!s.config.has(FLAG_PORTS_BY_SOCKET), "bare words are strings");
        let err = FileConfig::load(None, &["ip.ttl".into()]).unwrap_err();
        assert!(err.to_string().contains("expected KEY=VALUE"), "{err}");
        let err = format!("{:#}", FileConfig::load(None, &["ip.tll=3".into()]).unwrap_err());
        assert!(err.contains("unknown field `tll`"), "{err}");
        let err = FileConfig::load(None, &["ip.ttl=0".into()])
            .unwrap()
            .settings()
            .unwrap_err();
        assert_eq!(err.to_string(), "ip.ttl: must be between 1 and 255, got 0");
    }

    #[test]
    fn invalid_values_name_the_key() {
        for (text, expect) in [
            ("[ip]\nttl = 0", "ip.ttl: must be between 1 and 255, got 0"),
            ("[ip]\nttl = 256", "ip.ttl: must be between 1 and 255, got 256"),
            (
                "[ip]\nhop_limit = -1",
                "ip.hop_limit: must be between 1 and 255, got -1",
            ),
            (
                "[unreachable]\nipv4_error_size = 55",
                "unreachable.ipv4_error_size: must be between 56 and 576, got 55",
            ),
            (
                "[unreachable]\nipv4_error_size = 577",
                "unreachable.ipv4_error_size: must be between 56 and 576, got 577",
            ),
            (
                "[unreachable]\nipv6_error_size = 95",
                "unreachable.ipv6_error_size: must be between 96 and 1280, got 95",
            ),
            (
                "[unreachable]\nipv6_error_size = 1281",
                "unreachable.ipv6_error_size: must be between 96 and 1280, got 1281",
            ),
            (
                "[unreachable]\nclosed_ports = [70000]",
                "unreachable.closed_ports[0]: port must be between 0 and 65535, got 70000",
            ),
            (
                "[unreachable]\nopen_ports = [1, -1]",
                "unreachable.open_ports[1]: port must be between 0 and 65535, got -1",
            ),
            (
                "[unreachable]\nclosed_ports = [\"9-3\"]",
                "unreachable.closed_ports[0]: range \"9-3\" starts after it ends",
            ),
            (
                "[unreachable]\nclosed_ports = [\"x\"]",
                "unreachable.closed_ports[0]: expected a port or a range like \"33434-33534\", got \"x\"",
            ),
            (
                "[unreachable]\nclosed_ports = [\"1-99999\"]",
                "unreachable.closed_ports[0]: port must be between 0 and 65535, got 99999",
            ),
            (
                "[rate_limit]\nburst = 0",
                "rate_limit.burst: must be between 1 and 1000000, got 0",
            ),
            (
                "[rate_limit]\nratelimit_ms = -5",
                "rate_limit.ratelimit_ms: must be between 0 and 3600000, got -5",
            ),
            (
                "[rate_limit]\nmsgs_burst = 0",
                "rate_limit.msgs_burst: must be between 1 and 100000000, got 0",
            ),
            (
                "[rate_limit]\nmsgs_per_sec = -1",
                "rate_limit.msgs_per_sec: must be between 0 and 100000000, got -1",
            ),
            (
                "[rate_limit]\nipv4_prefix = 33",
                "rate_limit.ipv4_prefix: must be between 0 and 32, got 33",
            ),
            (
                "[rate_limit]\nipv6_prefix = 129",
                "rate_limit.ipv6_prefix: must be between 0 and 128, got 129",
            ),
            (
                "[rate_limit]\nmax_sources = 0",
                "rate_limit.max_sources: must be between 1 and 16777216, got 0",
            ),
            (
                "[rate_limit]\nratemask = [3, 40]",
                "rate_limit.ratemask[1]: ICMP type must be between 0 and 31, got 40",
            ),
            (
                "[rate_limit]\nratemask = -1",
                "rate_limit.ratemask: must be a 32-bit mask, got -1",
            ),
            (
                "[rate_limit]\nratemask_v6 = \"0-300\"",
                "rate_limit.ratemask_v6[0]: ICMP type must be between 0 and 255, got 256",
            ),
            (
                "[rate_limit]\nratemask_v6 = \"x\"",
                "rate_limit.ratemask_v6: expected types and ranges like \"0-1,3-127\", got \"x\"",
            ),
            (
                "[rate_limit.inbound_echo]\nburst = 0",
                "rate_limit.inbound_echo.burst: must be between 1 and 100000000, got 0",
            ),
            (
                "[rate_limit.inbound_echo]\nper_sec = -3",
                "rate_limit.inbound_echo.per_sec: must be between 0 and 100000000, got -3",
            ),
        ] {
            let err = FileConfig::from_toml(text).unwrap().to_config().unwrap_err();
            assert_eq!(err.to_string(), expect);
        }
        for (text, expect) in [
            ("[echo]\nipv5 = true", "unknown field `ipv5`"),
            ("[echo]\nipv4 = 1", "invalid type"),
            ("[nope]", "unknown field `nope`"),
            (
                "[unreachable]\npolicy = \"maybe\"",
                "unknown variant `maybe`, expected `socket` or `listed`",
            ),
            (
                "[unreachable]\nsuppressed = \"reject\"",
                "unknown variant `reject`, expected `pass` or `drop`",
            ),
            (
                "[rate_limit]\nover_limit = \"maybe\"",
                "unknown variant `maybe`, expected `drop` or `pass`",
            ),
            ("[rate_limit]\nrate = 5", "unknown field `rate`"),
        ] {
            let err = format!("{:#}", FileConfig::from_toml(text).unwrap_err());
            assert!(err.contains(expect), "{text:?}: {err}");
        }
    }
}
