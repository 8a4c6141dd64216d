// SPDX-License-Identifier: GPL-2.0
/*
 * cmd_status.c - `moat status [IFACE] [--json]`: where moat is attached,
 * the rule counts in force, connection-table use and map memory.
 */
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <xdp/libxdp.h>

#include "args.h"
#include "attach.h"
#include "cmd.h"
#include "generation.h"
#include "output.h"
#include "readout.h"

/* memlock of one map fd, from /proc/self/fdinfo. */
static unsigned long long fd_memlock(int fd)
{
	char path[64], line[256];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* Map memory: the pinned maps and the inner maps of both generations (the
 * idle one's are kept for the next reload to update in place) and of the
 * shadows; a map two slots share is counted once. */
static unsigned long long maps_memlock(struct moat_maps *m)
{
	int outer[] = { m->gen_lpm4, m->gen_lpm6,  m->gen_l4,	 m->gen_dir4,
			m->gen_addr_hash, m->gen_vecs, m->gen_words, m->gen_words_more, m->gen_rules,
			m->gen_dir24, m->gen_addr_filter, m->gen_shadow };
	const size_t nouter = sizeof(outer) / sizeof(outer[0]);
	unsigned long long total = 0;
	__u32 seen[2 * (sizeof(outer) / sizeof(outer[0])) + MOAT_ADDR_KINDS];
	size_t i, j, nseen = 0;

	for (i = 0; i < MOAT_NMAPS; i++)
		total += fd_memlock(*moat_maps_fd(m, i));
	for (i = 0; i < nouter; i++) {
		__u32 slot, nslots = i == nouter - 1 ? MOAT_ADDR_KINDS : 2;

		for (slot = 0; slot < nslots; slot++) {
			__u32 id;
			int fd;

			if (bpf_map_lookup_elem(outer[i], &slot, &id))
				continue;
			for (j = 0; j < nseen && seen[j] != id; j++)
				;
			if (j < nseen)
				continue;
			seen[nseen++] = id;
			fd = bpf_map_get_fd_by_id(id);
			if (fd >= 0) {
				total += fd_memlock(fd);
				close(fd);
			}
		}
	}
	return total;
}

static const char *xdp_mode_of(unsigned ifindex)
{
	struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
	const char *s = "none";

	if (libxdp_get_error(mp))
		return s;
	switch (xdp_multiprog__attach_mode(mp)) {
	case XDP_MODE_NATIVE:
		s = "native";
		break;
	case XDP_MODE_SKB:
		s = "skb";
		break;
	case XDP_MODE_HW:
		s = "hw";
		break;
	default:
		break;
	}
	xdp_multiprog__close(mp);
	return s;
}

static int status_one(const char *ifname, bool json, struct json_object *arr)
{
	struct moat_gen_config cfg;
	struct moat_maps maps;
	size_t used = 0, max = 0, pend = 0, pend_max = 0;
	unsigned gen = 0;
	unsigned long long mem;
	char err[512], b[32];
	unsigned ifindex = if_nametoindex(ifname);
	int rc;

	rc = pin_open_maps(ifname, &maps, err, sizeof(err));
	if (rc) {
		if (json) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "interface", json_object_new_string(ifname));
			json_object_object_add(o, "attached", json_object_new_boolean(0));
			json_object_object_add(o, "error", json_object_new_string(err));
			json_object_array_add(arr, o);
		} else {
			printf("%s: not attached (%s)\n", ifname, err);
		}
		return rc;
	}
	rc = gen_live(&maps, &gen, &cfg);
	readout_ct_usage(&maps, &used, &max, &pend, &pend_max);
	mem = maps_memlock(&maps);
	moat_maps_close(&maps);
	if (rc) {
		memset(&cfg, 0, sizeof(cfg));
	}
	if (json) {
		struct json_object *o = json_object_new_object(), *r = json_object_new_object();
		struct json_object *ct = json_object_new_object();

		json_object_object_add(o, "interface", json_object_new_string(ifname));
		json_object_object_add(o, "attached", json_object_new_boolean(ifindex != 0));
		json_object_object_add(o, "ifindex", json_object_new_int(ifindex));
		json_object_object_add(o, "xdp_mode",
				       json_object_new_string(ifindex ? xdp_mode_of(ifindex) : "none"));
		json_object_object_add(o, "generation", json_object_new_int(gen));
		json_object_object_add(o, "nacl",
				       json_object_new_boolean(cfg.stage_on & (1 << MOAT_STAGE_NACL)));
		json_object_object_add(o, "sg",
				       json_object_new_boolean(cfg.stage_on & (1 << MOAT_STAGE_SG)));
		json_object_object_add(r, "nacl_in", json_object_new_int(cfg.nrules[0]));
		json_object_object_add(r, "nacl_out", json_object_new_int(cfg.nrules[1]));
		json_object_object_add(r, "sg_in", json_object_new_int(cfg.nrules[2]));
		json_object_object_add(r, "sg_out", json_object_new_int(cfg.nrules[3]));
		json_object_object_add(o, "rules", r);
		json_object_object_add(ct, "entries", json_object_new_int64((int64_t)used));
		json_object_object_add(ct, "max", json_object_new_int64((int64_t)max));
		json_object_object_add(ct, "pending", json_object_new_int64((int64_t)pend));
		json_object_object_add(ct, "pending_max", json_object_new_int64((int64_t)pend_max));
		json_object_object_add(o, "conntrack", ct);
		json_object_object_add(o, "map_memory_bytes", json_object_new_uint64(mem));
		json_object_array_add(arr, o);
	} else {
		printf("%s: attached%s, xdp %s mode, tc egress; generation %u\n", ifname,
		       ifindex ? "" : " (interface gone)", ifindex ? xdp_mode_of(ifindex) : "-",
		       gen);
		printf("  nacl %-3s  in %u rules, out %u rules\n",
		       cfg.stage_on & 1 ? "on" : "off", cfg.nrules[0], cfg.nrules[1]);
		printf("  sg   %-3s  in %u rules, out %u rules\n",
		       cfg.stage_on & 2 ? "on" : "off", cfg.nrules[2], cfg.nrules[3]);
		printf("  conntrack %zu / %zu established, %zu / %zu half-open\n", used, max,
		       pend, pend_max);
		printf("  map memory %s\n", out_bytes(mem, b, sizeof(b)));
	}
	return 0;
}

int cmd_status(int argc, char **argv)
{
	bool json = false;
	struct arg_opt opts[] = { { "json", false, NULL, &json }, { 0 } };
	struct json_object *arr = json_object_new_array();
	char root[300], dir[400], err[256];
	struct args a;
	int rc = 0, any = 0;

	if (args_parse(argc, argv, opts, &a, json)) {
		json_object_put(arr);
		return MOAT_EXIT_INPUT;
	}
	if (out_lacks_privileges(json)) {
		json_object_put(arr);
		return MOAT_EXIT_SYSTEM;
	}
	if (a.npos > 1) {
		json_object_put(arr);
		out_error(json, "usage: moat status [IFACE] [--json]");
		return MOAT_EXIT_INPUT;
	}
	if (a.npos == 1) {
		rc = status_one(a.pos[0], json, arr);
		any = 1;
	} else if (pin_root(root, sizeof(root), err, sizeof(err)) == 0) {
		DIR *d;
		struct dirent *e;

		snprintf(dir, sizeof(dir), "%s/moat", root);
		d = opendir(dir);
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			status_one(e->d_name, json, arr);
			any = 1;
		}
		if (d)
			closedir(d);
	}
	if (json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "interfaces", arr);
		out_json(o);
	} else {
		json_object_put(arr);
		if (!any)
			printf("moat is not attached anywhere\n");
	}
	return rc ? MOAT_EXIT_SYSTEM : MOAT_EXIT_OK;
}
