// SPDX-License-Identifier: MIT
// util - small helpers: error text, files.
#ifndef DS_UTIL_H
#define DS_UTIL_H

#include <stddef.h>

// ds_err writes a printf-style message into err (when err is not NULL and
// errlen > 0; always NUL-terminated) and returns rc, so that a failure
// path reads `return ds_err(err, errlen, -EPROTO, "...", ...);`.
int ds_err(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

// ds_mkdirs creates path and its missing parents (mode 0777 before umask).
// Returns 0 or a negative errno.
int ds_mkdirs(const char *path);

// ds_find_file writes to out the first of dir/name.gz and dir/name that
// exists. Returns 0, or -ENOENT (out then holds dir/name).
int ds_find_file(const char *dir, const char *name, char *out, size_t len);

#endif
