#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench_quick.sh - `make bench QUICK=1` runs end to end (TAP): the benchmark
# is not a test of speed (figures are in bench/RESULTS.md), but its code must
# keep working. The quick run writes build/bench/RESULTS-quick.md.
set -uo pipefail
fail=0

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO" || exit 1
OUT=build/bench/RESULTS-quick.md
rm -f "$OUT"
if timeout 500 make --no-print-directory bench QUICK=1 >build/bench-quick.log 2>&1; then
	echo "ok 1 - make bench QUICK=1 exits 0"
else
	echo "not ok 1 - make bench QUICK=1 exits 0"
	fail=1
	tail -20 build/bench-quick.log | sed 's/^/# /'
fi
if [ -s "$OUT" ] && grep -q "bare XDP_PASS" "$OUT"; then
	echo "ok 2 - it wrote $OUT with the datapath table"
else
	echo "not ok 2 - it wrote $OUT with the datapath table"
	fail=1
fi
echo "1..2"
exit "$fail"
