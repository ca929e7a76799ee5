//! Configuration and address sets, as the XDP program reads them from maps.

use crate::ratelimit::{DEFAULT_RATEMASK_V4, DEFAULT_RATEMASK_V6, Limit};

/// `Config::flags`: the program acts at all (a zeroed, never-written config
/// leaves every frame to the kernel).
pub const FLAG_ENABLED: u32 = 1 << 0;
/// `Config::flags`: answer echo requests for any unicast destination address,
/// not only the interface's own. Echo only: no error is ever generated for a
/// destination that is not the host's.
pub const FLAG_ANSWER_ANY_DST: u32 = 1 << 1;
/// `Config::flags`: answer IPv4 echo requests.
pub const FLAG_ECHO_V4: u32 = 1 << 2;
/// `Config::flags`: answer ICMPv6 echo requests.
pub const FLAG_ECHO_V6: u32 = 1 << 3;
/// `Config::flags`: log each decision through aya-log (debugging only).
pub const FLAG_LOG_DECISIONS: u32 = 1 << 4;
/// `Config::flags`: send Port Unreachable for UDP to closed IPv4 ports.
pub const FLAG_UNREACH_V4: u32 = 1 << 5;
/// `Config::flags`: send Port Unreachable for UDP to closed IPv6 ports.
pub const FLAG_UNREACH_V6: u32 = 1 << 6;
/// `Config::flags`: drop datagrams whose error was suppressed (default: pass
/// them to the kernel, which applies its own rules).
pub const FLAG_DROP_SUPPRESSED: u32 = 1 << 7;
/// `Config::flags`: ports in neither list are closed when no UDP socket would
/// receive the datagram (`bpf_sk_lookup_udp`); without it they are open.
pub const FLAG_PORTS_BY_SOCKET: u32 = 1 << 8;
/// `Config::flags`: 240.0.0.0/4 sources are not single hosts (RFC 1812
/// §4.2.2.11 (e)); clear it for networks that use that range.
pub const FLAG_RESERVED_SOURCE_INVALID: u32 = 1 << 9;

/// `Config::flags`: when a reply or error is over a rate limit, drop the
/// frame that asked for it (else pass it to the kernel).
pub const FLAG_OVER_LIMIT_DROP: u32 = 1 << 10;
/// `Config::flags`: limit incoming echo requests per source (`inbound`).
pub const FLAG_INBOUND_LIMIT: u32 = 1 << 11;
/// `Config::flags`: drop echo requests over the inbound limit (else pass).
pub const FLAG_INBOUND_DROP: u32 = 1 << 12;
/// `Config::flags`: also answer echo requests to destinations in the
/// `ANSWER_PREFIXES_V4` / `_V6` LPM tries (`echo.answer_prefixes`: VIPs
/// behind an anycast or a load balancer). Echo only, like
/// [`FLAG_ANSWER_ANY_DST`]; without the flag the tries are never looked up.
pub const FLAG_ANSWER_PREFIXES: u32 = 1 << 13;
/// `Config::flags`: shadow mode (`mode = "shadow"`): parse, decide,
/// rate-limit and count exactly as in active mode, but leave every frame
/// unchanged and pass it to the kernel.
pub const FLAG_SHADOW: u32 = 1 << 14;
/// `Config::flags`: answer ICMP Timestamp requests (13 → 14) in XDP
/// (`timestamp.action = "answer"`).
pub const FLAG_TIMESTAMP_ANSWER: u32 = 1 << 15;
/// `Config::flags`: drop the ICMP types of `drop_types_v4` / `_v6`
/// addressed to us (`[policy]`); without it the bitmaps are never read.
pub const FLAG_TYPE_POLICY: u32 = 1 << 16;
/// `Config::flags`: send Protocol Unreachable (IPv4 3/2, ICMPv6 Parameter
/// Problem 4/1) for datagrams to us of a protocol marked closed in the
/// `CLOSED_PROTOCOLS` map (`protocol_unreachable.enabled`).
pub const FLAG_PROTO_UNREACH: u32 = 1 << 17;
/// `Config::flags`: answer ICMP Address Mask requests (17 → 18) in XDP
/// (`address_mask.action = "answer"`: a declaration of authority, RFC 1122
/// §3.2.2.9).
pub const FLAG_ADDRESS_MASK_ANSWER: u32 = 1 << 18;
/// `Config::flags`: send Time Exceeded (11/0; ICMPv6 3/0) for a datagram
/// this host would forward whose TTL / hop limit is 1 or less
/// (`router.time_exceeded`).
pub const FLAG_ROUTER_TIME_EXCEEDED: u32 = 1 << 19;
/// `Config::flags`: send Fragmentation Needed (3/4; ICMPv6 Packet Too Big
/// 2/0) for a datagram this host would forward that exceeds the egress MTU
/// and may not be fragmented (`router.frag_needed`).
pub const FLAG_ROUTER_FRAG_NEEDED: u32 = 1 << 20;
/// `Config::flags`: a router error leaves from an address of the interface
/// the datagram came in on, not from the route back's
/// (`router.errors_use_inbound_ifaddr`, Linux's
/// `net.ipv4.icmp_errors_use_inbound_ifaddr`; IPv4 only, as in Linux).
pub const FLAG_ROUTER_INBOUND_IFADDR: u32 = 1 << 21;

/// Whether type `t` is set in a 256-bit type bitmap.
#[inline(always)]
pub const fn type_in(bits: &[u32; 8], t: u8) -> bool {
    bits[(t >> 5) as usize] & (1 << (t & 31)) != 0
}

/// The `CONTROL` array's words (one `u64` each, adjacent: the per-frame
/// reads of both share one cache line). Each word is written on its own, by
/// its own writer.
///
/// `CONTROL[CONTROL_CONFIG_SLOT]`: which `CONFIG` slot is in use (0 or 1); a
/// reload writes the other slot, then this word.
pub const CONTROL_CONFIG_SLOT: u32 = 0;
/// `CONTROL[CONTROL_CAPTURE_LEASE]`: the capture switch and lease (see
/// `crate::capture::CaptureControl`): 0 off, else CLOCK_MONOTONIC ns.
pub const CONTROL_CAPTURE_LEASE: u32 = 1;
/// `CONTROL[CONTROL_FAST_PATH]`: what the fast path needs besides the
/// frame, so that a pass-through frame reads no other map: the
/// `router.frag_needed` gate (the low 32 bits: the host's smallest MTU, 0
/// off) and whether any protocol is closed (Protocol Unreachable on:
/// [`FAST_PATH_CLOSED_V4`], [`FAST_PATH_CLOSED_V6`]). See
/// [`fast_path_word`].
pub const CONTROL_FAST_PATH: u32 = 2;
/// `CONTROL[CONTROL_OPEN_PORTS]`: 1 when some UDP port is open by static
/// policy (`ports.open`), 0 when none is. The fast path reads `PORTS` for a
/// UDP datagram only when it is 1 (see
/// `crate::unreachable::listed_open`); the loader writes it after `PORTS`.
pub const CONTROL_OPEN_PORTS: u32 = 3;
/// Words in `CONTROL`.
pub const CONTROL_WORDS: u32 = 4;
/// In `CONTROL[CONTROL_FAST_PATH]`: some IPv4 protocol is closed.
pub const FAST_PATH_CLOSED_V4: u64 = 1 << 32;
/// In `CONTROL[CONTROL_FAST_PATH]`: some IPv6 next header is closed.
pub const FAST_PATH_CLOSED_V6: u64 = 1 << 33;

/// The `CONTROL[CONTROL_FAST_PATH]` word.
pub const fn fast_path_word(frag_gate: u32, closed_v4: bool, closed_v6: bool) -> u64 {
    frag_gate as u64 | (closed_v4 as u64) << 32 | (closed_v6 as u64) << 33
}

/// The one entry of the `CONFIG` array map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub flags: u32,
    /// TTL of IPv4 messages we send.
    pub ttl: u8,
    /// Hop limit of IPv6 messages we send.
    pub hop_limit: u8,
    pub _pad: [u8; 2],
    /// Largest IPv4 error we build, as total IP length (RFC 1812 §4.3.2.3: 576).
    pub v4_error_size: u16,
    /// Largest IPv6 error we build (RFC 4443 §2.4(c): the minimum MTU, 1280).
    pub v6_error_size: u16,
    /// ICMP types whose sending is rate limited (bit n = type n), as
    /// `net.ipv4.icmp_ratemask`.
    pub ratemask_v4: u32,
    /// ICMPv6 types rate limited (256 bits), as `net.ipv6.icmp.ratemask`.
    pub ratemask_v6: [u32; 8],
    /// Per-source bucket for what we send (`net.ipv4.icmp_ratelimit`, burst 6).
    pub per_source: Limit,
    /// Host-wide bucket (`icmp_msgs_per_sec`, `icmp_msgs_burst`).
    pub global: Limit,
    /// Per-source bucket for incoming echo requests.
    pub inbound: Limit,
    /// Per-source keys are the source cut to these prefixes.
    pub v4_prefix: u8,
    pub v6_prefix: u8,
    pub _pad2: [u8; 6],
    /// TAI − UTC in ns, as the kernel keeps it: Timestamp replies read the
    /// TAI clock (`bpf_ktime_get_tai_ns`) and subtract this.
    pub tai_offset_ns: u64,
    /// ICMP types addressed to us that are dropped in XDP (bit n = type n;
    /// `policy.drop_ipv4_types`), read only with [`FLAG_TYPE_POLICY`].
    pub drop_types_v4: [u32; 8],
    /// The same for ICMPv6 (`policy.drop_ipv6_types`).
    pub drop_types_v6: [u32; 8],
    /// `protocol_unreachable.open_protocols` (bit n = protocol n), for the
    /// loader: it marks every other protocol without a raw socket closed in
    /// the `CLOSED_PROTOCOLS` map. The program never reads this.
    pub open_protocols: [u32; 8],
    /// To [`Config::SIZE`]: the two slots of `CONFIG` then start on cache
    /// lines (its values start on a page), and so does each slot's first
    /// 64 bytes — everything an echo or a refusal reads of the config.
    pub _pad3: [u8; 48],
}

impl Config {
    pub const DEFAULT_TTL: u8 = 64;
    pub const MAX_V4_ERROR_SIZE: u16 = 576;
    pub const MAX_V6_ERROR_SIZE: u16 = 1280;
    /// New IPv4 header + ICMP header + the quoted minimum (RFC 792: the IP
    /// header, 20 bytes without options, plus 8 bytes of the datagram).
    pub const MIN_V4_ERROR_SIZE: u16 = 20 + 8 + 20 + 8;
    /// New IPv6 header + ICMPv6 header + quoted IPv6 header + 8 bytes.
    pub const MIN_V6_ERROR_SIZE: u16 = 40 + 8 + 40 + 8;

    /// Linux's default protocol handlers: ICMP, IGMP, IPIP, TCP, UDP, IPv6,
    /// GRE, ESP, AH, ICMPv6, SCTP, UDP-Lite (`protocol_unreachable.open_protocols`).
    pub const DEFAULT_OPEN_PROTOCOLS: [u32; 8] = {
        let mut bits = [0u32; 8];
        let list = [1u8, 2, 4, 6, 17, 41, 47, 50, 51, 58, 132, 136];
        let mut i = 0;
        while i < list.len() {
            bits[(list[i] >> 5) as usize] |= 1 << (list[i] & 31);
            i += 1;
        }
        bits
    };

    /// Bytes in a `Config`: four cache lines.
    pub const SIZE: usize = 256;

    pub const fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            flags: FLAG_ENABLED
                | FLAG_ECHO_V4
                | FLAG_ECHO_V6
                | FLAG_UNREACH_V4
                | FLAG_UNREACH_V6
                | FLAG_PORTS_BY_SOCKET
                | FLAG_RESERVED_SOURCE_INVALID
                | FLAG_OVER_LIMIT_DROP
                | FLAG_INBOUND_DROP,
            ttl: Self::DEFAULT_TTL,
            hop_limit: Self::DEFAULT_TTL,
            _pad: [0; 2],
            v4_error_size: Self::MAX_V4_ERROR_SIZE,
            v6_error_size: Self::MAX_V6_ERROR_SIZE,
            ratemask_v4: DEFAULT_RATEMASK_V4,
            ratemask_v6: DEFAULT_RATEMASK_V6,
            per_source: Limit::new(1_000_000_000, 6),
            global: Limit::per_second(1000, 50),
            inbound: Limit::UNLIMITED,
            v4_prefix: 32,
            v6_prefix: 64,
            _pad2: [0; 6],
            tai_offset_ns: 0,
            drop_types_v4: [0; 8],
            drop_types_v6: [0; 8],
            open_protocols: Self::DEFAULT_OPEN_PROTOCOLS,
            _pad3: [0; 48],
        }
    }
}

/// Most IPv4 addresses (and as many directed broadcasts) one interface can have
/// in the address set; the loader warns about the rest.
pub const MAX_V4_ADDRS: usize = 16;
/// Most IPv6 addresses one interface can have in the address set.
pub const MAX_V6_ADDRS: usize = 16;

/// The interface's own addresses: the one entry of the `ADDRS` array map.
///
/// A fixed array scanned linearly rather than a hash map: a bounded scan of a
/// few words is inlined by the verifier and costs less than one hash-map
/// helper call, and interfaces rarely have more than a handful of addresses.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrSet {
    // The lengths first: with the first IPv4 addresses they share the
    // value's first cache line, all an IPv4 decision usually reads.
    pub v4_len: u32,
    pub v4_broadcast_len: u32,
    pub v6_len: u32,
    pub _pad: u32,
    pub v4: [[u8; 4]; MAX_V4_ADDRS],
    /// Directed broadcast address of each IPv4 subnet on the interface.
    pub v4_broadcast: [[u8; 4]; MAX_V4_ADDRS],
    pub v6: [[u8; 16]; MAX_V6_ADDRS],
    /// The network mask of each address in `v4` (same index): what an
    /// Address Mask reply carries, and which subnet a broadcast is for.
    pub v4_masks: [[u8; 4]; MAX_V4_ADDRS],
    /// The interface's MAC: the source of a reply to a link-layer broadcast.
    pub mac: [u8; 6],
    pub _pad2: [u8; 2],
}

impl Default for AddrSet {
    fn default() -> Self {
        Self {
            v4_len: 0,
            v4_broadcast_len: 0,
            v6_len: 0,
            _pad: 0,
            v4: [[0; 4]; MAX_V4_ADDRS],
            v4_broadcast: [[0; 4]; MAX_V4_ADDRS],
            v6: [[0; 16]; MAX_V6_ADDRS],
            v4_masks: [[0; 4]; MAX_V4_ADDRS],
            mac: [0; 6],
            _pad2: [0; 2],
        }
    }
}

impl AddrSet {
    #[inline(always)]
    pub fn has_v4(&self, a: &[u8; 4]) -> bool {
        contains(&self.v4, self.v4_len, a)
    }

    #[inline(always)]
    pub fn is_v4_broadcast(&self, a: &[u8; 4]) -> bool {
        contains(&self.v4_broadcast, self.v4_broadcast_len, a)
    }

    #[inline(always)]
    pub fn has_v6(&self, a: &[u8; 16]) -> bool {
        contains(&self.v6, self.v6_len, a)
    }

    /// Adds an address; false when the set is full.
    pub fn push_v4(&mut self, a: [u8; 4]) -> bool {
        push(&mut self.v4, &mut self.v4_len, a)
    }

    /// Records the network mask of address `a` (already pushed).
    pub fn set_v4_mask(&mut self, a: [u8; 4], mask: [u8; 4]) {
        if let Some(i) = self.v4[..self.v4_len as usize].iter().position(|x| *x == a) {
            self.v4_masks[i] = mask;
        }
    }

    pub fn push_v4_broadcast(&mut self, a: [u8; 4]) -> bool {
        push(&mut self.v4_broadcast, &mut self.v4_broadcast_len, a)
    }

    pub fn push_v6(&mut self, a: [u8; 16]) -> bool {
        push(&mut self.v6, &mut self.v6_len, a)
    }
}

#[inline(always)]
fn contains<const N: usize, T: PartialEq>(set: &[T; N], len: u32, x: &T) -> bool {
    // Bounded by the array size so the verifier sees a constant trip count,
    // and stopping at `len`: most interfaces have one or two addresses.
    let mut i = 0;
    while i < N {
        if i as u32 >= len {
            return false;
        }
        if set[i] == *x {
            return true;
        }
        i += 1;
    }
    false
}

fn push<const N: usize, T: PartialEq + Copy>(set: &mut [T; N], len: &mut u32, x: T) -> bool {
    if contains(set, *len, &x) {
        return true;
    }
    let Some(slot) = set.get_mut(*len as usize) else {
        return false;
    };
    *slot = x;
    *len += 1;
    true
}

/// Entries in each of the `ANSWER_PREFIXES_V4` / `_V6` LPM tries
/// (`echo.answer_prefixes`).
pub const MAX_ANSWER_PREFIXES: u32 = 1024;

/// Words in each half of the `PORTS` bitmap map: 1024 × 64 bits = 65536 ports.
pub const PORT_WORDS: u32 = 1024;
/// `PORTS` slots: words `0..PORT_WORDS` mark open ports, the next
/// `PORT_WORDS` closed ports.
pub const PORT_SLOTS: u32 = 2 * PORT_WORDS;

/// Slot of `port` in the open half of `PORTS` and its bit in that word; the
/// closed half's slot is `PORT_WORDS` further.
#[inline(always)]
pub const fn port_slot(port: u16) -> (u32, u64) {
    ((port >> 6) as u32, 1u64 << (port & 63))
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: both are #[repr(C)] plain integers/arrays with explicit padding
    // fields, so every bit pattern is valid and there are no implicit holes.
    unsafe impl aya::Pod for super::Config {}
    unsafe impl aya::Pod for super::AddrSet {}
    unsafe impl aya::Pod for crate::ratelimit::BucketKey {}
    unsafe impl aya::Pod for crate::counters::Counters {}
    unsafe impl aya::Pod for crate::capture::CaptureControl {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each `CONFIG` slot is four whole cache lines, and what an echo or a
    /// refusal reads (flags, TTLs, error sizes, both ratemasks, the
    /// per-source limit) lies in its first.
    #[test]
    fn a_config_slot_is_four_lines_with_the_per_frame_fields_in_the_first() {
        assert_eq!(size_of::<Config>(), 256);
        assert_eq!(Config::SIZE, 256);
        assert_eq!(core::mem::offset_of!(Config, flags), 0);
        assert!(core::mem::offset_of!(Config, ratemask_v4) + 4 <= 64);
        assert!(core::mem::offset_of!(Config, ratemask_v6) + 32 <= 64);
        assert_eq!(core::mem::offset_of!(Config, per_source) + 16, 64);
    }

    #[test]
    fn addr_set_membership_respects_len() {
        let mut s = AddrSet::default();
        // A zeroed slot beyond len must not match 0.0.0.0.
        assert!(!s.has_v4(&[0, 0, 0, 0]));
        assert!(s.push_v4([192, 0, 2, 1]));
        assert!(s.has_v4(&[192, 0, 2, 1]));
        assert!(!s.has_v4(&[192, 0, 2, 2]));
        assert!(s.push_v4([192, 0, 2, 1]), "duplicates are accepted once");
        assert_eq!(s.v4_len, 1);
        for i in 1..MAX_V4_ADDRS as u8 {
            assert!(s.push_v4([10, 0, 0, i]));
        }
        assert!(!s.push_v4([10, 0, 1, 0]), "full set refuses");
        assert!(s.has_v4(&[10, 0, 0, (MAX_V4_ADDRS - 1) as u8]));
    }

    #[test]
    fn struct_sizes_have_no_implicit_padding() {
        assert_eq!(size_of::<Config>(), 12 + 4 + 32 + 3 * 16 + 8 + 8 + 64 + 32 + 48);
        assert_eq!(align_of::<Config>(), 8);
        assert_eq!(
            size_of::<AddrSet>(),
            4 * MAX_V4_ADDRS * 2 + 16 * MAX_V6_ADDRS + 16 + 4 * MAX_V4_ADDRS + 8
        );
    }
}
