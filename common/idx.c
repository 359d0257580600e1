// SPDX-License-Identifier: MIT
// idx - IDX (MNIST-format) image and label files, gzip or plain.
#include "common/idx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/util.h"

#define S_IDX3_MAGIC 0x00000803u // unsigned bytes, 3 dimensions
#define S_IDX1_MAGIC 0x00000801u // unsigned bytes, 1 dimension
#define S_IDX3_HDR 16            // bytes: magic, n, rows, cols
#define S_IDX1_HDR 8             // bytes: magic, n
#define S_CHUNK 16384            // bytes read per gzread call
#define S_GZBUF (128 * 1024)     // zlib's input buffer, bytes

// s_file_t is one open IDX file.
typedef struct {
    gzFile      gz;   // zlib handle; NULL when closed
    const char *path; // for messages; not owned
} s_file_t;

static uint32_t
s_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

static int
s_open(s_file_t *f, char *err, size_t errlen)
{
    // gzopen leaves errno at 0 when only its own allocation failed.
    errno = 0;
    f->gz = gzopen(f->path, "rb");
    if (f->gz == NULL) {
        int rc = errno != 0 ? -errno : -ENOMEM;
        return ds_err(err, errlen, rc, "%s: cannot open: %s", f->path,
                      strerror(-rc));
    }
    gzbuffer(f->gz, S_GZBUF);
    return 0;
}

static void
s_close(s_file_t *f)
{
    if (f->gz != NULL) {
        gzclose(f->gz);
        f->gz = NULL;
    }
}

// s_read reads up to len bytes into buf and stores the count in *got, which
// is short only at the end of the file. Returns 0, or a negative errno for
// an I/O error (-errno) or corrupt compressed data (-EPROTO).
static int
s_read(s_file_t *f, void *buf, size_t len, size_t *got, char *err,
       size_t errlen)
{
    *got = 0;
    while (*got < len) {
        size_t want = len - *got < S_CHUNK ? len - *got : S_CHUNK;
        int    r = gzread(f->gz, (char *)buf + *got, (unsigned)want);
        int    saved = errno;
        if (r < 0) {
            int         zerr = Z_OK;
            const char *msg = gzerror(f->gz, &zerr);
            if (zerr == Z_ERRNO) {
                int rc = saved != 0 ? -saved : -EIO;
                return ds_err(err, errlen, rc, "%s: read error: %s", f->path,
                              strerror(-rc));
            }
            // A gzip stream cut short ends here too (Z_BUF_ERROR).
            return ds_err(err, errlen, -EPROTO, "%s: bad gzip data: %s",
                          f->path, msg);
        }
        if (r == 0) {
            break;
        }
        *got += (size_t)r;
    }
    return 0;
}

// s_seek moves the read position to byte off of the uncompressed data. For
// gzip input zlib decompresses up to off on the next read; a position past
// the end is not an error here, but the next read returns nothing.
static int
s_seek(s_file_t *f, uint64_t off, char *err, size_t errlen)
{
    if (gzseek(f->gz, (z_off_t)off, SEEK_SET) < 0) {
        int         zerr = Z_OK;
        const char *msg = gzerror(f->gz, &zerr);
        int         rc = zerr == Z_ERRNO ? -EIO : -EPROTO;
        return ds_err(err, errlen, rc, "%s: cannot seek to byte %llu: %s",
                      f->path, (unsigned long long)off, msg);
    }
    return 0;
}

// s_header reads an IDX header of nwords big-endian 32-bit words into w and
// checks the magic word.
static int
s_header(s_file_t *f, uint32_t magic, uint32_t *w, size_t nwords, char *err,
         size_t errlen)
{
    unsigned char hdr[S_IDX3_HDR];
    size_t        got = 0;
    int           rc = s_read(f, hdr, nwords * 4, &got, err, errlen);
    if (rc != 0) {
        return rc;
    }
    if (got < nwords * 4) {
        return ds_err(err, errlen, -EPROTO,
                      "%s: truncated: expected a %zu-byte IDX header, "
                      "found %zu bytes",
                      f->path, nwords * 4, got);
    }
    for (size_t i = 0; i < nwords; i++) {
        w[i] = s_be32(hdr + 4 * i);
    }
    if (w[0] != magic) {
        return ds_err(err, errlen, -EPROTO,
                      "%s: bad magic 0x%08x, expected 0x%08x (IDX %s)", f->path,
                      w[0], magic,
                      magic == S_IDX3_MAGIC ? "ubyte images" : "ubyte labels");
    }
    return 0;
}

// s_labels reads all n labels, which gives the number of classes of the
// whole file, and keeps those with index in [first, last) in y.
static int
s_labels(s_file_t *f, uint64_t n, uint64_t first, uint64_t last, uint8_t *y,
         int *classes, char *err, size_t errlen)
{
    unsigned char buf[S_CHUNK];
    unsigned      max = 0;
    for (uint64_t i = 0; i < n;) {
        size_t want = n - i < S_CHUNK ? (size_t)(n - i) : S_CHUNK;
        size_t got = 0;
        int    rc = s_read(f, buf, want, &got, err, errlen);
        if (rc != 0) {
            return rc;
        }
        if (got < want) {
            return ds_err(err, errlen, -EPROTO,
                          "%s: truncated: header says %llu labels, "
                          "file ends after %llu",
                          f->path, (unsigned long long)n,
                          (unsigned long long)(i + got));
        }
        for (size_t k = 0; k < got; k++, i++) {
            if (buf[k] > max) {
                max = buf[k];
            }
            if (i >= first && i < last) {
                y[i - first] = buf[k];
            }
        }
    }
    *classes = max + 1 < 2 ? 2 : (int)max + 1;
    return 0;
}

// s_images converts the pixels of images [first, last) into x, then checks
// that the file holds all n images, so that every partition accepts or
// rejects the same file.
static int
s_images(s_file_t *f, uint64_t n, uint64_t dim, uint64_t first, uint64_t last,
         float *x, char *err, size_t errlen)
{
    uint64_t end = S_IDX3_HDR + n * dim; // expected file size, bytes
    uint64_t total = (last - first) * dim;
    uint64_t done = 0;
    int      rc = s_seek(f, S_IDX3_HDR + first * dim, err, errlen);
    while (rc == 0 && done < total) {
        unsigned char buf[S_CHUNK];
        size_t want = total - done < S_CHUNK ? (size_t)(total - done) : S_CHUNK;
        size_t got = 0;
        rc = s_read(f, buf, want, &got, err, errlen);
        for (size_t k = 0; k < got; k++) {
            x[done + k] = (float)buf[k] / 255.0f;
        }
        done += got;
        if (got < want) {
            break;
        }
    }
    bool whole = done == total;
    if (rc == 0 && whole && last < n) {
        unsigned char byte;
        size_t        got = 0;
        rc = s_seek(f, end - 1, err, errlen);
        if (rc == 0) {
            rc = s_read(f, &byte, 1, &got, err, errlen);
        }
        whole = got == 1;
    }
    if (rc != 0 || whole) {
        return rc;
    }
    return ds_err(err, errlen, -EPROTO,
                  "%s: truncated: header says %llu images of %llu pixels, "
                  "expected %llu bytes",
                  f->path, (unsigned long long)n, (unsigned long long)dim,
                  (unsigned long long)end);
}

// s_pick_fn chooses [first, last) among the n examples of the files, or
// returns a negative errno with err set.
typedef int s_pick_fn(uint64_t n, const void *arg, uint64_t *first,
                      uint64_t *last, char *err, size_t errlen);

// s_part_t picks partition part of nparts among the first limit examples.
typedef struct {
    size_t   limit;  // examples considered, 0 = all
    unsigned part;   // which partition
    unsigned nparts; // how many partitions
} s_part_t;

static int
s_pick_part(uint64_t n, const void *arg, uint64_t *first, uint64_t *last,
            char *err, size_t errlen)
{
    const s_part_t *p = arg;
    // n < 2^32 and part < nparts < 2^32, so the products fit in 64 bits.
    uint64_t m = p->limit == 0 || p->limit > n ? n : (uint64_t)p->limit;
    *first = (uint64_t)p->part * m / p->nparts;
    *last = ((uint64_t)p->part + 1) * m / p->nparts;
    if (*last == *first) {
        return ds_err(err, errlen, -EINVAL,
                      "partition %u of %u of %llu examples is empty", p->part,
                      p->nparts, (unsigned long long)m);
    }
    return 0;
}

static int
s_pick_range(uint64_t n, const void *arg, uint64_t *first, uint64_t *last,
             char *err, size_t errlen)
{
    const uint64_t *r = arg;
    if (r[0] >= r[1] || r[1] > n) {
        return ds_err(err, errlen, -EINVAL,
                      "examples [%llu, %llu) are not within the %llu of the "
                      "file",
                      (unsigned long long)r[0], (unsigned long long)r[1],
                      (unsigned long long)n);
    }
    *first = r[0];
    *last = r[1];
    return 0;
}

// s_load reads the examples pick chooses; see ds_idx_load.
static int
s_load(ds_dataset_t *d, const char *images_path, const char *labels_path,
       s_pick_fn *pick, const void *arg, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (d != NULL) {
        memset(d, 0, sizeof *d);
    }
    if (d == NULL || images_path == NULL || labels_path == NULL) {
        return ds_err(err, errlen, -EINVAL, "idx: NULL argument");
    }
    s_file_t img = {.path = images_path};
    s_file_t lab = {.path = labels_path};
    float   *x = NULL;
    uint8_t *y = NULL;
    uint32_t ih[4], lh[2];
    int      rc = s_open(&img, err, errlen);
    if (rc == 0) {
        rc = s_header(&img, S_IDX3_MAGIC, ih, 4, err, errlen);
    }
    if (rc == 0) {
        rc = s_open(&lab, err, errlen);
    }
    if (rc == 0) {
        rc = s_header(&lab, S_IDX1_MAGIC, lh, 2, err, errlen);
    }
    if (rc != 0) {
        goto out;
    }

    uint64_t n = ih[1];
    uint64_t dim = (uint64_t)ih[2] * ih[3];
    if (dim == 0) {
        rc = ds_err(err, errlen, -EPROTO, "%s: bad image size %ux%u",
                    images_path, ih[2], ih[3]);
        goto out;
    }
    // The file offset of the last pixel must fit zlib's offset type, and
    // that also bounds n * dim well below 2^64.
    uint64_t max_off = ((uint64_t)1 << (sizeof(z_off_t) * 8 - 1)) - 1;
    if (n > (max_off - S_IDX3_HDR) / dim) {
        rc = ds_err(err, errlen, -EPROTO,
                    "%s: header says %llu images of %ux%u pixels: too large",
                    images_path, (unsigned long long)n, ih[2], ih[3]);
        goto out;
    }
    if (lh[1] != n) {
        rc = ds_err(err, errlen, -EINVAL,
                    "%s has %llu images but %s has %u labels", images_path,
                    (unsigned long long)n, labels_path, lh[1]);
        goto out;
    }
    // Nothing is allocated for pixels a file cannot hold: a plain file's
    // size bounds them exactly, and deflate expands by at most 1032 times.
    struct stat st;
    if (stat(images_path, &st) == 0 && st.st_size >= 0) {
        uint64_t size = (uint64_t)st.st_size;
        uint64_t most = size > UINT64_MAX / 1032 ? UINT64_MAX : size * 1032;
        if (S_IDX3_HDR + n * dim > most) {
            rc = ds_err(err, errlen, -EPROTO,
                        "%s: header says %llu images of %ux%u pixels, more "
                        "than a %llu-byte file can hold: truncated",
                        images_path, (unsigned long long)n, ih[2], ih[3],
                        (unsigned long long)size);
            goto out;
        }
    }

    uint64_t first, last;
    rc = pick(n, arg, &first, &last, err, errlen);
    if (rc != 0) {
        goto out;
    }
    uint64_t count = last - first;
    if (count > SIZE_MAX / sizeof(float) / dim) {
        rc = ds_err(err, errlen, -ENOMEM, "%s: %llu images do not fit",
                    images_path, (unsigned long long)count);
        goto out;
    }
    x = malloc((size_t)(count * dim) * sizeof(float));
    y = malloc((size_t)count);
    if (x == NULL || y == NULL) {
        rc = ds_err(err, errlen, -ENOMEM,
                    "%s: out of memory for %llu images of %llu pixels",
                    images_path, (unsigned long long)count,
                    (unsigned long long)dim);
        goto out;
    }

    int classes = 0;
    rc = s_labels(&lab, n, first, last, y, &classes, err, errlen);
    if (rc == 0) {
        rc = s_images(&img, n, dim, first, last, x, err, errlen);
    }
    if (rc == 0) {
        d->n = (size_t)count;
        d->dim = (size_t)dim;
        d->classes = classes;
        d->x = x;
        d->y = y;
        x = NULL;
        y = NULL;
    }
out:
    free(x);
    free(y);
    s_close(&img);
    s_close(&lab);
    return rc;
}

int
ds_idx_load(ds_dataset_t *d, const char *images_path, const char *labels_path,
            size_t limit, unsigned part, unsigned nparts, char *err,
            size_t errlen)
{
    if (nparts == 0 || part >= nparts) {
        if (d != NULL) {
            memset(d, 0, sizeof *d);
        }
        return ds_err(err, errlen, -EINVAL, "idx: bad partition %u of %u", part,
                      nparts);
    }
    s_part_t p = {.limit = limit, .part = part, .nparts = nparts};
    return s_load(d, images_path, labels_path, s_pick_part, &p, err, errlen);
}

int
ds_idx_load_range(ds_dataset_t *d, const char *images_path,
                  const char *labels_path, uint64_t first, uint64_t last,
                  char *err, size_t errlen)
{
    uint64_t r[2] = {first, last};
    return s_load(d, images_path, labels_path, s_pick_range, r, err, errlen);
}

int
ds_idx_count(const char *images_path, uint64_t *n, char *err, size_t errlen)
{
    s_file_t img = {.path = images_path};
    uint32_t ih[4];
    int      rc = s_open(&img, err, errlen);
    if (rc == 0) {
        rc = s_header(&img, S_IDX3_MAGIC, ih, 4, err, errlen);
    }
    s_close(&img);
    *n = rc == 0 ? ih[1] : 0;
    return rc;
}

void
ds_dataset_fini(ds_dataset_t *d)
{
    if (d == NULL) {
        return;
    }
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}

// s_probe opens path for reading the way gzopen will. Returns 0, or a
// negative errno; a directory is -EISDIR, which open alone would accept.
static int
s_probe(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    struct stat st;
    int         rc = fstat(fd, &st) != 0 ? -errno : 0;
    if (rc == 0 && S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
    }
    close(fd);
    return rc;
}

int
ds_idx_find(const char *dir, const char *name, char *path, size_t len,
            char *err, size_t errlen)
{
    ds_err(err, errlen, 0, "%s", "");
    // Only a file that is not there at all falls through to the next name:
    // one that is there but unreadable is the error to report.
    snprintf(path, len, "%s/%s.gz", dir, name);
    int rc = s_probe(path);
    if (rc != -ENOENT) {
        return rc == 0 ? 0
                       : ds_err(err, errlen, rc, "cannot read %s: %s", path,
                                strerror(-rc));
    }
    snprintf(path, len, "%s/%s", dir, name);
    rc = s_probe(path);
    if (rc == -ENOENT) {
        return ds_err(err, errlen, rc,
                      "missing dataset file %s(.gz): install the Debian "
                      "package dataset-fashion-mnist (make deps) or set "
                      "data.data_dir",
                      path);
    }
    return rc == 0 ? 0
                   : ds_err(err, errlen, rc, "cannot read %s: %s", path,
                            strerror(-rc));
}
