// SPDX-License-Identifier: MIT
// datagen - seeded synthetic sparse binary data in LIBSVM format, labelled
// by a planted linear model over Zipf-distributed features.
#include "cli/datagen.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/rng.h"
#include "common/util.h"

#define S_WHO "datagen"
#define S_PILOT 10001       // rows whose median margin sets the bias
#define S_TRAIN_STREAM 1    // rng stream of the training rows
#define S_TEST_STREAM 2     // rng stream of the test rows
#define S_PILOT_STREAM 3    // rng stream of the pilot rows
#define S_TRIES 32          // draws per wanted feature before giving up
#define S_BUF (1024 * 1024) // output buffer, bytes
#define S_ENTRY_MAX 27      // " 4294967295:0.001" and then some, bytes
#define S_INSERTION 32      // rows up to this long: insertion sort

// s_gen_t is the planted model and the sampler of one dataset.
typedef struct {
    const ds_datagen_opts_t *o;   // options; not owned
    double                  *w;   // features + 1 planted weights; w[0] unused
    uint32_t                *thr; // alias method: keep column j when a
                                  // 32-bit coin is below thr[j]
    uint32_t *alias;              // ... else take alias[j]
    uint32_t *stamp;              // features + 1 marks: stamp[j] == mark
                                  // when j is in the current row
    uint32_t  mark;               // mark of the current row
    uint32_t *ids;                // nnz feature ids of the current row
    uint16_t *val;                // nnz values * 1000 of the current row
    double    bias;               // planted bias b
} s_gen_t;

// s_out_t is a buffered plain or gzip output file.
typedef struct {
    const char *path; // for messages; not owned
    FILE       *f;    // plain output, or NULL
    gzFile      gz;   // gzip output, or NULL
    char       *buf;  // cap bytes; owned
    size_t      len;  // bytes buffered
    size_t      cap;  // size of buf
} s_out_t;

void
ds_datagen_defaults(ds_datagen_opts_t *o)
{
    *o = (ds_datagen_opts_t){
        .n = 100000,
        .features = 100000,
        .nnz = 20,
        .seed = 1,
        .alpha = 1.1,
        .noise = 0.0,
        .uniform = false,
        .test_n = 0,
    };
}

static int
s_check(const ds_datagen_opts_t *o, bool test, char *err, size_t errlen)
{
    if (o->n == 0 || (test && o->test_n == 0)) {
        return ds_err(err, errlen, -EINVAL, "n and test_n must be >= 1");
    }
    if (o->features == 0 || o->features > DS_DATAGEN_MAX_FEATURES) {
        return ds_err(err, errlen, -EINVAL, "features must be in [1, %u]",
                      DS_DATAGEN_MAX_FEATURES);
    }
    if (o->nnz == 0 || o->nnz > DS_DATAGEN_MAX_NNZ || o->nnz > o->features) {
        return ds_err(err, errlen, -EINVAL,
                      "nnz must be in [1, %u] and at most features",
                      DS_DATAGEN_MAX_NNZ);
    }
    if (!(o->alpha >= 0.0 && o->alpha <= 100.0)) {
        return ds_err(err, errlen, -EINVAL, "alpha must be in [0, 100]");
    }
    if (!(o->noise >= 0.0 && o->noise <= 1.0)) {
        return ds_err(err, errlen, -EINVAL, "noise must be in [0, 1]");
    }
    return 0;
}

// s_alias builds Vose's alias table for P(j) ~ j^-alpha, j = 1..F (column
// j - 1), so that a draw costs two random numbers whatever F is.
static int
s_alias(s_gen_t *g)
{
    size_t    F = (size_t)g->o->features;
    double   *p = malloc(F * sizeof *p);
    uint32_t *work = malloc(F * sizeof *work);
    if (p == NULL || work == NULL) {
        free(p);
        free(work);
        return -ENOMEM;
    }
    double sum = 0.0;
    for (size_t j = 0; j < F; j++) {
        p[j] = pow((double)(j + 1), -g->o->alpha);
        sum += p[j];
    }
    // Small columns (scaled probability < 1) stack up from the front of
    // work, large ones from the back.
    size_t ns = 0, nl = 0;
    for (size_t j = 0; j < F; j++) {
        p[j] = p[j] / sum * (double)F;
        if (p[j] < 1.0) {
            work[ns++] = (uint32_t)j;
        } else {
            work[F - 1 - nl++] = (uint32_t)j;
        }
    }
    while (ns > 0 && nl > 0) {
        uint32_t s = work[--ns];
        uint32_t l = work[F - nl];
        // Rounding can leave a column a hair below 0; it then never keeps.
        g->thr[s] = p[s] > 0.0 ? (uint32_t)(p[s] * 4294967296.0) : 0;
        g->alias[s] = l;
        p[l] -= 1.0 - p[s];
        if (p[l] < 1.0) {
            nl--;
            work[ns++] = l;
        }
    }
    // What is left is 1 up to rounding: always keep the column.
    while (ns > 0) {
        uint32_t s = work[--ns];
        g->thr[s] = UINT32_MAX;
        g->alias[s] = s;
    }
    while (nl > 0) {
        uint32_t l = work[F - nl--];
        g->thr[l] = UINT32_MAX;
        g->alias[l] = l;
    }
    free(p);
    free(work);
    return 0;
}

// s_draw returns a feature id in 1..F from the Zipf law.
static uint32_t
s_draw(const s_gen_t *g, ds_rng_t *r)
{
    uint32_t col = (uint32_t)ds_rng_below(r, g->o->features);
    uint32_t coin = (uint32_t)(ds_rng_next(r) >> 32);
    return (coin < g->thr[col] ? col : g->alias[col]) + 1;
}

// s_row draws the sorted ids and values of one row and returns how many.
static size_t
s_row(s_gen_t *g, ds_rng_t *r)
{
    if (++g->mark == 0) {
        memset(g->stamp, 0, ((size_t)g->o->features + 1) * sizeof *g->stamp);
        g->mark = 1;
    }
    size_t   m = 0;
    unsigned K = g->o->nnz;
    for (unsigned t = 0; m < K && t < S_TRIES * K; t++) {
        uint32_t id = s_draw(g, r);
        if (g->stamp[id] != g->mark) {
            g->stamp[id] = g->mark;
            g->ids[m++] = id;
        }
    }
    if (m <= S_INSERTION) {
        for (size_t i = 1; i < m; i++) {
            uint32_t v = g->ids[i];
            size_t   j = i;
            for (; j > 0 && g->ids[j - 1] > v; j--) {
                g->ids[j] = g->ids[j - 1];
            }
            g->ids[j] = v;
        }
    } else {
        // Distinct ids in 1..F: a counting pass over the marks would cost
        // O(F), so sort.
        for (size_t gap = m / 2; gap > 0; gap /= 2) {
            for (size_t i = gap; i < m; i++) {
                uint32_t v = g->ids[i];
                size_t   j = i;
                for (; j >= gap && g->ids[j - gap] > v; j -= gap) {
                    g->ids[j] = g->ids[j - gap];
                }
                g->ids[j] = v;
            }
        }
    }
    for (size_t i = 0; i < m; i++) {
        g->val[i] =
            g->o->uniform ? (uint16_t)(1 + ds_rng_below(r, 1000)) : 1000;
    }
    return m;
}

// s_value returns the float a reader gets from the text of value k/1000.
static float
s_value(uint16_t k)
{
    return (float)((double)k / 1000.0);
}

// s_margin returns b + sum_j w*_j x_j of the current row, in its order.
static double
s_margin(const s_gen_t *g, size_t m, double bias)
{
    double z = bias;
    for (size_t i = 0; i < m; i++) {
        z += g->w[g->ids[i]] * (double)s_value(g->val[i]);
    }
    return z;
}

static int
s_double_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// s_init allocates the sampler and plants w* and b.
static int
s_init(s_gen_t *g, const ds_datagen_opts_t *o)
{
    size_t F = (size_t)o->features;
    memset(g, 0, sizeof *g);
    g->o = o;
    g->w = malloc((F + 1) * sizeof *g->w);
    g->thr = malloc(F * sizeof *g->thr);
    g->alias = malloc(F * sizeof *g->alias);
    g->stamp = calloc(F + 1, sizeof *g->stamp);
    g->ids = malloc(o->nnz * sizeof *g->ids);
    g->val = malloc(o->nnz * sizeof *g->val);
    double *pilot = malloc(S_PILOT * sizeof *pilot);
    int     rc = 0;
    if (g->w == NULL || g->thr == NULL || g->alias == NULL ||
        g->stamp == NULL || g->ids == NULL || g->val == NULL || pilot == NULL) {
        rc = -ENOMEM;
    }
    if (rc == 0) {
        rc = s_alias(g);
    }
    if (rc == 0) {
        g->w[0] = 0.0;
        for (size_t j = 1; j <= F; j++) {
            g->w[j] = ds_rng_key_normal(o->seed, j);
        }
        ds_rng_t r;
        ds_rng_seed(&r, o->seed, S_PILOT_STREAM);
        for (size_t i = 0; i < S_PILOT; i++) {
            pilot[i] = s_margin(g, s_row(g, &r), 0.0);
        }
        qsort(pilot, S_PILOT, sizeof *pilot, s_double_cmp);
        g->bias = -pilot[S_PILOT / 2];
    }
    free(pilot);
    return rc;
}

static void
s_fini(s_gen_t *g)
{
    free(g->w);
    free(g->thr);
    free(g->alias);
    free(g->stamp);
    free(g->ids);
    free(g->val);
    memset(g, 0, sizeof *g);
}

static bool
s_is_gz(const char *path)
{
    size_t n = strlen(path);
    return n >= 3 && strcmp(path + n - 3, ".gz") == 0;
}

static int
s_out_open(s_out_t *w, const char *path, size_t row_max, char *err,
           size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->path = path;
    w->cap = S_BUF > 2 * row_max ? S_BUF : 2 * row_max;
    w->buf = malloc(w->cap);
    if (w->buf == NULL) {
        return ds_err(err, errlen, -ENOMEM, "%s: out of memory", path);
    }
    errno = 0;
    if (s_is_gz(path)) {
        w->gz = gzopen(path, "wb1");
    } else {
        w->f = fopen(path, "wb");
    }
    if (w->gz == NULL && w->f == NULL) {
        int rc = errno != 0 ? -errno : -ENOMEM;
        return ds_err(err, errlen, rc, "%s: cannot create: %s", path,
                      strerror(-rc));
    }
    return 0;
}

static int
s_out_flush(s_out_t *w, char *err, size_t errlen)
{
    if (w->len == 0) {
        return 0;
    }
    errno = 0;
    bool ok = w->gz != NULL
                  ? gzwrite(w->gz, w->buf, (unsigned)w->len) == (int)w->len
                  : fwrite(w->buf, 1, w->len, w->f) == w->len;
    w->len = 0;
    if (!ok) {
        int rc = errno != 0 ? -errno : -EIO;
        return ds_err(err, errlen, rc, "%s: write error: %s", w->path,
                      strerror(-rc));
    }
    return 0;
}

// s_out_close flushes and closes w; rc is the status so far, and a
// failure removes the file.
static int
s_out_close(s_out_t *w, int rc, char *err, size_t errlen)
{
    if (rc == 0) {
        rc = s_out_flush(w, err, errlen);
    }
    errno = 0;
    int bad = 0;
    if (w->gz != NULL) {
        bad = gzclose(w->gz) != Z_OK;
    } else if (w->f != NULL) {
        bad = fclose(w->f) != 0;
    }
    if (bad && rc == 0) {
        rc = errno != 0 ? -errno : -EIO;
        rc = ds_err(err, errlen, rc, "%s: write error: %s", w->path,
                    strerror(-rc));
    }
    if (rc != 0 && (w->gz != NULL || w->f != NULL)) {
        unlink(w->path);
    }
    free(w->buf);
    memset(w, 0, sizeof *w);
    return rc;
}

// s_put_u64 writes v in decimal at p and returns the end.
static char *
s_put_u64(char *p, uint64_t v)
{
    char  tmp[20];
    char *t = tmp + sizeof tmp;
    do {
        *--t = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    size_t n = (size_t)(tmp + sizeof tmp - t);
    memcpy(p, t, n);
    return p + n;
}

// s_put_value writes k/1000 as "1" or "0.d", "0.dd", "0.ddd".
static char *
s_put_value(char *p, uint16_t k)
{
    if (k == 1000) {
        *p++ = '1';
        return p;
    }
    char d[3] = {(char)('0' + k / 100), (char)('0' + k / 10 % 10),
                 (char)('0' + k % 10)};
    int  n = d[2] != '0' ? 3 : d[1] != '0' ? 2 : 1;
    *p++ = '0';
    *p++ = '.';
    memcpy(p, d, (size_t)n);
    return p + n;
}

static int
s_sidecar(const ds_datagen_opts_t *o, const char *path,
          const ds_datagen_stats_t *st, char *err, size_t errlen)
{
    char json[4096];
    int  n = snprintf(json, sizeof json, "%s.json", path);
    if (n < 0 || (size_t)n >= sizeof json) {
        return ds_err(err, errlen, -ENAMETOOLONG, "%s.json: name too long",
                      path);
    }
    errno = 0;
    FILE *f = fopen(json, "w");
    if (f == NULL) {
        int rc = errno != 0 ? -errno : -ENOMEM;
        return ds_err(err, errlen, rc, "%s: cannot create: %s", json,
                      strerror(-rc));
    }
    fprintf(f,
            "{\"n\":%llu,\"features\":%llu,\"nnz\":%u,\"seed\":%llu,"
            "\"alpha\":%.15g,\"noise\":%.15g,\"values\":\"%s\","
            "\"entries\":%llu,\"positives\":%llu,\"flips\":%llu,"
            "\"bias\":%.17g,\"planted_accuracy\":%.15g}\n",
            (unsigned long long)st->n, (unsigned long long)o->features, o->nnz,
            (unsigned long long)o->seed, o->alpha, o->noise,
            o->uniform ? "uniform" : "binary", (unsigned long long)st->entries,
            (unsigned long long)st->positives, (unsigned long long)st->flips,
            st->bias, st->planted_accuracy);
    if (ferror(f) | (fclose(f) != 0)) {
        unlink(json);
        return ds_err(err, errlen, -EIO, "%s: write error", json);
    }
    return 0;
}

// s_write_file writes n rows from rng stream `stream` to path and its
// sidecar.
static int
s_write_file(s_gen_t *g, const char *path, uint64_t n, uint64_t stream,
             ds_datagen_stats_t *st, char *err, size_t errlen)
{
    const ds_datagen_opts_t *o = g->o;
    size_t                   row_max = 4 + (size_t)o->nnz * S_ENTRY_MAX;
    s_out_t                  w;
    ds_rng_t                 r;
    memset(st, 0, sizeof *st);
    st->bias = g->bias;
    ds_rng_seed(&r, o->seed, stream);
    int rc = s_out_open(&w, path, row_max, err, errlen);
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        size_t m = s_row(g, &r);
        int    y = s_margin(g, m, g->bias) > 0.0;
        // One coin per row whatever the noise, so that rows and labels do
        // not shift when only the noise changes.
        if (ds_rng_uniform(&r) < o->noise) {
            y = !y;
            st->flips++;
        }
        if (w.len + row_max > w.cap) {
            rc = s_out_flush(&w, err, errlen);
        }
        char *p = w.buf + w.len;
        memcpy(p, y ? "+1" : "-1", 2);
        p += 2;
        for (size_t k = 0; k < m; k++) {
            *p++ = ' ';
            p = s_put_u64(p, g->ids[k]);
            *p++ = ':';
            p = s_put_value(p, g->val[k]);
        }
        *p++ = '\n';
        w.len = (size_t)(p - w.buf);
        st->entries += m;
        st->positives += (uint64_t)y;
    }
    rc = s_out_close(&w, rc, err, errlen);
    st->n = n;
    st->planted_accuracy = 1.0 - (double)st->flips / (double)n;
    if (rc == 0) {
        rc = s_sidecar(o, path, st, err, errlen);
    }
    return rc;
}

int
ds_datagen_write(const ds_datagen_opts_t *o, const char *path,
                 const char *test_path, ds_datagen_stats_t *train,
                 ds_datagen_stats_t *test, char *err, size_t errlen)
{
    if (o == NULL || path == NULL) {
        return ds_err(err, errlen, -EINVAL, "datagen: NULL argument");
    }
    int rc = s_check(o, test_path != NULL, err, errlen);
    if (rc != 0) {
        return rc;
    }
    s_gen_t            g;
    ds_datagen_stats_t st_train, st_test;
    rc = s_init(&g, o);
    if (rc != 0) {
        s_fini(&g);
        return ds_err(err, errlen, rc, "out of memory for %llu features",
                      (unsigned long long)o->features);
    }
    rc = s_write_file(&g, path, o->n, S_TRAIN_STREAM, &st_train, err, errlen);
    if (rc == 0 && test_path != NULL) {
        rc = s_write_file(&g, test_path, o->test_n, S_TEST_STREAM, &st_test,
                          err, errlen);
    }
    s_fini(&g);
    if (rc == 0 && train != NULL) {
        *train = st_train;
    }
    if (rc == 0 && test != NULL && test_path != NULL) {
        *test = st_test;
    }
    return rc;
}

// s_value_of returns the value of option `name` at argv[*i] ("--name=V" or
// "--name V", advancing *i past V), or NULL when argv[*i] is another
// option. *missing is set when the option has no value.
static const char *
s_value_of(int argc, char **argv, int *i, const char *name, bool *missing)
{
    const char *a = argv[*i];
    size_t      n = strlen(name);
    if (strncmp(a, name, n) != 0) {
        return NULL;
    }
    if (a[n] == '=') {
        return a + n + 1;
    }
    if (a[n] != '\0') {
        return NULL;
    }
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

static bool
s_parse_u64(const char *s, uint64_t *out)
{
    char *e = NULL;
    if (s[0] < '0' || s[0] > '9') {
        return false;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno != 0 || *e != '\0') {
        return false;
    }
    *out = v;
    return true;
}

static bool
s_parse_double(const char *s, double *out)
{
    char *e = NULL;
    errno = 0;
    double v = strtod(s, &e);
    if (e == s || *e != '\0' || errno != 0 || !isfinite(v)) {
        return false;
    }
    *out = v;
    return true;
}

static void
s_usage(FILE *f)
{
    fprintf(f,
            "usage: descent datagen --out FILE [--n N] [--features F] "
            "[--nnz K]\n"
            "                       [--seed S] [--alpha A] [--noise P] "
            "[--values binary|uniform]\n"
            "                       [--test-out FILE2 [--test-n M]]\n\n"
            "Writes a synthetic sparse binary dataset in LIBSVM format, "
            "labelled by a planted\n"
            "linear model, and FILE.json with its planted accuracy. A name "
            "ending in .gz is\n"
            "written gzip-compressed. docs/data.md explains the model.\n\n"
            "  --out FILE        training rows (required)\n"
            "  --n N             training rows (100000)\n"
            "  --features F      feature ids 1..F (100000)\n"
            "  --nnz K           distinct features per row (20)\n"
            "  --seed S          seed of everything (1)\n"
            "  --alpha A         Zipf exponent of feature frequencies (1.1)\n"
            "  --noise P         probability of flipping each label (0)\n"
            "  --values V        binary: every value 1; uniform: k/1000, "
            "k in 1..1000 (binary)\n"
            "  --test-out FILE2  also write held-out rows from the same "
            "model\n"
            "  --test-n M        held-out rows (N/10)\n");
}

// s_parse_args fills o, *out and *test_out from argv. Returns 0, 1 after
// --help, or 2 after printing a usage error.
static int
s_parse_args(int argc, char **argv, ds_datagen_opts_t *o, const char **out,
             const char **test_out)
{
    bool test_n_set = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        bool        missing = false, ok = true;
        uint64_t    u = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            s_usage(stdout);
            return 1;
        }
        if ((v = s_value_of(argc, argv, &i, "--out", &missing)) != NULL) {
            *out = v;
        } else if ((v = s_value_of(argc, argv, &i, "--test-out", &missing))) {
            *test_out = v;
        } else if ((v = s_value_of(argc, argv, &i, "--test-n", &missing))) {
            ok = s_parse_u64(v, &o->test_n);
            test_n_set = true;
        } else if ((v = s_value_of(argc, argv, &i, "--n", &missing))) {
            ok = s_parse_u64(v, &o->n);
        } else if ((v = s_value_of(argc, argv, &i, "--features", &missing))) {
            ok = s_parse_u64(v, &o->features);
        } else if ((v = s_value_of(argc, argv, &i, "--nnz", &missing))) {
            ok = s_parse_u64(v, &u) && u <= DS_DATAGEN_MAX_NNZ;
            o->nnz = (unsigned)u;
        } else if ((v = s_value_of(argc, argv, &i, "--seed", &missing))) {
            ok = s_parse_u64(v, &o->seed);
        } else if ((v = s_value_of(argc, argv, &i, "--alpha", &missing))) {
            ok = s_parse_double(v, &o->alpha);
        } else if ((v = s_value_of(argc, argv, &i, "--noise", &missing))) {
            ok = s_parse_double(v, &o->noise);
        } else if ((v = s_value_of(argc, argv, &i, "--values", &missing))) {
            ok = strcmp(v, "binary") == 0 || strcmp(v, "uniform") == 0;
            o->uniform = strcmp(v, "uniform") == 0;
        } else {
            fprintf(stderr, "descent %s: %s \"%s\"\n\n", S_WHO,
                    missing ? "missing value for" : "unknown option", a);
            s_usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "descent %s: bad value \"%s\" for %s\n", S_WHO, v,
                    a);
            return 2;
        }
    }
    if (*out == NULL) {
        fprintf(stderr, "descent %s: --out FILE is required\n\n", S_WHO);
        s_usage(stderr);
        return 2;
    }
    if (test_n_set && *test_out == NULL) {
        fprintf(stderr, "descent %s: --test-n needs --test-out\n", S_WHO);
        return 2;
    }
    if (!test_n_set) {
        o->test_n = o->n / 10 > 0 ? o->n / 10 : 1;
    }
    return 0;
}

static double
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
s_report(const char *path, const ds_datagen_stats_t *st)
{
    printf("%s: %llu rows, %llu entries (%.1f per row), %.1f%% positive; "
           "planted accuracy %.6f (%llu labels flipped); sidecar %s.json\n",
           path, (unsigned long long)st->n, (unsigned long long)st->entries,
           (double)st->entries / (double)st->n,
           100.0 * (double)st->positives / (double)st->n, st->planted_accuracy,
           (unsigned long long)st->flips, path);
}

int
ds_datagen_main(int argc, char **argv)
{
    ds_datagen_opts_t o;
    const char       *out = NULL, *test_out = NULL;
    ds_datagen_defaults(&o);
    int rc = s_parse_args(argc, argv, &o, &out, &test_out);
    if (rc != 0) {
        return rc == 1 ? 0 : rc;
    }
    ds_datagen_stats_t train, test;
    char               err[512];
    double             t0 = s_now();
    rc = ds_datagen_write(&o, out, test_out, &train, &test, err, sizeof err);
    if (rc == -EINVAL) {
        fprintf(stderr, "descent %s: %s\n", S_WHO, err);
        return 2;
    }
    if (rc != 0) {
        fprintf(stderr, "descent %s: %s\n", S_WHO, err);
        return 1;
    }
    s_report(out, &train);
    if (test_out != NULL) {
        s_report(test_out, &test);
    }
    printf("planted model: %llu N(0,1) weights (seed %llu), bias %.6f; "
           "written in %.2f s\n",
           (unsigned long long)o.features, (unsigned long long)o.seed,
           train.bias, s_now() - t0);
    return 0;
}
