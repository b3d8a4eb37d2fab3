/* TCP/IP socket options on a socket that is really vsock.
 *
 * vsock refuses IPPROTO_TCP/IP/IPV6 options, but a TCP app expects them to
 * work.  For the options apps use, this table holds the kernel's own rules
 * (size, range, normalisation) and Linux's defaults, so they need no fd and
 * no syscall.  Rules from net/ipv4/tcp.c, ip_sockglue.c, ipv6_sockglue.c. */
#include <errno.h>
#include <limits.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <string.h>

#include "core.h"

enum kind {
	BOOLEAN, /* any int; reads back 0 or 1 */
	RANGE,   /* min..max, else EINVAL */
	TOS,     /* IP_TOS on a stream socket: the ECN bits stay the kernel's */
	TCLASS,  /* -1..255, -1 meaning the default 0 */
	FIXED,   /* read only here (v6only: fixed once bound, and ours are) */
};

static const struct rule {
	int level, optname;
	enum kind kind;
	int min, max, dflt;
} rules[] = {
	{ IPPROTO_TCP, TCP_NODELAY, BOOLEAN, 0, 0, 0 },
	{ IPPROTO_TCP, TCP_CORK, BOOLEAN, 0, 0, 0 },
	{ IPPROTO_TCP, TCP_QUICKACK, BOOLEAN, 0, 0, 1 },
	{ IPPROTO_TCP, TCP_KEEPIDLE, RANGE, 1, 32767, 7200 },
	{ IPPROTO_TCP, TCP_KEEPINTVL, RANGE, 1, 32767, 75 },
	{ IPPROTO_TCP, TCP_KEEPCNT, RANGE, 1, 127, 9 },
	{ IPPROTO_TCP, TCP_SYNCNT, RANGE, 1, 127, 6 },
	{ IPPROTO_TCP, TCP_USER_TIMEOUT, RANGE, 0, INT_MAX, 0 },
	{ IPPROTO_TCP, TCP_NOTSENT_LOWAT, RANGE, INT_MIN, INT_MAX, -1 },
	{ IPPROTO_TCP, TCP_MAXSEG, RANGE, 0, 32767, 536 },
	{ IPPROTO_IP, IP_TOS, TOS, 0, 0, 0 },
	{ IPPROTO_IPV6, IPV6_TCLASS, TCLASS, -1, 255, 0 },
	{ IPPROTO_IPV6, IPV6_V6ONLY, FIXED, 0, 0, 0 },
};

static const struct rule *find_rule(int level, int optname)
{
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i].level == level && rules[i].optname == optname)
			return &rules[i];
	return NULL;
}

static bool level_fits(int level, bool inet6)
{
	return level == IPPROTO_TCP || level == IPPROTO_IP ||
	       (level == IPPROTO_IPV6 && inet6);
}

int vsk_tcpopt_set(int level, int optname, bool inet6, const void *val,
		   socklen_t len, int *normalized)
{
	const struct rule *r = find_rule(level, optname);
	int v;

	if (!r)
		return -1;
	if (!level_fits(level, inet6))
		return ENOPROTOOPT;
	if (r->kind == FIXED)
		return EINVAL;
	if (len < sizeof(int))
		return EINVAL;
	memcpy(&v, val, sizeof(v));
	switch (r->kind) {
	case BOOLEAN:
		v = v != 0;
		break;
	case RANGE:
		if (v < r->min || v > r->max)
			return EINVAL;
		if (optname == TCP_MAXSEG && v && v < 88)
			return EINVAL; /* TCP_MIN_MSS */
		break;
	case TOS:
		v &= 0xfc; /* IPTOS_ECN_MASK bits belong to the kernel */
		break;
	case TCLASS:
		if (v < -1 || v > 255)
			return EINVAL;
		if (v == -1)
			v = 0;
		break;
	case FIXED:
		break;
	}
	*normalized = v;
	return 0;
}

int vsk_tcpopt_default(int level, int optname, bool inet6, int *value)
{
	const struct rule *r = find_rule(level, optname);

	if (!r)
		return -1;
	if (!level_fits(level, inet6))
		return ENOPROTOOPT;
	*value = r->dflt;
	return 0;
}
