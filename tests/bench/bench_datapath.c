// SPDX-License-Identifier: GPL-2.0
/*
 * bench_datapath.c - what one packet costs in moat's datapath, and what
 * building and holding a rule set costs, on this machine.
 *
 * Every datapath figure comes from BPF_PROG_TEST_RUN on the real XDP
 * program (moat_xdp_ingress of a private, non-trace instance: counters and
 * conntrack are live, as on an interface), with a large `repeat` and the
 * best of several runs; the kernel reports the mean time per run. Each is
 * also given as a ratio to a bare XDP_PASS program (tests/bench/
 * xdp_pass.bpf.c) measured in the same process, so figures from different
 * machines compare. The bare figure is the lowest seen over the whole run
 * (it is re-measured between cases), which makes every ratio conservative.
 *
 * Cases:
 *   nacl.v4|v6.N.last   N NACL rules, a packet whose first match is the last
 *                       rule (checked against the reference matcher)
 *   nacl.v4|v6.N.none   N NACL rules, a packet that shares the last rule's
 *                       source prefix but matches no rule (default deny)
 *   set.v4|v6.miss|hit  10 NACL rules behind `nacl in 1 deny all src @big`,
 *                       big = 1,000,000 prefixes; packet outside / inside it
 *   sg.v4|v6.F.hit      SG: a packet of an established tracked flow, with
 *                       the conntrack table F = 10 % or 100 % full
 *   sg.v4|v6.F.drop     SG: an unsolicited packet (no entry, no rule)
 *   sg.v4|v6.F.new      SG: the first packet of a flow a rule allows (entry
 *                       creation; see sg_new_flow() for how it is measured)
 * Control plane: parse / compile / map-fill time per rule set, map memory
 * (memlock of the generation's inner maps and of the conntrack map, from
 * /proc/self/fdinfo), lint time on 4,096 rules.
 *
 * Output: one line per figure on stdout,
 *   case=NAME ns=NS ratio=R [key=value ...]       (datapath)
 *   metric=NAME value=V unit=U [key=value ...]    (control plane, memory)
 *   target=NAME value=V limit=L ok=yes|no         (the issues' targets)
 * and, with --md FILE, the same as Markdown tables.
 *
 * Also: --write-rules FILE writes the generated NACL rules (the same ones
 * measured here) as a rules file, for the veth benchmark and moat2nft.py.
 *
 * Needs root (BPF). Addresses: rules and packets use 198.18.0.0/15 and
 * fd00::/8; the 1M-prefix IPv4 set cannot fit in a /15, so it is drawn
 * from the whole unicast space (it is map data only, never on a wire).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cmd.h"
#include "addr_filter.h"
#include "compile.h"
#include "datapath.h"
#include "dp_load.h"
#include "generation.h"
#include "packet.h"
#include "reference.h"
#include "rules.h"
#if __has_include("lint.h")
#include "lint.h"
#define BENCH_HAVE_LINT 1
#endif
#include "moat.skel.h"

/* ---------------------------------------------------------------- config */

struct cfg {
	bool quick;
	unsigned repeat;    /* BPF_PROG_TEST_RUN repeat for the timed cases */
	int runs;	    /* best of */
	size_t sizes[8];
	size_t nsizes;
	size_t big;	    /* prefixes in the big set (0: skip) */
	size_t new_flows;   /* distinct packets for the entry-creation case */
	int lint_timeout_s;
	const char *md;
	const char *bare_obj;
	const char *tmpdir;
	const char *only;   /* comma list of sections: nacl,set,sg,ctl */
	const char *kinds;  /* comma list of NACL rule-set kinds: v4,v4shared,v6 */
	uint64_t seed;
};

static struct cfg cfg = {
	.repeat = 1000000,
	.runs = 5,
	.sizes = { 10, 100, 1000, 4096, 16384 },
	.nsizes = 5,
	.big = 1000000,
	.new_flows = 20000,
	.lint_timeout_s = 120,
	.bare_obj = "build/bench/xdp_pass.bpf.o",
	.seed = 0x6d6f6174,
};

static bool in_list(const char *list, const char *name)
{
	const char *p;
	size_t n = strlen(name);

	if (!list)
		return true;
	for (p = list; p && *p;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);

		if (len == n && !strncmp(p, name, n))
			return true;
		p = c ? c + 1 : NULL;
	}
	return false;
}

static bool section_on(const char *name)
{
	return in_list(cfg.only, name);
}

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "bench_datapath: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "# ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* --------------------------------------------------------------- results */

struct result {
	char name[64];
	double ns;
	char extra[160];
};

struct metric {
	char name[64];
	double value;
	char unit[16];
	char extra[160];
};

static struct result results[128];
static size_t nresults;
static struct metric metrics[128];
static size_t nmetrics;

static void add_result(const char *name, double ns, const char *fmt, ...)
{
	struct result *r;
	va_list ap;

	if (nresults >= sizeof(results) / sizeof(results[0]))
		return;
	r = &results[nresults++];
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->ns = ns;
	r->extra[0] = 0;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(r->extra, sizeof(r->extra), fmt, ap);
		va_end(ap);
	}
	note("%-28s %8.1f ns  %s", name, ns, r->extra);
}

static void add_metric(const char *name, double value, const char *unit, const char *fmt, ...)
{
	struct metric *m;
	va_list ap;

	if (nmetrics >= sizeof(metrics) / sizeof(metrics[0]))
		return;
	m = &metrics[nmetrics++];
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->value = value;
	snprintf(m->unit, sizeof(m->unit), "%s", unit);
	m->extra[0] = 0;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(m->extra, sizeof(m->extra), fmt, ap);
		va_end(ap);
	}
	note("%-28s %10.2f %s  %s", name, value, unit, m->extra);
}

static const struct result *find_result(const char *name)
{
	size_t i;

	for (i = 0; i < nresults; i++)
		if (!strcmp(results[i].name, name))
			return &results[i];
	return NULL;
}

static const struct metric *find_metric(const char *name)
{
	size_t i;

	for (i = 0; i < nmetrics; i++)
		if (!strcmp(metrics[i].name, name))
			return &metrics[i];
	return NULL;
}

/* ---------------------------------------------------------------- timing */

static int bare_fd = -1;
static double bare_best = 1e18;

/* One BPF_PROG_TEST_RUN: mean ns per run in @ns, XDP action in @ret. */
static int test_run(int fd, const void *frame, size_t len, unsigned repeat, double *ns,
		    __u32 *ret)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = len,
		    .repeat = repeat);

	if (bpf_prog_test_run_opts(fd, &o))
		return -errno;
	if (ns)
		*ns = o.duration;
	if (ret)
		*ret = o.retval;
	return 0;
}

/*
 * The mean cost per run, best of cfg.runs runs. BPF_PROG_TEST_RUN reports
 * whole nanoseconds per run; with repeat >= 1M the rounding is below the
 * noise, so the total is recomputed from the wall clock only as a check.
 */
static double best_of(int fd, const void *frame, size_t len, __u32 *ret)
{
	double best = 1e18, ns = 0;
	int i;

	for (i = 0; i < cfg.runs; i++) {
		if (test_run(fd, frame, len, cfg.repeat, &ns, ret))
			die("BPF_PROG_TEST_RUN: %s", strerror(errno));
		if (ns < best)
			best = ns;
	}
	return best;
}

static void bare_measure(const void *frame, size_t len)
{
	double ns = best_of(bare_fd, frame, len, NULL);

	if (ns < bare_best)
		bare_best = ns;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* --------------------------------------------------------------- packets */

static size_t frame_of(const char *spec, uint8_t *buf, size_t cap, struct packet *out)
{
	char err[256], *copy = strdup(spec), *argv[1] = { copy };
	struct packet p;
	int len;

	if (packet_parse(1, argv, &p, err, sizeof(err)))
		die("packet '%s': %s", spec, err);
	free(copy);
	len = packet_build_frame(&p, buf, cap);
	if (len < 0)
		die("packet '%s': frame does not fit", spec);
	if (out)
		*out = p;
	return len;
}

/* -------------------------------------------------------- rule generation */

/* splitmix64 */
static uint64_t rng_state;
static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t below(uint32_t n)
{
	return rng() % n;
}

/* IPv4 /24 pools in 198.18.0.0/15: .0.x is kept for the veth hosts, .255.x
 * (198.19.255.0/24) for destinations. 510 source /24s in between. */
#define V4_SRC_POOL 510
#define V4_BAND_PORTS 64
#define V4_BAND_BASE 1000
#define NONE_DPORT 999

struct gen_out {
	char last[128]; /* packet specs */
	char none[128];
	int last_number;
};

/* The kinds of generated rule set. */
enum gen_kind { GEN_V4 = 0, GEN_V4_SHARED, GEN_V6, GEN_NKINDS };
static const char *const gen_kind_name[GEN_NKINDS] = { "v4", "v4shared", "v6" };

static int gen_family(enum gen_kind k)
{
	return k == GEN_V6 ? 6 : 4;
}

/*
 * IPv4 source of rule @i of @n.
 * GEN_V4: distinct, disjoint prefixes; their length is what lets @n of them
 * fit: /24 up to 510 rules, /26 up to 2,040, /28 up to 8,160, else /30.
 * GEN_V4_SHARED: the 510 /24s, each reused by every 510th rule (with a
 * different destination port band), as when one subnet appears in many
 * rules of a long list.
 * Blocks are taken in a scrambled order, so address and position do not
 * correlate. With @host, the address .1 of the block instead.
 */
static void v4_src(enum gen_kind kind, size_t i, size_t n, char *buf, size_t len, bool host)
{
	unsigned plen = 24, nblocks, j;
	uint32_t a;

	if (kind == GEN_V4)
		plen = n <= 510 ? 24 : n <= 2040 ? 26 : n <= 8160 ? 28 : 30;
	nblocks = V4_SRC_POOL << (plen - 24);
	j = (unsigned)((i * 7919u + 13u) % nblocks);
	a = 0xc6120000u + 256 + (j << (32 - plen)); /* 198.18.1.0 onwards */
	if (host)
		a += 1;
	if (host)
		snprintf(buf, len, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
			 a & 255);
	else
		snprintf(buf, len, "%u.%u.%u.%u/%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
			 a & 255, plen);
}

static void v6_src64(uint64_t r, char *buf, size_t len, bool host)
{
	/* fdXX:XXXX:XXXX:XXXX::/64, XX... from 56 random bits */
	snprintf(buf, len, "fd%02x:%04x:%04x:%04x::%s", (unsigned)(r >> 48) & 0xff,
		 (unsigned)(r >> 32) & 0xffff, (unsigned)(r >> 16) & 0xffff, (unsigned)r & 0xffff,
		 host ? "77" : "/64");
}

static int rule_number(size_t i, size_t n, bool with_set)
{
	if (n * 10 <= RULE_NACL_NUMBER_MAX - 10)
		return 10 * (int)(i + 1);
	return (int)i + (with_set ? 2 : 1);
}

/*
 * Write @n NACL `in` rules of @family as rules text to @f: distinct source
 * prefixes (IPv4: /24s of 198.18.0.0/15, reused with disjoint destination
 * port bands once the 510 /24s run out; IPv6: distinct /64s of fd00::/8),
 * TCP 60 %, UDP 28 %, ICMP 7 %, all 5 %; single ports and ranges; some
 * `sport 1024-65535`; some destination prefixes; allow 60 % / deny 40 %.
 * The last rule is an allow for one TCP port; @g receives a packet whose
 * first match is that rule and one that matches nothing although it
 * shares the last rule's source prefix. With @set_file, a first rule
 * `nacl in 1 deny all src @big` over that file is added.
 */
static void gen_rules(FILE *f, enum gen_kind kind, size_t n, const char *set_file,
		      struct gen_out *g)
{
	char src[64], dst[64], last_host[64] = "";
	size_t i;
	bool v6 = kind == GEN_V6;
	uint64_t r6 = 0;
	int last_dport = 0;

	rng_state = cfg.seed ^ (n * 0x100000001b3ull) ^ (uint64_t)kind;
	fprintf(f, "# moat benchmark rule set: %zu NACL in rules, %s, seed %llu\n", n,
		gen_kind_name[kind], (unsigned long long)cfg.seed);
	if (set_file) {
		fprintf(f, "set big file %s\n", set_file);
		fprintf(f, "nacl in 1 deny all src @big\n");
	}
	for (i = 0; i < n; i++) {
		bool last = i + 1 == n;
		unsigned band = kind == GEN_V4_SHARED ? (unsigned)(i / V4_SRC_POOL) : below(64);
		unsigned plo = V4_BAND_BASE + band * V4_BAND_PORTS;
		unsigned k = below(100);
		const char *action = last || below(100) < 60 ? "allow" : "deny";
		char ports[64] = "", sport[32] = "", dstm[80] = "";

		if (v6) {
			r6 = rng();
			v6_src64(r6, src, sizeof(src), false);
			if (last)
				v6_src64(r6, last_host, sizeof(last_host), true);
		} else {
			v4_src(kind, i, n, src, sizeof(src), false);
			if (last)
				v4_src(kind, i, n, last_host, sizeof(last_host), true);
		}
		if (last)
			k = 0;
		if (k < 88) {
			/* tcp / udp with ports */
			const char *proto = k < 60 ? "tcp" : "udp";
			unsigned a = below(V4_BAND_PORTS), b;

			if (last) {
				a = 17;
				last_dport = plo + a;
				snprintf(ports, sizeof(ports), " dport %u", plo + a);
			} else if (below(100) < 70) {
				snprintf(ports, sizeof(ports), " dport %u", plo + a);
			} else {
				b = a + below(V4_BAND_PORTS - a);
				snprintf(ports, sizeof(ports), " dport %u-%u", plo + a, plo + b);
			}
			if (!last && below(100) < 15)
				snprintf(sport, sizeof(sport), " sport 1024-65535");
			if (!last && below(100) < 20) {
				bool cover = below(2);

				snprintf(dst, sizeof(dst), "%s",
					 v6 ? (cover ? "fd00:ffff::/32" : "fd00:fffd::/32") :
					      (cover ? "198.19.255.128/25" : "198.19.254.0/24"));
				snprintf(dstm, sizeof(dstm), " dst %s", dst);
			}
			fprintf(f, "nacl in %d %s %s src %s%s%s%s\n", rule_number(i, n, set_file),
				action, proto, src, dstm, sport, ports);
		} else if (k < 95) {
			static const char *const t4[] = { "8/0", "0", "3", "11/0" };
			static const char *const t6[] = { "128/0", "129", "1", "3/0" };

			fprintf(f, "nacl in %d %s %s src %s icmp %s\n", rule_number(i, n, set_file),
				action, v6 ? "icmpv6" : "icmp", src, (v6 ? t6 : t4)[below(4)]);
		} else {
			/* all protocols, to a destination the test packets avoid */
			fprintf(f, "nacl in %d %s all src %s dst %s\n", rule_number(i, n, set_file),
				action, src, v6 ? "fd00:fffe::/32" : "198.19.255.0/25");
		}
		if (last)
			g->last_number = rule_number(i, n, set_file);
	}
	if (v6) {
		snprintf(g->last, sizeof(g->last), "tcp [%s]:40000 > [fd00:ffff::200]:%d flags A",
			 last_host, last_dport);
		snprintf(g->none, sizeof(g->none), "tcp [%s]:40000 > [fd00:ffff::200]:%d flags A",
			 last_host, NONE_DPORT);
	} else {
		snprintf(g->last, sizeof(g->last), "tcp %s:40000 > 198.19.255.200:%d flags A",
			 last_host, last_dport);
		snprintf(g->none, sizeof(g->none), "tcp %s:40000 > 198.19.255.200:%d flags A",
			 last_host, NONE_DPORT);
	}
	fprintf(f, "# bench-packet last: %s\n", g->last);
	fprintf(f, "# bench-packet none: %s\n", g->none);
}

/*
 * @n distinct prefixes into @path, one a line. IPv4: 70 % /32, 25 % /24,
 * 5 % /16../23 over 1.0.0.0-223.255.255.255 (outside 198.18.0.0/15), plus
 * 198.19.250.0/24 so a test packet can hit the set. IPv6: /48 (50 %), /64
 * (40 %), /128 (10 %) in fd00::/8 outside the rules' test prefixes, plus
 * fd00:ffaa::/48.
 */
static void gen_set_file(const char *path, int family, size_t n)
{
	FILE *f = fopen(path, "w");
	/* distinctness: open addressing over (addr, len) */
	size_t cap = 1, made = 0;
	unsigned bits = 0;
	uint64_t *seen;

	if (!f)
		die("%s: %s", path, strerror(errno));
	while (cap < n * 2) {
		cap <<= 1;
		bits++;
	}
	seen = calloc(cap, sizeof(*seen));
	if (!seen)
		die("out of memory");
	rng_state = cfg.seed ^ 0xb10c ^ (uint64_t)family;
	fprintf(f, "# moat benchmark set: %zu IPv%d prefixes\n", n, family);
	if (family == 4)
		fprintf(f, "198.19.250.0/24\n");
	else
		fprintf(f, "fd00:ffaa::/48\n");
	made = 1;
	while (made < n) {
		uint64_t r = rng(), key, h;
		unsigned k = (unsigned)(r % 100), len;

		if (family == 4) {
			uint32_t a = (uint32_t)(r >> 32);
			unsigned top = a >> 24;

			if (top == 0 || top >= 224 || top == 10 || top == 127 ||
			    (a >> 17) == (0xc612u >> 1) /* 198.18.0.0/15 */)
				continue;
			len = k < 70 ? 32 : k < 95 ? 24 : 16 + (unsigned)((r >> 8) % 8);
			a &= len == 32 ? 0xffffffffu : ~((1u << (32 - len)) - 1);
			key = ((uint64_t)a << 8) | len;
		} else {
			/* fdXX:YYYY:ZZZZ, 40 random bits, then a random /64 or /128 */
			uint64_t p = (r >> 24) & 0xffffffffffull;

			len = k < 50 ? 48 : k < 90 ? 64 : 128;
			if ((p >> 32) == 0 && ((p >> 16) & 0xffff) >= 0xfffa)
				continue; /* keep fd00:fffa:: .. fd00:ffff:: for the rules */
			key = (p << 8) | len;
		}
		h = bits ? (key * 0x9e3779b97f4a7c15ull) >> (64 - bits) : 0;
		while (seen[h] && seen[h] != key + 1)
			h = (h + 1) & (cap - 1);
		if (seen[h])
			continue;
		seen[h] = key + 1;
		if (family == 4) {
			uint32_t a = (uint32_t)(key >> 8);

			fprintf(f, "%u.%u.%u.%u/%u\n", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
				a & 255, len);
		} else {
			uint64_t p = key >> 8; /* 40 bits: fdXX:YYYY:ZZZZ */
			uint64_t lo = rng();

			if (len == 48)
				fprintf(f, "fd%02x:%04x:%04x::/48\n", (unsigned)(p >> 32) & 0xff,
					(unsigned)(p >> 16) & 0xffff, (unsigned)p & 0xffff);
			else if (len == 64)
				fprintf(f, "fd%02x:%04x:%04x:%04x::/64\n", (unsigned)(p >> 32) & 0xff,
					(unsigned)(p >> 16) & 0xffff, (unsigned)p & 0xffff,
					(unsigned)(lo & 0xffff));
			else
				fprintf(f, "fd%02x:%04x:%04x:%04x:%x:%x:%x:%x/128\n",
					(unsigned)(p >> 32) & 0xff, (unsigned)(p >> 16) & 0xffff,
					(unsigned)p & 0xffff, (unsigned)(lo & 0xffff),
					(unsigned)(lo >> 16) & 0xffff, (unsigned)(lo >> 32) & 0xffff,
					(unsigned)(lo >> 48) & 0xffff, (unsigned)(r >> 56) + 1);
		}
		made++;
	}
	free(seen);
	if (fclose(f))
		die("%s: %s", path, strerror(errno));
}

struct parsed {
	struct ruleset rs;
	double parse_ms;
};

static void parse_text(const char *name, const char *text, size_t len, struct parsed *p)
{
	struct diags d;
	double t0 = now_ms();

	diags_init(&d);
	if (rules_parse_text(name, text, len, &p->rs, &d)) {
		diags_print(&d, stderr);
		die("generated rules do not parse");
	}
	p->parse_ms = now_ms() - t0;
	diags_free(&d);
}

/* Generate rules into memory and parse them. */
static void make_rules(enum gen_kind kind, size_t n, const char *set_file, struct gen_out *g,
		       struct parsed *p)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		die("open_memstream: %s", strerror(errno));
	gen_rules(f, kind, n, set_file, g);
	fclose(f);
	parse_text("bench.rules", text, len, p);
	free(text);
}

/* ------------------------------------------------------------ map memory */

static long long fd_memlock(int fd)
{
	char path[64], line[256];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* memlock of the inner maps of the generation in force (bytes). */
#define GEN_NINNER 11
static long long gen_memlock(struct moat_maps *m, long long per[GEN_NINNER])
{
	int outer[GEN_NINNER] = { m->gen_lpm4,	m->gen_lpm6, m->gen_l4,	  m->gen_vecs,
				  m->gen_words, m->gen_rules, m->gen_dir4, m->gen_addr_hash,
				  m->gen_words_more, m->gen_dir24, m->gen_addr_filter };
	struct moat_gen_config gc;
	unsigned gen;
	long long sum = 0;
	int i;

	if (gen_live(m, &gen, &gc))
		return -1;
	for (i = 0; i < GEN_NINNER; i++) {
		__u32 g = gen, id;
		int fd;

		per[i] = 0;
		if (bpf_map_lookup_elem(outer[i], &g, &id))
			continue;
		fd = bpf_map_get_fd_by_id(id);
		if (fd < 0)
			continue;
		per[i] = fd_memlock(fd);
		sum += per[i];
		close(fd);
	}
	return sum;
}

/* memlock of every inner map of both generation slots and of the shadows
 * (user/addr_sync.c): what the rules cost in all, the spare copies that
 * let a reload update in place included. */
static long long all_memlock(struct moat_maps *m)
{
	int outer[GEN_NINNER + 1] = { m->gen_lpm4,  m->gen_lpm6,  m->gen_l4,	  m->gen_vecs,
				      m->gen_words, m->gen_rules, m->gen_dir4,  m->gen_addr_hash,
				      m->gen_words_more, m->gen_dir24, m->gen_addr_filter,
				      m->gen_shadow };
	long long sum = 0;
	int i;
	__u32 slot;

	for (i = 0; i < GEN_NINNER + 1; i++) {
		for (slot = 0; slot < (i == GEN_NINNER ? MOAT_ADDR_KINDS : 2); slot++) {
			__u32 id;
			int fd;

			if (bpf_map_lookup_elem(outer[i], &slot, &id))
				continue;
			fd = bpf_map_get_fd_by_id(id);
			if (fd < 0)
				continue;
			sum += fd_memlock(fd);
			close(fd);
		}
	}
	return sum;
}

/* ------------------------------------------------------------ instances */

struct inst {
	struct moat_bpf *skel;
	struct moat_maps maps;
	int xdp, tc;
};

/*
 * A private, non-trace instance with a conntrack table of @ct_max entries
 * and @stat_slots rule counters (0: the object's default, as `moat attach`
 * makes it; gen_apply's time grows with it, see the report).
 */
static void inst_open_opts(struct inst *in, uint32_t ct_max, uint32_t stat_slots, bool nocache)
{
	struct dp_open_opts o = { .trace_mode = false, .load_progs = true, .ct_max = ct_max,
				  .stat_slots = stat_slots, .no_decision_cache = nocache };
	char err[256];

	if (dp_skel_open(&in->skel, &o, err, sizeof(err)))
		die("%s", err);
	if (dp_maps_from_skel(in->skel, &in->maps))
		die("map fds");
	in->xdp = bpf_program__fd(in->skel->progs.moat_xdp_ingress);
	in->tc = bpf_program__fd(in->skel->progs.moat_tc_egress);
}

static void inst_open(struct inst *in, uint32_t ct_max, uint32_t stat_slots)
{
	inst_open_opts(in, ct_max, stat_slots, false);
}

static void inst_close(struct inst *in)
{
	moat_maps_close(&in->maps);
	moat_bpf__destroy(in->skel);
	/* The kernel frees the maps (megabytes of arrays, tries) in the
	 * background; let it finish before the next case is timed, or that
	 * work on the other CPU shows up in the next figure. */
	usleep(750 * 1000);
}

static void inst_apply(struct inst *in, const struct ruleset *rs, struct gen_apply_info *info)
{
	struct diags d;

	diags_init(&d);
	if (gen_apply(&in->maps, rs, &d, info)) {
		diags_print(&d, stderr);
		die("applying the rule set failed");
	}
	diags_free(&d);
}

static void dir_counters(struct inst *in, struct moat_dir_counters *sum)
{
	int ncpu = libbpf_num_possible_cpus(), i;
	struct moat_dir_counters *v = calloc(ncpu, sizeof(*v));
	__u32 key = MOAT_DIR_IN;

	memset(sum, 0, sizeof(*sum));
	if (!v || bpf_map_lookup_elem(in->maps.counters, &key, v))
		die("reading counters");
	for (i = 0; i < ncpu; i++) {
		const __u64 *a = (const __u64 *)&v[i];
		__u64 *s = (__u64 *)sum;
		size_t k;

		for (k = 0; k < sizeof(*sum) / 8; k++)
			s[k] += a[k];
	}
	free(v);
}

/* ----------------------------------------------------------- NACL cases */

/* The datapath's verdict must be the reference matcher's. */
static void check_packet(const struct ruleset *rs, const char *spec, int want_number)
{
	uint8_t frame[256];
	struct packet p;
	const struct rule *w = NULL;

	frame_of(spec, frame, sizeof(frame), &p);
	reference_nacl(rs, RULE_DIR_IN, &p, &w);
	if ((want_number < 0 && w) || (want_number >= 0 && (!w || w->number != want_number)))
		die("generator bug: packet '%s' decided by rule %d, want %d", spec,
		    w ? w->number : -1, want_number);
}

static void apply_metrics(const char *what, const struct parsed *p,
			  const struct gen_apply_info *ai, double apply_ms)
{
	char name[64];

	snprintf(name, sizeof(name), "ctl.%s.parse", what);
	add_metric(name, p->parse_ms, "ms", NULL);
	snprintf(name, sizeof(name), "ctl.%s.compile", what);
	add_metric(name, ai->compile_ms, "ms", NULL);
	snprintf(name, sizeof(name), "ctl.%s.load", what);
	add_metric(name, ai->load_ms, "ms", "fill maps + switch");
	snprintf(name, sizeof(name), "ctl.%s.apply", what);
	add_metric(name, apply_ms, "ms", "compile + load + switch (gen_apply)");
}

static void time_case(struct inst *in, const char *name, const char *spec, __u32 want,
		      const char *what)
{
	uint8_t frame[256];
	size_t len = frame_of(spec, frame, sizeof(frame), NULL);
	__u32 ret = 0;
	double ns;

	bare_measure(frame, len);
	ns = best_of(in->xdp, frame, len, &ret);
	if (ret != want && !getenv("NOCHECK"))
		die("%s: XDP action %u, want %u", name, ret, want);
	add_result(name, ns, "%s verdict=%s", what, ret == XDP_PASS ? "pass" : "drop");
}

static void mem_metrics(struct inst *in, const char *what, size_t nrules)
{
	long long per[GEN_NINNER], sum = gen_memlock(&in->maps, per);
	char name[64];

	snprintf(name, sizeof(name), "mem.%s", what);
	add_metric(name, (double)sum, "B",
		   "rules=%zu lpm4=%lld lpm6=%lld l4=%lld vecs=%lld words=%lld rules_map=%lld "
		   "dir4=%lld addr_hash=%lld addr_filter=%lld",
		   nrules, per[0], per[1], per[2], per[3], per[4] + per[8], per[5], per[6] + per[9], per[7],
		   per[10]);
}

/*
 * How much of the rule list the classifier must walk for @p: the words
 * (64 rules each) in which every one of the five fields has at least one
 * accepting rule (what the summary AND leaves), and how many of them come
 * before the winner's word, inclusive (what the walk visits). Computed
 * from the rules, field by field, as the compiler sees them; for the
 * report only.
 */
static bool addr_field(const struct ruleset *rs, const struct rule_addr *a, int fam,
		       const uint8_t *addr)
{
	size_t k;

	if (a->kind == RULE_ADDR_ANY)
		return true;
	if (a->kind == RULE_ADDR_PREFIX)
		return a->prefix.family == fam && rule_prefix_contains(&a->prefix, addr);
	for (k = 0; k < rs->sets[a->set].n; k++) {
		const struct rule_prefix *q = &rs->sets[a->set].prefixes[k];

		if (q->family == fam && rule_prefix_contains(q, addr))
			return true;
	}
	return false;
}

static void walk_words(const struct ruleset *rs, const struct packet *p, size_t *cand,
		       size_t *visited)
{
	const struct rule **order = calloc(rs->nrules + 1, sizeof(*order));
	size_t n, i, nw;
	uint8_t *f;
	const struct rule *w = NULL;
	long wpos = -1;

	n = compile_table_order(rs, RULE_STAGE_NACL, RULE_DIR_IN, order);
	nw = (n + 63) / 64;
	f = calloc(nw * 5, 1);
	reference_nacl(rs, RULE_DIR_IN, p, &w);
	for (i = 0; i < n; i++) {
		const struct rule *r = order[i];
		bool ports = p->proto == 6 || p->proto == 17;
		bool icmp = p->proto == 1 || p->proto == 58;

		if (r == w)
			wpos = (long)i;
		if (r->family && r->family != p->family)
			continue;
		if (addr_field(rs, &r->src, p->family, p->src))
			f[(i / 64) * 5 + 0] = 1;
		if (addr_field(rs, &r->dst, p->family, p->dst))
			f[(i / 64) * 5 + 1] = 1;
		if ((r->proto == RULE_PROTO_ALL || r->proto == p->proto) &&
		    (!r->established || (p->tcp_flags & (PKT_TCP_ACK | PKT_TCP_RST))))
			f[(i / 64) * 5 + 2] = 1;
		if ((!r->sport.set && !r->has_icmp) ||
		    (r->sport.set && ports && p->sport >= r->sport.lo && p->sport <= r->sport.hi) ||
		    (r->has_icmp && icmp && p->icmp_type == r->icmp_type))
			f[(i / 64) * 5 + 3] = 1;
		if ((!r->dport.set && !r->has_icmp) ||
		    (r->dport.set && ports && p->dport >= r->dport.lo && p->dport <= r->dport.hi) ||
		    (r->has_icmp && icmp && (r->icmp_code < 0 || p->icmp_code == r->icmp_code)))
			f[(i / 64) * 5 + 4] = 1;
	}
	*cand = *visited = 0;
	for (i = 0; i < nw; i++) {
		uint8_t *x = &f[i * 5];

		if (x[0] && x[1] && x[2] && x[3] && x[4]) {
			(*cand)++;
			if (wpos < 0 || (long)i <= wpos / 64)
				(*visited)++;
		}
	}
	free(f);
	free(order);
}

/*
 * A packet with more than one candidate word is answered from the decision
 * cache once decided (the timed loop repeats one packet, so it measures
 * the cached answer). One whose winner is not in the lowest candidate word
 * is decided by walking the candidates; such cases are timed a second time
 * (".walk") on an instance without the cache, which is what the first
 * packet of each new combination of field vectors costs.
 */
static void time_nacl_case(struct inst *in, const struct ruleset *rs, const char *name,
			   const char *spec, __u32 want)
{
	char extra[96], walk_name[80];
	struct packet p;
	uint8_t frame[256];
	size_t cand, visited;
	struct gen_apply_info ai;
	struct inst nc;

	frame_of(spec, frame, sizeof(frame), &p);
	walk_words(rs, &p, &cand, &visited);
	snprintf(extra, sizeof(extra), "candidate_words=%zu walked=%zu%s", cand, visited,
		 cand > 1 ? " (decision cache)" : "");
	time_case(in, name, spec, want, extra);
	if (visited <= 1)
		return;
	inst_open_opts(&nc, 4096, 2 * rs->nrules + 64, true);
	inst_apply(&nc, rs, &ai);
	snprintf(walk_name, sizeof(walk_name), "%s.walk", name);
	snprintf(extra, sizeof(extra), "candidate_words=%zu walked=%zu (no decision cache)", cand,
		 visited);
	time_case(&nc, walk_name, spec, want, extra);
	inst_close(&nc);
}

/* A case to run again in turns with others: its instance, packet and the
 * result it lowers. */
struct turn_case {
	struct inst *in;
	const char *spec;
	char name[64];
};

/*
 * Some targets compare two cases measured minutes apart, which would also
 * differ by how loaded the machine was in between. Once both are loaded,
 * their packets run again in turns, as many runs each, and every case keeps
 * its best run overall.
 */
static void remeasure_in_turns(struct turn_case *tc, size_t n)
{
	uint8_t frame[8][256];
	size_t len[8], i;
	double best[8];
	int r;

	if (n > 8)
		die("remeasure_in_turns: %zu cases", n);
	for (i = 0; i < n; i++) {
		len[i] = frame_of(tc[i].spec, frame[i], sizeof(frame[i]), NULL);
		best[i] = 1e18;
	}
	for (r = 0; r < cfg.runs; r++)
		for (i = 0; i < n; i++) {
			double ns = 1e18;

			if (test_run(tc[i].in->xdp, frame[i], len[i], cfg.repeat, &ns, NULL))
				die("BPF_PROG_TEST_RUN: %s", strerror(errno));
			if (ns < best[i])
				best[i] = ns;
		}
	for (i = 0; i < n; i++) {
		size_t x;

		for (x = 0; x < nresults; x++)
			if (!strcmp(results[x].name, tc[i].name) && best[i] < results[x].ns)
				results[x].ns = best[i];
	}
}

static void bench_nacl(void)
{
	size_t s, n0 = cfg.sizes[0], n1 = cfg.sizes[cfg.nsizes - 1];
	int k;

	for (k = 0; k < GEN_NKINDS; k++) {
		long long mem0 = 0, mem1 = 0;
		size_t data0 = 0, data1 = 0;
		struct parsed p0 = { 0 };
		struct gen_out g0 = { 0 };
		struct inst in0;

		if (!in_list(cfg.kinds, gen_kind_name[k]))
			continue;
		for (s = 0; s < cfg.nsizes; s++) {
			size_t n = cfg.sizes[s];
			struct gen_out g;
			struct parsed p;
			struct gen_apply_info ai;
			struct inst in;
			long long per[GEN_NINNER], mem;
			char name[64];

			make_rules(k, n, NULL, &g, &p);
			check_packet(&p.rs, g.last, g.last_number);
			check_packet(&p.rs, g.none, -1);
			inst_open(&in, 4096, 2 * n + 64);
			inst_apply(&in, &p.rs, &ai);
			mem = gen_memlock(&in.maps, per);
			if (s == 0) {
				mem0 = mem;
				data0 = ai.map_bytes;
			}
			if (s == cfg.nsizes - 1) {
				mem1 = mem;
				data1 = ai.map_bytes;
			}
			snprintf(name, sizeof(name), "ctl.nacl.%s.%zu.parse+compile", gen_kind_name[k],
				 n);
			add_metric(name, p.parse_ms + ai.compile_ms, "ms", "parse %.1f + compile %.1f",
				   p.parse_ms, ai.compile_ms);
			snprintf(name, sizeof(name), "mem.nacl.%s.%zu", gen_kind_name[k], n);
			add_metric(name, (double)mem, "B",
				   "lpm4=%lld lpm6=%lld l4=%lld vecs=%lld words=%lld rules=%lld dir4=%lld "
				   "addr_hash=%lld addr_filter=%lld",
				   per[0], per[1], per[2], per[3], per[4] + per[8], per[5], per[6] + per[9],
				   per[7], per[10]);

			snprintf(name, sizeof(name), "nacl.%s.%zu.last", gen_kind_name[k], n);
			time_nacl_case(&in, &p.rs, name, g.last, XDP_PASS);
			snprintf(name, sizeof(name), "nacl.%s.%zu.none", gen_kind_name[k], n);
			time_nacl_case(&in, &p.rs, name, g.none, XDP_DROP);
			if (s == 0 && cfg.nsizes > 1) {
				/* kept for remeasure_in_turns */
				in0 = in;
				p0 = p;
				g0 = g;
				continue;
			}
			if (s == cfg.nsizes - 1 && cfg.nsizes > 1) {
				/* the targets' ratio: largest size / smallest */
				struct turn_case tc[4] = { { .in = &in0, .spec = g0.last },
							   { .in = &in0, .spec = g0.none },
							   { .in = &in, .spec = g.last },
							   { .in = &in, .spec = g.none } };

				snprintf(tc[0].name, 64, "nacl.%s.%zu.last", gen_kind_name[k], n0);
				snprintf(tc[1].name, 64, "nacl.%s.%zu.none", gen_kind_name[k], n0);
				snprintf(tc[2].name, 64, "nacl.%s.%zu.last", gen_kind_name[k], n);
				snprintf(tc[3].name, 64, "nacl.%s.%zu.none", gen_kind_name[k], n);
				remeasure_in_turns(tc, 4);
				inst_close(&in0);
				ruleset_free(&p0.rs);
			}
			inst_close(&in);
			ruleset_free(&p.rs);
		}
		if (n1 > n0) {
			char name[64];

			snprintf(name, sizeof(name), "mem.per_rule.%s", gen_kind_name[k]);
			add_metric(name, (double)(mem1 - mem0) / (double)(n1 - n0), "B",
				   "(memlock at %zu rules - at %zu) / %zu; most arrays have a "
				   "fixed size (mem.generation)", n1, n0, n1 - n0);
			snprintf(name, sizeof(name), "mem.per_rule_data.%s", gen_kind_name[k]);
			add_metric(name, (double)(data1 - data0) / (double)(n1 - n0), "B",
				   "bytes of map data a rule fills, fixed-size arrays included "
				   "(at %zu rules - at %zu) / %zu", n1, n0, n1 - n0);
			snprintf(name, sizeof(name), "mem.generation.%s", gen_kind_name[k]);
			add_metric(name, (double)mem0, "B",
				   "memlock of one generation's maps at %zu rules", n0);
		}
	}
}

/* ------------------------------------------------------------ big sets */

static void bench_set(void)
{
	static const enum gen_kind kinds[2] = { GEN_V4, GEN_V6 };
	int fi;

	for (fi = 0; fi < 2; fi++) {
		enum gen_kind kind = kinds[fi];
		int fam = gen_family(kind);
		char path[512], name[96], what[64];
		const char *spec, *hit;
		struct gen_out g, g10;
		struct parsed p, p10;
		struct gen_apply_info ai;
		struct inst in, in10;
		double t0;
		long long per[GEN_NINNER], base, base_all;

		snprintf(path, sizeof(path), "%s/big%d.txt", cfg.tmpdir, fam);
		t0 = now_ms();
		gen_set_file(path, fam, cfg.big);
		note("generated %zu IPv%d prefixes in %.0f ms", cfg.big, fam, now_ms() - t0);

		/* the same 10 rules without the set: the memory baseline, and
		 * the other side of the target's difference */
		make_rules(kind, 10, NULL, &g10, &p10);
		inst_open(&in10, 4096, 256);
		inst_apply(&in10, &p10.rs, &ai);
		base = gen_memlock(&in10.maps, per);
		base_all = all_memlock(&in10.maps);

		make_rules(kind, 10, path, &g, &p);
		check_packet(&p.rs, g.last, g.last_number);
		/* as `moat attach` makes it (default counter map), but --quick */
		inst_open(&in, 4096, cfg.quick ? 256 : 0);
		t0 = now_ms();
		inst_apply(&in, &p.rs, &ai);
		snprintf(what, sizeof(what), "set%zu.v%d", cfg.big, fam);
		apply_metrics(what, &p, &ai, now_ms() - t0);
		mem_metrics(&in, what, 11);
		{
			long long sum = gen_memlock(&in.maps, per);

			snprintf(name, sizeof(name), "mem.per_prefix.v%d", fam);
			add_metric(name, (double)(sum - base) / (double)cfg.big, "B",
				   "(memlock with the set - without) / prefixes, generation in force");
			sum = all_memlock(&in.maps);
			snprintf(name, sizeof(name), "mem.per_prefix_all.v%d", fam);
			add_metric(name, (double)(sum - base_all) / (double)cfg.big, "B",
				   "the same over both generations (and the tries' shadow) "
				   "(what a reload updates in place)");
		}
		/* reload of the same rule set onto the live instance */
		t0 = now_ms();
		inst_apply(&in, &p.rs, &ai);
		snprintf(name, sizeof(name), "ctl.%s.reload", what);
		add_metric(name, now_ms() - t0, "ms", "gen_apply onto the live instance");

		snprintf(name, sizeof(name), "set.v%d.miss", fam);
		time_case(&in, name, g.last, XDP_PASS, "packet outside the set, first match = last rule");
		hit = fam == 4 ? "tcp 198.19.250.7:40000 > 198.19.255.200:80 flags A" :
				 "tcp [fd00:ffaa::7]:40000 > [fd00:ffff::200]:80 flags A";
		snprintf(name, sizeof(name), "set.v%d.hit", fam);
		time_case(&in, name, hit, XDP_DROP, "packet inside the set: deny by rule 1");
		/* a source in no prefix of the field, as most of the traffic a
		 * block list sees (198.18.0.0/24 and fd00:fffa::/32 are kept out
		 * of the rules and the set) */
		spec = fam == 4 ? "tcp 198.18.0.77:40000 > 198.19.255.200:80 flags A" :
				  "tcp [fd00:fffa::7]:40000 > [fd00:ffff::200]:80 flags A";
		check_packet(&p.rs, spec, -1);
		snprintf(name, sizeof(name), "set.v%d.outside", fam);
		time_case(&in, name, spec, XDP_DROP,
			  "source in no prefix of the field (set or rule): implicit deny");
		if (cfg.nsizes && cfg.sizes[0] == 10) {
			/* the target: set.miss - nacl.10.last */
			struct turn_case tc[2] = { { .in = &in10, .spec = g10.last },
						   { .in = &in, .spec = g.last } };

			snprintf(tc[0].name, 64, "nacl.%s.10.last", gen_kind_name[kind]);
			snprintf(tc[1].name, 64, "set.v%d.miss", fam);
			remeasure_in_turns(tc, 2);
		}
		if (fam == 6) {
			/* the same rules in an instance without the IPv6 address
			 * filter: what it saves (a hash lookup per length it
			 * rules out); with and without then run in turns */
			struct inst nf;
			struct turn_case tc[4] = {
				{ .in = &in, .spec = hit, .name = "set.v6.hit" },
				{ .in = &nf, .spec = hit, .name = "set.v6.hit.nofilter" },
				{ .in = &in, .spec = spec, .name = "set.v6.outside" },
				{ .in = &nf, .spec = spec, .name = "set.v6.outside.nofilter" },
			};

			inst_open(&nf, 4096, 256);
			addr_filter_off = true;
			inst_apply(&nf, &p.rs, &ai);
			addr_filter_off = false;
			time_case(&nf, tc[1].name, hit, XDP_DROP, "set.v6.hit without the address filter");
			time_case(&nf, tc[3].name, spec, XDP_DROP,
				  "set.v6.outside without the address filter");
			remeasure_in_turns(tc, 4);
			inst_close(&nf);
		}
		inst_close(&in10);
		ruleset_free(&p10.rs);
		t0 = now_ms();
		inst_close(&in);
		snprintf(name, sizeof(name), "ctl.%s.free", what);
		add_metric(name, now_ms() - t0, "ms", "closing the instance (maps freed async)");
		ruleset_free(&p.rs);
		unlink(path);
	}
}

/*
 * Attach-like first apply and reload of the largest rule set, alone and
 * with a rule over the big set (issue 7: reload < 1 s), on an instance
 * made as `moat attach` makes it (default counter map).
 */
static void bench_ctl_apply(void)
{
	char path[512];
	size_t n = cfg.sizes[cfg.nsizes - 1];
	int with_set;

	snprintf(path, sizeof(path), "%s/big4.txt", cfg.tmpdir);
	for (with_set = 0; with_set < 2; with_set++) {
		struct gen_out g;
		struct parsed p;
		struct gen_apply_info ai;
		struct inst in;
		char what[64], name[96];
		double t0;

		if (with_set && !cfg.big)
			break;
		if (with_set) {
			gen_set_file(path, 4, cfg.big);
			snprintf(what, sizeof(what), "nacl%zu+set%zu.v4", n, cfg.big);
		} else {
			snprintf(what, sizeof(what), "nacl%zu.v4", n);
		}
		/* the set rule counts: 16,384 rules in all, the most a table holds */
		make_rules(GEN_V4, with_set && n >= MOAT_MAX_RULES ? n - 1 : n,
			   with_set ? path : NULL, &g, &p);
		inst_open(&in, 0, 0);
		t0 = now_ms();
		inst_apply(&in, &p.rs, &ai);
		apply_metrics(what, &p, &ai, now_ms() - t0);
		t0 = now_ms();
		inst_apply(&in, &p.rs, &ai);
		snprintf(name, sizeof(name), "ctl.%s.reload", what);
		add_metric(name, now_ms() - t0, "ms",
			   "gen_apply onto the live instance (compile %.0f + load %.0f)",
			   ai.compile_ms, ai.load_ms);
		mem_metrics(&in, what, n);
		inst_close(&in);
		ruleset_free(&p.rs);
		if (with_set)
			unlink(path);
	}
}

/* ------------------------------------------------------------- SG cases */

static const char sg_rules[] =
	"# SG benchmark: tracked rules only (no allow-all pair)\n"
	"set conntrack max 262144\n"
	"set admins { 198.18.200.0/24, 198.19.7.0/24, fd00:ad::/48 }\n"
	"sg in allow tcp dport 443 src 198.18.0.0/15\n"
	"sg in allow tcp dport 443 src fd00::/8\n"
	"sg in allow tcp dport 80 src 198.18.0.0/15\n"
	"sg in allow tcp dport 22 src @admins\n"
	"sg in allow udp dport 53 src 198.18.0.0/15\n"
	"sg in allow udp dport 53 src fd00::/8\n"
	"sg in allow icmp src 198.18.0.0/15 icmp 8/0\n"
	"sg in allow icmpv6 src fd00::/8 icmp 128/0\n"
	"sg out allow tcp dport 443 dst 198.18.0.0/15\n"
	"sg out allow udp dport 53 dst 198.18.0.0/15\n"
	"sg out allow tcp dport 5432 dst fd00:db::/64\n";

static uint32_t map_max_entries(int fd)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.max_entries;
}

/*
 * Fill a connection table with @n synthetic TCP/UDP entries: established
 * ones for `conntrack`, half-open ones (@pending) for `ct_pending`.
 */
static size_t ct_fill(int fd, size_t n, bool pending)
{
	const size_t chunk = 8192;
	struct moat_ct_key *keys = calloc(chunk, sizeof(*keys));
	struct moat_ct_value *vals = calloc(chunk, sizeof(*vals));
	struct timespec ts;
	size_t done = 0, i;
	__u64 now;

	if (!keys || !vals)
		die("out of memory");
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	rng_state = cfg.seed ^ (pending ? 0x9e : 0xc7);
	while (done < n) {
		__u32 cnt = n - done < chunk ? n - done : chunk;

		for (i = 0; i < cnt; i++) {
			struct moat_ct_key *k = &keys[i];
			struct moat_ct_value *v = &vals[i];
			uint64_t r = rng(), r2 = rng();

			memset(k, 0, sizeof(*k));
			memset(v, 0, sizeof(*v));
			k->family = (r & 1) ? 6 : 4;
			k->proto = (r & 2) ? 17 : 6;
			k->port_lo = htons(1024 + (r >> 8) % 60000);
			k->port_hi = htons((r & 4) ? 443 : 53);
			if (k->family == 4) {
				/* 198.18.0.0/15 peers and hosts, canonical order ignored:
				 * only the load of the table matters here */
				uint32_t a = htonl(0xc6120000u | ((r >> 24) & 0x1ffff));
				uint32_t b = htonl(0xc6120000u | ((r2 >> 5) & 0x1ffff));

				memcpy(k->addr_lo, &a, 4);
				memcpy(k->addr_hi, &b, 4);
			} else {
				k->addr_lo[0] = 0xfd;
				memcpy(k->addr_lo + 8, &r2, 8);
				k->addr_hi[0] = 0xfd;
				k->addr_hi[1] = 0x01;
				memcpy(k->addr_hi + 8, &r, 8);
			}
			v->created_ns = now;
			v->last_ns = now;
			if (pending) {
				v->timeout_s = 120;
				v->state = k->proto == 6 ? MOAT_CT_SYN_SENT : MOAT_CT_NEW;
				v->flags = MOAT_CT_F_ORIG_LO | MOAT_CT_F_SEEN_LO;
				v->packets[0] = 1;
			} else {
				v->timeout_s = 432000;
				v->state = MOAT_CT_ESTABLISHED;
				v->flags = MOAT_CT_F_ORIG_LO | MOAT_CT_F_SEEN_LO | MOAT_CT_F_SEEN_HI;
				v->packets[0] = v->packets[1] = 1;
			}
		}
		if (bpf_map_update_batch(fd, keys, vals, &cnt, NULL)) {
			for (i = 0; i < cnt; i++)
				if (bpf_map_update_elem(fd, &keys[i], &vals[i], BPF_ANY))
					die("conntrack fill: %s", strerror(errno));
		}
		done += cnt;
	}
	free(keys);
	free(vals);
	return done;
}

static size_t ct_count(int fd)
{
	struct moat_ct_key k, next;
	size_t n = 0;
	void *prev = NULL;

	if (fd < 0)
		return 0;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		k = next;
		prev = &k;
		n++;
	}
	return n;
}

/*
 * Entry creation. BPF_PROG_TEST_RUN repeats one packet, so only its first
 * run would create an entry. Instead @nflows distinct first packets (SYNs;
 * the source port varies) each run once (repeat = 1), and the kernel's own
 * duration of that one run is read. A single run carries the timer's fixed
 * overhead and starts with colder caches than a repeated one, so the same
 * is done, interleaved, for the ACK of the established flow (@ack: a
 * conntrack hit) and for the bare program; the creating packet is then
 *   sg.hit (repeat mode) + median(SYN, repeat 1) - median(ACK, repeat 1)
 * i.e. the hit figure plus what creating costs more than hitting.
 * With @keep_level the entries made are deleted again (untimed) every
 * 1,000 packets, so the table stays at its fill level; at 100 % every
 * creation evicts an entry (LRU).
 */
struct newflow {
	double new_r1, hit_r1, bare_r1; /* medians, ns */
	__u64 created;
};

static void sg_new_flow(struct inst *in, int fam, size_t nflows, bool keep_level,
			const uint8_t *ack, size_t ack_len, struct newflow *o)
{
	double *m = calloc(nflows, sizeof(double)), *b = calloc(nflows, sizeof(double));
	double *h = calloc(nflows, sizeof(double));
	struct moat_dir_counters c0, c1;
	uint8_t frame[256];
	size_t i, len = 0, batch0 = 0;
	__u32 ret = 0;

	if (!m || !b || !h)
		die("out of memory");
	dir_counters(in, &c0);
	for (i = 0; i < nflows; i++) {
		char spec[128];
		unsigned host = 1 + (unsigned)(i / 50000), port = 1024 + (unsigned)(i % 50000);

		if (fam == 4)
			snprintf(spec, sizeof(spec),
				 "tcp 198.18.%u.%u:%u > 198.19.0.1:443 flags S", 100 + host / 250,
				 host % 250 + 1, port);
		else
			snprintf(spec, sizeof(spec),
				 "tcp [fd00:5::%x]:%u > [fd00:1::1]:443 flags S", host, port);
		len = frame_of(spec, frame, sizeof(frame), NULL);
		if (test_run(bare_fd, frame, len, 1, &b[i], NULL) ||
		    test_run(in->xdp, frame, len, 1, &m[i], &ret))
			die("test run: %s", strerror(errno));
		if (ret != XDP_PASS)
			die("sg new flow: dropped");
		if (test_run(in->xdp, ack, ack_len, 1, &h[i], &ret) || ret != XDP_PASS)
			die("sg hit (repeat 1): %s", strerror(errno));
		if (keep_level && (i + 1 - batch0 == 1000 || i + 1 == nflows)) {
			/* delete the entries just made: rebuild their keys */
			size_t j;

			for (j = batch0; j <= i; j++) {
				struct moat_ct_key k;
				unsigned h = 1 + (unsigned)(j / 50000), pt = 1024 + (unsigned)(j % 50000);

				memset(&k, 0, sizeof(k));
				k.family = fam;
				k.proto = 6;
				if (fam == 4) {
					uint8_t s[4] = { 198, 18, (uint8_t)(100 + h / 250),
							 (uint8_t)(h % 250 + 1) };
					uint8_t d[4] = { 198, 19, 0, 1 };

					/* lower endpoint first: 198.18.x < 198.19.0.1 */
					memcpy(k.addr_lo, s, 4);
					memcpy(k.addr_hi, d, 4);
					k.port_lo = htons(pt);
					k.port_hi = htons(443);
				} else {
					struct in6_addr s, d;
					char a[64];

					snprintf(a, sizeof(a), "fd00:5::%x", h);
					inet_pton(AF_INET6, a, &s);
					inet_pton(AF_INET6, "fd00:1::1", &d);
					/* fd00:1:: < fd00:5:: */
					memcpy(k.addr_lo, &d, 16);
					memcpy(k.addr_hi, &s, 16);
					k.port_lo = htons(443);
					k.port_hi = htons(pt);
				}
				bpf_map_delete_elem(in->maps.conntrack, &k);
				bpf_map_delete_elem(in->maps.ct_pending, &k);
			}
			batch0 = i + 1;
		}
	}
	dir_counters(in, &c1);
	o->created = c1.ct_created - c0.ct_created;
	qsort(m, nflows, sizeof(double), cmp_double);
	qsort(b, nflows, sizeof(double), cmp_double);
	qsort(h, nflows, sizeof(double), cmp_double);
	o->new_r1 = m[nflows / 2];
	o->bare_r1 = b[nflows / 2];
	o->hit_r1 = h[nflows / 2];
	free(m);
	free(b);
	free(h);
}

static void bench_sg(void)
{
	static const int levels[2] = { 10, 100 };
	struct parsed p;
	int li, fi;

	parse_text("sg.rules", sg_rules, strlen(sg_rules), &p);
	for (li = 0; li < 2; li++) {
		/* --quick: a smaller table, filled faster */
		uint32_t ct_max = cfg.quick ? 65536 : p.rs.settings.ct_max;
		size_t fill = (size_t)ct_max * levels[li] / 100, have;
		uint32_t pend_max;
		struct gen_apply_info ai;
		struct inst in;
		char name[64];
		double t0;

		inst_open(&in, ct_max, 256);
		inst_apply(&in, &p.rs, &ai);
		pend_max = map_max_entries(in.maps.ct_pending);
		if (li == 0) {
			long long ctm = fd_memlock(in.maps.conntrack);
			long long pm = in.maps.ct_pending >= 0 ? fd_memlock(in.maps.ct_pending) : 0;

			add_metric("mem.conntrack", (double)ctm, "B", "confirmed table, max_entries=%u",
				   ct_max);
			add_metric("mem.per_ct_entry", (double)ctm / ct_max, "B",
				   "memlock / max_entries; key %zu B + value %zu B + hash overhead",
				   sizeof(struct moat_ct_key), sizeof(struct moat_ct_value));
			if (pend_max) {
				add_metric("mem.ct_pending", (double)pm, "B",
					   "half-open table, max_entries=%u", pend_max);
				add_metric("mem.per_ct_entry_all", (double)(ctm + pm) / ct_max, "B",
					   "both tables' memlock / `set conntrack max`");
			}
		}
		t0 = now_ms();
		ct_fill(in.maps.conntrack, fill, false);
		if (pend_max)
			ct_fill(in.maps.ct_pending, (size_t)pend_max * levels[li] / 100, true);
		have = ct_count(in.maps.conntrack);
		note("conntrack: %zu synthetic entries written in %.0f ms, %zu present (max %u); "
		     "pending %zu (max %u)",
		     fill, now_ms() - t0, have, ct_max, ct_count(in.maps.ct_pending), pend_max);

		for (fi = 0; fi < 2; fi++) {
			int fam = fi ? 6 : 4;
			const char *syn = fam == 4 ? "tcp 198.18.9.9:40000 > 198.19.0.1:443 flags S" :
						     "tcp [fd00:9::9]:40000 > [fd00:1::1]:443 flags S";
			const char *synack = fam == 4 ?
				"tcp 198.19.0.1:443 > 198.18.9.9:40000 flags SA" :
				"tcp [fd00:1::1]:443 > [fd00:9::9]:40000 flags SA";
			const char *ack = fam == 4 ? "tcp 198.18.9.9:40000 > 198.19.0.1:443 flags A" :
						     "tcp [fd00:9::9]:40000 > [fd00:1::1]:443 flags A";
			const char *unsol = fam == 4 ?
				"tcp 198.18.9.9:40001 > 198.19.0.1:8080 flags S" :
				"tcp [fd00:9::9]:40001 > [fd00:1::1]:8080 flags S";
			uint8_t frame[256];
			size_t len;
			struct moat_dir_counters c0, c1;
			__u32 ret = 0;

			/* unsolicited: no entry, no rule */
			dir_counters(&in, &c0);
			snprintf(name, sizeof(name), "sg.v%d.%d%%.drop", fam, levels[li]);
			time_case(&in, name, unsol, XDP_DROP, "unsolicited SYN, no rule");
			dir_counters(&in, &c1);
			if (c1.sg_no_rule == c0.sg_no_rule)
				die("%s: not dropped by SG", name);

			/* established flow: SYN in, SYN-ACK out (TC), then ACKs in */
			len = frame_of(syn, frame, sizeof(frame), NULL);
			if (test_run(in.xdp, frame, len, 1, NULL, &ret) || ret != XDP_PASS)
				die("SYN not allowed");
			len = frame_of(synack, frame, sizeof(frame), NULL);
			if (test_run(in.tc, frame, len, 1, NULL, &ret) || ret != 0)
				die("SYN-ACK out not allowed (tc ret %u)", ret);
			dir_counters(&in, &c0);
			snprintf(name, sizeof(name), "sg.v%d.%d%%.hit", fam, levels[li]);
			time_case(&in, name, ack, XDP_PASS, "ACK of an established flow");
			dir_counters(&in, &c1);
			if (c1.ct_hit - c0.ct_hit < (__u64)cfg.repeat * cfg.runs)
				die("%s: only %llu of the runs hit the entry", name,
				    (unsigned long long)(c1.ct_hit - c0.ct_hit));

			/* entry creation */
			{
				const struct result *hit = &results[nresults - 1];
				uint8_t af[256];
				size_t alen = frame_of(ack, af, sizeof(af), NULL);
				struct newflow nf;

				sg_new_flow(&in, fam, cfg.new_flows, levels[li] < 100, af, alen, &nf);
				if (nf.created < cfg.new_flows * 9 / 10)
					die("sg new flow: only %llu entries created",
					    (unsigned long long)nf.created);
				snprintf(name, sizeof(name), "sg.v%d.%d%%.new", fam, levels[li]);
				add_result(name, hit->ns + nf.new_r1 - nf.hit_r1,
					   "hit + (SYN - ACK), repeat-1 medians: SYN %.0f ACK %.0f "
					   "bare %.0f; flows=%zu created=%llu",
					   nf.new_r1, nf.hit_r1, nf.bare_r1, cfg.new_flows,
					   (unsigned long long)nf.created);
			}
		}
		have = ct_count(in.maps.conntrack);
		note("conntrack after the SG cases: %zu entries", have);
		snprintf(name, sizeof(name), "ct.fill.%d%%", levels[li]);
		add_metric(name, (double)have, "entries", "confirmed table after the cases, max %u; "
			   "pending %zu of %u", ct_max, ct_count(in.maps.ct_pending), pend_max);
		inst_close(&in);
	}
	ruleset_free(&p.rs);
}

/* ------------------------------------------------------------ lint time */

static void bench_lint(void)
{
#ifdef BENCH_HAVE_LINT
	struct gen_out g;
	struct parsed p;
	int fd[2];
	pid_t pid;
	double t0 = now_ms(), ms = -1;
	int status = 0;
	char buf[256] = "";

	make_rules(GEN_V4, 4096, NULL, &g, &p);
	if (pipe(fd))
		die("pipe");
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct lint_opts o;
		struct lint_result r;
		double t = now_ms();
		int rc;

		close(fd[0]);
		lint_opts_default(&o);
		memset(&r, 0, sizeof(r));
		rc = lint_run(&p.rs, &o, &r);
		dprintf(fd[1], "%.1f %d %zu %zu %zu\n", now_ms() - t, rc, r.n, r.incomplete,
			r.nrules);
		_exit(0);
	}
	close(fd[1]);
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (now_ms() - t0 > cfg.lint_timeout_s * 1000.0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		usleep(20000);
	}
	if (read(fd[0], buf, sizeof(buf) - 1) > 0) {
		int rc;
		size_t n, inc, nr;

		if (sscanf(buf, "%lf %d %zu %zu %zu", &ms, &rc, &n, &inc, &nr) == 5)
			add_metric("ctl.lint4096.v4", ms, "ms",
				   "rc=%d findings=%zu incomplete=%zu rules=%zu", rc, n, inc, nr);
	} else {
		add_metric("ctl.lint4096.v4", -1, "ms", "killed after %d s without an answer",
			   cfg.lint_timeout_s);
	}
	close(fd[0]);
	ruleset_free(&p.rs);
#else
	add_metric("ctl.lint4096.v4", -1, "ms", "user/lint.h not present in this tree");
#endif
}

/* ------------------------------------------------------------ reporting */

static double ratio_of(double ns)
{
	return ns / bare_best;
}

struct target {
	const char *name, *desc;
	double value, limit;
	bool have;
};

static void ratio2(struct target *t, const char *a, const char *b)
{
	const struct result *x = find_result(a), *y = find_result(b);

	t->have = x && y;
	if (t->have)
		t->value = x->ns / y->ns;
}

static void ratio_bare(struct target *t, const char *a)
{
	const struct result *x = find_result(a);

	t->have = x != NULL;
	if (t->have)
		t->value = x->ns / bare_best;
}

static void added_bare(struct target *t, const char *a, const char *b)
{
	const struct result *x = find_result(a), *y = find_result(b);

	t->have = x && y;
	if (t->have)
		t->value = (x->ns - y->ns) / bare_best;
}

static size_t make_targets(struct target *t)
{
	size_t n = 0, hi = cfg.sizes[cfg.nsizes - 1];
	static char names[40][64], descs[40][160];
	static const char *const pk[2] = { "last", "none" };
	int f, k;

	for (f = 0; f < GEN_NKINDS; f++) {
		const char *kn = gen_kind_name[f];

		for (k = 0; k < 2; k++) {
			char a[64], b[64];

			snprintf(a, sizeof(a), "nacl.%s.%zu.%s", kn, hi, pk[k]);
			snprintf(b, sizeof(b), "nacl.%s.%zu.%s", kn, cfg.sizes[0], pk[k]);
			snprintf(names[n], 64, "nacl.%s.%s.%zu_over_%zu", kn, pk[k], hi, cfg.sizes[0]);
			snprintf(descs[n], 160, "NACL %s, %s: cost at %zu rules / cost at %zu", kn,
				 pk[k], hi, cfg.sizes[0]);
			t[n].name = names[n];
			t[n].desc = descs[n];
			t[n].limit = 1.5;
			ratio2(&t[n], a, b);
			n++;
			snprintf(names[n], 64, "nacl.%s.%s.%zu_over_bare", kn, pk[k], hi);
			snprintf(descs[n], 160, "NACL %s, %s, %zu rules / bare XDP_PASS", kn, pk[k], hi);
			t[n].name = names[n];
			t[n].desc = descs[n];
			t[n].limit = gen_family(f) == 4 ? 10 : 15;
			ratio_bare(&t[n], a);
			n++;
		}
	}
	for (f = 4; f <= 6; f += 2) {
		char a[64], b[64];

		snprintf(a, sizeof(a), "set.v%d.miss", f);
		snprintf(b, sizeof(b), "nacl.v%d.10.last", f);
		snprintf(names[n], 64, "set.v%d.added_over_bare", f);
		snprintf(descs[n], 160,
			 "IPv%d: (10 rules + 1M-prefix set rule) - (10 rules), in bare units", f);
		t[n].name = names[n];
		t[n].desc = descs[n];
		t[n].limit = 2;
		added_bare(&t[n], a, b);
		n++;
	}
	for (f = 4; f <= 6; f += 2) {
		for (k = 10; k <= 100; k += 90) {
			char a[64];

			snprintf(a, sizeof(a), "sg.v%d.%d%%.hit", f, k);
			snprintf(names[n], 64, "sg.v%d.%d%%.hit_over_bare", f, k);
			snprintf(descs[n], 160, "SG IPv%d established hit, table %d%% full / bare",
				 f, k);
			t[n].name = names[n];
			t[n].desc = descs[n];
			t[n].limit = 6;
			ratio_bare(&t[n], a);
			n++;
		}
	}
	{
		const struct metric *m = find_metric("ctl.nacl16384+set1000000.v4.reload");

		t[n].name = "reload.16384+1M.ms";
		t[n].desc = "reload of 16,384 rules + a 1M-prefix set (gen_apply), ms";
		t[n].limit = 1000;
		t[n].have = m != NULL;
		t[n].value = m ? m->value : 0;
		n++;
		t[n].name = "ct.value_bytes";
		t[n].desc = "conntrack value per entry, bytes (issue 7: <= 64 B of value)";
		t[n].limit = 64;
		t[n].have = true;
		t[n].value = sizeof(struct moat_ct_value);
		n++;
	}
	return n;
}

static void machine(char *buf, size_t len)
{
	struct utsname u;
	char model[128] = "?", line[256];
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10)) {
			char *c = strchr(line, ':');

			if (c) {
				snprintf(model, sizeof(model), "%s", c + 2);
				model[strcspn(model, "\n")] = 0;
			}
			break;
		}
	if (f)
		fclose(f);
	uname(&u);
	snprintf(buf, len, "%ld CPUs (%s), kernel %s", sysconf(_SC_NPROCESSORS_ONLN), model,
		 u.release);
}

static void report(void)
{
	struct target t[40];
	size_t i, nt = make_targets(t);
	FILE *md = NULL;
	char mach[256];

	machine(mach, sizeof(mach));
	printf("bare ns=%.2f repeat=%u runs=%d\n", bare_best, cfg.repeat, cfg.runs);
	for (i = 0; i < nresults; i++)
		printf("case=%s ns=%.1f ratio=%.2f%s%s\n", results[i].name, results[i].ns,
		       ratio_of(results[i].ns), results[i].extra[0] ? " " : "", results[i].extra);
	for (i = 0; i < nmetrics; i++)
		printf("metric=%s value=%.2f unit=%s%s%s\n", metrics[i].name, metrics[i].value,
		       metrics[i].unit, metrics[i].extra[0] ? " " : "", metrics[i].extra);
	for (i = 0; i < nt; i++)
		if (t[i].have)
			printf("target=%s value=%.2f limit=%.2f ok=%s\n", t[i].name, t[i].value,
			       t[i].limit, t[i].value <= t[i].limit ? "yes" : "no");
	fflush(stdout);
	if (!cfg.md)
		return;
	md = fopen(cfg.md, "w");
	if (!md)
		die("%s: %s", cfg.md, strerror(errno));
	fprintf(md, "### Datapath cost (BPF_PROG_TEST_RUN)\n\n");
	fprintf(md, "%s. repeat = %u, best of %d runs; bare XDP_PASS = **%.1f ns** "
		    "(lowest seen in this run).\n\n",
		mach, cfg.repeat, cfg.runs, bare_best);
	fprintf(md, "| case | ns / packet | × bare | notes |\n|---|---:|---:|---|\n");
	fprintf(md, "| bare XDP_PASS | %.1f | 1.00 | |\n", bare_best);
	for (i = 0; i < nresults; i++)
		fprintf(md, "| %s | %.1f | %.2f | %s |\n", results[i].name, results[i].ns,
			ratio_of(results[i].ns), results[i].extra);
	fprintf(md, "\n### Targets\n\n| target | measured | limit | met |\n|---|---:|---:|---|\n");
	for (i = 0; i < nt; i++)
		if (t[i].have)
			fprintf(md, "| %s | %.2f | %.2f | %s |\n", t[i].desc, t[i].value, t[i].limit,
				t[i].value <= t[i].limit ? "yes" : "**no**");
	fprintf(md, "\n### Control plane and memory\n\n| metric | value | unit | notes |\n"
		    "|---|---:|---|---|\n");
	for (i = 0; i < nmetrics; i++)
		fprintf(md, "| %s | %.2f | %s | %s |\n", metrics[i].name, metrics[i].value,
			metrics[i].unit, metrics[i].extra);
	fclose(md);
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_datapath [--quick] [--repeat N] [--runs N] [--sizes A,B,..]\n"
		"                      [--big N] [--flows N] [--only nacl,set,sg,ctl]\n"
		"                      [--kinds v4,v4shared,v6]\n"
		"                      [--md FILE] [--bare-obj FILE] [--tmpdir DIR]\n"
		"       bench_datapath --write-rules FILE --rules N [--kind v4|v4shared|v6]\n"
		"                      [--set-file PATH --set-size N]\n");
	exit(1);
}

static size_t parse_sizes(const char *s, size_t *out, size_t max)
{
	size_t n = 0;

	while (*s && n < max) {
		char *end;

		out[n++] = strtoul(s, &end, 10);
		if (*end != ',' && *end)
			usage();
		s = *end ? end + 1 : end;
	}
	return n;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quick", no_argument, 0, 'q' },	  { "repeat", required_argument, 0, 'r' },
		{ "runs", required_argument, 0, 'n' },	  { "sizes", required_argument, 0, 's' },
		{ "big", required_argument, 0, 'b' },	  { "flows", required_argument, 0, 'F' },
		{ "only", required_argument, 0, 'o' },	  { "md", required_argument, 0, 'm' },
		{ "bare-obj", required_argument, 0, 'B' }, { "tmpdir", required_argument, 0, 't' },
		{ "write-rules", required_argument, 0, 'w' },
		{ "rules", required_argument, 0, 'N' },	  { "kind", required_argument, 0, 'f' },
		{ "set-file", required_argument, 0, 'S' },
		{ "set-size", required_argument, 0, 'Z' },
		{ "kinds", required_argument, 0, 'K' },
		{ "help", no_argument, 0, 'h' },	  { 0 } };
	const char *write_rules = NULL, *set_file = NULL;
	size_t nrules = 1000, set_size = 0;
	int kind = GEN_V4, c;
	struct bpf_object *obj;
	struct bpf_program *prog;
	char tmpl[] = "/tmp/moat-bench-XXXXXX";
	bool own_tmp = false;
	double t_start = now_ms();

	if (getenv("MOAT_BENCH_VERBOSE"))
		moat_verbose = atoi(getenv("MOAT_BENCH_VERBOSE"));

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			cfg.quick = true;
			cfg.repeat = 100000;
			cfg.runs = 3;
			cfg.sizes[0] = 10;
			cfg.sizes[1] = 16384;
			cfg.nsizes = 2;
			cfg.big = 100000;
			cfg.new_flows = 2000;
			cfg.lint_timeout_s = 10;
			break;
		case 'r':
			cfg.repeat = strtoul(optarg, NULL, 0);
			break;
		case 'n':
			cfg.runs = atoi(optarg);
			break;
		case 's':
			cfg.nsizes = parse_sizes(optarg, cfg.sizes, 8);
			break;
		case 'b':
			cfg.big = strtoul(optarg, NULL, 0);
			break;
		case 'F':
			cfg.new_flows = strtoul(optarg, NULL, 0);
			break;
		case 'o':
			cfg.only = optarg;
			break;
		case 'K':
			cfg.kinds = optarg;
			break;
		case 'm':
			cfg.md = optarg;
			break;
		case 'B':
			cfg.bare_obj = optarg;
			break;
		case 't':
			cfg.tmpdir = optarg;
			break;
		case 'w':
			write_rules = optarg;
			break;
		case 'N':
			nrules = strtoul(optarg, NULL, 0);
			break;
		case 'f':
			for (kind = 0; kind < GEN_NKINDS; kind++)
				if (!strcmp(optarg, gen_kind_name[kind]))
					break;
			break;
		case 'S':
			set_file = optarg;
			break;
		case 'Z':
			set_size = strtoul(optarg, NULL, 0);
			break;
		default:
			usage();
		}
	}
	if (cfg.runs < 1 || !cfg.repeat || !cfg.nsizes || cfg.new_flows < 10 ||
	    kind >= GEN_NKINDS)
		usage();

	if (write_rules) {
		struct gen_out g;
		FILE *f;

		if (set_file && set_size)
			gen_set_file(set_file, gen_family(kind), set_size);
		f = fopen(write_rules, "w");
		if (!f)
			die("%s: %s", write_rules, strerror(errno));
		gen_rules(f, kind, nrules, set_file, &g);
		if (fclose(f))
			die("%s: %s", write_rules, strerror(errno));
		return 0;
	}

	if (!cfg.tmpdir) {
		if (!mkdtemp(tmpl))
			die("mkdtemp: %s", strerror(errno));
		cfg.tmpdir = tmpl;
		own_tmp = true;
	}
	dp_setup_logging();
	obj = bpf_object__open_file(cfg.bare_obj, NULL);
	if (!obj || bpf_object__load(obj))
		die("%s: cannot load (build it with clang -O2 -g -target bpf)", cfg.bare_obj);
	prog = bpf_object__find_program_by_name(obj, "bench_xdp_pass");
	if (!prog)
		die("%s: no bench_xdp_pass", cfg.bare_obj);
	bare_fd = bpf_program__fd(prog);
	{
		uint8_t frame[256];
		size_t len = frame_of("tcp 198.18.1.1:40000 > 198.19.255.200:80 flags A", frame,
				      sizeof(frame), NULL);
		int i;

		for (i = 0; i < 3; i++)
			bare_measure(frame, len);
		note("bare XDP_PASS: %.1f ns (repeat %u, best of %d)", bare_best, cfg.repeat,
		     cfg.runs);
	}

	if (section_on("nacl"))
		bench_nacl();
	if (section_on("set") && cfg.big)
		bench_set();
	if (section_on("sg"))
		bench_sg();
	if (section_on("ctl")) {
		if (!cfg.quick)
			bench_ctl_apply();
		bench_lint();
	}
	report();
	bpf_object__close(obj);
	if (own_tmp)
		rmdir(cfg.tmpdir);
	note("done in %.1f s", (now_ms() - t_start) / 1e3);
	return 0;
}
