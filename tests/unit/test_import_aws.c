// SPDX-License-Identifier: GPL-2.0
/*
 * test_import_aws.c - unit tests of `moat import aws` (user/import_aws.c).
 *
 * Every file of tests/data/aws must import, and its rules must be accepted
 * by the rules parser with the expected number of rules per stage and
 * direction; selected lines are checked word for word, and every rule line
 * must read exactly as rule_format() writes the rule the parser made of it.
 * Errors must name the file and the JSON path (or FILE:LINE:COL for
 * malformed JSON and members files), and must leave no output.
 *
 * The data directory is tests/data/aws relative to the working directory,
 * or $MOAT_TEST_DATA.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "diag.h"
#include "import_aws.h"
#include "rules.h"

/* ---- helpers ---------------------------------------------------------- */

static const char *data_path(const char *name)
{
	static char buf[4][PATH_MAX];
	static int slot;
	const char *dir = getenv("MOAT_TEST_DATA");
	char *p = buf[slot++ % 4];

	snprintf(p, PATH_MAX, "%s/%s", dir ? dir : "tests/data/aws", name);
	return p;
}

/* Everything diags_print writes, as one string (caller frees). */
static char *diag_text(const struct diags *d)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	diags_print(d, f);
	assert_int_equal(fclose(f), 0);
	return out;
}

struct result {
	int err;
	char *text; /* the rules; NULL on error */
	char *msgs; /* every diagnostic, as printed */
	struct diags d;
};

static void result_free(struct result *r)
{
	free(r->text);
	free(r->msgs);
	diags_free(&r->d);
}

/*
 * Import data files (NULL-terminated). A name "members:F" is a members
 * file, "pl:ID=F" a prefix-list entries file with its id given.
 */
static void import_files(struct result *r, const struct aws_import_opts *opts,
			 const char *const *files)
{
	struct aws_import *imp;
	size_t len, i;
	int err = 0;

	memset(r, 0, sizeof(*r));
	diags_init(&r->d);
	assert_int_equal(aws_import_new(&imp), 0);
	for (i = 0; files[i]; i++) {
		const char *f = files[i];

		if (!strncmp(f, "members:", 8)) {
			err |= aws_import_add_members_file(imp, data_path(f + 8), &r->d);
		} else if (!strncmp(f, "pl:", 3)) {
			char id[64];
			const char *eq = strchr(f, '=');

			assert_non_null(eq);
			snprintf(id, sizeof(id), "%.*s", (int)(eq - f - 3), f + 3);
			err |= aws_import_add_file(imp, data_path(eq + 1), id, &r->d);
		} else {
			err |= aws_import_add_file(imp, data_path(f), NULL, &r->d);
		}
	}
	if (!err)
		err = aws_import_to_text(imp, opts, &r->text, &len, &r->d);
	r->err = err;
	r->msgs = diag_text(&r->d);
	aws_import_free(imp);
	if (!err) {
		assert_non_null(r->text);
		assert_int_equal(strlen(r->text), len);
	} else {
		assert_null(r->text);
	}
}

/* Import one JSON document given as text. */
static void import_text(struct result *r, const struct aws_import_opts *opts, const char *json)
{
	struct aws_import *imp;
	size_t len;

	memset(r, 0, sizeof(*r));
	diags_init(&r->d);
	assert_int_equal(aws_import_new(&imp), 0);
	r->err = aws_import_add_json(imp, "t.json", json, strlen(json), NULL, &r->d);
	if (!r->err)
		r->err = aws_import_to_text(imp, opts, &r->text, &len, &r->d);
	r->msgs = diag_text(&r->d);
	aws_import_free(imp);
}

static void assert_has(const char *hay, const char *needle)
{
	if (!hay || !strstr(hay, needle))
		fail_msg("expected to find:\n  %s\nin:\n%s", needle, hay ? hay : "(null)");
}

/* @line must be a whole line of @text. */
static void assert_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while (p && (p = strstr(p, line))) {
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || !p[n]))
			return;
		p++;
	}
	fail_msg("expected the line:\n  %s\nin:\n%s", line, text);
}

/*
 * Parse the imported text; check the rule counts (NACL in/out, SG in/out)
 * and that every rule line reads as rule_format() writes its rule.
 */
static void assert_rules(const struct result *r, size_t nin, size_t nout, size_t sgin, size_t sgout,
			 struct ruleset *keep)
{
	struct ruleset rs;
	struct diags d;
	const char *p;
	size_t k = 0;
	int err;

	if (r->err)
		fail_msg("import failed (%d):\n%s", r->err, r->msgs);
	ruleset_init(&rs);
	diags_init(&d);
	err = rules_parse_text("imported.rules", r->text, strlen(r->text), &rs, &d);
	if (err) {
		char *m = diag_text(&d);

		fail_msg("the parser refused the import:\n%s\n---\n%s", m, r->text);
	}
	assert_int_equal(ruleset_count(&rs, RULE_STAGE_NACL, RULE_DIR_IN), nin);
	assert_int_equal(ruleset_count(&rs, RULE_STAGE_NACL, RULE_DIR_OUT), nout);
	assert_int_equal(ruleset_count(&rs, RULE_STAGE_SG, RULE_DIR_IN), sgin);
	assert_int_equal(ruleset_count(&rs, RULE_STAGE_SG, RULE_DIR_OUT), sgout);

	/* Rule lines come in file order, as do the parsed rules. */
	for (p = r->text; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
		const char *eol = strchrnul(p, '\n'), *hash;
		char want[1024];
		size_t n;

		if (strncmp(p, "nacl ", 5) && strncmp(p, "sg ", 3))
			continue;
		hash = strstr(p, "  # ");
		assert_true(hash && hash < eol); /* every rule line names its AWS origin */
		n = (size_t)(hash - p);
		assert_in_range(k, 0, rs.nrules - 1);
		assert_int_equal(rule_format(&rs.rules[k], &rs, want, sizeof(want)), 0);
		if (strlen(want) != n || strncmp(want, p, n))
			fail_msg("line %.*s\nparses as %s", (int)n, p, want);
		k++;
	}
	assert_int_equal(k, rs.nrules);
	diags_free(&d);
	if (keep)
		*keep = rs;
	else
		ruleset_free(&rs);
}

static const struct rule *find_nacl(const struct ruleset *rs, enum rule_dir dir, int number)
{
	size_t i;

	for (i = 0; i < rs->nrules; i++)
		if (rs->rules[i].stage == RULE_STAGE_NACL && rs->rules[i].dir == dir &&
		    rs->rules[i].number == number)
			return &rs->rules[i];
	fail_msg("no nacl %s %d", rule_dir_name(dir), number);
	return NULL;
}

/* ---- the AWS CLI reference examples ----------------------------------- */

static void test_doc_network_acls(void **state)
{
	static const char *const files[] = { "describe-network-acls.json", NULL };
	struct aws_import_opts opts = { 0 };
	struct result r;

	(void)state;
	/* Two ACLs and no --nacl: an error that lists both. */
	import_files(&r, NULL, files);
	assert_int_equal(r.err, -EINVAL);
	assert_has(
		r.msgs,
		"error: the input has 2 network ACLs (acl-0ea1f54ca7EXAMPLE, acl-0e2a78e4e2EXAMPLE): choose one with --nacl ID");
	result_free(&r);

	opts.nacl_id = "acl-0ea1f54ca7EXAMPLE";
	import_files(&r, &opts, files);
	assert_rules(&r, 1, 1, 0, 0, NULL);
	assert_line(
		r.text,
		"nacl in 100 allow all src 0.0.0.0/0  # acl-0ea1f54ca7EXAMPLE entry 100 ingress");
	assert_line(
		r.text,
		"nacl out 100 allow all dst 0.0.0.0/0  # acl-0ea1f54ca7EXAMPLE entry 100 egress");
	assert_null(strstr(r.text, "32767"));
	result_free(&r);

	opts.nacl_id = "acl-0e2a78e4e2EXAMPLE";
	import_files(&r, &opts, files);
	assert_rules(&r, 2, 2, 0, 0, NULL);
	assert_line(r.text,
		    "nacl in 101 allow all src ::/0  # acl-0e2a78e4e2EXAMPLE entry 101 ingress");
	assert_line(r.text, "# subnets: subnet-02ec2ba8aaEXAMPLE, subnet-0fd06f75d2EXAMPLE");
	assert_null(strstr(r.text, "32768"));
	result_free(&r);

	opts.nacl_id = "acl-nope";
	import_files(&r, &opts, files);
	assert_int_equal(r.err, -EINVAL);
	assert_has(r.msgs, "--nacl acl-nope: no such network ACL in the input (it has "
			   "acl-0ea1f54ca7EXAMPLE, acl-0e2a78e4e2EXAMPLE)");
	result_free(&r);
}

static void test_doc_security_groups(void **state)
{
	static const char *const files[] = { "describe-security-groups.json", NULL };
	struct result r;

	(void)state;
	import_files(&r, NULL, files);
	assert_rules(&r, 0, 0, 2, 1, NULL);
	assert_line(r.text, "sg in allow all src @sg_903004f8  # sg-903004f8 ingress");
	assert_line(
		r.text,
		"sg in allow tcp src 203.0.113.0/24 dport 22  # sg-903004f8 ingress: Access from NY office");
	assert_line(r.text, "sg out allow all dst 0.0.0.0/0  # sg-903004f8 egress");
	assert_has(r.text, "# security group sg-903004f8 \"MySecurityGroup\" in vpc-1a2b3c4d");
	/* The group refers to itself, and nothing says who is in it. */
	assert_line(r.text, "set sg_903004f8 { }");
	assert_int_equal(r.d.errors, 0);
	assert_int_equal(r.d.warnings, 1);
	assert_has(r.msgs, "warning: security group sg-903004f8 has no members");
	result_free(&r);
}

static void test_doc_security_group_rules(void **state)
{
	static const char *const files[] = { "describe-security-group-rules.json", NULL };
	struct result r;

	(void)state;
	import_files(&r, NULL, files);
	assert_rules(&r, 0, 0, 1, 2, NULL);
	assert_line(
		r.text,
		"sg in allow all src @sg_1234567890abcdef0  # sg-1234567890abcdef0 sgr-abcdef01234567890 ingress");
	assert_line(
		r.text,
		"sg out allow all dst ::/0  # sg-1234567890abcdef0 sgr-bcdef01234567890a egress");
	assert_line(
		r.text,
		"sg out allow all dst 0.0.0.0/0  # sg-1234567890abcdef0 sgr-cdef01234567890ab egress");
	assert_int_equal(r.d.warnings, 1);
	result_free(&r);
}

/* ---- constructed files ------------------------------------------------ */

static void test_default_nacl(void **state)
{
	static const char *const files[] = { "nacl-default.json", NULL };
	struct result r;

	(void)state;
	import_files(&r, NULL, files);
	assert_rules(&r, 2, 2, 0, 0, NULL);
	assert_line(
		r.text,
		"nacl in 100 allow all src 0.0.0.0/0  # acl-0a1b2c3d4e5f60100 entry 100 ingress");
	assert_line(r.text,
		    "nacl out 101 allow all dst ::/0  # acl-0a1b2c3d4e5f60100 entry 101 egress");
	assert_has(r.text, "(the VPC's default ACL)");
	assert_int_equal(r.d.n, 0);
	result_free(&r);
}

static void test_web_tier_nacl(void **state)
{
	static const char *const files[] = { "nacl-web-tier.json", NULL };
	const struct rule *x;
	struct ruleset rs;
	struct result r;

	(void)state;
	import_files(&r, NULL, files);
	assert_rules(&r, 7, 5, 0, 0, &rs);
	assert_line(
		r.text,
		"nacl in 90 deny all src 192.0.2.0/24  # acl-0a1b2c3d4e5f60200 entry 90 ingress");
	assert_line(
		r.text,
		"nacl in 120 allow tcp src 198.51.100.0/24 dport 22  # acl-0a1b2c3d4e5f60200 entry 120 ingress");
	assert_line(
		r.text,
		"nacl out 120 allow tcp dst 0.0.0.0/0 dport 1024-65535  # acl-0a1b2c3d4e5f60200 entry 120 egress");

	/* The ephemeral range is the destination port, never the source. */
	x = find_nacl(&rs, RULE_DIR_IN, 140);
	assert_int_equal(x->proto, 6);
	assert_false(x->sport.set);
	assert_true(x->dport.set);
	assert_int_equal(x->dport.lo, 1024);
	assert_int_equal(x->dport.hi, 65535);
	assert_int_equal(x->src.kind, RULE_ADDR_PREFIX);
	assert_int_equal(x->src.prefix.len, 0);
	assert_int_equal(x->dst.kind, RULE_ADDR_ANY);
	x = find_nacl(&rs, RULE_DIR_OUT, 90);
	assert_int_equal(x->action, RULE_DENY);
	assert_int_equal(x->dst.kind, RULE_ADDR_PREFIX);
	assert_int_equal(x->src.kind, RULE_ADDR_ANY);
	/* Rules come out in number order per direction, as AWS tries them. */
	assert_true(strstr(r.text, "nacl in 90 ") < strstr(r.text, "nacl in 100 "));
	ruleset_free(&rs);
	result_free(&r);
}

static void test_ipv6_nacl(void **state)
{
	static const char *const files[] = { "nacl-ipv6.json", NULL };
	const struct rule *x;
	struct ruleset rs;
	struct result r;

	(void)state;
	import_files(&r, NULL, files);
	assert_rules(&r, 7, 3, 0, 0, &rs);
	assert_line(
		r.text,
		"nacl in 110 deny all src 2001:db8:bad::/48  # acl-0a1b2c3d4e5f60300 entry 110 ingress");
	assert_line(
		r.text,
		"nacl in 130 allow icmpv6 src ::/0 icmp 128/0  # acl-0a1b2c3d4e5f60300 entry 130 ingress");
	assert_line(
		r.text,
		"nacl out 105 deny tcp dst 2001:db8:bad::/48 dport 0-1023  # acl-0a1b2c3d4e5f60300 entry 105 egress");
	assert_int_equal(find_nacl(&rs, RULE_DIR_IN, 101)->family, 6);
	assert_int_equal(find_nacl(&rs, RULE_DIR_IN, 100)->family, 4);
	x = find_nacl(&rs, RULE_DIR_IN, 130);
	assert_true(x->has_icmp);
	assert_int_equal(x->icmp_type, 128);
	assert_int_equal(x->icmp_code, 0);
	ruleset_free(&rs);
	result_free(&r);
}

static void test_icmp_nacl(void **state)
{
	static const char *const files[] = { "nacl-icmp.json", NULL };
	const struct rule *x;
	struct ruleset rs;
	struct result r;

	(void)state;
	import_files(&r, NULL, files);
	assert_rules(&r, 8, 4, 0, 0, &rs);
	assert_line(
		r.text,
		"nacl in 100 allow icmp src 0.0.0.0/0 icmp 8/0  # acl-0a1b2c3d4e5f60400 entry 100 ingress");
	/* Code -1: any code of the type. */
	assert_line(
		r.text,
		"nacl in 110 allow icmp src 0.0.0.0/0 icmp 3  # acl-0a1b2c3d4e5f60400 entry 110 ingress");
	x = find_nacl(&rs, RULE_DIR_IN, 110);
	assert_true(x->has_icmp);
	assert_int_equal(x->icmp_type, 3);
	assert_int_equal(x->icmp_code, -1);
	/* Type -1: any ICMP at all. */
	assert_line(
		r.text,
		"nacl in 130 allow icmp src 10.0.0.0/8  # acl-0a1b2c3d4e5f60400 entry 130 ingress");
	assert_false(find_nacl(&rs, RULE_DIR_IN, 130)->has_icmp);
	assert_line(
		r.text,
		"nacl in 150 allow icmpv6 src 2001:db8::/32  # acl-0a1b2c3d4e5f60400 entry 150 ingress");
	/* Protocol 58 with an IPv4 CIDR: AWS ignores the type and code. */
	assert_line(
		r.text,
		"nacl in 170 allow icmpv6 src 172.16.0.0/12  # acl-0a1b2c3d4e5f60400 entry 170 ingress; IcmpTypeCode ignored: AWS ignores it for protocol 58 with an IPv4 CIDR");
	assert_line(
		r.text,
		"nacl out 130 deny icmp dst 0.0.0.0/0 icmp 11  # acl-0a1b2c3d4e5f60400 entry 130 egress");
	ruleset_free(&rs);
	result_free(&r);
}

static void test_protocol_numbers(void **state)
{
	static const char *const files[] = { "nacl-protocols.json", NULL };
	struct ruleset rs;
	struct result r;

	(void)state;
	import_files(&r, NULL, files);
	assert_rules(&r, 8, 4, 0, 0, &rs);
	assert_line(
		r.text,
		"nacl in 100 allow 47 src 203.0.113.0/24  # acl-0a1b2c3d4e5f60500 entry 100 ingress");
	assert_line(
		r.text,
		"nacl out 110 allow 50 dst 203.0.113.0/24  # acl-0a1b2c3d4e5f60500 entry 110 egress");
	assert_int_equal(find_nacl(&rs, RULE_DIR_IN, 100)->proto, 47);
	/* "-1" with a PortRange: AWS ignores the ports, and the comment says so. */
	assert_line(
		r.text,
		"nacl in 140 deny all src 198.18.0.0/15  # acl-0a1b2c3d4e5f60500 entry 140 ingress; PortRange ignored: AWS applies it to tcp and udp only");
	assert_false(find_nacl(&rs, RULE_DIR_IN, 140)->dport.set);
	assert_line(
		r.text,
		"nacl in 150 allow 132 src 0.0.0.0/0  # acl-0a1b2c3d4e5f60500 entry 150 ingress; PortRange ignored: AWS applies it to tcp and udp only");
	/* tcp 0-65535 is every port: no port match at all. */
	assert_line(
		r.text,
		"nacl in 160 allow tcp src 10.0.0.0/8  # acl-0a1b2c3d4e5f60500 entry 160 ingress");
	assert_false(find_nacl(&rs, RULE_DIR_IN, 160)->dport.set);
	ruleset_free(&rs);
	result_free(&r);
}

static void test_new_custom_nacl_denies_all(void **state)
{
	static const char *const files[] = { "nacl-custom-new.json", NULL };
	struct ruleset rs;
	struct result r;

	(void)state;
	/* Only the `*` entries: the NACL stage must still be on (deny all). */
	import_files(&r, NULL, files);
	assert_rules(&r, 1, 0, 0, 0, &rs);
	assert_true(rs.stage_on[RULE_STAGE_NACL]);
	assert_int_equal(rs.rules[0].action, RULE_DENY);
	assert_int_equal(rs.rules[0].proto, RULE_PROTO_ALL);
	ruleset_free(&rs);
	result_free(&r);
}

static void test_sg_references(void **state)
{
	static const char *const files[] = { "sg-tiers.json", "describe-network-interfaces.json",
					     "pl-0a1b2c3d4e5f60718.json", "members:members.txt",
					     NULL };
	struct ruleset rs;
	struct result r;
	size_t i;

	(void)state;
	import_files(&r, NULL, files);
	assert_rules(&r, 0, 0, 15, 8, &rs);
	assert_int_equal(r.d.n, 0);

	/* Referenced groups: the private addresses of their interfaces only. */
	assert_line(
		r.text,
		"set sg_0a1b2c3d4e5f60001 { 10.0.1.10/32, 10.0.1.11/32, 2001:db8:0:1::10/128, 10.0.1.20/32 }");
	assert_null(strstr(r.text, "198.18.200.10"));
	assert_line(r.text, "set sg_0a1b2c3d4e5f60004 { 10.0.0.5/32, 198.51.100.7/32 }");
	assert_line(
		r.text,
		"set pl_0a1b2c3d4e5f60718 { 198.18.8.0/22, 198.18.16.0/24, 2001:db8:cafe::/48, 203.0.113.128/25, 2001:db8:beef::/48 }");
	assert_line(
		r.text,
		"sg in allow tcp src @pl_0a1b2c3d4e5f60718 dport 80  # sg-0a1b2c3d4e5f60001 ingress: HTTP from the edge proxies");
	assert_line(
		r.text,
		"sg in allow tcp src @sg_0a1b2c3d4e5f60002 dport 8080-8081  # sg-0a1b2c3d4e5f60002 ingress: app to app");
	assert_line(
		r.text,
		"sg out allow tcp dst @sg_0a1b2c3d4e5f60003 dport 5432  # sg-0a1b2c3d4e5f60002 egress: to the database");
	/* ICMP: FromPort is the type, ToPort the code (-1 any). */
	assert_line(r.text,
		    "sg in allow icmp src 0.0.0.0/0 icmp 8  # sg-0a1b2c3d4e5f60001 ingress: ping");
	assert_line(
		r.text,
		"sg out allow icmp dst 0.0.0.0/0 icmp 3/4  # sg-0a1b2c3d4e5f60002 egress: fragmentation needed");
	assert_line(r.text, "sg in allow icmpv6 src ::/0  # sg-0a1b2c3d4e5f60001 ingress");
	assert_line(
		r.text,
		"sg in allow tcp src 10.0.9.0/24  # sg-0a1b2c3d4e5f60002 ingress: monitoring, all ports");
	assert_line(
		r.text,
		"sg in allow 47 src 203.0.113.0/24  # sg-0a1b2c3d4e5f60004 ingress: GRE tunnel");

	/* Sets resolve in the parser; the set of a group has what its ENIs have. */
	for (i = 0; i < rs.nsets; i++)
		if (!strcmp(rs.sets[i].name, "sg_0a1b2c3d4e5f60003"))
			break;
	assert_true(i < rs.nsets);
	assert_int_equal(rs.sets[i].n, 3);
	ruleset_free(&rs);
	result_free(&r);
}

static void test_sg_select(void **state)
{
	static const char *const files[] = { "sg-tiers.json", "describe-network-interfaces.json",
					     NULL };
	static const char *const app[] = { "sg-0a1b2c3d4e5f60002" };
	static const char *const bad[] = { "sg-0a1b2c3d4e5f60002", "sg-00000000" };
	struct aws_import_opts opts = { .sg_ids = app, .n_sg_ids = 1 };
	struct result r;

	(void)state;
	import_files(&r, &opts, files);
	assert_rules(&r, 0, 0, 4, 4, NULL);
	assert_null(strstr(r.text, "sg-0a1b2c3d4e5f60001 ingress"));
	/* Only the sets this group names. */
	assert_null(strstr(r.text, "set sg_0a1b2c3d4e5f60004"));
	assert_has(r.text, "set sg_0a1b2c3d4e5f60003 {");
	result_free(&r);

	opts.sg_ids = bad;
	opts.n_sg_ids = 2;
	import_files(&r, &opts, files);
	assert_int_equal(r.err, -EINVAL);
	assert_has(r.msgs, "error: --sg sg-00000000: no such security group in the input (it has "
			   "sg-0a1b2c3d4e5f60001, sg-0a1b2c3d4e5f60002, sg-0a1b2c3d4e5f60003, "
			   "sg-0a1b2c3d4e5f60004)");
	result_free(&r);
}

static void test_nacl_and_sg_together(void **state)
{
	static const char *const files[] = { "nacl-web-tier.json", "sg-tiers.json",
					     "describe-network-interfaces.json",
					     "pl:pl-0a1b2c3d4e5f60718=pl-0a1b2c3d4e5f60718.json",
					     NULL };
	static const char *const web[] = { "sg-0a1b2c3d4e5f60001" };
	struct aws_import_opts opts = { .sg_ids = web, .n_sg_ids = 1 };
	struct result r;

	(void)state;
	import_files(&r, &opts, files);
	assert_rules(&r, 7, 5, 6, 2, NULL);
	/* A group with members not named by the selected group is left out. */
	assert_null(strstr(r.text, "set sg_0a1b2c3d4e5f60002"));
	result_free(&r);
}

/* Every file of the data directory is used by some test above. */
static void test_every_data_file_is_covered(void **state)
{
	static const char *const covered[] = {
		"describe-network-acls.json",
		"describe-security-groups.json",
		"describe-security-group-rules.json",
		"describe-network-interfaces.json",
		"nacl-default.json",
		"nacl-web-tier.json",
		"nacl-ipv6.json",
		"nacl-icmp.json",
		"nacl-protocols.json",
		"nacl-custom-new.json",
		"sg-tiers.json",
		"pl-0a1b2c3d4e5f60718.json",
		"members.txt",
	};
	struct dirent *de;
	DIR *dir;
	size_t i, seen = 0;

	(void)state;
	dir = opendir(data_path("."));
	assert_non_null(dir);
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		for (i = 0; i < sizeof(covered) / sizeof(covered[0]); i++)
			if (!strcmp(de->d_name, covered[i]))
				break;
		if (i == sizeof(covered) / sizeof(covered[0]))
			fail_msg("%s has no test in test_import_aws.c", de->d_name);
		seen++;
	}
	closedir(dir);
	assert_int_equal(seen, sizeof(covered) / sizeof(covered[0]));
}

/* ---- errors ----------------------------------------------------------- */

static const char acl_head[] = "{\"NetworkAcls\": [{\"NetworkAclId\": \"acl-1\", \"Entries\": [";
#define ENTRY_OK                                                                 \
	"{\"RuleNumber\": 100, \"Protocol\": \"6\", \"RuleAction\": \"allow\", " \
	"\"Egress\": false, \"CidrBlock\": \"10.0.0.0/8\", \"PortRange\": {\"From\": 22, \"To\": 22}}"

/* An ACL whose second entry is @entry: the error must name Entries[1]. */
static void expect_entry_error(const char *entry, const char *msg)
{
	char json[1024];
	struct result r;

	snprintf(json, sizeof(json), "%s%s, %s]}]}", acl_head, ENTRY_OK, entry);
	import_text(&r, NULL, json);
	assert_int_equal(r.err, -EINVAL);
	assert_null(r.text);
	assert_has(r.msgs, msg);
	result_free(&r);
}

static void test_errors_name_json_paths(void **state)
{
	(void)state;
	expect_entry_error(
		"{\"RuleNumber\": 110, \"Protocol\": \"6\", \"RuleAction\": \"allow\", "
		"\"Egress\": false, \"CidrBlock\": \"0.0.0.0/0\", "
		"\"PortRange\": {\"From\": 90, \"To\": 80}}",
		"t.json: error: NetworkAcls[0].Entries[1].PortRange: From 90 is above To 80\n");
	expect_entry_error("{\"RuleNumber\": 110, \"Protocol\": \"17\", \"RuleAction\": \"allow\", "
			   "\"Egress\": true, \"CidrBlock\": \"0.0.0.0/0\", "
			   "\"PortRange\": {\"From\": 53, \"To\": 70000}}",
			   "NetworkAcls[0].Entries[1].PortRange.To: 70000 is not a port (0-65535)");
	expect_entry_error("{\"RuleNumber\": 110, \"Protocol\": \"6\", \"RuleAction\": \"allow\", "
			   "\"Egress\": false}",
			   "NetworkAcls[0].Entries[1]: has neither CidrBlock nor Ipv6CidrBlock");
	expect_entry_error(
		"{\"RuleNumber\": 110, \"Protocol\": \"6\", \"RuleAction\": \"allow\", "
		"\"Egress\": false, \"CidrBlock\": \"10.1.2.3/16\"}",
		"NetworkAcls[0].Entries[1].CidrBlock: \"10.1.2.3/16\" has host bits set (the network is 10.1.0.0/16)");
	expect_entry_error(
		"{\"RuleNumber\": 110, \"Protocol\": \"6\", \"RuleAction\": \"allow\", "
		"\"Egress\": false, \"Ipv6CidrBlock\": \"10.0.0.0/8\"}",
		"NetworkAcls[0].Entries[1].Ipv6CidrBlock: \"10.0.0.0/8\" is IPv4, expected an IPv6 prefix");
	expect_entry_error(
		"{\"RuleNumber\": 40000, \"Protocol\": \"6\", \"RuleAction\": \"allow\", "
		"\"Egress\": false, \"CidrBlock\": \"0.0.0.0/0\"}",
		"NetworkAcls[0].Entries[1].RuleNumber: 40000 is outside 1-32766");
	expect_entry_error(
		"{\"RuleNumber\": 32767, \"Protocol\": \"-1\", \"RuleAction\": \"allow\", "
		"\"Egress\": false, \"CidrBlock\": \"0.0.0.0/0\"}",
		"NetworkAcls[0].Entries[1].RuleNumber: 32767 is the number of AWS's default `*` entry");
	expect_entry_error(
		"{\"RuleNumber\": 110, \"Protocol\": \"gre\", \"RuleAction\": \"allow\", "
		"\"Egress\": false, \"CidrBlock\": \"0.0.0.0/0\"}",
		"NetworkAcls[0].Entries[1].Protocol: \"gre\" is not a protocol");
	expect_entry_error(
		"{\"RuleNumber\": 110, \"Protocol\": \"6\", \"RuleAction\": \"reject\", "
		"\"Egress\": false, \"CidrBlock\": \"0.0.0.0/0\"}",
		"NetworkAcls[0].Entries[1].RuleAction: \"reject\": expected allow or deny");
	expect_entry_error(
		"{\"RuleNumber\": \"110\", \"Protocol\": \"6\", \"RuleAction\": \"allow\", "
		"\"Egress\": false, \"CidrBlock\": \"0.0.0.0/0\"}",
		"NetworkAcls[0].Entries[1].RuleNumber: expected an integer");
	expect_entry_error("{\"RuleNumber\": 110, \"Protocol\": \"1\", \"RuleAction\": \"allow\", "
			   "\"Egress\": false, \"CidrBlock\": \"0.0.0.0/0\", "
			   "\"IcmpTypeCode\": {\"Type\": 300, \"Code\": -1}}",
			   "NetworkAcls[0].Entries[1].IcmpTypeCode.Type: 300 is not an ICMP type");
	expect_entry_error(
		"{\"RuleNumber\": 100, \"Protocol\": \"6\", \"RuleAction\": \"deny\", "
		"\"Egress\": false, \"CidrBlock\": \"0.0.0.0/0\"}",
		"NetworkAcls[0].Entries[1]: RuleNumber 100 is used twice for ingress (also NetworkAcls[0].Entries[0])");
	expect_entry_error(
		"{\"RuleNumber\": 110, \"Protocol\": \"6\", \"RuleAction\": \"allow\", "
		"\"Egress\": false, \"CidrBlock\": \"0.0.0.0/0\", \"Ipv6CidrBlock\": \"::/0\"}",
		"NetworkAcls[0].Entries[1]: has both CidrBlock and Ipv6CidrBlock");
	expect_entry_error("42", "NetworkAcls[0].Entries[1]: expected an object");
}

static void test_sg_errors(void **state)
{
	struct result r;

	(void)state;
	import_text(
		&r, NULL,
		"{\"SecurityGroups\": [{\"GroupId\": \"sg-1\", \"IpPermissions\": ["
		"{\"IpProtocol\": \"tcp\", \"FromPort\": 22, \"IpRanges\": [{\"CidrIp\": \"0.0.0.0/0\"}]},"
		"{\"IpProtocol\": \"tcp\", \"FromPort\": 22, \"ToPort\": 22,"
		" \"UserIdGroupPairs\": [{\"GroupName\": \"default\"}]},"
		"{\"IpProtocol\": \"udp\", \"FromPort\": 53, \"ToPort\": 53,"
		" \"Ipv6Ranges\": [{\"CidrIpv6\": \"2001:db8::1/32\"}]}]}]}");
	assert_int_equal(r.err, -EINVAL);
	assert_null(r.text);
	assert_has(
		r.msgs,
		"t.json: error: SecurityGroups[0].IpPermissions[0].ToPort: missing (FromPort and ToPort go together)");
	assert_has(
		r.msgs,
		"SecurityGroups[0].IpPermissions[1].UserIdGroupPairs[0]: a group named only by GroupName (EC2-Classic) cannot be resolved to addresses");
	assert_has(
		r.msgs,
		"SecurityGroups[0].IpPermissions[2].Ipv6Ranges[0].CidrIpv6: \"2001:db8::1/32\" has host bits set (the network is 2001:db8::/32)");
	assert_int_equal(r.d.errors, 4); /* GroupId missing, and the reason */
	result_free(&r);

	import_text(&r, NULL,
		    "{\"SecurityGroupRules\": [{\"GroupId\": \"sg-1\", \"IsEgress\": false,"
		    " \"IpProtocol\": \"tcp\", \"FromPort\": 1, \"ToPort\": 2,"
		    " \"CidrIpv4\": \"10.0.0.0/8\", \"PrefixListId\": \"pl-12\"},"
		    "{\"GroupId\": \"sg-1\", \"IsEgress\": true, \"IpProtocol\": \"icmp\","
		    " \"FromPort\": 8, \"ToPort\": 999, \"CidrIpv4\": \"10.0.0.0/8\"}]}");
	assert_int_equal(r.err, -EINVAL);
	assert_has(r.msgs, "SecurityGroupRules[0]: has both CidrIpv4 and PrefixListId");
	assert_has(r.msgs,
		   "SecurityGroupRules[1].ToPort: 999 is not an ICMP code (0-255, or -1 for any)");
	result_free(&r);
}

static void test_malformed_json_line_col(void **state)
{
	struct result r;

	(void)state;
	import_text(&r, NULL, "{\n  \"NetworkAcls\": [\n    {\"Entries\": [,]}\n  ]\n}\n");
	assert_int_equal(r.err, -EINVAL);
	assert_int_equal(r.d.errors, 1);
	assert_int_equal(r.d.v[0].line, 3);
	assert_int_equal(r.d.v[0].col, 18);
	assert_has(r.msgs, "t.json:3:18: error: malformed JSON: ");
	result_free(&r);

	/* Cut short: the position is the end of the text. */
	import_text(&r, NULL, "{\"SecurityGroups\": [\n");
	assert_int_equal(r.err, -EINVAL);
	assert_has(r.msgs, "t.json:2:1: error: malformed JSON: unexpected end of data");
	result_free(&r);

	/* Something after the document. */
	import_text(&r, NULL, "{\"SecurityGroups\": []}\n}");
	assert_int_equal(r.err, -EINVAL);
	assert_has(r.msgs, "t.json:2:1: error: malformed JSON: ");
	result_free(&r);
}

static void test_documents_and_selection(void **state)
{
	struct aws_import *imp;
	struct diags d;
	char *msgs;

	(void)state;
	/* Not an AWS document. */
	diags_init(&d);
	assert_int_equal(aws_import_new(&imp), 0);
	assert_int_equal(aws_import_add_json(imp, "x.json", "{\"Foo\": 1}", 10, NULL, &d), -EINVAL);
	assert_int_equal(aws_import_add_json(imp, "y.json", "[1]", 3, NULL, &d), -EINVAL);
	msgs = diag_text(&d);
	assert_has(msgs, "x.json: error: not a known AWS CLI output");
	assert_has(msgs, "y.json: error: expected a JSON object at the top");
	free(msgs);
	aws_import_free(imp);
	diags_free(&d);

	/* Only members: nothing to import. */
	diags_init(&d);
	assert_int_equal(aws_import_new(&imp), 0);
	assert_int_equal(
		aws_import_add_file(imp, data_path("describe-network-interfaces.json"), NULL, &d),
		0);
	{
		char *text;
		size_t len;

		assert_int_equal(aws_import_to_text(imp, NULL, &text, &len, &d), -EINVAL);
		assert_null(text);
	}
	msgs = diag_text(&d);
	assert_has(msgs,
		   "error: nothing to import: the input has no network ACL and no security group");
	free(msgs);
	aws_import_free(imp);
	diags_free(&d);

	/* Prefix-list entries need their id: from the name, or given. */
	diags_init(&d);
	assert_int_equal(aws_import_new(&imp), 0);
	assert_int_equal(
		aws_import_add_json(imp, "entries.json", "{\"Entries\": []}", 15, NULL, &d),
		-EINVAL);
	assert_int_equal(
		aws_import_add_json(imp, "entries.json", "{\"Entries\": []}", 15, "pl-99", &d), 0);
	assert_int_equal(
		aws_import_add_json(imp, "lists/pl-0abc.json", "{\"Entries\": []}", 15, NULL, &d),
		0);
	assert_int_equal(
		aws_import_add_json(imp, "sg.json", "{\"SecurityGroups\": []}", 22, "pl-99", &d),
		-EINVAL);
	msgs = diag_text(&d);
	assert_has(msgs, "entries.json: error: prefix-list entries without their prefix-list id");
	assert_has(
		msgs,
		"sg.json: error: --prefix-list pl-99: this is not get-managed-prefix-list-entries output");
	assert_int_equal(d.errors, 2);
	free(msgs);
	aws_import_free(imp);
	diags_free(&d);
}

static void test_members_text(void **state)
{
	static const char text[] = "# comment\n"
				   "sg-0abc 10.0.0.1 10.0.1.0/24  # trailing\n"
				   "\n"
				   "pl-12 2001:db8::/33\n"
				   "eni-1 10.0.0.1\n"
				   "sg-0abc 10.0.0.300\n"
				   "pl-12\n";
	struct aws_import *imp;
	struct diags d;
	char *msgs;

	(void)state;
	diags_init(&d);
	assert_int_equal(aws_import_new(&imp), 0);
	assert_int_equal(aws_import_add_members(imp, "m.txt", text, strlen(text), &d), -EINVAL);
	msgs = diag_text(&d);
	assert_has(
		msgs,
		"m.txt:5:1: error: \"eni-1\": expected a security group (sg-…) or prefix-list (pl-…) id");
	assert_has(msgs, "m.txt:6:9: error: \"10.0.0.300\" is not an IPv4 address prefix");
	assert_has(msgs, "m.txt:7:6: error: expected a CIDR after \"pl-12\"");
	assert_int_equal(d.errors, 3);
	free(msgs);
	aws_import_free(imp);
	diags_free(&d);
}

static void test_empty_groups_keep_the_stage_on(void **state)
{
	struct ruleset rs;
	struct result r;

	(void)state;
	/* A group without rules allows nothing in AWS; moat must not turn SG off. */
	import_text(&r, NULL,
		    "{\"SecurityGroups\": [{\"GroupId\": \"sg-1\", \"IpPermissions\": [],"
		    " \"IpPermissionsEgress\": []}]}");
	assert_rules(&r, 0, 0, 1, 0, &rs);
	assert_true(rs.stage_on[RULE_STAGE_SG]);
	assert_int_equal(rs.rules[0].src.kind, RULE_ADDR_SET);
	assert_int_equal(rs.sets[rs.rules[0].src.set].n, 0);
	ruleset_free(&rs);
	result_free(&r);
}

static void test_json_text_cannot_inject_rules(void **state)
{
	struct ruleset rs;
	struct result r;

	(void)state;
	/* Every string that reaches a comment carries a newline and a rule. */
	import_text(
		&r, NULL,
		"{\"NetworkAcls\": [{\"NetworkAclId\": \"acl-1\\nnacl in 1 allow all\","
		" \"VpcId\": \"vpc\\nnacl in 2 allow all\","
		" \"Associations\": [{\"SubnetId\": \"subnet\\r\\nnacl in 3 allow all\"}],"
		" \"Entries\": [{\"RuleNumber\": 100, \"Protocol\": \"6\","
		" \"RuleAction\": \"deny\", \"Egress\": false, \"CidrBlock\": \"0.0.0.0/0\"}]}],"
		" \"SecurityGroups\": [{\"GroupId\": \"sg-1\\nsg in allow all\","
		" \"GroupName\": \"n\\nsg in allow all\", \"Description\": \"d\\nsg in allow all\","
		" \"IpPermissions\": [{\"IpProtocol\": \"tcp\", \"FromPort\": 22, \"ToPort\": 22,"
		" \"IpRanges\": [{\"CidrIp\": \"10.0.0.0/8\","
		" \"Description\": \"x\\u2028\\nsg out allow all\"}]}]}],"
		" \"SecurityGroupRules\": [{\"GroupId\": \"sg-2\\nsg out allow all\","
		" \"SecurityGroupRuleId\": \"sgr-1\\nsg out allow all\", \"IsEgress\": true,"
		" \"IpProtocol\": \"-1\", \"CidrIpv4\": \"10.0.0.0/8\"}]}");
	assert_rules(&r, 1, 0, 1, 1, &rs);
	assert_null(strstr(r.text, "\nnacl in 1 "));
	assert_null(strstr(r.text, "\nsg in allow all\n"));
	assert_null(strstr(r.text, "\nsg out allow all\n"));
	ruleset_free(&rs);
	result_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doc_network_acls),
		cmocka_unit_test(test_doc_security_groups),
		cmocka_unit_test(test_doc_security_group_rules),
		cmocka_unit_test(test_default_nacl),
		cmocka_unit_test(test_web_tier_nacl),
		cmocka_unit_test(test_ipv6_nacl),
		cmocka_unit_test(test_icmp_nacl),
		cmocka_unit_test(test_protocol_numbers),
		cmocka_unit_test(test_new_custom_nacl_denies_all),
		cmocka_unit_test(test_sg_references),
		cmocka_unit_test(test_sg_select),
		cmocka_unit_test(test_nacl_and_sg_together),
		cmocka_unit_test(test_every_data_file_is_covered),
		cmocka_unit_test(test_errors_name_json_paths),
		cmocka_unit_test(test_sg_errors),
		cmocka_unit_test(test_malformed_json_line_col),
		cmocka_unit_test(test_documents_and_selection),
		cmocka_unit_test(test_members_text),
		cmocka_unit_test(test_empty_groups_keep_the_stage_on),
		cmocka_unit_test(test_json_text_cannot_inject_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
