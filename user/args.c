// SPDX-License-Identifier: GPL-2.0
/*
 * args.c - see args.h.
 */
#include <string.h>

#include "args.h"
#include "output.h"

int args_parse(int argc, char **argv, const struct arg_opt *opts, struct args *a, bool json)
{
	int i;

	a->npos = 0;
	for (i = 1; i < argc; i++) {
		const struct arg_opt *o;
		const char *name, *eq;
		size_t len;

		if (strncmp(argv[i], "--", 2) || !argv[i][2]) {
			if (a->npos >= ARGS_MAX) {
				out_error(json, "too many arguments");
				return -1;
			}
			a->pos[a->npos++] = argv[i];
			continue;
		}
		name = argv[i] + 2;
		eq = strchr(name, '=');
		len = eq ? (size_t)(eq - name) : strlen(name);
		for (o = opts; o->name; o++)
			if (strlen(o->name) == len && !strncmp(o->name, name, len))
				break;
		if (!o->name) {
			out_error(json, "%s: unknown option '%s'", argv[0], argv[i]);
			return -1;
		}
		if (!o->has_value) {
			if (eq) {
				out_error(json, "option --%s takes no value", o->name);
				return -1;
			}
			*o->flag = true;
			continue;
		}
		if (eq) {
			*o->value = eq + 1;
		} else if (i + 1 < argc) {
			*o->value = argv[++i];
		} else {
			out_error(json, "option --%s needs a value", o->name);
			return -1;
		}
	}
	return 0;
}
