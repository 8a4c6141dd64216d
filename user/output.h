/* SPDX-License-Identifier: GPL-2.0 */
/*
 * output.h - how verbs speak: text for people, or exactly one JSON document
 * on stdout (json-c) for scripts, with errors as {"error": "..."}.
 */
#ifndef MOAT_OUTPUT_H
#define MOAT_OUTPUT_H

#include <stdbool.h>
#include <json-c/json.h>

#include "diag.h"

/* Report a failure: JSON {"error": msg} on stdout, or "moat: msg" on stderr. */
__attribute__((format(printf, 2, 3))) void out_error(bool json, const char *fmt, ...);
/* Print @o (and release it). */
void out_json(struct json_object *o);
/* Diagnostics as a JSON array of {severity, file, line, col, message}. */
struct json_object *out_diags_json(const struct diags *d);
/* Say what privilege is missing and return true when the process lacks it. */
bool out_lacks_privileges(bool json);
/* "1.2 KiB" style. */
const char *out_bytes(unsigned long long n, char *buf, size_t len);

#endif
