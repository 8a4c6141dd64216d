// SPDX-License-Identifier: GPL-2.0
/*
 * addr_hash.c - build the address hash table.
 *
 * Bucketed cuckoo hashing with two buckets of MOAT_ADDR_SLOTS slots per
 * key. A key goes to a free slot of its first bucket, else of its second;
 * when both are full it takes a slot in one of them and the key it
 * displaces moves to its own other bucket, and so on. A displaced key
 * leaves a full bucket full, so "a key sits in its second bucket only
 * when its first is full" holds throughout, which lets a lookup that
 * finds a free slot in the first bucket stop there. The table is kept at
 * most 80 % full (a power of two of buckets), where displacement chains
 * are short; a chain that does not end doubles the table.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "addr_hash.h"

/* Longest displacement chain before the table is doubled. */
#define MAX_KICKS 512

struct moat_addr_slot addr_hash_slot4(const struct image_lpm4 *e)
{
	uint32_t a;

	memcpy(&a, e->key.addr, 4);
	return (struct moat_addr_slot){
		.hi = (uint64_t)ntohl(a) << 32,
		.tag = MOAT_ADDR_TAG(ntohl(e->key.tag), e->key.prefixlen, 0),
		.vid = e->vid,
	};
}

struct moat_addr_slot addr_hash_slot6(const struct image_lpm6 *e)
{
	uint64_t hi, lo;

	memcpy(&hi, e->key.addr, 8);
	memcpy(&lo, e->key.addr + 8, 8);
	return (struct moat_addr_slot){
		.hi = be64toh(hi),
		.lo = be64toh(lo),
		.tag = MOAT_ADDR_TAG(ntohl(e->key.tag), e->key.prefixlen, 1),
		.vid = e->vid,
	};
}

/* A free slot of bucket @b, or -1. */
static int free_slot(const struct moat_addr_bucket *b)
{
	int i;

	for (i = 0; i < MOAT_ADDR_SLOTS; i++)
		if (!b->s[i].tag)
			return i;
	return -1;
}

/* Put @s, of hash @h, into the table of @mask + 1 buckets. Returns 0, or -1
 * when the displacement chain grows too long (the table is then no longer
 * whole). */
static int insert(struct moat_addr_bucket *t, uint32_t mask, struct moat_addr_slot s, uint64_t h)
{
	uint32_t from = UINT32_MAX, kick;

	for (kick = 0; kick < MAX_KICKS; kick++, h = moat_addr_hash(s.hi, s.lo, s.tag)) {
		uint32_t b1 = (uint32_t)h & mask, b2 = moat_addr_bucket2(b1, h) & mask, to;
		struct moat_addr_slot out;
		int i;

		if ((i = free_slot(&t[b1])) >= 0) {
			t[b1].s[i] = s;
			return 0;
		}
		if ((i = free_slot(&t[b2])) >= 0) {
			t[b2].s[i] = s;
			return 0;
		}
		/* Both full: displace a key of the bucket @s did not come
		 * from, chosen by @s's hash (not by a shared random stream,
		 * so that one key more does not reshuffle the rest). */
		to = b1 == from ? b2 : b2 == from ? b1 : (h >> 40 & 1) ? b2 : b1;
		i = (int)((h >> 41) + kick) % MOAT_ADDR_SLOTS;
		out = t[to].s[i];
		t[to].s[i] = s;
		s = out;
		from = to;
	}
	return -1;
}

/* How far ahead of the insert the next buckets are fetched: a million
 * keys scattered over tens of MiB would otherwise wait on memory each. */
#define PREFETCH_AHEAD 16

int addr_hash_build(struct moat_image *img)
{
	size_t n = img->nhash4 + img->nhash6, nb = 2, i;
	struct moat_addr_slot *keys;
	uint64_t *hash;

	img->cfg.addr_hash_mask = 0;
	img->addr_hash = NULL;
	img->naddr_hash = 0;
	if (!n)
		return 0;
	keys = malloc(n * sizeof(*keys));
	hash = malloc(n * sizeof(*hash));
	if (!keys || !hash) {
		free(keys);
		free(hash);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		keys[i] = i < img->nhash4 ? addr_hash_slot4(&img->hash4[i]) :
					    addr_hash_slot6(&img->hash6[i - img->nhash4]);
		hash[i] = moat_addr_hash(keys[i].hi, keys[i].lo, keys[i].tag);
	}
	/* at most 80 % full */
	while (nb * MOAT_ADDR_SLOTS * 4 < n * 5)
		nb *= 2;
	for (;;) {
		struct moat_addr_bucket *t = nb <= UINT32_MAX ? calloc(nb, sizeof(*t)) : NULL;
		uint32_t mask = nb - 1;
		int rc = 0;

		if (!t)
			break;
		for (i = 0; i < n && !rc; i++) {
			if (i + PREFETCH_AHEAD < n)
				__builtin_prefetch(&t[hash[i + PREFETCH_AHEAD] & mask], 1);
			rc = insert(t, mask, keys[i], hash[i]);
		}
		if (!rc) {
			img->addr_hash = t;
			img->naddr_hash = nb;
			img->cfg.addr_hash_mask = mask;
			break;
		}
		free(t);
		nb *= 2;
	}
	free(keys);
	free(hash);
	return img->addr_hash ? 0 : -ENOMEM;
}
