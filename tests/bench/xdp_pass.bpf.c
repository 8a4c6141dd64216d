// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_pass.bpf.c - the reference programs of moat's benchmark.
 *
 *   bench_xdp_pass - returns XDP_PASS and touches nothing: the floor of
 *                    BPF_PROG_TEST_RUN that every datapath figure is a
 *                    ratio to (bench_datapath).
 *   bench_xdp_drop - returns XDP_DROP: the "limit" row of the veth packet
 *                    rate (scripts/bench.sh attaches it with xdp-loader).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int bench_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int bench_xdp_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
