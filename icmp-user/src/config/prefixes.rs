//! `echo.answer_prefixes`: the destinations, beyond the interface's own,
//! whose echo requests are answered — as the `ANSWER_PREFIXES_V4` / `_V6`
//! LPM tries hold them.

use std::net::IpAddr;

use anyhow::{Result, bail};
use icmp_common::config::MAX_ANSWER_PREFIXES;

use super::FileConfig;

/// Validated prefixes, host bits clear, in the order given (duplicates once).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnswerPrefixes {
    pub v4: Vec<([u8; 4], u8)>,
    pub v6: Vec<([u8; 16], u8)>,
}

impl AnswerPrefixes {
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

/// `addr` with every bit past `len` cleared.
fn masked<const N: usize>(mut addr: [u8; N], len: u8) -> [u8; N] {
    for (i, b) in addr.iter_mut().enumerate() {
        let keep = (usize::from(len)).saturating_sub(i * 8).min(8);
        *b &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
    addr
}

fn parse_one(key: &str, text: &str) -> Result<IpPrefix> {
    let bad = || {
        anyhow::anyhow!(
            "{key}: expected an address or a prefix like \"192.0.2.0/24\" or \"2001:db8:1::/48\", got {text:?}"
        )
    };
    let (addr, len) = match text.trim().split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text.trim(), None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => bail!("{key}: prefix length must be between 0 and {max}, got {l:?} in {text:?}"),
        },
    };
    Ok(match addr {
        IpAddr::V4(a) => IpPrefix::V4(
            host_bits_clear(key, text, a.octets(), len, |m| std::net::Ipv4Addr::from(m).to_string())?,
            len,
        ),
        IpAddr::V6(a) => IpPrefix::V6(
            host_bits_clear(key, text, a.octets(), len, |m| std::net::Ipv6Addr::from(m).to_string())?,
            len,
        ),
    })
}

/// `addr` if no bit past `len` is set; else an error that says which prefix
/// was probably meant.
fn host_bits_clear<const N: usize>(
    key: &str,
    text: &str,
    addr: [u8; N],
    len: u8,
    show: impl Fn([u8; N]) -> String,
) -> Result<[u8; N]> {
    let m = masked(addr, len);
    if m != addr {
        bail!(
            "{key}: {text:?} has host bits set past /{len} (did you mean \"{}/{len}\"?)",
            show(m)
        );
    }
    Ok(m)
}

enum IpPrefix {
    V4([u8; 4], u8),
    V6([u8; 16], u8),
}

impl FileConfig {
    /// `echo.answer_prefixes`, validated.
    pub fn answer_prefixes(&self) -> Result<AnswerPrefixes> {
        let mut out = AnswerPrefixes::default();
        for (i, text) in self.echo.answer_prefixes.iter().enumerate() {
            match parse_one(&format!("echo.answer_prefixes[{i}]"), text)? {
                IpPrefix::V4(a, l) if !out.v4.contains(&(a, l)) => out.v4.push((a, l)),
                IpPrefix::V6(a, l) if !out.v6.contains(&(a, l)) => out.v6.push((a, l)),
                _ => {}
            }
        }
        for (family, n) in [("IPv4", out.v4.len()), ("IPv6", out.v6.len())] {
            if n > MAX_ANSWER_PREFIXES as usize {
                bail!("echo.answer_prefixes: at most {MAX_ANSWER_PREFIXES} {family} prefixes, got {n}");
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Result<AnswerPrefixes> {
        let mut f = FileConfig::default();
        f.echo.answer_prefixes = list.iter().map(|s| (*s).to_owned()).collect();
        f.answer_prefixes()
    }

    #[test]
    fn prefixes_parse_and_validate() {
        let p = parse(&["192.0.2.0/24", "2001:db8:1::/48", "198.51.100.7", "192.0.2.0/24"]).unwrap();
        assert_eq!(p.v4, vec![([192, 0, 2, 0], 24), ([198, 51, 100, 7], 32)]);
        let mut v6 = [0u8; 16];
        v6[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 1]);
        assert_eq!(p.v6, vec![(v6, 48)]);
        for (list, expect) in [
            (
                "192.0.2.1/24",
                "echo.answer_prefixes[0]: \"192.0.2.1/24\" has host bits set past /24 (did you mean \"192.0.2.0/24\"?)",
            ),
            (
                "192.0.2.0/33",
                "echo.answer_prefixes[0]: prefix length must be between 0 and 32, got \"33\" in \"192.0.2.0/33\"",
            ),
            (
                "vip",
                "echo.answer_prefixes[0]: expected an address or a prefix like \"192.0.2.0/24\" or \"2001:db8:1::/48\", got \"vip\"",
            ),
        ] {
            assert_eq!(parse(&[list]).unwrap_err().to_string(), expect);
        }
    }
}
