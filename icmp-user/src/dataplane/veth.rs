//! Whether a veth's peer runs an XDP program, asked over rtnetlink in the
//! calling thread's network namespace (the peer's namespace by its netns id).
//!
//! It matters because a veth delivers what a driver-mode program sends with
//! XDP_TX only when the peer runs XDP too: otherwise the counters say `tx`
//! and the frames vanish (checked on Linux 6.18; GRO on the peer does not
//! help). `--mode auto` uses skb mode there, and `--mode driver` warns.

use std::io;

use anyhow::{Context as _, Result, bail};

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const IFLA_LINK: u16 = 5;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_LINK_NETNSID: u16 = 37;
const IFLA_TARGET_NETNSID: u16 = 46;
const NLA_F_NESTED: u16 = 1 << 15;

/// Attributes of one link: kind, peer ifindex, peer netns id, XDP attached.
#[derive(Debug, Default)]
struct LinkAttrs {
    kind: Option<String>,
    link: Option<u32>,
    link_netnsid: Option<i32>,
    xdp_attached: Option<u8>,
}

fn attrs(mut buf: &[u8], mut f: impl FnMut(u16, &[u8])) {
    while buf.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & !NLA_F_NESTED;
        if len < 4 || len > buf.len() {
            return;
        }
        f(kind, &buf[4..len]);
        buf = &buf[(len + 3) & !3..];
        if buf.len() < 4 {
            return;
        }
    }
}

fn u32_of(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(..4)?.try_into().ok()?))
}

/// RTM_GETLINK for `ifindex` (in namespace `netnsid` when given).
fn get_link(ifindex: u32, netnsid: Option<i32>) -> Result<LinkAttrs> {
    // SAFETY: plain socket(2); the fd is owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error()).context("netlink socket");
    }
    // SAFETY: the kernel just returned this fd.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // nlmsghdr (16) + ifinfomsg (16) [+ IFLA_TARGET_NETNSID (8)].
    let mut req = vec![0u8; 32];
    req[4..6].copy_from_slice(&RTM_GETLINK.to_ne_bytes());
    req[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    req[16] = libc::AF_UNSPEC as u8;
    req[20..24].copy_from_slice(&(ifindex as i32).to_ne_bytes());
    if let Some(id) = netnsid {
        req.extend_from_slice(&8u16.to_ne_bytes());
        req.extend_from_slice(&IFLA_TARGET_NETNSID.to_ne_bytes());
        req.extend_from_slice(&id.to_ne_bytes());
    }
    let total = req.len() as u32;
    req[0..4].copy_from_slice(&total.to_ne_bytes());
    // SAFETY: send/recv on our socket with buffers we own.
    let sent = unsafe { libc::send(raw, req.as_ptr().cast(), req.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error()).context("netlink send");
    }
    let mut buf = vec![0u8; 65536];
    // SAFETY: as above.
    let n = unsafe { libc::recv(raw, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 16 {
        return Err(io::Error::last_os_error()).context("netlink recv");
    }
    let buf = &buf[..n as usize];
    let kind = u16::from_ne_bytes([buf[4], buf[5]]);
    if kind == NLMSG_ERROR {
        let errno = i32::from_ne_bytes(buf[16..20].try_into().unwrap());
        bail!("RTM_GETLINK {ifindex}: {}", io::Error::from_raw_os_error(-errno));
    }
    if kind != RTM_NEWLINK {
        bail!("RTM_GETLINK {ifindex}: unexpected reply type {kind}");
    }
    let len = (u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize).min(buf.len());
    let mut out = LinkAttrs::default();
    attrs(&buf[16 + 16..len], |t, v| match t {
        IFLA_LINK => out.link = u32_of(v),
        IFLA_LINK_NETNSID => out.link_netnsid = u32_of(v).map(|x| x as i32),
        IFLA_LINKINFO => attrs(v, |t, v| {
            if t == IFLA_INFO_KIND {
                out.kind = Some(String::from_utf8_lossy(v).trim_end_matches('\0').to_owned());
            }
        }),
        IFLA_XDP => attrs(v, |t, v| {
            if t == IFLA_XDP_ATTACHED {
                out.xdp_attached = v.first().copied();
            }
        }),
        _ => {}
    });
    Ok(out)
}

/// For a veth, whether its peer runs an XDP program (`None`: not a veth).
pub fn peer_runs_xdp(iface: &str) -> Result<Option<bool>> {
    let index = nix::net::if_::if_nametoindex(iface).with_context(|| format!("no interface `{iface}`"))?;
    let me = get_link(index, None)?;
    if me.kind.as_deref() != Some("veth") {
        return Ok(None);
    }
    let peer_index = me.link.context("a veth without a peer index")?;
    let peer = get_link(peer_index, me.link_netnsid)?;
    Ok(Some(peer.xdp_attached.unwrap_or(0) != 0))
}
