// SPDX-License-Identifier: GPL-2.0
/*
 * rules_format.c - rule structs back to the rules language.
 *
 * Everything printed here is text the parser accepts, so a rule shown by
 * `moat stats`, `moat lint` or `moat import` can be pasted into a rules
 * file as it is. Pure: no BPF, no I/O.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rules.h"

const char *rule_stage_name(enum rule_stage s)
{
	switch (s) {
	case RULE_STAGE_NACL:
		return "nacl";
	case RULE_STAGE_SG:
		return "sg";
	}
	return "?";
}

const char *rule_dir_name(enum rule_dir d)
{
	switch (d) {
	case RULE_DIR_IN:
		return "in";
	case RULE_DIR_OUT:
		return "out";
	}
	return "?";
}

const char *rule_action_name(enum rule_action a)
{
	switch (a) {
	case RULE_ALLOW:
		return "allow";
	case RULE_DENY:
		return "deny";
	}
	return "?";
}

int rule_proto_name(int proto, char *buf, size_t len)
{
	const char *name = NULL;
	int n;

	switch (proto) {
	case RULE_PROTO_ALL:
		name = "all";
		break;
	case 1:
		name = "icmp";
		break;
	case 6:
		name = "tcp";
		break;
	case 17:
		name = "udp";
		break;
	case 58:
		name = "icmpv6";
		break;
	default:
		if (proto < 0 || proto > 255)
			return -EINVAL;
	}
	if (name)
		n = snprintf(buf, len, "%s", name);
	else
		n = snprintf(buf, len, "%d", proto);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int rule_prefix_format(const struct rule_prefix *p, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];
	int af, n;

	if (p->family == 4 && p->len <= 32)
		af = AF_INET;
	else if (p->family == 6 && p->len <= 128)
		af = AF_INET6;
	else
		return -EINVAL;
	if (!inet_ntop(af, p->addr, addr, sizeof(addr)))
		return -errno;
	n = snprintf(buf, len, "%s/%u", addr, p->len);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

bool rule_prefix_contains(const struct rule_prefix *p, const uint8_t *addr)
{
	unsigned int bytes = p->len / 8, bits = p->len % 8;
	unsigned int max = p->family == 4 ? 32 : 128;

	if ((p->family != 4 && p->family != 6) || p->len > max)
		return false;
	if (memcmp(p->addr, addr, bytes))
		return false;
	if (bits) {
		uint8_t mask = (uint8_t)(0xff00 >> bits);

		if ((p->addr[bytes] ^ addr[bytes]) & mask)
			return false;
	}
	return true;
}

/* A cursor over the caller's buffer; one overflow makes the whole call fail. */
struct fmt_buf {
	char *p;
	size_t len, off;
	bool overflow;
};

__attribute__((format(printf, 2, 3))) static void fmt_add(struct fmt_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->off, b->len - b->off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->len - b->off) {
		b->overflow = true;
		return;
	}
	b->off += n;
}

static int fmt_addr(struct fmt_buf *b, const char *key, const struct rule_addr *a,
		    const struct ruleset *rs)
{
	char text[INET6_ADDRSTRLEN + 8];
	int err;

	switch (a->kind) {
	case RULE_ADDR_ANY:
		return 0;
	case RULE_ADDR_PREFIX:
		err = rule_prefix_format(&a->prefix, text, sizeof(text));
		if (err)
			return err;
		fmt_add(b, " %s %s", key, text);
		return 0;
	case RULE_ADDR_SET:
		if (!rs || a->set < 0 || (size_t)a->set >= rs->nsets)
			return -EINVAL;
		fmt_add(b, " %s @%s", key, rs->sets[a->set].name);
		return 0;
	}
	return -EINVAL;
}

static void fmt_range(struct fmt_buf *b, const char *key, const struct rule_range *r)
{
	if (!r->set)
		return;
	if (r->lo == r->hi)
		fmt_add(b, " %s %u", key, r->lo);
	else
		fmt_add(b, " %s %u-%u", key, r->lo, r->hi);
}

int rule_format(const struct rule *r, const struct ruleset *rs, char *buf, size_t len)
{
	struct fmt_buf b = { .p = buf, .len = len };
	char proto[8];
	int err;

	if (!len)
		return -ENOSPC;
	buf[0] = '\0';
	err = rule_proto_name(r->proto, proto, sizeof(proto));
	if (err)
		return err;

	/* SG rules carry no number in the language: theirs is their order. */
	if (r->stage == RULE_STAGE_NACL)
		fmt_add(&b, "nacl %s %d %s %s", rule_dir_name(r->dir), r->number,
			rule_action_name(r->action), proto);
	else
		fmt_add(&b, "sg %s allow %s", rule_dir_name(r->dir), proto);

	err = fmt_addr(&b, "src", &r->src, rs);
	if (!err)
		err = fmt_addr(&b, "dst", &r->dst, rs);
	if (err)
		return err;
	fmt_range(&b, "sport", &r->sport);
	fmt_range(&b, "dport", &r->dport);
	if (r->has_icmp) {
		if (r->icmp_code < 0)
			fmt_add(&b, " icmp %d", r->icmp_type);
		else
			fmt_add(&b, " icmp %d/%d", r->icmp_type, r->icmp_code);
	}
	if (r->established)
		fmt_add(&b, " established");
	return b.overflow ? -ENOSPC : 0;
}
