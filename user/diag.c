// SPDX-License-Identifier: GPL-2.0
/*
 * diag.c - a list of errors and warnings, each with the file, line and
 * column it is about.
 *
 * The parser and the checks add to the list and go on, so one run reports
 * every problem of a file; the command then prints the list (as text here,
 * or as JSON elsewhere) and picks its exit status from the error count.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

void diags_init(struct diags *d)
{
	memset(d, 0, sizeof(*d));
}

void diags_free(struct diags *d)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].msg);
	}
	free(d->v);
	diags_init(d);
}

const char *diag_severity_name(enum diag_severity sev)
{
	switch (sev) {
	case DIAG_ERROR:
		return "error";
	case DIAG_WARNING:
		return "warning";
	case DIAG_NOTE:
		return "note";
	}
	return "error";
}

void diags_add(struct diags *d, enum diag_severity sev, const char *file, int line, int col,
	       const char *fmt, ...)
{
	struct diag *e;
	va_list ap;
	char *msg;
	int ret;

	/*
	 * Count first: the counts decide a command's exit status, so an error
	 * must never be lost, even when there is no memory left to keep its
	 * text.
	 */
	if (sev == DIAG_ERROR)
		d->errors++;
	else if (sev == DIAG_WARNING)
		d->warnings++;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct diag *v = realloc(d->v, cap * sizeof(*v));

		if (!v)
			return;
		d->v = v;
		d->cap = cap;
	}

	va_start(ap, fmt);
	ret = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (ret < 0)
		return;

	e = &d->v[d->n];
	e->sev = sev;
	e->line = line > 0 ? line : 0;
	e->col = col > 0 ? col : 0;
	e->msg = msg;
	e->file = NULL;
	if (file) {
		e->file = strdup(file);
		if (!e->file) {
			free(msg);
			return;
		}
	}
	d->n++;
}

void diags_print(const struct diags *d, void *stream)
{
	FILE *f = stream;
	size_t i;

	for (i = 0; i < d->n; i++) {
		const struct diag *e = &d->v[i];

		/* A column means nothing without its line, so both go together. */
		if (e->file)
			fprintf(f, "%s:", e->file);
		if (e->line) {
			fprintf(f, "%d:", e->line);
			if (e->col)
				fprintf(f, "%d:", e->col);
		}
		if (e->file || e->line)
			fputc(' ', f);
		fprintf(f, "%s: %s\n", diag_severity_name(e->sev), e->msg);
	}
}
