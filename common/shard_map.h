// SPDX-License-Identifier: MIT
// shard_map - the model's key ranges and the servers holding them, by epoch.
#ifndef DS_SHARD_MAP_H
#define DS_SHARD_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/msg.h"

// ds_range_t is one contiguous key range [begin, end) and its servers.
typedef struct {
    uint32_t id;      // index in the map
    uint64_t begin;   // first key
    uint64_t end;     // one past the last key
    uint32_t primary; // node id of the server holding it
    uint32_t backup;  // node id of the backup server, 0 = none
} ds_range_t;

// ds_shard_map_t cuts [0, num_keys) into ranges placed on servers.
typedef struct {
    uint64_t    epoch;    // version; every message carries the one it used
    uint64_t    num_keys; // model size in float32 parameters
    uint32_t    nranges;  // number of ranges
    ds_range_t *ranges;   // sorted by begin, contiguous; owned
} ds_shard_map_t;

// ds_shard_map_build cuts [0, num_keys) into nservers * per_server ranges
// of near-equal size (fewer when there are fewer keys), then splits any
// range longer than max_keys, and places them round-robin so that every
// server holds an equal share (within one range); each range's backup is
// the next server in the list. Returns 0, -EINVAL or -ENOMEM.
int ds_shard_map_build(ds_shard_map_t *m, uint64_t num_keys,
                       const uint32_t *servers, uint32_t nservers,
                       uint32_t per_server, uint64_t max_keys, uint64_t epoch);

// ds_shard_map_failover re-places m after server `dead` failed: every range
// it was the primary of is taken over by its backup, every range it backed
// up loses its backup, and m's epoch goes up by one. Backups are then
// refilled with ds_shard_map_fill_backups. Returns 0, or -ENOENT when a
// range had no backup to take over (its state is lost; m is unchanged).
int ds_shard_map_failover(ds_shard_map_t *m, uint32_t dead,
                          const uint32_t *alive, uint32_t nalive);

// ds_shard_map_fill_backups gives every range without a backup one: the
// server of `alive` other than its primary that holds the fewest ranges
// (as primary or backup), the first such in `alive` on a tie. Ranges stay
// without one when alive names no other server. Returns the number of
// backups placed.
uint32_t ds_shard_map_fill_backups(ds_shard_map_t *m, const uint32_t *alive,
                                   uint32_t nalive);

// ds_shard_map_balance_backups moves backups from the servers of `alive`
// holding the most ranges (as primary or backup) to those holding the
// fewest, until the two differ by at most one, never onto a range's own
// primary: a server back after a failure gets its share of the work.
// Primaries do not move. Returns the number of backups moved.
uint32_t ds_shard_map_balance_backups(ds_shard_map_t *m, const uint32_t *alive,
                                      uint32_t nalive);

// ds_shard_map_same_ranges says whether a and b cut the same keys into the
// same ranges (placement and epoch may differ): what a later map must keep.
bool ds_shard_map_same_ranges(const ds_shard_map_t *a, const ds_shard_map_t *b);

// ds_shard_map_find returns the index of the range holding key, or -1.
int64_t ds_shard_map_find(const ds_shard_map_t *m, uint64_t key);

// ds_shard_map_keys_on returns how many keys server `node` holds as primary.
uint64_t ds_shard_map_keys_on(const ds_shard_map_t *m, uint32_t node);

// ds_shard_map_to_pb fills pb from m; its ranges are allocated and the
// caller frees them with ds_shard_map_pb_free. Returns 0 or -ENOMEM.
int  ds_shard_map_to_pb(const ds_shard_map_t *m, Descent__ShardMap *pb);
void ds_shard_map_pb_free(Descent__ShardMap *pb);

// ds_shard_map_from_pb validates a received map (ranges contiguous from 0
// to num_keys, ids equal to their index, every primary a known server) and
// copies it into m. Returns 0, -EPROTO with err set, or -ENOMEM.
int ds_shard_map_from_pb(ds_shard_map_t *m, const Descent__ShardMap *pb,
                         char *err, size_t errlen);

// ds_shard_map_fini frees m's ranges. Idempotent.
void ds_shard_map_fini(ds_shard_map_t *m);

#endif
