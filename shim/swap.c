/* Turning an application's TCP socket into an AF_VSOCK socket on the same
 * fd number.
 *
 * The vsock socket is built and bound or connected on a spare fd first and
 * only then dup3()'d over the app's fd, so a failure leaves the app's TCP
 * socket exactly as it was.  State the app already set on its socket is
 * replayed onto the new one. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h> /* before linux/vm_sockets.h: older kernel headers need it */
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

uint32_t vsk_replay_bits[4][VSK_REPLAY_OPTNAME_MAX];

void vsk_replay_init(void)
{
	for (unsigned i = 0; i < N_REPLAYABLE; i++)
		if (replayable[i].optname < VSK_REPLAY_OPTNAME_MAX)
			vsk_replay_bits[vsk_replay_level_slot(replayable[i].level)]
				       [replayable[i].optname] = 1u << i;
}

static bool sockaddr_port_bound(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)ss)->sin_port != 0;
	return ((const struct sockaddr_in6 *)(const void *)ss)->sin6_port != 0;
}

unsigned char vsk_socket_state(int fd)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	int listening = 0;
	socklen_t llen = sizeof(listening);

	if (vsk_real.getpeername(fd, (struct sockaddr *)&peer, &len) == 0)
		return TCP_ESTABLISHED;
	if (vsk_real.getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &llen) == 0 &&
	    listening) {
		struct vsk_fd_entry *e = vsk_fd_lookup(fd);
		return e && (atomic_load(&e->state) & VSK_FD_SHUT) ? TCP_CLOSE : TCP_LISTEN;
	}
	return TCP_CLOSE;
}

/* TCP's answer to a connect on a socket that is already in use. */
static int tcp_busy_errno(int fd)
{
	struct tcp_info ti;
	socklen_t tlen = sizeof(ti);

	if (vsk_socket_state(fd) != TCP_CLOSE)
		return EISCONN;
	if (vsk_real.getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tlen) == 0 &&
	    (ti.tcpi_state == TCP_SYN_SENT || ti.tcpi_state == TCP_SYN_RECV))
		return EALREADY;
	return 0; /* only bound: the swap may go on (the local binding is lost) */
}

/* The protocol options the app set on its TCP socket, read so they read
 * back the same from the vsock socket. */
static void save_protocol_options(struct vsk_swap *sw)
{
	sw->nopts = 0;
	for (unsigned i = 0; i < N_REPLAYABLE && sw->nopts < VSK_OPT_SLOTS; i++) {
		struct vsk_opt_slot *o = &sw->opts[sw->nopts];
		socklen_t len = sizeof(o->value);
		if (!(sw->touched & (1u << i)) || replayable[i].on_vsock ||
		    vsk_real.getsockopt(sw->fd, replayable[i].level, replayable[i].optname,
					o->value, &len) != 0)
			continue;
		o->level = replayable[i].level;
		o->optname = replayable[i].optname;
		o->len = len;
		sw->nopts++;
	}
}

static int sndtimeo_ms(int fd)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);
	long long ms;

	if (vsk_real.getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) != 0 ||
	    (tv.tv_sec == 0 && tv.tv_usec == 0))
		return -1;
	ms = (long long)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

static unsigned sndtimeo_bit(void)
{
	return vsk_replay_bit(SOL_SOCKET, SO_SNDTIMEO);
}

int vsk_swap_check(int fd, const struct sockaddr *sa, bool for_bind,
		   struct vsk_swap *sw)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);
	int type, proto, busy;

	sw->rule = -1;
	sw->connect_blocking = false;
	sw->interrupted = false;
	memset(&sw->shown, 0, sizeof(sw->shown));
	/* The generation first: any close from here on is seen at install. */
	sw->gen = vsk_fd_gen(fd);
	if (sw->gen < 0)
		return VSK_CHECK_NOT_INET;
	/* getsockname gives the domain and, through the port, whether the
	 * socket is already bound, listening or connected. */
	if (vsk_real.getsockname(fd, (struct sockaddr *)&local, &len) != 0)
		return VSK_CHECK_NOT_INET;
	if (local.ss_family != AF_INET && local.ss_family != AF_INET6)
		return VSK_CHECK_NOT_INET;
	if (local.ss_family == AF_INET && sa->sa_family != AF_INET)
		return VSK_CHECK_NOT_INET; /* let the kernel give its own error */
	len = sizeof(int);
	if (vsk_real.getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) != 0)
		proto = -1;
	if (proto >= 0 && proto != IPPROTO_TCP && proto != IPPROTO_MPTCP)
		return VSK_CHECK_NOT_STREAM;
	/* Only a raw socket shares TCP's protocol number, and a raw socket's
	 * port is its protocol, never 0: an unbound one is a TCP stream, and
	 * its type need not be asked (one syscall less per connect). */
	len = sizeof(int);
	if ((proto < 0 || sockaddr_port_bound(&local)) &&
	    (vsk_real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM))
		return VSK_CHECK_NOT_STREAM;
	if (sockaddr_port_bound(&local)) {
		if (for_bind)
			return -EINVAL; /* TCP: already bound */
		if ((busy = tcp_busy_errno(fd)))
			return -busy;
	}

	sw->fd = fd;
	if (local.ss_family == AF_INET)
		sw->fam = VSK_APP_INET4;
	else if (sa->sa_family == AF_INET ||
		 IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr))
		sw->fam = VSK_APP_MAPPED;
	else
		sw->fam = VSK_APP_INET6;
	sw->status_flags = vsk_real.fcntl(fd, F_GETFL);
	sw->fd_flags = vsk_real.fcntl(fd, F_GETFD);
	sw->touched = vsk_fd_touched(fd);
	sw->sndtimeo_ms = (sw->touched & sndtimeo_bit()) ? sndtimeo_ms(fd) : -1;
	save_protocol_options(sw);
	return VSK_CHECK_OK;
}

int vsk_swap_check_ours(int fd, struct vsk_swap *sw)
{
	struct vsk_fd_entry *e;
	uint32_t len;

	sw->rule = -1;
	sw->connect_blocking = false;
	sw->interrupted = false;
	memset(&sw->shown, 0, sizeof(sw->shown));
	sw->gen = vsk_fd_gen(fd);
	if (sw->gen < 0 || !(e = vsk_fd_lookup(fd)))
		return -EBADF;
	sw->fd = fd;
	sw->fam = vsk_fd_family(e);
	sw->status_flags = vsk_real.fcntl(fd, F_GETFL);
	sw->fd_flags = vsk_real.fcntl(fd, F_GETFD);
	if (sw->status_flags < 0 || sw->fd_flags < 0)
		return -errno;
	/* Everything the app may have set since: copy all we know of. */
	sw->touched = ~0u;
	sw->sndtimeo_ms = sndtimeo_ms(fd);
	sw->nopts = 0;
	for (unsigned i = 0; i < N_REPLAYABLE && sw->nopts < VSK_OPT_SLOTS; i++) {
		struct vsk_opt_slot *o = &sw->opts[sw->nopts];
		if (replayable[i].on_vsock)
			continue;
		len = sizeof(o->value);
		if (vsk_fd_opt_get(fd, replayable[i].level, replayable[i].optname,
				   o->value, &len) == 0) {
			o->level = replayable[i].level;
			o->optname = replayable[i].optname;
			o->len = len;
			sw->nopts++;
		}
	}
	return VSK_CHECK_OK;
}

void vsk_swap_carry_options(int from, int to, unsigned touched)
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

int vsk_swap_new_socket(struct vsk_swap *sw, bool for_connect, int *err)
{
	int type = SOCK_STREAM | SOCK_CLOEXEC;
	int vfd;

	sw->vfd_nonblock = (for_connect && !sw->connect_blocking) ||
			   (sw->status_flags >= 0 && (sw->status_flags & O_NONBLOCK));
	if (sw->vfd_nonblock)
		type |= SOCK_NONBLOCK;
	vfd = vsk_real.socket(AF_VSOCK, type, 0);
	if (vfd < 0) {
		*err = errno;
		vsk_log(VSK_LOG_ERROR, "cannot create an AF_VSOCK socket: %s%s", strerror(*err),
			*err == EMFILE || *err == ENFILE
				? " (the swap needs one spare fd for a moment)"
				: " (is the vsock transport loaded?)");
		*err = vsk_map_connect_errno(*err);
		return -1;
	}
	vsk_swap_carry_options(sw->fd, vfd, sw->touched);
	if (for_connect && !(sw->touched & sndtimeo_bit())) {
		/* vsock gives up on a connect after 2 s; TCP tries for about
		 * 127 s (six SYN retries) before ETIMEDOUT.  A busy peer must
		 * not fail where TCP would still be waiting. */
		struct timeval tcp_like = { .tv_sec = 127 };
		vsk_real.setsockopt(vfd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT,
				    &tcp_like, sizeof(tcp_like));
	}
	if (vsk_mark_socket(vfd, sw->fam, sw->rule) != 0)
		vsk_log(VSK_LOG_DEBUG, "could not mark vsock socket: %s", strerror(errno));
	return vfd;
}

int vsk_swap_new_unix_socket(struct vsk_swap *sw, int *err)
{
	int ufd = vsk_real.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sw->vfd_nonblock = false;
	if (ufd < 0) {
		*err = errno;
		return -1;
	}
	vsk_swap_carry_options(sw->fd, ufd, sw->touched);
	return ufd;
}

int vsk_swap_install(struct vsk_swap *sw, int vfd, unsigned state)
{
	int err;

	/* Back to the app's blocking mode; the swap connected non-blocking. */
	if (sw->vfd_nonblock && sw->status_flags >= 0 && !(sw->status_flags & O_NONBLOCK))
		vsk_real.fcntl(vfd, F_SETFL, sw->status_flags);
	err = vsk_fd_install(vfd, sw->fd, sw->gen, VSK_FD_OURS | (unsigned)sw->fam | state,
			     (sw->fd_flags > 0 && (sw->fd_flags & FD_CLOEXEC)) ? O_CLOEXEC : 0,
			     sw->opts, sw->nopts, &sw->shown);
	vsk_real.close(vfd);
	if (err == EMFILE)
		vsk_log(VSK_LOG_ERROR, "fd %d is beyond the fds vsockify can track", sw->fd);
	else if (err == EBADF)
		vsk_log(VSK_LOG_INFO, "fd %d was closed during its connect or bind; "
			"leaving the number alone", sw->fd);
	return err;
}

/* Would TCP's blocking connect have been restarted after this signal?
 * Only if its handler has SA_RESTART.  Which signal arrived is not known,
 * so restart only when every caught signal asks for it. */
bool vsk_signal_handlers_restart(void)
{
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;
		if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) != 0)
			continue;
		if (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN &&
		    !(sa.sa_flags & SA_RESTART))
			return false;
	}
	return true;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vsk_wait_connect(int fd, int timeout_ms)
{
	long long deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int left = -1, n, err = 0;
		socklen_t len = sizeof(err);

		if (timeout_ms >= 0) {
			long long l = deadline - now_ms();
			left = l < 0 ? 0 : (int)l;
		}
		n = poll(&p, 1, left);
		if (n == 0)
			return EINPROGRESS;
		if (n < 0) {
			if (errno == EINTR && vsk_signal_handlers_restart())
				continue;
			return errno;
		}
		/* A failed vsock connect always sets the socket error (POLLERR). */
		if (!(p.revents & (POLLERR | POLLNVAL)))
			return 0;
		if (vsk_real.getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			return errno;
		return err ? err : ECONNABORTED;
	}
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
