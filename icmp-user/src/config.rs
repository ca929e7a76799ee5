//! The TOML config file (see `icmpxdp.example.toml`) and its translation into
//! the [`Config`] the program reads. Invalid files are rejected here, with the
//! key and the reason, before anything reaches the kernel.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use icmp_common::{
    Config,
    config::{FLAG_ANSWER_ANY_DST, FLAG_ECHO_V4, FLAG_ECHO_V6, FLAG_ENABLED, FLAG_LOG_DECISIONS},
};
use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub echo: Echo,
    pub ip: Ip,
    pub debug: Debug,
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

    /// Validates and converts to what the program reads.
    pub fn to_config(&self) -> Result<Config> {
        let mut flags = FLAG_ENABLED;
        for (on, flag) in [
            (self.echo.ipv4, FLAG_ECHO_V4),
            (self.echo.ipv6, FLAG_ECHO_V6),
            (self.echo.answer_any_destination, FLAG_ANSWER_ANY_DST),
            (self.debug.log_decisions, FLAG_LOG_DECISIONS),
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
             [ip]\nttl = 128\nhop_limit = 255\n[debug]\nlog_decisions = true\n",
        )
        .unwrap()
        .to_config()
        .unwrap();
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
        ] {
            let err = FileConfig::from_toml(text).unwrap().to_config().unwrap_err();
            assert_eq!(err.to_string(), expect);
        }
        for (text, expect) in [
            ("[echo]\nipv5 = true", "unknown field `ipv5`"),
            ("[echo]\nipv4 = 1", "invalid type"),
            ("[nope]", "unknown field `nope`"),
        ] {
            let err = format!("{:#}", FileConfig::from_toml(text).unwrap_err());
            assert!(err.contains(expect), "{text:?}: {err}");
        }
    }
}
