/* SPDX-License-Identifier: GPL-2.0 */
/*
 * reference.h - the reference matcher: CONTRACT §2/§3 as a plain loop over
 * the rules, one packet at a time. It shares nothing with the compiler or
 * the datapath, so the tests can hold the BPF programs against it.
 */
#ifndef MOAT_REFERENCE_H
#define MOAT_REFERENCE_H

#include <stdbool.h>

#include "packet.h"
#include "rules.h"

/* True when the file has at least one rule line for @stage. */
bool reference_stage_on(const struct ruleset *rs, enum rule_stage stage);

/* True when every field of @r matches @p (stage and direction are not looked at). */
bool reference_rule_matches(const struct ruleset *rs, const struct rule *r, const struct packet *p);

/*
 * The NACL verdict for @p in direction @dir: 1 allow, 0 deny. @winner (may
 * be NULL) receives the rule that decided, or NULL when nothing did: the
 * implicit final deny, or the NACL stage off (then the verdict is allow).
 */
int reference_nacl(const struct ruleset *rs, enum rule_dir dir, const struct packet *p,
		   const struct rule **winner);

/*
 * True when @p is IPv6 neighbour discovery (ICMPv6 133-137, not a fragment),
 * which passes before any stage unless `set pass-ndp off` (CONTRACT §1).
 */
bool reference_is_ndp(const struct packet *p);

/* The first SG rule of @dir, in file order, that matches @p; NULL if none. */
const struct rule *reference_sg_rule(const struct ruleset *rs, enum rule_dir dir,
				     const struct packet *p);

#endif
