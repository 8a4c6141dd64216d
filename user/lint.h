/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lint.h - `moat lint`: the exact geometry of a rule set and the holes it
 * hides, with a witness packet (or pair) for each finding.
 *
 * A rule is a box in the space of packets (family, protocol, TCP state,
 * ports or ICMP type/code, source and destination address); a set makes it
 * a union of boxes. The analysis subtracts and intersects boxes exactly,
 * never sampling, so every witness it prints is a packet the datapath
 * judges the way the finding says. Pure: no BPF, no printing; the command
 * (cmd_lint.c) turns the result into text or JSON.
 */
#ifndef MOAT_LINT_H
#define MOAT_LINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "packet.h"
#include "rules.h"

enum lint_severity { LINT_SEV_ERROR = 0, LINT_SEV_WARNING, LINT_SEV_INFO };

/* Finding kinds (the `kind` strings, stable: scripts match on them). */
#define LINT_KIND_CONNECTION_HOLE "connection-hole"
#define LINT_KIND_MISSING_RETURN "missing-return-path"
#define LINT_KIND_SHADOWED "shadowed"
#define LINT_KIND_PARTLY_OVERRIDDEN "partly-overridden"
#define LINT_KIND_REDUNDANT "redundant" /* an SG rule the others already cover */
#define LINT_KIND_DENIES_EVERYTHING "denies-everything"
#define LINT_KIND_SG_ADMIN_EXPOSED "sg-admin-exposed"
#define LINT_KIND_INCOMPLETE "analysis-incomplete"

/* Ports wider than this make an allow rule look like one for return traffic. */
#define LINT_WIDE_PORTS 1024

/* A rule a finding is about. */
struct lint_ref {
	enum rule_stage stage;
	enum rule_dir dir;
	int number;
	int rule; /* index into ruleset.rules */
};

/* One packet of a witness, in the direction it crosses the interface. */
struct lint_witness {
	enum rule_dir dir;
	struct packet pkt;
};

/*
 * A region of connections, seen from this host: the peer's addresses and
 * ports, the local addresses and ports. @dir says who opens: in = the peer,
 * out = this host. Addresses in network order (IPv4 in [0..3]); ports are
 * meaningful only when @has_ports (TCP and UDP).
 */
struct lint_span {
	int family;
	int proto;
	enum rule_dir dir;
	bool has_ports;
	uint8_t peer_lo[16], peer_hi[16];
	uint8_t local_lo[16], local_hi[16];
	uint16_t peer_port_lo, peer_port_hi;
	uint16_t local_port_lo, local_port_hi;
};

#define LINT_MAX_REFS 4

struct lint_finding {
	enum lint_severity sev;
	const char *kind; /* LINT_KIND_* */
	struct lint_ref refs[LINT_MAX_REFS];
	size_t nrefs;
	struct rule_loc loc; /* the first rule's; line 0 when about the whole file */
	char *message;	     /* one line */
	struct lint_witness witness[2];
	size_t nwitness;
	char *fix;		    /* NULL when there is nothing to suggest */
	struct lint_span *spans;    /* the region the finding is about, coalesced */
	size_t nspans, spans_total; /* kept / found (kept <= lint_opts.max_spans) */
	bool spans_partial;	    /* the region has more than was found */
};

/* What the analysis concluded about one NACL or SG rule. */
enum lint_rule_status {
	LINT_RULE_LIVE = 0, /* some packet's first match is this rule */
	LINT_RULE_SHADOWED, /* no packet: earlier rules cover it */
	LINT_RULE_UNKNOWN,  /* the work budget ran out before an answer */
};

struct lint_rule_info {
	int rule; /* index into ruleset.rules */
	enum lint_rule_status status;
	bool has_witness; /* LIVE: a packet whose first match is this rule */
	struct lint_witness witness;
};

/* --reach: who can open connections to whom, per protocol and layer. */
enum lint_reach_proto { LINT_REACH_TCP = 0, LINT_REACH_UDP, LINT_REACH_ICMP, LINT_REACH_NPROTO };
enum lint_reach_layer { LINT_REACH_NACL = 0, LINT_REACH_SG, LINT_REACH_BOTH, LINT_REACH_NLAYER };

struct lint_reach_cell {
	bool stage_off; /* the layer passes everything (its stages are off) */
	bool truncated; /* too fragmented to compute whole: @total is a lower bound */
	struct lint_span *spans;
	size_t nspans, total;
};

struct lint_reach {
	/* [proto][dir of the opening packet][layer] */
	struct lint_reach_cell cell[LINT_REACH_NPROTO][2][LINT_REACH_NLAYER];
};

struct lint_opts {
	bool reach;	      /* compute lint_result.reach */
	size_t max_spans;     /* regions kept per finding / reach cell; 0 = default (8) */
	unsigned long budget; /* box operations per question; 0 = default */
};

struct lint_result {
	struct lint_finding *v;
	size_t n, cap;
	size_t errors, warnings, infos;
	struct lint_rule_info *rules; /* one per NACL and SG rule, in file order */
	size_t nrules;
	size_t incomplete; /* questions the budget cut short */
	bool has_reach;
	struct lint_reach reach;
};

void lint_opts_default(struct lint_opts *o);

/*
 * Analyse @rs. Returns 0 (findings in @res, which the caller frees with
 * lint_result_free() in every case), -ENOMEM, or -E2BIG when a rule's
 * address sets multiply into more boxes than the analysis takes
 * (@res->v then holds one error finding naming the rule).
 */
int lint_run(const struct ruleset *rs, const struct lint_opts *o, struct lint_result *res);
void lint_result_free(struct lint_result *res);

const char *lint_severity_name(enum lint_severity s);	    /* "error", "warning", "info" */
const char *lint_reach_proto_name(enum lint_reach_proto p); /* "tcp", "udp", "icmp" */
const char *lint_reach_layer_name(enum lint_reach_layer l); /* "nacl", "sg", "both" */

/* "198.18.1.0/24 port 9000 -> 0.0.0.0/0 ports 1024-65535" (opener first). */
int lint_span_format(const struct lint_span *s, char *buf, size_t len);
/* An address range as a CIDR when it is one, else "LO-HI". */
int lint_addr_range_format(int family, const uint8_t *lo, const uint8_t *hi, char *buf, size_t len);

#endif
