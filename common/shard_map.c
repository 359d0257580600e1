// SPDX-License-Identifier: MIT
// shard_map - the model's key ranges and the servers holding them, by epoch.
#include "common/shard_map.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
ds_shard_map_build(ds_shard_map_t *m, uint64_t num_keys,
                   const uint32_t *servers, uint32_t nservers,
                   uint32_t per_server, uint64_t max_keys, uint64_t epoch)
{
    memset(m, 0, sizeof *m);
    if (num_keys == 0 || nservers == 0 || per_server == 0 || max_keys == 0) {
        return -EINVAL;
    }
    uint64_t base = (uint64_t)nservers * per_server;
    if (base > num_keys) {
        base = num_keys;
    }
    // Each base range of about num_keys/base keys is split into pieces of at
    // most max_keys, so count them first.
    uint64_t total = 0;
    for (uint64_t i = 0; i < base; i++) {
        uint64_t b = i * num_keys / base, e = (i + 1) * num_keys / base;
        total += (e - b + max_keys - 1) / max_keys;
    }
    if (total > UINT32_MAX) {
        return -EINVAL;
    }
    m->ranges = calloc(total, sizeof *m->ranges);
    if (!m->ranges) {
        return -ENOMEM;
    }
    uint32_t k = 0;
    for (uint64_t i = 0; i < base; i++) {
        uint64_t b = i * num_keys / base, e = (i + 1) * num_keys / base;
        uint64_t pieces = (e - b + max_keys - 1) / max_keys;
        for (uint64_t p = 0; p < pieces; p++) {
            ds_range_t *r = &m->ranges[k];
            r->id = k;
            r->begin = b + p * (e - b) / pieces;
            r->end = b + (p + 1) * (e - b) / pieces;
            r->primary = servers[k % nservers];
            r->backup = nservers > 1 ? servers[(k + 1) % nservers] : 0;
            r->seeded = r->backup != 0;
            k++;
        }
    }
    m->nranges = k;
    m->num_keys = num_keys;
    m->epoch = epoch;
    return 0;
}

// s_load counts the ranges server id holds in m, as primary or backup.
static uint64_t
s_load(const ds_shard_map_t *m, uint32_t id)
{
    uint64_t load = 0;
    for (uint32_t j = 0; j < m->nranges; j++) {
        load += (m->ranges[j].primary == id) + (m->ranges[j].backup == id);
    }
    return load;
}

static bool
s_listed(const uint32_t *ids, uint32_t n, uint32_t id)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

int
ds_shard_map_failover(ds_shard_map_t *m, uint32_t dead, const uint32_t *alive,
                      uint32_t nalive)
{
    return ds_shard_map_fail_servers(m, &dead, 1, alive, nalive, NULL, NULL);
}

int
ds_shard_map_fail_servers(ds_shard_map_t *m, const uint32_t *dead,
                          uint32_t ndead, const uint32_t *alive,
                          uint32_t nalive, uint32_t *lost, uint32_t *nlost)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < m->nranges; i++) {
        const ds_range_t *r = &m->ranges[i];
        if (s_listed(dead, ndead, r->primary) &&
            (r->backup == 0 || !r->seeded ||
             s_listed(dead, ndead, r->backup))) {
            if (lost) {
                lost[k] = r->id;
            }
            k++;
        }
    }
    if (nlost) {
        *nlost = k;
    }
    if (k > 0) {
        return -ENOENT;
    }
    for (uint32_t i = 0; i < m->nranges; i++) {
        ds_range_t *r = &m->ranges[i];
        if (s_listed(dead, ndead, r->primary)) {
            r->primary = r->backup;
            r->backup = 0;
            r->seeded = false;
        } else if (s_listed(dead, ndead, r->backup)) {
            r->backup = 0;
            r->seeded = false;
        }
    }
    m->epoch++;
    ds_shard_map_fill_backups(m, alive, nalive);
    return 0;
}

uint32_t
ds_shard_map_set_seeded(ds_shard_map_t *m, uint32_t node,
                        const uint32_t *ranges, size_t n)
{
    uint32_t changed = 0;
    for (uint32_t i = 0; i < m->nranges; i++) {
        ds_range_t *r = &m->ranges[i];
        if (r->backup != node || node == 0) {
            continue;
        }
        bool seeded = false;
        for (size_t j = 0; j < n && !seeded; j++) {
            seeded = ranges[j] == i;
        }
        changed += r->seeded != seeded;
        r->seeded = seeded;
    }
    return changed;
}

uint32_t
ds_shard_map_fill_backups(ds_shard_map_t *m, const uint32_t *alive,
                          uint32_t nalive)
{
    uint32_t placed = 0;
    for (uint32_t i = 0; i < m->nranges; i++) {
        ds_range_t *r = &m->ranges[i];
        if (r->backup != 0) {
            continue;
        }
        uint32_t best = 0;
        uint64_t best_load = UINT64_MAX;
        for (uint32_t a = 0; a < nalive; a++) {
            if (alive[a] == r->primary) {
                continue;
            }
            uint64_t load = s_load(m, alive[a]);
            if (load < best_load) {
                best = alive[a];
                best_load = load;
            }
        }
        if (best != 0) {
            r->backup = best;
            r->seeded = false;
            placed++;
        }
    }
    return placed;
}

uint32_t
ds_shard_map_balance_backups(ds_shard_map_t *m, const uint32_t *alive,
                             uint32_t nalive)
{
    uint32_t moved = 0;
    for (;;) {
        uint32_t lo = 0, hi = 0;
        for (uint32_t a = 1; a < nalive; a++) {
            lo = s_load(m, alive[a]) < s_load(m, alive[lo]) ? a : lo;
            hi = s_load(m, alive[a]) > s_load(m, alive[hi]) ? a : hi;
        }
        if (nalive < 2 || s_load(m, alive[hi]) <= s_load(m, alive[lo]) + 1) {
            return moved;
        }
        bool done = false;
        for (uint32_t i = 0; i < m->nranges && !done; i++) {
            ds_range_t *r = &m->ranges[i];
            if (r->backup == alive[hi] && r->primary != alive[lo]) {
                r->backup = alive[lo];
                r->seeded = false;
                moved++;
                done = true;
            }
        }
        if (!done) {
            return moved; // only primaries left to move: they stay
        }
    }
}

bool
ds_shard_map_same_ranges(const ds_shard_map_t *a, const ds_shard_map_t *b)
{
    bool same = a->nranges == b->nranges && a->num_keys == b->num_keys;
    for (uint32_t i = 0; same && i < a->nranges; i++) {
        same = a->ranges[i].begin == b->ranges[i].begin &&
               a->ranges[i].end == b->ranges[i].end;
    }
    return same;
}

int64_t
ds_shard_map_find(const ds_shard_map_t *m, uint64_t key)
{
    if (m->nranges == 0 || key >= m->num_keys) {
        return -1;
    }
    uint32_t lo = 0, hi = m->nranges;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (m->ranges[mid].begin <= key) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

uint64_t
ds_shard_map_keys_on(const ds_shard_map_t *m, uint32_t node)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < m->nranges; i++) {
        if (m->ranges[i].primary == node) {
            n += m->ranges[i].end - m->ranges[i].begin;
        }
    }
    return n;
}

int
ds_shard_map_to_pb(const ds_shard_map_t *m, Descent__ShardMap *pb)
{
    descent__shard_map__init(pb);
    pb->epoch = m->epoch;
    pb->num_keys = m->num_keys;
    pb->n_ranges = m->nranges;
    pb->ranges = calloc(m->nranges ? m->nranges : 1, sizeof *pb->ranges);
    Descent__Range *store = calloc(m->nranges ? m->nranges : 1, sizeof *store);
    if (!pb->ranges || !store) {
        free(pb->ranges);
        free(store);
        pb->ranges = NULL;
        pb->n_ranges = 0;
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < m->nranges; i++) {
        descent__range__init(&store[i]);
        store[i].id = m->ranges[i].id;
        store[i].begin = m->ranges[i].begin;
        store[i].end = m->ranges[i].end;
        store[i].primary = m->ranges[i].primary;
        store[i].backup = m->ranges[i].backup;
        pb->ranges[i] = &store[i];
    }
    pb->ranges[0] = &store[0]; // the store, also of an empty map, is freed
                               // through it
    return 0;
}

void
ds_shard_map_pb_free(Descent__ShardMap *pb)
{
    if (pb->ranges) {
        free(pb->ranges[0]);
        free(pb->ranges);
    }
    pb->ranges = NULL;
    pb->n_ranges = 0;
}

static bool
s_known_server(const Descent__ShardMap *pb, uint32_t id)
{
    for (size_t i = 0; i < pb->n_nodes; i++) {
        if (pb->nodes[i]->id == id &&
            pb->nodes[i]->role == DESCENT__ROLE__SERVER) {
            return true;
        }
    }
    return false;
}

int
ds_shard_map_from_pb(ds_shard_map_t *m, const Descent__ShardMap *pb, char *err,
                     size_t errlen)
{
    memset(m, 0, sizeof *m);
    if (pb->n_ranges == 0 || pb->num_keys == 0) {
        snprintf(err, errlen, "shard map has no ranges or no keys");
        return -EPROTO;
    }
    if (pb->n_ranges > UINT32_MAX) {
        snprintf(err, errlen, "shard map has too many ranges");
        return -EPROTO;
    }
    uint64_t next = 0;
    for (size_t i = 0; i < pb->n_ranges; i++) {
        const Descent__Range *r = pb->ranges[i];
        if (r->id != i || r->begin != next || r->end <= r->begin ||
            r->end > pb->num_keys) {
            snprintf(err, errlen,
                     "shard map range %zu [%llu, %llu) is not contiguous", i,
                     (unsigned long long)r->begin, (unsigned long long)r->end);
            return -EPROTO;
        }
        uint32_t bad = !s_known_server(pb, r->primary) ? r->primary
                       : (r->backup != 0 && !s_known_server(pb, r->backup))
                           ? r->backup
                           : 0;
        if (bad != 0 || r->primary == 0) {
            snprintf(err, errlen, "shard map range %zu names unknown server %u",
                     i, bad);
            return -EPROTO;
        }
        next = r->end;
    }
    if (next != pb->num_keys) {
        snprintf(err, errlen, "shard map covers %llu of %llu keys",
                 (unsigned long long)next, (unsigned long long)pb->num_keys);
        return -EPROTO;
    }
    m->ranges = calloc(pb->n_ranges, sizeof *m->ranges);
    if (!m->ranges) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < pb->n_ranges; i++) {
        const Descent__Range *r = pb->ranges[i];
        m->ranges[i] = (ds_range_t){.id = r->id,
                                    .begin = r->begin,
                                    .end = r->end,
                                    .primary = r->primary,
                                    .backup = r->backup};
    }
    m->nranges = (uint32_t)pb->n_ranges;
    m->num_keys = pb->num_keys;
    m->epoch = pb->epoch;
    return 0;
}

void
ds_shard_map_fini(ds_shard_map_t *m)
{
    free(m->ranges);
    memset(m, 0, sizeof *m);
}
