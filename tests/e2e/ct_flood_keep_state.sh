#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# ct_flood_keep_state.sh - connection tracking under a flood, and kept across
# a re-attach (issue: reliability, items 3 and 4).
#
# 1. With `set conntrack max 4096` (so 1,024 half-open slots), B floods A with
#    40,960 TCP SYNs from spoofed sources in 198.19.0.0/16 that an SG rule
#    allows, while an established TCP transfer B -> A runs. The flood only
#    churns the half-open table; the transfer's entry is in the confirmed
#    table, so the transfer completes intact with no gap longer than one
#    retransmission timeout (1 s, Linux's initial RTO), and `moat stats` /
#    `moat status` show the churn (entries created, half-open table full).
# 2. `moat detach --keep-state` then `moat attach` keeps the pinned tables:
#    the entry of a connection opened before is still there, with its age.
#    A kept table from another layout (ABI version) is refused and said so.
#
# Traffic stays between the two namespaces this test creates (198.18.0.0/15);
# every traffic command is bounded by timeout; cleanup runs on exit.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/netns.sh"
nt_trap
nt_setup || tap_bail "cannot create the namespaces"

RULES=$NT_TMP/flood.rules
cat >"$RULES" <<R
sg in  allow tcp dport 7000 src 198.18.0.0/15
sg out allow all dst 198.18.0.0/15
set conntrack max 4096
R
nt_attach "$RULES" >/dev/null 2>&1 || tap_bail "attach failed"

# Receiver in A: counts bytes, hashes them, and reports the longest gap
# between two reads once the data has started.
RECV_PY='
import hashlib, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
s.settimeout(20)
c, _ = s.accept()
c.settimeout(15)
h = hashlib.sha256()
n = 0
gap = 0.0
last = None
while True:
    b = c.recv(65536)
    now = time.monotonic()
    if not b:
        break
    if last is not None:
        gap = max(gap, now - last)
    last = now
    h.update(b)
    n += len(b)
print(n, h.hexdigest(), "%.3f" % gap)
'
# Sender in B: 64 KiB every 10 ms for about 8 s (a steady, established flow).
SEND_PY='
import hashlib, socket, sys, time, random
rnd = random.Random(7)
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
h = hashlib.sha256()
n = 0
end = time.monotonic() + 8
while time.monotonic() < end:
    b = bytes(rnd.getrandbits(8) for _ in range(4096)) * 16
    s.sendall(b)
    h.update(b)
    n += len(b)
    time.sleep(0.01)
s.close()
print(n, h.hexdigest())
'
# Flood from B: TCP SYNs from random sources in 198.19.0.0/16 to A:7000, sent
# raw (no checksum: A's stack drops them after moat has judged them).
FLOOD_PY='
import random, socket, struct, sys, time
dst = socket.inet_aton(sys.argv[1])
count = int(sys.argv[2])
rnd = random.Random(1)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
sent = 0
deadline = time.monotonic() + 20
while sent < count and time.monotonic() < deadline:
    src = bytes([198, 19, rnd.randrange(256), rnd.randrange(1, 255)])
    sport = rnd.randrange(1024, 65536)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, 6, 0, src, dst)
    tcp = struct.pack("!HHIIBBHHH", sport, 7000, rnd.getrandbits(32), 0, 0x50, 0x02, 65535, 0, 0)
    try:
        s.sendto(ip + tcp, (sys.argv[1], 0))
        sent += 1
    except OSError:
        time.sleep(0.001)
print(sent)
'
# The spoofed sources must be on-link for B to send them: give B a route.
nt_in b ip route add 198.19.0.0/16 dev "$NT_IF_B" 2>/dev/null || true

OUT=$NT_TMP/recv.out
nt_bg a timeout 40 python3 -c "$RECV_PY" "$NT_A4" 7000 >"$OUT"
RPID=$NT_LAST_PID
nt_wait_listen a tcp 7000 || tap_bail "receiver did not start"
SENT=$NT_TMP/send.out
nt_bg b timeout 30 python3 -c "$SEND_PY" "$NT_A4" 7000 >"$SENT"
SPID=$NT_LAST_PID
sleep 1
FLOODED=$(nt_in b timeout 30 python3 -c "$FLOOD_PY" "$NT_A4" 40960)
tap_is "the flood sent 10x the table size of new flows" "$FLOODED" 40960
STATUS=$(nt_moat status "$NT_IF_A" --json)
nt_reap "$SPID" 30 || true
nt_reap "$RPID" 30 || true

read -r sent_n sent_h <"$SENT" || true
read -r got_n got_h gap <"$OUT" || true
tap_diag "sent $sent_n bytes, received $got_n, longest gap ${gap}s"
tap_is "the established transfer arrived whole during the flood" "$got_h" "$sent_h"
tap_check "no stall longer than one retransmission timeout (1 s)" \
	python3 -c "import sys; sys.exit(0 if float('${gap:-99}') < 1.0 else 1)"

STATS=$(nt_moat stats "$NT_IF_A" --json)
created=$(nt_dir_counter in ct_created <<<"$STATS")
promoted=$(nt_dir_counter in ct_promoted <<<"$STATS")
tap_diag "ct_created(in)=$created ct_promoted(in)=$promoted"
tap_check "moat stats counts the flood's entries" test "$created" -ge 40000
pend=$(nt_json 'd["interfaces"][0]["conntrack"]["pending"]' <<<"$STATUS")
pmax=$(nt_json 'd["interfaces"][0]["conntrack"]["pending_max"]' <<<"$STATUS")
est=$(nt_json 'd["interfaces"][0]["conntrack"]["entries"]' <<<"$STATUS")
tap_diag "during the flood: half-open $pend / $pmax, established $est"
tap_check "moat status shows the half-open table filled by the flood" \
	test "$pend" -ge $((pmax * 3 / 4))
tap_check "the established table kept few entries" test "$est" -lt 100

# ---- 2. keep-state ----------------------------------------------------------

nt_moat ct flush "$NT_IF_A" >/dev/null
# A connection that stays open across the re-attach: B -> A:7000, idle.
HOLD_PY='
import socket, sys, time
s = socket.create_connection((sys.argv[1], 7000), timeout=5)
s.sendall(b"x")
time.sleep(float(sys.argv[2]))
'
LISTEN_PY='
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7000))
s.listen(1)
s.settimeout(20)
c, _ = s.accept()
c.settimeout(20)
while c.recv(100):
    pass
'
nt_bg a timeout 30 python3 -c "$LISTEN_PY" "$NT_A4"
LPID=$NT_LAST_PID
nt_wait_listen a tcp 7000 || tap_bail "listener did not start"
nt_bg b timeout 30 python3 -c "$HOLD_PY" "$NT_A4" 20
HPID=$NT_LAST_PID
sleep 2
flows() { nt_moat ct list "$NT_IF_A" --json | nt_json \
	'[e for e in d["entries"] if e["proto"] == "tcp" and e["dst"].endswith(":7000")]'; }
before=$(flows)
tap_check "the held connection is tracked" test "$(nt_json 'len(d)' <<<"$before")" = 1

nt_moat detach "$NT_IF_A" --keep-state >/dev/null
tap_check "detach --keep-state keeps the connection tables pinned" \
	test -e "$BPFFS_MOAT/$NT_IF_A/conntrack" -a -e "$BPFFS_MOAT/$NT_IF_A/ct_pending"
tap_check "detach --keep-state removes the programs' pins" \
	test ! -e "$BPFFS_MOAT/$NT_IF_A/prog_xdp_ingress"
nt_attach "$RULES" >/dev/null 2>&1 || tap_fail "re-attach failed"
after=$(flows)
tap_check "the entry survived the re-attach" test "$(nt_json 'len(d)' <<<"$after")" = 1
age=$(nt_json 'd[0]["age_s"]' <<<"$after")
tap_check "with its age (created before the detach)" \
	python3 -c "import sys; sys.exit(0 if float('$age') >= 2 else 1)"

# A layout change is detected, not misread: mark the kept tables as written
# by another ABI version and attach again.
nt_moat detach "$NT_IF_A" --keep-state >/dev/null
bpftool map update pinned "$BPFFS_MOAT/$NT_IF_A/meta" key 0 0 0 0 value hex \
	63 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
MSG=$(nt_attach "$RULES" 2>&1 || true)
tap_check "a kept table of another layout is refused, and said so" \
	grep -q "another table layout" <<<"$MSG"
tap_check "so the old entries are not misread" \
	test "$(nt_json 'len(d)' <<<"$(flows)")" = 0
nt_reap "$HPID" 0 || true
nt_reap "$LPID" 0 || true
tap_done
