// Running out of threads or processes is EAGAIN, never a crash: 300 threads and 300 children
// are asked for (Linux gives them all; a smaller kernel may refuse some, but only with EAGAIN),
// then everything is released and creating more works again. Prints the same on Linux.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 300

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int release;

static void *parked(void *arg) {
    (void)arg;
    pthread_mutex_lock(&m);
    while (!release) pthread_cond_wait(&cv, &m);
    pthread_mutex_unlock(&m);
    return 0;
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    static pthread_t t[N];
    int made = 0, bad = 0;
    for (int i = 0; i < N; i++) {
        int r = pthread_create(&t[made], &a, parked, 0);
        if (r == 0)
            made++;
        else if (r != EAGAIN) {
            printf("pthread_create: %s\n", strerror(r));
            bad = 1;
        }
    }
    pthread_mutex_lock(&m);
    release = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&m);
    for (int i = 0; i < made; i++) pthread_join(t[i], 0);
    printf("%d threads asked for: created or EAGAIN: %s\n", N, bad ? "no" : "yes");
    pthread_t again;
    release = 1;
    printf("a thread after they are gone: %s\n", pthread_create(&again, 0, parked, 0) == 0 ? "created" : "failed");
    pthread_join(again, 0);

    int p[2];
    if (pipe(p) != 0) return 1;
    int kids = 0;
    bad = 0;
    for (int i = 0; i < N; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            char c;
            close(p[1]);
            (void)read(p[0], &c, 1); // parked until the parent closes the pipe
            _exit(0);
        }
        if (pid > 0)
            kids++;
        else if (errno != EAGAIN) {
            printf("fork: %s\n", strerror(errno));
            bad = 1;
        }
    }
    close(p[1]);
    int reaped = 0;
    while (wait(0) > 0) reaped++;
    printf("%d children asked for: forked or EAGAIN: %s; all reaped: %s\n", N, bad ? "no" : "yes",
           reaped == kids ? "yes" : "no");
    pid_t pid = fork();
    if (pid == 0) _exit(9);
    int st;
    waitpid(pid, &st, 0);
    printf("a child after they are gone: status %d\n", WEXITSTATUS(st));
    return 0;
}
