//! The JIT image's map back to the source, for profiling: where each
//! function of a loaded program sits in kernel memory and which source line
//! each stretch of machine code came from (`jited_line_info` + `line_info`
//! and the program's BTF strings, through `BPF_OBJ_GET_INFO_BY_FD`).
//! With it, `perf` samples (`bpf_prog_<tag>_<name>+offset`) become source
//! lines: `cargo xtask profile` does both (README, *Notes for eBPF
//! developers*). Debian's bpftool cannot show this without libbfd.

use std::{fmt::Write as _, os::fd::RawFd};

use anyhow::{Context, Result, ensure};
use aya_obj::generated::{bpf_btf_info, bpf_line_info, bpf_prog_info};

const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_BTF_GET_FD_BY_ID: libc::c_long = 19;

/// `bpf(BPF_OBJ_GET_INFO_BY_FD)` into `info`.
fn info_by_fd<T>(fd: RawFd, info: &mut T) -> Result<()> {
    // union bpf_attr's `info`: bpf_fd, info_len, info (pointer).
    let mut attr = [0u64; 2];
    attr[0] = fd as u32 as u64 | (size_of::<T>() as u64) << 32;
    attr[1] = (info as *mut T) as u64;
    // SAFETY: the kernel writes at most info_len bytes into `info`.
    let r = unsafe { libc::syscall(libc::SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, attr.as_mut_ptr(), 16) };
    ensure!(r == 0, "BPF_OBJ_GET_INFO_BY_FD: {}", std::io::Error::last_os_error());
    Ok(())
}

/// One stretch of machine code: from `addr` to the next line's address.
pub struct Line {
    pub addr: u64,
    pub insn_off: u32,
    pub file: String,
    pub line: u32,
    pub text: String,
}

/// A program's functions (address, length) and lines, by address.
pub struct JitLines {
    pub funcs: Vec<(u64, u32)>,
    pub lines: Vec<Line>,
}

/// Reads the JIT line map of the program behind `prog_fd`.
pub fn read(prog_fd: RawFd) -> Result<JitLines> {
    // SAFETY: a plain-old-data uapi struct; zero is a valid value.
    let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
    info_by_fd(prog_fd, &mut info)?;
    let (nf, nj, nl, lrs) = (
        info.nr_jited_ksyms,
        info.nr_jited_line_info,
        info.nr_line_info,
        info.line_info_rec_size,
    );
    ensure!(
        nj > 0 && nj == nl,
        "no JIT line info (is the JIT on, and the object built with BTF?)"
    );
    let btf_id = info.btf_id;
    let mut ksyms = vec![0u64; nf as usize];
    let mut lens = vec![0u32; nf as usize];
    let mut jited = vec![0u64; nj as usize];
    let mut line_info = vec![0u8; (nl * lrs) as usize];
    // SAFETY: as above.
    let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
    info.nr_jited_ksyms = nf;
    info.jited_ksyms = ksyms.as_mut_ptr() as u64;
    info.nr_jited_func_lens = nf;
    info.jited_func_lens = lens.as_mut_ptr() as u64;
    info.nr_jited_line_info = nj;
    info.jited_line_info_rec_size = 8;
    info.jited_line_info = jited.as_mut_ptr() as u64;
    info.nr_line_info = nl;
    info.line_info_rec_size = lrs;
    info.line_info = line_info.as_mut_ptr() as u64;
    info_by_fd(prog_fd, &mut info)?;
    let strings = btf_strings(btf_id)?;
    let string = |off: u32| -> String {
        strings
            .get(off as usize..)
            .and_then(|s| s.split(|b| *b == 0).next())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_default()
    };
    let mut lines = Vec::with_capacity(nj as usize);
    for (i, addr) in jited.iter().enumerate() {
        let rec = &line_info[i * lrs as usize..];
        // SAFETY: `rec` holds at least one record of `line_info_rec_size`
        // bytes, which starts with `struct bpf_line_info`.
        let l: bpf_line_info = unsafe { std::ptr::read_unaligned(rec.as_ptr().cast()) };
        lines.push(Line {
            addr: *addr,
            insn_off: l.insn_off,
            file: string(l.file_name_off),
            line: l.line_col >> 10,
            text: string(l.line_off).trim().to_owned(),
        });
    }
    lines.sort_by_key(|l| l.addr);
    Ok(JitLines {
        funcs: ksyms.into_iter().zip(lens).collect(),
        lines,
    })
}

/// The string section of BTF object `id`.
fn btf_strings(id: u32) -> Result<Vec<u8>> {
    let mut attr = [0u32; 4];
    attr[0] = id;
    // SAFETY: bpf(2) with a zero-padded attr naming a BTF id.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_BTF_GET_FD_BY_ID, attr.as_mut_ptr(), 16) };
    ensure!(
        fd >= 0,
        "BPF_BTF_GET_FD_BY_ID {id}: {}",
        std::io::Error::last_os_error()
    );
    let fd = fd as RawFd;
    let result = (|| {
        // SAFETY: as for bpf_prog_info.
        let mut info: bpf_btf_info = unsafe { std::mem::zeroed() };
        info_by_fd(fd, &mut info)?;
        let mut raw = vec![0u8; info.btf_size as usize];
        // SAFETY: as above.
        let mut info: bpf_btf_info = unsafe { std::mem::zeroed() };
        info.btf = raw.as_mut_ptr() as u64;
        info.btf_size = raw.len() as u32;
        info_by_fd(fd, &mut info)?;
        // struct btf_header: magic u16, version u8, flags u8, hdr_len u32,
        // type_off, type_len, str_off, str_len (u32 each).
        let word = |at: usize| u32::from_ne_bytes(raw[at..at + 4].try_into().expect("4 bytes")) as usize;
        let (hdr_len, str_off, str_len) = (word(4), word(16), word(20));
        raw.get(hdr_len + str_off..hdr_len + str_off + str_len)
            .map(<[u8]>::to_vec)
            .context("BTF string section out of bounds")
    })();
    // SAFETY: our own descriptor.
    unsafe { libc::close(fd) };
    result
}

impl JitLines {
    /// Tab-separated, for `cargo xtask profile`: `func ADDR LEN` lines, then
    /// `line ADDR INSN FILE:LINE TEXT`.
    pub fn to_tsv(&self) -> String {
        let mut s = String::new();
        for (addr, len) in &self.funcs {
            let _ = writeln!(s, "func\t{addr:x}\t{len}");
        }
        for l in &self.lines {
            let _ = writeln!(
                s,
                "line\t{:x}\t{}\t{}:{}\t{}",
                l.addr, l.insn_off, l.file, l.line, l.text
            );
        }
        s
    }
}
