// Calls every system call number 0..511 with garbage arguments, each in a forked child that
// the parent kills if it does not finish within a second. The kernel must survive all of it:
// the program ends with "syscall-fuzz: done" and a summary. Also runs on Linux.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return rng;
}

static char buffer[4096];

// A mix of values that break naive kernels: zero, -1, huge, kernel-half pointers, user
// pointers to a real buffer, and unaligned addresses.
static long garbage(void) {
    switch (next() % 8) {
    case 0: return 0;
    case 1: return -1;
    case 2: return (long)0xffff800000001000ull;
    case 3: return (long)0xffffffff80000000ull;
    case 4: return (long)buffer + (long)(next() % 64);
    case 5: return (long)(next() % 4096);
    case 6: return (long)next();
    default: return 1;
    }
}

// Calls that would end or replace the fuzzer itself rather than test the kernel.
static int skipped(long nr) {
    long skip[] = {
        SYS_exit, SYS_exit_group, SYS_execve, SYS_kill, SYS_tgkill, SYS_tkill, SYS_rt_sigreturn,
#ifdef SYS_execveat
        SYS_execveat,
#endif
#ifdef SYS_vfork
        SYS_vfork,
#endif
#ifdef SYS_reboot
        SYS_reboot,
#endif
    };
    for (unsigned i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (skip[i] == nr) return 1;
    return 0;
}

static void sleep_ms(long ms) {
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    nanosleep(&ts, 0);
}

int main(void) {
    int finished = 0, killed = 0, signalled = 0;
    for (long nr = 0; nr < 512; nr++) {
        if (skipped(nr)) continue;
        long a[6];
        for (int i = 0; i < 6; i++) a[i] = garbage();
        pid_t pid = fork();
        if (pid < 0) { printf("syscall-fuzz: fork failed at %ld: %s\n", nr, strerror(errno)); return 1; }
        if (pid == 0) {
            syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
            _exit(0);
        }
        int status = 0, waited = 0;
        for (int t = 0; t < 100; t++) {
            if ((waited = waitpid(pid, &status, WNOHANG)) == pid) break;
            sleep_ms(10);
        }
        if (waited != pid) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            killed++;
        } else if (WIFSIGNALED(status)) {
            signalled++;
        } else {
            finished++;
        }
    }
    printf("syscall-fuzz: done: %d returned, %d died by a signal, %d killed after blocking\n", finished, signalled, killed);
    return 0;
}
