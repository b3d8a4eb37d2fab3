/* Interposers that keep the table of our fds in step with the kernel's fd
 * table: close, dup and friends. */
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdarg.h>
#include <unistd.h>

#include "shim.h"

VSK_EXPORT int close(int fd)
{
	vsk_init();
	/* Forget first: once the kernel frees the number another thread may
	 * get it for a socket we must not translate. */
	vsk_fd_forget(fd);
	return vsk_real.close(fd);
}

VSK_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	int rc;

	vsk_init();
	if (!vsk_real.close_range)
		return vsk_fail(ENOSYS);
	rc = vsk_real.close_range(first, last, flags);
	if (rc == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
		vsk_fd_forget_range(first, last);
	return rc;
}

VSK_EXPORT int dup(int fd)
{
	int nfd;

	vsk_init();
	nfd = vsk_real.dup(fd);
	if (nfd >= 0)
		vsk_fd_copy(fd, nfd);
	return nfd;
}

VSK_EXPORT int dup2(int from, int to)
{
	int rc;

	vsk_init();
	rc = vsk_real.dup2(from, to);
	if (rc >= 0 && from != to)
		vsk_fd_copy(from, to);
	return rc;
}

VSK_EXPORT int dup3(int from, int to, int flags)
{
	int rc;

	vsk_init();
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
	int rc = real(fd, cmd, arg);

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
