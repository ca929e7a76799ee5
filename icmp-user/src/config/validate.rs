//! Validation: the file's values checked (every message names the key, the
//! value and the reason) and turned into the [`Settings`] the loader writes
//! into the program. Nothing invalid gets past [`FileConfig::settings`].

use anyhow::{Result, bail};
use icmp_common::{
    Config,
    config::{
        FLAG_ADDRESS_MASK_ANSWER, FLAG_ANSWER_ANY_DST, FLAG_ANSWER_PREFIXES, FLAG_DROP_SUPPRESSED, FLAG_ECHO_V4,
        FLAG_ECHO_V6, FLAG_ENABLED, FLAG_INBOUND_DROP, FLAG_INBOUND_LIMIT, FLAG_LOG_DECISIONS, FLAG_OVER_LIMIT_DROP,
        FLAG_PORTS_BY_SOCKET, FLAG_PROTO_UNREACH, FLAG_RESERVED_SOURCE_INVALID, FLAG_ROUTER_FRAG_NEEDED,
        FLAG_ROUTER_INBOUND_IFADDR, FLAG_ROUTER_TIME_EXCEEDED, FLAG_SHADOW, FLAG_TIMESTAMP_ANSWER, FLAG_TYPE_POLICY,
        FLAG_UNREACH_V4, FLAG_UNREACH_V6,
    },
    ratelimit::Limit,
};

use super::{
    AnswerPrefixes, FileConfig, OverLimit, PortBitmaps, PortPolicy, QueryAction, Ratemask, ResponderMode,
    SuppressedAction,
};

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
    /// `echo.answer_prefixes` for the LPM tries.
    pub answer_prefixes: AnswerPrefixes,
    /// Entries of the per-source bucket map (fixed at load time).
    pub max_sources: u32,
}

fn size_in(key: &str, v: i64, min: u16, max: u16) -> Result<u16> {
    match u16::try_from(v) {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => bail!("{key}: must be between {min} and {max}, got {v}"),
    }
}

fn hop_count(key: &str, v: i64) -> Result<u8> {
    match u8::try_from(v) {
        Ok(n) if n >= 1 => Ok(n),
        _ => bail!("{key}: must be between 1 and 255, got {v}"),
    }
}

/// ICMPv6 types RFC 4890 §4.3.1 says must not be dropped, with their names.
const MUST_NOT_DROP_V6: [(i64, &str); 9] = [
    (1, "destination unreachable"),
    (2, "packet too big"),
    (3, "time exceeded"),
    (4, "parameter problem"),
    (133, "router solicitation"),
    (134, "router advertisement"),
    (135, "neighbor solicitation"),
    (136, "neighbor advertisement"),
    (137, "redirect"),
];

/// TAI − UTC as the kernel keeps it, in ns (a whole number of seconds;
/// 0 where nothing set it).
fn tai_offset_ns() -> u64 {
    let read = |clock| {
        let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime writes into the timespec we own.
        unsafe { libc::clock_gettime(clock, &mut t) };
        t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128
    };
    let diff = read(libc::CLOCK_TAI) - read(libc::CLOCK_REALTIME);
    // Round to whole seconds: the two reads are a few hundred ns apart.
    (((diff + 500_000_000).div_euclid(1_000_000_000)) * 1_000_000_000).max(0) as u64
}

impl FileConfig {
    /// `protocol_unreachable.open_protocols` as a bitmap.
    fn open_protocols(&self) -> Result<[u32; 8]> {
        let mut bits = [0u32; 8];
        for (i, p) in self.protocol_unreachable.open_protocols.iter().enumerate() {
            let p = u8::try_from(*p).map_err(|_| {
                anyhow::anyhow!("protocol_unreachable.open_protocols[{i}]: protocol must be between 0 and 255, got {p}")
            })?;
            bits[usize::from(p >> 5)] |= 1 << (p & 31);
        }
        Ok(bits)
    }

    /// `[policy]` (and `timestamp.action`/`address_mask.action = "drop"`) as
    /// type bitmaps.
    fn drop_types(&self) -> Result<([u32; 8], [u32; 8])> {
        let p = &self.policy;
        let mut v4 = [0u32; 8];
        let mut v6 = [0u32; 8];
        let set = |bits: &mut [u32; 8], key: &str, i: usize, t: i64| -> Result<()> {
            match u8::try_from(t) {
                Ok(t) => {
                    bits[usize::from(t >> 5)] |= 1 << (t & 31);
                    Ok(())
                }
                Err(_) => bail!("{key}[{i}]: ICMP type must be between 0 and 255, got {t}"),
            }
        };
        for (i, t) in p.drop_ipv4_types.iter().enumerate() {
            set(&mut v4, "policy.drop_ipv4_types", i, *t)?;
        }
        for (i, t) in p.drop_ipv6_types.iter().enumerate() {
            if let Some((_, name)) = MUST_NOT_DROP_V6.iter().find(|(k, _)| k == t)
                && !p.force
            {
                bail!(
                    "policy.drop_ipv6_types[{i}]: ICMPv6 type {t} ({name}) must not be dropped \
                     (RFC 4890 §4.3.1: IPv6 does not work without it); set policy.force = true to drop it anyway"
                );
            }
            set(&mut v6, "policy.drop_ipv6_types", i, *t)?;
        }
        if self.timestamp.action == QueryAction::Drop {
            v4[0] |= 1 << 13;
        }
        if self.address_mask.action == QueryAction::Drop {
            v4[0] |= 1 << 17;
        }
        Ok((v4, v6))
    }

    /// Validates everything and converts to what the loader writes.
    pub fn settings(&self) -> Result<Settings> {
        let r = &self.rate_limit;
        let max_sources = ranged("rate_limit.max_sources", r.max_sources, 1, 1 << 24)? as u32;
        let mut config = self.to_config()?;
        config.tai_offset_ns = tai_offset_ns();
        Ok(Settings {
            config,
            ports: self.port_bitmaps()?,
            answer_prefixes: self.answer_prefixes()?,
            max_sources,
        })
    }

    /// Validates everything and converts to what the program reads.
    pub fn to_config(&self) -> Result<Config> {
        self.port_bitmaps()?;
        let answer_prefixes = self.answer_prefixes()?;
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
            (!answer_prefixes.is_empty(), FLAG_ANSWER_PREFIXES),
            (self.mode == ResponderMode::Shadow, FLAG_SHADOW),
            (self.timestamp.action == QueryAction::Answer, FLAG_TIMESTAMP_ANSWER),
            (
                self.address_mask.action == QueryAction::Answer,
                FLAG_ADDRESS_MASK_ANSWER,
            ),
            (self.protocol_unreachable.enabled, FLAG_PROTO_UNREACH),
            (self.router.time_exceeded, FLAG_ROUTER_TIME_EXCEEDED),
            (self.router.frag_needed, FLAG_ROUTER_FRAG_NEEDED),
            (self.router.errors_use_inbound_ifaddr, FLAG_ROUTER_INBOUND_IFADDR),
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
        let (drop_types_v4, drop_types_v6) = self.drop_types()?;
        if drop_types_v4 != [0; 8] || drop_types_v6 != [0; 8] {
            flags |= FLAG_TYPE_POLICY;
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
            tai_offset_ns: 0,
            drop_types_v4,
            drop_types_v6,
            open_protocols: self.open_protocols()?,
            _pad3: [0; 48],
        })
    }
}

#[cfg(test)]
mod tests {
    use icmp_common::ratelimit::DEFAULT_RATEMASK_V4;

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
    fn shadow_mode_is_a_flag() {
        let shadow = FileConfig::from_toml("mode = \"shadow\"\n")
            .unwrap()
            .to_config()
            .unwrap();
        assert!(shadow.has(FLAG_SHADOW));
        assert!(!FileConfig::default().to_config().unwrap().has(FLAG_SHADOW));
        let err = format!("{:#}", FileConfig::from_toml("mode = \"dry\"\n").unwrap_err());
        assert!(
            err.contains("unknown variant `dry`, expected `active` or `shadow`"),
            "{err}"
        );
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
