/* SPDX-License-Identifier: GPL-2.0 */
/*
 * compile.h - a parsed rule set turned into the images of one generation's
 * maps (see include/moat_abi.h). Pure: no BPF calls, so it is unit-tested
 * and reused by `moat check` to report capacity errors before loading.
 */
#ifndef MOAT_COMPILE_H
#define MOAT_COMPILE_H

#include <stddef.h>
#include <stdint.h>

#include "moat_abi.h"
#include "rules.h"

struct image_lpm4 {
	struct moat_lpm4_key key;
	uint32_t vid;
};

struct image_lpm6 {
	struct moat_lpm6_key key;
	uint32_t vid;
};

/* One compiled rule: its table position's map value and where it came from. */
struct image_rule {
	struct moat_rule_info info; /* stat_slot is filled in by the loader */
	enum moat_stage stage;
	enum moat_dir dir;
	const struct rule *rule;
};

struct moat_image {
	struct moat_gen_config cfg;
	uint32_t *l4; /* MOAT_L4_ENTRIES vector ids */
	struct moat_vec *vecs;
	size_t nvecs, vecs_cap;
	uint64_t *words;
	size_t nwords, words_cap;
	struct image_rule *rules; /* all tables, table after table */
	size_t nrules;
	struct image_lpm4 *lpm4;
	size_t nlpm4, lpm4_cap;
	struct image_lpm6 *lpm6;
	size_t nlpm6, lpm6_cap;
	uint32_t *dir4; /* levels 2 and 3 of the IPv4 16-8-8 tables */
	size_t ndir4;
	uint32_t *dir24; /* /24 front tables of large IPv4 fields, 2^24 entries each */
	size_t ndir24;
	/* Entries of the address hash table (prefixlen = length, tag = slot):
	 * IPv4 prefixes longer than /24 of fields with a front table, IPv6
	 * prefixes of fields with few lengths; and the table itself. */
	struct image_lpm4 *hash4;
	size_t nhash4;
	struct image_lpm6 *hash6;
	size_t nhash6;
	struct moat_addr_bucket *addr_hash;
	size_t naddr_hash;
	uint64_t *addr_filter; /* lengths per block of IPv6 hash fields */
	size_t naddr_filter;   /* 64-bit values (16 blocks' masks each) */
	/* Dedup index over vectors: open addressing on a content hash. */
	uint32_t *vindex;
	size_t vindex_cap;
};

/*
 * Address fields as tables (IPv4 16-8-8, IPv6 per-length hashes) or tries:
 * tables where they fit, unless told otherwise (tests check both paths).
 */
enum addr_tables_mode {
	ADDR_TABLES_AUTO,
	ADDR_TABLES_NEVER,  /* tries only */
	ADDR_TABLES_ALWAYS, /* IPv4 tables wherever the generation's total fits */
	ADDR_TABLES_FRONT,  /* IPv4 fields in tries, behind /24 front tables */
};
extern enum addr_tables_mode addr_tables_mode;

/*
 * Most address prefixes one rule set may hold, over all directions and
 * fields (a set named in two fields counts twice): bounds the maps a rule
 * set needs - per generation about 100 B a prefix, plus two 64 MiB /24
 * front tables at most - so a file too large for the host is refused
 * before anything is loaded. addr_prefix_limit is this, lowered by tests.
 */
#define MOAT_MAX_ADDR_PREFIXES ((size_t)1 << 22)
extern size_t addr_prefix_limit;

/*
 * Compile @rs. Returns 0, or a negative errno with the reason in @d
 * (e.g. -E2BIG when a table holds more than MOAT_MAX_RULES rules).
 */
int compile_ruleset(const struct ruleset *rs, struct moat_image *img, struct diags *d);
void image_free(struct moat_image *img);

/* Position order of a table's rules: NACL by number, SG untracked first. */
size_t compile_table_order(const struct ruleset *rs, enum rule_stage stage, enum rule_dir dir,
			   const struct rule **out);

/* True when flows allowed by SG rule @r are not tracked (cloud semantics). */
bool compile_rule_is_untracked(const struct ruleset *rs, const struct rule *r);

/* Bytes of map memory the image needs (values and keys, before overhead). */
size_t image_bytes(const struct moat_image *img);

#endif
