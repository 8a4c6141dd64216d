#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# demo_scenario.sh - runs `scripts/demo.sh` (what `make demo` shows) and
# checks it: exit status 0 means every probe (A->B:9000, the source-port-9000
# hole, the nmap ACK scan) gave the expected result under each rule set; the
# results table must be printed, and the demo must leave no namespace or pin
# behind. TAP output; the demo's own output follows as diagnostics.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/netns.sh
. "$REPO/scripts/netns.sh"

[ -x "$MOAT" ] || tap_bail "$MOAT not built (make moat)"

LOG=$(mktemp /tmp/moat-demo-log.XXXXXX)
trap 'rm -f "$LOG"' EXIT

rc=0
timeout 300 "$REPO/scripts/demo.sh" >"$LOG" 2>&1 &
pid=$!
wait "$pid" || rc=$?
tap_is "scripts/demo.sh exits 0 (all results as expected)" "$rc" 0
if grep -q '^SG (stateful) .*| works .*| blocked .*| filtered / filtered' "$LOG"; then
	tap_ok "results table has the SG row: works, blocked, filtered"
else
	tap_fail "results table has the SG row: works, blocked, filtered"
fi
if grep -q '^stateless NACL .*| works .*| OPENS .*| unfiltered / filtered' "$LOG"; then
	tap_ok "results table has the stateless row: works, OPENS, unfiltered"
else
	tap_fail "results table has the stateless row: works, OPENS, unfiltered"
fi
# The demo names its namespaces and interface after its PID (netns.sh).
id=$(sed -n 's/^netns moat-t-\([0-9]*\)-a .*/\1/p' "$LOG" | head -n 1)
if [ -n "$id" ]; then
	left=$(ip netns list | grep -c "^moat-t-$id-" || true)
	tap_is "no namespace left behind" "$left" 0
	tap_check_not "no pins left behind" test -e "$BPFFS_MOAT/mA$id"
else
	tap_fail "the demo printed its namespace names"
fi
tap_diag "$(cat "$LOG")"
tap_done
