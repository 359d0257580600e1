// SPDX-License-Identifier: MIT
// ratelog - which lines of a flood to log: the first few per (peer, kind)
// and interval, then one count of the rest.
#ifndef DS_RATELOG_H
#define DS_RATELOG_H

#include <stdbool.h>
#include <stdint.h>

#define DS_RATELOG_SLOTS 64    // (peer, kind) pairs tracked at once
#define DS_RATELOG_PEER_MAX 48 // bytes of a peer's name, with the NUL
#define DS_RATELOG_KIND_MAX 40 // bytes of a kind's name, with the NUL

// The limits the roles use for peers' messages (docs/operations.md).
#define DS_RATELOG_BURST 5           // lines per (peer, kind) and interval
#define DS_RATELOG_GLOBAL_BURST 50   // lines per interval over all pairs
#define DS_RATELOG_INTERVAL_MS 10000 // ms

// ds_ratelog_slot_t counts one (peer, kind) pair; peer[0] == 0 when free.
typedef struct {
    char     peer[DS_RATELOG_PEER_MAX]; // who sent it, e.g. "node 3"
    char     kind[DS_RATELOG_KIND_MAX]; // what was wrong, e.g. "OUT_OF_RANGE"
    uint64_t start_ms;                  // start of the pair's interval
    uint64_t used_ms;                   // last event, for eviction
    uint32_t logged;                    // events let through this interval
    uint64_t suppressed;                // events held back this interval
} ds_ratelog_slot_t;

// ds_ratelog_t is embedded by its owner. Its memory is fixed: peers are
// untrusted and may invent names, so a new pair evicts the least recently
// used one, whose held-back count goes to the "other peers" total. Time is
// the caller's (any millisecond clock), so tests can use a fake one.
typedef struct {
    uint32_t          burst;         // lines per (peer, kind) and interval
    uint32_t          global_burst;  // lines per interval over all pairs
    uint64_t          interval_ms;   // ms
    uint64_t          global_start;  // start of the global interval, ms
    uint32_t          global_logged; // lines let through in it
    uint64_t          evicted;       // held back by pairs since evicted
    uint64_t          evicted_since; // start of the oldest of those, ms
    ds_ratelog_slot_t slots[DS_RATELOG_SLOTS]; // the pairs tracked
} ds_ratelog_t;

// ds_ratelog_summary_t is what to say about events held back.
typedef struct {
    char     peer[DS_RATELOG_PEER_MAX]; // the peer, or "other peers"
    char     kind[DS_RATELOG_KIND_MAX]; // the kind, or "" for other peers
    uint64_t count;                     // events not logged
    uint64_t span_ms;                   // over this long, ms
} ds_ratelog_summary_t;

// ds_ratelog_init empties rl and sets its limits: at most burst lines per
// (peer, kind) and at most global_burst lines in all per interval_ms.
void ds_ratelog_init(ds_ratelog_t *rl, uint32_t burst, uint32_t global_burst,
                     uint64_t interval_ms);

// ds_ratelog_hit records one event of `kind` from `peer` (both truncated to
// fit) at now_ms and returns whether to log it. When the pair's interval
// has ended with events held back, *ended (may be NULL) receives their
// count, to be logged first; otherwise ended->count is 0.
bool ds_ratelog_hit(ds_ratelog_t *rl, const char *peer, const char *kind,
                    uint64_t now_ms, ds_ratelog_summary_t *ended);

// ds_ratelog_summary takes one count of held-back events whose interval has
// ended by now_ms (any, if all) and returns true, or returns false when
// there is none left. Call it until false from a timer, and with all set
// before exiting, so that no count goes unsaid.
bool ds_ratelog_summary(ds_ratelog_t *rl, uint64_t now_ms, bool all,
                        ds_ratelog_summary_t *out);

#endif
