//! A two-namespace lab: a client and a responder joined by a veth pair, with
//! the responder's kernel echo replies switched off so that every reply seen
//! by the client provably came from XDP. Used by `icmpxdp lab` and the tests.
//! Everything is removed when the [`Lab`] is dropped.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{
    dataplane::load::{Mode, Responder},
    dataplane::netns,
};

pub const RESPONDER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const RESPONDER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

pub struct Lab {
    pub client_ns: String,
    pub responder_ns: String,
    pub client_if: String,
    pub responder_if: String,
    created: Vec<String>,
    /// `xdp_pass` on the client veth, so the responder's XDP_TX frames are
    /// accepted there (veth drops them unless its peer runs XDP or GRO).
    client_pass: Option<Responder>,
}

/// Runs `ip ARGS`, turning a failure into an error carrying its stderr.
pub fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (install iproute2)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Writes a sysctl inside network namespace `ns` (net.* sysctls are per netns).
pub fn sysctl_in(ns: &str, key: &str, value: &str) -> Result<()> {
    let _inside = netns::enter(ns)?;
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::write(&path, value).with_context(|| format!("setting {key}={value} in {ns}"))
}

impl Lab {
    /// Creates namespaces `icmpxdp-<name>-client` / `-responder` and veth
    /// `ixr-<name>` / `ixc-<name>` (`name` at most 11 characters).
    pub fn create(name: &str) -> Result<Self> {
        Self::create_with(name, crate::PASS_PROGRAM)
    }

    /// A lab whose client veth runs `client_program` (the benchmark's sink)
    /// instead of `xdp_pass`.
    pub fn create_with(name: &str, client_program: &'static str) -> Result<Self> {
        if name.len() > 11 {
            bail!("lab name `{name}` too long (interface names are limited to 15 bytes)");
        }
        let mut lab = Self {
            client_ns: format!("icmpxdp-{name}-client"),
            responder_ns: format!("icmpxdp-{name}-responder"),
            client_if: format!("ixc-{name}"),
            responder_if: format!("ixr-{name}"),
            created: Vec::new(),
            client_pass: None,
        };
        lab.build(client_program)
            .with_context(|| format!("creating lab `{name}`"))?;
        Ok(lab)
    }

    /// Whether a lab of this name exists (left by a killed run).
    pub fn exists(name: &str) -> bool {
        std::path::Path::new(&format!("/var/run/netns/icmpxdp-{name}-responder")).exists()
            || std::path::Path::new(&format!("/var/run/netns/icmpxdp-{name}-client")).exists()
    }

    /// Removes a lab's namespaces left by a run that could not clean up.
    pub fn remove_stale(name: &str) {
        for role in ["client", "responder"] {
            let _ = ip(&["netns", "del", &format!("icmpxdp-{name}-{role}")]);
        }
    }

    fn build(&mut self, client_program: &'static str) -> Result<()> {
        for ns in [self.client_ns.clone(), self.responder_ns.clone()] {
            ip(&["netns", "add", &ns])?;
            self.created.push(ns);
        }
        // The responder's kernel must not answer: replies then come from XDP only.
        sysctl_in(&self.responder_ns, "net.ipv4.icmp_echo_ignore_all", "1")?;
        sysctl_in(&self.responder_ns, "net.ipv6.icmp.echo_ignore_all", "1")?;
        self.link(client_program)
    }

    /// Deletes the veth pair (as an operator's `ip link del` would).
    pub fn delete_link(&mut self) -> Result<()> {
        self.client_pass = None;
        ip(&["-n", &self.responder_ns, "link", "del", &self.responder_if])
    }

    /// Creates the veth pair again, as it was (after [`Lab::delete_link`]).
    pub fn recreate_link(&mut self) -> Result<()> {
        self.link(crate::PASS_PROGRAM)
    }

    /// The veth pair, addressed and up, the client's program on its end.
    fn link(&mut self, client_program: &'static str) -> Result<()> {
        let (r, c) = (self.responder_ns.as_str(), self.client_ns.as_str());
        let (ri, ci) = (self.responder_if.as_str(), self.client_if.as_str());
        ip(&[
            "link", "add", ri, "netns", r, "type", "veth", "peer", "name", ci, "netns", c,
        ])?;
        for (ns, dev, v4, v6) in [(r, ri, RESPONDER_V4, RESPONDER_V6), (c, ci, CLIENT_V4, CLIENT_V6)] {
            ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", dev])?;
            // nodad: usable at once, no duplicate-address-detection wait.
            ip(&["-n", ns, "addr", "add", &format!("{v6}/64"), "dev", dev, "nodad"])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        let _inside = netns::enter(c)?;
        let mut pass = Responder::load_named(client_program)?;
        pass.attach(ci, Mode::Driver)?;
        self.client_pass = Some(pass);
        Ok(())
    }

    /// The instance name `icmpxdp --netns <responder ns> run` gives the
    /// responder's interface (its pin directory, `stats --iface` argument).
    pub fn instance(&self) -> String {
        crate::dataplane::pins::instance_name(&self.responder_if, Some(&self.responder_ns))
    }

    /// The program on the client veth (`xdp_pass`, or the benchmark's sink).
    pub fn client_program(&mut self) -> Option<&mut Responder> {
        self.client_pass.as_mut()
    }

    /// `ip netns exec <client ns> PROGRAM`.
    pub fn client_command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.client_ns, program]);
        cmd
    }

    /// `ip netns exec <responder ns> PROGRAM`.
    pub fn responder_command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.responder_ns, program]);
        cmd
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.client_pass = None;
        // Deleting a namespace deletes the veth end inside it, and the pair.
        for ns in self.created.drain(..).rev() {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                log::error!("{e:#}");
            }
        }
    }
}
