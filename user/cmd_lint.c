// SPDX-License-Identifier: GPL-2.0
/*
 * cmd_lint.c - `moat lint FILE [--json] [--reach]`: parse a rules file, run
 * the analysis of lint.c and print its findings, each with its witness
 * packets in `moat trace` syntax and the fix it suggests.
 *
 * Exit status 0 when nothing at warning level or above was found, 1
 * otherwise (and on bad input), so a CI pipeline can gate on it. Text and
 * JSON are printed from the same fields by one helper each, so the two
 * never say different things.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cmd.h"
#include "lint.h"
#include "output.h"

static bool has_json_flag(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--json"))
			return true;
	return false;
}

static void witness_text(const struct lint_witness *w, char *buf, size_t len)
{
	if (packet_format(&w->pkt, buf, len))
		snprintf(buf, len, "?");
}

static void ports_text(uint16_t lo, uint16_t hi, char *buf, size_t len)
{
	if (lo == hi)
		snprintf(buf, len, "%u", lo);
	else
		snprintf(buf, len, "%u-%u", lo, hi);
}

/* ---- JSON ------------------------------------------------------------- */

static struct json_object *witness_json(const struct lint_witness *w)
{
	struct json_object *o = json_object_new_object();
	char pkt[256];

	witness_text(w, pkt, sizeof(pkt));
	json_object_object_add(o, "dir", json_object_new_string(rule_dir_name(w->dir)));
	json_object_object_add(o, "packet", json_object_new_string(pkt));
	return o;
}

static struct json_object *span_json(const struct lint_span *s)
{
	struct json_object *o = json_object_new_object();
	char addr[2 * 48], ports[16], proto[8];

	json_object_object_add(o, "family", json_object_new_int(s->family));
	if (rule_proto_name(s->proto, proto, sizeof(proto)))
		snprintf(proto, sizeof(proto), "%d", s->proto);
	json_object_object_add(o, "proto", json_object_new_string(proto));
	json_object_object_add(o, "opener",
			       json_object_new_string(s->dir == RULE_DIR_IN ? "peer" : "local"));
	if (lint_addr_range_format(s->family, s->peer_lo, s->peer_hi, addr, sizeof(addr)))
		snprintf(addr, sizeof(addr), "?");
	json_object_object_add(o, "peer", json_object_new_string(addr));
	if (s->has_ports) {
		ports_text(s->peer_port_lo, s->peer_port_hi, ports, sizeof(ports));
		json_object_object_add(o, "peer_ports", json_object_new_string(ports));
	}
	if (lint_addr_range_format(s->family, s->local_lo, s->local_hi, addr, sizeof(addr)))
		snprintf(addr, sizeof(addr), "?");
	json_object_object_add(o, "local", json_object_new_string(addr));
	if (s->has_ports) {
		ports_text(s->local_port_lo, s->local_port_hi, ports, sizeof(ports));
		json_object_object_add(o, "local_ports", json_object_new_string(ports));
	}
	return o;
}

static struct json_object *spans_json(const struct lint_span *v, size_t n)
{
	struct json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_object_array_add(a, span_json(&v[i]));
	return a;
}

static struct json_object *finding_json(const struct lint_finding *f)
{
	struct json_object *o = json_object_new_object();
	struct json_object *refs = json_object_new_array();
	struct json_object *wit = json_object_new_array();
	size_t i;

	json_object_object_add(o, "severity", json_object_new_string(lint_severity_name(f->sev)));
	json_object_object_add(o, "kind", json_object_new_string(f->kind));
	json_object_object_add(o, "line", json_object_new_int(f->loc.line));
	for (i = 0; i < f->nrefs; i++) {
		struct json_object *r = json_object_new_object();

		json_object_object_add(r, "stage",
				       json_object_new_string(rule_stage_name(f->refs[i].stage)));
		json_object_object_add(r, "dir",
				       json_object_new_string(rule_dir_name(f->refs[i].dir)));
		json_object_object_add(r, "number", json_object_new_int(f->refs[i].number));
		json_object_array_add(refs, r);
	}
	json_object_object_add(o, "rules", refs);
	json_object_object_add(o, "message", json_object_new_string(f->message ? f->message : ""));
	for (i = 0; i < f->nwitness; i++)
		json_object_array_add(wit, witness_json(&f->witness[i]));
	json_object_object_add(o, "witness", wit);
	json_object_object_add(o, "regions", spans_json(f->spans, f->nspans));
	json_object_object_add(o, "regions_total", json_object_new_int64((int64_t)f->spans_total));
	json_object_object_add(o, "regions_partial", json_object_new_boolean(f->spans_partial));
	json_object_object_add(o, "fix", f->fix ? json_object_new_string(f->fix) : NULL);
	return o;
}

static const char *status_name(enum lint_rule_status s)
{
	switch (s) {
	case LINT_RULE_LIVE:
		return "live";
	case LINT_RULE_SHADOWED:
		return "shadowed";
	case LINT_RULE_UNKNOWN:
		return "unknown";
	}
	return "unknown";
}

/* Per rule: can it ever decide a packet, and which packet shows it. */
static struct json_object *rules_json(const struct ruleset *rs, const struct lint_result *res)
{
	struct json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; i < res->nrules; i++) {
		const struct lint_rule_info *ri = &res->rules[i];
		const struct rule *r = &rs->rules[ri->rule];
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "stage",
				       json_object_new_string(rule_stage_name(r->stage)));
		json_object_object_add(o, "dir", json_object_new_string(rule_dir_name(r->dir)));
		json_object_object_add(o, "number", json_object_new_int(r->number));
		json_object_object_add(o, "line", json_object_new_int(r->loc.line));
		json_object_object_add(o, "status",
				       json_object_new_string(status_name(ri->status)));
		json_object_object_add(o, "witness",
				       ri->has_witness ? witness_json(&ri->witness) : NULL);
		json_object_array_add(a, o);
	}
	return a;
}

static struct json_object *reach_json(const struct lint_reach *r)
{
	struct json_object *top = json_object_new_object();
	int p, d, l;

	for (p = 0; p < LINT_REACH_NPROTO; p++) {
		struct json_object *po = json_object_new_object();

		for (d = 0; d < 2; d++) {
			struct json_object *dobj = json_object_new_object();

			for (l = 0; l < LINT_REACH_NLAYER; l++) {
				const struct lint_reach_cell *c = &r->cell[p][d][l];
				struct json_object *co = json_object_new_object();

				json_object_object_add(co, "stage_off",
						       json_object_new_boolean(c->stage_off));
				json_object_object_add(co, "truncated",
						       json_object_new_boolean(c->truncated));
				json_object_object_add(co, "total",
						       json_object_new_int64((int64_t)c->total));
				json_object_object_add(co, "regions",
						       spans_json(c->spans, c->nspans));
				json_object_object_add(dobj, lint_reach_layer_name(l), co);
			}
			json_object_object_add(po, rule_dir_name(d), dobj);
		}
		json_object_object_add(top, lint_reach_proto_name(p), po);
	}
	return top;
}

static void print_json(const char *file, const struct ruleset *rs, const struct lint_result *res)
{
	struct json_object *o = json_object_new_object();
	struct json_object *fs = json_object_new_array();
	struct json_object *sum = json_object_new_object();
	size_t i;

	json_object_object_add(o, "file", json_object_new_string(file));
	for (i = 0; i < res->n; i++)
		json_object_array_add(fs, finding_json(&res->v[i]));
	json_object_object_add(o, "findings", fs);
	json_object_object_add(sum, "errors", json_object_new_int64((int64_t)res->errors));
	json_object_object_add(sum, "warnings", json_object_new_int64((int64_t)res->warnings));
	json_object_object_add(sum, "info", json_object_new_int64((int64_t)res->infos));
	json_object_object_add(sum, "rules", json_object_new_int64((int64_t)rs->nrules));
	json_object_object_add(sum, "incomplete", json_object_new_int64((int64_t)res->incomplete));
	json_object_object_add(o, "summary", sum);
	json_object_object_add(o, "rules", rules_json(rs, res));
	if (res->has_reach)
		json_object_object_add(o, "reach", reach_json(&res->reach));
	out_json(o);
}

/* ---- text ------------------------------------------------------------- */

static void print_spans(const char *label, const struct lint_span *v, size_t n, size_t total,
			bool partial)
{
	int indent = (int)strlen(label);
	char text[512];
	size_t i;

	for (i = 0; i < n; i++) {
		if (lint_span_format(&v[i], text, sizeof(text)))
			snprintf(text, sizeof(text), "?");
		printf("%*s%s\n", indent, i ? "" : label, text);
	}
	if (total > n || partial)
		printf("%*s... and %s%zu more\n", indent, "", partial ? "at least " : "",
		       total - n);
}

static void print_finding(const char *file, const struct lint_finding *f)
{
	char pkt[256];
	size_t i;

	if (f->loc.line > 0)
		printf("%s:%d: ", f->loc.file ? f->loc.file : file, f->loc.line);
	else
		printf("%s: ", file);
	printf("%s: [%s] %s\n", lint_severity_name(f->sev), f->kind, f->message ? f->message : "");
	print_spans("  region: ", f->spans, f->nspans, f->spans_total, f->spans_partial);
	for (i = 0; i < f->nwitness; i++) {
		witness_text(&f->witness[i], pkt, sizeof(pkt));
		printf("  witness: %-3s %s\n", rule_dir_name(f->witness[i].dir), pkt);
	}
	if (f->fix)
		printf("  fix: %s\n", f->fix);
}

static void print_reach(const struct lint_reach *r)
{
	static const char *const who[2] = { "peers -> this host", "this host -> peers" };
	int p, d, l;

	printf("\nreachability: who can open connections (and get replies)\n");
	for (p = 0; p < LINT_REACH_NPROTO; p++)
		for (d = 0; d < 2; d++) {
			printf("%s, %s:\n", lint_reach_proto_name(p), who[d]);
			for (l = 0; l < LINT_REACH_NLAYER; l++) {
				const struct lint_reach_cell *c = &r->cell[p][d][l];
				char label[16];

				snprintf(label, sizeof(label), "  %-5s ", lint_reach_layer_name(l));
				if (c->stage_off)
					printf("%sstage off: everyone, every port\n", label);
				else if (c->truncated && !c->total)
					printf("%stoo fragmented to compute within the budget\n",
					       label);
				else if (!c->total)
					printf("%snothing\n", label);
				else
					print_spans(label, c->spans, c->nspans, c->total,
						    c->truncated);
			}
		}
}

static void print_text(const char *file, const struct ruleset *rs, const struct lint_result *res)
{
	size_t i;

	for (i = 0; i < res->n; i++)
		print_finding(file, &res->v[i]);
	if (res->has_reach)
		print_reach(&res->reach);
	printf("%s%s: %zu rules: %zu error%s, %zu warning%s, %zu info\n", res->n ? "\n" : "", file,
	       rs->nrules, res->errors, res->errors == 1 ? "" : "s", res->warnings,
	       res->warnings == 1 ? "" : "s", res->infos);
}

int cmd_lint(int argc, char **argv)
{
	bool json = has_json_flag(argc, argv), reach = false;
	struct arg_opt opts[] = {
		{ "json", false, NULL, &json },
		{ "reach", false, NULL, &reach },
		{ 0 },
	};
	struct lint_result res;
	struct lint_opts lo;
	struct ruleset rs;
	struct diags d;
	struct args a;
	int rc, err;

	if (args_parse(argc, argv, opts, &a, json))
		return MOAT_EXIT_INPUT;
	if (a.npos != 1) {
		out_error(json, "usage: moat lint FILE [--json] [--reach]");
		return MOAT_EXIT_INPUT;
	}
	ruleset_init(&rs);
	diags_init(&d);
	if (rules_parse_file(a.pos[0], &rs, &d)) {
		if (json) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "file", json_object_new_string(a.pos[0]));
			json_object_object_add(o, "error",
					       json_object_new_string("the rules file has errors"));
			json_object_object_add(o, "diagnostics", out_diags_json(&d));
			out_json(o);
		} else {
			diags_print(&d, stderr);
		}
		diags_free(&d);
		ruleset_free(&rs);
		return MOAT_EXIT_INPUT;
	}
	diags_free(&d);

	lint_opts_default(&lo);
	lo.reach = reach;
	err = lint_run(&rs, &lo, &res);
	if (err && err != -E2BIG) {
		out_error(json, "lint %s: %s", a.pos[0], strerror(-err));
		rc = err == -ENOMEM ? MOAT_EXIT_SYSTEM : MOAT_EXIT_INPUT;
	} else {
		/* -E2BIG: the result holds the error finding that says why */
		if (json)
			print_json(a.pos[0], &rs, &res);
		else
			print_text(a.pos[0], &rs, &res);
		rc = res.errors || res.warnings ? MOAT_EXIT_INPUT : MOAT_EXIT_OK;
	}
	lint_result_free(&res);
	ruleset_free(&rs);
	return rc;
}
