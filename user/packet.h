/* SPDX-License-Identifier: GPL-2.0 */
/*
 * packet.h - one packet as `moat trace` and `moat lint` describe it:
 *   PROTO SRC[:PORT] > DST[:PORT] [flags FLAGS] [icmp T/C] [frag]
 * plus helpers to turn it into an Ethernet frame for BPF_PROG_TEST_RUN.
 */
#ifndef MOAT_PACKET_H
#define MOAT_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* TCP flag bits, as in the TCP header's flags byte. */
#define PKT_TCP_FIN 0x01
#define PKT_TCP_SYN 0x02
#define PKT_TCP_RST 0x04
#define PKT_TCP_PSH 0x08
#define PKT_TCP_ACK 0x10
#define PKT_TCP_URG 0x20

struct packet {
	int family; /* 4 or 6 */
	int proto;  /* 0..255; 6 tcp, 17 udp, 1 icmp, 58 icmpv6 */
	uint8_t src[16], dst[16]; /* network order; IPv4 in [0..3] */
	uint16_t sport, dport;	  /* host order; tcp/udp only */
	uint8_t tcp_flags;	  /* PKT_TCP_*; default SYN for tcp */
	int icmp_type, icmp_code; /* icmp/icmpv6; default 8/0 (128/0 for v6) */
	bool frag;		  /* a non-first fragment: no L4 header */
};

/*
 * Parse PACKET from argv words (one word holding the whole spec, or several).
 * Returns 0, or -EINVAL with a message in @err naming the word and what was
 * expected.
 */
int packet_parse(int argc, char **argv, struct packet *p, char *err, size_t errlen);
/* The same spec as text, parsable by packet_parse (e.g. for lint witnesses). */
int packet_format(const struct packet *p, char *buf, size_t len);

/*
 * Build an Ethernet frame carrying @p (valid checksums not required by moat).
 * Returns the frame length, or -ENOSPC when @len is too small.
 */
int packet_build_frame(const struct packet *p, uint8_t *buf, size_t len);

#endif
