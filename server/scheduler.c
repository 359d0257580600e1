// SPDX-License-Identifier: MIT
// scheduler - the coordinator role: membership, shard map, barriers, job end.
#include "server/scheduler.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/log.h"
#include "common/msg.h"
#include "common/schedule.h"
#include "common/shard_map.h"
#include "common/util.h"
#include "common/zsock.h"

#define MAX_RANGE_KEYS (1u << 20) // 4 MiB of float32 per range at most
#define STALE_BUCKETS 64          // staleness histogram buckets (as servers)
#define STATS_WAIT_MS 2000        // how long the end waits for statistics
#define STATE_EVERY_MS 1000       // scheduler.state: progress saved this often

// s_node_t is one registered node as the scheduler sees it.
typedef struct {
    uint32_t      id;                  // node id, index + 1
    Descent__Role role;                // server or worker
    uint32_t      rank;                // worker rank, 0..W-1
    char          address[DS_STR_MAX]; // advertised data endpoint (servers)
    zmq_msg_t     route;               // ROUTER identity to reach it
    uint64_t      heard_ms;            // loop time it was last heard
    bool          ready;               // sent READY
    bool          done;                // worker: sent DONE
    bool          at_barrier;          // worker: waiting at the barrier
    uint64_t      planned;             // worker: pushes per range it plans
    uint64_t      step;                // worker: steps so far
    uint64_t      steps_total;         // worker: steps planned
    uint64_t      examples;            // worker: examples processed
    uint64_t      bytes_sent;          // worker: value bytes pushed
    uint64_t      bytes_recv;          // worker: bytes received
    uint32_t      epoch;               // worker: epochs completed
    bool          stats;               // server: its statistics arrived
    uint32_t      incarnation;         // worker: times it has rejoined
    bool          rejoining;           // worker: rejoined, map not sent yet
    bool          dead;                // declared dead and replaced
    uint64_t      ack_seq; // elastic worker: its REGISTER, acknowledged
                           // when the set closes (0 = done)
    uint64_t lost_ms;      // worker: loop time it went silent
                           // past the timeout, 0 = heard
    uint64_t *acked;       // worker: pushes acknowledged per range, as
                           // this incarnation last reported; owned
    uint64_t *acked_base;  // worker: the same, of earlier incarnations
} s_node_t;

typedef enum {
    PHASE_JOINING,  // waiting for every node to register
    PHASE_LOADING,  // workers load their partitions
    PHASE_PLACING,  // servers take their ranges
    PHASE_TRAINING, // workers train
    PHASE_ENDED,    // shutdown sent
} s_phase_t;

// s_epoch_t aggregates one epoch's reports over the workers.
typedef struct {
    int    reports;   // workers that finished the epoch
    double loss_sum;  // sum of their mean training losses
    double acc_sum;   // sum of their training accuracies
    double test_loss; // rank 0's test loss, NaN if none
    double test_acc;  // rank 0's test accuracy, NaN if none
    double val_loss;  // rank 0's validation loss, NaN if none
    double val_acc;   // rank 0's validation accuracy, NaN if none
} s_epoch_t;

typedef struct {
    const ds_config_t *cfg;            // settings; not owned
    uv_loop_t         *loop;           // our loop
    void              *ctx;            // 0MQ context
    ds_zsock_t         sock;           // ROUTER every node connects to
    bool               sock_open;      // sock initialized and not closed
    uv_timer_t         timer;          // heartbeats, liveness, deadlines
    uv_timer_t         bar;            // progress bar redraw
    uv_signal_t        sigint;         // SIGINT: end the job
    uv_signal_t        sigterm;        // SIGTERM: end the job
    s_node_t          *nodes;          // registered nodes, by id - 1; owned
    uint32_t           nnodes;         // registered nodes
    int                nservers;       // registered servers
    int                nworkers;       // registered workers
    s_phase_t          phase;          // where the job is
    ds_shard_map_t     map;            // the shard map, once built
    uint64_t           num_keys;       // model size the workers asked for
    uint64_t           dim;            // features per example, from the workers
    uint32_t           classes;        // classes, from the workers
    char               refused[384];   // last settings refusal, for errors
    uint64_t           start_ms;       // loop time we started
    uint64_t           phase_ms;       // loop time the phase began
    uint64_t           train_start_ms; // loop time training began
    uint64_t           train_end_ms;   // loop time the barrier released
    s_epoch_t         *epochs;         // per epoch; owned
    bool               use_bar;        // draw a progress bar (a terminal)
    bool               plateau;        // the schedule is reduce-on-plateau
    bool               all_done;       // every worker sent DONE
    uint64_t           stats_wait_ms;  // loop time the end began waiting
    uint64_t           stale_upd[STALE_BUCKETS]; // pushes by staleness in
                                                 // updates, all servers
    uint64_t     stale_clk[STALE_BUCKETS];       // ... in clocks
    ds_plateau_t pl;             // its state, fed one loss per epoch
    uint32_t     best_epoch;     // rank 0's kept model's epoch, reported
    bool         stopped_early;  // STOP was sent
    uint32_t     start_epoch;    // resume: epochs already done
    bool         have_final;     // final evaluation received
    double       final_loss;     // final test loss
    double       final_acc;      // final test accuracy
    int          exit_code;      // process exit status
    bool         stopping;       // s_stop was called
    ds_limits_t  limits;         // what we accept
    ds_ratelog_t peer_log;       // limits logs of nodes' bad messages
    uint32_t     failovers;      // servers declared dead and replaced
    uint32_t     rejoins;        // servers back after being replaced
    uint32_t     adoptions;      // partitions given to another worker
    uint64_t    *aud_applied;    // per range: pushes its primary applied
    uint32_t    *aud_digest;     // per range: its primary's digest
    uint32_t    *aud_bdigest;    // per range: its backup's digest
    uint8_t     *aud_have;       // per range: 1 primary, 2 backup reported
    uint64_t     stale_accepted; // pushes servers applied under an old epoch
    uint64_t     fenced;         // requests servers refused as stale
    bool         acked_exact;    // no worker incarnation ended unreported
    bool         dirty;          // the state changed since it was saved
    bool         urgent;         // ... in membership or the map
    uint64_t     saved_ms;       // loop time it was last saved
    int          ncap;           // entries of nodes
    int          want_workers;   // workers of the job (elastic: 0 until
                                 // the set closes)
    uint64_t last_join_ms;       // elastic: loop time a worker last joined
    bool     stats_asked;        // STATS was sent to the servers
    uint64_t instance;           // this process's id, in every message
    uint64_t tick_ms;            // loop time the timer last ran
    uint64_t paused_at;          // loop time our own stall was noticed
    char     metrics[DS_STR_MAX + 32]; // metrics.jsonl's path
} s_sched_t;

static double
s_secs(s_sched_t *s, uint64_t ms)
{
    return (double)(ms - s->start_ms) / 1000.0;
}

static const char *
s_role_name(Descent__Role r)
{
    return r == DESCENT__ROLE__SERVER   ? "server"
           : r == DESCENT__ROLE__WORKER ? "worker"
                                        : "node";
}

// s_refuse logs msg's refusal, limited per peer and status, and answers
// with an error of `type` when it can.
static void
s_refuse(s_sched_t *s, const ds_msg_t *msg, Descent__Type type,
         Descent__Status st, const char *why)
{
    char peer[DS_RATELOG_PEER_MAX], kind[DS_RATELOG_KIND_MAX];
    ds_msg_peer(msg, peer, sizeof peer);
    snprintf(kind, sizeof kind, "%s%s", ds_msg_status_name(st),
             msg->hdr ? "" : " (no header)");
    ds_log_peer(&s->peer_log, uv_now(s->loop),
                st == DESCENT__STATUS__STALE_EPOCH ? DS_INFO : DS_WARN,
                "scheduler", peer, kind, "refused %s from %s: %s: %s",
                msg->hdr ? ds_msg_type_name(msg->hdr->type) : "a message", peer,
                kind, why);
    if (msg->flags & DS_MSG_HAS_ROUTE) {
        ds_msg_reply(s->sock.sock, msg, type, st, why);
    }
}

static void
s_send(s_sched_t *s, s_node_t *n, Descent__Header *h)
{
    h->job = (char *)s->cfg->job;
    h->epoch = s->map.epoch;
    h->instance = s->instance;
    int rc = ds_msg_send(s->sock.sock, &n->route, h, NULL, NULL);
    if (rc != 0) {
        ds_log(DS_WARN, "scheduler", "cannot send %s to %s %u: %s",
               ds_msg_type_name(h->type), s_role_name(n->role), n->id,
               zmq_strerror(-rc));
    }
}

static void
s_broadcast(s_sched_t *s, Descent__Role role, Descent__Header *h)
{
    for (uint32_t i = 0; i < s->nnodes; i++) {
        if (s->nodes[i].dead) {
            continue;
        }
        if (role == DESCENT__ROLE__ROLE_UNSPECIFIED ||
            s->nodes[i].role == role) {
            s_send(s, &s->nodes[i], h);
        }
    }
}

static void
s_json_num(FILE *f, const char *key, double v, bool comma)
{
    if (isfinite(v)) {
        fprintf(f, "\"%s\":%.6g%s", key, v, comma ? "," : "");
    } else {
        fprintf(f, "\"%s\":null%s", key, comma ? "," : "");
    }
}

// s_json_hist writes "name":{"max":M,"histogram":{"0":n0,...}} with the
// non-empty buckets; the last bucket holds that value or more.
static void
s_json_hist(FILE *f, const char *name, const uint64_t *hist)
{
    int max = -1;
    for (int i = 0; i < STALE_BUCKETS; i++) {
        if (hist[i]) {
            max = i;
        }
    }
    fprintf(f, "\"%s\":{\"max\":%d,\"histogram\":{", name, max);
    const char *sep = "";
    for (int i = 0; i < STALE_BUCKETS; i++) {
        if (hist[i]) {
            fprintf(f, "%s\"%d%s\":%" PRIu64, sep, i,
                    i == STALE_BUCKETS - 1 ? "+" : "", hist[i]);
            sep = ",";
        }
    }
    fprintf(f, "}},");
}

// s_audit_t is the replication audit summed over the ranges.
typedef struct {
    uint64_t acked;     // pushes acknowledged to workers
    uint64_t applied;   // pushes the ranges' final primaries applied
    uint64_t lost;      // acknowledged but not applied
    uint32_t checked;   // ranges with a backup
    uint32_t identical; // ... whose primary and backup digests agree
    uint32_t reported;  // ranges whose primary sent its statistics
    uint32_t breported; // ranges with a backup that sent its statistics
    bool     complete;  // every range's primary reported: lost is known
} s_audit_t;

// s_audit sums the audit: pushes acknowledged to workers against pushes
// applied on each range's final primary, and whether every range's
// primary and backup hold byte-identical state.
static void
s_audit(const s_sched_t *s, s_audit_t *a)
{
    memset(a, 0, sizeof *a);
    for (uint32_t r = 0; s->aud_have && r < s->map.nranges; r++) {
        uint64_t k = 0;
        for (uint32_t i = 0; i < s->nnodes; i++) {
            const s_node_t *n = &s->nodes[i];
            if (n->role == DESCENT__ROLE__WORKER && n->acked) {
                k += n->acked[r] + n->acked_base[r];
            }
        }
        a->acked += k;
        a->reported += s->aud_have[r] & 1;
        a->applied += s->aud_applied[r];
        a->lost += k > s->aud_applied[r] ? k - s->aud_applied[r] : 0;
        if (s->map.ranges[r].backup != 0) {
            a->checked++;
            a->breported += (s->aud_have[r] & 2) != 0;
            a->identical +=
                s->aud_have[r] == 3 && s->aud_digest[r] == s->aud_bdigest[r];
        }
    }
    a->complete = s->map.nranges > 0 && a->reported == s->map.nranges;
}

// s_audit_fails writes into why what the audit of a job that ended well
// proves wrong (acknowledged pushes lost, replicas that differ). Returns
// true if it does; an audit that could not be gathered proves nothing.
static bool
s_audit_fails(const s_sched_t *s, char *why, size_t len)
{
    s_audit_t a;
    s_audit(s, &a);
    if (a.complete && a.lost > 0) {
        snprintf(why, len,
                 "audit: %" PRIu64 " acknowledged pushes were not applied "
                 "(%" PRIu64 " acknowledged, %" PRIu64 " applied)",
                 a.lost, a.acked, a.applied);
        return true;
    }
    if (a.complete && a.breported == a.checked && a.identical != a.checked) {
        snprintf(why, len,
                 "audit: primary and backup differ on %u of %u replicated "
                 "ranges",
                 a.checked - a.identical, a.checked);
        return true;
    }
    return false;
}

// s_json_audit writes the audit. What was not gathered (a range's primary
// or backup never sent its statistics) is null, not a guess: lost without
// every primary's count, replicas_identical without every digest.
static void
s_json_audit(s_sched_t *s, FILE *f)
{
    s_audit_t a;
    s_audit(s, &a);
    char lost[32] = "null";
    if (a.complete) {
        snprintf(lost, sizeof lost, "%" PRIu64, a.lost);
    }
    const char *identical = !a.complete || a.breported != a.checked ? "null"
                            : a.identical == a.checked              ? "true"
                                                                    : "false";
    fprintf(f,
            "\"audit\":{\"ranges\":%u,\"ranges_reported\":%u,\"acked\":%" PRIu64
            ",\"applied\":%" PRIu64 ",\"lost\":%s"
            ",\"acked_exact\":%s,\"replicated_ranges\":%u,"
            "\"replicas_identical\":%s,\"stale_accepted\":%" PRIu64
            ",\"fenced\":%" PRIu64 ",\"failovers\":%u,\"rejoins\":%u,"
            "\"adoptions\":%u,"
            "\"map_epoch\":%" PRIu64 "},",
            s->map.nranges, a.reported, a.acked, a.applied, lost,
            s->acked_exact ? "true" : "false", a.checked, identical,
            s->stale_accepted, s->fenced, s->failovers, s->rejoins,
            s->adoptions, s->map.epoch);
}

static double
s_examples_per_second(s_sched_t *s)
{
    uint64_t ex = 0;
    for (uint32_t i = 0; i < s->nnodes; i++) {
        ex += s->nodes[i].examples;
    }
    uint64_t end = s->train_end_ms ? s->train_end_ms : uv_now(s->loop);
    double   secs = (double)(end - s->train_start_ms) / 1000.0;
    return secs > 0 && s->train_start_ms ? (double)ex / secs : 0.0;
}

// s_close_memstream closes f (may be NULL). Returns 0 if it and every write
// to it succeeded, else -ENOMEM.
static int
s_close_memstream(FILE *f)
{
    if (!f) {
        return -ENOMEM;
    }
    bool bad = ferror(f) != 0;
    return fclose(f) != 0 || bad ? -ENOMEM : 0;
}

// s_write_summary writes <out>/summary.json (atomically: it holds the
// old summary or all of the new one). Returns 0 or a negative errno with
// err naming the file, the failing step and the errno's text.
static int
s_write_summary(s_sched_t *s, const char *error, char *err, size_t errlen)
{
    char   path[DS_STR_MAX + 32];
    char  *doc = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/summary.json", s->cfg->out);
    FILE *f = open_memstream(&doc, &len);
    if (!f) {
        return ds_err(err, errlen, -ENOMEM, "%s: out of memory", path);
    }
    uint64_t ex = 0;
    for (uint32_t i = 0; i < s->nnodes; i++) {
        ex += s->nodes[i].examples;
    }
    uint64_t now = uv_now(s->loop);
    fprintf(f, "{");
    s_json_num(f, "test_accuracy", s->have_final ? s->final_acc : NAN, true);
    s_json_num(f, "test_loss", s->have_final ? s->final_loss : NAN, true);
    fprintf(f, "\"epochs\":%d,", s->cfg->epochs);
    s_json_num(f, "wall_seconds", s_secs(s, now), true);
    s_json_num(f, "train_seconds",
               s->train_start_ms
                   ? (double)((s->train_end_ms ? s->train_end_ms : now) -
                              s->train_start_ms) /
                         1000.0
                   : NAN,
               true);
    s_json_num(f, "examples_per_second", s_examples_per_second(s), true);
    uint64_t sent = 0, recv = 0;
    for (uint32_t i = 0; i < s->nnodes; i++) {
        sent += s->nodes[i].bytes_sent;
        recv += s->nodes[i].bytes_recv;
    }
    fprintf(f, "\"examples\":%" PRIu64 ",\"num_keys\":%" PRIu64 ",", ex,
            s->num_keys);
    fprintf(f, "\"bytes_pushed\":%" PRIu64 ",\"bytes_received\":%" PRIu64 ",",
            sent, recv);
    fprintf(f, "\"ok\":%s,", error ? "false" : "true");
    if (s->cfg->patience > 0) {
        fprintf(f, "\"stopped_early\":%s,\"best_epoch\":%d,",
                s->stopped_early ? "true" : "false", s->best_epoch);
    }
    s_json_hist(f, "staleness_updates", s->stale_upd);
    s_json_hist(f, "staleness_clocks", s->stale_clk);
    s_json_audit(s, f);
    if (error) {
        fprintf(f, "\"error\":\"");
        for (const char *p = error; *p; p++) {
            if (*p == '"' || *p == '\\') {
                fputc('\\', f);
            }
            fputc((unsigned char)*p < 0x20 ? ' ' : *p, f);
        }
        fprintf(f, "\",");
    }
    size_t need = ds_config_write_json(s->cfg, NULL, 0);
    char  *js = malloc(need + 1);
    if (js) {
        ds_config_write_json(s->cfg, js, need + 1);
        fprintf(f, "\"config\":%s}\n", js);
        free(js);
    } else {
        fprintf(f, "\"config\":null}\n");
    }
    if (s_close_memstream(f) != 0) {
        free(doc);
        return ds_err(err, errlen, -ENOMEM, "%s: out of memory", path);
    }
    ds_part_t part = {doc, len};
    int       rc = ds_write_atomic(path, &part, 1, err, errlen);
    free(doc);
    return rc;
}

static void
s_close_all(s_sched_t *s)
{
    if (s->sock_open) {
        ds_zsock_close(&s->sock, NULL);
        s->sock_open = false;
    }
    uv_close((uv_handle_t *)&s->timer, NULL);
    uv_close((uv_handle_t *)&s->bar, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
}

static int s_save_state(s_sched_t *s, char *err, size_t errlen);

// s_fence tells node n it was replaced (SHUTDOWN with STALE_EPOCH): it
// stops, writes nothing, and exits with DS_EXIT_REPLACED.
static void
s_fence(s_sched_t *s, s_node_t *n, const char *why)
{
    Descent__Header off;
    ds_msg_header_init(&off, DESCENT__TYPE__SHUTDOWN);
    off.status = DESCENT__STATUS__STALE_EPOCH;
    off.error = (char *)why;
    s_send(s, n, &off);
}

// s_stop ends the job: writes the state and the summary, then tells every
// node (with the error, if any) and closes our handles. A job that ended
// well fails here when its audit proves a push lost or replicas apart, or
// when a result file cannot be written; the summary names the cause.
static void
s_stop(s_sched_t *s, const char *error)
{
    if (s->stopping) {
        return;
    }
    s->stopping = true;
    if (s->use_bar) {
        printf("\n");
    }
    char audit[256], werr[DS_STR_MAX + 160];
    if (!error && s_audit_fails(s, audit, sizeof audit)) {
        error = audit;
    }
    s->phase = PHASE_ENDED;
    s->dirty = s->urgent = true;
    // Phase ENDED: nothing to recover.
    if (s_save_state(s, werr, sizeof werr) != 0) {
        ds_log(DS_ERROR, "scheduler", "%s", werr);
        if (!error) {
            error = werr;
        }
    }
    char serr[DS_STR_MAX + 160];
    if (s_write_summary(s, error, serr, sizeof serr) != 0) {
        ds_log(DS_ERROR, "scheduler", "%s", serr);
        if (!error) {
            error = serr;
        }
    }
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__SHUTDOWN);
    h.status = error ? DESCENT__STATUS__REFUSED : DESCENT__STATUS__OK;
    h.error = (char *)(error ? error : "");
    s_broadcast(s, DESCENT__ROLE__ROLE_UNSPECIFIED, &h);
    if (error) {
        ds_log(DS_ERROR, "scheduler", "job failed: %s", error);
        s->exit_code = 1;
    } else if (s->have_final) {
        printf("test accuracy %.4f, test loss %.4f, %.0f examples/s, "
               "%.1f s; results in %s\n",
               s->final_acc, s->final_loss, s_examples_per_second(s),
               s_secs(s, uv_now(s->loop)), s->cfg->out);
        fflush(stdout);
    }
    s_close_all(s);
}

static void s_fail(s_sched_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
s_fail(s_sched_t *s, const char *fmt, ...)
{
    char    why[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    s_stop(s, why);
}

static s_node_t *
s_sender(s_sched_t *s, const ds_msg_t *msg)
{
    uint32_t id = msg->hdr->sender;
    if (id == 0 || id > s->nnodes) {
        return NULL;
    }
    s_node_t *n = &s->nodes[id - 1];
    // The identity must match too: an id alone is easy to forge or confuse.
    if (zmq_msg_size(&n->route) != zmq_msg_size((zmq_msg_t *)&msg->route) ||
        memcmp(zmq_msg_data(&n->route), zmq_msg_data((zmq_msg_t *)&msg->route),
               zmq_msg_size(&n->route)) != 0) {
        return NULL;
    }
    return n;
}

// s_find_route returns the node registered from the routing id of msg.
static s_node_t *
s_find_route(s_sched_t *s, const ds_msg_t *msg)
{
    for (uint32_t i = 0; i < s->nnodes; i++) {
        zmq_msg_t *r = &s->nodes[i].route;
        if (zmq_msg_size(r) == zmq_msg_size((zmq_msg_t *)&msg->route) &&
            memcmp(zmq_msg_data(r), zmq_msg_data((zmq_msg_t *)&msg->route),
                   zmq_msg_size(r)) == 0) {
            return &s->nodes[i];
        }
    }
    return NULL;
}

static void
s_ack(s_sched_t *s, s_node_t *n, uint64_t seq)
{
    Descent__Header r;
    ds_msg_header_init(&r, DESCENT__TYPE__REGISTER_ACK);
    r.seq = seq;
    r.status = DESCENT__STATUS__OK;
    r.node_id = n->id;
    r.rank = n->rank;
    r.seq_base = (uint64_t)n->incarnation << 40;
    r.resume_step = n->incarnation ? n->step : 0;
    r.workers = (uint32_t)s->want_workers;
    s_send(s, n, &r);
}

// s_all_ready says whether every node of role has sent READY.
static bool
s_all_ready(const s_sched_t *s, Descent__Role role)
{
    for (uint32_t i = 0; i < s->nnodes; i++) {
        if (s->nodes[i].role == role && !s->nodes[i].ready &&
            !s->nodes[i].dead) {
            return false;
        }
    }
    return true;
}

static void s_place(s_sched_t *s);

// s_silent_ms says for how long node n has been silent, counted at most
// from our own last stall.
static uint64_t
s_silent_ms(const s_sched_t *s, const s_node_t *n, uint64_t now)
{
    return now - (n->heard_ms > s->paused_at ? n->heard_ms : s->paused_at);
}

// s_alive lists into ids the servers that may take new backups: not
// declared dead, and heard within half the failure timeout (a server
// killed moments after another is silent but not yet declared dead).
// Returns how many.
static uint32_t
s_alive(const s_sched_t *s, uint32_t *ids)
{
    uint64_t now = uv_now(s->loop);
    uint32_t k = 0;
    for (uint32_t i = 0; i < s->nnodes; i++) {
        const s_node_t *n = &s->nodes[i];
        if (n->role == DESCENT__ROLE__SERVER && !n->dead &&
            s_silent_ms(s, n, now) <= (uint64_t)s->cfg->timeout_ms / 2) {
            ids[k++] = n->id;
        }
    }
    return k;
}

static void s_send_map(s_sched_t *s, Descent__Role role);
static bool s_servers_lost(s_sched_t *s, s_node_t **lost, uint32_t k);

static bool
s_server_lost(s_sched_t *s, s_node_t *n)
{
    return s_servers_lost(s, &n, 1);
}

static void s_maybe_joined(s_sched_t *s);

// s_server_back takes a replaced server back under its old id: it becomes
// the backup of the ranges that have none, and the primaries seed it.
static void
s_server_back(s_sched_t *s, s_node_t *n, const ds_msg_t *msg)
{
    const Descent__Header *h = msg->hdr;
    zmq_msg_close(&n->route);
    zmq_msg_init(&n->route);
    zmq_msg_copy(&n->route, (zmq_msg_t *)&msg->route);
    snprintf(n->address, sizeof n->address, "%s", h->address);
    n->heard_ms = uv_now(s->loop);
    n->dead = false;
    n->ready = false;
    n->stats = false;
    s_ack(s, n, h->seq);
    uint32_t *alive = calloc(s->nnodes, sizeof *alive);
    if (!alive) {
        s_fail(s, "out of memory");
        return;
    }
    uint32_t na = s_alive(s, alive);
    uint32_t placed = ds_shard_map_fill_backups(&s->map, alive, na);
    placed += ds_shard_map_balance_backups(&s->map, alive, na);
    free(alive);
    s->map.epoch++;
    s->rejoins++;
    s->dirty = s->urgent = true;
    ds_log(DS_INFO, "scheduler",
           "server %u is back at %s: backup of %u ranges, map epoch %" PRIu64,
           n->id, n->address, placed, s->map.epoch);
    if (s->plateau && s->pl.scale < 1) {
        // The rate cut the others had, for when it becomes a primary.
        Descent__Header lr;
        ds_msg_header_init(&lr, DESCENT__TYPE__SET_LR);
        lr.lr_scale = s->pl.scale;
        s_send(s, n, &lr);
    }
    s_send_map(s, DESCENT__ROLE__SERVER);
    if (s->phase == PHASE_TRAINING) {
        s_send_map(s, DESCENT__ROLE__WORKER);
    }
}

// s_server_again gives a server restarted before the map was placed its
// old place back: same id, its new routing id and address. Nothing is lost
// (no range was placed yet); the old process, if it still runs, is fenced.
static void
s_server_again(s_sched_t *s, s_node_t *n, const ds_msg_t *msg)
{
    const Descent__Header *h = msg->hdr;
    s_fence(s, n, "this server was started again");
    zmq_msg_close(&n->route);
    zmq_msg_init(&n->route);
    zmq_msg_copy(&n->route, (zmq_msg_t *)&msg->route);
    snprintf(n->address, sizeof n->address, "%s", h->address);
    n->heard_ms = uv_now(s->loop);
    n->ready = false;
    s_ack(s, n, h->seq);
    ds_log(DS_INFO, "scheduler",
           "server %u was started again before training: it takes its old "
           "place, at %s",
           n->id, n->address);
}

static void
s_register(s_sched_t *s, const ds_msg_t *msg)
{
    const Descent__Header *h = msg->hdr;
    s_node_t              *again = s_find_route(s, msg);
    if (again && again->role == h->role && again->ack_seq) {
        return; // an elastic worker: acknowledged when the set closes
    }
    if (again && again->role == h->role) {
        // A repeated REGISTER (a retry, or a lost acknowledgement) gets the
        // same answer; it never takes a second slot.
        s_ack(s, again, h->seq);
        return;
    }
    char mismatch[320];
    if (strcmp(h->job, s->cfg->job) == 0 &&
        ds_config_compare(s->cfg, h->settings, h->n_settings, mismatch,
                          sizeof mismatch) != 0) {
        // Any node of this job, also one rejoining with its old id, must
        // have the job's job-wide settings (docs/protocol.md, REGISTER).
        snprintf(s->refused, sizeof s->refused, "a %s: %s",
                 s_role_name(h->role), mismatch);
        char peer[DS_RATELOG_PEER_MAX];
        ds_msg_peer(msg, peer, sizeof peer);
        ds_log_peer(&s->peer_log, uv_now(s->loop), DS_WARN, "scheduler", peer,
                    "REFUSED", "refused %s", s->refused);
        ds_msg_reply(s->sock.sock, msg, DESCENT__TYPE__REGISTER_ACK,
                     DESCENT__STATUS__REFUSED, mismatch);
        return;
    }
    if (h->node_id != 0 && h->role == DESCENT__ROLE__WORKER &&
        strcmp(h->job, s->cfg->job) == 0 && h->node_id <= s->nnodes &&
        s->nodes[h->node_id - 1].role == DESCENT__ROLE__WORKER &&
        !s->nodes[h->node_id - 1].done && !s->nodes[h->node_id - 1].dead &&
        s->phase != PHASE_ENDED) {
        // A restarted worker takes its old place: same id and rank, a new
        // connection, requests numbered above its old ones, and the steps
        // it last reported done.
        s_node_t *n = &s->nodes[h->node_id - 1];
        zmq_msg_close(&n->route);
        zmq_msg_init(&n->route);
        zmq_msg_copy(&n->route, (zmq_msg_t *)&msg->route);
        n->heard_ms = uv_now(s->loop);
        n->incarnation++;
        // What the old process was acknowledged after its last report is
        // not known: from here the audit can only say applied >= acked.
        s->acked_exact = false;
        for (uint32_t i = 0; n->acked && i < s->map.nranges; i++) {
            n->acked_base[i] += n->acked[i];
            n->acked[i] = 0;
        }
        // Before the map is placed the new process just goes through the
        // start-up again, and the job waits for its READY (its old
        // process's does not count: the new one loads its data first).
        // From PLACING on it gets the map on READY, in TRAINING.
        n->rejoining =
            s->phase == PHASE_PLACING || s->phase == PHASE_TRAINING;
        if (s->phase == PHASE_JOINING || s->phase == PHASE_LOADING) {
            n->ready = false;
        }
        n->at_barrier = false;
        s_ack(s, n, h->seq);
        ds_log(DS_INFO, "scheduler",
               "worker %u rejoined (rank %u) at step %" PRIu64, n->id, n->rank,
               n->step);
        return;
    }
    bool server_again =
        h->node_id != 0 && h->role == DESCENT__ROLE__SERVER &&
        strcmp(h->job, s->cfg->job) == 0 && h->node_id <= s->nnodes &&
        s->nodes[h->node_id - 1].role == DESCENT__ROLE__SERVER && h->address[0];
    if (server_again &&
        (s->phase == PHASE_JOINING || s->phase == PHASE_LOADING)) {
        s_server_again(s, &s->nodes[h->node_id - 1], msg);
        return;
    }
    if (server_again &&
        (s->phase == PHASE_PLACING || s->phase == PHASE_TRAINING)) {
        // A restarted server: its old process is gone (or is declared gone
        // now, which fences it), and the new one comes back as a backup.
        s_node_t *old = &s->nodes[h->node_id - 1];
        if (old->dead || s_server_lost(s, old)) {
            s_server_back(s, old, msg);
            return;
        }
        if (s->stopping) {
            return; // its ranges had no other copy: the job has ended
        }
    }
    if (h->node_id != 0 && h->role == DESCENT__ROLE__WORKER &&
        h->node_id <= s->nnodes &&
        s->nodes[h->node_id - 1].role == DESCENT__ROLE__WORKER &&
        s->nodes[h->node_id - 1].dead) {
        // Its partition went to another worker: it is not needed any more.
        s_refuse(s, msg, DESCENT__TYPE__REGISTER_ACK,
                 DESCENT__STATUS__STALE_EPOCH,
                 "this worker's partition was given to another worker");
        return;
    }
    char            why[256] = "";
    Descent__Status st = DESCENT__STATUS__OK;
    bool elastic = h->role == DESCENT__ROLE__WORKER && s->cfg->workers == 0 &&
                   s->want_workers == 0;
    int want = h->role == DESCENT__ROLE__SERVER   ? s->cfg->servers
               : h->role == DESCENT__ROLE__WORKER ? s->want_workers
                                                  : 0;
    if (elastic) {
        want = s->ncap - s->cfg->servers; // room left; the window closes it
    }
    int have = h->role == DESCENT__ROLE__SERVER ? s->nservers : s->nworkers;
    if (strcmp(h->job, s->cfg->job) != 0) {
        st = DESCENT__STATUS__REFUSED;
        snprintf(why, sizeof why,
                 "job \"%s\" is not the scheduler's job "
                 "\"%s\"",
                 h->job, s->cfg->job);
    } else if (want == 0) {
        st = DESCENT__STATUS__REFUSED;
        snprintf(why, sizeof why, "role %d cannot register", (int)h->role);
    } else if (s->phase != PHASE_JOINING || have >= want) {
        st = DESCENT__STATUS__REFUSED;
        snprintf(why, sizeof why, "the job already has its %d %ss", want,
                 s_role_name(h->role));
    } else if (h->role == DESCENT__ROLE__SERVER && !h->address[0]) {
        st = DESCENT__STATUS__BAD_REQUEST;
        snprintf(why, sizeof why, "a server must give its address");
    }
    if (st != DESCENT__STATUS__OK) {
        s_refuse(s, msg, DESCENT__TYPE__REGISTER_ACK, st, why);
        return;
    }
    s_node_t *n = &s->nodes[s->nnodes];
    memset(n, 0, sizeof *n);
    n->id = ++s->nnodes;
    n->role = h->role;
    n->heard_ms = uv_now(s->loop);
    snprintf(n->address, sizeof n->address, "%s", h->address);
    zmq_msg_init(&n->route);
    zmq_msg_copy(&n->route, (zmq_msg_t *)&msg->route);
    if (h->role == DESCENT__ROLE__SERVER) {
        s->nservers++;
    } else {
        n->rank = (uint32_t)s->nworkers++;
    }
    if (elastic) {
        n->ack_seq = h->seq ? h->seq : 1;
        s->last_join_ms = uv_now(s->loop);
    } else {
        s_ack(s, n, h->seq);
    }
    ds_log(DS_INFO, "scheduler",
           "%s %u joined%s%s (%d/%d servers, %d/%d "
           "workers)",
           s_role_name(n->role), n->id, n->address[0] ? " from " : "",
           n->address, s->nservers, s->cfg->servers, s->nworkers,
           s->want_workers);
    s_maybe_joined(s);
}

// s_maybe_joined starts loading once every server and worker has joined.
// With elastic workers (workers = 0) the set closes join_window_ms after
// the last one joined: they learn the count with their acknowledgement.
static void
s_maybe_joined(s_sched_t *s)
{
    if (s->phase != PHASE_JOINING || s->nservers != s->cfg->servers) {
        return;
    }
    if (s->cfg->workers == 0 && s->want_workers == 0) {
        if (s->nworkers == 0 || uv_now(s->loop) - s->last_join_ms <
                                    (uint64_t)s->cfg->join_window_ms) {
            return;
        }
        s->want_workers = s->nworkers;
        ds_log(DS_INFO, "scheduler",
               "no worker joined for %d ms: the job has %d workers",
               s->cfg->join_window_ms, s->nworkers);
        for (uint32_t i = 0; i < s->nnodes; i++) {
            s_node_t *n = &s->nodes[i];
            if (n->role == DESCENT__ROLE__WORKER && n->ack_seq) {
                s_ack(s, n, n->ack_seq);
                n->ack_seq = 0;
            }
        }
    }
    if (s->nworkers == s->want_workers) {
        s->phase = PHASE_LOADING;
        s->phase_ms = uv_now(s->loop);
        // Workers that loaded their data while others were still joining
        // have already said READY.
        if (s_all_ready(s, DESCENT__ROLE__WORKER)) {
            s_place(s);
        }
    }
}

static int
s_map_pb(s_sched_t *s, Descent__ShardMap *pb, Descent__Node **nodes,
         Descent__Node *store)
{
    int rc = ds_shard_map_to_pb(&s->map, pb);
    if (rc != 0) {
        return rc;
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < s->nnodes; i++) {
        descent__node__init(&store[i]);
        store[i].id = s->nodes[i].id;
        store[i].role = s->nodes[i].role;
        store[i].address = s->nodes[i].address;
        nodes[i] = &store[i];
        if (s->nodes[i].role == DESCENT__ROLE__WORKER) {
            total += s->nodes[i].planned;
        }
    }
    pb->nodes = nodes;
    pb->n_nodes = s->nnodes;
    pb->total_updates = total;
    pb->workers = (uint32_t)s->want_workers;
    pb->dim = s->dim;
    pb->start_epoch = s->start_epoch;
    // A resumed job makes only the pushes of its remaining epochs.
    if (s->cfg->epochs > 0) {
        pb->total_updates = pb->total_updates *
                            (uint64_t)(s->cfg->epochs - (int)s->start_epoch) /
                            (uint64_t)s->cfg->epochs;
    }
    pb->classes = s->classes;
    return 0;
}

static void s_send_map_one(s_sched_t *s, Descent__Role role, s_node_t *only);

static void
s_send_map(s_sched_t *s, Descent__Role role)
{
    s_send_map_one(s, role, NULL);
}

static void
s_send_map_to(s_sched_t *s, s_node_t *n)
{
    s_send_map_one(s, n->role, n);
}

// s_send_map_one sends the map to every node of role, or only to `only`.
static void
s_send_map_one(s_sched_t *s, Descent__Role role, s_node_t *only)
{
    Descent__ShardMap pb;
    Descent__Node   **nodes = calloc(s->nnodes, sizeof *nodes);
    Descent__Node    *store = calloc(s->nnodes, sizeof *store);
    if (!nodes || !store || s_map_pb(s, &pb, nodes, store) != 0) {
        free(nodes);
        free(store);
        s_fail(s, "out of memory building the shard map");
        return;
    }
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__SHARD_MAP);
    h.map = &pb;
    size_t size = descent__header__get_packed_size(&h);
    if (size > DS_MSG_HEADER_MAX) {
        s_fail(s,
               "the shard map of %u ranges needs %zu bytes, over the %d-byte "
               "header limit: lower cluster.ranges_per_server",
               s->map.nranges, size, DS_MSG_HEADER_MAX);
    } else {
        if (only) {
            s_send(s, only, &h);
        } else {
            s_broadcast(s, role, &h);
        }
    }
    ds_shard_map_pb_free(&pb);
    free(nodes);
    free(store);
}

// s_shape_differs says whether the data shape and model size in worker n's
// READY differ from those of the workers before it, and writes why.
static bool
s_shape_differs(const s_sched_t *s, const s_node_t *n, const Descent__Header *h,
                char *why, size_t len)
{
    if (s->num_keys && h->dim != s->dim) {
        snprintf(why, len,
                 "worker %u has data of %" PRIu64 " features, other workers "
                 "%" PRIu64 ": every worker must load the same dataset",
                 n->id, h->dim, s->dim);
    } else if (s->num_keys && h->classes != s->classes) {
        snprintf(why, len,
                 "worker %u has data of %u classes, other workers %u: every "
                 "worker must load the same dataset",
                 n->id, h->classes, s->classes);
    } else if (h->num_keys == 0 ||
               (s->num_keys && h->num_keys != s->num_keys)) {
        snprintf(why, len,
                 "worker %u needs a model of %" PRIu64 " parameters, other "
                 "workers %" PRIu64 ": the workers disagree on the model "
                 "or the data",
                 n->id, h->num_keys, s->num_keys);
    } else {
        return false;
    }
    return true;
}

static void
s_worker_ready(s_sched_t *s, s_node_t *n, const Descent__Header *h)
{
    char why[256];
    if (s_shape_differs(s, n, h, why, sizeof why)) {
        s_fail(s, "%s", why);
        return;
    }
    s->num_keys = h->num_keys;
    s->dim = h->dim;
    s->classes = h->classes;
    n->planned = h->planned;
    n->ready = true;
    if (s->phase == PHASE_LOADING && s_all_ready(s, DESCENT__ROLE__WORKER)) {
        s_place(s);
    }
}

// s_audit_alloc makes the per-range audit arrays. Returns 0 or -ENOMEM.
static int
s_audit_alloc(s_sched_t *s)
{
    s->aud_applied = calloc(s->map.nranges, sizeof *s->aud_applied);
    s->aud_digest = calloc(s->map.nranges, sizeof *s->aud_digest);
    s->aud_bdigest = calloc(s->map.nranges, sizeof *s->aud_bdigest);
    s->aud_have = calloc(s->map.nranges, sizeof *s->aud_have);
    return s->aud_applied && s->aud_digest && s->aud_bdigest && s->aud_have
               ? 0
               : -ENOMEM;
}

// s_place cuts the model into ranges on the servers and sends them the map.
static void
s_place(s_sched_t *s)
{
    uint32_t servers[1024];
    uint32_t ns = 0;
    for (uint32_t i = 0; i < s->nnodes; i++) {
        if (s->nodes[i].role == DESCENT__ROLE__SERVER) {
            servers[ns++] = s->nodes[i].id;
        }
    }
    // A range travels whole in one message: it must fit max_message_mb.
    uint64_t max_keys = (uint64_t)s->cfg->max_message_mb << 18;
    if (max_keys > MAX_RANGE_KEYS) {
        max_keys = MAX_RANGE_KEYS;
    }
    int rc =
        ds_shard_map_build(&s->map, s->num_keys, servers, ns,
                           (uint32_t)s->cfg->ranges_per_server, max_keys, 1);
    if (rc != 0) {
        s_fail(s, "cannot build the shard map: %s", strerror(-rc));
        return;
    }
    for (uint32_t i = 0; s->cfg->replicas < 2 && i < s->map.nranges; i++) {
        s->map.ranges[i].backup = 0;
    }
    if (s_audit_alloc(s) != 0) {
        s_fail(s, "out of memory for the audit");
        return;
    }
    ds_log(DS_INFO, "scheduler",
           "workers ready; placing %" PRIu64 " keys in %u ranges on %u "
           "servers",
           s->num_keys, s->map.nranges, ns);
    s->phase = PHASE_PLACING;
    s->phase_ms = uv_now(s->loop);
    s_send_map(s, DESCENT__ROLE__SERVER);
}

static void
s_server_ready(s_sched_t *s, s_node_t *n)
{
    n->ready = true;
    if (!s_all_ready(s, DESCENT__ROLE__SERVER)) {
        return;
    }
    ds_log(DS_INFO, "scheduler", "servers ready; training starts");
    s->phase = PHASE_TRAINING;
    s->phase_ms = s->train_start_ms = uv_now(s->loop);
    s_send_map(s, DESCENT__ROLE__WORKER);
}

// s_write_progress records, atomically, that every worker has finished
// epoch e: what `descent run --resume` continues from, with the servers'
// checkpoints. Returns 0 or a negative errno with err naming the file.
static int
s_write_progress(s_sched_t *s, uint32_t e, char *err, size_t errlen)
{
    char path[DS_STR_MAX + 32], line[32];
    snprintf(path, sizeof path, "%s/progress", s->cfg->out);
    int       n = snprintf(line, sizeof line, "epochs_done %u\n", e);
    ds_part_t part = {line, (size_t)n};
    return ds_write_atomic(path, &part, 1, err, errlen);
}

// s_read_progress reads the epochs a resumed job has done. Returns 0 or -1
// with the reason in why.
static int
s_read_progress(s_sched_t *s, char *why, size_t len)
{
    char path[DS_STR_MAX + 32];
    snprintf(path, sizeof path, "%s/progress", s->cfg->out);
    FILE *f = fopen(path, "r");
    if (!f) {
        return ds_err(why, len, -1, "cannot resume: %s: %s", path,
                      strerror(errno));
    }
    unsigned e = 0;
    int      n = fscanf(f, "epochs_done %u", &e);
    fclose(f);
    if (n != 1 || e > (unsigned)s->cfg->epochs) {
        return ds_err(why, len, -1,
                      "cannot resume: %s does not name a number of epochs "
                      "up to %d",
                      path, s->cfg->epochs);
    }
    s->start_epoch = e;
    ds_log(DS_INFO, "scheduler", "resuming after epoch %u of %d", e,
           s->cfg->epochs);
    return 0;
}

static void
s_print_epoch(s_sched_t *s, uint32_t e)
{
    s_epoch_t *ep = &s->epochs[e - 1];
    if (s->use_bar) {
        printf("\r\033[K");
    }
    printf("epoch %u/%d: train loss %.4f, train accuracy %.4f", e,
           s->cfg->epochs, ep->loss_sum / ep->reports,
           ep->acc_sum / ep->reports);
    if (isfinite(ep->val_acc)) {
        printf(", validation loss %.4f, validation accuracy %.4f", ep->val_loss,
               ep->val_acc);
    }
    if (isfinite(ep->test_acc)) {
        printf(", test loss %.4f, test accuracy %.4f", ep->test_loss,
               ep->test_acc);
    }
    printf(", %.0f examples/s, %.1f s\n", s_examples_per_second(s),
           s_secs(s, uv_now(s->loop)));
    fflush(stdout);
}

static void
s_report(s_sched_t *s, s_node_t *n, const Descent__Report *r)
{
    n->step = r->step;
    n->steps_total = r->steps_total;
    n->examples = r->examples;
    n->bytes_sent = r->bytes_sent;
    n->bytes_recv = r->bytes_received;
    if (r->n_acked == s->map.nranges && s->map.nranges > 0) {
        if (!n->acked) {
            n->acked = calloc(s->map.nranges, sizeof *n->acked);
            n->acked_base = calloc(s->map.nranges, sizeof *n->acked_base);
        }
        for (uint32_t i = 0; n->acked && n->acked_base && i < s->map.nranges;
             i++) {
            n->acked[i] = r->acked[i];
        }
    }
    if (!r->epoch_end && !r->final) {
        return;
    }
    char  *line = NULL;
    size_t len = 0;
    FILE  *f = open_memstream(&line, &len);
    if (f) {
        fprintf(f, "{\"time\":%.3f,\"node\":%u,\"rank\":%u,",
                s_secs(s, uv_now(s->loop)), n->id, n->rank);
        fprintf(f, "\"epoch\":%u,\"step\":%" PRIu64 ",", r->epoch, r->step);
        s_json_num(f, "loss", r->train_loss, true);
        s_json_num(f, "accuracy", r->train_accuracy, true);
        s_json_num(f, "test_loss", r->test_loss, true);
        s_json_num(f, "test_accuracy", r->test_accuracy, true);
        s_json_num(f, "val_loss", r->val_loss, true);
        s_json_num(f, "val_accuracy", r->val_accuracy, true);
        fprintf(f, "\"final\":%s}\n", r->final ? "true" : "false");
    }
    char err[DS_STR_MAX + 160];
    int  rc =
        s_close_memstream(f) != 0
             ? ds_err(err, sizeof err, -ENOMEM, "%s: out of memory", s->metrics)
             : ds_append(s->metrics, line, len, err, sizeof err);
    free(line);
    if (rc != 0) {
        s_fail(s, "%s", err);
        return;
    }
    // Rank 0 decides early stopping on its own epochs, as it evaluates
    // them, and keeps that model; waiting here for the other workers'
    // reports of an epoch would decide on stale epochs.
    if (r->best_epoch > 0) {
        s->best_epoch = r->best_epoch;
    }
    if (r->stop_early && !s->stopped_early) {
        s->stopped_early = true;
        ds_log(DS_INFO, "scheduler",
               "validation loss has not improved for %d epochs: stopping "
               "early; the model of epoch %u is kept",
               s->cfg->patience, r->best_epoch);
        Descent__Header h;
        ds_msg_header_init(&h, DESCENT__TYPE__STOP);
        s_broadcast(s, DESCENT__ROLE__WORKER, &h);
    }
    if (r->final) {
        s->have_final = true;
        s->final_loss = r->test_loss;
        s->final_acc = r->test_accuracy;
        return;
    }
    if (r->epoch == 0 || r->epoch > (uint32_t)s->cfg->epochs) {
        return;
    }
    n->epoch = r->epoch;
    s_epoch_t *ep = &s->epochs[r->epoch - 1];
    ep->reports++;
    ep->loss_sum += r->train_loss;
    ep->acc_sum += r->train_accuracy;
    if (isfinite(r->test_accuracy)) {
        ep->test_loss = r->test_loss;
        ep->test_acc = r->test_accuracy;
    }
    if (isfinite(r->val_loss)) {
        ep->val_loss = r->val_loss;
        ep->val_acc = r->val_accuracy;
    }
    if (ep->reports != s->want_workers) {
        return;
    }
    if (s_write_progress(s, r->epoch, err, sizeof err) != 0) {
        s_fail(s, "%s", err);
        return;
    }
    if (s->cfg->progress[0] != 'o') {
        s_print_epoch(s, r->epoch);
    }
    if (s->plateau && isfinite(ep->val_loss) &&
        ds_plateau_observe(&s->pl, ep->val_loss)) {
        ds_log(DS_INFO, "scheduler",
               "validation loss %.4f has not improved for %d epochs: "
               "learning rate scaled to %g of the base",
               ep->val_loss, s->cfg->plateau_patience + 1, s->pl.scale);
        Descent__Header h;
        ds_msg_header_init(&h, DESCENT__TYPE__SET_LR);
        h.lr_scale = s->pl.scale;
        s_broadcast(s, DESCENT__ROLE__SERVER, &h);
    }
}

static void
s_barrier(s_sched_t *s, s_node_t *n, const char *name)
{
    n->at_barrier = true;
    for (uint32_t i = 0; i < s->nnodes; i++) {
        if (s->nodes[i].role == DESCENT__ROLE__WORKER &&
            !s->nodes[i].at_barrier && !s->nodes[i].dead) {
            return;
        }
    }
    if (s->train_end_ms == 0) {
        s->train_end_ms = uv_now(s->loop);
    }
    // Every push has been acknowledged: the servers' statistics are final.
    Descent__Header q;
    ds_msg_header_init(&q, DESCENT__TYPE__STATS);
    s_broadcast(s, DESCENT__ROLE__SERVER, &q);
    s->stats_asked = true;
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__BARRIER_RELEASE);
    h.barrier = (char *)name;
    for (uint32_t i = 0; i < s->nnodes; i++) {
        if (s->nodes[i].role == DESCENT__ROLE__WORKER) {
            s->nodes[i].at_barrier = false;
            s_send(s, &s->nodes[i], &h);
        }
    }
}

// s_maybe_end ends the job once every worker is done and every server has
// sent its statistics (or STATS_WAIT_MS have passed since the last DONE).
static void
s_maybe_end(s_sched_t *s)
{
    if (!s->all_done || s->stopping) {
        return;
    }
    if (!s->stats_asked) {
        // A restarted scheduler asks again: the answers went to the old one.
        s->stats_asked = true;
        Descent__Header q;
        ds_msg_header_init(&q, DESCENT__TYPE__STATS);
        s_broadcast(s, DESCENT__ROLE__SERVER, &q);
    }
    for (uint32_t i = 0; i < s->nnodes; i++) {
        if (s->nodes[i].role == DESCENT__ROLE__SERVER && !s->nodes[i].stats &&
            !s->nodes[i].dead) {
            if (s->stats_wait_ms == 0) {
                s->stats_wait_ms = uv_now(s->loop);
            } else if (uv_now(s->loop) - s->stats_wait_ms > STATS_WAIT_MS) {
                ds_log(DS_WARN, "scheduler",
                       "server %u sent no statistics; ending without them",
                       s->nodes[i].id);
                break;
            }
            return;
        }
    }
    ds_log(DS_INFO, "scheduler", "every worker is done; ending the job");
    s_stop(s, NULL);
}

static void
s_stats(s_sched_t *s, s_node_t *n, const Descent__Header *h)
{
    if (n->stats) {
        return;
    }
    n->stats = true;
    for (size_t i = 0; i < h->n_stale_updates && i < STALE_BUCKETS; i++) {
        s->stale_upd[i] += h->stale_updates[i];
    }
    for (size_t i = 0; i < h->n_stale_clocks && i < STALE_BUCKETS; i++) {
        s->stale_clk[i] += h->stale_clocks[i];
    }
    s->stale_accepted += h->stale_accepted;
    s->fenced += h->fenced;
    for (size_t i = 0; s->aud_have && i < h->n_audit; i++) {
        const Descent__RangeAudit *a = h->audit[i];
        if (a->range >= s->map.nranges) {
            continue;
        }
        const ds_range_t *r = &s->map.ranges[a->range];
        if (a->primary && r->primary == n->id) {
            s->aud_applied[a->range] = a->applied;
            s->aud_digest[a->range] = a->digest;
            s->aud_have[a->range] |= 1;
        } else if (!a->primary && r->backup == n->id) {
            s->aud_bdigest[a->range] = a->digest;
            s->aud_have[a->range] |= 2;
        }
    }
    s_maybe_end(s);
}

static void
s_done(s_sched_t *s, s_node_t *n, const Descent__Header *h)
{
    if (h->status != DESCENT__STATUS__OK) {
        s_fail(s, "worker %u failed: %s", n->id,
               h->error[0] ? h->error : ds_msg_status_name(h->status));
        return;
    }
    if (n->done) {
        return; // sent again to a restarted scheduler
    }
    if (h->report) {
        s_report(s, n, h->report);
    }
    n->done = true;
    for (uint32_t i = 0; i < s->nnodes; i++) {
        if (s->nodes[i].role == DESCENT__ROLE__WORKER && !s->nodes[i].done &&
            !s->nodes[i].dead) {
            return;
        }
    }
    s->all_done = true;
    s_maybe_end(s);
}

static void
s_on_msg(ds_zsock_t *z, void *arg)
{
    s_sched_t      *s = arg;
    ds_msg_t        msg;
    char            err[256] = "";
    Descent__Status st;
    int rc = ds_msg_take(z->sock, true, &s->limits, &msg, &st, err, sizeof err);
    if (rc == -EAGAIN) {
        ds_msg_fini(&msg);
        return;
    }
    if (rc != 0) {
        s_refuse(s, &msg, DESCENT__TYPE__ERROR, st, err);
        ds_msg_fini(&msg);
        return;
    }
    const Descent__Header *h = msg.hdr;
    if (h->type == DESCENT__TYPE__REGISTER) {
        s_register(s, &msg);
        ds_msg_fini(&msg);
        return;
    }
    s_node_t *n = s_sender(s, &msg);
    if (!n) {
        s_refuse(s, &msg, DESCENT__TYPE__ERROR, DESCENT__STATUS__REFUSED,
                 "unknown node: register first");
        ds_msg_fini(&msg);
        return;
    }
    if (n->dead) {
        // Declared dead and replaced (a paused process resumed, a cut
        // link healed): it must not act on its old map any more.
        char peer[DS_RATELOG_PEER_MAX];
        ds_msg_peer(&msg, peer, sizeof peer);
        ds_log_peer(&s->peer_log, uv_now(s->loop), DS_INFO, "scheduler", peer,
                    "dead", "%s from %s, declared dead: fenced",
                    ds_msg_type_name(h->type), peer);
        s_fence(s, n, "this node was declared dead and replaced");
        ds_msg_fini(&msg);
        return;
    }
    n->heard_ms = uv_now(s->loop);
    s->dirty |= h->type != DESCENT__TYPE__HEARTBEAT;
    if (n->lost_ms) {
        ds_log(DS_INFO, "scheduler",
               "worker %u answers again after %" PRIu64 " ms", n->id,
               n->heard_ms - n->lost_ms);
        n->lost_ms = 0;
    }
    bool worker_only = h->type == DESCENT__TYPE__REPORT ||
                       h->type == DESCENT__TYPE__BARRIER ||
                       h->type == DESCENT__TYPE__DONE;
    if (worker_only && n->role != DESCENT__ROLE__WORKER) {
        s_refuse(s, &msg, DESCENT__TYPE__ERROR, DESCENT__STATUS__REFUSED,
                 "only workers send that");
        ds_msg_fini(&msg);
        return;
    }
    switch (h->type) {
    case DESCENT__TYPE__HEARTBEAT:
        break;
    case DESCENT__TYPE__READY:
        if (n->role == DESCENT__ROLE__SERVER && h->seeded_epoch != 0 &&
            h->seeded_epoch == s->map.epoch) {
            // Its word on the backups it holds whole, under our map: only
            // those may be promoted (a word on an older map is followed
            // by one on this map once the server has installed it).
            ds_shard_map_set_seeded(&s->map, n->id, h->seeded, h->n_seeded);
        }
        if (n->role == DESCENT__ROLE__WORKER && n->rejoining &&
            s->phase == PHASE_TRAINING) {
            char why[256];
            if (s_shape_differs(s, n, h, why, sizeof why)) {
                // Refused, it stops; then it is a silent worker (5.4).
                char peer[DS_RATELOG_PEER_MAX];
                ds_msg_peer(&msg, peer, sizeof peer);
                ds_log_peer(&s->peer_log, uv_now(s->loop), DS_WARN,
                            "scheduler", peer, "REFUSED",
                            "refused a rejoin: %s", why);
                ds_msg_reply(z->sock, &msg, DESCENT__TYPE__ERROR,
                             DESCENT__STATUS__REFUSED, why);
                break;
            }
            n->rejoining = false;
            s_send_map_to(s, n);
            break;
        }
        if (n->role == DESCENT__ROLE__WORKER &&
            (s->phase == PHASE_JOINING || s->phase == PHASE_LOADING)) {
            s_worker_ready(s, n, h);
        } else if (n->role == DESCENT__ROLE__SERVER &&
                   s->phase == PHASE_PLACING) {
            s_server_ready(s, n);
        }
        break;
    case DESCENT__TYPE__REPORT:
        if (h->report) {
            s_report(s, n, h->report);
        }
        break;
    case DESCENT__TYPE__BARRIER:
        if (strcmp(h->barrier, "trained") != 0) {
            s_refuse(s, &msg, DESCENT__TYPE__ERROR,
                     DESCENT__STATUS__BAD_REQUEST, "unknown barrier");
            break;
        }
        s_barrier(s, n, h->barrier);
        break;
    case DESCENT__TYPE__STATS:
        if (n->role == DESCENT__ROLE__SERVER) {
            s_stats(s, n, h);
        }
        break;
    case DESCENT__TYPE__DONE:
        s_done(s, n, h);
        break;
    case DESCENT__TYPE__ERROR:
        // A node that fails says why before it exits (ds_node_stop).
        s_fail(s, "%s %u failed: %s", s_role_name(n->role), n->id,
               h->error[0] ? h->error : ds_msg_status_name(h->status));
        break;
    default: {
        char peer[DS_RATELOG_PEER_MAX];
        ds_msg_peer(&msg, peer, sizeof peer);
        ds_log_peer(&s->peer_log, uv_now(s->loop), DS_WARN, "scheduler", peer,
                    "unexpected", "unexpected %s from %s",
                    ds_msg_type_name(h->type), peer);
        break;
    }
    }
    ds_msg_fini(&msg);
}

// s_fail_lost ends the job after the k servers of `lost` were lost with
// the only live seeded copies of the nlost ranges of `gone`, naming both.
static void
s_fail_lost(s_sched_t *s, s_node_t **lost, uint32_t k, const uint32_t *gone,
            uint32_t nlost)
{
    char     why[900];
    size_t   len = 0;
    uint64_t now = uv_now(s->loop);
    len += (size_t)snprintf(why, sizeof why,
                            "%u range%s lost, no live server holds a seeded "
                            "copy:",
                            nlost, nlost == 1 ? "" : "s");
    for (uint32_t i = 0; i < nlost && len < sizeof why; i++) {
        const ds_range_t *r = &s->map.ranges[gone[i]];
        char              backup[64] = "none";
        if (r->backup) {
            snprintf(backup, sizeof backup, "server %u%s", r->backup,
                     r->seeded ? "" : ", not yet seeded");
        }
        len += (size_t)snprintf(why + len, sizeof why - len,
                                "%s range %u (keys %" PRIu64 "-%" PRIu64
                                ": primary server %u, backup %s)",
                                i ? "," : "", r->id, r->begin, r->end - 1,
                                r->primary, backup);
    }
    // The servers lost now, and those lost before and not back.
    const char *sep = "; servers lost:";
    for (uint32_t i = 0; i < s->nnodes && len < sizeof why; i++) {
        const s_node_t *n = &s->nodes[i];
        bool            now_lost = false;
        for (uint32_t j = 0; j < k; j++) {
            now_lost = now_lost || lost[j] == n;
        }
        if (n->role != DESCENT__ROLE__SERVER || (!now_lost && !n->dead)) {
            continue;
        }
        len += (size_t)snprintf(why + len, sizeof why - len,
                                "%s server %u at %s (nothing heard for %" PRIu64
                                " ms)",
                                sep, n->id, n->address, now - n->heard_ms);
        sep = ",";
    }
    s_fail(s, "%s", why);
}

// s_servers_lost fails over the k servers of `lost` together (those found
// silent in one tick: a second dead server never gets a new backup), when
// the map has them replicated: seeded backups become primaries, new
// backups go to servers heard lately, and every node gets the new map
// epoch. Returns false when there is no failover: without replication or a
// map (the caller ends the job), or when a range has no live seeded copy
// left (the job is ended here, naming the ranges and servers lost).
static bool
s_servers_lost(s_sched_t *s, s_node_t **lost, uint32_t k)
{
    if (s->cfg->replicas < 2 || s->map.nranges == 0 ||
        (s->phase != PHASE_PLACING && s->phase != PHASE_TRAINING)) {
        return false;
    }
    uint32_t *alive = calloc(s->nnodes, sizeof *alive);
    uint32_t *dead = calloc(k, sizeof *dead);
    uint32_t *gone = calloc(s->map.nranges, sizeof *gone);
    if (!alive || !dead || !gone) {
        free(alive);
        free(dead);
        free(gone);
        return false;
    }
    for (uint32_t i = 0; i < k; i++) {
        dead[i] = lost[i]->id;
        lost[i]->dead = true;
    }
    uint32_t na = s_alive(s, alive), nlost = 0;
    int      rc =
        ds_shard_map_fail_servers(&s->map, dead, k, alive, na, gone, &nlost);
    free(alive);
    free(dead);
    if (rc != 0) {
        for (uint32_t i = 0; i < k; i++) {
            lost[i]->dead = false;
        }
        if (nlost > 0) {
            s_fail_lost(s, lost, k, gone, nlost);
        }
        free(gone);
        return false;
    }
    free(gone);
    s->failovers += k;
    s->dirty = s->urgent = true;
    uint32_t unbacked = 0;
    for (uint32_t i = 0; i < s->map.nranges; i++) {
        unbacked += s->map.ranges[i].backup == 0;
    }
    for (uint32_t i = 0; i < k; i++) {
        s_node_t *n = lost[i];
        // Fence it now: a paused process reads this first when it resumes.
        s_fence(s, n, "this node was declared dead and replaced");
        ds_log(DS_WARN, "scheduler",
               "server %u at %s is lost (nothing heard for %" PRIu64
               " ms): its ranges fail over, map epoch %" PRIu64 "%s",
               n->id, n->address, uv_now(s->loop) - n->heard_ms, s->map.epoch,
               unbacked ? "; some ranges now have no backup" : "");
    }
    s_send_map(s, DESCENT__ROLE__SERVER);
    if (s->phase == PHASE_TRAINING) {
        s_send_map(s, DESCENT__ROLE__WORKER);
    }
    return true;
}

// s_refill gives a backup to the ranges that have none once a server other
// than their primary has been heard lately (one that was slow when they
// lost theirs was passed over). Each placement is a new map epoch.
static void
s_refill(s_sched_t *s)
{
    if (s->cfg->replicas < 2 || s->phase != PHASE_TRAINING ||
        s->map.nranges == 0) {
        return;
    }
    uint32_t *alive = calloc(s->nnodes, sizeof *alive);
    if (!alive) {
        return;
    }
    uint32_t na = s_alive(s, alive);
    bool     room = false;
    for (uint32_t i = 0; i < s->map.nranges && !room; i++) {
        const ds_range_t *r = &s->map.ranges[i];
        for (uint32_t a = 0; r->backup == 0 && a < na && !room; a++) {
            room = alive[a] != r->primary;
        }
    }
    uint32_t placed = room ? ds_shard_map_fill_backups(&s->map, alive, na) : 0;
    free(alive);
    if (placed == 0) {
        return;
    }
    s->map.epoch++;
    s->dirty = s->urgent = true;
    ds_log(DS_INFO, "scheduler",
           "%u ranges without a backup got one, map epoch %" PRIu64, placed,
           s->map.epoch);
    s_send_map(s, DESCENT__ROLE__SERVER);
    s_send_map(s, DESCENT__ROLE__WORKER);
}

// s_check_servers fails over, in one new map, every server silent past the
// failure timeout. Returns false when the job has ended.
static bool
s_check_servers(s_sched_t *s, uint64_t now)
{
    s_node_t **lost = calloc(s->nnodes + 1, sizeof *lost);
    uint32_t   k = 0;
    for (uint32_t i = 0; lost && i < s->nnodes; i++) {
        s_node_t *n = &s->nodes[i];
        if (n->role == DESCENT__ROLE__SERVER && !n->dead &&
            s_silent_ms(s, n, now) > (uint64_t)s->cfg->timeout_ms) {
            lost[k++] = n;
        }
    }
    if (k > 0) {
        s_servers_lost(s, lost, k);
    }
    free(lost);
    return !s->stopping;
}

// ---- the scheduler's own state, for a restart (--job.recover) -------------

// s_save_state writes what a restarted scheduler needs to carry on (the
// membership with each node's routing id, the map and its epoch, progress
// and the audit's counts) to <out>/scheduler.state: a temporary file,
// fsync, rename. Called from the timer when something changed. Returns 0,
// or a negative errno with err naming the file (out of memory: tried again
// on the next tick).
static int
s_save_state(s_sched_t *s, char *err, size_t errlen)
{
    if (!s->dirty || s->phase < PHASE_TRAINING || s->map.nranges == 0) {
        return 0; // nothing to carry on before training began
    }
    // Progress is written at most once a second (fsync on the loop); a new
    // map, a member replaced or the end at once.
    uint64_t t = uv_now(s->loop);
    if (!s->urgent && t - s->saved_ms < STATE_EVERY_MS) {
        return 0;
    }
    int rc = 0;
    s->saved_ms = t;
    s->dirty = s->urgent = false;
    Descent__SchedState st;
    descent__sched_state__init(&st);
    Descent__ShardMap     mp;
    Descent__Node       **nds = calloc(s->nnodes + 1, sizeof *nds);
    Descent__Node        *store = calloc(s->nnodes + 1, sizeof *store);
    Descent__NodeState   *ns = calloc(s->nnodes + 1, sizeof *ns);
    Descent__NodeState  **nsp = calloc(s->nnodes + 1, sizeof *nsp);
    Descent__EpochState  *es = calloc((size_t)s->cfg->epochs, sizeof *es);
    Descent__EpochState **esp = calloc((size_t)s->cfg->epochs, sizeof *esp);
    uint8_t              *buf = NULL;
    if (!nds || !store || !ns || !nsp || !es || !esp ||
        s_map_pb(s, &mp, nds, store) != 0) {
        goto out;
    }
    st.job = (char *)s->cfg->job;
    st.phase = (uint32_t)s->phase;
    st.map = &mp;
    st.num_keys = s->num_keys;
    st.dim = s->dim;
    st.classes = s->classes;
    st.start_epoch = s->start_epoch;
    uint64_t now = uv_now(s->loop);
    st.wall_seconds = (double)(now - s->start_ms) / 1000.0;
    st.train_seconds = (double)(now - s->train_start_ms) / 1000.0;
    st.failovers = s->failovers;
    st.rejoins = s->rejoins;
    st.acked_exact = s->acked_exact;
    st.stopped_early = s->stopped_early;
    for (uint32_t i = 0; i < s->nnodes; i++) {
        const s_node_t     *n = &s->nodes[i];
        Descent__NodeState *d = &ns[i];
        descent__node_state__init(d);
        d->id = n->id;
        d->role = n->role;
        d->rank = n->rank;
        d->address = (char *)n->address;
        d->route.data = zmq_msg_data((zmq_msg_t *)&n->route);
        d->route.len = zmq_msg_size((zmq_msg_t *)&n->route);
        d->planned = n->planned;
        d->incarnation = n->incarnation;
        d->ready = n->ready;
        d->done = n->done;
        d->dead = n->dead;
        d->at_barrier = n->at_barrier;
        d->step = n->step;
        d->steps_total = n->steps_total;
        d->examples = n->examples;
        d->bytes_sent = n->bytes_sent;
        d->bytes_received = n->bytes_recv;
        d->epoch = n->epoch;
        if (n->acked) {
            d->n_acked = d->n_acked_base = s->map.nranges;
            d->acked = n->acked;
            d->acked_base = n->acked_base;
        }
        nsp[i] = d;
    }
    st.n_nodes = s->nnodes;
    st.nodes = nsp;
    for (int e = 0; e < s->cfg->epochs; e++) {
        descent__epoch_state__init(&es[e]);
        es[e].reports = s->epochs[e].reports;
        es[e].loss_sum = s->epochs[e].loss_sum;
        es[e].acc_sum = s->epochs[e].acc_sum;
        es[e].test_loss = s->epochs[e].test_loss;
        es[e].test_acc = s->epochs[e].test_acc;
        es[e].val_loss = s->epochs[e].val_loss;
        es[e].val_acc = s->epochs[e].val_acc;
        esp[e] = &es[e];
    }
    st.n_epochs = (size_t)s->cfg->epochs;
    st.epochs = esp;
    size_t len = descent__sched_state__get_packed_size(&st);
    buf = malloc(len + 1);
    if (buf) {
        descent__sched_state__pack(&st, buf);
        char path[DS_STR_MAX + 32];
        snprintf(path, sizeof path, "%s/scheduler.state", s->cfg->out);
        ds_part_t part = {buf, len};
        rc = ds_write_atomic(path, &part, 1, err, errlen);
    }
    ds_shard_map_pb_free(&mp);
out:
    if (!buf) {
        s->dirty = true; // try again on the next tick
    }
    free(buf);
    free(nds);
    free(store);
    free(ns);
    free(nsp);
    free(es);
    free(esp);
    return rc;
}

// s_recover loads <out>/scheduler.state written by a scheduler of the same
// job that was killed mid-training. Nodes keep their ids, ranks and
// routing ids, so they carry on without registering again. Returns 0 or
// -1 with the reason in whyout.
static int
s_recover(s_sched_t *s, char *whyout, size_t whylen)
{
    char     path[DS_STR_MAX + 32], err[DS_STR_MAX + 96];
    uint8_t *buf = NULL;
    size_t   len = 0;
    snprintf(path, sizeof path, "%s/scheduler.state", s->cfg->out);
    if (ds_read_file(path, 64u << 20, &buf, &len, err, sizeof err) != 0) {
        return ds_err(whyout, whylen, -1, "cannot recover: %s", err);
    }
    Descent__SchedState *st = descent__sched_state__unpack(NULL, len, buf);
    free(buf);
    const char *why = NULL;
    if (!st) {
        why = "not a scheduler state";
    } else if (strcmp(st->job, s->cfg->job) != 0) {
        why = "the state is of another job";
    } else if (st->phase != PHASE_TRAINING || !st->map) {
        why = "the job was not training";
    } else if (st->n_nodes > (size_t)s->ncap ||
               st->n_epochs != (size_t)s->cfg->epochs) {
        why = "the state does not match the job's servers, workers or epochs";
    }
    char merr[256];
    if (!why &&
        ds_shard_map_from_pb(&s->map, st->map, merr, sizeof merr) != 0) {
        why = merr;
    }
    for (size_t i = 0; !why && i < st->n_nodes; i++) {
        const Descent__NodeState *d = st->nodes[i];
        if (d->id != i + 1 || (d->n_acked && (d->n_acked != s->map.nranges ||
                                              d->n_acked_base != d->n_acked))) {
            why = "a node record is malformed";
        }
    }
    if (why) {
        ds_err(whyout, whylen, -1, "cannot recover from %s: %s", path, why);
        descent__sched_state__free_unpacked(st, NULL);
        return -1;
    }
    uint64_t now = uv_now(s->loop);
    s->phase = PHASE_TRAINING;
    s->num_keys = st->num_keys;
    s->dim = st->dim;
    s->classes = st->classes;
    s->start_epoch = st->start_epoch;
    s->start_ms = now - (uint64_t)(st->wall_seconds * 1000.0);
    s->train_start_ms = now - (uint64_t)(st->train_seconds * 1000.0);
    s->phase_ms = now;
    s->failovers = st->failovers;
    s->rejoins = st->rejoins;
    s->acked_exact = st->acked_exact;
    s->stopped_early = st->stopped_early;
    for (size_t e = 0; e < st->n_epochs; e++) {
        const Descent__EpochState *es = st->epochs[e];
        s->epochs[e] =
            (s_epoch_t){es->reports,  es->loss_sum, es->acc_sum, es->test_loss,
                        es->test_acc, es->val_loss, es->val_acc};
    }
    for (size_t i = 0; i < st->n_nodes; i++) {
        const Descent__NodeState *d = st->nodes[i];
        s_node_t                 *n = &s->nodes[i];
        n->id = d->id;
        n->role = d->role;
        n->rank = d->rank;
        snprintf(n->address, sizeof n->address, "%s", d->address);
        zmq_msg_init_size(&n->route, d->route.len);
        memcpy(zmq_msg_data(&n->route), d->route.data, d->route.len);
        n->heard_ms = now;
        n->planned = d->planned;
        n->incarnation = d->incarnation;
        n->ready = d->ready;
        n->done = d->done;
        n->dead = d->dead;
        n->at_barrier = d->at_barrier;
        n->step = d->step;
        n->steps_total = d->steps_total;
        n->examples = d->examples;
        n->bytes_sent = d->bytes_sent;
        n->bytes_recv = d->bytes_received;
        n->epoch = d->epoch;
        if (d->n_acked) {
            n->acked = calloc(d->n_acked, sizeof *n->acked);
            n->acked_base = calloc(d->n_acked, sizeof *n->acked_base);
            if (n->acked && n->acked_base) {
                memcpy(n->acked, d->acked, d->n_acked * sizeof *n->acked);
                memcpy(n->acked_base, d->acked_base,
                       d->n_acked * sizeof *n->acked_base);
            }
        }
        if (n->role == DESCENT__ROLE__SERVER) {
            s->nservers++;
        } else {
            s->nworkers++;
        }
        s->nnodes++;
    }
    descent__sched_state__free_unpacked(st, NULL);
    s->want_workers = s->nworkers;
    if (s_audit_alloc(s) != 0) {
        return ds_err(whyout, whylen, -1, "cannot recover: out of memory");
    }
    ds_log(DS_INFO, "scheduler",
           "recovered job \"%s\" from %s: %u nodes, map epoch %" PRIu64
           ", training for %.1f s so far",
           s->cfg->job, path, s->nnodes, s->map.epoch,
           (double)(now - s->train_start_ms) / 1000.0);
    return 0;
}

// s_adopt gives the partition of worker n, silent past the timeout, to a
// worker that has finished its own and waits at the barrier (async jobs
// only: under bsp and ssp the silent worker holds the others back). The
// silent worker is fenced; the adopter continues from n's last reported
// step. Returns true if it did.
static bool
s_adopt(s_sched_t *s, s_node_t *n)
{
    if (s->phase != PHASE_TRAINING || n->done || n->dead ||
        strcmp(s->cfg->consistency, "async") != 0) {
        return false;
    }
    s_node_t *idle = NULL;
    for (uint32_t i = 0; i < s->nnodes && !idle; i++) {
        s_node_t *c = &s->nodes[i];
        if (c->role == DESCENT__ROLE__WORKER && c->at_barrier && !c->dead &&
            !c->done && !c->lost_ms && c != n) {
            idle = c;
        }
    }
    if (!idle) {
        return false;
    }
    s_fence(s, n, "this worker was silent; its partition was given to another");
    n->dead = true;
    n->lost_ms = 0;
    s->acked_exact = false;
    s->adoptions++;
    s->dirty = s->urgent = true;
    Descent__Header a;
    ds_msg_header_init(&a, DESCENT__TYPE__ADOPT);
    a.rank = n->rank;
    a.node_id = n->id;
    a.resume_step = n->step;
    idle->at_barrier = false;
    if (n->rank == 0) {
        idle->rank = 0; // rank 0's evaluation moves with its partition
    }
    s_send(s, idle, &a);
    ds_log(DS_WARN, "scheduler",
           "worker %u has been silent for %" PRIu64 " ms: worker %u takes "
           "over its partition (rank %u) from step %" PRIu64,
           n->id, uv_now(s->loop) - n->heard_ms, idle->id, n->rank, n->step);
    return true;
}

// s_stall_check notices that our own loop stalled past the failure
// timeout (the process was paused or starved): the timer runs every
// heartbeat. The nodes' messages of that time are still unread in our
// socket, so their silence is counted only from the stall (s_silent_ms),
// as servers do after a stall of theirs.
static void
s_stall_check(s_sched_t *s, uint64_t now)
{
    if (s->tick_ms && now - s->tick_ms > (uint64_t)s->cfg->timeout_ms) {
        s->paused_at = now;
        ds_log(DS_WARN, "scheduler",
               "the scheduler's loop stalled for %" PRIu64 " ms (paused?): "
               "no node is judged until it could have been heard again",
               now - s->tick_ms);
    }
    s->tick_ms = now;
}

static void
s_on_timer(uv_timer_t *t)
{
    s_sched_t *s = t->data;
    uint64_t   now = uv_now(s->loop);
    ds_log_suppressed(&s->peer_log, now, false, "scheduler");
    s_stall_check(s, now);
    if (s->phase == PHASE_JOINING &&
        now - s->start_ms > (uint64_t)s->cfg->join_timeout_ms) {
        s_fail(s,
               "only %d of %d servers and %d of %d workers joined within "
               "%d ms%s%s",
               s->nservers, s->cfg->servers, s->nworkers, s->want_workers,
               s->cfg->join_timeout_ms, s->refused[0] ? "; refused " : "",
               s->refused);
        return;
    }
    s_maybe_joined(s);
    bool starting = s->phase == PHASE_LOADING || s->phase == PHASE_PLACING;
    if (starting && now - s->phase_ms > (uint64_t)s->cfg->join_timeout_ms) {
        Descent__Role r = s->phase == PHASE_LOADING ? DESCENT__ROLE__WORKER
                                                    : DESCENT__ROLE__SERVER;
        for (uint32_t i = 0; i < s->nnodes; i++) {
            if (s->nodes[i].role == r && !s->nodes[i].ready) {
                s_fail(s, "%s %u did not get ready within %d ms",
                       s_role_name(r), s->nodes[i].id, s->cfg->join_timeout_ms);
                return;
            }
        }
    }
    if (!s_check_servers(s, now)) {
        return;
    }
    s_refill(s);
    for (uint32_t i = 0; i < s->nnodes; i++) {
        s_node_t *n = &s->nodes[i];
        if (n->done) {
            continue;
        }
        if (n->dead) {
            continue;
        }
        uint64_t silent = s_silent_ms(s, n, now);
        if (silent > (uint64_t)s->cfg->timeout_ms &&
            n->role == DESCENT__ROLE__WORKER && s_adopt(s, n)) {
            continue;
        }
        if (silent > (uint64_t)s->cfg->timeout_ms &&
            n->role == DESCENT__ROLE__WORKER && s->phase != PHASE_ENDED &&
            silent <= (uint64_t)s->cfg->join_timeout_ms) {
            // A worker holds nothing others need: a silent one (starved,
            // paused, restarting) is waited for up to join_timeout_ms, and
            // its requests stay exactly-once whenever they arrive.
            if (!n->lost_ms) {
                n->lost_ms = now;
                ds_log(DS_WARN, "scheduler",
                       "worker %u is silent (%" PRIu64 " ms); waiting up to "
                       "%d ms for it",
                       n->id, now - n->heard_ms, s->cfg->join_timeout_ms);
            }
            continue;
        }
        // Before training nothing is lost by waiting (data loading can
        // starve a small machine): a node silent that long fails the
        // start-up only after join_timeout_ms.
        uint64_t limit = s->phase == PHASE_TRAINING
                             ? (uint64_t)s->cfg->timeout_ms
                             : (uint64_t)s->cfg->join_timeout_ms;
        if (silent > limit) {
            s_fail(s, "%s %u%s%s is lost: nothing heard for %" PRIu64 " ms",
                   s_role_name(n->role), n->id, n->address[0] ? " at " : "",
                   n->address, now - n->heard_ms);
            return;
        }
    }
    s_maybe_end(s);
    if (s->stopping) {
        return;
    }
    char err[DS_STR_MAX + 160];
    if (s_save_state(s, err, sizeof err) != 0) {
        s_fail(s, "%s", err);
        return;
    }
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__HEARTBEAT);
    s_broadcast(s, DESCENT__ROLE__ROLE_UNSPECIFIED, &h);
}

static void
s_on_bar(uv_timer_t *t)
{
    s_sched_t *s = t->data;
    if (s->phase != PHASE_TRAINING) {
        return;
    }
    uint64_t step = 0, total = 0;
    uint32_t epoch = 0;
    for (uint32_t i = 0; i < s->nnodes; i++) {
        step += s->nodes[i].step;
        total += s->nodes[i].steps_total;
        if (s->nodes[i].role == DESCENT__ROLE__WORKER &&
            (epoch == 0 || s->nodes[i].epoch < epoch)) {
            epoch = s->nodes[i].epoch;
        }
    }
    if (total == 0) {
        return;
    }
    int  width = 30, fill = (int)((double)step / (double)total * width);
    char bar[64];
    for (int i = 0; i < width; i++) {
        bar[i] = i < fill ? '#' : '.';
    }
    bar[width] = '\0';
    printf("\r\033[K[%s] %3.0f%%  epoch %u/%d  %.0f examples/s", bar,
           100.0 * (double)step / (double)total,
           epoch < (uint32_t)s->cfg->epochs ? epoch + 1 : epoch, s->cfg->epochs,
           s_examples_per_second(s));
    fflush(stdout);
}

// s_on_signal ends the job. descent run writes why it stops the job to
// <out>/run.cause before it signals us: that is the cause the summary
// gives, not the signal.
static void
s_on_signal(uv_signal_t *sig, int signum)
{
    s_sched_t     *s = sig->data;
    char           path[DS_STR_MAX + 32];
    unsigned char *buf = NULL;
    size_t         len = 0;
    snprintf(path, sizeof path, "%s/run.cause", s->cfg->out);
    if (ds_read_file(path, 4096, &buf, &len, NULL, 0) == 0 && len > 0) {
        buf[len] = '\0';
        buf[strcspn((char *)buf, "\n")] = '\0';
        s_fail(s, "%s", (char *)buf);
    } else {
        s_fail(s, "stopped by signal %d", signum);
    }
    free(buf);
}

// s_bind_endpoint picks what the scheduler binds: cluster.bind when it names
// a port, else all interfaces on the port of cluster.scheduler.
static void
s_bind_endpoint(const ds_config_t *cfg, char *out, size_t len)
{
    const char *port = strrchr(cfg->bind, ':');
    if (port && strcmp(port, ":*") != 0 && strcmp(port, ":0") != 0) {
        snprintf(out, len, "%s", cfg->bind);
        return;
    }
    port = strrchr(cfg->scheduler, ':');
    snprintf(out, len, "tcp://0.0.0.0%s", port ? port : ":7070");
}

int
ds_scheduler_main(const ds_config_t *cfg)
{
    uv_loop_t loop;
    s_sched_t s;
    // A job that cannot start says why in its summary too: an old summary
    // in the same directory must not stand.
    char why[DS_STR_MAX + 160] = "";
    memset(&s, 0, sizeof s);
    uv_loop_init(&loop);
    s.cfg = cfg;
    s.loop = &loop;
    s.start_ms = uv_now(&loop);
    s.limits.max_values = 0;
    s.limits.max_keys = 0;
    ds_ratelog_init(&s.peer_log, DS_RATELOG_BURST, DS_RATELOG_GLOBAL_BURST,
                    DS_RATELOG_INTERVAL_MS);
    // Elastic workers: room for as many as the option allows.
    s.ncap = cfg->servers + (cfg->workers ? cfg->workers : 4096);
    s.want_workers = cfg->workers;
    s.nodes = calloc((size_t)s.ncap, sizeof *s.nodes);
    s.epochs = calloc((size_t)cfg->epochs, sizeof *s.epochs);
    s.acked_exact = true;
    if (!s.nodes || !s.epochs) {
        ds_log(DS_ERROR, "scheduler", "out of memory");
        goto fail;
    }
    for (int e = 0; e < cfg->epochs; e++) {
        s.epochs[e].test_loss = s.epochs[e].test_acc = NAN;
        s.epochs[e].val_loss = s.epochs[e].val_acc = NAN;
    }
    int rc = ds_mkdirs(cfg->out);
    if (rc != 0) {
        ds_log(DS_ERROR, "scheduler",
               "cannot create the output directory "
               "%s: %s",
               cfg->out, strerror(-rc));
        goto fail;
    }
    snprintf(s.metrics, sizeof s.metrics, "%s/metrics.jsonl", cfg->out);
    if (cfg->resume && s_read_progress(&s, why, sizeof why) != 0) {
        goto fail;
    }
    if (getrandom(&s.instance, sizeof s.instance, 0) != sizeof s.instance) {
        s.instance = (uint64_t)getpid() << 20;
    }
    s.instance |= 1;
    if (cfg->recover && s_recover(&s, why, sizeof why) != 0) {
        goto fail;
    }
    // A new job starts an empty log; a resumed one appends to its own.
    rc = cfg->resume || cfg->recover
             ? ds_append(s.metrics, "", 0, why, sizeof why)
             : ds_write_atomic(s.metrics, NULL, 0, why, sizeof why);
    if (rc != 0) {
        goto fail;
    }
    s.ctx = zmq_ctx_new();
    void *sock = ds_zsock_open(s.ctx, ZMQ_ROUTER, 100, 2 << 20);
    int   handover = 1;
    // A node that reconnects with its routing id takes over its old pipe.
    if (sock) {
        zmq_setsockopt(sock, ZMQ_ROUTER_HANDOVER, &handover, sizeof handover);
    }
    char ep[DS_STR_MAX], bound[DS_STR_MAX], err[DS_STR_MAX + 64];
    s_bind_endpoint(cfg, ep, sizeof ep);
    rc = sock ? ds_zsock_bind(sock, ep, bound, sizeof bound, err, sizeof err)
              : -ENOMEM;
    if (rc != 0) {
        ds_log(DS_ERROR, "scheduler", "%s", sock ? err : "no socket");
        if (sock) {
            zmq_close(sock);
        }
        goto fail;
    }
    rc = ds_zsock_init(&s.sock, &loop, sock, s_on_msg, &s);
    if (rc != 0) {
        ds_log(DS_ERROR, "scheduler", "cannot watch the socket: %s",
               uv_strerror(rc));
        zmq_close(sock);
        goto fail;
    }
    s.sock_open = true;
    if (!cfg->recover) {
        s.start_ms = s.phase_ms = uv_now(&loop);
    }
    uv_timer_init(&loop, &s.timer);
    uv_timer_init(&loop, &s.bar);
    s.timer.data = s.bar.data = &s;
    uv_timer_start(&s.timer, s_on_timer, (uint64_t)cfg->heartbeat_ms,
                   (uint64_t)cfg->heartbeat_ms);
    s.plateau = strcmp(cfg->schedule, "plateau") == 0;
    ds_plateau_init(&s.pl, cfg->lr_gamma, cfg->plateau_patience,
                    cfg->plateau_threshold, cfg->plateau_cooldown,
                    cfg->lr_min / cfg->lr);
    s.use_bar = strcmp(cfg->progress, "bar") == 0 ||
                (strcmp(cfg->progress, "auto") == 0 && isatty(STDOUT_FILENO));
    if (s.use_bar) {
        uv_timer_start(&s.bar, s_on_bar, 200, 200);
    }
    uv_signal_init(&loop, &s.sigint);
    uv_signal_init(&loop, &s.sigterm);
    s.sigint.data = s.sigterm.data = &s;
    uv_signal_start(&s.sigint, s_on_signal, SIGINT);
    uv_signal_start(&s.sigterm, s_on_signal, SIGTERM);
    ds_log(DS_INFO, "scheduler",
           "job \"%s\" on %s: waiting for %d servers "
           "and %d workers",
           cfg->job, bound, cfg->servers, cfg->workers);
    if (cfg->workers == 0) {
        ds_log(DS_INFO, "scheduler",
               "workers = 0: taking every worker that joins until none has "
               "for %d ms",
               cfg->join_window_ms);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    ds_log_suppressed(&s.peer_log, uv_now(&loop), true, "scheduler");
    for (uint32_t i = 0; i < s.nnodes; i++) {
        zmq_msg_close(&s.nodes[i].route);
        free(s.nodes[i].acked);
        free(s.nodes[i].acked_base);
    }
    zmq_ctx_term(s.ctx);
    ds_shard_map_fini(&s.map);
    free(s.aud_applied);
    free(s.aud_digest);
    free(s.aud_bdigest);
    free(s.aud_have);
    free(s.nodes);
    free(s.epochs);
    uv_loop_close(&loop);
    return s.exit_code;
fail:
    if (why[0]) {
        char serr[DS_STR_MAX + 160];
        ds_log(DS_ERROR, "scheduler", "%s", why);
        if (s_write_summary(&s, why, serr, sizeof serr) != 0) {
            ds_log(DS_ERROR, "scheduler", "%s", serr);
        }
    }
    if (s.ctx) {
        zmq_ctx_term(s.ctx);
    }
    free(s.nodes);
    free(s.epochs);
    uv_loop_close(&loop);
    return 1;
}
