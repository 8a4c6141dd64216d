// SPDX-License-Identifier: GPL-2.0
/*
 * import_aws.c - AWS CLI JSON to moat rules text (`moat import aws`).
 *
 * Documents are parsed with json-c and kept whole; the rules are made when
 * the caller asks for them, so only the selected network ACL and security
 * groups have to be expressible. The AWS semantics kept here come from the
 * EC2 API reference (CreateNetworkAclEntry, IpPermission, SecurityGroupRule):
 *
 *  - NACL PortRange is the destination port and applies to tcp (6) and udp
 *    (17) only; IcmpTypeCode applies to icmp (1) and, with an IPv6 CIDR, to
 *    icmpv6 (58). For -1 and any other protocol AWS allows or denies "on all
 *    ports, regardless of any ports or ICMP types or codes that you
 *    specify", so those fields are dropped (and the line's comment says so).
 *  - The `*` entries (RuleNumber 32767, and 32768 for IPv6) are AWS's final
 *    deny; moat's implicit deny is the same thing, so they are skipped.
 *  - SG FromPort/ToPort are a port range for tcp/udp and ICMP type/code for
 *    icmp/icmpv6, -1 meaning any; other protocols ignore them.
 *  - A referenced security group means the private addresses of the network
 *    interfaces in that group; a prefix list means its entries. Both become
 *    named sets; an empty one matches nothing (and is warned about).
 *
 * Nothing that cannot be expressed is dropped silently: it is an error that
 * names the file and the JSON path.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "import_aws.h"
#include "rules.h"

/* The numbers of AWS's default `*` entries (IPv4, IPv6): the final deny. */
#define AWS_NACL_STAR_V4 32767
#define AWS_NACL_STAR_V6 32768

#define AWS_PATH_MAX 256
#define AWS_ID_MAX 64
/* Long descriptions are cut in comments; AWS allows 255 characters. */
#define AWS_COMMENT_MAX 255

struct aws_doc {
	struct json_object *root;
	char *name;
};

/* One network ACL, security group, or security-group rule of a document. */
struct aws_item {
	struct json_object *obj; /* owned by its document */
	const char *file;	 /* the document's name */
	const char *id;		 /* NetworkAclId or GroupId, owned by obj */
	char path[48];		 /* e.g. "NetworkAcls[2]" */
};

struct aws_items {
	struct aws_item *v;
	size_t n, cap;
};

/* A referenced security group or prefix list, as a named set. */
struct aws_set {
	char *name; /* sg_0abc / pl_0abc: the set's name in the rules */
	char *id;   /* sg-0abc / pl-0abc: the AWS id */
	struct rule_prefix *v;
	size_t n, cap;
	char *from; /* the files its members came from, for the comment */
	bool used;  /* referenced by a rule of this import */
};

struct aws_import {
	struct aws_doc *docs;
	size_t ndocs, docs_cap;
	struct aws_items nacls, sgs, sg_rules;
	struct aws_set *sets;
	size_t nsets, sets_cap;
};

/* Output lines; NACL lines are sorted by direction and number. */
struct aws_line {
	int dir;     /* NACL: RULE_DIR_*; otherwise -1 */
	long number; /* NACL: RuleNumber */
	char *text;
	char *path; /* NACL: the entry's JSON path, for duplicate numbers */
};

struct aws_lines {
	struct aws_line *v;
	size_t n, cap;
};

/* The state of one conversion: where messages go and what went wrong. */
struct ctx {
	struct aws_import *imp;
	struct diags *d;
	const char *file; /* the document being read, for messages */
	size_t errors;
	bool oom;
};

/* ---- small helpers ---------------------------------------------------- */

/* Make room for one more element; returns the (maybe moved) array or NULL. */
static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
	size_t ncap;

	if (n < *cap)
		return v;
	ncap = *cap ? *cap * 2 : 8;
	v = realloc(v, ncap * size);
	if (v)
		*cap = ncap;
	return v;
}

struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3))) static void sbuf_addf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *s = realloc(b->s, cap);

		if (!s) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += n;
}

static const char *sbuf_str(const struct sbuf *b)
{
	return b->s ? b->s : "";
}

static void sbuf_free(struct sbuf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

/*
 * Control characters (newlines above all) become spaces: text from the JSON
 * (ids, names, descriptions) and file names end up in comments, and must
 * never start a line of their own, which the parser would read as a rule.
 */
static void text_one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* fputs() of text_one_line(@s). */
static void fput_text(FILE *out, const char *s)
{
	for (; *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s, out);
}

/*
 * Append AWS free text (a description, a name) so that it stays on one
 * comment line: control characters become spaces, and it is cut (on a
 * UTF-8 character boundary) after AWS_COMMENT_MAX bytes.
 */
static void sbuf_add_text(struct sbuf *b, const char *s)
{
	size_t n = strlen(s);
	char *t;

	if (n > AWS_COMMENT_MAX) {
		n = AWS_COMMENT_MAX;
		while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	t = strndup(s, n);
	if (!t) {
		b->oom = true;
		return;
	}
	text_one_line(t);
	sbuf_addf(b, "%s", t);
	free(t);
}

static void lines_free(struct aws_lines *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].text);
		free(l->v[i].path);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Add a line; takes @b's text. */
static void lines_add(struct ctx *c, struct aws_lines *l, int dir, long number, const char *path,
		      struct sbuf *b)
{
	struct aws_line *v;

	if (b->oom || !b->s) {
		c->oom = true;
		sbuf_free(b);
		return;
	}
	v = grow(l->v, &l->cap, l->n, sizeof(*l->v));
	if (!v) {
		c->oom = true;
		sbuf_free(b);
		return;
	}
	l->v = v;
	text_one_line(b->s);
	v[l->n].dir = dir;
	v[l->n].number = number;
	v[l->n].text = b->s;
	v[l->n].path = path ? strdup(path) : NULL;
	if (path && !v[l->n].path)
		c->oom = true;
	l->n++;
	memset(b, 0, sizeof(*b));
}

__attribute__((format(printf, 3, 4))) static void lines_addf(struct ctx *c, struct aws_lines *l,
							     const char *fmt, ...)
{
	struct sbuf b = { 0 };
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		c->oom = true;
		return;
	}
	b.s = s;
	b.len = b.cap = n;
	lines_add(c, l, -1, 0, NULL, &b);
}

__attribute__((format(printf, 3, 4))) static void ctx_error(struct ctx *c, const char *path,
							    const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (path && *path)
		diags_add(c->d, DIAG_ERROR, c->file, 0, 0, "%s: %s", path, msg);
	else
		diags_add(c->d, DIAG_ERROR, c->file, 0, 0, "%s", msg);
	c->errors++;
}

/* A path too long for its buffer ends in "..." (AWS's are far shorter). */
static const char *jpath_end(char *buf, int n)
{
	if (n < 0 || n >= AWS_PATH_MAX)
		strcpy(buf + AWS_PATH_MAX - 4, "...");
	return buf;
}

/* "path.key" (or "key" at the top) into @buf of AWS_PATH_MAX bytes. */
static const char *jpath(char *buf, const char *path, const char *key)
{
	return jpath_end(buf, snprintf(buf, AWS_PATH_MAX, "%s%s%s", path, *path ? "." : "", key));
}

/* "path.key[i]" into @buf of AWS_PATH_MAX bytes. */
static const char *jpath_idx(char *buf, const char *path, const char *key, size_t i)
{
	return jpath_end(
		buf, snprintf(buf, AWS_PATH_MAX, "%s%s%s[%zu]", path, *path ? "." : "", key, i));
}

/* ---- typed access to JSON members, errors naming the path ------------- */

/*
 * Look @key up in @obj. Returns 1 when present with @type, 0 when absent
 * (JSON null counts as absent; a @required member then is an error), -1
 * after reporting a member of the wrong type.
 */
static int get_member(struct ctx *c, struct json_object *obj, const char *path, const char *key,
		      bool required, enum json_type type, const char *what,
		      struct json_object **out)
{
	struct json_object *v = NULL;
	char p[AWS_PATH_MAX];

	if (!json_object_object_get_ex(obj, key, &v) || !v) {
		if (!required)
			return 0;
		ctx_error(c, jpath(p, path, key), "missing (expected %s)", what);
		return -1;
	}
	if (!json_object_is_type(v, type)) {
		ctx_error(c, jpath(p, path, key), "expected %s", what);
		return -1;
	}
	*out = v;
	return 1;
}

static int get_str(struct ctx *c, struct json_object *obj, const char *path, const char *key,
		   bool required, const char **out)
{
	struct json_object *v;
	int r = get_member(c, obj, path, key, required, json_type_string, "a string", &v);

	if (r > 0)
		*out = json_object_get_string(v);
	return r;
}

static int get_int(struct ctx *c, struct json_object *obj, const char *path, const char *key,
		   bool required, long *out)
{
	struct json_object *v;
	int r = get_member(c, obj, path, key, required, json_type_int, "an integer", &v);
	int64_t x;

	if (r <= 0)
		return r;
	/* Far outside any AWS range: clamp so a message can print it. */
	x = json_object_get_int64(v);
	if (x > 1000000000)
		x = 1000000000;
	if (x < -1000000000)
		x = -1000000000;
	*out = (long)x;
	return 1;
}

static int get_bool(struct ctx *c, struct json_object *obj, const char *path, const char *key,
		    bool required, bool *out)
{
	struct json_object *v;
	int r = get_member(c, obj, path, key, required, json_type_boolean, "true or false", &v);

	if (r > 0)
		*out = json_object_get_boolean(v);
	return r;
}

static int get_array(struct ctx *c, struct json_object *obj, const char *path, const char *key,
		     bool required, struct json_object **out)
{
	return get_member(c, obj, path, key, required, json_type_array, "an array", out);
}

static int get_object(struct ctx *c, struct json_object *obj, const char *path, const char *key,
		      bool required, struct json_object **out)
{
	return get_member(c, obj, path, key, required, json_type_object, "an object", out);
}

/* A string member for comments only: never an error. */
static const char *info_str(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Element @i of an array, which must be an object. */
static struct json_object *array_object(struct ctx *c, struct json_object *arr, size_t i,
					const char *path)
{
	struct json_object *v = json_object_array_get_idx(arr, i);

	if (!json_object_is_type(v, json_type_object)) {
		ctx_error(c, path, "expected an object");
		return NULL;
	}
	return v;
}

/* ---- protocols, prefixes, ids ----------------------------------------- */

/* AWS protocol text: "-1", a name (tcp, udp, icmp, icmpv6) or a number. */
static int proto_parse(const char *s, int *proto)
{
	static const struct {
		const char *name;
		int proto;
	} names[] = {
		{ "-1", RULE_PROTO_ALL }, { "tcp", 6 }, { "udp", 17 }, { "icmp", 1 },
		{ "icmpv6", 58 },
	};
	size_t i, n = strlen(s);
	int v = 0;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i].name)) {
			*proto = names[i].proto;
			return 0;
		}
	}
	if (n == 0 || n > 3)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v > 255)
		return -EINVAL;
	*proto = v;
	return 0;
}

static int get_proto(struct ctx *c, struct json_object *obj, const char *path, const char *key,
		     int *proto)
{
	struct json_object *v = NULL;
	char p[AWS_PATH_MAX];

	jpath(p, path, key);
	if (!json_object_object_get_ex(obj, key, &v) || !v) {
		ctx_error(c, p, "missing (expected a protocol)");
		return -1;
	}
	if (json_object_is_type(v, json_type_int)) {
		int64_t x = json_object_get_int64(v);

		if (x == -1 || (x >= 0 && x <= 255)) {
			*proto = x == -1 ? RULE_PROTO_ALL : (int)x;
			return 1;
		}
	} else if (json_object_is_type(v, json_type_string)) {
		if (!proto_parse(json_object_get_string(v), proto))
			return 1;
	}
	ctx_error(
		c, p,
		"%s is not a protocol (expected \"-1\" for all, tcp, udp, icmp, icmpv6 or a number 0-255)",
		json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	return -1;
}

static const char *proto_text(int proto, char *buf, size_t len)
{
	if (rule_proto_name(proto, buf, len))
		snprintf(buf, len, "?");
	return buf;
}

/*
 * Parse @s as a prefix of @family (4, 6, or 0 for either). A bare address
 * is a host prefix when @bare_ok. A prefix with host bits set is refused,
 * as moat refuses it: AWS stores its CIDRs without them. On error the
 * reason is in @why.
 */
static int cidr_parse(const char *s, int family, bool bare_ok, struct rule_prefix *p, char *why,
		      size_t whylen)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	char addr[INET6_ADDRSTRLEN + 1], net[INET6_ADDRSTRLEN + 8];
	struct rule_prefix m;
	int fam, max, len, i;

	memset(p, 0, sizeof(*p));
	if (alen == 0 || alen >= sizeof(addr)) {
		snprintf(why, whylen, "\"%s\" is not an address prefix", s);
		return -EINVAL;
	}
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	fam = strchr(addr, ':') ? 6 : 4;
	if (inet_pton(fam == 4 ? AF_INET : AF_INET6, addr, p->addr) != 1) {
		snprintf(why, whylen, "\"%s\" is not an IPv%d address prefix", s, fam);
		return -EINVAL;
	}
	if (family && fam != family) {
		snprintf(why, whylen, "\"%s\" is IPv%d, expected an IPv%d prefix", s, fam, family);
		return -EINVAL;
	}
	max = fam == 4 ? 32 : 128;
	if (!slash) {
		if (!bare_ok) {
			snprintf(why, whylen, "\"%s\" has no prefix length", s);
			return -EINVAL;
		}
		len = max;
	} else {
		const char *d = slash + 1;

		len = 0;
		if (!*d || strlen(d) > 3)
			len = -1;
		for (; len >= 0 && *d; d++) {
			if (!isdigit((unsigned char)*d))
				len = -1;
			else
				len = len * 10 + (*d - '0');
		}
		if (len < 0 || len > max) {
			snprintf(why, whylen, "\"%s\": the prefix length must be 0-%d", s, max);
			return -EINVAL;
		}
	}
	p->family = (uint8_t)fam;
	p->len = (uint8_t)len;

	m = *p;
	for (i = len; i < max; i++)
		m.addr[i / 8] &= (uint8_t) ~(0x80 >> (i % 8));
	if (memcmp(m.addr, p->addr, sizeof(m.addr))) {
		rule_prefix_format(&m, net, sizeof(net));
		snprintf(why, whylen, "\"%s\" has host bits set (the network is %s)", s, net);
		return -EINVAL;
	}
	return 0;
}

/* A CIDR member: parsed and written back in moat's form into @buf. */
static int get_cidr(struct ctx *c, struct json_object *obj, const char *path, const char *key,
		    int family, char *buf, size_t len, struct rule_prefix *out)
{
	char p[AWS_PATH_MAX], why[160];
	const char *s;
	int r = get_str(c, obj, path, key, true, &s);

	if (r <= 0)
		return -1;
	if (cidr_parse(s, family, false, out, why, sizeof(why))) {
		ctx_error(c, jpath(p, path, key), "%s", why);
		return -1;
	}
	rule_prefix_format(out, buf, len);
	return 0;
}

/*
 * A security group (sg-…) or prefix list (pl-…) id, and the name of its set
 * in the rules language: "sg_" or "pl_" and the id's lower-case rest.
 */
static int set_name_of(const char *id, const char *kind, char *name, size_t len)
{
	size_t i, n = strlen(id);

	if (n < 4 || n >= AWS_ID_MAX || strncmp(id, kind, 2) || id[2] != '-')
		return -EINVAL;
	for (i = 3; i < n; i++)
		if (!isalnum((unsigned char)id[i]))
			return -EINVAL;
	snprintf(name, len, "%.2s_%s", kind, id + 3);
	for (i = 3; name[i]; i++)
		name[i] = (char)tolower((unsigned char)name[i]);
	return 0;
}

static struct aws_set *set_find(struct aws_import *imp, const char *name)
{
	size_t i;

	for (i = 0; i < imp->nsets; i++)
		if (!strcmp(imp->sets[i].name, name))
			return &imp->sets[i];
	return NULL;
}

/* The set for @id (kind "sg" or "pl"), made empty when new. NULL if no memory. */
static struct aws_set *set_get(struct ctx *c, const char *id, const char *name)
{
	struct aws_import *imp = c->imp;
	struct aws_set *s = set_find(imp, name), *v;

	if (s)
		return s;
	v = grow(imp->sets, &imp->sets_cap, imp->nsets, sizeof(*imp->sets));
	if (!v)
		goto oom;
	imp->sets = v;
	s = &v[imp->nsets];
	memset(s, 0, sizeof(*s));
	s->name = strdup(name);
	s->id = strdup(id);
	if (!s->name || !s->id) {
		free(s->name);
		free(s->id);
		goto oom;
	}
	imp->nsets++;
	return s;
oom:
	c->oom = true;
	return NULL;
}

static void set_add(struct ctx *c, struct aws_set *s, const struct rule_prefix *p, const char *from)
{
	struct rule_prefix *v;
	size_t i;

	for (i = 0; i < s->n; i++)
		if (!memcmp(&s->v[i], p, sizeof(*p)))
			goto note_from;
	v = grow(s->v, &s->cap, s->n, sizeof(*s->v));
	if (!v) {
		c->oom = true;
		return;
	}
	s->v = v;
	v[s->n++] = *p;
note_from:
	/* "a.json, b.txt": each source once. */
	if (!s->from) {
		s->from = strdup(from);
		if (!s->from)
			c->oom = true;
	} else {
		const char *f = s->from;
		size_t fl = strlen(from);
		char *n;

		while (f) {
			if (!strncmp(f, from, fl) && (f[fl] == ',' || !f[fl]))
				return;
			f = strchr(f, ',');
			if (f)
				f += 2;
		}
		if (asprintf(&n, "%s, %s", s->from, from) < 0) {
			c->oom = true;
			return;
		}
		free(s->from);
		s->from = n;
	}
}

/* ---- documents -------------------------------------------------------- */

static int items_add(struct ctx *c, struct aws_items *items, struct json_object *obj,
		     const char *file, const char *id, const char *key, size_t i)
{
	struct aws_item *v = grow(items->v, &items->cap, items->n, sizeof(*items->v));

	if (!v) {
		c->oom = true;
		return -ENOMEM;
	}
	items->v = v;
	v[items->n].obj = obj;
	v[items->n].file = file;
	v[items->n].id = id;
	snprintf(v[items->n].path, sizeof(v[items->n].path), "%s[%zu]", key, i);
	items->n++;
	return 0;
}

/*
 * Keep the ACLs, groups or rules of one top-level array, with the id each
 * is known by (@id_key; must be a string).
 */
static void doc_items(struct ctx *c, struct json_object *arr, const char *key, const char *id_key,
		      struct aws_items *items)
{
	size_t i, n = json_object_array_length(arr);
	char p[AWS_PATH_MAX];

	for (i = 0; i < n; i++) {
		struct json_object *o = array_object(c, arr, i, jpath_idx(p, "", key, i));
		const char *id;

		if (!o || get_str(c, o, p, id_key, true, &id) <= 0)
			continue;
		if (items_add(c, items, o, c->file, id, key, i))
			return;
	}
}

/* Addresses of one network interface: members of each of its groups. */
static void doc_eni(struct ctx *c, struct json_object *eni, const char *path)
{
	static const struct {
		const char *array, *key;
	} lists[] = {
		{ "PrivateIpAddresses", "PrivateIpAddress" },
		{ "Ipv6Addresses", "Ipv6Address" },
	};
	struct rule_prefix addrs[256]; /* AWS allows 50 + 50 */
	size_t naddr = 0, i, j, k, n;
	struct json_object *groups, *arr, *o;
	char p[AWS_PATH_MAX], q[AWS_PATH_MAX], why[160];
	const char *s, *eni_id;

	if (get_array(c, eni, path, "Groups", false, &groups) <= 0)
		return;
	eni_id = info_str(eni, "NetworkInterfaceId");

	/* The primary address is in PrivateIpAddresses too; duplicates are merged. */
	if (get_str(c, eni, path, "PrivateIpAddress", false, &s) > 0) {
		if (cidr_parse(s, 4, true, &addrs[naddr], why, sizeof(why)))
			ctx_error(c, jpath(p, path, "PrivateIpAddress"), "%s", why);
		else
			naddr++;
	}
	for (k = 0; k < sizeof(lists) / sizeof(lists[0]); k++) {
		if (get_array(c, eni, path, lists[k].array, false, &arr) <= 0)
			continue;
		n = json_object_array_length(arr);
		for (i = 0; i < n; i++) {
			o = array_object(c, arr, i, jpath_idx(p, path, lists[k].array, i));
			if (!o || get_str(c, o, p, lists[k].key, true, &s) <= 0)
				continue;
			if (naddr == sizeof(addrs) / sizeof(addrs[0])) {
				ctx_error(c, p, "more than %zu addresses on one interface",
					  sizeof(addrs) / sizeof(addrs[0]));
				return;
			}
			if (cidr_parse(s, k ? 6 : 4, true, &addrs[naddr], why, sizeof(why)))
				ctx_error(c, jpath(q, p, lists[k].key), "%s", why);
			else
				naddr++;
		}
	}
	if (get_array(c, eni, path, "Ipv4Prefixes", false, &arr) > 0 &&
	    json_object_array_length(arr))
		diags_add(
			c->d, DIAG_WARNING, c->file, 0, 0,
			"%s: the delegated prefixes of %s are not added to its groups' sets (add them with --members if they should be)",
			jpath(p, path, "Ipv4Prefixes"), eni_id ? eni_id : "the interface");
	if (get_array(c, eni, path, "Ipv6Prefixes", false, &arr) > 0 &&
	    json_object_array_length(arr))
		diags_add(
			c->d, DIAG_WARNING, c->file, 0, 0,
			"%s: the delegated prefixes of %s are not added to its groups' sets (add them with --members if they should be)",
			jpath(p, path, "Ipv6Prefixes"), eni_id ? eni_id : "the interface");

	n = json_object_array_length(groups);
	for (i = 0; i < n; i++) {
		char name[AWS_ID_MAX + 4];
		struct aws_set *set;

		o = array_object(c, groups, i, jpath_idx(p, path, "Groups", i));
		if (!o || get_str(c, o, p, "GroupId", true, &s) <= 0)
			continue;
		if (set_name_of(s, "sg", name, sizeof(name))) {
			ctx_error(c, jpath(q, p, "GroupId"), "\"%s\" is not a security group id",
				  s);
			continue;
		}
		set = set_get(c, s, name);
		for (j = 0; set && j < naddr; j++)
			set_add(c, set, &addrs[j], c->file);
	}
}

/* The prefix-list id in a file name, e.g. "lists/pl-0123abcd.json". */
static int pl_id_from_name(const char *name, char *id, size_t len)
{
	const char *base = strrchr(name, '/'), *s;
	size_t n;

	base = base ? base + 1 : name;
	for (s = strstr(base, "pl-"); s; s = strstr(s + 1, "pl-")) {
		if (s != base && isalnum((unsigned char)s[-1]))
			continue;
		for (n = 3; isalnum((unsigned char)s[n]); n++)
			;
		if (n > 3 && n < len) {
			memcpy(id, s, n);
			id[n] = '\0';
			return 0;
		}
	}
	return -ENOENT;
}

static void doc_prefix_list(struct ctx *c, struct json_object *arr, const char *pl_id)
{
	char id[AWS_ID_MAX], name[AWS_ID_MAX + 4], p[AWS_PATH_MAX], buf[64];
	size_t i, n = json_object_array_length(arr);
	struct aws_set *set;
	struct rule_prefix pfx;

	if (pl_id) {
		snprintf(id, sizeof(id), "%s", pl_id);
	} else if (pl_id_from_name(c->file, id, sizeof(id))) {
		ctx_error(
			c, NULL,
			"prefix-list entries without their prefix-list id: name the file after it (pl-0123abcd.json) or use --prefix-list ID=FILE");
		return;
	}
	if (set_name_of(id, "pl", name, sizeof(name))) {
		ctx_error(c, NULL, "\"%s\" is not a prefix-list id (pl-…)", id);
		return;
	}
	set = set_get(c, id, name);
	if (!set)
		return;
	for (i = 0; i < n; i++) {
		struct json_object *o = array_object(c, arr, i, jpath_idx(p, "", "Entries", i));

		if (o && !get_cidr(c, o, p, "Cidr", 0, buf, sizeof(buf), &pfx))
			set_add(c, set, &pfx, c->file);
	}
	/* A list with no entries is still known: its set is empty on purpose. */
	if (!n && !set->from) {
		set->from = strdup(c->file);
		if (!set->from)
			c->oom = true;
	}
}

/* Line and column (1-based, in bytes) of byte @off of @text. */
static void text_line_col(const char *text, size_t off, int *line, int *col)
{
	size_t i, start = 0;

	*line = 1;
	for (i = 0; i < off; i++) {
		if (text[i] == '\n') {
			(*line)++;
			start = i + 1;
		}
	}
	*col = (int)(off - start) + 1;
}

static struct json_object *json_parse(struct ctx *c, const char *text, size_t len)
{
	struct json_tokener *tok;
	struct json_object *root;
	enum json_tokener_error jerr;
	size_t end;
	char *buf;
	int line, col;

	if (len >= INT32_MAX) {
		ctx_error(c, NULL, "too large for JSON");
		return NULL;
	}
	/* The tokener must see the end of input: pass a terminating NUL. */
	buf = malloc(len + 1);
	tok = json_tokener_new();
	if (!buf || !tok) {
		free(buf);
		if (tok)
			json_tokener_free(tok);
		c->oom = true;
		return NULL;
	}
	memcpy(buf, text, len);
	buf[len] = '\0';
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, buf, (int)len + 1);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (end > len)
		end = len;
	if (jerr != json_tokener_success) {
		text_line_col(buf, end, &line, &col);
		diags_add(c->d, DIAG_ERROR, c->file, line, col, "malformed JSON: %s",
			  json_tokener_error_desc(jerr));
		c->errors++;
		json_object_put(root);
		root = NULL;
	}
	json_tokener_free(tok);
	free(buf);
	return root;
}

int aws_import_add_json(struct aws_import *imp, const char *name, const char *text, size_t len,
			const char *pl_id, struct diags *d)
{
	struct ctx c = { .imp = imp, .d = d };
	struct json_object *root, *arr;
	struct aws_doc *doc;
	bool known = false;
	char *dname;

	dname = strdup(name);
	if (!dname)
		return -ENOMEM;
	c.file = dname;
	root = json_parse(&c, text, len);
	if (!root)
		goto fail;
	if (!json_object_is_type(root, json_type_object)) {
		ctx_error(&c, NULL, "expected a JSON object at the top, as the AWS CLI prints it");
		goto fail;
	}
	doc = grow(imp->docs, &imp->docs_cap, imp->ndocs, sizeof(*imp->docs));
	if (!doc) {
		c.oom = true;
		goto fail;
	}
	imp->docs = doc;
	doc[imp->ndocs].root = root;
	doc[imp->ndocs].name = dname;
	imp->ndocs++;

	if (pl_id && !json_object_object_get_ex(root, "Entries", NULL)) {
		ctx_error(
			&c, NULL,
			"--prefix-list %s: this is not get-managed-prefix-list-entries output (no \"Entries\")",
			pl_id);
		return -EINVAL;
	}
	if (get_array(&c, root, "", "NetworkAcls", false, &arr) > 0) {
		doc_items(&c, arr, "NetworkAcls", "NetworkAclId", &imp->nacls);
		known = true;
	}
	if (get_array(&c, root, "", "SecurityGroups", false, &arr) > 0) {
		doc_items(&c, arr, "SecurityGroups", "GroupId", &imp->sgs);
		known = true;
	}
	if (get_array(&c, root, "", "SecurityGroupRules", false, &arr) > 0) {
		doc_items(&c, arr, "SecurityGroupRules", "GroupId", &imp->sg_rules);
		known = true;
	}
	if (get_array(&c, root, "", "NetworkInterfaces", false, &arr) > 0) {
		size_t i, n = json_object_array_length(arr);
		char p[AWS_PATH_MAX];

		for (i = 0; i < n; i++) {
			struct json_object *o =
				array_object(&c, arr, i, jpath_idx(p, "", "NetworkInterfaces", i));

			if (o)
				doc_eni(&c, o, p);
		}
		known = true;
	}
	if (get_array(&c, root, "", "Entries", false, &arr) > 0) {
		doc_prefix_list(&c, arr, pl_id);
		known = true;
	}
	if (!known && !c.errors)
		ctx_error(
			&c, NULL,
			"not a known AWS CLI output: expected NetworkAcls, SecurityGroups, SecurityGroupRules, NetworkInterfaces or Entries (prefix-list entries) at the top");
	if (c.oom)
		return -ENOMEM;
	return c.errors ? -EINVAL : 0;

fail:
	json_object_put(root);
	free(dname);
	return c.oom ? -ENOMEM : -EINVAL;
}

/* Read a whole file; errors reported in @d. */
static int read_file(const char *path, char **text, size_t *len, struct diags *d)
{
	bool is_stdin = !strcmp(path, "-");
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	char *buf = NULL, *nb;
	size_t n = 0, cap = 0, got;
	int err = 0;

	if (!f) {
		err = -errno;
		diags_add(d, DIAG_ERROR, path, 0, 0, "cannot open: %s", strerror(-err));
		return err;
	}
	do {
		if (cap - n < 4096) {
			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap);
			if (!nb) {
				err = -ENOMEM;
				break;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got);
	if (!err && ferror(f))
		err = -EIO;
	if (!is_stdin)
		fclose(f);
	if (err) {
		diags_add(d, DIAG_ERROR, path, 0, 0, "cannot read: %s", strerror(-err));
		free(buf);
		return err;
	}
	*text = buf;
	*len = n;
	return 0;
}

int aws_import_add_file(struct aws_import *imp, const char *path, const char *pl_id,
			struct diags *d)
{
	char *text;
	size_t len;
	int err = read_file(path, &text, &len, d);

	if (err)
		return err;
	err = aws_import_add_json(imp, strcmp(path, "-") ? path : "<stdin>", text, len, pl_id, d);
	free(text);
	return err;
}

/* ---- members text ----------------------------------------------------- */

int aws_import_add_members(struct aws_import *imp, const char *name, const char *text, size_t len,
			   struct diags *d)
{
	struct ctx c = { .imp = imp, .d = d, .file = name };
	size_t pos = 0;
	int line = 0;

	while (pos < len) {
		const char *ln = text + pos;
		size_t n = 0, i = 0;
		char tok[INET6_ADDRSTRLEN + 8], setname[AWS_ID_MAX + 4], id[AWS_ID_MAX];
		struct aws_set *set = NULL;
		int ntok = 0;

		while (pos + n < len && ln[n] != '\n')
			n++;
		pos += n + 1;
		line++;

		for (;;) {
			size_t start, tl;
			char why[160];
			struct rule_prefix p;

			while (i < n && (ln[i] == ' ' || ln[i] == '\t' || ln[i] == '\r'))
				i++;
			if (i == n || ln[i] == '#')
				break;
			start = i;
			while (i < n && !isspace((unsigned char)ln[i]) && ln[i] != '#')
				i++;
			tl = i - start;
			if (tl >= sizeof(tok)) {
				diags_add(
					d, DIAG_ERROR, name, line, (int)start + 1,
					"token too long: expected a group or prefix-list id, or a CIDR");
				c.errors++;
				break;
			}
			memcpy(tok, ln + start, tl);
			tok[tl] = '\0';
			if (ntok++ == 0) {
				if (set_name_of(tok, "sg", setname, sizeof(setname)) &&
				    set_name_of(tok, "pl", setname, sizeof(setname))) {
					diags_add(
						d, DIAG_ERROR, name, line, (int)start + 1,
						"\"%s\": expected a security group (sg-…) or prefix-list (pl-…) id",
						tok);
					c.errors++;
					ntok = -1;
					break;
				}
				snprintf(id, sizeof(id), "%s", tok);
				continue;
			}
			if (cidr_parse(tok, 0, true, &p, why, sizeof(why))) {
				diags_add(d, DIAG_ERROR, name, line, (int)start + 1, "%s", why);
				c.errors++;
				continue;
			}
			if (!set)
				set = set_get(&c, id, setname);
			if (set)
				set_add(&c, set, &p, name);
		}
		if (ntok == 1) {
			diags_add(d, DIAG_ERROR, name, line, (int)n + 1,
				  "expected a CIDR after \"%s\"", id);
			c.errors++;
		}
	}
	if (c.oom)
		return -ENOMEM;
	return c.errors ? -EINVAL : 0;
}

int aws_import_add_members_file(struct aws_import *imp, const char *path, struct diags *d)
{
	char *text;
	size_t len;
	int err = read_file(path, &text, &len, d);

	if (err)
		return err;
	err = aws_import_add_members(imp, strcmp(path, "-") ? path : "<stdin>", text, len, d);
	free(text);
	return err;
}

/* ---- network ACL ------------------------------------------------------ */

/* A checked port range from..to as " dport A[-B]"; nothing for 0-65535,
 * which is every port. Network ACL entries and SG permissions share it. */
static void add_dport(struct sbuf *m, long from, long to)
{
	if (from == 0 && to == 65535)
		return;
	if (from == to)
		sbuf_addf(m, " dport %ld", from);
	else
		sbuf_addf(m, " dport %ld-%ld", from, to);
}

/* PortRange of a tcp/udp entry as " dport A[-B]" (nothing for 0-65535). */
static int nacl_ports(struct ctx *c, struct json_object *e, const char *path, struct sbuf *m)
{
	char p[AWS_PATH_MAX], q[AWS_PATH_MAX];
	struct json_object *pr;
	long from = 0, to = 0;
	int r;

	r = get_object(c, e, path, "PortRange", false, &pr);
	if (r <= 0)
		return r;
	jpath(p, path, "PortRange");
	if ((get_int(c, pr, p, "From", true, &from) | get_int(c, pr, p, "To", true, &to)) < 0)
		return -1;
	if (from < 0 || from > 65535) {
		ctx_error(c, jpath(q, p, "From"), "%ld is not a port (0-65535)", from);
		return -1;
	}
	if (to < 0 || to > 65535) {
		ctx_error(c, jpath(q, p, "To"), "%ld is not a port (0-65535)", to);
		return -1;
	}
	if (from > to) {
		ctx_error(c, p, "From %ld is above To %ld", from, to);
		return -1;
	}
	add_dport(m, from, to);
	return 0;
}

/* IcmpTypeCode as " icmp T[/C]" (nothing for type -1: any). */
static int nacl_icmp(struct ctx *c, struct json_object *e, const char *path, struct sbuf *m)
{
	char p[AWS_PATH_MAX], q[AWS_PATH_MAX];
	struct json_object *tc;
	long type = -1, code = -1;
	int r;

	r = get_object(c, e, path, "IcmpTypeCode", false, &tc);
	if (r <= 0)
		return r;
	jpath(p, path, "IcmpTypeCode");
	if ((get_int(c, tc, p, "Type", true, &type) | get_int(c, tc, p, "Code", false, &code)) < 0)
		return -1;
	if (type == -1)
		return 0;
	if (type < 0 || type > 255) {
		ctx_error(c, jpath(q, p, "Type"), "%ld is not an ICMP type (0-255, or -1 for any)",
			  type);
		return -1;
	}
	if (code < -1 || code > 255) {
		ctx_error(c, jpath(q, p, "Code"), "%ld is not an ICMP code (0-255, or -1 for any)",
			  code);
		return -1;
	}
	if (code == -1)
		sbuf_addf(m, " icmp %ld", type);
	else
		sbuf_addf(m, " icmp %ld/%ld", type, code);
	return 0;
}

static bool has_member(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && v;
}

static void nacl_entry(struct ctx *c, const struct aws_item *acl, struct json_object *e,
		       const char *path, struct aws_lines *out)
{
	const char *action = NULL, *cidr4 = NULL, *cidr6 = NULL, *key;
	char p[AWS_PATH_MAX], why[160], cidr[64], proto_s[8];
	struct sbuf m = { 0 }, line = { 0 };
	struct rule_prefix pfx;
	const char *note = NULL, *note2 = NULL;
	bool egress = false, deny;
	int proto = RULE_PROTO_ALL, r4, r6;
	long number = 0;

	if ((get_int(c, e, path, "RuleNumber", true, &number) |
	     get_str(c, e, path, "RuleAction", true, &action) |
	     get_proto(c, e, path, "Protocol", &proto) |
	     get_bool(c, e, path, "Egress", true, &egress)) < 0)
		return;
	r4 = get_str(c, e, path, "CidrBlock", false, &cidr4);
	r6 = get_str(c, e, path, "Ipv6CidrBlock", false, &cidr6);
	if (r4 < 0 || r6 < 0)
		return;
	if (r4 && r6) {
		ctx_error(c, path, "has both CidrBlock and Ipv6CidrBlock");
		return;
	}
	if (!r4 && !r6) {
		ctx_error(c, path, "has neither CidrBlock nor Ipv6CidrBlock");
		return;
	}
	key = r4 ? "CidrBlock" : "Ipv6CidrBlock";
	if (cidr_parse(r4 ? cidr4 : cidr6, r4 ? 4 : 6, false, &pfx, why, sizeof(why))) {
		ctx_error(c, jpath(p, path, key), "%s", why);
		return;
	}
	rule_prefix_format(&pfx, cidr, sizeof(cidr));
	if (!strcmp(action, "allow")) {
		deny = false;
	} else if (!strcmp(action, "deny")) {
		deny = true;
	} else {
		ctx_error(c, jpath(p, path, "RuleAction"), "\"%s\": expected allow or deny",
			  action);
		return;
	}

	if (number == AWS_NACL_STAR_V4 || number == AWS_NACL_STAR_V6) {
		/* AWS's `*` entry: deny all, from everywhere. moat's implicit deny. */
		if (deny && proto == RULE_PROTO_ALL && pfx.len == 0)
			return;
		ctx_error(
			c, jpath(p, path, "RuleNumber"),
			"%ld is the number of AWS's default `*` entry, which denies everything; this entry does not, and moat numbers rules 1-32766",
			number);
		return;
	}
	if (number < RULE_NACL_NUMBER_MIN || number > RULE_NACL_NUMBER_MAX) {
		ctx_error(c, jpath(p, path, "RuleNumber"), "%ld is outside 1-32766", number);
		return;
	}

	/* Which fields AWS looks at depends on the protocol (see the top). */
	if (proto == 6 || proto == 17) {
		if (nacl_ports(c, e, path, &m))
			goto out;
		if (has_member(e, "IcmpTypeCode"))
			note = "IcmpTypeCode ignored: AWS applies it to icmp only";
	} else if (proto == 1 || (proto == 58 && pfx.family == 6)) {
		if (nacl_icmp(c, e, path, &m))
			goto out;
		if (has_member(e, "PortRange"))
			note = "PortRange ignored: AWS applies it to tcp and udp only";
	} else {
		if (has_member(e, "PortRange"))
			note = "PortRange ignored: AWS applies it to tcp and udp only";
		if (proto == 58 && has_member(e, "IcmpTypeCode"))
			note2 = "IcmpTypeCode ignored: AWS ignores it for protocol 58 with an IPv4 CIDR";
		else if (has_member(e, "IcmpTypeCode"))
			note2 = "IcmpTypeCode ignored: AWS applies it to icmp only";
	}

	sbuf_addf(&line, "nacl %s %ld %s %s %s %s%s  # %s entry %ld %s", egress ? "out" : "in",
		  number, action, proto_text(proto, proto_s, sizeof(proto_s)),
		  egress ? "dst" : "src", cidr, sbuf_str(&m), acl->id, number,
		  egress ? "egress" : "ingress");
	if (note)
		sbuf_addf(&line, "; %s", note);
	if (note2)
		sbuf_addf(&line, "; %s", note2);
	lines_add(c, out, egress ? RULE_DIR_OUT : RULE_DIR_IN, number, path, &line);
out:
	sbuf_free(&m);
	sbuf_free(&line);
}

static int line_cmp(const void *a, const void *b)
{
	const struct aws_line *x = a, *y = b;

	if (x->dir != y->dir)
		return x->dir - y->dir;
	return (x->number > y->number) - (x->number < y->number);
}

static void nacl_convert(struct ctx *c, const struct aws_item *acl, struct aws_lines *out)
{
	struct json_object *entries, *e;
	char p[AWS_PATH_MAX];
	size_t i, n;

	c->file = acl->file;
	if (get_array(c, acl->obj, acl->path, "Entries", true, &entries) <= 0)
		return;
	n = json_object_array_length(entries);
	for (i = 0; i < n; i++) {
		e = array_object(c, entries, i, jpath_idx(p, acl->path, "Entries", i));
		if (e)
			nacl_entry(c, acl, e, p, out);
	}
	/* Sort by direction then number: the order in which both AWS and moat try them. */
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), line_cmp);
	for (i = 1; i < out->n; i++) {
		if (line_cmp(&out->v[i - 1], &out->v[i]))
			continue;
		ctx_error(c, out->v[i].path, "RuleNumber %ld is used twice for %s (also %s)",
			  out->v[i].number, out->v[i].dir == RULE_DIR_IN ? "ingress" : "egress",
			  out->v[i - 1].path);
	}
}

/* A header comment for an ACL: id, VPC, default, file; its subnets on a second line. */
static void nacl_header(struct ctx *c, const struct aws_item *acl, struct sbuf *h,
			struct sbuf *subnets)
{
	struct json_object *assoc, *a, *v;
	const char *vpc = info_str(acl->obj, "VpcId"), *s;
	size_t i, n, nsub = 0;

	sbuf_addf(h, "# network ACL ");
	sbuf_add_text(h, acl->id);
	if (vpc) {
		sbuf_addf(h, " in ");
		sbuf_add_text(h, vpc);
	}
	if (json_object_object_get_ex(acl->obj, "IsDefault", &v) &&
	    json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v))
		sbuf_addf(h, " (the VPC's default ACL)");
	sbuf_addf(h, ", from ");
	sbuf_add_text(h, acl->file);
	if (json_object_object_get_ex(acl->obj, "Associations", &assoc) &&
	    json_object_is_type(assoc, json_type_array)) {
		n = json_object_array_length(assoc);
		for (i = 0; i < n; i++) {
			a = json_object_array_get_idx(assoc, i);
			s = json_object_is_type(a, json_type_object) ? info_str(a, "SubnetId")
								     : NULL;
			if (!s)
				continue;
			sbuf_addf(subnets, "%s", nsub++ ? ", " : "# subnets: ");
			sbuf_add_text(subnets, s);
		}
	}
	if (h->oom || subnets->oom)
		c->oom = true;
}

/* ---- security groups -------------------------------------------------- */

/*
 * FromPort/ToPort of an SG permission or rule as a match (" dport A[-B]" or
 * " icmp T[/C]"); @note receives what AWS ignores.
 */
static int sg_match(struct ctx *c, struct json_object *o, const char *path, int proto,
		    struct sbuf *m, const char **note)
{
	char p[AWS_PATH_MAX];
	long from = -1, to = -1;
	int rf, rt;

	rf = get_int(c, o, path, "FromPort", false, &from);
	rt = get_int(c, o, path, "ToPort", false, &to);
	if (rf < 0 || rt < 0)
		return -1;

	switch (proto) {
	case 6:
	case 17:
		if (rf != rt) {
			ctx_error(c, jpath(p, path, rf ? "ToPort" : "FromPort"),
				  "missing (FromPort and ToPort go together)");
			return -1;
		}
		if (!rf || (from == -1 && to == -1))
			return 0;
		if (from < 0 || from > 65535) {
			ctx_error(c, jpath(p, path, "FromPort"), "%ld is not a port (0-65535)",
				  from);
			return -1;
		}
		if (to < 0 || to > 65535) {
			ctx_error(c, jpath(p, path, "ToPort"), "%ld is not a port (0-65535)", to);
			return -1;
		}
		if (from > to) {
			ctx_error(c, jpath(p, path, "FromPort"), "%ld is above ToPort %ld", from,
				  to);
			return -1;
		}
		add_dport(m, from, to);
		return 0;
	case 1:
	case 58:
		/* FromPort is the ICMP type, ToPort the code; -1 any. */
		if (!rf || from == -1)
			return 0;
		if (from < 0 || from > 255) {
			ctx_error(c, jpath(p, path, "FromPort"),
				  "%ld is not an ICMP type (0-255, or -1 for any)", from);
			return -1;
		}
		if (rt && (to < -1 || to > 255)) {
			ctx_error(c, jpath(p, path, "ToPort"),
				  "%ld is not an ICMP code (0-255, or -1 for any)", to);
			return -1;
		}
		if (!rt || to == -1)
			sbuf_addf(m, " icmp %ld", from);
		else
			sbuf_addf(m, " icmp %ld/%ld", from, to);
		return 0;
	default:
		if ((rf && from != -1) || (rt && to != -1))
			*note = "FromPort/ToPort ignored: AWS applies them to tcp, udp, icmp and icmpv6 only";
		return 0;
	}
}

enum sg_peer_kind { PEER_V4, PEER_V6, PEER_PL, PEER_SG };

/* The peer of a rule as rules text: a CIDR or "@set" (the set marked used). */
static int sg_peer(struct ctx *c, enum sg_peer_kind kind, struct json_object *o, const char *path,
		   const char *key, char *buf, size_t len)
{
	char p[AWS_PATH_MAX], name[AWS_ID_MAX + 4];
	struct rule_prefix pfx;
	struct aws_set *set;
	const char *id;

	switch (kind) {
	case PEER_V4:
	case PEER_V6:
		return get_cidr(c, o, path, key, kind == PEER_V4 ? 4 : 6, buf, len, &pfx);
	case PEER_PL:
	case PEER_SG:
		if (get_str(c, o, path, key, true, &id) <= 0) {
			if (kind == PEER_SG && has_member(o, "GroupName"))
				ctx_error(
					c, path,
					"a group named only by GroupName (EC2-Classic) cannot be resolved to addresses");
			return -1;
		}
		if (set_name_of(id, kind == PEER_SG ? "sg" : "pl", name, sizeof(name))) {
			ctx_error(c, jpath(p, path, key), "\"%s\" is not a %s id", id,
				  kind == PEER_SG ? "security group" : "prefix-list");
			return -1;
		}
		set = set_get(c, id, name);
		if (!set)
			return -1;
		set->used = true;
		snprintf(buf, len, "@%s", name);
		return 0;
	}
	return -1;
}

/* One SG rule line: "sg DIR allow PROTO src|dst PEER MATCH  # COMMENT". */
static void sg_line(struct ctx *c, struct aws_lines *out, bool egress, int proto, const char *peer,
		    const struct sbuf *m, const char *sg_id, const char *rule_id, const char *desc,
		    const char *note)
{
	struct sbuf line = { 0 };
	char proto_s[8];

	sbuf_addf(&line, "sg %s allow %s %s %s%s  # %s", egress ? "out" : "in",
		  proto_text(proto, proto_s, sizeof(proto_s)), egress ? "dst" : "src", peer,
		  sbuf_str(m), sg_id);
	if (rule_id)
		sbuf_addf(&line, " %s", rule_id);
	sbuf_addf(&line, " %s", egress ? "egress" : "ingress");
	if (desc && *desc) {
		sbuf_addf(&line, ": ");
		sbuf_add_text(&line, desc);
	}
	if (note)
		sbuf_addf(&line, "; %s", note);
	lines_add(c, out, -1, 0, NULL, &line);
}

/* IpPermissions or IpPermissionsEgress of one group. */
static void sg_permissions(struct ctx *c, const struct aws_item *sg, const char *key, bool egress,
			   struct aws_lines *out)
{
	static const struct {
		const char *array, *key;
		enum sg_peer_kind kind;
	} peers[] = {
		{ "IpRanges", "CidrIp", PEER_V4 },
		{ "Ipv6Ranges", "CidrIpv6", PEER_V6 },
		{ "PrefixListIds", "PrefixListId", PEER_PL },
		{ "UserIdGroupPairs", "GroupId", PEER_SG },
	};
	char pp[AWS_PATH_MAX], p[AWS_PATH_MAX], peer[72];
	struct json_object *perms, *perm, *arr, *o;
	size_t i, j, k, n, np;
	const char *note, *desc;
	int proto;

	if (get_array(c, sg->obj, sg->path, key, false, &perms) <= 0)
		return;
	np = json_object_array_length(perms);
	for (i = 0; i < np; i++) {
		struct sbuf m = { 0 };

		note = NULL;
		perm = array_object(c, perms, i, jpath_idx(pp, sg->path, key, i));
		if (!perm || get_proto(c, perm, pp, "IpProtocol", &proto) < 0)
			continue;
		if (sg_match(c, perm, pp, proto, &m, &note)) {
			sbuf_free(&m);
			continue;
		}
		for (k = 0; k < sizeof(peers) / sizeof(peers[0]); k++) {
			if (get_array(c, perm, pp, peers[k].array, false, &arr) <= 0)
				continue;
			n = json_object_array_length(arr);
			for (j = 0; j < n; j++) {
				o = array_object(c, arr, j, jpath_idx(p, pp, peers[k].array, j));
				if (!o || sg_peer(c, peers[k].kind, o, p, peers[k].key, peer,
						  sizeof(peer)))
					continue;
				desc = info_str(o, "Description");
				sg_line(c, out, egress, proto, peer, &m, sg->id, NULL, desc, note);
			}
		}
		sbuf_free(&m);
	}
}

/* One rule of describe-security-group-rules. */
static void sg_rule(struct ctx *c, const struct aws_item *r, struct aws_lines *out)
{
	static const struct {
		const char *key;
		enum sg_peer_kind kind;
	} peers[] = {
		{ "CidrIpv4", PEER_V4 },
		{ "CidrIpv6", PEER_V6 },
		{ "PrefixListId", PEER_PL },
		{ "ReferencedGroupInfo", PEER_SG },
	};
	const char *rule_id = NULL, *note = NULL, *found = NULL;
	char peer[72], p[AWS_PATH_MAX];
	struct json_object *o = r->obj, *ref;
	struct sbuf m = { 0 };
	size_t k, kfound = 0;
	bool egress = false;
	int proto = RULE_PROTO_ALL;

	c->file = r->file;
	if ((get_bool(c, o, r->path, "IsEgress", true, &egress) |
	     get_proto(c, o, r->path, "IpProtocol", &proto) |
	     get_str(c, o, r->path, "SecurityGroupRuleId", false, &rule_id)) < 0)
		return;
	for (k = 0; k < sizeof(peers) / sizeof(peers[0]); k++) {
		if (!has_member(o, peers[k].key))
			continue;
		if (found) {
			ctx_error(c, r->path, "has both %s and %s", found, peers[k].key);
			return;
		}
		found = peers[k].key;
		kfound = k;
	}
	if (!found) {
		ctx_error(c, r->path,
			  "has no peer (CidrIpv4, CidrIpv6, PrefixListId or ReferencedGroupInfo)");
		return;
	}
	if (sg_match(c, o, r->path, proto, &m, &note))
		goto out;
	if (peers[kfound].kind == PEER_SG) {
		if (get_object(c, o, r->path, "ReferencedGroupInfo", true, &ref) <= 0 ||
		    sg_peer(c, PEER_SG, ref, jpath(p, r->path, "ReferencedGroupInfo"), "GroupId",
			    peer, sizeof(peer)))
			goto out;
	} else if (sg_peer(c, peers[kfound].kind, o, r->path, found, peer, sizeof(peer))) {
		goto out;
	}
	sg_line(c, out, egress, proto, peer, &m, r->id, rule_id, info_str(o, "Description"), note);
out:
	sbuf_free(&m);
}

/* The rules of one group, from every document that describes it. */
static void sg_convert(struct ctx *c, const char *id, struct aws_lines *out)
{
	struct aws_import *imp = c->imp;
	bool header = false;
	size_t i;

	for (i = 0; i < imp->sgs.n; i++) {
		const struct aws_item *sg = &imp->sgs.v[i];
		const char *name, *desc, *vpc;
		struct sbuf h = { 0 };

		if (strcmp(sg->id, id))
			continue;
		c->file = sg->file;
		name = info_str(sg->obj, "GroupName");
		desc = info_str(sg->obj, "Description");
		vpc = info_str(sg->obj, "VpcId");
		lines_addf(c, out, "%s", "");
		sbuf_addf(&h, "# security group ");
		sbuf_add_text(&h, id);
		if (name) {
			sbuf_addf(&h, " \"");
			sbuf_add_text(&h, name);
			sbuf_addf(&h, "\"");
		}
		if (vpc)
			sbuf_addf(&h, " in %s", vpc);
		sbuf_addf(&h, ", from ");
		sbuf_add_text(&h, sg->file);
		if (desc && *desc) {
			sbuf_addf(&h, ": ");
			sbuf_add_text(&h, desc);
		}
		lines_add(c, out, -1, 0, NULL, &h);
		header = true;
		sg_permissions(c, sg, "IpPermissions", false, out);
		sg_permissions(c, sg, "IpPermissionsEgress", true, out);
	}
	for (i = 0; i < imp->sg_rules.n; i++) {
		if (strcmp(imp->sg_rules.v[i].id, id))
			continue;
		if (!header) {
			lines_addf(c, out, "%s", "");
			lines_addf(c, out, "# security group %s, rules from %s", id,
				   imp->sg_rules.v[i].file);
			header = true;
		}
		sg_rule(c, &imp->sg_rules.v[i], out);
	}
}

/* ---- selection and output --------------------------------------------- */

/* True when an item before @lists[@l].v[@i] has the same id. */
static bool id_seen_before(const struct aws_items *const *lists, size_t l, size_t i)
{
	const char *id = lists[l]->v[i].id;
	size_t j, k;

	for (j = 0; j <= l; j++)
		for (k = 0; k < (j == l ? i : lists[j]->n); k++)
			if (!strcmp(lists[j]->v[k].id, id))
				return true;
	return false;
}

/* "a, b, c": the distinct ids of @nlists lists, for messages; returns their count. */
static size_t ids_list(const struct aws_items *const *lists, size_t nlists, struct sbuf *b)
{
	size_t l, i, count = 0;

	for (l = 0; l < nlists; l++)
		for (i = 0; i < lists[l]->n; i++)
			if (!id_seen_before(lists, l, i))
				sbuf_addf(b, "%s%s", count++ ? ", " : "", lists[l]->v[i].id);
	return count;
}

static bool items_have(const struct aws_items *items, const char *id)
{
	size_t i;

	for (i = 0; i < items->n; i++)
		if (!strcmp(items->v[i].id, id))
			return true;
	return false;
}

static const struct aws_item *nacl_select(struct ctx *c, const struct aws_import_opts *opts)
{
	const struct aws_items *lists[1] = { &c->imp->nacls };
	const struct aws_item *acl = NULL;
	struct sbuf ids = { 0 };
	size_t i, distinct;

	c->file = NULL;
	distinct = ids_list(lists, 1, &ids);
	if (opts->nacl_id) {
		for (i = 0; i < lists[0]->n && !acl; i++)
			if (!strcmp(lists[0]->v[i].id, opts->nacl_id))
				acl = &lists[0]->v[i];
		if (!acl && distinct)
			ctx_error(c, NULL,
				  "--nacl %s: no such network ACL in the input (it has %s)",
				  opts->nacl_id, sbuf_str(&ids));
		else if (!acl)
			ctx_error(
				c, NULL,
				"--nacl %s: the input has no network ACL (give describe-network-acls output)",
				opts->nacl_id);
	} else if (distinct > 1) {
		ctx_error(c, NULL, "the input has %zu network ACLs (%s): choose one with --nacl ID",
			  distinct, sbuf_str(&ids));
	} else if (distinct == 1) {
		acl = &lists[0]->v[0];
	}
	if (ids.oom)
		c->oom = true;
	sbuf_free(&ids);
	return acl;
}

/* The groups to import, in the order given by --sg or the input's. */
static const char **sg_select(struct ctx *c, const struct aws_import_opts *opts, size_t *n)
{
	struct aws_import *imp = c->imp;
	size_t i, max = imp->sgs.n + imp->sg_rules.n + opts->n_sg_ids, cnt = 0;
	const char **sel;
	struct sbuf ids = { 0 };

	*n = 0;
	c->file = NULL;
	sel = calloc(max ? max : 1, sizeof(*sel));
	if (!sel) {
		c->oom = true;
		return NULL;
	}
	if (opts->n_sg_ids) {
		const struct aws_items *lists[2] = { &imp->sgs, &imp->sg_rules };

		ids_list(lists, 2, &ids);
		for (i = 0; i < opts->n_sg_ids; i++) {
			const char *id = opts->sg_ids[i];
			size_t j;
			bool dup = false;

			for (j = 0; j < cnt; j++)
				dup |= !strcmp(sel[j], id);
			if (dup)
				continue;
			if (items_have(&imp->sgs, id) || items_have(&imp->sg_rules, id))
				sel[cnt++] = id;
			else if (imp->sgs.n || imp->sg_rules.n)
				ctx_error(
					c, NULL,
					"--sg %s: no such security group in the input (it has %s)",
					id, sbuf_str(&ids));
			else
				ctx_error(
					c, NULL,
					"--sg %s: the input has no security group (give describe-security-groups or describe-security-group-rules output)",
					id);
		}
		sbuf_free(&ids);
	} else {
		const struct aws_items *lists[2] = { &imp->sgs, &imp->sg_rules };
		size_t l;

		for (l = 0; l < 2; l++)
			for (i = 0; i < lists[l]->n; i++)
				if (!id_seen_before(lists, l, i))
					sel[cnt++] = lists[l]->v[i].id;
	}
	*n = cnt;
	return sel;
}

static void write_set(FILE *out, const struct aws_set *s)
{
	char buf[INET6_ADDRSTRLEN + 8];
	size_t i;

	/* The id passed set_name_of(): letters and digits only. */
	fprintf(out, "# %s %s: ", s->id[0] == 's' ? "security group" : "prefix list", s->id);
	if (s->n) {
		fprintf(out, "%zu member%s, from ", s->n, s->n == 1 ? "" : "s");
		fput_text(out, s->from);
		fputc('\n', out);
	} else {
		fprintf(out, "no members known: rules that name it match nothing\n");
	}
	fprintf(out, "set %s {", s->name);
	for (i = 0; i < s->n; i++) {
		if (rule_prefix_format(&s->v[i], buf, sizeof(buf)))
			snprintf(buf, sizeof(buf), "?");
		fprintf(out, "%s %s", i ? "," : "", buf);
	}
	fprintf(out, " }\n");
}

int aws_import_write(struct aws_import *imp, const struct aws_import_opts *opts, FILE *out,
		     struct diags *d)
{
	static const struct aws_import_opts none;
	struct ctx c = { .imp = imp, .d = d };
	struct aws_lines nacl = { 0 }, sg = { 0 };
	const struct aws_item *acl;
	const char **sel;
	struct sbuf h = { 0 }, subnets = { 0 };
	size_t i, nsel = 0, nsg_rules = 0, nused = 0;
	bool sg_none = false;
	int err = 0;

	if (!opts)
		opts = &none;
	for (i = 0; i < imp->nsets; i++)
		imp->sets[i].used = false;

	acl = nacl_select(&c, opts);
	if (acl)
		nacl_convert(&c, acl, &nacl);
	sel = sg_select(&c, opts, &nsel);
	for (i = 0; sel && i < nsel; i++)
		sg_convert(&c, sel[i], &sg);
	c.file = NULL;
	if (!acl && !nsel && !c.errors)
		ctx_error(&c, NULL,
			  "nothing to import: the input has no network ACL and no security group");
	if (acl)
		nacl_header(&c, acl, &h, &subnets);
	if (c.oom) {
		err = -ENOMEM;
		goto out;
	}
	if (c.errors) {
		err = -EINVAL;
		goto out;
	}
	for (i = 0; i < sg.n; i++)
		nsg_rules += !strncmp(sg.v[i].text, "sg ", 3);
	/*
	 * Groups without any rule deny everything in AWS. In moat a stage with
	 * no rule line is off, so keep it on with a rule that matches nothing.
	 */
	sg_none = nsel && !nsg_rules;
	for (i = 0; i < imp->nsets; i++) {
		const struct aws_set *s = &imp->sets[i];

		if (!s->used)
			continue;
		nused++;
		if (!s->n)
			diags_add(
				d, DIAG_WARNING, NULL, 0, 0,
				"%s %s has no members (give %s, or --members): set %s is empty and the rules that name it match nothing",
				s->id[0] == 's' ? "security group" : "prefix list", s->id,
				s->id[0] == 's' ? "describe-network-interfaces output"
						: "get-managed-prefix-list-entries output",
				s->name);
	}

	fprintf(out, "# moat rules made by `moat import aws` from AWS CLI JSON:");
	for (i = 0; i < imp->ndocs; i++) {
		fprintf(out, "%s ", i ? "," : "");
		fput_text(out, imp->docs[i].name);
	}
	fprintf(out, "\n");
	if (acl)
		fprintf(out,
			"# NACL: entries tried by number, first match wins; AWS's `*` entries are moat's implicit deny.\n");
	if (nsel)
		fprintf(out,
			"# SG: a union of allow rules; replies of an allowed connection pass.\n");

	if (nused || sg_none)
		fprintf(out, "\n");
	for (i = 0; i < imp->nsets; i++)
		if (imp->sets[i].used)
			write_set(out, &imp->sets[i]);
	if (sg_none)
		fprintf(out, "set aws_nothing { }\n");

	if (acl) {
		fprintf(out, "\n%s\n", sbuf_str(&h));
		if (subnets.len)
			fprintf(out, "%s\n", sbuf_str(&subnets));
		for (i = 0; i < nacl.n; i++)
			fprintf(out, "%s\n", nacl.v[i].text);
		if (!nacl.n) {
			fprintf(out, "nacl in 32766 deny all  # ");
			fput_text(out, acl->id);
			fprintf(out,
				" has only the `*` entries: AWS denies all; this keeps the NACL stage on\n");
		}
	}
	for (i = 0; i < sg.n; i++)
		fprintf(out, "%s\n", sg.v[i].text);
	if (sg_none)
		fprintf(out,
			"sg in allow all src @aws_nothing  # the groups have no rules: AWS allows nothing; this keeps the SG stage on\n");
	if (fflush(out) || ferror(out))
		err = -EIO;
out:
	sbuf_free(&h);
	sbuf_free(&subnets);
	free(sel);
	lines_free(&nacl);
	lines_free(&sg);
	return err;
}

int aws_import_to_text(struct aws_import *imp, const struct aws_import_opts *opts, char **text,
		       size_t *len, struct diags *d)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	int err;

	*text = NULL;
	*len = 0;
	if (!f)
		return -errno;
	err = aws_import_write(imp, opts, f, d);
	if (fclose(f) && !err)
		err = -EIO;
	if (err) {
		free(buf);
		return err;
	}
	*text = buf;
	*len = n;
	return 0;
}

/* ---- life cycle ------------------------------------------------------- */

int aws_import_new(struct aws_import **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void aws_import_free(struct aws_import *imp)
{
	size_t i;

	if (!imp)
		return;
	for (i = 0; i < imp->ndocs; i++) {
		json_object_put(imp->docs[i].root);
		free(imp->docs[i].name);
	}
	for (i = 0; i < imp->nsets; i++) {
		free(imp->sets[i].name);
		free(imp->sets[i].id);
		free(imp->sets[i].v);
		free(imp->sets[i].from);
	}
	free(imp->docs);
	free(imp->nacls.v);
	free(imp->sgs.v);
	free(imp->sg_rules.v);
	free(imp->sets);
	free(imp);
}
