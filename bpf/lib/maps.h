/* SPDX-License-Identifier: GPL-2.0 */
/*
 * maps.h - every map moat's programs use, defined once.
 *
 * Both entry points live in one object (moat.bpf.c), so XDP and TC share
 * every map.
 *
 * Rule sets live in generations: each gen_* map is an ARRAY_OF_MAPS indexed
 * by generation (0 or 1) whose inner maps user space creates at the exact
 * size the compiled rule set needs. `active_gen` says which one is in force;
 * a packet reads it once, so it is judged by one generation from start to
 * end. Inner maps are declared by size: user space creates them without
 * BTF, and a struct only named through a pointer would reach BTF as a
 * forward declaration that libbpf cannot size.
 */
#ifndef MOAT_BPF_MAPS_H
#define MOAT_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "moat_abi.h"

#define MOAT_GENERATIONS 2

/* Set at load time: a trace instance changes no counter and no entry. */
const volatile __u32 moat_trace_mode = 0;
/* Set by the benchmark only, to time the walk the decision cache saves. */
const volatile __u32 moat_decision_cache_off = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} active_gen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MOAT_GENERATIONS);
	__type(key, __u32);
	__type(value, struct moat_gen_config);
} gen_config SEC(".maps");

/* Address tries: (tag, prefix) -> vector id. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MOAT_GENERATIONS);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);
		__uint(map_flags, BPF_F_NO_PREALLOC);
		__uint(max_entries, 1);
		__uint(key_size, sizeof(struct moat_lpm4_key));
		__uint(value_size, sizeof(__u32));
	});
} gen_lpm4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MOAT_GENERATIONS);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);
		__uint(map_flags, BPF_F_NO_PREALLOC);
		__uint(max_entries, 1);
		__uint(key_size, sizeof(struct moat_lpm6_key));
		__uint(value_size, sizeof(__u32));
	});
} gen_lpm6 SEC(".maps");

/* The array inner maps are BPF_F_MMAPABLE: the loader fills them with
 * plain stores through mmap(), not one copy per element through bpf().
 * The kernel rounds an array's values up to 8 bytes, so the arrays of
 * 32-bit entries (gen_l4, gen_dir4) hold two per value (MOAT_U32_PAIR).
 *
 * Ports, ICMP type/code and protocol+state slots -> vector id. Fixed
 * size, without BPF_F_INNER_MAP, so the verifier inlines its lookups. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MOAT_GENERATIONS);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(max_entries, MOAT_L4_ENTRIES / 2);
		__uint(map_flags, BPF_F_MMAPABLE);
		__uint(key_size, sizeof(__u32));
		__uint(value_size, sizeof(__u64));
	});
} gen_l4 SEC(".maps");

/* Levels 2 and 3 of the IPv4 16-8-8 tables (MOAT_L4_OFF_DIR4): chunks of
 * 256 entries. Fixed size, so lookups are inlined. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MOAT_GENERATIONS);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(map_flags, BPF_F_MMAPABLE);
		__uint(max_entries, MOAT_DIR4_CHUNKS * 128);
		__type(key, __u32);
		__type(value, __u64);
	});
} gen_dir4 SEC(".maps");

/* An outer map of @n slots whose inner maps are mmapable arrays of 64-bit
 * values sized to need (BPF_F_INNER_MAP: each may have its own
 * max_entries); lookups into them are calls. */
#define MOAT_U64_ARRAYS_SIZED_TO_NEED(n)                                             \
	struct {                                                                     \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);                             \
		__uint(max_entries, n);                                               \
		__type(key, __u32);                                                   \
		__array(values, struct {                                              \
			__uint(type, BPF_MAP_TYPE_ARRAY);                              \
			__uint(map_flags, BPF_F_INNER_MAP | BPF_F_MMAPABLE);           \
			__uint(max_entries, 1);                                        \
			__uint(key_size, sizeof(__u32));                               \
			__uint(value_size, sizeof(__u64));                             \
		});                                                                   \
	}

/* /24 front tables of large IPv4 trie fields (gen_config.dir24_mask), two
 * 32-bit entries per value; sized to need (64 MiB a field), so lookups are
 * calls. */
MOAT_U64_ARRAYS_SIZED_TO_NEED(MOAT_GENERATIONS) gen_dir24 SEC(".maps");

/* Address hash tables (struct moat_addr_bucket, see MOAT_HASH6_LENS):
 * sized to need, written through mmap, so lookups are calls. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MOAT_GENERATIONS);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(map_flags, BPF_F_INNER_MAP | BPF_F_MMAPABLE);
		__uint(max_entries, 1);
		__uint(key_size, sizeof(__u32));
		__uint(value_size, sizeof(struct moat_addr_bucket));
	});
} gen_addr_hash SEC(".maps");

/* Address filters (see MOAT_ADDR_FILTER_SLOTS_PER_KEY), 16 slots a value. */
MOAT_U64_ARRAYS_SIZED_TO_NEED(MOAT_GENERATIONS) gen_addr_filter SEC(".maps");

/* Vector headers, by vector id. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MOAT_GENERATIONS);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(map_flags, BPF_F_MMAPABLE);
		__uint(max_entries, MOAT_MAX_VECS);
		__uint(key_size, sizeof(__u32));
		__uint(value_size, sizeof(struct moat_vec));
	});
} gen_vecs SEC(".maps");

/* The non-zero words of all vectors: the first MOAT_FAST_WORDS in a
 * fixed-size array (inlined lookups), the rest in one sized to need. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MOAT_GENERATIONS);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(map_flags, BPF_F_MMAPABLE);
		__uint(max_entries, MOAT_FAST_WORDS);
		__uint(key_size, sizeof(__u32));
		__uint(value_size, sizeof(__u64));
	});
} gen_words SEC(".maps");

MOAT_U64_ARRAYS_SIZED_TO_NEED(MOAT_GENERATIONS) gen_words_more SEC(".maps");

/* Read by no program: what the address maps (gen_lpm4, gen_lpm6, one
 * inner map per MOAT_ADDR_KINDS) of both generations hold,
 * so that a reload updates them in place (user/addr_sync.c). */
MOAT_U64_ARRAYS_SIZED_TO_NEED(MOAT_ADDR_KINDS) gen_shadow SEC(".maps");

/* Rules by table position: number, action, counter slot. Fixed size,
 * so lookups are inlined. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MOAT_GENERATIONS);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(max_entries, MOAT_RULES_ENTRIES);
		__uint(map_flags, BPF_F_MMAPABLE);
		__uint(key_size, sizeof(__u32));
		__uint(value_size, sizeof(struct moat_rule_info));
	});
} gen_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MOAT_MAX_STAT_SLOTS);
	__type(key, __u32);
	__type(value, struct moat_rule_stat);
} rule_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct moat_dir_counters);
} counters SEC(".maps");

/*
 * Connection tracking, in two LRU tables so that a flood of openings
 * cannot evict established connections: `ct_pending` holds flows seen one
 * way only (a SYN, a first datagram), `conntrack` the confirmed ones. An
 * entry moves to `conntrack` when the other side answers. Sizes come from
 * `set conntrack max` (pending: a quarter of it, at least 1024).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct moat_ct_key);
	__type(value, struct moat_ct_value);
} conntrack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct moat_ct_key);
	__type(value, struct moat_ct_value);
} ct_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct moat_meta);
} meta SEC(".maps");

/* See struct moat_decision_entry. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MOAT_DECISION_ENTRIES);
	__type(key, __u32);
	__type(value, struct moat_decision_entry);
} decision_cache SEC(".maps");

/* Trace instances only: what the last run decided. Never pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct moat_trace);
} trace_out SEC(".maps");

#endif
