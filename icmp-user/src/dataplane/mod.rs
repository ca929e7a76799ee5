//! Everything that talks to the kernel about the program: loading the
//! embedded object and attaching it ([`load`]), writing config into its
//! maps ([`config_maps`]), where an instance lives on bpffs and in
//! `/run/icmpxdp` ([`pins`]), the interface's addresses through netlink
//! ([`addrs`]), entering a network namespace ([`netns`]) and the capture
//! extensions ([`capture`]).
//!
//! Nothing here decides a policy or parses a config file: it takes
//! validated [`crate::config::Settings`] and puts them where the program
//! reads them.

pub mod addrs;
pub mod capture;
pub mod config_maps;
pub mod links;
pub mod load;
pub mod netns;
pub mod pins;
pub mod protocols;
pub mod veth;
