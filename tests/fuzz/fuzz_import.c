// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_import.c - libFuzzer target: the AWS importer on arbitrary JSON.
 * The corpus in tests/fuzz/corpus/aws is replayed by `make test`.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

#include "import_aws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aws_import *imp;
	struct diags d;

	diags_init(&d);
	if (aws_import_new(&imp) == 0) {
		if (aws_import_add_json(imp, "fuzz.json", (const char *)data, size, NULL, &d) == 0) {
			FILE *f = fopen("/dev/null", "w");

			if (f) {
				aws_import_write(imp, NULL, f, &d);
				fclose(f);
			}
		}
		aws_import_free(imp);
	}
	diags_free(&d);
	return 0;
}
