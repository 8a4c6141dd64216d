// SPDX-License-Identifier: GPL-2.0
/*
 * test_sg_differential.c - the stateful SG stage of the real datapath
 * against a reference model (tests/lib/sg_model.c).
 *
 * A private, non-trace instance is loaded (its programs commit conntrack
 * entries). For S seeded sequences: a random SG-only rule set (a few rules
 * each direction, sometimes untracked-style pairs, sometimes a direction
 * with no rules, random conntrack timeouts) and a handful of flows (IPv4 and
 * IPv6 TCP, UDP, ICMP echo, other ICMP, other protocols); then P packets of
 * those flows in both directions (TCP handshakes and every flag mix, ICMP
 * errors quoting the flows, well-formed or not, fragments, NDP), with the
 * clock moved on between them. Every packet goes through the XDP program
 * (in) or the TC program (out) with BPF_PROG_TEST_RUN and through the model;
 * the verdicts must agree, and afterwards the whole conntrack map must hold
 * exactly the model's entries: state, originator, seen sides, direction of
 * the first packet, timeout, packet and byte counts (whole frames, the
 * creating packet included), and last/created timestamps.
 *
 * The clock: the programs read bpf_ktime_get_ns(). To move time on by D,
 * every entry of the map gets D subtracted from last_ns and created_ns; the
 * model's clock is CLOCK_MONOTONIC + the sum of all D. Moves never put an
 * entry within SGT_GUARD_NS of its expiry, so the few microseconds between
 * the model's clock read and the program's cannot flip a verdict.
 *
 * Some sequences reload a new rule set half-way (entries must survive).
 *
 * On a disagreement: the seed and the sequence index to rerun it alone, the
 * rule set, the last packets and clock moves, and what each side did.
 *
 * Applying a rule set costs far more than a packet, so the defaults favour
 * long sequences over many rule sets.
 *
 * Environment: MOAT_SG_SEQS (40), MOAT_SG_PACKETS (1500 per sequence),
 * MOAT_SG_SEED (fixed default), MOAT_SG_ONLY (run only that sequence),
 * MOAT_SG_LOCAL_ANY_ONLY=1 (untracked rules need a local side of "any", a
 * /0 there does not do: the brief's literal text, which the compiler does
 * not follow; see sg_model.h). Needs root.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>

#include "datapath.h"
#include "dp_load.h"
#include "generation.h"
#include "packet.h"
#include "pin.h"
#include "randgen.h"
#include "rules.h"
#include "sg_model.h"

#define SGT_DEFAULT_SEQS 40
#define SGT_DEFAULT_PACKETS 1500
#define SGT_DEFAULT_SEED 20250614
#define SGT_MS (1000ll * 1000)
/* No clock move leaves an entry this close to its expiry. */
#define SGT_GUARD_NS (300 * SGT_MS)
/* How far a map timestamp may be from the model's (model read first). */
#define SGT_TS_TOL_NS (100 * SGT_MS)
#define SGT_HIST 40
#define SGT_MAX_REPORTS 3
#define SGT_FRAME_MAX 512

#define P_ICMP 1
#define P_TCP 6
#define P_UDP 17
#define P_ICMPV6 58

#define F_FIN PKT_TCP_FIN
#define F_SYN PKT_TCP_SYN
#define F_RST PKT_TCP_RST
#define F_PSH PKT_TCP_PSH
#define F_ACK PKT_TCP_ACK
#define F_URG PKT_TCP_URG

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct sgt_cfg {
	uint64_t seed;
	size_t seqs, packets;
	long only;
};

/* What the run covered, to show it reached the states it should. */
struct sgt_tally {
	size_t by[SG_BY_COUNT];
	size_t created, replaced, expired_seen, reopened, exempt, drops, v6, frags;
	size_t icmp_errors, related, moves, reloads, near_edge;
	size_t state_hits[4]; /* entry hits by the state the entry ended in */
};

/* The harness: one instance, its conntrack map, the model, the clock. */
struct sgt {
	struct moat_inst *inst;
	/* The connection tables: every map of the programs with conntrack's
	 * key and value (one today, "conntrack"; a datapath may split it, e.g.
	 * half-open flows apart). Together they must hold the model's table,
	 * each key in one of them at most. */
	int ct_fds[4];
	char ct_names[4][BPF_OBJ_NAME_LEN];
	size_t nct;
	struct sg_model model;
	int64_t shift; /* total clock moves (ns): model time = monotonic + shift */
	char hist[SGT_HIST][640];
	size_t nhist;
	uint64_t checked;
	size_t pkt_no; /* packets of the current sequence */
	struct sgt_tally tally;
};

static struct sgt H;
static struct sgt_cfg cfg;

/* ---- small helpers ----------------------------------------------------- */

static unsigned long long env_ull(const char *name, unsigned long long def)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long n;

	if (!v || !*v)
		return def;
	errno = 0;
	n = strtoull(v, &end, 0);
	if (errno || *end) {
		fprintf(stderr, "%s=%s is not a number; using %llu\n", name, v, def);
		return def;
	}
	return n;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SG_NSEC + ts.tv_nsec;
}

static int64_t model_now(const struct sgt *h)
{
	return mono_ns() + h->shift;
}

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = v >> 8;
	b[1] = v & 0xff;
}

static void put32(uint8_t *b, uint32_t v)
{
	put16(b, v >> 16);
	put16(b + 2, v & 0xffff);
}

static void addr_set(uint8_t *dst, const char *text)
{
	int fam = strchr(text, ':') ? AF_INET6 : AF_INET;

	memset(dst, 0, 16);
	if (inet_pton(fam, text, dst) != 1)
		fail_msg("bad address %s", text);
}

static void hist_add(struct sgt *h, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->hist[h->nhist % SGT_HIST], sizeof(h->hist[0]), fmt, ap);
	va_end(ap);
	h->nhist++;
}

static void hist_print(const struct sgt *h)
{
	size_t i = h->nhist > SGT_HIST ? h->nhist - SGT_HIST : 0;

	fprintf(stderr, "  last %zu events of the sequence:\n", h->nhist - i);
	for (; i < h->nhist; i++)
		fprintf(stderr, "    %s\n", h->hist[i % SGT_HIST]);
}

/* ---- frames ------------------------------------------------------------ */

static bool is_icmp(int family, int proto)
{
	return (family == 4 && proto == P_ICMP) || (family == 6 && proto == P_ICMPV6);
}

static bool is_echo(int family, int type)
{
	return family == 4 ? (type == 8 || type == 0) : (type == 128 || type == 129);
}

/* The quoted datagram of an ICMP message, defects included, at @b. */
static size_t build_quote(uint8_t *b, const struct sg_pkt *pkt)
{
	const struct sg_quote *q = &pkt->q;
	int fam = pkt->p.family;
	uint8_t hdr[64], l4[8];
	size_t hlen, i, n;

	memset(l4, 0, sizeof(l4));
	if (q->proto == P_TCP || q->proto == P_UDP) {
		put16(l4, q->sport);
		put16(l4 + 2, q->dport);
		if (q->proto == P_TCP)
			put32(l4 + 4, 0x01020304); /* sequence number */
		else
			put16(l4 + 4, 16);
	} else if (is_icmp(fam, q->proto)) {
		l4[0] = (uint8_t)q->icmp_type;
		l4[1] = (uint8_t)q->icmp_code;
		put16(l4 + 4, q->icmp_id);
		put16(l4 + 6, 1);
	} else {
		memcpy(l4, "\x12\x34\x56\x78quot", 8);
	}

	memset(hdr, 0, sizeof(hdr));
	if (fam == 4) {
		size_t words = q->v4_ihl < 5 ? 5 : q->v4_ihl;

		hlen = words * 4;
		hdr[0] = 0x40 | (q->v4_ihl & 0x0f);
		put16(hdr + 2, (uint16_t)(hlen + 8 + 8));
		put16(hdr + 4, 0x7171);
		hdr[8] = 63;
		hdr[9] = (uint8_t)q->proto;
		memcpy(hdr + 12, q->src, 4);
		memcpy(hdr + 16, q->dst, 4);
		for (i = 20; i < hlen; i++)
			hdr[i] = 1; /* NOP options */
	} else {
		hlen = 40 + (q->v6_ext ? 8 : 0);
		hdr[0] = 0x60;
		put16(hdr + 4, (uint16_t)((q->v6_ext ? 8 : 0) + 16));
		hdr[6] = q->v6_ext ? 60 : (uint8_t)q->proto; /* 60: Destination Options */
		hdr[7] = 63;
		memcpy(hdr + 8, q->src, 16);
		memcpy(hdr + 24, q->dst, 16);
		if (q->v6_ext) {
			hdr[40] = (uint8_t)q->proto;
			hdr[41] = 0;
			hdr[42] = 1; /* PadN */
			hdr[43] = 4;
		}
	}
	if (q->hdr_cut) {
		n = q->hdr_cut < hlen ? q->hdr_cut : hlen - 1;
		memcpy(b, hdr, n);
		return n;
	}
	memcpy(b, hdr, hlen);
	n = q->l4_bytes < 8 ? q->l4_bytes : 8;
	memcpy(b + hlen, l4, n);
	for (i = 8; i < q->l4_bytes; i++)
		b[hlen + i] = (uint8_t)(0xa0 + i);
	return hlen + (q->l4_bytes > 8 ? q->l4_bytes : n);
}

/* An Ethernet frame for @pkt. Returns its length. */
static size_t build_frame(const struct sg_pkt *pkt, uint8_t *buf)
{
	const struct packet *p = &pkt->p;
	uint8_t l4[256];
	size_t l4n = 0, off = 14, l3;
	bool v6frag = p->family == 6 && (p->frag || pkt->first_frag);

	memset(l4, 0, sizeof(l4));
	if (!p->frag) {
		if (p->proto == P_TCP) {
			put16(l4, p->sport);
			put16(l4 + 2, p->dport);
			put32(l4 + 4, 1000);
			put32(l4 + 8, p->tcp_flags & F_ACK ? 2000 : 0);
			l4[12] = 5 << 4;
			l4[13] = p->tcp_flags;
			put16(l4 + 14, 65535);
			l4n = 20;
		} else if (p->proto == P_UDP) {
			put16(l4, p->sport);
			put16(l4 + 2, p->dport);
			put16(l4 + 4, 16);
			l4n = 8;
		} else if (is_icmp(p->family, p->proto)) {
			l4[0] = (uint8_t)p->icmp_type;
			l4[1] = (uint8_t)p->icmp_code;
			if (is_echo(p->family, p->icmp_type)) {
				put16(l4 + 4, pkt->icmp_id);
				put16(l4 + 6, 7);
			}
			l4n = 8;
			if (pkt->q.present)
				l4n += build_quote(l4 + 8, pkt);
		}
	}
	if (!(is_icmp(p->family, p->proto) && pkt->q.present && !p->frag)) {
		memcpy(l4 + l4n, "moat-sg!", 8);
		l4n += 8;
	}

	memset(buf, 0, 14);
	buf[0] = 0x02;
	buf[5] = 0x02;
	buf[6] = 0x02;
	buf[11] = 0x01;
	put16(buf + 12, p->family == 4 ? 0x0800 : 0x86dd);
	if (p->family == 4) {
		uint8_t *ip = buf + off;

		memset(ip, 0, 20);
		ip[0] = 0x45;
		put16(ip + 2, (uint16_t)(20 + l4n));
		put16(ip + 4, 0x5347);
		put16(ip + 6, p->frag ? 185 : pkt->first_frag ? 0x2000 : 0);
		ip[8] = 64;
		ip[9] = (uint8_t)p->proto;
		memcpy(ip + 12, p->src, 4);
		memcpy(ip + 16, p->dst, 4);
		l3 = 20;
	} else {
		uint8_t *ip = buf + off;

		memset(ip, 0, 40);
		ip[0] = 0x60;
		put16(ip + 4, (uint16_t)((v6frag ? 8 : 0) + l4n));
		ip[6] = v6frag ? 44 : (uint8_t)p->proto;
		ip[7] = 64;
		memcpy(ip + 8, p->src, 16);
		memcpy(ip + 24, p->dst, 16);
		l3 = 40;
		if (v6frag) {
			uint8_t *fh = ip + 40;

			fh[0] = (uint8_t)p->proto;
			fh[1] = 0;
			put16(fh + 2, p->frag ? 185 << 3 : 1); /* offset, M */
			put32(fh + 4, 0x5347);
			l3 += 8;
		}
	}
	off += l3;
	memcpy(buf + off, l4, l4n);
	return off + l4n;
}

/* ---- the datapath's conntrack map ------------------------------------- */

static size_t ct_keys(int fd, struct moat_ct_key **out)
{
	struct moat_ct_key k, *v = NULL;
	size_t n = 0, cap = 0;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &k) == 0) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = realloc(v, cap * sizeof(*v));
			assert_non_null(v);
		}
		v[n++] = k;
		prev = &v[n - 1];
	}
	*out = v;
	return n;
}

static void ct_clear(struct sgt *h)
{
	struct moat_ct_key *k;
	size_t i, m, n;

	for (m = 0; m < h->nct; m++) {
		n = ct_keys(h->ct_fds[m], &k);
		for (i = 0; i < n; i++)
			bpf_map_delete_elem(h->ct_fds[m], &k[i]);
		free(k);
		n = ct_keys(h->ct_fds[m], &k);
		free(k);
		assert_int_equal(n, 0);
	}
	sg_model_flush(&h->model);
	h->shift = 0;
}

/* Look @key up in every table: how many hold it; the value of the last. */
static int ct_lookup(const struct sgt *h, const struct moat_ct_key *key, struct moat_ct_value *val,
		     size_t *which)
{
	struct moat_ct_value v;
	size_t m;
	int n = 0;

	for (m = 0; m < h->nct; m++) {
		if (bpf_map_lookup_elem(h->ct_fds[m], key, &v))
			continue;
		*val = v;
		if (which)
			*which = m;
		n++;
	}
	return n;
}

/* Move the clock on by @d ns: every entry gets older by @d. */
static void ct_advance(struct sgt *h, int64_t d)
{
	struct moat_ct_key *k;
	struct moat_ct_value v;
	size_t i, m, n;

	for (m = 0; m < h->nct; m++) {
		n = ct_keys(h->ct_fds[m], &k);
		for (i = 0; i < n; i++) {
			if (bpf_map_lookup_elem(h->ct_fds[m], &k[i], &v))
				continue;
			v.last_ns -= (uint64_t)d;
			v.created_ns -= (uint64_t)d;
			if (bpf_map_update_elem(h->ct_fds[m], &k[i], &v, BPF_EXIST))
				fail_msg("updating a conntrack entry: %s", strerror(errno));
		}
		free(k);
	}
	h->shift += d;
	h->tally.moves++;
}

static void fmt_value(const struct moat_ct_value *v, int64_t shift, int64_t now, char *buf,
		      size_t len)
{
	snprintf(buf, len,
		 "state %s flags 0x%02x origin_dir %u timeout %u pkts %u/%u bytes %llu/%llu "
		 "age %.3fs idle %.3fs",
		 sg_state_name(v->state), v->flags, v->origin_dir, v->timeout_s, v->packets[0],
		 v->packets[1], (unsigned long long)v->bytes[0], (unsigned long long)v->bytes[1],
		 (double)(now - shift - (int64_t)v->created_ns) / 1e9,
		 (double)(now - shift - (int64_t)v->last_ns) / 1e9);
}

static void fmt_entry(const struct sg_entry *e, int64_t now, char *buf, size_t len)
{
	unsigned int flags = (e->orig_lo ? MOAT_CT_F_ORIG_LO : 0) |
			     (e->seen_lo ? MOAT_CT_F_SEEN_LO : 0) |
			     (e->seen_hi ? MOAT_CT_F_SEEN_HI : 0);

	snprintf(buf, len,
		 "state %s flags 0x%02x origin_dir %u timeout %u pkts %u/%u bytes %llu/%llu "
		 "age %.3fs idle %.3fs",
		 sg_state_name(e->state), flags, e->origin_dir, e->timeout_s, e->packets[0],
		 e->packets[1], (unsigned long long)e->bytes[0], (unsigned long long)e->bytes[1],
		 (double)(now - e->created_ns) / 1e9, (double)(now - e->last_ns) / 1e9);
}

/* Does the map's value say what the model's entry says? */
static bool entry_agrees(const struct sgt *h, const struct sg_entry *e,
			 const struct moat_ct_value *v, const char **what)
{
	const uint8_t mask = MOAT_CT_F_ORIG_LO | MOAT_CT_F_SEEN_LO | MOAT_CT_F_SEEN_HI;
	uint8_t want = (e->orig_lo ? MOAT_CT_F_ORIG_LO : 0) | (e->seen_lo ? MOAT_CT_F_SEEN_LO : 0) |
		       (e->seen_hi ? MOAT_CT_F_SEEN_HI : 0);
	int64_t dl = (int64_t)(v->last_ns - (uint64_t)(e->last_ns - h->shift));
	int64_t dc = (int64_t)(v->created_ns - (uint64_t)(e->created_ns - h->shift));

	if (v->state != e->state)
		*what = "state";
	else if ((v->flags & mask) != want)
		*what = "originator/seen flags";
	else if (v->origin_dir != e->origin_dir)
		*what = "origin_dir";
	else if (v->timeout_s != e->timeout_s)
		*what = "timeout";
	else if (v->packets[0] != e->packets[0] || v->packets[1] != e->packets[1])
		*what = "packet counts";
	else if (v->bytes[0] != e->bytes[0] || v->bytes[1] != e->bytes[1])
		*what = "byte counts";
	else if (dl < -SGT_TS_TOL_NS || dl > SGT_TS_TOL_NS)
		*what = "last_ns";
	else if (dc < -SGT_TS_TOL_NS || dc > SGT_TS_TOL_NS)
		*what = "created_ns";
	else
		return true;
	return false;
}

/* The whole table against the model's. 0, or 1 with a message. */
static int table_check(struct sgt *h, char *msg, size_t len)
{
	struct moat_ct_key *k = NULL;
	struct moat_ct_value v;
	size_t i, m, n = 0, found = 0;
	int64_t now = model_now(h);
	char ks[160], a[256], b[256];
	int rc = 0;

	for (m = 0; m < h->nct && !rc; m++) {
		n = ct_keys(h->ct_fds[m], &k);
		for (i = 0; i < n && !rc; i++) {
			const struct sg_entry *e;
			const char *what = NULL;

			if (bpf_map_lookup_elem(h->ct_fds[m], &k[i], &v))
				continue;
			sg_key_format(&k[i], ks, sizeof(ks));
			fmt_value(&v, h->shift, now, b, sizeof(b));
			e = sg_model_find(&h->model, &k[i]);
			if (!e) {
				snprintf(msg, len,
					 "datapath has an entry (in %s) the model does not: %s: %s",
					 h->ct_names[m], ks, b);
				rc = 1;
				break;
			}
			if (ct_lookup(h, &k[i], &v, NULL) > 1) {
				snprintf(msg, len, "entry %s is in more than one table", ks);
				rc = 1;
				break;
			}
			found++;
			if (!entry_agrees(h, e, &v, &what)) {
				fmt_entry(e, now, a, sizeof(a));
				snprintf(msg, len,
					 "entry %s (in %s) differs (%s):\n    model:    %s\n"
					 "    datapath: %s",
					 ks, h->ct_names[m], what, a, b);
				rc = 1;
			}
		}
		free(k);
		k = NULL;
	}
	if (!rc && found != h->model.n) {
		for (i = 0; i < h->model.n; i++) {
			if (ct_lookup(h, &h->model.e[i].key, &v, NULL))
				continue;
			sg_key_format(&h->model.e[i].key, ks, sizeof(ks));
			fmt_entry(&h->model.e[i], now, a, sizeof(a));
			snprintf(msg, len, "model has an entry the datapath does not: %s: %s", ks,
				 a);
			break;
		}
		rc = 1;
	}
	return rc;
}

/* ---- one packet through both ----------------------------------------- */

static const char *dir_name(int dir)
{
	return dir ? "out" : "in";
}

/*
 * Judge @pkt with the model and the datapath; compare verdicts and then the
 * whole table. 0 when they agree; 1 with @msg filled in when not.
 */
static int sgt_step(struct sgt *h, int dir, const struct sg_pkt *in, struct sg_verdict *v,
		    char *msg, size_t len)
{
	uint8_t frame[SGT_FRAME_MAX];
	struct sg_pkt copy = *in, *pkt = &copy;
	size_t flen = build_frame(pkt, frame);
	char ps[400];
	bool pass = false;
	int err;

	pkt->len = (uint32_t)flen;
	sg_pkt_format(pkt, ps, sizeof(ps));
	err = sg_model_packet(&h->model, dir, pkt, model_now(h), v);
	if (err)
		fail_msg("model: %s", strerror(-err));
	err = moat_inst_run(h->inst, dir, frame, flen, &pass, NULL);
	if (err)
		fail_msg("moat_inst_run: %s", strerror(-err));
	h->checked++;
	hist_add(h, "#%zu %-3s %s -> model %s (%s%s%s%s), datapath %s", h->pkt_no++, dir_name(dir),
		 ps, v->pass ? "pass" : "drop", sg_by_name(v->by), v->created ? ", create" : "",
		 v->had_expired ? ", own entry expired" : "", v->reopened ? ", SYN on CLOSING" : "",
		 pass ? "pass" : "drop");

	if (pass != v->pass) {
		snprintf(msg, len, "verdict: model %s (by %s%s), datapath %s",
			 v->pass ? "pass" : "drop", sg_by_name(v->by),
			 v->near_edge ? ", entry within 20 ms of expiry" : "",
			 pass ? "pass" : "drop");
		return 1;
	}
	return table_check(h, msg, len);
}

/* ---- random rule sets ------------------------------------------------- */

struct rbuf {
	char s[8192];
	size_t n;
};

static void rb_add(struct rbuf *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(b->s + b->n, sizeof(b->s) - b->n, fmt, ap);
	va_end(ap);
	if (k > 0 && b->n + (size_t)k < sizeof(b->s))
		b->n += (size_t)k;
}

static const char *pick(struct randgen *g, const char *const *v, size_t n)
{
	return v[randgen_below(g, (uint32_t)n)];
}

#define PICK(g, a) pick((g), (a), ARRAY_SIZE(a))

static const char *const v4_peer_pfx[] = {
	"0.0.0.0/0",  "198.18.2.0/24", "198.18.0.0/15", "203.0.113.9/32",
	"10.0.0.0/8", "198.18.0.0/24", "198.18.2.5/32", "198.18.1.0/24",
};
static const char *const v6_peer_pfx[] = {
	"::/0",	     "fd00:2::/64",   "fd00::/8",    "2001:db8::/32",
	"fc00::/16", "fd00:2::5/128", "fd00:1::/64",
};
static const char *const v4_local_pfx[] = { "198.18.1.10/32", "198.18.1.0/24", "0.0.0.0/0",
					    "198.18.1.20/32" };
static const char *const v6_local_pfx[] = { "fd00:1::10/128", "fd00:1::/64", "::/0",
					    "fd00:1::20/128" };
static const char *const service_ports[] = {
	"22", "53", "443", "9000", "0", "40000", "1024-65535", "0-1023", "20-23", "40000-40001"
};
static const char *const v4_icmp[] = { "8", "0", "8/0", "3", "3/4", "11/0", "13", "0/1" };
static const char *const v6_icmp[] = { "128", "129", "128/0", "1", "2/0", "1/4", "130" };

/* One random SG rule of @dir. */
static void gen_rule(struct randgen *g, struct rbuf *b, int dir)
{
	const char *peerkw = dir ? "dst" : "src", *localkw = dir ? "src" : "dst";
	uint32_t k = randgen_below(g, 100);
	int proto, fam;
	bool has_peer = false;

	if (k < 15)
		proto = -1;
	else if (k < 45)
		proto = P_TCP;
	else if (k < 65)
		proto = P_UDP;
	else if (k < 75)
		proto = P_ICMP;
	else if (k < 83)
		proto = P_ICMPV6;
	else
		proto = (int)randgen_below(g, 4) == 0 ? 47 : randgen_chance(g, 50) ? 50 : 132;

	if (proto == P_ICMP)
		fam = randgen_chance(g, 50) ? 4 : 0;
	else if (proto == P_ICMPV6)
		fam = randgen_chance(g, 50) ? 6 : 0;
	else
		fam = (int)randgen_below(g, 3) * 2 + 2; /* 2 (none), 4, 6 */
	if (fam == 2)
		fam = 0;

	rb_add(b, "sg %s allow ", dir_name(dir));
	if (proto == -1)
		rb_add(b, "all");
	else if (proto == P_TCP)
		rb_add(b, "tcp");
	else if (proto == P_UDP)
		rb_add(b, "udp");
	else if (proto == P_ICMP)
		rb_add(b, "icmp");
	else if (proto == P_ICMPV6)
		rb_add(b, "icmpv6");
	else
		rb_add(b, "%d", proto);

	k = randgen_below(g, 100);
	if (fam == 0 && k < 12) {
		rb_add(b, " %s @%s", peerkw, randgen_chance(g, 70) ? "peers" : "zero");
		has_peer = true;
	} else if (fam != 0 && k < 80) {
		rb_add(b, " %s %s", peerkw,
		       fam == 4 ? (randgen_chance(g, 20) ? "0.0.0.0/0" : PICK(g, v4_peer_pfx))
				: (randgen_chance(g, 20) ? "::/0" : PICK(g, v6_peer_pfx)));
		has_peer = true;
	}
	if (fam != 0 && (!has_peer || randgen_chance(g, 20)) && randgen_chance(g, 50))
		rb_add(b, " %s %s", localkw,
		       fam == 4 ? PICK(g, v4_local_pfx) : PICK(g, v6_local_pfx));

	if (proto == P_TCP || proto == P_UDP) {
		if (randgen_chance(g, 55))
			rb_add(b, " dport %s", PICK(g, service_ports));
		if (randgen_chance(g, 10))
			rb_add(b, " sport %s", PICK(g, service_ports));
	}
	if ((proto == P_ICMP || proto == P_ICMPV6) && randgen_chance(g, 50))
		rb_add(b, " icmp %s", proto == P_ICMP ? PICK(g, v4_icmp) : PICK(g, v6_icmp));
	if (proto == P_TCP && randgen_chance(g, 12))
		rb_add(b, " established");
	rb_add(b, "\n");
}

/*
 * A pair meant to be untracked: a rule for all peers (any, or a family's
 * /0) in one direction, and a rule letting all of them back on any port in
 * the other; now and then spoiled (a port, a local side, another protocol)
 * so the near misses are exercised too.
 */
static void gen_untracked_pair(struct randgen *g, struct rbuf *b)
{
	static const char *const protos[] = { "all", "tcp", "udp" };
	int d1 = (int)randgen_below(g, 2), d2 = !d1;
	uint32_t fam = randgen_below(g, 3); /* 0 any, 1 v4, 2 v6 */
	const char *p1 = PICK(g, protos), *p2 = randgen_chance(g, 50) ? "all" : p1;
	const char *zero = fam == 1 ? "0.0.0.0/0" : "::/0";
	uint32_t spoil = randgen_below(g, 100);

	const char *dport =
		strcmp(p1, "all") && randgen_chance(g, 50) ? PICK(g, service_ports) : NULL;

	rb_add(b, "sg %s allow %s", dir_name(d1), p1);
	if (dport)
		rb_add(b, " dport %s", dport);
	if (fam)
		rb_add(b, " %s %s", d1 ? "dst" : "src", zero);
	/* a /0 on the local side: all addresses too (of its family only) */
	if (randgen_chance(g, 35))
		rb_add(b, " %s %s", d1 ? "src" : "dst", fam == 2 ? "::/0" : "0.0.0.0/0");
	rb_add(b, "\n");
	/* a tracked rule allowing part of the same flows (shuffled, so it is
	 * sometimes listed first): the flows stay untracked */
	if (randgen_chance(g, 50)) {
		rb_add(b, "sg %s allow %s", dir_name(d1), p1);
		if (dport)
			rb_add(b, " dport %s", dport);
		rb_add(b, " %s %s\n", d1 ? "dst" : "src",
		       fam == 2		       ? "fd00::/8"
		       : randgen_chance(g, 50) ? "198.18.0.0/15"
					       : "@peers");
	}

	if (spoil < 6)
		p2 = strcmp(p1, "tcp") ? "tcp" : "udp";
	rb_add(b, "sg %s allow %s", dir_name(d2), p2);
	if (spoil >= 6 && spoil < 12 && strcmp(p2, "all"))
		rb_add(b, " dport 1024-65535");
	if (fam && (randgen_chance(g, 70) || spoil < 18))
		rb_add(b, " %s %s", d2 ? "dst" : "src", zero);
	if (spoil >= 12 && spoil < 18)
		rb_add(b, " %s %s", d2 ? "src" : "dst",
		       fam == 2	  ? "fd00:1::/64"
		       : fam == 1 ? "198.18.1.0/24"
				  : "0.0.0.0/0");
	rb_add(b, "\n");
	/* With "any" peers in the first rule, both families need a way back. */
	if (fam == 0 && randgen_chance(g, 30))
		rb_add(b, "sg %s allow %s %s 0.0.0.0/0\n", dir_name(d2), p2, d2 ? "dst" : "src");
}

static void gen_ruleset_text(struct randgen *g, struct rbuf *b)
{
	static const unsigned int tcp_est[] = { 60, 300, 3600, 86400, 432000 };
	static const unsigned int udp[] = { 1, 5, 30, 60 };
	static const unsigned int udp_stream[] = { 10, 60, 180, 600 };
	static const unsigned int icmp[] = { 3, 30, 60 };
	static struct rbuf r; /* the rule lines, before shuffling */
	char *lines[64], *line, *save = NULL;
	size_t nlines = 0, i;
	uint32_t nin, nout, k;

	r.n = 0;
	r.s[0] = '\0';

	b->n = 0;
	b->s[0] = '\0';
	rb_add(b, "set peers { 198.18.2.0/24, 203.0.113.0/24, fd00:2::/64, fc00::/16 }\n");
	rb_add(b, "set zero { 0.0.0.0/0, ::/0 }\n");
	if (randgen_chance(g, 40))
		rb_add(b, "set conntrack timeout tcp-established %u\n",
		       tcp_est[randgen_below(g, ARRAY_SIZE(tcp_est))]);
	if (randgen_chance(g, 40))
		rb_add(b, "set conntrack timeout udp %u\n", udp[randgen_below(g, ARRAY_SIZE(udp))]);
	if (randgen_chance(g, 40))
		rb_add(b, "set conntrack timeout udp-stream %u\n",
		       udp_stream[randgen_below(g, ARRAY_SIZE(udp_stream))]);
	if (randgen_chance(g, 40))
		rb_add(b, "set conntrack timeout icmp %u\n",
		       icmp[randgen_below(g, ARRAY_SIZE(icmp))]);
	if (randgen_chance(g, 10))
		rb_add(b, "set pass-ndp off\n");

	k = randgen_below(g, 100);
	if (k < 2)
		return; /* no SG rule at all: the stage is off */
	nin = randgen_between(g, 1, 4);
	nout = randgen_between(g, 1, 4);
	if (k < 17)
		nin = 0;
	else if (k < 32)
		nout = 0;
	if (randgen_chance(g, 30)) {
		gen_untracked_pair(g, &r);
		nin = nin ? nin - 1 : 0;
		nout = nout ? nout - 1 : 0;
	} else if (nout && randgen_chance(g, 45)) {
		/* the cloud's default: everything may go out */
		k = randgen_below(g, 4);
		if (k == 0)
			rb_add(&r, "sg out allow all\n");
		if (k == 1 || k == 3)
			rb_add(&r, "sg out allow all dst 0.0.0.0/0\n");
		if (k == 2 || k == 3)
			rb_add(&r, "sg out allow all dst ::/0\n");
		nout--;
	}
	/* the rest: random rules of either direction */
	while (nin + nout) {
		if (nout == 0 || (nin && randgen_chance(g, 50))) {
			gen_rule(g, &r, 0);
			nin--;
		} else {
			gen_rule(g, &r, 1);
			nout--;
		}
	}
	/* file order is shuffled: it must not matter (SG rules are a union) */
	for (line = strtok_r(r.s, "\n", &save); line && nlines < ARRAY_SIZE(lines);
	     line = strtok_r(NULL, "\n", &save))
		lines[nlines++] = line;
	for (i = nlines; i > 1; i--) {
		size_t j = randgen_below(g, (uint32_t)i);
		char *t = lines[i - 1];

		lines[i - 1] = lines[j];
		lines[j] = t;
	}
	for (i = 0; i < nlines; i++)
		rb_add(b, "%s\n", lines[i]);
}

static void parse_rules(const char *text, struct ruleset *rs)
{
	struct diags d;
	int err;

	ruleset_init(rs);
	diags_init(&d);
	err = rules_parse_text("sg-diff", text, strlen(text), rs, &d);
	if (err) {
		fprintf(stderr, "rule set does not parse:\n%s\n", text);
		diags_print(&d, stderr);
		diags_free(&d);
		fail_msg("rules_parse_text: %s", strerror(-err));
	}
	diags_free(&d);
}

static void apply_rules(struct sgt *h, const struct ruleset *rs)
{
	struct diags d;
	int err;

	diags_init(&d);
	/* as `moat reload` does: both generations keep their maps, and a
	 * reload rewrites the idle one's in place */
	err = gen_apply(moat_inst_maps(h->inst), rs, &d, NULL);
	if (err) {
		diags_print(&d, stderr);
		diags_free(&d);
		fail_msg("gen_apply: %s", strerror(-err));
	}
	diags_free(&d);
	assert_int_equal(sg_model_set_rules(&h->model, rs), 0);
}

/* ---- random flows and packets ----------------------------------------- */

enum { K_TCP, K_UDP, K_ECHO, K_ICMP, K_OTHER };

struct flow {
	int family, kind, proto;
	uint8_t local[16], peer[16];
	uint16_t lport, pport, id;
	int opener; /* the direction that opens it, for the scripted steps */
	unsigned int step;
};

struct seq {
	struct flow f[8];
	size_t nf;
};

static const char *const v4_locals[] = { "198.18.1.10", "198.18.1.20" };
static const char *const v4_peers[] = { "198.18.2.5", "198.18.0.7", "203.0.113.9", "10.1.2.3",
					"198.18.1.15" };
static const char *const v6_locals[] = { "fd00:1::10", "fd00:1::20" };
static const char *const v6_peers[] = { "fd00:2::5", "fc00::7", "2001:db8::9", "fd00:1::15",
					"fd00:1::10:0" };
static const uint16_t lports[] = { 40000, 40001, 22, 443, 53, 9000, 0, 65535 };
static const uint16_t pports[] = { 22, 443, 53, 9000, 40000, 0, 1023 };
static const uint16_t ids[] = { 0x1234, 1, 0, 0xffff, 0x0100 };

static void gen_flows(struct randgen *g, struct seq *s)
{
	size_t i;

	s->nf = randgen_between(g, 4, 8);
	for (i = 0; i < s->nf; i++) {
		struct flow *f = &s->f[i];
		uint32_t k = randgen_below(g, 100);

		memset(f, 0, sizeof(*f));
		f->family = randgen_chance(g, 55) ? 4 : 6;
		if (k < 38)
			f->kind = K_TCP;
		else if (k < 63)
			f->kind = K_UDP;
		else if (k < 80)
			f->kind = K_ECHO;
		else if (k < 88)
			f->kind = K_ICMP;
		else
			f->kind = K_OTHER;
		switch (f->kind) {
		case K_TCP:
			f->proto = P_TCP;
			break;
		case K_UDP:
			f->proto = P_UDP;
			break;
		case K_ECHO:
		case K_ICMP:
			f->proto = f->family == 4 ? P_ICMP : P_ICMPV6;
			break;
		default: {
			static const int other[] = { 47, 50, 132, P_ICMP, P_ICMPV6 };

			f->proto = other[randgen_below(g, ARRAY_SIZE(other))];
			/* the other family's ICMP number is "another protocol" */
			if (f->proto == (f->family == 4 ? P_ICMP : P_ICMPV6))
				f->proto = 47;
		}
		}
		addr_set(f->local, f->family == 4 ? PICK(g, v4_locals) : PICK(g, v6_locals));
		addr_set(f->peer, f->family == 4 ? PICK(g, v4_peers) : PICK(g, v6_peers));
		if (randgen_chance(g, 3))
			memcpy(f->peer, f->local, 16); /* a flow to itself */
		f->lport = lports[randgen_below(g, ARRAY_SIZE(lports))];
		f->pport = randgen_chance(g, 5) ? f->lport
						: pports[randgen_below(g, ARRAY_SIZE(pports))];
		/* ports 0 both ends: its fragments (no ports) share its key */
		if (randgen_chance(g, 10))
			f->lport = f->pport = 0;
		f->id = ids[randgen_below(g, ARRAY_SIZE(ids))];
		f->opener = (int)randgen_below(g, 2);
	}
	/* often two flows share endpoints and differ by a port only */
	if (s->nf >= 2 && randgen_chance(g, 50)) {
		s->f[1] = s->f[0];
		s->f[1].lport ^= 1;
	}
}

static void fill_ends(const struct flow *f, int dir, struct sg_pkt *pkt)
{
	struct packet *p = &pkt->p;

	p->family = f->family;
	p->proto = f->proto;
	if (dir == 0) { /* in: peer -> local */
		memcpy(p->src, f->peer, 16);
		memcpy(p->dst, f->local, 16);
		p->sport = f->pport;
		p->dport = f->lport;
	} else {
		memcpy(p->src, f->local, 16);
		memcpy(p->dst, f->peer, 16);
		p->sport = f->lport;
		p->dport = f->pport;
	}
}

static const uint8_t common_flags[] = {
	F_SYN,
	F_SYN | F_ACK,
	F_ACK,
	F_PSH | F_ACK,
	F_FIN | F_ACK,
	F_FIN,
	F_RST,
	F_RST | F_ACK,
	F_SYN | F_FIN,
	F_SYN | F_RST,
	0,
	F_FIN | F_PSH | F_URG,
	F_SYN | F_URG,
	0xc2 /* SYN+ECE+CWR */,
};

/* A TCP handshake and close, stepped through with some randomness. */
static uint8_t tcp_script(struct randgen *g, struct flow *f, int *dir)
{
	static const struct {
		int who; /* 1 opener, 0 responder, -1 either */
		uint8_t flags;
	} script[] = {
		{ 1, F_SYN },	      { 0, F_SYN | F_ACK },  { 1, F_ACK },
		{ 1, F_PSH | F_ACK }, { 0, F_PSH | F_ACK },  { -1, F_FIN | F_ACK },
		{ -1, F_ACK },	      { -1, F_FIN | F_ACK }, { -1, F_ACK },
	};
	unsigned int i = f->step++ % ARRAY_SIZE(script);

	if (randgen_chance(g, 5))
		f->step = 0;
	if (randgen_chance(g, 5)) {
		*dir = (int)randgen_below(g, 2);
		return randgen_chance(g, 50) ? F_RST : F_RST | F_ACK;
	}
	if (script[i].who == 1)
		*dir = f->opener;
	else if (script[i].who == 0)
		*dir = !f->opener;
	else
		*dir = (int)randgen_below(g, 2);
	return script[i].flags;
}

/* A quote of flow @f's traffic into @pkt (family already set). */
static void quote_flow(struct randgen *g, const struct flow *f, struct sg_pkt *pkt)
{
	struct sg_quote *q = &pkt->q;
	int fam = pkt->p.family;
	uint32_t k = randgen_below(g, 100);
	bool outward = randgen_chance(g, 60);

	memset(q, 0, sizeof(*q));
	q->present = true;
	q->proto = f->proto;
	memcpy(q->src, outward ? f->local : f->peer, 16);
	memcpy(q->dst, outward ? f->peer : f->local, 16);
	q->sport = outward ? f->lport : f->pport;
	q->dport = outward ? f->pport : f->lport;
	if (is_icmp(fam, f->proto)) {
		if (f->kind == K_ECHO) {
			q->icmp_type = fam == 4 ? (randgen_chance(g, 70) ? 8 : 0)
						: (randgen_chance(g, 70) ? 128 : 129);
			q->icmp_id = f->id;
		} else {
			q->icmp_type = fam == 4 ? 13 : 130;
		}
	}
	q->v4_ihl = 5;
	q->l4_bytes = 8;

	if (k < 8) { /* a flow nobody tracks */
		q->sport ^= 0x100;
		q->icmp_id ^= 0x100;
		if (!(q->proto == P_TCP || q->proto == P_UDP || is_icmp(fam, q->proto)))
			q->src[fam == 4 ? 3 : 15] ^= 0x40;
	} else if (k < 14) {
		q->l4_bytes = (uint8_t)randgen_below(g, 8); /* short L4 quote */
	} else if (k < 18) {
		q->hdr_cut = (uint8_t)randgen_between(g, 1, fam == 4 ? 19 : 39);
	} else if (k < 24) {
		if (fam == 4)
			q->v4_ihl = (uint8_t)randgen_between(g, 6, 8); /* options */
		else
			q->v6_ext = true;
	} else if (k < 27) {
		if (fam == 4)
			q->v4_ihl = (uint8_t)randgen_below(g, 5); /* IHL < 5 */
		else
			q->proto = 47;
	} else if (k < 33) {
		q->l4_bytes = (uint8_t)randgen_between(g, 9, 40); /* a longer quote */
	}
}

static void gen_icmp_error(struct randgen *g, struct seq *s, struct sg_pkt *pkt, int *dir)
{
	static const int v4_err[][2] = { { 3, 4 },  { 3, 3 },  { 3, 1 }, { 3, 13 },
					 { 11, 0 }, { 12, 0 }, { 5, 1 }, { 4, 0 } };
	static const int v6_err[][2] = { { 1, 4 }, { 1, 1 }, { 2, 0 }, { 3, 0 }, { 4, 0 } };
	const struct flow *f = &s->f[randgen_below(g, (uint32_t)s->nf)], *q = f;
	struct packet *p = &pkt->p;
	uint8_t router[16];
	size_t i;
	int e;

	/* the quoted flow: another flow of the same family, usually */
	for (i = 0; i < 4; i++) {
		const struct flow *c = &s->f[randgen_below(g, (uint32_t)s->nf)];

		if (c->family == f->family) {
			q = c;
			break;
		}
	}
	addr_set(router, f->family == 4 ? "198.18.9.1" : "fd00:9::1");
	*dir = (int)randgen_below(g, 2);
	p->family = f->family;
	p->proto = f->family == 4 ? P_ICMP : P_ICMPV6;
	if (*dir == 0) {
		memcpy(p->src, randgen_chance(g, 50) ? q->peer : router, 16);
		memcpy(p->dst, q->local, 16);
	} else {
		memcpy(p->src, q->local, 16);
		memcpy(p->dst, randgen_chance(g, 50) ? q->peer : router, 16);
	}
	if (f->family == 4) {
		e = (int)randgen_below(g, ARRAY_SIZE(v4_err));
		p->icmp_type = v4_err[e][0];
		p->icmp_code = v4_err[e][1];
	} else {
		e = (int)randgen_below(g, ARRAY_SIZE(v6_err));
		p->icmp_type = v6_err[e][0];
		p->icmp_code = v6_err[e][1];
	}
	if (randgen_chance(g, 93))
		quote_flow(g, q, pkt);
	if (randgen_chance(g, 3))
		p->frag = true;
}

static void gen_packet(struct randgen *g, struct seq *s, struct sg_pkt *pkt, int *dir)
{
	struct packet *p = &pkt->p;
	uint32_t k = randgen_below(g, 1000);
	struct flow *f;

	memset(pkt, 0, sizeof(*pkt));
	if (k < 90) {
		gen_icmp_error(g, s, pkt, dir);
		return;
	}
	f = &s->f[randgen_below(g, (uint32_t)s->nf)];
	*dir = (int)randgen_below(g, 2);
	if (k < 100) { /* neighbour discovery */
		p->family = 6;
		p->proto = P_ICMPV6;
		addr_set(p->src, "fd00:2::5");
		addr_set(p->dst, "fd00:1::10");
		p->icmp_type = randgen_chance(g, 50) ? 135 : 136;
		return;
	}

	switch (f->kind) {
	case K_TCP:
		if (randgen_chance(g, 55))
			p->tcp_flags = tcp_script(g, f, dir);
		else if (randgen_chance(g, 60))
			p->tcp_flags = common_flags[randgen_below(g, ARRAY_SIZE(common_flags))];
		else
			p->tcp_flags = (uint8_t)randgen_below(g, 256);
		break;
	case K_ECHO:
		if (randgen_chance(g, 50)) {
			/* request from the opener, reply from the other side */
			bool req = randgen_chance(g, 50);

			*dir = req ? f->opener : !f->opener;
			p->icmp_type = f->family == 4 ? (req ? 8 : 0) : (req ? 128 : 129);
		} else {
			p->icmp_type = f->family == 4 ? (randgen_chance(g, 50) ? 8 : 0)
						      : (randgen_chance(g, 50) ? 128 : 129);
		}
		pkt->icmp_id = randgen_chance(g, 90) ? f->id : (uint16_t)(f->id ^ 1);
		break;
	case K_ICMP: {
		static const int v4t[] = { 13, 14, 4, 5, 9, 10 };
		static const int v6t[] = { 130, 131, 143, 139, 100 };

		p->icmp_type = f->family == 4 ? v4t[randgen_below(g, ARRAY_SIZE(v4t))]
					      : v6t[randgen_below(g, ARRAY_SIZE(v6t))];
		p->icmp_code = (int)randgen_below(g, 2);
		break;
	}
	default:
		break;
	}
	fill_ends(f, *dir, pkt);
	/* v4 source quench / redirect quote a datagram but are no "error" here */
	if (f->kind == K_ICMP && f->family == 4 && (p->icmp_type == 4 || p->icmp_type == 5)) {
		const struct flow *q = &s->f[randgen_below(g, (uint32_t)s->nf)];

		if (q->family == 4)
			quote_flow(g, q, pkt);
	}
	k = randgen_below(g, 100);
	if (k < 6) {
		/* no L4 header: flags stay in the struct, the model must not use them */
		p->frag = true;
		memset(&pkt->q, 0, sizeof(pkt->q));
	} else if (k < 9) {
		pkt->first_frag = true;
	}
}

/* A clock move: small, close to some entry's expiry (either side), or long. */
static int64_t gen_move(struct randgen *g, struct sgt *h)
{
	const struct rule_settings *st = &h->model.rs->settings;
	int64_t now = model_now(h), d;
	uint32_t k = randgen_below(g, 100);
	size_t i, tries;

	if (k < 50) {
		d = (int64_t)randgen_below(g, 2000) * SGT_MS + randgen_below(g, 1000000);
	} else if (k < 80 && h->model.n) {
		const struct sg_entry *e = &h->model.e[randgen_below(g, (uint32_t)h->model.n)];
		int64_t rem = (int64_t)e->timeout_s * SG_NSEC - (now - e->last_ns);
		int64_t off = (int64_t)randgen_between(g, 350, 1500) * SGT_MS;

		d = randgen_chance(g, 50) ? rem - off : rem + off;
		if (d < 0)
			d = (int64_t)randgen_below(g, 1000) * SGT_MS;
	} else if (k < 96) {
		const uint32_t bases[] = { 10,
					   30,
					   60,
					   120,
					   180,
					   600,
					   st->ct_tcp_established,
					   st->ct_udp,
					   st->ct_udp_stream,
					   st->ct_icmp };

		d = (int64_t)bases[randgen_below(g, ARRAY_SIZE(bases))] * SG_NSEC +
		    ((int64_t)randgen_below(g, 4000) - 2000) * SGT_MS;
		if (d < 0)
			d = 0;
	} else {
		d = (int64_t)randgen_between(g, 432000, 500000) * SG_NSEC;
	}
	/* keep every entry away from its expiry edge */
	for (tries = 0; tries < 100; tries++) {
		bool close = false;

		for (i = 0; i < h->model.n && !close; i++) {
			const struct sg_entry *e = &h->model.e[i];
			int64_t left = (int64_t)e->timeout_s * SG_NSEC - (now + d - e->last_ns);

			close = left > -SGT_GUARD_NS && left < SGT_GUARD_NS;
		}
		if (!close)
			break;
		d += 2 * SGT_GUARD_NS + SGT_MS;
	}
	return d;
}

/* ---- the random differential ----------------------------------------- */

static uint64_t seq_seed(uint64_t seed, size_t idx)
{
	struct randgen g;

	randgen_seed(&g, seed ^ (0x9e3779b97f4a7c15ull * (idx + 1)));
	return randgen_u64(&g);
}

static void tally(struct sgt *h, const struct sg_pkt *pkt, const struct sg_verdict *v)
{
	struct sgt_tally *t = &h->tally;

	t->by[v->by]++;
	t->created += v->created;
	t->replaced += v->replaced;
	t->expired_seen += v->had_expired;
	t->reopened += v->reopened;
	t->exempt += v->no_entry_exempt;
	t->drops += !v->pass;
	t->v6 += pkt->p.family == 6;
	t->frags += pkt->p.frag;
	t->icmp_errors += sg_model_is_icmp_error(pkt);
	t->related += v->by == SG_BY_RELATED;
	t->near_edge += v->near_edge;
	if (v->by == SG_BY_ENTRY) {
		const struct sg_entry *e = sg_model_find(&h->model, &v->key);

		if (e && e->state < 4)
			t->state_hits[e->state]++;
	}
}

static void report(struct sgt *h, size_t idx, uint64_t sseed, const char *rules, const char *rules2,
		   const char *msg)
{
	fprintf(stderr,
		"\nSG MISMATCH: seed %llu, sequence %zu (sequence seed 0x%016llx)\n"
		"  rerun: MOAT_SG_SEED=%llu MOAT_SG_ONLY=%zu MOAT_SG_PACKETS=%zu %s\n"
		"  rule set:\n%s",
		(unsigned long long)cfg.seed, idx, (unsigned long long)sseed,
		(unsigned long long)cfg.seed, idx, cfg.packets,
		"build/tests/bpf/test_sg_differential", rules);
	if (rules2)
		fprintf(stderr, "  rule set after the reload:\n%s", rules2);
	hist_print(h);
	fprintf(stderr, "  %s\n", msg);
}

/* One sequence; returns the number of mismatches (0 or 1: it stops at one). */
static int run_sequence(struct sgt *h, size_t idx)
{
	uint64_t sseed = seq_seed(cfg.seed, idx);
	struct randgen g;
	struct rbuf rb, rb2;
	struct ruleset rs, rs2;
	struct seq s;
	size_t i, reload_at = (size_t)-1;
	bool reloaded = false;
	char msg[2048];
	int bad = 0;

	randgen_seed(&g, sseed);
	gen_ruleset_text(&g, &rb);
	parse_rules(rb.s, &rs);
	ruleset_init(&rs2);
	ct_clear(h);
	apply_rules(h, &rs);
	gen_flows(&g, &s);
	if (cfg.packets > 2 && randgen_chance(&g, 12))
		reload_at = randgen_between(&g, 1, (uint32_t)cfg.packets - 1);
	h->nhist = 0;
	h->pkt_no = 0;

	for (i = 0; i < cfg.packets; i++) {
		struct sg_verdict v;
		struct sg_pkt pkt;
		int dir;

		if (i == reload_at) {
			gen_ruleset_text(&g, &rb2);
			parse_rules(rb2.s, &rs2);
			apply_rules(h, &rs2);
			reloaded = true;
			h->tally.reloads++;
			hist_add(h, "-- reload to the second rule set");
		}
		if (i && randgen_chance(&g, 10)) {
			int64_t d = gen_move(&g, h);

			ct_advance(h, d);
			hist_add(h, "-- clock +%.3f s", (double)d / 1e9);
		}
		gen_packet(&g, &s, &pkt, &dir);
		if (sgt_step(h, dir, &pkt, &v, msg, sizeof(msg))) {
			report(h, idx, sseed, rb.s, reloaded ? rb2.s : NULL, msg);
			bad = 1;
			break;
		}
		tally(h, &pkt, &v);
	}
	/* the model points into the rule sets: drop it before they go */
	h->model.rs = NULL;
	ruleset_free(&rs);
	ruleset_free(&rs2);
	return bad;
}

static void test_sg_random(void **state)
{
	struct sgt *h = &H;
	size_t i, seqs = 0, bad = 0, reports = 0;
	uint64_t before = h->checked;
	int64_t t0 = mono_ns();
	struct sgt_tally *t = &h->tally;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < cfg.seqs; i++) {
		if (cfg.only >= 0 && (size_t)cfg.only != i)
			continue;
		seqs++;
		if (run_sequence(h, i)) {
			bad++;
			if (++reports >= SGT_MAX_REPORTS) {
				fprintf(stderr, "(stopping after %d mismatching sequences)\n",
					SGT_MAX_REPORTS);
				break;
			}
		}
	}
	printf("# sg differential: seed %llu; verdicts: entry %zu, rule %zu, untracked %zu, "
	       "related %zu, none(drop) %zu, ndp %zu, stage-off %zu\n",
	       (unsigned long long)cfg.seed, t->by[SG_BY_ENTRY], t->by[SG_BY_RULE],
	       t->by[SG_BY_UNTRACKED], t->by[SG_BY_RELATED], t->by[SG_BY_NONE], t->by[SG_BY_NDP],
	       t->by[SG_BY_OFF]);
	printf("# entries created %zu (replacing an expired/closing one %zu), expired entries met "
	       "%zu, SYN on CLOSING %zu, allowed without entry (frag/FIN/RST) %zu\n",
	       t->created, t->replaced, t->expired_seen, t->reopened, t->exempt);
	printf("# entry hits ending NEW %zu, SYN_SENT %zu, ESTABLISHED %zu, CLOSING %zu; "
	       "ICMP errors %zu; IPv6 %zu; fragments %zu; clock moves %zu; reloads %zu; "
	       "near-edge lookups %zu\n",
	       t->state_hits[0], t->state_hits[1], t->state_hits[2], t->state_hits[3],
	       t->icmp_errors, t->v6, t->frags, t->moves, t->reloads, t->near_edge);
	printf("checked %llu packets over %zu sequences, %zu mismatches (%.1f s)\n",
	       (unsigned long long)(h->checked - before), seqs, bad,
	       (double)(mono_ns() - t0) / 1e9);
	if (bad)
		fail_msg("%zu sequence(s) where the datapath and the model disagree", bad);
}

/* ---- hand-written scenarios ------------------------------------------ */

#define L4 "198.18.1.10"
#define P4 "198.18.2.5"
#define R4 "198.18.9.1"
#define L6 "fd00:1::10"
#define P6 "fd00:2::5"
#define R6 "fd00:9::1"

static struct ruleset sc_rs[4];
static size_t sc_nrs;

static void sc_end(void);

static void sc_begin(const char *rules)
{
	sc_end();
	H.nhist = 0;
	H.pkt_no = 0;
	sc_nrs = 0;
	ct_clear(&H);
	parse_rules(rules, &sc_rs[sc_nrs]);
	apply_rules(&H, &sc_rs[sc_nrs]);
	sc_nrs++;
}

static void sc_reload(const char *rules)
{
	assert_true(sc_nrs < ARRAY_SIZE(sc_rs));
	parse_rules(rules, &sc_rs[sc_nrs]);
	apply_rules(&H, &sc_rs[sc_nrs]);
	sc_nrs++;
	hist_add(&H, "-- reload");
}

static void sc_end(void)
{
	size_t i;

	H.model.rs = NULL;
	for (i = 0; i < sc_nrs; i++)
		ruleset_free(&sc_rs[i]);
	sc_nrs = 0;
}

static void sc_move(int64_t seconds_ms)
{
	ct_advance(&H, seconds_ms * SGT_MS);
	hist_add(&H, "-- clock +%.3f s", (double)seconds_ms / 1e3);
}

static struct sg_pkt pk_l4(int proto, const char *src, uint16_t sport, const char *dst,
			   uint16_t dport, uint8_t flags)
{
	struct sg_pkt k;

	memset(&k, 0, sizeof(k));
	k.p.family = strchr(src, ':') ? 6 : 4;
	k.p.proto = proto;
	addr_set(k.p.src, src);
	addr_set(k.p.dst, dst);
	k.p.sport = sport;
	k.p.dport = dport;
	k.p.tcp_flags = flags;
	return k;
}

static struct sg_pkt pk_tcp(const char *src, uint16_t sport, const char *dst, uint16_t dport,
			    uint8_t flags)
{
	return pk_l4(P_TCP, src, sport, dst, dport, flags);
}

static struct sg_pkt pk_udp(const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
	return pk_l4(P_UDP, src, sport, dst, dport, 0);
}

static struct sg_pkt pk_icmp(const char *src, const char *dst, int type, int code, uint16_t id)
{
	struct sg_pkt k = pk_l4(P_ICMP, src, 0, dst, 0, 0);

	if (k.p.family == 6)
		k.p.proto = P_ICMPV6;
	k.p.icmp_type = type;
	k.p.icmp_code = code;
	k.icmp_id = id;
	return k;
}

/* An ICMP error from @src to @dst quoting @orig (a TCP/UDP/ICMP packet). */
static struct sg_pkt pk_error(const char *src, const char *dst, int type, int code,
			      const struct sg_pkt *orig)
{
	struct sg_pkt k = pk_icmp(src, dst, type, code, 0);

	k.q.present = true;
	k.q.proto = orig->p.proto;
	memcpy(k.q.src, orig->p.src, 16);
	memcpy(k.q.dst, orig->p.dst, 16);
	k.q.sport = orig->p.sport;
	k.q.dport = orig->p.dport;
	k.q.icmp_type = orig->p.icmp_type;
	k.q.icmp_code = orig->p.icmp_code;
	k.q.icmp_id = orig->icmp_id;
	k.q.v4_ihl = 5;
	k.q.l4_bytes = 8;
	return k;
}

/* Send @pkt; datapath and model must agree, and say @want / @by. */
static void sc_send(int dir, const struct sg_pkt *pkt, bool want, enum sg_by by)
{
	struct sg_verdict v;
	char msg[2048], ps[400];

	if (sgt_step(&H, dir, pkt, &v, msg, sizeof(msg))) {
		hist_print(&H);
		fail_msg("%s", msg);
	}
	if (v.pass != want || v.by != by) {
		sg_pkt_format(pkt, ps, sizeof(ps));
		hist_print(&H);
		fail_msg("%s %s: expected %s by %s, both sides said %s by %s", dir_name(dir), ps,
			 want ? "pass" : "drop", sg_by_name(by), v.pass ? "pass" : "drop",
			 sg_by_name(v.by));
	}
}

/* The datapath's entry for @pkt's flow (read from the map). */
static bool sc_entry(const struct sg_pkt *pkt, struct moat_ct_value *val)
{
	struct moat_ct_key k;
	bool from_lo;

	sg_model_key(pkt, &k, &from_lo);
	return ct_lookup(&H, &k, val, NULL) == 1;
}

static size_t sc_count(void)
{
	struct moat_ct_key *k;
	size_t m, n = 0;

	for (m = 0; m < H.nct; m++) {
		n += ct_keys(H.ct_fds[m], &k);
		free(k);
	}
	return n;
}

static void test_tcp_outbound_handshake(void **state)
{
	struct sg_pkt syn = pk_tcp(L4, 40000, P4, 22, F_SYN);
	struct sg_pkt synack = pk_tcp(P4, 22, L4, 40000, F_SYN | F_ACK);
	struct sg_pkt ack = pk_tcp(L4, 40000, P4, 22, F_ACK);
	struct sg_pkt other = pk_tcp(P4, 23, L4, 40000, F_SYN | F_ACK);
	struct moat_ct_value v;

	sc_begin("sg out allow tcp dst 0.0.0.0/0\n");
	sc_send(1, &syn, true, SG_BY_RULE);
	assert_true(sc_entry(&syn, &v));
	assert_int_equal(v.state, MOAT_CT_SYN_SENT);
	assert_int_equal(v.timeout_s, 120);
	assert_int_equal(v.origin_dir, MOAT_DIR_OUT);
	/* 198.18.1.10 < 198.18.2.5: the local end is the lower and opened it */
	assert_true(v.flags & MOAT_CT_F_ORIG_LO);

	sc_send(0, &synack, true, SG_BY_ENTRY);
	assert_true(sc_entry(&syn, &v));
	assert_int_equal(v.state, MOAT_CT_ESTABLISHED);
	assert_int_equal(v.timeout_s, 432000);
	sc_send(1, &ack, true, SG_BY_ENTRY);
	/* the same peer from another port is another flow: no rule in */
	sc_send(0, &other, false, SG_BY_NONE);
	assert_int_equal(sc_count(), 1);

	/* IPv6, where the peer is the lower end */
	syn = pk_tcp(L6, 40000, "fc00::7", 443, F_SYN);
	synack = pk_tcp("fc00::7", 443, L6, 40000, F_SYN | F_ACK);
	sc_reload("sg out allow tcp dst ::/0\n");
	sc_send(1, &syn, true, SG_BY_RULE);
	assert_true(sc_entry(&syn, &v));
	assert_false(v.flags & MOAT_CT_F_ORIG_LO);
	sc_send(0, &synack, true, SG_BY_ENTRY);
	assert_true(sc_entry(&syn, &v));
	assert_int_equal(v.state, MOAT_CT_ESTABLISHED);
	sc_end();
}

static void test_unsolicited_inbound(void **state)
{
	struct sg_pkt ack = pk_tcp(P4, 5555, L4, 80, F_ACK);
	struct sg_pkt syn = pk_tcp(P4, 5555, L4, 80, F_SYN);
	struct sg_pkt udp = pk_udp(P4, 5555, L4, 53);
	struct sg_pkt mid = pk_tcp("198.18.3.7", 50000, L4, 22, F_PSH | F_ACK);
	struct moat_ct_value v;

	sc_begin("sg out allow all dst 0.0.0.0/0\n"
		 "sg in allow tcp dport 22 src 198.18.3.0/24\n");
	sc_send(0, &ack, false, SG_BY_NONE);
	sc_send(0, &syn, false, SG_BY_NONE);
	sc_send(0, &udp, false, SG_BY_NONE);
	assert_int_equal(sc_count(), 0);
	/* allowed by a rule of its direction: picked up mid-stream */
	sc_send(0, &mid, true, SG_BY_RULE);
	assert_true(sc_entry(&mid, &v));
	assert_int_equal(v.state, MOAT_CT_ESTABLISHED);
	assert_int_equal(v.origin_dir, MOAT_DIR_IN);
	sc_end();
}

static void test_fin_closing_expiry(void **state)
{
	struct sg_pkt syn = pk_tcp(L4, 40000, P4, 443, F_SYN);
	struct sg_pkt synack = pk_tcp(P4, 443, L4, 40000, F_SYN | F_ACK);
	struct sg_pkt ack = pk_tcp(L4, 40000, P4, 443, F_ACK);
	struct sg_pkt fin = pk_tcp(L4, 40000, P4, 443, F_FIN | F_ACK);
	struct sg_pkt in_ack = pk_tcp(P4, 443, L4, 40000, F_ACK);
	struct sg_pkt in_syn = pk_tcp(P4, 443, L4, 40000, F_SYN);
	struct sg_pkt rst = pk_tcp(L4, 40000, P4, 443, F_RST);
	struct moat_ct_value v;

	sc_begin("sg out allow tcp dport 443\n");
	sc_send(1, &syn, true, SG_BY_RULE);
	sc_send(0, &synack, true, SG_BY_ENTRY);
	sc_send(1, &ack, true, SG_BY_ENTRY);
	sc_send(1, &fin, true, SG_BY_ENTRY);
	assert_true(sc_entry(&syn, &v));
	assert_int_equal(v.state, MOAT_CT_CLOSING);
	assert_int_equal(v.timeout_s, 10);
	sc_move(9000);
	sc_send(0, &in_ack, true, SG_BY_ENTRY); /* refreshes: 10 s again */
	sc_move(9500);
	sc_send(0, &in_ack, true, SG_BY_ENTRY);
	sc_move(10500);
	sc_send(0, &in_ack, false, SG_BY_NONE); /* expired, no rule in */
	assert_true(sc_entry(&syn, &v));	/* still there, unchanged */
	assert_int_equal(v.state, MOAT_CT_CLOSING);
	/* a new SYN out replaces the expired entry */
	sc_send(1, &syn, true, SG_BY_RULE);
	assert_true(sc_entry(&syn, &v));
	assert_int_equal(v.state, MOAT_CT_SYN_SENT);
	sc_send(0, &synack, true, SG_BY_ENTRY);

	/* RST closes too; a SYN on a CLOSING entry goes to the rules */
	sc_send(1, &rst, true, SG_BY_ENTRY);
	assert_true(sc_entry(&syn, &v));
	assert_int_equal(v.state, MOAT_CT_CLOSING);
	sc_send(0, &in_syn, false, SG_BY_NONE); /* no rule in: dropped, entry kept */
	assert_true(sc_entry(&syn, &v));
	assert_int_equal(v.state, MOAT_CT_CLOSING);
	sc_send(1, &syn, true, SG_BY_RULE); /* reopened by the rule out */
	assert_true(sc_entry(&syn, &v));
	assert_int_equal(v.state, MOAT_CT_SYN_SENT);
	/* a FIN allowed by a rule creates nothing */
	fin.p.sport = 40002;
	sc_send(1, &fin, true, SG_BY_RULE);
	assert_false(sc_entry(&fin, &v));
	sc_end();
}

static void test_udp_timeouts(void **state)
{
	struct sg_pkt req = pk_udp(L4, 40000, P4, 53);
	struct sg_pkt rep = pk_udp(P4, 53, L4, 40000);
	struct sg_pkt req2 = pk_udp(L4, 40001, P4, 53);
	struct sg_pkt rep2 = pk_udp(P4, 53, L4, 40001);
	struct moat_ct_value v;

	sc_begin("sg out allow udp dst 0.0.0.0/0\n");
	sc_send(1, &req, true, SG_BY_RULE);
	assert_true(sc_entry(&req, &v));
	assert_int_equal(v.state, MOAT_CT_NEW);
	assert_int_equal(v.timeout_s, 30);
	sc_move(29000);
	sc_send(0, &rep, true, SG_BY_ENTRY);
	assert_true(sc_entry(&req, &v));
	assert_int_equal(v.state, MOAT_CT_ESTABLISHED);
	assert_int_equal(v.timeout_s, 180);
	sc_move(179000);
	sc_send(0, &rep, true, SG_BY_ENTRY);
	sc_move(181000);
	sc_send(0, &rep, false, SG_BY_NONE);

	/* no reply: 30 s only */
	sc_send(1, &req2, true, SG_BY_RULE);
	sc_send(1, &req2, true, SG_BY_ENTRY); /* more from the opener: still NEW */
	assert_true(sc_entry(&req2, &v));
	assert_int_equal(v.state, MOAT_CT_NEW);
	sc_move(31000);
	sc_send(0, &rep2, false, SG_BY_NONE);
	sc_end();
}

static void test_icmp_related(void **state)
{
	struct sg_pkt syn = pk_tcp(L4, 40000, P4, 443, F_SYN);
	struct sg_pkt udp6 = pk_udp(L6, 40000, P6, 53);
	struct sg_pkt stray = pk_tcp(L4, 40009, P4, 443, F_SYN);
	struct sg_pkt stray6 = pk_udp(L6, 40009, P6, 53);
	struct sg_pkt ping = pk_icmp(L4, P4, 8, 0, 7);
	struct sg_pkt pong = pk_icmp(P4, L4, 0, 0, 7);
	struct sg_pkt pong8 = pk_icmp(P4, L4, 0, 0, 8);
	struct sg_pkt err, before;
	struct moat_ct_value v0, v1;

	sc_begin("sg out allow all dst 0.0.0.0/0\nsg out allow all dst ::/0\n");
	sc_send(1, &syn, true, SG_BY_RULE);
	sc_send(1, &udp6, true, SG_BY_RULE);
	assert_true(sc_entry(&syn, &v0));

	/* fragmentation needed from a router on the path: passes, changes nothing */
	err = pk_error(R4, L4, 3, 4, &syn);
	sc_send(0, &err, true, SG_BY_RELATED);
	assert_true(sc_entry(&syn, &v1));
	assert_memory_equal(&v0, &v1, sizeof(v0));
	/* one for a flow nobody opened is dropped */
	err = pk_error(R4, L4, 3, 4, &stray);
	sc_send(0, &err, false, SG_BY_NONE);
	/* IPv6 packet too big, and time exceeded */
	err = pk_error(R6, L6, 2, 0, &udp6);
	sc_send(0, &err, true, SG_BY_RELATED);
	err = pk_error(R6, L6, 3, 0, &udp6);
	sc_send(0, &err, true, SG_BY_RELATED);
	err = pk_error(R6, L6, 2, 0, &stray6);
	sc_send(0, &err, false, SG_BY_NONE);
	/* a quote cut short names no flow: the error is judged on its own */
	err = pk_error(R4, L4, 3, 4, &syn);
	err.q.l4_bytes = 4;
	sc_send(0, &err, false, SG_BY_NONE);

	/* echo is tracked by identifier */
	sc_send(1, &ping, true, SG_BY_RULE);
	sc_send(0, &pong, true, SG_BY_ENTRY);
	assert_true(sc_entry(&ping, &v0));
	assert_int_equal(v0.state, MOAT_CT_ESTABLISHED);
	sc_send(0, &pong8, false, SG_BY_NONE);
	/* an error quoting the echo request passes with it */
	before = ping;
	err = pk_error(R4, L4, 11, 0, &before);
	sc_send(0, &err, true, SG_BY_RELATED);
	sc_end();
}

static void test_untracked(void **state)
{
	struct sg_pkt syn = pk_tcp(P4, 50000, L4, 443, F_SYN);
	struct sg_pkt synack = pk_tcp(L4, 443, P4, 50000, F_SYN | F_ACK);
	struct sg_pkt ack = pk_tcp(P4, 50000, L4, 443, F_ACK);
	struct sg_pkt syn22 = pk_tcp(P4, 50000, L4, 22, F_SYN);
	struct sg_pkt u_in = pk_udp(P4, 5000, L4, 6000);
	struct sg_pkt u_out = pk_udp(L4, 6000, P4, 5000);
	struct sg_pkt ping = pk_icmp(P4, L4, 8, 0, 9);
	struct moat_ct_value v;

	/* inbound 443 from everywhere, everything back out: untracked in */
	sc_begin("sg in allow tcp dport 443 src 0.0.0.0/0\n"
		 "sg out allow all dst 0.0.0.0/0\n");
	sc_send(0, &syn, true, SG_BY_UNTRACKED);
	sc_send(0, &ack, true, SG_BY_UNTRACKED);
	assert_int_equal(sc_count(), 0);
	sc_send(0, &syn22, false, SG_BY_NONE);
	/*
	 * The reply goes out by `sg out allow all dst 0.0.0.0/0`, which is
	 * not untracked itself (no rule in allows all ports back), but it
	 * belongs to an untracked flow: no entry either way.
	 */
	sc_send(1, &synack, true, SG_BY_UNTRACKED);
	assert_false(sc_entry(&synack, &v));
	assert_int_equal(sc_count(), 0);
	/* An outbound connection to a peer's 443 is not such a reply: its
	 * source port is not a service port of an untracked inbound rule. */
	{
		struct sg_pkt out443 = pk_tcp(L4, 50001, P4, 443, F_SYN);
		struct sg_pkt from443 = pk_tcp(L4, 443, P4, 50002, F_SYN | F_ACK);
		struct sg_pkt udpreply = pk_udp(L4, 443, P4, 50000);

		sc_send(1, &out443, true, SG_BY_RULE);
		assert_int_equal(sc_count(), 1);
		sc_send(1, &from443, true, SG_BY_UNTRACKED);
		/* the inbound rule is TCP only */
		sc_send(1, &udpreply, true, SG_BY_RULE);
		assert_int_equal(sc_count(), 2);
	}

	/* all both ways: TCP and UDP untracked, ICMP still tracked */
	sc_begin("sg in allow all src 0.0.0.0/0\nsg out allow all dst 0.0.0.0/0\n");
	sc_send(0, &u_in, true, SG_BY_UNTRACKED);
	sc_send(1, &u_out, true, SG_BY_UNTRACKED);
	sc_send(1, &synack, true, SG_BY_UNTRACKED);
	assert_int_equal(sc_count(), 0);
	sc_send(0, &ping, true, SG_BY_RULE);
	assert_int_equal(sc_count(), 1);

	/* a narrower rule listed first changes nothing: the rules are a
	 * union, and any untracked rule allowing the flow makes it untracked */
	sc_begin("sg in allow tcp dport 443 src 198.18.2.0/24\n"
		 "sg in allow tcp dport 443 src 0.0.0.0/0\n"
		 "sg out allow all dst 0.0.0.0/0\n");
	sc_send(0, &syn, true, SG_BY_UNTRACKED);
	assert_int_equal(sc_count(), 0);

	/* a /0 on the local side takes in every address of its family, as
	 * "any" does (unless MOAT_SG_LOCAL_ANY_ONLY asks for the literal text) */
	sc_begin("sg in allow udp dst 0.0.0.0/0\n"
		 "sg out allow udp src 0.0.0.0/0\n");
	u_in = pk_udp(P4, 5000, L4, 6000);
	sc_send(0, &u_in, true, H.model.local_any_only ? SG_BY_RULE : SG_BY_UNTRACKED);
	sc_send(1, &u_out, true, H.model.local_any_only ? SG_BY_ENTRY : SG_BY_UNTRACKED);

	/* a /0 of one family only: IPv6 is tracked */
	sc_begin("sg in allow udp src 0.0.0.0/0\nsg out allow udp dst 0.0.0.0/0\n"
		 "sg in allow udp src ::/0\n");
	sc_send(0, &u_in, true, SG_BY_UNTRACKED);
	u_in = pk_udp(P6, 5000, L6, 6000);
	sc_send(0, &u_in, true, SG_BY_RULE);
	assert_int_equal(sc_count(), 1);
	sc_end();
}

static void test_expired_replaced_and_reload(void **state)
{
	struct sg_pkt req = pk_udp(L4, 40000, P4, 9000);
	struct sg_pkt rep = pk_udp(P4, 9000, L4, 40000);
	struct sg_pkt syn = pk_tcp(L6, 40000, P6, 22, F_SYN);
	struct sg_pkt synack = pk_tcp(P6, 22, L6, 40000, F_SYN | F_ACK);
	struct moat_ct_value v0, v1;

	sc_begin("set conntrack timeout udp 5\nsg out allow udp\nsg out allow tcp dport 22\n");
	sc_send(1, &req, true, SG_BY_RULE);
	assert_true(sc_entry(&req, &v0));
	assert_int_equal(v0.timeout_s, 5);
	sc_move(6000);
	assert_true(sc_entry(&req, &v0));    /* as the clock move left it */
	sc_send(0, &rep, false, SG_BY_NONE); /* expired: no reply gets in */
	sc_send(1, &req, true, SG_BY_RULE);  /* expired: replaced */
	assert_true(sc_entry(&req, &v1));
	assert_true(v1.created_ns - v0.created_ns < 10ull * SG_NSEC);
	assert_true((int64_t)(v1.created_ns - v0.created_ns) > 5 * SG_NSEC);
	assert_int_equal(v1.packets[0] + v1.packets[1], 1);
	sc_send(0, &rep, true, SG_BY_ENTRY);

	/* a reload that drops the rule keeps the connection */
	sc_send(1, &syn, true, SG_BY_RULE);
	sc_reload("sg out allow icmp\n");
	sc_send(0, &synack, true, SG_BY_ENTRY);
	sc_send(0, &rep, true, SG_BY_ENTRY);
	assert_true(sc_entry(&syn, &v0));
	assert_int_equal(v0.state, MOAT_CT_ESTABLISHED);

	/* an entry stamped ahead of the datapath's clock (its clock is the
	 * last tick's; another CPU's, or user space's fine clock, may be
	 * later) is young, not 584 years old */
	sc_move(-20);
	sc_send(0, &rep, true, SG_BY_ENTRY);
	sc_end();
}

/* ---- setup ------------------------------------------------------------ */

/*
 * The connection tables: the maps the XDP program uses whose key and value
 * are conntrack's. Found by their shape rather than by name, so a datapath
 * that splits the table (e.g. half-open flows in a map of their own) is
 * still checked whole. `conntrack` (moat_maps) must be one of them.
 */
static int find_ct_maps(struct sgt *h)
{
	int prog = moat_inst_prog_fd(h->inst, MOAT_DIR_IN);
	struct bpf_prog_info pi;
	__u32 ids[64], len = sizeof(pi), i;
	int main_fd = moat_inst_maps(h->inst)->conntrack;
	bool have_main = false;

	memset(&pi, 0, sizeof(pi));
	pi.nr_map_ids = ARRAY_SIZE(ids);
	pi.map_ids = (__u64)(uintptr_t)ids;
	if (bpf_obj_get_info_by_fd(prog, &pi, &len)) {
		print_message("reading the program's maps: %s\n", strerror(errno));
		return -1;
	}
	for (i = 0; i < pi.nr_map_ids && i < ARRAY_SIZE(ids); i++) {
		struct bpf_map_info mi, main_mi;
		__u32 mlen = sizeof(mi);
		int fd = bpf_map_get_fd_by_id(ids[i]);

		if (fd < 0)
			continue;
		memset(&mi, 0, sizeof(mi));
		if (bpf_obj_get_info_by_fd(fd, &mi, &mlen) ||
		    mi.key_size != sizeof(struct moat_ct_key) ||
		    mi.value_size != sizeof(struct moat_ct_value) ||
		    h->nct == ARRAY_SIZE(h->ct_fds)) {
			close(fd);
			continue;
		}
		mlen = sizeof(main_mi);
		memset(&main_mi, 0, sizeof(main_mi));
		if (main_fd >= 0 && !bpf_obj_get_info_by_fd(main_fd, &main_mi, &mlen) &&
		    main_mi.id == mi.id)
			have_main = true;
		snprintf(h->ct_names[h->nct], sizeof(h->ct_names[0]), "%s", mi.name);
		h->ct_fds[h->nct++] = fd;
	}
	if (!have_main) {
		print_message("the conntrack map is not among the program's maps\n");
		return -1;
	}
	if (h->nct > 1) {
		print_message("connection tables:");
		for (i = 0; i < h->nct; i++)
			print_message(" %s", h->ct_names[i]);
		print_message("\n");
	}
	return 0;
}

static int setup(void **state)
{
	int err;

	sg_model_init(&H.model);
	H.model.local_any_only = env_ull("MOAT_SG_LOCAL_ANY_ONLY", 0) != 0;
	if (geteuid() != 0) {
		if (getenv("CI")) {
			print_message("the SG differential test needs root (BPF); CI must run "
				      "it as root\n");
			return -1;
		}
		print_message("not root: BPF_PROG_TEST_RUN needs root; skipping\n");
		return 0;
	}
	err = moat_inst_open_private(&H.inst, false);
	if (err) {
		print_message("moat_inst_open_private: %s\n", strerror(-err));
		return -1;
	}
	if (find_ct_maps(&H))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	size_t m;

	for (m = 0; m < H.nct; m++)
		close(H.ct_fds[m]);
	H.nct = 0;
	if (H.inst)
		moat_inst_close(H.inst);
	H.inst = NULL;
	sg_model_free(&H.model);
	return 0;
}

#define RUN_OR_SKIP(name)                    \
	static void name##_run(void **state) \
	{                                    \
		if (!H.inst)                 \
			skip();              \
		name(state);                 \
	}

RUN_OR_SKIP(test_tcp_outbound_handshake)
RUN_OR_SKIP(test_unsolicited_inbound)
RUN_OR_SKIP(test_fin_closing_expiry)
RUN_OR_SKIP(test_udp_timeouts)
RUN_OR_SKIP(test_icmp_related)
RUN_OR_SKIP(test_untracked)
RUN_OR_SKIP(test_expired_replaced_and_reload)
RUN_OR_SKIP(test_sg_random)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_outbound_handshake_run),
		cmocka_unit_test(test_unsolicited_inbound_run),
		cmocka_unit_test(test_fin_closing_expiry_run),
		cmocka_unit_test(test_udp_timeouts_run),
		cmocka_unit_test(test_icmp_related_run),
		cmocka_unit_test(test_untracked_run),
		cmocka_unit_test(test_expired_replaced_and_reload_run),
		cmocka_unit_test(test_sg_random_run),
	};

	cfg.seed = env_ull("MOAT_SG_SEED", SGT_DEFAULT_SEED);
	cfg.seqs = env_ull("MOAT_SG_SEQS", SGT_DEFAULT_SEQS);
	cfg.packets = env_ull("MOAT_SG_PACKETS", SGT_DEFAULT_PACKETS);
	cfg.only = getenv("MOAT_SG_ONLY") ? (long)env_ull("MOAT_SG_ONLY", 0) : -1;
	printf("# sg differential: seed %llu, %zu sequences of %zu packets\n",
	       (unsigned long long)cfg.seed, cfg.seqs, cfg.packets);
	return cmocka_run_group_tests(tests, setup, teardown);
}
