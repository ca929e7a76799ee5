//! `cargo xtask profile PATH`: where one path of the XDP program spends its
//! time, by source line. `perf record -e cpu-clock` samples a loop of
//! BPF_PROG_TEST_RUN calls on an attached instance (`icmpxdp bench
//! --profile PATH`), which first writes the program's JIT line map
//! (`--jit-lines`: machine-code address → source line, from the kernel's
//! `jited_line_info`); the samples that fall in the program are counted per
//! line. On a fresh frame per call the hot lines are the first loads of
//! each cache line the path touches.

use std::{collections::HashMap, fs, path::Path, process::Command};

use anyhow::{Context as _, Result, bail};

/// A function of the program: its address and length.
type Func = (u64, u64);

/// A stretch of machine code and the source line it came from.
struct Line {
    addr: u64,
    insn: u32,
    /// Full path of the source file, then `:line`.
    place: String,
    text: String,
}

impl Line {
    /// In this project's own code (not a library inlined into it).
    fn ours(&self) -> bool {
        self.place.contains("/icmp-ebpf/") || self.place.contains("/icmp-common/")
    }

    /// `file.rs:line`.
    fn short(&self) -> &str {
        self.place.rsplit('/').next().unwrap_or(&self.place)
    }
}

/// Runs the profile and prints the `top` lines.
pub fn profile(bin: &Path, path: &str, seconds: u64, top: usize) -> Result<()> {
    let dir = crate::root().join("target/profile");
    fs::create_dir_all(&dir)?;
    let (data, map) = (dir.join("perf.data"), dir.join("jit-lines.tsv"));
    let status = Command::new("perf")
        .args(["record", "-q", "-e", "cpu-clock", "-o"])
        .arg(&data)
        .arg("--")
        .arg(bin)
        .args([
            "bench",
            "--profile",
            path,
            "--seconds",
            &seconds.to_string(),
            "--jit-lines",
        ])
        .arg(&map)
        .status()
        .context("running perf (Debian: apt-get install linux-perf)")?;
    if !status.success() {
        bail!("perf record failed: {status}");
    }
    let out = Command::new("perf")
        .args(["script", "-F", "ip", "-i"])
        .arg(&data)
        .output()
        .context("perf script")?;
    let ips: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| u64::from_str_radix(l.trim(), 16).ok())
        .collect();
    let (funcs, mut lines) = read_map(&map)?;
    lines.sort_by_key(|l| l.addr);
    let mut per_line: HashMap<usize, u64> = HashMap::new();
    let mut in_program = 0u64;
    for ip in &ips {
        if !funcs.iter().any(|(a, len)| (*a..*a + *len).contains(ip)) {
            continue;
        }
        in_program += 1;
        let i = lines.partition_point(|l| l.addr <= *ip);
        if i > 0 {
            *per_line.entry(i - 1).or_default() += 1;
        }
    }
    // One row per stretch of code, with the nearest line of our own code
    // before it for context (a map lookup is a library line inlined at
    // many places).
    let mut rows: Vec<(usize, u64)> = per_line.into_iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    println!(
        "profile {path}: {} samples, {in_program} in the program ({:.1}%); its hottest code, by BPF instruction:",
        ips.len(),
        100.0 * in_program as f64 / ips.len().max(1) as f64
    );
    for (i, n) in rows.into_iter().take(top) {
        let l = &lines[i];
        let context = if l.ours() {
            String::new()
        } else {
            lines[..i]
                .iter()
                .rev()
                .find(|c| c.ours())
                .map_or_else(String::new, |c| format!("   ← {} {}", c.short(), clip(&c.text, 50)))
        };
        println!(
            "{:>5.1}%  insn {:>5}  {:<22} {}{context}",
            100.0 * n as f64 / in_program.max(1) as f64,
            l.insn,
            l.short(),
            clip(&l.text, 60)
        );
    }
    println!("(perf data: {}; JIT line map: {})", data.display(), map.display());
    Ok(())
}

/// The `func` and `line` records `icmpxdp bench --jit-lines` writes.
fn read_map(map: &Path) -> Result<(Vec<Func>, Vec<Line>)> {
    let text = fs::read_to_string(map).with_context(|| format!("reading {}", map.display()))?;
    let (mut funcs, mut lines) = (Vec::new(), Vec::new());
    for l in text.lines() {
        let f: Vec<&str> = l.splitn(5, '\t').collect();
        let hex = |s: &str| u64::from_str_radix(s, 16).with_context(|| format!("bad address in {l:?}"));
        match f.as_slice() {
            ["func", addr, len] => funcs.push((hex(addr)?, len.parse()?)),
            ["line", addr, insn, place, text] => lines.push(Line {
                addr: hex(addr)?,
                insn: insn.parse()?,
                place: (*place).to_owned(),
                text: (*text).to_owned(),
            }),
            _ => bail!("unexpected line in {}: {l:?}", map.display()),
        }
    }
    Ok((funcs, lines))
}

fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
