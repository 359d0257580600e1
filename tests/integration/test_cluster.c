// SPDX-License-Identifier: MIT
// test_cluster - whole clusters of real processes on loopback: training,
// a hostile peer against a live server, failures and bad user input.
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <zmq.h>

#include "common/config.h"
#include "common/msg.h"
#include "common/optim.h"
#include "tests/integration/harness.h"

static void
s_assert_log_has(const th_proc_t *p, const char *needle)
{
    char *log = th_slurp(p->log);
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, needle) != NULL, "%s lacks \"%s\":\n%s", p->log,
                  needle, log);
    free(log);
}

// Mean training loss over the workers' epoch-end lines of metrics.jsonl.
static double
s_epoch_loss(const char *metrics, int epoch)
{
    double      sum = 0;
    int         n = 0;
    const char *line = metrics;
    while (line && *line) {
        const char *eol = strchr(line, '\n');
        char        buf[1024];
        size_t      len = eol ? (size_t)(eol - line) : strlen(line);
        if (len >= sizeof buf) {
            len = sizeof buf - 1;
        }
        memcpy(buf, line, len);
        buf[len] = '\0';
        if (strstr(buf, "\"final\":false") &&
            th_json_number(buf, "epoch", NULL) == epoch) {
            sum += th_json_number(buf, "loss", NULL);
            n++;
        }
        line = eol ? eol + 1 : NULL;
    }
    return n ? sum / n : NAN;
}

START_TEST(test_cluster_trains)
{
    char dir[64], out[128];
    th_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    const char *args[] = {"run",
                          "--data.limit=4000",
                          "--train.epochs=4",
                          "--job.progress=lines",
                          "--cluster.heartbeat_ms=100",
                          out,
                          NULL};
    th_proc_t   p;
    th_spawn(&p, dir, "run", args);
    ck_assert_msg(th_wait(&p, 60000), "descent run did not finish in 60 s");
    ck_assert_int_eq(p.signal, 0);
    ck_assert_int_eq(p.status, 0);
    s_assert_log_has(&p, "epoch 4/4");
    s_assert_log_has(&p, "test accuracy");

    char path[256];
    snprintf(path, sizeof path, "%s/out/metrics.jsonl", dir);
    char *metrics = th_slurp(path);
    ck_assert_ptr_nonnull(metrics);
    double l1 = s_epoch_loss(metrics, 1), l4 = s_epoch_loss(metrics, 4);
    ck_assert_msg(isfinite(l1) && isfinite(l4) && l4 < 0.8 * l1,
                  "training loss did not fall: epoch 1 %g, epoch 4 %g", l1, l4);
    free(metrics);

    snprintf(path, sizeof path, "%s/out/summary.json", dir);
    char *summary = th_slurp(path);
    ck_assert_ptr_nonnull(summary);
    ck_assert_ptr_nonnull(strstr(summary, "\"ok\":true"));
    double acc = th_json_number(summary, "test_accuracy", NULL);
    // Ten classes: chance is 0.1; 4,000 examples and 4 epochs of softmax
    // regression reach about 0.75.
    ck_assert_msg(acc > 0.65 && acc <= 1.0, "test accuracy %g", acc);
    ck_assert_double_eq(th_json_number(summary, "examples", NULL), 16000);
    ck_assert(th_json_number(summary, "examples_per_second", NULL) > 0);
    // Replicated by default: every push the workers saw acknowledged was
    // applied once on its range's primary, and the backups hold the same.
    double acked = th_json_number(summary, "acked", NULL);
    ck_assert(acked > 0);
    ck_assert_double_eq(th_json_number(summary, "applied", NULL), acked);
    ck_assert_double_eq(th_json_number(summary, "lost", NULL), 0);
    ck_assert_ptr_nonnull(strstr(summary, "\"replicas_identical\":true"));
    ck_assert_double_eq(th_json_number(summary, "replicated_ranges", NULL),
                        th_json_number(summary, "ranges", NULL));
    free(summary);

    // descent plot draws the log (gnuplot-nox comes with make deps).
    char metrics_path[160], png[160];
    snprintf(metrics_path, sizeof metrics_path, "%s/out/metrics.jsonl", dir);
    snprintf(png, sizeof png, "%s/out/curves.png", dir);
    const char *plot[] = {"plot", metrics_path, "--out", png, NULL};
    th_proc_t   pl;
    th_spawn(&pl, dir, "plot", plot);
    ck_assert(th_wait(&pl, 30000));
    ck_assert_int_eq(pl.status, 0);
    s_assert_log_has(&pl, "(4 epochs)");
    char *img = th_slurp(png);
    ck_assert_ptr_nonnull(img);
    ck_assert_mem_eq(img, "\x89PNG", 4);
    free(img);

    // model.safetensors: header length, then 7,850 float32 parameters.
    snprintf(path, sizeof path, "%s/out/model.safetensors", dir);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char len8[8];
    ck_assert_uint_eq(fread(len8, 1, 8, f), 8);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) {
        hlen = hlen << 8 | len8[i];
    }
    fseek(f, 0, SEEK_END);
    ck_assert_int_eq(ftell(f), (long)(8 + hlen + 7850 * 4));
    fclose(f);
}
END_TEST

// ---- a hostile peer against a live server --------------------------------
// The test plays the scheduler itself, so it decides the server's map.

typedef struct {
    void     *ctx;
    void     *sched; // ROUTER the server registers with
    void     *data;  // DEALER to the server's data socket
    zmq_msg_t route; // the server's identity on sched
    uint64_t  seq;
} s_peer_t;

static void
s_recv(void *sock, bool routed, ds_msg_t *m)
{
    zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
    ck_assert_msg(zmq_poll(&it, 1, 5000) == 1, "no message within 5 s");
    char err[256] = "";
    ck_assert_msg(ds_msg_recv(sock, routed, m, err, sizeof err) == 0, "%s",
                  err);
}

static Descent__Header
s_req(s_peer_t *t, Descent__Type type, uint64_t begin, uint64_t count)
{
    Descent__Header h;
    ds_msg_header_init(&h, type);
    h.job = "descent";
    h.sender = 2;
    h.seq = ++t->seq;
    h.epoch = 1;
    h.shard = 0;
    h.key_begin = begin;
    h.key_count = count;
    return h;
}

// s_expect sends nothing; it reads one reply and checks type and status.
static void
s_expect(s_peer_t *t, Descent__Type type, Descent__Status st, float *vals,
         size_t n)
{
    ds_msg_t m;
    s_recv(t->data, false, &m);
    ck_assert_msg(m.hdr->type == type, "got %s, want %s",
                  ds_msg_type_name(m.hdr->type), ds_msg_type_name(type));
    ck_assert_msg(m.hdr->status == st, "got %s (%s), want %s",
                  ds_msg_status_name(m.hdr->status), m.hdr->error,
                  ds_msg_status_name(st));
    if (st != DESCENT__STATUS__OK) {
        ck_assert_msg(m.hdr->error[0] != '\0', "an error reply has no text");
    }
    if (vals) {
        ck_assert_uint_eq(m.hdr->value_count, n);
        ds_msg_copy_vals(&m, vals);
    }
    ds_msg_fini(&m);
}

// s_fake_start plays the scheduler for one `descent server` started with
// the extra flags: it registers the server as node 1, gives it one range of
// 100 keys with node 2 as the only worker, waits for READY and connects
// t->data to the server.
static void
s_fake_start(s_peer_t *t, th_proc_t *srv, const char *dir,
             const char *const *extra)
{
    char sched[64], bind[64];
    int  port = th_free_port();
    snprintf(sched, sizeof sched, "--cluster.scheduler=tcp://127.0.0.1:%d",
             port);
    snprintf(bind, sizeof bind, "tcp://127.0.0.1:%d", port);
    t->ctx = zmq_ctx_new();
    t->seq = 0;
    t->sched = zmq_socket(t->ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(t->sched, ZMQ_LINGER, &zero, sizeof zero);
    ck_assert_int_eq(zmq_bind(t->sched, bind), 0);
    const char *args[32] = {"server", sched, "--cluster.bind=tcp://127.0.0.1:*",
                            "--cluster.advertise=127.0.0.1"};
    int         n = 4;
    for (int i = 0; extra[i] && n < 31; i++) {
        args[n++] = extra[i];
    }
    args[n] = NULL;
    th_spawn(srv, dir, "server", args);

    // REGISTER -> REGISTER_ACK (node 1) -> SHARD_MAP of 100 keys -> READY.
    ds_msg_t m;
    s_recv(t->sched, true, &m);
    ck_assert_int_eq(m.hdr->type, DESCENT__TYPE__REGISTER);
    ck_assert_int_eq(m.hdr->role, DESCENT__ROLE__SERVER);
    char addr[256];
    snprintf(addr, sizeof addr, "%s", m.hdr->address);
    zmq_msg_init(&t->route);
    zmq_msg_copy(&t->route, &m.route);
    ds_msg_fini(&m);
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__REGISTER_ACK);
    h.job = "descent";
    h.status = DESCENT__STATUS__OK;
    h.node_id = 1;
    ck_assert_int_eq(ds_msg_send(t->sched, &t->route, &h, NULL, NULL), 0);
    Descent__Range    r = DESCENT__RANGE__INIT;
    Descent__Range   *rs[1] = {&r};
    Descent__Node     nd = DESCENT__NODE__INIT, wk = DESCENT__NODE__INIT;
    Descent__Node    *nds[2] = {&nd, &wk};
    Descent__ShardMap map = DESCENT__SHARD_MAP__INIT;
    r.end = 100;
    r.primary = 1;
    nd.id = 1;
    nd.role = DESCENT__ROLE__SERVER;
    nd.address = addr;
    wk.id = 2;
    wk.role = DESCENT__ROLE__WORKER;
    map.epoch = 1;
    map.num_keys = 100;
    map.ranges = rs;
    map.n_ranges = 1;
    map.nodes = nds;
    map.n_nodes = 2;
    map.total_updates = 100;
    ds_msg_header_init(&h, DESCENT__TYPE__SHARD_MAP);
    h.job = "descent";
    h.epoch = 1;
    h.map = &map;
    ck_assert_int_eq(ds_msg_send(t->sched, &t->route, &h, NULL, NULL), 0);
    for (;;) {
        s_recv(t->sched, true, &m);
        bool ready = m.hdr->type == DESCENT__TYPE__READY;
        ds_msg_fini(&m);
        if (ready) {
            break;
        }
    }
    t->data = zmq_socket(t->ctx, ZMQ_DEALER);
    zmq_setsockopt(t->data, ZMQ_LINGER, &zero, sizeof zero);
    ck_assert_int_eq(zmq_connect(t->data, addr), 0);
}

// s_fake_stop sends SHUTDOWN and expects the server to exit 0.
static void
s_fake_stop(s_peer_t *t, th_proc_t *srv)
{
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__SHUTDOWN);
    h.job = "descent";
    h.status = DESCENT__STATUS__OK;
    ck_assert_int_eq(ds_msg_send(t->sched, &t->route, &h, NULL, NULL), 0);
    ck_assert(th_wait(srv, 5000));
    ck_assert_int_eq(srv->signal, 0);
    ck_assert_int_eq(srv->status, 0);
    zmq_msg_close(&t->route);
    zmq_close(t->data);
    zmq_close(t->sched);
    zmq_ctx_term(t->ctx);
}

START_TEST(test_server_survives_bad_requests)
{
    char dir[64];
    th_tmpdir(dir, sizeof dir);
    s_peer_t          t;
    th_proc_t         srv;
    const char *const extra[] = {"--optimizer.schedule=constant",
                                 "--optimizer.lr=0.5", NULL};
    s_fake_start(&t, &srv, dir, extra);
    Descent__Header h;

    // 1. Garbage instead of a header.
    ck_assert_int_eq(zmq_send(t.data, "\xff\x01garbage", 9, 0), 9);
    s_expect(&t, DESCENT__TYPE__ERROR, DESCENT__STATUS__BAD_REQUEST, NULL, 0);
    // 2. A push whose values frame is short.
    float g[100];
    for (int i = 0; i < 100; i++) {
        g[i] = (float)i / 100.0f;
    }
    h = s_req(&t, DESCENT__TYPE__PUSH, 0, 10);
    h.value_count = 10;
    h.dtype = DESCENT__DTYPE__F32;
    zmq_msg_t v;
    zmq_msg_init_size(&v, 9 * sizeof(float));
    memcpy(zmq_msg_data(&v), g, 9 * sizeof(float));
    ck_assert_int_eq(ds_msg_send(t.data, NULL, &h, NULL, &v), 0);
    s_expect(&t, DESCENT__TYPE__PUSH_ACK, DESCENT__STATUS__BAD_REQUEST, NULL,
             0);
    // 3. Keys outside the shard.
    h = s_req(&t, DESCENT__TYPE__PUSH, 95, 10);
    h.value_count = 10;
    h.dtype = DESCENT__DTYPE__F32;
    ck_assert_int_eq(ds_msg_send_f32(t.data, NULL, &h, g, 10), 0);
    s_expect(&t, DESCENT__TYPE__PUSH_ACK, DESCENT__STATUS__OUT_OF_RANGE, NULL,
             0);
    h = s_req(&t, DESCENT__TYPE__PULL, 0, 10);
    h.shard = 3;
    ck_assert_int_eq(ds_msg_send(t.data, NULL, &h, NULL, NULL), 0);
    s_expect(&t, DESCENT__TYPE__PULL_REPLY, DESCENT__STATUS__OUT_OF_RANGE, NULL,
             0);
    // 4. A NaN gradient is refused and not applied.
    float bad[10] = {1, 2, NAN, 4, 5, 6, 7, 8, 9, 10};
    h = s_req(&t, DESCENT__TYPE__PUSH, 0, 10);
    h.value_count = 10;
    h.dtype = DESCENT__DTYPE__F32;
    ck_assert_int_eq(ds_msg_send_f32(t.data, NULL, &h, bad, 10), 0);
    s_expect(&t, DESCENT__TYPE__PUSH_ACK, DESCENT__STATUS__BAD_VALUE, NULL, 0);
    // 5. An old map epoch (counted as fenced), a wrong dtype, another job.
    h = s_req(&t, DESCENT__TYPE__PULL, 0, 10);
    h.epoch = 0;
    ck_assert_int_eq(ds_msg_send(t.data, NULL, &h, NULL, NULL), 0);
    s_expect(&t, DESCENT__TYPE__PULL_REPLY, DESCENT__STATUS__STALE_EPOCH, NULL,
             0);
    h = s_req(&t, DESCENT__TYPE__PUSH, 0, 10);
    h.value_count = 10;
    h.dtype = 5;
    ck_assert_int_eq(ds_msg_send_f32(t.data, NULL, &h, g, 10), 0);
    s_expect(&t, DESCENT__TYPE__PUSH_ACK, DESCENT__STATUS__BAD_DTYPE, NULL, 0);
    h = s_req(&t, DESCENT__TYPE__PULL, 0, 10);
    h.job = "other";
    ck_assert_int_eq(ds_msg_send(t.data, NULL, &h, NULL, NULL), 0);
    s_expect(&t, DESCENT__TYPE__PULL_REPLY, DESCENT__STATUS__REFUSED, NULL, 0);

    // 6. A sender that is not a worker of the map, and a push numbered 0.
    h = s_req(&t, DESCENT__TYPE__PUSH, 0, 10);
    h.value_count = 10;
    h.dtype = DESCENT__DTYPE__F32;
    h.sender = 4000000000u;
    ck_assert_int_eq(ds_msg_send_f32(t.data, NULL, &h, g, 10), 0);
    s_expect(&t, DESCENT__TYPE__PUSH_ACK, DESCENT__STATUS__REFUSED, NULL, 0);
    h.sender = 1;
    ck_assert_int_eq(ds_msg_send_f32(t.data, NULL, &h, g, 10), 0);
    s_expect(&t, DESCENT__TYPE__PUSH_ACK, DESCENT__STATUS__REFUSED, NULL, 0);
    h.sender = 2;
    h.seq = 0;
    ck_assert_int_eq(ds_msg_send_f32(t.data, NULL, &h, g, 10), 0);
    s_expect(&t, DESCENT__TYPE__PUSH_ACK, DESCENT__STATUS__BAD_REQUEST, NULL,
             0);

    // Still serving: a good push of the whole range at lr 0.5, sent twice
    // with the same sequence number, is applied exactly once.
    h = s_req(&t, DESCENT__TYPE__PUSH, 0, 100);
    h.value_count = 100;
    h.dtype = DESCENT__DTYPE__F32;
    ck_assert_int_eq(ds_msg_send_f32(t.data, NULL, &h, g, 100), 0);
    s_expect(&t, DESCENT__TYPE__PUSH_ACK, DESCENT__STATUS__OK, NULL, 0);
    ck_assert_int_eq(ds_msg_send_f32(t.data, NULL, &h, g, 100), 0);
    s_expect(&t, DESCENT__TYPE__PUSH_ACK, DESCENT__STATUS__OK, NULL, 0);
    h = s_req(&t, DESCENT__TYPE__PULL, 0, 100);
    ck_assert_int_eq(ds_msg_send(t.data, NULL, &h, NULL, NULL), 0);
    float w[100];
    s_expect(&t, DESCENT__TYPE__PULL_REPLY, DESCENT__STATUS__OK, w, 100);
    for (int i = 0; i < 100; i++) {
        // Zeros, minus 0.5 * g once; none of the refused pushes landed.
        ck_assert_float_eq_tol(w[i], -0.5f * g[i], 1e-7f);
    }

    // SHUTDOWN ends it cleanly.
    s_fake_stop(&t, &srv);
    s_assert_log_has(&srv, "11 refused (1 non-finite, 1 fenced)");
    s_assert_log_has(&srv, "1 pushes applied");
    s_assert_log_has(&srv, "1 duplicates");
}
END_TEST

// s_count counts the lines of log that contain needle.
static int
s_count(const char *log, const char *needle)
{
    int n = 0;
    for (const char *q = log; (q = strstr(q, needle)); q += strlen(needle)) {
        n++;
    }
    return n;
}

// s_suppressed sums the counts of the log's "suppressed K similar messages
// from PEER ... (KIND)" lines for that kind.
static uint64_t
s_suppressed(const char *log, const char *kind)
{
    uint64_t    sum = 0;
    const char *q = log;
    while ((q = strstr(q, "suppressed "))) {
        const char *eol = strchr(q, '\n');
        const char *k = strstr(q, kind);
        if (k && (!eol || k < eol)) {
            sum += strtoull(q + strlen("suppressed "), NULL, 10);
        }
        q += strlen("suppressed ");
    }
    return sum;
}

// A peer's refusals are logged, each kind, and a flood of 20,000 bad
// headers gives a few lines and a count, not 20,000 lines.
START_TEST(test_server_logs_refusals_limited)
{
    char dir[64];
    th_tmpdir(dir, sizeof dir);
    s_peer_t  t;
    th_proc_t srv;
    char      out[128];
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    const char *const extra[] = {out, NULL};
    s_fake_start(&t, &srv, dir, extra);
    Descent__Header h;
    float           g[10] = {0};

    // One refusal of each kind the server gives a worker.
    h = s_req(&t, DESCENT__TYPE__PUSH, 95, 10);
    h.value_count = 10;
    h.dtype = DESCENT__DTYPE__F32;
    ck_assert_int_eq(ds_msg_send_f32(t.data, NULL, &h, g, 10), 0);
    s_expect(&t, DESCENT__TYPE__PUSH_ACK, DESCENT__STATUS__OUT_OF_RANGE, NULL,
             0);
    h = s_req(&t, DESCENT__TYPE__PULL, 0, 10);
    h.epoch = 0;
    ck_assert_int_eq(ds_msg_send(t.data, NULL, &h, NULL, NULL), 0);
    s_expect(&t, DESCENT__TYPE__PULL_REPLY, DESCENT__STATUS__STALE_EPOCH, NULL,
             0);
    h = s_req(&t, DESCENT__TYPE__PULL, 0, 10);
    h.job = "other";
    ck_assert_int_eq(ds_msg_send(t.data, NULL, &h, NULL, NULL), 0);
    s_expect(&t, DESCENT__TYPE__PULL_REPLY, DESCENT__STATUS__REFUSED, NULL, 0);
    float nan[10] = {NAN};
    h = s_req(&t, DESCENT__TYPE__PUSH, 0, 10);
    h.value_count = 10;
    h.dtype = DESCENT__DTYPE__F32;
    ck_assert_int_eq(ds_msg_send_f32(t.data, NULL, &h, nan, 10), 0);
    s_expect(&t, DESCENT__TYPE__PUSH_ACK, DESCENT__STATUS__BAD_VALUE, NULL, 0);

    // The flood; replies are read as they come, or dropped by the server.
    for (int i = 0; i < 20000; i++) {
        ck_assert_int_eq(zmq_send(t.data, "\xff\x01garbage", 9, 0), 9);
        char buf[64];
        while (zmq_recv(t.data, buf, sizeof buf, ZMQ_DONTWAIT) >= 0) {
        }
    }
    // Messages on one connection are handled in order: once a pull sent
    // after the flood is answered, the whole flood was read. The answer may
    // be dropped at the server's high-water mark, so ask until one comes.
    bool synced = false;
    for (int tries = 0; tries < 50 && !synced; tries++) {
        h = s_req(&t, DESCENT__TYPE__PULL, 0, 10);
        ck_assert_int_eq(ds_msg_send(t.data, NULL, &h, NULL, NULL), 0);
        zmq_pollitem_t it = {.socket = t.data, .events = ZMQ_POLLIN};
        while (!synced && zmq_poll(&it, 1, 1000) == 1) {
            ds_msg_t m;
            char     err[256];
            if (ds_msg_recv(t.data, false, &m, err, sizeof err) == 0 &&
                m.hdr->type == DESCENT__TYPE__PULL_REPLY &&
                m.hdr->seq == t.seq) {
                ck_assert_int_eq(m.hdr->status, DESCENT__STATUS__OK);
                synced = true;
            }
            ds_msg_fini(&m);
        }
    }
    ck_assert(synced);
    s_fake_stop(&t, &srv);

    char *log = th_slurp(srv.log);
    ck_assert_ptr_nonnull(log);
    const char *want[] = {
        "refused PUSH from node 2: OUT_OF_RANGE: keys [95, 105)",
        "refused PULL from node 2: STALE_EPOCH: sent under map epoch 0",
        "refused PULL from node 2: REFUSED: job \"other\"",
        "refused PUSH from node 2: BAD_VALUE: gradient has NaN",
        "bad request (no header) from peer ",
        "suppressed ",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ck_assert_msg(strstr(log, want[i]), "%s lacks \"%s\":\n%.1500s",
                      srv.log, want[i], log);
    }
    // Every bad header is either a line or in a count; a few are lines.
    int      lines = s_count(log, "bad request (no header) from peer ");
    uint64_t held = s_suppressed(log, "(BAD_REQUEST (no header))");
    ck_assert_msg(lines >= 1 && lines <= 50, "%d lines", lines);
    ck_assert_uint_eq((uint64_t)lines + held, 20000);
    ck_assert_msg(strlen(log) < 20000, "the log has %zu bytes", strlen(log));
    free(log);
}
END_TEST

// A server learns of a newer map epoch only from the scheduler: requests
// that claim epoch 1 + 5, from a stranger, from another job and from the
// map's own worker, are refused and logged, and later pushes under the map
// in force are still taken (they were refused NOT_READY for good before).
START_TEST(test_server_ignores_peer_epochs)
{
    char dir[64];
    th_tmpdir(dir, sizeof dir);
    s_peer_t          t;
    th_proc_t         srv;
    const char *const extra[] = {"--optimizer.schedule=constant",
                                 "--optimizer.lr=0.5", NULL};
    s_fake_start(&t, &srv, dir, extra);
    float g[100];
    for (int i = 0; i < 100; i++) {
        g[i] = 1.0f + (float)i / 100.0f;
    }
    // A raw peer of its own, not registered anywhere, then the worker's
    // link: a stranger's, another job's and the worker's newer epoch.
    void *raw = zmq_socket(t.ctx, ZMQ_DEALER);
    int   zero = 0;
    zmq_setsockopt(raw, ZMQ_LINGER, &zero, sizeof zero);
    char *log = NULL;
    for (int i = 0; i < 200 && !log; i++) {
        log = th_slurp(srv.log);
        if (log && !strstr(log, "advertised as ")) {
            free(log);
            log = NULL;
            usleep(10000);
        }
    }
    ck_assert_ptr_nonnull(log);
    char  ep[128];
    char *at = strstr(log, "advertised as ") + strlen("advertised as ");
    snprintf(ep, sizeof ep, "%.*s", (int)strcspn(at, ")"), at);
    free(log);
    ck_assert_int_eq(zmq_connect(raw, ep), 0);
    Descent__Header h = s_req(&t, DESCENT__TYPE__PUSH, 0, 100);
    h.value_count = 100;
    h.dtype = DESCENT__DTYPE__F32;
    h.epoch = 6;
    h.sender = 77;
    ck_assert_int_eq(ds_msg_send_f32(raw, NULL, &h, g, 100), 0);
    ds_msg_t m;
    s_recv(raw, false, &m);
    ck_assert_int_eq(m.hdr->status, DESCENT__STATUS__STALE_EPOCH);
    ds_msg_fini(&m);
    zmq_close(raw);
    h = s_req(&t, DESCENT__TYPE__PULL, 0, 100);
    h.epoch = 7;
    h.job = "another-job";
    ck_assert_int_eq(ds_msg_send(t.data, NULL, &h, NULL, NULL), 0);
    s_expect(&t, DESCENT__TYPE__PULL_REPLY, DESCENT__STATUS__REFUSED, NULL, 0);
    h = s_req(&t, DESCENT__TYPE__PUSH, 0, 100);
    h.value_count = 100;
    h.dtype = DESCENT__DTYPE__F32;
    h.epoch = 8;
    ck_assert_int_eq(ds_msg_send_f32(t.data, NULL, &h, g, 100), 0);
    s_expect(&t, DESCENT__TYPE__PUSH_ACK, DESCENT__STATUS__STALE_EPOCH, NULL,
             0);

    // Under the map in force (epoch 1) the worker's push is applied once.
    h = s_req(&t, DESCENT__TYPE__PUSH, 0, 100);
    h.value_count = 100;
    h.dtype = DESCENT__DTYPE__F32;
    ck_assert_int_eq(ds_msg_send_f32(t.data, NULL, &h, g, 100), 0);
    s_expect(&t, DESCENT__TYPE__PUSH_ACK, DESCENT__STATUS__OK, NULL, 0);
    h = s_req(&t, DESCENT__TYPE__PULL, 0, 100);
    ck_assert_int_eq(ds_msg_send(t.data, NULL, &h, NULL, NULL), 0);
    float w[100];
    s_expect(&t, DESCENT__TYPE__PULL_REPLY, DESCENT__STATUS__OK, w, 100);
    for (int i = 0; i < 100; i++) {
        ck_assert_float_eq_tol(w[i], -0.5f * g[i], 1e-7f);
    }
    s_fake_stop(&t, &srv);
    s_assert_log_has(&srv, "from node 77 claims map epoch 6; ours is 1: "
                           "ignored");
    s_assert_log_has(&srv, "from node 2 claims map epoch 8; ours is 1");
    s_assert_log_has(&srv, "1 pushes applied");
}
END_TEST

// Each update rule applied by a server through the protocol gives the same
// parameters as the rule applied here with common/optim.h: same pushes, same
// rate, same order.
START_TEST(test_server_rules_match_local)
{
    static const char *const rules[] = {
        "sgd", "momentum", "nag", "adagrad", "adadelta", "rmsprop", "adam"};
    char dir[64];
    th_tmpdir(dir, sizeof dir);
    for (int k = 0; k < 7; k++) {
        char name[64];
        snprintf(name, sizeof name, "--optimizer.name=%s", rules[k]);
        const char *const extra[] = {name, "--optimizer.schedule=constant",
                                     "--optimizer.lr=0.05",
                                     "--optimizer.weight_decay=0.01", NULL};
        s_peer_t          t;
        th_proc_t         srv;
        s_fake_start(&t, &srv, dir, extra);

        ds_optim_t o;
        ds_optim_defaults(&o, (ds_optim_kind_t)ds_optim_parse(rules[k]));
        o.weight_decay = 0.01;
        ds_optim_state_t st;
        ck_assert_int_eq(ds_optim_state_init(&st, &o, 100), 0);
        float local[100] = {0};
        for (int step = 0; step < 20; step++) {
            float g[100];
            for (int i = 0; i < 100; i++) {
                g[i] = (float)sin(0.37 * i + 1.3 * step) + 0.01f * (float)i;
            }
            Descent__Header h = s_req(&t, DESCENT__TYPE__PUSH, 0, 100);
            h.value_count = 100;
            h.dtype = DESCENT__DTYPE__F32;
            h.pull = true;
            ck_assert_int_eq(ds_msg_send_f32(t.data, NULL, &h, g, 100), 0);
            float got[100];
            s_expect(&t, DESCENT__TYPE__PUSH_ACK, DESCENT__STATUS__OK, got,
                     100);
            ds_optim_step(&o, &st, 0, local, g, 100, 0.05);
            for (int i = 0; i < 100; i++) {
                ck_assert_msg(got[i] == local[i],
                              "%s step %d key %d: server %.9g, local %.9g",
                              rules[k], step, i, got[i], local[i]);
            }
        }
        ds_optim_state_fini(&st);
        s_fake_stop(&t, &srv);
    }
}
END_TEST

// s_summary_max returns "max" of the histogram `name` in summary.json.
static double
s_summary_max(const char *summary, const char *name)
{
    const char *p = strstr(summary, name);
    return p ? th_json_number(p, "max", NULL) : NAN;
}

// BSP and SSP bound the staleness of every applied push, in clocks: 0 for
// bsp, s for ssp; the summary's histograms show it.
START_TEST(test_consistency_bounds)
{
    const struct {
        const char *mode;
        int         bound;
    } cases[] = {{"bsp", 0}, {"ssp", 1}};
    for (int k = 0; k < 2; k++) {
        char dir[64], out[128], mode[64];
        th_tmpdir(dir, sizeof dir);
        snprintf(out, sizeof out, "--job.out=%s/out", dir);
        snprintf(mode, sizeof mode, "--train.consistency=%s", cases[k].mode);
        const char *args[] = {"run",
                              "--data.limit=3000",
                              "--train.epochs=2",
                              "--cluster.workers=3",
                              "--train.staleness=1",
                              "--train.n_push=2",
                              "--job.progress=off",
                              mode,
                              out,
                              NULL};
        th_proc_t   p;
        th_spawn(&p, dir, "run", args);
        ck_assert(th_wait(&p, 60000));
        ck_assert_int_eq(p.status, 0);
        char path[160];
        snprintf(path, sizeof path, "%s/out/summary.json", dir);
        char *summary = th_slurp(path);
        ck_assert_ptr_nonnull(summary);
        double clocks = s_summary_max(summary, "\"staleness_clocks\"");
        double updates = s_summary_max(summary, "\"staleness_updates\"");
        ck_assert_msg(clocks >= 0 && clocks <= cases[k].bound,
                      "%s: staleness in clocks reached %g", cases[k].mode,
                      clocks);
        ck_assert_msg(updates >= 0, "%s: no staleness recorded", cases[k].mode);
        free(summary);
    }
}
END_TEST

// s_run_job runs `descent run` with the flags (NULL-terminated) into a
// fresh directory and returns summary.json (caller frees).
static char *
s_run_job(const char *const *flags)
{
    char dir[64], out[128];
    th_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    const char *args[40] = {"run", "--job.progress=off", out};
    int         n = 3;
    for (int i = 0; flags[i] && n < 39; i++) {
        args[n++] = flags[i];
    }
    args[n] = NULL;
    th_proc_t p;
    th_spawn(&p, dir, "run", args);
    ck_assert_msg(th_wait(&p, 90000), "descent run did not finish");
    ck_assert_msg(p.status == 0, "descent run failed; see %s", p.log);
    char path[160];
    snprintf(path, sizeof path, "%s/out/summary.json", dir);
    char *summary = th_slurp(path);
    ck_assert_ptr_nonnull(summary);
    return summary;
}

// Every algorithm trains (small subsets here; make compare has the full
// runs): on 6,000 examples and 3 epochs softmax regression reaches about
// 0.78 and the MLP about 0.80; 0.1 is chance.
START_TEST(test_algorithms_train)
{
    const struct {
        const char *flags[8];
        double      floor;
    } jobs[] = {
        {{"--train.algorithm=downpour", NULL}, 0.72},
        {{"--train.algorithm=dtadagrad", "--optimizer.lr=0.2", NULL}, 0.72},
        {{"--train.algorithm=easgd", "--optimizer.lr=0.1",
          "--train.easgd_delta=0.9", "--train.tau=4", NULL},
         0.72},
        {{"--model.model=mlp", "--model.hidden=64", "--optimizer.name=adam",
          "--optimizer.lr=0.002", NULL},
         0.74},
        {{"--train.threads=2", NULL}, 0.72},
        {{"--model.model=mlp", "--model.hidden=64", "--model.batchnorm=true",
          "--optimizer.name=adam", "--optimizer.lr=0.002", NULL},
         0.74},
    };
    for (size_t k = 0; k < sizeof jobs / sizeof jobs[0]; k++) {
        const char *flags[16] = {"--data.limit=6000", "--train.epochs=3",
                                 "--cluster.workers=3"};
        int         n = 3;
        for (int i = 0; jobs[k].flags[i]; i++) {
            flags[n++] = jobs[k].flags[i];
        }
        flags[n] = NULL;
        char  *summary = s_run_job(flags);
        double acc = th_json_number(summary, "test_accuracy", NULL);
        ck_assert_msg(acc > jobs[k].floor && acc <= 1.0,
                      "%s %s: test accuracy %g", jobs[k].flags[0],
                      jobs[k].flags[1] ? jobs[k].flags[1] : "", acc);
        free(summary);
    }
}
END_TEST

// Delay tolerance: with every push held back by d = 30 steps, AdaptiveRevision
// keeps the loss far lower than AsyncAdaGrad (downpour with adagrad and
// eps = dt_beta = 1, the same rule without the revision); with d = 0 the two
// are the same algorithm and give the same model.
START_TEST(test_delay_tolerance)
{
    double loss[2][2];
    for (int d = 0; d < 2; d++) {
        for (int a = 0; a < 2; a++) {
            const char *flags[] = {"--data.limit=6000",
                                   "--train.epochs=3",
                                   "--cluster.workers=1",
                                   "--cluster.servers=1",
                                   "--optimizer.lr=0.3",
                                   "--optimizer.schedule=constant",
                                   d ? "--train.delay=30" : "--train.delay=0",
                                   a ? "--train.algorithm=downpour"
                                     : "--train.algorithm=dtadagrad",
                                   "--optimizer.name=adagrad",
                                   "--optimizer.eps=1",
                                   NULL};
            char       *summary = s_run_job(flags);
            loss[d][a] = th_json_number(summary, "test_loss", NULL);
            free(summary);
        }
    }
    ck_assert_msg(fabs(loss[0][0] - loss[0][1]) <= 1e-3 * loss[0][1],
                  "no delay: dtadagrad %g, adagrad %g", loss[0][0], loss[0][1]);
    ck_assert_msg(loss[1][0] * 3 < loss[1][1],
                  "delay 30: dtadagrad %g, adagrad %g", loss[1][0], loss[1][1]);
}
END_TEST

// Sparse logistic regression on descent datagen's planted model reaches the
// planted model's accuracy within a point, and only the keys batches touch
// travel: far fewer bytes than whole-model pushes would move.
START_TEST(test_sparse_logreg_planted)
{
    char dir[64], train[128], test[128], tr[160], te[160];
    th_tmpdir(dir, sizeof dir);
    snprintf(train, sizeof train, "%s/train.svm", dir);
    snprintf(test, sizeof test, "%s/test.svm", dir);
    const char *gen[] = {"datagen", "--out",  train,   "--test-out",
                         test,      "--n",    "30000", "--features",
                         "200",     "--seed", "3",     NULL};
    th_proc_t   p;
    th_spawn(&p, dir, "datagen", gen);
    ck_assert(th_wait(&p, 30000));
    ck_assert_int_eq(p.status, 0);
    char side[160];
    snprintf(side, sizeof side, "%s.json", test);
    char *json = th_slurp(side);
    ck_assert_ptr_nonnull(json);
    double planted = th_json_number(json, "planted_accuracy", NULL);
    free(json);
    ck_assert(planted > 0.5 && planted <= 1.0);
    snprintf(tr, sizeof tr, "--data.train_file=%s", train);
    snprintf(te, sizeof te, "--data.test_file=%s", test);
    const char *flags[] = {"--model.model=logreg",
                           "--data.format=libsvm",
                           tr,
                           te,
                           "--data.hash_bits=18",
                           "--optimizer.name=adam",
                           "--optimizer.lr=0.05",
                           "--train.epochs=5",
                           NULL};
    char       *summary = s_run_job(flags);
    double      acc = th_json_number(summary, "test_accuracy", NULL);
    double      pushed = th_json_number(summary, "bytes_pushed", NULL);
    double      examples = th_json_number(summary, "examples", NULL);
    free(summary);
    ck_assert_msg(acc >= planted - 0.01, "accuracy %g, planted %g", acc,
                  planted);
    // Dense pushes of batches of 64 would move 2^18 floats each.
    double dense = examples / 64 * (double)(1 << 18) * 4;
    ck_assert_msg(pushed > 0 && pushed < dense / 20,
                  "pushed %g bytes; dense pushes would be %g", pushed, dense);
}
END_TEST

// s_sort_by_label rewrites the LIBSVM file src as dst with every "-1" row
// first, then the rest: the file order is as bad as it gets.
static void
s_sort_by_label(const char *src, const char *dst)
{
    FILE *out = fopen(dst, "w");
    ck_assert_ptr_nonnull(out);
    for (int pass = 0; pass < 2; pass++) {
        FILE *in = fopen(src, "r");
        ck_assert_ptr_nonnull(in);
        char line[4096];
        while (fgets(line, sizeof line, in)) {
            if ((strncmp(line, "-1", 2) == 0) == (pass == 0)) {
                fputs(line, out);
            }
        }
        fclose(in);
    }
    ck_assert_int_eq(fclose(out), 0);
}

// shuffle = true shuffles the first epoch too. On a training file sorted by
// label, one epoch in file order ends on a run of positives and predicts
// about half the test set wrong; the shuffled epoch learns the model.
START_TEST(test_shuffle_first_epoch)
{
    char dir[64], train[128], sorted[128], test[128], tr[160], te[160];
    th_tmpdir(dir, sizeof dir);
    snprintf(train, sizeof train, "%s/train.svm", dir);
    snprintf(sorted, sizeof sorted, "%s/sorted.svm", dir);
    snprintf(test, sizeof test, "%s/test.svm", dir);
    const char *gen[] = {"datagen", "--out",  train,   "--test-out",
                         test,      "--n",    "20000", "--features",
                         "200",     "--seed", "3",     NULL};
    th_proc_t   p;
    th_spawn(&p, dir, "datagen", gen);
    ck_assert(th_wait(&p, 30000));
    ck_assert_int_eq(p.status, 0);
    s_sort_by_label(train, sorted);
    snprintf(tr, sizeof tr, "--data.train_file=%s", sorted);
    snprintf(te, sizeof te, "--data.test_file=%s", test);
    double acc[2];
    for (int sh = 0; sh < 2; sh++) {
        char out[128], path[160];
        snprintf(out, sizeof out, "--job.out=%s/out%d", dir, sh);
        const char *args[] = {"run",
                              "--job.progress=off",
                              out,
                              "--model.model=logreg",
                              "--data.format=libsvm",
                              tr,
                              te,
                              "--data.hash_bits=12",
                              "--cluster.workers=1",
                              "--cluster.servers=1",
                              "--train.epochs=1",
                              sh ? "--data.shuffle=true"
                                 : "--data.shuffle=false",
                              NULL};
        th_spawn(&p, dir, sh ? "shuffled" : "file-order", args);
        ck_assert(th_wait(&p, 60000));
        ck_assert_int_eq(p.status, 0);
        snprintf(path, sizeof path, "%s/out%d/summary.json", dir, sh);
        char *summary = th_slurp(path);
        ck_assert_ptr_nonnull(summary);
        acc[sh] = th_json_number(summary, "test_accuracy", NULL);
        free(summary);
    }
    ck_assert_msg(acc[0] < 0.6, "file order: accuracy %g", acc[0]);
    ck_assert_msg(acc[1] > 0.75, "shuffled: accuracy %g", acc[1]);
    // The sparse worker describes its rows (datagen's 20 features a row,
    // a few merged by hashing), not a dense width of 0.
    s_assert_log_has(&p, "20000 training examples, 19.8 features a row, "
                         "hashed into 4096 keys");
}
END_TEST

// s_model_epoch returns the "epoch" metadata of the model.safetensors
// under dir/out: the epoch the saved parameters are from.
static int
s_model_epoch(const char *dir)
{
    char path[160];
    snprintf(path, sizeof path, "%s/out/model.safetensors", dir);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char len8[8];
    ck_assert_uint_eq(fread(len8, 1, 8, f), 8);
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) {
        len = len << 8 | len8[i];
    }
    ck_assert(len > 0 && len < 65536);
    char *hdr = calloc(1, len + 1);
    ck_assert_ptr_nonnull(hdr);
    ck_assert_uint_eq(fread(hdr, 1, len, f), len);
    fclose(f);
    const char *at = strstr(hdr, "\"epoch\":\"");
    ck_assert_msg(at != NULL, "no epoch in the metadata: %s", hdr);
    int epoch = atoi(at + strlen("\"epoch\":\""));
    free(hdr);
    return epoch;
}

// Early stopping keeps the best validation epoch's model: the final test
// accuracy is the one rank 0 reported for that epoch, and the saved model
// records that epoch. Rank 0 decides, on the epochs it evaluated, so the
// scheduler's best_epoch is the saved model's even when the other workers
// lag. A curriculum (easy first, mixed) trains too.
START_TEST(test_early_stopping_and_curriculum)
{
    char dir[64], out[128];
    th_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    const char *args[] = {"run",
                          "--job.progress=off",
                          out,
                          "--data.limit=8000",
                          "--data.validation=2000",
                          "--train.patience=1",
                          "--optimizer.lr=0.2",
                          "--optimizer.schedule=constant",
                          "--train.epochs=8",
                          "--train.curriculum=mixed",
                          NULL};
    th_proc_t   p;
    th_spawn(&p, dir, "run", args);
    ck_assert(th_wait(&p, 60000));
    ck_assert_int_eq(p.status, 0);
    char path[160];
    snprintf(path, sizeof path, "%s/out/summary.json", dir);
    char *summary = th_slurp(path);
    ck_assert_ptr_nonnull(summary);
    double best = th_json_number(summary, "best_epoch", NULL);
    double acc = th_json_number(summary, "test_accuracy", NULL);
    free(summary);
    ck_assert(best >= 1 && best <= 8);
    ck_assert_int_eq(s_model_epoch(dir), (int)best);
    snprintf(path, sizeof path, "%s/out/metrics.jsonl", dir);
    char *metrics = th_slurp(path);
    ck_assert_ptr_nonnull(metrics);
    char want[64];
    snprintf(want, sizeof want, "\"rank\":0,\"epoch\":%d,", (int)best);
    const char *line = strstr(metrics, want);
    ck_assert_msg(line != NULL, "no report of epoch %g", best);
    double at_best = th_json_number(line, "test_accuracy", NULL);
    free(metrics);
    ck_assert_msg(fabs(acc - at_best) < 1e-6,
                  "final accuracy %g, epoch %g reported %g", acc, best,
                  at_best);
    ck_assert(acc > 0.4); // chance is 0.1
}
END_TEST

// s_wait_log_has waits up to 10 s for needle to appear in p's log.
static void
s_wait_log_has(const th_proc_t *p, const char *needle)
{
    for (int i = 0; i < 200; i++) {
        char *log = th_slurp(p->log);
        bool  found = log != NULL && strstr(log, needle) != NULL;
        free(log);
        if (found) {
            return;
        }
        usleep(50 * 1000);
    }
    s_assert_log_has(p, needle);
}

// Early stopping with a worker far behind rank 0 (its requests held back
// up to 20 ms each): the scheduler used to decide on the epochs every
// worker had reported, long after rank 0 had trained, evaluated and kept a
// later epoch, so best_epoch named another model than the one saved. Rank 0
// decides now; whatever the timing, the summary's best_epoch is the saved
// model's epoch and the final accuracy is the one reported for it.
START_TEST(test_early_stopping_lagging_worker)
{
    char dir[64], sched[64], bind[64], out[128];
    th_tmpdir(dir, sizeof dir);
    int port = th_free_port();
    snprintf(sched, sizeof sched, "--cluster.scheduler=tcp://127.0.0.1:%d",
             port);
    snprintf(bind, sizeof bind, "--cluster.bind=tcp://127.0.0.1:%d", port);
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    const char *job[] = {"--cluster.servers=1",
                         "--cluster.workers=2",
                         "--data.limit=8000",
                         "--data.validation=2000",
                         "--train.patience=1",
                         "--optimizer.lr=0.2",
                         "--optimizer.schedule=constant",
                         "--train.epochs=8",
                         "--train.curriculum=mixed",
                         "--job.progress=off",
                         sched,
                         out};
    enum { NJOB = sizeof job / sizeof job[0] };
    const char *sa[NJOB + 3] = {"scheduler", bind};
    const char *na[NJOB + 3] = {"server", "--cluster.bind=tcp://127.0.0.1:*"};
    const char *fa[NJOB + 3] = {"worker", "--cluster.fault_delay_ms=0"};
    const char *la[NJOB + 3] = {"worker", "--cluster.fault_delay_ms=20"};
    for (int i = 0; i < NJOB; i++) {
        sa[i + 2] = na[i + 2] = fa[i + 2] = la[i + 2] = job[i];
    }
    th_proc_t s, n, fast, slow;
    th_spawn(&s, dir, "scheduler", sa);
    th_spawn(&n, dir, "server", na);
    th_spawn(&fast, dir, "fast", fa);
    // Ranks follow the order of joining: the fast worker is rank 0.
    s_wait_log_has(&s, "1/2 workers");
    th_spawn(&slow, dir, "slow", la);
    ck_assert(th_wait(&s, 60000));
    ck_assert(th_wait(&fast, 10000));
    ck_assert(th_wait(&slow, 10000));
    ck_assert(th_wait(&n, 10000));
    ck_assert_int_eq(s.status, 0);
    char path[160];
    snprintf(path, sizeof path, "%s/out/summary.json", dir);
    char *summary = th_slurp(path);
    ck_assert_ptr_nonnull(summary);
    double best = th_json_number(summary, "best_epoch", NULL);
    double acc = th_json_number(summary, "test_accuracy", NULL);
    free(summary);
    ck_assert(best >= 1 && best <= 8);
    ck_assert_int_eq(s_model_epoch(dir), (int)best);
    snprintf(path, sizeof path, "%s/out/metrics.jsonl", dir);
    char *metrics = th_slurp(path);
    ck_assert_ptr_nonnull(metrics);
    char want[64];
    snprintf(want, sizeof want, "\"rank\":0,\"epoch\":%d,", (int)best);
    const char *line = strstr(metrics, want);
    ck_assert_msg(line != NULL, "no report of epoch %g", best);
    double at_best = th_json_number(line, "test_accuracy", NULL);
    free(metrics);
    ck_assert_msg(fabs(acc - at_best) < 1e-6,
                  "final accuracy %g, epoch %g reported %g", acc, best,
                  at_best);
}
END_TEST

// Servers checkpoint their ranges at the end of a job; `descent run
// --resume` continues it from there: the model, the rule's state and the
// epochs done. The resumed epochs start from the trained model, so their
// loss is far below a fresh first epoch's.
START_TEST(test_resume_from_checkpoints)
{
    char dir[64], out[128];
    th_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    const char *first[] = {"run",
                           "--job.progress=off",
                           out,
                           "--data.limit=6000",
                           "--train.epochs=2",
                           "--optimizer.name=adam",
                           "--optimizer.lr=0.002",
                           "--optimizer.schedule=constant",
                           NULL};
    th_proc_t   p;
    th_spawn(&p, dir, "first", first);
    ck_assert(th_wait(&p, 60000));
    ck_assert_int_eq(p.status, 0);
    char path[160];
    snprintf(path, sizeof path, "%s/out/metrics.jsonl", dir);
    char *m1 = th_slurp(path);
    ck_assert_ptr_nonnull(m1);
    double fresh = s_epoch_loss(m1, 1);
    free(m1);
    snprintf(path, sizeof path, "%s/out/checkpoints/range-0.ckpt", dir);
    ck_assert_int_eq(access(path, R_OK), 0);

    const char *again[] = {"run",
                           "--job.progress=off",
                           out,
                           "--data.limit=6000",
                           "--train.epochs=4",
                           "--optimizer.name=adam",
                           "--optimizer.lr=0.002",
                           "--optimizer.schedule=constant",
                           "--job.resume=true",
                           NULL};
    th_spawn(&p, dir, "again", again);
    ck_assert(th_wait(&p, 60000));
    ck_assert_int_eq(p.status, 0);
    s_assert_log_has(&p, "resumed 4 ranges");
    snprintf(path, sizeof path, "%s/out/metrics.jsonl", dir);
    char *m2 = th_slurp(path);
    ck_assert_ptr_nonnull(m2);
    double resumed = s_epoch_loss(m2, 3);
    free(m2);
    ck_assert_msg(isfinite(fresh) && isfinite(resumed) && resumed < 0.8 * fresh,
                  "epoch 3 after resuming: loss %g; a fresh epoch 1: %g",
                  resumed, fresh);
    snprintf(path, sizeof path, "%s/out/progress", dir);
    char *prog = th_slurp(path);
    ck_assert_ptr_nonnull(prog);
    ck_assert_str_eq(prog, "epochs_done 4\n");
    free(prog);

    // Resuming where nothing was saved is refused, naming what is missing.
    char empty[128];
    snprintf(empty, sizeof empty, "--job.out=%s/none", dir);
    const char *none[] = {"run",
                          "--job.progress=off",
                          empty,
                          "--data.limit=6000",
                          "--job.resume=true",
                          NULL};
    th_spawn(&p, dir, "none", none);
    ck_assert(th_wait(&p, 30000));
    ck_assert_int_eq(p.status, 1);
    s_assert_log_has(&p, "none/progress");
}
END_TEST

// A slow disk ([cluster] fault_disk_ms: 2 s per checkpoint file) under
// the fault suite's failure timeout of 1 s: the periodic checkpoints while
// training (held to about 3 s by fault_delay_ms), and the checkpoints read
// back on resume before the servers are ready, take longer than the
// timeout, yet the servers keep answering heartbeats meanwhile: no server
// is declared lost and the map stays at its first epoch. (With those
// writes and reads on the servers' event loops, the scheduler failed the
// servers over and the job failed.)
START_TEST(test_slow_disk_keeps_servers_alive)
{
    char dir[64], out[128];
    th_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    const char        *first[] = {"run",
                                  "--job.progress=off",
                                  out,
                                  "--data.limit=6000",
                                  "--data.test_limit=1000",
                                  "--train.epochs=2",
                                  "--cluster.servers=2",
                                  "--cluster.workers=2",
                                  "--cluster.ranges_per_server=1",
                                  "--cluster.heartbeat_ms=100",
                                  "--cluster.timeout_ms=1000",
                                  "--cluster.retry_ms=200",
                                  "--job.checkpoint_s=1",
                                  "--cluster.fault_delay_ms=20",
                                  "--cluster.fault_disk_ms=2000",
                                  NULL};
    const char        *again[] = {"run",
                                  "--job.progress=off",
                                  out,
                                  "--data.limit=6000",
                                  "--data.test_limit=1000",
                                  "--train.epochs=3",
                                  "--cluster.servers=2",
                                  "--cluster.workers=2",
                                  "--cluster.ranges_per_server=1",
                                  "--cluster.heartbeat_ms=100",
                                  "--cluster.timeout_ms=1000",
                                  "--cluster.retry_ms=200",
                                  "--cluster.fault_disk_ms=2000",
                                  "--job.resume=true",
                                  NULL};
    const char *const *runs[] = {first, again};
    for (int i = 0; i < 2; i++) {
        th_proc_t p;
        th_spawn(&p, dir, i == 0 ? "first" : "again", runs[i]);
        ck_assert(th_wait(&p, 90000));
        char path[160];
        snprintf(path, sizeof path, "%s/out/summary.json", dir);
        char *summary = th_slurp(path);
        ck_assert_ptr_nonnull(summary);
        ck_assert_msg(th_json_number(summary, "failovers", NULL) == 0 &&
                          th_json_number(summary, "map_epoch", NULL) == 1,
                      "run %d: servers were declared lost: %s", i, summary);
        ck_assert_ptr_nonnull(strstr(summary, "\"ok\":true"));
        free(summary);
        ck_assert_int_eq(p.status, 0);
        // The path under test ran: a periodic checkpoint while training,
        // the checkpoints read back on resume.
        s_assert_log_has(&p, i == 0 ? "periodic checkpoint of 1 ranges written"
                                    : "resumed 2 ranges");
    }
}
END_TEST

// Lost messages: with 10% of requests and of replies dropped (fault
// injection), workers re-send what is unanswered and servers apply every
// push exactly once: 2 workers x 48 steps = 96 pushes per range, 2 ranges
// per server, 192 applied on each server, duplicates recognized and not
// applied.
START_TEST(test_lost_messages_exactly_once)
{
    char dir[64], out[128];
    th_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    const char *args[] = {"run",
                          "--job.progress=off",
                          out,
                          "--data.limit=3000",
                          "--train.epochs=2",
                          "--cluster.fault_drop=0.1",
                          "--cluster.retry_ms=20",
                          NULL};
    th_proc_t   p;
    th_spawn(&p, dir, "run", args);
    ck_assert(th_wait(&p, 90000));
    ck_assert_int_eq(p.status, 0);
    char *log = th_slurp(p.log);
    ck_assert_ptr_nonnull(log);
    int         servers = 0;
    const char *q = log;
    while ((q = strstr(q, "server: node "))) {
        const char *applied = strstr(q, " pushes applied");
        const char *eol = strchr(q, '\n');
        if (applied && (!eol || applied < eol)) {
            const char *num = applied;
            while (num > q && num[-1] >= '0' && num[-1] <= '9') {
                num--;
            }
            ck_assert_msg(atoi(num) == 192, "a server applied %d pushes",
                          atoi(num));
            ck_assert_ptr_nonnull(strstr(applied, " duplicates"));
            servers++;
        }
        q++;
    }
    free(log);
    ck_assert_int_eq(servers, 2);
    s_assert_log_has(&p, "requests sent again");
    char path[160];
    snprintf(path, sizeof path, "%s/out/summary.json", dir);
    char *summary = th_slurp(path);
    ck_assert_ptr_nonnull(summary);
    ck_assert(th_json_number(summary, "test_accuracy", NULL) > 0.6);
    free(summary);
}
END_TEST

// ---- failures: nothing hangs ---------------------------------------------

typedef struct {
    char      dir[64];
    char      sched[64];
    char      bind[64];
    th_proc_t scheduler, server, worker;
} s_small_t;

// s_small starts a scheduler, one server and one long-running worker with
// sub-second failure detection.
static void
s_small(s_small_t *c)
{
    th_tmpdir(c->dir, sizeof c->dir);
    int port = th_free_port();
    snprintf(c->sched, sizeof c->sched,
             "--cluster.scheduler=tcp://127.0.0.1:%d", port);
    snprintf(c->bind, sizeof c->bind, "--cluster.bind=tcp://127.0.0.1:%d",
             port);
    char out[128];
    snprintf(out, sizeof out, "--job.out=%s/out", c->dir);
    const char *common[] = {"--cluster.servers=1",
                            "--cluster.workers=1",
                            "--cluster.heartbeat_ms=100",
                            "--cluster.timeout_ms=1000",
                            "--cluster.scheduler_timeout_ms=2000",
                            "--cluster.request_timeout_ms=1000",
                            "--data.limit=2000",
                            "--train.epochs=100000",
                            "--job.progress=off"};
    const char *sa[16] = {"scheduler", c->sched, c->bind, out};
    const char *na[16] = {"server", c->sched,
                          "--cluster.bind=tcp://127.0.0.1:*",
                          "--cluster.advertise=127.0.0.1"};
    const char *wa[16] = {"worker", c->sched};
    for (int i = 0; i < 8; i++) {
        sa[4 + i] = na[4 + i] = wa[2 + i] = common[i];
    }
    th_spawn(&c->scheduler, c->dir, "scheduler", sa);
    th_spawn(&c->server, c->dir, "server", na);
    th_spawn(&c->worker, c->dir, "worker", wa);
}

static void
s_small_reap(s_small_t *c)
{
    th_kill(&c->scheduler, SIGKILL);
    th_kill(&c->server, SIGKILL);
    th_kill(&c->worker, SIGKILL);
    th_wait(&c->scheduler, 1000);
    th_wait(&c->server, 1000);
    th_wait(&c->worker, 1000);
}

// A worker killed mid-training and restarted with its node id rejoins: it
// takes its old place, numbers its requests above its old ones, continues
// from the step it last reported, and the job completes.
// workers = 0: the scheduler takes every worker that joins until none has
// for join_window_ms; each learns the count and takes its share.
START_TEST(test_elastic_workers)
{
    char dir[128];
    th_tmpdir(dir, sizeof dir);
    int  port = th_free_port();
    char sched[64], bind[64], out[192];
    snprintf(sched, sizeof sched, "--cluster.scheduler=tcp://127.0.0.1:%d",
             port);
    snprintf(bind, sizeof bind, "--cluster.bind=tcp://127.0.0.1:%d", port);
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    const char *sa[] = {"scheduler",
                        sched,
                        bind,
                        out,
                        "--cluster.servers=1",
                        "--cluster.workers=0",
                        "--cluster.join_window_ms=800",
                        "--data.limit=6000",
                        "--train.epochs=1",
                        "--job.progress=off",
                        NULL};
    const char *na[] = {"server",
                        sched,
                        "--cluster.bind=tcp://127.0.0.1:*",
                        "--cluster.servers=1",
                        "--cluster.workers=0",
                        "--data.limit=6000",
                        "--train.epochs=1",
                        NULL};
    const char *wa[] = {"worker",
                        sched,
                        out,
                        "--cluster.workers=0",
                        "--data.limit=6000",
                        "--train.epochs=1",
                        NULL};
    th_proc_t   sc, sv, w[3];
    th_spawn(&sc, dir, "scheduler", sa);
    th_spawn(&sv, dir, "server", na);
    const char *names[3] = {"w0", "w1", "w2"};
    for (int i = 0; i < 3; i++) {
        th_spawn(&w[i], dir, names[i], wa);
    }
    ck_assert_msg(th_wait(&sc, 60000), "the job did not end");
    ck_assert_int_eq(sc.status, 0);
    s_assert_log_has(&sc, "the job has 3 workers");
    for (int i = 0; i < 3; i++) {
        ck_assert(th_wait(&w[i], 10000));
        ck_assert_int_eq(w[i].status, 0);
        // 6,000 examples in three shares.
        s_assert_log_has(&w[i], "2000 training examples");
    }
    ck_assert(th_wait(&sv, 10000));
    ck_assert_int_eq(sv.status, 0);
}
END_TEST

START_TEST(test_worker_rejoins)
{
    s_small_t c;
    th_tmpdir(c.dir, sizeof c.dir);
    int port = th_free_port();
    snprintf(c.sched, sizeof c.sched, "--cluster.scheduler=tcp://127.0.0.1:%d",
             port);
    snprintf(c.bind, sizeof c.bind, "--cluster.bind=tcp://127.0.0.1:%d", port);
    char out[128];
    snprintf(out, sizeof out, "--job.out=%s/out", c.dir);
    const char *common[] = {"--cluster.servers=1", "--cluster.workers=2",
                            "--data.limit=6000", "--train.epochs=150",
                            "--job.progress=off"};
    const char *sa[16] = {"scheduler", c.sched, c.bind, out};
    const char *na[16] = {"server", c.sched,
                          "--cluster.bind=tcp://127.0.0.1:*"};
    const char *wa[16] = {"worker", c.sched, out};
    for (int i = 0; i < 5; i++) {
        sa[4 + i] = na[3 + i] = wa[3 + i] = common[i];
    }
    th_proc_t w2;
    th_spawn(&c.scheduler, c.dir, "scheduler", sa);
    th_spawn(&c.server, c.dir, "server", na);
    th_spawn(&c.worker, c.dir, "worker", wa);
    th_spawn(&w2, c.dir, "worker2", wa);
    // Wait until the second worker trains, then kill it. Loading may take
    // many seconds on a loaded machine.
    char *log = NULL;
    for (int i = 0; i < 600; i++) {
        usleep(50000);
        free(log);
        log = th_slurp(w2.log);
        char *slog = th_slurp(c.scheduler.log);
        bool  training = slog && strstr(slog, "training starts");
        free(slog);
        if (log && strstr(log, "steps") && training) {
            break;
        }
    }
    ck_assert_ptr_nonnull(log);
    const char *reg = strstr(log, "registered as node ");
    ck_assert_ptr_nonnull(reg);
    int id = atoi(reg + 19);
    free(log);
    usleep(300000);
    th_kill(&w2, SIGKILL);
    th_wait(&w2, 2000);
    char rejoin[64];
    snprintf(rejoin, sizeof rejoin, "--cluster.node_id=%d", id);
    const char *ra[16] = {"worker", c.sched, out, rejoin};
    for (int i = 0; i < 5; i++) {
        ra[4 + i] = common[i];
    }
    th_proc_t w3;
    th_spawn(&w3, c.dir, "worker3", ra);
    ck_assert_msg(th_wait(&c.scheduler, 60000), "the job did not end");
    ck_assert(th_wait(&w3, 10000));
    ck_assert(th_wait(&c.worker, 10000));
    ck_assert(th_wait(&c.server, 10000));
    ck_assert_int_eq(c.scheduler.status, 0);
    ck_assert_int_eq(w3.status, 0);
    char want[64];
    snprintf(want, sizeof want, "worker %d rejoined", id);
    s_assert_log_has(&c.scheduler, want);
    s_assert_log_has(&w3, "rejoined at step");
    s_assert_log_has(&c.scheduler, "test accuracy");
}
END_TEST

// descent run starts a worker that was killed again, and the job ends well.
START_TEST(test_run_restarts_killed_worker)
{
    char dir[64], out[128], nodes[160];
    th_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    snprintf(nodes, sizeof nodes, "%s/out/nodes", dir);
    const char *args[] = {"run",
                          "--job.progress=off",
                          out,
                          "--data.limit=6000",
                          "--train.epochs=150",
                          NULL};
    th_proc_t   p;
    th_spawn(&p, dir, "run", args);
    int victim = 0;
    for (int i = 0; i < 100 && victim == 0; i++) {
        usleep(50000);
        DIR *d = opendir(nodes);
        for (struct dirent *e; d && (e = readdir(d));) {
            if (e->d_name[0] != '.') {
                victim = atoi(e->d_name);
            }
        }
        if (d) {
            closedir(d);
        }
    }
    ck_assert_int_gt(victim, 0);
    // Kill it once training runs (or after 5 s, which also works).
    for (int i = 0; i < 100; i++) {
        char *log = th_slurp(p.log);
        bool  training = log && strstr(log, "training starts");
        free(log);
        if (training) {
            break;
        }
        usleep(50000);
    }
    usleep(200000);
    ck_assert_int_eq(kill(victim, SIGKILL), 0);
    ck_assert_msg(th_wait(&p, 60000), "descent run did not end");
    ck_assert_int_eq(p.status, 0);
    s_assert_log_has(&p, "was killed by signal 9 (Killed); starting it again");
    s_assert_log_has(&p, "test accuracy");
}
END_TEST

START_TEST(test_dead_server_ends_the_job)
{
    s_small_t c;
    s_small(&c);
    // Killed in training, where the failure timeout applies (before it,
    // a silent server fails the start-up only after join_timeout_ms, and
    // loading the data can take seconds on a loaded machine).
    bool training = false;
    for (int i = 0; i < 600 && !training; i++) {
        char *log = th_slurp(c.scheduler.log);
        training = log && strstr(log, "training starts");
        free(log);
        usleep(50000);
    }
    ck_assert_msg(training, "training did not start");
    ck_assert_int_eq(c.scheduler.pid != 0 && c.worker.pid != 0, 1);
    th_kill(&c.server, SIGKILL);
    ck_assert_msg(th_wait(&c.scheduler, 8000),
                  "the scheduler hung after its server died");
    ck_assert_msg(th_wait(&c.worker, 8000),
                  "the worker hung after its server died");
    ck_assert_int_eq(c.scheduler.status, 1);
    ck_assert_int_ne(c.worker.status, 0);
    ck_assert_int_eq(c.worker.signal, 0);
    // Whichever noticed first, the error names the dead server by its id.
    char *slog = th_slurp(c.server.log);
    ck_assert_ptr_nonnull(slog);
    const char *reg = strstr(slog, "registered as node ");
    ck_assert_ptr_nonnull(reg);
    char name[64];
    snprintf(name, sizeof name, "server %d", atoi(reg + 19));
    free(slog);
    s_assert_log_has(&c.scheduler, name);
    char path[128];
    snprintf(path, sizeof path, "%s/out/summary.json", c.dir);
    char *summary = th_slurp(path);
    ck_assert_ptr_nonnull(summary);
    ck_assert_ptr_nonnull(strstr(summary, "\"ok\":false"));
    // The audit was never gathered: unknown, not "every push lost".
    ck_assert_ptr_nonnull(strstr(summary, "\"lost\":null"));
    ck_assert_ptr_nonnull(strstr(summary, "\"replicas_identical\":null"));
    free(summary);
    s_small_reap(&c);
}
END_TEST

// Nodes carry on without the scheduler for scheduler_timeout_ms (it may be
// restarting), then stop.
START_TEST(test_dead_scheduler_ends_the_nodes)
{
    s_small_t c;
    s_small(&c);
    sleep(2);
    th_kill(&c.scheduler, SIGKILL);
    ck_assert_msg(th_wait(&c.server, 8000), "the server hung");
    ck_assert_msg(th_wait(&c.worker, 8000), "the worker hung");
    ck_assert_int_eq(c.server.status, 1);
    ck_assert_int_eq(c.worker.status, 1);
    s_assert_log_has(&c.server, "lost the scheduler");
    s_assert_log_has(&c.worker, "lost the scheduler");
    s_small_reap(&c);
}
END_TEST

// A worker that has loaded its data before the last server joins must still
// be counted: the job starts once everyone is there.
START_TEST(test_late_server_joins)
{
    char dir[64], sched[64], bind[64], out[128];
    th_tmpdir(dir, sizeof dir);
    int port = th_free_port();
    snprintf(sched, sizeof sched, "--cluster.scheduler=tcp://127.0.0.1:%d",
             port);
    snprintf(bind, sizeof bind, "--cluster.bind=tcp://127.0.0.1:%d", port);
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    const char *sa[] = {"scheduler",
                        sched,
                        bind,
                        out,
                        "--cluster.servers=1",
                        "--cluster.workers=1",
                        "--data.limit=2000",
                        "--train.epochs=2",
                        NULL};
    const char *wa[] = {"worker",
                        sched,
                        "--cluster.servers=1",
                        "--cluster.workers=1",
                        "--data.limit=2000",
                        "--train.epochs=2",
                        out,
                        NULL};
    const char *na[] = {"server",
                        sched,
                        "--cluster.bind=tcp://127.0.0.1:*",
                        "--cluster.advertise=127.0.0.1",
                        "--data.limit=2000",
                        "--train.epochs=2",
                        NULL};
    th_proc_t   s, w, n;
    th_spawn(&s, dir, "scheduler", sa);
    th_spawn(&w, dir, "worker", wa);
    sleep(2);
    th_spawn(&n, dir, "server", na);
    ck_assert_msg(th_wait(&s, 20000), "the job hung waiting for a late server");
    ck_assert(th_wait(&w, 5000));
    ck_assert(th_wait(&n, 5000));
    ck_assert_int_eq(s.status, 0);
    ck_assert_int_eq(w.status, 0);
    ck_assert_int_eq(n.status, 0);
    s_assert_log_has(&s, "test accuracy");
}
END_TEST

START_TEST(test_missing_nodes_time_out)
{
    char dir[64], bind[64], out[128];
    th_tmpdir(dir, sizeof dir);
    snprintf(bind, sizeof bind, "--cluster.bind=tcp://127.0.0.1:%d",
             th_free_port());
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    const char *args[] = {"scheduler",
                          bind,
                          out,
                          "--cluster.join_timeout_ms=700",
                          "--cluster.heartbeat_ms=100",
                          NULL};
    th_proc_t   p;
    th_spawn(&p, dir, "scheduler", args);
    ck_assert(th_wait(&p, 5000));
    ck_assert_int_eq(p.status, 1);
    s_assert_log_has(&p, "only 0 of 2 servers and 0 of 2 workers joined "
                         "within 700 ms");
}
END_TEST

// Every node of a job must have the job's job-wide settings: a worker with
// another model and a server with another rate are refused at REGISTER with
// the first differing setting named, and exit 1. The softmax job gets no
// worker and fails; it must not train the stray worker's MLP.
START_TEST(test_mismatched_settings_refused)
{
    char dir[64], sched[64], bind[64], out[128];
    th_tmpdir(dir, sizeof dir);
    int port = th_free_port();
    snprintf(sched, sizeof sched, "--cluster.scheduler=tcp://127.0.0.1:%d",
             port);
    snprintf(bind, sizeof bind, "--cluster.bind=tcp://127.0.0.1:%d", port);
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    const char *sa[] = {"scheduler",
                        sched,
                        bind,
                        out,
                        "--cluster.servers=1",
                        "--cluster.workers=1",
                        "--cluster.join_timeout_ms=4000",
                        "--data.limit=2000",
                        "--train.epochs=1",
                        "--model.model=softmax",
                        "--job.progress=off",
                        NULL};
    // Per-node settings (bind, out, timeouts, cluster sizes) may differ.
    const char *na[] = {"server",
                        sched,
                        "--cluster.bind=tcp://127.0.0.1:*",
                        "--cluster.heartbeat_ms=200",
                        "--data.limit=2000",
                        "--train.epochs=1",
                        NULL};
    const char *ba[] = {"server",
                        sched,
                        "--cluster.bind=tcp://127.0.0.1:*",
                        "--data.limit=2000",
                        "--train.epochs=1",
                        "--optimizer.lr=0.1",
                        NULL};
    const char *wa[] = {"worker",
                        sched,
                        "--data.limit=2000",
                        "--train.epochs=1",
                        "--model.model=mlp",
                        NULL};
    th_proc_t   sc, sv, bad, w;
    th_spawn(&sc, dir, "scheduler", sa);
    th_spawn(&sv, dir, "server", na);
    th_spawn(&bad, dir, "badserver", ba);
    th_spawn(&w, dir, "worker", wa);
    ck_assert_msg(th_wait(&w, 10000), "the stray worker did not exit");
    ck_assert_int_eq(w.signal, 0);
    ck_assert_int_eq(w.status, 1);
    s_assert_log_has(&w, "[model] model: this node has mlp, the job has "
                         "softmax");
    ck_assert_msg(th_wait(&bad, 10000), "the stray server did not exit");
    ck_assert_int_eq(bad.status, 1);
    s_assert_log_has(&bad, "[optimizer] lr: this node has 0.1, the job has "
                           "0.2");
    ck_assert_msg(th_wait(&sc, 20000), "the job did not end");
    ck_assert_int_eq(sc.status, 1);
    s_assert_log_has(&sc, "refused a worker: [model] model: this node has "
                          "mlp, the job has softmax");
    s_assert_log_has(&sc, "0 of 1 workers joined");
    char path[192];
    snprintf(path, sizeof path, "%s/out/summary.json", dir);
    char *summary = th_slurp(path);
    ck_assert_ptr_nonnull(summary);
    ck_assert_msg(strstr(summary, "\"ok\":false") != NULL, "%s", summary);
    free(summary);
    ck_assert(th_wait(&sv, 10000));
}
END_TEST

// s_write_idx writes an IDX file: magic, then the dims, big-endian, then
// n * per bytes of value (i * 7 + j) % mod for example i, byte j.
static void
s_write_idx(const char *path, uint32_t magic, const uint32_t *dims, int ndims,
            size_t per, int mod)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    uint32_t words[4] = {magic};
    for (int i = 0; i < ndims; i++) {
        words[1 + i] = dims[i];
    }
    for (int i = 0; i <= ndims; i++) {
        unsigned char b[4] = {
            (unsigned char)(words[i] >> 24), (unsigned char)(words[i] >> 16),
            (unsigned char)(words[i] >> 8), (unsigned char)words[i]};
        ck_assert_uint_eq(fwrite(b, 1, 4, f), 4);
    }
    for (uint32_t i = 0; i < dims[0]; i++) {
        for (size_t j = 0; j < per; j++) {
            ck_assert_int_ne(fputc((int)((i * 7 + j) % (size_t)mod), f), EOF);
        }
    }
    ck_assert_int_eq(fclose(f), 0);
}

// Workers whose datasets have other shapes cannot train one model: the job
// fails at READY, naming the shape that differs.
START_TEST(test_mismatched_data_shapes)
{
    char dir[64], sched[64], bind[64], out[128], data[128], flag[160];
    th_tmpdir(dir, sizeof dir);
    // A small 8x8 dataset beside Fashion-MNIST's 28x28.
    snprintf(data, sizeof data, "%s/small", dir);
    ck_assert_int_eq(mkdir(data, 0755), 0);
    const char *names[4] = {"train-images-idx3-ubyte",
                            "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                            "t10k-labels-idx1-ubyte"};
    for (int i = 0; i < 4; i++) {
        char     path[192];
        uint32_t n = i < 2 ? 200 : 20;
        uint32_t dims[3] = {n, 8, 8};
        snprintf(path, sizeof path, "%s/%s", data, names[i]);
        if (i % 2 == 0) {
            s_write_idx(path, 0x803, dims, 3, 64, 256);
        } else {
            s_write_idx(path, 0x801, dims, 1, 1, 10);
        }
    }
    int port = th_free_port();
    snprintf(sched, sizeof sched, "--cluster.scheduler=tcp://127.0.0.1:%d",
             port);
    snprintf(bind, sizeof bind, "--cluster.bind=tcp://127.0.0.1:%d", port);
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    snprintf(flag, sizeof flag, "--data.data_dir=%s", data);
    const char *sa[] = {"scheduler",
                        sched,
                        bind,
                        out,
                        "--cluster.servers=1",
                        "--cluster.workers=2",
                        "--data.limit=2000",
                        NULL};
    const char *na[] = {"server", sched, "--cluster.bind=tcp://127.0.0.1:*",
                        "--data.limit=2000", NULL};
    const char *wa[] = {"worker", sched, "--data.limit=2000", NULL};
    const char *wb[] = {"worker", sched, "--data.limit=2000", flag, NULL};
    th_proc_t   sc, sv, w1, w2;
    th_spawn(&sc, dir, "scheduler", sa);
    th_spawn(&sv, dir, "server", na);
    th_spawn(&w1, dir, "worker1", wa);
    th_spawn(&w2, dir, "worker2", wb);
    ck_assert_msg(th_wait(&sc, 30000), "the job did not end");
    ck_assert_int_eq(sc.status, 1);
    char *log = th_slurp(sc.log);
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, "has data of 64 features, other workers 784") ||
                      strstr(log, "has data of 784 features, other workers 64"),
                  "%s", log);
    ck_assert_msg(strstr(log, "every worker must load the same dataset"), "%s",
                  log);
    free(log);
    ck_assert(th_wait(&w1, 10000));
    ck_assert(th_wait(&w2, 10000));
    ck_assert(th_wait(&sv, 10000));
}
END_TEST

// ---- bad input from a user ------------------------------------------------

START_TEST(test_missing_dataset)
{
    char dir[64];
    th_tmpdir(dir, sizeof dir);
    const char *args[] = {"run", "--data.data_dir=/nonexistent/fmnist", NULL};
    th_proc_t   p;
    th_spawn(&p, dir, "run", args);
    ck_assert(th_wait(&p, 10000));
    ck_assert_int_eq(p.signal, 0);
    ck_assert_int_eq(p.status, 1);
    s_assert_log_has(&p, "/nonexistent/fmnist/train-images-idx3-ubyte");
    s_assert_log_has(&p, "dataset-fashion-mnist");
}
END_TEST

// A dataset file that is there but cannot be read is reported with its real
// error, without the advice to install the dataset. Tests run as root, who
// reads any file whatever its mode, so a symbolic link to itself (ELOOP)
// stands in for an unreadable file.
START_TEST(test_unreadable_dataset)
{
    char dir[64], link[128], flag[128];
    th_tmpdir(dir, sizeof dir);
    snprintf(link, sizeof link, "%s/train-images-idx3-ubyte", dir);
    ck_assert_int_eq(symlink(link, link), 0);
    snprintf(flag, sizeof flag, "--data.data_dir=%s", dir);
    const char *args[] = {"run", flag, NULL};
    th_proc_t   p;
    th_spawn(&p, dir, "run", args);
    ck_assert(th_wait(&p, 10000));
    ck_assert_int_eq(p.signal, 0);
    ck_assert_int_eq(p.status, 1);
    char want[192];
    snprintf(want, sizeof want, "cannot read %s: %s", link, strerror(ELOOP));
    s_assert_log_has(&p, want);
    char *log = th_slurp(p.log);
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, "dataset-fashion-mnist") == NULL, "%s", log);
    free(log);
}
END_TEST

START_TEST(test_bad_config_line)
{
    char dir[64], job[128];
    th_tmpdir(dir, sizeof dir);
    snprintf(job, sizeof job, "%s/job.ini", dir);
    FILE *f = fopen(job, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "[train]\nepochs = 3\nepoch = 4\n");
    fclose(f);
    const char *args[] = {"run", job, NULL};
    th_proc_t   p;
    th_spawn(&p, dir, "run", args);
    ck_assert(th_wait(&p, 10000));
    ck_assert_int_eq(p.signal, 0);
    ck_assert_int_eq(p.status, 2);
    char want[256];
    snprintf(want, sizeof want, "%s:3:", job);
    s_assert_log_has(&p, want);
    s_assert_log_has(&p, "epoch");

    f = fopen(job, "w");
    fprintf(f, "[optimizer]\nlr = fast\n");
    fclose(f);
    th_spawn(&p, dir, "run2", args);
    ck_assert(th_wait(&p, 10000));
    ck_assert_int_eq(p.status, 2);
    snprintf(want, sizeof want, "%s:2:", job);
    s_assert_log_has(&p, want);
}
END_TEST

// Bad optimizer settings are refused at start-up by every role, with the
// setting named, before anything binds or trains.
START_TEST(test_bad_optimizer_settings)
{
    char dir[64];
    th_tmpdir(dir, sizeof dir);
    const struct {
        const char *role, *flag, *want;
    } cases[] = {
        {"run", "--optimizer.lr=-1", "[optimizer] lr: must be > 0"},
        {"server", "--optimizer.name=adamw", "[optimizer] name"},
        {"worker", "--optimizer.beta1=1",
         "[optimizer] beta1: must be in [0, 1)"},
        {"scheduler", "--optimizer.rho=1.5", "[optimizer] rho"},
        {"run", "--optimizer.schedule=plateau", "[data] validation"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[] = {cases[i].role, cases[i].flag,
                              "--optimizer.name=adam", NULL};
        if (strstr(cases[i].flag, "name=")) {
            args[2] = NULL;
        }
        char name[32];
        snprintf(name, sizeof name, "case%zu", i);
        th_proc_t p;
        th_spawn(&p, dir, name, args);
        ck_assert(th_wait(&p, 5000));
        ck_assert_int_eq(p.signal, 0);
        ck_assert_int_eq(p.status, 2);
        s_assert_log_has(&p, cases[i].want);
    }
}
END_TEST

START_TEST(test_port_in_use)
{
    char dir[64], flag[64], out[128];
    th_tmpdir(dir, sizeof dir);
    int                fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t          len = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 1), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    snprintf(flag, sizeof flag, "--cluster.bind=tcp://127.0.0.1:%d",
             ntohs(a.sin_port));
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    const char *args[] = {"scheduler", flag, out, NULL};
    th_proc_t   p;
    th_spawn(&p, dir, "scheduler", args);
    ck_assert(th_wait(&p, 5000));
    ck_assert_int_eq(p.signal, 0);
    ck_assert_int_eq(p.status, 1);
    s_assert_log_has(&p, "Address already in use");
    const char *sargs[] = {"server", flag, NULL};
    th_spawn(&p, dir, "server", sargs);
    ck_assert(th_wait(&p, 5000));
    ck_assert_int_eq(p.status, 1);
    s_assert_log_has(&p, "Address already in use");
    close(fd);
}
END_TEST

START_TEST(test_help_and_unknown_command)
{
    char dir[64];
    th_tmpdir(dir, sizeof dir);
    const char *roles[] = {"run", "scheduler", "server", "worker"};
    for (int i = 0; i < 4; i++) {
        const char *args[] = {roles[i], "--help", NULL};
        th_proc_t   p;
        th_spawn(&p, dir, roles[i], args);
        ck_assert(th_wait(&p, 5000));
        ck_assert_int_eq(p.status, 0);
        s_assert_log_has(&p, "--optimizer.lr");
    }
    const char *args[] = {"trian", NULL};
    th_proc_t   p;
    th_spawn(&p, dir, "bad", args);
    ck_assert(th_wait(&p, 5000));
    ck_assert_int_eq(p.status, 2);
    s_assert_log_has(&p, "unknown command \"trian\"");
}
END_TEST

// ---- a job that fails says so: results, causes, the audit, the lock ------

// s_summary_of returns dir/out/summary.json (caller frees); fails if none.
static char *
s_summary_of(const char *dir)
{
    char path[160];
    snprintf(path, sizeof path, "%s/out/summary.json", dir);
    char *sum = th_slurp(path);
    ck_assert_msg(sum != NULL, "no %s", path);
    return sum;
}

static void
s_assert_has(const char *text, const char *needle)
{
    ck_assert_msg(strstr(text, needle) != NULL, "lacks \"%s\":\n%s", needle,
                  text);
}

// A model that cannot be written fails the job, and the summary names the
// worker, the file and the errno. A file-size limit (ulimit -f, inherited
// by every process of the job) of 16 KiB: the checkpoints (8 KiB each) and
// the summary fit, the model (31 KiB) does not.
START_TEST(test_unwritable_model_fails_the_job)
{
    char dir[64], out[128], want[256];
    th_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    const char   *args[] = {"run",
                            "--data.limit=2000",
                            "--train.epochs=2",
                            "--job.progress=off",
                            "--cluster.heartbeat_ms=100",
                            out,
                            NULL};
    struct rlimit rl = {16384, 16384};
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    th_proc_t p;
    th_spawn(&p, dir, "run", args);
    ck_assert_msg(th_wait(&p, 60000), "descent run did not end");
    ck_assert_int_eq(p.signal, 0);
    ck_assert_int_eq(p.status, 1);
    char *sum = s_summary_of(dir);
    s_assert_has(sum, "\"ok\":false");
    s_assert_has(sum, "\"error\":\"worker ");
    snprintf(want, sizeof want,
             "failed: model not saved: %s/out/model.safetensors: write: %s",
             dir, strerror(EFBIG));
    s_assert_has(sum, want);
    free(sum);
}
END_TEST

// A checkpoint that cannot be written fails the job under descent run, and
// the summary gives the server's own words, not the signal that stopped
// the scheduler. One range per server (16 KiB checkpoints) and a 12,000
// byte file-size limit: the periodic checkpoint fails in the first second
// of training, long before metrics.jsonl could reach the limit (50
// epochs keep scheduler.state, a record per epoch, small too).
START_TEST(test_unwritable_checkpoint_fails_the_job)
{
    char dir[64], out[128], want[256];
    th_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    const char   *args[] = {"run",
                            "--data.limit=10000",
                            "--train.epochs=50",
                            "--job.progress=off",
                            "--job.checkpoint_s=1",
                            "--cluster.ranges_per_server=1",
                            "--cluster.heartbeat_ms=100",
                            out,
                            NULL};
    struct rlimit rl = {12000, 12000};
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    th_proc_t p;
    th_spawn(&p, dir, "run", args);
    ck_assert_msg(th_wait(&p, 60000), "descent run did not end");
    ck_assert_int_eq(p.signal, 0);
    ck_assert_int_eq(p.status, 1);
    char *sum = s_summary_of(dir);
    s_assert_has(sum, "\"ok\":false");
    s_assert_has(sum, "\"error\":\"server ");
    snprintf(want, sizeof want, "failed: checkpoint: %s/out/checkpoints/range-",
             dir);
    s_assert_has(sum, want);
    snprintf(want, sizeof want, ".ckpt: write: %s", strerror(EFBIG));
    s_assert_has(sum, want);
    ck_assert_ptr_null(strstr(sum, "signal"));
    free(sum);
}
END_TEST

// A refused --resume leaves a summary that says so, not the last job's.
START_TEST(test_refused_resume_rewrites_the_summary)
{
    char dir[64], out[128], path[160], bind[64];
    th_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    snprintf(bind, sizeof bind, "--cluster.bind=tcp://127.0.0.1:%d",
             th_free_port());
    snprintf(path, sizeof path, "%s/out", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    const char *files[][2] = {{"summary.json", "{\"ok\":true}\n"},
                              {"progress", "garbage\n"}};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/out/%s", dir, files[i][0]);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(files[i][1], f);
        fclose(f);
    }
    const char *args[] = {"scheduler", out, bind, "--job.resume=true", NULL};
    th_proc_t   p;
    th_spawn(&p, dir, "scheduler", args);
    ck_assert(th_wait(&p, 10000));
    ck_assert_int_eq(p.status, 1);
    char *sum = s_summary_of(dir);
    s_assert_has(sum, "\"ok\":false");
    s_assert_has(sum, "cannot resume: ");
    s_assert_has(sum, "/out/progress does not name a number of epochs");
    free(sum);
}
END_TEST

// s_fake_msg waits for a message of type on the fake worker's link,
// skipping heartbeats and others.
static void
s_fake_msg(void *sock, Descent__Type type, ds_msg_t *m)
{
    for (int i = 0; i < 1000; i++) {
        s_recv(sock, false, m);
        if (m->hdr->type == type) {
            return;
        }
        ds_msg_fini(m);
    }
    ck_abort_msg("no %s", ds_msg_type_name(type));
}

// The audit is enforced: a worker acknowledged pushes that no server
// applied, so the job fails though every node said it was done. The worker
// is the test, reporting 5 acknowledged pushes per range and making none.
START_TEST(test_audit_fails_the_job)
{
    char dir[64], sched[64], bind[64], out[128];
    th_tmpdir(dir, sizeof dir);
    int port = th_free_port();
    snprintf(sched, sizeof sched, "--cluster.scheduler=tcp://127.0.0.1:%d",
             port);
    snprintf(bind, sizeof bind, "--cluster.bind=tcp://127.0.0.1:%d", port);
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    const char *sa[] = {"scheduler",
                        sched,
                        bind,
                        out,
                        "--cluster.servers=1",
                        "--cluster.workers=1",
                        "--cluster.heartbeat_ms=100",
                        "--job.progress=off",
                        NULL};
    const char *na[] = {"server",
                        sched,
                        "--cluster.bind=tcp://127.0.0.1:*",
                        "--cluster.advertise=127.0.0.1",
                        out,
                        "--cluster.heartbeat_ms=100",
                        NULL};
    th_proc_t   s, v;
    th_spawn(&s, dir, "scheduler", sa);
    th_spawn(&v, dir, "server", na);
    void *ctx = zmq_ctx_new();
    void *w = zmq_socket(ctx, ZMQ_DEALER);
    int   zero = 0;
    zmq_setsockopt(w, ZMQ_LINGER, &zero, sizeof zero);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    ck_assert_int_eq(zmq_connect(w, ep), 0);
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__REGISTER);
    h.job = "descent";
    h.role = DESCENT__ROLE__WORKER;
    h.seq = 1;
    // The job's settings are the defaults: the worker sends them too.
    ds_config_t cfg;
    ds_config_defaults(&cfg);
    char **settings;
    ck_assert_int_eq(ds_config_fingerprint(&cfg, &settings, &h.n_settings), 0);
    h.settings = settings;
    ck_assert_int_eq(ds_msg_send(w, NULL, &h, NULL, NULL), 0);
    free(settings);
    ds_msg_t m;
    s_fake_msg(w, DESCENT__TYPE__REGISTER_ACK, &m);
    uint32_t id = m.hdr->node_id;
    ds_msg_fini(&m);
    ds_msg_header_init(&h, DESCENT__TYPE__READY);
    h.job = "descent";
    h.sender = id;
    h.seq = 2;
    h.num_keys = 100;
    h.dim = 99;
    h.classes = 1;
    h.planned = 5;
    ck_assert_int_eq(ds_msg_send(w, NULL, &h, NULL, NULL), 0);
    s_fake_msg(w, DESCENT__TYPE__SHARD_MAP, &m);
    size_t nranges = m.hdr->map->n_ranges;
    ds_msg_fini(&m);
    ck_assert_uint_gt(nranges, 0);
    uint64_t acked[64];
    ck_assert_uint_le(nranges, 64);
    for (size_t i = 0; i < nranges; i++) {
        acked[i] = 5;
    }
    Descent__Report r = DESCENT__REPORT__INIT;
    r.n_acked = nranges;
    r.acked = acked;
    ds_msg_header_init(&h, DESCENT__TYPE__DONE);
    h.job = "descent";
    h.sender = id;
    h.seq = 3;
    h.status = DESCENT__STATUS__OK;
    h.report = &r;
    ck_assert_int_eq(ds_msg_send(w, NULL, &h, NULL, NULL), 0);
    ck_assert_msg(th_wait(&s, 20000), "the scheduler did not end");
    ck_assert_int_eq(s.status, 1);
    char *sum = s_summary_of(dir);
    s_assert_has(sum, "\"ok\":false");
    char want[160];
    snprintf(want, sizeof want,
             "audit: %zu acknowledged pushes were not applied", 5 * nranges);
    s_assert_has(sum, want);
    snprintf(want, sizeof want, "\"lost\":%zu,", 5 * nranges);
    s_assert_has(sum, want);
    free(sum);
    zmq_close(w);
    zmq_ctx_term(ctx);
    th_wait(&v, 10000);
    th_kill(&v, SIGKILL);
    th_wait(&v, 1000);
}
END_TEST

// Two runs on one output directory: the second is refused and names the
// first, which holds the lock for its whole life. The first also removes
// the temporary files a killed run left (and nothing else), and when it is
// stopped its summary gives the cause, not "stopped by signal 15".
START_TEST(test_run_locks_its_output)
{
    char dir[64], out[128], path[192];
    th_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "--job.out=%s/out", dir);
    snprintf(path, sizeof path, "%s/out", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/out/checkpoints", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    const char *files[] = {"summary.json.tmp.Ab12Cd",
                           "checkpoints/range-0.ckpt.tmp.xY34zW",
                           "notes.tmp.txt"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/out/%s", dir, files[i]);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fclose(f);
    }
    const char *args[] = {"run",
                          "--data.limit=6000",
                          "--train.epochs=1000",
                          "--job.progress=off",
                          out,
                          NULL};
    th_proc_t   a, b;
    th_spawn(&a, dir, "a", args);
    bool training = false;
    for (int i = 0; i < 600 && !training; i++) {
        char *log = th_slurp(a.log);
        training = log && strstr(log, "training starts");
        free(log);
        usleep(50000);
    }
    ck_assert_msg(training, "the first run did not start training");
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/out/%s", dir, files[i]);
        ck_assert_msg((access(path, F_OK) == 0) == (i == 2), "%s", path);
    }
    th_spawn(&b, dir, "b", args);
    ck_assert(th_wait(&b, 10000));
    ck_assert_int_eq(b.status, 1);
    char holder[64];
    snprintf(holder, sizeof holder, "held by pid %d on host ", (int)a.pid);
    s_assert_log_has(&b, holder);
    s_assert_log_has(&b, "another descent run writes to");
    th_kill(&a, SIGTERM);
    ck_assert_msg(th_wait(&a, 30000), "the first run did not stop");
    ck_assert_int_eq(a.status, 1);
    char *sum = s_summary_of(dir);
    s_assert_has(sum, "\"ok\":false");
    s_assert_has(sum, "\"error\":\"descent run stopped by signal 15\"");
    free(sum);
}
END_TEST

// descent run picks the scheduler's address: [cluster] scheduler and bind
// are refused, not silently ignored.
START_TEST(test_run_refuses_endpoints)
{
    char dir[64];
    th_tmpdir(dir, sizeof dir);
    const char *flags[] = {"--cluster.bind=tcp://127.0.0.1:7999",
                           "--cluster.scheduler=tcp://10.0.0.1:7070"};
    const char *keys[] = {"[cluster] bind = tcp://127.0.0.1:7999",
                          "[cluster] scheduler = tcp://10.0.0.1:7070"};
    for (int i = 0; i < 2; i++) {
        const char *args[] = {"run", flags[i], NULL};
        th_proc_t   p;
        th_spawn(&p, dir, "run", args);
        ck_assert(th_wait(&p, 10000));
        ck_assert_int_eq(p.status, 2);
        s_assert_log_has(&p, keys[i]);
        s_assert_log_has(&p, "descent run starts the scheduler");
    }
}
END_TEST

// descent config prints the settings in effect, the defaults that depend
// on the algorithm and the model included; a given value wins.
START_TEST(test_config_defaults_by_job)
{
    char dir[64];
    th_tmpdir(dir, sizeof dir);
    const char *easgd[] = {"config", "--algorithm", "easgd", NULL};
    const char *mlp[] = {"config", "--model=mlp", "--tau=3", NULL};
    th_proc_t   p, q;
    th_spawn(&p, dir, "easgd", easgd);
    th_spawn(&q, dir, "mlp", mlp);
    ck_assert(th_wait(&p, 5000));
    ck_assert(th_wait(&q, 5000));
    ck_assert_int_eq(p.status, 0);
    ck_assert_int_eq(q.status, 0);
    s_assert_log_has(&p, "\"algorithm\":\"easgd\"");
    s_assert_log_has(&p, "\"tau\":4,");
    s_assert_log_has(&p, "\"easgd_delta\":0.90000000000000002");
    s_assert_log_has(&p, "\"name\":\"sgd\",\"lr\":0.10000000000000001,");
    s_assert_log_has(&q, "\"tau\":3,");
    s_assert_log_has(&q, "\"name\":\"adam\",\"lr\":0.001,");
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("cluster");
    TCase *tc = tcase_create("processes");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cluster_trains);
    tcase_add_test(tc, test_server_survives_bad_requests);
    tcase_add_test(tc, test_server_logs_refusals_limited);
    tcase_add_test(tc, test_server_ignores_peer_epochs);
    tcase_add_test(tc, test_server_rules_match_local);
    tcase_add_test(tc, test_consistency_bounds);
    tcase_add_test(tc, test_algorithms_train);
    tcase_add_test(tc, test_delay_tolerance);
    tcase_add_test(tc, test_sparse_logreg_planted);
    tcase_add_test(tc, test_shuffle_first_epoch);
    tcase_add_test(tc, test_early_stopping_and_curriculum);
    tcase_add_test(tc, test_early_stopping_lagging_worker);
    tcase_add_test(tc, test_resume_from_checkpoints);
    tcase_add_test(tc, test_slow_disk_keeps_servers_alive);
    tcase_add_test(tc, test_lost_messages_exactly_once);
    tcase_add_test(tc, test_worker_rejoins);
    tcase_add_test(tc, test_elastic_workers);
    tcase_add_test(tc, test_run_restarts_killed_worker);
    tcase_add_test(tc, test_dead_server_ends_the_job);
    tcase_add_test(tc, test_dead_scheduler_ends_the_nodes);
    tcase_add_test(tc, test_late_server_joins);
    tcase_add_test(tc, test_missing_nodes_time_out);
    tcase_add_test(tc, test_mismatched_settings_refused);
    tcase_add_test(tc, test_mismatched_data_shapes);
    tcase_add_test(tc, test_missing_dataset);
    tcase_add_test(tc, test_unreadable_dataset);
    tcase_add_test(tc, test_bad_config_line);
    tcase_add_test(tc, test_bad_optimizer_settings);
    tcase_add_test(tc, test_port_in_use);
    tcase_add_test(tc, test_help_and_unknown_command);
    tcase_add_test(tc, test_unwritable_model_fails_the_job);
    tcase_add_test(tc, test_unwritable_checkpoint_fails_the_job);
    tcase_add_test(tc, test_refused_resume_rewrites_the_summary);
    tcase_add_test(tc, test_audit_fails_the_job);
    tcase_add_test(tc, test_run_locks_its_output);
    tcase_add_test(tc, test_run_refuses_endpoints);
    tcase_add_test(tc, test_config_defaults_by_job);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(s_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
