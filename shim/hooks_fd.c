/* Interposers that keep the table of our fds in step with the kernel's fd
 * table: close, dup and friends.  A number is forgotten (and its generation
 * bumped) *before* the kernel frees it, so another thread that gets the
 * number back never finds it marked ours, and a swap in flight on it
 * stands down (docs/design.md). */
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdarg.h>
#include <unistd.h>

#include "swap.h"

#ifndef __GLIBC__
/* musl (1.2.3) declares no close_range and has no such symbol: the hook is
 * kept for a libc that gains it (dlsym finds nothing today: ENOSYS). */
int close_range(unsigned first, unsigned last, int flags);
#endif

VSK_EXPORT int close(int fd)
{
	struct vsk_fd_entry *e;

	vsk_init();
	if (__builtin_expect((e = vsk_fd_lookup(fd)) != NULL, 0) &&
	    (atomic_load(&e->state) & (VSK_FD_HYBRID | VSK_FD_BOUND)) ==
		    (VSK_FD_HYBRID | VSK_FD_BOUND))
		vsk_hybrid_closing(fd);
	vsk_fd_release(fd);
	return vsk_real.close(fd);
}

VSK_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	vsk_init();
	if (!vsk_real.close_range)
		return vsk_fail(ENOSYS);
	/* Calls the kernel refuses change nothing here either. */
	if (first > last || (flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC)))
		return vsk_real.close_range(first, last, flags);
	if (!(flags & CLOSE_RANGE_CLOEXEC))
		vsk_fd_release_range(first, last);
	return vsk_real.close_range(first, last, flags);
}

/* Registrations are remembered so the swap can carry them over to the
 * vsock socket (an fd put in epoll before connect, as reverse proxies and
 * reactors do). */
VSK_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	int rc;

	vsk_init();
	rc = vsk_real.epoll_ctl(epfd, op, fd, ev);
	if (rc == 0)
		vsk_fd_note_epoll(epfd, op, fd, ev);
	return rc;
}

VSK_EXPORT int dup(int fd)
{
	int nfd;

	vsk_init();
	vsk_early_settle(fd);
	nfd = vsk_real.dup(fd);
	if (nfd >= 0)
		vsk_fd_copy(fd, nfd);
	return nfd;
}

/* dup2/dup3 close whatever "to" held.  If it is ours, make sure the call
 * can succeed first: a dup2 from a bad fd leaves "to" as it was. */
static void before_replacing(int from, int to)
{
	if (from == to)
		return;
	vsk_early_settle(from);
	if (vsk_fd_lookup(to) && vsk_real.fcntl(from, F_GETFD) < 0)
		return;
	vsk_fd_release(to);
}

VSK_EXPORT int dup2(int from, int to)
{
	int rc;

	vsk_init();
	before_replacing(from, to);
	rc = vsk_real.dup2(from, to);
	if (rc >= 0 && from != to)
		vsk_fd_copy(from, to);
	return rc;
}

VSK_EXPORT int dup3(int from, int to, int flags)
{
	int rc;

	vsk_init();
	before_replacing(from, to);
	rc = vsk_real.dup3(from, to, flags);
	if (rc >= 0)
		vsk_fd_copy(from, to);
	return rc;
}

/* Every fcntl argument is an int or a pointer; on the ABIs we build for,
 * both travel in one register, so one unsigned long carries either. */
static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd,
			unsigned long arg)
{
	int rc;

	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
		vsk_early_settle(fd);
	rc = real(fd, cmd, arg);
	if (rc >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		vsk_fd_copy(fd, rc);
	return rc;
}

VSK_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	unsigned long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, unsigned long);
	va_end(ap);
	vsk_init();
	return fcntl_common(vsk_real.fcntl, fd, cmd, arg);
}

#ifdef __GLIBC__
/* glibc's 64-bit-offset name (what -D_FILE_OFFSET_BITS=64 builds call);
 * musl has one fcntl and no fcntl64 symbol. */
VSK_EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	unsigned long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, unsigned long);
	va_end(ap);
	vsk_init();
	return fcntl_common(vsk_real.fcntl64, fd, cmd, arg);
}
#endif
