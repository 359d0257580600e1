// SPDX-License-Identifier: MIT
// fuzz_config - the job file (inih), DESCENT_* environment variables and
// command-line flags, then the JSON dump of whatever was accepted.
//
// Input layout: FILE [NUL ENV [NUL ARGS]]. FILE is written to a temporary
// file and read with ds_config_load_file. ENV is split at newlines into
// "NAME=value" strings for ds_config_load_env. ARGS is split at blanks into
// the flags of ds_config_from_args, whose environment is ENV and whose job
// file, if it names one, is FILE.
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/config.h"
#include "tests/fuzz/scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_MAX_STRINGS 32 // env strings and arguments kept, each
#define S_JSON_MAX 65536 // bytes; ds_config_write_json output buffer

// s_list_t is a NULL-terminated array of separately allocated strings, so
// that ASan sees a read past the end of any of them.
typedef struct {
    char *s[S_MAX_STRINGS + 2]; // strings, then NULL
    int   n;                    // strings used
} s_list_t;

static void
s_fail(const char *what)
{
    fprintf(stderr, "fuzz_config: %s\n", what);
    abort();
}

static void
s_push(s_list_t *l, const char *p, size_t n)
{
    if (l->n >= S_MAX_STRINGS + 1) {
        return;
    }
    char *s = malloc(n + 1);
    if (s == NULL) {
        s_fail("out of memory");
    }
    memcpy(s, p, n);
    s[n] = '\0';
    l->s[l->n++] = s;
    l->s[l->n] = NULL;
}

// s_tame rewrites a string whose value part (after "=" for a NAME=value or
// --flag=value string, else all of it) could name a file outside the
// harness: anything with a '/' or that exists. It then names the scratch
// job file, so that no input can make the parser read /dev/zero or a FIFO.
static void
s_tame(s_list_t *l, int i, const char *job)
{
    char       *s = l->s[i];
    const char *eq = strchr(s, '=');
    size_t      keep = eq != NULL ? (size_t)(eq - s) + 1 : 0;
    const char *v = s + keep;
    struct stat st;
    if (v[0] == '\0' || (strchr(v, '/') == NULL && stat(v, &st) != 0)) {
        return;
    }
    char *t = malloc(keep + strlen(job) + 1);
    if (t == NULL) {
        s_fail("out of memory");
    }
    memcpy(t, s, keep);
    strcpy(t + keep, job);
    free(s);
    l->s[i] = t;
}

static bool
s_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static void
s_free(s_list_t *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->s[i]);
    }
    l->n = 0;
    l->s[0] = NULL;
}

// s_json_* is a small JSON syntax check: ds_config_write_json must produce
// valid JSON (escaped strings, finite numbers) for every accepted config.
static const char *s_json_value(const char *p, int depth);

static const char *
s_json_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') {
        p++;
    }
    return p;
}

static const char *
s_json_string(const char *p)
{
    if (*p++ != '"') {
        return NULL;
    }
    while (*p != '"') {
        if ((unsigned char)*p < 0x20) {
            return NULL;
        }
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++) {
                    if (strchr("0123456789abcdefABCDEF", p[i]) == NULL ||
                        p[i] == '\0') {
                        return NULL;
                    }
                }
                p += 4;
            } else if (*p == '\0' || strchr("\"\\/bfnrt", *p) == NULL) {
                return NULL;
            }
        }
        p++;
    }
    return p + 1;
}

static const char *
s_json_number(const char *p)
{
    const char *start = p;
    if (*p == '-') {
        p++;
    }
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    } else {
        return NULL;
    }
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9')) {
            return NULL;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') {
            p++;
        }
        if (!(*p >= '0' && *p <= '9')) {
            return NULL;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    return p > start ? p : NULL;
}

static const char *
s_json_object(const char *p, int depth)
{
    p = s_json_ws(p + 1);
    if (*p == '}') {
        return p + 1;
    }
    for (;;) {
        p = s_json_string(s_json_ws(p));
        if (p == NULL || *(p = s_json_ws(p)) != ':') {
            return NULL;
        }
        p = s_json_value(p + 1, depth + 1);
        if (p == NULL) {
            return NULL;
        }
        p = s_json_ws(p);
        if (*p == '}') {
            return p + 1;
        }
        if (*p++ != ',') {
            return NULL;
        }
    }
}

static const char *
s_json_value(const char *p, int depth)
{
    p = s_json_ws(p);
    if (depth > 8) {
        return NULL;
    }
    if (*p == '{') {
        return s_json_object(p, depth);
    }
    if (*p == '"') {
        return s_json_string(p);
    }
    if (strncmp(p, "true", 4) == 0) {
        return p + 4;
    }
    if (strncmp(p, "false", 5) == 0) {
        return p + 5;
    }
    return s_json_number(p);
}

// s_check_json dumps c twice, into a buffer too small and into one large
// enough, and checks the lengths agree and the text is valid JSON.
static void
s_check_json(const ds_config_t *c)
{
    static char big[S_JSON_MAX];
    char        small[16];
    size_t      need = ds_config_write_json(c, small, sizeof small);
    size_t      got = ds_config_write_json(c, big, sizeof big);
    if (need != got || strlen(small) != sizeof small - 1) {
        s_fail("ds_config_write_json: lengths disagree");
    }
    if (got >= sizeof big) {
        return;
    }
    const char *end = s_json_value(big, 0);
    if (strlen(big) != got || end == NULL || *s_json_ws(end) != '\0') {
        fprintf(stderr, "invalid JSON from ds_config_write_json:\n%s\n", big);
        abort();
    }
}

// s_check_rc checks the documented error contract: a failure says why.
static void
s_check_rc(const char *fn, int rc, const char *err)
{
    if (rc < 0 && err[0] == '\0') {
        fprintf(stderr, "%s: %d without a reason\n", fn, rc);
        abort();
    }
    if (rc > 0) {
        fprintf(stderr, "%s: returned %d\n", fn, rc);
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    // Cut the input at its first two NULs: FILE, ENV and ARGS.
    const char *part[3] = {(const char *)data, NULL, NULL};
    size_t      plen[3] = {size, 0, 0};
    for (int k = 0; k < 2; k++) {
        const char *nul = memchr(part[k], 0, plen[k]);
        if (nul == NULL) {
            break;
        }
        part[k + 1] = nul + 1;
        plen[k + 1] = plen[k] - (size_t)(nul - part[k]) - 1;
        plen[k] = (size_t)(nul - part[k]);
    }
    const char *job = fz_scratch_write(0, part[0], plen[0]);

    static ds_config_t c, before;
    char               err[512];

    // The job file alone, over the defaults.
    ds_config_defaults(&c);
    before = c;
    int rc = ds_config_load_file(&c, job, err, sizeof err);
    s_check_rc("ds_config_load_file", rc, err);
    if (rc != 0 && memcmp(&c, &before, sizeof c) != 0) {
        s_fail("ds_config_load_file changed the config on failure");
    }
    if (rc == 0) {
        s_check_json(&c);
    }

    // The environment, one string per line.
    s_list_t envl = {.n = 0};
    for (size_t i = 0; i < plen[1];) {
        const char *nl = memchr(part[1] + i, '\n', plen[1] - i);
        size_t      n = nl != NULL ? (size_t)(nl - (part[1] + i)) : plen[1] - i;
        s_push(&envl, part[1] + i, n);
        i += n + 1;
    }
    for (int i = 0; i < envl.n; i++) {
        s_tame(&envl, i, job);
    }
    ds_config_defaults(&c);
    rc = ds_config_load_env(&c, envl.s, err, sizeof err);
    s_check_rc("ds_config_load_env", rc, err);
    if (rc == 0) {
        s_check_json(&c);
    }

    // The flags, split at blanks, after the subcommand name.
    s_list_t argl = {.n = 0};
    s_push(&argl, "run", 3);
    for (size_t i = 0; i < plen[2];) {
        size_t n = 0;
        while (i + n < plen[2] && !s_blank(part[2][i + n])) {
            n++;
        }
        if (n > 0) {
            s_push(&argl, part[2] + i, n);
        }
        i += n + 1;
    }
    for (int i = 1; i < argl.n; i++) {
        s_tame(&argl, i, job);
    }
    bool help = false;
    rc = ds_config_from_args(&c, argl.n, argl.s, envl.s, size & 1, &help, err,
                             sizeof err);
    s_check_rc("ds_config_from_args", rc, err);
    if (rc == 0 && !help) {
        s_check_json(&c);
    }
    s_free(&envl);
    s_free(&argl);
    return 0;
}
