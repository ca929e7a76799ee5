//! What the IPv4 query replies (Timestamp, Address Mask) share: the limit
//! and shadow mode before one is built; then, building it, the frame
//! cut to the reply's exact length, the MACs pointed back to the requester,
//! and a new 20-byte IPv4 header, as Linux builds a reply (DF clear, the
//! configured TTL, the request's TOS and ID). The caller writes the ICMP
//! message behind it.

use aya_ebpf::{helpers::bpf_xdp_adjust_tail, programs::XdpContext};
use icmp_common::{
    Config,
    checksum::fold,
    config::FLAG_SHADOW,
    reason::{Family, Reason},
};

use crate::frame::{get, put, words};

/// What every IPv4 query reply goes through before it is built, in this
/// order: the outgoing limit for ICMP type `reply` to `to` (a refusal ends
/// with its scope's verdict), then shadow mode, where the reply is counted
/// as sent and not built (`answered`). `None`: build it.
#[inline(always)]
pub(crate) fn limit_or_shadow_v4(cfg: &Config, to: &[u8; 4], reply: u8, answered: Reason) -> Option<Reason> {
    if let Err(scope) = crate::ratelimit::outgoing_v4(cfg, to, reply) {
        return Some(scope.reason());
    }
    if cfg.has(FLAG_SHADOW) {
        crate::count::sent(Family::V4, reply);
        return Some(answered);
    }
    None
}

/// The reply's IPv4 header fields and link-layer source.
pub(crate) struct V4Reply {
    pub tos: u8,
    pub id: [u8; 2],
    pub ttl: u8,
    pub from: [u8; 4],
    pub to: [u8; 4],
    /// The reply's source MAC; `None`: the request's destination MAC.
    pub src_mac: Option<[u8; 6]>,
}

/// Cuts the frame to `l2_len + TOTAL` bytes (IPv4 header and ICMP message),
/// writes the MACs and the IPv4 header of `r`, and returns the ICMP
/// message's address: `TOTAL - 20` bytes there are inside the frame.
#[inline(always)]
pub(crate) fn resize_and_write_v4<const TOTAL: usize>(
    ctx: &XdpContext,
    l2_len: usize,
    r: &V4Reply,
) -> Result<usize, Reason> {
    let delta = (l2_len + TOTAL) as i64 - (ctx.data_end() - ctx.data()) as i64;
    // SAFETY: helper call on our own context.
    if delta != 0 && unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta as i32) } != 0 {
        return Err(Reason::NoHeadroom);
    }
    // After the resize every packet pointer is new: data and data_end are
    // read afresh (volatile, so LLVM reuses no earlier load), and the MACs
    // and the headers are checked each against its own read of data_end,
    // so LLVM cannot fold one check into the other (the verifier tracks
    // `data` and `data + l2_len` apart and needs to see both).
    // SAFETY: reading fields of the program's own context.
    let (data, end_macs, end_headers) = unsafe {
        (
            core::ptr::read_volatile(&(*ctx.ctx).data) as usize,
            core::ptr::read_volatile(&(*ctx.ctx).data_end) as usize,
            core::ptr::read_volatile(&(*ctx.ctx).data_end) as usize,
        )
    };
    let h = data + l2_len;
    if data + 12 > end_macs || l2_len > 22 || h + TOTAL > end_headers {
        return Err(Reason::Malformed);
    }
    // SAFETY: data..data+12 (the MACs) and h..h+TOTAL are inside the frame
    // (checked above).
    unsafe {
        let (dmac, smac) = (get::<[u8; 6]>(data), get::<[u8; 6]>(data + 6));
        put(data, smac);
        put(data + 6, r.src_mac.unwrap_or(dmac));
        let first = [0x45u8, r.tos];
        let total = (TOTAL as u16).to_be_bytes();
        let ttl_proto = [r.ttl, 1u8];
        // The header sum from registers (native 16-bit words; fragment word 0).
        let sum = u16::from_ne_bytes(first) as u32
            + u16::from_ne_bytes(total) as u32
            + u16::from_ne_bytes(r.id) as u32
            + u16::from_ne_bytes(ttl_proto) as u32
            + words(r.from)
            + words(r.to);
        let check = (!fold(sum)).to_ne_bytes();
        put(h, [first[0], first[1], total[0], total[1]]);
        put(h + 4, [r.id[0], r.id[1], 0, 0]);
        put(h + 8, [ttl_proto[0], ttl_proto[1], check[0], check[1]]);
        put(h + 12, r.from);
        put(h + 16, r.to);
    }
    Ok(h + 20)
}
