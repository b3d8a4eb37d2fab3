/* vsockify pure core: names, fake addresses, configuration, errno policy.
 *
 * Nothing here resolves symbols or keeps process state, so every function
 * can be unit-tested directly and called from any hook without locks. */
#ifndef VSOCKIFY_CORE_H
#define VSOCKIFY_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/vm_sockets.h>

#define VSK_CID_HYPERVISOR 0u
#define VSK_CID_LOCAL 1u
#define VSK_CID_HOST 2u
#define VSK_CID_ANY 0xFFFFFFFFu
#define VSK_PORT_ANY 0xFFFFFFFFu

/* Longest name we ever produce: "vsock-4294967295.local" plus NUL. */
#define VSK_NAME_MAX 32

/* ---- names ------------------------------------------------------------- */

enum vsk_name_kind {
	VSK_NAME_NOT_OURS = 0, /* not in the vsock-*.local namespace */
	VSK_NAME_CID,          /* valid: *cid holds the CID (may be VSK_CID_ANY) */
	VSK_NAME_MALFORMED,    /* ours, but not a valid CID or keyword */
};

enum vsk_name_kind vsk_parse_name(const char *name, uint32_t *cid);
/* Canonical name of a CID ("vsock-3.local", "vsock-any.local"). Returns the
 * length written, or -1 if it does not fit. */
int vsk_format_name(uint32_t cid, char *buf, size_t len);

/* ---- fake addresses ------------------------------------------------------ */

/* Which socket family the application believes it uses.  Decides how vsock
 * addresses are shown back to it. */
enum vsk_app_family {
	VSK_APP_INET4 = 1,  /* AF_INET */
	VSK_APP_INET6 = 2,  /* AF_INET6 with the native IPv6 encoding */
	VSK_APP_MAPPED = 3, /* AF_INET6 with an IPv4-mapped fake (::ffff:a.b.c.d) */
};

struct vsk_fake_net {
	uint32_t base4;   /* host byte order, host bits zero */
	unsigned prefix4; /* 8..24 */
	struct in6_addr base6; /* low 32 bits zero */
	unsigned prefix6;      /* 16..96 */
};

/* The IPv4 range keeps its two highest offsets for special values. */
#define VSK_V4_OFFSET_UNREPRESENTABLE(net) ((1u << (32 - (net)->prefix4)) - 2u)
#define VSK_V4_OFFSET_ANY(net) ((1u << (32 - (net)->prefix4)) - 1u)

void vsk_fake_net_default(struct vsk_fake_net *net);
int vsk_fake_net_set4(struct vsk_fake_net *net, const char *cidr);
int vsk_fake_net_set6(struct vsk_fake_net *net, const char *cidr);

bool vsk_cid_fits4(const struct vsk_fake_net *net, uint32_t cid);
/* Always succeeds; a CID too large for IPv4 becomes the "unrepresentable"
 * address, which decodes as invalid. */
struct in_addr vsk_encode4(const struct vsk_fake_net *net, uint32_t cid);
struct in6_addr vsk_encode6(const struct vsk_fake_net *net, uint32_t cid);

enum vsk_decode_result {
	VSK_ADDR_NOT_OURS = 0,
	VSK_ADDR_OK,
	VSK_ADDR_INVALID, /* inside our range but names no CID */
};

struct vsk_target {
	uint32_t cid;
	uint32_t port;
	enum vsk_app_family family;
};

enum vsk_decode_result vsk_decode_sockaddr(const struct vsk_fake_net *net,
					   const struct sockaddr *sa,
					   socklen_t len,
					   struct vsk_target *out);
/* Decode a raw address of the given family (AF_INET: 4 bytes, AF_INET6: 16). */
enum vsk_decode_result vsk_decode_raw(const struct vsk_fake_net *net, int af,
				      const void *addr, uint32_t *cid);

/* Build the sockaddr the application expects for (cid, vsock port).
 * Returns the full length of that address. */
socklen_t vsk_encode_sockaddr(const struct vsk_fake_net *net,
			      enum vsk_app_family fam, uint32_t cid,
			      uint32_t vport, struct sockaddr_storage *out);

/* Copy an address to the caller with kernel truncation rules: copy at most
 * *len bytes, then report the full length. */
void vsk_copy_out_addr(const void *full, socklen_t full_len,
		       struct sockaddr *dst, socklen_t *len);

/* vsock ports are 32 bits; TCP apps can only show 16. */
uint16_t vsk_fold_port(uint32_t vport);

/* A connect to VMADDR_CID_ANY means "this machine", like 0.0.0.0 for TCP. */
uint32_t vsk_connect_cid(uint32_t cid);

/* ---- errno policy ------------------------------------------------------- */

/* Translate an errno from a vsock connect (or SO_ERROR of a connecting
 * socket) into what a TCP application expects. */
int vsk_map_connect_errno(int err);

/* ---- TCP/IP options on a vsock socket ------------------------------------ */

/* Validate and normalise a setsockopt the way the kernel does for TCP.
 * 0 with *normalized set, an errno, or -1 for an option not in the table. */
int vsk_tcpopt_set(int level, int optname, bool inet6, const void *val,
		   socklen_t len, int *normalized);
/* Linux's default for an option in the table: 0, an errno, or -1. */
int vsk_tcpopt_default(int level, int optname, bool inet6, int *value);

/* ---- rules (docs/rules.md, man/vsockify.conf.5) ------------------------ */

enum vsk_rule_kind {
	VSK_RULE_NAME = 1, /* a host name resolves to a CID's fake address */
	VSK_RULE_CONNECT,  /* connect() to a hard-coded address goes to vsock */
	VSK_RULE_LISTEN,   /* bind() to this address becomes a vsock listener */
	VSK_RULE_HYBRID,   /* this CID is reached through a VMM's Unix socket */
};
/* sun_path holds 108 bytes; a listener adds "_4294967295" and a NUL. */
#define VSK_HYBRID_PATH_MAX 96

struct vsk_rule {
	uint8_t kind;      /* enum vsk_rule_kind */
	uint8_t af;        /* AF_INET or AF_INET6, as written (0 for "*", names) */
	bool any_addr;     /* listen "*": every local address */
	bool any_port;     /* no port written: every port, same number on vsock */
	bool wildcard;     /* name "*.suffix" */
	uint16_t port;     /* host order; 0 when any_port */
	unsigned char addr[16]; /* IPv4 as ::ffff:a.b.c.d */
	uint32_t name_off; /* into vsk_rules.names: lower case, no trailing dot, */
	uint32_t name_len; /* and for a wildcard the suffix after "*."; for a
			    * hybrid rule the socket path, NUL-terminated */
	uint32_t cid;      /* VSK_CID_ANY for "any" */
	uint32_t vport;    /* 0: the port the app used */
};

/* The effective rule table: built once at start-up, then only read. */
struct vsk_rules {
	struct vsk_rule *rule;
	uint32_t n, cap;
	char *names;
	size_t names_len, names_cap;
	uint32_t *slot;    /* open-addressed hash: rule index + 1, 0 empty */
	uint32_t nslots;   /* a power of two, or 0 */
	uint32_t n_hybrid; /* hybrid rules, and the last one's index */
	uint32_t last_hybrid;
	/* A source could not be read for a reason that passes (EMFILE,
	 * ENFILE, ENOMEM): its errno.  The table is then incomplete. */
	int unreadable;
};

/* Each problem found while parsing, as one line "SOURCE:WHERE: what". */
typedef void (*vsk_rules_report_fn)(void *ctx, const char *msg);

enum vsk_rules_source {
	VSK_SRC_FILE,  /* lines; messages "PATH:LINE: ..." */
	VSK_SRC_LIST,  /* ';'-separated; messages "LABEL: rule N: ..." */
	VSK_SRC_ARGS,  /* one argument; messages "LABEL: ..." (e.g. "--rule 2") */
};
#define VSK_RULE_MSG_MAX 512  /* one problem message */
#define VSK_RULE_TEXT_MAX 320 /* one rule in normalised form */

/* Parse one source and append its rules, all or none: on any problem the
 * table is left as it was.  A rule whose match repeats an earlier one (in
 * any source) is a problem too: it could never apply.  Returns the number
 * of problems reported. */
int vsk_rules_add(struct vsk_rules *rs, enum vsk_rules_source kind,
		  const char *label, const char *text, size_t len,
		  vsk_rules_report_fn report, void *ctx);
/* Read a whole rules file (at most VSK_RULES_FILE_MAX bytes) and add it.
 * missing_ok: a file that does not exist is no problem (/etc default). */
#define VSK_RULES_FILE_MAX (16u << 20)
int vsk_rules_add_file(struct vsk_rules *rs, const char *path, bool missing_ok,
		       vsk_rules_report_fn report, void *ctx);
void vsk_rules_free(struct vsk_rules *rs);

/* First matching rule's index, or -1.  Names: built-in vsock-*.local names
 * are the caller's to check first.  Addresses: AF_INET/AF_INET6 only. */
int vsk_rules_match_name(const struct vsk_rules *rs, const char *name);
int vsk_rules_match_addr(const struct vsk_rules *rs, enum vsk_rule_kind kind,
			 const struct sockaddr *sa, socklen_t len);
/* The hybrid rule for cid, or -1; its socket path. */
int vsk_rules_hybrid(const struct vsk_rules *rs, uint32_t cid);
static inline const char *vsk_rule_path(const struct vsk_rules *rs, const struct vsk_rule *r)
{
	return rs->names + r->name_off;
}
/* Where an address matched by rule i leads: cid and vsock port. */
void vsk_rule_target(const struct vsk_rule *r, uint16_t app_port, uint32_t *cid,
		     uint32_t *vport);
/* The address to show the app for a socket rule r made, rebuilt after an
 * exec: r's address (the wildcard of fam for "*") with port.  Length. */
socklen_t vsk_rule_shown_addr(const struct vsk_rule *r, enum vsk_app_family fam,
			      uint16_t port, struct sockaddr_storage *out);
/* A rule in the normalised form --check prints.  Length, or -1. */
int vsk_rule_format(const struct vsk_rules *rs, uint32_t i, char *buf, size_t len);

/* ---- routing decisions (route.c) ------------------------------------------ */

/* Where a connect or bind address leads. */
enum vsk_route {
	VSK_ROUTE_NOT_OURS = 0, /* a real address: the kernel's, untouched */
	VSK_ROUTE_VSOCK,        /* to vsock: the target says where */
	VSK_ROUTE_INVALID,      /* a fake address that names no CID */
	VSK_ROUTE_UNKNOWN,      /* the rules could not be read: the call fails
				 * with rs->unreadable */
};

/* A fake address, or else the first rule of kind (VSK_RULE_CONNECT or
 * VSK_RULE_LISTEN; docs/rules.md): t gets the CID and vsock port, *rule
 * the rule's index or -1.  An address longer than sockaddr_storage is
 * never ours: the kernel says EINVAL. */
enum vsk_route vsk_route(const struct vsk_fake_net *net, const struct vsk_rules *rs,
			 const struct sockaddr *sa, socklen_t len, enum vsk_rule_kind kind,
			 struct vsk_target *t, int *rule);
/* vsk_route's two steps, for a caller that reads its rules only when an
 * address needs them: the fake addresses (VSK_ROUTE_NOT_OURS: ask the
 * rules next), then the rules. */
enum vsk_route vsk_route_fake(const struct vsk_fake_net *net, const struct sockaddr *sa,
			      socklen_t len, struct vsk_target *t, int *rule);
enum vsk_route vsk_route_by_rule(const struct vsk_rules *rs, const struct sockaddr *sa,
				 socklen_t len, enum vsk_rule_kind kind, struct vsk_target *t,
				 int *rule);

/* The longest address a socket keeps to show: sizeof(struct sockaddr_in6). */
#define VSK_SHOWN_MAX 28
/* The address the app used, kept to show it back after a rule routed it
 * (connect: getpeername, bind: getsockname), cleaned as the kernel would
 * report it.  sa is a whole AF_INET or AF_INET6 address (a rule matched
 * it).  Returns its length. */
uint8_t vsk_keep_app_addr(const struct sockaddr *sa, unsigned char out[VSK_SHOWN_MAX]);

/* A connected vsock socket reports its local CID as "any" (TCP would show
 * the real source address): the CID to show instead, for a peer at
 * peer_cid.  this_cid (this machine's CID) is asked only when needed. */
uint32_t vsk_shown_local_cid(uint32_t peer_cid, uint32_t (*this_cid)(void));
/* What getsockname (peer false) or getpeername (peer true) shows an app of
 * family fam for a socket whose own address is vm (AF_UNIX for a hybrid
 * one).  kept, kept_len: the address a rule kept for that side (at most
 * VSK_SHOWN_MAX), shown as the app used it, except that a listener on
 * port 0 shows the port vsock picked; kept_len 0: vm as a fake address,
 * with a local CID "any" shown as local_cid (vsk_shown_local_cid, or
 * VSK_CID_ANY when the socket is not connected).  Returns the length. */
socklen_t vsk_shown_addr(const struct vsk_fake_net *net, enum vsk_app_family fam,
			 const struct sockaddr_vm *vm, bool peer, const void *kept,
			 socklen_t kept_len, uint32_t local_cid, struct sockaddr_storage *out);

/* The kernel-side mark of our vsock sockets: a vsock buffer ceiling
 * (SO_VM_SOCKETS_BUFFER_MAX_SIZE) no real program sets, with the app
 * family in the low 8 bits and the index + 1 of the rule that made it in
 * the next 24.  The library and the supervisor both write and read it, so
 * a socket one of them made is recognised by the other, and across exec. */
#define VSK_MARK_MAGIC 0x7673636b00000000ull /* "vsck" */
#define VSK_MARK_MASK 0xffffffff00000000ull
#define VSK_MARK_EARLY 0x80u /* in the family byte: made early (early.c) */
#define VSK_MARK_SHUT 0x40u  /* ...a listener shut down, in every process (hooks_listen.c) */
/* ...a connect whose answer the program never got (a signal took its
 * thread away): its restart answers as the first call would (super_calls.c) */
#define VSK_MARK_UNANSWERED 0x20u
uint64_t vsk_mark_encode(unsigned family_byte, int rule);
/* The app family a mark records (0: not our mark); *rule gets the rule
 * index or -1, *early the VSK_MARK_EARLY bit (may be NULL). */
enum vsk_app_family vsk_mark_decode(uint64_t mark, int *rule, bool *early);

/* What a socket made by rule (from its mark) shows on the side the rule
 * keeps: its peer (*peer true, a connect rule) or its local address (a
 * listen rule), in family fam.  side: that side's vsock address, for the
 * port when the rule kept the app's, or NULL.  Length; 0 when the rule
 * shows nothing (then vsk_shown_addr decides). */
socklen_t vsk_rule_shown_side(const struct vsk_rules *rs, int rule, enum vsk_app_family fam,
			      const struct sockaddr_vm *side, bool *peer,
			      struct sockaddr_storage *out);

/* A library under the supervisor asks getsockopt(-1, SOL_SOCKET, SO_ERROR,
 * NULL, NULL) once: the kernel says EBADF, the supervisor this errno.  The
 * library then leaves every socket to the supervisor (docs/supervisor.md). */
#define VSK_SUPERVISED_ERRNO EDOM

/* A name as both ways in resolve it: the built-in vsock-*.local names
 * first (no rule can redefine them), then name rules (rs may be NULL),
 * which make a name an alias of its CID.  *rule: the rule's index or -1
 * (may be NULL). */
enum vsk_name_kind vsk_name_lookup(const struct vsk_rules *rs, const char *name, uint32_t *cid,
				   int *rule);

/* ---- DNS answers (dns.c), for the supervisor's responder ------------------- */

enum vsk_dns_verdict {
	VSK_DNS_FORWARD = 0, /* not ours (or not a plain query): send it on unchanged */
	VSK_DNS_ANSWER,      /* out holds the reply */
	VSK_DNS_DROP,        /* too short to answer even with an error */
};
/* One query packet q (UDP payload): our names get an A answer, or AAAA
 * for a CID beyond the IPv4 fakes, as getaddrinfo(AF_UNSPEC) gives under
 * the library (NODATA for the other type and the rest, NXDOMAIN for a
 * malformed vsock name), with AA and RA set and the question copied byte
 * for byte. */
enum vsk_dns_verdict vsk_dns_respond(const struct vsk_fake_net *net, const struct vsk_rules *rs,
				     const uint8_t *q, size_t qlen, uint8_t *out, size_t cap,
				     size_t *outlen);
/* A SERVFAIL reply to query q (its nameserver refused).  0, or -1 when q
 * is not a query we can answer. */
int vsk_dns_servfail(const uint8_t *q, size_t qlen, uint8_t *out, size_t cap, size_t *outlen);

/* ---- program classification (elf.c) -------------------------------------- */

/* What kind of program a file is, so a caller can tell whether the preload
 * library will load into it or a supervisor is needed. */
enum vsk_prog_kind {
	VSK_PROG_UNKNOWN = 0, /* not an ELF we can read: a script (#!), garbage, unreadable */
	VSK_PROG_DYNAMIC,     /* has PT_INTERP: a dynamically linked program (the preload library works) */
	VSK_PROG_STATIC,      /* ELF executable without PT_INTERP (static, static-pie; also
			       * a shared library or ld.so run directly) */
};

struct vsk_prog_info {
	enum vsk_prog_kind kind;
	bool go;           /* has Go build info: a section named .go.buildinfo, or (with no
			    * section table) the magic "\xff Go buildinf:" 16-byte aligned in
			    * the first VSK_GO_SCAN_MAX bytes of the first data segment */
	bool foreign_arch; /* an ELF for another machine, class or byte order than this
			    * build's (i386, aarch64 or x32 on x86-64); set even when kind
			    * is UNKNOWN because the header was all we could read */
	char interp[256];  /* PT_INTERP path when DYNAMIC; empty if longer than this */
};

/* At most this much of program headers, and of section headers, is read. */
#define VSK_ELF_HEADERS_MAX (64u << 10)
/* The Go linker puts .go.buildinfo near the start of the data segment. */
#define VSK_GO_SCAN_MAX (4u << 20)

/* read_at(ctx, off, buf, len): bytes read (short only at the end of the
 * file) or -1 for an error. */
typedef long (*vsk_read_at_fn)(void *ctx, uint64_t off, void *buf, size_t len);
/* Classify the file of file_size bytes that read_at reads.  Returns 0 with
 * *out filled (kind UNKNOWN for anything not a valid ELF executable), or -1
 * when read_at failed (*out then says UNKNOWN).  Needs no allocation: about
 * 8 KiB of stack. */
int vsk_classify_elf(vsk_read_at_fn read_at, void *ctx, uint64_t file_size,
		     struct vsk_prog_info *out);

/* Which C library a dynamic program's interpreter (PT_INTERP) belongs to,
 * by the file name alone (a path that leads elsewhere by a symlink is not
 * followed): the wrapper preloads the library built for that libc. */
enum vsk_libc {
	VSK_LIBC_UNKNOWN = 0, /* no interpreter, or one of neither kind (Android's linker, ...) */
	VSK_LIBC_GLIBC,       /* ld-linux*.so.N, ld64.so.N, ld.so.N (glibc's names on every arch) */
	VSK_LIBC_MUSL,        /* ld-musl-<arch>.so.1 (Alpine, Debian's musl, Void's) */
};
enum vsk_libc vsk_interp_libc(const char *interp);
const char *vsk_libc_name(enum vsk_libc libc);

/* The kernel reads this much of a script to find its "#!" line. */
#define VSK_SCRIPT_HEAD 256
/* The interpreter path of a "#!" script from the file's first n bytes (the
 * whole file if it is shorter than VSK_SCRIPT_HEAD), as the kernel finds it;
 * its optional argument is not returned.  Returns the path's length, or -1:
 * not a script, no path, a path that may be cut off, or one that does not fit
 * in cap bytes with its NUL. */
int vsk_script_interp(const char *head, size_t n, char *out, size_t cap);

/* ---- configuration ------------------------------------------------------ */

enum vsk_log_level {
	VSK_LOG_OFF = 0,
	VSK_LOG_ERROR,
	VSK_LOG_WARN,
	VSK_LOG_INFO,
	VSK_LOG_DEBUG,
};

#define VSK_CONFIG_PATH_MAX 512
#define VSK_CONFIG_PROBLEMS 4
#define VSK_CONFIG_PROBLEM_LEN 224

struct vsk_config {
	enum vsk_log_level log_level;
	char log_file[VSK_CONFIG_PATH_MAX]; /* empty: stderr */
	struct vsk_fake_net net;
	/* Where rules come from; they are read when first needed
	 * (vsk_config_read_rules), so start-up pays nothing for them. */
	char rules_file[VSK_CONFIG_PATH_MAX]; /* empty: VSK_SYSTEM_CONFIG */
	char *rules_list; /* a copy of VSOCKIFY_RULES, or NULL */
	/* Make a call site's next TCP sockets vsock from the start once its
	 * connects went to vsock (docs/design.md, "Early vsock sockets"). */
	bool early_sockets;
	/* Set by the library, not read from the environment: the process is
	 * under vsockify's supervisor, which makes every swap itself. */
	bool supervised;
	/* The vsockify wrapper to hand an exec'd static or Go program to
	 * (VSOCKIFY_WRAPPER, set by the wrapper), or empty. */
	char wrapper[VSK_CONFIG_PATH_MAX];
	/* Bad settings are reported once logging works, not fatal. */
	int n_problems;
	char problems[VSK_CONFIG_PROBLEMS][VSK_CONFIG_PROBLEM_LEN];
};

#ifndef VSK_SYSTEM_CONFIG
#define VSK_SYSTEM_CONFIG "/etc/vsockify.conf"
#endif

typedef const char *(*vsk_getenv_fn)(const char *name);
void vsk_config_load(struct vsk_config *cfg, vsk_getenv_fn get);
/* May cfg have rules at all?  (False makes every lookup free.) */
bool vsk_config_may_have_rules(const struct vsk_config *cfg);
/* Read every rule source of cfg in order into rs; a source with a problem
 * adds nothing.  Returns the number of problems. */
int vsk_config_read_rules(const struct vsk_config *cfg, struct vsk_rules *rs,
			  vsk_rules_report_fn report, void *ctx);
void vsk_config_free(struct vsk_config *cfg);
int vsk_parse_log_level(const char *s, enum vsk_log_level *out);

#endif
