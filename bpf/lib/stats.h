/* SPDX-License-Identifier: GPL-2.0 */
/*
 * stats.h - per-rule and per-direction counters.
 *
 * Both maps are per-CPU, so increments need no atomics: XDP runs in softirq
 * and TC egress with bottom halves disabled, so on one CPU they never
 * interleave. A trace instance counts nothing.
 */
#ifndef MOAT_BPF_STATS_H
#define MOAT_BPF_STATS_H

#include "maps.h"

static __always_inline struct moat_dir_counters *dir_counters(__u32 dir)
{
	if (moat_trace_mode)
		return 0;
	return bpf_map_lookup_elem(&counters, &dir);
}

/* c->FIELD += 1, when counting. */
#define COUNT(c, field)                    \
	do {                               \
		if (c)                     \
			(c)->field += 1;   \
	} while (0)

#define COUNT_BYTES(c, field, bytes_field, len) \
	do {                                    \
		if (c) {                        \
			(c)->field += 1;        \
			(c)->bytes_field += len; \
		}                               \
	} while (0)

static __always_inline void rule_count(__u32 slot, __u32 len)
{
	struct moat_rule_stat *s;

	if (moat_trace_mode)
		return;
	s = bpf_map_lookup_elem(&rule_stats, &slot);
	if (s) {
		s->packets += 1;
		s->bytes += len;
	}
}

#endif
