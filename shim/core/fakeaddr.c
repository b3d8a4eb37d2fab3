/* Fake IP addresses that carry a vsock CID.
 *
 * The CID lives in the address itself, so any process (a child, an exec'd
 * program, a config file) decodes it without shared state.  See
 * docs/design.md for the ranges and what a leaked address does. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define DEFAULT_NET4 "127.128.0.0/9"
#define DEFAULT_NET6 "100::7673:6f63:0:0/96"

static int split_cidr(const char *cidr, char *addr, size_t addr_len,
		      unsigned *prefix)
{
	const char *slash = strchr(cidr, '/');
	char *end;
	unsigned long p;

	if (!slash || (size_t)(slash - cidr) >= addr_len || !slash[1])
		return -1;
	memcpy(addr, cidr, (size_t)(slash - cidr));
	addr[slash - cidr] = '\0';
	p = strtoul(slash + 1, &end, 10);
	if (*end || p > 128)
		return -1;
	*prefix = (unsigned)p;
	return 0;
}

int vsk_fake_net_set4(struct vsk_fake_net *net, const char *cidr)
{
	char addr[INET_ADDRSTRLEN];
	struct in_addr a;
	unsigned prefix;
	uint32_t base, host_mask;

	if (split_cidr(cidr, addr, sizeof(addr), &prefix) != 0 ||
	    inet_pton(AF_INET, addr, &a) != 1 || prefix < 8 || prefix > 24)
		return -1;
	base = ntohl(a.s_addr);
	host_mask = (1u << (32 - prefix)) - 1u;
	if (base & host_mask)
		return -1;
	/* Never claim addresses in real use: "this network" (0/8), the
	 * loopback addresses programs really use (127.0.0.1, Debian's
	 * 127.0.1.1, resolvers on 127.0.0.53: all in 127.0.0.0/16), and
	 * multicast, reserved and broadcast (224/3). */
	static const struct { uint32_t net; unsigned prefix; } in_use[] = {
		{ 0x00000000u, 8 }, { 0x7f000000u, 16 }, { 0xe0000000u, 3 },
	};
	for (size_t i = 0; i < sizeof(in_use) / sizeof(in_use[0]); i++) {
		unsigned p = prefix < in_use[i].prefix ? prefix : in_use[i].prefix;
		if ((base >> (32 - p)) == (in_use[i].net >> (32 - p)))
			return -1;
	}
	net->base4 = base;
	net->prefix4 = prefix;
	return 0;
}

int vsk_fake_net_set6(struct vsk_fake_net *net, const char *cidr)
{
	char addr[INET6_ADDRSTRLEN];
	struct in6_addr a;
	unsigned prefix;

	if (split_cidr(cidr, addr, sizeof(addr), &prefix) != 0 ||
	    inet_pton(AF_INET6, addr, &a) != 1 || prefix < 16 || prefix > 96)
		return -1;
	/* Host bits must be zero, and the prefix must not be v4-mapped space. */
	for (unsigned bit = prefix; bit < 128; bit++)
		if (a.s6_addr[bit / 8] & (0x80u >> (bit % 8)))
			return -1;
	if (IN6_IS_ADDR_V4MAPPED(&a) || IN6_IS_ADDR_UNSPECIFIED(&a))
		return -1;
	/* Nor a range holding ::1, v4-mapped space, link-local or multicast. */
	static const struct { unsigned char first[2]; unsigned prefix; } in_use6[] = {
		{ { 0x00, 0x00 }, 16 }, { { 0xfe, 0x80 }, 10 }, { { 0xff, 0x00 }, 8 },
	};
	for (size_t i = 0; i < sizeof(in_use6) / sizeof(in_use6[0]); i++) {
		unsigned p = prefix < in_use6[i].prefix ? prefix : in_use6[i].prefix;
		unsigned top = ((unsigned)a.s6_addr[0] << 8) | a.s6_addr[1];
		unsigned used = ((unsigned)in_use6[i].first[0] << 8) | in_use6[i].first[1];
		if ((top >> (16 - p)) == (used >> (16 - p)))
			return -1;
	}
	net->base6 = a;
	net->prefix6 = prefix;
	return 0;
}

void vsk_fake_net_default(struct vsk_fake_net *net)
{
	memset(net, 0, sizeof(*net));
	vsk_fake_net_set4(net, DEFAULT_NET4);
	vsk_fake_net_set6(net, DEFAULT_NET6);
}

bool vsk_cid_fits4(const struct vsk_fake_net *net, uint32_t cid)
{
	return cid == VSK_CID_ANY || cid < VSK_V4_OFFSET_UNREPRESENTABLE(net);
}

struct in_addr vsk_encode4(const struct vsk_fake_net *net, uint32_t cid)
{
	uint32_t offset;
	struct in_addr a;

	if (cid == VSK_CID_ANY)
		offset = VSK_V4_OFFSET_ANY(net);
	else if (cid < VSK_V4_OFFSET_UNREPRESENTABLE(net))
		offset = cid;
	else
		offset = VSK_V4_OFFSET_UNREPRESENTABLE(net);
	a.s_addr = htonl(net->base4 + offset);
	return a;
}

struct in6_addr vsk_encode6(const struct vsk_fake_net *net, uint32_t cid)
{
	struct in6_addr a = net->base6;
	uint32_t be = htonl(cid);

	memcpy(&a.s6_addr[12], &be, 4);
	return a;
}

static enum vsk_decode_result decode4(const struct vsk_fake_net *net,
				      uint32_t host_order, uint32_t *cid)
{
	uint32_t offset = host_order - net->base4;

	if ((host_order >> (32 - net->prefix4)) != (net->base4 >> (32 - net->prefix4)))
		return VSK_ADDR_NOT_OURS;
	if (offset == VSK_V4_OFFSET_ANY(net))
		*cid = VSK_CID_ANY;
	else if (offset == VSK_V4_OFFSET_UNREPRESENTABLE(net))
		return VSK_ADDR_INVALID;
	else
		*cid = offset;
	return VSK_ADDR_OK;
}

static enum vsk_decode_result decode6(const struct vsk_fake_net *net,
				      const struct in6_addr *a, uint32_t *cid)
{
	uint32_t be;
	unsigned bit;

	for (bit = 0; bit + 8 <= net->prefix6; bit += 8)
		if (a->s6_addr[bit / 8] != net->base6.s6_addr[bit / 8])
			return VSK_ADDR_NOT_OURS;
	for (; bit < net->prefix6; bit++) {
		unsigned m = 0x80u >> (bit % 8);
		if ((a->s6_addr[bit / 8] & m) != (net->base6.s6_addr[bit / 8] & m))
			return VSK_ADDR_NOT_OURS;
	}
	/* Inside the prefix, only the low 32 bits may vary. */
	for (; bit < 96; bit++)
		if (a->s6_addr[bit / 8] & (0x80u >> (bit % 8)))
			return VSK_ADDR_INVALID;
	memcpy(&be, &a->s6_addr[12], 4);
	*cid = ntohl(be);
	return VSK_ADDR_OK;
}

enum vsk_decode_result vsk_decode_raw(const struct vsk_fake_net *net, int af,
				      const void *addr, uint32_t *cid)
{
	if (af == AF_INET) {
		uint32_t be;
		memcpy(&be, addr, 4);
		return decode4(net, ntohl(be), cid);
	}
	if (af == AF_INET6) {
		struct in6_addr a;
		memcpy(&a, addr, sizeof(a));
		if (IN6_IS_ADDR_V4MAPPED(&a))
			return vsk_decode_raw(net, AF_INET, &a.s6_addr[12], cid);
		return decode6(net, &a, cid);
	}
	return VSK_ADDR_NOT_OURS;
}

enum vsk_decode_result vsk_decode_sockaddr(const struct vsk_fake_net *net,
					   const struct sockaddr *sa,
					   socklen_t len,
					   struct vsk_target *out)
{
	enum vsk_decode_result r;

	if (!sa || len < sizeof(sa_family_t))
		return VSK_ADDR_NOT_OURS;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)sa;
		r = vsk_decode_raw(net, AF_INET, &in->sin_addr, &out->cid);
		out->port = ntohs(in->sin_port);
		out->family = VSK_APP_INET4;
		return r;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		r = vsk_decode_raw(net, AF_INET6, &in6->sin6_addr, &out->cid);
		out->port = ntohs(in6->sin6_port);
		out->family = IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) ? VSK_APP_MAPPED
								    : VSK_APP_INET6;
		return r;
	}
	return VSK_ADDR_NOT_OURS;
}

socklen_t vsk_encode_sockaddr(const struct vsk_fake_net *net,
			      enum vsk_app_family fam, uint32_t cid,
			      uint32_t vport, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (fam == VSK_APP_INET4) {
		struct sockaddr_in *in = (void *)out;
		in->sin_family = AF_INET;
		in->sin_port = htons(vsk_fold_port(vport));
		in->sin_addr = vsk_encode4(net, cid);
		return sizeof(*in);
	}
	struct sockaddr_in6 *in6 = (void *)out;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(vsk_fold_port(vport));
	if (fam == VSK_APP_MAPPED) {
		struct in_addr v4 = vsk_encode4(net, cid);
		in6->sin6_addr.s6_addr[10] = 0xff;
		in6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&in6->sin6_addr.s6_addr[12], &v4, 4);
	} else {
		in6->sin6_addr = vsk_encode6(net, cid);
	}
	return sizeof(*in6);
}

void vsk_copy_out_addr(const void *full, socklen_t full_len,
		       struct sockaddr *dst, socklen_t *len)
{
	if (!len)
		return;
	if (dst)
		memcpy(dst, full, *len < full_len ? *len : full_len);
	*len = full_len;
}

/* Ports that fit are shown as they are; the kernel's random 32-bit
 * ephemeral ports land in the IANA dynamic range 49152-65535. */
uint16_t vsk_fold_port(uint32_t vport)
{
	if (vport == VSK_PORT_ANY)
		return 0;
	if (vport <= 0xFFFFu)
		return (uint16_t)vport;
	return (uint16_t)(49152u + vport % 16384u);
}

uint32_t vsk_connect_cid(uint32_t cid)
{
	return cid == VSK_CID_ANY ? VSK_CID_LOCAL : cid;
}
