/* The resolver hooks, linked in: this binary's getaddrinfo, getnameinfo,
 * gethostbyname2_r and gethostbyaddr_r are the shim's, and reach libc
 * through dlsym(RTLD_NEXT) as they do under LD_PRELOAD.
 * Input: "NODE\nSERVICE\n", then flags (4 bytes), family, socktype,
 * protocol, options, getnameinfo flags, buffer size (1 byte each).
 * Options: bit 0 no node, bit 1 no service, bit 2 no hints.
 *
 * Nothing here may reach DNS or create a socket (fuzz_forbid_sockets turns
 * either into a crash): only vsock-*.local names go to the hooks as names;
 * everything else is numeric, with the glibc features that open sockets
 * for numeric input (AI_ADDRCONFIG, scope ids, sorting two addresses:
 * RFC 3484 connects a UDP socket to each) off. */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <strings.h>

#include "core/core.h"
#include "fuzz.h"

static const int families[] = { AF_UNSPEC, AF_INET, AF_INET6, AF_UNIX, AF_VSOCK, -1 };
static const int socktypes[] = { 0, SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET,
				 SOCK_STREAM | SOCK_NONBLOCK, 99 };
static const int protocols[] = { 0, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, IPPROTO_MPTCP, -1 };
#define PICK(table, byte) ((table)[(byte) % (sizeof(table) / sizeof((table)[0]))])

/* Shaped like ours (vsock-*.local[.]), decided here rather than by the
 * parser under test: anything else asked as a name could go to DNS. */
static bool ours_shaped(const char *node)
{
	size_t len = node ? strlen(node) : 0;

	if (len && node[len - 1] == '.')
		len--;
	return len >= 12 && strncasecmp(node, "vsock-", 6) == 0 &&
	       strncasecmp(node + len - 6, ".local", 6) == 0;
}

/* Whether glibc answers this service without /etc/services (or nscd).
 * It reads a service with strtoul: a partial read is a name (refused at once
 * under AI_NUMERICSERV), but a full read that does not fit an int ("-1")
 * is looked up by name even under AI_NUMERICSERV. */
static bool local_service(const char *s, bool numericserv)
{
	char *end;
	unsigned long port = strtoul(s, &end, 10);

	return *end ? numericserv : port <= 65535;
}

/* The name the hooks report for a CID: lower case, no trailing dot, short,
 * and naming the same CID. */
static void check_canonical(const char *name, uint32_t cid)
{
	size_t len = name ? strlen(name) : 0;
	uint32_t back = ~cid;

	FUZZ_CHECK(len > 0 && len < VSK_NAME_MAX && name[len - 1] != '.');
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK(!isupper((unsigned char)name[i]));
	FUZZ_CHECK(vsk_parse_name(name, &back) == VSK_NAME_CID && back == cid);
}

static const struct vsk_fake_net *fake_net(void)
{
	static struct vsk_fake_net net;

	if (!net.prefix4)
		vsk_fake_net_default(&net); /* VSOCKIFY_FAKE_NET* are unset */
	return &net;
}

static void check_hostent(const struct hostent *he, int af, uint32_t cid)
{
	uint32_t back;

	FUZZ_CHECK(he->h_addrtype == af && he->h_length == (af == AF_INET ? 4 : 16));
	FUZZ_CHECK(he->h_addr_list[0] && !he->h_addr_list[1] && !he->h_aliases[0]);
	FUZZ_CHECK(vsk_decode_raw(fake_net(), af, he->h_addr_list[0], &back) == VSK_ADDR_OK);
	FUZZ_CHECK(back == cid);
	check_canonical(he->h_name, cid);
}

/* Reverse lookups of one of our answers give its vsock name. */
static void check_reverse(const struct addrinfo *ai, uint32_t cid, int ni_flags, size_t buflen)
{
	char name[VSK_NAME_MAX], serv[NI_MAXSERV];
	char *host = malloc(buflen), *buf = malloc(buflen);
	const void *raw = ai->ai_family == AF_INET
				  ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
				  : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
	struct hostent he, *result = NULL;
	int herr, rc;
	size_t n = (size_t)vsk_format_name(cid, name, sizeof(name));

	rc = getnameinfo(ai->ai_addr, ai->ai_addrlen, host, (socklen_t)buflen, serv,
			 sizeof(serv), ni_flags | NI_NUMERICSERV);
	if (buflen && !(ni_flags & NI_NUMERICHOST)) {
		if (n < buflen)
			FUZZ_CHECK(rc == 0 && strcmp(host, name) == 0);
		else
			FUZZ_CHECK(rc == EAI_OVERFLOW);
	}

	rc = gethostbyaddr_r(raw, ai->ai_family == AF_INET ? 4 : 16, ai->ai_family, &he,
			     buf, buflen, &result, &herr);
	FUZZ_CHECK(rc == 0 ? result == &he : rc == ERANGE && !result);
	if (result) {
		check_hostent(result, ai->ai_family, cid);
		FUZZ_CHECK(strcmp(result->h_name, name) == 0);
	}
	free(host);
	free(buf);
}

static void check_answers(uint32_t cid, const struct addrinfo *hints,
			  const struct addrinfo *res, int ni_flags, size_t buflen)
{
	int family = hints ? hints->ai_family : AF_UNSPEC;

	FUZZ_CHECK(res);
	if (hints && (hints->ai_flags & AI_CANONNAME))
		check_canonical(res->ai_canonname, cid);
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		struct vsk_target t;

		FUZZ_CHECK(ai->ai_family == AF_INET || ai->ai_family == AF_INET6);
		FUZZ_CHECK(family == AF_UNSPEC || ai->ai_family == family);
		FUZZ_CHECK(ai->ai_family == AF_INET6 || vsk_cid_fits4(fake_net(), cid));
		/* The socket the caller asked for, as libc answers any name. */
		if (hints && hints->ai_socktype)
			FUZZ_CHECK(ai->ai_socktype == hints->ai_socktype);
		else
			FUZZ_CHECK(ai->ai_socktype == SOCK_STREAM || ai->ai_socktype == SOCK_DGRAM ||
				   ai->ai_socktype == SOCK_RAW || ai->ai_socktype == SOCK_SEQPACKET);
		if (hints && hints->ai_protocol)
			FUZZ_CHECK(ai->ai_protocol == hints->ai_protocol);
		FUZZ_CHECK(vsk_decode_sockaddr(fake_net(), ai->ai_addr, ai->ai_addrlen, &t) ==
			   VSK_ADDR_OK);
		FUZZ_CHECK(t.cid == cid && t.family != VSK_APP_MAPPED);
		check_reverse(ai, cid, ni_flags, buflen);
	}
}

/* gethostbyname2_r of one of our names, into a buffer of buflen bytes. */
static void check_byname(const char *node, int af, size_t buflen)
{
	char *buf = malloc(buflen);
	struct hostent he, *result = NULL;
	uint32_t cid = 0;
	enum vsk_name_kind kind = vsk_parse_name(node, &cid);
	int herr = 0;
	int rc = gethostbyname2_r(node, af, &he, buf, buflen, &result, &herr);

	FUZZ_CHECK(kind != VSK_NAME_NOT_OURS);
	if (kind == VSK_NAME_MALFORMED) {
		FUZZ_CHECK(rc == 0 && !result && herr == HOST_NOT_FOUND);
	} else if (af != AF_INET && af != AF_INET6) {
		FUZZ_CHECK(rc == EAFNOSUPPORT && !result);
	} else if (af == AF_INET && !vsk_cid_fits4(fake_net(), cid)) {
		FUZZ_CHECK(rc == 0 && !result && herr == NO_DATA);
	} else if (rc == 0) {
		FUZZ_CHECK(result == &he);
		check_hostent(result, af, cid);
	} else {
		FUZZ_CHECK(rc == ERANGE && !result);
	}
	free(buf);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("VSOCKIFY_LOG", "off", 1); /* malformed names would log per run */
	fuzz_forbid_sockets();
	return 0;
}

struct query {
	char *node, *service; /* NULL: none */
	struct addrinfo hints;
	bool use_hints;
};

/* The rules of the file comment.  For our names the hooks still see the
 * fuzzed query, apart from AI_NUMERICSERV. */
static void make_safe(struct query *q, bool ours)
{
	struct addrinfo *h = &q->hints;

	h->ai_flags |= AI_NUMERICSERV;
	if (!ours) {
		h->ai_flags |= AI_NUMERICHOST;
		if (q->node)
			q->node[strcspn(q->node, "%")] = '\0';
		/* No node (glibc: or "*") with AF_UNSPEC is two addresses. */
		if ((!q->node || strcmp(q->node, "*") == 0) && h->ai_family != AF_INET6)
			h->ai_family = AF_INET;
	}
	if (h->ai_flags & AI_NUMERICHOST)
		h->ai_flags &= ~AI_ADDRCONFIG;
	/* NULL hints mean AI_ADDRCONFIG to libc, and no AI_NUMERICSERV. */
	if (!ours || (q->service && !local_service(q->service, false)))
		q->use_hints = true;
	if (q->service && !local_service(q->service, true))
		q->service = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	char *node = fuzz_str(&in, '\n'), *service = fuzz_str(&in, '\n');
	struct query q = { node, service, { .ai_flags = (int)fuzz_u32(&in) }, true };
	q.hints.ai_family = PICK(families, fuzz_u8(&in));
	q.hints.ai_socktype = PICK(socktypes, fuzz_u8(&in));
	q.hints.ai_protocol = PICK(protocols, fuzz_u8(&in));
	uint8_t opts = fuzz_u8(&in);
	int ni_flags = fuzz_u8(&in) & 0x3f;
	size_t buflen = fuzz_u8(&in);

	if (opts & 1)
		q.node = NULL;
	if (opts & 2)
		q.service = NULL;
	q.use_hints = !(opts & 4);
	bool ours = ours_shaped(q.node);
	make_safe(&q, ours);

	const struct addrinfo *h = q.use_hints ? &q.hints : NULL;
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(q.node, q.service, h, &res);
	uint32_t cid = 0;
	enum vsk_name_kind kind = vsk_parse_name(q.node, &cid);
	int family = h ? h->ai_family : AF_UNSPEC;

	if (ours && !(h && (h->ai_flags & AI_NUMERICHOST))) {
		FUZZ_CHECK(kind != VSK_NAME_NOT_OURS);
		if (kind == VSK_NAME_MALFORMED)
			FUZZ_CHECK(rc == EAI_NONAME);
		else if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
			FUZZ_CHECK(rc == EAI_FAMILY);
		else if (family == AF_INET && !vsk_cid_fits4(fake_net(), cid))
			/* libc's verdict on the hints and service comes first, as
			 * for any name (a name under AI_NUMERICSERV: EAI_NONAME) */
			FUZZ_CHECK(rc == EAI_ADDRFAMILY || rc == EAI_SOCKTYPE ||
				   rc == EAI_SERVICE || rc == EAI_BADFLAGS || rc == EAI_NONAME);
		else if (rc == 0)
			check_answers(cid, h, res, ni_flags, buflen);
	}
	if (rc == 0)
		freeaddrinfo(res);
	if (ours)
		check_byname(q.node, q.hints.ai_family, buflen);
	free(node);
	free(service);
	return 0;
}
