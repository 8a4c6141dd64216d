// SPDX-License-Identifier: GPL-2.0
/*
 * output.c - shared text and JSON output helpers.
 */
#include <stdarg.h>
#include <stdio.h>

#include "output.h"
#include "pin.h"

void out_error(bool json, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "error", json_object_new_string(msg));
		out_json(o);
	} else {
		fprintf(stderr, "moat: %s\n", msg);
	}
}

void out_json(struct json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

struct json_object *out_diags_json(const struct diags *d)
{
	struct json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; i < d->n; i++) {
		const struct diag *x = &d->v[i];
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "severity",
				       json_object_new_string(diag_severity_name(x->sev)));
		json_object_object_add(o, "file", x->file ? json_object_new_string(x->file) : NULL);
		json_object_object_add(o, "line", json_object_new_int(x->line));
		json_object_object_add(o, "col", json_object_new_int(x->col));
		json_object_object_add(o, "message", json_object_new_string(x->msg));
		json_object_array_add(a, o);
	}
	return a;
}

bool out_lacks_privileges(bool json)
{
	char err[256];

	if (pin_require_privileges(err, sizeof(err)) == 0)
		return false;
	out_error(json, "%s", err);
	return true;
}

const char *out_bytes(unsigned long long n, char *buf, size_t len)
{
	const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", n);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}
