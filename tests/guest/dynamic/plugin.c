/* A library the dynamic test program opens at run time with dlopen. Its thread-local counter
 * lives in the dynamic TLS of each thread that touches it. */
#include <stdio.h>

static __thread int uses;

int plug_greet(const char *who, char *out, int len) {
    uses++;
    return snprintf(out, len, "plugin greets %s (use %d in this thread)", who, uses);
}
