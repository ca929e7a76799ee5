//! Every map of the program, in one place. Names are what the loader pins
//! under `/sys/fs/bpf/icmpxdp/<iface>/`.
//!
//! The responder's maps are BTF map definitions (`#[btf_map]`), so the
//! kernel knows their key and value types and `bpftool map dump` prints
//! field names and numbers instead of hex. Three stay legacy definitions:
//! `BUCKETS` (the loader sizes it at load time), the answer-prefix LPM tries
//! and the benchmark's helper maps.

use aya_ebpf::{
    btf_maps,
    macros::{btf_map, map},
    maps::{Array, LpmTrie, LruHashMap, PerCpuArray},
};
use icmp_common::{
    AddrSet, Config,
    config::{
        CONTROL_CONFIG_SLOT, CONTROL_FAST_PATH, CONTROL_OPEN_PORTS, CONTROL_WORDS, FAST_PATH_CLOSED_V4, PORT_SLOTS,
    },
    counters::{Counters, TYPE_SLOTS},
    ratelimit::BucketKey,
};

/// `BPF_F_MMAPABLE` (uapi `bpf.h`), on every array the program reads per
/// frame — not to map them (the loader writes through the syscall), but for
/// where the kernel puts the values: an ordinary array map's values start
/// 312 bytes into its allocation (`r1 += 312` in `bpftool prog dump
/// xlated`), 56 bytes into a cache line, so a 64-byte entry straddled two
/// lines and `CONTROL`'s three words sat on two. A mmap-able array's values
/// start on a page boundary, so each structure below lies on the lines its
/// layout says (`CONTROL` one, the config's per-frame head one, a memo
/// entry one, each CPU's counters from a line of their own).
const MMAPABLE: usize = 1 << 10;

/// Two [`Config`] slots, double-buffered: a reload writes the slot not in
/// use, then flips `CONTROL[CONTROL_CONFIG_SLOT]` (0 ↔ 1: only one byte
/// changes, so no write can tear it), so the program never reads a
/// half-written config. A BTF map definition, so the kernel
/// knows the value's type and `bpftool map dump` prints its field names.
#[btf_map]
pub static CONFIG: btf_maps::Array<Config, 2, MMAPABLE> = btf_maps::Array::new();

/// The words every frame reads, side by side on one cache line (a fresh
/// frame finds the program's map values out of L1: each distinct line is a
/// miss): the `CONFIG` slot in use, the capture lease, the fast path's
/// word and whether any UDP port is listed open
/// (`icmp_common::config::CONTROL_*`). Each word has one writer and is
/// written on its own.
#[btf_map]
pub static CONTROL: btf_maps::Array<u64, { CONTROL_WORDS as usize }, MMAPABLE> = btf_maps::Array::new();

/// `CONTROL[CONTROL_FAST_PATH]` (`icmp_common::config::fast_path_word`).
#[inline(always)]
fn fast_path() -> u64 {
    CONTROL.get(CONTROL_FAST_PATH).copied().unwrap_or(0)
}

/// The config in use.
#[inline(always)]
pub fn config() -> Option<&'static Config> {
    let slot = CONTROL.get(CONTROL_CONFIG_SLOT).copied().unwrap_or(0) & 1;
    CONFIG.get(slot as u32)
}

/// Set to 1 only by `icmpxdp bench`, at load time (a `.rodata` global): the
/// echo rewrite then writes the request type back instead of the reply type,
/// so a rewritten frame is again a valid request (addresses and MACs
/// swapped, every checksum still updated) and BPF_PROG_TEST_RUN's repeat mode
/// does the whole echo path on every run. The verifier sees the frozen value
/// and removes the branch not taken, so the instructions that run are those
/// of the normal program.
#[unsafe(no_mangle)]
static BENCH_ECHO_IN_PLACE: u8 = 0;

/// The type an echo request is rewritten to: `reply`, or `request` in the
/// benchmark's in-place mode (see [`BENCH_ECHO_IN_PLACE`]).
#[inline(always)]
pub fn echo_reply_type(request: u8, reply: u8) -> u8 {
    // SAFETY: a read of an immutable static; volatile so the compiler does
    // not fold the value the loader may have changed.
    if unsafe { core::ptr::read_volatile(&BENCH_ECHO_IN_PLACE) } != 0 {
        request
    } else {
        reply
    }
}

/// The interface's own addresses and directed broadcasts (BTF: field names
/// in `bpftool map dump`).
#[btf_map]
pub static ADDRS: btf_maps::Array<AddrSet, 1, MMAPABLE> = btf_maps::Array::new();

/// `echo.answer_prefixes`, IPv4: echo requests to these destinations are
/// answered too (value unused). Looked up only with `FLAG_ANSWER_PREFIXES`.
#[map]
pub static ANSWER_PREFIXES_V4: LpmTrie<[u8; 4], u8> = LpmTrie::with_max_entries(ANSWER_PREFIXES_MAX, 0);

/// `echo.answer_prefixes`, IPv6.
#[map]
pub static ANSWER_PREFIXES_V6: LpmTrie<[u8; 16], u8> = LpmTrie::with_max_entries(ANSWER_PREFIXES_MAX, 0);

/// Entries of each answer-prefix trie (`icmp_common::config::MAX_ANSWER_PREFIXES`).
const ANSWER_PREFIXES_MAX: u32 = icmp_common::config::MAX_ANSWER_PREFIXES;

/// Every counter, in one value per CPU (see `icmp_common::counters`),
/// entry = CPU number: a plain array, not a per-CPU one. A per-CPU map's
/// lookup first loads the element's pointer from a table in the map (one
/// more cache line per frame, and a miss on a fresh frame); a plain
/// array's entry address is arithmetic. XDP runs with migration off, so a
/// CPU's entry has one writer. The loader sizes it to the possible CPUs
/// (the 1 here is a placeholder).
#[btf_map]
pub static COUNTERS: btf_maps::Array<Counters, 1, MMAPABLE> = btf_maps::Array::new();

/// This CPU's number: an entry of [`COUNTERS`] and [`REFUSALS`]. (The
/// verifier inlines the helper to one per-CPU load.)
#[inline(always)]
pub fn cpu() -> u32 {
    // SAFETY: helper without arguments.
    unsafe { aya_ebpf::helpers::bpf_get_smp_processor_id() }
}

/// Protocols that get Protocol Unreachable (bit n = protocol n; IPv4
/// slot 0, IPv6 slot 1): every protocol neither open by config nor bound
/// by a raw socket, written by the loader when `protocol_unreachable` is
/// on, all zero otherwise. Read only when `CONTROL` says some protocol is
/// closed, so pass-through traffic with the feature off reads no line of it.
#[btf_map]
pub static CLOSED_PROTOCOLS: btf_maps::Array<[u32; 8], 2, MMAPABLE> = btf_maps::Array::new();

/// With `router.frag_needed`, the smallest MTU on the host: a forwarded
/// datagram longer than it may need Fragmentation Needed / Packet Too Big,
/// and takes the full path. 0 when the feature is off. (In `CONTROL`, on
/// the line every frame reads for the capture lease.)
#[inline(always)]
pub fn frag_gate() -> u32 {
    fast_path() as u32
}

/// Whether `proto` is closed for `family_slot` (0: IPv4, 1: IPv6).
#[inline(always)]
pub fn protocol_closed(family_slot: u32, proto: u8) -> bool {
    fast_path() & (FAST_PATH_CLOSED_V4 << (family_slot & 1)) != 0
        && CLOSED_PROTOCOLS
            .get(family_slot)
            .is_some_and(|bits| icmp_common::config::type_in(bits, proto))
}

/// Whether some UDP port is open by static policy
/// (`CONTROL[CONTROL_OPEN_PORTS]`): only then does the fast path read
/// [`PORTS`].
#[inline(always)]
pub fn some_port_listed_open() -> bool {
    CONTROL.get(CONTROL_OPEN_PORTS).is_some_and(|w| *w != 0)
}

/// Whether UDP port `port` is open by static policy.
#[inline(always)]
pub fn port_listed_open(port: u16) -> bool {
    let (slot, bit) = icmp_common::config::port_slot(port);
    PORTS
        .get(slot)
        .is_some_and(|word| icmp_common::unreachable::listed_open(*word, bit))
}

/// Static port policy: bitmap of open ports, then of closed ports.
#[btf_map]
pub static PORTS: btf_maps::Array<u64, { PORT_SLOTS as usize }, MMAPABLE> = btf_maps::Array::new();

/// Per-source token buckets (GCRA: one TAT each), keyed by scope and source
/// prefix. LRU and bounded: under a spoofed-source flood the oldest sources
/// are evicted (and start over with a full burst), while the global bucket
/// still caps the total. The loader sets the size (`max_sources`).
#[map]
pub static BUCKETS: LruHashMap<BucketKey, u64> = LruHashMap::with_max_entries(65536, 0);

/// The refusal memo (`crate::refusals`): [`REFUSAL_SLOTS`] entries per CPU
/// (entry = CPU × slots + slot; a plain array, as [`COUNTERS`]), each a
/// datagram tuple (five words) and the time until which its Port
/// Unreachable is refused without asking the socket table or the bucket
/// (word 5), 64 bytes. The loader sizes it to the possible CPUs.
#[btf_map]
pub static REFUSALS: btf_maps::Array<[u64; 8], { REFUSAL_SLOTS as usize }, MMAPABLE> = btf_maps::Array::new();

/// Entries of [`REFUSALS`] per CPU.
pub const REFUSAL_SLOTS: u32 = icmp_common::ratelimit::REFUSAL_SLOTS;

/// The host-wide bucket (one TAT).
#[btf_map]
pub static GLOBAL_BUCKET: btf_maps::Array<u64, 1, MMAPABLE> = btf_maps::Array::new();

/// Benchmark generator: the frame `xdp_gen` writes into every live frame.
#[map]
pub static GEN_FRAME: Array<[u8; GEN_FRAME_LEN]> = Array::with_max_entries(1, 0);

/// Benchmark sink: frames received back, by family × ICMP type.
#[map]
pub static SINK: PerCpuArray<u64> = PerCpuArray::with_max_entries(TYPE_SLOTS, 0);

/// Length of the benchmark generator's frames: Ethernet + IP + 8-byte
/// ICMP/UDP header + 56 bytes of payload (ping's default), for IPv4.
pub const GEN_FRAME_LEN: usize = 98;
