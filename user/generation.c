// SPDX-License-Identifier: GPL-2.0
/*
 * generation.c - build a generation's inner maps and switch to it.
 *
 * Order of work, so that a crash at any point changes nothing in force:
 *   1. compile (pure);
 *   2. create fresh inner maps sized to the image and fill them (they
 *      belong to this process until step 3, so a crash frees them);
 *   3. put them into the idle generation's slots of the gen_* outer maps
 *      and write gen_config[idle] (no packet reads the idle generation);
 *   4. one update of active_gen switches every packet to the new set;
 *   5. counter slots the old set used alone are released.
 * A packet reads active_gen once, so it never sees a mix. Inner maps the
 * switch replaces are freed by the kernel after an RCU grace period, so a
 * packet still running on the old generation keeps valid maps.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

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

enum { IN_LPM4, IN_LPM6, IN_L4, IN_DIR4, IN_HASH6, IN_VECS, IN_WORDS, IN_WORDS_MORE, IN_RULES,
       IN_DIR24, IN_COUNT };

/* Create and fill the inner maps; slots of @fds already >= 0 are maps
 * kept from the live generation (see keep_unchanged). */
static int build_inner_maps(const struct moat_image *img, int fds[IN_COUNT])
{
	bool kept[IN_COUNT];
	struct moat_rule_info *infos;
	/* words past the fixed-size array */
	size_t more = img->nwords > MOAT_FAST_WORDS ? img->nwords - MOAT_FAST_WORDS : 0;
	size_t i;
	int rc;

	for (i = 0; i < IN_COUNT; i++)
		kept[i] = fds[i] >= 0;
	if (!kept[IN_LPM4])
		fds[IN_LPM4] = map_create(BPF_MAP_TYPE_LPM_TRIE, "moat_lpm4",
				    sizeof(struct moat_lpm4_key), 4, img->nlpm4,
				    BPF_F_NO_PREALLOC);
	if (!kept[IN_LPM6])
		fds[IN_LPM6] = map_create(BPF_MAP_TYPE_LPM_TRIE, "moat_lpm6",
				    sizeof(struct moat_lpm6_key), 4, img->nlpm6,
				    BPF_F_NO_PREALLOC);
	/* arrays of 32-bit entries: two per 8-byte value (see maps.h) */
	fds[IN_L4] = map_create(BPF_MAP_TYPE_ARRAY, "moat_l4", 4, 8, MOAT_L4_ENTRIES / 2,
				  BPF_F_MMAPABLE);
	fds[IN_DIR4] = map_create(BPF_MAP_TYPE_ARRAY, "moat_dir4", 4, 8,
				    MOAT_DIR4_CHUNKS * 128, BPF_F_MMAPABLE);
	if (!kept[IN_HASH6])
		fds[IN_HASH6] = map_create(BPF_MAP_TYPE_HASH, "moat_hash6", sizeof(struct moat_lpm6_key),
				     4, img->nhash6, 0);
	fds[IN_VECS] = map_create(BPF_MAP_TYPE_ARRAY, "moat_vecs", 4, sizeof(struct moat_vec),
				    MOAT_MAX_VECS, BPF_F_MMAPABLE);
	fds[IN_WORDS] = map_create(BPF_MAP_TYPE_ARRAY, "moat_words", 4, 8, MOAT_FAST_WORDS,
				     BPF_F_MMAPABLE);
	fds[IN_WORDS_MORE] = map_create(BPF_MAP_TYPE_ARRAY, "moat_words_more", 4, 8, more,
					  BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	if (!kept[IN_DIR24])
		fds[IN_DIR24] = map_create(BPF_MAP_TYPE_ARRAY, "moat_dir24", 4, 8,
					     img->ndir24 / 2, BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	fds[IN_RULES] = map_create(BPF_MAP_TYPE_ARRAY, "moat_rules", 4,
				     sizeof(struct moat_rule_info), MOAT_RULES_ENTRIES,
				     BPF_F_MMAPABLE);
	for (i = 0; i < IN_COUNT; i++)
		if (fds[i] < 0)
			return fds[i];

	rc = kept[IN_LPM4] ? 0 :
			     map_fill_keyed(fds[IN_LPM4], img->lpm4, img->nlpm4, sizeof(img->lpm4[0]),
				      sizeof(img->lpm4[0].key), offsetof(struct image_lpm4, vid));
	if (!rc && !kept[IN_LPM6])
		rc = map_fill_keyed(fds[IN_LPM6], img->lpm6, img->nlpm6, sizeof(img->lpm6[0]),
			      sizeof(img->lpm6[0].key), offsetof(struct image_lpm6, vid));
	if (!rc && !kept[IN_HASH6])
		rc = map_fill_keyed(fds[IN_HASH6], img->hash6, img->nhash6, sizeof(img->hash6[0]),
			      sizeof(img->hash6[0].key), offsetof(struct image_lpm6, vid));
	if (rc)
		return rc;
	rc = map_fill_mapped(fds[IN_L4], img->l4, MOAT_L4_ENTRIES / 2, 8);
	if (!rc)
		rc = map_fill_mapped(fds[IN_DIR4], img->dir4, img->ndir4 / 2, 8);
	if (!rc && !kept[IN_DIR24])
		rc = map_fill_mapped(fds[IN_DIR24], img->dir24, img->ndir24 / 2, 8);
	if (!rc)
		rc = map_fill_mapped(fds[IN_VECS], img->vecs, img->nvecs,
				       sizeof(struct moat_vec));
	if (!rc)
		rc = map_fill_mapped(fds[IN_WORDS], img->words, img->nwords - more, 8);
	if (!rc)
		rc = map_fill_mapped(fds[IN_WORDS_MORE], img->words + img->nwords - more, more, 8);
	if (rc)
		return rc;
	infos = calloc(img->nrules ? img->nrules : 1, sizeof(*infos));
	if (!infos)
		return -ENOMEM;
	for (i = 0; i < img->nrules; i++)
		infos[i] = img->rules[i].info;
	rc = map_fill_mapped(fds[IN_RULES], infos, img->nrules, sizeof(*infos));
	free(infos);
	return rc;
}

/*
 * An address map whose contents would be those of the live generation's
 * (same digest) is not built again: the new generation shares the live
 * map. Inner maps are never written once installed, so sharing is safe;
 * it spares a reload that keeps a large set the seconds of refilling its
 * trie. Sets @fds[i] for the kept maps.
 */
static void keep_unchanged(struct moat_maps *m, unsigned live_gen,
			   const struct moat_gen_config *live, const struct moat_image *next,
			   int fds[IN_COUNT], unsigned *nkept)
{
	static const int slot[3] = { IN_LPM4, IN_LPM6, IN_HASH6 };
	int outer[3] = { m->gen_lpm4, m->gen_lpm6, m->gen_hash6 };
	size_t entries[3] = { next->nlpm4, next->nlpm6, next->nhash6 };
	int k;

	for (k = 0; k < 3; k++) {
		/* (an empty map costs nothing to make) */
		if (!entries[k] || live->digest[k] != next->cfg.digest[k])
			continue;
		fds[slot[k]] = map_inner_fd(outer[k], live_gen);
		if (fds[slot[k]] >= 0)
			(*nkept)++;
	}
	/* The /24 front tables are painted from the trie's contents: a kept
	 * trie keeps them too (filling 64 MiB a field is not free either). */
	if (fds[IN_LPM4] >= 0 && next->ndir24 && live->dir24_mask == next->cfg.dir24_mask &&
	    !memcmp(live->dir24_slice, next->cfg.dir24_slice, sizeof(live->dir24_slice))) {
		fds[IN_DIR24] = map_inner_fd(m->gen_dir24, live_gen);
		if (fds[IN_DIR24] >= 0)
			(*nkept)++;
	}
}

int gen_apply(struct moat_maps *m, const struct ruleset *rs, struct diags *d,
	      struct gen_apply_info *info)
{
	int outer[IN_COUNT] = { m->gen_lpm4,  m->gen_lpm6, m->gen_l4,	 m->gen_dir4,
				m->gen_hash6, m->gen_vecs, m->gen_words, m->gen_words_more,
				m->gen_rules, m->gen_dir24 };
	int fds[IN_COUNT] = { -1, -1, -1, -1, -1, -1, -1, -1, -1, -1 };
	struct moat_gen_config live_cfg;
	struct moat_image img;
	struct bpf_map_info minfo = { 0 };
	__u32 minfo_len = sizeof(minfo);
	uint8_t *used_new = NULL;
	unsigned live_gen = 0, nkept = 0;
	bool live_ok;
	__u32 zero = 0, idle;
	double t0 = now_ms(), t1;
	size_t i;
	int rc;

	rc = compile_ruleset(rs, &img, d);
	if (rc)
		return rc;
	t1 = now_ms();

	rc = gen_live(m, &live_gen, &live_cfg);
	live_ok = rc == 0;
	idle = rc == 0 ? !live_gen : 0;
	/* A new epoch: decisions cached for the old rules never apply. */
	img.cfg.epoch = rc == 0 ? live_cfg.epoch + 1 : 1;

	if (bpf_obj_get_info_by_fd(m->rule_stats, &minfo, &minfo_len)) {
		rc = -errno;
		goto out;
	}
	used_new = calloc(minfo.max_entries, 1);
	if (!used_new) {
		rc = -ENOMEM;
		goto out;
	}
	rc = assign_slots(m, &img, d, used_new, minfo.max_entries);
	if (rc)
		goto out;

	if (live_ok)
		keep_unchanged(m, live_gen, &live_cfg, &img, fds, &nkept);
	rc = build_inner_maps(&img, fds);
	if (rc) {
		diags_add(d, DIAG_ERROR, NULL, 0, 0, "creating the rule maps: %s", strerror(-rc));
		goto out;
	}
	for (i = 0; i < IN_COUNT; i++) {
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
	release_slots(m, used_new, minfo.max_entries);
	if (info) {
		info->gen = idle;
		info->compile_ms = t1 - t0;
		info->load_ms = now_ms() - t1;
		info->map_bytes = image_bytes(&img);
		info->maps_kept = nkept;
	}
	rc = 0;
out:
	for (i = 0; i < IN_COUNT; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(used_new);
	image_free(&img);
	return rc;
}
