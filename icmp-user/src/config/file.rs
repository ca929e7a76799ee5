//! The TOML config file as written (see `icmpxdp.example.toml`): the serde
//! schema, its defaults, and `--set KEY=VALUE` overrides applied on top.
//!
//! Nothing here checks a value's range or turns it into what the program
//! reads: that is [`super::validate`], so every message about a value comes
//! from one place.

use std::path::Path;

use anyhow::{Context as _, Result};
use icmp_common::{Config, ratelimit::DEFAULT_RATEMASK_V4};
use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// `active`, or `shadow`: decide, rate-limit and count as in active mode,
    /// but pass every frame to the kernel unchanged (a safe rollout).
    pub mode: ResponderMode,
    pub echo: Echo,
    pub timestamp: Timestamp,
    pub address_mask: AddressMask,
    pub router: Router,
    pub protocol_unreachable: ProtocolUnreachable,
    pub policy: Policy,
    pub unreachable: Unreachable,
    pub rate_limit: RateLimit,
    pub ip: Ip,
    pub debug: Debug,
}

/// Whether the responder acts on its decisions.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ResponderMode {
    #[default]
    Active,
    /// Decides and counts, passes every frame.
    Shadow,
}

/// What XDP does with a query type it could answer.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum QueryAction {
    /// Answered in XDP.
    Answer,
    /// Left to the kernel (Linux answers timestamps by default).
    #[default]
    Pass,
    /// Dropped in XDP (addressed to us).
    Drop,
}

/// `[timestamp]`: ICMP Timestamp requests (13 → 14).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Timestamp {
    pub action: QueryAction,
}

/// `[address_mask]`: ICMP Address Mask requests (17 → 18). Linux ignores
/// them (they reach no socket); answering declares this host an authority
/// for its masks (RFC 1122 §3.2.2.9), so the default leaves them alone.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AddressMask {
    pub action: QueryAction,
}

/// `[router]`: errors a router sends about datagrams it would forward
/// (asked of the kernel's FIB). Both off by default.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Router {
    /// Time Exceeded (11/0) for a datagram with TTL ≤ 1.
    pub time_exceeded: bool,
    /// Fragmentation Needed (3/4) / Packet Too Big (2/0) for a datagram
    /// that exceeds the egress MTU and may not be fragmented.
    pub frag_needed: bool,
    /// IPv4 router errors from the inbound interface's address
    /// (`net.ipv4.icmp_errors_use_inbound_ifaddr`).
    pub errors_use_inbound_ifaddr: bool,
}

/// `[protocol_unreachable]`: errors for protocols nothing here handles.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProtocolUnreachable {
    pub enabled: bool,
    /// Protocols never answered with an error (plus every protocol with a
    /// raw socket open).
    pub open_protocols: Vec<i64>,
}

impl Default for ProtocolUnreachable {
    fn default() -> Self {
        Self {
            enabled: false,
            open_protocols: vec![1, 2, 4, 6, 17, 41, 47, 50, 51, 58, 132, 136],
        }
    }
}

/// `[policy]`: ICMP types addressed to us to drop in XDP.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    pub drop_ipv4_types: Vec<i64>,
    pub drop_ipv6_types: Vec<i64>,
    /// Drop even the ICMPv6 types RFC 4890 §4.3.1 says must not be dropped.
    pub force: bool,
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
#[serde(untagged, expecting = "a port number (53) or a range as a string (\"33434-33534\")")]
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
#[serde(
    untagged,
    expecting = "a ratemask: a number (6168 or \"0x1818\"), a string of types and ranges (\"0-1,3-127\") or a list of types ([3, 4, 11, 12])"
)]
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Echo {
    /// Answer IPv4 echo requests (8 → 0).
    pub ipv4: bool,
    /// Answer ICMPv6 echo requests (128 → 129).
    pub ipv6: bool,
    /// Answer echo requests for any unicast destination, not only the
    /// interface's own addresses. Echo only: errors are never sent for a
    /// destination that is not the host's.
    pub answer_any_destination: bool,
    /// Also answer echo requests to these prefixes ("192.0.2.0/24",
    /// "2001:db8:1::/48", or a single address): VIPs behind an anycast or a
    /// load balancer. Echo only, like `answer_any_destination`.
    pub answer_prefixes: Vec<String>,
}

impl Default for Echo {
    fn default() -> Self {
        Self {
            ipv4: true,
            ipv6: true,
            answer_any_destination: false,
            answer_prefixes: Vec::new(),
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
        let file_alone_ok = toml::from_str::<Self>(&text).is_ok();
        let file: Self = toml::Value::Table(table)
            .try_into()
            .map_err(anyhow::Error::from)
            .with_context(|| match path {
                // Blame the --set when the file alone is valid.
                Some(p) if !file_alone_ok => format!("invalid config {}", p.display()),
                _ => format!("invalid --set {}", overrides.join(" --set ")),
            })?;
        Ok(file)
    }
}
