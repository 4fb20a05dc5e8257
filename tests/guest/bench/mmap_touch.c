/* mmap + touch + munmap: map 256 KiB of anonymous memory, write one byte in each of its 64
 * pages (one page fault each), unmap it. One operation = the whole cycle. */
#include <sys/mman.h>

const char bench_name[] = "mmap_touch";
void bench_fail(const char *what);

#define SIZE (256 << 10)
#define PAGE 4096

int bench_run(long n)
{
    for (long i = 0; i < n; i++) {
        char *p = mmap(0, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            bench_fail("mmap");
            return 1;
        }
        for (long off = 0; off < SIZE; off += PAGE)
            p[off] = 1;
        if (munmap(p, SIZE) != 0) {
            bench_fail("munmap");
            return 1;
        }
    }
    return 0;
}
