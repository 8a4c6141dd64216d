/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dir24.h - a /24 front table for IPv4 address fields too large for a
 * 16-8-8 table (a blocklist of a million scattered prefixes): one array
 * read answers for every /24 block no longer prefix lies in; only packets
 * of the other blocks go on to the address hash table, one lookup per
 * length longer than /24 the field has.
 */
#ifndef MOAT_DIR24_H
#define MOAT_DIR24_H

#include "compile.h"

/* A field not in a 16-8-8 table gets a front table from this many prefixes on
 * (addr_tables_mode ADDR_TABLES_AUTO): below it, the trie is shallow
 * enough, and a front costs 64 MiB. */
#define DIR24_MIN_PREFIXES 65536

/*
 * Give the IPv4 fields that stayed in img->lpm4 (see dir4_build) a front
 * table where the rules above allow, at most MOAT_DIR24_SLICES per
 * generation, setting img->cfg.dir24_mask, dir24_slice and dir24_long.
 * Their prefixes leave img->lpm4; those longer than /24 go to img->hash4.
 * Returns 0 or -ENOMEM.
 */
int dir24_build(struct moat_image *img);

#endif
