//! `icmpxdp reload`: validate first (an invalid config changes nothing),
//! then write every named instance's pinned config maps.

use std::io::Write as _;

use anyhow::{Context as _, Result};
use icmp_user::{
    config::FileConfig,
    dataplane::{config_maps::Pinned, pins as pin},
};

use super::instances_named;

/// `icmpxdp reload`: validate first (nothing is written if invalid), then
/// write every instance's pinned maps.
pub(crate) fn reload(
    iface: Option<&str>,
    netns: Option<&str>,
    config: Option<&std::path::Path>,
    sets: &[String],
) -> Result<()> {
    let settings = FileConfig::load(config, sets)?
        .settings()
        .context("reload refused, config unchanged")?;
    for name in instances_named(iface, netns)? {
        let mut maps = Pinned::open(&pin::instance_dir(&name))?;
        maps.apply(&settings).with_context(|| format!("reloading {name}"))?;
        say!("icmpxdp: {name}: config reloaded");
    }
    Ok(())
}
