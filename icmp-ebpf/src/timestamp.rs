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

use aya_ebpf::{bindings::xdp_md, helpers::bpf_ktime_get_tai_ns, programs::XdpContext};
use icmp_common::{
    checksum::fold,
    echo::ms_since_midnight_utc,
    reason::{Family, Reason},
};

use crate::{
    count,
    frame::{get, put, words},
    query_reply::{V4Reply, resize_and_write_v4},
};

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
    // Exactly 20 + 20 bytes after the link header: from the address asked,
    // back to the sender.
    let reply = V4Reply {
        tos,
        id,
        ttl,
        from: dst,
        to: src,
        src_mac: None,
    };
    let icmp = match resize_and_write_v4::<40>(&ctx, l2_len, &reply) {
        Ok(icmp) => icmp,
        Err(r) => return r as u64,
    };
    let icmp_sum = u16::from_ne_bytes([14, 0]) as u32 + words(ident_seq) + words(originate) + 2 * words(now);
    let icmp_check = (!fold(icmp_sum)).to_ne_bytes();
    // SAFETY: icmp..icmp+20 is inside the frame (`resize_and_write_v4`).
    unsafe {
        put(icmp, [14u8, 0, icmp_check[0], icmp_check[1]]);
        put(icmp + 4, ident_seq);
        put(icmp + 8, originate);
        put(icmp + 12, now);
        put(icmp + 16, now);
    }
    count::sent(Family::V4, 14);
    Reason::TimestampAnswered as u64
}
