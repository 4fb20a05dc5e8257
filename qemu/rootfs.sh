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
# Dynamic linking: the loaders and C libraries of this machine's packages (glibc for each
# architecture; musl: the host's on x86_64, Debian's arm64 package unpacked here on AArch64,
# with a gcc specs file pointing at it), then the dynamic test programs (tests/guest/dynamic)
# built against each libc, with their libraries in /usr/libexec/cairn/lib-<libc>.
install_lib() { # SOURCE DEST (under the root)
    mkdir -p "$(dirname "$root/$2")"
    [ "$root/$2" -nt "$1" ] || cp -L "$1" "$root/$2"
}
case "$arch" in
    x86_64)
        install_lib /lib64/ld-linux-x86-64.so.2 lib64/ld-linux-x86-64.so.2
        install_lib /lib/x86_64-linux-gnu/libc.so.6 lib/x86_64-linux-gnu/libc.so.6
        install_lib /lib/x86_64-linux-musl/libc.so lib/ld-musl-x86_64.so.1
        musl_cc=(musl-gcc)
        ;;
    aarch64)
        install_lib /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 lib/ld-linux-aarch64.so.1
        install_lib /usr/aarch64-linux-gnu/lib/libc.so.6 lib/aarch64-linux-gnu/libc.so.6
        musl=$out/musl
        if [ ! -f "$musl/musl-gcc.specs" ]; then
            if ! ls "$out"/deb/musl-dev_*.deb >/dev/null 2>&1; then
                (cd "$out/deb" && apt-get download -q -o APT::Sandbox::User=root musl:arm64 musl-dev:arm64 >/dev/null)
            fi
            rm -rf "$musl" && mkdir -p "$musl"
            for deb in "$out"/deb/musl_*.deb "$out"/deb/musl-dev_*.deb; do dpkg -x "$deb" "$musl"; done
            # musl-dev's libc.so link points at /lib; without it the linker takes libc.a.
            ln -sfn "$(cd "$musl" && pwd)/lib/aarch64-linux-musl/libc.so" "$musl/usr/lib/aarch64-linux-musl/libc.so"
            abs=$(cd "$musl" && pwd)
            sed -e "s|/usr/include/aarch64-linux-musl|$abs/usr/include/aarch64-linux-musl|g" \
                -e "s|/usr/lib/aarch64-linux-musl|$abs/usr/lib/aarch64-linux-musl|g" \
                "$musl/usr/lib/aarch64-linux-musl/musl-gcc.specs" > "$musl/musl-gcc.specs"
        fi
        install_lib "$musl/lib/aarch64-linux-musl/libc.so" lib/ld-musl-aarch64.so.1
        musl_cc=(aarch64-linux-gnu-gcc -specs="$(cd "$musl" && pwd)/musl-gcc.specs")
        ;;
esac
dyn=tests/guest/dynamic
for libc in glibc musl; do
    if [ "$libc" = glibc ]; then dcc=("$cc"); else dcc=("${musl_cc[@]}"); fi
    lib=/usr/libexec/cairn/lib-$libc
    prog=$root/usr/libexec/cairn/dynamic-$libc
    if [ ! -x "$prog" ] || [ -n "$(find "$dyn" -newer "$prog")" ]; then
        mkdir -p "$root$lib"
        "${dcc[@]}" -O2 -shared -fPIC -o "$root$lib/libcairnshared.so" "$dyn/shared.c"
        "${dcc[@]}" -O2 -shared -fPIC -o "$root$lib/libcairnplug.so" "$dyn/plugin.c"
        "${dcc[@]}" -O2 -DLIBDIR="\"$lib\"" -o "$prog" "$dyn/dynamic.c" -L"$root$lib" -lcairnshared \
            -Wl,-rpath,"$lib" -pthread
    fi
done
echo cairn > "$root/etc/hostname"
ln -sfn /proc/mounts "$root/etc/mtab"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
