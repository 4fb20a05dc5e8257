//! The QEMU command lines against real QEMU, without the real kernel: tiny stand-in kernels
//! (built here, byte by byte) print a banner and `@@POWEROFF 3` on the first serial port and
//! power off the way the contract says (isa-debug-exit on x86_64, semihosting SYS_EXIT on
//! AArch64). This checks that QEMU accepts the PVH ELF / Linux `Image` and the initrd, that the
//! console is on stdio, and the exit-status mapping. Skipped, with a note, when the QEMU for an
//! architecture is not installed.

use harness::qemu::{Arch, QemuConfig};
use harness::runner::{End, Guest, Options};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const CODE: u8 = 3;

fn have(program: &str) -> bool {
    Command::new(program).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// An x86_64 ELF with a PVH entry note. The 32-bit entry code (flat protected mode, paging off):
/// ```text
///     mov  esi, msg          ; be <imm32>
///     mov  dx, 0x3f8         ; 66 ba f8 03     COM1
/// 1:  lodsb                  ; ac
///     test al, al            ; 84 c0
///     jz   2f                ; 74 03
///     out  dx, al            ; ee
///     jmp  1b                ; eb f8
/// 2:  mov  eax, CODE         ; b8 <imm32>
///     out  0xf4, eax         ; e7 f4           isa-debug-exit: QEMU exits (CODE << 1) | 1
/// 3:  hlt                    ; f4
///     jmp  3b                ; eb fd
/// msg: "...", 0
/// ```
fn pvh_elf(msg: &str) -> Vec<u8> {
    const LOAD: u32 = 0x10_0000;
    const CODE_OFF: u64 = 0x1000;
    let mut code = vec![0xbe];
    code.extend_from_slice(&(LOAD + 27).to_le_bytes());
    code.extend_from_slice(&[0x66, 0xba, 0xf8, 0x03, 0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8, 0xb8]);
    code.extend_from_slice(&u32::from(CODE).to_le_bytes());
    code.extend_from_slice(&[0xe7, 0xf4, 0xf4, 0xeb, 0xfd]);
    assert_eq!(code.len(), 27);
    code.extend_from_slice(msg.as_bytes());
    code.push(0);

    let mut e = Vec::new();
    let u16le = |e: &mut Vec<u8>, v: u16| e.extend_from_slice(&v.to_le_bytes());
    let u32le = |e: &mut Vec<u8>, v: u32| e.extend_from_slice(&v.to_le_bytes());
    let u64le = |e: &mut Vec<u8>, v: u64| e.extend_from_slice(&v.to_le_bytes());
    // ELF header.
    e.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    u16le(&mut e, 2); // ET_EXEC
    u16le(&mut e, 62); // EM_X86_64
    u32le(&mut e, 1);
    u64le(&mut e, LOAD.into()); // entry (unused: PVH)
    u64le(&mut e, 64); // phoff
    u64le(&mut e, 0); // shoff
    u32le(&mut e, 0); // flags
    u16le(&mut e, 64); // ehsize
    u16le(&mut e, 56); // phentsize
    u16le(&mut e, 2); // phnum
    u16le(&mut e, 64); // shentsize
    u16le(&mut e, 0); // shnum
    u16le(&mut e, 0); // shstrndx
    let note_off = 64 + 2 * 56;
    let note_len = 12 + 4 + 8;
    // PT_LOAD, RWX.
    u32le(&mut e, 1);
    u32le(&mut e, 7);
    u64le(&mut e, CODE_OFF);
    u64le(&mut e, LOAD.into());
    u64le(&mut e, LOAD.into());
    u64le(&mut e, code.len() as u64);
    u64le(&mut e, code.len() as u64);
    u64le(&mut e, 0x1000);
    // PT_NOTE.
    u32le(&mut e, 4);
    u32le(&mut e, 4);
    u64le(&mut e, note_off);
    u64le(&mut e, 0);
    u64le(&mut e, 0);
    u64le(&mut e, note_len);
    u64le(&mut e, note_len);
    u64le(&mut e, 4);
    // The note: "Xen", XEN_ELFNOTE_PHYS32_ENTRY (18), the 32-bit entry point.
    u32le(&mut e, 4);
    u32le(&mut e, 8);
    u32le(&mut e, 18);
    e.extend_from_slice(b"Xen\0");
    u64le(&mut e, LOAD.into());
    e.resize(CODE_OFF as usize, 0);
    e.extend_from_slice(&code);
    e
}

/// An AArch64 Linux `Image` (64-byte header, position-independent code at EL1):
/// ```text
///     b     real                      // 10 00 00 14   (header: code0)
///     ...   header: text_offset 0, image_size 0, flags 0, "ARM\x64" at 56
/// real:
///     movz  x1, #0x0900, lsl #16      // PL011 data register on `virt`
///     adr   x2, msg
/// 1:  ldrb  w3, [x2], #1
///     cbz   w3, 2f
///     strb  w3, [x1]
///     b     1b
/// 2:  mov   x0, #0x18                 // SYS_EXIT
///     adr   x1, block                 // { ADP_Stopped_ApplicationExit, CODE }
///     hlt   #0xf000                   // semihosting: QEMU exits with CODE
/// 3:  wfi
///     b     3b
///     nop
/// block: .quad 0x20026, CODE          // at 0x70
/// msg:   .asciz "..."                 // at 0x80
/// ```
fn arm64_image(msg: &str) -> Vec<u8> {
    let mut i = vec![0u8; 64];
    i[..4].copy_from_slice(&0x1400_0010u32.to_le_bytes());
    i[56..60].copy_from_slice(b"ARM\x64");
    for w in [
        0xd2a1_2001u32,
        0x1000_01e2,
        0x3840_1443,
        0x3400_0063,
        0x3900_0023,
        0x17ff_fffd,
        0xd280_0300,
        0x1000_00a1,
        0xd45e_0000,
        0xd503_207f,
        0x17ff_ffff,
        0xd503_201f,
    ] {
        i.extend_from_slice(&w.to_le_bytes());
    }
    assert_eq!(i.len(), 0x70);
    i.extend_from_slice(&0x20026u64.to_le_bytes());
    i.extend_from_slice(&u64::from(CODE).to_le_bytes());
    i.extend_from_slice(msg.as_bytes());
    i.push(0);
    i.resize(i.len().next_multiple_of(8), 0);
    i
}

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("cairn-smoke-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stand_in(arch: Arch, dir: &Path) -> Option<(PathBuf, PathBuf)> {
    if !have(arch.qemu_program()) {
        eprintln!("note: {} is not installed; skipping the QEMU smoke test for {arch}", arch.qemu_program());
        return None;
    }
    let msg = format!("Cairn stand-in ({arch})\r\n@@POWEROFF {CODE}\r\n");
    let kernel = dir.join("kernel");
    let image = match arch {
        Arch::X86_64 => pvh_elf(&msg),
        Arch::Aarch64 => arm64_image(&msg),
    };
    std::fs::write(&kernel, image).unwrap();
    let initrd = dir.join("initrd.cpio");
    let mut t = qemu_tools::cpio::Tree::new();
    t.add_file("etc/hello.txt", "hello from the host\n", 0o644).unwrap();
    t.write_file(&initrd).unwrap();
    Some((kernel, initrd))
}

fn boot(arch: Arch) {
    let dir = Dir::new(arch.name());
    let Some((kernel, initrd)) = stand_in(arch, &dir.0) else { return };
    let mut q = QemuConfig::new(arch, kernel);
    q.initrd = Some(initrd);
    q.append = "test=smoke".into();
    let mut g = Guest::spawn(q.command(), Options::default()).unwrap();
    let out = g.wait(Some(Duration::from_secs(120)), Duration::from_secs(10));
    let ctx = format!("{}\n{}\n{}", q.display(), out.transcript, out.stderr);
    assert_eq!(out.end, End::Exited, "{ctx}");
    assert!(out.transcript.contains(&format!("Cairn stand-in ({arch})\r\n")), "{ctx}");
    assert_eq!(out.poweroff, Some(CODE.into()), "{ctx}");
    let qemu_status = match arch {
        Arch::X86_64 => (i32::from(CODE) << 1) | 1,
        Arch::Aarch64 => CODE.into(),
    };
    assert_eq!(out.status.and_then(|s| s.code()), Some(qemu_status), "{ctx}");
}

fn run_binary(arch: Arch) {
    let dir = Dir::new(&format!("run-{arch}"));
    let Some((kernel, initrd)) = stand_in(arch, &dir.0) else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_run"))
        .args(["--arch", arch.name(), "--kernel"])
        .arg(&kernel)
        .arg("--initrd")
        .arg(&initrd)
        .args(["--timeout", "120"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(CODE.into()), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.ends_with(&format!("@@POWEROFF {CODE}\r\n")), "{stdout}");
}

#[test]
fn x86_64_stand_in_kernel_boots_and_powers_off() {
    boot(Arch::X86_64);
}

#[test]
fn aarch64_stand_in_kernel_boots_and_powers_off() {
    boot(Arch::Aarch64);
}

#[test]
fn run_binary_with_stand_in_kernels() {
    run_binary(Arch::X86_64);
    run_binary(Arch::Aarch64);
}
