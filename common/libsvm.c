// SPDX-License-Identifier: MIT
// libsvm - LIBSVM/SVMlight sparse text data, gzip or plain, streamed into a
// CSR matrix of hashed feature keys; each worker keeps only its partition.
#include "common/libsvm.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/util.h"

#define S_CHUNK (256 * 1024) // bytes read per gzread call
#define S_GZBUF (128 * 1024) // zlib's input buffer, bytes
#define S_SHOW 48            // longest token quoted in an error, bytes
#define S_GOLDEN 0x9e3779b97f4a7c15ULL // added to ids before mixing
#define S_INSERTION 24 // rows up to this many entries: insertion sort

// s_reader_t yields the lines of one gzip or plain file.
typedef struct {
    gzFile      gz;     // zlib handle; NULL when closed
    const char *path;   // for messages; not owned
    char       *buf;    // S_CHUNK + 1 bytes of file data; owned
    size_t      len;    // valid bytes in buf
    size_t      pos;    // first unread byte of buf
    bool        eof;    // gzread has reported the end of the file
    char       *line;   // a line that crosses chunks, assembled; owned
    size_t      llen;   // bytes assembled in line
    size_t      lcap;   // capacity of line, bytes
    uint64_t    lineno; // 1-based number of the last line returned
} s_reader_t;

// s_entry_t is one feature of the row being parsed.
typedef struct {
    uint64_t key; // hashed (or plain) key
    float    val; // value
} s_entry_t;

// s_builder_t accumulates the kept rows and the current row.
typedef struct {
    ds_sparse_t d;      // rows so far; arrays owned until handed over
    size_t      kcap;   // capacity of d.keys, entries
    size_t      vcap;   // capacity of d.vals, entries
    size_t      ocap;   // capacity of d.offsets, entries
    size_t      ycap;   // capacity of d.y, entries
    s_entry_t  *row;    // entries of the current row; owned
    size_t      nrow;   // entries in row
    size_t      rowcap; // capacity of row, entries
} s_builder_t;

static uint64_t
s_mix(uint64_t z)
{
    // The splitmix64 finalizer: xor-shifts and odd multipliers, each step
    // a bijection, so distinct ids give distinct 64-bit hashes.
    z ^= z >> 30;
    z *= 0xbf58476d1ce4e5b9ULL;
    z ^= z >> 27;
    z *= 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return z;
}

uint64_t
ds_libsvm_hash(uint64_t id, unsigned bits)
{
    // Scale the 64-bit hash into [0, 2^bits - 1) by a multiply-high, which
    // keeps its top bits (the best mixed), then step over the bias key 0.
    uint64_t          range = ((uint64_t)1 << bits) - 1;
    unsigned __int128 m = (unsigned __int128)s_mix(id + S_GOLDEN) * range;
    return 1 + (uint64_t)(m >> 64);
}

// s_grow makes *p hold at least need elements of size sz, doubling *cap.
static int
s_grow(void **p, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap) {
        return 0;
    }
    size_t ncap = *cap < 1024 ? 1024 : *cap;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) {
            return -ENOMEM;
        }
        ncap *= 2;
    }
    if (ncap > SIZE_MAX / sz) {
        return -ENOMEM;
    }
    void *q = realloc(*p, ncap * sz);
    if (q == NULL) {
        return -ENOMEM;
    }
    *p = q;
    *cap = ncap;
    return 0;
}

static int
s_open(s_reader_t *r, char *err, size_t errlen)
{
    // gzopen leaves errno at 0 when only its own allocation failed.
    errno = 0;
    r->gz = gzopen(r->path, "rb");
    if (r->gz == NULL) {
        int rc = errno != 0 ? -errno : -ENOMEM;
        return ds_err(err, errlen, rc, "%s: cannot open: %s", r->path,
                      strerror(-rc));
    }
    gzbuffer(r->gz, S_GZBUF);
    r->buf = malloc(S_CHUNK + 1);
    if (r->buf == NULL) {
        return ds_err(err, errlen, -ENOMEM, "%s: out of memory", r->path);
    }
    return 0;
}

static void
s_close(s_reader_t *r)
{
    if (r->gz != NULL) {
        gzclose(r->gz);
        r->gz = NULL;
    }
    free(r->buf);
    free(r->line);
    r->buf = NULL;
    r->line = NULL;
}

// s_fill reads the next chunk of the file into r->buf.
static int
s_fill(s_reader_t *r, char *err, size_t errlen)
{
    int n = gzread(r->gz, r->buf, S_CHUNK);
    int saved = errno;
    if (n < 0) {
        int         zerr = Z_OK;
        const char *msg = gzerror(r->gz, &zerr);
        if (zerr == Z_ERRNO) {
            int rc = saved != 0 ? -saved : -EIO;
            return ds_err(err, errlen, rc, "%s: read error: %s", r->path,
                          strerror(-rc));
        }
        return ds_err(err, errlen, -EPROTO, "%s: bad gzip data: %s", r->path,
                      msg);
    }
    if (n == 0) {
        // zlib reports a gzip stream cut short as a quiet end of file; only
        // gzerror tells it from a complete one.
        int         zerr = Z_OK;
        const char *msg = gzerror(r->gz, &zerr);
        if (zerr != Z_OK) {
            return ds_err(err, errlen, -EPROTO, "%s: bad gzip data: %s",
                          r->path, msg);
        }
    }
    r->len = (size_t)n;
    r->pos = 0;
    r->eof = n == 0;
    return 0;
}

// s_too_long reports the line after r->lineno as over the limit.
static int
s_too_long(const s_reader_t *r, char *err, size_t errlen)
{
    return ds_err(err, errlen, -EMSGSIZE, "%s:%llu: line longer than %d bytes",
                  r->path, (unsigned long long)r->lineno + 1,
                  DS_LIBSVM_MAX_LINE);
}

// s_append adds n bytes to the line being assembled.
static int
s_append(s_reader_t *r, const char *p, size_t n, char *err, size_t errlen)
{
    if (r->llen + n > DS_LIBSVM_MAX_LINE) {
        return s_too_long(r, err, errlen);
    }
    void *line = r->line;
    if (s_grow(&line, &r->lcap, r->llen + n + 1, 1) != 0) {
        return ds_err(err, errlen, -ENOMEM, "%s: out of memory", r->path);
    }
    r->line = line;
    memcpy(r->line + r->llen, p, n);
    r->llen += n;
    r->line[r->llen] = '\0';
    return 0;
}

// s_next stores the next line, NUL-terminated without its \n, in *line and
// its length in *len. The line may be modified until the next call.
// Returns 1, 0 at the end of the file, or a negative errno.
static int
s_next(s_reader_t *r, char **line, size_t *len, char *err, size_t errlen)
{
    bool partial = false; // r->line holds the start of this line
    r->llen = 0;
    for (;;) {
        if (r->pos < r->len) {
            char  *p = r->buf + r->pos;
            size_t avail = r->len - r->pos;
            char  *nl = memchr(p, '\n', avail);
            if (nl == NULL) {
                int rc = s_append(r, p, avail, err, errlen);
                if (rc != 0) {
                    return rc;
                }
                partial = true;
                r->pos = r->len;
            } else if (!partial) {
                *nl = '\0';
                *line = p;
                *len = (size_t)(nl - p);
                r->pos += *len + 1;
                if (*len > DS_LIBSVM_MAX_LINE) {
                    return s_too_long(r, err, errlen);
                }
                r->lineno++;
                return 1;
            } else {
                int rc = s_append(r, p, (size_t)(nl - p), err, errlen);
                if (rc != 0) {
                    return rc;
                }
                r->pos += (size_t)(nl - p) + 1;
                break;
            }
        }
        if (r->eof) {
            if (!partial) {
                return 0;
            }
            break;
        }
        int rc = s_fill(r, err, errlen);
        if (rc != 0) {
            return rc;
        }
    }
    *line = r->line;
    *len = r->llen;
    r->lineno++;
    return 1;
}

// s_is_space says whether c separates tokens. A \r counts, so that files
// with DOS line ends read like others.
static bool
s_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static bool
s_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

// s_is_data says whether a line holds a label: it is neither blank nor a
// comment. Only the first non-blank byte is read, so that lines of other
// partitions cost one memchr each.
static bool
s_is_data(const char *p)
{
    while (s_is_space(*p)) {
        p++;
    }
    return *p != '\0' && *p != '#';
}

// s_bad reports a bad token of the line r->lineno as
// "path:17: <what> \"<token>\": <why>", quoting at most S_SHOW bytes.
static int
s_bad(const s_reader_t *r, int rc, const char *what, const char *tok,
      const char *end, const char *why, char *err, size_t errlen)
{
    size_t n = (size_t)(end - tok);
    return ds_err(err, errlen, rc, "%s:%llu: %s \"%.*s%s\": %s", r->path,
                  (unsigned long long)r->lineno, what,
                  (int)(n > S_SHOW ? S_SHOW : n), tok, n > S_SHOW ? "..." : "",
                  why);
}

// s_parse_value parses a float that must fill [p, end) exactly. Returns 0,
// or 1 for no number, 2 for junk after it, 3 for not finite as float32.
static int
s_parse_value(const char *p, const char *end, float *out)
{
    // Short plain integers, the common "1", convert exactly without strtod.
    if (end > p && end - p <= 7) {
        uint32_t    v = 0;
        const char *q = p;
        while (q < end && s_is_digit(*q)) {
            v = v * 10 + (uint32_t)(*q - '0');
            q++;
        }
        if (q == end) {
            *out = (float)v;
            return 0;
        }
    }
    // The token ends at a blank or at the line's NUL, neither of which can
    // continue a number, so strtod stops inside [p, end].
    char  *e = NULL;
    double v = strtod(p, &e);
    if (e == p) {
        return 1;
    }
    if (e != end) {
        return 2;
    }
    float f = (float)v;
    if (!isfinite(f)) {
        return 3;
    }
    *out = f;
    return 0;
}

// s_parse_index parses the decimal index at the start of [p, end) and the
// ':' after it; *value is then the first byte after the ':'.
static int
s_parse_index(const s_reader_t *r, const char *p, const char *end,
              uint64_t *idx, const char **value, char *err, size_t errlen)
{
    const char *q = p;
    uint64_t    v = 0;
    if (*q == '-') {
        return s_bad(r, -EPROTO, "bad feature", p, end, "negative index", err,
                     errlen);
    }
    if (!s_is_digit(*q)) {
        return s_bad(r, -EPROTO, "bad feature", p, end, "index is not a number",
                     err, errlen);
    }
    while (q < end && s_is_digit(*q)) {
        unsigned dgt = (unsigned)(*q - '0');
        if (v > (UINT64_MAX - dgt) / 10) {
            return s_bad(r, -EPROTO, "bad feature", p, end,
                         "index is too large", err, errlen);
        }
        v = v * 10 + dgt;
        q++;
    }
    if (q == end) {
        return s_bad(r, -EPROTO, "bad feature", p, end, "missing ':'", err,
                     errlen);
    }
    if (*q != ':') {
        return s_bad(r, -EPROTO, "bad feature", p, end, "index is not a number",
                     err, errlen);
    }
    *idx = v;
    *value = q + 1;
    return 0;
}

// s_key turns the index of a feature token [p, end) into its key.
static int
s_key(const s_reader_t *r, const ds_libsvm_opts_t *o, uint64_t idx,
      const char *p, const char *end, uint64_t *key, char *err, size_t errlen)
{
    if (!o->zero_based && idx == 0) {
        return s_bad(r, -EINVAL, "bad feature", p, end,
                     "index 0 in a 1-based file", err, errlen);
    }
    if (o->zero_based && idx == UINT64_MAX) {
        return s_bad(r, -EPROTO, "bad feature", p, end, "index is too large",
                     err, errlen);
    }
    uint64_t id = o->zero_based ? idx + 1 : idx; // 1-based feature id
    if (!o->no_hash) {
        *key = ds_libsvm_hash(id, o->hash_bits);
        return 0;
    }
    if (id >> o->hash_bits != 0) {
        char why[96];
        snprintf(why, sizeof why,
                 "feature %llu does not fit hash_bits %u without hashing",
                 (unsigned long long)id, o->hash_bits);
        return s_bad(r, -EINVAL, "bad feature", p, end, why, err, errlen);
    }
    *key = id;
    return 0;
}

// s_parse_feature parses the token [p, end) as index:value and adds it to
// the current row.
static int
s_parse_feature(s_builder_t *b, const s_reader_t *r, const ds_libsvm_opts_t *o,
                const char *p, const char *end, char *err, size_t errlen)
{
    uint64_t    idx = 0, key = 0;
    const char *value = NULL;
    int         rc = s_parse_index(r, p, end, &idx, &value, err, errlen);
    if (rc != 0) {
        return rc;
    }
    float v = 0;
    switch (s_parse_value(value, end, &v)) {
    case 0:
        break;
    case 1:
        return s_bad(r, -EPROTO, "bad feature", p, end,
                     value == end ? "missing value" : "value is not a number",
                     err, errlen);
    case 2:
        return s_bad(r, -EPROTO, "bad feature", p, end, "junk after the value",
                     err, errlen);
    default:
        return s_bad(r, -EPROTO, "bad feature", p, end,
                     "value is not a finite float", err, errlen);
    }
    rc = s_key(r, o, idx, p, end, &key, err, errlen);
    if (rc != 0) {
        return rc;
    }
    void *row = b->row;
    if (s_grow(&row, &b->rowcap, b->nrow + 1, sizeof *b->row) != 0) {
        return ds_err(err, errlen, -ENOMEM, "%s: out of memory", r->path);
    }
    b->row = row;
    b->row[b->nrow++] = (s_entry_t){.key = key, .val = v};
    return 0;
}

// s_reserve makes room for one more row of m entries.
static int
s_reserve(s_builder_t *b, size_t m)
{
    ds_sparse_t *d = &b->d;
    void        *keys = d->keys, *vals = d->vals;
    void        *offsets = d->offsets, *y = d->y;
    int          rc = s_grow(&keys, &b->kcap, d->nnz + m, sizeof *d->keys);
    d->keys = keys;
    if (rc == 0) {
        rc = s_grow(&vals, &b->vcap, d->nnz + m, sizeof *d->vals);
        d->vals = vals;
    }
    if (rc == 0) {
        rc = s_grow(&offsets, &b->ocap, d->n + 2, sizeof *d->offsets);
        d->offsets = offsets;
    }
    if (rc == 0) {
        rc = s_grow(&y, &b->ycap, d->n + 1, sizeof *d->y);
        d->y = y;
    }
    return rc;
}

static int
s_entry_cmp(const void *a, const void *b)
{
    uint64_t x = ((const s_entry_t *)a)->key;
    uint64_t y = ((const s_entry_t *)b)->key;
    return (x > y) - (x < y);
}

// s_end_row sorts the current row by key, sums entries of equal keys and
// appends the row with label y.
static int
s_end_row(s_builder_t *b, const s_reader_t *r, uint8_t y, char *err,
          size_t errlen)
{
    s_entry_t *e = b->row;
    size_t     n = b->nrow;
    if (n <= S_INSERTION) {
        for (size_t i = 1; i < n; i++) {
            s_entry_t t = e[i];
            size_t    j = i;
            for (; j > 0 && e[j - 1].key > t.key; j--) {
                e[j] = e[j - 1];
            }
            e[j] = t;
        }
    } else {
        qsort(e, n, sizeof *e, s_entry_cmp);
    }
    size_t m = 0; // unique keys, merged in place
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && e[m - 1].key == e[i].key) {
            e[m - 1].val += e[i].val;
        } else {
            e[m++] = e[i];
        }
    }
    for (size_t i = 0; i < m; i++) {
        if (!isfinite(e[i].val)) {
            return ds_err(err, errlen, -EPROTO,
                          "%s:%llu: the values of key %llu sum to a "
                          "non-finite float",
                          r->path, (unsigned long long)r->lineno,
                          (unsigned long long)e[i].key);
        }
    }
    int rc = s_reserve(b, m);
    if (rc != 0) {
        return ds_err(err, errlen, rc, "%s: out of memory", r->path);
    }
    ds_sparse_t *d = &b->d;
    for (size_t i = 0; i < m; i++) {
        d->keys[d->nnz + i] = e[i].key;
        d->vals[d->nnz + i] = e[i].val;
    }
    d->nnz += m;
    d->y[d->n] = y;
    d->n++;
    d->offsets[d->n] = d->nnz;
    b->nrow = 0;
    return 0;
}

// s_parse_label parses the label token [p, end).
static int
s_parse_label(const s_reader_t *r, const char *p, const char *end, uint8_t *y,
              char *err, size_t errlen)
{
    if (p == end || memchr(p, ':', (size_t)(end - p)) != NULL) {
        size_t n = (size_t)(end - p);
        return ds_err(err, errlen, -EPROTO,
                      "%s:%llu: missing label: the line starts with \"%.*s%s\"",
                      r->path, (unsigned long long)r->lineno,
                      (int)(n > S_SHOW ? S_SHOW : n), p,
                      n > S_SHOW ? "..." : "");
    }
    char  *e = NULL;
    double v = strtod(p, &e);
    if (e != end) {
        return s_bad(r, -EPROTO, "bad label", p, end, "not a number", err,
                     errlen);
    }
    if (v == 1.0) {
        *y = 1;
    } else if (v == 0.0 || v == -1.0) {
        *y = 0;
    } else {
        return s_bad(r, -EPROTO, "bad label", p, end, "must be 1, 0 or -1", err,
                     errlen);
    }
    return 0;
}

// s_parse_line parses the data line r->lineno, of len bytes, into a row.
static int
s_parse_line(s_builder_t *b, const s_reader_t *r, const ds_libsvm_opts_t *o,
             char *line, size_t len, char *err, size_t errlen)
{
    // Every token below ends at a NUL or a blank, so a stray NUL would hide
    // the rest of the line instead of failing it.
    if (strlen(line) != len) {
        return ds_err(err, errlen, -EPROTO, "%s:%llu: NUL byte in line",
                      r->path, (unsigned long long)r->lineno);
    }
    char *hash = memchr(line, '#', len);
    if (hash != NULL) {
        *hash = '\0';
        len = (size_t)(hash - line);
    }
    while (len > 0 && s_is_space(line[len - 1])) {
        line[--len] = '\0';
    }
    char *p = line;
    while (s_is_space(*p)) {
        p++;
    }
    char *tok = p;
    while (*p != '\0' && !s_is_space(*p)) {
        p++;
    }
    uint8_t y = 0;
    int     rc = s_parse_label(r, tok, p, &y, err, errlen);
    b->nrow = 0;
    for (bool first = true; rc == 0; first = false) {
        while (s_is_space(*p)) {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        tok = p;
        while (*p != '\0' && !s_is_space(*p)) {
            p++;
        }
        // SVMlight's query id may follow the label; ranking is not ours.
        if (first && p - tok > 4 && strncmp(tok, "qid:", 4) == 0) {
            const char *q = tok + 4;
            while (q < p && s_is_digit(*q)) {
                q++;
            }
            if (q != p) {
                rc = s_bad(r, -EPROTO, "bad query id", tok, p, "not a number",
                           err, errlen);
            }
            continue;
        }
        rc = s_parse_feature(b, r, o, tok, p, err, errlen);
    }
    if (rc == 0) {
        rc = s_end_row(b, r, y, err, errlen);
    }
    return rc;
}

// s_check_opts validates the arguments of ds_libsvm_load.
static int
s_check_opts(const ds_sparse_t *d, const char *path, const ds_libsvm_opts_t *o,
             char *err, size_t errlen)
{
    if (d == NULL || path == NULL || o == NULL) {
        return ds_err(err, errlen, -EINVAL, "libsvm: NULL argument");
    }
    if (o->hash_bits < DS_LIBSVM_MIN_BITS ||
        o->hash_bits > DS_LIBSVM_MAX_BITS) {
        return ds_err(err, errlen, -EINVAL,
                      "%s: hash_bits %u is not within [%d, %d]", path,
                      o->hash_bits, DS_LIBSVM_MIN_BITS, DS_LIBSVM_MAX_BITS);
    }
    if (o->nparts == 0 || o->part >= o->nparts) {
        return ds_err(err, errlen, -EINVAL, "%s: bad partition %u of %u", path,
                      o->part, o->nparts);
    }
    return 0;
}

int
ds_libsvm_load(ds_sparse_t *d, const char *path, const ds_libsvm_opts_t *o,
               char *err, size_t errlen)
{
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (d != NULL) {
        memset(d, 0, sizeof *d);
    }
    int rc = s_check_opts(d, path, o, err, errlen);
    if (rc != 0) {
        return rc;
    }
    s_reader_t  r = {.path = path};
    s_builder_t b = {0};
    uint64_t    k = 0; // data lines seen
    rc = s_open(&r, err, errlen);
    if (rc == 0) {
        rc = s_reserve(&b, 0);
        if (rc != 0) {
            rc = ds_err(err, errlen, rc, "%s: out of memory", path);
        } else {
            b.d.offsets[0] = 0;
        }
    }
    while (rc == 0) {
        char  *line = NULL;
        size_t len = 0;
        rc = s_next(&r, &line, &len, err, errlen);
        if (rc <= 0) {
            break;
        }
        rc = 0;
        if (!s_is_data(line)) {
            continue;
        }
        if (o->limit != 0 && k == o->limit) {
            break;
        }
        if (k % o->nparts == o->part) {
            rc = s_parse_line(&b, &r, o, line, len, err, errlen);
        }
        k++;
    }
    if (rc == 0 && b.d.n == 0) {
        rc = ds_err(err, errlen, -EINVAL,
                    "%s: partition %u of %u is empty: the file has %llu "
                    "data lines",
                    path, o->part, o->nparts, (unsigned long long)k);
    }
    if (rc == 0) {
        // Give back the slack of the doubling; failing to is harmless.
        void *keys = realloc(b.d.keys, b.d.nnz ? b.d.nnz * sizeof(uint64_t)
                                               : sizeof(uint64_t));
        void *vals = realloc(b.d.vals,
                             b.d.nnz ? b.d.nnz * sizeof(float) : sizeof(float));
        b.d.keys = keys != NULL ? keys : b.d.keys;
        b.d.vals = vals != NULL ? vals : b.d.vals;
        *d = b.d;
        memset(&b.d, 0, sizeof b.d);
    }
    ds_sparse_fini(&b.d);
    free(b.row);
    s_close(&r);
    return rc;
}

void
ds_sparse_fini(ds_sparse_t *d)
{
    if (d == NULL) {
        return;
    }
    free(d->keys);
    free(d->vals);
    free(d->offsets);
    free(d->y);
    memset(d, 0, sizeof *d);
}
