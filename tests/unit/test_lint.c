// SPDX-License-Identifier: GPL-2.0
/*
 * test_lint.c - `moat lint`'s analysis (user/lint.c), checked against the
 * reference matcher (user/reference.c), which shares no code with it.
 *
 * Each hand-written case is a small rule file from the contract or the
 * users' questions: the source-port-9000 hole and its fix, a forgotten
 * ephemeral range, shadowing through sets and unions, a partial override,
 * a direction that denies everything, an exposed SSH port. Then random
 * rule sets: every witness lint prints must do what its finding says, and
 * no packet may ever be decided by a rule lint calls shadowed. Last, the
 * time a 4,096-rule file takes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "lint.h"
#include "randgen.h"
#include "reference.h"

/* ---- helpers ---------------------------------------------------------- */

static void parse(const char *text, struct ruleset *rs)
{
	struct diags d;
	int rc;

	ruleset_init(rs);
	diags_init(&d);
	rc = rules_parse_text("test.rules", text, strlen(text), rs, &d);
	if (rc)
		diags_print(&d, stderr);
	assert_int_equal(rc, 0);
	diags_free(&d);
}

static void lint(const struct ruleset *rs, struct lint_result *res)
{
	struct lint_opts o;

	lint_opts_default(&o);
	assert_int_equal(lint_run(rs, &o, res), 0);
}

/* The @nth finding of @kind, or NULL. */
static const struct lint_finding *find(const struct lint_result *res, const char *kind, int nth)
{
	size_t i;

	for (i = 0; i < res->n; i++)
		if (!strcmp(res->v[i].kind, kind) && nth-- == 0)
			return &res->v[i];
	return NULL;
}

static size_t count(const struct lint_result *res, const char *kind)
{
	size_t i, n = 0;

	for (i = 0; i < res->n; i++)
		n += !strcmp(res->v[i].kind, kind);
	return n;
}

static bool refs_number(const struct lint_finding *f, enum rule_dir dir, int number)
{
	size_t i;

	for (i = 0; i < f->nrefs; i++)
		if (f->refs[i].stage == RULE_STAGE_NACL && f->refs[i].dir == dir &&
		    f->refs[i].number == number)
			return true;
	return false;
}

static const struct rule *nacl_rule(const struct ruleset *rs, enum rule_dir dir, int number)
{
	size_t i;

	for (i = 0; i < rs->nrules; i++)
		if (rs->rules[i].stage == RULE_STAGE_NACL && rs->rules[i].dir == dir &&
		    rs->rules[i].number == number)
			return &rs->rules[i];
	return NULL;
}

static const struct lint_rule_info *info_of(const struct lint_result *res, const struct ruleset *rs,
					    enum rule_dir dir, int number)
{
	const struct rule *r = nacl_rule(rs, dir, number);

	assert_non_null(r);
	return &res->rules[r - rs->rules];
}

static int addr_cmp(int family, const uint8_t *a, const uint8_t *b)
{
	return memcmp(a, b, family == 4 ? 4 : 16);
}

/* Is the opener of a witness pair inside span @s (the finding's region)? */
static bool span_holds(const struct lint_span *s, const struct packet *p)
{
	const uint8_t *peer = s->dir == RULE_DIR_IN ? p->src : p->dst;
	const uint8_t *local = s->dir == RULE_DIR_IN ? p->dst : p->src;
	uint16_t pport = s->dir == RULE_DIR_IN ? p->sport : p->dport;
	uint16_t lport = s->dir == RULE_DIR_IN ? p->dport : p->sport;

	if (p->family != s->family || p->proto != s->proto)
		return false;
	if (addr_cmp(s->family, peer, s->peer_lo) < 0 || addr_cmp(s->family, peer, s->peer_hi) > 0)
		return false;
	if (addr_cmp(s->family, local, s->local_lo) < 0 ||
	    addr_cmp(s->family, local, s->local_hi) > 0)
		return false;
	if (!s->has_ports)
		return true;
	return pport >= s->peer_port_lo && pport <= s->peer_port_hi && lport >= s->local_port_lo &&
	       lport <= s->local_port_hi;
}

static bool nacl_passes(const struct ruleset *rs, enum rule_dir dir, const struct packet *p)
{
	return reference_nacl(rs, dir, p, NULL) == 1;
}

/* A packet that opens a flow passes the SG only by a rule (no conntrack yet). */
static bool sg_opens(const struct ruleset *rs, enum rule_dir dir, const struct packet *p)
{
	return !rs->stage_on[RULE_STAGE_SG] || reference_sg_rule(rs, dir, p);
}

static void v4addr(const char *text, uint8_t *out)
{
	memset(out, 0, 16);
	assert_int_equal(inet_pton(AF_INET, text, out), 1);
}

/* ---- the stateless hole (USERS.md 1, CONTRACT §4) --------------------- */

static const char canonical[] = "nacl out 100 allow tcp dst 198.18.1.0/24 dport 9000\n"
				"nacl in  100 allow tcp src 198.18.1.0/24 dport 1024-65535\n";

static void test_hole_canonical(void **state)
{
	const struct lint_finding *f;
	const struct packet *syn, *synack;
	struct lint_result res;
	struct ruleset rs;
	uint8_t lo[16], hi[16];
	size_t i;

	(void)state;
	parse(canonical, &rs);
	lint(&rs, &res);
	assert_true(res.warnings >= 1); /* `moat lint` exits 1 */
	f = find(&res, LINT_KIND_CONNECTION_HOLE, 0);
	assert_non_null(f);
	assert_int_equal(f->sev, LINT_SEV_WARNING);
	assert_true(refs_number(f, RULE_DIR_IN, 100));
	assert_true(refs_number(f, RULE_DIR_OUT, 100));
	assert_non_null(f->fix);
	assert_non_null(strstr(f->fix, "established"));

	/* the region: 198.18.1.0/24, source port 9000, local ports 1024-65535 */
	assert_int_equal(f->nspans, 1);
	assert_int_equal(f->spans[0].dir, RULE_DIR_IN);
	assert_int_equal(f->spans[0].proto, 6);
	v4addr("198.18.1.0", lo);
	v4addr("198.18.1.255", hi);
	assert_memory_equal(f->spans[0].peer_lo, lo, 4);
	assert_memory_equal(f->spans[0].peer_hi, hi, 4);
	assert_int_equal(f->spans[0].peer_port_lo, 9000);
	assert_int_equal(f->spans[0].peer_port_hi, 9000);
	assert_int_equal(f->spans[0].local_port_lo, 1024);
	assert_int_equal(f->spans[0].local_port_hi, 65535);

	/* the witness pair: a SYN in, its SYN-ACK out, values inside the region */
	assert_int_equal(f->nwitness, 2);
	syn = &f->witness[0].pkt;
	synack = &f->witness[1].pkt;
	assert_int_equal(f->witness[0].dir, RULE_DIR_IN);
	assert_int_equal(f->witness[1].dir, RULE_DIR_OUT);
	assert_int_equal(syn->proto, 6);
	assert_int_equal(syn->tcp_flags, PKT_TCP_SYN);
	assert_int_equal(synack->tcp_flags, PKT_TCP_SYN | PKT_TCP_ACK);
	assert_int_equal(syn->sport, 9000);
	assert_true(syn->dport >= 1024);
	assert_true(span_holds(&f->spans[0], syn));
	assert_memory_equal(synack->src, syn->dst, 4);
	assert_memory_equal(synack->dst, syn->src, 4);
	assert_int_equal(synack->sport, syn->dport);
	assert_int_equal(synack->dport, syn->sport);
	/* and the rules really let both through */
	assert_true(nacl_passes(&rs, RULE_DIR_IN, syn));
	assert_true(nacl_passes(&rs, RULE_DIR_OUT, synack));

	/* the rule written for the service (out 100 to port 9000) is not a hole */
	for (i = 0; i < res.n; i++)
		assert_true(strcmp(res.v[i].kind, LINT_KIND_CONNECTION_HOLE) ||
			    res.v[i].witness[0].dir == RULE_DIR_IN);
	lint_result_free(&res);
	ruleset_free(&rs);
}

static void test_hole_closed_by_established(void **state)
{
	struct lint_result res;
	struct ruleset rs;

	(void)state;
	parse("nacl out 100 allow tcp dst 198.18.1.0/24 dport 9000\n"
	      "nacl in  100 allow tcp src 198.18.1.0/24 dport 1024-65535 established\n",
	      &rs);
	lint(&rs, &res);
	assert_int_equal(count(&res, LINT_KIND_CONNECTION_HOLE), 0);
	/* the replies still come back: nothing at all to say */
	assert_int_equal(res.warnings, 0);
	assert_int_equal(res.errors, 0);
	lint_result_free(&res);
	ruleset_free(&rs);
}

static void test_hole_closed_by_sg(void **state)
{
	struct lint_result res;
	struct ruleset rs;

	(void)state;
	/* the SG admits new connections only to 443: the NACL hole leads nowhere */
	parse("nacl out 100 allow tcp dst 198.18.1.0/24 dport 9000\n"
	      "nacl in  100 allow tcp src 198.18.1.0/24 dport 1024-65535\n"
	      "sg in  allow tcp dport 443\n"
	      "sg out allow tcp dst 198.18.1.0/24 dport 9000\n",
	      &rs);
	lint(&rs, &res);
	assert_int_equal(count(&res, LINT_KIND_CONNECTION_HOLE), 0);
	lint_result_free(&res);
	ruleset_free(&rs);
}

static void test_hole_udp_and_outbound(void **state)
{
	const struct lint_finding *f;
	struct lint_result res;
	struct ruleset rs;
	size_t i;
	bool udp = false, out = false;

	(void)state;
	/* DNS replies admitted statelessly: 53 can reach every local port */
	parse("nacl out 100 allow udp dst 198.51.100.53/32 dport 53\n"
	      "nacl in  100 allow udp src 198.51.100.53/32 sport 53\n"
	      /* a web server's replies: a local port 443 reaches any remote port */
	      "nacl in  200 allow tcp dport 443\n"
	      "nacl out 200 allow tcp sport 443\n",
	      &rs);
	lint(&rs, &res);
	for (i = 0; (f = find(&res, LINT_KIND_CONNECTION_HOLE, (int)i)); i++) {
		const struct packet *w0 = &f->witness[0].pkt, *w1 = &f->witness[1].pkt;

		assert_int_equal(f->nwitness, 2);
		assert_true(span_holds(&f->spans[0], w0));
		assert_true(nacl_passes(&rs, f->witness[0].dir, w0));
		assert_true(nacl_passes(&rs, f->witness[1].dir, w1));
		if (w0->proto == 17) {
			udp = true;
			assert_int_equal(f->witness[0].dir, RULE_DIR_IN);
			assert_int_equal(w0->sport, 53);
			assert_true(refs_number(f, RULE_DIR_IN, 100));
			assert_non_null(strstr(f->fix, "sg out allow udp"));
		} else {
			out = true;
			assert_int_equal(f->witness[0].dir, RULE_DIR_OUT);
			assert_int_equal(w0->sport, 443);
			assert_true(refs_number(f, RULE_DIR_OUT, 200));
		}
	}
	assert_true(udp);
	assert_true(out);
	lint_result_free(&res);
	ruleset_free(&rs);
}

/* ---- the forgotten ephemeral range (USERS.md 2) ----------------------- */

static void test_missing_return_path(void **state)
{
	const struct lint_finding *f;
	struct lint_result res;
	struct ruleset rs;

	(void)state;
	/* replies only to 49152-65535, but Linux clients use 32768-60999 */
	parse("set ephemeral linux\n"
	      "nacl in  100 allow tcp dport 80\n"
	      "nacl out 100 allow tcp sport 80 dport 49152-65535 established\n",
	      &rs);
	lint(&rs, &res);
	f = find(&res, LINT_KIND_MISSING_RETURN, 0);
	assert_non_null(f);
	assert_int_equal(f->sev, LINT_SEV_WARNING);
	assert_true(refs_number(f, RULE_DIR_IN, 100));
	assert_int_equal(f->nwitness, 2);
	assert_true(span_holds(&f->spans[0], &f->witness[0].pkt));
	assert_true(f->witness[0].pkt.sport >= 32768 && f->witness[0].pkt.sport <= 49151);
	assert_true(nacl_passes(&rs, RULE_DIR_IN, &f->witness[0].pkt));
	assert_false(nacl_passes(&rs, RULE_DIR_OUT, &f->witness[1].pkt));
	assert_non_null(strstr(f->fix, "sport 80 dport 32768-60999 established"));
	lint_result_free(&res);
	ruleset_free(&rs);

	/* Windows clients (49152-65535) get every reply: nothing to say */
	parse("set ephemeral windows\n"
	      "nacl in  100 allow tcp dport 80\n"
	      "nacl out 100 allow tcp sport 80 dport 49152-65535 established\n",
	      &rs);
	lint(&rs, &res);
	assert_int_equal(count(&res, LINT_KIND_MISSING_RETURN), 0);
	lint_result_free(&res);
	ruleset_free(&rs);

	/* no outbound rule for the replies at all, and the outbound mirror */
	parse("nacl in  100 allow udp dport 53\n"
	      "nacl out 100 allow tcp dport 443\n"
	      "nacl out 110 allow icmp icmp 8/0\n"
	      "nacl in  110 allow tcp sport 443 dport 49152-65535 established\n",
	      &rs);
	lint(&rs, &res);
	assert_int_equal(count(&res, LINT_KIND_MISSING_RETURN), 3);
	f = find(&res, LINT_KIND_MISSING_RETURN, 0);
	assert_non_null(strstr(f->message, "all their"));
	assert_non_null(strstr(f->fix, "nacl out"));
	assert_non_null(strstr(f->fix, "udp sport 53 dport 1024-65535"));
	f = find(&res, LINT_KIND_MISSING_RETURN, 1);
	assert_int_equal(f->witness[0].dir, RULE_DIR_OUT);
	assert_true(f->witness[0].pkt.sport >= 32768 && f->witness[0].pkt.sport < 49152);
	assert_false(nacl_passes(&rs, RULE_DIR_IN, &f->witness[1].pkt));
	f = find(&res, LINT_KIND_MISSING_RETURN, 2);
	assert_int_equal(f->witness[1].pkt.icmp_type, 0);
	assert_non_null(strstr(f->fix, "icmp 0/0"));
	lint_result_free(&res);
	ruleset_free(&rs);
}

/* ---- shadowing -------------------------------------------------------- */

/* Every live NACL rule's witness is decided by that rule (reference matcher). */
static void check_live_witnesses(const struct ruleset *rs, const struct lint_result *res)
{
	size_t i;

	for (i = 0; i < res->nrules; i++) {
		const struct lint_rule_info *ri = &res->rules[i];
		const struct rule *r = &rs->rules[ri->rule], *w = NULL;

		if (ri->status != LINT_RULE_LIVE)
			continue;
		assert_true(ri->has_witness);
		assert_int_equal(ri->witness.dir, r->dir);
		if (r->stage == RULE_STAGE_NACL) {
			reference_nacl(rs, r->dir, &ri->witness.pkt, &w);
			assert_ptr_equal(w, r);
		} else {
			assert_ptr_equal(reference_sg_rule(rs, r->dir, &ri->witness.pkt), r);
		}
	}
}

static void test_shadowed_exact(void **state)
{
	const struct lint_finding *f;
	const struct rule *w = NULL;
	struct lint_result res;
	struct ruleset rs;
	const struct lint_rule_info *ri;

	(void)state;
	parse("set nets { 10.0.0.0/9, 10.128.0.0/9 }\n"
	      /* plain: a /16 inside an earlier /8 */
	      "nacl in 100 allow tcp src 10.0.0.0/8\n"
	      "nacl in 110 allow tcp src 10.1.0.0/16 dport 80\n"
	      /* through a set: two /9s make the /8 */
	      "nacl in 200 deny all src @nets\n"
	      "nacl in 210 allow udp src 10.0.0.0/8 dport 53\n"
	      /* through a union: neither earlier rule covers it alone */
	      "nacl in 300 allow udp dport 0-1000\n"
	      "nacl in 310 allow udp dport 1001-65535\n"
	      "nacl in 320 allow udp src 192.0.2.0/24 dport 500-2000\n"
	      /* not shadowed: only non-first fragments reach it */
	      "nacl in 330 allow udp src 192.0.2.0/24\n"
	      /* shadowed by a union of two /13s, twice */
	      "nacl in 400 allow tcp src 172.16.0.0/13\n"
	      "nacl in 410 allow tcp src 172.24.0.0/13\n"
	      "nacl in 420 allow tcp src 172.16.0.0/12 dport 22\n"
	      "nacl in 430 deny tcp src 172.31.255.255/32\n"
	      /* not shadowed: one port short of the union */
	      "nacl in 500 allow tcp dport 0-79\n"
	      "nacl in 510 allow tcp dport 81-65535\n"
	      "nacl in 520 deny tcp src 203.0.113.0/24 dport 22-8080\n"
	      "nacl out 100 allow all\n",
	      &rs);
	lint(&rs, &res);

	ri = info_of(&res, &rs, RULE_DIR_IN, 110);
	assert_int_equal(ri->status, LINT_RULE_SHADOWED);
	assert_int_equal(info_of(&res, &rs, RULE_DIR_IN, 210)->status, LINT_RULE_SHADOWED);
	assert_int_equal(info_of(&res, &rs, RULE_DIR_IN, 320)->status, LINT_RULE_SHADOWED);
	assert_int_equal(info_of(&res, &rs, RULE_DIR_IN, 330)->status, LINT_RULE_LIVE);
	assert_true(info_of(&res, &rs, RULE_DIR_IN, 330)->witness.pkt.frag);
	assert_int_equal(info_of(&res, &rs, RULE_DIR_IN, 420)->status, LINT_RULE_SHADOWED);
	assert_int_equal(info_of(&res, &rs, RULE_DIR_IN, 430)->status, LINT_RULE_SHADOWED);
	ri = info_of(&res, &rs, RULE_DIR_IN, 520);
	assert_int_equal(ri->status, LINT_RULE_LIVE);
	assert_int_equal(ri->witness.pkt.dport, 80);
	assert_int_equal(info_of(&res, &rs, RULE_DIR_IN, 100)->status, LINT_RULE_LIVE);
	check_live_witnesses(&rs, &res);

	assert_int_equal(count(&res, LINT_KIND_SHADOWED), 5);
	/* the union case names both rules that cover it */
	f = find(&res, LINT_KIND_SHADOWED, 2);
	assert_non_null(f);
	assert_true(refs_number(f, RULE_DIR_IN, 320));
	assert_true(refs_number(f, RULE_DIR_IN, 300));
	assert_true(refs_number(f, RULE_DIR_IN, 310));
	assert_int_equal(f->sev, LINT_SEV_WARNING);
	/* its witness is a packet it matches that an earlier rule decides */
	assert_int_equal(f->nwitness, 1);
	assert_true(
		reference_rule_matches(&rs, nacl_rule(&rs, RULE_DIR_IN, 320), &f->witness[0].pkt));
	reference_nacl(&rs, RULE_DIR_IN, &f->witness[0].pkt, &w);
	assert_true(w == nacl_rule(&rs, RULE_DIR_IN, 300) || w == nacl_rule(&rs, RULE_DIR_IN, 310));
	lint_result_free(&res);
	ruleset_free(&rs);
}

static void test_partly_overridden(void **state)
{
	const struct lint_finding *f;
	const struct rule *w = NULL;
	struct lint_result res;
	struct ruleset rs;

	(void)state;
	parse("nacl in  100 deny  tcp src 198.51.100.0/24 dport 22\n"
	      "nacl in  200 allow tcp dport 22\n"
	      "nacl out 100 allow tcp sport 22 dport 1024-65535 established\n",
	      &rs);
	lint(&rs, &res);
	f = find(&res, LINT_KIND_PARTLY_OVERRIDDEN, 0);
	assert_non_null(f);
	assert_int_equal(f->sev, LINT_SEV_INFO);
	assert_true(refs_number(f, RULE_DIR_IN, 200));
	assert_true(refs_number(f, RULE_DIR_IN, 100));
	/* the witness: matched by 200, decided by 100 */
	assert_int_equal(f->nwitness, 1);
	assert_true(
		reference_rule_matches(&rs, nacl_rule(&rs, RULE_DIR_IN, 200), &f->witness[0].pkt));
	reference_nacl(&rs, RULE_DIR_IN, &f->witness[0].pkt, &w);
	assert_ptr_equal(w, nacl_rule(&rs, RULE_DIR_IN, 100));
	assert_int_equal(info_of(&res, &rs, RULE_DIR_IN, 200)->status, LINT_RULE_LIVE);
	check_live_witnesses(&rs, &res);
	/* informational only: nothing at warning level */
	assert_int_equal(res.warnings, 0);
	lint_result_free(&res);
	ruleset_free(&rs);
}

/* ---- denies everything, SG exposure ----------------------------------- */

static void test_denies_everything(void **state)
{
	const struct lint_finding *f;
	struct lint_result res;
	struct ruleset rs;

	(void)state;
	/* the NACL stage is on, with no `out` rule */
	parse("nacl in 100 allow tcp dport 22\n", &rs);
	lint(&rs, &res);
	f = find(&res, LINT_KIND_DENIES_EVERYTHING, 0);
	assert_non_null(f);
	assert_int_equal(f->sev, LINT_SEV_WARNING);
	assert_int_equal(f->witness[0].dir, RULE_DIR_OUT);
	assert_false(nacl_passes(&rs, RULE_DIR_OUT, &f->witness[0].pkt));
	assert_int_equal(count(&res, LINT_KIND_DENIES_EVERYTHING), 1);
	lint_result_free(&res);
	ruleset_free(&rs);

	/* rules, but none that allows anything */
	parse("nacl in 100 deny all\n"
	      "nacl in 200 allow tcp dport 22\n"
	      "nacl out 100 allow all\n",
	      &rs);
	lint(&rs, &res);
	f = find(&res, LINT_KIND_DENIES_EVERYTHING, 0);
	assert_non_null(f);
	assert_int_equal(f->witness[0].dir, RULE_DIR_IN);
	assert_false(nacl_passes(&rs, RULE_DIR_IN, &f->witness[0].pkt));
	assert_int_equal(count(&res, LINT_KIND_SHADOWED), 1);
	lint_result_free(&res);
	ruleset_free(&rs);

	/* the SG stage on, no `sg out` rule: no outbound connection */
	parse("sg in allow tcp dport 443\n", &rs);
	lint(&rs, &res);
	f = find(&res, LINT_KIND_DENIES_EVERYTHING, 0);
	assert_non_null(f);
	assert_int_equal(f->witness[0].dir, RULE_DIR_OUT);
	assert_false(sg_opens(&rs, RULE_DIR_OUT, &f->witness[0].pkt));
	lint_result_free(&res);
	ruleset_free(&rs);
}

static void test_sg_exposure(void **state)
{
	const struct lint_finding *f;
	struct lint_result res;
	struct ruleset rs;

	(void)state;
	parse("set admins { 198.51.100.0/24, 2001:db8:1::/48 }\n"
	      "sg in  allow tcp dport 22\n"
	      "sg in  allow tcp dport 3306 src 0.0.0.0/0\n"
	      "sg in  allow tcp dport 5432 src @admins\n"
	      "sg in  allow tcp dport 443 src 0.0.0.0/0\n"
	      "sg out allow all\n",
	      &rs);
	lint(&rs, &res);
	assert_int_equal(count(&res, LINT_KIND_SG_ADMIN_EXPOSED), 2);
	f = find(&res, LINT_KIND_SG_ADMIN_EXPOSED, 0);
	assert_int_equal(f->sev, LINT_SEV_WARNING);
	assert_non_null(strstr(f->message, "ssh"));
	assert_non_null(strstr(f->message, "0.0.0.0/0 and ::/0"));
	assert_int_equal(f->witness[0].pkt.dport, 22);
	assert_true(sg_opens(&rs, RULE_DIR_IN, &f->witness[0].pkt));
	f = find(&res, LINT_KIND_SG_ADMIN_EXPOSED, 1);
	assert_non_null(strstr(f->message, "mysql"));
	assert_null(strstr(f->message, "::/0"));
	lint_result_free(&res);
	ruleset_free(&rs);

	/* a NACL that drops it makes it informational */
	parse("sg in  allow tcp dport 22\n"
	      "sg out allow all\n"
	      "nacl in  100 allow tcp dport 443\n"
	      "nacl out 100 allow tcp sport 443 dport 1024-65535 established\n",
	      &rs);
	lint(&rs, &res);
	f = find(&res, LINT_KIND_SG_ADMIN_EXPOSED, 0);
	assert_non_null(f);
	assert_int_equal(f->sev, LINT_SEV_INFO);
	assert_false(nacl_passes(&rs, RULE_DIR_IN, &f->witness[0].pkt));
	lint_result_free(&res);
	ruleset_free(&rs);
}

static void test_reach(void **state)
{
	const struct lint_reach_cell *c;
	struct lint_result res;
	struct lint_opts o;
	struct ruleset rs;

	(void)state;
	parse(canonical, &rs);
	lint_opts_default(&o);
	o.reach = true;
	assert_int_equal(lint_run(&rs, &o, &res), 0);
	assert_true(res.has_reach);
	/* NACL: the intended path out to 9000, and the hole in */
	c = &res.reach.cell[LINT_REACH_TCP][RULE_DIR_OUT][LINT_REACH_NACL];
	assert_int_equal(c->total, 1);
	assert_int_equal(c->spans[0].peer_port_lo, 9000);
	assert_int_equal(c->spans[0].local_port_lo, 1024);
	c = &res.reach.cell[LINT_REACH_TCP][RULE_DIR_IN][LINT_REACH_NACL];
	assert_int_equal(c->total, 1);
	assert_int_equal(c->spans[0].peer_port_lo, 9000);
	assert_int_equal(c->spans[0].local_port_hi, 65535);
	/* no SG rule line: that layer is off */
	assert_true(res.reach.cell[LINT_REACH_TCP][RULE_DIR_IN][LINT_REACH_SG].stage_off);
	c = &res.reach.cell[LINT_REACH_UDP][RULE_DIR_IN][LINT_REACH_BOTH];
	assert_int_equal(c->total, 0);
	lint_result_free(&res);
	ruleset_free(&rs);
}

/* ---- random rule sets: every witness does what its finding says ------- */

static void check_finding(const struct ruleset *rs, const struct lint_finding *f)
{
	const struct packet *w0 = &f->witness[0].pkt, *w1 = &f->witness[1].pkt;
	enum rule_dir d0 = f->witness[0].dir;
	const struct rule *r, *w = NULL;

	if (!strcmp(f->kind, LINT_KIND_CONNECTION_HOLE)) {
		assert_int_equal(f->nwitness, 2);
		assert_true(span_holds(&f->spans[0], w0));
		assert_true(nacl_passes(rs, d0, w0));
		assert_true(sg_opens(rs, d0, w0));
		assert_true(nacl_passes(rs, !d0, w1));
	} else if (!strcmp(f->kind, LINT_KIND_MISSING_RETURN)) {
		assert_int_equal(f->nwitness, 2);
		assert_true(span_holds(&f->spans[0], w0));
		assert_true(nacl_passes(rs, d0, w0));
		assert_true(sg_opens(rs, d0, w0));
		assert_false(nacl_passes(rs, !d0, w1));
	} else if (!strcmp(f->kind, LINT_KIND_SHADOWED) && f->nwitness) {
		r = &rs->rules[f->refs[0].rule];
		assert_true(reference_rule_matches(rs, r, w0));
		reference_nacl(rs, r->dir, w0, &w);
		assert_non_null(w);
		assert_ptr_not_equal(w, r);
	} else if (!strcmp(f->kind, LINT_KIND_PARTLY_OVERRIDDEN)) {
		r = &rs->rules[f->refs[0].rule];
		assert_true(reference_rule_matches(rs, r, w0));
		reference_nacl(rs, r->dir, w0, &w);
		assert_ptr_equal(w, &rs->rules[f->refs[1].rule]);
		assert_int_not_equal(w->action, r->action);
	} else if (!strcmp(f->kind, LINT_KIND_SG_ADMIN_EXPOSED)) {
		assert_true(sg_opens(rs, RULE_DIR_IN, w0));
		assert_true(nacl_passes(rs, RULE_DIR_IN, w0) == (f->sev == LINT_SEV_WARNING));
	} else if (!strcmp(f->kind, LINT_KIND_DENIES_EVERYTHING)) {
		assert_false(nacl_passes(rs, d0, w0) && sg_opens(rs, d0, w0));
	}
}

static void test_random_witnesses(void **state)
{
	struct randgen_opts o = { .nacl_rules = 40, .sg_rules = 6, .max_sets = 3 };
	size_t seed, i, k, findings = 0, shadowed = 0;
	struct randgen g;

	(void)state;
	for (seed = 1; seed <= 150; seed++) {
		struct lint_result res;
		struct ruleset rs;
		struct packet p;

		randgen_seed(&g, seed);
		ruleset_init(&rs);
		assert_int_equal(randgen_ruleset(&g, &o, &rs), 0);
		lint(&rs, &res);
		findings += res.n;
		for (i = 0; i < res.n; i++)
			check_finding(&rs, &res.v[i]);
		check_live_witnesses(&rs, &res);

		/* no packet is ever decided by a rule lint calls shadowed */
		for (k = 0; k < 400; k++) {
			const struct rule *w = NULL;

			randgen_packet(&g, &rs, &p);
			reference_nacl(&rs, k & 1 ? RULE_DIR_OUT : RULE_DIR_IN, &p, &w);
			if (w)
				assert_int_not_equal(res.rules[w - rs.rules].status,
						     LINT_RULE_SHADOWED);
		}
		for (i = 0; i < rs.nrules; i++) {
			const struct rule *r = &rs.rules[i], *w = NULL;

			if (r->stage != RULE_STAGE_NACL ||
			    res.rules[i].status != LINT_RULE_SHADOWED)
				continue;
			shadowed++;
			for (k = 0; k < 20; k++) {
				if (randgen_packet_for_rule(&g, &rs, r, &p))
					break;
				reference_nacl(&rs, r->dir, &p, &w);
				assert_ptr_not_equal(w, r);
			}
		}
		lint_result_free(&res);
		ruleset_free(&rs);
	}
	print_message("random: %zu findings checked, %zu shadowed rules probed\n", findings,
		      shadowed);
	assert_true(findings > 0);
}

/* ---- performance ------------------------------------------------------ */

static double lint_seconds(const struct ruleset *rs, struct lint_result *res)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	lint(rs, res);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}

/*
 * Random-ish rules of the shape people write: services, return-traffic
 * ranges, block lists, mostly distinct addresses; numbered in steps of 5.
 */
static void perf_ruleset(struct randgen *g, struct ruleset *rs, size_t n)
{
	static const int protos[] = { 6, 6, 6, 17, 17, RULE_PROTO_ALL, 1 };
	static const uint16_t svc[] = { 22, 25, 53, 80, 443, 3306, 5432, 8080, 9000 };
	size_t i;

	rule_settings_default(&rs->settings);
	for (i = 0; i < n; i++) {
		enum rule_dir dir = i & 1 ? RULE_DIR_OUT : RULE_DIR_IN;
		int proto = protos[randgen_below(g, 7)];
		enum rule_action act = randgen_chance(g, 30) ? RULE_DENY : RULE_ALLOW;
		struct rule *r = randgen_rule_append(rs, RULE_STAGE_NACL, dir, (int)(i / 2 + 1) * 5,
						     act, proto);
		char cidr[32];

		assert_non_null(r);
		if (randgen_chance(g, 80)) {
			unsigned int len = randgen_between(g, 4, 7) * 4;
			uint32_t a = (10u << 24 | randgen_below(g, 1u << 24)) &
				     ~((1u << (32 - len)) - 1);

			snprintf(cidr, sizeof(cidr), "%u.%u.%u.%u/%u", a >> 24, a >> 16 & 255,
				 a >> 8 & 255, a & 255, len);
			assert_int_equal(randgen_rule_addr(r, dir == RULE_DIR_OUT, cidr), 0);
		}
		if (proto == 6 || proto == 17) {
			uint16_t p = svc[randgen_below(g, 9)];

			r->dport.set = true;
			if (randgen_chance(g, 20)) {
				r->sport = (struct rule_range){ true, p, p };
				r->dport.lo = 1024;
				r->dport.hi = 65535;
			} else {
				r->dport.lo = r->dport.hi = p;
			}
			r->established = proto == 6 && randgen_chance(g, 10);
		}
	}
	rs->stage_on[RULE_STAGE_NACL] = true;
}

static void test_performance(void **state)
{
	struct randgen_opts o = { .nacl_rules = 4096, .sg_rules = 64, .max_sets = 4 };
	struct lint_result res;
	struct ruleset rs;
	struct randgen g;
	double s;

	(void)state;
	/* the differential test's generator: small pools, heavy overlap */
	randgen_seed(&g, 4096);
	ruleset_init(&rs);
	assert_int_equal(randgen_ruleset(&g, &o, &rs), 0);
	s = lint_seconds(&rs, &res);
	print_message("lint of %zu overlapping random rules: %.3f s, %zu findings, "
		      "%zu undecided\n",
		      rs.nrules, s, res.n, res.incomplete);
	assert_true(s < 5.0);
	lint_result_free(&res);
	ruleset_free(&rs);

	/* rules shaped like real files */
	randgen_seed(&g, 7);
	ruleset_init(&rs);
	perf_ruleset(&g, &rs, 4096);
	s = lint_seconds(&rs, &res);
	print_message("lint of %zu realistic random rules: %.3f s, %zu findings, "
		      "%zu undecided\n",
		      rs.nrules, s, res.n, res.incomplete);
	assert_true(s < 5.0);
	lint_result_free(&res);
	ruleset_free(&rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hole_canonical),
		cmocka_unit_test(test_hole_closed_by_established),
		cmocka_unit_test(test_hole_closed_by_sg),
		cmocka_unit_test(test_hole_udp_and_outbound),
		cmocka_unit_test(test_missing_return_path),
		cmocka_unit_test(test_shadowed_exact),
		cmocka_unit_test(test_partly_overridden),
		cmocka_unit_test(test_denies_everything),
		cmocka_unit_test(test_sg_exposure),
		cmocka_unit_test(test_reach),
		cmocka_unit_test(test_random_witnesses),
		cmocka_unit_test(test_performance),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
