// SPDX-License-Identifier: GPL-2.0
/*
 * cmd_check.c - `moat check FILE [--json]`: parse, warn, and compile (so a
 * file too large for the datapath is caught here, not at attach).
 */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cmd.h"
#include "compile.h"
#include "output.h"

static bool has_json_flag(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--json"))
			return true;
	return false;
}

int cmd_check(int argc, char **argv)
{
	bool json = has_json_flag(argc, argv);
	struct arg_opt opts[] = { { "json", false, NULL, &json }, { 0 } };
	struct moat_image img;
	struct ruleset rs;
	struct diags d;
	struct args a;
	int rc, st, dir;

	if (args_parse(argc, argv, opts, &a, json))
		return MOAT_EXIT_INPUT;
	if (a.npos != 1) {
		out_error(json, "usage: moat check FILE [--json]");
		return MOAT_EXIT_INPUT;
	}
	ruleset_init(&rs);
	diags_init(&d);
	rc = rules_parse_file(a.pos[0], &rs, &d);
	if (!rc) {
		rules_check_warnings(&rs, &d);
		rc = compile_ruleset(&rs, &img, &d);
		if (!rc)
			image_free(&img);
	}
	if (json) {
		struct json_object *o = json_object_new_object();
		struct json_object *counts = json_object_new_object();

		json_object_object_add(o, "file", json_object_new_string(a.pos[0]));
		json_object_object_add(o, "ok", json_object_new_boolean(rc == 0));
		json_object_object_add(o, "errors", json_object_new_int((int)d.errors));
		json_object_object_add(o, "warnings", json_object_new_int((int)d.warnings));
		json_object_object_add(o, "diagnostics", out_diags_json(&d));
		for (st = 0; st < 2 && rc == 0; st++) {
			for (dir = 0; dir < 2; dir++) {
				char key[32];

				snprintf(key, sizeof(key), "%s_%s", rule_stage_name(st),
					 rule_dir_name(dir));
				json_object_object_add(
					counts, key,
					json_object_new_int((int)ruleset_count(&rs, st, dir)));
			}
		}
		json_object_object_add(o, "rules", counts);
		out_json(o);
	} else {
		diags_print(&d, stderr);
		if (!rc)
			printf("%s: ok: nacl %zu in, %zu out; sg %zu in, %zu out; %zu sets; %zu "
			       "warning(s)\n",
			       a.pos[0], ruleset_count(&rs, RULE_STAGE_NACL, RULE_DIR_IN),
			       ruleset_count(&rs, RULE_STAGE_NACL, RULE_DIR_OUT),
			       ruleset_count(&rs, RULE_STAGE_SG, RULE_DIR_IN),
			       ruleset_count(&rs, RULE_STAGE_SG, RULE_DIR_OUT), rs.nsets,
			       d.warnings);
	}
	ruleset_free(&rs);
	diags_free(&d);
	return rc ? MOAT_EXIT_INPUT : MOAT_EXIT_OK;
}
