/* SPDX-License-Identifier: GPL-2.0 */
/*
 * conntrack.h - the connection-tracking table behind the SG stage.
 *
 * One LRU hash map, shared by XDP (in) and TC (out), keyed by the flow in
 * canonical order (lower address/port endpoint first) so both directions of
 * a connection find the same entry. Expiry is judged here, on lookup, from
 * the entry's last-seen time; the LRU only bounds memory.
 */
#ifndef MOAT_BPF_CONNTRACK_H
#define MOAT_BPF_CONNTRACK_H

#include "maps.h"
#include "parse.h"

#define NSEC_PER_SEC 1000000000ULL

#define TCP_FIN_ 0x01
#define TCP_SYN_ 0x02
#define TCP_RST_ 0x04
#define TCP_ACK_ 0x10

/* Compare two addresses as big-endian numbers, 8 bytes at a time. */
static __always_inline int addr_cmp(const __u8 *a, const __u8 *b, int n)
{
	__u64 x, y;

	if (n == 4) {
		__u32 p, q;

		__builtin_memcpy(&p, a, 4);
		__builtin_memcpy(&q, b, 4);
		p = bpf_ntohl(p);
		q = bpf_ntohl(q);
		return p < q ? -1 : p > q;
	}
	__builtin_memcpy(&x, a, 8);
	__builtin_memcpy(&y, b, 8);
	x = __builtin_bswap64(x);
	y = __builtin_bswap64(y);
	if (x != y)
		return x < y ? -1 : 1;
	__builtin_memcpy(&x, a + 8, 8);
	__builtin_memcpy(&y, b + 8, 8);
	x = __builtin_bswap64(x);
	y = __builtin_bswap64(y);
	return x < y ? -1 : x > y;
}

static __always_inline void ct_addr_copy(__u8 *to, const __u8 *from, __u8 family)
{
	if (family == 4)
		__builtin_memcpy(to, from, 4);
	else
		__builtin_memcpy(to, from, 16);
}

/*
 * Fill @k for the flow (src:sport -> dst:dport). Returns 1 when the sender
 * is the lower endpoint.
 */
static __always_inline int ct_key_make(struct moat_ct_key *k, __u8 family, __u8 proto,
				       const __u8 *src, const __u8 *dst, __u16 sport,
				       __u16 dport)
{
	int n = family == 4 ? 4 : 16;
	int c = addr_cmp(src, dst, n);
	int lo = c < 0 || (c == 0 && sport <= dport);

	__builtin_memset(k, 0, sizeof(*k));
	k->family = family;
	k->proto = proto;
	if (lo) {
		ct_addr_copy(k->addr_lo, src, family);
		ct_addr_copy(k->addr_hi, dst, family);
		k->port_lo = bpf_htons(sport);
		k->port_hi = bpf_htons(dport);
	} else {
		ct_addr_copy(k->addr_lo, dst, family);
		ct_addr_copy(k->addr_hi, src, family);
		k->port_lo = bpf_htons(dport);
		k->port_hi = bpf_htons(sport);
	}
	return lo;
}

static __always_inline int icmp_is_echo(const struct moat_pkt *p)
{
	if (p->family == 4)
		return p->icmp_type == 8 || p->icmp_type == 0;
	return p->icmp_type == 128 || p->icmp_type == 129;
}

static __always_inline int icmp_is_error(const struct moat_pkt *p)
{
	if (!p->has_l4)
		return 0;
	if (p->family == 4 && p->proto == IPPROTO_ICMP)
		return p->icmp_type == 3 || p->icmp_type == 11 || p->icmp_type == 12;
	if (p->family == 6 && p->proto == IPPROTO_ICMPV6)
		return p->icmp_type >= 1 && p->icmp_type <= 4;
	return 0;
}

/* The flow key of packet @p; returns 1 when the sender is the lower end. */
static __always_inline int ct_key_of(const struct moat_pkt *p, struct moat_ct_key *k)
{
	__u16 sp = 0, dp = 0;

	if (p->has_l4) {
		if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) {
			sp = p->sport;
			dp = p->dport;
		} else if (icmp_is_echo(p)) {
			sp = p->icmp_id;
			dp = p->icmp_id;
		}
	}
	return ct_key_make(k, p->family, p->proto, p->src, p->dst, sp, dp);
}

/*
 * The key of the flow an ICMP error quotes (the original packet went the
 * other way, which the canonical key does not care about). Returns 0 on
 * success, -1 when the quote is too short or not understood.
 */
static __always_inline int ct_key_of_quoted(void *data, void *end, const struct moat_pkt *p,
					    struct moat_ct_key *k)
{
	__u32 off = p->l4_off + 8;
	__u16 sp = 0, dp = 0;
	__u8 proto, *l4;

	if (off > 1024)
		return -1;
	if (p->family == 4) {
		struct iphdr *ih = data + off;

		if ((void *)(ih + 1) > end || ih->ihl < 5)
			return -1;
		proto = ih->protocol;
		l4 = (void *)ih + ih->ihl * 4;
		if ((void *)(l4 + 8) > end)
			return -1;
		if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
			sp = bpf_ntohs(*(__be16 *)l4);
			dp = bpf_ntohs(*(__be16 *)(l4 + 2));
		} else if (proto == IPPROTO_ICMP && (l4[0] == 8 || l4[0] == 0)) {
			sp = dp = bpf_ntohs(*(__be16 *)(l4 + 4));
		}
		/* IPv4 addresses are the first 4 bytes of the 16-byte key fields. */
		ct_key_make(k, 4, proto, (__u8 *)&ih->saddr, (__u8 *)&ih->daddr, sp, dp);
		return 0;
	} else {
		struct ipv6hdr *ih = data + off;

		if ((void *)(ih + 1) > end)
			return -1;
		proto = ih->nexthdr;
		l4 = (void *)(ih + 1);
		if ((void *)(l4 + 8) > end)
			return -1;
		if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
			sp = bpf_ntohs(*(__be16 *)l4);
			dp = bpf_ntohs(*(__be16 *)(l4 + 2));
		} else if (proto == IPPROTO_ICMPV6 && (l4[0] == 128 || l4[0] == 129)) {
			sp = dp = bpf_ntohs(*(__be16 *)(l4 + 4));
		} else if (proto != IPPROTO_ICMPV6) {
			/* Extension headers in the quote are not walked. */
			return -1;
		}
		ct_key_make(k, 6, proto, (__u8 *)&ih->saddr, (__u8 *)&ih->daddr, sp, dp);
		return 0;
	}
}

static __always_inline __u32 ct_timeout(const struct moat_ct_timeouts *t, __u8 proto, __u8 state)
{
	if (proto == IPPROTO_TCP) {
		if (state == MOAT_CT_SYN_SENT || state == MOAT_CT_NEW)
			return t->tcp_syn;
		if (state == MOAT_CT_CLOSING)
			return t->tcp_closing;
		return t->tcp_established;
	}
	if (proto == IPPROTO_UDP)
		return state == MOAT_CT_ESTABLISHED ? t->udp_stream : t->udp;
	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)
		return t->icmp;
	return t->other;
}

/*
 * Connection tracking's clock, in CLOCK_MONOTONIC nanoseconds as of the last
 * timer tick. Timeouts are whole seconds, so a tick (1-10 ms) is exact
 * enough. Reading it costs three nested kernel calls, while jiffies is one
 * load the verifier inlines: each CPU reads the clock again only when jiffies
 * has moved, which is at most once per tick.
 */
struct moat_clock {
	__u64 jiffies;
	__u64 ns;
};

static __always_inline __u64 ct_clock(struct moat_clock *clock)
{
	__u64 j = bpf_jiffies64();

	if (j != clock->jiffies) {
		clock->ns = bpf_ktime_get_coarse_ns();
		clock->jiffies = j;
	}
	return clock->ns;
}

/* An entry stamped a tick later (by another CPU's clock, or by user space
 * with the fine clock) may lie ahead of @now: that is no age at all. */
static __always_inline int ct_expired(const struct moat_ct_value *v, __u64 now)
{
	__s64 age = (__s64)(now - v->last_ns);

	return age > (__s64)((__u64)v->timeout_s * NSEC_PER_SEC);
}

/* The state an entry created by packet @p starts in. */
static __always_inline __u8 ct_initial_state(const struct moat_pkt *p)
{
	if (p->proto == IPPROTO_TCP && p->has_l4) {
		if ((p->tcp_flags & (TCP_SYN_ | TCP_ACK_)) == TCP_SYN_)
			return MOAT_CT_SYN_SENT;
		/* Picked up mid-stream (loose, as Linux conntrack). */
		return MOAT_CT_ESTABLISHED;
	}
	return MOAT_CT_NEW;
}

/* Whether packet @p, allowed by a rule, opens an entry at all. */
static __always_inline int ct_may_create(const struct moat_pkt *p)
{
	if (p->state == MOAT_L4_NOHDR)
		return 0;
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_RST_ | TCP_FIN_)))
		return 0;
	return 1;
}

/* Advance entry @v for packet @p sent by the lower (from_lo) or upper end. */
static __always_inline void ct_advance(struct moat_ct_value *v, const struct moat_pkt *p,
				       int from_lo)
{
	int from_orig = !!(v->flags & MOAT_CT_F_ORIG_LO) == !!from_lo;

	v->flags |= from_lo ? MOAT_CT_F_SEEN_LO : MOAT_CT_F_SEEN_HI;
	if (p->proto == IPPROTO_TCP && p->has_l4) {
		if (p->tcp_flags & TCP_RST_) {
			v->state = MOAT_CT_CLOSING;
		} else if (p->tcp_flags & TCP_FIN_) {
			v->flags |= from_lo ? MOAT_CT_F_FIN_LO : MOAT_CT_F_FIN_HI;
			v->state = MOAT_CT_CLOSING;
		} else if (v->state == MOAT_CT_SYN_SENT && !from_orig) {
			v->state = MOAT_CT_ESTABLISHED;
		}
	} else if (!from_orig && v->state == MOAT_CT_NEW) {
		v->state = MOAT_CT_ESTABLISHED;
	}
}

#endif
