/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hash6.h - IPv6 address fields in the address hash table instead of LPM
 * tries, where a field's prefixes come in at most MOAT_HASH6_LENS lengths.
 */
#ifndef MOAT_HASH6_H
#define MOAT_HASH6_H

#include "compile.h"

/*
 * Move the IPv6 prefixes of each address field with at most
 * MOAT_HASH6_LENS distinct lengths (a /0 aside) from img->lpm6 into
 * img->hash6, setting img->cfg.hash6_mask, hash6_lens and hash6_default.
 * Returns 0 or -ENOMEM.
 */
int hash6_build(struct moat_image *img);

#endif
