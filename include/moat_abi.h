/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * moat_abi.h - the one contract between moat's BPF programs and its CLI.
 *
 * Everything a map holds is defined here, with fixed-width types, explicit
 * padding and a size check, so both sides agree byte for byte. Enum values
 * are stable: they are what `bpftool map dump` shows and what pinned maps
 * from an older moat hold.
 *
 * A compiled rule set ("generation") lives in inner maps of gen-indexed
 * ARRAY_OF_MAPS; `active_gen` names the generation in force, so a reload
 * is built beside the live set and switched with one map update.
 */
#ifndef MOAT_ABI_H
#define MOAT_ABI_H

#ifdef __BPF__
#include <linux/types.h>
#else
#include <linux/types.h>
#include <assert.h>
#define _Static_assert static_assert
#endif

/* Bump when any pinned map's layout changes; stored in `meta`. */
#define MOAT_ABI_VERSION 1

enum moat_stage { MOAT_STAGE_NACL = 0, MOAT_STAGE_SG = 1 };
enum moat_dir { MOAT_DIR_IN = 0, MOAT_DIR_OUT = 1 };
enum moat_action { MOAT_ACTION_ALLOW = 0, MOAT_ACTION_DENY = 1 };

/* A "table" is one stage in one direction: table = stage * 2 + dir. */
#define MOAT_TABLE(stage, dir) ((stage) * 2 + (dir))
#define MOAT_NTABLES 4

/* Capacity of one table. 256 words of 64 rules, summarised by 4 words. */
#define MOAT_MAX_RULES 16384
#define MOAT_VEC_WORDS (MOAT_MAX_RULES / 64)
#define MOAT_SUMMARY_WORDS (MOAT_VEC_WORDS / 64)
#define MOAT_NO_RULE 0xffffffffu

/*
 * Field lookups. Each of the five fields of a table yields a vector id:
 *   src, dst  - LPM tries keyed by (tag, address), tag = table * 2 + field
 *   l4 array  - per table: sport/ICMP type, dport/ICMP code, proto+state
 * ICMP type and code share the sport/dport slots: rules with ports are
 * tcp/udp only and rules with an icmp match are icmp only, so the protocol
 * vector keeps them apart.
 */
enum moat_addr_field { MOAT_FIELD_SRC = 0, MOAT_FIELD_DST = 1 };
#define MOAT_LPM_TAG(table, field) ((table) * 2 + (field))
#define MOAT_LPM_TAG_BITS 32

struct moat_lpm4_key {
	__u32 prefixlen; /* MOAT_LPM_TAG_BITS + prefix length */
	__be32 tag;	 /* big endian so it is matched as the leading bits */
	__u8 addr[4];
};
_Static_assert(sizeof(struct moat_lpm4_key) == 12, "lpm4 key");

struct moat_lpm6_key {
	__u32 prefixlen;
	__be32 tag;
	__u8 addr[16];
};
_Static_assert(sizeof(struct moat_lpm6_key) == 24, "lpm6 key");

/* Port slots: 0..65535 are port values (or ICMP type/code), and
 * MOAT_PORT_NONE is the slot of a packet without an L4 header (non-first
 * fragment, or a protocol without ports): only rules without a port or
 * icmp match are set there. */
#define MOAT_PORT_NONE 65536
#define MOAT_PORT_SLOTS 65537
/* Protocol + state slots: proto * 4 + state. */
enum moat_l4_state {
	MOAT_L4_PLAIN = 0,   /* not TCP, or TCP without ACK/RST */
	MOAT_L4_ACKRST = 1,  /* TCP with ACK or RST: matches `established` */
	MOAT_L4_NOHDR = 2,   /* non-first fragment: flags unknown */
};
#define MOAT_PROTO_SLOTS (256 * 4)
#define MOAT_L4_OFF_SPORT 0
#define MOAT_L4_OFF_DPORT MOAT_PORT_SLOTS
#define MOAT_L4_OFF_PROTO (2 * MOAT_PORT_SLOTS)
#define MOAT_L4_TABLE_STRIDE (2 * MOAT_PORT_SLOTS + MOAT_PROTO_SLOTS)
/*
 * Replies of untracked flows. An untracked SG rule makes a flow untracked
 * in both directions, but the reply is allowed by a rule of its own
 * direction, which need not be untracked-capable itself. So after the four
 * tables come 8 bitmaps, one per (direction, family, TCP/UDP), over the
 * service (destination) ports of that direction's untracked rules; the
 * last word is non-zero when one of them has no port match (it then also
 * takes port-less packets: non-first fragments). A packet allowed by a rule
 * is a reply of an untracked flow when its source port is set in the other
 * direction's bitmap: swapped, it would be allowed by an untracked rule.
 */
#define MOAT_UNTRACKED_WORDS (65536 / 32 + 1)
#define MOAT_UNTRACKED_NOPORT_WORD (65536 / 32)
#define MOAT_UNTRACKED_MAP(dir, is_v6, is_udp) ((((dir) * 2 + (is_v6)) * 2) + (is_udp))
#define MOAT_L4_OFF_UNTRACKED (MOAT_NTABLES * MOAT_L4_TABLE_STRIDE)

/*
 * IPv4 address fields as a 16-8-8 table, which costs a packet one to three
 * array reads whatever the number of prefixes, where an LPM trie walks a
 * node per bit of depth. Level 1, per (table, field) slot, is indexed by
 * the address's top 16 bits and lives in the l4 array after the untracked
 * bitmaps; an entry is a vector id, or MOAT_DIR4_CHUNK | c: chunk c of 256
 * entries in `gen_dir4`, indexed by the next 8 bits (level 2), whose
 * entries may in turn name a chunk for the last 8 bits (level 3). A field
 * uses the table when its bit in gen_config.dir4_mask is set, the trie
 * otherwise (a set of a million scattered host routes would need too many
 * chunks).
 */
#define MOAT_DIR4_SLOT(table, field) ((table) * 2 + (field))
/*
 * IPv6 address fields whose prefixes come in at most MOAT_HASH6_LENS
 * distinct lengths, and the prefixes longer than /24 of IPv4 fields with a
 * /24 front table, are looked up in the address hash table instead of a
 * trie: one lookup per length, longest first, the first hit wins, which is
 * exactly the trie's longest match.
 *
 * The table (`gen_addr_hash`, one per generation) is built by moat, not by
 * the kernel: an mmapable array of buckets, written through mmap, so a
 * million prefixes cost a memory copy instead of a million map updates, and
 * a reload rewrites only the pages that differ. Bucketed cuckoo hashing: a
 * key sits in one of the MOAT_ADDR_SLOTS slots of its first bucket or, only
 * when that one is full, of its second; a lookup reads at most two buckets,
 * and one when the first has a free slot.
 */
#define MOAT_HASH6_LENS 4
struct moat_addr_slot {
	/* the prefix as a 128-bit number in host order, host bits zero
	 * (IPv4: the top 32 bits of hi) */
	__u64 hi, lo;
	__u32 tag; /* MOAT_ADDR_TAG; 0: a free slot */
	__u32 vid;
};
#define MOAT_ADDR_SLOTS 4
struct moat_addr_bucket {
	struct moat_addr_slot s[MOAT_ADDR_SLOTS];
};
_Static_assert(sizeof(struct moat_addr_bucket) == 96, "addr bucket");
/* Field slot (MOAT_DIR4_SLOT), family and prefix length of a key. */
#define MOAT_ADDR_TAG(slot, len, v6) (0x80000000u | (__u32)(v6) << 16 | (__u32)(slot) << 8 | (len))

static inline __u64 moat_addr_mix(__u64 h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 33);
}

/* The key's hash: its first bucket is hash & mask, its second
 * moat_addr_bucket2(first, hash) & mask (never the first when mask > 0). */
static inline __u64 moat_addr_hash(__u64 hi, __u64 lo, __u32 tag)
{
	return moat_addr_mix(hi ^ moat_addr_mix(lo ^ (__u64)tag * 0x9e3779b97f4a7c15ULL));
}

static inline __u32 moat_addr_bucket2(__u32 first, __u64 hash)
{
	return first ^ ((__u32)(hash >> 32) | 1);
}
#define MOAT_HASH6_NONE 0xff

/* The high and low halves of the IPv6 address hi:lo (host order) cut to
 * its top @len bits. */
static inline __u64 moat_addr_cut6_hi(__u64 hi, __u32 len)
{
	return len >= 64 ? hi : len ? hi & (~0ULL << (64 - len)) : 0;
}

static inline __u64 moat_addr_cut6_lo(__u64 lo, __u32 len)
{
	return len >= 128 ? lo : len > 64 ? lo & (~0ULL << (128 - len)) : 0;
}
/*
 * The address filter: a field with two or more IPv6 prefix lengths would
 * pay one hash lookup per length, although an address usually lies in the
 * prefixes of one length or none (a block list's common case). Every prefix
 * of the field lies in one block of the field's shortest length (its cut);
 * the filter holds, per block, which of the field's lengths have a prefix
 * in it: a 4-bit mask (bit i: hash6_lens[slot][i]) in slot
 * moat_addr_filter_slot() of the block's hash, 16 slots to a 64-bit value
 * of `gen_addr_filter`. Lookups go only to the lengths the mask names. Two
 * blocks sharing a slot share their masks, so a length may be looked up in
 * vain, never skipped wrongly. At MOAT_ADDR_FILTER_SLOTS_PER_KEY slots per
 * prefix, about 1 address in 8 outside the prefixes still takes a lookup.
 * The IPv4 counterpart is the /24 front table's chunk flag.
 */
#define MOAT_ADDR_FILTER_SLOTS_PER_KEY 8
static inline __u32 moat_addr_filter_slot(__u64 hash, __u32 mask)
{
	return (__u32)(hash >> 32) & mask;
}
#define MOAT_DIR4_SLOTS (MOAT_NTABLES * 2)
#define MOAT_DIR4_L1 65536
#define MOAT_DIR4_CHUNK 0x80000000u
/* Chunks (256 entries) in one generation's `gen_dir4`: a fixed size, so
 * its lookups are inlined. */
#define MOAT_DIR4_CHUNKS 8192
#define MOAT_L4_OFF_DIR4 (MOAT_L4_OFF_UNTRACKED + 8 * MOAT_UNTRACKED_WORDS)
#define MOAT_L4_ENTRIES (MOAT_L4_OFF_DIR4 + MOAT_DIR4_SLOTS * MOAT_DIR4_L1)
/* stored two per 8-byte array value */
_Static_assert(MOAT_L4_ENTRIES % 2 == 0, "l4 entries");

/*
 * A bit vector over the rules of one table, stored sparsely: summary bit w
 * says word w is non-zero; the lowest non-zero word is in the header
 * (first_word), the others sit after it in `gen_words`, in order, so word
 * w > first_idx is at (u32 arithmetic: words_off may be 0xffffffff)
 *   words_off + rank_base[w / 64] + popcount(summary[w / 64] below bit w % 64).
 * Vector id 0 is the empty vector (the value of every missing key).
 * `gen_words` is a fixed-size array of MOAT_FAST_WORDS words, so that the
 * verifier inlines its lookups (a helper call costs more than the rest of
 * a word's AND); word positions past it are in `gen_words_more`, at
 * position - MOAT_FAST_WORDS (rule sets that large pay a call per word).
 */
struct moat_vec {
	__u64 summary[MOAT_SUMMARY_WORDS];
	/* The lowest non-zero word and its index, kept here so the common
	 * case (a field's first word holds the winner) needs no lookup. */
	__u64 first_word;
	__u32 first_idx;
	__u32 words_off;
	__u16 rank_base[MOAT_SUMMARY_WORDS];
};
_Static_assert(sizeof(struct moat_vec) == 56, "vec");
#define MOAT_MAX_VECS 131072
#define MOAT_FAST_WORDS (1u << 20)

/* Flags of a compiled rule. */
#define MOAT_RULE_F_UNTRACKED 0x1 /* SG: flows it allows are not tracked */

/* One rule of one table, by position (index = table rule base + position). */
#define MOAT_RULES_ENTRIES (MOAT_NTABLES * MOAT_MAX_RULES)
struct moat_rule_info {
	__u32 stat_slot; /* index into rule_stats */
	__u16 number;	 /* NACL number; SG order in the file */
	__u8 action;	 /* enum moat_action */
	__u8 flags;	 /* MOAT_RULE_F_* */
};
_Static_assert(sizeof(struct moat_rule_info) == 8, "rule info");

/* Timeouts in seconds, as `set conntrack timeout ...`. */
struct moat_ct_timeouts {
	__u32 tcp_syn;
	__u32 tcp_established;
	__u32 tcp_closing;
	__u32 udp;
	__u32 udp_stream;
	__u32 icmp;
	__u32 other;
	__u32 pad;
};
_Static_assert(sizeof(struct moat_ct_timeouts) == 32, "timeouts");

#define MOAT_CFG_F_PASS_NDP 0x1

/* Address map kinds with contents kept in `gen_shadow`: lpm4, lpm6. */
#define MOAT_ADDR_KINDS 2

/* What a generation needs besides its maps; gen_config[gen]. */
struct moat_gen_config {
	__u32 stage_on;			 /* bit per stage */
	__u32 flags;			 /* MOAT_CFG_F_* */
	__u32 nrules[MOAT_NTABLES];	 /* rules per table */
	__u32 rule_base[MOAT_NTABLES];	 /* first index in gen_rules */
	struct moat_ct_timeouts timeouts;
	/* Address fields no rule of the table names a prefix for (in that
	 * family) have one vector for every address: bit (table * 4 +
	 * field * 2 + (family == 6)) says so, and addr_vid holds it, which
	 * spares the packet a trie lookup. */
	__u32 addr_const_mask;
	__u32 addr_const_vid[MOAT_NTABLES * 4];
	__u32 dir4_mask; /* bit MOAT_DIR4_SLOT: IPv4 field uses the 16-8-8 table */
	__u32 epoch;	 /* differs for every rule set applied: decision cache key */
	__u32 hash6_mask; /* bit MOAT_DIR4_SLOT: IPv6 field uses hash tables */
	/* Its prefix lengths, longest first, MOAT_HASH6_NONE after the last
	 * (a /0 is not among them: its vector is hash6_default, no lookup). */
	__u8 hash6_lens[MOAT_DIR4_SLOTS][MOAT_HASH6_LENS];
	__u32 hash6_default[MOAT_DIR4_SLOTS];
	/* Digests of the lpm4 and lpm6 inner maps' contents (one per
	 * MOAT_ADDR_KINDS), to tell what a generation's address maps hold. */
	__u64 digest[MOAT_ADDR_KINDS];
	/* bit MOAT_DIR4_SLOT: IPv4 field with a /24 front table, slice
	 * dir24_slice[slot] of `gen_dir24` (2^24 entries: the vector id of the
	 * longest prefix of at most /24 holding the block, with
	 * MOAT_DIR4_CHUNK set when a longer prefix lies in the block: then the
	 * address hash table is asked first, for the lengths in dir24_long) */
	__u32 dir24_mask;
	__u8 dir24_slice[MOAT_DIR4_SLOTS];
	__u8 dir24_long[MOAT_DIR4_SLOTS]; /* bit len - 25: the field has /len prefixes */
	/* buckets in `gen_addr_hash` - 1 (a power of two - 1, at least 1 when
	 * the table holds anything) */
	__u32 addr_hash_mask;
	/* slots in `gen_addr_filter` - 1 (see MOAT_ADDR_FILTER_SLOTS_PER_KEY) */
	__u32 addr_filter_mask;
	/* per MOAT_DIR4_SLOT: the length an IPv6 hash field's addresses are
	 * cut to for the filter (its shortest prefix length), 0: no filter */
	__u8 hash6_cut[MOAT_DIR4_SLOTS];
	__u32 pad;
};
_Static_assert(sizeof(struct moat_gen_config) == 272, "gen config");
#define MOAT_DIR24_SLICES 2

/*
 * Decision cache (internal, per program instance, never pinned): the first
 * matching position for one table and one tuple of field vectors. The
 * answer is a pure function of the vectors, so it holds for as long as the
 * rule set (epoch) does. Consulted before the lowest candidate word when
 * more than one word is a candidate, where the answer may need a walk over
 * the remaining candidate words.
 */
#define MOAT_DECISION_NFIELDS 5
struct moat_decision_key {
	__u32 epoch;
	__u32 table;
	__u32 vid[MOAT_DECISION_NFIELDS];
	__u32 gen; /* the generation slot the epoch lives in */
};
_Static_assert(sizeof(struct moat_decision_key) == 32, "decision key");
/* A direct-mapped, per-CPU cache: slot = hash of the key; a slot holds the
 * last key that hashed there. A per-CPU array's lookup is inlined, a hash
 * map's is a call and a hash of its own. */
struct moat_decision_entry {
	struct moat_decision_key key;
	__u32 result;
	__u32 pad;
};
#define MOAT_DECISION_ENTRIES 8192 /* per CPU: 320 KiB */
#define MOAT_ADDR_CONST_BIT(table, field, v6) ((table) * 4 + (field) * 2 + (v6))

/*
 * Per-rule counters (per-CPU; the CLI sums them). Each slot also names its
 * rule, so `bpftool map dump` of `rule_stats` reads by field name. Slots
 * are kept across reloads for rules with the same stage, direction and
 * number; in_use is 0 for free slots.
 */
struct moat_rule_stat {
	enum moat_stage stage;
	enum moat_dir dir;
	__u32 number;
	enum moat_action action;
	__u32 in_use;
	__u32 pad;
	__u64 packets;
	__u64 bytes;
};
_Static_assert(sizeof(struct moat_rule_stat) == 40, "rule stat");
#define MOAT_MAX_STAT_SLOTS (2 * MOAT_NTABLES * MOAT_MAX_RULES)

/* Per-direction counters (per-CPU), key = enum moat_dir. */
struct moat_dir_counters {
	__u64 packets;		 /* every frame seen */
	__u64 passed;
	__u64 dropped;
	__u64 non_ip;		 /* passed: not IPv4/IPv6 */
	__u64 ndp;		 /* passed: IPv6 neighbour discovery */
	__u64 malformed;	 /* dropped: truncated or malformed headers */
	__u64 malformed_bytes;
	__u64 ext_hdr_limit;	 /* dropped: L4 header beyond the walk bound */
	__u64 fragments;	 /* non-first fragments judged without ports */
	__u64 nacl_default_deny;
	__u64 nacl_default_deny_bytes;
	__u64 sg_no_rule;	 /* dropped by SG: no entry and no rule */
	__u64 sg_no_rule_bytes;
	__u64 ct_created;
	__u64 ct_hit;		 /* allowed by an existing entry */
	__u64 ct_untracked;	 /* allowed by an untracked rule */
	__u64 ct_expired;	 /* expired entry found and replaced */
	__u64 ct_related;	 /* ICMP errors allowed with their flow */
	__u64 ct_create_failed;	 /* entry could not be inserted */
	__u64 ct_promoted;	 /* half-open entries confirmed by a reply */
};

/* Conntrack: the key is the flow in canonical order (lower endpoint first). */
struct moat_ct_key {
	__u8 family; /* 4 or 6 */
	__u8 proto;
	__u16 pad;
	__be16 port_lo, port_hi;  /* ICMP echo: identifier in both */
	__u8 addr_lo[16], addr_hi[16];
} __attribute__((aligned(8))); /* the datapath clears it with 8-byte stores */
_Static_assert(sizeof(struct moat_ct_key) == 40, "ct key");

enum moat_ct_state {
	MOAT_CT_NEW = 0,	 /* first packet seen one way only */
	MOAT_CT_SYN_SENT = 1,
	MOAT_CT_ESTABLISHED = 2, /* both directions seen */
	MOAT_CT_CLOSING = 3,	 /* FIN or RST seen */
};

/* Which endpoint opened the flow. */
#define MOAT_CT_F_ORIG_LO 0x1 /* the lower endpoint sent the first packet */
#define MOAT_CT_F_SEEN_LO 0x2 /* a packet from the lower endpoint was seen */
#define MOAT_CT_F_SEEN_HI 0x4
#define MOAT_CT_F_FIN_LO 0x8
#define MOAT_CT_F_FIN_HI 0x10

struct moat_ct_value {
	__u64 created_ns;   /* CLOCK_MONOTONIC ns at creation, to a timer tick */
	__u64 last_ns;	    /* last packet */
	__u32 timeout_s;    /* entry expires at last_ns + timeout */
	__u8 state;	    /* enum moat_ct_state */
	__u8 flags;	    /* MOAT_CT_F_* */
	__u8 origin_dir;    /* enum moat_dir of the first packet */
	__u8 pad;
	__u32 packets[2];   /* [0] from lo, [1] from hi */
	__u64 bytes[2];
};
_Static_assert(sizeof(struct moat_ct_value) == 48, "ct value");

/* Identity of the pinned maps' layout, for `moat attach` on old pins. */
struct moat_meta {
	__u32 abi_version;
	__u32 ifindex;
	__u64 attached_ns;
};

/* What one run of the trace program decided (trace_out[0]). */
enum moat_sg_by {
	MOAT_SG_BY_NULL = 0, /* stage off or not reached */
	MOAT_SG_BY_RULE,
	MOAT_SG_BY_CONNTRACK,
	MOAT_SG_BY_UNTRACKED,
	MOAT_SG_BY_NONE,
	MOAT_SG_BY_RELATED, /* ICMP error quoting a tracked flow */
};

enum moat_reason {
	MOAT_REASON_NONE = 0,
	MOAT_REASON_NON_IP,
	MOAT_REASON_NDP,
	MOAT_REASON_MALFORMED,
	MOAT_REASON_EXT_HDR_LIMIT,
	MOAT_REASON_NACL_RULE,
	MOAT_REASON_NACL_DEFAULT,
	MOAT_REASON_SG,
	MOAT_REASON_STAGES_OFF,
};

struct moat_trace {
	__u32 ran;	  /* set to 1 by the program */
	__u32 verdict;	  /* 1 pass, 0 drop */
	__u32 reason;	  /* enum moat_reason */
	__u32 nacl_on;
	__u32 nacl_pos;	  /* MOAT_NO_RULE or position in the table */
	__u32 nacl_number;
	__u32 nacl_action;
	__u32 sg_on;
	__u32 sg_by;	  /* enum moat_sg_by */
	__u32 sg_pos;
	__u32 sg_number;
	__u32 ct_state;
	struct moat_ct_key ct_key;
	__u32 gen;
	__u32 pad;
};

#endif
