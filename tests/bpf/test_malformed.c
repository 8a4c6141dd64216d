// SPDX-License-Identifier: GPL-2.0
/*
 * test_malformed.c - a corpus of malformed frames through the real BPF
 * programs (BPF_PROG_TEST_RUN), both directions (in: XDP, out: TC).
 *
 * CONTRACT §1 and §3: non-IP frames pass; up to two VLAN tags are parsed
 * through; non-first fragments match only rules without port, icmp or
 * established fields; truncated or malformed headers are dropped and
 * counted, never matched as if they were well formed.
 *
 * The rule set allows the well-formed probes by port- or icmp-specific
 * rules and ends with `allow all`, so a malformed frame that the parser let
 * through would PASS: every malformed frame must be DROP with reason
 * MALFORMED (or EXT_HDR_LIMIT), every frame judged normally must be decided
 * by the rule its well-formed fields select. Each frame is built from a
 * well-formed one (packet_build_frame) and then cut, tagged, given options
 * or extension headers, or has a length field changed.
 *
 * Groups (each case runs in both directions):
 *   truncation   every cut inside the headers of Ethernet / 1-2 VLAN tags /
 *                IPv4 (with and without options) / IPv6 (with and without
 *                extension headers) / TCP / UDP / ICMP / ICMPv6, (a) the
 *                frame cut as it is (length fields now exceed the frame),
 *                (b) cut with the IP length fixed to what is left (a short
 *                but self-consistent IP packet whose headers are cut).
 *                Frames < 14 bytes: the kernel's test_run may refuse them
 *                (EINVAL), counted as "refused by the kernel".
 *   vlan         1 and 2 tags judged normally; a third tag MALFORMED.
 *   non_ip       ARP, LLDP (also tagged, also bare) PASS NON_IP; an IP
 *                ethertype whose version field disagrees MALFORMED.
 *   ipv4         IHL < 5; IHL 6..15 with valid options (ports read after
 *                them); total length > frame, < IHL*4, < frame (padding),
 *                and < the end of the L4 header with the rest of the
 *                header in the frame's padding.
 *   ipv6         payload length > frame, < frame (padding), and cutting
 *                the L4 header with the rest in the padding.
 *   tcp          data offset < 5; 5..15 with options; beyond the segment.
 *   ipv6_ext     chains of 1..6 extension headers judged normally; 7 or
 *                more EXT_HDR_LIMIT; chains that run past the frame.
 *   frag_v4      first / middle / last / overlapping / tiny fragments.
 *   frag_v6      the same with the Fragment extension header.
 *   counters     a non-trace instance: malformed, malformed_bytes,
 *                ext_hdr_limit, fragments, non_ip, packets, dropped move by
 *                exactly what was sent.
 *
 * Each group prints its failures (the first few in full, with the frame in
 * hex) and a count; the run ends with a table of cases per group.
 * MOAT_MALFORMED_SHOW=N prints up to N failures per group (default 6).
 * Needs root.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath.h"
#include "dp_load.h"
#include "packet.h"
#include "rules.h"

#define FR_MAX 1600
#define ETH_LEN 14
#define IP4_LEN 20
#define IP6_LEN 40
#define TCP_LEN 20
#define UDP_LEN 8
#define ICMP_LEN 8

#define P_HOPOPTS 0
#define P_ICMP 1
#define P_TCP 6
#define P_UDP 17
#define P_ROUTING 43
#define P_FRAGMENT 44
#define P_AH 51
#define P_ICMPV6 58
#define P_NONE 59
#define P_DSTOPTS 60

#define TPID_Q 0x8100
#define TPID_AD 0x88a8

/* Failures printed per group (MOAT_MALFORMED_SHOW); the rest are counted. */
static unsigned max_shown = 6;

/* Ethernet padding sizes tried (6: a 54-byte TCP frame padded to 60). */
static const size_t pads[] = { 1, 6, 18, 100 };

/*
 * The rule set: the well-formed probes are allowed by specific rules, a
 * catch-all allows the rest. Rules 160/170 carry no port, icmp or
 * established field, so a TCP non-first fragment lands there; 50 denies any
 * TCP with ACK or RST, which a fragment must never match.
 */
#define RULE_EST 50
#define RULE_TCP80 100
#define RULE_UDP53 110
#define RULE_ICMP 120
#define RULE_ICMP6 130
#define RULE_TCP4 160
#define RULE_TCP6 170
#define RULE_ALL 200

static const char rules_text[] = "nacl in  50  deny  tcp established\n"
				 "nacl in  100 allow tcp dport 80\n"
				 "nacl in  110 allow udp dport 53\n"
				 "nacl in  120 allow icmp icmp 8/0\n"
				 "nacl in  130 allow icmpv6 icmp 128/0\n"
				 "nacl in  160 allow tcp src 198.18.0.0/15\n"
				 "nacl in  170 allow tcp src fd00::/8\n"
				 "nacl in  200 allow all\n"
				 "nacl out 50  deny  tcp established\n"
				 "nacl out 100 allow tcp dport 80\n"
				 "nacl out 110 allow udp dport 53\n"
				 "nacl out 120 allow icmp icmp 8/0\n"
				 "nacl out 130 allow icmpv6 icmp 128/0\n"
				 "nacl out 160 allow tcp src 198.18.0.0/15\n"
				 "nacl out 170 allow tcp src fd00::/8\n"
				 "nacl out 200 allow all\n";

static struct moat_inst *tinst; /* trace mode: records the decision */
static struct moat_inst *cinst; /* normal mode: counts */

/* ---- expectations and tallies ---------------------------------------- */

enum want_kind {
	W_NORMAL,    /* PASS, decided by NACL rule `rule` */
	W_DENIED,    /* DROP, decided by NACL (deny) rule `rule` */
	W_MALFORMED, /* DROP, reason MALFORMED */
	W_EXT_LIMIT, /* DROP, reason EXT_HDR_LIMIT */
	W_NON_IP,    /* PASS, reason NON_IP */
	W_SHORT,     /* < 14 bytes: refused by test_run (EINVAL) or DROP MALFORMED; a
		      * W_MALFORMED frame may be refused too, see kernel_may_refuse() */
};

struct want {
	enum want_kind kind;
	int rule;
};

#define NORMAL(r) ((struct want){ W_NORMAL, (r) })
#define DENIED(r) ((struct want){ W_DENIED, (r) })
#define MALFORMED ((struct want){ W_MALFORMED, 0 })
#define EXT_LIMIT ((struct want){ W_EXT_LIMIT, 0 })
#define NON_IP ((struct want){ W_NON_IP, 0 })

struct tally {
	const char *name;
	unsigned cases, ok, failed, refused;
};

enum { G_TRUNC, G_VLAN, G_NONIP, G_IPV4, G_IPV6, G_TCP, G_EXT, G_FRAG4, G_FRAG6, G_COUNTERS, G_N };

static struct tally tallies[G_N] = {
	[G_TRUNC] = { "truncation" },  [G_VLAN] = { "vlan" },	  [G_NONIP] = { "non_ip" },
	[G_IPV4] = { "ipv4" },	       [G_IPV6] = { "ipv6" },	  [G_TCP] = { "tcp" },
	[G_EXT] = { "ipv6_ext" },      [G_FRAG4] = { "frag_v4" }, [G_FRAG6] = { "frag_v6" },
	[G_COUNTERS] = { "counters" },
};

static const char *reason_name(unsigned r)
{
	static const char *const n[] = { "NONE",	  "NON_IP",    "NDP",	       "MALFORMED",
					 "EXT_HDR_LIMIT", "NACL_RULE", "NACL_DEFAULT", "SG",
					 "STAGES_OFF" };

	return r < sizeof(n) / sizeof(n[0]) ? n[r] : "?";
}

static const char *want_text(struct want w, char *buf, size_t len)
{
	switch (w.kind) {
	case W_NORMAL:
		snprintf(buf, len, "PASS by nacl rule %d", w.rule);
		break;
	case W_DENIED:
		snprintf(buf, len, "DROP by nacl rule %d", w.rule);
		break;
	case W_MALFORMED:
		snprintf(buf, len, "DROP reason MALFORMED");
		break;
	case W_EXT_LIMIT:
		snprintf(buf, len, "DROP reason EXT_HDR_LIMIT");
		break;
	case W_NON_IP:
		snprintf(buf, len, "PASS reason NON_IP");
		break;
	case W_SHORT:
		snprintf(buf, len, "refused (EINVAL) or DROP reason MALFORMED");
		break;
	}
	return buf;
}

static void hexdump(const uint8_t *b, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (i % 16 == 0)
			printf("#     %04zx:", i);
		printf(" %02x", b[i]);
		if (i % 16 == 15 || i + 1 == len)
			printf("\n");
	}
}

/*
 * Frames the kernel's BPF_PROG_TEST_RUN refuses with EINVAL before the
 * program runs: any frame shorter than an Ethernet header, and for the TC
 * (skb) direction an untagged IPv4 / IPv6 frame too short for the fixed IP
 * header (6.18 checks the network header of an skb it is given). Such a
 * frame cannot be put to the program this way; it is counted as "refused
 * by the kernel", not as a pass.
 */
static bool kernel_may_refuse(int dir, const uint8_t *b, size_t len)
{
	uint16_t type;

	if (len < ETH_LEN)
		return true;
	if (dir != MOAT_DIR_OUT)
		return false;
	type = (uint16_t)(b[12] << 8 | b[13]);
	return (type == 0x0800 && len < ETH_LEN + IP4_LEN) ||
	       (type == 0x86dd && len < ETH_LEN + IP6_LEN);
}

/* Run one frame through direction @dir and check it; true when as wanted. */
static bool check_frame(int g, int dir, struct want w, const uint8_t *b, size_t len,
			const char *fmt, ...)
{
	struct tally *t = &tallies[g];
	struct moat_trace tr;
	char name[200], wbuf[80], got[160];
	bool pass = false, ok = false;
	va_list ap;
	int err;

	t->cases++;
	err = moat_inst_run(tinst, dir, b, len, &pass, &tr);
	if (err) {
		if ((w.kind == W_SHORT || w.kind == W_MALFORMED) && err == -EINVAL &&
		    kernel_may_refuse(dir, b, len)) {
			t->refused++;
			t->ok++;
			return true;
		}
		snprintf(got, sizeof(got), "test_run error %d (%s)", err, strerror(-err));
	} else if (tr.ran != 1) {
		snprintf(got, sizeof(got), "the trace program recorded nothing");
	} else {
		snprintf(got, sizeof(got), "%s (retval) / verdict %u reason %s nacl rule %d",
			 pass ? "PASS" : "DROP", tr.verdict, reason_name(tr.reason),
			 tr.nacl_pos == MOAT_NO_RULE ? -1 : (int)tr.nacl_number);
		switch (w.kind) {
		case W_NORMAL:
			ok = pass && tr.verdict == 1 && tr.reason == MOAT_REASON_NACL_RULE &&
			     tr.nacl_pos != MOAT_NO_RULE && (int)tr.nacl_number == w.rule;
			break;
		case W_DENIED:
			ok = !pass && tr.verdict == 0 && tr.reason == MOAT_REASON_NACL_RULE &&
			     tr.nacl_pos != MOAT_NO_RULE && (int)tr.nacl_number == w.rule;
			break;
		case W_MALFORMED:
		case W_SHORT:
			ok = !pass && tr.verdict == 0 && tr.reason == MOAT_REASON_MALFORMED;
			break;
		case W_EXT_LIMIT:
			ok = !pass && tr.verdict == 0 && tr.reason == MOAT_REASON_EXT_HDR_LIMIT;
			break;
		case W_NON_IP:
			ok = pass && tr.verdict == 1 && tr.reason == MOAT_REASON_NON_IP;
			break;
		}
	}
	if (ok) {
		t->ok++;
		return true;
	}
	t->failed++;
	if (t->failed <= max_shown) {
		va_start(ap, fmt);
		vsnprintf(name, sizeof(name), fmt, ap);
		va_end(ap);
		printf("# FAIL [%s] %s, dir %s, %zu bytes: want %s, got %s\n", t->name, name,
		       dir ? "out" : "in", len, want_text(w, wbuf, sizeof(wbuf)), got);
		if (t->failed <= 2)
			hexdump(b, len);
	}
	return false;
}

/* The same frame in both directions. */
#define CHECK2(g, w, b, len, ...)                                             \
	do {                                                                  \
		check_frame((g), MOAT_DIR_IN, (w), (b), (len), __VA_ARGS__);  \
		check_frame((g), MOAT_DIR_OUT, (w), (b), (len), __VA_ARGS__); \
	} while (0)

static void group_end(int g)
{
	struct tally *t = &tallies[g];

	printf("# group %-10s %5u cases: %5u as the contract says, %4u not", t->name, t->cases,
	       t->ok, t->failed);
	if (t->refused)
		printf(" (%u of the ok ones refused by the kernel's test_run)", t->refused);
	printf("\n");
	if (t->failed > max_shown)
		printf("# (%u more failures in group %s not shown)\n", t->failed - max_shown,
		       t->name);
	assert_int_equal(t->failed, 0);
}

/* ---- frames ------------------------------------------------------------ */

struct frame {
	uint8_t b[FR_MAX];
	size_t len;
	size_t l3, l4, l4_end; /* IP header, L4 header, end of the L4 header */
	int family, proto;
};

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = v >> 8;
	b[1] = v & 0xff;
}

static uint16_t get16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

static size_t l4_hdr_len(int proto)
{
	switch (proto) {
	case P_TCP:
		return TCP_LEN;
	case P_UDP:
		return UDP_LEN;
	case P_ICMP:
	case P_ICMPV6:
		return ICMP_LEN;
	default:
		return 0;
	}
}

/* The rule that decides the well-formed probe. */
static int probe_rule(int family, int proto)
{
	switch (proto) {
	case P_TCP:
		return RULE_TCP80;
	case P_UDP:
		return RULE_UDP53;
	case P_ICMP:
		return RULE_ICMP;
	case P_ICMPV6:
		return RULE_ICMP6;
	default:
		return RULE_ALL;
	}
	(void)family;
}

/* The rule a non-first fragment of @proto lands on (no L4 fields). */
static int frag_rule(int family, int proto)
{
	if (proto == P_TCP)
		return family == 4 ? RULE_TCP4 : RULE_TCP6;
	return RULE_ALL;
}

/* A well-formed frame: 198.18.1.1:40000 > 198.18.2.1:80 (tcp SYN), :53 (udp),
 * echo request (icmp), or the same in fd00:1::1 > fd00:2::1. */
static void fr_base_ports(struct frame *f, int family, int proto, uint8_t flags, uint16_t dport)
{
	struct packet p;
	int n;

	memset(&p, 0, sizeof(p));
	memset(f, 0, sizeof(*f));
	p.family = family;
	p.proto = proto;
	if (family == 4) {
		static const uint8_t s[4] = { 198, 18, 1, 1 }, d[4] = { 198, 18, 2, 1 };

		memcpy(p.src, s, 4);
		memcpy(p.dst, d, 4);
	} else {
		p.src[0] = p.dst[0] = 0xfd;
		p.src[3] = 1;
		p.dst[3] = 2;
		p.src[15] = p.dst[15] = 1;
	}
	p.sport = 40000;
	p.dport = dport;
	p.tcp_flags = flags;
	p.icmp_type = family == 4 ? 8 : 128;
	p.icmp_code = 0;
	n = packet_build_frame(&p, f->b, sizeof(f->b));
	assert_true(n > 0);
	f->len = (size_t)n;
	f->family = family;
	f->proto = proto;
	f->l3 = ETH_LEN;
	f->l4 = ETH_LEN + (family == 4 ? IP4_LEN : IP6_LEN);
	f->l4_end = f->l4 + l4_hdr_len(proto);
}

static void fr_base(struct frame *f, int family, int proto)
{
	fr_base_ports(f, family, proto, PKT_TCP_SYN, proto == P_UDP ? 53 : 80);
}

/* Insert @n bytes (@src, or zeros) at @off; offsets at or after it move. */
static void fr_insert(struct frame *f, size_t off, const uint8_t *src, size_t n)
{
	assert_true(f->len + n <= sizeof(f->b));
	assert_true(off <= f->len);
	memmove(f->b + off + n, f->b + off, f->len - off);
	if (src)
		memcpy(f->b + off, src, n);
	else
		memset(f->b + off, 0, n);
	f->len += n;
	if (f->l3 >= off)
		f->l3 += n;
	if (f->l4 >= off)
		f->l4 += n;
	if (f->l4_end >= off)
		f->l4_end += n;
}

/* Push a VLAN tag in front of the current ethertype (it becomes the outer one). */
static void fr_vlan(struct frame *f, uint16_t tpid)
{
	uint8_t tag[4];

	put16(tag, tpid);
	put16(tag + 2, 100); /* VID 100 */
	fr_insert(f, 12, tag, 4);
}

/* The IP header's length field, in bytes of what it covers. */
static size_t fr_ip_len_field(const struct frame *f)
{
	return f->family == 4 ? get16(f->b + f->l3 + 2) : get16(f->b + f->l3 + 4);
}

static void fr_set_ip_len(struct frame *f, size_t v)
{
	if (f->family == 4)
		put16(f->b + f->l3 + 2, (uint16_t)v);
	else
		put16(f->b + f->l3 + 4, (uint16_t)v);
}

/* The IP length that makes the packet end at frame offset @end. */
static size_t ip_len_for_end(const struct frame *f, size_t end)
{
	return f->family == 4 ? end - f->l3 : end - f->l3 - IP6_LEN;
}

/* IPv4 options: IHL @ihl (6..15), a Router Alert, NOPs, End of list. */
static void fr_v4_options(struct frame *f, int ihl)
{
	uint8_t opt[40];
	size_t n = (size_t)(ihl - 5) * 4;

	memset(opt, 1, sizeof(opt)); /* NOP */
	opt[0] = 148;		     /* Router Alert, length 4, value 0 */
	opt[1] = 4;
	opt[2] = opt[3] = 0;
	if (n > 4)
		opt[n - 1] = 0; /* End of Option List */
	fr_insert(f, f->l3 + IP4_LEN, opt, n);
	f->b[f->l3] = (uint8_t)(0x40 | ihl);
	fr_set_ip_len(f, fr_ip_len_field(f) + n);
}

/* IPv4 flags (MF) and fragment offset (8-byte units). */
static void fr_v4_frag(struct frame *f, bool mf, uint16_t offset)
{
	put16(f->b + f->l3 + 6, (uint16_t)((mf ? 0x2000 : 0) | (offset & 0x1fff)));
}

/* One IPv6 extension header of a chain. */
struct ext {
	uint8_t type;
	uint16_t frag; /* Fragment: offset << 3 | M */
	int hdrlen;    /* -1: the default size for the type */
};

#define EXT(t) ((struct ext){ (t), 0, -1 })
#define EXT_FRAG(off, m) ((struct ext){ P_FRAGMENT, (uint16_t)((off) << 3 | ((m) ? 1 : 0)), -1 })

/*
 * Put the chain @e[0..n) between the IPv6 header and the L4 header. The
 * last header's next header is @last_nh (-1: the original protocol).
 * Returns the bytes added.
 */
static size_t fr_v6_ext_nh(struct frame *f, const struct ext *e, size_t n, int last_nh)
{
	uint8_t buf[1200], *h;
	size_t off = 0, i, sz;
	uint8_t orig = f->b[f->l3 + 6];

	for (i = 0; i < n; i++) {
		uint8_t nh = i + 1 < n ? e[i + 1].type : (last_nh >= 0 ? (uint8_t)last_nh : orig);

		h = buf + off;
		switch (e[i].type) {
		case P_FRAGMENT:
			sz = 8;
			memset(h, 0, sz);
			h[0] = nh;
			put16(h + 2, e[i].frag);
			h[4] = 0x12;
			h[7] = (uint8_t)i;
			break;
		case P_AH: {
			int hl = e[i].hdrlen >= 0 ? e[i].hdrlen : 1; /* (hl + 2) * 4 bytes */

			sz = (size_t)(hl + 2) * 4;
			memset(h, 0, sz < 12 ? 12 : sz);
			h[0] = nh;
			h[1] = (uint8_t)hl;
			h[7] = 1;  /* SPI */
			h[11] = 1; /* sequence */
			if (e[i].hdrlen >= 0 && sz > 64)
				sz = 12; /* claimed length runs on past what is written */
			break;
		}
		default: { /* hop-by-hop, routing, destination options */
			int hl = e[i].hdrlen >= 0 ? e[i].hdrlen : (e[i].type == P_DSTOPTS ? 1 : 0);
			size_t real = (size_t)(hl + 1) * 8;

			/* A claimed length bigger than 64 bytes is not written
			 * out: the header "runs past the frame". */
			sz = real > 64 ? 8 : real;
			memset(h, 0, sz);
			h[0] = nh;
			h[1] = (uint8_t)hl;
			if (e[i].type == P_ROUTING) {
				h[2] = 0; /* routing type 0, segments left 0 */
				h[3] = 0;
			} else {
				h[2] = 1; /* PadN covering the rest */
				h[3] = (uint8_t)(sz - 4);
			}
			break;
		}
		}
		off += sz;
		assert_true(off + 64 <= sizeof(buf));
	}
	if (n)
		f->b[f->l3 + 6] = e[0].type;
	else if (last_nh >= 0)
		f->b[f->l3 + 6] = (uint8_t)last_nh;
	fr_insert(f, f->l3 + IP6_LEN, buf, off);
	fr_set_ip_len(f, fr_ip_len_field(f) + off);
	return off;
}

static size_t fr_v6_ext(struct frame *f, const struct ext *e, size_t n)
{
	return fr_v6_ext_nh(f, e, n, -1);
}

/* Append @n bytes of Ethernet padding (zeros) without touching the IP length. */
static void fr_pad(struct frame *f, size_t n)
{
	fr_insert(f, f->len, NULL, n);
}

/* ---- set-up -------------------------------------------------------------- */

static int apply_rules(struct moat_inst *inst)
{
	struct ruleset rs;
	struct diags d;
	int err;

	diags_init(&d);
	err = rules_parse_text("malformed.rules", rules_text, strlen(rules_text), &rs, &d);
	if (err) {
		diags_print(&d, stdout);
		diags_free(&d);
		return err;
	}
	err = moat_inst_apply(inst, &rs, &d);
	if (err)
		diags_print(&d, stdout);
	ruleset_free(&rs);
	diags_free(&d);
	return err;
}

static int setup(void **state)
{
	int err;

	(void)state;
	if (geteuid() != 0) {
		/* A skip would hide a failure: make test runs as root. */
		print_message("test_malformed needs root (BPF_PROG_TEST_RUN)\n");
		return -1;
	}
	err = moat_inst_open_private(&tinst, true);
	if (!err)
		err = apply_rules(tinst);
	if (!err)
		err = moat_inst_open_private(&cinst, false);
	if (!err)
		err = apply_rules(cinst);
	if (err) {
		print_message("setting up the instances: %s\n", strerror(-err));
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	size_t g;
	unsigned cases = 0, ok = 0, failed = 0, refused = 0;

	(void)state;
	moat_inst_close(tinst);
	moat_inst_close(cinst);
	tinst = cinst = NULL;
	printf("# summary (each frame counted once per direction):\n");
	for (g = 0; g < G_N; g++) {
		printf("#   %-10s %5u cases %5u ok %4u failed %4u refused by the kernel\n",
		       tallies[g].name, tallies[g].cases, tallies[g].ok, tallies[g].failed,
		       tallies[g].refused);
		cases += tallies[g].cases;
		ok += tallies[g].ok;
		failed += tallies[g].failed;
		refused += tallies[g].refused;
	}
	printf("#   %-10s %5u cases %5u ok %4u failed %4u refused by the kernel\n", "total", cases,
	       ok, failed, refused);
	return 0;
}

/* ---- truncation ---------------------------------------------------------- */

struct vlan_cfg {
	const char *name;
	int n;
	uint16_t tpid[2]; /* inner first */
};

static const struct vlan_cfg vlan_cfgs[] = {
	{ "untagged", 0, { 0, 0 } },
	{ "802.1Q", 1, { TPID_Q, 0 } },
	{ "802.1ad", 1, { TPID_AD, 0 } },
	{ "802.1ad+802.1Q", 2, { TPID_Q, TPID_AD } },
	{ "802.1Q+802.1Q", 2, { TPID_Q, TPID_Q } },
};

enum base_kind { B_PLAIN, B_V4_OPTS, B_V6_EXT, B_V4_FIRST_FRAG };

struct base_cfg {
	const char *name;
	int family, proto;
	enum base_kind kind;
};

static const struct base_cfg base_cfgs[] = {
	{ "ipv4 tcp", 4, P_TCP, B_PLAIN },
	{ "ipv4 udp", 4, P_UDP, B_PLAIN },
	{ "ipv4 icmp", 4, P_ICMP, B_PLAIN },
	{ "ipv4(IHL 15) tcp", 4, P_TCP, B_V4_OPTS },
	{ "ipv4 first-fragment udp", 4, P_UDP, B_V4_FIRST_FRAG },
	{ "ipv6 tcp", 6, P_TCP, B_PLAIN },
	{ "ipv6 udp", 6, P_UDP, B_PLAIN },
	{ "ipv6 icmpv6", 6, P_ICMPV6, B_PLAIN },
	{ "ipv6+hop/rt/dst/frag0 tcp", 6, P_TCP, B_V6_EXT },
	{ "ipv6+hop/dst icmpv6", 6, P_ICMPV6, B_V6_EXT },
};

static void build_base(struct frame *f, const struct base_cfg *bc, const struct vlan_cfg *vc)
{
	int i;

	fr_base(f, bc->family, bc->proto);
	switch (bc->kind) {
	case B_V4_OPTS:
		fr_v4_options(f, 15);
		break;
	case B_V4_FIRST_FRAG:
		fr_v4_frag(f, true, 0);
		break;
	case B_V6_EXT:
		if (bc->proto == P_TCP) {
			const struct ext e[] = { EXT(P_HOPOPTS), EXT(P_ROUTING), EXT(P_DSTOPTS),
						 EXT_FRAG(0, 1) };

			fr_v6_ext(f, e, 4);
		} else {
			const struct ext e[] = { EXT(P_HOPOPTS), EXT(P_DSTOPTS) };

			fr_v6_ext(f, e, 2);
		}
		break;
	default:
		break;
	}
	for (i = 0; i < vc->n; i++)
		fr_vlan(f, vc->tpid[i]);
}

static void test_truncation(void **state)
{
	size_t bi, vi, cut;
	struct frame f, c;

	(void)state;
	for (bi = 0; bi < sizeof(base_cfgs) / sizeof(base_cfgs[0]); bi++) {
		const struct base_cfg *bc = &base_cfgs[bi];

		for (vi = 0; vi < sizeof(vlan_cfgs) / sizeof(vlan_cfgs[0]); vi++) {
			const struct vlan_cfg *vc = &vlan_cfgs[vi];
			size_t len_field_end;

			build_base(&f, bc, vc);
			/* Control: the whole frame is judged normally. */
			CHECK2(G_TRUNC, NORMAL(probe_rule(bc->family, bc->proto)), f.b, f.len,
			       "%s %s whole frame (control)", vc->name, bc->name);

			/* (a) cut as it is: every offset inside the headers. */
			for (cut = 0; cut < f.l4_end; cut++) {
				struct want w =
					cut < ETH_LEN ? (struct want){ W_SHORT, 0 } : MALFORMED;

				CHECK2(G_TRUNC, w, f.b, cut, "%s %s cut at %zu of %zu header bytes",
				       vc->name, bc->name, cut, f.l4_end);
			}

			/* (b) cut with the IP length fixed to what is left. */
			len_field_end = f.l3 + (bc->family == 4 ? 4 : 6);
			for (cut = len_field_end; cut < f.l4_end; cut++) {
				size_t floor = bc->family == 4 ? 0 : f.l3 + IP6_LEN;

				c = f;
				if (cut >= floor)
					fr_set_ip_len(&c, ip_len_for_end(&c, cut));
				else
					fr_set_ip_len(&c, 0);
				CHECK2(G_TRUNC, MALFORMED, c.b, cut,
				       "%s %s cut at %zu of %zu header bytes, IP length fixed to %zu",
				       vc->name, bc->name, cut, f.l4_end, fr_ip_len_field(&c));
			}
		}
	}
	group_end(G_TRUNC);
}

/* ---- VLAN ---------------------------------------------------------------- */

static void test_vlan(void **state)
{
	static const uint16_t tp[2] = { TPID_Q, TPID_AD };
	static const int protos4[] = { P_TCP, P_UDP, P_ICMP },
			 protos6[] = { P_TCP, P_UDP, P_ICMPV6 };
	struct frame f;
	int fam, pi, a, b, c;

	(void)state;
	for (fam = 4; fam <= 6; fam += 2) {
		for (pi = 0; pi < 3; pi++) {
			int proto = fam == 4 ? protos4[pi] : protos6[pi];
			int rule = probe_rule(fam, proto);

			for (a = 0; a < 2; a++) {
				fr_base(&f, fam, proto);
				fr_vlan(&f, tp[a]);
				CHECK2(G_VLAN, NORMAL(rule), f.b, f.len, "ipv%d proto %d, tag %04x",
				       fam, proto, tp[a]);
				for (b = 0; b < 2; b++) {
					fr_base(&f, fam, proto);
					fr_vlan(&f, tp[a]);
					fr_vlan(&f, tp[b]);
					CHECK2(G_VLAN, NORMAL(rule), f.b, f.len,
					       "ipv%d proto %d, tags %04x (outer) %04x", fam, proto,
					       tp[b], tp[a]);
					for (c = 0; c < 2; c++) {
						fr_base(&f, fam, proto);
						fr_vlan(&f, tp[a]);
						fr_vlan(&f, tp[b]);
						fr_vlan(&f, tp[c]);
						CHECK2(G_VLAN, MALFORMED, f.b, f.len,
						       "ipv%d proto %d, three tags %04x %04x %04x",
						       fam, proto, tp[c], tp[b], tp[a]);
					}
				}
			}
		}
	}
	/* A third tag with nothing behind it, and four tags. */
	fr_base(&f, 4, P_TCP);
	fr_vlan(&f, TPID_Q);
	fr_vlan(&f, TPID_Q);
	fr_vlan(&f, TPID_AD);
	CHECK2(G_VLAN, MALFORMED, f.b, ETH_LEN + 8 + 2, "three tags, the third cut after its TPID");
	CHECK2(G_VLAN, MALFORMED, f.b, ETH_LEN + 8 + 4, "three tags, nothing after them");
	fr_vlan(&f, TPID_AD);
	CHECK2(G_VLAN, MALFORMED, f.b, f.len, "four tags");
	group_end(G_VLAN);
}

/* ---- non-IP ---------------------------------------------------------------- */

static void test_non_ip(void **state)
{
	static const uint16_t types[] = { 0x0806, 0x88cc, 0x8035, 0x88b5 };
	static const uint16_t tp[2] = { TPID_Q, TPID_AD };
	struct frame f;
	size_t ti, body;
	int tags, fam;

	(void)state;
	for (ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
		for (tags = 0; tags <= 2; tags++) {
			/* Bare ethertype (14 bytes) and a 46-byte body. */
			for (body = 0; body <= 46; body += 46) {
				int i;

				memset(&f, 0, sizeof(f));
				memset(f.b, 0xff, 6);
				f.b[6] = 0x02;
				f.b[11] = 0x01;
				put16(f.b + 12, types[ti]);
				f.len = ETH_LEN;
				if (types[ti] == 0x0806 && body) {
					/* ARP request 198.18.1.1 asks for 198.18.2.1 */
					static const uint8_t arp[28] = {
						0,   1,	 8, 0, 6, 4, 0, 1, 2, 0, 0,   0,  0, 1,
						198, 18, 1, 1, 0, 0, 0, 0, 0, 0, 198, 18, 2, 1
					};

					fr_insert(&f, ETH_LEN, arp, sizeof(arp));
					fr_pad(&f, body - sizeof(arp));
				} else {
					fr_pad(&f, body);
				}
				for (i = 0; i < tags; i++)
					fr_vlan(&f, tp[i]);
				CHECK2(G_NONIP, NON_IP, f.b, f.len,
				       "ethertype %04x, %d tag(s), %zu-byte body", types[ti], tags,
				       body);
			}
		}
	}
	/* The ethertype says IPv4 or IPv6, the version field disagrees. */
	for (fam = 4; fam <= 6; fam += 2) {
		fr_base(&f, fam, P_TCP);
		f.b[f.l3] = (uint8_t)((fam == 4 ? 0x60 : 0x40) | (f.b[f.l3] & 0x0f));
		CHECK2(G_NONIP, MALFORMED, f.b, f.len, "ethertype IPv%d, version %d", fam,
		       fam == 4 ? 6 : 4);
		f.b[f.l3] = (uint8_t)(f.b[f.l3] & 0x0f);
		CHECK2(G_NONIP, MALFORMED, f.b, f.len, "ethertype IPv%d, version 0", fam);
	}
	group_end(G_NONIP);
}

/* ---- IPv4 header -------------------------------------------------------- */

static void test_ipv4(void **state)
{
	static const int protos[] = { P_TCP, P_UDP, P_ICMP };
	struct frame f, c;
	int ihl, pi;
	size_t d, k;

	(void)state;
	for (pi = 0; pi < 3; pi++) {
		int proto = protos[pi], rule = probe_rule(4, proto);

		/* IHL 0..4: the header cannot be that short. */
		for (ihl = 0; ihl < 5; ihl++) {
			fr_base(&f, 4, proto);
			f.b[f.l3] = (uint8_t)(0x40 | ihl);
			CHECK2(G_IPV4, MALFORMED, f.b, f.len, "proto %d IHL %d", proto, ihl);
		}
		/* IHL 5..15 with valid options: the ports come after them. */
		for (ihl = 5; ihl <= 15; ihl++) {
			fr_base(&f, 4, proto);
			if (ihl > 5)
				fr_v4_options(&f, ihl);
			CHECK2(G_IPV4, NORMAL(rule), f.b, f.len, "proto %d IHL %d with options",
			       proto, ihl);
			/* The same with a port the rule does not allow: not 100/110. */
			if (proto != P_ICMP) {
				c = f;
				put16(c.b + c.l4 + 2, 8080);
				CHECK2(G_IPV4, NORMAL(proto == P_TCP ? RULE_TCP4 : RULE_ALL), c.b,
				       c.len, "proto %d IHL %d with options, dport 8080", proto,
				       ihl);
			}
			/* Total length shorter than the header. */
			c = f;
			fr_set_ip_len(&c, (size_t)ihl * 4 - 1);
			CHECK2(G_IPV4, MALFORMED, c.b, c.len, "proto %d IHL %d total length %d",
			       proto, ihl, ihl * 4 - 1);
			fr_set_ip_len(&c, 0);
			CHECK2(G_IPV4, MALFORMED, c.b, c.len, "proto %d IHL %d total length 0",
			       proto, ihl);
			/* Total length larger than the frame. */
			for (d = 1; d <= 64; d *= 8) {
				c = f;
				fr_set_ip_len(&c, fr_ip_len_field(&c) + d);
				CHECK2(G_IPV4, MALFORMED, c.b, c.len,
				       "proto %d IHL %d total length %zu past the frame", proto,
				       ihl, d);
			}
			c = f;
			fr_set_ip_len(&c, 65535);
			CHECK2(G_IPV4, MALFORMED, c.b, c.len, "proto %d IHL %d total length 65535",
			       proto, ihl);
			/* Shorter than the frame: Ethernet padding. */
			for (k = 0; k < sizeof(pads) / sizeof(pads[0]); k++) {
				d = pads[k];
				c = f;
				fr_pad(&c, d);
				CHECK2(G_IPV4, NORMAL(rule), c.b, c.len,
				       "proto %d IHL %d, %zu bytes of Ethernet padding", proto, ihl,
				       d);
			}
			/* The total length ends inside the L4 header while the rest of
			 * the header lies in the frame's padding: the packet's L4
			 * header is cut; reading it from the padding would be matching
			 * it as if it were well formed. */
			for (d = f.l4; d < f.l4_end; d++) {
				c = f;
				fr_set_ip_len(&c, ip_len_for_end(&c, d));
				CHECK2(G_IPV4, MALFORMED, c.b, c.len,
				       "proto %d IHL %d total length %zu ends %zu bytes into the %zu-byte L4 header (rest in padding)",
				       proto, ihl, fr_ip_len_field(&c), d - f.l4, f.l4_end - f.l4);
			}
		}
	}
	group_end(G_IPV4);
}

/* ---- IPv6 header ----------------------------------------------------------- */

static void test_ipv6(void **state)
{
	static const int protos[] = { P_TCP, P_UDP, P_ICMPV6 };
	struct frame f, c;
	size_t d, k;
	int pi;

	(void)state;
	for (pi = 0; pi < 3; pi++) {
		int proto = protos[pi], rule = probe_rule(6, proto);

		fr_base(&f, 6, proto);
		CHECK2(G_IPV6, NORMAL(rule), f.b, f.len, "proto %d (control)", proto);
		for (d = 1; d <= 64; d *= 8) {
			c = f;
			fr_set_ip_len(&c, fr_ip_len_field(&c) + d);
			CHECK2(G_IPV6, MALFORMED, c.b, c.len,
			       "proto %d payload length %zu past the frame", proto, d);
		}
		c = f;
		fr_set_ip_len(&c, 65535);
		CHECK2(G_IPV6, MALFORMED, c.b, c.len, "proto %d payload length 65535", proto);
		for (k = 0; k < sizeof(pads) / sizeof(pads[0]); k++) {
			d = pads[k];
			c = f;
			fr_pad(&c, d);
			CHECK2(G_IPV6, NORMAL(rule), c.b, c.len, "proto %d, %zu bytes of padding",
			       proto, d);
		}
		for (d = f.l4; d < f.l4_end; d++) {
			c = f;
			fr_set_ip_len(&c, ip_len_for_end(&c, d));
			CHECK2(G_IPV6, MALFORMED, c.b, c.len,
			       "proto %d payload length %zu ends %zu bytes into the %zu-byte L4 header (rest in padding)",
			       proto, fr_ip_len_field(&c), d - f.l4, f.l4_end - f.l4);
		}
		c = f;
		fr_set_ip_len(&c, 0);
		CHECK2(G_IPV6, MALFORMED, c.b, c.len, "proto %d payload length 0", proto);
	}
	group_end(G_IPV6);
}

/* ---- TCP header -------------------------------------------------------------- */

static void test_tcp(void **state)
{
	struct frame f, c;
	int fam, doff;
	size_t cut;

	(void)state;
	for (fam = 4; fam <= 6; fam += 2) {
		for (doff = 0; doff < 5; doff++) {
			fr_base(&f, fam, P_TCP);
			f.b[f.l4 + 12] = (uint8_t)(doff << 4);
			CHECK2(G_TCP, MALFORMED, f.b, f.len, "ipv%d data offset %d", fam, doff);
		}
		for (doff = 5; doff <= 15; doff++) {
			uint8_t opts[40];
			size_t n = (size_t)(doff - 5) * 4;

			/* MSS, then NOPs; a complete header of doff * 4 bytes. */
			memset(opts, 1, sizeof(opts));
			if (n >= 4) {
				opts[0] = 2;
				opts[1] = 4;
				put16(opts + 2, 1460);
			}
			fr_base(&f, fam, P_TCP);
			fr_insert(&f, f.l4_end, opts, n); /* moves l4_end on by n */
			fr_set_ip_len(&f, fr_ip_len_field(&f) + n);
			f.b[f.l4 + 12] = (uint8_t)(doff << 4);
			CHECK2(G_TCP, NORMAL(RULE_TCP80), f.b, f.len,
			       "ipv%d data offset %d with options", fam, doff);
			/* The options cut: the data offset runs past the segment
			 * (IP length fixed, so only the TCP header is short). */
			for (cut = f.l4 + TCP_LEN; cut < f.l4_end; cut++) {
				c = f;
				fr_set_ip_len(&c, ip_len_for_end(&c, cut));
				CHECK2(G_TCP, MALFORMED, c.b, cut,
				       "ipv%d data offset %d (%d bytes) in a %zu-byte segment", fam,
				       doff, doff * 4, cut - f.l4);
			}
		}
	}
	group_end(G_TCP);
}

/* ---- IPv6 extension headers ---------------------------------------------- */

/* A chain of @n headers: hop-by-hop first, then routing / dest-opts / AH /
 * fragment (offset 0, M) in turn, @variant shifting the mix. */
static size_t chain(struct ext *e, size_t n, int variant)
{
	static const uint8_t mix[4][4] = {
		{ P_DSTOPTS, P_DSTOPTS, P_DSTOPTS, P_DSTOPTS },
		{ P_ROUTING, P_DSTOPTS, P_FRAGMENT, P_DSTOPTS },
		{ P_DSTOPTS, P_ROUTING, P_AH, P_DSTOPTS },
		{ P_ROUTING, P_AH, P_DSTOPTS, P_FRAGMENT },
	};
	size_t i;

	for (i = 0; i < n; i++) {
		uint8_t t = i == 0 && variant != 0 ? P_HOPOPTS : mix[variant][i % 4];

		e[i] = t == P_FRAGMENT ? EXT_FRAG(0, 1) : EXT(t);
	}
	return n;
}

static void test_ipv6_ext(void **state)
{
	static const int protos[] = { P_TCP, P_UDP, P_ICMPV6 };
	struct ext e[20];
	struct frame f;
	size_t n, i;
	int pi, v;

	(void)state;
	for (pi = 0; pi < 3; pi++) {
		int proto = protos[pi], rule = probe_rule(6, proto);

		for (v = 0; v < 4; v++) {
			/* 1..6 headers: judged normally, ports (or ICMP type) read. */
			for (n = 1; n <= 6; n++) {
				fr_base(&f, 6, proto);
				fr_v6_ext(&f, e, chain(e, n, v));
				CHECK2(G_EXT, NORMAL(rule), f.b, f.len,
				       "proto %d, %zu extension headers (mix %d)", proto, n, v);
			}
			/* 7 or more: beyond the walk bound. */
			for (n = 7; n <= 16; n = n < 10 ? n + 1 : n == 10 ? 16 : 17) {
				fr_base(&f, 6, proto);
				fr_v6_ext(&f, e, chain(e, n, v));
				CHECK2(G_EXT, EXT_LIMIT, f.b, f.len,
				       "proto %d, %zu extension headers (mix %d)", proto, n, v);
			}
		}
		/* A chain whose last header claims more bytes than the frame has
		 * (488: under the walk's 1024-byte offset guard; 2048: over it). */
		for (n = 1; n <= 6; n++) {
			for (i = 0; i < 2; i++) {
				int hl = i == 0 ? 60 : 255;

				fr_base(&f, 6, proto);
				chain(e, n, 1);
				e[n - 1] = (struct ext){ P_DSTOPTS, 0, hl };
				fr_v6_ext(&f, e, n);
				fr_set_ip_len(&f, ip_len_for_end(&f, f.len));
				CHECK2(G_EXT, MALFORMED, f.b, f.len,
				       "proto %d, %zu headers, the last claims %d bytes", proto, n,
				       (hl + 1) * 8);
			}
		}
		/* ... a middle one does: the next header starts beyond the frame. */
		for (n = 2; n <= 6; n++) {
			fr_base(&f, 6, proto);
			chain(e, n, 2);
			e[0] = (struct ext){ P_HOPOPTS, 0, 40 };
			fr_v6_ext(&f, e, n);
			fr_set_ip_len(&f, ip_len_for_end(&f, f.len));
			CHECK2(G_EXT, MALFORMED, f.b, f.len,
			       "proto %d, %zu headers, the first claims 328 bytes", proto, n);
		}
	}
	/* The same with no upper-layer header behind the chain (next header 59,
	 * or a protocol without ports): the last header is still cut. */
	for (i = 0; i < 4; i++) {
		int nh = i % 2 == 0 ? P_NONE : 47, hl = i < 2 ? 60 : 255;

		for (n = 1; n <= 6; n++) {
			fr_base(&f, 6, P_UDP);
			f.len = f.l4; /* drop the UDP header and payload */
			fr_set_ip_len(&f, 0);
			chain(e, n, 1);
			fr_v6_ext_nh(&f, e, n, nh);
			CHECK2(G_EXT, NORMAL(RULE_ALL), f.b, f.len,
			       "%zu headers, then next header %d (control)", n, nh);
			e[n - 1] = (struct ext){ P_DSTOPTS, 0, hl };
			fr_base(&f, 6, P_UDP);
			f.len = f.l4;
			fr_set_ip_len(&f, 0);
			fr_v6_ext_nh(&f, e, n, nh);
			fr_set_ip_len(&f, ip_len_for_end(&f, f.len));
			CHECK2(G_EXT, MALFORMED, f.b, f.len,
			       "%zu headers, the last claims %d bytes, next header %d", n,
			       (hl + 1) * 8, nh);
		}
	}
	/* A chain ending with a non-first fragment: judged without ports. */
	for (n = 1; n <= 6; n++) {
		fr_base(&f, 6, P_TCP);
		chain(e, n, 0);
		e[n - 1] = EXT_FRAG(185, 1);
		fr_v6_ext(&f, e, n);
		CHECK2(G_EXT, NORMAL(RULE_TCP6), f.b, f.len,
		       "tcp, %zu headers, the last a non-first fragment", n);
	}
	group_end(G_EXT);
}

/* ---- IPv4 fragments ---------------------------------------------------------- */

static void test_frag_v4(void **state)
{
	static const int protos[] = { P_TCP, P_UDP, P_ICMP };
	static const uint16_t offs[] = { 1, 2, 3, 185, 8191 };
	struct frame f;
	size_t oi;
	int pi, mf;

	(void)state;
	for (pi = 0; pi < 3; pi++) {
		int proto = protos[pi];

		/* First fragment (MF, offset 0): judged with its L4 header. */
		fr_base(&f, 4, proto);
		fr_v4_frag(&f, true, 0);
		CHECK2(G_FRAG4, NORMAL(probe_rule(4, proto)), f.b, f.len, "proto %d first fragment",
		       proto);
		/* Middle (MF) and last fragments: no L4 header. The bytes after
		 * the IP header look like the probe's L4 header; they must not be
		 * read as one. */
		for (mf = 1; mf >= 0; mf--) {
			for (oi = 0; oi < sizeof(offs) / sizeof(offs[0]); oi++) {
				fr_base(&f, 4, proto);
				fr_v4_frag(&f, mf, offs[oi]);
				CHECK2(G_FRAG4, NORMAL(frag_rule(4, proto)), f.b, f.len,
				       "proto %d %s fragment offset %u", proto,
				       mf ? "middle" : "last", offs[oi]);
			}
		}
		/* A non-first fragment with options. */
		fr_base(&f, 4, proto);
		fr_v4_options(&f, 7);
		fr_v4_frag(&f, false, 3);
		CHECK2(G_FRAG4, NORMAL(frag_rule(4, proto)), f.b, f.len,
		       "proto %d last fragment with options", proto);
		/* Tiny first fragments: the L4 header cut (IP length consistent). */
		{
			size_t cut;

			fr_base(&f, 4, proto);
			fr_v4_frag(&f, true, 0);
			for (cut = f.l4; cut < f.l4_end; cut++) {
				struct frame c = f;

				fr_set_ip_len(&c, ip_len_for_end(&c, cut));
				CHECK2(G_FRAG4, MALFORMED, c.b, cut,
				       "proto %d first fragment with %zu bytes of L4 header", proto,
				       cut - f.l4);
			}
		}
	}
	/* Overlapping fragments of one TCP datagram, each judged alone. */
	{
		struct frame g;

		/* first: dport 80 SYN -> 100 */
		fr_base(&f, 4, P_TCP);
		fr_v4_frag(&f, true, 0);
		CHECK2(G_FRAG4, NORMAL(RULE_TCP80), f.b, f.len, "overlap: first, dport 80");
		/* a second "first" fragment rewriting the ports: dport 22 -> 160 */
		fr_base_ports(&g, 4, P_TCP, PKT_TCP_SYN, 22);
		fr_v4_frag(&g, true, 0);
		CHECK2(G_FRAG4, NORMAL(RULE_TCP4), g.b, g.len, "overlap: second first, dport 22");
		/* ... rewriting the flags to ACK -> the established deny (50) */
		fr_base_ports(&g, 4, P_TCP, PKT_TCP_ACK, 80);
		fr_v4_frag(&g, true, 0);
		CHECK2(G_FRAG4, DENIED(RULE_EST), g.b, g.len, "overlap: second first, ACK");
		/* offset 1 overlaps TCP bytes 8..: its data reads like a TCP
		 * header with ACK and dport 80, and must count for nothing */
		fr_base_ports(&g, 4, P_TCP, PKT_TCP_ACK, 80);
		fr_v4_frag(&g, true, 1);
		CHECK2(G_FRAG4, NORMAL(RULE_TCP4), g.b, g.len, "overlap: offset 1 (MF)");
		fr_v4_frag(&g, false, 1);
		CHECK2(G_FRAG4, NORMAL(RULE_TCP4), g.b, g.len, "overlap: offset 1 (last)");
		fr_v4_frag(&g, true, 2);
		CHECK2(G_FRAG4, NORMAL(RULE_TCP4), g.b, g.len, "overlap: offset 2 (MF)");
	}
	group_end(G_FRAG4);
}

/* ---- IPv6 fragments ---------------------------------------------------------- */

static void test_frag_v6(void **state)
{
	static const int protos[] = { P_TCP, P_UDP, P_ICMPV6 };
	static const uint16_t offs[] = { 1, 2, 3, 185, 8191 };
	struct ext e[2];
	struct frame f;
	size_t oi;
	int pi, mf;

	(void)state;
	for (pi = 0; pi < 3; pi++) {
		int proto = protos[pi];

		for (mf = 1; mf >= 0; mf--) {
			/* offset 0: first fragment (M) or atomic fragment (no M) */
			fr_base(&f, 6, proto);
			e[0] = EXT_FRAG(0, mf);
			fr_v6_ext(&f, e, 1);
			CHECK2(G_FRAG6, NORMAL(probe_rule(6, proto)), f.b, f.len,
			       "proto %d fragment offset 0 %s", proto, mf ? "M" : "(atomic)");
			for (oi = 0; oi < sizeof(offs) / sizeof(offs[0]); oi++) {
				fr_base(&f, 6, proto);
				e[0] = EXT_FRAG(offs[oi], mf);
				fr_v6_ext(&f, e, 1);
				CHECK2(G_FRAG6, NORMAL(frag_rule(6, proto)), f.b, f.len,
				       "proto %d %s fragment offset %u", proto,
				       mf ? "middle" : "last", offs[oi]);
			}
		}
		/* behind a hop-by-hop and a destination options header */
		fr_base(&f, 6, proto);
		e[0] = EXT(P_HOPOPTS);
		e[1] = EXT_FRAG(3, 1);
		fr_v6_ext(&f, e, 2);
		CHECK2(G_FRAG6, NORMAL(frag_rule(6, proto)), f.b, f.len,
		       "proto %d hop-by-hop then middle fragment", proto);
		/* Tiny first fragment: L4 header cut (payload length consistent). */
		{
			size_t cut;

			fr_base(&f, 6, proto);
			e[0] = EXT_FRAG(0, 1);
			fr_v6_ext(&f, e, 1);
			for (cut = f.l4; cut < f.l4_end; cut++) {
				struct frame c = f;

				fr_set_ip_len(&c, ip_len_for_end(&c, cut));
				CHECK2(G_FRAG6, MALFORMED, c.b, cut,
				       "proto %d first fragment with %zu bytes of L4 header", proto,
				       cut - f.l4);
			}
			/* The fragment header itself cut. */
			for (cut = f.l3 + IP6_LEN; cut < f.l4; cut++) {
				struct frame c = f;

				fr_set_ip_len(&c, ip_len_for_end(&c, cut));
				CHECK2(G_FRAG6, MALFORMED, c.b, cut,
				       "proto %d fragment header cut after %zu bytes", proto,
				       cut - f.l3 - IP6_LEN);
			}
		}
	}
	/* Overlapping: a first fragment, a rewrite of it, an offset-1 one. */
	{
		fr_base(&f, 6, P_TCP);
		e[0] = EXT_FRAG(0, 1);
		fr_v6_ext(&f, e, 1);
		CHECK2(G_FRAG6, NORMAL(RULE_TCP80), f.b, f.len, "overlap: first, dport 80");
		fr_base_ports(&f, 6, P_TCP, PKT_TCP_SYN, 22);
		fr_v6_ext(&f, e, 1);
		CHECK2(G_FRAG6, NORMAL(RULE_TCP6), f.b, f.len, "overlap: second first, dport 22");
		fr_base_ports(&f, 6, P_TCP, PKT_TCP_ACK, 80);
		fr_v6_ext(&f, e, 1);
		CHECK2(G_FRAG6, DENIED(RULE_EST), f.b, f.len, "overlap: second first, ACK");
		fr_base_ports(&f, 6, P_TCP, PKT_TCP_ACK, 80);
		e[0] = EXT_FRAG(1, 1);
		fr_v6_ext(&f, e, 1);
		CHECK2(G_FRAG6, NORMAL(RULE_TCP6), f.b, f.len,
		       "overlap: offset 1, ACK dport 80 inside");
	}
	group_end(G_FRAG6);
}

/* ---- counters ------------------------------------------------------------ */

static int read_counters(struct moat_dir_counters out[2])
{
	struct moat_maps *m = moat_inst_maps(cinst);
	int ncpu = libbpf_num_possible_cpus(), c;
	struct moat_dir_counters *v;
	__u32 dir;

	if (ncpu <= 0)
		return -EINVAL;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	memset(out, 0, 2 * sizeof(*out));
	for (dir = 0; dir < 2; dir++) {
		if (bpf_map_lookup_elem(m->counters, &dir, v)) {
			free(v);
			return -errno;
		}
		for (c = 0; c < ncpu; c++) {
			size_t k;
			const __u64 *src = (const __u64 *)&v[c];
			__u64 *dst = (__u64 *)&out[dir];

			for (k = 0; k < sizeof(*v) / sizeof(__u64); k++)
				dst[k] += src[k];
		}
	}
	free(v);
	return 0;
}

/* Run a frame through the counting instance; check pass/drop. */
static void count_run(int dir, const uint8_t *b, size_t len, bool want_pass, const char *what)
{
	struct tally *t = &tallies[G_COUNTERS];
	bool pass = !want_pass;
	int err;

	t->cases++;
	err = moat_inst_run(cinst, dir, b, len, &pass, NULL);
	if (!err && pass == want_pass) {
		t->ok++;
		return;
	}
	t->failed++;
	printf("# FAIL [counters] %s dir %s: want %s, got %s (err %d)\n", what, dir ? "out" : "in",
	       want_pass ? "PASS" : "DROP", pass ? "PASS" : "DROP", err);
}

#define DELTA(f) ((unsigned long long)(after[dir].f - before[dir].f))

static void check_delta(const char *name, unsigned long long got, unsigned long long want, int dir)
{
	struct tally *t = &tallies[G_COUNTERS];

	t->cases++;
	if (got == want) {
		t->ok++;
		return;
	}
	t->failed++;
	printf("# FAIL [counters] dir %s: %s went up by %llu, want %llu\n", dir ? "out" : "in",
	       name, got, want);
}

static void test_counters(void **state)
{
	struct moat_dir_counters before[2], after[2];
	struct frame f;
	int dir, i;

	(void)state;
	assert_int_equal(read_counters(before), 0);
	for (dir = 0; dir < 2; dir++) {
		unsigned long long n_mal = 0, b_mal = 0, n_ext = 0, b_ext = 0, n_frag = 0;
		unsigned long long n_nonip = 0, n_pass = 0, n_all = 0;
		struct ext e[8];

		/* 5 malformed: IHL 3, cut TCP, third tag, TCP doff 2, v6 length past */
		fr_base(&f, 4, P_TCP);
		f.b[f.l3] = 0x43;
		count_run(dir, f.b, f.len, false, "IHL 3");
		n_mal++, b_mal += f.len;
		fr_base(&f, 4, P_TCP);
		count_run(dir, f.b, f.l4 + 10, false, "cut TCP");
		n_mal++, b_mal += f.l4 + 10;
		fr_base(&f, 6, P_UDP);
		fr_vlan(&f, TPID_Q);
		fr_vlan(&f, TPID_Q);
		fr_vlan(&f, TPID_AD);
		count_run(dir, f.b, f.len, false, "three tags");
		n_mal++, b_mal += f.len;
		fr_base(&f, 6, P_TCP);
		f.b[f.l4 + 12] = 0x20;
		count_run(dir, f.b, f.len, false, "TCP data offset 2");
		n_mal++, b_mal += f.len;
		fr_base(&f, 6, P_TCP);
		fr_set_ip_len(&f, fr_ip_len_field(&f) + 1);
		count_run(dir, f.b, f.len, false, "IPv6 payload length past the frame");
		n_mal++, b_mal += f.len;

		/* 3 beyond the extension-header walk bound (7, 8, 12 headers) */
		for (i = 0; i < 3; i++) {
			size_t n = i == 0 ? 7 : i == 1 ? 8 : 12;
			struct ext big[12];

			fr_base(&f, 6, P_TCP);
			fr_v6_ext(&f, big, chain(big, n, 2));
			count_run(dir, f.b, f.len, false, "beyond the extension-header bound");
			n_ext++, b_ext += f.len;
		}

		/* 4 non-first fragments (pass by 160 / 200), 2 first fragments */
		fr_base(&f, 4, P_TCP);
		fr_v4_frag(&f, true, 185);
		count_run(dir, f.b, f.len, true, "v4 middle fragment");
		n_frag++, n_pass++;
		fr_v4_frag(&f, false, 370);
		count_run(dir, f.b, f.len, true, "v4 last fragment");
		n_frag++, n_pass++;
		fr_base(&f, 6, P_UDP);
		e[0] = EXT_FRAG(185, 1);
		fr_v6_ext(&f, e, 1);
		count_run(dir, f.b, f.len, true, "v6 middle fragment");
		n_frag++, n_pass++;
		fr_base(&f, 6, P_TCP);
		e[0] = EXT(P_HOPOPTS);
		e[1] = EXT_FRAG(370, 0);
		fr_v6_ext(&f, e, 2);
		count_run(dir, f.b, f.len, true, "v6 last fragment");
		n_frag++, n_pass++;
		fr_base(&f, 4, P_UDP);
		fr_v4_frag(&f, true, 0);
		count_run(dir, f.b, f.len, true, "v4 first fragment");
		n_pass++;
		fr_base(&f, 6, P_TCP);
		e[0] = EXT_FRAG(0, 1);
		fr_v6_ext(&f, e, 1);
		count_run(dir, f.b, f.len, true, "v6 first fragment");
		n_pass++;

		/* 2 non-IP */
		fr_base(&f, 4, P_TCP);
		put16(f.b + 12, 0x0806);
		count_run(dir, f.b, f.len, true, "ARP");
		n_nonip++, n_pass++;
		put16(f.b + 12, 0x88cc);
		count_run(dir, f.b, f.len, true, "LLDP");
		n_nonip++, n_pass++;
		n_all = n_mal + n_ext + n_pass;

		assert_int_equal(read_counters(after), 0);
		check_delta("packets", DELTA(packets), n_all, dir);
		check_delta("passed", DELTA(passed), n_pass, dir);
		check_delta("dropped", DELTA(dropped), n_mal + n_ext, dir);
		check_delta("ext_hdr_limit", DELTA(ext_hdr_limit), n_ext, dir);
		check_delta("fragments", DELTA(fragments), n_frag, dir);
		check_delta("non_ip", DELTA(non_ip), n_nonip, dir);
		/* Drops beyond the walk bound are malformed frames too (README:
		 * "counted as malformed"); accept them counted there or not. */
		if (DELTA(malformed) == n_mal + n_ext) {
			check_delta("malformed", DELTA(malformed), n_mal + n_ext, dir);
			check_delta("malformed_bytes", DELTA(malformed_bytes), b_mal + b_ext, dir);
		} else {
			check_delta("malformed", DELTA(malformed), n_mal, dir);
			check_delta("malformed_bytes", DELTA(malformed_bytes), b_mal, dir);
		}
		check_delta("nacl_default_deny", DELTA(nacl_default_deny), 0, dir);
		printf("# counters dir %s: packets +%llu passed +%llu dropped +%llu malformed +%llu "
		       "(%llu bytes) ext_hdr_limit +%llu fragments +%llu non_ip +%llu\n",
		       dir ? "out" : "in", DELTA(packets), DELTA(passed), DELTA(dropped),
		       DELTA(malformed), DELTA(malformed_bytes), DELTA(ext_hdr_limit),
		       DELTA(fragments), DELTA(non_ip));
		memcpy(before, after, sizeof(before));
	}
	group_end(G_COUNTERS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_truncation), cmocka_unit_test(test_vlan),
		cmocka_unit_test(test_non_ip),	   cmocka_unit_test(test_ipv4),
		cmocka_unit_test(test_ipv6),	   cmocka_unit_test(test_tcp),
		cmocka_unit_test(test_ipv6_ext),   cmocka_unit_test(test_frag_v4),
		cmocka_unit_test(test_frag_v6),	   cmocka_unit_test(test_counters),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("MOAT_MALFORMED_SHOW"))
		max_shown = (unsigned)strtoul(getenv("MOAT_MALFORMED_SHOW"), NULL, 0);
	return cmocka_run_group_tests(tests, setup, teardown);
}
