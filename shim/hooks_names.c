/* getsockname() and getpeername(): a vsock socket's addresses shown as
 * the TCP addresses the app expects. */
#include "hooks.h"

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
	if (sa && *orig && !vsk_user_writable(sa, *orig))
		return vsk_fail(EFAULT);
	return real(fd, (struct sockaddr *)got, &glen);
}

/* What a local CID "any" in vm shows as: only a connected socket names
 * a machine (vsk_shown_local_cid). */
static uint32_t local_cid_for(int fd, bool peer, const struct sockaddr_vm *vm)
{
	struct sockaddr_vm other;
	socklen_t olen = sizeof(other);

	if (peer || vm->svm_cid != VSK_CID_ANY ||
	    vsk_real.getpeername(fd, (struct sockaddr *)&other, &olen) != 0)
		return VSK_CID_ANY;
	return vsk_shown_local_cid(other.svm_cid, vsk_local_cid);
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
		if (vsk_fd_drop_if_stale(fd, vsk_is_vsock) || tries)
			return 0;
		*len = orig;
	}
	struct sockaddr_vm *vm = (struct sockaddr_vm *)(void *)&got;
	bool peer = real == vsk_real.getpeername;
	if (!peer && (atomic_load(&e->state) & VSK_FD_EARLY) && vm->svm_port == VMADDR_PORT_ANY) {
		/* An unbound TCP socket: the wildcard address, port 0. */
		struct sockaddr_storage any = { 0 };
		any.ss_family = vsk_fd_family(e) == VSK_APP_INET4 ? AF_INET : AF_INET6;
		return vsk_show_bytes(&any, any.ss_family == AF_INET ? sizeof(struct sockaddr_in)
								     : sizeof(struct sockaddr_in6),
				      sa, orig, len);
	}
	/* A socket a rule made shows the address the app used (docs/rules.md). */
	if (atomic_load_explicit(&e->state, memory_order_acquire) & VSK_FD_SHOWN) {
		struct sockaddr_storage kept;
		socklen_t n = vsk_fd_shown(fd, peer, &kept);
		if (n)
			return vsk_show_addr(vsk_fd_family(e), vm, peer, &kept, n, VSK_CID_ANY,
					     sa, orig, len);
	}
	if (want != AF_VSOCK) /* a hybrid socket always has its addresses */
		return vsk_fail(ENOTCONN);
	return vsk_show_addr(vsk_fd_family(e), vm, peer, NULL, 0, local_cid_for(fd, peer, vm),
			     sa, orig, len);
}

/* No entry, yet the kernel answered AF_VSOCK: native vsock, or a socket
 * of ours the table lacks: its number is being closed or dup2'd over by
 * another thread right now (the entry goes before the kernel frees the
 * number), or a child sharing its parent's memory (vfork, CLONE_VM) made
 * it, which records nothing.  Our mark
 * tells them apart without a lock, and says how to show it. */
static int name_unlisted_vsock(name_fn real, int fd, struct sockaddr *sa, socklen_t orig,
			       socklen_t *len)
{
	struct sockaddr_storage got, shown;
	socklen_t glen = sizeof(got), n;
	bool peer = real == vsk_real.getpeername, rule_peer = false;
	int rule;
	enum vsk_app_family fam = vsk_read_mark(fd, &rule);

	/* Asked again after the mark: if the number changed in between, the
	 * mark may be another file's (none), so answer for what is there. */
	if (real(fd, (struct sockaddr *)&got, &glen) != 0)
		return -1; /* closed meanwhile: EBADF, as TCP's could say */
	if (got.ss_family != AF_VSOCK || !fam) /* replaced meanwhile, or native */
		return vsk_show_bytes(&got, glen, sa, orig, len);
	struct sockaddr_vm *vm = (struct sockaddr_vm *)(void *)&got;
	if ((n = vsk_shown_by_mark(fd, rule, fam, &rule_peer, &shown)) && rule_peer == peer)
		return vsk_show_bytes(&shown, n, sa, orig, len);
	return vsk_show_addr(fam, vm, peer, NULL, 0, local_cid_for(fd, peer, vm), sa, orig, len);
}

/* A Unix socket we don't know may be a hybrid one an exec'd program
 * inherited (sshd -R, a CGI child): the name says, and costs nothing for
 * every other family. */
static int name_not_ours(name_fn real, int fd, struct sockaddr *sa, socklen_t *len)
{
	socklen_t orig = len ? *len : 0;
	struct vsk_fd_entry *e;

	if (real(fd, sa, len) != 0)
		return -1;
	if (sa && orig >= sizeof(sa_family_t) && sa->sa_family == AF_VSOCK)
		return name_unlisted_vsock(real, fd, sa, orig, len);
	if (!sa || orig < sizeof(sa_family_t) || sa->sa_family != AF_UNIX ||
	    !vsk_hybrid_adopt(fd) || !(e = vsk_fd_lookup(fd)))
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
