// SPDX-License-Identifier: MIT
// util - small helpers: error text, files.
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <dirent.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int
ds_err(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int
ds_mkdirs(const char *path)
{
    char tmp[4096];
    int  n = snprintf(tmp, sizeof tmp, "%s", path);
    if (n <= 0 || (size_t)n >= sizeof tmp) {
        return -ENAMETOOLONG;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
                return -errno;
            }
            *p = '/';
        }
    }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
        return -errno;
    }
    return 0;
}

int
ds_find_file(const char *dir, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s.gz", dir, name);
    if (access(out, R_OK) == 0) {
        return 0;
    }
    snprintf(out, len, "%s/%s", dir, name);
    return access(out, R_OK) == 0 ? 0 : -ENOENT;
}

// s_write_all writes n bytes of p to fd, resuming after short writes and
// signals. Returns 0 or a negative errno.
static int
s_write_all(int fd, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n > 0) {
        size_t  chunk = n < (1u << 30) ? n : (1u << 30);
        ssize_t w = write(fd, b, chunk);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return w < 0 ? -errno : -EIO;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int
ds_write_atomic(const char *path, const ds_part_t *parts, int nparts, char *err,
                size_t errlen)
{
    char tmp[4096];
    int  n = snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        return ds_err(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
    }
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return ds_err(err, errlen, -e, "%s: cannot create a temporary file: %s",
                      path, strerror(e));
    }
    // mkstemp creates the file 0600; these files are meant to be read by
    // other tools and users, as a plain creat(2) under umask 022 would be.
    const char *step = "chmod";
    int         rc = fchmod(fd, 0644) == 0 ? 0 : -errno;
    for (int i = 0; rc == 0 && i < nparts; i++) {
        step = "write";
        rc = s_write_all(fd, parts[i].p, parts[i].n);
    }
    if (rc == 0 && fsync(fd) != 0) {
        step = "fsync";
        rc = -errno;
    }
    if (close(fd) != 0 && rc == 0) {
        step = "close";
        rc = -errno;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        step = "rename";
        rc = -errno;
    }
    if (rc != 0) {
        unlink(tmp);
        return ds_err(err, errlen, rc, "%s: %s: %s", path, step, strerror(-rc));
    }
    // The rename is durable only once the directory is; a failure here only
    // weakens durability across a crash, so it is not reported.
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
}

int
ds_append(const char *path, const void *p, size_t n, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        return ds_err(err, errlen, -e, "%s: open: %s", path, strerror(e));
    }
    const char *step = "seek";
    off_t       end = lseek(fd, 0, SEEK_END);
    int         rc = end < 0 ? -errno : 0;
    if (rc == 0) {
        step = "write";
        rc = s_write_all(fd, p, n);
    }
    if (rc == 0 && fdatasync(fd) != 0) {
        step = "fdatasync";
        rc = -errno;
    }
    if (rc != 0 && end >= 0) {
        // Best effort: the error reported is the write's.
        (void)ftruncate(fd, end);
    }
    if (close(fd) != 0 && rc == 0) {
        step = "close";
        rc = -errno;
    }
    if (rc != 0) {
        return ds_err(err, errlen, rc, "%s: %s: %s", path, step, strerror(-rc));
    }
    return 0;
}

int
ds_lock_file(const char *path, const char *holder, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        return ds_err(err, errlen, -e, "%s: open: %s", path, strerror(e));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e != EWOULDBLOCK) {
            close(fd);
            return ds_err(err, errlen, -e, "%s: flock: %s", path, strerror(e));
        }
        char    who[512];
        ssize_t k = pread(fd, who, sizeof who - 1, 0);
        close(fd);
        who[k > 0 ? k : 0] = '\0';
        who[strcspn(who, "\n")] = '\0';
        return ds_err(err, errlen, -EBUSY, "%s is held by %s", path,
                      who[0] ? who : "a process that has not said who it is");
    }
    size_t len = strlen(holder);
    int    rc = ftruncate(fd, 0) == 0 ? 0 : -errno;
    if (rc == 0) {
        rc = s_write_all(fd, holder, len);
    }
    if (rc == 0 && (len == 0 || holder[len - 1] != '\n')) {
        rc = s_write_all(fd, "\n", 1);
    }
    if (rc != 0) {
        close(fd);
        return ds_err(err, errlen, rc, "%s: write: %s", path, strerror(-rc));
    }
    return fd;
}

// s_is_temp says whether name is one of ds_write_atomic's temporary files:
// "<anything>.tmp.XXXXXX" with six characters of mkstemp's alphabet.
static bool
s_is_temp(const char *name)
{
    size_t n = strlen(name);
    if (n <= 11 || memcmp(name + n - 11, ".tmp.", 5) != 0) {
        return false;
    }
    for (size_t i = n - 6; i < n; i++) {
        if (!isalnum((unsigned char)name[i])) {
            return false;
        }
    }
    return true;
}

int
ds_remove_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        return -errno;
    }
    int            removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!s_is_temp(e->d_name)) {
            continue;
        }
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode) && unlinkat(dirfd(d), e->d_name, 0) == 0) {
            removed++;
        }
    }
    closedir(d);
    return removed;
}

int
ds_read_file(const char *path, size_t max, unsigned char **buf, size_t *len,
             char *err, size_t errlen)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return ds_err(err, errlen, -e, "%s: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 ||
        (size_t)st.st_size > max) {
        fclose(f);
        return ds_err(err, errlen, -EFBIG, "%s: larger than %zu bytes", path,
                      max);
    }
    size_t         n = (size_t)st.st_size;
    unsigned char *b = malloc(n + 1);
    if (!b) {
        fclose(f);
        return ds_err(err, errlen, -ENOMEM, "%s: out of memory", path);
    }
    if (fread(b, 1, n, f) != n) {
        free(b);
        fclose(f);
        return ds_err(err, errlen, -EIO, "%s: short read", path);
    }
    fclose(f);
    *buf = b;
    *len = n;
    return 0;
}
