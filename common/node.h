// SPDX-License-Identifier: MIT
// node - what servers and workers share: the scheduler link, registration,
// heartbeats both ways, signals and an orderly stop.
#ifndef DS_NODE_H
#define DS_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/config.h"
#include "common/msg.h"
#include "common/ratelog.h"
#include "common/zsock.h"

// DS_EXIT_REPLACED is the exit status of a node the scheduler declared dead
// and replaced (it was paused or cut off past the failure timeout):
// nothing failed that a restart with its node id does not mend.
#define DS_EXIT_REPLACED 3

typedef struct ds_node ds_node_t;

// ds_node_msg_fn handles a checked message from the scheduler that node.c
// does not handle itself (everything but HEARTBEAT and SHUTDOWN).
typedef void ds_node_msg_fn(ds_node_t *n, const ds_msg_t *msg);

// ds_node_back_fn is called when a restarted scheduler (a new instance)
// is heard: the role sends again what the old one may have lost.
typedef void ds_node_back_fn(ds_node_t *n);

// ds_node_stop_fn is called once when the node stops: the role closes its
// own handles so that the loop can end.
typedef void ds_node_stop_fn(ds_node_t *n);

// ds_node_t is embedded in a role's state; role points back to it.
struct ds_node {
    const ds_config_t *cfg;        // settings; not owned
    uv_loop_t         *loop;       // the process's loop; not owned
    void              *ctx;        // 0MQ context; owned
    const char        *who;        // "server" or "worker", for logs
    Descent__Role      role;       // our role
    ds_zsock_t         sched;      // DEALER connected to the scheduler
    uv_timer_t         hb;         // heartbeat and liveness timer
    uv_signal_t        sigint;     // SIGINT: stop
    uv_signal_t        sigterm;    // SIGTERM: stop
    uint32_t           id;         // node id from the scheduler, 0 before
    uint32_t           rank;       // worker rank from the scheduler
    uint32_t           workers;    // workers in the job, from the scheduler
    uint64_t           seq;        // last request sequence number sent
    uint64_t           epoch;      // newest shard-map epoch seen
    uint64_t           heard_ms;   // loop time the scheduler was last heard
    uint64_t           start_ms;   // loop time of ds_node_start
    bool               stopping;   // ds_node_stop was called
    bool               sched_away; // the scheduler is silent (logged)
    bool               replaced;   // the scheduler declared us dead and
                                   // gave our work to others
    int              exit_code;    // process exit status
    ds_node_msg_fn  *on_msg;       // role handler for scheduler messages
    ds_node_stop_fn *on_stop;      // role shutdown hook
    ds_node_back_fn *on_back;      // a restarted scheduler; may be NULL
    uint64_t         instance;     // the scheduler process last heard
    void            *role_data;    // the role's state
    ds_limits_t      limits;       // what this node accepts
    ds_ratelog_t     peer_log;     // limits logs of peers' bad messages
};

// ds_node_start creates the context (unless the role made n->ctx), connects to
// the scheduler and sends REGISTER with our role and advertised address (may
// be ""). The link has a random routing id of its own, so that the scheduler
// recognises us across a TCP reconnect. Returns 0 once the link, timers and
// signals are running (a failed REGISTER send is only logged: the join
// deadline catches it), or a negative errno, logged, with nothing running.
int ds_node_start(ds_node_t *n, const char *address);

// ds_node_send sends h to the scheduler after filling job, sender, seq and
// epoch. Returns 0 or a negative errno.
int ds_node_send(ds_node_t *n, Descent__Header *h);

// ds_node_stop stops the node with exit status code: it logs why (if not
// NULL; at error level when code != 0), closes the scheduler link, timers
// and signals, and calls on_stop. A registered node that fails (code not 0
// nor DS_EXIT_REPLACED) first sends the scheduler an ERROR with why: the
// scheduler ends the job with that cause. Idempotent.
void ds_node_stop(ds_node_t *n, int code, const char *why);

// ds_node_fini logs what n->peer_log still holds back and terminates the
// 0MQ context after the loop has ended.
void ds_node_fini(ds_node_t *n);

#endif
