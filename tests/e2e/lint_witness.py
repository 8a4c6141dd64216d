#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""
lint_witness.py - every witness `moat lint` prints is confirmed by `moat trace`.

The tests of issue 4 (moat lint), run against the real datapath through
`moat trace --rules FILE --batch PACKETS --json` (one load per rule file):

1. The demo's stateless scenario. With
       nacl out 100 allow tcp dst 198.18.2.0/24 dport 9000
       nacl in  100 allow tcp src 198.18.2.0/24 dport 1024-65535
   lint reports a connection-hole whose witness pair (an inbound SYN from
   source port 9000, the outbound SYN-ACK) both pass trace; with
   `established` on the in-rule lint reports no connection hole and trace
   drops that SYN (while the real replies still pass).

2. Random NACL-only rule files (5..60 rules per direction, nested prefixes
   in 198.18.0.0/15 and fd00::/16, all/tcp/udp/icmp, port ranges,
   `established`, allow/deny, sets used as `src @s` / `dst @s`; now and
   then the demo's return rule, and a rule preceded by pieces that cover
   all of it or all but one port or the last block of a prefix, so that
   shadowing hangs on exact edges). For each:
   - lint's JSON is whole: every rule listed once, exit status 1 exactly
     when a finding is a warning or worse;
   - each rule lint does not call shadowed has a witness on which trace
     reports that rule (in its direction) with its action;
   - each finding's witness does what the finding says:
       connection-hole      opener and reply both pass; the opener is
                            decided by the return rule, the reply by the
                            other rule named; the reply mirrors the opener
       missing-return-path  opener passes, decided by the service rule; the
                            reply is dropped, by the deny rule named or by
                            the implicit deny
       partly-overridden    decided by the overriding (earlier, opposite
                            action) rule, and matched by the rule itself
       shadowed             decided by an earlier rule, matched by the rule
       denies-everything    dropped, as is every packet of that direction
     and the regions of the first two are sampled (corners and random
     points): each sample behaves as the witness does; a "drops all their
     replies" claim is sampled over the rule's own openers;
   - no rule lint calls shadowed ever decides any of a few thousand packets
     (biased to the rules' prefixes, port edges and, for each shadowed rule,
     to what it matches), both directions.
   "Matched by the rule" is judged by a plain first-match model of the
   rules in this file; that model is itself compared with trace on every
   packet traced, so it cannot drift silently.

Only NACL rules in the random part: an SG out stage, tried before NACL out,
would make some witnesses impossible to confirm with one stateless trace.

Output is TAP; exit status 1 when anything failed. On a failure the seed,
the rule file and the packet are printed, and the files are kept.

Environment: MOAT (the binary; default ./moat of the repository root),
MOAT_LINT_SETS (random rule files, default 40), MOAT_LINT_SEED (the seed;
default random; "SEED:I" runs only random file I of that seed),
MOAT_LINT_PACKETS (random packets per file, default 2500).
Needs root (trace loads the BPF programs).
"""
import ipaddress
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MOAT = os.environ.get("MOAT") or os.path.join(ROOT, "moat")

PROTO = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}
PROTO_NAME = {v: k for k, v in PROTO.items()}
FLAG_ORDER = "SAFRPU"
DIRS = ("in", "out")
OTHER = {"in": "out", "out": "in"}
# ICMPv6 neighbour discovery passes before any stage (set pass-ndp on).
NDP_TYPES = range(133, 138)
ECHO = {1: (8, 0), 58: (128, 129)}  # proto: (request, reply)
# ephemeral ranges for `set ephemeral` (README, lint)
EPHEMERAL = {
    "any": (1024, 65535),
    "linux": (32768, 60999),
    "windows": (49152, 65535),
    "macos": (49152, 65535),
}
TRACE_TIMEOUT = 120
FINDING_KINDS = {
    "connection-hole",
    "missing-return-path",
    "shadowed",
    "partly-overridden",
    "denies-everything",
    "analysis-incomplete",
}


# ---- addresses, rules, packets ---------------------------------------------


def bits(fam):
    return 32 if fam == 4 else 128


def addr_text(fam, a):
    return str(ipaddress.IPv4Address(a) if fam == 4 else ipaddress.IPv6Address(a))


def parse_addr(s):
    a = ipaddress.ip_address(s)
    return a.version, int(a)


class Prefix:
    def __init__(self, fam, net, plen):
        self.fam, self.net, self.plen = fam, net, plen
        self.first = net
        self.last = net | ((1 << (bits(fam) - plen)) - 1)

    @staticmethod
    def parse(text):
        n = ipaddress.ip_network(text)
        return Prefix(n.version, int(n.network_address), n.prefixlen)

    def contains(self, fam, a):
        return fam == self.fam and self.first <= a <= self.last

    def covers(self, o):
        return o.fam == self.fam and self.first <= o.first and o.last <= self.last

    def __eq__(self, o):
        return (self.fam, self.net, self.plen) == (o.fam, o.net, o.plen)

    def __hash__(self):
        return hash((self.fam, self.net, self.plen))

    def __str__(self):
        return "%s/%d" % (addr_text(self.fam, self.net), self.plen)


class Rule:
    """A NACL rule. src/dst: (text, [Prefix]) or None."""

    def __init__(self, d, num, action, proto, src=None, dst=None, sport=None,
                 dport=None, icmp=None, est=False):
        self.dir, self.num, self.action, self.proto = d, num, action, proto
        self.src, self.dst = src, dst
        self.sport, self.dport, self.icmp, self.est = sport, dport, icmp, est
        self.line = 0

    def copy(self):
        r = Rule(self.dir, self.num, self.action, self.proto, self.src, self.dst,
                 self.sport, self.dport, self.icmp, self.est)
        return r

    def has_l4(self):
        return bool(self.sport or self.dport or self.icmp or self.est)

    def text(self):
        w = ["nacl", self.dir, str(self.num), self.action, self.proto]
        if self.src:
            w += ["src", self.src[0]]
        if self.dst:
            w += ["dst", self.dst[0]]
        for kw, rng in (("sport", self.sport), ("dport", self.dport)):
            if rng:
                w += [kw, str(rng[0]) if rng[0] == rng[1] else "%d-%d" % rng]
        if self.icmp:
            t, c = self.icmp
            w += ["icmp", str(t) if c is None else "%d/%d" % (t, c)]
        if self.est:
            w.append("established")
        return " ".join(w)

    def name(self):
        return "nacl %s %d" % (self.dir, self.num)


class Ruleset:
    def __init__(self):
        self.rules = []  # in file order
        self.sets = {}  # name: [Prefix]
        self.ephemeral = None
        self.text = ""

    def field(self, spec):
        """(text, prefixes) for a CIDR text or '@name'."""
        if spec.startswith("@"):
            return (spec, self.sets[spec[1:]])
        return (spec, [Prefix.parse(spec)])

    def by_dir(self, d):
        return sorted((r for r in self.rules if r.dir == d), key=lambda r: r.num)

    def find(self, d, num):
        for r in self.rules:
            if r.dir == d and r.num == num:
                return r
        return None

    def render(self, rng=None):
        lines = []
        set_lines = ["set %s { %s }" % (n, ", ".join(str(p) for p in v))
                     for n, v in self.sets.items()]
        if self.ephemeral:
            set_lines.append("set ephemeral %s" % self.ephemeral)
        at_end = rng is not None and rng.random() < 0.3
        if not at_end:
            lines += set_lines
        for r in self.rules:
            lines.append(r.text())
            r.line = len(lines)
        if at_end:
            lines += set_lines
        self.text = "\n".join(lines) + "\n"
        return self.text

    def peer_ephemeral(self):
        return EPHEMERAL[self.ephemeral or "any"]

    def local_ephemeral(self):
        # lint assumes this host is Linux unless the file names an OS
        if (self.ephemeral or "any") == "any":
            return EPHEMERAL["linux"]
        return EPHEMERAL[self.ephemeral]


class Packet:
    __slots__ = ("fam", "proto", "src", "dst", "sport", "dport", "flags",
                 "itype", "icode", "frag")

    def __init__(self, fam, proto, src, dst, sport=0, dport=0, flags="S",
                 itype=0, icode=0, frag=False):
        self.fam, self.proto, self.src, self.dst = fam, proto, src, dst
        self.sport, self.dport, self.flags = sport, dport, flags
        self.itype, self.icode, self.frag = itype, icode, frag
        self.normalize()

    def normalize(self):
        if self.proto not in (6, 17) or self.frag:
            self.sport = self.dport = 0
        if self.proto != 6 or self.frag:
            self.flags = ""
        else:
            self.flags = "".join(c for c in FLAG_ORDER if c in self.flags)
        if self.proto not in (1, 58) or self.frag:
            self.itype = self.icode = 0

    def copy(self):
        return Packet(self.fam, self.proto, self.src, self.dst, self.sport,
                      self.dport, self.flags, self.itype, self.icode, self.frag)

    def text(self):
        def ep(a, port):
            s = addr_text(self.fam, a)
            if self.proto not in (6, 17) or self.frag:
                return s
            return "[%s]:%d" % (s, port) if self.fam == 6 else "%s:%d" % (s, port)

        w = [PROTO_NAME.get(self.proto, str(self.proto)), ep(self.src, self.sport), ">",
             ep(self.dst, self.dport)]
        if self.frag:
            w.append("frag")
        elif self.proto == 6:
            w += ["flags", self.flags or "none"]
        elif self.proto in (1, 58):
            w += ["icmp", "%d/%d" % (self.itype, self.icode)]
        return " ".join(w)

    def reply(self):
        """The answer to this opener: addresses and ports swapped, a SYN-ACK
        for tcp, the echo reply for an echo request."""
        r = Packet(self.fam, self.proto, self.dst, self.src, self.dport, self.sport,
                   "SA", self.itype, self.icode)
        if self.proto in ECHO and self.itype == ECHO[self.proto][0]:
            r.itype = ECHO[self.proto][1]
        return r

    def key(self):
        return (self.fam, self.proto, self.src, self.dst, self.sport, self.dport,
                self.flags, self.itype, self.icode, self.frag)


def parse_endpoint(s):
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\](?::(\d+))?", s)
    if m:
        fam, a = parse_addr(m.group(1))
        return fam, a, int(m.group(2)) if m.group(2) else 0
    try:
        fam, a = parse_addr(s)
        return fam, a, 0
    except ValueError:
        pass
    host, port = s.rsplit(":", 1)
    fam, a = parse_addr(host)
    return fam, a, int(port)


def parse_packet(text):
    """A PACKET as `moat trace` reads it (README): the defaults included."""
    w = text.replace(">", " > ").split()
    p = w[0]
    proto = PROTO[p] if p in PROTO else int(p)
    fam, src, sport = parse_endpoint(w[1])
    if w[2] not in (">", "to"):
        raise ValueError("no '>' in %r" % text)
    fam2, dst, dport = parse_endpoint(w[3])
    if fam2 != fam:
        raise ValueError("families differ in %r" % text)
    flags = "S"
    itype, icode = {1: (8, 0), 58: (128, 0)}.get(proto, (0, 0))
    frag = False
    i = 4
    while i < len(w):
        if w[i] == "flags":
            flags = "" if w[i + 1] == "none" else w[i + 1]
            i += 2
        elif w[i] == "icmp":
            t, _, c = w[i + 1].partition("/")
            itype, icode = int(t), int(c or 0)
            i += 2
        elif w[i] == "frag":
            frag = True
            i += 1
        else:
            raise ValueError("unexpected %r in %r" % (w[i], text))
    return Packet(fam, proto, src, dst, sport, dport, flags, itype, icode, frag)


# ---- the model: plain first match (CONTRACT §2, §3) ------------------------


def rule_matches(r, p):
    if r.proto != "all" and PROTO[r.proto] != p.proto:
        return False
    for fld, a in ((r.src, p.src), (r.dst, p.dst)):
        if fld is not None and not any(pf.contains(p.fam, a) for pf in fld[1]):
            return False
    if not r.has_l4():
        return True
    if p.frag:
        return False  # a non-first fragment carries no ports, type or flags
    if r.sport and not r.sport[0] <= p.sport <= r.sport[1]:
        return False
    if r.dport and not r.dport[0] <= p.dport <= r.dport[1]:
        return False
    if r.icmp:
        # ICMP of the other family (icmp over IPv6, icmpv6 over IPv4) has no
        # ICMP header the datapath reads: a type match never takes it
        if (p.proto, p.fam) in ((1, 6), (58, 4)):
            return False
        t, c = r.icmp
        if p.itype != t or (c is not None and p.icode != c):
            return False
    if r.est and "A" not in p.flags and "R" not in p.flags:
        return False
    return True


def first_match(ordered, p):
    for r in ordered:
        if rule_matches(r, p):
            return r
    return None


# ---- random rule files -------------------------------------------------------


def sub_prefix(rng, parent, step):
    plen = min(bits(parent.fam), parent.plen + step)
    host = plen - parent.plen
    net = parent.net | (rng.getrandbits(host) << (bits(parent.fam) - plen) if host else 0)
    return Prefix(parent.fam, net, plen)


def make_pools(rng):
    """A few nested prefixes per family, so rules overlap."""
    pools = {}
    for fam, base, steps in ((4, "198.18.0.0/15", (1, 2, 4, 6, 8, 9, 17)),
                             (6, "fd00::/16", (8, 16, 24, 32, 48, 112))):
        pool = [Prefix.parse(base)]
        for _ in range(rng.randint(4, 8)):
            parent = rng.choice(pool)
            if parent.plen < bits(fam):
                q = sub_prefix(rng, parent, rng.choice(steps))
                if q not in pool:
                    pool.append(q)
        if rng.random() < 0.15:
            pool.append(Prefix.parse("0.0.0.0/0" if fam == 4 else "::/0"))
        pools[fam] = pool
    return pools


def make_ports(rng):
    pts = set(rng.sample([0, 1, 22, 53, 80, 443, 1023, 1024, 3389, 9000, 32767, 32768,
                          49151, 49152, 60999, 61000, 65535], 7))
    pts |= {rng.randint(0, 65535) for _ in range(2)}
    return sorted(pts)


def pick_range(rng, ports):
    x = rng.random()
    if x < 0.35:
        p = rng.choice(ports)
        return (p, p)
    if x < 0.55:
        return rng.choice([(1024, 65535), (32768, 60999), (49152, 65535), (0, 65535),
                           (0, 1023)])
    a, b = sorted((rng.choice(ports), rng.choice(ports)))
    return (a, b)


def sub_range(rng, r):
    a, b = sorted((rng.randint(r[0], r[1]), rng.randint(r[0], r[1])))
    return (a, b) if rng.random() < 0.7 else r


def pick_icmp(rng, proto):
    types = [0, 3, 8, 11] if proto == "icmp" else [1, 3, 128, 129]
    t = rng.choice(types)
    return (t, rng.choice([0, 1, 3]) if rng.random() < 0.3 else None)


def gen_rule(rng, rs, d, pools, ports, earlier):
    same = [r for r in earlier if r.dir == d]
    if same and rng.random() < 0.25:
        return narrow(rng, rs, rng.choice(same), pools, ports)
    proto = rng.choices(["all", "tcp", "udp", "icmp"], [2, 4, 2.5, 1.5])[0]
    fam = 4 if rng.random() < 0.7 else 6
    peer, local = ("src", "dst") if d == "in" else ("dst", "src")
    fields = {}
    for f, prob in ((peer, 0.8), (local, 0.3)):
        if rng.random() >= prob:
            continue
        if rs.sets and rng.random() < 0.2:
            fields[f] = rs.field("@" + rng.choice(sorted(rs.sets)))
        else:
            fields[f] = rs.field(str(rng.choice(pools[fam])))
    if proto == "icmp":
        fams = {pf.fam for v in fields.values() for pf in v[1] if not v[0].startswith("@")}
        if fams == {6} and rng.random() < 0.85:
            proto = "icmpv6"
    if proto == "all" and not fields and rng.random() < 0.7:
        proto = "tcp"  # a catch-all early in the file shadows all after it: keep them rare
    r = Rule(d, 0, "allow" if rng.random() < 0.65 else "deny", proto,
             fields.get("src"), fields.get("dst"))
    if proto in ("tcp", "udp"):
        if rng.random() < 0.3:
            r.sport = pick_range(rng, ports)
        if rng.random() < 0.6:
            r.dport = pick_range(rng, ports)
    if proto in ("icmp", "icmpv6") and rng.random() < 0.4:
        r.icmp = pick_icmp(rng, proto)
    if proto == "tcp" and rng.random() < 0.25:
        r.est = True
    return r


def narrow(rng, rs, base, pools, ports):
    """A rule inside (or equal to) an earlier one: shadowed or overridden."""
    r = base.copy()
    for f in ("src", "dst"):
        v = getattr(r, f)
        if v and not v[0].startswith("@") and rng.random() < 0.5:
            inner = [p for p in pools[v[1][0].fam] if v[1][0].covers(p)]
            setattr(r, f, rs.field(str(rng.choice(inner))))
    if r.proto == "all" and rng.random() < 0.5:
        r.proto = rng.choice(["tcp", "udp"])
    if r.proto in ("tcp", "udp"):
        for f in ("sport", "dport"):
            v = getattr(r, f)
            setattr(r, f, sub_range(rng, v) if v else
                    (pick_range(rng, ports) if rng.random() < 0.3 else None))
    if r.proto == "tcp" and rng.random() < 0.3:
        r.est = True
    if rng.random() < 0.5:
        r.action = "deny" if r.action == "allow" else "allow"
    return r


def split_cover(rng, rs, base):
    """Rules that together cover all of @base, or all but a sliver of it (one
    port, or the last block of a prefix): put before a copy of @base, they
    make it shadowed, or live in that sliver only. Sets carry the pieces of a
    prefix, down to /32 or /128 if need be."""
    gap = rng.random() < 0.5
    how = []
    if base.proto in ("tcp", "udp"):
        how.append("port")
    lit = [f for f in ("src", "dst") if getattr(base, f) and
           not getattr(base, f)[0].startswith("@") and
           getattr(base, f)[1][0].plen < bits(getattr(base, f)[1][0].fam)]
    if lit:
        how.append("addr")
    if not how:
        return []
    pieces = []
    if rng.choice(how) == "port":
        f = rng.choice(["sport", "dport"])
        lo, hi = getattr(base, f) or (0, 65535)
        if lo == hi:
            return []
        c = rng.randint(lo, hi - 1)
        parts = [(lo, c), (c + 1, hi)]
        if gap:  # leave out port c
            parts = [(lo, c - 1), (c + 1, hi)] if c > lo else [(lo + 1, hi)]
        for pr in parts:
            r = base.copy()
            setattr(r, f, pr)
            pieces.append(r)
    else:
        f = rng.choice(lit)
        cur = getattr(base, f)[1][0]
        members = []
        for _ in range(rng.randint(1, min(bits(cur.fam) - cur.plen, 20))):
            half = 1 << (bits(cur.fam) - cur.plen - 1)
            lower = Prefix(cur.fam, cur.net, cur.plen + 1)
            upper = Prefix(cur.fam, cur.net | half, cur.plen + 1)
            if rng.random() < 0.5:
                lower, upper = upper, lower
            members.append(lower)
            cur = upper
        if not gap:
            members.append(cur)
        rng.shuffle(members)
        name = "c%d" % (len(rs.sets) + 1)
        rs.sets[name] = members
        r = base.copy()
        setattr(r, f, ("@" + name, members))
        pieces.append(r)
    for r in pieces:
        if rng.random() < 0.3:
            r.action = "deny" if r.action == "allow" else "allow"
    return pieces


def gen_ruleset(rng):
    rs = Ruleset()
    pools = make_pools(rng)
    ports = make_ports(rng)
    if rng.random() < 0.5:
        for i in range(rng.randint(1, 3)):
            members = set()
            for _ in range(rng.randint(1, 4)):
                fam = 4 if rng.random() < 0.6 else 6
                members.add(rng.choice(pools[fam]))
            rs.sets["s%d" % (i + 1)] = sorted(members, key=lambda p: (p.fam, p.net, p.plen))
    if rng.random() < 0.3:
        rs.ephemeral = rng.choice(sorted(EPHEMERAL))
    for d in DIRS:
        n = rng.randint(5, 60)
        nums = sorted(rng.sample(range(1, 32767), n))
        made = []
        # now and then the demo's return-traffic pattern, which opens holes
        if rng.random() < 0.5:
            proto = rng.choice(["tcp", "udp"])
            peer = rs.field(str(rng.choice(pools[4] + pools[6])))
            if d == "in":
                made.append(Rule("in", 0, "allow", proto, src=peer, dport=(1024, 65535),
                                 sport=(9000, 9000) if rng.random() < 0.3 else None))
            else:
                made.append(Rule("out", 0, "allow", proto, dst=peer,
                                 dport=rng.choice([(9000, 9000), (53, 53), (1024, 65535)])))
        while len(made) < n:
            if rng.random() < 0.1:
                base = gen_rule(rng, rs, d, pools, ports, [])
                pieces = split_cover(rng, rs, base)
                if pieces and len(made) + len(pieces) + 1 <= n:
                    if rng.random() < 0.5:
                        base.action = "deny" if base.action == "allow" else "allow"
                    made += pieces + [base]
                    continue
            made.append(gen_rule(rng, rs, d, pools, ports, made))
        if rng.random() < 0.2:
            rng.shuffle(made)
        for r, num in zip(made, nums):
            r.num = num
        rs.rules += made
    if rng.random() < 0.5:
        rng.shuffle(rs.rules)  # file order is not rule order
    rs.pools, rs.ports = pools, ports
    return rs


# ---- random packets -------------------------------------------------------------


def addr_in(rng, pf):
    x = rng.random()
    if x < 0.25:
        return pf.first
    if x < 0.5:
        return pf.last
    return rng.randint(pf.first, pf.last)


def addr_near(rng, rs, fam):
    """An address at or just outside the edge of a prefix of the file."""
    pool = rs.pools[fam]
    pf = rng.choice(pool)
    x = rng.random()
    if x < 0.4:
        return addr_in(rng, pf)
    top = (1 << bits(fam)) - 1
    if x < 0.6:
        return max(0, pf.first - 1)
    if x < 0.8:
        return min(top, pf.last + 1)
    return rng.randint(0, top)


def port_near(rng, rs, rules=None):
    edges = set(rs.ports)
    for r in rules or ():
        for v in (r.sport, r.dport):
            if v:
                edges |= {v[0], v[1], max(0, v[0] - 1), min(65535, v[1] + 1)}
    if rng.random() < 0.8:
        return rng.choice(sorted(edges))
    return rng.randint(0, 65535)


def port_in(rng, v):
    x = rng.random()
    if x < 0.3:
        return v[0]
    if x < 0.6:
        return v[1]
    return rng.randint(v[0], v[1])


def icmp_type(rng, proto):
    t = rng.choice([0, 3, 8, 11, 5] if proto == 1 else [1, 3, 128, 129, 2, 4])
    if proto == 58 and t in NDP_TYPES:
        t = 128
    return t


def gen_in_rule(rng, rs, r):
    """A packet the rule matches, or None if no packet can."""
    fams = {4, 6}
    for fld in (r.src, r.dst):
        if fld is not None:
            fams &= {pf.fam for pf in fld[1]}
    if r.proto == "icmpv6" and not r.src and not r.dst and rng.random() < 0.8:
        fams &= {6}
    if r.proto == "icmp" and not r.src and not r.dst and rng.random() < 0.8:
        fams &= {4}
    if not fams:
        return None
    fam = rng.choice(sorted(fams))
    a = {}
    for f in ("src", "dst"):
        fld = getattr(r, f)
        if fld is None:
            a[f] = addr_near(rng, rs, fam)
        else:
            a[f] = addr_in(rng, rng.choice([pf for pf in fld[1] if pf.fam == fam]))
    if r.proto == "all":
        proto = rng.choices([6, 17, 1 if fam == 4 else 58, 58 if fam == 4 else 1, 47, 132],
                            [3, 3, 2, 0.5, 1, 0.5])[0]
    else:
        proto = PROTO[r.proto]
    p = Packet(fam, proto, a["src"], a["dst"])
    if proto in (6, 17):
        p.sport = port_in(rng, r.sport) if r.sport else port_near(rng, rs, [r])
        p.dport = port_in(rng, r.dport) if r.dport else port_near(rng, rs, [r])
    if proto == 6:
        p.flags = rng.choice(["A", "SA", "R", "FA", "AP", "RA"] if r.est else
                             ["S", "S", "SA", "A", "R", "F", "FA", "", "SAFRPU"])
    if proto in (1, 58):
        if r.icmp:
            p.itype = r.icmp[0]
            p.icode = r.icmp[1] if r.icmp[1] is not None else rng.choice([0, 1, 3])
        else:
            p.itype, p.icode = icmp_type(rng, proto), rng.choice([0, 0, 1])
    if not r.has_l4() and rng.random() < 0.1:
        p.frag = True
    p.normalize()
    return p


def perturb(rng, rs, p):
    """One field moved, most often just across an edge."""
    q = p.copy()
    x = rng.random()
    if x < 0.3 and q.proto in (6, 17) and not q.frag:
        if rng.random() < 0.5:
            q.sport = port_near(rng, rs, rs.rules)
        else:
            q.dport = port_near(rng, rs, rs.rules)
    elif x < 0.6:
        if rng.random() < 0.5:
            q.src = addr_near(rng, rs, q.fam)
        else:
            q.dst = addr_near(rng, rs, q.fam)
    elif x < 0.75 and q.proto == 6:
        q.flags = rng.choice(["S", "A", "SA", "R", ""])
    elif x < 0.85:
        q.frag = not q.frag
    else:
        q.proto = rng.choice([6, 17, 1, 58, 47])
        q.sport, q.dport = port_near(rng, rs), port_near(rng, rs)
        q.flags = "S"
        q.itype = icmp_type(rng, q.proto) if q.proto in (1, 58) else 0
    q.normalize()
    return q


def gen_random(rng, rs):
    fam = 4 if rng.random() < 0.6 else 6
    proto = rng.choice([6, 6, 17, 17, 1, 58, 47])
    p = Packet(fam, proto, addr_near(rng, rs, fam), addr_near(rng, rs, fam),
               port_near(rng, rs, rs.rules), port_near(rng, rs, rs.rules),
               rng.choice(["S", "A", "SA", "R", "FA"]))
    if proto in (1, 58):
        p.itype, p.icode = icmp_type(rng, proto), 0
    p.frag = rng.random() < 0.05
    p.normalize()
    return p


# ---- running moat -----------------------------------------------------------------


def run(args, timeout=TRACE_TIMEOUT):
    try:
        pr = subprocess.run([MOAT] + args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, "", "timed out after %ds" % timeout
    except OSError as e:
        return -1, "", str(e)
    return pr.returncode, pr.stdout, pr.stderr


def lint(path):
    rc, out, err = run(["lint", path, "--json"], 60)
    try:
        doc = json.loads(out)
    except ValueError:
        return rc, None, "lint printed no JSON (exit %d): %s%s" % (rc, out[-400:], err[-400:])
    if "error" in doc:
        return rc, None, "lint: %s" % doc["error"]
    return rc, doc, None


def trace_batch(path, items, workdir):
    """Trace every (dir, packet text); returns (results, errors). A line
    trace refuses is reported and left out, and the rest traced again."""
    errors = []
    todo = list(range(len(items)))
    for _ in range(6):
        batch = os.path.join(workdir, "packets.txt")
        with open(batch, "w") as f:
            for i in todo:
                f.write("%s %s\n" % (items[i][0], items[i][1]))
        rc, out, err = run(["trace", "--rules", path, "--batch", batch, "--json"])
        try:
            doc = json.loads(out)
        except ValueError:
            doc = None
        if doc is not None and "results" in doc and rc == 0:
            if len(doc["results"]) != len(todo):
                errors.append((None, "trace returned %d results for %d packets" %
                               (len(doc["results"]), len(todo))))
                return {}, errors
            return dict(zip(todo, doc["results"])), errors
        msg = doc.get("error") if isinstance(doc, dict) else None
        m = re.search(r"packets\.txt:(\d+):", msg or "")
        if not m:
            errors.append((None, "trace failed (exit %d): %s %s" % (rc, msg or out[-400:],
                                                                      err[-400:])))
            return {}, errors
        bad = todo[int(m.group(1)) - 1]
        errors.append((bad, "trace refused it: %s" % msg))
        todo.remove(bad)
    errors.append((None, "trace refused too many lines"))
    return {}, errors


# ---- TAP ------------------------------------------------------------------------------


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def point(self, ok, desc, diag=()):
        self.n += 1
        if not ok:
            self.failed += 1
        print("%s %d - %s" % ("ok" if ok else "not ok", self.n, desc))
        for line in diag:
            for sub in str(line).splitlines():
                print("#   " + sub)
        sys.stdout.flush()

    def note(self, text):
        for sub in text.splitlines():
            print("# " + sub)
        sys.stdout.flush()


# ---- checking one rule file ---------------------------------------------------------


def rdesc(res):
    """What trace said, briefly."""
    if not res:
        return "(no result)"
    n = res.get("nacl") or {}
    return "%s, nacl rule %s (%s); %s" % (res.get("verdict"), n.get("rule"), n.get("action"),
                                          res.get("reason"))


def parse_span_addr(fam, s):
    if "/" in s:
        p = Prefix.parse(s)
        return p.first, p.last
    lo, hi = s.split("-")
    return parse_addr(lo)[1], parse_addr(hi)[1]


def parse_span_ports(s):
    if s is None:
        return None
    lo, _, hi = s.partition("-")
    return int(lo), int(hi or lo)


def region_of(reg):
    fam = reg["family"]
    return {
        "fam": fam,
        "proto": PROTO[reg["proto"]] if reg["proto"] in PROTO else int(reg["proto"]),
        "opener": reg["opener"],
        "peer": parse_span_addr(fam, reg["peer"]),
        "local": parse_span_addr(fam, reg["local"]),
        "pp": parse_span_ports(reg.get("peer_ports")),
        "lp": parse_span_ports(reg.get("local_ports")),
    }


def opener_in_region(p, d, g):
    """Is opener @p (sent in direction @d) inside region @g?"""
    if p.fam != g["fam"] or p.proto != g["proto"] or p.frag:
        return False
    if (d == "in") != (g["opener"] == "peer"):
        return False
    peer, local = (p.src, p.dst) if d == "in" else (p.dst, p.src)
    pp, lp = (p.sport, p.dport) if d == "in" else (p.dport, p.sport)
    if not (g["peer"][0] <= peer <= g["peer"][1] and g["local"][0] <= local <= g["local"][1]):
        return False
    if g["pp"] and not g["pp"][0] <= pp <= g["pp"][1]:
        return False
    if g["lp"] and not g["lp"][0] <= lp <= g["lp"][1]:
        return False
    return True


def region_samples(rng, g, n):
    """@n openers in region @g: half of them random corners, half inside."""
    d = "in" if g["opener"] == "peer" else "out"
    out = []
    for k in range(n):
        v = [0 if rg is None else rng.choice(rg) if k < n // 2 else rng.randint(*rg)
             for rg in (g["peer"], g["local"], g["pp"], g["lp"])]
        peer, local, pp, lp = v
        if d == "in":
            p = Packet(g["fam"], g["proto"], peer, local, pp, lp, "S")
        else:
            p = Packet(g["fam"], g["proto"], local, peer, lp, pp, "S")
        if g["proto"] in ECHO:
            p.itype, p.icode = ECHO[g["proto"]][0], 0
        p.normalize()
        out.append((d, p))
    return out


def same_packet(a, b):
    return a.key() == b.key()


class SetCheck:
    """Lint one rule file, trace every witness and sample, judge."""

    def __init__(self, tap, label, rs, rng, workdir, seed_note, n_random):
        self.tap, self.label, self.rs, self.rng = tap, label, rs, rng
        self.workdir, self.seed_note, self.n_random = workdir, seed_note, n_random
        self.items = []  # (dir, text, packet, tag)
        self.shown = False
        self.stats = {}

    def add(self, d, text, pkt, tag):
        self.items.append((d, text, pkt, tag))
        return len(self.items) - 1

    def header(self):
        """What a failure needs to be reproduced, printed once per file."""
        if self.shown:
            return []
        self.shown = True
        return ["%s; rule file %s:" % (self.seed_note, self.path)] + \
            ["  " + l for l in self.rs.text.splitlines()]

    def repro(self, i):
        d, text = self.items[i][0], self.items[i][1]
        return "%s trace --rules %s %s %s" % (os.path.basename(MOAT), self.path, d, text)

    def run(self, extra=()):
        rs = self.rs
        self.path = os.path.join(self.workdir, self.label.replace(" ", "-") + ".rules")
        with open(self.path, "w") as f:
            f.write(rs.text)
        ordered = {d: rs.by_dir(d) for d in DIRS}
        self.ordered = ordered

        # ---- lint --------------------------------------------------------------
        rc, doc, err = lint(self.path)
        fails = []
        if doc is None:
            self.tap.point(False, "%s: lint" % self.label, self.header() + [err])
            return None
        self.doc = doc
        findings = doc.get("findings")
        rules = doc.get("rules")
        if not isinstance(findings, list) or not isinstance(rules, list):
            fails.append("lint JSON lacks a findings or rules array")
            findings, rules = findings or [], rules or []
        worse = [f for f in findings if f.get("severity") in ("error", "warning")]
        if rc != (1 if worse else 0):
            fails.append("lint exit status %d with %d finding(s) at warning or worse" %
                         (rc, len(worse)))
        listed = {}
        for e in rules:
            if e.get("stage") != "nacl":
                fails.append("lint lists a non-NACL rule: %s" % e)
                continue
            key = (e.get("dir"), e.get("number"))
            if key in listed:
                fails.append("lint lists nacl %s %s twice" % key)
            listed[key] = e
            r = rs.find(*key)
            if r is None:
                fails.append("lint lists nacl %s %s, which is not in the file" % key)
            elif e.get("line") != r.line:
                fails.append("lint says %s is on line %s; it is on line %d" %
                             (r.name(), e.get("line"), r.line))
            if e.get("status") not in ("live", "shadowed", "unknown"):
                fails.append("nacl %s %s: status %r" % (key + (e.get("status"),)))
        for r in rs.rules:
            if (r.dir, r.num) not in listed:
                fails.append("lint does not list %s" % r.name())
        for f in findings:
            if f.get("kind") not in FINDING_KINDS:
                fails.append("finding of kind %r in a NACL-only file: %s" %
                             (f.get("kind"), f.get("message")))
            for ref in f.get("rules") or []:
                if ref.get("stage") != "nacl" or rs.find(ref.get("dir"),
                                                         ref.get("number")) is None:
                    fails.append("finding %r names a rule not in the file: %s" %
                                 (f.get("kind"), ref))
        self.listed = listed
        self.shadowed = {d: {n for (dd, n), e in listed.items()
                             if dd == d and e.get("status") == "shadowed"} for d in DIRS}
        kinds = {}
        for f in findings:
            kinds[f.get("kind")] = kinds.get(f.get("kind"), 0) + 1
        self.kinds = kinds
        self.tap.point(not fails, "%s: lint JSON whole and exit status %d consistent "
                       "(%d rules, findings %s)" %
                       (self.label, rc, len(rs.rules),
                        ", ".join("%s %d" % kv for kv in sorted(kinds.items())) or "none"),
                       (self.header() + fails) if fails else ())

        # ---- the packets -----------------------------------------------------------
        parse_fails = []
        rule_wit = []  # (index, Rule)
        for (d, num), e in sorted(listed.items()):
            r = rs.find(d, num)
            if r is None or e.get("status") == "shadowed":
                continue
            w = e.get("witness")
            if not w:
                rule_wit.append((None, r, "lint calls it %s but gives no witness" %
                                 e.get("status")))
                continue
            try:
                p = parse_packet(w["packet"])
            except (ValueError, KeyError, IndexError) as ex:
                parse_fails.append("%s: witness %r unreadable: %s" % (r.name(), w, ex))
                continue
            if w.get("dir") != d:
                rule_wit.append((None, r, "witness direction %r" % w.get("dir")))
                continue
            rule_wit.append((self.add(d, w["packet"], p, "rule-witness"), r, None))

        fw = []  # (finding, [indices])
        for f in findings:
            idx = []
            for w in f.get("witness") or []:
                try:
                    p = parse_packet(w["packet"])
                except (ValueError, KeyError, IndexError) as ex:
                    parse_fails.append("finding %r: witness %r unreadable: %s" %
                                       (f.get("kind"), w, ex))
                    idx = None
                    break
                idx.append(self.add(w.get("dir"), w["packet"], p, "finding-witness"))
            if idx is not None:
                fw.append((f, idx))

        # region samples and "all their replies" samples
        region_checks = []  # (finding, opener index, reply index, region ok)
        for f, _ in fw:
            kind = f.get("kind")
            if kind not in ("connection-hole", "missing-return-path"):
                continue
            for reg in f.get("regions") or []:
                try:
                    g = region_of(reg)
                except (ValueError, KeyError) as ex:
                    parse_fails.append("finding %r: region %r unreadable: %s" %
                                       (kind, reg, ex))
                    continue
                for d, p in region_samples(self.rng, g, 8):
                    rp = p.reply()
                    region_checks.append((f, self.add(d, p.text(), p, "region"),
                                          self.add(OTHER[d], rp.text(), rp, "region")))
        all_checks = []
        for f, _ in fw:
            if f.get("kind") != "missing-return-path" or "drops all their" not in \
                    f.get("message", ""):
                continue
            ref = (f.get("rules") or [{}])[0]
            lr = rs.find(ref.get("dir"), ref.get("number"))
            if lr is None:
                continue
            d = lr.dir
            eph = rs.peer_ephemeral() if d == "in" else rs.local_ephemeral()
            for _ in range(16):
                p = gen_in_rule(self.rng, rs, lr)
                if p is None or p.frag:
                    continue
                if p.proto in (6, 17):
                    # the client's port is ephemeral: the source of the opener
                    p.sport = self.rng.choice([eph[0], eph[1], self.rng.randint(*eph)])
                    p.flags = "S"
                elif (p.proto, p.fam) in ((1, 4), (58, 6)):
                    p.itype, p.icode = ECHO[p.proto][0], 0
                else:
                    continue  # (icmp of the other family has no echo: no header)
                p.normalize()
                rp = p.reply()
                all_checks.append((f, lr, self.add(d, p.text(), p, "all-replies"),
                                   self.add(OTHER[d], rp.text(), rp, "all-replies")))

        # random packets, and packets aimed at each shadowed rule
        rng = self.rng
        for _ in range(self.n_random):
            d = rng.choice(DIRS)
            p = None
            if rng.random() < 0.65 and ordered[d]:
                p = gen_in_rule(rng, rs, rng.choice(ordered[d]))
                if p is not None and rng.random() < 0.3:
                    p = perturb(rng, rs, p)
            if p is None:
                p = gen_random(rng, rs)
            self.add(d, p.text(), p, "random")
        for d in DIRS:
            for num in sorted(self.shadowed[d]):
                r = rs.find(d, num)
                for _ in range(30):
                    p = gen_in_rule(rng, rs, r)
                    if p is None:
                        break
                    self.add(d, p.text(), p, "aimed")
        for d, text in extra:
            self.add(d, text, parse_packet(text), "extra")

        # ---- trace ------------------------------------------------------------------------
        t0 = time.time()
        results, terrs = trace_batch(self.path, [(it[0], it[1]) for it in self.items],
                                     self.workdir)
        self.trace_secs = time.time() - t0
        self.results = results
        tfails = list(parse_fails)
        for i, msg in terrs:
            if i is None:
                tfails.append(msg)
            else:
                tfails.append("%s packet %s %s: %s" % (self.items[i][3], self.items[i][0],
                                                      self.items[i][1], msg))
        for i, res in results.items():
            if res.get("direction") != self.items[i][0]:
                tfails.append("result %d is for direction %r, asked %r" %
                              (i, res.get("direction"), self.items[i][0]))
        self.tap.point(not tfails and len(results) == len(self.items),
                       "%s: trace judged all %d packets in one load (%.1fs)" %
                       (self.label, len(self.items), self.trace_secs),
                       (self.header() + tfails) if tfails else ())
        if not results:
            return None

        # ---- the model agrees with trace (so its "matches rule N" can be used) ---
        mfails = []
        for i, res in sorted(results.items()):
            d, text, p, tag = self.items[i]
            m = first_match(ordered[d], p)
            got = (res.get("nacl") or {}).get("rule")
            want_verdict = "pass" if m is not None and m.action == "allow" else "drop"
            if got != (m.num if m else None) or res.get("verdict") != want_verdict:
                if len(mfails) < 8:
                    mfails.append("%s %s (%s): first match by the contract is %s, trace: %s"
                                  % (d, text, tag, m.text() if m else "none (implicit deny)",
                                     rdesc(res)))
                    mfails.append("  reproduce: " + self.repro(i))
                else:
                    mfails.append(None)
        n_more = sum(1 for x in mfails if x is None)
        mfails = [x for x in mfails if x is not None]
        if n_more:
            mfails.append("... and %d more" % n_more)
        self.tap.point(not mfails, "%s: first-match model agrees with trace on %d packets" %
                       (self.label, len(results)),
                       (self.header() + mfails) if mfails else ())

        # ---- each rule not called shadowed: its witness is decided by it --------------
        wfails = []
        nlive = 0
        for i, r, why in rule_wit:
            if why:
                wfails.append("%s: %s" % (r.name(), why))
                continue
            res = results.get(i)
            if res is None:
                continue
            nlive += 1
            got = (res.get("nacl") or {}).get("rule")
            verdict = "pass" if r.action == "allow" else "drop"
            if got != r.num or res.get("verdict") != verdict:
                wfails.append("%s (%s): its witness %s %s -> %s" %
                              (r.name(), r.action, self.items[i][0], self.items[i][1],
                               rdesc(res)))
                wfails.append("  reproduce: " + self.repro(i))
        self.tap.point(not wfails, "%s: %d rules not called shadowed each decide their own "
                       "witness" % (self.label, nlive), (self.header() + wfails)
                       if wfails else ())

        # ---- findings' witnesses ---------------------------------------------------
        ffails = []
        for f, idx in fw:
            ffails += self.check_finding(f, idx)
        for f, oi, ri in region_checks:
            ffails += self.check_region(f, oi, ri)
        n_all = 0
        for f, lr, oi, ri in all_checks:
            ro, rr = results.get(oi), results.get(ri)
            if not ro or not rr:
                continue
            if (ro.get("nacl") or {}).get("rule") != lr.num or ro.get("verdict") != "pass":
                continue  # not an opener lr decides: the claim is not about it
            n_all += 1
            if rr.get("verdict") != "drop":
                ffails.append("[missing-return-path] %s: \"%s\"; yet opener %s %s (passed by "
                              "it) has its reply %s %s passing: %s" %
                              (lr.name(), f.get("message"), self.items[oi][0],
                               self.items[oi][1], self.items[ri][0], self.items[ri][1],
                               rdesc(rr)))
                ffails.append("  reproduce: " + self.repro(ri))
        # a direction that denies everything: every packet of it dropped
        for f, idx in fw:
            if f.get("kind") != "denies-everything" or not idx:
                continue
            d = self.items[idx[0]][0]
            passed = [i for i, res in results.items()
                      if self.items[i][0] == d and res.get("verdict") == "pass"]
            if passed:
                i = passed[0]
                ffails.append("[denies-everything] \"%s\"; yet %d %s packets pass, e.g. %s "
                              "-> %s" % (f.get("message"), len(passed), d, self.items[i][1],
                                         rdesc(results[i])))
                ffails.append("  reproduce: " + self.repro(i))
        self.tap.point(not ffails, "%s: %d finding witnesses, %d region samples, %d "
                       "\"all their replies\" samples confirmed" %
                       (self.label, sum(len(x) for _, x in fw), len(region_checks), n_all),
                       (self.header() + ffails) if ffails else ())

        # ---- shadowed rules never win ----------------------------------------------------
        sfails = []
        aimed = inside = 0
        for i, res in results.items():
            d, text, p, tag = self.items[i]
            got = (res.get("nacl") or {}).get("rule")
            if tag == "aimed":
                aimed += 1
            if any(rule_matches(rs.find(d, n), p) for n in self.shadowed[d]):
                inside += 1
            if got in self.shadowed[d]:
                if len(sfails) < 10:
                    sfails.append("nacl %s %s, called shadowed, decides %s %s (%s): %s" %
                                  (d, got, d, text, tag, rdesc(res)))
                    sfails.append("  reproduce: " + self.repro(i))
        nshadow = sum(len(v) for v in self.shadowed.values())
        self.tap.point(not sfails, "%s: %d shadowed rules never decide any of %d packets "
                       "(%d aimed at them, %d inside one)" %
                       (self.label, nshadow, len(results), aimed, inside),
                       (self.header() + sfails) if sfails else ())
        self.stats = {"rules": len(rs.rules), "live": nlive, "shadowed": nshadow,
                      "findings": len(fw), "witnesses": sum(len(x) for _, x in fw),
                      "regions": len(region_checks), "all": n_all,
                      "packets": len(results), "inside": inside}
        for k, v in kinds.items():
            self.stats["kind:" + k] = v
        return self

    # what each kind of finding claims of its witness
    def check_finding(self, f, idx):
        rs, results, items = self.rs, self.results, self.items
        kind = f.get("kind")
        refs = f.get("rules") or []
        msg = f.get("message", "")
        out = []

        def fail(text, i=None):
            out.append("[%s] \"%s\": %s" % (kind, msg, text))
            if i is not None:
                out.append("  reproduce: " + self.repro(i))

        def res(i):
            return results.get(i) or {}

        def rule_of(i):
            return (res(i).get("nacl") or {}).get("rule")

        if any(i not in results for i in idx):
            return out  # trace refused it: already reported
        ref_rules = [rs.find(r.get("dir"), r.get("number")) for r in refs]
        if any(r is None for r in ref_rules):
            return out  # reported with the lint checks
        if kind in ("connection-hole", "missing-return-path"):
            if len(idx) != 2 or not ref_rules:
                fail("expected a witness pair and the rule, got %d witnesses, %d rules" %
                     (len(idx), len(ref_rules)))
                return out
            lr = ref_rules[0]
            (d0, t0, p0, _), (d1, t1, p1, _) = items[idx[0]], items[idx[1]]
            if d0 != lr.dir or d1 != OTHER[d0]:
                fail("witness directions %s, %s for %s" % (d0, d1, lr.name()))
                return out
            if not same_packet(p1, p0.reply()):
                fail("the second witness %s is not the reply to %s (expected %s)" %
                     (t1, t0, p0.reply().text()))
            if p0.proto == 6 and p0.flags != "S":
                fail("the opener %s is not a SYN" % t0)
            if p0.proto in ECHO and p0.itype != ECHO[p0.proto][0]:
                fail("the opener %s is not an echo request" % t0)
            if res(idx[0]).get("verdict") != "pass" or rule_of(idx[0]) != lr.num:
                fail("opener %s %s should pass, decided by %s; trace: %s" %
                     (d0, t0, lr.name(), rdesc(res(idx[0]))), idx[0])
            other = [r for r in ref_rules[1:] if r.dir == d1]
            if kind == "connection-hole":
                if res(idx[1]).get("verdict") != "pass" or \
                        (other and rule_of(idx[1]) != other[0].num):
                    fail("reply %s %s should pass%s; trace: %s" %
                         (d1, t1, ", decided by " + other[0].name() if other else "",
                          rdesc(res(idx[1]))), idx[1])
            else:
                want = other[0].num if other else None
                if res(idx[1]).get("verdict") != "drop" or rule_of(idx[1]) != want:
                    fail("reply %s %s should be dropped by %s; trace: %s" %
                         (d1, t1, other[0].name() if other else "the implicit deny",
                          rdesc(res(idx[1]))), idx[1])
                if other and other[0].action != "deny":
                    fail("names %s (an allow rule) as what drops the replies" %
                         other[0].name())
            regs = f.get("regions") or []
            if regs and len(regs) == f.get("regions_total"):
                try:
                    inside = any(opener_in_region(p0, d0, region_of(g)) for g in regs)
                except (ValueError, KeyError):
                    inside = True  # reported with the region checks
                if not inside:
                    fail("the opener %s %s lies in none of the %d regions %s" %
                         (d0, t0, len(regs), regs))
        elif kind == "partly-overridden":
            if len(idx) != 1 or len(ref_rules) != 2:
                fail("expected one witness and two rules, got %d, %d" %
                     (len(idx), len(ref_rules)))
                return out
            lr, by = ref_rules
            d, t, p, _ = items[idx[0]]
            if d != lr.dir or by.dir != lr.dir or by.num >= lr.num or \
                    by.action == lr.action:
                fail("%s (%s) cannot override %s (%s)" % (by.name(), by.action, lr.name(),
                                                          lr.action))
            verdict = "pass" if by.action == "allow" else "drop"
            if rule_of(idx[0]) != by.num or res(idx[0]).get("verdict") != verdict:
                fail("witness %s %s should be decided by %s (%s); trace: %s" %
                     (d, t, by.name(), by.action, rdesc(res(idx[0]))), idx[0])
            if not rule_matches(lr, p):
                fail("witness %s %s is not matched by %s itself (`%s`)" %
                     (d, t, lr.name(), lr.text()), idx[0])
        elif kind == "shadowed":
            if not ref_rules or len(idx) > 1:
                fail("expected the rule and at most one witness")
                return out
            lr = ref_rules[0]
            if self.listed.get((lr.dir, lr.num), {}).get("status") != "shadowed":
                fail("%s is not shadowed in the rules array" % lr.name())
            if not idx:
                if "can never match" not in msg:
                    fail("no witness, yet it does not say the rule can never match")
                return out
            d, t, p, _ = items[idx[0]]
            got = rule_of(idx[0])
            if d != lr.dir or got is None or got >= lr.num:
                fail("witness %s %s should be decided by a rule before %s; trace: %s" %
                     (d, t, lr.name(), rdesc(res(idx[0]))), idx[0])
            if not rule_matches(lr, p):
                fail("witness %s %s is not matched by %s itself (`%s`)" %
                     (d, t, lr.name(), lr.text()), idx[0])
            # (the rules it names cover the rule; the witness may be decided by
            # another earlier rule, which the finding does not claim otherwise)
        elif kind == "denies-everything":
            for i in idx:
                if res(i).get("verdict") != "drop":
                    fail("witness %s %s passes: %s" % (items[i][0], items[i][1],
                                                       rdesc(res(i))), i)
        return out

    def check_region(self, f, oi, ri):
        kind = f.get("kind")
        lr = self.rs.find(f["rules"][0]["dir"], f["rules"][0]["number"])
        ro, rr = self.results.get(oi), self.results.get(ri)
        if lr is None or ro is None or rr is None:
            return []
        bad = []
        if ro.get("verdict") != "pass" or (ro.get("nacl") or {}).get("rule") != lr.num:
            bad.append("opener %s %s should pass, decided by %s; trace: %s" %
                       (self.items[oi][0], self.items[oi][1], lr.name(), rdesc(ro)))
            i = oi
        want = "pass" if kind == "connection-hole" else "drop"
        if rr.get("verdict") != want:
            bad.append("reply %s %s should %s; trace: %s" %
                       (self.items[ri][0], self.items[ri][1],
                        "pass" if want == "pass" else "be dropped", rdesc(rr)))
            i = ri
        if not bad:
            return []
        return ["[%s] \"%s\": region sample: %s" % (kind, f.get("message"), "; ".join(bad)),
                "  reproduce: " + self.repro(i)]


# ---- the demo's scenario ----------------------------------------------------------------


def demo_ruleset(established):
    rs = Ruleset()
    b = rs.field("198.18.2.0/24")
    rs.rules = [Rule("out", 100, "allow", "tcp", dst=b, dport=(9000, 9000)),
                Rule("in", 100, "allow", "tcp", src=b, dport=(1024, 65535),
                     est=established)]
    rs.pools = {4: [b[1][0], Prefix.parse("198.18.0.0/15")],
                6: [Prefix.parse("fd00::/16")]}
    rs.ports = [0, 1023, 1024, 8999, 9000, 9001, 65535]
    rs.render()
    return rs


def demo(tap, rng, workdir, seed_note, n_random):
    tap.note("the demo's stateless scenario")
    sc = SetCheck(tap, "demo", demo_ruleset(False), rng, workdir, seed_note, n_random)
    hole = None
    if sc.run() is None:
        return
    holes = [f for f in sc.doc["findings"] if f.get("kind") == "connection-hole"]
    fails = []
    if len(holes) != 1:
        fails.append("expected one connection-hole finding, got %d: %s" %
                     (len(holes), json.dumps(sc.doc["findings"], indent=1)))
    else:
        hole = holes[0]
        refs = [(r.get("dir"), r.get("number")) for r in hole.get("rules") or []]
        wit = hole.get("witness") or []
        if refs[:2] != [("in", 100), ("out", 100)]:
            fails.append("the hole should name nacl in 100 then nacl out 100: %s" % refs)
        if len(wit) != 2:
            fails.append("expected a witness pair: %s" % wit)
        else:
            syn, synack = parse_packet(wit[0]["packet"]), parse_packet(wit[1]["packet"])
            b = Prefix.parse("198.18.2.0/24")
            if wit[0]["dir"] != "in" or syn.proto != 6 or syn.flags != "S" or \
                    not b.contains(syn.fam, syn.src) or syn.sport != 9000 or \
                    not 1024 <= syn.dport <= 65535:
                fails.append("the first witness should be an inbound SYN from "
                             "198.18.2.0/24 port 9000 to a port >= 1024: %s" % wit[0])
            if wit[1]["dir"] != "out" or not same_packet(synack, syn.reply()):
                fails.append("the second witness should be its outbound SYN-ACK: %s" % wit[1])
        if sc.doc.get("summary", {}).get("warnings", 0) < 1:
            fails.append("the hole should count as a warning: %s" % sc.doc.get("summary"))
    tap.point(not fails, "demo: lint reports the source-port-9000 connection hole with a "
              "witness pair", (sc.header() + fails) if fails else ())
    if hole is None:
        return
    # both packets of the pair pass the real datapath
    texts = [w["packet"] for w in hole["witness"]]
    idx = [next(i for i, it in enumerate(sc.items)
                if it[3] == "finding-witness" and it[1] == t) for t in texts]
    res = [sc.results.get(i) or {} for i in idx]
    ok = all(r.get("verdict") == "pass" and (r.get("nacl") or {}).get("rule") == 100
             for r in res)
    tap.point(ok, "demo: trace passes both witness packets (SYN in, SYN-ACK out)",
              [] if ok else sc.header() + ["%s %s -> %s" % (w["dir"], w["packet"], rdesc(r))
                                           for w, r in zip(hole["witness"], res)])

    # with `established` on the return rule
    syn = hole["witness"][0]["packet"]
    synack = parse_packet(syn).reply()
    real_reply = parse_packet(syn)
    real_reply.sport = 9000
    real_reply.dport = 40000
    real_reply.flags = "SA"
    real_reply.normalize()
    opener = real_reply.reply()
    opener.flags = "S"
    extra = [("in", syn), ("in", real_reply.text()), ("out", opener.text())]
    sc2 = SetCheck(tap, "demo+established", demo_ruleset(True), rng, workdir, seed_note,
                   n_random)
    if sc2.run(extra) is None:
        return
    left = [f for f in sc2.doc["findings"] if f.get("kind") == "connection-hole"]
    tap.point(not left, "demo+established: lint reports no connection hole",
              [] if not left else sc2.header() + [json.dumps(f) for f in left])
    ex = [i for i, it in enumerate(sc2.items) if it[3] == "extra"]
    r_syn, r_reply, r_open = (sc2.results.get(i) or {} for i in ex)
    ok = r_syn.get("verdict") == "drop" and (r_syn.get("nacl") or {}).get("rule") is None
    tap.point(ok, "demo+established: trace drops the SYN witness (in %s)" % syn,
              [] if ok else sc2.header() + ["in %s -> %s" % (syn, rdesc(r_syn))])
    ok = r_reply.get("verdict") == "pass" and r_open.get("verdict") == "pass"
    tap.point(ok, "demo+established: the real connection still works (out %s; in %s)" %
              (opener.text(), real_reply.text()),
              [] if ok else sc2.header() + ["out: " + rdesc(r_open), "in: " + rdesc(r_reply)])


# ---- main ---------------------------------------------------------------------------------


def env_int(name, default):
    v = os.environ.get(name)
    if not v:
        return default
    try:
        return int(v)
    except ValueError:
        print("Bail out! %s=%r is not a number" % (name, v))
        sys.exit(2)


def main():
    nsets = env_int("MOAT_LINT_SETS", 40)
    n_random = env_int("MOAT_LINT_PACKETS", 2500)
    seed_env = os.environ.get("MOAT_LINT_SEED", "")
    only = None
    if seed_env:
        seed, _, one = seed_env.partition(":")
        if one:
            only = int(one)
    else:
        seed = str(random.SystemRandom().randrange(1 << 32))
    print("# seed %s (MOAT_LINT_SEED=%s to repeat), %d random rule files, moat %s" %
          (seed, seed, nsets, MOAT))
    tap = Tap()
    if not os.access(MOAT, os.X_OK):
        tap.point(False, "moat binary", ["not executable: %s (make moat, or set MOAT)" % MOAT])
        print("1..%d" % tap.n)
        return 1
    workdir = tempfile.mkdtemp(prefix="moat-lint-witness-")
    start = time.time()
    totals = {}
    try:
        if only is None:
            demo(tap, random.Random("%s:demo" % seed), workdir, "seed %s (demo)" % seed,
                 min(n_random, 500))
        todo = [only] if only is not None else range(nsets)
        for i in todo:
            rng = random.Random("%s:%d" % (seed, i))
            rs = gen_ruleset(rng)
            rs.render(rng)
            note = "seed %s, file %d (MOAT_LINT_SEED=%s:%d repeats only it)" % (seed, i,
                                                                              seed, i)
            sc = SetCheck(tap, "file %d" % i, rs, rng, workdir, note, n_random)
            sc.run()
            for k, v in sc.stats.items():
                totals[k] = totals.get(k, 0) + v
    finally:
        secs = time.time() - start
        if tap.failed:
            print("# failures: rule files and packet batches kept in %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("# checked: %d rules (%d live witnesses, %d shadowed), %d findings (%s), %d "
          "finding witnesses, %d region samples, %d \"all replies\" samples, %d packets "
          "traced (%d inside a shadowed rule), in %.0fs" %
          (totals.get("rules", 0), totals.get("live", 0), totals.get("shadowed", 0),
           totals.get("findings", 0),
           ", ".join("%s %d" % (k[5:], v) for k, v in sorted(totals.items())
                     if k.startswith("kind:")),
           totals.get("witnesses", 0), totals.get("regions", 0), totals.get("all", 0),
           totals.get("packets", 0), totals.get("inside", 0), secs))
    print("1..%d" % tap.n)
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
