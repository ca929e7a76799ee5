//! `icmpxdp capture`'s kernel side: while a capture holds a live lease
//! (`CONTROL[CONTROL_CAPTURE_LEASE]`), every frame is kept as received (entry) and, after the
//! decision, filtered (verdict, action, family), sampled 1 in N, completed
//! with the frame as sent for XDP_TX, and written to `CAPTURE_RING` (full:
//! counted as lost, never waited for), with the filters of `CAPTURE_CTL`.
//! Without a capture the program pays one load and one branch per frame
//! ([`lease`]), on the line it reads for the config slot anyway.
//!
//! Why a lease and not a BPF extension (`freplace`) owned by the capture
//! process, which the kernel would drop with it: this kernel refuses
//! BPF_PROG_TYPE_EXT loads with EPERM (trampolines are not available here,
//! nor is ftrace), so the program switches an expired capture off itself.

use aya_ebpf::{
    bindings::xdp_md,
    btf_maps,
    cty::c_void,
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_xdp_get_buff_len, bpf_xdp_load_bytes},
    macros::{btf_map, map},
    maps::{PerCpuArray, RingBuf},
};
use icmp_common::{
    capture::{CaptureControl, CaptureRecord, MAX_SNAPLEN, inner_ethertype, stat},
    config::CONTROL_CAPTURE_LEASE,
};

use crate::maps::CONTROL;

/// The filters, written by `icmpxdp capture` before it switches on.
#[btf_map]
pub static CAPTURE_CTL: btf_maps::Array<CaptureControl, 1> = btf_maps::Array::new();

/// This CPU's record of the frame being decided.
#[map]
static CAPTURE_SCRATCH: PerCpuArray<CaptureRecord> = PerCpuArray::with_max_entries(1, 0);

/// [`stat`] slots, then the sampling counter.
#[map]
static CAPTURE_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(stat::COUNT + 1, 0);

/// 2 MiB: about 1500 records of a burst before the reader catches up.
#[map]
static CAPTURE_RING: RingBuf = RingBuf::with_byte_size(2 << 20, 0);

/// `bpf_ringbuf_query` / `bpf_ringbuf_output` flags (uapi `bpf.h`).
const BPF_RB_AVAIL_DATA: u64 = 0;
const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;
/// Queued bytes at which the reader is woken: about 200 records.
const WAKEUP_BYTES: u64 = 256 << 10;

/// Whether a capture runs: its switch is on and its lease unexpired. An
/// expired lease (the capture was killed) is switched off here, so the next
/// frames pay only the load and the branch again.
#[inline(always)]
pub fn lease() -> bool {
    let Some(lease) = CONTROL.get_ptr_mut(CONTROL_CAPTURE_LEASE) else {
        return false;
    };
    // SAFETY: a word of a map value; a racing renewal at worst re-enables it.
    unsafe {
        let until = *lease;
        if until == 0 {
            return false;
        }
        if bpf_ktime_get_ns() > until {
            *lease = 0;
            return false;
        }
    }
    true
}

/// Whether the switch is on (no lease check: the exit hook only writes a
/// record for a frame the entry hook armed under a live lease).
#[inline(always)]
pub fn switched_on() -> bool {
    CONTROL.get(CONTROL_CAPTURE_LEASE).is_some_and(|until| *until != 0)
}

#[inline(always)]
fn bump(slot: u32) -> u64 {
    match CAPTURE_STATS.get_ptr_mut(slot) {
        // SAFETY: this CPU's slot; BPF programs do not migrate mid-run.
        Some(c) => unsafe {
            *c += 1;
            *c
        },
        None => 0,
    }
}

/// Copies up to `snaplen` bytes of the frame into `buf`; returns how many.
#[inline(always)]
fn copy_frame(ctx: *mut xdp_md, buf: &mut [u8; MAX_SNAPLEN], len: u64, snaplen: u32) -> u32 {
    let cap = len.min(snaplen as u64).min(MAX_SNAPLEN as u64) as u32;
    if cap == 0 || cap as usize > MAX_SNAPLEN {
        return 0;
    }
    // SAFETY: `buf` holds MAX_SNAPLEN ≥ cap bytes; helper on our own context.
    let r = unsafe { bpf_xdp_load_bytes(ctx, 0, buf.as_mut_ptr() as *mut c_void, cap) };
    if r == 0 { cap } else { 0 }
}

/// Keeps the frame as received. A BPF global function: verified once, on
/// its own, and called only while a capture runs.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn icmpxdp_capture_entry(ctx: *mut xdp_md) -> u64 {
    let (Some(ctl), Some(rec)) = (CAPTURE_CTL.get(0), CAPTURE_SCRATCH.get_ptr_mut(0)) else {
        return 0;
    };
    // SAFETY: this CPU's scratch record.
    let rec = unsafe { &mut *rec };
    // SAFETY: helper on our own context.
    let len = unsafe { bpf_xdp_get_buff_len(ctx) };
    rec.len_in = len as u32;
    rec.caplen_in = copy_frame(ctx, &mut rec.frame_in, len, ctl.snaplen);
    rec.armed = 1;
    0
}

/// Filters, samples and writes the record of a decided frame (the frame in
/// `ctx` is the one sent, for XDP_TX). Global, as [`icmpxdp_capture_entry`].
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn icmpxdp_capture_exit(ctx: *mut xdp_md, reason: u64, action: u64) -> u64 {
    bump(stat::SEEN);
    let (Some(ctl), Some(rec)) = (CAPTURE_CTL.get(0), CAPTURE_SCRATCH.get_ptr_mut(0)) else {
        return 0;
    };
    // SAFETY: this CPU's scratch record.
    let rec = unsafe { &mut *rec };
    if rec.armed == 0 {
        return 0;
    }
    rec.armed = 0;
    if (ctl.reasons >> (reason & 63)) & 1 == 0 || (ctl.actions >> (action & 31)) & 1 == 0 {
        return 0;
    }
    if ctl.family != 0 {
        let want = if ctl.family == 4 { 0x0800 } else { 0x86dd };
        if rec.caplen_in < 14 || inner_ethertype(&rec.frame_in) != Some(want) {
            return 0;
        }
    }
    bump(stat::MATCHED);
    let sample = ctl.sample as u64;
    if sample > 1 && bump(stat::COUNT) % sample != 0 {
        bump(stat::SAMPLED_OUT);
        return 0;
    }
    // SAFETY: helpers and fields of our own context.
    unsafe {
        rec.ktime_ns = bpf_ktime_get_ns();
        rec.cpu = bpf_get_smp_processor_id();
        rec.ifindex = (*ctx).ingress_ifindex;
        rec.rx_queue = (*ctx).rx_queue_index;
    }
    rec.reason = reason as u16;
    rec.action = action as u16;
    // The frame sent: XDP_TX (3) or, for a router error, XDP_REDIRECT (4).
    if action == 3 || action == 4 {
        // SAFETY: helper on our own context.
        let len = unsafe { bpf_xdp_get_buff_len(ctx) };
        rec.len_out = len as u32;
        rec.caplen_out = copy_frame(ctx, &mut rec.frame_out, len, ctl.snaplen);
    } else {
        rec.len_out = 0;
        rec.caplen_out = 0;
    }
    // Waking the reader costs an interrupt-work item per record: wake it
    // only once a batch has piled up; it also polls every 100 ms.
    let flags = if CAPTURE_RING.query(BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    if CAPTURE_RING.output::<CaptureRecord>(&*rec, flags).is_ok() {
        bump(stat::WRITTEN);
    } else {
        bump(stat::LOST);
    }
    0
}
