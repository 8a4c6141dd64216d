#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# reload_traffic.sh - `moat reload` under traffic (TAP output).
#
# A 20 MiB TCP transfer from A to B:9000 keeps flowing while `moat reload`
# runs 200 times (MOAT_RELOADS), alternating two NACL rule files that both allow it but by
# different rules (file 1 by rules 100, file 2 by rules 200). The sender is
# paced by the reloads, so data is in flight from before the first until
# after the last. Checks: every reload exits 0; the content arrives intact
# (sha256); moat dropped no packet at all (both files also allow all IPv6, so
# the only traffic that could be dropped is the transfer's); every TCP
# retransmission was spurious (answered by a D-SACK: the receiver already had
# the segment, so nothing was lost anywhere); both rule sets' rules counted
# packets, and their counters survived the reloads (kept by stage, direction
# and number). Then a UDP stream B -> A:7777 runs while reloads alternate two
# sets that differ in one rule for it (set X denies it by rule 50, set Y's
# rule 50 is about another port, so Y allows it by rule 60; both sets have
# both numbers, so the counters carry over): every datagram must be counted
# by exactly one of
# those two rules, never by another rule or the final deny (a packet judged
# by a mix of the two sets would land elsewhere).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/netns.sh
. "$REPO/scripts/netns.sh"

RELOADS=${MOAT_RELOADS:-200}
SIZE_KB=$((20 * 1024))

[ -x "$MOAT" ] || tap_bail "$MOAT not built (make moat)"
nt_trap
nt_setup || tap_bail "namespace set-up failed"

IFA=$NT_IF_A
R1=$NT_TMP/one.rules
R2=$NT_TMP/two.rules

cat >"$R1" <<'EOF'
# Rule set 1: the transfer matches rules 100 (200 would, but comes later).
nacl out 100 allow tcp dst 198.18.2.0/24 dport 9000
nacl out 200 allow tcp dst 198.18.2.0/24 dport 9000-9001
nacl in  100 allow tcp src 198.18.2.0/24 sport 9000 dport 1024-65535
nacl in  200 allow tcp src 198.18.2.0/24 sport 9000-9001
# IPv6 (MLD and the like) passes, so any drop is the transfer's.
nacl out 300 allow all dst ::/0
nacl in  300 allow all src ::/0
EOF
cat >"$R2" <<'EOF'
# Rule set 2: rules 100 match another port; the transfer matches rules 200.
nacl out 100 allow tcp dst 198.18.2.0/24 dport 9001
nacl out 200 allow tcp dst 198.18.2.0/24 dport 9000-9001
nacl in  100 allow tcp src 198.18.2.0/24 sport 9001 dport 1024-65535
nacl in  200 allow tcp src 198.18.2.0/24 sport 9000-9001
nacl out 300 allow all dst ::/0
nacl in  300 allow all src ::/0
EOF

pkts() { nt_rule_packets nacl "$2" "$3" <"$1"; }
# nstat_get NS COUNTER: an absolute SNMP counter of namespace NS.
nstat_get() {
	local out
	out=$(nt_in "$1" nstat -az "$2" 2>/dev/null) || true
	awk -v c="$2" '$1 == c { print $2; found = 1 } END { if (!found) print 0 }' <<<"$out"
}
dropped() { nt_dir_counter "$2" dropped <"$1"; }

out=$(nt_attach "$R1" 2>&1) && rc=0 || rc=$?
tap_is "moat attach $IFA (rule set 1)" "$rc" 0
[ "$rc" = 0 ] || {
	tap_diag "$out"
	tap_done
	exit 1
}
tap_check "TCP A->B:9000 works under rule set 1" nt_tcp_try a b "$NT_B4" 9000

DATA=$NT_TMP/data
RECV=$NT_TMP/recv
PROGRESS=$NT_TMP/progress
echo 0 >"$PROGRESS"
nt_randfile "$DATA" "$SIZE_KB"

STATS0=$NT_TMP/stats0.json
nt_moat stats "$IFA" --json >"$STATS0" || tap_fail "moat stats --json before the transfer"
ra0=$(nstat_get a TcpRetransSegs)
ds0=$(nstat_get a TcpExtTCPDSACKRecvSegs)
rb0=$(nstat_get b TcpRetransSegs)

nt_tcp_server b "$NT_B4" 9000 "$RECV" 500 || tap_bail "receiver did not start"
rpid=$NT_LAST_PID
# Chunks at least twice as many as reloads, so the last one waits for the last reload.
CHUNK_KB=$((SIZE_KB / (2 * RELOADS)))
[ "$CHUNK_KB" -ge 16 ] || CHUNK_KB=16
nt_tcp_paced_send a "$NT_B4" 9000 "$DATA" "$PROGRESS" "$RELOADS" "$CHUNK_KB" &
spid=$!
NT_PIDS+=("$spid")

fails=0
alive=0
for i in $(seq 1 "$RELOADS"); do
	if [ $((i % 2)) = 1 ]; then f=$R2; else f=$R1; fi
	# The last chunks wait for this reload, so the sender must be running.
	if [ "$i" = "$RELOADS" ] && kill -0 "$spid" 2>/dev/null; then
		alive=1
	fi
	if ! out=$(nt_reload "$f" 2>&1); then
		fails=$((fails + 1))
		tap_diag "reload $i ($(basename "$f")) failed: $out"
	fi
	echo "$i" >"$PROGRESS"
	sleep 0.05
done
tap_is "$RELOADS reloads under traffic all exit 0" "$fails" 0
tap_is "the transfer was still running at the last reload" "$alive" 1

src=0
nt_reap "$spid" 120 || src=$?
tap_is "sender finished (exit 0)" "$src" 0
rrc=0
nt_reap "$rpid" 30 || rrc=$?
tap_is "receiver finished (exit 0)" "$rrc" 0
if [ -f "$PROGRESS.late" ]; then
	tap_fail "the sender's pacing followed the reloads"
	tap_diag "pacing: $(cat "$PROGRESS.late")"
else
	tap_ok "the sender's pacing followed the reloads (last chunk after the last reload)"
fi

want=$(sha256sum <"$DATA" | cut -d' ' -f1)
got=$(sha256sum <"$RECV" 2>/dev/null | cut -d' ' -f1 || true)
tap_is "all $SIZE_KB KiB arrived intact (sha256)" "$got" "$want"
tap_is "received size" "$(stat -c %s "$RECV" 2>/dev/null || echo 0)" "$((SIZE_KB * 1024))"

STATS=$NT_TMP/stats.json
if nt_moat stats "$IFA" --json >"$STATS"; then
	tap_ok "moat stats --json"
else
	tap_fail "moat stats --json"
fi
for dir in in out; do
	tap_is "moat dropped no $dir packet during the reloads" \
		"$(($(dropped "$STATS" "$dir") - $(dropped "$STATS0" "$dir")))" 0
done

# Reloads can delay an ACK past TCP's tail-loss-probe timer; such a
# retransmission is spurious and the receiver says so with a D-SACK. A
# retransmission without a D-SACK means a segment was really lost.
ra=$(($(nstat_get a TcpRetransSegs) - ra0))
ds=$(($(nstat_get a TcpExtTCPDSACKRecvSegs) - ds0))
rb=$(($(nstat_get b TcpRetransSegs) - rb0))
tap_diag "TCP retransmissions: A $ra (D-SACKed: $ds), B $rb"
if [ "$ra" -le "$ds" ]; then
	tap_ok "no segment lost: every retransmission by A was spurious ($ra retransmitted, $ds D-SACKed)"
else
	tap_fail "no segment lost: every retransmission by A was spurious ($ra retransmitted, $ds D-SACKed)"
fi
tap_is "no retransmission by B (its ACKs need none)" "$rb" 0
for spec in "out 100" "in 100" "out 200" "in 200"; do
	read -r dir num <<<"$spec"
	n=$(pkts "$STATS" "$dir" "$num")
	# 20 MiB in segments of at most 64 KiB (GSO) is over 300 segments; each
	# rule set carried about half of it.
	if [ "$n" -gt 10 ]; then
		tap_ok "nacl $dir $num counted packets across the reloads ($n)"
	else
		tap_fail "nacl $dir $num counted packets across the reloads ($n)"
	fi
done

tap_check "TCP A->B:9000 still works after the reloads" nt_tcp_try a b "$NT_B4" 9000

# ---- no packet judged by a mix ---------------------------------------------
RX=$NT_TMP/x.rules
RY=$NT_TMP/y.rules
cat >"$RX" <<'EOF'
nacl in  50 deny  udp src 198.18.2.0/24 dport 7777
nacl in  60 allow udp src 198.18.2.0/24 dport 7777
nacl in  70 allow udp src 198.18.2.0/24 dport 7000-7999
nacl in  300 allow all src ::/0
nacl out 100 allow all
EOF
cat >"$RY" <<'EOF'
nacl in  50 deny  udp src 198.18.2.0/24 dport 7778
nacl in  60 allow udp src 198.18.2.0/24 dport 7777
nacl in  70 deny  udp src 198.18.2.0/24 dport 7000-7999
nacl in  300 allow all src ::/0
nacl out 100 allow all
EOF
nt_reload "$RX" >/dev/null 2>&1 || tap_fail "reload to set X"
MIX0=$NT_TMP/mix0.json
nt_moat stats "$IFA" --json >"$MIX0"
UDP_STREAM_PY='
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
n = int(sys.argv[3])
gap = float(sys.argv[4]) / n
for i in range(n):
    s.sendto(b"m" * 64, (sys.argv[1], int(sys.argv[2])))
    time.sleep(gap)
print(n)
'
MIXN=5000
nt_bg b timeout 120 python3 -c "$UDP_STREAM_PY" "$NT_A4" 7777 "$MIXN" 15 >"$NT_TMP/mix.sent"
upid=$NT_LAST_PID
mixfails=0
i=0
while kill -0 "$upid" 2>/dev/null && [ "$i" -lt 400 ]; do
	i=$((i + 1))
	f=$RY
	[ $((i % 2)) = 0 ] && f=$RX
	nt_reload "$f" >/dev/null 2>&1 || mixfails=$((mixfails + 1))
done
nt_reap "$upid" 120 || true
sent=$(cat "$NT_TMP/mix.sent" 2>/dev/null || echo 0)
MIX=$NT_TMP/mix.json
nt_moat stats "$IFA" --json >"$MIX"
c50=$(pkts "$MIX" in 50)
c60=$(pkts "$MIX" in 60)
c70=$(($(pkts "$MIX" in 70) - $(pkts "$MIX0" in 70)))
dd=$(($(nt_dir_counter in nacl_default_deny <"$MIX") - $(nt_dir_counter in nacl_default_deny <"$MIX0")))
tap_diag "sent $sent datagrams over $i reloads: rule 50 (X, deny) $c50, rule 60 (Y, allow) $c60, rule 70 $c70, final deny $dd"
tap_is "reloads between sets X and Y all exit 0" "$mixfails" 0
tap_is "every datagram was judged by rule 50 of X or rule 60 of Y" "$((c50 + c60))" "$sent"
tap_check "both sets took turns" test "$c50" -gt 0 -a "$c60" -gt 0
tap_is "no datagram reached rule 70 (a mix of the two sets)" "$c70" 0
tap_is "no datagram fell to the final deny" "$dd" 0

tap_done
