/* SPDX-License-Identifier: GPL-2.0 */
/*
 * map_io.h - creating, filling and reading BPF maps in bulk. Every function
 * returns 0 (or a file descriptor) on success and -errno on failure.
 */
#ifndef MOAT_MAP_IO_H
#define MOAT_MAP_IO_H

#include <stddef.h>
#include <stdint.h>
#include <bpf/bpf.h>

/* A map to go into an outer map-of-maps (or to stand alone). */
int map_create(enum bpf_map_type type, const char *name, __u32 key_size, __u32 value_size,
	       __u32 max_entries, __u32 flags);

/* A new fd of the inner map in slot @slot of map-of-maps @outer_fd. */
int map_inner_fd(int outer_fd, __u32 slot);

/* Type, sizes, id and max_entries of map @fd. */
int map_info(int fd, struct bpf_map_info *info);

/*
 * The inner map in slot @slot (0 or 1) of a generation-indexed map-of-maps
 * when the other slot does not hold the same map (one map is never written
 * while another generation reads it): an fd with its @info, or -1.
 */
int map_slot_own(int outer_fd, __u32 slot, struct bpf_map_info *info);

/*
 * Read entries 0..@n-1 of array map @fd into @vals (@vsize bytes each; for
 * per-CPU maps, all CPUs' values) with batched lookups: one syscall per
 * few thousand entries instead of one per entry, which is what makes a
 * reload of 16,384 rules fast. Falls back to single lookups on kernels
 * without batch operations.
 */
int map_read_array(int fd, __u32 n, void *vals, size_t vsize);

/*
 * Write @n entries, keys of @ksize bytes at @keys and values of @vsize bytes
 * at @vals, to map @fd in one batch; one at a time on kernels without batch
 * updates for the map type.
 */
int map_write_batch(int fd, const void *keys, size_t ksize, const void *vals, size_t vsize,
		    __u32 n);

/* Delete @n keys of @ksize bytes (in one batch where the kernel can). */
int map_delete_keys(int fd, const void *keys, size_t ksize, __u32 n);

/*
 * Fill a freshly created BPF_F_MMAPABLE array map through mmap(): elements
 * sit round_up(@vsize, 8) bytes apart. Plain stores instead of a
 * copy_from_user per element through bpf(): for the megabytes of vector
 * words of a large rule set, milliseconds instead of most of a second.
 * Falls back to batched updates when the map cannot be mapped.
 */
int map_fill_mapped(int fd, const void *vals, size_t n, size_t vsize);

/*
 * Rewrite BPF_F_MMAPABLE array map @fd of @total values of @vsize bytes (a
 * multiple of 8) in place: the first @n become @vals, the rest zero. Only
 * the pages that differ are written.
 */
int map_rewrite_mapped(int fd, const void *vals, size_t n, size_t vsize, size_t total);

/*
 * Write @n image entries of @stride bytes (key of @ksize bytes at 0, a u32
 * vector id at @voff) into an LPM trie or hash map, in batches: one syscall
 * per 64k prefixes instead of one per prefix matters for sets of a million.
 */
int map_fill_keyed(int fd, const void *entries, size_t n, size_t stride, size_t ksize,
		   size_t voff);

#endif
