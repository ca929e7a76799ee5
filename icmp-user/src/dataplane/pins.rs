//! Where a running instance lives: its pinned maps under
//! `/sys/fs/bpf/icmpxdp/<instance>/` and a lock under `/run/icmpxdp/`.

use std::{
    fs::{self, File, OpenOptions},
    io::Write as _,
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

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

/// Whether this process shares its parent's mount namespace (or, where the
/// parent cannot be read, pid 1's): not so under `ip netns exec`, which
/// unshares the mount namespace and mounts a private /sys before it runs
/// the command.
fn in_shared_mount_namespace() -> bool {
    let Ok(ours) = fs::read_link("/proc/self/ns/mnt") else {
        return true;
    };
    let parent = format!("/proc/{}/ns/mnt", std::os::unix::process::parent_id());
    match fs::read_link(parent).or_else(|_| fs::read_link("/proc/1/ns/mnt")) {
        Ok(theirs) => ours == theirs,
        // Cannot tell: do not refuse on a guess.
        Err(_) => true,
    }
}

/// Mounts a bpffs on /sys/fs/bpf unless one is there. Refuses to mount one
/// that only this process would see: pins in a private mount namespace
/// vanish with the process, and an `attach` would silently be undone.
pub fn ensure_bpffs() -> Result<()> {
    let st = nix::sys::statfs::statfs(BPFFS).with_context(|| format!("statfs {BPFFS}"))?;
    if st.filesystem_type().0 as i64 == BPF_FS_MAGIC {
        return Ok(());
    }
    if !in_shared_mount_namespace() {
        bail!(
            "{BPFFS} is not a bpffs here, and this process has a mount namespace of its own (as under \
             `ip netns exec`): a bpffs mounted here, and the pins in it, would vanish when icmpxdp exits, \
             and an attachment with them. Use `icmpxdp --netns NS ...` instead of `ip netns exec NS icmpxdp ...`"
        );
    }
    nix::mount::mount(
        Some("bpf"),
        BPFFS,
        Some("bpf"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
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
    /// `attach` keeps its pins when the process exits.
    keep: bool,
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
        Ok(Self { path, keep: false })
    }

    /// Leaves the pins in place when dropped (a completed `attach`).
    pub fn keep(mut self) {
        self.keep = true;
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Some(name) = self.path.file_name().and_then(|n| n.to_str()) {
            Meta::remove(name);
        }
        if let Err(e) = fs::remove_dir_all(&self.path) {
            log::error!("removing {}: {e}", self.path.display());
        }
        // Leave /sys/fs/bpf/icmpxdp itself once it is empty.
        if let Some(parent) = self.path.parent() {
            let _ = fs::remove_dir(parent);
        }
    }
}

/// Pin of the XDP link of an `icmpxdp attach` (absent for `run`).
pub const LINK_PIN: &str = "link";
/// Pin of the program of an `icmpxdp attach`.
pub const PROG_PIN: &str = "prog";

/// What `icmpxdp status` shows about an instance, kept beside its lock in
/// `/run/icmpxdp/<instance>.json` (bpffs holds only BPF objects).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub iface: String,
    pub netns: Option<String>,
    pub mode: String,
    pub program_id: u32,
    /// Unix seconds.
    pub started: u64,
    /// The `run` process serving it; `None` for `attach`.
    pub pid: Option<u32>,
    /// The config file it was started with, and every `--set` given since
    /// (at the start and by `icmpxdp reload`), in order: a reload applies
    /// its changes on top of these.
    pub config: Option<String>,
    #[serde(default)]
    pub sets: Vec<String>,
    /// Config reloads applied, and refused (invalid config, nothing changed).
    /// The interface the `run` serving it holds now (0: it is gone).
    #[serde(default)]
    pub ifindex: u32,
    /// Entries of the per-source bucket map, fixed at load.
    #[serde(default)]
    pub max_sources: u32,
    #[serde(default)]
    pub reloads_ok: u64,
    #[serde(default)]
    pub reloads_failed: u64,
}

impl Meta {
    pub fn path(instance: &str) -> PathBuf {
        Path::new(LOCK_ROOT).join(format!("{instance}.json"))
    }

    /// Replaces the file atomically (a temporary file renamed over it), so a
    /// reader never sees it half-written.
    pub fn write(&self, instance: &str) -> Result<()> {
        fs::create_dir_all(LOCK_ROOT)?;
        let path = Self::path(instance);
        let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
        fs::write(&tmp, serde_json::to_string(self)?).context("writing instance metadata")?;
        fs::rename(&tmp, &path).context("writing instance metadata")
    }

    pub fn read(instance: &str) -> Option<Self> {
        serde_json::from_str(&fs::read_to_string(Self::path(instance)).ok()?).ok()
    }

    pub fn remove(instance: &str) {
        let _ = fs::remove_file(Self::path(instance));
    }
}

/// Takes an instance name for a new `run` or `attach`: refuses one a live
/// `run` owns; an existing `attach` is refused unless `replace`, in which
/// case it is detached first; pins left by a killed run are cleared by
/// [`PinDir::create`]. The returned lock is held for as long as the caller
/// works on the instance.
pub fn claim(instance: &str, replace: bool) -> Result<InstanceLock> {
    let lock = InstanceLock::acquire(instance)?;
    let dir = instance_dir(instance);
    if dir.join(LINK_PIN).exists() {
        if !replace {
            let since = Meta::read(instance).map_or(String::new(), |m| format!(", program id {}", m.program_id));
            bail!(
                "`{instance}` already has icmpxdp attached (by `icmpxdp attach`{since}); \
                 pass --replace to replace it, or remove it with `icmpxdp detach`"
            );
        }
        detach_pinned(instance)?;
        log::info!("{instance}: detached the previous attachment (--replace)");
    }
    Ok(lock)
}

/// Detaches an `icmpxdp attach` by unpinning its link (the last reference),
/// and removes its pins and metadata.
pub fn detach_pinned(instance: &str) -> Result<()> {
    let dir = instance_dir(instance);
    let link = dir.join(LINK_PIN);
    let pinned = aya::programs::links::PinnedLink::from_pin(&link)
        .with_context(|| format!("opening the pinned link {}", link.display()))?;
    let fd_link = pinned
        .unpin()
        .with_context(|| format!("unpinning {}", link.display()))?;
    drop(fd_link); // the link's last fd: the program leaves the interface here
    fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    let _ = fs::remove_dir(PIN_ROOT);
    Meta::remove(instance);
    Ok(())
}

/// Whether an instance is served: an `attach` (its link is pinned) or a
/// live `run` (it holds the instance lock). Otherwise its pins are stale,
/// left by a run that was killed.
pub fn is_live(instance: &str) -> bool {
    if instance_dir(instance).join(LINK_PIN).exists() {
        return true;
    }
    let path = Path::new(LOCK_ROOT).join(format!("{instance}.lock"));
    let Ok(file) = File::open(&path) else {
        return false;
    };
    // SAFETY: flock on an fd we own; a shared, non-blocking probe.
    let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0;
    !free
}

/// Removes the pins of an instance with no attachment, under its lock (so
/// no `run` owns it).
pub fn remove_stale(instance: &str, _lock: &InstanceLock) -> Result<()> {
    let dir = instance_dir(instance);
    if dir.join(LINK_PIN).exists() {
        bail!("`{instance}` is attached; use `icmpxdp detach`");
    }
    fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    let _ = fs::remove_dir(PIN_ROOT);
    Meta::remove(instance);
    Ok(())
}

/// Opens a pinned map, saying what permission is missing when that is why,
/// and refusing one whose layout is not this build's (an instance attached
/// by another icmpxdp version: see [`layout_of`]).
pub fn open_map(path: &Path) -> Result<aya::maps::MapData> {
    let map = open_any_map(path)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if let Some(want) = layout_of(name) {
        let info = map
            .info()
            .with_context(|| format!("reading the layout of {}", path.display()))?;
        let got = (info.value_size(), info.max_entries());
        if got.0 != want.0 || want.1.is_some_and(|entries| entries != got.1) {
            let instance = path
                .parent()
                .and_then(|d| d.file_name())
                .and_then(|n| n.to_str())
                .unwrap_or("the instance");
            bail!(
                "{instance}: its pinned {name} map holds {} entries of {} bytes, where this icmpxdp has {} bytes{}: \
                 the instance was attached by another icmpxdp version. Detach it (`icmpxdp detach --iface IF`, or \
                 stop its `run`) and attach it again with this one",
                got.1,
                got.0,
                want.0,
                want.1.map_or_else(String::new, |n| format!(" in {n} entries")),
            );
        }
    }
    Ok(map)
}

/// The value size and, where it is fixed, the number of entries of the
/// pinned maps whose layout this build's program and loader rely on.
/// (`COUNTERS` has one entry per possible CPU.)
fn layout_of(name: &str) -> Option<(u32, Option<u32>)> {
    use crate::map_names;
    let size = |n: usize| n as u32;
    Some(match name {
        map_names::CONFIG => (size(size_of::<icmp_common::Config>()), Some(2)),
        map_names::CONTROL => (size(size_of::<u64>()), Some(icmp_common::config::CONTROL_WORDS)),
        map_names::COUNTERS => (size(size_of::<icmp_common::counters::Counters>()), None),
        map_names::ADDRS => (size(size_of::<icmp_common::AddrSet>()), Some(1)),
        map_names::PORTS => (size(size_of::<u64>()), Some(icmp_common::config::PORT_SLOTS)),
        _ => return None,
    })
}

fn open_any_map(path: &Path) -> Result<aya::maps::MapData> {
    aya::maps::MapData::from_pin(path).map_err(|e| {
        let denied = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(|io| matches!(io.raw_os_error(), Some(libc::EACCES | libc::EPERM)))
            || e.to_string().contains("Permission denied");
        let err = anyhow::Error::from(e).context(format!("opening pinned map {}", path.display()));
        if denied {
            err.context(format!(
                "permission denied: reading icmpxdp's pinned maps needs root (or CAP_BPF with access to {BPFFS})"
            ))
        } else {
            err
        }
    })
}

/// Names of instances with a pin directory.
pub fn list_instances() -> Result<Vec<String>> {
    let entries = match fs::read_dir(PIN_ROOT) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => bail!(
            "cannot read {PIN_ROOT}: permission denied; reading icmpxdp's pinned maps needs root \
             (or CAP_BPF with access to {BPFFS})"
        ),
        Err(e) => return Err(anyhow::Error::from(e).context(format!("reading {PIN_ROOT}"))),
    };
    let mut out: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    out.sort();
    Ok(out)
}
