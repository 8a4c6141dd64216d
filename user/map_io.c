// SPDX-License-Identifier: GPL-2.0
/*
 * map_io.c - creating, filling and reading BPF maps in bulk: batched
 * syscalls, and plain stores through mmap() for BPF_F_MMAPABLE arrays.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <bpf/bpf.h>

#include "map_io.h"

int map_inner_fd(int outer_fd, __u32 gen)
{
	__u32 id;

	if (bpf_map_lookup_elem(outer_fd, &gen, &id))
		return -errno;
	return bpf_map_get_fd_by_id(id);
}

/*
 * Read entries 0..@n-1 of array map @fd into @vals (@vsize bytes each; for
 * per-CPU maps, all CPUs' values) with batched lookups: one syscall per
 * few thousand entries instead of one per entry, which is what makes a
 * reload of 16,384 rules fast. Falls back to single lookups on kernels
 * without batch operations. Returns 0 or -errno.
 */
int map_read_array(int fd, __u32 n, void *vals, size_t vsize)
{
	__u32 *keys = malloc((n ? n : 1) * sizeof(*keys));
	__u32 done = 0, token = 0, i;
	void *in = NULL;
	int rc = 0;

	if (!keys)
		return -ENOMEM;
	while (done < n) {
		__u32 cnt = n - done;

		rc = bpf_map_lookup_batch(fd, in, &token, keys + done, (char *)vals + done * vsize,
					  &cnt, NULL);
		if (rc && errno != ENOENT)
			break;
		done += cnt;
		in = &token;
		rc = 0;
		if (!cnt)
			break;
	}
	for (i = 0; !rc && i < done; i++)
		if (keys[i] != i)
			rc = -1; /* not in key order: read one by one */
	if (rc || done < n) {
		for (i = 0, rc = 0; i < n; i++) {
			if (bpf_map_lookup_elem(fd, &i, (char *)vals + i * vsize)) {
				rc = -errno;
				break;
			}
		}
	}
	free(keys);
	return rc;
}

/*
 * Write @n entries, keys of @ksize bytes at @keys and values of @vsize bytes
 * at @vals, to map @fd in one batch; one at a time on kernels without batch
 * updates for the map type. Returns 0 or -errno.
 */
int map_write_batch(int fd, const void *keys, size_t ksize, const void *vals, size_t vsize,
		       __u32 n)
{
	__u32 cnt = n, i;

	if (!n || bpf_map_update_batch(fd, keys, vals, &cnt, NULL) == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (bpf_map_update_elem(fd, (const char *)keys + i * ksize,
					(const char *)vals + i * vsize, BPF_ANY))
			return -errno;
	return 0;
}

int map_create(enum bpf_map_type type, const char *name, __u32 key_size,
			__u32 value_size, __u32 max_entries, __u32 flags)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
	int fd;

	fd = bpf_map_create(type, name, key_size, value_size, max_entries ? max_entries : 1,
			    &opts);
	return fd < 0 ? -errno : fd;
}

static bool all_zero(const void *p, size_t len)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

/* Fill a freshly created (zeroed) array map from @vals (@n values of
 * @vsize bytes); runs of zeros are already there and are skipped. */
static int fill_array(int fd, const void *vals, size_t n, size_t vsize)
{
	const size_t chunk = 8192;
	__u32 *keys = malloc(chunk * sizeof(*keys));
	size_t i, j;
	int rc = 0;

	if (!keys)
		return -ENOMEM;
	for (i = 0; i < n && !rc; i += chunk) {
		__u32 cnt = n - i < chunk ? n - i : chunk;

		if (all_zero((const char *)vals + i * vsize, cnt * vsize))
			continue;

		for (j = 0; j < cnt; j++)
			keys[j] = i + j;
		rc = map_write_batch(fd, keys, sizeof(*keys), (const char *)vals + i * vsize, vsize, cnt);
	}
	free(keys);
	return rc;
}

int map_fill_mapped(int fd, const void *vals, size_t n, size_t vsize)
{
	size_t stride = (vsize + 7) & ~(size_t)7, i;
	long page = sysconf(_SC_PAGESIZE);
	size_t len;
	char *area;

	if (!n)
		return 0;
	len = (n * stride + page - 1) / page * page;
	area = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (area == MAP_FAILED)
		return fill_array(fd, vals, n, vsize);
	if (stride == vsize)
		memcpy(area, vals, n * vsize);
	else
		for (i = 0; i < n; i++)
			memcpy(area + i * stride, (const char *)vals + i * vsize, vsize);
	munmap(area, len);
	return 0;
}

int map_fill_keyed(int fd, const void *entries, size_t n, size_t stride, size_t ksize,
		    size_t voff)
{
	const size_t chunk = 65536;
	char *keys = malloc(chunk * ksize);
	__u32 *vals = malloc(chunk * sizeof(*vals));
	size_t i, j;
	int rc = 0;

	if (!keys || !vals) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n && !rc; i += chunk) {
		__u32 cnt = n - i < chunk ? n - i : chunk;

		for (j = 0; j < cnt; j++) {
			const char *e = (const char *)entries + (i + j) * stride;

			memcpy(keys + j * ksize, e, ksize);
			memcpy(&vals[j], e + voff, sizeof(*vals));
		}
		rc = map_write_batch(fd, keys, ksize, vals, sizeof(*vals), cnt);
	}
out:
	free(keys);
	free(vals);
	return rc;
}

/* Make @len bytes at @dst equal to @src (zeros when NULL), a page's worth
 * at a time: reading is cheaper than writing (a write dirties the line),
 * and most of a large table is unchanged. */
static void sync_bytes(char *dst, const char *src, size_t len)
{
	static const char zero[4096];
	size_t i;

	for (i = 0; i < len; i += sizeof(zero)) {
		size_t cnt = len - i < sizeof(zero) ? len - i : sizeof(zero);
		const char *want = src ? src + i : zero;

		if (memcmp(dst + i, want, cnt))
			memcpy(dst + i, want, cnt);
	}
}

int map_rewrite_mapped(int fd, const void *vals, size_t n, size_t vsize, size_t total)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t len;
	char *area;

	if (vsize % 8 || n > total)
		return -EINVAL; /* (values sit round_up(vsize, 8) apart) */
	len = (total * vsize + page - 1) / page * page;
	area = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (area == MAP_FAILED)
		return -errno;
	sync_bytes(area, vals, n * vsize);
	sync_bytes(area + n * vsize, NULL, (total - n) * vsize);
	munmap(area, len);
	return 0;
}

int map_delete_keys(int fd, const void *keys, size_t ksize, __u32 n)
{
	__u32 cnt = n, i;

	if (!n || bpf_map_delete_batch(fd, keys, &cnt, NULL) == 0)
		return 0;
	/* (a partial batch stops at the first key it could not delete) */
	for (i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, (const char *)keys + i * ksize) && errno != ENOENT)
			return -errno;
	return 0;
}

int map_info(int fd, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	return bpf_obj_get_info_by_fd(fd, info, &len) ? -errno : 0;
}

int map_slot_own(int outer_fd, __u32 slot, struct bpf_map_info *info)
{
	__u32 other = !slot, id, other_id;
	int fd;

	if (bpf_map_lookup_elem(outer_fd, &slot, &id))
		return -1;
	if (!bpf_map_lookup_elem(outer_fd, &other, &other_id) && other_id == id)
		return -1;
	fd = bpf_map_get_fd_by_id(id);
	if (fd < 0)
		return -1;
	if (map_info(fd, info)) {
		close(fd);
		return -1;
	}
	return fd;
}
