#!/usr/bin/env bash
# Fetches and unpacks the stock Debian Linux kernel that `just bench` compares Cairn against:
# linux-image-6.1.0-<abi>-amd64 / -arm64, the version the linux-image-amd64 (arm64)
# metapackage currently depends on. Idempotent; everything is cached under build/linux/:
#
#   build/linux/<arch>/deb/linux-image-*.deb   the downloaded package
#   build/linux/<arch>/vmlinuz                 x86_64: the bzImage (boots with QEMU -kernel)
#   build/linux/<arch>/Image                   aarch64: the decompressed Image
#   build/linux/<arch>/version                 the package name, e.g. linux-image-6.1.0-56-amd64
#
# usage: linux.sh x86_64|aarch64 ...   (no argument: both). Prints the kernel path per arch.
# Once a kernel is cached no network or apt lookup is needed (a fresh version is only looked
# for when there is none: `rm -rf build/linux` to move to a newer one).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- x86_64 aarch64

# current DEBARCH QUAL: the package name of the current kernel ABI (linux-image-6.1.0-NN-amd64):
# what the linux-image-<arch> metapackage depends on, else the highest one apt knows.
current() {
    local pkg
    pkg=$(apt-cache depends "linux-image-$1$2" 2>/dev/null |
        sed -n "s/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-$1\)\(:$1\)\{0,1\}$/\1/p" | head -n 1)
    if [ -z "$pkg" ]; then
        pkg=$(apt-cache search --names-only "^linux-image-6\.1\.0-[0-9]+-$1\$" 2>/dev/null |
            awk '{print $1}' | sort -t- -k5,5n | tail -n 1)
    fi
    echo "$pkg"
}
for arch in "$@"; do
    case "$arch" in
        x86_64 | x86 | amd64) arch=x86_64 debarch=amd64 qual="" ;;
        aarch64 | arm64) arch=aarch64 debarch=arm64 qual=":arm64" ;;
        *) echo "linux.sh: unknown arch $arch" >&2; exit 1 ;;
    esac
    out=build/linux/$arch
    case "$arch" in
        x86_64) kernel=$out/vmlinuz ;;
        aarch64) kernel=$out/Image ;;
    esac
    if [ -s "$kernel" ] && [ -s "$out/version" ]; then
        echo "$kernel"
        continue
    fi
    mkdir -p "$out/deb"
    if ! ls "$out"/deb/linux-image-6.1.0-*-"$debarch"_*.deb >/dev/null 2>&1; then
        # Old package lists may name a version the mirror no longer has: update once, retry.
        for try in 1 2; do
            pkg=$(current "$debarch" "$qual")
            if [ -n "$pkg" ] && (cd "$out/deb" && apt-get download -q -o APT::Sandbox::User=root "$pkg$qual" >/dev/null); then
                break
            fi
            pkg=""
            [ "$try" = 1 ] && [ "$(id -u)" = 0 ] && apt-get update -qq || true
        done
        if [ -z "$pkg" ]; then
            echo "linux.sh: cannot download linux-image-6.1.0-*-$debarch (arm64 architecture added to dpkg?)" >&2
            exit 1
        fi
    fi
    deb=$(ls "$out"/deb/linux-image-6.1.0-*-"$debarch"_*.deb | sort -V | tail -n 1)
    pkg=$(dpkg-deb -f "$deb" Package)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    # Only the kernel image is needed: no modules (the test guest uses none).
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*'
    vmlinuz=$(ls "$tmp"/boot/vmlinuz-*)
    case "$arch" in
        x86_64) cp "$vmlinuz" "$kernel.tmp" ;;
        # arm64's vmlinuz is an Image, gzip-compressed in some releases; QEMU -kernel wants it
        # decompressed.
        aarch64)
            if [ "$(head -c 2 "$vmlinuz" | od -An -tx1 | tr -d ' \n')" = 1f8b ]; then
                gzip -dc <"$vmlinuz" >"$kernel.tmp"
            else
                cp "$vmlinuz" "$kernel.tmp"
            fi
            ;;
    esac
    mv "$kernel.tmp" "$kernel"
    rm -rf "$tmp"
    trap - EXIT
    echo "$pkg" >"$out/version"
    echo "$kernel"
done
