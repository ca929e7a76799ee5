//! Counter layout shared by the XDP program and the loader.
//!
//! Every counter lives in one per-CPU value, `COUNTERS` (a [`Counters`]):
//! a frame touches one map element, found with one lookup, and the lines of
//! that element it counts in — not one per-CPU allocation per counter
//! (each element of a per-CPU array is an allocation of its own, reached
//! through a pointer table: two cache lines per counter map per frame).
//!
//! - `hot`: one slot per common outcome ([`Hot`]) that stands for all of
//!   its counters at once — its verdict, its action and, for an answer, the
//!   message received and the one sent — so that the frames that make up
//!   most traffic write one 8-byte word, one cache line, whatever the
//!   per-CPU allocation's alignment; [`Counters::fold_hot`] spreads them
//!   into the other fields when the loader reads them;
//! - `actions`, then `verdicts` (one slot per [`Reason`]; every frame lands
//!   in exactly one, so the verdicts add up to the frames processed);
//! - `received` / `sent`: ICMP messages by [`type_index`] (family × type);
//! - `rate_limited`: scope × [`type_index`].

use crate::{
    ratelimit::Scope,
    reason::{Action, Family, Reason},
};

/// The per-CPU value of `COUNTERS` (about 20 KiB; a per-CPU value may be
/// up to 32 KiB).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters {
    /// By [`Hot`] outcome; see [`Counters::fold_hot`].
    pub hot: [u64; Hot::COUNT],
    /// By [`Action`] code (aborted, drop, pass, tx, redirect).
    pub actions: [u64; Action::COUNT as usize],
    /// By [`Reason`].
    pub verdicts: [u64; Reason::COUNT as usize],
    /// ICMP messages too short to parse, by family (`Icmp_InErrors`).
    pub icmp_in_errors: [u64; 2],
    /// ICMP messages received, by [`type_index`].
    pub received: [u64; TYPE_SLOTS as usize],
    /// ICMP messages sent, by [`type_index`].
    pub sent: [u64; TYPE_SLOTS as usize],
    /// Not sent (or refused, inbound) by a rate limit: scope × [`type_index`].
    pub rate_limited: [u64; (Scope::COUNT * TYPE_SLOTS) as usize],
    /// To a whole number of cache lines: each CPU's entry, and so its
    /// `hot` words, then starts a line of its own (`COUNTERS`' values start
    /// on a page), which no other CPU writes.
    pub _pad: [u64; COUNTERS_PAD],
}

/// Words of [`Counters`] before its padding.
const COUNTER_WORDS: usize = Hot::COUNT
    + Action::COUNT as usize
    + Reason::COUNT as usize
    + 2
    + 2 * TYPE_SLOTS as usize
    + (Scope::COUNT * TYPE_SLOTS) as usize;
/// Words of padding that make [`Counters`] a multiple of 64 bytes.
const COUNTERS_PAD: usize = (8 - COUNTER_WORDS % 8) % 8;

impl Default for Counters {
    fn default() -> Self {
        Self {
            hot: [0; Hot::COUNT],
            actions: [0; Action::COUNT as usize],
            verdicts: [0; Reason::COUNT as usize],
            icmp_in_errors: [0; 2],
            received: [0; TYPE_SLOTS as usize],
            sent: [0; TYPE_SLOTS as usize],
            rate_limited: [0; (Scope::COUNT * TYPE_SLOTS) as usize],
            _pad: [0; COUNTERS_PAD],
        }
    }
}

/// The common outcomes counted in one word each (`Counters::hot`).
///
/// The program counts a frame here *instead of* in `verdicts`, `actions`,
/// `received` and `sent`, and only with the action named: an echo answered
/// in shadow mode (action pass) is counted field by field.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hot {
    /// IPv4 echo request answered with XDP_TX: `echo_answered`, `tx`,
    /// received echo request (8), sent echo reply (0).
    EchoV4 = 0,
    /// ICMPv6 echo answered with XDP_TX: received 128, sent 129.
    EchoV6,
    /// IPv4 Port Unreachable sent with XDP_TX: `unreachable_sent`, `tx`,
    /// sent destination unreachable (3).
    UnreachableV4,
    /// ICMPv6 Port Unreachable sent with XDP_TX: sent type 1.
    UnreachableV6,
    /// Passed before the config was read, neither ICMP nor UDP:
    /// `other_protocol`, `pass`.
    OtherProtocolPassed,
    /// UDP to a port open by static policy, passed before the config was
    /// read: `port_open`, `pass`.
    PortOpenPassed,
}

/// An ICMP message's (family, type).
type Message = (Family, u8);

impl Hot {
    pub const COUNT: usize = 6;

    /// (verdict, action, received (family, type), sent (family, type)).
    const fn meaning(self) -> (Reason, Action, Option<Message>, Option<Message>) {
        match self {
            Self::EchoV4 => (
                Reason::EchoAnswered,
                Action::Tx,
                Some((Family::V4, 8)),
                Some((Family::V4, 0)),
            ),
            Self::EchoV6 => (
                Reason::EchoAnswered,
                Action::Tx,
                Some((Family::V6, 128)),
                Some((Family::V6, 129)),
            ),
            Self::UnreachableV4 => (Reason::UnreachableSent, Action::Tx, None, Some((Family::V4, 3))),
            Self::UnreachableV6 => (Reason::UnreachableSent, Action::Tx, None, Some((Family::V6, 1))),
            Self::OtherProtocolPassed => (Reason::OtherProtocol, Action::Pass, None, None),
            Self::PortOpenPassed => (Reason::PortOpen, Action::Pass, None, None),
        }
    }

    pub const ALL: [Self; Self::COUNT] = [
        Self::EchoV4,
        Self::EchoV6,
        Self::UnreachableV4,
        Self::UnreachableV6,
        Self::OtherProtocolPassed,
        Self::PortOpenPassed,
    ];
}

impl Counters {
    /// Moves every `hot` count into the counters it stands for (and zeroes
    /// `hot`): after it, `verdicts`, `actions`, `received` and `sent` hold
    /// every frame, as if each had been counted field by field.
    pub fn fold_hot(&mut self) {
        for h in Hot::ALL {
            let n = core::mem::take(&mut self.hot[h as usize]);
            let (verdict, action, received, sent) = h.meaning();
            self.verdicts[verdict as usize] += n;
            self.actions[action as usize] += n;
            if let Some((f, t)) = received {
                self.received[type_index(f, t) as usize] += n;
            }
            if let Some((f, t)) = sent {
                self.sent[type_index(f, t) as usize] += n;
            }
        }
    }
}

/// Slots in `received` and `sent`.
pub const TYPE_SLOTS: u32 = 512;

/// Index of (family, ICMP type) in `received` / `sent`.
#[inline(always)]
pub const fn type_index(family: Family, icmp_type: u8) -> u32 {
    ((family as u32) << 8) | icmp_type as u32
}

/// Name of an ICMP / ICMPv6 type, for humans and metric labels.
pub const fn type_name(family: Family, icmp_type: u8) -> Option<&'static str> {
    match family {
        Family::V4 => match icmp_type {
            0 => Some("echo_reply"),
            3 => Some("destination_unreachable"),
            4 => Some("source_quench"),
            5 => Some("redirect"),
            8 => Some("echo_request"),
            9 => Some("router_advertisement"),
            10 => Some("router_solicitation"),
            11 => Some("time_exceeded"),
            12 => Some("parameter_problem"),
            13 => Some("timestamp_request"),
            14 => Some("timestamp_reply"),
            15 => Some("information_request"),
            16 => Some("information_reply"),
            17 => Some("address_mask_request"),
            18 => Some("address_mask_reply"),
            _ => None,
        },
        Family::V6 => match icmp_type {
            1 => Some("destination_unreachable"),
            2 => Some("packet_too_big"),
            3 => Some("time_exceeded"),
            4 => Some("parameter_problem"),
            128 => Some("echo_request"),
            129 => Some("echo_reply"),
            133 => Some("router_solicitation"),
            134 => Some("router_advertisement"),
            135 => Some("neighbor_solicitation"),
            136 => Some("neighbor_advertisement"),
            137 => Some("redirect"),
            143 => Some("mld2_report"),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each CPU's entry is whole cache lines and starts with its hot words,
    /// so the words most frames write share one line no other CPU writes.
    #[test]
    fn a_cpus_counters_are_whole_lines_starting_with_the_hot_words() {
        assert_eq!(size_of::<Counters>() % 64, 0, "{} bytes", size_of::<Counters>());
        assert_eq!(core::mem::offset_of!(Counters, hot), 0);
        assert!(size_of::<[u64; Hot::COUNT]>() <= 64);
    }

    /// Each hot slot stands for the counters the README's verdict table
    /// gives its outcome (written out here, not derived from `meaning`).
    #[test]
    fn hot_counts_fold_into_the_counters_they_stand_for() {
        let mut c = Counters {
            hot: [1, 10, 100, 1000, 10000, 100000],
            ..Counters::default()
        };
        c.verdicts[Reason::EchoAnswered as usize] = 5;
        c.fold_hot();
        assert_eq!(c.hot, [0; Hot::COUNT]);
        assert_eq!(c.verdicts[Reason::EchoAnswered as usize], 5 + 1 + 10);
        assert_eq!(c.verdicts[Reason::UnreachableSent as usize], 1100);
        assert_eq!(c.verdicts[Reason::OtherProtocol as usize], 10000);
        assert_eq!(c.verdicts[Reason::PortOpen as usize], 100000);
        assert_eq!(c.actions[Action::Tx as usize], 1111);
        assert_eq!(c.actions[Action::Pass as usize], 110000);
        assert_eq!(c.received[8], 1, "IPv4 echo request");
        assert_eq!(c.sent[0], 1, "IPv4 echo reply");
        assert_eq!(c.received[256 + 128], 10, "ICMPv6 echo request");
        assert_eq!(c.sent[256 + 129], 10, "ICMPv6 echo reply");
        assert_eq!(c.sent[3], 100, "IPv4 destination unreachable");
        assert_eq!(c.sent[256 + 1], 1000, "ICMPv6 destination unreachable");
        assert_eq!(c.verdicts.iter().sum::<u64>(), 5 + 111111, "every frame one verdict");
        assert_eq!(c.actions.iter().sum::<u64>(), 111111);
    }

    #[test]
    fn type_index_is_within_slots() {
        assert_eq!(type_index(Family::V6, 255), TYPE_SLOTS - 1);
        assert_eq!(type_index(Family::V4, 8), 8);
        assert_eq!(type_index(Family::V6, 128), 256 + 128);
    }
}
