// SPDX-License-Identifier: GPL-2.0
/*
 * readout.c - read the pinned maps (see readout.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "generation.h"
#include "readout.h"

#define FIELD(n) { #n, offsetof(struct moat_dir_counters, n) }
const struct counter_field readout_counter_fields[] = {
	FIELD(packets),	       FIELD(passed),
	FIELD(dropped),	       FIELD(non_ip),
	FIELD(ndp),	       FIELD(malformed),
	FIELD(malformed_bytes), FIELD(ext_hdr_limit),
	FIELD(fragments),      FIELD(nacl_default_deny),
	FIELD(nacl_default_deny_bytes), FIELD(sg_no_rule),
	FIELD(sg_no_rule_bytes), FIELD(ct_created),
	FIELD(ct_hit),	       FIELD(ct_untracked),
	FIELD(ct_expired),     FIELD(ct_related),
	FIELD(ct_create_failed), FIELD(ct_promoted),
};
const size_t readout_ncounter_fields =
	sizeof(readout_counter_fields) / sizeof(readout_counter_fields[0]);

static int ncpus(void)
{
	int n = libbpf_num_possible_cpus();

	return n > 0 ? n : 1;
}

uint64_t readout_now_ns(void)
{
	struct timespec ts;

	/* Entries are stamped with CLOCK_MONOTONIC as of the last timer tick. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

int readout_rules(struct moat_maps *m, struct rule_counter **out, size_t *n)
{
	size_t count[MOAT_NTABLES], cap = 4 * MOAT_MAX_RULES, t, i, k;
	struct moat_rule_info *infos = calloc(cap, sizeof(*infos));
	int nc = ncpus(), rc, c;
	struct moat_rule_stat *vals = calloc(nc, sizeof(*vals));
	struct rule_counter *rcs = NULL;

	*out = NULL;
	*n = 0;
	if (!infos || !vals) {
		rc = -ENOMEM;
		goto out;
	}
	rc = gen_live_rules(m, infos, cap, count);
	if (rc < 0)
		goto out;
	rcs = calloc(rc ? rc : 1, sizeof(*rcs));
	if (!rcs) {
		rc = -ENOMEM;
		goto out;
	}
	for (t = 0, k = 0; t < MOAT_NTABLES; t++) {
		for (i = 0; i < count[t]; i++, k++) {
			struct rule_counter *r = &rcs[k];
			__u32 slot = infos[k].stat_slot;

			r->stage = t / 2;
			r->dir = t % 2;
			r->number = infos[k].number;
			r->action = infos[k].action;
			if (bpf_map_lookup_elem(m->rule_stats, &slot, vals) == 0)
				for (c = 0; c < nc; c++) {
					r->packets += vals[c].packets;
					r->bytes += vals[c].bytes;
				}
		}
	}
	*out = rcs;
	*n = k;
	rcs = NULL;
	rc = 0;
out:
	free(rcs);
	free(infos);
	free(vals);
	return rc;
}

int readout_counters(struct moat_maps *m, struct moat_dir_counters c[2])
{
	int nc = ncpus(), i;
	struct moat_dir_counters *vals = calloc(nc, sizeof(*vals));
	__u32 dir;
	size_t f;

	if (!vals)
		return -ENOMEM;
	memset(c, 0, 2 * sizeof(*c));
	for (dir = 0; dir < 2; dir++) {
		if (bpf_map_lookup_elem(m->counters, &dir, vals)) {
			int rc = -errno;

			free(vals);
			return rc;
		}
		for (i = 0; i < nc; i++)
			for (f = 0; f < sizeof(*c) / 8; f++)
				((uint64_t *)&c[dir])[f] += ((uint64_t *)&vals[i])[f];
	}
	free(vals);
	return 0;
}

/* Append the entries of one table to *v. */
static int read_table(int fd, int live_only, uint64_t now, struct ct_entry **v, size_t *cnt,
		      size_t *cap)
{
	struct moat_ct_key key, next;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		struct ct_entry e;

		key = next;
		prev = &key;
		memset(&e, 0, sizeof(e));
		if (bpf_map_lookup_elem(fd, &key, &e.val))
			continue;
		e.key = key;
		e.age_s = (double)(now - e.val.created_ns) / 1e9;
		e.left_s = (double)e.val.timeout_s - (double)(now - e.val.last_ns) / 1e9;
		if (live_only && e.left_s <= 0)
			continue;
		if (*cnt == *cap) {
			struct ct_entry *nv;

			*cap = *cap ? *cap * 2 : 256;
			nv = realloc(*v, *cap * sizeof(**v));
			if (!nv)
				return -ENOMEM;
			*v = nv;
		}
		(*v)[(*cnt)++] = e;
	}
	return 0;
}

int readout_conntrack(struct moat_maps *m, int live_only, struct ct_entry **out, size_t *n)
{
	struct ct_entry *v = NULL;
	size_t cnt = 0, cap = 0;
	uint64_t now = readout_now_ns();
	int rc;

	rc = read_table(m->conntrack, live_only, now, &v, &cnt, &cap);
	if (!rc && m->ct_pending >= 0)
		rc = read_table(m->ct_pending, live_only, now, &v, &cnt, &cap);
	if (rc) {
		free(v);
		return rc;
	}
	*out = v;
	*n = cnt;
	return 0;
}

static int table_usage(int fd, size_t *used, size_t *max)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	struct moat_ct_key key, next;
	void *prev = NULL;
	size_t cnt = 0;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		cnt++;
	}
	*used = cnt;
	*max = info.max_entries;
	return 0;
}

int readout_ct_usage(struct moat_maps *m, size_t *used, size_t *max, size_t *pending,
		     size_t *pending_max)
{
	int rc = table_usage(m->conntrack, used, max);

	*pending = *pending_max = 0;
	if (!rc && m->ct_pending >= 0)
		rc = table_usage(m->ct_pending, pending, pending_max);
	return rc;
}

const char *readout_ct_state_name(uint8_t state)
{
	switch (state) {
	case MOAT_CT_NEW:
		return "new";
	case MOAT_CT_SYN_SENT:
		return "syn-sent";
	case MOAT_CT_ESTABLISHED:
		return "established";
	case MOAT_CT_CLOSING:
		return "closing";
	default:
		return "unknown";
	}
}
