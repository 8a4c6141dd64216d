// SPDX-License-Identifier: GPL-2.0
/*
 * lint.c - the exact geometry behind `moat lint`.
 *
 * Every rule becomes a union of boxes over seven fields: family, protocol,
 * L4 state (plain, TCP with ACK or RST, non-first fragment), sport or ICMP
 * type, dport or ICMP code, source and destination address. The fields and
 * their special values are the datapath's own (bpf/lib/parse.h and the
 * port/state slots of include/moat_abi.h), so any point of a box is a
 * packet the datapath judges the way the box says.
 *
 * Questions ("which packets does this rule decide?", "which SYNs pass in
 * and have their SYN-ACK pass out?") are answered by walking a region
 * through a table of rules in order: each rule takes the part of the region
 * it matches and the rest moves on, split into boxes where the rule cuts
 * it. That is exact. It is fast enough for thousands of rules because a
 * walk first keeps only the boxes that meet the region's bounding box and
 * then scans compact keys, not boxes; and because a walk that only asks
 * what no rule takes (a set difference) tries the widest rules first,
 * which cut the region into the fewest pieces. Work is bounded per
 * question; a question cut short is reported as unknown, never guessed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "lint.h"

typedef unsigned __int128 u128;

/* The fields of a box, in the order box_minus() cuts them. */
enum { LD_PROTO = 0, LD_STATE, LD_SRC, LD_DST, LD_A, LD_B, LD_N };

/* L4 state, as enum moat_l4_state. */
#define ST_PLAIN 0
#define ST_ACKRST 1
#define ST_NOHDR 2
/* The port (or ICMP type/code) slot of a packet without an L4 header. */
#define PORT_NONE 65536

#define PROTO_ICMP 1
#define PROTO_TCP 6
#define PROTO_UDP 17
#define PROTO_ICMPV6 58

/* A rule's src set times its dst set may not make more boxes than this. */
#define MAX_RULE_BOXES (1u << 16)
/* Box tests per question; 4,096 random rules need a few thousand each. */
#define DEFAULT_BUDGET 2000000UL
/* The first, quick try at a rule's own packet (see analyse_table()). */
#define QUICK_BUDGET 2000UL
/* Looking for a witness the stage before lets through (see stage_before()). */
#define PREFER_BUDGET 20000UL
#define DEFAULT_MAX_SPANS 8
/* A hole's region is listed up to this many pieces (before coalescing). */
#define HOLE_PARTS 256
/* Coalescing is quadratic: regions bigger than this are shown as they are. */
#define COALESCE_MAX 1024
/* A budget cut short: internal, never returned by lint_run(). */
#define ERR_BUDGET (-ETIME)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct lbox {
	u128 lo[LD_N], hi[LD_N];
	int fam; /* 4 or 6 */
};

/* A region: a union of disjoint boxes. */
struct lreg {
	struct lbox *v;
	size_t n, cap;
};

struct ivl {
	u128 lo, hi;
};

struct lrule {
	const struct rule *r;
	int idx; /* in ruleset.rules */
	struct lreg boxes;
	struct lbox bb[2]; /* bounding box per family (index 0: IPv4) */
	bool has[2];
	bool ret; /* an allow rule that looks written for return traffic */
	/*
	 * A set on one side (src or dst) and one range on the other: the
	 * boxes differ only in that field. Walks then take the rule as one
	 * box, @setbox, whose field @set_dim is the union @set, so a block
	 * list of 10,000 prefixes costs one binary search, not 10,000 tests.
	 */
	struct ivl *set[2];
	size_t nset[2];
	int set_dim[2];
	struct lbox setbox[2];
};

/*
 * The small fields of a box as 32-bit bounds, the family folded into the
 * protocol: most pairs of boxes are told apart by these alone, and a key
 * is a sixth of the size of a box, so scanning keys stays in the cache.
 */
enum { LK_PROTO = 0, LK_STATE, LK_A, LK_B, LK_N };

struct lkey {
	uint32_t lo[LK_N], hi[LK_N];
};

/*
 * A box a walk may meet, laid out for the scan: its key, its addresses
 * (the key holds the other fields), then where it comes from.
 */
struct lcand {
	struct lkey key;
	u128 slo, shi, dlo, dhi;
	const struct lbox *box;
	const struct lrule *rule;
	const struct ivl *set; /* NULL, or box's field set_dim is this union */
	size_t nset;
	int set_dim;
};

/* A list of rules as one flat array of their boxes, in order. */
struct lflat {
	struct lcand *e;
	size_t *end; /* end[i]: how many entries the first i rules make */
	size_t n;
};

/* One stage in one direction: its rules in the order they are tried. */
struct ltab {
	struct lrule **v;
	size_t n;
	bool on;
	enum rule_stage stage;
	enum rule_dir dir;
	struct lrule **svc; /* allow rules written to expose something (not ret) */
	size_t nsvc;
	struct lflat fv, fsvc;
};

struct witem {
	struct lbox b;
	size_t k; /* the next candidate to try */
};

/* any_order: a candidate's share of the region's bounding box, for sorting */
struct lcover {
	double cover;
	uint32_t pos;
};

struct lctx {
	const struct ruleset *rs;
	struct lint_result *res;
	size_t max_spans;
	unsigned long budget, left;
	struct lrule *rules;   /* parallel to rs->rules */
	struct ltab tab[2][2]; /* [stage][dir] */
	struct lreg univ;      /* every packet the datapath can judge */
	/* walk scratch: the entries that meet the region, and the parts left */
	struct lcand *cand, *cand2;
	struct lcover *cover;
	struct witem *stk;
	size_t stk_cap;
	char incomplete[160]; /* the first questions the budget cut short */
	const struct lrule *incomplete_rules[LINT_MAX_REFS];
	size_t nincomplete_rules;
	uint16_t eph_lo, eph_hi;   /* the peer's ephemeral ports */
	uint16_t leph_lo, leph_hi; /* this host's */
};

/* Where a walk sends the parts of a region (see walk_run()). */
struct walk {
	const struct lflat *fl;
	size_t n;		 /* rules of @fl walked through */
	const struct lflat *fl2; /* any_order: a second list, for a union */
	size_t n2;
	struct lreg *allow, *deny, *rest; /* NULL: not kept */
	bool stop_at_rest;		  /* stop at the first part no rule takes */
	bool stop_at_allow;		  /* stop at the first part an allow rule takes */
	/*
	 * Only what no rule takes matters (a set difference), not which rule
	 * takes what: try the rules that cover most of the region first, so
	 * it falls apart into fewer pieces.
	 */
	bool any_order;
	/* stop once w->rest or w->allow holds this many parts (0: never) */
	size_t rest_cap, allow_cap;
	bool capped;
	bool found;
	struct lbox found_box;
	/* The first few distinct rules that took a part. */
	const struct lrule *takers[LINT_MAX_REFS - 1];
	size_t ntakers;
	bool more_takers;
};

enum lcls { CLS_TCP = 0, CLS_UDP, CLS_ICMP, CLS_N };

/* ---- boxes and regions ------------------------------------------------ */

static int fam_idx(int fam)
{
	return fam == 6;
}

static u128 addr_max(int fam)
{
	return fam == 4 ? (u128)UINT32_MAX : ~(u128)0;
}

static int icmp_proto(int fam)
{
	return fam == 4 ? PROTO_ICMP : PROTO_ICMPV6;
}

static void box_full(struct lbox *b, int fam)
{
	b->fam = fam;
	b->lo[LD_PROTO] = 0;
	b->hi[LD_PROTO] = 255;
	b->lo[LD_STATE] = ST_PLAIN;
	b->hi[LD_STATE] = ST_NOHDR;
	b->lo[LD_SRC] = b->lo[LD_DST] = 0;
	b->hi[LD_SRC] = b->hi[LD_DST] = addr_max(fam);
	b->lo[LD_A] = b->lo[LD_B] = 0;
	b->hi[LD_A] = b->hi[LD_B] = PORT_NONE;
}

static void box_set(struct lbox *b, int d, u128 lo, u128 hi)
{
	b->lo[d] = lo;
	b->hi[d] = hi;
}

static bool box_meets(const struct lbox *a, const struct lbox *b)
{
	/* the fields that most often tell rules apart come first */
	static const int order[LD_N] = { LD_B, LD_PROTO, LD_A, LD_STATE, LD_SRC, LD_DST };
	int i;

	if (a->fam != b->fam)
		return false;
	for (i = 0; i < LD_N; i++) {
		int d = order[i];

		if (a->lo[d] > b->hi[d] || b->lo[d] > a->hi[d])
			return false;
	}
	return true;
}

static bool box_covers(const struct lbox *outer, const struct lbox *inner)
{
	int d;

	for (d = 0; d < LD_N; d++)
		if (outer->lo[d] > inner->lo[d] || outer->hi[d] < inner->hi[d])
			return false;
	return outer->fam == inner->fam;
}

static void box_and(const struct lbox *a, const struct lbox *b, struct lbox *out)
{
	int d;

	out->fam = a->fam;
	for (d = 0; d < LD_N; d++) {
		out->lo[d] = a->lo[d] > b->lo[d] ? a->lo[d] : b->lo[d];
		out->hi[d] = a->hi[d] < b->hi[d] ? a->hi[d] : b->hi[d];
	}
}

/*
 * @a minus @b (which meet) as at most 2 * LD_N disjoint boxes: cut off what
 * lies below and above @b one field at a time, narrowing as we go.
 */
static int box_minus(const struct lbox *a, const struct lbox *b, struct lbox *out)
{
	struct lbox cur = *a;
	int d, n = 0;

	for (d = 0; d < LD_N; d++) {
		if (cur.lo[d] < b->lo[d]) {
			out[n] = cur;
			out[n++].hi[d] = b->lo[d] - 1;
			cur.lo[d] = b->lo[d];
		}
		if (cur.hi[d] > b->hi[d]) {
			out[n] = cur;
			out[n++].lo[d] = b->hi[d] + 1;
			cur.hi[d] = b->hi[d];
		}
	}
	return n;
}

static int reg_push(struct lreg *r, const struct lbox *b)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		struct lbox *v = realloc(r->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n++] = *b;
	return 0;
}

static void reg_free(struct lreg *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static int reg_copy(const struct lreg *from, struct lreg *to)
{
	size_t i;
	int err = 0;

	for (i = 0; i < from->n && !err; i++)
		err = reg_push(to, &from->v[i]);
	return err;
}

/* @out = @a ∩ @b, box by box (both are unions of disjoint boxes). */
static int reg_and(const struct lreg *a, const struct lreg *b, struct lreg *out)
{
	struct lbox m;
	size_t i, j;
	int err;

	for (i = 0; i < a->n; i++)
		for (j = 0; j < b->n; j++) {
			if (!box_meets(&a->v[i], &b->v[j]))
				continue;
			box_and(&a->v[i], &b->v[j], &m);
			err = reg_push(out, &m);
			if (err)
				return err;
		}
	return 0;
}

/* Narrow every box of @r to [lo, hi] in field @d, dropping the empty ones. */
static void reg_clip(struct lreg *r, int d, u128 lo, u128 hi)
{
	size_t i, n = 0;

	for (i = 0; i < r->n; i++) {
		struct lbox b = r->v[i];

		if (b.lo[d] < lo)
			b.lo[d] = lo;
		if (b.hi[d] > hi)
			b.hi[d] = hi;
		if (b.lo[d] <= b.hi[d])
			r->v[n++] = b;
	}
	r->n = n;
}

/* Two disjoint boxes whose union is a box: equal but in one adjacent field. */
static bool box_mergeable(const struct lbox *a, const struct lbox *b, int *dim)
{
	int d, diff = -1;

	if (a->fam != b->fam)
		return false;
	for (d = 0; d < LD_N; d++) {
		if (a->lo[d] == b->lo[d] && a->hi[d] == b->hi[d])
			continue;
		if (diff >= 0)
			return false;
		/* hi < lo first, so hi + 1 cannot wrap at the top address */
		if (!((a->hi[d] < b->lo[d] && a->hi[d] + 1 == b->lo[d]) ||
		      (b->hi[d] < a->lo[d] && b->hi[d] + 1 == a->lo[d])))
			return false;
		diff = d;
	}
	*dim = diff;
	return diff >= 0;
}

/* Merge boxes the walks split apart, so a region reads as few spans. */
static void reg_coalesce(struct lreg *r)
{
	bool changed = true;
	size_t i, j;
	int d;

	if (r->n > COALESCE_MAX)
		return;
	while (changed) {
		changed = false;
		for (i = 0; i < r->n; i++)
			for (j = i + 1; j < r->n; j++) {
				if (!box_mergeable(&r->v[i], &r->v[j], &d))
					continue;
				if (r->v[j].lo[d] < r->v[i].lo[d])
					r->v[i].lo[d] = r->v[j].lo[d];
				if (r->v[j].hi[d] > r->v[i].hi[d])
					r->v[i].hi[d] = r->v[j].hi[d];
				r->v[j--] = r->v[--r->n];
				changed = true;
			}
	}
}

static int u128_cmp(u128 a, u128 b)
{
	return a < b ? -1 : a > b;
}

/* Spans in a stable, readable order: family, protocol, then field by field. */
static int box_cmp(const void *pa, const void *pb)
{
	const struct lbox *a = pa, *b = pb;
	static const int order[] = { LD_PROTO, LD_SRC, LD_A, LD_DST, LD_B, LD_STATE };
	size_t i;
	int c;

	if (a->fam != b->fam)
		return a->fam - b->fam;
	for (i = 0; i < ARRAY_SIZE(order); i++) {
		c = u128_cmp(a->lo[order[i]], b->lo[order[i]]);
		if (c)
			return c;
	}
	return 0;
}

/* ---- addresses -------------------------------------------------------- */

static u128 addr_to_u128(int fam, const uint8_t *a)
{
	int i, n = fam == 4 ? 4 : 16;
	u128 v = 0;

	for (i = 0; i < n; i++)
		v = v << 8 | a[i];
	return v;
}

static void u128_to_addr(int fam, u128 v, uint8_t *a)
{
	int i, n = fam == 4 ? 4 : 16;

	memset(a, 0, 16);
	for (i = n - 1; i >= 0; i--) {
		a[i] = (uint8_t)v;
		v >>= 8;
	}
}

static struct ivl prefix_ivl(const struct rule_prefix *p)
{
	int width = p->family == 4 ? 32 : 128;
	int host = width - (p->len > width ? width : p->len);
	u128 hm = host >= 128 ? ~(u128)0 : ((u128)1 << host) - 1;
	u128 v = addr_to_u128(p->family, p->addr) & ~hm;

	return (struct ivl){ v, v | hm };
}

static int ivl_cmp(const void *pa, const void *pb)
{
	const struct ivl *a = pa, *b = pb;

	return u128_cmp(a->lo, b->lo);
}

/*
 * The addresses of family @fam that @a matches, as sorted disjoint
 * intervals (a set's prefixes merged). Zero intervals: none of that family.
 */
static int addr_ivls(const struct ruleset *rs, const struct rule_addr *a, int fam, struct ivl **out,
		     size_t *n)
{
	const struct rule_set *set;
	struct ivl *v;
	size_t i, k = 0;

	*out = NULL;
	*n = 0;
	if (a->kind == RULE_ADDR_SET) {
		if (a->set < 0 || (size_t)a->set >= rs->nsets)
			return 0;
		set = &rs->sets[a->set];
		v = calloc(set->n ? set->n : 1, sizeof(*v));
		if (!v)
			return -ENOMEM;
		for (i = 0; i < set->n; i++)
			if (set->prefixes[i].family == fam)
				v[k++] = prefix_ivl(&set->prefixes[i]);
		qsort(v, k, sizeof(*v), ivl_cmp);
		/* merge overlapping and adjacent prefixes */
		for (i = 1, *n = k ? 1 : 0; i < k; i++) {
			struct ivl *last = &v[*n - 1];

			if (last->hi == addr_max(fam) || v[i].lo <= last->hi + 1) {
				if (v[i].hi > last->hi)
					last->hi = v[i].hi;
			} else {
				v[(*n)++] = v[i];
			}
		}
		*out = v;
		return 0;
	}
	if (a->kind == RULE_ADDR_PREFIX && a->prefix.family != fam)
		return 0;
	v = malloc(sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (a->kind == RULE_ADDR_PREFIX)
		*v = prefix_ivl(&a->prefix);
	else
		*v = (struct ivl){ 0, addr_max(fam) };
	*out = v;
	*n = 1;
	return 0;
}

/* ---- rules as boxes --------------------------------------------------- */

/*
 * The heuristic of the connection-hole check: an allow rule was written
 * for return traffic when its local-side port range is wide (replies go
 * to ephemeral ports), or when only its peer-side port is named (replies
 * come from a service port). Such a rule admits the replies, but a
 * stateless filter cannot tell a reply from a new connection.
 */
static bool rule_is_return(const struct rule *r)
{
	if (r->action != RULE_ALLOW || r->established)
		return false;
	if (r->dport.set)
		return r->dport.hi - r->dport.lo + 1 > LINT_WIDE_PORTS;
	return r->sport.set;
}

static int rule_compile(struct lctx *c, struct lrule *lr, const struct rule *r, int idx)
{
	int fams[2], nf = 0, f, err = 0;
	struct ivl *s = NULL, *d = NULL;
	size_t ns, nd, i, j;
	struct lbox b;

	lr->r = r;
	lr->idx = idx;
	lr->ret = rule_is_return(r);
	if (r->family != 6)
		fams[nf++] = 4;
	if (r->family != 4)
		fams[nf++] = 6;

	for (f = 0; f < nf && !err; f++) {
		box_full(&b, fams[f]);
		if (r->proto != RULE_PROTO_ALL)
			box_set(&b, LD_PROTO, r->proto, r->proto);
		/* Rules with L4 fields never match a packet without an L4 header. */
		if (r->established)
			box_set(&b, LD_STATE, ST_ACKRST, ST_ACKRST);
		else if (r->sport.set || r->dport.set || r->has_icmp)
			box_set(&b, LD_STATE, ST_PLAIN, ST_ACKRST);
		if (r->sport.set)
			box_set(&b, LD_A, r->sport.lo, r->sport.hi);
		if (r->dport.set)
			box_set(&b, LD_B, r->dport.lo, r->dport.hi);
		if (r->has_icmp) {
			/* ICMP type and code share the port slots (moat_abi.h) */
			box_set(&b, LD_A, r->icmp_type, r->icmp_type);
			if (r->icmp_code >= 0)
				box_set(&b, LD_B, r->icmp_code, r->icmp_code);
			else
				box_set(&b, LD_B, 0, 255);
		}

		err = addr_ivls(c->rs, &r->src, fams[f], &s, &ns);
		if (!err)
			err = addr_ivls(c->rs, &r->dst, fams[f], &d, &nd);
		if (!err && ns && nd &&
		    (ns > MAX_RULE_BOXES / nd || lr->boxes.n + ns * nd > MAX_RULE_BOXES))
			err = -E2BIG;
		for (i = 0; !err && i < ns; i++)
			for (j = 0; !err && j < nd; j++) {
				box_set(&b, LD_SRC, s[i].lo, s[i].hi);
				box_set(&b, LD_DST, d[j].lo, d[j].hi);
				err = reg_push(&lr->boxes, &b);
			}
		if (!err && ns && nd && (ns > 1) != (nd > 1)) {
			int fi = fam_idx(fams[f]), dim = ns > 1 ? LD_SRC : LD_DST;
			struct ivl *v = ns > 1 ? s : d;
			size_t n = ns > 1 ? ns : nd;

			box_set(&b, LD_SRC, s[0].lo, s[ns - 1].hi);
			box_set(&b, LD_DST, d[0].lo, d[nd - 1].hi);
			lr->setbox[fi] = b;
			lr->set[fi] = v;
			lr->nset[fi] = n;
			lr->set_dim[fi] = dim;
			if (v == s)
				s = NULL;
			else
				d = NULL;
		}
		free(s);
		free(d);
		s = d = NULL;
	}
	if (err)
		return err;

	for (i = 0; i < lr->boxes.n; i++) {
		const struct lbox *x = &lr->boxes.v[i];
		int fi = fam_idx(x->fam), k;

		if (!lr->has[fi]) {
			lr->bb[fi] = *x;
			lr->has[fi] = true;
			continue;
		}
		for (k = 0; k < LD_N; k++) {
			if (x->lo[k] < lr->bb[fi].lo[k])
				lr->bb[fi].lo[k] = x->lo[k];
			if (x->hi[k] > lr->bb[fi].hi[k])
				lr->bb[fi].hi[k] = x->hi[k];
		}
	}
	return 0;
}

static bool rule_meets(const struct lrule *lr, const struct lbox *b)
{
	int fi = fam_idx(b->fam);

	return lr->has[fi] && box_meets(&lr->bb[fi], b);
}

/* The IPv6 extension headers the parser walks past: never a final protocol. */
static bool v6_ext_proto(int p)
{
	return p == 0 || p == 43 || p == 44 || p == 51 || p == 60;
}

/*
 * Every packet the rule tables can see, as the parser leaves it: TCP (plain
 * or ACK/RST) and UDP with ports, ICMP (of the packet's own family) with
 * type and code, other protocols and non-first fragments without either.
 */
static int univ_build(struct lreg *u)
{
	static const int fams[] = { 4, 6 };
	struct lbox b;
	size_t f;
	int p, start, err = 0;

	for (f = 0; f < ARRAY_SIZE(fams) && !err; f++) {
		int fam = fams[f], ic = icmp_proto(fam);

		box_full(&b, fam);
		box_set(&b, LD_PROTO, PROTO_TCP, PROTO_TCP);
		box_set(&b, LD_STATE, ST_PLAIN, ST_ACKRST);
		box_set(&b, LD_A, 0, 65535);
		box_set(&b, LD_B, 0, 65535);
		err = reg_push(u, &b);
		box_set(&b, LD_PROTO, PROTO_UDP, PROTO_UDP);
		box_set(&b, LD_STATE, ST_PLAIN, ST_PLAIN);
		if (!err)
			err = reg_push(u, &b);
		box_set(&b, LD_PROTO, ic, ic);
		box_set(&b, LD_A, 0, 255);
		box_set(&b, LD_B, 0, 255);
		if (!err)
			err = reg_push(u, &b);

		box_set(&b, LD_A, PORT_NONE, PORT_NONE);
		box_set(&b, LD_B, PORT_NONE, PORT_NONE);
		for (p = 0, start = -1; p <= 256 && !err; p++) {
			bool other = p < 256 && p != PROTO_TCP && p != PROTO_UDP && p != ic &&
				     !(fam == 6 && v6_ext_proto(p));

			if (other && start < 0)
				start = p;
			if (!other && start >= 0) {
				box_set(&b, LD_PROTO, start, p - 1);
				err = reg_push(u, &b);
				start = -1;
			}
		}
		box_set(&b, LD_PROTO, 0, 255);
		box_set(&b, LD_STATE, ST_NOHDR, ST_NOHDR);
		if (!err)
			err = reg_push(u, &b);
	}
	return err;
}

/*
 * The packets that open a flow of class @cls, in both families: a TCP SYN
 * (no ACK), any UDP datagram, an ICMP echo request.
 */
static int opener_build(struct lreg *o, enum lcls cls)
{
	static const int fams[] = { 4, 6 };
	struct lbox b;
	size_t f;
	int err = 0;

	for (f = 0; f < ARRAY_SIZE(fams) && !err; f++) {
		box_full(&b, fams[f]);
		box_set(&b, LD_STATE, ST_PLAIN, ST_PLAIN);
		if (cls == CLS_ICMP) {
			int ic = icmp_proto(fams[f]);

			box_set(&b, LD_PROTO, ic, ic);
			box_set(&b, LD_A, ic == PROTO_ICMP ? 8 : 128, ic == PROTO_ICMP ? 8 : 128);
			box_set(&b, LD_B, 0, 0);
		} else {
			int p = cls == CLS_TCP ? PROTO_TCP : PROTO_UDP;

			box_set(&b, LD_PROTO, p, p);
			box_set(&b, LD_A, 0, 65535);
			box_set(&b, LD_B, 0, 65535);
		}
		err = reg_push(o, &b);
	}
	return err;
}

static void swap_dim(struct lbox *b, int d1, int d2)
{
	u128 lo = b->lo[d1], hi = b->hi[d1];

	b->lo[d1] = b->lo[d2];
	b->hi[d1] = b->hi[d2];
	b->lo[d2] = lo;
	b->hi[d2] = hi;
}

/*
 * The replies to the openers in @b, or (@back) the openers of the replies:
 * addresses and ports swap; a SYN is answered by a SYN-ACK (ACK set), an
 * echo request by an echo reply.
 */
static void box_reply(struct lbox *b, enum lcls cls, bool back)
{
	swap_dim(b, LD_SRC, LD_DST);
	if (cls == CLS_ICMP) {
		bool v4 = b->fam == 4;
		u128 t = back ? (v4 ? 8 : 128) : (v4 ? 0 : 129);

		box_set(b, LD_A, t, t);
		box_set(b, LD_B, 0, 0);
		return;
	}
	swap_dim(b, LD_A, LD_B);
	if (cls == CLS_TCP)
		box_set(b, LD_STATE, back ? ST_PLAIN : ST_ACKRST, back ? ST_PLAIN : ST_ACKRST);
}

static void reg_reply(struct lreg *r, enum lcls cls, bool back)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		box_reply(&r->v[i], cls, back);
}

/* ---- the walk --------------------------------------------------------- */

static void box_key(const struct lbox *b, struct lkey *k)
{
	uint32_t f = fam_idx(b->fam) * 256;

	k->lo[LK_PROTO] = f + (uint32_t)b->lo[LD_PROTO];
	k->hi[LK_PROTO] = f + (uint32_t)b->hi[LD_PROTO];
	k->lo[LK_STATE] = (uint32_t)b->lo[LD_STATE];
	k->hi[LK_STATE] = (uint32_t)b->hi[LD_STATE];
	k->lo[LK_A] = (uint32_t)b->lo[LD_A];
	k->hi[LK_A] = (uint32_t)b->hi[LD_A];
	k->lo[LK_B] = (uint32_t)b->lo[LD_B];
	k->hi[LK_B] = (uint32_t)b->hi[LD_B];
}

static bool key_meets(const struct lkey *a, const struct lkey *b)
{
	return a->lo[LK_B] <= b->hi[LK_B] && b->lo[LK_B] <= a->hi[LK_B] &&
	       a->lo[LK_PROTO] <= b->hi[LK_PROTO] && b->lo[LK_PROTO] <= a->hi[LK_PROTO] &&
	       a->lo[LK_A] <= b->hi[LK_A] && b->lo[LK_A] <= a->hi[LK_A] &&
	       a->lo[LK_STATE] <= b->hi[LK_STATE] && b->lo[LK_STATE] <= a->hi[LK_STATE];
}

static void flat_free(struct lflat *f)
{
	free(f->e);
	free(f->end);
	memset(f, 0, sizeof(*f));
}

static int flat_build(struct lflat *f, struct lrule *const *v, size_t n)
{
	size_t i, j, total = 0;

	for (i = 0; i < n; i++)
		total += v[i]->boxes.n;
	f->e = calloc(total + 1, sizeof(*f->e));
	f->end = calloc(n + 1, sizeof(*f->end));
	if (!f->e || !f->end)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		for (j = 0; j < v[i]->boxes.n; j++) {
			const struct lbox *b = &v[i]->boxes.v[j];
			int fi = fam_idx(b->fam);
			struct lcand *e;

			/* a set rule: one entry per family, for its first box */
			if (v[i]->set[fi]) {
				if (j && v[i]->boxes.v[j - 1].fam == b->fam)
					continue;
				b = &v[i]->setbox[fi];
			}
			e = &f->e[f->n++];
			box_key(b, &e->key);
			e->slo = b->lo[LD_SRC];
			e->shi = b->hi[LD_SRC];
			e->dlo = b->lo[LD_DST];
			e->dhi = b->hi[LD_DST];
			e->box = b;
			e->rule = v[i];
			e->set = v[i]->set[fi];
			e->nset = v[i]->nset[fi];
			e->set_dim = v[i]->set_dim[fi];
		}
		f->end[i + 1] = f->n;
	}
	return 0;
}

static double share(u128 lo, u128 hi, u128 qlo, u128 qhi)
{
	if (lo < qlo)
		lo = qlo;
	if (hi > qhi)
		hi = qhi;
	/* widths as hi - lo: a full IPv6 range has no hi - lo + 1 */
	return qhi > qlo ? ((double)(hi - lo) + 1.0) / ((double)(qhi - qlo) + 1.0) : 1.0;
}

/*
 * The share of @q's volume (key @qk) that candidate @cd covers, field by
 * field, from the candidate alone: its box may be far away in memory.
 */
static double cand_cover(const struct lcand *cd, const struct lkey *qk, const struct lbox *q)
{
	double v = share(cd->slo, cd->shi, q->lo[LD_SRC], q->hi[LD_SRC]) *
		   share(cd->dlo, cd->dhi, q->lo[LD_DST], q->hi[LD_DST]);
	int i;

	for (i = 0; i < LK_N; i++)
		v *= share(cd->key.lo[i], cd->key.hi[i], qk->lo[i], qk->hi[i]);
	return v;
}

static int cand_cmp(const void *pa, const void *pb)
{
	const struct lcover *a = pa, *b = pb;

	if (a->cover != b->cover)
		return a->cover > b->cover ? -1 : 1;
	return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static int stk_push(struct lctx *c, size_t *sp, const struct lbox *b, size_t k)
{
	if (*sp == c->stk_cap) {
		size_t cap = c->stk_cap ? c->stk_cap * 2 : 64;
		struct witem *v = realloc(c->stk, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->stk = v;
		c->stk_cap = cap;
	}
	c->stk[*sp].b = *b;
	c->stk[*sp].k = k;
	(*sp)++;
	return 0;
}

/* Do the addresses of candidate @cd meet those of @b? */
static bool cand_addr_meets(const struct lcand *cd, const struct lbox *b)
{
	return cd->slo <= b->hi[LD_SRC] && b->lo[LD_SRC] <= cd->shi && cd->dlo <= b->hi[LD_DST] &&
	       b->lo[LD_DST] <= cd->dhi;
}

/* Does candidate @cd meet @b (whose key is @k)? */
static bool cand_meets(const struct lcand *cd, const struct lkey *k, const struct lbox *b)
{
	return key_meets(&cd->key, k) && cand_addr_meets(cd, b);
}

static int walk_take(struct walk *w, const struct lrule *lr, const struct lbox *part,
		     const struct lbox *rb)
{
	struct lreg *to = lr->r->action == RULE_ALLOW ? w->allow : w->deny;
	struct lbox m;
	size_t i;

	box_and(part, rb, &m);
	for (i = 0; i < w->ntakers && w->takers[i] != lr; i++)
		;
	if (i == w->ntakers) {
		if (w->ntakers < ARRAY_SIZE(w->takers))
			w->takers[w->ntakers++] = lr;
		else
			w->more_takers = true;
	}
	return to ? reg_push(to, &m) : 0;
}

/* The first interval of @v[0..n) that ends at or after @x. */
static size_t ivl_find(const struct ivl *v, size_t n, u128 x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].hi < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* A part a set candidate leaves: the first goes on in @p, the rest wait. */
static int set_left(struct lctx *c, struct lbox *p, const struct lbox *part, bool *have,
		    size_t next, size_t *sp)
{
	if (*have)
		return stk_push(c, sp, part, next);
	*p = *part;
	*have = true;
	return 0;
}

/*
 * One walk step against a set candidate: the rule takes the parts of @p
 * inside its box whose set field lies in one of its intervals; what is
 * left is @p outside the box (box_minus() against the box with the set
 * field whole) and the gaps between the intervals. The first of those
 * goes on in @p, the others are pushed to resume at candidate @next.
 * @whole: nothing is left.
 */
static int walk_set(struct lctx *c, struct walk *w, const struct lcand *cd, struct lbox *p,
		    size_t next, size_t *sp, bool *whole)
{
	int d = cd->set_dim, n, j, err;
	struct lbox full = *cd->box, in, m, parts[2 * LD_N];
	size_t k = ivl_find(cd->set, cd->nset, p->lo[d]), first = k;
	bool have = false;
	u128 start;

	*whole = false;
	if (k == cd->nset || cd->set[k].lo > p->hi[d])
		return 0; /* between its intervals */
	full.lo[d] = 0;
	full.hi[d] = addr_max(p->fam);
	box_and(p, &full, &in);

	/* what it takes */
	for (; k < cd->nset && cd->set[k].lo <= in.hi[d]; k++) {
		if (!c->left)
			return ERR_BUDGET;
		c->left--;
		m = in;
		if (m.lo[d] < cd->set[k].lo)
			m.lo[d] = cd->set[k].lo;
		if (m.hi[d] > cd->set[k].hi)
			m.hi[d] = cd->set[k].hi;
		err = walk_take(w, cd->rule, &m, &m);
		if (err)
			return err;
		if (w->stop_at_allow && cd->rule->r->action == RULE_ALLOW) {
			w->found = true;
			w->found_box = m;
			return 0;
		}
		if (w->allow_cap && w->allow && w->allow->n >= w->allow_cap) {
			w->capped = true;
			return 0;
		}
	}

	/* what is left: outside the box, then the gaps between intervals */
	n = box_covers(&full, p) ? 0 : box_minus(p, &full, parts);
	for (j = 0; j < n; j++) {
		err = set_left(c, p, &parts[j], &have, next, sp);
		if (err)
			return err;
	}
	start = in.lo[d];
	for (k = first; k < cd->nset && cd->set[k].lo <= in.hi[d]; k++) {
		/* lo > start >= 0 and hi < in.hi: neither bound wraps */
		if (cd->set[k].lo > start) {
			m = in;
			m.lo[d] = start;
			m.hi[d] = cd->set[k].lo - 1;
			err = set_left(c, p, &m, &have, next, sp);
			if (err)
				return err;
		}
		if (cd->set[k].hi >= in.hi[d])
			break;
		start = cd->set[k].hi + 1;
	}
	if (k == cd->nset || cd->set[k].lo > in.hi[d]) {
		m = in;
		m.lo[d] = start;
		err = set_left(c, p, &m, &have, next, sp);
		if (err)
			return err;
	}
	*whole = !have;
	return 0;
}

/*
 * Walk region @q through the first @w->n rules of @w->fl (and of @w->fl2)
 * in order: each rule takes the part of what is left that it matches (to
 * w->allow or w->deny by its action) and the rest goes on, cut into boxes
 * around the rule's box. What no rule takes goes to w->rest. Depth first,
 * so a search for one untaken packet (stop_at_rest) ends as soon as it
 * meets one. Returns 0, -ENOMEM or ERR_BUDGET (c->left ran out).
 */
static int walk_run(struct lctx *c, struct walk *w, const struct lreg *q)
{
	const struct lflat *fl;
	size_t i, ncand = 0, sp = 0, nf, li;
	struct lbox qbb[2], parts[2 * LD_N];
	bool qhas[2] = { false, false };
	struct lkey qk[2], ik;
	int err, n, j, d;

	if (!q->n)
		return 0;
	for (i = 0; i < q->n; i++) {
		int fi = fam_idx(q->v[i].fam);

		if (!qhas[fi]) {
			qbb[fi] = q->v[i];
			qhas[fi] = true;
			continue;
		}
		for (d = 0; d < LD_N; d++) {
			if (q->v[i].lo[d] < qbb[fi].lo[d])
				qbb[fi].lo[d] = q->v[i].lo[d];
			if (q->v[i].hi[d] > qbb[fi].hi[d])
				qbb[fi].hi[d] = q->v[i].hi[d];
		}
	}
	for (i = 0; i < 2; i++)
		if (qhas[i])
			box_key(&qbb[i], &qk[i]);
	/* Only the boxes that can meet the region at all are worth visiting. */
	for (li = 0; li < 2; li++) {
		fl = li ? w->fl2 : w->fl;
		if (!fl)
			continue;
		nf = fl->end[li ? w->n2 : w->n];
		for (i = 0; i < nf; i++) {
			/* the key's protocol field carries the family */
			int fi = fl->e[i].key.lo[LK_PROTO] >> 8;

			if (qhas[fi] && cand_meets(&fl->e[i], &qk[fi], &qbb[fi]))
				c->cand[ncand++] = fl->e[i];
		}
	}

	if (w->any_order && ncand > 1) {
		struct lcand *t;

		for (i = 0; i < ncand; i++) {
			int fi = c->cand[i].key.lo[LK_PROTO] >> 8;

			c->cover[i].cover = cand_cover(&c->cand[i], &qk[fi], &qbb[fi]);
			c->cover[i].pos = (uint32_t)i;
		}
		qsort(c->cover, ncand, sizeof(*c->cover), cand_cmp);
		for (i = 0; i < ncand; i++)
			c->cand2[i] = c->cand[c->cover[i].pos];
		t = c->cand;
		c->cand = c->cand2;
		c->cand2 = t;
	}

	for (i = q->n; i-- > 0;) {
		err = stk_push(c, &sp, &q->v[i], 0);
		if (err)
			return err;
	}
	while (sp) {
		struct witem it = c->stk[--sp];
		size_t k;

		box_key(&it.b, &ik);
		for (k = it.k; k < ncand; k++) {
			const struct lcand *cd = &c->cand[k];
			const struct lbox *rb = cd->box;

			if (!key_meets(&cd->key, &ik))
				continue;
			if (!c->left)
				return ERR_BUDGET;
			c->left--;
			if (!cand_addr_meets(cd, &it.b))
				continue;
			if (cd->set) {
				bool whole;

				err = walk_set(c, w, cd, &it.b, k + 1, &sp, &whole);
				if (err || w->found || w->capped)
					return err;
				if (whole)
					goto taken;
				box_key(&it.b, &ik);
				continue;
			}
			err = walk_take(w, cd->rule, &it.b, rb);
			if (err)
				return err;
			if (w->stop_at_allow && cd->rule->r->action == RULE_ALLOW) {
				w->found = true;
				box_and(&it.b, rb, &w->found_box);
				return 0;
			}
			if (w->allow_cap && w->allow && w->allow->n >= w->allow_cap) {
				w->capped = true;
				return 0;
			}
			if (box_covers(rb, &it.b))
				goto taken;
			n = box_minus(&it.b, rb, parts);
			for (j = n - 1; j >= 1; j--) {
				err = stk_push(c, &sp, &parts[j], k + 1);
				if (err)
					return err;
			}
			it.b = parts[0];
			box_key(&it.b, &ik);
		}
		if (w->rest) {
			err = reg_push(w->rest, &it.b);
			if (err)
				return err;
			if (w->rest_cap && w->rest->n >= w->rest_cap) {
				w->capped = true;
				return 0;
			}
		}
		if (w->stop_at_rest) {
			w->found = true;
			w->found_box = it.b;
			return 0;
		}
	taken:;
	}
	return 0;
}

/* The part of @q that table @t allows (all of it when the stage is off). */
static int tab_allowed(struct lctx *c, const struct ltab *t, const struct lreg *q, struct lreg *out)
{
	/* SG rules are a union: which one takes a part does not matter */
	struct walk w = {
		.fl = &t->fv, .n = t->n, .allow = out, .any_order = t->stage == RULE_STAGE_SG
	};

	return t->on ? walk_run(c, &w, q) : reg_copy(q, out);
}

/* The rule of @t that decides the single-packet box @pt, or NULL. */
static const struct lrule *tab_first(const struct ltab *t, const struct lbox *pt)
{
	size_t i, j;

	for (i = 0; i < t->n; i++) {
		const struct lrule *lr = t->v[i];

		if (!rule_meets(lr, pt))
			continue;
		for (j = 0; j < lr->boxes.n; j++)
			if (box_meets(&lr->boxes.v[j], pt))
				return lr;
	}
	return NULL;
}

/* ---- witnesses -------------------------------------------------------- */

static u128 pick_pref(u128 lo, u128 hi, const u128 *pref, size_t n, bool *ok)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (pref[i] >= lo && pref[i] <= hi) {
			*ok = true;
			return pref[i];
		}
	*ok = false;
	return lo;
}

/* A round number in [lo, hi] (10000, 1000, ... multiples), else lo. */
static u128 pick_round(u128 lo, u128 hi)
{
	static const unsigned int steps[] = { 10000, 1000, 100, 10 };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(steps); i++) {
		u128 m = (lo + steps[i] - 1) / steps[i] * steps[i];

		if (m && m <= hi)
			return m;
	}
	return lo;
}

static u128 v4(unsigned int a, unsigned int b, unsigned int c, unsigned int d)
{
	return (u128)(a << 24 | b << 16 | c << 8 | d);
}

static u128 v6doc(unsigned int net, unsigned int host)
{
	/* 2001:db8:NET::HOST */
	return (u128)0x20010db8u << 96 | (u128)net << 80 | host;
}

static u128 pick_addr(int fam, u128 lo, u128 hi, bool local)
{
	/* documentation networks: local TEST-NET-1 first, peers TEST-NET-3 */
	u128 p4[] = { v4(203, 0, 113, 10), v4(198, 51, 100, 10), v4(192, 0, 2, 10) };
	u128 p6[] = { v6doc(2, 0x10), v6doc(3, 0x10), v6doc(1, 0x10) };
	u128 *pref = fam == 4 ? p4 : p6, v;
	bool ok;

	if (local) {
		v = pref[0];
		pref[0] = pref[2];
		pref[2] = v;
	}
	v = pick_pref(lo, hi, pref, 3, &ok);
	if (ok)
		return v;
	/* skip a network's first address when there is room */
	return hi > lo ? lo + 1 : lo;
}

/*
 * A readable point of @b: TCP, UDP or ICMP when it may, a client-like
 * source port, a service-like destination port, documentation addresses.
 * @dir says which side is local (in: the destination).
 */
static void pick_point(const struct lctx *c, const struct lbox *b, enum rule_dir dir,
		       struct lbox *pt)
{
	int ic = icmp_proto(b->fam);
	u128 protos[] = { PROTO_TCP, PROTO_UDP, (u128)ic, 47, 132, 4 };
	u128 sports[] = { 40000 }, dports[] = { 443, 80 };
	u128 p, v;
	bool ok;
	int d;

	*pt = *b;
	p = pick_pref(b->lo[LD_PROTO], b->hi[LD_PROTO], protos, ARRAY_SIZE(protos), &ok);
	if (!ok && b->fam == 6)
		while (v6_ext_proto((int)p) && p < b->hi[LD_PROTO])
			p++;
	box_set(pt, LD_PROTO, p, p);
	box_set(pt, LD_STATE, b->lo[LD_STATE], b->lo[LD_STATE]);

	if (b->lo[LD_A] == PORT_NONE) {
		/* no L4 header: nothing to choose */
	} else if (p == (u128)ic && b->lo[LD_STATE] != ST_NOHDR) {
		u128 echo = ic == PROTO_ICMP ? 8 : 128;

		v = pick_pref(b->lo[LD_A], b->hi[LD_A], &echo, 1, &ok);
		/* ICMPv6 133-137 pass before any rule unless pass-ndp is off */
		if (!ok && ic == PROTO_ICMPV6 && c->rs->settings.pass_ndp)
			while (v >= 133 && v <= 137 && v < b->hi[LD_A])
				v++;
		box_set(pt, LD_A, v, v);
		box_set(pt, LD_B, b->lo[LD_B], b->lo[LD_B]);
	} else {
		v = pick_pref(b->lo[LD_A], b->hi[LD_A], sports, ARRAY_SIZE(sports), &ok);
		if (!ok)
			v = pick_round(b->lo[LD_A], b->hi[LD_A]);
		box_set(pt, LD_A, v, v);
		v = pick_pref(b->lo[LD_B], b->hi[LD_B], dports, ARRAY_SIZE(dports), &ok);
		if (!ok)
			v = pick_round(b->lo[LD_B], b->hi[LD_B]);
		box_set(pt, LD_B, v, v);
	}
	for (d = LD_SRC; d <= LD_DST; d++) {
		bool local = (d == LD_DST) == (dir == RULE_DIR_IN);

		v = pick_addr(b->fam, b->lo[d], b->hi[d], local);
		box_set(pt, d, v, v);
	}
}

static void point_packet(const struct lbox *pt, enum rule_dir dir, struct lint_witness *w)
{
	struct packet *p = &w->pkt;
	int proto = (int)pt->lo[LD_PROTO];

	memset(w, 0, sizeof(*w));
	w->dir = dir;
	p->family = pt->fam;
	p->proto = proto;
	u128_to_addr(pt->fam, pt->lo[LD_SRC], p->src);
	u128_to_addr(pt->fam, pt->lo[LD_DST], p->dst);
	if (pt->lo[LD_STATE] == ST_NOHDR) {
		p->frag = true;
		return;
	}
	if (proto == PROTO_TCP || proto == PROTO_UDP) {
		p->sport = (uint16_t)pt->lo[LD_A];
		p->dport = (uint16_t)pt->lo[LD_B];
		if (proto == PROTO_TCP)
			p->tcp_flags = pt->lo[LD_STATE] == ST_ACKRST ? PKT_TCP_ACK : PKT_TCP_SYN;
	} else if (proto == icmp_proto(pt->fam)) {
		p->icmp_type = (int)pt->lo[LD_A];
		p->icmp_code = (int)pt->lo[LD_B];
	}
}

static void box_span(const struct lbox *b, enum rule_dir dir, struct lint_span *s)
{
	int peer = dir == RULE_DIR_IN ? LD_SRC : LD_DST;
	int local = dir == RULE_DIR_IN ? LD_DST : LD_SRC;
	int pport = dir == RULE_DIR_IN ? LD_A : LD_B;
	int lport = dir == RULE_DIR_IN ? LD_B : LD_A;

	memset(s, 0, sizeof(*s));
	s->family = b->fam;
	s->proto = (int)b->lo[LD_PROTO];
	s->dir = dir;
	s->has_ports = (s->proto == PROTO_TCP || s->proto == PROTO_UDP) &&
		       b->lo[LD_PROTO] == b->hi[LD_PROTO] && b->hi[LD_A] < PORT_NONE;
	u128_to_addr(b->fam, b->lo[peer], s->peer_lo);
	u128_to_addr(b->fam, b->hi[peer], s->peer_hi);
	u128_to_addr(b->fam, b->lo[local], s->local_lo);
	u128_to_addr(b->fam, b->hi[local], s->local_hi);
	if (s->has_ports) {
		s->peer_port_lo = (uint16_t)b->lo[pport];
		s->peer_port_hi = (uint16_t)b->hi[pport];
		s->local_port_lo = (uint16_t)b->lo[lport];
		s->local_port_hi = (uint16_t)b->hi[lport];
	}
}

/* Coalesce and sort @r, then keep up to max_spans of it as spans. */
static int reg_spans(struct lctx *c, struct lreg *r, enum rule_dir dir, struct lint_span **out,
		     size_t *n, size_t *total)
{
	size_t i, keep;

	reg_coalesce(r);
	if (r->n)
		qsort(r->v, r->n, sizeof(*r->v), box_cmp);
	keep = r->n < c->max_spans ? r->n : c->max_spans;
	*total = r->n;
	*n = 0;
	*out = NULL;
	if (!keep)
		return 0;
	*out = calloc(keep, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (i = 0; i < keep; i++)
		box_span(&r->v[i], dir, &(*out)[i]);
	*n = keep;
	return 0;
}

/* ---- text ------------------------------------------------------------- */

const char *lint_severity_name(enum lint_severity s)
{
	switch (s) {
	case LINT_SEV_ERROR:
		return "error";
	case LINT_SEV_WARNING:
		return "warning";
	case LINT_SEV_INFO:
		return "info";
	}
	return "?";
}

const char *lint_reach_proto_name(enum lint_reach_proto p)
{
	static const char *const names[] = { "tcp", "udp", "icmp" };

	return (unsigned int)p < ARRAY_SIZE(names) ? names[p] : "?";
}

const char *lint_reach_layer_name(enum lint_reach_layer l)
{
	static const char *const names[] = { "nacl", "sg", "both" };

	return (unsigned int)l < ARRAY_SIZE(names) ? names[l] : "?";
}

int lint_addr_range_format(int family, const uint8_t *lo, const uint8_t *hi, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	int af = family == 4 ? AF_INET : AF_INET6, width = family == 4 ? 32 : 128, n;
	u128 l = addr_to_u128(family, lo), h = addr_to_u128(family, hi), x = l ^ h;

	if (!inet_ntop(af, lo, a, sizeof(a)) || !inet_ntop(af, hi, b, sizeof(b)))
		return -EINVAL;
	/* a CIDR when hi - lo is all host bits of an aligned block */
	if ((x & (x + 1)) == 0 && (l & x) == 0 && (h & x) == x) {
		int host = 0;

		while (host < width && ((x >> host) & 1))
			host++;
		n = snprintf(buf, len, "%s/%d", a, width - host);
	} else {
		n = snprintf(buf, len, "%s-%s", a, b);
	}
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static void ports_text(uint16_t lo, uint16_t hi, char *buf, size_t len)
{
	if (lo == 0 && hi == 65535)
		snprintf(buf, len, "any port");
	else if (lo == hi)
		snprintf(buf, len, "port %u", lo);
	else
		snprintf(buf, len, "ports %u-%u", lo, hi);
}

int lint_span_format(const struct lint_span *s, char *buf, size_t len)
{
	char peer[2 * INET6_ADDRSTRLEN + 8], local[2 * INET6_ADDRSTRLEN + 8];
	char pp[32] = "", lp[32] = "", proto[8];
	int err, n;

	err = lint_addr_range_format(s->family, s->peer_lo, s->peer_hi, peer, sizeof(peer));
	if (!err)
		err = lint_addr_range_format(s->family, s->local_lo, s->local_hi, local,
					     sizeof(local));
	if (!err)
		err = rule_proto_name(s->proto, proto, sizeof(proto));
	if (err)
		return err;
	if (s->has_ports) {
		pp[0] = lp[0] = ' ';
		ports_text(s->peer_port_lo, s->peer_port_hi, pp + 1, sizeof(pp) - 1);
		ports_text(s->local_port_lo, s->local_port_hi, lp + 1, sizeof(lp) - 1);
	}
	if (s->dir == RULE_DIR_IN)
		n = snprintf(buf, len, "%s %s%s -> local %s%s", proto, peer, pp, local, lp);
	else
		n = snprintf(buf, len, "%s local %s%s -> %s%s", proto, local, lp, peer, pp);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

/* "nacl in 100" or "sg in #2": how messages name a rule. */
static void rule_name(const struct rule *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s %s%d", rule_stage_name(r->stage), rule_dir_name(r->dir),
		 r->stage == RULE_STAGE_SG ? "#" : "", r->number);
}

static void rule_text(const struct lctx *c, const struct rule *r, char *buf, size_t len)
{
	if (rule_format(r, c->rs, buf, len))
		rule_name(r, buf, len);
}

/* ---- findings --------------------------------------------------------- */

/* A question about @lr (what: the check) ran out of budget: say which. */
static void note_incomplete(struct lctx *c, const char *what, const struct lrule *lr)
{
	size_t len = strlen(c->incomplete);
	char name[48];

	c->res->incomplete++;
	if (c->nincomplete_rules < ARRAY_SIZE(c->incomplete_rules))
		c->incomplete_rules[c->nincomplete_rules++] = lr;
	if (c->res->incomplete > 3)
		return;
	rule_name(lr->r, name, sizeof(name));
	snprintf(c->incomplete + len, sizeof(c->incomplete) - len, "%s%s of %s", len ? ", " : "",
		 what, name);
}

static struct lint_finding *finding_new(struct lctx *c, enum lint_severity sev, const char *kind,
					const struct lrule *about)
{
	struct lint_result *res = c->res;
	struct lint_finding *f;

	if (res->n == res->cap) {
		size_t cap = res->cap ? res->cap * 2 : 16;
		struct lint_finding *v = realloc(res->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		res->v = v;
		res->cap = cap;
	}
	f = &res->v[res->n++];
	memset(f, 0, sizeof(*f));
	f->sev = sev;
	f->kind = kind;
	if (about) {
		f->loc = about->r->loc;
	} else if (c->rs->nfiles) {
		f->loc.file = c->rs->files[0];
	}
	return f;
}

static void finding_ref(struct lint_finding *f, const struct lrule *lr)
{
	if (!lr || f->nrefs >= LINT_MAX_REFS)
		return;
	f->refs[f->nrefs].stage = lr->r->stage;
	f->refs[f->nrefs].dir = lr->r->dir;
	f->refs[f->nrefs].number = lr->r->number;
	f->refs[f->nrefs].rule = lr->idx;
	f->nrefs++;
}

/* *text = the formatted string (a finding's message or fix); NULL and
 * -ENOMEM when out of memory. */
__attribute__((format(printf, 2, 3))) static int finding_text(char **text, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(text, fmt, ap);
	va_end(ap);
	if (n < 0) {
		*text = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void finding_witness(struct lint_finding *f, const struct lbox *pt, enum rule_dir dir)
{
	if (f->nwitness < ARRAY_SIZE(f->witness))
		point_packet(pt, dir, &f->witness[f->nwitness++]);
}

/* "and 3 more regions" when a message shows one span of several. */
static void more_text(size_t total, char *buf, size_t len)
{
	if (total > 1)
		snprintf(buf, len, " (and %zu more region%s)", total - 1, total > 2 ? "s" : "");
	else
		buf[0] = '\0';
}

static void span_text(const struct lint_finding *f, char *buf, size_t len)
{
	if (!f->nspans || lint_span_format(&f->spans[0], buf, len))
		snprintf(buf, len, "?");
}

/* ---- shadowed, partly overridden, redundant --------------------------- */

static void takers_text(const struct walk *w, char *buf, size_t len)
{
	size_t i, off = 0;
	char name[48];

	buf[0] = '\0';
	for (i = 0; i < w->ntakers && off < len; i++) {
		rule_name(w->takers[i]->r, name, sizeof(name));
		off += snprintf(buf + off, len - off, "%s%s",
				i == 0 ? ""
				       : (i + 1 == w->ntakers && !w->more_takers ? " and " : ", "),
				name);
	}
	if (w->more_takers && off < len)
		snprintf(buf + off, len - off, " and others");
}

/* The first rule of @t before @pos that covers all of @q alone, or NULL. */
static const struct lrule *single_cover(const struct ltab *t, size_t pos, const struct lreg *q)
{
	size_t j, i, k;

	for (j = 0; j < pos; j++) {
		const struct lrule *o = t->v[j];

		for (i = 0; i < q->n; i++) {
			for (k = 0; k < o->boxes.n; k++)
				if (box_covers(&o->boxes.v[k], &q->v[i]))
					break;
			if (k == o->boxes.n)
				break;
		}
		if (i == q->n)
			return o;
	}
	return NULL;
}

static int report_never(struct lctx *c, const struct ltab *t, size_t pos, const struct lreg *q,
			const struct lreg *wq, struct walk *w)
{
	const struct lrule *lr = t->v[pos], *one = q->n ? single_cover(t, pos, q) : NULL;
	bool nacl = t->stage == RULE_STAGE_NACL, opposite = false;
	struct lint_finding *f;
	char who[256], name[48];
	struct lbox pt;
	size_t i;
	int err;

	f = finding_new(c, nacl ? LINT_SEV_WARNING : LINT_SEV_INFO,
			nacl ? LINT_KIND_SHADOWED : LINT_KIND_REDUNDANT, lr);
	if (!f)
		return -ENOMEM;
	finding_ref(f, lr);
	rule_name(lr->r, name, sizeof(name));
	if (!q->n) {
		err = finding_text(&f->message,
				  "%s can never match: no packet has all it asks for "
				  "(an address set without a prefix of its family?)",
				  name);
		return err ? err : finding_text(&f->fix, "remove it, or fix its addresses");
	}
	/* one rule that covers it all says it best */
	if (one) {
		w->takers[0] = one;
		w->ntakers = 1;
		w->more_takers = false;
	}
	for (i = 0; i < w->ntakers; i++) {
		finding_ref(f, w->takers[i]);
		opposite |= w->takers[i]->r->action != lr->r->action;
	}
	takers_text(w, who, sizeof(who));
	/* a packet it matches, decided by an earlier rule: trace shows which */
	pick_point(c, &wq->v[0], t->dir, &pt);
	finding_witness(f, &pt, t->dir);
	if (nacl) {
		err = finding_text(&f->message, "%s never matches: %s, tried first, cover%s all it matches",
				  name, who, w->ntakers > 1 || w->more_takers ? "" : "s");
		if (!err)
			err = opposite
				      ? finding_text(&f->fix,
						    "give it a number below %d if it should decide "
						    "these packets; otherwise remove it",
						    w->ntakers ? w->takers[0]->r->number : 0)
				      : finding_text(&f->fix, "remove it: it changes nothing");
	} else {
		err = finding_text(&f->message, "%s adds nothing: %s already allow%s all it allows", name, who,
				  w->ntakers > 1 || w->more_takers ? "" : "s");
		if (!err)
			err = finding_text(&f->fix, "remove it (SG rules are a union)");
	}
	return err;
}

static int report_override(struct lctx *c, const struct ltab *t, const struct lrule *lr,
			   const struct lrule *by, const struct lbox *part)
{
	struct lint_finding *f;
	char name[48], byname[48];
	struct lbox pt;

	f = finding_new(c, LINT_SEV_INFO, LINT_KIND_PARTLY_OVERRIDDEN, lr);
	if (!f)
		return -ENOMEM;
	finding_ref(f, lr);
	finding_ref(f, by);
	rule_name(lr->r, name, sizeof(name));
	rule_name(by->r, byname, sizeof(byname));
	pick_point(c, part, t->dir, &pt);
	finding_witness(f, &pt, t->dir);
	if (finding_text(&f->message, "part of what %s (%s) matches is decided first by %s (%s)", name,
			rule_action_name(lr->r->action), byname, rule_action_name(by->r->action)))
		return -ENOMEM;
	return finding_text(&f->fix, "nothing if intended; to let %s decide that part, number it below %d",
			   name, by->r->number);
}

/*
 * Is some packet of @q (what rule @pos matches) decided first by an
 * earlier rule of the opposite action? Each candidate rule is asked
 * separately: "a packet in both, that no rule before it takes".
 */
static int find_override(struct lctx *c, const struct ltab *t, size_t pos, const struct lreg *q,
			 const struct lrule **by, struct lbox *part)
{
	const struct lrule *lr = t->v[pos];
	struct lreg both = { 0 };
	size_t j;
	int err = 0;

	for (j = 0; j < pos && !err; j++) {
		const struct lrule *o = t->v[j];
		struct walk w = { .fl = &t->fv, .n = j, .stop_at_rest = true };
		int fi;

		if (o->r->action == lr->r->action)
			continue;
		for (fi = 0; fi < 2; fi++)
			if (o->has[fi] && lr->has[fi] && box_meets(&o->bb[fi], &lr->bb[fi]))
				break;
		if (fi == 2)
			continue;
		both.n = 0;
		err = reg_and(q, &o->boxes, &both);
		if (err || !both.n)
			continue;
		err = walk_run(c, &w, &both);
		if (!err && w.found) {
			*by = o;
			*part = w.found_box;
			break;
		}
	}
	reg_free(&both);
	return err;
}

/*
 * A packet of @q no rule before position @pos of @t takes: in rule order
 * first, briefly (most rules show one at once), then with the widest rules
 * first, which cut the region into the fewest pieces. 0 with w->found
 * set or not (then @q is covered), or ERR_BUDGET.
 */
static int own_packet(struct lctx *c, const struct ltab *t, size_t pos, const struct lreg *q,
		      struct walk *w, unsigned long budget)
{
	int err;

	memset(w, 0, sizeof(*w));
	w->fl = &t->fv;
	w->n = pos;
	w->stop_at_rest = true;
	c->left = QUICK_BUDGET;
	err = walk_run(c, w, q);
	if (err != ERR_BUDGET)
		return err;
	memset(w, 0, sizeof(*w));
	w->fl = &t->fv;
	w->n = pos;
	w->stop_at_rest = true;
	w->any_order = true;
	c->left = budget;
	return walk_run(c, w, q);
}

/*
 * The stage a packet meets before @t's in the same direction (in: NACL
 * then SG; out: SG then NACL), or NULL. A witness that stage lets through
 * is one `moat trace` shows reaching @t.
 */
static const struct ltab *stage_before(const struct lctx *c, const struct ltab *t)
{
	const struct ltab *b = NULL;

	if (t->dir == RULE_DIR_IN && t->stage == RULE_STAGE_SG)
		b = &c->tab[RULE_STAGE_NACL][RULE_DIR_IN];
	if (t->dir == RULE_DIR_OUT && t->stage == RULE_STAGE_NACL)
		b = &c->tab[RULE_STAGE_SG][RULE_DIR_OUT];
	return b && b->on ? b : NULL;
}

static int analyse_table(struct lctx *c, struct ltab *t)
{
	const struct ltab *before = stage_before(c, t);
	bool nacl = t->stage == RULE_STAGE_NACL;
	struct lreg q = { 0 }, qs = { 0 };
	size_t i;
	int err = 0;

	for (i = 0; i < t->n && (!err || err == ERR_BUDGET); i++) {
		struct lrule *lr = t->v[i];
		struct lint_rule_info *ri = &c->res->rules[lr->idx];
		const struct lrule *by = NULL;
		struct lbox part, pt;
		struct walk w, ws;

		memset(&w, 0, sizeof(w));
		q.n = qs.n = 0;
		err = reg_and(&lr->boxes, &c->univ, &q);
		if (err)
			break;
		if (!q.n) {
			ri->status = LINT_RULE_SHADOWED;
			err = report_never(c, t, i, &q, &q, &w);
			continue;
		}
		/* the part the stage before lets through, for witnesses */
		if (before) {
			c->left = PREFER_BUDGET;
			err = tab_allowed(c, before, &q, &qs);
			if (err == ERR_BUDGET)
				qs.n = 0;
			else if (err)
				break;
		}
		err = own_packet(c, t, i, &q, &w, c->budget);
		if (err == ERR_BUDGET) {
			ri->status = LINT_RULE_UNKNOWN;
			note_incomplete(c, "shadowing", lr);
			continue;
		}
		if (err)
			break;
		if (!w.found) {
			ri->status = LINT_RULE_SHADOWED;
			err = report_never(c, t, i, &q, qs.n ? &qs : &q, &w);
			continue;
		}
		ri->status = LINT_RULE_LIVE;
		ri->has_witness = true;
		part = w.found_box;
		/* a nicety, so it gets a small budget */
		if (qs.n) {
			err = own_packet(c, t, i, &qs, &ws, PREFER_BUDGET);
			if (!err && ws.found)
				part = ws.found_box;
			else if (err && err != ERR_BUDGET)
				break;
		}
		pick_point(c, &part, t->dir, &pt);
		point_packet(&pt, t->dir, &ri->witness);
		if (!nacl)
			continue;
		c->left = PREFER_BUDGET;
		err = qs.n ? find_override(c, t, i, &qs, &by, &part) : 0;
		if ((!err || err == ERR_BUDGET) && !by) {
			c->left = c->budget;
			err = find_override(c, t, i, &q, &by, &part);
		}
		if (err == ERR_BUDGET)
			continue; /* informational only: not worth a report */
		if (err)
			break;
		if (by)
			err = report_override(c, t, lr, by, &part);
	}
	reg_free(&q);
	reg_free(&qs);
	return err == ERR_BUDGET ? 0 : err;
}

/* ---- a direction that denies everything ------------------------------- */

static void typical_opener(int dir, struct lbox *pt)
{
	u128 peer = v4(203, 0, 113, 10), local = v4(192, 0, 2, 10);

	box_full(pt, 4);
	box_set(pt, LD_PROTO, PROTO_TCP, PROTO_TCP);
	box_set(pt, LD_STATE, ST_PLAIN, ST_PLAIN);
	box_set(pt, LD_A, 40000, 40000);
	box_set(pt, LD_B, 443, 443);
	box_set(pt, LD_SRC, dir == RULE_DIR_IN ? peer : local, dir == RULE_DIR_IN ? peer : local);
	box_set(pt, LD_DST, dir == RULE_DIR_IN ? local : peer, dir == RULE_DIR_IN ? local : peer);
}

static int check_denies_all(struct lctx *c)
{
	static const char *const nacl_fix[2] = {
		"add `nacl in` allow rules for what this host receives (e.g. `nacl in 100 "
		"allow tcp dport 443`), or drop every NACL rule line to switch the stage off",
		"add `nacl out` allow rules for what this host sends (e.g. `nacl out 100 allow "
		"tcp dport 1024-65535 established` for its services' replies), or drop every "
		"NACL rule line to switch the stage off",
	};
	static const char *const sg_fix[2] = {
		"add `sg in` rules for the services this host offers (e.g. `sg in allow tcp "
		"dport 443 src 0.0.0.0/0`)",
		"add `sg out allow all dst 0.0.0.0/0` and `sg out allow all dst ::/0` (a cloud "
		"security group's default), or narrower `sg out` rules",
	};
	int stage, dir, err;

	for (stage = 0; stage < 2; stage++)
		for (dir = 0; dir < 2; dir++) {
			const struct ltab *t = &c->tab[stage][dir];
			bool some_live = false, unknown = false;
			struct lint_finding *f;
			struct lbox pt;
			size_t i;

			if (!t->on)
				continue;
			for (i = 0; i < t->n; i++) {
				const struct lint_rule_info *ri = &c->res->rules[t->v[i]->idx];

				if (t->v[i]->r->action != RULE_ALLOW)
					continue;
				some_live |= ri->status == LINT_RULE_LIVE;
				unknown |= ri->status == LINT_RULE_UNKNOWN;
			}
			if (some_live || unknown)
				continue;
			f = finding_new(c, LINT_SEV_WARNING, LINT_KIND_DENIES_EVERYTHING,
					t->n ? t->v[0] : NULL);
			if (!f)
				return -ENOMEM;
			for (i = 0; i < t->n && i < LINT_MAX_REFS; i++)
				finding_ref(f, t->v[i]);
			typical_opener(dir, &pt);
			finding_witness(f, &pt, dir);
			if (!t->n && stage == RULE_STAGE_NACL)
				err = finding_text(
					&f->message,
					"the NACL stage is on but has no `%s` rule: every "
					"%s packet is dropped",
					rule_dir_name(dir),
					dir == RULE_DIR_IN ? "inbound" : "outbound");
			else if (!t->n)
				err = finding_text(&f->message,
						  "the SG stage is on but has no `%s` rule: no "
						  "%s connection can be opened",
						  rule_dir_name(dir),
						  dir == RULE_DIR_IN ? "inbound" : "outbound");
			else
				err = finding_text(&f->message,
						  "every `nacl %s` rule denies or never matches: "
						  "every %s packet is dropped",
						  rule_dir_name(dir),
						  dir == RULE_DIR_IN ? "inbound" : "outbound");
			if (!err)
				err = finding_text(&f->fix, "%s",
						  stage == RULE_STAGE_NACL ? nacl_fix[dir]
									   : sg_fix[dir]);
			if (err)
				return err;
		}
	return 0;
}

/* ---- connection holes and missing return paths ------------------------ */

static bool rule_has_cls(const struct rule *r, enum lcls cls)
{
	if (cls == CLS_TCP)
		return r->proto == RULE_PROTO_ALL || r->proto == PROTO_TCP;
	if (cls == CLS_UDP)
		return r->proto == RULE_PROTO_ALL || r->proto == PROTO_UDP;
	return r->proto == PROTO_ICMP || r->proto == PROTO_ICMPV6;
}

/*
 * A rule written to let a service's openers through: tcp/udp with a
 * narrow dport, or icmp that admits echo requests (the reply of an echo
 * is the other direction's business, just as a TCP SYN-ACK is).
 */
static bool rule_is_service(const struct rule *r, enum lcls cls)
{
	if (r->action != RULE_ALLOW || r->established || !rule_has_cls(r, cls) || rule_is_return(r))
		return false;
	if (cls == CLS_ICMP)
		return !r->has_icmp || r->icmp_type == (r->proto == PROTO_ICMP ? 8 : 128);
	return r->dport.set;
}

static const char *cls_name(enum lcls cls)
{
	return cls == CLS_TCP ? "tcp" : cls == CLS_UDP ? "udp" : "icmp";
}

/*
 * The witness pair of a region in opener coordinates: the opening packet in
 * direction @dir and its reply the other way. A TCP reply is a SYN-ACK.
 */
static void witness_pair(struct lctx *c, struct lint_finding *f, const struct lbox *b,
			 enum lcls cls, enum rule_dir dir, struct lbox *reply)
{
	struct lbox pt;

	pick_point(c, b, dir, &pt);
	*reply = pt;
	box_reply(reply, cls, false);
	finding_witness(f, &pt, dir);
	finding_witness(f, reply, !dir);
	if (cls == CLS_TCP)
		f->witness[1].pkt.tcp_flags = PKT_TCP_SYN | PKT_TCP_ACK;
}

/*
 * A suggested SG rule for the flows that the reply's rule (@k, in the other
 * direction) was written for: its protocol, its peer and its service port.
 */
static void sg_suggestion(struct lctx *c, const struct lrule *k, enum lcls cls, char *buf,
			  size_t len)
{
	struct rule s;
	char text[512];

	buf[0] = '\0';
	if (!k || !k->r->dport.set || k->ret)
		return;
	memset(&s, 0, sizeof(s));
	s.stage = RULE_STAGE_SG;
	s.dir = k->r->dir;
	s.action = RULE_ALLOW;
	s.proto = cls == CLS_TCP ? PROTO_TCP : PROTO_UDP;
	s.family = k->r->family;
	if (s.dir == RULE_DIR_OUT)
		s.dst = k->r->dst;
	else
		s.src = k->r->src;
	s.dport = k->r->dport;
	if (rule_format(&s, c->rs, text, sizeof(text)))
		return;
	snprintf(buf, len, " (e.g. `%s`)", text);
}

static int report_hole(struct lctx *c, enum rule_dir dir, enum lcls cls, const struct lrule *lr,
		       struct lreg *h, bool partial)
{
	const struct ltab *back = &c->tab[RULE_STAGE_NACL][!dir];
	char name[48], kname[48] = "", span[512], more[48], sg[600], text[512];
	const struct lrule *k;
	struct lint_finding *f;
	struct lbox reply;
	struct rule fixed;
	int err;

	f = finding_new(c, LINT_SEV_WARNING, LINT_KIND_CONNECTION_HOLE, lr);
	if (!f)
		return -ENOMEM;
	f->spans_partial = partial;
	err = reg_spans(c, h, dir, &f->spans, &f->nspans, &f->spans_total);
	if (err)
		return err;
	witness_pair(c, f, &h->v[0], cls, dir, &reply);
	k = tab_first(back, &reply);
	finding_ref(f, lr);
	finding_ref(f, k);
	rule_name(lr->r, name, sizeof(name));
	if (k)
		rule_name(k->r, kname, sizeof(kname));
	span_text(f, span, sizeof(span));
	more_text(f->spans_total, more, sizeof(more));
	sg_suggestion(c, k, cls, sg, sizeof(sg));

	if (cls == CLS_TCP)
		err = finding_text(&f->message,
				  "%s admits return traffic but also lets %s open tcp "
				  "connections: %s%s; %s lets the SYN-ACK %s",
				  name, dir == RULE_DIR_IN ? "peers" : "this host", span, more,
				  k ? kname : "the other direction",
				  dir == RULE_DIR_IN ? "out" : "in");
	else
		err = finding_text(&f->message,
				  "%s admits return traffic but also lets %s start udp "
				  "flows: %s%s; %s lets the replies %s",
				  name, dir == RULE_DIR_IN ? "peers" : "this host", span, more,
				  k ? kname : "the other direction",
				  dir == RULE_DIR_IN ? "out" : "in");
	if (err)
		return err;

	if (cls == CLS_TCP && lr->r->proto == PROTO_TCP) {
		fixed = *lr->r;
		fixed.established = true;
		rule_text(c, &fixed, text, sizeof(text));
		return finding_text(&f->fix,
				   "match only replies: `%s`; or let an SG track the "
				   "connections%s and drop %s",
				   text, sg, name);
	}
	if (cls == CLS_TCP)
		return finding_text(&f->fix,
				   "split %s so its tcp part can carry `established`, or let an "
				   "SG track the connections%s",
				   name, sg);
	return finding_text(&f->fix,
			   "udp has no `established`: let an SG track these flows%s and drop "
			   "%s, or narrow its ports to the replies you expect",
			   sg, name);
}

/*
 * The hole behind return rule @pos of @t, of openers @o (what the rule
 * matches of them) into @b: openers whose replies the other direction's
 * NACL allows, that the SG lets in, and that no earlier rule and no
 * service rule takes. The region can fall into many pieces; a finding
 * needs one and a few to show, so with @cap the stages stop early, and
 * a stage cut short (by the cap or the budget) makes it @partial.
 */
static int hole_region(struct lctx *c, const struct ltab *t, size_t pos, enum lcls cls,
		       const struct lreg *o, bool cap, struct lreg *b, bool *partial)
{
	const struct ltab *back = &c->tab[RULE_STAGE_NACL][!t->dir];
	const struct ltab *sg = &c->tab[RULE_STAGE_SG][t->dir];
	struct walk w1 = { .fl = &t->fv,
			   .n = pos,
			   .fl2 = &t->fsvc,
			   .n2 = t->nsvc,
			   .rest = b,
			   .any_order = true,
			   .rest_cap = cap ? HOLE_PARTS : 0 };
	struct lreg q = { 0 }, a = { 0 };
	struct walk wb = {
		.fl = &back->fv, .n = back->n, .allow = &a, .allow_cap = cap ? 4 * HOLE_PARTS : 0
	};
	int err;

	b->n = 0;
	err = reg_copy(o, &q);
	reg_reply(&q, cls, false);
	c->left = c->budget;
	if (!err)
		err = back->on ? walk_run(c, &wb, &q) : reg_copy(&q, &a);
	reg_reply(&a, cls, true);
	*partial = wb.capped || err == ERR_BUDGET;
	q.n = 0;
	c->left = c->budget;
	if (!err || err == ERR_BUDGET)
		err = tab_allowed(c, sg, &a, &q);
	*partial |= err == ERR_BUDGET;
	c->left = c->budget;
	if (!err || err == ERR_BUDGET)
		err = walk_run(c, &w1, &q);
	*partial |= w1.capped || err == ERR_BUDGET;
	reg_free(&q);
	reg_free(&a);
	return err == ERR_BUDGET ? 0 : err;
}

/*
 * Stateless holes: openers (SYN, or a UDP datagram) in direction @dir that
 * a return-traffic rule admits, that no rule written to expose a service
 * covers, that the SG (when on) lets through, and whose reply the NACL of
 * the other direction allows.
 */
static int check_holes(struct lctx *c, enum rule_dir dir, enum lcls cls)
{
	const struct ltab *t = &c->tab[RULE_STAGE_NACL][dir];
	struct lreg op = { 0 }, o = { 0 }, b = { 0 };
	size_t i;
	int err;

	if (!t->on)
		return 0;
	err = opener_build(&op, cls);
	for (i = 0; i < t->n && !err; i++) {
		const struct lrule *lr = t->v[i];
		bool partial = false;

		if (!lr->ret || !rule_has_cls(lr->r, cls) ||
		    c->res->rules[lr->idx].status == LINT_RULE_SHADOWED)
			continue;
		o.n = 0;
		err = reg_and(&lr->boxes, &op, &o);
		if (err || !o.n)
			continue;
		/* capped first; found nothing, then all of it within the budget */
		err = hole_region(c, t, i, cls, &o, true, &b, &partial);
		if (!err && !b.n && partial)
			err = hole_region(c, t, i, cls, &o, false, &b, &partial);
		if (!err && !b.n && partial)
			note_incomplete(c, "connection holes", lr);
		if (err || !b.n)
			continue;
		err = report_hole(c, dir, cls, lr, &b, partial);
	}
	reg_free(&op);
	reg_free(&o);
	reg_free(&b);
	return err;
}

/* A free number in @t before @before (or after the last rule): for fixes. */
static int free_number(const struct ltab *t, const struct lrule *before)
{
	int prev = 0, next, n;
	size_t i;

	if (!before) {
		if (!t->n)
			return 100;
		prev = t->v[t->n - 1]->r->number;
		n = prev + 10 <= RULE_NACL_NUMBER_MAX ? prev + 10 : prev + 1;
		return n <= RULE_NACL_NUMBER_MAX ? n : 0;
	}
	next = before->r->number;
	for (i = 0; i < t->n && t->v[i] != before; i++)
		prev = t->v[i]->r->number;
	n = prev + (next - prev) / 2;
	return n > prev && n < next ? n : 0;
}

/* @all: 1 every reply is dropped, 0 some are, -1 unknown (partial). */
static int report_return(struct lctx *c, enum rule_dir dir, enum lcls cls, const struct lrule *lr,
			 struct lreg *h, int all, bool partial)
{
	const struct ltab *back = &c->tab[RULE_STAGE_NACL][!dir];
	char name[48], span[512], more[48], text[512], ports[32], what[64];
	const struct lrule *k;
	struct lint_finding *f;
	struct lbox reply;
	struct rule fix;
	int err, num;

	f = finding_new(c, LINT_SEV_WARNING, LINT_KIND_MISSING_RETURN, lr);
	if (!f)
		return -ENOMEM;
	f->spans_partial = partial;
	err = reg_spans(c, h, dir, &f->spans, &f->nspans, &f->spans_total);
	if (err)
		return err;
	witness_pair(c, f, &h->v[0], cls, dir, &reply);
	k = tab_first(back, &reply);
	finding_ref(f, lr);
	finding_ref(f, k && k->r->action == RULE_DENY ? k : NULL);
	rule_name(lr->r, name, sizeof(name));
	span_text(f, span, sizeof(span));
	more_text(f->spans_total, more, sizeof(more));
	if (cls == CLS_ICMP) {
		snprintf(what, sizeof(what), "send echo requests");
	} else {
		ports_text(lr->r->dport.lo, lr->r->dport.hi, ports, sizeof(ports));
		snprintf(what, sizeof(what), "%s %s %s to %s", cls == CLS_TCP ? "open" : "start",
			 cls_name(cls), cls == CLS_TCP ? "connections" : "flows", ports);
	}
	err = finding_text(&f->message, "%s lets %s %s but `nacl %s` drops %s replies: %s%s", name,
			  dir == RULE_DIR_IN ? "peers" : "this host", what, rule_dir_name(!dir),
			  all > 0    ? "all their"
			  : all == 0 ? "some of their"
				     : "their",
			  span, more);
	if (err)
		return err;

	/* the rule that lets the replies back: the service's fields, mirrored */
	memset(&fix, 0, sizeof(fix));
	fix.stage = RULE_STAGE_NACL;
	fix.dir = !dir;
	fix.action = RULE_ALLOW;
	fix.family = lr->r->family;
	fix.src = lr->r->dst;
	fix.dst = lr->r->src;
	if (cls == CLS_ICMP) {
		fix.proto = lr->r->proto;
		fix.has_icmp = true;
		fix.icmp_type = lr->r->proto == PROTO_ICMP ? 0 : 129;
		fix.icmp_code = 0;
	} else {
		fix.proto = cls == CLS_TCP ? PROTO_TCP : PROTO_UDP;
		fix.sport = lr->r->dport;
		fix.dport.set = true;
		fix.dport.lo = dir == RULE_DIR_IN ? c->eph_lo : c->leph_lo;
		fix.dport.hi = dir == RULE_DIR_IN ? c->eph_hi : c->leph_hi;
		fix.established = cls == CLS_TCP;
	}
	num = free_number(back, k && k->r->action == RULE_DENY ? k : NULL);
	fix.number = num ? num : RULE_NACL_NUMBER_MAX;
	rule_text(c, &fix, text, sizeof(text));
	if (!num)
		return finding_text(&f->fix, "add `%s`, numbered below nacl %s %d (renumber to make room)",
				   text, rule_dir_name(!dir), k ? k->r->number : 0);
	return finding_text(&f->fix, "add `%s`", text);
}

/*
 * Missing return path: a service rule (allow, narrow dport, or icmp echo)
 * in @dir whose openers from the client's ephemeral ports pass, but whose
 * replies the NACL of the other direction drops.
 */
static int check_return(struct lctx *c, enum rule_dir dir, enum lcls cls)
{
	const struct ltab *t = &c->tab[RULE_STAGE_NACL][dir];
	const struct ltab *back = &c->tab[RULE_STAGE_NACL][!dir];
	const struct ltab *sg = &c->tab[RULE_STAGE_SG][dir];
	struct lreg op = { 0 }, q = { 0 }, a = { 0 }, d = { 0 }, x = { 0 };
	size_t i;
	int err;

	if (!t->on || !back->on)
		return 0;
	err = opener_build(&op, cls);
	/* the client's ports are ephemeral: the peer's, or this host's */
	if (cls != CLS_ICMP && dir == RULE_DIR_IN)
		reg_clip(&op, LD_A, c->eph_lo, c->eph_hi);
	else if (cls != CLS_ICMP)
		reg_clip(&op, LD_A, c->leph_lo, c->leph_hi);
	for (i = 0; i < t->n && !err; i++) {
		const struct lrule *lr = t->v[i];
		struct walk w1 = { .fl = &t->fv, .n = i, .rest = &a, .any_order = true };
		struct walk w2 = { .fl = &back->fv,
				   .n = back->n,
				   .allow = &a,
				   .deny = &x,
				   .rest = &d,
				   .rest_cap = HOLE_PARTS };
		bool partial;

		if (!rule_is_service(lr->r, cls) ||
		    c->res->rules[lr->idx].status == LINT_RULE_SHADOWED)
			continue;
		q.n = a.n = d.n = x.n = 0;
		err = reg_and(&lr->boxes, &op, &q);
		if (err || !q.n)
			continue;
		/* as for holes, each stage may be cut short: then it is partial */
		c->left = c->budget;
		err = walk_run(c, &w1, &q);
		partial = err == ERR_BUDGET;
		q.n = 0;
		c->left = c->budget;
		if (!err || err == ERR_BUDGET)
			err = tab_allowed(c, sg, &a, &q);
		partial |= err == ERR_BUDGET;
		reg_reply(&q, cls, false);
		a.n = 0;
		c->left = c->budget;
		if (!err || err == ERR_BUDGET)
			err = walk_run(c, &w2, &q);
		partial |= w2.capped || err == ERR_BUDGET;
		if (err == ERR_BUDGET)
			err = 0;
		/*
		 * Replies no rule takes were forgotten; replies a deny rule
		 * takes were meant to be dropped (a block list), unless that
		 * leaves the service no reply at all.
		 */
		if (!err && !d.n && !a.n && !partial)
			err = reg_copy(&x, &d);
		if (!err && !d.n && partial)
			note_incomplete(c, "return paths", lr);
		if (err || !d.n)
			continue;
		reg_reply(&d, cls, true);
		err = report_return(c, dir, cls, lr, &d, partial ? -1 : a.n == 0, partial);
	}
	reg_free(&op);
	reg_free(&q);
	reg_free(&a);
	reg_free(&d);
	reg_free(&x);
	return err;
}

/* ---- SG over-exposure ------------------------------------------------- */

#define ADM_TCP 0x1
#define ADM_UDP 0x2

static const struct {
	uint16_t port;
	uint8_t protos;
	const char *name;
} admin_ports[] = {
	{ 22, ADM_TCP, "ssh" },
	{ 23, ADM_TCP, "telnet" },
	{ 135, ADM_TCP, "msrpc" },
	{ 445, ADM_TCP, "smb" },
	{ 1433, ADM_TCP, "mssql" },
	{ 1521, ADM_TCP, "oracle" },
	{ 2375, ADM_TCP, "docker" },
	{ 2376, ADM_TCP, "docker-tls" },
	{ 2379, ADM_TCP, "etcd" },
	{ 3306, ADM_TCP, "mysql" },
	{ 3389, ADM_TCP | ADM_UDP, "rdp" },
	{ 5432, ADM_TCP, "postgresql" },
	{ 5900, ADM_TCP, "vnc" },
	{ 5984, ADM_TCP, "couchdb" },
	{ 6379, ADM_TCP, "redis" },
	{ 9042, ADM_TCP, "cassandra" },
	{ 9200, ADM_TCP, "elasticsearch" },
	{ 10250, ADM_TCP, "kubelet" },
	{ 11211, ADM_TCP | ADM_UDP, "memcached" },
	{ 27017, ADM_TCP, "mongodb" },
};

/* Does @lr's source cover every address of family @fam (no src, /0, a set)? */
static bool src_is_world(const struct lrule *lr, int fam)
{
	size_t i;

	for (i = 0; i < lr->boxes.n; i++) {
		const struct lbox *b = &lr->boxes.v[i];

		if (b->fam == fam && b->lo[LD_SRC] == 0 && b->hi[LD_SRC] == addr_max(fam))
			return true;
	}
	return false;
}

static int check_sg_exposure(struct lctx *c)
{
	const struct ltab *sg = &c->tab[RULE_STAGE_SG][RULE_DIR_IN];
	const struct ltab *nacl = &c->tab[RULE_STAGE_NACL][RULE_DIR_IN];
	struct walk w = { .fl = &nacl->fv, .n = nacl->n, .stop_at_allow = true };
	struct lreg op = { 0 }, q = { 0 }, a = { 0 };
	size_t i, p;
	int err = 0, cls;

	for (i = 0; i < sg->n && !err; i++) {
		const struct lrule *lr = sg->v[i];
		char open[512] = "", blocked[512] = "", name[48], world[32], text[600];
		size_t nopen = 0, nblocked = 0;
		bool w4 = src_is_world(lr, 4), w6 = src_is_world(lr, 6), have = false;
		struct lbox first;
		struct lint_finding *f;
		struct rule fix;

		if (!w4 && !w6)
			continue;
		for (p = 0; p < ARRAY_SIZE(admin_ports) && !err; p++)
			for (cls = CLS_TCP; cls <= CLS_UDP && !err; cls++) {
				char *list = open;
				size_t *cnt = &nopen, len;

				if (!(admin_ports[p].protos &
				      (cls == CLS_TCP ? ADM_TCP : ADM_UDP)) ||
				    !rule_has_cls(lr->r, cls))
					continue;
				op.n = q.n = a.n = 0;
				err = opener_build(&op, cls);
				reg_clip(&op, LD_B, admin_ports[p].port, admin_ports[p].port);
				if (!err)
					err = reg_and(&lr->boxes, &op, &q);
				/* only the families it opens to everyone */
				for (size_t j = 0; j < q.n; j++)
					if (!(q.v[j].fam == 4 ? w4 : w6) ||
					    q.v[j].lo[LD_SRC] != 0 ||
					    q.v[j].hi[LD_SRC] != addr_max(q.v[j].fam))
						q.v[j--] = q.v[--q.n];
				if (err || !q.n)
					continue;
				/* is any of it let in? one packet says so */
				c->left = c->budget;
				w.found = false;
				err = nacl->on ? walk_run(c, &w, &q) : reg_copy(&q, &a);
				if (w.found)
					err = reg_push(&a, &w.found_box);
				if (err == ERR_BUDGET) {
					note_incomplete(c, "exposure", lr);
					err = 0;
					continue;
				}
				if (err)
					break;
				if (!a.n) {
					list = blocked;
					cnt = &nblocked;
					/* what the NACL drops shows the exposure too */
					if (!have && !nblocked)
						pick_point(c, &q.v[0], RULE_DIR_IN, &first);
				} else if (!have) {
					pick_point(c, &a.v[0], RULE_DIR_IN, &first);
					have = true;
				}
				len = strlen(list);
				snprintf(list + len, 512 - len, "%s%s (%s %u)", *cnt ? ", " : "",
					 admin_ports[p].name, cls_name(cls), admin_ports[p].port);
				(*cnt)++;
			}
		if (err || (!nopen && !nblocked))
			continue;
		f = finding_new(c, nopen ? LINT_SEV_WARNING : LINT_SEV_INFO,
				LINT_KIND_SG_ADMIN_EXPOSED, lr);
		if (!f) {
			err = -ENOMEM;
			break;
		}
		finding_ref(f, lr);
		rule_name(lr->r, name, sizeof(name));
		snprintf(world, sizeof(world), "%s%s%s", w4 ? "0.0.0.0/0" : "",
			 w4 && w6 ? " and " : "", w6 ? "::/0" : "");
		if (nopen) {
			finding_witness(f, &first, RULE_DIR_IN);
			err = finding_text(&f->message, "%s opens %s to %s%s%s%s", name, open, world,
					  nblocked ? " (nacl in drops " : "", blocked,
					  nblocked ? ")" : "");
		} else {
			finding_witness(f, &first, RULE_DIR_IN);
			err = finding_text(&f->message, "%s opens %s to %s; nacl in drops it for now", name,
					  blocked, world);
		}
		fix = *lr->r;
		fix.src.kind = RULE_ADDR_PREFIX;
		fix.family = 4;
		fix.src.prefix.family = 4;
		fix.src.prefix.len = 24;
		memcpy(fix.src.prefix.addr, (uint8_t[]){ 198, 51, 100, 0 }, 4);
		if (fix.dst.kind != RULE_ADDR_ANY)
			fix.family = lr->r->family;
		if (fix.dst.kind == RULE_ADDR_ANY || lr->r->family == 4)
			rule_text(c, &fix, text, sizeof(text));
		else
			rule_name(lr->r, text, sizeof(text));
		if (!err)
			err = finding_text(&f->fix,
					  "allow administrative ports only from the networks "
					  "that administer the host, e.g. `%s` (your admin "
					  "network or a set such as @admins), or through a VPN",
					  text);
	}
	reg_free(&op);
	reg_free(&q);
	reg_free(&a);
	return err;
}

/* ---- reachability ----------------------------------------------------- */

/*
 * One cell of --reach: openers of @cls in direction @dir that pass the
 * layer, with (for the NACL) their replies allowed the other way; the SG
 * needs no rule for replies: conntrack lets them back.
 */
static int reach_cell(struct lctx *c, enum lcls cls, enum rule_dir dir, enum lint_reach_layer layer,
		      struct lint_reach_cell *cell)
{
	const struct ltab *t = &c->tab[RULE_STAGE_NACL][dir];
	const struct ltab *back = &c->tab[RULE_STAGE_NACL][!dir];
	const struct ltab *sg = &c->tab[RULE_STAGE_SG][dir];
	bool use_nacl = layer != LINT_REACH_SG && t->on;
	bool use_sg = layer != LINT_REACH_NACL && sg->on;
	struct lreg op = { 0 }, a = { 0 }, b = { 0 };
	int err;

	memset(cell, 0, sizeof(*cell));
	if (!use_nacl && !use_sg) {
		cell->stage_off = true;
		return 0;
	}
	/*
	 * Each stage gets the budget; one cut short passes on what it found,
	 * so a truncated cell still lists real regions, just not all.
	 */
	err = opener_build(&op, cls);
	if (!err && use_nacl) {
		c->left = c->budget;
		err = tab_allowed(c, t, &op, &a);
		cell->truncated |= err == ERR_BUDGET;
		reg_reply(&a, cls, false);
		c->left = c->budget;
		if (!err || err == ERR_BUDGET)
			err = tab_allowed(c, back, &a, &b);
		cell->truncated |= err == ERR_BUDGET;
		reg_reply(&b, cls, true);
	} else if (!err) {
		err = reg_copy(&op, &b);
	}
	a.n = 0;
	c->left = c->budget;
	if ((!err || err == ERR_BUDGET) && use_sg)
		err = tab_allowed(c, sg, &b, &a);
	else if (!err || err == ERR_BUDGET)
		err = reg_copy(&b, &a);
	cell->truncated |= err == ERR_BUDGET;
	if (err == ERR_BUDGET)
		err = 0;
	if (!err)
		err = reg_spans(c, &a, dir, &cell->spans, &cell->nspans, &cell->total);
	reg_free(&op);
	reg_free(&a);
	reg_free(&b);
	return err;
}

static int compute_reach(struct lctx *c)
{
	static const enum lcls cls_of[LINT_REACH_NPROTO] = { CLS_TCP, CLS_UDP, CLS_ICMP };
	int p, dir, l, err;

	for (p = 0; p < LINT_REACH_NPROTO; p++)
		for (dir = 0; dir < 2; dir++)
			for (l = 0; l < LINT_REACH_NLAYER; l++) {
				err = reach_cell(c, cls_of[p], dir, l,
						 &c->res->reach.cell[p][dir][l]);
				if (err)
					return err;
			}
	c->res->has_reach = true;
	return 0;
}

/* ---- the whole run ---------------------------------------------------- */

void lint_opts_default(struct lint_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_spans = DEFAULT_MAX_SPANS;
	o->budget = DEFAULT_BUDGET;
}

static int lrule_cmp(const void *pa, const void *pb)
{
	const struct lrule *a = *(struct lrule *const *)pa, *b = *(struct lrule *const *)pb;

	if (a->r->number != b->r->number)
		return a->r->number < b->r->number ? -1 : 1;
	return a->idx - b->idx;
}

static int tables_build(struct lctx *c)
{
	const struct ruleset *rs = c->rs;
	size_t i, nboxes = 0;
	int stage, dir;

	for (stage = 0; stage < 2; stage++)
		for (dir = 0; dir < 2; dir++) {
			struct ltab *t = &c->tab[stage][dir];

			t->stage = stage;
			t->dir = dir;
			t->on = rs->stage_on[stage];
			t->v = calloc(rs->nrules + 1, sizeof(*t->v));
			t->svc = calloc(rs->nrules + 1, sizeof(*t->svc));
			if (!t->v || !t->svc)
				return -ENOMEM;
		}
	for (i = 0; i < rs->nrules; i++) {
		const struct rule *r = &rs->rules[i];
		struct ltab *t;

		if ((unsigned int)r->stage > RULE_STAGE_SG || (unsigned int)r->dir > RULE_DIR_OUT)
			continue;
		t = &c->tab[r->stage][r->dir];
		t->v[t->n++] = &c->rules[i];
		if (r->action == RULE_ALLOW && !c->rules[i].ret)
			t->svc[t->nsvc++] = &c->rules[i];
	}
	/* NACL rules are tried lowest number first; SG rules in file order */
	for (dir = 0; dir < 2; dir++)
		qsort(c->tab[RULE_STAGE_NACL][dir].v, c->tab[RULE_STAGE_NACL][dir].n,
		      sizeof(struct lrule *), lrule_cmp);
	for (stage = 0; stage < 2; stage++)
		for (dir = 0; dir < 2; dir++) {
			struct ltab *t = &c->tab[stage][dir];
			int err = flat_build(&t->fv, t->v, t->n);

			if (!err)
				err = flat_build(&t->fsvc, t->svc, t->nsvc);
			if (err)
				return err;
		}
	for (i = 0; i < rs->nrules; i++)
		nboxes += c->rules[i].boxes.n;
	/* a walk may take a table and its service rules together */
	c->cand = calloc(2 * nboxes + 1, sizeof(*c->cand));
	c->cand2 = calloc(2 * nboxes + 1, sizeof(*c->cand2));
	c->cover = calloc(2 * nboxes + 1, sizeof(*c->cover));
	return c->cand && c->cand2 && c->cover ? 0 : -ENOMEM;
}

static void ctx_free(struct lctx *c)
{
	int s, d;
	size_t i;

	if (c->rules)
		for (i = 0; i < c->rs->nrules; i++) {
			reg_free(&c->rules[i].boxes);
			free(c->rules[i].set[0]);
			free(c->rules[i].set[1]);
		}
	free(c->rules);
	for (s = 0; s < 2; s++)
		for (d = 0; d < 2; d++) {
			free(c->tab[s][d].v);
			free(c->tab[s][d].svc);
			flat_free(&c->tab[s][d].fv);
			flat_free(&c->tab[s][d].fsvc);
		}
	reg_free(&c->univ);
	free(c->cand);
	free(c->cand2);
	free(c->cover);
	free(c->stk);
}

static int report_too_big(struct lctx *c, const struct lrule *lr)
{
	struct lint_finding *f = finding_new(c, LINT_SEV_ERROR, LINT_KIND_INCOMPLETE, lr);
	char name[48];

	if (!f)
		return -ENOMEM;
	finding_ref(f, lr);
	rule_name(lr->r, name, sizeof(name));
	if (finding_text(&f->message,
			"%s: its src and dst sets make more than %u address pairs; lint "
			"cannot analyse it exactly",
			name, MAX_RULE_BOXES))
		return -ENOMEM;
	return -E2BIG;
}

/*
 * Findings in file order (whole-file ones first), those of one line in the
 * order the checks ran: a merge sort, stable, that moves indices rather
 * than the findings themselves.
 */
static void sort_idx(const struct lint_finding *v, size_t *idx, size_t *tmp, size_t n)
{
	size_t mid = n / 2, i = 0, j = mid, k = 0;

	if (n < 2)
		return;
	sort_idx(v, idx, tmp, mid);
	sort_idx(v, idx + mid, tmp, n - mid);
	while (i < mid && j < n)
		tmp[k++] = v[idx[j]].loc.line < v[idx[i]].loc.line ? idx[j++] : idx[i++];
	while (i < mid)
		tmp[k++] = idx[i++];
	while (j < n)
		tmp[k++] = idx[j++];
	memcpy(idx, tmp, n * sizeof(*idx));
}

static int sort_findings(struct lint_result *res)
{
	size_t *idx = calloc(res->n + 1, sizeof(*idx)), *tmp = calloc(res->n + 1, sizeof(*tmp));
	struct lint_finding *v = calloc(res->n + 1, sizeof(*v));
	size_t i;

	if (!idx || !tmp || !v) {
		free(idx);
		free(tmp);
		free(v);
		return -ENOMEM;
	}
	for (i = 0; i < res->n; i++)
		idx[i] = i;
	sort_idx(res->v, idx, tmp, res->n);
	for (i = 0; i < res->n; i++)
		v[i] = res->v[idx[i]];
	free(res->v);
	res->v = v;
	res->cap = res->n + 1;
	free(idx);
	free(tmp);
	return 0;
}

static void count_findings(struct lint_result *res)
{
	size_t i;

	res->errors = res->warnings = res->infos = 0;
	for (i = 0; i < res->n; i++) {
		if (res->v[i].sev == LINT_SEV_ERROR)
			res->errors++;
		else if (res->v[i].sev == LINT_SEV_WARNING)
			res->warnings++;
		else
			res->infos++;
	}
}

int lint_run(const struct ruleset *rs, const struct lint_opts *o, struct lint_result *res)
{
	struct lint_opts def;
	struct lctx c;
	size_t i;
	int err = 0, dir, cls;

	memset(res, 0, sizeof(*res));
	memset(&c, 0, sizeof(c));
	if (!o) {
		lint_opts_default(&def);
		o = &def;
	}
	c.rs = rs;
	c.res = res;
	c.max_spans = o->max_spans ? o->max_spans : DEFAULT_MAX_SPANS;
	c.budget = o->budget ? o->budget : DEFAULT_BUDGET;
	c.eph_lo = rs->settings.ephemeral_lo;
	c.eph_hi = rs->settings.ephemeral_hi;
	if (!c.eph_lo && !c.eph_hi) {
		c.eph_lo = 1024;
		c.eph_hi = 65535;
	}
	/*
	 * This host runs Linux: its own clients use 32768-60999 unless the
	 * file names an operating system for the ephemeral range.
	 */
	if (rs->settings.ephemeral == RULE_EPH_ANY) {
		c.leph_lo = 32768;
		c.leph_hi = 60999;
	} else {
		c.leph_lo = c.eph_lo;
		c.leph_hi = c.eph_hi;
	}

	c.rules = calloc(rs->nrules + 1, sizeof(*c.rules));
	res->rules = calloc(rs->nrules + 1, sizeof(*res->rules));
	if (!c.rules || !res->rules) {
		err = -ENOMEM;
		goto out;
	}
	res->nrules = rs->nrules;
	for (i = 0; i < rs->nrules && !err; i++) {
		res->rules[i].rule = (int)i;
		res->rules[i].status = LINT_RULE_UNKNOWN;
		err = rule_compile(&c, &c.rules[i], &rs->rules[i], (int)i);
		if (err == -E2BIG)
			err = report_too_big(&c, &c.rules[i]);
	}
	if (!err)
		err = univ_build(&c.univ);
	if (!err)
		err = tables_build(&c);

	for (i = 0; i < 4 && !err; i++)
		err = analyse_table(&c, &c.tab[i / 2][i % 2]);
	if (!err)
		err = check_denies_all(&c);
	for (dir = 0; dir < 2 && !err; dir++)
		for (cls = CLS_TCP; cls < CLS_N && !err; cls++) {
			if (cls != CLS_ICMP)
				err = check_holes(&c, dir, cls);
			if (!err)
				err = check_return(&c, dir, cls);
		}
	if (!err)
		err = check_sg_exposure(&c);
	if (!err && o->reach)
		err = compute_reach(&c);
	if (!err && res->incomplete) {
		struct lint_finding *f = finding_new(&c, LINT_SEV_INFO, LINT_KIND_INCOMPLETE, NULL);

		if (!f) {
			err = -ENOMEM;
		} else {
			for (i = 0; i < c.nincomplete_rules; i++)
				finding_ref(f, c.incomplete_rules[i]);
			err = finding_text(&f->message,
					  "%zu question%s took more than the work budget (%s%s); "
					  "what they would have found is not reported",
					  res->incomplete, res->incomplete > 1 ? "s" : "",
					  c.incomplete, res->incomplete > 3 ? ", ..." : "");
		}
	}
out:
	if (!err || err == -E2BIG) {
		int e = sort_findings(res);

		err = err ? err : e;
	}
	count_findings(res);
	ctx_free(&c);
	return err;
}

void lint_result_free(struct lint_result *res)
{
	size_t i;
	int p, d, l;

	for (i = 0; i < res->n; i++) {
		free(res->v[i].message);
		free(res->v[i].fix);
		free(res->v[i].spans);
	}
	free(res->v);
	free(res->rules);
	for (p = 0; p < LINT_REACH_NPROTO; p++)
		for (d = 0; d < 2; d++)
			for (l = 0; l < LINT_REACH_NLAYER; l++)
				free(res->reach.cell[p][d][l].spans);
	memset(res, 0, sizeof(*res));
}
