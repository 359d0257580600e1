// SPDX-License-Identifier: MIT
// server - the parameter-server role: holds key ranges, applies pushes.
#include "server/server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

// s_range_t is one range this server holds.
typedef struct {
    ds_range_t       r;         // the range and its placement
    float           *w;         // end - begin parameters; owned
    uint64_t         updates;   // pushes applied so far
    ds_optim_state_t st;        // the update rule's state for the range
    ds_rng_t         noise;     // gradient noise draws for the range
    ds_ssp_t         ssp;       // worker clocks committed on this range
    ds_dtada_t       dt;        // dtadagrad: AdaptiveRevision state
    uint64_t         max_clock; // largest clock committed on this range
} s_range_t;

typedef struct {
    ds_node_t      node;              // scheduler link; node.role_data is us
    ds_zsock_t     data;              // ROUTER for pushes and pulls
    bool           data_open;         // data is initialized and not yet closed
    char           bound[DS_STR_MAX]; // endpoint actually bound
    char           advertised[DS_STR_MAX]; // endpoint workers connect to
    bool           serving;   // holds its ranges and answers requests
    ds_shard_map_t map;       // the shard map in force
    s_range_t    **held;      // by range id; NULL when not ours; owned
    ds_schedule_t  lr;        // learning-rate schedule over updates
    ds_optim_t     opt;       // the job's update rule
    int32_t       *row;       // by node id: the worker's row, -1 if none
    uint32_t       max_id;    // largest node id in the map
    uint64_t      *last_seq;  // [row * nranges + range]; owned
    float         *scratch;   // aligned copy of a misaligned values frame
    size_t         scratch_n; // floats in scratch
    float         *gw;        // sparse: gathered parameters and state
    size_t         gw_n;      // floats in gw
    uint64_t       pushes;    // pushes applied
    uint64_t       pulls;     // pulls answered
    uint64_t       dups;      // duplicate pushes acknowledged, not applied
    uint64_t       refused;   // requests refused with an error status
    uint64_t       nonfinite; // pushes refused for NaN or Inf
    int            staleness; // -1 (async), 0 (bsp) or ssp's bound
    bool           dtada;     // the algorithm is dtadagrad
    bool           easgd;     // the algorithm is easgd: pushes add
    uint32_t       slots;     // dtadagrad: read snapshots per worker
    uint32_t       nworkers;  // workers of the map
    s_wait_t      *waiting;   // reads held back, oldest first; owned
    s_wait_t     **wait_tail; // where the next held read goes
    uint64_t       holds;     // reads that had to wait
    ds_rng_t       frng;      // fault injection: which replies to drop
    uint64_t       faults;    // replies dropped by fault injection
    uv_timer_t     ckpt;      // periodic checkpoints
    bool           ckpt_open; // ckpt is initialized and not closed
    uint64_t       stale_upd[STALE_BUCKETS]; // pushes by staleness, updates
    uint64_t       stale_clk[STALE_BUCKETS]; // pushes by staleness, clocks
} s_server_t;

static void
s_free_ranges(s_server_t *s)
{
    for (uint32_t i = 0; s->held && i < s->map.nranges; i++) {
        if (s->held[i]) {
            ds_optim_state_fini(&s->held[i]->st);
            ds_ssp_fini(&s->held[i]->ssp);
            ds_dtada_fini(&s->held[i]->dt);
            free(s->held[i]->w);
            free(s->held[i]);
        }
    }
    free(s->held);
    s->held = NULL;
    while (s->waiting) {
        s_wait_t *wt = s->waiting;
        s->waiting = wt->next;
        zmq_msg_close(&wt->route);
        free(wt);
    }
    s->wait_tail = &s->waiting;

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

// s_ckpt_path names range id's checkpoint under the job's output directory.
static void
s_ckpt_path(const s_server_t *s, uint32_t id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/checkpoints/range-%u.ckpt", s->node.cfg->out, id);
}

// s_checkpoint writes every range this server holds: parameters, the rule's
// state, the update count and each worker's last applied sequence number,
// each file atomically. Returns the number of ranges that failed.
static int
s_checkpoint(s_server_t *s)
{
    char dir[DS_STR_MAX + 32];
    snprintf(dir, sizeof dir, "%s/checkpoints", s->node.cfg->out);
    int bad = ds_mkdirs(dir) == 0 ? 0 : 1;
    for (uint32_t i = 0; !bad && s->held && i < s->map.nranges; i++) {
        s_range_t *r = s->held[i];
        if (!r) {
            continue;
        }
        uint64_t *seq = calloc(s->nworkers ? s->nworkers : 1, sizeof *seq);
        if (!seq) {
            bad++;
            continue;
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
        char path[DS_STR_MAX + 64], err[DS_STR_MAX + 128];
        s_ckpt_path(s, i, path, sizeof path);
        if (ds_ckpt_write(path, &c, err, sizeof err) != 0) {
            ds_log(DS_ERROR, "server", "checkpoint: %s", err);
            bad++;
        }
        free(seq);
    }
    return bad;
}

// s_restore loads range r's checkpoint for a resumed job. Returns 0 or a
// negative errno (logged).
static int
s_restore(s_server_t *s, s_range_t *r)
{
    char      path[DS_STR_MAX + 64], err[DS_STR_MAX + 128];
    ds_ckpt_t c;
    s_ckpt_path(s, r->r.id, path, sizeof path);
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

// s_take_map installs a shard map from the scheduler: allocates and
// initializes every range whose primary we are.
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
    for (size_t i = 0; i < pb->n_nodes; i++) {
        if (pb->nodes[i]->role == DESCENT__ROLE__WORKER) {
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
    const ds_config_t *cfg = s->node.cfg;
    // The initial model: every server builds the same seeded vector and
    // keeps its ranges, so the values do not depend on placement.
    float *init = NULL;
    if (ds_job_init(cfg) != DS_INIT_ZEROS) {
        ds_model_t model;
        char       merr[256] = "the model's size differs from the map's";
        if (ds_job_model(&model, cfg, pb->dim, (int)pb->classes, merr,
                         sizeof merr) != 0 ||
            model.num_params != m.num_keys) {
            ds_log(DS_ERROR, "server", "cannot build the initial model: %s",
                   merr);
            return -EINVAL;
        }
        init = malloc(model.num_params * sizeof *init);
        if (init) {
            ds_model_init_params(&model, init, ds_job_init(cfg),
                                 cfg->init_scale, cfg->seed);
        }
        ds_model_fini(&model);
        if (!init) {
            return -ENOMEM;
        }
    }
    uint64_t nkeys = 0;
    uint32_t nheld = 0;
    for (uint32_t i = 0; i < m.nranges; i++) {
        if (m.ranges[i].primary != s->node.id) {
            continue;
        }
        s_range_t *r = calloc(1, sizeof *r);
        uint64_t   n = m.ranges[i].end - m.ranges[i].begin;
        if (!r || !(r->w = calloc(n, sizeof(float))) ||
            ds_optim_state_init(&r->st, &s->opt, n) != 0 ||
            ds_ssp_init(&r->ssp, s->nworkers, s->staleness) != 0 ||
            (s->dtada && ds_dtada_init(&r->dt, n, s->nworkers * s->slots,
                                       s->node.cfg->dt_z0) != 0)) {
            if (r) {
                ds_optim_state_fini(&r->st);
                ds_ssp_fini(&r->ssp);
                ds_dtada_fini(&r->dt);
                free(r->w);
            }
            free(r);
            free(init);
            return -ENOMEM;
        }
        r->r = m.ranges[i];
        ds_rng_seed(&r->noise, cfg->seed, 0x6e6f697365ull + r->r.id);
        if (init) {
            memcpy(r->w, init + r->r.begin, n * sizeof(float));
        }
        s->held[i] = r;
        nkeys += n;
        nheld++;
    }
    free(init);
    // A resumed job continues every range from its checkpoint: the model,
    // the rule's state, the update count and the sequence table.
    uint64_t done = 0;
    for (uint32_t i = 0; cfg->resume && i < m.nranges; i++) {
        if (s->held[i]) {
            int rrc = s_restore(s, s->held[i]);
            if (rrc != 0) {
                return rrc;
            }
            done = s->held[i]->updates;
        }
    }
    // The schedule counts updates per range; total_updates is the number
    // of pushes every range will see in the rest of the job.
    char serr[256];
    if (ds_schedule_from_config(&s->lr, cfg, done + pb->total_updates,
                                cfg->epochs, serr, sizeof serr) != 0) {
        ds_log(DS_ERROR, "server", "%s", serr);
        return -EINVAL;
    }
    if (cfg->resume) {
        ds_log(DS_INFO, "server", "resumed %u ranges at %" PRIu64 " updates",
               nheld, done);
    }
    ds_log(DS_INFO, "server",
           "node %u holds %" PRIu64 " of %" PRIu64 " keys in %u of %u "
           "ranges (map epoch %" PRIu64 ")",
           s->node.id, nkeys, m.num_keys, nheld, m.nranges, m.epoch);
    return 0;
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
        Descent__Header r;
        ds_msg_header_init(&r, DESCENT__TYPE__STATS);
        r.n_stale_updates = STALE_BUCKETS;
        r.stale_updates = s->stale_upd;
        r.n_stale_clocks = STALE_BUCKETS;
        r.stale_clocks = s->stale_clk;
        ds_node_send(n, &r);
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
    if (s->serving && h->map->epoch <= s->map.epoch) {
        return;
    }
    s->serving = false;
    int rc = s_take_map(s, h->map);
    if (rc != 0) {
        ds_node_stop(n, 1, "cannot take the shard map");
        return;
    }
    n->epoch = s->map.epoch;
    s->serving = true;
    Descent__Header r;
    ds_msg_header_init(&r, DESCENT__TYPE__READY);
    r.address = s->advertised;
    ds_node_send(n, &r);
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
    ds_log(DS_DEBUG, "server", "refused %s from node %u: %s",
           msg->hdr ? ds_msg_type_name(msg->hdr->type) : "message",
           msg->hdr ? msg->hdr->sender : 0, why);
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

// s_reply_values answers a read by worker `sender` with the current values
// of its keys; dtadagrad remembers what that read saw.
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

// s_applied accounts for a push just applied to r: its staleness in
// updates (since the values its gradient was computed from) and in clocks
// (how far the fastest worker is ahead of it), its clock commit, and the
// range's update count.
static void
s_applied(s_server_t *s, s_range_t *r, const Descent__Header *h)
{
    s_count(s->stale_upd,
            h->based_on <= r->updates ? r->updates - h->based_on : 0);
    s_commit(s, r, h->sender, h->clock);
    s_count(s->stale_clk, r->max_clock - h->clock);
    r->updates++;
    s->pushes++;
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

// s_sparse serves a sparse PULL or PUSH: only the keys in the keys frame,
// sorted and unique, all within range r. A push's rule runs on the
// gathered parameters and state of those keys, which are then scattered
// back, so every update rule works on sparse keys too.
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
    uint64_t *keys = malloc(n * sizeof *keys);
    if (!keys) {
        s_refuse(s, msg, reply, DESCENT__STATUS__TOO_LARGE, "out of memory");
        return;
    }
    memcpy(keys, zmq_msg_data(&msg->keys), n * sizeof *keys);
    for (size_t i = 0; i < n; i++) {
        if (keys[i] < r->r.begin || keys[i] >= r->r.end ||
            (i > 0 && keys[i] <= keys[i - 1])) {
            snprintf(why, sizeof why,
                     "key %" PRIu64 " (at %zu) is outside range %u or out of "
                     "order",
                     keys[i], i, h->shard);
            free(keys);
            s_refuse(s, msg, reply, DESCENT__STATUS__OUT_OF_RANGE, why);
            return;
        }
    }
    int nb = r->st.nbuf;
    if (s_grow(&s->scratch, &s->scratch_n, n) != 0 ||
        s_grow(&s->gw, &s->gw_n, n * (size_t)(1 + nb)) != 0) {
        free(keys);
        s_refuse(s, msg, reply, DESCENT__STATUS__TOO_LARGE, "out of memory");
        return;
    }
    float          *gw = s->gw; // gathered parameters, then state arrays
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
        double lr = ds_schedule_lr(&s->lr, r->updates);
        if (s_seen_before(s, s->row[h->sender], h->shard, h->seq)) {
            s->dups++;
        } else {
            if (s->node.cfg->noise_eta > 0) {
                ds_noise_add(&r->noise, s->scratch, n,
                             ds_noise_sigma(s->node.cfg->noise_eta,
                                            s->node.cfg->noise_gamma,
                                            r->updates));
            }
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
            s_applied(s, r, h);
            s_release(s);
        }
        out.lr = lr;
        out.clock = r->updates;
        int rc = ds_msg_send(s->data.sock, &msg->route, &out, NULL, NULL);
        if (rc != 0) {
            ds_log(DS_WARN, "server", "reply dropped: %s", zmq_strerror(-rc));
        }
        free(keys);
        return;
    }
    // A sparse read is not held back by bsp or ssp: the keys a batch
    // touches change every step; commits still count.
    s->pulls++;
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

static void
s_handle(s_server_t *s, ds_msg_t *msg)
{
    const Descent__Header *h = msg->hdr;
    Descent__Type          reply =
        h->type == DESCENT__TYPE__PUSH   ? DESCENT__TYPE__PUSH_ACK
                 : h->type == DESCENT__TYPE__PULL ? DESCENT__TYPE__PULL_REPLY
                                                  : DESCENT__TYPE__ERROR;
    char why[256];
    if (h->type == DESCENT__TYPE__CLOCK && s->serving &&
        strcmp(h->job, s->node.cfg->job) == 0 && h->sender <= s->max_id &&
        s->row[h->sender] >= 0) {
        // Fire and forget: a commit, or a worker that has ended and holds
        // nobody back any more.
        if (h->finished) {
            for (uint32_t i = 0; i < s->map.nranges; i++) {
                if (s->held[i]) {
                    ds_ssp_finish(&s->held[i]->ssp,
                                  (unsigned)s->row[h->sender]);
                }
            }
        } else {
            s_commit(s, NULL, h->sender, h->clock);
        }
        s_release(s);
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
        s_refuse(s, msg, reply, DESCENT__STATUS__STALE_EPOCH, why);
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
    float          *w = r->w + (h->key_begin - r->r.begin);
    size_t          n = (size_t)h->key_count;
    Descent__Header out;
    s_reply_header(s, &out, reply, h->seq, h->shard, h->key_begin,
                   h->key_count);
    bool with_values = h->type == DESCENT__TYPE__PULL || h->pull;
    if (h->type == DESCENT__TYPE__PUSH) {
        const float *g = ds_msg_vals(msg);
        bool         noisy = s->node.cfg->noise_eta > 0;
        if (!g || noisy) {
            if (s->scratch_n < n) {
                float *t = realloc(s->scratch, n * sizeof *t);
                if (!t) {
                    s_refuse(s, msg, reply, DESCENT__STATUS__TOO_LARGE,
                             "out of memory for the values");
                    return;
                }
                s->scratch = t;
                s->scratch_n = n;
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
        bool   dup = s_seen_before(s, s->row[h->sender], h->shard, h->seq);
        double lr = ds_schedule_lr(&s->lr, r->updates);
        if (dup) {
            s->dups++;
            s_commit(s, r, h->sender, h->clock);
        } else {
            if (noisy) {
                // Noise is drawn here, once per applied update, so that
                // its variance anneals with the range's own update count.
                ds_noise_add(&r->noise, s->scratch, n,
                             ds_noise_sigma(s->node.cfg->noise_eta,
                                            s->node.cfg->noise_gamma,
                                            r->updates));
            }
            size_t off = h->key_begin - r->r.begin;
            if (s->dtada) {
                ds_dtada_update(&r->dt,
                                s_slot(s, s->row[h->sender], h->based_read),
                                off, w, g, n, lr, s->node.cfg->dt_beta);
            } else if (s->easgd) {
                // EASGD: the push is the elastic difference d; the center
                // moves toward the worker, center += d.
                ds_easgd_center_add(w, g, n);
            } else {
                ds_optim_step(&s->opt, &r->st, off, w, g, n, lr);
            }
            s_applied(s, r, h);
        }
        out.lr = lr;
        out.clock = r->updates;
    } else {
        s->pulls++;
        out.clock = r->updates;
    }
    if (h->type == DESCENT__TYPE__PUSH) {
        s_release(s);
    }
    if (!with_values) {
        if (s_fault(s)) {
            return;
        }
        int rc = ds_msg_send(s->data.sock, &msg->route, &out, NULL, NULL);
        if (rc != 0) {
            ds_log(DS_WARN, "server", "reply to node %u dropped: %s", h->sender,
                   zmq_strerror(-rc));
        }
        return;
    }
    out.value_count = n;
    out.dtype = DESCENT__DTYPE__F32;
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
            s_refuse(s, msg, reply, DESCENT__STATUS__BAD_REQUEST, why);
            return;
        }
        s_hold(s, msg, &out);
        return;
    }
    s_reply_values(s, &msg->route, msg, &out, h->sender, h->read_id);
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
        ds_log(DS_WARN, "server", "bad request%s: %s",
               msg.hdr ? "" : " (no header)", err);
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

// s_nheld counts the ranges this server holds.
static uint32_t
s_nheld(const s_server_t *s)
{
    uint32_t n = 0;
    for (uint32_t i = 0; s->held && i < s->map.nranges; i++) {
        n += s->held[i] != NULL;
    }
    return n;
}

// s_on_ckpt_timer writes a periodic checkpoint. It runs on the loop: a
// range's write is a few sequential MiB at most here; large models would
// want a snapshot copy written on the thread pool instead.
static void
s_on_ckpt_timer(uv_timer_t *t)
{
    s_server_t *s = t->data;
    if (s->serving) {
        s_checkpoint(s);
    }
}

static void
s_on_stop(ds_node_t *n)
{
    s_server_t *s = n->role_data;
    if (s->serving) {
        int bad = s_checkpoint(s);
        ds_log(bad ? DS_WARN : DS_INFO, "server",
               "checkpoint of %u ranges written to %s/checkpoints%s",
               s_nheld(s), n->cfg->out, bad ? " with errors" : "");
    }
    if (s->ckpt_open) {
        uv_close((uv_handle_t *)&s->ckpt, NULL);
        s->ckpt_open = false;
    }
    if (s->data_open) {
        ds_zsock_close(&s->data, NULL);
        s->data_open = false;
    }
    ds_log(DS_INFO, "server",
           "node %u: %" PRIu64 " pushes applied, %" PRIu64 " pulls, %" PRIu64
           " duplicates, %" PRIu64 " refused (%" PRIu64 " non-finite), %" PRIu64
           " reads held back, %" PRIu64 " replies dropped by fault injection",
           n->id, s->pushes, s->pulls, s->dups, s->refused, s->nonfinite,
           s->holds, s->faults);
}

int
ds_server_main(const ds_config_t *cfg)
{
    uv_loop_t  loop;
    s_server_t s;
    memset(&s, 0, sizeof s);
    uv_loop_init(&loop);
    s.node = (ds_node_t){.cfg = cfg,
                         .loop = &loop,
                         .who = "server",
                         .role = DESCENT__ROLE__SERVER,
                         .on_msg = s_on_sched_msg,
                         .on_stop = s_on_stop,
                         .role_data = &s};
    char oerr[256];
    if (ds_job_optim(&s.opt, cfg, oerr, sizeof oerr) != 0) {
        ds_log(DS_ERROR, "server", "%s", oerr);
        uv_loop_close(&loop);
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
    ds_log(DS_INFO, "server", "serving on %s (advertised as %s)", s.bound,
           s.advertised);
    rc = ds_node_start(&s.node, s.advertised);
    if (rc != 0) {
        ds_zsock_close(&s.data, NULL);
        if (s.ckpt_open) {
            uv_close((uv_handle_t *)&s.ckpt, NULL);
            s.ckpt_open = false;
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        goto fail;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    s_free_ranges(&s);
    ds_node_fini(&s.node);
    if (uv_loop_close(&loop) != 0) {
        ds_log(DS_WARN, "server", "loop closed with handles still open");
    }
    return s.node.exit_code;
fail:
    s_free_ranges(&s);
    ds_node_fini(&s.node);
    uv_loop_close(&loop);
    return 1;
}
