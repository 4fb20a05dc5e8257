//! The server table: every server the kernel image contains, with its restart policy, priority,
//! memory budget and the endpoints it may call (its capabilities) — the one declarative list the
//! supervisor starts and restarts servers from. It is a crate of its own, not part of `boot/`,
//! so that host tools see the same table: the fault-injection guest tests are generated from
//! it, one per server, so a new server is covered without anyone writing its test.
#![no_std]
#![deny(unsafe_code)]

use server_rt::{DeviceClass, RestartPolicy, ServerSpec, VIRTIO_BLOCK};

/// Priorities: 0 is the highest. The supervisor outranks everything so that restarts happen
/// before clients retry.
const PRIO_SUPERVISOR: u8 = 0;
const PRIO_SERVER: u8 = 1;
const PRIO_CLIENT: u8 = 2;

pub static SERVERS: [ServerSpec; 14] = [
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
        devices: &[],
        dma_bytes: 0,
    },
    ServerSpec {
        name: "linux",
        entry: linux_server::main,
        priority: PRIO_SERVER,
        stack_bytes: 128 * 1024,
        arena_bytes: 32 << 20,
        policy: RestartPolicy::Reset,
        serves: true,
        may_call: &["vfs", "ramfs", "ext2", "tty"],
        // Started at boot; not during the nucleus's own tests (`test=` on the command line).
        autostart: true,
        supervisor: false,
        user_memory: true,
        state_bytes: 0,
        devices: &[],
        dma_bytes: 0,
    },
    ServerSpec {
        name: "tty",
        entry: tty_server::main,
        priority: PRIO_SERVER,
        stack_bytes: 64 * 1024,
        arena_bytes: 1 << 20,
        policy: RestartPolicy::Transparent,
        serves: true,
        may_call: &["linux"],
        autostart: true,
        supervisor: false,
        user_memory: false,
        state_bytes: 4096,
        devices: &[DeviceClass::Console],
        dma_bytes: 0,
    },
    ServerSpec {
        name: "vfs",
        entry: vfs_server::main,
        priority: PRIO_SERVER,
        stack_bytes: 128 * 1024,
        arena_bytes: 4 << 20,
        policy: RestartPolicy::Transparent,
        serves: true,
        may_call: &["ramfs", "ext2"],
        autostart: true,
        supervisor: false,
        user_memory: false,
        state_bytes: 64 * 1024,
        devices: &[],
        dma_bytes: 0,
    },
    ServerSpec {
        name: "ramfs",
        entry: ramfs_server::main,
        priority: PRIO_SERVER,
        stack_bytes: 128 * 1024,
        // The block cache and one request's buffers: the files live in the state area.
        arena_bytes: 16 << 20,
        policy: RestartPolicy::Transparent,
        serves: true,
        may_call: &[],
        autostart: true,
        supervisor: false,
        user_memory: false,
        // Every volume's ext2 image, sparse: pages exist only where blocks hold something.
        state_bytes: ramfs_server::store::STATE_BYTES,
        devices: &[],
        dma_bytes: 0,
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
        devices: &[],
        dma_bytes: 0,
    },
    ServerSpec {
        name: "testdriver",
        entry: selftest_servers::driver::main,
        priority: PRIO_CLIENT,
        stack_bytes: 64 * 1024,
        arena_bytes: 256 * 1024,
        policy: RestartPolicy::Never,
        // Serves only to receive notifications (the block clients say when they are done).
        serves: true,
        may_call: &["echo", "relay", "keeper", "blk", "blkc1", "blkc2", "blkc3"],
        autostart: false,
        supervisor: false,
        user_memory: false,
        state_bytes: 0,
        // The console-interrupt test (`console-irq`) drives the console's receive line.
        devices: &[DeviceClass::Console],
        dma_bytes: 0,
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
        devices: &[],
        dma_bytes: 0,
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
        devices: &[],
        dma_bytes: 0,
    },
    ServerSpec {
        name: "blk",
        entry: blk_server::main,
        priority: PRIO_SERVER,
        stack_bytes: 64 * 1024,
        arena_bytes: 256 * 1024,
        // Block reads and writes are idempotent: clients retry, the disk holds the state.
        policy: RestartPolicy::Transparent,
        serves: true,
        may_call: &[],
        // Started only if there is a virtio-blk device (the nucleus checks `devices`).
        autostart: true,
        supervisor: false,
        user_memory: false,
        state_bytes: 0,
        devices: &[DeviceClass::Virtio(VIRTIO_BLOCK)],
        // Sixteen 64 KiB request buffers, their headers and the virtqueue.
        dma_bytes: 2 << 20,
    },
    ServerSpec {
        name: "ext2",
        entry: ext2disk_server::main,
        priority: PRIO_SERVER,
        stack_bytes: 128 * 1024,
        // The clean-block cache and one request's buffers: dirty blocks live in the state area.
        arena_bytes: 16 << 20,
        // Dirty blocks, open references and request records are in the state area, the rest
        // on the disk: clients retry and never notice.
        policy: RestartPolicy::Transparent,
        serves: true,
        may_call: &["blk"],
        // Started always; without a disk it refuses mounts (ENXIO).
        autostart: true,
        supervisor: false,
        user_memory: false,
        // The write-back overlay (disk-shaped, sparse: pages only for dirty blocks).
        state_bytes: ext2disk_server::store::STATE_BYTES,
        devices: &[],
        dma_bytes: 0,
    },
    blk_client("blkc1", selftest_servers::blkclient::main1),
    blk_client("blkc2", selftest_servers::blkclient::main2),
    blk_client("blkc3", selftest_servers::blkclient::main3),
];

/// A block-device test client (`servers/selftest/src/blkclient.rs`): started at boot like the
/// other test servers, idle in `receive` until the test driver starts a run.
const fn blk_client(name: &'static str, entry: fn()) -> ServerSpec {
    ServerSpec {
        name,
        entry,
        priority: PRIO_CLIENT,
        stack_bytes: 32 * 1024,
        arena_bytes: 256 * 1024,
        policy: RestartPolicy::Transparent,
        serves: true,
        may_call: &["blk", "testdriver"],
        autostart: true,
        supervisor: false,
        user_memory: false,
        state_bytes: 0,
        devices: &[],
        dma_bytes: 0,
    }
}
