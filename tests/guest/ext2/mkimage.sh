#!/bin/bash
# Makes the disk image of the ext2 guest tests, the same bytes every time: an ext2 file system
# (mke2fs -t ext2: rev 1, sparse_super, large_file, filetype) holding a small generated tree
# under /src, with a fixed UUID, hash seed and time.
#
# usage: mkimage.sh OUT [BLOCK_SIZE (1024)] [MIB (64)] [ROOTFS_DIR]
# With ROOTFS_DIR the tree is that directory instead (a root file system for root=/dev/vda).
set -euo pipefail
out=$1 bs=${2:-1024} mib=${3:-64} rootfs=${4:-}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
if [ -n "$rootfs" ]; then
    cp -a "$rootfs/." "$tmp/"
else
    src=$tmp/src
    mkdir -p "$src/dir1/deep" "$src/dir2" "$src/empty"
    seq 1 3000 > "$src/a"
    printf 'bravo\n%.0s' $(seq 1 200) > "$src/b"
    seq 10 10 50000 > "$src/c"
    for i in 1 2 3 4 5 6 7 8; do seq "$i" "$i" 2000 > "$src/dir1/f$i"; done
    for i in 1 2 3 4 5; do seq "$((i * 7))" 3 900 > "$src/dir1/deep/g$i"; done
    for i in $(seq 1 40); do echo "file $i" > "$src/dir2/n$i"; done
    # A file through the single- and double-indirect ranges (1 KiB blocks: from 12 KiB and
    # from 268 KiB).
    awk 'BEGIN { for (i = 0; i < 60000; i++) printf "%08d line of the big file\n", i }' > "$src/big"
    ln -s a "$src/link-to-a"
    find "$tmp" -exec touch -h -d '2026-01-02 03:04:05' {} +
fi
rm -f "$out"
truncate -s "${mib}M" "$out"
E2FSPROGS_FAKE_TIME=1767323045 mke2fs -q -F -t ext2 -b "$bs" -m 5 \
    -U 6b3f0c52-5a1e-4f0b-9d7c-2e8a1c3b4d5e -E hash_seed=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 \
    -d "$tmp" "$out" >/dev/null
