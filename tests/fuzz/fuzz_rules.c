// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_rules.c - libFuzzer target: the rules parser and the compiler on
 * arbitrary text. Any crash, leak, hang or sanitizer report is a bug; the
 * corpus in tests/fuzz/corpus/rules is replayed by `make test`.
 */
#include <stdint.h>
#include <stddef.h>

#include "compile.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct moat_image img;
	struct ruleset rs;
	struct diags d;

	ruleset_init(&rs);
	diags_init(&d);
	if (rules_parse_text("fuzz", (const char *)data, size, &rs, &d) == 0) {
		rules_check_warnings(&rs, &d);
		/* Only small rule sets: the compiler's cost is not the target. */
		if (rs.nrules <= 64 && compile_ruleset(&rs, &img, &d) == 0)
			image_free(&img);
	}
	ruleset_free(&rs);
	diags_free(&d);
	return 0;
}
