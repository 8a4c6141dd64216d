// SPDX-License-Identifier: GPL-2.0
/*
 * main.c - moat's command table. A verb may be abbreviated to any unique
 * prefix; -v / -vv before the verb raise libbpf's verbosity.
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "dp_load.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
};

static const struct command commands[] = {
	{ "check", cmd_check, "check  FILE [--json]                    validate a rules file" },
	{ "attach", cmd_attach,
	  "attach IFACE FILE [--mode native|skb|auto]  load, pin and attach (in and out)" },
	{ "reload", cmd_reload, "reload IFACE FILE [--json]             atomic swap of the rules" },
	{ "detach", cmd_detach, "detach IFACE [--keep-state]            detach and unpin" },
	{ "status", cmd_status, "status [IFACE] [--json]                what is attached where" },
	{ "stats", cmd_stats, "stats  IFACE [--json]                  per-rule counters" },
	{ "ct", cmd_ct, "ct     list|flush IFACE [--json]       connection tracking" },
	{ "trace", cmd_trace,
	  "trace  IFACE|--rules FILE in|out PACKET [--json]  judge one packet, say why" },
	{ "lint", cmd_lint, "lint   FILE [--json] [--reach]         find holes" },
	{ "import", cmd_import,
	  "import aws [--nacl ID] [--sg ID,..] [--members FILE] FILE.json...  AWS to moat" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: moat [-v|-vv] VERB ...\n\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  moat %s\n", commands[i].usage);
	fprintf(f, "\nPACKET: PROTO SRC[:PORT] > DST[:PORT] [flags SAFRPU] [icmp T/C] [frag]\n"
		   "exit status: 0 ok, 1 bad input, 2 the system refused\n");
}

int main(int argc, char **argv)
{
	const struct command *found = NULL;
	size_t i, len;
	int a = 1;

	while (a < argc && argv[a][0] == '-' && argv[a][1] == 'v') {
		moat_verbose += (int)strspn(argv[a] + 1, "v");
		a++;
	}
	if (a >= argc || !strcmp(argv[a], "-h") || !strcmp(argv[a], "--help") ||
	    !strcmp(argv[a], "help")) {
		usage(a >= argc ? stderr : stdout);
		return a >= argc ? MOAT_EXIT_INPUT : MOAT_EXIT_OK;
	}
	dp_setup_logging();
	len = strlen(argv[a]);
	for (i = 0; i < NCOMMANDS; i++) {
		if (!strcmp(argv[a], commands[i].name)) {
			found = &commands[i];
			break;
		}
		if (!strncmp(argv[a], commands[i].name, len)) {
			if (found) {
				fprintf(stderr, "moat: '%s' is ambiguous (%s, %s, ...)\n", argv[a],
					found->name, commands[i].name);
				return MOAT_EXIT_INPUT;
			}
			found = &commands[i];
		}
	}
	if (!found) {
		fprintf(stderr, "moat: unknown verb '%s'\n", argv[a]);
		usage(stderr);
		return MOAT_EXIT_INPUT;
	}
	return found->fn(argc - a, argv + a);
}
