#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# demo.sh - `make demo`: the stateless hole and its two fixes, with real
# traffic between two network namespaces.
#
# A client subnet A (198.18.1.1) and a server subnet B (198.18.2.0/24) share a
# veth; moat is attached on A's side. A may open TCP 9000 on B, so B's replies
# must come back to A's ephemeral ports. The demo runs three probes under each
# rule set:
#   A→B:9000        A opens a connection to B's service (must always work);
#   B:9000→A:5000   a host in B binds *source* port 9000 and opens a
#                   connection to A's port 5000 (the stateless hole);
#   nmap -sA        an ACK scan of A from B (source port 9000): "unfiltered"
#                   means unsolicited ACKs reach A, "filtered" that they do not.
# Rule sets: none; stateless NACL; NACL with `established` on the return rule
# (moat reload); stateful SG (moat reload). It prints a table, the per-rule
# counters (moat stats, bpftool), `moat lint` of the stateless files, and
# exits non-zero when a result differs from the expected one.
#
#   scripts/demo.sh                  the embedded scenario
#   scripts/demo.sh --rules FILE …   the same probes under FILE (repeatable),
#                                    e.g. an imported AWS config; results are
#                                    shown, not judged
#
# Needs root and a built ./moat (`make demo` builds it). Traffic stays between
# the two namespaces it creates, which it removes on exit, also on failure.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/netns.sh
. "$REPO/scripts/netns.sh"

usage() {
	sed -n '/^#   scripts/,/^#  *shown, not judged/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

USER_RULES=()
while [ $# -gt 0 ]; do
	case "$1" in
	--rules)
		[ $# -ge 2 ] || {
			echo "demo: --rules needs a FILE" >&2
			exit 1
		}
		[ -r "$2" ] || {
			echo "demo: cannot read $2" >&2
			exit 1
		}
		USER_RULES+=("$(cd "$(dirname "$2")" && pwd)/$(basename "$2")")
		shift 2
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "demo: unknown argument: $1" >&2
		usage >&2
		exit 1
		;;
	esac
done

if [ ! -x "$MOAT" ]; then
	echo "demo: $MOAT not found; build it first (make moat, or make demo)" >&2
	exit 1
fi
nt_require_root

nt_trap
nt_setup

IFA=$NT_IF_A
HOLE_PORT=5000
SCAN_PORTS=5000,5001,22

echo "== moat demo: the stateless hole =="
echo "netns $NT_NS_A (A, client subnet): $IFA $NT_A4"
echo "netns $NT_NS_B (B, server subnet): $NT_IF_B $NT_B4 (service :9000), hosts in B 198.18.2.9-19"

# ---- the embedded rule sets -------------------------------------------------

STATELESS=$NT_TMP/stateless.rules
ESTABLISHED=$NT_TMP/established.rules
SG=$NT_TMP/sg.rules

cat >"$STATELESS" <<'EOF'
# The classic stateless setup: A (198.18.1.0/24) may open TCP 9000 on
# B (198.18.2.0/24), so B's replies must come back to A's ephemeral ports.
nacl out 100 allow tcp dst 198.18.2.0/24 dport 9000
nacl in  100 allow tcp src 198.18.2.0/24 dport 1024-65535
EOF

cat >"$ESTABLISHED" <<'EOF'
# The same, but the return rule admits only packets with ACK or RST set:
# a connection-opening SYN from B never matches it.
nacl out 100 allow tcp dst 198.18.2.0/24 dport 9000
nacl in  100 allow tcp src 198.18.2.0/24 dport 1024-65535 established
EOF

cat >"$SG" <<'EOF'
# Stateful: A may open TCP 9000 on B; no inbound rule at all. Replies pass
# because the connection is tracked; nothing unsolicited gets in.
sg out allow tcp dst 198.18.2.0/24 dport 9000
EOF

# ---- probes ----------------------------------------------------------------

ROWS=()
FAILS=()
HOST=0

# probe LABEL [EXP_OUT EXP_HOLE EXP_SCAN]: run the three probes, record a row;
# with expectations, record a failure for every differing result.
probe() {
	local label=$1 exp_out=${2:-} exp_hole=${3:-} exp_scan=${4:-}
	local out hole scan src
	if nt_tcp_try a b "$NT_B4" 9000; then out=works; else out=blocked; fi
	# A fresh "host in B" each time: the previous one's TIME_WAIT holds the
	# same 4-tuple (see netns.sh).
	src=$(nt_b_host "$HOST")
	HOST=$((HOST + 1))
	if nt_tcp_try b a "$NT_A4" "$HOLE_PORT" 9000 64 "$src"; then hole=OPENS; else hole=blocked; fi
	scan=$(nt_nmap_ack b "$NT_A4" "$SCAN_PORTS" 9000 | awk '
		{ st[$1] = $2 }
		END { printf "%s / %s", (st[5000] == st[5001] ? st[5000] : st[5000] "," st[5001]), st[22] }')
	[ -n "$scan" ] || scan="nmap failed"
	ROWS+=("$(printf '%-26s | %-9s | %-14s | %s' "$label" "$out" "$hole" "$scan")")
	printf '  A->B:9000 %s; %s:9000->A:%s %s; nmap -sA -g 9000 A:5000,5001 / A:22: %s\n' \
		"$out" "$src" "$HOLE_PORT" "$hole" "$scan"
	if [ -n "$exp_out" ]; then
		[ "$out" = "$exp_out" ] || FAILS+=("$label: A->B:9000 expected $exp_out, got $out")
		[ "$hole" = "$exp_hole" ] ||
			FAILS+=("$label: B:9000->A:$HOLE_PORT expected $exp_hole, got $hole")
		[ "$scan" = "$exp_scan" ] || FAILS+=("$label: nmap -sA expected '$exp_scan', got '$scan'")
	fi
}

show_counters() {
	echo "  -- moat stats $IFA"
	nt_moat stats "$IFA" 2>&1 | sed 's/^/  /' || true
	local dump=$BPFFS_MOAT/$IFA/rule_stats
	if [ -e "$dump" ]; then
		echo "  -- bpftool map dump pinned $dump (first entry, then the slots in use summed over CPUs)"
		bpftool map dump pinned "$dump" 2>&1 | sed -n '1,/^    },{/p' | sed 's/^/  /' || true
		bpftool -j map dump pinned "$dump" 2>/dev/null | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    f = e.get("formatted", e)
    vals = [v["value"] for v in f["values"]]
    v0 = vals[0]
    if not isinstance(v0, dict) or not v0.get("in_use"):
        continue
    name = lambda x: str(x).split("_")[-1].lower()
    print("    key %-4s %-4s %-3s %5s %-5s packets %-8d bytes %d" % (f["key"],
          name(v0["stage"]), name(v0["dir"]), v0["number"], name(v0["action"]),
          sum(v["packets"] for v in vals), sum(v["bytes"] for v in vals)))
' || true
	fi
}

show_lint() {
	local f=$1 rc=0 out
	out=$("$MOAT" lint "$f" 2>&1) || rc=$?
	echo "  -- moat lint $(basename "$f") (exit $rc)"
	printf '%s\n' "$out" | sed 's/^/  /'
}

show_rules() {
	grep -v '^#' "$1" | sed '/^[[:space:]]*$/d; s/^/    /'
}

# must CMD…: run a moat step; on failure say which and stop (the EXIT trap
# cleans up).
must() {
	if ! "$@"; then
		echo "demo: FAILED: $* (exit status above)" >&2
		exit 1
	fi
}

step() {
	echo
	echo "== $* =="
}

if [ ${#USER_RULES[@]} -gt 0 ]; then
	first=1
	for f in "${USER_RULES[@]}"; do
		step "rules: $f"
		show_rules "$f"
		if [ "$first" = 1 ]; then
			must nt_attach "$f"
			first=0
		else
			must nt_reload "$f"
		fi
		probe "$(basename "$f")"
		show_counters
	done
else
	step "0. no filter"
	probe "no filter" works OPENS "unfiltered / unfiltered"

	step "1. stateless NACL (moat attach)"
	show_rules "$STATELESS"
	must nt_attach "$STATELESS"
	probe "stateless NACL" works OPENS "unfiltered / filtered"
	show_counters
	show_lint "$STATELESS"

	step "2. NACL with 'established' on the return rule (moat reload)"
	show_rules "$ESTABLISHED"
	must nt_reload "$ESTABLISHED"
	probe "NACL + established" works blocked "unfiltered / filtered"
	show_counters
	show_lint "$ESTABLISHED"

	step "3. stateful SG, no inbound rule (moat reload)"
	show_rules "$SG"
	must nt_reload "$SG"
	probe "SG (stateful)" works blocked "filtered / filtered"
	show_counters
fi

step "results"
printf '%-26s | %-9s | %-14s | %s\n' "rules" "A->B:9000" "B:9000->A:$HOLE_PORT" \
	"nmap -sA from B:9000 (A:5000,5001 / A:22)"
printf '%s\n' "---------------------------+-----------+----------------+------------------------------------------"
printf '%s\n' "${ROWS[@]}"

if [ ${#USER_RULES[@]} -eq 0 ]; then
	cat <<'EOF'

Reading it: the return rule (in 100, dport 1024-65535) admits any TCP packet
from B, so a host in B that binds source port 9000 opens connections to A's
high ports, and A's answers match the outbound rule (dport 9000). With
'established' the opening SYN no longer matches: the hole is closed, but ACK
probes still pass (nmap: unfiltered) because a stateless filter cannot tell
a reply from an unsolicited ACK. The SG tracks connections: replies pass with
no inbound rule, and unsolicited packets of any kind are dropped (filtered).
EOF
fi

nt_detach >/dev/null 2>&1 || true
if [ ! -e "$BPFFS_MOAT/$IFA" ]; then
	echo
	echo "detached; $BPFFS_MOAT/$IFA removed"
fi

if [ ${#FAILS[@]} -gt 0 ]; then
	echo
	echo "demo: FAILED: ${#FAILS[@]} result(s) differ from the expected ones:" >&2
	printf '  %s\n' "${FAILS[@]}" >&2
	exit 1
fi
echo
echo "demo: all results as expected"
