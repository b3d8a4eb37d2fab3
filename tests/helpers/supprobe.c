/* supprobe MODE ADDR PORT: blocking socket calls the supervisor must answer
 * as TCP would, built static (build/helpers/static/) so only the
 * supervisor can translate them.  ADDR is numeric (IPv4 or IPv6).  Prints
 * one "key=value" line per fact, for the test to compare with plain TCP.
 *
 *   accept-intr     listen, then a blocking accept cut short by SIGALRM
 *                   (no SA_RESTART) after 300 ms: its errno
 *   accept-restart  the same with SA_RESTART: the accept goes on and takes
 *                   the connection the test makes; prints the peer family
 *   connect         blocking connect; its errno, then the peer and local
 *                   families and the peer address
 *   serve N         accept N connections in turn, echo one line on each
 *   threads LPORT   a thread blocks in accept on ADDR:LPORT while the main
 *                   thread connects to ADDR:PORT and gets an echo: one
 *                   thread's blocking call must not stall another's
 *   own-filter ERR  install a seccomp filter of its own first (it denies
 *                   mkdir, and connect too with errno ERR unless ERR is 0),
 *                   then as connect
 *   listen-shutdown DIAL
 *                   shutdown() of listeners on ADDR:PORT, PORT+1, ...: a
 *                   fork child's and two threads' blocked accepts, later
 *                   accepts, poll, SO_ACCEPTCONN, SHUT_WR (a client dialling
 *                   DIAL is still accepted) and a bad how; no port printed
 *                   (tests/helpers/listen_shutdown.py, for a static program)
 *   connect-signals restart|retry N US
 *                   N blocking connects (each echoes a line) under a timer
 *                   signal every US microseconds, its handler SA_RESTART
 *                   (restart) or not, the program then calling connect
 *                   again on EINTR (retry) as TCP allows; prints how many
 *                   worked and every other outcome
 *   fd-reuse        three connects in turn on one fd number, its socket
 *                   made blocking, then SOCK_NONBLOCK|SOCK_CLOEXEC, then
 *                   SOCK_CLOEXEC: each connect's answer, the fd's flags
 *                   after it, and an echoed line (the supervisor reads an
 *                   fd's flags from a /proc fdinfo file kept open by number)
 *
 * SUPPROBE_PROTO=N in the environment: the connect and serve modes make
 * their sockets with protocol N (262: MPTCP, Go 1.24's default for
 * listeners); connect then prints the socket's SO_PROTOCOL first.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void on_alarm(int sig)
{
	(void)sig;
}

static socklen_t parse(const char *host, const char *port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((unsigned short)atoi(port));
		return sizeof(*in);
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((unsigned short)atoi(port));
		return sizeof(*in6);
	}
	fprintf(stderr, "supprobe: bad address %s\n", host);
	exit(2);
}

static const char *ename(int err)
{
	switch (err) {
	case 0: return "0";
	case EINTR: return "EINTR";
	case ECONNREFUSED: return "ECONNREFUSED";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case ENETUNREACH: return "ENETUNREACH";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EADDRINUSE: return "EADDRINUSE";
	case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
	case EAGAIN: return "EAGAIN";
	case EINVAL: return "EINVAL";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENOPROTOOPT: return "ENOPROTOOPT";
	case ENOTCONN: return "ENOTCONN";
	case EISCONN: return "EISCONN";
	case EALREADY: return "EALREADY";
	case EPIPE: return "EPIPE";
	case ECONNRESET: return "ECONNRESET";
	case EINPROGRESS: return "EINPROGRESS";
	default: return strerror(err);
	}
}

static const char *fam(int f)
{
	return f == AF_INET ? "inet" : f == AF_INET6 ? "inet6" : f == AF_VSOCK ? "vsock" : "other";
}

static int cmd_fd_reuse(const struct sockaddr_storage *ss, socklen_t len)
{
	static const int flags[] = { 0, SOCK_NONBLOCK | SOCK_CLOEXEC, SOCK_CLOEXEC };
	int first = -1;

	for (int i = 0; i < 3; i++) {
		int fd = socket(ss->ss_family, SOCK_STREAM | flags[i], 0), err = 0;
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		char buf[16];
		bool echoed;

		if (first < 0)
			first = fd;
		if (connect(fd, (const struct sockaddr *)ss, len) != 0)
			err = errno;
		printf("round=%d same_fd=%d connect=%s", i + 1, fd == first, ename(err));
		if (err == EINPROGRESS) {
			int so_error = -1;
			socklen_t sl = sizeof(so_error);
			poll(&p, 1, 10000);
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &sl);
			printf(" so_error=%s", ename(so_error));
		}
		printf(" nonblock=%d cloexec=%d", (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0,
		       (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
		p.events = POLLIN;
		echoed = send(fd, "ping\n", 5, MSG_NOSIGNAL) == 5 && poll(&p, 1, 10000) == 1 &&
			 read(fd, buf, sizeof(buf)) == 5 && !memcmp(buf, "ping\n", 5);
		printf(" echo=%s\n", echoed ? "ok" : "no");
		close(fd);
	}
	return 0;
}

static void alarm_in(int ms, bool restart)
{
	struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = restart ? SA_RESTART : 0 };
	struct itimerval t = { .it_value = { ms / 1000, (ms % 1000) * 1000 } };

	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &t, NULL);
}

static int stream_proto; /* SUPPROBE_PROTO */

static int listener(const struct sockaddr_storage *ss, socklen_t len)
{
	int fd = socket(ss->ss_family, SOCK_STREAM, stream_proto), one = 1;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, 16) != 0) {
		printf("listen=%s\n", ename(errno));
		exit(1);
	}
	printf("listening\n");
	fflush(stdout);
	return fd;
}

/* aarch64 (and every newer architecture) has mkdirat only. */
#ifdef __NR_mkdir
#define PROBE_NR_MKDIR __NR_mkdir
#define probe_mkdir(path) syscall(SYS_mkdir, path, 0700)
#else
#define PROBE_NR_MKDIR __NR_mkdirat
#define probe_mkdir(path) syscall(SYS_mkdirat, AT_FDCWD, path, 0700)
#endif

/* Filters stack: the strictest answer wins, so ours still sees connect
 * unless this one refuses it first. */
static void own_filter(int deny_connect_errno)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROBE_NR_MKDIR, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_connect, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, deny_connect_errno ? SECCOMP_RET_ERRNO | (unsigned)deny_connect_errno
							     : SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
		printf("filter=%s\n", ename(errno));
		exit(1);
	}
	printf("mkdir=%s\n", probe_mkdir("/tmp/supprobe-never") ? ename(errno) : "0");
}

static int thread_listener;

static void *accept_thread(void *arg)
{
	int c = accept(thread_listener, NULL, NULL);

	(void)arg;
	printf("thread accept=%s\n", c >= 0 ? "ok" : ename(errno));
	return NULL;
}

static int cmd_threads(struct sockaddr_storage *ss, socklen_t len, const char *lport)
{
	struct sockaddr_storage ls = *ss;
	pthread_t t;
	char buf[16] = "";
	int fd;

	((struct sockaddr_in *)&ls)->sin_port = htons((unsigned short)atoi(lport));
	thread_listener = listener(&ls, len);
	pthread_create(&t, NULL, accept_thread, NULL);
	usleep(300 * 1000); /* the thread is in its accept now */
	fd = socket(ss->ss_family, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)ss, len) != 0) {
		printf("main connect=%s\n", ename(errno));
		return 1;
	}
	(void)!write(fd, "echo\n", 5);
	(void)!read(fd, buf, sizeof(buf) - 1);
	printf("main echo=%s", buf);
	close(fd);
	/* Now release the thread with a client of its own. */
	fd = socket(ss->ss_family, SOCK_STREAM, 0);
	connect(fd, (struct sockaddr *)&ls, len);
	pthread_join(t, NULL);
	return 0;
}

/* ---- listen-shutdown ---- */

struct acceptor {
	int fd;
	pthread_t t;
	volatile int result; /* -1 while blocked, else 0 (accepted) or errno */
};

static void *acceptor_main(void *arg)
{
	struct acceptor *a = arg;
	int c = accept(a->fd, NULL, NULL);

	a->result = c >= 0 ? 0 : errno;
	if (c >= 0)
		close(c);
	return NULL;
}

static void acceptor_start(struct acceptor *a, int fd)
{
	a->fd = fd;
	a->result = -1;
	pthread_create(&a->t, NULL, acceptor_main, a);
}

static const char *acceptor_outcome(struct acceptor *a, int secs)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += secs;
	if (pthread_timedjoin_np(a->t, NULL, &until) != 0)
		return "still blocked";
	return a->result ? ename(a->result) : "accepted";
}

static const char *shut(int fd, int how)
{
	return shutdown(fd, how) == 0 ? "0" : ename(errno);
}

static int quiet_listener(struct sockaddr_storage *ss, socklen_t len, int port_offset)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	int fd;

	in->sin_port = htons((unsigned short)(ntohs(in->sin_port) + port_offset));
	fd = socket(ss->ss_family, SOCK_STREAM, 0);
	if (bind(fd, (struct sockaddr *)ss, len) != 0 || listen(fd, 16) != 0) {
		printf("listen=%s\n", ename(errno));
		exit(1);
	}
	in->sin_port = htons((unsigned short)(ntohs(in->sin_port) - port_offset));
	return fd;
}

static int cmd_listen_shutdown(struct sockaddr_storage *ss, socklen_t len, const char *dial)
{
	static const struct { const char *name; int how; } hows[] = { { "SHUT_RDWR", SHUT_RDWR },
								     { "SHUT_RD", SHUT_RD } };
	int fd, pipefd[2], acceptconn;
	socklen_t olen = sizeof(acceptconn);
	struct pollfd p;
	char msg[64] = "still blocked";
	pid_t pid;

	/* A prefork server: the listener shared with a child blocked in accept. */
	fd = quiet_listener(ss, len, 0);
	if (pipe(pipefd) != 0 || (pid = fork()) < 0)
		return 1;
	if (pid == 0) {
		int c = accept(fd, NULL, NULL);
		const char *m = c >= 0 ? "accepted" : ename(errno);
		(void)!write(pipefd[1], m, strlen(m));
		_exit(0);
	}
	close(pipefd[1]);
	usleep(300 * 1000);
	printf("fork: shutdown %s\n", shut(fd, SHUT_RDWR));
	p = (struct pollfd){ pipefd[0], POLLIN, 0 };
	if (poll(&p, 1, 5000) == 1) {
		ssize_t n = read(pipefd[0], msg, sizeof(msg) - 1);
		msg[n > 0 ? n : 0] = '\0';
	} else {
		kill(pid, SIGKILL);
	}
	printf("fork: the child's blocked accept: %s\n", msg);
	waitpid(pid, NULL, 0);
	close(fd);

	for (int i = 0; i < 2; i++) {
		struct acceptor a[2], later;
		const char *how = hows[i].name;
		fd = quiet_listener(ss, len, 1 + i);
		acceptor_start(&a[0], fd);
		acceptor_start(&a[1], fd);
		usleep(300 * 1000);
		printf("%s: shutdown %s\n", how, shut(fd, hows[i].how));
		printf("%s: blocked accepts: %s", how, acceptor_outcome(&a[0], 5));
		printf(" %s\n", acceptor_outcome(&a[1], 5));
		acceptor_start(&later, fd);
		printf("%s: a later accept: %s\n", how, acceptor_outcome(&later, 3));
		p = (struct pollfd){ fd, POLLIN, 0 };
		printf("%s: poll(POLLIN) wakes: %s\n", how, poll(&p, 1, 1000) == 1 ? "yes" : "no");
		olen = sizeof(acceptconn);
		getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acceptconn, &olen);
		printf("%s: SO_ACCEPTCONN %d\n", how, acceptconn);
		printf("%s: a second shutdown %s\n", how, shut(fd, SHUT_RDWR));
		{
			int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK);
			printf("%s: a non-blocking accept: %s\n", how, c >= 0 ? "accepted" : ename(errno));
		}
		close(fd);
	}

	{
		struct sockaddr_storage to;
		socklen_t tlen;
		struct acceptor a;
		char port[16];
		int c;
		fd = quiet_listener(ss, len, 3);
		printf("SHUT_WR: shutdown %s\n", shut(fd, SHUT_WR));
		acceptor_start(&a, fd);
		usleep(300 * 1000);
		snprintf(port, sizeof(port), "%u", ntohs(((struct sockaddr_in *)ss)->sin_port) + 3);
		tlen = parse(dial, port, &to);
		c = socket(to.ss_family, SOCK_STREAM, 0);
		printf("SHUT_WR: connect %s\n",
		       connect(c, (struct sockaddr *)&to, tlen) == 0 ? "0" : ename(errno));
		printf("SHUT_WR: a client is still accepted: %s\n", acceptor_outcome(&a, 5));
		olen = sizeof(acceptconn);
		getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acceptconn, &olen);
		printf("SHUT_WR: SO_ACCEPTCONN %d\n", acceptconn);
		close(c);
		printf("bad how: shutdown %s\n", shut(fd, 7));
		close(fd);
	}
	fflush(stdout);
	_exit(0);
}

/* ---- connect-signals ---- */

static int cmd_connect_signals(struct sockaddr_storage *ss, socklen_t len, const char *mode,
			       int n, int us)
{
	struct sigaction sa = { .sa_handler = on_alarm,
				.sa_flags = !strcmp(mode, "restart") ? SA_RESTART : 0 };
	struct itimerval t = { .it_interval = { 0, us }, .it_value = { 0, us } };
	int ok = 0, outcome[256] = { 0 };

	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &t, NULL);
	for (int i = 0; i < n; i++) {
		int fd = socket(ss->ss_family, SOCK_STREAM, 0), r, err = 0;
		char buf[8] = "";
		ssize_t got;
		while ((r = connect(fd, (struct sockaddr *)ss, len)) != 0 && errno == EINTR &&
		       sa.sa_flags == 0)
			;
		if (r != 0)
			err = errno;
		else if (write(fd, "x\n", 2) != 2)
			err = errno;
		else {
			do
				got = read(fd, buf, sizeof(buf) - 1);
			while (got < 0 && errno == EINTR);
			if (got != 2)
				err = got < 0 ? errno : EPIPE;
		}
		if (err)
			outcome[err & 255]++;
		else
			ok++;
		close(fd);
	}
	t = (struct itimerval){ 0 };
	setitimer(ITIMER_REAL, &t, NULL);
	printf("connects=%d ok=%d", n, ok);
	for (int e = 1; e < 256; e++)
		if (outcome[e])
			printf(" %s=%d", ename(e), outcome[e]);
	printf("\n");
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss, peer;
	socklen_t len, plen = sizeof(peer);
	int fd, c;

	if (argc < 4)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("SUPPROBE_PROTO"))
		stream_proto = atoi(getenv("SUPPROBE_PROTO"));
	len = parse(argv[2], argv[3], &ss);
	if (!strcmp(argv[1], "accept-intr") || !strcmp(argv[1], "accept-restart")) {
		bool restart = argv[1][7] == 'r';
		fd = listener(&ss, len);
		alarm_in(300, restart);
		c = accept(fd, (struct sockaddr *)&peer, &plen);
		printf("accept=%s", c >= 0 ? "ok" : ename(errno));
		if (c >= 0)
			printf(" peer=%s len=%u", fam(peer.ss_family), plen);
		printf("\n");
		return 0;
	}
	if (!strcmp(argv[1], "threads") && argc > 4)
		return cmd_threads(&ss, len, argv[4]);
	if (!strcmp(argv[1], "connect-signals") && argc > 6)
		return cmd_connect_signals(&ss, len, argv[4], atoi(argv[5]), atoi(argv[6]));
	if (!strcmp(argv[1], "fd-reuse"))
		return cmd_fd_reuse(&ss, len);
	if (!strcmp(argv[1], "listen-shutdown") && argc > 4)
		return cmd_listen_shutdown(&ss, len, argv[4]);
	if (!strcmp(argv[1], "own-filter") && argc > 4) {
		own_filter(atoi(argv[4]));
		argv[1] = (char *)"connect";
	}
	if (!strcmp(argv[1], "connect")) {
		char ip[INET6_ADDRSTRLEN] = "";
		fd = socket(ss.ss_family, SOCK_STREAM, stream_proto);
		if (stream_proto) {
			int proto = -1;
			socklen_t plen2 = sizeof(proto);
			if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &plen2) != 0) {
				printf("socket=%s\n", ename(errno));
				return 1;
			}
			printf("proto=%d\n", proto);
		}
		c = connect(fd, (struct sockaddr *)&ss, len);
		printf("connect=%s\n", c == 0 ? "0" : ename(errno));
		if (c != 0)
			return 0;
		{
			int one = 1, bad = 70000;
			printf("nodelay=%s", setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))
						     ? ename(errno) : "0");
			printf(" keepidle_bad=%s", setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &bad,
							       sizeof(bad)) ? ename(errno) : "0");
			printf(" congestion=%s\n", setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, "cubic", 5)
							  ? ename(errno) : "0");
		}
		getpeername(fd, (struct sockaddr *)&peer, &plen);
		if (peer.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, ip, sizeof(ip));
		else if (peer.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, ip, sizeof(ip));
		printf("peer=%s addr=%s port=%u\n", fam(peer.ss_family), ip,
		       ntohs(((struct sockaddr_in *)&peer)->sin_port));
		plen = sizeof(peer);
		getsockname(fd, (struct sockaddr *)&peer, &plen);
		printf("local=%s\n", fam(peer.ss_family));
		return 0;
	}
	if (!strcmp(argv[1], "serve") && argc > 4) {
		int n = atoi(argv[4]);
		fd = listener(&ss, len);
		for (int i = 0; i < n; i++) {
			char buf[256];
			ssize_t r;
			plen = sizeof(peer);
			if ((c = accept(fd, (struct sockaddr *)&peer, &plen)) < 0) {
				printf("accept=%s\n", ename(errno));
				return 1;
			}
			if ((r = read(c, buf, sizeof(buf))) > 0)
				(void)!write(c, buf, (size_t)r);
			close(c);
		}
		printf("served=%d\n", n);
		return 0;
	}
	return 2;
}
