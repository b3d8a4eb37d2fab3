/* getsockopt() and setsockopt(): TCP/IP options on a vsock socket behave
 * as on the TCP socket it stands in for. */
#include <netinet/tcp.h>
#include <unistd.h>

#include "hooks.h"

static bool is_protocol_level(int level)
{
	return level == IPPROTO_TCP || level == IPPROTO_IP || level == IPPROTO_IPV6;
}

/* Still a vsock socket?  Otherwise the entry is stale: drop it. */
static bool still_vsock(int fd)
{
	return vsk_is_vsock(fd) || !vsk_fd_drop_if_stale(fd, vsk_is_vsock);
}

static int put_opt(const void *value, socklen_t n, void *optval, socklen_t *optlen)
{
	if (!optval || !optlen)
		return vsk_fail(EFAULT);
	if ((int)*optlen < 0)
		return vsk_fail(EINVAL);
	if (*optlen > n)
		*optlen = n;
	if (!vsk_user_writable(optval, *optlen))
		return vsk_fail(EFAULT);
	memcpy(optval, value, *optlen);
	return 0;
}

static int put_int_opt(int value, void *optval, socklen_t *optlen)
{
	return put_opt(&value, sizeof(value), optval, optlen);
}

static bool app_is_inet6(struct vsk_fd_entry *e)
{
	return vsk_fd_family(e) != VSK_APP_INET4;
}

/* An option outside our table: ask a plain TCP socket of the app's family,
 * so the answer (or error) is exactly the kernel's.  This one needs a
 * spare fd; every option apps commonly use is in the table instead. */
static int with_throwaway(struct vsk_fd_entry *e, int level, int optname,
			  const void *setval, socklen_t setlen,
			  void *getval, socklen_t *getlen)
{
	int tmp = vsk_real.socket(app_is_inet6(e) ? AF_INET6 : AF_INET,
				  SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc, err = 0;

	if (tmp < 0)
		return -1;
	rc = setval ? vsk_real.setsockopt(tmp, level, optname, setval, setlen) : 0;
	if (rc == 0 && getval)
		rc = vsk_real.getsockopt(tmp, level, optname, getval, getlen);
	if (rc != 0)
		err = errno;
	vsk_real.close(tmp);
	return rc == 0 ? 0 : vsk_fail(err);
}

/* The kernel's answer for a fresh TCP socket. */
static int get_from_throwaway(struct vsk_fd_entry *e, int level, int optname, void *optval,
			      socklen_t *optlen)
{
	unsigned char big[512];
	socklen_t blen = sizeof(big);

	if (!optlen)
		return vsk_fail(EFAULT);
	if ((int)*optlen < 0)
		return vsk_fail(EINVAL);
	if (*optlen < blen)
		blen = *optlen;
	if (with_throwaway(e, level, optname, NULL, 0, big, &blen) != 0)
		return -1;
	return put_opt(big, blen, optval, optlen);
}

static int get_protocol_opt(int fd, struct vsk_fd_entry *e, int level,
			    int optname, void *optval, socklen_t *optlen)
{
	unsigned char val[VSK_OPT_VALUE_MAX];
	uint32_t vlen = sizeof(val);
	int v, rc;

	if (vsk_fd_opt_get(fd, level, optname, val, &vlen) == 0)
		return put_opt(val, vlen, optval, optlen);
	rc = vsk_tcpopt_default(level, optname, app_is_inet6(e), &v);
	if (rc == 0)
		return put_int_opt(v, optval, optlen);
	if (rc > 0)
		return vsk_fail(rc);
	if (level == IPPROTO_TCP && optname == TCP_INFO) {
		struct tcp_info ti;
		memset(&ti, 0, sizeof(ti));
		ti.tcpi_state = vsk_socket_state(fd);
		return put_opt(&ti, sizeof(ti), optval, optlen);
	}
	return get_from_throwaway(e, level, optname, optval, optlen);
}

static int getsockopt_ours(int fd, struct vsk_fd_entry *e, int level,
			   int optname, void *optval, socklen_t *optlen)
{
	if (level == SOL_SOCKET) {
		int v;
		socklen_t l = sizeof(v);
		unsigned state;
		switch (optname) {
		case SO_DOMAIN:
			if (!still_vsock(fd))
				break;
			return put_int_opt(app_is_inet6(e) ? AF_INET6 : AF_INET, optval, optlen);
		case SO_PROTOCOL:
			if (!still_vsock(fd))
				break;
			return put_int_opt(IPPROTO_TCP, optval, optlen);
		case SO_ERROR:
			state = atomic_load(&e->state);
			if ((state & (VSK_FD_CONNECTING | VSK_FD_HYBRID)) ==
			    (VSK_FD_CONNECTING | VSK_FD_HYBRID)) {
				/* The app saw POLLOUT (the VMM's socket is
				 * connected) and asks how its connect went. */
				if (optlen && *optlen >= (socklen_t)sizeof(int) &&
				    (v = vsk_hybrid_finish(fd, true, false)) != EALREADY)
					return put_int_opt(vsk_map_connect_errno(v), optval, optlen);
			}
			if (vsk_real.getsockopt(fd, level, optname, &v, &l) != 0)
				return -1;
			/* A success stays "connecting" until the next connect,
			 * which TCP answers with 0 once. */
			if ((state & VSK_FD_CONNECTING) && v != 0) {
				vsk_set_flags(e, VSK_FD_DEAD | VSK_FD_ABORTED, VSK_FD_CONNECTING);
				v = vsk_map_connect_errno(v);
			}
			return put_int_opt(v, optval, optlen);
		case SO_ACCEPTCONN: /* a listener shut down is TCP_CLOSE */
			if (atomic_load(&e->state) & VSK_FD_SHUT)
				return put_int_opt(0, optval, optlen);
			break;
		case SO_SNDBUF:
		case SO_RCVBUF:
			/* Before its connect, an early socket shows TCP's sizes. */
			if ((atomic_load(&e->state) & VSK_FD_EARLY) &&
			    !(atomic_load(&e->touched) & vsk_replay_bit(level, optname)))
				return get_from_throwaway(e, level, optname, optval, optlen);
			break;
		}
		return vsk_real.getsockopt(fd, level, optname, optval, optlen);
	}
	if (!is_protocol_level(level) || !still_vsock(fd))
		return vsk_real.getsockopt(fd, level, optname, optval, optlen);
	return get_protocol_opt(fd, e, level, optname, optval, optlen);
}

VSK_EXPORT int getsockopt(int fd, int level, int optname, void *optval,
			  socklen_t *optlen)
{
	struct vsk_fd_entry *e;

	vsk_init();
	if (!(e = vsk_fd_lookup(fd)))
		return vsk_real.getsockopt(fd, level, optname, optval, optlen);
	return getsockopt_ours(fd, e, level, optname, optval, optlen);
}

/* vsock refuses TCP/IP options with ENOPROTOOPT.  A TCP app expects them to
 * work: validate as the kernel would for TCP, and remember the normalised
 * value for getsockopt. */
static int setsockopt_protocol(int fd, struct vsk_fd_entry *e, int level,
			       int optname, const void *optval, socklen_t optlen)
{
	unsigned char val[VSK_OPT_VALUE_MAX];
	socklen_t vlen = sizeof(val);
	int v, rc;

	if (optlen > 0 && !optval)
		return vsk_fail(EFAULT);
	rc = vsk_tcpopt_set(level, optname, app_is_inet6(e), optval, optlen, &v);
	if (rc > 0)
		return vsk_fail(rc);
	if (rc < 0 && (atomic_load(&e->state) & VSK_FD_EARLY))
		return 1; /* not one we know: the caller makes it TCP first */
	if (rc == 0) {
		memcpy(val, &v, sizeof(v));
		vlen = sizeof(v);
	} else if (with_throwaway(e, level, optname, optval, optlen, val, &vlen) != 0) {
		/* Options the throwaway cannot read back still had to pass it. */
		if (errno != ENOPROTOOPT || with_throwaway(e, level, optname, optval,
							    optlen, NULL, NULL) != 0)
			return -1;
		vlen = 0;
	}
	if (vlen && vsk_fd_opt_put(fd, level, optname, val, vlen) != 0)
		vsk_log(VSK_LOG_WARN, "fd %d: no room to remember option (level %d, "
			"opt %d); getsockopt will show the default", fd, level, optname);
	vsk_log(VSK_LOG_DEBUG, "fd %d: setsockopt(level %d, opt %d) kept for TCP semantics",
		fd, level, optname);
	return 0;
}

/* An early socket keeps the options a swap would carry (the vsock socket
 * holds the SOL_SOCKET ones, the table the TCP ones); any other, or one
 * the vsock socket refuses (newer kernels refuse SO_REUSEPORT on it),
 * makes it TCP first, and the kernel answers as it would have. */
static int setsockopt_early(int fd, struct vsk_fd_entry *e, int level, int optname,
			    const void *optval, socklen_t optlen)
{
	unsigned bit = vsk_replay_bit(level, optname);
	int rc;

	if (level == SOL_SOCKET && bit &&
	    vsk_real.setsockopt(fd, level, optname, optval, optlen) == 0) {
		vsk_fd_touch(fd, bit);
		return 0;
	}
	if (level != SOL_SOCKET && is_protocol_level(level) &&
	    (rc = setsockopt_protocol(fd, e, level, optname, optval, optlen)) <= 0) {
		if (rc == 0 && bit)
			vsk_fd_touch(fd, bit); /* a later swap replays it from the TCP socket */
		return rc;
	}
	if (vsk_early_to_tcp(fd, e, false, -1) != 0)
		return -1;
	/* Ours still only if something connected it meanwhile. */
	e = vsk_fd_lookup(fd);
	if (e && !(atomic_load(&e->state) & VSK_FD_EARLY) && is_protocol_level(level) &&
	    still_vsock(fd))
		return setsockopt_protocol(fd, e, level, optname, optval, optlen);
	if ((rc = vsk_real.setsockopt(fd, level, optname, optval, optlen)) == 0 && bit)
		vsk_fd_touch(fd, bit);
	return rc;
}

/* Out of line, so the hook's pass-through path stays a leaf-like call. */
__attribute__((noinline)) static int setsockopt_ours(int fd, struct vsk_fd_entry *e, int level,
						     int optname, const void *optval,
						     socklen_t optlen)
{
	if (atomic_load(&e->state) & VSK_FD_EARLY)
		return setsockopt_early(fd, e, level, optname, optval, optlen);
	if (is_protocol_level(level) && still_vsock(fd))
		return setsockopt_protocol(fd, e, level, optname, optval, optlen);
	return vsk_real.setsockopt(fd, level, optname, optval, optlen);
}

VSK_EXPORT int setsockopt(int fd, int level, int optname, const void *optval,
			  socklen_t optlen)
{
	struct vsk_fd_entry *e;
	unsigned bit;
	int rc;

	vsk_init();
	if (__builtin_expect(!(e = vsk_fd_lookup(fd)), 1)) {
		rc = vsk_real.setsockopt(fd, level, optname, optval, optlen);
		if (rc == 0 && (bit = vsk_replay_bit(level, optname)))
			vsk_fd_touch(fd, bit);
		return rc;
	}
	return setsockopt_ours(fd, e, level, optname, optval, optlen);
}
