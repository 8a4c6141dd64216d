// SPDX-License-Identifier: GPL-2.0
/*
 * dir24.c - paint an IPv4 address field's prefixes over a /24 front table.
 *
 * Entry b of a field's slice is the vector of the longest prefix of at most
 * /24 holding block b (the trie's answer for every address of the block),
 * or 0 (no prefix: the empty vector). Prefixes are painted shortest first,
 * so a longer one overwrites a shorter one it lies in. A block a longer
 * prefix lies in keeps that vector and gets MOAT_DIR4_CHUNK besides: its
 * addresses differ, and the longer prefixes go to the address hash table
 * (img->hash4). The field then needs no trie.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dir24.h"

#define DIR24_BLOCKS (1u << 24)

/* Paint the @n prefixes of img->lpm4 listed in @idx into @t; those longer
 * than /24 go to img->hash4 too. Returns 0 or -ENOMEM. */
static int paint_slot(struct moat_image *img, uint32_t slot, const size_t *idx, size_t n,
		      uint32_t *t)
{
	size_t start[34] = { 0 }, i, len;
	size_t *by_len = malloc(n * sizeof(*by_len));

	if (!by_len)
		return -ENOMEM;
	/* counting sort by length: the field may hold a million prefixes */
	for (i = 0; i < n; i++)
		start[img->lpm4[idx[i]].key.prefixlen - MOAT_LPM_TAG_BITS + 1]++;
	for (len = 1; len < 34; len++)
		start[len] += start[len - 1];
	for (i = 0; i < n; i++)
		by_len[start[img->lpm4[idx[i]].key.prefixlen - MOAT_LPM_TAG_BITS]++] = idx[i];
	for (i = 0; i < n; i++) {
		struct image_lpm4 e = img->lpm4[by_len[i]];
		uint32_t a, b, span, len4 = e.key.prefixlen - MOAT_LPM_TAG_BITS;

		memcpy(&a, e.key.addr, 4);
		b = ntohl(a) >> 8;
		if (len4 > 24) {
			/* all of /0../24 are painted already */
			t[b] |= MOAT_DIR4_CHUNK;
			img->cfg.dir24_long[slot] |= 1u << (len4 - 25);
			e.key.prefixlen = len4;
			img->hash4[img->nhash4++] = e;
			continue;
		}
		span = 1u << (24 - len4);
		b &= ~(span - 1);
		for (a = 0; a < span; a++)
			t[b + a] = e.vid;
	}
	free(by_len);
	return 0;
}

int dir24_build(struct moat_image *img)
{
	size_t count[MOAT_DIR4_SLOTS] = { 0 }, i, n, nslices = 0;
	size_t *idx = NULL;
	uint32_t slot;
	int rc = 0;

	memset(img->cfg.dir24_slice, 0, sizeof(img->cfg.dir24_slice));
	memset(img->cfg.dir24_long, 0, sizeof(img->cfg.dir24_long));
	if (addr_tables_mode == ADDR_TABLES_NEVER)
		return 0;
	for (i = 0; i < img->nlpm4; i++)
		count[ntohl(img->lpm4[i].key.tag) % MOAT_DIR4_SLOTS]++;
	for (slot = 0; slot < MOAT_DIR4_SLOTS && nslices < MOAT_DIR24_SLICES; slot++) {
		if (!count[slot] || (img->cfg.dir4_mask & (1u << slot)) ||
		    (addr_tables_mode != ADDR_TABLES_FRONT && count[slot] < DIR24_MIN_PREFIXES))
			continue;
		img->cfg.dir24_mask |= 1u << slot;
		img->cfg.dir24_slice[slot] = (uint8_t)nslices++;
	}
	if (!nslices)
		return 0;
	img->dir24 = calloc(nslices * DIR24_BLOCKS, sizeof(*img->dir24));
	idx = malloc(img->nlpm4 * sizeof(*idx));
	img->hash4 = malloc(img->nlpm4 * sizeof(*img->hash4));
	if (!img->dir24 || !idx || !img->hash4) {
		free(idx);
		free(img->dir24);
		img->dir24 = NULL;
		img->cfg.dir24_mask = 0;
		return -ENOMEM;
	}
	img->ndir24 = nslices * DIR24_BLOCKS;
	for (slot = 0; slot < MOAT_DIR4_SLOTS && !rc; slot++) {
		if (!(img->cfg.dir24_mask & (1u << slot)))
			continue;
		for (i = n = 0; i < img->nlpm4; i++)
			if (ntohl(img->lpm4[i].key.tag) == slot)
				idx[n++] = i;
		rc = paint_slot(img, slot, idx, n,
				img->dir24 + (size_t)img->cfg.dir24_slice[slot] * DIR24_BLOCKS);
	}
	free(idx);
	if (rc)
		return rc;
	/* the front and the hash table hold these fields now */
	for (i = n = 0; i < img->nlpm4; i++)
		if (!(img->cfg.dir24_mask & (1u << (ntohl(img->lpm4[i].key.tag) % MOAT_DIR4_SLOTS))))
			img->lpm4[n++] = img->lpm4[i];
	img->nlpm4 = n;
	return 0;
}
