// SPDX-License-Identifier: MIT
// msg - the wire format: a protobuf header frame plus raw keys/values frames.
#include "common/msg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

static bool
s_more(void *sock)
{
    int    more = 0;
    size_t len = sizeof more;
    return zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len) == 0 && more;
}

// s_drain consumes and drops the remaining parts of a message.
static size_t
s_drain(void *sock)
{
    size_t n = 0;
    while (s_more(sock)) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            break;
        }
        zmq_msg_close(&part);
        n++;
    }
    return n;
}

int
ds_msg_recv(void *sock, bool routed, ds_msg_t *msg, char *err, size_t errlen)
{
    memset(msg, 0, sizeof *msg);
    if (routed) {
        zmq_msg_init(&msg->route);
        if (zmq_msg_recv(&msg->route, sock, ZMQ_DONTWAIT) < 0) {
            int e = errno;
            zmq_msg_close(&msg->route);
            return -e;
        }
        msg->flags |= DS_MSG_HAS_ROUTE;
        if (!s_more(sock)) {
            ds_err(err, errlen, 0, "message has no header frame");
            return -EPROTO;
        }
    }
    zmq_msg_t head;
    zmq_msg_init(&head);
    if (zmq_msg_recv(&head, sock, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&head);
        return -e;
    }
    size_t hlen = zmq_msg_size(&head);
    msg->bytes = hlen;
    int rc = 0;
    if (hlen > DS_MSG_HEADER_MAX) {
        ds_err(err, errlen, 0, "header frame of %zu bytes exceeds %d", hlen,
               DS_MSG_HEADER_MAX);
        rc = -EPROTO;
    } else {
        msg->hdr = descent__header__unpack(NULL, hlen, zmq_msg_data(&head));
        if (!msg->hdr) {
            ds_err(err, errlen, 0,
                   "header frame of %zu bytes is not a valid "
                   "descent.Header",
                   hlen);
            rc = -EPROTO;
        }
    }
    zmq_msg_close(&head);
    if (rc != 0) {
        s_drain(sock);
        return rc;
    }
    // Which raw frames follow is fixed by the header: keys if sparse, values
    // if value_count > 0. Anything else is a framing error.
    bool want_keys = msg->hdr->sparse;
    bool want_vals = msg->hdr->value_count > 0;
    if (want_keys && s_more(sock)) {
        zmq_msg_init(&msg->keys);
        if (zmq_msg_recv(&msg->keys, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg->keys);
            ds_err(err, errlen, 0, "keys frame could not be received");
            return -EPROTO;
        }
        msg->flags |= DS_MSG_HAS_KEYS;
        msg->bytes += zmq_msg_size(&msg->keys);
    }
    if (want_vals && s_more(sock)) {
        zmq_msg_init(&msg->vals);
        if (zmq_msg_recv(&msg->vals, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg->vals);
            ds_err(err, errlen, 0, "values frame could not be received");
            return -EPROTO;
        }
        msg->flags |= DS_MSG_HAS_VALS;
        msg->bytes += zmq_msg_size(&msg->vals);
    }
    size_t extra = s_drain(sock);
    if (extra > 0) {
        ds_err(err, errlen, 0, "%zu unexpected frame(s) after the header",
               extra);
        return -EPROTO;
    }
    if (want_keys && !(msg->flags & DS_MSG_HAS_KEYS)) {
        ds_err(err, errlen, 0, "header announces a keys frame that is missing");
        return -EPROTO;
    }
    if (want_vals && !(msg->flags & DS_MSG_HAS_VALS)) {
        ds_err(err, errlen, 0,
               "header announces %llu values but the values "
               "frame is missing",
               (unsigned long long)msg->hdr->value_count);
        return -EPROTO;
    }
    return 0;
}

static bool
s_carries_values(Descent__Type t)
{
    return t == DESCENT__TYPE__PUSH || t == DESCENT__TYPE__PULL_REPLY ||
           t == DESCENT__TYPE__PUSH_ACK || t == DESCENT__TYPE__REPLICATE ||
           t == DESCENT__TYPE__SEED;
}

int
ds_msg_check(const ds_msg_t *msg, const ds_limits_t *lim,
             Descent__Status *status, char *err, size_t errlen)
{
    const Descent__Header *h = msg->hdr;
    *status = DESCENT__STATUS__BAD_REQUEST;
    if (!h) {
        ds_err(err, errlen, 0, "no header");
        return -EPROTO;
    }
    if (h->version != DS_PROTO_VERSION) {
        *status = DESCENT__STATUS__BAD_VERSION;
        ds_err(err, errlen, 0, "protocol version %u, this node speaks %d",
               h->version, DS_PROTO_VERSION);
        return -EPROTONOSUPPORT;
    }
    if (h->type == DESCENT__TYPE__TYPE_UNSPECIFIED ||
        !protobuf_c_enum_descriptor_get_value(&descent__type__descriptor,
                                              (int)h->type)) {
        ds_err(err, errlen, 0, "unknown message type %d", (int)h->type);
        return -EPROTO;
    }
    if (h->value_count > 0 && !s_carries_values(h->type)) {
        ds_err(err, errlen, 0, "%s carries no values, got %llu",
               ds_msg_type_name(h->type), (unsigned long long)h->value_count);
        return -EPROTO;
    }
    if (h->value_count > 0 && h->dtype != DESCENT__DTYPE__F32) {
        *status = DESCENT__STATUS__BAD_DTYPE;
        ds_err(err, errlen, 0, "value dtype %d not supported (F32 only)",
               (int)h->dtype);
        return -EPROTO;
    }
    // Dense ranges send no keys frame: their key count is bounded like values.
    // Replies without values (acks, refusals) only echo a request's count.
    bool echo = h->value_count == 0 && !h->sparse &&
                (h->type == DESCENT__TYPE__PUSH_ACK ||
                 h->type == DESCENT__TYPE__PULL_REPLY ||
                 h->type == DESCENT__TYPE__ERROR);
    uint64_t key_limit = echo        ? UINT64_MAX
                         : h->sparse ? lim->max_keys
                                     : lim->max_values;
    if (h->key_count > key_limit || h->value_count > lim->max_values) {
        *status = DESCENT__STATUS__TOO_LARGE;
        ds_err(err, errlen, 0,
               "%llu keys / %llu values exceed the limits of %llu keys / "
               "%llu values",
               (unsigned long long)h->key_count,
               (unsigned long long)h->value_count,
               (unsigned long long)lim->max_keys,
               (unsigned long long)lim->max_values);
        return -EMSGSIZE;
    }
    // The limits keep these products far from overflow, but prove it anyway.
    if (h->value_count > SIZE_MAX / sizeof(float) ||
        h->key_count > SIZE_MAX / sizeof(uint64_t)) {
        *status = DESCENT__STATUS__TOO_LARGE;
        ds_err(err, errlen, 0, "counts overflow");
        return -EMSGSIZE;
    }
    if ((msg->flags & DS_MSG_HAS_VALS) &&
        zmq_msg_size((zmq_msg_t *)&msg->vals) !=
            h->value_count * sizeof(float)) {
        ds_err(err, errlen, 0,
               "values frame has %zu bytes, header says %llu "
               "float32 values (%llu bytes)",
               zmq_msg_size((zmq_msg_t *)&msg->vals),
               (unsigned long long)h->value_count,
               (unsigned long long)(h->value_count * sizeof(float)));
        return -EPROTO;
    }
    if ((msg->flags & DS_MSG_HAS_KEYS) &&
        zmq_msg_size((zmq_msg_t *)&msg->keys) !=
            h->key_count * sizeof(uint64_t)) {
        ds_err(err, errlen, 0,
               "keys frame has %zu bytes, header says %llu "
               "uint64 keys",
               zmq_msg_size((zmq_msg_t *)&msg->keys),
               (unsigned long long)h->key_count);
        return -EPROTO;
    }
    if (!h->sparse && h->key_begin > UINT64_MAX - h->key_count) {
        ds_err(err, errlen, 0, "key range overflows");
        return -EPROTO;
    }
    bool data =
        h->type == DESCENT__TYPE__PUSH || h->type == DESCENT__TYPE__PULL;
    if (data && h->key_count == 0) {
        ds_err(err, errlen, 0, "%s of zero keys", ds_msg_type_name(h->type));
        return -EPROTO;
    }
    if (h->type == DESCENT__TYPE__PUSH && h->value_count != h->key_count) {
        ds_err(err, errlen, 0, "push of %llu keys carries %llu values",
               (unsigned long long)h->key_count,
               (unsigned long long)h->value_count);
        return -EPROTO;
    }
    if (h->type == DESCENT__TYPE__PULL && h->value_count != 0) {
        ds_err(err, errlen, 0, "pull carries values");
        return -EPROTO;
    }
    *status = DESCENT__STATUS__OK;
    return 0;
}

int
ds_msg_take(void *sock, bool routed, const ds_limits_t *lim, ds_msg_t *msg,
            Descent__Status *status, char *err, size_t errlen)
{
    *status = DESCENT__STATUS__BAD_REQUEST;
    int rc = ds_msg_recv(sock, routed, msg, err, errlen);
    if (rc == 0) {
        rc = ds_msg_check(msg, lim, status, err, errlen);
    }
    return rc;
}

void
ds_msg_fini(ds_msg_t *msg)
{
    if (msg->flags & DS_MSG_HAS_ROUTE) {
        zmq_msg_close(&msg->route);
    }
    if (msg->flags & DS_MSG_HAS_KEYS) {
        zmq_msg_close(&msg->keys);
    }
    if (msg->flags & DS_MSG_HAS_VALS) {
        zmq_msg_close(&msg->vals);
    }
    descent__header__free_unpacked(msg->hdr, NULL);
    msg->hdr = NULL;
    msg->flags = 0;
}

const float *
ds_msg_vals(const ds_msg_t *msg)
{
    if (!(msg->flags & DS_MSG_HAS_VALS)) {
        return NULL;
    }
    const void *p = zmq_msg_data((zmq_msg_t *)&msg->vals);
    return (uintptr_t)p % _Alignof(float) == 0 ? p : NULL;
}

void
ds_msg_copy_vals(const ds_msg_t *msg, float *dst)
{
    if (msg->flags & DS_MSG_HAS_VALS) {
        memcpy(dst, zmq_msg_data((zmq_msg_t *)&msg->vals),
               zmq_msg_size((zmq_msg_t *)&msg->vals));
    }
}

void
ds_msg_header_init(Descent__Header *h, Descent__Type type)
{
    descent__header__init(h);
    h->version = DS_PROTO_VERSION;
    h->type = type;
}

static int
s_send_part(void *sock, zmq_msg_t *part, int flags)
{
    if (zmq_msg_send(part, sock, flags | ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(part);
        return -e;
    }
    return 0;
}

int
ds_msg_send(void *sock, const zmq_msg_t *route, const Descent__Header *h,
            zmq_msg_t *keys, zmq_msg_t *vals)
{
    int       rc = 0;
    zmq_msg_t head;
    size_t    n = descent__header__get_packed_size(h);
    if (zmq_msg_init_size(&head, n) != 0) {
        rc = -ENOMEM;
        goto out;
    }
    descent__header__pack(h, zmq_msg_data(&head));
    if (route) {
        zmq_msg_t r;
        zmq_msg_init(&r);
        zmq_msg_copy(&r, (zmq_msg_t *)route);
        // The first part decides: if it cannot be queued, nothing is sent.
        rc = s_send_part(sock, &r, ZMQ_SNDMORE);
        if (rc != 0) {
            zmq_msg_close(&head);
            goto out;
        }
    }
    rc = s_send_part(sock, &head, (keys || vals) ? ZMQ_SNDMORE : 0);
    if (rc != 0) {
        goto out;
    }
    if (keys) {
        rc = s_send_part(sock, keys, vals ? ZMQ_SNDMORE : 0);
        keys = NULL;
        if (rc != 0) {
            goto out;
        }
    }
    if (vals) {
        rc = s_send_part(sock, vals, 0);
        vals = NULL;
    }
out:
    if (keys) {
        zmq_msg_close(keys);
    }
    if (vals) {
        zmq_msg_close(vals);
    }
    return rc;
}

int
ds_msg_send_f32(void *sock, const zmq_msg_t *route, const Descent__Header *h,
                const float *vals, size_t n)
{
    zmq_msg_t v;
    if (zmq_msg_init_size(&v, n * sizeof(float)) != 0) {
        return -ENOMEM;
    }
    memcpy(zmq_msg_data(&v), vals, n * sizeof(float));
    return ds_msg_send(sock, route, h, NULL, &v);
}

int
ds_msg_send_f32_reply(void *sock, ds_msg_t *req, const Descent__Header *h,
                      const float *vals, size_t n)
{
    const zmq_msg_t *route =
        (req->flags & DS_MSG_HAS_ROUTE) ? &req->route : NULL;
    if (!(req->flags & DS_MSG_HAS_VALS) ||
        zmq_msg_size(&req->vals) != n * sizeof(float)) {
        return ds_msg_send_f32(sock, route, h, vals, n);
    }
    if (zmq_msg_data(&req->vals) != (void *)vals) {
        memcpy(zmq_msg_data(&req->vals), vals, n * sizeof(float));
    }
    zmq_msg_t v;
    zmq_msg_init(&v);
    zmq_msg_move(&v, &req->vals);
    zmq_msg_close(&req->vals);
    req->flags &= ~(unsigned)DS_MSG_HAS_VALS;
    return ds_msg_send(sock, route, h, NULL, &v);
}

void
ds_msg_move(ds_msg_t *dst, ds_msg_t *src)
{
    memset(dst, 0, sizeof *dst);
    dst->flags = src->flags;
    dst->bytes = src->bytes;
    dst->hdr = src->hdr;
    zmq_msg_t *from[] = {&src->route, &src->keys, &src->vals};
    zmq_msg_t *to[] = {&dst->route, &dst->keys, &dst->vals};
    unsigned   bit[] = {DS_MSG_HAS_ROUTE, DS_MSG_HAS_KEYS, DS_MSG_HAS_VALS};
    for (int i = 0; i < 3; i++) {
        if (src->flags & bit[i]) {
            zmq_msg_init(to[i]);
            zmq_msg_move(to[i], from[i]);
            zmq_msg_close(from[i]);
        }
    }
    src->hdr = NULL;
    src->flags = 0;
}

int
ds_msg_reply(void *sock, const ds_msg_t *req, Descent__Type type,
             Descent__Status status, const char *err)
{
    Descent__Header h;
    ds_msg_header_init(&h, type);
    if (req->hdr) {
        h.seq = req->hdr->seq;
        h.shard = req->hdr->shard;
        h.key_begin = req->hdr->key_begin;
        h.key_count = req->hdr->key_count;
        h.epoch = req->hdr->epoch;
        h.clock = req->hdr->clock;
    }
    h.status = status;
    h.error = (char *)(err ? err : "");
    return ds_msg_send(sock,
                       (req->flags & DS_MSG_HAS_ROUTE) ? &req->route : NULL, &h,
                       NULL, NULL);
}

void
ds_msg_peer(const ds_msg_t *msg, char *buf, size_t len)
{
    if (msg->hdr && msg->hdr->sender != 0) {
        snprintf(buf, len, "node %u", msg->hdr->sender);
        return;
    }
    if (!(msg->flags & DS_MSG_HAS_ROUTE)) {
        snprintf(buf, len, "?");
        return;
    }
    const unsigned char *id = zmq_msg_data((zmq_msg_t *)&msg->route);
    size_t               n = zmq_msg_size((zmq_msg_t *)&msg->route);
    char                 hex[17] = "";
    for (size_t i = 0; i < n && i < 8; i++) {
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    }
    snprintf(buf, len, "peer %s", hex);
}

const char *
ds_msg_type_name(int type)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&descent__type__descriptor, type);
    return v ? v->name : "UNKNOWN";
}

const char *
ds_msg_status_name(int status)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &descent__status__descriptor, status);
    return v ? v->name : "UNKNOWN";
}
