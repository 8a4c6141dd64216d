// SPDX-License-Identifier: GPL-2.0
/*
 * cmd_attach.c - `moat attach`, `moat reload` and `moat detach`.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>

#include "args.h"
#include "attach.h"
#include "cmd.h"
#include "generation.h"
#include "output.h"

/* Parse @path; on errors print them and return false. */
static bool load_rules(const char *path, struct ruleset *rs, struct diags *d, bool json)
{
	ruleset_init(rs);
	if (rules_parse_file(path, rs, d) == 0) {
		rules_check_warnings(rs, d);
		if (!json)
			diags_print(d, stderr);
		return true;
	}
	if (json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "error",
				       json_object_new_string("the rules file has errors"));
		json_object_object_add(o, "diagnostics", out_diags_json(d));
		out_json(o);
	} else {
		diags_print(d, stderr);
		fprintf(stderr, "moat: %s: not applied (%zu error(s))\n", path, d->errors);
	}
	return false;
}

static int exit_for(int rc)
{
	return rc == -E2BIG || rc == -EINVAL ? MOAT_EXIT_INPUT : MOAT_EXIT_SYSTEM;
}

int cmd_attach(int argc, char **argv)
{
	const char *mode_s = "auto";
	bool json = false;
	struct arg_opt opts[] = { { "mode", true, &mode_s, NULL },
				  { "json", false, NULL, &json },
				  { 0 } };
	struct attach_result res = { 0 };
	enum attach_mode mode;
	struct ruleset rs;
	struct diags d;
	struct args a;
	char err[512] = "";
	int rc;

	if (args_parse(argc, argv, opts, &a, json))
		return MOAT_EXIT_INPUT;
	if (out_lacks_privileges(json))
		return MOAT_EXIT_SYSTEM;
	if (a.npos != 2) {
		out_error(json, "usage: moat attach IFACE FILE [--mode native|skb|auto]");
		return MOAT_EXIT_INPUT;
	}
	if (!strcmp(mode_s, "native"))
		mode = ATTACH_NATIVE;
	else if (!strcmp(mode_s, "skb"))
		mode = ATTACH_SKB;
	else if (!strcmp(mode_s, "auto"))
		mode = ATTACH_AUTO;
	else {
		out_error(json, "--mode: expected native, skb or auto, not '%s'", mode_s);
		return MOAT_EXIT_INPUT;
	}
	diags_init(&d);
	if (!load_rules(a.pos[1], &rs, &d, json)) {
		diags_free(&d);
		return MOAT_EXIT_INPUT;
	}
	rc = attach_iface(a.pos[0], &rs, mode, &res, &d, err, sizeof(err));
	if (rc) {
		if (d.errors && !json)
			diags_print(&d, stderr);
		out_error(json, "attach %s: %s", a.pos[0], err[0] ? err : strerror(-rc));
		rc = exit_for(rc);
	} else if (json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "interface", json_object_new_string(a.pos[0]));
		json_object_object_add(o, "xdp_mode",
				       json_object_new_string(res.native ? "native" : "skb"));
		json_object_object_add(o, "generation", json_object_new_int(res.gen));
		out_json(o);
	} else {
		printf("moat: attached to %s (in: XDP %s mode, out: TC egress): nacl %zu in, %zu "
		       "out; sg %zu in, %zu out\n",
		       a.pos[0], res.native ? "native" : "skb",
		       ruleset_count(&rs, RULE_STAGE_NACL, RULE_DIR_IN),
		       ruleset_count(&rs, RULE_STAGE_NACL, RULE_DIR_OUT),
		       ruleset_count(&rs, RULE_STAGE_SG, RULE_DIR_IN),
		       ruleset_count(&rs, RULE_STAGE_SG, RULE_DIR_OUT));
	}
	ruleset_free(&rs);
	diags_free(&d);
	return rc;
}

int cmd_reload(int argc, char **argv)
{
	bool json = false;
	struct arg_opt opts[] = { { "json", false, NULL, &json }, { 0 } };
	struct gen_apply_info gi = { 0 };
	struct moat_maps maps;
	struct ruleset rs;
	struct diags d;
	struct args a;
	char err[512] = "";
	int rc, lock;

	if (args_parse(argc, argv, opts, &a, json))
		return MOAT_EXIT_INPUT;
	if (out_lacks_privileges(json))
		return MOAT_EXIT_SYSTEM;
	if (a.npos != 2) {
		out_error(json, "usage: moat reload IFACE FILE");
		return MOAT_EXIT_INPUT;
	}
	diags_init(&d);
	if (!load_rules(a.pos[1], &rs, &d, json)) {
		diags_free(&d);
		return MOAT_EXIT_INPUT;
	}
	lock = pin_lock(a.pos[0]);
	if (lock < 0) {
		out_error(json, "locking %s: %s", a.pos[0], strerror(-lock));
		rc = MOAT_EXIT_SYSTEM;
		goto out;
	}
	rc = pin_open_maps(a.pos[0], &maps, err, sizeof(err));
	if (rc) {
		out_error(json, "reload %s: %s", a.pos[0], err);
		rc = MOAT_EXIT_SYSTEM;
		goto out_unlock;
	}
	{
		struct bpf_map_info info = { 0 };
		__u32 ilen = sizeof(info);

		if (bpf_obj_get_info_by_fd(maps.conntrack, &info, &ilen) == 0 &&
		    info.max_entries != rs.settings.ct_max && !json)
			fprintf(stderr,
				"moat: warning: the connection table keeps its size of %u entries; "
				"`set conntrack max %u` applies at the next attach\n",
				info.max_entries, rs.settings.ct_max);
	}
	rc = gen_apply(&maps, &rs, &d, &gi);
	moat_maps_close(&maps);
	if (rc) {
		if (!json)
			diags_print(&d, stderr);
		out_error(json, "reload %s: %s; the rules in force are unchanged", a.pos[0],
			  d.n ? d.v[d.n - 1].msg : strerror(-rc));
		rc = exit_for(rc);
	} else if (json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "interface", json_object_new_string(a.pos[0]));
		json_object_object_add(o, "generation", json_object_new_int(gi.gen));
		json_object_object_add(o, "compile_ms", json_object_new_double(gi.compile_ms));
		json_object_object_add(o, "load_ms", json_object_new_double(gi.load_ms));
		json_object_object_add(o, "sync_ms", json_object_new_double(gi.sync_ms));
		json_object_object_add(o, "maps_in_place",
				       json_object_new_int(gi.maps_in_place));
		out_json(o);
	} else {
		printf("moat: reloaded %s (generation %u; compiled in %.1f ms, in force after %.1f ms "
		       "more, %u map%s updated in place; the other generation in step after "
		       "%.1f ms)\n",
		       a.pos[0], gi.gen, gi.compile_ms, gi.load_ms, gi.maps_in_place,
		       gi.maps_in_place == 1 ? "" : "s", gi.sync_ms);
	}
out_unlock:
	pin_unlock(lock);
out:
	ruleset_free(&rs);
	diags_free(&d);
	return rc;
}

int cmd_detach(int argc, char **argv)
{
	bool json = false, keep = false;
	struct arg_opt opts[] = { { "json", false, NULL, &json },
				  { "keep-state", false, NULL, &keep },
				  { 0 } };
	struct args a;
	char err[512] = "";
	int rc;

	if (args_parse(argc, argv, opts, &a, json))
		return MOAT_EXIT_INPUT;
	if (out_lacks_privileges(json))
		return MOAT_EXIT_SYSTEM;
	if (a.npos != 1) {
		out_error(json, "usage: moat detach IFACE [--keep-state]");
		return MOAT_EXIT_INPUT;
	}
	rc = detach_iface(a.pos[0], keep, err, sizeof(err));
	if (rc) {
		out_error(json, "detach %s: %s", a.pos[0], err[0] ? err : strerror(-rc));
		return MOAT_EXIT_SYSTEM;
	}
	if (json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "interface", json_object_new_string(a.pos[0]));
		json_object_object_add(o, "detached", json_object_new_boolean(1));
		json_object_object_add(o, "kept_state", json_object_new_boolean(keep));
		out_json(o);
	} else {
		printf("moat: detached from %s%s\n", a.pos[0],
		       keep ? " (connection table kept)" : "");
	}
	return MOAT_EXIT_OK;
}
