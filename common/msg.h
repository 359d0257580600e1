// SPDX-License-Identifier: MIT
// msg - the wire format: a protobuf header frame plus raw keys/values frames.
#ifndef DS_MSG_H
#define DS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "proto/descent.pb-c.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "the wire format is little-endian; add a swap path");

#define DS_PROTO_VERSION 1
#define DS_MSG_HEADER_MAX (1024 * 1024) // bytes; larger header frames refused

enum {
    DS_MSG_HAS_ROUTE = 1, // a ROUTER identity frame was received
    DS_MSG_HAS_KEYS = 2,  // a keys frame is present
    DS_MSG_HAS_VALS = 4,  // a values frame is present
};

// ds_msg_t is one received multipart message: an optional ROUTER identity,
// the unpacked header and up to two raw frames.
typedef struct {
    zmq_msg_t        route; // ROUTER identity frame; valid if HAS_ROUTE
    Descent__Header *hdr;   // unpacked header, NULL if it was bad; owned
    zmq_msg_t        keys;  // little-endian uint64 keys; valid if HAS_KEYS
    zmq_msg_t        vals;  // little-endian float32 values; valid if HAS_VALS
    unsigned         flags; // DS_MSG_HAS_*
    size_t           bytes; // total bytes of all frames received
} ds_msg_t;

// ds_limits_t bounds what a receiver accepts.
typedef struct {
    uint64_t max_values; // most float32 values in one message
    uint64_t max_keys;   // most keys in one message
} ds_limits_t;

// ds_msg_recv receives one whole multipart message without blocking; if
// routed, the first frame is a ROUTER identity. Returns 0, -EAGAIN if nothing
// is queued, -EPROTO if the framing or the header is bad (err says why; the
// route, if any, is still valid so that an error can be sent back), or
// another negative errno from libzmq. Every part is consumed in all cases.
// On any return the caller must call ds_msg_fini.
int ds_msg_recv(void *sock, bool routed, ds_msg_t *msg, char *err,
                size_t errlen);

// ds_msg_check verifies the version, type, dtype and every count against the
// frames and lim, before a handler reads them. Returns 0, or a negative
// errno (-EPROTO, -EMSGSIZE, -EPROTONOSUPPORT) with the reason in err and
// the matching wire status in *status.
int ds_msg_check(const ds_msg_t *msg, const ds_limits_t *lim,
                 Descent__Status *status, char *err, size_t errlen);

// ds_msg_take is ds_msg_recv then ds_msg_check: what every handler does
// first. Returns 0, -EAGAIN when nothing was queued, or the first error with
// err and *status set. The caller calls ds_msg_fini in every case.
int ds_msg_take(void *sock, bool routed, const ds_limits_t *lim, ds_msg_t *msg,
                Descent__Status *status, char *err, size_t errlen);

// ds_msg_fini releases every part of msg. Idempotent.
void ds_msg_fini(ds_msg_t *msg);

// ds_msg_vals returns the values frame as floats if it is suitably aligned,
// or NULL; callers then copy it with ds_msg_copy_vals.
const float *ds_msg_vals(const ds_msg_t *msg);

// ds_msg_copy_vals copies value_count floats of the values frame to dst.
void ds_msg_copy_vals(const ds_msg_t *msg, float *dst);

// ds_msg_header_init fills h with defaults for a message of `type`.
void ds_msg_header_init(Descent__Header *h, Descent__Type type);

// ds_msg_send sends [route] header [keys] [vals] with ZMQ_DONTWAIT. route
// (may be NULL) is copied. keys and vals (each may be NULL) are zmq messages
// that this call consumes whatever happens. Returns 0, -EAGAIN when the
// socket's high-water mark is reached (nothing was sent), or another
// negative errno.
int ds_msg_send(void *sock, const zmq_msg_t *route, const Descent__Header *h,
                zmq_msg_t *keys, zmq_msg_t *vals);

// ds_msg_send_f32 sends a message whose values frame is a copy of vals[0..n).
int ds_msg_send_f32(void *sock, const zmq_msg_t *route,
                    const Descent__Header *h, const float *vals, size_t n);

// ds_msg_send_f32_reply answers req with a message whose values frame holds
// vals[0..n). When req's own values frame has exactly n floats, the values
// are written into it and it is sent back (no allocation, no page faults);
// otherwise a new frame is made. req's values frame is consumed either way.
int ds_msg_send_f32_reply(void *sock, ds_msg_t *req, const Descent__Header *h,
                          const float *vals, size_t n);

// ds_msg_move moves every part of src into dst (uninitialized); src is left
// empty, safe to ds_msg_fini.
void ds_msg_move(ds_msg_t *dst, ds_msg_t *src);

// ds_msg_reply sends a reply of `type` to req (same route, seq, shard and
// keys), with status and error text (err may be NULL).
int ds_msg_reply(void *sock, const ds_msg_t *req, Descent__Type type,
                 Descent__Status status, const char *err);

// ds_msg_peer names the sender of msg for logs: "node N" as its header
// claims, else "peer " and the hex of its ROUTER identity (at most 8 bytes),
// else "?".
void ds_msg_peer(const ds_msg_t *msg, char *buf, size_t len);

// ds_msg_type_name and ds_msg_status_name name the enum values.
const char *ds_msg_type_name(int type);
const char *ds_msg_status_name(int status);

#endif
