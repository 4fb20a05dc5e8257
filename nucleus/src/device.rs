//! Devices: the table of devices found at boot, who drives each one, and their interrupt lines.
//!
//! At boot [`init`] asks the arch layer to find the interrupt controllers and the devices (PCI
//! functions on x86_64, virtio-mmio transports on AArch64), maps every register window of each
//! into the device area of the kernel half (uncached / Device-nGnRE, permanently), finds how to
//! reset it (a virtio PCI function's `device_status` through its common-configuration
//! capability; a virtio-mmio transport's `Status` register) and resets it, since the firmware
//! may have been using it: no device does anything until a driver opens it. Entry 0 is always
//! the console UART, for its receive interrupt. A device the arch layer takes as the trace port
//! (`arch::console::trace_port_offer`: the first virtio console) stays out of
//! the table: the nucleus drives it, and no server can open it.
//!
//! A server whose spec lists a device class opens one device of it ([`open`]); a device has at
//! most one owner, a live task. The owner may bind the device's interrupt line to notification
//! bits: when the line fires, the arch trap path has already masked it; [`on_irq`] marks every
//! driver bound to that line as owing an acknowledgement and the trap hook sets their bits
//! (waking them). [`ack`] unmasks the line once no driver sharing it owes one. A driver that
//! never acknowledges only keeps its own line quiet.
//!
//! Death ([`on_death`], called by `death::kill` under the scheduler lock, before the reaper can
//! free anything of the task): every device the task owned has its line masked and unbound, is
//! reset — a virtio reset stops the device's queues (QEMU completes or cancels in-flight I/O
//! before the reset returns) and a PCI function also loses bus mastering — and is released.
//! Only after that does the reaper free the task's DMA regions and arena, so a device can never
//! write into memory that has been handed to someone else.
//!
//! Locking: the table lock is taken with interrupts masked, and may be taken while holding the
//! scheduler lock, never the other way round (the interrupt path copies what it needs out of
//! the table before it takes the scheduler lock). Must not: trust a server's numbers (every
//! device, offset and range is checked against the caller's ownership), or move a BAR.

use crate::sched;
use crate::task::TaskId;
use arch::devinfo::{pci, MAX_DEVICE_REGIONS};
use arch::mm::{DEVICE_AREA_BASE, DEVICE_AREA_SIZE, PAGE_SIZE};
use arch::{BootInfo, Bus, FoundDevice, IrqLine};
use ipc::IpcError;
use server_rt::{DeviceBus, DeviceClass, DeviceInfo, DeviceRef};
use spin::Mutex;

pub const MAX_DEVICES: usize = 16;
/// Larger register windows are not mapped (virtio's are a few pages).
const MAX_WINDOW: u64 = 16 << 20;
/// Bounded wait for a device to report that a reset completed.
const RESET_SPINS: u32 = 100_000;

/// How to stop a device.
#[derive(Clone, Copy, Debug)]
enum Reset {
    Console,
    /// Write 0 to the common configuration's `device_status` byte (at this address), then
    /// clear bus mastering.
    VirtioPci {
        status: u64,
    },
    /// Write 0 to the transport's `Status` register (at this address).
    VirtioMmio {
        status: u64,
    },
    /// Nothing known: only bus mastering is cleared (PCI).
    Unknown,
}

#[derive(Clone, Copy, Debug)]
struct Device {
    class: DeviceClass,
    /// What the arch layer found (`None` for the console).
    found: Option<FoundDevice>,
    /// Mapped address of each region (0 = not mapped).
    va: [u64; MAX_DEVICE_REGIONS],
    /// PCI BAR and ROM registers as the firmware left them (the write filter's allowed values).
    bars: [u32; 7],
    reset: Reset,
    irq: Option<IrqLine>,
    owner: Option<TaskId>,
    /// Notification bits of the bound line (0 = not bound).
    bits: u64,
    /// An interrupt was delivered and not yet acknowledged.
    owes_ack: bool,
    irq_count: u64,
}

struct Table {
    devices: [Option<Device>; MAX_DEVICES],
    /// Next free address of the device area.
    next_va: u64,
    /// Interrupts on lines no driver was bound to (left masked).
    unclaimed: u64,
}

static TABLE: Mutex<Table> =
    Mutex::new(Table { devices: [None; MAX_DEVICES], next_va: DEVICE_AREA_BASE, unclaimed: 0 });

fn lock<R>(f: impl FnOnce(&mut Table) -> R) -> R {
    arch::cpu::without_interrupts(|| f(&mut TABLE.lock()))
}

/// Maps `[pa, pa + len)` into the device area; the mapped address of `pa`.
fn map_window(t: &mut Table, pa: u64, len: u64) -> Option<u64> {
    if len == 0 || len > MAX_WINDOW {
        return None;
    }
    let first = pa & !(PAGE_SIZE - 1);
    let pages = (pa + len).next_multiple_of(PAGE_SIZE).checked_sub(first)? / PAGE_SIZE;
    let va = t.next_va;
    // One unmapped page after each window.
    let end = va + (pages + 1) * PAGE_SIZE;
    if end > DEVICE_AREA_BASE + DEVICE_AREA_SIZE {
        return None;
    }
    for p in 0..pages {
        let r = arch::mm::map_device_page(
            va + p * PAGE_SIZE,
            first + p * PAGE_SIZE,
            &mut crate::mem::frame::alloc_zeroed_page,
        );
        if r.is_err() {
            return None;
        }
    }
    t.next_va = end;
    Some(va + (pa - first))
}

/// The address of a virtio PCI function's `device_status`, from its common-configuration
/// capability (virtio 1.x §4.1.4.3).
fn virtio_pci_status(bus: Bus, d: &FoundDevice, va: &[u64; MAX_DEVICE_REGIONS]) -> Option<u64> {
    let cap = arch::devinfo::virtio_pci_cap(bus, |c| c.cfg_type == 1)?;
    let (_, len) = *d.regions.get(cap.bar)?;
    (va[cap.bar] != 0 && cap.offset + 0x15 <= len).then(|| va[cap.bar] + cap.offset + 0x14)
}

fn describe(d: &FoundDevice) -> &'static str {
    match d.virtio_type {
        1 => "virtio-net",
        2 => "virtio-blk",
        3 => "virtio-console",
        4 => "virtio-rng",
        _ => "virtio device",
    }
}

/// Finds the interrupt controllers and the devices, and maps the devices' registers.
pub fn init(info: &BootInfo) {
    let routing = arch::dev::init(info);
    crate::kprintln!(
        "interrupts: {} ({} controller(s), {} source override(s))",
        routing.source,
        routing.controllers,
        routing.overrides
    );
    lock(|t| {
        t.devices[0] = Some(Device {
            class: DeviceClass::Console,
            found: None,
            va: [0; MAX_DEVICE_REGIONS],
            bars: [0; 7],
            reset: Reset::Console,
            irq: arch::dev::console_irq(),
            owner: None,
            bits: 0,
            owes_ack: false,
            irq_count: 0,
        });
    });
    arch::dev::discover(info, &mut |d: FoundDevice| {
        if d.virtio_type == 0 {
            return;
        }
        lock(|t| {
            let Some(slot) = t.devices.iter().position(|x| x.is_none()) else {
                crate::kprintln!("devices: table full, ignoring a {}", describe(&d));
                return;
            };
            let mut va = [0u64; MAX_DEVICE_REGIONS];
            for (i, &(pa, len)) in d.regions.iter().enumerate() {
                if len != 0 {
                    va[i] = map_window(t, pa, len).unwrap_or(0);
                }
            }
            // The nucleus's own trace port (the first virtio console) is not a
            // device any server may open: tracing must outlive every server.
            let mut frames = |n: usize| crate::mem::frame::alloc(n, 1).map(|r| r.start);
            if arch::console::trace_port_offer(&d, &va, &mut frames) {
                crate::kprintln!("device -: {} (type {}) taken as the trace port", describe(&d), d.virtio_type);
                return;
            }
            let mut bars = [0u32; 7];
            let reset = match d.bus {
                Bus::Pci { .. } => {
                    for (i, b) in bars.iter_mut().enumerate() {
                        let off = if i < 6 { pci::BAR0 + 4 * i as u16 } else { pci::ROM };
                        *b = arch::dev::config_read(d.bus, off);
                    }
                    virtio_pci_status(d.bus, &d, &va).map_or(Reset::Unknown, |status| Reset::VirtioPci { status })
                }
                Bus::Mmio if va[0] != 0 => Reset::VirtioMmio { status: va[0] + 0x70 },
                Bus::Mmio => Reset::Unknown,
            };
            let class = DeviceClass::Virtio(d.virtio_type);
            let dev = Device {
                class,
                found: Some(d),
                va,
                bars,
                reset,
                irq: d.irq,
                owner: None,
                bits: 0,
                owes_ack: false,
                irq_count: 0,
            };
            // The firmware may have used it (SeaBIOS drives virtio-blk to boot from it): quiet
            // until a driver opens it.
            self::reset(&dev);
            t.devices[slot] = Some(dev);
            print_device(slot, &d);
        });
    });
}

fn print_device(slot: usize, d: &FoundDevice) {
    use core::fmt::Write;
    let mut line = crate::log::Line::new();
    let _ = match d.bus {
        Bus::Pci { bus, device, function } => write!(line, "pci {bus:02x}:{device:02x}.{function}"),
        Bus::Mmio => write!(line, "mmio"),
    };
    for &(pa, len) in d.regions.iter().filter(|r| r.1 != 0) {
        let _ = write!(line, " [{pa:#x}+{len:#x}]");
    }
    match d.irq {
        Some(i) => {
            let how = (if i.level { "level" } else { "edge" }, if i.active_low { "low" } else { "high" });
            let _ = write!(line, " irq {} ({}, {})", i.number, how.0, how.1);
        }
        None => {
            let _ = write!(line, " no irq");
        }
    }
    crate::kprintln!("device {slot}: {} (type {}) {}", describe(d), d.virtio_type, line.as_str());
}

/// Whether a device of `class` exists.
pub fn exists(class: DeviceClass) -> bool {
    lock(|t| t.devices.iter().flatten().any(|d| d.class == class))
}

/// The running task and its server-table index.
fn current() -> (TaskId, Option<usize>) {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let cur = sched::current();
        let t = st.task(cur);
        (t.id, t.spec)
    })
}

fn info_of(d: &Device) -> DeviceInfo {
    let bus = match d.found.map(|f| f.bus) {
        None => DeviceBus::Console,
        Some(Bus::Pci { bus, device, function }) => DeviceBus::Pci { bus, device, function },
        Some(Bus::Mmio) => DeviceBus::Mmio,
    };
    DeviceInfo {
        class: d.class,
        bus,
        regions: d.found.map_or([(0, 0); MAX_DEVICE_REGIONS], |f| f.regions),
        has_irq: d.irq.is_some(),
        irq_count: d.irq_count,
    }
}

/// Opens the `nth` device of `class` for the running server.
pub fn open(class: DeviceClass, nth: usize) -> Result<(DeviceRef, DeviceInfo), IpcError> {
    arch::cpu::without_interrupts(|| {
        let (me, spec) = current();
        let spec = spec.and_then(|s| crate::servers::specs().get(s)).ok_or(IpcError::NotPermitted)?;
        if !spec.devices.contains(&class) {
            return Err(IpcError::NotPermitted);
        }
        lock(|t| {
            let (slot, d) = t
                .devices
                .iter_mut()
                .enumerate()
                .filter_map(|(i, d)| d.as_mut().map(|d| (i, d)))
                .filter(|(_, d)| d.class == class)
                .nth(nth)
                .ok_or(IpcError::NoSuchCap)?;
            match d.owner {
                Some(o) if o != me => return Err(IpcError::Busy),
                _ => d.owner = Some(me),
            }
            if let Some(f @ FoundDevice { bus: Bus::Pci { .. }, .. }) = d.found {
                let cmd = arch::dev::config_read(f.bus, pci::STATUS_COMMAND) & 0xffff;
                let cmd = (cmd | pci::CMD_MEMORY | pci::CMD_BUS_MASTER) & !pci::CMD_INTX_DISABLE;
                arch::dev::config_write(f.bus, pci::STATUS_COMMAND, cmd);
            }
            Ok((DeviceRef(slot as u32), info_of(d)))
        })
    })
}

/// Runs `f` on device `dev` if the running task owns it.
fn with_owned<R>(dev: DeviceRef, f: impl FnOnce(&mut Table, usize) -> Result<R, IpcError>) -> Result<R, IpcError> {
    arch::cpu::without_interrupts(|| {
        let (me, _) = current();
        lock(|t| {
            let i = dev.0 as usize;
            match t.devices.get(i).and_then(|d| d.as_ref()) {
                Some(d) if d.owner == Some(me) => f(t, i),
                Some(_) => Err(IpcError::NotPermitted),
                None => Err(IpcError::NoSuchCap),
            }
        })
    })
}

fn dev(t: &mut Table, i: usize) -> &mut Device {
    t.devices[i].as_mut().expect("checked device slot")
}

pub fn info(dev_ref: DeviceRef) -> Result<DeviceInfo, IpcError> {
    with_owned(dev_ref, |t, i| Ok(info_of(dev(t, i))))
}

/// Unmasks `line` unless a driver bound to it still owes an acknowledgement (or none is bound).
fn unmask_if_serviced(t: &Table, line: u32) {
    let on_line = || t.devices.iter().flatten().filter(|d| d.bits != 0 && d.irq.is_some_and(|l| l.number == line));
    if on_line().next().is_some() && !on_line().any(|d| d.owes_ack) {
        arch::dev::irq_unmask(line);
    }
}

/// Unbinds, resets and releases device `i`.
fn release(t: &mut Table, i: usize) {
    let d = dev(t, i);
    let line = d.irq.filter(|_| d.bits != 0).map(|l| l.number);
    d.bits = 0;
    d.owes_ack = false;
    d.owner = None;
    let d = *d;
    if let Some(line) = line {
        let shared = t.devices.iter().flatten().any(|x| x.bits != 0 && x.irq.is_some_and(|l| l.number == line));
        if shared {
            unmask_if_serviced(t, line);
        } else {
            arch::dev::irq_mask(line);
        }
    }
    restore_bars(&d);
    reset(&d);
}

/// Writes a PCI function's BAR and ROM registers back as the firmware left them. A driver
/// killed between sizing a BAR (all ones written, the size mask read back) and restoring it
/// leaves the function decoding at the mask: the reset below would miss its registers, and
/// every later driver would read the mask as the address and be refused its window (seen as
/// a `blk` crash loop in `kill-blk-from-host`). First, so that the reset reaches the device.
fn restore_bars(d: &Device) {
    let Ok(bus) = pci_bus(d) else { return };
    for (b, &value) in d.bars.iter().enumerate().take(6) {
        arch::dev::config_write(bus, pci::BAR0 + 4 * b as u16, value);
    }
    arch::dev::config_write(bus, pci::ROM, d.bars[6]);
}

/// Stops device `d` from doing anything more (interrupts, DMA).
fn reset(d: &Device) {
    match d.reset {
        Reset::Console => arch::console::disable_rx_interrupt(),
        Reset::VirtioPci { status } => {
            // SAFETY: `status` is the `device_status` byte of this function's common
            // configuration, inside a window mapped uncached at boot for good.
            unsafe {
                (status as *mut u8).write_volatile(0);
                for _ in 0..RESET_SPINS {
                    if (status as *const u8).read_volatile() == 0 {
                        break;
                    }
                }
            }
        }
        Reset::VirtioMmio { status } => {
            // SAFETY: `status` is the `Status` register of this virtio-mmio transport, inside a
            // window mapped as device memory at boot for good.
            unsafe {
                (status as *mut u32).write_volatile(0);
                for _ in 0..RESET_SPINS {
                    if (status as *const u32).read_volatile() == 0 {
                        break;
                    }
                }
            }
        }
        Reset::Unknown => {}
    }
    if let Some(f @ FoundDevice { bus: Bus::Pci { .. }, .. }) = d.found {
        let cmd = arch::dev::config_read(f.bus, pci::STATUS_COMMAND) & 0xffff;
        arch::dev::config_write(f.bus, pci::STATUS_COMMAND, cmd & !pci::CMD_BUS_MASTER);
    }
}

pub fn close(dev_ref: DeviceRef) -> Result<(), IpcError> {
    with_owned(dev_ref, |t, i| {
        release(t, i);
        Ok(())
    })
}

/// Releases every device task `id` owned (it is dying): masked, unbound, reset.
pub fn on_death(id: TaskId) {
    lock(|t| {
        for i in 0..MAX_DEVICES {
            if t.devices[i].is_some_and(|d| d.owner == Some(id)) {
                release(t, i);
            }
        }
    })
}

/// The mapped address of `[paddr, paddr + len)`, inside a window of a device the running task
/// owns.
pub fn mmio(paddr: u64, len: u64) -> Result<u64, IpcError> {
    let end = paddr.checked_add(len).ok_or(IpcError::BadGrant)?;
    arch::cpu::without_interrupts(|| {
        let (me, _) = current();
        lock(|t| {
            for d in t.devices.iter().flatten().filter(|d| d.owner == Some(me)) {
                let Some(f) = d.found else { continue };
                for (i, &(start, rlen)) in f.regions.iter().enumerate() {
                    if d.va[i] != 0 && paddr >= start && end <= start + rlen {
                        return Ok(d.va[i] + (paddr - start));
                    }
                }
            }
            Err(IpcError::NotPermitted)
        })
    })
}

fn pci_bus(d: &Device) -> Result<Bus, IpcError> {
    match d.found {
        Some(FoundDevice { bus: b @ Bus::Pci { .. }, .. }) => Ok(b),
        _ => Err(IpcError::WrongType),
    }
}

fn check_offset(offset: u16) -> Result<(), IpcError> {
    if offset < 256 && offset.is_multiple_of(4) {
        Ok(())
    } else {
        Err(IpcError::BadGrant)
    }
}

pub fn config_read(dev_ref: DeviceRef, offset: u16) -> Result<u32, IpcError> {
    check_offset(offset)?;
    with_owned(dev_ref, |t, i| Ok(arch::dev::config_read(pci_bus(dev(t, i))?, offset)))
}

pub fn config_write(dev_ref: DeviceRef, offset: u16, value: u32) -> Result<(), IpcError> {
    check_offset(offset)?;
    with_owned(dev_ref, |t, i| {
        let d = dev(t, i);
        let bus = pci_bus(d)?;
        let bar = match offset {
            0x10..=0x27 => Some(((offset - pci::BAR0) / 4) as usize),
            pci::ROM => Some(6),
            _ => None,
        };
        if let Some(b) = bar {
            // Sizing (all ones, or the ROM's all-ones-but-enable) and restoring only.
            if value != u32::MAX && value != u32::MAX - 1 && value != d.bars[b] {
                return Err(IpcError::NotPermitted);
            }
        }
        arch::dev::config_write(bus, offset, value);
        Ok(())
    })
}

pub fn irq_bind(dev_ref: DeviceRef, bits: u64) -> Result<(), IpcError> {
    if bits == 0 {
        return Err(IpcError::BadGrant);
    }
    with_owned(dev_ref, |t, i| {
        let d = dev(t, i);
        let line = d.irq.ok_or(IpcError::WrongType)?;
        let first = !t.devices.iter().flatten().any(|x| x.bits != 0 && x.irq.is_some_and(|l| l.number == line.number));
        if first && !arch::dev::irq_route(line) {
            return Err(IpcError::NoSuchCap);
        }
        let d = dev(t, i);
        d.bits = bits;
        d.owes_ack = false;
        if matches!(d.reset, Reset::Console) {
            arch::console::enable_rx_interrupt();
        }
        unmask_if_serviced(t, line.number);
        Ok(())
    })
}

pub fn irq_ack(dev_ref: DeviceRef) -> Result<(), IpcError> {
    with_owned(dev_ref, |t, i| {
        let d = dev(t, i);
        let line = d.irq.filter(|_| d.bits != 0).ok_or(IpcError::WrongType)?;
        d.owes_ack = false;
        unmask_if_serviced(t, line.number);
        Ok(())
    })
}

/// Drivers to notify for one interrupt.
pub struct Wakeups {
    pub targets: [(TaskId, u64); MAX_DEVICES],
    pub len: usize,
}

/// Line `line` fired (the arch layer masked it): every driver bound to it now owes an
/// acknowledgement; returns whom to notify with which bits. An interrupt nobody is bound to
/// leaves the line masked.
pub fn on_irq(line: u32) -> Wakeups {
    let mut w = Wakeups { targets: [(TaskId { index: 0, generation: 0 }, 0); MAX_DEVICES], len: 0 };
    lock(|t| {
        for d in t.devices.iter_mut().flatten() {
            if d.irq.is_some_and(|l| l.number == line) {
                d.irq_count += 1;
                if let (Some(owner), true) = (d.owner, d.bits != 0) {
                    d.owes_ack = true;
                    w.targets[w.len] = (owner, d.bits);
                    w.len += 1;
                }
            }
        }
        if w.len == 0 {
            t.unclaimed += 1;
        }
    });
    w
}
