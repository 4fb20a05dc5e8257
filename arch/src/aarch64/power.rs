//! Leaving the machine. First semihosting `SYS_EXIT` (QEMU runs with `-semihosting-config
//! enable=on,target=native` and then exits with status `code`); without semihosting the `hlt`
//! is an undefined instruction, which the trap code skips (see [`is_probe_instruction`]), and
//! we fall back to PSCI `SYSTEM_OFF` through the conduit the DTB names (`hvc` by default), then
//! to halting. The `@@POWEROFF <code>` line the nucleus prints first is the authoritative code.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU8, Ordering};

/// How PSCI calls reach the firmware (the `/psci` node's `method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciConduit {
    None = 0,
    Hvc = 1,
    Smc = 2,
}

static CONDUIT: AtomicU8 = AtomicU8::new(PsciConduit::Hvc as u8);

pub fn set_psci_conduit(c: PsciConduit) {
    CONDUIT.store(c as u8, Ordering::Relaxed);
}

const SYS_EXIT: u64 = 0x18;
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;
const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;

global_asm!(
    r#"
    .section .text.arch_power, "ax"
    .global arch_semihost_call
arch_semihost_call:
    .global arch_semihost_insn
arch_semihost_insn:
    hlt #0xf000
    ret
    .global arch_psci_hvc
arch_psci_hvc:
    hvc #0
    ret
    .global arch_psci_smc
arch_psci_smc:
    smc #0
    ret
"#
);

extern "C" {
    fn arch_semihost_call(op: u64, arg: u64) -> u64;
    fn arch_psci_hvc(fid: u64) -> u64;
    fn arch_psci_smc(fid: u64) -> u64;
    static arch_semihost_insn: u8;
}

/// Whether `pc` is one of the instructions that may be undefined on this machine (semihosting
/// `hlt`, PSCI `hvc`/`smc`): the trap code skips them instead of reporting a fault.
pub(crate) fn is_probe_instruction(pc: u64) -> bool {
    let semihost = core::ptr::addr_of!(arch_semihost_insn) as u64;
    pc == semihost || pc == arch_psci_hvc as *const () as u64 || pc == arch_psci_smc as *const () as u64
}

pub fn poweroff(code: u32) -> ! {
    super::cpu::disable_interrupts();
    let block = [ADP_STOPPED_APPLICATION_EXIT, code as u64];
    // SAFETY: SYS_EXIT reads the two-word parameter block and never returns when semihosting
    // is on; otherwise the `hlt` traps as undefined and is skipped.
    unsafe { arch_semihost_call(SYS_EXIT, block.as_ptr() as u64) };
    // SAFETY: PSCI SYSTEM_OFF does not return; an absent conduit traps and is skipped.
    unsafe {
        match CONDUIT.load(Ordering::Relaxed) {
            1 => {
                arch_psci_hvc(PSCI_SYSTEM_OFF);
            }
            2 => {
                arch_psci_smc(PSCI_SYSTEM_OFF);
            }
            _ => {}
        }
    }
    super::cpu::halt_forever()
}
