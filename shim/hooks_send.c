/* sendto() and sendmsg() that name a destination, and recvmsg(), which
 * adopts our sockets passed over Unix sockets (SCM_RIGHTS). */
#include "hooks.h"

/* Returns 1 if the send may go ahead (with the address dropped when the
 * socket is ours), 0 to pass through untouched, -1 with errno set. */
static int vet_destination(int fd, const struct sockaddr *dst, socklen_t len,
			   int flags, bool *drop_addr)
{
	struct vsk_fd_entry *e;
	struct vsk_target t;
	struct vsk_swap sw;
	enum vsk_route route;
	int rule;

	*drop_addr = false;
	e = vsk_fd_lookup(fd);
	if (!vsk_early_becomes_tcp(fd, &e))
		return -1;
	if (e) {
		/* TCP ignores a destination on a stream socket; vsock errors. */
		*drop_addr = true;
		return 1;
	}
	route = vsk_route_for(dst, len, VSK_RULE_CONNECT, &t, &rule);
	if (route == VSK_ROUTE_NOT_OURS)
		return 0;
	if (route == VSK_ROUTE_UNKNOWN)
		return -1;
	if (!(flags & MSG_FASTOPEN)) {
		if (rule >= 0) /* a real address: the kernel answers as it would */
			return 0;
		int type = 0;
		socklen_t tl = sizeof(type);
		if (vsk_real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
		    type != SOCK_STREAM) {
			int domain = 0;
			tl = sizeof(domain);
			if (vsk_real.getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &tl) == 0 &&
			    (domain == AF_INET || domain == AF_INET6)) {
				vsk_log_refused_type("send to", dst, len);
				return vsk_fail(EPROTOTYPE);
			}
		}
		return 0;
	}
	/* TCP Fast Open is connect-and-send; vsock has no such thing. */
	switch (vsk_swap_check(fd, dst, false, &sw)) {
	case VSK_CHECK_NOT_INET:
		return 0;
	case VSK_CHECK_NOT_STREAM:
		if (rule >= 0)
			return 0;
		vsk_log_refused_type("send to", dst, len);
		return vsk_fail(EPROTOTYPE);
	}
	if (vsk_connect_fake(fd, dst, len, route, &t, rule) != 0 && errno != EINPROGRESS)
		return -1;
	*drop_addr = true;
	return 1;
}

VSK_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
			  const struct sockaddr *dst, socklen_t len)
{
	bool drop;
	int v;

	vsk_init();
	if (!dst)
		return vsk_real.sendto(fd, buf, n, flags, dst, len);
	if ((v = vet_destination(fd, dst, len, flags, &drop)) < 0)
		return -1;
	if (v == 0)
		return vsk_real.sendto(fd, buf, n, flags, dst, len);
	return vsk_real.sendto(fd, buf, n, flags & ~MSG_FASTOPEN, drop ? NULL : dst,
			       drop ? 0 : len);
}

VSK_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct msghdr copy;
	bool drop;
	int v;

	vsk_init();
	if (!msg || !msg->msg_name)
		return vsk_real.sendmsg(fd, msg, flags);
	if ((v = vet_destination(fd, msg->msg_name, msg->msg_namelen, flags, &drop)) < 0)
		return -1;
	if (v == 0)
		return vsk_real.sendmsg(fd, msg, flags);
	copy = *msg;
	if (drop) {
		copy.msg_name = NULL;
		copy.msg_namelen = 0;
	}
	return vsk_real.sendmsg(fd, &copy, flags & ~MSG_FASTOPEN);
}

/* ---- fds passed over Unix sockets ------------------------------------------ */

/* A socket of ours received over SCM_RIGHTS is adopted as it arrives: its
 * kernel mark says so. */
static void adopt_passed_fds(struct msghdr *msg)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			vsk_fd_release(fd); /* a close we could not see */
			if (vsk_fd_adopt(fd))
				vsk_log(VSK_LOG_DEBUG, "fd %d: received vsock socket, translating", fd);
		}
	}
}

VSK_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t n;

	vsk_init();
	n = vsk_real.recvmsg(fd, msg, flags);
	if (n >= 0 && msg->msg_controllen >= sizeof(struct cmsghdr))
		adopt_passed_fds(msg);
	return n;
}
