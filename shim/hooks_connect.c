/* connect(): the swap to vsock (blocking, interrupted, in progress), a
 * connect on a socket that is already ours, and early sockets connecting
 * in place. */
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include "hooks.h"

/* A blocking app's connect on a blocking vsock socket: the common case in
 * the fewest syscalls (no poll, no mode switch back).  vsock cancels a
 * connect that a signal interrupts, where TCP's goes on; so on EINTR start
 * again on a fresh socket: in the foreground if every handler asks for a
 * restart, else in the background, and the app gets EINTR as from TCP.
 * Returns the error; *vfd is the socket, or -1 if none could be made. */
static int connect_blocking(struct vsk_swap *sw, const struct sockaddr_vm *vm, int *vfd)
{
	int err;

	sw->connect_blocking = true;
	while (!sw->interrupted || vsk_signal_handlers_restart()) {
		if ((*vfd = vsk_swap_new_socket(sw, true, &err)) < 0)
			return err;
		err = vsk_real.connect(*vfd, (const struct sockaddr *)vm, sizeof(*vm)) == 0 ? 0 : errno;
		if (err != EINTR)
			return err;
		vsk_real.close(*vfd);
		sw->interrupted = true;
	}
	sw->connect_blocking = false;
	if ((*vfd = vsk_swap_new_socket(sw, true, &err)) < 0)
		return err;
	err = vsk_real.connect(*vfd, (const struct sockaddr *)vm, sizeof(*vm)) == 0 ? 0 : errno;
	return err == EINPROGRESS ? EINTR : err;
}

/* Connect a fresh vsock socket to vm and put it on sw->fd.  Like TCP, a
 * blocking connect interrupted by a signal (or out of SO_SNDTIMEO) goes on
 * in the kernel: the socket is installed as connecting and the app learns
 * the result from poll + SO_ERROR or another connect. */
static int swap_and_connect(struct vsk_swap *sw, const struct sockaddr_vm *vm,
			    const struct sockaddr *sa, socklen_t len)
{
	bool app_nonblock = sw->status_flags >= 0 && (sw->status_flags & O_NONBLOCK);
	char buf[80];
	int vfd, err;

	if (!app_nonblock && sw->sndtimeo_ms < 0) {
		err = connect_blocking(sw, vm, &vfd);
		if (vfd < 0)
			return vsk_fail(err);
	} else {
		vfd = vsk_swap_new_socket(sw, true, &err);
		if (vfd < 0)
			return vsk_fail(err);
		err = vsk_real.connect(vfd, (const struct sockaddr *)vm, sizeof(*vm)) == 0 ? 0 : errno;
		if (err == EINPROGRESS && !app_nonblock)
			err = vsk_wait_connect(vfd, sw->sndtimeo_ms);
	}

	if (err == 0 || err == EINPROGRESS || err == EINTR) {
		int ierr = vsk_swap_install(sw, vfd, err ? VSK_FD_CONNECTING : 0);
		if (ierr)
			return vsk_fail(ierr);
		vsk_log(VSK_LOG_DEBUG, "fd %d: connect %s -> vsock:%u:%u%s%s", sw->fd,
			vsk_addr_str(sa, len, buf, sizeof(buf)), vm->svm_cid, vm->svm_port,
			sw->rule >= 0 ? " (by a rule)" : "", err ? " (in progress)" : "");
		return err ? vsk_fail(err) : 0;
	}
	vsk_real.close(vfd);
	vsk_log(VSK_LOG_INFO, "connect to vsock:%u:%u failed: %s", vm->svm_cid,
		vm->svm_port, strerror(err));
	return vsk_fail(vsk_map_connect_errno(err));
}

int vsk_connect_fake(int fd, const struct sockaddr *sa, socklen_t len, enum vsk_route route,
		     const struct vsk_target *t, int rule)
{
	struct vsk_swap sw;
	struct sockaddr_vm vm;
	int rc, h;

	if ((rc = vsk_vet_swap(fd, sa, len, route, rule, false, &sw)) != VSK_SWAP_GO)
		return rc == VSK_SWAP_PASS ? vsk_real.connect(fd, sa, len) : -1;
	if ((h = vsk_hybrid_rule_for(vsk_connect_cid(t->cid))) >= 0)
		return vsk_hybrid_connect(&sw, h, t->port, sa, len);
	vm = vsk_vsock_addr(vsk_connect_cid(t->cid), t->port);
	rc = swap_and_connect(&sw, &vm, sa, len);
	if (rc == 0 || errno == EINPROGRESS || errno == EINTR)
		vsk_early_hit_fd(fd); /* and this process can make vsock sockets */
	return rc;
}

static int connect_ours(int fd, struct vsk_fd_entry *e, const struct sockaddr *sa,
			socklen_t len);

/* connect() on a socket that is not ours. */
static int connect_plain(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct vsk_target t;
	enum vsk_route route;
	int rule;

	route = vsk_route_for(sa, len, VSK_RULE_CONNECT, &t, &rule);
	if (route == VSK_ROUTE_NOT_OURS)
		return vsk_real.connect(fd, sa, len);
	if (route == VSK_ROUTE_UNKNOWN)
		return -1;
	return vsk_connect_fake(fd, sa, len, route, &t, rule);
}

/* Put a fresh, unconnected vsock socket (same options) on one of ours:
 * TCP's disconnect, and the way back from a failed connect. */
static int replace_with_fresh(int fd, unsigned state)
{
	struct vsk_fd_entry *e = vsk_fd_lookup(fd);
	struct vsk_swap sw;
	int vfd, err, rc;

	if ((rc = vsk_swap_check_ours(fd, &sw)) != VSK_CHECK_OK)
		return vsk_fail(-rc);
	if (e && (atomic_load(&e->state) & VSK_FD_HYBRID)) {
		/* A hybrid socket disconnected is a fresh TCP socket again: the
		 * next connect decides where it goes, like any other. */
		vfd = vsk_real.socket(sw.fam == VSK_APP_INET4 ? AF_INET : AF_INET6,
				      SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (vfd < 0)
			return -1;
		if (sw.status_flags >= 0)
			vsk_real.fcntl(vfd, F_SETFL, sw.status_flags);
		err = vsk_fd_install(vfd, fd, sw.gen, 0,
				     (sw.fd_flags > 0 && (sw.fd_flags & FD_CLOEXEC)) ? O_CLOEXEC : 0,
				     NULL, 0, NULL);
		vsk_real.close(vfd);
		return err ? vsk_fail(err) : 0;
	}
	vfd = vsk_swap_new_socket(&sw, false, &err);
	if (vfd < 0)
		return vsk_fail(err);
	err = vsk_swap_install(&sw, vfd, state);
	return err ? vsk_fail(err) : 0;
}

/* A connect on a socket whose connect is running: what TCP would say. */
static int connect_progress(int fd, struct vsk_fd_entry *e)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	struct sockaddr_vm peer;
	socklen_t plen = sizeof(peer);
	int err = 0, fl;
	socklen_t elen = sizeof(err);

	if (vsk_real.getpeername(fd, (struct sockaddr *)&peer, &plen) == 0) {
		vsk_set_flags(e, 0, VSK_FD_CONNECTING);
		return 0; /* TCP's first connect after completion says 0 */
	}
	if (poll(&p, 1, 0) < 0)
		return -1;
	if (!(p.revents & (POLLERR | POLLNVAL))) {
		fl = vsk_real.fcntl(fd, F_GETFL);
		if (fl >= 0 && (fl & O_NONBLOCK))
			return vsk_fail(EALREADY);
		/* Blocking: wait, as TCP's blocking connect does. */
		err = vsk_wait_connect(fd, -1);
		if (err == 0) {
			vsk_set_flags(e, 0, VSK_FD_CONNECTING);
			return 0;
		}
		if (err == EINTR || err == EINPROGRESS)
			return vsk_fail(err);
	} else if (vsk_real.getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) {
		return -1;
	}
	vsk_set_flags(e, VSK_FD_DEAD, VSK_FD_CONNECTING);
	return vsk_fail(err ? vsk_map_connect_errno(err) : ECONNABORTED);
}

/* The same for a hybrid connect a signal cut short: a blocking socket
 * waits for the VMM's answer, as TCP's blocking connect would. */
static int connect_hybrid_progress(int fd)
{
	int fl = vsk_real.fcntl(fd, F_GETFL), err;
	bool blocking = fl >= 0 && !(fl & O_NONBLOCK);

	err = vsk_hybrid_finish(fd, blocking, blocking);
	return err ? vsk_fail(err) : 0;
}

/* Initiate a connect on one of ours in place (bound first, then
 * connected); briefly non-blocking so a signal cannot cancel it. */
static int connect_in_place(int fd, struct vsk_fd_entry *e, const struct sockaddr_vm *vm)
{
	int fl = vsk_real.fcntl(fd, F_GETFL), err;
	bool blocking = fl >= 0 && !(fl & O_NONBLOCK);

	if (blocking)
		vsk_real.fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	err = vsk_real.connect(fd, (const struct sockaddr *)vm, sizeof(*vm)) == 0 ? 0 : errno;
	if (blocking)
		vsk_real.fcntl(fd, F_SETFL, fl);
	if (err == EINPROGRESS && blocking)
		err = vsk_wait_connect(fd, -1);
	if (err == EINPROGRESS || err == EINTR) {
		vsk_set_flags(e, VSK_FD_CONNECTING, 0);
		return vsk_fail(err);
	}
	if (err && err != EISCONN && err != EALREADY)
		vsk_set_flags(e, VSK_FD_DEAD, 0);
	return err ? vsk_fail(vsk_map_connect_errno(err)) : 0;
}

/* A swap that replaces early socket fd, as it was at generation gen, for
 * a connect routed by rule (or -1) in app family fam.  0, or -1 with errno. */
static int swap_from_early(int fd, long long gen, enum vsk_app_family fam, int rule,
			   const struct sockaddr *sa, struct vsk_swap *sw)
{
	int rc = vsk_swap_check_ours(fd, sw);

	if (rc != VSK_CHECK_OK)
		return vsk_fail(-rc);
	sw->gen = gen;
	sw->fam = fam;
	sw->rule = rule;
	if (rule >= 0)
		sw->shown.peer_len = vsk_keep_app_addr(sa, sw->shown.peer);
	return 0;
}

/* The connect an early vsock socket was made for: in place, in the
 * syscalls of a native vsock client.  What needs more (hybrid, SO_SNDTIMEO,
 * a signal) is a swap that starts from the early socket; a real address,
 * or anything else, makes it TCP first and takes the usual way, so it
 * behaves exactly as before (docs/design.md, "Early vsock sockets").  Every
 * step after the kernel's connect acts only if fd's generation is still
 * the one read on entry: another thread may have closed and reused the
 * number meanwhile. */
static int connect_early(int fd, struct vsk_fd_entry *e, const struct sockaddr *sa,
			 socklen_t len)
{
	enum vsk_app_family fam = vsk_fd_family(e), want = fam;
	long long gen = vsk_fd_gen(fd);
	struct vsk_target t;
	struct sockaddr_vm vm;
	struct vsk_swap sw;
	char buf[80];
	enum vsk_route route = VSK_ROUTE_NOT_OURS;
	int rule, err, rc, h;

	if (sa && len >= sizeof(sa_family_t) && len <= sizeof(struct sockaddr_storage) &&
	    sa->sa_family == (fam == VSK_APP_INET4 ? AF_INET : AF_INET6) &&
	    (route = vsk_route_for(sa, len, VSK_RULE_CONNECT, &t, &rule)) == VSK_ROUTE_UNKNOWN)
		return -1;
	if (route != VSK_ROUTE_VSOCK) {
		if (vsk_early_to_tcp(fd, e, false, gen) != 0)
			return -1;
		/* Still early only in a vfork child, whose number is TCP now. */
		e = vsk_fd_lookup(fd);
		if (e && !(atomic_load(&e->state) & VSK_FD_EARLY))
			return connect_ours(fd, e, sa, len);
		return connect_plain(fd, sa, len);
	}
	if (fam == VSK_APP_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr))
		want = VSK_APP_MAPPED;
	vm = vsk_vsock_addr(vsk_connect_cid(t.cid), t.port);
	h = vsk_hybrid_rule_for(vm.svm_cid);
	if (h >= 0 || (atomic_load(&e->touched) & vsk_replay_bit(SOL_SOCKET, SO_SNDTIMEO))) {
		if ((rc = swap_from_early(fd, gen, want, rule, sa, &sw)) != 0)
			return rc;
		return h >= 0 ? vsk_hybrid_connect(&sw, h, t.port, sa, len)
			      : swap_and_connect(&sw, &vm, sa, len);
	}
	if (want != fam || rule >= 0) {
		vsk_fd_update_if(fd, gen, (unsigned)want, VSK_FD_FAMILY_MASK);
		vsk_mark_socket(fd, want, rule);
	}
	if (rule >= 0) {
		unsigned char shown[VSK_SHOWN_MAX];
		vsk_fd_set_shown(fd, true, (const struct sockaddr *)shown,
				 vsk_keep_app_addr(sa, shown));
	}
	err = vsk_real.connect(fd, (const struct sockaddr *)&vm, sizeof(vm)) == 0 ? 0 : errno;
	if (err == 0 || err == EINPROGRESS) {
		vsk_fd_update_if(fd, gen, err ? VSK_FD_CONNECTING : 0, VSK_FD_EARLY);
		vsk_log(VSK_LOG_DEBUG, "fd %d: connect %s -> vsock:%u:%u (early socket)%s", fd,
			vsk_addr_str(sa, len, buf, sizeof(buf)), vm.svm_cid, vm.svm_port,
			err ? " (in progress)" : "");
		return err ? vsk_fail(err) : 0;
	}
	if (err == EISCONN || err == EALREADY) {
		/* A dup or a fork child connected it (or is connecting it): it
		 * is an ordinary socket of ours now, and TCP's answers follow. */
		if (!vsk_fd_update_if(fd, gen, 0, VSK_FD_EARLY))
			return vsk_fail(err);
		return connect_ours(fd, e, sa, len);
	}
	if (err == EINTR) {
		/* Only a blocking connect waits, so only it is interrupted; vsock
		 * cancelled it, where TCP's goes on: carry on as a swap
		 * interrupted by the same signal does. */
		if ((rc = swap_from_early(fd, gen, want, rule, sa, &sw)) != 0)
			return rc;
		sw.interrupted = true;
		return swap_and_connect(&sw, &vm, sa, len);
	}
	/* Failed: leave what a failed TCP connect leaves, a TCP socket that
	 * may connect again. */
	vsk_log(VSK_LOG_INFO, "connect to vsock:%u:%u failed: %s", vm.svm_cid, vm.svm_port,
		strerror(err));
	if (vsk_early_to_tcp(fd, e, true, gen) != 0)
		vsk_fd_update_if(fd, gen, VSK_FD_DEAD, VSK_FD_EARLY);
	return vsk_fail(vsk_map_connect_errno(err));
}

/* A connect on a socket that is already ours. */
static int connect_ours(int fd, struct vsk_fd_entry *e, const struct sockaddr *sa,
			socklen_t len)
{
	struct vsk_target t;
	struct sockaddr_vm vm, peer;
	socklen_t plen = sizeof(peer);
	enum vsk_route route;
	unsigned state;
	int rule, rc;

	if (atomic_load(&e->state) & VSK_FD_EARLY)
		return connect_early(fd, e, sa, len);
	if (!sa || len < sizeof(sa_family_t) || len > sizeof(struct sockaddr_storage))
		return vsk_real.connect(fd, sa, len); /* the kernel's own error */
	if (sa->sa_family == AF_UNSPEC) /* TCP: disconnect, ready to connect again */
		return replace_with_fresh(fd, VSK_FD_DEAD);
	state = atomic_load(&e->state);
	if (state & VSK_FD_ABORTED) {
		vsk_set_flags(e, 0, VSK_FD_ABORTED);
		return vsk_fail(ECONNABORTED);
	}
	if ((state & (VSK_FD_CONNECTING | VSK_FD_HYBRID)) == (VSK_FD_CONNECTING | VSK_FD_HYBRID))
		return connect_hybrid_progress(fd);
	if (state & VSK_FD_CONNECTING)
		return connect_progress(fd, e);
	if (state & VSK_FD_HYBRID) /* connected, or a listener: as TCP says */
		return vsk_fail(EISCONN);
	if ((route = vsk_route_for(sa, len, VSK_RULE_CONNECT, &t, &rule)) == VSK_ROUTE_UNKNOWN)
		return -1;
	if (route != VSK_ROUTE_VSOCK) {
		/* vsock cannot reach a real address; say what TCP would. */
		if (vsk_real.getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
			return vsk_fail(EISCONN);
		return vsk_fail(state & VSK_FD_DEAD ? ECONNREFUSED : EAFNOSUPPORT);
	}
	vm = vsk_vsock_addr(vsk_connect_cid(t.cid), t.port);
	if (state & VSK_FD_DEAD) {
		struct vsk_swap sw;
		if ((rc = vsk_swap_check_ours(fd, &sw)) != VSK_CHECK_OK)
			return vsk_fail(-rc);
		sw.rule = rule;
		if (rule >= 0)
			sw.shown.peer_len = vsk_keep_app_addr(sa, sw.shown.peer);
		if ((rc = vsk_hybrid_rule_for(vm.svm_cid)) >= 0)
			return vsk_hybrid_connect(&sw, rc, t.port, sa, len);
		return swap_and_connect(&sw, &vm, sa, len);
	}
	if (vsk_socket_state(fd) != TCP_CLOSE)
		return vsk_fail(EISCONN);
	rc = connect_in_place(fd, e, &vm);
	if (rule >= 0 && (rc == 0 || errno == EINPROGRESS || errno == EINTR)) {
		unsigned char shown[VSK_SHOWN_MAX];
		int saved = errno;
		vsk_fd_set_shown(fd, true, (const struct sockaddr *)shown,
				      vsk_keep_app_addr(sa, shown));
		errno = saved;
	}
	return rc;
}

VSK_EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct vsk_fd_entry *e;

	vsk_init();
	if (__builtin_expect(vsk_cfg->supervised, 0))
		return vsk_real.connect(fd, sa, len);
	if ((e = vsk_fd_lookup(fd)))
		return connect_ours(fd, e, sa, len);
	return connect_plain(fd, sa, len);
}
