//! A tap device in a network namespace of the test's own: the second real
//! driver the tests run the program on. A frame written into the tap's fd
//! arrives at the device as if from a wire; what the kernel sends out of it,
//! and what the XDP program sends back with XDP_TX, is read from the fd.
//!
//! The namespace holds only the tap, with the responder's addresses and a
//! permanent neighbour entry for the peer, so the kernel answers without
//! ARP or neighbour discovery. Everything is removed on drop.

use std::{
    fs::{File, OpenOptions},
    io::{Read as _, Write as _},
    os::fd::AsRawFd as _,
    process::Command,
    time::{Duration, Instant},
};

use icmp_user::{
    bench::frames::{MAC_PEER, PEER4, PEER6, US4, US6},
    dataplane::netns,
    lab::sysctl_in,
};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: i16 = 0x0002;
const IFF_NO_PI: i16 = 0x1000;
const IFF_MULTI_QUEUE: i16 = 0x0100;

/// The tap's MAC: what frames written into it are addressed to.
pub const MAC_TAP: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("run ip");
    assert!(st.success(), "ip {args:?} failed");
}

/// A namespace with one tap device and its queue fds.
pub struct Tap {
    pub ns: String,
    pub name: String,
    pub queues: Vec<File>,
}

fn open_queue(name: &str, multi: bool) -> File {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .expect("open /dev/net/tun");
    let mut req = [0u8; 40];
    req[..name.len()].copy_from_slice(name.as_bytes());
    let flags = IFF_TAP | IFF_NO_PI | if multi { IFF_MULTI_QUEUE } else { 0 };
    req[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: TUNSETIFF with a 40-byte struct ifreq we own.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), TUNSETIFF, req.as_mut_ptr()) };
    assert_eq!(r, 0, "TUNSETIFF {name}: {}", std::io::Error::last_os_error());
    // SAFETY: fcntl on our own fd.
    unsafe {
        let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    f
}

impl Tap {
    /// Creates namespace `ns` with tap `name` (`queues` > 1: multi-queue),
    /// addressed as the responder (192.0.2.1/24, 2001:db8::1/64), the peer
    /// reachable through a permanent neighbour entry, and the kernel's echo
    /// replies on. Must be called on a thread that may enter namespaces; the
    /// calling thread is left in `ns` while the fds are opened, then returned.
    pub fn create(ns: &str, name: &str, queues: usize) -> Self {
        crate::require_root();
        let _ = Command::new("ip")
            .args(["netns", "del", ns])
            .stderr(std::process::Stdio::null())
            .status();
        ip(&["netns", "add", ns]);
        let fds = {
            let _inside = netns::enter(ns).expect("enter the tap namespace");
            (0..queues.max(1)).map(|_| open_queue(name, queues > 1)).collect()
        };
        let tap = Self {
            ns: ns.to_owned(),
            name: name.to_owned(),
            queues: fds,
        };
        let mac = MAC_TAP.map(|b| format!("{b:02x}")).join(":");
        let peer_mac = MAC_PEER.map(|b| format!("{b:02x}")).join(":");
        let sysctl = |k: &str, v: &str| sysctl_in(ns, k, v).expect("sysctl in the tap namespace");
        for k in ["net.ipv6.conf.default.accept_ra", "net.ipv6.conf.all.accept_ra"] {
            sysctl(k, "0");
        }
        // The kernel's own ICMP rate limits off, so a burst of requests to
        // compare against is answered in full (per peer: 1/s, burst 6).
        sysctl("net.ipv4.icmp_ratelimit", "0");
        sysctl("net.ipv6.icmp.ratelimit", "0");
        sysctl("net.ipv4.icmp_msgs_per_sec", "1000000");
        sysctl("net.ipv4.icmp_msgs_burst", "1000000");
        ip(&["-n", ns, "link", "set", name, "address", &mac]);
        sysctl(&format!("net.ipv6.conf.{name}.accept_ra"), "0");
        sysctl(&format!("net.ipv6.conf.{name}.router_solicitations"), "0");
        ip(&["-n", ns, "link", "set", name, "up"]);
        ip(&["-n", ns, "addr", "add", &format!("{US4}/24"), "dev", name]);
        ip(&["-n", ns, "addr", "add", &format!("{US6}/64"), "dev", name, "nodad"]);
        ip(&[
            "-n",
            ns,
            "neigh",
            "replace",
            &PEER4.to_string(),
            "lladdr",
            &peer_mac,
            "dev",
            name,
            "nud",
            "permanent",
        ]);
        ip(&[
            "-n",
            ns,
            "neigh",
            "replace",
            &PEER6.to_string(),
            "lladdr",
            &peer_mac,
            "dev",
            name,
            "nud",
            "permanent",
        ]);
        tap.drain();
        tap
    }

    /// Discards whatever the kernel has queued (MLD reports and the like).
    pub fn drain(&self) {
        std::thread::sleep(Duration::from_millis(50));
        for q in &self.queues {
            let mut buf = [0u8; 4096];
            while (&*q).read(&mut buf).is_ok() {}
        }
    }

    /// Writes one frame into queue `q`.
    pub fn write(&self, q: usize, frame: &[u8]) {
        let n = (&self.queues[q]).write(frame).expect("write into the tap");
        assert_eq!(n, frame.len());
    }

    /// Frames read from any queue until `want` matches one or `timeout`
    /// passes; returns the match.
    pub fn read_matching(&self, timeout: Duration, want: impl Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
        let end = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            let mut any = false;
            for q in &self.queues {
                if let Ok(n) = (&*q).read(&mut buf) {
                    any = true;
                    if want(&buf[..n]) {
                        return Some(buf[..n].to_vec());
                    }
                }
            }
            if !any {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        None
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.queues.clear();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}
