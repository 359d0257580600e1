// SPDX-License-Identifier: MIT
// util - small helpers: error text, files.
#include "common/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
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
