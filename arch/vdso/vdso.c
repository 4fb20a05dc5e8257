/* The vDSO: clock_gettime, gettimeofday and time without a system call, mapped into every
 * process by the `linux` server (AT_SYSINFO_EHDR) as on Linux, so that libc (glibc, musl)
 * finds it by its usual names and versions.
 *
 * The clock is the same function of the same counter as the nucleus's (`arch::clock::Scale`):
 * monotonic ns = ((counter - base) * mult) >> 32, with the TSC on x86_64 and CNTVCT_EL0 on
 * AArch64 (EL0 may read both), and CLOCK_REALTIME a constant offset from it. The nucleus's
 * numbers sit in the data page just below the image (`struct vdso_clock`); a page whose
 * `mult` is 0, and every clock this code does not compute, goes to the real system call, so
 * the answers never differ from the kernel's.
 *
 * Built by arch/build.rs into a position-independent shared object with no relocations: one
 * PT_LOAD whose file layout is its memory layout (vdso.lds). */

typedef unsigned long u64;

struct vdso_clock {
    u64 magic; /* VDSO_MAGIC: the page was filled in */
    u64 counter_base;
    u64 mult; /* ns per counter tick, times 2^32 (0: compute nothing here) */
    u64 realtime_offset_ns;
};

#define VDSO_MAGIC 0x31766f646e726163ul /* "carndov1" */
#define NSEC 1000000000ul

struct timespec {
    long tv_sec;
    long tv_nsec;
};
struct timeval {
    long tv_sec;
    long tv_usec;
};
struct timezone {
    int tz_minuteswest;
    int tz_dsttime;
};

/* The data page, the page before the image (vdso.lds). */
extern const volatile struct vdso_clock vdso_clock_data __attribute__((visibility("hidden")));

static inline const volatile struct vdso_clock *clock_page(void) { return &vdso_clock_data; }

#if defined(__x86_64__)
#define NR_gettimeofday 96
#define NR_time 201
#define NR_clock_gettime 228
#define NR_clock_getres 229
#define NR_getcpu 309

static inline u64 read_counter(void) {
    unsigned int lo, hi;
    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
    return ((u64)hi << 32) | lo;
}

static inline long syscall3(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}
#elif defined(__aarch64__)
#define NR_clock_gettime 113
#define NR_clock_getres 114
#define NR_gettimeofday 169

static inline u64 read_counter(void) {
    u64 v;
    __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v)::"memory");
    return v;
}

static inline long syscall3(long nr, long a, long b, long c) {
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}
#else
#error "no vDSO for this architecture"
#endif

static inline int usable(const volatile struct vdso_clock *c) {
    return c->magic == VDSO_MAGIC && c->mult != 0;
}

static inline u64 monotonic_ns(const volatile struct vdso_clock *c) {
    u64 raw = read_counter();
    u64 base = c->counter_base;
    u64 ticks = raw > base ? raw - base : 0;
    return (u64)(((unsigned __int128)ticks * c->mult) >> 32);
}

long vdso_clock_gettime(long clock, struct timespec *ts) {
    const volatile struct vdso_clock *c = clock_page();
    u64 ns;
    if (!usable(c))
        return syscall3(NR_clock_gettime, clock, (long)ts, 0);
    switch (clock) {
    case 0: /* CLOCK_REALTIME */
    case 5: /* CLOCK_REALTIME_COARSE */
        ns = monotonic_ns(c) + c->realtime_offset_ns;
        break;
    case 1: /* CLOCK_MONOTONIC */
    case 4: /* CLOCK_MONOTONIC_RAW */
    case 6: /* CLOCK_MONOTONIC_COARSE */
    case 7: /* CLOCK_BOOTTIME */
        ns = monotonic_ns(c);
        break;
    default:
        return syscall3(NR_clock_gettime, clock, (long)ts, 0);
    }
    ts->tv_sec = (long)(ns / NSEC);
    ts->tv_nsec = (long)(ns % NSEC);
    return 0;
}

long vdso_gettimeofday(struct timeval *tv, struct timezone *tz) {
    const volatile struct vdso_clock *c = clock_page();
    if (!usable(c))
        return syscall3(NR_gettimeofday, (long)tv, (long)tz, 0);
    if (tv) {
        u64 ns = monotonic_ns(c) + c->realtime_offset_ns;
        tv->tv_sec = (long)(ns / NSEC);
        tv->tv_usec = (long)(ns % NSEC / 1000);
    }
    if (tz) {
        tz->tz_minuteswest = 0;
        tz->tz_dsttime = 0;
    }
    return 0;
}

long vdso_clock_getres(long clock, struct timespec *res) {
    return syscall3(NR_clock_getres, clock, (long)res, 0);
}

#if defined(__x86_64__)
long vdso_time(long *t) {
    const volatile struct vdso_clock *c = clock_page();
    if (!usable(c))
        return syscall3(NR_time, (long)t, 0, 0);
    long s = (long)((monotonic_ns(c) + c->realtime_offset_ns) / NSEC);
    if (t)
        *t = s;
    return s;
}

long vdso_getcpu(unsigned *cpu, unsigned *node, void *cache) {
    return syscall3(NR_getcpu, (long)cpu, (long)node, (long)cache);
}

/* Linux's x86_64 names: __vdso_* and the plain ones, version LINUX_2.6. */
long __vdso_clock_gettime(long, struct timespec *) __attribute__((alias("vdso_clock_gettime")));
long clock_gettime(long, struct timespec *) __attribute__((weak, alias("vdso_clock_gettime")));
long __vdso_gettimeofday(struct timeval *, struct timezone *) __attribute__((alias("vdso_gettimeofday")));
long gettimeofday(struct timeval *, struct timezone *) __attribute__((weak, alias("vdso_gettimeofday")));
long __vdso_clock_getres(long, struct timespec *) __attribute__((alias("vdso_clock_getres")));
long clock_getres(long, struct timespec *) __attribute__((weak, alias("vdso_clock_getres")));
long __vdso_time(long *) __attribute__((alias("vdso_time")));
long time(long *) __attribute__((weak, alias("vdso_time")));
long __vdso_getcpu(unsigned *, unsigned *, void *) __attribute__((alias("vdso_getcpu")));
long getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("vdso_getcpu")));
#else
/* Linux's arm64 names, version LINUX_2.6.39. */
long __kernel_clock_gettime(long, struct timespec *) __attribute__((alias("vdso_clock_gettime")));
long __kernel_gettimeofday(struct timeval *, struct timezone *) __attribute__((alias("vdso_gettimeofday")));
long __kernel_clock_getres(long, struct timespec *) __attribute__((alias("vdso_clock_getres")));
#endif
