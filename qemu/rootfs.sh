#!/usr/bin/env bash
# Builds the base root file system directory for ARCH (x86_64 | aarch64) under
# build/ARCH/rootfs: a static BusyBox from Debian's busybox-static package and a few /etc files.
# The package is downloaded once and cached in build/ARCH/deb/.
set -euo pipefail
arch=${1:?usage: rootfs.sh x86_64|aarch64}
cd "$(dirname "$0")/.."
case "$arch" in
    x86_64) debarch=amd64 ;;
    aarch64) debarch=arm64 ;;
    *) echo "unknown arch $arch" >&2; exit 1 ;;
esac
out=build/$arch
mkdir -p "$out/deb" "$out/rootfs"
if ! ls "$out"/deb/busybox-static_*.deb >/dev/null 2>&1; then
    (cd "$out/deb" && apt-get download -q -o APT::Sandbox::User=root "busybox-static:$debarch" >/dev/null)
fi
root=$out/rootfs
if [ ! -x "$root/bin/busybox" ] || [ "$out"/deb/busybox-static_*.deb -nt "$root/bin/busybox" ]; then
    tmp=$(mktemp -d)
    dpkg -x "$out"/deb/busybox-static_*.deb "$tmp"
    mkdir -p "$root/bin"
    cp "$tmp/bin/busybox" "$root/bin/busybox"
    rm -rf "$tmp"
fi
mkdir -p "$root/etc" "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/root"
# Applet links. The applet list is the same for both architectures (same package version);
# it is read from the x86_64 binary, which runs on this (x86_64) host.
host_bb=build/x86_64/rootfs/bin/busybox
if [ "$arch" != x86_64 ] && [ ! -x "$host_bb" ]; then
    bash "$(dirname "$0")/rootfs.sh" x86_64
fi
for applet in $("$host_bb" --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
# The project's own guest programs (tests/guest/conformance, tests/guest/tools), static, for
# this architecture.
case "$arch" in
    x86_64) cc=gcc ;;
    aarch64) cc=aarch64-linux-gnu-gcc ;;
esac
mkdir -p "$root/usr/libexec/cairn"
for src in tests/guest/conformance/*.c tests/guest/tools/*.c; do
    [ -e "$src" ] || continue
    bin="$root/usr/libexec/cairn/$(basename "$src" .c)"
    if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
        "$cc" -O2 -static -o "$bin" "$src"
    fi
done
echo cairn > "$root/etc/hostname"
ln -sfn /proc/mounts "$root/etc/mtab"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
