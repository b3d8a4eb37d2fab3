/* Log lines: "vsockify[PID]: message".  Never changes errno, and never
 * writes into a socket: an inetd-style server's stderr may be its client. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"

static int open_sink(bool *must_close)
{
	struct stat st;

	*must_close = false;
	if (vsk_cfg && vsk_cfg->log_file[0]) {
		/* Opened per line so the app can never close or reuse our fd. */
		int fd = open(vsk_cfg->log_file,
			      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
		*must_close = fd >= 0;
		return fd;
	}
	if (fstat(STDERR_FILENO, &st) != 0 || S_ISSOCK(st.st_mode))
		return -1;
	return STDERR_FILENO;
}

void vsk_log(enum vsk_log_level level, const char *fmt, ...)
{
	int saved = errno;
	char line[512];
	bool must_close;
	int n, fd;
	va_list ap;

	if (!vsk_log_enabled(level))
		return;
	n = snprintf(line, sizeof(line), "vsockify[%ld]: ", (long)getpid());
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';

	fd = open_sink(&must_close);
	if (fd >= 0) {
		ssize_t w = write(fd, line, (size_t)n);
		(void)w;
		if (must_close)
			close(fd);
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
