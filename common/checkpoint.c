// SPDX-License-Identifier: MIT
// checkpoint - one key range's state in a file: parameters, the update
// rule's state, the update count and the per-worker sequence table.
#include "common/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/util.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "checkpoints are little-endian; add a swap path");

#define S_MAGIC "DSCKPT\0\1"           // 8 bytes: name and format version 1
#define S_MAX_KEYS (UINT64_C(1) << 32) // most keys in one range

// s_head_t is the fixed file header (all little-endian).
typedef struct {
    char     magic[8]; // S_MAGIC
    uint32_t range;    // range id
    int32_t  rule;     // update rule
    uint64_t begin;    // first key
    uint64_t end;      // one past the last key
    uint64_t epoch;    // shard-map epoch
    uint64_t updates;  // pushes applied
    uint64_t t;        // rule step count
    uint32_t nstate;   // state arrays
    uint32_t nseq;     // sequence entries
} s_head_t;

// s_crc adds n bytes of p to crc (zlib takes at most 4 GiB at a time).
static uLong
s_crc(uLong crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < (1u << 30) ? n - done : (1u << 30);
        crc = crc32(crc, b + done, (uInt)chunk);
        done += chunk;
    }
    return crc;
}

int
ds_ckpt_write(const char *path, const ds_ckpt_t *c, char *err, size_t errlen)
{
    if (c->nstate < 0 || c->nstate > DS_CKPT_MAX_STATE || c->end < c->begin) {
        return ds_err(err, errlen, -EINVAL, "%s: bad checkpoint description",
                      path);
    }
    s_head_t h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, S_MAGIC, sizeof h.magic);
    h.range = c->range;
    h.rule = c->rule;
    h.begin = c->begin;
    h.end = c->end;
    h.epoch = c->epoch;
    h.updates = c->updates;
    h.t = c->t;
    h.nstate = (uint32_t)c->nstate;
    h.nseq = c->nseq;
    size_t    nk = (size_t)(c->end - c->begin);
    ds_part_t parts[4 + DS_CKPT_MAX_STATE]; // head, w, state, seq, sum
    int       np = 0;
    parts[np++] = (ds_part_t){&h, sizeof h};
    parts[np++] = (ds_part_t){c->w, nk * sizeof(float)};
    for (int k = 0; k < c->nstate; k++) {
        parts[np++] = (ds_part_t){c->state[k], nk * sizeof(float)};
    }
    parts[np++] = (ds_part_t){c->seq, c->nseq * sizeof(uint64_t)};
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < np; i++) {
        crc = s_crc(crc, parts[i].p, parts[i].n);
    }
    uint32_t sum = (uint32_t)crc;
    parts[np++] = (ds_part_t){&sum, sizeof sum};
    return ds_write_atomic(path, parts, np, err, errlen);
}

// s_read_all reads n bytes at the file position into p, adding them to crc.
static int
s_read_all(FILE *f, void *p, size_t n, uLong *crc)
{
    if (n > 0 && fread(p, 1, n, f) != n) {
        return -EPROTO;
    }
    if (crc) {
        for (size_t done = 0; done < n;) {
            size_t chunk = n - done < (1u << 30) ? n - done : (1u << 30);
            *crc = crc32(*crc, (const unsigned char *)p + done, (uInt)chunk);
            done += chunk;
        }
    }
    return 0;
}

int
ds_ckpt_read(const char *path, ds_ckpt_t *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return ds_err(err, errlen, -e, "%s: %s", path, strerror(e));
    }
    struct stat st;
    s_head_t    h;
    uLong       crc = crc32(0L, Z_NULL, 0);
    int         rc = fstat(fileno(f), &st) == 0 ? 0 : -errno;
    if (rc == 0 && (uint64_t)st.st_size < sizeof h) {
        fclose(f);
        return ds_err(err, errlen, -EPROTO,
                      "%s: empty/truncated checkpoint (%lld bytes)", path,
                      (long long)st.st_size);
    }
    if (rc == 0) {
        rc = s_read_all(f, &h, sizeof h, &crc);
    }
    if (rc != 0 || memcmp(h.magic, S_MAGIC, sizeof h.magic) != 0) {
        fclose(f);
        return ds_err(err, errlen, -EPROTO,
                      "%s: not a descent checkpoint (version 1)", path);
    }
    // Every size is checked against the file before anything is allocated.
    uint64_t nk = h.end - h.begin;
    if (h.end < h.begin || nk > S_MAX_KEYS || h.nstate > DS_CKPT_MAX_STATE ||
        h.nseq > (1u << 20) ||
        (uint64_t)st.st_size !=
            sizeof h + nk * 4 * (1 + h.nstate) + (uint64_t)h.nseq * 8 + 4) {
        fclose(f);
        return ds_err(err, errlen, -EPROTO,
                      "%s: header does not match the file's %lld bytes", path,
                      (long long)st.st_size);
    }
    c->range = h.range;
    c->rule = h.rule;
    c->begin = h.begin;
    c->end = h.end;
    c->epoch = h.epoch;
    c->updates = h.updates;
    c->t = h.t;
    c->nstate = (int)h.nstate;
    c->nseq = h.nseq;
    c->w = malloc((size_t)(nk ? nk : 1) * sizeof(float));
    c->seq = malloc((h.nseq ? h.nseq : 1) * sizeof(uint64_t));
    rc = c->w && c->seq ? 0 : -ENOMEM;
    for (int k = 0; rc == 0 && k < c->nstate; k++) {
        c->state[k] = malloc((size_t)(nk ? nk : 1) * sizeof(float));
        rc = c->state[k] ? 0 : -ENOMEM;
    }
    if (rc == 0) {
        rc = s_read_all(f, c->w, (size_t)nk * sizeof(float), &crc);
    }
    for (int k = 0; rc == 0 && k < c->nstate; k++) {
        rc = s_read_all(f, c->state[k], (size_t)nk * sizeof(float), &crc);
    }
    if (rc == 0) {
        rc = s_read_all(f, c->seq, h.nseq * sizeof(uint64_t), &crc);
    }
    uint32_t sum = 0;
    if (rc == 0) {
        rc = s_read_all(f, &sum, sizeof sum, NULL);
    }
    fclose(f);
    if (rc == 0 && sum != (uint32_t)crc) {
        rc = -EPROTO;
    }
    if (rc != 0) {
        ds_ckpt_fini(c);
        return ds_err(err, errlen, rc, "%s: %s", path,
                      rc == -ENOMEM ? "out of memory"
                                    : "damaged (CRC or length mismatch)");
    }
    return 0;
}

// s_dup returns a malloc'd copy of n bytes of p (at least one byte).
static void *
s_dup(const void *p, size_t n)
{
    void *d = malloc(n ? n : 1);
    if (d && n) {
        memcpy(d, p, n);
    }
    return d;
}

int
ds_ckpt_copy(ds_ckpt_t *dst, const ds_ckpt_t *src)
{
    *dst = *src;
    for (int k = 0; k < DS_CKPT_MAX_STATE; k++) {
        dst->state[k] = NULL;
    }
    size_t n = (size_t)(src->end - src->begin) * sizeof(float);
    dst->w = s_dup(src->w, n);
    dst->seq = s_dup(src->seq, (size_t)src->nseq * sizeof(uint64_t));
    int rc = dst->w && dst->seq ? 0 : -ENOMEM;
    for (int k = 0; rc == 0 && k < src->nstate && k < DS_CKPT_MAX_STATE; k++) {
        dst->state[k] = s_dup(src->state[k], n);
        rc = dst->state[k] ? 0 : -ENOMEM;
    }
    if (rc != 0) {
        ds_ckpt_fini(dst);
    }
    return rc;
}

void
ds_ckpt_fini(ds_ckpt_t *c)
{
    free(c->w);
    for (int k = 0; k < DS_CKPT_MAX_STATE; k++) {
        free(c->state[k]);
    }
    free(c->seq);
    memset(c, 0, sizeof *c);
}
