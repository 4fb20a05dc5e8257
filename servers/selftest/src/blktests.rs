//! The test driver's block-device cases (run with a disk attached by the harness, see
//! `tests/src/guest.rs`): data in patterns across the disk and the protocol's errors
//! (`blk-basic`, `blk-read-only`), clients hammering the server at once (`blk-concurrent`), the
//! server killed at random points under that load with a leak check (`blk-kill`), the driver
//! sleeping between interrupts (`blk-irq`), and throughput (`blk-bench`).

use crate::blkclient::{GO, OP_CONFIGURE, OP_RESULT, STOP};
use crate::blkio::{self, fill, sector_ok, HOST_TAG};
use abi::proto::blk::{BlkInfo, INFO_READ_ONLY, OP_READ, OP_WRITE};
use abi::Errno;
use alloc::vec;
use alloc::vec::Vec;
use server_rt::{grant, kernel, log, FaultKind, GrantRef, Sqe, GRANT_READ, GRANT_WRITE};

type Outcome = Result<(), &'static str>;

const SECTOR: u64 = 512;
const CHUNK: usize = 64 * 1024;
/// The tag `blk-basic` writes with.
pub const DRIVER_TAG: u64 = 1;
/// `blk-basic` writes the first 6 MiB and leaves the rest as the host wrote it.
pub const BASIC_WRITTEN: u64 = 6 << 20;

fn errno(e: Errno) -> i64 {
    -(e.0 as i64)
}

fn info_checked() -> Result<BlkInfo, &'static str> {
    let info = blkio::info().map_err(|_| "INFO failed")?;
    log!(
        "blk: size {} bytes, block size {}, flags {:#x}, max transfer {}, queue depth {}",
        info.size_bytes,
        info.block_size,
        info.flags,
        info.max_transfer,
        info.queue_depth
    );
    if info.size_bytes == 0 || info.block_size != 512 || (info.max_transfer as usize) < CHUNK {
        return Err("implausible device description");
    }
    Ok(info)
}

/// Reads `[from, to)` in chunks of `sizes` (cycling) and checks every sector against `tag_of`.
fn verify(from: u64, to: u64, sizes: &[usize], tag_of: impl Fn(u64) -> u64) -> Outcome {
    let mut buf = vec![0u8; CHUNK];
    let (mut at, mut i) = (from, 0);
    while at < to {
        let n = (sizes[i % sizes.len()] as u64).min(to - at) as usize;
        i += 1;
        blkio::read(at, &mut buf[..n]).map_err(|_| "a read failed")?;
        for (j, sec) in buf[..n].chunks_exact(SECTOR as usize).enumerate() {
            let s = at / SECTOR + j as u64;
            if !sector_ok(sec, s, tag_of(s)) {
                log!("blk: sector {s} holds the wrong data");
                return Err("read back wrong data");
            }
        }
        at += n as u64;
    }
    Ok(())
}

/// Writes `[from, to)` with `tag`, in chunks of `sizes` (cycling).
fn write_range(from: u64, to: u64, sizes: &[usize], tag: u64) -> Outcome {
    let mut buf = vec![0u8; CHUNK];
    let (mut at, mut i) = (from, 0);
    while at < to {
        let n = (sizes[i % sizes.len()] as u64).min(to - at) as usize;
        i += 1;
        fill(&mut buf[..n], at / SECTOR, tag);
        blkio::write(at, &buf[..n]).map_err(|_| "a write failed")?;
        at += n as u64;
    }
    Ok(())
}

fn expect_err(what: &str, got: Result<i64, i64>, want: Errno) -> Outcome {
    if got == Err(errno(want)) {
        return Ok(());
    }
    log!("blk: {what}: got {got:?}, expected -{}", want.0);
    Err("a bad request was not refused with the right errno")
}

/// Reads the host's pattern, writes the driver's over the first 6 MiB in mixed sizes, reads
/// everything back, checks the protocol's errors and flushes. The host then checks the image.
pub fn basic() -> Outcome {
    let info = info_checked()?;
    let size = info.size_bytes;
    if size < 8 << 20 || info.flags & INFO_READ_ONLY != 0 {
        return Err("expected a writable disk of at least 8 MiB");
    }
    verify(0, size, &[CHUNK, 4096, 512, 32768], |_| HOST_TAG)?;
    log!("blk-basic: read the host's pattern across all {} sectors", size / SECTOR);
    let sizes = [CHUNK, 512, 4096, 1536, 32768, 8192, 65024];
    write_range(0, BASIC_WRITTEN, &sizes, DRIVER_TAG)?;
    verify(0, size, &[4096, CHUNK, 512, 12288], |s| if s * SECTOR < BASIC_WRITTEN { DRIVER_TAG } else { HOST_TAG })?;
    log!("blk-basic: wrote {} KiB in mixed request sizes and read everything back", BASIC_WRITTEN >> 10);

    let mut buf = vec![0u8; 2 * CHUNK];
    let rw = GRANT_READ | GRANT_WRITE;
    expect_err("read at the end", blkio::call(OP_READ, [size, 512, 0], blkio::grant_mut(&mut buf, rw)), Errno::EINVAL)?;
    expect_err(
        "read across the end",
        blkio::call(OP_READ, [size - 512, 1024, 0], blkio::grant_mut(&mut buf, rw)),
        Errno::EINVAL,
    )?;
    expect_err("write past the end", blkio::call(OP_WRITE, [size, 512, 0], grant(&buf, rw)), Errno::EINVAL)?;
    expect_err(
        "misaligned offset",
        blkio::call(OP_READ, [100, 512, 0], blkio::grant_mut(&mut buf, rw)),
        Errno::EINVAL,
    )?;
    expect_err("misaligned length", blkio::call(OP_READ, [0, 100, 0], blkio::grant_mut(&mut buf, rw)), Errno::EINVAL)?;
    expect_err("zero length", blkio::call(OP_READ, [0, 0, 0], blkio::grant_mut(&mut buf, rw)), Errno::EINVAL)?;
    expect_err(
        "longer than max transfer",
        blkio::call(OP_READ, [0, 2 * CHUNK as u64, 0], blkio::grant_mut(&mut buf, rw)),
        Errno::EINVAL,
    )?;
    expect_err("read without a grant", blkio::call(OP_READ, [0, 512, 0], GrantRef::NONE), Errno::EFAULT)?;
    expect_err(
        "grant too small",
        blkio::call(OP_READ, [0, 4096, 0], blkio::grant_mut(&mut buf[..1024], rw)),
        Errno::EFAULT,
    )?;
    expect_err(
        "grant offset past the grant",
        blkio::call(OP_READ, [0, 4096, 2 * CHUNK as u64 - 512], blkio::grant_mut(&mut buf, rw)),
        Errno::EFAULT,
    )?;
    expect_err(
        "read into a read-only grant",
        blkio::call(OP_READ, [0, 512, 0], grant(&buf, GRANT_READ)),
        Errno::EFAULT,
    )?;
    expect_err("unknown opcode", blkio::call(77, [0, 0, 0], GrantRef::NONE), Errno::ENOSYS)?;
    // A read into the middle of a grant lands there.
    buf.fill(0);
    blkio::call(OP_READ, [8 * SECTOR, 1024, 4096], blkio::grant_mut(&mut buf, rw)).map_err(|_| "offset read failed")?;
    let placed = sector_ok(&buf[4096..], 8, DRIVER_TAG) && sector_ok(&buf[4608..], 9, DRIVER_TAG);
    if !placed || buf[..4096].iter().any(|&b| b != 0) {
        return Err("a read at a grant offset landed in the wrong place");
    }
    log!("blk-basic: out-of-range, misaligned and ungranted requests refused");
    not_the_drivers()?;
    blkio::flush().map_err(|_| "flush failed")?;
    log!("blk-basic: flushed");
    Ok(())
}

/// The test driver is not the disk's driver: it may not open the device, touch the one `blk`
/// opened (its registers, configuration space, interrupt line), or allocate DMA memory.
fn not_the_drivers() -> Outcome {
    use server_rt::{DeviceClass, DeviceRef, IpcError, VIRTIO_BLOCK};
    let k = kernel();
    let refused = |r: Result<(), IpcError>| r == Err(IpcError::NotPermitted);
    let open = k.device_open(DeviceClass::Virtio(VIRTIO_BLOCK), 0).map(|_| ());
    // Device 1 is the disk (0 is the console), opened by `blk`.
    let theirs = DeviceRef(1);
    let checks = [
        ("open a virtio-blk device", refused(open)),
        ("acknowledge blk's interrupt", refused(k.irq_ack(theirs))),
        ("bind blk's interrupt", refused(k.irq_bind(theirs, 1))),
        ("read blk's configuration space", refused(k.pci_config_read(theirs, 0).map(|_| ()))),
        ("close blk's device", refused(k.device_close(theirs))),
        ("allocate DMA memory", refused(k.dma_alloc(1).map(|_| ()))),
        // Any window: the driver owns no device with registers.
        ("map a register window", refused(k.device_mmio(0x0a00_0000, 0x200).map(|_| ()))),
    ];
    for (what, ok) in checks {
        if !ok {
            log!("blk-basic: the test driver could {what}");
            return Err("a server without the device's capability could use it");
        }
    }
    log!("blk-basic: another server cannot open, drive or interrupt-bind blk's device");
    Ok(())
}

/// A read-only disk: writes fail with EROFS, reads see the host's data, flush is harmless.
pub fn read_only() -> Outcome {
    let info = info_checked()?;
    if info.flags & INFO_READ_ONLY == 0 {
        return Err("the device does not say it is read-only");
    }
    let buf = vec![0u8; 4096];
    expect_err("write to a read-only disk", blkio::write(0, &buf), Errno::EROFS)?;
    verify(0, info.size_bytes, &[CHUNK], |_| HOST_TAG)?;
    blkio::flush().map_err(|_| "flush failed")?;
    log!("blk-read-only: writes refused with EROFS, the host's data reads back");
    Ok(())
}

fn client_name(i: u64) -> &'static str {
    ["blkc1", "blkc2", "blkc3"][(i - 1) as usize]
}

/// Configures and starts clients 1..=n, each on `region` bytes of its own.
fn clients_start(n: u64, region: u64, seed: u64, iterations: u64) -> Outcome {
    let k = kernel();
    for i in 1..=n {
        let cfg = Sqe::new(OP_CONFIGURE, [(i - 1) * region, region, seed * 16 + i, iterations, 0, 0]);
        server_rt::call_named(client_name(i), &cfg, 8).map_err(|_| "cannot configure a client")?;
    }
    for i in 1..=n {
        let cap = k.lookup(client_name(i)).map_err(|_| "no client")?;
        k.notify(cap, GO).map_err(|_| "cannot start a client")?;
    }
    Ok(())
}

fn clients_stop(n: u64) -> Outcome {
    let k = kernel();
    for i in 1..=n {
        let cap = k.lookup(client_name(i)).map_err(|_| "no client")?;
        k.notify(cap, STOP).map_err(|_| "cannot stop a client")?;
    }
    Ok(())
}

/// Waits for clients 1..=n to say they are done; their total operation count.
fn clients_finish(n: u64, timeout_ns: u64) -> Result<u64, &'static str> {
    let k = kernel();
    let all = ((1u64 << (n + 1)) - 1) & !1;
    let (mut done, until) = (0u64, k.now_ns() + timeout_ns);
    while done & all != all {
        let left = until.saturating_sub(k.now_ns());
        match k.receive_timeout(left) {
            Ok(Some(m)) if m.is_notification() => done |= m.args[0],
            Ok(Some(_)) => {}
            _ => return Err("the clients did not finish"),
        }
    }
    let mut ops = 0;
    for i in 1..=n {
        let r = server_rt::call_named(client_name(i), &Sqe::new(OP_RESULT, [0; 6]), 8)
            .map_err(|_| "no client result")?
            .result;
        if r < 0 {
            return Err("a client found wrong data or failed");
        }
        ops += r as u64;
    }
    Ok(ops)
}

/// Three clients at once, each writing and checking its own 2 MiB; the server must have had
/// several requests in flight.
pub fn concurrent() -> Outcome {
    info_checked()?;
    let before = blkio::stats().map_err(|_| "STATS failed")?;
    clients_start(3, 2 << 20, 5, 300)?;
    let ops = clients_finish(3, 100_000_000_000)?;
    let s = blkio::stats().map_err(|_| "STATS failed")?;
    log!(
        "blk-concurrent: 3 clients, {ops} requests, all data right; at most {} in flight, {} completions, {} interrupts",
        s.max_in_flight,
        s.completions.saturating_sub(before.completions),
        s.irq_count.saturating_sub(before.irq_count)
    );
    if s.max_in_flight < 2 {
        return Err("the server never had two requests in flight");
    }
    Ok(())
}

fn blk_index() -> Result<usize, &'static str> {
    kernel().servers().iter().position(|s| s.name == "blk").ok_or("no blk server")
}

/// Waits until `blk` runs instance `instance` (or a later one) and answers.
fn wait_for_instance(instance: u32) -> Outcome {
    let k = kernel();
    let blk = blk_index()?;
    for _ in 0..5000 {
        if let Some((i, true)) = k.server_state(blk) {
            if i >= instance {
                return Ok(());
            }
        }
        k.sleep_ns(1_000_000);
    }
    Err("blk was not restarted")
}

/// Settles: `blk` answers, the reaper has run; then the memory accounting.
fn settled() -> Result<(server_rt::MemStats, usize), &'static str> {
    let k = kernel();
    blkio::stats().map_err(|_| "blk does not answer")?;
    k.sleep_ns(20_000_000);
    blkio::stats().map_err(|_| "blk does not answer")?;
    k.yield_now();
    let dma = k.server_info(blk_index()?).map_or(0, |i| i.dma_pages);
    Ok((k.mem_stats(), dma))
}

/// Three clients hammer `blk` while the driver kills it at pseudo-random moments (`kills`
/// times, each 2..30 ms after the previous restart, from a seeded generator); the clients'
/// retries must complete with every byte right, and no memory (DMA frames included) may leak.
pub fn kill(kills: u32) -> Outcome {
    let k = kernel();
    let blk = blk_index()?;
    info_checked()?;
    // One kill first, so one-time structures (stack-area page tables) exist before the baseline.
    k.inject("blk", FaultKind::Kill, 0).map_err(|_| "inject failed")?;
    wait_for_instance(2)?;
    let (base, base_dma) = settled()?;
    let mut seed = kernel().cmdline_get("seed").and_then(|s| s.parse::<u64>().ok()).unwrap_or(7).max(1);
    clients_start(3, 2 << 20, seed, 0)?;
    let first = k.server_state(blk).map_or(0, |s| s.0);
    for n in 1..=kills {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = 2_000_000 + seed % 28_000_000;
        k.inject("blk", FaultKind::Kill, delay).map_err(|_| "inject failed")?;
        wait_for_instance(first + n)?;
    }
    clients_stop(3)?;
    let ops = clients_finish(3, 100_000_000_000)?;
    let (instance, _) = k.server_state(blk).ok_or("no blk state")?;
    let (end, end_dma) = settled()?;
    log!("blk-kill: {ops} requests by 3 clients, all data right, while blk was killed {} times", instance - 1);
    log!("blk-kill: memory before {base:?} (blk DMA {base_dma} pages), after {end:?} (blk DMA {end_dma} pages)");
    if end != base || end_dma != base_dma {
        return Err("memory (DMA frames, arenas or tasks) leaked across blk's deaths");
    }
    Ok(())
}

/// The server sleeps: every wakeup is a request or an interrupt, none happen while idle, and a
/// run of sequential reads takes about one interrupt per request.
pub fn irq() -> Outcome {
    let k = kernel();
    info_checked()?;
    let mut buf = vec![0u8; 4096];
    let a = blkio::stats().map_err(|_| "STATS failed")?;
    let n = 200u64;
    for i in 0..n {
        blkio::read(i * 4096, &mut buf).map_err(|_| "a read failed")?;
    }
    let b = blkio::stats().map_err(|_| "STATS failed")?;
    let (requests, wakeups, irq_wakeups) =
        (b.requests - a.requests, b.wakeups - a.wakeups, b.irq_wakeups - a.irq_wakeups);
    let (completions, interrupts) = (b.completions - a.completions, b.irq_count - a.irq_count);
    log!(
        "blk-irq: {n} reads: {requests} requests, {completions} completions, {interrupts} interrupts, {irq_wakeups} interrupt wakeups, {wakeups} wakeups"
    );
    if completions != n || requests != n + 1 {
        return Err("requests or completions miscounted");
    }
    if wakeups != requests + irq_wakeups || irq_wakeups == 0 || irq_wakeups > interrupts || interrupts > 2 * n {
        return Err("the server woke up for something other than a request or its interrupt");
    }
    k.sleep_ns(300_000_000);
    let c = blkio::stats().map_err(|_| "STATS failed")?;
    log!(
        "blk-irq: idle 300 ms: {} wakeups (the STATS request itself), {} interrupts",
        c.wakeups.saturating_sub(b.wakeups),
        c.irq_count.saturating_sub(b.irq_count)
    );
    if c.instance != b.instance || c.wakeups.saturating_sub(b.wakeups) != 1 || c.irq_count != b.irq_count {
        return Err("the server did not sleep while idle");
    }
    Ok(())
}

/// Sequential throughput with one request in flight, 4 KiB and 64 KiB requests.
pub fn bench() -> Outcome {
    let k = kernel();
    let info = info_checked()?;
    let total = info.size_bytes.min(16 << 20);
    let mut buf: Vec<u8> = vec![0u8; CHUNK];
    fill(&mut buf, 0, 9);
    for size in [4096usize, CHUNK] {
        for write in [true, false] {
            let t0 = k.now_ns();
            let mut at = 0;
            while at < total {
                let r = if write { blkio::write(at, &buf[..size]) } else { blkio::read(at, &mut buf[..size]) };
                r.map_err(|_| "an I/O failed")?;
                at += size as u64;
            }
            let ns = (k.now_ns() - t0).max(1);
            let kib_s = total * 1_000_000_000 / 1024 / ns;
            log!(
                "blk-bench: sequential {} {} KiB requests: {} MiB in {} ms = {}.{:02} MB/s",
                if write { "write" } else { "read" },
                size / 1024,
                total >> 20,
                ns / 1_000_000,
                kib_s * 1024 / 1_000_000,
                (kib_s * 1024 / 10_000) % 100
            );
        }
    }
    blkio::flush().map_err(|_| "flush failed")?;
    Ok(())
}

/// The console's receive interrupt as notifications: the harness types a line; every byte
/// arrives by interrupt (the driver only reads the UART when notified), and the line stays
/// masked from an interrupt until the acknowledgement.
pub fn console_irq() -> Outcome {
    use server_rt::DeviceClass;
    const BIT: u64 = 1 << 7;
    let k = kernel();
    let (dev, info) = k.device_open(DeviceClass::Console, 0).map_err(|_| "cannot open the console")?;
    if !info.has_irq {
        return Err("the console has no interrupt line");
    }
    k.irq_bind(dev, BIT).map_err(|_| "cannot bind the console's interrupt")?;
    log!("console-irq: type a line");
    let (mut line, mut wakeups) = (Vec::new(), 0u32);
    let until = k.now_ns() + 60_000_000_000;
    while !line.iter().any(|&b| b == b'\r' || b == b'\n') {
        match k.receive_timeout(until.saturating_sub(k.now_ns())) {
            Ok(Some(m)) if m.is_notification() && m.args[0] & BIT != 0 => {
                wakeups += 1;
                let mut b = [0u8; 64];
                loop {
                    let n = k.console_read(&mut b);
                    if n == 0 {
                        break;
                    }
                    line.extend_from_slice(&b[..n]);
                }
                k.irq_ack(dev).map_err(|_| "cannot acknowledge the console's interrupt")?;
            }
            Ok(Some(_)) => {}
            _ => return Err("no console interrupt came"),
        }
    }
    let interrupts = k.device_info(dev).map_err(|_| "no device info")?.irq_count;
    k.device_close(dev).map_err(|_| "cannot close the console")?;
    let text = core::str::from_utf8(&line).unwrap_or("?").trim_end();
    log!("console-irq: read '{text}' in {wakeups} wakeups ({interrupts} interrupts)");
    if text != "hello cairn" || wakeups == 0 || interrupts < wakeups as u64 {
        return Err("console input did not arrive through the interrupt");
    }
    Ok(())
}
