//! systemd's readiness protocol (`sd_notify(3)`), for `Type=notify` units:
//! READY=1 once every interface is attached, RELOADING=1 / READY=1 around a
//! SIGHUP reload, STOPPING=1 before detaching. Without `NOTIFY_SOCKET`
//! (not started by systemd) each call does nothing.

use std::os::unix::net::UnixDatagram;

fn send(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        // An abstract socket: its name starts with a NUL byte.
        use std::os::linux::net::SocketAddrExt as _;
        std::os::unix::net::SocketAddr::from_abstract_name(name).and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), std::path::Path::new(&path))
    };
    if let Err(e) = sent {
        log::warn!("telling systemd {state:?} failed: {e}");
    }
}

pub(crate) fn ready() {
    send("READY=1\nSTATUS=attached");
}

pub(crate) fn reloading() {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    let now = t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1000;
    // MONOTONIC_USEC is required with RELOADING=1 by Type=notify-reload.
    send(&format!("RELOADING=1\nMONOTONIC_USEC={now}"));
}

pub(crate) fn stopping() {
    send("STOPPING=1");
}
