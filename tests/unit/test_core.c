/* Unit tests for the pure core (shim/core).  Prints TAP. */
#include <arpa/inet.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>

#include "core/core.h"

static int n_tests, n_failed;

#define CHECK(cond, ...)                                                 \
	do {                                                             \
		int ok_ = !!(cond);                                      \
		n_tests++;                                               \
		if (ok_) {                                               \
			printf("ok %d - ", n_tests);                     \
		} else {                                                 \
			n_failed++;                                      \
			printf("not ok %d - ", n_tests);                 \
		}                                                        \
		printf(__VA_ARGS__);                                     \
		printf("\n");                                            \
		if (!ok_)                                                \
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

	memset(fake_env, 0, sizeof(fake_env));
	vsk_config_load(&cfg, fake_getenv);
	CHECK(!cfg.early_sockets, "early vsock sockets are off by default");
	fake_env[0][0] = "VSOCKIFY_EARLY_SOCKETS"; fake_env[0][1] = "on";
	vsk_config_load(&cfg, fake_getenv);
	CHECK(cfg.early_sockets && cfg.n_problems == 0, "VSOCKIFY_EARLY_SOCKETS=on turns them on");
	fake_env[0][1] = "off";
	vsk_config_load(&cfg, fake_getenv);
	CHECK(!cfg.early_sockets && cfg.n_problems == 0, "VSOCKIFY_EARLY_SOCKETS=off keeps them off");
	fake_env[0][1] = "maybe";
	vsk_config_load(&cfg, fake_getenv);
	CHECK(!cfg.early_sockets && cfg.n_problems == 1 &&
		      strstr(cfg.problems[0], "VSOCKIFY_EARLY_SOCKETS") != NULL,
	      "a bad VSOCKIFY_EARLY_SOCKETS keeps the default and is reported");
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

/* ---- rules ---------------------------------------------------------------- */

static char last_problem[VSK_RULE_MSG_MAX];
static int problems_seen;

static void keep_problem(void *ctx, const char *msg)
{
	(void)ctx;
	problems_seen++;
	snprintf(last_problem, sizeof(last_problem), "%s", msg);
}

static int add_list(struct vsk_rules *rs, const char *text)
{
	last_problem[0] = '\0';
	return vsk_rules_add(rs, VSK_SRC_LIST, "VSOCKIFY_RULES", text, strlen(text),
			     keep_problem, NULL);
}

static struct sockaddr_storage inet(const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
	} else {
		inet_pton(AF_INET6, addr, &in6->sin6_addr);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
	}
	return ss;
}

static int match(const struct vsk_rules *rs, enum vsk_rule_kind kind, const char *addr,
		 uint16_t port)
{
	struct sockaddr_storage ss = inet(addr, port);

	return vsk_rules_match_addr(rs, kind, (struct sockaddr *)&ss, sizeof(ss));
}

static void test_rules_parse(void)
{
	static const struct {
		const char *rule, *normalised;
	} good[] = {
		{ "name db.internal vsock:2", "name db.internal vsock:2" },
		{ "name  *.Guests.Example.\tvsock:3", "name *.guests.example vsock:3" },
		{ "connect 10.0.2.2:5432 vsock:host:5432", "connect 10.0.2.2:5432 vsock:2:5432" },
		{ "connect 192.0.2.7 vsock:3", "connect 192.0.2.7 vsock:3" },
		{ "connect [fd00:0::5]:80 vsock:3:8080", "connect [fd00::5]:80 vsock:3:8080" },
		{ "connect [fd00::6] vsock:local", "connect [fd00::6] vsock:1" },
		{ "listen 0.0.0.0:8080 vsock:any:8080", "listen 0.0.0.0:8080 vsock:any:8080" },
		{ "listen *:9000 vsock:any", "listen *:9000 vsock:any" },
		{ "listen * vsock:hypervisor", "listen * vsock:0" },
		{ "connect 1.2.3.4 vsock:4294967294:65535", "connect 1.2.3.4 vsock:4294967294:65535" },
	};
	static const struct {
		const char *rule, *says;
	} bad[] = {
		{ "connect 1.2.3.4:0 vsock:1", "port '0'" },
		{ "connect 1.2.3.4:65536 vsock:1", "port '65536'" },
		{ "connect 1.2.3.4 vsock:1:0", "port '0' in the target" },
		{ "connect 1.2.3.4 vsock:1:70000", "port '70000' in the target" },
		{ "connect 1.2.3.4 vsock:4294967295", "CID '4294967295'" },
		{ "connect 1.2.3.4 vsock:-1", "CID '-1'" },
		{ "connect 1.2.3.4 tcp:1", "must look like vsock:CID" },
		{ "connect 1.2.3.4", "missing the target" },
		{ "connect", "missing the address" },
		{ "connect 1.2.3.4 vsock:1 more", "unexpected 'more'" },
		{ "route 1.2.3.4 vsock:1", "unknown rule 'route'" },
		{ "connect * vsock:1", "only for listen" },
		{ "connect [fd00::5 vsock:1", "without a closing" },
		{ "connect fd00::5]:80 vsock:1", "is not an IPv4 address" },
		{ "connect fd00::5 vsock:1", "needs brackets" },
		{ "connect fd00::5:80 vsock:1", "needs brackets" },
		{ "connect db.internal vsock:1", "use a name rule" },
		{ "connect 1.2.3 vsock:1", "'1.2.3' is not" },
		{ "name vsock-5.local vsock:1", "built-in" },
		{ "name db:5432 vsock:1", "take no port" },
		{ "name db vsock:1:80", "takes no port" },
		{ "name 10.0.0.1 vsock:1", "is an address" },
		{ "name bad_name! vsock:1", "not a host name" },
		{ "name * vsock:1", "not a host name" },
		{ "name a..b vsock:1", "not a host name" },
	};
	char buf[VSK_RULE_TEXT_MAX];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct vsk_rules rs = { 0 };
		int n = add_list(&rs, good[i].rule);
		CHECK(n == 0 && rs.n == 1 && vsk_rule_format(&rs, 0, buf, sizeof(buf)) > 0 &&
			      strcmp(buf, good[i].normalised) == 0,
		      "rule \"%s\" reads as \"%s\" (%s)", good[i].rule, good[i].normalised,
		      n ? last_problem : buf);
		vsk_rules_free(&rs);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vsk_rules rs = { 0 };
		int n = add_list(&rs, bad[i].rule);
		CHECK(n == 1 && rs.n == 0 && strstr(last_problem, bad[i].says) &&
			      strncmp(last_problem, "VSOCKIFY_RULES: rule 1: ", 24) == 0,
		      "rule \"%s\" is refused: %s", bad[i].rule, last_problem);
		vsk_rules_free(&rs);
	}
}

static void test_rules_sources(void)
{
	struct vsk_rules rs = { 0 };
	static const char file[] = "# comment\r\n\r\nconnect 10.0.0.1 vsock:3 # why\r\n"
				   "name db vsock:2\r\n";
	static const char with_nul[] = "connect 10.0.0.8 vsock:3\nname a\0b vsock:2\n";
	char buf[VSK_RULE_TEXT_MAX];

	CHECK(vsk_rules_add(&rs, VSK_SRC_FILE, "f.conf", file, sizeof(file) - 1, keep_problem,
			    NULL) == 0 && rs.n == 2,
	      "CRLF, comments and blank lines are fine");
	CHECK(add_list(&rs, "connect 10.0.0.2 vsock:4;;connect 10.0.0.3 vsock:5 ; ") == 0 &&
		      rs.n == 4,
	      "a list may have empty pieces");
	CHECK(add_list(&rs, "connect 10.0.0.9 vsock:4;connect 10.0.0.1 vsock:9") == 1 &&
		      rs.n == 4 && strstr(last_problem, "VSOCKIFY_RULES: rule 2: repeats") &&
		      strstr(last_problem, "connect 10.0.0.1 vsock:3"),
	      "a repeated match is refused, and the whole source with it: %s", last_problem);
	CHECK(match(&rs, VSK_RULE_CONNECT, "10.0.0.9", 80) < 0,
	      "nothing of a refused source applies");
	CHECK(vsk_rules_add(&rs, VSK_SRC_FILE, "n.conf", with_nul, sizeof(with_nul) - 1,
			    keep_problem, NULL) == 1 &&
		      strstr(last_problem, "n.conf:2: contains a NUL byte") && rs.n == 4,
	      "a NUL byte is refused with its line: %s", last_problem);
	CHECK(vsk_rules_add(&rs, VSK_SRC_ARGS, "--rule 1", "bogus", 5, keep_problem, NULL) == 1 &&
		      strncmp(last_problem, "--rule 1: ", 10) == 0,
	      "wrapper arguments carry their own label: %s", last_problem);
	CHECK(vsk_rule_format(&rs, 3, buf, sizeof(buf)) > 0 &&
		      strcmp(buf, "connect 10.0.0.3 vsock:5") == 0,
	      "sources keep their order");
	vsk_rules_free(&rs);

	char *big = malloc(12000);
	memset(big, 'x', 11999);
	big[11999] = '\0';
	memcpy(big, "name ", 5);
	memcpy(big + 11990, " vsock:1", 9);
	CHECK(add_list(&rs, big) == 1 && strstr(last_problem, "longer than 253"),
	      "a 12 000-byte name is refused: %.60s", last_problem);
	memset(big, ' ', 11999);
	memcpy(big + 11000, "# long comment", 14);
	CHECK(add_list(&rs, big) == 0 && rs.n == 0, "a long blank line with a comment is fine");
	free(big);
	CHECK(vsk_rules_add_file(&rs, "/nonexistent/vsockify.conf", true, keep_problem, NULL) == 0,
	      "a missing default file is no problem");
	CHECK(vsk_rules_add_file(&rs, "/nonexistent/vsockify.conf", false, keep_problem, NULL) == 1 &&
		      strstr(last_problem, "No such file"),
	      "a missing named file is: %s", last_problem);
	CHECK(vsk_rules_add_file(&rs, "/", false, keep_problem, NULL) == 1 &&
		      strstr(last_problem, "is a directory"),
	      "a directory is refused: %s", last_problem);
	vsk_rules_free(&rs);
}

static void test_rules_match(void)
{
	struct vsk_rules rs = { 0 };
	uint32_t cid, vport;
	int i;

	add_list(&rs, "connect 10.0.0.1:80 vsock:4:8080; connect 10.0.0.1 vsock:3;"
		      "connect [fd00::5]:443 vsock:5; listen 127.0.0.1 vsock:6;"
		      "listen *:9000 vsock:any; listen 0.0.0.0:9000 vsock:7;"
		      "name db.internal vsock:2; name *.guests.example vsock:8;"
		      "name a.guests.example vsock:9");
	CHECK(rs.n == 9, "nine rules: %s", last_problem);
	i = match(&rs, VSK_RULE_CONNECT, "10.0.0.1", 80);
	vsk_rule_target(&rs.rule[i], 80, &cid, &vport);
	CHECK(i == 0 && cid == 4 && vport == 8080, "address and port, mapped port");
	i = match(&rs, VSK_RULE_CONNECT, "10.0.0.1", 22);
	vsk_rule_target(&rs.rule[i], 22, &cid, &vport);
	CHECK(i == 1 && cid == 3 && vport == 22, "any port keeps the app's");
	CHECK(match(&rs, VSK_RULE_CONNECT, "::ffff:10.0.0.1", 22) == 1,
	      "an IPv4 rule matches the mapped form");
	CHECK(match(&rs, VSK_RULE_CONNECT, "10.0.0.2", 80) < 0 &&
		      match(&rs, VSK_RULE_CONNECT, "fd00::5", 80) < 0 &&
		      match(&rs, VSK_RULE_CONNECT, "fd00::5", 443) == 2,
	      "other addresses and ports do not match");
	CHECK(match(&rs, VSK_RULE_LISTEN, "10.0.0.1", 80) < 0 &&
		      match(&rs, VSK_RULE_CONNECT, "127.0.0.1", 80) < 0,
	      "connect and listen rules are apart");
	CHECK(match(&rs, VSK_RULE_LISTEN, "127.0.0.1", 9000) == 3,
	      "the first matching rule wins over a later '*'");
	CHECK(match(&rs, VSK_RULE_LISTEN, "0.0.0.0", 9000) == 4 &&
		      match(&rs, VSK_RULE_LISTEN, "::", 9000) == 4 &&
		      match(&rs, VSK_RULE_LISTEN, "::1", 9000) == 4 &&
		      match(&rs, VSK_RULE_LISTEN, "0.0.0.0", 9001) < 0,
	      "'*:P' matches every address on P, and only P");
	CHECK(vsk_rules_match_name(&rs, "DB.Internal.") == 6 &&
		      vsk_rules_match_name(&rs, "db.internal.x") < 0 &&
		      vsk_rules_match_name(&rs, "xdb.internal") < 0,
	      "exact names ignore case and a trailing dot, and only match whole");
	CHECK(vsk_rules_match_name(&rs, "b.guests.example") == 7 &&
		      vsk_rules_match_name(&rs, "x.y.guests.example") == 7 &&
		      vsk_rules_match_name(&rs, "guests.example") < 0 &&
		      vsk_rules_match_name(&rs, "a.guests.example") == 7,
	      "wildcards match names under the suffix; the earlier rule wins");
	vsk_rules_free(&rs);

	char *many = malloc(10000 * 40), *p = many;
	for (int k = 0; k < 10000; k++)
		p += sprintf(p, "connect 10.%d.%d.1:%d vsock:%d;", k >> 8, k & 255, 1 + k, k);
	CHECK(add_list(&rs, many) == 0 && rs.n == 10000 &&
		      match(&rs, VSK_RULE_CONNECT, "10.39.15.1", 9999 + 1) == 9999 &&
		      match(&rs, VSK_RULE_CONNECT, "10.39.15.1", 1) < 0,
	      "10 000 rules load and match");
	free(many);
	vsk_rules_free(&rs);

	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	add_list(&rs, "listen *:80 vsock:any; connect 192.0.2.7 vsock:3");
	CHECK(vsk_rule_shown_addr(&rs.rule[0], VSK_APP_INET4, 80, &ss) == sizeof(*in) &&
		      in->sin_family == AF_INET && in->sin_addr.s_addr == 0 &&
		      ntohs(in->sin_port) == 80,
	      "after an exec, '*' shows the wildcard of its family");
	CHECK(vsk_rule_shown_addr(&rs.rule[1], VSK_APP_INET4, 22, &ss) == sizeof(*in) &&
		      in->sin_addr.s_addr == htonl(0xc0000207),
	      "and a connect rule its address");
	vsk_rules_free(&rs);
}

/* vsk_route with the address's own length, as an app passes it. */
static enum vsk_route route(const struct vsk_fake_net *net, const struct vsk_rules *rs,
			    enum vsk_rule_kind kind, const char *addr, uint16_t port,
			    struct vsk_target *t, int *rule)
{
	struct sockaddr_storage ss = inet(addr, port);
	socklen_t len = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
						: sizeof(struct sockaddr_in6);

	return vsk_route(net, rs, (struct sockaddr *)&ss, len, kind, t, rule);
}

static void test_route(void)
{
	struct vsk_fake_net net;
	struct vsk_rules rs = { 0 }, unreadable = { .unreadable = EMFILE };
	struct vsk_target t;
	struct sockaddr_storage ss;
	int rule;

	vsk_fake_net_default(&net);
	CHECK(route(&net, &rs, VSK_RULE_CONNECT, "127.128.0.3", 80, &t, &rule) == VSK_ROUTE_VSOCK &&
		      t.cid == 3 && t.port == 80 && t.family == VSK_APP_INET4 && rule == -1,
	      "route: an IPv4 fake leads to its CID and port, by no rule");
	CHECK(route(&net, &rs, VSK_RULE_CONNECT, "100::7673:6f63:0:5", 443, &t, &rule) ==
			      VSK_ROUTE_VSOCK &&
		      t.cid == 5 && t.port == 443 && t.family == VSK_APP_INET6 && rule == -1,
	      "route: an IPv6 fake");
	CHECK(route(&net, &rs, VSK_RULE_LISTEN, "::ffff:127.128.0.7", 22, &t, &rule) ==
			      VSK_ROUTE_VSOCK &&
		      t.cid == 7 && t.port == 22 && t.family == VSK_APP_MAPPED,
	      "route: a mapped fake, for bind too");
	CHECK(route(&net, &rs, VSK_RULE_CONNECT, "127.255.255.255", 80, &t, &rule) ==
			      VSK_ROUTE_VSOCK && t.cid == VSK_CID_ANY,
	      "route: the 'any' fake");
	CHECK(route(&net, &rs, VSK_RULE_CONNECT, "127.255.255.254", 80, &t, &rule) ==
			      VSK_ROUTE_INVALID &&
		      route(&net, &rs, VSK_RULE_LISTEN, "::ffff:127.255.255.254", 80, &t, &rule) ==
			      VSK_ROUTE_INVALID,
	      "route: the unrepresentable fake names no CID");
	CHECK(route(&net, &rs, VSK_RULE_CONNECT, "127.0.0.1", 80, &t, &rule) == VSK_ROUTE_NOT_OURS &&
		      route(&net, &rs, VSK_RULE_CONNECT, "::1", 80, &t, &rule) == VSK_ROUTE_NOT_OURS &&
		      rule == -1,
	      "route: a real address without rules is not ours");
	ss = inet("127.128.0.3", 80);
	CHECK(vsk_route(&net, &rs, (struct sockaddr *)&ss, sizeof(struct sockaddr_in) - 1,
			VSK_RULE_CONNECT, &t, &rule) == VSK_ROUTE_NOT_OURS &&
		      vsk_route(&net, &rs, (struct sockaddr *)&ss, sizeof(ss) + 1,
				VSK_RULE_CONNECT, &t, &rule) == VSK_ROUTE_NOT_OURS,
	      "route: a short or over-long fake is the kernel's to refuse");

	add_list(&rs, "connect 10.0.0.1:80 vsock:4:8080; connect 10.0.0.1 vsock:3;"
		      "connect [fd00::5]:443 vsock:5; listen 127.0.0.1 vsock:6;"
		      "listen *:9000 vsock:any:9100; listen 10.0.0.1 vsock:2");
	CHECK(rs.n == 6, "route: six rules: %s", last_problem);
	CHECK(route(&net, &rs, VSK_RULE_CONNECT, "10.0.0.1", 80, &t, &rule) == VSK_ROUTE_VSOCK &&
		      rule == 0 && t.cid == 4 && t.port == 8080,
	      "route: a connect rule with an exact port and a vsock port");
	CHECK(route(&net, &rs, VSK_RULE_CONNECT, "10.0.0.1", 22, &t, &rule) == VSK_ROUTE_VSOCK &&
		      rule == 1 && t.cid == 3 && t.port == 22,
	      "route: a connect rule for any port keeps the app's");
	CHECK(route(&net, &rs, VSK_RULE_CONNECT, "::ffff:10.0.0.1", 22, &t, &rule) ==
			      VSK_ROUTE_VSOCK && rule == 1,
	      "route: an IPv4 rule routes the mapped form");
	CHECK(route(&net, &rs, VSK_RULE_CONNECT, "fd00::5", 443, &t, &rule) == VSK_ROUTE_VSOCK &&
		      rule == 2 && t.cid == 5 && t.port == 443 &&
		      route(&net, &rs, VSK_RULE_CONNECT, "fd00::5", 80, &t, &rule) ==
			      VSK_ROUTE_NOT_OURS && rule == -1,
	      "route: an IPv6 rule, and only on its port");
	CHECK(route(&net, &rs, VSK_RULE_LISTEN, "127.0.0.1", 0, &t, &rule) == VSK_ROUTE_VSOCK &&
		      rule == 3 && t.cid == 6 && t.port == 0,
	      "route: a bind by a listen rule to port 0 lets vsock pick the port");
	CHECK(route(&net, &rs, VSK_RULE_LISTEN, "::", 9000, &t, &rule) == VSK_ROUTE_VSOCK &&
		      rule == 4 && t.cid == VSK_CID_ANY && t.port == 9100 &&
		      route(&net, &rs, VSK_RULE_LISTEN, "0.0.0.0", 9001, &t, &rule) ==
			      VSK_ROUTE_NOT_OURS,
	      "route: a listen rule for every address, with a vsock port");
	CHECK(route(&net, &rs, VSK_RULE_LISTEN, "10.0.0.1", 80, &t, &rule) == VSK_ROUTE_VSOCK &&
		      rule == 5 && t.cid == 2 && t.port == 80 &&
		      route(&net, &rs, VSK_RULE_LISTEN, "127.0.0.2", 80, &t, &rule) ==
			      VSK_ROUTE_NOT_OURS,
	      "route: listen rules route binds, not connect rules");
	CHECK(route(&net, &rs, VSK_RULE_CONNECT, "127.128.0.9", 80, &t, &rule) == VSK_ROUTE_VSOCK &&
		      rule == -1 && t.cid == 9,
	      "route: a fake address wins over the rules");
	ss = inet("10.0.0.1", 80);
	CHECK(vsk_route_fake(&net, (struct sockaddr *)&ss, sizeof(struct sockaddr_in), &t,
			     &rule) == VSK_ROUTE_NOT_OURS &&
		      vsk_route_by_rule(&rs, (struct sockaddr *)&ss, sizeof(struct sockaddr_in),
					VSK_RULE_CONNECT, &t, &rule) == VSK_ROUTE_VSOCK &&
		      rule == 0 && t.port == 8080,
	      "route: the two steps decide as the whole");
	CHECK(vsk_route(&net, &rs, (struct sockaddr *)&ss, sizeof(ss) + 1, VSK_RULE_CONNECT, &t,
			&rule) == VSK_ROUTE_NOT_OURS && rule == -1,
	      "route: an over-long address matches no rule");
	vsk_rules_free(&rs);

	CHECK(route(&net, &unreadable, VSK_RULE_CONNECT, "10.0.0.1", 80, &t, &rule) ==
			      VSK_ROUTE_UNKNOWN && rule == -1 &&
		      route(&net, &unreadable, VSK_RULE_LISTEN, "::1", 80, &t, &rule) ==
			      VSK_ROUTE_UNKNOWN,
	      "route: with the rules unreadable a real address cannot be decided");
	CHECK(route(&net, &unreadable, VSK_RULE_CONNECT, "127.128.0.3", 80, &t, &rule) ==
			      VSK_ROUTE_VSOCK && t.cid == 3 &&
		      route(&net, &unreadable, VSK_RULE_CONNECT, "127.255.255.254", 80, &t, &rule) ==
			      VSK_ROUTE_INVALID,
	      "route: ...but a fake one needs no rules");
	CHECK(vsk_route(&net, &unreadable, (struct sockaddr *)&ss, sizeof(ss) + 1,
			VSK_RULE_CONNECT, &t, &rule) == VSK_ROUTE_NOT_OURS,
	      "route: ...and an over-long one is the kernel's still");
}

static void test_shown(void)
{
	struct vsk_fake_net net;
	struct sockaddr_storage ss, out;
	struct sockaddr_in *in = (struct sockaddr_in *)&out;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out;
	unsigned char kept[VSK_SHOWN_MAX];
	struct sockaddr_vm vm = { .svm_family = AF_VSOCK, .svm_cid = 3, .svm_port = 80 };
	char buf[INET6_ADDRSTRLEN];
	uint8_t n;

	vsk_fake_net_default(&net);
	ss = inet("10.0.0.1", 80);
	memset(((struct sockaddr_in *)&ss)->sin_zero, 0xaa, 8);
	n = vsk_keep_app_addr((struct sockaddr *)&ss, kept);
	memcpy(&out, kept, n);
	CHECK(n == sizeof(*in) && in->sin_family == AF_INET && ntohs(in->sin_port) == 80 &&
		      in->sin_addr.s_addr == htonl(0x0a000001) &&
		      !memcmp(in->sin_zero, "\0\0\0\0\0\0\0\0", 8),
	      "keep: an IPv4 address without what sin_zero held");
	ss = inet("fd00::5", 443);
	((struct sockaddr_in6 *)&ss)->sin6_flowinfo = htonl(0x12345);
	((struct sockaddr_in6 *)&ss)->sin6_scope_id = 2;
	n = vsk_keep_app_addr((struct sockaddr *)&ss, kept);
	memcpy(&out, kept, n);
	CHECK(n == sizeof(*in6) && in6->sin6_flowinfo == 0 && in6->sin6_scope_id == 2 &&
		      ntohs(in6->sin6_port) == 443,
	      "keep: an IPv6 address without its flow label, with its scope");

	n = (uint8_t)vsk_shown_addr(&net, VSK_APP_INET4, &vm, true, NULL, 0, VSK_CID_ANY, &out);
	CHECK(n == sizeof(*in) && in->sin_family == AF_INET && ntohs(in->sin_port) == 80 &&
		      !strcmp(ntop4(in->sin_addr, buf), "127.128.0.3"),
	      "shown: a vsock address as the IPv4 fake (%s)", buf);
	vsk_shown_addr(&net, VSK_APP_INET6, &vm, true, NULL, 0, VSK_CID_ANY, &out);
	inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
	CHECK(in6->sin6_family == AF_INET6 && !strcmp(buf, "100::7673:6f63:0:3"),
	      "shown: as the IPv6 fake (%s)", buf);
	vsk_shown_addr(&net, VSK_APP_MAPPED, &vm, true, NULL, 0, VSK_CID_ANY, &out);
	inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
	CHECK(!strcmp(buf, "::ffff:127.128.0.3"), "shown: as the mapped fake (%s)", buf);
	vm.svm_port = 70000;
	vsk_shown_addr(&net, VSK_APP_INET4, &vm, false, NULL, 0, VSK_CID_ANY, &out);
	CHECK(ntohs(in->sin_port) == vsk_fold_port(70000), "shown: a 32-bit port folded");

	vm.svm_cid = VSK_CID_ANY;
	vsk_shown_addr(&net, VSK_APP_INET4, &vm, false, NULL, 0, 5, &out);
	CHECK(!strcmp(ntop4(in->sin_addr, buf), "127.128.0.5"),
	      "shown: a connected socket's local 'any' as this machine (%s)", buf);
	vsk_shown_addr(&net, VSK_APP_INET4, &vm, false, NULL, 0, VSK_CID_ANY, &out);
	CHECK(!strcmp(ntop4(in->sin_addr, buf), "127.255.255.255"),
	      "shown: an unconnected one's stays 'any' (%s)", buf);
	vsk_shown_addr(&net, VSK_APP_INET4, &vm, true, NULL, 0, 5, &out);
	CHECK(!strcmp(ntop4(in->sin_addr, buf), "127.255.255.255"),
	      "shown: a peer 'any' is never filled in (%s)", buf);

	ss = inet("127.0.0.1", 0);
	n = vsk_keep_app_addr((struct sockaddr *)&ss, kept);
	vm = (struct sockaddr_vm){ .svm_family = AF_VSOCK, .svm_cid = 6, .svm_port = 40123 };
	CHECK(vsk_shown_addr(&net, VSK_APP_INET4, &vm, false, kept, n, 5, &out) == n &&
		      ntohs(in->sin_port) == 40123 && in->sin_addr.s_addr == htonl(0x7f000001),
	      "shown: a rule's listener on port 0 shows the port vsock picked");
	vm.svm_port = 100000;
	vsk_shown_addr(&net, VSK_APP_INET4, &vm, false, kept, n, 5, &out);
	CHECK(ntohs(in->sin_port) == vsk_fold_port(100000), "shown: ...folded");
	CHECK(vsk_shown_addr(&net, VSK_APP_INET4, &vm, true, kept, n, 5, &out) == n &&
		      in->sin_port == 0,
	      "shown: a peer the app dialled on port 0 keeps it");
	vm.svm_family = AF_UNIX;
	vsk_shown_addr(&net, VSK_APP_INET4, &vm, false, kept, n, 5, &out);
	CHECK(in->sin_port == 0, "shown: a hybrid socket has no vsock port to show");
	ss = inet("fd00::5", 8080);
	n = vsk_keep_app_addr((struct sockaddr *)&ss, kept);
	vm.svm_family = AF_VSOCK;
	CHECK(vsk_shown_addr(&net, VSK_APP_INET6, &vm, false, kept, n, 5, &out) == n &&
		      !memcmp(&out, kept, n),
	      "shown: a rule's address with its own port, as the app used it");
}

static int this_cid_calls;
static uint32_t this_cid_is_42(void)
{
	this_cid_calls++;
	return 42;
}

static void test_shown_local_cid(void)
{
	CHECK(vsk_shown_local_cid(VSK_CID_LOCAL, this_cid_is_42) == VSK_CID_LOCAL &&
		      this_cid_calls == 0,
	      "local CID: a loopback peer shows 1, without asking the transport");
	CHECK(vsk_shown_local_cid(VSK_CID_HOST, this_cid_is_42) == 42 &&
		      vsk_shown_local_cid(7, this_cid_is_42) == 42 && this_cid_calls == 2,
	      "local CID: any other peer shows this machine's CID");
}


/* A query for name (dotted) of qtype, with an optional trailing OPT. */
static size_t dns_query(uint8_t *q, const char *name, unsigned qtype, uint16_t id)
{
	size_t n = 12;
	memset(q, 0, 12);
	q[0] = (uint8_t)(id >> 8), q[1] = (uint8_t)id, q[2] = 0x01, q[5] = 1;
	for (const char *p = name; *p;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		q[n++] = (uint8_t)len;
		memcpy(q + n, p, len);
		n += len;
		p += len + (dot ? 1 : 0);
	}
	q[n++] = 0;
	q[n++] = (uint8_t)(qtype >> 8), q[n++] = (uint8_t)qtype;
	q[n++] = 0, q[n++] = 1;
	return n;
}

static void test_dns(void)
{
	struct vsk_fake_net net;
	struct vsk_rules rs = { 0 };
	uint8_t q[512], out[512];
	size_t n, outlen;
	static const char rule[] = "name db.internal vsock:7";

	vsk_fake_net_default(&net);
	vsk_rules_add(&rs, VSK_SRC_LIST, "t", rule, sizeof(rule) - 1, NULL, NULL);
	n = dns_query(q, "VSOCK-3.local", 1, 0xbeef);
	CHECK(vsk_dns_respond(&net, &rs, q, n, out, sizeof(out), &outlen) == VSK_DNS_ANSWER &&
	      outlen == n + 16 && out[0] == 0xbe && out[1] == 0xef && (out[2] & 0x84) == 0x84 &&
	      (out[3] & 0x8f) == 0x80 && out[7] == 1 && !memcmp(out + 12, q + 12, n - 12) &&
	      !memcmp(out + outlen - 4, "\x7f\x80\x00\x03", 4),
	      "dns: A for vsock-3.local is 127.128.0.3, question copied, AA RA set");
	n = dns_query(q, "vsock-3.local", 28, 1);
	CHECK(vsk_dns_respond(&net, &rs, q, n, out, sizeof(out), &outlen) == VSK_DNS_ANSWER &&
	      outlen == n && out[7] == 0 && (out[3] & 15) == 0,
	      "dns: AAAA for vsock-3.local is NODATA (one family, as getaddrinfo(AF_UNSPEC))");
	n = dns_query(q, "vsock-4294967290.local", 28, 1);
	CHECK(vsk_dns_respond(&net, &rs, q, n, out, sizeof(out), &outlen) == VSK_DNS_ANSWER &&
	      outlen == n + 28 && out[7] == 1 && out[outlen - 1] == 0xfa && out[outlen - 16] == 1,
	      "dns: AAAA for a CID beyond the IPv4 fakes is 100::…");
	n = dns_query(q, "db.internal", 1, 2);
	CHECK(vsk_dns_respond(&net, &rs, q, n, out, sizeof(out), &outlen) == VSK_DNS_ANSWER &&
	      out[outlen - 1] == 7, "dns: a name rule answers with its CID");
	n = dns_query(q, "vsock-4294967290.local", 1, 3);
	CHECK(vsk_dns_respond(&net, &rs, q, n, out, sizeof(out), &outlen) == VSK_DNS_ANSWER &&
	      outlen == n && out[7] == 0 && (out[3] & 15) == 0,
	      "dns: A for a CID beyond the IPv4 fakes is NODATA");
	n = dns_query(q, "vsock-x.local", 1, 4);
	CHECK(vsk_dns_respond(&net, &rs, q, n, out, sizeof(out), &outlen) == VSK_DNS_ANSWER &&
	      (out[3] & 15) == 3, "dns: a malformed vsock name is NXDOMAIN");
	n = dns_query(q, "vsock-3.local", 15, 5);
	CHECK(vsk_dns_respond(&net, &rs, q, n, out, sizeof(out), &outlen) == VSK_DNS_ANSWER &&
	      outlen == n && (out[3] & 15) == 0 && (out[2] & 0x04), "dns: MX for ours is NODATA, AA");
	n = dns_query(q, "example.org", 1, 6);
	CHECK(vsk_dns_respond(&net, &rs, q, n, out, sizeof(out), &outlen) == VSK_DNS_FORWARD,
	      "dns: other names are forwarded");
	CHECK(vsk_dns_respond(&net, &rs, q, 11, out, sizeof(out), &outlen) == VSK_DNS_DROP,
	      "dns: a packet shorter than a header is dropped");
	n = dns_query(q, "vsock-3.local", 1, 7);
	for (size_t cut = 12; cut < n; cut++)
		CHECK(vsk_dns_respond(&net, &rs, q, cut, out, sizeof(out), &outlen) == VSK_DNS_FORWARD,
		      "dns: a query cut at %zu bytes is forwarded, not answered", cut);
	q[2] |= 0x80; /* a response */
	CHECK(vsk_dns_respond(&net, &rs, q, n, out, sizeof(out), &outlen) == VSK_DNS_FORWARD,
	      "dns: a response is not a query");
	q[2] = 0x01;
	q[12 + 1 + 5] = 0xc0; /* compression inside the name: not a plain question */
	CHECK(vsk_dns_respond(&net, &rs, q, n, out, sizeof(out), &outlen) != VSK_DNS_ANSWER,
	      "dns: a name with odd bytes is never answered as ours");
	n = dns_query(q, "vsock-3.local", 1, 8);
	CHECK(vsk_dns_respond(&net, &rs, q, n, out, 20, &outlen) == VSK_DNS_DROP,
	      "dns: a reply buffer too small is never overrun");
	CHECK(vsk_dns_servfail(q, n, out, sizeof(out), &outlen) == 0 && outlen == n &&
	      (out[3] & 15) == 2 && out[0] == 0 && out[1] == 8, "dns: SERVFAIL for a refused query");
	vsk_rules_free(&rs);
}

/* ---- program classification ----------------------------------------------- */

#if defined(__aarch64__)
#define NATIVE_EM EM_AARCH64
#define OTHER_EM EM_X86_64
#else
#define NATIVE_EM EM_X86_64
#define OTHER_EM EM_AARCH64
#endif

/* A synthetic ELF image: headers at the front, an interp string, a data
 * segment and a section table at fixed offsets, so tests can damage any
 * field afterwards. */
enum { IMG_INTERP = 0x200, IMG_DATA = 0x400, IMG_DATA_LEN = 0x200, IMG_STRTAB = 0x700,
       IMG_SHDRS = 0x800, IMG_LEN = 0x900 };
#define IMG_VADDR 0x401000u

struct elf_spec {
	bool is64, big;
	uint16_t machine, type;
	const char *interp;   /* PT_INTERP, or NULL */
	bool sections;        /* a section table: null, .shstrtab, one more */
	bool go_section;      /* ... the one more is .go.buildinfo, not .data */
	int magic_at;         /* the Go magic at this data offset, or -1 */
};

static void put(unsigned char *p, size_t n, uint64_t v, bool big)
{
	for (size_t i = 0; i < n; i++)
		p[big ? n - 1 - i : i] = (unsigned char)(v >> (8 * i));
}

#define PUT(s, p, T, m, v)                                                              \
	((s)->is64 ? put((p) + offsetof(Elf64_##T, m), sizeof(((Elf64_##T *)0)->m), (v), \
			 (s)->big)                                                      \
		   : put((p) + offsetof(Elf32_##T, m), sizeof(((Elf32_##T *)0)->m), (v), \
			 (s)->big))
#define SIZEOF(s, T) ((s)->is64 ? sizeof(Elf64_##T) : sizeof(Elf32_##T))

static unsigned char img[IMG_LEN];

static void build_elf(const struct elf_spec *s)
{
	size_t ehsize = SIZEOF(s, Ehdr), phsize = SIZEOF(s, Phdr), shsize = SIZEOF(s, Shdr);
	unsigned char *ph = img + ehsize;
	unsigned nph = 0;

	memset(img, 0, sizeof(img));
	memcpy(img, ELFMAG, SELFMAG);
	img[EI_CLASS] = s->is64 ? ELFCLASS64 : ELFCLASS32;
	img[EI_DATA] = s->big ? ELFDATA2MSB : ELFDATA2LSB;
	img[EI_VERSION] = EV_CURRENT;
	PUT(s, img, Ehdr, e_type, s->type);
	PUT(s, img, Ehdr, e_machine, s->machine);
	PUT(s, img, Ehdr, e_version, EV_CURRENT);
	PUT(s, img, Ehdr, e_phoff, ehsize);
	PUT(s, img, Ehdr, e_ehsize, ehsize);
	PUT(s, img, Ehdr, e_phentsize, phsize);
	PUT(s, img, Ehdr, e_shentsize, shsize);
	if (s->interp) {
		size_t n = strlen(s->interp) + 1;
		memcpy(img + IMG_INTERP, s->interp, n);
		PUT(s, ph, Phdr, p_type, PT_INTERP);
		PUT(s, ph, Phdr, p_flags, PF_R);
		PUT(s, ph, Phdr, p_offset, IMG_INTERP);
		PUT(s, ph, Phdr, p_filesz, n);
		ph += phsize, nph++;
	}
	PUT(s, ph, Phdr, p_type, PT_LOAD); /* text: the headers */
	PUT(s, ph, Phdr, p_flags, PF_R | PF_X);
	PUT(s, ph, Phdr, p_filesz, IMG_DATA);
	ph += phsize, nph++;
	PUT(s, ph, Phdr, p_type, PT_LOAD);
	PUT(s, ph, Phdr, p_flags, PF_R | PF_W);
	PUT(s, ph, Phdr, p_offset, IMG_DATA);
	PUT(s, ph, Phdr, p_vaddr, IMG_VADDR + IMG_DATA);
	PUT(s, ph, Phdr, p_filesz, IMG_DATA_LEN);
	nph++;
	PUT(s, img, Ehdr, e_phnum, nph);
	if (s->magic_at >= 0)
		memcpy(img + IMG_DATA + s->magic_at, "\xff Go buildinf:\x08\x02", 16);
	if (s->sections) {
		static const char names[] = "\0.shstrtab\0.go.buildinfo\0.data";
		unsigned char *sh = img + IMG_SHDRS;

		memcpy(img + IMG_STRTAB, names, sizeof(names));
		PUT(s, img, Ehdr, e_shoff, IMG_SHDRS);
		PUT(s, img, Ehdr, e_shnum, 3);
		PUT(s, img, Ehdr, e_shstrndx, 1);
		sh += shsize;
		PUT(s, sh, Shdr, sh_name, 1);
		PUT(s, sh, Shdr, sh_type, SHT_STRTAB);
		PUT(s, sh, Shdr, sh_offset, IMG_STRTAB);
		PUT(s, sh, Shdr, sh_size, sizeof(names));
		sh += shsize;
		PUT(s, sh, Shdr, sh_name, s->go_section ? 11 : 25);
		PUT(s, sh, Shdr, sh_type, SHT_PROGBITS);
		PUT(s, sh, Shdr, sh_offset, IMG_DATA);
		PUT(s, sh, Shdr, sh_size, IMG_DATA_LEN);
	}
}

/* A reader over memory that can also lie about the size or fail. */
struct mem_file {
	const unsigned char *p;
	size_t n;
	uint64_t fail_at; /* a read touching this offset fails; UINT64_MAX: none */
	unsigned reads;
};

static long mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct mem_file *m = ctx;

	m->reads++;
	if (m->fail_at >= off && m->fail_at - off < len)
		return -1;
	if (off >= m->n)
		return 0;
	if (len > m->n - off)
		len = m->n - off;
	memcpy(buf, m->p + off, len);
	return (long)len;
}

static int classify_mem(const unsigned char *p, size_t n, uint64_t claimed_size,
			struct vsk_prog_info *out)
{
	struct mem_file m = { p, n, UINT64_MAX, 0 };

	memset(out, 0x55, sizeof(*out)); /* every field must be written */
	return vsk_classify_elf(mem_read, &m, claimed_size, out);
}

static int classify_img(struct vsk_prog_info *out)
{
	return classify_mem(img, sizeof(img), sizeof(img), out);
}

static long fd_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	return pread(*(int *)ctx, buf, len, (off_t)off);
}

/* -1 if path cannot be opened. */
static int classify_path(const char *path, struct vsk_prog_info *out)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fstat(fd, &st) == 0 ? vsk_classify_elf(fd_read, &fd, (uint64_t)st.st_size, out) : -1;
	close(fd);
	return rc;
}

static void test_elf_synthetic(void)
{
	struct elf_spec dyn = { .is64 = true, .machine = NATIVE_EM, .type = ET_DYN,
				.interp = "/lib64/ld-linux-x86-64.so.2", .magic_at = -1 };
	struct elf_spec s;
	struct vsk_prog_info pi;

	build_elf(&dyn);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_DYNAMIC && !pi.go &&
		      !pi.foreign_arch && !strcmp(pi.interp, dyn.interp),
	      "elf: PT_INTERP makes a dynamic program, with its interpreter");
	s = dyn, s.interp = "/lib/ld-musl-x86_64.so.1", s.sections = true;
	build_elf(&s);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_DYNAMIC && !pi.go &&
		      !strcmp(pi.interp, s.interp),
	      "elf: musl's interpreter, with a section table and no Go");
	s = dyn, s.interp = NULL, s.type = ET_EXEC;
	build_elf(&s);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_STATIC && !pi.go && !pi.interp[0],
	      "elf: ET_EXEC without PT_INTERP is static");
	s.type = ET_DYN;
	build_elf(&s);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_STATIC, "elf: static-pie is static");
	s.type = ET_REL;
	build_elf(&s);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_UNKNOWN, "elf: an object file is unknown");

	/* Go */
	s = dyn, s.interp = NULL, s.type = ET_EXEC, s.sections = s.go_section = true;
	build_elf(&s);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_STATIC && pi.go,
	      "elf: a .go.buildinfo section makes a Go program");
	s.sections = s.go_section = false, s.magic_at = 0x40;
	build_elf(&s);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_STATIC && pi.go,
	      "elf: no section table: the magic in the data segment");
	s.magic_at = 0x48;
	build_elf(&s);
	CHECK(classify_img(&pi) == 0 && !pi.go, "elf: ... only 16-byte aligned");
	s.magic_at = IMG_DATA_LEN - 16;
	build_elf(&s);
	CHECK(classify_img(&pi) == 0 && !pi.go, "elf: ... only with a whole header in the segment");
	s.magic_at = 0x40, s.sections = true;
	build_elf(&s);
	CHECK(classify_img(&pi) == 0 && !pi.go,
	      "elf: a section table without .go.buildinfo is not searched for the magic");
	s.sections = s.go_section = true, s.magic_at = -1;
	build_elf(&s);
	put(img + IMG_SHDRS + 2 * sizeof(Elf64_Shdr), 4, 30, false); /* sh_name past the table */
	CHECK(classify_img(&pi) == 0 && !pi.go, "elf: a section name past .shstrtab is none");
	build_elf(&s);
	put(img + offsetof(Elf64_Ehdr, e_shstrndx), 2, 3, false);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_STATIC && !pi.go,
	      "elf: e_shstrndx out of range: no section table");
	build_elf(&s);
	put(img + offsetof(Elf64_Ehdr, e_shnum), 2, 0, false); /* extended numbering */
	put(img + offsetof(Elf64_Ehdr, e_shstrndx), 2, SHN_XINDEX, false);
	put(img + IMG_SHDRS + offsetof(Elf64_Shdr, sh_size), 8, 3, false);
	put(img + IMG_SHDRS + offsetof(Elf64_Shdr, sh_link), 4, 1, false);
	CHECK(classify_img(&pi) == 0 && pi.go, "elf: extended section numbering");
	build_elf(&s);
	put(img + offsetof(Elf64_Ehdr, e_shnum), 2, 0xffff, false);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_STATIC && !pi.go,
	      "elf: e_shnum past the file: no section table");

	/* Hostile headers */
	build_elf(&dyn);
	put(img + offsetof(Elf64_Ehdr, e_phnum), 2, 0xffff, false);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_UNKNOWN, "elf: e_phnum 65535");
	build_elf(&dyn);
	put(img + offsetof(Elf64_Ehdr, e_phoff), 8, UINT64_MAX - 8, false);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_UNKNOWN, "elf: e_phoff near 2^64");
	build_elf(&dyn);
	put(img + offsetof(Elf64_Ehdr, e_phentsize), 2, 32, false);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_UNKNOWN, "elf: a wrong e_phentsize");
	build_elf(&dyn);
	put(img + sizeof(Elf64_Ehdr) + offsetof(Elf64_Phdr, p_offset), 8, UINT64_MAX, false);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_UNKNOWN, "elf: PT_INTERP past the end");
	build_elf(&dyn);
	img[IMG_INTERP + strlen(dyn.interp)] = 'x';
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_UNKNOWN,
	      "elf: PT_INTERP without its NUL (the kernel refuses it)");
	char long_interp[300];
	memset(long_interp, 'a', sizeof(long_interp) - 1);
	long_interp[0] = '/', long_interp[sizeof(long_interp) - 1] = '\0';
	s = dyn, s.interp = long_interp;
	build_elf(&s);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_DYNAMIC && !pi.interp[0],
	      "elf: an interpreter too long to keep: dynamic, interp empty");

	/* Which libc: the wrapper preloads the library built for it. */
	static const struct {
		const char *interp;
		enum vsk_libc libc;
	} libcs[] = {
		{ "/lib/ld-musl-x86_64.so.1", VSK_LIBC_MUSL },
		{ "/lib/ld-musl-aarch64.so.1", VSK_LIBC_MUSL },
		{ "ld-musl-armhf.so.1", VSK_LIBC_MUSL },
		{ "/usr/local/musl/lib/ld-musl-riscv64.so.1", VSK_LIBC_MUSL },
		{ "/lib64/ld-linux-x86-64.so.2", VSK_LIBC_GLIBC },
		{ "/lib/ld-linux.so.2", VSK_LIBC_GLIBC },
		{ "/lib/ld-linux-aarch64.so.1", VSK_LIBC_GLIBC },
		{ "/lib/ld-linux-armhf.so.3", VSK_LIBC_GLIBC },
		{ "/lib64/ld64.so.2", VSK_LIBC_GLIBC },
		{ "/lib/ld.so.1", VSK_LIBC_GLIBC },
		{ "/nix/store/abc-glibc-2.38/lib/ld-linux-x86-64.so.2", VSK_LIBC_GLIBC },
		{ "/system/bin/linker64", VSK_LIBC_UNKNOWN },
		{ "/lib/ld-musl-", VSK_LIBC_UNKNOWN },      /* nothing after the prefix */
		{ "/lib/ld-musl-x86_64.so.1/", VSK_LIBC_UNKNOWN }, /* a directory */
		{ "/ld-musl-dir/ld-linux-x86-64.so.2", VSK_LIBC_GLIBC }, /* the file name decides */
		{ "/lib/my-ld-musl-x86_64.so.1", VSK_LIBC_UNKNOWN },
		{ "", VSK_LIBC_UNKNOWN },
		{ NULL, VSK_LIBC_UNKNOWN },
	};
	for (size_t i = 0; i < sizeof(libcs) / sizeof(libcs[0]); i++)
		CHECK(vsk_interp_libc(libcs[i].interp) == libcs[i].libc, "elf: libc of \"%s\" is %s",
		      libcs[i].interp ? libcs[i].interp : "(null)", vsk_libc_name(libcs[i].libc));
	s = dyn, s.interp = "/lib/ld-musl-x86_64.so.1";
	build_elf(&s);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_DYNAMIC &&
		      vsk_interp_libc(pi.interp) == VSK_LIBC_MUSL,
	      "elf: a musl program's classified interpreter says musl");
	build_elf(&dyn);
	CHECK(classify_img(&pi) == 0 && vsk_interp_libc(pi.interp) == VSK_LIBC_GLIBC,
	      "elf: a glibc program's classified interpreter says glibc");
	CHECK(!strcmp(vsk_libc_name(VSK_LIBC_MUSL), "musl") &&
		      !strcmp(vsk_libc_name(VSK_LIBC_GLIBC), "glibc") &&
		      !strcmp(vsk_libc_name((enum vsk_libc)99), "unknown libc"),
	      "elf: libc names");

	bool all_unknown = true, ok_at_end = false;
	build_elf(&dyn);
	for (size_t n = 0; n < sizeof(Elf64_Ehdr) + 3 * sizeof(Elf64_Phdr); n++)
		all_unknown &= classify_mem(img, n, n, &pi) == 0 && pi.kind == VSK_PROG_UNKNOWN;
	CHECK(all_unknown, "elf: every truncation of the headers is unknown");
	all_unknown = true;
	for (size_t n = 0; n < sizeof(Elf64_Ehdr) + 3 * sizeof(Elf64_Phdr); n++)
		all_unknown &= classify_mem(img, n, sizeof(img), &pi) == 0 &&
			       pi.kind == VSK_PROG_UNKNOWN;
	CHECK(all_unknown, "elf: ... also when the file is shorter than its stated size");
	ok_at_end = classify_mem(img, IMG_INTERP + 10, IMG_INTERP + 10, &pi) == 0 &&
		    pi.kind == VSK_PROG_UNKNOWN;
	CHECK(ok_at_end, "elf: a truncated interpreter path is unknown");

	struct mem_file failing = { img, sizeof(img), IMG_INTERP, 0 };
	memset(&pi, 0x55, sizeof(pi));
	CHECK(vsk_classify_elf(mem_read, &failing, sizeof(img), &pi) == -1 &&
		      pi.kind == VSK_PROG_UNKNOWN && !pi.go && !pi.interp[0],
	      "elf: a read error is -1, and unknown");
	s = dyn, s.interp = NULL, s.magic_at = -1;
	build_elf(&s);
	struct mem_file counted = { img, sizeof(img), UINT64_MAX, 0 };
	vsk_classify_elf(mem_read, &counted, sizeof(img), &pi);
	CHECK(counted.reads <= 2, "elf: a small static file takes %u reads", counted.reads);

	/* Not ELF */
	static const char *const not_elf[] = { "#!/bin/sh\necho hi\n", "", "\177EL",
						"garbage garbage garbage garbage garbage garbage" };
	for (size_t i = 0; i < sizeof(not_elf) / sizeof(not_elf[0]); i++)
		CHECK(classify_mem((const unsigned char *)not_elf[i], strlen(not_elf[i]),
				   strlen(not_elf[i]), &pi) == 0 &&
			      pi.kind == VSK_PROG_UNKNOWN && !pi.foreign_arch,
		      "elf: \"%.*s\" is unknown", (int)strcspn(not_elf[i], "\n\x7f"), not_elf[i]);
	build_elf(&dyn);
	img[EI_CLASS] = 3;
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_UNKNOWN, "elf: a bad EI_CLASS");

	/* Other machines */
	s = dyn, s.is64 = false, s.machine = EM_386, s.interp = "/lib/ld-linux.so.2";
	build_elf(&s);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_DYNAMIC && pi.foreign_arch &&
		      !strcmp(pi.interp, s.interp),
	      "elf: i386 is foreign (and read)");
	s.machine = EM_X86_64, s.interp = "/libx32/ld-linux-x32.so.2", s.sections = true,
	s.go_section = true;
	build_elf(&s);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_DYNAMIC && pi.foreign_arch && pi.go,
	      "elf: x32 is foreign, its sections read");
	s = dyn, s.machine = OTHER_EM, s.interp = "/lib/ld-linux-other.so.1";
	build_elf(&s);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_DYNAMIC && pi.foreign_arch &&
		      !strcmp(pi.interp, s.interp),
	      "elf: %s is foreign", OTHER_EM == EM_AARCH64 ? "aarch64" : "x86-64");
	s = dyn, s.big = true, s.machine = EM_S390, s.interp = NULL, s.magic_at = 0;
	build_elf(&s);
	CHECK(classify_img(&pi) == 0 && pi.kind == VSK_PROG_STATIC && pi.foreign_arch && pi.go,
	      "elf: big-endian s390x is foreign, read too");
}

/* Is the ELF file at path built for another machine than this test?  An
 * arm64 build run under qemu-aarch64 on an x86-64 host sees x86-64 files. */
static bool other_machine(const char *path)
{
#if defined(__x86_64__)
	const unsigned native = EM_X86_64;
#elif defined(__aarch64__)
	const unsigned native = EM_AARCH64;
#else
	const unsigned native = EM_NONE;
#endif
	unsigned char h[20];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, h, sizeof(h)) : -1;

	if (fd >= 0)
		close(fd);
	/* little-endian files only: every program listed below is */
	return n == (ssize_t)sizeof(h) && (unsigned)(h[18] | h[19] << 8) != native;
}

/* Real programs, when installed (the Go ones by make deps / make). */
static void test_elf_real(void)
{
	static const struct {
		const char *path;
		enum vsk_prog_kind kind;
		bool go;
	} progs[] = {
		{ "/bin/true", VSK_PROG_DYNAMIC, false },
		{ "/bin/busybox", VSK_PROG_STATIC, false }, /* busybox-static */
		{ "/usr/bin/hey", VSK_PROG_DYNAMIC, true },
		{ "build/helpers/go/gonet", VSK_PROG_STATIC, true },
		{ "build/helpers/go/gonet-cgo", VSK_PROG_DYNAMIC, true },
	};
	struct vsk_prog_info pi;

	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		int rc = classify_path(progs[i].path, &pi);

		if (rc < 0 && access(progs[i].path, F_OK) != 0) {
			CHECK(1, "elf: %s # skip not installed", progs[i].path);
			continue;
		}
		bool foreign = other_machine(progs[i].path);
		CHECK(rc == 0 && pi.kind == progs[i].kind && pi.go == progs[i].go &&
			      pi.foreign_arch == foreign,
		      "elf: %s is %s%s%s (got kind %d go %d foreign %d interp %s)", progs[i].path,
		      progs[i].kind == VSK_PROG_DYNAMIC ? "dynamic" : "static",
		      progs[i].go ? ", Go" : "", foreign ? ", another machine's" : "",
		      rc == 0 ? (int)pi.kind : -1, pi.go, pi.foreign_arch, pi.interp);
	}
	CHECK(classify_path("/bin/true", &pi) == 0 && pi.interp[0] == '/',
	      "elf: /bin/true's interpreter is %s", pi.interp);
	const char *script = "tests/run-all.sh";
	CHECK(access(script, F_OK) != 0 ||
		      (classify_path(script, &pi) == 0 && pi.kind == VSK_PROG_UNKNOWN),
	      "elf: a script is unknown");
}

static void test_script_interp(void)
{
	static const struct {
		const char *head;
		const char *interp; /* NULL: -1 */
	} cases[] = {
		{ "#!/bin/sh\n", "/bin/sh" },
		{ "#! /usr/bin/env python3\n", "/usr/bin/env" },
		{ "#!\t/bin/bash -e\n", "/bin/bash" },
		{ "#!/bin/sh", "/bin/sh" }, /* a file this short ends the path */
		{ "#!\n", NULL },
		{ "#!   ", NULL },
		{ "# /bin/sh\n", NULL },
		{ "\177ELF", NULL },
		{ "", NULL },
	};
	char out[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = vsk_script_interp(cases[i].head, strlen(cases[i].head), out, sizeof(out));

		CHECK(cases[i].interp ? n == (int)strlen(cases[i].interp) && !strcmp(out, cases[i].interp)
				      : n == -1,
		      "script: \"%.*s\" -> %s", (int)strcspn(cases[i].head, "\n\x7f"),
		      cases[i].head, cases[i].interp ? cases[i].interp : "-1");
	}
	char full[VSK_SCRIPT_HEAD];
	memset(full, 'a', sizeof(full));
	memcpy(full, "#!/", 3);
	CHECK(vsk_script_interp(full, sizeof(full), out, sizeof(out)) == -1,
	      "script: a path filling the whole head may be cut off: -1");
	CHECK(vsk_script_interp("#!/bin/bash\n", 12, out, 9) == -1 &&
		      vsk_script_interp("#!/bin/bash\n", 12, out, 10) == 9,
	      "script: the path must fit with its NUL");
}

int main(void)
{
	test_dns();
	test_rules_parse();
	test_rules_sources();
	test_rules_match();
	test_route();
	test_shown();
	test_shown_local_cid();
	test_ranges_in_use();
	test_tcp_options();
	test_names();
	test_fake_addresses();
	test_ports_and_errors();
	test_config();
	test_elf_synthetic();
	test_elf_real();
	test_script_interp();
	printf("1..%d\n", n_tests);
	return n_failed ? 1 : 0;
}
