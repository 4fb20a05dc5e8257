#!/usr/bin/env bash
# Installs what building and booting Cairn needs, idempotently: Debian packages (QEMU, cpio,
# e2fsprogs, cross compilers for guest test programs) and the Rust targets/components pinned in
# rust-toolchain.toml. Cheap when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }
have qemu-system-x86_64 || need_apt+=(qemu-system-x86)
have qemu-system-aarch64 || need_apt+=(qemu-system-arm)
have cpio || need_apt+=(cpio)
# Static glibc programs (tests/guest): the compiler and libc.a.
have gcc || need_apt+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need_apt+=(libc6-dev)
have mke2fs || need_apt+=(e2fsprogs)
have musl-gcc || need_apt+=(musl-tools)
have aarch64-linux-gnu-gcc || need_apt+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: missing ${need_apt[*]}; run as root (or install them) first" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# arm64 packages (busybox-static:arm64) are downloaded, not installed: the architecture must
# be known to apt.
if [ "$(id -u)" = 0 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    apt-get update -qq
fi

# rustup reads rust-toolchain.toml; this makes sure the targets and components exist.
if have rustup; then
    rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
    installed_targets=$(rustup target list --installed)
    for t in x86_64-unknown-none aarch64-unknown-none; do
        grep -qx "$t" <<<"$installed_targets" || rustup target add "$t"
    done
    installed_components=$(rustup component list --installed)
    for c in rust-src llvm-tools; do
        grep -q "^$c" <<<"$installed_components" || rustup component add "$c"
    done
fi
