// SPDX-License-Identifier: MIT
// test_ratelog - common/ratelog on a fake clock: bursts, intervals, the
// global cap, bounded memory; and the lines ds_log_peer writes.
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/ratelog.h"
#include "tests/unit/suites.h"

// Sums every count ds_ratelog_summary gives at now (all: every one).
static uint64_t
s_drain(ds_ratelog_t *rl, uint64_t now, bool all, int *lines)
{
    ds_ratelog_summary_t sum;
    uint64_t             total = 0;
    *lines = 0;
    while (ds_ratelog_summary(rl, now, all, &sum)) {
        ck_assert_uint_gt(sum.count, 0);
        total += sum.count;
        (*lines)++;
    }
    return total;
}

// Burst 3 per second: of 10 events at t = 0..9 ms the first 3 pass and 7
// are held back; their count is given once the second is over, not before;
// at t = 1001 ms a new interval lets events through again.
START_TEST(test_first_n_pass_then_summary)
{
    ds_ratelog_t rl;
    ds_ratelog_init(&rl, 3, 100, 1000);
    int passed = 0;
    for (uint64_t t = 0; t < 10; t++) {
        bool ok = ds_ratelog_hit(&rl, "node 2", "OUT_OF_RANGE", t, NULL);
        ck_assert_int_eq(ok, t < 3);
        passed += ok;
    }
    ck_assert_int_eq(passed, 3);
    ds_ratelog_summary_t sum;
    ck_assert(!ds_ratelog_summary(&rl, 999, false, &sum));
    ck_assert(ds_ratelog_summary(&rl, 1000, false, &sum));
    ck_assert_str_eq(sum.peer, "node 2");
    ck_assert_str_eq(sum.kind, "OUT_OF_RANGE");
    ck_assert_uint_eq(sum.count, 7);
    ck_assert_uint_eq(sum.span_ms, 1000);
    ck_assert(!ds_ratelog_summary(&rl, 1000, false, &sum));
    ck_assert(ds_ratelog_hit(&rl, "node 2", "OUT_OF_RANGE", 1001, &sum));
    ck_assert_uint_eq(sum.count, 0);
}
END_TEST

// Without a summary call in between, the next event after the interval
// carries the count: 5 events at t = 0 (3 pass, 2 held), one at 1500 ms.
START_TEST(test_hit_reports_ended_interval)
{
    ds_ratelog_t rl;
    ds_ratelog_init(&rl, 3, 100, 1000);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(
            ds_ratelog_hit(&rl, "peer 00aa", "BAD_REQUEST", 0, NULL), i < 3);
    }
    ds_ratelog_summary_t ended;
    ck_assert(ds_ratelog_hit(&rl, "peer 00aa", "BAD_REQUEST", 1500, &ended));
    ck_assert_uint_eq(ended.count, 2);
    ck_assert_uint_eq(ended.span_ms, 1500);
    ck_assert_str_eq(ended.peer, "peer 00aa");
    int lines;
    ck_assert_uint_eq(s_drain(&rl, 5000, true, &lines), 0);
    // With nobody to take it (ended NULL), the count joins "other peers".
    for (int i = 0; i < 4; i++) {
        ds_ratelog_hit(&rl, "peer 00aa", "BAD_REQUEST", 1600, NULL);
    }
    ck_assert(ds_ratelog_hit(&rl, "peer 00aa", "BAD_REQUEST", 2600, NULL));
    ds_ratelog_summary_t sum;
    ck_assert(ds_ratelog_summary(&rl, 2600, true, &sum));
    ck_assert_str_eq(sum.peer, "other peers");
    // 1 passed at 1500; at 1600, 2 more passed and 2 were held back.
    ck_assert_uint_eq(sum.count, 2);
}
END_TEST

// Each (peer, kind) has its own burst.
START_TEST(test_pairs_are_independent)
{
    ds_ratelog_t rl;
    ds_ratelog_init(&rl, 1, 100, 1000);
    ck_assert(ds_ratelog_hit(&rl, "node 2", "STALE_EPOCH", 0, NULL));
    ck_assert(!ds_ratelog_hit(&rl, "node 2", "STALE_EPOCH", 0, NULL));
    ck_assert(ds_ratelog_hit(&rl, "node 2", "BAD_VALUE", 0, NULL));
    ck_assert(ds_ratelog_hit(&rl, "node 3", "STALE_EPOCH", 0, NULL));
    ck_assert(!ds_ratelog_hit(&rl, "node 3", "STALE_EPOCH", 0, NULL));
    int lines;
    ck_assert_uint_eq(s_drain(&rl, 1000, false, &lines), 2);
    ck_assert_int_eq(lines, 2);
}
END_TEST

// A peer inventing a name per message meets the global cap: 10,000 names,
// one event each, burst 5, cap 50: exactly 50 pass; the other 9,950 are
// counted, in at most 64 + 1 summary lines, and the limiter's size is
// fixed whatever the number of names.
START_TEST(test_memory_bounded_many_peers)
{
    ds_ratelog_t rl;
    ds_ratelog_init(&rl, 5, 50, 10000);
    int passed = 0;
    for (int i = 0; i < 10000; i++) {
        char peer[32];
        snprintf(peer, sizeof peer, "node %d", i + 1);
        passed += ds_ratelog_hit(&rl, peer, "REFUSED", (uint64_t)i / 10, NULL);
    }
    ck_assert_int_eq(passed, 50);
    int lines;
    ck_assert_uint_eq(s_drain(&rl, 1000, true, &lines), 9950);
    ck_assert_int_le(lines, DS_RATELOG_SLOTS + 1);
    ck_assert_uint_lt(sizeof rl, 8 * 1024);
    // Twice each with burst 1 and no cap: the second is held back; evicted
    // names' counts reach "other peers", 10,000 in all.
    ds_ratelog_init(&rl, 1, 1000000, 10000);
    for (int i = 0; i < 10000; i++) {
        char peer[32];
        snprintf(peer, sizeof peer, "peer %04x", i);
        ck_assert(ds_ratelog_hit(&rl, peer, "BAD_REQUEST", 0, NULL));
        ck_assert(!ds_ratelog_hit(&rl, peer, "BAD_REQUEST", 0, NULL));
    }
    ds_ratelog_summary_t sum;
    uint64_t             slots = 0, others = 0;
    while (ds_ratelog_summary(&rl, 1, true, &sum)) {
        if (strcmp(sum.peer, "other peers") == 0) {
            others += sum.count;
        } else {
            slots += sum.count;
        }
    }
    ck_assert_uint_eq(slots, DS_RATELOG_SLOTS);
    ck_assert_uint_eq(others, 10000 - DS_RATELOG_SLOTS);
}
END_TEST

// Names longer than a slot's buffer are cut, not overrun; an empty name
// still takes a slot.
START_TEST(test_long_and_empty_names)
{
    ds_ratelog_t rl;
    ds_ratelog_init(&rl, 1, 10, 1000);
    char long_name[200];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    ck_assert(ds_ratelog_hit(&rl, long_name, long_name, 0, NULL));
    ck_assert(!ds_ratelog_hit(&rl, long_name, long_name, 0, NULL));
    ck_assert(ds_ratelog_hit(&rl, "", "", 0, NULL));
    ck_assert(!ds_ratelog_hit(&rl, NULL, NULL, 0, NULL));
    ds_ratelog_summary_t sum;
    ck_assert(ds_ratelog_summary(&rl, 1000, false, &sum));
    ck_assert_uint_eq(strlen(sum.peer), DS_RATELOG_PEER_MAX - 1);
    ck_assert_uint_eq(strlen(sum.kind), DS_RATELOG_KIND_MAX - 1);
    ck_assert(ds_ratelog_summary(&rl, 1000, false, &sum));
    ck_assert_str_eq(sum.peer, "?");
}
END_TEST

typedef struct {
    int  lines;      // lines received
    char last[1100]; // the last one
} s_capture_t;

static void
s_sink(int level, const char *who, const char *line, void *arg)
{
    s_capture_t *c = arg;
    (void)level;
    c->lines++;
    snprintf(c->last, sizeof c->last, "%s: %s", who, line);
}

// ds_log_peer writes the first lines and then the count, in the words the
// docs promise.
START_TEST(test_log_peer_lines)
{
    s_capture_t c = {0};
    ds_log_set_sink(s_sink, &c);
    ds_ratelog_t rl;
    ds_ratelog_init(&rl, 2, 50, 10000);
    for (int i = 0; i < 1000; i++) {
        ds_log_peer(&rl, 5, DS_WARN, "server", "peer 0080000001", "BAD_REQUEST",
                    "bad request %d", i);
    }
    ck_assert_int_eq(c.lines, 2);
    ck_assert_str_eq(c.last, "server: bad request 1");
    ds_log_suppressed(&rl, 10005, false, "server");
    ck_assert_int_eq(c.lines, 3);
    ck_assert_str_eq(c.last, "server: suppressed 998 similar messages from "
                             "peer 0080000001 in the last 10.0 s "
                             "(BAD_REQUEST)");
    // Below the log level nothing is counted or said.
    ds_log_level = DS_ERROR;
    ds_log_peer(&rl, 20000, DS_WARN, "server", "node 2", "REFUSED", "x");
    ds_log_suppressed(&rl, 20000, true, "server");
    ds_log_level = DS_INFO;
    ck_assert_int_eq(c.lines, 3);
    ds_log_set_sink(NULL, NULL);
}
END_TEST

Suite *
ds_ratelog_suite(void)
{
    Suite *s = suite_create("ratelog");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_first_n_pass_then_summary);
    tcase_add_test(tc, test_hit_reports_ended_interval);
    tcase_add_test(tc, test_pairs_are_independent);
    tcase_add_test(tc, test_memory_bounded_many_peers);
    tcase_add_test(tc, test_long_and_empty_names);
    tcase_add_test(tc, test_log_peer_lines);
    suite_add_tcase(s, tc);
    return s;
}
