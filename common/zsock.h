// SPDX-License-Identifier: MIT
// zsock - a ZeroMQ socket inside a libuv loop (prepare/check/idle pattern).
#ifndef DS_ZSOCK_H
#define DS_ZSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct ds_zsock ds_zsock_t;

// ds_zsock_fn handles input: it must consume exactly one whole message
// (ds_msg_recv does). It may send on any socket and may close z.
typedef void ds_zsock_fn(ds_zsock_t *z, void *arg);

// ds_zsock_done_fn runs once all of z's handles are closed and its 0MQ
// socket is closed; the owner may free z's memory here, not before.
typedef void ds_zsock_done_fn(ds_zsock_t *z, void *arg);

// ds_zsock_t is embedded by its owner. ZMQ_FD is edge-triggered and
// zmq_send/zmq_recv consume edges, so the fd is only a wake-up; the truth is
// ZMQ_EVENTS, read before every sleep (prepare) and after every poll (check).
struct ds_zsock {
    void             *sock;      // 0MQ socket; owned, zmq_close()d last
    uv_poll_t         poll;      // UV_READABLE on ZMQ_FD: wake-up only
    uv_prepare_t      prepare;   // before blocking: is input already pending?
    uv_check_t        check;     // after polling: run the handler
    uv_idle_t         idle;      // active only while input is pending
    int               budget;    // most messages handled per loop turn
    ds_zsock_fn      *on_msg;    // consumes one message
    void             *arg;       // passed to on_msg and on_closed
    int               nopen;     // uv handles not yet closed
    bool              closing;   // ds_zsock_close was called
    ds_zsock_done_fn *on_closed; // called when everything is closed
};

// ds_zsock_open creates a 0MQ socket of `type` with the house options:
// ZMQ_LINGER linger_ms, ZMQ_MAXMSGSIZE max_bytes (0 = unlimited), high-water
// marks of 100000 messages. Returns the socket or NULL with errno set.
void *ds_zsock_open(void *ctx, int type, int linger_ms, long long max_bytes);

// ds_zsock_init puts sock (already bound or connected) into loop and starts
// watching it for input. z takes ownership of sock. Returns 0 or a negative
// errno (sock is then still the caller's).
int ds_zsock_init(ds_zsock_t *z, uv_loop_t *loop, void *sock,
                  ds_zsock_fn *on_msg, void *arg);

// ds_zsock_close stops input, closes the uv handles and then the 0MQ socket,
// and calls on_closed (may be NULL). Idempotent; safe from inside on_msg.
void ds_zsock_close(ds_zsock_t *z, ds_zsock_done_fn *on_closed);

// ds_zsock_bind binds sock to endpoint; "tcp://host:*" picks a free port.
// The endpoint actually bound is written to bound. Returns 0 or a negative
// errno with a message naming the endpoint in err.
int ds_zsock_bind(void *sock, const char *endpoint, char *bound,
                  size_t boundlen, char *err, size_t errlen);

// ds_endpoint_advertise builds the endpoint peers should use: the bound
// endpoint's port with host `advertise` (or advertise itself when it
// already has a scheme and port). Returns 0 or -EINVAL.
int ds_endpoint_advertise(const char *bound, const char *advertise, char *out,
                          size_t outlen);

#endif
