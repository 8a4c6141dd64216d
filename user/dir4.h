/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dir4.h - IPv4 address fields as 16-8-8 tables instead of LPM tries (see
 * MOAT_L4_OFF_DIR4 in moat_abi.h): a packet pays one to three array reads
 * however many prefixes a field holds.
 */
#ifndef MOAT_DIR4_H
#define MOAT_DIR4_H

#include "compile.h"

/* Most chunks (256 entries of 4 bytes) one generation's `gen_dir4` holds. */
#define DIR4_MAX_CHUNKS MOAT_DIR4_CHUNKS
/* A field may always use this many chunks, and 4 per prefix beyond that
 * (addr_tables_mode ADDR_TABLES_AUTO). */
#define DIR4_FREE_CHUNKS 4096

/*
 * Move the IPv4 prefixes of each address field from img->lpm4 into 16-8-8
 * tables (level 1 in img->l4, levels 2 and 3 in img->dir4), setting
 * img->cfg.dir4_mask, where the budget allows. Returns 0 or -ENOMEM.
 */
int dir4_build(struct moat_image *img);

#endif
