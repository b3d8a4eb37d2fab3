/* Unit tests for the pure core (shim/core).  Prints TAP. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>

#include "core/core.h"

static int n_tests, n_failed;

#define CHECK(cond, ...)                                                 \
	do {                                                             \
		n_tests++;                                               \
		if (cond) {                                              \
			printf("ok %d - ", n_tests);                     \
		} else {                                                 \
			n_failed++;                                      \
			printf("not ok %d - ", n_tests);                 \
		}                                                        \
		printf(__VA_ARGS__);                                     \
		printf("\n");                                            \
		if (!(cond))                                             \
			printf("#   failed at %s:%d: %s\n", __FILE__,      \
			       __LINE__, #cond);                         \
	} while (0)

static void test_names(void)
{
	static const struct {
		const char *name;
		enum vsk_name_kind kind;
		uint32_t cid;
	} cases[] = {
		{ "vsock-3.local", VSK_NAME_CID, 3 },
		{ "VSOCK-3.LOCAL", VSK_NAME_CID, 3 },
		{ "vsock-3.local.", VSK_NAME_CID, 3 },
		{ "vsock-0.local", VSK_NAME_CID, 0 },
		{ "vsock-4294967294.local", VSK_NAME_CID, 4294967294u },
		{ "vsock-host.local", VSK_NAME_CID, 2 },
		{ "Vsock-Local.Local", VSK_NAME_CID, 1 },
		{ "vsock-hypervisor.local", VSK_NAME_CID, 0 },
		{ "vsock-any.local", VSK_NAME_CID, VSK_CID_ANY },
		{ "vsock-.local", VSK_NAME_MALFORMED, 0 },
		{ "vsock-3x.local", VSK_NAME_MALFORMED, 0 },
		{ "vsock-4294967295.local", VSK_NAME_MALFORMED, 0 },
		{ "vsock-4294967296.local", VSK_NAME_MALFORMED, 0 },
		{ "vsock-99999999999999999999.local", VSK_NAME_MALFORMED, 0 },
		{ "vsock--1.local", VSK_NAME_MALFORMED, 0 },
		{ "vsock-+1.local", VSK_NAME_MALFORMED, 0 },
		{ "vsock- 3.local", VSK_NAME_MALFORMED, 0 },
		{ "vsock-3 .local", VSK_NAME_MALFORMED, 0 },
		{ "vsock-3.sub.local", VSK_NAME_MALFORMED, 0 },
		{ "vsock-hostx.local", VSK_NAME_MALFORMED, 0 },
		{ "vsock-3.local..", VSK_NAME_NOT_OURS, 0 },
		{ "vsock-3.localhost", VSK_NAME_NOT_OURS, 0 },
		{ "xvsock-3.local", VSK_NAME_NOT_OURS, 0 },
		{ "vsock3.local", VSK_NAME_NOT_OURS, 0 },
		{ "localhost", VSK_NAME_NOT_OURS, 0 },
		{ "vsock-", VSK_NAME_NOT_OURS, 0 },
		{ "vsock-.local.", VSK_NAME_MALFORMED, 0 },
		{ "", VSK_NAME_NOT_OURS, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t cid = 12345;
		enum vsk_name_kind k = vsk_parse_name(cases[i].name, &cid);
		CHECK(k == cases[i].kind && (k != VSK_NAME_CID || cid == cases[i].cid),
		      "parse \"%s\" -> kind %d cid %u", cases[i].name, k, cid);
	}
	uint32_t cid;
	CHECK(vsk_parse_name(NULL, &cid) == VSK_NAME_NOT_OURS, "parse NULL is not ours");

	char buf[VSK_NAME_MAX];
	CHECK(vsk_format_name(42, buf, sizeof(buf)) > 0 && !strcmp(buf, "vsock-42.local"),
	      "format 42");
	CHECK(vsk_format_name(VSK_CID_ANY, buf, sizeof(buf)) > 0 &&
		      !strcmp(buf, "vsock-any.local"), "format ANY");
	CHECK(vsk_format_name(4294967294u, buf, sizeof(buf)) > 0, "format largest CID fits VSK_NAME_MAX");
	CHECK(vsk_format_name(3, buf, 5) == -1, "format into short buffer fails");
}

static const char *ntop4(struct in_addr a, char *buf)
{
	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

static void test_fake_addresses(void)
{
	struct vsk_fake_net net;
	char buf[INET6_ADDRSTRLEN];
	uint32_t cid;

	vsk_fake_net_default(&net);
	CHECK(!strcmp(ntop4(vsk_encode4(&net, 3), buf), "127.128.0.3"), "CID 3 -> 127.128.0.3 (got %s)", buf);
	CHECK(!strcmp(ntop4(vsk_encode4(&net, VSK_CID_ANY), buf), "127.255.255.255"), "ANY -> 127.255.255.255");
	CHECK(!strcmp(ntop4(vsk_encode4(&net, 0x7FFFFD), buf), "127.255.255.253"), "largest IPv4 CID");
	CHECK(vsk_cid_fits4(&net, 0x7FFFFD) && !vsk_cid_fits4(&net, 0x7FFFFE) &&
		      vsk_cid_fits4(&net, VSK_CID_ANY), "fits4 boundary");
	CHECK(!strcmp(ntop4(vsk_encode4(&net, 0x7FFFFE), buf), "127.255.255.254"), "too large -> unrepresentable marker");

	struct in6_addr a6 = vsk_encode6(&net, 3);
	inet_ntop(AF_INET6, &a6, buf, sizeof(buf));
	CHECK(!strcmp(buf, "100::7673:6f63:0:3"), "CID 3 -> %s", buf);
	a6 = vsk_encode6(&net, 4294967294u);
	inet_ntop(AF_INET6, &a6, buf, sizeof(buf));
	CHECK(!strcmp(buf, "100::7673:6f63:ffff:fffe"), "CID max -> %s", buf);

	/* Round trips over a spread of CIDs. */
	uint32_t samples[] = { 0, 1, 2, 3, 255, 256, 65535, 65536, 0x7FFFFD, 0x7FFFFE,
			       0x10000000, 4294967294u, VSK_CID_ANY };
	int bad = 0;
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		struct in_addr a = vsk_encode4(&net, samples[i]);
		struct in6_addr b = vsk_encode6(&net, samples[i]);
		if (vsk_cid_fits4(&net, samples[i]) &&
		    (vsk_decode_raw(&net, AF_INET, &a, &cid) != VSK_ADDR_OK || cid != samples[i]))
			bad++;
		if (vsk_decode_raw(&net, AF_INET6, &b, &cid) != VSK_ADDR_OK || cid != samples[i])
			bad++;
	}
	CHECK(bad == 0, "encode/decode round trips (%d bad)", bad);

	struct in_addr plain;
	inet_pton(AF_INET, "127.0.0.1", &plain);
	CHECK(vsk_decode_raw(&net, AF_INET, &plain, &cid) == VSK_ADDR_NOT_OURS, "127.0.0.1 is not ours");
	inet_pton(AF_INET, "127.127.255.255", &plain);
	CHECK(vsk_decode_raw(&net, AF_INET, &plain, &cid) == VSK_ADDR_NOT_OURS, "127.127.255.255 is not ours");
	inet_pton(AF_INET, "127.255.255.254", &plain);
	CHECK(vsk_decode_raw(&net, AF_INET, &plain, &cid) == VSK_ADDR_INVALID, "unrepresentable marker decodes invalid");

	struct in6_addr v6;
	inet_pton(AF_INET6, "::1", &v6);
	CHECK(vsk_decode_raw(&net, AF_INET6, &v6, &cid) == VSK_ADDR_NOT_OURS, "::1 is not ours");
	inet_pton(AF_INET6, "100::1", &v6);
	CHECK(vsk_decode_raw(&net, AF_INET6, &v6, &cid) == VSK_ADDR_NOT_OURS, "100::1 is not ours");
	inet_pton(AF_INET6, "::ffff:127.128.0.7", &v6);
	CHECK(vsk_decode_raw(&net, AF_INET6, &v6, &cid) == VSK_ADDR_OK && cid == 7, "v4-mapped fake decodes");

	/* sockaddr decoding, including families and short lengths. */
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(8080) };
	sin.sin_addr = vsk_encode4(&net, 5);
	struct vsk_target t;
	CHECK(vsk_decode_sockaddr(&net, (void *)&sin, sizeof(sin), &t) == VSK_ADDR_OK &&
		      t.cid == 5 && t.port == 8080 && t.family == VSK_APP_INET4, "sockaddr_in decodes");
	CHECK(vsk_decode_sockaddr(&net, (void *)&sin, sizeof(sin) - 1, &t) == VSK_ADDR_NOT_OURS,
	      "short sockaddr_in is not ours");
	CHECK(vsk_decode_sockaddr(&net, NULL, 0, &t) == VSK_ADDR_NOT_OURS, "NULL sockaddr is not ours");
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(22) };
	sin6.sin6_addr = v6;
	CHECK(vsk_decode_sockaddr(&net, (void *)&sin6, sizeof(sin6), &t) == VSK_ADDR_OK &&
		      t.family == VSK_APP_MAPPED && t.cid == 7 && t.port == 22, "mapped sockaddr_in6 decodes");

	struct sockaddr_storage ss;
	socklen_t l = vsk_encode_sockaddr(&net, VSK_APP_INET6, 9, 70000, &ss);
	CHECK(l == sizeof(struct sockaddr_in6) &&
		      vsk_decode_sockaddr(&net, (void *)&ss, l, &t) == VSK_ADDR_OK && t.cid == 9 &&
		      t.port == vsk_fold_port(70000) && t.family == VSK_APP_INET6,
	      "encode_sockaddr INET6 round trip with folded port");
	l = vsk_encode_sockaddr(&net, VSK_APP_MAPPED, 9, 80, &ss);
	CHECK(vsk_decode_sockaddr(&net, (void *)&ss, l, &t) == VSK_ADDR_OK && t.family == VSK_APP_MAPPED,
	      "encode_sockaddr MAPPED round trip");

	/* Custom ranges. */
	struct vsk_fake_net custom = net;
	CHECK(vsk_fake_net_set4(&custom, "127.200.0.0/16") == 0, "set4 127.200.0.0/16");
	CHECK(!strcmp(ntop4(vsk_encode4(&custom, 258), buf), "127.200.1.2"), "custom range encodes");
	CHECK(!vsk_cid_fits4(&custom, 65534) && vsk_cid_fits4(&custom, 65533), "custom /16 capacity");
	CHECK(vsk_fake_net_set4(&custom, "127.200.0.1/16") != 0, "set4 rejects host bits");
	CHECK(vsk_fake_net_set4(&custom, "127.0.0.0/7") != 0, "set4 rejects /7");
	CHECK(vsk_fake_net_set4(&custom, "127.0.0.0/25") != 0, "set4 rejects /25");
	CHECK(vsk_fake_net_set4(&custom, "127.0.0.0") != 0, "set4 rejects missing prefix");
	CHECK(vsk_fake_net_set4(&custom, "nonsense/9") != 0, "set4 rejects garbage");
	CHECK(vsk_fake_net_set6(&custom, "fd00:1::/64") == 0, "set6 fd00:1::/64");
	a6 = vsk_encode6(&custom, 3);
	inet_ntop(AF_INET6, &a6, buf, sizeof(buf));
	CHECK(!strcmp(buf, "fd00:1::3"), "custom v6 encodes (%s)", buf);
	inet_pton(AF_INET6, "fd00:1::1:0:3", &v6);
	CHECK(vsk_decode_raw(&custom, AF_INET6, &v6, &cid) == VSK_ADDR_INVALID, "stray bits in v6 range are invalid");
	CHECK(vsk_fake_net_set6(&custom, "::ffff:0:0/96") != 0, "set6 rejects v4-mapped prefix");
	CHECK(vsk_fake_net_set6(&custom, "fd00::1/64") != 0, "set6 rejects host bits");
	CHECK(vsk_fake_net_set6(&custom, "fd00::/97") != 0, "set6 rejects /97");
}

static void test_ports_and_errors(void)
{
	CHECK(vsk_fold_port(8080) == 8080, "port 8080 unchanged");
	CHECK(vsk_fold_port(65535) == 65535, "port 65535 unchanged");
	CHECK(vsk_fold_port(VSK_PORT_ANY) == 0, "VMADDR_PORT_ANY shows as 0");
	int in_range = 1;
	for (uint32_t p = 65536; p < 65536 + 100000; p += 7)
		if (vsk_fold_port(p) < 49152)
			in_range = 0;
	CHECK(in_range && vsk_fold_port(0xFFFFFFFE) >= 49152, "big ports fold into 49152-65535");

	CHECK(vsk_connect_cid(VSK_CID_ANY) == VSK_CID_LOCAL, "connect to ANY means local");
	CHECK(vsk_connect_cid(3) == 3, "connect to 3 means 3");

	CHECK(vsk_map_connect_errno(ECONNRESET) == ECONNREFUSED, "ECONNRESET -> ECONNREFUSED");
	CHECK(vsk_map_connect_errno(ENODEV) == EHOSTUNREACH, "ENODEV -> EHOSTUNREACH");
	CHECK(vsk_map_connect_errno(EAFNOSUPPORT) == ENETUNREACH, "EAFNOSUPPORT -> ENETUNREACH");
	CHECK(vsk_map_connect_errno(ETIMEDOUT) == ETIMEDOUT, "ETIMEDOUT unchanged");
	CHECK(vsk_map_connect_errno(EINPROGRESS) == EINPROGRESS, "EINPROGRESS unchanged");

	unsigned char full[16], out[16];
	memset(full, 0xAB, sizeof(full));
	memset(out, 0, sizeof(out));
	socklen_t len = 4;
	vsk_copy_out_addr(full, 16, (struct sockaddr *)(void *)out, &len);
	CHECK(len == 16 && out[3] == 0xAB && out[4] == 0, "copy_out truncates and reports the full length");
}

static const char *fake_env[8][2];
static const char *fake_getenv(const char *name)
{
	for (int i = 0; fake_env[i][0]; i++)
		if (!strcmp(fake_env[i][0], name))
			return fake_env[i][1];
	return NULL;
}

static void test_config(void)
{
	struct vsk_config cfg;

	memset(fake_env, 0, sizeof(fake_env));
	vsk_config_load(&cfg, fake_getenv);
	CHECK(cfg.log_level == VSK_LOG_ERROR && !cfg.log_file[0] && cfg.n_problems == 0,
	      "defaults: errors only, stderr, no problems");

	fake_env[0][0] = "VSOCKIFY_LOG"; fake_env[0][1] = "DEBUG";
	fake_env[1][0] = "VSOCKIFY_LOG_FILE"; fake_env[1][1] = "/tmp/x.log";
	fake_env[2][0] = "VSOCKIFY_FAKE_NET4"; fake_env[2][1] = "127.64.0.0/10";
	vsk_config_load(&cfg, fake_getenv);
	CHECK(cfg.log_level == VSK_LOG_DEBUG && !strcmp(cfg.log_file, "/tmp/x.log") &&
		      cfg.net.prefix4 == 10 && cfg.n_problems == 0, "settings are read");

	fake_env[0][1] = "loud";
	fake_env[2][1] = "10.0.0.0/33";
	fake_env[3][0] = "VSOCKIFY_FAKE_NET6"; fake_env[3][1] = "zzz";
	vsk_config_load(&cfg, fake_getenv);
	CHECK(cfg.log_level == VSK_LOG_ERROR && cfg.net.prefix4 == 9 && cfg.net.prefix6 == 96 &&
		      cfg.n_problems == 3, "bad settings fall back to defaults and are reported");
	CHECK(strstr(cfg.problems[0], "VSOCKIFY_LOG") != NULL, "problem names the variable: %s",
	      cfg.problems[0]);
}

static void test_ranges_in_use(void)
{
	static const struct {
		const char *cidr;
		int ok;
	} v4[] = {
		{ "127.128.0.0/9", 0 }, { "127.64.0.0/10", 0 }, { "10.200.0.0/16", 0 },
		{ "127.0.0.0/8", -1 },  { "0.0.0.0/8", -1 },    { "127.0.0.0/16", -1 },
		{ "127.0.0.0/9", -1 },  { "224.0.0.0/8", -1 },  { "240.0.0.0/8", -1 },
		{ "127.1.0.0/16", 0 },
	};
	static const struct {
		const char *cidr;
		int ok;
	} v6[] = {
		{ "100::7673:6f63:0:0/96", 0 }, { "::/16", -1 }, { "::/96", -1 },
		{ "fe80::/16", -1 },             { "ff02::/16", -1 }, { "fd00:1::/64", 0 },
	};
	struct vsk_fake_net net;

	for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
		vsk_fake_net_default(&net);
		CHECK(vsk_fake_net_set4(&net, v4[i].cidr) == v4[i].ok, "FAKE_NET4 %s %s",
		      v4[i].cidr, v4[i].ok ? "refused (holds addresses in real use)" : "accepted");
	}
	for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
		vsk_fake_net_default(&net);
		CHECK(vsk_fake_net_set6(&net, v6[i].cidr) == v6[i].ok, "FAKE_NET6 %s %s",
		      v6[i].cidr, v6[i].ok ? "refused" : "accepted");
	}
}

static void test_tcp_options(void)
{
	int v = 5, out = -7;

	CHECK(vsk_tcpopt_set(IPPROTO_TCP, TCP_NODELAY, false, &v, sizeof(v), &out) == 0 &&
		      out == 1, "TCP_NODELAY 5 reads back 1");
	CHECK(vsk_tcpopt_set(IPPROTO_TCP, TCP_NODELAY, false, &v, 2, &out) == EINVAL,
	      "short optlen is EINVAL");
	v = 0;
	CHECK(vsk_tcpopt_set(IPPROTO_TCP, TCP_KEEPIDLE, false, &v, sizeof(v), &out) == EINVAL,
	      "TCP_KEEPIDLE 0 is EINVAL");
	v = 40000;
	CHECK(vsk_tcpopt_set(IPPROTO_TCP, TCP_KEEPINTVL, false, &v, sizeof(v), &out) == EINVAL,
	      "TCP_KEEPINTVL above 32767 is EINVAL");
	v = 0xff;
	CHECK(vsk_tcpopt_set(IPPROTO_IP, IP_TOS, false, &v, sizeof(v), &out) == 0 && out == 0xfc,
	      "IP_TOS keeps the ECN bits the kernel's");
	v = -1;
	CHECK(vsk_tcpopt_set(IPPROTO_IPV6, IPV6_TCLASS, true, &v, sizeof(v), &out) == 0 && out == 0,
	      "IPV6_TCLASS -1 means 0");
	CHECK(vsk_tcpopt_set(IPPROTO_IPV6, IPV6_TCLASS, false, &v, sizeof(v), &out) == ENOPROTOOPT,
	      "IPv6 options on an AF_INET socket are ENOPROTOOPT");
	CHECK(vsk_tcpopt_set(IPPROTO_TCP, TCP_CONGESTION, false, "reno", 4, &out) == -1,
	      "options outside the table are left to the kernel");
	CHECK(vsk_tcpopt_default(IPPROTO_TCP, TCP_MAXSEG, false, &out) == 0 && out == 536,
	      "TCP_MAXSEG default 536 without an fd");
}

int main(void)
{
	test_ranges_in_use();
	test_tcp_options();
	test_names();
	test_fake_addresses();
	test_ports_and_errors();
	test_config();
	printf("1..%d\n", n_tests);
	return n_failed ? 1 : 0;
}
