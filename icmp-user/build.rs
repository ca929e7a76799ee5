//! Builds `icmp-ebpf` for bpfel-unknown-none and leaves the object in OUT_DIR,
//! where `src/lib.rs` embeds it, so `icmpxdp` is one self-contained binary.
//!
//! Toolchain: `ICMPXDP_EBPF_TOOLCHAIN` if set; else rustup's `nightly` when it
//! has the `rust-src` component; else `deb-web` (Debian's rustc-web linked with
//! `rustup toolchain link deb-web /usr`, see `cargo xtask setup`), which is a
//! stable compiler and so needs RUSTC_BOOTSTRAP=1 for `-Z build-std=core`.

use std::{path::Path, process::Command};

use anyhow::{Context as _, bail};
use aya_build::{Package, Toolchain};

fn sysroot_has_core_src(toolchain: &str) -> bool {
    let Ok(out) = Command::new("rustup")
        .args(["run", toolchain, "rustc", "--print", "sysroot"])
        .output()
    else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout);
    out.status.success()
        && Path::new(sysroot.trim())
            .join("lib/rustlib/src/rust/library/core")
            .is_dir()
}

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=ICMPXDP_EBPF_TOOLCHAIN");
    // aya-build watches icmp-ebpf; the program also compiles icmp-common.
    println!("cargo:rerun-if-changed=../icmp-common/src");

    let toolchain = match std::env::var("ICMPXDP_EBPF_TOOLCHAIN") {
        Ok(t) => t,
        Err(_) if sysroot_has_core_src("nightly") => "nightly".to_owned(),
        Err(_) if sysroot_has_core_src("deb-web") => "deb-web".to_owned(),
        Err(_) => bail!(
            "no toolchain can build the eBPF program: need rustup's nightly with rust-src, \
             or Debian's rustc-web linked as `deb-web`. Run `cargo xtask setup`."
        ),
    };
    if toolchain != "nightly" {
        // SAFETY: the build script is single-threaded at this point.
        unsafe { std::env::set_var("RUSTC_BOOTSTRAP", "1") };
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .join("icmp-ebpf");
    let root = root.to_str().context("non-UTF-8 path")?;
    aya_build::build_ebpf(
        [Package {
            name: "icmp-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        Toolchain::Custom(&toolchain),
    )
}
