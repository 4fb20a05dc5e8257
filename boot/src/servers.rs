//! The server table: every server the kernel image contains, with its restart policy, priority,
//! memory budget and the endpoints it may call (its capabilities). The supervisor starts the
//! `autostart` ones at boot and restarts them by this table; tests are generated from it.

use server_rt::{RestartPolicy, ServerSpec};

/// Priorities: 0 is the highest. The supervisor outranks everything so that restarts happen
/// before clients retry.
const PRIO_SUPERVISOR: u8 = 0;
const PRIO_SERVER: u8 = 1;
const PRIO_CLIENT: u8 = 2;

pub static SERVERS: [ServerSpec; 6] = [
    ServerSpec {
        name: "supervisor",
        entry: supervisor::main,
        priority: PRIO_SUPERVISOR,
        stack_bytes: 32 * 1024,
        arena_bytes: 64 * 1024,
        policy: RestartPolicy::Transparent,
        serves: false,
        may_call: &[],
        autostart: true,
        supervisor: true,
        user_memory: false,
        state_bytes: 0,
    },
    ServerSpec {
        name: "linux",
        entry: linux_server::main,
        priority: PRIO_SERVER,
        stack_bytes: 128 * 1024,
        arena_bytes: 64 << 20,
        policy: RestartPolicy::Reset,
        serves: true,
        may_call: &[],
        // Started at boot; not during the nucleus's own tests (`test=` on the command line).
        autostart: true,
        supervisor: false,
        user_memory: true,
        state_bytes: 0,
    },
    ServerSpec {
        name: "echo",
        entry: selftest_servers::echo::main,
        priority: PRIO_SERVER,
        stack_bytes: 64 * 1024,
        arena_bytes: 64 * 1024,
        policy: RestartPolicy::Transparent,
        serves: true,
        may_call: &[],
        autostart: true,
        supervisor: false,
        user_memory: false,
        state_bytes: 0,
    },
    ServerSpec {
        name: "testdriver",
        entry: selftest_servers::driver::main,
        priority: PRIO_CLIENT,
        stack_bytes: 64 * 1024,
        arena_bytes: 256 * 1024,
        policy: RestartPolicy::Never,
        serves: false,
        may_call: &["echo", "relay", "keeper"],
        autostart: false,
        supervisor: false,
        user_memory: false,
        state_bytes: 0,
    },
    ServerSpec {
        name: "relay",
        entry: selftest_servers::relay::main,
        priority: PRIO_SERVER,
        stack_bytes: 32 * 1024,
        arena_bytes: 64 * 1024,
        policy: RestartPolicy::Transparent,
        serves: true,
        may_call: &["echo"],
        autostart: true,
        supervisor: false,
        user_memory: false,
        state_bytes: 0,
    },
    ServerSpec {
        name: "keeper",
        entry: selftest_servers::keeper::main,
        priority: PRIO_SERVER,
        stack_bytes: 32 * 1024,
        arena_bytes: 64 * 1024,
        policy: RestartPolicy::Transparent,
        serves: true,
        may_call: &[],
        autostart: true,
        supervisor: false,
        user_memory: false,
        state_bytes: 4096,
    },
];
