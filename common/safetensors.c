// SPDX-License-Identifier: MIT
// safetensors - write float32 tensors in the safetensors file format.
#include "common/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

// The format stores little-endian IEEE float32, which is what the data of
// this host already is; a big-endian port needs a byte-swapping copy.
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "safetensors data is little-endian: add a byte swap");
_Static_assert(sizeof(float) == 4, "F32 tensors need a 4-byte float");

// s_buf_t is a growable byte string for the JSON header.
typedef struct {
    char  *p;   // bytes; owned
    size_t len; // bytes used
    size_t cap; // bytes allocated
    bool   oom; // an append failed; the contents are incomplete
} s_buf_t;

static void
s_put(s_buf_t *b, const char *s, size_t n)
{
    if (b->oom) {
        return;
    }
    if (n > b->cap - b->len) {
        size_t cap = b->cap > 0 ? b->cap : 256;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void
s_puts(s_buf_t *b, const char *s)
{
    s_put(b, s, strlen(s));
}

static void
s_putu64(s_buf_t *b, uint64_t v)
{
    char num[24];
    int  len = snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    s_put(b, num, (size_t)len);
}

// s_putstr appends s as a JSON string: quotes, backslashes and control
// characters escaped, other bytes (checked UTF-8) as they are.
static void
s_putstr(s_buf_t *b, const char *s)
{
    s_put(b, "\"", 1);
    for (const char *c = s; *c != '\0'; c++) {
        unsigned char u = (unsigned char)*c;
        if (u == '"' || u == '\\') {
            char esc[2] = {'\\', (char)u};
            s_put(b, esc, 2);
        } else if (u < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", u);
            s_put(b, esc, 6);
        } else {
            s_put(b, c, 1);
        }
    }
    s_put(b, "\"", 1);
}

// s_utf8_ok tells whether s is well-formed UTF-8 (no overlong forms, no
// surrogates, nothing past U+10FFFF): readers parse the header as JSON
// text and reject anything else.
static bool
s_utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != 0) {
        unsigned c = *p;
        int      more;
        uint32_t min;
        if (c < 0x80) {
            p++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            more = 1;
            min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            more = 2;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            more = 3;
            min = 0x10000;
        } else {
            return false;
        }
        uint32_t cp = c & (0x3fu >> more);
        for (int i = 1; i <= more; i++) {
            // A NUL terminator fails this test too, so p[i] stays in bounds.
            if ((p[i] & 0xc0) != 0x80) {
                return false;
            }
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        p += more + 1;
    }
    return true;
}

// s_check_name rejects a NULL, empty, reserved or ill-formed name.
static int
s_check_name(const char *what, const char *s, char *err, size_t errlen)
{
    if (s == NULL || s[0] == '\0') {
        return ds_err(err, errlen, -EINVAL, "safetensors: %s is %s", what,
                      s == NULL ? "NULL" : "empty");
    }
    if (!s_utf8_ok(s)) {
        return ds_err(err, errlen, -EINVAL,
                      "safetensors: %s is not valid UTF-8", what);
    }
    return 0;
}

// s_header builds the padded JSON header into b after checking every
// tensor and metadata entry.
static int
s_header(s_buf_t *b, const ds_tensor_t *t, size_t n, const char *const *meta,
         char *err, size_t errlen)
{
    uint64_t off = 0;
    s_puts(b, "{");
    for (size_t i = 0; i < n; i++) {
        int rc = s_check_name("tensor name", t[i].name, err, errlen);
        if (rc != 0) {
            return rc;
        }
        if (strcmp(t[i].name, "__metadata__") == 0) {
            return ds_err(err, errlen, -EINVAL,
                          "safetensors: tensor name __metadata__ is reserved");
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(t[i].name, t[j].name) == 0) {
                return ds_err(err, errlen, -EINVAL,
                              "safetensors: tensor name %s appears twice",
                              t[i].name);
            }
        }
        if (t[i].ndim < 1 || t[i].ndim > 4) {
            return ds_err(err, errlen, -EINVAL,
                          "safetensors: tensor %s has %d dimensions, "
                          "expected 1 to 4",
                          t[i].name, t[i].ndim);
        }
        uint64_t count = 1;
        for (int d = 0; d < t[i].ndim; d++) {
            uint64_t dim = t[i].shape[d];
            if (dim != 0 && count > UINT64_MAX / sizeof(float) / dim) {
                return ds_err(err, errlen, -EOVERFLOW,
                              "safetensors: tensor %s is too large", t[i].name);
            }
            count *= dim;
        }
        uint64_t bytes = count * sizeof(float);
        if (bytes > UINT64_MAX - off || off + bytes > SIZE_MAX) {
            return ds_err(err, errlen, -EOVERFLOW,
                          "safetensors: tensors up to %s are too large",
                          t[i].name);
        }
        if (bytes > 0 && t[i].data == NULL) {
            return ds_err(err, errlen, -EINVAL,
                          "safetensors: tensor %s has no data", t[i].name);
        }
        if (i > 0) {
            s_puts(b, ",");
        }
        s_putstr(b, t[i].name);
        s_puts(b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) {
            if (d > 0) {
                s_puts(b, ",");
            }
            s_putu64(b, t[i].shape[d]);
        }
        s_puts(b, "],\"data_offsets\":[");
        s_putu64(b, off);
        s_puts(b, ",");
        s_putu64(b, off + bytes);
        s_puts(b, "]}");
        off += bytes;
    }

    size_t nmeta = 0;
    for (size_t i = 0; meta != NULL && meta[2 * i] != NULL; i++) {
        int rc = s_check_name("metadata key", meta[2 * i], err, errlen);
        if (rc == 0 && meta[2 * i + 1] == NULL) {
            rc = ds_err(err, errlen, -EINVAL,
                        "safetensors: metadata %s has a NULL value",
                        meta[2 * i]);
        }
        if (rc == 0 && !s_utf8_ok(meta[2 * i + 1])) {
            rc = ds_err(err, errlen, -EINVAL,
                        "safetensors: metadata %s is not valid UTF-8",
                        meta[2 * i]);
        }
        for (size_t j = 0; rc == 0 && j < i; j++) {
            if (strcmp(meta[2 * i], meta[2 * j]) == 0) {
                rc = ds_err(err, errlen, -EINVAL,
                            "safetensors: metadata %s appears twice",
                            meta[2 * i]);
            }
        }
        if (rc != 0) {
            return rc;
        }
        s_puts(b, nmeta == 0
                      ? (n > 0 ? ",\"__metadata__\":{" : "\"__metadata__\":{")
                      : ",");
        s_putstr(b, meta[2 * i]);
        s_puts(b, ":");
        s_putstr(b, meta[2 * i + 1]);
        nmeta++;
    }
    if (nmeta > 0) {
        s_puts(b, "}");
    }
    s_puts(b, "}");
    // The data must start 8-byte aligned; the length prefix is 8 bytes, so
    // the header itself is padded to a multiple of 8.
    while (!b->oom && b->len % 8 != 0) {
        s_puts(b, " ");
    }
    if (b->oom) {
        return ds_err(err, errlen, -ENOMEM,
                      "safetensors: out of memory for the header");
    }
    return 0;
}

int
ds_safetensors_write(const char *path, const ds_tensor_t *t, size_t n,
                     const char *const *meta, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (path == NULL || (t == NULL && n > 0)) {
        return ds_err(err, errlen, -EINVAL, "safetensors: NULL argument");
    }

    s_buf_t hdr = {0};
    int     rc = s_header(&hdr, t, n, meta, err, errlen);
    if (rc != 0) {
        free(hdr.p);
        return rc;
    }

    // The file: the header's length (little-endian uint64), the header,
    // then every tensor's data, written atomically.
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) {
        len8[i] = (unsigned char)((uint64_t)hdr.len >> (8 * i));
    }
    ds_part_t *parts = malloc((n + 2) * sizeof *parts);
    if (parts == NULL) {
        free(hdr.p);
        return ds_err(err, errlen, -ENOMEM, "%s: out of memory", path);
    }
    parts[0] = (ds_part_t){len8, sizeof len8};
    parts[1] = (ds_part_t){hdr.p, hdr.len};
    for (size_t i = 0; i < n; i++) {
        size_t bytes = sizeof(float);
        for (int d = 0; d < t[i].ndim; d++) {
            bytes *= (size_t)t[i].shape[d];
        }
        parts[2 + i] = (ds_part_t){t[i].data, bytes};
    }
    rc = ds_write_atomic(path, parts, (int)(n + 2), err, errlen);
    free(parts);
    free(hdr.p);
    return rc;
}
