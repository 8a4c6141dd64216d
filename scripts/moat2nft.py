#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""moat2nft.py - translate a moat rules file into an nftables ruleset.

Used by scripts/bench.sh so that the nftables rows of the benchmark run the
very rules moat runs. Prints an `nft -f` script on stdout.

  moat2nft.py RULES --device IF [--mode linear|set] [--stage nacl|sg]
              [--table NAME]

NACL (--stage nacl, the default) becomes a `netdev` table: `in` rules in a
chain on the device's ingress hook, `out` rules on its egress hook. Like
moat, non-IP frames and (with `set pass-ndp on`, the default) IPv6
neighbour discovery pass first; then the rules in ascending number, first
match wins; then the implicit final deny (`drop`).

  --mode linear  one nft rule per moat rule, in order (what an admin writes
                 by hand; cost grows with the number of rules).
  --mode set     consecutive rules that no packet can match two of are
                 gathered into one verdict map per address family over
                 `saddr . daddr . l4proto . th sport . th dport`, with
                 intervals (first match is kept: the maps are tried in rule
                 order, and inside one map at most one element can match).
                 ICMP type/code are the first two bytes of the ICMP header,
                 i.e. `th sport` = type * 256 + code. Rules that cannot be
                 written as such an element (`established`, named sets) stay
                 linear rules, in their place.

SG (--stage sg) becomes an `inet` table whose input/output chains, for
packets of the device, accept `ct state established,related`, then accept
what an SG rule of that direction allows (conntrack then tracks the flow),
and drop the rest: the conntrack analogue of moat's SG stage.

Known differences (none matter for the benchmark's rules): nft evaluates
`th` ports only on first fragments, as moat does, but in --mode set a rule
without ports also does not match non-first fragments there; moat's
untracked SG flows are tracked by nft.
"""

import argparse
import bisect
import ipaddress
import os
import sys

PROTOS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}
PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}


class Error(Exception):
    pass


class Rule:
    def __init__(self, stage, direction, number, action, proto, line):
        self.stage = stage
        self.dir = direction
        self.number = number
        self.action = action  # "allow" | "deny"
        self.proto = proto  # None = all, else int
        self.src = None  # None | ip_network | ("set", name)
        self.dst = None
        self.sport = None  # (lo, hi)
        self.dport = None
        self.icmp = None  # (type, code or None)
        self.established = False
        self.line = line

    def family(self):
        fams = set()
        for a in (self.src, self.dst):
            if isinstance(a, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                fams.add(a.version)
        if len(fams) > 1:
            raise Error("line %d: mixed address families" % self.line)
        return fams.pop() if fams else 0


def parse_range(tok, line):
    if "-" in tok:
        lo, hi = tok.split("-", 1)
        lo, hi = int(lo), int(hi)
    else:
        lo = hi = int(tok)
    if not (0 <= lo <= hi <= 65535):
        raise Error("line %d: bad port range %s" % (line, tok))
    return (lo, hi)


def parse_addr(tok, line):
    if tok.startswith("@"):
        return ("set", tok[1:])
    try:
        return ipaddress.ip_network(tok, strict=True)
    except ValueError as e:
        raise Error("line %d: %s" % (line, e))


def parse_file(path):
    rules, sets, settings = [], {}, {"pass-ndp": True}
    base = os.path.dirname(os.path.abspath(path))
    with open(path) as f:
        lines = f.read().split("\n")
    i = 0
    sg_count = {"in": 0, "out": 0}
    while i < len(lines):
        lineno = i + 1
        text = lines[i].split("#", 1)[0].strip()
        i += 1
        if not text:
            continue
        # inline sets may span lines until the closing brace
        if text.startswith("set ") and "{" in text and "}" not in text:
            while i < len(lines) and "}" not in text:
                text += " " + lines[i].split("#", 1)[0].strip()
                i += 1
        t = text.replace("{", " { ").replace("}", " } ").replace(",", " , ").split()
        if t[0] == "set":
            if len(t) >= 3 and t[2] == "{":
                items = [x for x in t[3:] if x not in (",", "}")]
                sets[t[1]] = [ipaddress.ip_network(x, strict=True) for x in items]
            elif len(t) == 4 and t[2] == "file":
                p = t[3] if os.path.isabs(t[3]) else os.path.join(base, t[3])
                nets = []
                with open(p) as sf:
                    for sl in sf:
                        sl = sl.split("#", 1)[0].strip()
                        if sl:
                            nets.append(ipaddress.ip_network(sl, strict=True))
                sets[t[1]] = nets
            elif len(t) >= 3 and t[1] == "pass-ndp":
                settings["pass-ndp"] = t[2] == "on"
            # conntrack and other settings have no nft counterpart here
            continue
        if t[0] not in ("nacl", "sg"):
            raise Error("line %d: unknown statement %s" % (lineno, t[0]))
        if t[0] == "nacl":
            direction, number, action, proto = t[1], int(t[2]), t[3], t[4]
            k = 5
        else:
            direction, action, proto = t[1], t[2], t[3]
            sg_count[direction] += 1
            number = sg_count[direction]
            k = 4
        if proto == "all":
            p = None
        elif proto in PROTOS:
            p = PROTOS[proto]
        else:
            p = int(proto)
        r = Rule(t[0], direction, number, action, p, lineno)
        while k < len(t):
            kw = t[k]
            if kw == "established":
                r.established = True
                k += 1
                continue
            val = t[k + 1]
            if kw == "src":
                r.src = parse_addr(val, lineno)
            elif kw == "dst":
                r.dst = parse_addr(val, lineno)
            elif kw == "sport":
                r.sport = parse_range(val, lineno)
            elif kw == "dport":
                r.dport = parse_range(val, lineno)
            elif kw == "icmp":
                if "/" in val:
                    ty, co = val.split("/", 1)
                    r.icmp = (int(ty), int(co))
                else:
                    r.icmp = (int(val), None)
            else:
                raise Error("line %d: unknown match %s" % (lineno, kw))
            k += 2
        rules.append(r)
    return rules, sets, settings


# ---------------------------------------------------------------- nft text


def set_name(name, fam):
    return "s_%s_v%d" % (name.replace("-", "_"), fam)


def emit_sets(rules, sets, out):
    used = set()
    for r in rules:
        for a in (r.src, r.dst):
            if isinstance(a, tuple):
                used.add(a[1])
    for name in sorted(used):
        if name not in sets:
            raise Error("unknown set @%s" % name)
        for fam, typ in ((4, "ipv4_addr"), (6, "ipv6_addr")):
            nets = [n for n in sets[name] if n.version == fam]
            out.append("\tset %s {" % set_name(name, fam))
            out.append("\t\ttype %s; flags interval; auto-merge;" % typ)
            if nets:
                out.append("\t\telements = {")
                for j in range(0, len(nets), 8):
                    out.append("\t\t\t" + ", ".join(str(n) for n in nets[j : j + 8]) + ",")
                out.append("\t\t}")
            out.append("\t}")


def addr_expr(a, fam, field):
    """nft match of one address field for family fam, or '' for any;
    None when the rule cannot match that family."""
    ipk = "ip" if fam == 4 else "ip6"
    if a is None:
        return ""
    if isinstance(a, tuple):
        return "%s %s @%s" % (ipk, field, set_name(a[1], fam))
    if a.version != fam:
        return None
    if a.prefixlen == 0:
        return "meta protocol %s" % ipk  # any address of that family
    return "%s %s %s" % (ipk, field, a)


def l4_expr(r, fam):
    parts = []
    if r.proto is not None:
        if r.proto == 1 and fam == 6 or r.proto == 58 and fam == 4:
            return None
        parts.append("meta l4proto %s" % PROTO_NAMES.get(r.proto, str(r.proto)))
    if r.sport:
        parts.append("th sport %s" % rng(r.sport))
    if r.dport:
        parts.append("th dport %s" % rng(r.dport))
    if r.icmp:
        ty, co = r.icmp
        kw = "icmp" if r.proto == 1 else "icmpv6"
        parts.append("%s type %d" % (kw, ty))
        if co is not None:
            parts.append("%s code %d" % (kw, co))
    if r.established:
        parts.append("tcp flags & (ack | rst) != 0")
    return " ".join(parts)


def rng(x):
    return str(x[0]) if x[0] == x[1] else "%d-%d" % x


def verdict(r):
    return "accept" if r.action == "allow" else "drop"


def linear_rule(r, tail=None):
    """nft rule lines for one moat rule (one per family it can match)."""
    fam = r.family()
    fams = [fam] if fam else [4, 6]
    has_addr = r.src is not None or r.dst is not None
    l4_only = not has_addr and (r.proto is None or r.proto in (6, 17)) and r.icmp is None
    if l4_only and fam == 0:
        l4 = l4_expr(r, 0)
        return ["\t\t%s %s" % (l4, tail or verdict(r)) if l4 else "\t\t%s" % (tail or verdict(r))]
    lines = []
    for f in fams:
        s = addr_expr(r.src, f, "saddr")
        d = addr_expr(r.dst, f, "daddr")
        l4 = l4_expr(r, f)
        if s is None or d is None or l4 is None:
            continue
        if not has_addr:
            s = "meta protocol %s" % ("ip" if f == 4 else "ip6")
        expr = " ".join(x for x in (s, d, l4) if x)
        lines.append("\t\t%s %s" % (expr, tail or verdict(r)))
    return lines


# --------------------------------------------------------- set (vmap) mode


def box(r, fam):
    """The rule as a 5-field box of family fam, or None if not a plain box."""
    if r.established or isinstance(r.src, tuple) or isinstance(r.dst, tuple):
        return None
    for a in (r.src, r.dst):
        if a is not None and a.version != fam:
            return "skip"
    if r.proto == 1 and fam == 6 or r.proto == 58 and fam == 4:
        return "skip"
    any_net = ipaddress.ip_network("0.0.0.0/0" if fam == 4 else "::/0")
    src = r.src or any_net
    dst = r.dst or any_net
    proto = (0, 255) if r.proto is None else (r.proto, r.proto)
    if r.icmp:
        ty, co = r.icmp
        sport = (ty * 256 + (co or 0), ty * 256 + (255 if co is None else co))
        dport = (0, 65535)
    else:
        sport = r.sport or (0, 65535)
        dport = r.dport or (0, 65535)
    return (src, dst, proto, sport, dport)


def nets_overlap(a, b):
    return a.subnet_of(b) or b.subnet_of(a)


def ranges_overlap(a, b):
    return a[0] <= b[1] and b[0] <= a[1]


def boxes_overlap(x, y):
    return (
        nets_overlap(x[0], y[0])
        and nets_overlap(x[1], y[1])
        and ranges_overlap(x[2], y[2])
        and ranges_overlap(x[3], y[3])
        and ranges_overlap(x[4], y[4])
    )


class Run:
    """Consecutive, pairwise disjoint boxes of one family.

    Source prefixes are nested or disjoint, so a new box can only overlap
    boxes whose source prefix contains its own (found by looking up each of
    its supernets) or lies inside it (a range of the list sorted by first
    address)."""

    MAX_INSIDE = 4096  # beyond this many candidates, start a new map instead

    def __init__(self):
        self.elems = []
        self.exact = {}  # (network int, prefix length) -> [boxes]
        self.los = []  # sorted (first address, last address, index)

    def fits(self, b):
        n = b[0]
        addr, plen, bits = int(n.network_address), n.prefixlen, n.max_prefixlen
        for length in range(plen + 1):
            mask = ((1 << length) - 1) << (bits - length) if length else 0
            for c in self.exact.get((addr & mask, length), ()):
                if boxes_overlap(b, c):
                    return False
        lo, hi = addr, int(n.broadcast_address)
        i = bisect.bisect_left(self.los, (lo, -1, -1))
        j = bisect.bisect_right(self.los, (hi, 1 << 129, 1 << 62))
        if j - i > self.MAX_INSIDE:
            return False
        for k in range(i, j):
            if boxes_overlap(b, self.elems[self.los[k][2]][0]):
                return False
        return True

    def add(self, b, r):
        n = b[0]
        self.exact.setdefault((int(n.network_address), n.prefixlen), []).append(b)
        bisect.insort(
            self.los, (int(n.network_address), int(n.broadcast_address), len(self.elems))
        )
        self.elems.append((b, r))


def set_mode_chain(rules, chain_lines, maps, prefix):
    runs = {4: Run(), 6: Run()}
    nmaps = [0]

    def flush(fam):
        run = runs[fam]
        if not run.elems:
            return
        nmaps[0] += 1
        name = "%s_m%d_v%d" % (prefix, nmaps[0], fam)
        at = "ipv4_addr" if fam == 4 else "ipv6_addr"
        ipk = "ip" if fam == 4 else "ip6"
        maps.append("\tmap %s {" % name)
        maps.append(
            "\t\ttype %s . %s . inet_proto . inet_service . inet_service : verdict;" % (at, at)
        )
        maps.append("\t\tflags interval;")
        maps.append("\t\telements = {")
        for b, r in run.elems:
            maps.append(
                "\t\t\t%s . %s . %s . %s . %s : %s,"
                % (b[0], b[1], rng(b[2]), rng(b[3]), rng(b[4]), verdict(r))
            )
        maps.append("\t\t}")
        maps.append("\t}")
        chain_lines.append(
            "\t\t%s saddr . %s daddr . meta l4proto . th sport . th dport vmap @%s"
            % (ipk, ipk, name)
        )
        runs[fam] = Run()

    for r in rules:
        fam = r.family()
        fams = [fam] if fam else [4, 6]
        boxes = {f: box(r, f) for f in fams}
        if any(b is None for b in boxes.values()):
            # not expressible as one element: keep the order, flush both
            flush(4)
            flush(6)
            chain_lines.extend(linear_rule(r))
            continue
        for f, b in boxes.items():
            if b == "skip":
                continue
            if not runs[f].fits(b):
                # the other family's map must not move past this rule's
                # earlier neighbours: flush it too to keep the order simple
                flush(4 if f == 6 else 6)
                flush(f)
            runs[f].add(b, r)
    flush(4)
    flush(6)


# ------------------------------------------------------------------ output


def nacl_table(rules, sets, settings, args):
    out = ["table netdev %s {" % args.table]
    sel = [r for r in rules if r.stage == "nacl"]
    emit_sets(sel, sets, out)
    maps, chains = [], []
    for direction, hook in (("in", "ingress"), ("out", "egress")):
        if not sel:
            continue  # stage off: no chain, everything passes
        # a direction without rules, the stage being on, denies everything
        rs = sorted((r for r in sel if r.dir == direction), key=lambda r: r.number)
        body = []
        body.append("\t\tmeta protocol != { ip, ip6 } accept")
        if settings["pass-ndp"]:
            body.append("\t\tmeta protocol ip6 icmpv6 type 133-137 accept")
        if args.mode == "set":
            set_mode_chain(rs, body, maps, "nacl_%s" % direction)
        else:
            for r in rs:
                body.extend(linear_rule(r))
        body.append("\t\tdrop")
        chains.append("\tchain nacl_%s {" % direction)
        chains.append(
            '\t\ttype filter hook %s device "%s" priority 0; policy accept;' % (hook, args.device)
        )
        chains.extend(body)
        chains.append("\t}")
    out.extend(maps)
    out.extend(chains)
    out.append("}")
    return out


def sg_table(rules, sets, settings, args):
    out = ["table inet %s {" % args.table]
    sel = [r for r in rules if r.stage == "sg"]
    emit_sets(sel, sets, out)
    for direction, hook, ifkw in (("in", "input", "iifname"), ("out", "output", "oifname")):
        rs = [r for r in sel if r.dir == direction]
        out.append("\tchain sg_%s {" % direction)
        out.append("\t\ttype filter hook %s priority 0; policy accept;" % hook)
        out.append('\t\t%s != "%s" accept' % (ifkw, args.device))
        out.append("\t\tct state established,related accept")
        if settings["pass-ndp"]:
            out.append("\t\tmeta nfproto ipv6 icmpv6 type 133-137 accept")
        for r in rs:
            out.extend(linear_rule(r, tail="accept"))
        out.append("\t\tdrop")
        out.append("\t}")
    out.append("}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rules")
    ap.add_argument("--device", required=True)
    ap.add_argument("--mode", choices=("linear", "set"), default="linear")
    ap.add_argument("--stage", choices=("nacl", "sg"), default="nacl")
    ap.add_argument("--table", default="moatbench")
    args = ap.parse_args()
    try:
        rules, sets, settings = parse_file(args.rules)
        if args.stage == "nacl":
            lines = nacl_table(rules, sets, settings, args)
        else:
            lines = sg_table(rules, sets, settings, args)
    except (Error, ValueError, OSError) as e:
        print("moat2nft: %s: %s" % (args.rules, e), file=sys.stderr)
        return 1
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
