/* SPDX-License-Identifier: GPL-2.0 */
/*
 * args.h - a verb's arguments: --options anywhere (with "--opt VALUE" or
 * "--opt=VALUE"), everything else positional, in order.
 */
#ifndef MOAT_ARGS_H
#define MOAT_ARGS_H

#include <stdbool.h>

struct arg_opt {
	const char *name;  /* without the leading "--" */
	bool has_value;
	const char **value; /* has_value: where to store it */
	bool *flag;	    /* !has_value: set to true */
};

#define ARGS_MAX 64

struct args {
	int npos;
	char *pos[ARGS_MAX];
};

/*
 * Parse argv[1..argc-1] against @opts (terminated by a zero entry). Returns
 * 0, or -1 after printing what was wrong (unknown option, missing value).
 */
int args_parse(int argc, char **argv, const struct arg_opt *opts, struct args *a, bool json);

#endif
