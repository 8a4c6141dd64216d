// SPDX-License-Identifier: GPL-2.0
/*
 * generation.c - write a generation's inner maps and switch to it.
 *
 * Order of work, so that a crash at any point changes nothing in force:
 *   1. compile (pure);
 *   2. bring the idle generation's inner maps to the new rules: rewritten
 *      in place when no packet reads them any more (addr_sync.c tells),
 *      else new maps, put into the idle slots of the gen_* outer maps;
 *      then gen_config[idle] (no packet reads the idle generation);
 *   3. one update of active_gen switches every packet to the new set;
 *   4. counter slots the old set used alone are released;
 *   5. after an RCU grace period, the old generation's tries are brought
 *      in step too (addr_sync.c), so the next reload rewrites them in place.
 * A packet reads active_gen once, so it never sees a mix. A new inner map
 * replaces an old one only in the idle slot, and the kernel frees the old
 * one after a grace period.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "addr_sync.h"
#include "generation.h"
#include "map_io.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int ncpus(void)
{
	int n = libbpf_num_possible_cpus();

	return n > 0 ? n : 1;
}

int gen_live(struct moat_maps *m, unsigned *gen, struct moat_gen_config *cfg)
{
	__u32 zero = 0, g = 0, inner_id;

	if (bpf_map_lookup_elem(m->active_gen, &zero, &g))
		return -errno;
	g &= 1;
	/* A generation is live once its outer slots hold maps. */
	if (bpf_map_lookup_elem(m->gen_rules, &g, &inner_id))
		return -ENOENT;
	if (bpf_map_lookup_elem(m->gen_config, &g, cfg))
		return -errno;
	*gen = g;
	return 0;
}

int gen_live_rules(struct moat_maps *m, struct moat_rule_info *infos, size_t cap,
		   size_t count[MOAT_NTABLES])
{
	struct moat_gen_config cfg;
	struct moat_rule_info *all;
	unsigned gen;
	size_t t, i, n = 0, total = 0;
	int fd, rc;

	rc = gen_live(m, &gen, &cfg);
	if (rc)
		return rc;
	for (t = 0; t < MOAT_NTABLES; t++) {
		count[t] = cfg.nrules[t];
		total = total > cfg.rule_base[t] + cfg.nrules[t] ? total :
								  cfg.rule_base[t] + cfg.nrules[t];
		n += cfg.nrules[t];
	}
	if (n > cap || total > MOAT_RULES_ENTRIES)
		return -E2BIG;
	all = calloc(total ? total : 1, sizeof(*all));
	if (!all)
		return -ENOMEM;
	fd = map_inner_fd(m->gen_rules, gen);
	if (fd < 0) {
		free(all);
		return fd;
	}
	rc = map_read_array(fd, total, all, sizeof(*all));
	close(fd);
	for (t = 0, n = 0; !rc && t < MOAT_NTABLES; t++)
		for (i = 0; i < cfg.nrules[t]; i++)
			infos[n++] = all[cfg.rule_base[t] + i];
	free(all);
	return rc ? rc : (int)n;
}

/* ---- counter slots ---- */

struct slot_key {
	unsigned table;
	unsigned number;
};

static uint64_t slot_key_code(unsigned table, unsigned number)
{
	return (uint64_t)table << 32 | number;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/*
 * Give every rule of @img a counter slot: the live slot of the rule with the
 * same stage, direction and number (its counters carry over), else a free
 * slot, zeroed and labelled. Slots the live set uses are never handed out,
 * since the live set counts into them until the switch.
 */
static int assign_slots(struct moat_maps *m, struct moat_image *img, struct diags *d,
			uint8_t *used_new, uint32_t nslots)
{
	struct moat_rule_info *live = NULL;
	size_t count[MOAT_NTABLES] = { 0 };
	uint64_t *live_codes = NULL; /* (code << 20 | index) sorted */
	uint8_t *used_live = NULL;
	struct moat_rule_stat *vals = NULL, *new_vals = NULL;
	__u32 *new_keys = NULL, nnew = 0;
	size_t nlive = 0, i, t, k, cap = 4 * MOAT_MAX_RULES;
	uint32_t next_free = 0;
	int rc = 0, ncpu = ncpus();

	used_live = calloc(nslots, 1);
	vals = calloc(ncpu, sizeof(*vals));
	live = calloc(cap, sizeof(*live));
	live_codes = calloc(cap, sizeof(*live_codes));
	new_keys = calloc(img->nrules ? img->nrules : 1, sizeof(*new_keys));
	new_vals = calloc((img->nrules ? img->nrules : 1) * ncpu, sizeof(*new_vals));
	if (!used_live || !vals || !live || !live_codes || !new_keys || !new_vals) {
		rc = -ENOMEM;
		goto out;
	}
	rc = gen_live_rules(m, live, cap, count);
	if (rc == -ENOENT) {
		rc = 0;
	} else if (rc < 0) {
		diags_add(d, DIAG_ERROR, NULL, 0, 0, "reading the live rules: %s", strerror(-rc));
		goto out;
	} else {
		nlive = rc;
		rc = 0;
	}
	for (t = 0, k = 0; t < MOAT_NTABLES; t++) {
		for (i = 0; i < count[t]; i++, k++) {
			if (live[k].stat_slot < nslots)
				used_live[live[k].stat_slot] = 1;
			live_codes[k] = slot_key_code(t, live[k].number) << 20 | k;
		}
	}
	qsort(live_codes, nlive, sizeof(*live_codes), cmp_u64);

	for (i = 0; i < img->nrules; i++) {
		struct image_rule *ir = &img->rules[i];
		unsigned table = MOAT_TABLE(ir->stage, ir->dir);
		uint64_t code = slot_key_code(table, ir->info.number);
		size_t lo = 0, hi = nlive;
		long found = -1;
		__u32 slot;
		int c;

		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if ((live_codes[mid] >> 20) < code)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < nlive && (live_codes[lo] >> 20) == code)
			found = live_codes[lo] & 0xfffff;

		if (found >= 0) {
			slot = live[found].stat_slot;
			if (slot >= nslots || used_new[slot])
				found = -1;
		}
		if (found >= 0) {
			/* Same rule: keep its counters; relabel if the action
			 * changed (a racing increment may be lost then). */
			if (live[found].action != ir->info.action) {
				if (bpf_map_lookup_elem(m->rule_stats, &slot, vals) == 0) {
					for (c = 0; c < ncpu; c++)
						vals[c].action = ir->info.action;
					bpf_map_update_elem(m->rule_stats, &slot, vals, BPF_ANY);
				}
			}
		} else {
			while (next_free < nslots && (used_live[next_free] || used_new[next_free]))
				next_free++;
			if (next_free >= nslots) {
				diags_add(d, DIAG_ERROR, NULL, 0, 0,
					  "the counter map holds %u rules' counters, not enough for "
					  "the live and the new rule set together; detach and attach "
					  "again to grow it",
					  nslots);
				rc = -E2BIG;
				goto out;
			}
			slot = next_free++;
			/* A fresh label, written below with the others. */
			new_keys[nnew] = slot;
			for (c = 0; c < ncpu; c++) {
				struct moat_rule_stat *st = &new_vals[nnew * ncpu + c];

				st->stage = ir->stage;
				st->dir = ir->dir;
				st->number = ir->info.number;
				st->action = ir->info.action;
				st->in_use = 1;
			}
			nnew++;
		}
		used_new[slot] = 1;
		ir->info.stat_slot = slot;
	}
	rc = map_write_batch(m->rule_stats, new_keys, sizeof(*new_keys), new_vals, ncpu * sizeof(*vals),
			 nnew);
	if (rc)
		diags_add(d, DIAG_ERROR, NULL, 0, 0, "writing rule_stats: %s", strerror(-rc));
out:
	free(new_keys);
	free(new_vals);
	free(used_live);
	free(vals);
	free(live);
	free(live_codes);
	return rc;
}

/* After the switch: clear the labels of slots no rule in force uses. */
static void release_slots(struct moat_maps *m, const uint8_t *used_new, uint32_t nslots)
{
	int ncpu = ncpus();
	struct moat_rule_stat *all = calloc((size_t)nslots * ncpu, sizeof(*all));
	struct moat_rule_stat *zeros = NULL;
	__u32 *keys = calloc(nslots ? nslots : 1, sizeof(*keys));
	__u32 slot, n = 0;

	if (!all || !keys || map_read_array(m->rule_stats, nslots, all, ncpu * sizeof(*all)))
		goto out;
	for (slot = 0; slot < nslots; slot++)
		if (!used_new[slot] && all[(size_t)slot * ncpu].in_use)
			keys[n++] = slot;
	zeros = calloc((size_t)(n ? n : 1) * ncpu, sizeof(*zeros));
	if (zeros)
		map_write_batch(m->rule_stats, keys, sizeof(*keys), zeros, ncpu * sizeof(*zeros), n);
out:
	free(all);
	free(zeros);
	free(keys);
}

/* ---- inner maps ---- */

/* A generation's inner maps, in the order of struct moat_maps' gen_* maps. */
enum { IN_LPM4, IN_LPM6, IN_L4, IN_DIR4, IN_ADDR_HASH, IN_VECS, IN_WORDS, IN_WORDS_MORE, IN_RULES,
       IN_DIR24, IN_ADDR_FILTER, IN_COUNT };

static const int addr_in[ADDR_NMAPS] = { IN_LPM4, IN_LPM6 };

static void outer_maps(const struct moat_maps *m, int outer[IN_COUNT])
{
	const int o[IN_COUNT] = { m->gen_lpm4,	m->gen_lpm6,  m->gen_l4,    m->gen_dir4,
				  m->gen_addr_hash, m->gen_vecs,  m->gen_words, m->gen_words_more,
				  m->gen_rules, m->gen_dir24, m->gen_addr_filter };

	memcpy(outer, o, sizeof(o));
}

/* The address map kind of inner map @in, or ADDR_NMAPS for an array. */
static enum addr_map addr_kind(int in)
{
	enum addr_map k;

	for (k = 0; k < ADDR_NMAPS && addr_in[k] != in; k++)
		;
	return k;
}

static bool is_array(int in)
{
	return addr_kind(in) == ADDR_NMAPS;
}

/* An array map of a generation: its shape and its first @n values (the
 * rest are zero). */
struct array_image {
	const char *name;
	__u32 vsize, max_entries, flags;
	const void *vals;
	size_t n;
};

static struct array_image array_image(const struct moat_image *img,
				      const struct moat_rule_info *infos, int in)
{
	/* words past the fixed-size array */
	size_t more = img->nwords > MOAT_FAST_WORDS ? img->nwords - MOAT_FAST_WORDS : 0;
	const __u32 mm = BPF_F_MMAPABLE, var = BPF_F_INNER_MAP | BPF_F_MMAPABLE;

	/* arrays of 32-bit entries hold two per 8-byte value (see maps.h) */
	switch (in) {
	case IN_L4:
		return (struct array_image){ "moat_l4", 8, MOAT_L4_ENTRIES / 2, mm, img->l4,
					     MOAT_L4_ENTRIES / 2 };
	case IN_DIR4:
		return (struct array_image){ "moat_dir4", 8, MOAT_DIR4_CHUNKS * 128, mm, img->dir4,
					     img->ndir4 / 2 };
	case IN_VECS:
		return (struct array_image){ "moat_vecs", sizeof(struct moat_vec), MOAT_MAX_VECS, mm,
					     img->vecs, img->nvecs };
	case IN_WORDS:
		return (struct array_image){ "moat_words", 8, MOAT_FAST_WORDS, mm, img->words,
					     img->nwords - more };
	case IN_WORDS_MORE:
		return (struct array_image){ "moat_words_more", 8, more ? more : 1, var,
					     img->words + img->nwords - more, more };
	case IN_RULES:
		return (struct array_image){ "moat_rules", sizeof(struct moat_rule_info),
					     MOAT_RULES_ENTRIES, mm, infos, img->nrules };
	case IN_ADDR_HASH:
		return (struct array_image){ "moat_addr_hash", sizeof(struct moat_addr_bucket),
					     img->naddr_hash ? img->naddr_hash : 1, var,
					     img->addr_hash, img->naddr_hash };
	case IN_ADDR_FILTER:
		return (struct array_image){ "moat_addr_filt", 8,
					     img->naddr_filter ? img->naddr_filter : 1, var,
					     img->addr_filter, img->naddr_filter };
	default:
		return (struct array_image){ "moat_dir24", 8, img->ndir24 ? img->ndir24 / 2 : 1,
					     var, img->dir24, img->ndir24 / 2 };
	}
}

static int array_build(const struct array_image *a)
{
	int fd = map_create(BPF_MAP_TYPE_ARRAY, a->name, 4, a->vsize, a->max_entries, a->flags);
	int rc;

	if (fd < 0)
		return fd;
	rc = map_fill_mapped(fd, a->vals, a->n, a->vsize);
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

/* Slot @slot's map of @outer when it has @a's shape and no other slot
 * shares it: an fd, or -1. */
static int own_array(int outer, unsigned slot, const struct array_image *a)
{
	struct bpf_map_info info;
	int fd = map_slot_own(outer, slot, &info);

	if (fd >= 0 && (info.max_entries != a->max_entries || info.value_size != a->vsize ||
			info.map_flags != a->flags)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Fill @fds with slot @slot's maps holding @img: the address maps updated
 * in place by addr_sync are there already; when no packet reads the slot
 * (@quiet), its arrays of the right shape are rewritten in place (only the
 * bytes that differ: no new map, and nothing to install); the rest are
 * built anew. @installed[i]: fds[i] is the map the slot holds already.
 */
static int slot_maps(struct moat_maps *m, const struct moat_image *img,
		     const struct moat_rule_info *infos, unsigned slot, bool quiet,
		     int fds[IN_COUNT], bool installed[IN_COUNT], unsigned *in_place)
{
	int outer[IN_COUNT];
	size_t i;

	outer_maps(m, outer);
	for (i = 0; i < IN_COUNT; i++) {
		struct array_image a;

		installed[i] = fds[i] >= 0;
		if (fds[i] >= 0)
			continue;
		if (!is_array(i)) {
			fds[i] = addr_map_build(img, addr_kind(i));
		} else {
			a = array_image(img, infos, i);
			fds[i] = quiet ? own_array(outer[i], slot, &a) : -1;
			if (fds[i] >= 0 &&
			    map_rewrite_mapped(fds[i], a.vals, a.n, a.vsize, a.max_entries) == 0) {
				installed[i] = true;
				(*in_place)++;
				continue;
			}
			if (fds[i] >= 0)
				close(fds[i]);
			fds[i] = array_build(&a);
		}
		if (fds[i] < 0)
			return fds[i];
	}
	return 0;
}

/*
 * The arrays the other slot lacks in the new shape (a first reload after
 * attach, a set brought in or grown): built in a thread of their own while
 * the idle slot is written, installed by complete_other after the grace
 * period. A million-prefix set's front and hash tables are ~90 MB to fill.
 */
struct other_arrays {
	struct moat_maps *m;
	const struct moat_image *img;
	const struct moat_rule_info *infos;
	unsigned other;
	int fds[IN_COUNT];
	pthread_t thread;
	bool running;
};

static void *build_other_arrays(void *arg)
{
	struct other_arrays *o = arg;
	int outer[IN_COUNT];
	size_t i;

	outer_maps(o->m, outer);
	for (i = 0; i < IN_COUNT; i++) {
		struct array_image a;
		int fd;

		if (!is_array(i))
			continue;
		a = array_image(o->img, o->infos, i);
		/* The other slot is still in force, but its maps do not change
		 * until complete_other: their shape may be judged now. */
		fd = own_array(outer[i], o->other, &a);
		if (fd >= 0)
			close(fd);
		else
			o->fds[i] = array_build(&a);
	}
	return NULL;
}

/* @o->fds must be -1 already. */
static void other_arrays_start(struct other_arrays *o, struct moat_maps *m,
			       const struct moat_image *img, const struct moat_rule_info *infos,
			       unsigned other)
{
	o->m = m;
	o->img = img;
	o->infos = infos;
	o->other = other;
	o->running = pthread_create(&o->thread, NULL, build_other_arrays, o) == 0;
}

/* Wait for the builder; with @drop, close what it built. */
static void other_arrays_join(struct other_arrays *o, bool drop)
{
	size_t i;

	if (o->running)
		pthread_join(o->thread, NULL);
	o->running = false;
	for (i = 0; drop && i < IN_COUNT; i++) {
		if (o->fds[i] >= 0)
			close(o->fds[i]);
		o->fds[i] = -1;
	}
}

/* After the switch and the grace period: the other slot gets arrays of the
 * right shape where it has none (the first reload after attach finds them
 * there to rewrite): those @o built, or built now. */
static int complete_other(struct moat_maps *m, const struct moat_image *img,
			  const struct moat_rule_info *infos, unsigned other,
			  struct other_arrays *o)
{
	int outer[IN_COUNT];
	__u32 slot = other;
	size_t i;
	int rc = 0;

	other_arrays_join(o, false);
	outer_maps(m, outer);
	for (i = 0; i < IN_COUNT; i++) {
		struct array_image a;
		int fd = o->fds[i];

		if (!is_array(i))
			continue;
		o->fds[i] = -1;
		if (fd < 0) {
			a = array_image(img, infos, i);
			fd = own_array(outer[i], other, &a);
			if (fd >= 0) {
				close(fd);
				continue;
			}
			fd = array_build(&a);
			if (fd < 0) {
				rc = fd;
				continue;
			}
		}
		if (bpf_map_update_elem(outer[i], &slot, &fd, BPF_ANY))
			rc = -errno;
		close(fd);
	}
	return rc;
}

static int apply(struct moat_maps *m, const struct ruleset *rs, struct diags *d,
		 struct gen_apply_info *info, bool spare)
{
	int fds[IN_COUNT];
	int outer[IN_COUNT];
	bool installed[IN_COUNT];
	struct moat_gen_config live_cfg;
	struct moat_image img;
	struct moat_rule_info *infos = NULL;
	struct bpf_map_info minfo = { 0 };
	__u32 minfo_len = sizeof(minfo);
	uint8_t *used_new = NULL;
	struct addr_plan plan;
	struct other_arrays other = { .running = false };
	unsigned live_gen = 0, in_place;
	__u32 zero = 0, idle;
	double t0 = now_ms(), t1, t2;
	size_t i;
	int rc;

	outer_maps(m, outer);
	addr_plan_init(&plan);
	for (i = 0; i < IN_COUNT; i++)
		fds[i] = other.fds[i] = -1;
	rc = compile_ruleset(rs, &img, d);
	if (rc)
		return rc;
	t1 = now_ms();

	rc = gen_live(m, &live_gen, &live_cfg);
	idle = rc == 0 ? !live_gen : 0;
	/* A new epoch: decisions cached for the old rules never apply. */
	img.cfg.epoch = rc == 0 ? live_cfg.epoch + 1 : 1;

	if (bpf_obj_get_info_by_fd(m->rule_stats, &minfo, &minfo_len)) {
		rc = -errno;
		goto out;
	}
	used_new = calloc(minfo.max_entries, 1);
	infos = calloc(img.nrules ? img.nrules : 1, sizeof(*infos));
	if (!used_new || !infos) {
		rc = -ENOMEM;
		goto out;
	}
	rc = assign_slots(m, &img, d, used_new, minfo.max_entries);
	if (rc)
		goto out;
	for (i = 0; i < img.nrules; i++)
		infos[i] = img.rules[i].info;

	rc = addr_plan_make(m, &img, spare, &plan);
	if (!rc)
		rc = addr_update_idle(m, &plan, idle);
	if (rc) {
		diags_add(d, DIAG_ERROR, NULL, 0, 0, "planning the address maps: %s",
			  strerror(-rc));
		goto out;
	}
	for (i = 0; i < ADDR_NMAPS; i++) {
		fds[addr_in[i]] = plan.idle_fds[i];
		plan.idle_fds[i] = -1;
	}
	addr_prebuild_other(m, &plan, &img, !idle);
	if (spare)
		other_arrays_start(&other, m, &img, infos, !idle);
	in_place = plan.in_place;
	rc = slot_maps(m, &img, infos, idle, addr_slot_quiet(&plan, idle), fds, installed,
		       &in_place);
	if (rc) {
		diags_add(d, DIAG_ERROR, NULL, 0, 0, "creating the rule maps: %s", strerror(-rc));
		goto out;
	}
	/* (each update of a map-of-maps waits for an RCU grace period) */
	for (i = 0; i < IN_COUNT; i++) {
		if (installed[i])
			continue;
		if (bpf_map_update_elem(outer[i], &idle, &fds[i], BPF_ANY)) {
			rc = -errno;
			diags_add(d, DIAG_ERROR, NULL, 0, 0, "installing generation %u: %s%s", idle,
				  strerror(-rc),
				  rc == -EINVAL ? " (the pinned maps were made by a moat whose rule "
						  "maps differ from this one's: detach and attach "
						  "again)" :
						  "");
			goto out;
		}
	}
	if (bpf_map_update_elem(m->gen_config, &idle, &img.cfg, BPF_ANY) ||
	    bpf_map_update_elem(m->active_gen, &zero, &idle, BPF_ANY)) {
		rc = -errno;
		diags_add(d, DIAG_ERROR, NULL, 0, 0, "switching to generation %u: %s", idle,
			  strerror(-rc));
		goto out;
	}
	t2 = now_ms();
	release_slots(m, used_new, minfo.max_entries);
	/* The new rules are in force; what fails from here on costs only the
	 * next reload its in-place updates. */
	rc = addr_sync_other(m, &plan, &img, !idle);
	if (plan.other_quiet) {
		int err = complete_other(m, &img, infos, !idle, &other);

		rc = rc ? rc : err;
	}
	if (rc)
		diags_add(d, DIAG_WARNING, NULL, 0, 0,
			  "the rules are in force, but keeping the other generation's maps in "
			  "step failed (%s): the next reload builds them anew",
			  strerror(-rc));
	if (info) {
		info->gen = idle;
		info->compile_ms = t1 - t0;
		info->load_ms = t2 - t1;
		info->sync_ms = now_ms() - t2;
		info->map_bytes = image_bytes(&img);
		info->maps_in_place = in_place;
	}
	rc = 0;
out:
	other_arrays_join(&other, true);
	addr_plan_free(&plan);
	for (i = 0; i < IN_COUNT; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(used_new);
	free(infos);
	image_free(&img);
	return rc;
}

int gen_apply(struct moat_maps *m, const struct ruleset *rs, struct diags *d,
	      struct gen_apply_info *info)
{
	return apply(m, rs, d, info, true);
}

int gen_apply_once(struct moat_maps *m, const struct ruleset *rs, struct diags *d,
		   struct gen_apply_info *info)
{
	return apply(m, rs, d, info, false);
}
