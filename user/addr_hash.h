/* SPDX-License-Identifier: GPL-2.0 */
/*
 * addr_hash.h - the address hash table of a generation (see
 * MOAT_HASH6_LENS in moat_abi.h): bucketed cuckoo hashing, built here and
 * written to the kernel through mmap.
 */
#ifndef MOAT_ADDR_HASH_H
#define MOAT_ADDR_HASH_H

#include "compile.h"

/*
 * Build img->addr_hash from img->hash4 and img->hash6, setting
 * img->naddr_hash and img->cfg.addr_hash_mask. The same entries in the
 * same order give the same table, and a few entries more or less move few
 * of the others: a reload rewrites only the pages that differ. Returns 0
 * or -ENOMEM.
 */
int addr_hash_build(struct moat_image *img);

/* The key @e of a field's entry as a slot (vid included). */
struct moat_addr_slot addr_hash_slot4(const struct image_lpm4 *e);
struct moat_addr_slot addr_hash_slot6(const struct image_lpm6 *e);

#endif
