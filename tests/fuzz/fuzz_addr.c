/* The address codec: fake ranges, sockaddr encode/decode, copy-out, ports.
 * Input: "CIDR4\nCIDR6\n" (an empty line keeps the default), then a CID
 * (4 bytes), a vsock port (4), a copy-out buffer size (1), and the rest is
 * an arbitrary sockaddr of exactly that length. */
#include "core/core.h"
#include "fuzz.h"

static bool same_net(const struct vsk_fake_net *a, const struct vsk_fake_net *b)
{
	return a->base4 == b->base4 && a->prefix4 == b->prefix4 &&
	       a->prefix6 == b->prefix6 && !memcmp(&a->base6, &b->base6, sizeof(a->base6));
}

/* A rejected CIDR leaves the range as it was: the config falls back on it. */
static void set_net(struct vsk_fake_net *net, const char *cidr, bool v6)
{
	struct vsk_fake_net before = *net;

	if (!*cidr)
		return;
	if ((v6 ? vsk_fake_net_set6 : vsk_fake_net_set4)(net, cidr) != 0)
		FUZZ_CHECK(same_net(net, &before));
	fuzz_check_net(net);
}

/* The address and port in sa are exactly what encoding t gives back. */
static void check_reencodes(const struct vsk_fake_net *net, const struct sockaddr *sa,
			    const struct vsk_target *t)
{
	struct sockaddr_storage ss;

	vsk_encode_sockaddr(net, t->family, t->cid, t->port, &ss);
	FUZZ_CHECK(ss.ss_family == sa->sa_family);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa, *b = (const void *)&ss;
		FUZZ_CHECK(t->family == VSK_APP_INET4);
		FUZZ_CHECK(a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr);
	} else {
		const struct sockaddr_in6 *a = (const void *)sa, *b = (const void *)&ss;
		FUZZ_CHECK(t->family == VSK_APP_INET6 || t->family == VSK_APP_MAPPED);
		FUZZ_CHECK(a->sin6_port == b->sin6_port &&
			   !memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)));
	}
}

/* Every CID encodes and decodes back in each family where it fits. */
static void check_round_trip(const struct vsk_fake_net *net, uint32_t cid, uint32_t vport)
{
	static const enum vsk_app_family fams[] = { VSK_APP_INET4, VSK_APP_INET6, VSK_APP_MAPPED };

	for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
		struct sockaddr_storage ss;
		struct sockaddr *sa = (struct sockaddr *)&ss;
		struct vsk_target t = { 0 };
		socklen_t len = vsk_encode_sockaddr(net, fams[i], cid, vport, &ss);
		bool fits = fams[i] == VSK_APP_INET6 || vsk_cid_fits4(net, cid);

		FUZZ_CHECK(len == (fams[i] == VSK_APP_INET4 ? sizeof(struct sockaddr_in)
							    : sizeof(struct sockaddr_in6)));
		enum vsk_decode_result r = vsk_decode_sockaddr(net, sa, len, &t);
		if (fits) {
			FUZZ_CHECK(r == VSK_ADDR_OK && t.cid == cid && t.family == fams[i]);
			FUZZ_CHECK(t.port == vsk_fold_port(vport));
		} else {
			FUZZ_CHECK(r == VSK_ADDR_INVALID);
		}
		FUZZ_CHECK(vsk_decode_sockaddr(net, sa, len - 1, &t) == VSK_ADDR_NOT_OURS);
	}
}

static void check_fold(uint32_t vport)
{
	uint16_t p = vsk_fold_port(vport);

	if (vport == VSK_PORT_ANY)
		FUZZ_CHECK(p == 0);
	else if (vport <= 0xFFFFu)
		FUZZ_CHECK(p == vport);
	else
		FUZZ_CHECK(p >= 49152u);
}

/* Arbitrary bytes never crash, and whatever decodes re-encodes exactly. */
static void check_arbitrary(const struct vsk_fake_net *net, const uint8_t *p, size_t n)
{
	struct sockaddr *sa = malloc(n); /* exact size: ASan sees overreads */
	struct vsk_target t;
	uint32_t cid;

	memcpy(sa, p, n);
	if (vsk_decode_sockaddr(net, sa, (socklen_t)n, &t) == VSK_ADDR_OK)
		check_reencodes(net, sa, &t);
	free(sa);

	if (n >= 4 && vsk_decode_raw(net, AF_INET, p, &cid) == VSK_ADDR_OK) {
		struct in_addr a = vsk_encode4(net, cid);
		FUZZ_CHECK(!memcmp(&a, p, 4));
	}
	if (n >= 16 && vsk_decode_raw(net, AF_INET6, p, &cid) == VSK_ADDR_OK) {
		struct in6_addr a;
		memcpy(&a, p, 16);
		if (IN6_IS_ADDR_V4MAPPED(&a)) {
			struct in_addr a4 = vsk_encode4(net, cid);
			FUZZ_CHECK(!memcmp(&a4, &a.s6_addr[12], 4));
		} else {
			struct in6_addr b = vsk_encode6(net, cid);
			FUZZ_CHECK(!memcmp(&a, &b, 16));
		}
	}
	if (n >= 16)
		FUZZ_CHECK(vsk_decode_raw(net, AF_UNIX, p, &cid) == VSK_ADDR_NOT_OURS);
}

/* Kernel truncation rule: at most *len bytes copied, full length reported. */
static void check_copy_out(const struct vsk_fake_net *net, uint32_t cid, size_t dst_len)
{
	struct sockaddr_storage full;
	socklen_t full_len = vsk_encode_sockaddr(net, VSK_APP_INET6, cid, 1, &full);
	struct sockaddr *dst = malloc(dst_len);
	socklen_t len = (socklen_t)dst_len;

	vsk_copy_out_addr(&full, full_len, dst, &len);
	FUZZ_CHECK(len == full_len);
	FUZZ_CHECK(!memcmp(dst, &full, dst_len < full_len ? dst_len : full_len));
	free(dst);
	len = (socklen_t)dst_len;
	vsk_copy_out_addr(&full, full_len, NULL, &len);
	FUZZ_CHECK(len == full_len);
	vsk_copy_out_addr(&full, full_len, NULL, NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct vsk_fake_net net;
	struct vsk_target t;

	(void)argc;
	(void)argv;
	fuzz_forbid_sockets();
	vsk_fake_net_default(&net);
	fuzz_check_net(&net);
	FUZZ_CHECK(vsk_decode_sockaddr(&net, NULL, 0, &t) == VSK_ADDR_NOT_OURS);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct vsk_fake_net net;
	char *cidr4 = fuzz_str(&in, '\n');
	char *cidr6 = fuzz_str(&in, '\n');
	uint32_t cid = fuzz_u32(&in);
	uint32_t vport = fuzz_u32(&in);
	size_t dst_len = fuzz_u8(&in) % (sizeof(struct sockaddr_storage) + 1);

	vsk_fake_net_default(&net);
	set_net(&net, cidr4, false);
	set_net(&net, cidr6, true);
	free(cidr4);
	free(cidr6);

	check_round_trip(&net, cid, vport);
	check_round_trip(&net, VSK_CID_ANY, vport);
	check_fold(vport);
	check_arbitrary(&net, in.p, in.n);
	check_copy_out(&net, cid, dst_len);
	return 0;
}
