/* A library the dynamic test program is linked against (DT_NEEDED, found through its RUNPATH):
 * a function, a data symbol the program reads, and a constructor that runs before main. */
#include <stdio.h>

int shared_calls;
const char shared_name[] = "libcairnshared";

__attribute__((constructor)) static void shared_init(void) { shared_calls = 100; }

int shared_add(int a, int b) {
    shared_calls++;
    return a + b;
}
