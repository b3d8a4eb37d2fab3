/* Forced in front of every test program of the musl build (make musl:
 * -include): the few glibc extensions the helpers use, for musl.  Not
 * part of the library; the helpers' own sources stay glibc-plain. */
#ifndef VSK_MUSL_COMPAT_H
#define VSK_MUSL_COMPAT_H
#ifndef __GLIBC__
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

/* glibc 2.32's errno names; the helpers print them, the tests match them. */
static inline const char *strerrorname_np(int e)
{
	static __thread char other[16];

	switch (e) {
#define N(x) case x: return #x;
	N(EPERM) N(ENOENT) N(EINTR) N(EIO) N(EBADF) N(EAGAIN) N(ENOMEM) N(EACCES)
	N(EFAULT) N(EBUSY) N(EEXIST) N(ENODEV) N(EINVAL) N(ENFILE) N(EMFILE) N(ENOSPC)
	N(EPIPE) N(ERANGE) N(ENOSYS) N(ENOTSOCK) N(EDESTADDRREQ) N(EMSGSIZE)
	N(EPROTOTYPE) N(ENOPROTOOPT) N(EPROTONOSUPPORT) N(ESOCKTNOSUPPORT) N(EOPNOTSUPP)
	N(EPFNOSUPPORT) N(EAFNOSUPPORT) N(EADDRINUSE) N(EADDRNOTAVAIL) N(ENETDOWN)
	N(ENETUNREACH) N(ENETRESET) N(ECONNABORTED) N(ECONNRESET) N(ENOBUFS) N(EISCONN)
	N(ENOTCONN) N(ESHUTDOWN) N(ETIMEDOUT) N(ECONNREFUSED) N(EHOSTDOWN)
	N(EHOSTUNREACH) N(EALREADY) N(EINPROGRESS) N(ENODATA) N(ECANCELED) N(ENXIO)
#undef N
	}
	snprintf(other, sizeof(other), "E%d", e);
	return other;
}

/* musl 1.2.3 has no close_range wrapper: the system call. */
static inline int close_range(unsigned first, unsigned last, int flags)
{
	return (int)syscall(SYS_close_range, first, last, flags);
}

/* No musl equivalent: the spawned child keeps the extra fds (the helpers
 * spawn /bin/true, which ignores them). */
static inline int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *fa,
							    int from)
{
	(void)fa, (void)from;
	return 0;
}
#endif
#endif
