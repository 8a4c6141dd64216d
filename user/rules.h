/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rules.h - moat's rules language as plain C structs.
 *
 * The parser (rules_parse.c) turns text into a struct ruleset; everything
 * after it (compiler, reference matcher, lint, importer) reads these structs.
 * Nothing here knows about BPF.
 */
#ifndef MOAT_RULES_H
#define MOAT_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"

enum rule_stage { RULE_STAGE_NACL = 0, RULE_STAGE_SG = 1 };
enum rule_dir { RULE_DIR_IN = 0, RULE_DIR_OUT = 1 };
enum rule_action { RULE_ALLOW = 0, RULE_DENY = 1 };

#define RULE_PROTO_ALL (-1)
#define RULE_NACL_NUMBER_MIN 1
#define RULE_NACL_NUMBER_MAX 32766

/* An address prefix; addr is in network byte order, IPv4 in addr[0..3]. */
struct rule_prefix {
	uint8_t family; /* 4 or 6 */
	uint8_t len;	/* 0..32 or 0..128 */
	uint8_t addr[16];
};

enum rule_addr_kind { RULE_ADDR_ANY = 0, RULE_ADDR_PREFIX, RULE_ADDR_SET };

struct rule_addr {
	enum rule_addr_kind kind;
	struct rule_prefix prefix; /* RULE_ADDR_PREFIX */
	int set;		   /* RULE_ADDR_SET: index into ruleset.sets */
};

/* An inclusive range; `set` false means the field was left out (any). */
struct rule_range {
	bool set;
	uint16_t lo, hi;
};

/* Where a statement (or token) came from, for messages. */
struct rule_loc {
	const char *file; /* owned by the ruleset (ruleset.files) */
	int line, col;	  /* 1-based */
};

struct rule {
	enum rule_stage stage;
	enum rule_dir dir;
	/* NACL: the number as written. SG: 1-based order in the file among
	 * the SG rules of the same direction. */
	int number;
	enum rule_action action; /* SG rules are always RULE_ALLOW */
	int proto;		 /* RULE_PROTO_ALL or 0..255 */
	/* 0 = both families, 4 or 6 = the family of its CIDR literals. */
	int family;
	struct rule_addr src, dst;
	struct rule_range sport, dport;
	bool has_icmp;
	int icmp_type; /* 0..255 */
	int icmp_code; /* 0..255, or -1 for any code */
	bool established;
	struct rule_loc loc;
};

struct rule_set {
	char *name;
	struct rule_prefix *prefixes;
	size_t n, cap;
	struct rule_loc loc;
};

enum rule_ephemeral { RULE_EPH_ANY = 0, RULE_EPH_LINUX, RULE_EPH_WINDOWS, RULE_EPH_MACOS };

struct rule_settings {
	uint32_t ct_max;		/* default 262144 */
	uint32_t ct_tcp_established;	/* seconds, default 432000 */
	uint32_t ct_udp;		/* default 30 */
	uint32_t ct_udp_stream;		/* default 180 */
	uint32_t ct_icmp;		/* default 30 */
	uint32_t ct_other;		/* default 600 (not settable in v1) */
	bool pass_ndp;			/* default true */
	enum rule_ephemeral ephemeral;	/* default any */
	uint16_t ephemeral_lo, ephemeral_hi; /* derived from ephemeral */
};

struct ruleset {
	struct rule *rules; /* in file order */
	size_t nrules, cap;
	struct rule_set *sets;
	size_t nsets, sets_cap;
	struct rule_settings settings;
	/* A stage is on when the file has at least one rule line for it. */
	bool stage_on[2];
	char **files; /* file names referenced by rule_loc */
	size_t nfiles;
};

void ruleset_init(struct ruleset *rs);
void ruleset_free(struct ruleset *rs);
void rule_settings_default(struct rule_settings *s);

/*
 * Parse a rules file. Returns 0 when the file is accepted; -EINVAL when it
 * has errors (each one in @d with file:line:col); another negative errno
 * when it cannot be read (also reported in @d). On error @rs is left
 * empty: a file is accepted whole or not at all.
 */
int rules_parse_file(const char *path, struct ruleset *rs, struct diags *d);
int rules_parse_text(const char *name, const char *text, size_t len, struct ruleset *rs,
		     struct diags *d);

/* Warnings that need the whole file (e.g. a direction that denies all). */
void rules_check_warnings(const struct ruleset *rs, struct diags *d);

/* Number of rules of one stage and direction. */
size_t ruleset_count(const struct ruleset *rs, enum rule_stage stage, enum rule_dir dir);

/* Text forms, as the rules language writes them. */
const char *rule_stage_name(enum rule_stage s); /* "nacl" / "sg" */
const char *rule_dir_name(enum rule_dir d);	/* "in" / "out" */
const char *rule_action_name(enum rule_action a); /* "allow" / "deny" */
int rule_proto_name(int proto, char *buf, size_t len); /* "all", "tcp", "47" */
int rule_prefix_format(const struct rule_prefix *p, char *buf, size_t len);
/* One rule as a line of the rules language (no newline). */
int rule_format(const struct rule *r, const struct ruleset *rs, char *buf, size_t len);

/* True when @p (family 4 or 6) contains the address @addr of that family. */
bool rule_prefix_contains(const struct rule_prefix *p, const uint8_t *addr);

#endif
