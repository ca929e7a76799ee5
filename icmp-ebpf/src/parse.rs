//! Header layouts and a bounds-checked cursor, in the style of xdp-tools'
//! `parsing_helpers.h`: one cursor, one function per header, each returning
//! what comes next.
//!
//! Every header is a `#[repr(C)]` struct of bytes (alignment 1), so reading a
//! field never assumes the packet is aligned.

use aya_ebpf::{bindings::xdp_md, programs::XdpContext};

#[repr(C)]
pub struct EthHdr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub proto: [u8; 2],
}

#[repr(C)]
pub struct VlanHdr {
    pub tci: [u8; 2],
    pub proto: [u8; 2],
}

#[repr(C)]
pub struct Ipv4Hdr {
    pub version_ihl: u8,
    pub tos: u8,
    pub tot_len: [u8; 2],
    pub id: [u8; 2],
    pub frag_off: [u8; 2],
    pub ttl: u8,
    pub proto: u8,
    pub check: [u8; 2],
    pub src: [u8; 4],
    pub dst: [u8; 4],
}

#[repr(C)]
pub struct Ipv6Hdr {
    pub version_tc_flow: [u8; 4],
    pub payload_len: [u8; 2],
    pub next_header: u8,
    pub hop_limit: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

/// The 8-byte ICMP / ICMPv6 header (type, code, checksum, rest of header).
#[repr(C)]
pub struct IcmpHdr {
    pub kind: u8,
    pub code: u8,
    pub check: [u8; 2],
    pub rest: [u8; 4],
}

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const IPPROTO_UDP: u8 = 17;

/// A position in the packet.
pub struct Cursor {
    pub pos: usize,
    ctx: *mut xdp_md,
}

impl Cursor {
    #[inline(always)]
    pub fn new(ctx: &XdpContext) -> Self {
        Self {
            pos: ctx.data(),
            ctx: ctx.ctx,
        }
    }

    /// The end of the frame, loaded afresh (volatile) at every use: LLVM
    /// must not prove a header in bounds from a length field checked earlier
    /// and drop the check the verifier needs to see.
    #[inline(always)]
    pub fn end(&self) -> usize {
        // SAFETY: reading a field of the program's own context.
        unsafe { core::ptr::read_volatile(&(*self.ctx).data_end) as usize }
    }

    /// The next `T` in the packet, or `None` if the packet is too short.
    #[inline(always)]
    pub fn next<T>(&mut self) -> Option<&'static mut T> {
        let start = self.pos;
        if start + size_of::<T>() > self.end() {
            return None;
        }
        self.pos = start + size_of::<T>();
        // SAFETY: bounds checked against data_end just above (and again by the
        // verifier); T is a byte-aligned header struct.
        Some(unsafe { &mut *(start as *mut T) })
    }

    /// Bytes left from the cursor to the end of the frame.
    #[inline(always)]
    pub fn remaining(&self) -> usize {
        self.end() - self.pos
    }
}

/// What follows the link-layer headers.
pub enum L3 {
    Ipv4,
    Ipv6,
    Other,
}

/// Ethernet plus up to two VLAN tags (802.1Q / 802.1ad), left in place so a
/// reply built in the same buffer carries them back. Also returns the
/// link-layer header length, a constant per branch (14, 18 or 22): the
/// verifier would see a difference of packet pointers as unbounded.
#[inline(always)]
pub fn ethernet(cur: &mut Cursor) -> Option<(&'static mut EthHdr, L3, usize)> {
    let eth: &mut EthHdr = cur.next()?;
    let mut proto = u16::from_be_bytes(eth.proto);
    let mut l2_len = size_of::<EthHdr>();
    // Unrolled: two tags at most, no loop for the verifier to bound.
    if is_vlan(proto) {
        let tag: &mut VlanHdr = cur.next()?;
        proto = u16::from_be_bytes(tag.proto);
        l2_len += size_of::<VlanHdr>();
        if is_vlan(proto) {
            let tag: &mut VlanHdr = cur.next()?;
            proto = u16::from_be_bytes(tag.proto);
            l2_len += size_of::<VlanHdr>();
        }
    }
    let l3 = match proto {
        ETH_P_IP => L3::Ipv4,
        ETH_P_IPV6 => L3::Ipv6,
        _ => L3::Other,
    };
    Some((eth, l3, l2_len))
}

#[inline(always)]
const fn is_vlan(proto: u16) -> bool {
    proto == ETH_P_8021Q || proto == ETH_P_8021AD
}

/// A 16-bit word as it sits in memory, for checksum arithmetic.
#[inline(always)]
pub const fn word(b: [u8; 2]) -> u16 {
    u16::from_ne_bytes(b)
}
