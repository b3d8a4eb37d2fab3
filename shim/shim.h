/* Internals shared by the interposers: the real-symbol table, the one-time
 * initialisation, logging and the table of fds we own. */
#ifndef VSOCKIFY_SHIM_H
#define VSOCKIFY_SHIM_H

#include <errno.h>
#include <netdb.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "core/core.h"

#define VSK_EXPORT __attribute__((visibility("default")))

/* ---- real libc functions, resolved once --------------------------------- */

struct vsk_real {
	int (*socket)(int, int, int);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	ssize_t (*sendto)(int, const void *, size_t, int,
			  const struct sockaddr *, socklen_t);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	int (*listen)(int, int);
	int (*shutdown)(int, int);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	int (*close)(int);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*fcntl)(int, int, ...);
	int (*fcntl64)(int, int, ...);
	int (*close_range)(unsigned, unsigned, int);
	int (*execve)(const char *, char *const[], char *const[]);
	int (*execvpe)(const char *, char *const[], char *const[]);
	int (*posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			   const posix_spawnattr_t *, char *const[], char *const[]);
	int (*posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			    const posix_spawnattr_t *, char *const[], char *const[]);
	int (*getaddrinfo)(const char *, const char *, const struct addrinfo *,
			   struct addrinfo **);
	int (*getnameinfo)(const struct sockaddr *, socklen_t, char *, socklen_t,
			   char *, socklen_t, int);
	struct hostent *(*gethostbyname)(const char *);
	struct hostent *(*gethostbyname2)(const char *, int);
	int (*gethostbyname_r)(const char *, struct hostent *, char *, size_t,
			       struct hostent **, int *);
	int (*gethostbyname2_r)(const char *, int, struct hostent *, char *,
				size_t, struct hostent **, int *);
	struct hostent *(*gethostbyaddr)(const void *, socklen_t, int);
	int (*gethostbyaddr_r)(const void *, socklen_t, int, struct hostent *,
			       char *, size_t, struct hostent **, int *);
};

extern struct vsk_real vsk_real;
extern const struct vsk_config *vsk_cfg;
extern atomic_bool vsk_ready;

void vsk_init_slow(void);

/* The rule table, read at the first lookup that needs it (not at start-up:
 * most processes never make a connection) and never written again. */
#define VSK_RULES_READY 2
extern struct vsk_rules vsk_rule_table;
extern atomic_int vsk_rules_state;
const struct vsk_rules *vsk_rules_slow(void);
static inline const struct vsk_rules *vsk_rules(void)
{
	if (__builtin_expect(atomic_load_explicit(&vsk_rules_state, memory_order_acquire) ==
				     VSK_RULES_READY, 1))
		return &vsk_rule_table;
	return vsk_rules_slow();
}
void vsk_rules_reset_after_fork(void);
/* This machine's vsock CID (VMADDR_CID_LOCAL when no transport says). */
uint32_t vsk_local_cid(void);

/* Every hook calls this first; after the first call it is one load. */
static inline void vsk_init(void)
{
	if (__builtin_expect(!atomic_load_explicit(&vsk_ready, memory_order_acquire), 0))
		vsk_init_slow();
}

/* ---- logging (never changes errno) -------------------------------------- */

void vsk_log_line(enum vsk_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define vsk_log_enabled(level) (vsk_cfg && vsk_cfg->log_level >= (level))
/* The level is tested before the arguments are evaluated: formatting an
 * address for a debug line that is off cost ~3000 instructions a connect. */
#define vsk_log(level, ...)                                \
	do {                                               \
		if (vsk_log_enabled(level))                \
			vsk_log_line((level), __VA_ARGS__); \
	} while (0)

/* Format an app-visible address for log lines. */
const char *vsk_addr_str(const struct sockaddr *sa, socklen_t len, char *buf,
			 size_t buflen);

/* ---- fds we own ---------------------------------------------------------- */

/* Remembered IPPROTO_TCP/IP/IPV6 options, which vsock itself refuses. */
#define VSK_OPT_SLOTS 12
#define VSK_OPT_VALUE_MAX 16 /* TCP_CONGESTION's name is the longest we keep */

struct vsk_opt_slot {
	int32_t level; /* -1: empty */
	int32_t optname;
	uint32_t len;
	unsigned char value[VSK_OPT_VALUE_MAX];
};

/* An epoll registration of the fd, carried over to the vsock socket at the
 * swap (the kernel ties registrations to the open file, which the swap
 * replaces).  epfd_gen tells whether epfd is still the same epoll fd. */
struct vsk_epoll_reg {
	int epfd;
	unsigned epfd_gen;
	uint32_t events;
	uint64_t data;
};
#define VSK_EPOLL_REGS 4

/* What getsockname/getpeername show for a socket a rule made: the address
 * the app bound or dialled.  A length of 0: the fake address, as usual. */
struct vsk_shown {
	uint32_t rule_plus1; /* after an exec: rebuild from this rule when asked */
	uint32_t vm_cid, vm_port; /* a hybrid listener: the VM's CID, its port */
	int32_t owner_pid;        /* ...and the process that made its file */
	uint8_t local_len, peer_len;
	unsigned char local[VSK_SHOWN_MAX], peer[VSK_SHOWN_MAX];
};

/* One per fd number.  state and touched are read without a lock; every
 * other change happens under the number's lock (vsk_fd_lock). */
struct vsk_fd_entry {
	atomic_uint state; /* 0: not ours; else VSK_FD_OURS | flags | family */
	/* Before the swap: which replayable options the app set on its TCP
	 * socket (bits from swap.c), so the swap copies only those. */
	atomic_uint touched;
	/* Bumped whenever the number is closed or replaced, so a swap can tell
	 * that the socket it checked is still the one on that number. */
	atomic_uint gen;
	struct vsk_opt_slot opts[VSK_OPT_SLOTS];
	int nregs;
	struct vsk_epoll_reg regs[VSK_EPOLL_REGS];
	struct vsk_shown shown; /* under the lock; VSK_FD_SHOWN says it is set */
	unsigned early_site; /* VSK_FD_EARLY: the predictor slot of its socket() call */
};

#define VSK_FD_FAMILY_MASK 0x0fu
#define VSK_FD_OURS 0x10u
#define VSK_FD_CONNECTING 0x20u /* connect still running in the kernel */
#define VSK_FD_DEAD 0x40u       /* connect failed: the next one needs a fresh socket */
#define VSK_FD_ABORTED 0x80u    /* ...and SO_ERROR told the app: TCP's next says ECONNABORTED */
#define VSK_FD_BOUND 0x100u     /* made by bind(): a listener, maybe shared by two families */
#define VSK_FD_SHOWN 0x200u     /* made by a rule: see vsk_fd_entry.shown */
#define VSK_FD_HYBRID 0x400u    /* an AF_UNIX socket to a VMM (docs/hybrid.md) */
#define VSK_FD_EARLY 0x800u     /* vsock from socket() on, not yet connected (early.c) */
#define VSK_FD_SHUT 0x1000u     /* a listener shut down: accept says EINVAL (hooks_listen.c) */

#define VSK_FD_CHUNK_BITS 10
#define VSK_FD_CHUNK_SIZE (1u << VSK_FD_CHUNK_BITS)
/* Chunks for fds below 2^20 (the default fs.nr_open) sit in a static
 * array; higher ones, up to INT_MAX, in a directory mapped on first use. */
#define VSK_FD_LOW_CHUNKS 1024u
#define VSK_FD_CHUNK_COUNT (1u << (31 - VSK_FD_CHUNK_BITS))
extern _Atomic(struct vsk_fd_entry *) vsk_fd_chunks[VSK_FD_LOW_CHUNKS];
struct vsk_fd_entry *vsk_fd_lookup_high(int fd);

/* The hot path of every hook: NULL unless fd is one of ours. */
static inline struct vsk_fd_entry *vsk_fd_lookup(int fd)
{
	unsigned idx = (unsigned)fd >> VSK_FD_CHUNK_BITS;
	struct vsk_fd_entry *c, *e;

	if (__builtin_expect(idx >= VSK_FD_LOW_CHUNKS, 0)) /* also fd < 0 */
		return vsk_fd_lookup_high(fd);
	c = atomic_load_explicit(&vsk_fd_chunks[idx], memory_order_acquire);
	if (__builtin_expect(!c, 1))
		return NULL;
	e = &c[(unsigned)fd & (VSK_FD_CHUNK_SIZE - 1)];
	return atomic_load_explicit(&e->state, memory_order_acquire) ? e : NULL;
}
void vsk_fd_touch_slow(int fd, unsigned bits);

/* Note that the app set a replayable option on a socket not yet ours.  On
 * setsockopt's fast path: a load, and a locked op only the first time. */
static inline void vsk_fd_touch(int fd, unsigned bits)
{
	unsigned idx = (unsigned)fd >> VSK_FD_CHUNK_BITS;
	struct vsk_fd_entry *c, *e;

	if (__builtin_expect(idx >= VSK_FD_LOW_CHUNKS, 0)) {
		if (fd >= 0)
			vsk_fd_touch_slow(fd, bits);
		return;
	}
	c = atomic_load_explicit(&vsk_fd_chunks[idx], memory_order_acquire);
	if (__builtin_expect(!c, 0)) {
		vsk_fd_touch_slow(fd, bits);
		return;
	}
	e = &c[(unsigned)fd & (VSK_FD_CHUNK_SIZE - 1)];
	if ((atomic_load_explicit(&e->touched, memory_order_relaxed) & bits) != bits)
		atomic_fetch_or_explicit(&e->touched, bits, memory_order_relaxed);
}
unsigned vsk_fd_touched(int fd);

/* Per-number locks (striped).  Held only for a few instructions and at most
 * one syscall (the swap's dup3), never across a blocking call.  Returns
 * false, and takes nothing, when this thread already holds the stripe: a
 * signal handler that interrupted us. */
bool vsk_fd_lock(int fd);
void vsk_fd_unlock(int fd, bool locked);
/* Whose table this is (fdtable.c): recorded at init, taken over by a fork
 * child's atfork handler and, at its first lock or change, by any other
 * child with its own copy of our memory (clone, clone3). */
void vsk_fd_table_init(void);
void vsk_fd_table_after_fork(void);
void vsk_own_fresh_copy(void);
/* False in a child that shares its parent's memory: it changes no entry. */
bool vsk_fd_table_is_mine(void);

/* The number's generation, read before a swap checks the socket; -1 if fd
 * is beyond what the table can track. */
long long vsk_fd_gen(int fd);
/* fd is about to be closed or replaced: forget it and bump its generation. */
void vsk_fd_release(int fd);
void vsk_fd_release_range(unsigned first, unsigned last);
/* The swap's last step, atomic with close/dup2 on fd: dup3 vfd onto fd
 * and record it, only if fd's generation is still gen.  0 or an errno. */
int vsk_fd_install(int vfd, int fd, long long gen, unsigned state, int dup_flags,
		   const struct vsk_opt_slot *opts, int nopts, const struct vsk_shown *shown);
/* Show sa as fd's peer (a rule made its connect in place) or local address. */
void vsk_fd_set_shown(int fd, bool peer, const struct sockaddr *sa, socklen_t len);
/* The address a rule says to show for fd's local (peer false) or peer
 * side; 0 if none. */
socklen_t vsk_fd_shown(int fd, bool peer, struct sockaddr_storage *out);
/* Record fd as ours (accept, adoption).  NULL if fd is too big. */
struct vsk_fd_entry *vsk_fd_claim(int fd, enum vsk_app_family fam);
/* Set and clear state bits of fd's entry, only if the number's generation
 * is still gen and it is ours.  false if not. */
bool vsk_fd_update_if(int fd, long long gen, unsigned set, unsigned clear);
/* A socket() that the predictor made vsock at once: record it as ours and
 * early, with the predictor slot to blame if it has to become TCP. */
struct vsk_fd_entry *vsk_fd_claim_early(int fd, enum vsk_app_family fam, unsigned site);
/* The same with more state bits and the addresses to show. */
struct vsk_fd_entry *vsk_fd_claim_shown(int fd, unsigned state, const struct vsk_shown *shown);
/* fd's shown addresses and hybrid details, under its lock; false if none. */
bool vsk_fd_get_shown(int fd, struct vsk_shown *out);
/* After dup/dup2/F_DUPFD: to refers to what from refers to. */
void vsk_fd_copy(int from, int to);
/* A hook found fd marked ours but the kernel disagrees (a close we could
 * not see): forget it, unless a swap finished meanwhile.  is_vsock is
 * asked again under the lock.  Returns true if the entry is stale (dropped,
 * unless this is a child sharing its parent's memory, which never writes). */
bool vsk_fd_drop_if_stale(int fd, bool (*is_vsock)(int fd));
/* fd's kernel socket carries our mark but the table lacks it (an exec, a
 * swap finishing in another thread, SCM_RIGHTS): record it.  NULL if not,
 * or if the table is not this process's to change (a vfork child). */
struct vsk_fd_entry *vsk_fd_adopt(int fd);
/* An fd of ours made by bind() whose app family is not fam, and whose
 * vsock socket is bound to cid:port; -1 if none.  (A server binding every
 * resolver answer binds the IPv4 and the IPv6 fake of one vsock port.) */
int vsk_fd_find_sibling_listener(uint32_t cid, uint32_t port, enum vsk_app_family fam,
				 const char *unix_path);
/* Does an fd other than fd (a dup, a dual-stack twin) listen on unix_path? */
bool vsk_fd_other_hybrid_listener(int fd, const char *unix_path);
/* Keep fd's epoll registrations in step after a successful epoll_ctl. */
void vsk_fd_note_epoll(int epfd, int op, int fd, const struct epoll_event *ev);
/* Remembered protocol options, under the number's lock. */
int vsk_fd_opt_get(int fd, int level, int optname, void *val, uint32_t *len);
int vsk_fd_opt_put(int fd, int level, int optname, const void *val, uint32_t len);
/* All of them; returns how many (at most VSK_OPT_SLOTS). */
int vsk_fd_opts_copy(int fd, struct vsk_opt_slot *out);

static inline enum vsk_app_family vsk_fd_family(const struct vsk_fd_entry *e)
{
	return (enum vsk_app_family)(atomic_load_explicit(&e->state, memory_order_relaxed) &
				     VSK_FD_FAMILY_MASK);
}

/* The kernel-side mark (core.h, vsk_mark_encode) that lets an exec'd
 * child recognise our sockets.  It only raises a limit, so it changes no
 * behaviour. */
/* Is fd's listener shut down (in any process sharing it)?  -1 if fd has
 * no mark; set: record that it is, and answer whether it already was. */
int vsk_mark_listener_shut(int fd, bool set);
int vsk_mark_socket(int fd, enum vsk_app_family fam, int rule);
/* Returns the family recorded in the mark, or 0 if fd is not ours; *rule
 * gets the rule index, or -1. */
enum vsk_app_family vsk_read_mark(int fd, int *rule);

void vsk_fd_adopt_inherited(void);
/* The address a socket made by rule (from its mark) shows: its peer
 * (*peer true) or local one.  0 if none. */
socklen_t vsk_shown_by_mark(int fd, int rule, enum vsk_app_family fam, bool *peer,
			    struct sockaddr_storage *out);

/* ---- early vsock sockets (early.c) ---------------------------------------- */

/* socket()'s predictor: a slot for the call site (its return address) and
 * domain, and whether its sockets should be vsock from the start. */
unsigned vsk_early_site(const void *caller, int domain);
bool vsk_early_predicted(unsigned site);
/* The site's socket was swapped to vsock by a connect / an early socket
 * of the site had to become TCP. */
void vsk_early_hit(unsigned site);
void vsk_early_miss(unsigned site);
/* socket() made fd as TCP: remember it as this thread's last one. */
void vsk_early_note_fd(int fd);
/* fd was swapped to vsock by a connect: if it is this thread's last TCP
 * socket, its site scores a hit. */
void vsk_early_hit_fd(int fd);
/* Before fd is duplicated: an early socket becomes TCP first, so both
 * numbers stay one socket whatever the connect does. */
void vsk_early_settle(int fd);
/* An AF_VSOCK socket standing in for socket(domain, type, 0), or -1 (make
 * the TCP socket instead; errno is unchanged). */
int vsk_early_socket(int domain, int type, unsigned site);
/* Turn early fd into the plain TCP socket the app asked for, with what
 * the app set on it: it was not for vsock after all, or its connect to
 * vsock failed (which TCP leaves ready for another).  gen: fd's generation
 * when the caller looked at it, or -1 for now.  0, or -1 with errno. */
int vsk_early_to_tcp(int fd, struct vsk_fd_entry *e, bool after_failed_connect, long long gen);
void vsk_log_init(void);

/* ---- hooks helpers -------------------------------------------------------- */

/* Set errno and return -1: the single place hooks report failure. */
static inline int vsk_fail(int err)
{
	errno = err;
	return -1;
}

#endif
