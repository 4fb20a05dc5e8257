//! The test driver: runs the nucleus test named by `test=<name>` against the echo server and
//! reports `@@TEST-PASS <name>` or `@@TEST-FAIL <name>: <why>`. Every check compares real
//! values (reply contents, counters, frame counts), never a constant.

use crate::echo::{
    OP_COUNT, OP_ECHO, OP_FAULT, OP_GRANT_AFTER_REPLY, OP_GRANT_REVERSE, OP_HANG, OP_LAST_REVOKED, OP_OVERFLOW,
    OP_PANIC,
};
use alloc::vec::Vec;
use server_rt::{call_named, kernel, log, IpcError, Sqe};

type Outcome = Result<(), &'static str>;

fn req(opcode: u32, arg: u64) -> Sqe {
    let mut s = Sqe { opcode, ..Default::default() };
    s.args[0] = arg;
    s
}

/// Calls echo, retrying across restarts.
fn echo(opcode: u32, arg: u64) -> Result<i64, IpcError> {
    call_named("echo", &req(opcode, arg), 64).map(|c| c.result)
}

pub fn main() {
    let k = kernel();
    let name = k.cmdline_get("test").unwrap_or("");
    let outcome = match name {
        "ipc-calls" => calls(1_000_000),
        "ipc-kill-midcall" => kill_midcall(),
        "ipc-restart-cycles" => restart_cycles(1000),
        "server-panic" => misbehave(OP_PANIC),
        "server-fault" => misbehave(OP_FAULT),
        "server-stack-overflow" => misbehave(OP_OVERFLOW),
        "ipc-bench" => bench(),
        "ipc-random-kills" => random_kills(20),
        "ipc-grant" => grants(),
        "ipc-retry" => retry(),
        "supervisor-kill" => supervisor_kill(),
        "crash-loop" => crash_loop(),
        "hung-server" => hung_server(),
        "restart-latency" => restart_latency(200),
        "ipc-forward-grant" => forward_grant(),
        "ipc-notify" => notifications(),
        "state-keeper" => state_keeper(20),
        "blk-basic" => crate::blktests::basic(),
        "blk-read-only" => crate::blktests::read_only(),
        "blk-concurrent" => crate::blktests::concurrent(),
        "blk-kill" => crate::blktests::kill(25),
        "blk-irq" => crate::blktests::irq(),
        "blk-bench" => crate::blktests::bench(),
        "console-irq" => crate::blktests::console_irq(),
        _ => Err("unknown test"),
    };
    match outcome {
        Ok(()) => {
            log!("@@TEST-PASS {name}");
            k.poweroff(0)
        }
        Err(why) => {
            log!("@@TEST-FAIL {name}: {why}");
            k.poweroff(1)
        }
    }
}

/// `n` calls with distinct arguments: every reply must be the argument plus one (none lost,
/// none duplicated, none crossed), and the server must have counted exactly `n`.
fn calls(n: u64) -> Outcome {
    let k = kernel();
    let cap = k.lookup("echo").map_err(|_| "lookup failed")?;
    let t0 = k.now_ns();
    for i in 0..n {
        let r = k.call(cap, &req(OP_ECHO, i)).map_err(|_| "call failed")?;
        if r.result != i as i64 + 1 {
            log!("call {i}: got {}", r.result);
            return Err("wrong reply");
        }
    }
    let t1 = k.now_ns();
    let count = k.call(cap, &req(OP_COUNT, 0)).map_err(|_| "count failed")?.result;
    log!("{n} calls in {} ms; server counted {}", (t1 - t0) / 1_000_000, count - 1);
    if count as u64 != n + 1 {
        return Err("server count differs from calls made");
    }
    Ok(())
}

fn kill_midcall() -> Outcome {
    let k = kernel();
    let before = echo(OP_COUNT, 0).map_err(|_| "echo not reachable")?;
    k.inject("echo", server_rt::FaultKind::Kill, 30_000_000).map_err(|_| "inject failed")?;
    let cap = k.lookup("echo").map_err(|_| "lookup failed")?;
    match k.call(cap, &req(OP_HANG, 0)) {
        Err(IpcError::ServerDied) => log!("mid-call kill: caller got ServerDied"),
        Err(_) => return Err("mid-call kill: wrong error"),
        Ok(_) => return Err("mid-call kill: the hung call returned"),
    }
    // The old capability is stale now.
    match k.call(cap, &req(OP_ECHO, 1)) {
        Err(IpcError::StaleGeneration) | Err(IpcError::ServerDied) => {}
        _ => return Err("a capability to the dead instance still worked"),
    }
    let r = echo(OP_ECHO, 41).map_err(|_| "new instance not reachable")?;
    let count = echo(OP_COUNT, 0).map_err(|_| "count failed")?;
    log!("new instance answered {r}; its count is {count} (old instance had {before})");
    if r != 42 || count != 2 {
        return Err("the next call was not served by a fresh instance");
    }
    Ok(())
}

fn restart_cycles(n: u32) -> Outcome {
    let k = kernel();
    // One warm-up cycle so that page tables for the stack area and similar one-time
    // structures exist before the baseline.
    echo(OP_ECHO, 0).map_err(|_| "echo not reachable")?;
    k.inject("echo", server_rt::FaultKind::Kill, 0).map_err(|_| "inject failed")?;
    echo(OP_ECHO, 0).map_err(|_| "echo did not come back")?;
    let base = k.mem_stats();
    for i in 0..n {
        k.inject("echo", server_rt::FaultKind::Kill, 0).map_err(|_| "inject failed")?;
        let r = echo(OP_ECHO, i as u64).map_err(|_| "echo did not come back")?;
        if r != i as i64 + 1 {
            return Err("wrong reply after restart");
        }
    }
    // Let the reaper run.
    k.yield_now();
    let end = k.mem_stats();
    log!("{n} kill/restart cycles: start {base:?}, end {end:?}");
    if end != base {
        return Err("memory, tasks or arenas leaked across restarts");
    }
    Ok(())
}

fn misbehave(op: u32) -> Outcome {
    let k = kernel();
    let cap = k.lookup("echo").map_err(|_| "lookup failed")?;
    match k.call(cap, &req(op, 0)) {
        Err(IpcError::ServerDied) => {}
        Err(_) => return Err("wrong error from a dying server"),
        Ok(_) => return Err("the server did not die"),
    }
    let r = echo(OP_ECHO, 6).map_err(|_| "not restarted")?;
    if r != 7 {
        return Err("wrong reply from the restarted server");
    }
    log!("contained: the server died and a new instance answered");
    Ok(())
}

/// A server that stops answering is noticed by the nucleus's deadline, killed as hung, and
/// restarted; the caller gets `ServerDied` and the next call is served.
fn hung_server() -> Outcome {
    let k = kernel();
    let cap = k.lookup("echo").map_err(|_| "lookup failed")?;
    let t0 = k.now_ns();
    match k.call(cap, &req(OP_HANG, 0)) {
        Err(IpcError::ServerDied) => {}
        _ => return Err("the hung call did not fail with ServerDied"),
    }
    log!("hung-server: the call failed after {} ms", (k.now_ns() - t0) / 1_000_000);
    let r = echo(OP_ECHO, 8).map_err(|_| "echo was not restarted")?;
    if r != 9 {
        return Err("wrong reply after the restart");
    }
    Ok(())
}

/// A server that panics on every request is restarted with growing back-off until it has
/// failed more than the supervisor's limit, then held: its clients get `ServerDied` for good.
fn crash_loop() -> Outcome {
    let k = kernel();
    let echo_index = k.servers().iter().position(|s| s.name == "echo").ok_or("no echo server")?;
    for _ in 0..20 {
        match server_rt::call_named("echo", &req(OP_PANIC, 0), 12) {
            // The server died on it (and on every retry): held, or still backing off.
            Err(IpcError::ServerDied) | Err(IpcError::StaleGeneration) => {}
            _ => return Err("a panicking request was answered"),
        }
        if let Some((_, false)) = k.server_state(echo_index) {
            k.sleep_ns(50_000_000);
            if let Some((instance, false)) = k.server_state(echo_index) {
                log!("crash-loop: echo held after {instance} instances; calls fail with ServerDied");
                return match server_rt::call_named("echo", &req(OP_ECHO, 1), 4) {
                    Err(IpcError::ServerDied) | Err(IpcError::StaleGeneration) => Ok(()),
                    _ => Err("a held server answered"),
                };
            }
        }
    }
    Err("the crash loop was never held")
}

/// The supervisor itself is killed; the nucleus starts a new one, which then restarts a
/// server that dies afterwards.
fn supervisor_kill() -> Outcome {
    let k = kernel();
    let sup = k.servers().iter().position(|s| s.supervisor).ok_or("no supervisor")?;
    echo(OP_ECHO, 0).map_err(|_| "echo not reachable")?;
    k.inject("supervisor", server_rt::FaultKind::Kill, 0).map_err(|_| "inject failed")?;
    let mut state = k.server_state(sup).ok_or("no supervisor state")?;
    for _ in 0..50 {
        if state == (2, true) {
            break;
        }
        k.sleep_ns(1_000_000);
        state = k.server_state(sup).ok_or("no supervisor state")?;
    }
    let (instance, alive) = state;
    log!("supervisor-kill: supervisor instance {instance}, alive {alive}");
    if instance != 2 || !alive {
        return Err("the supervisor was not restarted");
    }
    k.inject("echo", server_rt::FaultKind::Kill, 0).map_err(|_| "inject failed")?;
    let r = echo(OP_ECHO, 5).map_err(|_| "echo was not restarted by the new supervisor")?;
    if r != 6 {
        return Err("wrong reply");
    }
    log!("supervisor-kill: the new supervisor restarted echo");
    Ok(())
}

/// A server killed while serving a request: the client runtime (`call_named`) sends the same
/// request again to the new instance, which answers it.
fn retry() -> Outcome {
    let k = kernel();
    echo(OP_ECHO, 0).map_err(|_| "echo not reachable")?;
    k.inject("echo", server_rt::FaultKind::Kill, 20_000_000).map_err(|_| "inject failed")?;
    let mut rq = req(crate::echo::OP_SLOW, 60);
    rq.args[1] = 99;
    let r = server_rt::call_named("echo", &rq, 64).map_err(|_| "the retried call failed")?.result;
    log!("retry: the slow call was answered with {r} after the server died under it");
    if r != 100 {
        return Err("wrong answer after the retry");
    }
    Ok(())
}

/// Bulk data by grant: an 8 KiB buffer read and rewritten by the server; a grant is refused
/// after the reply, outside the sender's memory, and for writing when only reading was granted.
fn grants() -> Outcome {
    let k = kernel();
    let cap = k.lookup("echo").map_err(|_| "lookup failed")?;
    let mut buf: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    let expected_sum: i64 = buf.iter().map(|&b| b as i64).sum();
    let mut rq = req(OP_GRANT_REVERSE, 0);
    rq.grant = server_rt::grant(&buf, server_rt::GRANT_READ | server_rt::GRANT_WRITE);
    let sum = k.call(cap, &rq).map_err(|_| "grant call failed")?.result;
    let reversed = buf.iter().rev().enumerate().all(|(i, &b)| b == (i as u32 * 7 % 251) as u8);
    log!("grant: server summed {sum} (expected {expected_sum}), buffer reversed: {reversed}");
    if sum != expected_sum || !reversed {
        return Err("data through the grant is wrong");
    }
    let mut late = req(OP_GRANT_AFTER_REPLY, 0);
    late.grant = server_rt::grant(&buf[..16], server_rt::GRANT_READ);
    k.call(cap, &late).map_err(|_| "late-grant call failed")?;
    if k.call(cap, &req(OP_LAST_REVOKED, 0)).map_err(|_| "revocation query failed")?.result != 1 {
        return Err("a grant was still usable after the reply");
    }
    let mut forged = req(OP_GRANT_REVERSE, 0);
    forged.grant = server_rt::GrantRef::own_memory(0x1000, 16, server_rt::GRANT_READ);
    if k.call(cap, &forged) != Err(IpcError::BadGrant) {
        return Err("a grant outside the sender's memory was accepted");
    }
    let mut read_only = req(OP_GRANT_REVERSE, 0);
    read_only.grant = server_rt::grant(&buf, server_rt::GRANT_READ);
    let r = k.call(cap, &read_only).map_err(|_| "read-only grant call failed")?.result;
    if r != IpcError::BadGrant.code() {
        return Err("writing through a read-only grant was allowed");
    }
    log!("grant: revoked after reply, forged range refused, read-only enforced");
    buf.clear();
    Ok(())
}

/// With `fi=echo:<period>:<seed>` on the command line, echo is killed at random points. Calls
/// keep going (retrying across restarts, the transparent policy) until it has been killed
/// `kills` times; every reply must still be right.
fn random_kills(kills: u32) -> Outcome {
    let k = kernel();
    let echo_index = k.servers().iter().position(|s| s.name == "echo").ok_or("no echo server")?;
    let mut i = 0u64;
    loop {
        let r = echo(OP_ECHO, i).map_err(|_| "a call failed for good")?;
        if r != i as i64 + 1 {
            return Err("wrong reply under random kills");
        }
        i += 1;
        let (instance, _) = k.server_state(echo_index).ok_or("no echo state")?;
        if instance > kills {
            log!("{i} calls answered correctly while echo was killed {} times", instance - 1);
            return Ok(());
        }
        if i > 50_000_000 {
            return Err("echo was not killed (is fi= set?)");
        }
    }
}

/// Time from killing echo to its new instance answering a call (median and max over `n`).
fn restart_latency(n: usize) -> Outcome {
    let k = kernel();
    echo(OP_ECHO, 0).map_err(|_| "echo not reachable")?;
    let mut samples = [0u64; 256];
    let n = n.min(samples.len());
    for s in samples.iter_mut().take(n) {
        let t0 = k.now_ns();
        k.inject("echo", server_rt::FaultKind::Kill, 0).map_err(|_| "inject failed")?;
        echo(OP_ECHO, 1).map_err(|_| "echo did not come back")?;
        *s = k.now_ns() - t0;
    }
    let v = &mut samples[..n];
    v.sort_unstable();
    log!("restart-latency: {n} restarts, median {} ns, max {} ns", v[n / 2], v[n - 1]);
    Ok(())
}

/// Round-trip time of an empty call (fast path unless `fastpath=off`).
fn bench() -> Outcome {
    let k = kernel();
    let cap = k.lookup("echo").map_err(|_| "lookup failed")?;
    let n = 200_000u64;
    for i in 0..1000 {
        k.call(cap, &req(OP_ECHO, i)).map_err(|_| "call failed")?;
    }
    let t0 = k.now_ns();
    for i in 0..n {
        k.call(cap, &req(OP_ECHO, i)).map_err(|_| "call failed")?;
    }
    let dt = k.now_ns() - t0;
    log!("ipc-bench: {n} round trips, {} ns each (fastpath={})", dt / n, k.cmdline_get("fastpath").unwrap_or("on"));
    Ok(())
}

/// A grant lent on by a second server: echo, called by relay, reverses a sub-range of the
/// driver's buffer that relay forwarded (no copy through relay); rights can only shrink and the
/// range must stay inside the original grant.
fn forward_grant() -> Outcome {
    use crate::relay::OP_RELAY_REVERSE;
    let k = kernel();
    let cap = k.lookup("relay").map_err(|_| "lookup failed")?;
    let mut buf: Vec<u8> = (0..4096u32).map(|i| (i % 253) as u8).collect();
    let original = buf.clone();
    let mut rq = req(OP_RELAY_REVERSE, 1024);
    rq.args[1] = 2048;
    rq.grant = server_rt::grant(&buf, server_rt::GRANT_READ | server_rt::GRANT_WRITE);
    let sum = k.call(cap, &rq).map_err(|_| "relay call failed")?.result;
    let expected: i64 = original[1024..3072].iter().map(|&b| b as i64).sum();
    let mut want = original.clone();
    want[1024..3072].reverse();
    log!("forward-grant: echo summed {sum} through relay (expected {expected})");
    if sum != expected || buf != want {
        return Err("data through the forwarded grant is wrong");
    }
    let mut widen = req(OP_RELAY_REVERSE, 0);
    widen.args[1] = 16;
    widen.args[2] = server_rt::GRANT_WRITE as u64;
    widen.grant = server_rt::grant(&buf, server_rt::GRANT_READ);
    if k.call(cap, &widen).map_err(|_| "relay call failed")?.result != IpcError::BadGrant.code() {
        return Err("a forwarded grant gained rights");
    }
    let mut outside = req(OP_RELAY_REVERSE, 3000);
    outside.args[1] = 2048;
    outside.grant = server_rt::grant(&buf, server_rt::GRANT_READ | server_rt::GRANT_WRITE);
    if k.call(cap, &outside).map_err(|_| "relay call failed")?.result != IpcError::BadGrant.code() {
        return Err("a forwarded grant reached outside the original");
    }
    log!("forward-grant: rights cannot grow, ranges cannot grow");
    buf.clear();
    Ok(())
}

/// Notifications: bits set by relay (100 times) and by the driver reach echo as messages,
/// coalesced, with every bit kept.
fn notifications() -> Outcome {
    use crate::relay::OP_RELAY_NOTIFY;
    let k = kernel();
    let relay = k.lookup("relay").map_err(|_| "lookup failed")?;
    let mut rq = req(OP_RELAY_NOTIFY, 0b101);
    rq.args[1] = 100;
    let r = k.call(relay, &rq).map_err(|_| "relay call failed")?.result as u64;
    let (count, bits) = (r >> 32, r & 0xffff_ffff);
    log!("notify: echo got {count} notification message(s) with bits {bits:#b}");
    if bits != 0b101 || count == 0 || count > 100 {
        return Err("notification bits lost or invented");
    }
    let echo_cap = k.lookup("echo").map_err(|_| "lookup failed")?;
    k.notify(echo_cap, 0b10).map_err(|_| "notify failed")?;
    let r = k.call(echo_cap, &req(crate::echo::OP_NOTIFY_COUNT, 0)).map_err(|_| "count failed")?.result as u64;
    if r & 0xffff_ffff != 0b10 || r >> 32 != 1 {
        return Err("a direct notification was not received once");
    }
    Ok(())
}

/// With `fi=keeper:<period>:<seed>`, the keeper (a counter in its state area) is killed at
/// random points while the driver adds to it; each addition carries a request id and is
/// retried across deaths. The total must be exact: nothing lost, nothing applied twice.
fn state_keeper(kills: u32) -> Outcome {
    use crate::keeper::{OP_ADD, OP_STARTS, OP_TOTAL};
    let k = kernel();
    let keeper = k.servers().iter().position(|s| s.name == "keeper").ok_or("no keeper server")?;
    let mut ids = server_rt::RequestIds::new();
    let mut expected = server_rt::call_named("keeper", &req(OP_TOTAL, 0), 64).map_err(|_| "no keeper")?.result as u64;
    // Death between commit and reply: the retry must be answered from the record, not added
    // again.
    let mut once = req(OP_ADD, 1000);
    once.args[1] = 1;
    once.rid = ids.fresh();
    expected += 1000;
    let r = server_rt::call_named("keeper", &once, 64).map_err(|_| "the retried addition failed")?.result;
    if r as u64 != expected {
        return Err("an addition retried after a death between commit and reply was applied twice");
    }
    log!("state-keeper: a retry after death between commit and reply was answered from the record");
    let mut i = 0u64;
    loop {
        i += 1;
        let mut rq = req(OP_ADD, i);
        rq.rid = ids.fresh();
        expected += i;
        let r = server_rt::call_named("keeper", &rq, 64).map_err(|_| "an addition failed for good")?.result;
        if r as u64 != expected {
            log!("addition {i}: keeper answered {r}, expected {expected}");
            return Err("the total is wrong under random kills");
        }
        let (instance, _) = k.server_state(keeper).ok_or("no keeper state")?;
        if instance > kills {
            let starts = server_rt::call_named("keeper", &req(OP_STARTS, 0), 64).map_err(|_| "no keeper")?.result;
            log!(
                "state-keeper: {i} additions exact across {} deaths; state area counted {starts} starts",
                instance - 1
            );
            // An instance killed before its first commit counts no start; more starts than
            // instances, or none carried over, would mean the area was lost or invented.
            if starts < 2 || starts as u32 > instance {
                return Err("the state area did not survive the restarts");
            }
            return Ok(());
        }
        if i > 20_000_000 {
            return Err("keeper was not killed (is fi= set?)");
        }
    }
}
