// SPDX-License-Identifier: GPL-2.0
/*
 * datapath.c - open and load moat's BPF object through its skeleton, and
 * run frames through it with BPF_PROG_TEST_RUN.
 *
 * A "private" instance has fresh maps (trace --rules, tests); a bound one
 * reuses an interface's pinned maps, so a trace instance judges packets
 * with exactly the rules, counters' slots and connection table in force,
 * while its programs (built with moat_trace_mode set) change none of them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "datapath.h"
#include "dp_load.h"
#include "cmd.h"
#include "generation.h"
#include "moat.skel.h"

int moat_verbose;

struct moat_inst {
	struct moat_bpf *skel;
	struct moat_maps maps;
	bool trace_mode;
};

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && moat_verbose < 2)
		return 0;
	if (level == LIBBPF_INFO && moat_verbose < 1)
		return 0;
	if (level == LIBBPF_WARN && moat_verbose < 1)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static int libxdp_print(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBXDP_DEBUG && moat_verbose < 2)
		return 0;
	if (moat_verbose < 1)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void dp_setup_logging(void)
{
	libbpf_set_print(libbpf_print);
	libxdp_set_print(libxdp_print);
}

static struct bpf_map *skel_map(struct moat_bpf *skel, size_t i)
{
	return bpf_object__find_map_by_name(skel->obj, moat_map_names[i]);
}

int dp_skel_open(struct moat_bpf **out, const struct dp_open_opts *o, char *err, size_t errlen)
{
	struct moat_bpf *skel;
	size_t i;
	int rc;

	dp_setup_logging();
	skel = moat_bpf__open();
	if (!skel) {
		rc = -errno;
		snprintf(err, errlen, "opening the BPF object: %s", strerror(-rc));
		return rc;
	}
	skel->rodata->moat_trace_mode = o->trace_mode;
	skel->rodata->moat_decision_cache_off = o->no_decision_cache;
	if (o->ct_max) {
		bpf_map__set_max_entries(skel->maps.conntrack, o->ct_max);
		bpf_map__set_max_entries(skel->maps.ct_pending,
					 o->ct_max / 4 > 1024 ? o->ct_max / 4 : 1024);
	}
	if (o->stat_slots)
		bpf_map__set_max_entries(skel->maps.rule_stats, o->stat_slots);
	if (o->reuse) {
		for (i = 0; i < MOAT_NMAPS; i++) {
			int fd = *moat_maps_fd((struct moat_maps *)o->reuse, i);

			if (fd < 0)
				continue;
			rc = bpf_map__reuse_fd(skel_map(skel, i), fd);
			if (rc) {
				snprintf(err, errlen, "reusing map %s: %s", moat_map_names[i],
					 strerror(-rc));
				goto fail;
			}
		}
	}
	bpf_program__set_autoload(skel->progs.moat_xdp_ingress, o->load_progs);
	bpf_program__set_autoload(skel->progs.moat_tc_egress, o->load_progs);
	if (o->no_load) {
		*out = skel;
		return 0;
	}
	rc = moat_bpf__load(skel);
	if (rc) {
		snprintf(err, errlen,
			 "loading the BPF programs: %s%s", strerror(-rc),
			 rc == -EPERM ? " (moat needs root, or CAP_BPF and CAP_NET_ADMIN)" :
			 moat_verbose ? "" : " (run with -v for libbpf's messages, -vv for the "
					     "verifier log)");
		goto fail;
	}
	*out = skel;
	return 0;
fail:
	moat_bpf__destroy(skel);
	return rc;
}

int dp_maps_from_skel(struct moat_bpf *skel, struct moat_maps *m)
{
	size_t i;

	moat_maps_init(m);
	for (i = 0; i < MOAT_NMAPS; i++) {
		int fd = fcntl_dupfd(bpf_map__fd(skel_map(skel, i)));

		if (fd < 0) {
			moat_maps_close(m);
			return fd;
		}
		*moat_maps_fd(m, i) = fd;
	}
	return 0;
}

int moat_inst_open_private(struct moat_inst **out, bool trace_mode)
{
	struct dp_open_opts o = { .trace_mode = trace_mode, .load_progs = true,
				  .ct_max = 65536, .stat_slots = 4 * 4 * MOAT_MAX_RULES / 2 };
	struct moat_inst *inst = calloc(1, sizeof(*inst));
	char err[256];
	int rc;

	if (!inst)
		return -ENOMEM;
	rc = dp_skel_open(&inst->skel, &o, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "moat: %s\n", err);
		free(inst);
		return rc;
	}
	rc = dp_maps_from_skel(inst->skel, &inst->maps);
	if (rc) {
		moat_inst_close(inst);
		return rc;
	}
	inst->trace_mode = trace_mode;
	*out = inst;
	return 0;
}

int moat_inst_open_bound(struct moat_inst **out, const char *ifname, char *err, size_t errlen)
{
	struct dp_open_opts o = { .trace_mode = true, .load_progs = true };
	struct moat_inst *inst = calloc(1, sizeof(*inst));
	struct moat_maps pinned;
	int rc;

	if (!inst)
		return -ENOMEM;
	rc = pin_open_maps(ifname, &pinned, err, errlen);
	if (rc) {
		free(inst);
		return rc;
	}
	o.reuse = &pinned;
	rc = dp_skel_open(&inst->skel, &o, err, errlen);
	moat_maps_close(&pinned);
	if (rc) {
		free(inst);
		return rc;
	}
	rc = dp_maps_from_skel(inst->skel, &inst->maps);
	if (rc) {
		moat_inst_close(inst);
		return rc;
	}
	inst->trace_mode = true;
	*out = inst;
	return 0;
}

int moat_inst_apply(struct moat_inst *inst, const struct ruleset *rs, struct diags *d)
{
	return gen_apply_once(&inst->maps, rs, d, NULL);
}

int moat_inst_run(struct moat_inst *inst, int dir, const uint8_t *frame, size_t len, bool *pass,
		  struct moat_trace *trace)
{
	uint8_t out[2048];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);
	int prog = dir == MOAT_DIR_IN ? bpf_program__fd(inst->skel->progs.moat_xdp_ingress) :
					bpf_program__fd(inst->skel->progs.moat_tc_egress);
	__u32 zero = 0;

	if (bpf_prog_test_run_opts(prog, &opts))
		return -errno;
	if (dir == MOAT_DIR_IN)
		*pass = opts.retval == XDP_PASS;
	else
		*pass = opts.retval == 0; /* TC_ACT_OK */
	if (trace) {
		memset(trace, 0, sizeof(*trace));
		if (inst->trace_mode &&
		    bpf_map_lookup_elem(bpf_map__fd(inst->skel->maps.trace_out), &zero, trace))
			return -errno;
	}
	return 0;
}

int moat_inst_prog_fd(struct moat_inst *inst, int dir)
{
	return dir == MOAT_DIR_IN ? bpf_program__fd(inst->skel->progs.moat_xdp_ingress) :
				    bpf_program__fd(inst->skel->progs.moat_tc_egress);
}

struct moat_maps *moat_inst_maps(struct moat_inst *inst)
{
	return &inst->maps;
}

void moat_inst_close(struct moat_inst *inst)
{
	if (!inst)
		return;
	moat_maps_close(&inst->maps);
	moat_bpf__destroy(inst->skel);
	free(inst);
}
