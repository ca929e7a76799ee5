//! Builds `icmp-ebpf` for bpfel-unknown-none and leaves the object in OUT_DIR,
//! where `src/lib.rs` embeds it, so `icmpxdp` is one self-contained binary.
//!
//! Toolchain: `ICMPXDP_EBPF_TOOLCHAIN` if set; else rustup's `nightly` when it
//! has the `rust-src` component; else `deb-web` (Debian's rustc-web linked with
//! `rustup toolchain link deb-web /usr`, see `cargo xtask setup`), which is a
//! stable compiler and so needs RUSTC_BOOTSTRAP=1 for `-Z build-std=core`.
//!
//! This is aya-build's `build_ebpf` (same command, flags and target
//! directory) without its one drawback: aya-build turns every line cargo
//! prints (`Compiling core …`) into a `cargo:warning`, forty of them on a
//! clean build. Here only the eBPF crate's own compiler warnings become
//! warnings, and cargo's output is shown when the build fails.

use std::{
    io::{BufRead as _, BufReader, Read as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

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
    // The program is icmp-ebpf's source and the icmp-common it compiles.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .to_owned();
    println!("cargo:rerun-if-changed={}", root.join("icmp-ebpf").display());
    println!("cargo:rerun-if-changed={}", root.join("icmp-common/src").display());

    let toolchain = match std::env::var("ICMPXDP_EBPF_TOOLCHAIN") {
        Ok(t) => t,
        Err(_) if sysroot_has_core_src("nightly") => "nightly".to_owned(),
        Err(_) if sysroot_has_core_src("deb-web") => "deb-web".to_owned(),
        Err(_) => bail!(
            "no toolchain can build the eBPF program: need rustup's nightly with rust-src, \
             or Debian's rustc-web linked as `deb-web`. Run `cargo xtask setup`."
        ),
    };
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").context("CARGO_CFG_TARGET_ARCH not set")?;
    let target_dir = out_dir.join("aya-build").join("target").join("icmp-ebpf");

    let mut cmd = Command::new("rustup");
    cmd.args(["run", &toolchain, "cargo", "build", "--package", "icmp-ebpf", "--bins"])
        .args(["--message-format=json", "--release", "--target", "bpfel-unknown-none"])
        .args(["-Z", "build-std=core", "--features", ""])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(root.join("icmp-ebpf"))
        // A stable compiler needs this for -Z build-std; nightly ignores it.
        .env("RUSTC_BOOTSTRAP", "1")
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            format!("--cfg=bpf_target_arch=\"{arch}\"\x1f-Cdebuginfo=2\x1f-Clink-arg=--btf"),
        )
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
    let mut stderr = child.stderr.take().context("stderr")?;
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut executable = None;
    for line in BufReader::new(child.stdout.take().context("stdout")?).lines() {
        let line = line?;
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        match msg["reason"].as_str() {
            Some("compiler-artifact") if msg["target"]["name"] == "icmp-ebpf" => {
                if let Some(exe) = msg["executable"].as_str() {
                    executable = Some(PathBuf::from(exe));
                }
            }
            // Warnings and errors in the program's own code: those matter.
            Some("compiler-message") => {
                for l in msg["message"]["rendered"].as_str().unwrap_or_default().lines() {
                    println!("cargo:warning={l}");
                }
            }
            _ => {}
        }
    }
    let status = child.wait()?;
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        bail!("building the eBPF program failed ({status}):\n{stderr}");
    }
    let exe = executable.context("cargo built no icmp-ebpf binary")?;
    std::fs::copy(&exe, out_dir.join("icmp-ebpf"))
        .with_context(|| format!("copying {} into OUT_DIR", exe.display()))?;
    Ok(())
}
