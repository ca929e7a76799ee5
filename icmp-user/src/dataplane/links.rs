//! Whether an instance's program is really attached, asked of the kernel:
//! the BPF links of type XDP whose program is ours, and the interface each
//! one holds. A link whose interface was deleted stays open (its owner still
//! holds it) but holds no interface any more (ifindex 0): that is how
//! `status` and `/metrics` tell a responder that answers from one that only
//! looks alive.
//!
//! Raw `bpf(2)` calls, since aya 0.14's `LinkInfo` does not expose the XDP
//! link's ifindex.

use std::os::fd::{FromRawFd as _, OwnedFd};

use anyhow::{Result, bail};

const BPF_OBJ_GET: libc::c_long = 7;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;
const BPF_LINK_GET_NEXT_ID: libc::c_long = 31;
const BPF_LINK_TYPE_XDP: u32 = 6;

/// `bpf_link_info`: type, id, prog_id, then (8-byte aligned) the
/// type-specific union, whose XDP member starts with the ifindex.
#[repr(C)]
#[derive(Default)]
struct LinkInfo {
    kind: u32,
    id: u32,
    prog_id: u32,
    _pad: u32,
    ifindex: u32,
    _rest: [u32; 15],
}

fn bpf(cmd: libc::c_long, attr: &mut [u8]) -> libc::c_long {
    // SAFETY: bpf(2) with an attribute buffer we own, its size passed along.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) }
}

fn next_link_id(start: u32) -> Option<u32> {
    let mut attr = [0u8; 16];
    attr[0..4].copy_from_slice(&start.to_ne_bytes());
    (bpf(BPF_LINK_GET_NEXT_ID, &mut attr) == 0).then(|| u32::from_ne_bytes(attr[4..8].try_into().unwrap()))
}

fn link_info(id: u32) -> Option<LinkInfo> {
    let mut attr = [0u8; 16];
    attr[0..4].copy_from_slice(&id.to_ne_bytes());
    let fd = bpf(BPF_LINK_GET_FD_BY_ID, &mut attr);
    if fd < 0 {
        return None; // gone since it was listed
    }
    // SAFETY: the kernel just returned this fd to us.
    info_of(&unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The info of a pinned link (any process with access to the pin; no
/// CAP_SYS_ADMIN needed, unlike walking every link).
fn pinned_link_info(path: &std::path::Path) -> Option<LinkInfo> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let mut attr = [0u8; 24];
    attr[0..8].copy_from_slice(&(c.as_ptr() as u64).to_ne_bytes());
    let fd = bpf(BPF_OBJ_GET, &mut attr);
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just returned this fd to us.
    info_of(&unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn info_of(fd: &OwnedFd) -> Option<LinkInfo> {
    let mut info = LinkInfo::default();
    let mut attr = [0u8; 16];
    attr[0..4].copy_from_slice(&(std::os::fd::AsRawFd::as_raw_fd(fd) as u32).to_ne_bytes());
    attr[4..8].copy_from_slice(&(size_of::<LinkInfo>() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(&raw mut info as u64).to_ne_bytes());
    (bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) == 0).then_some(info)
}

/// The ifindexes program `program_id` is attached to through an XDP link
/// (empty: attached nowhere). Needs CAP_SYS_ADMIN (or CAP_BPF) to walk the
/// kernel's links.
pub fn xdp_attachments(program_id: u32) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    let mut id = 0;
    let mut walked = 0usize;
    while let Some(next) = next_link_id(id) {
        id = next;
        walked += 1;
        if let Some(info) = link_info(id)
            && info.kind == BPF_LINK_TYPE_XDP
            && info.prog_id == program_id
            && info.ifindex != 0
        {
            out.push(info.ifindex);
        }
        if walked > 1_000_000 {
            bail!("more than a million BPF links: giving up walking them");
        }
    }
    if walked == 0 {
        // No link at all, or not permitted to list them: tell which.
        let mut attr = [0u8; 16];
        if bpf(BPF_LINK_GET_NEXT_ID, &mut attr) != 0 {
            let e = std::io::Error::last_os_error();
            if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
                bail!("listing BPF links needs CAP_BPF or CAP_SYS_ADMIN (run as root): {e}");
            }
        }
    }
    Ok(out)
}

/// Whether program `program_id` holds at least one interface.
pub fn is_attached(program_id: u32) -> Result<bool> {
    Ok(!xdp_attachments(program_id)?.is_empty())
}

/// Whether instance `name` answers right now: it is live (a running `run` or
/// a pinned `attach`) and its program holds an interface. A stale instance
/// (pins of a killed run) or one whose interface was deleted is not.
///
/// An `attach` is asked through its pinned link. A `run` is asked through
/// the kernel's list of links when this process may walk it (CAP_SYS_ADMIN);
/// otherwise through the ifindex the live `run` records each time its
/// interface goes or comes back.
pub fn instance_attached(name: &str) -> Result<bool> {
    if !super::pins::is_live(name) {
        return Ok(false);
    }
    let Some(meta) = super::pins::Meta::read(name) else {
        return Ok(false);
    };
    let link = super::pins::instance_dir(name).join(super::pins::LINK_PIN);
    if link.exists() {
        return Ok(pinned_link_info(&link).is_some_and(|i| i.prog_id == meta.program_id && i.ifindex != 0));
    }
    match is_attached(meta.program_id) {
        Ok(attached) => Ok(attached),
        Err(_) => Ok(meta.ifindex != 0),
    }
}
