// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_gen.bpf.c - the packet generator of moat's veth benchmark.
 *
 * tests/bench/pktgen.c runs this program with BPF_PROG_TEST_RUN and
 * BPF_F_TEST_XDP_LIVE_FRAMES on one end of a veth pair: every frame it
 * returns XDP_TX for is transmitted out of that end, and the other end
 * receives it as a real packet (through its XDP program, or the stack).
 * The frame is sent as given; `gen_frames` counts what was handed to the
 * device, per CPU, so the generator can report its own rate.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} gen_frames SEC(".maps");

SEC("xdp")
int bench_xdp_gen(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&gen_frames, &zero);

	if (n)
		*n += 1;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
