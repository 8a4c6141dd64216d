#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nacl_basic.sh - end-to-end test of the stateless NACL stage with real
# traffic (TAP output).
#
# Two network namespaces joined by a veth (scripts/netns.sh); moat attached on
# A's side with a NACL rule file. Checks, with real TCP, UDP, ICMP and IPv6
# TCP: allowed flows work and everything else is dropped as the rules say,
# including a deny rule before a broader allow and the implicit final deny;
# non-IP frames (ARP) and IPv6 neighbour discovery pass with no rule for them;
# `moat stats --json` counts each packet on the rule that decided it (exact
# deltas for a known number of pings), and default denies per direction;
# `moat trace` agrees and changes no counter; `moat status --json` names the
# interface; `moat detach` removes /sys/fs/bpf/moat/IFACE and traffic flows
# again.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/netns.sh
. "$REPO/scripts/netns.sh"

[ -x "$MOAT" ] || tap_bail "$MOAT not built (make moat)"
nt_trap
nt_setup || tap_bail "namespace set-up failed"

RULES=$NT_TMP/nacl.rules
cat >"$RULES" <<'EOF'
# out = sent by A (198.18.1.1, fd00:1::1); in = received by A.
nacl out 50  deny  tcp dst 198.18.2.0/24 dport 9001
nacl out 100 allow tcp dst 198.18.2.0/24 dport 9000-9001
nacl out 110 allow tcp dst 198.18.2.0/24 sport 5000 dport 1024-65535 established
nacl out 200 allow udp dst 198.18.2.0/24 dport 5353
nacl out 300 allow icmp dst 198.18.2.0/24 icmp 8/0
nacl out 400 allow tcp dst fd00:2::/64 dport 9000
nacl out 410 allow tcp dst fd00:2::/64 sport 5000 established

nacl in 100 allow tcp src 198.18.2.0/24 sport 9000-9001 dport 1024-65535 established
nacl in 110 allow tcp src 198.18.2.0/24 dport 5000
nacl in 200 allow udp src 198.18.2.0/24 sport 5353
nacl in 300 allow icmp src 198.18.2.0/24 icmp 0/0
nacl in 400 allow tcp src fd00:2::/64 sport 9000 established
nacl in 410 allow tcp src fd00:2::/64 dport 5000
EOF

IFA=$NT_IF_A
PINS=$BPFFS_MOAT/$IFA
STATS0=$NT_TMP/stats0.json
STATS1=$NT_TMP/stats1.json

stats_json() { nt_moat stats "$IFA" --json; }
pkts() { nt_rule_packets nacl "$2" "$3" <"$1"; }

# ---- before attaching: the plumbing works ---------------------------------

tap_check "baseline: TCP A->B:9001 works without moat" nt_tcp_try a b "$NT_B4" 9001
tap_check "baseline: ping B->A works without moat" nt_ping b "$NT_A4" 1

# ---- attach ------------------------------------------------------------------

out=$(nt_attach "$RULES" 2>&1) && rc=0 || rc=$?
tap_is "moat attach $IFA exits 0" "$rc" 0
[ "$rc" = 0 ] || {
	tap_diag "$out"
	tap_done
	exit 1
}
tap_check "pins exist under $PINS" test -d "$PINS"
tap_check "rule_stats pinned" test -e "$PINS/rule_stats"
if nt_has '"number"' bpftool map dump pinned "$PINS/rule_stats"; then
	tap_ok "bpftool map dump rule_stats shows fields by name"
else
	tap_fail "bpftool map dump rule_stats shows fields by name"
fi

st=$(nt_moat status --json 2>&1) || true
if [ "$(nt_json "any(v == '$IFA' for o in walk(d) for v in o.values())" <<<"$st" 2>&1)" = True ]; then
	tap_ok "moat status --json names $IFA"
else
	tap_fail "moat status --json names $IFA"
	tap_diag "$st"
fi

stats_json >"$STATS0" || tap_fail "moat stats --json"

# ---- IPv4 TCP ------------------------------------------------------------------

tap_check "TCP A->B:9000 allowed (out 100, in 100 established)" nt_tcp_try a b "$NT_B4" 9000
tap_check_not "TCP A->B:9001 dropped by 'out 50 deny' before 'out 100 allow'" \
	nt_tcp_try a b "$NT_B4" 9001
tap_check "TCP B->A:5000 allowed (in 110, out 110 established)" nt_tcp_try b a "$NT_A4" 5000
tap_check_not "TCP B->A:5001 dropped (implicit final deny)" nt_tcp_try b a "$NT_A4" 5001
tap_check_not "TCP B:9000->A:5002 dropped (SYN does not match 'established')" \
	nt_tcp_try b a "$NT_A4" 5002 9000 64 "$(nt_b_host 0)"

# ---- UDP -----------------------------------------------------------------------

tap_check "UDP A->B:5353 request/response allowed (out 200, in 200)" \
	nt_udp_try a b "$NT_B4" 5353 3
tap_check_not "UDP A->B:5354 dropped (implicit final deny)" nt_udp_try a b "$NT_B4" 5354 1
tap_check_not "UDP B->A:5353 dropped (in 200 wants source port 5353)" \
	nt_udp_try b a "$NT_A4" 5353 1

# ---- ICMP ----------------------------------------------------------------------

stats_json >"$STATS1"
tap_check "ping A->B allowed (out 300 icmp 8/0, in 300 icmp 0/0)" nt_ping a "$NT_B4" 3
stats_json >"$STATS0.ping"
d_out=$(($(pkts "$STATS0.ping" out 300) - $(pkts "$STATS1" out 300)))
d_in=$(($(pkts "$STATS0.ping" in 300) - $(pkts "$STATS1" in 300)))
tap_is "stats: out 300 counted exactly the 3 echo requests" "$d_out" 3
tap_is "stats: in 300 counted exactly the 3 echo replies" "$d_in" 3
tap_check_not "ping B->A dropped (no rule for echo requests in)" nt_ping b "$NT_A4" 1

# ---- IPv6 ----------------------------------------------------------------------

nt_in a ip -6 neigh flush dev "$IFA" >/dev/null 2>&1 || true
nt_in b ip -6 neigh flush dev "$NT_IF_B" >/dev/null 2>&1 || true
tap_check "TCP6 A->[fd00:2::1]:9000 allowed, ND passes with no ICMPv6 rule" \
	nt_tcp_try a b "$NT_B6" 9000
if nt_has lladdr nt_in a ip -6 neigh show "$NT_B6" dev "$IFA"; then
	tap_ok "A resolved B's IPv6 neighbour entry through the filter"
else
	tap_fail "A resolved B's IPv6 neighbour entry through the filter"
fi
tap_check "TCP6 B->[fd00:1::1]:5000 allowed (in 410, out 410)" nt_tcp_try b a "$NT_A6" 5000
tap_check_not "TCP6 A->[fd00:2::1]:9002 dropped (implicit final deny)" \
	nt_tcp_try a b "$NT_B6" 9002
tap_check_not "TCP6 B->[fd00:1::1]:5001 dropped (implicit final deny)" \
	nt_tcp_try b a "$NT_A6" 5001
tap_check_not "ping6 A->B dropped (ND passes, echo needs a rule)" nt_ping a "$NT_B6" 1

# ---- ARP -----------------------------------------------------------------------

nt_in a ip -4 neigh flush dev "$IFA" >/dev/null 2>&1 || true
nt_in b ip -4 neigh flush dev "$NT_IF_B" >/dev/null 2>&1 || true
stats_json >"$STATS1"
tap_check "TCP A->B:9000 after flushing ARP caches (ARP passes)" nt_tcp_try a b "$NT_B4" 9000
if nt_has lladdr nt_in a ip -4 neigh show "$NT_B4" dev "$IFA"; then
	tap_ok "A resolved B's MAC by ARP through the filter"
else
	tap_fail "A resolved B's MAC by ARP through the filter"
fi
stats_json >"$STATS0.arp"
non_ip_in=$(($(nt_dir_counter in non_ip <"$STATS0.arp") - $(nt_dir_counter in non_ip <"$STATS1")))
if [ "$non_ip_in" -gt 0 ]; then
	tap_ok "stats: in non_ip counter grew ($non_ip_in)"
else
	tap_fail "stats: in non_ip counter grew"
	tap_diag "$(cat "$STATS0.arp")"
fi

# ---- counters: every decision on the right rule ----------------------------

stats_json >"$STATS1"
for spec in "out 50" "out 100" "in 100" "in 110" "out 110" "out 200" "in 200" \
	"out 400" "in 400" "in 410" "out 410"; do
	read -r dir num <<<"$spec"
	n=$(pkts "$STATS1" "$dir" "$num")
	if [ "$n" -gt 0 ]; then
		tap_ok "stats --json: nacl $dir $num counted packets ($n)"
	else
		tap_fail "stats --json: nacl $dir $num counted packets"
	fi
done
for dir in in out; do
	n=$(nt_dir_counter "$dir" nacl_default_deny <"$STATS1")
	if [ "$n" -gt 0 ]; then
		tap_ok "stats --json: $dir default deny counted ($n)"
	else
		tap_fail "stats --json: $dir default deny counted"
	fi
done
if [ "$(pkts "$STATS1" in 300)" -ge 3 ] && [ "$(pkts "$STATS1" out 300)" -ge 3 ]; then
	tap_ok "stats --json: icmp rules counted"
else
	tap_fail "stats --json: icmp rules counted"
fi
if nt_has 'nacl +in +110' nt_moat stats "$IFA"; then
	tap_ok "moat stats (text) lists nacl in 110"
else
	tap_fail "moat stats (text) lists nacl in 110"
fi

# ---- trace agrees with the datapath and changes nothing --------------------

stats_json >"$STATS0"
tr=$(nt_moat trace "$IFA" in tcp 198.18.2.1:40000 to 198.18.1.1:5000 flags S --json 2>&1) || true
tap_is "trace in SYN to :5000 -> pass by nacl rule 110" \
	"$(nt_json 'd["verdict"], d["nacl"]["rule"], d["nacl"]["action"]' <<<"$tr" 2>&1)" \
	"('pass', 110, 'allow')"
tr=$(nt_moat trace "$IFA" in tcp 198.18.2.1:9000 to 198.18.1.1:5002 flags S --json 2>&1) || true
tap_is "trace in SYN from :9000 to :5002 -> drop, implicit deny (rule null)" \
	"$(nt_json 'd["verdict"], d["nacl"]["rule"]' <<<"$tr" 2>&1)" "('drop', None)"
tr=$(nt_moat trace "$IFA" out tcp 198.18.1.1:40000 to 198.18.2.1:9001 --json 2>&1) || true
tap_is "trace out SYN to :9001 -> drop by nacl rule 50 (deny)" \
	"$(nt_json 'd["verdict"], d["nacl"]["rule"], d["nacl"]["action"]' <<<"$tr" 2>&1)" \
	"('drop', 50, 'deny')"
stats_json >"$STATS1"
same=1
for spec in "in 110" "out 50"; do
	read -r dir num <<<"$spec"
	[ "$(pkts "$STATS0" "$dir" "$num")" = "$(pkts "$STATS1" "$dir" "$num")" ] || same=0
done
if [ "$same" = 1 ]; then
	tap_ok "trace changed no rule counter"
else
	tap_fail "trace changed no rule counter"
fi

# ---- detach ----------------------------------------------------------------------

out=$(nt_detach 2>&1) && rc=0 || rc=$?
tap_is "moat detach exits 0" "$rc" 0
[ "$rc" = 0 ] || tap_diag "$out"
tap_check_not "detach removed $PINS" test -e "$PINS"
tap_check "after detach: TCP B->A:5001 works again" nt_tcp_try b a "$NT_A4" 5001
tap_check "after detach: ping6 A->B works again" nt_ping a "$NT_B6" 1
st=$(nt_moat status --json 2>&1) || true
if [ "$(nt_json "any(v == '$IFA' for o in walk(d) for v in o.values())" <<<"$st" 2>&1)" = True ]; then
	tap_fail "moat status --json no longer names $IFA"
	tap_diag "$st"
else
	tap_ok "moat status --json no longer names $IFA"
fi

tap_done
