/* SPDX-License-Identifier: GPL-2.0 */
/*
 * classify.h - first-match classification over five fields, at a cost that
 * does not grow with the number of rules.
 *
 * Each field lookup (source and destination tries, sport/ICMP type,
 * dport/ICMP code, protocol+TCP state) yields a bit vector of the rules
 * that accept the field's value; rules are numbered by position, lowest
 * first. AND-ing the five vectors leaves the rules that match the whole
 * packet; the lowest set bit is the first match. Vectors are sparse: a
 * summary word per 64 words says which words are non-zero, so the AND
 * visits only words every field has bits in (usually one).
 */
#ifndef MOAT_BPF_CLASSIFY_H
#define MOAT_BPF_CLASSIFY_H

#include "maps.h"
#include "bits.h"
#include "parse.h"

#define MOAT_NFIELDS MOAT_DECISION_NFIELDS

static __always_inline __u32 lookup_u32(void *map, const void *key)
{
	__u32 *v = bpf_map_lookup_elem(map, key);

	return v ? *v : 0;
}

/* Entry @idx of an array of 32-bit entries stored two per value (gen_l4,
 * gen_dir4), or 0. */
static __always_inline __u32 lookup_pair_u32(void *map, __u32 idx)
{
	__u32 k = idx >> 1;
	__u32 *v = bpf_map_lookup_elem(map, &k);

	return v ? v[idx & 1] : 0;
}

/* A key of the address hash table, and the table's bucket mask. */
struct addr_hash_key {
	__u64 hi, lo;
	__u32 tag, mask;
};

/* addr_hash_find's answer for a key found: this bit and the vector id. */
#define ADDR_HASH_FOUND (1ULL << 32)

/*
 * Look @k up in the address hash table @tbl: ADDR_HASH_FOUND | its vector
 * id, or 0. Inlined into the loops over prefix lengths below; the key is
 * one struct in the caller's frame, which those frames can afford (the
 * three frames of the deepest call chain share 512 bytes of stack).
 */
static __always_inline __u64 addr_hash_find(void *tbl, const struct addr_hash_key *k)
{
	__u64 h;
	__u32 b, i, n, full;

	h = moat_addr_hash(k->hi, k->lo, k->tag);
	b = (__u32)h & k->mask;
	for (n = 0; n < 2; n++) {
		struct moat_addr_bucket *bk = bpf_map_lookup_elem(tbl, &b);

		if (!bk)
			return 0;
		full = 1;
		for (i = 0; i < MOAT_ADDR_SLOTS; i++) {
			const struct moat_addr_slot *s = &bk->s[i];

			if (s->tag == k->tag && s->hi == k->hi && s->lo == k->lo)
				return ADDR_HASH_FOUND | s->vid;
			full &= s->tag != 0;
		}
		/* A key goes to its second bucket only when the first is
		 * full, and a full bucket stays full. */
		if (!full)
			return 0;
		b = moat_addr_bucket2(b, h) & k->mask;
	}
	return 0;
}

/*
 * The vector id of the IPv4 address of field @field: its /24 front table
 * and the address hash table, or its LPM trie. These lookups are
 * subprograms of their own, not inlined: their lookup keys then live
 * in their frames, beside classify_step's rather than on top of it, and
 * the three frames of the deepest call chain must share 512 bytes of stack.
 * The two with loops are global functions: the verifier checks each once,
 * not once for every call site and path that reaches it (that tripled the
 * time to load the programs).
 */
__noinline __u32 addr_vec_v4(const struct moat_pkt *p, const struct moat_gen_config *cfg,
			     __u32 gen, __u32 table, __u32 field)
{
	__u32 slot = MOAT_DIR4_SLOT(table, field) & 7;
	struct moat_lpm4_key k;
	const __u8 *a;
	void *map;

	if (!p || !cfg)
		return 0;
	a = field == MOAT_FIELD_SRC ? p->src : p->dst;
	/* A /24 front table: its entry is the longest match of at most /24;
	 * the hash table holds the longer ones. */
	if (cfg->dir24_mask & (1u << slot)) {
		__u32 ha = ((__u32)a[0] << 24) | ((__u32)a[1] << 16) | ((__u32)a[2] << 8) | a[3];
		__u32 e, i, lens = cfg->dir24_long[slot];
		void *front = bpf_map_lookup_elem(&gen_dir24, &gen);
		struct addr_hash_key hk = { .mask = cfg->addr_hash_mask };
		__u64 found;

		if (!front)
			return 0;
		e = lookup_pair_u32(front, ((cfg->dir24_slice[slot] & 1) << 24) + (ha >> 8));
		if (!(e & MOAT_DIR4_CHUNK))
			return e;
		map = bpf_map_lookup_elem(&gen_addr_hash, &gen);
		if (!map)
			return 0;
		for (i = 0; i < 8; i++) {
			__u32 len = 32 - i;

			if (!(lens & (0x80u >> i)))
				continue;
			hk.hi = (__u64)(ha & (~0u << (32 - len))) << 32;
			hk.tag = MOAT_ADDR_TAG(slot, len, 0);
			found = addr_hash_find(map, &hk);
			if (found)
				return (__u32)found;
		}
		return e & ~MOAT_DIR4_CHUNK;
	}
	/* The trie's key is built only here, not for fields with a front. */
	k.prefixlen = MOAT_LPM_TAG_BITS + 32;
	k.tag = bpf_htonl(MOAT_LPM_TAG(table, field));
	map = bpf_map_lookup_elem(&gen_lpm4, &gen);
	__builtin_memcpy(k.addr, a, 4);
	return map ? lookup_u32(map, &k) : 0;
}

/* The same for IPv6 address @a in a field kept in the trie. */
static __noinline __u32 addr_vec_v6_trie(const __u8 *a, __u32 gen, __u32 table, __u32 field)
{
	struct moat_lpm6_key k = {
		.prefixlen = MOAT_LPM_TAG_BITS + 128,
		.tag = bpf_htonl(MOAT_LPM_TAG(table, field)),
	};
	void *map = bpf_map_lookup_elem(&gen_lpm6, &gen);

	__builtin_memcpy(k.addr, a, 16);
	return map ? lookup_u32(map, &k) : 0;
}

/* The top @len bits of the IPv6 address @hi:@lo into @k. */
static __always_inline void cut6(struct addr_hash_key *k, __u64 hi, __u64 lo, __u32 len)
{
	k->hi = moat_addr_cut6_hi(hi, len);
	k->lo = moat_addr_cut6_lo(lo, len);
}

/* The same for IPv6 address @a in a field in the address hash table (a
 * frame apart from the trie's key: the two would not fit in one). */
__noinline __u32 addr_vec_v6_hash(const struct moat_pkt *p, const struct moat_gen_config *cfg,
				  __u32 gen, __u32 field, __u32 slot)
{
	struct addr_hash_key hk = {};
	__u64 hi, lo, found;
	__u32 i, lens, cut, want = 15; /* bit i: look length i up */
	const __u8 *a;
	void *map, *filter;

	if (!p || !cfg)
		return 0;
	a = field == MOAT_FIELD_SRC ? p->src : p->dst;
	hk.mask = cfg->addr_hash_mask;
	slot &= MOAT_DIR4_SLOTS - 1;

	/* One lookup per prefix length, longest first, the address cut to
	 * that length; no hit: the /0 vector (or none). The lengths go
	 * through one register, four bytes of it, to spare the stack. */
	map = bpf_map_lookup_elem(&gen_addr_hash, &gen);
	if (!map)
		return 0;
	__builtin_memcpy(&lens, cfg->hash6_lens[slot], 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	lens = __builtin_bswap32(lens); /* the first length in the low byte */
#endif
	__builtin_memcpy(&hi, a, 8);
	__builtin_memcpy(&lo, a + 8, 8);
	hi = bpf_be64_to_cpu(hi);
	lo = bpf_be64_to_cpu(lo);
	/* The filter first: which lengths have a prefix in the address's
	 * block (the address cut to the field's shortest length). */
	cut = cfg->hash6_cut[slot];
	if (cut && cut <= 128) {
		__u32 fs, word;
		__u64 *wp;

		cut6(&hk, hi, lo, cut);
		fs = moat_addr_filter_slot(moat_addr_hash(hk.hi, hk.lo, MOAT_ADDR_TAG(slot, cut, 1)),
					   cfg->addr_filter_mask);
		word = fs >> 4;
		filter = bpf_map_lookup_elem(&gen_addr_filter, &gen);
		wp = filter ? bpf_map_lookup_elem(filter, &word) : 0;
		if (wp)
			want = (*wp >> ((fs & 15) * 4)) & 15;
		if (!want)
			return cfg->hash6_default[slot];
	}
	for (i = 0; i < MOAT_HASH6_LENS; i++, lens >>= 8, want >>= 1) {
		__u32 len = lens & 0xff;

		if (len > 128)
			break;
		if (!(want & 1))
			continue;
		cut6(&hk, hi, lo, len);
		hk.tag = MOAT_ADDR_TAG(slot, len, 1);
		found = addr_hash_find(map, &hk);
		if (found)
			return (__u32)found;
	}
	return cfg->hash6_default[slot];
}

/*
 * The vector id of address field @field: a constant, an IPv4 16-8-8 table
 * (inlined: one to three array reads, no call), else addr_vec_v4(),
 * addr_vec_v6_hash() or addr_vec_v6_trie().
 */
static __always_inline __u32 addr_vec(const struct moat_pkt *p, const struct moat_gen_config *cfg,
				      void *l4, __u32 gen, __u32 table, __u32 field)
{
	const __u8 *a = field == MOAT_FIELD_SRC ? p->src : p->dst;
	__u32 bit = MOAT_ADDR_CONST_BIT(table, field, p->family == 6) & 15;
	__u32 slot = MOAT_DIR4_SLOT(table, field) & 7;

	if (cfg->addr_const_mask & (1u << bit))
		return cfg->addr_const_vid[bit];

	if (p->family == 4 && (cfg->dir4_mask & (1u << slot))) {
		__u32 ha = ((__u32)a[0] << 24) | ((__u32)a[1] << 16) | ((__u32)a[2] << 8) | a[3];
		__u32 idx = MOAT_L4_OFF_DIR4 + slot * MOAT_DIR4_L1 + (ha >> 16);
		void *dir4;
		__u32 e = lookup_pair_u32(l4, idx);

		if (!(e & MOAT_DIR4_CHUNK))
			return e;
		dir4 = bpf_map_lookup_elem(&gen_dir4, &gen);
		if (!dir4)
			return 0;
		e = lookup_pair_u32(dir4, ((e & ~MOAT_DIR4_CHUNK) << 8) + ((ha >> 8) & 255));
		if (e & MOAT_DIR4_CHUNK)
			e = lookup_pair_u32(dir4, ((e & ~MOAT_DIR4_CHUNK) << 8) + (ha & 255));
		return e;
	}
	if (p->family == 4)
		return addr_vec_v4(p, cfg, gen, table, field);
	if (cfg->hash6_mask & (1u << slot))
		return addr_vec_v6_hash(p, cfg, gen, field, slot);
	return addr_vec_v6_trie(a, gen, table, field);
}

/* State shared with the candidate-word callback. */
struct classify_ctx {
	/* key.vid: the five fields' vector ids; key.gen: the generation */
	struct moat_decision_key key;
	__u64 cand[MOAT_SUMMARY_WORDS];
	__u32 result;
};

/* Word @idx of the word pool past the fixed-size array: a call of its own,
 * so that the inlined lookup of the fixed-size array stays a separate
 * instruction (one call site serving both maps could be inlined for
 * neither). */
static __noinline __u64 more_word(__u32 gen, __u32 idx)
{
	void *more = bpf_map_lookup_elem(&gen_words_more, &gen);
	__u64 *wp;

	if (!more)
		return 0;
	idx -= MOAT_FAST_WORDS;
	wp = bpf_map_lookup_elem(more, &idx);
	return wp ? *wp : 0;
}

/* Word @w of vector @v of generation @gen, or 0. */
static __always_inline __u64 vec_word(void *words, const struct moat_vec *v, __u32 w, __u32 gen)
{
	__u32 sw = (w >> 6) & (MOAT_SUMMARY_WORDS - 1);
	__u64 below = (1ULL << (w & 63)) - 1;
	__u32 idx;
	__u64 *wp;

	if (!(v->summary[sw] & (1ULL << (w & 63))))
		return 0;
	if (w == v->first_idx)
		return v->first_word;
	idx = v->words_off + v->rank_base[sw] + bits_popcount64(v->summary[sw] & below);
	if (idx >= MOAT_FAST_WORDS)
		return more_word(gen, idx);
	wp = bpf_map_lookup_elem(words, &idx);
	return wp ? *wp : 0;
}

/* The first 8 bytes of a decision key: @epoch, then @table. */
static __always_inline __u64 decision_first_word(__u32 epoch, __u32 table)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return ((__u64)table << 32) | epoch;
#else
	return ((__u64)epoch << 32) | table;
#endif
}

/* The decision-cache slot of @k: a multiplicative hash of its words. Its
 * first word (epoch, table) comes in registers as @first: it has just been
 * stored, and one 8-byte load of two fresh 4-byte stores stalls the CPU. */
static __always_inline __u32 decision_slot(const struct moat_decision_key *k, __u64 first)
{
	const __u64 *q = (const __u64 *)k;
	__u64 h = first * 0x9e3779b97f4a7c15ULL;

	h = (h ^ q[1]) * 0xff51afd7ed558ccdULL;
	h = (h ^ q[2]) * 0xc4ceb9fe1a85ec53ULL;
	h = (h ^ q[3]) * 0x9e3779b97f4a7c15ULL;
	return (__u32)(h >> 40) & (MOAT_DECISION_ENTRIES - 1);
}

/* Whether cached key @a is @b, whose first word is @first (in registers,
 * as for decision_slot). */
static __always_inline int decision_key_equal(const struct moat_decision_key *a,
					      const struct moat_decision_key *b, __u64 first)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == first && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* The lowest word set in @cand, or MOAT_VEC_WORDS. */
static __always_inline __u32 lowest_word(const __u64 *cand)
{
	__u32 sw;

	for (sw = 0; sw < MOAT_SUMMARY_WORDS; sw++)
		if (cand[sw])
			return sw * 64 + bits_ctz64(cand[sw]);
	return MOAT_VEC_WORDS;
}

/*
 * One candidate word per call, lowest first: AND the five fields' words;
 * a non-zero AND holds the winner. Returns 1 to stop the loop.
 */
static long classify_step(__u32 i, void *data)
{
	struct classify_ctx *c = data;
	const struct moat_vec *v;
	void *vecs, *words;
	__u64 acc = ~0ULL;
	__u32 sw, w, f, gen = c->key.gen & 1;

	/* Looked up here, not kept in @c: moat_classify's frame is what
	 * the 512-byte stack of the three frames can least spare. */
	vecs = bpf_map_lookup_elem(&gen_vecs, &gen);
	words = bpf_map_lookup_elem(&gen_words, &gen);
	if (!vecs || !words)
		return 1;

	w = lowest_word(c->cand);
	if (w >= MOAT_VEC_WORDS)
		return 1;
	sw = (w >> 6) & (MOAT_SUMMARY_WORDS - 1);
	c->cand[sw] &= c->cand[sw] - 1;

	/* Sparse fields first (src, dport, dst, proto, sport): stop at the
	 * first zero. */
	for (f = 0; f < MOAT_NFIELDS && acc; f++) {
		__u32 fi = f == 0 ? 0 : f == 1 ? 4 : f - 1;

		v = bpf_map_lookup_elem(vecs, &c->key.vid[fi & 7]);
		if (!v)
			return 1;
		acc &= vec_word(words, v, w, gen);
	}
	if (acc) {
		c->result = w * 64 + bits_ctz64(acc);
		return 1;
	}
	return 0;
}

static __always_inline __u32 port_slot(const struct moat_pkt *p, __u16 port)
{
	return p->has_l4 ? port : MOAT_PORT_NONE;
}

/*
 * The position of the first rule of @table that matches @p, or
 * MOAT_NO_RULE. @nrules bounds the answer (positions past it are unused).
 *
 * A global (non-inlined) function: the verifier checks it once, on its
 * own, instead of once per path of every caller, which keeps the programs
 * far below the verifier's complexity limit.
 */
__noinline int moat_classify(const struct moat_pkt *p, const struct moat_gen_config *cfg, __u32 gen,
			     __u32 table, __u32 nrules)
{
	struct classify_ctx c = { .result = MOAT_NO_RULE };
	const struct moat_vec *v[MOAT_NFIELDS];
	void *l4, *vecs, *words;
	struct moat_decision_entry *entry;
	__u32 base, idx, sw, f, w;
	__u64 acc, more;

	if (!p || !nrules || table >= MOAT_NTABLES)
		return MOAT_NO_RULE;
	gen &= 1;
	l4 = bpf_map_lookup_elem(&gen_l4, &gen);
	vecs = bpf_map_lookup_elem(&gen_vecs, &gen);
	words = bpf_map_lookup_elem(&gen_words, &gen);
	if (!l4 || !vecs || !words)
		return MOAT_NO_RULE;
	c.key.gen = gen;
	if (!cfg)
		return MOAT_NO_RULE;
	base = table * MOAT_L4_TABLE_STRIDE;

	/*
	 * Two stages, most selective fields first, so that traffic no rule
	 * is about stops early. Vector id 0 is the empty vector: a field no
	 * rule accepts ends the search.
	 *
	 * Stage 1, source and destination port: their summaries' AND gives
	 * the candidate words; when the lowest one's AND is zero, that word
	 * is no longer a candidate.
	 */
	c.key.vid[0] = addr_vec(p, cfg, l4, gen, table, MOAT_FIELD_SRC);
	idx = base + MOAT_L4_OFF_DPORT + port_slot(p, p->dport);
	c.key.vid[4] = lookup_pair_u32(l4, idx);
	if (!c.key.vid[0] || !c.key.vid[4])
		return MOAT_NO_RULE;
	v[0] = bpf_map_lookup_elem(vecs, &c.key.vid[0]);
	v[4] = bpf_map_lookup_elem(vecs, &c.key.vid[4]);
	if (!v[0] || !v[4])
		return MOAT_NO_RULE;
	for (sw = 0; sw < MOAT_SUMMARY_WORDS; sw++)
		c.cand[sw] = v[0]->summary[sw] & v[4]->summary[sw];
	w = lowest_word(c.cand);
	if (w >= MOAT_VEC_WORDS)
		return MOAT_NO_RULE;
	acc = vec_word(words, v[0], w, gen);
	if (acc)
		acc &= vec_word(words, v[4], w, gen);
	if (!acc) {
		c.cand[(w >> 6) & (MOAT_SUMMARY_WORDS - 1)] &= ~(1ULL << (w & 63));
		if (!(c.cand[0] | c.cand[1] | c.cand[2] | c.cand[3]))
			return MOAT_NO_RULE;
	}

	/* Stage 2: protocol and state, source port, destination address. */
	idx = base + MOAT_L4_OFF_PROTO + p->proto * 4 + (p->state & 3);
	c.key.vid[2] = lookup_pair_u32(l4, idx);
	idx = base + MOAT_L4_OFF_SPORT + port_slot(p, p->sport);
	c.key.vid[3] = lookup_pair_u32(l4, idx);
	if (!c.key.vid[2] || !c.key.vid[3])
		return MOAT_NO_RULE;
	c.key.vid[1] = addr_vec(p, cfg, l4, gen, table, MOAT_FIELD_DST);
	if (!c.key.vid[1])
		return MOAT_NO_RULE;
	for (f = 1; f < 4; f++) {
		v[f] = bpf_map_lookup_elem(vecs, &c.key.vid[f]);
		if (!v[f])
			return MOAT_NO_RULE;
	}
	for (sw = 0; sw < MOAT_SUMMARY_WORDS; sw++)
		c.cand[sw] &= v[1]->summary[sw] & v[2]->summary[sw] & v[3]->summary[sw];

	w = lowest_word(c.cand);
	if (w >= MOAT_VEC_WORDS)
		return MOAT_NO_RULE;
	sw = (w >> 6) & (MOAT_SUMMARY_WORDS - 1);
	/* Other candidate words besides the lowest? */
	more = c.cand[sw] & (c.cand[sw] - 1);
	for (f = 0; f < MOAT_SUMMARY_WORDS; f++)
		if (f != sw)
			more |= c.cand[f];

	/* With more than one candidate word, the answer may take a walk:
	 * unless this tuple of vectors was decided before under the same rule
	 * set, whose answer is then the answer. */
	entry = 0;
	if (more) {
		__u32 epoch = cfg->epoch;
		__u64 first = decision_first_word(epoch, table);

		c.key.epoch = epoch;
		c.key.table = table;
		idx = decision_slot(&c.key, first);
		if (!moat_decision_cache_off)
			entry = bpf_map_lookup_elem(&decision_cache, &idx);
		if (entry && decision_key_equal(&entry->key, &c.key, first))
			return entry->result;
	}

	/* Fast path: the lowest candidate word usually holds the winner. */
	acc = vec_word(words, v[0], w, gen);
	if (acc)
		acc &= vec_word(words, v[4], w, gen);
	if (acc)
		acc &= vec_word(words, v[1], w, gen);
	if (acc)
		acc &= vec_word(words, v[2], w, gen);
	if (acc)
		acc &= vec_word(words, v[3], w, gen);
	if (acc) {
		c.result = w * 64 + bits_ctz64(acc);
	} else if (more) {
		/* Slow path: the remaining candidates, in order. */
		c.cand[sw] &= c.cand[sw] - 1;
		bpf_loop(MOAT_VEC_WORDS, classify_step, &c, 0);
	}
	/* Also in trace mode: every program instance has its own cache (it
	 * is not pinned), and a cached answer is the answer. */
	if (entry) {
		entry->key = c.key;
		entry->result = c.result;
	}
	return c.result;
}

#endif
