// SPDX-License-Identifier: MIT
// fuzz_msg - the wire format: multipart messages through ds_msg_take, header
// bytes through protobuf-c, and shard maps through ds_shard_map_from_pb.
//
// Input layout: byte 0 holds the frame count minus one (bits 0-1, so 1..4
// frames), whether the first frame is a ROUTER identity (bit 2) and whether
// the tight limits apply (bit 3). Every frame but the last is a 2-byte
// little-endian length and that many bytes (cut short at the end of the
// input); the last frame is the rest of the input.
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/msg.h"
#include "common/shard_map.h"
#include "proto/descent.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_MAX_FRAMES 4

// The sockets live as long as the process: creating a context per input
// would spend the run in thread start-up. tx is connected to rx.
static void *s_ctx, *s_tx, *s_rx;

static void
s_die(const char *what)
{
    fprintf(stderr, "fuzz_msg harness: %s: %s\n", what, zmq_strerror(errno));
    abort();
}

static void
s_setup(void)
{
    int zero = 0;
    s_ctx = zmq_ctx_new();
    s_rx = s_ctx ? zmq_socket(s_ctx, ZMQ_PAIR) : NULL;
    s_tx = s_ctx ? zmq_socket(s_ctx, ZMQ_PAIR) : NULL;
    if (s_rx == NULL || s_tx == NULL) {
        s_die("socket");
    }
    zmq_setsockopt(s_rx, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s_tx, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(s_rx, "inproc://fuzz_msg") != 0 ||
        zmq_connect(s_tx, "inproc://fuzz_msg") != 0) {
        s_die("bind/connect");
    }
}

// s_flush drops whatever a previous input left queued on rx, so that every
// input starts from an empty socket (ds_msg_recv should leave nothing).
static int
s_flush(void)
{
    int n = 0;
    for (;;) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        int rc = zmq_msg_recv(&part, s_rx, ZMQ_DONTWAIT);
        zmq_msg_close(&part);
        if (rc < 0) {
            return n;
        }
        n++;
    }
}

// s_check_map runs the shard-map validation on a received map and, when
// it accepts the map, the lookups and the conversion back.
static void
s_check_map(const Descent__ShardMap *pb)
{
    ds_shard_map_t m;
    char           err[256];
    err[0] = '\0';
    int rc = ds_shard_map_from_pb(&m, pb, err, sizeof err);
    if (rc != 0) {
        if (rc == -EPROTO && err[0] == '\0') {
            fprintf(stderr, "ds_shard_map_from_pb: -EPROTO without a reason\n");
            abort();
        }
        ds_shard_map_fini(&m);
        return;
    }
    // An accepted map covers [0, num_keys) contiguously, so every key
    // below num_keys has a range and the one past the end has none.
    uint64_t probes[4] = {0, m.num_keys - 1, m.num_keys / 2, m.num_keys};
    for (int i = 0; i < 4; i++) {
        int64_t r = ds_shard_map_find(&m, probes[i]);
        bool    inside = probes[i] < m.num_keys;
        if (inside != (r >= 0) || (r >= 0 && (probes[i] < m.ranges[r].begin ||
                                              probes[i] >= m.ranges[r].end))) {
            fprintf(stderr, "ds_shard_map_find(%llu) = %lld is wrong\n",
                    (unsigned long long)probes[i], (long long)r);
            abort();
        }
    }
    uint64_t held = 0;
    for (uint32_t i = 0; i < m.nranges; i++) {
        // Only the first range of each server, to stay linear.
        bool seen = false;
        for (uint32_t j = 0; j < i && !seen && j < 64; j++) {
            seen = m.ranges[j].primary == m.ranges[i].primary;
        }
        if (!seen && i < 64) {
            held += ds_shard_map_keys_on(&m, m.ranges[i].primary);
        }
    }
    (void)held;
    Descent__ShardMap back;
    descent__shard_map__init(&back);
    if (ds_shard_map_to_pb(&m, &back) == 0) {
        ds_shard_map_t again;
        rc = ds_shard_map_from_pb(&again, &back, err, sizeof err);
        // to_pb writes no nodes, so the copy may fail the server check;
        // but what it copies must match.
        if (rc == 0 &&
            (again.nranges != m.nranges || again.num_keys != m.num_keys)) {
            fprintf(stderr, "shard map changed through to_pb/from_pb\n");
            abort();
        }
        ds_shard_map_fini(&again);
        ds_shard_map_pb_free(&back);
    }
    ds_shard_map_fini(&m);
}

// s_header unpacks header bytes directly, as ds_msg_recv does, and packs
// them again: get_packed_size and pack must agree. The repacked bytes need
// not unpack: protobuf-c 1.4.1 keeps a field numbered 0 (invalid in
// protobuf) as an unknown field, at any depth, and packs it back in a form
// its own unpack refuses. descent never repacks a received header.
static void
s_header(const uint8_t *p, size_t n)
{
    Descent__Header *h = descent__header__unpack(NULL, n, p);
    if (h == NULL) {
        return;
    }
    (void)ds_msg_type_name((int)h->type);
    (void)ds_msg_status_name((int)h->status);
    if (h->map != NULL) {
        s_check_map(h->map);
    }
    size_t   len = descent__header__get_packed_size(h);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    if (buf != NULL) {
        size_t wrote = descent__header__pack(h, buf);
        if (wrote != len) {
            fprintf(stderr, "packed %zu bytes, get_packed_size said %zu\n",
                    wrote, len);
            abort();
        }
        descent__header__free_unpacked(
            descent__header__unpack(NULL, wrote, buf), NULL);
        free(buf);
    }
    descent__header__free_unpacked(h, NULL);
}

// s_use reads what a handler of an accepted message would read.
static void
s_use(const ds_msg_t *m)
{
    const Descent__Header *h = m->hdr;
    if (m->flags & DS_MSG_HAS_VALS) {
        float *v = malloc(h->value_count > 0 ? h->value_count * sizeof *v : 1);
        if (v != NULL) {
            ds_msg_copy_vals(m, v);
            const float *direct = ds_msg_vals(m);
            if (direct != NULL && h->value_count > 0 &&
                memcmp(direct, v, h->value_count * sizeof *v) != 0) {
                fprintf(stderr, "ds_msg_vals and ds_msg_copy_vals differ\n");
                abort();
            }
            free(v);
        }
    }
    if (m->flags & DS_MSG_HAS_KEYS) {
        const uint8_t *k = zmq_msg_data((zmq_msg_t *)&m->keys);
        uint64_t       sum = 0;
        for (uint64_t i = 0; i < h->key_count; i++) {
            uint64_t key;
            memcpy(&key, k + i * sizeof key, sizeof key);
            sum += key;
        }
        (void)sum;
    }
    (void)ds_msg_type_name((int)h->type);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (s_ctx == NULL) {
        s_setup();
    }
    if (size == 0) {
        return 0;
    }
    int            nframes = 1 + (data[0] & 3);
    bool           routed = data[0] & 4;
    bool           tight = data[0] & 8;
    const uint8_t *frame[S_MAX_FRAMES];
    size_t         flen[S_MAX_FRAMES];
    size_t         at = 1;
    for (int i = 0; i < nframes; i++) {
        size_t n = size - at;
        if (i + 1 < nframes) {
            n = 0;
            if (size - at >= 2) {
                n = (size_t)data[at] | (size_t)data[at + 1] << 8;
                at += 2;
            } else {
                at = size;
            }
            n = n < size - at ? n : size - at;
        }
        frame[i] = data + at;
        flen[i] = n;
        at += n;
    }

    for (int i = 0; i < nframes; i++) {
        int more = i + 1 < nframes ? ZMQ_SNDMORE : 0;
        if (zmq_send(s_tx, frame[i], flen[i], more | ZMQ_DONTWAIT) < 0) {
            s_die("send");
        }
    }
    zmq_pollitem_t it = {.socket = s_rx, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, 5000) != 1) {
        s_die("poll");
    }

    ds_limits_t lim =
        tight ? (ds_limits_t){.max_values = 4, .max_keys = 4}
              : (ds_limits_t){.max_values = 1 << 20, .max_keys = 1 << 20};
    ds_msg_t        m;
    Descent__Status st = DESCENT__STATUS__STATUS_UNSPECIFIED;
    char            err[256];
    err[0] = '\0';
    int rc = ds_msg_take(s_rx, routed, &lim, &m, &st, err, sizeof err);
    if (s_flush() != 0) {
        fprintf(stderr, "ds_msg_take left frames on the socket\n");
        abort();
    }
    if (rc == 0) {
        if (st != DESCENT__STATUS__OK || m.hdr == NULL) {
            fprintf(stderr, "ds_msg_take: 0 with status %d\n", (int)st);
            abort();
        }
        s_use(&m);
    } else if (rc == -EPROTO || rc == -EMSGSIZE || rc == -EPROTONOSUPPORT) {
        if (st == DESCENT__STATUS__OK || err[0] == '\0') {
            fprintf(stderr, "ds_msg_take: %d with status %d, err \"%s\"\n", rc,
                    (int)st, err);
            abort();
        }
    }
    ds_msg_fini(&m);
    ds_msg_fini(&m); // idempotent, says msg.h

    int head = routed ? 1 : 0;
    if (head < nframes) {
        s_header(frame[head], flen[head]);
    }
    return 0;
}
