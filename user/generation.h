/* SPDX-License-Identifier: GPL-2.0 */
/*
 * generation.h - install a compiled rule set as a new generation beside the
 * live one and switch to it with one map update (`active_gen`).
 */
#ifndef MOAT_GENERATION_H
#define MOAT_GENERATION_H

#include "compile.h"
#include "pin.h"
#include "rules.h"

struct gen_apply_info {
	unsigned gen;		 /* the generation now in force */
	double compile_ms, load_ms; /* time to compile, to fill the maps and switch */
	double sync_ms;		 /* after the switch: the other slot's address maps */
	size_t map_bytes;	 /* bytes of map data of the generation */
	unsigned maps_in_place;	 /* address maps updated in place, not built anew */
};

/*
 * Compile @rs and make it the rule set in force on the maps @m. Nothing the
 * packets see changes until the final switch; on any error the old rule set
 * stays whole and in force. Counters of rules with the same stage,
 * direction and number carry over. Both generation slots keep address maps
 * of the rules in force, so that the next reload updates them in place
 * (addr_sync.h). @info may be NULL.
 */
int gen_apply(struct moat_maps *m, const struct ruleset *rs, struct diags *d,
	      struct gen_apply_info *info);

/* The same for a rule set applied once and never reloaded (trace --rules):
 * no second copy of its address maps. */
int gen_apply_once(struct moat_maps *m, const struct ruleset *rs, struct diags *d,
		   struct gen_apply_info *info);

/* The generation in force and its config; -ENOENT when none was applied. */
int gen_live(struct moat_maps *m, unsigned *gen, struct moat_gen_config *cfg);

/*
 * The live generation's rules, by table: fills @infos (capacity @cap) and
 * @count[table]; returns the total or -errno.
 */
int gen_live_rules(struct moat_maps *m, struct moat_rule_info *infos, size_t cap,
		   size_t count[MOAT_NTABLES]);

#endif
