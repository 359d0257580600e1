// SPDX-License-Identifier: MIT
// worker - a model replica: trains on its partition, pushes and pulls.
//
// One libuv loop drives everything; gradients, evaluation and data loading
// run on libuv's thread pool so that heartbeats keep flowing. A training
// step is: (pull when due) -> compute on the pool -> (push when due, with
// the pull of the next step folded into the push's reply) -> next step.
#include "worker/worker.h"

#include <cblas.h>
#include <pthread.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/curriculum.h"
#include "common/easgd.h"
#include "common/idx.h"
#include "common/log.h"
#include "common/node.h"
#include "common/optim.h"
#include "common/rng.h"
#include "common/safetensors.h"
#include "common/schedule.h"
#include "common/shard_map.h"
#include "common/job.h"
#include "common/libsvm.h"
#include "common/logreg.h"
#include "common/model.h"
#include "common/util.h"

// s_conn_t is the link to one server.
typedef struct {
    uint32_t   id;                  // server node id
    char       address[DS_STR_MAX]; // its data endpoint
    ds_zsock_t z;                   // DEALER connected to it
    bool       open;                // z initialized and not closed
    void      *owner;               // the s_worker_t
} s_conn_t;

typedef enum {
    W_LOADING,  // reading the partition
    W_WAIT_MAP, // waiting for the shard map
    W_TRAINING, // steps in progress
    W_BARRIER,  // waiting for every worker to finish
    W_FINAL,    // final pull and evaluation (rank 0)
    W_DONE,     // DONE sent
} s_state_t;

typedef struct {
    ds_node_t        node;      // scheduler link; node.role_data is us
    s_state_t        state;     // where we are
    ds_dataset_t     train;     // our partition; owned
    ds_dataset_t     test;      // the test set (rank 0); owned
    ds_dataset_t     val;       // the validation split (rank 0); owned
    uint64_t         num_keys;  // model size
    float           *w;         // local parameters; owned
    float           *grad;      // last mini-batch gradient; owned
    float           *accrued;   // sum of gradients since the last push; owned
    uint64_t         reads;     // reads (pulls) made so far; ids of reads
    bool             sparse;    // the model is sparse logreg on libsvm data
    ds_sparse_t      strain;    // sparse: our partition; owned
    ds_sparse_t      stest;     // sparse: the test set (rank 0); owned
    uint64_t        *keys;      // sparse: the keys this batch touches; owned
    size_t           keys_cap;  // sparse: capacity of keys
    size_t           nkeys;     // sparse: keys in use
    float           *wk;        // sparse: pulled values of keys; owned
    float           *gk;        // sparse: gradient at keys; owned
    size_t           wk_cap;    // sparse: capacity of wk and gk
    size_t          *seg_lo;    // sparse: first key of each range; owned
    size_t          *seg_n;     // sparse: keys in each range; owned
    bool             have_keys; // sparse: this step's keys are pulled
    bool             sparse_round; // sparse: the round in flight is sparse
    bool             stop_asked;   // the scheduler stopped training early
    Descent__Header *sent;         // per range: the request in flight; owned
    float           *sent_vals;    // the values of pushes in flight; owned
    uv_timer_t       retry;        // re-sends requests not yet answered
    ds_rng_t         frng;         // fault injection: which sends to drop
    uint64_t         resent;       // requests sent again
    uint64_t         dropped;      // requests dropped by fault injection
    uint64_t         delayed;      // requests held back by fault injection
    struct s_late   *late;         // those not yet sent; owned
    uv_timer_t       late_timer;   // sends them when due
    bool             sending_late; // s_on_late is sending one
    uint64_t         step_base;    // resume: steps of the epochs already done
    bool             unpushed;     // gradient accrued since the last push
    float           *best_running; // rank 0: BN statistics of the best epoch
    ds_early_t       early;        // rank 0: tracks the best validation epoch
    float           *best;         // rank 0: the model of that epoch; owned
    uint32_t         best_epoch;   // rank 0: the epoch of best, 0 = none
    bool             early_stop;   // rank 0: early stopping ended training
    bool             order_due;    // curriculum: order the next epoch first
    float           *losses;       // curriculum: per-example difficulty; owned
    int              nthreads;     // Hogwild! threads per step
    ds_model_ws_t  **tws;          // per thread: gradient scratch; owned
    float          **tgrad;        // per thread: its batch's gradient; owned
    uint64_t         epoch_step;   // steps done in the current epoch
    uint64_t         resume_step;  // a rejoining worker: steps already done
    uint32_t         part;         // the partition trained: the rank's, or
                                   // one adopted from a worker that died
    bool      adopting;            // loading an adopted partition
    uint64_t  adopt_step;          // its last reported step
    uint64_t  bytes_sent;          // bytes of values sent to servers
    uint64_t  bytes_recv;          // bytes of messages received from servers
    uint64_t  grad_read;           // the read the accrued gradient is based on
    uint64_t *delayr;              // delay: the read each held push is based on
    float    *center;              // easgd: the center as last pulled; owned
    float    *elastic;             // easgd: d = alpha (x - center); owned
    float    *velocity;            // easgd: the EAMSGD momentum buffer; owned
    float    *look;                // easgd: x + delta v, where EAMSGD's
                                   // gradient is taken; owned
    float         *pull_into;      // where pulled values go: w, or center
    bool           easgd;          // the algorithm is easgd
    bool           have_center;    // easgd: center pulled for this step
    bool           eval_center;    // easgd: the pending eval is of the center
    ds_schedule_t  sched;          // easgd: the local steps' schedule
    uint32_t      *order;          // visiting order of the partition; owned
    ds_rng_t       rng;            // curriculum: the uniformly drawn share
    ds_model_t     model;          // the model's description and BN statistics
    ds_model_ws_t *ws;             // gradient scratch (pool thread); owned
    ds_model_ws_t *ews;            // evaluation scratch (pool thread); owned
    ds_shard_map_t map;            // the shard map
    s_conn_t      *conns;          // one per server; owned
    uint32_t       nconns;         // entries in conns
    uint32_t      *range_conn;     // conn index of each range; owned
    uint64_t      *range_seq;      // outstanding request seq per range; owned
    uint64_t      *acked;          // pushes acknowledged per range; owned
    const float   *sparse_vals;    // sparse: values of the push in flight
    Descent__Type *range_want;     // reply type expected per range; owned
    uint64_t      *range_version;  // per range: the server's update count
                                   // when our values of it were read; owned
    float *delayq;                 // delay: held-back pushes, a ring of
                                   // delay slots of num_keys; owned
    uint64_t  *delayv;             // delay: their range versions; owned
    uint32_t   dq_head;            // delay: oldest slot
    uint32_t   dq_len;             // delay: slots in use
    uint32_t   pending;            // replies still awaited
    bool       fresh;              // w was just refreshed by a push's reply
    uv_timer_t deadline;           // reply deadline
    uv_timer_t progress;           // periodic REPORT
    uv_work_t  work;               // the pool job in flight
    bool       busy;               // work is in flight
    int        job_rc;             // pool job result
    char       job_err[512];       // pool job error
    double     job_loss;           // pool job: mini-batch loss or eval loss
    size_t     job_correct;        // pool job: correct predictions
    double     test_loss;          // last evaluation: test loss
    double     test_acc;           // last evaluation: test accuracy
    double     val_loss;           // last evaluation: validation loss, or NaN
    double     val_acc;            // last evaluation: validation accuracy
    size_t     batch_n;            // examples in the current mini-batch
    uint64_t   step;               // steps done
    uint64_t   steps_total;        // steps planned
    uint64_t   steps_per_epoch;    // steps per epoch
    uint32_t   epoch;              // current epoch, 1-based
    size_t     pos;                // next example of order
    double     loss_sum;           // sum of mini-batch losses this epoch
    uint64_t   correct;            // correct predictions this epoch
    uint64_t   seen;               // examples this epoch
    uint64_t   examples;           // examples processed in all
    double     lr;         // local step size, the last rate the servers used
    bool       final_eval; // the eval in flight is the final one
} s_worker_t;

static void s_next(s_worker_t *w);

// s_nworkers is the number of workers in the job: the scheduler's count
// (elastic jobs learn it when they register), else the setting.
static unsigned
s_nworkers(const s_worker_t *w)
{
    return w->node.workers ? w->node.workers : (unsigned)w->node.cfg->workers;
}

static void
s_fail(s_worker_t *w, const char *why)
{
    if (w->node.stopping) {
        return;
    }
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__DONE);
    h.status = DESCENT__STATUS__REFUSED;
    h.error = (char *)why;
    ds_node_send(&w->node, &h);
    ds_node_stop(&w->node, 1, why);
}

// s_running_len is the number of floats of m's batch-norm statistics: a
// mean and a variance per unit of every hidden layer.
static size_t
s_running_len(const ds_model_t *m)
{
    size_t n = 0;
    for (int l = 0; m->running && l + 1 < m->nlayers; l++) {
        n += 2 * m->sizes[l + 1];
    }
    return n;
}

static void
s_report(s_worker_t *w, bool epoch_end, bool evaluated, Descent__Type type,
         bool final)
{
    Descent__Report r;
    descent__report__init(&r);
    // After the last epoch w->epoch has moved past it; report the last one.
    r.epoch = w->epoch <= (uint32_t)w->node.cfg->epochs
                  ? w->epoch
                  : (uint32_t)w->node.cfg->epochs;
    r.step = w->step;
    r.steps_total = w->steps_total;
    r.examples = w->examples;
    r.train_loss = w->seen ? w->loss_sum / (double)(w->seen) : NAN;
    r.train_accuracy = w->seen ? (double)w->correct / (double)w->seen : NAN;
    r.test_loss = evaluated ? w->test_loss : NAN;
    r.test_accuracy = evaluated ? w->test_acc : NAN;
    r.val_loss = evaluated ? w->val_loss : NAN;
    r.val_accuracy = evaluated ? w->val_acc : NAN;
    r.epoch_end = epoch_end;
    r.bytes_sent = w->bytes_sent;
    r.bytes_received = w->bytes_recv;
    r.n_acked = w->acked ? w->map.nranges : 0;
    r.acked = w->acked;
    r.final = final;
    // Rank 0 alone decides early stopping, on the model it keeps: the
    // scheduler relays STOP and reports this epoch as the best.
    r.best_epoch = w->best ? w->best_epoch : 0;
    r.stop_early = w->early_stop;
    Descent__Header h;
    ds_msg_header_init(&h, type);
    h.status = DESCENT__STATUS__OK;
    h.report = &r;
    ds_node_send(&w->node, &h);
}

// ---- data loading (pool thread) -------------------------------------------

static void
s_load_work(uv_work_t *req)
{
    s_worker_t        *w = req->data;
    const ds_config_t *cfg = w->node.cfg;
    char               img[DS_STR_MAX + 64], lab[DS_STR_MAX + 64];
    if (!w->adopting) {
        w->part = w->node.rank;
    }
    const char *names[4] = {"train-images-idx3-ubyte",
                            "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                            "t10k-labels-idx1-ubyte"};
    if (strcmp(cfg->format, "libsvm") == 0) {
        ds_libsvm_opts_t o = {.hash_bits = (unsigned)cfg->hash_bits,
                              .part = w->part,
                              .nparts = s_nworkers(w),
                              .limit = (size_t)cfg->limit};
        w->job_rc = ds_libsvm_load(&w->strain, cfg->train_file, &o, w->job_err,
                                   sizeof w->job_err);
        if (w->job_rc == 0 && w->node.rank == 0 && w->stest.n == 0) {
            o.part = 0;
            o.nparts = 1;
            o.limit = (size_t)cfg->test_limit;
            w->job_rc = ds_libsvm_load(&w->stest, cfg->test_file, &o,
                                       w->job_err, sizeof w->job_err);
        }
        // The training loop counts examples in train.n; the rows live in
        // strain.
        w->train.n = w->strain.n;
        w->train.classes = 2;
        return;
    }
    for (int i = 0; i < 4; i++) {
        char p[DS_STR_MAX + 64];
        w->job_rc = ds_idx_find(cfg->data_dir, names[i], p, sizeof p,
                                w->job_err, sizeof w->job_err);
        if (w->job_rc != 0) {
            return;
        }
    }
    ds_find_file(cfg->data_dir, names[0], img, sizeof img);
    ds_find_file(cfg->data_dir, names[1], lab, sizeof lab);
    // Of the first m examples, the last `validation` are held out; the rest
    // are cut into one contiguous partition per worker.
    uint64_t n = 0;
    w->job_rc = ds_idx_count(img, &n, w->job_err, sizeof w->job_err);
    if (w->job_rc != 0) {
        return;
    }
    uint64_t m =
        cfg->limit > 0 && (uint64_t)cfg->limit < n ? (uint64_t)cfg->limit : n;
    uint64_t v = (uint64_t)cfg->validation;
    if (v >= m) {
        snprintf(w->job_err, sizeof w->job_err,
                 "[data] validation: %llu held-out examples leave none of "
                 "the %llu to train on",
                 (unsigned long long)v, (unsigned long long)m);
        w->job_rc = -EINVAL;
        return;
    }
    uint64_t nw = s_nworkers(w), rank = w->part;
    w->job_rc = ds_idx_load_range(&w->train, img, lab, rank * (m - v) / nw,
                                  (rank + 1) * (m - v) / nw, w->job_err,
                                  sizeof w->job_err);
    if (w->job_rc != 0 || w->node.rank != 0 || w->test.n > 0) {
        return; // only rank 0 evaluates, and loads its sets once
    }
    if (v > 0) {
        w->job_rc = ds_idx_load_range(&w->val, img, lab, m - v, m, w->job_err,
                                      sizeof w->job_err);
        if (w->job_rc != 0) {
            return;
        }
    }
    ds_find_file(cfg->data_dir, names[2], img, sizeof img);
    ds_find_file(cfg->data_dir, names[3], lab, sizeof lab);
    w->job_rc = ds_idx_load(&w->test, img, lab, (size_t)cfg->test_limit, 0, 1,
                            w->job_err, sizeof w->job_err);
    if (w->job_rc == 0 && w->test.dim != w->train.dim) {
        snprintf(w->job_err, sizeof w->job_err,
                 "test images have %zu features, training images %zu",
                 w->test.dim, w->train.dim);
        w->job_rc = -EINVAL;
    }
}

// s_plan counts the steps of the partition: a step is one mini-batch per
// Hogwild! thread, each thread's slice at most ceil(n / threads) examples.
static void
s_plan(s_worker_t *w)
{
    const ds_config_t *cfg = w->node.cfg;
    size_t             bs = (size_t)cfg->batch_size;
    w->nthreads = cfg->threads > 0 ? cfg->threads : 1;
    size_t slice = (w->train.n + (size_t)w->nthreads - 1) / (size_t)w->nthreads;
    w->steps_per_epoch = (slice + bs - 1) / bs;
    if (w->model.batchnorm && w->train.n % bs == 1) {
        w->steps_per_epoch--; // the last batch of one is skipped
    }
    w->steps_total = w->steps_per_epoch * (uint64_t)cfg->epochs;
}

static void
s_load_done(uv_work_t *req, int status)
{
    s_worker_t        *w = req->data;
    const ds_config_t *cfg = w->node.cfg;
    w->busy = false;
    if (w->node.stopping) {
        return;
    }
    if (status != 0 || w->job_rc != 0) {
        s_fail(w, w->job_err[0] ? w->job_err : "cannot load the data");
        return;
    }
    if (w->train.n == 0) {
        s_fail(w, "this worker's partition of the training set is empty");
        return;
    }
    int classes = w->train.classes;
    if (w->node.rank == 0 && w->test.classes > classes) {
        classes = w->test.classes;
    }
    w->train.classes = classes;
    char merr[256];
    if (ds_job_model(&w->model, cfg, w->train.dim, classes, merr,
                     sizeof merr) != 0) {
        s_fail(w, merr);
        return;
    }
    w->sparse = strcmp(cfg->model, "logreg") == 0;
    w->num_keys =
        w->sparse ? (uint64_t)1 << cfg->hash_bits : w->model.num_params;
    size_t bs = (size_t)cfg->batch_size;
    s_plan(w);
    w->w = calloc(w->num_keys, sizeof(float));
    w->grad = calloc(w->num_keys, sizeof(float));
    w->accrued = calloc(w->num_keys, sizeof(float));
    w->order = malloc(w->train.n * sizeof *w->order);
    if (!w->w || !w->grad || !w->accrued || !w->order ||
        (!w->sparse && (!(w->ws = ds_model_ws_new(&w->model, bs)) ||
                        !(w->ews = ds_model_ws_new(&w->model, 1024))))) {
        s_fail(w, "out of memory for the model");
        return;
    }
    for (size_t i = 0; i < w->train.n; i++) {
        w->order[i] = (uint32_t)i;
    }
    if (w->nthreads > 1) {
        w->tws = calloc((size_t)w->nthreads, sizeof *w->tws);
        w->tgrad = calloc((size_t)w->nthreads, sizeof *w->tgrad);
        for (int k = 0; w->tws && w->tgrad && k < w->nthreads; k++) {
            w->tws[k] = ds_model_ws_new(&w->model, bs);
            w->tgrad[k] = calloc(w->num_keys, sizeof(float));
        }
        for (int k = 0; k < w->nthreads; k++) {
            if (!w->tws || !w->tgrad || !w->tws[k] || !w->tgrad[k]) {
                s_fail(w, "out of memory for the Hogwild! threads");
                return;
            }
        }
    }
    w->pull_into = w->w;
    w->easgd = strcmp(cfg->algorithm, "easgd") == 0;
    ds_early_init(&w->early, cfg->patience, cfg->min_delta);
    if (cfg->patience > 0 && w->node.rank == 0) {
        w->best = malloc(w->num_keys * sizeof(float));
        size_t rl = s_running_len(&w->model);
        if (rl > 0) {
            w->best_running = malloc(rl * sizeof(float));
        }
        if (!w->best || (rl > 0 && !w->best_running)) {
            s_fail(w, "out of memory for the best model");
            return;
        }
    }
    if (strcmp(cfg->curriculum, "off") != 0) {
        w->losses = malloc(w->train.n * sizeof(float));
        if (!w->losses) {
            s_fail(w, "out of memory for the curriculum");
            return;
        }
        w->order_due = true;
    }
    if (w->easgd) {
        w->center = calloc(w->num_keys, sizeof(float));
        w->elastic = calloc(w->num_keys, sizeof(float));
        w->velocity = calloc(w->num_keys, sizeof(float));
        w->look = calloc(w->num_keys, sizeof(float));
        char serr[256];
        if (!w->center || !w->elastic || !w->velocity || !w->look ||
            ds_schedule_from_config(&w->sched, cfg, w->steps_total, cfg->epochs,
                                    serr, sizeof serr) != 0) {
            s_fail(w, "cannot set up the EASGD worker");
            return;
        }
    }
    ds_rng_seed(&w->rng, cfg->seed, 1000 + w->part);
    if (w->sparse) {
        // Sparse rows have no dense width; their features are hashed keys.
        ds_log(DS_INFO, "worker",
               "rank %u: %zu training examples, %.1f features a row, "
               "hashed into %" PRIu64 " keys, %" PRIu64 " steps",
               w->node.rank, w->train.n,
               w->strain.n ? (double)w->strain.nnz / (double)w->strain.n : 0.0,
               w->num_keys, w->steps_total);
    } else {
        ds_log(DS_INFO, "worker",
               "rank %u: %zu training examples, %zu features, %d classes, "
               "%" PRIu64 " steps",
               w->node.rank, w->train.n, w->train.dim, classes, w->steps_total);
    }
    w->state = W_WAIT_MAP;
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__READY);
    h.num_keys = w->num_keys;
    h.dim = w->train.dim;
    h.classes = (uint32_t)classes;
    // Pushes per range: every n_push steps (downpour, dtadagrad), every
    // tau steps (easgd's elastic exchanges).
    uint64_t every = strcmp(cfg->algorithm, "easgd") == 0
                         ? (uint64_t)cfg->tau
                         : (uint64_t)cfg->n_push;
    h.planned = (w->steps_total + every - 1) / every;
    ds_node_send(&w->node, &h);
}

// ---- talking to servers ----------------------------------------------------

static void
s_on_deadline(uv_timer_t *t)
{
    s_worker_t *w = t->data;
    for (uint32_t i = 0; i < w->map.nranges; i++) {
        if (w->range_seq[i] != 0) {
            const s_conn_t *c = &w->conns[w->range_conn[i]];
            char            why[DS_STR_MAX + 128];
            snprintf(why, sizeof why,
                     "server %u at %s did not answer within %d ms%s", c->id,
                     c->address, w->node.cfg->request_timeout_ms,
                     strcmp(w->node.cfg->consistency, "async") != 0
                         ? " (under bsp and ssp a read also waits for the "
                           "slowest worker)"
                         : "");
            s_fail(w, why);
            return;
        }
    }
}

// s_request_header fills h for a request of `type` about range `shard`:
// our identity, a fresh sequence number, the map's epoch, our clock (the
// steps done) and the read id (0 when the request reads nothing).
static void
s_request_header(s_worker_t *w, Descent__Header *h, Descent__Type type,
                 uint32_t shard, uint64_t read)
{
    ds_msg_header_init(h, type);
    h->job = (char *)w->node.cfg->job;
    h->sender = w->node.id;
    h->seq = ++w->node.seq;
    h->epoch = w->map.epoch;
    h->shard = shard;
    h->clock = w->step;
    h->read_id = read;
}

// s_late_t is a request fault injection holds back ([cluster]
// fault_delay_ms): range `range`'s request `seq`, sent when due if it is
// still unanswered.
typedef struct s_late {
    uint64_t       due;   // loop time to send it
    uint32_t       range; // its range
    uint64_t       seq;   // its sequence number
    struct s_late *next;  // the next held request
} s_late_t;

static int s_send_sparse_one(s_worker_t *w, uint32_t i,
                             const Descent__Header *h, const float *vals);
static int s_send_one(s_worker_t *w, uint32_t i, const Descent__Header *h,
                      const float *vals);

// s_on_late sends the held-back requests that are due.
static void
s_on_late(uv_timer_t *t)
{
    s_worker_t *w = t->data;
    uint64_t    now = uv_now(w->node.loop);
    for (s_late_t **p = &w->late; *p;) {
        s_late_t *l = *p;
        if (l->due > now) {
            p = &l->next;
            continue;
        }
        *p = l->next;
        uint32_t i = l->range;
        if (!w->node.stopping && i < w->map.nranges &&
            w->range_seq[i] == l->seq && w->sent[i].seq == l->seq) {
            w->sending_late = true;
            if (w->sparse_round) {
                s_send_sparse_one(w, i, &w->sent[i], w->sparse_vals);
            } else {
                s_send_one(w, i, &w->sent[i],
                           w->sent_vals + w->map.ranges[i].begin);
            }
            w->sending_late = false;
        }
        free(l);
    }
    if (!w->late) {
        uv_timer_stop(t);
    }
}

// s_fault_send says whether fault injection takes request h of range i:
// dropped ([cluster] fault_drop) or held back (fault_delay_ms).
static bool
s_fault_send(s_worker_t *w, uint32_t i, const Descent__Header *h)
{
    const ds_config_t *cfg = w->node.cfg;
    if (cfg->fault_drop > 0 && ds_rng_uniform(&w->frng) < cfg->fault_drop) {
        w->dropped++;
        return true;
    }
    if (cfg->fault_delay_ms == 0 || w->sending_late) {
        return false;
    }
    s_late_t *l = malloc(sizeof *l);
    if (!l) {
        return false;
    }
    l->due = uv_now(w->node.loop) +
             (uint64_t)(ds_rng_uniform(&w->frng) * cfg->fault_delay_ms);
    l->range = i;
    l->seq = h->seq;
    l->next = w->late;
    w->late = l;
    w->delayed++;
    if (!uv_is_active((uv_handle_t *)&w->late_timer)) {
        uv_timer_start(&w->late_timer, s_on_late, 1, 1);
    }
    return true;
}

// s_send_one sends request h for range i (values from vals when a push),
// unless fault injection drops or holds it back. Returns 0 or a negative
// errno.
static int
s_send_one(s_worker_t *w, uint32_t i, const Descent__Header *h,
           const float *vals)
{
    if (s_fault_send(w, i, h)) {
        return 0;
    }
    void *sock = w->conns[w->range_conn[i]].z.sock;
    if (h->type == DESCENT__TYPE__PUSH) {
        w->bytes_sent += h->key_count * sizeof(float);
        return ds_msg_send_f32(sock, NULL, h, vals, (size_t)h->key_count);
    }
    return ds_msg_send(sock, NULL, h, NULL, NULL);
}

static void s_on_retry(uv_timer_t *t);

// s_send_all sends a PUSH (values from accrued) or a PULL for every range.
static void
s_send_all(s_worker_t *w, Descent__Type type, bool pull, const float *vals,
           const uint64_t *versions, uint64_t based_read)
{
    // One read id for the whole round: every range is read at once.
    uint64_t read = (type == DESCENT__TYPE__PULL || pull) ? ++w->reads : 0;
    w->pending = 0;
    for (uint32_t i = 0; i < w->map.nranges; i++) {
        const ds_range_t *r = &w->map.ranges[i];
        Descent__Header   h;
        s_request_header(w, &h, type, i, read);
        h.key_begin = r->begin;
        h.key_count = r->end - r->begin;
        h.pull = pull;
        h.based_on = versions ? versions[i] : 0;
        h.based_read = based_read;
        if (type == DESCENT__TYPE__PUSH) {
            h.value_count = h.key_count;
            h.dtype = DESCENT__DTYPE__F32;
            // Kept until acknowledged, so that a retry sends the same.
            memcpy(w->sent_vals + r->begin, vals + r->begin,
                   (size_t)h.key_count * sizeof(float));
        }
        w->sent[i] = h;
        int rc = s_send_one(w, i, &h, w->sent_vals + r->begin);
        if (rc != 0) {
            char why[256];
            snprintf(why, sizeof why, "cannot send %s to server %u: %s",
                     ds_msg_type_name(type), r->primary, zmq_strerror(-rc));
            s_fail(w, why);
            return;
        }
        w->range_seq[i] = h.seq;
        w->range_want[i] = type == DESCENT__TYPE__PUSH
                               ? DESCENT__TYPE__PUSH_ACK
                               : DESCENT__TYPE__PULL_REPLY;
        w->pending++;
    }
    uv_timer_start(&w->deadline, s_on_deadline,
                   (uint64_t)w->node.cfg->request_timeout_ms, 0);
    uint64_t retry = (uint64_t)w->node.cfg->retry_ms;
    uv_timer_start(&w->retry, s_on_retry, retry, retry);
}

// s_on_retry sends again every dense request still unanswered, with its
// sequence number: a server applies a push once whatever it receives, and
// answers a read again. Sparse rounds are sent again the same way.
static void
s_resend(s_worker_t *w)
{
    for (uint32_t i = 0; i < w->map.nranges; i++) {
        if (w->range_seq[i] == 0) {
            continue;
        }
        // The same request, under the map in force: after a failover it
        // goes to the range's new primary, which applies a push it already
        // has (from the old primary's chain) never twice.
        w->sent[i].epoch = w->map.epoch;
        int rc;
        if (w->sparse_round) {
            rc = s_send_sparse_one(w, i, &w->sent[i], w->sparse_vals);
        } else {
            rc = s_send_one(w, i, &w->sent[i],
                            w->sent_vals + w->map.ranges[i].begin);
        }
        if (rc == 0) {
            w->resent++;
        }
    }
}

static void
s_on_retry(uv_timer_t *t)
{
    s_worker_t *w = t->data;
    if (w->pending == 0 || w->node.stopping) {
        uv_timer_stop(&w->retry);
        return;
    }
    s_resend(w);
}

// s_send_sparse_one sends sparse request h for range i: this step's keys
// of the range and, for a push, their values from vals. Returns 0 or a
// negative errno.
static int
s_send_sparse_one(s_worker_t *w, uint32_t i, const Descent__Header *h,
                  const float *vals)
{
    size_t    n = w->seg_n[i], lo = w->seg_lo[i];
    zmq_msg_t k, v;
    if (s_fault_send(w, i, h)) {
        return 0;
    }
    if (zmq_msg_init_size(&k, n * sizeof(uint64_t)) != 0) {
        return -ENOMEM;
    }
    memcpy(zmq_msg_data(&k), w->keys + lo, n * sizeof(uint64_t));
    zmq_msg_t *vp = NULL;
    if (h->type == DESCENT__TYPE__PUSH) {
        if (zmq_msg_init_size(&v, n * sizeof(float)) != 0) {
            zmq_msg_close(&k);
            return -ENOMEM;
        }
        memcpy(zmq_msg_data(&v), vals + lo, n * sizeof(float));
        vp = &v;
        w->bytes_sent += n * (sizeof(float) + sizeof(uint64_t));
    }
    return ds_msg_send(w->conns[w->range_conn[i]].z.sock, NULL, h, &k, vp);
}

// s_send_sparse sends a sparse PULL (vals NULL) or PUSH of this step's keys,
// one message per range that holds some of them.
static void
s_send_sparse(s_worker_t *w, Descent__Type type, const float *vals)
{
    w->pending = 0;
    w->sparse_round = true;
    w->sparse_vals = vals;
    uint64_t read = type == DESCENT__TYPE__PULL ? ++w->reads : 0;
    for (uint32_t i = 0; i < w->map.nranges; i++) {
        size_t n = w->seg_n[i];
        if (n == 0) {
            continue;
        }
        Descent__Header h;
        s_request_header(w, &h, type, i, read);
        h.key_count = n;
        h.sparse = true;
        h.based_on = w->range_version[i];
        if (vals) {
            h.value_count = n;
            h.dtype = DESCENT__DTYPE__F32;
        }
        w->sent[i] = h;
        int rc = s_send_sparse_one(w, i, &h, vals);
        if (rc != 0) {
            char why[256];
            snprintf(why, sizeof why, "cannot send %s to server %u: %s",
                     ds_msg_type_name(type), w->map.ranges[i].primary,
                     zmq_strerror(-rc));
            s_fail(w, why);
            return;
        }
        w->range_seq[i] = h.seq;
        w->range_want[i] = type == DESCENT__TYPE__PUSH
                               ? DESCENT__TYPE__PUSH_ACK
                               : DESCENT__TYPE__PULL_REPLY;
        w->pending++;
    }
    uv_timer_start(&w->deadline, s_on_deadline,
                   (uint64_t)w->node.cfg->request_timeout_ms, 0);
    uint64_t retry = (uint64_t)w->node.cfg->retry_ms;
    uv_timer_start(&w->retry, s_on_retry, retry, retry);
}

// s_sparse_keys finds the keys the next batch touches and where each
// range's share of them starts. Returns 0 or -ENOMEM.
static int
s_sparse_keys(s_worker_t *w)
{
    if (ds_logreg_batch_keys(&w->strain, w->order + w->pos, w->batch_n,
                             &w->keys, &w->keys_cap, &w->nkeys) != 0) {
        return -ENOMEM;
    }
    if (w->wk_cap < w->nkeys) {
        float *a = realloc(w->wk, w->nkeys * sizeof *a);
        if (a) {
            w->wk = a;
        }
        float *b = realloc(w->gk, w->nkeys * sizeof *b);
        if (b) {
            w->gk = b;
        }
        if (!a || !b) {
            return -ENOMEM;
        }
        w->wk_cap = w->nkeys;
    }
    // Keys are sorted and ranges are contiguous: one pass cuts them.
    size_t k = 0;
    for (uint32_t i = 0; i < w->map.nranges; i++) {
        w->seg_lo[i] = k;
        while (k < w->nkeys && w->keys[k] < w->map.ranges[i].end) {
            k++;
        }
        w->seg_n[i] = k - w->seg_lo[i];
    }
    return 0;
}

static void
s_on_server(ds_zsock_t *z, void *arg)
{
    s_conn_t       *c = arg;
    s_worker_t     *w = c->owner;
    ds_msg_t        msg;
    char            err[256] = "";
    Descent__Status st;
    int rc = ds_msg_take(z->sock, false, &w->node.limits, &msg, &st, err,
                         sizeof err);
    if (rc == -EAGAIN) {
        ds_msg_fini(&msg);
        return;
    }
    char why[1024];
    if (rc != 0) {
        snprintf(why, sizeof why, "bad reply from server %u: %s", c->id, err);
        ds_msg_fini(&msg);
        s_fail(w, why);
        return;
    }
    const Descent__Header *h = msg.hdr;
    w->bytes_recv += msg.bytes;
    // A reply counts only if it answers the request in flight for that range,
    // from the server holding it, with the type that request expects.
    if (h->shard >= w->map.nranges || w->range_seq[h->shard] != h->seq ||
        c != &w->conns[w->range_conn[h->shard]] ||
        h->type != w->range_want[h->shard]) {
        ds_log(DS_DEBUG, "worker",
               "late or unknown reply seq %" PRIu64 " from server %u", h->seq,
               c->id);
        ds_msg_fini(&msg);
        return;
    }
    if (h->status == DESCENT__STATUS__STALE_EPOCH ||
        h->status == DESCENT__STATUS__NOT_READY) {
        // A map change under way (the server or we are behind) or a fenced
        // server: the request stays in flight and goes again, under the
        // newest map, with the next retry.
        ds_log(DS_DEBUG, "worker", "server %u: %s; sending again", c->id,
               h->error);
        ds_msg_fini(&msg);
        return;
    }
    if (h->status != DESCENT__STATUS__OK) {
        snprintf(why, sizeof why, "server %u refused %s of range %u: %s (%s)",
                 c->id,
                 h->type == DESCENT__TYPE__PUSH_ACK ? "a push" : "a pull",
                 h->shard, h->error, ds_msg_status_name(h->status));
        ds_msg_fini(&msg);
        s_fail(w, why);
        return;
    }
    const ds_range_t *r = &w->map.ranges[h->shard];
    if (h->value_count > 0 && w->sparse_round) {
        if (h->value_count != w->seg_n[h->shard]) {
            snprintf(why, sizeof why,
                     "server %u sent %" PRIu64 " values for %zu keys", c->id,
                     h->value_count, w->seg_n[h->shard]);
            ds_msg_fini(&msg);
            s_fail(w, why);
            return;
        }
        ds_msg_copy_vals(&msg, w->wk + w->seg_lo[h->shard]);
        w->range_version[h->shard] = h->clock;
    } else if (h->value_count > 0) {
        if (h->key_begin != r->begin || h->value_count != r->end - r->begin) {
            snprintf(why, sizeof why,
                     "server %u sent values for the wrong "
                     "keys",
                     c->id);
            ds_msg_fini(&msg);
            s_fail(w, why);
            return;
        }
        ds_msg_copy_vals(&msg, w->pull_into + r->begin);
        w->range_version[h->shard] = h->clock;
    }
    if (h->type == DESCENT__TYPE__PUSH_ACK && h->lr > 0) {
        w->lr = h->lr;
    }
    if (h->type == DESCENT__TYPE__PUSH_ACK) {
        w->acked[h->shard]++;
    }
    w->range_seq[h->shard] = 0;
    ds_msg_fini(&msg);
    if (--w->pending == 0) {
        uv_timer_stop(&w->deadline);
        uv_timer_stop(&w->retry);
        w->pull_into = w->w;
        w->sparse_round = false;
        s_next(w);
    }
}

static int
s_connect(s_worker_t *w, const Descent__ShardMap *pb)
{
    char err[256];
    int  rc = ds_shard_map_from_pb(&w->map, pb, err, sizeof err);
    if (rc != 0) {
        s_fail(w, err);
        return rc;
    }
    if (w->map.num_keys != w->num_keys) {
        s_fail(w, "the shard map's model size differs from ours");
        return -EPROTO;
    }
    w->conns = calloc(pb->n_nodes, sizeof *w->conns);
    w->range_conn = calloc(w->map.nranges, sizeof *w->range_conn);
    w->range_seq = calloc(w->map.nranges, sizeof *w->range_seq);
    w->acked = calloc(w->map.nranges, sizeof *w->acked);
    w->range_want = calloc(w->map.nranges, sizeof *w->range_want);
    w->range_version = calloc(w->map.nranges, sizeof *w->range_version);
    ds_rng_seed(&w->frng, w->node.cfg->seed, 0xfa017ull + w->node.rank);
    w->sent = calloc(w->map.nranges, sizeof *w->sent);
    w->sent_vals = calloc(w->num_keys, sizeof *w->sent_vals);
    if (!w->sent || !w->sent_vals) {
        s_fail(w, "out of memory");
        return -ENOMEM;
    }
    w->seg_lo = calloc(w->map.nranges, sizeof *w->seg_lo);
    w->seg_n = calloc(w->map.nranges, sizeof *w->seg_n);
    if (!w->seg_lo || !w->seg_n) {
        s_fail(w, "out of memory");
        return -ENOMEM;
    }
    size_t d = (size_t)w->node.cfg->delay;
    if (d > 0) {
        w->delayq = malloc(d * w->num_keys * sizeof *w->delayq);
        w->delayv = malloc(d * w->map.nranges * sizeof *w->delayv);
        w->delayr = malloc(d * sizeof *w->delayr);
        if (!w->delayq || !w->delayv || !w->delayr) {
            s_fail(w, "out of memory for held-back pushes");
            return -ENOMEM;
        }
    }
    if (!w->conns || !w->range_conn || !w->range_seq || !w->acked ||
        !w->range_want || !w->range_version) {
        s_fail(w, "out of memory");
        return -ENOMEM;
    }
    const ds_config_t *cfg = w->node.cfg;
    for (size_t i = 0; i < pb->n_nodes; i++) {
        const Descent__Node *nd = pb->nodes[i];
        if (nd->role != DESCENT__ROLE__SERVER) {
            continue;
        }
        s_conn_t *c = &w->conns[w->nconns];
        c->id = nd->id;
        c->owner = w;
        snprintf(c->address, sizeof c->address, "%s", nd->address);
        void *s = ds_zsock_open(w->node.ctx, ZMQ_DEALER, 0,
                                (long long)cfg->max_message_mb << 20);
        if (!s || zmq_connect(s, nd->address) != 0) {
            char why[DS_STR_MAX + 64];
            snprintf(why, sizeof why, "cannot connect to server %u at %s",
                     nd->id, nd->address);
            if (s) {
                zmq_close(s);
            }
            s_fail(w, why);
            return -EINVAL;
        }
        if (ds_zsock_init(&c->z, w->node.loop, s, s_on_server, c) != 0) {
            zmq_close(s);
            s_fail(w, "cannot watch a server's socket");
            return -EIO;
        }
        c->open = true;
        w->nconns++;
    }
    for (uint32_t i = 0; i < w->map.nranges; i++) {
        for (uint32_t k = 0; k < w->nconns; k++) {
            if (w->conns[k].id == w->map.ranges[i].primary) {
                w->range_conn[i] = k;
            }
        }
    }
    return 0;
}

// ---- compute (pool thread) -------------------------------------------------

// s_hog_t is one Hogwild! thread's share of a step: its own mini-batch.
typedef struct {
    s_worker_t *w;       // the worker
    int         k;       // thread index
    size_t      pos;     // first position in the visiting order
    size_t      n;       // examples
    double      loss;    // mean loss of its batch
    size_t      correct; // correct predictions
} s_hog_t;

// s_hog_run computes one batch's gradient at the shared parameters and
// applies it to them at once. Hogwild! (Niu et al. 2011): the threads read
// and write w->w concurrently without locks, on purpose; a thread may see a
// mix of old and new coordinates. The gradient is also kept for the push.
static void *
s_hog_run(void *arg)
{
    s_hog_t    *h = arg;
    s_worker_t *w = h->w;
    float      *g = w->tgrad[h->k];
    h->loss =
        ds_model_grad(&w->model, w->tws[h->k], w->w, w->train.x, w->train.y,
                      w->order + h->pos, h->n, g, &h->correct);
    ds_clip_norm(g, w->num_keys, w->node.cfg->clip_norm);
    ds_sgd_apply(w->w, g, w->num_keys, (float)w->lr);
    return NULL;
}

// s_hog_step runs the step's batches on nthreads threads (this pool thread
// and nthreads - 1 more), then accrues their gradients for the push.
static void
s_hog_step(s_worker_t *w)
{
    size_t    bs = (size_t)w->node.cfg->batch_size;
    s_hog_t   hs[64];
    pthread_t tid[64];
    int       nt = 0;
    // Thread k works through its own slice of the epoch's order, one
    // mini-batch per step.
    size_t n = w->train.n, t = (size_t)w->nthreads;
    for (size_t k = 0; k < t; k++) {
        size_t lo = k * n / t, hi = (k + 1) * n / t;
        size_t at = lo + (size_t)w->epoch_step * bs;
        if (at >= hi) {
            continue;
        }
        size_t m = hi - at < bs ? hi - at : bs;
        hs[nt] = (s_hog_t){.w = w, .k = nt, .pos = at, .n = m};
        nt++;
    }
    int started = 1;
    for (int k = 1; k < nt; k++) {
        if (pthread_create(&tid[k], NULL, s_hog_run, &hs[k]) != 0) {
            break;
        }
        started++;
    }
    // Batches whose thread could not start run here, after batch 0.
    for (int k = 0; k < nt; k++) {
        if (k == 0 || k >= started) {
            s_hog_run(&hs[k]);
        }
    }
    for (int k = 1; k < started; k++) {
        pthread_join(tid[k], NULL);
    }
    double loss = 0;
    w->job_correct = 0;
    for (int k = 0; k < nt; k++) {
        const float *g = w->tgrad[k];
        for (uint64_t i = 0; i < w->num_keys; i++) {
            w->accrued[i] += g[i];
        }
        loss += hs[k].loss * (double)hs[k].n;
        w->job_correct += hs[k].correct;
    }
    w->job_loss = loss / (double)w->batch_n;
}

static void
s_step_work(uv_work_t *req)
{
    s_worker_t *w = req->data;
    size_t      n = w->batch_n;
    if (w->sparse) {
        w->job_loss = ds_logreg_grad(&w->strain, w->order + w->pos, n, w->keys,
                                     w->wk, w->nkeys, w->gk, &w->job_correct);
        ds_clip_norm(w->gk, w->nkeys, w->node.cfg->clip_norm);
        return;
    }
    if (w->nthreads > 1) {
        s_hog_step(w);
        return;
    }
    // EAMSGD takes the gradient at the look-ahead point x + delta v; EASGD
    // and Downpour at x. Either way before any elastic move of this step.
    const float *at = w->w;
    if (w->easgd && w->node.cfg->easgd_delta > 0) {
        ds_eamsgd_lookahead(w->look, w->w, w->velocity, w->num_keys,
                            (float)w->node.cfg->easgd_delta);
        at = w->look;
    }
    w->job_loss = ds_model_grad(&w->model, w->ws, at, w->train.x, w->train.y,
                                w->order + w->pos, n, w->grad, &w->job_correct);
    // Clipping needs the whole gradient, which only a worker has.
    ds_clip_norm(w->grad, w->num_keys, w->node.cfg->clip_norm);
    if (w->easgd) {
        return;
    }
    // Downpour: accrue the gradient for the next push and step locally with
    // the rate the servers last applied.
    float lr = (float)w->lr;
    for (uint64_t i = 0; i < w->num_keys; i++) {
        w->accrued[i] += w->grad[i];
        w->w[i] -= lr * w->grad[i];
    }
}

static void
s_eval_work(uv_work_t *req)
{
    s_worker_t  *w = req->data;
    const float *m = w->eval_center && w->easgd ? w->center : w->w;
    if (w->sparse) {
        size_t correct = 0;
        w->test_loss = ds_logreg_eval(&w->stest, w->w, w->num_keys, &correct);
        w->test_acc = w->stest.n ? (double)correct / (double)w->stest.n : NAN;
        w->val_loss = w->val_acc = NAN;
        return;
    }
    w->test_loss = ds_model_eval(&w->model, w->ews, m, w->test.x, w->test.y,
                                 w->test.n, &w->test_acc);
    w->val_loss = w->val_acc = NAN;
    if (w->val.n > 0) {
        w->val_loss = ds_model_eval(&w->model, w->ews, m, w->val.x, w->val.y,
                                    w->val.n, &w->val_acc);
    }
}

static void s_step_done(uv_work_t *req, int status);
static void s_order_done(uv_work_t *req, int status);

// s_order_work orders the partition for the coming epoch: by each
// example's loss under the current model, easy first (a curriculum), and
// with mixed, a share of positions drawn uniformly instead.
static void
s_order_work(uv_work_t *req)
{
    s_worker_t *w = req->data;
    for (size_t i = 0; i < w->train.n; i++) {
        w->order[i] = (uint32_t)i;
    }
    ds_model_losses(&w->model, w->ews, w->w, w->train.x, w->train.y, w->order,
                    w->train.n, w->losses);
    w->job_rc = ds_curriculum_order(w->losses, w->order, w->train.n);
    if (w->job_rc == 0 && strcmp(w->node.cfg->curriculum, "mixed") == 0) {
        ds_curriculum_mix(w->order, w->train.n, w->node.cfg->curriculum_mix,
                          &w->rng);
    }
}
static void s_eval_done(uv_work_t *req, int status);

static void
s_queue(s_worker_t *w, uv_work_cb fn, uv_after_work_cb done)
{
    w->busy = true;
    w->work.data = w;
    uv_queue_work(w->node.loop, &w->work, fn, done);
}

static void
s_finish(s_worker_t *w)
{
    w->state = W_DONE;
    s_report(w, false, false, DESCENT__TYPE__DONE, false);
}

// s_write_model saves the model to <out>/model.safetensors. Returns 0 or a
// negative errno with why naming the file and the errno's text.
static int
s_write_model(s_worker_t *w, double acc, char *why, size_t whylen)
{
    const ds_config_t *cfg = w->node.cfg;
    char path[DS_STR_MAX + 32], err[512], accs[32], eps[16], ep[16];
    snprintf(path, sizeof path, "%s/model.safetensors", cfg->out);
    snprintf(accs, sizeof accs, "%.6f", acc);
    snprintf(eps, sizeof eps, "%d", cfg->epochs);
    // The epoch these parameters are from: early stopping's best, or the
    // last one trained (w->epoch has moved past it).
    snprintf(ep, sizeof ep, "%u",
             w->best && w->best_epoch > 0 ? w->best_epoch : w->epoch - 1);
    // The layout of model.h, one tensor per block, PyTorch's names.
    const ds_model_t *m = &w->model;
    ds_tensor_t       t[DS_MODEL_MAX_LAYERS * 6];
    char              names[DS_MODEL_MAX_LAYERS * 6][48];
    size_t            nt = 0, off = 0, run = 0;
    if (w->sparse) {
        // Key-indexed weights; key 0 is the bias.
        t[nt++] = (ds_tensor_t){
            .name = "weight", .data = w->w, .ndim = 1, .shape = {w->num_keys}};
    }
    for (int l = 0; l < m->nlayers; l++) {
        uint64_t    in = m->sizes[l], out = m->sizes[l + 1];
        bool        hidden = l + 1 < m->nlayers;
        const char *blocks[] = {"weight", "bias", "bn.weight", "bn.bias"};
        int         nb = hidden && m->batchnorm ? 4 : 2;
        for (int b = 0; b < nb; b++) {
            if (m->kind == DS_MODEL_SOFTMAX) {
                snprintf(names[nt], sizeof names[nt], "%s", blocks[b]);
            } else {
                snprintf(names[nt], sizeof names[nt], "layers.%d.%s", l,
                         blocks[b]);
            }
            t[nt] = (ds_tensor_t){.name = names[nt],
                                  .data = w->w + off,
                                  .ndim = b == 0 ? 2 : 1,
                                  .shape = {out, b == 0 ? in : 0}};
            off += b == 0 ? out * in : out;
            nt++;
        }
        if (hidden && m->batchnorm) {
            const char *stats[] = {"bn.running_mean", "bn.running_var"};
            for (int b = 0; b < 2; b++) {
                snprintf(names[nt], sizeof names[nt], "layers.%d.%s", l,
                         stats[b]);
                t[nt] = (ds_tensor_t){.name = names[nt],
                                      .data = m->running + run,
                                      .ndim = 1,
                                      .shape = {out}};
                run += out;
                nt++;
            }
        }
    }
    const char *meta[] = {"format", "pt",     "model",         cfg->model,
                          "job",    cfg->job, "test_accuracy", accs,
                          "epochs", eps,      "epoch",         ep,
                          NULL};
    int         rc = ds_mkdirs(cfg->out);
    if (rc == 0) {
        rc = ds_safetensors_write(path, t, nt, meta, err, sizeof err);
    } else {
        snprintf(err, sizeof err, "cannot create %s: %s", cfg->out,
                 strerror(-rc));
    }
    if (rc != 0) {
        return ds_err(why, whylen, rc, "model not saved: %s", err);
    }
    ds_log(DS_INFO, "worker", "model saved to %s", path);
    return 0;
}

static void
s_order_done(uv_work_t *req, int status)
{
    s_worker_t *w = req->data;
    w->busy = false;
    if (w->node.stopping || status != 0) {
        return;
    }
    if (w->job_rc != 0) {
        s_fail(w, "out of memory ordering the curriculum");
        return;
    }
    w->order_due = false;
    s_next(w);
}

static void
s_eval_done(uv_work_t *req, int status)
{
    s_worker_t *w = req->data;
    w->busy = false;
    if (w->node.stopping || status != 0) {
        return;
    }
    w->eval_center = false;
    if (w->final_eval) {
        char why[1024];
        if (s_write_model(w, w->test_acc, why, sizeof why) != 0) {
            s_fail(w, why);
            return;
        }
        w->state = W_DONE;
        s_report(w, false, true, DESCENT__TYPE__DONE, true);
        return;
    }
    bool improved = false;
    if (w->node.cfg->patience > 0 && isfinite(w->val_loss) && w->best &&
        ds_early_observe(&w->early, w->val_loss, &improved)) {
        w->early_stop = true;
        w->stop_asked = true;
        ds_log(DS_INFO, "worker",
               "validation loss has not improved for %d epochs: stopping "
               "early; the model of epoch %u is kept",
               w->node.cfg->patience, w->best_epoch);
    }
    if (improved && w->best) {
        const float *m = w->easgd ? w->center : w->w;
        w->best_epoch = w->epoch;
        memcpy(w->best, m, w->num_keys * sizeof(float));
        if (w->best_running) {
            memcpy(w->best_running, w->model.running,
                   s_running_len(&w->model) * sizeof(float));
        }
    }
    s_report(w, true, true, DESCENT__TYPE__REPORT, false);
    w->loss_sum = 0;
    w->correct = w->seen = 0;
    w->epoch++;
    s_next(w);
}

// s_order_epoch sets the visiting order of epoch e: the file order, or
// with shuffle its own seeded permutation, the first epoch's included. The
// curriculum orders its epochs itself (s_order_work).
static void
s_order_epoch(s_worker_t *w, uint32_t e)
{
    if (w->losses) {
        return;
    }
    if (w->node.cfg->shuffle) {
        ds_rng_epoch_order(w->node.cfg->seed, 1000 + w->part, e, w->order,
                           w->train.n);
        return;
    }
    for (size_t i = 0; i < w->train.n; i++) {
        w->order[i] = (uint32_t)i;
    }
}

// s_end_epoch reports the epoch (rank 0 evaluates first) and orders the
// next one.
static void
s_end_epoch(s_worker_t *w)
{
    w->pos = 0;
    w->epoch_step = 0;
    if (w->losses) {
        w->order_due = true;
    }
    s_order_epoch(w, w->epoch + 1);
    if (w->node.rank == 0) {
        w->final_eval = false;
        if (w->easgd || w->sparse) {
            // The center (easgd) or the servers' model (sparse workers only
            // hold the keys they touch) is what is evaluated: pull it.
            w->eval_center = true;
            w->pull_into = w->easgd ? w->center : w->w;
            s_send_all(w, DESCENT__TYPE__PULL, false, NULL, NULL, 0);
            return;
        }
        s_queue(w, s_eval_work, s_eval_done);
        return;
    }
    s_report(w, true, false, DESCENT__TYPE__REPORT, false);
    w->loss_sum = 0;
    w->correct = w->seen = 0;
    w->epoch++;
    s_next(w);
}

// s_push_accrued pushes the accrued gradient (with the next step's pull
// folded in when pull). With [train] delay = d, the gradient is held back
// and the one accrued d pushes ago goes instead, with the versions it was
// computed from; until d are held, only the pull (if any) goes out.
static void
s_push_accrued(s_worker_t *w, bool pull)
{
    uint32_t d = (uint32_t)w->node.cfg->delay;
    size_t   nk = w->num_keys, nr = w->map.nranges;
    if (d == 0) {
        s_send_all(w, DESCENT__TYPE__PUSH, pull, w->accrued, w->range_version,
                   w->grad_read);
    } else if (w->dq_len < d) {
        uint32_t slot = (w->dq_head + w->dq_len++) % d;
        memcpy(w->delayq + slot * nk, w->accrued, nk * sizeof(float));
        memcpy(w->delayv + slot * nr, w->range_version, nr * sizeof(uint64_t));
        w->delayr[slot] = w->grad_read;
        if (pull) {
            s_send_all(w, DESCENT__TYPE__PULL, false, NULL, NULL, 0);
        } else {
            w->fresh = false;
        }
    } else {
        uint32_t slot = w->dq_head;
        w->dq_head = (w->dq_head + 1) % d;
        s_send_all(w, DESCENT__TYPE__PUSH, pull, w->delayq + slot * nk,
                   w->delayv + slot * nr, w->delayr[slot]);
        memcpy(w->delayq + slot * nk, w->accrued, nk * sizeof(float));
        memcpy(w->delayv + slot * nr, w->range_version, nr * sizeof(uint64_t));
        w->delayr[slot] = w->grad_read;
    }
    if (!w->node.stopping) {
        memset(w->accrued, 0, nk * sizeof(float));
    }
    if (w->pending == 0 && !w->node.stopping) {
        s_next(w);
    }
}

// s_send_clock tells every server this worker's clock (the steps it has
// completed) on a step without a push, or that it has finished: under bsp
// and ssp, reads wait on the slowest worker's clock.
static void
s_send_clock(s_worker_t *w, bool finished)
{
    for (uint32_t k = 0; k < w->nconns; k++) {
        Descent__Header h;
        ds_msg_header_init(&h, DESCENT__TYPE__CLOCK);
        h.job = (char *)w->node.cfg->job;
        h.sender = w->node.id;
        h.seq = ++w->node.seq;
        h.epoch = w->map.epoch;
        h.clock = w->step;
        h.finished = finished;
        ds_msg_send(w->conns[k].z.sock, NULL, &h, NULL, NULL);
    }
}

// s_flush_or_finish pushes what delay still holds back, one push per call;
// when nothing is left it tells every server that this worker has ended
// (so that bsp and ssp reads stop waiting for it) and joins the barrier.
static void
s_flush_or_finish(s_worker_t *w)
{
    uint32_t d = (uint32_t)w->node.cfg->delay;
    if (w->unpushed) {
        // The gradient of the steps since the last push goes too.
        w->unpushed = false;
        s_push_accrued(w, false);
        return;
    }
    if (w->dq_len > 0) {
        uint32_t slot = w->dq_head;
        w->dq_head = (w->dq_head + 1) % d;
        w->dq_len--;
        s_send_all(w, DESCENT__TYPE__PUSH, false,
                   w->delayq + slot * w->num_keys,
                   w->delayv + slot * w->map.nranges, w->delayr[slot]);
        return;
    }
    s_send_clock(w, true);
    w->state = W_BARRIER;
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__BARRIER);
    h.barrier = "trained";
    ds_node_send(&w->node, &h);
}

// s_easgd_step ends EASGD step s: the elastic move when the center was
// pulled for it (d = alpha (x - center), x -= d, and d pushed so that the
// center moves by +d), then the local step from the gradient taken before
// the move: SGD, or EAMSGD's Nesterov step.
static void
s_easgd_step(s_worker_t *w, uint64_t s)
{
    const ds_config_t *cfg = w->node.cfg;
    size_t             nk = w->num_keys;
    bool               exchange = w->have_center;
    float              alpha =
        (float)(cfg->easgd_alpha > 0 ? cfg->easgd_alpha : 0.9 / s_nworkers(w));
    if (exchange) {
        ds_easgd_elastic(w->w, w->center, w->elastic, nk, alpha);
        w->have_center = false;
    }
    float eta = (float)ds_schedule_lr(&w->sched, w->step_base + s);
    if (cfg->easgd_delta > 0) {
        ds_eamsgd_step(w->w, w->velocity, w->grad, nk, eta,
                       (float)cfg->easgd_delta);
    } else {
        ds_easgd_sgd_step(w->w, w->grad, nk, eta);
    }
    if (exchange) {
        s_send_all(w, DESCENT__TYPE__PUSH, false, w->elastic, w->range_version,
                   0);
        return;
    }
    if (strcmp(cfg->consistency, "async") != 0) {
        s_send_clock(w, false);
    }
    s_next(w);
}

static void
s_step_done(uv_work_t *req, int status)
{
    s_worker_t        *w = req->data;
    const ds_config_t *cfg = w->node.cfg;
    w->busy = false;
    if (w->node.stopping || status != 0) {
        return;
    }
    w->loss_sum += w->job_loss * (double)w->batch_n;
    w->correct += w->job_correct;
    w->seen += w->batch_n;
    w->examples += w->batch_n;
    w->pos += w->batch_n;
    w->epoch_step++;
    uint64_t s = w->step++;
    if (w->sparse) {
        s_send_sparse(w, DESCENT__TYPE__PUSH, w->gk);
        return;
    }
    if (w->easgd) {
        s_easgd_step(w, s);
        return;
    }
    // The literal Downpour rule: push when step % n_push == 0. The next
    // step's pull rides on the push's reply when it is due then.
    if (s % (uint64_t)cfg->n_push == 0) {
        bool pull = w->step % (uint64_t)cfg->n_fetch == 0;
        w->fresh = pull;
        w->unpushed = false;
        s_push_accrued(w, pull);
        return;
    }
    w->unpushed = true;
    if (strcmp(cfg->consistency, "async") != 0) {
        s_send_clock(w, false);
    }
    s_next(w);
}

// s_next moves the training state machine one stage on.
static void
s_next(s_worker_t *w)
{
    const ds_config_t *cfg = w->node.cfg;
    if (w->node.stopping || w->busy || w->pending > 0) {
        return;
    }
    if (w->state == W_FINAL) {
        if (w->best && w->best_epoch > 0) {
            // Early stopping's result is the best epoch's model, with its
            // batch-norm statistics.
            memcpy(w->w, w->best, w->num_keys * sizeof(float));
            if (w->best_running) {
                memcpy(w->model.running, w->best_running,
                       s_running_len(&w->model) * sizeof(float));
            }
        }
        w->final_eval = true;
        s_queue(w, s_eval_work, s_eval_done);
        return;
    }
    if (w->state != W_TRAINING) {
        return;
    }
    if (w->eval_center) {
        s_queue(w, s_eval_work, s_eval_done);
        return;
    }
    if (w->pos >= w->train.n) {
        s_end_epoch(w);
        return;
    }
    if (w->step >= w->steps_total || w->stop_asked) {
        s_flush_or_finish(w);
        return;
    }
    if (w->sparse) {
        // Pull the keys the batch touches, compute, push their gradient.
        if (!w->have_keys) {
            size_t left = w->train.n - w->pos;
            w->batch_n =
                left < (size_t)cfg->batch_size ? left : (size_t)cfg->batch_size;
            if (s_sparse_keys(w) != 0) {
                s_fail(w, "out of memory for the batch's keys");
                return;
            }
            w->have_keys = true;
            s_send_sparse(w, DESCENT__TYPE__PULL, NULL);
            return;
        }
        w->have_keys = false;
        w->grad_read = w->reads;
        s_queue(w, s_step_work, s_step_done);
        return;
    }
    if (w->easgd) {
        // The first pull makes x the center; every tau steps the center is
        // pulled for the elastic exchange at the end of the step.
        if (w->step == 0 && !w->fresh) {
            w->fresh = true;
            s_send_all(w, DESCENT__TYPE__PULL, false, NULL, NULL, 0);
            return;
        }
        if (w->step % (uint64_t)cfg->tau == 0 && !w->have_center) {
            w->have_center = true;
            w->pull_into = w->center;
            s_send_all(w, DESCENT__TYPE__PULL, false, NULL, NULL, 0);
            return;
        }
    } else if (w->step % (uint64_t)cfg->n_fetch == 0 && !w->fresh) {
        w->fresh = true;
        s_send_all(w, DESCENT__TYPE__PULL, false, NULL, NULL, 0);
        return;
    }
    if (w->order_due) {
        // The curriculum orders the epoch by the model just pulled.
        s_queue(w, s_order_work, s_order_done);
        return;
    }
    w->fresh = w->easgd;
    w->grad_read = w->reads;
    size_t left = w->train.n - w->pos;
    size_t bs = (size_t)cfg->batch_size;
    w->batch_n = left < bs ? left : bs;
    if (w->nthreads > 1) {
        // One mini-batch from each thread's slice of the epoch.
        size_t n = w->train.n, t = (size_t)w->nthreads;
        w->batch_n = 0;
        for (size_t k = 0; k < t; k++) {
            size_t lo = k * n / t, hi = (k + 1) * n / t;
            size_t at = lo + (size_t)w->epoch_step * bs;
            w->batch_n += at < hi ? (hi - at < bs ? hi - at : bs) : 0;
        }
    }
    if (w->batch_n == 1 && w->model.batchnorm) {
        // Batch statistics need two examples; a last batch of one is
        // skipped (it comes back, shuffled, next epoch).
        w->pos = w->train.n;
        s_next(w);
        return;
    }
    s_queue(w, s_step_work, s_step_done);
}

// s_resume_at puts a rejoining worker where its previous incarnation last
// reported: the epoch, its visiting order (the same seeded shuffles) and the
// position in it.
static void
s_resume_at(s_worker_t *w, uint64_t step)
{
    if (step > w->steps_total) {
        step = w->steps_total;
    }
    uint64_t spe = w->steps_per_epoch ? w->steps_per_epoch : 1;
    uint64_t done_epochs = step / spe;
    w->step = step;
    w->epoch = (uint32_t)done_epochs + 1;
    s_order_epoch(w, w->epoch);
    w->epoch_step = step % spe;
    size_t n = w->train.n, t = (size_t)w->nthreads;
    size_t bs = (size_t)w->node.cfg->batch_size;
    w->pos = 0;
    for (size_t k = 0; k < t; k++) {
        size_t len = (k + 1) * n / t - k * n / t;
        size_t used = (size_t)w->epoch_step * bs;
        w->pos += used < len ? used : len;
    }
    w->examples = step * bs * t;
    ds_log(DS_INFO, "worker", "rejoined at step %" PRIu64 " (epoch %u)", step,
           w->epoch);
}

// ---- scheduler messages ----------------------------------------------------

// s_adopt_done starts training the adopted partition where its worker left
// it: the same seeded shuffles replayed, the position restored.
static void
s_adopt_done(uv_work_t *req, int status)
{
    s_worker_t        *w = req->data;
    const ds_config_t *cfg = w->node.cfg;
    w->busy = false;
    w->adopting = false;
    if (w->node.stopping) {
        return;
    }
    if (status != 0 || w->job_rc != 0 || w->train.n == 0) {
        s_fail(w, w->job_err[0] ? w->job_err
                                : "cannot load the adopted partition");
        return;
    }
    s_plan(w);
    uint32_t *order = realloc(w->order, w->train.n * sizeof *order);
    float    *losses =
        w->losses ? realloc(w->losses, w->train.n * sizeof *losses) : NULL;
    if (order) {
        w->order = order;
    }
    if (losses) {
        w->losses = losses;
        w->order_due = true;
    }
    if (!order || (w->losses && !losses)) {
        s_fail(w, "out of memory for the adopted partition");
        return;
    }
    for (size_t i = 0; i < w->train.n; i++) {
        w->order[i] = (uint32_t)i;
    }
    ds_rng_seed(&w->rng, cfg->seed, 1000 + w->part);
    if (cfg->patience > 0 && w->node.rank == 0 && !w->best) {
        w->best = malloc(w->num_keys * sizeof(float));
        size_t rl = s_running_len(&w->model);
        w->best_running = rl > 0 ? malloc(rl * sizeof(float)) : NULL;
        if (!w->best || (rl > 0 && !w->best_running)) {
            s_fail(w, "out of memory for the best model");
            return;
        }
    }
    w->loss_sum = 0;
    w->correct = 0;
    w->seen = 0;
    w->state = W_TRAINING;
    ds_log(DS_INFO, "worker",
           "adopted partition %u: %zu training examples, %" PRIu64 " steps",
           w->part, w->train.n, w->steps_total);
    s_resume_at(w, w->adopt_step);
    s_next(w);
}

// s_adopt takes over the partition of a worker that died (rank `part`)
// from the step it last reported. Rank 0's duties (evaluation) move with
// its partition.
static void
s_adopt(s_worker_t *w, uint32_t part, uint64_t step)
{
    if (part == 0) {
        w->node.rank = 0;
    }
    w->part = part;
    w->adopt_step = step;
    w->adopting = true;
    ds_dataset_fini(&w->train);
    ds_sparse_fini(&w->strain);
    w->state = W_LOADING;
    s_queue(w, s_load_work, s_adopt_done);
}

// s_remap follows a later shard map (a failover, a server back): the same
// ranges, some on other servers. Requests in flight go again at once, to
// the ranges' primaries in the new map.
static void
s_remap(s_worker_t *w, const Descent__ShardMap *pb)
{
    char           err[256];
    ds_shard_map_t m;
    if (ds_shard_map_from_pb(&m, pb, err, sizeof err) != 0) {
        s_fail(w, err);
        return;
    }
    bool same = ds_shard_map_same_ranges(&m, &w->map);
    for (size_t i = 0; same && i < pb->n_nodes; i++) {
        const Descent__Node *nd = pb->nodes[i];
        if (nd->role != DESCENT__ROLE__SERVER) {
            continue;
        }
        s_conn_t *c = NULL;
        for (uint32_t k = 0; k < w->nconns; k++) {
            c = w->conns[k].id == nd->id ? &w->conns[k] : c;
        }
        same = c != NULL;
        if (c && strcmp(c->address, nd->address) != 0) {
            // A server back at a new address.
            zmq_disconnect(c->z.sock, c->address);
            snprintf(c->address, sizeof c->address, "%s", nd->address);
            zmq_connect(c->z.sock, c->address);
        }
    }
    if (!same) {
        ds_shard_map_fini(&m);
        s_fail(w, "a later shard map changes the ranges or the servers");
        return;
    }
    ds_shard_map_fini(&w->map);
    w->map = m;
    w->node.epoch = m.epoch;
    for (uint32_t i = 0; i < w->map.nranges; i++) {
        for (uint32_t k = 0; k < w->nconns; k++) {
            if (w->conns[k].id == w->map.ranges[i].primary) {
                w->range_conn[i] = k;
            }
        }
    }
    ds_log(DS_INFO, "worker", "following shard map epoch %" PRIu64, m.epoch);
    if (w->pending > 0) {
        // The new primaries get the whole request deadline.
        uv_timer_start(&w->deadline, s_on_deadline,
                       (uint64_t)w->node.cfg->request_timeout_ms, 0);
        s_resend(w);
    }
    if (strcmp(w->node.cfg->consistency, "async") != 0) {
        // A clock the old primary took may not have reached its backup.
        s_send_clock(w, w->state >= W_BARRIER);
    }
}

static void
s_on_sched_msg(ds_node_t *n, const ds_msg_t *msg)
{
    s_worker_t            *w = n->role_data;
    const Descent__Header *h = msg->hdr;
    switch (h->type) {
    case DESCENT__TYPE__REGISTER_ACK:
        w->resume_step = h->resume_step;
        if (w->state == W_LOADING && !w->busy) {
            s_queue(w, s_load_work, s_load_done);
        }
        break;
    case DESCENT__TYPE__SHARD_MAP:
        if (h->map && w->state != W_WAIT_MAP && w->conns &&
            h->map->epoch > w->map.epoch) {
            s_remap(w, h->map);
            break;
        }
        if (w->state != W_WAIT_MAP || !h->map) {
            break;
        }
        if (s_connect(w, h->map) != 0) {
            break;
        }
        n->epoch = w->map.epoch;
        w->state = W_TRAINING;
        // A resumed job skips the epochs already done.
        uint32_t start = h->map->start_epoch;
        w->epoch = start + 1;
        s_order_epoch(w, w->epoch);
        w->step_base = (uint64_t)start * w->steps_per_epoch;
        w->steps_total =
            start < (uint32_t)w->node.cfg->epochs
                ? w->steps_per_epoch * (uint64_t)(w->node.cfg->epochs - start)
                : 0;
        if (w->resume_step > 0) {
            s_resume_at(w, w->resume_step);
        }
        s_next(w);
        break;
    case DESCENT__TYPE__STOP:
        w->stop_asked = true;
        s_next(w);
        break;
    case DESCENT__TYPE__ADOPT:
        if (w->state != W_BARRIER || w->busy || h->rank >= s_nworkers(w)) {
            // Still at the barrier, as far as the scheduler is concerned.
            ds_log(DS_WARN, "worker", "ignoring ADOPT of rank %u", h->rank);
            Descent__Header b;
            ds_msg_header_init(&b, DESCENT__TYPE__BARRIER);
            b.barrier = "trained";
            ds_node_send(&w->node, &b);
            break;
        }
        ds_log(DS_INFO, "worker",
               "adopting the partition of worker %u (rank %u) from step "
               "%" PRIu64,
               h->node_id, h->rank, h->resume_step);
        s_adopt(w, h->rank, h->resume_step);
        break;
    case DESCENT__TYPE__BARRIER_RELEASE:
        if (w->state != W_BARRIER) {
            break;
        }
        if (w->node.rank == 0) {
            w->state = W_FINAL;
            s_send_all(w, DESCENT__TYPE__PULL, false, NULL, NULL, 0);
        } else {
            s_finish(w);
        }
        break;
    default:
        break;
    }
}

static void
s_on_progress(uv_timer_t *t)
{
    s_worker_t *w = t->data;
    if (w->state == W_TRAINING) {
        s_report(w, false, false, DESCENT__TYPE__REPORT, false);
    }
}

// s_on_back tells a restarted scheduler again where this worker is: what
// was in flight when the old one died may be lost (both are idempotent).
static void
s_on_back(ds_node_t *n)
{
    s_worker_t *w = n->role_data;
    if (w->state == W_BARRIER) {
        Descent__Header h;
        ds_msg_header_init(&h, DESCENT__TYPE__BARRIER);
        h.barrier = "trained";
        ds_node_send(n, &h);
    } else if (w->state == W_DONE) {
        bool final = w->node.rank == 0;
        s_report(w, false, final, DESCENT__TYPE__DONE, final);
    } else if (w->state == W_TRAINING) {
        s_report(w, false, false, DESCENT__TYPE__REPORT, false);
    }
}

static void
s_on_stop(ds_node_t *n)
{
    s_worker_t *w = n->role_data;
    for (uint32_t i = 0; i < w->nconns; i++) {
        if (w->conns[i].open) {
            ds_zsock_close(&w->conns[i].z, NULL);
            w->conns[i].open = false;
        }
    }
    uv_close((uv_handle_t *)&w->deadline, NULL);
    uv_close((uv_handle_t *)&w->retry, NULL);
    uv_close((uv_handle_t *)&w->late_timer, NULL);
    uv_close((uv_handle_t *)&w->progress, NULL);
    while (w->late) {
        s_late_t *l = w->late;
        w->late = l->next;
        free(l);
    }
    if (w->resent || w->dropped || w->delayed) {
        ds_log(DS_INFO, "worker",
               "%" PRIu64 " requests sent again, %" PRIu64
               " dropped and %" PRIu64 " held back by fault injection",
               w->resent, w->dropped, w->delayed);
    }
    if (w->busy) {
        uv_cancel((uv_req_t *)&w->work);
    }
}

int
ds_worker_main(const ds_config_t *cfg)
{
    uv_loop_t   loop;
    s_worker_t *w = calloc(1, sizeof *w);
    if (!w) {
        return 1;
    }
    uv_loop_init(&loop);
    w->node = (ds_node_t){.cfg = cfg,
                          .loop = &loop,
                          .who = "worker",
                          .role = DESCENT__ROLE__WORKER,
                          .on_msg = s_on_sched_msg,
                          .on_stop = s_on_stop,
                          .on_back = s_on_back,
                          .role_data = w};
    w->lr = cfg->lr;
    uv_timer_init(&loop, &w->deadline);
    uv_timer_init(&loop, &w->retry);
    w->retry.data = w;
    uv_timer_init(&loop, &w->late_timer);
    w->late_timer.data = w;
    uv_timer_init(&loop, &w->progress);
    w->deadline.data = w->progress.data = w;
    int rc = ds_node_start(&w->node, "");
    if (rc != 0) {
        uv_close((uv_handle_t *)&w->deadline, NULL);
        uv_close((uv_handle_t *)&w->retry, NULL);
        uv_close((uv_handle_t *)&w->late_timer, NULL);
        uv_close((uv_handle_t *)&w->progress, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        w->node.exit_code = 1;
    } else {
        uv_timer_start(&w->progress, s_on_progress, 250, 250);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    int code = w->node.exit_code;
    ds_node_fini(&w->node);
    uv_loop_close(&loop);
    ds_dataset_fini(&w->train);
    ds_dataset_fini(&w->test);
    ds_dataset_fini(&w->val);
    ds_model_ws_destroy(&w->ws);
    ds_model_ws_destroy(&w->ews);
    ds_model_fini(&w->model);
    ds_shard_map_fini(&w->map);
    free(w->w);
    free(w->grad);
    free(w->accrued);
    free(w->order);
    free(w->conns);
    free(w->range_conn);
    free(w->range_seq);
    free(w->acked);
    free(w->range_want);
    free(w->range_version);
    free(w->delayq);
    free(w->delayv);
    free(w->delayr);
    ds_sparse_fini(&w->strain);
    ds_sparse_fini(&w->stest);
    free(w->keys);
    free(w->wk);
    free(w->gk);
    free(w->seg_lo);
    free(w->seg_n);
    for (int k = 0; w->tws && k < w->nthreads; k++) {
        ds_model_ws_destroy(&w->tws[k]);
    }
    for (int k = 0; w->tgrad && k < w->nthreads; k++) {
        free(w->tgrad[k]);
    }
    free(w->tws);
    free(w->tgrad);
    free(w->best);
    free(w->best_running);
    free(w->sent);
    free(w->sent_vals);
    free(w->losses);
    free(w->center);
    free(w->elastic);
    free(w->velocity);
    free(w->look);
    free(w);
    return code;
}
