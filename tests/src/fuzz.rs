//! Differential fuzzing of the real program: random, structure-aware and
//! mutated Ethernet frames through BPF_PROG_TEST_RUN, every result checked
//! against invariants written from the README, not from `icmp-common`:
//!
//! - never `XDP_ABORTED`; `XDP_PASS` leaves the frame byte for byte;
//! - `XDP_DROP` only where config asks for drops, never a non-first
//!   fragment, never a datagram that is not the host's;
//! - `XDP_TX` is a well-formed echo reply or Port Unreachable: MACs swapped,
//!   VLAN tags kept, checksums valid, addressed back to the sender, from a
//!   single host that is ours (or an echo VIP), no larger than 576 / 1280
//!   bytes, and never about a frame a suppression rule covers;
//! - the counters add up: one verdict and one action per frame, and the
//!   action counters match the actions returned.
//!
//! Everything is seeded ([`Rng`]): a failure prints its seed, the frame's
//! index and a minimised frame, and `cargo xtask fuzz --seed S` replays it.

use icmp_user::observe::counters::Snapshot;
use std::net::{Ipv4Addr, Ipv6Addr};

use aya::programs::{TestRun as _, TestRunOptions};
use icmp_common::{
    AddrSet, Config,
    config::{
        FLAG_ANSWER_ANY_DST, FLAG_ANSWER_PREFIXES, FLAG_DROP_SUPPRESSED, FLAG_ECHO_V4, FLAG_ECHO_V6, FLAG_ENABLED,
        FLAG_INBOUND_DROP, FLAG_INBOUND_LIMIT, FLAG_OVER_LIMIT_DROP, FLAG_PORTS_BY_SOCKET,
        FLAG_RESERVED_SOURCE_INVALID, FLAG_UNREACH_V4, FLAG_UNREACH_V6,
    },
    reason::Action,
};
use icmp_user::{
    bench::frames::{checksum_ok, icmp4, icmp6, inet_checksum, ipv4, ipv6, udp4, udp6},
    config::{AnswerPrefixes, PortBitmaps, Settings},
    dataplane::load::Responder,
};

use crate::{XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX};

/// splitmix64: small, seedable, good enough to drive a fuzzer.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }

    pub fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

// The world the fuzzed program lives in: its addresses, VIPs and ports.
pub const MAC_US: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const MAC_PEER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const OURS4: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 18, 0, 1)];
const BCASTS4: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 255), Ipv4Addr::new(198, 18, 255, 255)];
/// The mask of each of `OURS4` (what an Address Mask reply carries).
const MASKS4: [Ipv4Addr; 2] = [Ipv4Addr::new(255, 255, 255, 0), Ipv4Addr::new(255, 255, 0, 0)];
const OURS6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
];
/// `echo.answer_prefixes` of the configs that set it.
const VIP_NET4: ([u8; 4], u8) = ([198, 51, 100, 0], 24);
const VIP_NET6: ([u8; 16], u8) = ([0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 48);
/// Ports the listed-policy configs close and open.
const CLOSED_PORTS: std::ops::RangeInclusive<u16> = 33434..=33534;
const OPEN_PORT: u16 = 33500;

fn in_net<const N: usize>(a: &[u8; N], net: &([u8; N], u8)) -> bool {
    let bits = usize::from(net.1);
    (0..N).all(|i| {
        let keep = bits.saturating_sub(i * 8).min(8);
        let mask = if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
        a[i] & mask == net.0[i] & mask
    })
}

/// A named configuration to fuzz under, with what the loader writes.
pub struct Scenario {
    pub name: &'static str,
    pub settings: Settings,
}

fn base() -> Config {
    Config::default()
}

fn ports(listed: bool) -> PortBitmaps {
    let mut p = PortBitmaps(vec![0; icmp_common::config::PORT_SLOTS as usize]);
    if listed {
        for port in CLOSED_PORTS {
            let (slot, bit) = icmp_common::config::port_slot(port);
            p.0[(slot + icmp_common::config::PORT_WORDS) as usize] |= bit;
        }
        let (slot, bit) = icmp_common::config::port_slot(OPEN_PORT);
        p.0[slot as usize] |= bit;
    }
    p
}

fn scenario(name: &'static str, config: Config, listed: bool, prefixes: bool) -> Scenario {
    let answer_prefixes = if prefixes {
        AnswerPrefixes {
            v4: vec![VIP_NET4],
            v6: vec![VIP_NET6],
        }
    } else {
        AnswerPrefixes::default()
    };
    Scenario {
        name,
        settings: Settings {
            config,
            ports: ports(listed),
            answer_prefixes,
            max_sources: 4096,
        },
    }
}

/// The configs `cargo xtask test` fuzzes: the default, the limits lifted,
/// and every knob moved away from its default.
pub fn scenarios() -> Vec<Scenario> {
    let unlimited = Config {
        per_source: icmp_common::ratelimit::Limit::UNLIMITED,
        global: icmp_common::ratelimit::Limit::UNLIMITED,
        ..base()
    };
    let every_knob = Config {
        flags: (unlimited.flags
            | FLAG_ANSWER_ANY_DST
            | FLAG_ANSWER_PREFIXES
            | FLAG_DROP_SUPPRESSED
            | FLAG_INBOUND_LIMIT
            | icmp_common::config::FLAG_TIMESTAMP_ANSWER
            | icmp_common::config::FLAG_ADDRESS_MASK_ANSWER
            | icmp_common::config::FLAG_TYPE_POLICY
            | icmp_common::config::FLAG_PROTO_UNREACH)
            & !(FLAG_PORTS_BY_SOCKET | FLAG_RESERVED_SOURCE_INVALID | FLAG_OVER_LIMIT_DROP),
        ttl: 1,
        hop_limit: 255,
        v4_error_size: Config::MIN_V4_ERROR_SIZE,
        v6_error_size: Config::MIN_V6_ERROR_SIZE,
        ratemask_v4: u32::MAX,
        ratemask_v6: [u32::MAX; 8],
        per_source: icmp_common::ratelimit::Limit::per_second(1000, 3),
        global: icmp_common::ratelimit::Limit::per_second(5000, 10),
        inbound: icmp_common::ratelimit::Limit::per_second(2000, 5),
        v4_prefix: 24,
        v6_prefix: 48,
        drop_types_v4: [1 << 15 | 1 << 16, 0, 0, 0, 0, 0, 0, 0],
        drop_types_v6: [0, 0, 0, 0, 1 << 1, 0, 0, 0], // 129: echo replies to us
        ..base()
    };
    vec![
        scenario("default", base(), false, false),
        scenario("unlimited", unlimited, false, false),
        scenario(
            "answer_any_destination",
            Config {
                flags: unlimited.flags | FLAG_ANSWER_ANY_DST,
                ..unlimited
            },
            false,
            false,
        ),
        scenario(
            "suppressed_drop",
            Config {
                flags: unlimited.flags | FLAG_DROP_SUPPRESSED | FLAG_ANSWER_ANY_DST,
                ..unlimited
            },
            true,
            false,
        ),
        scenario(
            "answer_prefixes_listed_ports",
            Config {
                flags: (unlimited.flags | FLAG_ANSWER_PREFIXES) & !FLAG_PORTS_BY_SOCKET,
                ..unlimited
            },
            true,
            true,
        ),
        scenario(
            "families_off",
            Config {
                flags: unlimited.flags & !(FLAG_ECHO_V6 | FLAG_UNREACH_V4),
                ..unlimited
            },
            false,
            false,
        ),
        scenario("every_knob", every_knob, true, true),
        scenario(
            "shadow",
            Config {
                flags: every_knob.flags | icmp_common::config::FLAG_SHADOW,
                ..every_knob
            },
            true,
            true,
        ),
    ]
}

/// A config of random bytes, as a bug or a hand-written map update could
/// leave it: nothing the loader validated.
pub fn random_config(rng: &mut Rng) -> Config {
    let limit = |rng: &mut Rng| icmp_common::ratelimit::Limit {
        interval_ns: if rng.chance(30) {
            0
        } else {
            rng.next_u64() >> rng.below(64)
        },
        tolerance_ns: rng.next_u64() >> rng.below(64),
    };
    Config {
        flags: rng.next_u64() as u32 | FLAG_ENABLED,
        ttl: rng.byte(),
        hop_limit: rng.byte(),
        _pad: [rng.byte(), rng.byte()],
        v4_error_size: rng.next_u64() as u16,
        v6_error_size: rng.next_u64() as u16,
        ratemask_v4: rng.next_u64() as u32,
        ratemask_v6: std::array::from_fn(|_| rng.next_u64() as u32),
        per_source: limit(rng),
        global: limit(rng),
        inbound: limit(rng),
        v4_prefix: rng.byte(),
        v6_prefix: rng.byte(),
        _pad2: std::array::from_fn(|_| rng.byte()),
        tai_offset_ns: rng.next_u64(),
        drop_types_v4: std::array::from_fn(|_| rng.next_u64() as u32),
        drop_types_v6: std::array::from_fn(|_| rng.next_u64() as u32),
        open_protocols: std::array::from_fn(|_| rng.next_u64() as u32),
        _pad3: std::array::from_fn(|_| rng.byte()),
    }
}

/// The address set every scenario attaches with.
pub fn addr_set() -> AddrSet {
    let mut s = AddrSet::default();
    for a in OURS4 {
        assert!(s.push_v4(a.octets()));
    }
    for (a, m) in OURS4.iter().zip(MASKS4) {
        s.set_v4_mask(a.octets(), m.octets());
    }
    for b in BCASTS4 {
        assert!(s.push_v4_broadcast(b.octets()));
    }
    s.mac = MAC_US;
    for a in OURS6 {
        assert!(s.push_v6(a.octets()));
    }
    s
}

// ---- the generator ---------------------------------------------------------

fn v4_src(rng: &mut Rng) -> Ipv4Addr {
    match rng.below(12) {
        0 => Ipv4Addr::new(0, rng.byte(), rng.byte(), rng.byte()),
        1 => Ipv4Addr::new(127, 0, 0, rng.byte()),
        2 => Ipv4Addr::new(224 + rng.byte() % 16, rng.byte(), rng.byte(), rng.byte()),
        3 => Ipv4Addr::new(240 + rng.byte() % 16, rng.byte(), rng.byte(), rng.byte()),
        4 => Ipv4Addr::BROADCAST,
        5 => rng.pick(&BCASTS4),
        6 => Ipv4Addr::from(rng.next_u64() as u32),
        _ => Ipv4Addr::new(192, 0, 2, 2 + rng.byte() % 200),
    }
}

fn v4_dst(rng: &mut Rng) -> Ipv4Addr {
    match rng.below(14) {
        0 => Ipv4Addr::BROADCAST,
        1 => rng.pick(&BCASTS4),
        2 => Ipv4Addr::new(224, 0, 0, rng.byte()),
        3 => Ipv4Addr::new(127, 0, 0, 1),
        4 => Ipv4Addr::new(0, 0, 0, rng.byte() % 2),
        5 => Ipv4Addr::new(240, 0, 0, 1),
        6 => Ipv4Addr::new(198, 51, 100, rng.byte()),
        7 => Ipv4Addr::new(10, 88, 1, rng.byte()),
        8 => Ipv4Addr::from(rng.next_u64() as u32),
        _ => rng.pick(&OURS4),
    }
}

fn v6_addr(rng: &mut Rng, dst: bool) -> Ipv6Addr {
    let mut random = [0u8; 16];
    for b in &mut random {
        *b = rng.byte();
    }
    match rng.below(12) {
        0 => Ipv6Addr::UNSPECIFIED,
        1 => Ipv6Addr::LOCALHOST,
        2 => Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1 + u16::from(rng.byte())),
        3 => Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201),
        4 => Ipv6Addr::new(0x2001, 0xdb8, 1, u16::from(rng.byte()), 0, 0, 0, 7),
        5 => Ipv6Addr::from(random),
        6 | 7 if dst => rng.pick(&OURS6),
        _ if dst => rng.pick(&OURS6),
        _ => Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2 + u16::from(rng.byte())),
    }
}

fn small_payload(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(4) {
        0 => rng.below(8) as usize,
        1 => rng.below(64) as usize,
        2 => 56,
        _ => rng.below(1400) as usize,
    };
    rng.bytes(len)
}

fn dport(rng: &mut Rng) -> u16 {
    match rng.below(5) {
        0 => 33434 + rng.below(101) as u16,
        1 => OPEN_PORT,
        2 => 53,
        _ => rng.next_u64() as u16,
    }
}

fn l4_v4(rng: &mut Rng, src: Ipv4Addr, dst: Ipv4Addr) -> (u8, Vec<u8>) {
    match rng.below(10) {
        0..=3 => {
            let kind = match rng.below(10) {
                0..=5 => 8,
                6 => 13,
                7 => 17,
                _ => rng.byte(),
            };
            (
                1,
                icmp4(
                    kind,
                    rng.byte() % 3,
                    rng.bytes(4).try_into().unwrap(),
                    &small_payload(rng),
                ),
            )
        }
        4..=7 => (
            17,
            udp4(src, dst, rng.next_u64() as u16, dport(rng), &small_payload(rng)),
        ),
        8 => {
            let n = 20 + rng.below(40) as usize;
            (6, rng.bytes(n))
        }
        _ => (rng.byte(), small_payload(rng)),
    }
}

fn l4_v6(rng: &mut Rng, src: Ipv6Addr, dst: Ipv6Addr) -> (u8, Vec<u8>) {
    match rng.below(10) {
        0..=3 => {
            let kind = if rng.chance(80) { 128 } else { rng.byte() };
            (
                58,
                icmp6(
                    &src,
                    &dst,
                    kind,
                    rng.byte() % 3,
                    rng.bytes(4).try_into().unwrap(),
                    &small_payload(rng),
                ),
            )
        }
        4..=7 => (
            17,
            udp6(&src, &dst, rng.next_u64() as u16, dport(rng), &small_payload(rng)),
        ),
        _ => (rng.byte(), small_payload(rng)),
    }
}

fn ipv4_packet(rng: &mut Rng) -> Vec<u8> {
    let (src, dst) = (v4_src(rng), v4_dst(rng));
    let (proto, body) = l4_v4(rng, src, dst);
    let options = if rng.chance(10) {
        let mut o = vec![1u8; 4 * (1 + rng.below(10) as usize)];
        if rng.chance(50) {
            o[0] = 0x94; // router alert
            o[1] = 4;
        }
        o
    } else {
        Vec::new()
    };
    let mut p = ipv4(src, dst, proto, rng.byte().max(1), &options, &body);
    if rng.chance(15) {
        // Fragment fields: MF and/or an offset.
        let mf = if rng.chance(50) { 0x2000 } else { 0 };
        let off = if rng.chance(60) {
            1 + rng.below(0x1fff) as u16
        } else {
            0
        };
        p[6..8].copy_from_slice(&(mf | off).to_be_bytes());
    }
    if rng.chance(10) {
        p[6] |= 0x40; // DF
    }
    p[10..12].copy_from_slice(&[0, 0]);
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let c = inet_checksum(&[&p[..ihl]]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

fn ipv6_packet(rng: &mut Rng) -> Vec<u8> {
    let (src, dst) = (v6_addr(rng, false), v6_addr(rng, true));
    let (mut next, mut body) = l4_v6(rng, src, dst);
    // An extension chain in front, sometimes: hop-by-hop, routing,
    // destination options, or a Fragment header.
    for _ in 0..rng.below(3) {
        match rng.below(4) {
            0..=1 => {
                let kind = rng.pick(&[0u8, 43, 60]);
                let mut h = vec![next, 0, 1, 4, 0, 0, 0, 0];
                h.extend_from_slice(&body);
                (next, body) = (kind, h);
            }
            _ => {
                let off = if rng.chance(50) { rng.below(0x1fff) as u16 } else { 0 };
                let m = u16::from(rng.chance(50));
                let mut h = vec![next, 0];
                h.extend_from_slice(&((off << 3) | m).to_be_bytes());
                h.extend_from_slice(&rng.bytes(4));
                h.extend_from_slice(&body);
                (next, body) = (44, h);
            }
        }
    }
    ipv6(src, dst, next, rng.byte().max(1), &body)
}

/// One frame: mostly well-formed IPv4/IPv6 (echo, UDP, other ICMP, other
/// protocols), some mutated (bytes flipped, truncated, padded, lengths that
/// lie), some random bytes.
pub fn frame(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(3) {
        let n = 14 + rng.below(200) as usize;
        return rng.bytes(n);
    }
    let mut f = Vec::new();
    let dst_mac = match rng.below(20) {
        0 => [0xff; 6],
        1 => [0x01, 0x00, 0x5e, 0, 0, rng.byte()],
        2 => [0x33, 0x33, 0, 0, 0, rng.byte()],
        3 => {
            let mut m: [u8; 6] = rng.bytes(6).try_into().unwrap();
            m[0] &= 0xfe;
            m
        }
        _ => MAC_US,
    };
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&MAC_PEER);
    let tags = match rng.below(10) {
        0 => 1,
        1 => 2,
        2 => 3,
        _ => 0,
    };
    for i in 0..tags {
        let tpid: u16 = if i == 0 && tags > 1 { 0x88a8 } else { 0x8100 };
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&((rng.next_u64() as u16) & 0x0fff).to_be_bytes());
    }
    let v6 = rng.chance(45);
    let ethertype: u16 = match rng.below(30) {
        0 => 0x0806,
        1 => rng.next_u64() as u16,
        _ if v6 => 0x86dd,
        _ => 0x0800,
    };
    f.extend_from_slice(&ethertype.to_be_bytes());
    let l3 = if v6 { ipv6_packet(rng) } else { ipv4_packet(rng) };
    let l3_at = f.len();
    f.extend_from_slice(&l3);
    if rng.chance(25) {
        mutate(rng, &mut f, l3_at);
    }
    if rng.chance(5) {
        // Link-layer padding after the datagram.
        let pad = rng.below(40) as usize;
        f.extend(std::iter::repeat_n(0, pad));
    }
    f.truncate(3000);
    if f.len() < 14 {
        f.resize(14, 0);
    }
    f
}

fn mutate(rng: &mut Rng, f: &mut Vec<u8>, l3_at: usize) {
    for _ in 0..1 + rng.below(3) {
        match rng.below(6) {
            0 => {
                // Flip a byte in the headers.
                let end = f.len().min(l3_at + 64);
                if end > 0 {
                    let i = rng.below(end as u64) as usize;
                    f[i] ^= 1 << rng.below(8);
                }
            }
            1 => {
                let n = rng.below(f.len() as u64 + 1) as usize;
                f.truncate(n);
            }
            2 if f.len() >= l3_at + 4 => {
                // A length field that lies (IPv4 total length / IPv6 payload length).
                let at = if f[l3_at] >> 4 == 6 { l3_at + 4 } else { l3_at + 2 };
                if at + 2 <= f.len() {
                    let v = rng.next_u64() as u16;
                    f[at..at + 2].copy_from_slice(&v.to_be_bytes());
                }
            }
            3 if f.len() > l3_at => f[l3_at] = rng.byte(),
            4 => {
                let i = rng.below(f.len().max(1) as u64) as usize;
                if i < f.len() {
                    f[i] = rng.byte();
                }
            }
            _ => {
                let n = rng.below(16) as usize;
                f.extend_from_slice(&rng.bytes(n));
            }
        }
    }
}

// ---- the oracle -------------------------------------------------------------

/// What a frame is, read independently of the program: link header, network
/// header facts, and where the datagram starts.
#[derive(Debug)]
struct Parsed {
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    /// Ethernet + VLAN tags.
    l2_len: usize,
    ip: Option<Ip>,
}

#[derive(Debug)]
enum Ip {
    V4 {
        src: [u8; 4],
        dst: [u8; 4],
        ihl: usize,
        total: usize,
        proto: u8,
        mf: bool,
        offset: u16,
    },
    V6 {
        src: [u8; 16],
        dst: [u8; 16],
        payload_len: usize,
        /// The upper-layer protocol right after the fixed header, and
        /// whether any extension or Fragment header came first.
        next: u8,
    },
}

fn parse(f: &[u8]) -> Option<Parsed> {
    if f.len() < 14 {
        return None;
    }
    let mut l2 = 12;
    let mut ethertype = u16::from_be_bytes([f[l2], f[l2 + 1]]);
    let mut tags = 0;
    while (ethertype == 0x8100 || ethertype == 0x88a8) && f.len() >= l2 + 6 {
        l2 += 4;
        tags += 1;
        ethertype = u16::from_be_bytes([f[l2], f[l2 + 1]]);
    }
    l2 += 2;
    let mut p = Parsed {
        dst_mac: f[0..6].try_into().unwrap(),
        src_mac: f[6..12].try_into().unwrap(),
        l2_len: l2,
        ip: None,
    };
    if tags > 2 {
        return Some(p);
    }
    let l3 = &f[l2..];
    p.ip = match ethertype {
        0x0800 if l3.len() >= 20 && l3[0] >> 4 == 4 => Some(Ip::V4 {
            src: l3[12..16].try_into().unwrap(),
            dst: l3[16..20].try_into().unwrap(),
            ihl: usize::from(l3[0] & 0x0f) * 4,
            total: usize::from(u16::from_be_bytes([l3[2], l3[3]])),
            proto: l3[9],
            mf: l3[6] & 0x20 != 0,
            offset: u16::from_be_bytes([l3[6], l3[7]]) & 0x1fff,
        }),
        0x86dd if l3.len() >= 40 && l3[0] >> 4 == 6 => Some(Ip::V6 {
            src: l3[8..24].try_into().unwrap(),
            dst: l3[24..40].try_into().unwrap(),
            payload_len: usize::from(u16::from_be_bytes([l3[4], l3[5]])),
            next: l3[6],
        }),
        _ => None,
    };
    Some(p)
}

fn v4_single_host(a: &[u8; 4], reserved_ok: bool) -> bool {
    let bcast = BCASTS4.iter().any(|b| b.octets() == *a) || *a == [255; 4];
    !(a[0] == 0 || a[0] == 127 || (224..240).contains(&a[0]) || (a[0] >= 240 && !reserved_ok) || bcast)
}

fn v6_single_host(a: &[u8; 16]) -> bool {
    let ip = Ipv6Addr::from(*a);
    !(ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || ip.to_ipv4_mapped().is_some())
}

fn group_mac(m: &[u8; 6]) -> bool {
    m[0] & 1 == 1
}

fn ours4(a: &[u8; 4]) -> bool {
    OURS4.iter().any(|o| o.octets() == *a)
}

fn ours6(a: &[u8; 16]) -> bool {
    OURS6.iter().any(|o| o.octets() == *a)
}

/// The config facts the oracle needs, read from flags (not decided).
struct Knobs {
    any_dst: bool,
    prefixes: bool,
    reserved_ok: bool,
    echo_v4: bool,
    echo_v6: bool,
    unreach_v4: bool,
    unreach_v6: bool,
    drops: bool,
    listed: bool,
    ttl: u8,
    hop_limit: u8,
    /// Exact checks of TTL, quote length etc. only for validated configs.
    validated: bool,
    /// Shadow mode: every frame passed unchanged.
    shadow: bool,
    timestamp: bool,
    address_mask: bool,
    /// Protocol Unreachable on: the protocols open by config.
    proto_unreach: Option<[u32; 8]>,
    /// `[policy]`: ICMP types addressed to us dropped (IPv4, IPv6 bitmaps).
    policy: Option<([u32; 8], [u32; 8])>,
}

impl Knobs {
    fn of(c: &Config, listed: bool, validated: bool) -> Self {
        let has = |f: u32| c.flags & f != 0;
        Self {
            any_dst: has(FLAG_ANSWER_ANY_DST),
            prefixes: has(FLAG_ANSWER_PREFIXES),
            reserved_ok: !has(FLAG_RESERVED_SOURCE_INVALID),
            echo_v4: has(FLAG_ECHO_V4),
            echo_v6: has(FLAG_ECHO_V6),
            unreach_v4: has(FLAG_UNREACH_V4),
            unreach_v6: has(FLAG_UNREACH_V6),
            drops: has(FLAG_DROP_SUPPRESSED)
                || (has(FLAG_OVER_LIMIT_DROP) && !(c.per_source.interval_ns == 0 && c.global.interval_ns == 0))
                || (has(FLAG_INBOUND_DROP) && has(FLAG_INBOUND_LIMIT)),
            listed: listed && !has(FLAG_PORTS_BY_SOCKET),
            ttl: c.ttl,
            hop_limit: c.hop_limit,
            validated,
            shadow: has(icmp_common::config::FLAG_SHADOW),
            timestamp: has(icmp_common::config::FLAG_TIMESTAMP_ANSWER),
            address_mask: has(icmp_common::config::FLAG_ADDRESS_MASK_ANSWER),
            proto_unreach: has(icmp_common::config::FLAG_PROTO_UNREACH).then_some(c.open_protocols),
            policy: has(icmp_common::config::FLAG_TYPE_POLICY).then_some((c.drop_types_v4, c.drop_types_v6)),
        }
    }
}

/// Checks one result; `Err` says which invariant broke.
fn check(k: &Knobs, input: &[u8], action: u32, out: &[u8]) -> Result<(), String> {
    if k.shadow && action != XDP_PASS {
        return Err(format!("shadow mode returned action {action}, not XDP_PASS"));
    }
    match action {
        XDP_PASS => (out == input)
            .then_some(())
            .ok_or_else(|| "XDP_PASS changed the frame".to_owned()),
        XDP_DROP => check_drop(k, input),
        XDP_TX => check_tx(k, input, out),
        XDP_ABORTED => Err("XDP_ABORTED".to_owned()),
        a => Err(format!("unknown action {a}")),
    }
}

/// An Address Mask reply (RFC 950): to a plain request (type 17, at least
/// 12 bytes of ICMP) from a single host, asked of one of our addresses —
/// directly, by its subnet's broadcast, or by 255.255.255.255 from a source
/// in its subnet — from that address with its mask, from our MAC back to
/// the requester's.
fn check_address_mask_reply(k: &Knobs, p: &Parsed, o: &Parsed, input: &[u8], out: &[u8]) -> Result<(), String> {
    let (l3, ol3) = (&input[p.l2_len..], &out[o.l2_len..]);
    let Some(Ip::V4 {
        src,
        dst,
        ihl: 20,
        total,
        proto: 1,
        mf: false,
        offset: 0,
    }) = p.ip
    else {
        return Err("address mask reply to something not a plain IPv4 ICMP datagram".into());
    };
    let Some(Ip::V4 {
        src: osrc,
        dst: odst,
        ihl: 20,
        total: 32,
        proto: 1,
        ..
    }) = o.ip
    else {
        return Err("address mask reply is not 20 + 12 bytes of ICMP".into());
    };
    if !k.address_mask || l3[20] != 17 || total < 32 {
        return Err("address mask reply for something not an answerable request".into());
    }
    if !checksum_ok(&[&l3[..20]]) {
        return Err("answered a request with a bad IPv4 header checksum".into());
    }
    if ol3.len() != 32 || !checksum_ok(&[&ol3[..20]]) || !checksum_ok(&[&ol3[20..32]]) {
        return Err("address mask reply: bad length or checksum".into());
    }
    if odst != src || !v4_single_host(&src, k.reserved_ok) || BCASTS4.iter().any(|b| b.octets() == src) {
        return Err(format!("address mask reply to {}", Ipv4Addr::from(odst)));
    }
    if !OURS4.iter().any(|a| a.octets() == osrc) {
        return Err(format!("address mask reply from {}, not ours", Ipv4Addr::from(osrc)));
    }
    let Some(i) = mask_answerer(&src, &dst).filter(|i| OURS4[*i].octets() == osrc) else {
        return Err(format!(
            "{} answered a request to {} from {}",
            Ipv4Addr::from(osrc),
            Ipv4Addr::from(dst),
            Ipv4Addr::from(src)
        ));
    };
    if ol3[24..28] != l3[24..28] || ol3[28..32] != MASKS4[i].octets() || ol3[21] != 0 {
        return Err("address mask reply does not carry the request's identifier/sequence and our mask".into());
    }
    if o.dst_mac != p.src_mac || o.src_mac != MAC_US {
        return Err("address mask reply: not from our MAC back to the requester's".into());
    }
    if o.l2_len != p.l2_len || out[12..o.l2_len - 2] != input[12..p.l2_len - 2] {
        return Err("VLAN tags not kept".into());
    }
    Ok(())
}

/// Which of `OURS4` an Address Mask request from `src` to `dst` asks (RFC
/// 950): the address itself, its subnet's broadcast, or 255.255.255.255 from
/// a source in its subnet.
fn mask_answerer(src: &[u8; 4], dst: &[u8; 4]) -> Option<usize> {
    (0..OURS4.len()).find(|&i| {
        let ours = OURS4[i].octets();
        let net = |a: &[u8; 4]| u32::from_be_bytes(*a) & u32::from_be_bytes(MASKS4[i].octets());
        *dst == ours || *dst == BCASTS4[i].octets() || (*dst == [255; 4] && net(src) == net(&ours))
    })
}

fn type_in(bits: &[u32; 8], t: u8) -> bool {
    bits[usize::from(t / 32)] >> (t % 32) & 1 == 1
}

/// Whether `[policy]` drops this frame: an ICMP type it lists, to one of
/// our own addresses, in a plain (no options, not fragmented) datagram.
fn policy_drops(k: &Knobs, input: &[u8]) -> bool {
    let (Some((v4, v6)), Some(p)) = (k.policy, parse(input)) else {
        return false;
    };
    let l3 = &input[p.l2_len..];
    match p.ip {
        Some(Ip::V4 {
            dst,
            ihl: 20,
            proto: 1,
            mf: false,
            offset: 0,
            ..
        }) => l3.len() > 20 && ours4(&dst) && type_in(&v4, l3[20]),
        Some(Ip::V6 { dst, next: 58, .. }) => l3.len() > 40 && ours6(&dst) && type_in(&v6, l3[40]),
        _ => false,
    }
}

fn check_drop(k: &Knobs, input: &[u8]) -> Result<(), String> {
    if policy_drops(k, input) {
        return Ok(());
    }
    if !k.drops {
        return Err("dropped, but no drop is configured".into());
    }
    let p = parse(input).ok_or("dropped an unparseable frame")?;
    match p.ip {
        Some(Ip::V4 {
            src,
            dst,
            proto,
            offset,
            ..
        }) => {
            if offset != 0 {
                return Err("dropped a non-first fragment".into());
            }
            let group = BCASTS4.iter().any(|b| b.octets() == dst) || dst == [255; 4] || (224..240).contains(&dst[0]);
            if proto == 17 && !(ours4(&dst) || group) {
                return Err(format!("dropped UDP to {}, not the host's", Ipv4Addr::from(dst)));
            }
            let vip = k.prefixes && in_net(&dst, &VIP_NET4);
            // An Address Mask request to a broadcast, its reply over a limit.
            let l3 = &input[p.l2_len..];
            let mask_request = k.address_mask && l3.get(20) == Some(&17) && mask_answerer(&src, &dst).is_some();
            if proto == 1 && !(ours4(&dst) || vip || k.any_dst || mask_request) {
                return Err(format!("dropped ICMP to {}, not the host's", Ipv4Addr::from(dst)));
            }
            if proto != 17 && proto != 1 {
                // A closed protocol's datagram, refused by a limit or
                // suppressed with `suppressed = "drop"`.
                let closed = k.proto_unreach.is_some_and(|open| !type_in(&open, proto));
                if !closed || !(ours4(&dst) || group) {
                    return Err(format!("dropped protocol {proto}, open or not the host's"));
                }
            }
            Ok(())
        }
        Some(Ip::V6 { dst, next, .. }) => {
            let ours = ours6(&dst) || dst[0] == 0xff;
            if next == 44 {
                // A Fragment header right after the fixed header: is it a
                // non-first fragment?
                let l3 = &input[p.l2_len..];
                if l3.len() >= 48 && u16::from_be_bytes([l3[42], l3[43]]) >> 3 != 0 {
                    return Err("dropped a non-first IPv6 fragment".into());
                }
            }
            if next == 17 && !ours {
                return Err(format!("dropped UDP to {}, not the host's", Ipv6Addr::from(dst)));
            }
            Ok(())
        }
        None => Err("dropped a frame that is not IP".into()),
    }
}

fn check_tx(k: &Knobs, input: &[u8], out: &[u8]) -> Result<(), String> {
    let p = parse(input).ok_or("sent about an unparseable frame")?;
    let o = parse(out).ok_or("sent an unparseable frame")?;
    if let Some(Ip::V4 { .. }) = o.ip
        && out.get(o.l2_len + 20) == Some(&18)
    {
        return check_address_mask_reply(k, &p, &o, input, out);
    }
    if group_mac(&p.dst_mac) {
        return Err("answered a link-layer group frame".into());
    }
    if o.dst_mac != p.src_mac || o.src_mac != p.dst_mac {
        return Err("MACs not swapped".into());
    }
    if o.l2_len != p.l2_len || out[12..o.l2_len - 2] != input[12..p.l2_len - 2] {
        return Err("VLAN tags not kept".into());
    }
    let l3 = &input[p.l2_len..];
    let ol3 = &out[o.l2_len..];
    match (p.ip, o.ip) {
        (
            Some(Ip::V4 {
                src,
                dst,
                ihl,
                total,
                proto,
                mf,
                offset,
            }),
            Some(Ip::V4 {
                src: osrc,
                dst: odst,
                ihl: oihl,
                total: ototal,
                proto: oproto,
                ..
            }),
        ) => {
            // An error is cut to its length; an echo reply keeps the frame's
            // link-layer padding, unchanged.
            let is_error = ol3.get(20) != Some(&0);
            let length_ok = if is_error {
                ototal == ol3.len()
            } else {
                ototal <= ol3.len() && ol3[ototal..] == l3[ototal.min(l3.len())..]
            };
            if oihl != 20 || !length_ok || !checksum_ok(&[&ol3[..20]]) || oproto != 1 {
                return Err("bad IPv4 header out".into());
            }
            if !checksum_ok(&[&l3[..ihl.min(l3.len())]]) || total > l3.len() || ihl < 20 {
                return Err("answered a datagram with a bad IPv4 header".into());
            }
            if osrc != dst || odst != src {
                return Err("not from the address asked, back to the sender".into());
            }
            if !v4_single_host(&osrc, false) {
                return Err(format!("sent from {}, not a single host", Ipv4Addr::from(osrc)));
            }
            if !v4_single_host(&odst, k.reserved_ok) {
                return Err(format!("sent to {}, not a single host", Ipv4Addr::from(odst)));
            }
            if ototal > 576 && ol3[20] != 0 {
                return Err(format!("error of {ototal} bytes > 576"));
            }
            if k.validated && ol3[8] != k.ttl {
                return Err("TTL is not the configured one".into());
            }
            let icmp = &ol3[20..ototal];
            match icmp.first() {
                Some(0) => {
                    if total < 28 {
                        return Err("answered a truncated echo request".into());
                    }
                    if !k.echo_v4 || proto != 1 || ihl != 20 || mf || offset != 0 || l3[20] != 8 {
                        return Err("echo reply for something not an answerable echo request".into());
                    }
                    let vip = k.prefixes && in_net(&dst, &VIP_NET4);
                    if !(ours4(&dst) || vip || k.any_dst) {
                        return Err("echo reply from an address that is not ours".into());
                    }
                    if ototal != total || icmp[1] != l3[21] || icmp[4..] != l3[24..total] {
                        return Err("echo reply does not carry the request".into());
                    }
                    if checksum_ok(&[&l3[20..total]]) != checksum_ok(&[icmp]) {
                        return Err("echo reply checksum".into());
                    }
                    Ok(())
                }
                Some(3) => {
                    if mf || offset != 0 {
                        return Err("an error about a fragment".into());
                    }
                    match (icmp[1], k.proto_unreach) {
                        (3, _) if k.unreach_v4 && proto == 17 => error_port_ok(k, &l3[ihl..])?,
                        (2, Some(open)) if proto != 1 && proto != 17 && !type_in(&open, proto) => {}
                        (code, _) => {
                            return Err(format!("Destination Unreachable code {code} about protocol {proto}"));
                        }
                    }
                    if !ours4(&dst) {
                        return Err("error about a datagram not addressed to the host".into());
                    }
                    let quote = &icmp[8..];
                    let want = (ihl + 8).min(total);
                    if quote.len() < want || quote != &l3[..quote.len()] || quote.len() > total {
                        return Err("quote is not the datagram's beginning".into());
                    }
                    if !checksum_ok(&[icmp]) {
                        return Err("ICMP checksum".into());
                    }
                    Ok(())
                }
                Some(14) => {
                    if !k.timestamp || proto != 1 || ihl != 20 || mf || offset != 0 || l3[20] != 13 {
                        return Err("timestamp reply for something not an answerable timestamp request".into());
                    }
                    if !ours4(&dst) {
                        return Err("timestamp reply from an address that is not ours".into());
                    }
                    if total < 20 + 8 + 4 {
                        return Err("answered a timestamp request without an originate timestamp".into());
                    }
                    if ototal != 40 || !checksum_ok(&[icmp]) {
                        return Err("timestamp reply is not 20 + 20 bytes with a valid checksum".into());
                    }
                    if icmp[4..12] != l3[24..32] || icmp[12..16] != icmp[16..20] {
                        return Err("timestamp reply does not carry the request's fields".into());
                    }
                    Ok(())
                }
                t => Err(format!("sent ICMP type {t:?}")),
            }
        }
        (
            Some(Ip::V6 {
                src,
                dst,
                payload_len,
                next,
            }),
            Some(Ip::V6 {
                src: osrc,
                dst: odst,
                payload_len: olen,
                next: onext,
            }),
        ) => {
            let is_error = ol3.get(40).is_some_and(|t| *t < 128);
            let length_ok = if is_error {
                olen + 40 == ol3.len()
            } else {
                olen + 40 <= ol3.len() && ol3[olen + 40..] == l3[(olen + 40).min(l3.len())..]
            };
            if onext != 58 || !length_ok || 40 + payload_len > l3.len() {
                return Err("bad IPv6 header out, or answered a lying payload length".into());
            }
            if osrc != dst || odst != src {
                return Err("not from the address asked, back to the sender".into());
            }
            if !v6_single_host(&osrc) || !v6_single_host(&odst) {
                return Err("IPv6 source or destination not a single host".into());
            }
            if k.validated && ol3[7] != k.hop_limit {
                return Err("hop limit is not the configured one".into());
            }
            let icmp = &ol3[40..40 + olen];
            let pseudo_ok = |msg: &[u8]| icmpxdp_tests_checksum6(&Ipv6Addr::from(osrc), &Ipv6Addr::from(odst), msg);
            match icmp.first() {
                Some(129) => {
                    if payload_len < 8 {
                        return Err("answered a truncated echo request".into());
                    }
                    if !k.echo_v6 || next != 58 || l3[40] != 128 {
                        return Err("echo reply for something not an echo request".into());
                    }
                    let vip = k.prefixes && in_net(&dst, &VIP_NET6);
                    if !(ours6(&dst) || vip || k.any_dst) {
                        return Err("echo reply from an address that is not ours".into());
                    }
                    if olen != payload_len || icmp[1] != l3[41] || icmp[4..] != l3[44..40 + payload_len] {
                        return Err("echo reply does not carry the request".into());
                    }
                    let req_ok =
                        icmpxdp_tests_checksum6(&Ipv6Addr::from(src), &Ipv6Addr::from(dst), &l3[40..40 + payload_len]);
                    if req_ok != pseudo_ok(icmp) {
                        return Err("echo reply checksum".into());
                    }
                    Ok(())
                }
                Some(1 | 4) => {
                    match (icmp[0], icmp[1], k.proto_unreach) {
                        (1, 4, _) if k.unreach_v6 && next == 17 => error_port_ok(k, &l3[40..])?,
                        (4, 1, Some(open)) if next != 58 && next != 17 && next != 44 && !type_in(&open, next) => {
                            if icmp[4..8] != [0, 0, 0, 6] {
                                return Err("Parameter Problem not pointing at the Next Header".into());
                            }
                        }
                        (t, c, _) => return Err(format!("ICMPv6 error {t}/{c} about next header {next}")),
                    }
                    if !ours6(&dst) {
                        return Err("error about a datagram not addressed to the host".into());
                    }
                    if ol3.len() > 1280 {
                        return Err(format!("error of {} bytes > 1280", ol3.len()));
                    }
                    let quote = &icmp[8..];
                    if quote.len() < 48.min(40 + payload_len)
                        || quote.len() > 40 + payload_len
                        || quote != &l3[..quote.len()]
                    {
                        return Err("quote is not the datagram's beginning".into());
                    }
                    if !pseudo_ok(icmp) {
                        return Err("ICMPv6 checksum".into());
                    }
                    Ok(())
                }
                t => Err(format!("sent ICMPv6 type {t:?}")),
            }
        }
        _ => Err("sent across families, or not IP".into()),
    }
}

fn error_port_ok(k: &Knobs, udp: &[u8]) -> Result<(), String> {
    if udp.len() < 8 {
        return Err("error about a datagram without a whole UDP header".into());
    }
    let port = u16::from_be_bytes([udp[2], udp[3]]);
    if port == OPEN_PORT && k.listed {
        return Err("error for a port listed open".into());
    }
    if k.listed && !CLOSED_PORTS.contains(&port) {
        return Err(format!("error for port {port}, which the listed policy leaves open"));
    }
    Ok(())
}

fn icmpxdp_tests_checksum6(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> bool {
    icmp_user::bench::frames::icmp6_checksum_ok(src, dst, msg)
}

// ---- the runner -------------------------------------------------------------

/// What one fuzz run found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub frames: u64,
    pub actions: [u64; Action::COUNT as usize],
    pub failures: Vec<String>,
    /// How often each verdict was counted (the program's own counters):
    /// which rules the generator reached.
    pub verdicts: Vec<(icmp_common::Reason, u64)>,
}

/// Runs the program once on `frame`; `None` if the kernel refuses the input
/// (shorter than an Ethernet header).
fn run_once(r: &mut Responder, frame: &[u8]) -> Option<(u32, Vec<u8>)> {
    let mut out = vec![0u8; frame.len() + 512];
    let opts = TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ..TestRunOptions::default()
    };
    let res = r.program().test_run(opts).ok()?;
    out.truncate(res.data_size_out as usize);
    Some((res.return_value, out))
}

/// Shrinks a failing frame: cut the tail, then zero bytes, while it still
/// fails the same way.
fn minimise(frame: &[u8], fails: &mut impl FnMut(&[u8]) -> bool) -> Vec<u8> {
    let mut best = frame.to_vec();
    let mut cut = best.len() / 2;
    while cut > 0 {
        if best.len() > 14 + cut && fails(&best[..best.len() - cut]) {
            best.truncate(best.len() - cut);
        } else {
            cut /= 2;
        }
    }
    for i in 0..best.len() {
        if best[i] != 0 {
            let mut t = best.clone();
            t[i] = 0;
            if fails(&t) {
                best = t;
            }
        }
    }
    best
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Fuzzes `frames` frames under `scenario` (or, with `random_configs`, a new
/// random config written straight into the map every 1000 frames).
pub fn run(scenario: &Scenario, seed: u64, frames: u64, random_configs: bool) -> Outcome {
    let mut r = Responder::load_with(scenario.settings.max_sources).expect("load the program");
    r.apply(&scenario.settings).expect("config");
    r.set_addrs(&addr_set()).expect("addrs");
    let mut rng = Rng::new(seed);
    let mut cfg_rng = Rng::new(seed ^ 0x5eed);
    let mut outcome = Outcome::default();
    let mut cfg = scenario.settings.config;
    let listed = scenario.settings.ports.0.iter().any(|w| *w != 0);
    let before = Snapshot::of(&r).expect("snapshot");
    for i in 0..frames {
        if random_configs && i % 1000 == 0 {
            cfg = random_config(&mut cfg_rng);
            r.set_config(&cfg).expect("write a raw config");
        }
        let knobs = Knobs::of(&cfg, listed, !random_configs);
        let f = frame(&mut rng);
        let Some((action, out)) = run_once(&mut r, &f) else {
            continue;
        };
        outcome.frames += 1;
        if let Some(slot) = outcome.actions.get_mut(action as usize) {
            *slot += 1;
        }
        if let Err(why) = check(&knobs, &f, action, &out)
            && outcome.failures.len() < 5
        {
            let mut fails = |cand: &[u8]| {
                run_once(&mut r, cand).is_some_and(|(a, o)| check(&knobs, cand, a, &o).err().as_ref() == Some(&why))
            };
            let small = minimise(&f, &mut fails);
            let small_out =
                run_once(&mut r, &small).map_or_else(String::new, |(a, o)| format!("action {a}: {}", hex(&o)));
            outcome.failures.push(format!(
                    "{}: seed {seed} frame #{i}: {why}\n  config: {cfg:?}\n  frame:     {}\n  minimised: {}\n  its output: {small_out}",
                    scenario.name,
                    hex(&f),
                    hex(&small)
                ));
        }
    }
    // The counters add up: one verdict and one action per frame run (the
    // minimiser's runs included, so compare against the map's own totals).
    let after = Snapshot::of(&r).expect("snapshot");
    let d = after.since(&before);
    let actions: u64 = d.actions.iter().sum();
    outcome.verdicts = icmp_common::Reason::ALL.iter().map(|r| (*r, d.verdict(*r))).collect();
    if d.frames() != actions {
        outcome.failures.push(format!(
            "{}: verdicts add up to {} but actions to {actions}",
            scenario.name,
            d.frames()
        ));
    }
    if outcome.failures.is_empty() {
        for a in Action::ALL {
            if d.action(a) != outcome.actions[a as usize] {
                outcome.failures.push(format!(
                    "{}: the {} action counter moved {} but the program returned it {} times",
                    scenario.name,
                    a.label(),
                    d.action(a),
                    outcome.actions[a as usize]
                ));
            }
        }
        if d.frames() != outcome.frames {
            outcome.failures.push(format!(
                "{}: {} verdicts for {} frames",
                scenario.name,
                d.frames(),
                outcome.frames
            ));
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_membership() {
        assert!(in_net(&[198, 51, 100, 9], &VIP_NET4));
        assert!(!in_net(&[198, 51, 101, 9], &VIP_NET4));
    }
}
