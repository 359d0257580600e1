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

// ds_part_t is one piece of a file ds_write_atomic writes.
typedef struct {
    const void *p; // bytes
    size_t      n; // how many
} ds_part_t;

// ds_write_atomic writes the concatenation of parts[0..nparts) to path so
// that path holds either its old content or all of the new: a temporary
// file in the same directory, fsync, rename, fsync of the directory.
// Returns 0 or a negative errno with err naming the file.
int ds_write_atomic(const char *path, const ds_part_t *parts, int nparts,
                    char *err, size_t errlen);

// ds_append appends n bytes of p to path (created 0644 when missing) and
// flushes them to disk (fdatasync). A failed append is undone (the file is
// cut back to its old length), so a reader never sees half a record.
// Returns 0 or a negative errno with err naming the file, the failing step
// and the errno's text.
int ds_append(const char *path, const void *p, size_t n, char *err,
              size_t errlen);

// ds_lock_file takes an exclusive, non-blocking flock on path (created when
// missing) and writes holder into it for whoever finds it taken. Returns
// the locked fd (close-on-exec; the lock lasts until it is closed or the
// process ends), -EBUSY with err naming the holder the file records, or
// another negative errno with err naming the file.
int ds_lock_file(const char *path, const char *holder, char *err,
                 size_t errlen);

// ds_remove_temps removes from dir the temporary files ds_write_atomic
// leaves behind when its process is killed mid-write: names ending in
// ".tmp." and six characters of mkstemp's alphabet. Nothing else is
// touched. Returns how many it removed, or a negative errno (-ENOENT when
// dir does not exist).
int ds_remove_temps(const char *dir);

// ds_read_file reads the whole of path (at most max bytes) into *buf
// (malloc'd; the caller frees) and its size into *len. Returns 0, or a
// negative errno (-EFBIG over max) with err naming the file.
int ds_read_file(const char *path, size_t max, unsigned char **buf, size_t *len,
                 char *err, size_t errlen);

#endif
