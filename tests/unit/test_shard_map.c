// SPDX-License-Identifier: MIT
// test_shard_map - placement of key ranges on servers, and map validation.
#include <errno.h>
#include <string.h>

#include "common/shard_map.h"
#include "tests/unit/suites.h"

START_TEST(test_cover_and_balance)
{
    uint32_t       servers[3] = {4, 7, 9};
    ds_shard_map_t m;
    ck_assert_int_eq(ds_shard_map_build(&m, 7850, servers, 3, 2, 1 << 20, 1),
                     0);
    ck_assert_uint_eq(m.nranges, 6);
    uint64_t next = 0;
    for (uint32_t i = 0; i < m.nranges; i++) {
        ck_assert_uint_eq(m.ranges[i].id, i);
        ck_assert_uint_eq(m.ranges[i].begin, next);
        ck_assert_uint_gt(m.ranges[i].end, m.ranges[i].begin);
        ck_assert_uint_ne(m.ranges[i].primary, m.ranges[i].backup);
        next = m.ranges[i].end;
    }
    ck_assert_uint_eq(next, 7850);
    // 7850 / 6 = 1308.33: sizes 1308 or 1309, two ranges per server.
    ck_assert_uint_eq(ds_shard_map_keys_on(&m, 4) +
                          ds_shard_map_keys_on(&m, 7) +
                          ds_shard_map_keys_on(&m, 9),
                      7850);
    for (int s = 0; s < 3; s++) {
        uint64_t k = ds_shard_map_keys_on(&m, servers[s]);
        ck_assert(k == 2616 || k == 2617 || k == 2618);
    }
    ck_assert_int_eq(ds_shard_map_find(&m, 0), 0);
    ck_assert_int_eq(ds_shard_map_find(&m, 1307), 0);
    ck_assert_int_eq(ds_shard_map_find(&m, 1308), 1);
    ck_assert_int_eq(ds_shard_map_find(&m, 7849), 5);
    ck_assert_int_eq(ds_shard_map_find(&m, 7850), -1);
    ds_shard_map_fini(&m);
    ds_shard_map_fini(&m);
}
END_TEST

START_TEST(test_split_long_ranges)
{
    uint32_t       servers[1] = {1};
    ds_shard_map_t m;
    // 10.5M keys on one server in one base range, pieces of at most 1M.
    ck_assert_int_eq(
        ds_shard_map_build(&m, 10500000, servers, 1, 1, 1 << 20, 1), 0);
    ck_assert_uint_eq(m.nranges, 11);
    for (uint32_t i = 0; i < m.nranges; i++) {
        ck_assert_uint_le(m.ranges[i].end - m.ranges[i].begin, 1u << 20);
        ck_assert_uint_eq(m.ranges[i].backup, 0);
    }
    ck_assert_uint_eq(m.ranges[10].end, 10500000);
    ds_shard_map_fini(&m);
}
END_TEST

START_TEST(test_fewer_keys_than_ranges)
{
    uint32_t       servers[2] = {1, 2};
    ds_shard_map_t m;
    ck_assert_int_eq(ds_shard_map_build(&m, 3, servers, 2, 4, 100, 1), 0);
    ck_assert_uint_eq(m.nranges, 3);
    ds_shard_map_fini(&m);
    ck_assert_int_eq(ds_shard_map_build(&m, 0, servers, 2, 4, 100, 1), -EINVAL);
}
END_TEST

START_TEST(test_pb_round_trip_and_validation)
{
    uint32_t       servers[2] = {1, 2};
    ds_shard_map_t m, back;
    ck_assert_int_eq(ds_shard_map_build(&m, 1000, servers, 2, 2, 100, 5), 0);
    Descent__ShardMap pb;
    ck_assert_int_eq(ds_shard_map_to_pb(&m, &pb), 0);
    Descent__Node  n1 = DESCENT__NODE__INIT, n2 = DESCENT__NODE__INIT;
    Descent__Node *nodes[2] = {&n1, &n2};
    n1.id = 1;
    n1.role = DESCENT__ROLE__SERVER;
    n2.id = 2;
    n2.role = DESCENT__ROLE__SERVER;
    pb.nodes = nodes;
    pb.n_nodes = 2;
    char err[256] = "";
    ck_assert_int_eq(ds_shard_map_from_pb(&back, &pb, err, sizeof err), 0);
    ck_assert_uint_eq(back.nranges, m.nranges);
    ck_assert_uint_eq(back.epoch, 5);
    // Seeding is the scheduler's own knowledge: a received map has none.
    for (uint32_t i = 0; i < m.nranges; i++) {
        ck_assert(m.ranges[i].seeded && !back.ranges[i].seeded);
        m.ranges[i].seeded = false;
    }
    ck_assert_mem_eq(back.ranges, m.ranges, m.nranges * sizeof *m.ranges);
    ds_shard_map_fini(&back);
    // A gap between ranges is refused.
    pb.ranges[1]->begin += 1;
    ck_assert_int_eq(ds_shard_map_from_pb(&back, &pb, err, sizeof err),
                     -EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "not contiguous"));
    pb.ranges[1]->begin -= 1;
    // An unknown server is refused.
    n2.role = DESCENT__ROLE__WORKER;
    ck_assert_int_eq(ds_shard_map_from_pb(&back, &pb, err, sizeof err),
                     -EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "unknown server"));
    n2.role = DESCENT__ROLE__SERVER;
    // Short coverage is refused.
    pb.num_keys = 2000;
    ck_assert_int_eq(ds_shard_map_from_pb(&back, &pb, err, sizeof err),
                     -EPROTO);
    ds_shard_map_pb_free(&pb);
    ds_shard_map_fini(&m);
}
END_TEST

// Hand-placed: build puts range k on servers[k % n] with its backup on the
// next server; a failover promotes backups and refills the gaps.
START_TEST(test_failover_promotes_backups)
{
    uint32_t       servers[3] = {4, 7, 9};
    ds_shard_map_t m;
    ck_assert_int_eq(ds_shard_map_build(&m, 600, servers, 3, 2, 1 << 20, 1), 0);
    ck_assert_uint_eq(m.nranges, 6);
    uint32_t alive1[2] = {7, 9};
    ck_assert_int_eq(ds_shard_map_failover(&m, 4, alive1, 2), 0);
    ck_assert_uint_eq(m.epoch, 2);
    const uint32_t p1[6] = {7, 7, 9, 7, 7, 9}, b1[6] = {9, 9, 7, 9, 9, 7};
    for (uint32_t i = 0; i < 6; i++) {
        ck_assert_uint_eq(m.ranges[i].primary, p1[i]);
        ck_assert_uint_eq(m.ranges[i].backup, b1[i]);
    }
    // Ranges 0 and 3 got backup 9 in this failover: only once it reports
    // their seeds may it take them over.
    const bool s1[6] = {false, true, false, false, true, false};
    for (uint32_t i = 0; i < 6; i++) {
        ck_assert(m.ranges[i].seeded == s1[i]);
    }
    const uint32_t on9[4] = {0, 1, 3, 4};
    ck_assert_uint_eq(ds_shard_map_set_seeded(&m, 9, on9, 4), 2);
    // One server left: it holds everything, without backups.
    uint32_t alive2[1] = {9};
    ck_assert_int_eq(ds_shard_map_failover(&m, 7, alive2, 1), 0);
    ck_assert_uint_eq(m.epoch, 3);
    for (uint32_t i = 0; i < 6; i++) {
        ck_assert_uint_eq(m.ranges[i].primary, 9);
        ck_assert_uint_eq(m.ranges[i].backup, 0);
    }
    // Losing it loses the ranges: refused, the map unchanged.
    ck_assert_int_eq(ds_shard_map_failover(&m, 9, NULL, 0), -ENOENT);
    ck_assert_uint_eq(m.epoch, 3);
    ck_assert_uint_eq(m.ranges[0].primary, 9);
    ds_shard_map_fini(&m);
}
END_TEST

// Servers 1, 2, 3 hold ranges 0..5 as (primary, backup) (1,2) (2,3) (3,1)
// (1,2) (2,3) (3,1). Servers 1 and 2 lost together: ranges 0 and 3 had no
// copy elsewhere, so nothing moves and they are named; ranges 1 and 4 alone
// could have failed over to server 3.
START_TEST(test_two_lost_names_ranges)
{
    uint32_t       servers[3] = {1, 2, 3};
    ds_shard_map_t m;
    ck_assert_int_eq(ds_shard_map_build(&m, 600, servers, 3, 2, 1 << 20, 1), 0);
    for (uint32_t i = 0; i < 6; i++) {
        ck_assert(m.ranges[i].seeded);
    }
    uint32_t dead[2] = {1, 2}, alive[1] = {3}, lost[6], nlost = 99;
    ck_assert_int_eq(
        ds_shard_map_fail_servers(&m, dead, 2, alive, 1, lost, &nlost),
        -ENOENT);
    ck_assert_uint_eq(nlost, 2);
    ck_assert_uint_eq(lost[0], 0);
    ck_assert_uint_eq(lost[1], 3);
    ck_assert_uint_eq(m.epoch, 1);
    ck_assert_uint_eq(m.ranges[0].primary, 1);
    ck_assert_uint_eq(m.ranges[0].backup, 2);
    // Server 2 alone: every range has a seeded copy on a live server.
    ck_assert_int_eq(
        ds_shard_map_fail_servers(&m, dead + 1, 1, alive, 1, lost, &nlost), 0);
    ck_assert_uint_eq(nlost, 0);
    const uint32_t p[6] = {1, 3, 3, 1, 3, 3}, b[6] = {3, 0, 1, 3, 0, 1};
    for (uint32_t i = 0; i < 6; i++) {
        ck_assert_uint_eq(m.ranges[i].primary, p[i]);
        ck_assert_uint_eq(m.ranges[i].backup, b[i]);
    }
    ds_shard_map_fini(&m);
}
END_TEST

// Two servers lost one timeout apart: the first failover makes server 2
// the primary of ranges 0 and 3 with new backups on server 3, which server
// 2 (already dead) never seeded. Losing server 2 then loses ranges 0 and 3
// - the unseeded copies on 3 are never promoted - until server 3 reports
// their seeds. A server's word counts only for ranges it backs up.
START_TEST(test_unseeded_backup_never_promoted)
{
    uint32_t       servers[3] = {1, 2, 3};
    ds_shard_map_t m;
    ck_assert_int_eq(ds_shard_map_build(&m, 600, servers, 3, 2, 1 << 20, 1), 0);
    uint32_t both[2] = {2, 3}, three[1] = {3}, lost[6], nlost = 0;
    ck_assert_int_eq(ds_shard_map_failover(&m, 1, both, 2), 0);
    const uint32_t p1[6] = {2, 2, 3, 2, 2, 3}, b1[6] = {3, 3, 2, 3, 3, 2};
    const bool     s1[6] = {false, true, false, false, true, false};
    for (uint32_t i = 0; i < 6; i++) {
        ck_assert_uint_eq(m.ranges[i].primary, p1[i]);
        ck_assert_uint_eq(m.ranges[i].backup, b1[i]);
        ck_assert(m.ranges[i].seeded == s1[i]);
    }
    uint32_t two = 2;
    ck_assert_int_eq(
        ds_shard_map_fail_servers(&m, &two, 1, three, 1, lost, &nlost),
        -ENOENT);
    ck_assert_uint_eq(nlost, 2);
    ck_assert_uint_eq(lost[0], 0);
    ck_assert_uint_eq(lost[1], 3);
    ck_assert_uint_eq(m.epoch, 2);
    // Server 3 backs up ranges 0, 1, 3, 4. It names 2 (its own primary), 0
    // and 99 (no such range): 0 becomes seeded, 1 and 4 (not named) stop
    // being, 3 stays unseeded: 3 changes. Then it names 0, 1, 3, 4: 1, 3
    // and 4 change; the same word again changes nothing.
    const uint32_t word1[3] = {2, 0, 99}, word2[4] = {0, 1, 3, 4};
    ck_assert_uint_eq(ds_shard_map_set_seeded(&m, 3, word1, 3), 3);
    ck_assert(m.ranges[0].seeded && !m.ranges[1].seeded);
    ck_assert(m.ranges[2].seeded == false && !m.ranges[3].seeded);
    ck_assert(!m.ranges[4].seeded);
    ck_assert_uint_eq(ds_shard_map_set_seeded(&m, 3, word2, 4), 3);
    ck_assert_uint_eq(ds_shard_map_set_seeded(&m, 3, word2, 4), 0);
    ck_assert_int_eq(
        ds_shard_map_fail_servers(&m, &two, 1, three, 1, lost, &nlost), 0);
    ck_assert_uint_eq(m.epoch, 3);
    for (uint32_t i = 0; i < 6; i++) {
        ck_assert_uint_eq(m.ranges[i].primary, 3);
        ck_assert_uint_eq(m.ranges[i].backup, 0);
    }
    ds_shard_map_fini(&m);
}
END_TEST

// Servers 1..4 hold ranges 0..3 as (1,2) (2,3) (3,4) (4,1). Server 1 is
// lost while server 2 is silent (not in `alive`): range 0 goes to its
// backup 2 (seeded) and new backups go only to 3 and 4. With 2 among the
// targets, range 3's backup would have been 2 (the least loaded).
START_TEST(test_no_backup_on_silent_server)
{
    uint32_t       servers[4] = {1, 2, 3, 4};
    ds_shard_map_t m;
    ck_assert_int_eq(ds_shard_map_build(&m, 400, servers, 4, 1, 1 << 20, 1), 0);
    uint32_t one = 1, heard[2] = {3, 4};
    ck_assert_int_eq(
        ds_shard_map_fail_servers(&m, &one, 1, heard, 2, NULL, NULL), 0);
    const uint32_t p[4] = {2, 2, 3, 4}, b[4] = {3, 3, 4, 3};
    for (uint32_t i = 0; i < 4; i++) {
        ck_assert_uint_eq(m.ranges[i].primary, p[i]);
        ck_assert_uint_eq(m.ranges[i].backup, b[i]);
    }
    ck_assert(!m.ranges[0].seeded && m.ranges[1].seeded);
    ck_assert(m.ranges[2].seeded && !m.ranges[3].seeded);
    ds_shard_map_fini(&m);
    ck_assert_int_eq(ds_shard_map_build(&m, 400, servers, 4, 1, 1 << 20, 1), 0);
    uint32_t all[3] = {2, 3, 4};
    ck_assert_int_eq(ds_shard_map_failover(&m, 1, all, 3), 0);
    ck_assert_uint_eq(m.ranges[3].backup, 2);
    ds_shard_map_fini(&m);
}
END_TEST

// New backups go to the least loaded other server, the first on a tie.
START_TEST(test_fill_backups_balances)
{
    uint32_t       servers[4] = {1, 2, 3, 4};
    ds_shard_map_t m;
    ck_assert_int_eq(ds_shard_map_build(&m, 400, servers, 4, 1, 1 << 20, 1), 0);
    uint32_t alive[3] = {1, 3, 4};
    ck_assert_int_eq(ds_shard_map_failover(&m, 2, alive, 3), 0);
    const uint32_t p[4] = {1, 3, 3, 4}, b[4] = {3, 1, 4, 1};
    for (uint32_t i = 0; i < 4; i++) {
        ck_assert_uint_eq(m.ranges[i].primary, p[i]);
        ck_assert_uint_eq(m.ranges[i].backup, b[i]);
    }
    ck_assert_uint_eq(ds_shard_map_fill_backups(&m, alive, 3), 0);
    ds_shard_map_fini(&m);
}
END_TEST

// A server back after a failover takes backups until the loads (ranges
// held as primary or backup) differ by at most one; primaries stay.
START_TEST(test_balance_backups_after_rejoin)
{
    uint32_t       servers[3] = {1, 2, 3};
    ds_shard_map_t m;
    ck_assert_int_eq(ds_shard_map_build(&m, 600, servers, 3, 2, 1 << 20, 1), 0);
    uint32_t survivors[2] = {2, 3};
    ck_assert_int_eq(ds_shard_map_failover(&m, 1, survivors, 2), 0);
    const uint32_t p1[6] = {2, 2, 3, 2, 2, 3}, b1[6] = {3, 3, 2, 3, 3, 2};
    for (uint32_t i = 0; i < 6; i++) {
        ck_assert_uint_eq(m.ranges[i].primary, p1[i]);
        ck_assert_uint_eq(m.ranges[i].backup, b1[i]);
    }
    ck_assert_uint_eq(ds_shard_map_fill_backups(&m, servers, 3), 0);
    ck_assert_uint_eq(ds_shard_map_balance_backups(&m, servers, 3), 4);
    const uint32_t b2[6] = {1, 1, 1, 3, 3, 1};
    for (uint32_t i = 0; i < 6; i++) {
        ck_assert_uint_eq(m.ranges[i].primary, p1[i]);
        ck_assert_uint_eq(m.ranges[i].backup, b2[i]);
    }
    ck_assert_uint_eq(ds_shard_map_balance_backups(&m, servers, 3), 0);
    ds_shard_map_fini(&m);
}
END_TEST

Suite *
ds_shard_map_suite(void)
{
    Suite *s = suite_create("shard_map");
    TCase *tc = tcase_create("placement");
    tcase_add_test(tc, test_cover_and_balance);
    tcase_add_test(tc, test_split_long_ranges);
    tcase_add_test(tc, test_fewer_keys_than_ranges);
    tcase_add_test(tc, test_pb_round_trip_and_validation);
    tcase_add_test(tc, test_failover_promotes_backups);
    tcase_add_test(tc, test_two_lost_names_ranges);
    tcase_add_test(tc, test_unseeded_backup_never_promoted);
    tcase_add_test(tc, test_no_backup_on_silent_server);
    tcase_add_test(tc, test_fill_backups_balances);
    tcase_add_test(tc, test_balance_backups_after_rejoin);
    suite_add_tcase(s, tc);
    return s;
}
