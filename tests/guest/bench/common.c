/* The driver shared by every benchmark program of `just bench` (linked into each of them).
 *
 * A benchmark file defines `bench_name` and `bench_run(n)`, which performs the measured
 * operation n times and returns 0 (non-zero: the operation failed). This file times
 * bench_run with clock_gettime(CLOCK_MONOTONIC), growing n until one timed run lasts at least
 * the target (default 300 ms, or argv[1] in milliseconds), so that the same binary gives a
 * meaningful number on a fast and a slow kernel, and prints
 *
 *     BENCH <name> <ns_per_op> <n>
 *
 * (the last timed run only: the shorter ones before it double as warm-up). On failure it
 * prints `BENCH-FAIL <name> <why>` and exits 1. Static, no threads, no signals: the programs
 * must run on Cairn as it is. Arguments after the target are the benchmark's own
 * (`bench_argc`/`bench_argv`, counted from argv[2]). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern const char bench_name[];
int bench_run(long n);

/* The benchmark's own arguments: argv[2] and after. */
int bench_argc;
char **bench_argv;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* For the benchmarks: report why an operation failed, once. */
void bench_fail(const char *what)
{
    printf("BENCH-FAIL %s %s: %s\n", bench_name, what, strerror(errno));
    fflush(stdout);
}

int main(int argc, char **argv)
{
    long long target = 300LL * 1000000LL;
    if (argc > 1)
        target = atoll(argv[1]) * 1000000LL;
    if (argc > 2) {
        bench_argc = argc - 2;
        bench_argv = argv + 2;
    }
    long n = 1;
    for (;;) {
        long long t0 = now_ns();
        if (bench_run(n) != 0) {
            printf("BENCH-FAIL %s after %ld iterations\n", bench_name, n);
            fflush(stdout);
            return 1;
        }
        long long dt = now_ns() - t0;
        if (dt >= target || n >= (1L << 40)) {
            printf("BENCH %s %.1f %ld\n", bench_name, (double)dt / (double)n, n);
            fflush(stdout);
            return 0;
        }
        /* Aim 25% past the target, growing by 2x to 16x per step. */
        double f = dt > 0 ? (double)target * 1.25 / (double)dt : 16.0;
        if (f < 2.0)
            f = 2.0;
        if (f > 16.0)
            f = 16.0;
        n = (long)((double)n * f);
    }
}
