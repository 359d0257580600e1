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
    bool     seeded;  // the backup holds the whole state: placed by the
                      // first map or seeded since (not on the wire)
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
// the next server in the list, seeded (every server starts a range from
// the same values). Returns 0, -EINVAL or -ENOMEM.
int ds_shard_map_build(ds_shard_map_t *m, uint64_t num_keys,
                       const uint32_t *servers, uint32_t nservers,
                       uint32_t per_server, uint64_t max_keys, uint64_t epoch);

// ds_shard_map_failover is ds_shard_map_fail_servers for one server.
int ds_shard_map_failover(ds_shard_map_t *m, uint32_t dead,
                          const uint32_t *alive, uint32_t nalive);

// ds_shard_map_fail_servers re-places m after the ndead servers of `dead`
// failed together: every range whose primary died is taken over by its
// backup, which must be seeded and not dead itself; every range a dead
// server backed up loses its backup; m's epoch goes up by one. Backups are
// then refilled on `alive` (ds_shard_map_fill_backups), which must name
// only servers heard lately. Returns 0, or -ENOENT when a range has no
// live seeded copy left (its state is lost): m is then unchanged, and
// `lost` (room for m->nranges ids; may be NULL) lists those ranges,
// *nlost (may be NULL) their number.
int ds_shard_map_fail_servers(ds_shard_map_t *m, const uint32_t *dead,
                              uint32_t ndead, const uint32_t *alive,
                              uint32_t nalive, uint32_t *lost, uint32_t *nlost);

// ds_shard_map_set_seeded takes a server's word on the ranges it backs up:
// each range of m whose backup is `node` is seeded exactly when its id is
// among the n of `ranges` (ids out of range are ignored). The caller checks
// that the word is of m's epoch. Returns how many flags changed.
uint32_t ds_shard_map_set_seeded(ds_shard_map_t *m, uint32_t node,
                                 const uint32_t *ranges, size_t n);

// ds_shard_map_fill_backups gives every range without a backup one: the
// server of `alive` other than its primary that holds the fewest ranges
// (as primary or backup), the first such in `alive` on a tie; it is not
// seeded yet. Ranges stay without one when alive names no other server.
// Returns the number of backups placed.
uint32_t ds_shard_map_fill_backups(ds_shard_map_t *m, const uint32_t *alive,
                                   uint32_t nalive);

// ds_shard_map_balance_backups moves backups from the servers of `alive`
// holding the most ranges (as primary or backup) to those holding the
// fewest, until the two differ by at most one, never onto a range's own
// primary: a server back after a failure gets its share of the work.
// A moved backup is not seeded yet. Primaries do not move. Returns the
// number of backups moved.
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
