/* clock_gettime(CLOCK_MONOTONIC) as a real system call on every kernel (no vDSO). */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

const char bench_name[] = "clock_gettime_sys";

int bench_run(long n)
{
    struct timespec ts;
    for (long i = 0; i < n; i++)
        if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) != 0)
            return 1;
    return 0;
}
