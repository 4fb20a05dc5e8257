#!/bin/bash
# Re-records expected.txt: runs session.sh as /init under Debian's Linux kernel in QEMU
# (TCG, the bench's flags: -M pc -cpu max -m 512M, "console=ttyS0 mitigations=off nokaslr").
# Needs: bash qemu/linux.sh x86_64 && bash qemu/rootfs.sh x86_64 (run from anywhere).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
kernel=$root/build/linux/x86_64/vmlinuz
rootfs=$root/build/x86_64/rootfs
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cp -a "$rootfs" "$work/tree"
cp "$here/session.sh" "$work/tree/session.sh"
cat > "$work/tree/init" <<'INIT'
#!/bin/sh
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp 2>/dev/null
echo; sh /session.sh
poweroff -f
INIT
chmod 755 "$work/tree/init" "$work/tree/session.sh"
(cd "$work/tree" && find . | cpio -o -H newc --quiet > "$work/initrd.cpio")
timeout 600 qemu-system-x86_64 -M pc -cpu max -m 512M -smp 1 -nographic -no-reboot -monitor none -nic none \
  -kernel "$kernel" -initrd "$work/initrd.cpio" \
  -append "console=ttyS0 mitigations=off nokaslr quiet" > "$work/out.txt" 2>&1 </dev/null || true
tr -d '\r' < "$work/out.txt" | sed -n '/^== /,/^SESSION-END$/p' | sed '/^SESSION-END$/q' > "$here/expected.txt"
grep -q '^SESSION-END$' "$here/expected.txt" || { echo "record: no SESSION-END" >&2; exit 1; }
echo "recorded $(wc -l < "$here/expected.txt") lines"
