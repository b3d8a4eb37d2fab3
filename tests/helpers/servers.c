/* servers SUBCOMMAND ARGS...: server process models for tests/vm/servers.bats.
 * Each subcommand runs the same way over plain TCP (127.0.0.1 / ::1) and
 * over the shim (vsock-*.local names or fake addresses), so the test can use
 * TCP as the oracle.  Output is one "key=value ..." line per fact; a line
 * starting with "FAIL" is a failed check (exit status 1).
 *
 *   multibind HOSTS PORT N CLOSEIDX
 *       resolve every comma-separated HOST with getaddrinfo(AI_PASSIVE), bind
 *       and listen on every answer (same PORT), poll all the fds and accept N
 *       connections in total (each: read a line, answer "ok IDX\n", close).
 *       When N/2 connections are accepted, listener CLOSEIDX (-1: none) is
 *       closed before that connection is answered.
 *   spawn MODE BINDHOST CONNHOST PORT
 *       bind+listen on BINDHOST:PORT (AF_INET), spawn a child (MODE: vfork,
 *       vforkexec, posix_spawn), connect to CONNHOST:PORT, accept, spawn
 *       again, and print the names the parent sees after each step.
 *   epoll MODE HOST PORT
 *       non-blocking socket registered with epoll (MODE et: EPOLLIN|EPOLLOUT|
 *       EPOLLET; oneshot: EPOLLOUT|EPOLLONESHOT, re-armed with EPOLL_CTL_MOD
 *       for EPOLLIN) BEFORE connect(HOST:PORT); waits for the connect and for
 *       an echo of the request.
 *   epoll listen BINDHOST PORT CONNHOST
 *       non-blocking listener registered (EPOLLIN|EPOLLET) BEFORE bind+listen;
 *       a connection from CONNHOST must be reported.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *ename(int err)
{
	const char *n = err ? strerrorname_np(err) : "0";
	return n ? n : "?";
}

static const char *fam_name(int fam)
{
	switch (fam) {
	case AF_INET: return "AF_INET";
	case AF_INET6: return "AF_INET6";
	case AF_VSOCK: return "AF_VSOCK";
	case AF_UNIX: return "AF_UNIX";
	default: return "AF_OTHER";
	}
}

/* "family=F addr=A port=P" of a sockaddr into buf. */
static void fmt_sa(char *buf, size_t len, const struct sockaddr_storage *ss)
{
	char a[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		port = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		port = ntohs(s6->sin6_port);
	}
	snprintf(buf, len, "family=%s addr=%s port=%u", fam_name(ss->ss_family), a, port);
}

static int name_of(int fd, int peer, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int r;

	memset(&ss, 0, sizeof(ss));
	r = peer ? getpeername(fd, (struct sockaddr *)&ss, &sl)
		 : getsockname(fd, (struct sockaddr *)&ss, &sl);
	if (r != 0) {
		snprintf(buf, len, "error=%s", ename(errno));
		return -1;
	}
	fmt_sa(buf, len, &ss);
	return ss.ss_family;
}

static struct addrinfo *resolve(const char *host, const char *port, int family, int passive)
{
	struct addrinfo hints, *res = NULL;
	int r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
		printf("FAIL getaddrinfo %s: %s\n", host, gai_strerror(r));
		exit(1);
	}
	return res;
}

static int read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		ssize_t r = read(fd, buf + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = 0;
	return (int)n;
}

static int write_all(int fd, const char *s)
{
	size_t len = strlen(s), off = 0;

	while (off < len) {
		ssize_t w = write(fd, s + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

/* ---- multibind ------------------------------------------------------------ */

#define MAXL 8

static int cmd_multibind(char **argv)
{
	char hosts[256], *save = NULL, *h, buf[160];
	const char *port = argv[1];
	int n = atoi(argv[2]), closeidx = atoi(argv[3]);
	int fds[MAXL], fams[MAXL], count[MAXL] = { 0 }, after[MAXL] = { 0 };
	int nl = 0, total = 0, closed = 0, bad = 0;

	snprintf(hosts, sizeof(hosts), "%s", argv[0]);
	for (h = strtok_r(hosts, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
		struct addrinfo *res = resolve(h, port, AF_UNSPEC, 1), *ai;

		for (ai = res; ai && nl < MAXL; ai = ai->ai_next) {
			int one = 1, s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);

			if (s < 0) {
				printf("FAIL socket %s\n", ename(errno));
				return 1;
			}
			setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (ai->ai_family == AF_INET6)
				setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
			fmt_sa(buf, sizeof(buf), (struct sockaddr_storage *)ai->ai_addr);
			if (bind(s, ai->ai_addr, ai->ai_addrlen) != 0) {
				printf("FAIL bind %d %s: %s\n", nl, buf, ename(errno));
				return 1;
			}
			if (listen(s, 16) != 0) {
				printf("FAIL listen %d: %s\n", nl, ename(errno));
				return 1;
			}
			fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
			fds[nl] = s;
			fams[nl] = ai->ai_family;
			nl++;
		}
		freeaddrinfo(res);
	}
	for (int i = 0; i < nl; i++) {
		int f = name_of(fds[i], 0, buf, sizeof(buf));
		printf("listener idx=%d %s%s\n", i, buf, f == fams[i] ? "" : " MISMATCH");
		if (f != fams[i])
			bad++;
	}
	printf("listening n=%d\n", nl);
	fflush(stdout);

	while (total < n) {
		struct pollfd pfd[MAXL];
		int r;

		for (int i = 0; i < nl; i++) {
			pfd[i].fd = fds[i];
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
		r = poll(pfd, (nfds_t)nl, 30000);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			printf("FAIL poll timed out after %d accepts\n", total);
			return 1;
		}
		for (int i = 0; i < nl && total < n; i++) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);
			char line[64], reply[32], peer[160];
			int c;

			if (fds[i] < 0 || !(pfd[i].revents & (POLLIN | POLLERR | POLLHUP)))
				continue;
			memset(&ss, 0, sizeof(ss));
			c = accept4(fds[i], (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
			if (c < 0) {
				if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
					continue;
				printf("FAIL accept idx=%d: %s\n", i, ename(errno));
				return 1;
			}
			total++;
			count[i]++;
			if (closed)
				after[i]++;
			fmt_sa(peer, sizeof(peer), &ss);
			printf("accept idx=%d peer %s%s\n", i, peer,
			       ss.ss_family == fams[i] ? "" : " MISMATCH");
			if (ss.ss_family != fams[i])
				bad++;
			read_line(c, line, sizeof(line));
			if (closeidx >= 0 && closeidx < nl && !closed && total == n / 2) {
				close(fds[closeidx]);
				fds[closeidx] = -1;
				closed = 1;
				printf("closed idx=%d\n", closeidx);
				for (int j = 0; j < nl; j++) {
					int f;
					if (fds[j] < 0)
						continue;
					f = name_of(fds[j], 0, buf, sizeof(buf));
					printf("still idx=%d %s%s\n", j, buf, f == fams[j] ? "" : " MISMATCH");
					if (f != fams[j])
						bad++;
				}
			}
			snprintf(reply, sizeof(reply), "ok %d\n", i);
			write_all(c, reply);
			close(c);
		}
		fflush(stdout);
	}
	for (int i = 0; i < nl; i++)
		printf("count idx=%d accepted=%d after_close=%d\n", i, count[i], after[i]);
	printf("total=%d bad=%d\n", total, bad);
	return bad ? 1 : 0;
}

/* ---- spawn ---------------------------------------------------------------- */

static const char *spawn_mode;

static void spawn_child(int lfd, int afd)
{
	pid_t pid;
	int st;

	if (!strcmp(spawn_mode, "posix_spawn")) {
		posix_spawn_file_actions_t fa;
		char *args[] = { "true", NULL };

		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, lfd, 50);
		posix_spawn_file_actions_addclose(&fa, lfd);
		if (afd >= 0) {
			posix_spawn_file_actions_adddup2(&fa, afd, 51);
			posix_spawn_file_actions_addclose(&fa, afd);
		}
		posix_spawn_file_actions_addclosefrom_np(&fa, 3);
		errno = posix_spawn(&pid, "/bin/true", &fa, NULL, args, environ);
		posix_spawn_file_actions_destroy(&fa);
		if (errno) {
			printf("FAIL posix_spawn %s\n", ename(errno));
			exit(1);
		}
	} else {
		int exec = !strcmp(spawn_mode, "vforkexec");

		pid = vfork();
		if (pid == 0) {
			/* What a careful daemon's child does before exec: move a
			 * socket, then close everything it does not need. */
			dup2(lfd, 60);
			close(60);
			if (exec) {
				close_range(3, ~0U, 0);
				execl("/bin/true", "true", (char *)NULL);
				_exit(127);
			}
			for (int fd = 3; fd < 1024; fd++)
				close(fd);
			_exit(0);
		}
		if (pid < 0) {
			printf("FAIL vfork %s\n", ename(errno));
			exit(1);
		}
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		printf("FAIL child status %d\n", st);
		exit(1);
	}
}

static int connect_to(const char *host, const char *port)
{
	struct addrinfo *res = resolve(host, port, AF_INET, 0);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (connect(s, res->ai_addr, res->ai_addrlen) != 0) {
		printf("FAIL connect %s: %s\n", host, ename(errno));
		exit(1);
	}
	freeaddrinfo(res);
	return s;
}

static int accept_one(int lfd, const char *tag)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char buf[160];
	int a;

	memset(&ss, 0, sizeof(ss));
	a = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (a < 0) {
		printf("FAIL accept %s: %s\n", tag, ename(errno));
		exit(1);
	}
	fmt_sa(buf, sizeof(buf), &ss);
	printf("%s accept %s\n", tag, buf);
	return a;
}

static void show(const char *tag, const char *what, int fd, int peer)
{
	char buf[160];

	name_of(fd, peer, buf, sizeof(buf));
	printf("%s %s %s\n", tag, what, buf);
}

static int cmd_spawn(char **argv)
{
	struct addrinfo *res;
	int one = 1, lfd, c1, a1, c2, a2;
	char line[64];

	spawn_mode = argv[0];
	res = resolve(argv[1], argv[3], AF_INET, 1);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, res->ai_addr, res->ai_addrlen) != 0 || listen(lfd, 8) != 0) {
		printf("FAIL bind/listen: %s\n", ename(errno));
		return 1;
	}
	freeaddrinfo(res);

	spawn_child(lfd, -1);                       /* after bind+listen */
	show("1", "listener", lfd, 0);
	c1 = connect_to(argv[2], argv[3]);
	a1 = accept_one(lfd, "1");
	show("1", "peer", a1, 1);
	show("1", "local", a1, 0);

	spawn_child(lfd, a1);                       /* after accept */
	show("2", "listener", lfd, 0);
	show("2", "peer", a1, 1);
	show("2", "clientpeer", c1, 1);
	c2 = connect_to(argv[2], argv[3]);
	a2 = accept_one(lfd, "2");
	show("2", "peer2", a2, 1);

	write_all(c2, "data\n");
	read_line(a2, line, sizeof(line));
	printf("data %s", line);
	close(c1); close(a1); close(c2); close(a2); close(lfd);
	return 0;
}

/* ---- epoll ---------------------------------------------------------------- */

#define COOKIE 0x1234567890abcdefULL

/* Wait for an event on the one registered fd; returns its mask or 0. */
static uint32_t wait_ev(int ep, const char *what)
{
	struct epoll_event ev;

	for (int tries = 0; tries < 5; tries++) {
		int r = epoll_wait(ep, &ev, 1, 2000);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			printf("FAIL epoll_wait %s: %s\n", what, ename(errno));
			exit(1);
		}
		if (r == 0)
			continue;
		if (ev.data.u64 != COOKIE) {
			printf("FAIL cookie %llx while waiting for %s\n", (unsigned long long)ev.data.u64, what);
			exit(1);
		}
		printf("event %s mask=%#x\n", what, ev.events);
		return ev.events;
	}
	printf("FAIL no epoll event for %s within 10 s\n", what);
	exit(1);
}

static int cmd_epoll(char **argv)
{
	int oneshot = !strcmp(argv[0], "oneshot");
	struct addrinfo *res = resolve(argv[1], argv[2], AF_INET, 0);
	struct epoll_event ev;
	int s, ep, err = 0, r;
	socklen_t el = sizeof(err);
	uint32_t m;
	char buf[64];
	size_t got = 0;
	const char *req = "hello epoll\n";

	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ep = epoll_create1(EPOLL_CLOEXEC);
	memset(&ev, 0, sizeof(ev));
	ev.events = oneshot ? (EPOLLOUT | EPOLLONESHOT) : (EPOLLIN | EPOLLOUT | EPOLLET);
	ev.data.u64 = COOKIE;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) != 0) {
		printf("FAIL epoll_ctl ADD: %s\n", ename(errno));
		return 1;
	}
	r = connect(s, res->ai_addr, res->ai_addrlen);
	printf("connect %s\n", r == 0 ? "0" : ename(errno));
	if (r != 0 && errno != EINPROGRESS) {
		printf("FAIL connect\n");
		return 1;
	}
	freeaddrinfo(res);
	m = wait_ev(ep, "connect");
	if (!(m & EPOLLOUT)) {
		printf("FAIL no EPOLLOUT after connect\n");
		return 1;
	}
	getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el);
	printf("so_error %s\n", ename(err));
	if (err) {
		printf("FAIL connect error\n");
		return 1;
	}
	show("connected", "peer", s, 1);
	if (oneshot) {
		ev.events = EPOLLIN | EPOLLONESHOT;
		ev.data.u64 = COOKIE;
		if (epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev) != 0) {
			printf("FAIL epoll_ctl MOD: %s\n", ename(errno));
			return 1;
		}
	}
	if (write_all(s, req) != 0) {
		printf("FAIL write: %s\n", ename(errno));
		return 1;
	}
	while (got < strlen(req)) {
		m = wait_ev(ep, "reply");
		if (!(m & EPOLLIN)) {
			if (!oneshot)
				continue;    /* e.g. another EPOLLOUT edge */
			printf("FAIL no EPOLLIN\n");
			return 1;
		}
		for (;;) {
			ssize_t n = read(s, buf + got, sizeof(buf) - 1 - got);
			if (n > 0) {
				got += (size_t)n;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		if (oneshot && got < strlen(req))
			epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev);
	}
	buf[got] = 0;
	printf("reply %s", buf);
	if (strcmp(buf, req)) {
		printf("FAIL wrong reply\n");
		return 1;
	}
	printf("ok\n");
	close(ep);
	close(s);
	return 0;
}

/* epoll listen BINDHOST PORT CONNHOST: a non-blocking listener registered
 * (EPOLLIN|EPOLLET) before bind+listen must report the incoming connection. */
static int cmd_epoll_listen(char **argv)
{
	struct addrinfo *res = resolve(argv[0], argv[1], AF_INET, 1);
	struct epoll_event ev;
	int one = 1, l, ep, c, a;
	uint32_t m;

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ep = epoll_create1(EPOLL_CLOEXEC);
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLET;
	ev.data.u64 = COOKIE;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) != 0) {
		printf("FAIL epoll_ctl ADD: %s\n", ename(errno));
		return 1;
	}
	if (bind(l, res->ai_addr, res->ai_addrlen) != 0 || listen(l, 8) != 0) {
		printf("FAIL bind/listen: %s\n", ename(errno));
		return 1;
	}
	freeaddrinfo(res);
	show("listening", "name", l, 0);
	c = connect_to(argv[2], argv[1]);
	m = wait_ev(ep, "accept");
	if (!(m & EPOLLIN)) {
		printf("FAIL no EPOLLIN on the listener\n");
		return 1;
	}
	a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (a < 0) {
		printf("FAIL accept: %s\n", ename(errno));
		return 1;
	}
	show("accepted", "peer", a, 1);
	printf("ok\n");
	close(a); close(c); close(l); close(ep);
	return 0;
}

int main(int argc, char **argv)
{
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 6 && !strcmp(argv[1], "multibind"))
		r = cmd_multibind(argv + 2);
	else if (argc == 6 && !strcmp(argv[1], "spawn"))
		r = cmd_spawn(argv + 2);
	else if (argc == 6 && !strcmp(argv[1], "epoll") && !strcmp(argv[2], "listen"))
		r = cmd_epoll_listen(argv + 3);
	else if (argc == 5 && !strcmp(argv[1], "epoll"))
		r = cmd_epoll(argv + 2);
	else {
		fprintf(stderr, "usage: see the comment at the top of servers.c\n");
		return 2;
	}
	return r;
}
