//! Reloading an instance's config without detaching: `icmpxdp reload` (any
//! running or attached instance, through its pinned maps) and SIGHUP to
//! `icmpxdp run` (its own maps) go through [`reload_instance`], so both
//! apply the same thing.
//!
//! What is applied is the instance's recorded config — its file (or the new
//! `--config`) and every `--set` given so far, at the start and by earlier
//! reloads — with this reload's `--set`s on top, so a reload changes exactly
//! what it names. An invalid result changes nothing and is counted as a
//! failed reload; a changed `rate_limit.max_sources` is reported as needing a
//! restart (the bucket map's size is fixed at load).

use std::{io::Write as _, path::Path};

use anyhow::{Context as _, Result, bail};
use icmp_user::{
    config::{FileConfig, Settings},
    dataplane::{config_maps::Pinned, pins as pin},
};

use super::instances_named;

/// What a reload did, for the message.
pub(crate) struct Reloaded {
    /// `rate_limit.max_sources` asked for but not applied: (asked, in use).
    pub(crate) max_sources_pending: Option<(u32, u32)>,
}

impl Reloaded {
    pub(crate) fn message(&self, name: &str) -> String {
        match self.max_sources_pending {
            None => format!("{name}: config reloaded"),
            Some((asked, now)) => format!(
                "{name}: config reloaded, except rate_limit.max_sources = {asked}: the bucket map keeps {now} \
                 entries until a restart"
            ),
        }
    }
}

/// Reloads instance `name`: its recorded file (or `new_config`) and `--set`s
/// plus `new_sets`, validated, then written by `apply`; the metadata records
/// the result for the next reload and for `/metrics`.
pub(crate) fn reload_instance(
    name: &str,
    new_config: Option<&Path>,
    new_sets: &[String],
    apply: impl FnOnce(&Settings) -> Result<()>,
) -> Result<Reloaded> {
    let mut meta =
        pin::Meta::read(name).with_context(|| format!("{name}: no instance metadata in {}", pin::LOCK_ROOT))?;
    let file = new_config
        .map(Path::to_path_buf)
        .or_else(|| meta.config.as_ref().map(Into::into));
    let mut sets = meta.sets.clone();
    sets.extend_from_slice(new_sets);
    let validated = FileConfig::load(file.as_deref(), &sets).and_then(|f| f.settings());
    let settings = match validated {
        Ok(s) => s,
        Err(e) => {
            meta.reloads_failed += 1;
            let _ = meta.write(name);
            return Err(e.context(format!("{name}: reload refused, config unchanged")));
        }
    };
    apply(&settings).with_context(|| format!("{name}: writing the new config"))?;
    meta.config = file.map(|p| p.display().to_string());
    meta.sets = sets;
    meta.reloads_ok += 1;
    meta.write(name)?;
    Ok(Reloaded {
        max_sources_pending: (settings.max_sources != meta.max_sources)
            .then_some((settings.max_sources, meta.max_sources)),
    })
}

/// `icmpxdp reload`: every named instance (every live one by default).
pub(crate) fn reload(iface: Option<&str>, netns: Option<&str>, config: Option<&Path>, sets: &[String]) -> Result<()> {
    let mut failed = 0;
    for name in instances_named(iface, netns)? {
        let result = reload_instance(&name, config, sets, |s| {
            Pinned::open(&pin::instance_dir(&name))?.apply(s)
        });
        match result {
            Ok(r) => say!("icmpxdp: {}", r.message(&name)),
            Err(e) => {
                eprintln!("icmpxdp: error: {e:#}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} instance(s) not reloaded (see above); their config is unchanged");
    }
    Ok(())
}
