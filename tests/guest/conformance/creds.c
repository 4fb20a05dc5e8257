// Credentials and limits: real/effective/saved ids and groups with Linux's permission rules
// (root may do anything, others EPERM), inheritance across fork and execve, kill permission,
// resource limits (EPERM raising a hard limit, RLIMIT_NOFILE enforced, RLIMIT_STACK sizing the
// stack at exec), getrusage, times, sched_yield, sched_getaffinity, getpriority/setpriority.
// Prints the same on Linux.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *en(long r) {
    if (r != -1) return "ok";
    switch (errno) {
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case EACCES: return "EACCES";
    case ESRCH: return "ESRCH";
    case EMFILE: return "EMFILE";
    case EBADF: return "EBADF";
    default: return strerror(errno);
    }
}

static void ids(const char *when) {
    uid_t r, e, s;
    gid_t gr, ge, gs;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    printf("%s: uid %d %d %d gid %d %d %d\n", when, r, e, s, gr, ge, gs);
}

static volatile unsigned long sink;
static void busy(int ms) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do {
        for (int i = 0; i < 10000; i++) sink += i;
        clock_gettime(CLOCK_MONOTONIC, &b);
    } while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < ms);
}

static int recurse(int n) {
    volatile char pad[4096];
    pad[0] = (char)n;
    return n == 0 ? pad[0] : recurse(n - 1) + pad[0];
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IONBF, 0);
    if (argc > 2 && strcmp(argv[1], "recurse") == 0) {
        recurse(atoi(argv[2])); // argv[2] pages of stack
        printf("recursed %s pages\n", argv[2]);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "ids") == 0) {
        ids("after execve");
        return 0;
    }
    ids("root");
    gid_t gs[] = {30, 10, 20};
    printf("setgroups: %s\n", en(setgroups(3, gs)));
    gid_t got[8];
    int n = getgroups(8, got);
    printf("getgroups: %d:", n);
    for (int i = 0; i < n; i++) printf(" %d", got[i]);
    printf("\n");
    printf("getgroups(0): %d\n", getgroups(0, 0));
    errno = 0;
    printf("getgroups into 1 slot: %s\n", en(getgroups(1, got)));

    pid_t c = fork();
    if (c == 0) {
        // Root may set anything: all three ids, saved one included.
        printf("setresgid(100, 100, 100): %s\n", en(setresgid(100, 100, 100)));
        printf("setresuid(1000, 2000, 0): %s\n", en(setresuid(1000, 2000, 0)));
        ids("mixed");
        printf("setgroups as euid 2000: %s\n", en(setgroups(0, 0)));
        printf("seteuid(0) with saved uid 0: %s\n", en(seteuid(0)));
        printf("setgroups again as euid 0: %s\n", en(setgroups(0, 0)));
        printf("setresuid(1000, 1000, 1000): %s\n", en(setresuid(1000, 1000, 1000)));
        ids("user");
        printf("setuid(0): %s\n", en(setuid(0)));
        printf("setuid(1000): %s\n", en(setuid(1000)));
        printf("setreuid(-1, 0): %s\n", en(setreuid(-1, 0)));
        printf("setresuid(-1, -1, 5): %s\n", en(setresuid(-1, -1, 5)));
        printf("setgid(0): %s\n", en(setgid(0)));
        printf("setregid(100, 100): %s\n", en(setregid(100, 100)));
        int fs_old = setfsuid(0);
        int fs_now = setfsuid(-1);
        printf("setfsuid(0) returns the old %d, then %d\n", fs_old, fs_now);
        printf("kill(1, 0): %s\n", en(kill(1, 0)));
        printf("kill(parent, 0): %s\n", en(kill(getppid(), 0)));
        printf("kill(self, 0): %s\n", en(kill(getpid(), 0)));
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        struct rlimit up = {rl.rlim_cur, rl.rlim_max + 1};
        printf("raise the hard NOFILE limit: %s\n", en(setrlimit(RLIMIT_NOFILE, &up)));
        struct rlimit down = {256, 512};
        printf("lower it: %s\n", en(setrlimit(RLIMIT_NOFILE, &down)));
        printf("raise it back: %s\n", en(setrlimit(RLIMIT_NOFILE, &rl)));
        printf("prlimit on the parent: %s\n", en(prlimit(getppid(), RLIMIT_NOFILE, 0, &rl)));
        const char *r5 = en(setpriority(PRIO_PROCESS, 0, 5));
        printf("setpriority 5: %s, getpriority %d\n", r5, getpriority(PRIO_PROCESS, 0));
        printf("setpriority -5: %s\n", en(setpriority(PRIO_PROCESS, 0, -5)));
        pid_t g = fork();
        if (g == 0) {
            ids("grandchild");
            _exit(0);
        }
        waitpid(g, 0, 0);
        char *av[] = {"creds", "ids", 0};
        execv("/usr/libexec/cairn/creds", av);
        printf("execv: %s\n", strerror(errno));
        _exit(1);
    }
    waitpid(c, 0, 0);

    // Limits.
    struct rlimit rl;
    const char *names[] = {"CPU", "FSIZE", "DATA", "STACK", "CORE", "NOFILE", "AS"};
    int res[] = {RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_DATA, RLIMIT_STACK, RLIMIT_CORE, RLIMIT_NOFILE, RLIMIT_AS};
    for (int i = 0; i < 7; i++) {
        getrlimit(res[i], &rl);
        printf("RLIMIT_%s: ", names[i]);
        if (rl.rlim_cur == RLIM_INFINITY) printf("unlimited "); else printf("%lu ", (unsigned long)rl.rlim_cur);
        if (rl.rlim_max == RLIM_INFINITY) printf("unlimited\n"); else printf("%lu\n", (unsigned long)rl.rlim_max);
    }
    struct rlimit bad = {10, 5};
    printf("soft above hard: %s\n", en(setrlimit(RLIMIT_NOFILE, &bad)));
    printf("resource 100: %s\n", en(syscall(SYS_prlimit64, 0, 100, 0, &rl)));
    printf("prlimit of no such process: %s\n", en(prlimit(999999, RLIMIT_NOFILE, 0, &rl)));
    struct rlimit ten = {10, 4096};
    setrlimit(RLIMIT_NOFILE, &ten);
    int opened = 0, fd;
    while ((fd = open("/etc/passwd", O_RDONLY)) >= 0) opened++;
    printf("with RLIMIT_NOFILE 10: opened %d more, then %s\n", opened, en(fd));
    printf("dup2 past the limit: %s\n", en(dup2(0, 50)));
    printf("fcntl F_DUPFD past the limit: %s\n", en(fcntl(0, F_DUPFD, 20)));
    for (int i = 3; i < 10; i++) close(i);
    struct rlimit normal = {1024, 4096};
    setrlimit(RLIMIT_NOFILE, &normal);

    // RLIMIT_STACK sizes the stack of the next program.
    for (int k = 0; k < 2; k++) {
        c = fork();
        if (c == 0) {
            struct rlimit st = {k == 0 ? 256 * 1024 : 64 * 1024 * 1024, RLIM_INFINITY};
            setrlimit(RLIMIT_STACK, &st);
            char *av[] = {"creds", "recurse", "1024", 0}; // 4 MiB of stack
            execv("/usr/libexec/cairn/creds", av);
            _exit(1);
        }
        int status;
        waitpid(c, &status, 0);
        printf("4 MiB of recursion with RLIMIT_STACK %s: %s\n", k == 0 ? "256 KiB" : "64 MiB",
               WIFSIGNALED(status) ? (WTERMSIG(status) == SIGSEGV ? "SIGSEGV" : "other signal") : "fine");
    }

    // CPU time.
    busy(300);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("getrusage self: user time > 0: %s\n", ru.ru_utime.tv_sec > 0 || ru.ru_utime.tv_usec > 0 ? "yes" : "no");
    c = fork();
    if (c == 0) {
        busy(300);
        _exit(0);
    }
    waitpid(c, 0, 0);
    getrusage(RUSAGE_CHILDREN, &ru);
    printf("getrusage children: user time > 0: %s\n", ru.ru_utime.tv_sec > 0 || ru.ru_utime.tv_usec > 0 ? "yes" : "no");
    printf("getrusage(5): %s\n", en(getrusage(5, &ru)));
    struct tms t;
    clock_t now = times(&t);
    printf("times: clock %s, user ticks > 0: %s, children's > 0: %s\n", now != (clock_t)-1 ? "ok" : "failed",
           t.tms_utime > 0 ? "yes" : "no", t.tms_cutime > 0 ? "yes" : "no");

    // Scheduling.
    printf("sched_yield: %d\n", sched_yield());
    cpu_set_t set;
    CPU_ZERO(&set);
    const char *ra = en(sched_getaffinity(0, sizeof set, &set));
    printf("sched_getaffinity: %s, CPUs %d, CPU 0 %d\n", ra, CPU_COUNT(&set), CPU_ISSET(0, &set));
    printf("raw sched_getaffinity returns %ld\n", syscall(SYS_sched_getaffinity, 0, sizeof set, &set));
    printf("sched_getaffinity with 4 bytes: %s\n", en(syscall(SYS_sched_getaffinity, 0, 4, &set)));
    printf("sched_getaffinity of no such process: %s\n", en(sched_getaffinity(999999, sizeof set, &set)));
    printf("sched_getscheduler: %d\n", sched_getscheduler(0));
    printf("priority range of SCHED_FIFO: %d..%d\n", sched_get_priority_min(SCHED_FIFO), sched_get_priority_max(SCHED_FIFO));
    errno = 0;
    int pr = getpriority(PRIO_PROCESS, 0);
    printf("getpriority: %d %s\n", pr, en(errno ? -1 : 0));
    const char *rr = en(setpriority(PRIO_PROCESS, 0, -3));
    printf("setpriority -3 as root: %s, now %d\n", rr, getpriority(PRIO_PROCESS, 0));
    rr = en(setpriority(PRIO_PROCESS, 0, 100));
    printf("setpriority 100 is clamped: %s, now %d\n", rr, getpriority(PRIO_PROCESS, 0));
    printf("getpriority bad which: %s\n", en(getpriority(9, 0)));
    printf("getpriority no such process: %s\n", en(getpriority(PRIO_PROCESS, 999999)));

    // The plain identity calls follow every change (Cairn answers them without a request):
    // set*id, and reparenting to pid 1 when the parent exits.
    int go[2], done[2];
    pipe(go);
    pipe(done);
    pid_t mid = fork();
    if (mid == 0) {
        if (fork() == 0) {
            char b;
            read(go[0], &b, 1); // the middle process is gone by now
            printf("orphan: getppid %d, getpid == gettid: %s\n", getppid(),
                   getpid() == syscall(SYS_gettid) ? "yes" : "no");
            setresgid(7, 8, 8);
            setresuid(5, 6, 6);
            printf("after setresuid(5, 6, 6): getuid %d geteuid %d getgid %d getegid %d\n", getuid(), geteuid(),
                   getgid(), getegid());
            _exit(0);
        }
        _exit(0);
    }
    close(done[1]);
    waitpid(mid, 0, 0);
    write(go[1], "x", 1);
    char b;
    read(done[0], &b, 1); // end of file once the orphan has exited
    printf("parent: getppid is not our pid: %s\n", getppid() != getpid() ? "yes" : "no");

    // Search permission follows chmod at once, also along a path walked just before.
    mkdir("/tmp/cr", 0755);
    mkdir("/tmp/cr/in", 0755);
    close(open("/tmp/cr/in/f", O_CREAT | O_WRONLY, 0644));
    int ask[2], told[2];
    pipe(ask);
    pipe(told);
    c = fork();
    if (c == 0) {
        setuid(1000);
        char b;
        for (int step = 0; step < 3; step++) {
            int fd = open("/tmp/cr/in/f", O_RDONLY);
            printf("as uid 1000, step %d: open /tmp/cr/in/f: %s\n", step, en(fd));
            if (fd >= 0) close(fd);
            write(ask[1], "x", 1);
            read(told[0], &b, 1);
        }
        _exit(0);
    }
    const mode_t modes[] = {0700, 0755, 0};
    for (int step = 0; step < 3; step++) {
        read(ask[0], &b, 1);
        if (modes[step]) chmod("/tmp/cr", modes[step]);
        write(told[1], "x", 1);
    }
    waitpid(c, 0, 0);
    return 0;
}
