//! icmpxdp's XDP program: parse → decide (in `icmp-common`) → rewrite → count.
#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![expect(internal_features, reason = "atomic_cxchg: core has no CAS for the bpf target")]

mod address_mask;
mod bare;
mod capture;
mod count;
mod csum;
mod frame;
mod ipv4;
mod ipv6;
mod maps;
mod parse;
mod protocol;
mod query_reply;
mod ratelimit;
mod refusals;
mod rewrite;
mod router;
mod timestamp;
mod udp;
mod unreachable;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use aya_log_ebpf::debug;
use icmp_common::{
    action::action_for,
    config::{FLAG_ENABLED, FLAG_LOG_DECISIONS, FLAG_SHADOW},
    counters::Hot,
    reason::{Action, Reason},
};
use parse::{Cursor, L3};

/// The responder. Every frame ends in exactly one [`Reason`], which is counted
/// and mapped to its XDP action.
#[xdp]
pub fn icmpxdp(ctx: XdpContext) -> u32 {
    // One load and one branch while no capture runs.
    if capture::lease() {
        capture::icmpxdp_capture_entry(ctx.ctx);
    }
    // The link-layer headers, parsed once for the fast path and the rest.
    let mut cur = Cursor::new(&ctx);
    let link = parse::ethernet(&mut cur);
    // Most of what a NIC carries is neither ICMP nor UDP, or UDP to a port
    // open by static policy: it is passed (and counted) before the config
    // is even read.
    if let Some(passed) = fast_pass(&cur, link.as_ref().map(|(_, l3, _)| l3)) {
        count::hot(passed);
        if capture::switched_on() {
            let reason = match passed {
                Hot::PortOpenPassed => Reason::PortOpen,
                _ => Reason::OtherProtocol,
            };
            capture::icmpxdp_capture_exit(ctx.ctx, reason as u64, Action::Pass as u64);
        }
        return xdp_action::XDP_PASS;
    }
    let Some(cfg) = maps::config() else {
        return xdp_action::XDP_PASS;
    };
    let reason = if cfg.has(FLAG_ENABLED) {
        try_icmpxdp(&ctx, &mut cur, link, cfg)
    } else {
        Reason::Disabled
    };
    // Shadow mode: every decision and counter as in active mode, but the
    // frame (never rewritten, see `answer_echo` and the error builders) goes
    // to the kernel; the action counted is the one returned.
    let action = if cfg.has(FLAG_SHADOW) {
        Action::Pass
    } else {
        action_for(reason, cfg)
    };
    if !count::counted_hot(reason, action) {
        count::outcome(reason, action);
    }
    if cfg.has(FLAG_LOG_DECISIONS) {
        let _ = icmpxdp_log_decision(reason as u64, action as u64);
    }
    // Read again rather than carried from the start: a flag kept across the
    // whole program doubles the states the verifier walks.
    if capture::switched_on() {
        capture::icmpxdp_capture_exit(ctx.ctx, reason as u64, action as u64);
    }
    action as u32
}

/// Debug logging of one decision through aya-log. A BPF global function:
/// verified once on its own, instead of once for every (reason, action)
/// state that reaches the end of the program.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn icmpxdp_log_decision(reason: u64, action: u64) -> u32 {
    // aya-log's macros take a context but do not use it (0.2: `let _ = ctx`),
    // so none is passed: a global function may only take the context as its
    // own, scalar-only signature keeps it verifiable on its own.
    debug!(&(), "icmpxdp: verdict {} action {}", reason, action);
    0 // global functions must return a scalar
}

/// The rest of the frame after its link-layer headers (`link`, with `cur`
/// after them; `None`: too short to hold them).
#[inline(always)]
fn try_icmpxdp(ctx: &XdpContext, cur: &mut Cursor, link: Option<Link>, cfg: &icmp_common::Config) -> Reason {
    let Some((eth, l3, l2_len)) = link else {
        return Reason::Malformed;
    };
    match l3 {
        L3::Ipv4 => ipv4::handle(ctx, cur, eth, l2_len, cfg),
        L3::Ipv6 => ipv6::handle(ctx, cur, eth, l2_len, cfg),
        L3::Other => Reason::OtherProtocol,
    }
}

/// What [`parse::ethernet`] found: the Ethernet header, what follows the
/// tags, the link-layer length.
type Link = (&'static mut parse::EthHdr, L3, usize);

/// What the fast path passes, as its hot counter word (`None`: the full
/// path decides):
/// - `OtherProtocolPassed`: certainly none of ours — not IP, or IP carrying
///   neither ICMP nor UDP (nor, for IPv6, an extension header or a
///   fragment, which `ipv6::handle` classifies);
/// - `PortOpenPassed`: UDP, not a fragment, to a port open by static
///   policy (`icmp_common::unreachable::listed_open`): open whatever else is
///   true of it, so its headers are not checked.
///
/// Either way not while a router's error may be due (TTL / hop limit ≤ 1,
/// or longer than the `frag_needed` gate). A frame too short to tell is not
/// passed here: the full path counts it as malformed.
#[inline(always)]
fn fast_pass(cur: &Cursor, l3: Option<&L3>) -> Option<Hot> {
    let l3 = l3?;
    let at = |off: usize| -> Option<u8> {
        let p = cur.pos + off;
        // SAFETY: read only after the bounds check.
        (p < cur.end()).then(|| unsafe { *(p as *const u8) })
    };
    // A big-endian 16-bit field, with one bounds check (two byte reads
    // combined by LLVM come out as arithmetic the verifier refuses).
    let at16 = |off: usize| -> Option<u16> {
        let p = cur.pos + off;
        // SAFETY: read only after the bounds check; unaligned read.
        (p + 2 <= cur.end()).then(|| u16::from_be(unsafe { core::ptr::read_unaligned(p as *const u16) }))
    };
    // No router error may be due: the TTL / hop limit (at `ttl_at`) above
    // 1, and no longer than the `router.frag_needed` gate (0 while the
    // feature is off). Read after the protocol tests, not for frames that
    // are not IP.
    let router_quiet = |ttl_at: usize| {
        at(ttl_at).is_some_and(|ttl| ttl > 1) && {
            let gate = maps::frag_gate() as usize;
            gate == 0 || cur.end() - cur.pos <= gate
        }
    };
    // Whether the UDP destination port, `l4` bytes into the IP packet, is
    // open by static policy (asked only when some port is).
    let listed_open = |l4: usize| at16(l4 + 2).is_some_and(maps::port_listed_open);
    let passed = match l3 {
        L3::Other => true,
        // A protocol marked closed (Protocol Unreachable on) takes the full
        // path; with the feature off the map is all zero and this is one line.
        // TTL ≤ 1 too: a router's Time Exceeded may be due.
        L3::Ipv4 => {
            let proto = at(9)?;
            if proto == parse::IPPROTO_UDP {
                // With no port listed open (the usual case), one word of the
                // line the capture switch was read from, and on.
                if !maps::some_port_listed_open() {
                    return None;
                }
                // Not a fragment (a later one holds no UDP header), and the
                // header length from the IHL.
                let version_ihl = at(0)?;
                let ihl = usize::from(version_ihl & 0x0f) * 4;
                let whole = at16(6).is_some_and(|frag| frag & 0x3fff == 0);
                let open = version_ihl >> 4 == 4 && ihl >= 20 && whole && router_quiet(8) && listed_open(ihl);
                return open.then_some(Hot::PortOpenPassed);
            }
            proto != parse::IPPROTO_ICMP && !maps::protocol_closed(0, proto) && router_quiet(8)
        }
        L3::Ipv6 => {
            let next = at(6)?;
            if next == parse::IPPROTO_UDP {
                if !maps::some_port_listed_open() {
                    return None;
                }
                let open = router_quiet(7) && listed_open(40);
                return open.then_some(Hot::PortOpenPassed);
            }
            next != parse::IPPROTO_ICMPV6
                && !ipv6::is_extension_or_fragment(next)
                && !maps::protocol_closed(1, next)
                && router_quiet(7)
        }
    };
    passed.then_some(Hot::OtherProtocolPassed)
}

/// Passes everything. The lab attaches it to the client's veth so that frames
/// the responder sends with XDP_TX are accepted there (a veth drops XDP_TX
/// frames unless its peer runs XDP or GRO), and benchmarks use it as the floor.
#[xdp]
pub fn xdp_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// Benchmark load generator, driven by BPF_PROG_RUN with
/// BPF_F_TEST_XDP_LIVE_FRAMES: writes the whole request from `GEN_FRAME`
/// into the frame (live-frame pages are recycled without being reset, and
/// the responder rewrote the last one in place) and sends it out of the
/// generator's veth with XDP_TX.
#[xdp]
pub fn xdp_gen(ctx: XdpContext) -> u32 {
    const N: usize = maps::GEN_FRAME_LEN;
    let (data, end) = (ctx.data(), ctx.data_end());
    let Some(frame) = maps::GEN_FRAME.get(0) else {
        return xdp_action::XDP_ABORTED;
    };
    if data + N > end {
        return xdp_action::XDP_ABORTED;
    }
    // Copied in 8-byte words. A plain copy of the array compiles to a call
    // to a byte-at-a-time `memmove` subprogram, which made the generator
    // slower than the responder it is meant to flood; volatile accesses keep
    // LLVM from turning this loop back into that call.
    let (src, dst) = (frame.as_ptr(), data as *mut u8);
    let mut i = 0;
    while i + 8 <= N {
        // SAFETY: i + 8 ≤ N: inside the map value and the frame (checked above).
        unsafe {
            core::intrinsics::unaligned_volatile_store(
                dst.add(i).cast::<u64>(),
                core::intrinsics::unaligned_volatile_load(src.add(i).cast::<u64>()),
            )
        };
        i += 8;
    }
    while i < N {
        // SAFETY: i < N, as above.
        unsafe { *dst.add(i) = *src.add(i) };
        i += 1;
    }
    xdp_action::XDP_TX
}

/// Benchmark sink on the generator's veth: counts what comes back by family
/// and ICMP type, and drops it.
#[xdp]
pub fn xdp_sink(ctx: XdpContext) -> u32 {
    let mut cur = Cursor::new(&ctx);
    if let Some((_, l3, _)) = parse::ethernet(&mut cur) {
        let (family, l4) = match l3 {
            L3::Ipv4 => (icmp_common::Family::V4, cur.next::<parse::Ipv4Hdr>().map(|_| ())),
            L3::Ipv6 => (icmp_common::Family::V6, cur.next::<parse::Ipv6Hdr>().map(|_| ())),
            L3::Other => return xdp_action::XDP_PASS,
        };
        if l4.is_some()
            && let Some(icmp) = cur.next::<parse::IcmpHdr>()
            && let Some(c) = maps::SINK.get_ptr_mut(icmp_common::counters::type_index(family, icmp.kind))
        {
            // SAFETY: per-CPU slot.
            unsafe { *c += 1 };
        }
    }
    xdp_action::XDP_DROP
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
