// SPDX-License-Identifier: MIT
// ratelog - which lines of a flood to log: the first few per (peer, kind)
// and interval, then one count of the rest.
#include "common/ratelog.h"

#include <stdio.h>
#include <string.h>

void
ds_ratelog_init(ds_ratelog_t *rl, uint32_t burst, uint32_t global_burst,
                uint64_t interval_ms)
{
    memset(rl, 0, sizeof *rl);
    rl->burst = burst;
    rl->global_burst = global_burst;
    rl->interval_ms = interval_ms;
}

// s_ended says whether an interval that began at start is over at now (a
// clock that went back counts as not over).
static bool
s_ended(const ds_ratelog_t *rl, uint64_t start, uint64_t now)
{
    return now >= start && now - start >= rl->interval_ms;
}

// s_fill writes a summary of slot's held-back events up to now.
static void
s_fill(ds_ratelog_summary_t *out, const ds_ratelog_slot_t *slot, uint64_t now)
{
    memcpy(out->peer, slot->peer, sizeof out->peer);
    memcpy(out->kind, slot->kind, sizeof out->kind);
    out->count = slot->suppressed;
    out->span_ms = now >= slot->start_ms ? now - slot->start_ms : 0;
}

// s_restart begins a new interval for slot at now.
static void
s_restart(ds_ratelog_slot_t *slot, uint64_t now)
{
    slot->start_ms = now;
    slot->logged = 0;
    slot->suppressed = 0;
}

// s_to_others moves slot's held-back events to the "other peers" total.
static void
s_to_others(ds_ratelog_t *rl, ds_ratelog_slot_t *slot)
{
    if (slot->suppressed > 0) {
        if (rl->evicted == 0 || slot->start_ms < rl->evicted_since) {
            rl->evicted_since = slot->start_ms;
        }
        rl->evicted += slot->suppressed;
        slot->suppressed = 0;
    }
}

// s_find returns the slot of (peer, kind), or a free or least recently used
// one, emptied, with found set to false.
static ds_ratelog_slot_t *
s_find(ds_ratelog_t *rl, const char *peer, const char *kind, bool *found)
{
    ds_ratelog_slot_t *lru = NULL;
    for (size_t i = 0; i < DS_RATELOG_SLOTS; i++) {
        ds_ratelog_slot_t *slot = &rl->slots[i];
        if (slot->peer[0] && strcmp(slot->peer, peer) == 0 &&
            strcmp(slot->kind, kind) == 0) {
            *found = true;
            return slot;
        }
        if (!lru || (lru->peer[0] &&
                     (!slot->peer[0] || slot->used_ms < lru->used_ms))) {
            lru = slot;
        }
    }
    *found = false;
    s_to_others(rl, lru);
    memset(lru, 0, sizeof *lru);
    return lru;
}

bool
ds_ratelog_hit(ds_ratelog_t *rl, const char *peer, const char *kind,
               uint64_t now_ms, ds_ratelog_summary_t *ended)
{
    char p[DS_RATELOG_PEER_MAX], k[DS_RATELOG_KIND_MAX];
    // An empty name would mark the slot free.
    snprintf(p, sizeof p, "%s", peer && peer[0] ? peer : "?");
    snprintf(k, sizeof k, "%s", kind ? kind : "");
    if (ended) {
        ended->count = 0;
    }
    if (s_ended(rl, rl->global_start, now_ms) || now_ms < rl->global_start) {
        rl->global_start = now_ms;
        rl->global_logged = 0;
    }
    bool               found;
    ds_ratelog_slot_t *slot = s_find(rl, p, k, &found);
    if (!found) {
        memcpy(slot->peer, p, sizeof p);
        memcpy(slot->kind, k, sizeof k);
        s_restart(slot, now_ms);
    } else if (s_ended(rl, slot->start_ms, now_ms)) {
        if (slot->suppressed > 0 && ended) {
            s_fill(ended, slot, now_ms);
        } else {
            // Nobody takes the count here: it is said with the others'.
            s_to_others(rl, slot);
        }
        s_restart(slot, now_ms);
    }
    slot->used_ms = now_ms;
    if (slot->logged < rl->burst && rl->global_logged < rl->global_burst) {
        slot->logged++;
        rl->global_logged++;
        return true;
    }
    slot->suppressed++;
    return false;
}

bool
ds_ratelog_summary(ds_ratelog_t *rl, uint64_t now_ms, bool all,
                   ds_ratelog_summary_t *out)
{
    for (size_t i = 0; i < DS_RATELOG_SLOTS; i++) {
        ds_ratelog_slot_t *slot = &rl->slots[i];
        if (slot->peer[0] && slot->suppressed > 0 &&
            (all || s_ended(rl, slot->start_ms, now_ms))) {
            s_fill(out, slot, now_ms);
            s_restart(slot, now_ms);
            return true;
        }
    }
    if (rl->evicted > 0 && (all || s_ended(rl, rl->evicted_since, now_ms))) {
        snprintf(out->peer, sizeof out->peer, "other peers");
        out->kind[0] = '\0';
        out->count = rl->evicted;
        out->span_ms =
            now_ms >= rl->evicted_since ? now_ms - rl->evicted_since : 0;
        rl->evicted = 0;
        return true;
    }
    return false;
}
