// SPDX-License-Identifier: GPL-2.0
/*
 * sg_model.c - the reference model of moat's stateful SG stage (see
 * sg_model.h). Plain on purpose: the connection table is an array searched
 * linearly, every step of the state machine is written out where it
 * happens, and nothing is shared with bpf/ beyond the ABI's key layout
 * (which the test needs to read the datapath's table).
 *
 * The state machine, as specified:
 *  1. An ICMP error (v4 3/11/12, v6 1-4) whose quote names a flow with a
 *     live entry passes; nothing changes. Otherwise it goes on as an
 *     ordinary packet.
 *  2. A live entry for the packet's own key passes it and is advanced,
 *     unless the packet is a TCP SYN (ACK clear) and the entry is CLOSING.
 *  3. Otherwise the SG rules of the packet's direction decide. No rule:
 *     drop, nothing changes. TCP/UDP allowed by any untracked rule (they
 *     are a union, so file order does not matter): pass, nothing changes.
 *     Likewise the reply of an untracked flow: TCP/UDP allowed by a rule
 *     of its direction that, with addresses and ports swapped, an
 *     untracked rule of the other direction allows.
 *     Else pass and create (replace) the entry, except for non-first
 *     fragments and TCP with RST or FIN.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "sg_model.h"

#define M_PROTO_ICMP 1
#define M_PROTO_TCP 6
#define M_PROTO_UDP 17
#define M_PROTO_ICMPV6 58

/* ---- keys ------------------------------------------------------------- */

static size_t m_alen(int family)
{
	return family == 4 ? 4 : 16;
}

/* ICMP for this family: ICMP in IPv4, ICMPv6 in IPv6. */
static bool m_is_icmp(int family, int proto)
{
	return (family == 4 && proto == M_PROTO_ICMP) || (family == 6 && proto == M_PROTO_ICMPV6);
}

static bool m_is_echo(int family, int type)
{
	return family == 4 ? (type == 8 || type == 0) : (type == 128 || type == 129);
}

/*
 * Endpoint order: the address as a big-endian number, then the port. The
 * sender is "lower" when (src, sport) <= (dst, dport).
 */
static void m_key_build(struct moat_ct_key *k, int family, int proto, const uint8_t *src,
			uint16_t sport, const uint8_t *dst, uint16_t dport, bool *from_lo)
{
	size_t alen = m_alen(family);
	int c = memcmp(src, dst, alen);
	bool lo = c < 0 || (c == 0 && sport <= dport);

	memset(k, 0, sizeof(*k));
	k->family = (uint8_t)family;
	k->proto = (uint8_t)proto;
	if (lo) {
		memcpy(k->addr_lo, src, alen);
		memcpy(k->addr_hi, dst, alen);
		k->port_lo = htons(sport);
		k->port_hi = htons(dport);
	} else {
		memcpy(k->addr_lo, dst, alen);
		memcpy(k->addr_hi, src, alen);
		k->port_lo = htons(dport);
		k->port_hi = htons(sport);
	}
	if (from_lo)
		*from_lo = lo;
}

void sg_model_key(const struct sg_pkt *pkt, struct moat_ct_key *key, bool *from_lo)
{
	const struct packet *p = &pkt->p;
	uint16_t sp = 0, dp = 0;

	if (!p->frag) {
		if (p->proto == M_PROTO_TCP || p->proto == M_PROTO_UDP) {
			sp = p->sport;
			dp = p->dport;
		} else if (m_is_icmp(p->family, p->proto) && m_is_echo(p->family, p->icmp_type)) {
			sp = dp = pkt->icmp_id;
		}
	}
	m_key_build(key, p->family, p->proto, p->src, sp, p->dst, dp, from_lo);
}

bool sg_model_is_icmp_error(const struct sg_pkt *pkt)
{
	const struct packet *p = &pkt->p;

	if (p->frag || !m_is_icmp(p->family, p->proto))
		return false;
	if (p->family == 4)
		return p->icmp_type == 3 || p->icmp_type == 11 || p->icmp_type == 12;
	return p->icmp_type >= 1 && p->icmp_type <= 4;
}

/*
 * A quote names a flow when it holds a whole IP header (IPv4: IHL >= 5,
 * options included; IPv6: the fixed header directly followed by TCP, UDP
 * or ICMPv6) and the first 8 bytes of the L4 header.
 */
bool sg_model_quote_key(const struct sg_pkt *pkt, struct moat_ct_key *key)
{
	const struct sg_quote *q = &pkt->q;
	int family = pkt->p.family;
	uint16_t sp = 0, dp = 0;

	if (!q->present || q->hdr_cut || q->l4_bytes < 8)
		return false;
	if (family == 4) {
		if (q->v4_ihl < 5)
			return false;
	} else {
		if (q->v6_ext)
			return false;
		if (q->proto != M_PROTO_TCP && q->proto != M_PROTO_UDP &&
		    q->proto != M_PROTO_ICMPV6)
			return false;
	}
	if (q->proto == M_PROTO_TCP || q->proto == M_PROTO_UDP) {
		sp = q->sport;
		dp = q->dport;
	} else if (m_is_icmp(family, q->proto) && m_is_echo(family, q->icmp_type)) {
		sp = dp = q->icmp_id;
	}
	m_key_build(key, family, q->proto, q->src, sp, q->dst, dp, NULL);
	return true;
}

/* ---- the table -------------------------------------------------------- */

void sg_model_init(struct sg_model *m)
{
	memset(m, 0, sizeof(*m));
}

void sg_model_free(struct sg_model *m)
{
	free(m->untracked);
	free(m->e);
	memset(m, 0, sizeof(*m));
}

void sg_model_flush(struct sg_model *m)
{
	m->n = 0;
}

struct sg_entry *sg_model_find(struct sg_model *m, const struct moat_ct_key *key)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (memcmp(&m->e[i].key, key, sizeof(*key)) == 0)
			return &m->e[i];
	return NULL;
}

static struct sg_entry *m_insert(struct sg_model *m, const struct moat_ct_key *key)
{
	struct sg_entry *e = sg_model_find(m, key);

	if (e)
		return e;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct sg_entry *ne = realloc(m->e, cap * sizeof(*ne));

		if (!ne)
			return NULL;
		m->e = ne;
		m->cap = cap;
	}
	e = &m->e[m->n++];
	memset(e, 0, sizeof(*e));
	e->key = *key;
	return e;
}

bool sg_model_expired(const struct sg_entry *e, int64_t now_ns)
{
	/* strictly greater: an entry lives for exactly timeout_s seconds */
	return now_ns - e->last_ns > (int64_t)e->timeout_s * SG_NSEC;
}

static bool m_near_edge(const struct sg_entry *e, int64_t now_ns)
{
	int64_t d = now_ns - e->last_ns - (int64_t)e->timeout_s * SG_NSEC;

	return d > -SG_MODEL_EDGE_NS && d < SG_MODEL_EDGE_NS;
}

uint32_t sg_model_timeout(const struct rule_settings *s, int proto, uint8_t state)
{
	switch (proto) {
	case M_PROTO_TCP:
		if (state == MOAT_CT_CLOSING)
			return 10;
		if (state == MOAT_CT_ESTABLISHED)
			return s->ct_tcp_established;
		return 120; /* NEW, SYN_SENT */
	case M_PROTO_UDP:
		return state == MOAT_CT_ESTABLISHED ? s->ct_udp_stream : s->ct_udp;
	case M_PROTO_ICMP:
	case M_PROTO_ICMPV6:
		return s->ct_icmp;
	default:
		return 600;
	}
}

/* ---- untracked rules -------------------------------------------------- */

static const struct rule_addr *m_peer(const struct rule *r)
{
	return r->dir == RULE_DIR_IN ? &r->src : &r->dst;
}

static const struct rule_addr *m_local(const struct rule *r)
{
	return r->dir == RULE_DIR_IN ? &r->dst : &r->src;
}

/*
 * The families whose every address a rule's peer side takes in: a /0 its
 * own family; "any" the rule's family (a rule with IPv4 addresses elsewhere
 * matches IPv4 only), or both when the rule names no address.
 */
static unsigned int m_peer_families(const struct rule *r)
{
	const struct rule_addr *a = m_peer(r);

	if (a->kind == RULE_ADDR_ANY)
		return r->family ? 1u << r->family : (1u << 4 | 1u << 6);
	if (a->kind == RULE_ADDR_PREFIX && a->prefix.len == 0)
		return 1u << a->prefix.family;
	return 0;
}

/* The local side takes in every address: any, or (unless @any_only) a /0. */
static bool m_local_all(const struct rule *r, bool any_only)
{
	const struct rule_addr *a = m_local(r);

	if (a->kind == RULE_ADDR_ANY)
		return true;
	return !any_only && a->kind == RULE_ADDR_PREFIX && a->prefix.len == 0;
}

/* A rule of the other direction that lets all of @family back, any port. */
static bool m_has_return_rule(const struct ruleset *rs, const struct rule *r, int family,
			      bool any_only)
{
	size_t i;

	for (i = 0; i < rs->nrules; i++) {
		const struct rule *o = &rs->rules[i];

		if (o->stage != RULE_STAGE_SG || o->dir == r->dir)
			continue;
		if (o->proto != RULE_PROTO_ALL && o->proto != r->proto)
			continue;
		if (o->sport.set || o->dport.set || o->has_icmp || o->established)
			continue;
		if (!m_local_all(o, any_only))
			continue;
		if (m_peer_families(o) & (1u << family))
			return true;
	}
	return false;
}

/*
 * Untracked: proto all/tcp/udp, no sport/icmp/established, peer any or a
 * /0, local side all addresses, and for each family the peer takes in a
 * rule of the other direction (proto all or the same, no ports/icmp/
 * established, local side all addresses, peer any or that family's /0).
 * "Local side all addresses" is any or a /0; with @local_any_only, any
 * only (the narrower reading of the brief's text).
 */
bool sg_model_rule_untracked(const struct ruleset *rs, const struct rule *r, bool local_any_only)
{
	unsigned int fams;

	if (r->stage != RULE_STAGE_SG)
		return false;
	if (r->proto != RULE_PROTO_ALL && r->proto != M_PROTO_TCP && r->proto != M_PROTO_UDP)
		return false;
	if (r->sport.set || r->has_icmp || r->established)
		return false;
	if (!m_local_all(r, local_any_only))
		return false;
	fams = m_peer_families(r);
	if (!fams)
		return false;
	if ((fams & (1u << 4)) && !m_has_return_rule(rs, r, 4, local_any_only))
		return false;
	if ((fams & (1u << 6)) && !m_has_return_rule(rs, r, 6, local_any_only))
		return false;
	return true;
}

int sg_model_set_rules(struct sg_model *m, const struct ruleset *rs)
{
	bool *u = calloc(rs->nrules ? rs->nrules : 1, sizeof(*u));
	size_t i;

	if (!u)
		return -ENOMEM;
	m->stage_on = false;
	for (i = 0; i < rs->nrules; i++) {
		if (rs->rules[i].stage != RULE_STAGE_SG)
			continue;
		m->stage_on = true;
		u[i] = sg_model_rule_untracked(rs, &rs->rules[i], m->local_any_only);
	}
	free(m->untracked);
	m->untracked = u;
	m->untracked_n = rs->nrules;
	m->rs = rs;
	return 0;
}

/* ---- one packet ------------------------------------------------------- */

/* Step 2: a live entry passes the packet and follows it. */
static void m_advance(const struct sg_model *m, struct sg_entry *e, const struct sg_pkt *pkt,
		      bool from_lo, int64_t now)
{
	const struct packet *p = &pkt->p;
	bool sender_is_orig = from_lo == e->orig_lo;

	if (from_lo)
		e->seen_lo = true;
	else
		e->seen_hi = true;

	if (p->proto == M_PROTO_TCP) {
		if (!p->frag) {
			if (p->tcp_flags & PKT_TCP_RST)
				e->state = MOAT_CT_CLOSING;
			else if (p->tcp_flags & PKT_TCP_FIN)
				e->state = MOAT_CT_CLOSING;
			else if (e->state == MOAT_CT_SYN_SENT && !sender_is_orig)
				e->state = MOAT_CT_ESTABLISHED;
		}
	} else if (!sender_is_orig && e->state == MOAT_CT_NEW) {
		e->state = MOAT_CT_ESTABLISHED;
	}
	e->last_ns = now;
	e->timeout_s = sg_model_timeout(&m->rs->settings, p->proto, e->state);
	e->packets[from_lo ? 0 : 1]++;
	e->bytes[from_lo ? 0 : 1] += pkt->len;
}

int sg_model_packet(struct sg_model *m, int dir, const struct sg_pkt *pkt, int64_t now_ns,
		    struct sg_verdict *v)
{
	const struct packet *p = &pkt->p;
	const struct rule *r;
	struct sg_entry *e;
	bool from_lo, syn_only;
	bool tcp = p->proto == M_PROTO_TCP, udp = p->proto == M_PROTO_UDP;
	size_t idx;

	memset(v, 0, sizeof(*v));
	if (!m->rs)
		return -EINVAL;

	/* IPv6 neighbour discovery passes before any stage (CONTRACT §1). */
	if (m->rs->settings.pass_ndp && reference_is_ndp(p)) {
		v->pass = true;
		v->by = SG_BY_NDP;
		return 0;
	}
	/* A stage with no rule lines is off and passes everything. */
	if (!m->stage_on) {
		v->pass = true;
		v->by = SG_BY_OFF;
		return 0;
	}

	/* 1. ICMP errors quoting a live flow pass with it. */
	if (sg_model_is_icmp_error(pkt) && sg_model_quote_key(pkt, &v->qkey)) {
		v->has_qkey = true;
		e = sg_model_find(m, &v->qkey);
		if (e) {
			v->near_edge = m_near_edge(e, now_ns);
			if (!sg_model_expired(e, now_ns)) {
				v->pass = true;
				v->by = SG_BY_RELATED;
				return 0;
			}
		}
	}

	/* 2. The packet's own entry. */
	sg_model_key(pkt, &v->key, &from_lo);
	v->has_key = true;
	syn_only = tcp && !p->frag && (p->tcp_flags & (PKT_TCP_SYN | PKT_TCP_ACK)) == PKT_TCP_SYN;
	e = sg_model_find(m, &v->key);
	if (e) {
		if (m_near_edge(e, now_ns))
			v->near_edge = true;
		if (sg_model_expired(e, now_ns)) {
			v->had_expired = true;
		} else if (syn_only && e->state == MOAT_CT_CLOSING) {
			v->reopened = true;
		} else {
			m_advance(m, e, pkt, from_lo, now_ns);
			v->pass = true;
			v->by = SG_BY_ENTRY;
			return 0;
		}
	}

	/* 3. The rules of the packet's direction. */
	r = reference_sg_rule(m->rs, (enum rule_dir)dir, p);
	if (!r) {
		v->by = SG_BY_NONE;
		return 0;
	}
	v->pass = true;
	v->rule = r;
	/* The rules are a union: the flow is untracked when any rule that
	 * allows it is, whatever the file order. */
	for (idx = 0; (tcp || udp) && idx < m->untracked_n; idx++) {
		const struct rule *u = &m->rs->rules[idx];

		if (!m->untracked[idx] || u->stage != RULE_STAGE_SG || (int)u->dir != dir ||
		    !reference_rule_matches(m->rs, u, p))
			continue;
		v->rule = u;
		v->by = SG_BY_UNTRACKED;
		return 0;
	}
	if (tcp || udp) {
		struct packet sw = *p;

		memcpy(sw.src, p->dst, sizeof(sw.src));
		memcpy(sw.dst, p->src, sizeof(sw.dst));
		sw.sport = p->dport;
		sw.dport = p->sport;
		for (idx = 0; idx < m->untracked_n; idx++) {
			const struct rule *u = &m->rs->rules[idx];

			if (!m->untracked[idx] || u->stage != RULE_STAGE_SG ||
			    (int)u->dir == dir || !reference_rule_matches(m->rs, u, &sw))
				continue;
			v->by = SG_BY_UNTRACKED;
			return 0;
		}
	}
	v->by = SG_BY_RULE;
	if (p->frag || (tcp && (p->tcp_flags & (PKT_TCP_RST | PKT_TCP_FIN)))) {
		v->no_entry_exempt = true;
		return 0;
	}

	v->replaced = e != NULL;
	e = m_insert(m, &v->key);
	if (!e)
		return -ENOMEM;
	memset(&e->state, 0, sizeof(*e) - offsetof(struct sg_entry, state));
	if (tcp)
		e->state = syn_only ? MOAT_CT_SYN_SENT : MOAT_CT_ESTABLISHED;
	else
		e->state = MOAT_CT_NEW;
	e->orig_lo = from_lo;
	if (from_lo)
		e->seen_lo = true;
	else
		e->seen_hi = true;
	e->origin_dir = (uint8_t)dir;
	e->created_ns = e->last_ns = now_ns;
	e->timeout_s = sg_model_timeout(&m->rs->settings, p->proto, e->state);
	e->packets[from_lo ? 0 : 1] = 1;
	e->bytes[from_lo ? 0 : 1] = pkt->len;
	v->created = true;
	return 0;
}

/* ---- text ------------------------------------------------------------- */

const char *sg_by_name(enum sg_by by)
{
	static const char *const names[SG_BY_COUNT] = {
		"ndp", "stage-off", "related", "entry", "rule", "untracked", "none",
	};

	return by < SG_BY_COUNT ? names[by] : "?";
}

const char *sg_state_name(uint8_t state)
{
	switch (state) {
	case MOAT_CT_NEW:
		return "NEW";
	case MOAT_CT_SYN_SENT:
		return "SYN_SENT";
	case MOAT_CT_ESTABLISHED:
		return "ESTABLISHED";
	case MOAT_CT_CLOSING:
		return "CLOSING";
	}
	return "?";
}

static void m_addr(int family, const uint8_t *a, char *buf, size_t len)
{
	if (!inet_ntop(family == 4 ? AF_INET : AF_INET6, a, buf, len))
		snprintf(buf, len, "?");
}

static void m_flags(uint8_t f, char *buf)
{
	static const char letters[] = "FSRPAU";
	int i, n = 0;

	for (i = 0; i < 6; i++)
		if (f & (1u << i))
			buf[n++] = letters[i];
	if (f & 0xc0)
		buf[n++] = '+';
	if (!n)
		buf[n++] = '-';
	buf[n] = '\0';
}

static const char *m_proto_name(int family, int proto, char *buf, size_t len)
{
	if (proto == M_PROTO_TCP)
		return "tcp";
	if (proto == M_PROTO_UDP)
		return "udp";
	if (proto == M_PROTO_ICMP && family == 4)
		return "icmp";
	if (proto == M_PROTO_ICMPV6 && family == 6)
		return "icmpv6";
	snprintf(buf, len, "%d", proto);
	return buf;
}

int sg_pkt_format(const struct sg_pkt *pkt, char *buf, size_t len)
{
	const struct packet *p = &pkt->p;
	const struct sg_quote *q = &pkt->q;
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], pbuf[8], fl[12];
	const char *pn = m_proto_name(p->family, p->proto, pbuf, sizeof(pbuf));
	int n;

	m_addr(p->family, p->src, s, sizeof(s));
	m_addr(p->family, p->dst, d, sizeof(d));
	if (p->frag) {
		n = snprintf(buf, len, "%s %s > %s frag", pn, s, d);
	} else if (p->proto == M_PROTO_TCP) {
		m_flags(p->tcp_flags, fl);
		n = snprintf(buf, len, "%s [%s]:%u > [%s]:%u flags %s%s", pn, s, p->sport, d,
			     p->dport, fl, pkt->first_frag ? " first-frag" : "");
	} else if (p->proto == M_PROTO_UDP) {
		n = snprintf(buf, len, "%s [%s]:%u > [%s]:%u%s", pn, s, p->sport, d, p->dport,
			     pkt->first_frag ? " first-frag" : "");
	} else if (m_is_icmp(p->family, p->proto)) {
		n = snprintf(buf, len, "%s %s > %s icmp %d/%d id %u%s", pn, s, d, p->icmp_type,
			     p->icmp_code, pkt->icmp_id, pkt->first_frag ? " first-frag" : "");
	} else {
		n = snprintf(buf, len, "%s %s > %s%s", pn, s, d,
			     pkt->first_frag ? " first-frag" : "");
	}
	if (n < 0 || (size_t)n >= len)
		return n;
	if (q->present && !p->frag && m_is_icmp(p->family, p->proto)) {
		char qs[INET6_ADDRSTRLEN], qd[INET6_ADDRSTRLEN], qbuf[8];
		const char *qp = m_proto_name(p->family, q->proto, qbuf, sizeof(qbuf));
		int k;

		m_addr(p->family, q->src, qs, sizeof(qs));
		m_addr(p->family, q->dst, qd, sizeof(qd));
		k = snprintf(buf + n, len - n,
			     " quoting {%s [%s]:%u > [%s]:%u icmp %d id %u; ihl %u ext %d cut %u "
			     "l4 %u}",
			     qp, qs, q->sport, qd, q->dport, q->icmp_type, q->icmp_id, q->v4_ihl,
			     q->v6_ext, q->hdr_cut, q->l4_bytes);
		if (k < 0)
			return k;
		n += k;
	}
	return n;
}

int sg_key_format(const struct moat_ct_key *k, char *buf, size_t len)
{
	char lo[INET6_ADDRSTRLEN], hi[INET6_ADDRSTRLEN];

	m_addr(k->family, k->addr_lo, lo, sizeof(lo));
	m_addr(k->family, k->addr_hi, hi, sizeof(hi));
	return snprintf(buf, len, "v%u proto %u [%s]:%u <> [%s]:%u", k->family, k->proto, lo,
			ntohs(k->port_lo), hi, ntohs(k->port_hi));
}
