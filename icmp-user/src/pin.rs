//! Where a running instance lives: its pinned maps under
//! `/sys/fs/bpf/icmpxdp/<instance>/` and a lock under `/run/icmpxdp/`.

use std::{
    fs::{self, File, OpenOptions},
    io::Write as _,
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};

pub const BPFFS: &str = "/sys/fs/bpf";
pub const PIN_ROOT: &str = "/sys/fs/bpf/icmpxdp";
pub const LOCK_ROOT: &str = "/run/icmpxdp";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The instance name: the interface, qualified by its network namespace when
/// it is not in the root one (interface names repeat across namespaces).
pub fn instance_name(iface: &str, netns: Option<&str>) -> String {
    match netns {
        Some(ns) => format!("{iface}@{ns}"),
        None => iface.to_owned(),
    }
}

pub fn instance_dir(instance: &str) -> PathBuf {
    Path::new(PIN_ROOT).join(instance)
}

/// Mounts a bpffs on /sys/fs/bpf unless one is there.
pub fn ensure_bpffs() -> Result<()> {
    let st = nix::sys::statfs::statfs(BPFFS).with_context(|| format!("statfs {BPFFS}"))?;
    if st.filesystem_type().0 as i64 == BPF_FS_MAGIC {
        return Ok(());
    }
    nix::mount::mount(Some("bpf"), BPFFS, Some("bpf"), nix::mount::MsFlags::empty(), None::<&str>)
        .with_context(|| format!("mounting bpffs on {BPFFS} (try `mount -t bpf bpf {BPFFS}`)"))?;
    log::info!("mounted bpffs on {BPFFS}");
    Ok(())
}

/// An exclusive claim on an instance name, held for the life of a running
/// `icmpxdp run`. The kernel drops the flock when the process dies, however
/// it dies, so a claim that can be taken means any pins left are stale.
pub struct InstanceLock {
    _file: File,
    path: PathBuf,
}

impl InstanceLock {
    pub fn acquire(instance: &str) -> Result<Self> {
        fs::create_dir_all(LOCK_ROOT).with_context(|| format!("creating {LOCK_ROOT}"))?;
        let path = Path::new(LOCK_ROOT).join(format!("{instance}.lock"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let owner = fs::read_to_string(&path).unwrap_or_default();
            bail!(
                "icmpxdp is already running on `{instance}` (pid {}); stop it first",
                owner.trim()
            );
        }
        file.set_len(0)?;
        write!(file, "{}", std::process::id())?;
        Ok(Self { _file: file, path })
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The pin directory of a running instance; removed (with its pins) on drop.
pub struct PinDir {
    path: PathBuf,
}

impl PinDir {
    /// Creates the directory, removing stale pins a killed run left behind.
    /// Must be called with the instance's [`InstanceLock`] held.
    pub fn create(instance: &str, _lock: &InstanceLock) -> Result<Self> {
        ensure_bpffs()?;
        let path = instance_dir(instance);
        if path.exists() {
            log::warn!("removing stale pins of a previous run at {}", path.display());
            fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.path) {
            log::error!("removing {}: {e}", self.path.display());
        }
        // Leave /sys/fs/bpf/icmpxdp itself once it is empty.
        if let Some(parent) = self.path.parent() {
            let _ = fs::remove_dir(parent);
        }
    }
}

/// Names of instances with a pin directory.
pub fn list_instances() -> Result<Vec<String>> {
    let Ok(entries) = fs::read_dir(PIN_ROOT) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    out.sort();
    Ok(out)
}
