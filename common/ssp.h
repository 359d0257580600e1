// SPDX-License-Identifier: MIT
// ssp - the clock bookkeeping behind BSP, SSP and ASP reads on a server.
#ifndef DS_SSP_H
#define DS_SSP_H

#include <stdbool.h>
#include <stdint.h>

#define DS_SSP_ASP (-1) // staleness that never blocks (s = infinity)

// ds_ssp_t holds the clock each worker has committed (ALGORITHMS.md
// section 12): a worker with clock c is working on iteration c, having
// committed every update of iterations < c. A read by a worker at clock c
// may proceed iff min_clock >= c - s, the minimum over the workers still
// running. The caller embeds it; ds_ssp_init allocates, ds_ssp_fini frees.
// Not thread-safe: one server thread owns it.
typedef struct {
    uint64_t *clock;     // nworkers: each worker's committed clock; owned
    bool     *finished;  // nworkers: true once the worker has ended; owned
    unsigned  nworkers;  // workers tracked
    int       staleness; // s: 0 is BSP, DS_SSP_ASP never blocks
    uint64_t  min;       // min_clock over unfinished workers, kept current
} ds_ssp_t;

// ds_ssp_init tracks nworkers workers, all at clock 0 and running, with
// staleness s (0 = BSP, DS_SSP_ASP = ASP, > 0 = SSP). Returns 0, -EINVAL
// for s < -1, or -ENOMEM (nothing allocated). Free with ds_ssp_fini.
int ds_ssp_init(ds_ssp_t *s, unsigned nworkers, int staleness);

// ds_ssp_fini frees the arrays of s and zeroes it; idempotent.
void ds_ssp_fini(ds_ssp_t *s);

// ds_ssp_commit records that worker has finished iteration clock - 1, so
// its clock is now clock. Clocks only move forward: a repeated clock is a
// no-op (0), an older one is ignored and returns -ESTALE. Returns -ERANGE
// for a worker >= nworkers (both come from peers, so neither asserts). A
// finished worker's commit is recorded but holds no one back. After a
// commit that raises ds_ssp_min_clock, blocked readers should be re-tested.
int ds_ssp_commit(ds_ssp_t *s, unsigned worker, uint64_t clock);

// ds_ssp_finish records that worker has ended: from now on it is left out
// of the minimum, so it no longer holds the others back. Idempotent.
// Returns 0 or -ERANGE for a worker >= nworkers.
int ds_ssp_finish(ds_ssp_t *s, unsigned worker);

// ds_ssp_can_read returns whether a read by a worker at clock c may proceed
// now: always under ASP, else iff ds_ssp_min_clock(s) >= c - s (true for
// c <= s). Otherwise the read waits for the slowest workers to commit.
bool ds_ssp_can_read(const ds_ssp_t *s, uint64_t c);

// ds_ssp_min_clock returns the smallest clock among the workers still
// running, or UINT64_MAX when none is (every read may then proceed).
uint64_t ds_ssp_min_clock(const ds_ssp_t *s);

// ds_ssp_clock returns worker's committed clock (0 for worker >= nworkers).
uint64_t ds_ssp_clock(const ds_ssp_t *s, unsigned worker);

#endif
