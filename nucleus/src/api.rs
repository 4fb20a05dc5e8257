//! The nucleus's implementation of `server_rt::Kernel`: what servers may ask of it. Every
//! operation is checked against the calling task (its capabilities, its server spec); the
//! supervisor-only operations check the `supervisor` flag of the caller's spec, the device
//! operations its `devices` list and its ownership of the device (`device.rs`, `dma.rs`).

use crate::user;
use crate::{call, death, inject, sched, servers};
use core::fmt;
use ipc::{CapRef, Cqe, IpcError, Sqe};
use server_rt::{
    AspaceRef, DeathNotice, DeviceClass, DeviceInfo, DeviceRef, DmaRegion, FaultKind, Kernel, MemError, MemStats, Prot,
    ServerSpec, ThreadRef,
};

pub struct NucleusApi;

pub static API: NucleusApi = NucleusApi;

fn current_spec_index() -> Option<usize> {
    sched::current_spec()
}

fn current_spec() -> Option<&'static ServerSpec> {
    servers::specs().get(current_spec_index()?)
}

fn require_supervisor() -> Result<(), IpcError> {
    match current_spec() {
        Some(s) if s.supervisor => Ok(()),
        _ => Err(IpcError::NotPermitted),
    }
}

fn require_user_memory() -> Result<(), MemError> {
    match current_spec() {
        Some(s) if s.user_memory => Ok(()),
        _ => Err(MemError::NotPermitted),
    }
}

fn server_index(name: &str) -> Option<usize> {
    servers::specs().iter().position(|s| s.name == name)
}

impl Kernel for NucleusApi {
    fn call(&self, cap: CapRef, req: &Sqe) -> Result<Cqe, IpcError> {
        inject::checkpoint();
        call::call(cap, req)
    }

    fn receive(&self) -> Result<Sqe, IpcError> {
        inject::checkpoint();
        call::receive()
    }

    fn receive_timeout(&self, ns: u64) -> Result<Option<Sqe>, IpcError> {
        inject::checkpoint();
        call::receive_timeout(ns)
    }

    fn poll_receive(&self) -> Option<Sqe> {
        inject::checkpoint();
        call::poll_receive()
    }

    fn reply_and_receive(&self, reply: &Cqe) -> Result<Sqe, IpcError> {
        inject::checkpoint();
        call::reply_and_receive(reply)
    }

    fn reply_and_receive_timeout(&self, reply: &Cqe, ns: u64) -> Result<Option<Sqe>, IpcError> {
        inject::checkpoint();
        call::reply_and_receive_timeout(reply, ns)
    }

    fn reply_and_receive_into(&self, reply: &Cqe, ns: u64, next: &mut Sqe) -> Result<bool, IpcError> {
        inject::checkpoint();
        let until = if ns == u64::MAX { u64::MAX } else { arch::timer::now_ns().saturating_add(ns) };
        call::reply_and_receive_into(reply, until, next)
    }

    fn reply(&self, reply: &Cqe) -> Result<(), IpcError> {
        inject::checkpoint();
        call::reply(reply)
    }

    fn grant_read(&self, tag: u64, offset: u64, buf: &mut [u8]) -> Result<(), IpcError> {
        inject::checkpoint();
        crate::grant::read(tag, offset, buf)
    }

    fn grant_write(&self, tag: u64, offset: u64, buf: &[u8]) -> Result<(), IpcError> {
        inject::checkpoint();
        crate::grant::write(tag, offset, buf)
    }

    fn notify(&self, cap: CapRef, bits: u64) -> Result<(), IpcError> {
        inject::checkpoint();
        call::notify(cap, bits)
    }

    fn whoami(&self) -> (usize, u32) {
        let spec = current_spec_index().unwrap_or(usize::MAX);
        (spec, if spec == usize::MAX { 0 } else { servers::instance(spec) })
    }

    fn state_size(&self) -> u64 {
        current_spec_index().map_or(0, crate::state::size)
    }

    fn state_read(&self, offset: u64, buf: &mut [u8]) -> Result<(), IpcError> {
        crate::state::read(current_spec_index().ok_or(IpcError::NoSuchCap)?, offset, buf)
    }

    fn state_commit(&self, writes: &[server_rt::StateWrite]) -> Result<(), IpcError> {
        inject::checkpoint();
        crate::state::commit(current_spec_index().ok_or(IpcError::NoSuchCap)?, writes)
    }

    fn state_to_grant(&self, tag: u64, grant_offset: u64, state_offset: u64, len: u64) -> Result<(), IpcError> {
        inject::checkpoint();
        let spec = current_spec_index().ok_or(IpcError::NoSuchCap)?;
        crate::grant::write_from_state(spec, tag, grant_offset, state_offset, len)
    }

    fn lookup(&self, name: &str) -> Result<CapRef, IpcError> {
        call::lookup(name)
    }

    fn yield_now(&self) {
        sched::yield_now()
    }

    fn sleep_ns(&self, ns: u64) {
        sched::sleep_ns(ns)
    }

    fn now_ns(&self) -> u64 {
        arch::timer::now_ns()
    }

    fn realtime_ns(&self) -> u64 {
        crate::time::realtime_ns()
    }

    fn vdso(&self) -> server_rt::Vdso {
        server_rt::Vdso { image: arch::vdso::IMAGE, data: arch::vdso::data(crate::time::realtime_offset_ns()) }
    }

    fn log(&self, args: fmt::Arguments) {
        crate::log::print(args)
    }

    fn cmdline_get(&self, key: &str) -> Option<&'static str> {
        crate::cmdline::Cmdline(crate::boot_info().cmdline()).get(key)
    }

    fn cmdline_init_args(&self) -> &'static str {
        crate::cmdline::Cmdline(crate::boot_info().cmdline()).init_args()
    }

    fn fault_self(&self, kind: FaultKind) -> ! {
        match kind {
            FaultKind::Kill => death::kill_current(server_rt::DeathCause::Killed),
            // These run in the server's context, so the fault is charged to it.
            FaultKind::BadAccess => inject::bad_access(),
            FaultKind::Panic => panic!("injected panic"),
            FaultKind::Hang => loop {
                sched::sleep_ns(u64::MAX / 2);
            },
        }
    }

    fn inject(&self, name: &str, kind: FaultKind, after_ns: u64) -> Result<(), IpcError> {
        let target = server_index(name).ok_or(IpcError::NoSuchCap)?;
        if after_ns == 0 {
            inject::fire(target, kind);
            return Ok(());
        }
        if inject::schedule(target, kind, after_ns) {
            Ok(())
        } else {
            Err(IpcError::Full)
        }
    }

    fn inject_random(&self, name: &str, period_ms: u64, seed: u64) -> Result<u64, IpcError> {
        let target = server_index(name).ok_or(IpcError::NoSuchCap)?;
        let before = inject::random_fired();
        inject::set_random(target, period_ms, seed);
        Ok(before)
    }

    fn mem_stats(&self) -> MemStats {
        let f = crate::mem::frame::stats();
        MemStats {
            frames_free: f.free,
            frames_total: f.total,
            live_tasks: servers::live_tasks(),
            live_arenas: crate::mem::arena::live(),
        }
    }

    fn set_tracing(&self, on: bool) -> bool {
        let was = crate::trace::enabled();
        crate::trace::set_enabled(on);
        was
    }

    fn tracing(&self) -> bool {
        crate::trace::enabled()
    }

    fn poweroff(&self, code: u32) -> ! {
        crate::poweroff(code)
    }

    fn device_open(&self, class: DeviceClass, nth: usize) -> Result<(DeviceRef, DeviceInfo), IpcError> {
        crate::device::open(class, nth)
    }

    fn device_close(&self, dev: DeviceRef) -> Result<(), IpcError> {
        crate::device::close(dev)
    }

    fn device_info(&self, dev: DeviceRef) -> Result<DeviceInfo, IpcError> {
        crate::device::info(dev)
    }

    fn device_mmio(&self, paddr: u64, len: u64) -> Result<u64, IpcError> {
        crate::device::mmio(paddr, len)
    }

    fn pci_config_read(&self, dev: DeviceRef, offset: u16) -> Result<u32, IpcError> {
        crate::device::config_read(dev, offset)
    }

    fn pci_config_write(&self, dev: DeviceRef, offset: u16, value: u32) -> Result<(), IpcError> {
        crate::device::config_write(dev, offset, value)
    }

    fn irq_bind(&self, dev: DeviceRef, bits: u64) -> Result<(), IpcError> {
        crate::device::irq_bind(dev, bits)
    }

    fn irq_ack(&self, dev: DeviceRef) -> Result<(), IpcError> {
        crate::device::irq_ack(dev)
    }

    fn dma_alloc(&self, pages: usize) -> Result<DmaRegion, IpcError> {
        crate::dma::alloc(pages)
    }

    fn dma_free(&self, paddr: u64) -> Result<(), IpcError> {
        crate::dma::free(paddr)
    }

    fn dma_phys(&self, vaddr: u64, len: u64) -> Result<u64, IpcError> {
        crate::dma::phys(vaddr, len)
    }

    fn aspace_create(&self) -> Result<AspaceRef, MemError> {
        require_user_memory()?;
        user::aspace_create()
    }

    fn aspace_destroy(&self, a: AspaceRef) -> Result<(), MemError> {
        require_user_memory()?;
        user::aspace_destroy(a)
    }

    fn aspace_map(&self, a: AspaceRef, va: u64, len: u64, prot: Prot) -> Result<(), MemError> {
        require_user_memory()?;
        user::aspace_map(a, va, len, prot)
    }

    fn aspace_unmap(&self, a: AspaceRef, va: u64, len: u64) -> Result<(), MemError> {
        require_user_memory()?;
        user::aspace_unmap(a, va, len)
    }

    fn aspace_protect(&self, a: AspaceRef, va: u64, len: u64, prot: Prot) -> Result<(), MemError> {
        require_user_memory()?;
        user::aspace_protect(a, va, len, prot)
    }

    fn aspace_read(&self, a: AspaceRef, va: u64, buf: &mut [u8]) -> Result<(), MemError> {
        require_user_memory()?;
        user::aspace_read(a, va, buf)
    }

    fn aspace_write(&self, a: AspaceRef, va: u64, buf: &[u8]) -> Result<(), MemError> {
        require_user_memory()?;
        user::aspace_write(a, va, buf)
    }

    fn aspace_copy(&self, a: AspaceRef, shared: &[(u64, u64)]) -> Result<AspaceRef, MemError> {
        require_user_memory()?;
        user::aspace_copy(a, shared)
    }

    fn aspace_move(&self, a: AspaceRef, from: u64, to: u64, len: u64) -> Result<(), MemError> {
        require_user_memory()?;
        user::aspace_move(a, from, to, len)
    }

    fn aspace_resident(&self, a: AspaceRef, va: u64, out: &mut [u8]) -> Result<(), MemError> {
        require_user_memory()?;
        user::aspace_resident(a, va, out)
    }

    fn aspace_query(&self, a: AspaceRef, va: u64) -> Option<Prot> {
        require_user_memory().ok()?;
        user::aspace_query(a, va)
    }

    fn thread_of(&self, tag: u64) -> ThreadRef {
        user::thread_of(tag)
    }

    fn thread_start(&self, a: AspaceRef, pc: u64, sp: u64) -> Result<ThreadRef, MemError> {
        require_user_memory()?;
        user::thread_start(a, pc, sp)
    }

    fn thread_fork(&self, tag: u64, a: AspaceRef, sp: Option<u64>, tp: Option<u64>) -> Result<ThreadRef, MemError> {
        require_user_memory()?;
        user::thread_fork(tag, a, sp, tp)
    }

    fn thread_exec(&self, tag: u64, a: AspaceRef, pc: u64, sp: u64) -> Result<(), MemError> {
        require_user_memory()?;
        user::thread_exec(tag, a, pc, sp)
    }

    fn thread_set_tp(&self, t: ThreadRef, tp: u64) -> Result<(), MemError> {
        require_user_memory()?;
        user::thread_set_tp(t, tp)
    }

    fn thread_regs(&self, tag: u64) -> Result<[u64; server_rt::USER_REGS], MemError> {
        require_user_memory()?;
        user::thread_regs(tag)
    }

    fn thread_set_regs(&self, tag: u64, regs: &[u64; server_rt::USER_REGS]) -> Result<(), MemError> {
        require_user_memory()?;
        user::thread_set_regs(tag, regs)
    }

    fn thread_kill(&self, t: ThreadRef) {
        if require_user_memory().is_ok() {
            user::thread_kill(t)
        }
    }

    fn thread_interrupt(&self, t: ThreadRef) {
        if require_user_memory().is_ok() {
            user::thread_interrupt(t)
        }
    }

    fn thread_yield(&self, t: ThreadRef) {
        if require_user_memory().is_ok() {
            user::thread_yield(t)
        }
    }

    fn thread_publish(&self, t: ThreadRef, nr: u32, value: Option<u32>) -> Result<(), MemError> {
        require_user_memory()?;
        user::thread_publish(t, nr, value)
    }

    fn thread_publish_clock(
        &self,
        t: ThreadRef,
        nr: u32,
        clocks: Option<server_rt::ClockCall>,
    ) -> Result<(), MemError> {
        require_user_memory()?;
        user::thread_publish_clock(t, nr, clocks)
    }

    fn thread_fpu(&self, tag: u64, buf: &mut [u8]) -> Result<usize, MemError> {
        require_user_memory()?;
        user::thread_fpu(tag, buf)
    }

    fn thread_set_fpu(&self, tag: u64, buf: &[u8]) -> Result<(), MemError> {
        require_user_memory()?;
        user::thread_set_fpu(tag, buf)
    }

    fn thread_times(&self, t: ThreadRef) -> (u64, u64) {
        if require_user_memory().is_err() {
            return (0, 0);
        }
        user::thread_times(t)
    }

    fn console_write(&self, bytes: &[u8]) {
        arch::cpu::without_interrupts(|| arch::console::write_bytes(bytes))
    }

    fn console_read(&self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            match arch::console::read_byte() {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    fn initrd(&self) -> &'static [u8] {
        crate::initrd::bytes(crate::boot_info())
    }

    fn servers(&self) -> &'static [ServerSpec] {
        servers::specs()
    }

    fn wait_death(&self) -> Result<DeathNotice, IpcError> {
        require_supervisor()?;
        arch::cpu::without_interrupts(|| loop {
            let mut st = sched::lock();
            if let Some(n) = death::take_notice(&mut st) {
                return Ok(n);
            }
            sched::block_current(st, crate::task::TaskState::BlockedDeath);
        })
    }

    fn spawn(&self, server: usize) -> Result<u32, IpcError> {
        require_supervisor()?;
        servers::spawn(server)
    }

    fn server_info(&self, server: usize) -> Option<server_rt::ServerInfo> {
        servers::info(server)
    }

    fn server_state(&self, server: usize) -> Option<(u32, bool)> {
        servers::state(server)
    }

    fn state_discard(&self, server: usize) -> Result<(), IpcError> {
        require_supervisor()?;
        crate::state::discard(server);
        Ok(())
    }
}
