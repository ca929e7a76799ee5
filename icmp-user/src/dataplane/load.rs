//! Loading the program, feeding it config and addresses, attaching it.

use std::{fmt, path::Path};

use anyhow::{Context as _, Result, anyhow};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData},
    programs::{ProgramError, Xdp, XdpMode, links::FdLink, xdp::XdpLinkId},
};
use aya_log::EbpfLogger;
use icmp_common::{AddrSet, Config};

use crate::{
    EBPF_OBJECT, PASS_PROGRAM, PROGRAM,
    config::{AnswerPrefixes, PortBitmaps, Settings},
    dataplane::config_maps as control,
    map_names,
};

/// Per-source buckets when no config says otherwise.
pub const DEFAULT_MAX_SOURCES: u32 = 65536;

/// `--mode`: how to attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// Driver (native) mode, falling back to skb (generic) mode.
    #[default]
    Auto,
    /// Native XDP in the driver; fails if the driver has none.
    Driver,
    /// Generic XDP in the kernel stack: works everywhere, slower.
    Skb,
}

/// The mode an attachment actually got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attached {
    Driver,
    Skb,
}

impl fmt::Display for Attached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Driver => "driver",
            Self::Skb => "skb",
        })
    }
}

/// A loaded (and possibly attached) instance of the XDP object. Dropping it
/// detaches every link it made and unloads the programs.
pub struct Responder {
    ebpf: Ebpf,
    name: &'static str,
    /// The link made by the last [`Responder::attach`].
    link: Option<XdpLinkId>,
    logger: Option<EbpfLogger<&'static dyn log::Log>>,
    /// Attached only so BPF_PROG_TEST_RUN calls it as the kernel calls an
    /// attached program (the bench): no traffic, nothing to warn about.
    test_run_only: bool,
}

/// A loader with the maps sized for this host, which every load goes
/// through: `max_sources` per-source buckets, and an entry (a group of
/// entries) per possible CPU in `COUNTERS` and `REFUSALS` — a CPU beyond
/// them would find no entry, and its counts would be lost.
fn sized_loader(max_sources: u32) -> Result<EbpfLoader<'static>> {
    let cpus = aya::util::nr_cpus().map_err(|(path, e)| anyhow!(e).context(format!("reading {path}")))? as u32;
    let mut loader = EbpfLoader::new();
    loader
        .map_max_entries(map_names::BUCKETS, max_sources)
        .map_max_entries(map_names::COUNTERS, cpus)
        .map_max_entries("REFUSALS", cpus * icmp_common::ratelimit::REFUSAL_SLOTS);
    Ok(loader)
}

impl Responder {
    /// Loads the responder program into the kernel (the verifier runs here),
    /// with the default bucket map size.
    pub fn load() -> Result<Self> {
        Self::load_program(PROGRAM, DEFAULT_MAX_SOURCES)
    }

    /// Loads the responder for the benchmark's repeat-mode echo: the echo
    /// rewrite writes the request type back (the `BENCH_ECHO_IN_PLACE`
    /// global), so every run on one buffer does the whole echo path. Never
    /// for attaching: it would answer requests with requests.
    pub fn load_bench_echo_in_place() -> Result<Self> {
        Self::load_with_loader(
            PROGRAM,
            sized_loader(DEFAULT_MAX_SOURCES)?.override_global("BENCH_ECHO_IN_PLACE", &1u8, true),
        )
    }

    /// Loads the responder with room for `max_sources` per-source buckets.
    pub fn load_with(max_sources: u32) -> Result<Self> {
        Self::load_program(PROGRAM, max_sources)
    }

    /// Loads the pass-everything program only.
    pub fn load_pass() -> Result<Self> {
        Self::load_program(PASS_PROGRAM, 1)
    }

    /// Loads one of the object's other programs by name (the benchmark's
    /// generator and sink).
    pub fn load_named(name: &'static str) -> Result<Self> {
        Self::load_program(name, 1)
    }

    /// A map of this instance by name.
    pub fn map_named(&mut self, name: &str) -> Result<&mut aya::maps::Map> {
        self.map_mut(name)
    }

    fn load_program(name: &'static str, max_sources: u32) -> Result<Self> {
        Self::load_with_loader(name, &mut sized_loader(max_sources)?)
    }

    fn load_with_loader(name: &'static str, loader: &mut EbpfLoader<'_>) -> Result<Self> {
        let mut ebpf = loader
            .load(EBPF_OBJECT)
            .map_err(|e| anyhow!(e).context("loading the eBPF object (creating maps) failed; are you root?"))?;
        // The log ring buffer exists only because the program can log; a
        // missing one is not an error.
        let logger = EbpfLogger::init(&mut ebpf).ok();
        let program: &mut Xdp = ebpf
            .program_mut(name)
            .with_context(|| format!("program `{name}` missing from the object"))?
            .try_into()?;
        program.load().map_err(|e| match e {
            ProgramError::LoadError { io_error, verifier_log } => anyhow!(
                "the kernel verifier rejected `{name}` ({io_error}); this is a bug in icmpxdp, \
                 please report it with this log:\n{verifier_log}"
            ),
            e => anyhow!(e).context(format!("loading program `{name}`")),
        })?;
        Ok(Self {
            ebpf,
            name,
            link: None,
            logger,
            test_run_only: false,
        })
    }

    pub fn program(&mut self) -> &mut Xdp {
        self.ebpf
            .program_mut(self.name)
            .and_then(|p| p.try_into().ok())
            .expect("a loaded XDP program")
    }

    /// Instructions the verifier processed to accept the program (the
    /// budget is 1,000,000).
    pub fn verified_insns(&mut self) -> Result<u32> {
        Ok(self.program().info()?.verified_instruction_count().unwrap_or(0))
    }

    pub fn program_id(&mut self) -> Result<u32> {
        Ok(self.program().info()?.id())
    }

    /// Writes the config the program uses (double-buffered, see
    /// [`control::write_config`]).
    pub fn set_config(&mut self, cfg: &Config) -> Result<()> {
        let [config, control_words] = self.two_maps(map_names::CONFIG, map_names::CONTROL)?;
        control::write_config(config, control_words, cfg)
    }

    pub fn config(&self) -> Result<Config> {
        control::read_config(self.map(map_names::CONFIG)?, self.map(map_names::CONTROL)?)
    }

    /// Applies validated settings to a loaded program (all but
    /// `max_sources`, fixed at load).
    pub fn apply(&mut self, s: &Settings) -> Result<()> {
        self.set_ports(&s.ports)?;
        self.set_answer_prefixes(&s.answer_prefixes)?;
        self.set_closed_protocols(&s.config)?;
        self.set_config(&s.config)
    }

    /// Writes `CLOSED_PROTOCOLS` for `cfg` and the raw sockets open now (in
    /// the calling thread's namespace); a running `run` calls it again when
    /// they change.
    pub fn set_closed_protocols(&mut self, cfg: &Config) -> Result<()> {
        let [protocols, control_words] = self.two_maps(map_names::CLOSED_PROTOCOLS, map_names::CONTROL)?;
        control::write_closed_protocols(protocols, control_words, cfg)
    }

    /// Writes `echo.answer_prefixes` into the LPM tries.
    pub fn set_answer_prefixes(&mut self, prefixes: &AnswerPrefixes) -> Result<()> {
        let [v4, v6] = self.two_maps(map_names::ANSWER_PREFIXES_V4, map_names::ANSWER_PREFIXES_V6)?;
        control::write_answer_prefixes(v4, v6, prefixes)
    }

    /// Two of this instance's maps at once, by name.
    fn two_maps(&mut self, a: &str, b: &str) -> Result<[&mut aya::maps::Map; 2]> {
        match self.ebpf.maps_disjoint_mut([a, b]) {
            [Some(a), Some(b)] => Ok([a, b]),
            _ => anyhow::bail!("{a} or {b} missing from the object"),
        }
    }

    pub fn set_addrs(&mut self, addrs: &AddrSet) -> Result<()> {
        let mut map: Array<&mut MapData, AddrSet> = Array::try_from(self.map_mut(map_names::ADDRS)?)?;
        map.set(0, addrs, 0).context("writing ADDRS")?;
        Ok(())
    }

    /// Writes the static port lists.
    pub fn set_ports(&mut self, ports: &PortBitmaps) -> Result<()> {
        let [ports_map, control_words] = self.two_maps(map_names::PORTS, map_names::CONTROL)?;
        control::write_ports(ports_map, control_words, ports)
    }

    pub fn addrs(&self) -> Result<AddrSet> {
        let map: Array<&MapData, AddrSet> = Array::try_from(self.map(map_names::ADDRS)?)?;
        Ok(map.get(&0, 0)?)
    }

    fn map_mut(&mut self, name: &str) -> Result<&mut aya::maps::Map> {
        self.ebpf
            .map_mut(name)
            .with_context(|| format!("map {name} missing from the object"))
    }

    /// A map of this instance by name (read only).
    pub fn map(&self, name: &str) -> Result<&aya::maps::Map> {
        self.ebpf
            .map(name)
            .with_context(|| format!("map {name} missing from the object"))
    }

    /// Pins every map under `dir` (which must exist on a bpffs).
    pub fn pin_maps(&self, dir: &Path) -> Result<()> {
        for name in map_names::PINNED {
            let path = dir.join(name);
            self.map(name)?
                .pin(&path)
                .with_context(|| format!("pinning {name} at {}", path.display()))?;
        }
        Ok(())
    }

    /// Attaches to `iface` (in the calling thread's network namespace).
    /// `Auto` tries driver mode and falls back to skb mode; a failed attempt
    /// leaves nothing attached.
    pub fn attach(&mut self, iface: &str, mode: Mode) -> Result<Attached> {
        let attempt = |p: &mut Xdp, m: XdpMode| p.attach(iface, m).map_err(|e| explain_attach(iface, m, e));
        // A veth delivers driver-mode XDP_TX only to a peer that runs XDP
        // (only the responder sends; the lab's and bench's helpers do not).
        let peer_without_xdp = self.name == PROGRAM
            && !self.test_run_only
            && matches!(crate::dataplane::veth::peer_runs_xdp(iface), Ok(Some(false)));
        const VETH: &str = "its veth peer runs no XDP program, and a veth delivers driver-mode XDP_TX \
                            frames only to a peer that does (they would be counted as sent and lost)";
        let (link, got) = match mode {
            Mode::Driver => {
                if peer_without_xdp {
                    log::warn!(
                        "{iface}: driver mode as asked, but {VETH}: attach an XDP program to the peer \
                         (any, even one that passes everything) or use --mode skb"
                    );
                }
                (attempt(self.program(), XdpMode::Driver)?, Attached::Driver)
            }
            Mode::Skb => (attempt(self.program(), XdpMode::Skb)?, Attached::Skb),
            Mode::Auto if peer_without_xdp => {
                log::warn!("{iface}: using skb (generic) mode: {VETH}");
                (attempt(self.program(), XdpMode::Skb)?, Attached::Skb)
            }
            Mode::Auto => match attempt(self.program(), XdpMode::Driver) {
                Ok(link) => (link, Attached::Driver),
                Err(driver_err) => {
                    if is_unknown_interface(&driver_err) {
                        return Err(driver_err);
                    }
                    log::warn!("{driver_err:#}; falling back to skb (generic) mode");
                    (attempt(self.program(), XdpMode::Skb)?, Attached::Skb)
                }
            },
        };
        self.link = Some(link);
        Ok(got)
    }

    /// Attaches in driver mode only so that BPF_PROG_TEST_RUN reaches the
    /// program through the XDP dispatcher, as the kernel reaches a program
    /// on a NIC (the bench; no traffic ever crosses `iface`).
    pub fn attach_for_test_run(&mut self, iface: &str) -> Result<()> {
        self.test_run_only = true;
        self.attach(iface, Mode::Driver).map(|_| ())
    }

    /// Attaches again after the interface was deleted and re-created: the
    /// old link holds nothing any more and is closed first.
    pub fn reattach(&mut self, iface: &str, mode: Mode) -> Result<Attached> {
        if let Some(old) = self.link.take() {
            // A link whose interface is gone detaches with an error; either
            // way its fd is closed.
            let _ = self.program().detach(old);
        }
        self.attach(iface, mode)
    }

    /// Pins the program and the link of the last attach under `dir`, so the
    /// attachment outlives this process (`icmpxdp attach`).
    pub fn pin_attachment(&mut self, dir: &Path) -> Result<()> {
        let link_id = self.link.take().context("not attached")?;
        let link = self.program().take_link(link_id)?;
        let fd_link = FdLink::try_from(link).map_err(|e| {
            anyhow!(e).context("the kernel attached through netlink, not a BPF link, so the attachment cannot be pinned (needs Linux ≥ 5.9); use `icmpxdp run`")
        })?;
        self.program()
            .pin(dir.join(crate::dataplane::pins::PROG_PIN))
            .context("pinning the program")?;
        let _pinned = fd_link
            .pin(dir.join(crate::dataplane::pins::LINK_PIN))
            .context("pinning the link")?;
        Ok(())
    }

    /// Forwards log records the program wrote (aya-log) to the `log` crate.
    pub fn flush_logs(&mut self) {
        if let Some(logger) = &mut self.logger {
            logger.flush();
        }
    }

    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }
}

/// The interface's MTU, asked in the calling thread's network namespace.
fn mtu_of(iface: &str) -> Option<u32> {
    // SAFETY: a datagram socket we close below, and SIOCGIFMTU with a
    // zeroed struct ifreq holding the name.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return None;
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (d, s) in req.ifr_name.iter_mut().zip(iface.bytes().take(libc::IFNAMSIZ - 1)) {
            *d = s as libc::c_char;
        }
        let r = libc::ioctl(fd, libc::SIOCGIFMTU, &mut req);
        libc::close(fd);
        (r == 0).then_some(req.ifr_ifru.ifru_mtu as u32)
    }
}

#[derive(Debug)]
struct UnknownInterface;

impl fmt::Display for UnknownInterface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown interface")
    }
}

impl std::error::Error for UnknownInterface {}

fn is_unknown_interface(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<UnknownInterface>())
}

fn explain_attach(iface: &str, mode: XdpMode, e: ProgramError) -> anyhow::Error {
    let mode_name = match mode {
        XdpMode::Driver => "driver",
        XdpMode::Skb => "skb",
        _ => "default",
    };
    let errno = match &e {
        ProgramError::SyscallError(s) => s.io_error.raw_os_error(),
        _ => None,
    };
    match (&e, errno) {
        (ProgramError::UnknownInterface { .. }, _) => anyhow!(UnknownInterface).context(format!(
            "interface `{iface}` does not exist in this network namespace; list interfaces with `ip link`"
        )),
        (_, Some(libc::EBUSY | libc::EEXIST)) => anyhow!(e).context(format!(
            "another XDP program is already attached to `{iface}` (`bpftool net show dev {iface}` names it). \
             If it is an `icmpxdp attach`: `icmpxdp detach --iface {iface}` (with the same --netns), or pass \
             --replace. One attached through a BPF link (by icmpxdp, libxdp, …) is removed by its owner, or \
             with `bpftool link detach id ID`; `ip link set dev {iface} xdp off` removes only netlink attachments"
        )),
        (_, Some(libc::ERANGE)) => anyhow!(e).context(format!(
            "the MTU of `{iface}` ({}) is too large for XDP in {mode_name} mode on this driver (a frame must \
             fit in one page: about 3,500 bytes on veth); lower it (`ip link set dev {iface} mtu 1500`) or use \
             `--mode skb`",
            mtu_of(iface).map_or_else(|| "unknown".to_owned(), |m| m.to_string())
        )),
        (_, Some(libc::EOPNOTSUPP | libc::EINVAL)) => anyhow!(e).context(format!(
            "`{iface}` does not support XDP in {mode_name} mode; try `--mode skb` or `--mode auto`"
        )),
        (_, Some(libc::EPERM | libc::EACCES)) => anyhow!(e).context(format!(
            "not permitted to attach XDP to `{iface}`: run as root (or with CAP_NET_ADMIN and CAP_BPF)"
        )),
        _ => anyhow!(e).context(format!("attaching to `{iface}` in {mode_name} mode failed")),
    }
}
