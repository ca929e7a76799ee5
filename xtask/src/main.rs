//! `cargo xtask setup | build | run | test | bench | profile | fuzz`: the
//! commands a person needs, and what they need installed.

use std::{
    env,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

mod profile;

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what the eBPF build and the tests need (idempotent).
    Setup,
    /// Build the self-contained `icmpxdp` binary (release).
    Build,
    /// Build and start `icmpxdp run` with ARGS; with no `--iface`, start a lab.
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Measure ns/packet per path against an XDP_PASS baseline (`icmpxdp bench`).
    Bench {
        /// Arguments for `icmpxdp bench` (`--json`, `--quick`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Where one path of the XDP program spends its time, by source line:
    /// `perf record` on `icmpxdp bench --profile PATH`, samples mapped
    /// through the kernel's JIT line info.
    Profile {
        /// echo4, echo6, pu4, pu4-default, pu4-refused, bare-echo4,
        /// bare-unreach4, tcp.
        #[arg(default_value = "echo4")]
        path: String,
        #[arg(long, default_value_t = 8)]
        seconds: u64,
        /// Lines to print.
        #[arg(long, default_value_t = 25)]
        top: usize,
    },
    /// Differential fuzz of the real program (BPF_PROG_TEST_RUN) for long
    /// runs: every scenario config and random configs, N frames each.
    Fuzz {
        /// Frames per config.
        #[arg(long, default_value_t = 1_000_000)]
        frames: u64,
        /// Seed (printed with any failure, so a run can be replayed).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Run every test: unit, property, packet (test_run) and netns end to end.
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Debian packages: Debian's rustc with core sources and LLVM 22 for the eBPF
/// build and bpf-linker; iproute2, ping, traceroute and nftables for the lab
/// and the tests; promtool (prometheus) and systemd-analyze (systemd) for the
/// tests that check the metrics and the unit file.
const APT_PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "libstd-rust-web-dev",
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "iproute2",
    "iputils-ping",
    "traceroute",
    "nftables",
];
const BPF_LINKER_VERSION: &str = "0.13.0";
const DEB_TOOLCHAIN: &str = "deb-web";

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_owned()
}

fn cargo() -> Command {
    let mut c = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("spawning {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}

fn stdout_of(cmd: &mut Command) -> Option<String> {
    let o = cmd.output().ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

fn is_root() -> bool {
    stdout_of(Command::new("id").arg("-u")).as_deref() == Some("0")
}

fn has_core_src(toolchain: &str) -> bool {
    stdout_of(Command::new("rustup").args(["run", toolchain, "rustc", "--print", "sysroot"]))
        .is_some_and(|s| Path::new(&s).join("lib/rustlib/src/rust/library/core").is_dir())
}

fn which(program: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

fn cargo_bin_dir() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env::var_os("HOME").unwrap_or_default()).join(".cargo"))
        .join("bin")
}

fn apt_install(missing: &[&str]) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() || which("apt-get").is_none() {
        bail!(
            "missing Debian packages {missing:?} and this is not a root Debian/Ubuntu shell: install them \
             (or rustup nightly with rust-src, and bpf-linker), then re-run"
        );
    }
    println!("setup: apt-get install {}", missing.join(" "));
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn dpkg_installed(pkg: &str) -> bool {
    stdout_of(Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg])).is_some_and(|s| s.ends_with("installed"))
}

/// Makes sure the eBPF program can be built and the tests can run; prints
/// what it found or did.
fn setup() -> Result<()> {
    // Runtime tools for the lab and the tests.
    let mut missing: Vec<&str> = Vec::new();
    if which("ip").is_none() {
        missing.push("iproute2");
    }
    // (program, package): what the lab and the tests run.
    for (program, package) in [
        ("ping", "iputils-ping"),
        ("traceroute", "traceroute"),
        ("tracepath", "iputils-tracepath"),
        ("nft", "nftables"),
        ("promtool", "prometheus"),
        ("systemd-analyze", "systemd"),
        ("setpriv", "util-linux"),
        ("bpftool", "bpftool"),
        ("tcpdump", "tcpdump"),
    ] {
        if which(program).is_none() && !Path::new("/usr/sbin").join(program).is_file() {
            missing.push(package);
        }
    }

    // The eBPF toolchain: prefer what is present.
    let nightly = has_core_src("nightly");
    if nightly {
        println!("setup: eBPF toolchain: rustup nightly with rust-src (present)");
    } else if has_core_src(DEB_TOOLCHAIN) {
        println!("setup: eBPF toolchain: Debian rustc-web as rustup toolchain `{DEB_TOOLCHAIN}` (present)");
    } else {
        missing.extend(APT_PACKAGES.iter().filter(|p| !dpkg_installed(p)));
    }
    let linker = which("bpf-linker").or_else(|| Some(cargo_bin_dir().join("bpf-linker")).filter(|p| p.is_file()));
    if linker.is_none() {
        for p in ["llvm-22-dev", "libpolly-22-dev", "libzstd-dev", "zlib1g-dev"] {
            if !missing.contains(&p) && !dpkg_installed(p) {
                missing.push(p);
            }
        }
    }
    missing.dedup();
    apt_install(&missing)?;

    // The metrics test parses /metrics with the Python Prometheus client's
    // own OpenMetrics parser.
    // The DaemonSet test validates it against the Kubernetes schemas
    // offline with kubernetes-validate (PyPI).
    for (module, package) in [
        ("prometheus_client", "prometheus-client"),
        // The capture test reads icmpxdp's pcapng with scapy (comments) and tcpdump.
        ("scapy", "scapy"),
        ("kubernetes_validate", "kubernetes-validate"),
    ] {
        if !succeeds(Command::new("python3").args(["-c", &format!("import {module}")])) {
            println!("setup: python3 -m pip install {package}");
            run(Command::new("python3").args(["-m", "pip", "install", "--quiet", package]))?;
        }
    }

    if !nightly && !has_core_src(DEB_TOOLCHAIN) {
        println!("setup: rustup toolchain link {DEB_TOOLCHAIN} /usr");
        run(Command::new("rustup").args(["toolchain", "link", DEB_TOOLCHAIN, "/usr"]))?;
        if !has_core_src(DEB_TOOLCHAIN) {
            bail!("toolchain `{DEB_TOOLCHAIN}` has no core sources at /usr/lib/rustlib/src (package rust-web-src)");
        }
    }
    match linker {
        Some(p) => println!("setup: bpf-linker: {} (present)", p.display()),
        None => {
            println!("setup: cargo install bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (takes a few minutes)");
            let path = format!("/usr/lib/llvm-22/bin:{}", env::var("PATH").unwrap_or_default());
            run(Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
                .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
                .args(["--no-default-features", "--features", "llvm-22"])
                .env("PATH", path))?;
        }
    }
    Ok(())
}

/// PATH with cargo's bin directory, where `cargo install` puts bpf-linker.
fn path_with_cargo_bin() -> std::ffi::OsString {
    let mut parts = vec![cargo_bin_dir()];
    parts.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
    env::join_paths(parts).expect("PATH")
}

fn build(release: bool) -> Result<PathBuf> {
    let mut c = cargo();
    c.args(["build", "--package", "icmp-user"])
        .env("PATH", path_with_cargo_bin());
    if release {
        c.arg("--release");
    }
    run(&mut c)?;
    Ok(root()
        .join("target")
        .join(if release { "release" } else { "debug" })
        .join("icmpxdp"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Setup => setup(),
        Cmd::Build => setup()
            .and_then(|()| build(true))
            .map(|p| println!("built {}", p.display())),
        Cmd::Run { args } => (|| {
            if !is_root() {
                bail!(
                    "`cargo xtask run` attaches an XDP program and (for the lab) creates network namespaces: run it as root"
                );
            }
            setup()?;
            let bin = build(true)?;
            let mut cmd = Command::new(bin);
            if args.iter().any(|a| a == "--iface" || a.starts_with("--iface=")) {
                cmd.arg("run");
            } else {
                cmd.arg("lab");
            }
            run(cmd.args(&args))
        })(),
        Cmd::Bench { args } => (|| {
            if !is_root() {
                bail!("`cargo xtask bench` loads XDP programs: run it as root");
            }
            setup()?;
            let bin = build(true)?;
            run(Command::new(bin).arg("bench").args(&args))
        })(),
        Cmd::Profile { path, seconds, top } => (|| {
            if !is_root() {
                bail!("`cargo xtask profile` loads XDP programs and runs perf: run it as root");
            }
            setup()?;
            let bin = build(true)?;
            profile::profile(&bin, &path, seconds, top)
        })(),
        Cmd::Fuzz { frames, seed } => (|| {
            if !is_root() {
                bail!("`cargo xtask fuzz` loads the XDP program: run it as root");
            }
            setup()?;
            build(false)?;
            let seed = seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
            println!(
                "fuzz: {frames} frames per config, seed {seed} (replay: cargo xtask fuzz --frames {frames} --seed {seed})"
            );
            run(cargo()
                .args([
                    "test",
                    "--release",
                    "-p",
                    "icmpxdp-tests",
                    "--test",
                    "fuzz",
                    "--",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("ICMPXDP_FUZZ_FRAMES", frames.to_string())
                .env("ICMPXDP_FUZZ_SEED", seed.to_string())
                .env("PATH", path_with_cargo_bin()))
        })(),
        Cmd::Test { args } => (|| {
            if !is_root() {
                bail!(
                    "`cargo xtask test` loads XDP programs and creates network namespaces: run it as root \
                     (host-only tests: `cargo test -p icmp-common`)"
                );
            }
            setup()?;
            let bin = build(false)?;
            run(cargo()
                .args(["test", "--workspace", "--exclude", "icmp-ebpf"])
                .args(&args)
                .env("ICMPXDP_BIN", bin)
                .env("PATH", path_with_cargo_bin()))
        })(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
