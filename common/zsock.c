// SPDX-License-Identifier: MIT
// zsock - a ZeroMQ socket inside a libuv loop (prepare/check/idle pattern).
#include "common/zsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

static int
s_events(ds_zsock_t *self)
{
    int    events = 0;
    size_t len = sizeof events;
    // ETERM while shutting down reads as "no events"; close() handles it.
    if (zmq_getsockopt(self->sock, ZMQ_EVENTS, &events, &len) != 0) {
        return 0;
    }
    return events;
}

static void
s_noop_poll_cb(uv_poll_t *h, int status, int events)
{
    (void)h;
    (void)status;
    (void)events;
}

static void
s_noop_idle_cb(uv_idle_t *h)
{
    (void)h;
}

static void
s_prepare_cb(uv_prepare_t *h)
{
    ds_zsock_t *self = h->data;
    if (!self->closing && (s_events(self) & ZMQ_POLLIN)) {
        uv_idle_start(&self->idle, s_noop_idle_cb); // poll timeout becomes 0
    }
}

static void
s_check_cb(uv_check_t *h)
{
    ds_zsock_t *self = h->data;
    uv_idle_stop(&self->idle);
    for (int n = 0; n < self->budget && !self->closing; n++) {
        if (!(s_events(self) & ZMQ_POLLIN)) {
            break;
        }
        self->on_msg(self, self->arg);
    }
    // Budget spent with input left: the next prepare sees POLLIN and keeps
    // the loop awake, after timers and other sockets have had their turn.
}

void *
ds_zsock_open(void *ctx, int type, int linger_ms, long long max_bytes)
{
    void *sock = zmq_socket(ctx, type);
    if (!sock) {
        return NULL;
    }
    int     hwm = 100000;
    int64_t maxmsg = max_bytes > 0 ? max_bytes : -1;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    return sock;
}

int
ds_zsock_init(ds_zsock_t *z, uv_loop_t *loop, void *sock, ds_zsock_fn *on_msg,
              void *arg)
{
    memset(z, 0, sizeof *z);
    z->sock = sock;
    z->on_msg = on_msg;
    z->arg = arg;
    z->budget = 64;
    int    fd;
    size_t len = sizeof fd;
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &len) != 0) {
        return -errno;
    }
    int rc = uv_poll_init(loop, &z->poll, fd);
    if (rc != 0) {
        return rc;
    }
    uv_prepare_init(loop, &z->prepare);
    uv_check_init(loop, &z->check);
    uv_idle_init(loop, &z->idle);
    z->poll.data = z->prepare.data = z->check.data = z->idle.data = z;
    z->nopen = 4;
    uv_poll_start(&z->poll, UV_READABLE, s_noop_poll_cb);
    uv_prepare_start(&z->prepare, s_prepare_cb);
    uv_check_start(&z->check, s_check_cb);
    return 0;
}

static void
s_closed_cb(uv_handle_t *h)
{
    ds_zsock_t *self = h->data;
    if (--self->nopen > 0) {
        return;
    }
    zmq_close(self->sock);
    self->sock = NULL;
    if (self->on_closed) {
        self->on_closed(self, self->arg);
    }
}

void
ds_zsock_close(ds_zsock_t *z, ds_zsock_done_fn *on_closed)
{
    if (z->closing || z->nopen == 0) {
        return;
    }
    z->closing = true;
    z->on_closed = on_closed;
    uv_close((uv_handle_t *)&z->poll, s_closed_cb);
    uv_close((uv_handle_t *)&z->prepare, s_closed_cb);
    uv_close((uv_handle_t *)&z->check, s_closed_cb);
    uv_close((uv_handle_t *)&z->idle, s_closed_cb);
}

int
ds_zsock_bind(void *sock, const char *endpoint, char *bound, size_t boundlen,
              char *err, size_t errlen)
{
    if (zmq_bind(sock, endpoint) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot bind %s: %s", endpoint, zmq_strerror(e));
        return -e;
    }
    size_t len = boundlen;
    if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, bound, &len) != 0) {
        snprintf(bound, boundlen, "%s", endpoint);
    }
    return 0;
}

int
ds_endpoint_advertise(const char *bound, const char *advertise, char *out,
                      size_t outlen)
{
    if (strstr(advertise, "://")) {
        const char *host = strstr(advertise, "://") + 3;
        const char *colon = strrchr(host, ':');
        if (colon && colon[1] != '\0' && colon[1] != '*') {
            int n = snprintf(out, outlen, "%s", advertise);
            return n < 0 || (size_t)n >= outlen ? -EINVAL : 0;
        }
    }
    const char *port = strrchr(bound, ':');
    const char *scheme_end = strstr(bound, "://");
    if (!port || !scheme_end || port < scheme_end + 3) {
        return -EINVAL;
    }
    const char *host = advertise;
    if (strstr(host, "://")) {
        host = strstr(host, "://") + 3;
    }
    size_t hostlen = strcspn(host, ":");
    int n = snprintf(out, outlen, "%.*s%.*s%s", (int)(scheme_end + 3 - bound),
                     bound, (int)hostlen, host, port);
    return n < 0 || (size_t)n >= outlen ? -EINVAL : 0;
}
