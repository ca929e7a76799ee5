//! `icmpxdp top`'s tally: captured decisions (refusals by a rate limit and
//! messages sent) counted per source, or per source prefix as the limiter
//! aggregates sources (`rate_limit.ipv4_prefix` / `ipv6_prefix`), and
//! ranked by refusals.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use icmp_common::{Reason, capture::CaptureRecord};

/// What one source did in an interval.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SourceCounts {
    pub refused: u64,
    pub sent: u64,
}

/// Verdicts that are a refusal by a rate limit.
pub const REFUSALS: [Reason; 3] = [
    Reason::RateLimitedPerSource,
    Reason::RateLimitedGlobal,
    Reason::RateLimitedInbound,
];

/// Verdicts that sent a message.
pub const SENT: [Reason; 5] = [
    Reason::EchoAnswered,
    Reason::UnreachableSent,
    Reason::TimestampAnswered,
    Reason::ProtocolUnreachableSent,
    Reason::AddressMaskAnswered,
];

/// The source address of a captured frame as received (after up to two
/// VLAN tags), if it is IPv4 or IPv6 and long enough.
pub fn source_of(r: &CaptureRecord) -> Option<IpAddr> {
    let f = &r.frame_in[..(r.caplen_in as usize).min(r.frame_in.len())];
    let (ethertype, l3) = icmp_common::capture::l3_of(f)?;
    match ethertype {
        0x0800 => {
            let b: [u8; 4] = f.get(l3 + 12..l3 + 16)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        0x86dd => {
            let b: [u8; 16] = f.get(l3 + 8..l3 + 24)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// `a` as the prefix the limiter would count it under, written `a/len`.
pub fn prefix_of(a: IpAddr, v4_len: u8, v6_len: u8) -> String {
    match a {
        IpAddr::V4(v4) => {
            let len = v4_len.min(32);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            format!("{}/{len}", Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let len = v6_len.min(128);
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            format!("{}/{len}", Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// Counts per key (a source or a prefix).
#[derive(Debug, Default)]
pub struct Tally {
    pub by_key: HashMap<String, SourceCounts>,
}

impl Tally {
    /// Counts one captured decision under `key` (refusal, sent, or neither).
    pub fn add(&mut self, key: String, reason: Reason) {
        let c = self.by_key.entry(key).or_default();
        if REFUSALS.contains(&reason) {
            c.refused += 1;
        } else if SENT.contains(&reason) {
            c.sent += 1;
        }
    }

    /// The `n` keys with the most refusals (then most sent, then by name).
    pub fn top(&self, n: usize) -> Vec<(String, SourceCounts)> {
        let mut v: Vec<_> = self.by_key.iter().map(|(k, c)| (k.clone(), *c)).collect();
        v.sort_by(|a, b| {
            b.1.refused
                .cmp(&a.1.refused)
                .then(b.1.sent.cmp(&a.1.sent))
                .then(a.0.cmp(&b.0))
        });
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_as_the_limiter_counts() {
        assert_eq!(prefix_of("192.0.2.77".parse().unwrap(), 24, 64), "192.0.2.0/24");
        assert_eq!(prefix_of("192.0.2.77".parse().unwrap(), 32, 64), "192.0.2.77/32");
        assert_eq!(prefix_of("192.0.2.77".parse().unwrap(), 0, 64), "0.0.0.0/0");
        assert_eq!(
            prefix_of("2001:db8:1:2:3::9".parse().unwrap(), 32, 48),
            "2001:db8:1::/48"
        );
    }

    #[test]
    fn ranked_by_refusals() {
        let mut t = Tally::default();
        for _ in 0..3 {
            t.add("a".into(), Reason::RateLimitedPerSource);
        }
        t.add("b".into(), Reason::RateLimitedGlobal);
        for _ in 0..5 {
            t.add("b".into(), Reason::UnreachableSent);
        }
        t.add("c".into(), Reason::EchoAnswered);
        let top = t.top(2);
        assert_eq!(top[0], ("a".into(), SourceCounts { refused: 3, sent: 0 }));
        assert_eq!(top[1], ("b".into(), SourceCounts { refused: 1, sent: 5 }));
    }

    #[test]
    fn sources_behind_vlan_tags() {
        let mut r: CaptureRecord = unsafe { std::mem::zeroed() };
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x81, 0x00, 0, 42, 0x08, 0x00]);
        let mut ip = vec![0x45u8; 20];
        ip[12..16].copy_from_slice(&[198, 51, 100, 7]);
        f.extend_from_slice(&ip);
        r.frame_in[..f.len()].copy_from_slice(&f);
        r.caplen_in = f.len() as u32;
        assert_eq!(source_of(&r), Some("198.51.100.7".parse().unwrap()));
    }
}
