// SPDX-License-Identifier: GPL-2.0
/*
 * hash6.c - IPv6 address fields in the address hash table, one lookup per
 * prefix length (see MOAT_HASH6_LENS in moat_abi.h; addr_hash.c builds
 * the table). The trie's answer for an address is the
 * vector of its longest enclosing prefix; looking the address up cut to
 * each of the field's prefix lengths, longest first, finds the same one.
 * Worth it when a field has few lengths (typical: /64s, /48s, /128s), as
 * the cost then does not grow with the prefix count.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hash6.h"

int hash6_build(struct moat_image *img)
{
	/* per slot: which lengths (1..128) it has, whether it has entries */
	uint64_t has_len[MOAT_DIR4_SLOTS][2] = { { 0 } };
	bool any[MOAT_DIR4_SLOTS] = { false };
	size_t i, kept, n = 0;
	uint32_t slot;

	memset(img->cfg.hash6_lens, MOAT_HASH6_NONE, sizeof(img->cfg.hash6_lens));
	if (addr_tables_mode == ADDR_TABLES_NEVER || !img->nlpm6)
		return 0;
	for (i = 0; i < img->nlpm6; i++) {
		const struct image_lpm6 *e = &img->lpm6[i];
		uint32_t len = e->key.prefixlen - MOAT_LPM_TAG_BITS;

		slot = ntohl(e->key.tag) % MOAT_DIR4_SLOTS;
		any[slot] = true;
		if (len) /* a /0 is the default: no lookup */
			has_len[slot][(len - 1) / 64] |= 1ULL << ((len - 1) % 64);
	}
	for (slot = 0; slot < MOAT_DIR4_SLOTS; slot++) {
		unsigned nlens = 0, len;

		if (!any[slot] || __builtin_popcountll(has_len[slot][0]) +
						  __builtin_popcountll(has_len[slot][1]) >
					  MOAT_HASH6_LENS)
			continue;
		/* longest first */
		for (len = 128; len >= 1; len--)
			if (has_len[slot][(len - 1) / 64] >> ((len - 1) % 64) & 1)
				img->cfg.hash6_lens[slot][nlens++] = (uint8_t)len;
		img->cfg.hash6_mask |= 1u << slot;
	}
	if (!img->cfg.hash6_mask)
		return 0;
	img->hash6 = malloc(img->nlpm6 * sizeof(*img->hash6));
	if (!img->hash6)
		return -ENOMEM;
	for (i = kept = 0; i < img->nlpm6; i++) {
		struct image_lpm6 e = img->lpm6[i];

		if (img->cfg.hash6_mask & (1u << ntohl(e.key.tag))) {
			e.key.prefixlen -= MOAT_LPM_TAG_BITS;
			if (e.key.prefixlen)
				img->hash6[n++] = e;
			else
				img->cfg.hash6_default[ntohl(e.key.tag)] = e.vid;
		} else {
			img->lpm6[kept++] = e;
		}
	}
	img->nlpm6 = kept;
	img->nhash6 = n;
	return 0;
}
