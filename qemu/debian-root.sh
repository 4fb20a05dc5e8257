#!/bin/bash
# A Debian bookworm root file system (debootstrap --variant=minbase from Debian's mirror, the
# one apt on this machine uses) on an ext2 disk image for x86_64, with an /init that mounts
# /proc and starts a login bash on the console: `just qemu-x86 DISK=OUT` boots into it.
# The debootstrapped tree is kept in build/debian/root and reused.
#
# usage: debian-root.sh OUT [MIB (1024)]
set -euo pipefail
out=$1 mib=${2:-1024}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
tree=$root/build/debian/root
command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >/dev/null
if [ ! -x "$tree/bin/bash" ]; then
    mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
    rm -rf "$tree" && mkdir -p "$tree"
    debootstrap --variant=minbase bookworm "$tree" "${mirror:-http://deb.debian.org/debian}" >"$root/build/debian/debootstrap.log" 2>&1 ||
        { tail -20 "$root/build/debian/debootstrap.log" >&2; exit 1; }
fi
cat > "$tree/init" <<'INIT'
#!/bin/sh
# Cairn's start of a Debian root (no init system in minbase): /proc, then a login shell.
mount -t proc proc /proc 2>/dev/null
export HOME=/root TERM=vt100 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
cd /root
exec /bin/bash -l
INIT
chmod 755 "$tree/init"
echo cairn > "$tree/etc/hostname"
bash "$root/tests/guest/ext2/mkimage.sh" "$out" 4096 "$mib" "$tree"
echo "$out: ext2, $mib MiB, Debian bookworm (minbase) for x86_64"
