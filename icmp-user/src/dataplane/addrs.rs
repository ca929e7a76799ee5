//! The interface's own addresses, read through netlink (glibc's getifaddrs
//! issues RTM_GETADDR), as the [`AddrSet`] the program scans.

use std::net::{Ipv4Addr, Ipv6Addr};

use anyhow::{Context as _, Result};
use icmp_common::AddrSet;
use nix::ifaddrs::getifaddrs;

/// Addresses of `iface`, plus the addresses that did not fit (warned about).
pub struct InterfaceAddrs {
    pub set: AddrSet,
    pub dropped: Vec<String>,
}

pub fn interface_addrs(iface: &str) -> Result<InterfaceAddrs> {
    if nix::net::if_::if_nametoindex(iface).is_err() {
        anyhow::bail!("interface `{iface}` does not exist in this network namespace; list interfaces with `ip link`");
    }
    let mut set = AddrSet::default();
    let mut dropped = Vec::new();
    for ifa in getifaddrs().context("getifaddrs (netlink RTM_GETADDR)")? {
        if ifa.interface_name != iface {
            continue;
        }
        let Some(addr) = ifa.address else { continue };
        if let Some(sin) = addr.as_sockaddr_in() {
            let ip = sin.ip();
            if !set.push_v4(ip.octets()) {
                dropped.push(ip.to_string());
                continue;
            }
            let mask = ifa
                .netmask
                .and_then(|m| m.as_sockaddr_in().map(|m| m.ip()))
                .unwrap_or(Ipv4Addr::BROADCAST);
            set.set_v4_mask(ip.octets(), mask.octets());
            for b in directed_broadcasts(ip, mask, ifa.broadcast.and_then(|b| b.as_sockaddr_in().map(|b| b.ip()))) {
                if !set.push_v4_broadcast(b.octets()) {
                    dropped.push(format!("broadcast {b}"));
                }
            }
        } else if let Some(mac) = addr.as_link_addr().and_then(|l| l.addr()) {
            // AF_PACKET entry: the interface's MAC, the source of an
            // Address Mask reply to a link-layer broadcast.
            set.mac = mac;
        } else if let Some(sin6) = addr.as_sockaddr_in6() {
            let ip: Ipv6Addr = sin6.ip();
            if !set.push_v6(ip.octets()) {
                dropped.push(ip.to_string());
            }
        }
    }
    Ok(InterfaceAddrs { set, dropped })
}

/// The all-ones host address of the subnet (none for /31 and /32, RFC 3021),
/// and the configured broadcast address if it differs. glibc's getifaddrs
/// reports the address itself as "broadcast" when none is configured
/// (`ip addr add A/24` without `brd`), so that value is not a broadcast.
pub fn directed_broadcasts(ip: Ipv4Addr, mask: Ipv4Addr, configured: Option<Ipv4Addr>) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let m = u32::from(mask);
    if m.count_ones() < 31 {
        out.push(Ipv4Addr::from(u32::from(ip) | !m));
    }
    if let Some(b) = configured
        && !out.contains(&b)
        && b != Ipv4Addr::UNSPECIFIED
        && b != ip
    {
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_of_subnets() {
        let b = |ip: [u8; 4], m: [u8; 4]| directed_broadcasts(ip.into(), m.into(), None);
        assert_eq!(
            b([192, 0, 2, 1], [255, 255, 255, 0]),
            vec![Ipv4Addr::new(192, 0, 2, 255)]
        );
        assert_eq!(b([10, 1, 2, 3], [255, 0, 0, 0]), vec![Ipv4Addr::new(10, 255, 255, 255)]);
        assert!(
            b([192, 0, 2, 1], [255, 255, 255, 254]).is_empty(),
            "/31 has no broadcast"
        );
        assert!(b([192, 0, 2, 1], [255, 255, 255, 255]).is_empty());
        let conf = directed_broadcasts(
            [192, 0, 2, 1].into(),
            [255, 255, 255, 0].into(),
            Some([192, 0, 2, 0].into()),
        );
        assert_eq!(conf.len(), 2);
        let glibc_no_brd = directed_broadcasts(
            [192, 0, 2, 1].into(),
            [255, 255, 255, 0].into(),
            Some([192, 0, 2, 1].into()),
        );
        assert_eq!(
            glibc_no_brd,
            vec![Ipv4Addr::new(192, 0, 2, 255)],
            "own address is never a broadcast"
        );
    }
}
