//! Starting one instance on one interface, in the order that leaves nothing
//! half-done: claim the name, read the addresses, load and configure the
//! program, pin its maps, attach, record the metadata. Dropping an
//! [`Instance`] undoes it in reverse.

use std::io::Write as _;

use anyhow::Result;
use icmp_common::AddrSet;
use icmp_user::{
    config::Settings,
    dataplane::{
        addrs::interface_addrs,
        load::{Attached, Responder},
        pins::{self as pin, InstanceLock, PinDir},
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
        pin::Meta {
            iface: iface.to_owned(),
            netns: netns.map(str::to_owned),
            mode: attached.to_string(),
            program_id,
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            pid,
            config: opts.config.as_ref().map(|p| p.display().to_string()),
        }
        .write(&name)?;
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
        })
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
