/* Files and directories, success and error paths, in the order a program meets them: open flags
 * (O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC, O_NONBLOCK), read and
 * write in all their forms, lseek, dup/dup2/dup3, fcntl, pipes (EPIPE and SIGPIPE), getdents64,
 * stat/lstat/fstat/statx, mkdir/rmdir/unlink/rename/link/symlink/readlink and their *at forms,
 * chmod/chown/utimensat, truncate, getcwd/chdir/fchdir, access, umask, a tmpfs mount, statfs.
 * Everything printed is deterministic (no inode numbers, times or addresses), so the output is
 * compared line by line with what Linux prints (files.expected, recorded by record.sh). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

/* An address no program owns (volatile so that the compiler does not check it). */
static void *volatile bad_pointer = (void *)16;

static const char *err(int e) {
    switch (e) {
    case 0: return "ok";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EBADF: return "EBADF";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case ENOSPC: return "ENOSPC";
    case ESPIPE: return "ESPIPE";
    case EPIPE: return "EPIPE";
    case ERANGE: return "ERANGE";
    case EAGAIN: return "EAGAIN";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ELOOP: return "ELOOP";
    case ENOTTY: return "ENOTTY";
    case ENODATA: return "ENODATA";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "errno %d", e);
        return buf;
    }
    }
}

/* Prints `what: ok` (or the value) / `what: ERRNO` for a call returning -1 on error. */
static long check(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, err(errno));
    else
        printf("%s: ok\n", what);
    return r;
}

static void value(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, err(errno));
    else
        printf("%s: %ld\n", what, r);
}

static void contents(const char *what, const char *path) {
    char buf[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("%s: %s\n", what, err(errno));
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n < 0 ? 0 : n] = 0;
    for (char *p = buf; *p; p++)
        if (*p == '\n')
            *p = '|';
    printf("%s: [%s]\n", what, buf);
}

static void contents_equal(const char *what, const char *a, const char *b) {
    FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb)
            same = 0;
        if (ca == EOF || cb == EOF)
            break;
    }
    printf("%s: %s\n", what, same ? "yes" : "no");
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
}

static void write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        write(fd, text, strlen(text));
        close(fd);
    }
}

static void mode_of(const char *what, const char *path, int follow) {
    struct stat st;
    int r = follow ? stat(path, &st) : lstat(path, &st);
    if (r < 0) {
        printf("%s: %s\n", what, err(errno));
        return;
    }
    const char *type = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir" : S_ISLNK(st.st_mode) ? "link"
                     : S_ISCHR(st.st_mode) ? "chr" : S_ISFIFO(st.st_mode) ? "fifo" : "other";
    printf("%s: %s %o nlink %ld size %ld\n", what, type, st.st_mode & 07777, (long)st.st_nlink,
           S_ISDIR(st.st_mode) ? 0L : (long)st.st_size);
}

static int sorted_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists a directory with getdents64, sorted. */
static void list(const char *what, const char *path) {
    char buf[4096];
    char *names[64];
    int count = 0;
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        printf("%s: %s\n", what, err(errno));
        return;
    }
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            struct { unsigned long ino; long off; unsigned short reclen; unsigned char type; char name[]; } *d = (void *)(buf + off);
            if (count < 64)
                names[count++] = strdup(d->name);
            off += d->reclen;
        }
    }
    close(fd);
    qsort(names, count, sizeof names[0], sorted_names);
    printf("%s:", what);
    for (int i = 0; i < count; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf("\n");
}

static void opens(void) {
    int fd;
    fd = check("open O_CREAT new", open("f", O_CREAT | O_WRONLY, 0640));
    check("write 5", write(fd, "hello", 5) == 5 ? 0 : -1);
    close(fd);
    mode_of("mode after umask 022", "f", 1);
    check("open O_CREAT|O_EXCL existing", open("f", O_CREAT | O_EXCL | O_WRONLY, 0600));
    check("open missing", open("missing", O_RDONLY));
    check("open missing/x", open("missing/x", O_RDONLY));
    check("open f/x (file as dir)", open("f/x", O_RDONLY));
    check("open dir for writing", open(".", O_WRONLY));
    check("open file with O_DIRECTORY", open("f", O_RDONLY | O_DIRECTORY));
    check("open O_RDWR|O_WRONLY", open("f", 3));
    fd = open("f", O_WRONLY | O_APPEND);
    write(fd, " world", 6);
    value("lseek in append mode", lseek(fd, 0, SEEK_CUR));
    close(fd);
    contents("after append", "f");
    fd = open("f", O_RDWR | O_TRUNC);
    value("size after O_TRUNC", lseek(fd, 0, SEEK_END));
    close(fd);
    symlink("f", "lnk");
    check("open link O_NOFOLLOW", open("lnk", O_RDONLY | O_NOFOLLOW));
    fd = check("open link followed", open("lnk", O_RDONLY));
    close(fd);
    fd = open("f", O_RDONLY | O_CLOEXEC);
    value("FD_CLOEXEC set", fcntl(fd, F_GETFD) & FD_CLOEXEC);
    fcntl(fd, F_SETFD, 0);
    value("FD_CLOEXEC cleared", fcntl(fd, F_GETFD) & FD_CLOEXEC);
    value("F_GETFL access mode", fcntl(fd, F_GETFL) & O_ACCMODE);
    check("write to O_RDONLY", write(fd, "x", 1));
    close(fd);
    check("close closed", close(fd));
    check("read bad fd", read(999, NULL, 0));
    char name[300];
    memset(name, 'n', 299);
    name[299] = 0;
    check("open 299-char name", open(name, O_CREAT | O_WRONLY, 0600));
}

static void rw(void) {
    write_file("data", "0123456789");
    int fd = open("data", O_RDWR);
    char buf[16] = {0};
    value("pread 4 at 3", pread(fd, buf, 4, 3));
    printf("pread got: %s\n", buf);
    value("offset after pread", lseek(fd, 0, SEEK_CUR));
    value("pwrite 2 at 8", pwrite(fd, "AB", 2, 8));
    value("lseek SEEK_END", lseek(fd, 0, SEEK_END));
    value("lseek -5 SEEK_CUR", lseek(fd, -5, SEEK_CUR));
    value("lseek negative", lseek(fd, -100, SEEK_SET));
    value("lseek bad whence", lseek(fd, 0, 7));
    value("lseek past end", lseek(fd, 20, SEEK_SET));
    value("write at 20", write(fd, "Z", 1));
    struct stat st;
    fstat(fd, &st);
    printf("size with hole: %ld\n", (long)st.st_size);
    lseek(fd, 12, SEEK_SET);
    memset(buf, 'x', sizeof buf);
    value("read in hole", read(fd, buf, 3));
    printf("hole bytes zero: %d\n", buf[0] == 0 && buf[1] == 0 && buf[2] == 0);
    struct iovec iov[3] = {{"ab", 2}, {"cde", 3}, {"f", 1}};
    lseek(fd, 0, SEEK_SET);
    value("writev 3 vectors", writev(fd, iov, 3));
    char a[2], b[4];
    struct iovec riov[2] = {{a, 2}, {b, 4}};
    lseek(fd, 0, SEEK_SET);
    value("readv", readv(fd, riov, 2));
    printf("readv got: %.2s %.4s\n", a, b);
    value("read to bad pointer", read(fd, bad_pointer, 4));
    value("write from bad pointer", write(fd, bad_pointer, 4));
    close(fd);
    contents("data", "data");
}

static void dups(void) {
    int fd = open("data", O_RDONLY);
    int d = dup(fd);
    lseek(fd, 4, SEEK_SET);
    value("dup shares the offset", lseek(d, 0, SEEK_CUR));
    value("dup2 to 50", dup2(fd, 50));
    value("dup2 same fd", dup2(fd, fd));
    value("dup3 same fd", dup3(fd, fd, 0));
    value("dup3 bad flags", dup3(fd, 51, 12345));
    value("dup3 O_CLOEXEC", dup3(fd, 52, O_CLOEXEC));
    value("cloexec of 52", fcntl(52, F_GETFD));
    value("F_DUPFD from 60", fcntl(fd, F_DUPFD, 60));
    value("dup bad fd", dup(777));
    value("dup2 bad fd", dup2(777, 3));
    value("fcntl bad cmd", fcntl(fd, 9999));
    close(d);
    close(50);
    close(52);
    close(60);
    close(fd);
}

static void pipes(void) {
    int p[2];
    check("pipe2 O_NONBLOCK", pipe2(p, O_NONBLOCK | O_CLOEXEC));
    char c;
    check("read empty nonblocking pipe", read(p[0], &c, 1));
    check("lseek on pipe", lseek(p[0], 0, SEEK_SET));
    check("pread on pipe", pread(p[0], &c, 1, 0));
    value("write 3 to pipe", write(p[1], "abc", 3));
    value("read 8 from pipe", read(p[0], (char[8]){0}, 8));
    close(p[1]);
    value("read after writers left", read(p[0], &c, 1));
    close(p[0]);
    check("pipe2 bad flags", pipe2(p, 0x12345));
    pipe(p);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    check("write with no reader (SIGPIPE ignored)", write(p[1], "x", 1));
    signal(SIGPIPE, SIG_DFL);
    pid_t pid = fork();
    if (pid == 0) {
        write(p[1], "x", 1);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child writing to a closed pipe: %s\n",
           WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE ? "killed by SIGPIPE" : "not killed");
    close(p[1]);
}

static void names(void) {
    check("mkdir d", mkdir("d", 0755));
    check("mkdir d again", mkdir("d", 0755));
    check("mkdir missing/x", mkdir("missing/x", 0755));
    check("mkdir f/x", mkdir("f/x", 0755));
    mode_of("d", "d", 1);
    write_file("d/a", "A");
    write_file("d/b", "B");
    check("mkdir d/sub", mkdir("d/sub", 0700));
    mode_of("d after subdir", "d", 1);
    list("ls d", "d");
    check("rmdir non-empty", rmdir("d"));
    check("rmdir file", rmdir("d/a"));
    check("unlink dir", unlink("d/sub"));
    check("rmdir .", rmdir("d/sub/."));
    check("unlink missing", unlink("d/zzz"));
    check("link d/a d/a2", link("d/a", "d/a2"));
    mode_of("d/a after link", "d/a", 1);
    check("link onto existing", link("d/a", "d/b"));
    check("link a directory", link("d", "d2"));
    check("rename a over b", rename("d/a", "d/b"));
    contents("d/b", "d/b");
    check("rename to missing dir", rename("d/b", "nodir/b"));
    check("rename dir into itself", rename("d", "d/sub/d"));
    check("rename file over dir", rename("d/b", "d/sub"));
    check("rename dir over file", rename("d/sub", "d/b"));
    check("mkdir e", mkdir("e", 0755));
    check("rename d/sub to e/sub (across)", rename("d/sub", "e/sub"));
    mode_of("d after move", "d", 1);
    mode_of("e after move", "e", 1);
    check("mkdir e/sub/x", mkdir("e/sub/x", 0755));
    check("rename e/sub over non-empty", rename("d", "e/sub"));
    check("renameat2 NOREPLACE existing", syscall(SYS_renameat2, AT_FDCWD, "d/b", AT_FDCWD, "d/a2", 1));
    check("renameat2 EXCHANGE", syscall(SYS_renameat2, AT_FDCWD, "d/b", AT_FDCWD, "d/a2", 2));
    contents("d/b after exchange", "d/b");
    check("symlink s -> d/b", symlink("d/b", "s"));
    check("symlink onto existing", symlink("x", "s"));
    char target[64] = {0};
    value("readlink s", readlink("s", target, sizeof target));
    printf("readlink target: %s\n", target);
    value("readlink of a file", readlink("f", target, sizeof target));
    value("readlink short buffer", readlink("s", target, 2));
    mode_of("lstat s", "s", 0);
    mode_of("stat s", "s", 1);
    symlink("loop2", "loop1");
    symlink("loop1", "loop2");
    check("open a link loop", open("loop1", O_RDONLY));
    symlink("nowhere", "dangling");
    check("stat dangling", access("dangling", F_OK));
    int dfd = open("d", O_RDONLY | O_DIRECTORY);
    check("openat relative", openat(dfd, "b", O_RDONLY) >= 0 ? 0 : -1);
    check("mkdirat", mkdirat(dfd, "m", 0755));
    check("unlinkat AT_REMOVEDIR", unlinkat(dfd, "m", AT_REMOVEDIR));
    check("unlinkat file", unlinkat(dfd, "a2", 0));
    check("openat on a file fd", openat(open("f", O_RDONLY), "x", O_RDONLY));
    check("unlinkat bad flags", unlinkat(dfd, "b", 0x4000));
    close(dfd);
}

static void attrs(void) {
    write_file("m", "12345");
    check("chmod 0600", chmod("m", 0600));
    mode_of("m", "m", 1);
    check("chmod missing", chmod("missing", 0600));
    check("chown to 1:2", chown("m", 1, 2));
    struct stat st;
    stat("m", &st);
    printf("owner: %d %d\n", (int)st.st_uid, (int)st.st_gid);
    check("chown -1 keeps", chown("m", -1, 5));
    stat("m", &st);
    printf("owner after -1: %d %d\n", (int)st.st_uid, (int)st.st_gid);
    struct timespec ts[2] = {{1000000000, 0}, {1500000000, 123}};
    check("utimensat", utimensat(AT_FDCWD, "m", ts, 0));
    stat("m", &st);
    printf("times: atime %ld mtime %ld.%09ld\n", (long)st.st_atime, (long)st.st_mtime, st.st_mtim.tv_nsec);
    struct timespec omit[2] = {{0, UTIME_OMIT}, {7, 0}};
    utimensat(AT_FDCWD, "m", omit, 0);
    stat("m", &st);
    printf("atime kept %ld, mtime %ld\n", (long)st.st_atime, (long)st.st_mtime);
    struct timespec bad[2] = {{0, 2000000000}, {0, 0}};
    check("utimensat bad nsec", utimensat(AT_FDCWD, "m", bad, 0));
    check("truncate to 2", truncate("m", 2));
    contents("m after truncate", "m");
    check("truncate to 8", truncate("m", 8));
    stat("m", &st);
    printf("size after growing: %ld\n", (long)st.st_size);
    check("truncate negative", truncate("m", -1));
    check("truncate a dir", truncate("d", 0));
    int fd = open("m", O_RDONLY);
    check("ftruncate read-only fd", ftruncate(fd, 0));
    close(fd);
    check("access f R_OK|W_OK", access("f", R_OK | W_OK));
    check("access f X_OK (root, no x bit)", access("f", X_OK));
    check("access d X_OK", access("d", X_OK));
    check("access bad mode", access("f", 0100));
    check("faccessat", faccessat(AT_FDCWD, "f", F_OK, 0));
    value("umask 077 (old)", umask(077));
    close(open("u", O_CREAT | O_WRONLY, 0666));
    mode_of("created under 077", "u", 1);
    value("umask back (old)", umask(022));
    struct statx sx;
    check("statx", syscall(SYS_statx, AT_FDCWD, "f", 0, 0x7ff, &sx));
    printf("statx size %llu mode %o\n", (unsigned long long)sx.stx_size, sx.stx_mode & 07777);
    check("fstat bad fd", fstat(999, &st));
    check("stat bad pointer", stat("f", bad_pointer));
    check("stat empty path", stat("", &st));
}

static void cwd(void) {
    char buf[256];
    check("chdir d", chdir("d"));
    printf("getcwd: %s\n", getcwd(buf, sizeof buf) ? buf : err(errno));
    check("getcwd small buffer", getcwd(buf, 3) ? 0 : -1);
    check("chdir ..", chdir(".."));
    check("chdir file", chdir("f"));
    check("chdir missing", chdir("missing"));
    int fd = open("e/sub", O_RDONLY | O_DIRECTORY);
    check("fchdir", fchdir(fd));
    printf("getcwd after fchdir: %s\n", getcwd(buf, sizeof buf) ? buf : err(errno));
    close(fd);
    fd = open("/work/f", O_RDONLY);
    check("fchdir to a file", fchdir(fd));
    close(fd);
    chdir("/work");
}

static void fs(void) {
    mkdir("mnt", 0755);
    check("mount tmpfs", mount("tmpfs", "mnt", "tmpfs", 0, NULL));
    write_file("mnt/inside", "in");
    list("ls mnt", "mnt");
    check("link across mounts", link("mnt/inside", "outside"));
    check("rename across mounts", rename("mnt/inside", "outside"));
    struct statfs sf;
    check("statfs mnt", statfs("mnt", &sf));
    printf("tmpfs magic: %s\n", sf.f_type == 0x01021994 ? "yes" : "no");
    int fd = open("mnt/inside", O_RDONLY);
    check("umount with a file open", umount("mnt"));
    close(fd);
    check("umount", umount("mnt"));
    list("ls mnt after umount", "mnt");
    check("mount bad type", mount("x", "mnt", "nosuchfs", 0, NULL));
    check("mount on missing", mount("tmpfs", "nowhere", "tmpfs", 0, NULL));
}

static void unlinked_open(void) {
    write_file("ghost", "still here");
    int fd = open("ghost", O_RDONLY);
    check("unlink open file", unlink("ghost"));
    check("access after unlink", access("ghost", F_OK));
    char buf[32] = {0};
    value("read unlinked open file", read(fd, buf, sizeof buf - 1));
    printf("it says: %s\n", buf);
    struct stat st;
    fstat(fd, &st);
    printf("nlink of unlinked: %ld\n", (long)st.st_nlink);
    close(fd);
}

/* One read or write of several MiB moves it all on a regular file (Linux splits nothing). */
static void big_io(void) {
    size_t len = 3 * 1024 * 1024 + 5;
    unsigned char *out = malloc(len), *in = malloc(len + 100);
    for (size_t i = 0; i < len; i++)
        out[i] = (unsigned char)(i * 7 + i / 4096);
    int fd = open("big", O_RDWR | O_CREAT | O_TRUNC, 0644);
    value("write 3 MiB + 5 at once", write(fd, out, len));
    value("offset after it", lseek(fd, 0, SEEK_CUR));
    lseek(fd, 0, SEEK_SET);
    memset(in, 0, len + 100);
    value("read it back at once (asking for 100 more)", read(fd, in, len + 100));
    printf("same bytes: %s\n", memcmp(in, out, len) == 0 ? "yes" : "no");
    value("offset after the read", lseek(fd, 0, SEEK_CUR));
    value("pread 2 MiB at 1 MiB - 3", pread(fd, in, 2 * 1024 * 1024, 1024 * 1024 - 3));
    printf("same bytes: %s\n", memcmp(in, out + 1024 * 1024 - 3, 2 * 1024 * 1024) == 0 ? "yes" : "no");
    close(fd);
    fd = open("big", O_WRONLY | O_APPEND);
    value("append 3 MiB + 5 at once", write(fd, out, len));
    close(fd);
    struct stat st;
    stat("big", &st);
    printf("size after the append: %ld\n", (long)st.st_size);
    unlink("big");
    free(out);
    free(in);
}

/* copy_file_range, extended attributes (none stored here: ENODATA, EOPNOTSUPP), fadvise,
 * and a second mount of proc on /proc. */
static void more_calls(void) {
    size_t len = 300000;
    char *data = malloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)('a' + i % 26);
    int src = open("cfr-src", O_RDWR | O_CREAT | O_TRUNC, 0644);
    write(src, data, len);
    lseek(src, 0, SEEK_SET);
    int dst = open("cfr-dst", O_RDWR | O_CREAT | O_TRUNC, 0644);
    value("copy_file_range all (asking for 10 more)", copy_file_range(src, NULL, dst, NULL, len + 10, 0));
    value("offsets after it: in", lseek(src, 0, SEEK_CUR));
    value("offsets after it: out", lseek(dst, 0, SEEK_CUR));
    contents_equal("same bytes", "cfr-src", "cfr-dst");
    loff_t in = 10, out = 0;
    value("copy 100 bytes at given offsets", copy_file_range(src, &in, dst, &out, 100, 0));
    printf("given offsets moved to %ld and %ld; file offsets still %ld\n", (long)in, (long)out,
           (long)lseek(src, 0, SEEK_CUR));
    value("copy_file_range at the end of the input", copy_file_range(src, NULL, dst, NULL, 100, 0));
    value("copy_file_range with flags 1", copy_file_range(src, NULL, dst, NULL, 1, 1));
    in = 0;
    out = 50;
    value("copy_file_range overlapping in one file", copy_file_range(src, &in, src, &out, 100, 0));
    int dir = open(".", O_RDONLY | O_DIRECTORY);
    value("copy_file_range from a directory", copy_file_range(dir, NULL, dst, NULL, 1, 0));
    close(dir);
    int p[2];
    pipe(p);
    value("copy_file_range to a pipe", copy_file_range(src, NULL, p[1], NULL, 1, 0));
    int app = open("cfr-dst", O_WRONLY | O_APPEND);
    in = 0;
    value("copy_file_range to an O_APPEND file", copy_file_range(src, &in, app, NULL, 1, 0));
    close(app);

    char buf[64];
    value("getxattr user.test", getxattr("cfr-src", "user.test", buf, sizeof buf));
    value("lgetxattr of a missing file", lgetxattr("no-such-file", "user.test", buf, sizeof buf));
    value("fgetxattr user.test", fgetxattr(src, "user.test", buf, sizeof buf));
    value("listxattr", listxattr("cfr-src", buf, sizeof buf));
    value("setxattr user.test", setxattr("cfr-src", "user.test", "v", 1, 0));
    value("removexattr user.test", removexattr("cfr-src", "user.test"));
    value("getxattr with an empty name", getxattr("cfr-src", "", buf, sizeof buf));

    printf("posix_fadvise SEQUENTIAL: %s\n", err(posix_fadvise(src, 0, 0, POSIX_FADV_SEQUENTIAL)));
    printf("posix_fadvise DONTNEED: %s\n", err(posix_fadvise(src, 0, 4096, POSIX_FADV_DONTNEED)));
    printf("posix_fadvise on a pipe: %s\n", err(posix_fadvise(p[0], 0, 0, POSIX_FADV_NORMAL)));
    printf("posix_fadvise advice 99: %s\n", err(posix_fadvise(src, 0, 0, 99)));
    printf("posix_fadvise on a closed fd: %s\n", err(posix_fadvise(99, 0, 0, POSIX_FADV_NORMAL)));
    value("sync_file_range WRITE", sync_file_range(src, 0, 4096, SYNC_FILE_RANGE_WRITE));
    value("sync_file_range WAIT_BEFORE|WRITE|WAIT_AFTER",
          sync_file_range(src, 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER));
    value("sync_file_range with flags 8", sync_file_range(src, 0, 0, 8));
    value("sync_file_range at offset -1", sync_file_range(src, -1, 0, SYNC_FILE_RANGE_WRITE));
    value("sync_file_range on a pipe", sync_file_range(p[0], 0, 0, SYNC_FILE_RANGE_WRITE));
    value("sync_file_range on a closed fd", sync_file_range(99, 0, 0, SYNC_FILE_RANGE_WRITE));
    close(p[0]);
    close(p[1]);
    close(src);
    close(dst);
    unlink("cfr-src");
    unlink("cfr-dst");
    free(data);

    check("mount proc on /proc again", mount("proc", "/proc", "proc", 0, NULL));
    check("umount it", umount("/proc"));
    check("/proc/self/stat still there", access("/proc/self/stat", R_OK));
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    umask(022);
    mkdir("/work", 0755);
    mount("tmpfs", "/work", "tmpfs", 0, NULL);
    if (chdir("/work") < 0) {
        printf("no /work: %s\n", err(errno));
        return 1;
    }
    opens();
    rw();
    dups();
    pipes();
    names();
    attrs();
    cwd();
    fs();
    unlinked_open();
    big_io();
    more_calls();
    chdir("/");
    umount("/work");
    return 0;
}
