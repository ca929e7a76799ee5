//! bpf-linker does the final code generation. By default LLVM's BPF backend
//! assumes memory must be accessed aligned and splits every unaligned load
//! (`read_unaligned::<u64>` on packet data) into byte loads, shifts and ors —
//! eight times the instructions on the checksum path and a stack full of
//! spills. The kernel allows unaligned packet access on architectures with
//! efficient unaligned access (x86-64, arm64), so let LLVM emit it.
fn main() {
    println!("cargo:rustc-link-arg=--cpu-features=+allows-misaligned-mem-access");
}
