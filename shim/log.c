/* Log lines: "vsockify[PID]: message".
 *
 * Logging must never hurt the app: it never changes errno, never calls one
 * of our own hooks (that would re-enter initialisation), never blocks (a
 * FIFO without a reader), never follows a symlink it did not expect, never
 * writes into a socket (an inetd-style server's stderr may be its client)
 * or into a file the app opened on fd 2 after closing stderr, and escapes
 * every byte that could forge a line. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h> /* before linux/vm_sockets.h: older kernel headers need it */
#include <linux/vm_sockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

/* What fd 2 was when we started; log lines go there only while it still is. */
static dev_t stderr_dev;
static ino_t stderr_ino;
static bool stderr_usable;

void vsk_log_init(void)
{
	struct stat st;

	stderr_usable = fstat(STDERR_FILENO, &st) == 0 && !S_ISSOCK(st.st_mode);
	if (stderr_usable) {
		stderr_dev = st.st_dev;
		stderr_ino = st.st_ino;
	}
}

/* Our own close: the exported close() would re-enter the shim. */
static void close_quietly(int fd)
{
	syscall(SYS_close, fd);
}

static int open_sink(bool *must_close)
{
	struct stat st;

	*must_close = false;
	if (vsk_cfg->log_file[0]) {
		/* Opened per line so the app can never close or reuse our fd. */
		int fd = open(vsk_cfg->log_file,
			      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY |
				      O_NOFOLLOW | O_NONBLOCK,
			      0600);
		*must_close = fd >= 0;
		return fd;
	}
	if (!stderr_usable || fstat(STDERR_FILENO, &st) != 0 ||
	    st.st_dev != stderr_dev || st.st_ino != stderr_ino)
		return -1;
	return STDERR_FILENO;
}

/* Copy src into dst, writing bytes outside printable ASCII as \xHH. */
static size_t escape_into(char *dst, size_t cap, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	for (; *src && n + 4 < cap; src++) {
		unsigned char c = (unsigned char)*src;
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			dst[n++] = (char)c;
		} else {
			dst[n++] = '\\';
			dst[n++] = 'x';
			dst[n++] = hex[c >> 4];
			dst[n++] = hex[c & 15];
		}
	}
	return n;
}

void vsk_log_line(enum vsk_log_level level, const char *fmt, ...)
{
	int saved = errno;
	char msg[400], line[640];
	bool must_close;
	int n, fd;
	va_list ap;

	if (!vsk_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = snprintf(line, sizeof(line), "vsockify[%ld]: ", (long)getpid());
	n += (int)escape_into(line + n, sizeof(line) - (size_t)n - 1, msg);
	line[n++] = '\n';

	fd = open_sink(&must_close);
	if (fd >= 0) {
		ssize_t w = write(fd, line, (size_t)n);
		(void)w;
		if (must_close)
			close_quietly(fd);
	}
	errno = saved;
}

const char *vsk_addr_str(const struct sockaddr *sa, socklen_t len, char *buf,
			 size_t buflen)
{
	char ip[INET6_ADDRSTRLEN];

	if (!sa || len < sizeof(sa_family_t)) {
		snprintf(buf, buflen, "(none)");
	} else if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(buf, buflen, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, buflen, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else if (sa->sa_family == AF_VSOCK && len >= sizeof(struct sockaddr_vm)) {
		const struct sockaddr_vm *vm = (const void *)sa;
		snprintf(buf, buflen, "vsock:%u:%u", vm->svm_cid, vm->svm_port);
	} else {
		snprintf(buf, buflen, "(family %d)", sa->sa_family);
	}
	return buf;
}
