//! `icmpxdp check-config FILE`: the whole validation, nothing attached.

use std::{io::Write as _, path::Path};

use anyhow::Result;
use icmp_user::config::FileConfig;

pub(crate) fn check_config(file: &Path) -> Result<()> {
    FileConfig::from_file(file)?.settings()?;
    say!("{}: ok", file.display());
    Ok(())
}
