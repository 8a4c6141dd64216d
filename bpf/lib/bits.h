/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bits.h - bit scans written out by hand.
 *
 * The BPF target has no count-trailing-zeros or population-count
 * instruction, and Debian's clang 14 fails on __builtin_ctzll for BPF, so
 * both are spelled as plain shifts and masks.
 */
#ifndef MOAT_BPF_BITS_H
#define MOAT_BPF_BITS_H

#include <linux/types.h>

/* Index of the lowest set bit; @x must not be 0. Six-step binary search. */
static __always_inline __u32 bits_ctz64(__u64 x)
{
	__u32 n = 0;

	if (!(x & 0xffffffffULL)) {
		n += 32;
		x >>= 32;
	}
	if (!(x & 0xffffULL)) {
		n += 16;
		x >>= 16;
	}
	if (!(x & 0xffULL)) {
		n += 8;
		x >>= 8;
	}
	if (!(x & 0xfULL)) {
		n += 4;
		x >>= 4;
	}
	if (!(x & 0x3ULL)) {
		n += 2;
		x >>= 2;
	}
	if (!(x & 0x1ULL))
		n += 1;
	return n;
}

static __always_inline __u32 bits_popcount64(__u64 x)
{
	x = x - ((x >> 1) & 0x5555555555555555ULL);
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (__u32)((x * 0x0101010101010101ULL) >> 56);
}

#endif
