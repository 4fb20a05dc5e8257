#!/bin/sh
# The ext2 workload: run as root with the disk of mkimage.sh as /dev/vda, on Cairn and on
# Linux (record.sh); it prints what it finds and the two outputs must be equal. Untar, copy,
# rename, delete, append, truncate, hard and symbolic links, a sparse file past the
# double-indirect range, a 2 MiB file, sync/sync/umount and a second mount.
set -e
mkdir -p /mnt
mount -t ext2 /dev/vda /mnt
cd /mnt
tar -cf src.tar src
mkdir un
tar -xf src.tar -C un
cp -r un/src copy
mv copy/a copy/a.moved
mv un/src/dir1 un/dir1-moved
mv copy/dir2/n1 copy/dir2/n1-renamed
rm -r un/src/dir2
rm copy/b copy/dir2/n3*
echo appended >> copy/c
seq 1 5000 >> copy/c
dd if=un/src/big of=trunc bs=1k count=300 2>/dev/null
truncate -s 77777 trunc
truncate -s 123456 copy/dir1/f1
ln copy/c hard
ln -s copy/c soft
ln -s /nowhere dangling
# Past the double-indirect range with 1 KiB blocks (12 + 256 + 65536 blocks): a triple
# indirect block, written at 70000 KiB.
echo far-away | dd of=sparse bs=1024 seek=70000 conv=notrunc 2>/dev/null
seq 1 300000 > numbers
sync
rm src.tar
fsync_demo=$(sed -n 299999p numbers)
echo "line 299999: $fsync_demo"
echo "sparse tail: $(tail -c 9 sparse)"
echo "sparse size: $(stat -c %s sparse)"
echo "== files"
find . | sort
echo "== types and links"
find . ! -name lost+found | sort | while read -r f; do stat -c '%n %F %h %a' "$f"; done
echo "== sizes"
find . -type f | sort | while read -r f; do stat -c '%n %s' "$f"; done
echo "== sums"
find . -type f ! -name sparse | sort | xargs md5sum
echo "== links"
for l in soft dangling copy/link-to-a; do echo "$l -> $(readlink "$l")"; done
echo "== statfs"
stat -f -c 'type %T block %S blocks %b inodes %c' .
cd /
umount /mnt
mount -t ext2 -o ro /dev/vda /mnt
echo "== after remount"
md5sum /mnt/copy/c /mnt/hard /mnt/trunc /mnt/numbers
cat /mnt/soft | tail -n 1
umount /mnt
