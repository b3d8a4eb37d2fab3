/* The rule language (docs/rules.md): parsing, the lookup index, and the
 * normalised form.  A source is added all or nothing, and the table is
 * only read once start-up is over. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h"

#define NAME_MAX_LEN 253
#define ADDR_TOKEN_MAX 64 /* longer than any IPv6 address with port */
#define MAX_RULES (1u << 20) /* the index must fit the socket mark's 24 bits */

/* ---- memory ---------------------------------------------------------------- */

/* The library builds the table when a lookup first needs it, which may be
 * in a signal handler that interrupted malloc (holding its lock).  So the
 * table lives in mmap'd memory: mmap, mremap and munmap take no lock. */
static void *region_resize(void *p, size_t old_bytes, size_t new_bytes)
{
	void *q = p ? mremap(p, old_bytes, new_bytes, MREMAP_MAYMOVE)
		    : mmap(NULL, new_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);

	return q == MAP_FAILED ? NULL : q;
}

static void region_free(void *p, size_t bytes)
{
	if (p)
		munmap(p, bytes);
}

/* strerror may translate, and so lock; the plain description does not. */
static const char *error_text(int err)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
	const char *s = strerrordesc_np(err);
	return s ? s : "unknown error";
#else
	return strerror(err);
#endif
}

/* ---- small helpers --------------------------------------------------------- */

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* A token as shown in a message: quoted, cut short, bytes escaped. */
static const char *quote(const char *s, size_t n, char *buf, size_t len)
{
	size_t o = 0, shown = n > 40 ? 40 : n;

	buf[o++] = '\'';
	for (size_t i = 0; i < shown && o + 6 < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\'')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
	}
	if (shown < n && o + 4 < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '\'';
	buf[o] = '\0';
	return buf;
}

/* Strict decimal in [lo, hi]; no sign, no blanks. */
static int parse_uint(const char *s, size_t n, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > 0xffffffffffull)
			return -1;
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* ---- the lookup index ------------------------------------------------------ */

struct key {
	uint8_t kind;
	bool any_addr, any_port, wildcard;
	uint16_t port;
	uint32_t cid; /* hybrid rules only */
	const unsigned char *addr; /* 16 bytes, or NULL for names */
	const char *name;
	size_t name_len;
};

static struct key key_of(const struct vsk_rules *rs, const struct vsk_rule *r)
{
	struct key k = { .kind = r->kind, .any_addr = r->any_addr, .any_port = r->any_port,
			 .wildcard = r->wildcard, .port = r->port };

	if (r->kind == VSK_RULE_NAME) {
		k.name = rs->names + r->name_off;
		k.name_len = r->name_len;
	} else if (r->kind == VSK_RULE_HYBRID) {
		k.cid = r->cid;
	} else {
		k.addr = r->addr;
	}
	return k;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h = (h ^ v) * 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 29);
}

/* Start-up parses every rule, so the hash works a word at a time. */
static uint32_t key_hash(const struct key *k)
{
	uint64_t h = (uint64_t)k->kind << 48 | (uint64_t)k->port << 32 |
		     (uint64_t)(k->any_addr | k->any_port << 1 | k->wildcard << 2);

	h = mix(mix(0x243f6a8885a308d3ull, h), k->cid);
	if (k->addr) {
		uint64_t w[2];
		memcpy(w, k->addr, 16);
		h = mix(mix(h, w[0]), w[1]);
	}
	for (size_t i = 0; i < k->name_len; i++)
		h = mix(h, (unsigned char)lower(k->name[i]));
	/* A multiply only carries upwards: fold the high bits down (the
	 * finaliser of MurmurHash3), as the index uses the low ones. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return (uint32_t)h;
}

static bool key_equal(const struct key *a, const struct key *b)
{
	if (a->kind != b->kind || a->any_addr != b->any_addr || a->any_port != b->any_port ||
	    a->wildcard != b->wildcard || a->port != b->port || a->cid != b->cid ||
	    a->name_len != b->name_len)
		return false;
	if (a->addr && memcmp(a->addr, b->addr, 16) != 0)
		return false;
	for (size_t i = 0; i < a->name_len; i++)
		if (lower(a->name[i]) != lower(b->name[i]))
			return false;
	return true;
}

/* The rule with this exact key (hash h), or -1. */
static int index_find_hashed(const struct vsk_rules *rs, const struct key *k, uint32_t h)
{
	uint32_t mask = rs->nslots - 1, i;

	if (!rs->nslots)
		return -1;
	for (i = h & mask; rs->slot[i]; i = (i + 1) & mask) {
		struct key other = key_of(rs, &rs->rule[rs->slot[i] - 1]);
		if (key_equal(k, &other))
			return (int)(rs->slot[i] - 1);
	}
	return -1;
}

static int index_find(const struct vsk_rules *rs, const struct key *k)
{
	return rs->nslots ? index_find_hashed(rs, k, key_hash(k)) : -1;
}

static void index_put_hashed(struct vsk_rules *rs, uint32_t idx, uint32_t h)
{
	uint32_t mask = rs->nslots - 1, i;

	for (i = h & mask; rs->slot[i]; i = (i + 1) & mask)
		;
	rs->slot[i] = idx + 1;
}

static void index_put(struct vsk_rules *rs, uint32_t idx)
{
	struct key k = key_of(rs, &rs->rule[idx]);

	index_put_hashed(rs, idx, key_hash(&k));
}

/* Rebuild for the first n rules, at most half full.  0 or ENOMEM. */
static int index_rebuild(struct vsk_rules *rs, uint32_t want)
{
	uint32_t nslots = 64;
	uint32_t *slot;

	while (nslots < 2 * want)
		nslots *= 2;
	slot = region_resize(NULL, 0, nslots * sizeof(*slot)); /* zero-filled */
	if (!slot)
		return ENOMEM;
	region_free(rs->slot, rs->nslots * sizeof(*slot));
	rs->slot = slot;
	rs->nslots = nslots;
	for (uint32_t i = 0; i < rs->n; i++)
		index_put(rs, i);
	return 0;
}

/* ---- parsing one rule ------------------------------------------------------- */

struct parse {
	struct vsk_rules *rs;
	vsk_rules_report_fn report;
	void *ctx;
	enum vsk_rules_source kind;
	const char *label;
	unsigned long number; /* line, or rule in a list */
	int problems;
};

__attribute__((format(printf, 2, 3))) static void problem(struct parse *p, const char *fmt, ...)
{
	char msg[VSK_RULE_MSG_MAX];
	int n = p->kind == VSK_SRC_ARGS
			? snprintf(msg, sizeof(msg), "%.200s: ", p->label)
			: snprintf(msg, sizeof(msg),
				   p->kind == VSK_SRC_FILE ? "%.200s:%lu: " : "%.200s: rule %lu: ",
				   p->label, p->number);
	va_list ap;

	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(msg))
		vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	p->problems++;
	if (p->report)
		p->report(p->ctx, msg);
}

struct tok {
	const char *s;
	size_t n;
};

static bool tok_is(struct tok t, const char *word)
{
	return strlen(word) == t.n && memcmp(t.s, word, t.n) == 0;
}

static const struct {
	const char *word;
	uint32_t cid;
} cid_words[] = {
	{ "hypervisor", VSK_CID_HYPERVISOR },
	{ "local", VSK_CID_LOCAL },
	{ "host", VSK_CID_HOST },
	{ "any", VSK_CID_ANY },
};

static int parse_target(struct parse *p, struct tok t, struct vsk_rule *r)
{
	char q[64];
	const char *s = t.s, *colon;
	size_t n = t.n, cn;
	uint64_t v;

	if (n < 6 || strncmp(s, "vsock:", 6) != 0) {
		problem(p, "target %s must look like vsock:CID or vsock:CID:PORT",
			quote(t.s, t.n, q, sizeof(q)));
		return -1;
	}
	s += 6;
	n -= 6;
	colon = memchr(s, ':', n);
	cn = colon ? (size_t)(colon - s) : n;
	r->cid = 0;
	bool named = false;
	for (size_t i = 0; i < sizeof(cid_words) / sizeof(cid_words[0]); i++) {
		if (strlen(cid_words[i].word) == cn && strncasecmp(s, cid_words[i].word, cn) == 0) {
			r->cid = cid_words[i].cid;
			named = true;
		}
	}
	if (!named) {
		if (parse_uint(s, cn, 0, VSK_CID_ANY - 1, &v) != 0) {
			problem(p, "CID %s is not a number from 0 to 4294967294, or hypervisor, "
				"local, host or any", quote(s, cn, q, sizeof(q)));
			return -1;
		}
		r->cid = (uint32_t)v;
	}
	r->vport = 0;
	if (colon) {
		const char *ps = colon + 1;
		size_t pn = n - cn - 1;
		if (parse_uint(ps, pn, 1, 65535, &v) != 0) {
			problem(p, "port %s in the target is not a number from 1 to 65535",
				quote(ps, pn, q, sizeof(q)));
			return -1;
		}
		r->vport = (uint32_t)v;
	}
	return 0;
}

static int parse_port(struct parse *p, const char *s, size_t n, struct vsk_rule *r)
{
	char q[64];
	uint64_t v;

	if (parse_uint(s, n, 1, 65535, &v) != 0) {
		problem(p, "port %s is not a number from 1 to 65535", quote(s, n, q, sizeof(q)));
		return -1;
	}
	r->port = (uint16_t)v;
	r->any_port = false;
	return 0;
}

/* "a.b.c.d[:P]", "[v6][:P]", and for listen "*[:P]". */
static int parse_addr(struct parse *p, struct tok t, bool listen, struct vsk_rule *r)
{
	char q[64], buf[ADDR_TOKEN_MAX + 1];
	const char *s = t.s, *end = t.s + t.n, *port = NULL;
	size_t n;

	r->any_port = true;
	r->port = 0;
	if (t.n > ADDR_TOKEN_MAX)
		goto bad;
	if (s[0] == '*') {
		if (!listen) {
			problem(p, "'*' (any address) is only for listen rules; connect needs an IP address");
			return -1;
		}
		r->any_addr = true;
		if (t.n == 1)
			return 0;
		if (s[1] != ':')
			goto bad;
		return parse_port(p, s + 2, t.n - 2, r);
	}
	if (s[0] == '[') {
		const char *close = memchr(s, ']', t.n);
		if (!close) {
			problem(p, "%s: '[' without a closing ']'", quote(t.s, t.n, q, sizeof(q)));
			return -1;
		}
		n = (size_t)(close - s - 1);
		memcpy(buf, s + 1, n);
		buf[n] = '\0';
		if (close + 1 < end) {
			if (close[1] != ':')
				goto bad;
			port = close + 2;
		}
		r->af = AF_INET6;
		if (inet_pton(AF_INET6, buf, r->addr) != 1)
			goto bad;
	} else {
		const char *colon = memchr(s, ':', t.n);
		bool v6 = colon && memchr(colon + 1, ':', (size_t)(end - colon - 1));
		if (memchr(s, ']', t.n))
			goto bad;
		n = v6 || !colon ? t.n : (size_t)(colon - s);
		memcpy(buf, s, n);
		buf[n] = '\0';
		if (v6) {
			/* "fd00::5:80": an address, or fd00::5 port 80?  Brackets
			 * say which, so they are required. */
			problem(p, "IPv6 address %s needs brackets: [ADDRESS] or [ADDRESS]:PORT",
				quote(t.s, t.n, q, sizeof(q)));
			return -1;
		} else {
			struct in_addr a4;
			/* inet_pton is strict: four decimal parts, no shorthand. */
			if (inet_pton(AF_INET, buf, &a4) != 1)
				goto bad;
			r->af = AF_INET;
			memset(r->addr, 0, 10);
			r->addr[10] = r->addr[11] = 0xff;
			memcpy(r->addr + 12, &a4, 4);
			if (colon)
				port = colon + 1;
		}
	}
	return port ? parse_port(p, port, (size_t)(end - port), r) : 0;
bad:
	problem(p, "%s is not %s", quote(t.s, t.n, q, sizeof(q)),
		listen ? "'*', an IPv4 address or a bracketed IPv6 address, with an optional :PORT"
		       : "an IPv4 address or a bracketed IPv6 address, with an optional :PORT "
			 "(use a name rule for host names)");
	return -1;
}

/* Keep a name or path in the table's pool (a path with its NUL). */
static int pool_add(struct parse *p, const char *s, size_t n, bool name, struct vsk_rule *r)
{
	struct vsk_rules *rs = p->rs;
	size_t need = rs->names_len + n + (name ? 0 : 1);

	if (need > rs->names_cap) {
		size_t cap = rs->names_cap ? rs->names_cap * 2 : 4096;
		char *names;
		while (cap < need)
			cap *= 2;
		if (!(names = region_resize(rs->names, rs->names_cap, cap))) {
			problem(p, "out of memory");
			p->rs->unreadable = ENOMEM;
			return -1;
		}
		rs->names = names;
		rs->names_cap = cap;
	}
	r->name_off = (uint32_t)rs->names_len;
	r->name_len = (uint32_t)n;
	for (size_t i = 0; i < n; i++)
		rs->names[rs->names_len++] = name ? lower(s[i]) : s[i];
	if (!name)
		rs->names[rs->names_len++] = '\0';
	return 0;
}

/* "hybrid CID PATH": the VMM's socket for a Firecracker or Cloud Hypervisor
 * guest (docs/hybrid.md). */
static int parse_hybrid(struct parse *p, struct tok cid, struct tok path, struct vsk_rule *r)
{
	char q[64];
	uint64_t v;

	if (parse_uint(cid.s, cid.n, 0, VSK_CID_ANY - 1, &v) != 0) {
		problem(p, "CID %s is not a number from 0 to 4294967294",
			quote(cid.s, cid.n, q, sizeof(q)));
		return -1;
	}
	r->cid = (uint32_t)v;
	if (memchr(path.s, ';', path.n)) { /* it would split VSOCKIFY_RULES */
		problem(p, "socket path %s contains ';'", quote(path.s, path.n, q, sizeof(q)));
		return -1;
	}
	if (path.s[0] != '/') {
		problem(p, "socket path %s must be absolute", quote(path.s, path.n, q, sizeof(q)));
		return -1;
	}
	if (path.n > VSK_HYBRID_PATH_MAX) {
		problem(p, "socket path %s is longer than %d bytes (a Unix socket path "
			"holds 107, and listeners add \"_PORT\")",
			quote(path.s, path.n, q, sizeof(q)), VSK_HYBRID_PATH_MAX);
		return -1;
	}
	return pool_add(p, path.s, path.n, false, r);
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

static int parse_name(struct parse *p, struct tok t, struct vsk_rule *r)
{
	char q[64], buf[NAME_MAX_LEN + 2];
	const char *s = t.s;
	size_t n = t.n, label = 0;
	unsigned char a[16];
	uint32_t cid;

	r->wildcard = n > 2 && s[0] == '*' && s[1] == '.';
	if (r->wildcard) {
		s += 2;
		n -= 2;
	}
	if (n > 1 && s[n - 1] == '.')
		n--;
	if (n > NAME_MAX_LEN) {
		problem(p, "name %s is longer than %d bytes", quote(t.s, t.n, q, sizeof(q)),
			NAME_MAX_LEN);
		return -1;
	}
	if (n < sizeof(buf)) {
		memcpy(buf, s, n);
		buf[n] = '\0';
		if (inet_pton(AF_INET6, buf, a) == 1 || inet_pton(AF_INET, buf, a) == 1) {
			problem(p, "%s is an address, not a name: use a connect rule",
				quote(t.s, t.n, q, sizeof(q)));
			return -1;
		}
	}
	if (memchr(s, ':', n)) {
		problem(p, "name %s: name rules take no port (a name resolves to an "
			"address; the app's port is kept)", quote(t.s, t.n, q, sizeof(q)));
		return -1;
	}
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (label == 0 || label > 63)
				goto bad;
			label = 0;
		} else if (!is_name_char(s[i])) {
			goto bad;
		} else {
			label++;
		}
	}
	if (!r->wildcard && vsk_parse_name(buf, &cid) != VSK_NAME_NOT_OURS) {
		problem(p, "%s is a built-in vsock name; rules cannot redefine it",
			quote(t.s, t.n, q, sizeof(q)));
		return -1;
	}
	/* Stored lower case, so the normalised form and lookups agree. */
	return pool_add(p, s, n, true, r);
bad:
	problem(p, "%s is not a host name (or '*.' and a domain)",
		quote(t.s, t.n, q, sizeof(q)));
	return -1;
}

static int append_rule(struct parse *p, const struct vsk_rule *r)
{
	struct vsk_rules *rs = p->rs;
	char q[VSK_RULE_TEXT_MAX];
	struct key k;
	uint32_t h;
	int dup;

	if (rs->n >= MAX_RULES) {
		problem(p, "more than %u rules", MAX_RULES);
		return -1;
	}
	if (rs->n == rs->cap) {
		uint32_t cap = rs->cap ? rs->cap * 2 : 64;
		struct vsk_rule *grown = region_resize(rs->rule, rs->cap * sizeof(*grown),
						       cap * sizeof(*grown));
		if (!grown) {
			problem(p, "out of memory");
			p->rs->unreadable = ENOMEM;
			return -1;
		}
		rs->rule = grown;
		rs->cap = cap;
	}
	rs->rule[rs->n] = *r;
	k = key_of(rs, &rs->rule[rs->n]);
	h = key_hash(&k);
	if ((dup = index_find_hashed(rs, &k, h)) >= 0) {
		vsk_rule_format(rs, (uint32_t)dup, q, sizeof(q));
		problem(p, "repeats the match of an earlier rule (%s); the first match wins, "
			"so this one could never apply", q);
		return -1;
	}
	if (2 * (rs->n + 1) > rs->nslots) {
		if (index_rebuild(rs, 2 * (rs->n + 1)) != 0) {
			problem(p, "out of memory");
			p->rs->unreadable = ENOMEM;
			return -1;
		}
		h = key_hash(&k); /* k points into the names, which stay put */
	}
	if (r->kind == VSK_RULE_HYBRID) {
		rs->n_hybrid++;
		rs->last_hybrid = rs->n;
	}
	index_put_hashed(rs, rs->n++, h);
	return 0;
}

/* One rule's text, comment already cut. */
static void parse_rule(struct parse *p, const char *s, size_t n)
{
	struct tok t[4];
	struct vsk_rule r;
	char q[64];
	int nt = 0, rc;

	for (size_t i = 0; i < n;) {
		while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
			i++;
		if (i == n)
			break;
		size_t start = i;
		while (i < n && s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			i++;
		if (nt == 3) {
			problem(p, "unexpected %s after the target",
				quote(s + start, i - start, q, sizeof(q)));
			return;
		}
		t[nt].s = s + start;
		t[nt++].n = i - start;
	}
	if (nt == 0)
		return;
	memset(&r, 0, sizeof(r));
	if (tok_is(t[0], "name"))
		r.kind = VSK_RULE_NAME;
	else if (tok_is(t[0], "connect"))
		r.kind = VSK_RULE_CONNECT;
	else if (tok_is(t[0], "listen"))
		r.kind = VSK_RULE_LISTEN;
	else if (tok_is(t[0], "hybrid"))
		r.kind = VSK_RULE_HYBRID;
	else {
		problem(p, "unknown rule %s (expected name, connect, listen or hybrid)",
			quote(t[0].s, t[0].n, q, sizeof(q)));
		return;
	}
	if (r.kind == VSK_RULE_HYBRID) {
		if (nt < 3)
			problem(p, "expected hybrid CID PATH (the VMM's Unix socket)");
		else if (parse_hybrid(p, t[1], t[2], &r) == 0)
			append_rule(p, &r);
		return;
	}
	if (nt < 3) {
		problem(p, nt == 1 ? "missing the address (or name) and the target"
				   : "missing the target (vsock:CID or vsock:CID:PORT)");
		return;
	}
	rc = r.kind == VSK_RULE_NAME ? parse_name(p, t[1], &r)
				     : parse_addr(p, t[1], r.kind == VSK_RULE_LISTEN, &r);
	if (rc != 0 || parse_target(p, t[2], &r) != 0)
		return;
	if (r.kind == VSK_RULE_NAME && r.vport) {
		problem(p, "a name rule's target takes no port (the app's port is kept)");
		return;
	}
	append_rule(p, &r);
}

static size_t cut_comment(const char *s, size_t n)
{
	const char *hash = memchr(s, '#', n);

	return hash ? (size_t)(hash - s) : n;
}

/* Files hold a rule per line; lists separate them with ';' or a newline
 * (so VSOCKIFY_RULES="$(cat file)" works too). */
static const char *next_separator(const char *s, size_t n, bool list)
{
	if (!list)
		return memchr(s, '\n', n);
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\n' || s[i] == ';')
			return s + i;
	return NULL;
}

int vsk_rules_add(struct vsk_rules *rs, enum vsk_rules_source kind, const char *label,
		  const char *text, size_t len, vsk_rules_report_fn report, void *ctx)
{
	struct parse p = { .rs = rs, .report = report, .ctx = ctx, .kind = kind, .label = label };
	uint32_t n0 = rs->n;
	size_t names0 = rs->names_len;

	for (size_t i = 0; i < len;) {
		const char *end = next_separator(text + i, len - i, kind != VSK_SRC_FILE);
		size_t n = end ? (size_t)(end - (text + i)) : len - i;

		p.number++;
		if (memchr(text + i, '\0', n))
			problem(&p, "contains a NUL byte");
		else
			parse_rule(&p, text + i, cut_comment(text + i, n));
		i += n + (end ? 1 : 0);
	}
	if (p.problems) {
		/* All or nothing: forget what this source added. */
		rs->n = n0;
		rs->names_len = names0;
		rs->n_hybrid = 0;
		for (uint32_t i = 0; i < n0; i++)
			if (rs->rule[i].kind == VSK_RULE_HYBRID)
				rs->n_hybrid++, rs->last_hybrid = i;
		if (index_rebuild(rs, n0) != 0) {
			/* No memory: no rules at all beats wrong ones. */
			rs->nslots = 0, rs->n = 0;
			rs->unreadable = ENOMEM;
		}
	}
	return p.problems;
}

static void report_file(vsk_rules_report_fn report, void *ctx, const char *path,
			const char *what)
{
	char msg[VSK_RULE_MSG_MAX];

	snprintf(msg, sizeof(msg), "%.300s: %s", path, what);
	if (report)
		report(ctx, msg);
}

int vsk_rules_add_file(struct vsk_rules *rs, const char *path, bool missing_ok,
		       vsk_rules_report_fn report, void *ctx)
{
	struct stat st;
	char *text = NULL, why[128];
	size_t got = 0;
	int fd, problems;

	/* O_NONBLOCK: a FIFO named here must not hang start-up. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT && missing_ok)
			return 0;
		if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
			rs->unreadable = errno;
		snprintf(why, sizeof(why), "cannot open: %s", error_text(errno));
		report_file(report, ctx, path, why);
		return 1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		report_file(report, ctx, path,
			    S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
		goto fail;
	}
	if ((unsigned long long)st.st_size > VSK_RULES_FILE_MAX) {
		report_file(report, ctx, path, "larger than 16 MiB");
		goto fail;
	}
	if (!(text = region_resize(NULL, 0, (size_t)st.st_size + 1))) {
		report_file(report, ctx, path, "out of memory");
		rs->unreadable = ENOMEM;
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, text + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(why, sizeof(why), "cannot read: %s", error_text(errno));
			report_file(report, ctx, path, why);
			goto fail;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	/* The raw syscall: inside the library, close() is our own hook. */
	syscall(SYS_close, fd);
	problems = vsk_rules_add(rs, VSK_SRC_FILE, path, text, got, report, ctx);
	region_free(text, (size_t)st.st_size + 1);
	return problems;
fail:
	syscall(SYS_close, fd);
	if (text)
		region_free(text, (size_t)st.st_size + 1);
	return 1;
}

void vsk_rules_free(struct vsk_rules *rs)
{
	region_free(rs->rule, rs->cap * sizeof(*rs->rule));
	region_free(rs->names, rs->names_cap);
	region_free(rs->slot, rs->nslots * sizeof(*rs->slot));
	memset(rs, 0, sizeof(*rs));
}

/* ---- lookups ------------------------------------------------------------------ */

static void min_match(const struct vsk_rules *rs, const struct key *k, int *best)
{
	int i = index_find(rs, k);

	if (i >= 0 && (*best < 0 || i < *best))
		*best = i;
}

int vsk_rules_match_name(const struct vsk_rules *rs, const char *name)
{
	struct key k = { .kind = VSK_RULE_NAME };
	size_t n;
	int best = -1;

	if (!rs->nslots || !name)
		return -1;
	n = strnlen(name, NAME_MAX_LEN + 2);
	if (n > 1 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > NAME_MAX_LEN)
		return -1;
	k.name = name;
	k.name_len = n;
	min_match(rs, &k, &best);
	k.wildcard = true;
	for (size_t i = 0; i < n; i++) {
		if (name[i] != '.')
			continue;
		k.name = name + i + 1;
		k.name_len = n - i - 1;
		min_match(rs, &k, &best);
	}
	return best;
}

int vsk_rules_match_addr(const struct vsk_rules *rs, enum vsk_rule_kind kind,
			 const struct sockaddr *sa, socklen_t len)
{
	unsigned char a[16];
	struct key k = { .kind = (uint8_t)kind, .addr = a };
	int best = -1;

	if (!rs->nslots || !sa || len < sizeof(sa_family_t))
		return -1;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		memset(a, 0, 10);
		a[10] = a[11] = 0xff;
		memcpy(a + 12, &in->sin_addr, 4);
		k.port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		memcpy(a, &in6->sin6_addr, 16);
		k.port = ntohs(in6->sin6_port);
	} else {
		return -1;
	}
	uint16_t port = k.port;
	min_match(rs, &k, &best);
	k.any_port = true;
	k.port = 0;
	min_match(rs, &k, &best);
	if (kind == VSK_RULE_LISTEN) {
		static const unsigned char none[16];
		k.addr = none;
		k.any_addr = true;
		min_match(rs, &k, &best);
		k.any_port = false;
		k.port = port;
		min_match(rs, &k, &best);
	}
	return best;
}

int vsk_rules_hybrid(const struct vsk_rules *rs, uint32_t cid)
{
	struct key k = { .kind = VSK_RULE_HYBRID, .cid = cid };

	return rs->n_hybrid ? index_find(rs, &k) : -1;
}

void vsk_rule_target(const struct vsk_rule *r, uint16_t app_port, uint32_t *cid,
		     uint32_t *vport)
{
	*cid = r->cid;
	*vport = r->vport ? r->vport : app_port;
}

socklen_t vsk_rule_shown_addr(const struct vsk_rule *r, enum vsk_app_family fam,
			      uint16_t port, struct sockaddr_storage *out)
{
	static const unsigned char zero[16], mapped_zero[16] = { [10] = 0xff, [11] = 0xff };
	const unsigned char *a = !r->any_addr ? r->addr : fam == VSK_APP_INET6 ? zero : mapped_zero;

	memset(out, 0, sizeof(*out));
	if (fam == VSK_APP_INET4) {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)out;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		memcpy(&in->sin_addr, a + 12, 4);
		return sizeof(*in);
	}
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)out;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	memcpy(&in6->sin6_addr, a, 16);
	return sizeof(*in6);
}

int vsk_rule_format(const struct vsk_rules *rs, uint32_t i, char *buf, size_t len)
{
	static const char *const kinds[] = { "?", "name", "connect", "listen", "hybrid" };
	const struct vsk_rule *r = &rs->rule[i];
	char match[VSK_RULE_TEXT_MAX - 40], addr[INET6_ADDRSTRLEN], cid[16], port[8] = "";
	bool v4 = r->af == AF_INET;
	int n;

	if (r->kind == VSK_RULE_HYBRID) {
		n = snprintf(buf, len, "hybrid %u %s", r->cid, vsk_rule_path(rs, r));
		return n < 0 || (size_t)n >= len ? -1 : n;
	}
	if (r->kind == VSK_RULE_NAME) {
		snprintf(match, sizeof(match), "%s%.*s", r->wildcard ? "*." : "",
			 (int)r->name_len, rs->names + r->name_off);
	} else {
		if (!r->any_port)
			snprintf(port, sizeof(port), ":%u", r->port);
		if (r->any_addr)
			snprintf(match, sizeof(match), "*%s", port);
		else {
			inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? r->addr + 12 : r->addr, addr,
				  sizeof(addr));
			snprintf(match, sizeof(match), v4 ? "%s%s" : "[%s]%s", addr, port);
		}
	}
	if (r->cid == VSK_CID_ANY)
		snprintf(cid, sizeof(cid), "any");
	else
		snprintf(cid, sizeof(cid), "%u", r->cid);
	n = r->vport ? snprintf(buf, len, "%s %s vsock:%s:%u", kinds[r->kind], match, cid, r->vport)
		     : snprintf(buf, len, "%s %s vsock:%s", kinds[r->kind], match, cid);
	return n < 0 || (size_t)n >= len ? -1 : n;
}
