// SPDX-License-Identifier: GPL-2.0
/*
 * packet_build.c - turn a struct packet into an Ethernet frame, so the real
 * BPF programs can judge it through BPF_PROG_TEST_RUN (`moat trace`, the
 * BPF tests, the differential test).
 *
 * The frame is Ethernet II + IPv4 (no options) or IPv6 + the L4 header the
 * packet's protocol has + a short payload. A non-first fragment carries no
 * L4 header: IPv4 gets a non-zero fragment offset, IPv6 a Fragment extension
 * header with a non-zero offset. ICMP errors quote the datagram they answer,
 * so a datapath that looks inside them finds a well-formed quote. Checksums
 * are filled in although moat does not check them, so a frame written to a
 * pcap reads cleanly in tcpdump.
 */
#include <errno.h>
#include <string.h>

#include "packet.h"

#define PB_ETH_LEN 14
#define PB_IP4_LEN 20
#define PB_IP6_LEN 40
#define PB_FRAG6_LEN 8
#define PB_TCP_LEN 20
#define PB_UDP_LEN 8
#define PB_ICMP_LEN 8

#define PB_ETH_P_IP 0x0800
#define PB_ETH_P_IPV6 0x86dd

#define PB_PROTO_ICMP 1
#define PB_PROTO_TCP 6
#define PB_PROTO_UDP 17
#define PB_PROTO_FRAG6 44
#define PB_PROTO_ICMPV6 58

/* A non-first fragment: the second of a 1500-byte-MTU split, 1480 / 8. */
#define PB_FRAG_OFFSET 185
#define PB_IP_ID 0x4d54

static const uint8_t pb_mac_dst[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };
static const uint8_t pb_mac_src[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t pb_payload[8] = { 'm', 'o', 'a', 't', '-', 'p', 'k', 't' };

static void pb_put16(uint8_t *b, uint16_t v)
{
	b[0] = v >> 8;
	b[1] = v & 0xff;
}

static void pb_put32(uint8_t *b, uint32_t v)
{
	pb_put16(b, v >> 16);
	pb_put16(b + 2, v & 0xffff);
}

/* One's complement sum of big-endian 16-bit words (RFC 1071). */
static uint32_t pb_csum_add(uint32_t sum, const uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)b[i] << 8 | b[i + 1];
	if (n & 1)
		sum += (uint32_t)b[n - 1] << 8;
	return sum;
}

static uint16_t pb_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

/* The pseudo-header sum of TCP, UDP and ICMPv6 (RFC 793, RFC 8200 8.1). */
static uint32_t pb_pseudo_sum(int family, const uint8_t *src, const uint8_t *dst, int proto,
			      size_t l4_len)
{
	size_t alen = family == 4 ? 4 : 16;
	uint32_t sum = 0;

	sum = pb_csum_add(sum, src, alen);
	sum = pb_csum_add(sum, dst, alen);
	sum += proto;
	sum += (uint32_t)(l4_len >> 16) + (uint32_t)(l4_len & 0xffff);
	return sum;
}

static bool pb_icmp_is_error(int proto, int type)
{
	if (proto == PB_PROTO_ICMPV6)
		return type >= 1 && type <= 4;
	/* unreachable, source quench, redirect, time exceeded, parameter problem */
	return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

static bool pb_icmp_is_echo(int proto, int type)
{
	if (proto == PB_PROTO_ICMPV6)
		return type == 128 || type == 129;
	return type == 8 || type == 0;
}

/* An IP header of @family without options or extension headers. */
static size_t pb_ip_header(uint8_t *b, int family, int proto, const uint8_t *src,
			   const uint8_t *dst, size_t l3_payload, uint16_t frag_off)
{
	if (family == 4) {
		memset(b, 0, PB_IP4_LEN);
		b[0] = 0x45; /* version 4, IHL 5 */
		pb_put16(b + 2, PB_IP4_LEN + l3_payload);
		pb_put16(b + 4, PB_IP_ID);
		pb_put16(b + 6, frag_off); /* flags 0, offset in 8-byte units */
		b[8] = 64;
		b[9] = proto;
		memcpy(b + 12, src, 4);
		memcpy(b + 16, dst, 4);
		pb_put16(b + 10, pb_csum_fold(pb_csum_add(0, b, PB_IP4_LEN)));
		return PB_IP4_LEN;
	}
	memset(b, 0, PB_IP6_LEN);
	b[0] = 0x60; /* version 6, traffic class 0, flow label 0 */
	pb_put16(b + 4, l3_payload);
	b[6] = proto;
	b[7] = 64;
	memcpy(b + 8, src, 16);
	memcpy(b + 24, dst, 16);
	return PB_IP6_LEN;
}

/*
 * The quote of an ICMP error: the datagram that caused it, a UDP datagram
 * that @p's receiver (dst:dport) sent to its sender (src:sport), IP header
 * and the first 8 bytes of its payload, as RFC 792 and RFC 4443 ask.
 */
static size_t pb_icmp_quote(uint8_t *b, const struct packet *p)
{
	size_t ip_len = p->family == 4 ? PB_IP4_LEN : PB_IP6_LEN;
	uint8_t *udp = b + ip_len;

	pb_ip_header(b, p->family, PB_PROTO_UDP, p->dst, p->src, PB_UDP_LEN, 0);
	pb_put16(udp, p->dport);
	pb_put16(udp + 2, p->sport);
	pb_put16(udp + 4, PB_UDP_LEN + sizeof(pb_payload));
	pb_put16(udp + 6, 0); /* the quote is truncated: no checksum to check */
	return ip_len + PB_UDP_LEN;
}

static size_t pb_quote_len(const struct packet *p)
{
	return (p->family == 4 ? PB_IP4_LEN : PB_IP6_LEN) + PB_UDP_LEN;
}

/* Length of what follows the IP header(s): L4 header, quote, payload. */
static size_t pb_l4_len(const struct packet *p)
{
	size_t n = sizeof(pb_payload);

	if (p->frag)
		return n;
	switch (p->proto) {
	case PB_PROTO_TCP:
		return n + PB_TCP_LEN;
	case PB_PROTO_UDP:
		return n + PB_UDP_LEN;
	case PB_PROTO_ICMP:
	case PB_PROTO_ICMPV6:
		if (pb_icmp_is_error(p->proto, p->icmp_type))
			n += pb_quote_len(p);
		return n + PB_ICMP_LEN;
	default:
		return n;
	}
}

/* Write the L4 header and payload (@len bytes in all) at @b. */
static void pb_l4(uint8_t *b, const struct packet *p, size_t len)
{
	size_t hdr = len - sizeof(pb_payload);
	uint32_t sum;

	memset(b, 0, hdr);
	memcpy(b + hdr, pb_payload, sizeof(pb_payload));
	if (p->frag)
		return;

	switch (p->proto) {
	case PB_PROTO_TCP:
		pb_put16(b, p->sport);
		pb_put16(b + 2, p->dport);
		pb_put32(b + 4, 1);				     /* sequence number */
		pb_put32(b + 8, p->tcp_flags & PKT_TCP_ACK ? 1 : 0); /* ack number */
		b[12] = (PB_TCP_LEN / 4) << 4;			     /* data offset 5 */
		b[13] = p->tcp_flags;
		pb_put16(b + 14, 65535); /* window */
		sum = pb_pseudo_sum(p->family, p->src, p->dst, p->proto, len);
		pb_put16(b + 16, pb_csum_fold(pb_csum_add(sum, b, len)));
		break;
	case PB_PROTO_UDP:
		pb_put16(b, p->sport);
		pb_put16(b + 2, p->dport);
		pb_put16(b + 4, len);
		sum = pb_pseudo_sum(p->family, p->src, p->dst, p->proto, len);
		sum = pb_csum_fold(pb_csum_add(sum, b, len));
		/* 0 means "no checksum" in UDP; a computed 0 is sent as 0xffff */
		pb_put16(b + 6, sum ? sum : 0xffff);
		break;
	case PB_PROTO_ICMP:
	case PB_PROTO_ICMPV6:
		b[0] = p->icmp_type;
		b[1] = p->icmp_code;
		if (pb_icmp_is_echo(p->proto, p->icmp_type)) {
			pb_put16(b + 4, 0x6d74); /* identifier */
			pb_put16(b + 6, 1);	 /* sequence number */
		}
		if (pb_icmp_is_error(p->proto, p->icmp_type))
			pb_icmp_quote(b + PB_ICMP_LEN, p);
		/* ICMPv6 sums a pseudo-header, ICMP (v4) only itself */
		sum = p->proto == PB_PROTO_ICMPV6
			      ? pb_pseudo_sum(p->family, p->src, p->dst, p->proto, len)
			      : 0;
		pb_put16(b + 2, pb_csum_fold(pb_csum_add(sum, b, len)));
		break;
	default:
		break;
	}
}

int packet_build_frame(const struct packet *p, uint8_t *buf, size_t len)
{
	size_t l4_len, l3_len, total, off;

	if ((p->family != 4 && p->family != 6) || p->proto < 0 || p->proto > 255)
		return -EINVAL;

	l4_len = pb_l4_len(p);
	l3_len = p->family == 4 ? PB_IP4_LEN : PB_IP6_LEN;
	if (p->family == 6 && p->frag)
		l3_len += PB_FRAG6_LEN;
	total = PB_ETH_LEN + l3_len + l4_len;
	if (len < total)
		return -ENOSPC;

	memcpy(buf, pb_mac_dst, 6);
	memcpy(buf + 6, pb_mac_src, 6);
	pb_put16(buf + 12, p->family == 4 ? PB_ETH_P_IP : PB_ETH_P_IPV6);
	off = PB_ETH_LEN;

	if (p->family == 4) {
		off += pb_ip_header(buf + off, 4, p->proto, p->src, p->dst, l4_len,
				    p->frag ? PB_FRAG_OFFSET : 0);
	} else if (p->frag) {
		uint8_t *fh;

		off += pb_ip_header(buf + off, 6, PB_PROTO_FRAG6, p->src, p->dst,
				    PB_FRAG6_LEN + l4_len, 0);
		/* next header, reserved, offset << 3 | M (0: last), identification */
		fh = buf + off;
		fh[0] = p->proto;
		fh[1] = 0;
		pb_put16(fh + 2, PB_FRAG_OFFSET << 3);
		pb_put32(fh + 4, PB_IP_ID);
		off += PB_FRAG6_LEN;
	} else {
		off += pb_ip_header(buf + off, 6, p->proto, p->src, p->dst, l4_len, 0);
	}

	pb_l4(buf + off, p, l4_len);
	return (int)(off + l4_len);
}
