// SPDX-License-Identifier: GPL-2.0
/*
 * dir4.c - expand the IPv4 prefixes of an address field into a 16-8-8 table.
 *
 * The trie answers "the vector of the longest prefix holding this address";
 * the table answers the same by painting every prefix, shortest first, over
 * the address ranges it covers, so a longer prefix overwrites a shorter one
 * it lies in. A prefix up to /16 paints level-1 entries; a longer one turns
 * its level-1 entry into a chunk of 256 level-2 entries (each starting with
 * the value it replaces), and beyond /24 a level-2 entry into a level-3
 * chunk likewise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dir4.h"

struct dir4_prefix {
	uint32_t addr; /* host order */
	uint32_t len;
	uint32_t vid;
};

struct dir4_pool {
	uint32_t *v;
	size_t n, cap; /* entries */
};

static int cmp_len(const void *a, const void *b)
{
	const struct dir4_prefix *x = a, *y = b;

	return (x->len > y->len) - (x->len < y->len);
}

/* The chunk entry value @v names; when @v is a vector id, a new chunk
 * filled with it. Returns the chunk number or -ENOMEM. */
static long chunk_of(struct dir4_pool *pl, uint32_t v)
{
	size_t i;

	if (v & MOAT_DIR4_CHUNK)
		return v & ~MOAT_DIR4_CHUNK;
	if (pl->n + 256 > pl->cap) {
		size_t cap = pl->cap ? pl->cap * 2 : 256 * 64;
		uint32_t *nv = realloc(pl->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		pl->v = nv;
		pl->cap = cap;
	}
	for (i = 0; i < 256; i++)
		pl->v[pl->n + i] = v;
	pl->n += 256;
	return (long)(pl->n / 256 - 1);
}

/* Paint @p into level 1 @l1 and the pool. */
static int paint(uint32_t *l1, struct dir4_pool *pl, const struct dir4_prefix *p)
{
	uint32_t a = p->addr, i, span;
	long c2, c3;
	size_t at;

	if (p->len <= 16) {
		span = 1u << (16 - p->len);
		for (i = 0; i < span; i++)
			l1[(a >> 16) + i] = p->vid;
		return 0;
	}
	c2 = chunk_of(pl, l1[a >> 16]);
	if (c2 < 0)
		return (int)c2;
	l1[a >> 16] = MOAT_DIR4_CHUNK | (uint32_t)c2;
	if (p->len <= 24) {
		span = 1u << (24 - p->len);
		for (i = 0; i < span; i++)
			pl->v[(size_t)c2 * 256 + ((a >> 8) & 255) + i] = p->vid;
		return 0;
	}
	at = (size_t)c2 * 256 + ((a >> 8) & 255);
	c3 = chunk_of(pl, pl->v[at]);
	if (c3 < 0)
		return (int)c3;
	pl->v[at] = MOAT_DIR4_CHUNK | (uint32_t)c3;
	span = 1u << (32 - p->len);
	for (i = 0; i < span; i++)
		pl->v[(size_t)c3 * 256 + (a & 255) + i] = p->vid;
	return 0;
}

/*
 * A quick test before sorting and painting: every distinct /24 holding a
 * longer prefix needs a level-3 chunk, every distinct /16 holding a prefix
 * longer than /16 a level-2 chunk. Returns 1 if that count stays within
 * @budget, 0 if not, -ENOMEM.
 */
static int chunks_fit(const struct dir4_prefix *pfx, size_t n, size_t budget)
{
	uint64_t *seen24 = calloc((1u << 24) / 64, sizeof(*seen24));
	uint64_t *seen16 = calloc((1u << 16) / 64, sizeof(*seen16));
	size_t i, chunks = 0;
	int rc = 1;

	if (!seen24 || !seen16) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n && chunks <= budget; i++) {
		uint32_t a16 = pfx[i].addr >> 16, a24 = pfx[i].addr >> 8;

		if (pfx[i].len > 16 && !(seen16[a16 / 64] & (1ULL << (a16 % 64)))) {
			seen16[a16 / 64] |= 1ULL << (a16 % 64);
			chunks++;
		}
		if (pfx[i].len > 24 && !(seen24[a24 / 64] & (1ULL << (a24 % 64)))) {
			seen24[a24 / 64] |= 1ULL << (a24 % 64);
			chunks++;
		}
	}
	if (chunks > budget)
		rc = 0;
out:
	free(seen24);
	free(seen16);
	return rc;
}

/* Build slot @slot from its @n prefixes; 1 if it fits the budget, 0 if
 * not (the pool and level 1 are then as before), or -ENOMEM. */
static int build_slot(struct moat_image *img, struct dir4_pool *pl, uint32_t slot,
		      struct dir4_prefix *pfx, size_t n)
{
	uint32_t *l1 = img->l4 + MOAT_L4_OFF_DIR4 + (size_t)slot * MOAT_DIR4_L1;
	size_t start = pl->n, budget, i;
	int rc;

	if (addr_tables_mode == ADDR_TABLES_NEVER || addr_tables_mode == ADDR_TABLES_FRONT)
		return 0;
	budget = addr_tables_mode == ADDR_TABLES_ALWAYS ? DIR4_MAX_CHUNKS : DIR4_FREE_CHUNKS + 4 * n;
	if (budget > DIR4_MAX_CHUNKS - start / 256)
		budget = DIR4_MAX_CHUNKS - start / 256;
	/* The count is exact: painting makes exactly those chunks. */
	rc = chunks_fit(pfx, n, budget);
	if (rc <= 0)
		return rc; /* cannot fit (0), or -ENOMEM */
	qsort(pfx, n, sizeof(*pfx), cmp_len);
	for (i = 0; i < n; i++) {
		rc = paint(l1, pl, &pfx[i]);
		if (rc)
			return rc;
	}
	return 1;
}

int dir4_build(struct moat_image *img)
{
	struct dir4_pool pl = { 0 };
	struct dir4_prefix *pfx;
	size_t i, n, kept;
	uint32_t slot;
	int rc = 0;

	pfx = malloc((img->nlpm4 ? img->nlpm4 : 1) * sizeof(*pfx));
	if (!pfx)
		return -ENOMEM;
	for (slot = 0; slot < MOAT_DIR4_SLOTS && !rc; slot++) {
		for (i = n = 0; i < img->nlpm4; i++) {
			const struct image_lpm4 *e = &img->lpm4[i];
			uint32_t a;

			if (ntohl(e->key.tag) != slot)
				continue;
			memcpy(&a, e->key.addr, 4);
			pfx[n].addr = ntohl(a);
			pfx[n].len = e->key.prefixlen - MOAT_LPM_TAG_BITS;
			pfx[n].vid = e->vid;
			n++;
		}
		if (!n)
			continue;
		rc = build_slot(img, &pl, slot, pfx, n);
		if (rc == 1) {
			img->cfg.dir4_mask |= 1u << slot;
			rc = 0;
		}
	}
	free(pfx);
	if (rc) {
		free(pl.v);
		return rc;
	}
	/* The trie keeps only the fields that stayed with it. */
	for (i = kept = 0; i < img->nlpm4; i++)
		if (!(img->cfg.dir4_mask & (1u << ntohl(img->lpm4[i].key.tag))))
			img->lpm4[kept++] = img->lpm4[i];
	img->nlpm4 = kept;
	img->dir4 = pl.v;
	img->ndir4 = pl.n;
	return 0;
}
