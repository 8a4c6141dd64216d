// SPDX-License-Identifier: GPL-2.0
/*
 * test_compile_limits.c - rule sets too large for the datapath are refused
 * by the compiler (so by `moat check`, before anything is loaded), with a
 * message that says which limit and by how much; sets just inside a limit
 * compile.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "compile.h"
#include "rules.h"

/* The first error of @d, or "". */
static const char *first_error(const struct diags *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (d->v[i].sev == DIAG_ERROR)
			return d->v[i].msg;
	return "";
}

/* Compile @text; returns compile_ruleset's result, the first error in @msg. */
static int compile_text(const char *text, char *msg, size_t len)
{
	struct moat_image img;
	struct ruleset rs;
	struct diags d;
	int rc;

	ruleset_init(&rs);
	diags_init(&d);
	assert_int_equal(rules_parse_text("limits.rules", text, strlen(text), &rs, &d), 0);
	rc = compile_ruleset(&rs, &img, &d);
	snprintf(msg, len, "%s", first_error(&d));
	if (rc == 0)
		image_free(&img);
	ruleset_free(&rs);
	diags_free(&d);
	return rc;
}

static void test_rules_per_direction(void **state)
{
	size_t cap = (MOAT_MAX_RULES + 1) * 40, len = 0, i;
	char *text = malloc(cap), msg[512];

	assert_non_null(text);
	for (i = 1; i <= MOAT_MAX_RULES; i++)
		len += (size_t)snprintf(text + len, cap - len, "nacl in %zu allow tcp dport %zu\n", i,
					i % 65535 + 1);
	assert_int_equal(compile_text(text, msg, sizeof(msg)), 0);
	snprintf(text + len, cap - len, "nacl in %d allow udp\n", MOAT_MAX_RULES + 1);
	assert_int_equal(compile_text(text, msg, sizeof(msg)), -E2BIG);
	assert_string_equal(msg, "nacl in has 16385 rules; moat holds at most 16384 per direction");
	free(text);
}

static void test_address_prefixes(void **state)
{
	char path[] = "/tmp/moat-limits.XXXXXX", text[512], msg[512];
	int fd = mkstemp(path);
	FILE *f;
	size_t i;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	for (i = 0; i < 600; i++)
		fprintf(f, "203.0.%zu.%zu\n", i / 256, i % 256);
	fclose(f);
	addr_prefix_limit = 1000;

	/* 600 prefixes in one field, and a rule's own prefix: inside */
	snprintf(text, sizeof(text),
		 "set s file %s\nnacl in 1 deny all src @s\nnacl in 2 allow tcp dst 198.18.0.0/15\n"
		 "nacl out 1 allow all\n",
		 path);
	assert_int_equal(compile_text(text, msg, sizeof(msg)), 0);

	/* exactly at the limit: 601 named (the fields' /0 entries are moat's own) */
	addr_prefix_limit = 601;
	assert_int_equal(compile_text(text, msg, sizeof(msg)), 0);
	addr_prefix_limit = 1000;

	/* the same set in a second field: 1,201 */
	snprintf(text, sizeof(text),
		 "set s file %s\nnacl in 1 deny all src @s\nnacl in 2 allow tcp dst 198.18.0.0/15\n"
		 "nacl out 1 deny all dst @s\nnacl out 2 allow all\n",
		 path);
	assert_int_equal(compile_text(text, msg, sizeof(msg)), -E2BIG);
	assert_string_equal(msg, "the rules name 1201 address prefixes (a set counts once for each "
				 "direction and address field it is used in); moat holds at most "
				 "1000 per rule set, so that its maps stay within a bounded size");
	addr_prefix_limit = MOAT_MAX_ADDR_PREFIXES;
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules_per_direction),
		cmocka_unit_test(test_address_prefixes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
