// SPDX-License-Identifier: GPL-2.0
/*
 * cmd_ct.c - `moat ct list|flush IFACE [--json]`: the connection-tracking
 * table of an interface.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "args.h"
#include "cmd.h"
#include "output.h"
#include "readout.h"
#include "rules.h"

static void endpoint(const struct moat_ct_key *k, int hi, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];
	const uint8_t *addr = hi ? k->addr_hi : k->addr_lo;
	unsigned port = ntohs(hi ? k->port_hi : k->port_lo);

	inet_ntop(k->family == 4 ? AF_INET : AF_INET6, addr, a, sizeof(a));
	if (k->proto == 6 || k->proto == 17)
		snprintf(buf, len, k->family == 6 ? "[%s]:%u" : "%s:%u", a, port);
	else
		snprintf(buf, len, "%s", a);
}

static int ct_list(const char *ifname, bool json, bool all)
{
	struct moat_maps maps;
	struct ct_entry *v;
	size_t n, i;
	char err[512];
	int rc;

	rc = pin_open_maps(ifname, &maps, err, sizeof(err));
	if (rc) {
		out_error(json, "%s", err);
		return MOAT_EXIT_SYSTEM;
	}
	rc = readout_conntrack(&maps, !all, &v, &n);
	moat_maps_close(&maps);
	if (rc) {
		out_error(json, "reading conntrack of %s: %s", ifname, strerror(-rc));
		return MOAT_EXIT_SYSTEM;
	}
	if (json) {
		struct json_object *o = json_object_new_object(), *arr = json_object_new_array();

		for (i = 0; i < n; i++) {
			struct json_object *e = json_object_new_object();
			const struct ct_entry *x = &v[i];
			/* Show the flow as its opener sent it. */
			int orig_hi = !(x->val.flags & MOAT_CT_F_ORIG_LO);
			char src[80], dst[80], proto[16];

			endpoint(&x->key, orig_hi, src, sizeof(src));
			endpoint(&x->key, !orig_hi, dst, sizeof(dst));
			rule_proto_name(x->key.proto, proto, sizeof(proto));
			json_object_object_add(e, "proto", json_object_new_string(proto));
			json_object_object_add(e, "family", json_object_new_int(x->key.family));
			json_object_object_add(e, "src", json_object_new_string(src));
			json_object_object_add(e, "dst", json_object_new_string(dst));
			json_object_object_add(e, "opened",
					       json_object_new_string(x->val.origin_dir ? "out" : "in"));
			json_object_object_add(e, "state", json_object_new_string(
								   readout_ct_state_name(x->val.state)));
			json_object_object_add(e, "age_s", json_object_new_double(x->age_s));
			json_object_object_add(e, "left_s", json_object_new_double(x->left_s));
			json_object_object_add(e, "timeout_s", json_object_new_int(x->val.timeout_s));
			json_object_object_add(e, "packets_orig",
					       json_object_new_uint64(x->val.packets[orig_hi]));
			json_object_object_add(e, "bytes_orig",
					       json_object_new_uint64(x->val.bytes[orig_hi]));
			json_object_object_add(e, "packets_reply",
					       json_object_new_uint64(x->val.packets[!orig_hi]));
			json_object_object_add(e, "bytes_reply",
					       json_object_new_uint64(x->val.bytes[!orig_hi]));
			json_object_array_add(arr, e);
		}
		json_object_object_add(o, "interface", json_object_new_string(ifname));
		json_object_object_add(o, "entries", arr);
		out_json(o);
	} else {
		printf("%-6s %-42s %-42s %-4s %-11s %9s %9s %10s %10s\n", "proto", "from",
		       "to", "dir", "state", "age", "left", "pkts>/<", "bytes>/<");
		for (i = 0; i < n; i++) {
			const struct ct_entry *x = &v[i];
			int orig_hi = !(x->val.flags & MOAT_CT_F_ORIG_LO);
			char src[80], dst[80], proto[16], pk[32], by[48];

			endpoint(&x->key, orig_hi, src, sizeof(src));
			endpoint(&x->key, !orig_hi, dst, sizeof(dst));
			rule_proto_name(x->key.proto, proto, sizeof(proto));
			snprintf(pk, sizeof(pk), "%u/%u", x->val.packets[orig_hi],
				 x->val.packets[!orig_hi]);
			snprintf(by, sizeof(by), "%llu/%llu",
				 (unsigned long long)x->val.bytes[orig_hi],
				 (unsigned long long)x->val.bytes[!orig_hi]);
			printf("%-6s %-42s %-42s %-4s %-11s %8.0fs %8.0fs %10s %10s\n", proto, src,
			       dst, x->val.origin_dir ? "out" : "in",
			       readout_ct_state_name(x->val.state), x->age_s, x->left_s, pk, by);
		}
		printf("%zu entr%s\n", n, n == 1 ? "y" : "ies");
	}
	free(v);
	return MOAT_EXIT_OK;
}

static int ct_flush(const char *ifname, bool json)
{
	struct moat_ct_key key, next;
	struct moat_maps maps;
	size_t n = 0;
	char err[512];
	int rc, t;

	rc = pin_open_maps(ifname, &maps, err, sizeof(err));
	if (rc) {
		out_error(json, "%s", err);
		return MOAT_EXIT_SYSTEM;
	}
	/* Deleting the first key each time stays correct while entries are
	 * being added concurrently. */
	for (t = 0; t < 2; t++) {
		int fd = t ? maps.ct_pending : maps.conntrack;

		while (bpf_map_get_next_key(fd, NULL, &next) == 0) {
			key = next;
			if (bpf_map_delete_elem(fd, &key) == 0)
				n++;
			else if (errno != ENOENT)
				break;
		}
	}
	moat_maps_close(&maps);
	if (json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "interface", json_object_new_string(ifname));
		json_object_object_add(o, "flushed", json_object_new_int64((int64_t)n));
		out_json(o);
	} else {
		printf("moat: flushed %zu connection-tracking entr%s on %s\n", n,
		       n == 1 ? "y" : "ies", ifname);
	}
	return MOAT_EXIT_OK;
}

int cmd_ct(int argc, char **argv)
{
	bool json = false, all = false;
	struct arg_opt opts[] = { { "json", false, NULL, &json },
				  { "all", false, NULL, &all },
				  { 0 } };
	struct args a;

	if (args_parse(argc, argv, opts, &a, json))
		return MOAT_EXIT_INPUT;
	if (out_lacks_privileges(json))
		return MOAT_EXIT_SYSTEM;
	if (a.npos == 2 && !strcmp(a.pos[0], "list"))
		return ct_list(a.pos[1], json, all);
	if (a.npos == 2 && !strcmp(a.pos[0], "flush"))
		return ct_flush(a.pos[1], json);
	out_error(json, "usage: moat ct list|flush IFACE [--json] [--all]");
	return MOAT_EXIT_INPUT;
}
