/* Interposers for the socket calls that create, connect and describe our
 * sockets.  Each decides "is this ours?" first and otherwise calls libc
 * with the caller's own arguments. */
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "swap.h"

/* Where a connect/bind address leads on vsock: a fake address, or else the
 * first rule of that kind (docs/rules.md).  *rule gets the rule's index, or
 * -1.  An address length the kernel would refuse is never ours: the kernel
 * says EINVAL. */
static enum vsk_decode_result route_for(const struct sockaddr *sa, socklen_t len,
					enum vsk_rule_kind kind, struct vsk_target *t,
					int *rule)
{
	const struct vsk_rules *rs;
	enum vsk_decode_result fake;
	uint16_t port;

	*rule = -1;
	if (len > sizeof(struct sockaddr_storage))
		return VSK_ADDR_NOT_OURS;
	fake = vsk_decode_sockaddr(&vsk_cfg->net, sa, len, t);
	if (fake != VSK_ADDR_NOT_OURS || __builtin_expect(!(rs = vsk_rules())->n, 1))
		return fake;
	if ((*rule = vsk_rules_match_addr(rs, kind, sa, len)) < 0)
		return VSK_ADDR_NOT_OURS;
	/* sin_port and sin6_port share their offset. */
	port = ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
	vsk_rule_target(&rs->rule[*rule], port, &t->cid, &t->port);
	return VSK_ADDR_OK;
}

/* The address the app used, kept to show it back (connect: getpeername,
 * bind: getsockname), cleaned as the kernel would report it. */
static uint8_t keep_app_addr(const struct sockaddr *sa, unsigned char *out)
{
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in in;
		memcpy(&in, sa, sizeof(in));
		memset(in.sin_zero, 0, sizeof(in.sin_zero));
		memcpy(out, &in, sizeof(in));
		return sizeof(in);
	}
	struct sockaddr_in6 in6;
	memcpy(&in6, sa, sizeof(in6));
	in6.sin6_flowinfo = 0;
	memcpy(out, &in6, sizeof(in6));
	return sizeof(in6);
}

static void log_refused_type(const char *what, const struct sockaddr *sa,
			     socklen_t len)
{
	char buf[80];

	vsk_log(VSK_LOG_WARN, "%s %s: only TCP (SOCK_STREAM) can be carried over "
		"vsock; virtio-vsock has no datagrams", what,
		vsk_addr_str(sa, len, buf, sizeof(buf)));
}

static struct sockaddr_vm vsock_addr(uint32_t cid, uint32_t port)
{
	struct sockaddr_vm vm;

	memset(&vm, 0, sizeof(vm));
	vm.svm_family = AF_VSOCK;
	vm.svm_cid = cid;
	vm.svm_port = port;
	return vm;
}

/* Is fd still the kind of socket its entry says: AF_VSOCK, or AF_UNIX for
 * a hybrid one?  If not, the entry is stale (a close we could not see). */
static bool is_vsock(int fd)
{
	int domain = 0;
	socklen_t len = sizeof(domain);
	struct vsk_fd_entry *e;

	if (vsk_real.getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0)
		return false;
	if (domain == AF_VSOCK)
		return true;
	return domain == AF_UNIX && (e = vsk_fd_lookup(fd)) &&
	       (atomic_load(&e->state) & VSK_FD_HYBRID);
}

static void set_flags(struct vsk_fd_entry *e, unsigned set, unsigned clear)
{
	unsigned old = atomic_load(&e->state);

	while (old && !atomic_compare_exchange_weak(&e->state, &old, (old & ~clear) | set))
		;
}

enum { SWAP_GO = 1, SWAP_PASS = 0, SWAP_REFUSED = -1 };

/* The common start of a connect or bind to one of our addresses: is this a
 * TCP socket vsock can stand in for, and does the address name a CID? */
static int vet_swap(int fd, const struct sockaddr *sa, socklen_t len,
		    enum vsk_decode_result route, int rule, bool for_bind, struct vsk_swap *sw)
{
	const char *what = for_bind ? "bind to" : "connect to";
	char buf[80];
	int rc = vsk_swap_check(fd, sa, for_bind, sw);

	switch (rc) {
	case VSK_CHECK_OK:
		break;
	case VSK_CHECK_NOT_INET:
		return SWAP_PASS;
	case VSK_CHECK_NOT_STREAM:
		if (rule >= 0) /* rules are for TCP; a real address stays real for UDP */
			return SWAP_PASS;
		log_refused_type(what, sa, len);
		return vsk_fail(EPROTOTYPE);
	default:
		vsk_log(VSK_LOG_INFO, "%s %s: fd %d is already in use: %s", what,
			vsk_addr_str(sa, len, buf, sizeof(buf)), fd, strerror(-rc));
		return vsk_fail(-rc);
	}
	if (route == VSK_ADDR_INVALID) {
		vsk_log(VSK_LOG_WARN, "%s %s: address names no vsock CID", what,
			vsk_addr_str(sa, len, buf, sizeof(buf)));
		return vsk_fail(for_bind ? EADDRNOTAVAIL : EHOSTUNREACH);
	}
	sw->rule = rule;
	if (rule >= 0 && for_bind)
		sw->shown.local_len = keep_app_addr(sa, sw->shown.local);
	else if (rule >= 0)
		sw->shown.peer_len = keep_app_addr(sa, sw->shown.peer);
	return SWAP_GO;
}

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

static int connect_fake(int fd, const struct sockaddr *sa, socklen_t len,
			enum vsk_decode_result route, const struct vsk_target *t, int rule)
{
	struct vsk_swap sw;
	struct sockaddr_vm vm;
	int rc, h;

	if ((rc = vet_swap(fd, sa, len, route, rule, false, &sw)) != SWAP_GO)
		return rc == SWAP_PASS ? vsk_real.connect(fd, sa, len) : -1;
	if ((h = vsk_hybrid_rule_for(vsk_connect_cid(t->cid))) >= 0)
		return vsk_hybrid_connect(&sw, h, t->port, sa, len);
	vm = vsock_addr(vsk_connect_cid(t->cid), t->port);
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
	enum vsk_decode_result route;
	int rule;

	route = route_for(sa, len, VSK_RULE_CONNECT, &t, &rule);
	if (route == VSK_ADDR_NOT_OURS)
		return vsk_real.connect(fd, sa, len);
	return connect_fake(fd, sa, len, route, &t, rule);
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
		set_flags(e, 0, VSK_FD_CONNECTING);
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
			set_flags(e, 0, VSK_FD_CONNECTING);
			return 0;
		}
		if (err == EINTR || err == EINPROGRESS)
			return vsk_fail(err);
	} else if (vsk_real.getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) {
		return -1;
	}
	set_flags(e, VSK_FD_DEAD, VSK_FD_CONNECTING);
	return vsk_fail(err ? vsk_map_connect_errno(err) : ECONNABORTED);
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
		set_flags(e, VSK_FD_CONNECTING, 0);
		return vsk_fail(err);
	}
	if (err && err != EISCONN && err != EALREADY)
		set_flags(e, VSK_FD_DEAD, 0);
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
		sw->shown.peer_len = keep_app_addr(sa, sw->shown.peer);
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
	int rule, err, rc, h;

	if (!sa || len < sizeof(sa_family_t) || len > sizeof(struct sockaddr_storage) ||
	    sa->sa_family != (fam == VSK_APP_INET4 ? AF_INET : AF_INET6) ||
	    route_for(sa, len, VSK_RULE_CONNECT, &t, &rule) != VSK_ADDR_OK) {
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
	vm = vsock_addr(vsk_connect_cid(t.cid), t.port);
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
		vsk_fd_set_shown_peer(fd, (const struct sockaddr *)shown, keep_app_addr(sa, shown));
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
		set_flags(e, 0, VSK_FD_ABORTED);
		return vsk_fail(ECONNABORTED);
	}
	if (state & VSK_FD_CONNECTING)
		return connect_progress(fd, e);
	if (state & VSK_FD_HYBRID) /* connected, or a listener: as TCP says */
		return vsk_fail(EISCONN);
	if (route_for(sa, len, VSK_RULE_CONNECT, &t, &rule) != VSK_ADDR_OK) {
		/* vsock cannot reach a real address; say what TCP would. */
		if (vsk_real.getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
			return vsk_fail(EISCONN);
		return vsk_fail(state & VSK_FD_DEAD ? ECONNREFUSED : EAFNOSUPPORT);
	}
	vm = vsock_addr(vsk_connect_cid(t.cid), t.port);
	if (state & VSK_FD_DEAD) {
		struct vsk_swap sw;
		if ((rc = vsk_swap_check_ours(fd, &sw)) != VSK_CHECK_OK)
			return vsk_fail(-rc);
		sw.rule = rule;
		if (rule >= 0)
			sw.shown.peer_len = keep_app_addr(sa, sw.shown.peer);
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
		vsk_fd_set_shown_peer(fd, (const struct sockaddr *)shown,
				      keep_app_addr(sa, shown));
		errno = saved;
	}
	return rc;
}

VSK_EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct vsk_fd_entry *e;

	vsk_init();
	if ((e = vsk_fd_lookup(fd)))
		return connect_ours(fd, e, sa, len);
	return connect_plain(fd, sa, len);
}

/* An early socket about to do what only its TCP socket can: become it.
 * false (errno set) if that failed. */
static bool early_becomes_tcp(int fd, struct vsk_fd_entry **e)
{
	if (!*e || !(atomic_load(&(*e)->state) & VSK_FD_EARLY))
		return true;
	if (vsk_early_to_tcp(fd, *e, false, -1) != 0)
		return false;
	*e = vsk_fd_lookup(fd); /* NULL, unless something connected it meanwhile */
	return true;
}

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
		     enum vsk_decode_result route, const struct vsk_target *t, int rule)
{
	struct vsk_swap sw;
	struct sockaddr_vm vm;
	char buf[80];
	int vfd, rc, err;

	if ((rc = vet_swap(fd, sa, len, route, rule, true, &sw)) != SWAP_GO)
		return rc == SWAP_PASS ? vsk_real.bind(fd, sa, len) : -1;
	if ((rc = hybrid_listener_for(t->cid)) >= 0)
		return vsk_hybrid_bind(&sw, rc, t->cid, t->port, sa, len);
	if (rc == HYBRID_AMBIGUOUS)
		return vsk_fail(EADDRNOTAVAIL);
	if (t->port != 0 && (rc = share_listener(&sw, t)) <= 0)
		return rc;
	vfd = vsk_swap_new_socket(&sw, false, &err);
	if (vfd < 0)
		return vsk_fail(err == ENETUNREACH ? EADDRNOTAVAIL : err);
	vm = vsock_addr(t->cid, t->port);
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
	enum vsk_decode_result route;
	int rule;

	vsk_init();
	e = vsk_fd_lookup(fd);
	if (!early_becomes_tcp(fd, &e))
		return -1;
	if (e) /* already bound, like TCP: the kernel says EINVAL */
		return vsk_real.bind(fd, sa, len);
	route = route_for(sa, len, VSK_RULE_LISTEN, &t, &rule);
	if (route == VSK_ADDR_NOT_OURS)
		return vsk_real.bind(fd, sa, len);
	return bind_fake(fd, sa, len, route, &t, rule);
}

/* ---- addresses shown to the app ---------------------------------------- */

/* Can the kernel write n bytes at p?  A bad buffer must give the app EFAULT
 * as the kernel would, not crash it; getrandom writes through the same
 * checked copy the kernel uses for socket addresses. */
static bool user_writable(void *p, size_t n)
{
	return n == 0 || syscall(SYS_getrandom, p, n, GRND_NONBLOCK) >= 0 ||
	       errno != EFAULT;
}

/* Give the app an address with the kernel's truncation rule.  orig is the
 * app's buffer size; the first min(orig, sizeof(struct sockaddr_vm)) bytes
 * of sa were already checked by the kernel. */
static int show_bytes(const struct sockaddr_storage *shown, socklen_t shown_len,
		      struct sockaddr *sa, socklen_t orig, socklen_t *len)
{
	socklen_t n = orig < shown_len ? orig : shown_len;
	socklen_t checked = orig < sizeof(struct sockaddr_vm) ? orig : sizeof(struct sockaddr_vm);

	if (sa && n > checked && !user_writable((char *)sa + checked, n - checked))
		return vsk_fail(EFAULT);
	if (sa)
		memcpy(sa, shown, n);
	*len = shown_len;
	return 0;
}

static int show_addr(enum vsk_app_family fam, const struct sockaddr_vm *vm,
		     struct sockaddr *sa, socklen_t orig, socklen_t *len)
{
	struct sockaddr_storage shown;
	socklen_t shown_len = vsk_encode_sockaddr(&vsk_cfg->net, fam, vm->svm_cid,
						  vm->svm_port, &shown);

	return show_bytes(&shown, shown_len, sa, orig, len);
}

/* A socket a rule made shows the address the app used (docs/rules.md);
 * a listener bound to port 0 shows the port vsock picked. */
static socklen_t shown_by_rule(int fd, bool peer, const struct sockaddr_vm *vm,
			       struct sockaddr_storage *out)
{
	socklen_t n = vsk_fd_shown(fd, peer, out);
	struct sockaddr_in *in = (struct sockaddr_in *)(void *)out;

	if (n && !peer && in->sin_port == 0 && vm->svm_family == AF_VSOCK) /* sin6_port too */
		in->sin_port = htons(vsk_fold_port(vm->svm_port));
	return n;
}

/* Call real (getsockname, getpeername) for one of ours.  The kernel itself
 * fills the app's buffer first (so bad pointers give EFAULT); then the
 * vsock address is rewritten in the app's family.  *vm gets it. */
typedef int (*name_fn)(int, struct sockaddr *, socklen_t *);

static int fetch_name(name_fn real, int fd, struct sockaddr *sa, socklen_t *len,
		      socklen_t *orig, struct sockaddr_storage *got)
{
	socklen_t glen = sizeof(*got);

	if (!len)
		return real(fd, sa, len); /* EFAULT */
	*orig = *len;
	if ((int)*orig < 0)
		return vsk_fail(EINVAL);
	if (sa && *orig >= sizeof(struct sockaddr_vm)) {
		if (real(fd, sa, len) != 0)
			return -1;
		memcpy(got, sa, *len < sizeof(*got) ? *len : sizeof(*got));
		return 0;
	}
	if (sa && *orig && !user_writable(sa, *orig))
		return vsk_fail(EFAULT);
	return real(fd, (struct sockaddr *)got, &glen);
}

/* A connected vsock socket reports its local CID as "any" (TCP would show
 * the real source address): name this machine instead. */
static void fill_local_cid(int fd, struct sockaddr_vm *vm)
{
	struct sockaddr_vm peer;
	socklen_t plen = sizeof(peer);

	if (vm->svm_cid != VSK_CID_ANY ||
	    vsk_real.getpeername(fd, (struct sockaddr *)&peer, &plen) != 0)
		return;
	vm->svm_cid = peer.svm_cid == VSK_CID_LOCAL ? VSK_CID_LOCAL : vsk_local_cid();
}

static int name_ours(name_fn real, int fd, struct vsk_fd_entry *e,
		     struct sockaddr *sa, socklen_t *len)
{
	struct sockaddr_storage got;
	socklen_t orig = 0;
	sa_family_t want = (atomic_load(&e->state) & VSK_FD_HYBRID) ? AF_UNIX : AF_VSOCK;

	for (int tries = 0;; tries++) {
		if (fetch_name(real, fd, sa, len, &orig, &got) != 0)
			return -1;
		if (got.ss_family == want)
			break;
		/* Not vsock: closed behind our back, or a swap in another
		 * thread is between its claim and its dup3 (the lock waits
		 * that out, and then it is vsock: ask again). */
		if (vsk_fd_drop_if_stale(fd, is_vsock) || tries)
			return 0;
		*len = orig;
	}
	struct sockaddr_vm *vm = (struct sockaddr_vm *)(void *)&got;
	bool peer = real == vsk_real.getpeername;
	if (!peer && (atomic_load(&e->state) & VSK_FD_EARLY) && vm->svm_port == VMADDR_PORT_ANY) {
		/* An unbound TCP socket: the wildcard address, port 0. */
		struct sockaddr_storage any = { 0 };
		any.ss_family = vsk_fd_family(e) == VSK_APP_INET4 ? AF_INET : AF_INET6;
		return show_bytes(&any, any.ss_family == AF_INET ? sizeof(struct sockaddr_in)
								 : sizeof(struct sockaddr_in6),
				  sa, orig, len);
	}
	if (atomic_load_explicit(&e->state, memory_order_acquire) & VSK_FD_SHOWN) {
		struct sockaddr_storage shown;
		socklen_t n = shown_by_rule(fd, peer, vm, &shown);
		if (n)
			return show_bytes(&shown, n, sa, orig, len);
	}
	if (want != AF_VSOCK) /* a hybrid socket always has its addresses */
		return vsk_fail(ENOTCONN);
	if (!peer)
		fill_local_cid(fd, vm);
	return show_addr(vsk_fd_family(e), vm, sa, orig, len);
}

/* A vsock socket with our mark that the table lacks: a dup2 in a child
 * that shares its parent's memory (vfork, clone(CLONE_VM)), which may not
 * record it, or a dup we could not see.  Shown from the mark alone when the
 * table is not ours to change (a rule's own address needs the entry). */
static int name_unrecorded(name_fn real, int fd, struct sockaddr *sa, socklen_t *len,
			   socklen_t orig)
{
	struct vsk_fd_entry *e, seen = { 0 };
	int rule;
	enum vsk_app_family fam = vsk_read_mark(fd, &rule);

	if (!fam)
		return 0; /* a native vsock socket */
	*len = orig;
	if ((e = vsk_fd_adopt(fd)))
		return name_ours(real, fd, e, sa, len);
	atomic_init(&seen.state, VSK_FD_OURS | (unsigned)fam);
	return name_ours(real, fd, &seen, sa, len);
}

/* A Unix socket we don't know may be a hybrid one an exec'd program
 * inherited (sshd -R, a CGI child): the name says, and costs nothing for
 * every other family but vsock. */
static int name_not_ours(name_fn real, int fd, struct sockaddr *sa, socklen_t *len)
{
	socklen_t orig = len ? *len : 0;
	struct vsk_fd_entry *e;

	if (real(fd, sa, len) != 0)
		return -1;
	if (!sa || orig < sizeof(sa_family_t))
		return 0;
	if (sa->sa_family == AF_VSOCK)
		return name_unrecorded(real, fd, sa, len, orig);
	if (sa->sa_family != AF_UNIX || !vsk_hybrid_adopt(fd) || !(e = vsk_fd_lookup(fd)))
		return 0;
	*len = orig;
	return name_ours(real, fd, e, sa, len);
}

VSK_EXPORT int getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct vsk_fd_entry *e;

	vsk_init();
	if (!(e = vsk_fd_lookup(fd)))
		return name_not_ours(vsk_real.getsockname, fd, sa, len);
	return name_ours(vsk_real.getsockname, fd, e, sa, len);
}

VSK_EXPORT int getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct vsk_fd_entry *e;

	vsk_init();
	if (!(e = vsk_fd_lookup(fd)))
		return name_not_ours(vsk_real.getpeername, fd, sa, len);
	return name_ours(vsk_real.getpeername, fd, e, sa, len);
}

/* ---- accept --------------------------------------------------------------- */

static int accept_ours(int fd, enum vsk_app_family fam, bool hybrid, struct sockaddr *sa,
		       socklen_t *len, int flags, bool is_accept4)
{
	struct sockaddr_storage got;
	socklen_t glen = sizeof(got), orig = 0;
	int nfd;

	if (sa) {
		if (!len)
			return vsk_fail(EFAULT);
		orig = *len;
		if ((int)orig < 0)
			return vsk_fail(EINVAL);
		/* Check the whole buffer before a connection is taken. */
		socklen_t need = fam == VSK_APP_INET4 ? sizeof(struct sockaddr_in)
						      : sizeof(struct sockaddr_in6);
		if (!user_writable(sa, orig < need ? orig : need))
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
			show_bytes(&peer, shown.peer_len, sa, orig, len);
		}
		return nfd;
	}
	if (got.ss_family != AF_VSOCK) {
		vsk_fd_release(nfd);
		if (sa)
			vsk_copy_out_addr(&got, glen, sa, len);
		return nfd;
	}
	/* A child sharing its parent's memory records nothing: the mark
	 * alone names the socket (name_unrecorded). */
	if (!vsk_fd_claim(nfd, fam) && vsk_fd_table_is_mine()) {
		vsk_real.close(nfd);
		vsk_log(VSK_LOG_ERROR, "fd %d is beyond the fds vsockify can track", nfd);
		return vsk_fail(EMFILE);
	}
	vsk_mark_socket(nfd, fam, -1);
	if (sa)
		show_addr(fam, (struct sockaddr_vm *)(void *)&got, sa, orig, len);
	return nfd;
}

static int accept_common(int fd, struct sockaddr *sa, socklen_t *len, int flags,
			 bool is_accept4)
{
	struct vsk_fd_entry *e;
	int nfd;

	if ((e = vsk_fd_lookup(fd)))
		return accept_ours(fd, vsk_fd_family(e), atomic_load(&e->state) & VSK_FD_HYBRID,
				   sa, len, flags, is_accept4);
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

/* ---- socket options ------------------------------------------------------ */

static bool is_protocol_level(int level)
{
	return level == IPPROTO_TCP || level == IPPROTO_IP || level == IPPROTO_IPV6;
}

/* Still a vsock socket?  Otherwise the entry is stale: drop it. */
static bool still_vsock(int fd)
{
	return is_vsock(fd) || !vsk_fd_drop_if_stale(fd, is_vsock);
}

static int put_opt(const void *value, socklen_t n, void *optval, socklen_t *optlen)
{
	if (!optval || !optlen)
		return vsk_fail(EFAULT);
	if ((int)*optlen < 0)
		return vsk_fail(EINVAL);
	if (*optlen > n)
		*optlen = n;
	if (!user_writable(optval, *optlen))
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
			if (vsk_real.getsockopt(fd, level, optname, &v, &l) != 0)
				return -1;
			state = atomic_load(&e->state);
			/* A success stays "connecting" until the next connect,
			 * which TCP answers with 0 once. */
			if ((state & VSK_FD_CONNECTING) && v != 0) {
				set_flags(e, VSK_FD_DEAD | VSK_FD_ABORTED, VSK_FD_CONNECTING);
				v = vsk_map_connect_errno(v);
			}
			return put_int_opt(v, optval, optlen);
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

/* ---- sends that name a destination ------------------------------------- */

/* Returns 1 if the send may go ahead (with the address dropped when the
 * socket is ours), 0 to pass through untouched, -1 with errno set. */
static int vet_destination(int fd, const struct sockaddr *dst, socklen_t len,
			   int flags, bool *drop_addr)
{
	struct vsk_fd_entry *e;
	struct vsk_target t;
	struct vsk_swap sw;
	enum vsk_decode_result route;
	int rule;

	*drop_addr = false;
	e = vsk_fd_lookup(fd);
	if (!early_becomes_tcp(fd, &e))
		return -1;
	if (e) {
		/* TCP ignores a destination on a stream socket; vsock errors. */
		*drop_addr = true;
		return 1;
	}
	route = route_for(dst, len, VSK_RULE_CONNECT, &t, &rule);
	if (route == VSK_ADDR_NOT_OURS)
		return 0;
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
				log_refused_type("send to", dst, len);
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
		log_refused_type("send to", dst, len);
		return vsk_fail(EPROTOTYPE);
	}
	if (connect_fake(fd, dst, len, route, &t, rule) != 0 && errno != EINPROGRESS)
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

/* ---- listen and fds passed over Unix sockets ------------------------------ */

/* A full accept queue makes TCP's client wait and retry; vsock resets the
 * connection at once and the client sees "connection refused".  So our
 * listeners get the deepest queue the system allows (net.core.somaxconn,
 * to which the kernel clamps this). */
VSK_EXPORT int listen(int fd, int backlog)
{
	struct vsk_fd_entry *e;

	vsk_init();
	e = vsk_fd_lookup(fd);
	if (!early_becomes_tcp(fd, &e))
		return -1;
	if (!e)
		return vsk_real.listen(fd, backlog);
	return vsk_real.listen(fd, INT32_MAX);
}

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

VSK_EXPORT int socket(int domain, int type, int protocol)
{
	unsigned site;
	int fd;

	vsk_init();
	if (vsk_cfg->early_sockets && (domain == AF_INET || domain == AF_INET6) &&
	    (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == SOCK_STREAM &&
	    (protocol == 0 || protocol == IPPROTO_TCP)) {
		site = vsk_early_site(__builtin_return_address(0), domain);
		if (vsk_early_predicted(site) && (fd = vsk_early_socket(domain, type, site)) >= 0)
			return fd;
	}
	fd = vsk_real.socket(domain, type, protocol);
	if (fd >= 0) {
		vsk_fd_release(fd); /* a close we could not see left it behind */
		vsk_early_note_fd(fd);
	}
	return fd;
}
