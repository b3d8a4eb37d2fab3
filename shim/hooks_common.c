/* Helpers more than one family of hooks needs: vetting a socket for a
 * swap, and writing addresses into the app's buffers as the kernel would. */
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hooks.h"

void vsk_log_refused_type(const char *what, const struct sockaddr *sa, socklen_t len)
{
	char buf[80];

	vsk_log(VSK_LOG_WARN, "%s %s: only TCP (SOCK_STREAM) can be carried over "
		"vsock; virtio-vsock has no datagrams", what,
		vsk_addr_str(sa, len, buf, sizeof(buf)));
}

/* Is fd still the kind of socket its entry says: AF_VSOCK, or AF_UNIX for
 * a hybrid one?  If not, the entry is stale (a close we could not see). */
bool vsk_is_vsock(int fd)
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

/* The common start of a connect or bind to one of our addresses: is this a
 * TCP socket vsock can stand in for, and does the address name a CID? */
int vsk_vet_swap(int fd, const struct sockaddr *sa, socklen_t len, enum vsk_route route,
		 int rule, bool for_bind, struct vsk_swap *sw)
{
	const char *what = for_bind ? "bind to" : "connect to";
	char buf[80];
	int rc = vsk_swap_check(fd, sa, for_bind, sw);

	switch (rc) {
	case VSK_CHECK_OK:
		break;
	case VSK_CHECK_NOT_INET:
		return VSK_SWAP_PASS;
	case VSK_CHECK_NOT_STREAM:
		if (rule >= 0) /* rules are for TCP; a real address stays real for UDP */
			return VSK_SWAP_PASS;
		vsk_log_refused_type(what, sa, len);
		return vsk_fail(EPROTOTYPE);
	default:
		vsk_log(VSK_LOG_INFO, "%s %s: fd %d is already in use: %s", what,
			vsk_addr_str(sa, len, buf, sizeof(buf)), fd, strerror(-rc));
		return vsk_fail(-rc);
	}
	if (route == VSK_ROUTE_INVALID) {
		vsk_log(VSK_LOG_WARN, "%s %s: address names no vsock CID", what,
			vsk_addr_str(sa, len, buf, sizeof(buf)));
		return vsk_fail(for_bind ? EADDRNOTAVAIL : EHOSTUNREACH);
	}
	sw->rule = rule;
	if (rule >= 0 && for_bind)
		sw->shown.local_len = vsk_keep_app_addr(sa, sw->shown.local);
	else if (rule >= 0)
		sw->shown.peer_len = vsk_keep_app_addr(sa, sw->shown.peer);
	return VSK_SWAP_GO;
}

/* ---- addresses shown to the app ---------------------------------------- */

/* Can the kernel write n bytes at p?  A bad buffer must give the app EFAULT
 * as the kernel would, not crash it; getrandom writes through the same
 * checked copy the kernel uses for socket addresses. */
bool vsk_user_writable(void *p, size_t n)
{
	return n == 0 || syscall(SYS_getrandom, p, n, GRND_NONBLOCK) >= 0 ||
	       errno != EFAULT;
}

/* Give the app an address with the kernel's truncation rule.  orig is the
 * app's buffer size; the first min(orig, sizeof(struct sockaddr_vm)) bytes
 * of sa were already checked by the kernel. */
int vsk_show_bytes(const struct sockaddr_storage *shown, socklen_t shown_len,
		   struct sockaddr *sa, socklen_t orig, socklen_t *len)
{
	socklen_t n = orig < shown_len ? orig : shown_len;
	socklen_t checked = orig < sizeof(struct sockaddr_vm) ? orig : sizeof(struct sockaddr_vm);

	if (sa && n > checked && !vsk_user_writable((char *)sa + checked, n - checked))
		return vsk_fail(EFAULT);
	if (sa)
		memcpy(sa, shown, n);
	*len = shown_len;
	return 0;
}

/* Show vm to the app as vsk_shown_addr says. */
int vsk_show_addr(enum vsk_app_family fam, const struct sockaddr_vm *vm, bool peer,
		  const struct sockaddr_storage *kept, socklen_t kept_len, uint32_t local_cid,
		  struct sockaddr *sa, socklen_t orig, socklen_t *len)
{
	struct sockaddr_storage shown;
	socklen_t n = vsk_shown_addr(&vsk_cfg->net, fam, vm, peer, kept, kept_len, local_cid,
				     &shown);

	return vsk_show_bytes(&shown, n, sa, orig, len);
}
