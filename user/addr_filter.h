/* SPDX-License-Identifier: GPL-2.0 */
/*
 * addr_filter.h - the address filter of a generation (see
 * MOAT_ADDR_FILTER_SLOTS_PER_KEY in moat_abi.h): for the IPv6 hash fields
 * with more than one prefix length, which lengths have a prefix in an
 * address's block, so that an address takes a lookup only for those.
 */
#ifndef MOAT_ADDR_FILTER_H
#define MOAT_ADDR_FILTER_H

#include <stdbool.h>

#include "compile.h"

/*
 * Build img->addr_filter from img->hash6 and img->cfg.hash6_lens, setting
 * img->naddr_filter (64-bit values), img->cfg.addr_filter_mask and
 * img->cfg.hash6_cut. Call after hash6_build(). Returns 0 or -ENOMEM.
 */
int addr_filter_build(struct moat_image *img);

/* Build no filter (the benchmark's with/without rows; default false). */
extern bool addr_filter_off;

#endif
