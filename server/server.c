// SPDX-License-Identifier: MIT
// server - the parameter-server role: holds key ranges, applies pushes.
#include "server/server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/checkpoint.h"
#include "common/dtadagrad.h"
#include "common/easgd.h"
#include "common/job.h"
#include "common/log.h"
#include "common/node.h"
#include "common/noise.h"
#include "common/optim.h"
#include "common/rng.h"
#include "common/schedule.h"
#include "common/shard_map.h"
#include "common/util.h"
#include "common/ssp.h"

#define MAX_NODE_ID (1u << 20) // maps naming larger node ids are refused
#define STALE_BUCKETS 64       // staleness histogram: 0..62, then 63 or more
#define S_CKPT_DTADAGRAD 100   // checkpoint rule id of dtadagrad's state

// s_wait_t is a read held back by the consistency model (bsp, ssp) until
// the slowest worker has committed enough clocks.
typedef struct s_wait {
    zmq_msg_t      route;  // the worker's identity on the data socket
    Descent__Type  type;   // PUSH_ACK or PULL_REPLY
    uint32_t       sender; // the worker's node id
    uint32_t       shard;  // range id
    uint64_t       seq;    // the request's sequence number
    uint64_t       begin;  // first key
    uint64_t       count;  // keys
    uint64_t       clock;  // the worker clock the read is for
    uint64_t       read;   // the worker's id for this read (dtadagrad)
    double         lr;     // PUSH_ACK: the rate applied
    struct s_wait *next;   // next held read, oldest first
} s_wait_t;

// s_fwd_t is one operation forwarded down the chain to a range's backup
// and not yet acknowledged: kept so that it can be sent again.
typedef struct s_fwd {
    uint64_t      seq;        // chain sequence number
    Descent__Repl repl;       // what it is
    uint32_t      origin;     // the worker it came from
    uint64_t      oseq;       // the worker's sequence number (pushes)
    uint64_t      begin;      // dense: first key
    uint64_t      count;      // keys
    uint64_t      clock;      // the worker's clock
    uint64_t      based_on;   // the push's based_on
    uint64_t      based_read; // dtadagrad: the push's read; REPL_READ: read
    double        lr;         // the rate the primary applied
    bool          sparse;     // a keys frame follows
    zmq_msg_t     keys;       // sparse keys; valid if sparse
    zmq_msg_t     vals;       // values; valid if count > 0 and repl is a push
    struct s_fwd *next;
} s_fwd_t;

// s_pend_t is a worker's request whose reply waits until the backup has
// acknowledged chain sequence number `chain` (the push, or for a duplicate
// whatever was forwarded before it).
typedef struct s_pend {
    uint64_t        chain; // chain sequence number to wait for
    ds_msg_t        msg;   // the request; owned
    Descent__Header out;   // the reply, filled but for values
    struct s_pend  *next;
} s_pend_t;

// s_range_t is one range this server holds, as its primary or its backup.
typedef struct {
    ds_range_t       r;         // the range and its placement
    float           *w;         // end - begin parameters; owned
    uint64_t         updates;   // pushes applied so far
    ds_optim_state_t st;        // the update rule's state for the range
    ds_rng_t         noise;     // gradient noise draws for the range
    ds_ssp_t         ssp;       // worker clocks committed on this range
    ds_dtada_t       dt;        // dtadagrad: AdaptiveRevision state
    uint64_t         max_clock; // largest clock committed on this range
    bool             primary;   // we are its primary, else its backup
    bool             seeded;    // holds the whole state (a backup being
                                // seeded does not yet)
    uint64_t applied;           // pushes applied in this job (the audit)
    uint64_t chain;             // primary: last chain number forwarded;
                                // backup: last applied in order
    uint64_t acked;             // primary: last the backup acknowledged
    uint64_t seed_at;           // primary: chain number of the last seed
                                // sent; backup: of the seed under way
    uint32_t   seed_part;       // backup: next SEED part expected
    bool       seed_acked;      // primary: the backup has the last seed
    uint64_t   progress_ms;     // primary: when the backup last advanced
    s_fwd_t   *fwd;             // primary: unacknowledged forwards; owned
    s_fwd_t  **fwd_tail;        // where the next forward goes
    s_pend_t  *pend;            // primary: replies waiting; owned
    s_pend_t **pend_tail;       // where the next waiting reply goes
    bool       promoted;        // became primary on a failover and has not
                                // acknowledged a push since
} s_range_t;

// s_peer_t is the link to another server: chain forwards go out on it,
// acknowledgements come back.
typedef struct {
    uint32_t   id;                  // its node id
    char       address[DS_STR_MAX]; // its data endpoint
    ds_zsock_t z;                   // DEALER connected to it
    bool       open;                // z is initialized and not closed
    void      *owner;               // the s_server_t
} s_peer_t;

typedef struct {
    ds_node_t      node;              // scheduler link; node.role_data is us
    ds_zsock_t     data;              // ROUTER for pushes and pulls
    bool           data_open;         // data is initialized and not yet closed
    char           bound[DS_STR_MAX]; // endpoint actually bound
    char           advertised[DS_STR_MAX]; // endpoint workers connect to
    bool           serving;     // holds its ranges and answers requests
    ds_shard_map_t map;         // the shard map in force
    s_range_t    **held;        // by range id; NULL when not ours; owned
    ds_schedule_t  lr;          // learning-rate schedule over updates
    ds_optim_t     opt;         // the job's update rule
    int32_t       *row;         // by node id: the worker's row, -1 if none
    uint32_t       max_id;      // largest node id in the map
    uint64_t      *last_seq;    // [row * nranges + range]; owned
    float         *scratch;     // aligned copy of a misaligned values frame
    size_t         scratch_n;   // floats in scratch
    float         *gw;          // sparse: gathered parameters and state
    size_t         gw_n;        // floats in gw
    uint64_t       pushes;      // pushes applied
    uint64_t       pulls;       // pulls answered
    uint64_t       dups;        // duplicate pushes acknowledged, not applied
    uint64_t       refused;     // requests refused with an error status
    uint64_t       nonfinite;   // pushes refused for NaN or Inf
    int            staleness;   // -1 (async), 0 (bsp) or ssp's bound
    bool           dtada;       // the algorithm is dtadagrad
    bool           easgd;       // the algorithm is easgd: pushes add
    uint32_t       slots;       // dtadagrad: read snapshots per worker
    uint32_t       nworkers;    // workers of the map
    uint32_t      *worker_id;   // by row: the worker's node id; owned
    s_wait_t      *waiting;     // reads held back, oldest first; owned
    s_wait_t     **wait_tail;   // where the next held read goes
    uint64_t       holds;       // reads that had to wait
    ds_rng_t       frng;        // fault injection: which replies to drop
    uint64_t       faults;      // replies dropped by fault injection
    uv_timer_t     ckpt;        // periodic checkpoints
    bool           ckpt_open;   // ckpt is initialized and not closed
    uint64_t       ckpt_mark;   // s_ckpt_mark when STATS came, 0 = none
    uv_timer_t     chain_timer; // re-sends forwards the backup has not
                                // acknowledged
    bool       chain_open;      // chain_timer initialized and not closed
    uint64_t   tick_ms;         // loop time chain_timer last ran
    uint64_t   paused_at;       // loop time a stall was noticed, 0 = none
    s_peer_t **peers;           // links to the other servers; owned
    uint32_t   npeers;          // entries in peers
    uint64_t   peer_epoch;      // newest map epoch a peer's message
                                // claimed (logged, never trusted)
    uint64_t stale_accepted;    // pushes applied while the scheduler had
                                // announced a newer epoch (must stay 0)
    uint64_t fenced;            // requests refused: old epoch, expired lease
    uint64_t forwarded;         // operations forwarded to backups
    uint64_t replicated;        // operations applied as a backup
    uint64_t seeds;             // ranges seeded to a new backup
    uint64_t stale_upd[STALE_BUCKETS]; // pushes by staleness, updates
    uint64_t stale_clk[STALE_BUCKETS]; // pushes by staleness, clocks
    uint64_t stall_ms;          // longest gap between chain-timer ticks, ms
    struct s_build *build;      // ranges being built off the loop, or NULL
    ds_msg_t        next_map;   // a SHARD_MAP that came during the build
    bool            has_next;   // next_map holds one
    struct s_ckpt_job *ckpt_job; // checkpoint being written, or NULL
    bool        stats_wanted;   // STATS came: reply once the final one is written
    uint64_t    ckpt_gen;       // checkpoints taken so far (loop)
    uv_mutex_t  ckpt_lock;      // one checkpoint writer at a time
    uint64_t    ckpt_written;   // newest checkpoint written (ckpt_lock)
    atomic_bool ckpt_ok;        // s_may_checkpoint as the loop last saw it;
                                // a writer stops when it turns false
} s_server_t;

static void
s_fwd_free(s_fwd_t *f)
{
    if (f->sparse) {
        zmq_msg_close(&f->keys);
    }
    if (f->repl == DESCENT__REPL__REPL_PUSH) {
        zmq_msg_close(&f->vals);
    }
    free(f);
}

// s_range_drop_chain frees r's unacknowledged forwards and waiting replies
// (the workers send those requests again).
static void
s_range_drop_chain(s_range_t *r)
{
    while (r->fwd) {
        s_fwd_t *f = r->fwd;
        r->fwd = f->next;
        s_fwd_free(f);
    }
    r->fwd_tail = &r->fwd;
    while (r->pend) {
        s_pend_t *p = r->pend;
        r->pend = p->next;
        ds_msg_fini(&p->msg);
        free(p);
    }
    r->pend_tail = &r->pend;
}

static void
s_range_free(s_range_t *r)
{
    if (!r) {
        return;
    }
    s_range_drop_chain(r);
    ds_optim_state_fini(&r->st);
    ds_ssp_fini(&r->ssp);
    ds_dtada_fini(&r->dt);
    free(r->w);
    free(r);
}

// s_drop_waiting forgets the held reads of range `shard` (every range when
// shard is UINT32_MAX): we no longer serve it.
static void
s_drop_waiting(s_server_t *s, uint32_t shard)
{
    s_wait_t **p = &s->waiting;
    while (*p) {
        s_wait_t *wt = *p;
        if (shard != UINT32_MAX && wt->shard != shard) {
            p = &wt->next;
            continue;
        }
        *p = wt->next;
        zmq_msg_close(&wt->route);
        free(wt);
    }
    s->wait_tail = &s->waiting;
    while (*s->wait_tail) {
        s->wait_tail = &(*s->wait_tail)->next;
    }
}

static void
s_free_ranges(s_server_t *s)
{
    for (uint32_t i = 0; s->held && i < s->map.nranges; i++) {
        s_range_free(s->held[i]);
    }
    free(s->held);
    s->held = NULL;
    s_drop_waiting(s, UINT32_MAX);
    free(s->worker_id);
    s->worker_id = NULL;

    free(s->last_seq);
    s->last_seq = NULL;
    free(s->row);
    s->row = NULL;
    s->max_id = 0;
    free(s->scratch);
    s->scratch = NULL;
    s->scratch_n = 0;
    free(s->gw);
    s->gw = NULL;
    s->gw_n = 0;
    ds_shard_map_fini(&s->map);
}

// s_free_peers frees the links to other servers once the loop has ended
// (their handles are closed by then).
static void
s_free_peers(s_server_t *s)
{
    for (uint32_t i = 0; i < s->npeers; i++) {
        free(s->peers[i]);
    }
    free(s->peers);
    s->peers = NULL;
    s->npeers = 0;
}

// s_lease_ok says whether this server may take writes and write
// checkpoints. Not after its loop stalled past the failure timeout (a
// paused process: the scheduler may have declared it dead and replaced
// it) until the scheduler has been heard since, and not while the
// scheduler's newest map epoch is one we do not hold. Only the scheduler
// announces epochs (see s_peer_epoch). (The chain fences a replaced
// primary anyway: its backup, promoted, refuses its forwards.)
static bool
s_lease_ok(s_server_t *s)
{
    uint64_t now = uv_now(s->node.loop);
    if (now - s->tick_ms > (uint64_t)s->node.cfg->timeout_ms &&
        s->paused_at < s->tick_ms) {
        s->paused_at = now;
        ds_log(DS_WARN, "server",
               "the loop stalled for %" PRIu64 " ms (paused?): no writes until "
               "the scheduler answers",
               now - s->tick_ms);
    }
    if (s->paused_at && s->node.heard_ms <= s->paused_at) {
        return false;
    }
    // The scheduler has announced a newer map: wait for it.
    return s->node.epoch <= s->map.epoch;
}

// s_peer_epoch notes the map epoch of a message from a worker or another
// server. A newer epoch than ours is not believed: anyone can send one (a
// stray process, another job), and a server that trusted it would refuse
// every push for the rest of the job. The scheduler's own messages tell
// us of a newer map; a peer's is logged, once per higher value.
static void
s_peer_epoch(s_server_t *s, const Descent__Header *h)
{
    if (!s->serving || h->epoch <= s->map.epoch || h->epoch <= s->peer_epoch) {
        return;
    }
    s->peer_epoch = h->epoch;
    ds_log(DS_WARN, "server",
           "a %s from node %u claims map epoch %" PRIu64 "; ours is %" PRIu64
           ": ignored (only the scheduler announces a newer map)",
           ds_msg_type_name(h->type), h->sender, h->epoch, s->map.epoch);
}

// s_may_checkpoint says whether this server's checkpoint files can be
// trusted: not when it was replaced, stalled or knows of a newer map (see
// s_lease_ok), and not when the scheduler has been silent past the
// failure timeout (it may have been cut off and replaced meanwhile; the
// files are shared with the servers that took its ranges over).
static bool
s_may_checkpoint(s_server_t *s)
{
    return !s->node.replaced && s_lease_ok(s) &&
           uv_now(s->node.loop) - s->node.heard_ms <=
               (uint64_t)s->node.cfg->timeout_ms;
}

// s_ckpt_path names range id's checkpoint under the job's output directory.
static void
s_ckpt_path(const s_server_t *s, uint32_t id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/checkpoints/range-%u.ckpt", s->node.cfg->out, id);
}

// s_slow_disk is fault injection ([cluster] fault_disk_ms): a checkpoint
// file takes this much longer to write or read, as on a slow disk.
static void
s_slow_disk(const ds_config_t *cfg)
{
    if (cfg->fault_disk_ms > 0) {
        uv_sleep((unsigned)cfg->fault_disk_ms);
    }
}

static uint64_t s_ckpt_mark(const s_server_t *s);

// s_ckpt_job_t is one checkpoint of the ranges this server is the primary
// of (a backup's copy is the same state: one file), described in one loop
// turn: a consistent cut of parameters, rule state, update counts and
// sequence numbers. A periodic one and the final one STATS asks for hold
// copies of the arrays and are written on the thread pool while the loop
// goes on; the one at stop borrows the ranges' arrays and is written on
// the loop.
typedef struct s_ckpt_job {
    uv_work_t   req;     // the thread-pool request; req.data is this
    s_server_t *s;       // the server
    uint64_t    gen;     // which checkpoint; a later one is never overwritten
    bool        copies;  // the arrays are copies owned by the job
    uint32_t    n;       // ranges in c
    ds_ckpt_t  *c;       // one per range; seq is always owned
    bool        written; // not skipped for a later checkpoint
    bool        fenced;  // stopped: the loop stopped trusting our files
    int         bad;     // ranges that failed, as s_checkpoint counts them
    char        why[DS_STR_MAX + 160]; // the first failure: file and errno
    bool        final;   // the one asked for by STATS: the state is final
    uint64_t    mark;    // s_ckpt_mark of the state it holds
    double      secs;    // how long writing took, s
} s_ckpt_job_t;

static void
s_ckpt_free(s_ckpt_job_t *j)
{
    for (uint32_t i = 0; i < j->n; i++) {
        if (j->copies) {
            ds_ckpt_fini(&j->c[i]);
        } else {
            free(j->c[i].seq);
        }
    }
    free(j->c);
    free(j);
}

// s_ckpt_take describes a checkpoint of every range this server is the
// primary of, with copies of the arrays when `copies`. Returns NULL when
// out of memory.
static s_ckpt_job_t *
s_ckpt_take(s_server_t *s, bool copies)
{
    s_ckpt_job_t *j = calloc(1, sizeof *j);
    if (!j || !(j->c = calloc(s->map.nranges + 1, sizeof *j->c))) {
        free(j);
        return NULL;
    }
    j->req.data = j;
    j->s = s;
    j->gen = ++s->ckpt_gen;
    j->copies = copies;
    j->mark = s_ckpt_mark(s);
    for (uint32_t i = 0; s->held && i < s->map.nranges; i++) {
        s_range_t *r = s->held[i];
        if (!r || !r->primary) {
            continue; // a backup's copy is the same state: one file
        }
        uint64_t *seq = calloc(s->nworkers ? s->nworkers : 1, sizeof *seq);
        if (!seq) {
            s_ckpt_free(j);
            return NULL;
        }
        for (uint32_t k = 0; k < s->nworkers; k++) {
            seq[k] = s->last_seq[(size_t)k * s->map.nranges + i];
        }
        ds_ckpt_t c = {.range = i,
                       .begin = r->r.begin,
                       .end = r->r.end,
                       .epoch = s->map.epoch,
                       .updates = r->updates,
                       .t = r->st.t,
                       .rule = (int)s->opt.kind,
                       .nstate = r->st.nbuf,
                       .w = r->w,
                       .nseq = s->nworkers,
                       .seq = seq};
        for (int b = 0; b < r->st.nbuf; b++) {
            c.state[b] = r->st.buf[b];
        }
        if (s->dtada) {
            // dtadagrad's state is gbar, z and z'; the read snapshots are
            // not kept (a resumed job's workers read afresh).
            c.rule = S_CKPT_DTADAGRAD;
            c.nstate = 3;
            c.state[0] = r->dt.gbar;
            c.state[1] = r->dt.z;
            c.state[2] = r->dt.zp;
        }
        if (!copies) {
            j->c[j->n++] = c;
            continue;
        }
        int rc = ds_ckpt_copy(&j->c[j->n], &c);
        free(seq);
        if (rc != 0) {
            s_ckpt_free(j);
            return NULL;
        }
        j->n++;
    }
    return j;
}

// s_ckpt_write writes j's ranges, each file atomically, unless a later
// checkpoint was written first, and stops early once the loop no longer
// trusts this server's files (s->ckpt_ok). It runs on the loop or on the
// thread pool, and touches only j, the server's settings, ckpt_lock,
// ckpt_written and ckpt_ok.
static void
s_ckpt_write(s_ckpt_job_t *j)
{
    s_server_t        *s = j->s;
    const ds_config_t *cfg = s->node.cfg;
    uint64_t           t0 = uv_hrtime();
    char               dir[DS_STR_MAX + 32];
    snprintf(dir, sizeof dir, "%s/checkpoints", cfg->out);
    uv_mutex_lock(&s->ckpt_lock);
    j->written = j->gen > s->ckpt_written;
    if (j->written) {
        s->ckpt_written = j->gen;
        int rc = ds_mkdirs(dir);
        j->bad = rc == 0 ? 0 : 1;
        if (rc != 0) {
            snprintf(j->why, sizeof j->why, "checkpoint: cannot create %s: %s",
                     dir, strerror(-rc));
        }
    }
    for (uint32_t i = 0; j->written && !j->bad && i < j->n; i++) {
        if (!atomic_load(&s->ckpt_ok)) {
            j->fenced = true;
            break;
        }
        char path[DS_STR_MAX + 64], err[DS_STR_MAX + 128];
        s_ckpt_path(s, j->c[i].range, path, sizeof path);
        s_slow_disk(cfg);
        if (ds_ckpt_write(path, &j->c[i], err, sizeof err) != 0) {
            ds_log(DS_ERROR, "server", "checkpoint: %s", err);
            if (!j->bad++) {
                snprintf(j->why, sizeof j->why, "checkpoint: %s", err);
            }
        }
    }
    uv_mutex_unlock(&s->ckpt_lock);
    j->secs = (double)(uv_hrtime() - t0) / 1e9;
}

// s_checkpoint writes every range this server is the primary of: the
// parameters, the rule's state, the update count and each worker's last
// applied sequence number, each file atomically. It runs on the loop, at
// stop (no heartbeats are due any more), after a periodic checkpoint
// still being written. Returns the number of ranges that failed, with the
// first failure (the file and the errno's text) in why.
static int
s_checkpoint(s_server_t *s, char *why, size_t whylen)
{
    s_ckpt_job_t *j = s_ckpt_take(s, false);
    if (!j) {
        snprintf(why, whylen, "checkpoint: out of memory");
        return 1;
    }
    s_ckpt_write(j);
    int bad = j->bad;
    snprintf(why, whylen, "%s", j->why);
    s_ckpt_free(j);
    return bad;
}

// s_ckpt_mark identifies the state a checkpoint holds: the map epoch and
// the updates of the ranges this server is the primary of (never 0).
static uint64_t
s_ckpt_mark(const s_server_t *s)
{
    uint64_t u = 0;
    for (uint32_t i = 0; s->held && i < s->map.nranges; i++) {
        if (s->held[i] && s->held[i]->primary) {
            u += s->held[i]->updates;
        }
    }
    return (s->map.epoch << 40) + u + 1;
}

// s_restore loads range r's checkpoint for a resumed job. Returns 0 or a
// negative errno (logged).
static int
s_restore(s_server_t *s, s_range_t *r)
{
    char      path[DS_STR_MAX + 64], err[DS_STR_MAX + 128];
    ds_ckpt_t c;
    s_ckpt_path(s, r->r.id, path, sizeof path);
    s_slow_disk(s->node.cfg);
    int rc = ds_ckpt_read(path, &c, err, sizeof err);
    int rule = s->dtada ? S_CKPT_DTADAGRAD : (int)s->opt.kind;
    int nstate = s->dtada ? 3 : r->st.nbuf;
    if (rc == 0 &&
        (c.begin != r->r.begin || c.end != r->r.end || c.rule != rule ||
         c.nstate != nstate || c.nseq != s->nworkers)) {
        ds_err(err, sizeof err, 0,
               "%s holds range [%llu, %llu) of rule %d for %u workers; the "
               "job has [%llu, %llu), rule %d, %u workers",
               path, (unsigned long long)c.begin, (unsigned long long)c.end,
               c.rule, c.nseq, (unsigned long long)r->r.begin,
               (unsigned long long)r->r.end, rule, s->nworkers);
        rc = -EINVAL;
    }
    if (rc != 0) {
        ds_log(DS_ERROR, "server", "cannot resume: %s", err);
        ds_ckpt_fini(&c);
        return rc;
    }
    size_t n = (size_t)(c.end - c.begin);
    memcpy(r->w, c.w, n * sizeof(float));
    float *to[DS_CKPT_MAX_STATE] = {r->dt.gbar, r->dt.z, r->dt.zp};
    for (int b = 0; b < c.nstate; b++) {
        memcpy(s->dtada ? to[b] : r->st.buf[b], c.state[b], n * sizeof(float));
    }
    r->st.t = c.t;
    r->updates = c.updates;
    // The sequence table stays empty: a resumed job's workers are new
    // processes that number their requests from 1 again. (The saved table
    // is for a server that restarts under workers that live on.)
    ds_ckpt_fini(&c);
    return 0;
}

// s_range_new allocates range d with the job's initial values (zeros when
// init is NULL: a backup waiting for its seed). Returns NULL when out of
// memory.
static s_range_t *
s_range_new(s_server_t *s, const ds_range_t *d, const float *init)
{
    s_range_t *r = calloc(1, sizeof *r);
    uint64_t   n = d->end - d->begin;
    if (!r || !(r->w = calloc(n, sizeof(float))) ||
        ds_optim_state_init(&r->st, &s->opt, n) != 0 ||
        ds_ssp_init(&r->ssp, s->nworkers, s->staleness) != 0 ||
        (s->dtada && ds_dtada_init(&r->dt, n, s->nworkers * s->slots,
                                   s->node.cfg->dt_z0) != 0)) {
        s_range_free(r);
        return NULL;
    }
    r->r = *d;
    r->primary = d->primary == s->node.id;
    r->seeded = init != NULL || ds_job_init(s->node.cfg) == DS_INIT_ZEROS;
    r->seed_acked = true; // primary and backup start from the same values
    r->fwd_tail = &r->fwd;
    r->pend_tail = &r->pend;
    ds_rng_seed(&r->noise, s->node.cfg->seed, 0x6e6f697365ull + d->id);
    if (init) {
        memcpy(r->w, init + d->begin, n * sizeof(float));
    }
    return r;
}

// s_build_t is the part of taking a shard map that runs on the thread
// pool: every range we hold, allocated, initialized and (on resume) read
// back from its checkpoint.
typedef struct s_build {
    uv_work_t    req;     // the thread-pool request; req.data is this
    s_server_t  *s;       // the server
    uint64_t     dim;     // the map's input dimension
    uint64_t     classes; // the map's classes
    uint64_t     total;   // the map's total_updates
    s_range_t  **held;    // by range id, as s->held; owned until installed
    uint64_t     nkeys;   // keys held
    uint32_t     nheld;   // ranges held
    uint64_t     done;    // resume: updates the ranges had
    int          rc;      // 0 or a negative errno (logged)
} s_build_t;

static void s_build_work(uv_work_t *req);
static void s_on_built(uv_work_t *req, int status);

// s_take_map installs the first shard map from the scheduler and starts
// building every range we are the primary or the backup of (a server back
// after a failover waits for its backups' seeds) off the loop: s_on_built
// finishes. Returns 0 or a negative errno (logged).
static int
s_take_map(s_server_t *s, const Descent__ShardMap *pb)
{
    char           err[256];
    ds_shard_map_t m;
    int            rc = ds_shard_map_from_pb(&m, pb, err, sizeof err);
    if (rc != 0) {
        ds_log(DS_ERROR, "server", "bad shard map: %s", err);
        return rc;
    }
    s_free_ranges(s);
    s->map = m;
    // Only the map's workers may push or pull; each gets a row of the
    // sequence table, allocated once here and never grown by a peer.
    uint32_t workers = 0;
    for (size_t i = 0; i < pb->n_nodes; i++) {
        if (pb->nodes[i]->id > MAX_NODE_ID) {
            ds_log(DS_ERROR, "server", "bad shard map: node id %u",
                   pb->nodes[i]->id);
            return -EPROTO;
        }
        if (pb->nodes[i]->id > s->max_id) {
            s->max_id = pb->nodes[i]->id;
        }
    }
    s->row = malloc(((size_t)s->max_id + 1) * sizeof *s->row);
    if (!s->row) {
        return -ENOMEM;
    }
    for (uint32_t i = 0; i <= s->max_id; i++) {
        s->row[i] = -1;
    }
    s->worker_id = calloc(pb->n_nodes + 1, sizeof *s->worker_id);
    if (!s->worker_id) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < pb->n_nodes; i++) {
        if (pb->nodes[i]->role == DESCENT__ROLE__WORKER) {
            s->worker_id[workers] = pb->nodes[i]->id;
            s->row[pb->nodes[i]->id] = (int32_t)workers++;
        }
    }
    // Clocks are kept per range: a read of a range for clock c must see
    // every update to that range stamped c - s - 1 or earlier, and a
    // worker's updates to different ranges arrive separately.
    const char *cons = s->node.cfg->consistency;
    s->staleness = strcmp(cons, "bsp") == 0   ? 0
                   : strcmp(cons, "ssp") == 0 ? s->node.cfg->staleness
                                              : DS_SSP_ASP;
    s->nworkers = workers;
    s->dtada = strcmp(s->node.cfg->algorithm, "dtadagrad") == 0;
    s->easgd = strcmp(s->node.cfg->algorithm, "easgd") == 0;
    // A delayed push refers to a read up to `delay` reads old: keep that
    // many snapshots per worker.
    s->slots = (uint32_t)s->node.cfg->delay + 1;
    s->wait_tail = &s->waiting;
    s->held = calloc(m.nranges, sizeof *s->held);
    s->last_seq = calloc((size_t)workers * m.nranges + 1, sizeof *s->last_seq);
    if (!s->held || !s->last_seq) {
        return -ENOMEM;
    }
    for (uint32_t i = 0; m.epoch > 1 && i < m.nranges; i++) {
        if (m.ranges[i].primary == s->node.id) {
            ds_log(DS_ERROR, "server",
                   "map epoch %" PRIu64 " makes a restarted server the "
                   "primary of range %u",
                   m.epoch, i);
            return -EPROTO;
        }
    }
    // The ranges are built on the thread pool (the initial model of a
    // large MLP, and on resume the checkpoint files, take seconds); the
    // loop keeps heartbeating, and s_on_built says READY.
    s_build_t *b = calloc(1, sizeof *b);
    if (!b || !(b->held = calloc(m.nranges, sizeof *b->held))) {
        free(b);
        return -ENOMEM;
    }
    b->s = s;
    b->dim = pb->dim;
    b->classes = pb->classes;
    b->total = pb->total_updates;
    b->req.data = b;
    rc = uv_queue_work(s->node.loop, &b->req, s_build_work, s_on_built);
    if (rc != 0) {
        free(b->held);
        free(b);
        return rc;
    }
    s->build = b;
    return 0;
}

// s_build_work builds the ranges of s_take_map's map on the thread pool:
// the initial model, each range we hold, and on resume each range's
// checkpoint. It reads the server's settings and map, which the loop does
// not change while s->build is set, and writes only into b.
static void
s_build_work(uv_work_t *req)
{
    s_build_t            *b = req->data;
    s_server_t           *s = b->s;
    const ds_config_t    *cfg = s->node.cfg;
    const ds_shard_map_t *m = &s->map;
    // The initial model: every server builds the same seeded vector and
    // keeps its ranges, so the values do not depend on placement.
    float *init = NULL;
    if (ds_job_init(cfg) != DS_INIT_ZEROS) {
        ds_model_t model;
        char       merr[256] = "the model's size differs from the map's";
        if (ds_job_model(&model, cfg, b->dim, (int)b->classes, merr,
                         sizeof merr) != 0 ||
            model.num_params != m->num_keys) {
            ds_log(DS_ERROR, "server", "cannot build the initial model: %s",
                   merr);
            b->rc = -EINVAL;
            return;
        }
        init = malloc(model.num_params * sizeof *init);
        if (init) {
            ds_model_init_params(&model, init, ds_job_init(cfg),
                                 cfg->init_scale, cfg->seed);
        }
        ds_model_fini(&model);
        if (!init) {
            b->rc = -ENOMEM;
            return;
        }
    }
    for (uint32_t i = 0; i < m->nranges; i++) {
        if (m->ranges[i].primary != s->node.id &&
            m->ranges[i].backup != s->node.id) {
            continue;
        }
        b->held[i] = s_range_new(s, &m->ranges[i], init);
        if (!b->held[i]) {
            free(init);
            b->rc = -ENOMEM;
            return;
        }
        if (m->epoch > 1) {
            // A server back after a failover: its backups wait for seeds.
            b->held[i]->seeded = false;
        }
        b->nkeys += m->ranges[i].end - m->ranges[i].begin;
        b->nheld++;
    }
    free(init);
    // A resumed job continues every range from its checkpoint: the model,
    // the rule's state, the update count and the sequence table.
    for (uint32_t i = 0; cfg->resume && i < m->nranges; i++) {
        if (b->held[i]) {
            b->rc = s_restore(s, b->held[i]);
            if (b->rc != 0) {
                return;
            }
            b->done = b->held[i]->updates;
        }
    }
}

// s_built installs the ranges b built: the server holds them from here.
// Returns 0 or a negative errno (logged).
static int
s_built(s_server_t *s, s_build_t *b)
{
    const ds_config_t *cfg = s->node.cfg;
    for (uint32_t i = 0; i < s->map.nranges; i++) {
        s->held[i] = b->held[i];
        b->held[i] = NULL;
    }
    // The schedule counts updates per range; total_updates is the number
    // of pushes every range will see in the rest of the job.
    char serr[256];
    if (ds_schedule_from_config(&s->lr, cfg, b->done + b->total, cfg->epochs,
                                serr, sizeof serr) != 0) {
        ds_log(DS_ERROR, "server", "%s", serr);
        return -EINVAL;
    }
    if (cfg->resume) {
        ds_log(DS_INFO, "server", "resumed %u ranges at %" PRIu64 " updates",
               b->nheld, b->done);
    }
    ds_log(DS_INFO, "server",
           "node %u holds %" PRIu64 " of %" PRIu64 " keys in %u of %u "
           "ranges (map epoch %" PRIu64 ")",
           s->node.id, b->nkeys, s->map.num_keys, b->nheld, s->map.nranges,
           s->map.epoch);
    return 0;
}

// s_nheld counts the ranges this server holds (only those it is the
// primary of, when primaries).
static uint32_t
s_nheld(const s_server_t *s, bool primaries)
{
    uint32_t n = 0;
    for (uint32_t i = 0; s->held && i < s->map.nranges; i++) {
        n += s->held[i] != NULL && (!primaries || s->held[i]->primary);
    }
    return n;
}

// s_digest is a CRC-32 of range r's parameters, update-rule state and
// update count: equal on a primary and its backup once both have applied
// the same pushes.
static uint32_t
s_digest(const s_server_t *s, const s_range_t *r)
{
    size_t n = (size_t)(r->r.end - r->r.begin) * sizeof(float);
    uLong  c = crc32(0L, Z_NULL, 0);
    c = crc32_z(c, (const Bytef *)r->w, n);
    if (s->dtada) {
        c = crc32_z(c, (const Bytef *)r->dt.gbar, n);
        c = crc32_z(c, (const Bytef *)r->dt.z, n);
        c = crc32_z(c, (const Bytef *)r->dt.zp, n);
    }
    for (int b = 0; !s->dtada && b < r->st.nbuf; b++) {
        c = crc32_z(c, (const Bytef *)r->st.buf[b], n);
    }
    c = crc32_z(c, (const Bytef *)&r->updates, sizeof r->updates);
    return (uint32_t)c;
}

// s_now_ms is the wall clock in milliseconds, for logs that tests read.
static long long
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// s_seen_before records (row, range, seq) and says whether that push was
// applied already: a retried push is acknowledged but applied once.
static bool
s_seen_before(s_server_t *s, int32_t row, uint32_t range, uint64_t seq)
{
    uint64_t *last = &s->last_seq[(size_t)row * s->map.nranges + range];
    if (seq <= *last) {
        return true;
    }
    *last = seq;
    return false;
}

static void
s_refuse(s_server_t *s, const ds_msg_t *msg, Descent__Type type,
         Descent__Status st, const char *why)
{
    s->refused++;
    // A map change under way makes these; the rest are a peer's mistakes.
    int lvl =
        st == DESCENT__STATUS__STALE_EPOCH || st == DESCENT__STATUS__NOT_READY
            ? DS_INFO
            : DS_WARN;
    char peer[DS_RATELOG_PEER_MAX];
    ds_msg_peer(msg, peer, sizeof peer);
    ds_log_peer(&s->node.peer_log, uv_now(s->node.loop), lvl, "server", peer,
                ds_msg_status_name(st), "refused %s from %s: %s: %s",
                msg->hdr ? ds_msg_type_name(msg->hdr->type) : "message", peer,
                ds_msg_status_name(st), why);
    ds_msg_reply(s->data.sock, msg, type, st, why);
}

// s_reply_header fills out as an OK reply of `type` to request seq about
// range `shard`, keys [begin, begin + count).
static void
s_reply_header(const s_server_t *s, Descent__Header *out, Descent__Type type,
               uint64_t seq, uint32_t shard, uint64_t begin, uint64_t count)
{
    ds_msg_header_init(out, type);
    out->seq = seq;
    out->shard = shard;
    out->key_begin = begin;
    out->key_count = count;
    out->epoch = s->map.epoch;
    out->status = DESCENT__STATUS__OK;
}

// s_fault says whether fault injection drops this reply ([cluster]
// fault_drop): the worker's retry then finds the push already applied.
static bool
s_fault(s_server_t *s)
{
    double p = s->node.cfg->fault_drop;
    if (p > 0 && ds_rng_uniform(&s->frng) < p) {
        s->faults++;
        return true;
    }
    return false;
}

// s_slot is the dtadagrad snapshot of worker row's read number `read`.
static unsigned
s_slot(const s_server_t *s, int32_t row, uint64_t read)
{
    return (unsigned)row * s->slots + (unsigned)(read % s->slots);
}

// ---- chain replication: the primary's side -------------------------------

static void s_on_peer(ds_zsock_t *z, void *arg);

// s_peer returns the link to server `id`, or NULL when the map does not
// name it.
static s_peer_t *
s_peer(s_server_t *s, uint32_t id)
{
    for (uint32_t i = 0; i < s->npeers; i++) {
        if (s->peers[i]->id == id) {
            return s->peers[i];
        }
    }
    return NULL;
}

// s_peers_update links to every other server of the map, and follows a
// server that comes back at a new address. Returns 0 or a negative errno.
static int
s_peers_update(s_server_t *s, const Descent__ShardMap *pb)
{
    for (size_t i = 0; i < pb->n_nodes; i++) {
        const Descent__Node *nd = pb->nodes[i];
        if (nd->role != DESCENT__ROLE__SERVER || nd->id == s->node.id) {
            continue;
        }
        s_peer_t *p = s_peer(s, nd->id);
        if (p && strcmp(p->address, nd->address) == 0) {
            continue;
        }
        if (p) {
            zmq_disconnect(p->z.sock, p->address);
        } else {
            s_peer_t **t = realloc(s->peers, (s->npeers + 1) * sizeof *t);
            p = calloc(1, sizeof *p);
            if (!t || !p) {
                free(p);
                if (t) {
                    s->peers = t;
                }
                return -ENOMEM;
            }
            s->peers = t;
            p->id = nd->id;
            p->owner = s;
            void *sock =
                ds_zsock_open(s->node.ctx, ZMQ_DEALER, 0,
                              (long long)s->node.cfg->max_message_mb << 20);
            if (!sock ||
                ds_zsock_init(&p->z, s->node.loop, sock, s_on_peer, p) != 0) {
                if (sock) {
                    zmq_close(sock);
                }
                free(p);
                return -ENOMEM;
            }
            p->open = true;
            s->peers[s->npeers++] = p;
        }
        snprintf(p->address, sizeof p->address, "%s", nd->address);
        if (zmq_connect(p->z.sock, p->address) != 0) {
            ds_log(DS_ERROR, "server", "cannot connect to server %u at %s",
                   p->id, p->address);
            return -EINVAL;
        }
    }
    return 0;
}

// s_fwd_send sends forward f of range r to the range's backup.
static void
s_fwd_send(s_server_t *s, s_range_t *r, s_fwd_t *f)
{
    s_peer_t *p = s_peer(s, r->r.backup);
    if (!p) {
        return;
    }
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__REPLICATE);
    h.job = (char *)s->node.cfg->job;
    h.sender = s->node.id;
    h.seq = f->seq;
    h.epoch = s->map.epoch;
    h.shard = r->r.id;
    h.repl = f->repl;
    h.origin = f->origin;
    h.origin_seq = f->oseq;
    h.key_begin = f->begin;
    h.key_count = f->count;
    h.clock = f->clock;
    h.based_on = f->based_on;
    h.based_read = f->based_read;
    h.read_id = f->based_read;
    h.lr = f->lr;
    h.sparse = f->sparse;
    zmq_msg_t  k, v;
    zmq_msg_t *kp = NULL, *vp = NULL;
    if (f->sparse) {
        zmq_msg_init(&k);
        zmq_msg_copy(&k, &f->keys);
        kp = &k;
    }
    if (f->repl == DESCENT__REPL__REPL_PUSH) {
        h.value_count = f->count;
        h.dtype = DESCENT__DTYPE__F32;
        zmq_msg_init(&v);
        zmq_msg_copy(&v, &f->vals);
        vp = &v;
    }
    if (ds_msg_send(p->z.sock, NULL, &h, kp, vp) == 0) {
        s->forwarded++;
    }
}

// s_forward appends an operation on primary range r to its chain and sends
// it to the backup: the push in h (values g of n floats, copied: the
// request's own frame is written into by its reply; sparse keys in keys)
// applied with rate lr, or a read, clock or finish. Returns the chain
// number, or 0 when there is no backup.
// Fails only when out of memory (-1 cast: the caller stops the server).
static uint64_t
s_forward(s_server_t *s, s_range_t *r, Descent__Repl repl,
          const Descent__Header *h, const zmq_msg_t *keys, const float *g,
          size_t n, double lr)
{
    if (!r->primary || r->r.backup == 0) {
        return 0;
    }
    s_fwd_t *f = calloc(1, sizeof *f);
    if (!f) {
        return UINT64_MAX;
    }
    f->repl = repl;
    f->origin = h->sender;
    f->oseq = h->seq;
    f->begin = h->key_begin;
    f->count = n;
    f->clock = h->clock;
    f->based_on = h->based_on;
    f->based_read =
        repl == DESCENT__REPL__REPL_READ ? h->read_id : h->based_read;
    f->lr = lr;
    if (keys) {
        f->sparse = true;
        zmq_msg_init(&f->keys);
        zmq_msg_copy(&f->keys, (zmq_msg_t *)keys);
    }
    if (repl == DESCENT__REPL__REPL_PUSH) {
        if (zmq_msg_init_size(&f->vals, n * sizeof(float)) == 0) {
            memcpy(zmq_msg_data(&f->vals), g, n * sizeof(float));
        } else {
            f->repl = DESCENT__REPL__REPL_UNSPECIFIED;
            s_fwd_free(f);
            return UINT64_MAX;
        }
    }
    f->seq = ++r->chain;
    if (!r->fwd) {
        r->progress_ms = uv_now(s->node.loop);
    }
    *r->fwd_tail = f;
    r->fwd_tail = &f->next;
    s_fwd_send(s, r, f);
    return f->seq;
}

// s_seed sends the whole state of primary range r to its (new) backup, as
// of chain number r->chain: the forwards before it are covered by the
// seed. Each array travels in its own SEED message; the first also
// carries the update counts and the per-worker sequence and clock table.
static void
s_seed(s_server_t *s, s_range_t *r)
{
    while (r->fwd) {
        s_fwd_t *f = r->fwd;
        r->fwd = f->next;
        s_fwd_free(f);
    }
    r->fwd_tail = &r->fwd;
    r->seed_at = r->chain;
    r->seed_acked = false;
    // Nothing counts as on the backup until it has the seed: pushes and
    // retried duplicates wait for it, and the timer seeds again if it is
    // lost.
    if (r->seed_at > 0 && r->acked >= r->seed_at) {
        r->acked = r->seed_at - 1;
    }
    r->progress_ms = uv_now(s->node.loop);
    s_peer_t *p = s_peer(s, r->r.backup);
    if (!p) {
        return;
    }
    size_t       n = (size_t)(r->r.end - r->r.begin);
    const float *arr[3 + 1 + DS_OPTIM_MAX_STATE];
    uint32_t     narr = 0;
    arr[narr++] = r->w;
    if (s->dtada) {
        arr[narr++] = r->dt.gbar;
        arr[narr++] = r->dt.z;
        arr[narr++] = r->dt.zp;
    } else {
        for (int b = 0; b < r->st.nbuf; b++) {
            arr[narr++] = r->st.buf[b];
        }
    }
    uint32_t  snaps = s->dtada ? s->nworkers * s->slots : 0;
    uint32_t  parts = narr + snaps;
    uint64_t *table = calloc((size_t)s->nworkers * 4 + 1, sizeof *table);
    if (!table) {
        return; // the retry timer seeds again
    }
    for (uint32_t k = 0; k < s->nworkers; k++) {
        table[4 * k] = s->worker_id[k];
        table[4 * k + 1] = s->last_seq[(size_t)k * s->map.nranges + r->r.id];
        table[4 * k + 2] = r->ssp.clock ? r->ssp.clock[k] : 0;
        table[4 * k + 3] = r->ssp.finished ? r->ssp.finished[k] : 0;
    }
    for (uint32_t part = 0; part < parts; part++) {
        Descent__Header h;
        ds_msg_header_init(&h, DESCENT__TYPE__SEED);
        h.job = (char *)s->node.cfg->job;
        h.sender = s->node.id;
        h.seq = r->seed_at;
        h.epoch = s->map.epoch;
        h.shard = r->r.id;
        h.key_begin = r->r.begin;
        h.key_count = n;
        h.value_count = n;
        h.dtype = DESCENT__DTYPE__F32;
        h.part = part;
        h.parts = parts;
        if (part == 0) {
            h.clock = r->updates;
            h.rule_t = r->st.t;
            h.applied = r->applied;
            h.n_table = (size_t)s->nworkers * 4;
            h.table = table;
        }
        const float *src =
            part < narr ? arr[part] : r->dt.gold + (size_t)(part - narr) * n;
        if (ds_msg_send_f32(p->z.sock, NULL, &h, src, n) != 0) {
            break; // the retry timer seeds again
        }
    }
    free(table);
    s->seeds++;
    ds_log(DS_INFO, "server",
           "range %u: seeding backup %u at chain %" PRIu64 " (%u arrays)",
           r->r.id, r->r.backup, r->seed_at, parts);
}

static void s_answer(s_server_t *s, s_range_t *r, ds_msg_t *msg,
                     Descent__Header *out);

// s_chain_acked drops the forwards the backup has and answers the requests
// that waited for them.
static void
s_chain_acked(s_server_t *s, s_range_t *r)
{
    while (r->fwd && r->fwd->seq <= r->acked) {
        s_fwd_t *f = r->fwd;
        r->fwd = f->next;
        s_fwd_free(f);
    }
    if (!r->fwd) {
        r->fwd_tail = &r->fwd;
    }
    while (r->pend && r->pend->chain <= r->acked) {
        s_pend_t *p = r->pend;
        r->pend = p->next;
        if (!r->pend) {
            r->pend_tail = &r->pend;
        }
        s_answer(s, r, &p->msg, &p->out);
        ds_msg_fini(&p->msg);
        free(p);
    }
}

// s_wait_chain holds the reply `out` to msg until the backup has chain
// number `chain`; msg's parts move into the queue.
static int
s_wait_chain(s_range_t *r, ds_msg_t *msg, const Descent__Header *out,
             uint64_t chain)
{
    s_pend_t *p = calloc(1, sizeof *p);
    if (!p) {
        return -ENOMEM;
    }
    p->chain = chain;
    ds_msg_move(&p->msg, msg);
    p->out = *out;
    *r->pend_tail = p;
    r->pend_tail = &p->next;
    return 0;
}

// s_on_peer takes a backup's acknowledgement (or refusal) of forwards.
static void
s_on_peer(ds_zsock_t *z, void *arg)
{
    s_peer_t       *p = arg;
    s_server_t     *s = p->owner;
    ds_msg_t        msg;
    char            err[256] = "";
    Descent__Status st;
    int rc = ds_msg_take(z->sock, false, &s->node.limits, &msg, &st, err,
                         sizeof err);
    const Descent__Header *h = msg.hdr;
    if (rc != 0 || h->type != DESCENT__TYPE__REPLICATE_ACK ||
        h->shard >= s->map.nranges || !s->held) {
        if (rc != -EAGAIN) {
            char peer[32];
            snprintf(peer, sizeof peer, "server %u", p->id);
            ds_log_peer(&s->node.peer_log, uv_now(s->node.loop), DS_WARN,
                        "server", peer, rc ? ds_msg_status_name(st) : "reply",
                        "bad reply from %s: %s", peer,
                        rc ? err : "not a REPLICATE_ACK for a known range");
        }
        ds_msg_fini(&msg);
        return;
    }
    s_range_t *r = s->held[h->shard];
    if (h->status != DESCENT__STATUS__OK) {
        ds_log(DS_DEBUG, "server", "server %u refused range %u's chain: %s",
               p->id, h->shard, h->error);
    } else if (r && r->primary && r->r.backup == p->id &&
               h->epoch == s->map.epoch && h->seq <= r->chain &&
               h->seq >= r->seed_at) {
        r->seed_acked = true;
        r->progress_ms = uv_now(s->node.loop);
        if (h->seq > r->acked) {
            r->acked = h->seq;
            s_chain_acked(s, r);
        }
    }
    ds_msg_fini(&msg);
}

// s_on_chain_timer sends again what a backup has not acknowledged within
// retry_ms: the seed when it is not complete, else every forward after the
// last acknowledged one (the backup applies each once, in order).
static void
s_on_chain_timer(uv_timer_t *t)
{
    s_server_t *s = t->data;
    uint64_t    now = uv_now(s->node.loop);
    s_lease_ok(s); // notices a stall
    atomic_store(&s->ckpt_ok, s->serving && s_may_checkpoint(s));
    if (now - s->tick_ms > s->stall_ms) {
        s->stall_ms = now - s->tick_ms;
    }
    s->tick_ms = now;
    for (uint32_t i = 0; s->serving && s->held && i < s->map.nranges; i++) {
        s_range_t *r = s->held[i];
        if (!r || !r->primary || r->r.backup == 0 ||
            (r->acked >= r->chain && r->seed_acked) ||
            now - r->progress_ms < (uint64_t)s->node.cfg->retry_ms) {
            continue;
        }
        if (!r->seed_acked) {
            s_seed(s, r);
            continue;
        }
        r->progress_ms = now;
        for (s_fwd_t *f = r->fwd; f; f = f->next) {
            s_fwd_send(s, r, f);
        }
    }
}

// ---- chain replication: the backup's side --------------------------------

// s_valid_keys checks a sparse keys frame of n keys: sorted, unique, in r.
// Returns the keys (aligned copy; caller frees) or NULL with why set.
static uint64_t *
s_valid_keys(const s_range_t *r, const zmq_msg_t *frame, size_t n, char *why,
             size_t len)
{
    uint64_t *keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys) {
        snprintf(why, len, "out of memory");
        return NULL;
    }
    memcpy(keys, zmq_msg_data((zmq_msg_t *)frame), n * sizeof *keys);
    for (size_t i = 0; i < n; i++) {
        if (keys[i] < r->r.begin || keys[i] >= r->r.end ||
            (i > 0 && keys[i] <= keys[i - 1])) {
            snprintf(why, len,
                     "key %" PRIu64 " (at %zu) is outside range %u or out of "
                     "order",
                     keys[i], i, r->r.id);
            free(keys);
            return NULL;
        }
    }
    return keys;
}

// ---- applying updates ------------------------------------------------------

// s_reply_values answers a read by worker `sender` with the current values
// of its keys; dtadagrad remembers what that read saw (and so does the
// backup: the read is forwarded down the chain).
static void
s_reply_values(s_server_t *s, const zmq_msg_t *route, ds_msg_t *req,
               const Descent__Header *out, uint32_t sender, uint64_t read)
{
    s_range_t   *r = s->held[out->shard];
    const float *w = r->w + (out->key_begin - r->r.begin);
    size_t       n = (size_t)out->key_count;
    if (s->dtada) {
        ds_dtada_read(&r->dt, s_slot(s, s->row[sender], read),
                      out->key_begin - r->r.begin, n);
        Descent__Header rd;
        ds_msg_header_init(&rd, DESCENT__TYPE__PULL);
        rd.sender = sender;
        rd.key_begin = out->key_begin;
        rd.read_id = read;
        if (s_forward(s, r, DESCENT__REPL__REPL_READ, &rd, NULL, NULL, n, 0) ==
            UINT64_MAX) {
            ds_node_stop(&s->node, 1, "out of memory forwarding a read");
            return;
        }
    }
    if (s_fault(s)) {
        return;
    }
    int rc = req ? ds_msg_send_f32_reply(s->data.sock, req, out, w, n)
                 : ds_msg_send_f32(s->data.sock, route, out, w, n);
    if (rc != 0) {
        ds_log(DS_WARN, "server", "reply dropped: %s", zmq_strerror(-rc));
    }
}

// s_hold keeps a read until the consistency model lets it proceed.
static void
s_hold(s_server_t *s, const ds_msg_t *msg, const Descent__Header *out)
{
    s_wait_t *wt = calloc(1, sizeof *wt);
    if (!wt) {
        s_refuse(s, msg, out->type, DESCENT__STATUS__TOO_LARGE,
                 "out of memory holding a read");
        return;
    }
    zmq_msg_init(&wt->route);
    zmq_msg_copy(&wt->route, (zmq_msg_t *)&msg->route);
    wt->type = out->type;
    wt->sender = msg->hdr->sender;
    wt->shard = out->shard;
    wt->seq = out->seq;
    wt->begin = out->key_begin;
    wt->count = out->key_count;
    wt->clock = msg->hdr->clock;
    wt->read = msg->hdr->read_id;
    wt->lr = out->lr;
    *s->wait_tail = wt;
    s->wait_tail = &wt->next;
    s->holds++;
}

// s_release answers every held read the consistency model now allows.
static void
s_release(s_server_t *s)
{
    s_wait_t **p = &s->waiting;
    while (*p) {
        s_wait_t *wt = *p;
        if (!ds_ssp_can_read(&s->held[wt->shard]->ssp, wt->clock)) {
            p = &wt->next;
            continue;
        }
        Descent__Header out;
        s_reply_header(s, &out, wt->type, wt->seq, wt->shard, wt->begin,
                       wt->count);
        out.lr = wt->lr;
        out.clock = s->held[wt->shard]->updates;
        out.value_count = wt->count;
        out.dtype = DESCENT__DTYPE__F32;
        s_reply_values(s, &wt->route, NULL, &out, wt->sender, wt->read);
        *p = wt->next;
        zmq_msg_close(&wt->route);
        free(wt);
    }
    s->wait_tail = p;
    while (*s->wait_tail) {
        s->wait_tail = &(*s->wait_tail)->next;
    }
}

// s_commit records a worker's clock (the steps it has completed) on a
// range, or on every range this server holds when r is NULL.
static void
s_commit(s_server_t *s, s_range_t *r, uint32_t sender, uint64_t clock)
{
    for (uint32_t i = 0; i < s->map.nranges; i++) {
        s_range_t *t = r ? r : s->held[i];
        if (t) {
            ds_ssp_commit(&t->ssp, (unsigned)s->row[sender], clock);
            if (clock > t->max_clock) {
                t->max_clock = clock;
            }
        }
        if (r) {
            break;
        }
    }
}

static void
s_count(uint64_t *hist, uint64_t v)
{
    hist[v < STALE_BUCKETS - 1 ? v : STALE_BUCKETS - 1]++;
}

// s_applied accounts for a push by worker `sender` just applied to r: on
// the primary its staleness in updates (since the values its gradient was
// computed from) and in clocks (how far the fastest worker is ahead of
// it); everywhere its clock commit and the range's counts.
static void
s_applied(s_server_t *s, s_range_t *r, uint32_t sender, uint64_t clock,
          uint64_t based_on)
{
    if (r->primary) {
        s_count(s->stale_upd,
                based_on <= r->updates ? r->updates - based_on : 0);
    }
    s_commit(s, r, sender, clock);
    if (r->primary) {
        s_count(s->stale_clk, r->max_clock - clock);
        s->pushes++;
        if (s->map.epoch < s->node.epoch) {
            s->stale_accepted++;
        }
    }
    r->updates++;
    r->applied++;
}

// s_grow makes *buf hold at least n floats. Returns 0 or -ENOMEM.
static int
s_grow(float **buf, size_t *cap, size_t n)
{
    if (*cap >= n) {
        return 0;
    }
    float *t = realloc(*buf, n * sizeof *t);
    if (!t) {
        return -ENOMEM;
    }
    *buf = t;
    *cap = n;
    return 0;
}

// s_apply_dense runs the job's rule on keys [off, off + n) of r with
// gradient g (for dtadagrad, of worker row's read `read`). The primary and
// its backup call it with the same arguments in the same order, which is
// what keeps them byte-identical.
static void
s_apply_dense(s_server_t *s, s_range_t *r, int32_t row, uint64_t read,
              size_t off, const float *g, size_t n, double lr)
{
    float *w = r->w + off;
    if (s->dtada) {
        ds_dtada_update(&r->dt, s_slot(s, row, read), off, w, g, n, lr,
                        s->node.cfg->dt_beta);
    } else if (s->easgd) {
        // EASGD: the push is the elastic difference d; the center moves
        // toward the worker, center += d.
        ds_easgd_center_add(w, g, n);
    } else {
        ds_optim_step(&s->opt, &r->st, off, w, g, n, lr);
    }
}

// s_apply_sparse runs the rule on the gathered parameters and state of the
// n sorted keys, then scatters them back, so every rule works on sparse
// keys. Returns 0 or -ENOMEM (nothing applied).
static int
s_apply_sparse(s_server_t *s, s_range_t *r, const uint64_t *keys,
               const float *g, size_t n, double lr)
{
    int nb = r->st.nbuf;
    if (s_grow(&s->gw, &s->gw_n, n * (size_t)(1 + nb)) != 0) {
        return -ENOMEM;
    }
    float           *gw = s->gw; // gathered parameters, then state arrays
    ds_optim_state_t st = {.nbuf = nb, .n = n, .t = r->st.t};
    for (size_t i = 0; i < n; i++) {
        gw[i] = r->w[keys[i] - r->r.begin];
    }
    for (int b = 0; b < nb; b++) {
        st.buf[b] = gw + (size_t)(1 + b) * n;
        for (size_t i = 0; i < n; i++) {
            st.buf[b][i] = r->st.buf[b][keys[i] - r->r.begin];
        }
    }
    ds_optim_step(&s->opt, &st, 0, gw, g, n, lr);
    for (size_t i = 0; i < n; i++) {
        r->w[keys[i] - r->r.begin] = gw[i];
    }
    for (int b = 0; b < nb; b++) {
        for (size_t i = 0; i < n; i++) {
            r->st.buf[b][keys[i] - r->r.begin] = st.buf[b][i];
        }
    }
    r->st.t = st.t;
    return 0;
}

// s_answer sends the reply `out` to request msg on primary range r: an
// acknowledgement, or values (held back when the consistency model says
// the read must wait).
static void
s_answer(s_server_t *s, s_range_t *r, ds_msg_t *msg, Descent__Header *out)
{
    const Descent__Header *h = msg->hdr;
    char                   why[256];
    if (out->type == DESCENT__TYPE__PUSH_ACK && r->promoted) {
        r->promoted = false;
        ds_log(DS_INFO, "server",
               "range %u: first push acknowledged as the new primary at "
               "%lld ms (epoch %" PRIu64 ")",
               r->r.id, s_now_ms(), s->map.epoch);
    }
    out->clock = r->updates;
    bool with_values =
        !h->sparse && (h->type == DESCENT__TYPE__PULL || h->pull);
    if (!with_values) {
        if (s_fault(s)) {
            return;
        }
        int rc = ds_msg_send(s->data.sock, &msg->route, out, NULL, NULL);
        if (rc != 0) {
            ds_log(DS_WARN, "server", "reply to node %u dropped: %s", h->sender,
                   zmq_strerror(-rc));
        }
        return;
    }
    out->value_count = out->key_count;
    out->dtype = DESCENT__DTYPE__F32;
    // A read for clock c waits until every worker has committed c - s. A
    // worker reads only clocks it has committed itself and has one request
    // per range in flight, so held reads stay at most workers x ranges.
    if (!ds_ssp_can_read(&r->ssp, h->clock)) {
        uint64_t own = ds_ssp_clock(&r->ssp, (unsigned)s->row[h->sender]);
        bool     twice = false;
        for (const s_wait_t *wt = s->waiting; wt; wt = wt->next) {
            if (wt->sender == h->sender && wt->shard == h->shard) {
                if (wt->seq == h->seq) {
                    return; // a retry of a read already held: answered later
                }
                twice = true;
            }
        }
        if (h->clock > own || twice) {
            snprintf(why, sizeof why,
                     "a read for clock %" PRIu64 " with your clock at %" PRIu64
                     "%s",
                     h->clock, own,
                     twice ? " and another read of this range held" : "");
            s_refuse(s, msg, out->type, DESCENT__STATUS__BAD_REQUEST, why);
            return;
        }
        s_hold(s, msg, out);
        return;
    }
    s_reply_values(s, &msg->route, msg, out, h->sender, h->read_id);
}

// ---- chain replication: the backup's side --------------------------------

// s_ack_chain tells the primary of r how far r's chain is applied here.
static void
s_ack_chain(s_server_t *s, const ds_msg_t *msg, const s_range_t *r)
{
    Descent__Header a;
    s_reply_header(s, &a, DESCENT__TYPE__REPLICATE_ACK, r->chain, r->r.id, 0,
                   0);
    ds_msg_send(s->data.sock, &msg->route, &a, NULL, NULL);
}

// s_replay applies one forwarded operation to backup range r. Returns 0,
// or -EPROTO with why set when the operation is malformed (nothing
// applied).
static int
s_replay(s_server_t *s, s_range_t *r, const ds_msg_t *msg, char *why,
         size_t len)
{
    const Descent__Header *h = msg->hdr;
    size_t                 n = (size_t)h->key_count;
    if (h->origin > s->max_id || s->row[h->origin] < 0) {
        snprintf(why, len, "node %u is not a worker of this job", h->origin);
        return -EPROTO;
    }
    int32_t row = s->row[h->origin];
    bool    dense_ok = !h->sparse && h->key_begin >= r->r.begin &&
                    h->key_begin <= r->r.end && n <= r->r.end - h->key_begin;
    switch (h->repl) {
    case DESCENT__REPL__REPL_PUSH: {
        uint64_t *keys = NULL;
        if (n == 0 || h->value_count != n) {
            snprintf(why, len,
                     "a replicated push of %zu keys with %" PRIu64 " values", n,
                     h->value_count);
            return -EPROTO;
        }
        if (h->sparse && (s->dtada || s->easgd)) {
            snprintf(why, len, "sparse keys work with downpour only");
            return -EPROTO;
        }
        if (h->sparse && !(keys = s_valid_keys(r, &msg->keys, n, why, len))) {
            return -EPROTO;
        }
        if (!h->sparse && !dense_ok) {
            snprintf(why, len, "keys outside range %u", r->r.id);
            return -EPROTO;
        }
        if (s_grow(&s->scratch, &s->scratch_n, n) != 0 ||
            s_grow(&s->gw, &s->gw_n, n * (size_t)(1 + r->st.nbuf)) != 0) {
            free(keys);
            snprintf(why, len, "out of memory");
            return -ENOMEM;
        }
        ds_msg_copy_vals(msg, s->scratch);
        if (!ds_vec_finite(s->scratch, n) || !isfinite(h->lr)) {
            free(keys);
            snprintf(why, len, "a replicated push with NaN or Inf");
            return -EPROTO;
        }
        if (!s_seen_before(s, row, r->r.id, h->origin_seq)) {
            if (keys) {
                s_apply_sparse(s, r, keys, s->scratch, n, h->lr);
            } else {
                s_apply_dense(s, r, row, h->based_read,
                              h->key_begin - r->r.begin, s->scratch, n, h->lr);
            }
            s_applied(s, r, h->origin, h->clock, h->based_on);
        }
        free(keys);
        return 0;
    }
    case DESCENT__REPL__REPL_READ:
        if (!s->dtada || !dense_ok) {
            snprintf(why, len, "a replicated read this job does not make");
            return -EPROTO;
        }
        ds_dtada_read(&r->dt, s_slot(s, row, h->read_id),
                      h->key_begin - r->r.begin, n);
        return 0;
    case DESCENT__REPL__REPL_CLOCK:
        s_commit(s, r, h->origin, h->clock);
        return 0;
    case DESCENT__REPL__REPL_FINISH:
        ds_ssp_finish(&r->ssp, (unsigned)row);
        return 0;
    default:
        snprintf(why, len, "unknown replicated operation %d", (int)h->repl);
        return -EPROTO;
    }
}

// s_send_ready tells the scheduler that we serve our map (READY) and which
// ranges we back up whole under it: only those may be promoted if their
// primary is lost. Sent after every map, when a seed completes or a
// re-seed begins, and to a restarted scheduler.
static void
s_send_ready(s_server_t *s)
{
    uint32_t *ids = calloc(s->map.nranges + 1, sizeof *ids);
    size_t    k = 0;
    for (uint32_t i = 0; ids && i < s->map.nranges; i++) {
        const s_range_t *r = s->held[i];
        if (r && !r->primary && r->seeded) {
            ids[k++] = i;
        }
    }
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__READY);
    h.address = s->advertised;
    h.seeded_epoch = ids ? s->map.epoch : 0; // 0: no word on seeding
    h.n_seeded = k;
    h.seeded = ids;
    ds_node_send(&s->node, &h);
    free(ids);
}

// s_take_seed installs one array of a seed of backup range r. The first
// message also sets the counts and the sequence and clock table; the last
// completes the seed, and the chain continues from its number.
static void
s_take_seed(s_server_t *s, s_range_t *r, ds_msg_t *msg)
{
    const Descent__Header *h = msg->hdr;
    size_t                 n = (size_t)(r->r.end - r->r.begin);
    uint32_t               narr = 1 + (s->dtada ? 3u : (uint32_t)r->st.nbuf);
    uint32_t parts = narr + (s->dtada ? s->nworkers * s->slots : 0);
    char     why[256];
    if (r->seeded && h->seq <= r->chain) {
        s_ack_chain(s, msg, r); // a seed sent again: we have it
        return;
    }
    if (h->value_count != n || h->key_begin != r->r.begin ||
        h->parts != parts || h->part >= parts) {
        snprintf(why, sizeof why,
                 "a seed of range %u must be %u arrays of %zu values", r->r.id,
                 parts, n);
        s_refuse(s, msg, DESCENT__TYPE__REPLICATE_ACK,
                 DESCENT__STATUS__BAD_REQUEST, why);
        return;
    }
    if (h->part == 0) {
        if (h->seq < r->seed_at || h->n_table != (size_t)s->nworkers * 4) {
            return; // an older seed, or not for this map's workers
        }
        for (size_t k = 0; k < h->n_table; k += 4) {
            uint64_t id = h->table[k];
            if (id > s->max_id || s->row[id] < 0) {
                snprintf(why, sizeof why,
                         "a seed names node %" PRIu64
                         ", not a worker of this job",
                         id);
                s_refuse(s, msg, DESCENT__TYPE__REPLICATE_ACK,
                         DESCENT__STATUS__BAD_REQUEST, why);
                return;
            }
        }
        bool was = r->seeded;
        r->seeded = false;
        r->seed_at = h->seq;
        r->seed_part = 0;
        if (was) {
            s_send_ready(s);
        }
        r->updates = h->clock;
        r->st.t = h->rule_t;
        r->applied = h->applied;
        for (size_t k = 0; k < h->n_table; k += 4) {
            int32_t row = s->row[h->table[k]];
            s->last_seq[(size_t)row * s->map.nranges + r->r.id] =
                h->table[k + 1];
            ds_ssp_commit(&r->ssp, (unsigned)row, h->table[k + 2]);
            if (h->table[k + 2] > r->max_clock) {
                r->max_clock = h->table[k + 2];
            }
            if (h->table[k + 3]) {
                ds_ssp_finish(&r->ssp, (unsigned)row);
            }
        }
    } else if (h->seq != r->seed_at || h->part != r->seed_part || r->seeded) {
        return; // out of order: the primary seeds again
    }
    float *dst;
    if (h->part == 0) {
        dst = r->w;
    } else if (h->part < narr) {
        float *dt[3] = {r->dt.gbar, r->dt.z, r->dt.zp};
        dst = s->dtada ? dt[h->part - 1] : r->st.buf[h->part - 1];
    } else {
        dst = r->dt.gold + (size_t)(h->part - narr) * n;
    }
    ds_msg_copy_vals(msg, dst);
    r->seed_part = h->part + 1;
    if (r->seed_part == parts) {
        r->seeded = true;
        r->chain = r->seed_at;
        ds_log(DS_INFO, "server",
               "range %u: seeded by server %u at chain %" PRIu64, r->r.id,
               h->sender, r->chain);
        s_ack_chain(s, msg, r);
        s_send_ready(s);
    }
}

// s_replica handles REPLICATE and SEED from the primary of a range we back.
static void
s_replica(s_server_t *s, ds_msg_t *msg)
{
    const Descent__Header *h = msg->hdr;
    const Descent__Type    reply = DESCENT__TYPE__REPLICATE_ACK;
    char                   why[256];
    s_peer_epoch(s, h);
    if (!s->serving || h->epoch > s->map.epoch) {
        return; // our map is behind; the primary sends again
    }
    if (strcmp(h->job, s->node.cfg->job) != 0) {
        s_refuse(s, msg, reply, DESCENT__STATUS__REFUSED,
                 "not this server's job");
        return;
    }
    if (h->epoch < s->map.epoch) {
        s->fenced++;
        snprintf(why, sizeof why,
                 "sent under map epoch %" PRIu64 ", the map in force is "
                 "epoch %" PRIu64,
                 h->epoch, s->map.epoch);
        s_refuse(s, msg, reply, DESCENT__STATUS__STALE_EPOCH, why);
        return;
    }
    s_range_t *r = h->shard < s->map.nranges ? s->held[h->shard] : NULL;
    if (!r || r->primary || h->sender != r->r.primary) {
        snprintf(why, sizeof why,
                 "node %u is not the primary of a range %u "
                 "backed up here",
                 h->sender, h->shard);
        s_refuse(s, msg, reply, DESCENT__STATUS__REFUSED, why);
        return;
    }
    if (h->type == DESCENT__TYPE__SEED) {
        s_take_seed(s, r, msg);
        return;
    }
    if (!r->seeded || h->seq > r->chain + 1) {
        return; // waiting for the seed or a gap: the primary sends again
    }
    if (h->seq == r->chain + 1) {
        int rc = s_replay(s, r, msg, why, sizeof why);
        if (rc != 0) {
            char what[320];
            snprintf(what, sizeof what,
                     "replicated operation %" PRIu64 " of range %u: %s", h->seq,
                     r->r.id, why);
            s_refuse(s, msg, reply, DESCENT__STATUS__BAD_REQUEST, what);
            return;
        }
        r->chain = h->seq;
        s->replicated++;
    }
    s_ack_chain(s, msg, r);
}

// ---- requests from workers -------------------------------------------------

// s_reply_after_chain answers msg now, or once the backup holds chain
// number `chain`.
static void
s_reply_after_chain(s_server_t *s, s_range_t *r, ds_msg_t *msg,
                    Descent__Header *out, uint64_t chain)
{
    if (chain == UINT64_MAX) {
        ds_node_stop(&s->node, 1, "out of memory forwarding a push");
        return;
    }
    if (chain > r->acked) {
        if (s_wait_chain(r, msg, out, chain) != 0) {
            s_refuse(s, msg, out->type, DESCENT__STATUS__TOO_LARGE,
                     "out of memory");
        }
        return;
    }
    s_answer(s, r, msg, out);
}

// s_sparse serves a sparse PULL or PUSH: only the keys in the keys frame,
// sorted and unique, all within range r.
static void
s_sparse(s_server_t *s, ds_msg_t *msg, s_range_t *r, Descent__Type reply)
{
    const Descent__Header *h = msg->hdr;
    size_t                 n = (size_t)h->key_count;
    char                   why[256];
    if (!r) {
        snprintf(why, sizeof why, "range %u is not held here", h->shard);
        s_refuse(s, msg, reply, DESCENT__STATUS__OUT_OF_RANGE, why);
        return;
    }
    if (s->dtada || s->easgd) {
        s_refuse(s, msg, reply, DESCENT__STATUS__BAD_REQUEST,
                 "sparse keys work with downpour only");
        return;
    }
    // Keys are copied out: a received frame need not be aligned.
    uint64_t *keys = s_valid_keys(r, &msg->keys, n, why, sizeof why);
    if (!keys) {
        s_refuse(s, msg, reply, DESCENT__STATUS__OUT_OF_RANGE, why);
        return;
    }
    if (s_grow(&s->scratch, &s->scratch_n, n) != 0 ||
        s_grow(&s->gw, &s->gw_n, n * (size_t)(1 + r->st.nbuf)) != 0) {
        free(keys);
        s_refuse(s, msg, reply, DESCENT__STATUS__TOO_LARGE, "out of memory");
        return;
    }
    Descent__Header out;
    s_reply_header(s, &out, reply, h->seq, h->shard, 0, n);
    if (h->type == DESCENT__TYPE__PUSH) {
        const float *g = s->scratch;
        ds_msg_copy_vals(msg, s->scratch);
        if (!ds_vec_finite(g, n)) {
            s->nonfinite++;
            free(keys);
            s_refuse(s, msg, reply, DESCENT__STATUS__BAD_VALUE,
                     "gradient has NaN or Inf values; not applied");
            return;
        }
        double   lr = ds_schedule_lr(&s->lr, r->updates);
        uint64_t chain = r->chain;
        if (s_seen_before(s, s->row[h->sender], h->shard, h->seq)) {
            s->dups++;
        } else {
            if (s->node.cfg->noise_eta > 0) {
                ds_noise_add(&r->noise, s->scratch, n,
                             ds_noise_sigma(s->node.cfg->noise_eta,
                                            s->node.cfg->noise_gamma,
                                            r->updates));
            }
            s_apply_sparse(s, r, keys, g, n, lr);
            s_applied(s, r, h->sender, h->clock, h->based_on);
            uint64_t c = s_forward(s, r, DESCENT__REPL__REPL_PUSH, h,
                                   &msg->keys, g, n, lr);
            chain = c ? c : chain;
            s_release(s);
        }
        free(keys);
        out.lr = lr;
        s_reply_after_chain(s, r, msg, &out, chain);
        return;
    }
    // A sparse read is not held back by bsp or ssp: the keys a batch
    // touches change every step; commits still count.
    s->pulls++;
    float *gw = s->gw;
    for (size_t i = 0; i < n; i++) {
        gw[i] = r->w[keys[i] - r->r.begin];
    }
    free(keys);
    out.clock = r->updates;
    out.value_count = n;
    out.dtype = DESCENT__DTYPE__F32;
    int rc = ds_msg_send_f32(s->data.sock, &msg->route, &out, gw, n);
    if (rc != 0) {
        ds_log(DS_WARN, "server", "reply dropped: %s", zmq_strerror(-rc));
    }
}

// s_clock takes a worker's CLOCK: a commit, or a worker that has ended and
// holds nobody back any more. Fire and forget; forwarded down each chain.
static void
s_clock(s_server_t *s, const Descent__Header *h)
{
    for (uint32_t i = 0; i < s->map.nranges; i++) {
        s_range_t *r = s->held[i];
        if (!r || !r->primary) {
            continue;
        }
        if (h->finished) {
            ds_ssp_finish(&r->ssp, (unsigned)s->row[h->sender]);
        } else {
            s_commit(s, r, h->sender, h->clock);
        }
        if (s_forward(s, r,
                      h->finished ? DESCENT__REPL__REPL_FINISH
                                  : DESCENT__REPL__REPL_CLOCK,
                      h, NULL, NULL, 0, 0) == UINT64_MAX) {
            ds_node_stop(&s->node, 1, "out of memory forwarding a clock");
            return;
        }
    }
    s_release(s);
}

static void
s_handle(s_server_t *s, ds_msg_t *msg)
{
    const Descent__Header *h = msg->hdr;
    if (h->type == DESCENT__TYPE__REPLICATE || h->type == DESCENT__TYPE__SEED) {
        s_replica(s, msg);
        return;
    }
    Descent__Type reply =
        h->type == DESCENT__TYPE__PUSH   ? DESCENT__TYPE__PUSH_ACK
        : h->type == DESCENT__TYPE__PULL ? DESCENT__TYPE__PULL_REPLY
                                         : DESCENT__TYPE__ERROR;
    char why[256];
    s_peer_epoch(s, h);
    if (h->type == DESCENT__TYPE__CLOCK && s->serving &&
        strcmp(h->job, s->node.cfg->job) == 0 && h->sender <= s->max_id &&
        s->row[h->sender] >= 0) {
        s_clock(s, h);
        return;
    }
    if (reply == DESCENT__TYPE__ERROR) {
        snprintf(why, sizeof why, "a server does not take %s",
                 ds_msg_type_name(h->type));
        s_refuse(s, msg, reply, DESCENT__STATUS__REFUSED, why);
        return;
    }
    if (strcmp(h->job, s->node.cfg->job) != 0) {
        snprintf(why, sizeof why, "job \"%s\" is not this server's job \"%s\"",
                 h->job, s->node.cfg->job);
        s_refuse(s, msg, reply, DESCENT__STATUS__REFUSED, why);
        return;
    }
    if (!s->serving) {
        s_refuse(s, msg, reply, DESCENT__STATUS__NOT_READY,
                 "the server has no shard map yet");
        return;
    }
    if (h->epoch != s->map.epoch) {
        snprintf(why, sizeof why,
                 "sent under map epoch %" PRIu64
                 ", the map in force is epoch %" PRIu64,
                 h->epoch, s->map.epoch);
        s->fenced += h->epoch < s->map.epoch;
        s_refuse(s, msg, reply, DESCENT__STATUS__STALE_EPOCH, why);
        return;
    }
    // Fencing: a server that has not heard the scheduler for the failure
    // timeout may have been declared dead and replaced (a paused process
    // resumed); it takes no write until the scheduler answers again.
    if (h->type == DESCENT__TYPE__PUSH && !s_lease_ok(s)) {
        s->fenced++;
        snprintf(why, sizeof why, "not taking writes: %s",
                 s->node.epoch > s->map.epoch
                     ? "a newer shard map is on its way"
                     : "this server stalled and waits for the scheduler");
        s_refuse(s, msg, reply, DESCENT__STATUS__NOT_READY, why);
        return;
    }
    if (h->sender > s->max_id || s->row[h->sender] < 0) {
        snprintf(why, sizeof why, "node %u is not a worker of this job",
                 h->sender);
        s_refuse(s, msg, reply, DESCENT__STATUS__REFUSED, why);
        return;
    }
    if (h->type == DESCENT__TYPE__PUSH && h->seq == 0) {
        s_refuse(s, msg, reply, DESCENT__STATUS__BAD_REQUEST,
                 "a push needs a sequence number from 1 up");
        return;
    }
    s_range_t *r = h->shard < s->map.nranges ? s->held[h->shard] : NULL;
    if (r && !r->primary) {
        snprintf(why, sizeof why, "range %u is only backed up here", h->shard);
        s_refuse(s, msg, reply, DESCENT__STATUS__OUT_OF_RANGE, why);
        return;
    }
    if (h->sparse) {
        s_sparse(s, msg, r, reply);
        return;
    }
    if (!r || h->key_begin < r->r.begin ||
        h->key_begin + h->key_count > r->r.end) {
        snprintf(why, sizeof why,
                 "keys [%" PRIu64 ", %" PRIu64 ") of range %u are not held "
                 "here",
                 h->key_begin, h->key_begin + h->key_count, h->shard);
        s_refuse(s, msg, reply, DESCENT__STATUS__OUT_OF_RANGE, why);
        return;
    }
    size_t          n = (size_t)h->key_count;
    Descent__Header out;
    s_reply_header(s, &out, reply, h->seq, h->shard, h->key_begin,
                   h->key_count);
    if (h->type != DESCENT__TYPE__PUSH) {
        s->pulls++;
        s_answer(s, r, msg, &out);
        return;
    }
    const float *g = ds_msg_vals(msg);
    bool         noisy = s->node.cfg->noise_eta > 0;
    if (!g || noisy) {
        if (s_grow(&s->scratch, &s->scratch_n, n) != 0) {
            s_refuse(s, msg, reply, DESCENT__STATUS__TOO_LARGE,
                     "out of memory for the values");
            return;
        }
        ds_msg_copy_vals(msg, s->scratch);
        g = s->scratch;
    }
    if (!ds_vec_finite(g, n)) {
        s->nonfinite++;
        s_refuse(s, msg, reply, DESCENT__STATUS__BAD_VALUE,
                 "gradient has NaN or Inf values; not applied");
        return;
    }
    double   lr = ds_schedule_lr(&s->lr, r->updates);
    uint64_t chain = r->chain;
    if (s_seen_before(s, s->row[h->sender], h->shard, h->seq)) {
        s->dups++;
        s_commit(s, r, h->sender, h->clock);
    } else {
        if (noisy) {
            // Noise is drawn here, once per applied update, so that its
            // variance anneals with the range's own update count; the
            // backup gets the noisy gradient.
            ds_noise_add(&r->noise, s->scratch, n,
                         ds_noise_sigma(s->node.cfg->noise_eta,
                                        s->node.cfg->noise_gamma, r->updates));
        }
        s_apply_dense(s, r, s->row[h->sender], h->based_read,
                      h->key_begin - r->r.begin, g, n, lr);
        s_applied(s, r, h->sender, h->clock, h->based_on);
        uint64_t c =
            s_forward(s, r, DESCENT__REPL__REPL_PUSH, h, NULL, g, n, lr);
        chain = c ? c : chain;
    }
    out.lr = lr;
    s_release(s);
    s_reply_after_chain(s, r, msg, &out, chain);
}

// s_remap installs a later shard map (a failover, a server back): the
// ranges keep their state; a backup promoted to primary continues its chain;
// a primary with a new backup seeds it; ranges no longer ours are dropped.
static int
s_remap(s_server_t *s, const Descent__ShardMap *pb)
{
    char           err[256];
    ds_shard_map_t m;
    int            rc = ds_shard_map_from_pb(&m, pb, err, sizeof err);
    if (rc != 0) {
        ds_log(DS_ERROR, "server", "bad shard map: %s", err);
        return rc;
    }
    bool     same = ds_shard_map_same_ranges(&m, &s->map);
    uint32_t workers = 0;
    for (size_t i = 0; i < pb->n_nodes; i++) {
        const Descent__Node *nd = pb->nodes[i];
        if (nd->role == DESCENT__ROLE__WORKER) {
            same = same && nd->id <= s->max_id &&
                   s->row[nd->id] == (int32_t)workers;
            workers++;
        }
    }
    if (!same || workers != s->nworkers) {
        ds_log(DS_ERROR, "server",
               "map epoch %" PRIu64 " changes the ranges or the workers",
               m.epoch);
        ds_shard_map_fini(&m);
        return -EPROTO;
    }
    uint32_t me = s->node.id;
    bool    *seed = calloc(m.nranges, sizeof *seed);
    if (!seed) {
        ds_shard_map_fini(&m);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < m.nranges; i++) {
        const ds_range_t *d = &m.ranges[i];
        s_range_t        *r = s->held[i];
        if (d->primary != me && d->backup != me) {
            if (r) {
                s_drop_waiting(s, i);
                s_range_free(r);
                s->held[i] = NULL;
            }
            continue;
        }
        if (!r) {
            if (d->primary == me) {
                ds_log(DS_ERROR, "server",
                       "map epoch %" PRIu64 " makes us the primary of range "
                       "%u, whose state we do not hold",
                       m.epoch, i);
                free(seed);
                ds_shard_map_fini(&m);
                return -EPROTO;
            }
            r = s->held[i] = s_range_new(s, d, NULL);
            if (!r) {
                free(seed);
                ds_shard_map_fini(&m);
                return -ENOMEM;
            }
            r->seeded = false; // until the primary's seed arrives
            continue;
        }
        bool     was_primary = r->primary;
        uint32_t old_backup = r->r.backup;
        r->r = *d;
        r->primary = d->primary == me;
        if (was_primary && !r->primary) {
            // Not made by our scheduler (primaries are never demoted), but
            // safe: forget the state and wait for a seed.
            s_drop_waiting(s, i);
            s_range_drop_chain(r);
            r->seeded = false;
            r->seed_at = 0;
            continue;
        }
        if (r->primary && !was_primary) {
            if (!r->seeded) {
                ds_log(DS_ERROR, "server",
                       "range %u promoted here before its seed was complete",
                       i);
                free(seed);
                ds_shard_map_fini(&m);
                return -EPROTO;
            }
            r->promoted = true;
            r->acked = r->chain;
            r->seed_at = 0;
            ds_log(DS_INFO, "server",
                   "range %u: promoted to primary at %lld ms (epoch %" PRIu64
                   ", chain %" PRIu64 ", %" PRIu64 " updates)",
                   i, s_now_ms(), m.epoch, r->chain, r->updates);
        }
        if (r->primary) {
            seed[i] =
                d->backup != 0 && (d->backup != old_backup || !was_primary);
        }
    }
    ds_shard_map_fini(&s->map);
    s->map = m;
    rc = s_peers_update(s, pb);
    for (uint32_t i = 0; rc == 0 && i < m.nranges; i++) {
        s_range_t *r = s->held[i];
        if (!r || !r->primary) {
            continue;
        }
        if (r->r.backup == 0) {
            // No backup left: acknowledge on our own (the map says so).
            r->acked = r->chain;
            s_chain_acked(s, r);
        } else if (seed[i]) {
            s_seed(s, r);
        }
    }
    free(seed);
    s_release(s);
    return rc;
}

static void s_on_map(s_server_t *s, const Descent__ShardMap *pb);
static void s_ready(s_server_t *s);
static void s_send_stats(s_server_t *s);
static void s_final_checkpoint(s_server_t *s);

// s_send_stats answers the scheduler's STATS: staleness, fencing and the
// audit of every range held.
static void
s_send_stats(s_server_t *s)
{
    Descent__Header r;
    ds_msg_header_init(&r, DESCENT__TYPE__STATS);
    r.n_stale_updates = STALE_BUCKETS;
    r.stale_updates = s->stale_upd;
    r.n_stale_clocks = STALE_BUCKETS;
    r.stale_clocks = s->stale_clk;
    r.stale_accepted = s->stale_accepted;
    r.fenced = s->fenced;
    uint32_t              nh = s_nheld(s, false), k = 0;
    Descent__RangeAudit  *au = calloc(nh + 1, sizeof *au);
    Descent__RangeAudit **ap = calloc(nh + 1, sizeof *ap);
    for (uint32_t i = 0; au && ap && i < s->map.nranges; i++) {
        const s_range_t *g = s->held[i];
        if (!g) {
            continue;
        }
        descent__range_audit__init(&au[k]);
        au[k].range = i;
        au[k].primary = g->primary;
        au[k].applied = g->applied;
        au[k].updates = g->updates;
        au[k].digest = s_digest(s, g);
        ap[k] = &au[k];
        k++;
    }
    r.n_audit = ap ? k : 0;
    r.audit = ap;
    ds_node_send(&s->node, &r);
    free(au);
    free(ap);
}

static void
s_on_sched_msg(ds_node_t *n, const ds_msg_t *msg)
{
    s_server_t            *s = n->role_data;
    const Descent__Header *h = msg->hdr;
    if (h->type == DESCENT__TYPE__REGISTER_ACK) {
        return;
    }
    if (h->type == DESCENT__TYPE__STATS) {
        // Every push has been acknowledged: the state is final. It is
        // checkpointed now, off the loop, so that a failure to write it
        // fails the job before the scheduler writes the summary; the reply
        // follows the checkpoint (s_ckpt_done).
        if (s->serving && s_may_checkpoint(s)) {
            s->stats_wanted = true;
            s_final_checkpoint(s);
            return;
        }
        s_send_stats(s);
        return;
    }
    if (h->type == DESCENT__TYPE__SET_LR) {
        if (!(h->lr_scale > 0 && h->lr_scale <= 1)) {
            ds_log(DS_WARN, "server", "ignoring a learning-rate scale of %g",
                   h->lr_scale);
            return;
        }
        s->lr.scale = h->lr_scale;
        ds_log(DS_INFO, "server", "learning rate scaled by %g on a plateau",
               h->lr_scale);
        return;
    }
    if (h->type != DESCENT__TYPE__SHARD_MAP || !h->map) {
        ds_log(DS_DEBUG, "server", "ignoring %s from the scheduler",
               ds_msg_type_name(h->type));
        return;
    }
    if (s->build) {
        // The ranges of the first map are still being built: take this one
        // after them. node.c only finis msg after this call, so its parts
        // can move (the scheduler sends each map once).
        if (!s->has_next || h->map->epoch > s->next_map.hdr->map->epoch) {
            if (s->has_next) {
                ds_msg_fini(&s->next_map);
            }
            ds_msg_move(&s->next_map, (ds_msg_t *)msg);
            s->has_next = true;
        }
        return;
    }
    s_on_map(s, h->map);
}

// s_on_map takes a shard map from the scheduler: the first one, or a later
// one (a failover, a server back). READY follows once the ranges are ours.
static void
s_on_map(s_server_t *s, const Descent__ShardMap *pb)
{
    if (s->serving && pb->epoch <= s->map.epoch) {
        return;
    }
    int rc;
    if (s->serving) {
        rc = s_remap(s, pb);
    } else {
        rc = s_take_map(s, pb);
        if (rc == 0) {
            rc = s_peers_update(s, pb);
        }
    }
    if (rc != 0) {
        s->serving = false;
        ds_node_stop(&s->node, 1, "cannot take the shard map");
        return;
    }
    if (!s->build) {
        s_ready(s);
    }
}

// s_ready starts serving the map in force and tells the scheduler.
static void
s_ready(s_server_t *s)
{
    s->node.epoch = s->map.epoch;
    s->serving = true;
    s_send_ready(s);
}

// s_on_back tells a restarted scheduler which backups we hold whole: it
// has the map, not what seeds completed.
static void
s_on_back(ds_node_t *n)
{
    s_server_t *s = n->role_data;
    if (s->serving) {
        s_send_ready(s);
    }
}

// s_on_built runs on the loop when the ranges of the first map are built:
// the server holds them and is ready, then takes a map that came meanwhile.
static void
s_on_built(uv_work_t *req, int status)
{
    s_build_t  *b = req->data;
    s_server_t *s = b->s;
    s->build = NULL;
    int rc = status != 0 ? status : b->rc;
    if (rc == 0 && !s->node.stopping) {
        rc = s_built(s, b);
    }
    for (uint32_t i = 0; i < s->map.nranges; i++) {
        s_range_free(b->held[i]);
    }
    free(b->held);
    free(b);
    if (rc == 0 && !s->node.stopping) {
        s_ready(s);
    } else if (!s->node.stopping) {
        ds_node_stop(&s->node, 1, "cannot take the shard map");
    }
    if (s->has_next) {
        if (!s->node.stopping) {
            s_on_map(s, s->next_map.hdr->map);
        }
        ds_msg_fini(&s->next_map);
        s->has_next = false;
    }
}

static void
s_on_data(ds_zsock_t *z, void *arg)
{
    s_server_t     *s = arg;
    ds_msg_t        msg;
    char            err[256] = "";
    Descent__Status st;
    int             rc =
        ds_msg_take(z->sock, true, &s->node.limits, &msg, &st, err, sizeof err);
    if (rc == -EAGAIN) {
        ds_msg_fini(&msg);
        return;
    }
    if (rc != 0) {
        s->refused++;
        char peer[DS_RATELOG_PEER_MAX], kind[DS_RATELOG_KIND_MAX];
        ds_msg_peer(&msg, peer, sizeof peer);
        snprintf(kind, sizeof kind, "%s%s", ds_msg_status_name(st),
                 msg.hdr ? "" : " (no header)");
        ds_log_peer(&s->node.peer_log, uv_now(s->node.loop), DS_WARN, "server",
                    peer, kind, "bad request%s from %s: %s",
                    msg.hdr ? "" : " (no header)", peer, err);
        if (msg.flags & DS_MSG_HAS_ROUTE) {
            Descent__Type t = DESCENT__TYPE__ERROR;
            if (msg.hdr && msg.hdr->type == DESCENT__TYPE__PUSH) {
                t = DESCENT__TYPE__PUSH_ACK;
            } else if (msg.hdr && msg.hdr->type == DESCENT__TYPE__PULL) {
                t = DESCENT__TYPE__PULL_REPLY;
            }
            ds_msg_reply(z->sock, &msg, t, st, err);
        }
        ds_msg_fini(&msg);
        return;
    }
    s_handle(s, &msg);
    ds_msg_fini(&msg);
}

static void
s_ckpt_work(uv_work_t *req)
{
    s_ckpt_write(req->data);
}

// s_ckpt_done runs on the loop once a periodic checkpoint is written (or
// was cancelled at stop before it started).
static void
s_ckpt_done(uv_work_t *req, int status)
{
    s_ckpt_job_t *j = req->data;
    j->s->ckpt_job = NULL;
    if (status == 0 && j->fenced) {
        ds_log(DS_WARN, "server",
               "periodic checkpoint stopped: this server stalled, was "
               "replaced or lost the scheduler meanwhile");
    } else if (status == 0 && j->written) {
        ds_log(j->bad ? DS_WARN : DS_INFO, "server",
               "%s checkpoint of %u ranges written%s (%.1f s, off the loop)",
               j->final ? "final" : "periodic", j->n, j->bad ? " with errors" : "", j->secs);
    }
    s_server_t *s = j->s;
    if (status == 0 && j->written && j->bad && !s->node.stopping) {
        // A result that cannot be written fails the job, naming it.
        char why[sizeof j->why];
        snprintf(why, sizeof why, "%s", j->why);
        s_ckpt_free(j);
        ds_node_stop(&s->node, 1, why);
        return;
    }
    bool final = status == 0 && j->final && j->written && !j->fenced;
    if (final) {
        s->ckpt_mark = j->mark;
    }
    s_ckpt_free(j);
    if (s->node.stopping || !s->stats_wanted) {
        return;
    }
    if (final || !s->serving || !s_may_checkpoint(s)) {
        s->stats_wanted = false;
        s_send_stats(s);
    } else {
        s_final_checkpoint(s); // a periodic one was being written
    }
}

// s_final_checkpoint writes the final state, as STATS asks, on the thread
// pool; s_ckpt_done replies to STATS when it is written. A periodic
// checkpoint still being written finishes first.
static void
s_final_checkpoint(s_server_t *s)
{
    if (s->ckpt_job) {
        return;
    }
    s_ckpt_job_t *j = s_ckpt_take(s, true);
    if (!j) {
        ds_node_stop(&s->node, 1, "checkpoint: out of memory for a snapshot");
        return;
    }
    j->final = true;
    atomic_store(&s->ckpt_ok, true);
    int rc = uv_queue_work(s->node.loop, &j->req, s_ckpt_work, s_ckpt_done);
    if (rc != 0) {
        char why[128];
        snprintf(why, sizeof why, "checkpoint: %s", uv_strerror(rc));
        s_ckpt_free(j);
        ds_node_stop(&s->node, 1, why);
        return;
    }
    s->ckpt_job = j;
}

// s_on_ckpt_timer takes a periodic checkpoint: a snapshot copied in this
// loop turn, written on the thread pool while the loop goes on serving and
// heartbeating (a large model's files take seconds on a busy disk). One is
// written at a time: a tick that finds the last one unfinished skips.
static void
s_on_ckpt_timer(uv_timer_t *t)
{
    s_server_t *s = t->data;
    if (!s->serving || !s_may_checkpoint(s)) {
        return;
    }
    if (s->stats_wanted) {
        return; // the final checkpoint is due
    }
    if (s->ckpt_job) {
        ds_log(DS_DEBUG, "server",
               "the last checkpoint is still being written: none this time");
        return;
    }
    s_ckpt_job_t *j = s_ckpt_take(s, true);
    if (!j) {
        ds_node_stop(&s->node, 1, "checkpoint: out of memory for a snapshot");
        return;
    }
    atomic_store(&s->ckpt_ok, true);
    int rc = uv_queue_work(s->node.loop, &j->req, s_ckpt_work, s_ckpt_done);
    if (rc != 0) {
        ds_log(DS_ERROR, "server", "checkpoint: %s", uv_strerror(rc));
        s_ckpt_free(j);
        return;
    }
    s->ckpt_job = j;
}

// s_tick_ms is the period of the chain timer, which also notices stalls.
static uint64_t
s_tick_ms(const ds_config_t *cfg)
{
    int ms = cfg->retry_ms < cfg->heartbeat_ms ? cfg->retry_ms
                                               : cfg->heartbeat_ms;
    return (uint64_t)ms / 4 + 1;
}

static void
s_on_stop(ds_node_t *n)
{
    s_server_t *s = n->role_data;
    // Work not started yet is dropped; a periodic checkpoint being written
    // stops if our files are no longer to be trusted, else finishes first.
    atomic_store(&s->ckpt_ok, s->serving && s_may_checkpoint(s));
    if (s->ckpt_job) {
        uv_cancel((uv_req_t *)&s->ckpt_job->req);
    }
    if (s->build) {
        uv_cancel((uv_req_t *)&s->build->req);
    }
    if (s->serving && !s_may_checkpoint(s)) {
        // Another server may hold our ranges now: our state is not theirs,
        // and the checkpoint files are shared.
        ds_log(DS_WARN, "server", "no checkpoint: %s",
               n->replaced ? "this server was replaced"
                           : "the scheduler is silent, this server stalled "
                             "or its map is old");
    } else if (s->serving && s->ckpt_mark == s_ckpt_mark(s)) {
        ds_log(DS_INFO, "server", "checkpoint of %u ranges in %s/checkpoints",
               s_nheld(s, true), n->cfg->out);
    } else if (s->serving) {
        char why[DS_STR_MAX + 160];
        int  bad = s_checkpoint(s, why, sizeof why);
        ds_log(bad ? DS_ERROR : DS_INFO, "server",
               "checkpoint of %u ranges written to %s/checkpoints%s",
               s_nheld(s, true), n->cfg->out, bad ? " with errors" : "");
        if (bad && n->exit_code == 0) {
            n->exit_code = 1; // a result that could not be written
        }
    }
    if (s->ckpt_open) {
        uv_close((uv_handle_t *)&s->ckpt, NULL);
        s->ckpt_open = false;
    }
    if (s->chain_open) {
        uv_close((uv_handle_t *)&s->chain_timer, NULL);
        s->chain_open = false;
    }
    for (uint32_t i = 0; i < s->npeers; i++) {
        if (s->peers[i]->open) {
            ds_zsock_close(&s->peers[i]->z, NULL);
            s->peers[i]->open = false;
        }
    }
    if (s->data_open) {
        ds_zsock_close(&s->data, NULL);
        s->data_open = false;
    }
    ds_log(DS_INFO, "server",
           "node %u: %" PRIu64 " pushes applied, %" PRIu64 " pulls, %" PRIu64
           " duplicates, %" PRIu64 " refused (%" PRIu64 " non-finite, %" PRIu64
           " fenced), %" PRIu64 " reads held back, %" PRIu64
           " replies dropped by fault injection; chain: %" PRIu64
           " forwarded, %" PRIu64 " replicated, %" PRIu64 " seeds",
           n->id, s->pushes, s->pulls, s->dups, s->refused, s->nonfinite,
           s->fenced, s->holds, s->faults, s->forwarded, s->replicated,
           s->seeds);
    ds_log(DS_INFO, "server",
           "node %u: the loop's longest pause was %" PRIu64 " ms (its timer "
           "ticks every %" PRIu64 " ms)",
           n->id, s->stall_ms, s_tick_ms(n->cfg));
}

int
ds_server_main(const ds_config_t *cfg)
{
    uv_loop_t  loop;
    s_server_t s;
    memset(&s, 0, sizeof s);
    uv_mutex_init(&s.ckpt_lock);
    atomic_init(&s.ckpt_ok, false);
    uv_loop_init(&loop);
    s.node = (ds_node_t){.cfg = cfg,
                         .loop = &loop,
                         .who = "server",
                         .role = DESCENT__ROLE__SERVER,
                         .on_msg = s_on_sched_msg,
                         .on_stop = s_on_stop,
                         .on_back = s_on_back,
                         .role_data = &s};
    char oerr[256];
    if (ds_job_optim(&s.opt, cfg, oerr, sizeof oerr) != 0) {
        ds_log(DS_ERROR, "server", "%s", oerr);
        uv_loop_close(&loop);
        uv_mutex_destroy(&s.ckpt_lock);
        return 2;
    }
    ds_rng_seed(&s.frng, cfg->seed, 0xfa0175e7ull + (uint64_t)getpid());
    s.node.ctx = zmq_ctx_new();
    char  err[1024];
    int   rc = -ENOMEM;
    void *sock = s.node.ctx
                     ? ds_zsock_open(s.node.ctx, ZMQ_ROUTER, 100,
                                     (long long)cfg->max_message_mb << 20)
                     : NULL;
    if (!sock) {
        ds_log(DS_ERROR, "server", "cannot create a socket: %s",
               zmq_strerror(errno));
        goto fail;
    }
    rc = ds_zsock_bind(sock, cfg->bind, s.bound, sizeof s.bound, err,
                       sizeof err);
    if (rc == 0) {
        rc = ds_endpoint_advertise(s.bound, cfg->advertise, s.advertised,
                                   sizeof s.advertised);
        if (rc != 0) {
            snprintf(err, sizeof err, "cannot advertise \"%s\" for %s",
                     cfg->advertise, s.bound);
        }
    }
    if (rc != 0) {
        ds_log(DS_ERROR, "server", "%s", err);
        zmq_close(sock);
        goto fail;
    }
    rc = ds_zsock_init(&s.data, &loop, sock, s_on_data, &s);
    if (rc != 0) {
        zmq_close(sock);
        goto fail;
    }
    s.data_open = true;
    if (cfg->checkpoint_s > 0) {
        uv_timer_init(&loop, &s.ckpt);
        s.ckpt.data = &s;
        uint64_t ms = (uint64_t)cfg->checkpoint_s * 1000;
        uv_timer_start(&s.ckpt, s_on_ckpt_timer, ms, ms);
        s.ckpt_open = true;
    }
    uv_timer_init(&loop, &s.chain_timer);
    s.chain_timer.data = &s;
    uint64_t tick = s_tick_ms(cfg);
    s.tick_ms = uv_now(&loop);
    uv_timer_start(&s.chain_timer, s_on_chain_timer, tick, tick);
    s.chain_open = true;
    ds_log(DS_INFO, "server", "serving on %s (advertised as %s)", s.bound,
           s.advertised);
    rc = ds_node_start(&s.node, s.advertised);
    if (rc != 0) {
        ds_zsock_close(&s.data, NULL);
        if (s.ckpt_open) {
            uv_close((uv_handle_t *)&s.ckpt, NULL);
            s.ckpt_open = false;
        }
        uv_close((uv_handle_t *)&s.chain_timer, NULL);
        s.chain_open = false;
        uv_run(&loop, UV_RUN_DEFAULT);
        goto fail;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    s_free_ranges(&s);
    s_free_peers(&s);
    ds_node_fini(&s.node);
    if (uv_loop_close(&loop) != 0) {
        ds_log(DS_WARN, "server", "loop closed with handles still open");
    }
    uv_mutex_destroy(&s.ckpt_lock);
    return s.node.exit_code;
fail:
    s_free_ranges(&s);
    s_free_peers(&s);
    ds_node_fini(&s.node);
    uv_loop_close(&loop);
    uv_mutex_destroy(&s.ckpt_lock);
    return 1;
}
