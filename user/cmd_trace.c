// SPDX-License-Identifier: GPL-2.0
/*
 * cmd_trace.c - `moat trace IFACE|--rules FILE in|out PACKET [--json]`:
 * run one packet through the real BPF program (BPF_PROG_TEST_RUN) and say
 * which stage and rule decided it. The trace build of the program counts
 * nothing and creates no connection entry, so tracing on a live interface
 * changes nothing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cmd.h"
#include "datapath.h"
#include "dp_load.h"
#include "output.h"
#include "packet.h"
#include "readout.h"
#include "rules.h"

static const char *reason_text(unsigned reason)
{
	switch (reason) {
	case MOAT_REASON_NON_IP:
		return "not IP: non-IP frames pass";
	case MOAT_REASON_NDP:
		return "IPv6 neighbour discovery passes (set pass-ndp off to filter it)";
	case MOAT_REASON_MALFORMED:
		return "malformed or truncated headers: dropped";
	case MOAT_REASON_EXT_HDR_LIMIT:
		return "IPv6 extension headers beyond the walk bound: dropped";
	case MOAT_REASON_NACL_RULE:
		return "decided by a NACL rule";
	case MOAT_REASON_NACL_DEFAULT:
		return "no NACL rule matched: implicit final deny";
	case MOAT_REASON_SG:
		return "no SG rule allows it and no tracked connection: dropped";
	case MOAT_REASON_STAGES_OFF:
		return "no stage is on: passes";
	default:
		return "passed every stage";
	}
}

static const char *sg_by_name(unsigned by)
{
	switch (by) {
	case MOAT_SG_BY_RULE:
		return "rule";
	case MOAT_SG_BY_CONNTRACK:
	case MOAT_SG_BY_RELATED:
		return "conntrack";
	case MOAT_SG_BY_UNTRACKED:
		return "untracked";
	case MOAT_SG_BY_NONE:
		return "none";
	default:
		return NULL;
	}
}

/* The rule line of @rs for (stage, dir, number), when known. */
static const struct rule *find_rule(const struct ruleset *rs, int stage, int dir, unsigned num)
{
	size_t i;

	if (!rs)
		return NULL;
	for (i = 0; i < rs->nrules; i++)
		if ((int)rs->rules[i].stage == stage && (int)rs->rules[i].dir == dir &&
		    (unsigned)rs->rules[i].number == num)
			return &rs->rules[i];
	return NULL;
}

/* "proto lo-endpoint <-> hi-endpoint" of a connection-tracking key. */
static void ct_key_text(const struct moat_ct_key *k, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN], proto[16];
	int af = k->family == 4 ? AF_INET : AF_INET6;

	inet_ntop(af, k->addr_lo, a, sizeof(a));
	inet_ntop(af, k->addr_hi, b, sizeof(b));
	rule_proto_name(k->proto, proto, sizeof(proto));
	snprintf(buf, len, k->family == 6 ? "%s [%s]:%u <-> [%s]:%u" : "%s %s:%u <-> %s:%u", proto,
		 a, ntohs(k->port_lo), b, ntohs(k->port_hi));
}

static void print_text(const struct moat_trace *t, int dir, const char *pkt,
		       const struct ruleset *rs)
{
	const char *d = dir == MOAT_DIR_IN ? "in" : "out";
	const struct rule *r;
	char line[1024];

	printf("%s %s: %s\n", d, pkt, t->verdict ? "PASS" : "DROP");
	if (!t->nacl_on)
		printf("  nacl %-3s: %s\n", d,
		       t->reason == MOAT_REASON_MALFORMED || t->reason == MOAT_REASON_NON_IP ||
				       t->reason == MOAT_REASON_NDP ||
				       t->reason == MOAT_REASON_EXT_HDR_LIMIT ?
			       "not reached" :
			       "off (or not reached)");
	else if (t->nacl_pos == MOAT_NO_RULE)
		printf("  nacl %-3s: no rule matched: implicit final deny\n", d);
	else {
		r = find_rule(rs, RULE_STAGE_NACL, dir, t->nacl_number);
		if (r)
			rule_format(r, rs, line, sizeof(line));
		printf("  nacl %-3s: rule %u %s%s%s\n", d, t->nacl_number,
		       t->nacl_action == MOAT_ACTION_ALLOW ? "allow" : "deny", r ? "   " : "",
		       r ? line : "");
	}
	if (!t->sg_on)
		printf("  sg   %-3s: off (or not reached)\n", d);
	else {
		switch (t->sg_by) {
		case MOAT_SG_BY_RULE:
		case MOAT_SG_BY_UNTRACKED:
			r = find_rule(rs, RULE_STAGE_SG, dir, t->sg_number);
			if (r)
				rule_format(r, rs, line, sizeof(line));
			printf("  sg   %-3s: allowed by rule %u%s%s%s\n", d, t->sg_number,
			       t->sg_by == MOAT_SG_BY_UNTRACKED ? " (untracked flow)" :
								  " (a connection entry would be created)",
			       r ? "   " : "", r ? line : "");
			break;
		case MOAT_SG_BY_CONNTRACK:
			ct_key_text(&t->ct_key, line, sizeof(line));
			printf("  sg   %-3s: allowed by the tracked connection %s (%s)\n", d, line,
			       readout_ct_state_name(t->ct_state));
			break;
		case MOAT_SG_BY_RELATED:
			ct_key_text(&t->ct_key, line, sizeof(line));
			printf("  sg   %-3s: an ICMP error quoting the tracked connection %s\n", d,
			       line);
			break;
		case MOAT_SG_BY_NONE:
			printf("  sg   %-3s: no rule allows it and no tracked connection\n", d);
			break;
		default:
			printf("  sg   %-3s: not reached\n", d);
		}
	}
	printf("  why: %s\n", reason_text(t->reason));
}

static struct json_object *trace_json(const struct moat_trace *t, int dir, const char *pkt,
				      const char *iface, const char *rules_file)
{
	struct json_object *o = json_object_new_object(), *n = json_object_new_object();
	struct json_object *s = json_object_new_object();
	const char *by = t->sg_on ? sg_by_name(t->sg_by) : NULL;

	if (iface)
		json_object_object_add(o, "interface", json_object_new_string(iface));
	if (rules_file)
		json_object_object_add(o, "rules", json_object_new_string(rules_file));
	json_object_object_add(o, "direction",
			       json_object_new_string(dir == MOAT_DIR_IN ? "in" : "out"));
	json_object_object_add(o, "packet", json_object_new_string(pkt));
	json_object_object_add(o, "verdict", json_object_new_string(t->verdict ? "pass" : "drop"));
	json_object_object_add(o, "reason", json_object_new_string(reason_text(t->reason)));

	json_object_object_add(n, "on", json_object_new_boolean(t->nacl_on));
	if (t->nacl_on && t->nacl_pos != MOAT_NO_RULE) {
		json_object_object_add(n, "rule", json_object_new_int(t->nacl_number));
		json_object_object_add(n, "action", json_object_new_string(
							    t->nacl_action == MOAT_ACTION_ALLOW ?
								    "allow" :
								    "deny"));
	} else {
		json_object_object_add(n, "rule", NULL);
		json_object_object_add(n, "action", t->nacl_on ? json_object_new_string("deny") :
								  NULL);
	}
	json_object_object_add(o, "nacl", n);

	json_object_object_add(s, "on", json_object_new_boolean(t->sg_on));
	json_object_object_add(s, "by", by ? json_object_new_string(by) : NULL);
	json_object_object_add(s, "rule",
			       t->sg_on && (t->sg_by == MOAT_SG_BY_RULE ||
					    t->sg_by == MOAT_SG_BY_UNTRACKED) ?
				       json_object_new_int(t->sg_number) :
				       NULL);
	json_object_object_add(s, "related", json_object_new_boolean(t->sg_by == MOAT_SG_BY_RELATED));
	if (t->sg_on && (t->sg_by == MOAT_SG_BY_CONNTRACK || t->sg_by == MOAT_SG_BY_RELATED)) {
		struct json_object *e = json_object_new_object();
		char buf[200];

		ct_key_text(&t->ct_key, buf, sizeof(buf));
		json_object_object_add(e, "flow", json_object_new_string(buf));
		json_object_object_add(e, "state", json_object_new_string(
							   t->sg_by == MOAT_SG_BY_RELATED ?
								   "related" :
								   readout_ct_state_name(t->ct_state)));
		json_object_object_add(s, "entry", e);
	} else {
		json_object_object_add(s, "entry", NULL);
	}
	json_object_object_add(o, "sg", s);
	return o;
}

/* One packet to judge: direction, frame, and its spec as text. */
struct trace_item {
	int dir;
	int len;
	uint8_t frame[256];
	char pkt[200];
};

/* "in|out PACKET" from @words; returns 0 or -EINVAL with @err set. */
static int item_parse(int nw, char **words, struct trace_item *it, char *err, size_t errlen)
{
	struct packet p;

	if (nw < 2) {
		snprintf(err, errlen, "expected a direction and a packet");
		return -EINVAL;
	}
	if (!strcmp(words[0], "in"))
		it->dir = MOAT_DIR_IN;
	else if (!strcmp(words[0], "out"))
		it->dir = MOAT_DIR_OUT;
	else {
		snprintf(err, errlen, "expected the direction 'in' or 'out', not '%s'", words[0]);
		return -EINVAL;
	}
	if (packet_parse(nw - 1, words + 1, &p, err, errlen))
		return -EINVAL;
	packet_format(&p, it->pkt, sizeof(it->pkt));
	it->len = packet_build_frame(&p, it->frame, sizeof(it->frame));
	if (it->len < 0) {
		snprintf(err, errlen, "cannot build the packet: %s", strerror(-it->len));
		return -EINVAL;
	}
	return 0;
}

/*
 * `--batch FILE`: one "in|out PACKET" a line (# comments), all judged by
 * one loaded instance; a bad line is an error naming FILE:LINE and nothing
 * is judged.
 */
static int items_from_file(const char *path, struct trace_item **out, size_t *n, bool json)
{
	struct trace_item *v = NULL;
	size_t cnt = 0, cap = 0, lineno = 0;
	char line[1024], err[512];
	FILE *f = fopen(path, "r");

	if (!f) {
		out_error(json, "%s: %s", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		char *words[32], *save = NULL, *w, *hash = strchr(line, '#');
		int nw = 0;

		lineno++;
		if (hash)
			*hash = 0;
		for (w = strtok_r(line, " \t\r\n", &save); w && nw < 32;
		     w = strtok_r(NULL, " \t\r\n", &save))
			words[nw++] = w;
		if (!nw)
			continue;
		if (cnt == cap) {
			struct trace_item *nv;

			cap = cap ? cap * 2 : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				fclose(f);
				return -ENOMEM;
			}
			v = nv;
		}
		if (item_parse(nw, words, &v[cnt], err, sizeof(err))) {
			out_error(json, "%s:%zu: %s", path, lineno, err);
			free(v);
			fclose(f);
			return -EINVAL;
		}
		cnt++;
	}
	fclose(f);
	*out = v;
	*n = cnt;
	return 0;
}

int cmd_trace(int argc, char **argv)
{
	const char *rules_file = NULL, *iface = NULL, *batch = NULL;
	bool json = false;
	struct arg_opt opts[] = { { "rules", true, &rules_file, NULL },
				  { "batch", true, &batch, NULL },
				  { "json", false, NULL, &json },
				  { 0 } };
	struct moat_inst *inst = NULL;
	struct ruleset rs, *rsp = NULL;
	struct trace_item *items = NULL;
	struct json_object *results = NULL;
	struct moat_trace t;
	struct diags d;
	struct args a;
	char err[512];
	int first, rc, ret = MOAT_EXIT_OK;
	size_t nitems = 0, i;
	bool pass;

	if (args_parse(argc, argv, opts, &a, json))
		return MOAT_EXIT_INPUT;
	if (out_lacks_privileges(json))
		return MOAT_EXIT_SYSTEM;
	first = rules_file ? 0 : 1;
	if (a.npos < first + (batch ? 0 : 2) || (batch && a.npos != first)) {
		out_error(json, "usage: moat trace IFACE|--rules FILE in|out PACKET [--json]\n"
				"       moat trace IFACE|--rules FILE --batch PACKETS [--json]");
		return MOAT_EXIT_INPUT;
	}
	if (!rules_file)
		iface = a.pos[0];
	if (batch) {
		rc = items_from_file(batch, &items, &nitems, json);
		if (rc)
			return rc == -ENOMEM ? MOAT_EXIT_SYSTEM : MOAT_EXIT_INPUT;
	} else {
		items = calloc(1, sizeof(*items));
		if (!items)
			return MOAT_EXIT_SYSTEM;
		nitems = 1;
		if (item_parse(a.npos - first, a.pos + first, items, err, sizeof(err))) {
			out_error(json, "bad packet: %s", err);
			free(items);
			return MOAT_EXIT_INPUT;
		}
	}

	diags_init(&d);
	ruleset_init(&rs);
	if (rules_file) {
		if (rules_parse_file(rules_file, &rs, &d)) {
			if (json) {
				struct json_object *o = json_object_new_object();

				json_object_object_add(o, "error", json_object_new_string(
									   "the rules file has errors"));
				json_object_object_add(o, "diagnostics", out_diags_json(&d));
				out_json(o);
			} else {
				diags_print(&d, stderr);
			}
			ret = MOAT_EXIT_INPUT;
			goto out;
		}
		rsp = &rs;
		rc = moat_inst_open_private(&inst, true);
		if (rc) {
			out_error(json, "loading the datapath: %s", strerror(-rc));
			ret = MOAT_EXIT_SYSTEM;
			goto out;
		}
		rc = moat_inst_apply(inst, &rs, &d);
		if (rc) {
			out_error(json, "applying %s: %s", rules_file,
				  d.n ? d.v[d.n - 1].msg : strerror(-rc));
			ret = rc == -E2BIG ? MOAT_EXIT_INPUT : MOAT_EXIT_SYSTEM;
			goto out;
		}
	} else {
		rc = moat_inst_open_bound(&inst, iface, err, sizeof(err));
		if (rc) {
			out_error(json, "%s", err);
			ret = MOAT_EXIT_SYSTEM;
			goto out;
		}
	}
	if (batch && json)
		results = json_object_new_array();
	for (i = 0; i < nitems; i++) {
		struct trace_item *it = &items[i];

		rc = moat_inst_run(inst, it->dir, it->frame, it->len, &pass, &t);
		if (rc || !t.ran) {
			json_object_put(results);
			out_error(json, "running the packet through the datapath: %s",
				  rc ? strerror(-rc) : "no result");
			ret = MOAT_EXIT_SYSTEM;
			goto out;
		}
		if (results)
			json_object_array_add(results,
					      trace_json(&t, it->dir, it->pkt, iface, rules_file));
		else if (json)
			out_json(trace_json(&t, it->dir, it->pkt, iface, rules_file));
		else
			print_text(&t, it->dir, it->pkt, rsp);
	}
	if (results) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "results", results);
		out_json(o);
	}
out:
	moat_inst_close(inst);
	ruleset_free(&rs);
	diags_free(&d);
	free(items);
	return ret;
}
