//! Builds the vDSO (`vdso/vdso.c`, laid out by `vdso/vdso.lds`) for the target architecture
//! with the C compiler that `qemu/setup.sh` installs (`gcc`, `aarch64-linux-gnu-gcc`), into
//! `$OUT_DIR/vdso.so`, which `arch::vdso::IMAGE` includes. The vDSO is user-mode code, so it is
//! built like the guest's C programs; its exported names and versions are Linux's.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let (cc, version, names): (&str, &str, &[&str]) = if target.starts_with("x86_64") {
        (
            "gcc",
            "LINUX_2.6",
            &[
                "clock_gettime",
                "__vdso_clock_gettime",
                "gettimeofday",
                "__vdso_gettimeofday",
                "clock_getres",
                "__vdso_clock_getres",
                "time",
                "__vdso_time",
                "getcpu",
                "__vdso_getcpu",
            ],
        )
    } else if target.starts_with("aarch64") {
        (
            "aarch64-linux-gnu-gcc",
            "LINUX_2.6.39",
            &["__kernel_clock_gettime", "__kernel_gettimeofday", "__kernel_clock_getres"],
        )
    } else {
        panic!("arch: no vDSO for target {target}");
    };
    println!("cargo:rerun-if-changed=vdso/vdso.c");
    println!("cargo:rerun-if-changed=vdso/vdso.lds");
    println!("cargo:rerun-if-changed=build.rs");
    let script = out.join("vdso.ver");
    let globals: String = names.iter().map(|n| format!("{n}; ")).collect();
    std::fs::write(&script, format!("{version} {{\n    global: {globals}\n    local: *;\n}};\n"))
        .expect("write vdso.ver");
    let so = out.join("vdso.so");
    let status = Command::new(cc)
        .args([
            "-O2",
            "-fPIC",
            "-shared",
            "-nostdlib",
            "-ffreestanding",
            "-fno-stack-protector",
            "-fno-asynchronous-unwind-tables",
            "-fno-unwind-tables",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wl,-T,vdso/vdso.lds",
            "-Wl,-soname=linux-vdso.so.1",
            "-Wl,--hash-style=both",
            "-Wl,-z,max-page-size=4096",
            "-Wl,--no-undefined",
            "-Wl,-Bsymbolic",
            "-Wl,--build-id=none",
            "-Wl,-s",
        ])
        .arg(format!("-Wl,--version-script={}", script.display()))
        .arg("-o")
        .arg(&so)
        .arg("vdso/vdso.c")
        .status()
        .unwrap_or_else(|e| panic!("arch: cannot run {cc} to build the vDSO ({e}); `bash qemu/setup.sh` installs it"));
    assert!(status.success(), "arch: {cc} failed to build the vDSO");
}
