/* socket(): with early sockets on, a call site whose connects go to vsock
 * gets a vsock socket from the start (early.c); else the kernel's. */
#include "shim.h"

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
