#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# crash_reload.sh - a `moat reload` killed at random points changes nothing,
# and concurrent reloads are serialised (TAP output). Issue 6, item 2.
#
# Two network namespaces joined by a veth (scripts/netns.sh); moat on A's
# side. Rule set A is small (TCP 5000 and ICMP in, all out); rule set B is
# 4,000 NACL rules plus a 50,000-prefix set file, so a reload to it takes
# long enough (about a second here) to be killed part-way.
#
#  1. KILLS times (default 30): with A in force, start `moat reload IFACE B`,
#     SIGKILL it after a random delay spread over the whole reload (0..300
#     ms at least; up to 1.1x the measured reload time), then check:
#       - the rules in force are whole: `moat stats --json` lists exactly
#         the rules of A or of B, and `moat trace` of two probes (a TCP SYN
#         to port 5000, a packet from the last prefix of B's set) gets the
#         verdict and deciding rule of that same set;
#       - a reload that exited 0 before the kill left B, a killed one A or B;
#       - bpffs holds exactly the pins it held after attach (nothing
#         half-written, no stray entries next to the interface's directory);
#       - no map is leaked: the pinned gen_* maps-of-maps hold exactly two
#         generations' inner maps (12 now), and no map named moat_* in the
#         system is held by nothing known (no process fd, no map-of-maps);
#       - a normal `moat reload` to B then to A succeeds (the idle
#         generation a killed reload left half-filled is rebuilt) and each
#         leaves its set whole.
#     Then: the moat_* maps attributable to the interface (its generations'
#     plus orphans) did not grow over the kills. The raw count of moat_*
#     maps in the system (`bpftool map show`) is printed too, but not
#     judged: other tests create and free moat maps at the same time.
#  2. The per-interface lock: while another process holds it, a reload
#     waits, and it completes once the lock is released.
#  3. PAR rounds (default 10): two reloads (A and B) started together on
#     the interface both succeed, report different generations (one ran
#     after the other, each filling the then idle generation), and the set
#     in force afterwards is whole and is the one of the reload that
#     reported the generation now live.
#  4. Real traffic agrees: ping B->A passes under A, is dropped under B.
#
# Environment: MOAT_CRASH_KILLS (30), MOAT_CRASH_PAR (10), MOAT_CRASH_SEED
# (random delays; fixed default so a run can be repeated).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/netns.sh
. "$REPO/scripts/netns.sh"

KILLS=${MOAT_CRASH_KILLS:-30}
PAR=${MOAT_CRASH_PAR:-10}
SEED=${MOAT_CRASH_SEED:-20240611}
RANDOM=$SEED

[ -x "$MOAT" ] || tap_bail "$MOAT not built (make moat)"
command -v bpftool >/dev/null || tap_bail "bpftool not found"

BG_PIDS=()
cr_cleanup() {
	local rc=$? p
	set +e # cleanup must run whole; nt_cleanup ends with the test's status
	for p in "${BG_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	[ -n "${NT_IF_A:-}" ] && rm -f "/run/moat/$NT_IF_A.lock"
	(exit "$rc")
	nt_cleanup
}
trap cr_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
nt_setup || tap_bail "namespace set-up failed"
# A private copy of the CLI: a rebuild of ./moat while this test runs (with
# other maps, say) must not change the moat under test half-way.
cp "$MOAT" "$NT_TMP/moat" || tap_bail "cannot copy $MOAT"
MOAT=$NT_TMP/moat

IFA=$NT_IF_A
PINS=$BPFFS_MOAT/$IFA
RA=$NT_TMP/A.rules
RB=$NT_TMP/B.rules
SIGA=$NT_TMP/A.sig
SIGB=$NT_TMP/B.sig
LOG=$NT_TMP/reload.log

cat >"$RA" <<'EOF'
# A: TCP 5000 and ICMP in, everything out.
nacl in  10 allow tcp dport 5000
nacl in  20 allow icmp
nacl out 10 allow all
EOF
printf '%s\n' "nacl in 10 allow" "nacl in 20 allow" "nacl out 10 allow" | sort >"$SIGA"

# B: 4,000 rules and a set of 50,000 prefixes (198.19.0.0 .. 198.19.195.79).
python3 - "$NT_TMP" "$RB" "$SIGB" <<'EOF'
import sys
tmp, rules, sig = sys.argv[1:4]
with open(tmp + "/big.set", "w") as f:
    f.write("# 50,000 host prefixes\n")
    for i in range(50000):
        f.write("198.19.%d.%d/32\n" % (i // 256, i % 256))
lines = ["set big file %s/big.set" % tmp,
         "nacl in 1000 deny tcp dport 5000",
         "nacl in 1001 deny all src @big"]
keys = ["nacl in 1000 deny", "nacl in 1001 deny"]
for i in range(3997):
    n = 1002 + i
    lines.append("nacl in %d allow tcp src 198.18.%d.%d/32 dport %d"
                 % (n, 100 + i // 256, i % 256, 10000 + i))
    keys.append("nacl in %d allow" % n)
lines.append("nacl out 1000 allow all")
keys.append("nacl out 1000 allow")
open(rules, "w").write("\n".join(lines) + "\n")
open(sig, "w").write("\n".join(sorted(keys)) + "\n")
EOF

# The pins an attached interface has (taken after attach, and checked to
# hold the ones CONTRACT §5 and the README name), and nothing else.
EXPECTED_PINS=""
moat_a() { timeout 60 nsenter --net="/run/netns/$NT_NS_A" "$MOAT" "$@"; }

# stats_set: A, B, or X (with what was seen on stderr).
stats_set() {
	local out sig
	out=$(moat_a stats "$IFA" --json 2>&1) || {
		echo "X"
		echo "moat stats failed: $out" >&2
		return 0
	}
	sig=$(python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
for r in sorted(d["rules"], key=lambda r: (r["stage"], r["dir"], r["number"])):
    print(r["stage"], r["dir"], r["number"], r["action"])
' <<<"$out" | sort) || sig="unparsable"
	if [ "$sig" = "$(cat "$SIGA")" ]; then
		echo A
	elif [ "$sig" = "$(cat "$SIGB")" ]; then
		echo B
	else
		echo X
		echo "stats lists $(wc -l <<<"$sig") rules, neither A's 3 nor B's 4000 exactly;" \
			"first: $(head -n 3 <<<"$sig" | tr '\n' ';')" >&2
	fi
}

# trace_set PACKET…: A or B by the verdict and rule of the traced packet.
#   tcp 198.18.2.1:40000 > 198.18.1.1:5000:   A pass by 10,     B drop by 1000
#   tcp 198.19.195.79:40000 > 198.18.1.1:10003: A drop by default, B drop by 1001
trace_sig() {
	local out
	out=$(moat_a trace "$IFA" in "$@" --json 2>&1) || {
		echo "trace failed: $out"
		return 0
	}
	python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
print(d["verdict"], d["nacl"]["rule"])
' <<<"$out" 2>/dev/null || echo "unparsable: $out"
}

# state: A or B when stats and both traces agree on one set; else X (what
# was seen: state_why).
state_why() { cat "$NT_TMP/state.why" 2>/dev/null || true; }
state() {
	local s t1 t2 err
	err=$NT_TMP/state.err
	s=$(stats_set 2>"$err")
	t1=$(trace_sig tcp 198.18.2.1:40000 to 198.18.1.1:5000)
	t2=$(trace_sig tcp 198.19.195.79:40000 to 198.18.1.1:10003)
	echo "stats: $s $(cat "$err"); trace port 5000: $t1; trace set probe: $t2" >"$NT_TMP/state.why"
	if [ "$s" = A ] && [ "$t1" = "pass 10" ] && [ "$t2" = "drop None" ]; then
		echo A
	elif [ "$s" = B ] && [ "$t1" = "drop 1000" ] && [ "$t2" = "drop 1001" ]; then
		echo B
	else
		echo X
	fi
}

pins_exact() {
	local got stray
	local f
	got=$(find "$PINS" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort)
	stray=""
	for f in "$BPFFS_MOAT"/*"$IFA"*; do
		[ -e "$f" ] && [ "$f" != "$PINS" ] && stray="$stray ${f##*/}"
	done
	if [ "$got" != "$EXPECTED_PINS" ]; then
		echo "pins in $PINS: $(tr '\n' ' ' <<<"$got")"
		return 1
	fi
	if [ -n "$stray" ]; then
		echo "stray entries in $BPFFS_MOAT: $stray"
		return 1
	fi
	return 0
}

# maps_report: "MINE ORPHANS TOTAL [orphan ids]" over the maps named moat_*
# (the inner maps of a generation) in the whole system:
#   MINE    inner maps held by this interface's pinned gen_* maps-of-maps;
#   ORPHANS moat_* maps held by nothing known: not by a process's file
#           descriptor (/proc/*/fdinfo), not by a program, not by any
#           map-of-maps (other moat instances, other tests);
#   TOTAL   every moat_* map (noisy: other tests run at the same time).
# A killed reload that left maps behind shows as MINE growing or as
# ORPHANS. The attribution is retried, and an orphan counted only if it is
# one in every try, so maps created and freed by others meanwhile do not
# count.
MAPS_PY='
import glob, json, subprocess, sys
pins = sys.argv[1]
def bt(*a):
    try:
        return json.loads(subprocess.run(["bpftool", "-j"] + list(a), capture_output=True,
                                         text=True, timeout=30).stdout or "null")
    except Exception:
        return None
def val_id(v):
    if isinstance(v, list):
        return int.from_bytes(bytes(int(x, 16) for x in v), "little")
    if isinstance(v, int):
        return v
    return 0
mine_outer = set()
for m in ("gen_lpm4", "gen_lpm6", "gen_l4", "gen_vecs", "gen_words", "gen_rules"):
    i = bt("map", "show", "pinned", pins + "/" + m)
    if isinstance(i, dict) and "id" in i:
        mine_outer.add(i["id"])
orphans = None
for attempt in range(3):
    maps = bt("map", "show")
    maps = [m for m in maps if isinstance(m, dict) and "id" in m] if isinstance(maps, list) else []
    moat = {m["id"] for m in maps if m.get("name", "").startswith("moat_")}
    held, mine, other = set(), set(), set()
    progs = bt("prog", "show")
    for p in progs if isinstance(progs, list) else []:
        if isinstance(p, dict):
            held.update(p.get("map_ids", []))
    for f in glob.glob("/proc/[0-9]*/fdinfo/*"):
        try:
            for line in open(f):
                if line.startswith("map_id:"):
                    held.add(int(line.split()[1]))
        except OSError:
            pass
    for m in maps:
        if m.get("type") not in ("array_of_maps", "hash_of_maps"):
            continue
        d = bt("map", "dump", "id", str(m["id"]))
        for e in d if isinstance(d, list) else []:
            v = val_id(e.get("value")) if isinstance(e, dict) else 0
            if v:
                (mine if m["id"] in mine_outer else other).add(v)
    now = moat - held - mine - other
    orphans = now if orphans is None else orphans & now
    if not orphans:
        break
orphans = {o for o in orphans if "id" in (bt("map", "show", "id", str(o)) or {})}
print(len(mine), len(orphans), len(moat), " ".join(str(o) for o in sorted(orphans)))
'
maps_report() { python3 -c "$MAPS_PY" "$PINS" 2>"$NT_TMP/maps.err" || echo "error: $(tail -n 1 "$NT_TMP/maps.err")"; }

sleep_ms() { sleep "$(awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }')"; }
now_ms() { date +%s%3N; }

# ---- attach and the two sets ------------------------------------------------

# B sizes the counter map at attach (room for 4,000 rules and a reload);
# attached with A, a reload to B would be refused for want of counter slots.
out=$(moat_a attach "$IFA" "$RB" 2>&1) && rc=0 || rc=$?
tap_is "moat attach $IFA with B (4,000 rules, 50,000-prefix set)" "$rc" 0
[ "$rc" = 0 ] || {
	tap_diag "$out"
	tap_done
	exit 1
}
st=$(state)
tap_is "B in force after attach (stats and traces agree)" "$st" B
[ "$st" = B ] || tap_diag "$(state_why)"
tap_check_not "ping B->A dropped under B" nt_ping b "$NT_A4" 1

# The time a reload to B takes, to spread the kills over all of it.
t0=$(now_ms)
out=$(moat_a reload "$IFA" "$RA" 2>&1) && rc=0 || rc=$?
tap_is "moat reload to A" "$rc" 0
[ "$rc" = 0 ] || tap_diag "$out"
t0=$(now_ms)
out=$(moat_a reload "$IFA" "$RB" 2>&1) && rc=0 || rc=$?
TB=$(($(now_ms) - t0))
tap_is "moat reload to B (took $TB ms)" "$rc" 0
[ "$rc" = 0 ] || tap_diag "$out"
out=$(moat_a reload "$IFA" "$RA" 2>&1) && rc=0 || rc=$?
st=$(state)
tap_is "A in force after reload to A" "$st" A
[ "$st" = A ] || tap_diag "$(state_why)"
tap_check "ping B->A passes under A" nt_ping b "$NT_A4" 2
EXPECTED_PINS=$(find "$PINS" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort)
missing=""
for p in rule_stats conntrack counters prog_xdp_ingress prog_tc_egress; do
	grep -qx "$p" <<<"$EXPECTED_PINS" || missing="$missing $p"
done
if [ -z "$missing" ]; then
	tap_ok "bpffs: $(wc -l <<<"$EXPECTED_PINS") pins after attach, the named ones among them"
else
	tap_fail "bpffs: pins after attach lack:$missing"
fi
tap_diag "pins: $(tr '\n' ' ' <<<"$EXPECTED_PINS")"
read -r MINE0 ORPH0 TOTAL0 _ <<<"$(maps_report)"
case "${MINE0:-x}" in
[1-9]*) ;;
*) MINE0=0 ;;
esac
if [ "$MINE0" -gt 0 ] && [ $((MINE0 % 2)) = 0 ] && [ "${ORPH0:-x}" = 0 ]; then
	tap_ok "pinned generations hold $MINE0 inner maps (two generations of $((MINE0 / 2))), no orphan moat_* map"
else
	tap_fail "pinned generations hold two generations of inner maps, no orphan moat_* map"
	tap_diag "report (mine orphans total ids): $(maps_report)"
fi

MAXMS=$((TB * 11 / 10))
[ "$MAXMS" -ge 300 ] || MAXMS=300
tap_diag "seed $SEED; kills spread over 0..$MAXMS ms; maps named moat_* in the system: ${TOTAL0:-?}"

# ---- 1. kill reloads at random points ---------------------------------------

n_killed_a=0
n_killed_b=0
n_finished=0
maxorph=0
for ((i = 1; i <= KILLS; i++)); do
	delay=$((RANDOM * 32768 + RANDOM))
	delay=$((delay % (MAXMS + 1)))
	problems=()
	nsenter --net="/run/netns/$NT_NS_A" "$MOAT" reload "$IFA" "$RB" >"$LOG" 2>&1 &
	pid=$!
	BG_PIDS=("$pid")
	sleep_ms "$delay"
	kill -KILL "$pid" 2>/dev/null || true
	rrc=0
	wait "$pid" 2>/dev/null || rrc=$?
	BG_PIDS=()
	kill -0 "$pid" 2>/dev/null && problems+=("the killed reload (pid $pid) is still running")
	st=$(state)
	case "$rrc:$st" in
	137:A) n_killed_a=$((n_killed_a + 1)) outcome="killed before the switch: A in force" ;;
	137:B) n_killed_b=$((n_killed_b + 1)) outcome="killed after the switch: B in force" ;;
	0:B) n_finished=$((n_finished + 1)) outcome="finished before the kill: B in force" ;;
	*)
		outcome="reload exit $rrc, set in force $st"
		problems+=("not whole or not as the exit status says: $(state_why); reload said: $(tr '
' ' ' <"$LOG")")
		;;
	esac
	pe=$(pins_exact) || problems+=("$pe")
	read -r mine orph _ oids <<<"$(maps_report)"
	[ "${mine:-x}" = "$MINE0" ] || problems+=("the pinned generations hold ${mine:-?} inner maps, not $MINE0")
	[ "${orph:-x}" = 0 ] || problems+=("${orph:-?} moat_* maps held by nothing known (ids: ${oids:-})")
	maxorph=$((${orph:-0} > maxorph ? ${orph:-0} : maxorph))
	# A normal reload rebuilds whatever the killed one left in the idle
	# generation: to B, then back to A for the next round.
	out=$(moat_a reload "$IFA" "$RB" 2>&1) || problems+=("the following reload to B failed: $out")
	st2=$(state)
	[ "$st2" = B ] || problems+=("after the following reload to B: $st2 ($(state_why))")
	out=$(moat_a reload "$IFA" "$RA" 2>&1) || problems+=("the reload back to A failed: $out")
	st3=$(state)
	[ "$st3" = A ] || problems+=("after the reload back to A: $st3 ($(state_why))")
	pe=$(pins_exact) || problems+=("after the reloads: $pe")
	desc="kill $i after $delay ms: $outcome; pins exact, $MINE0 inner maps, no orphan; reload B, reload A ok and whole"
	if [ "${#problems[@]}" = 0 ]; then
		tap_ok "$desc"
	else
		tap_fail "kill $i after $delay ms: $outcome"
		tap_diag "${problems[@]}"
	fi
done
tap_diag "kills: $n_killed_a before the switch (A whole), $n_killed_b after it (B whole)," \
	"$n_finished reloads finished before the kill"
if [ $((n_killed_a + n_killed_b)) -gt 0 ]; then
	tap_ok "at least one reload was killed part-way ($((n_killed_a + n_killed_b)) of $KILLS)"
else
	tap_fail "at least one reload was killed part-way (none was: the delays missed)"
fi

read -r MINE1 ORPH1 TOTAL1 _ <<<"$(maps_report)"
if [ $((${MINE1:-99} + ${ORPH1:-99})) -le $((${MINE0:-0} + ${ORPH0:-0})) ]; then
	tap_ok "moat_* maps of this interface did not grow: $MINE0+$ORPH0 before, $MINE1+$ORPH1 after $KILLS kills (held by its generations + orphans)"
else
	tap_fail "moat_* maps of this interface did not grow: $MINE0+$ORPH0 before, $MINE1+$ORPH1 after $KILLS kills (held by its generations + orphans)"
fi
tap_diag "maps named moat_* in the whole system: $TOTAL0 before, $TOTAL1 after (other tests" \
	"running at the same time create and free them too)"

# ---- 2. the lock ------------------------------------------------------------------

LOCKF=/run/moat/$IFA.lock
if [ -e "$LOCKF" ]; then
	timeout 20 flock -x "$LOCKF" sleep 2 &
	holder=$!
	BG_PIDS=("$holder")
	sleep 0.3
	t0=$(now_ms)
	nsenter --net="/run/netns/$NT_NS_A" timeout 60 "$MOAT" reload "$IFA" "$RA" >"$LOG" 2>&1 &
	pid=$!
	BG_PIDS+=("$pid")
	sleep 1
	if kill -0 "$pid" 2>/dev/null; then
		tap_ok "a reload waits while another process holds $LOCKF"
	else
		tap_fail "a reload waits while another process holds $LOCKF (it finished at once)"
		tap_diag "$(cat "$LOG")"
	fi
	rrc=0
	wait "$pid" || rrc=$?
	waited=$(($(now_ms) - t0))
	wait "$holder" 2>/dev/null || true
	BG_PIDS=()
	tap_is "... and completes once the lock is released (after $waited ms)" "$rrc" 0
else
	tap_fail "the per-interface lock file $LOCKF exists after attach and reloads"
fi

# ---- 3. concurrent reloads ----------------------------------------------------

par_bad=0
for ((r = 1; r <= PAR; r++)); do
	la=$NT_TMP/par-a.log
	lb=$NT_TMP/par-b.log
	stagger=$((RANDOM % 50))
	if ((r % 2)); then
		nsenter --net="/run/netns/$NT_NS_A" timeout 60 "$MOAT" reload "$IFA" "$RA" >"$la" 2>&1 &
		p1=$!
		sleep_ms "$stagger"
		nsenter --net="/run/netns/$NT_NS_A" timeout 60 "$MOAT" reload "$IFA" "$RB" >"$lb" 2>&1 &
		p2=$!
		pa=$p1 pb=$p2
	else
		nsenter --net="/run/netns/$NT_NS_A" timeout 60 "$MOAT" reload "$IFA" "$RB" >"$lb" 2>&1 &
		p1=$!
		sleep_ms "$stagger"
		nsenter --net="/run/netns/$NT_NS_A" timeout 60 "$MOAT" reload "$IFA" "$RA" >"$la" 2>&1 &
		p2=$!
		pa=$p2 pb=$p1
	fi
	BG_PIDS=("$p1" "$p2")
	ra=0 rb=0
	wait "$pa" || ra=$?
	wait "$pb" || rb=$?
	BG_PIDS=()
	ga=$(sed -n 's/.*(generation \([0-9]*\);.*/\1/p' "$la")
	gb=$(sed -n 's/.*(generation \([0-9]*\);.*/\1/p' "$lb")
	live=$(moat_a status "$IFA" --json 2>/dev/null | nt_json 'd["interfaces"][0]["generation"]' 2>/dev/null || echo "?")
	st=$(state)
	want="?"
	[ -n "$ga" ] && [ "$live" = "$ga" ] && want=A
	[ -n "$gb" ] && [ "$live" = "$gb" ] && want=B
	why=""
	[ "$ra" = 0 ] && [ "$rb" = 0 ] || why="exit status A $ra, B $rb"
	[ -n "$ga" ] && [ -n "$gb" ] && [ "$ga" != "$gb" ] ||
		why="$why; generations reported A '$ga' B '$gb' (the same: interleaved, not serialised)"
	[ "$st" = "$want" ] || why="$why; live generation $live, want set $want, in force $st ($(state_why))"
	if [ -n "$why" ]; then
		par_bad=$((par_bad + 1))
		tap_diag "round $r: $why" "A said: $(cat "$la")" "B said: $(cat "$lb")"
	fi
done
if [ "$par_bad" = 0 ]; then
	tap_ok "$PAR rounds of two concurrent reloads: both succeed, one after the other, the last one's set whole in force"
else
	tap_fail "$PAR rounds of two concurrent reloads: $par_bad rounds went wrong"
fi

# ---- 4. the end state works ---------------------------------------------------

out=$(moat_a reload "$IFA" "$RA" 2>&1) && rc=0 || rc=$?
tap_is "a final reload to A succeeds" "$rc" 0
st=$(state)
tap_is "A whole in force at the end" "$st" A
[ "$st" = A ] || tap_diag "$(state_why)"
tap_check "ping B->A passes under A at the end" nt_ping b "$NT_A4" 2
if pe=$(pins_exact); then
	tap_ok "bpffs: exactly the pins of attach at the end"
else
	tap_fail "bpffs: exactly the pins of attach at the end"
	tap_diag "$pe"
fi
out=$(moat_a detach "$IFA" 2>&1) && rc=0 || rc=$?
tap_is "moat detach" "$rc" 0
tap_check_not "pin directory gone after detach" test -e "$PINS"

tap_done
