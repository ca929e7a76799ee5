//! Entering a named network namespace (`ip netns add NAME`) for the calling
//! thread, and coming back.

use std::fs::File;

use anyhow::{Context as _, Result};
use nix::sched::{CloneFlags, setns};

/// While alive, the calling thread is in another network namespace; dropping
/// it returns the thread to the namespace it came from.
pub struct NetnsGuard {
    original: File,
}

/// Moves the calling thread into the network namespace `name`.
pub fn enter(name: &str) -> Result<NetnsGuard> {
    let original = File::open("/proc/thread-self/ns/net").context("open /proc/thread-self/ns/net")?;
    let path = format!("/var/run/netns/{name}");
    let target = File::open(&path)
        .with_context(|| format!("network namespace `{name}` not found ({path}); see `ip netns list`"))?;
    setns(&target, CloneFlags::CLONE_NEWNET).with_context(|| format!("entering network namespace `{name}`"))?;
    Ok(NetnsGuard { original })
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if let Err(e) = setns(&self.original, CloneFlags::CLONE_NEWNET) {
            log::error!("returning to the original network namespace: {e}");
        }
    }
}
