/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pin.h - where an interface's maps and programs are pinned, the lock that
 * serialises moat commands on one interface, and the pinned maps opened by
 * name.
 */
#ifndef MOAT_PIN_H
#define MOAT_PIN_H

#include <stdbool.h>
#include <stddef.h>

/* File descriptors of the maps every verb works on (-1 when not open). */
struct moat_maps {
	int active_gen;
	int gen_config;
	int gen_lpm4, gen_lpm6, gen_l4, gen_dir4, gen_addr_hash, gen_vecs, gen_words,
	    gen_words_more, gen_rules, gen_dir24, gen_addr_filter, gen_shadow;
	int rule_stats;
	int counters;
	int conntrack;
	int meta;
	int ct_pending;
};

/* The names the maps are pinned under, in struct moat_maps order. */
extern const char *const moat_map_names[];
#define MOAT_NMAPS 19

void moat_maps_init(struct moat_maps *m);
void moat_maps_close(struct moat_maps *m);
int *moat_maps_fd(struct moat_maps *m, size_t i);

/*
 * The bpffs root moat pins under: /sys/fs/bpf. Returns 0, or -ENOENT with
 * a message in @err when it is not a BPF filesystem.
 */
int pin_root(char *buf, size_t len, char *err, size_t errlen);
/* <root>/moat/IFACE */
int pin_dir(const char *ifname, char *buf, size_t len, char *err, size_t errlen);
bool pin_dir_exists(const char *ifname);

/* Open every pinned map of @ifname. Returns 0 or -errno (-ENOENT: not attached). */
int pin_open_maps(const char *ifname, struct moat_maps *m, char *err, size_t errlen);

/*
 * Whether this process may load and attach BPF programs: root, or the
 * capabilities CAP_BPF (or CAP_SYS_ADMIN) and CAP_NET_ADMIN. Returns 0, or
 * -EPERM with a message naming what is missing.
 */
int pin_require_privileges(char *err, size_t errlen);

/*
 * Take the per-interface lock (flock on /run/moat/IFACE.lock), waiting
 * for another moat command to finish. Returns the lock fd or -errno.
 */
int pin_lock(const char *ifname);
void pin_unlock(int fd);

#endif
