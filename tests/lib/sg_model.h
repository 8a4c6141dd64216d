/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sg_model.h - a userspace reference model of moat's stateful SG stage, for
 * the differential test (tests/bpf/test_sg_differential.c).
 *
 * The model is written from the SG semantics as specified (CONTRACT §3,
 * issue 3 and the state machine the test's brief spells out), not from the
 * BPF code: it keeps its own connection table, judges one packet at a time
 * with an explicit clock, and says what the datapath's table must hold
 * afterwards. Rule matching is user/reference.c's (an independent matcher
 * of CONTRACT §2); which rules are "untracked" is decided here.
 *
 * Only the SG stage is modelled: rule sets given to it must have no NACL
 * lines (the NACL stage is then off and the verdict is the SG's).
 */
#ifndef MOAT_TEST_SG_MODEL_H
#define MOAT_TEST_SG_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moat_abi.h"
#include "packet.h"
#include "rules.h"

#define SG_NSEC 1000000000ll

/*
 * The header an ICMP error quotes (the datagram that caused it), as the
 * frame will carry it. Fields describe both what is in the frame and its
 * defects, so the frame builder and the model see the same quote.
 */
struct sg_quote {
	bool present; /* the ICMP message carries a quote at all */
	int proto;    /* the quoted IP header's protocol */
	uint8_t src[16], dst[16];
	uint16_t sport, dport;	  /* TCP/UDP ports */
	int icmp_type, icmp_code; /* quoted ICMP/ICMPv6 header */
	uint16_t icmp_id;	  /* quoted echo identifier */
	uint8_t v4_ihl;		  /* quoted IHL in words (5 normal, >5 options, <5 bad) */
	bool v6_ext;		  /* a Destination Options header before the L4 header */
	uint8_t hdr_cut;	  /* non-zero: only this many bytes of the IP header */
	uint8_t l4_bytes;	  /* bytes of the quoted L4 header present (8: complete) */
};

/* One packet of a sequence: what the rules see plus what state needs. */
struct sg_pkt {
	struct packet p;   /* family, proto, addresses, ports, flags, icmp, frag */
	uint16_t icmp_id;  /* echo identifier (ICMP echo request/reply) */
	bool first_frag;   /* MF set, offset 0: a first fragment (has L4) */
	struct sg_quote q; /* ICMP messages: the quoted datagram */
	uint32_t len;	   /* frame length (bytes counters count whole frames) */
};

/* What decided the model's verdict. */
enum sg_by {
	SG_BY_NDP = 0,	 /* IPv6 neighbour discovery: passes before any stage */
	SG_BY_OFF,	 /* no SG rule lines: the stage is off */
	SG_BY_RELATED,	 /* ICMP error quoting a live entry */
	SG_BY_ENTRY,	 /* the packet's own live entry */
	SG_BY_RULE,	 /* a rule allowed it (entry created unless exempt) */
	SG_BY_UNTRACKED, /* an untracked rule allowed a TCP/UDP packet */
	SG_BY_NONE,	 /* no entry, no rule: drop */
	SG_BY_COUNT
};

struct sg_entry {
	struct moat_ct_key key;
	uint8_t state; /* enum moat_ct_state */
	bool orig_lo;  /* the lower endpoint sent the first packet */
	bool seen_lo, seen_hi;
	uint8_t origin_dir; /* direction of the first packet */
	uint32_t timeout_s;
	int64_t created_ns, last_ns; /* model clock */
	uint32_t packets[2];	     /* [0] from lo, [1] from hi */
	uint64_t bytes[2];
};

struct sg_verdict {
	bool pass;
	enum sg_by by;
	const struct rule *rule; /* SG_BY_RULE / SG_BY_UNTRACKED: the deciding rule */
	bool created;		 /* an entry was created (or replaced) */
	bool replaced;		 /* ... over an entry that was expired / closing */
	bool had_expired;	 /* the packet's own entry existed but had expired */
	bool reopened;		 /* SYN on a CLOSING entry went to the rules */
	bool no_entry_exempt;	 /* allowed by a rule but no entry (frag, FIN/RST) */
	/* The looked-up entry was within SG_MODEL_EDGE_NS of its expiry:
	 * a clock skew between model and datapath could flip the verdict. */
	bool near_edge;
	bool has_key;
	struct moat_ct_key key; /* the packet's own key */
	bool has_qkey;
	struct moat_ct_key qkey; /* ICMP errors: the quoted flow's key */
};

#define SG_MODEL_EDGE_NS (20ll * 1000 * 1000)

struct sg_model {
	/* Untracked rules need a local side of "any"; a /0 does not do (the
	 * brief's literal text). Off: a /0 counts as all addresses, as the
	 * datapath's compiler has it. Set before sg_model_set_rules(). */
	bool local_any_only;
	const struct ruleset *rs;
	bool *untracked; /* per rule of rs (index as rs->rules) */
	size_t untracked_n;
	bool stage_on;
	struct sg_entry *e;
	size_t n, cap;
};

void sg_model_init(struct sg_model *m);
void sg_model_free(struct sg_model *m);
/* Judge with @rs from now on (a reload: entries are kept). 0 or -ENOMEM. */
int sg_model_set_rules(struct sg_model *m, const struct ruleset *rs);
/* Forget every entry (a flush). */
void sg_model_flush(struct sg_model *m);

/* Judge @pkt in direction @dir (enum rule_dir) at model time @now_ns. */
int sg_model_packet(struct sg_model *m, int dir, const struct sg_pkt *pkt, int64_t now_ns,
		    struct sg_verdict *v);

/* The canonical key of @pkt; *from_lo: the sender is the lower endpoint. */
void sg_model_key(const struct sg_pkt *pkt, struct moat_ct_key *key, bool *from_lo);
/* The key of the flow an ICMP error's quote names; false when it names none. */
bool sg_model_quote_key(const struct sg_pkt *pkt, struct moat_ct_key *key);
/* True when @pkt is an ICMP error (v4 3/11/12, v6 1-4) with an L4 header. */
bool sg_model_is_icmp_error(const struct sg_pkt *pkt);

struct sg_entry *sg_model_find(struct sg_model *m, const struct moat_ct_key *key);
bool sg_model_expired(const struct sg_entry *e, int64_t now_ns);
/* The timeout (seconds) of an entry of @proto in @state under @s. */
uint32_t sg_model_timeout(const struct rule_settings *s, int proto, uint8_t state);

/* Whether @r (an SG rule of @rs) is "untracked" (see sg_model.c). */
bool sg_model_rule_untracked(const struct ruleset *rs, const struct rule *r, bool local_any_only);

const char *sg_by_name(enum sg_by by);
const char *sg_state_name(uint8_t state);
/* "tcp 198.18.1.10:40000 > 198.18.2.5:22 flags SA" and the like (+ quote). */
int sg_pkt_format(const struct sg_pkt *pkt, char *buf, size_t len);
int sg_key_format(const struct moat_ct_key *k, char *buf, size_t len);

#endif
