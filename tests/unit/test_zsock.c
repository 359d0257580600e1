// SPDX-License-Identifier: MIT
// test_zsock - the ZeroMQ + libuv wake-up pattern under load, with a budget.
#include <string.h>
#include <zmq.h>

#include "common/zsock.h"
#include "tests/unit/suites.h"

#define TOTAL 20000
#define WINDOW 500

// A ROUTER echoes; a DEALER sends TOTAL requests, some from a timer and
// some from its reply handler, at most WINDOW in flight. With the naive
// "drain in the poll callback" strategy this stalls after a lost edge.
typedef struct {
    uv_loop_t  loop;
    ds_zsock_t router, dealer;
    uv_timer_t tick, watchdog;
    int        sent, received, closed;
    bool       timed_out;
} s_pp_t;

static void
s_send_some(s_pp_t *p, int n)
{
    for (int i = 0; i < n && p->sent < TOTAL && p->sent - p->received < WINDOW;
         i++) {
        ck_assert_int_eq(
            zmq_send(p->dealer.sock, &p->sent, sizeof p->sent, ZMQ_DONTWAIT),
            sizeof p->sent);
        p->sent++;
    }
}

static void
s_on_router(ds_zsock_t *z, void *arg)
{
    (void)arg;
    char id[256], body[64];
    int  idn = zmq_recv(z->sock, id, sizeof id, ZMQ_DONTWAIT);
    ck_assert_int_gt(idn, 0);
    int n = zmq_recv(z->sock, body, sizeof body, ZMQ_DONTWAIT);
    ck_assert_int_eq(n, sizeof(int));
    zmq_send(z->sock, id, (size_t)idn, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(z->sock, body, (size_t)n, ZMQ_DONTWAIT);
}

static void
s_closed(ds_zsock_t *z, void *arg)
{
    (void)z;
    s_pp_t *p = arg;
    p->closed++;
}

static void
s_finish(s_pp_t *p)
{
    uv_timer_stop(&p->tick);
    uv_timer_stop(&p->watchdog);
    uv_close((uv_handle_t *)&p->tick, NULL);
    uv_close((uv_handle_t *)&p->watchdog, NULL);
    ds_zsock_close(&p->router, s_closed);
    ds_zsock_close(&p->dealer, s_closed);
}

static void
s_on_dealer(ds_zsock_t *z, void *arg)
{
    s_pp_t *p = arg;
    int     v;
    ck_assert_int_eq(zmq_recv(z->sock, &v, sizeof v, ZMQ_DONTWAIT), sizeof v);
    ck_assert_int_eq(v, p->received);
    p->received++;
    if (p->received == TOTAL) {
        s_finish(p);
        return;
    }
    s_send_some(p, 2);
}

static void
s_on_tick(uv_timer_t *t)
{
    s_send_some(t->data, 50);
}

static void
s_on_watchdog(uv_timer_t *t)
{
    s_pp_t *p = t->data;
    p->timed_out = true;
    s_finish(p);
}

static void
s_ping_pong(const char *endpoint)
{
    s_pp_t p;
    memset(&p, 0, sizeof p);
    void *ctx = zmq_ctx_new();
    ck_assert_int_eq(uv_loop_init(&p.loop), 0);
    void *r = ds_zsock_open(ctx, ZMQ_ROUTER, 0, 0);
    void *d = ds_zsock_open(ctx, ZMQ_DEALER, 0, 0);
    char  bound[256], err[256];
    ck_assert_int_eq(
        ds_zsock_bind(r, endpoint, bound, sizeof bound, err, sizeof err), 0);
    ck_assert_int_eq(zmq_connect(d, bound), 0);
    ck_assert_int_eq(ds_zsock_init(&p.router, &p.loop, r, s_on_router, &p), 0);
    ck_assert_int_eq(ds_zsock_init(&p.dealer, &p.loop, d, s_on_dealer, &p), 0);
    p.router.budget = p.dealer.budget = 16;
    uv_timer_init(&p.loop, &p.tick);
    uv_timer_init(&p.loop, &p.watchdog);
    p.tick.data = p.watchdog.data = &p;
    uv_timer_start(&p.tick, s_on_tick, 1, 1);
    uv_timer_start(&p.watchdog, s_on_watchdog, 10000, 0);
    uv_run(&p.loop, UV_RUN_DEFAULT);
    ck_assert(!p.timed_out);
    ck_assert_int_eq(p.received, TOTAL);
    ck_assert_int_eq(p.closed, 2);
    ck_assert_int_eq(uv_loop_close(&p.loop), 0);
    ck_assert_int_eq(zmq_ctx_term(ctx), 0);
}

START_TEST(test_ping_pong_inproc)
{
    s_ping_pong("inproc://pp");
}
END_TEST

START_TEST(test_ping_pong_tcp)
{
    s_ping_pong("tcp://127.0.0.1:*");
}
END_TEST

START_TEST(test_advertise)
{
    char out[256];
    ck_assert_int_eq(ds_endpoint_advertise("tcp://0.0.0.0:41234", "10.0.0.5",
                                           out, sizeof out),
                     0);
    ck_assert_str_eq(out, "tcp://10.0.0.5:41234");
    ck_assert_int_eq(ds_endpoint_advertise("tcp://0.0.0.0:41234",
                                           "tcp://nat.example:9000", out,
                                           sizeof out),
                     0);
    ck_assert_str_eq(out, "tcp://nat.example:9000");
    ck_assert_int_eq(
        ds_endpoint_advertise("tcp://127.0.0.1:5", "server-1", out, sizeof out),
        0);
    ck_assert_str_eq(out, "tcp://server-1:5");
    ck_assert_int_eq(ds_endpoint_advertise("nonsense", "h", out, sizeof out),
                     -EINVAL);
}
END_TEST

START_TEST(test_bind_in_use)
{
    void *ctx = zmq_ctx_new();
    void *a = ds_zsock_open(ctx, ZMQ_ROUTER, 0, 0);
    void *b = ds_zsock_open(ctx, ZMQ_ROUTER, 0, 0);
    char  bound[256], bound2[256], err[256] = "";
    ck_assert_int_eq(ds_zsock_bind(a, "tcp://127.0.0.1:*", bound, sizeof bound,
                                   err, sizeof err),
                     0);
    ck_assert_int_eq(
        ds_zsock_bind(b, bound, bound2, sizeof bound2, err, sizeof err),
        -EADDRINUSE);
    ck_assert_ptr_nonnull(strstr(err, "Address already in use"));
    ck_assert_ptr_nonnull(strstr(err, bound));
    zmq_close(a);
    zmq_close(b);
    zmq_ctx_term(ctx);
}
END_TEST

Suite *
ds_zsock_suite(void)
{
    Suite *s = suite_create("zsock");
    TCase *tc = tcase_create("loop");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_ping_pong_inproc);
    tcase_add_test(tc, test_ping_pong_tcp);
    tcase_add_test(tc, test_advertise);
    tcase_add_test(tc, test_bind_in_use);
    suite_add_tcase(s, tc);
    return s;
}
