//! Fault-injection guest tests, generated from the server table (`server_table::SERVERS`): one
//! per server that a program's work passes through — the Linux ABI server and every server it
//! can reach through its capabilities — so that a new server is covered by adding it to the
//! table, not by writing a test.
//!
//! Each test runs a BusyBox workload (files created, copied, grepped, sorted, archived,
//! compressed, renamed, linked and deleted, then everything checksummed) once without faults,
//! then again while the server is killed at random points, until it has been killed at least
//! [`MIN_KILLS`] times. Transparent servers get two tests, one per way in: the guest writes
//! `random <ms> <seed>` to `/sys/kernel/servers/<name>/fault` (`kill-<name>-during-workload`),
//! or the host test harness sends `<name> random <ms> <seed>` on the nucleus's control channel
//! (`kill-<name>-from-host`, see `nucleus::control`).
//! Servers on the disk's path (a driver of a block device, or a server that calls one: `blk`,
//! `ext2`) run the workload on the ext2 file system of a disk made by `mke2fs`, mounted on
//! `/mnt` and written back (`sync`) every round; the image must be `e2fsck -fn` clean after
//! the final `umount`.
//! What the policy promises is checked:
//!
//! * *transparent*: the faulted run's checksums equal the fault-free run's, byte for byte —
//!   nothing lost, nothing doubled, no error seen by the workload;
//! * *reset* (servers whose state dies with them): the system goes on — the workload's errors
//!   are clean errnos, and a command run afterwards works;
//! * the Linux ABI server itself (*reset*): its processes die with it, and the new instance
//!   starts `/init` again, which finds the files the first run left.

use crate::guest::{DiskSpec, GuestTest};
use server_rt::{DeviceClass, RestartPolicy, VIRTIO_BLOCK};
use std::sync::OnceLock;
use std::time::Duration;

/// Kills each transparent server must survive per test run.
pub const MIN_KILLS: u64 = 20;

/// The workload: `work DIR TAG` leaves the checksums of everything it made in /tmp/sums.TAG.
const WORKLOAD: &str = r#"
work() {
    d=$1
    rm -rf "$d"
    mkdir -p "$d/src/deep/er" "$d/dst" || return 1
    i=0
    while [ $i -lt 24 ]; do
        seq $i $((i * 5 + 3)) > "$d/src/f$i" || return 1
        i=$((i + 1))
    done
    printf 'pear 3\napple 10\nfig 2\napple 10\nbanana 7\n' > "$d/src/deep/er/fruit"
    cp -r "$d/src/." "$d/dst/" || return 1
    cat "$d"/dst/f* | sort -n | uniq -c | sort -rn | head -n 12 > "$d/top"
    (cd "$d" && grep -c 7 dst/f*) > "$d/counts"
    sort -k2,2n "$d/dst/deep/er/fruit" | awk '{print $1, $2 * 2}' > "$d/fruit2"
    for f in "$d"/dst/f1*; do mv "$f" "$f.renamed" || return 1; done
    ln "$d/dst/f2" "$d/hard" && ln -s dst/f3 "$d/soft" || return 1
    echo appended >> "$d/dst/f4"
    rm -f "$d"/dst/f5* "$d/dst/f6"
    tar -cf "$d/t.tar" -C "$d" dst && mkdir "$d/x" && tar -xf "$d/t.tar" -C "$d/x" || return 1
    # Archives carry file times, which differ between runs: keep their listings, not them.
    gzip -c "$d/t.tar" > "$d/t.tar.gz" && gunzip -c "$d/t.tar.gz" | tar -tf - | sort > "$d/tarlist" || return 1
    rm "$d/t.tar" "$d/t.tar.gz"
    # The listing goes outside the tree: `find | sort > file` inside it would race the
    # file's creation against find's walk.
    (cd "$d" && find . | sort && find . -type f | sort | xargs md5sum) > "/tmp/sums.$2"
}
"#;

/// Who starts and stops the random kills.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Injector {
    Guest,
    Host,
}

/// The control lines of a `kill-<name>-from-host` test, sent as the script's markers show.
fn host_steps(server: &str) -> &'static [(&'static str, &'static str)] {
    Box::leak(Box::new([
        ("@@HOST-RANDOM", leak(format!("{server} random 30 7"))),
        ("@@HOST-STOP", leak(format!("{server} stop"))),
    ]))
}

/// Where a fault test's workload runs: `/tmp` (ramfs), or for a server on the disk's path the
/// ext2 file system of the test's disk, mounted on `/mnt`, written back every round.
struct Place {
    dir: &'static str,
    setup: &'static str,
    round_end: &'static str,
    teardown: &'static str,
}

const IN_TMP: Place = Place { dir: "/tmp", setup: "", round_end: "", teardown: "" };
const ON_DISK: Place = Place {
    dir: "/mnt",
    setup: "mkdir -p /mnt && mount -t ext2 /dev/vda /mnt || echo \"reference run failed: no mount\"",
    round_end: "sync",
    teardown: "sync\numount /mnt && echo UMOUNTED",
};

/// Whether `s`'s work needs the disk: it drives a block device, or calls a server that does.
fn on_disk(s: &server_rt::ServerSpec) -> bool {
    let drives = |s: &server_rt::ServerSpec| s.devices.contains(&DeviceClass::Virtio(VIRTIO_BLOCK));
    drives(s) || s.may_call.iter().any(|n| server_table::SERVERS.iter().any(|t| t.name == *n && drives(t)))
}

fn transparent_script(server: &str, by: Injector, at: &Place) -> String {
    let (start, stop) = match by {
        Injector::Guest => (
            format!("echo random 30 7 > /sys/kernel/servers/{server}/fault"),
            format!("echo stop > /sys/kernel/servers/{server}/fault"),
        ),
        Injector::Host => ("echo @@HOST-RANDOM".to_string(), "echo @@HOST-STOP".to_string()),
    };
    let Place { dir, setup, round_end, teardown } = at;
    format!(
        r#"#!/bin/sh
{WORKLOAD}
{setup}
work {dir}/ref ref || echo "reference run failed"
echo "reference: $(wc -l < /tmp/sums.ref) files"
before=$(sed -n 's/^instance: //p' /sys/kernel/servers/{server}/status)
{start}
round=0
while :; do
    round=$((round + 1))
    work {dir}/run run || echo "WORKLOAD-ERROR in round $round"
    {round_end}
    cmp -s /tmp/sums.ref /tmp/sums.run || {{ echo "WORKLOAD-DIFFERS in round $round"; diff /tmp/sums.ref /tmp/sums.run | grep "^[-+][0-9a-f.]" | head -n 6; }}
    now=$(sed -n 's/^instance: //p' /sys/kernel/servers/{server}/status)
    [ $((now - before)) -ge {MIN_KILLS} ] && break
    [ $round -ge 40 ] && break
done
{stop}
sleep 1
now=$(sed -n 's/^instance: //p' /sys/kernel/servers/{server}/status)
echo "kills: $((now - before)) in $round round(s)"
cmp -s /tmp/sums.ref /tmp/sums.run && echo WORKLOAD-MATCH
{teardown}
"#
    )
}

fn reset_script(server: &str) -> String {
    format!(
        r#"#!/bin/sh
{WORKLOAD}
echo random 50 7 > /sys/kernel/servers/{server}/fault
work /tmp/run run 2>/dev/null
work /tmp/run run 2>/dev/null
echo stop > /sys/kernel/servers/{server}/fault
sleep 1
echo "after-reset: $(echo alive | tr a-z A-Z)"
"#
    )
}

/// The Linux ABI server: killed once, its processes die and the new instance starts /init
/// again; files written by the first run are still there.
const LINUX_SCRIPT: &str = r#"#!/bin/sh
if [ -e /tmp/first-run ]; then
    echo "init again after: $(cat /tmp/first-run)"
    grep -E "^(instance|last-death)" /sys/kernel/servers/linux/status
    exit 0
fi
echo "the first run" > /tmp/first-run
sleep 100 &
echo kill > /sys/kernel/servers/linux/fault
sleep 10
echo "SURVIVED-LINUX-DEATH"
"#;

/// Checks that a transparent run was killed at least MIN_KILLS times.
fn enough_kills(transcript: &str) -> Result<(), String> {
    let line = transcript.lines().find(|l| l.starts_with("kills: ")).ok_or("no kill count")?;
    let n: u64 =
        line["kills: ".len()..].split_whitespace().next().and_then(|w| w.parse().ok()).ok_or("bad kill count")?;
    if n < MIN_KILLS {
        return Err(format!("the server was killed {n} times, fewer than {MIN_KILLS}"));
    }
    Ok(())
}

/// The servers a program's work passes through: `linux` and everything reachable from its
/// capabilities.
fn covered() -> Vec<&'static server_rt::ServerSpec> {
    let table = &server_table::SERVERS;
    let mut out: Vec<&server_rt::ServerSpec> = Vec::new();
    let mut todo: Vec<&str> = table.iter().filter(|s| s.user_memory).map(|s| s.name).collect();
    while let Some(name) = todo.pop() {
        if out.iter().any(|s| s.name == name) {
            continue;
        }
        if let Some(s) = table.iter().find(|s| s.name == name && s.autostart) {
            out.push(s);
            todo.extend(s.may_call.iter().copied());
        }
    }
    out.sort_by_key(|s| s.name);
    out
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn generate() -> Vec<GuestTest> {
    covered()
        .into_iter()
        .flat_map(|s| {
            let name = s.name;
            if s.user_memory {
                return vec![GuestTest {
                    name: leak(format!("kill-{name}-restarts-init")),
                    overlay: Box::leak(Box::new([("init", LINUX_SCRIPT, true)])),
                    expect: &[
                        "address space(s) of the dead server freed",
                        "' instance 1 died: killed",
                        "init again after: the first run",
                        "instance: 2",
                        "last-death: killed",
                        "@@POWEROFF 0",
                    ],
                    forbid: &["SURVIVED-LINUX-DEATH"],
                    ..GuestTest::DEFAULT
                }];
            }
            let disk = on_disk(s);
            let transparent = |by: Injector| {
                let (test, mut expect): (String, Vec<&'static str>) = match by {
                    Injector::Guest => {
                        (format!("kill-{name}-during-workload"), vec!["reference: ", "kills: ", "WORKLOAD-MATCH"])
                    }
                    Injector::Host => (
                        format!("kill-{name}-from-host"),
                        vec![
                            "reference: ",
                            leak(format!("control: {name} random 30 7: ok")),
                            leak(format!("control: {name} stop: ok")),
                            "kills: ",
                            "WORKLOAD-MATCH",
                        ],
                    ),
                };
                if disk {
                    expect.push("UMOUNTED");
                }
                expect.push("@@POWEROFF 0");
                let expect: &'static [&'static str] = expect.leak();
                let place = if disk { &ON_DISK } else { &IN_TMP };
                GuestTest {
                    name: leak(test),
                    overlay: Box::leak(Box::new([("init", leak(transparent_script(name, by, place)), true)])),
                    // On the disk's path: the workload's ext2 image, e2fsck-clean afterwards.
                    disk: disk.then_some(DiskSpec {
                        mib: crate::ext2::WORKLOAD_MIB,
                        read_only: false,
                        fill: Some(crate::ext2::workload_image),
                        check: Some(crate::ext2::image_clean),
                        root_fs: false,
                    }),
                    expect,
                    forbid: &["WORKLOAD-ERROR", "WORKLOAD-DIFFERS", "reference run failed"],
                    timeout: Duration::from_secs(600),
                    post_check: Some(enough_kills),
                    host_control: if by == Injector::Host { host_steps(name) } else { &[] },
                    ..GuestTest::DEFAULT
                }
            };
            match s.policy {
                RestartPolicy::Transparent => vec![transparent(Injector::Guest), transparent(Injector::Host)],
                _ => vec![GuestTest {
                    name: leak(format!("kill-{name}-resets")),
                    overlay: Box::leak(Box::new([("init", leak(reset_script(name)), true)])),
                    expect: &["after-reset: ALIVE", "@@POWEROFF 0"],
                    timeout: Duration::from_secs(300),
                    ..GuestTest::DEFAULT
                }],
            }
        })
        .collect()
}

/// The generated tests (made once).
pub fn tests() -> &'static [GuestTest] {
    static TESTS: OnceLock<Vec<GuestTest>> = OnceLock::new();
    TESTS.get_or_init(generate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_linux_reaches_has_a_test() {
        let names: Vec<&str> = tests().iter().map(|t| t.name).collect();
        for s in ["linux", "vfs", "tty", "ramfs", "ext2", "blk"] {
            assert!(names.iter().any(|n| n.starts_with(&format!("kill-{s}-"))), "{s}: {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains("echo")), "test servers are not in the workload's path");
        let disk: Vec<&str> = tests().iter().filter(|t| t.disk.is_some()).map(|t| t.name).collect();
        assert!(disk.iter().any(|n| n.starts_with("kill-ext2-")) && disk.iter().any(|n| n.starts_with("kill-blk-")));
        assert!(!disk.iter().any(|n| n.starts_with("kill-vfs-")), "{disk:?}");
        for t in tests() {
            assert!(t.lint().is_empty(), "{:?}", t.lint());
        }
    }
}
