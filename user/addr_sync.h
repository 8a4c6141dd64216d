/* SPDX-License-Identifier: GPL-2.0 */
/*
 * addr_sync.h - the address maps of both generation slots (IPv4 and IPv6
 * tries), and how a reload updates them in place instead of
 * building them again. See addr_sync.c.
 */
#ifndef MOAT_ADDR_SYNC_H
#define MOAT_ADDR_SYNC_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "compile.h"
#include "pin.h"

/* The address maps of one slot with a shadow (MOAT_ADDR_KINDS of them). */
enum addr_map { ADDR_LPM4, ADDR_LPM6, ADDR_NMAPS };

/* When to update a map in place rather than build a new one. */
enum addr_update_mode {
	ADDR_UPDATE_AUTO,   /* when the difference is small against the map */
	ADDR_UPDATE_ALWAYS, /* whenever the map's contents are known (tests) */
	ADDR_UPDATE_NEVER,  /* always build anew (tests) */
};
extern enum addr_update_mode addr_update_mode;

/* What one rule set needs done to the address maps, kind by kind. */
struct addr_kind_plan {
	const char *entries; /* the new entries, in canonical order */
	char *sorted;	     /* own copy of them when the image's order was not */
	size_t n, esize, ksize;
	/* the shadow: what the slots' maps hold */
	int shadow_fd;
	char *shadow_area;
	size_t shadow_len;
	unsigned was_sync; /* bit g: slot g's map held the shadow's entries */
	/* the difference from the shadow to the new entries */
	bool have_delta;
	char *del_keys, *upd_keys;
	unsigned *upd_vals;
	size_t ndel, nupd;
};

struct addr_plan {
	struct addr_kind_plan k[MOAT_ADDR_KINDS];
	bool spare;		 /* keep both slots' maps (a rule set to be reloaded) */
	int idle_fds[ADDR_NMAPS]; /* the idle slot's maps, updated in place (or -1) */
	unsigned in_place;	 /* how many maps were updated rather than built */
	bool other_quiet;	 /* addr_sync_other saw the other slot's readers out */
	/* new maps for the other slot, built in a thread of their own while
	 * the idle slot is written, installed after the switch */
	pthread_t builder;
	bool building;
	unsigned spare_kinds;
	int spare_fds[MOAT_ADDR_KINDS];
	const struct moat_image *spare_img;
};

/* An empty plan (nothing to free yet). */
void addr_plan_init(struct addr_plan *p);

/*
 * Read the shadows and work out, for each kind, the difference to @img's
 * entries. @spare false: the instance is applied once (trace --rules), so
 * nothing is kept for a reload and the shadows are dropped.
 */
int addr_plan_make(struct moat_maps *m, const struct moat_image *img, bool spare,
		   struct addr_plan *p);

/*
 * True when no packet reads slot @slot's maps (a grace period has passed
 * since the switch away from it), so that any of them may be rewritten.
 */
bool addr_slot_quiet(const struct addr_plan *p, unsigned slot);

/*
 * Bring the maps of slot @idle (read by no packet) to the new contents in
 * place where that is cheaper than a new map; p->idle_fds holds those maps
 * (-1 for the rest, which the caller builds with addr_map_build).
 */
int addr_update_idle(struct moat_maps *m, struct addr_plan *p, unsigned idle);

/*
 * Start building, beside the rest of the reload, the maps slot @other will
 * need anew after the switch (those it cannot take in place); @img must
 * outlive the plan. Without a thread, addr_sync_other builds them itself.
 */
void addr_prebuild_other(struct moat_maps *m, struct addr_plan *p, const struct moat_image *img,
			 unsigned other);

/* A new map of kind @which filled with @img's contents: fd or -errno. */
int addr_map_build(const struct moat_image *img, enum addr_map which);

/*
 * After the switch to slot !@other: wait until no packet runs on slot
 * @other, bring its address maps to @img's contents too (in place, or new
 * maps), and record those contents in the shadows. Failing here leaves
 * the rule set in force and only costs the next reload full builds.
 */
int addr_sync_other(struct moat_maps *m, struct addr_plan *p, const struct moat_image *img,
		    unsigned other);

void addr_plan_free(struct addr_plan *p);

#endif
