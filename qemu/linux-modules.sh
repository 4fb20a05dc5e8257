#!/usr/bin/env bash
# The Debian kernel modules a Linux guest needs to mount an ext2 disk on virtio-blk (Debian
# builds virtio, virtio_blk and ext4, which serves ext2, as modules): extracted from the
# package qemu/linux.sh downloaded into build/linux/<arch>/modules/, with load-order.txt
# listing them in dependency order (the ones the package lacks, because they are built in on
# that architecture, are left out). Idempotent.
#
# usage: linux-modules.sh x86_64|aarch64 ...   Prints the modules directory per arch.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- x86_64 aarch64
order="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_mmio virtio_blk
crc16 mbcache jbd2 crc32c_generic libcrc32c ext4"
for arch in "$@"; do
    case "$arch" in
        x86_64 | x86 | amd64) arch=x86_64 debarch=amd64 ;;
        aarch64 | arm64) arch=aarch64 debarch=arm64 ;;
        *) echo "linux-modules.sh: unknown arch $arch" >&2; exit 1 ;;
    esac
    bash qemu/linux.sh "$arch" >/dev/null
    out=build/linux/$arch/modules
    if [ -s "$out/load-order.txt" ]; then
        echo "$out"
        continue
    fi
    deb=$(ls build/linux/"$arch"/deb/linux-image-6.1.0-*-"$debarch"_*.deb | sort -V | tail -n 1)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    patterns=()
    for m in $order; do patterns+=("*/$m.ko"); done
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards "${patterns[@]}" 2>/dev/null || true
    mkdir -p "$out"
    : > "$out/load-order.txt.tmp"
    for m in $order; do
        f=$(find "$tmp" -name "$m.ko" | head -n 1)
        [ -n "$f" ] || continue
        cp "$f" "$out/$m.ko"
        echo "$m.ko" >> "$out/load-order.txt.tmp"
    done
    mv "$out/load-order.txt.tmp" "$out/load-order.txt"
    rm -rf "$tmp"
    trap - EXIT
    echo "$out"
done
