//! Configuration: from the TOML file and `--set` overrides ([`file`]) through
//! validation ([`validate`], [`ports`]) to the [`Settings`] the loader
//! writes into the program's maps.
//!
//! Invalid config is rejected here, naming the key, the value and the reason,
//! before anything reaches the kernel. Nothing in this room touches a map or
//! the kernel: writing settings is `dataplane::config_maps`.

pub mod file;
pub mod ports;
pub mod prefixes;
pub mod validate;

pub use file::{
    AddressMask, Debug, Echo, FileConfig, InboundEcho, Ip, OverLimit, Policy, PortPolicy, PortSpec,
    ProtocolUnreachable, QueryAction, RateLimit, Ratemask, ResponderMode, Router, SuppressedAction, Timestamp,
    Unreachable,
};
pub use ports::PortBitmaps;
pub use prefixes::AnswerPrefixes;
pub use validate::Settings;
