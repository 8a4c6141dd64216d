#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run-tests.sh - the test runner behind `make test` (which builds first).
#
# Runs, from the repository root, each with a time limit:
#   build/tests/unit/test_*    unit tests (parser, compiler; ASan + UBSan)
#   build/tests/bpf/test_*     BPF_PROG_TEST_RUN tests and the differential test
#   tests/e2e/*.sh             end-to-end tests in network namespaces (TAP)
#   tests/e2e/*.py             the same, in python3
# Output of each goes to build/test-logs/NAME.log; one line per test,
# "PASS name (Ns)" or "FAIL name (Ns)" followed by the tail of its log; the
# last line is exactly "N passed, N failed"; the exit status is non-zero when
# anything failed.
#
#   scripts/run-tests.sh [WORD…]    only the tests whose name contains a WORD
#
# Environment: MOAT_TEST_TIMEOUT (seconds per test, default 600).
#
# Every test here needs root (BPF, namespaces) or runs in the same session as
# those that do, so the runner refuses to run without root and counts that as
# a failure: a privileged test must never skip silently. A unit test whose
# source exists but whose binary does not is a failure too. After each test,
# network namespaces and moat pins left by a killed e2e test (named after a
# PID that no longer exists, see scripts/netns.sh) are removed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

TIMEOUT=${MOAT_TEST_TIMEOUT:-600}
LOGDIR=build/test-logs
export MOAT="$REPO/moat"

passed=0
failed=0

finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

if [ "$(id -u)" != 0 ]; then
	echo "FAIL run-tests: must run as root (BPF programs, network namespaces); no test was run"
	failed=1
	finish
	exit 1
fi
if ! grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
	echo "FAIL run-tests: bpffs is not mounted on /sys/fs/bpf (run scripts/install-deps.sh)"
	failed=1
	finish
	exit 1
fi

mkdir -p "$LOGDIR"

# ---- collect ----------------------------------------------------------------

NAMES=()
CMDS=()

add() { # add NAME CMD…
	local name=$1
	shift
	NAMES+=("$name")
	CMDS+=("$(printf '%q ' "$@")")
}

shopt -s nullglob
for kind in unit bpf; do
	for src in tests/"$kind"/test_*.c; do
		base=$(basename "$src" .c)
		bin=build/tests/$kind/$base
		if [ -x "$bin" ]; then
			add "$kind/$base" "$bin"
		else
			add "$kind/$base" sh -c "echo 'not built: $bin (make unit-tests bpf-tests)'; exit 1"
		fi
	done
done
# The fuzzers replay their corpus (every file once, under ASan + UBSan).
for pair in rules:rules import:aws; do
	target=${pair%%:*}
	corpus=tests/fuzz/corpus/${pair#*:}
	bin=build/fuzz/fuzz_$target
	if [ -x "$bin" ]; then
		add "fuzz/$target-corpus" "$bin" -runs=0 "$corpus"
	else
		add "fuzz/$target-corpus" sh -c "echo 'not built: $bin (make test builds it)'; exit 1"
	fi
done
for t in tests/e2e/*.sh; do
	add "e2e/$(basename "$t")" bash "$t"
done
for t in tests/e2e/*.py; do
	add "e2e/$(basename "$t")" python3 "$t"
done
shopt -u nullglob

selected() {
	local name=$1 w
	[ $# -gt 1 ] || return 0
	shift
	for w in "$@"; do
		case "$name" in *"$w"*) return 0 ;; esac
	done
	return 1
}

# ---- leftovers of killed tests ----------------------------------------------

# reap_leftovers LOG: delete moat-t-PID-* namespaces and /sys/fs/bpf/moat/mAPID
# pins whose PID is gone (a test killed by the time limit cannot clean up).
reap_leftovers() {
	local log=$1 ns pid dir
	while read -r ns _; do
		case "$ns" in
		moat-t-*-a | moat-t-*-b)
			pid=${ns#moat-t-}
			pid=${pid%-*}
			if ! kill -0 "$pid" 2>/dev/null; then
				echo "run-tests: removing leftover netns $ns" >>"$log"
				ip netns del "$ns" 2>/dev/null || true
			fi
			;;
		esac
	done < <(ip netns list 2>/dev/null)
	for dir in /sys/fs/bpf/moat/mA[0-9]*; do
		[ -d "$dir" ] || continue
		pid=${dir##*/mA}
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "run-tests: removing leftover pins $dir" >>"$log"
			rm -rf "$dir"
		fi
	done
}

# ---- run --------------------------------------------------------------------

for i in "${!NAMES[@]}"; do
	name=${NAMES[$i]}
	selected "$name" "$@" || continue
	log=$LOGDIR/${name//\//_}.log
	start=$(date +%s)
	rc=0
	# timeout runs the test in its own process group and signals the whole
	# group; -k: SIGKILL if TERM is not enough.
	eval "timeout -k 15 $TIMEOUT ${CMDS[$i]}" </dev/null >"$log" 2>&1 || rc=$?
	secs=$(($(date +%s) - start))
	reap_leftovers "$log"
	if [ "$rc" = 0 ]; then
		passed=$((passed + 1))
		echo "PASS $name (${secs}s)"
	else
		failed=$((failed + 1))
		why="exit $rc"
		if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
			why="timed out after ${TIMEOUT}s"
		fi
		echo "FAIL $name (${secs}s, $why; log: $log)"
		tail -n 25 "$log" | sed 's/^/    /'
	fi
done

finish
