// Passes kernel-half addresses to the pointer arguments of common system calls: each must fail
// with EFAULT (never copy kernel memory out or in). Prints one line per call and a verdict.
// Also runs on Linux with the same expected output.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const unsigned long kernel_ptrs[] = { 0xffff800000001000ul, 0xffffffff80000000ul, 0xffffff00dead0000ul };
static int failures = 0;

static void expect_efault(const char *what, long r) {
    int ok = r == -1 && errno == EFAULT;
    printf("%-34s %s\n", what, ok ? "EFAULT" : "WRONG");
    if (!ok) { failures++; printf("  got %ld errno %d (%s)\n", r, errno, strerror(errno)); }
}

int main(void) {
    int fds[2];
    if (pipe(fds) != 0) return 1;
    if (write(fds[1], "data", 4) != 4) return 1;
    for (unsigned i = 0; i < sizeof kernel_ptrs / sizeof kernel_ptrs[0]; i++) {
        void *k = (void *)kernel_ptrs[i];
        printf("-- pointer %p\n", k);
        expect_efault("write(1, k, 16)", write(1, k, 16));
        expect_efault("read(pipe, k, 4)", read(fds[0], k, 4));
        expect_efault("openat(AT_FDCWD, k)", syscall(SYS_openat, AT_FDCWD, k, O_RDONLY));
        expect_efault("newfstatat(AT_FDCWD, /, k)", syscall(SYS_newfstatat, AT_FDCWD, "/", k, 0));
        expect_efault("fstat(0, k)", syscall(SYS_fstat, 0, k));
        expect_efault("uname(k)", syscall(SYS_uname, k));
        expect_efault("pipe2(k, 0)", syscall(SYS_pipe2, k, 0));
        expect_efault("getcwd(k, 64)", syscall(SYS_getcwd, k, 64));
        expect_efault("clock_gettime(0, k)", syscall(SYS_clock_gettime, 0, k));
        expect_efault("chdir(k)", syscall(SYS_chdir, k));
        expect_efault("execve(k, 0, 0)", syscall(SYS_execve, k, 0, 0));
        expect_efault("rt_sigaction(SIGUSR1, k, 0, 8)", syscall(SYS_rt_sigaction, 10, k, 0, 8));
        expect_efault("getrandom(k, 8, 0)", syscall(SYS_getrandom, k, 8, 0));
    }
    printf("kernel-pointers: %s\n", failures ? "FAILED" : "all EFAULT");
    return failures != 0;
}
