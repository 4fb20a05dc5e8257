#!/bin/bash
# Records what Linux prints for conformance programs: runs each PROG (tests/guest/conformance/
# PROG.c, built into build/ARCH/rootfs by qemu/rootfs.sh) under Debian's Linux kernel in QEMU
# (TCG, the harness's machine: 512 MiB, one CPU) and writes the lines from "== PROG" through
# "== end <status>" to PROG.expected next to the source. The guest tests compare Cairn's
# output with these files (tests/src/guest.rs, `matches_linux`).
#
# usage: record.sh [x86_64|aarch64] PROG...      (default x86_64)
# Needs: bash qemu/linux.sh ARCH && bash qemu/rootfs.sh ARCH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
arch=x86_64
case "${1:-}" in x86_64 | aarch64) arch=$1; shift ;; esac
[ $# -gt 0 ] || { echo "usage: record.sh [x86_64|aarch64] PROG..." >&2; exit 2; }
rootfs=$root/build/$arch/rootfs
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cp -a "$rootfs" "$work/tree"
{
    echo '#!/bin/sh'
    echo 'mount -t proc proc /proc 2>/dev/null'
    echo 'mount -t devtmpfs dev /dev 2>/dev/null'
    echo 'mount -t tmpfs tmp /tmp 2>/dev/null'
    echo 'echo'
    for p in "$@"; do
        echo "echo '== $p'; /usr/libexec/cairn/$p; echo \"== end \$?\""
    done
    echo 'poweroff -f'
} > "$work/tree/init"
chmod 755 "$work/tree/init"
(cd "$work/tree" && find . | cpio -o -H newc --quiet > "$work/initrd.cpio")
case "$arch" in
    x86_64) qemu=(qemu-system-x86_64 -M pc -cpu max) kernel=$root/build/linux/x86_64/vmlinuz
        append="console=ttyS0 mitigations=off nokaslr quiet" ;;
    aarch64) qemu=(qemu-system-aarch64 -M virt -cpu cortex-a57) kernel=$root/build/linux/aarch64/Image
        append="console=ttyAMA0 mitigations=off nokaslr kpti=0 quiet" ;;
esac
timeout 900 "${qemu[@]}" -m 512M -smp 1 -nographic -no-reboot -monitor none -nic none \
    -kernel "$kernel" -initrd "$work/initrd.cpio" -append "$append" > "$work/out.txt" 2>&1 </dev/null || true
tr -d '\r' < "$work/out.txt" > "$work/clean.txt"
for p in "$@"; do
    out=$here/$p.expected
    [ "$arch" = x86_64 ] || out=$work/$p.$arch.expected
    sed -n "/^== $p\$/,/^== end [0-9]*\$/p" "$work/clean.txt" > "$out"
    grep -q '^== end [0-9]*$' "$out" || { echo "record: $p did not finish:" >&2; tail -20 "$work/clean.txt" >&2; exit 1; }
    if [ "$arch" != x86_64 ]; then
        if cmp -s "$out" "$here/$p.expected"; then
            echo "$p: aarch64 output equals the x86_64 recording"
        else
            cp "$out" "$here/$p.aarch64.expected"
            echo "$p: aarch64 differs from x86_64: wrote $p.aarch64.expected"
        fi
    else
        echo "$p: recorded $(wc -l < "$out") lines"
    fi
done
