/* A dynamically linked program (built twice: against glibc and against musl): its loader maps
 * it, its libc and a library it needs (DT_NEEDED, found through RUNPATH), runs constructors,
 * sets up TLS for the main thread and for new threads, resolves symbols lazily and at dlopen,
 * and finds a plugin at run time (dlopen, dlsym, dlclose, and dlerror for a missing one).
 * Everything printed is deterministic and compared with Linux's output. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#ifndef LIBDIR
#error LIBDIR must name the directory of the test libraries
#endif

extern int shared_calls;
extern const char shared_name[];
int shared_add(int a, int b);

static __thread int tls_counter = 7;

static void *worker(void *arg) {
    int n = (int)(long)arg;
    for (int i = 0; i < n; i++)
        tls_counter++;
    return (void *)(long)tls_counter;
}

static int by_value(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static void goodbye(void) { printf("atexit handler ran\n"); }

int main(int argc, char **argv) {
    (void)argv;
    setvbuf(stdout, NULL, _IONBF, 0);
    atexit(goodbye);
    printf("argc %d\n", argc);
    printf("loaded by an interpreter: %d\n", getauxval(AT_BASE) != 0);
    printf("program headers found: %d\n", getauxval(AT_PHDR) != 0);
    int ran = shared_calls >= 100;
    int sum = shared_add(2, 3);
    printf("%s: constructor ran: %d, 2 + 3 = %d, calls %d\n", shared_name, ran, sum, shared_calls - 100);

    pthread_t t[3];
    for (long i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, worker, (void *)(i * 10 + 1));
    for (int i = 0; i < 3; i++) {
        void *r;
        pthread_join(t[i], &r);
        printf("thread %d: its tls counter ended at %ld\n", i, (long)r);
    }
    printf("main thread's tls counter is still %d\n", tls_counter);

    int v[] = {5, 3, 9, 1, 7};
    qsort(v, 5, sizeof v[0], by_value);
    printf("sorted: %d %d %d %d %d, %.3f\n", v[0], v[1], v[2], v[3], v[4], strtod("2.71828", NULL) * 2);

    void *h = dlopen(LIBDIR "/libcairnplug.so", RTLD_NOW);
    if (!h) {
        printf("dlopen failed: %s\n", dlerror());
        return 1;
    }
    int (*greet)(const char *, char *, int) = (int (*)(const char *, char *, int))dlsym(h, "plug_greet");
    char buf[96];
    if (!greet) {
        printf("dlsym failed\n");
        return 1;
    }
    greet("main", buf, sizeof buf);
    printf("%s\n", buf);
    greet("main", buf, sizeof buf);
    printf("%s\n", buf);
    printf("dlsym of a missing symbol: %s\n", dlsym(h, "no_such_symbol") ? "found" : "null");
    printf("dlclose: %d\n", dlclose(h));
    printf("dlopen of a missing library: %s\n", dlopen(LIBDIR "/libnothere.so", RTLD_NOW) ? "opened" : "null");
    errno = 0;
    printf("strerror(ENOENT): %s\n", strerror(ENOENT));
    return 0;
}
