/* SPDX-License-Identifier: GPL-2.0 */
/*
 * diag.h - errors and warnings with file:line:col, collected in a list so a
 * command can print them all (text or JSON) and decide its exit status.
 */
#ifndef MOAT_DIAG_H
#define MOAT_DIAG_H

#include <stdarg.h>
#include <stddef.h>

enum diag_severity { DIAG_ERROR = 0, DIAG_WARNING, DIAG_NOTE };

struct diag {
	enum diag_severity sev;
	char *file; /* may be NULL */
	int line, col; /* 0 when unknown */
	char *msg;
};

struct diags {
	struct diag *v;
	size_t n, cap;
	size_t errors, warnings;
};

void diags_init(struct diags *d);
void diags_free(struct diags *d);
__attribute__((format(printf, 6, 7))) void diags_add(struct diags *d, enum diag_severity sev,
						      const char *file, int line, int col,
						      const char *fmt, ...);
/* "file:line:col: error: msg" (fields left out when unknown). */
void diags_print(const struct diags *d, void *stream /* FILE * */);
const char *diag_severity_name(enum diag_severity sev);

#endif
