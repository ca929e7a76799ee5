//! Captured decisions as pcapng (draft-ietf-opsawg-pcapng), the format
//! tcpdump, tshark and Wireshark read: a Section Header Block, one Interface
//! Description Block (Ethernet, the interface's name, nanosecond
//! timestamps), then an Enhanced Packet Block per frame — the frame as
//! received (`epb_flags` inbound) and, for XDP_TX, the frame as sent
//! (outbound) — each with a comment naming the verdict and the action.
//!
//! Written by hand rather than with a crate: three block types with a few
//! options each is ~80 lines, and the `pcap-file` crate's pcapng writer
//! would add a dependency for the same bytes (and it is not in this build's
//! registry cache).

use std::io::{self, Write};

use icmp_common::{Action, Reason, capture::CaptureRecord};

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const EPB: u32 = 6;
const LINKTYPE_ETHERNET: u16 = 1;
const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;
const EPB_FLAGS: u16 = 2;
const INBOUND: u32 = 1;
const OUTBOUND: u32 = 2;

fn option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    buf.extend_from_slice(&code.to_le_bytes());
    buf.extend_from_slice(&(value.len() as u16).to_le_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

fn block(out: &mut impl Write, kind: u32, body: &[u8]) -> io::Result<()> {
    let total = (12 + body.len()) as u32;
    out.write_all(&kind.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&total.to_le_bytes())
}

/// A pcapng stream with one interface.
pub struct PcapngWriter<W: Write> {
    out: W,
    /// Added to a record's CLOCK_MONOTONIC time to get Unix time.
    realtime_offset_ns: u64,
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the section and interface headers for `iface`, capturing up
    /// to `snaplen` bytes a frame.
    pub fn new(mut out: W, iface: &str, snaplen: u32, realtime_offset_ns: u64) -> io::Result<Self> {
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        option(&mut shb, 4, b"icmpxdp capture"); // shb_userappl
        option(&mut shb, OPT_END, &[]);
        block(&mut out, SHB, &shb)?;
        let mut idb = Vec::new();
        idb.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&snaplen.to_le_bytes());
        option(&mut idb, IF_NAME, iface.as_bytes());
        option(&mut idb, IF_TSRESOL, &[9]);
        option(&mut idb, OPT_END, &[]);
        block(&mut out, IDB, &idb)?;
        Ok(Self {
            out,
            realtime_offset_ns,
        })
    }

    fn packet(&mut self, ts_ns: u64, frame: &[u8], orig_len: u32, flags: u32, comment: &str) -> io::Result<()> {
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts_ns as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&orig_len.to_le_bytes());
        epb.extend_from_slice(frame);
        epb.resize(epb.len().next_multiple_of(4), 0);
        option(&mut epb, OPT_COMMENT, comment.as_bytes());
        option(&mut epb, EPB_FLAGS, &flags.to_le_bytes());
        option(&mut epb, OPT_END, &[]);
        block(&mut self.out, EPB, &epb)
    }

    /// Writes one decision: the frame as received, and the frame as sent
    /// for XDP_TX. Returns the number of packets written.
    pub fn record(&mut self, r: &CaptureRecord) -> io::Result<u32> {
        let ts = r.ktime_ns.wrapping_add(self.realtime_offset_ns);
        let verdict = Reason::from_index(u64::from(r.reason)).label();
        let action = action_label(r.action);
        let frame_in = &r.frame_in[..(r.caplen_in as usize).min(r.frame_in.len())];
        self.packet(
            ts,
            frame_in,
            r.len_in,
            INBOUND,
            &format!(
                "icmpxdp: {verdict} {action} (received, cpu {}, queue {})",
                r.cpu, r.rx_queue
            ),
        )?;
        let mut n = 1;
        if (r.action == Action::Tx as u16 || r.action == Action::Redirect as u16) && r.caplen_out > 0 {
            let frame_out = &r.frame_out[..(r.caplen_out as usize).min(r.frame_out.len())];
            self.packet(
                ts,
                frame_out,
                r.len_out,
                OUTBOUND,
                &format!(
                    "icmpxdp: {verdict} {action} (sent, cpu {}, queue {})",
                    r.cpu, r.rx_queue
                ),
            )?;
            n += 1;
        }
        Ok(n)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn action_label(a: u16) -> &'static str {
    match a {
        0 => "aborted",
        1 => "drop",
        2 => "pass",
        3 => "tx",
        4 => "redirect",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Block framing from the spec: type, total length at both ends, bodies
    /// and options padded to 32 bits.
    #[test]
    fn blocks_are_framed_and_padded() {
        let mut buf = Vec::new();
        let mut w = PcapngWriter::new(&mut buf, "eth0", 640, 0).unwrap();
        let mut rec: CaptureRecord = unsafe { std::mem::zeroed() };
        rec.caplen_in = 3;
        rec.len_in = 60;
        rec.frame_in[..3].copy_from_slice(&[1, 2, 3]);
        rec.action = 2;
        assert_eq!(w.record(&rec).unwrap(), 1);
        let mut at = 0;
        let mut kinds = Vec::new();
        while at < buf.len() {
            let kind = u32::from_le_bytes(buf[at..at + 4].try_into().unwrap());
            let len = u32::from_le_bytes(buf[at + 4..at + 8].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0, "block length a multiple of 4");
            assert_eq!(&buf[at + len - 4..at + len], &buf[at + 4..at + 8], "trailing length");
            kinds.push(kind);
            at += len;
        }
        assert_eq!(kinds, [SHB, IDB, EPB]);
        assert_eq!(at, buf.len());
    }
}
