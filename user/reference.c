// SPDX-License-Identifier: GPL-2.0
/*
 * reference.c - the reference matcher, written from CONTRACT §2 and §3 and
 * nothing else: for each packet, walk the rules and test every field. It is
 * slow on purpose and shares no code with the compiler (compile.c) or the
 * BPF programs, so when the differential test finds them disagreeing, the
 * two sides were written independently. Keep it plain: no indexes, no
 * caches, no tricks; prefix containment is redone here rather than taken
 * from rule_prefix_contains().
 */
#include <string.h>

#include "reference.h"

#define REF_PROTO_ICMP 1
#define REF_PROTO_TCP 6
#define REF_PROTO_UDP 17
#define REF_PROTO_ICMPV6 58

bool reference_stage_on(const struct ruleset *rs, enum rule_stage stage)
{
	return rs->stage_on[stage];
}

/* Does @pf contain @addr, an address of family @family (network order)? */
static bool ref_prefix_contains(const struct rule_prefix *pf, int family, const uint8_t *addr)
{
	int full = pf->len / 8, rest = pf->len % 8;
	uint8_t mask;

	if (pf->family != family)
		return false;
	if (pf->len > (family == 4 ? 32 : 128))
		return false;
	if (memcmp(pf->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (pf->addr[full] & mask) == (addr[full] & mask);
}

/* `src`/`dst`: left out, a CIDR, or @SET: any prefix of the set contains it. */
static bool ref_addr_matches(const struct ruleset *rs, const struct rule_addr *a, int family,
			     const uint8_t *addr)
{
	const struct rule_set *set;
	size_t i;

	switch (a->kind) {
	case RULE_ADDR_ANY:
		return true;
	case RULE_ADDR_PREFIX:
		return ref_prefix_contains(&a->prefix, family, addr);
	case RULE_ADDR_SET:
		if (a->set < 0 || (size_t)a->set >= rs->nsets)
			return false;
		set = &rs->sets[a->set];
		for (i = 0; i < set->n; i++)
			if (ref_prefix_contains(&set->prefixes[i], family, addr))
				return true;
		return false;
	}
	return false;
}

static bool ref_range_contains(const struct rule_range *r, uint16_t v)
{
	return !r->set || (v >= r->lo && v <= r->hi);
}

/* A packet has ports when it is TCP or UDP and not a non-first fragment. */
static bool ref_packet_has_ports(const struct packet *p)
{
	return !p->frag && (p->proto == REF_PROTO_TCP || p->proto == REF_PROTO_UDP);
}

/*
 * An ICMP packet is ICMP in IPv4 or ICMPv6 in IPv6; protocol 1 in IPv6 (or
 * 58 in IPv4) is some other protocol as far as `icmp TYPE/CODE` goes: it
 * still matches a rule for its protocol number, never one with an icmp field.
 */
static bool ref_packet_has_icmp(const struct packet *p)
{
	if (p->frag)
		return false;
	return (p->family == 4 && p->proto == REF_PROTO_ICMP) ||
	       (p->family == 6 && p->proto == REF_PROTO_ICMPV6);
}

bool reference_rule_matches(const struct ruleset *rs, const struct rule *r, const struct packet *p)
{
	/* PROTO: `all` or the protocol number */
	if (r->proto != RULE_PROTO_ALL && r->proto != p->proto)
		return false;

	/* a rule with IPv4 addresses matches IPv4 packets only, IPv6 likewise */
	if (r->family != 0 && r->family != p->family)
		return false;

	if (!ref_addr_matches(rs, &r->src, p->family, p->src))
		return false;
	if (!ref_addr_matches(rs, &r->dst, p->family, p->dst))
		return false;

	/* ports: only packets that carry them can match a rule that names them */
	if (r->sport.set || r->dport.set) {
		if (!ref_packet_has_ports(p))
			return false;
		if (!ref_range_contains(&r->sport, p->sport))
			return false;
		if (!ref_range_contains(&r->dport, p->dport))
			return false;
	}

	/* icmp TYPE[/CODE]: no code means any code */
	if (r->has_icmp) {
		if (!ref_packet_has_icmp(p))
			return false;
		if (p->icmp_type != r->icmp_type)
			return false;
		if (r->icmp_code != -1 && p->icmp_code != r->icmp_code)
			return false;
	}

	/* established: TCP with ACK or RST, so never a connection-opening SYN */
	if (r->established) {
		if (p->frag || p->proto != REF_PROTO_TCP)
			return false;
		if (!(p->tcp_flags & (PKT_TCP_ACK | PKT_TCP_RST)))
			return false;
	}
	return true;
}

/*
 * "Rules are tried in ascending number; the first whose every field
 * matches decides." Trying them in ascending order and stopping at the
 * first match picks the matching rule with the lowest number, which is what
 * this scan computes without sorting. Numbers are unique per direction (the
 * parser insists); should two be equal, the earlier in the file wins.
 */
int reference_nacl(const struct ruleset *rs, enum rule_dir dir, const struct packet *p,
		   const struct rule **winner)
{
	const struct rule *best = NULL;
	size_t i;

	if (winner)
		*winner = NULL;
	if (!reference_stage_on(rs, RULE_STAGE_NACL))
		return 1; /* a stage with no rule lines passes everything */

	for (i = 0; i < rs->nrules; i++) {
		const struct rule *r = &rs->rules[i];

		if (r->stage != RULE_STAGE_NACL || r->dir != dir)
			continue;
		if (best && r->number >= best->number)
			continue;
		if (reference_rule_matches(rs, r, p))
			best = r;
	}
	if (winner)
		*winner = best;
	if (!best)
		return 0; /* the implicit final deny */
	return best->action == RULE_ALLOW ? 1 : 0;
}

bool reference_is_ndp(const struct packet *p)
{
	return p->family == 6 && p->proto == REF_PROTO_ICMPV6 && !p->frag && p->icmp_type >= 133 &&
	       p->icmp_type <= 137;
}

const struct rule *reference_sg_rule(const struct ruleset *rs, enum rule_dir dir,
				     const struct packet *p)
{
	size_t i;

	for (i = 0; i < rs->nrules; i++) {
		const struct rule *r = &rs->rules[i];

		if (r->stage == RULE_STAGE_SG && r->dir == dir && reference_rule_matches(rs, r, p))
			return r;
	}
	return NULL;
}
