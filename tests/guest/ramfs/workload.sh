#!/bin/sh
# A file-system workload for the ramfs guest tests (tests/src/guest.rs): files and directories
# made, copied, searched, sorted, appended to, linked, renamed, archived and deleted, in the
# root volume (/tmp) and in a tmpfs (/mnt/t). Its output, with an md5sum listing of everything
# it leaves, must be the same whether or not ramfs is killed at random points while it runs
# (tests/guest/ramfs/expected.txt, recorded from a run without faults). Deterministic output
# only: no times, no sizes of directories, no pids.
export TZ=UTC LC_ALL=C PATH=/bin:/sbin:/usr/bin:/usr/sbin
mkdir -p /mnt/t && mount -t tmpfs tmpfs /mnt/t || echo "no tmpfs"
OUT=/tmp/workload.out
run() {
    D=$1
    rm -rf "$D"; mkdir -p "$D/a/b/c" && cd "$D" || return
    i=0; while [ $i -lt 60 ]; do echo "line $i $((i * i))" >> a/nums; i=$((i + 1)); done
    seq 1 30000 > a/seq
    cp /etc/passwd a/b/passwd
    cp a/seq a/b/c/seq.copy
    sort -rn a/seq | head -n 3
    grep -c 7 a/seq
    awk '{ s += $3 } END { print "sum", s }' a/nums
    sort -k3,3n a/nums | tail -n 2
    for f in x y z; do echo "file $f" > "a/b/c/$f"; done
    mv a/b/c/x a/b/c/xx
    ln a/seq a/seq.hard
    ln -s ../seq a/b/seq.sym
    wc -l < a/b/seq.sym
    dd if=/dev/zero of=a/zeros bs=4096 count=16 2>/dev/null
    echo appended >> a/seq
    tail -n 1 a/seq.hard
    tar -cf a.tar a && mkdir x && tar -xf a.tar -C x && rm a.tar
    rm a/b/c/y && rm -r x/a/b
    truncate -s 100 a/nums
    gzip -c a/seq > a/seq.gz && gunzip -c a/seq.gz | md5sum | cut -d' ' -f1 && rm a/seq.gz
    mv a/b a/moved
    rmdir a/moved/c 2>/dev/null || echo "not empty"
    cat a/moved/c/z
    cat a/moved/c/seq.copy a/moved/c/seq.copy > a/moved/twice
    rm a/moved/c/seq.copy
    cd /
}
workload() {
    for D in /tmp/wl /mnt/t/wl; do echo "== $D"; run "$D"; done
    echo "== listing"
    find /tmp/wl /mnt/t/wl | sort
    find /tmp/wl /mnt/t/wl -type f | sort | xargs md5sum
    find /tmp/wl /mnt/t/wl -type f -o -type l | sort | xargs stat -c '%n %s %a %h %F'
}
restarts() { sed -n 's/^restarts: *//p' /sys/kernel/servers/ramfs/status; }
workload > $OUT 2>&1
# Under fault injection, again until ramfs has been killed at least 20 times (however fast the
# machine runs the workload), each pass giving the same output as the first; without faults
# (no restart in the first pass), once.
pass=1
while [ "$(restarts)" -gt 0 ] && [ "$(restarts)" -lt 20 ] && [ $pass -lt 50 ]; do
    workload > $OUT.again 2>&1
    cmp -s $OUT $OUT.again || echo "pass $pass differs" >> $OUT
    pass=$((pass + 1))
done
# One write per line, so that console messages (a restart's) fall between lines.
echo WORKLOAD-START
while IFS= read -r line; do echo "$line"; done < $OUT
echo WORKLOAD-END
grep restarts /sys/kernel/servers/ramfs/status
