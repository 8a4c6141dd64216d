// SPDX-License-Identifier: GPL-2.0
/*
 * pktgen.c - the packet generator and receive-rate meter of moat's veth
 * benchmark (scripts/bench.sh).
 *
 * Generator: tests/bench/xdp_gen.bpf.c run with BPF_PROG_TEST_RUN and
 * BPF_F_TEST_XDP_LIVE_FRAMES on IFACE (one end of a veth pair, in this
 * process's network namespace): the program returns XDP_TX, so every frame
 * leaves IFACE and arrives at the peer as a received packet. One call
 * blocks until its `repeat` frames are out, so @threads threads (one per
 * CPU, pinned) each loop over calls whose repeat adapts to last about
 * 50 ms; a window's end is at most one call late.
 *
 * Meter: the peer's rx_packets (IFLA_STATS64 over rtnetlink, read in the
 * peer's namespace through a socket opened there), sampled at the start and
 * end of each window; the rate of a window is the difference over the
 * window's measured length. veth counts a frame in rx_packets when its NAPI
 * poll takes it off the ring, before XDP or the stack judge it, so the
 * figure is the rate at which the receiving side kept up (frames it could
 * not take are dropped on the ring and counted as the sender's tx drops).
 * Also per window: the share of all CPU time spent in softirq (from
 * /proc/stat), and the CPU time the generator threads and ksoftirqd used
 * per received packet (generator + receiving side; see work_ns()): the
 * figure that stays meaningful when other jobs share the machine.
 *
 * Output: one line per window, then
 *   result rx_mpps_median=M gen_mpps_median=G softirq_pct_median=S
 *          cpu_ns_per_pkt_median=C windows=N threads=T
 *
 * With --count N it only sends N frames once (to open a flow) and exits.
 *
 * Addresses come from the PACKET spec (as `moat trace` reads it); bench.sh
 * uses 198.18.0.0/15 only.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "packet.h"

#define CALL_TARGET_NS 50000000.0 /* one test-run call: about 50 ms */
#define MAX_THREADS 64

struct opts {
	const char *ifname, *obj, *spec, *rx_netns, *rx_if;
	unsigned char dst_mac[6], src_mac[6];
	bool have_dst, have_src, pin;
	int threads, windows;
	double warmup_s, window_s;
	unsigned long count;
};

static struct opts o = {
	.obj = "build/bench/xdp_gen.bpf.o",
	.threads = 0,
	.windows = 3,
	.warmup_s = 0.5,
	.window_s = 1.0,
};

static int prog_fd, ifindex;
static clockid_t thread_clock[MAX_THREADS];
static int nthreads;
static uint8_t frame[256];
static size_t frame_len;
static atomic_bool stop;
static atomic_int failed;

static void die(const char *msg)
{
	fprintf(stderr, "pktgen: %s: %s\n", msg, strerror(errno));
	exit(2);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int send_frames(unsigned long repeat)
{
	struct xdp_md ctx = { .data_end = (__u32)frame_len, .ingress_ifindex = ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = frame, .data_size_in = frame_len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = repeat,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);

	return bpf_prog_test_run_opts(prog_fd, &t) ? -errno : 0;
}

static void *gen_thread(void *arg)
{
	long cpu = (long)arg;
	cpu_set_t set;
	double r = 65536;

	if (o.pin) {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	while (!atomic_load(&stop)) {
		double t0 = now_s(), dt;
		int rc = send_frames((unsigned long)r);

		if (rc) {
			fprintf(stderr, "pktgen: BPF_PROG_TEST_RUN (live frames): %s\n",
				strerror(-rc));
			atomic_store(&failed, 1);
			atomic_store(&stop, true);
			break;
		}
		dt = (now_s() - t0) * 1e9;
		if (getenv("PKTGEN_DEBUG"))
			fprintf(stderr, "cpu %ld repeat %.0f took %.1f ms\n", cpu, r, dt / 1e6);
		if (dt > 0)
			r = r * CALL_TARGET_NS / dt;
		if (r < 1024)
			r = 1024;
		if (r > 1 << 24)
			r = 1 << 24;
	}
	return NULL;
}

/* ---- rx counter over rtnetlink, in the receiver's namespace ---- */

static int nl_fd = -1, rx_ifindex;

static void nl_open(void)
{
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int peer = open(o.rx_netns, O_RDONLY | O_CLOEXEC);

	if (self < 0 || peer < 0)
		die("opening the network namespaces");
	if (setns(peer, CLONE_NEWNET))
		die("entering the receiver's namespace");
	nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	rx_ifindex = if_nametoindex(o.rx_if);
	if (setns(self, CLONE_NEWNET))
		die("returning to the generator's namespace");
	if (nl_fd < 0 || !rx_ifindex)
		die("receiver interface");
	close(self);
	close(peer);
}

static int rx_packets(unsigned long long *out)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req = { 0 };
	char buf[16384];
	static unsigned seq;
	ssize_t n;
	struct nlmsghdr *nh;

	req.nh.nlmsg_len = sizeof(req);
	req.nh.nlmsg_type = RTM_GETLINK;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.nh.nlmsg_seq = ++seq;
	req.ifi.ifi_family = AF_UNSPEC;
	req.ifi.ifi_index = rx_ifindex;
	if (send(nl_fd, &req, sizeof(req), 0) < 0)
		return -errno;
	n = recv(nl_fd, buf, sizeof(buf), 0);
	if (n < 0)
		return -errno;
	for (nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n); nh = NLMSG_NEXT(nh, n)) {
		struct ifinfomsg *ifi;
		struct rtattr *a;
		int len;

		if (nh->nlmsg_type != RTM_NEWLINK)
			continue;
		ifi = NLMSG_DATA(nh);
		len = nh->nlmsg_len - NLMSG_LENGTH(sizeof(*ifi));
		for (a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
			if (a->rta_type == IFLA_STATS64) {
				struct rtnl_link_stats64 st;

				memcpy(&st, RTA_DATA(a), sizeof(st));
				*out = st.rx_packets;
				return 0;
			}
		}
	}
	return -ENOENT;
}

/* ---- generator's own count and CPU time ---- */

static int gen_map_fd;

static unsigned long long gen_count(void)
{
	int ncpu = libbpf_num_possible_cpus(), i;
	unsigned long long v[512], sum = 0;
	__u32 zero = 0;

	if (ncpu > 512 || bpf_map_lookup_elem(gen_map_fd, &zero, v))
		return 0;
	for (i = 0; i < ncpu; i++)
		sum += v[i];
	return sum;
}

/*
 * CPU time, in ns, spent by the generator threads (which includes the
 * receiving side's softirq work done on their CPU while they ran: the
 * veth NAPI poll runs when the sending thread re-enables bottom halves)
 * plus every ksoftirqd thread (receive work deferred there). On a shared
 * machine this, per packet, is what one packet costs whatever share of the
 * CPUs the benchmark got.
 */
static unsigned long long ksoftirqd_ns(void)
{
	static int pids[1024], npids = -1;
	unsigned long long sum = 0;
	char path[64], buf[128];
	int i;

	if (npids < 0) {
		FILE *p = popen("pgrep '^ksoftirqd/'", "r");

		npids = 0;
		while (p && npids < 1024 && fgets(buf, sizeof(buf), p))
			pids[npids++] = atoi(buf);
		if (p)
			pclose(p);
	}
	for (i = 0; i < npids; i++) {
		FILE *f;
		unsigned long long ns;

		snprintf(path, sizeof(path), "/proc/%d/schedstat", pids[i]);
		f = fopen(path, "r");
		if (f && fscanf(f, "%llu", &ns) == 1)
			sum += ns;
		if (f)
			fclose(f);
	}
	return sum;
}

static unsigned long long work_ns(void)
{
	unsigned long long sum = ksoftirqd_ns();
	int i;

	for (i = 0; i < nthreads; i++) {
		struct timespec ts;

		if (!clock_gettime(thread_clock[i], &ts))
			sum += ts.tv_sec * 1000000000ull + ts.tv_nsec;
	}
	return sum;
}

struct cpu_times {
	unsigned long long total, softirq;
};

static void cpu_times(struct cpu_times *c)
{
	FILE *f = fopen("/proc/stat", "r");
	unsigned long long v[10] = { 0 };
	int i;

	memset(c, 0, sizeof(*c));
	if (!f)
		return;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
		   &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 7) {
		for (i = 0; i < 8; i++) /* guest time is already in user */
			c->total += v[i];
		c->softirq = v[6];
	}
	fclose(f);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void sleep_until(double t)
{
	while (!atomic_load(&stop)) {
		double d = t - now_s();
		struct timespec ts;

		if (d <= 0)
			return;
		if (d > 0.05)
			d = 0.05;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(d * 1e9);
		nanosleep(&ts, NULL);
	}
}

static int parse_mac(const char *s, unsigned char *m)
{
	return sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &m[0], &m[1], &m[2], &m[3], &m[4],
		      &m[5]) == 6 ? 0 : -1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: pktgen --ifname IF --packet SPEC [--dst-mac M] [--src-mac M]\n"
		"              [--obj xdp_gen.bpf.o] [--threads N] [--count N]\n"
		"              [--rx-netns /run/netns/NS --rx-if IF]\n"
		"              [--warmup S] [--window S] [--windows N]\n");
	exit(1);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "ifname", required_argument, 0, 'i' },  { "packet", required_argument, 0, 'p' },
		{ "dst-mac", required_argument, 0, 'd' }, { "src-mac", required_argument, 0, 's' },
		{ "obj", required_argument, 0, 'o' },	  { "threads", required_argument, 0, 't' },
		{ "count", required_argument, 0, 'c' },	  { "rx-netns", required_argument, 0, 'N' },
		{ "rx-if", required_argument, 0, 'R' },	  { "warmup", required_argument, 0, 'w' },
		{ "window", required_argument, 0, 'W' },  { "windows", required_argument, 0, 'n' },
		{ "pin", no_argument, 0, 'P' },
		{ 0 } };
	pthread_t th[MAX_THREADS];
	struct bpf_object *obj;
	struct bpf_program *prog;
	char err[256], *words[1];
	struct packet pkt;
	double rx[64], gen[64], sirq[64];
	double cpp[64];
	int c, i, len;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'i': o.ifname = optarg; break;
		case 'p': o.spec = optarg; break;
		case 'd': if (parse_mac(optarg, o.dst_mac)) usage(); o.have_dst = true; break;
		case 's': if (parse_mac(optarg, o.src_mac)) usage(); o.have_src = true; break;
		case 'o': o.obj = optarg; break;
		case 't': o.threads = atoi(optarg); break;
		case 'c': o.count = strtoul(optarg, NULL, 0); break;
		case 'N': o.rx_netns = optarg; break;
		case 'R': o.rx_if = optarg; break;
		case 'w': o.warmup_s = atof(optarg); break;
		case 'W': o.window_s = atof(optarg); break;
		case 'n': o.windows = atoi(optarg); break;
		case 'P': o.pin = true; break;
		default: usage();
		}
	}
	if (!o.ifname || !o.spec || o.windows < 1 || o.windows > 64 || o.window_s <= 0 ||
	    (!o.count && (!o.rx_netns || !o.rx_if)))
		usage();

	words[0] = (char *)o.spec;
	if (packet_parse(1, words, &pkt, err, sizeof(err))) {
		fprintf(stderr, "pktgen: packet: %s\n", err);
		return 1;
	}
	len = packet_build_frame(&pkt, frame, sizeof(frame));
	if (len < 0) {
		fprintf(stderr, "pktgen: frame too long\n");
		return 1;
	}
	frame_len = len;
	if (o.have_dst)
		memcpy(frame, o.dst_mac, 6);
	if (o.have_src)
		memcpy(frame + 6, o.src_mac, 6);

	ifindex = if_nametoindex(o.ifname);
	if (!ifindex)
		die(o.ifname);
	obj = bpf_object__open_file(o.obj, NULL);
	if (!obj || bpf_object__load(obj))
		die(o.obj);
	prog = bpf_object__find_program_by_name(obj, "bench_xdp_gen");
	if (!prog)
		die("bench_xdp_gen");
	prog_fd = bpf_program__fd(prog);
	gen_map_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "gen_frames"));

	if (o.count) {
		int rc = send_frames(o.count);

		if (rc) {
			errno = -rc;
			die("BPF_PROG_TEST_RUN (live frames)");
		}
		printf("sent=%lu\n", o.count);
		return 0;
	}

	nl_open();
	nthreads = o.threads > 0 ? o.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (nthreads > MAX_THREADS)
		nthreads = MAX_THREADS;
	for (i = 0; i < nthreads; i++)
		if (pthread_create(&th[i], NULL, gen_thread,
				   (void *)(long)(i % sysconf(_SC_NPROCESSORS_ONLN))) ||
		    pthread_getcpuclockid(th[i], &thread_clock[i]))
			die("pthread_create");

	{
		double t = now_s() + o.warmup_s;

		sleep_until(t);
		for (i = 0; i < o.windows && !atomic_load(&stop); i++) {
			unsigned long long r0, r1, g0, g1, w0, w1;
			struct cpu_times c0, c1;
			double t0, t1;

			if (rx_packets(&r0))
				die("reading rx_packets");
			g0 = gen_count();
			w0 = work_ns();
			cpu_times(&c0);
			t0 = now_s();
			sleep_until(t0 + o.window_s);
			if (rx_packets(&r1))
				die("reading rx_packets");
			t1 = now_s();
			g1 = gen_count();
			w1 = work_ns();
			cpu_times(&c1);
			rx[i] = (r1 - r0) / (t1 - t0);
			gen[i] = (g1 - g0) / (t1 - t0);
			sirq[i] = c1.total > c0.total ? 100.0 * (c1.softirq - c0.softirq) /
							      (c1.total - c0.total) :
							0;
			cpp[i] = r1 > r0 ? (double)(w1 - w0) / (double)(r1 - r0) : 0;
			printf("window=%d seconds=%.3f rx_pps=%.0f gen_pps=%.0f softirq_pct=%.1f "
			       "cpu_ns_per_pkt=%.1f cpu_share_pct=%.1f\n",
			       i + 1, t1 - t0, rx[i], gen[i], sirq[i], cpp[i],
			       100.0 * (w1 - w0) / ((t1 - t0) * 1e9 * sysconf(_SC_NPROCESSORS_ONLN)));
			fflush(stdout);
		}
	}
	atomic_store(&stop, true);
	for (i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	if (atomic_load(&failed))
		return 2;
	{
		int n = o.windows;

		qsort(rx, n, sizeof(double), cmp_double);
		qsort(gen, n, sizeof(double), cmp_double);
		qsort(sirq, n, sizeof(double), cmp_double);
		qsort(cpp, n, sizeof(double), cmp_double);
		printf("result rx_mpps_median=%.3f gen_mpps_median=%.3f softirq_pct_median=%.1f "
		       "cpu_ns_per_pkt_median=%.1f windows=%d threads=%d\n",
		       rx[n / 2] / 1e6, gen[n / 2] / 1e6, sirq[n / 2], cpp[n / 2], n, nthreads);
	}
	bpf_object__close(obj);
	return 0;
}
