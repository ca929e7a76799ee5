//! `icmpxdp capture`'s shared types: the [`CaptureControl`] a capture
//! writes (filters and a lease) and the [`CaptureRecord`] the program writes
//! into its ring buffer for every captured frame (`icmp-ebpf/src/capture.rs`).

/// Bytes kept of each frame, per direction: a whole ICMP error (576 bytes,
/// RFC 1812 §4.3.2.3) behind two VLAN tags fits.
pub const MAX_SNAPLEN: usize = 640;

/// The capture's filters (the one entry of the `CAPTURE_CTL` array), read
/// only while a capture runs. The switch itself is the lease word
/// `CONTROL[CONTROL_CAPTURE_LEASE]` (`crate::config`): 0 is off, and the
/// program pays a load and a branch per frame — on the cache line it reads
/// anyway for the config slot. Non-zero, it is the CLOCK_MONOTONIC ns
/// (`bpf_ktime_get_ns`) until which the capture counts as alive: a capture
/// renews it every second, so a capture killed without a word stops
/// costing anything a few seconds later — the program itself switches an
/// expired capture off.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureControl {
    /// 0: both families; 4 or 6.
    pub family: u32,
    /// Bit `r`: keep verdict [`crate::Reason`] slot `r`.
    pub reasons: u64,
    /// Bit `a`: keep XDP action `a`.
    pub actions: u32,
    /// Keep 1 matching frame in `sample` (0 and 1: every one).
    pub sample: u32,
    /// Bytes kept per direction (clamped to [`MAX_SNAPLEN`]).
    pub snaplen: u32,
}

/// One captured frame: as received and, for a frame sent back with
/// XDP_TX, as sent.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CaptureRecord {
    /// `bpf_ktime_get_ns` (CLOCK_MONOTONIC) when the decision was made.
    pub ktime_ns: u64,
    pub ifindex: u32,
    pub rx_queue: u32,
    pub cpu: u32,
    /// The [`crate::Reason`] and [`crate::Action`] slots.
    pub reason: u16,
    pub action: u16,
    /// Frame length as received, and how much of it is in `frame_in`.
    pub len_in: u32,
    pub caplen_in: u32,
    /// Frame length as sent (XDP_TX only, else 0), and how much is in `frame_out`.
    pub len_out: u32,
    pub caplen_out: u32,
    /// Set at entry, cleared at exit: a record is only written for a frame
    /// whose beginning was kept.
    pub armed: u32,
    pub _pad: u32,
    pub frame_in: [u8; MAX_SNAPLEN],
    pub frame_out: [u8; MAX_SNAPLEN],
}

/// Slots of the capture's per-CPU statistics array.
pub mod stat {
    /// Decisions the exit hook saw.
    pub const SEEN: u32 = 0;
    /// Of those, matching the filters.
    pub const MATCHED: u32 = 1;
    /// Of those, skipped by sampling (1 in N kept).
    pub const SAMPLED_OUT: u32 = 2;
    /// Records lost: the ring buffer was full.
    pub const LOST: u32 = 3;
    /// Records written.
    pub const WRITTEN: u32 = 4;
    pub const COUNT: u32 = 5;
}

/// The ethertype of a frame after up to two VLAN tags, and where the
/// network header starts, from its first bytes.
#[inline(always)]
pub fn l3_of(frame: &[u8]) -> Option<(u16, usize)> {
    let mut at = 12;
    let mut tags = 0;
    loop {
        let t = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
        if (t == 0x8100 || t == 0x88a8) && tags < 2 {
            at += 4;
            tags += 1;
        } else {
            return Some((t, at + 2));
        }
    }
}

/// The ethertype of a frame after up to two VLAN tags.
#[inline(always)]
pub fn inner_ethertype(frame: &[u8]) -> Option<u16> {
    l3_of(frame).map(|(t, _)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethertype_behind_tags() {
        let mut f = [0u8; 30];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(inner_ethertype(&f), Some(0x0800));
        f[12..14].copy_from_slice(&[0x88, 0xa8]);
        f[16..18].copy_from_slice(&[0x81, 0x00]);
        f[20..22].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(inner_ethertype(&f), Some(0x86dd));
        assert_eq!(inner_ethertype(&f[..13]), None);
    }
}
