// SPDX-License-Identifier: GPL-2.0
/*
 * cmd_stats.c - `moat stats IFACE [--json]`: per-rule packets and bytes of
 * the rule set in force, default-deny, malformed and conntrack counters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cmd.h"
#include "output.h"
#include "readout.h"
#include "rules.h"

static const char *stage_s(int s)
{
	return s == MOAT_STAGE_NACL ? "nacl" : "sg";
}

static const char *dir_s(int d)
{
	return d == MOAT_DIR_IN ? "in" : "out";
}

static const char *action_s(int a)
{
	return a == MOAT_ACTION_ALLOW ? "allow" : "deny";
}

int cmd_stats(int argc, char **argv)
{
	bool json = false;
	struct arg_opt opts[] = { { "json", false, NULL, &json }, { 0 } };
	struct moat_dir_counters c[2];
	struct rule_counter *rc_v = NULL;
	struct moat_maps maps;
	struct args a;
	char err[512];
	size_t n, i, f;
	int rc;

	if (args_parse(argc, argv, opts, &a, json))
		return MOAT_EXIT_INPUT;
	if (out_lacks_privileges(json))
		return MOAT_EXIT_SYSTEM;
	if (a.npos != 1) {
		out_error(json, "usage: moat stats IFACE [--json]");
		return MOAT_EXIT_INPUT;
	}
	rc = pin_open_maps(a.pos[0], &maps, err, sizeof(err));
	if (rc) {
		out_error(json, "%s", err);
		return MOAT_EXIT_SYSTEM;
	}
	rc = readout_rules(&maps, &rc_v, &n);
	if (!rc)
		rc = readout_counters(&maps, c);
	moat_maps_close(&maps);
	if (rc) {
		out_error(json, "reading the counters of %s: %s", a.pos[0], strerror(-rc));
		free(rc_v);
		return MOAT_EXIT_SYSTEM;
	}

	if (json) {
		struct json_object *o = json_object_new_object(), *rules = json_object_new_array();
		struct json_object *dd = json_object_new_object(), *cs = json_object_new_object();
		int d;

		json_object_object_add(o, "interface", json_object_new_string(a.pos[0]));
		for (i = 0; i < n; i++) {
			struct json_object *r = json_object_new_object();

			json_object_object_add(r, "stage", json_object_new_string(stage_s(rc_v[i].stage)));
			json_object_object_add(r, "dir", json_object_new_string(dir_s(rc_v[i].dir)));
			json_object_object_add(r, "number", json_object_new_int(rc_v[i].number));
			json_object_object_add(r, "action",
					       json_object_new_string(action_s(rc_v[i].action)));
			json_object_object_add(r, "packets", json_object_new_uint64(rc_v[i].packets));
			json_object_object_add(r, "bytes", json_object_new_uint64(rc_v[i].bytes));
			json_object_array_add(rules, r);
		}
		json_object_object_add(o, "rules", rules);
		for (d = 0; d < 2; d++) {
			struct json_object *x = json_object_new_object(), *y = json_object_new_object();

			json_object_object_add(x, "packets", json_object_new_uint64(c[d].nacl_default_deny));
			json_object_object_add(x, "bytes",
					       json_object_new_uint64(c[d].nacl_default_deny_bytes));
			json_object_object_add(dd, dir_s(d), x);
			for (f = 0; f < readout_ncounter_fields; f++)
				json_object_object_add(
					y, readout_counter_fields[f].name,
					json_object_new_uint64(*(uint64_t *)((char *)&c[d] +
							       readout_counter_fields[f].off)));
			json_object_object_add(cs, dir_s(d), y);
		}
		json_object_object_add(o, "default_deny", dd);
		json_object_object_add(o, "counters", cs);
		out_json(o);
	} else {
		printf("%-5s %-4s %6s %-6s %14s %16s\n", "stage", "dir", "rule", "action",
		       "packets", "bytes");
		for (i = 0; i < n; i++)
			printf("%-5s %-4s %6u %-6s %14llu %16llu\n", stage_s(rc_v[i].stage),
			       dir_s(rc_v[i].dir), rc_v[i].number, action_s(rc_v[i].action),
			       (unsigned long long)rc_v[i].packets,
			       (unsigned long long)rc_v[i].bytes);
		printf("%-5s %-4s %6s %-6s %14llu %16llu\n", "nacl", "in", "*", "deny",
		       (unsigned long long)c[0].nacl_default_deny,
		       (unsigned long long)c[0].nacl_default_deny_bytes);
		printf("%-5s %-4s %6s %-6s %14llu %16llu\n", "nacl", "out", "*", "deny",
		       (unsigned long long)c[1].nacl_default_deny,
		       (unsigned long long)c[1].nacl_default_deny_bytes);
		printf("\n%-24s %14s %14s\n", "counter", "in", "out");
		for (f = 0; f < readout_ncounter_fields; f++)
			printf("%-24s %14llu %14llu\n", readout_counter_fields[f].name,
			       (unsigned long long)*(uint64_t *)((char *)&c[0] +
								 readout_counter_fields[f].off),
			       (unsigned long long)*(uint64_t *)((char *)&c[1] +
								 readout_counter_fields[f].off));
	}
	free(rc_v);
	return MOAT_EXIT_OK;
}
