// SPDX-License-Identifier: GPL-2.0
/*
 * pin.c - pin paths, the per-interface lock, and pinned maps by name.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <bpf/bpf.h>

#include "pin.h"

const char *const moat_map_names[MOAT_NMAPS] = {
	"active_gen", "gen_config", "gen_lpm4",	  "gen_lpm6", "gen_l4",	   "gen_dir4",
	"gen_addr_hash", "gen_vecs",   "gen_words",  "gen_words_more", "gen_rules",  "gen_dir24", "gen_addr_filter", "gen_shadow",
	"rule_stats", "counters",   "conntrack",  "meta",	    "ct_pending",
};
_Static_assert(sizeof(struct moat_maps) == MOAT_NMAPS * sizeof(int), "moat_maps order");

void moat_maps_init(struct moat_maps *m)
{
	size_t i;

	for (i = 0; i < MOAT_NMAPS; i++)
		*moat_maps_fd(m, i) = -1;
}

int *moat_maps_fd(struct moat_maps *m, size_t i)
{
	return &((int *)m)[i];
}

void moat_maps_close(struct moat_maps *m)
{
	size_t i;

	for (i = 0; i < MOAT_NMAPS; i++) {
		int *fd = moat_maps_fd(m, i);

		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
}

static bool is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

int pin_root(char *buf, size_t len, char *err, size_t errlen)
{
	if (is_bpffs("/sys/fs/bpf")) {
		snprintf(buf, len, "/sys/fs/bpf");
		return 0;
	}
	snprintf(err, errlen,
		 "no BPF filesystem on /sys/fs/bpf (mount it: mount -t bpf bpf /sys/fs/bpf; "
		 "inside `ip netns exec`, which mounts a fresh /sys, run moat with "
		 "`nsenter --net=/run/netns/NAME moat ...` instead)");
	return -ENOENT;
}

int pin_dir(const char *ifname, char *buf, size_t len, char *err, size_t errlen)
{
	char root[256];
	int rc = pin_root(root, sizeof(root), err, errlen);

	if (rc)
		return rc;
	if (strchr(ifname, '/') || !strcmp(ifname, ".") || !strcmp(ifname, "..")) {
		snprintf(err, errlen, "'%s' is not an interface name", ifname);
		return -EINVAL;
	}
	snprintf(buf, len, "%s/moat/%s", root, ifname);
	return 0;
}

bool pin_dir_exists(const char *ifname)
{
	char dir[512], err[256];
	struct stat st;

	return pin_dir(ifname, dir, sizeof(dir), err, sizeof(err)) == 0 && stat(dir, &st) == 0;
}

int pin_open_maps(const char *ifname, struct moat_maps *m, char *err, size_t errlen)
{
	char dir[512], path[600];
	size_t i;
	int rc;

	moat_maps_init(m);
	rc = pin_dir(ifname, dir, sizeof(dir), err, errlen);
	if (rc)
		return rc;
	for (i = 0; i < MOAT_NMAPS; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/%s", dir, moat_map_names[i]);
		fd = bpf_obj_get(path);
		if (fd < 0) {
			rc = -errno;
			if (rc == -ENOENT && i > 0)
				/* some maps are there: pinned by a moat with others */
				snprintf(err, errlen,
					 "%s holds the maps of another moat version (no %s): "
					 "detach and attach again",
					 dir, moat_map_names[i]);
			else if (rc == -ENOENT)
				snprintf(err, errlen, "moat is not attached to %s (no %s)", ifname,
					 path);
			else
				snprintf(err, errlen, "cannot open %s: %s", path, strerror(-rc));
			moat_maps_close(m);
			return rc;
		}
		*moat_maps_fd(m, i) = fd;
	}
	return 0;
}

#ifndef CAP_BPF
#define CAP_BPF 39
#endif

int pin_require_privileges(char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { { 0 } };
	bool bpf, net;

	if (syscall(SYS_capget, &hdr, data)) {
		snprintf(err, errlen, "cannot read this process's capabilities: %s",
			 strerror(errno));
		return -EPERM;
	}
#define HAS_CAP(c) (data[(c) / 32].effective & (1u << ((c) % 32)))
	bpf = HAS_CAP(CAP_BPF) || HAS_CAP(CAP_SYS_ADMIN);
	net = HAS_CAP(CAP_NET_ADMIN);
#undef HAS_CAP
	if (bpf && net)
		return 0;
	snprintf(err, errlen,
		 "moat needs root, or the capabilities CAP_BPF and CAP_NET_ADMIN; this process "
		 "lacks %s%s%s",
		 bpf ? "" : "CAP_BPF", !bpf && !net ? " and " : "", net ? "" : "CAP_NET_ADMIN");
	return -EPERM;
}

int pin_lock(const char *ifname)
{
	char path[300];
	int fd;

	mkdir("/run/moat", 0700);
	snprintf(path, sizeof(path), "/run/moat/%s.lock", ifname);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

void pin_unlock(int fd)
{
	if (fd >= 0) {
		flock(fd, LOCK_UN);
		close(fd);
	}
}
