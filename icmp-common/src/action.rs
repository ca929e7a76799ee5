//! The XDP action for a frame's [`Reason`], as config asks: the last
//! decision of every frame, so the program and the host tests share it.

use crate::{
    Config,
    config::{FLAG_DROP_SUPPRESSED, FLAG_INBOUND_DROP, FLAG_OVER_LIMIT_DROP},
    reason::{Action, Reason},
};

/// The XDP action for a frame that ended in `reason`.
///
/// Suppressed datagrams go to the kernel unless config says drop, except
/// non-first fragments: their port is unknown, so dropping them could break
/// fragmented datagrams to open ports.
#[inline(always)]
pub const fn action_for(reason: Reason, cfg: &Config) -> Action {
    match reason {
        Reason::EchoAnswered
        | Reason::UnreachableSent
        | Reason::TimestampAnswered
        | Reason::ProtocolUnreachableSent
        | Reason::AddressMaskAnswered
        | Reason::TimeExceededSent
        | Reason::FragNeededSent => Action::Tx,
        Reason::TimeExceededRedirected | Reason::FragNeededRedirected => Action::Redirect,
        Reason::PolicyDropped => Action::Drop,
        Reason::SuppressedNonFirstFragment => Action::Pass,
        Reason::RateLimitedPerSource | Reason::RateLimitedGlobal if cfg.has(FLAG_OVER_LIMIT_DROP) => Action::Drop,
        Reason::RateLimitedInbound if cfg.has(FLAG_INBOUND_DROP) => Action::Drop,
        Reason::RateLimitedPerSource | Reason::RateLimitedGlobal | Reason::RateLimitedInbound => Action::Pass,
        r if r.is_suppression() && cfg.has(FLAG_DROP_SUPPRESSED) => Action::Drop,
        _ => Action::Pass,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_actions_follow_config() {
        let none = Config {
            flags: 0,
            ..Config::default()
        };
        for r in [
            Reason::RateLimitedPerSource,
            Reason::RateLimitedGlobal,
            Reason::RateLimitedInbound,
        ] {
            assert_eq!(action_for(r, &none), Action::Pass);
        }
        let out = Config {
            flags: FLAG_OVER_LIMIT_DROP,
            ..none
        };
        assert_eq!(action_for(Reason::RateLimitedPerSource, &out), Action::Drop);
        assert_eq!(action_for(Reason::RateLimitedGlobal, &out), Action::Drop);
        assert_eq!(action_for(Reason::RateLimitedInbound, &out), Action::Pass);
        let inb = Config {
            flags: FLAG_INBOUND_DROP,
            ..none
        };
        assert_eq!(action_for(Reason::RateLimitedInbound, &inb), Action::Drop);
        assert_eq!(action_for(Reason::RateLimitedGlobal, &inb), Action::Pass);
    }

    #[test]
    fn actions_follow_config() {
        let pass = Config {
            flags: Config::default().flags & !(FLAG_OVER_LIMIT_DROP | FLAG_INBOUND_DROP),
            ..Config::default()
        };
        let drop = Config {
            flags: pass.flags | FLAG_DROP_SUPPRESSED,
            ..pass
        };
        // The policy drops whatever the suppression config says.
        assert_eq!(action_for(Reason::PolicyDropped, &pass), Action::Drop);
        assert_eq!(action_for(Reason::PolicyDropped, &drop), Action::Drop);
        for r in Reason::ALL
            .into_iter()
            .filter(|r| !r.label().starts_with("rate_limited") && *r != Reason::PolicyDropped)
        {
            // What is sent: the verdicts named "..._answered" and "..._sent"
            // by XDP_TX, "..._redirected" by XDP_REDIRECT.
            let tx = r.label().ends_with("_answered") || r.label().ends_with("_sent");
            let redirect = r.label().ends_with("_redirected");
            let want_drop = r.is_suppression() && r != Reason::SuppressedNonFirstFragment;
            let sent = if tx {
                Some(Action::Tx)
            } else if redirect {
                Some(Action::Redirect)
            } else {
                None
            };
            assert_eq!(action_for(r, &pass), sent.unwrap_or(Action::Pass), "{r:?}");
            let expect = if let Some(a) = sent {
                a
            } else if want_drop {
                Action::Drop
            } else {
                Action::Pass
            };
            assert_eq!(action_for(r, &drop), expect, "{r:?}");
        }
    }
}
