// SPDX-License-Identifier: MIT
// ssp - the clock bookkeeping behind BSP, SSP and ASP reads on a server.
#include "common/ssp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

// s_recompute sets s->min to the minimum clock of the unfinished workers.
// It is O(nworkers) and runs only on commits and finishes, so that
// ds_ssp_can_read, called on every pull, is O(1).
static void
s_recompute(ds_ssp_t *s)
{
    uint64_t min = UINT64_MAX;
    for (unsigned w = 0; w < s->nworkers; w++) {
        if (!s->finished[w] && s->clock[w] < min) {
            min = s->clock[w];
        }
    }
    s->min = min;
}

int
ds_ssp_init(ds_ssp_t *s, unsigned nworkers, int staleness)
{
    memset(s, 0, sizeof *s);
    if (staleness < DS_SSP_ASP) {
        return -EINVAL;
    }
    // calloc checks the count * size product; one extra element keeps
    // nworkers == 0 from returning NULL.
    s->clock = calloc((size_t)nworkers + 1, sizeof *s->clock);
    s->finished = calloc((size_t)nworkers + 1, sizeof *s->finished);
    if (s->clock == NULL || s->finished == NULL) {
        ds_ssp_fini(s);
        return -ENOMEM;
    }
    s->nworkers = nworkers;
    s->staleness = staleness;
    s_recompute(s);
    return 0;
}

void
ds_ssp_fini(ds_ssp_t *s)
{
    free(s->clock);
    free(s->finished);
    memset(s, 0, sizeof *s);
}

int
ds_ssp_commit(ds_ssp_t *s, unsigned worker, uint64_t clock)
{
    if (worker >= s->nworkers) {
        return -ERANGE;
    }
    if (clock < s->clock[worker]) {
        return -ESTALE;
    }
    uint64_t old = s->clock[worker];
    s->clock[worker] = clock;
    // Only the slowest running worker can raise the minimum.
    if (!s->finished[worker] && old == s->min && clock > old) {
        s_recompute(s);
    }
    return 0;
}

int
ds_ssp_finish(ds_ssp_t *s, unsigned worker)
{
    if (worker >= s->nworkers) {
        return -ERANGE;
    }
    if (!s->finished[worker]) {
        s->finished[worker] = true;
        s_recompute(s);
    }
    return 0;
}

bool
ds_ssp_can_read(const ds_ssp_t *s, uint64_t c)
{
    if (s->staleness == DS_SSP_ASP) {
        return true;
    }
    uint64_t slack = (uint64_t)s->staleness;
    // min >= c - s, written so that c < s cannot wrap around.
    return c <= slack || s->min >= c - slack;
}

uint64_t
ds_ssp_min_clock(const ds_ssp_t *s)
{
    return s->min;
}

uint64_t
ds_ssp_clock(const ds_ssp_t *s, unsigned worker)
{
    return worker < s->nworkers ? s->clock[worker] : 0;
}
