// SPDX-License-Identifier: GPL-2.0
/*
 * test_rules_parse.c - unit tests of the rules language parser, its text
 * forms and the diagnostics list (user/rules_parse.c, rules_format.c,
 * diag.c).
 *
 * Every example of CONTRACT §2 must parse to the structs it means; every
 * error must carry file:line:col and its exact text; a file with any error
 * must leave the ruleset empty. Files are written to a fresh temporary
 * directory, removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "rules.h"

static char tmpdir[64];

/* ---- helpers ---------------------------------------------------------- */

/* cmocka's asserts are not noreturn, so gcc cannot see a NULL check there. */
static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		abort();
	return p;
}

static const char *tmp_path(const char *name)
{
	static char buf[4][PATH_MAX];
	static int slot;
	char *p = buf[slot++ % 4];

	snprintf(p, PATH_MAX, "%s/%s", tmpdir, name);
	return p;
}

static const char *write_file(const char *name, const char *text)
{
	const char *path = tmp_path(name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
	return path;
}

/* Everything diags_print writes, as one string (caller frees). */
static char *diag_text(const struct diags *d)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	diags_print(d, f);
	fclose(f);
	return out;
}

static void assert_diags(const struct diags *d, const char *expected)
{
	char *got = diag_text(d);

	assert_string_equal(got, expected);
	free(got);
}

static int parse_str(const char *text, struct ruleset *rs, struct diags *d)
{
	diags_init(d);
	return rules_parse_text("t.rules", text, strlen(text), rs, d);
}

static void assert_empty(const struct ruleset *rs)
{
	assert_int_equal(rs->nrules, 0);
	assert_int_equal(rs->nsets, 0);
	assert_false(rs->stage_on[RULE_STAGE_NACL]);
	assert_false(rs->stage_on[RULE_STAGE_SG]);
	assert_null(rs->rules);
	assert_null(rs->sets);
	assert_int_equal(rs->settings.ct_max, 262144);
}

static void assert_prefix(const struct rule_prefix *p, const char *text)
{
	char buf[64];

	assert_int_equal(rule_prefix_format(p, buf, sizeof(buf)), 0);
	assert_string_equal(buf, text);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int group_setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/moat-test-rules-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the contract's example ------------------------------------------- */

static const char contract_rules[] =
	"# NACL: stateless, numbered, first match wins, implicit final deny\n"
	"nacl in  100 allow tcp src 198.18.1.0/24 dport 9000\n"
	"nacl in  200 deny  all src @blocklist\n"
	"nacl out 100 allow tcp dst 198.18.1.0/24 sport 9000 dport 1024-65535 established\n"
	"nacl out 110 allow icmp dst 0.0.0.0/0 icmp 8/0\n"
	"\n"
	"# SG: stateful, allow only, rules are a union, replies follow the connection\n"
	"sg in  allow tcp dport 443 src 0.0.0.0/0\n"
	"sg in  allow tcp dport 22  src @admins\n"
	"sg out allow all dst 0.0.0.0/0\n"
	"sg out allow all dst ::/0\n"
	"\n"
	"# named sets of prefixes (inline or from a file, one prefix a line, # comments)\n"
	"set admins    { 198.51.100.0/24, 2001:db8:1::/48 }\n"
	"set blocklist file %s\n"
	"\n"
	"# settings (defaults shown)\n"
	"set conntrack max 262144\n"
	"set conntrack timeout tcp-established 432000\n"
	"set conntrack timeout udp 30\n"
	"set conntrack timeout udp-stream 180\n"
	"set conntrack timeout icmp 30\n"
	"set pass-ndp on\n";

static const char drop_txt[] = "# addresses we never talk to\n"
			       "203.0.113.0/24\n"
			       "\n"
			       "2001:db8:bad::/48   # an IPv6 one\n"
			       "192.0.2.7\n";

static void check_contract_ruleset(const struct ruleset *rs, const char *file)
{
	const struct rule *r = rs->rules;
	const struct rule_set *s;

	assert_int_equal(rs->nrules, 8);
	assert_int_equal(rs->nsets, 2);
	assert_true(rs->stage_on[RULE_STAGE_NACL]);
	assert_true(rs->stage_on[RULE_STAGE_SG]);
	assert_int_equal(ruleset_count(rs, RULE_STAGE_NACL, RULE_DIR_IN), 2);
	assert_int_equal(ruleset_count(rs, RULE_STAGE_NACL, RULE_DIR_OUT), 2);
	assert_int_equal(ruleset_count(rs, RULE_STAGE_SG, RULE_DIR_IN), 2);
	assert_int_equal(ruleset_count(rs, RULE_STAGE_SG, RULE_DIR_OUT), 2);

	/* nacl in  100 allow tcp src 198.18.1.0/24 dport 9000 */
	assert_int_equal(r[0].stage, RULE_STAGE_NACL);
	assert_int_equal(r[0].dir, RULE_DIR_IN);
	assert_int_equal(r[0].number, 100);
	assert_int_equal(r[0].action, RULE_ALLOW);
	assert_int_equal(r[0].proto, 6);
	assert_int_equal(r[0].family, 4);
	assert_int_equal(r[0].src.kind, RULE_ADDR_PREFIX);
	assert_prefix(&r[0].src.prefix, "198.18.1.0/24");
	assert_int_equal(r[0].dst.kind, RULE_ADDR_ANY);
	assert_false(r[0].sport.set);
	assert_true(r[0].dport.set);
	assert_int_equal(r[0].dport.lo, 9000);
	assert_int_equal(r[0].dport.hi, 9000);
	assert_false(r[0].has_icmp);
	assert_false(r[0].established);
	assert_string_equal(r[0].loc.file, file);
	assert_int_equal(r[0].loc.line, 2);
	assert_int_equal(r[0].loc.col, 1);

	/* nacl in  200 deny  all src @blocklist */
	assert_int_equal(r[1].number, 200);
	assert_int_equal(r[1].action, RULE_DENY);
	assert_int_equal(r[1].proto, RULE_PROTO_ALL);
	assert_int_equal(r[1].family, 0);
	assert_int_equal(r[1].src.kind, RULE_ADDR_SET);
	assert_string_equal(rs->sets[r[1].src.set].name, "blocklist");

	/* nacl out 100 allow tcp dst 198.18.1.0/24 sport 9000 dport 1024-65535 established */
	assert_int_equal(r[2].dir, RULE_DIR_OUT);
	assert_int_equal(r[2].number, 100);
	assert_int_equal(r[2].src.kind, RULE_ADDR_ANY);
	assert_prefix(&r[2].dst.prefix, "198.18.1.0/24");
	assert_true(r[2].sport.set);
	assert_int_equal(r[2].sport.lo, 9000);
	assert_int_equal(r[2].sport.hi, 9000);
	assert_int_equal(r[2].dport.lo, 1024);
	assert_int_equal(r[2].dport.hi, 65535);
	assert_true(r[2].established);

	/* nacl out 110 allow icmp dst 0.0.0.0/0 icmp 8/0 */
	assert_int_equal(r[3].number, 110);
	assert_int_equal(r[3].proto, 1);
	assert_prefix(&r[3].dst.prefix, "0.0.0.0/0");
	assert_true(r[3].has_icmp);
	assert_int_equal(r[3].icmp_type, 8);
	assert_int_equal(r[3].icmp_code, 0);

	/* SG rules: numbered by order within their direction. */
	assert_int_equal(r[4].stage, RULE_STAGE_SG);
	assert_int_equal(r[4].dir, RULE_DIR_IN);
	assert_int_equal(r[4].number, 1);
	assert_int_equal(r[4].action, RULE_ALLOW);
	assert_int_equal(r[4].dport.lo, 443);
	assert_prefix(&r[4].src.prefix, "0.0.0.0/0");
	assert_int_equal(r[5].number, 2);
	assert_int_equal(r[5].dport.lo, 22);
	assert_string_equal(rs->sets[r[5].src.set].name, "admins");
	assert_int_equal(r[6].dir, RULE_DIR_OUT);
	assert_int_equal(r[6].number, 1);
	assert_int_equal(r[6].proto, RULE_PROTO_ALL);
	assert_int_equal(r[6].family, 4);
	assert_int_equal(r[7].number, 2);
	assert_int_equal(r[7].family, 6);
	assert_prefix(&r[7].dst.prefix, "::/0");
	assert_int_equal(r[7].loc.line, 11);

	s = &rs->sets[0];
	assert_string_equal(s->name, "admins");
	assert_int_equal(s->n, 2);
	assert_prefix(&s->prefixes[0], "198.51.100.0/24");
	assert_prefix(&s->prefixes[1], "2001:db8:1::/48");
	assert_int_equal(s->loc.line, 14);
	s = &rs->sets[1];
	assert_string_equal(s->name, "blocklist");
	assert_int_equal(s->n, 3);
	assert_prefix(&s->prefixes[0], "203.0.113.0/24");
	assert_prefix(&s->prefixes[1], "2001:db8:bad::/48");
	assert_prefix(&s->prefixes[2], "192.0.2.7/32");

	assert_int_equal(rs->settings.ct_max, 262144);
	assert_int_equal(rs->settings.ct_tcp_established, 432000);
	assert_int_equal(rs->settings.ct_udp, 30);
	assert_int_equal(rs->settings.ct_udp_stream, 180);
	assert_int_equal(rs->settings.ct_icmp, 30);
	assert_int_equal(rs->settings.ct_other, 600);
	assert_true(rs->settings.pass_ndp);
	assert_int_equal(rs->settings.ephemeral, RULE_EPH_ANY);
	assert_int_equal(rs->settings.ephemeral_lo, 1024);
	assert_int_equal(rs->settings.ephemeral_hi, 65535);
}

static void test_contract_example_relative_set_file(void **state)
{
	struct ruleset rs;
	struct diags d;
	char text[4096];
	const char *path;

	write_file("drop.txt", drop_txt);
	snprintf(text, sizeof(text), contract_rules, "drop.txt");
	path = write_file("contract.rules", text);

	diags_init(&d);
	assert_int_equal(rules_parse_file(path, &rs, &d), 0);
	assert_int_equal(d.errors, 0);
	assert_int_equal(d.n, 0);
	check_contract_ruleset(&rs, path);
	rules_check_warnings(&rs, &d);
	assert_int_equal(d.warnings, 0);
	ruleset_free(&rs);
	assert_int_equal(rs.nrules, 0);
	assert_null(rs.rules);
	diags_free(&d);
}

static void test_contract_example_absolute_set_file(void **state)
{
	struct ruleset rs;
	struct diags d;
	char text[4096];

	snprintf(text, sizeof(text), contract_rules, write_file("drop-abs.txt", drop_txt));
	/* Parsed from memory under a name without a directory: the absolute
	 * path must not be taken relative to anything. */
	assert_int_equal(parse_str(text, &rs, &d), 0);
	check_contract_ruleset(&rs, "t.rules");
	ruleset_free(&rs);
	diags_free(&d);
}

/* Each statement of the example parses alone (with the sets it needs). */
static void test_contract_statements_alone(void **state)
{
	static const char *const lines[] = {
		"nacl in  100 allow tcp src 198.18.1.0/24 dport 9000",
		"nacl in  200 deny  all src @blocklist\nset blocklist { 192.0.2.0/24 }",
		"nacl out 100 allow tcp dst 198.18.1.0/24 sport 9000 dport 1024-65535 established",
		"nacl out 110 allow icmp dst 0.0.0.0/0 icmp 8/0",
		"sg in  allow tcp dport 443 src 0.0.0.0/0",
		"sg in  allow tcp dport 22  src @admins\nset admins { 198.51.100.0/24 }",
		"sg out allow all dst 0.0.0.0/0",
		"sg out allow all dst ::/0",
		"set admins    { 198.51.100.0/24, 2001:db8:1::/48 }",
		"set conntrack max 262144",
		"set conntrack timeout tcp-established 432000",
		"set conntrack timeout udp 30",
		"set conntrack timeout udp-stream 180",
		"set conntrack timeout icmp 30",
		"set pass-ndp on",
		"# only a comment",
		"",
		"   \t  ",
	};
	struct ruleset rs;
	struct diags d;
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		int err = parse_str(lines[i], &rs, &d);

		if (err)
			diags_print(&d, stderr);
		assert_int_equal(err, 0);
		assert_int_equal(d.n, 0);
		ruleset_free(&rs);
		diags_free(&d);
	}
}

static void test_every_match_and_proto(void **state)
{
	static const char text[] = "nacl in 1 allow 6 sport 0-65535 dport 0\n"
				   "nacl in 2 allow 17 sport 53\n"
				   "nacl in 3 allow udp dport 1-2\n"
				   "nacl in 4 allow 1 icmp 3\n"
				   "nacl in 5 allow icmpv6 icmp 128/0 src 2001:db8::/32\n"
				   "nacl in 6 allow 58 icmp 255/255\n"
				   "nacl in 7 deny 0\n"
				   "nacl in 8 deny 255 dst 10.1.2.3\n"
				   "nacl out 32766 allow tcp established src ::1\n"
				   "nacl out 1 deny 47 src 10.0.0.0/8 dst 192.168.0.0/16\n";
	struct ruleset rs;
	struct diags d;
	const struct rule *r;

	assert_int_equal(parse_str(text, &rs, &d), 0);
	r = rs.rules;
	assert_int_equal(rs.nrules, 10);
	assert_int_equal(r[0].proto, 6);
	assert_int_equal(r[0].sport.lo, 0);
	assert_int_equal(r[0].sport.hi, 65535);
	assert_int_equal(r[0].dport.lo, 0);
	assert_int_equal(r[0].dport.hi, 0);
	assert_true(r[0].dport.set);
	assert_int_equal(r[1].proto, 17);
	assert_int_equal(r[2].dport.hi, 2);
	assert_int_equal(r[3].proto, 1);
	assert_int_equal(r[3].icmp_type, 3);
	assert_int_equal(r[3].icmp_code, -1);
	assert_int_equal(r[4].proto, 58);
	assert_int_equal(r[4].family, 6);
	assert_int_equal(r[4].icmp_type, 128);
	assert_int_equal(r[4].icmp_code, 0);
	assert_int_equal(r[5].icmp_type, 255);
	assert_int_equal(r[5].icmp_code, 255);
	assert_int_equal(r[6].proto, 0);
	assert_int_equal(r[7].proto, 255);
	/* A bare address is a host prefix. */
	assert_prefix(&r[7].dst.prefix, "10.1.2.3/32");
	assert_int_equal(r[8].number, 32766);
	assert_true(r[8].established);
	assert_prefix(&r[8].src.prefix, "::1/128");
	assert_int_equal(r[8].family, 6);
	assert_int_equal(r[9].proto, 47);
	assert_int_equal(r[9].family, 4);
	assert_false(rs.stage_on[RULE_STAGE_SG]);
	ruleset_free(&rs);
	diags_free(&d);
}

static void test_settings(void **state)
{
	static const struct {
		const char *word;
		enum rule_ephemeral eph;
		uint16_t lo, hi;
	} eph[] = {
		{ "linux", RULE_EPH_LINUX, 32768, 60999 },
		{ "windows", RULE_EPH_WINDOWS, 49152, 65535 },
		{ "macos", RULE_EPH_MACOS, 49152, 65535 },
		{ "any", RULE_EPH_ANY, 1024, 65535 },
	};
	struct ruleset rs;
	struct diags d;
	char text[512];
	size_t i;

	for (i = 0; i < sizeof(eph) / sizeof(eph[0]); i++) {
		snprintf(text, sizeof(text),
			 "set conntrack max 16777216\n"
			 "set conntrack timeout tcp-established 60\n"
			 "set conntrack timeout udp 1\n"
			 "set conntrack timeout udp-stream 432000\n"
			 "set conntrack timeout icmp 7\n"
			 "set pass-ndp off\n"
			 "set ephemeral %s\n",
			 eph[i].word);
		assert_int_equal(parse_str(text, &rs, &d), 0);
		assert_int_equal(rs.settings.ct_max, 16777216);
		assert_int_equal(rs.settings.ct_tcp_established, 60);
		assert_int_equal(rs.settings.ct_udp, 1);
		assert_int_equal(rs.settings.ct_udp_stream, 432000);
		assert_int_equal(rs.settings.ct_icmp, 7);
		assert_int_equal(rs.settings.ct_other, 600);
		assert_false(rs.settings.pass_ndp);
		assert_int_equal(rs.settings.ephemeral, eph[i].eph);
		assert_int_equal(rs.settings.ephemeral_lo, eph[i].lo);
		assert_int_equal(rs.settings.ephemeral_hi, eph[i].hi);
		/* Settings alone turn no stage on. */
		assert_false(rs.stage_on[RULE_STAGE_NACL]);
		assert_false(rs.stage_on[RULE_STAGE_SG]);
		ruleset_free(&rs);
		diags_free(&d);
	}

	rule_settings_default(&rs.settings);
	assert_int_equal(rs.settings.ct_max, 262144);
	assert_true(rs.settings.pass_ndp);
	assert_int_equal(rs.settings.ephemeral_lo, 1024);
}

/* ---- errors ----------------------------------------------------------- */

struct err_case {
	const char *text;
	const char *diag; /* all of diags_print's output */
};

static const struct err_case err_cases[] = {
	/* statements and keywords */
	{ "bogus 1 2\n",
	  "t.rules:1:1: error: unknown statement 'bogus': expected 'nacl', 'sg' or 'set'\n" },
	{ "  NACL in 1 allow tcp\n",
	  "t.rules:1:3: error: unknown statement 'NACL': expected 'nacl', 'sg' or 'set'\n" },
	{ "nacl\n",
	  "t.rules:1:5: error: expected 'in' or 'out' after 'nacl', found end of line\n" },
	{ "nacl up 1 allow tcp\n",
	  "t.rules:1:6: error: expected 'in' or 'out' after 'nacl', found 'up'\n" },
	{ "nacl in allow tcp\n",
	  "t.rules:1:9: error: expected a rule number (1-32766) after 'in', found 'allow'\n" },
	{ "nacl in 0 allow tcp\n",
	  "t.rules:1:9: error: rule number '0' is out of range: expected 1-32766\n" },
	{ "nacl in 32767 allow tcp\n",
	  "t.rules:1:9: error: rule number '32767' is out of range: expected 1-32766\n" },
	{ "nacl in 99999999999999999999999 allow tcp\n",
	  "t.rules:1:9: error: rule number '99999999999999999999999' is out of range: expected 1-32766\n" },
	{ "nacl in 1 permit tcp\n",
	  "t.rules:1:11: error: expected 'allow' or 'deny' after '1', found 'permit'\n" },
	{ "nacl in 1 allow\n",
	  "t.rules:1:16: error: expected a protocol (all, tcp, udp, icmp, icmpv6 or 0-255) after 'allow', found end of line\n" },
	{ "nacl in 1 allow ip\n",
	  "t.rules:1:17: error: expected a protocol (all, tcp, udp, icmp, icmpv6 or 0-255) after 'allow', found 'ip'\n" },
	{ "nacl in 1 allow 256\n",
	  "t.rules:1:17: error: protocol '256' is out of range: expected 0-255\n" },
	{ "nacl in 1 allow tcp port 80\n",
	  "t.rules:1:21: error: unknown match 'port': expected src, dst, sport, dport, icmp or established\n" },
	{ "nacl in 1 allow tcp dport 80 dport 81\n",
	  "t.rules:1:30: error: 'dport' appears twice in one rule (first at column 21)\n" },
	/* SG */
	{ "sg in deny tcp\n",
	  "t.rules:1:7: error: SG rules allow only; use a nacl rule to deny\n" },
	{ "sg out 10 allow tcp\n",
	  "t.rules:1:8: error: SG rules have no number (they are a union, not an ordered list); remove '10'\n" },
	{ "sg in accept tcp\n",
	  "t.rules:1:7: error: expected 'allow' after 'in', found 'accept'\n" },
	{ "sg sideways allow tcp\n",
	  "t.rules:1:4: error: expected 'in' or 'out' after 'sg', found 'sideways'\n" },
	/* duplicate numbers */
	{ "nacl in 100 allow tcp\n\nnacl in 100 deny udp\n",
	  "t.rules:3:9: error: nacl in rule 100 is already defined at line 1\n" },
	/* addresses */
	{ "nacl in 1 allow tcp src 198.18.1.5/24\n",
	  "t.rules:1:25: error: 198.18.1.5/24 has host bits set (0.0.0.5); did you mean 198.18.1.0/24?\n" },
	{ "sg out allow all dst 2001:db8::1/32\n",
	  "t.rules:1:22: error: 2001:db8::1/32 has host bits set (::1); did you mean 2001:db8::/32?\n" },
	{ "nacl in 1 allow tcp src 10.0.0.0/33\n",
	  "t.rules:1:25: error: prefix length in '10.0.0.0/33' must be 0-32 for IPv4\n" },
	{ "nacl in 1 allow tcp src ::/129\n",
	  "t.rules:1:25: error: prefix length in '::/129' must be 0-128 for IPv6\n" },
	{ "nacl in 1 allow tcp src 10.0.0.0/\n",
	  "t.rules:1:25: error: prefix length in '10.0.0.0/' must be 0-32 for IPv4\n" },
	{ "nacl in 1 allow tcp src 300.1.1.0/24\n",
	  "t.rules:1:25: error: expected a CIDR or @SET after 'src', found '300.1.1.0/24'\n" },
	{ "nacl in 1 allow tcp dst\n",
	  "t.rules:1:24: error: expected a CIDR or @SET after 'dst', found end of line\n" },
	{ "nacl in 1 allow tcp src 10.0.0.0/8 dst 2001:db8::/32\n",
	  "t.rules:1:40: error: mixed address families in one rule: src is IPv4 but dst is IPv6\n" },
	{ "nacl in 1 allow tcp dst ::/0 src 0.0.0.0/0\n",
	  "t.rules:1:34: error: mixed address families in one rule: dst is IPv6 but src is IPv4\n" },
	{ "nacl in 1 allow tcp src @\n",
	  "t.rules:1:25: error: expected a set name after '@' (letters, digits, '_', '-', '.'; at most 64), found '@'\n" },
	{ "nacl in 1 allow tcp src 10.0.0.0/8\nsg in allow tcp src @nosuch\n",
	  "t.rules:2:21: error: unknown set '@nosuch': expected a 'set nosuch' statement in the file\n" },
	/* ports */
	{ "nacl in 1 allow tcp dport 2000-1000\n",
	  "t.rules:1:27: error: port range 2000-1000: start exceeds end\n" },
	{ "nacl in 1 allow tcp sport 65536\n",
	  "t.rules:1:27: error: port '65536' is out of range: expected 0-65535\n" },
	{ "nacl in 1 allow tcp dport http\n",
	  "t.rules:1:27: error: expected a port or range (e.g. 443 or 1024-65535) after 'dport', found 'http'\n" },
	{ "nacl in 1 allow tcp dport 1-\n",
	  "t.rules:1:27: error: expected a port or range (e.g. 443 or 1024-65535) after 'dport', found '1-'\n" },
	{ "nacl in 1 allow all dport 80\n",
	  "t.rules:1:21: error: 'dport' is only for tcp or udp rules (this rule's protocol is all)\n" },
	{ "sg in allow icmp sport 80\n",
	  "t.rules:1:18: error: 'sport' is only for tcp or udp rules (this rule's protocol is icmp)\n" },
	{ "nacl in 1 allow 47 dport 80\n",
	  "t.rules:1:20: error: 'dport' is only for tcp or udp rules (this rule's protocol is 47)\n" },
	/* icmp, established */
	{ "nacl in 1 allow tcp icmp 8\n",
	  "t.rules:1:21: error: 'icmp' is only for icmp or icmpv6 rules (this rule's protocol is tcp)\n" },
	{ "nacl in 1 allow icmp icmp 256\n",
	  "t.rules:1:27: error: ICMP type in '256' is out of range: expected 0-255\n" },
	{ "nacl in 1 allow icmp icmp 3/300\n",
	  "t.rules:1:27: error: ICMP code in '3/300' is out of range: expected 0-255\n" },
	{ "nacl in 1 allow icmp icmp echo\n",
	  "t.rules:1:27: error: expected an ICMP TYPE or TYPE/CODE (0-255) after 'icmp', found 'echo'\n" },
	{ "nacl in 1 allow udp established\n",
	  "t.rules:1:21: error: 'established' is only for tcp rules (this rule's protocol is udp)\n" },
	/* sets */
	{ "set\n",
	  "t.rules:1:4: error: expected a set name, 'conntrack', 'pass-ndp' or 'ephemeral' after 'set', found end of line\n" },
	{ "set a\n", "t.rules:1:6: error: expected '{' or 'file' after 'a', found end of line\n" },
	{ "set a { 10.0.0.0/8 10.1.0.0/16 }\n",
	  "t.rules:1:20: error: expected ',' or '}' after '10.0.0.0/8', found '10.1.0.0/16'\n" },
	{ "set a { 10.0.0.0/8, nope }\n",
	  "t.rules:1:21: error: expected an IPv4 or IPv6 prefix after ',', found 'nope'\n" },
	{ "set a { 10.0.0.1/8, 10.0.0.0/8 }\n",
	  "t.rules:1:9: error: 10.0.0.1/8 has host bits set (0.0.0.1); did you mean 10.0.0.0/8?\n" },
	{ "set a { 10.0.0.0/8\n",
	  "t.rules:1:19: error: missing '}': set 'a' opened at line 1, column 7 is not closed\n" },
	{ "set a { 10.0.0.0/8 } extra\n",
	  "t.rules:1:22: error: unexpected 'extra': expected end of line\n" },
	{ "set a! { 10.0.0.0/8 }\n",
	  "t.rules:1:5: error: expected a set name (letters, digits, '_', '-', '.'; at most 64) after 'set', found 'a!'\n" },
	{ "set a { 10.0.0.0/8 }\nset a { ::/0 }\n",
	  "t.rules:2:5: error: set 'a' is already defined at line 1\n" },
	{ "set a file\n",
	  "t.rules:1:11: error: expected a file name after 'file', found end of line\n" },
	/* settings */
	{ "set conntrack max 0\n",
	  "t.rules:1:19: error: conntrack max must be 1-16777216, found '0'\n" },
	{ "set conntrack max 16777217\n",
	  "t.rules:1:19: error: conntrack max must be 1-16777216, found '16777217'\n" },
	{ "set conntrack max lots\n",
	  "t.rules:1:19: error: expected a number after 'max', found 'lots'\n" },
	{ "set conntrack min 5\n",
	  "t.rules:1:15: error: expected 'max' or 'timeout' after 'conntrack', found 'min'\n" },
	{ "set conntrack timeout tcp-established 59\n",
	  "t.rules:1:39: error: conntrack timeout tcp-established must be 60-432000 seconds, found '59'\n" },
	{ "set conntrack timeout udp 432001\n",
	  "t.rules:1:27: error: conntrack timeout udp must be 1-432000 seconds, found '432001'\n" },
	{ "set conntrack timeout udp-stream 0\n",
	  "t.rules:1:34: error: conntrack timeout udp-stream must be 1-432000 seconds, found '0'\n" },
	{ "set conntrack timeout icmp 0\n",
	  "t.rules:1:28: error: conntrack timeout icmp must be 1-432000 seconds, found '0'\n" },
	{ "set conntrack timeout tcp 30\n",
	  "t.rules:1:23: error: expected tcp-established, udp, udp-stream or icmp after 'timeout', found 'tcp'\n" },
	{ "set conntrack max 5\nset conntrack max 6\n",
	  "t.rules:2:1: error: 'set conntrack max' is already given at line 1\n" },
	{ "set pass-ndp yes\n",
	  "t.rules:1:14: error: expected 'on' or 'off' after 'pass-ndp', found 'yes'\n" },
	{ "set pass-ndp on off\n",
	  "t.rules:1:17: error: unexpected 'off': expected end of line\n" },
	{ "set ephemeral bsd\n",
	  "t.rules:1:15: error: expected linux, windows, macos or any after 'ephemeral', found 'bsd'\n" },
	/* lexical */
	{ "nacl in 1 allow tcp\x01\n",
	  "t.rules:1:20: error: unexpected control character 0x01; is this a text file?\n" },
	{ "nacl in 1 allow tcp\nnacl in 2 allow\0 tcp\n",
	  "t.rules:2:16: error: NUL byte: this is a binary file, not text\n" },
};

static void test_error_messages(void **state)
{
	struct ruleset rs;
	struct diags d;
	size_t i;

	for (i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		const struct err_case *c = &err_cases[i];
		/* The NUL case needs the real length, not strlen. */
		size_t len = strlen(c->text);
		char *got;
		int err;

		if (strstr(c->diag, "NUL byte"))
			len += strlen(c->text + len + 1) + 1;
		diags_init(&d);
		err = rules_parse_text("t.rules", c->text, len, &rs, &d);
		got = diag_text(&d);
		/* Name the case before cmocka stops at the first difference. */
		if (err != -EINVAL || d.errors != 1 || strcmp(got, c->diag))
			print_message("case %zu: %s", i, c->text);
		assert_int_equal(err, -EINVAL);
		assert_int_equal(d.errors, 1);
		assert_string_equal(got, c->diag);
		free(got);
		assert_empty(&rs);
		ruleset_free(&rs);
		diags_free(&d);
	}
}

/* Errors on several lines are all reported, in order; nothing is applied. */
static void test_all_errors_and_nothing_applied(void **state)
{
	static const char text[] = "set conntrack max 1000\n"
				   "nacl in 100 allow tcp src 10.0.0.1/8\n"
				   "nacl in 110 allow tcp dport 22\n"
				   "sg in deny tcp\n"
				   "sg out allow all dst ::/0\n"
				   "set a { 1.2.3.0/24 }\n"
				   "nacl out 5 allow udp established\n";
	struct ruleset rs;
	struct diags d;

	assert_int_equal(parse_str(text, &rs, &d), -EINVAL);
	assert_int_equal(d.errors, 3);
	assert_diags(
		&d,
		"t.rules:2:27: error: 10.0.0.1/8 has host bits set (0.0.0.1); did you mean 10.0.0.0/8?\n"
		"t.rules:4:7: error: SG rules allow only; use a nacl rule to deny\n"
		"t.rules:7:22: error: 'established' is only for tcp rules (this rule's protocol is udp)\n");
	assert_empty(&rs);
	assert_int_equal(rs.settings.ct_max, 262144);
	assert_int_equal(rs.nfiles, 0);
	diags_free(&d);

	/* The same file without the errors is taken whole. */
	assert_int_equal(parse_str("set conntrack max 1000\n"
				   "nacl in 110 allow tcp dport 22\n"
				   "sg out allow all dst ::/0\n"
				   "set a { 1.2.3.0/24 }\n",
				   &rs, &d),
			 0);
	assert_int_equal(rs.nrules, 2);
	assert_int_equal(rs.nsets, 1);
	assert_int_equal(rs.settings.ct_max, 1000);
	ruleset_free(&rs);
	diags_free(&d);
}

static void test_same_number_other_direction(void **state)
{
	struct ruleset rs;
	struct diags d;

	assert_int_equal(parse_str("nacl in 100 allow tcp\nnacl out 100 allow tcp\n", &rs, &d), 0);
	assert_int_equal(rs.nrules, 2);
	ruleset_free(&rs);
	diags_free(&d);
}

static void test_sets_forward_and_mixed(void **state)
{
	static const char text[] = "sg in allow tcp src @later dport 22\n"
				   "nacl out 1 allow all dst @later\n"
				   "set later { 192.0.2.0/24, 2001:db8::/32, 192.0.2.9 , }\n"
				   "set multi {\n"
				   "    10.0.0.0/8,   # a comment inside\n"
				   "\n"
				   "    fd00::/8\n"
				   "}\n"
				   "nacl in 2 allow tcp dst @multi\n"
				   "set none { }\n";
	struct ruleset rs;
	struct diags d;

	assert_int_equal(parse_str(text, &rs, &d), 0);
	assert_int_equal(rs.nsets, 3);
	assert_int_equal(rs.rules[0].src.kind, RULE_ADDR_SET);
	assert_int_equal(rs.rules[0].src.set, 0);
	assert_int_equal(rs.rules[1].dst.set, 0);
	assert_int_equal(rs.rules[2].dst.set, 1);
	assert_int_equal(rs.rules[2].loc.line, 9);
	/* Sets set no family on the rule. */
	assert_int_equal(rs.rules[0].family, 0);
	assert_int_equal(rs.sets[0].n, 3);
	assert_prefix(&rs.sets[0].prefixes[1], "2001:db8::/32");
	assert_prefix(&rs.sets[0].prefixes[2], "192.0.2.9/32");
	assert_int_equal(rs.sets[1].n, 2);
	assert_prefix(&rs.sets[1].prefixes[0], "10.0.0.0/8");
	assert_prefix(&rs.sets[1].prefixes[1], "fd00::/8");
	assert_int_equal(rs.sets[1].loc.line, 4);
	assert_int_equal(rs.sets[2].n, 0);
	ruleset_free(&rs);
	diags_free(&d);
}

/* An unclosed '{' stops at the next statement, which is still read. */
static void test_unclosed_brace_does_not_swallow(void **state)
{
	static const char text[] = "set a { 10.0.0.0/8,\n"
				   "   10.1.0.0/16\n"
				   "nacl in 1 allow tcp dport 99999\n";
	struct ruleset rs;
	struct diags d;

	assert_int_equal(parse_str(text, &rs, &d), -EINVAL);
	assert_diags(
		&d,
		"t.rules:2:15: error: missing '}': set 'a' opened at line 1, column 7 is not closed\n"
		"t.rules:3:27: error: port '99999' is out of range: expected 0-65535\n");
	ruleset_free(&rs);
	diags_free(&d);
}

/* ---- set files -------------------------------------------------------- */

static void test_set_file_good(void **state)
{
	struct ruleset rs;
	struct diags d;
	const char *path;

	mkdir(tmp_path("sub"), 0700);
	write_file("good-set.txt", "\xef\xbb\xbf# a byte order mark, then a header\r\n"
				   "\t198.18.0.0/15 \r\n"
				   "   # indented comment\n"
				   "\n"
				   "198.51.100.1\n"
				   "2001:db8:a::/48#no space before the comment\n"
				   "::ffff:0:0/96\n"
				   "fe80::1"); /* no final newline */
	/* Relative to the rules file's directory, not the cwd. */
	path = write_file("sub/r.rules", "set g file ../good-set.txt\nnacl in 1 deny all src @g\n");
	diags_init(&d);
	assert_int_equal(rules_parse_file(path, &rs, &d), 0);
	assert_int_equal(rs.nsets, 1);
	assert_int_equal(rs.sets[0].n, 5);
	assert_prefix(&rs.sets[0].prefixes[0], "198.18.0.0/15");
	assert_prefix(&rs.sets[0].prefixes[1], "198.51.100.1/32");
	assert_prefix(&rs.sets[0].prefixes[2], "2001:db8:a::/48");
	assert_prefix(&rs.sets[0].prefixes[3], "::ffff:0.0.0.0/96");
	assert_prefix(&rs.sets[0].prefixes[4], "fe80::1/128");
	ruleset_free(&rs);
	diags_free(&d);
}

static void test_set_file_errors(void **state)
{
	struct ruleset rs;
	struct diags d;
	char expected[4096];
	const char *set, *rules;

	set = write_file("bad-set.txt", "10.0.0.0/8\n"
					"\n"
					"  foo\n"
					"10.0.0.0/8 10.1.0.0/16\n"
					"192.168.1.1/16  # host bits\n"
					"10.0.0.0/40\n"
					"ok\x07\n");
	rules = write_file("uses-bad-set.rules", "nacl in 1 deny all src @b\n"
						 "set b file bad-set.txt\n"
						 "nacl in 2 allow tcp src 10.0.0.1/8\n");
	diags_init(&d);
	assert_int_equal(rules_parse_file(rules, &rs, &d), -EINVAL);
	/* Errors inside the set file name the set file; the rules file's own
	 * error still comes after them. */
	snprintf(
		expected, sizeof(expected),
		"%s:3:3: error: expected an IPv4 or IPv6 prefix, found 'foo'\n"
		"%s:4:12: error: expected one prefix per line, found '10.1.0.0/16' after it\n"
		"%s:5:1: error: 192.168.1.1/16 has host bits set (0.0.1.1); did you mean 192.168.0.0/16?\n"
		"%s:6:1: error: prefix length in '10.0.0.0/40' must be 0-32 for IPv4\n"
		"%s:7:3: error: unexpected control character 0x07; is this a text file?\n"
		"%s:3:25: error: 10.0.0.1/8 has host bits set (0.0.0.1); did you mean 10.0.0.0/8?\n",
		set, set, set, set, set, rules);
	assert_diags(&d, expected);
	assert_empty(&rs);
	diags_free(&d);
}

/* IPv4 spellings: the common form is read without inet_pton, and must
 * accept and refuse exactly what inet_pton does. */
static void test_set_file_ipv4_spellings(void **state)
{
	struct ruleset rs;
	struct diags d;
	char expected[4096];
	const char *set, *rules;

	set = write_file("v4-good.txt", "0.0.0.0/0\n255.255.255.255\n203.0.113.0/24\n10.0.0.0\n");
	rules = write_file("v4-good.rules", "set g file v4-good.txt\nnacl in 1 deny all src @g\n");
	diags_init(&d);
	assert_int_equal(rules_parse_file(rules, &rs, &d), 0);
	assert_int_equal(rs.sets[0].n, 4);
	assert_prefix(&rs.sets[0].prefixes[0], "0.0.0.0/0");
	assert_prefix(&rs.sets[0].prefixes[1], "255.255.255.255/32");
	assert_prefix(&rs.sets[0].prefixes[2], "203.0.113.0/24");
	assert_prefix(&rs.sets[0].prefixes[3], "10.0.0.0/32");
	ruleset_free(&rs);
	diags_free(&d);

	set = write_file("v4-bad.txt", "10.0.0.256/32\n010.0.0.0/8\n1.2.3/24\n1.2.3.4.5\n1..2.3\n"
				       "1.2.3.4/\n1234.0.0.0/8\n");
	rules = write_file("v4-bad.rules", "set b file v4-bad.txt\nnacl in 1 deny all src @b\n");
	diags_init(&d);
	assert_int_equal(rules_parse_file(rules, &rs, &d), -EINVAL);
	snprintf(expected, sizeof(expected),
		 "%s:1:1: error: expected an IPv4 or IPv6 prefix, found '10.0.0.256/32'\n"
		 "%s:2:1: error: expected an IPv4 or IPv6 prefix, found '010.0.0.0/8'\n"
		 "%s:3:1: error: expected an IPv4 or IPv6 prefix, found '1.2.3/24'\n"
		 "%s:4:1: error: expected an IPv4 or IPv6 prefix, found '1.2.3.4.5'\n"
		 "%s:5:1: error: expected an IPv4 or IPv6 prefix, found '1..2.3'\n"
		 "%s:6:1: error: prefix length in '1.2.3.4/' must be 0-32 for IPv4\n"
		 "%s:7:1: error: expected an IPv4 or IPv6 prefix, found '1234.0.0.0/8'\n",
		 set, set, set, set, set, set, set);
	assert_diags(&d, expected);
	assert_empty(&rs);
	diags_free(&d);
}

/*
 * IPv6 addresses in a set file are read by a fast path for the common
 * spellings and by inet_pton for the rest: whichever reads a string, the
 * result must be inet_pton's, and what inet_pton refuses is an error.
 * Fixed spellings, then random ones (groups of 0-5 hex digits, a "::" or
 * two, stray colons, an embedded IPv4 tail).
 */
static void check_ipv6_spelling(const char *text)
{
	struct in6_addr want;
	struct ruleset rs;
	struct diags d;
	char line[128];
	const char *rules;
	int ok = inet_pton(AF_INET6, text, &want) == 1, rc;

	snprintf(line, sizeof(line), "%s\n", text);
	write_file("v6-one.txt", line);
	rules = write_file("v6-one.rules", "set g file v6-one.txt\nnacl in 1 deny all src @g\n");
	diags_init(&d);
	rc = rules_parse_file(rules, &rs, &d);
	if (ok != (rc == 0))
		fail_msg("'%s': inet_pton %s it, moat %s it", text, ok ? "reads" : "refuses",
			 rc == 0 ? "reads" : "refuses");
	if (ok) {
		assert_int_equal(rs.sets[0].n, 1);
		assert_int_equal(rs.sets[0].prefixes[0].family, 6);
		assert_int_equal(rs.sets[0].prefixes[0].len, 128);
		if (memcmp(rs.sets[0].prefixes[0].addr, &want, 16))
			fail_msg("'%s': moat reads another address than inet_pton", text);
		ruleset_free(&rs);
	}
	diags_free(&d);
}

static void test_set_file_ipv6_spellings(void **state)
{
	static const char *const fixed[] = {
		"fd00:1:2:3:4:5:6:7", "FD00:ABCD::1", "::1", "fd00::", "::", "1::", "1:2:3:4:5:6::8",
		"1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7",
		"12345::1", "1:::2", "1::2::3", ":1:2:3:4:5:6:7", "1:2:3:4:5:6:7:", "::ffff:1.2.3.4",
		"fd00::g", "fd00:0000:0000:0000:0000:0000:0000:0001", "0:0:0:0:0:0:0:0", "fd00: :1",
	};
	static const char alphabet[] = "0123456789abcdefABCDEF";
	char text[96];
	unsigned seed = 7, i, k;

	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		check_ipv6_spelling(fixed[i]);
	for (i = 0; i < 3000; i++) {
		unsigned groups = 1 + rand_r(&seed) % 9, gap = rand_r(&seed) % 12;
		size_t at = 0;

		for (k = 0; k < groups; k++) {
			unsigned digits = rand_r(&seed) % 6, d;

			if (k)
				text[at++] = ':';
			if (k == gap || (k == 0 && gap == 10))
				text[at++] = ':';
			for (d = 0; d < digits && !(d == 0 && digits == 5 && rand_r(&seed) % 2); d++)
				text[at++] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
		}
		if (gap == 11)
			at += (size_t)snprintf(text + at, sizeof(text) - at, ":1.2.3.4");
		else if (gap == 9 && at < sizeof(text) - 2)
			text[at++] = ':';
		text[at] = '\0';
		if (at) /* an empty line is no entry */
			check_ipv6_spelling(text);
	}
}

static void test_set_file_unreadable(void **state)
{
	struct ruleset rs;
	struct diags d;
	char text[PATH_MAX + 64], expected[2 * PATH_MAX];
	const char *fifo = tmp_path("a-fifo");

	/* Missing (relative, from a name without a directory: the cwd). */
	assert_int_equal(parse_str("set m file /nonexistent/moat-set.txt\n", &rs, &d), -EINVAL);
	assert_diags(
		&d,
		"t.rules:1:12: error: cannot read set file '/nonexistent/moat-set.txt': No such file or directory\n");
	diags_free(&d);

	/* A directory. */
	snprintf(text, sizeof(text), "set m file %s\n", tmpdir);
	assert_int_equal(parse_str(text, &rs, &d), -EINVAL);
	snprintf(expected, sizeof(expected),
		 "t.rules:1:12: error: cannot read set file '%s': not a regular file\n", tmpdir);
	assert_diags(&d, expected);
	diags_free(&d);

	/* A FIFO with no writer: refused at once, not waited on. */
	assert_int_equal(mkfifo(fifo, 0600), 0);
	snprintf(text, sizeof(text), "set m file %s\n", fifo);
	assert_int_equal(parse_str(text, &rs, &d), -EINVAL);
	snprintf(expected, sizeof(expected),
		 "t.rules:1:12: error: cannot read set file '%s': not a regular file\n", fifo);
	assert_diags(&d, expected);
	diags_free(&d);
	assert_empty(&rs);
}

static void test_set_file_too_large(void **state)
{
	char big[128], text[256], expected[512];
	struct ruleset rs;
	struct diags d;
	int fd;

	snprintf(big, sizeof(big), "%s/big-set.txt", tmpdir);

	/* Sparse: the size check must not need the bytes. */
	fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (64 << 20) + 1), 0);
	close(fd);
	snprintf(text, sizeof(text), "set big file %s\n", big);
	assert_int_equal(parse_str(text, &rs, &d), -EINVAL);
	snprintf(
		expected, sizeof(expected),
		"t.rules:1:14: error: cannot read set file '%s': file too large (the limit is 64 MiB)\n",
		big);
	assert_diags(&d, expected);
	diags_free(&d);
	unlink(big);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A million prefixes: linear time, geometric growth. */
static void test_set_file_million(void **state)
{
	const char *path = tmp_path("million.txt");
	struct ruleset rs;
	struct diags d;
	char text[PATH_MAX + 64];
	double t0, dt;
	FILE *f;
	int i;

	f = fopen(path, "w");
	assert_non_null(f);
	for (i = 0; i < 1000000; i++) {
		if (i % 10 == 9)
			fprintf(f, "2001:db8:%x:%x::/64\n", i >> 16, i & 0xffff);
		else
			fprintf(f, "%d.%d.%d.0/24\n", 10 + (i >> 16), (i >> 8) & 0xff, i & 0xff);
	}
	assert_int_equal(fclose(f), 0);

	snprintf(text, sizeof(text), "set huge file %s\nnacl in 1 deny all src @huge\n", path);
	diags_init(&d);
	t0 = now_s();
	assert_int_equal(rules_parse_text("t.rules", text, strlen(text), &rs, &d), 0);
	dt = now_s() - t0;
	print_message("1,000,000-prefix set file parsed in %.3f s\n", dt);
	assert_int_equal(rs.sets[0].n, 1000000);
	assert_prefix(&rs.sets[0].prefixes[0], "10.0.0.0/24");
	assert_prefix(&rs.sets[0].prefixes[999999], "2001:db8:f:423f::/64");
	assert_prefix(&rs.sets[0].prefixes[65536], "11.0.0.0/24");
	/* Generous for ASan/UBSan builds; an O(n^2) parser takes minutes. */
	assert_true(dt < 5.0);
	ruleset_free(&rs);
	diags_free(&d);
	unlink(path);
}

/* ---- hostile rules files ---------------------------------------------- */

static void test_rules_file_unreadable(void **state)
{
	struct ruleset rs;
	struct diags d;
	char expected[2 * PATH_MAX];

	diags_init(&d);
	assert_int_equal(rules_parse_file("/nonexistent/moat.rules", &rs, &d), -ENOENT);
	assert_diags(
		&d,
		"/nonexistent/moat.rules: error: cannot read rules file: No such file or directory\n");
	assert_empty(&rs);
	diags_free(&d);

	diags_init(&d);
	assert_int_equal(rules_parse_file(tmpdir, &rs, &d), -EINVAL);
	snprintf(expected, sizeof(expected),
		 "%s: error: cannot read rules file: not a regular file\n", tmpdir);
	assert_diags(&d, expected);
	diags_free(&d);

	diags_init(&d);
	assert_int_equal(rules_parse_file("/dev/null", &rs, &d), -EINVAL);
	assert_diags(&d, "/dev/null: error: cannot read rules file: not a regular file\n");
	diags_free(&d);
}

static void test_long_line(void **state)
{
	size_t n = 70000, hdr;
	struct ruleset rs;
	struct diags d;
	char *text = xmalloc(n + 64);

	hdr = (size_t)sprintf(text, "nacl in 1 allow tcp\n");
	memset(text + hdr, 'x', n);
	strcpy(text + hdr + n, "\nnacl in 2 allow tcp dport 65536\n");
	diags_init(&d);
	assert_int_equal(rules_parse_text("t.rules", text, strlen(text), &rs, &d), -EINVAL);
	/* The long line is refused; the next line is still read. */
	assert_diags(&d, "t.rules:2:1: error: line longer than 65536 bytes\n"
			 "t.rules:3:27: error: port '65536' is out of range: expected 0-65535\n");
	diags_free(&d);
	free(text);
}

static void test_too_many_errors(void **state)
{
	size_t n = 5000, i, off = 0;
	struct ruleset rs;
	struct diags d;
	char *text = xmalloc(n * 8);

	for (i = 0; i < n; i++, off += 5)
		memcpy(text + off, "junk\n", 5);
	diags_init(&d);
	assert_int_equal(rules_parse_text("t.rules", text, off, &rs, &d), -EINVAL);
	assert_int_equal(d.n, 1001);
	assert_int_equal(d.v[999].line, 1000);
	assert_string_equal(d.v[1000].msg, "too many errors (1000); stopping here");
	assert_int_equal(d.v[1000].line, 1001);
	diags_free(&d);
	free(text);
}

/* Empty input, and a UTF-8 byte order mark. */
static void test_empty_input(void **state)
{
	struct ruleset rs;
	struct diags d;

	assert_int_equal(parse_str("\xef\xbb\xbfnacl in 1 allow tcp\n", &rs, &d), 0);
	assert_int_equal(rs.nrules, 1);
	assert_int_equal(rs.rules[0].loc.line, 1);
	ruleset_free(&rs);
	diags_free(&d);

	assert_int_equal(parse_str("", &rs, &d), 0);
	assert_int_equal(rs.nrules, 0);
	assert_false(rs.stage_on[0]);
	assert_false(rs.stage_on[1]);
	rules_check_warnings(&rs, &d);
	assert_int_equal(d.n, 0);
	ruleset_free(&rs);
	diags_free(&d);
}

/* ---- text forms ------------------------------------------------------- */

static void test_rule_format_exact(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "nacl in  100 allow tcp src 198.18.1.0/24 dport 9000",
		  "nacl in 100 allow tcp src 198.18.1.0/24 dport 9000" },
		{ "sg in  allow tcp dport 22  src @admins\nset admins { 10.0.0.0/8 }",
		  "sg in allow tcp src @admins dport 22" },
		{ "nacl out 5 deny 47 dst 2001:db8::/32", "nacl out 5 deny 47 dst 2001:db8::/32" },
		{ "nacl in 7 allow 6 sport 1-2 established",
		  "nacl in 7 allow tcp sport 1-2 established" },
		{ "nacl in 8 allow icmp icmp 3", "nacl in 8 allow icmp icmp 3" },
		{ "nacl in 9 allow 58 icmp 1/4 src fe80::1",
		  "nacl in 9 allow icmpv6 src fe80::1/128 icmp 1/4" },
		{ "sg out allow all", "sg out allow all" },
	};
	struct ruleset rs;
	struct diags d;
	char buf[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse_str(cases[i].in, &rs, &d), 0);
		assert_int_equal(rule_format(&rs.rules[0], &rs, buf, sizeof(buf)), 0);
		assert_string_equal(buf, cases[i].out);
		/* Too small a buffer is refused, never silently cut. */
		assert_int_equal(rule_format(&rs.rules[0], &rs, buf, strlen(cases[i].out)),
				 -ENOSPC);
		ruleset_free(&rs);
		diags_free(&d);
	}
}

static void assert_rules_equal(const struct rule *a, const struct rule *b, const struct ruleset *ra,
			       const struct ruleset *rb)
{
	assert_int_equal(a->stage, b->stage);
	assert_int_equal(a->dir, b->dir);
	assert_int_equal(a->number, b->number);
	assert_int_equal(a->action, b->action);
	assert_int_equal(a->proto, b->proto);
	assert_int_equal(a->family, b->family);
	assert_int_equal(a->src.kind, b->src.kind);
	assert_int_equal(a->dst.kind, b->dst.kind);
	if (a->src.kind == RULE_ADDR_PREFIX)
		assert_memory_equal(&a->src.prefix, &b->src.prefix, sizeof(a->src.prefix));
	if (a->dst.kind == RULE_ADDR_PREFIX)
		assert_memory_equal(&a->dst.prefix, &b->dst.prefix, sizeof(a->dst.prefix));
	if (a->src.kind == RULE_ADDR_SET)
		assert_string_equal(ra->sets[a->src.set].name, rb->sets[b->src.set].name);
	if (a->dst.kind == RULE_ADDR_SET)
		assert_string_equal(ra->sets[a->dst.set].name, rb->sets[b->dst.set].name);
	assert_memory_equal(&a->sport, &b->sport, sizeof(a->sport));
	assert_memory_equal(&a->dport, &b->dport, sizeof(a->dport));
	assert_int_equal(a->has_icmp, b->has_icmp);
	assert_int_equal(a->icmp_type, b->icmp_type);
	assert_int_equal(a->icmp_code, b->icmp_code);
	assert_int_equal(a->established, b->established);
}

/* rule_format → parse gives the same rules. */
static void test_format_round_trip(void **state)
{
	static const char text[] =
		"nacl in 100 allow tcp src 198.18.1.0/24 dport 9000\n"
		"nacl in 200 deny all src @blocklist\n"
		"nacl out 100 allow tcp dst 198.18.1.0/24 sport 9000 dport 1024-65535 established\n"
		"nacl out 110 allow icmp dst 0.0.0.0/0 icmp 8/0\n"
		"nacl out 120 deny icmpv6 src ::/0 dst 2001:db8::5 icmp 135\n"
		"nacl out 130 allow 132 src @blocklist dst @admins\n"
		"sg in allow tcp dport 443 src 0.0.0.0/0\n"
		"sg in allow udp dport 53-54 src @admins\n"
		"sg out allow all dst ::/0\n"
		"sg out allow 0\n"
		"set admins { 198.51.100.0/24, 2001:db8:1::/48 }\n"
		"set blocklist { 203.0.113.0/24 }\n";
	struct ruleset a, b;
	struct diags d;
	char *out = NULL, line[512];
	size_t len = 0, i, j;
	FILE *f;

	assert_int_equal(parse_str(text, &a, &d), 0);
	diags_free(&d);
	f = open_memstream(&out, &len);
	assert_non_null(f);
	for (i = 0; i < a.nrules; i++) {
		assert_int_equal(rule_format(&a.rules[i], &a, line, sizeof(line)), 0);
		fprintf(f, "%s\n", line);
	}
	for (i = 0; i < a.nsets; i++) {
		fprintf(f, "set %s {", a.sets[i].name);
		for (j = 0; j < a.sets[i].n; j++) {
			assert_int_equal(
				rule_prefix_format(&a.sets[i].prefixes[j], line, sizeof(line)), 0);
			fprintf(f, "%s %s", j ? "," : "", line);
		}
		fprintf(f, " }\n");
	}
	fclose(f);

	assert_int_equal(parse_str(out, &b, &d), 0);
	assert_int_equal(b.nrules, a.nrules);
	assert_int_equal(b.nsets, a.nsets);
	for (i = 0; i < a.nrules; i++)
		assert_rules_equal(&a.rules[i], &b.rules[i], &a, &b);
	for (i = 0; i < a.nsets; i++) {
		assert_string_equal(a.sets[i].name, b.sets[i].name);
		assert_int_equal(a.sets[i].n, b.sets[i].n);
		assert_memory_equal(a.sets[i].prefixes, b.sets[i].prefixes,
				    a.sets[i].n * sizeof(struct rule_prefix));
	}
	ruleset_free(&a);
	ruleset_free(&b);
	diags_free(&d);
	free(out);
}

static void test_names_and_prefix_helpers(void **state)
{
	struct rule_prefix p = { 0 };
	uint8_t a[16] = { 0 };
	char buf[64];

	assert_string_equal(rule_stage_name(RULE_STAGE_NACL), "nacl");
	assert_string_equal(rule_stage_name(RULE_STAGE_SG), "sg");
	assert_string_equal(rule_dir_name(RULE_DIR_IN), "in");
	assert_string_equal(rule_dir_name(RULE_DIR_OUT), "out");
	assert_string_equal(rule_action_name(RULE_ALLOW), "allow");
	assert_string_equal(rule_action_name(RULE_DENY), "deny");

	assert_int_equal(rule_proto_name(RULE_PROTO_ALL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "all");
	assert_int_equal(rule_proto_name(58, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "icmpv6");
	assert_int_equal(rule_proto_name(47, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "47");
	assert_int_equal(rule_proto_name(256, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(rule_proto_name(6, buf, 3), -ENOSPC);

	p.family = 4;
	p.len = 20;
	inet_pton(AF_INET, "198.18.16.0", p.addr);
	assert_int_equal(rule_prefix_format(&p, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "198.18.16.0/20");
	assert_int_equal(rule_prefix_format(&p, buf, 14), -ENOSPC);
	inet_pton(AF_INET, "198.18.31.255", a);
	assert_true(rule_prefix_contains(&p, a));
	inet_pton(AF_INET, "198.18.32.0", a);
	assert_false(rule_prefix_contains(&p, a));
	inet_pton(AF_INET, "198.18.15.255", a);
	assert_false(rule_prefix_contains(&p, a));
	p.len = 0;
	assert_true(rule_prefix_contains(&p, a));
	p.len = 32;
	inet_pton(AF_INET, "198.18.16.0", a);
	assert_true(rule_prefix_contains(&p, a));
	a[3] = 1;
	assert_false(rule_prefix_contains(&p, a));
	p.len = 33;
	assert_int_equal(rule_prefix_format(&p, buf, sizeof(buf)), -EINVAL);

	memset(&p, 0, sizeof(p));
	p.family = 6;
	p.len = 127;
	inet_pton(AF_INET6, "2001:db8::2", p.addr);
	inet_pton(AF_INET6, "2001:db8::3", a);
	assert_true(rule_prefix_contains(&p, a));
	inet_pton(AF_INET6, "2001:db8::4", a);
	assert_false(rule_prefix_contains(&p, a));
	p.len = 33;
	inet_pton(AF_INET6, "2001:db8:7fff::", a);
	assert_true(rule_prefix_contains(&p, a));
	inet_pton(AF_INET6, "2001:db8:8000::", a);
	assert_false(rule_prefix_contains(&p, a));
	assert_int_equal(rule_prefix_format(&p, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2001:db8::2/33");
}

/* ---- warnings --------------------------------------------------------- */

static void test_warnings(void **state)
{
	static const char text[] = "nacl in 1 allow tcp\n"
				   "sg out allow all dst @v4only\n"
				   "sg out allow all dst ::/0 src @v4only\n"
				   "sg out allow all dst @empty\n"
				   "sg out allow all src @v4only dst @v6only\n"
				   "sg out allow icmp dst ::/0\n"
				   "sg out allow icmpv6 dst 10.0.0.0/8\n"
				   "set v4only { 10.0.0.0/8 }\n"
				   "set v6only { fd00::/8 }\n"
				   "set empty { }\n";
	struct ruleset rs;
	struct diags d;

	assert_int_equal(parse_str(text, &rs, &d), 0);
	rules_check_warnings(&rs, &d);
	assert_int_equal(d.errors, 0);
	assert_int_equal(d.warnings, 7);
	assert_diags(
		&d,
		"t.rules:1:1: warning: nacl out has no rules: the stage is on, so all outbound traffic is denied\n"
		"t.rules:2:1: warning: sg in has no rules: the stage is on, so all inbound traffic is denied\n"
		"t.rules:10:1: warning: set 'empty' is empty: rules that use it match nothing\n"
		"t.rules:3:1: warning: set 'v4only' (src) has no IPv6 prefix, so this rule never matches\n"
		"t.rules:5:1: warning: set 'v6only' (dst) has no IPv4 prefix, so this rule never matches\n"
		"t.rules:6:1: warning: icmp is IPv4's ICMP: with IPv6 addresses this rule never matches (use icmpv6)\n"
		"t.rules:7:1: warning: icmpv6 is IPv6's ICMP: with IPv4 addresses this rule never matches (use icmp)\n");
	ruleset_free(&rs);
	diags_free(&d);
}

/* ---- diags ------------------------------------------------------------ */

static void test_diags(void **state)
{
	struct diags d;

	diags_init(&d);
	diags_add(&d, DIAG_ERROR, "f.rules", 3, 7, "bad %s", "thing");
	diags_add(&d, DIAG_WARNING, "f.rules", 3, 0, "no column");
	diags_add(&d, DIAG_NOTE, "f.rules", 0, 0, "whole file");
	diags_add(&d, DIAG_ERROR, NULL, 0, 0, "nowhere %d", 42);
	diags_add(&d, DIAG_WARNING, NULL, 9, 2, "no file");
	assert_int_equal(d.n, 5);
	assert_int_equal(d.errors, 2);
	assert_int_equal(d.warnings, 2);
	assert_diags(&d, "f.rules:3:7: error: bad thing\n"
			 "f.rules:3: warning: no column\n"
			 "f.rules: note: whole file\n"
			 "error: nowhere 42\n"
			 "9:2: warning: no file\n");
	assert_string_equal(diag_severity_name(DIAG_NOTE), "note");
	diags_free(&d);
	assert_int_equal(d.n, 0);
	assert_int_equal(d.errors, 0);
	assert_null(d.v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contract_example_relative_set_file),
		cmocka_unit_test(test_contract_example_absolute_set_file),
		cmocka_unit_test(test_contract_statements_alone),
		cmocka_unit_test(test_every_match_and_proto),
		cmocka_unit_test(test_settings),
		cmocka_unit_test(test_error_messages),
		cmocka_unit_test(test_all_errors_and_nothing_applied),
		cmocka_unit_test(test_same_number_other_direction),
		cmocka_unit_test(test_sets_forward_and_mixed),
		cmocka_unit_test(test_unclosed_brace_does_not_swallow),
		cmocka_unit_test(test_set_file_good),
		cmocka_unit_test(test_set_file_errors),
		cmocka_unit_test(test_set_file_ipv4_spellings),
		cmocka_unit_test(test_set_file_ipv6_spellings),
		cmocka_unit_test(test_set_file_unreadable),
		cmocka_unit_test(test_set_file_too_large),
		cmocka_unit_test(test_set_file_million),
		cmocka_unit_test(test_rules_file_unreadable),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_too_many_errors),
		cmocka_unit_test(test_empty_input),
		cmocka_unit_test(test_rule_format_exact),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_names_and_prefix_helpers),
		cmocka_unit_test(test_warnings),
		cmocka_unit_test(test_diags),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
