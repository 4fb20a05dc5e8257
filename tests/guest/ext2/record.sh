#!/bin/bash
# Records what Linux prints for the ext2 workload: boots Debian's kernel in QEMU (TCG, the
# harness's machine: 512 MiB, one CPU) with the image mkimage.sh makes as a virtio-blk disk,
# loads the modules it needs (qemu/linux-modules.sh), runs workload.sh and writes the lines
# from "== ext2_workload" through "== end <status>" to workload.expected. The guest test
# `ext2-workload-vs-linux` (tests/src/ext2.rs) compares Cairn's output with that file; the
# image Linux leaves must be e2fsck-clean too.
#
# usage: record.sh [x86_64|aarch64]      (default x86_64; aarch64 compares with the recording)
# Needs: bash qemu/rootfs.sh ARCH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
arch=${1:-x86_64}
modules=$root/$(cd "$root" && bash qemu/linux-modules.sh "$arch")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cp -a "$root/build/$arch/rootfs" "$work/tree"
mkdir -p "$work/tree/lib/modules" "$work/tree/usr/libexec/cairn"
cp "$modules"/*.ko "$work/tree/lib/modules/"
cp "$here/workload.sh" "$work/tree/usr/libexec/cairn/ext2-workload"
{
    echo '#!/bin/sh'
    echo 'mount -t proc proc /proc; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp'
    while read -r m; do echo "insmod /lib/modules/$m"; done < "$modules/load-order.txt"
    echo 'echo'
    echo "echo '== ext2_workload'; /usr/libexec/cairn/ext2-workload; echo \"== end \$?\""
    echo 'poweroff -f'
} > "$work/tree/init"
chmod 755 "$work/tree/init"
(cd "$work/tree" && find . | cpio -o -H newc --quiet > "$work/initrd.cpio")
bash "$here/mkimage.sh" "$work/disk.img" 1024 64
case "$arch" in
    x86_64) qemu=(qemu-system-x86_64 -M pc -cpu max) kernel=$root/build/linux/x86_64/vmlinuz dev=virtio-blk-pci
        append="console=ttyS0 mitigations=off nokaslr quiet" ;;
    aarch64) qemu=(qemu-system-aarch64 -M virt -cpu cortex-a57) kernel=$root/build/linux/aarch64/Image dev=virtio-blk-device
        append="console=ttyAMA0 mitigations=off nokaslr kpti=0 quiet" ;;
esac
timeout 900 "${qemu[@]}" -m 512M -smp 1 -nographic -no-reboot -monitor none -nic none \
    -drive file="$work/disk.img",format=raw,if=none,id=disk -device "$dev",drive=disk \
    -kernel "$kernel" -initrd "$work/initrd.cpio" -append "$append" > "$work/out.txt" 2>&1 </dev/null || true
tr -d '\r' < "$work/out.txt" | grep -v '^\[ *[0-9.]*\]' > "$work/clean.txt"
out=$work/workload.expected
sed -n '/^== ext2_workload$/,/^== end [0-9]*$/p' "$work/clean.txt" > "$out"
grep -q '^== end 0$' "$out" || { echo "record: the workload did not finish:" >&2; tail -30 "$work/clean.txt" >&2; exit 1; }
e2fsck -fn "$work/disk.img" >/dev/null || { echo "record: Linux left an unclean image" >&2; exit 1; }
if [ "$arch" = x86_64 ]; then
    cp "$out" "$here/workload.expected"
    echo "recorded $(wc -l < "$out") lines"
elif cmp -s "$out" "$here/workload.expected"; then
    echo "aarch64 output equals the x86_64 recording"
else
    diff "$here/workload.expected" "$out" >&2 || true
    echo "aarch64 differs from the x86_64 recording" >&2
    exit 1
fi
