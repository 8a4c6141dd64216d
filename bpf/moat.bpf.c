// SPDX-License-Identifier: GPL-2.0
/*
 * moat.bpf.c - moat's two entry points, in one object so they share every
 * map (rule generations, counters, connection tracking):
 *
 *   moat_xdp_ingress - every frame received on the interface (NACL in, then
 *                      SG in); loaded through libxdp's dispatcher, so it
 *                      coexists with other XDP programs.
 *   moat_tc_egress   - every frame sent, on the clsact egress hook (SG out,
 *                      then NACL out).
 *
 * All the logic is in lib/judge.h and the headers it includes.
 */
#include <linux/pkt_cls.h>
#include "lib/judge.h"

/* Headers moat reads must be in the linear part of the skb. */
#define MOAT_PULL_LEN 256

SEC("xdp")
int moat_xdp_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	return moat_judge(data, end, MOAT_DIR_IN, end - data) == MOAT_PASS ? XDP_PASS : XDP_DROP;
}

SEC("tc")
int moat_tc_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	if (data + MOAT_PULL_LEN > end && skb->len > (__u32)(end - data)) {
		bpf_skb_pull_data(skb, skb->len < MOAT_PULL_LEN ? skb->len : MOAT_PULL_LEN);
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
	}
	return moat_judge(data, end, MOAT_DIR_OUT, skb->len) == MOAT_PASS ? TC_ACT_OK :
									    TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
