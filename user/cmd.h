/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cmd.h - the CLI's verbs. main.c holds only the command table; each verb
 * lives in cmd_<verb>.c and returns the process exit status:
 *   MOAT_EXIT_OK (0), MOAT_EXIT_INPUT (1: bad rules file, arguments or
 *   packet; also `lint` findings), MOAT_EXIT_SYSTEM (2: the system refused).
 */
#ifndef MOAT_CMD_H
#define MOAT_CMD_H

#define MOAT_EXIT_OK 0
#define MOAT_EXIT_INPUT 1
#define MOAT_EXIT_SYSTEM 2

/* Global options, set by main.c before a verb runs. */
extern int moat_verbose; /* -v: libbpf warnings; -vv: verifier log */

/* argv[0] is the verb itself; options may appear anywhere after it. */
int cmd_check(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_reload(int argc, char **argv);
int cmd_detach(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_ct(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_lint(int argc, char **argv);
int cmd_import(int argc, char **argv);

#endif
