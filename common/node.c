// SPDX-License-Identifier: MIT
// node - what servers and workers share: the scheduler link, registration,
// heartbeats both ways, signals and an orderly stop.
#include "common/node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

// s_note_id writes our node id to <out>/nodes/<pid>, so that whoever
// started this process (descent run) can start it again under the same id.
static void
s_note_id(const ds_node_t *n)
{
    char dir[DS_STR_MAX + 16], path[DS_STR_MAX + 48];
    snprintf(dir, sizeof dir, "%s/nodes", n->cfg->out);
    snprintf(path, sizeof path, "%s/%d", dir, (int)getpid());
    FILE *f = ds_mkdirs(dir) == 0 ? fopen(path, "w") : NULL;
    if (f) {
        fprintf(f, "%u\n", n->id);
        fclose(f);
    }
}

static void s_stop(ds_node_t *n, int code, const char *why, bool tell);

static void
s_on_sched(ds_zsock_t *z, void *arg)
{
    ds_node_t      *n = arg;
    ds_msg_t        msg;
    char            err[256] = "";
    Descent__Status st;
    int             rc =
        ds_msg_take(z->sock, false, &n->limits, &msg, &st, err, sizeof err);
    if (rc == -EAGAIN) {
        ds_msg_fini(&msg);
        return;
    }
    if (rc != 0) {
        ds_log_peer(&n->peer_log, uv_now(n->loop), DS_WARN, n->who,
                    "the scheduler", ds_msg_status_name(st),
                    "bad message from the scheduler: %s", err);
        ds_msg_fini(&msg);
        return;
    }
    n->heard_ms = uv_now(n->loop);
    if (n->sched_away) {
        n->sched_away = false;
        ds_log(DS_INFO, n->who, "the scheduler answers again");
    }
    const Descent__Header *h = msg.hdr;
    if (h->instance != 0 && h->instance != n->instance) {
        bool again = n->instance != 0;
        n->instance = h->instance;
        if (again) {
            ds_log(DS_INFO, n->who,
                   "a restarted scheduler answers; it carries on the job");
            if (n->on_back) {
                n->on_back(n);
            }
        }
    }
    if (h->epoch > n->epoch && h->type != DESCENT__TYPE__SHARD_MAP) {
        n->epoch = h->epoch;
    }
    switch (h->type) {
    case DESCENT__TYPE__HEARTBEAT:
        break;
    case DESCENT__TYPE__ERROR: {
        char why[512];
        snprintf(why, sizeof why, "the scheduler refused a message: %s (%s)",
                 h->error, ds_msg_status_name(h->status));
        s_stop(n, 1, why, false);
        break;
    }
    case DESCENT__TYPE__SHUTDOWN:
        n->replaced = h->status == DESCENT__STATUS__STALE_EPOCH;
        if (n->replaced) {
            s_stop(n, DS_EXIT_REPLACED, h->error, false);
        } else if (h->status != DESCENT__STATUS__OK && h->error[0]) {
            s_stop(n, 1, h->error, false);
        } else {
            s_stop(n, 0, "the scheduler ended the job", false);
        }
        break;
    case DESCENT__TYPE__REGISTER_ACK:
        if (h->status != DESCENT__STATUS__OK) {
            char why[512];
            snprintf(why, sizeof why, "the scheduler refused us: %s (%s)",
                     h->error, ds_msg_status_name(h->status));
            // STALE_EPOCH: our place was given to another node meanwhile.
            s_stop(n,
                   h->status == DESCENT__STATUS__STALE_EPOCH ? DS_EXIT_REPLACED
                                                             : 1,
                   why, false);
            break;
        }
        n->id = h->node_id;
        n->rank = h->rank;
        n->workers = h->workers;
        if (h->seq_base > n->seq) {
            // A new incarnation numbers its requests above the old one's.
            n->seq = h->seq_base;
        }
        ds_log(DS_INFO, n->who, "registered as node %u", n->id);
        s_note_id(n);
        n->on_msg(n, &msg);
        break;
    default:
        n->on_msg(n, &msg);
        break;
    }
    ds_msg_fini(&msg);
}

static void
s_on_timer(uv_timer_t *t)
{
    ds_node_t *n = t->data;
    uint64_t   now = uv_now(n->loop);
    ds_log_suppressed(&n->peer_log, now, false, n->who);
    if (n->id == 0) {
        if (now - n->start_ms > (uint64_t)n->cfg->join_timeout_ms) {
            char why[512];
            snprintf(why, sizeof why,
                     "the scheduler at %s did not answer within %d ms",
                     n->cfg->scheduler, n->cfg->join_timeout_ms);
            s_stop(n, 1, why, false);
        }
        return;
    }
    uint64_t silent = now - n->heard_ms;
    if (silent > (uint64_t)n->cfg->scheduler_timeout_ms) {
        char why[512];
        snprintf(why, sizeof why,
                 "lost the scheduler at %s: nothing heard for %llu ms",
                 n->cfg->scheduler, (unsigned long long)silent);
        s_stop(n, 1, why, false);
        return;
    }
    if (silent > (uint64_t)n->cfg->timeout_ms && !n->sched_away) {
        // It may be restarting: carry on, and say so once.
        n->sched_away = true;
        ds_log(DS_WARN, n->who,
               "nothing heard from the scheduler for %llu ms; carrying on "
               "for up to %d ms",
               (unsigned long long)silent, n->cfg->scheduler_timeout_ms);
    }
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__HEARTBEAT);
    ds_node_send(n, &h);
}

static void
s_on_signal(uv_signal_t *s, int signum)
{
    ds_node_t *n = s->data;
    char       why[64];
    snprintf(why, sizeof why, "stopping on signal %d", signum);
    s_stop(n, 1, why, false);
}

int
ds_node_start(ds_node_t *n, const char *address)
{
    n->limits.max_values = (uint64_t)n->cfg->max_message_mb * 1024 * 1024 / 4;
    n->limits.max_keys = n->limits.max_values / 2;
    ds_ratelog_init(&n->peer_log, DS_RATELOG_BURST, DS_RATELOG_GLOBAL_BURST,
                    DS_RATELOG_INTERVAL_MS);
    if (!n->ctx) {
        n->ctx = zmq_ctx_new();
    }
    if (!n->ctx) {
        return -errno;
    }
    void *s = ds_zsock_open(n->ctx, ZMQ_DEALER, 1000,
                            (long long)n->cfg->max_message_mb << 20);
    // A routing id of our own survives TCP reconnects; ids starting with a
    // zero byte are reserved by ZeroMQ.
    unsigned char rid[16] = {'n'};
    if (s && getrandom(rid + 1, sizeof rid - 1, 0) == sizeof rid - 1) {
        zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, sizeof rid);
    }
    if (!s || zmq_connect(s, n->cfg->scheduler) != 0) {
        int e = errno;
        ds_log(DS_ERROR, n->who, "cannot connect to the scheduler at %s: %s",
               n->cfg->scheduler, zmq_strerror(e));
        if (s) {
            zmq_close(s);
        }
        return -e;
    }
    int rc = ds_zsock_init(&n->sched, n->loop, s, s_on_sched, n);
    if (rc != 0) {
        zmq_close(s);
        return rc;
    }
    n->start_ms = n->heard_ms = uv_now(n->loop);
    uv_timer_init(n->loop, &n->hb);
    n->hb.data = n;
    uv_timer_start(&n->hb, s_on_timer, (uint64_t)n->cfg->heartbeat_ms,
                   (uint64_t)n->cfg->heartbeat_ms);
    uv_signal_init(n->loop, &n->sigint);
    uv_signal_init(n->loop, &n->sigterm);
    n->sigint.data = n->sigterm.data = n;
    uv_signal_start(&n->sigint, s_on_signal, SIGINT);
    uv_signal_start(&n->sigterm, s_on_signal, SIGTERM);

    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__REGISTER);
    h.role = n->role;
    h.address = (char *)address;
    h.node_id = (uint32_t)n->cfg->node_id;
    // The scheduler refuses us unless our job-wide settings are the job's.
    char **settings = NULL;
    size_t nsettings = 0;
    if (ds_config_fingerprint(n->cfg, &settings, &nsettings) == 0) {
        h.settings = settings;
        h.n_settings = nsettings;
    }
    ds_node_send(n, &h);
    free(settings);
    return 0;
}

int
ds_node_send(ds_node_t *n, Descent__Header *h)
{
    h->job = (char *)n->cfg->job;
    h->sender = n->id;
    h->seq = ++n->seq;
    h->epoch = n->epoch;
    int rc = ds_msg_send(n->sched.sock, NULL, h, NULL, NULL);
    if (rc != 0) {
        ds_log(DS_WARN, n->who, "cannot send %s to the scheduler: %s",
               ds_msg_type_name(h->type), zmq_strerror(-rc));
    }
    return rc;
}

void
ds_node_stop(ds_node_t *n, int code, const char *why)
{
    s_stop(n, code, why, code != 0 && code != DS_EXIT_REPLACED);
}

// s_stop stops the node (ds_node_stop). When tell is set, a registered
// node first sends the scheduler an ERROR with why, so that the job's
// summary gives the node and its reason rather than a lost connection or a
// signal: the scheduler ends the job with it.
static void
s_stop(ds_node_t *n, int code, const char *why, bool tell)
{
    if (n->stopping) {
        return;
    }
    if (tell && n->id != 0 && why) {
        Descent__Header h;
        ds_msg_header_init(&h, DESCENT__TYPE__ERROR);
        h.status = DESCENT__STATUS__REFUSED;
        h.error = (char *)why;
        ds_node_send(n, &h);
    }
    n->stopping = true;
    n->exit_code = code;
    if (why) {
        ds_log(code ? DS_ERROR : DS_INFO, n->who, "%s", why);
    }
    ds_zsock_close(&n->sched, NULL);
    uv_close((uv_handle_t *)&n->hb, NULL);
    uv_close((uv_handle_t *)&n->sigint, NULL);
    uv_close((uv_handle_t *)&n->sigterm, NULL);
    if (n->on_stop) {
        n->on_stop(n);
    }
}

void
ds_node_fini(ds_node_t *n)
{
    ds_log_suppressed(&n->peer_log, uv_now(n->loop), true, n->who);
    if (n->ctx) {
        zmq_ctx_term(n->ctx);
        n->ctx = NULL;
    }
}
