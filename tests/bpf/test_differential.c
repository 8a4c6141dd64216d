// SPDX-License-Identifier: GPL-2.0
/*
 * test_differential.c - the real datapath against the reference matcher.
 *
 * For S seeded random rule sets (1..4096 NACL rules, most of them small)
 * and P random packets each, every packet is built into a frame and run
 * through both BPF programs (in: XDP, out: TC) with BPF_PROG_TEST_RUN on a
 * private instance in trace mode; the verdict and the deciding NACL rule
 * the program records must be those user/reference.c computes from the
 * CONTRACT. The rule sets hold NACL rules only, so the SG stage is off and
 * the verdict is the NACL's.
 *
 * On a disagreement the test prints how to rerun that one rule set, the
 * rule set (as a rules file), the packet and both judgements, then shrinks
 * the rule set to the fewest rules that still disagree and prints that too.
 *
 * Environment: MOAT_DIFF_SETS (60), MOAT_DIFF_PACKETS (2000 per set),
 * MOAT_DIFF_SEED (fixed default, so CI is repeatable), MOAT_DIFF_MAX_RULES
 * (4096), MOAT_DIFF_ONLY (run only the rule set of that index). Needs root.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include <cmocka.h>
#include <bpf/bpf.h>

#include "addr_sync.h"
#include "datapath.h"
#include "dir4.h"
#include "dp_load.h"
#include "generation.h"
#include "map_io.h"
#include "packet.h"
#include "randgen.h"
#include "reference.h"
#include "rules.h"

#define DIFF_DEFAULT_SETS 60
#define DIFF_DEFAULT_PACKETS 2000
#define DIFF_DEFAULT_SEED 20240611
#define DIFF_DEFAULT_MAX_RULES 4096
/* Rule sets up to this size are printed whole; bigger ones go to a file. */
#define DIFF_PRINT_RULES 64
/* Detailed reports (and shrinks) per run; the rest are only counted. */
#define DIFF_MAX_REPORTS 3
/* Datapath runs a shrink may spend. */
#define DIFF_SHRINK_BUDGET 3000

struct diff_cfg {
	uint64_t seed;
	size_t sets, packets, max_rules;
	long only; /* -1: every set */
};

/* One judgement: what the datapath did and what the reference says. */
struct diff_case {
	int err; /* from moat_inst_run */
	bool pass;
	struct moat_trace t;
	int want; /* 1 pass, 0 drop */
	const struct rule *winner;
	bool ndp; /* passed before any stage (CONTRACT §1) */
};

/* What the judgements were, to show the run covered what it should. */
struct diff_tally {
	size_t by_allow, by_deny, by_default, ndp, frag, v6, deep;
};

static struct moat_inst *diff_inst;
static struct diff_cfg cfg;

static unsigned long long env_ull(const char *name, unsigned long long def)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long n;

	if (!v || !*v)
		return def;
	errno = 0;
	n = strtoull(v, &end, 0);
	if (errno || *end) {
		fprintf(stderr, "%s=%s is not a number; using %llu\n", name, v, def);
		return def;
	}
	return n;
}

/* Each rule set has its own seed, so one set is rerun without the others. */
static uint64_t diff_set_seed(uint64_t seed, size_t idx)
{
	struct randgen g;

	randgen_seed(&g, seed ^ (0x5bd1e995ull * (idx + 1)));
	return randgen_u64(&g);
}

/* Mostly small rule sets, now and then a big one; the last is the biggest. */
static size_t diff_set_size(struct randgen *g, size_t idx)
{
	uint32_t k = randgen_below(g, 100);
	size_t n;

	if (idx + 1 == cfg.sets)
		return cfg.max_rules;
	if (k < 45)
		n = randgen_between(g, 1, 16);
	else if (k < 75)
		n = randgen_between(g, 17, 128);
	else if (k < 92)
		n = randgen_between(g, 129, 1024);
	else
		n = randgen_between(g, 1025, 4096);
	return n < cfg.max_rules ? n : cfg.max_rules;
}

static bool diff_stage_on(const struct ruleset *rs)
{
	return reference_stage_on(rs, RULE_STAGE_NACL);
}

/* Run @p in @dir through the datapath and the reference; true when they agree. */
static bool diff_judge(const struct ruleset *rs, enum rule_dir dir, const struct packet *p,
		       struct diff_case *c)
{
	uint8_t frame[256];
	int len;

	memset(c, 0, sizeof(*c));
	c->want = reference_nacl(rs, dir, p, &c->winner);
	c->ndp = rs->settings.pass_ndp && reference_is_ndp(p);
	if (c->ndp)
		c->want = 1;

	len = packet_build_frame(p, frame, sizeof(frame));
	if (len < 0) {
		c->err = len;
		return false;
	}
	c->err = moat_inst_run(diff_inst, dir, frame, (size_t)len, &c->pass, &c->t);
	if (c->err || c->t.ran != 1)
		return false;
	if (c->pass != (c->t.verdict == 1) || c->pass != (c->want == 1))
		return false;
	if (c->ndp) /* with both stages off, either reason says why */
		return c->t.reason == MOAT_REASON_NDP || !diff_stage_on(rs);
	if (!diff_stage_on(rs))
		return !c->t.nacl_on;
	if (!c->t.nacl_on)
		return false;
	if (!c->winner)
		return c->t.nacl_pos == MOAT_NO_RULE;
	return c->t.nacl_pos != MOAT_NO_RULE && c->t.nacl_number == (__u32)c->winner->number &&
	       c->t.nacl_action == (c->winner->action == RULE_ALLOW ? (__u32)MOAT_ACTION_ALLOW
								    : (__u32)MOAT_ACTION_DENY);
}

static bool diff_set_is_used(const struct ruleset *rs, size_t set)
{
	size_t i;

	for (i = 0; i < rs->nrules; i++) {
		const struct rule *r = &rs->rules[i];

		if ((r->src.kind == RULE_ADDR_SET && (size_t)r->src.set == set) ||
		    (r->dst.kind == RULE_ADDR_SET && (size_t)r->dst.set == set))
			return true;
	}
	return false;
}

/* The rule set as a rules file: settings that differ, sets in use, rules in file order. */
static void diff_print_ruleset(FILE *f, const struct ruleset *rs)
{
	char line[512];
	size_t i, j;

	if (!rs->settings.pass_ndp)
		fprintf(f, "set pass-ndp off\n");
	for (i = 0; i < rs->nsets; i++) {
		if (!diff_set_is_used(rs, i))
			continue;
		fprintf(f, "set %s {", rs->sets[i].name);
		for (j = 0; j < rs->sets[i].n; j++) {
			if (rule_prefix_format(&rs->sets[i].prefixes[j], line, sizeof(line)))
				snprintf(line, sizeof(line), "<bad prefix>");
			fprintf(f, "%s %s", j ? "," : "", line);
		}
		fprintf(f, " }\n");
	}
	for (i = 0; i < rs->nrules; i++) {
		if (rule_format(&rs->rules[i], rs, line, sizeof(line)))
			snprintf(line, sizeof(line), "<rule %zu does not format>", i);
		fprintf(f, "%s\n", line);
	}
}

static void diff_print_case(const struct ruleset *rs, enum rule_dir dir, const struct packet *p,
			    const struct diff_case *c)
{
	char pkt[256], rule[512] = "implicit final deny";

	if (packet_format(p, pkt, sizeof(pkt)))
		snprintf(pkt, sizeof(pkt), "<packet does not format>");
	if (c->ndp)
		snprintf(rule, sizeof(rule), "neighbour discovery passes (pass-ndp on)");
	else if (!diff_stage_on(rs))
		snprintf(rule, sizeof(rule), "NACL stage off");
	else if (c->winner && rule_format(c->winner, rs, rule, sizeof(rule)))
		snprintf(rule, sizeof(rule), "<rule does not format>");
	printf("#   packet: %s %s\n", rule_dir_name(dir), pkt);
	printf("#   reference: %s by: %s\n", c->want ? "pass" : "drop", rule);
	if (c->err) {
		printf("#   datapath: error %d (%s)\n", c->err, strerror(-c->err));
		return;
	}
	if (c->t.nacl_pos == MOAT_NO_RULE)
		snprintf(rule, sizeof(rule), "none");
	else
		snprintf(rule, sizeof(rule), "pos %u number %u action %s", c->t.nacl_pos,
			 c->t.nacl_number,
			 c->t.nacl_action == MOAT_ACTION_ALLOW ? "allow" : "deny");
	printf("#   datapath: %s (trace: ran %u verdict %u reason %u nacl_on %u nacl rule: %s)\n",
	       c->pass ? "pass" : "drop", c->t.ran, c->t.verdict, c->t.reason, c->t.nacl_on, rule);
}

/* Apply @rs; a failure is reported with its diagnostics. */
static int diff_apply(const struct ruleset *rs, bool report)
{
	struct diags d;
	int err;

	diags_init(&d);
	/* as `moat reload` does: both generations keep maps, updated in place */
	err = gen_apply(moat_inst_maps(diff_inst), rs, &d, NULL);
	if (err && report) {
		printf("# gen_apply: %s\n", strerror(-err));
		diags_print(&d, stdout);
	}
	diags_free(&d);
	return err;
}

/*
 * The rules of @rs minus those removed so far, as a rule set that shares
 * @rs's sets and settings (so it must not be freed with ruleset_free).
 */
static struct ruleset diff_view(const struct ruleset *rs, struct rule *rules, size_t n)
{
	struct ruleset v = *rs;
	size_t i;

	v.rules = rules;
	v.nrules = v.cap = n;
	v.stage_on[RULE_STAGE_NACL] = false;
	for (i = 0; i < n; i++)
		v.stage_on[RULE_STAGE_NACL] |= rules[i].stage == RULE_STAGE_NACL;
	return v;
}

static bool diff_disagrees(const struct ruleset *rs, struct rule *rules, size_t n,
			   enum rule_dir dir, const struct packet *p, size_t *budget)
{
	struct ruleset v = diff_view(rs, rules, n);
	struct diff_case c;

	if (!*budget)
		return false;
	(*budget)--;
	if (diff_apply(&v, false))
		return false; /* another failure; keep to the one being shrunk */
	return !diff_judge(&v, dir, p, &c);
}

/*
 * Shrink the rule set to few rules that still disagree on @p: try to drop
 * chunks of rules, halving the chunk when no chunk can go (delta debugging).
 */
static void diff_shrink(const struct ruleset *rs, enum rule_dir dir, const struct packet *p)
{
	size_t n = rs->nrules, chunk, start, budget = DIFF_SHRINK_BUDGET, k;
	struct rule *cur = malloc(n * sizeof(*cur)), *cand = malloc(n * sizeof(*cand));
	struct ruleset v;
	struct diff_case c;

	if (!cur || !cand)
		goto out;
	memcpy(cur, rs->rules, n * sizeof(*cur));
	for (chunk = n / 2 ? n / 2 : 1; chunk >= 1 && budget;) {
		bool removed = false;

		for (start = 0; start < n && budget;) {
			k = chunk < n - start ? chunk : n - start;
			memcpy(cand, cur, start * sizeof(*cand));
			memcpy(cand + start, cur + start + k, (n - start - k) * sizeof(*cand));
			if (diff_disagrees(rs, cand, n - k, dir, p, &budget)) {
				memcpy(cur, cand, (n - k) * sizeof(*cur));
				n -= k;
				removed = true;
			} else {
				start += k;
			}
		}
		if (!removed) {
			if (chunk == 1)
				break;
			chunk /= 2;
		} else if (chunk > n) {
			chunk = n ? n : 1;
		}
	}

	v = diff_view(rs, cur, n);
	if (diff_apply(&v, true))
		goto out;
	if (diff_judge(&v, dir, p, &c)) {
		printf("# shrinking lost the disagreement (%zu runs); it needs the whole set\n",
		       (size_t)DIFF_SHRINK_BUDGET - budget);
		goto out;
	}
	printf("# shrunk to %zu rule(s) in %zu runs%s:\n", n, (size_t)DIFF_SHRINK_BUDGET - budget,
	       budget ? "" : " (budget spent, may shrink further)");
	diff_print_ruleset(stdout, &v);
	diff_print_case(&v, dir, p, &c);
out:
	free(cur);
	free(cand);
}

/* Report the first disagreement of a rule set at length. */
static void diff_report(const struct ruleset *rs, size_t idx, uint64_t set_seed, size_t pkt_idx,
			enum rule_dir dir, const struct packet *p, const struct diff_case *c)
{
	char path[128];
	FILE *f;

	printf("# MISMATCH: set %zu (seed %llu, set seed %llu), packet %zu, %zu rules\n", idx,
	       (unsigned long long)cfg.seed, (unsigned long long)set_seed, pkt_idx, rs->nrules);
	printf("# rerun: MOAT_DIFF_SEED=%llu MOAT_DIFF_SETS=%zu MOAT_DIFF_MAX_RULES=%zu "
	       "MOAT_DIFF_ONLY=%zu\n",
	       (unsigned long long)cfg.seed, cfg.sets, cfg.max_rules, idx);
	diff_print_case(rs, dir, p, c);
	if (rs->nrules <= DIFF_PRINT_RULES) {
		printf("# rule set:\n");
		diff_print_ruleset(stdout, rs);
	} else {
		snprintf(path, sizeof(path), "/tmp/moat-diff-%llu-%zu.rules",
			 (unsigned long long)cfg.seed, idx);
		f = fopen(path, "w");
		if (f) {
			diff_print_ruleset(f, rs);
			fclose(f);
			printf("# rule set (%zu rules) written to %s\n", rs->nrules, path);
		} else {
			printf("# rule set (%zu rules) not written: %s: %s\n", rs->nrules, path,
			       strerror(errno));
		}
	}
	diff_shrink(rs, dir, p);
}

static void diff_tally_add(struct diff_tally *tl, const struct packet *p, const struct diff_case *c)
{
	if (c->ndp)
		tl->ndp++;
	else if (!c->winner)
		tl->by_default++;
	else if (c->winner->action == RULE_ALLOW)
		tl->by_allow++;
	else
		tl->by_deny++;
	if (!c->ndp && c->winner && c->t.nacl_pos != MOAT_NO_RULE && c->t.nacl_pos >= 64)
		tl->deep++;
	tl->frag += p->frag;
	tl->v6 += p->family == 6;
}

static double diff_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_differential_nacl(void **state)
{
	size_t idx, i, checked = 0, sets = 0, mismatches = 0, reports = 0, rules = 0;
	size_t trie_sets = 0, front_sets = 0;
	struct diff_tally tl = { 0 };
	double t0 = diff_now();

	for (idx = 0; idx < cfg.sets; idx++) {
		uint64_t set_seed = diff_set_seed(cfg.seed, idx);
		struct randgen_opts o = { .max_sets = 4 };
		size_t set_mismatches = 0;
		struct ruleset rs;
		struct randgen g;
		int err;

		if (cfg.only >= 0 && (size_t)cfg.only != idx)
			continue;
		randgen_seed(&g, set_seed);
		o.nacl_rules = diff_set_size(&g, idx);
		ruleset_init(&rs);
		err = randgen_ruleset(&g, &o, &rs);
		assert_int_equal(err, 0);

		/* One set in four keeps its address fields in LPM tries, one
		 * puts /24 front tables before the IPv4 tries, the others use
		 * tables (IPv4 16-8-8, IPv6 per-length hashes) where they fit:
		 * every lookup is checked. */
		addr_tables_mode = idx % 4 == 2 ? ADDR_TABLES_NEVER :
				   idx % 4 == 3 ? ADDR_TABLES_FRONT :
						  ADDR_TABLES_AUTO;
		trie_sets += addr_tables_mode == ADDR_TABLES_NEVER;
		front_sets += addr_tables_mode == ADDR_TABLES_FRONT;
		/* Every other set is written over the one before in place,
		 * however much differs (tries and hashes by deletes and
		 * updates); the rest where that is cheaper. */
		addr_update_mode = idx % 2 ? ADDR_UPDATE_ALWAYS : ADDR_UPDATE_AUTO;
		err = diff_apply(&rs, true);
		if (err) {
			printf("# set %zu (seed %llu, %zu rules) was not applied\n", idx,
			       (unsigned long long)cfg.seed, rs.nrules);
			mismatches++;
			ruleset_free(&rs);
			continue;
		}
		for (i = 0; i < cfg.packets; i++) {
			struct packet p;
			struct diff_case c;
			int dir;

			randgen_packet(&g, &rs, &p);
			for (dir = RULE_DIR_IN; dir <= RULE_DIR_OUT; dir++) {
				if (diff_judge(&rs, (enum rule_dir)dir, &p, &c)) {
					diff_tally_add(&tl, &p, &c);
					continue;
				}
				set_mismatches++;
				if (set_mismatches == 1 && reports < DIFF_MAX_REPORTS) {
					reports++;
					diff_report(&rs, idx, set_seed, i, (enum rule_dir)dir, &p,
						    &c);
					/* the shrink applied other rule sets: back to this one */
					if (diff_apply(&rs, true)) {
						i = cfg.packets;
						break;
					}
				}
			}
			checked++;
		}
		if (set_mismatches)
			printf("# set %zu: %zu rules, %zu of %zu judgements disagree\n", idx,
			       rs.nrules, set_mismatches, 2 * cfg.packets);
		mismatches += set_mismatches;
		rules += rs.nrules;
		sets++;
		ruleset_free(&rs);
	}
	printf("# checked %zu packets (%zu judgements) over %zu rule sets (%zu rules), "
	       "%zu mismatches, seed %llu, %.1f s\n",
	       checked, 2 * checked, sets, rules, mismatches, (unsigned long long)cfg.seed,
	       diff_now() - t0);
	printf("# judgements: %zu allowed by a rule, %zu denied by a rule, %zu by the final "
	       "deny, %zu NDP; %zu fragments, %zu IPv6; %zu decided past position 63\n",
	       tl.by_allow, tl.by_deny, tl.by_default, tl.ndp, tl.frag, tl.v6, tl.deep);
	printf("# address fields: %zu sets with tables where they fit, %zu with LPM tries only, "
	       "%zu with IPv4 tries behind /24 front tables\n",
	       sets - trie_sets - front_sets, trie_sets, front_sets);
	addr_tables_mode = ADDR_TABLES_AUTO;
	addr_update_mode = ADDR_UPDATE_AUTO;
	assert_int_equal(mismatches, 0);
}

/* No rule line at all: both stages off, everything passes, no NACL rule named. */
static void test_stages_off(void **state)
{
	struct ruleset rs;
	struct randgen g;
	struct packet p;
	struct diff_case c;
	size_t i;
	int dir;

	ruleset_init(&rs);
	assert_int_equal(diff_apply(&rs, true), 0);
	randgen_seed(&g, cfg.seed);
	for (i = 0; i < 200; i++) {
		randgen_packet(&g, &rs, &p);
		for (dir = RULE_DIR_IN; dir <= RULE_DIR_OUT; dir++) {
			if (!diff_judge(&rs, (enum rule_dir)dir, &p, &c)) {
				diff_print_case(&rs, (enum rule_dir)dir, &p, &c);
				fail_msg("stages off: packet %zu disagrees", i);
			}
		}
	}
	ruleset_free(&rs);
}

/*
 * One generation with every IPv4 lookup: a set of 70,000 host routes, each
 * in its own /24, needs more 16-8-8 chunks than a generation holds, so the
 * field naming it stays in the LPM trie, behind a /24 front table (it has
 * more than DIR24_MIN_PREFIXES prefixes), while the destination field gets
 * a 16-8-8 table; then both fields in tries behind front tables
 * (ADDR_TABLES_FRONT). (The set is map data only: no packet leaves.)
 */
/* Packets for test_mixed_lookups: set members, their neighbours, others. */
static void mixed_packets(const struct ruleset *rs, size_t nhosts, unsigned mode)
{
	struct randgen g;
	size_t i;
	int dir;

	randgen_seed(&g, cfg.seed ^ 0x16808 ^ mode);
	for (i = 0; i < 4000; i++) {
		struct packet p = { .family = 4, .tcp_flags = PKT_TCP_SYN };
		uint32_t src, dst, h = randgen_below(&g, nhosts);
		uint32_t host = (uint32_t)(11 + h / 65536) << 24 | (h / 256 % 256) << 16 |
				(h % 256) << 8 | 9;
		struct diff_case c;

		/* a set member, a neighbour in its /24 or its /16, or anywhere
		 * in 11/8..46/8 */
		switch (randgen_below(&g, 4)) {
		case 0:
			src = host;
			break;
		case 1:
			src = (host & ~255u) | randgen_below(&g, 256);
			break;
		case 2:
			src = (host & ~65535u) | randgen_below(&g, 65536);
			break;
		default:
			src = (11u << 24) + (uint32_t)randgen_u64(&g) % (36u << 24);
			break;
		}
		dst = 0xc6120000u | randgen_below(&g, 1u << 17); /* 198.18.0.0/15 */
		src = htonl(src);
		dst = htonl(dst);
		memcpy(p.src, &src, 4);
		memcpy(p.dst, &dst, 4);
		p.proto = (int[]){ 6, 17, 1 }[randgen_below(&g, 3)];
		if (p.proto == 1) {
			p.icmp_type = 8;
		} else {
			p.sport = 1024 + randgen_below(&g, 60000);
			p.dport = randgen_below(&g, 2) ? 22 : 53;
		}
		for (dir = RULE_DIR_IN; dir <= RULE_DIR_OUT; dir++) {
			if (!diff_judge(rs, (enum rule_dir)dir, &p, &c)) {
				diff_print_case(rs, (enum rule_dir)dir, &p, &c);
				fail_msg("mixed lookups (mode %u): packet %zu disagrees", mode, i);
			}
		}
	}
}

static void test_mixed_lookups(void **state)
{
	const size_t nhosts = 70000;
	const uint32_t src_slot = 1u << MOAT_DIR4_SLOT(0, MOAT_FIELD_SRC);
	const uint32_t dst_slot = 1u << MOAT_DIR4_SLOT(0, MOAT_FIELD_DST);
	char set_path[] = "/tmp/moat-diff-set.XXXXXX";
	int fd = mkstemp(set_path);
	size_t cap = 1024, i;
	char *text = malloc(cap);
	FILE *set;
	struct moat_image img;
	struct ruleset rs;
	struct diags d;
	unsigned mode;

	assert_non_null(text);
	assert_true(fd >= 0);
	set = fdopen(fd, "w");
	assert_non_null(set);
	for (i = 0; i < nhosts; i++)
		fprintf(set, "%zu.%zu.%zu.9\n", 11 + i / 65536, i / 256 % 256, i % 256);
	fclose(set);
	snprintf(text, cap,
		 "set scattered file %s\n"
		 "nacl in 10 deny tcp src @scattered dport 22\n"
		 "nacl in 20 allow tcp src 0.0.0.0/0 dst 198.18.5.0/24\n"
		 "nacl in 30 allow udp dst 198.18.6.128/25 dport 53\n"
		 "nacl in 40 deny all src 12.0.0.0/8\n"
		 "nacl in 50 allow icmp dst 198.18.0.0/15\n"
		 "nacl in 60 allow udp src 11.3.0.0/16\n"
		 "nacl out 10 allow all\n",
		 set_path);
	ruleset_init(&rs);
	diags_init(&d);
	assert_int_equal(rules_parse_text("mixed", text, strlen(text), &rs, &d), 0);
	unlink(set_path);
	free(text);
	for (mode = 0; mode < 2; mode++) {
		addr_tables_mode = mode ? ADDR_TABLES_FRONT : ADDR_TABLES_AUTO;
		assert_int_equal(compile_ruleset(&rs, &img, &d), 0);
		assert_false(img.cfg.dir4_mask & src_slot);
		assert_true(img.cfg.dir24_mask & src_slot);
		assert_int_equal(!!(img.cfg.dir4_mask & dst_slot), !mode);
		assert_int_equal(!!(img.cfg.dir24_mask & dst_slot), mode);
		image_free(&img);
		assert_int_equal(diff_apply(&rs, true), 0);
		/* again: the new generation shares the trie and front table */
		if (!mode)
			assert_int_equal(diff_apply(&rs, true), 0);
		mixed_packets(&rs, nhosts, mode);
	}
	addr_tables_mode = ADDR_TABLES_AUTO;
	diags_free(&d);
	ruleset_free(&rs);
}

/*
 * Large IPv6 sets, longest prefixes first in the files: /128s inside /64s
 * inside /48s, and /48s alone, in a field that also holds a rule's /40.
 * A field's prefixes are sorted by a radix pass over their top 64 bits and
 * compared after where those tie (a /64 and the /128s in it), so this
 * checks that nesting; the field goes to the address hash table (four
 * lengths) or, with tables off, to the trie.
 */
static void v6_set_address(unsigned k, unsigned len, uint8_t a[16])
{
	memset(a, 0, 16);
	a[0] = 0xfd;
	a[1] = 0x42;
	a[2] = (uint8_t)(k >> 8);
	a[3] = (uint8_t)k;
	a[5] = (uint8_t)(k % 7);
	if (len >= 64)
		a[7] = (uint8_t)(k % 5 + 1);
	if (len == 128)
		a[15] = (uint8_t)(k % 3 + 1);
}

static void write_v6_set(char *path, unsigned n, const unsigned *lens, unsigned nlens)
{
	char buf[INET6_ADDRSTRLEN];
	int fd = mkstemp(path);
	unsigned k, l;
	FILE *set;

	assert_true(fd >= 0);
	set = fdopen(fd, "w");
	assert_non_null(set);
	for (l = 0; l < nlens; l++) {
		for (k = 0; k < n; k++) {
			uint8_t a[16];

			/* every /48 listed; /64s and /128s under two thirds */
			if (lens[l] > 48 && k % 3 == 0)
				continue;
			v6_set_address(k, lens[l], a);
			fprintf(set, "%s/%u\n", inet_ntop(AF_INET6, a, buf, sizeof(buf)), lens[l]);
		}
	}
	fclose(set);
}

static void test_large_ipv6_set(void **state)
{
	const unsigned n = 1500;
	char hosts_path[] = "/tmp/moat-diff-set6.XXXXXX", nets_path[] = "/tmp/moat-diff-set6.XXXXXX";
	char text[512];
	struct moat_image img;
	struct ruleset rs;
	struct randgen g;
	struct diags d;
	unsigned mode, k, len, i;

	/* The /64s in a set of their own, for another rule than the /128s
	 * inside them: a /128's vector must hold the /64's rule too. */
	write_v6_set(hosts_path, n, (const unsigned[]){ 128, 48 }, 2);
	write_v6_set(nets_path, n, (const unsigned[]){ 64 }, 1);
	snprintf(text, sizeof(text),
		 "set big6 file %s\n"
		 "set nets6 file %s\n"
		 "nacl in 10 deny udp src @big6 dport 53\n"
		 "nacl in 15 allow tcp src @nets6 dport 443\n"
		 "nacl in 20 allow udp src fd42:100::/40\n"
		 "nacl in 30 deny tcp src @big6\n"
		 "nacl in 40 allow all\n"
		 "nacl out 10 allow all\n",
		 hosts_path, nets_path);
	ruleset_init(&rs);
	diags_init(&d);
	assert_int_equal(rules_parse_text("big6", text, strlen(text), &rs, &d), 0);
	unlink(hosts_path);
	unlink(nets_path);
	for (mode = 0; mode < 2; mode++) {
		addr_tables_mode = mode ? ADDR_TABLES_NEVER : ADDR_TABLES_AUTO;
		assert_int_equal(compile_ruleset(&rs, &img, &d), 0);
		assert_int_equal(!!(img.cfg.hash6_mask & (1u << MOAT_DIR4_SLOT(0, MOAT_FIELD_SRC))),
				 !mode);
		/* four lengths in the source field: it is filtered by its
		 * blocks of the shortest, rule 20's /40 */
		assert_int_equal(img.cfg.hash6_cut[MOAT_DIR4_SLOT(0, MOAT_FIELD_SRC)], mode ? 0 : 40);
		assert_int_equal(img.naddr_filter > 0, !mode);
		image_free(&img);
		assert_int_equal(diff_apply(&rs, true), 0);
		randgen_seed(&g, cfg.seed ^ 0x6e7 ^ mode);
		for (i = 0; i < 4000; i++) {
			struct packet p = { .family = 6, .proto = randgen_below(&g, 2) ? 17 : 6 };
			struct diff_case c;

			/* a set member of any length, or an address beside one */
			k = randgen_below(&g, n + 64);
			len = (unsigned[]){ 48, 64, 128 }[randgen_below(&g, 3)];
			v6_set_address(k, len, p.src);
			if (randgen_below(&g, 2))
				p.src[8 + randgen_below(&g, 8)] ^= (uint8_t)(1 + randgen_below(&g, 255));
			if (randgen_below(&g, 4) == 0)
				p.src[6] ^= 1;
			p.dst[0] = 0xfd;
			p.dst[15] = 1;
			p.sport = 1024 + randgen_below(&g, 60000);
			p.dport = randgen_below(&g, 2) ? 53 : 443;
			if (!diff_judge(&rs, RULE_DIR_IN, &p, &c)) {
				diff_print_case(&rs, RULE_DIR_IN, &p, &c);
				fail_msg("large IPv6 set (mode %u): packet %u disagrees", mode, i);
			}
		}
	}
	addr_tables_mode = ADDR_TABLES_AUTO;
	diags_free(&d);
	ruleset_free(&rs);
}

/*
 * The decision cache keys answers by rule-set epoch: rule sets A and C
 * below compile to the same vector ids, and both need the walk past the
 * first candidate word for the packet, but their winners sit at
 * different positions. A is applied, the packet judged (and its answer
 * cached), then B, then C into the same generation slot as A: C's answer
 * must not be A's.
 */
static void test_decision_cache_epochs(void **state)
{
	const char *pkt = "tcp 198.18.9.5:1000 > 198.18.1.1:2";
	char *argv[] = { (char *)pkt };
	struct ruleset rs[3];
	struct packet p;
	struct diff_case c;
	char err[128], *text;
	size_t len, cap = 16384;
	int i, k, n;

	assert_int_equal(packet_parse(1, argv, &p, err, sizeof(err)), 0);
	text = malloc(cap);
	assert_non_null(text);
	for (k = 0; k < 3; k++) {
		struct diags d;

		/* A: 64 port-1 rules before the port-2 allow; C: 65. */
		n = k == 2 ? 65 : 64;
		len = 0;
		if (k == 1) {
			len += snprintf(text + len, cap - len, "nacl in 1 allow all\n");
		} else {
			len += snprintf(text + len, cap - len,
					"nacl in 1 deny udp src 198.18.9.0/24\n");
			for (i = 0; i < n; i++)
				len += snprintf(text + len, cap - len,
						"nacl in %d deny tcp src 198.18.9.0/24 dport 1\n",
						2 + i);
			len += snprintf(text + len, cap - len,
					"nacl in %d allow tcp src 198.18.9.0/24 dport 2\n", 2 + n);
		}
		ruleset_init(&rs[k]);
		diags_init(&d);
		assert_int_equal(rules_parse_text("epochs", text, len, &rs[k], &d), 0);
		diags_free(&d);
	}
	free(text);
	for (k = 0; k < 3; k++) {
		assert_int_equal(diff_apply(&rs[k], true), 0);
		for (i = 0; i < 2; i++) { /* the second run may answer from the cache */
			if (!diff_judge(&rs[k], RULE_DIR_IN, &p, &c)) {
				diff_print_case(&rs[k], RULE_DIR_IN, &p, &c);
				fail_msg("rule set %d, run %d: datapath and reference disagree", k, i);
			}
		}
	}
	for (k = 0; k < 3; k++)
		ruleset_free(&rs[k]);
}

/*
 * The decision cache is also filled when the lowest candidate word holds
 * the winner, and consulted first whenever more than one word is a
 * candidate: rules 2..70 (words 0 and 1) match both packets; rule 1
 * allows the first, rule 2 denies the second, both winners in word 0.
 * Each packet is judged three times, the later runs answer from the
 * cache; every run must agree with the reference (rule and verdict).
 */
static void test_decision_cache_lowest_word(void **state)
{
	const char *pkts[] = { "tcp 198.18.9.5:1000 > 198.18.1.1:2",
			       "tcp 198.18.9.5:1000 > 198.18.1.1:3" };
	struct ruleset rs;
	struct diags d;
	struct packet p;
	struct diff_case c;
	char err[128], *text;
	size_t len = 0, cap = 8192;
	int i, k;

	text = malloc(cap);
	assert_non_null(text);
	len += snprintf(text + len, cap - len,
			"nacl in 1 allow tcp src 198.18.9.0/24 dport 2\n");
	for (i = 2; i <= 70; i++)
		len += snprintf(text + len, cap - len,
				"nacl in %d %s tcp src 198.18.9.0/24 dport 2-3\n", i,
				i % 2 ? "allow" : "deny");
	ruleset_init(&rs);
	diags_init(&d);
	assert_int_equal(rules_parse_text("lowest", text, len, &rs, &d), 0);
	diags_free(&d);
	free(text);
	assert_int_equal(diff_apply(&rs, true), 0);
	for (k = 0; k < 2; k++) {
		char *argv[] = { (char *)pkts[k] };

		assert_int_equal(packet_parse(1, argv, &p, err, sizeof(err)), 0);
		for (i = 0; i < 3; i++) {
			if (!diff_judge(&rs, RULE_DIR_IN, &p, &c)) {
				diff_print_case(&rs, RULE_DIR_IN, &p, &c);
				fail_msg("packet %d, run %d: datapath and reference disagree", k, i);
			}
		}
	}
	ruleset_free(&rs);
}

/* Id of the inner map in slot @slot of map-of-maps @outer (0: none). */
static __u32 slot_map_id(int outer, unsigned slot)
{
	__u32 key = slot, id = 0;

	if (bpf_map_lookup_elem(outer, &key, &id))
		return 0;
	return id;
}

/* Put the IPv4 trie's shadow out of order, as a stray writer might: the
 * shadow must then vouch for nothing. */
static void shadow_swap_first_entries(struct moat_maps *m)
{
	struct bpf_map_info info;
	int fd = map_inner_fd(m->gen_shadow, ADDR_LPM4);
	uint64_t *area, n, esize;
	unsigned char tmp[64];
	size_t len;

	assert_true(fd >= 0);
	assert_int_equal(map_info(fd, &info), 0);
	len = ((size_t)info.max_entries * 8 + 4095) & ~(size_t)4095;
	area = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(area != MAP_FAILED);
	n = area[1];
	esize = area[2] & 0xffffffffu; /* the head: magic, n, esize + in_sync, digest */
	assert_true(n >= 2 && esize <= sizeof(tmp));
	memcpy(tmp, (char *)(area + 4), esize);
	memcpy((char *)(area + 4), (char *)(area + 4) + esize, esize);
	memcpy((char *)(area + 4) + esize, tmp, esize);
	munmap(area, len);
	close(fd);
}

/*
 * A reload updates the idle generation's maps in place: its trie keeps its
 * map (same id) through a ports-only change, a prefix added, prefixes
 * removed; with in-place updates off, or after a rule set applied once
 * (no second copy kept, so nothing vouches for the idle maps), the trie is
 * built anew; so it is after the shadow of the trie's entries was put out
 * of order, and in place again after that. After every step, packets are
 * judged against the reference
 * (a stale entry left in the trie, or one missing, shows as a mismatch).
 */
static void test_address_maps_in_place(void **state)
{
	enum { STEPS = 9 };
	const char *ports[STEPS] = { "80", "8080", "8080", "8080", "8080", "443", "443", "22", "22" };
	/* 1: same map as before the step (updated in place); 0: a new one */
	const int want_same[STEPS] = { -1, 1, 1, 1, 0, -1, 0, 0, 1 };
	char set_path[] = "/tmp/moat-diff-inplace.XXXXXX";
	struct moat_maps *m = moat_inst_maps(diff_inst);
	int fd = mkstemp(set_path), step, i, dir, first = 0;
	struct randgen g;
	FILE *set;

	assert_true(fd >= 0);
	close(fd);
	addr_tables_mode = ADDR_TABLES_NEVER; /* the set stays in the trie */
	randgen_seed(&g, cfg.seed ^ 0x6b656570);
	for (step = 0; step < STEPS; step++) {
		struct gen_apply_info info = { 0 };
		unsigned live = 0, idle;
		struct moat_gen_config cfg_live;
		__u32 before;
		struct ruleset rs;
		struct diags d;
		char text[512];
		int err;

		/* the set: 3,000 /24s, from step 3 on without the first 100;
		 * from step 2 on one more, from step 4 on another */
		if (step == 3)
			first = 100;
		set = fopen(set_path, "w");
		assert_non_null(set);
		for (i = first; i < 3000; i++)
			fprintf(set, "%d.%d.%d.0/24\n", 20 + i / 65536, (i / 256) % 256, i % 256);
		if (step >= 2)
			fprintf(set, "198.18.77.0/24\n");
		if (step >= 4)
			fprintf(set, "198.18.78.0/24\n");
		fclose(set);
		snprintf(text, sizeof(text),
			 "set s file %s\n"
			 "nacl in 10 deny all src @s\n"
			 "nacl in 20 allow tcp dport %s\n"
			 "nacl in 30 allow udp dport 53\n"
			 "nacl out 10 allow all\n",
			 set_path, ports[step]);
		ruleset_init(&rs);
		diags_init(&d);
		assert_int_equal(rules_parse_text("inplace", text, strlen(text), &rs, &d), 0);
		idle = gen_live(m, &live, &cfg_live) == 0 ? !live : 0;
		before = slot_map_id(m->gen_lpm4, idle);
		if (step == 7)
			shadow_swap_first_entries(m);
		addr_update_mode = step == 4 ? ADDR_UPDATE_NEVER : ADDR_UPDATE_AUTO;
		err = step == 5 ? gen_apply_once(m, &rs, &d, &info) : gen_apply(m, &rs, &d, &info);
		addr_update_mode = ADDR_UPDATE_AUTO;
		diags_free(&d);
		assert_int_equal(err, 0);
		assert_int_equal(info.gen, idle);
		if (want_same[step] >= 0 && (before == slot_map_id(m->gen_lpm4, idle)) != want_same[step])
			fail_msg("step %d: the idle generation's trie was %s, expected %s", step,
				 want_same[step] ? "built anew" : "updated in place",
				 want_same[step] ? "updated in place" : "built anew");
		if (want_same[step] == 1 && !info.maps_in_place)
			fail_msg("step %d: no map counted as updated in place", step);
		for (i = 0; i < 3000; i++) {
			struct packet p = { .family = 4, .proto = randgen_below(&g, 2) ? 6 : 17,
					    .tcp_flags = PKT_TCP_SYN };
			uint32_t src = randgen_below(&g, 4) ?
					       (uint32_t)(20 << 24) + randgen_below(&g, 3100 * 256) :
					       0xc6124d00u + randgen_below(&g, 512); /* 198.18.77-78.x */
			uint32_t dst = htonl(0xc6120101u);
			struct diff_case c;

			src = htonl(src);
			memcpy(p.src, &src, 4);
			memcpy(p.dst, &dst, 4);
			p.sport = 1024 + randgen_below(&g, 1000);
			p.dport = (uint16_t[]){ 80, 8080, 443, 53 }[randgen_below(&g, 4)];
			for (dir = RULE_DIR_IN; dir <= RULE_DIR_OUT; dir++) {
				if (!diff_judge(&rs, (enum rule_dir)dir, &p, &c)) {
					diff_print_case(&rs, (enum rule_dir)dir, &p, &c);
					fail_msg("step %d, packet %d disagrees", step, i);
				}
			}
		}
		ruleset_free(&rs);
	}
	addr_tables_mode = ADDR_TABLES_AUTO;
	unlink(set_path);
}

/*
 * A rule set whose vectors need more words than the fixed-size word array
 * holds (MOAT_FAST_WORDS): the rest sit in `gen_words_more`, read by a
 * separate path in both the fast path and the candidate walk.
 *
 * Even rules deny TCP from a source no packet uses, on every port, so
 * every destination-port vector has bits in all 256 words; odd rule i
 * allows TCP to its own port from 198.18.k.0/24, k = (i / 64) % 250, so a
 * source's vector holds only the words of its rules. A packet from
 * 198.18.k.x to the port of rule i then needs word i / 64 of a port
 * vector, far past its first word, and the later port vectors lie past
 * the fixed-size array.
 */
static void test_words_past_fast_array(void **state)
{
	const size_t nrules = MOAT_MAX_RULES;
	size_t cap = nrules * 72, len = 0, i;
	char *text = malloc(cap);
	struct moat_image img;
	struct ruleset rs;
	struct diags d;
	struct randgen g;
	size_t matched = 0;

	assert_non_null(text);
	for (i = 0; i < nrules; i++) {
		if (i % 2 == 0)
			len += snprintf(text + len, cap - len,
					"nacl in %zu deny tcp src 198.19.200.0/24 dport 1-65535\n",
					i + 1);
		else
			len += snprintf(text + len, cap - len,
					"nacl in %zu allow tcp src 198.18.%zu.0/24 dport %zu\n", i + 1,
					(i / 64) % 250, 20000 + i / 2);
		assert_true(len < cap);
	}
	ruleset_init(&rs);
	diags_init(&d);
	assert_int_equal(rules_parse_text("words", text, len, &rs, &d), 0);
	free(text);
	assert_int_equal(compile_ruleset(&rs, &img, &d), 0);
	assert_true(img.nwords > MOAT_FAST_WORDS); /* the test is about these */
	image_free(&img);
	diags_free(&d);
	assert_int_equal(diff_apply(&rs, true), 0);

	randgen_seed(&g, cfg.seed ^ 0x30dd);
	for (i = 0; i < 3000; i++) {
		struct packet p = { .family = 4, .proto = 6, .tcp_flags = PKT_TCP_SYN };
		size_t r = randgen_below(&g, nrules) | 1; /* an odd rule */
		uint32_t src, dst = htonl(0xc6130101u);
		struct diff_case c;

		/* its own source and port; a neighbour's port; another source */
		src = 0xc6120000u | (uint32_t)((r / 64) % 250) << 8 | randgen_below(&g, 256);
		p.dport = 20000 + r / 2;
		if (randgen_below(&g, 4) == 0)
			p.dport += randgen_below(&g, 200) - 100;
		if (randgen_below(&g, 8) == 0)
			src = 0xc6120000u | randgen_below(&g, 65536);
		p.sport = 1024 + randgen_below(&g, 60000);
		src = htonl(src);
		memcpy(p.src, &src, 4);
		memcpy(p.dst, &dst, 4);
		if (!diff_judge(&rs, RULE_DIR_IN, &p, &c)) {
			diff_print_case(&rs, RULE_DIR_IN, &p, &c);
			fail_msg("words past the fixed-size array: packet %zu disagrees", i);
		}
		matched += c.winner != NULL;
	}
	/* most packets are decided by a rule deep in the set */
	assert_true(matched > 2000);
	ruleset_free(&rs);
}

static int setup(void **state)
{
	int err;

	if (geteuid() != 0) {
		/* CI runs as root: a skip there would hide a failure */
		if (getenv("CI")) {
			print_message(
				"the differential test needs root (BPF); CI must run it as root\n");
			return -1;
		}
		print_message("not root: BPF_PROG_TEST_RUN needs root; skipping\n");
		return 0;
	}
	err = moat_inst_open_private(&diff_inst, true);
	if (err) {
		print_message("moat_inst_open_private: %s\n", strerror(-err));
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	if (diff_inst)
		moat_inst_close(diff_inst);
	diff_inst = NULL;
	return 0;
}

static void run_or_skip(void (*fn)(void **), void **state)
{
	if (!diff_inst)
		skip();
	fn(state);
}

static void test_stages_off_run(void **state)
{
	run_or_skip(test_stages_off, state);
}

static void test_differential_nacl_run(void **state)
{
	run_or_skip(test_differential_nacl, state);
}

static void test_mixed_lookups_run(void **state)
{
	run_or_skip(test_mixed_lookups, state);
}

static void test_large_ipv6_set_run(void **state)
{
	run_or_skip(test_large_ipv6_set, state);
}

static void test_decision_cache_epochs_run(void **state)
{
	run_or_skip(test_decision_cache_epochs, state);
}

static void test_decision_cache_lowest_word_run(void **state)
{
	run_or_skip(test_decision_cache_lowest_word, state);
}

static void test_address_maps_in_place_run(void **state)
{
	run_or_skip(test_address_maps_in_place, state);
}

static void test_words_past_fast_array_run(void **state)
{
	run_or_skip(test_words_past_fast_array, state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stages_off_run),
		cmocka_unit_test(test_differential_nacl_run),
		cmocka_unit_test(test_mixed_lookups_run),
		cmocka_unit_test(test_large_ipv6_set_run),
		cmocka_unit_test(test_decision_cache_epochs_run),
		cmocka_unit_test(test_decision_cache_lowest_word_run),
		cmocka_unit_test(test_address_maps_in_place_run),
		cmocka_unit_test(test_words_past_fast_array_run),
	};

	cfg.seed = env_ull("MOAT_DIFF_SEED", DIFF_DEFAULT_SEED);
	cfg.sets = env_ull("MOAT_DIFF_SETS", DIFF_DEFAULT_SETS);
	cfg.packets = env_ull("MOAT_DIFF_PACKETS", DIFF_DEFAULT_PACKETS);
	cfg.max_rules = env_ull("MOAT_DIFF_MAX_RULES", DIFF_DEFAULT_MAX_RULES);
	cfg.only = getenv("MOAT_DIFF_ONLY") ? (long)env_ull("MOAT_DIFF_ONLY", 0) : -1;
	if (cfg.max_rules < 1)
		cfg.max_rules = 1;
	printf("# differential: seed %llu, %zu rule sets of 1..%zu rules, %zu packets each\n",
	       (unsigned long long)cfg.seed, cfg.sets, cfg.max_rules, cfg.packets);
	return cmocka_run_group_tests(tests, setup, teardown);
}
