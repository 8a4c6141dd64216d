/* SPDX-License-Identifier: GPL-2.0 */
/*
 * parse.h - read a frame into struct moat_pkt: Ethernet, up to two VLAN tags
 * (802.1ad outer, 802.1Q inner), IPv4 or IPv6 with a bounded walk over the
 * extension headers, and the L4 fields moat matches on.
 *
 * The parser never guesses: a header that does not fit in the frame, or a
 * length field that contradicts it, makes the frame MALFORMED (dropped and
 * counted), so nothing is matched as if it were well formed.
 */
#ifndef MOAT_BPF_PARSE_H
#define MOAT_BPF_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "moat_abi.h"

/* How many IPv6 extension headers are walked before giving up. */
#define MOAT_V6_EXT_MAX 6
#define MOAT_VLAN_MAX 2

#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define IP_MF_ 0x2000
#define IP_OFFSET_ 0x1FFF

enum moat_parse {
	MOAT_PARSE_OK = 0,
	MOAT_PARSE_NON_IP,
	MOAT_PARSE_MALFORMED,
	MOAT_PARSE_EXT_LIMIT,
};

struct moat_pkt {
	__u8 family; /* 4 or 6 */
	__u8 proto;
	__u8 tcp_flags;
	__u8 state; /* enum moat_l4_state */
	__u8 has_l4;
	__u8 icmp_type, icmp_code;
	__u8 pad;
	__u16 sport, dport; /* host order; ICMP: type, code */
	__u16 icmp_id;	    /* echo identifier, host order */
	__u16 l4_off;	    /* offset of the L4 header from the frame start */
	__u8 src[16], dst[16];
} __attribute__((aligned(8))); /* so that clearing it takes 8-byte stores */

struct vlan_hdr_ {
	__be16 tci;
	__be16 proto;
};

struct icmp_hdr_ {
	__u8 type;
	__u8 code;
	__u16 csum;
	__be16 id;
	__be16 seq;
};

/*
 * The L4 header at @off; @ip_end is where the IP packet ends (its length
 * field), which may be before the frame's end (padding): a header must fit
 * in the packet, not merely in the frame.
 */
static __always_inline int parse_l4(void *data, void *end, struct moat_pkt *p, __u32 off,
				    __u32 ip_end)
{
	void *l4 = data + off;

	p->l4_off = off;
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > end || th->doff < 5 || off + th->doff * 4 > ip_end)
			return MOAT_PARSE_MALFORMED;
		p->sport = bpf_ntohs(th->source);
		p->dport = bpf_ntohs(th->dest);
		/* The flags byte follows the data offset byte. */
		p->tcp_flags = ((__u8 *)th)[13];
		if (p->tcp_flags & (0x10 | 0x04)) /* ACK or RST */
			p->state = MOAT_L4_ACKRST;
		p->has_l4 = 1;
	} else if (p->proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > end || off + sizeof(*uh) > ip_end)
			return MOAT_PARSE_MALFORMED;
		p->sport = bpf_ntohs(uh->source);
		p->dport = bpf_ntohs(uh->dest);
		p->has_l4 = 1;
	} else if ((p->proto == IPPROTO_ICMP && p->family == 4) ||
		   (p->proto == IPPROTO_ICMPV6 && p->family == 6)) {
		struct icmp_hdr_ *ih = l4;

		if ((void *)(ih + 1) > end || off + sizeof(*ih) > ip_end)
			return MOAT_PARSE_MALFORMED;
		p->icmp_type = ih->type;
		p->icmp_code = ih->code;
		p->sport = ih->type;
		p->dport = ih->code;
		p->icmp_id = bpf_ntohs(ih->id);
		p->has_l4 = 1;
	}
	return MOAT_PARSE_OK;
}

static __always_inline int parse_ipv4(void *data, void *end, struct moat_pkt *p, __u32 off,
				      __u32 len)
{
	struct iphdr *iph = data + off;
	__u32 ihl, tot;

	if ((void *)(iph + 1) > end)
		return MOAT_PARSE_MALFORMED;
	if (iph->version != 4 || iph->ihl < 5)
		return MOAT_PARSE_MALFORMED;
	ihl = iph->ihl * 4;
	tot = bpf_ntohs(iph->tot_len);
	/* A total length shorter than the header, or longer than the frame,
	 * is a lie about the packet: do not match it. Shorter than the frame
	 * is fine (Ethernet padding). @len is the whole frame's length, which
	 * at TC egress may exceed what is linear (end). */
	if (tot < ihl || off + tot > len)
		return MOAT_PARSE_MALFORMED;
	p->family = 4;
	p->proto = iph->protocol;
	__builtin_memcpy(p->src, &iph->saddr, 4);
	__builtin_memcpy(p->dst, &iph->daddr, 4);
	if (bpf_ntohs(iph->frag_off) & IP_OFFSET_) {
		/* A non-first fragment carries no L4 header. */
		p->state = MOAT_L4_NOHDR;
		return MOAT_PARSE_OK;
	}
	return parse_l4(data, end, p, off + ihl, off + tot);
}

struct ipv6_opt_hdr_ {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct ipv6_frag_hdr_ {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 id;
};

static __always_inline int parse_ipv6(void *data, void *end, struct moat_pkt *p, __u32 off,
				      __u32 len)
{
	struct ipv6hdr *ip6 = data + off;
	__u32 plen, ip_end;
	__u8 nh;
	int i;

	if ((void *)(ip6 + 1) > end)
		return MOAT_PARSE_MALFORMED;
	if (ip6->version != 6)
		return MOAT_PARSE_MALFORMED;
	plen = bpf_ntohs(ip6->payload_len);
	off += sizeof(*ip6);
	if (off + plen > len)
		return MOAT_PARSE_MALFORMED;
	ip_end = off + plen;
	p->family = 6;
	__builtin_memcpy(p->src, &ip6->saddr, 16);
	__builtin_memcpy(p->dst, &ip6->daddr, 16);
	nh = ip6->nexthdr;

	/* Up to MOAT_V6_EXT_MAX extension headers, then the upper layer. */
#pragma unroll
	for (i = 0; i <= MOAT_V6_EXT_MAX; i++) {
		struct ipv6_opt_hdr_ *oh = data + off;

		if (i == MOAT_V6_EXT_MAX && (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING ||
					     nh == IPPROTO_DSTOPTS || nh == IPPROTO_AH ||
					     nh == IPPROTO_FRAGMENT))
			return MOAT_PARSE_EXT_LIMIT;

		switch (nh) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if ((void *)(oh + 1) > end)
				return MOAT_PARSE_MALFORMED;
			nh = oh->nexthdr;
			off += (oh->hdrlen + 1) * 8;
			break;
		case IPPROTO_AH:
			if ((void *)(oh + 1) > end)
				return MOAT_PARSE_MALFORMED;
			nh = oh->nexthdr;
			off += (oh->hdrlen + 2) * 4;
			break;
		case IPPROTO_FRAGMENT: {
			struct ipv6_frag_hdr_ *fh = data + off;

			if ((void *)(fh + 1) > end || off + sizeof(*fh) > ip_end)
				return MOAT_PARSE_MALFORMED;
			nh = fh->nexthdr;
			off += sizeof(*fh);
			if (bpf_ntohs(fh->frag_off) & 0xFFF8) {
				p->proto = nh;
				p->state = MOAT_L4_NOHDR;
				return MOAT_PARSE_OK;
			}
			break;
		}
		default:
			p->proto = nh;
			return parse_l4(data, end, p, off, ip_end);
		}
		/* An extension header may not run past the packet; the bound
		 * also keeps the offset provably small for the verifier. */
		if (off > ip_end || off > 1024)
			return MOAT_PARSE_MALFORMED;
	}
	return MOAT_PARSE_EXT_LIMIT;
}

/*
 * Parse the frame at [data, end), of @len bytes in all. On MOAT_PARSE_OK, @p holds the fields;
 * p->state says whether TCP ACK/RST is set or the L4 header is absent.
 */
static __always_inline int moat_parse(void *data, void *end, struct moat_pkt *p, __u32 len)
{
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth);
	__u16 proto;
	int i;

	if ((void *)(eth + 1) > end)
		return MOAT_PARSE_MALFORMED;
	proto = bpf_ntohs(eth->h_proto);

#pragma unroll
	for (i = 0; i < MOAT_VLAN_MAX; i++) {
		struct vlan_hdr_ *vh = data + off;

		if (proto != ETH_P_8021Q_ && proto != ETH_P_8021AD_)
			break;
		if ((void *)(vh + 1) > end)
			return MOAT_PARSE_MALFORMED;
		proto = bpf_ntohs(vh->proto);
		off += sizeof(*vh);
	}
	/* More tags than moat parses: refuse rather than pass unjudged. */
	if (proto == ETH_P_8021Q_ || proto == ETH_P_8021AD_)
		return MOAT_PARSE_MALFORMED;

	if (proto == ETH_P_IP)
		return parse_ipv4(data, end, p, off, len);
	if (proto == ETH_P_IPV6)
		return parse_ipv6(data, end, p, off, len);
	return MOAT_PARSE_NON_IP;
}

#endif
