/* What the interposers (hooks_*.c) share.  Each hook decides "is this
 * ours?" first and otherwise calls libc with the caller's own arguments;
 * the decisions themselves (where an address leads, what a socket shows)
 * are the pure core's (shim/core/route.c).  Nothing here is exported. */
#ifndef VSOCKIFY_HOOKS_H
#define VSOCKIFY_HOOKS_H

#include <sys/socket.h> /* before linux/vm_sockets.h: older kernel headers need it */
#include <linux/vm_sockets.h>
#include <string.h>

#include "swap.h"

/* Where a connect/bind address leads (vsk_route).  The rules are read
 * only for an address that is not a fake one: most processes never need
 * them.  VSK_ROUTE_UNKNOWN comes with errno set. */
static inline enum vsk_route vsk_route_for(const struct sockaddr *sa, socklen_t len,
					    enum vsk_rule_kind kind, struct vsk_target *t,
					    int *rule)
{
	const struct vsk_rules *rs;
	enum vsk_route route = vsk_route_fake(&vsk_cfg->net, sa, len, t, rule);

	if (route != VSK_ROUTE_NOT_OURS)
		return route;
	rs = vsk_rules();
	if ((route = vsk_route_by_rule(rs, sa, len, kind, t, rule)) == VSK_ROUTE_UNKNOWN)
		vsk_fail(rs->unreadable);
	return route;
}

static inline struct sockaddr_vm vsk_vsock_addr(uint32_t cid, uint32_t port)
{
	struct sockaddr_vm vm;

	memset(&vm, 0, sizeof(vm));
	vm.svm_family = AF_VSOCK;
	vm.svm_cid = cid;
	vm.svm_port = port;
	return vm;
}

static inline void vsk_set_flags(struct vsk_fd_entry *e, unsigned set, unsigned clear)
{
	unsigned old = atomic_load(&e->state);

	while (old && !atomic_compare_exchange_weak(&e->state, &old, (old & ~clear) | set))
		;
}

/* An early socket about to do what only its TCP socket can: become it.
 * false (errno set) if that failed. */
static inline bool vsk_early_becomes_tcp(int fd, struct vsk_fd_entry **e)
{
	if (!*e || !(atomic_load(&(*e)->state) & VSK_FD_EARLY))
		return true;
	if (vsk_early_to_tcp(fd, *e, false, -1) != 0)
		return false;
	*e = vsk_fd_lookup(fd); /* NULL, unless something connected it meanwhile */
	return true;
}

/* ---- hooks_common.c -------------------------------------------------------- */

void vsk_log_refused_type(const char *what, const struct sockaddr *sa, socklen_t len);
/* Is fd still the kind of socket its entry says? */
bool vsk_is_vsock(int fd);
enum { VSK_SWAP_GO = 1, VSK_SWAP_PASS = 0, VSK_SWAP_REFUSED = -1 };
int vsk_vet_swap(int fd, const struct sockaddr *sa, socklen_t len, enum vsk_route route,
		 int rule, bool for_bind, struct vsk_swap *sw);
bool vsk_user_writable(void *p, size_t n);
int vsk_show_bytes(const struct sockaddr_storage *shown, socklen_t shown_len,
		   struct sockaddr *sa, socklen_t orig, socklen_t *len);
int vsk_show_addr(enum vsk_app_family fam, const struct sockaddr_vm *vm, bool peer,
		  const struct sockaddr_storage *kept, socklen_t kept_len, uint32_t local_cid,
		  struct sockaddr *sa, socklen_t orig, socklen_t *len);

/* ---- hooks_connect.c ------------------------------------------------------- */

/* Connect fd, not ours yet, to an address vsk_route_for sent to vsock
 * (route, t, rule): a swap, or the kernel's answer.  Also TCP Fast Open's
 * connect (hooks_send.c). */
int vsk_connect_fake(int fd, const struct sockaddr *sa, socklen_t len, enum vsk_route route,
		     const struct vsk_target *t, int rule);

#endif
