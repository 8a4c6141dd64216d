#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# least_privilege.sh - moat is root-only where it should be, says so when it
# lacks privileges, refuses bad rules and set files quickly and clearly,
# and runs no shell (TAP output). Issue 6, item 7.
#
#  1. After `moat attach`: /sys/fs/bpf/moat and its IFACE directory are mode
#     0700, every pin in it 0600, all owned by root; nobody can list them.
#  2. The CLI run as an unprivileged user (uid/gid 65534, no groups) and as
#     root without capabilities (empty bounding set: no CAP_BPF,
#     CAP_NET_ADMIN, CAP_SYS_ADMIN): status (with and without IFACE), stats,
#     reload, detach, attach, trace, ct list and trace --rules each exit 2
#     with a message that says what is missing (mentions root, CAP_BPF,
#     CAP_NET_ADMIN or permission) and does not claim the interface is not
#     attached (as root without capabilities, the read-only status, stats
#     and ct list may instead work, if what they print is right). attach
#     and detach, tried last, leave the filter attached with its rules and
#     its pins (if not, the leftovers are taken off by hand and moat is
#     attached again, so the rest of the test can run).
#  3. A rules file, and a set file, that is a symlink to /dev/zero, a
#     symlink to a FIFO, a directory, unreadable (mode 000, checked as the
#     unprivileged user: root reads it anyway), 100 MB (sparse, and of text),
#     binary (random bytes, an ELF executable): `moat check` exits 1 within
#     10 s with an error naming the file. `moat reload` with the FIFO,
#     /dev/zero and the 100 MB file exits 1 within 10 s and leaves the rules
#     in force unchanged.
#  4. Nothing runs a shell: no system(), popen(), exec*() or posix_spawn*()
#     in user/*.[ch], none of them imported by the moat binary, and under
#     strace `moat check`, `moat status` and `moat trace` execute nothing.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/netns.sh
. "$REPO/scripts/netns.sh"

[ -x "$MOAT" ] || tap_bail "$MOAT not built (make moat)"
command -v setpriv >/dev/null || tap_bail "setpriv (util-linux) not found"

NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
NOCAPS=(setpriv --bounding-set=-all --inh-caps=-all)
PRIV_RE='root|CAP_BPF|CAP_NET_ADMIN|permission'

lp_cleanup() {
	local rc=$?
	set +e # cleanup must run whole; nt_cleanup ends with the test's status
	[ -n "${NT_IF_A:-}" ] && rm -f "/run/moat/$NT_IF_A.lock"
	(exit "$rc")
	nt_cleanup
}
trap lp_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
nt_setup || tap_bail "namespace set-up failed"

# Files the unprivileged user must reach: a world-readable directory inside
# the test's private one, and a private copy of the CLI (a rebuild of
# ./moat while the test runs must not change the moat under test).
chmod 0711 "$NT_TMP"
W=$NT_TMP/w
mkdir -m 0755 "$W"
cp "$MOAT" "$W/moat"
chmod 0755 "$W/moat"
MOAT=$W/moat

IFA=$NT_IF_A
PINS=$BPFFS_MOAT/$IFA
RA=$W/a.rules
cat >"$RA" <<'EOF'
nacl in  10 allow icmp
nacl in  20 allow tcp dport 5000
nacl out 10 allow all
EOF
chmod 0644 "$RA"

# in_a CMD…: CMD in A's network namespace, global mount namespace, bounded.
in_a() { timeout 20 nsenter --net="/run/netns/$NT_NS_A" "$@"; }
moat_a() { in_a "$MOAT" "$@"; }

# rules_in_force: "rule:action …" from stats, and the traced verdict.
rules_in_force() {
	local st tr
	st=$(moat_a stats "$IFA" --json 2>/dev/null |
		nt_json '" ".join("%s/%s/%s/%s" % (r["stage"], r["dir"], r["number"], r["action"]) for r in d["rules"])' 2>/dev/null) ||
		st="stats failed"
	tr=$(moat_a trace "$IFA" in tcp 198.18.2.1:40000 to 198.18.1.1:5000 --json 2>/dev/null |
		nt_json '"%s %s" % (d["verdict"], d["nacl"]["rule"])' 2>/dev/null) || tr="trace failed"
	echo "$st | $tr"
}

# ---- 1. modes of the pins -----------------------------------------------------

out=$(moat_a attach "$IFA" "$RA" 2>&1) && rc=0 || rc=$?
tap_is "moat attach $IFA" "$rc" 0
[ "$rc" = 0 ] || {
	tap_diag "$out"
	tap_done
	exit 1
}
BEFORE=$(rules_in_force)
tap_diag "in force: $BEFORE"

tap_is "$BPFFS_MOAT is mode 0700, owned by root" "$(stat -c '%a %U' "$BPFFS_MOAT")" "700 root"
tap_is "$PINS is mode 0700, owned by root" "$(stat -c '%a %U' "$PINS")" "700 root"
bad=""
n=0
for f in "$PINS"/*; do
	n=$((n + 1))
	m=$(stat -c '%a %U' "$f")
	[ "$m" = "600 root" ] || bad="$bad $(basename "$f")=$m"
done
if [ "$n" -gt 0 ] && [ -z "$bad" ]; then
	tap_ok "all $n pins are mode 0600, owned by root"
else
	tap_fail "all pins are mode 0600, owned by root"
	tap_diag "not so:$bad (of $n)"
fi
tap_check_not "the unprivileged user cannot list $PINS" "${NOBODY[@]}" ls "$PINS" 2>/dev/null

# ---- 2. the CLI without privileges --------------------------------------------

# unpriv_case LABEL [--may-read] WRAPPER… -- MOAT_ARGS…: exit 2, says what
# is missing. --may-read: root without capabilities still owns the 0600
# pins, and reading a map through a pin needs no capability on this
# kernel, so a read-only verb may also work: exit 0 with output that is
# right (no "not attached", no XDP mode of "none", no raw library message).
unpriv_case() {
	local label=$1 wrap=() out rc why="" mayread=0
	shift
	if [ "$1" = --may-read ]; then
		mayread=1
		shift
	fi
	while [ "$1" != -- ]; do
		wrap+=("$1")
		shift
	done
	shift
	out=$(in_a "${wrap[@]}" "$MOAT" "$@" 2>&1) && rc=0 || rc=$?
	if [ "$mayread" = 1 ] && [ "$rc" = 0 ]; then
		grep -Eqi -- 'not attached|none mode|libxdp:|libbpf:' <<<"$out" &&
			why="exit 0, but the output is wrong or noisy"
		if [ -z "$why" ]; then
			tap_ok "$label: moat $* works (the pins are readable by their owner)"
		else
			tap_fail "$label: moat $* exits 2 saying what is missing, or works and is right"
			tap_diag "$why" "output: $out"
		fi
		return 0
	fi
	[ "$rc" = 2 ] || why="exit $rc, want 2"
	grep -Eqi -- "$PRIV_RE" <<<"$out" ||
		why="${why:+$why; }the message mentions none of root, CAP_BPF, CAP_NET_ADMIN, permission"
	if grep -Eqi -- 'not attached' <<<"$out"; then
		why="${why:+$why; }it says 'not attached' although $IFA is attached"
	fi
	if [ -z "$why" ]; then
		tap_ok "$label: moat $* exits 2 and says what is missing"
	else
		tap_fail "$label: moat $* exits 2 and says what is missing"
		tap_diag "$why" "output: $out"
	fi
}

# xdp_on_link: the XDP program id on the interface, or nothing.
xdp_on_link() {
	ip -n "$NT_NS_A" -d link show dev "$IFA" 2>/dev/null |
		sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p; s/^ *xdp id \([0-9]*\).*/\1/p' | head -n 1
}
tc_on_link() { tc -n "$NT_NS_A" filter show dev "$IFA" egress 2>/dev/null | grep -o 'moat_tc_egress[^ ]*' || true; }

# still_attached LABEL WHAT: the pins, programs and rules are as they were.
still_attached() {
	local label=$1 what=$2 st
	if [ -e "$PINS/prog_xdp_ingress" ]; then
		tap_ok "$label: still attached (pins in place) after $what"
		tap_is "$label: the rules in force are unchanged after $what" "$(rules_in_force)" "$BEFORE"
		return 0
	fi
	tap_fail "$label: still attached (pins in place) after $what"
	tap_diag "the pins are gone; on the interface now: XDP prog id '$(xdp_on_link)'," \
		"TC egress '$(tc_on_link | tr '\n' ' ')' (programs left running that moat no longer finds)"
	st=$(in_a "$MOAT" status "$IFA" 2>&1) || true
	tap_diag "root's moat status $IFA now says: $st"
	st=$(in_a "$MOAT" attach "$IFA" "$RA" 2>&1) || true
	tap_diag "root's moat attach $IFA now says: $st"
	# Recover for the rest of the test: take the leftovers off by hand.
	ip -n "$NT_NS_A" link set dev "$IFA" xdp off 2>/dev/null || true
	tc -n "$NT_NS_A" qdisc del dev "$IFA" clsact 2>/dev/null || true
	rm -rf "${PINS:?}"
	st=$(moat_a attach "$IFA" "$RA" 2>&1) || tap_bail "re-attach after recovery failed: $st"
}

for who in nobody nocaps; do
	if [ "$who" = nobody ]; then
		w=("${NOBODY[@]}")
		label="as uid 65534"
	else
		w=("${NOCAPS[@]}")
		label="as root without capabilities"
	fi
	mr=()
	[ "$who" = nocaps ] && mr=(--may-read)
	unpriv_case "$label" "${mr[@]}" "${w[@]}" -- status
	unpriv_case "$label" "${mr[@]}" "${w[@]}" -- status "$IFA"
	unpriv_case "$label" "${mr[@]}" "${w[@]}" -- stats "$IFA"
	unpriv_case "$label" "${w[@]}" -- reload "$IFA" "$RA"
	unpriv_case "$label" "${w[@]}" -- trace "$IFA" in icmp 198.18.2.1 to 198.18.1.1
	unpriv_case "$label" "${mr[@]}" "${w[@]}" -- ct list "$IFA"
	unpriv_case "$label" "${w[@]}" -- trace --rules "$RA" in icmp 198.18.2.1 to 198.18.1.1
	still_attached "$label" "the verbs above"
	# Last, as they may do harm: attach (on the attached interface), detach.
	unpriv_case "$label" "${w[@]}" -- attach "$IFA" "$RA"
	still_attached "$label" "moat attach"
	unpriv_case "$label" "${w[@]}" -- detach "$IFA"
	still_attached "$label" "moat detach"
done

# ---- 3. bad rules and set files -----------------------------------------------

B=$W/bad
mkdir -m 0755 "$B"
ln -s /dev/zero "$B/zero.rules"
mkfifo "$B/fifo"
chmod 0644 "$B/fifo"
ln -s "$B/fifo" "$B/fifo.rules"
mkdir "$B/dir.rules"
cp "$RA" "$B/unreadable.rules"
chmod 0000 "$B/unreadable.rules"
truncate -s 100M "$B/sparse.rules"
yes '# a comment line, valid, repeated until the file is 100 MB' | head -c 100M >"$B/text.rules" || true
head -c 4096 /dev/urandom >"$B/random.rules"
cp "$(type -P true)" "$B/elf.rules"
tap_is "the 100 MB text file is 100 MB" "$(stat -c %s "$B/text.rules")" $((100 * 1024 * 1024))

# bad_check LABEL FILE NAME [WRAPPER…]: `moat check FILE` (run through
# WRAPPER) exits 1 within 10 s with an error that names NAME.
bad_check() {
	local label=$1 file=$2 name=$3 out rc t0 ms why=""
	shift 3
	t0=$(date +%s%3N)
	out=$(timeout 10 "$@" "$MOAT" check "$file" 2>&1) && rc=0 || rc=$?
	ms=$(($(date +%s%3N) - t0))
	case "$rc" in
	1) ;;
	124) why="hung: killed after 10 s" ;;
	*) why="exit $rc, want 1" ;;
	esac
	grep -qF -- "$name" <<<"$out" || why="${why:+$why; }the message does not name $name"
	grep -qi 'error' <<<"$out" || why="${why:+$why; }no error message"
	if [ -z "$why" ]; then
		tap_ok "moat check: $label: exit 1 in $ms ms, names the file"
		tap_diag "$(head -n 2 <<<"$out")"
	else
		tap_fail "moat check: $label"
		tap_diag "$why" "output: $(head -c 600 <<<"$out")"
	fi
}

for kind in zero fifo dir sparse text random elf; do
	case $kind in
	zero) what="rules file is a symlink to /dev/zero" ;;
	fifo) what="rules file is a symlink to a FIFO" ;;
	dir) what="rules file is a directory" ;;
	sparse) what="rules file is 100 MB (sparse, NUL bytes)" ;;
	text) what="rules file is 100 MB of text" ;;
	random) what="rules file is binary (random bytes)" ;;
	elf) what="rules file is binary (an ELF executable)" ;;
	esac
	bad_check "$what" "$B/$kind.rules" "$kind.rules"
	# The same file as a set file of a valid rules file.
	target=$B/$kind.rules
	[ "$kind" = fifo ] && target=$B/fifo
	printf 'set s file %s\nnacl in 10 allow all src @s\n' "$target" >"$W/set-$kind.rules"
	chmod 0644 "$W/set-$kind.rules"
	bad_check "set file: ${what/rules file/set file}" "$W/set-$kind.rules" "$(basename "$target")"
done
bad_check "rules file unreadable (mode 000), as uid 65534" "$B/unreadable.rules" \
	"unreadable.rules" "${NOBODY[@]}"
printf 'set s file %s\nnacl in 10 allow all src @s\n' "$B/unreadable.rules" >"$W/set-unreadable.rules"
chmod 0644 "$W/set-unreadable.rules"
bad_check "set file unreadable (mode 000), as uid 65534" "$W/set-unreadable.rules" \
	"unreadable.rules" "${NOBODY[@]}"
out=$("${NOBODY[@]}" timeout 10 "$MOAT" check "$B/unreadable.rules" 2>&1) || true
if grep -qi 'permission' <<<"$out"; then
	tap_ok "... and says permission is denied"
else
	tap_fail "... and says permission is denied"
	tap_diag "output: $out"
fi

for kind in fifo zero text; do
	t0=$(date +%s%3N)
	out=$(timeout 10 nsenter --net="/run/netns/$NT_NS_A" "$MOAT" reload "$IFA" "$B/$kind.rules" 2>&1) &&
		rc=0 || rc=$?
	ms=$(($(date +%s%3N) - t0))
	tap_is "moat reload with the $kind rules file exits 1 (in $ms ms)" "$rc" 1
	[ "$rc" = 1 ] || tap_diag "output: $out"
done
tap_is "the rules in force are unchanged after the bad reloads" "$(rules_in_force)" "$BEFORE"

# ---- 4. nothing runs a shell -----------------------------------------------------

calls=$(grep -nE '\b(system|popen|execl|execlp|execle|execv|execvp|execvpe|execve|fexecve|posix_spawnp?|vfork)[[:space:]]*\(|/bin/sh' \
	"$REPO"/user/*.c "$REPO"/user/*.h || true)
if [ -z "$calls" ]; then
	tap_ok "user/*.[ch] call no system(), popen(), exec*(), posix_spawn*(), vfork(), /bin/sh"
else
	tap_fail "user/*.[ch] call no system(), popen(), exec*(), posix_spawn*(), vfork(), /bin/sh"
	tap_diag "$calls"
fi
if command -v nm >/dev/null; then
	syms=$(nm -D --undefined-only "$MOAT" 2>/dev/null |
		grep -wE 'system|popen|execl|execlp|execle|execv|execvp|execvpe|execve|fexecve|posix_spawn|posix_spawnp|vfork' || true)
	if [ -z "$syms" ]; then
		tap_ok "the moat binary imports none of them"
	else
		tap_fail "the moat binary imports none of them"
		tap_diag "$syms"
	fi
fi
if command -v strace >/dev/null; then
	for args in "check $RA" "status $IFA" "trace $IFA in icmp 198.18.2.1 to 198.18.1.1"; do
		log=$W/strace.log
		# shellcheck disable=SC2086 # args is split on purpose
		in_a strace -f -qq -e trace=execve,execveat -o "$log" "$MOAT" $args >/dev/null 2>&1 || true
		n=$(grep -c 'execve' "$log" 2>/dev/null || echo 0)
		if [ "$n" = 1 ]; then
			tap_ok "under strace, moat ${args%% *} executes nothing (1 execve: its own)"
		else
			tap_fail "under strace, moat ${args%% *} executes nothing"
			tap_diag "$(cat "$log" 2>/dev/null)"
		fi
	done
fi

out=$(moat_a detach "$IFA" 2>&1) && rc=0 || rc=$?
tap_is "moat detach" "$rc" 0

tap_done
