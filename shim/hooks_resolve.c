/* Interposers for name resolution.  Names outside vsock-*.local go to libc
 * untouched.  Ours never reach DNS or mDNS: valid ones become numeric fake
 * addresses that libc itself turns into results (so libc's freeaddrinfo
 * frees what libc built), malformed ones fail at once. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shim.h"

/* glibc's h_errno for "see errno"; musl's <netdb.h> has no such value. */
#ifndef NETDB_INTERNAL
#define NETDB_INTERNAL (-1)
#endif

/* Built-in vsock-*.local names first (no rule can redefine them), then
 * name rules, which make a name an alias of its CID's built-in name. */
static enum vsk_name_kind classify_name(const char *name, uint32_t *cid)
{
	enum vsk_name_kind kind = vsk_parse_name(name, cid);
	int rule;

	if (kind != VSK_NAME_NOT_OURS || !name)
		return kind;
	kind = vsk_name_lookup(vsk_rules(), name, cid, &rule);
	if (rule >= 0)
		vsk_log(VSK_LOG_DEBUG, "name \"%.80s\" is vsock CID %u by rule %d", name, *cid,
			rule + 1);
	return kind;
}

/* The canonical form of a name we resolved: lower case, no trailing dot,
 * and CIDs in plain decimal ("vsock-3.local" for "VSOCK-0003.local."), so
 * it is never longer than VSK_NAME_MAX.  A rule's name is an alias: its
 * canonical name is the CID's own. */
static void canonical_name(const char *name, uint32_t cid, char *out, size_t outlen)
{
	size_t i = 0;
	const char *label = name + sizeof("vsock-") - 1;

	if (strncasecmp(name, "vsock-", 6) != 0 || (*label >= '0' && *label <= '9')) {
		if (vsk_format_name(cid, out, outlen) < 0 && outlen)
			out[0] = '\0';
		return;
	}
	for (; name[i] && i + 1 < outlen; i++) /* a keyword: short */
		out[i] = (char)tolower((unsigned char)name[i]);
	if (i > 0 && out[i - 1] == '.')
		i--;
	out[i] = '\0';
}

static void log_malformed(const char *fn, const char *name)
{
	vsk_log(VSK_LOG_WARN, "%s(\"%.80s\"): not a valid vsock name; expected "
		"vsock-<CID>.local with CID 0..4294967294, or vsock-host/local/"
		"hypervisor/any.local", fn, name);
}

/* Which fake address answers a lookup for cid in family af (0: any). */
static int pick_family(int af, uint32_t cid)
{
	bool fits4 = vsk_cid_fits4(&vsk_cfg->net, cid);

	if (af == AF_INET6)
		return AF_INET6;
	if (af == AF_INET)
		return fits4 ? AF_INET : 0;
	return fits4 ? AF_INET : AF_INET6;
}

static void fake_raw(int af, uint32_t cid, void *out)
{
	if (af == AF_INET) {
		struct in_addr a = vsk_encode4(&vsk_cfg->net, cid);
		memcpy(out, &a, sizeof(a));
	} else {
		struct in6_addr a = vsk_encode6(&vsk_cfg->net, cid);
		memcpy(out, &a, sizeof(a));
	}
}

/* One numeric lookup by libc, so libc allocates what libc frees. */
static int numeric_lookup(int af, uint32_t cid, const char *service,
			  const struct addrinfo *h, struct addrinfo **res)
{
	char numeric[INET6_ADDRSTRLEN];
	unsigned char raw[16];
	struct addrinfo hh = *h;

	fake_raw(af, cid, raw);
	inet_ntop(af, raw, numeric, sizeof(numeric));
	hh.ai_family = af;
	return vsk_real.getaddrinfo(numeric, service, &hh, res);
}

/* A CID too large for the IPv4 fake range, asked for as AF_INET.  libc
 * judges the socket type, protocol and service before it looks a name up,
 * so a bad one of those is the error, as it would be for any name. */
static int no_ipv4_fake(const char *node, uint32_t cid, const char *service,
			const struct addrinfo *h)
{
	struct addrinfo *probe = NULL;
	int rc = numeric_lookup(AF_INET6, cid, service, h, &probe);

	if (rc != 0)
		return rc;
	freeaddrinfo(probe);
	vsk_log(VSK_LOG_WARN, "getaddrinfo(\"%.80s\"): CID %u does not fit the "
		"IPv4 fake range; ask for AF_INET6 or AF_UNSPEC", node, cid);
	return EAI_ADDRFAMILY;
}

VSK_EXPORT int getaddrinfo(const char *node, const char *service,
			   const struct addrinfo *hints, struct addrinfo **res)
{
	struct addrinfo h = { 0 };
	uint32_t cid;
	int af, rc;
	enum vsk_name_kind kind;

	vsk_init();
	kind = classify_name(node, &cid);
	/* AI_NUMERICHOST means "never look this up": libc answers exactly. */
	if (kind == VSK_NAME_NOT_OURS || (hints && (hints->ai_flags & AI_NUMERICHOST)))
		return vsk_real.getaddrinfo(node, service, hints, res);
	if (kind == VSK_NAME_MALFORMED) {
		log_malformed("getaddrinfo", node);
		return EAI_NONAME;
	}
	if (hints) {
		h.ai_flags = hints->ai_flags;
		h.ai_family = hints->ai_family;
		h.ai_socktype = hints->ai_socktype;
		h.ai_protocol = hints->ai_protocol;
	}
	if (h.ai_family != AF_UNSPEC && h.ai_family != AF_INET && h.ai_family != AF_INET6)
		return EAI_FAMILY;
	/* The socket type and protocol stay the caller's: a name resolves
	 * whatever socket it is for (nmap's tools ask with SOCK_DGRAM for one
	 * answer per address, then dial TCP), and libc's numeric lookup gives
	 * the entries, or the EAI_SOCKTYPE/EAI_SERVICE, it gives any name.
	 * Only a TCP socket can become vsock; UDP to the fake gets EPROTOTYPE
	 * at connect/sendto.  Address configuration is irrelevant to vsock. */
	h.ai_flags = (h.ai_flags & ~(AI_ADDRCONFIG | AI_V4MAPPED | AI_ALL)) | AI_NUMERICHOST;
#ifdef __GLIBC__
	h.ai_flags &= ~AI_CANONNAME; /* set below with our name */
#endif
	af = pick_family(h.ai_family, cid);
	if (!af)
		return no_ipv4_fake(node, cid, service, &h);
	rc = numeric_lookup(af, cid, service, &h, res);
	if (rc != 0)
		return rc;
#ifdef __GLIBC__
	/* Like a dual-stack host, AF_UNSPEC answers IPv4 first, then IPv6
	 * (curl -6 filters an AF_UNSPEC answer).  glibc allocates each entry
	 * on its own, so its freeaddrinfo frees the joined list. */
	if (h.ai_family == AF_UNSPEC && af == AF_INET) {
		struct addrinfo *tail = *res, *v6 = NULL;
		while (tail->ai_next)
			tail = tail->ai_next;
		if (numeric_lookup(AF_INET6, cid, service, &h, &v6) == 0)
			tail->ai_next = v6;
	}
	/* glibc frees ai_canonname separately with free(). */
	if (hints && (hints->ai_flags & AI_CANONNAME)) {
		char canon[VSK_NAME_MAX];
		canonical_name(node, cid, canon, sizeof(canon));
		free((*res)->ai_canonname);
		if (!((*res)->ai_canonname = strdup(canon))) {
			freeaddrinfo(*res);
			*res = NULL;
			return EAI_MEMORY;
		}
	}
#endif
	vsk_log(VSK_LOG_DEBUG, "getaddrinfo(\"%s\") -> CID %u", node, cid);
	return 0;
}

/* ---- hostent-style lookups ------------------------------------------------ */

/* Lay out a one-address hostent in buf.  Returns 0 or ERANGE. */
static int fill_hostent(struct hostent *he, char *buf, size_t buflen,
			const char *name, int af, const void *addr)
{
	size_t alen = af == AF_INET ? 4 : 16;
	size_t nlen = strlen(name) + 1;
	size_t ptrs = 3 * sizeof(char *); /* aliases[1], addr_list[2] */
	uintptr_t p = (uintptr_t)buf;
	size_t pad = (sizeof(char *) - p % sizeof(char *)) % sizeof(char *);

	if (!buf || buflen < pad + ptrs + 16 + nlen)
		return ERANGE;
	char **aliases = (char **)(void *)(buf + pad);
	char **addrs = aliases + 1;
	char *addr_copy = (char *)(addrs + 2);
	char *name_copy = addr_copy + 16;

	memcpy(addr_copy, addr, alen);
	memcpy(name_copy, name, nlen);
	aliases[0] = NULL;
	addrs[0] = addr_copy;
	addrs[1] = NULL;
	he->h_name = name_copy;
	he->h_aliases = aliases;
	he->h_addrtype = af;
	he->h_length = (int)alen;
	he->h_addr_list = addrs;
	return 0;
}

/* Shared body of the forward lookups: 0 with *result set, or an errno-style
 * failure with *herr set. */
static int forward_lookup(const char *name, uint32_t cid, int af,
			  struct hostent *he, char *buf, size_t buflen,
			  struct hostent **result, int *herr)
{
	unsigned char raw[16];
	char canon[VSK_NAME_MAX];

	*result = NULL;
	if (af != AF_INET && af != AF_INET6) {
		*herr = NETDB_INTERNAL;
		return EAFNOSUPPORT;
	}
	if (af == AF_INET && !vsk_cid_fits4(&vsk_cfg->net, cid)) {
		*herr = NO_DATA;
		return 0;
	}
	fake_raw(af, cid, raw);
	canonical_name(name, cid, canon, sizeof(canon));
	if (fill_hostent(he, buf, buflen, canon, af, raw) != 0) {
		*herr = NETDB_INTERNAL;
		return ERANGE;
	}
	*herr = 0;
	*result = he;
	return 0;
}

static __thread struct hostent static_he;
static __thread char static_buf[512];

static struct hostent *forward_static(const char *fn, const char *name, int af,
				      struct hostent *(*pass)(const char *, int))
{
	struct hostent *result;
	uint32_t cid;
	int herr, err;

	switch (classify_name(name, &cid)) {
	case VSK_NAME_NOT_OURS:
		return pass(name, af);
	case VSK_NAME_MALFORMED:
		log_malformed(fn, name);
		h_errno = HOST_NOT_FOUND;
		return NULL;
	case VSK_NAME_CID:
		break;
	}
	err = forward_lookup(name, cid, af, &static_he, static_buf,
			     sizeof(static_buf), &result, &herr);
	if (err)
		errno = err;
	h_errno = herr;
	return result;
}

static struct hostent *pass_byname(const char *name, int af)
{
	(void)af;
	return vsk_real.gethostbyname(name);
}

static struct hostent *pass_byname2(const char *name, int af)
{
	return vsk_real.gethostbyname2(name, af);
}

VSK_EXPORT struct hostent *gethostbyname(const char *name)
{
	vsk_init();
	return forward_static("gethostbyname", name, AF_INET, pass_byname);
}

VSK_EXPORT struct hostent *gethostbyname2(const char *name, int af)
{
	vsk_init();
	return forward_static("gethostbyname2", name, af, pass_byname2);
}

static int forward_r(const char *fn, const char *name, int af,
		     struct hostent *he, char *buf, size_t buflen,
		     struct hostent **result, int *herr, uint32_t cid, bool malformed)
{
	int err;

	if (malformed) {
		log_malformed(fn, name);
		*result = NULL;
		*herr = HOST_NOT_FOUND;
		return 0;
	}
	err = forward_lookup(name, cid, af, he, buf, buflen, result, herr);
	if (err)
		errno = err;
	return err;
}

VSK_EXPORT int gethostbyname_r(const char *name, struct hostent *he, char *buf,
			       size_t buflen, struct hostent **result, int *herr)
{
	uint32_t cid;
	enum vsk_name_kind kind;

	vsk_init();
	kind = classify_name(name, &cid);
	if (kind == VSK_NAME_NOT_OURS)
		return vsk_real.gethostbyname_r(name, he, buf, buflen, result, herr);
	return forward_r("gethostbyname_r", name, AF_INET, he, buf, buflen, result,
			 herr, cid, kind == VSK_NAME_MALFORMED);
}

VSK_EXPORT int gethostbyname2_r(const char *name, int af, struct hostent *he,
				char *buf, size_t buflen, struct hostent **result,
				int *herr)
{
	uint32_t cid;
	enum vsk_name_kind kind;

	vsk_init();
	kind = classify_name(name, &cid);
	if (kind == VSK_NAME_NOT_OURS)
		return vsk_real.gethostbyname2_r(name, af, he, buf, buflen, result, herr);
	return forward_r("gethostbyname2_r", name, af, he, buf, buflen, result,
			 herr, cid, kind == VSK_NAME_MALFORMED);
}

/* ---- reverse lookups ------------------------------------------------------ */

static bool reverse_cid(const void *addr, socklen_t len, int af, uint32_t *cid)
{
	if (!addr || !((af == AF_INET && len == 4) || (af == AF_INET6 && len == 16)))
		return false;
	return vsk_decode_raw(&vsk_cfg->net, af, addr, cid) == VSK_ADDR_OK;
}

VSK_EXPORT struct hostent *gethostbyaddr(const void *addr, socklen_t len, int af)
{
	char name[VSK_NAME_MAX];
	uint32_t cid;

	vsk_init();
	if (!reverse_cid(addr, len, af, &cid))
		return vsk_real.gethostbyaddr(addr, len, af);
	vsk_format_name(cid, name, sizeof(name));
	if (fill_hostent(&static_he, static_buf, sizeof(static_buf), name, af, addr) != 0) {
		h_errno = NETDB_INTERNAL;
		return NULL;
	}
	return &static_he;
}

VSK_EXPORT int gethostbyaddr_r(const void *addr, socklen_t len, int af,
			       struct hostent *he, char *buf, size_t buflen,
			       struct hostent **result, int *herr)
{
	char name[VSK_NAME_MAX];
	uint32_t cid;

	vsk_init();
	if (!reverse_cid(addr, len, af, &cid))
		return vsk_real.gethostbyaddr_r(addr, len, af, he, buf, buflen, result, herr);
	vsk_format_name(cid, name, sizeof(name));
	*result = NULL;
	if (fill_hostent(he, buf, buflen, name, af, addr) != 0) {
		*herr = NETDB_INTERNAL;
		errno = ERANGE;
		return ERANGE;
	}
	*herr = 0;
	*result = he;
	return 0;
}

VSK_EXPORT int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host,
			   socklen_t hostlen, char *serv, socklen_t servlen, int flags)
{
	char name[VSK_NAME_MAX];
	struct vsk_target t;
	int rc, n;

	vsk_init();
	if (!host || hostlen == 0 || (flags & NI_NUMERICHOST) ||
	    vsk_decode_sockaddr(&vsk_cfg->net, sa, salen, &t) != VSK_ADDR_OK)
		return vsk_real.getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
	n = vsk_format_name(t.cid, name, sizeof(name));
	if (n < 0 || (socklen_t)n >= hostlen)
		return EAI_OVERFLOW;
	if (serv && servlen) {
		rc = vsk_real.getnameinfo(sa, salen, NULL, 0, serv, servlen, flags);
		if (rc != 0)
			return rc;
	}
	memcpy(host, name, (size_t)n + 1);
	return 0;
}
