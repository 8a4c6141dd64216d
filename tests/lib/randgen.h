/* SPDX-License-Identifier: GPL-2.0 */
/*
 * randgen.h - seeded random rule sets and packets for moat's tests.
 *
 * Everything is drawn from one seeded generator, so a failing case is
 * reproduced by its seed alone. Rule sets are built directly as struct
 * ruleset (no parser involved), with addresses from a small pool of nested
 * prefixes in 198.18.0.0/15 and fd00::/8 so that rules overlap a lot.
 * Packets lean on the boundaries the rules draw: the first and last address
 * of a prefix and one beyond, the ends of a port range and one beyond, the
 * ICMP type/code a rule names, fragments, every TCP flag mix.
 *
 * Also here: small helpers to build a rule set by hand in a test.
 */
#ifndef MOAT_TEST_RANDGEN_H
#define MOAT_TEST_RANDGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "packet.h"
#include "rules.h"

/* splitmix64: tiny, fast, every seed (including 0) gives a good stream. */
struct randgen {
	uint64_t state;
};

void randgen_seed(struct randgen *g, uint64_t seed);
uint64_t randgen_u64(struct randgen *g);
/* Uniform in 0..n-1; n must be > 0. */
uint32_t randgen_below(struct randgen *g, uint32_t n);
/* Uniform in lo..hi inclusive. */
uint32_t randgen_between(struct randgen *g, uint32_t lo, uint32_t hi);
/* True with probability @percent / 100. */
bool randgen_chance(struct randgen *g, unsigned int percent);

/* What randgen_ruleset() makes. */
struct randgen_opts {
	size_t nacl_rules;     /* NACL rules, split between in and out */
	size_t sg_rules;       /* SG rules (allow only), split likewise */
	unsigned int max_sets; /* 0..max_sets named sets (mixed families) */
};

/*
 * A random rule set into @rs (which must be fresh from ruleset_init()):
 * settings at their defaults except pass-ndp (random), sets first, then the
 * rules in a random file order, stage_on[] set from what was made. NACL
 * numbers are unique per direction. Returns 0 or -ENOMEM.
 */
int randgen_ruleset(struct randgen *g, const struct randgen_opts *o, struct ruleset *rs);

/* Append @n random SG rules to @rs (peer address, dport, icmp). 0 or -ENOMEM. */
int randgen_sg_rules(struct randgen *g, struct ruleset *rs, size_t n);

/*
 * A random packet for @rs, biased to the edges its rules draw: about half
 * are built to match one of its rules and then often nudged one step off
 * (address or port ±1, another ICMP code, other TCP flags, a fragment).
 * IPv6 packets never carry an extension header's number as their protocol
 * (the datapath would walk it); about 1 in 100 carries the other family's
 * ICMP protocol number (ICMP in IPv6, ICMPv6 in IPv4).
 */
void randgen_packet(struct randgen *g, const struct ruleset *rs, struct packet *p);

/*
 * A packet that @r matches. Returns 0, or -ENOENT when no packet can (a set
 * without a prefix of the family the rule needs, an IPv6-only rule for an
 * extension header protocol).
 */
int randgen_packet_for_rule(struct randgen *g, const struct ruleset *rs, const struct rule *r,
			    struct packet *p);

/*
 * Building by hand. randgen_rule_append() adds a rule with every field left
 * out (any) and returns it, or NULL on ENOMEM; the pointer is valid until
 * the next append. SG rules get their number from their order; the stage is
 * switched on.
 */
struct rule *randgen_rule_append(struct ruleset *rs, enum rule_stage stage, enum rule_dir dir,
				 int number, enum rule_action action, int proto);
/* "198.18.1.0/24", "fd00::/8", a bare address is a /32 or /128. 0 or -EINVAL. */
int randgen_prefix_parse(const char *text, struct rule_prefix *p);
/* Set r->src or r->dst (@dst) to a CIDR and r->family to its family. 0 or -EINVAL. */
int randgen_rule_addr(struct rule *r, bool dst, const char *cidr);
/* Add a named set of comma-free CIDR strings; returns its index or -errno. */
int randgen_set_append(struct ruleset *rs, const char *name, const char *const *cidrs, size_t n);
/* An address in text ("198.18.1.5", "fd00::1") into @addr; returns the family or -EINVAL. */
int randgen_addr_parse(const char *text, uint8_t addr[16]);

#endif
