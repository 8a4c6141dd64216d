#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""
aws_eval.py - hold `moat import aws` to AWS's documented semantics.

This evaluator shares no code with moat: it reads the AWS CLI JSON itself,
judges random packets the way the EC2 documentation says AWS does, and
compares with what `moat trace --rules IMPORTED in|out PACKET --json` says
about the rules `moat import aws` made of the same JSON.

AWS semantics modelled (EC2 API reference and VPC user guide):
  NACL  entries of one direction are tried in ascending RuleNumber; the first
        whose protocol, CIDR (src for ingress, dst for egress), destination
        port range and ICMP type/code all match decides; the `*` entries
        (32767, 32768 for IPv6) deny; no match denies. Protocol -1 and any
        number other than 6, 17, 1, 58 match all ports and ICMP types
        ("regardless of any ports or ICMP types or codes that you specify");
        PortRange applies to 6 and 17 only; IcmpTypeCode to 1, and to 58 with
        an IPv6 CIDR (with an IPv4 CIDR, 58 allows "all ICMP types and
        codes"); Type -1 is any type, Code -1 any code.
  SG    allow only; a packet of a new flow passes when any rule of its
        direction (of any selected group: a union) matches. IpProtocol -1 or a
        number other than tcp/udp/icmp/icmpv6 matches all ports; FromPort and
        ToPort are the destination port range for tcp/udp and the ICMP type and
        code for icmp/icmpv6, -1 meaning any. A referenced group stands for
        the private IPv4 and IPv6 addresses of the network interfaces in it
        (describe-network-interfaces), a prefix list for its entries
        (get-managed-prefix-list-entries, the id from the file name
        pl-XXXX.json or --prefix-list ID=FILE); --members FILE adds
        `ID CIDR...` lines.
  Order as in a VPC: inbound NACL then SG, outbound SG then NACL.

Not generated (moat-specific or undocumented in AWS): IPv6 neighbour
discovery (ICMPv6 133-137, which moat passes before any stage), non-first
fragments, ICMP of one family inside the other family (except protocol 58
over IPv4 without a type, which both sides treat as "no ICMP header").

Every packet is judged alone (trace changes no conntrack), so SG packets
are new flows; tcp packets carry SYN when an SG is on.

With no FILE, every scenario of tests/data/aws is run. Output: one line per
mismatch, then "SCENARIO: N passed, M failed" per scenario and a total;
exit 0 when nothing failed, 1 otherwise.
"""
import argparse
import concurrent.futures
import ipaddress
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

ALL = -1
STAR_NUMBERS = (32767, 32768)
PROTO_NAMES = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}
NDP_TYPES = range(133, 138)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "tests", "data", "aws")

# Built-in scenarios: (name, moat import arguments relative to DATA).
SCENARIOS = [
    ("default-nacl", ["nacl-default.json"]),
    ("web-tier-nacl", ["nacl-web-tier.json"]),
    ("ipv6-nacl", ["nacl-ipv6.json"]),
    ("icmp-nacl", ["nacl-icmp.json"]),
    ("protocols-nacl", ["nacl-protocols.json"]),
    ("new-custom-nacl", ["nacl-custom-new.json"]),
    ("doc-nacl-1", ["--nacl", "acl-0ea1f54ca7EXAMPLE", "describe-network-acls.json"]),
    ("doc-nacl-2", ["--nacl", "acl-0e2a78e4e2EXAMPLE", "describe-network-acls.json"]),
    ("doc-sg", ["describe-security-groups.json"]),
    ("doc-sg-rules", ["describe-security-group-rules.json"]),
    ("sg-tiers", ["sg-tiers.json", "describe-network-interfaces.json",
                  "pl-0a1b2c3d4e5f60718.json", "--members", "members.txt"]),
    ("sg-app", ["--sg", "sg-0a1b2c3d4e5f60002", "sg-tiers.json",
                "describe-network-interfaces.json"]),
    ("web-nacl-and-sg", ["--sg", "sg-0a1b2c3d4e5f60001", "nacl-web-tier.json", "sg-tiers.json",
                         "describe-network-interfaces.json",
                         "--prefix-list", "pl-0a1b2c3d4e5f60718=pl-0a1b2c3d4e5f60718.json"]),
]


class InputError(Exception):
    pass


def aws_proto(value, where):
    s = str(value).strip().lower()
    if s == "-1":
        return ALL
    if s in PROTO_NAMES:
        return PROTO_NAMES[s]
    if s.isdigit() and int(s) <= 255:
        return int(s)
    raise InputError("%s: unknown protocol %r" % (where, value))


def icmp_parsed(proto, version):
    """Whether a packet carries an ICMP header of its own family."""
    return (proto == 1 and version == 4) or (proto == 58 and version == 6)


# ---- AWS network ACL -------------------------------------------------------

class NaclEntry:
    def __init__(self, e, where):
        self.number = int(e["RuleNumber"])
        self.egress = bool(e["Egress"])
        self.allow = e["RuleAction"] == "allow"
        self.proto = aws_proto(e["Protocol"], where)
        cidr = e.get("CidrBlock") or e.get("Ipv6CidrBlock")
        self.net = ipaddress.ip_network(cidr)
        self.ports = None
        self.icmp_type = self.icmp_code = None
        if self.proto in (6, 17) and "PortRange" in e:
            self.ports = (int(e["PortRange"]["From"]), int(e["PortRange"]["To"]))
        if self.proto == 1 or (self.proto == 58 and self.net.version == 6):
            tc = e.get("IcmpTypeCode")
            if tc and int(tc["Type"]) != -1:
                self.icmp_type = int(tc["Type"])
                if int(tc.get("Code", -1)) != -1:
                    self.icmp_code = int(tc["Code"])

    def matches(self, p):
        if self.proto != ALL and self.proto != p.proto:
            return False
        peer = p.dst if self.egress else p.src
        if peer.version != self.net.version or peer not in self.net:
            return False
        if self.ports and not (self.ports[0] <= p.dport <= self.ports[1]):
            return False
        if self.icmp_type is not None:
            if not icmp_parsed(p.proto, p.version) or p.icmp_type != self.icmp_type:
                return False
            if self.icmp_code is not None and p.icmp_code != self.icmp_code:
                return False
        return True


class Nacl:
    def __init__(self, acl, where):
        self.id = acl["NetworkAclId"]
        self.entries = sorted((NaclEntry(e, "%s.Entries[%d]" % (where, i))
                               for i, e in enumerate(acl.get("Entries", []))),
                              key=lambda x: x.number)
        self.real_numbers = {(x.egress, x.number) for x in self.entries
                             if x.number not in STAR_NUMBERS}

    def judge(self, p, egress):
        """(number or None for the final deny, allowed)."""
        for e in self.entries:
            if e.egress == egress and e.matches(p):
                if e.number in STAR_NUMBERS:
                    return None, False
                return e.number, e.allow
        return None, False

    def networks(self):
        return [e.net for e in self.entries]


# ---- AWS security groups ---------------------------------------------------

class SgRule:
    def __init__(self, egress, proto, from_port, to_port, peers, origin):
        self.egress = egress
        self.proto = proto
        self.peers = peers  # list of networks (a group or list: its members)
        self.origin = origin
        self.ports = None
        self.icmp_type = self.icmp_code = None
        fp = -1 if from_port is None else int(from_port)
        tp = -1 if to_port is None else int(to_port)
        if proto in (6, 17) and fp != -1:
            self.ports = (fp, tp)
        elif proto in (1, 58) and fp != -1:
            self.icmp_type = fp
            if tp != -1:
                self.icmp_code = tp

    def matches(self, p):
        if self.proto != ALL and self.proto != p.proto:
            return False
        peer = p.dst if self.egress else p.src
        if not any(peer.version == n.version and peer in n for n in self.peers):
            return False
        if self.ports and not (self.ports[0] <= p.dport <= self.ports[1]):
            return False
        if self.icmp_type is not None:
            if not icmp_parsed(p.proto, p.version) or p.icmp_type != self.icmp_type:
                return False
            if self.icmp_code is not None and p.icmp_code != self.icmp_code:
                return False
        return True


class Members:
    """Who a referenced group or prefix list stands for."""

    def __init__(self):
        self.of = {}

    def add(self, ident, net):
        self.of.setdefault(ident, [])
        if net not in self.of[ident]:
            self.of[ident].append(net)

    def get(self, ident):
        return self.of.get(ident, [])


def host_net(addr):
    a = ipaddress.ip_address(addr)
    return ipaddress.ip_network("%s/%d" % (a, a.max_prefixlen))


class Input:
    def __init__(self):
        self.acls = []    # (acl json, where)
        self.sgs = []     # (group json, where)
        self.sg_rules = []  # (rule json, where)
        self.members = Members()

    def add_json(self, path, pl_id=None):
        with open(path) as f:
            doc = json.load(f)
        name = os.path.basename(path)
        for i, acl in enumerate(doc.get("NetworkAcls", [])):
            self.acls.append((acl, "%s:NetworkAcls[%d]" % (name, i)))
        for i, g in enumerate(doc.get("SecurityGroups", [])):
            self.sgs.append((g, "%s:SecurityGroups[%d]" % (name, i)))
        for i, r in enumerate(doc.get("SecurityGroupRules", [])):
            self.sg_rules.append((r, "%s:SecurityGroupRules[%d]" % (name, i)))
        for eni in doc.get("NetworkInterfaces", []):
            addrs = []
            if eni.get("PrivateIpAddress"):
                addrs.append(host_net(eni["PrivateIpAddress"]))
            addrs += [host_net(a["PrivateIpAddress"]) for a in eni.get("PrivateIpAddresses", [])]
            addrs += [host_net(a["Ipv6Address"]) for a in eni.get("Ipv6Addresses", [])]
            for g in eni.get("Groups", []):
                for a in addrs:
                    self.members.add(g["GroupId"], a)
        if "Entries" in doc:
            if not pl_id:
                m = re.search(r"(?<![0-9A-Za-z])pl-[0-9A-Za-z]+", name)
                if not m:
                    raise InputError("%s: prefix-list entries without an id" % path)
                pl_id = m.group(0)
            self.members.of.setdefault(pl_id, [])
            for e in doc["Entries"]:
                self.members.add(pl_id, ipaddress.ip_network(e["Cidr"]))

    def add_members(self, path):
        with open(path) as f:
            for line in f:
                words = line.split("#", 1)[0].split()
                if not words:
                    continue
                for w in words[1:]:
                    net = ipaddress.ip_network(w) if "/" in w else host_net(w)
                    self.members.add(words[0], net)

    def nacl(self, nacl_id):
        ids = []
        for acl, where in self.acls:
            if acl["NetworkAclId"] not in ids:
                ids.append(acl["NetworkAclId"])
        if nacl_id:
            for acl, where in self.acls:
                if acl["NetworkAclId"] == nacl_id:
                    return Nacl(acl, where)
            raise InputError("no network ACL %s" % nacl_id)
        if len(ids) > 1:
            raise InputError("several network ACLs: choose with --nacl")
        return Nacl(self.acls[0][0], self.acls[0][1]) if self.acls else None

    def sg_rules_for(self, sg_ids):
        """The union of the rules of the selected groups, or None if none is."""
        known = [g["GroupId"] for g, _ in self.sgs] + [r["GroupId"] for r, _ in self.sg_rules]
        chosen = set(sg_ids) if sg_ids else set(known)
        if not chosen:
            return None
        rules = []

        def peer_list(kind, value):
            if kind == "cidr":
                return [ipaddress.ip_network(value)]
            return self.members.get(value)

        for g, where in self.sgs:
            if g["GroupId"] not in chosen:
                continue
            for key, egress in (("IpPermissions", False), ("IpPermissionsEgress", True)):
                for i, perm in enumerate(g.get(key, [])):
                    proto = aws_proto(perm["IpProtocol"], where)
                    peers = []
                    peers += [peer_list("cidr", r["CidrIp"]) for r in perm.get("IpRanges", [])]
                    peers += [peer_list("cidr", r["CidrIpv6"]) for r in perm.get("Ipv6Ranges", [])]
                    peers += [peer_list("id", r["PrefixListId"])
                              for r in perm.get("PrefixListIds", [])]
                    peers += [peer_list("id", r["GroupId"])
                              for r in perm.get("UserIdGroupPairs", [])]
                    for j, pl in enumerate(peers):
                        rules.append(SgRule(egress, proto, perm.get("FromPort"), perm.get("ToPort"),
                                            pl, "%s.%s[%d] peer %d" % (where, key, i, j)))
        for r, where in self.sg_rules:
            if r["GroupId"] not in chosen:
                continue
            if "CidrIpv4" in r:
                peers = peer_list("cidr", r["CidrIpv4"])
            elif "CidrIpv6" in r:
                peers = peer_list("cidr", r["CidrIpv6"])
            elif "PrefixListId" in r:
                peers = peer_list("id", r["PrefixListId"])
            else:
                peers = peer_list("id", r["ReferencedGroupInfo"]["GroupId"])
            rules.append(SgRule(bool(r["IsEgress"]), aws_proto(r["IpProtocol"], where),
                                r.get("FromPort"), r.get("ToPort"), peers, where))
        return rules


# ---- packets ---------------------------------------------------------------

class Packet:
    def __init__(self, proto, src, dst, sport=None, dport=None, flags=None, icmp=None):
        self.proto, self.src, self.dst = proto, src, dst
        self.version = src.version
        self.sport, self.dport, self.flags = sport, dport, flags
        self.icmp_type, self.icmp_code = icmp if icmp else (None, None)

    def spec(self):
        name = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}.get(self.proto, str(self.proto))

        def ep(a, port):
            if port is None:
                return str(a)
            return ("[%s]:%d" if a.version == 6 else "%s:%d") % (a, port)

        words = [name, ep(self.src, self.sport), ">", ep(self.dst, self.dport)]
        if self.flags:
            words += ["flags", self.flags]
        if self.icmp_type is not None:
            words += ["icmp", "%d/%d" % (self.icmp_type, self.icmp_code)]
        return words


def pick_addr(rng, version, nets):
    """An address on or near the edges of the prefixes the rules name, or anywhere."""
    nets = [n for n in nets if n.version == version]
    bits = 32 if version == 4 else 128
    if nets and rng.random() < 0.8:
        n = rng.choice(nets)
        first, last = int(n.network_address), int(n.broadcast_address)
        choice = rng.randrange(5)
        if choice == 0:
            v = first
        elif choice == 1:
            v = last
        elif choice == 2:
            v = first - 1
        elif choice == 3:
            v = last + 1
        else:
            v = rng.randint(first, last)
        v %= 1 << bits
    else:
        v = rng.getrandbits(bits)
    return ipaddress.ip_address(v) if version == 4 else ipaddress.IPv6Address(v)


IPV6_EXT_HEADERS = {0, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254}


class Generator:
    """
    Random packets. Most are aimed at one rule (its direction, protocol, the
    edges of its prefixes, the ends of its port range or its ICMP type and
    code, and one beyond each), so that every rule is reached and its
    boundaries are tried; the rest are drawn from everything the rules name,
    or from anywhere.
    """

    def __init__(self, rng, nacl, sg_rules):
        self.rng = rng
        self.nets = []
        self.protos = {6, 17, 1, 58, 47}
        self.ports = {0, 1, 22, 53, 80, 443, 1023, 1024, 65535}
        self.icmp = {(8, 0), (0, 0), (3, 4), (128, 0), (129, 0)}
        self.sg_on = sg_rules is not None
        self.items = (nacl.entries if nacl else []) + (sg_rules or [])
        for x in self.items:
            if x.proto != ALL:
                self.protos.add(x.proto)
            self.nets += self.nets_of(x)
            self.ports |= set(self.ports_of(x))
            self.icmp |= set(self.icmp_of(x))
        self.protos = sorted(self.protos)
        self.ports = sorted(self.ports)
        self.icmp = sorted(self.icmp)
        v4 = sum(1 for n in self.nets if n.version == 4)
        v6 = sum(1 for n in self.nets if n.version == 6)
        self.p_v6 = min(max(v6 / max(v4 + v6, 1), 0.2), 0.8)

    @staticmethod
    def nets_of(x):
        return [x.net] if isinstance(x, NaclEntry) else list(x.peers)

    @staticmethod
    def ports_of(x):
        if not x.ports:
            return []
        lo, hi = x.ports
        return [max(lo - 1, 0), lo, hi, min(hi + 1, 65535)]

    @staticmethod
    def icmp_of(x):
        if x.icmp_type is None:
            return []
        t = x.icmp_type
        c = x.icmp_code if x.icmp_code is not None else 0
        return [(t, c), (t, (c + 1) % 256), ((t + 1) % 256, c), ((t - 1) % 256, c)]

    def case(self):
        """(direction, packet)."""
        rng = self.rng
        if self.items and rng.random() < 0.6:
            x = rng.choice(self.items)
            nets = self.nets_of(x)
            direction = "out" if x.egress else "in"
            if nets:
                version = rng.choice(nets).version
            else:
                version = 6 if rng.random() < self.p_v6 else 4
            proto = x.proto if x.proto != ALL and rng.random() < 0.9 else rng.choice(self.protos)
            ports = self.ports_of(x) or self.ports
            icmp = self.icmp_of(x) or self.icmp
            if rng.random() < 0.2:
                nets = self.nets
        else:
            direction = rng.choice(["in", "out"])
            version = 6 if rng.random() < self.p_v6 else 4
            proto = rng.choice(self.protos) if rng.random() < 0.9 else rng.randint(0, 255)
            nets, ports, icmp = self.nets, self.ports, self.icmp
        return direction, self.packet(direction, version, proto, nets, ports, icmp)

    def packet(self, direction, version, proto, nets, ports, icmp):
        rng = self.rng
        # ICMP of the other family is left out, but for 58 over IPv4 (no type).
        if proto == 1 and version == 6:
            proto = 58
        # An IPv6 packet whose next header is an extension header's number is
        # not a packet of that protocol: moat walks it as the header it is.
        if version == 6 and proto in IPV6_EXT_HEADERS:
            proto = 47
        peer = pick_addr(rng, version, nets)
        local = pick_addr(rng, version, [])
        src, dst = (peer, local) if direction == "in" else (local, peer)
        if proto in (6, 17):
            flags = None
            if proto == 6:
                flags = "S" if self.sg_on else rng.choice(["S", "SA", "A", "FA", "R", "PA", "U"])
            dport = rng.choice(ports) if rng.random() < 0.8 else rng.randint(0, 65535)
            sport = rng.choice([rng.randint(1024, 65535), rng.choice(self.ports)])
            return Packet(proto, src, dst, sport, dport, flags=flags)
        if icmp_parsed(proto, version):
            while True:
                if rng.random() < 0.8:
                    t, c = rng.choice(icmp)
                else:
                    t, c = rng.randint(0, 255), rng.randint(0, 255)
                if not (version == 6 and t in NDP_TYPES):
                    break
            return Packet(proto, src, dst, icmp=(t, c))
        return Packet(proto, src, dst)


# ---- expectations and comparison -------------------------------------------

def expect(nacl, sg_rules, direction, p):
    """AWS's judgement: verdict, and what each stage decided if it was reached."""
    out = {"nacl_reached": False, "nacl_rule": None, "sg_reached": False, "sg_allow": None}
    egress = direction == "out"

    def run_nacl():
        if not nacl:
            return True
        out["nacl_reached"] = True
        number, allow = nacl.judge(p, egress)
        out["nacl_rule"] = number
        return allow

    def run_sg():
        if sg_rules is None:
            return True
        out["sg_reached"] = True
        allow = any(r.egress == egress and r.matches(p) for r in sg_rules)
        out["sg_allow"] = allow
        return allow

    if egress:
        ok = run_sg() and run_nacl()
    else:
        ok = run_nacl() and run_sg()
    out["verdict"] = "pass" if ok else "drop"
    return out


def compare(nacl, want, got):
    """A list of differences between AWS (want) and moat trace (got)."""
    diffs = []
    if got.get("verdict") != want["verdict"]:
        diffs.append("verdict: AWS %s, moat %s" % (want["verdict"], got.get("verdict")))
    if want["nacl_reached"]:
        g = (got.get("nacl") or {}).get("rule")
        w = want["nacl_rule"]
        # An ACL with only the `*` entries is imported as one deny-all rule
        # that keeps moat's NACL stage on (documented by the importer).
        sentinel = (w is None and not nacl.real_numbers and g == 32766 and
                    (got.get("nacl") or {}).get("action") == "deny")
        if g != w and not sentinel:
            diffs.append("nacl rule: AWS %s, moat %s" % ("*" if w is None else w, g))
    if want["sg_reached"]:
        by = (got.get("sg") or {}).get("by")
        allowed = by in ("rule", "untracked")
        if by not in ("rule", "untracked", "none") or allowed != want["sg_allow"]:
            diffs.append("sg: AWS %s, moat sg.by %s" %
                         ("allows" if want["sg_allow"] else "denies", by))
    return diffs


def trace(moat, rules, direction, p):
    cmd = [moat, "trace", "--rules", rules, direction] + p.spec() + ["--json"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return None, "exit %d: %s" % (r.returncode, (r.stderr or r.stdout).strip())
    try:
        return json.loads(r.stdout), None
    except ValueError as e:
        return None, "not JSON (%s): %s" % (e, r.stdout.strip()[:200])


def trace_batch(moat, rules, cases, path):
    """All cases through one `moat trace --batch` call: [(got, err)]."""
    with open(path, "w") as f:
        for direction, p in cases:
            f.write("%s %s\n" % (direction, " ".join(p.spec())))
    r = subprocess.run([moat, "trace", "--rules", rules, "--batch", path, "--json"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        err = "exit %d: %s" % (r.returncode, (r.stderr or r.stdout).strip())
        return [(None, err)] * len(cases)
    try:
        res = json.loads(r.stdout)["results"]
    except (ValueError, KeyError) as e:
        return [(None, "not JSON (%s)" % e)] * len(cases)
    if len(res) != len(cases):
        return [(None, "%d results for %d packets" % (len(res), len(cases)))] * len(cases)
    return [(x, None) for x in res]


def run_scenario(args, name, import_args, tmpdir, seed):
    """Returns (passed, failed)."""
    inp = Input()
    nacl_id, sg_ids, cli = None, [], []
    i = 0
    while i < len(import_args):
        a = import_args[i]
        if a in ("--nacl", "--sg", "--members", "--prefix-list"):
            v = import_args[i + 1]
            i += 2
            if a == "--nacl":
                nacl_id = v
                cli += [a, v]
            elif a == "--sg":
                sg_ids += [x for x in v.split(",") if x]
                cli += [a, v]
            elif a == "--members":
                path = os.path.join(args.data, v) if args.builtin else v
                inp.add_members(path)
                cli += [a, path]
            else:
                pl, f = v.split("=", 1)
                path = os.path.join(args.data, f) if args.builtin else f
                inp.add_json(path, pl)
                cli += [a, "%s=%s" % (pl, path)]
            continue
        path = os.path.join(args.data, a) if args.builtin else a
        inp.add_json(path)
        cli.append(path)
        i += 1

    nacl = inp.nacl(nacl_id)
    sg_rules = inp.sg_rules_for(sg_ids)

    rules = os.path.join(tmpdir, name + ".rules")
    r = subprocess.run([args.moat, "import", "aws"] + cli, capture_output=True, text=True)
    if r.returncode != 0:
        print("%s: moat import aws failed (exit %d): %s" % (name, r.returncode, r.stderr.strip()))
        return 0, 1
    with open(rules, "w") as f:
        f.write(r.stdout)

    rng = random.Random("%s/%s" % (seed, name))
    gen = Generator(rng, nacl, sg_rules)
    cases = [gen.case() for _ in range(args.count)]

    passed = failed = 0
    deadline = args.start + args.budget * (args.index + 1) / args.nscenarios
    # A few packets one trace call each (the CLI's single-packet form), the
    # rest in one batch call: the same datapath, loaded once.
    single = min(args.single, len(cases))
    results = [trace(args.moat, rules, d, p) for d, p in cases[:single]]
    results += trace_batch(args.moat, rules, cases[single:],
                           os.path.join(tmpdir, name + ".packets"))
    for (direction, p), (got, err) in zip(cases, results):
        want = expect(nacl, sg_rules, direction, p)
        diffs = [err] if err else compare(nacl, want, got)
        if diffs:
            failed += 1
            if failed <= args.show:
                print("%s: MISMATCH %s %s: %s" % (name, direction, " ".join(p.spec()),
                                                  "; ".join(diffs)))
        else:
            passed += 1
            if args.verbose:
                print("%s: ok %s %s -> %s" % (name, direction, " ".join(p.spec()),
                                              want["verdict"]))
    if failed and args.keep:
        print("%s: rules kept in %s" % (name, rules))
    print("%s: %d passed, %d failed" % (name, passed, failed))
    return passed, failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--moat", default=os.environ.get("MOAT", os.path.join(ROOT, "moat")),
                    help="the moat binary (default $MOAT, or ./moat of the repository)")
    ap.add_argument("--data", default=DATA, help="directory of the built-in scenarios")
    ap.add_argument("--seed", default=os.environ.get("MOAT_SEED", "1"))
    ap.add_argument("--count", type=int, default=2000, help="packets per scenario")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--single", type=int, default=3,
                    help="packets per scenario traced one call each (the rest in a batch)")
    ap.add_argument("--budget", type=float, default=420,
                    help="seconds for all scenarios together (the runner allows 600)")
    ap.add_argument("--show", type=int, default=20, help="mismatches printed per scenario")
    ap.add_argument("--keep", action="store_true", help="keep the imported rules on failure")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--scenario", action="append", help="run only these built-in scenarios")
    ap.add_argument("args", nargs=argparse.REMAINDER,
                    help="moat import aws arguments (FILE.json, --nacl, --sg, --members, "
                         "--prefix-list); none: the built-in scenarios")
    args = ap.parse_args()
    if args.args and args.args[0] == "--":
        args.args = args.args[1:]
    args.builtin = not args.args
    if not os.access(args.moat, os.X_OK):
        print("aws_eval: %s is not an executable moat (build it, or give --moat)" % args.moat)
        return 1

    if args.builtin:
        todo = [s for s in SCENARIOS if not args.scenario or s[0] in args.scenario]
    else:
        todo = [("input", args.args)]
    total_pass = total_fail = 0
    tmpdir = tempfile.mkdtemp(prefix="moat-aws-eval.")
    args.start = time.monotonic()
    args.nscenarios = len(todo)
    try:
        for args.index, (name, import_args) in enumerate(todo):
            try:
                p, f = run_scenario(args, name, import_args, tmpdir, args.seed)
            except (InputError, OSError, KeyError, ValueError) as e:
                print("%s: cannot evaluate: %s" % (name, e))
                p, f = 0, 1
            total_pass += p
            total_fail += f
    finally:
        if not (args.keep and total_fail):
            for f in os.listdir(tmpdir):
                os.unlink(os.path.join(tmpdir, f))
            os.rmdir(tmpdir)
    print("aws_eval (seed %s): %d passed, %d failed" % (args.seed, total_pass, total_fail))
    return 1 if total_fail else 0


if __name__ == "__main__":
    sys.exit(main())
