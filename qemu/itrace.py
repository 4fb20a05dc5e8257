#!/usr/bin/env python3
"""Instruction trace of a window of guest execution, through QEMU's gdb stub.

usage: itrace.py --arch x86_64|aarch64 --elf KERNEL_ELF --port PORT --start SYMBOL
                 [--after SYMBOL] [--hits N] [--steps N] [--until SYMBOL[+OFFSET]] [--out FILE]

Connects to a QEMU started with `-gdb tcp::PORT` (and, for stable counts, `-icount shift=0`),
stops at the N-th execution of SYMBOL (a function name from the kernel ELF's symbol table,
matched as a substring of the demangled name, or 0xADDRESS), then single-steps and records
every program counter until SYMBOL is reached again (one iteration of a loop that calls it),
or `--until` is reached, or `--steps` instructions have run. QEMU's gdb stub masks interrupts
and timers while single-stepping, so the window is deterministic.

Prints the instruction count and a per-function histogram (functions from `llvm-nm`, in
execution order of first entry), and writes the raw program counters to --out. Used to find
where the IPC fast path and a system call spend their guest instructions (docs/bench.md).
"""

import argparse
import bisect
import os
import socket
import subprocess
import sys


def llvm_tool(name):
    sysroot = subprocess.check_output(["rustc", "--print", "sysroot"], text=True).strip()
    host = [l.split()[1] for l in subprocess.check_output(["rustc", "-vV"], text=True).splitlines() if l.startswith("host:")][0]
    return os.path.join(sysroot, "lib", "rustlib", host, "bin", name)


def symbols(elf):
    out = subprocess.check_output([llvm_tool("llvm-nm"), "-n", "-C", "--defined-only", elf], text=True, errors="replace")
    addrs, names = [], []
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) < 3 or parts[1].lower() not in "tw":
            continue
        addrs.append(int(parts[0], 16))
        names.append(parts[2])
    return addrs, names


class Gdb:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.ack = True
        # QEMU announces the stop it made on connection with an unsolicited stop packet.
        self._read_packet()
        if self.cmd("QStartNoAckMode") == "OK":
            self.ack = False

    def _read_packet(self):
        # Acknowledgements ('+') before a packet are skipped; every packet is acknowledged.
        while True:
            i = self.buf.find(b"$")
            j = self.buf.find(b"#", i + 1) if i >= 0 else -1
            if i >= 0 and j >= 0 and len(self.buf) >= j + 3:
                data = self.buf[i + 1:j]
                self.buf = self.buf[j + 3:]
                if self.ack:
                    self.s.sendall(b"+")
                return data.decode()
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("gdb stub closed")
            self.buf += chunk

    def cmd(self, c):
        cs = sum(c.encode()) & 0xFF
        self.s.sendall(f"${c}#{cs:02x}".encode())
        return self._read_packet()

    def pc(self, arch):
        # QEMU's stub answers no `p`: read all registers. The program counter follows the 16
        # GPRs on x86_64 (byte 128), x0-x30 and sp on AArch64 (byte 256).
        r = self.cmd("g")
        at = 256 if arch == "x86_64" else 512
        return int.from_bytes(bytes.fromhex(r[at:at + 16]), "little")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True)
    ap.add_argument("--elf", required=True)
    ap.add_argument("--port", type=int, default=1234)
    ap.add_argument("--start", required=True)
    ap.add_argument("--after", help="first stop here once (e.g. the benchmark's function)")
    ap.add_argument("--hits", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--until")
    ap.add_argument("--out")
    a = ap.parse_args()
    addrs, names = symbols(a.elf)

    def resolve(s):
        if s.startswith("0x"):
            return int(s, 16)
        off = 0
        if "+" in s:
            s, o = s.rsplit("+", 1)
            off = int(o, 0)
        hits = [ad for ad, n in zip(addrs, names) if s in n]
        if not hits:
            sys.exit(f"no symbol matches {s}")
        if len(set(hits)) > 1:
            print(f"note: {len(hits)} symbols match {s}; using the first", file=sys.stderr)
        return hits[0] + off

    kind = 1 if a.arch == "x86_64" else 4
    start = resolve(a.start)
    until = resolve(a.until) if a.until else start
    g = Gdb(a.port)
    g.cmd("?")
    if a.after:
        after = resolve(a.after)
        g.cmd(f"Z0,{after:x},{kind}")
        g.cmd("c")
        g.cmd(f"z0,{after:x},{kind}")
    # Each stop is stepped over with the breakpoint removed: QEMU's stub would otherwise
    # report the same breakpoint again at once, and every hit would be the first.
    for i in range(a.hits):
        g.cmd(f"Z0,{start:x},{kind}")
        g.cmd("c")
        g.cmd(f"z0,{start:x},{kind}")
        if i + 1 < a.hits:
            g.cmd("s")
    pcs = []
    pc = g.pc(a.arch)
    while len(pcs) < a.steps:
        pcs.append(pc)
        g.cmd("s")
        pc = g.pc(a.arch)
        if pc == until:
            break
    if a.out:
        with open(a.out, "w") as f:
            f.write("".join(f"{p:x}\n" for p in pcs))

    def func(p):
        i = bisect.bisect_right(addrs, p) - 1
        return names[i] if i >= 0 else f"?{p:x}"

    counts, order = {}, []
    for p in pcs:
        f = func(p)
        if f not in counts:
            counts[f] = 0
            order.append(f)
        counts[f] += 1
    print(f"{len(pcs)} instructions from {a.start} to {a.until or a.start}")
    for f in order:
        print(f"{counts[f]:6d}  {f[:150]}")
    # Is the kernel stopped? Leave QEMU to the caller (it is killed by the harness).


if __name__ == "__main__":
    main()
