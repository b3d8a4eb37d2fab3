/* bind(), listen(), accept(), accept4() and a listener's shutdown(): vsock
 * listeners standing in for TCP ones, and the connections they accept. */
#include <fcntl.h>
#include <unistd.h>

#include "hooks.h"

/* TCP lets one process listen on 127.255.255.255:P and on the IPv6 fake
 * :P at once; vsock has one port space, so the second bind would say
 * EADDRINUSE.  Instead the second fd shares the first one's vsock socket:
 * each connection is accepted once, on whichever fd the app accepts from,
 * and each fd shows its own family.  Returns 0 (shared), -1 (error), or 1
 * (nothing to share: bind a new socket). */
static int share_listener(struct vsk_swap *sw, const struct vsk_target *t)
{
	int sibling = vsk_fd_find_sibling_listener(t->cid, t->port, sw->fam, NULL), vfd, err;

	if (sibling < 0)
		return 1;
	vfd = vsk_real.fcntl(sibling, F_DUPFD_CLOEXEC, 0);
	if (vfd < 0)
		return -1;
	sw->vfd_nonblock = false; /* the shared socket keeps its own flags */
	if ((err = vsk_swap_install(sw, vfd, VSK_FD_BOUND)))
		return vsk_fail(err);
	vsk_log(VSK_LOG_DEBUG, "fd %d: bind to vsock:%u:%u shares fd %d's listener",
		sw->fd, t->cid, t->port, sibling);
	return 0;
}

/* On a host with hybrid VMs, a bind to a CID with a hybrid rule listens
 * for that VM; "any" means the only one.  The rule's index, -1 (plain
 * vsock), or HYBRID_AMBIGUOUS. */
#define HYBRID_AMBIGUOUS (-2)
static int hybrid_listener_for(uint32_t cid)
{
	const struct vsk_rules *rs = vsk_rules();

	if (!rs->n_hybrid)
		return -1;
	if (cid != VSK_CID_ANY)
		return vsk_rules_hybrid(rs, cid);
	if (rs->n_hybrid == 1)
		return (int)rs->last_hybrid;
	vsk_log(VSK_LOG_ERROR, "bind to vsock-any: %u hybrid VMs are configured; name the "
		"one to listen for (vsock-CID.local)", rs->n_hybrid);
	return HYBRID_AMBIGUOUS;
}

static int bind_fake(int fd, const struct sockaddr *sa, socklen_t len,
		     enum vsk_route route, const struct vsk_target *t, int rule)
{
	struct vsk_swap sw;
	struct sockaddr_vm vm;
	char buf[80];
	int vfd, rc, err;

	if ((rc = vsk_vet_swap(fd, sa, len, route, rule, true, &sw)) != VSK_SWAP_GO)
		return rc == VSK_SWAP_PASS ? vsk_real.bind(fd, sa, len) : -1;
	if ((rc = hybrid_listener_for(t->cid)) >= 0)
		return vsk_hybrid_bind(&sw, rc, t->cid, t->port, sa, len);
	if (rc == HYBRID_AMBIGUOUS)
		return vsk_fail(EADDRNOTAVAIL);
	if (t->port != 0 && (rc = share_listener(&sw, t)) <= 0)
		return rc;
	vfd = vsk_swap_new_socket(&sw, false, &err);
	if (vfd < 0)
		return vsk_fail(err == ENETUNREACH ? EADDRNOTAVAIL : err);
	vm = vsk_vsock_addr(t->cid, t->port);
	rc = t->port == 0 ? vsk_bind_free_port(vfd, t->cid)
			  : vsk_real.bind(vfd, (struct sockaddr *)&vm, sizeof(vm));
	if (rc != 0) {
		err = errno;
		vsk_real.close(vfd);
		vsk_log(VSK_LOG_INFO, "bind %s -> vsock:%u:%u failed: %s",
			vsk_addr_str(sa, len, buf, sizeof(buf)), t->cid, t->port,
			strerror(err));
		return vsk_fail(err);
	}
	if ((err = vsk_swap_install(&sw, vfd, VSK_FD_BOUND)))
		return vsk_fail(err);
	vsk_log(VSK_LOG_DEBUG, "fd %d: bind %s -> vsock:%u:%u%s", fd,
		vsk_addr_str(sa, len, buf, sizeof(buf)), t->cid, t->port,
		rule >= 0 ? " (by a rule)" : "");
	return 0;
}

VSK_EXPORT int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct vsk_fd_entry *e;
	struct vsk_target t;
	enum vsk_route route;
	int rule;

	vsk_init();
	if (__builtin_expect(vsk_cfg->supervised, 0))
		return vsk_real.bind(fd, sa, len);
	e = vsk_fd_lookup(fd);
	if (!vsk_early_becomes_tcp(fd, &e))
		return -1;
	if (e) /* already bound, like TCP: the kernel says EINVAL */
		return vsk_real.bind(fd, sa, len);
	route = vsk_route_for(sa, len, VSK_RULE_LISTEN, &t, &rule);
	if (route == VSK_ROUTE_NOT_OURS)
		return vsk_real.bind(fd, sa, len);
	if (route == VSK_ROUTE_UNKNOWN)
		return -1;
	return bind_fake(fd, sa, len, route, &t, rule);
}

/* A full accept queue makes TCP's client wait and retry; vsock resets the
 * connection at once and the client sees "connection refused".  So our
 * listeners get the deepest queue the system allows (net.core.somaxconn,
 * to which the kernel clamps this). */
VSK_EXPORT int listen(int fd, int backlog)
{
	struct vsk_fd_entry *e;

	vsk_init();
	e = vsk_fd_lookup(fd);
	if (!vsk_early_becomes_tcp(fd, &e))
		return -1;
	if (!e)
		return vsk_real.listen(fd, backlog);
	return vsk_real.listen(fd, INT32_MAX);
}

/* ---- shutdown of a listener -------------------------------------------------- */

/* TCP's shutdown(SHUT_RD or SHUT_RDWR) of a listener stops it: every thread
 * blocked in accept wakes with EINVAL, and so fails every later accept.
 * vsock's refuses a listener (ENOTCONN) and has no way to wake an accept
 * but a connection.  So the shut is recorded in the mark (every process
 * sharing the socket sees it) and in the entry (this process's accepts
 * fail at once), and a connection to the listener's own port over vsock
 * loopback wakes one blocked accept.  That accept drops it, makes the next
 * one for the next acceptor, and fails with EINVAL (accept_ours). */
static atomic_bool wake_warned;

static void wake_an_acceptor(int fd)
{
	struct sockaddr_vm vm;
	socklen_t len = sizeof(vm);
	int c, err = errno;

	if (vsk_real.getsockname(fd, (struct sockaddr *)&vm, &len) != 0 ||
	    vm.svm_family != AF_VSOCK)
		goto out;
	if (vm.svm_cid == VSK_CID_ANY)
		vm.svm_cid = VSK_CID_LOCAL;
	/* Blocking: the kernel queues it without an accept (or refuses a full
	 * queue, whose accepts are not blocked anyway). */
	c = vsk_real.socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || vsk_real.connect(c, (struct sockaddr *)&vm, sizeof(vm)) != 0) {
		if (errno != ECONNRESET && !atomic_exchange(&wake_warned, true))
			vsk_log(VSK_LOG_WARN, "shutdown of listener fd %d: cannot wake a "
				"blocked accept over vsock loopback (vsock:%u:%u): %s; "
				"load vsock_loopback", fd, vm.svm_cid, vm.svm_port,
				strerror(errno));
	}
	if (c >= 0)
		vsk_real.close(c);
out:
	errno = err;
}

static int shutdown_listener(int fd, int how)
{
	int listening = 0, was;
	socklen_t llen = sizeof(listening);

	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return vsk_fail(EINVAL);
	if ((was = vsk_mark_listener_shut(fd, false)) < 0) /* not ours after all */
		return vsk_real.shutdown(fd, how);
	if (was) /* TCP: the socket is closed now */
		return vsk_fail(ENOTCONN);
	if (vsk_real.getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &llen) != 0 ||
	    !listening) /* bound only: ENOTCONN from vsock, as from TCP */
		return vsk_real.shutdown(fd, how);
	if (how == SHUT_WR) /* TCP: no effect on a listener */
		return 0;
	vsk_mark_listener_shut(fd, true);
	vsk_fd_update_if(fd, vsk_fd_gen(fd), VSK_FD_SHUT, 0);
	vsk_log(VSK_LOG_DEBUG, "fd %d: listener shut down", fd);
	wake_an_acceptor(fd);
	return 0;
}

VSK_EXPORT int shutdown(int fd, int how)
{
	struct vsk_fd_entry *e;

	vsk_init();
	e = vsk_fd_lookup(fd);
	if (!e || (atomic_load(&e->state) & (VSK_FD_BOUND | VSK_FD_HYBRID)) != VSK_FD_BOUND)
		return vsk_real.shutdown(fd, how);
	return shutdown_listener(fd, how);
}

/* ---- accept --------------------------------------------------------------- */

/* A connection accepted from a listener that is shut down (its shutdown
 * came while the accept slept, or in another process): drop it and fail
 * as TCP does.  One from vsock loopback may be the wake-up meant for the
 * next blocked accept; pass it on.  Only loopback connections cost a look
 * at the mark. */
static bool accepted_after_shut(int fd, struct vsk_fd_entry *e, long long gen, int nfd,
				const struct sockaddr_vm *peer)
{
	bool local = peer->svm_cid == VSK_CID_LOCAL || peer->svm_cid == vsk_local_cid();

	if (!(atomic_load(&e->state) & VSK_FD_SHUT) &&
	    (!local || vsk_mark_listener_shut(fd, false) != 1))
		return false;
	vsk_fd_release(nfd); /* a close we could not see may have left it behind */
	vsk_real.close(nfd);
	vsk_fd_update_if(fd, gen, VSK_FD_SHUT, 0);
	if (local)
		wake_an_acceptor(fd);
	return true;
}

static int accept_ours(int fd, struct vsk_fd_entry *e, struct sockaddr *sa, socklen_t *len,
		       int flags, bool is_accept4)
{
	enum vsk_app_family fam = vsk_fd_family(e);
	bool hybrid = atomic_load(&e->state) & VSK_FD_HYBRID;
	long long gen = vsk_fd_gen(fd);
	struct sockaddr_storage got;
	socklen_t glen = sizeof(got), orig = 0;
	int nfd;

	if (atomic_load(&e->state) & VSK_FD_SHUT)
		return vsk_fail(EINVAL);
	if (sa) {
		if (!len)
			return vsk_fail(EFAULT);
		orig = *len;
		if ((int)orig < 0)
			return vsk_fail(EINVAL);
		/* Check the whole buffer before a connection is taken. */
		socklen_t need = fam == VSK_APP_INET4 ? sizeof(struct sockaddr_in)
						      : sizeof(struct sockaddr_in6);
		if (!vsk_user_writable(sa, orig < need ? orig : need))
			return vsk_fail(EFAULT);
	}
	nfd = is_accept4 ? vsk_real.accept4(fd, (struct sockaddr *)&got, &glen, flags)
			 : vsk_real.accept(fd, (struct sockaddr *)&got, &glen);
	if (nfd < 0)
		return -1;
	if (got.ss_family == AF_UNIX && hybrid) {
		struct vsk_shown shown;
		struct sockaddr_storage peer;
		if (!vsk_hybrid_accepted(fd, nfd, fam))
			return -1;
		if (sa && vsk_fd_get_shown(nfd, &shown)) {
			memcpy(&peer, shown.peer, shown.peer_len);
			vsk_show_bytes(&peer, shown.peer_len, sa, orig, len);
		}
		return nfd;
	}
	if (got.ss_family != AF_VSOCK) {
		vsk_fd_release(nfd);
		if (sa)
			vsk_copy_out_addr(&got, glen, sa, len);
		return nfd;
	}
	if (!hybrid && accepted_after_shut(fd, e, gen, nfd, (struct sockaddr_vm *)(void *)&got))
		return vsk_fail(EINVAL);
	/* A child sharing its parent's memory records nothing: the mark
	 * alone names the socket (name_unlisted_vsock). */
	if (!vsk_fd_claim(nfd, fam) && vsk_fd_table_is_mine()) {
		vsk_real.close(nfd);
		vsk_log(VSK_LOG_ERROR, "fd %d is beyond the fds vsockify can track", nfd);
		return vsk_fail(EMFILE);
	}
	vsk_mark_socket(nfd, fam, -1);
	if (sa)
		vsk_show_addr(fam, (struct sockaddr_vm *)(void *)&got, true, NULL, 0, VSK_CID_ANY,
			      sa, orig, len);
	return nfd;
}

static int accept_common(int fd, struct sockaddr *sa, socklen_t *len, int flags,
			 bool is_accept4)
{
	struct vsk_fd_entry *e;
	int nfd;

	if ((e = vsk_fd_lookup(fd)))
		return accept_ours(fd, e, sa, len, flags, is_accept4);
	nfd = is_accept4 ? vsk_real.accept4(fd, sa, len, flags) : vsk_real.accept(fd, sa, len);
	if (nfd >= 0)
		vsk_fd_release(nfd); /* a close we could not see may have left it behind */
	return nfd;
}

VSK_EXPORT int accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	vsk_init();
	return accept_common(fd, sa, len, flags, true);
}

VSK_EXPORT int accept(int fd, struct sockaddr *sa, socklen_t *len)
{
	vsk_init();
	return accept_common(fd, sa, len, 0, false);
}
