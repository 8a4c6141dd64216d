/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dp_load.h - the skeleton-level loader behind datapath.h, for the verbs
 * that attach, detach and reuse pinned maps.
 */
#ifndef MOAT_DP_LOAD_H
#define MOAT_DP_LOAD_H

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pin.h"

struct moat_bpf;
struct moat_inst;

struct dp_open_opts {
	bool trace_mode;
	bool load_progs;	  /* false: create the maps only */
	bool no_load;		  /* open and configure, leave loading to the caller */
	bool no_decision_cache;	  /* always walk (the benchmark's uncached figures) */
	uint32_t ct_max;	  /* conntrack entries; 0: the object's default */
	uint32_t stat_slots;	  /* rule_stats entries; 0: the object's default */
	const struct moat_maps *reuse; /* maps to reuse instead of creating */
};

void dp_setup_logging(void);
int dp_skel_open(struct moat_bpf **out, const struct dp_open_opts *o, char *err, size_t errlen);
/* Duplicates of the skeleton's map fds, in struct moat_maps. */
int dp_maps_from_skel(struct moat_bpf *skel, struct moat_maps *m);

/* A trace instance over the maps pinned for @ifname. */
int moat_inst_open_bound(struct moat_inst **out, const char *ifname, char *err, size_t errlen);
int moat_inst_prog_fd(struct moat_inst *inst, int dir);
struct moat_maps *moat_inst_maps(struct moat_inst *inst);

static inline int fcntl_dupfd(int fd)
{
	return fd < 0 ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

#endif
