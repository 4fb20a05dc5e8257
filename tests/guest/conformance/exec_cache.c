// An executable rewritten in place (same inode, same size, within the same second) runs as
// its new contents, and many processes running one program at once each get their own data:
// whatever a kernel shares between execs of a file must follow the file. Prints the same on
// Linux.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int run(char *const argv[]) {
    pid_t p = fork();
    if (p == 0) {
        execv("/tmp/prog", argv);
        _exit(127);
    }
    int st;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY);
    struct stat s;
    fstat(fd, &s);
    char *b = malloc(s.st_size);
    size_t n = 0;
    while (n < (size_t)s.st_size) {
        ssize_t r = read(fd, b + n, s.st_size - n);
        if (r <= 0) break;
        n += r;
    }
    close(fd);
    *len = n;
    return b;
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    size_t len;
    char *bb = slurp("/bin/busybox", &len);
    int fd = open("/tmp/prog", O_WRONLY | O_CREAT | O_TRUNC, 0755);
    for (size_t done = 0; done < len;) {
        ssize_t w = write(fd, bb + done, len - done);
        if (w <= 0) return 1;
        done += w;
    }
    close(fd);
    char *echo[] = {"echo", "first run", 0};
    printf("status %d\n", run(echo));
    struct stat before;
    stat("/tmp/prog", &before);

    // Patch a message in place: same file, same size.
    char *at = memmem(bb, len, "applet not found", 16);
    if (!at) return 1;
    memcpy(at, "APPLET NOT FOUND", 16);
    fd = open("/tmp/prog", O_WRONLY);
    pwrite(fd, at, 16, at - bb);
    close(fd);
    struct stat after;
    stat("/tmp/prog", &after);
    printf("same inode %d, same size %d\n", before.st_ino == after.st_ino, before.st_size == after.st_size);
    char *nope[] = {"no-such-applet", 0};
    fflush(stdout);
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        dup2(p[1], 2);
        execv("/tmp/prog", nope);
        _exit(127);
    }
    close(p[1]);
    char msg[256] = {0};
    ssize_t n = 0, r;
    while ((r = read(p[0], msg + n, sizeof msg - 1 - n)) > 0) n += r;
    waitpid(c, 0, 0);
    printf("the patched program says: %s", msg);

    // Eight at once, each changing its own copy of the data.
    for (int i = 0; i < 8; i++) {
        if (fork() == 0) {
            char arg[32];
            snprintf(arg, sizeof arg, "child %d", i);
            char *av[] = {"sh", "-c", "x=$1; sleep 0.1; echo \"$x\" > /tmp/out.$2", "sh", arg, arg + 6, 0};
            execv("/tmp/prog", av);
            _exit(127);
        }
    }
    while (wait(0) > 0) {
    }
    for (int i = 0; i < 8; i++) {
        char path[32], buf[32] = {0};
        snprintf(path, sizeof path, "/tmp/out.%d", i);
        int f = open(path, O_RDONLY);
        read(f, buf, sizeof buf - 1);
        close(f);
        printf("%s", buf);
    }
    return 0;
}
