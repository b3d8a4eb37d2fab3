/* The supervisor's DNS answers (docs/supervisor.md, "Names"): a query for
 * one of our names is answered here, anything else is forwarded unchanged.
 * Every read is bounded by the packet, every write by the reply buffer:
 * the input comes from the program and may be anything. */
#include <string.h>
#include <strings.h>

#include "core.h"

#define HDR 12
#define T_A 1
#define T_AAAA 28
#define T_ANY 255
#define C_IN 1
#define TTL 10 /* seconds: the fakes never change, but rules may at the next start */

static unsigned get16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The question's name as text (labels joined by '.', no trailing dot) and
 * the offset just after QNAME.  Compression is refused: a query names its
 * question in full.  -1 if malformed. */
static long read_qname(const uint8_t *q, size_t qlen, char *name, size_t cap)
{
	size_t off = HDR, n = 0;

	for (;;) {
		if (off >= qlen)
			return -1;
		unsigned len = q[off++];
		if (!len)
			break;
		if (len > 63 || off + len > qlen || n + len + 2 > cap)
			return -1;
		if (n)
			name[n++] = '.';
		for (unsigned i = 0; i < len; i++) {
			uint8_t c = q[off + i];
			if (c == '.' || c == 0)
				return -1; /* would read as another name */
			name[n++] = (char)c;
		}
		off += len;
	}
	name[n] = '\0';
	return (long)off;
}

/* The end of the single question, or -1: what a reply copies back. */
static long question_end(const uint8_t *q, size_t qlen, char *name, size_t cap,
			 unsigned *qtype, unsigned *qclass)
{
	long off;

	if (qlen < HDR || get16(q + 4) != 1)
		return -1;
	if ((off = read_qname(q, qlen, name, cap)) < 0 || (size_t)off + 4 > qlen)
		return -1;
	*qtype = get16(q + off);
	*qclass = get16(q + off + 2);
	return off + 4;
}

/* Header and question of a reply to q, with rcode and no records yet. */
static size_t start_reply(const uint8_t *q, size_t qend, unsigned rcode, uint8_t *out)
{
	memcpy(out, q, qend);
	/* QR, opcode 0, AA, RD copied; RA (Go takes AA=0 RA=0 NOERROR with
	 * no answer for a lame referral). */
	out[2] = (uint8_t)(0x84 | (q[2] & 0x01));
	out[3] = (uint8_t)(0x80 | (rcode & 0x0f));
	put16(out + 6, 0);
	put16(out + 8, 0);
	put16(out + 10, 0);
	return qend;
}

static size_t add_record(uint8_t *out, size_t n, unsigned type, const void *data, unsigned len)
{
	uint8_t *r = out + n;

	put16(r, 0xc000 | HDR); /* the question's name */
	put16(r + 2, type);
	put16(r + 4, C_IN);
	r[6] = 0, r[7] = 0, r[8] = 0, r[9] = TTL;
	put16(r + 10, len);
	memcpy(r + 12, data, len);
	put16(out + 6, get16(out + 6) + 1);
	return n + 12 + len;
}

enum vsk_dns_verdict vsk_dns_respond(const struct vsk_fake_net *net, const struct vsk_rules *rs,
				     const uint8_t *q, size_t qlen, uint8_t *out, size_t cap,
				     size_t *outlen)
{
	char name[256];
	unsigned qtype, qclass;
	uint32_t cid;
	long qend;
	size_t n;

	*outlen = 0;
	if (qlen < HDR)
		return VSK_DNS_DROP;
	/* Only a plain query (QR 0, opcode 0) for exactly one name can be
	 * ours; anything else, malformed included, is the nameserver's. */
	if ((q[2] & 0xf8) != 0 ||
	    (qend = question_end(q, qlen, name, sizeof(name), &qtype, &qclass)) < 0)
		return VSK_DNS_FORWARD;
	enum vsk_name_kind kind = vsk_name_lookup(rs, name, &cid, NULL);
	if (kind == VSK_NAME_NOT_OURS)
		return VSK_DNS_FORWARD;
	if (cap < (size_t)qend + 2 * (12 + 16))
		return VSK_DNS_DROP;
	if (qclass != C_IN && qclass != T_ANY) {
		*outlen = start_reply(q, (size_t)qend, 5 /* REFUSED */, out);
		return VSK_DNS_ANSWER;
	}
	if (kind == VSK_NAME_MALFORMED) { /* the library's EAI_NONAME */
		*outlen = start_reply(q, (size_t)qend, 3 /* NXDOMAIN */, out);
		return VSK_DNS_ANSWER;
	}
	/* One family per CID, as the library's getaddrinfo answers AF_UNSPEC:
	 * IPv4 when the CID fits the IPv4 fakes, else IPv6.  Both would reach
	 * the same CID, but a program given both may dial each (happy
	 * eyeballs) and shows a different address than under the library. */
	bool fits4 = vsk_cid_fits4(net, cid);
	n = start_reply(q, (size_t)qend, 0, out);
	if ((qtype == T_A || qtype == T_ANY) && fits4) {
		struct in_addr a = vsk_encode4(net, cid);
		n = add_record(out, n, T_A, &a, 4);
	}
	if ((qtype == T_AAAA || qtype == T_ANY) && !fits4) {
		struct in6_addr a = vsk_encode6(net, cid);
		n = add_record(out, n, T_AAAA, &a, 16);
	}
	*outlen = n;
	return VSK_DNS_ANSWER;
}

int vsk_dns_servfail(const uint8_t *q, size_t qlen, uint8_t *out, size_t cap, size_t *outlen)
{
	char name[256];
	unsigned qtype, qclass;
	long qend = question_end(q, qlen, name, sizeof(name), &qtype, &qclass);

	if (qend < 0 || (size_t)qend > cap)
		return -1;
	*outlen = start_reply(q, (size_t)qend, 2 /* SERVFAIL */, out);
	out[2] &= (uint8_t)~0x04; /* not authoritative */
	return 0;
}
