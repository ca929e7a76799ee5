//! Starting one instance on one interface, in the order that leaves nothing
//! half-done: claim the name, read the addresses, load and configure the
//! program, pin its maps, attach, record the metadata. Dropping an
//! [`Instance`] undoes it in reverse. While it runs, an instance follows its
//! interface: deleted, it is waited for; back, it is attached again.

use std::io::Write as _;

use anyhow::Result;
use icmp_common::AddrSet;
use icmp_user::{
    config::Settings,
    dataplane::{
        addrs::interface_addrs,
        load::{Attached, Mode, Responder},
        pins::{self as pin, InstanceLock, PinDir},
        protocols::{RawProtocols, raw_protocols},
    },
};

use crate::RunOpts;

/// One attached interface: dropping it detaches and removes its pins.
pub(crate) struct Instance {
    pub(crate) name: String,
    pub(crate) iface: String,
    // Field order is drop order: detach first, then unpin, then unlock.
    pub(crate) responder: Responder,
    pub(crate) pins: PinDir,
    _lock: InstanceLock,
    addrs: AddrSet,
    meta: pin::Meta,
    /// The interface the link holds (0 while it is gone).
    ifindex: u32,
    /// The raw sockets `CLOSED_PROTOCOLS` was last written for.
    raw: RawProtocols,
}

/// What [`Instance::follow_interface`] saw this time.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum InterfaceEvent {
    /// As before: attached, or still waiting.
    Unchanged,
    /// The interface disappeared (or was replaced): nothing is attached.
    Lost,
    /// An interface of that name is back, and the program is attached to it.
    Reattached(Attached),
}

fn ifindex_of(iface: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(iface).ok()
}

impl Instance {
    pub(crate) fn start(
        iface: &str,
        netns: Option<&str>,
        opts: &RunOpts,
        settings: &Settings,
        pid: Option<u32>,
    ) -> Result<Self> {
        let mode = opts.mode;
        let name = pin::instance_name(iface, netns);
        let lock = pin::claim(&name, opts.replace)?;
        super::fault_point("claimed");
        let found = interface_addrs(iface)?;
        let mut responder = Responder::load_with(settings.max_sources)?;
        responder.apply(settings)?;
        responder.set_addrs(&found.set)?;
        let pins = PinDir::create(&name, &lock)?;
        responder.pin_maps(pins.path())?;
        super::fault_point("maps_pinned");
        let attached: Attached = responder.attach(iface, mode)?;
        super::fault_point("attached");
        for a in &found.dropped {
            log::warn!("{iface}: address set full, not answering for {a}");
        }
        let program_id = responder.program_id()?;
        let ifindex = ifindex_of(iface).unwrap_or(0);
        let meta = pin::Meta {
            iface: iface.to_owned(),
            netns: netns.map(str::to_owned),
            mode: attached.to_string(),
            program_id,
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            pid,
            config: opts.config.as_ref().map(|p| p.display().to_string()),
            sets: opts.sets.clone(),
            ifindex,
            max_sources: settings.max_sources,
            reloads_ok: 0,
            reloads_failed: 0,
        };
        meta.write(&name)?;
        super::fault_point("meta_written");
        say!(
            "icmpxdp: attached to {iface} in {attached} mode (program id {program_id}), counters pinned at {}",
            pins.path().display()
        );
        Ok(Self {
            name,
            iface: iface.to_owned(),
            responder,
            pins,
            _lock: lock,
            addrs: found.set,
            meta,
            ifindex,
            raw: raw_protocols().unwrap_or_default(),
        })
    }

    /// Picks up raw sockets opened or closed since the last look: their
    /// protocols are not answered with Protocol Unreachable.
    pub(crate) fn refresh_protocols(&mut self) -> Result<()> {
        let raw = raw_protocols()?;
        if raw != self.raw {
            let cfg = self.responder.config()?;
            self.responder.set_closed_protocols(&cfg)?;
            self.raw = raw;
            log::info!("{}: raw sockets changed, closed protocols updated", self.iface);
        }
        Ok(())
    }

    /// Whether the interface is attached (not deleted under us).
    pub(crate) fn is_attached(&self) -> bool {
        self.ifindex != 0
    }

    /// Checks the interface (about once a second): deleted or replaced by
    /// another of the same name, the link holds nothing; an interface of
    /// the name present again while detached is attached to.
    pub(crate) fn follow_interface(&mut self, mode: Mode) -> Result<InterfaceEvent> {
        let now = ifindex_of(&self.iface);
        if self.ifindex != 0 {
            if now == Some(self.ifindex) {
                return Ok(InterfaceEvent::Unchanged);
            }
            self.ifindex = 0;
            self.meta.ifindex = 0;
            self.meta.write(&self.name)?;
            return Ok(InterfaceEvent::Lost);
        }
        let Some(index) = now else {
            return Ok(InterfaceEvent::Unchanged);
        };
        let attached = self.responder.reattach(&self.iface, mode)?;
        self.ifindex = index;
        self.meta.ifindex = index;
        self.meta.mode = attached.to_string();
        self.meta.write(&self.name)?;
        // Its addresses may differ from the old interface's.
        self.addrs = AddrSet::default();
        self.refresh_addrs()?;
        Ok(InterfaceEvent::Reattached(attached))
    }

    /// Picks up address changes on the interface.
    pub(crate) fn refresh_addrs(&mut self) -> Result<()> {
        let found = interface_addrs(&self.iface)?;
        if found.set != self.addrs {
            self.responder.set_addrs(&found.set)?;
            self.addrs = found.set;
            log::info!("{}: addresses changed, address set updated", self.iface);
        }
        Ok(())
    }
}
