/* Interposers for the socket calls that create, connect and describe our
 * sockets.  Each decides "is this ours?" first and otherwise calls libc
 * with the caller's own arguments. */
#include <linux/vm_sockets.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include "swap.h"

/* Where a connect/bind address leads on vsock.  Today only fake addresses;
 * a rules table for hard-coded IP:port pairs plugs in here. */
static enum vsk_decode_result route_for(const struct sockaddr *sa, socklen_t len,
					struct vsk_target *t)
{
	return vsk_decode_sockaddr(&vsk_cfg->net, sa, len, t);
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

enum { SWAP_GO = 1, SWAP_PASS = 0, SWAP_REFUSED = -1 };

/* The common start of a connect or bind to one of our addresses: is this a
 * TCP socket vsock can stand in for, and does the address name a CID? */
static int vet_swap(int fd, const struct sockaddr *sa, socklen_t len,
		    enum vsk_decode_result route, const char *what,
		    int invalid_errno, enum vsk_app_family *fam)
{
	char buf[80];

	switch (vsk_inet_stream_check(fd, sa, fam)) {
	case VSK_CHECK_NOT_INET:
		return SWAP_PASS;
	case VSK_CHECK_NOT_STREAM:
		log_refused_type(what, sa, len);
		return vsk_fail(EPROTOTYPE);
	}
	if (route == VSK_ADDR_INVALID) {
		vsk_log(VSK_LOG_WARN, "%s %s: address names no vsock CID", what,
			vsk_addr_str(sa, len, buf, sizeof(buf)));
		return vsk_fail(invalid_errno);
	}
	return SWAP_GO;
}

static int connect_fake(int fd, const struct sockaddr *sa, socklen_t len,
			enum vsk_decode_result route, const struct vsk_target *t)
{
	enum vsk_app_family fam;
	struct sockaddr_vm vm;
	char buf[80];
	int vfd, rc, err;

	if ((rc = vet_swap(fd, sa, len, route, "connect to", EHOSTUNREACH, &fam)) != SWAP_GO)
		return rc == SWAP_PASS ? vsk_real.connect(fd, sa, len) : -1;
	vfd = vsk_new_vsock_for(fd, fam, &err);
	if (vfd < 0)
		return vsk_fail(err);
	vm = vsock_addr(vsk_connect_cid(t->cid), t->port);
	rc = vsk_real.connect(vfd, (struct sockaddr *)&vm, sizeof(vm));
	err = rc == 0 ? 0 : errno;

	if (rc == 0 || err == EINPROGRESS || err == EINTR) {
		unsigned pending = rc == 0 ? 0 : VSK_FD_CONNECTING;
		int ierr;
		if (vsk_install_vsock(vfd, fd, fam, pending, &ierr) != 0) {
			vsk_real.close(vfd);
			return vsk_fail(ierr);
		}
		vsk_log(VSK_LOG_DEBUG, "fd %d: connect %s -> vsock:%u:%u%s", fd,
			vsk_addr_str(sa, len, buf, sizeof(buf)), vm.svm_cid,
			vm.svm_port, rc == 0 ? "" : " (in progress)");
		return rc == 0 ? 0 : vsk_fail(err);
	}
	vsk_real.close(vfd);
	vsk_log(VSK_LOG_INFO, "connect to vsock:%u:%u failed: %s", vm.svm_cid,
		vm.svm_port, strerror(err));
	return vsk_fail(vsk_map_connect_errno(err));
}

/* A second connect on a swapped socket (polling a nonblocking connect,
 * EISCONN checks) goes to the vsock socket with the translated address. */
static int connect_ours(int fd, struct vsk_fd_entry *e, const struct sockaddr *sa,
			socklen_t len)
{
	struct vsk_target t;
	struct sockaddr_vm vm;
	int rc;

	if (route_for(sa, len, &t) != VSK_ADDR_OK)
		return vsk_real.connect(fd, sa, len);
	vm = vsock_addr(vsk_connect_cid(t.cid), t.port);
	rc = vsk_real.connect(fd, (struct sockaddr *)&vm, sizeof(vm));
	if (rc == 0 || errno == EISCONN)
		atomic_fetch_and(&e->state, ~VSK_FD_CONNECTING);
	return rc == 0 ? 0 : vsk_fail(vsk_map_connect_errno(errno));
}

VSK_EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct vsk_fd_entry *e;
	struct vsk_target t;
	enum vsk_decode_result route;

	vsk_init();
	if ((e = vsk_fd_lookup(fd)))
		return connect_ours(fd, e, sa, len);
	route = route_for(sa, len, &t);
	if (route == VSK_ADDR_NOT_OURS)
		return vsk_real.connect(fd, sa, len);
	return connect_fake(fd, sa, len, route, &t);
}

static int bind_fake(int fd, const struct sockaddr *sa, socklen_t len,
		     enum vsk_decode_result route, const struct vsk_target *t)
{
	enum vsk_app_family fam;
	struct sockaddr_vm vm;
	char buf[80];
	int vfd, rc, err;

	if ((rc = vet_swap(fd, sa, len, route, "bind to", EADDRNOTAVAIL, &fam)) != SWAP_GO)
		return rc == SWAP_PASS ? vsk_real.bind(fd, sa, len) : -1;
	vfd = vsk_new_vsock_for(fd, fam, &err);
	if (vfd < 0)
		return vsk_fail(err == ENETUNREACH ? EADDRNOTAVAIL : err);
	vm = vsock_addr(t->cid, t->port);
	rc = t->port == 0 ? vsk_bind_free_port(vfd, t->cid)
			  : vsk_real.bind(vfd, (struct sockaddr *)&vm, sizeof(vm));
	if (rc != 0 || vsk_install_vsock(vfd, fd, fam, 0, &err) != 0) {
		err = rc != 0 ? errno : err;
		vsk_real.close(vfd);
		vsk_log(VSK_LOG_INFO, "bind %s -> vsock:%u:%u failed: %s",
			vsk_addr_str(sa, len, buf, sizeof(buf)), t->cid, t->port,
			strerror(err));
		return vsk_fail(err);
	}
	vsk_log(VSK_LOG_DEBUG, "fd %d: bind %s -> vsock:%u", fd,
		vsk_addr_str(sa, len, buf, sizeof(buf)), t->cid);
	return 0;
}

VSK_EXPORT int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct vsk_target t;
	enum vsk_decode_result route;

	vsk_init();
	route = route_for(sa, len, &t);
	if (route == VSK_ADDR_NOT_OURS || vsk_fd_lookup(fd))
		return vsk_real.bind(fd, sa, len);
	return bind_fake(fd, sa, len, route, &t);
}

/* Kernel rules for a user-supplied address buffer. */
static int check_addr_out(const struct sockaddr *sa, const socklen_t *len)
{
	if (!len)
		return EFAULT;
	if ((int)*len < 0)
		return EINVAL;
	if (!sa && *len)
		return EFAULT;
	return 0;
}

/* Show a vsock address to the app in the family it expects.  If the fd
 * turns out not to be vsock any more (closed behind our back), forget it
 * and report what the kernel said. */
static void present_addr(int fd, enum vsk_app_family fam,
			 const struct sockaddr_storage *got, socklen_t got_len,
			 struct sockaddr *sa, socklen_t *len)
{
	struct sockaddr_storage shown;
	socklen_t shown_len;

	if (got->ss_family != AF_VSOCK) {
		vsk_fd_forget(fd);
		vsk_copy_out_addr(got, got_len, sa, len);
		return;
	}
	const struct sockaddr_vm *vm = (const void *)got;
	shown_len = vsk_encode_sockaddr(&vsk_cfg->net, fam, vm->svm_cid,
					vm->svm_port, &shown);
	vsk_copy_out_addr(&shown, shown_len, sa, len);
}

static int accept_ours(int fd, struct vsk_fd_entry *e, struct sockaddr *sa,
		       socklen_t *len, int flags, bool is_accept4)
{
	struct sockaddr_storage got;
	socklen_t got_len = sizeof(got);
	enum vsk_app_family fam = vsk_fd_family(e);
	int err, nfd;

	if (sa && (err = check_addr_out(sa, len)))
		return vsk_fail(err);
	nfd = is_accept4 ? vsk_real.accept4(fd, (struct sockaddr *)&got, &got_len, flags)
			 : vsk_real.accept(fd, (struct sockaddr *)&got, &got_len);
	if (nfd < 0)
		return -1;
	if (got.ss_family == AF_VSOCK) {
		if (!vsk_fd_claim(nfd, fam)) {
			vsk_real.close(nfd);
			vsk_log(VSK_LOG_ERROR, "fd %d is beyond the fds vsockify can track", nfd);
			return vsk_fail(EMFILE);
		}
		vsk_mark_socket(nfd, fam);
	} else {
		vsk_fd_forget(nfd);
	}
	if (sa)
		present_addr(fd, fam, &got, got_len, sa, len);
	return nfd;
}

VSK_EXPORT int accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	struct vsk_fd_entry *e;
	int nfd;

	vsk_init();
	if ((e = vsk_fd_lookup(fd)))
		return accept_ours(fd, e, sa, len, flags, true);
	nfd = vsk_real.accept4(fd, sa, len, flags);
	if (nfd >= 0)
		vsk_fd_forget(nfd);
	return nfd;
}

VSK_EXPORT int accept(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct vsk_fd_entry *e;
	int nfd;

	vsk_init();
	if ((e = vsk_fd_lookup(fd)))
		return accept_ours(fd, e, sa, len, 0, false);
	nfd = vsk_real.accept(fd, sa, len);
	if (nfd >= 0)
		vsk_fd_forget(nfd);
	return nfd;
}

typedef int (*name_fn)(int, struct sockaddr *, socklen_t *);

/* A connected vsock socket reports its local CID as "any" (TCP would show
 * the real source address): name this machine instead. */
static void fill_local_cid(int fd, struct sockaddr_storage *got)
{
	struct sockaddr_vm *vm = (void *)got, peer;
	socklen_t plen = sizeof(peer);

	if (got->ss_family != AF_VSOCK || vm->svm_cid != VSK_CID_ANY ||
	    vsk_real.getpeername(fd, (struct sockaddr *)&peer, &plen) != 0)
		return;
	vm->svm_cid = peer.svm_cid == VSK_CID_LOCAL ? VSK_CID_LOCAL : vsk_local_cid();
}

static int name_ours(name_fn real, int fd, struct vsk_fd_entry *e,
		     struct sockaddr *sa, socklen_t *len)
{
	struct sockaddr_storage got;
	socklen_t got_len = sizeof(got);
	int err;

	if ((err = check_addr_out(sa, len)))
		return vsk_fail(err);
	if (real(fd, (struct sockaddr *)&got, &got_len) != 0)
		return -1;
	if (real == vsk_real.getsockname)
		fill_local_cid(fd, &got);
	present_addr(fd, vsk_fd_family(e), &got, got_len, sa, len);
	return 0;
}

VSK_EXPORT int getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct vsk_fd_entry *e;

	vsk_init();
	if (!(e = vsk_fd_lookup(fd)))
		return vsk_real.getsockname(fd, sa, len);
	return name_ours(vsk_real.getsockname, fd, e, sa, len);
}

VSK_EXPORT int getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct vsk_fd_entry *e;

	vsk_init();
	if (!(e = vsk_fd_lookup(fd)))
		return vsk_real.getpeername(fd, sa, len);
	return name_ours(vsk_real.getpeername, fd, e, sa, len);
}

/* ---- socket options ------------------------------------------------------ */

static bool is_protocol_level(int level)
{
	return level == IPPROTO_TCP || level == IPPROTO_IP || level == IPPROTO_IPV6;
}

/* Still a vsock socket?  Otherwise the entry is stale: drop it. */
static bool still_vsock(int fd)
{
	int domain = 0;
	socklen_t len = sizeof(domain);

	if (vsk_real.getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
	    domain == AF_VSOCK)
		return true;
	vsk_fd_forget(fd);
	return false;
}

static struct vsk_opt_slot *find_slot(struct vsk_fd_entry *e, int level,
				      int optname, bool create)
{
	struct vsk_opt_slot *free_slot = NULL;

	for (int i = 0; i < VSK_OPT_SLOTS; i++) {
		if (e->opts[i].level == level && e->opts[i].optname == optname)
			return &e->opts[i];
		if (e->opts[i].level == -1 && !free_slot)
			free_slot = &e->opts[i];
	}
	if (create && free_slot) {
		free_slot->level = level;
		free_slot->optname = optname;
	}
	return create ? free_slot : NULL;
}

static int put_int_opt(int value, void *optval, socklen_t *optlen)
{
	if (!optval || !optlen)
		return vsk_fail(EFAULT);
	if ((int)*optlen < 0)
		return vsk_fail(EINVAL);
	if (*optlen > sizeof(int))
		*optlen = sizeof(int);
	memcpy(optval, &value, *optlen);
	return 0;
}

static unsigned char tcp_state_of(int fd)
{
	struct sockaddr_vm vm;
	socklen_t len = sizeof(vm);
	int listening = 0;
	socklen_t llen = sizeof(listening);

	if (vsk_real.getpeername(fd, (struct sockaddr *)&vm, &len) == 0)
		return 1; /* TCP_ESTABLISHED */
	if (vsk_real.getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &llen) == 0 &&
	    listening)
		return 10; /* TCP_LISTEN */
	return 7; /* TCP_CLOSE */
}

/* TCP's answer for an option we never stored: ask a plain TCP socket, so
 * defaults and errors are exactly the kernel's. */
static int default_protocol_opt(int fd, struct vsk_fd_entry *e, int level,
				int optname, void *optval, socklen_t *optlen)
{
	int tmp = vsk_throwaway_socket(vsk_fd_family(e));
	int rc, err;

	if (tmp < 0)
		return -1;
	rc = vsk_real.getsockopt(tmp, level, optname, optval, optlen);
	err = errno;
	vsk_real.close(tmp);
	if (rc != 0)
		return vsk_fail(err);
	if (level == IPPROTO_TCP && optname == TCP_INFO && optval && *optlen >= 1)
		*(unsigned char *)optval = tcp_state_of(fd);
	return 0;
}

static int getsockopt_ours(int fd, struct vsk_fd_entry *e, int level,
			   int optname, void *optval, socklen_t *optlen)
{
	if (level == SOL_SOCKET) {
		int v;
		socklen_t l = sizeof(v);
		switch (optname) {
		case SO_DOMAIN:
			if (!still_vsock(fd))
				break;
			return put_int_opt(vsk_fd_family(e) == VSK_APP_INET4 ? AF_INET : AF_INET6,
					   optval, optlen);
		case SO_PROTOCOL:
			if (!still_vsock(fd))
				break;
			return put_int_opt(IPPROTO_TCP, optval, optlen);
		case SO_ERROR:
			if (vsk_real.getsockopt(fd, level, optname, &v, &l) != 0)
				return -1;
			if (atomic_load(&e->state) & VSK_FD_CONNECTING) {
				struct sockaddr_vm vm;
				socklen_t vl = sizeof(vm);
				if (v != 0 || vsk_real.getpeername(fd, (struct sockaddr *)&vm, &vl) == 0)
					atomic_fetch_and(&e->state, ~VSK_FD_CONNECTING);
				v = vsk_map_connect_errno(v);
			}
			return put_int_opt(v, optval, optlen);
		}
		return vsk_real.getsockopt(fd, level, optname, optval, optlen);
	}
	if (!is_protocol_level(level) || !still_vsock(fd))
		return vsk_real.getsockopt(fd, level, optname, optval, optlen);

	struct vsk_opt_slot *slot = find_slot(e, level, optname, false);
	if (slot)
		return put_int_opt(slot->value, optval, optlen);
	return default_protocol_opt(fd, e, level, optname, optval, optlen);
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
 * work, so a plain TCP socket validates the value exactly as the kernel
 * would, and the normalised value is remembered for getsockopt. */
static int setsockopt_protocol(int fd, struct vsk_fd_entry *e, int level,
			       int optname, const void *optval, socklen_t optlen)
{
	int tmp = vsk_throwaway_socket(vsk_fd_family(e));
	int rc, err, value;
	socklen_t vlen = sizeof(value);

	if (tmp < 0)
		return -1;
	rc = vsk_real.setsockopt(tmp, level, optname, optval, optlen);
	err = errno;
	if (rc == 0 && optlen >= sizeof(int) &&
	    vsk_real.getsockopt(tmp, level, optname, &value, &vlen) == 0 &&
	    vlen == sizeof(int)) {
		struct vsk_opt_slot *slot = find_slot(e, level, optname, true);
		if (slot)
			slot->value = value;
	}
	vsk_real.close(tmp);
	if (rc != 0)
		return vsk_fail(err);
	vsk_log(VSK_LOG_DEBUG, "fd %d: setsockopt(level %d, opt %d) kept for TCP semantics",
		fd, level, optname);
	return 0;
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
	if (is_protocol_level(level) && still_vsock(fd))
		return setsockopt_protocol(fd, e, level, optname, optval, optlen);
	return vsk_real.setsockopt(fd, level, optname, optval, optlen);
}

/* ---- sends that name a destination ------------------------------------- */

/* Returns 1 if the send may go ahead (with the address dropped when the
 * socket is ours), 0 to pass through untouched, -1 with errno set. */
static int vet_destination(int fd, const struct sockaddr *dst, socklen_t len,
			   int flags, bool *drop_addr)
{
	struct vsk_target t;
	enum vsk_app_family fam;
	enum vsk_decode_result route;

	*drop_addr = false;
	if (vsk_fd_lookup(fd)) {
		/* TCP ignores a destination on a stream socket; vsock errors. */
		*drop_addr = true;
		return 1;
	}
	route = route_for(dst, len, &t);
	if (route == VSK_ADDR_NOT_OURS)
		return 0;
	switch (vsk_inet_stream_check(fd, dst, &fam)) {
	case VSK_CHECK_NOT_INET:
		return 0;
	case VSK_CHECK_NOT_STREAM:
		log_refused_type("send to", dst, len);
		return vsk_fail(EPROTOTYPE);
	}
	if (flags & MSG_FASTOPEN) {
		/* TCP Fast Open is connect-and-send; vsock has no such thing. */
		if (connect_fake(fd, dst, len, route, &t) != 0 && errno != EINPROGRESS)
			return -1;
		*drop_addr = true;
		return 1;
	}
	return 0;
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

VSK_EXPORT int socket(int domain, int type, int protocol)
{
	int fd;

	vsk_init();
	fd = vsk_real.socket(domain, type, protocol);
	if (fd >= 0)
		vsk_fd_forget(fd); /* a close we could not see left it behind */
	return fd;
}
