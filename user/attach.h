/* SPDX-License-Identifier: GPL-2.0 */
/*
 * attach.h - put moat on an interface and take it off: maps created and
 * pinned, the first generation applied, then XDP (through libxdp's
 * dispatcher) and TC clsact egress attached, all under the interface lock.
 */
#ifndef MOAT_ATTACH_H
#define MOAT_ATTACH_H

#include <stdbool.h>
#include <stddef.h>

#include "rules.h"

enum attach_mode { ATTACH_AUTO = 0, ATTACH_NATIVE, ATTACH_SKB };

struct attach_result {
	bool native; /* XDP attached in native (driver) mode */
	unsigned gen;
};

/*
 * Attach to @ifname with rule set @rs. On failure nothing is left behind.
 * Returns 0, -EINVAL/-E2BIG for rules the datapath cannot hold (in @d), or
 * another -errno with @err set.
 */
int attach_iface(const char *ifname, const struct ruleset *rs, enum attach_mode mode,
		 struct attach_result *res, struct diags *d, char *err, size_t errlen);

/*
 * Take moat off @ifname: detach both programs, unpin. @keep_state keeps
 * the pinned conntrack table for a later attach.
 */
int detach_iface(const char *ifname, bool keep_state, char *err, size_t errlen);

/* Pin names of the programs under the interface's pin directory. */
#define MOAT_PIN_XDP "prog_xdp_ingress"
#define MOAT_PIN_TC "prog_tc_egress"
#define MOAT_TC_HANDLE 0x4d4f /* "MO" */
#define MOAT_TC_PRIO 1

#endif
