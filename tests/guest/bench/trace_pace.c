/* trace_pace: getpid, then a user-mode spin of argv[2] iterations (no system call), over and
 * over. On Cairn with tracing on, each getpid makes 7 trace records, so the spin sets the rate
 * at which records are made, and the machine never idles: the trace stream is drained only by
 * timer ticks. `just bench-trace` runs it at several spins to find the rate the stream sustains
 * without drops. */
#include <stdlib.h>
#include <unistd.h>

extern int bench_argc;
extern char **bench_argv;

const char bench_name[] = "trace_pace";

int bench_run(long n)
{
    long spin = bench_argc > 0 ? atol(bench_argv[0]) : 0;
    for (long i = 0; i < n; i++) {
        if (getpid() <= 0)
            return 1;
        for (volatile long j = 0; j < spin; j++)
            ;
    }
    return 0;
}
