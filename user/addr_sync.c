// SPDX-License-Identifier: GPL-2.0
/*
 * addr_sync.c - the address maps of both generation slots, and how a
 * reload updates them in place instead of building them again.
 *
 * A million-prefix set takes seconds to insert into a new trie, and as
 * long again for the kernel to free the old one; a reload that changes a
 * few prefixes should cost a few updates. So each slot keeps its own
 * address maps (gen_lpm4, gen_lpm6), and a shadow per kind
 * (gen_shadow, read by no program) records the entries they hold, sorted.
 * A reload:
 *   1. diffs its entries against the shadow and applies the difference to
 *      the idle slot's maps, which no packet reads (see 3); generation.c
 *      rewrites the slot's arrays in place likewise;
 *   2. switches to that slot (generation.c);
 *   3. waits for an RCU grace period (membarrier), after which no packet
 *      runs on the old slot any more, and brings the old slot's maps to the
 *      new entries the same way: both slots match the shadow again.
 * A map is built anew where the shadow does not vouch for it, where the
 * difference is large (most vector ids changed) or where the map is too
 * small for the new entries.
 *
 * A slot's bit in a shadow (in_sync) means: its map holds exactly the
 * shadow's entries, and no packet still reads it from before the last
 * switch. A reload clears every bit before it touches a map and sets the
 * bits of the slots that hold its entries once the grace period is over,
 * so a command that dies half-way only costs the next reload full builds.
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <bpf/bpf.h>

#include "addr_sync.h"
#include "map_io.h"

enum addr_update_mode addr_update_mode = ADDR_UPDATE_AUTO;

#define SHADOW_MAGIC 0x3144485354414f4dULL /* "MOATSHD1" */

/* Start of a shadow map's 8-byte values; the entries follow. */
struct shadow_head {
	uint64_t magic;	  /* SHADOW_MAGIC while the rest is valid */
	uint64_t n;	  /* entries */
	uint32_t esize;	  /* bytes per entry */
	uint32_t in_sync; /* bit g: see the top of this file */
	uint64_t digest;  /* the generation config's digest of the entries */
};

static int outer_of(struct moat_maps *m, enum addr_map w)
{
	return w == ADDR_LPM4 ? m->gen_lpm4 : m->gen_lpm6;
}

/* The image's entries of kind @k: key at 0, u32 vector id after it. */
static void image_entries(const struct moat_image *img, unsigned k, const char **e, size_t *n,
			  size_t *esize, size_t *ksize)
{
	if (k == ADDR_LPM4) {
		*e = (const char *)img->lpm4;
		*n = img->nlpm4;
		*esize = sizeof(*img->lpm4);
		*ksize = sizeof(img->lpm4->key);
	} else {
		*e = (const char *)img->lpm6;
		*n = img->nlpm6;
		*esize = sizeof(*img->lpm6);
		*ksize = sizeof(img->lpm6->key);
	}
}

/* Canonical order: tag and address bytes, then the length (prefixlen
 * leads the key) - the order compile emits a field's prefixes in. */
static int cmp_key(const void *a, const void *b, void *ksize)
{
	uint32_t la, lb;
	int c;

	if (*(size_t *)ksize == sizeof(struct moat_lpm4_key)) {
		/* tag and address as one big-endian number: no memcmp call
		 * for each of a million IPv4 entries */
		uint64_t x, y;

		memcpy(&x, (const char *)a + 4, 8);
		memcpy(&y, (const char *)b + 4, 8);
		x = be64toh(x);
		y = be64toh(y);
		c = (x > y) - (x < y);
	} else {
		c = memcmp((const char *)a + 4, (const char *)b + 4, *(size_t *)ksize - 4);
	}
	if (c)
		return c;
	memcpy(&la, a, 4);
	memcpy(&lb, b, 4);
	return (la > lb) - (la < lb);
}

static uint32_t entry_vid(const char *e, size_t ksize)
{
	uint32_t v;

	memcpy(&v, e + ksize, sizeof(v));
	return v;
}

static size_t page_round(size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (len + page - 1) / page * page;
}

/* Map the shadow of kind @k, if there is one with entries like ours. */
static void shadow_open(struct moat_maps *m, unsigned k, struct addr_kind_plan *kp,
			const char **old, size_t *nold)
{
	struct bpf_map_info info;
	const struct shadow_head *h;
	size_t i;

	*old = NULL;
	*nold = 0;
	kp->shadow_fd = map_inner_fd(m->gen_shadow, k);
	if (kp->shadow_fd < 0 || map_info(kp->shadow_fd, &info))
		return;
	kp->shadow_len = page_round((size_t)info.max_entries * 8);
	kp->shadow_area = mmap(NULL, kp->shadow_len, PROT_READ | PROT_WRITE, MAP_SHARED,
			       kp->shadow_fd, 0);
	if (kp->shadow_area == MAP_FAILED) {
		kp->shadow_area = NULL;
		return;
	}
	h = (const struct shadow_head *)kp->shadow_area;
	if (h->magic != SHADOW_MAGIC || h->esize != kp->esize ||
	    h->n > (kp->shadow_len - sizeof(*h)) / kp->esize)
		return;
	/* The merge needs strictly ascending keys: a shadow written by
	 * anything but moat vouches for nothing. */
	for (i = 1; i < h->n; i++)
		if (cmp_key(kp->shadow_area + sizeof(*h) + (i - 1) * kp->esize,
			    kp->shadow_area + sizeof(*h) + i * kp->esize, &kp->ksize) >= 0)
			return;
	*old = kp->shadow_area + sizeof(*h);
	*nold = h->n;
	kp->was_sync = h->in_sync;
}

/* While a reload runs, the shadow vouches for no slot. */
static void shadow_clear_sync(struct addr_kind_plan *kp)
{
	if (kp->shadow_area)
		((struct shadow_head *)kp->shadow_area)->in_sync = 0;
}

/* Merge the shadow's entries @old with the new ones: keys to delete, keys
 * to add or give another vector id. Counts only when @fill is false. */
static void merge(struct addr_kind_plan *kp, const char *old, size_t nold, bool fill)
{
	size_t i = 0, j = 0, nd = 0, nu = 0, es = kp->esize, ks = kp->ksize;

	while (i < nold || j < kp->n) {
		const char *o = i < nold ? old + i * es : NULL;
		const char *e = j < kp->n ? kp->entries + j * es : NULL;
		int c = !o ? 1 : !e ? -1 : cmp_key(o, e, &ks);

		if (c < 0) {
			if (fill)
				memcpy(kp->del_keys + nd * ks, o, ks);
			nd++;
			i++;
			continue;
		}
		if (c > 0 || entry_vid(o, ks) != entry_vid(e, ks)) {
			if (fill) {
				memcpy(kp->upd_keys + nu * ks, e, ks);
				kp->upd_vals[nu] = entry_vid(e, ks);
			}
			nu++;
		}
		if (c == 0)
			i++;
		j++;
	}
	kp->ndel = nd;
	kp->nupd = nu;
}

static int plan_kind(struct moat_maps *m, const struct moat_image *img, unsigned k,
		     struct addr_kind_plan *kp)
{
	const char *e, *old;
	size_t n, i, nold;

	image_entries(img, k, &e, &n, &kp->esize, &kp->ksize);
	kp->entries = e;
	kp->n = n;
	for (i = 1; i < n; i++)
		if (cmp_key(e + (i - 1) * kp->esize, e + i * kp->esize, &kp->ksize) >= 0)
			break;
	if (i < n) {
		kp->sorted = malloc(n * kp->esize);
		if (!kp->sorted)
			return -ENOMEM;
		memcpy(kp->sorted, e, n * kp->esize);
		qsort_r(kp->sorted, n, kp->esize, cmp_key, &kp->ksize);
		kp->entries = kp->sorted;
	}
	shadow_open(m, k, kp, &old, &nold);
	if (!old)
		return 0;
	merge(kp, old, nold, false);
	kp->del_keys = malloc((kp->ndel ? kp->ndel : 1) * kp->ksize);
	kp->upd_keys = malloc((kp->nupd ? kp->nupd : 1) * kp->ksize);
	kp->upd_vals = malloc((kp->nupd ? kp->nupd : 1) * sizeof(*kp->upd_vals));
	if (!kp->del_keys || !kp->upd_keys || !kp->upd_vals)
		return -ENOMEM;
	merge(kp, old, nold, true);
	kp->have_delta = true;
	return 0;
}

void addr_plan_init(struct addr_plan *p)
{
	unsigned k;

	memset(p, 0, sizeof(*p));
	for (k = 0; k < ADDR_NMAPS; k++)
		p->idle_fds[k] = -1;
	for (k = 0; k < MOAT_ADDR_KINDS; k++) {
		p->k[k].shadow_fd = -1;
		p->spare_fds[k] = -1;
	}
}

int addr_plan_make(struct moat_maps *m, const struct moat_image *img, bool spare,
		   struct addr_plan *p)
{
	unsigned k;
	int rc = 0;

	addr_plan_init(p);
	p->spare = spare;
	for (k = 0; k < MOAT_ADDR_KINDS && !rc; k++) {
		if (spare) {
			rc = plan_kind(m, img, k, &p->k[k]);
		} else {
			/* Nothing will keep the maps in step: the shadow
			 * no longer vouches for them. */
			const char *old;
			size_t nold;

			image_entries(img, k, &p->k[k].entries, &p->k[k].n, &p->k[k].esize,
				      &p->k[k].ksize);
			shadow_open(m, k, &p->k[k], &old, &nold);
			if (old)
				((struct shadow_head *)p->k[k].shadow_area)->magic = 0;
		}
	}
	return rc;
}

static void join_builder(struct addr_plan *p)
{
	if (p->building)
		pthread_join(p->builder, NULL);
	p->building = false;
}

void addr_plan_free(struct addr_plan *p)
{
	unsigned k;

	join_builder(p);
	for (k = 0; k < MOAT_ADDR_KINDS; k++) {
		struct addr_kind_plan *kp = &p->k[k];

		if (p->spare_fds[k] >= 0)
			close(p->spare_fds[k]);
		if (kp->shadow_area)
			munmap(kp->shadow_area, kp->shadow_len);
		if (kp->shadow_fd >= 0)
			close(kp->shadow_fd);
		free(kp->sorted);
		free(kp->del_keys);
		free(kp->upd_keys);
		free(kp->upd_vals);
	}
	for (k = 0; k < ADDR_NMAPS; k++)
		if (p->idle_fds[k] >= 0)
			close(p->idle_fds[k]);
	addr_plan_init(p);
}

/* Is updating in place worth it? An update costs about what an insert
 * into a new map does, and a new map costs freeing the old one besides. */
static bool delta_worth(const struct addr_kind_plan *kp)
{
	if (!kp->have_delta || addr_update_mode == ADDR_UPDATE_NEVER)
		return false;
	if (addr_update_mode == ADDR_UPDATE_ALWAYS)
		return true;
	return kp->ndel + kp->nupd <= kp->n / 2 + 1024;
}

static int apply_delta(int fd, const struct addr_kind_plan *kp)
{
	int rc = map_delete_keys(fd, kp->del_keys, kp->ksize, kp->ndel);

	return rc ? rc : map_write_batch(fd, kp->upd_keys, kp->ksize, kp->upd_vals,
					 sizeof(*kp->upd_vals), kp->nupd);
}

/* Slot @slot's map of kind @k, if it can take the difference in place. */
static int in_place_candidate(struct moat_maps *m, const struct addr_kind_plan *kp, unsigned k,
			      unsigned slot)
{
	struct bpf_map_info info;
	int fd;

	if (!(kp->was_sync >> slot & 1) || !delta_worth(kp))
		return -1;
	fd = map_slot_own(outer_of(m, k), slot, &info);
	if (fd >= 0 && info.max_entries < kp->n) {
		close(fd);
		fd = -1;
	}
	return fd;
}

bool addr_slot_quiet(const struct addr_plan *p, unsigned slot)
{
	unsigned k, bits = 0;

	/* Every reload sets all kinds' bits together, after the wait. */
	for (k = 0; k < MOAT_ADDR_KINDS; k++)
		bits |= p->k[k].was_sync;
	return p->spare && addr_update_mode != ADDR_UPDATE_NEVER && (bits >> slot & 1);
}

int addr_update_idle(struct moat_maps *m, struct addr_plan *p, unsigned idle)
{
	unsigned k;
	int fd;

	if (!p->spare)
		return 0;
	for (k = 0; k < MOAT_ADDR_KINDS; k++) {
		struct addr_kind_plan *kp = &p->k[k];

		/* The live slot is switched away from below (packets may read
		 * it until the grace period after that), the idle one changes
		 * now: bits are set again once both are known. */
		shadow_clear_sync(kp);
		fd = in_place_candidate(m, kp, k, idle);
		if (fd < 0)
			continue;
		if (apply_delta(fd, kp)) {
			close(fd);
			continue;
		}
		p->idle_fds[k] = fd;
		p->in_place++;
	}
	return 0;
}

/* Room for a set to grow a little before its trie must be built anew.
 * Tries are not preallocated, so the room costs nothing until used. */
static __u32 capacity(size_t n)
{
	size_t cap = n + n / 8 + 64;

	return cap > UINT32_MAX ? UINT32_MAX : (__u32)cap;
}

int addr_map_build(const struct moat_image *img, enum addr_map which)
{
	int fd, rc;

	switch (which) {
	case ADDR_LPM4:
		fd = map_create(BPF_MAP_TYPE_LPM_TRIE, "moat_lpm4", sizeof(struct moat_lpm4_key), 4,
				capacity(img->nlpm4), BPF_F_NO_PREALLOC);
		rc = fd < 0 ? fd :
			      map_fill_keyed(fd, img->lpm4, img->nlpm4, sizeof(img->lpm4[0]),
					     sizeof(img->lpm4[0].key), offsetof(struct image_lpm4, vid));
		break;
	default:
		fd = map_create(BPF_MAP_TYPE_LPM_TRIE, "moat_lpm6", sizeof(struct moat_lpm6_key), 4,
				capacity(img->nlpm6), BPF_F_NO_PREALLOC);
		rc = fd < 0 ? fd :
			      map_fill_keyed(fd, img->lpm6, img->nlpm6, sizeof(img->lpm6[0]),
					     sizeof(img->lpm6[0].key), offsetof(struct image_lpm6, vid));
		break;
	}
	if (rc && fd >= 0)
		close(fd);
	return rc ? rc : fd;
}

static void *build_spares(void *arg)
{
	struct addr_plan *p = arg;
	unsigned k;

	for (k = 0; k < MOAT_ADDR_KINDS; k++)
		if (p->spare_kinds >> k & 1)
			p->spare_fds[k] = addr_map_build(p->spare_img, k);
	return NULL;
}

void addr_prebuild_other(struct moat_maps *m, struct addr_plan *p, const struct moat_image *img,
			 unsigned other)
{
	unsigned k;

	if (!p->spare)
		return;
	for (k = 0; k < MOAT_ADDR_KINDS; k++) {
		int fd = in_place_candidate(m, &p->k[k], k, other);

		if (fd >= 0)
			close(fd);
		else
			p->spare_kinds |= 1u << k;
	}
	p->spare_img = img;
	if (p->spare_kinds && pthread_create(&p->builder, NULL, build_spares, p) == 0)
		p->building = true;
	else
		p->spare_kinds = 0;
}

/* Wait until every program run that began before now has ended: XDP and
 * TC run inside RCU read-side sections, and MEMBARRIER_CMD_GLOBAL is a
 * synchronize_rcu(). */
static int wait_for_readers(void)
{
	return syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) ? -errno : 0;
}

/* Record the new entries of kind @k, held by the slots in @bits. */
static int shadow_write(struct moat_maps *m, const struct moat_image *img, unsigned k,
			struct addr_kind_plan *kp, unsigned bits)
{
	size_t need = sizeof(struct shadow_head) + kp->n * kp->esize, words = (need + 7) / 8;
	struct shadow_head *h;
	char *area = kp->shadow_area;
	size_t len = kp->shadow_len;
	int fd = -1, rc = 0;
	__u32 key = k;

	if (!area || len < need) {
		size_t cap = words + words / 8 + 64;

		if (cap > UINT32_MAX)
			return -E2BIG;
		fd = map_create(BPF_MAP_TYPE_ARRAY, "moat_shadow", 4, 8, (__u32)cap,
				BPF_F_INNER_MAP | BPF_F_MMAPABLE);
		if (fd < 0)
			return fd;
		len = page_round(cap * 8);
		area = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (area == MAP_FAILED) {
			close(fd);
			return -errno;
		}
	}
	h = (struct shadow_head *)area;
	h->magic = 0;
	memcpy(area + sizeof(*h), kp->entries, kp->n * kp->esize);
	h->n = kp->n;
	h->esize = kp->esize;
	h->digest = img->cfg.digest[k];
	h->in_sync = bits;
	h->magic = SHADOW_MAGIC;
	if (fd >= 0) {
		if (bpf_map_update_elem(m->gen_shadow, &key, &fd, BPF_ANY))
			rc = -errno;
		munmap(area, len);
		close(fd);
	}
	return rc;
}

int addr_sync_other(struct moat_maps *m, struct addr_plan *p, const struct moat_image *img,
		    unsigned other)
{
	bool synced[MOAT_ADDR_KINDS] = { false }, quiet;
	unsigned k, idle = !other;
	__u32 slot = other;
	int rc = 0;

	if (!p->spare)
		return 0;
	join_builder(p);
	/* Packets that read active_gen before the switch may still look up
	 * the other slot's maps: it is touched, in place or by installing a
	 * new map, only once they are done. Failing that, it is left alone
	 * (its bits stay clear, so the next reload builds it anew). */
	quiet = wait_for_readers() == 0;
	p->other_quiet = quiet;
	for (k = 0; k < MOAT_ADDR_KINDS && quiet; k++) {
		int fd = p->spare_fds[k];

		p->spare_fds[k] = -1;
		if (fd < 0) {
			fd = in_place_candidate(m, &p->k[k], k, other);
			if (fd >= 0) {
				synced[k] = apply_delta(fd, &p->k[k]) == 0;
				close(fd);
				if (synced[k])
					continue;
			}
			fd = addr_map_build(img, k);
		}
		if (fd < 0) {
			rc = fd;
			continue;
		}
		if (bpf_map_update_elem(outer_of(m, k), &slot, &fd, BPF_ANY))
			rc = -errno;
		else
			synced[k] = true;
		close(fd);
	}
	if (!quiet)
		rc = -EAGAIN;
	for (k = 0; k < MOAT_ADDR_KINDS; k++) {
		int err = shadow_write(m, img, k, &p->k[k], 1u << idle | (synced[k] ? 1u << other : 0));

		if (err && !rc)
			rc = err;
	}
	return rc;
}
