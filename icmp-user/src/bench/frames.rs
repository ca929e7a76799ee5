//! Building test and benchmark frames: Ethernet (with VLAN tags), IPv4,
//! IPv6, ICMP, ICMPv6 and UDP, each with correct checksums.
//!
//! The checksum here is written independently of `icmp-common` (big-endian
//! words, a plain loop), so the program's checksums are checked by code that
//! does not share its bugs.

use std::net::{Ipv4Addr, Ipv6Addr};

pub const MAC_US: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const MAC_PEER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// Addresses of test and benchmark frames (documentation prefixes): the
/// responder, its peer, and the directed broadcast of their /24.
pub const US4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const PEER4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const BCAST4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 255);
pub const US6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;

/// RFC 1071 checksum over big-endian words.
pub fn inet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    let mut bytes = parts.iter().flat_map(|p| p.iter().copied());
    loop {
        match (bytes.next(), bytes.next()) {
            (Some(hi), Some(lo)) => sum += u64::from(u16::from_be_bytes([hi, lo])),
            (Some(hi), None) => {
                sum += u64::from(u16::from_be_bytes([hi, 0]));
                break;
            }
            _ => break,
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// True when the data, checksum included, sums to one's complement zero.
pub fn checksum_ok(parts: &[&[u8]]) -> bool {
    inet_checksum(parts) == 0
}

/// An Ethernet frame under construction: MACs, optional VLAN tags, payload.
#[derive(Clone)]
pub struct Frame {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// (TPID, TCI) pairs, outermost first.
    pub vlans: Vec<(u16, u16)>,
    pub ethertype: u16,
    pub l3: Vec<u8>,
}

impl Frame {
    pub fn new(ethertype: u16, l3: Vec<u8>) -> Self {
        Self {
            dst_mac: MAC_US,
            src_mac: MAC_PEER,
            vlans: Vec::new(),
            ethertype,
            l3,
        }
    }

    pub fn with_vlans(mut self, n: usize) -> Self {
        let tags = [(0x88a8, 100), (0x8100, 200)];
        self.vlans = match n {
            0 => vec![],
            1 => vec![(0x8100, 42)],
            _ => tags[..n.min(2)].to_vec(),
        };
        self
    }

    pub fn l2_len(&self) -> usize {
        14 + 4 * self.vlans.len()
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        for (tpid, tci) in &self.vlans {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&self.ethertype.to_be_bytes());
        f.extend_from_slice(&self.l3);
        f
    }
}

/// A deterministic payload of `len` bytes (seeded, so sizes differ in content).
pub fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// IPv4 header (with `options`, padded by the caller to 4 bytes) + body, with
/// a correct header checksum.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, ttl: u8, options: &[u8], body: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let ihl = 5 + options.len() / 4;
    let total = ihl * 4 + body.len();
    let mut h = vec![
        0x40 | ihl as u8,
        0,
        (total >> 8) as u8,
        total as u8,
        0x12,
        0x34,
        0x40, // DF
        0,
        ttl,
        proto,
        0,
        0,
    ];
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(options);
    let c = inet_checksum(&[&h]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(body);
    h
}

/// Recomputes the header checksum of the IPv4 datagram `l3` (options
/// included, and at least the 20 fixed bytes, so a test can give a header a
/// bad IHL), after a test changed a header field.
pub fn fix_ipv4_checksum(l3: &mut [u8]) {
    let ihl = (usize::from(l3[0] & 0x0f) * 4).max(20);
    l3[10..12].copy_from_slice(&[0, 0]);
    let c = inet_checksum(&[&l3[..ihl]]);
    l3[10..12].copy_from_slice(&c.to_be_bytes());
}

/// ICMP message with a correct checksum (ICMPv4: no pseudo-header).
pub fn icmp4(kind: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(data);
    let c = inet_checksum(&[&m]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn v6_pseudo(src: &Ipv6Addr, dst: &Ipv6Addr, len: usize, next: u8) -> Vec<u8> {
    let mut p = Vec::with_capacity(40);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&(len as u32).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, next]);
    p
}

/// ICMPv6 message with a correct checksum over the pseudo-header.
pub fn icmp6(src: &Ipv6Addr, dst: &Ipv6Addr, kind: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(data);
    let c = inet_checksum(&[&v6_pseudo(src, dst, m.len(), 58), &m]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// Verifies an ICMPv6 message's checksum with its pseudo-header.
pub fn icmp6_checksum_ok(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> bool {
    checksum_ok(&[&v6_pseudo(src, dst, msg.len(), 58), msg])
}

pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hop_limit: u8, body: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.push(next);
    h.push(hop_limit);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(body);
    h
}

/// UDP header + payload, checksummed over `pseudo` (the IP pseudo-header)
/// and the datagram; a computed 0 is sent as 0xFFFF (RFC 768).
fn udp(pseudo: &[u8], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut u = Vec::with_capacity(len);
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(len as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let c = match inet_checksum(&[pseudo, &u]) {
        0 => 0xffff,
        c => c,
    };
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

/// UDP datagram with a correct checksum over the IPv4 pseudo-header.
pub fn udp4(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    udp(&pseudo, sport, dport, payload)
}

/// UDP datagram with a correct checksum over the IPv6 pseudo-header.
pub fn udp6(src: &Ipv6Addr, dst: &Ipv6Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    udp(&v6_pseudo(src, dst, 8 + payload.len(), 17), sport, dport, payload)
}
