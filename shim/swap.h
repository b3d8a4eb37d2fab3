/* The fd swap: building the vsock socket that replaces an app's TCP one. */
#ifndef VSOCKIFY_SWAP_H
#define VSOCKIFY_SWAP_H

#include <netinet/in.h>
#include <stdint.h>

#include "shim.h"

/* What a swap needs to know about the app's socket, gathered by
 * vsk_swap_check() and used until vsk_swap_install(). */
struct vsk_swap {
	int fd;
	long long gen;       /* fd's generation before the check */
	enum vsk_app_family fam;
	int status_flags;    /* the app socket's F_GETFL */
	int fd_flags;        /* its F_GETFD */
	unsigned touched;    /* replayable options it set */
	int sndtimeo_ms;     /* -1: none */
	bool vfd_nonblock;   /* the new socket was made non-blocking */
	bool connect_blocking; /* new_socket: a blocking socket for connect */
	bool interrupted;    /* a signal already cut a blocking connect short */
	int nopts;           /* protocol options to remember */
	struct vsk_opt_slot opts[VSK_OPT_SLOTS];
	int rule;            /* the rule that routed it, or -1 */
	struct vsk_shown shown;
};

enum {
	VSK_CHECK_OK = 0,
	VSK_CHECK_NOT_INET = -1000,   /* not an inet socket: hand to libc unchanged */
	VSK_CHECK_NOT_STREAM = -1001, /* inet, but UDP/raw/SCTP: vsock can't carry it */
	/* any other negative value: -errno, what TCP would say (EISCONN...) */
};

/* Is fd a TCP socket we may swap for a connect (for_bind false) or bind
 * to sa?  Fills sw on VSK_CHECK_OK. */
int vsk_swap_check(int fd, const struct sockaddr *sa, bool for_bind,
		   struct vsk_swap *sw);
/* The same for a socket that is already ours, to be replaced by a fresh
 * vsock socket (after a failed connect, or a disconnect). */
int vsk_swap_check_ours(int fd, struct vsk_swap *sw);
/* A fresh, marked AF_VSOCK socket with the app socket's options;
 * non-blocking when the app's is, or for a connect the swap waits for
 * itself (sw->connect_blocking false).  -1 with *err. */
int vsk_swap_new_socket(struct vsk_swap *sw, bool for_connect, int *err);
/* A fresh AF_UNIX stream socket (blocking) with the app socket's options,
 * for a hybrid swap.  -1 with *err. */
int vsk_swap_new_unix_socket(struct vsk_swap *sw, int *err);
/* Copy the SOL_SOCKET options in touched (replay bits) from one socket
 * to another. */
void vsk_swap_carry_options(int from, int to, unsigned touched);
/* Put vfd on the app's number and record state, only if the number still
 * holds the socket that was checked.  Closes vfd either way.  0 or errno. */
int vsk_swap_install(struct vsk_swap *sw, int vfd, unsigned state);

/* Would TCP's blocking connect have been restarted after this signal? */
bool vsk_signal_handlers_restart(void);
/* Wait for a connect in progress on fd as TCP's blocking connect would:
 * 0 connected, EINTR (a signal whose handler lacks SA_RESTART),
 * EINPROGRESS (SO_SNDTIMEO ran out), or the socket's error. */
int vsk_wait_connect(int fd, int timeout_ms);

int vsk_bind_free_port(int vfd, uint32_t cid);

/* ---- hybrid vsock (hybrid.c, docs/hybrid.md) ------------------------------ */

/* The hybrid rule that reaches cid, or -1 (also when there are none). */
int vsk_hybrid_rule_for(uint32_t cid);
/* Connect sw's socket to vsock port on the VM behind rule h: an AF_UNIX
 * socket to the VMM, with the CONNECT/OK handshake done.  0, or -1 with
 * errno as TCP would have it. */
int vsk_hybrid_connect(struct vsk_swap *sw, int h, uint32_t port, const struct sockaddr *sa,
		       socklen_t len);
/* fd's hybrid connect was cut short by a signal after CONNECT went out:
 * read the VMM's answer now (wait false: EALREADY if it has not come).
 * 0, or the errno TCP would report; the entry is no longer connecting
 * unless that is EINTR or EALREADY. */
int vsk_hybrid_finish(int fd, bool wait, bool interruptible);
/* Listen for the VM behind rule h on port: bind <path>_<port>.  bound_cid
 * is the CID the app named (for getsockname). */
int vsk_hybrid_bind(struct vsk_swap *sw, int h, uint32_t bound_cid, uint32_t port,
		    const struct sockaddr *sa, socklen_t len);
/* nfd was accepted on hybrid listener fd: record it.  false if it could
 * not be (nfd is then closed and errno set). */
bool vsk_hybrid_accepted(int fd, int nfd, enum vsk_app_family fam);
/* fd, a hybrid listener, is being closed: remove the file it made. */
void vsk_hybrid_closing(int fd);
/* fd is an AF_UNIX socket we don't know (an exec'd program's): is it one
 * of ours?  Records it if so. */
bool vsk_hybrid_adopt(int fd);
/* TCP_ESTABLISHED, TCP_LISTEN or TCP_CLOSE, for any stream socket. */
unsigned char vsk_socket_state(int fd);
/* setsockopt's fast path asks for an option's replay bit on every call,
 * so the table is turned once, at init, into a direct index:
 * [level][optname] -> bit. */
#define VSK_REPLAY_OPTNAME_MAX 72 /* above every optname in the table */
extern uint32_t vsk_replay_bits[4][VSK_REPLAY_OPTNAME_MAX];
void vsk_replay_init(void);

static inline int vsk_replay_level_slot(int level)
{
	switch (level) {
	case SOL_SOCKET: return 0;
	case IPPROTO_TCP: return 1;
	case IPPROTO_IP: return 2;
	case IPPROTO_IPV6: return 3;
	default: return -1;
	}
}

/* The bit vsk_fd_touch() records for an option the swap replays, or 0. */
static inline unsigned vsk_replay_bit(int level, int optname)
{
	int slot = vsk_replay_level_slot(level);

	if (slot < 0 || optname < 0 || optname >= VSK_REPLAY_OPTNAME_MAX)
		return 0;
	return vsk_replay_bits[slot][optname];
}

#endif
