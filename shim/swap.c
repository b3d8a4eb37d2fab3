/* Turning an application's TCP socket into an AF_VSOCK socket on the same
 * fd number.
 *
 * The vsock socket is built and bound or connected on a spare fd first and
 * only then dup3()'d over the app's fd, so a failure leaves the app's TCP
 * socket exactly as it was.  State the app already set on its socket is
 * replayed onto the new one. */
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <netinet/tcp.h>
#include <string.h>
#include <stdbool.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "swap.h"

/* Options the swap carries over.  The setsockopt hook records which of
 * these the app set while the socket was still TCP (one bit each), so a
 * swap touches only those instead of probing all of them. */
struct replayable {
	int level, optname;
	bool on_vsock; /* SOL_SOCKET: set on the vsock socket; else remembered */
};

static const struct replayable replayable[] = {
	{ SOL_SOCKET, SO_REUSEADDR, true },   { SOL_SOCKET, SO_REUSEPORT, true },
	{ SOL_SOCKET, SO_KEEPALIVE, true },   { SOL_SOCKET, SO_LINGER, true },
	{ SOL_SOCKET, SO_RCVTIMEO, true },    { SOL_SOCKET, SO_SNDTIMEO, true },
	{ SOL_SOCKET, SO_OOBINLINE, true },   { SOL_SOCKET, SO_RCVLOWAT, true },
	{ SOL_SOCKET, SO_PRIORITY, true },    { SOL_SOCKET, SO_SNDBUF, true },
	{ SOL_SOCKET, SO_RCVBUF, true },
	{ IPPROTO_TCP, TCP_NODELAY, false },  { IPPROTO_TCP, TCP_KEEPIDLE, false },
	{ IPPROTO_TCP, TCP_KEEPINTVL, false }, { IPPROTO_TCP, TCP_KEEPCNT, false },
	{ IPPROTO_TCP, TCP_USER_TIMEOUT, false }, { IPPROTO_TCP, TCP_CORK, false },
	{ IPPROTO_IP, IP_TOS, false },        { IPPROTO_IPV6, IPV6_TCLASS, false },
	{ IPPROTO_IPV6, IPV6_V6ONLY, false },
};
#define N_REPLAYABLE (sizeof(replayable) / sizeof(replayable[0]))
_Static_assert(N_REPLAYABLE <= 32, "one bit per replayable option");

/* setsockopt's fast path asks for the bit on every call, so the table is
 * turned once, at init, into a direct index: [level][optname] -> bit. */
#define REPLAY_OPTNAME_MAX 72 /* above every optname in the table */
static uint32_t replay_bits[4][REPLAY_OPTNAME_MAX];

static int level_slot(int level)
{
	switch (level) {
	case SOL_SOCKET: return 0;
	case IPPROTO_TCP: return 1;
	case IPPROTO_IP: return 2;
	case IPPROTO_IPV6: return 3;
	default: return -1;
	}
}

void vsk_replay_init(void)
{
	for (unsigned i = 0; i < N_REPLAYABLE; i++)
		if (replayable[i].optname < REPLAY_OPTNAME_MAX)
			replay_bits[level_slot(replayable[i].level)][replayable[i].optname] = 1u << i;
}

unsigned vsk_replay_bit(int level, int optname)
{
	int slot = level_slot(level);

	if (slot < 0 || optname < 0 || optname >= REPLAY_OPTNAME_MAX)
		return 0;
	return replay_bits[slot][optname];
}

static int family_domain(enum vsk_app_family fam)
{
	return fam == VSK_APP_INET4 ? AF_INET : AF_INET6;
}

int vsk_inet_stream_check(int fd, const struct sockaddr *sa,
			  enum vsk_app_family *fam)
{
	int domain, type, proto;
	socklen_t len = sizeof(int);

	if (vsk_real.getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0)
		return VSK_CHECK_NOT_INET;
	if (domain != AF_INET && domain != AF_INET6)
		return VSK_CHECK_NOT_INET;
	if (domain == AF_INET && sa->sa_family != AF_INET)
		return VSK_CHECK_NOT_INET; /* let the kernel give its own error */
	len = sizeof(int);
	if (vsk_real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
		return VSK_CHECK_NOT_INET;
	len = sizeof(int);
	if (vsk_real.getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) != 0)
		proto = IPPROTO_TCP;
	if (type != SOCK_STREAM || (proto != IPPROTO_TCP && proto != IPPROTO_MPTCP))
		return VSK_CHECK_NOT_STREAM;

	if (domain == AF_INET)
		*fam = VSK_APP_INET4;
	else if (sa->sa_family == AF_INET ||
		 IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr))
		*fam = VSK_APP_MAPPED;
	else
		*fam = VSK_APP_INET6;
	return VSK_CHECK_OK;
}

static void carry_socket_options(int from, int to, unsigned touched)
{
	for (unsigned i = 0; i < N_REPLAYABLE; i++) {
		unsigned char val[32];
		socklen_t len = sizeof(val);
		int opt = replayable[i].optname;

		if (!(touched & (1u << i)) || !replayable[i].on_vsock ||
		    vsk_real.getsockopt(from, SOL_SOCKET, opt, val, &len) != 0)
			continue;
		if (opt == SO_SNDBUF || opt == SO_RCVBUF) {
			/* The kernel reports buffer sizes doubled; halve to set the same. */
			int v;
			memcpy(&v, val, sizeof(v));
			v /= 2;
			memcpy(val, &v, sizeof(v));
		}
		vsk_real.setsockopt(to, SOL_SOCKET, opt, val, len);
		/* TCP's blocking connect honours SO_SNDTIMEO; vsock has its own knob. */
		if (opt == SO_SNDTIMEO && len == sizeof(struct timeval)) {
			struct timeval tv;
			memcpy(&tv, val, sizeof(tv));
			if (tv.tv_sec || tv.tv_usec)
				vsk_real.setsockopt(to, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT,
						    &tv, sizeof(tv));
		}
	}
}

int vsk_new_vsock_for(int app_fd, enum vsk_app_family fam, int *err)
{
	int fl = vsk_real.fcntl(app_fd, F_GETFL);
	int type = SOCK_STREAM | SOCK_CLOEXEC;
	int vfd;

	if (fl >= 0 && (fl & O_NONBLOCK))
		type |= SOCK_NONBLOCK;
	vfd = vsk_real.socket(AF_VSOCK, type, 0);
	if (vfd < 0) {
		*err = errno;
		vsk_log(VSK_LOG_ERROR, "cannot create an AF_VSOCK socket: %s "
			"(is the vsock transport loaded?)", strerror(*err));
		*err = vsk_map_connect_errno(*err);
		return -1;
	}
	carry_socket_options(app_fd, vfd, vsk_fd_touched(app_fd));
	if (vsk_mark_socket(vfd, fam) != 0)
		vsk_log(VSK_LOG_DEBUG, "could not mark vsock socket: %s", strerror(errno));
	return vfd;
}

int vsk_install_vsock(int vfd, int app_fd, enum vsk_app_family fam,
		      unsigned extra_state, int *err)
{
	int fdflags = vsk_real.fcntl(app_fd, F_GETFD);
	unsigned touched = vsk_fd_touched(app_fd);
	struct vsk_opt_slot saved[VSK_OPT_SLOTS];
	struct vsk_fd_entry *e;
	int n = 0;

	for (unsigned i = 0; i < N_REPLAYABLE && n < VSK_OPT_SLOTS; i++) {
		int v;
		socklen_t len = sizeof(v);
		if ((touched & (1u << i)) && !replayable[i].on_vsock &&
		    vsk_real.getsockopt(app_fd, replayable[i].level,
					replayable[i].optname, &v, &len) == 0 &&
		    len == sizeof(v))
			saved[n++] = (struct vsk_opt_slot){ replayable[i].level,
							    replayable[i].optname, v };
	}

	e = vsk_fd_claim(app_fd, fam);
	if (!e) {
		*err = EMFILE;
		vsk_log(VSK_LOG_ERROR, "fd %d is beyond the fds vsockify can track", app_fd);
		return -1;
	}
	memcpy(e->opts, saved, (size_t)n * sizeof(saved[0]));
	atomic_fetch_or_explicit(&e->state, extra_state, memory_order_release);

	if (vsk_real.dup3(vfd, app_fd, (fdflags > 0 && (fdflags & FD_CLOEXEC)) ? O_CLOEXEC : 0) < 0) {
		*err = errno;
		vsk_fd_forget(app_fd);
		return -1;
	}
	vsk_real.close(vfd);
	return 0;
}

/* Like TCP, a port-0 bind gets a port a TCP client can name (<= 65535);
 * the vsock kernel would pick a random 32-bit one. */
int vsk_bind_free_port(int vfd, uint32_t cid)
{
	enum { FIRST = 32768, LAST = 60999 };
	struct timespec ts;
	unsigned span = LAST - FIRST + 1, start;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	start = (unsigned)(ts.tv_nsec ^ (getpid() << 8)) % span;
	for (unsigned i = 0; i < span; i++) {
		struct sockaddr_vm vm = { .svm_family = AF_VSOCK, .svm_cid = cid,
					  .svm_port = FIRST + (start + i) % span };
		if (vsk_real.bind(vfd, (struct sockaddr *)&vm, sizeof(vm)) == 0)
			return 0;
		if (errno != EADDRINUSE)
			return -1;
	}
	errno = EADDRINUSE;
	return -1;
}

int vsk_throwaway_socket(enum vsk_app_family fam)
{
	return vsk_real.socket(family_domain(fam), SOCK_STREAM | SOCK_CLOEXEC, 0);
}
