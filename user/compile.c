// SPDX-License-Identifier: GPL-2.0
/*
 * compile.c - rules -> map images for one generation.
 *
 * For every table (stage x direction) the rules are put in position order
 * and each of the five fields is cut into the regions where the set of
 * accepting rules is constant:
 *   - protocol x TCP state: 256 x 3 slots, tried directly;
 *   - sport/ICMP type and dport/ICMP code: elementary intervals of the
 *     rules' ranges, found with one sweep, plus the "no L4 header" slot;
 *   - source and destination prefixes: every prefix a rule names, each
 *     holding the rules of its own and of every enclosing prefix, so the
 *     kernel's longest-prefix match returns exactly the accepting rules.
 * Each region's rule set is a bit vector; identical vectors are stored once
 * (interned by content), sparsely, as struct moat_vec describes.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "compile.h"
#include "dir24.h"
#include "dir4.h"
#include "addr_filter.h"
#include "addr_hash.h"
#include "hash6.h"

#define W_MAX MOAT_VEC_WORDS

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 64;
	void *np;

	if (need <= *cap)
		return p;
	while (ncap < need)
		ncap *= 2;
	np = realloc(p, ncap * elem);
	if (!np)
		return NULL;
	*cap = ncap;
	return np;
}

/* ---- vector interning ---- */

static uint64_t mix64(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	h *= 0xff51afd7ed558ccdULL;
	return h ^ (h >> 33);
}

/* @rest: the non-zero words after the first (v->first_word) */
static uint64_t vec_hash(const struct moat_vec *v, const uint64_t *rest, size_t nrest)
{
	uint64_t h = mix64(0x12345, v->first_word);
	size_t i;

	for (i = 0; i < MOAT_SUMMARY_WORDS; i++)
		h = mix64(h, v->summary[i]);
	for (i = 0; i < nrest; i++)
		h = mix64(h, rest[i]);
	return h;
}

/* The stored words of @v: its non-zero words after the first. */
static const uint64_t *vec_rest(const struct moat_image *img, const struct moat_vec *v)
{
	return img->words + (uint32_t)(v->words_off + 1);
}

static size_t vec_nnz(const struct moat_vec *v)
{
	size_t i, n = 0;

	for (i = 0; i < MOAT_SUMMARY_WORDS; i++)
		n += __builtin_popcountll(v->summary[i]);
	return n;
}

static int vindex_insert(struct moat_image *img, uint32_t vid)
{
	const struct moat_vec *v = &img->vecs[vid];
	size_t mask = img->vindex_cap - 1;
	size_t slot = vec_hash(v, vec_rest(img, v), vec_nnz(v) - 1) & mask;

	while (img->vindex[slot])
		slot = (slot + 1) & mask;
	img->vindex[slot] = vid;
	return 0;
}

static int vindex_grow(struct moat_image *img)
{
	size_t cap = img->vindex_cap ? img->vindex_cap * 2 : 1024;
	uint32_t vid;

	free(img->vindex);
	img->vindex = calloc(cap, sizeof(*img->vindex));
	if (!img->vindex)
		return -ENOMEM;
	img->vindex_cap = cap;
	for (vid = 1; vid < img->nvecs; vid++)
		vindex_insert(img, vid);
	return 0;
}

/* The id of the vector with bits @bits (@nw words), adding it if new. */
static int vec_intern(struct moat_image *img, const uint64_t *bits, size_t nw, uint32_t *vid)
{
	uint64_t nz[W_MAX];
	struct moat_vec v = { 0 };
	size_t i, nnz = 0, mask, slot;
	uint64_t h;

	for (i = 0; i < nw; i++) {
		if (bits[i]) {
			v.summary[i / 64] |= 1ULL << (i % 64);
			nz[nnz++] = bits[i];
		}
	}
	if (!nnz) {
		*vid = 0;
		return 0;
	}
	for (i = 1; i < MOAT_SUMMARY_WORDS; i++)
		v.rank_base[i] = v.rank_base[i - 1] + __builtin_popcountll(v.summary[i - 1]);
	for (i = 0; i < nw; i++) {
		if (bits[i]) {
			v.first_idx = i;
			v.first_word = bits[i];
			break;
		}
	}

	if ((img->nvecs + 1) * 2 > img->vindex_cap && vindex_grow(img))
		return -ENOMEM;
	h = vec_hash(&v, nz + 1, nnz - 1);
	mask = img->vindex_cap - 1;
	for (slot = h & mask; img->vindex[slot]; slot = (slot + 1) & mask) {
		const struct moat_vec *o = &img->vecs[img->vindex[slot]];

		if (!memcmp(o->summary, v.summary, sizeof(v.summary)) &&
		    o->first_word == v.first_word &&
		    !memcmp(vec_rest(img, o), nz + 1, (nnz - 1) * sizeof(*nz))) {
			*vid = img->vindex[slot];
			return 0;
		}
	}

	/* The datapath's vector array has a fixed size (its lookups are then
	 * inlined): a rule set needing more distinct vectors is refused. */
	if (img->nvecs >= MOAT_MAX_VECS)
		return -E2BIG;
	img->vecs = grow(img->vecs, &img->vecs_cap, img->nvecs + 1, sizeof(*img->vecs));
	img->words = grow(img->words, &img->words_cap, img->nwords + nnz, sizeof(*img->words));
	if (!img->vecs || !img->words)
		return -ENOMEM;
	/* The first word lives in the header only: the pool holds the rest,
	 * and words_off is where the first would be (it may wrap), so the
	 * datapath's rank arithmetic is unchanged. */
	v.words_off = (uint32_t)img->nwords - 1;
	memcpy(img->words + img->nwords, nz + 1, (nnz - 1) * sizeof(*nz));
	img->nwords += nnz - 1;
	*vid = img->nvecs;
	img->vecs[img->nvecs++] = v;
	img->vindex[slot] = *vid;
	return 0;
}

static inline void bit_set(uint64_t *b, size_t i)
{
	b[i / 64] |= 1ULL << (i % 64);
}

static inline void bit_clear(uint64_t *b, size_t i)
{
	b[i / 64] &= ~(1ULL << (i % 64));
}

/* ---- rule order and untracked flows ---- */

static int cmp_number(const void *a, const void *b)
{
	const struct rule *x = *(const struct rule *const *)a;
	const struct rule *y = *(const struct rule *const *)b;

	return (x->number > y->number) - (x->number < y->number);
}

static bool addr_is_all(const struct rule_addr *a, int family)
{
	if (a->kind == RULE_ADDR_ANY)
		return true;
	return a->kind == RULE_ADDR_PREFIX && a->prefix.len == 0 &&
	       (family == 0 || a->prefix.family == family);
}

/* The families a rule's peer side covers completely: bit 4 and/or bit 6. */
static unsigned peer_all_families(const struct rule *r)
{
	const struct rule_addr *peer = r->dir == RULE_DIR_IN ? &r->src : &r->dst;
	unsigned fam = 0;

	if (peer->kind == RULE_ADDR_ANY)
		fam = r->family ? 1u << r->family : (1u << 4) | (1u << 6);
	else if (peer->kind == RULE_ADDR_PREFIX && peer->prefix.len == 0)
		fam = 1u << peer->prefix.family;
	return fam;
}

bool compile_rule_is_untracked(const struct ruleset *rs, const struct rule *r)
{
	const struct rule_addr *local;
	unsigned fam, covered = 0;
	size_t i;

	if (r->stage != RULE_STAGE_SG || r->established || r->sport.set || r->has_icmp)
		return false;
	if (r->proto != RULE_PROTO_ALL && r->proto != 6 && r->proto != 17)
		return false;
	local = r->dir == RULE_DIR_IN ? &r->dst : &r->src;
	fam = peer_all_families(r);
	if (!fam || !addr_is_all(local, 0))
		return false;
	/* A rule the other way must allow all replies: all peers, all ports. */
	for (i = 0; i < rs->nrules; i++) {
		const struct rule *o = &rs->rules[i];
		const struct rule_addr *olocal = o->dir == RULE_DIR_IN ? &o->dst : &o->src;

		if (o->stage != RULE_STAGE_SG || o->dir == r->dir)
			continue;
		if (o->sport.set || o->dport.set || o->has_icmp || o->established)
			continue;
		if (o->proto != RULE_PROTO_ALL && o->proto != r->proto)
			continue;
		if (!addr_is_all(olocal, 0))
			continue;
		covered |= peer_all_families(o);
	}
	return (fam & covered) == fam;
}

size_t compile_table_order(const struct ruleset *rs, enum rule_stage stage, enum rule_dir dir,
			   const struct rule **out)
{
	size_t i, n = 0;

	if (stage == RULE_STAGE_NACL) {
		for (i = 0; i < rs->nrules; i++)
			if (rs->rules[i].stage == stage && rs->rules[i].dir == dir)
				out[n++] = &rs->rules[i];
		qsort(out, n, sizeof(*out), cmp_number);
		return n;
	}
	/* SG rules form a union; untracked ones go first so that the rule
	 * found for a flow is untracked whenever any matching rule is. */
	for (i = 0; i < rs->nrules; i++) {
		const struct rule *r = &rs->rules[i];

		if (r->stage == stage && r->dir == dir && compile_rule_is_untracked(rs, r))
			out[n++] = r;
	}
	for (i = 0; i < rs->nrules; i++) {
		const struct rule *r = &rs->rules[i];

		if (r->stage == stage && r->dir == dir && !compile_rule_is_untracked(rs, r))
			out[n++] = r;
	}
	return n;
}

/* ---- protocol x state ---- */

static int compile_proto(struct moat_image *img, const struct rule **order, size_t n, size_t nw,
			 uint32_t base)
{
	uint64_t any[W_MAX], bits[W_MAX];
	bool named[256] = { false };
	uint32_t any_vid;
	int proto, state, err;
	size_t pos;

	for (pos = 0; pos < n; pos++)
		if (order[pos]->proto != RULE_PROTO_ALL)
			named[order[pos]->proto & 0xff] = true;
	for (state = MOAT_L4_PLAIN; state <= MOAT_L4_NOHDR; state++) {
		/* The rules of every protocol; protocols no rule names have
		 * just these (interned once, not 256 times). */
		memset(any, 0, nw * sizeof(*any));
		for (pos = 0; pos < n; pos++) {
			const struct rule *r = order[pos];

			if (r->proto == RULE_PROTO_ALL && (!r->established || state == MOAT_L4_ACKRST))
				bit_set(any, pos);
		}
		err = vec_intern(img, any, nw, &any_vid);
		if (err)
			return err;
		for (proto = 0; proto < 256; proto++) {
			uint32_t *slot = &img->l4[base + MOAT_L4_OFF_PROTO + proto * 4 + state];

			if (!named[proto]) {
				*slot = any_vid;
				continue;
			}
			memcpy(bits, any, nw * sizeof(*bits));
			for (pos = 0; pos < n; pos++) {
				const struct rule *r = order[pos];

				if (r->proto == proto && (!r->established || state == MOAT_L4_ACKRST))
					bit_set(bits, pos);
			}
			err = vec_intern(img, bits, nw, slot);
			if (err)
				return err;
		}
	}
	return 0;
}

/* ---- ports and ICMP type/code ---- */

struct port_range {
	uint32_t lo, hi; /* inclusive, within 0..65535 */
	bool none;	 /* also the "no L4 header" slot: field unconstrained */
};

static struct port_range rule_port_range(const struct rule *r, int field)
{
	struct port_range pr = { 0, 65535, true };
	const struct rule_range *rr = field == 0 ? &r->sport : &r->dport;

	if (r->has_icmp) {
		pr.none = false;
		if (field == 0) {
			pr.lo = pr.hi = r->icmp_type;
		} else if (r->icmp_code >= 0) {
			pr.lo = pr.hi = r->icmp_code;
		}
	} else if (r->sport.set || r->dport.set) {
		/* A rule with any port match never matches a packet without
		 * ports; the constrained field alone excludes the slot. */
		if (rr->set) {
			pr.lo = rr->lo;
			pr.hi = rr->hi;
			pr.none = false;
		}
	}
	return pr;
}

struct port_event {
	uint32_t at;
	uint32_t pos;
	bool add;
};

static int cmp_event(const void *a, const void *b)
{
	const struct port_event *x = a, *y = b;

	return (x->at > y->at) - (x->at < y->at);
}

static int compile_ports(struct moat_image *img, const struct rule **order, size_t n, size_t nw,
			 uint32_t base, int field)
{
	uint32_t off = base + (field == 0 ? MOAT_L4_OFF_SPORT : MOAT_L4_OFF_DPORT);
	struct port_event *ev = calloc(2 * n + 1, sizeof(*ev));
	uint64_t bits[W_MAX];
	size_t i, nev = 0, pos;
	uint32_t at, next, vid, p;
	int err = 0;

	if (!ev)
		return -ENOMEM;
	/* The no-L4-header slot. */
	memset(bits, 0, nw * sizeof(*bits));
	for (pos = 0; pos < n; pos++)
		if (rule_port_range(order[pos], field).none)
			bit_set(bits, pos);
	err = vec_intern(img, bits, nw, &img->l4[off + MOAT_PORT_NONE]);
	if (err)
		goto out;

	for (pos = 0; pos < n; pos++) {
		struct port_range pr = rule_port_range(order[pos], field);

		ev[nev++] = (struct port_event){ pr.lo, pos, true };
		if (pr.hi < 65535)
			ev[nev++] = (struct port_event){ pr.hi + 1, pos, false };
	}
	qsort(ev, nev, sizeof(*ev), cmp_event);
	memset(bits, 0, nw * sizeof(*bits));
	for (i = 0, at = 0; at <= 65535; at = next) {
		while (i < nev && ev[i].at == at) {
			if (ev[i].add)
				bit_set(bits, ev[i].pos);
			else
				bit_clear(bits, ev[i].pos);
			i++;
		}
		next = i < nev ? ev[i].at : 65536;
		err = vec_intern(img, bits, nw, &vid);
		if (err)
			goto out;
		for (p = at; p < next; p++)
			img->l4[off + p] = vid;
	}
out:
	free(ev);
	return err;
}

/* ---- address prefixes ---- */

struct prefix_item {
	struct rule_prefix pfx;
	uint32_t pos;
};

static int cmp_prefix(const void *a, const void *b)
{
	const struct prefix_item *x = a, *y = b;
	int c = memcmp(x->pfx.addr, y->pfx.addr, 16);

	if (c)
		return c;
	if (x->pfx.len != y->pfx.len)
		return x->pfx.len < y->pfx.len ? -1 : 1;
	return (x->pos > y->pos) - (x->pos < y->pos);
}

/* LSD radix sort of @n (key, index) pairs by the low @bits bits of key,
 * RADIX_BITS a pass (8,192 buckets: their write streams stay in cache);
 * @tmp is scratch. */
#define RADIX_BITS 13
struct radix_pair {
	uint64_t key, idx;
};

static int radix_sort(struct radix_pair *a, struct radix_pair *tmp, size_t n, unsigned bits)
{
	const size_t nb = (size_t)1 << RADIX_BITS;
	size_t *cnt = malloc(nb * sizeof(*cnt)), i, c;
	struct radix_pair *orig = a;
	unsigned shift;

	if (!cnt)
		return -ENOMEM;
	for (shift = 0; shift < bits; shift += RADIX_BITS) {
		size_t sum = 0;
		struct radix_pair *t;

		memset(cnt, 0, nb * sizeof(*cnt));
		for (i = 0; i < n; i++)
			cnt[(a[i].key >> shift) & (nb - 1)]++;
		for (c = 0; c < nb; c++) {
			size_t k = cnt[c];

			cnt[c] = sum;
			sum += k;
		}
		for (i = 0; i < n; i++)
			tmp[cnt[(a[i].key >> shift) & (nb - 1)]++] = a[i];
		t = a;
		a = tmp;
		tmp = t;
	}
	/* after an odd number of passes the result is in the scratch array */
	if (a != orig)
		memcpy(orig, a, n * sizeof(*a));
	free(cnt);
	return 0;
}

/*
 * Sort prefix items by address, then length, then position (cmp_prefix's
 * order). A radix sort orders them by one 64-bit key in a few passes, so
 * that sets of a million prefixes sort in milliseconds instead of most of
 * a second of comparisons. For IPv4 the key is the whole order (address,
 * length, position: 52 bits), and the items are rebuilt from it; for IPv6
 * it is the top half of the address, and the few items that share it (a
 * /64 and the /128s in it) are compared after.
 */
static int sort_items(struct prefix_item *items, size_t n, int family)
{
	struct radix_pair *key, *tmp;
	struct prefix_item *out = NULL;
	size_t i, j;
	int err;

	if (n < 1024) {
		qsort(items, n, sizeof(*items), cmp_prefix);
		return 0;
	}
	key = malloc(n * sizeof(*key));
	tmp = malloc(n * sizeof(*tmp));
	if (family == 6)
		out = malloc(n * sizeof(*out));
	err = !key || !tmp || (family == 6 && !out) ? -ENOMEM : 0;
	for (i = 0; !err && i < n; i++) {
		const uint8_t *a = items[i].pfx.addr;
		uint64_t hi;

		if (family == 4) {
			/* positions are below MOAT_MAX_RULES (14 bits) */
			_Static_assert(MOAT_MAX_RULES <= 1 << 14, "position bits");
			hi = ((uint64_t)a[0] << 24 | a[1] << 16 | a[2] << 8 | a[3]) << 20 |
			     (uint64_t)items[i].pfx.len << 14 | items[i].pos;
		} else {
			memcpy(&hi, a, 8);
			hi = be64toh(hi);
		}
		key[i] = (struct radix_pair){ hi, i };
	}
	if (!err)
		err = radix_sort(key, tmp, n, family == 4 ? 52 : 64);
	for (i = 0; !err && family == 4 && i < n; i++) {
		uint32_t addr = (uint32_t)(key[i].key >> 20);

		memset(&items[i].pfx, 0, sizeof(items[i].pfx));
		items[i].pfx.family = 4;
		items[i].pfx.len = (uint8_t)(key[i].key >> 14 & 63);
		items[i].pfx.addr[0] = addr >> 24;
		items[i].pfx.addr[1] = addr >> 16;
		items[i].pfx.addr[2] = addr >> 8;
		items[i].pfx.addr[3] = addr;
		items[i].pos = (uint32_t)(key[i].key & 0x3fff);
	}
	if (!err && family == 6) {
		for (i = 0; i < n; i++)
			out[i] = items[key[i].idx];
		for (i = 0; i < n; i = j) {
			for (j = i + 1; j < n && key[j].key == key[i].key; j++)
				;
			if (j - i > 1)
				qsort(out + i, j - i, sizeof(*out), cmp_prefix);
		}
		memcpy(items, out, n * sizeof(*items));
	}
	free(key);
	free(tmp);
	free(out);
	return err;
}

static bool rule_eligible(const struct rule *r, int family)
{
	return r->family == 0 || r->family == family;
}

static int emit_lpm(struct moat_image *img, int family, uint32_t tag, const struct rule_prefix *p,
		    uint32_t vid)
{
	if (family == 4) {
		struct image_lpm4 *e;

		img->lpm4 = grow(img->lpm4, &img->lpm4_cap, img->nlpm4 + 1, sizeof(*img->lpm4));
		if (!img->lpm4)
			return -ENOMEM;
		e = &img->lpm4[img->nlpm4++];
		memset(e, 0, sizeof(*e));
		e->key.prefixlen = MOAT_LPM_TAG_BITS + p->len;
		e->key.tag = htonl(tag);
		memcpy(e->key.addr, p->addr, 4);
		e->vid = vid;
	} else {
		struct image_lpm6 *e;

		img->lpm6 = grow(img->lpm6, &img->lpm6_cap, img->nlpm6 + 1, sizeof(*img->lpm6));
		if (!img->lpm6)
			return -ENOMEM;
		e = &img->lpm6[img->nlpm6++];
		memset(e, 0, sizeof(*e));
		e->key.prefixlen = MOAT_LPM_TAG_BITS + p->len;
		e->key.tag = htonl(tag);
		memcpy(e->key.addr, p->addr, 16);
		e->vid = vid;
	}
	return 0;
}

static bool prefix_encloses(const struct rule_prefix *outer, const struct rule_prefix *inner)
{
	return outer->len <= inner->len && rule_prefix_contains(outer, inner->addr);
}

static int add_item(struct prefix_item **items, size_t *n, size_t *cap,
		    const struct rule_prefix *p, uint32_t pos)
{
	*items = grow(*items, cap, *n + 1, sizeof(**items));
	if (!*items)
		return -ENOMEM;
	(*items)[*n].pfx = *p;
	(*items)[(*n)++].pos = pos;
	return 0;
}

/* Interned vector of a prefix of one rule under a given parent entry. */
struct prefix_memo {
	uint64_t key; /* (parent serial << 16 | rule position) + 1; 0: empty */
	uint32_t vid;
};

/* The vector of the walk's stack entry @depth - 1 (the root's for 0),
 * writing out the lazy entries it rests on. */
static const uint64_t *stack_vector(uint64_t *stack, long *lazy, const uint64_t *root,
				    size_t depth, size_t nw)
{
	size_t d;

	for (d = 0; d < depth; d++) {
		if (lazy[d] < 0)
			continue;
		memcpy(stack + d * nw, d ? stack + (d - 1) * nw : root, nw * sizeof(*stack));
		bit_set(stack + d * nw, (size_t)lazy[d]);
		lazy[d] = -1;
	}
	return depth ? stack + (depth - 1) * nw : root;
}

static int compile_addr(struct moat_image *img, const struct ruleset *rs,
			const struct rule **order, size_t n, size_t nw, uint32_t table, int field,
			int family)
{
	struct prefix_item *items = NULL;
	size_t nitems = 0, cap = 0, i, j, k, depth = 0;
	struct rule_prefix stack_pfx[130];
	uint64_t *stack = NULL, root[W_MAX], cur[W_MAX];
	uint32_t tag = MOAT_LPM_TAG(table, field), vid, serial[130], next_serial = 1;
	long lazy[130]; /* >= 0: the entry's vector is its parent's plus this rule */
	struct prefix_memo *memo = NULL;
	size_t pos, memo_cap;
	int err = 0;

	memset(root, 0, nw * sizeof(*root));
	for (pos = 0; pos < n; pos++) {
		const struct rule *r = order[pos];
		const struct rule_addr *a = field == MOAT_FIELD_SRC ? &r->src : &r->dst;

		if (!rule_eligible(r, family))
			continue;
		if (a->kind == RULE_ADDR_ANY) {
			bit_set(root, pos);
		} else if (a->kind == RULE_ADDR_PREFIX) {
			if (a->prefix.family != family)
				continue;
			if (a->prefix.len == 0)
				bit_set(root, pos);
			else if ((err = add_item(&items, &nitems, &cap, &a->prefix, pos)))
				goto out;
		} else {
			const struct rule_set *s = &rs->sets[a->set];

			for (k = 0; k < s->n; k++) {
				if (s->prefixes[k].family != family)
					continue;
				if (s->prefixes[k].len == 0)
					bit_set(root, pos);
				else if ((err = add_item(&items, &nitems, &cap, &s->prefixes[k],
							 pos)))
					goto out;
			}
		}
	}

	{
		struct rule_prefix zero = { .family = (uint8_t)family, .len = 0 };

		err = vec_intern(img, root, nw, &vid);
		if (err)
			goto out;
		if (!nitems) {
			/* One vector for every address: no trie lookup needed. */
			unsigned bit = MOAT_ADDR_CONST_BIT(table, field, family == 6);

			img->cfg.addr_const_mask |= 1u << bit;
			img->cfg.addr_const_vid[bit] = vid;
			goto out;
		}
		if (vid && (err = emit_lpm(img, family, tag, &zero, vid)))
			goto out;
	}

	err = sort_items(items, nitems, family);
	if (err)
		goto out;
	stack = malloc(130 * nw * sizeof(*stack));
	for (memo_cap = 64; memo_cap < 2 * nitems && memo_cap < 65536; memo_cap *= 2)
		;
	memo = calloc(memo_cap, sizeof(*memo));
	if (!stack || !memo) {
		err = -ENOMEM;
		goto out;
	}
	/*
	 * Pre-order walk of the prefix tree: the stack holds the enclosing
	 * prefixes of the current one with their accumulated rule sets.
	 *
	 * The common case of a large set is a prefix of one rule with nothing
	 * nested in it: its vector is its parent's plus that rule, the same
	 * for all such prefixes under one parent. So it is interned once per
	 * (parent, rule) (memo, keyed by the parent entry's serial; the root
	 * is serial 0), and its stack entry stays lazy - implied by its parent
	 * and its rule - until a nested prefix needs it written out. A set of
	 * a million prefixes then costs no word-by-word work per prefix.
	 */
	for (i = 0; i < nitems; i = j) {
		const struct rule_prefix *p = &items[i].pfx;
		uint32_t parent;
		const uint64_t *pv;

		while (depth && !prefix_encloses(&stack_pfx[depth - 1], p))
			depth--;
		for (j = i + 1; j < nitems && items[j].pfx.len == p->len &&
				!memcmp(items[j].pfx.addr, p->addr, 16);
		     j++)
			;
		parent = depth ? serial[depth - 1] : 0;
		if (j == i + 1) {
			uint64_t key = ((uint64_t)parent << 16 | items[i].pos) + 1;
			size_t slot = (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 40) & (memo_cap - 1);

			if (memo[slot].key != key) {
				pv = stack_vector(stack, lazy, root, depth, nw);
				memcpy(cur, pv, nw * sizeof(*cur));
				bit_set(cur, items[i].pos);
				err = vec_intern(img, cur, nw, &vid);
				if (err)
					goto out;
				memo[slot].key = key;
				memo[slot].vid = vid;
			}
			err = emit_lpm(img, family, tag, p, memo[slot].vid);
			if (err)
				goto out;
			if (depth < 129) {
				stack_pfx[depth] = *p;
				lazy[depth] = (long)items[i].pos;
				serial[depth++] = next_serial++;
			}
			continue;
		}
		pv = stack_vector(stack, lazy, root, depth, nw);
		memcpy(cur, pv, nw * sizeof(*cur));
		for (k = i; k < j; k++)
			bit_set(cur, items[k].pos);
		err = vec_intern(img, cur, nw, &vid);
		if (err)
			goto out;
		err = emit_lpm(img, family, tag, p, vid);
		if (err)
			goto out;
		if (depth < 129) {
			stack_pfx[depth] = *p;
			memcpy(stack + depth * nw, cur, nw * sizeof(*cur));
			lazy[depth] = -1;
			serial[depth++] = next_serial++;
		}
	}
out:
	free(memo);
	free(stack);
	free(items);
	return err;
}

enum addr_tables_mode addr_tables_mode = ADDR_TABLES_AUTO;
size_t addr_prefix_limit = MOAT_MAX_ADDR_PREFIXES;

/*
 * 64-bit digest of a map image (FNV-1a over 8-byte words, then the
 * length), so that equal digests mean equal contents short of a 2^-64
 * accident. Image entries are fully initialised (memset before filling).
 */
static uint64_t image_digest(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL, w;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return (h ^ len) * 0x100000001b3ULL;
}

/* ---- replies of untracked flows ---- */

/* Mark, for each direction, the service ports its untracked rules open;
 * see MOAT_L4_OFF_UNTRACKED. */
static void compile_untracked_replies(const struct ruleset *rs, struct moat_image *img)
{
	size_t i;

	for (i = 0; i < rs->nrules; i++) {
		const struct rule *r = &rs->rules[i];
		const struct rule_addr *local = r->dir == RULE_DIR_IN ? &r->dst : &r->src;
		unsigned fams;
		int v6, udp;

		if (!compile_rule_is_untracked(rs, r))
			continue;
		fams = peer_all_families(r);
		for (v6 = 0; v6 <= 1; v6++) {
			int family = v6 ? 6 : 4;

			/* The rule must take every address of this family on
			 * both sides, or it allows only some of the flows. */
			if (!(fams & (1u << family)) || !addr_is_all(local, family))
				continue;
			for (udp = 0; udp <= 1; udp++) {
				uint32_t *map = img->l4 + MOAT_L4_OFF_UNTRACKED +
						MOAT_UNTRACKED_MAP(r->dir, v6, udp) *
							MOAT_UNTRACKED_WORDS;
				unsigned lo = 0, hi = 65535, port;

				if (r->proto != RULE_PROTO_ALL && r->proto != (udp ? 17 : 6))
					continue;
				if (r->dport.set) {
					lo = r->dport.lo;
					hi = r->dport.hi;
				} else {
					map[MOAT_UNTRACKED_NOPORT_WORD] = 1;
				}
				for (port = lo; port <= hi; port++)
					map[port / 32] |= 1u << (port % 32);
			}
		}
	}
}

/* ---- tables ---- */

static int compile_table(const struct ruleset *rs, struct moat_image *img, enum rule_stage stage,
			 enum rule_dir dir, const struct rule **order, size_t n)
{
	uint32_t table = MOAT_TABLE(stage, dir);
	uint32_t base = table * MOAT_L4_TABLE_STRIDE;
	size_t nw = (n + 63) / 64, pos;
	int err, field, family;

	img->cfg.nrules[table] = n;
	img->cfg.rule_base[table] = img->nrules;
	for (pos = 0; pos < n; pos++) {
		const struct rule *r = order[pos];
		struct image_rule *ir = &img->rules[img->nrules++];

		ir->stage = (enum moat_stage)stage;
		ir->dir = (enum moat_dir)dir;
		ir->rule = r;
		ir->info.number = r->number;
		ir->info.action = r->action == RULE_ALLOW ? MOAT_ACTION_ALLOW : MOAT_ACTION_DENY;
		ir->info.flags = compile_rule_is_untracked(rs, r) ? MOAT_RULE_F_UNTRACKED : 0;
		ir->info.stat_slot = 0;
	}
	if (!n)
		return 0;
	/* Addresses first: their vector ids then do not depend on the
	 * table's ports and protocols, so a rule set that changes only those
	 * compiles to the same address maps, which a reload can keep. */
	err = 0;
	for (family = 4; !err && family <= 6; family += 2)
		for (field = MOAT_FIELD_SRC; !err && field <= MOAT_FIELD_DST; field++)
			err = compile_addr(img, rs, order, n, nw, table, field, family);
	if (!err)
		err = compile_proto(img, order, n, nw, base);
	for (field = 0; !err && field < 2; field++)
		err = compile_ports(img, order, n, nw, base, field);
	return err;
}

int compile_ruleset(const struct ruleset *rs, struct moat_image *img, struct diags *d)
{
	const struct rule **order = NULL;
	const struct rule_settings *s = &rs->settings;
	int stage, dir, err = 0;
	size_t n;

	memset(img, 0, sizeof(*img));
	img->l4 = calloc(MOAT_L4_ENTRIES, sizeof(*img->l4));
	img->rules = calloc(rs->nrules ? rs->nrules : 1, sizeof(*img->rules));
	order = calloc(rs->nrules ? rs->nrules : 1, sizeof(*order));
	img->vecs = grow(NULL, &img->vecs_cap, 1, sizeof(*img->vecs));
	if (!img->l4 || !img->rules || !order || !img->vecs) {
		err = -ENOMEM;
		goto out;
	}
	memset(&img->vecs[0], 0, sizeof(img->vecs[0])); /* id 0: the empty vector */
	img->nvecs = 1;

	for (stage = RULE_STAGE_NACL; stage <= RULE_STAGE_SG; stage++) {
		if (rs->stage_on[stage])
			img->cfg.stage_on |= 1u << stage;
		for (dir = RULE_DIR_IN; dir <= RULE_DIR_OUT; dir++) {
			n = compile_table_order(rs, stage, dir, order);
			if (n > MOAT_MAX_RULES) {
				diags_add(d, DIAG_ERROR, NULL, 0, 0,
					  "%s %s has %zu rules; moat holds at most %d per direction",
					  rule_stage_name(stage), rule_dir_name(dir), n,
					  MOAT_MAX_RULES);
				err = -E2BIG;
				goto out;
			}
			err = compile_table(rs, img, stage, dir, order, n);
			if (err == -E2BIG) {
				diags_add(d, DIAG_ERROR, NULL, 0, 0,
					  "compiling %s %s: the rule set needs more than %d "
					  "distinct field vectors, what moat holds per generation; "
					  "fewer distinct prefixes or port ranges would fit",
					  rule_stage_name(stage), rule_dir_name(dir),
					  MOAT_MAX_VECS);
				goto out;
			}
			if (err) {
				diags_add(d, DIAG_ERROR, NULL, 0, 0, "compiling %s %s: %s",
					  rule_stage_name(stage), rule_dir_name(dir),
					  strerror(-err));
				goto out;
			}
		}
	}
	compile_untracked_replies(rs, img);
	if (img->nlpm4 + img->nlpm6 > addr_prefix_limit) {
		size_t k, named = 0; /* the fields' /0 entries are moat's own */

		for (k = 0; k < img->nlpm4; k++)
			named += img->lpm4[k].key.prefixlen > MOAT_LPM_TAG_BITS;
		for (k = 0; k < img->nlpm6; k++)
			named += img->lpm6[k].key.prefixlen > MOAT_LPM_TAG_BITS;
		if (named > addr_prefix_limit) {
			diags_add(d, DIAG_ERROR, NULL, 0, 0,
				  "the rules name %zu address prefixes (a set counts once for "
				  "each direction and address field it is used in); moat holds "
				  "at most %zu per rule set, so that its maps stay within a "
				  "bounded size",
				  named, addr_prefix_limit);
			err = -E2BIG;
			goto out;
		}
	}
	err = dir4_build(img);
	if (!err)
		err = dir24_build(img);
	if (!err)
		err = hash6_build(img);
	if (!err)
		err = addr_hash_build(img);
	if (!err)
		err = addr_filter_build(img);
	if (!err) {
		img->cfg.digest[0] = image_digest(img->lpm4, img->nlpm4 * sizeof(*img->lpm4));
		img->cfg.digest[1] = image_digest(img->lpm6, img->nlpm6 * sizeof(*img->lpm6));
	}
	if (err) {
		diags_add(d, DIAG_ERROR, NULL, 0, 0, "compiling the address tables: %s",
			  strerror(-err));
		goto out;
	}
	if (s->pass_ndp)
		img->cfg.flags |= MOAT_CFG_F_PASS_NDP;
	img->cfg.timeouts.tcp_syn = 120;
	img->cfg.timeouts.tcp_established = s->ct_tcp_established;
	img->cfg.timeouts.tcp_closing = 10;
	img->cfg.timeouts.udp = s->ct_udp;
	img->cfg.timeouts.udp_stream = s->ct_udp_stream;
	img->cfg.timeouts.icmp = s->ct_icmp;
	img->cfg.timeouts.other = s->ct_other ? s->ct_other : 600;
out:
	free(order);
	free(img->vindex);
	img->vindex = NULL;
	img->vindex_cap = 0;
	if (err)
		image_free(img);
	return err;
}

void image_free(struct moat_image *img)
{
	free(img->l4);
	free(img->vecs);
	free(img->words);
	free(img->rules);
	free(img->lpm4);
	free(img->lpm6);
	free(img->dir4);
	free(img->dir24);
	free(img->hash4);
	free(img->hash6);
	free(img->addr_hash);
	free(img->addr_filter);
	free(img->vindex);
	memset(img, 0, sizeof(*img));
}

size_t image_bytes(const struct moat_image *img)
{
	return MOAT_L4_ENTRIES * sizeof(uint32_t) + img->nvecs * sizeof(struct moat_vec) +
	       img->nwords * sizeof(uint64_t) + img->nrules * sizeof(struct moat_rule_info) +
	       img->nlpm4 * (sizeof(struct moat_lpm4_key) + 4) +
	       img->nlpm6 * (sizeof(struct moat_lpm6_key) + 4) + img->ndir4 * sizeof(uint32_t) +
	       img->naddr_hash * sizeof(struct moat_addr_bucket) + img->ndir24 * sizeof(uint32_t) +
	       img->naddr_filter * sizeof(uint64_t);
}
