/* SPDX-License-Identifier: GPL-2.0 */
/*
 * datapath.h - moat's BPF programs and maps as one object to user space.
 *
 * An instance is either private (fresh, unpinned maps: `trace --rules`,
 * tests) or bound to the maps pinned for an interface. Rules are applied by
 * building a new generation beside the live one and switching with one map
 * update (see include/moat_abi.h).
 */
#ifndef MOAT_DATAPATH_H
#define MOAT_DATAPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moat_abi.h"
#include "rules.h"

struct moat_inst;

/*
 * Load a private instance: programs loaded (not attached), maps fresh.
 * @trace_mode: the programs change no counter and no conntrack entry, and
 * record their decision for moat_inst_run().
 */
int moat_inst_open_private(struct moat_inst **out, bool trace_mode);

/* Compile @rs and switch the instance to it. Errors (e.g. capacity) go to @d. */
int moat_inst_apply(struct moat_inst *inst, const struct ruleset *rs, struct diags *d);

/*
 * Run one Ethernet frame through the program of direction @dir (in: XDP,
 * out: TC) with BPF_PROG_TEST_RUN. @pass is set to true when the frame
 * would pass; @trace (may be NULL) receives the decision when the instance
 * is in trace mode.
 */
int moat_inst_run(struct moat_inst *inst, int dir, const uint8_t *frame, size_t len, bool *pass,
		  struct moat_trace *trace);

void moat_inst_close(struct moat_inst *inst);

#endif
