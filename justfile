# Cairn: the user's entry points. Every recipe installs what it needs first (qemu/setup.sh).
#
#   just qemu-x86            boot x86_64 with the console on this terminal
#   just qemu-arm64          the same on AArch64
#   just test                host unit tests + guest tests on both architectures
#   just bench               boot time, IPC round trips, Cairn against Linux
#   just bench-ext2          the disk file system against Linux's ext2 on the same image
#   just bench-trace         what tracing costs (off, on, compiled out) and what its stream carries
#   just trace -- 'CMD'      run CMD traced and analyze the IPC trace (ARCH=arm64 for AArch64)
#   just rootdisk ARCH OUT   an ext2 disk image with the root file system (DISK=OUT boots from it)
#   just debian-root         a Debian bookworm root on an ext2 image (DISK=build/debian.img)
#
# Variables: OVERLAY=DIR adds DIR's files to the guest's initial root file system;
# APPEND="..." adds kernel command-line words (e.g. APPEND="test=ticks");
# DISK=IMAGE attaches a raw disk image as a virtio-blk device (`just qemu-x86 DISK=disk.img`,
# or `just DISK=disk.img qemu-arm64`); if it holds an ext2 file system it is the root file
# system (`root=/dev/vda`; APPEND="root=initramfs" keeps the initramfs, and the disk can be
# mounted with `mount -t ext2 /dev/vda /mnt`). `just rootdisk x86_64 disk.img` makes one with
# the BusyBox root file system; `truncate -s 64M disk.img` a blank one;
# CONTROL=SOCKET opens the host's fault-injection channel as a Unix socket: from another
# terminal, `socat - UNIX-CONNECT:SOCKET` and type `vfs kill`, `ramfs random 50 7`, `tty stop`...

set shell := ["bash", "-euo", "pipefail", "-c"]

OVERLAY := env_var_or_default("OVERLAY", "")
APPEND := env_var_or_default("APPEND", "")
DISK := env_var_or_default("DISK", "")
CONTROL := env_var_or_default("CONTROL", "")
objcopy := `echo "$(rustc --print sysroot 2>/dev/null)/lib/rustlib/$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')/bin/llvm-objcopy"`

# Boot x86_64 and drop into BusyBox sh on the serial console (`DISK=IMAGE` attaches a disk).
qemu-x86 *ARGS: setup (kernel "x86_64") (initramfs "x86_64")
    #!/usr/bin/env bash
    set -euo pipefail
    disk="{{DISK}}"; control="{{CONTROL}}"
    for a in {{ARGS}}; do case "$a" in DISK=*) disk="${a#DISK=}" ;; CONTROL=*) control="${a#CONTROL=}" ;; *) echo "unknown argument $a" >&2; exit 2 ;; esac; done
    append="{{APPEND}}"
    # A disk that holds an ext2 file system is the root file system, unless APPEND names one.
    if [ -n "$disk" ] && [[ "$append" != *root=* ]] && [ "$(od -An -tx1 -j1080 -N2 "$disk" | tr -d ' \n')" = 53ef ]; then
        append="$append root=/dev/vda"
    fi
    cargo run -q --release -p tests --bin run -- --arch x86_64 \
        --kernel target/x86_64-unknown-none/release/kernel \
        --initrd build/x86_64/initramfs.cpio --append "$append" ${disk:+--disk "$disk"} ${control:+--control "$control"}

# Boot AArch64 and drop into BusyBox sh on the serial console (`DISK=IMAGE` attaches a disk).
qemu-arm64 *ARGS: setup (kernel "aarch64") (initramfs "aarch64")
    #!/usr/bin/env bash
    set -euo pipefail
    disk="{{DISK}}"; control="{{CONTROL}}"
    for a in {{ARGS}}; do case "$a" in DISK=*) disk="${a#DISK=}" ;; CONTROL=*) control="${a#CONTROL=}" ;; *) echo "unknown argument $a" >&2; exit 2 ;; esac; done
    append="{{APPEND}}"
    # A disk that holds an ext2 file system is the root file system, unless APPEND names one.
    if [ -n "$disk" ] && [[ "$append" != *root=* ]] && [ "$(od -An -tx1 -j1080 -N2 "$disk" | tr -d ' \n')" = 53ef ]; then
        append="$append root=/dev/vda"
    fi
    cargo run -q --release -p tests --bin run -- --arch aarch64 \
        --kernel build/aarch64/Image \
        --initrd build/aarch64/initramfs.cpio --append "$append" ${disk:+--disk "$disk"} ${control:+--control "$control"}

# Lint, host unit tests (with loom), then every guest test on both architectures.
test: setup lint (kernel "x86_64") (kernel "aarch64") (rootfs "x86_64") (rootfs "aarch64")
    cargo test --workspace --exclude kernel --exclude arch --exclude nucleus -q 2>&1 | tail -n 40
    RUSTFLAGS="--cfg loom" cargo test -q -p ipc --release --lib loom --target-dir target/loom 2>&1 | tail -n 5
    cargo run -q --release -p tests --bin guest-tests -- --arch all

# Benchmarks: boot time, IPC round trips, Cairn against stock Debian Linux (tests/guest/bench).
bench ARCH="all": setup (kernel "x86_64") (kernel "aarch64") (rootfs "x86_64") (rootfs "aarch64") (_bench-guest ARCH)
    cargo run -q --release -p tests --bin bench -- --arch {{ARCH}}

# The disk file system against Linux's ext2 on the same image (tests/src/bin/bench-ext2.rs).
bench-ext2 ARCH="all": setup (kernel "x86_64") (kernel "aarch64") (rootfs "x86_64") (rootfs "aarch64")
    #!/usr/bin/env bash
    set -euo pipefail
    case "{{ARCH}}" in all) arches="x86_64 aarch64" ;; x86|amd64) arches=x86_64 ;; arm64|arm) arches=aarch64 ;; *) arches="{{ARCH}}" ;; esac
    bash qemu/linux-modules.sh $arches >/dev/null
    for arch in $arches; do
        case "$arch" in x86_64) cc=gcc ;; aarch64) cc=aarch64-linux-gnu-gcc ;; esac
        mkdir -p build/$arch/bench/ext2
        "$cc" -O2 -static -Wall -Wextra -o build/$arch/bench/ext2/fsbench tests/guest/ext2/fsbench.c
    done
    cargo run -q --release -p tests --bin bench-ext2 -- --arch {{ARCH}}

# Tracing's numbers: trace points off/on against a kernel with them compiled out, the port's
# rate; and what the supervision machinery costs (against a kernel with it compiled out).
bench-trace ARCH="all": setup (kernel "x86_64") (kernel "aarch64") (rootfs "x86_64") (rootfs "aarch64") (_bench-guest ARCH)
    cargo build -q --release -p kernel --target x86_64-unknown-none --features nucleus/notrace --target-dir target/notrace
    cargo build -q --release -p kernel --target aarch64-unknown-none --features nucleus/notrace --target-dir target/notrace
    mkdir -p build/aarch64/notrace && "{{objcopy}}" -O binary target/notrace/aarch64-unknown-none/release/kernel build/aarch64/notrace/Image
    cargo build -q --release -p kernel --target x86_64-unknown-none --features nucleus/nosupervise --target-dir target/nosupervise
    cargo build -q --release -p kernel --target aarch64-unknown-none --features nucleus/nosupervise --target-dir target/nosupervise
    mkdir -p build/aarch64/nosupervise && "{{objcopy}}" -O binary target/nosupervise/aarch64-unknown-none/release/kernel build/aarch64/nosupervise/Image
    cargo run -q --release -p tests --bin bench-trace -- --arch {{ARCH}}

# (bench) The Debian kernels (qemu/linux.sh) and the static benchmark programs, per architecture.
_bench-guest ARCH:
    #!/usr/bin/env bash
    set -euo pipefail
    case "{{ARCH}}" in all) arches="x86_64 aarch64" ;; x86|amd64) arches=x86_64 ;; arm64|arm) arches=aarch64 ;; *) arches="{{ARCH}}" ;; esac
    bash qemu/linux.sh $arches >/dev/null
    for arch in $arches; do
        case "$arch" in x86_64) cc=gcc ;; aarch64) cc=aarch64-linux-gnu-gcc ;; esac
        out=build/$arch/bench/guest/bench
        mkdir -p "$out"
        for src in tests/guest/bench/*.c; do
            name=$(basename "$src" .c)
            [ "$name" != common ] || continue
            if [ ! "$out/$name" -nt "$src" ] || [ ! "$out/$name" -nt tests/guest/bench/common.c ]; then
                "$cc" -O2 -static -Wall -Wextra -o "$out/$name" "$src" tests/guest/bench/common.c
            fi
        done
    done

# Trace a shell command (`just trace -- 'cat /etc/passwd'`; ARCH=arm64 for AArch64): files in build/trace/.
trace *CMD: setup
    #!/usr/bin/env bash
    set -euo pipefail
    arch=$([ "${ARCH:-x86}" = arm64 ] || [ "${ARCH:-x86}" = aarch64 ] && echo aarch64 || echo x86_64)
    cmd='{{CMD}}'; cmd="${cmd#-- }"
    just kernel "$arch" && just rootfs "$arch"
    out=build/trace; mkdir -p "$out/overlay"
    printf '#!/bin/sh\n%s\n' "$cmd" > "$out/overlay/init"; chmod +x "$out/overlay/init"
    cargo run -q --release -p qemu-tools --bin mkcpio -- -o "$out/initramfs.cpio" "build/$arch/rootfs" "$out/overlay"
    kernel=$([ "$arch" = aarch64 ] && echo build/aarch64/Image || echo target/x86_64-unknown-none/release/kernel)
    # The records stream to the host while the guest runs, over a virtio console (PCI on
    # x86_64, virtio-mmio on AArch64). Without one the kernel dumps them on the console at
    # power-off (the analyzer reads either).
    rm -f "$out/trace.bin"
    cargo run -q --release -p tests --bin run -- --arch "$arch" --kernel "$kernel" --initrd "$out/initramfs.cpio" \
        --append "trace=1 {{APPEND}}" --trace-stream "$out/trace.bin" < /dev/null > "$out/console.txt" || true
    grep -v '^@@TRACE' "$out/console.txt" | sed -n '/linux: started/,$p'
    grep '^@@TRACE-NAME' "$out/console.txt" | sed 's/^@@TRACE-NAME //' > "$out/names.txt" || true
    input="$out/console.txt"; [ -s "$out/trace.bin" ] && input="$out/trace.bin"
    cargo run -q --release -p trace-analyzer -- --names "$out/names.txt" --chrome "$out/trace.json" --html "$out/trace.html" "$input" | tee "$out/report.txt"
    echo "trace files: $input (raw), $out/report.txt, $out/trace.json (Perfetto), $out/trace.html"

# Install build dependencies (idempotent).
setup:
    bash qemu/setup.sh

# Build the kernel image for ARCH (x86_64 | aarch64).
kernel ARCH:
    @cargo build -q --release -p kernel --target {{ARCH}}-unknown-none
    @if [ "{{ARCH}}" = aarch64 ]; then mkdir -p build/aarch64 && "{{objcopy}}" -O binary target/aarch64-unknown-none/release/kernel build/aarch64/Image; fi

# An ext2 disk image holding the base root file system (for `just qemu-x86 DISK=OUT`).
rootdisk ARCH="x86_64" OUT="build/rootdisk.img" MIB="256": (rootfs ARCH)
    bash tests/guest/ext2/mkimage.sh {{OUT}} 4096 {{MIB}} build/{{ARCH}}/rootfs
    @echo "{{OUT}}: ext2, {{MIB}} MiB, root file system of {{ARCH}}"

# A Debian bookworm (minbase) root on an ext2 image, x86_64: `just qemu-x86 DISK=build/debian.img`.
debian-root OUT="build/debian.img" MIB="1024": setup (kernel "x86_64")
    bash qemu/debian-root.sh {{OUT}} {{MIB}}

# The base root file system directory (BusyBox + /etc).
rootfs ARCH:
    bash qemu/rootfs.sh {{ARCH}}

# The initramfs: the base root file system plus OVERLAY, as cpio newc.
initramfs ARCH: (rootfs ARCH)
    cargo run -q --release -p qemu-tools --bin mkcpio -- -o build/{{ARCH}}/initramfs.cpio build/{{ARCH}}/rootfs {{OVERLAY}}

# cargo fmt --check and clippy -D warnings on every crate and target.
lint:
    cargo fmt --all -- --check
    cargo clippy -q --workspace --exclude kernel --exclude arch --exclude nucleus --all-targets -- -D warnings
    cargo clippy -q -p kernel --target x86_64-unknown-none -- -D warnings
    cargo clippy -q -p kernel --target aarch64-unknown-none -- -D warnings
