/* SPDX-License-Identifier: GPL-2.0 */
/*
 * judge.h - one packet through moat's stages, in the cloud's order:
 *   in:  NACL in,  then SG in
 *   out: SG out,   then NACL out
 * A connection-tracking change is committed only once the packet has passed
 * every stage, so an entry never exists for a packet that was dropped.
 */
#ifndef MOAT_BPF_JUDGE_H
#define MOAT_BPF_JUDGE_H

#include "maps.h"
#include "parse.h"
#include "classify.h"
#include "conntrack.h"
#include "stats.h"

#define MOAT_PASS 1
#define MOAT_DROP 0

/*
 * Per-packet working memory kept off the stack: the deepest call chain's
 * frames (judge, classify, candidate-word callback) share 512 bytes.
 */
struct moat_scratch {
	struct moat_pkt pkt;
	struct moat_ct_value new_entry; /* the entry sg_commit creates */
	struct moat_clock clock;	/* this CPU's last clock read */
};

/* One slot per direction, so an egress program never meets an ingress
 * one's working memory. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct moat_scratch);
} scratch SEC(".maps");

struct sg_decision {
	__u32 by;  /* enum moat_sg_by */
	__u32 pos; /* deciding rule position, or MOAT_NO_RULE */
	/* Bytes, not ints: this frame and classification's share 512 bytes. */
	__u8 from_lo;
	__u8 expired;
	__u8 in_pending; /* the entry found (live or expired) is in ct_pending */
	__u64 now;	/* one clock read per packet */
	struct moat_ct_value *entry; /* hit: the entry to advance */
	struct moat_ct_key key;
};

/* The compiled rule at @pos of @table, or NULL. */
static __always_inline struct moat_rule_info *rule_at(void *rules,
						      const struct moat_gen_config *cfg,
						      __u32 table, __u32 pos)
{
	__u32 idx = cfg->rule_base[table & 3] + pos;

	if (pos == MOAT_NO_RULE)
		return 0;
	return bpf_map_lookup_elem(rules, &idx);
}

/* NACL stage: returns MOAT_PASS or MOAT_DROP. */
static __always_inline int nacl_judge(void *rules, const struct moat_gen_config *cfg,
				      __u32 gen, const struct moat_pkt *p, __u32 dir, __u32 len,
				      struct moat_dir_counters *c, struct moat_trace *t)
{
	__u32 table = MOAT_TABLE(MOAT_STAGE_NACL, dir);
	struct moat_rule_info *info;
	__u32 pos;

	if (!(cfg->stage_on & (1 << MOAT_STAGE_NACL)))
		return MOAT_PASS;
	pos = moat_classify(p, cfg, gen, table, cfg->nrules[table & 3]);
	info = rule_at(rules, cfg, table, pos);
	if (t) {
		t->nacl_on = 1;
		t->nacl_pos = info ? pos : MOAT_NO_RULE;
		if (info) {
			t->nacl_number = info->number;
			t->nacl_action = info->action;
		}
	}
	if (!info) {
		COUNT_BYTES(c, nacl_default_deny, nacl_default_deny_bytes, len);
		if (t)
			t->reason = MOAT_REASON_NACL_DEFAULT;
		return MOAT_DROP;
	}
	rule_count(info->stat_slot, len);
	if (t)
		t->reason = MOAT_REASON_NACL_RULE;
	return info->action == MOAT_ACTION_ALLOW ? MOAT_PASS : MOAT_DROP;
}

/*
 * Is this TCP/UDP packet the reply of an untracked flow: would the other
 * direction's untracked rules allow it with its ends swapped? Those rules
 * take all addresses, so only the source port (the swapped service port)
 * decides; see MOAT_L4_OFF_UNTRACKED.
 */
static __always_inline int is_untracked_reply(__u32 gen, const struct moat_pkt *p, __u32 dir)
{
	__u32 map = MOAT_UNTRACKED_MAP(dir ^ 1, p->family == 6, p->proto == IPPROTO_UDP);
	__u32 word = p->has_l4 ? p->sport / 32 : MOAT_UNTRACKED_NOPORT_WORD;
	__u32 mask = p->has_l4 ? 1u << (p->sport % 32) : ~0u;
	__u32 idx = MOAT_L4_OFF_UNTRACKED + (map & 7) * MOAT_UNTRACKED_WORDS + word;
	void *l4 = bpf_map_lookup_elem(&gen_l4, &gen);

	return l4 && (lookup_pair_u32(l4, idx) & mask);
}

/* SG stage, decision only: what would let this packet through. */
static __always_inline int sg_judge(void *rules, const struct moat_gen_config *cfg,
				    __u32 gen, const struct moat_pkt *p, __u32 dir, void *data, void *end,
				    struct sg_decision *d, struct moat_clock *clock,
				    struct moat_dir_counters *c, struct moat_trace *t)
{
	__u32 table = MOAT_TABLE(MOAT_STAGE_SG, dir);
	struct moat_rule_info *info;
	struct moat_ct_value *e;
	__u64 now;

	d->by = MOAT_SG_BY_NULL;
	d->pos = MOAT_NO_RULE;
	d->entry = 0;
	d->expired = 0;
	if (!(cfg->stage_on & (1 << MOAT_STAGE_SG)))
		return MOAT_PASS;
	if (t)
		t->sg_on = 1;
	now = ct_clock(clock);
	d->now = now;

	/* An ICMP error that quotes a tracked flow travels with it. (The
	 * quoted key is built in d->key to save stack; it is rebuilt below.) */
	if (icmp_is_error(p) && ct_key_of_quoted(data, end, p, &d->key) == 0) {
		e = bpf_map_lookup_elem(&conntrack, &d->key);
		if (!e)
			e = bpf_map_lookup_elem(&ct_pending, &d->key);
		if (e && !ct_expired(e, now)) {
			d->by = MOAT_SG_BY_RELATED;
			if (t)
				t->ct_key = d->key;
			return MOAT_PASS;
		}
	}

	d->from_lo = ct_key_of(p, &d->key);
	if (t)
		t->ct_key = d->key;
	d->in_pending = 0;
	e = bpf_map_lookup_elem(&conntrack, &d->key);
	if (!e) {
		e = bpf_map_lookup_elem(&ct_pending, &d->key);
		d->in_pending = 1;
	}
	if (e) {
		int reopen = p->proto == IPPROTO_TCP && e->state == MOAT_CT_CLOSING &&
			     (p->tcp_flags & (TCP_SYN_ | TCP_ACK_)) == TCP_SYN_;

		if (ct_expired(e, now) || reopen) {
			d->expired = 1;
		} else {
			d->by = MOAT_SG_BY_CONNTRACK;
			d->entry = e;
			if (t)
				t->ct_state = e->state;
			return MOAT_PASS;
		}
	}

	d->pos = moat_classify(p, cfg, gen, table, cfg->nrules[table & 3]);
	info = rule_at(rules, cfg, table, d->pos);
	if (!info) {
		d->by = MOAT_SG_BY_NONE;
		d->pos = MOAT_NO_RULE;
		return MOAT_DROP;
	}
	if (t)
		t->sg_number = info->number;
	if ((p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) &&
	    ((info->flags & MOAT_RULE_F_UNTRACKED) || is_untracked_reply(gen, p, dir)))
		d->by = MOAT_SG_BY_UNTRACKED;
	else
		d->by = MOAT_SG_BY_RULE;
	return MOAT_PASS;
}

/* The packet passed every stage: count it and create or advance its entry. */
static __always_inline void sg_commit(void *rules, const struct moat_gen_config *cfg,
				      const struct moat_pkt *p, __u32 dir, __u32 len,
				      struct sg_decision *d, struct moat_dir_counters *c,
				      struct moat_ct_value *v)
{
	__u32 table = MOAT_TABLE(MOAT_STAGE_SG, dir);
	struct moat_rule_info *info;
	int into_pending;
	__u64 now;

	if (moat_trace_mode || d->by == MOAT_SG_BY_NULL)
		return;
	now = d->now;
	switch (d->by) {
	case MOAT_SG_BY_RELATED:
		COUNT(c, ct_related);
		return;
	case MOAT_SG_BY_CONNTRACK: {
		struct moat_ct_value *e = d->entry;

		COUNT(c, ct_hit);
		ct_advance(e, p, d->from_lo);
		e->last_ns = now;
		e->timeout_s = ct_timeout(&cfg->timeouts, p->proto, e->state);
		/* Constant indexes: the verifier refuses pointer arithmetic
		 * that the compiler may turn into a bitwise OR. Plain adds:
		 * two CPUs on one flow at once may lose a count, which is
		 * cheaper than a locked add on every packet. */
		if (d->from_lo) {
			e->packets[0] += 1;
			e->bytes[0] += len;
		} else {
			e->packets[1] += 1;
			e->bytes[1] += len;
		}
		/* Confirmed by the other side: out of reach of a flood. */
		if (d->in_pending && e->state == MOAT_CT_ESTABLISHED) {
			/* The entry itself is the value to copy: no stack copy,
			 * the three frames share 512 bytes. */
			if (bpf_map_update_elem(&conntrack, &d->key, e, BPF_ANY) == 0) {
				bpf_map_delete_elem(&ct_pending, &d->key);
				COUNT(c, ct_promoted);
			}
		}
		return;
	}
	default:
		break;
	}

	info = rule_at(rules, cfg, table, d->pos);
	if (info)
		rule_count(info->stat_slot, len);
	if (d->by == MOAT_SG_BY_UNTRACKED) {
		COUNT(c, ct_untracked);
		return;
	}
	if (!ct_may_create(p))
		return;
	__builtin_memset(v, 0, sizeof(*v));
	v->created_ns = now;
	v->last_ns = now;
	v->state = ct_initial_state(p);
	v->flags = (d->from_lo ? MOAT_CT_F_ORIG_LO | MOAT_CT_F_SEEN_LO : MOAT_CT_F_SEEN_HI);
	v->origin_dir = dir;
	v->timeout_s = ct_timeout(&cfg->timeouts, p->proto, v->state);
	if (d->from_lo) {
		v->packets[0] = 1;
		v->bytes[0] = len;
	} else {
		v->packets[1] = 1;
		v->bytes[1] = len;
	}
	into_pending = v->state != MOAT_CT_ESTABLISHED;
	if (bpf_map_update_elem(into_pending ? (void *)&ct_pending : (void *)&conntrack, &d->key, v,
				BPF_ANY) == 0) {
		COUNT(c, ct_created);
		if (d->expired) {
			COUNT(c, ct_expired);
			/* The expired entry lived in the other table. */
			if (d->in_pending != into_pending)
				bpf_map_delete_elem(d->in_pending ? (void *)&ct_pending :
								    (void *)&conntrack,
						    &d->key);
		}
	} else {
		COUNT(c, ct_create_failed);
	}
}

static __always_inline int is_ndp(const struct moat_pkt *p)
{
	return p->family == 6 && p->proto == IPPROTO_ICMPV6 && p->has_l4 &&
	       p->icmp_type >= 133 && p->icmp_type <= 137;
}

/*
 * Judge the frame [data, end) of wire length @len in direction @dir.
 * Returns MOAT_PASS or MOAT_DROP.
 */
static __always_inline int moat_judge(void *data, void *end, __u32 dir, __u32 len)
{
	struct moat_trace *t = 0;
	struct moat_dir_counters *c;
	struct moat_gen_config *cfg;
	struct sg_decision sgd;
	void *rules;
	struct moat_scratch *s;
	struct moat_pkt *p;
	__u32 zero = 0, gen, slot = dir & 1;
	__u32 *genp;
	int rc, v;

	if (moat_trace_mode) {
		t = bpf_map_lookup_elem(&trace_out, &zero);
		if (!t)
			return MOAT_DROP;
		__builtin_memset(t, 0, sizeof(*t));
		t->ran = 1;
		t->nacl_pos = MOAT_NO_RULE;
		t->sg_pos = MOAT_NO_RULE;
	}
	c = dir_counters(dir);
	COUNT(c, packets);
	s = bpf_map_lookup_elem(&scratch, &slot);
	if (!s)
		return MOAT_DROP;
	p = &s->pkt;
	__builtin_memset(p, 0, sizeof(*p));

	genp = bpf_map_lookup_elem(&active_gen, &zero);
	gen = genp ? *genp & 1 : 0;
	if (t)
		t->gen = gen;
	cfg = bpf_map_lookup_elem(&gen_config, &gen);

	rc = moat_parse(data, end, p, len);
	if (rc == MOAT_PARSE_NON_IP) {
		COUNT(c, non_ip);
		COUNT(c, passed);
		if (t) {
			t->reason = MOAT_REASON_NON_IP;
			t->verdict = 1;
		}
		return MOAT_PASS;
	}
	if (rc != MOAT_PARSE_OK) {
		if (rc == MOAT_PARSE_EXT_LIMIT)
			COUNT(c, ext_hdr_limit);
		COUNT_BYTES(c, malformed, malformed_bytes, len);
		COUNT(c, dropped);
		if (t)
			t->reason = rc == MOAT_PARSE_EXT_LIMIT ? MOAT_REASON_EXT_HDR_LIMIT :
								 MOAT_REASON_MALFORMED;
		return MOAT_DROP;
	}
	if (p->state == MOAT_L4_NOHDR)
		COUNT(c, fragments);

	/* No rule set, or a generation without its maps: fail closed. */
	rules = bpf_map_lookup_elem(&gen_rules, &gen);
	if (!cfg || !rules) {
		COUNT(c, dropped);
		return MOAT_DROP;
	}
	if (!(cfg->stage_on & 3)) {
		if (t) {
			t->reason = MOAT_REASON_STAGES_OFF;
			t->verdict = 1;
		}
		COUNT(c, passed);
		return MOAT_PASS;
	}
	if ((cfg->flags & MOAT_CFG_F_PASS_NDP) && is_ndp(p)) {
		COUNT(c, ndp);
		COUNT(c, passed);
		if (t) {
			t->reason = MOAT_REASON_NDP;
			t->verdict = 1;
		}
		return MOAT_PASS;
	}

	if (dir == MOAT_DIR_IN) {
		v = nacl_judge(rules, cfg, gen, p, MOAT_DIR_IN, len, c, t);
		if (v == MOAT_PASS)
			v = sg_judge(rules, cfg, gen, p, MOAT_DIR_IN, data, end, &sgd, &s->clock, c, t);
		else
			sgd.by = MOAT_SG_BY_NULL;
	} else {
		v = sg_judge(rules, cfg, gen, p, MOAT_DIR_OUT, data, end, &sgd, &s->clock, c, t);
		if (v == MOAT_PASS)
			v = nacl_judge(rules, cfg, gen, p, MOAT_DIR_OUT, len, c, t);
	}
	if (t) {
		t->sg_by = sgd.by;
		t->sg_pos = sgd.pos;
		if (sgd.by == MOAT_SG_BY_NONE)
			t->reason = MOAT_REASON_SG;
	}
	if (sgd.by == MOAT_SG_BY_NONE)
		COUNT_BYTES(c, sg_no_rule, sg_no_rule_bytes, len);
	if (v == MOAT_PASS) {
		sg_commit(rules, cfg, p, dir, len, &sgd, c, &s->new_entry);
		COUNT(c, passed);
	} else {
		COUNT(c, dropped);
	}
	if (t)
		t->verdict = v == MOAT_PASS;
	return v;
}

#endif
