// SPDX-License-Identifier: GPL-2.0
/*
 * test_reference.c - the reference matcher (user/reference.c) against
 * hand-worked cases from CONTRACT §2/§3: the contract's own examples,
 * ascending-number order, fragments, `established`, ICMP with and without
 * a code, sets of mixed families, the family of a rule, port range edges,
 * stages off and on; also the frames packet_build_frame() writes, and the
 * random generator's promises (same seed, same output; valid rule sets;
 * witness packets match their rule).
 *
 * Rule sets are built by hand (tests/lib/randgen.h helpers), not parsed,
 * so these tests hold whatever the parser does.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "packet.h"
#include "randgen.h"
#include "reference.h"
#include "rules.h"

/* ---- helpers ------------------------------------------------------------ */

static struct rule *nacl(struct ruleset *rs, enum rule_dir dir, int number, enum rule_action a,
			 int proto)
{
	struct rule *r = randgen_rule_append(rs, RULE_STAGE_NACL, dir, number, a, proto);

	assert_non_null(r);
	return r;
}

static void src(struct rule *r, const char *cidr)
{
	assert_int_equal(randgen_rule_addr(r, false, cidr), 0);
}

static void dst(struct rule *r, const char *cidr)
{
	assert_int_equal(randgen_rule_addr(r, true, cidr), 0);
}

static void range(struct rule_range *rg, uint16_t lo, uint16_t hi)
{
	rg->set = true;
	rg->lo = lo;
	rg->hi = hi;
}

static void icmp(struct rule *r, int type, int code)
{
	r->has_icmp = true;
	r->icmp_type = type;
	r->icmp_code = code;
}

static struct packet pkt(int proto, const char *s, uint16_t sport, const char *d, uint16_t dport)
{
	struct packet p;
	uint8_t a[16];

	memset(&p, 0, sizeof(p));
	p.family = randgen_addr_parse(s, p.src);
	assert_true(p.family == 4 || p.family == 6);
	assert_int_equal(randgen_addr_parse(d, a), p.family);
	memcpy(p.dst, a, 16);
	p.proto = proto;
	p.sport = sport;
	p.dport = dport;
	if (proto == 6)
		p.tcp_flags = PKT_TCP_SYN;
	if (proto == 1)
		p.icmp_type = 8;
	if (proto == 58)
		p.icmp_type = 128;
	return p;
}

static struct packet icmp_pkt(int proto, const char *s, const char *d, int type, int code)
{
	struct packet p = pkt(proto, s, 0, d, 0);

	p.icmp_type = type;
	p.icmp_code = code;
	return p;
}

/*
 * The NACL verdict of @p and the number of the deciding rule (0 = none)
 * checked at once; a failure names the expectation.
 */
#define assert_nacl(rs, dir, p, want_allow, want_number)             \
	do {                                                         \
		const struct rule *w_ = (const struct rule *)1;      \
		int v_ = reference_nacl((rs), (dir), (p), &w_);      \
		assert_int_equal(v_, (want_allow));                  \
		if ((want_number) == 0) {                            \
			assert_null(w_);                             \
		} else {                                             \
			assert_non_null(w_);                         \
			assert_int_equal(w_->number, (want_number)); \
		}                                                    \
	} while (0)

static int setup(void **state)
{
	struct ruleset *rs = calloc(1, sizeof(*rs));

	if (!rs)
		return -1;
	ruleset_init(rs);
	*state = rs;
	return 0;
}

static int teardown(void **state)
{
	ruleset_free(*state);
	free(*state);
	return 0;
}

/* ---- the reference ------------------------------------------------------ */

/* CONTRACT §2's example, direction in. */
static void test_contract_example_in(void **state)
{
	static const char *const blocklist[] = { "203.0.113.0/24", "2001:db8:bad::/48" };
	struct ruleset *rs = *state;
	struct packet p;
	struct rule *r;
	int set;

	set = randgen_set_append(rs, "blocklist", blocklist, 2);
	assert_true(set >= 0);
	r = nacl(rs, RULE_DIR_IN, 100, RULE_ALLOW, 6);
	src(r, "198.18.1.0/24");
	range(&r->dport, 9000, 9000);
	r = nacl(rs, RULE_DIR_IN, 200, RULE_DENY, RULE_PROTO_ALL);
	r->src.kind = RULE_ADDR_SET;
	r->src.set = set;

	p = pkt(6, "198.18.1.7", 40000, "198.18.9.1", 9000);
	assert_nacl(rs, RULE_DIR_IN, &p, 1, 100);
	p.dport = 9001;
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 0); /* implicit final deny */
	p = pkt(17, "198.18.1.7", 40000, "198.18.9.1", 9000);
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 0);
	p = pkt(6, "203.0.113.255", 1, "198.18.9.1", 9000);
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 200);
	p = pkt(58, "2001:db8:bad:ffff::1", 0, "fd00::1", 0);
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 200);
	p = pkt(58, "2001:db8:bae::", 0, "fd00::1", 0);
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 0);
	/* the other direction has no rule while the stage is on: deny */
	p = pkt(6, "198.18.1.7", 40000, "198.18.9.1", 9000);
	assert_nacl(rs, RULE_DIR_OUT, &p, 0, 0);
}

/* CONTRACT §2's example, direction out: the return-traffic rule. */
static void test_contract_example_out(void **state)
{
	struct ruleset *rs = *state;
	struct packet p;
	struct rule *r;

	r = nacl(rs, RULE_DIR_OUT, 100, RULE_ALLOW, 6);
	dst(r, "198.18.1.0/24");
	range(&r->sport, 9000, 9000);
	range(&r->dport, 1024, 65535);
	r->established = true;
	r = nacl(rs, RULE_DIR_OUT, 110, RULE_ALLOW, 1);
	dst(r, "0.0.0.0/0");
	icmp(r, 8, 0);

	p = pkt(6, "198.18.9.1", 9000, "198.18.1.7", 40000);
	p.tcp_flags = PKT_TCP_SYN | PKT_TCP_ACK;
	assert_nacl(rs, RULE_DIR_OUT, &p, 1, 100);
	p.tcp_flags = PKT_TCP_SYN; /* opening a connection: not established */
	assert_nacl(rs, RULE_DIR_OUT, &p, 0, 0);
	p.tcp_flags = PKT_TCP_ACK;
	p.dport = 1023;
	assert_nacl(rs, RULE_DIR_OUT, &p, 0, 0);
	p.dport = 1024;
	assert_nacl(rs, RULE_DIR_OUT, &p, 1, 100);
	p.dport = 65535;
	assert_nacl(rs, RULE_DIR_OUT, &p, 1, 100);
	p = pkt(6, "198.18.9.1", 9000, "198.18.2.0", 40000);
	p.tcp_flags = PKT_TCP_ACK;
	assert_nacl(rs, RULE_DIR_OUT, &p, 0, 0);

	p = icmp_pkt(1, "198.18.9.1", "192.0.2.1", 8, 0);
	assert_nacl(rs, RULE_DIR_OUT, &p, 1, 110);
	p.icmp_code = 1;
	assert_nacl(rs, RULE_DIR_OUT, &p, 0, 0);
	p = icmp_pkt(1, "198.18.9.1", "192.0.2.1", 0, 0);
	assert_nacl(rs, RULE_DIR_OUT, &p, 0, 0);
	/* 0.0.0.0/0 is an IPv4 rule: an IPv6 echo is not its business */
	p = icmp_pkt(58, "fd00::1", "fd00::2", 128, 0);
	assert_nacl(rs, RULE_DIR_OUT, &p, 0, 0);
}

/* Ascending number decides, not file order; the lowest match wins. */
static void test_ascending_number(void **state)
{
	struct ruleset *rs = *state;
	struct packet p;

	nacl(rs, RULE_DIR_IN, 300, RULE_DENY, RULE_PROTO_ALL);
	nacl(rs, RULE_DIR_IN, 32766, RULE_ALLOW, RULE_PROTO_ALL);
	nacl(rs, RULE_DIR_IN, 100, RULE_ALLOW, 6);
	nacl(rs, RULE_DIR_IN, 1, RULE_DENY, 47);
	nacl(rs, RULE_DIR_OUT, 50, RULE_ALLOW, 17); /* other direction: never in */

	p = pkt(6, "198.18.0.1", 1, "198.18.0.2", 2);
	assert_nacl(rs, RULE_DIR_IN, &p, 1, 100);
	p = pkt(17, "198.18.0.1", 1, "198.18.0.2", 2);
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 300);
	assert_nacl(rs, RULE_DIR_OUT, &p, 1, 50);
	p = pkt(47, "fd00::1", 0, "fd00::2", 0);
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 1);
}

/* Non-first fragments: only rules without port, icmp or established fields. */
static void test_fragments(void **state)
{
	struct ruleset *rs = *state;
	struct packet p;
	struct rule *r;

	r = nacl(rs, RULE_DIR_IN, 10, RULE_DENY, 6);
	range(&r->dport, 0, 65535); /* every port, yet a fragment has none */
	r = nacl(rs, RULE_DIR_IN, 20, RULE_DENY, 6);
	range(&r->sport, 0, 65535);
	r = nacl(rs, RULE_DIR_IN, 30, RULE_DENY, 6);
	r->established = true;
	r = nacl(rs, RULE_DIR_IN, 40, RULE_DENY, 1);
	icmp(r, 8, -1);
	r = nacl(rs, RULE_DIR_IN, 50, RULE_ALLOW, 6);
	src(r, "198.18.0.0/15");
	r = nacl(rs, RULE_DIR_IN, 60, RULE_ALLOW, RULE_PROTO_ALL);

	p = pkt(6, "198.18.1.1", 80, "198.18.1.2", 80);
	p.tcp_flags = PKT_TCP_ACK;
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 10);
	p.frag = true;
	assert_nacl(rs, RULE_DIR_IN, &p, 1, 50);
	p = pkt(6, "fd00::1", 80, "fd00::2", 80);
	p.frag = true;
	assert_nacl(rs, RULE_DIR_IN, &p, 1, 60);
	p = icmp_pkt(1, "198.18.1.1", "198.18.1.2", 8, 0);
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 40);
	p.frag = true;
	assert_nacl(rs, RULE_DIR_IN, &p, 1, 60);
}

/* established: TCP with ACK or RST; never SYN alone, never UDP. */
static void test_established(void **state)
{
	static const struct {
		uint8_t flags;
		int match;
	} cases[] = {
		{ PKT_TCP_SYN, 0 },
		{ PKT_TCP_SYN | PKT_TCP_ACK, 1 },
		{ PKT_TCP_ACK, 1 },
		{ PKT_TCP_RST, 1 },
		{ PKT_TCP_FIN, 0 },
		{ PKT_TCP_FIN | PKT_TCP_ACK, 1 },
		{ PKT_TCP_PSH | PKT_TCP_URG, 0 },
		{ 0, 0 },
	};
	struct ruleset *rs = *state;
	struct packet p;
	struct rule *r;
	size_t i;

	r = nacl(rs, RULE_DIR_IN, 100, RULE_ALLOW, 6);
	r->established = true;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p = pkt(6, "198.18.1.1", 443, "198.18.1.2", 50000);
		p.tcp_flags = cases[i].flags;
		assert_nacl(rs, RULE_DIR_IN, &p, cases[i].match, cases[i].match ? 100 : 0);
	}
	p = pkt(17, "198.18.1.1", 443, "198.18.1.2", 50000);
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 0);
}

/* icmp TYPE matches every code; TYPE/CODE only that code. */
static void test_icmp_codes(void **state)
{
	struct ruleset *rs = *state;
	struct packet p;
	struct rule *r;

	r = nacl(rs, RULE_DIR_IN, 10, RULE_ALLOW, 1);
	icmp(r, 3, 1);
	r = nacl(rs, RULE_DIR_IN, 20, RULE_DENY, 1);
	icmp(r, 3, -1);
	r = nacl(rs, RULE_DIR_IN, 30, RULE_ALLOW, 58);
	icmp(r, 128, -1);
	r = nacl(rs, RULE_DIR_IN, 40, RULE_ALLOW, 58);
	icmp(r, 1, 4);

	p = icmp_pkt(1, "198.18.0.1", "198.18.0.2", 3, 1);
	assert_nacl(rs, RULE_DIR_IN, &p, 1, 10);
	p.icmp_code = 2;
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 20);
	p.icmp_code = 13;
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 20);
	p.icmp_code = 0;
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 20);
	p.icmp_type = 4;
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 0);
	p = icmp_pkt(58, "fd00::1", "fd00::2", 128, 255);
	assert_nacl(rs, RULE_DIR_IN, &p, 1, 30);
	p = icmp_pkt(58, "fd00::1", "fd00::2", 1, 4);
	assert_nacl(rs, RULE_DIR_IN, &p, 1, 40);
	p.icmp_code = 3;
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 0);
	/* ICMPv4 type 3 in an ICMPv6 packet is a different protocol */
	p = icmp_pkt(58, "fd00::1", "fd00::2", 3, 1);
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 0);
	/* protocol 1 in IPv6 is not ICMP: no type or code to match */
	p = icmp_pkt(1, "fd00::1", "fd00::2", 3, 1);
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 0);
	p = icmp_pkt(58, "198.18.0.1", "198.18.0.2", 128, 0);
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 0);
	nacl(rs, RULE_DIR_IN, 50, RULE_ALLOW, 58);
	assert_nacl(rs, RULE_DIR_IN, &p, 1, 50); /* ... yet protocol 58 it is */
}

/* A set of mixed families; addresses from either family match its own. */
static void test_sets(void **state)
{
	static const char *const mixed[] = { "198.18.1.0/24", "fd00::/8", "198.19.0.0/16" };
	static const char *const v4only[] = { "198.18.0.0/15" };
	struct ruleset *rs = *state;
	struct packet p;
	struct rule *r;
	int s1, s2;

	s1 = randgen_set_append(rs, "mixed", mixed, 3);
	s2 = randgen_set_append(rs, "v4only", v4only, 1);
	assert_true(s1 >= 0 && s2 >= 0);
	r = nacl(rs, RULE_DIR_IN, 10, RULE_ALLOW, RULE_PROTO_ALL);
	r->src.kind = RULE_ADDR_SET;
	r->src.set = s1;
	r = nacl(rs, RULE_DIR_IN, 20, RULE_DENY, RULE_PROTO_ALL);
	r->dst.kind = RULE_ADDR_SET;
	r->dst.set = s2;

	p = pkt(17, "198.18.1.255", 1, "10.0.0.1", 2);
	assert_nacl(rs, RULE_DIR_IN, &p, 1, 10);
	p = pkt(17, "198.18.2.0", 1, "10.0.0.1", 2);
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 0);
	p = pkt(17, "198.19.255.255", 1, "10.0.0.1", 2);
	assert_nacl(rs, RULE_DIR_IN, &p, 1, 10);
	p = pkt(17, "fdff:ffff::1", 1, "2001:db8::1", 2);
	assert_nacl(rs, RULE_DIR_IN, &p, 1, 10);
	p = pkt(17, "fe00::", 1, "2001:db8::1", 2);
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 0);
	p = pkt(17, "10.0.0.1", 1, "198.19.0.0", 2);
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 20);
	/* an IPv4-only set never matches an IPv6 packet */
	p = pkt(17, "2001:db8::1", 1, "::ffff:198.18.0.1", 2);
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 0);
}

/* A rule's family comes from its CIDRs; a rule without one matches both. */
static void test_families(void **state)
{
	struct ruleset *rs = *state;
	struct packet p4, p6;
	struct rule *r;

	r = nacl(rs, RULE_DIR_IN, 10, RULE_DENY, 17);
	src(r, "0.0.0.0/0");
	r = nacl(rs, RULE_DIR_IN, 20, RULE_ALLOW, 17);
	dst(r, "::/0");
	r = nacl(rs, RULE_DIR_IN, 30, RULE_DENY, RULE_PROTO_ALL);
	nacl(rs, RULE_DIR_OUT, 10, RULE_ALLOW, RULE_PROTO_ALL);

	p4 = pkt(17, "192.0.2.1", 53, "198.18.0.1", 53);
	p6 = pkt(17, "2001:db8::1", 53, "fd00::1", 53);
	assert_nacl(rs, RULE_DIR_IN, &p4, 0, 10);
	assert_nacl(rs, RULE_DIR_IN, &p6, 1, 20);
	p4.proto = p6.proto = 6;
	assert_nacl(rs, RULE_DIR_IN, &p4, 0, 30);
	assert_nacl(rs, RULE_DIR_IN, &p6, 0, 30);
	assert_nacl(rs, RULE_DIR_OUT, &p4, 1, 10);
	assert_nacl(rs, RULE_DIR_OUT, &p6, 1, 10);
}

/* Prefix lengths off byte boundaries and at their ends: /0 /25 /31 /63 /65 /128. */
static void test_prefix_edges(void **state)
{
	static const struct {
		const char *cidr, *addr;
		int match;
	} cases[] = {
		{ "198.18.1.128/25", "198.18.1.127", 0 },
		{ "198.18.1.128/25", "198.18.1.128", 1 },
		{ "198.18.1.128/25", "198.18.1.255", 1 },
		{ "198.18.1.128/25", "198.18.2.0", 0 },
		{ "198.18.1.4/31", "198.18.1.5", 1 },
		{ "198.18.1.4/31", "198.18.1.6", 0 },
		{ "198.18.1.5/32", "198.18.1.5", 1 },
		{ "198.18.1.5/32", "198.18.1.4", 0 },
		{ "198.18.0.0/15", "198.17.255.255", 0 },
		{ "198.18.0.0/15", "198.19.255.255", 1 },
		{ "0.0.0.0/0", "255.255.255.255", 1 },
		{ "fd00::/63", "fd00:0:0:1::", 1 },
		{ "fd00::/63", "fd00:0:0:2::", 0 },
		{ "fd00::/65", "fd00::7fff:ffff:ffff:ffff", 1 },
		{ "fd00::/65", "fd00::8000:0:0:0", 0 },
		{ "fd00::1/128", "fd00::1", 1 },
		{ "fd00::1/128", "fd00::", 0 },
		{ "::/0", "ffff::", 1 },
	};
	struct ruleset *rs = *state;
	struct packet p;
	struct rule *r;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ruleset_free(rs);
		ruleset_init(rs);
		r = nacl(rs, RULE_DIR_IN, 1, RULE_ALLOW, RULE_PROTO_ALL);
		src(r, cases[i].cidr);
		p = pkt(17, cases[i].addr, 1, cases[i].addr, 1);
		print_message("%s contains %s: %d\n", cases[i].cidr, cases[i].addr, cases[i].match);
		assert_nacl(rs, RULE_DIR_IN, &p, cases[i].match, cases[i].match ? 1 : 0);
	}
}

/* Port ranges are inclusive; packets without ports never match them. */
static void test_ports(void **state)
{
	struct ruleset *rs = *state;
	struct packet p;
	struct rule *r;

	r = nacl(rs, RULE_DIR_IN, 10, RULE_ALLOW, 17);
	range(&r->sport, 0, 0);
	r = nacl(rs, RULE_DIR_IN, 20, RULE_ALLOW, 17);
	range(&r->dport, 65535, 65535);
	r = nacl(rs, RULE_DIR_IN, 30, RULE_DENY, 6);
	range(&r->sport, 1024, 2047);
	range(&r->dport, 80, 80);

	p = pkt(17, "198.18.0.1", 0, "198.18.0.2", 7);
	assert_nacl(rs, RULE_DIR_IN, &p, 1, 10);
	p.sport = 1;
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 0);
	p.dport = 65535;
	assert_nacl(rs, RULE_DIR_IN, &p, 1, 20);
	p.dport = 65534;
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 0);
	p = pkt(6, "198.18.0.1", 1024, "198.18.0.2", 80);
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 30);
	p.sport = 2047;
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 30);
	p.sport = 2048;
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 0);
	p.sport = 1023;
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 0);
	p.sport = 1500;
	p.dport = 81;
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 0);
}

/* A protocol number matches that protocol only; `all` matches everything. */
static void test_protocols(void **state)
{
	struct ruleset *rs = *state;
	struct packet p;

	nacl(rs, RULE_DIR_IN, 10, RULE_ALLOW, 47);
	nacl(rs, RULE_DIR_IN, 20, RULE_DENY, 132);
	nacl(rs, RULE_DIR_IN, 30, RULE_ALLOW, 0);

	p = pkt(47, "198.18.0.1", 0, "198.18.0.2", 0);
	assert_nacl(rs, RULE_DIR_IN, &p, 1, 10);
	p.proto = 132;
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 20);
	p.proto = 0;
	assert_nacl(rs, RULE_DIR_IN, &p, 1, 30);
	p.proto = 6;
	assert_nacl(rs, RULE_DIR_IN, &p, 0, 0);
}

/* No NACL rule line: the stage is off and passes everything. */
static void test_stage_off(void **state)
{
	struct ruleset *rs = *state;
	const struct rule *w = (const struct rule *)1;
	struct packet p = pkt(6, "198.18.0.1", 1, "198.18.0.2", 2);
	struct rule *r;

	assert_false(reference_stage_on(rs, RULE_STAGE_NACL));
	assert_int_equal(reference_nacl(rs, RULE_DIR_IN, &p, &w), 1);
	assert_null(w);
	assert_int_equal(reference_nacl(rs, RULE_DIR_OUT, &p, NULL), 1);

	/* SG rules alone leave NACL off */
	r = randgen_rule_append(rs, RULE_STAGE_SG, RULE_DIR_IN, 0, RULE_ALLOW, 6);
	assert_non_null(r);
	assert_true(reference_stage_on(rs, RULE_STAGE_SG));
	assert_false(reference_stage_on(rs, RULE_STAGE_NACL));
	assert_int_equal(reference_nacl(rs, RULE_DIR_IN, &p, &w), 1);
	assert_null(w);
}

/* SG: the first matching rule of the direction, in file order. */
static void test_sg_rule(void **state)
{
	struct ruleset *rs = *state;
	struct packet p;
	struct rule *r;

	r = randgen_rule_append(rs, RULE_STAGE_SG, RULE_DIR_IN, 0, RULE_ALLOW, 6);
	range(&r->dport, 443, 443);
	src(r, "198.18.0.0/16");
	r = randgen_rule_append(rs, RULE_STAGE_SG, RULE_DIR_OUT, 0, RULE_ALLOW, RULE_PROTO_ALL);
	r = randgen_rule_append(rs, RULE_STAGE_SG, RULE_DIR_IN, 0, RULE_ALLOW, 6);
	range(&r->dport, 400, 500);
	nacl(rs, RULE_DIR_IN, 1, RULE_ALLOW, RULE_PROTO_ALL);

	p = pkt(6, "198.18.7.7", 50000, "198.18.0.1", 443);
	r = (struct rule *)reference_sg_rule(rs, RULE_DIR_IN, &p);
	assert_non_null(r);
	assert_int_equal(r->number, 1);
	p = pkt(6, "198.19.7.7", 50000, "198.18.0.1", 443);
	r = (struct rule *)reference_sg_rule(rs, RULE_DIR_IN, &p);
	assert_non_null(r);
	assert_int_equal(r->number, 2);
	p.dport = 501;
	assert_null(reference_sg_rule(rs, RULE_DIR_IN, &p));
	r = (struct rule *)reference_sg_rule(rs, RULE_DIR_OUT, &p);
	assert_non_null(r);
	assert_int_equal(r->number, 1);
	assert_int_equal(r->dir, RULE_DIR_OUT);
}

static void test_ndp(void **state)
{
	struct packet p = icmp_pkt(58, "fe80::1", "ff02::1", 135, 0);

	assert_true(reference_is_ndp(&p));
	p.icmp_type = 137;
	assert_true(reference_is_ndp(&p));
	p.icmp_type = 138;
	assert_false(reference_is_ndp(&p));
	p.icmp_type = 133;
	p.frag = true;
	assert_false(reference_is_ndp(&p));
	p = icmp_pkt(1, "198.18.0.1", "198.18.0.2", 135, 0);
	assert_false(reference_is_ndp(&p));
}

/* ---- frames ---------------------------------------------------------------- */

static uint16_t be16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

static uint16_t csum(const uint8_t *b, size_t n, uint32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += be16(b + i);
	if (n & 1)
		sum += (uint32_t)b[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t pseudo(const uint8_t *ip, int family, int proto, size_t len)
{
	uint32_t sum = 0;
	size_t i, off = family == 4 ? 12 : 8, alen = family == 4 ? 8 : 32;

	for (i = 0; i < alen; i += 2)
		sum += be16(ip + off + i);
	return sum + (uint32_t)proto + (uint32_t)len;
}

static void test_frame_tcp4(void **state)
{
	struct packet p = pkt(6, "198.18.1.5", 40000, "198.18.2.9", 443);
	uint8_t f[256];
	int n;

	p.tcp_flags = PKT_TCP_SYN | PKT_TCP_ACK;
	n = packet_build_frame(&p, f, sizeof(f));
	assert_true(n > 14 + 20 + 20);
	assert_int_equal(be16(f + 12), 0x0800);
	assert_int_equal(f[0], 0x02);
	assert_int_equal(f[5], 0x02);
	assert_int_equal(f[11], 0x01);
	assert_int_equal(f[14], 0x45);
	assert_int_equal(be16(f + 16), n - 14); /* total length */
	assert_int_equal(be16(f + 20) & 0x1fff, 0);
	assert_int_equal(f[22], 64);
	assert_int_equal(f[23], 6);
	assert_int_equal(csum(f + 14, 20, 0), 0);
	assert_memory_equal(f + 26, p.src, 4);
	assert_memory_equal(f + 30, p.dst, 4);
	assert_int_equal(be16(f + 34), 40000);
	assert_int_equal(be16(f + 36), 443);
	assert_int_equal(f[46] >> 4, 5);
	assert_int_equal(f[47], PKT_TCP_SYN | PKT_TCP_ACK);
	assert_int_equal(csum(f + 34, n - 34, pseudo(f + 14, 4, 6, n - 34)), 0);

	assert_int_equal(packet_build_frame(&p, f, n), n);
	assert_int_equal(packet_build_frame(&p, f, n - 1), -ENOSPC);
	p.family = 5;
	assert_int_equal(packet_build_frame(&p, f, sizeof(f)), -EINVAL);
}

static void test_frame_frag4(void **state)
{
	struct packet p = pkt(6, "198.18.1.5", 40000, "198.18.2.9", 443);
	uint8_t f[256];
	int n;

	p.frag = true;
	n = packet_build_frame(&p, f, sizeof(f));
	assert_true(n > 14 + 20 && n < 14 + 20 + 20); /* a payload, no TCP header */
	assert_int_equal(be16(f + 16), n - 14);
	assert_int_not_equal(be16(f + 20) & 0x1fff, 0);
	assert_int_equal(f[23], 6);
	assert_int_equal(csum(f + 14, 20, 0), 0);
}

static void test_frame_udp6_frag6(void **state)
{
	struct packet p = pkt(17, "fd00::1", 53, "fd00:0:0:1::5", 5353);
	uint8_t f[256];
	int n, whole;

	n = whole = packet_build_frame(&p, f, sizeof(f));
	assert_true(n > 14 + 40 + 8);
	assert_int_equal(be16(f + 12), 0x86dd);
	assert_int_equal(f[14] >> 4, 6);
	assert_int_equal(be16(f + 18), n - 54); /* payload length */
	assert_int_equal(f[20], 17);
	assert_int_equal(f[21], 64);
	assert_memory_equal(f + 22, p.src, 16);
	assert_memory_equal(f + 38, p.dst, 16);
	assert_int_equal(be16(f + 54), 53);
	assert_int_equal(be16(f + 56), 5353);
	assert_int_equal(be16(f + 58), n - 54); /* UDP length */
	assert_int_equal(csum(f + 54, n - 54, pseudo(f + 14, 6, 17, n - 54)), 0);

	p.frag = true;
	n = packet_build_frame(&p, f, sizeof(f));
	assert_int_equal(f[20], 44); /* a Fragment header */
	assert_int_equal(be16(f + 18), n - 54);
	assert_int_equal(f[54], 17); /* ... naming UDP */
	assert_int_not_equal(be16(f + 56) >> 3, 0);
	assert_int_equal(n, whole + 8 - 8); /* a Fragment header, no UDP header */
}

static void test_frame_icmp(void **state)
{
	struct packet p = icmp_pkt(1, "198.18.1.5", "198.18.2.9", 8, 0);
	uint8_t f[256];
	int n;

	n = packet_build_frame(&p, f, sizeof(f));
	assert_int_equal(f[23], 1);
	assert_int_equal(f[34], 8);
	assert_int_equal(f[35], 0);
	assert_int_equal(csum(f + 34, n - 34, 0), 0);

	/* an error quotes an IPv4 header + 8 bytes: from dst back to src */
	p.icmp_type = 3;
	p.icmp_code = 3;
	n = packet_build_frame(&p, f, sizeof(f));
	assert_true(n >= 14 + 20 + 8 + 20 + 8);
	assert_int_equal(f[42], 0x45);
	assert_int_equal(f[42 + 9], 17);
	assert_memory_equal(f + 42 + 12, p.dst, 4);
	assert_memory_equal(f + 42 + 16, p.src, 4);
	assert_int_equal(csum(f + 42, 20, 0), 0);
	assert_int_equal(csum(f + 34, n - 34, 0), 0);

	p = icmp_pkt(58, "fd00::1", "fd00::2", 1, 4);
	n = packet_build_frame(&p, f, sizeof(f));
	assert_int_equal(f[20], 58);
	assert_int_equal(f[54], 1);
	assert_int_equal(f[55], 4);
	assert_int_equal(f[62] >> 4, 6);
	assert_int_equal(csum(f + 54, n - 54, pseudo(f + 14, 6, 58, n - 54)), 0);
}

static void test_frame_other(void **state)
{
	struct packet p = pkt(47, "198.18.1.5", 0, "198.18.2.9", 0);
	uint8_t f[256];
	int n;

	n = packet_build_frame(&p, f, sizeof(f));
	assert_true(n > 34);
	assert_int_equal(f[23], 47);
	assert_int_equal(be16(f + 16), n - 14);
}

/* ---- the generator --------------------------------------------------------- */

static void gen(uint64_t seed, size_t nrules, struct ruleset *rs)
{
	struct randgen_opts o = { .nacl_rules = nrules, .sg_rules = nrules / 4, .max_sets = 4 };
	struct randgen g;

	randgen_seed(&g, seed);
	ruleset_init(rs);
	assert_int_equal(randgen_ruleset(&g, &o, rs), 0);
}

static void test_randgen_deterministic(void **state)
{
	struct ruleset a, b;
	struct randgen ga, gb;
	struct packet pa, pb;
	size_t i;

	gen(42, 200, &a);
	gen(42, 200, &b);
	assert_int_equal(a.nrules, b.nrules);
	assert_int_equal(a.nsets, b.nsets);
	for (i = 0; i < a.nrules; i++) {
		char la[512], lb[512];

		assert_int_equal(rule_format(&a.rules[i], &a, la, sizeof(la)), 0);
		assert_int_equal(rule_format(&b.rules[i], &b, lb, sizeof(lb)), 0);
		assert_string_equal(la, lb);
	}
	randgen_seed(&ga, 7);
	randgen_seed(&gb, 7);
	for (i = 0; i < 1000; i++) {
		randgen_packet(&ga, &a, &pa);
		randgen_packet(&gb, &b, &pb);
		assert_memory_equal(&pa, &pb, sizeof(pa));
	}
	ruleset_free(&a);
	ruleset_free(&b);
}

/* What the generator makes is a rule set the parser would have accepted. */
static void test_randgen_valid(void **state)
{
	uint64_t seed;

	for (seed = 1; seed <= 40; seed++) {
		static uint8_t used[2][RULE_NACL_NUMBER_MAX + 1];
		struct ruleset rs;
		size_t i, nacl = 0, sg[2] = { 0, 0 };

		memset(used, 0, sizeof(used));
		gen(seed, seed * 37 % 500 + 1, &rs);
		for (i = 0; i < rs.nrules; i++) {
			const struct rule *r = &rs.rules[i];
			bool ports = r->sport.set || r->dport.set;
			int fam = 0;

			if (r->stage == RULE_STAGE_NACL) {
				nacl++;
				assert_in_range(r->number, RULE_NACL_NUMBER_MIN,
						RULE_NACL_NUMBER_MAX);
				assert_int_equal(used[r->dir][r->number], 0);
				used[r->dir][r->number] = 1;
			} else {
				assert_int_equal(r->number, (int)++sg[r->dir]);
				assert_int_equal(r->action, RULE_ALLOW);
			}
			assert_true(r->proto == RULE_PROTO_ALL ||
				    (r->proto >= 0 && r->proto <= 255));
			assert_true(!ports || r->proto == 6 || r->proto == 17);
			assert_true(!r->sport.set || r->sport.lo <= r->sport.hi);
			assert_true(!r->dport.set || r->dport.lo <= r->dport.hi);
			assert_true(!r->has_icmp || r->proto == 1 || r->proto == 58);
			assert_true(!r->established || r->proto == 6);
			if (r->src.kind == RULE_ADDR_PREFIX)
				fam = r->src.prefix.family;
			if (r->dst.kind == RULE_ADDR_PREFIX) {
				assert_true(!fam || fam == r->dst.prefix.family);
				fam = r->dst.prefix.family;
			}
			assert_int_equal(r->family, fam);
			if (r->src.kind == RULE_ADDR_SET)
				assert_in_range(r->src.set, 0, rs.nsets - 1);
			if (r->dst.kind == RULE_ADDR_SET)
				assert_in_range(r->dst.set, 0, rs.nsets - 1);
		}
		assert_int_equal(nacl, seed * 37 % 500 + 1);
		assert_true(rs.stage_on[RULE_STAGE_NACL]);
		ruleset_free(&rs);
	}
}

/* A witness packet matches its rule; the reference agrees, and it frames. */
static void test_randgen_witness(void **state)
{
	struct ruleset rs;
	struct randgen g;
	struct packet p;
	uint8_t f[256];
	size_t i, found = 0;

	gen(99, 1000, &rs);
	randgen_seed(&g, 5);
	for (i = 0; i < rs.nrules; i++) {
		if (randgen_packet_for_rule(&g, &rs, &rs.rules[i], &p))
			continue;
		found++;
		assert_true(reference_rule_matches(&rs, &rs.rules[i], &p));
		assert_true(packet_build_frame(&p, f, sizeof(f)) > 0);
	}
	assert_true(found > rs.nrules * 9 / 10);
	for (i = 0; i < 20000; i++) {
		randgen_packet(&g, &rs, &p);
		assert_true(p.family == 4 || p.family == 6);
		assert_true(packet_build_frame(&p, f, sizeof(f)) > 0);
	}
	ruleset_free(&rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_contract_example_in, setup, teardown),
		cmocka_unit_test_setup_teardown(test_contract_example_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ascending_number, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fragments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_established, setup, teardown),
		cmocka_unit_test_setup_teardown(test_icmp_codes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_families, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefix_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_protocols, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stage_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sg_rule, setup, teardown),
		cmocka_unit_test(test_ndp),
		cmocka_unit_test(test_frame_tcp4),
		cmocka_unit_test(test_frame_frag4),
		cmocka_unit_test(test_frame_udp6_frag6),
		cmocka_unit_test(test_frame_icmp),
		cmocka_unit_test(test_frame_other),
		cmocka_unit_test(test_randgen_deterministic),
		cmocka_unit_test(test_randgen_valid),
		cmocka_unit_test(test_randgen_witness),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
