// Memory: mremap (shrink, grow in place, move with MREMAP_MAYMOVE, MREMAP_FIXED), madvise
// (MADV_DONTNEED zeroes private anonymous pages), msync, mincore, MAP_FIXED_NOREPLACE,
// MAP_GROWSDOWN, MAP_NORESERVE, MAP_SHARED across fork, PROT_NONE guard pages, SIGSEGV and
// SIGBUS (a file mapping past the end of the file) with si_addr, brk, and the EINVAL/ENOMEM/
// EFAULT/EEXIST errors. Prints the same on Linux.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096

static sigjmp_buf env;
static siginfo_t fault;
static void on_fault(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    fault = *si;
    siglongjmp(env, 1);
}

// Touches *p for reading: returns 0, or the signal it raised (fault has the details).
static int probe(volatile char *p, int write) {
    memset(&fault, 0, sizeof fault);
    if (sigsetjmp(env, 1) == 0) {
        if (write)
            *p = 1;
        else
            (void)*p;
        return 0;
    }
    return fault.si_signo;
}

static const char *en(long r) {
    if (r != -1) return "ok";
    switch (errno) {
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EFAULT: return "EFAULT";
    case EEXIST: return "EEXIST";
    case EBADF: return "EBADF";
    case EACCES: return "EACCES";
    default: return strerror(errno);
    }
}

static const char *em(void *p) {
    return p == MAP_FAILED ? en(-1) : "ok";
}

static char *map(size_t len, int prot) {
    return mmap(0, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, 0);
    sigaction(SIGBUS, &sa, 0);

    // mremap: shrink in place.
    char *a = map(4 * PG, PROT_READ | PROT_WRITE);
    for (int i = 0; i < 4 * PG; i++) a[i] = (char)(i / PG + 'a');
    char *b = mremap(a, 4 * PG, 2 * PG, 0);
    int sig = probe(a + 3 * PG, 0);
    printf("shrink: same place %d, data %c%c, tail gone: %s\n", b == a, b[0], b[PG], sig == SIGSEGV ? "yes" : "no");
    // Grow in place into free room (reserved first, then given back).
    char *r = mmap(0, 16 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(r + 2 * PG, 14 * PG);
    memset(r, 0, 0);
    mprotect(r, 2 * PG, PROT_READ | PROT_WRITE);
    r[0] = 'x';
    b = mremap(r, 2 * PG, 6 * PG, 0);
    printf("grow in place: same place %d, data %c, new pages zero %d\n", b == r, b[0], b[5 * PG] == 0);
    // Blocked growth: ENOMEM without MREMAP_MAYMOVE, a move with it.
    char *c = mmap(r + 6 * PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("neighbour placed: %d\n", c == r + 6 * PG);
    printf("grow into a neighbour: %s\n", em(mremap(r, 6 * PG, 8 * PG, 0)));
    b = mremap(r, 6 * PG, 8 * PG, MREMAP_MAYMOVE);
    sig = probe(r, 0);
    printf("grow with MREMAP_MAYMOVE: moved %d, data %c, old place gone: %s\n", b != r && b != MAP_FAILED, b[0],
           sig == SIGSEGV ? "yes" : "no");
    // MREMAP_FIXED.
    char *dst = mmap(0, 4 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *m = mremap(b, 8 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
    sig = probe(m + 1, 1);
    printf("MREMAP_FIXED: at the address %d, data %c, protection kept %s\n", m == dst, m[0], sig == 0 ? "yes" : "no");
    printf("MREMAP_FIXED over itself: %s\n", em(mremap(m, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, m + PG)));
    printf("MREMAP_FIXED without MAYMOVE: %s\n", em(mremap(m, 2 * PG, 2 * PG, MREMAP_FIXED, r)));
    printf("mremap unaligned: %s\n", em(mremap(m + 1, PG, PG, 0)));
    printf("mremap to size 0: %s\n", em(mremap(m, PG, 0, MREMAP_MAYMOVE)));
    printf("mremap of unmapped memory: %s\n", em(mremap(r, PG, 2 * PG, MREMAP_MAYMOVE)));
    printf("mremap bad flags: %s\n", em(mremap(m, PG, PG, 0x100)));

    // madvise.
    char *d = map(4 * PG, PROT_READ | PROT_WRITE);
    memset(d, 'q', 4 * PG);
    const char *res = en(madvise(d, 2 * PG, MADV_DONTNEED));
    printf("MADV_DONTNEED: %s, then reads %d %d\n", res, d[0], d[2 * PG] == 'q');
    printf("MADV_WILLNEED: %s\n", en(madvise(d, 4 * PG, MADV_WILLNEED)));
    printf("madvise bad advice: %s\n", en(madvise(d, PG, 999)));
    printf("madvise unaligned: %s\n", en(madvise(d + 1, PG, MADV_NORMAL)));
    printf("madvise on a hole: %s\n", en(madvise(r, PG, MADV_NORMAL)));

    // msync and mincore.
    printf("msync MS_SYNC: %s\n", en(msync(d, 4 * PG, MS_SYNC)));
    printf("msync MS_SYNC|MS_ASYNC: %s\n", en(msync(d, PG, MS_SYNC | MS_ASYNC)));
    printf("msync on a hole: %s\n", en(msync(r, PG, MS_SYNC)));
    printf("msync unaligned: %s\n", en(msync(d + 8, PG, MS_SYNC)));
    char *e = map(4 * PG, PROT_READ | PROT_WRITE);
    e[0] = 1;
    e[2 * PG] = 1;
    unsigned char vec[4] = {9, 9, 9, 9};
    int rc = mincore(e, 4 * PG, vec);
    printf("mincore: %d [%d %d %d %d]\n", rc, vec[0] & 1, vec[1] & 1, vec[2] & 1, vec[3] & 1);
    printf("mincore on a hole: %s\n", en(mincore(r, PG, vec)));
    printf("mincore unaligned: %s\n", en(mincore(e + 1, PG, vec)));
    printf("mincore bad vector: %s\n", en(mincore(e, PG, (unsigned char *)8)));

    // MAP_FIXED_NOREPLACE.
    printf("MAP_FIXED_NOREPLACE over a mapping: %s\n", em(mmap(e, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)));
    char *fr = mmap(r, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    printf("MAP_FIXED_NOREPLACE on free room: at the address %d\n", fr == r);

    // MAP_GROWSDOWN: a fault just below it grows it.
    char *top = mmap((void *)0x300000000000, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
    sig = probe(top - 3 * PG, 1);
    printf("MAP_GROWSDOWN: %s, a write below it: %s\n", em(top), sig == 0 ? "grew" : "fault");
    // MAP_NORESERVE: a large reservation, touched sparsely.
    char *big = mmap(0, 1UL << 30, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    printf("1 GiB MAP_NORESERVE: %s\n", em(big));
    big[0] = big[(1UL << 30) - 1] = 7;
    printf("its first and last byte: %d %d\n", big[0], big[(1UL << 30) - 1]);
    munmap(big, 1UL << 30);
    // 16 TiB, touched at both ends, protected and unmapped whole (sparse: must be quick).
    char *huge = mmap(0, 1UL << 44, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    printf("16 TiB MAP_NORESERVE: %s\n", em(huge));
    if (huge != MAP_FAILED) {
        huge[0] = huge[(1UL << 44) - 1] = 3;
        const char *pr1 = en(mprotect(huge, 1UL << 44, PROT_READ));
        printf("mprotect it: %s, munmap it: %s\n", pr1, en(munmap(huge, 1UL << 44)));
    }
    printf("16 TiB without MAP_NORESERVE: %s\n", em(mmap(0, 1UL << 44, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));

    // A PROT_NONE guard page in the middle.
    char *g = map(3 * PG, PROT_READ | PROT_WRITE);
    mprotect(g + PG, PG, PROT_NONE);
    int before = probe(g, 1), after = probe(g + 2 * PG, 1);
    sig = probe(g + PG + 5, 0);
    printf("guard page: before %d, guard %d code %d addr ok %d, after %d\n", before, sig, fault.si_code,
           fault.si_addr == g + PG + 5, after);
    mprotect(g + PG, PG, PROT_READ | PROT_WRITE);
    sig = probe(g + PG, 1);
    printf("guard page made writable: %d\n", sig);
    // A page with data made PROT_NONE keeps the data for when it is accessible again.
    g[2 * PG] = 'k';
    mprotect(g + 2 * PG, PG, PROT_NONE);
    sig = probe(g + 2 * PG, 0);
    int wsig = probe(g + 2 * PG, 1);
    mprotect(g + 2 * PG, PG, PROT_READ);
    printf("touched page made PROT_NONE: read %d, write %d, readable again: %c\n", sig, wsig, g[2 * PG]);
    sig = probe(c, 1);
    printf("write to a read-only mapping: signal %d code %d\n", sig, fault.si_code);
    sig = probe((char *)0x1000, 0);
    printf("read of an unmapped address: signal %d code %d addr %p\n", sig, fault.si_code, fault.si_addr);

    // MAP_SHARED anonymous memory is shared with a child; private memory is not.
    int *sh = mmap(0, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int *pr = (int *)map(PG, PROT_READ | PROT_WRITE);
    *sh = 1;
    *pr = 1;
    int pp[2];
    pipe(pp);
    write(pp[1], "kw", 2);
    pid_t k = fork();
    if (k == 0) {
        *sh = 2;
        *pr = 2;
        (void)read(pp[0], (char *)(sh + 1), 2); // a kernel write into the shared page
        _exit(0);
    }
    waitpid(k, 0, 0);
    printf("after the child's writes: shared %d, private %d, read into shared memory: %.2s\n", *sh, *pr, (char *)(sh + 1));

    // A file mapping past the end of the file: SIGBUS.
    int fd = open("/tmp/mapped", O_RDWR | O_CREAT | O_TRUNC, 0644);
    write(fd, "hello, file", 11);
    char *f = mmap(0, 2 * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    sig = probe(f + PG + 10, 0);
    printf("file mapping: %.5s, past the data in its page %d, next page: signal %d code %d addr ok %d\n", f, f[100], sig,
           fault.si_code, fault.si_addr == f + PG + 10);
    printf("mmap of a bad fd: %s\n", em(mmap(0, PG, PROT_READ, MAP_PRIVATE, 99, 0)));
    close(fd);

    // brk.
    char *b0 = sbrk(0);
    sbrk(3 * PG);
    b0[3 * PG - 1] = 5;
    sbrk(-3 * PG);
    printf("brk: grew and shrank back: %d\n", sbrk(0) == b0);
    printf("brk below the start: unchanged %d\n", (char *)syscall(SYS_brk, 4096) == b0);

    // Argument errors.
    printf("mmap length 0: %s\n", em(mmap(0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
    printf("mmap without PRIVATE or SHARED: %s\n", em(mmap(0, PG, PROT_READ, MAP_ANONYMOUS, -1, 0)));
    printf("mmap unaligned offset: %s\n", em(mmap(0, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 1)));
    printf("mmap MAP_FIXED unaligned: %s\n", em(mmap((void *)0x100001, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)));
    printf("mmap a huge length: %s\n", em(mmap(0, (size_t)1 << 62, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
    printf("munmap unaligned: %s\n", en(munmap(g + 1, PG)));
    printf("munmap length 0: %s\n", en(munmap(g, 0)));
    printf("munmap of nothing: %s\n", en(munmap(r + 8 * PG, PG)));
    printf("mprotect unaligned: %s\n", en(mprotect(g + 1, PG, PROT_READ)));
    printf("mprotect of a hole: %s\n", en(mprotect(r + 8 * PG, PG, PROT_READ)));
    printf("mprotect bad bits: %s\n", en(mprotect(g, PG, 0x40)));
    return 0;
}
