# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# netns.sh - network-namespace plumbing and traffic helpers for moat's demo
# and end-to-end tests. Source it; it defines functions and variables only.
#
# Topology (one veth pair, two namespaces, unique per process):
#
#   netns A  "client subnet"                 netns B  "server subnet"
#   NT_IF_A  198.18.1.1/24  fd00:1::1/64 ---- NT_IF_B  198.18.2.1/24  fd00:2::1/64
#                                                      198.18.2.9/24  fd00:2::9/64
#                                                      198.18.2.10-19 fd00:2::10-19
#
# Each side routes the other's /24 (/64) straight onto the link, so A and B talk
# directly (ARP / ND on the veth, no router). B's other addresses are "other
# hosts in B" (the one that binds source port 9000 in the demo). A client that
# binds a fixed source port leaves a TIME_WAIT behind, and the same 4-tuple
# cannot connect again for a minute (EADDRNOTAVAIL, which would look like a
# block): use a fresh source address (nt_b_host N) for each such probe.
# moat is attached on NT_IF_A: `in` = what A receives, `out` = what A sends.
#
# Rules this helper keeps:
# - traffic only between the two namespaces it creates; addresses only from
#   198.18.0.0/15 and fd00::/8;
# - every traffic command is bounded by `timeout`;
# - nt_cleanup (installed by the caller with `trap nt_cleanup EXIT`) kills the
#   background processes started here, detaches moat, removes its pins and
#   deletes both namespaces, also after a failure.
#
# moat runs in A's network namespace through `nsenter --net=…`, not
# `ip netns exec`: the latter gives the command a private mount namespace with
# a fresh sysfs, in which /sys/fs/bpf is not bpffs, so moat's pins would not be
# in the global /sys/fs/bpf/moat/IFACE/ that tests and bpftool read.
#
# Also: TAP helpers (tap_ok, tap_fail, tap_check, tap_done) and small JSON
# helpers on python3.

NT_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MOAT=${MOAT:-$NT_REPO/moat}
BPFFS_MOAT=${BPFFS_MOAT:-/sys/fs/bpf/moat}

NT_A4=198.18.1.1
NT_B4=198.18.2.1
NT_B4_ALT=198.18.2.9
NT_A6=fd00:1::1
NT_B6=fd00:2::1
NT_B6_ALT=fd00:2::9

NT_NS_A=""
NT_NS_B=""
NT_IF_A=""
NT_IF_B=""
NT_TMP=""
NT_PIDS=()
NT_LAST_PID=""

nt_log() { printf '# %s\n' "$*" >&2; }

# nt_has PATTERN CMD…: CMD's output matches PATTERN (grep -E). The output is
# read whole first: `CMD | grep -q` under pipefail fails when grep exits early
# and CMD dies of SIGPIPE.
nt_has() {
	local pat=$1 out
	shift
	out=$("$@" 2>/dev/null) || true
	grep -Eq -- "$pat" <<<"$out"
}

# nt_require_root: the helpers need root (netns, veth, BPF).
nt_require_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "error: must run as root (network namespaces, veth, BPF)" >&2
		return 1
	fi
	if ! grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
		echo "error: bpffs is not mounted on /sys/fs/bpf (run scripts/install-deps.sh)" >&2
		return 1
	fi
}

# nt_setup: create both namespaces and the veth pair; sets NT_NS_*, NT_IF_*,
# NT_TMP. Names carry the caller's PID so parallel runs do not collide
# (interface names also key moat's pins, which are global).
nt_setup() {
	nt_require_root || return 1
	local id=$$
	NT_NS_A="moat-t-$id-a"
	NT_NS_B="moat-t-$id-b"
	NT_IF_A="mA$id"
	NT_IF_B="mB$id"
	NT_TMP=$(mktemp -d "/tmp/moat-t-$id.XXXXXX")

	ip netns add "$NT_NS_A"
	ip netns add "$NT_NS_B"
	ip link add "$NT_IF_A" netns "$NT_NS_A" type veth peer name "$NT_IF_B" netns "$NT_NS_B"

	local ns ifc
	for ns in "$NT_NS_A" "$NT_NS_B"; do
		ip -n "$ns" link set lo up
		# No DAD (addresses usable at once); no router solicitations.
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
			net.ipv6.conf.default.accept_dad=0 \
			net.ipv6.conf.all.router_solicitations=0 \
			net.ipv6.conf.default.router_solicitations=0
	done

	ifc=$NT_IF_A
	ip -n "$NT_NS_A" addr add "$NT_A4/24" dev "$ifc"
	ip -n "$NT_NS_A" addr add "$NT_A6/64" dev "$ifc" nodad
	ip -n "$NT_NS_A" link set "$ifc" up
	ip -n "$NT_NS_A" route add 198.18.2.0/24 dev "$ifc"
	ip -n "$NT_NS_A" -6 route add fd00:2::/64 dev "$ifc"

	ifc=$NT_IF_B
	ip -n "$NT_NS_B" addr add "$NT_B4/24" dev "$ifc"
	ip -n "$NT_NS_B" addr add "$NT_B4_ALT/24" dev "$ifc"
	ip -n "$NT_NS_B" addr add "$NT_B6/64" dev "$ifc" nodad
	ip -n "$NT_NS_B" addr add "$NT_B6_ALT/64" dev "$ifc" nodad
	local h
	for h in $(seq 10 19); do
		ip -n "$NT_NS_B" addr add "198.18.2.$h/24" dev "$ifc"
		ip -n "$NT_NS_B" addr add "fd00:2::$h/64" dev "$ifc" nodad
	done
	ip -n "$NT_NS_B" link set "$ifc" up
	ip -n "$NT_NS_B" route add 198.18.1.0/24 dev "$ifc"
	ip -n "$NT_NS_B" -6 route add fd00:1::/64 dev "$ifc"

	# GRO on both ends (see MACHINE-NOTES: veth and XDP).
	ip netns exec "$NT_NS_A" ethtool -K "$NT_IF_A" gro on >/dev/null 2>&1 || true
	ip netns exec "$NT_NS_B" ethtool -K "$NT_IF_B" gro on >/dev/null 2>&1 || true

	# Wait (bounded) for the link-local addresses the ND exchange uses.
	local i
	for i in $(seq 1 50); do
		if nt_has inet6 ip -n "$NT_NS_A" -6 addr show dev "$NT_IF_A" scope link &&
			nt_has inet6 ip -n "$NT_NS_B" -6 addr show dev "$NT_IF_B" scope link &&
			! nt_has inet6 ip -n "$NT_NS_A" -6 addr show tentative &&
			! nt_has inet6 ip -n "$NT_NS_B" -6 addr show tentative; then
			break
		fi
		sleep 0.1
	done
	return 0
}

# nt_b_host N [6]: the address of "host N" (0-9) in B, IPv4 or IPv6.
nt_b_host() {
	if [ "${2:-4}" = 6 ]; then
		echo "fd00:2::$((10 + $1))"
	else
		echo "198.18.2.$((10 + $1))"
	fi
}

# nt_cleanup: idempotent; safe as an EXIT trap, also half-way through nt_setup.
nt_cleanup() {
	local rc=$? pid
	set +e
	for pid in "${NT_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${NT_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	NT_PIDS=()
	if [ -n "$NT_IF_A" ]; then
		if [ -d "$BPFFS_MOAT/$NT_IF_A" ] && [ -x "$MOAT" ] && [ -e "/run/netns/$NT_NS_A" ]; then
			timeout 30 nsenter --net="/run/netns/$NT_NS_A" "$MOAT" detach "$NT_IF_A" >/dev/null 2>&1
		fi
		# Unpinning drops the links, so the programs go even if detach failed.
		[ -d "$BPFFS_MOAT/$NT_IF_A" ] && rm -rf "${BPFFS_MOAT:?}/$NT_IF_A"
	fi
	[ -n "$NT_NS_A" ] && ip netns del "$NT_NS_A" 2>/dev/null
	[ -n "$NT_NS_B" ] && ip netns del "$NT_NS_B" 2>/dev/null
	[ -n "$NT_TMP" ] && [ -d "$NT_TMP" ] && rm -rf "$NT_TMP"
	NT_NS_A="" NT_NS_B="" NT_IF_A="" NT_IF_B="" NT_TMP=""
	return "$rc"
}

# nt_trap: install cleanup on exit and turn INT/TERM into an exit (so the EXIT
# trap runs when a runner's timeout signals the script).
nt_trap() {
	trap nt_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# nt_in NS CMD…: run a command in namespace NS ("a", "b" or a full name).
nt_ns() {
	case "$1" in
	a | A) echo "$NT_NS_A" ;;
	b | B) echo "$NT_NS_B" ;;
	*) echo "$1" ;;
	esac
}
nt_in() {
	local ns
	ns=$(nt_ns "$1")
	shift
	ip netns exec "$ns" "$@"
}

# nt_bg NS CMD…: start a command in NS in the background; its PID is kept for
# cleanup and left in NT_LAST_PID. The caller bounds it with `timeout`.
nt_bg() {
	local ns
	ns=$(nt_ns "$1")
	shift
	ip netns exec "$ns" "$@" &
	NT_LAST_PID=$!
	NT_PIDS+=("$NT_LAST_PID")
}

# nt_reap PID [SECONDS]: wait for a background job up to SECONDS (default 10),
# then kill it. Returns the job's exit status (or 124 when it had to be killed).
nt_reap() {
	local pid=$1 limit=${2:-10} i rc=0
	for ((i = 0; i < limit * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		rc=124
	else
		wait "$pid" 2>/dev/null || rc=$?
	fi
	local p keep=()
	for p in "${NT_PIDS[@]}"; do
		[ "$p" = "$pid" ] || keep+=("$p")
	done
	NT_PIDS=("${keep[@]}")
	return "$rc"
}

# ---- moat in namespace A ---------------------------------------------------

# nt_moat ARGS…: run ./moat in A's network namespace (global mount namespace).
nt_moat() {
	timeout 60 nsenter --net="/run/netns/$NT_NS_A" "$MOAT" "$@"
}
nt_attach() {
	local file=$1
	shift
	nt_moat attach "$NT_IF_A" "$file" "$@" || return $?
}
nt_reload() { nt_moat reload "$NT_IF_A" "$1"; }
nt_detach() {
	nt_moat detach "$NT_IF_A" || return $?
}

# ---- traffic ---------------------------------------------------------------

nt_is_v6() { case "$1" in *:*) return 0 ;; *) return 1 ;; esac }

# nt_wait_listen NS tcp|udp PORT [SECONDS]: until something listens on PORT.
nt_wait_listen() {
	local ns proto=$2 port=$3 limit=${4:-5} i flag=-Hltn
	ns=$(nt_ns "$1")
	[ "$proto" = udp ] && flag=-Hlun
	for ((i = 0; i < limit * 20; i++)); do
		if nt_has . ip netns exec "$ns" ss "$flag" "sport = :$port"; then
			return 0
		fi
		sleep 0.05
	done
	nt_log "nothing listens on $proto port $port in $ns"
	return 1
}

# nt_socat_addr tcp|udp ADDR PORT: a socat connect address for ADDR:PORT.
nt_socat_addr() {
	local p=${1^^}
	if nt_is_v6 "$2"; then
		echo "${p}6:[$2]:$3"
	else
		echo "${p}4:$2:$3"
	fi
}
# nt_socat_listen tcp|udp ADDR PORT: a socat listen address bound to ADDR.
nt_socat_listen() {
	local p=${1^^}
	if nt_is_v6 "$2"; then
		echo "${p}6-LISTEN:$3,bind=[$2],reuseaddr"
	else
		echo "${p}4-LISTEN:$3,bind=$2,reuseaddr"
	fi
}

# nt_randfile PATH KB: KB kibibytes of random data.
nt_randfile() { head -c "$(($2 * 1024))" /dev/urandom >"$1"; }

# nt_tcp_server NS ADDR PORT OUTFILE [SECONDS]: one-shot receiver in the
# background (NT_LAST_PID); writes what it receives to OUTFILE.
nt_tcp_server() {
	local ns=$1 addr=$2 port=$3 out=$4 limit=${5:-30}
	nt_bg "$ns" timeout "$limit" socat -u "$(nt_socat_listen tcp "$addr" "$port")" \
		"CREATE:$out"
	nt_wait_listen "$ns" tcp "$port"
}

# nt_bind_opt SRCADDR SPORT: socat options binding the client's source.
nt_bind_opt() {
	local src=$1 sport=$2
	if [ -n "$src" ] && nt_is_v6 "$src"; then
		src="[$src]"
	fi
	if [ -n "$src" ] && [ -n "$sport" ]; then
		echo ",bind=$src:$sport,reuseaddr"
	elif [ -n "$src" ]; then
		echo ",bind=$src"
	elif [ -n "$sport" ]; then
		echo ",sourceport=$sport,reuseaddr"
	fi
}

# nt_tcp_send NS ADDR PORT INFILE [SPORT] [CONNECT_TIMEOUT] [SECONDS] [SRCADDR]:
# send INFILE, from SRCADDR:SPORT when given. Fails if the connection fails.
nt_tcp_send() {
	local ns=$1 addr=$2 port=$3 in=$4 sport=${5:-} ct=${6:-2} limit=${7:-30} src=${8:-}
	local opts
	opts=",connect-timeout=$ct$(nt_bind_opt "$src" "$sport")"
	nt_in "$ns" timeout "$limit" socat -u "OPEN:$in" "$(nt_socat_addr tcp "$addr" "$port")$opts"
}

# nt_tcp_try CLIENT_NS SERVER_NS ADDR PORT [SPORT] [KB] [SRCADDR]: a real TCP
# connection from CLIENT_NS (from SRCADDR:SPORT when given) to ADDR:PORT (a
# one-shot server in SERVER_NS), KB kibibytes sent (default 64); 0 if they all
# arrived intact, 1 otherwise.
nt_tcp_try() {
	local cns=$1 sns=$2 addr=$3 port=$4 sport=${5:-} kb=${6:-64} src=${7:-}
	local in out spid rc=0
	in=$(mktemp "$NT_TMP/tcp-in.XXXXXX")
	out="$in.out"
	nt_randfile "$in" "$kb"
	nt_tcp_server "$sns" "$addr" "$port" "$out" 30 || return 1
	spid=$NT_LAST_PID
	nt_tcp_send "$cns" "$addr" "$port" "$in" "$sport" 2 30 "$src" 2>/dev/null || rc=1
	if [ "$rc" = 0 ]; then
		nt_reap "$spid" 10 || rc=1
	else
		nt_reap "$spid" 0 || true
	fi
	if [ "$rc" = 0 ] && [ -f "$out" ]; then
		[ "$(sha256sum <"$in" | cut -d' ' -f1)" = "$(sha256sum <"$out" | cut -d' ' -f1)" ] || rc=1
	else
		rc=1
	fi
	rm -f "$in" "$out"
	return "$rc"
}

# nt_tcp_paced_send NS ADDR PORT FILE PROGRESS TARGET [CHUNK_KB]: send FILE to
# ADDR:PORT in chunks (default 256 KiB), paced by another job's progress: the
# number in file PROGRESS goes from 0 to TARGET (e.g. reloads done), and chunk
# i of n waits until it reaches i*(TARGET+1)/n, so the transfer starts at once
# and its last chunk leaves after the last step: the connection is carrying
# data throughout. A wait longer than 450 s in all is given up (noted in
# PROGRESS.late). Run it in the background; bounded by timeout.
nt_tcp_paced_send() {
	local ns=$1 addr=$2 port=$3 file=$4 progress=$5 target=$6 kb=${7:-256}
	local size chunks i need now deadline
	size=$(stat -c %s "$file")
	chunks=$(((size + kb * 1024 - 1) / (kb * 1024)))
	deadline=$(($(date +%s) + 450))
	for ((i = 0; i < chunks; i++)); do
		need=$((i * (target + 1) / chunks))
		while now=$(cat "$progress" 2>/dev/null || echo 0); [ "${now:-0}" -lt "$need" ]; do
			if [ "$(date +%s)" -ge "$deadline" ]; then
				echo "chunk $i: gave up waiting for $need (at $now)" >>"$progress.late"
				break
			fi
			sleep 0.02
		done
		dd if="$file" bs="${kb}K" skip="$i" count=1 status=none
	done | nt_in "$ns" timeout 500 socat -u - "$(nt_socat_addr tcp "$addr" "$port"),connect-timeout=5"
}

# The UDP helpers use python3: socat's UDP listeners bind one peer, and a
# DNS-like exchange wants "send N datagrams, check N echoes" with a deadline.
NT_PY_UDP_ECHO='
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(float(sys.argv[3]))
n = 0
try:
    while True:
        data, peer = s.recvfrom(65535)
        n += 1
        s.sendto(data, peer)
except socket.timeout:
    pass
print(n)
'
NT_PY_UDP_CLIENT='
import os, socket, sys, time
addr, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sport = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] else 0
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if sport:
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", sport))
s.settimeout(1.0)
good = 0
for i in range(count):
    msg = os.urandom(16) + i.to_bytes(4, "big")
    try:
        s.sendto(msg, (addr, port))
    except OSError:  # e.g. EPERM: dropped on the way out
        time.sleep(0.2)
        continue
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            data, _ = s.recvfrom(65535)
        except socket.timeout:
            break
        if data == msg:
            good += 1
            break
print(good)
sys.exit(0 if good == count else 1)
'

# nt_udp_echo_server NS ADDR PORT [IDLE_SECONDS]: echo datagrams back until
# idle for IDLE_SECONDS (default 3); background (NT_LAST_PID).
nt_udp_echo_server() {
	local ns=$1 addr=$2 port=$3 idle=${4:-3}
	nt_bg "$ns" timeout 60 python3 -c "$NT_PY_UDP_ECHO" "$addr" "$port" "$idle"
	nt_wait_listen "$ns" udp "$port"
}

# nt_udp_try CLIENT_NS SERVER_NS ADDR PORT [COUNT] [SPORT]: COUNT (default 3)
# request/response exchanges; 0 if every reply came back intact.
nt_udp_try() {
	local cns=$1 sns=$2 addr=$3 port=$4 count=${5:-3} sport=${6:-} spid rc=0
	nt_udp_echo_server "$sns" "$addr" "$port" 2 >/dev/null || return 1
	spid=$NT_LAST_PID
	nt_in "$cns" timeout $((count * 2 + 10)) python3 -c "$NT_PY_UDP_CLIENT" \
		"$addr" "$port" "$count" "$sport" >/dev/null || rc=1
	nt_reap "$spid" 0 >/dev/null || true
	return "$rc"
}

# ICMP echo over a raw socket, for hosts without iputils-ping: COUNT echo
# requests (identifier from the PID), each waiting up to 1 s for its reply.
NT_PY_PING='
import os, socket, struct, sys, time
addr, count = sys.argv[1], int(sys.argv[2])
v6 = ":" in addr
if v6:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    req, rep = 128, 129
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    req, rep = 8, 0
def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xFFFF)
    t += t >> 16
    return ~t & 0xFFFF
ident = os.getpid() & 0xFFFF
good = 0
for seq in range(count):
    payload = os.urandom(24)
    hdr = struct.pack("!BBHHH", req, 0, 0, ident, seq)
    if not v6:  # the kernel fills the ICMPv6 checksum, ICMPv4 is ours
        hdr = struct.pack("!BBHHH", req, 0, csum(hdr + payload), ident, seq)
    try:
        s.sendto(hdr + payload, (addr, 0))
    except OSError:  # e.g. EPERM: dropped on the way out
        time.sleep(0.2)
        continue
    deadline = time.monotonic() + 1.0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data = s.recv(65535)
        except socket.timeout:
            break
        if not v6:
            data = data[(data[0] & 0x0F) * 4:]
        if len(data) < 8:
            continue
        t, _, _, i, q = struct.unpack("!BBHHH", data[:8])
        if t == rep and i == ident and q == seq and data[8:] == payload:
            good += 1
            break
    time.sleep(0.1)
sys.exit(0 if good == count else 1)
'

# nt_ping NS ADDR [COUNT]: 0 if every echo request got its reply.
nt_ping() {
	local ns=$1 addr=$2 count=${3:-2}
	if command -v ping >/dev/null 2>&1; then
		nt_in "$ns" timeout $((count + 5)) ping -n -q -c "$count" -W 1 -i 0.2 "$addr" \
			>/dev/null 2>&1
	else
		nt_in "$ns" timeout $((count * 2 + 5)) python3 -c "$NT_PY_PING" "$addr" "$count"
	fi
}

# nt_nmap_ack NS TARGET PORTS [SPORT]: nmap ACK scan (-sA) from NS; prints
# "PORT STATE" lines (STATE: unfiltered, filtered, …). Bounded in time and
# retries; nmap's greppable output is parsed, "Ignored State" included.
nt_nmap_ack() {
	local ns=$1 target=$2 ports=$3 sport=${4:-} out
	local args=(-n -Pn -sA -p "$ports" --max-retries 1 --host-timeout 30s
		--initial-rtt-timeout 200ms --max-rtt-timeout 500ms -oG -)
	[ -n "$sport" ] && args+=(-g "$sport")
	nt_is_v6 "$target" && args+=(-6)
	out=$(nt_in "$ns" timeout 60 nmap "${args[@]}" "$target" 2>/dev/null) || return 1
	python3 -c '
import re, sys
ports = set(sys.argv[1].split(","))
out = sys.stdin.read()
seen = {}
for m in re.finditer(r"(\d+)/([a-z|]+)/tcp/", out):
    seen[m.group(1)] = m.group(2)
ign = re.search(r"Ignored State: ([a-z|]+) \(\d+\)", out)
for p in sorted(ports, key=int):
    print(p, seen.get(p, ign.group(1) if ign else "unknown"))
' "$ports" <<<"$out"
}

# nt_nmap_state NS TARGET PORT [SPORT]: the state of one port.
nt_nmap_state() {
	nt_nmap_ack "$@" | awk 'NR == 1 { print $2 }'
}

# ---- JSON ------------------------------------------------------------------

# nt_json PYEXPR < JSON: evaluate a python expression over the parsed document
# `d` (helpers: walk(d) yields every dict in it); prints the result.
nt_json() {
	python3 -c '
import json, sys
def walk(x):
    if isinstance(x, dict):
        yield x
        for v in x.values():
            yield from walk(v)
    elif isinstance(x, list):
        for v in x:
            yield from walk(v)
d = json.load(sys.stdin)
r = eval(sys.argv[1])
print(json.dumps(r) if isinstance(r, (dict, list)) else r)
' "$1"
}

# nt_rule_packets STAGE DIR NUMBER < stats.json: packets of one rule in
# `moat stats --json` (0 when absent). Accepts the field names the contract
# uses for rule_stats (stage, dir/direction, number/rule, packets).
nt_rule_packets() {
	python3 -c '
import json, sys
stage, dirn, num = sys.argv[1], sys.argv[2], int(sys.argv[3])
def walk(x):
    if isinstance(x, dict):
        yield x
        for v in x.values():
            yield from walk(v)
    elif isinstance(x, list):
        for v in x:
            yield from walk(v)
def get(o, *names):
    for n in names:
        if n in o:
            return o[n]
    return None
d = json.load(sys.stdin)
total = 0
for o in walk(d):
    if "packets" not in o:
        continue
    n = get(o, "number", "rule", "num")
    dr = get(o, "dir", "direction")
    st = get(o, "stage")
    if n is None or str(n) != str(num) or dr != dirn:
        continue
    if st is not None and st != stage:
        continue
    total += int(o["packets"])
print(total)
' "$1" "$2" "$3"
}

# nt_dir_counter DIR NAME < stats.json: a per-direction counter (e.g. in
# nacl_default_deny) from `moat stats --json`: the NAME field of an object that
# is keyed DIR or carries "dir"/"direction": DIR. 0 when absent.
nt_dir_counter() {
	python3 -c '
import json, sys
dirn, name = sys.argv[1], sys.argv[2]
def find(x, indir):
    if isinstance(x, dict):
        here = indir or x.get("dir") == dirn or x.get("direction") == dirn
        if here and name in x and isinstance(x[name], (int, float)):
            return int(x[name])
        for k, v in x.items():
            r = find(v, here or k == dirn)
            if r is not None:
                return r
    elif isinstance(x, list):
        for v in x:
            r = find(v, indir)
            if r is not None:
                return r
    return None
print(find(json.load(sys.stdin), False) or 0)
' "$1" "$2"
}

# ---- TAP -------------------------------------------------------------------

TAP_N=0
TAP_FAILED=0

tap_ok() {
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - $*"
}
tap_fail() {
	TAP_N=$((TAP_N + 1))
	TAP_FAILED=$((TAP_FAILED + 1))
	echo "not ok $TAP_N - $*"
}
# tap_diag TEXT…: diagnostic lines ("# …").
tap_diag() {
	local arg line
	for arg in "$@"; do
		while IFS= read -r line; do
			echo "# $line"
		done <<<"$arg"
	done
}
# tap_check DESC CMD…: ok if CMD succeeds.
tap_check() {
	local desc=$1
	shift
	if "$@"; then
		tap_ok "$desc"
	else
		tap_fail "$desc"
	fi
}
# tap_check_not DESC CMD…: ok if CMD fails.
tap_check_not() {
	local desc=$1
	shift
	if "$@"; then
		tap_fail "$desc"
	else
		tap_ok "$desc"
	fi
}
# tap_is DESC GOT WANT
tap_is() {
	if [ "$2" = "$3" ]; then
		tap_ok "$1"
	else
		tap_fail "$1"
		tap_diag "expected: $3" "got: $2"
	fi
}
# tap_done: print the plan; return non-zero if anything failed.
tap_done() {
	echo "1..$TAP_N"
	if [ "$TAP_FAILED" -gt 0 ]; then
		echo "# $TAP_FAILED of $TAP_N failed"
		return 1
	fi
	return 0
}

# tap_bail MSG: abort the test (setup failed).
tap_bail() {
	echo "Bail out! $*"
	exit 1
}
