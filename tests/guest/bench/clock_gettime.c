/* clock_gettime(CLOCK_MONOTONIC) through libc: the vDSO on Linux (no kernel entry), a system
 * call where there is no vDSO (Cairn today). See clock_gettime_sys.c for the system call. */
#include <time.h>

const char bench_name[] = "clock_gettime";

int bench_run(long n)
{
    struct timespec ts;
    for (long i = 0; i < n; i++)
        if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
            return 1;
    return 0;
}
