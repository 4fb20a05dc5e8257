/* open + read + close of a small file of the initramfs (/etc/hostname). */
#include <fcntl.h>
#include <unistd.h>

const char bench_name[] = "open_read_close";
void bench_fail(const char *what);

int bench_run(long n)
{
    char buf[256];
    for (long i = 0; i < n; i++) {
        int fd = open("/etc/hostname", O_RDONLY);
        if (fd < 0) {
            bench_fail("open /etc/hostname");
            return 1;
        }
        if (read(fd, buf, sizeof buf) <= 0) {
            bench_fail("read");
            return 1;
        }
        close(fd);
    }
    return 0;
}
