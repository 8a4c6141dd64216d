// SPDX-License-Identifier: GPL-2.0
/*
 * randgen.c - seeded random rule sets and packets for moat's tests (see
 * randgen.h). The generator decides how hard the datapath is pushed: rules
 * come from a small pool of nested prefixes so that most packets match
 * several rules at once, and packets sit on the edges of what the rules
 * draw, where an off-by-one in a compiler or a parser shows.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "randgen.h"

#define RG_PROTO_ICMP 1
#define RG_PROTO_TCP 6
#define RG_PROTO_UDP 17
#define RG_PROTO_ICMPV6 58

#define RG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the generator ---------------------------------------------------- */

void randgen_seed(struct randgen *g, uint64_t seed)
{
	g->state = seed;
}

uint64_t randgen_u64(struct randgen *g)
{
	uint64_t z = (g->state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint32_t randgen_below(struct randgen *g, uint32_t n)
{
	/* multiply-shift: the bias for n < 2^32 is far below what a test sees */
	return (uint32_t)(((randgen_u64(g) >> 32) * (uint64_t)n) >> 32);
}

uint32_t randgen_between(struct randgen *g, uint32_t lo, uint32_t hi)
{
	return lo + (uint32_t)(randgen_u64(g) % ((uint64_t)hi - lo + 1));
}

bool randgen_chance(struct randgen *g, unsigned int percent)
{
	return randgen_below(g, 100) < percent;
}

static uint32_t rg_pick(struct randgen *g, const uint32_t *v, size_t n)
{
	return v[randgen_below(g, n)];
}

/* ---- pools ------------------------------------------------------------- */

/*
 * A few anchor addresses and prefix lengths; a pool prefix is an anchor cut
 * to a length. Anchors share leading bits, so pool prefixes nest: /15 holds
 * /16 holds /24 holds /25 holds /32, across many rules.
 */
static const uint8_t rg_v4_anchors[][4] = {
	{ 198, 18, 0, 0 }, { 198, 18, 1, 5 },	{ 198, 18, 1, 200 },
	{ 198, 18, 2, 9 }, { 198, 19, 128, 1 }, { 198, 19, 255, 255 },
};
static const uint32_t rg_v4_lens[] = { 15, 16, 17, 20, 23, 24, 25, 28, 30, 31, 32 };

static const char *const rg_v6_anchor_text[] = {
	"fd00::",
	"fd00::1:5",
	"fd00:0:0:1::5",
	"fd00:0:0:1:8000::1",
	"fd12:3456:789a:1::9",
	"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
};
static uint8_t rg_v6_anchors[RG_ARRAY_SIZE(rg_v6_anchor_text)][16];
static const uint32_t rg_v6_lens[] = { 8, 16, 32, 48, 63, 64, 65, 96, 120, 127, 128 };

static const uint32_t rg_ports[] = { 0,	   1,	  22,	 53,	80,    443,   1023,  1024,  8080,
				     9000, 32767, 32768, 49151, 49152, 60999, 61000, 65534, 65535 };
static const uint32_t rg_icmp4_types[] = { 0, 3, 5, 8, 11, 12, 13 };
static const uint32_t rg_icmp6_types[] = { 1, 2, 3, 4, 128, 129, 133, 134, 135, 136, 137, 143 };
/* Protocols without ports or ICMP; 0 is IPv6 hop-by-hop, so IPv4 only. */
static const uint32_t rg_other_protos[] = { 0, 2, 4, 41, 47, 89, 103, 132, 255 };
static const uint8_t rg_tcp_flag_mixes[] = {
	PKT_TCP_SYN,
	PKT_TCP_SYN | PKT_TCP_ACK,
	PKT_TCP_ACK,
	PKT_TCP_PSH | PKT_TCP_ACK,
	PKT_TCP_FIN | PKT_TCP_ACK,
	PKT_TCP_RST,
	PKT_TCP_RST | PKT_TCP_ACK,
	PKT_TCP_FIN,
	0,
};

static void rg_pool_init(void)
{
	static bool done;
	size_t i;

	if (done)
		return;
	for (i = 0; i < RG_ARRAY_SIZE(rg_v6_anchor_text); i++)
		inet_pton(AF_INET6, rg_v6_anchor_text[i], rg_v6_anchors[i]);
	done = true;
}

static size_t rg_alen(int family)
{
	return family == 4 ? 4 : 16;
}

/*
 * IPv6 packets must not name an extension header as their protocol: the
 * datapath walks those, so the packet would not be what it says. ICMP goes
 * with its own family here; rg_packet_free() crosses them on purpose.
 */
static bool rg_proto_fits(int family, int proto)
{
	static const int v6_ext[] = { 0, 43, 44, 50, 51, 59, 60, 135, 139, 140, 253, 254 };
	size_t i;

	if (family == 4)
		return proto != RG_PROTO_ICMPV6;
	if (proto == RG_PROTO_ICMP)
		return false;
	for (i = 0; i < RG_ARRAY_SIZE(v6_ext); i++)
		if (proto == v6_ext[i])
			return false;
	return true;
}

static void rg_prefix_mask(struct rule_prefix *p)
{
	size_t alen = rg_alen(p->family), i;

	for (i = 0; i < alen; i++) {
		int keep = (int)p->len - (int)i * 8;

		if (keep <= 0)
			p->addr[i] = 0;
		else if (keep < 8)
			p->addr[i] &= (uint8_t)(0xff << (8 - keep));
	}
}

/*
 * A pool prefix; or, with probability @spread %, a long prefix anywhere in
 * 198.18.0.0/15 or fd00::/8, so big rule sets hold many distinct rules.
 */
static void rg_prefix_random(struct randgen *g, int family, unsigned int spread,
			     struct rule_prefix *p)
{
	size_t i;

	rg_pool_init();
	memset(p, 0, sizeof(*p));
	p->family = family;
	if (randgen_chance(g, spread)) {
		for (i = 0; i < rg_alen(family); i++)
			p->addr[i] = (uint8_t)randgen_below(g, 256);
		if (family == 4) {
			p->addr[0] = 198;
			p->addr[1] = 18 | (p->addr[1] & 1);
			p->len = (uint8_t)randgen_between(g, 24, 32);
		} else {
			p->addr[0] = 0xfd;
			p->len = (uint8_t)randgen_between(g, 56, 128);
		}
		rg_prefix_mask(p);
		return;
	}
	if (randgen_chance(g, 4)) {
		p->len = 0; /* 0.0.0.0/0, ::/0 */
		return;
	}
	if (family == 4) {
		memcpy(p->addr, rg_v4_anchors[randgen_below(g, RG_ARRAY_SIZE(rg_v4_anchors))], 4);
		p->len = rg_pick(g, rg_v4_lens, RG_ARRAY_SIZE(rg_v4_lens));
	} else {
		memcpy(p->addr, rg_v6_anchors[randgen_below(g, RG_ARRAY_SIZE(rg_v6_anchors))], 16);
		p->len = rg_pick(g, rg_v6_lens, RG_ARRAY_SIZE(rg_v6_lens));
	}
	rg_prefix_mask(p);
}

/* Add @delta (+1/-1) to a big-endian address, carrying across bytes. */
static void rg_addr_step(uint8_t *a, size_t alen, int delta)
{
	size_t i = alen;

	while (i-- > 0) {
		if (delta > 0) {
			if (++a[i] != 0)
				return;
		} else {
			if (a[i]-- != 0)
				return;
		}
	}
}

enum rg_where { RG_FIRST, RG_LAST, RG_INSIDE, RG_BEFORE, RG_AFTER };

/* An address relative to @p: its first or last, inside, or one outside. */
static void rg_addr_at(struct randgen *g, const struct rule_prefix *p, enum rg_where where,
		       uint8_t *out)
{
	size_t alen = rg_alen(p->family), i;

	memset(out, 0, 16);
	for (i = 0; i < alen; i++) {
		int keep = (int)p->len - (int)i * 8;
		uint8_t host = keep >= 8 ? 0 : keep <= 0 ? 0xff : (uint8_t)(0xff >> keep);
		uint8_t fill;

		if (where == RG_LAST || where == RG_AFTER)
			fill = 0xff;
		else if (where == RG_INSIDE)
			fill = (uint8_t)randgen_below(g, 256);
		else
			fill = 0;
		out[i] = (p->addr[i] & ~host) | (fill & host);
	}
	if (where == RG_BEFORE)
		rg_addr_step(out, alen, -1);
	else if (where == RG_AFTER)
		rg_addr_step(out, alen, +1);
}

static enum rg_where rg_where_inside(struct randgen *g)
{
	static const uint32_t w[] = { RG_FIRST, RG_LAST, RG_INSIDE, RG_INSIDE };

	return (enum rg_where)rg_pick(g, w, RG_ARRAY_SIZE(w));
}

static enum rg_where rg_where_any(struct randgen *g)
{
	return (enum rg_where)randgen_below(g, 5);
}

/* A random prefix of @family from set @s, or NULL if it has none. */
static const struct rule_prefix *rg_set_prefix(struct randgen *g, const struct rule_set *s,
					       int family)
{
	size_t i, n = 0, k;

	for (i = 0; i < s->n; i++)
		n += s->prefixes[i].family == family;
	if (!n)
		return NULL;
	k = randgen_below(g, n);
	for (i = 0; i < s->n; i++)
		if (s->prefixes[i].family == family && k-- == 0)
			return &s->prefixes[i];
	return NULL;
}

/* A prefix of @family that some rule of @rs names (directly or in a set). */
static const struct rule_prefix *rg_ruleset_prefix(struct randgen *g, const struct ruleset *rs,
						   int family)
{
	int tries;

	for (tries = 0; tries < 8 && rs->nrules; tries++) {
		const struct rule *r = &rs->rules[randgen_below(g, rs->nrules)];
		const struct rule_addr *a = randgen_chance(g, 50) ? &r->src : &r->dst;

		if (a->kind == RULE_ADDR_PREFIX && a->prefix.family == family)
			return &a->prefix;
		if (a->kind == RULE_ADDR_SET && a->set >= 0 && (size_t)a->set < rs->nsets) {
			const struct rule_prefix *p = rg_set_prefix(g, &rs->sets[a->set], family);

			if (p)
				return p;
		}
	}
	return NULL;
}

/* A packet address of @family, biased to the edges of the rules' prefixes. */
static void rg_addr_pick(struct randgen *g, const struct ruleset *rs, int family, uint8_t *out)
{
	const struct rule_prefix *rp;
	struct rule_prefix p;
	uint32_t k = randgen_below(g, 100);
	size_t i;

	rg_pool_init();
	memset(out, 0, 16);
	if (k < 50) {
		rp = rg_ruleset_prefix(g, rs, family);
		if (!rp) {
			rg_prefix_random(g, family, 0, &p);
			rp = &p;
		}
		rg_addr_at(g, rp, rg_where_any(g), out);
	} else if (k < 70) {
		if (family == 4)
			memcpy(out, rg_v4_anchors[randgen_below(g, RG_ARRAY_SIZE(rg_v4_anchors))],
			       4);
		else
			memcpy(out, rg_v6_anchors[randgen_below(g, RG_ARRAY_SIZE(rg_v6_anchors))],
			       16);
		if (randgen_chance(g, 40))
			rg_addr_step(out, rg_alen(family), randgen_chance(g, 50) ? 1 : -1);
	} else if (k < 88) {
		/* anywhere in 198.18.0.0/15 or fd00::/8 */
		for (i = 0; i < rg_alen(family); i++)
			out[i] = (uint8_t)randgen_below(g, 256);
		if (family == 4) {
			out[0] = 198;
			out[1] = 18 | (out[1] & 1);
		} else {
			out[0] = 0xfd;
		}
	} else {
		for (i = 0; i < rg_alen(family); i++)
			out[i] = (uint8_t)randgen_below(g, 256);
	}
}

static uint16_t rg_port_in(struct randgen *g, const struct rule_range *r)
{
	uint32_t k = randgen_below(g, 4);

	if (k == 0)
		return r->lo;
	if (k == 1)
		return r->hi;
	return (uint16_t)randgen_between(g, r->lo, r->hi);
}

/* A port, biased to the ends of the rules' ranges and one beyond. */
static uint16_t rg_port_pick(struct randgen *g, const struct ruleset *rs)
{
	int tries;

	if (randgen_chance(g, 55)) {
		for (tries = 0; tries < 8 && rs->nrules; tries++) {
			const struct rule *r = &rs->rules[randgen_below(g, rs->nrules)];
			const struct rule_range *pr = randgen_chance(g, 50) ? &r->sport : &r->dport;

			if (!pr->set)
				continue;
			switch (randgen_below(g, 5)) {
			case 0:
				return (uint16_t)(pr->lo - 1); /* 0 - 1 wraps to 65535 */
			case 1:
				return (uint16_t)(pr->hi + 1);
			default:
				return rg_port_in(g, pr);
			}
		}
	}
	if (randgen_chance(g, 70))
		return (uint16_t)rg_pick(g, rg_ports, RG_ARRAY_SIZE(rg_ports));
	return (uint16_t)randgen_below(g, 65536);
}

static uint8_t rg_tcp_flags(struct randgen *g)
{
	if (randgen_chance(g, 75))
		return rg_tcp_flag_mixes[randgen_below(g, sizeof(rg_tcp_flag_mixes))];
	return (uint8_t)randgen_below(g, 64);
}

/* ICMP type and code for @proto, often those an icmp rule names. */
static void rg_icmp_pick(struct randgen *g, const struct ruleset *rs, int proto, struct packet *p)
{
	int tries;

	if (randgen_chance(g, 55)) {
		for (tries = 0; tries < 8 && rs->nrules; tries++) {
			const struct rule *r = &rs->rules[randgen_below(g, rs->nrules)];

			if (!r->has_icmp || r->proto != proto)
				continue;
			p->icmp_type = r->icmp_type;
			if (r->icmp_code < 0)
				p->icmp_code = (int)randgen_below(g, 4);
			else
				p->icmp_code =
					(r->icmp_code + (int)randgen_below(g, 3) + 255) % 256;
			if (randgen_chance(g, 15))
				p->icmp_type =
					(p->icmp_type + (randgen_chance(g, 50) ? 1 : 255)) % 256;
			return;
		}
	}
	if (proto == RG_PROTO_ICMP)
		p->icmp_type = (int)rg_pick(g, rg_icmp4_types, RG_ARRAY_SIZE(rg_icmp4_types));
	else
		p->icmp_type = (int)rg_pick(g, rg_icmp6_types, RG_ARRAY_SIZE(rg_icmp6_types));
	p->icmp_code = randgen_chance(g, 70) ? 0 : (int)randgen_below(g, 16);
}

static int rg_proto_other(struct randgen *g, int family)
{
	int proto;

	do {
		if (randgen_chance(g, 80))
			proto = (int)rg_pick(g, rg_other_protos, RG_ARRAY_SIZE(rg_other_protos));
		else
			proto = (int)randgen_below(g, 256);
	} while (!rg_proto_fits(family, proto));
	return proto;
}

static int rg_proto_random(struct randgen *g, int family)
{
	uint32_t k = randgen_below(g, 100);

	if (k < 35)
		return RG_PROTO_TCP;
	if (k < 60)
		return RG_PROTO_UDP;
	if (k < 80)
		return family == 4 ? RG_PROTO_ICMP : RG_PROTO_ICMPV6;
	return rg_proto_other(g, family);
}

/* Fill the L4 fields of @p (proto and family already set) at random. */
static void rg_l4_random(struct randgen *g, const struct ruleset *rs, struct packet *p)
{
	p->sport = p->dport = 0;
	p->tcp_flags = 0;
	p->icmp_type = p->icmp_code = 0;
	if (p->proto == RG_PROTO_TCP || p->proto == RG_PROTO_UDP) {
		p->sport = rg_port_pick(g, rs);
		p->dport = rg_port_pick(g, rs);
		if (p->proto == RG_PROTO_TCP)
			p->tcp_flags = rg_tcp_flags(g);
	} else if (p->proto == RG_PROTO_ICMP || p->proto == RG_PROTO_ICMPV6) {
		rg_icmp_pick(g, rs, p->proto, p);
	}
}

static void rg_packet_free(struct randgen *g, const struct ruleset *rs, struct packet *p)
{
	const struct rule *r;

	memset(p, 0, sizeof(*p));
	p->family = randgen_chance(g, 55) ? 4 : 6;
	if (rs->nrules && randgen_chance(g, 25)) {
		/* a protocol some rule names, when it suits the family */
		r = &rs->rules[randgen_below(g, rs->nrules)];
		p->proto = r->proto;
		if (p->proto == RULE_PROTO_ALL || !rg_proto_fits(p->family, p->proto))
			p->proto = rg_proto_random(g, p->family);
	} else {
		p->proto = rg_proto_random(g, p->family);
	}
	/* now and then ICMP in the other family: not ICMP for an icmp field */
	if (randgen_chance(g, 2))
		p->proto = p->family == 4 ? RG_PROTO_ICMPV6 : RG_PROTO_ICMP;
	rg_addr_pick(g, rs, p->family, p->src);
	rg_addr_pick(g, rs, p->family, p->dst);
	rg_l4_random(g, rs, p);
	p->frag = randgen_chance(g, 8);
}

/* Can @a hold an address of @family? */
static bool rg_addr_allows(const struct ruleset *rs, const struct rule_addr *a, int family)
{
	size_t i;

	switch (a->kind) {
	case RULE_ADDR_ANY:
		return true;
	case RULE_ADDR_PREFIX:
		return a->prefix.family == family;
	case RULE_ADDR_SET:
		if (a->set < 0 || (size_t)a->set >= rs->nsets)
			return false;
		for (i = 0; i < rs->sets[a->set].n; i++)
			if (rs->sets[a->set].prefixes[i].family == family)
				return true;
		return false;
	}
	return false;
}

static void rg_addr_for(struct randgen *g, const struct ruleset *rs, const struct rule_addr *a,
			int family, uint8_t *out)
{
	const struct rule_prefix *p = NULL;

	if (a->kind == RULE_ADDR_PREFIX)
		p = &a->prefix;
	else if (a->kind == RULE_ADDR_SET)
		p = rg_set_prefix(g, &rs->sets[a->set], family);
	if (p)
		rg_addr_at(g, p, rg_where_inside(g), out);
	else
		rg_addr_pick(g, rs, family, out);
}

int randgen_packet_for_rule(struct randgen *g, const struct ruleset *rs, const struct rule *r,
			    struct packet *p)
{
	int fams[2], family = 0, i;
	bool l4_fields;

	memset(p, 0, sizeof(*p));
	fams[0] = randgen_chance(g, 50) ? 4 : 6;
	fams[1] = fams[0] == 4 ? 6 : 4;
	for (i = 0; i < 2 && !family; i++) {
		int f = fams[i];

		if (r->family && r->family != f)
			continue;
		if (r->proto != RULE_PROTO_ALL && !rg_proto_fits(f, r->proto))
			continue;
		if (rg_addr_allows(rs, &r->src, f) && rg_addr_allows(rs, &r->dst, f))
			family = f;
	}
	if (!family)
		return -ENOENT;

	p->family = family;
	p->proto = r->proto == RULE_PROTO_ALL ? rg_proto_random(g, family) : r->proto;
	rg_addr_for(g, rs, &r->src, family, p->src);
	rg_addr_for(g, rs, &r->dst, family, p->dst);
	rg_l4_random(g, rs, p);
	if (r->sport.set)
		p->sport = rg_port_in(g, &r->sport);
	if (r->dport.set)
		p->dport = rg_port_in(g, &r->dport);
	if (r->has_icmp) {
		p->icmp_type = r->icmp_type;
		p->icmp_code = r->icmp_code < 0 ? (int)randgen_below(g, 256) : r->icmp_code;
	}
	if (r->established && !(p->tcp_flags & (PKT_TCP_ACK | PKT_TCP_RST)))
		p->tcp_flags |= randgen_chance(g, 70) ? PKT_TCP_ACK : PKT_TCP_RST;
	l4_fields = r->sport.set || r->dport.set || r->has_icmp || r->established;
	p->frag = !l4_fields && randgen_chance(g, 15);
	return 0;
}

/* Move one field of a packet that matches @r just across one of @r's edges. */
static void rg_nudge(struct randgen *g, const struct ruleset *rs, const struct rule *r,
		     struct packet *p)
{
	const struct rule_addr *a;
	const struct rule_prefix *pf = NULL;
	const struct rule_range *pr;
	uint8_t *addr;

	switch (randgen_below(g, 8)) {
	case 0:
	case 1:
		a = randgen_chance(g, 50) ? &r->src : &r->dst;
		addr = a == &r->src ? p->src : p->dst;
		if (a->kind == RULE_ADDR_PREFIX && a->prefix.family == p->family)
			pf = &a->prefix;
		else if (a->kind == RULE_ADDR_SET)
			pf = rg_set_prefix(g, &rs->sets[a->set], p->family);
		if (pf)
			rg_addr_at(g, pf, rg_where_any(g), addr);
		else
			rg_addr_step(addr, rg_alen(p->family), randgen_chance(g, 50) ? 1 : -1);
		break;
	case 2:
	case 3:
		pr = randgen_chance(g, 50) ? &r->sport : &r->dport;
		if (p->proto != RG_PROTO_TCP && p->proto != RG_PROTO_UDP)
			break;
		if (pr->set) {
			uint16_t *port = pr == &r->sport ? &p->sport : &p->dport;

			*port = randgen_chance(g, 50) ? (uint16_t)(pr->lo - 1)
						      : (uint16_t)(pr->hi + 1);
		} else {
			p->dport = rg_port_pick(g, rs);
		}
		break;
	case 4:
		if (p->proto == RG_PROTO_ICMP || p->proto == RG_PROTO_ICMPV6) {
			if (randgen_chance(g, 50))
				p->icmp_code =
					(p->icmp_code + (randgen_chance(g, 50) ? 1 : 255)) % 256;
			else
				p->icmp_type =
					(p->icmp_type + (randgen_chance(g, 50) ? 1 : 255)) % 256;
		}
		break;
	case 5:
		p->tcp_flags = rg_tcp_flags(g);
		break;
	case 6:
		p->frag = !p->frag;
		break;
	default:
		p->proto = rg_proto_random(g, p->family);
		rg_l4_random(g, rs, p);
		break;
	}
}

void randgen_packet(struct randgen *g, const struct ruleset *rs, struct packet *p)
{
	const struct rule *r;

	if (rs->nrules && randgen_chance(g, 50)) {
		r = &rs->rules[randgen_below(g, rs->nrules)];
		if (!randgen_packet_for_rule(g, rs, r, p)) {
			if (randgen_chance(g, 60))
				rg_nudge(g, rs, r, p);
			return;
		}
	}
	rg_packet_free(g, rs, p);
}

/* ---- building rule sets -------------------------------------------------- */

struct rule *randgen_rule_append(struct ruleset *rs, enum rule_stage stage, enum rule_dir dir,
				 int number, enum rule_action action, int proto)
{
	struct rule *r;
	size_t i;

	if (rs->nrules == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 16;
		struct rule *v = realloc(rs->rules, cap * sizeof(*v));

		if (!v)
			return NULL;
		rs->rules = v;
		rs->cap = cap;
	}
	if (stage == RULE_STAGE_SG && number <= 0) {
		number = 1;
		for (i = 0; i < rs->nrules; i++)
			number += rs->rules[i].stage == RULE_STAGE_SG && rs->rules[i].dir == dir;
	}
	r = &rs->rules[rs->nrules++];
	memset(r, 0, sizeof(*r));
	r->stage = stage;
	r->dir = dir;
	r->number = number;
	r->action = stage == RULE_STAGE_SG ? RULE_ALLOW : action;
	r->proto = proto;
	r->src.set = r->dst.set = -1;
	r->icmp_code = -1;
	r->loc.line = (int)rs->nrules;
	rs->stage_on[stage] = true;
	return r;
}

int randgen_addr_parse(const char *text, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, text, addr) == 1)
		return 4;
	if (inet_pton(AF_INET6, text, addr) == 1)
		return 6;
	return -EINVAL;
}

int randgen_prefix_parse(const char *text, struct rule_prefix *p)
{
	char buf[64];
	const char *slash = strchr(text, '/');
	size_t n = slash ? (size_t)(slash - text) : strlen(text);
	int family;
	long len;
	char *end;

	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, text, n);
	buf[n] = '\0';
	memset(p, 0, sizeof(*p));
	family = randgen_addr_parse(buf, p->addr);
	if (family < 0)
		return family;
	len = family == 4 ? 32 : 128;
	if (slash) {
		long max = len;

		len = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1 || len < 0 || len > max)
			return -EINVAL;
	}
	p->family = family;
	p->len = (uint8_t)len;
	return 0;
}

int randgen_rule_addr(struct rule *r, bool dst, const char *cidr)
{
	struct rule_addr *a = dst ? &r->dst : &r->src;
	int err;

	err = randgen_prefix_parse(cidr, &a->prefix);
	if (err)
		return err;
	a->kind = RULE_ADDR_PREFIX;
	r->family = a->prefix.family;
	return 0;
}

static int rg_set_new(struct ruleset *rs, const char *name)
{
	struct rule_set *s;

	if (rs->nsets == rs->sets_cap) {
		size_t cap = rs->sets_cap ? rs->sets_cap * 2 : 4;
		struct rule_set *v = realloc(rs->sets, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		rs->sets = v;
		rs->sets_cap = cap;
	}
	s = &rs->sets[rs->nsets];
	memset(s, 0, sizeof(*s));
	s->name = strdup(name);
	if (!s->name)
		return -ENOMEM;
	return (int)rs->nsets++;
}

static int rg_set_add(struct rule_set *s, const struct rule_prefix *p)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4;
		struct rule_prefix *v = realloc(s->prefixes, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->prefixes = v;
		s->cap = cap;
	}
	s->prefixes[s->n++] = *p;
	return 0;
}

int randgen_set_append(struct ruleset *rs, const char *name, const char *const *cidrs, size_t n)
{
	struct rule_prefix p;
	size_t i;
	int idx, err;

	idx = rg_set_new(rs, name);
	if (idx < 0)
		return idx;
	for (i = 0; i < n; i++) {
		err = randgen_prefix_parse(cidrs[i], &p);
		if (!err)
			err = rg_set_add(&rs->sets[idx], &p);
		if (err)
			return err;
	}
	return idx;
}

/* ---- random rule sets ----------------------------------------------------- */

static void rg_range_random(struct randgen *g, struct rule_range *r)
{
	static const uint16_t fixed[][2] = { { 1024, 65535 },  { 0, 65535 },	 { 0, 1023 },
					     { 32768, 60999 }, { 49152, 65535 }, { 0, 0 },
					     { 65535, 65535 } };
	uint32_t a, b, k = randgen_below(g, 100);

	r->set = true;
	if (k < 35) {
		r->lo = r->hi = (uint16_t)rg_pick(g, rg_ports, RG_ARRAY_SIZE(rg_ports));
	} else if (k < 55) {
		k = randgen_below(g, RG_ARRAY_SIZE(fixed));
		r->lo = fixed[k][0];
		r->hi = fixed[k][1];
	} else {
		a = randgen_chance(g, 50) ? rg_pick(g, rg_ports, RG_ARRAY_SIZE(rg_ports))
					  : randgen_below(g, 65536);
		b = randgen_chance(g, 50) ? rg_pick(g, rg_ports, RG_ARRAY_SIZE(rg_ports))
					  : randgen_below(g, 65536);
		r->lo = (uint16_t)(a < b ? a : b);
		r->hi = (uint16_t)(a < b ? b : a);
	}
}

static int rg_rule_proto(struct randgen *g)
{
	uint32_t k = randgen_below(g, 100);

	if (k < 20)
		return RULE_PROTO_ALL;
	if (k < 45)
		return RG_PROTO_TCP;
	if (k < 65)
		return RG_PROTO_UDP;
	if (k < 75)
		return RG_PROTO_ICMP;
	if (k < 83)
		return RG_PROTO_ICMPV6;
	if (k < 95)
		return (int)rg_pick(g, rg_other_protos, RG_ARRAY_SIZE(rg_other_protos));
	return (int)randgen_below(g, 256);
}

/* src or dst of a rule of @family (0: no CIDR literal allowed). */
static void rg_rule_addr(struct randgen *g, const struct ruleset *rs, int family,
			 unsigned int spread, struct rule_addr *a)
{
	uint32_t k = randgen_below(g, 100);

	memset(a, 0, sizeof(*a));
	a->set = -1;
	if (rs->nsets && k < 18) {
		a->kind = RULE_ADDR_SET;
		a->set = (int)randgen_below(g, rs->nsets);
	} else if (family && k < 70) {
		a->kind = RULE_ADDR_PREFIX;
		rg_prefix_random(g, family, spread, &a->prefix);
	}
}

static void rg_icmp_random(struct randgen *g, struct rule *r)
{
	r->has_icmp = true;
	if (randgen_chance(g, 10))
		r->icmp_type = (int)randgen_below(g, 256);
	else if (r->proto == RG_PROTO_ICMP)
		r->icmp_type = (int)rg_pick(g, rg_icmp4_types, RG_ARRAY_SIZE(rg_icmp4_types));
	else
		r->icmp_type = (int)rg_pick(g, rg_icmp6_types, RG_ARRAY_SIZE(rg_icmp6_types));
	if (randgen_chance(g, 40))
		r->icmp_code = -1;
	else if (randgen_chance(g, 70))
		r->icmp_code = 0;
	else
		r->icmp_code = (int)randgen_below(g, 16);
}

/* Addresses and protocol of a rule; the family follows its CIDR literals. */
static void rg_rule_match(struct randgen *g, const struct ruleset *rs, struct rule *r,
			  unsigned int spread, bool sg_peer_only)
{
	uint32_t k = randgen_below(g, 100);
	int family = k < 40 ? 0 : k < 75 ? 4 : 6;

	if (sg_peer_only) {
		/* sg in: the peer is src; sg out: dst */
		rg_rule_addr(g, rs, family, spread, r->dir == RULE_DIR_IN ? &r->src : &r->dst);
	} else {
		rg_rule_addr(g, rs, family, spread, &r->src);
		rg_rule_addr(g, rs, family, spread, &r->dst);
	}
	if (r->src.kind != RULE_ADDR_PREFIX && r->dst.kind != RULE_ADDR_PREFIX)
		family = 0;
	r->family = family;
}

/* The share of long scattered prefixes: few in small sets, most in big ones. */
static unsigned int rg_spread(size_t nrules)
{
	return (unsigned int)(100 * nrules / (nrules + 64));
}

/* No address and no L4 field: early in a big set, it shadows much after it. */
static bool rg_rule_is_wide(const struct rule *r)
{
	return r->src.kind == RULE_ADDR_ANY && r->dst.kind == RULE_ADDR_ANY && !r->sport.set &&
	       !r->dport.set && !r->has_icmp && !r->established;
}

/* The fields of a NACL rule, past its number and action. */
static void rg_nacl_fields(struct randgen *g, const struct ruleset *rs, struct rule *r,
			   unsigned int spread)
{
	r->proto = rg_rule_proto(g);
	r->sport.set = r->dport.set = false;
	r->has_icmp = r->established = false;
	r->icmp_code = -1;
	rg_rule_match(g, rs, r, spread, false);
	if (r->proto == RG_PROTO_TCP || r->proto == RG_PROTO_UDP) {
		if (randgen_chance(g, 35))
			rg_range_random(g, &r->sport);
		if (randgen_chance(g, 50))
			rg_range_random(g, &r->dport);
		if (r->proto == RG_PROTO_TCP && randgen_chance(g, 30))
			r->established = true;
	} else if (r->proto == RG_PROTO_ICMP || r->proto == RG_PROTO_ICMPV6) {
		if (randgen_chance(g, 55))
			rg_icmp_random(g, r);
	}
}

static int rg_nacl_rule(struct randgen *g, struct ruleset *rs, enum rule_dir dir, int number,
			size_t nrules)
{
	enum rule_action action = randgen_chance(g, 55) ? RULE_ALLOW : RULE_DENY;
	struct rule *r = randgen_rule_append(rs, RULE_STAGE_NACL, dir, number, action, 0);
	unsigned int spread = rg_spread(nrules);
	int tries;

	if (!r)
		return -ENOMEM;
	/*
	 * Keep about a dozen wide rules per set whatever its size, so the
	 * rules of a big set stay reachable and packets reach deep into it.
	 */
	for (tries = 0; tries < 16; tries++) {
		rg_nacl_fields(g, rs, r, spread);
		if (!rg_rule_is_wide(r) || randgen_below(g, (uint32_t)nrules) < 12)
			break;
	}
	return 0;
}

int randgen_sg_rules(struct randgen *g, struct ruleset *rs, size_t n)
{
	struct rule *r;
	size_t i;

	for (i = 0; i < n; i++) {
		r = randgen_rule_append(rs, RULE_STAGE_SG,
					randgen_chance(g, 50) ? RULE_DIR_IN : RULE_DIR_OUT, 0,
					RULE_ALLOW, rg_rule_proto(g));
		if (!r)
			return -ENOMEM;
		rg_rule_match(g, rs, r, rg_spread(n), true);
		if ((r->proto == RG_PROTO_TCP || r->proto == RG_PROTO_UDP) && randgen_chance(g, 70))
			rg_range_random(g, &r->dport);
		else if ((r->proto == RG_PROTO_ICMP || r->proto == RG_PROTO_ICMPV6) &&
			 randgen_chance(g, 50))
			rg_icmp_random(g, r);
	}
	return 0;
}

/* A NACL number not yet used in its direction; @used has 32767 bits. */
static int rg_number(struct randgen *g, uint8_t *used, size_t nrules, int mode)
{
	uint32_t hi;
	int n;

	/* dense: numbers close together, so neighbours are often adjacent */
	hi = mode == 0 ? (uint32_t)(2 * nrules + 16) : RULE_NACL_NUMBER_MAX;
	if (hi > RULE_NACL_NUMBER_MAX)
		hi = RULE_NACL_NUMBER_MAX;
	do {
		if (randgen_chance(g, 2))
			n = randgen_chance(g, 50) ? RULE_NACL_NUMBER_MIN : RULE_NACL_NUMBER_MAX;
		else
			n = (int)randgen_between(g, RULE_NACL_NUMBER_MIN, hi);
	} while (used[n / 8] & (1u << (n % 8)));
	used[n / 8] |= (uint8_t)(1u << (n % 8));
	return n;
}

static int rg_sets(struct randgen *g, struct ruleset *rs, unsigned int max_sets,
		   unsigned int spread)
{
	struct rule_prefix p;
	unsigned int nsets, i, n, j;
	char name[16];
	int idx, err;

	nsets = max_sets ? randgen_below(g, max_sets + 1) : 0;
	for (i = 0; i < nsets; i++) {
		snprintf(name, sizeof(name), "set%u", i);
		idx = rg_set_new(rs, name);
		if (idx < 0)
			return idx;
		n = randgen_between(g, 1, 6);
		for (j = 0; j < n; j++) {
			rg_prefix_random(g, randgen_chance(g, 60) ? 4 : 6, spread, &p);
			err = rg_set_add(&rs->sets[idx], &p);
			if (err)
				return err;
		}
	}
	return 0;
}

int randgen_ruleset(struct randgen *g, const struct randgen_opts *o, struct ruleset *rs)
{
	uint8_t *used[2] = { NULL, NULL };
	size_t i, sg_count[2] = { 0, 0 };
	int mode, split, err = -ENOMEM;

	rule_settings_default(&rs->settings);
	rs->settings.pass_ndp = randgen_chance(g, 50);
	err = rg_sets(g, rs, o->max_sets, rg_spread(o->nacl_rules + o->sg_rules) / 2);
	if (err)
		goto out;

	err = -ENOMEM;
	used[0] = calloc(RULE_NACL_NUMBER_MAX / 8 + 1, 1);
	used[1] = calloc(RULE_NACL_NUMBER_MAX / 8 + 1, 1);
	if (!used[0] || !used[1])
		goto out;
	mode = (int)randgen_below(g, 2);
	/* now and then one direction has no rule: it must deny everything */
	split = (int)randgen_below(g, 12);
	for (i = 0; i < o->nacl_rules; i++) {
		enum rule_dir dir;

		if (split == 0)
			dir = RULE_DIR_IN;
		else if (split == 1)
			dir = RULE_DIR_OUT;
		else
			dir = randgen_chance(g, 50) ? RULE_DIR_IN : RULE_DIR_OUT;
		err = rg_nacl_rule(g, rs, dir, rg_number(g, used[dir], o->nacl_rules, mode),
				   o->nacl_rules);
		if (err)
			goto out;
	}
	err = randgen_sg_rules(g, rs, o->sg_rules);
	if (err)
		goto out;

	/* file order is not number order: shuffle, then number SG rules by it */
	for (i = rs->nrules; i > 1; i--) {
		size_t j = randgen_below(g, (uint32_t)i);
		struct rule t = rs->rules[i - 1];

		rs->rules[i - 1] = rs->rules[j];
		rs->rules[j] = t;
	}
	for (i = 0; i < rs->nrules; i++) {
		struct rule *r = &rs->rules[i];

		r->loc.line = (int)(rs->nsets + i + 1);
		if (r->stage == RULE_STAGE_SG)
			r->number = (int)++sg_count[r->dir];
	}
	rs->stage_on[RULE_STAGE_NACL] = o->nacl_rules > 0;
	rs->stage_on[RULE_STAGE_SG] = o->sg_rules > 0;
	err = 0;
out:
	free(used[0]);
	free(used[1]);
	return err;
}
