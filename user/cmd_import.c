// SPDX-License-Identifier: GPL-2.0
/*
 * cmd_import.c - `moat import aws`: turn the JSON the AWS CLI prints for
 * network ACLs and security groups into a moat rules file on stdout.
 *
 * Only the argument handling lives here; the conversion is import_aws.c.
 * Messages go to stderr; nothing is written to stdout unless the whole
 * input could be expressed (exit 0), otherwise exit 1.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "diag.h"
#include "import_aws.h"

static void import_usage(FILE *f)
{
	fprintf(f, "usage: moat import aws [--nacl ID] [--sg ID[,ID...]] [--members FILE]\n"
		   "                       [--prefix-list PL-ID=FILE] FILE.json...\n"
		   "\n"
		   "FILE.json is the output of one of (aws ec2 ... --output json):\n"
		   "  describe-network-acls            network ACL entries -> nacl rules\n"
		   "  describe-security-groups         permissions -> sg rules\n"
		   "  describe-security-group-rules    rules -> sg rules\n"
		   "  describe-network-interfaces      addresses of the groups rules refer to\n"
		   "  get-managed-prefix-list-entries  entries of a prefix list; its id is taken\n"
		   "                                   from the file name (pl-0123abcd.json) or\n"
		   "                                   given with --prefix-list PL-ID=FILE\n"
		   "\n"
		   "  --nacl ID         the network ACL to import when the input has several\n"
		   "  --sg ID[,ID...]   the security groups to import (default: all); repeatable\n"
		   "  --members FILE    set members, one 'sg-ID|pl-ID CIDR...' a line, # comments\n"
		   "\n"
		   "The rules are written to stdout; errors name the file and the JSON path.\n");
}

/* "--name VALUE" or "--name=VALUE"; advances *@i past what it used. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *matched)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	*matched = false;
	if (strncmp(a, name, n))
		return NULL;
	if (a[n] == '=') {
		*matched = true;
		return a + n + 1;
	}
	if (a[n])
		return NULL;
	*matched = true;
	if (*i + 1 >= argc) {
		fprintf(stderr, "moat import aws: %s needs a value\n", name);
		return NULL;
	}
	return argv[++*i];
}

/* Append the comma-separated ids of @list to @ids. */
static int add_sg_ids(const char *list, char ***ids, size_t *n)
{
	const char *p = list;

	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char **v;

		if (len) {
			v = realloc(*ids, (*n + 1) * sizeof(*v));
			if (!v)
				return -ENOMEM;
			*ids = v;
			v[*n] = strndup(p, len);
			if (!v[*n])
				return -ENOMEM;
			(*n)++;
		}
		if (!end)
			return 0;
		p = end + 1;
	}
}

static int import_aws(int argc, char **argv)
{
	struct aws_import_opts opts = { 0 };
	struct aws_import *imp = NULL;
	char **sg_ids = NULL, *text = NULL;
	size_t n_sg_ids = 0, len = 0, i;
	int ret = MOAT_EXIT_INPUT, err, a, nfiles = 0;
	bool only_files = false;
	struct diags d;

	diags_init(&d);
	if (aws_import_new(&imp)) {
		fprintf(stderr, "moat import aws: %s\n", strerror(ENOMEM));
		return MOAT_EXIT_SYSTEM;
	}

	for (a = 1; a < argc; a++) {
		const char *arg = argv[a], *v;
		bool m;

		if (only_files || arg[0] != '-' || !arg[1]) {
			aws_import_add_file(imp, arg, NULL, &d);
			nfiles++;
			continue;
		}
		if (!strcmp(arg, "--")) {
			only_files = true;
		} else if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			import_usage(stdout);
			ret = MOAT_EXIT_OK;
			goto out;
		} else if ((v = opt_value(argc, argv, &a, "--nacl", &m)) || m) {
			if (!v)
				goto usage;
			if (opts.nacl_id) {
				fprintf(stderr, "moat import aws: --nacl given twice\n");
				goto usage;
			}
			opts.nacl_id = v;
		} else if ((v = opt_value(argc, argv, &a, "--sg", &m)) || m) {
			if (!v)
				goto usage;
			if (add_sg_ids(v, &sg_ids, &n_sg_ids)) {
				fprintf(stderr, "moat import aws: %s\n", strerror(ENOMEM));
				ret = MOAT_EXIT_SYSTEM;
				goto out;
			}
		} else if ((v = opt_value(argc, argv, &a, "--members", &m)) || m) {
			if (!v)
				goto usage;
			aws_import_add_members_file(imp, v, &d);
		} else if ((v = opt_value(argc, argv, &a, "--prefix-list", &m)) || m) {
			const char *eq = v ? strchr(v, '=') : NULL;
			char *id;

			if (!eq || eq == v || !eq[1]) {
				fprintf(stderr,
					"moat import aws: --prefix-list wants PL-ID=FILE, e.g. pl-0123abcd=entries.json\n");
				goto usage;
			}
			id = strndup(v, eq - v);
			if (!id) {
				fprintf(stderr, "moat import aws: %s\n", strerror(ENOMEM));
				ret = MOAT_EXIT_SYSTEM;
				goto out;
			}
			aws_import_add_file(imp, eq + 1, id, &d);
			free(id);
			nfiles++;
		} else {
			fprintf(stderr, "moat import aws: unknown option %s\n", arg);
			goto usage;
		}
	}
	if (!nfiles) {
		fprintf(stderr, "moat import aws: no input file\n");
		goto usage;
	}
	if (d.errors)
		goto print;

	opts.sg_ids = (const char *const *)sg_ids;
	opts.n_sg_ids = n_sg_ids;
	err = aws_import_to_text(imp, &opts, &text, &len, &d);
	if (err == -ENOMEM) {
		diags_add(&d, DIAG_ERROR, NULL, 0, 0, "%s", strerror(ENOMEM));
		ret = MOAT_EXIT_SYSTEM;
	} else if (!err && !d.errors) {
		if (fwrite(text, 1, len, stdout) != len || fflush(stdout)) {
			diags_add(&d, DIAG_ERROR, NULL, 0, 0, "cannot write the rules: %s",
				  strerror(errno));
			ret = MOAT_EXIT_SYSTEM;
		} else {
			ret = MOAT_EXIT_OK;
		}
	}
print:
	diags_print(&d, stderr);
	goto out;
usage:
	import_usage(stderr);
out:
	diags_free(&d);
	free(text);
	for (i = 0; i < n_sg_ids; i++)
		free(sg_ids[i]);
	free(sg_ids);
	aws_import_free(imp);
	return ret;
}

int cmd_import(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fprintf(argc < 2 ? stderr : stdout,
			"usage: moat import aws [OPTION...] FILE.json...\n"
			"(moat import aws --help for the options)\n");
		return argc < 2 ? MOAT_EXIT_INPUT : MOAT_EXIT_OK;
	}
	if (strcmp(argv[1], "aws")) {
		fprintf(stderr, "moat import: unknown source '%s' (known: aws)\n", argv[1]);
		return MOAT_EXIT_INPUT;
	}
	return import_aws(argc - 1, argv + 1);
}
