//! The supervisor: waits for death notices from the nucleus and restarts servers according to
//! their declared policy (`server_rt::RestartPolicy`).
//!
//! Back-off and crash loops: deaths the server caused itself (panic, fault, stack overflow,
//! exit) count as failures. A failure is followed by a back-off that doubles with each recent
//! failure (1 ms, 2 ms, 4 ms ... capped at `MAX_BACKOFF_NS`); more than `CRASH_LOOP_LIMIT`
//! failures within `CRASH_LOOP_WINDOW_NS` hold the server (not restarted; its clients keep
//! getting `ServerDied`), visibly. Deaths from outside (`Killed`, fault injection) restart at
//! once and do not count: a test that kills a healthy server a thousand times is not a crash
//! loop.
#![no_std]
#![deny(unsafe_code)]

use server_rt::{kernel, log, DeathCause, RestartPolicy};

pub const CRASH_LOOP_LIMIT: usize = 5;
pub const CRASH_LOOP_WINDOW_NS: u64 = 10_000_000_000;
pub const MAX_BACKOFF_NS: u64 = 1_000_000_000;
const MAX_SERVERS: usize = 32;

/// Recent failure times of one server (a small ring).
#[derive(Clone, Copy)]
struct History {
    failures: [u64; CRASH_LOOP_LIMIT + 1],
    next: usize,
    held: bool,
}

impl History {
    const fn new() -> Self {
        History { failures: [0; CRASH_LOOP_LIMIT + 1], next: 0, held: false }
    }

    /// Records a failure at `now`; returns how many failures fall inside the window.
    fn record(&mut self, now: u64) -> usize {
        self.failures[self.next] = now;
        self.next = (self.next + 1) % self.failures.len();
        self.failures.iter().filter(|&&t| t != 0 && now.saturating_sub(t) < CRASH_LOOP_WINDOW_NS).count()
    }
}

pub fn main() {
    let k = kernel();
    let mut history = [History::new(); MAX_SERVERS];
    loop {
        let notice = match k.wait_death() {
            Ok(n) => n,
            Err(e) => {
                log!("supervisor: cannot wait for deaths: {e}");
                return;
            }
        };
        let Some(spec) = k.servers().get(notice.server) else { continue };
        log!(
            "supervisor: '{}' instance {} died: {} ({} request(s) failed)",
            spec.name,
            notice.instance,
            notice.cause,
            notice.failed_requests
        );
        let h = &mut history[notice.server % MAX_SERVERS];
        if spec.policy == RestartPolicy::Never || h.held {
            continue;
        }
        if !matches!(notice.cause, DeathCause::Killed) {
            let recent = h.record(k.now_ns());
            if recent > CRASH_LOOP_LIMIT {
                h.held = true;
                log!(
                    "supervisor: '{}' failed {} times in {} s: crash loop, holding it",
                    spec.name,
                    recent,
                    CRASH_LOOP_WINDOW_NS / 1_000_000_000
                );
                continue;
            }
            let backoff = (1_000_000u64 << (recent.saturating_sub(1))).min(MAX_BACKOFF_NS);
            k.sleep_ns(backoff);
        }
        match k.spawn(notice.server) {
            Ok(instance) => log!("supervisor: '{}' restarted as instance {}", spec.name, instance),
            Err(e) => log!("supervisor: cannot restart '{}': {e}", spec.name),
        }
    }
}
