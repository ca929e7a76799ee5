//! In-place rewrites. Checksums are updated incrementally (RFC 1624): swapping
//! source and destination leaves every sum unchanged (the IPv4 header sum and
//! the ICMPv6 pseudo-header sum are symmetric in them), so only the TTL /
//! hop-limit word and the type word need an update.

use icmp_common::checksum::{icmp4_canonical, replace16};

use crate::parse::{EthHdr, IcmpHdr, Ipv4Hdr, Ipv6Hdr, word};

#[inline(always)]
pub fn swap_macs(eth: &mut EthHdr) {
    core::mem::swap(&mut eth.dst, &mut eth.src);
}

/// Echo request → echo reply (type `reply_type`, code kept as Linux does).
#[inline(always)]
pub fn echo_reply_v4(ip: &mut Ipv4Hdr, icmp: &mut IcmpHdr, ttl: u8, reply_type: u8) {
    let old = word([ip.ttl, ip.proto]);
    ip.ttl = ttl;
    let new = word([ip.ttl, ip.proto]);
    ip.check = replace16(word(ip.check), old, new).to_ne_bytes();
    core::mem::swap(&mut ip.src, &mut ip.dst);

    set_type(icmp, reply_type, true);
}

#[inline(always)]
pub fn echo_reply_v6(ip: &mut Ipv6Hdr, icmp: &mut IcmpHdr, hop_limit: u8, reply_type: u8) {
    // The hop limit is not covered by any checksum.
    ip.hop_limit = hop_limit;
    core::mem::swap(&mut ip.src, &mut ip.dst);
    set_type(icmp, reply_type, false);
}

#[inline(always)]
fn set_type(icmp: &mut IcmpHdr, kind: u8, v4: bool) {
    let old = word([icmp.kind, icmp.code]);
    icmp.kind = kind;
    let new = word([icmp.kind, icmp.code]);
    let check = replace16(word(icmp.check), old, new);
    icmp.check = if v4 { icmp4_canonical(check) } else { check }.to_ne_bytes();
}
