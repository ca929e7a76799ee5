//! ICMP Timestamp reply (RFC 792), built in the request's frame as Linux
//! builds it (`icmp_timestamp`): a new 20-byte IPv4 header (DF clear, the
//! configured TTL, the request's TOS and ID) and a 20-byte ICMP message —
//! type 14, the request's identifier, sequence number and originate
//! timestamp, receive and transmit timestamps both "now" in ms since
//! midnight UTC — whatever the request's length.
//!
//! The clock: `bpf_ktime_get_tai_ns` minus the kernel's TAI − UTC offset,
//! which the loader publishes in the config. CLOCK_TAI and CLOCK_REALTIME
//! are the same timekeeper apart from that whole-second offset, so the
//! program's time never drifts from the host's (publishing realtime minus
//! the monotonic clock instead would drift with every NTP slew until the
//! loader next refreshed it).

use aya_ebpf::{
    bindings::xdp_md,
    helpers::{bpf_ktime_get_tai_ns, bpf_xdp_adjust_tail},
    programs::XdpContext,
};
use icmp_common::{
    checksum::fold,
    echo::ms_since_midnight_utc,
    reason::{Family, Reason},
};

use crate::count;
use crate::frame::{get, put, words};

/// Builds and counts the reply for the timestamp request after the
/// `l2_len`-byte link header, whose ICMP data (after the 8-byte header) is
/// `data_len` bytes. The caller has decided to answer. A BPF global
/// function, verified once with scalar arguments; it re-derives and
/// re-checks every packet pointer. Returns the [`Reason`] slot.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn icmpxdp_timestamp_reply(ctx: *mut xdp_md, l2_len: u64, data_len: u64) -> u64 {
    let ctx = XdpContext::new(ctx);
    let Some(cfg) = crate::maps::config() else {
        return Reason::Disabled as u64;
    };
    let l2_len = l2_len as usize;
    // Linux answers from 4 bytes of data (the originate timestamp) up.
    if !(14..=22).contains(&l2_len) || data_len < 4 {
        count::in_error(Family::V4);
        return Reason::Malformed as u64;
    }
    let now = ms_since_midnight_utc(
        // SAFETY: helper without arguments.
        unsafe { bpf_ktime_get_tai_ns() },
        cfg.tai_offset_ns,
    )
    .to_be_bytes();
    let ttl = cfg.ttl;
    // The request's fields the reply keeps, read before the frame changes.
    let h = ctx.data() + l2_len;
    // SAFETY: reading a field of the program's own context.
    let end = unsafe { core::ptr::read_volatile(&(*ctx.ctx).data_end) } as usize;
    if h + 32 > end {
        return Reason::Malformed as u64;
    }
    // SAFETY: h..h+32 (IPv4 header, ICMP header, originate) is inside the
    // frame (checked above).
    let (tos, id, src, dst, ident_seq, originate) = unsafe {
        (
            get::<u8>(h + 1),
            get::<[u8; 2]>(h + 4),
            get::<[u8; 4]>(h + 12),
            get::<[u8; 4]>(h + 16),
            get::<[u8; 4]>(h + 24),
            get::<[u8; 4]>(h + 28),
        )
    };
    // Exactly 20 + 20 bytes after the link header.
    let want = (l2_len + 40) as i64;
    let delta = want - (ctx.data_end() - ctx.data()) as i64;
    // SAFETY: helper call on our own context.
    if delta != 0 && unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta as i32) } != 0 {
        return Reason::NoHeadroom as u64;
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
    if data + 12 > end_macs || l2_len > 22 || h + 40 > end_headers {
        return Reason::Malformed as u64;
    }
    // SAFETY: data..data+12 (the MACs) and h..h+40 are inside the frame
    // (checked above).
    unsafe {
        let (dmac, smac) = (get::<[u8; 6]>(data), get::<[u8; 6]>(data + 6));
        put(data, smac);
        put(data + 6, dmac);
        let first = [0x45u8, tos];
        let total = 40u16.to_be_bytes();
        let ttl_proto = [ttl, 1u8];
        // The header sum from registers (native 16-bit words; fragment word 0).
        let sum = u16::from_ne_bytes(first) as u32
            + u16::from_ne_bytes(total) as u32
            + u16::from_ne_bytes(id) as u32
            + u16::from_ne_bytes(ttl_proto) as u32
            + words(dst)
            + words(src);
        let check = (!fold(sum)).to_ne_bytes();
        put(h, [first[0], first[1], total[0], total[1]]);
        put(h + 4, [id[0], id[1], 0, 0]);
        put(h + 8, [ttl_proto[0], ttl_proto[1], check[0], check[1]]);
        put(h + 12, dst); // from the address asked
        put(h + 16, src); // back to the sender
        let icmp_sum = u16::from_ne_bytes([14, 0]) as u32 + words(ident_seq) + words(originate) + 2 * words(now);
        let icmp_check = (!fold(icmp_sum)).to_ne_bytes();
        put(h + 20, [14u8, 0, icmp_check[0], icmp_check[1]]);
        put(h + 24, ident_seq);
        put(h + 28, originate);
        put(h + 32, now);
        put(h + 36, now);
    }
    count::sent(Family::V4, 14);
    Reason::TimestampAnswered as u64
}
