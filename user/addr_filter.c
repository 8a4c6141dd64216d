// SPDX-License-Identifier: GPL-2.0
/*
 * addr_filter.c - build the address filter (see addr_filter.h).
 *
 * A field's shortest prefix length is its cut: every prefix of the field
 * lies within one block of that length. Each prefix ORs the bit of its
 * length into the 4-bit mask of its block's slot (a hash of the block,
 * the field part of it); the filter has MOAT_ADDR_FILTER_SLOTS_PER_KEY
 * slots per prefix, rounded up to a power of two, and all fields share it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "addr_filter.h"
#include "addr_hash.h"

bool addr_filter_off;

/* The filter slot of IPv6 prefix @hi:@lo (host order) of field @field cut
 * to @cut bits, in a filter of @mask + 1 slots. */
static uint32_t filter_slot(uint64_t hi, uint64_t lo, uint32_t field, uint32_t cut, uint32_t mask)
{
	return moat_addr_filter_slot(moat_addr_hash(moat_addr_cut6_hi(hi, cut),
						    moat_addr_cut6_lo(lo, cut),
						    MOAT_ADDR_TAG(field, cut, 1)),
				     mask);
}

/* The index of length @len in field @field's lengths (longest first). */
static unsigned len_index(const struct moat_gen_config *cfg, uint32_t field, uint32_t len)
{
	unsigned i;

	for (i = 0; i < MOAT_HASH6_LENS - 1 && cfg->hash6_lens[field][i] != len; i++)
		;
	return i;
}

/* The shortest of field @field's lengths when it has two or more, else 0. */
static uint8_t field_cut(const struct moat_gen_config *cfg, uint32_t field)
{
	uint8_t cut = 0;
	unsigned i;

	if (addr_filter_off || !(cfg->hash6_mask & (1u << field)))
		return 0;
	for (i = 0; i < MOAT_HASH6_LENS && cfg->hash6_lens[field][i] != MOAT_HASH6_NONE; i++)
		cut = cfg->hash6_lens[field][i];
	return i >= 2 ? cut : 0;
}

int addr_filter_build(struct moat_image *img)
{
	struct moat_gen_config *cfg = &img->cfg;
	size_t i, keys = 0, slots = 16;
	uint32_t field;

	img->addr_filter = NULL;
	img->naddr_filter = 0;
	cfg->addr_filter_mask = 0;
	for (field = 0; field < MOAT_DIR4_SLOTS; field++)
		cfg->hash6_cut[field] = field_cut(cfg, field);
	for (i = 0; i < img->nhash6; i++)
		keys += cfg->hash6_cut[ntohl(img->hash6[i].key.tag) % MOAT_DIR4_SLOTS] != 0;
	if (!keys)
		return 0;
	while (slots < keys * MOAT_ADDR_FILTER_SLOTS_PER_KEY)
		slots *= 2;
	img->addr_filter = calloc(slots / 16, sizeof(uint64_t));
	if (!img->addr_filter) {
		memset(cfg->hash6_cut, 0, sizeof(cfg->hash6_cut));
		return -ENOMEM;
	}
	img->naddr_filter = slots / 16;
	cfg->addr_filter_mask = (uint32_t)(slots - 1);
	for (i = 0; i < img->nhash6; i++) {
		const struct image_lpm6 *e = &img->hash6[i];
		struct moat_addr_slot s = addr_hash_slot6(e);
		uint32_t fs;

		field = ntohl(e->key.tag) % MOAT_DIR4_SLOTS;
		if (!cfg->hash6_cut[field])
			continue;
		fs = filter_slot(s.hi, s.lo, field, cfg->hash6_cut[field], cfg->addr_filter_mask);
		img->addr_filter[fs / 16] |= (uint64_t)1
					     << ((fs % 16) * 4 + len_index(cfg, field, e->key.prefixlen));
	}
	return 0;
}
