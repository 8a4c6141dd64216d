#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# sg_basic.sh - end-to-end test of the stateful SG stage with real traffic
# (TAP output).
#
# moat on A's side with only `sg out` rules (all destinations) and no `sg in`
# rule. Checks, over IPv4 and IPv6: connections A opens work (TCP, UDP
# request/response and a stream of datagrams, ping), replies passing by
# connection tracking; unsolicited inbound SYN, ACK (nmap -sA, also from source
# port 9000), UDP and ping are dropped, and counted; a paced TCP transfer
# survives reloads, one of which removes the rule that allowed it, while a new
# connection under that rule set fails; `moat ct list --json` shows a held
# connection, `moat trace` sees it as conntrack, and `moat ct flush` removes
# it. Each unsolicited probe is first shown to work without moat.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/netns.sh
. "$REPO/scripts/netns.sh"

[ -x "$MOAT" ] || tap_bail "$MOAT not built (make moat)"
nt_trap
nt_setup || tap_bail "namespace set-up failed"

IFA=$NT_IF_A
SG1=$NT_TMP/sg.rules
SG2=$NT_TMP/sg-no-tcp.rules
cat >"$SG1" <<'EOF'
# Cloud default: all outbound, nothing inbound.
sg out allow all dst 0.0.0.0/0
sg out allow all dst ::/0
EOF
cat >"$SG2" <<'EOF'
# The TCP rule is gone: only DNS-like UDP and ping may be opened.
sg out allow udp dst 198.18.2.0/24 dport 5353
sg out allow icmp dst 0.0.0.0/0
EOF

stats_json() { nt_moat stats "$IFA" --json; }

# ct_entry ADDR1 ADDR2 PORT < ct.json: the smallest JSON object that mentions
# both addresses and the port (one entry, whatever its field names); empty if
# there is none. Tokens match whole values ("ADDR:PORT" strings count as both
# parts; integers as their digits), never digits inside a float.
ct_entry() {
	python3 -c '
import json, sys
toks = sys.argv[1:]
def values(o, out):
    if isinstance(o, dict):
        o = list(o.values())
    if isinstance(o, list):
        for v in o:
            values(v, out)
    elif isinstance(o, str):
        out.add(o)
        host, _, port = o.rpartition(":")
        if host and port.isdigit():
            out.update((host.strip("[]"), port))
    elif isinstance(o, int) and not isinstance(o, bool):
        out.add(str(o))
    return out
def has(o):
    return set(toks) <= values(o, set())
def smallest(x):
    kids = list(x.values()) if isinstance(x, dict) else x if isinstance(x, list) else []
    for k in kids:
        if isinstance(k, (dict, list)) and has(k):
            r = smallest(k)
            if r is not None:
                return r
    return x if isinstance(x, dict) and has(x) else None
d = json.load(sys.stdin)
r = smallest(d) if has(d) else None
print(json.dumps(r) if r is not None else "")
' "$@"
}

# ---- without moat: the probes that must later fail do work -----------------

tap_check "baseline: TCP B->A:5000 works without moat" nt_tcp_try b a "$NT_A4" 5000
tap_check "baseline: UDP B->A:5353 works without moat" nt_udp_try b a "$NT_A4" 5353 1
tap_is "baseline: nmap -sA from B sees A:5000 unfiltered" \
	"$(nt_nmap_state b "$NT_A4" 5000)" unfiltered

# ---- attach -------------------------------------------------------------------------

out=$(nt_attach "$SG1" 2>&1) && rc=0 || rc=$?
tap_is "moat attach $IFA (sg out only)" "$rc" 0
[ "$rc" = 0 ] || {
	tap_diag "$out"
	tap_done
	exit 1
}

# ---- outbound-initiated traffic works with no inbound rule --------------------

for fam in 4 6; do
	if [ "$fam" = 4 ]; then b=$NT_B4 a_=$NT_A4; else b=$NT_B6 a_=$NT_A6; fi
	tap_check "IPv$fam: TCP A->B:9000 works (replies by conntrack)" nt_tcp_try a b "$b" 9000
	tap_check "IPv$fam: UDP A->B:5353 request/response works" nt_udp_try a b "$b" 5353 3
	tap_check "IPv$fam: UDP stream A->B:5400, 50 datagrams each way" nt_udp_try a b "$b" 5400 50
	tap_check "IPv$fam: ping A->B works" nt_ping a "$b" 2

	tap_check_not "IPv$fam: unsolicited TCP SYN B->A:5000 dropped" nt_tcp_try b a "$a_" 5000
	tap_check_not "IPv$fam: unsolicited TCP SYN B:9000->A:5000 dropped" \
		nt_tcp_try b a "$a_" 5000 9000 64 "$(nt_b_host "$fam" "$fam")"
	tap_check_not "IPv$fam: unsolicited UDP B->A:5353 dropped" nt_udp_try b a "$a_" 5353 1
	tap_check_not "IPv$fam: unsolicited ping B->A dropped" nt_ping b "$a_" 1
	scan=$(nt_nmap_ack b "$a_" 5000,5001 | awk '{ printf "%s ", $2 }')
	tap_is "IPv$fam: nmap -sA from B: A:5000,5001 filtered" "$scan" "filtered filtered "
	scan=$(nt_nmap_ack b "$a_" 5000,5001 9000 | awk '{ printf "%s ", $2 }')
	tap_is "IPv$fam: nmap -sA -g 9000 from B: A:5000,5001 filtered" "$scan" "filtered filtered "
done

STATS=$NT_TMP/stats.json
stats_json >"$STATS" || tap_fail "moat stats --json"
for c in "in sg_no_rule" "out ct_created" "in ct_hit"; do
	read -r dir name <<<"$c"
	n=$(nt_dir_counter "$dir" "$name" <"$STATS")
	if [ "$n" -gt 0 ]; then
		tap_ok "stats --json: $dir $name counted ($n)"
	else
		tap_fail "stats --json: $dir $name counted"
	fi
done
n=0
for num in 0 1 2; do
	n=$((n + $(nt_rule_packets sg out "$num" <"$STATS")))
done
if [ "$n" -gt 0 ]; then
	tap_ok "stats --json: sg out rules counted ($n)"
else
	tap_fail "stats --json: sg out rules counted"
	tap_diag "$(cat "$STATS")"
fi

# ---- ct list / trace / ct flush on a held connection --------------------------

HOLD_OUT=$NT_TMP/hold.out
nt_tcp_server b "$NT_B4" 9100 "$HOLD_OUT" 60 || tap_bail "hold server did not start"
hold_srv=$NT_LAST_PID
nt_bg a timeout 40 socat -u SYSTEM:"sleep 30" "TCP4:$NT_B4:9100,connect-timeout=3"
hold_cli=$NT_LAST_PID
cport=""
for _ in $(seq 1 50); do
	cport=$(nt_in a ss -Htn state established "dport = :9100" 2>/dev/null |
		awk 'NR == 1 { n = split($3, p, ":"); print p[n] }')
	[ -n "$cport" ] && break
	sleep 0.1
done
if [ -n "$cport" ]; then
	tap_ok "held connection A:$cport -> B:9100 established"
else
	tap_fail "held connection A -> B:9100 established"
fi

ct=$(nt_moat ct list "$IFA" --json 2>&1) || true
entry=$(ct_entry "$NT_A4" "$NT_B4" 9100 <<<"$ct" 2>/dev/null || true)
if [ -n "$entry" ]; then
	tap_ok "ct list --json shows the held connection"
	tap_diag "$entry"
	if grep -qi established <<<"$entry"; then
		tap_ok "its state is established"
	else
		tap_fail "its state is established"
	fi
else
	tap_fail "ct list --json shows the held connection"
	tap_diag "$ct"
	tap_fail "its state is established"
fi
if nt_has 9100 nt_moat ct list "$IFA"; then
	tap_ok "ct list (text) shows the held connection"
else
	tap_fail "ct list (text) shows the held connection"
fi

if [ -n "$cport" ]; then
	tr=$(nt_moat trace "$IFA" in tcp "$NT_B4:9100" to "$NT_A4:$cport" flags A --json 2>&1) || true
	tap_is "trace: B's ACK on the held connection passes by conntrack" \
		"$(nt_json 'd["verdict"], d["sg"]["by"]' <<<"$tr" 2>&1)" "('pass', 'conntrack')"
fi
tr=$(nt_moat trace "$IFA" in tcp "$NT_B4:9100" to "$NT_A4:40999" flags A --json 2>&1) || true
tap_is "trace: an unsolicited ACK is dropped, sg.by none" \
	"$(nt_json 'd["verdict"], d["sg"]["by"]' <<<"$tr" 2>&1)" "('drop', 'none')"
# trace creates no entry: the traced unsolicited flow must not appear.
ct=$(nt_moat ct list "$IFA" --json 2>&1) || true
if [ -z "$(ct_entry "$NT_A4" "$NT_B4" 40999 <<<"$ct" 2>/dev/null)" ]; then
	tap_ok "trace created no conntrack entry"
else
	tap_fail "trace created no conntrack entry"
fi

out=$(nt_moat ct flush "$IFA" 2>&1) && rc=0 || rc=$?
tap_is "moat ct flush exits 0" "$rc" 0
[ "$rc" = 0 ] || tap_diag "$out"
ct=$(nt_moat ct list "$IFA" --json 2>&1) || true
if [ -z "$(ct_entry "$NT_A4" "$NT_B4" 9100 <<<"$ct" 2>/dev/null)" ]; then
	tap_ok "after flush, ct list no longer shows the held connection"
else
	tap_fail "after flush, ct list no longer shows the held connection"
	tap_diag "$ct"
fi
if [ -n "$cport" ]; then
	tr=$(nt_moat trace "$IFA" in tcp "$NT_B4:9100" to "$NT_A4:$cport" flags A --json 2>&1) || true
	tap_is "trace after flush: B's ACK on the held connection is dropped" \
		"$(nt_json 'd["verdict"], d["sg"]["by"]' <<<"$tr" 2>&1)" "('drop', 'none')"
fi
nt_reap "$hold_cli" 0 || true
nt_reap "$hold_srv" 0 || true

# ---- a transfer survives reloads, one removing its rule ------------------------

DATA=$NT_TMP/data
RECV=$NT_TMP/recv
PROGRESS=$NT_TMP/progress
echo 0 >"$PROGRESS"
nt_randfile "$DATA" $((8 * 1024))
nt_tcp_server b "$NT_B4" 9200 "$RECV" 120 || tap_bail "receiver did not start"
rpid=$NT_LAST_PID
nt_tcp_paced_send a "$NT_B4" 9200 "$DATA" "$PROGRESS" 3 64 &
spid=$!
NT_PIDS+=("$spid")

# 1: same rules; 2: the TCP rule removed (and a new connection must fail);
# 3: reload the rule-less set again. The last chunks leave after step 3.
sleep 0.3
r1=0 r2=0 r3=0
nt_reload "$SG1" >/dev/null 2>&1 || r1=$?
echo 1 >"$PROGRESS"
sleep 0.3
nt_reload "$SG2" >/dev/null 2>&1 || r2=$?
echo 2 >"$PROGRESS"
sleep 0.3
tap_check_not "with the TCP rule removed, a new TCP A->B:9000 fails" \
	nt_tcp_try a b "$NT_B4" 9000
nt_reload "$SG2" >/dev/null 2>&1 || r3=$?
sleep 0.3
echo 3 >"$PROGRESS"
tap_is "three reloads under traffic exit 0" "$r1 $r2 $r3" "0 0 0"
src=0
nt_reap "$spid" 60 || src=$?
rrc=0
nt_reap "$rpid" 30 || rrc=$?
tap_is "sender and receiver finished" "$src $rrc" "0 0"
want=$(sha256sum <"$DATA" | cut -d' ' -f1)
got=$(sha256sum <"$RECV" 2>/dev/null | cut -d' ' -f1 || true)
tap_is "the transfer survived the reload that removed its rule (sha256)" "$got" "$want"
tap_check "under the rule-less set, UDP A->B:5353 still works" nt_udp_try a b "$NT_B4" 5353 2

# ---- an untracked flow creates no entry, in either direction ------------------
# TCP :7000 from everywhere in, everything out: the inbound rule is untracked,
# and the replies, allowed by the outbound rule, belong to the same flow.

SG3=$NT_TMP/sg-untracked.rules
cat >"$SG3" <<'EOF2'
sg in allow tcp dport 7000 src 0.0.0.0/0
sg out allow all dst 0.0.0.0/0
EOF2
nt_moat ct flush "$IFA" >/dev/null 2>&1 || true
rc=0
nt_reload "$SG3" >/dev/null 2>&1 || rc=$?
tap_is "reload to an untracked inbound rule exits 0" "$rc" 0
stats_json >"$STATS" || true
u_in0=$(nt_dir_counter in ct_untracked <"$STATS")
u_out0=$(nt_dir_counter out ct_untracked <"$STATS")
tap_check "untracked: TCP B->A:7000 works" nt_tcp_try b a "$NT_A4" 7000
stats_json >"$STATS" || true
u_in=$(($(nt_dir_counter in ct_untracked <"$STATS") - u_in0))
u_out=$(($(nt_dir_counter out ct_untracked <"$STATS") - u_out0))
if [ "$u_in" -gt 0 ] && [ "$u_out" -gt 0 ]; then
	tap_ok "untracked: counted both ways (in $u_in, out $u_out)"
else
	tap_fail "untracked: counted both ways (in $u_in, out $u_out)"
fi
ct=$(nt_moat ct list "$IFA" --json 2>&1) || true
if [ -z "$(ct_entry "$NT_A4" "$NT_B4" 7000 <<<"$ct")" ]; then
	tap_ok "untracked: no connection entry for B->A:7000 or its replies"
else
	tap_fail "untracked: no connection entry for B->A:7000 or its replies"
	tap_diag "$ct"
fi

out=$(nt_detach 2>&1) && rc=0 || rc=$?
tap_is "moat detach exits 0" "$rc" 0
tap_check_not "detach removed the pins" test -e "$BPFFS_MOAT/$IFA"

tap_done
