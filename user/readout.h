/* SPDX-License-Identifier: GPL-2.0 */
/*
 * readout.h - what the pinned maps say, summed over CPUs and put in the
 * live rule set's order: per-rule counters, per-direction counters, and
 * connection-tracking entries.
 */
#ifndef MOAT_READOUT_H
#define MOAT_READOUT_H

#include <stddef.h>
#include <stdint.h>

#include "moat_abi.h"
#include "pin.h"

struct rule_counter {
	enum moat_stage stage;
	enum moat_dir dir;
	unsigned number;
	enum moat_action action;
	uint64_t packets, bytes;
};

/* The live rules with their counters, in table order. Caller frees *out. */
int readout_rules(struct moat_maps *m, struct rule_counter **out, size_t *n);

/* Per-direction counters summed over CPUs; @c has 2 entries (in, out). */
int readout_counters(struct moat_maps *m, struct moat_dir_counters c[2]);

/* Field names and offsets of struct moat_dir_counters, for printing. */
struct counter_field {
	const char *name;
	size_t off;
};
extern const struct counter_field readout_counter_fields[];
extern const size_t readout_ncounter_fields;

struct ct_entry {
	struct moat_ct_key key;
	struct moat_ct_value val;
	double age_s, left_s;
};

/* Every entry of both connection tables (@live_only: not expired). */
int readout_conntrack(struct moat_maps *m, int live_only, struct ct_entry **out, size_t *n);
/* Entries in use and maximum: confirmed (`conntrack`) and half-open (`ct_pending`). */
int readout_ct_usage(struct moat_maps *m, size_t *used, size_t *max, size_t *pending,
		     size_t *pending_max);

const char *readout_ct_state_name(uint8_t state);
uint64_t readout_now_ns(void);

#endif
