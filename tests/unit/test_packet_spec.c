// SPDX-License-Identifier: GPL-2.0
/*
 * test_packet_spec.c - unit tests of the PACKET spec of `moat trace`
 * (user/packet_spec.c): parsing from one or many argv words, the defaults,
 * every error message, and packet_format → packet_parse round trips.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "packet.h"

/* Parse one string as a single argv word. */
static int parse1(const char *spec, struct packet *p, char *err, size_t errlen)
{
	char *copy = strdup(spec);
	char *argv[1] = { copy };
	int ret;

	assert_non_null(copy);
	ret = packet_parse(1, argv, p, err, errlen);
	free(copy);
	return ret;
}

/* Parse a string split on spaces into several argv words, as a shell would. */
static int parse_words(const char *spec, struct packet *p, char *err, size_t errlen)
{
	char *copy = strdup(spec), *argv[32], *save = NULL, *w;
	int argc = 0, ret;

	assert_non_null(copy);
	for (w = strtok_r(copy, " ", &save); w && argc < 32; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	ret = packet_parse(argc, argv, p, err, errlen);
	free(copy);
	return ret;
}

static void assert_addr(int family, const uint8_t *addr, const char *text)
{
	uint8_t want[16] = { 0 };

	assert_int_equal(inet_pton(family == 4 ? AF_INET : AF_INET6, text, want), 1);
	assert_memory_equal(addr, want, family == 4 ? 4 : 16);
}

static void test_contract_example(void **state)
{
	struct packet p, q;
	char err[256];

	assert_int_equal(
		parse1("tcp 198.18.2.9:40000 > 198.18.1.5:5000 flags S", &p, err, sizeof(err)), 0);
	assert_int_equal(p.family, 4);
	assert_int_equal(p.proto, 6);
	assert_addr(4, p.src, "198.18.2.9");
	assert_addr(4, p.dst, "198.18.1.5");
	assert_int_equal(p.sport, 40000);
	assert_int_equal(p.dport, 5000);
	assert_int_equal(p.tcp_flags, PKT_TCP_SYN);
	assert_false(p.frag);

	/* The same as several words, with `to`, and with '>' glued on. */
	assert_int_equal(parse_words("tcp 198.18.2.9:40000 to 198.18.1.5:5000 flags S", &q, err,
				     sizeof(err)),
			 0);
	assert_memory_equal(&p, &q, sizeof(p));
	assert_int_equal(parse_words("tcp 198.18.2.9:40000>198.18.1.5:5000", &q, err, sizeof(err)),
			 0);
	assert_memory_equal(&p, &q, sizeof(p));
	assert_int_equal(parse1("  tcp\t198.18.2.9:40000 >198.18.1.5:5000  flags   S ", &q, err,
				sizeof(err)),
			 0);
	assert_memory_equal(&p, &q, sizeof(p));
}

static void test_ipv6(void **state)
{
	struct packet p;
	char err[256];

	assert_int_equal(
		parse_words("udp [2001:db8::1]:443 > [2001:db8::2]:53", &p, err, sizeof(err)), 0);
	assert_int_equal(p.family, 6);
	assert_int_equal(p.proto, 17);
	assert_addr(6, p.src, "2001:db8::1");
	assert_addr(6, p.dst, "2001:db8::2");
	assert_int_equal(p.sport, 443);
	assert_int_equal(p.dport, 53);
	assert_int_equal(p.tcp_flags, 0);

	/* Without a port, brackets are optional. */
	assert_int_equal(parse1("icmpv6 fe80::1 > [ff02::1]", &p, err, sizeof(err)), 0);
	assert_int_equal(p.family, 6);
	assert_int_equal(p.proto, 58);
	assert_addr(6, p.src, "fe80::1");
	assert_addr(6, p.dst, "ff02::1");
	assert_int_equal(p.icmp_type, 128);
	assert_int_equal(p.icmp_code, 0);

	assert_int_equal(parse1("tcp ::1 > ::ffff:10.0.0.1", &p, err, sizeof(err)), 0);
	assert_addr(6, p.dst, "::ffff:10.0.0.1");
	assert_int_equal(p.sport, 0);
	assert_int_equal(p.dport, 0);
}

static void test_defaults_and_options(void **state)
{
	struct packet p;
	char err[256];

	assert_int_equal(parse1("tcp 10.0.0.1 > 10.0.0.2", &p, err, sizeof(err)), 0);
	assert_int_equal(p.tcp_flags, PKT_TCP_SYN);
	assert_int_equal(p.sport, 0);
	assert_int_equal(p.dport, 0);

	assert_int_equal(parse1("tcp 10.0.0.1:1 > 10.0.0.2:2 flags SAFRPU", &p, err, sizeof(err)),
			 0);
	assert_int_equal(p.tcp_flags, PKT_TCP_SYN | PKT_TCP_ACK | PKT_TCP_FIN | PKT_TCP_RST |
					      PKT_TCP_PSH | PKT_TCP_URG);
	assert_int_equal(parse1("tcp 10.0.0.1:1 > 10.0.0.2:2 flags ar", &p, err, sizeof(err)), 0);
	assert_int_equal(p.tcp_flags, PKT_TCP_ACK | PKT_TCP_RST);
	assert_int_equal(parse1("tcp 10.0.0.1:1 > 10.0.0.2:2 flags none", &p, err, sizeof(err)), 0);
	assert_int_equal(p.tcp_flags, 0);

	assert_int_equal(parse1("icmp 10.0.0.1 > 10.0.0.2", &p, err, sizeof(err)), 0);
	assert_int_equal(p.proto, 1);
	assert_int_equal(p.icmp_type, 8);
	assert_int_equal(p.icmp_code, 0);
	assert_int_equal(parse1("icmp 10.0.0.1 > 10.0.0.2 icmp 3/4", &p, err, sizeof(err)), 0);
	assert_int_equal(p.icmp_type, 3);
	assert_int_equal(p.icmp_code, 4);
	assert_int_equal(parse1("icmp 10.0.0.1 > 10.0.0.2 icmp 0", &p, err, sizeof(err)), 0);
	assert_int_equal(p.icmp_type, 0);
	assert_int_equal(p.icmp_code, 0);

	assert_int_equal(parse1("47 10.0.0.1 > 10.0.0.2", &p, err, sizeof(err)), 0);
	assert_int_equal(p.proto, 47);
	assert_int_equal(parse1("6 10.0.0.1:5 > 10.0.0.2:6", &p, err, sizeof(err)), 0);
	assert_int_equal(p.proto, 6);
	assert_int_equal(p.tcp_flags, PKT_TCP_SYN);
	assert_int_equal(p.dport, 6);

	/* A non-first fragment: no L4 header, so nothing from it. */
	assert_int_equal(parse1("tcp 10.0.0.1 > 10.0.0.2 frag", &p, err, sizeof(err)), 0);
	assert_true(p.frag);
	assert_int_equal(p.tcp_flags, 0);
	assert_int_equal(parse1("udp 10.0.0.1 to 10.0.0.2:65535", &p, err, sizeof(err)), 0);
	assert_int_equal(p.dport, 65535);
	assert_false(p.frag);
}

struct bad_case {
	const char *spec;
	const char *err;
};

static const struct bad_case bad_cases[] = {
	{ "", "expected a packet: PROTO SRC[:PORT] > DST[:PORT] [flags FLAGS] [icmp T/C] [frag]" },
	{ "sctpx 1.2.3.4 > 5.6.7.8",
	  "unknown protocol 'sctpx': expected tcp, udp, icmp, icmpv6 or a number 0-255" },
	{ "256 1.2.3.4 > 5.6.7.8",
	  "unknown protocol '256': expected tcp, udp, icmp, icmpv6 or a number 0-255" },
	{ "tcp", "expected the source address (ADDR or ADDR:PORT, [IPV6]:PORT), found nothing" },
	{ "tcp 1.2.3.4:80", "expected '>' or 'to' after '1.2.3.4:80', found nothing" },
	{ "tcp 1.2.3.4:80 -> 5.6.7.8:90", "expected '>' or 'to' after '1.2.3.4:80', found '-'" },
	{ "tcp 1.2.3.4:80 >",
	  "expected the destination address (ADDR or ADDR:PORT, [IPV6]:PORT), found nothing" },
	{ "tcp host.example:80 > 5.6.7.8",
	  "source 'host.example:80' is not an address: expected ADDR, ADDR:PORT, or [IPV6]:PORT for IPv6 with a port" },
	{ "tcp 1.2.3.4:80 > 5.6.7.8:http",
	  "destination '5.6.7.8:http': expected a port 0-65535 after ':'" },
	{ "tcp 1.2.3.4:65536 > 5.6.7.8",
	  "source '1.2.3.4:65536': expected a port 0-65535 after ':'" },
	{ "tcp 1.2.3.4: > 5.6.7.8", "source '1.2.3.4:': expected a port 0-65535 after ':'" },
	{ "tcp [2001:db8::1:443 > ::1",
	  "missing ']' in source '[2001:db8::1:443': expected [IPV6] or [IPV6]:PORT" },
	{ "tcp [10.0.0.1]:443 > ::1",
	  "source '[10.0.0.1]:443': '10.0.0.1' is not an IPv6 address" },
	{ "tcp [::1]443 > ::1", "source '[::1]443': expected ':PORT' after ']'" },
	{ "tcp 1.2.3.4 > ::1",
	  "source '1.2.3.4' is IPv4 but destination '::1' is IPv6: a packet has one family" },
	{ "tcp 1.2.3.4 > 5.6.7.8 flags SX",
	  "flags 'SX': 'X' is not a TCP flag; expected letters of SAFRPU (S SYN, A ACK, F FIN, R RST, P PSH, U URG)" },
	{ "tcp 1.2.3.4 > 5.6.7.8 flags",
	  "expected TCP flags (letters of SAFRPU, or 'none') after 'flags', found nothing" },
	{ "udp 1.2.3.4 > 5.6.7.8 flags S", "'flags' is only for tcp packets" },
	{ "tcp 1.2.3.4 > 5.6.7.8 icmp 8/0", "'icmp T/C' is only for icmp or icmpv6 packets" },
	{ "icmp 1.2.3.4 > 5.6.7.8 icmp 8/256",
	  "icmp '8/256': expected TYPE or TYPE/CODE, each 0-255" },
	{ "icmp 1.2.3.4 > 5.6.7.8 icmp echo",
	  "icmp 'echo': expected TYPE or TYPE/CODE, each 0-255" },
	{ "icmp 1.2.3.4 > 5.6.7.8 icmp",
	  "expected TYPE or TYPE/CODE (0-255) after 'icmp', found nothing" },
	{ "icmp 1.2.3.4:1 > 5.6.7.8", "ports are only for tcp or udp packets; leave out ':PORT'" },
	{ "tcp 1.2.3.4:1 > 5.6.7.8 frag",
	  "'frag' is a non-first fragment, which carries no ports, flags or ICMP type; leave them out" },
	{ "tcp 1.2.3.4 > 5.6.7.8 frag flags A",
	  "'frag' is a non-first fragment, which carries no ports, flags or ICMP type; leave them out" },
	{ "tcp 1.2.3.4 > 5.6.7.8 frag frag", "'frag' given twice" },
	{ "tcp 1.2.3.4 > 5.6.7.8 flags S flags A", "'flags' given twice" },
	{ "tcp 1.2.3.4 > 5.6.7.8 syn", "unexpected 'syn': expected flags FLAGS, icmp T/C or frag" },
	{ "tcp 1.2.3.4 > 5.6.7.8 > 9.9.9.9",
	  "unexpected '>': expected flags FLAGS, icmp T/C or frag" },
	{ "tcp 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32",
	  "too many words: expected PROTO SRC[:PORT] > DST[:PORT] [flags FLAGS] [icmp T/C] [frag]" },
};

static void test_bad_packets(void **state)
{
	struct packet p;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		int ret = parse1(bad_cases[i].spec, &p, err, sizeof(err));

		if (ret != -EINVAL || strcmp(err, bad_cases[i].err))
			print_message("case %zu: %s\n", i, bad_cases[i].spec);
		assert_int_equal(ret, -EINVAL);
		assert_string_equal(err, bad_cases[i].err);
	}

	/* No words at all, and a NULL error buffer, are handled. */
	assert_int_equal(packet_parse(0, NULL, &p, err, sizeof(err)), -EINVAL);
	assert_int_equal(parse1("tcp", &p, NULL, 0), -EINVAL);
	/* A short error buffer is cut, not overrun (ASan watches). */
	assert_int_equal(parse1("tcp 1.2.3.4 > 5.6.7.8 bogus", &p, err, 8), -EINVAL);
	assert_string_equal(err, "unexpec");
}

/* packet_format writes the spec back; parsing it gives the same packet. */
static void test_round_trip(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "tcp 198.18.2.9:40000 > 198.18.1.5:5000 flags S",
		  "tcp 198.18.2.9:40000 > 198.18.1.5:5000 flags S" },
		{ "tcp 198.18.2.9:40000 to 198.18.1.5:5000 flags ua",
		  "tcp 198.18.2.9:40000 > 198.18.1.5:5000 flags AU" },
		{ "tcp 10.0.0.1 > 10.0.0.2", "tcp 10.0.0.1:0 > 10.0.0.2:0 flags S" },
		{ "tcp 10.0.0.1:1 > 10.0.0.2:2 flags none",
		  "tcp 10.0.0.1:1 > 10.0.0.2:2 flags none" },
		{ "udp [2001:db8::1]:443 > [2001:db8::2]:53",
		  "udp [2001:db8::1]:443 > [2001:db8::2]:53" },
		{ "tcp 2001:db8::1 > 2001:db8::2",
		  "tcp [2001:db8::1]:0 > [2001:db8::2]:0 flags S" },
		{ "icmp 10.0.0.1 > 10.0.0.2", "icmp 10.0.0.1 > 10.0.0.2 icmp 8/0" },
		{ "icmpv6 ::1 > ::2 icmp 135", "icmpv6 ::1 > ::2 icmp 135/0" },
		{ "1 ::1 > ::2", "icmp ::1 > ::2 icmp 8/0" },
		{ "47 10.0.0.1 > 10.0.0.2", "47 10.0.0.1 > 10.0.0.2" },
		{ "udp 10.0.0.1 > 10.0.0.2 frag", "udp 10.0.0.1 > 10.0.0.2 frag" },
		{ "icmpv6 fe80::1 > ff02::1 frag", "icmpv6 fe80::1 > ff02::1 frag" },
	};
	struct packet p, q;
	char err[256], buf[128];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse1(cases[i].in, &p, err, sizeof(err)), 0);
		assert_int_equal(packet_format(&p, buf, sizeof(buf)), 0);
		assert_string_equal(buf, cases[i].out);
		assert_int_equal(parse1(buf, &q, err, sizeof(err)), 0);
		assert_memory_equal(&p, &q, sizeof(p));
		/* As many words, too. */
		assert_int_equal(parse_words(buf, &q, err, sizeof(err)), 0);
		assert_memory_equal(&p, &q, sizeof(p));
		assert_int_equal(packet_format(&p, buf, strlen(cases[i].out)), -ENOSPC);
	}

	memset(&p, 0, sizeof(p));
	assert_int_equal(packet_format(&p, buf, sizeof(buf)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contract_example),     cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_defaults_and_options), cmocka_unit_test(test_bad_packets),
		cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
