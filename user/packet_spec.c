// SPDX-License-Identifier: GPL-2.0
/*
 * packet_spec.c - the PACKET argument of `moat trace` (CONTRACT §4):
 *
 *   PROTO SRC[:PORT] > DST[:PORT] [flags FLAGS] [icmp T/C] [frag]
 *
 * and its text form, which `moat lint` prints for its witness packets.
 * The spec may come as one shell word or as many, so the words are first
 * split on whitespace and around '>' and then read as one token list.
 * Pure: no BPF, no I/O.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "packet.h"

/* A packet spec is short; more words than this is not a packet. */
#define PKT_MAX_TOKENS 32
/* The longest word we quote or copy (an IPv6 address with port fits). */
#define PKT_WORD_MAX 64

struct pkt_tok {
	const char *s;
	int len;
};

struct pkt_parser {
	struct pkt_tok t[PKT_MAX_TOKENS];
	int n, pos;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int pkt_err(struct pkt_parser *pp, const char *fmt,
							 ...)
{
	va_list ap;

	if (pp->err && pp->errlen) {
		va_start(ap, fmt);
		vsnprintf(pp->err, pp->errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

#define TOK_FMT "'%.*s'"
#define TOK_ARGS(t) (t)->len > PKT_WORD_MAX ? PKT_WORD_MAX : (t)->len, (t)->s

static bool tok_is(const struct pkt_tok *t, const char *word)
{
	size_t n = strlen(word);

	return t && (size_t)t->len == n && !memcmp(t->s, word, n);
}

static const struct pkt_tok *next_tok(struct pkt_parser *pp)
{
	return pp->pos < pp->n ? &pp->t[pp->pos++] : NULL;
}

/* "expected WHAT after 'PREV', found 'T'" (or "found nothing"). */
static int expect_err(struct pkt_parser *pp, const struct pkt_tok *t, const struct pkt_tok *prev,
		      const char *what)
{
	if (!t)
		return pkt_err(pp, "expected %s after " TOK_FMT ", found nothing", what,
			       TOK_ARGS(prev));
	return pkt_err(pp, "expected %s after " TOK_FMT ", found " TOK_FMT, what, TOK_ARGS(prev),
		       TOK_ARGS(t));
}

static int tokenize(struct pkt_parser *pp, int argc, char **argv)
{
	int i;

	for (i = 0; i < argc; i++) {
		const char *q = argv[i];

		while (*q) {
			const char *w = q;

			if (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') {
				q++;
				continue;
			}
			/* '>' stands alone even when written "a>b": no address holds one. */
			if (*q == '>')
				q++;
			else
				while (*q && !strchr(" \t\n\r>", *q))
					q++;
			if (pp->n == PKT_MAX_TOKENS)
				return pkt_err(
					pp,
					"too many words: expected PROTO SRC[:PORT] > DST[:PORT] [flags FLAGS] [icmp T/C] [frag]");
			pp->t[pp->n++] = (struct pkt_tok){ .s = w, .len = (int)(q - w) };
		}
	}
	return 0;
}

static int parse_num(const char *s, size_t len, unsigned long max, unsigned long *v)
{
	unsigned long x = 0;
	size_t i;

	if (!len || len > 10)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		x = x * 10 + (unsigned long)(s[i] - '0');
	}
	if (x > max)
		return -ERANGE;
	*v = x;
	return 0;
}

static int parse_proto(struct pkt_parser *pp, const struct pkt_tok *t, int *proto)
{
	static const struct {
		const char *name;
		int proto;
	} names[] = { { "tcp", 6 }, { "udp", 17 }, { "icmp", 1 }, { "icmpv6", 58 } };
	unsigned long v = 0;
	size_t i;

	if (!t)
		return pkt_err(
			pp,
			"expected a packet: PROTO SRC[:PORT] > DST[:PORT] [flags FLAGS] [icmp T/C] [frag]");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (tok_is(t, names[i].name)) {
			*proto = names[i].proto;
			return 0;
		}
	}
	if (parse_num(t->s, (size_t)t->len, 255, &v))
		return pkt_err(pp,
			       "unknown protocol " TOK_FMT
			       ": expected tcp, udp, icmp, icmpv6 or a number 0-255",
			       TOK_ARGS(t));
	*proto = (int)v;
	return 0;
}

/*
 * One endpoint: "ADDR", "IPV4:PORT", "[IPV6]" or "[IPV6]:PORT". A bare IPv6
 * address cannot carry a port, since its last group would read as one.
 */
static int parse_endpoint(struct pkt_parser *pp, const struct pkt_tok *t, const char *role,
			  int *family, uint8_t *addr, bool *has_port, uint16_t *port)
{
	const char *s, *addr_end, *colon = NULL;
	char buf[PKT_WORD_MAX];
	unsigned long v = 0;
	size_t alen;

	if (!t)
		return pkt_err(
			pp,
			"expected the %s address (ADDR or ADDR:PORT, [IPV6]:PORT), found nothing",
			role);
	s = t->s;
	if ((size_t)t->len >= sizeof(buf))
		return pkt_err(pp, "expected the %s address, found " TOK_FMT, role, TOK_ARGS(t));
	*has_port = false;

	if (s[0] == '[') {
		addr_end = memchr(s, ']', (size_t)t->len);
		if (!addr_end)
			return pkt_err(
				pp, "missing ']' in %s " TOK_FMT ": expected [IPV6] or [IPV6]:PORT",
				role, TOK_ARGS(t));
		alen = (size_t)(addr_end - s - 1);
		memcpy(buf, s + 1, alen);
		buf[alen] = '\0';
		if (inet_pton(AF_INET6, buf, addr) != 1)
			return pkt_err(pp, "%s " TOK_FMT ": '%s' is not an IPv6 address", role,
				       TOK_ARGS(t), buf);
		*family = 6;
		if (addr_end + 1 < s + t->len) {
			if (addr_end[1] != ':')
				return pkt_err(pp, "%s " TOK_FMT ": expected ':PORT' after ']'",
					       role, TOK_ARGS(t));
			colon = addr_end + 1;
		}
	} else {
		memcpy(buf, s, (size_t)t->len);
		buf[t->len] = '\0';
		if (inet_pton(AF_INET6, buf, addr) == 1) {
			*family = 6;
			return 0;
		}
		colon = memchr(s, ':', (size_t)t->len);
		if (colon && memchr(colon + 1, ':', (size_t)(s + t->len - colon - 1)))
			return pkt_err(
				pp,
				"%s " TOK_FMT
				" is not an address: expected ADDR, ADDR:PORT, or [IPV6]:PORT for IPv6 with a port",
				role, TOK_ARGS(t));
		alen = colon ? (size_t)(colon - s) : (size_t)t->len;
		buf[alen] = '\0';
		if (inet_pton(AF_INET, buf, addr) != 1)
			return pkt_err(
				pp,
				"%s " TOK_FMT
				" is not an address: expected ADDR, ADDR:PORT, or [IPV6]:PORT for IPv6 with a port",
				role, TOK_ARGS(t));
		*family = 4;
	}
	if (colon) {
		int err = parse_num(colon + 1, (size_t)(s + t->len - colon - 1), 65535, &v);

		if (err)
			return pkt_err(pp, "%s " TOK_FMT ": expected a port 0-65535 after ':'",
				       role, TOK_ARGS(t));
		*has_port = true;
		*port = (uint16_t)v;
	}
	return 0;
}

static int parse_flags(struct pkt_parser *pp, const struct pkt_tok *kw, const struct pkt_tok *t,
		       uint8_t *flags)
{
	static const char letters[] = "SAFRPU";
	static const uint8_t bits[] = { PKT_TCP_SYN, PKT_TCP_ACK, PKT_TCP_FIN,
					PKT_TCP_RST, PKT_TCP_PSH, PKT_TCP_URG };
	int i;

	if (!t)
		return expect_err(pp, t, kw, "TCP flags (letters of SAFRPU, or 'none')");
	if (tok_is(t, "none")) {
		*flags = 0;
		return 0;
	}
	*flags = 0;
	for (i = 0; i < t->len; i++) {
		char c = t->s[i];
		const char *l;

		if (c >= 'a' && c <= 'z') /* either case */
			c = (char)(c - 'a' + 'A');
		l = c ? strchr(letters, c) : NULL;
		if (!l)
			return pkt_err(
				pp,
				"flags " TOK_FMT
				": '%c' is not a TCP flag; expected letters of SAFRPU (S SYN, A ACK, F FIN, R RST, P PSH, U URG)",
				TOK_ARGS(t), t->s[i]);
		*flags |= bits[l - letters];
	}
	return 0;
}

static int parse_icmp(struct pkt_parser *pp, const struct pkt_tok *kw, const struct pkt_tok *t,
		      int *type, int *code)
{
	unsigned long ty = 0, co = 0;
	const char *slash;
	size_t tlen;

	if (!t)
		return expect_err(pp, t, kw, "TYPE or TYPE/CODE (0-255)");
	slash = memchr(t->s, '/', (size_t)t->len);
	tlen = slash ? (size_t)(slash - t->s) : (size_t)t->len;
	if (parse_num(t->s, tlen, 255, &ty) ||
	    (slash && parse_num(slash + 1, (size_t)t->len - tlen - 1, 255, &co)))
		return pkt_err(pp, "icmp " TOK_FMT ": expected TYPE or TYPE/CODE, each 0-255",
			       TOK_ARGS(t));
	*type = (int)ty;
	*code = (int)co;
	return 0;
}

int packet_parse(int argc, char **argv, struct packet *p, char *err, size_t errlen)
{
	struct pkt_parser pp = { .err = err, .errlen = errlen };
	const struct pkt_tok *t, *src, *dst;
	bool sport_set, dport_set, seen_flags = false, seen_icmp = false;
	int ret, dfam;
	uint8_t daddr[16] = { 0 };

	if (err && errlen)
		err[0] = '\0';
	memset(p, 0, sizeof(*p));
	ret = tokenize(&pp, argc, argv);
	if (ret)
		return ret;

	ret = parse_proto(&pp, next_tok(&pp), &p->proto);
	if (ret)
		return ret;
	src = next_tok(&pp);
	ret = parse_endpoint(&pp, src, "source", &p->family, p->src, &sport_set, &p->sport);
	if (ret)
		return ret;
	t = next_tok(&pp);
	if (!tok_is(t, ">") && !tok_is(t, "to"))
		return expect_err(&pp, t, src, "'>' or 'to'");
	dst = next_tok(&pp);
	ret = parse_endpoint(&pp, dst, "destination", &dfam, daddr, &dport_set, &p->dport);
	if (ret)
		return ret;
	if (dfam != p->family)
		return pkt_err(&pp,
			       "source " TOK_FMT " is IPv%d but destination " TOK_FMT
			       " is IPv%d: a packet has one family",
			       TOK_ARGS(src), p->family, TOK_ARGS(dst), dfam);
	memcpy(p->dst, daddr, sizeof(p->dst));

	if (p->proto == 6)
		p->tcp_flags = PKT_TCP_SYN;
	if (p->proto == 1)
		p->icmp_type = 8;
	else if (p->proto == 58)
		p->icmp_type = 128;

	while ((t = next_tok(&pp))) {
		if (tok_is(t, "flags") && !seen_flags) {
			if (p->proto != 6)
				return pkt_err(&pp, "'flags' is only for tcp packets");
			ret = parse_flags(&pp, t, next_tok(&pp), &p->tcp_flags);
			seen_flags = true;
		} else if (tok_is(t, "icmp") && !seen_icmp) {
			if (p->proto != 1 && p->proto != 58)
				return pkt_err(&pp,
					       "'icmp T/C' is only for icmp or icmpv6 packets");
			ret = parse_icmp(&pp, t, next_tok(&pp), &p->icmp_type, &p->icmp_code);
			seen_icmp = true;
		} else if (tok_is(t, "frag") && !p->frag) {
			p->frag = true;
		} else if (tok_is(t, "flags") || tok_is(t, "icmp") || tok_is(t, "frag")) {
			return pkt_err(&pp, TOK_FMT " given twice", TOK_ARGS(t));
		} else {
			return pkt_err(&pp,
				       "unexpected " TOK_FMT
				       ": expected flags FLAGS, icmp T/C or frag",
				       TOK_ARGS(t));
		}
		if (ret)
			return ret;
	}

	if ((sport_set || dport_set) && p->proto != 6 && p->proto != 17)
		return pkt_err(&pp, "ports are only for tcp or udp packets; leave out ':PORT'");
	/*
	 * A non-first fragment has no L4 header: whatever ports, flags or
	 * ICMP type were written would be ignored, so refuse them rather than
	 * let a trace look like it judged them.
	 */
	if (p->frag) {
		if (sport_set || dport_set || seen_flags || seen_icmp)
			return pkt_err(
				&pp,
				"'frag' is a non-first fragment, which carries no ports, flags or ICMP type; leave them out");
		p->tcp_flags = 0;
		p->icmp_type = 0;
		p->icmp_code = 0;
	}
	return 0;
}

int packet_format(const struct packet *p, char *buf, size_t len)
{
	static const char letters[] = "SAFRPU";
	static const uint8_t bits[] = { PKT_TCP_SYN, PKT_TCP_ACK, PKT_TCP_FIN,
					PKT_TCP_RST, PKT_TCP_PSH, PKT_TCP_URG };
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], flags[8], proto[8], ep[2][80];
	const char *txt[2] = { src, dst };
	uint16_t port[2] = { p->sport, p->dport };
	bool ports = (p->proto == 6 || p->proto == 17) && !p->frag;
	int af, n, i, k = 0;

	if (p->family == 4)
		af = AF_INET;
	else if (p->family == 6)
		af = AF_INET6;
	else
		return -EINVAL;
	if (p->proto < 0 || p->proto > 255)
		return -EINVAL;
	if (!inet_ntop(af, p->src, src, sizeof(src)) || !inet_ntop(af, p->dst, dst, sizeof(dst)))
		return -EINVAL;

	switch (p->proto) {
	case 6:
		snprintf(proto, sizeof(proto), "tcp");
		break;
	case 17:
		snprintf(proto, sizeof(proto), "udp");
		break;
	case 1:
		snprintf(proto, sizeof(proto), "icmp");
		break;
	case 58:
		snprintf(proto, sizeof(proto), "icmpv6");
		break;
	default:
		snprintf(proto, sizeof(proto), "%d", p->proto);
	}

	for (i = 0; i < 2; i++) {
		if (!ports)
			snprintf(ep[i], sizeof(ep[i]), "%s", txt[i]);
		else if (p->family == 6)
			snprintf(ep[i], sizeof(ep[i]), "[%s]:%u", txt[i], port[i]);
		else
			snprintf(ep[i], sizeof(ep[i]), "%s:%u", txt[i], port[i]);
	}
	n = snprintf(buf, len, "%s %s > %s", proto, ep[0], ep[1]);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;

	if (p->frag) {
		k = snprintf(buf + n, len - (size_t)n, " frag");
	} else if (p->proto == 6) {
		for (i = 0; i < 6; i++)
			if (p->tcp_flags & bits[i])
				flags[k++] = letters[i];
		flags[k] = '\0';
		k = snprintf(buf + n, len - (size_t)n, " flags %s", k ? flags : "none");
	} else if (p->proto == 1 || p->proto == 58) {
		k = snprintf(buf + n, len - (size_t)n, " icmp %d/%d", p->icmp_type, p->icmp_code);
	}
	if (k < 0 || (size_t)k >= len - (size_t)n)
		return -ENOSPC;
	return 0;
}
