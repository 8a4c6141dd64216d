// SPDX-License-Identifier: GPL-2.0
/*
 * attach.c - attach and detach, with the filter never running on an empty
 * rule set:
 *   1. create the maps (no programs) and pin them, root-only;
 *   2. apply the rules as the first generation;
 *   3. load the programs over the pinned maps and attach XDP through
 *      libxdp's dispatcher, then TC clsact egress;
 *   4. pin the programs, so a later `moat` finds them.
 * Netlink attachments outlive the CLI, so the filter keeps working after
 * it exits. Any failure undoes what was done.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "attach.h"
#include "cmd.h"
#include "dp_load.h"
#include "generation.h"
#include "moat.skel.h"

static int unpin_all(const char *dir, bool keep_state)
{
	char path[700];
	size_t i;

	for (i = 0; i < MOAT_NMAPS; i++) {
		if (keep_state && (!strcmp(moat_map_names[i], "conntrack") ||
				   !strcmp(moat_map_names[i], "ct_pending") ||
				   !strcmp(moat_map_names[i], "meta")))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, moat_map_names[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, MOAT_PIN_XDP);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", dir, MOAT_PIN_TC);
	unlink(path);
	if (!keep_state)
		return rmdir(dir) ? -errno : 0;
	return 0;
}

/* Is the XDP program pinned at @path attached to @ifindex right now? */
static bool pins_are_live(const char *path, unsigned ifindex)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);
	struct xdp_multiprog *mp;
	struct xdp_program *p;
	bool live = false;
	int fd = bpf_obj_get(path);

	if (fd < 0)
		return errno != ENOENT; /* cannot tell: never treat it as stale */
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		close(fd);
		return true; /* cannot tell: do not touch */
	}
	close(fd);
	mp = xdp_multiprog__get_from_ifindex(ifindex);
	if (libxdp_get_error(mp))
		return false;
	if (xdp_multiprog__is_legacy(mp)) {
		p = xdp_multiprog__main_prog(mp);
		live = p && xdp_program__id(p) == info.id;
	} else {
		for (p = xdp_multiprog__next_prog(NULL, mp); p && !live;
		     p = xdp_multiprog__next_prog(p, mp))
			live = xdp_program__id(p) == info.id;
	}
	xdp_multiprog__close(mp);
	return live;
}

static int pin_maps(struct moat_bpf *skel, const char *dir, const struct moat_maps *reused,
		    char *err, size_t errlen)
{
	char path[700];
	size_t i;

	for (i = 0; i < MOAT_NMAPS; i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(skel->obj, moat_map_names[i]);

		if (reused && *moat_maps_fd((struct moat_maps *)reused, i) >= 0)
			continue; /* already pinned (kept state) */
		snprintf(path, sizeof(path), "%s/%s", dir, moat_map_names[i]);
		if (bpf_obj_pin(bpf_map__fd(map), path)) {
			int rc = -errno;

			snprintf(err, errlen, "pinning %s: %s", path, strerror(-rc));
			return rc;
		}
		chmod(path, 0600);
	}
	return 0;
}

/* One kept table: reuse it when its layout and size are what we want. */
static int reuse_kept_table(const char *dir, const char *name, uint32_t want_max, int *fd_out)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	char path[700];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
	    info.key_size == sizeof(struct moat_ct_key) &&
	    info.value_size == sizeof(struct moat_ct_value) && info.max_entries == want_max &&
	    info.type == BPF_MAP_TYPE_LRU_HASH) {
		*fd_out = fd;
		return 1;
	}
	close(fd);
	fprintf(stderr,
		"moat: the kept table %s has another layout or size (key %u, value %u, %u "
		"entries; this moat uses %zu, %zu, %u): starting a new one\n",
		path, info.key_size, info.value_size, info.max_entries,
		sizeof(struct moat_ct_key), sizeof(struct moat_ct_value), want_max);
	unlink(path);
	return 0;
}

/*
 * Connection tables kept by `detach --keep-state`. They are reused only
 * when the kept `meta` says they were written with this moat's ABI version
 * (same key and value layout), else they are discarded, and said so: a
 * layout change must never be misread as connections.
 */
static int reuse_kept_conntrack(const char *dir, uint32_t ct_max, struct moat_maps *reuse)
{
	uint32_t pending_max = ct_max / 4 > 1024 ? ct_max / 4 : 1024;
	struct moat_meta meta = { 0 };
	char path[700];
	__u32 zero = 0;
	int fd, ok = 0;

	snprintf(path, sizeof(path), "%s/meta", dir);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	if (bpf_map_lookup_elem(fd, &zero, &meta) == 0 && meta.abi_version == MOAT_ABI_VERSION)
		ok = 1;
	close(fd);
	unlink(path);
	if (!ok) {
		fprintf(stderr,
			"moat: the kept connection tables in %s were written by a moat with "
			"another table layout (ABI %u, this is %u): starting new ones\n",
			dir, meta.abi_version, MOAT_ABI_VERSION);
		snprintf(path, sizeof(path), "%s/conntrack", dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/ct_pending", dir);
		unlink(path);
		return 0;
	}
	ok = reuse_kept_table(dir, "conntrack", ct_max, &reuse->conntrack);
	ok += reuse_kept_table(dir, "ct_pending", pending_max, &reuse->ct_pending);
	return ok;
}

static uint32_t stat_slots_for(const struct ruleset *rs)
{
	uint32_t n = 8192;

	/* Room for the live and a reloaded rule set, with space to grow. */
	while (n < 4 * rs->nrules && n < 2 * 4 * MOAT_MAX_RULES)
		n *= 2;
	return n;
}

int attach_iface(const char *ifname, const struct ruleset *rs, enum attach_mode mode,
		 struct attach_result *res, struct diags *d, char *err, size_t errlen)
{
	struct dp_open_opts o = { 0 };
	struct moat_bpf *maps_skel = NULL, *prog_skel = NULL;
	struct xdp_program *xp = NULL;
	struct moat_maps maps, reuse;
	enum xdp_attach_mode xmode = XDP_MODE_NATIVE;
	char dir[512], path[700];
	bool xdp_attached = false, tc_attached = false, dir_made = false;
	unsigned ifindex;
	int rc, lock;
	LIBBPF_OPTS(bpf_tc_hook, hook, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, tcopts, .handle = MOAT_TC_HANDLE, .priority = MOAT_TC_PRIO);

	moat_maps_init(&maps);
	moat_maps_init(&reuse);
	ifindex = if_nametoindex(ifname);
	if (!ifindex) {
		snprintf(err, errlen, "no interface named '%s'", ifname);
		return -ENODEV;
	}
	rc = pin_dir(ifname, dir, sizeof(dir), err, errlen);
	if (rc)
		return rc;
	lock = pin_lock(ifname);
	if (lock < 0) {
		snprintf(err, errlen, "locking %s: %s", ifname, strerror(-lock));
		return lock;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, MOAT_PIN_XDP);
	if (access(path, F_OK) == 0) {
		if (pins_are_live(path, ifindex)) {
			snprintf(err, errlen, "moat is already attached to %s (use `moat reload`)",
				 ifname);
			rc = -EEXIST;
			goto out;
		}
		/* Pins of an interface that went away (or was detached behind
		 * moat's back): nothing uses them, start afresh. */
		fprintf(stderr, "moat: removing stale pins in %s\n", dir);
		unpin_all(dir, false);
	}
	{
		char root[300];

		pin_root(root, sizeof(root), err, errlen);
		snprintf(path, sizeof(path), "%s/moat", root);
		mkdir(path, 0700);
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "creating %s: %s", dir, strerror(-rc));
		goto out;
	}
	dir_made = true;
	chmod(dir, 0700);

	/* 1. Maps only, pinned. */
	o.ct_max = rs->settings.ct_max;
	o.stat_slots = stat_slots_for(rs);
	if (reuse_kept_conntrack(dir, o.ct_max, &reuse) > 0)
		o.reuse = &reuse;
	rc = dp_skel_open(&maps_skel, &o, err, errlen);
	if (rc)
		goto out;
	rc = pin_maps(maps_skel, dir, o.reuse, err, errlen);
	if (rc)
		goto out;
	rc = dp_maps_from_skel(maps_skel, &maps);
	if (rc)
		goto out;
	{
		struct moat_meta meta = { .abi_version = MOAT_ABI_VERSION, .ifindex = ifindex };
		__u32 zero = 0;

		bpf_map_update_elem(maps.meta, &zero, &meta, BPF_ANY);
	}

	/* 2. The first generation. */
	{
		struct gen_apply_info gi;

		rc = gen_apply(&maps, rs, d, &gi);
		if (rc) {
			snprintf(err, errlen, "applying the rules: %s", strerror(-rc));
			goto out;
		}
		if (res)
			res->gen = gi.gen;
	}

	/* 3. Programs over the pinned maps; libxdp loads and attaches XDP. */
	o = (struct dp_open_opts){ .load_progs = true, .no_load = true, .reuse = &maps };
	rc = dp_skel_open(&prog_skel, &o, err, errlen);
	if (rc)
		goto out;
	xp = xdp_program__from_bpf_obj(prog_skel->obj, "xdp");
	rc = libxdp_get_error(xp);
	if (rc) {
		xp = NULL;
		snprintf(err, errlen, "preparing the XDP program: %s", strerror(-rc));
		goto out;
	}
	xmode = mode == ATTACH_NATIVE ? XDP_MODE_NATIVE :
		mode == ATTACH_SKB    ? XDP_MODE_SKB :
					XDP_MODE_NATIVE;
	rc = xdp_program__attach(xp, ifindex, xmode, 0);
	if (rc && mode == ATTACH_AUTO) {
		xmode = XDP_MODE_SKB;
		rc = xdp_program__attach(xp, ifindex, xmode, 0);
	}
	if (rc) {
		snprintf(err, errlen, "attaching XDP to %s: %s%s", ifname, strerror(-rc),
			 moat_verbose ? "" : " (run with -v for details)");
		goto out;
	}
	xdp_attached = true;
	if (res)
		res->native = xmode == XDP_MODE_NATIVE;

	hook.ifindex = ifindex;
	rc = bpf_tc_hook_create(&hook);
	if (rc && rc != -EEXIST) {
		snprintf(err, errlen, "creating the clsact qdisc on %s: %s", ifname,
			 strerror(-rc));
		goto out;
	}
	tcopts.prog_fd = bpf_program__fd(prog_skel->progs.moat_tc_egress);
	tcopts.flags = BPF_TC_F_REPLACE;
	rc = bpf_tc_attach(&hook, &tcopts);
	if (rc) {
		snprintf(err, errlen, "attaching TC egress to %s: %s", ifname, strerror(-rc));
		goto out;
	}
	tc_attached = true;

	/* 4. Pin the programs. */
	snprintf(path, sizeof(path), "%s/%s", dir, MOAT_PIN_TC);
	if (bpf_obj_pin(bpf_program__fd(prog_skel->progs.moat_tc_egress), path)) {
		rc = -errno;
		snprintf(err, errlen, "pinning %s: %s", path, strerror(-rc));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, MOAT_PIN_XDP);
	if (bpf_obj_pin(xdp_program__fd(xp), path)) {
		rc = -errno;
		snprintf(err, errlen, "pinning %s: %s", path, strerror(-rc));
		goto out;
	}
	rc = 0;
out:
	if (rc) {
		if (tc_attached) {
			tcopts.prog_fd = 0;
			tcopts.flags = 0;
			tcopts.prog_id = 0;
			bpf_tc_detach(&hook, &tcopts);
		}
		if (xdp_attached)
			xdp_program__detach(xp, ifindex, xmode, 0);
		if (dir_made)
			unpin_all(dir, false);
	}
	xdp_program__close(xp);
	moat_maps_close(&maps);
	moat_maps_close(&reuse);
	if (prog_skel)
		moat_bpf__destroy(prog_skel);
	if (maps_skel)
		moat_bpf__destroy(maps_skel);
	pin_unlock(lock);
	return rc;
}

/* Detach our program from the interface's XDP dispatcher. */
static int detach_xdp(unsigned ifindex, int pinned_fd)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info), our_id;
	struct xdp_multiprog *mp;
	struct xdp_program *p;
	int rc = -ENOENT;

	if (bpf_obj_get_info_by_fd(pinned_fd, &info, &len))
		return -errno;
	our_id = info.id;
	mp = xdp_multiprog__get_from_ifindex(ifindex);
	if (libxdp_get_error(mp))
		return -ENOENT;
	if (xdp_multiprog__is_legacy(mp)) {
		p = xdp_multiprog__main_prog(mp);
		if (p && xdp_program__id(p) == our_id)
			rc = xdp_program__detach(p, ifindex, xdp_multiprog__attach_mode(mp), 0);
	} else {
		for (p = xdp_multiprog__next_prog(NULL, mp); p;
		     p = xdp_multiprog__next_prog(p, mp)) {
			if (xdp_program__id(p) == our_id) {
				rc = xdp_program__detach(p, ifindex,
							 xdp_multiprog__attach_mode(mp), 0);
				break;
			}
		}
	}
	xdp_multiprog__close(mp);
	return rc;
}

int detach_iface(const char *ifname, bool keep_state, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, tcopts, .handle = MOAT_TC_HANDLE, .priority = MOAT_TC_PRIO);
	char dir[512], path[700];
	unsigned ifindex;
	int rc, lock, fd;

	dp_setup_logging();
	rc = pin_dir(ifname, dir, sizeof(dir), err, errlen);
	if (rc)
		return rc;
	lock = pin_lock(ifname);
	if (lock < 0) {
		snprintf(err, errlen, "locking %s: %s", ifname, strerror(-lock));
		return lock;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, MOAT_PIN_XDP);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "moat is not attached to %s", ifname);
		pin_unlock(lock);
		return rc == -ENOENT ? -ENOENT : rc;
	}
	ifindex = if_nametoindex(ifname);
	if (ifindex) {
		/* Unpin only once the programs are really off: pins of a
		 * running filter are how moat finds it again. */
		rc = detach_xdp(ifindex, fd);
		if (rc && rc != -ENOENT) {
			snprintf(err, errlen, "detaching XDP from %s: %s; nothing was changed",
				 ifname, strerror(-rc));
			close(fd);
			pin_unlock(lock);
			return rc;
		}
		hook.ifindex = ifindex;
		rc = bpf_tc_detach(&hook, &tcopts);
		if (rc && rc != -ENOENT && rc != -EINVAL) {
			snprintf(err, errlen, "detaching TC egress from %s: %s", ifname,
				 strerror(-rc));
			close(fd);
			pin_unlock(lock);
			return rc;
		}
	}
	close(fd);
	rc = unpin_all(dir, keep_state);
	if (rc && !keep_state) {
		snprintf(err, errlen, "removing %s: %s", dir, strerror(-rc));
	} else {
		rc = 0;
	}
	pin_unlock(lock);
	return rc;
}
