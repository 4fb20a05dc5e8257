/* The vDSO and the clocks: the process is given a vDSO (AT_SYSINFO_EHDR, an ELF shared object
 * whose dynamic symbols include this architecture's clock_gettime and gettimeofday), libc's
 * clock_gettime agrees with the system call (the vDSO's answer lies between two system calls
 * on every precise clock, coarse clocks are within a second), gettimeofday and time agree
 * with CLOCK_REALTIME, clocks the vDSO does not compute (CPU time, unknown ids) still answer
 * as the kernel does, the time zone is UTC, clock_getres, and a child after fork and a program
 * after exec have a working vDSO too. The system call itself writes its timespec wherever a
 * store of the caller could (a page not touched yet, one straddling two such pages, a page
 * shared copy-on-write with a child: the child's write stays its own) and fails with EFAULT
 * where it could not (read-only, NULL). Output is compared with Linux's (vdso.expected). */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#define VDSO_CLOCK_GETTIME "__vdso_clock_gettime"
#define VDSO_GETTIMEOFDAY "__vdso_gettimeofday"
#else
#define VDSO_CLOCK_GETTIME "__kernel_clock_gettime"
#define VDSO_GETTIMEOFDAY "__kernel_gettimeofday"
#endif

static long long ns_of(const struct timespec *t) { return t->tv_sec * 1000000000LL + t->tv_nsec; }

/* Whether the vDSO at `base` exports `name` (through its dynamic section). */
static int exports(unsigned long base, const char *name) {
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_type != ET_DYN)
        return 0;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
    long bias = -1;
    const Elf64_Dyn *dyn = NULL;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD && bias < 0)
            bias = (long)base + (long)ph[i].p_offset - (long)ph[i].p_vaddr;
        if (ph[i].p_type == PT_DYNAMIC)
            dyn = (const Elf64_Dyn *)(base + ph[i].p_offset);
    }
    if (!dyn || bias < 0)
        return 0;
    const Elf64_Sym *sym = NULL;
    const char *str = NULL;
    const Elf32_Word *hash = NULL;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        if (dyn->d_tag == DT_SYMTAB)
            sym = (const Elf64_Sym *)(bias + dyn->d_un.d_ptr);
        if (dyn->d_tag == DT_STRTAB)
            str = (const char *)(bias + dyn->d_un.d_ptr);
        if (dyn->d_tag == DT_HASH)
            hash = (const Elf32_Word *)(bias + dyn->d_un.d_ptr);
    }
    if (!sym || !str || !hash)
        return 0;
    for (Elf32_Word i = 0; i < hash[1]; i++)
        if (sym[i].st_name && strcmp(str + sym[i].st_name, name) == 0 && sym[i].st_shndx != SHN_UNDEF)
            return 1;
    return 0;
}

/* libc's clock_gettime lies between two system calls of the same clock. */
static void between(const char *name, clockid_t clock) {
    struct timespec a, b, c;
    int ok = 1;
    for (int i = 0; i < 1000; i++) {
        syscall(SYS_clock_gettime, clock, &a);
        clock_gettime(clock, &b);
        syscall(SYS_clock_gettime, clock, &c);
        if (ns_of(&b) < ns_of(&a) || ns_of(&c) < ns_of(&b) || b.tv_nsec < 0 || b.tv_nsec >= 1000000000)
            ok = 0;
    }
    printf("%-24s libc between two system calls: %d\n", name, ok);
}

/* A coarse clock is within a second of its precise one. */
static void near(const char *name, clockid_t coarse, clockid_t precise) {
    struct timespec a, b;
    clock_gettime(precise, &a);
    clock_gettime(coarse, &b);
    long long d = ns_of(&b) - ns_of(&a);
    printf("%-24s within a second of the precise clock: %d\n", name, d > -1000000000LL && d < 1000000000LL);
}

/* A call's result and, if it failed, its errno (evaluated after the call). */
static void report(const char *what, int r) {
    int e = errno;
    printf("%s = %d%s\n", what, r, r == 0 ? "" : e == EINVAL ? " EINVAL" : e == EFAULT ? " EFAULT" : " (another errno)");
}

static void checks(const char *who) {
    struct timespec t;
    printf("%s: clock_gettime(MONOTONIC) = %d\n", who, clock_gettime(CLOCK_MONOTONIC, &t));
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc > 1) {
        checks("after exec");
        return 0;
    }
    unsigned long base = getauxval(AT_SYSINFO_EHDR);
    printf("AT_SYSINFO_EHDR given: %d\n", base != 0);
    if (base) {
        printf("vdso exports clock_gettime: %d\n", exports(base, VDSO_CLOCK_GETTIME));
        printf("vdso exports gettimeofday: %d\n", exports(base, VDSO_GETTIMEOFDAY));
    }
    between("CLOCK_REALTIME", CLOCK_REALTIME);
    between("CLOCK_MONOTONIC", CLOCK_MONOTONIC);
    between("CLOCK_MONOTONIC_RAW", CLOCK_MONOTONIC_RAW);
    between("CLOCK_BOOTTIME", CLOCK_BOOTTIME);
    near("CLOCK_REALTIME_COARSE", CLOCK_REALTIME_COARSE, CLOCK_REALTIME);
    near("CLOCK_MONOTONIC_COARSE", CLOCK_MONOTONIC_COARSE, CLOCK_MONOTONIC);

    struct timespec rt;
    struct timeval tv;
    struct timezone tz = {123, 456};
    clock_gettime(CLOCK_REALTIME, &rt);
    int r = gettimeofday(&tv, &tz);
    long long d = tv.tv_sec * 1000000LL + tv.tv_usec - rt.tv_sec * 1000000LL - rt.tv_nsec / 1000;
    printf("gettimeofday = %d, within a second of CLOCK_REALTIME: %d, usec in range: %d\n", r,
           d >= 0 && d < 1000000, tv.tv_usec >= 0 && tv.tv_usec < 1000000);
    printf("timezone: minuteswest %d dsttime %d\n", tz.tz_minuteswest, tz.tz_dsttime);
    time_t now = time(NULL);
    printf("time() within a second of gettimeofday: %d\n", now - tv.tv_sec >= 0 && now - tv.tv_sec <= 1);
    printf("the real time is after 2020: %d\n", rt.tv_sec > 1577836800);

    struct timespec cpu;
    printf("CLOCK_PROCESS_CPUTIME_ID = %d\n", clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu));
    report("clock_gettime(10) (gone)", clock_gettime(10, &cpu));
    report("clock_gettime(42)", clock_gettime(42, &cpu));

    struct timespec res = {-1, -1};
    r = clock_getres(CLOCK_MONOTONIC, &res);
    printf("clock_getres(MONOTONIC) = %d: %ld s %ld ns\n", r, (long)res.tv_sec, res.tv_nsec);
    r = clock_getres(CLOCK_REALTIME, &res);
    printf("clock_getres(REALTIME) = %d: %ld s %ld ns\n", r, (long)res.tv_sec, res.tv_nsec);
    r = clock_getres(CLOCK_MONOTONIC_COARSE, &res);
    printf("clock_getres(MONOTONIC_COARSE) = %d, at most 10 ms: %d\n", r, res.tv_sec == 0 && res.tv_nsec <= 10000000);
    report("clock_getres(MONOTONIC, NULL)", clock_getres(CLOCK_MONOTONIC, NULL));
    report("clock_getres(42)", clock_getres(42, &res));
    report("clock_getres(10)", clock_getres(10, &res));

    /* The system call's own stores. */
    char *fresh = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct timespec *untouched = (struct timespec *)fresh;
    report("syscall clock_gettime(MONOTONIC) into a page not touched yet",
           (int)syscall(SYS_clock_gettime, CLOCK_MONOTONIC, untouched));
    printf("  nanoseconds in range: %d\n", untouched->tv_nsec >= 0 && untouched->tv_nsec < 1000000000);
    struct timespec *straddling = (struct timespec *)(fresh + 2 * 4096 - 8);
    report("syscall clock_gettime(REALTIME) across two pages not touched yet",
           (int)syscall(SYS_clock_gettime, CLOCK_REALTIME, straddling));
    printf("  within a second of time(): %d\n", straddling->tv_sec - time(NULL) >= -1 && straddling->tv_sec - time(NULL) <= 1);
    char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    report("syscall clock_gettime(MONOTONIC) into a read-only page",
           (int)syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (struct timespec *)ro));
    printf("  the page still reads 0: %d\n", ro[0] == 0);
    report("syscall clock_gettime(MONOTONIC, NULL)", (int)syscall(SYS_clock_gettime, CLOCK_MONOTONIC, NULL));
    report("syscall clock_gettime(42)", (int)syscall(SYS_clock_gettime, 42, &cpu));
    report("syscall clock_gettime(PROCESS_CPUTIME_ID)", (int)syscall(SYS_clock_gettime, CLOCK_PROCESS_CPUTIME_ID, &cpu));
    static struct timespec shared = {7, 7};
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &shared);
        _exit(shared.tv_sec == 7 && shared.tv_nsec == 7);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child's system call wrote its own copy: %d, the parent's is unchanged: %d\n", WEXITSTATUS(status) == 0,
           shared.tv_sec == 7 && shared.tv_nsec == 7);

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        checks("child");
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", argv[0], "again", (char *)NULL);
        _exit(1);
    }
    waitpid(pid, &status, 0);
    printf("exec'd program exited %d\n", WEXITSTATUS(status));
    return 0;
}
