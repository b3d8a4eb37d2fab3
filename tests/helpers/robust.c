/* robust SUBCOMMAND ARGS...: small programs for tests/vm/robust.bats, each
 * one a race or an edge case the shim once got wrong.  Every subcommand runs
 * the same way over plain TCP (a 127.0.0.1 address) and over the shim (a
 * fake address), so the test can compare the two.  Addresses are numeric
 * IPv4.
 *
 *   racefd ADDR PORT N FILE      connect(N) in one thread, close(N)+open()
 *                                in another: the file must stay a file
 *   sarestart ADDR PORT N        blocking connects under an SA_RESTART timer
 *   swaprace ADDR PORT N         connects while a thread reads names/options
 *   nbseq ADDR CLOSED OPEN       errno sequence of a failed non-blocking connect
 *   emfile ADDR PORT             TCP options with the fd table full
 *   closerange BIND CONN PORT N  accept vs close_range in another thread
 *   small ADDR PORT              addrlen 200, AF_UNSPEC, EFAULT
 *   sigfirst                     first hooked call made inside a signal handler
 *   closeneg                     one hooked call, close(-1), after main starts
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "malloc_storm.h"

static struct sockaddr_in addr_of(const char *ip, const char *port)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)atoi(port));
	if (inet_pton(AF_INET, ip, &sin.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", ip);
		exit(2);
	}
	return sin;
}

static const char *ename(int err)
{
	const char *n = err ? strerrorname_np(err) : "0";
	return n ? n : "?";
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void spin_ns(long long ns)
{
	long long end = now_ns() + ns;

	while (now_ns() < end)
		;
}

static unsigned rnd_state = 12345;
static unsigned rnd(void)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return rnd_state >> 8;
}

static int tcp_socket(int flags)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);

	if (s < 0) {
		perror("socket");
		exit(2);
	}
	return s;
}

/* ---- racefd -------------------------------------------------------------- */

static struct {
	int fd;
	struct sockaddr_in sa;
	pthread_barrier_t bar;
	long long spin;
	const char *path;
	char pattern[64];
	int openfd;
} rf;

static void *rf_connect(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&rf.bar);
	connect(rf.fd, (struct sockaddr *)&rf.sa, sizeof(rf.sa));
	return NULL;
}

static void *rf_reuse(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&rf.bar);
	spin_ns(rf.spin);
	close(rf.fd);
	rf.openfd = open(rf.path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (rf.openfd >= 0) {
		ssize_t w = write(rf.openfd, rf.pattern, strlen(rf.pattern));
		(void)w;
	}
	return NULL;
}

static int cmd_racefd(char **argv)
{
	int n = atoi(argv[2]), reused = 0, takeover = 0, corrupt = 0;
	long long t0, connect_ns;

	rf.sa = addr_of(argv[0], argv[1]);
	rf.path = argv[3];
	/* How long a connect takes here: B's close lands somewhere inside it. */
	t0 = now_ns();
	for (int i = 0; i < 20; i++) {
		int s = tcp_socket(0);
		if (connect(s, (struct sockaddr *)&rf.sa, sizeof(rf.sa)) != 0) {
			perror("connect");
			return 2;
		}
		close(s);
	}
	connect_ns = (now_ns() - t0) / 20;
	for (int i = 0; i < n; i++) {
		pthread_t a, b;
		char got[64];
		struct stat st;
		ssize_t len;
		int rd;

		rf.fd = tcp_socket(0);
		rf.spin = (long long)(rnd() % 1000) * connect_ns / 1000;
		rf.openfd = -1;
		snprintf(rf.pattern, sizeof(rf.pattern), "pattern %d\n", i);
		pthread_barrier_init(&rf.bar, NULL, 2);
		pthread_create(&a, NULL, rf_connect, NULL);
		pthread_create(&b, NULL, rf_reuse, NULL);
		pthread_join(a, NULL);
		pthread_join(b, NULL);
		pthread_barrier_destroy(&rf.bar);
		if (rf.openfd == rf.fd) {
			reused++;
			if (fstat(rf.openfd, &st) == 0 && S_ISSOCK(st.st_mode))
				takeover++;
		}
		rd = open(rf.path, O_RDONLY | O_CLOEXEC);
		len = rd >= 0 ? read(rd, got, sizeof(got) - 1) : -1;
		if (len < 0 || (size_t)len != strlen(rf.pattern) ||
		    memcmp(got, rf.pattern, (size_t)len) != 0)
			corrupt++;
		if (rd >= 0)
			close(rd);
		if (rf.openfd >= 0)
			close(rf.openfd);
	}
	printf("runs=%d connect_ns=%lld reused=%d takeovers=%d corrupt=%d\n", n,
	       connect_ns, reused, takeover, corrupt);
	return 0;
}

/* ---- sarestart ----------------------------------------------------------- */

static void on_alarm(int sig)
{
	(void)sig;
}

static int cmd_sarestart(char **argv)
{
	struct sockaddr_in sa = addr_of(argv[0], argv[1]);
	int n = atoi(argv[2]), failed = 0, sendfail = 0, eintr = 0;
	struct sigaction act;
	struct itimerval it = { { 0, 150 }, { 0, 150 } };
	int last_err = 0;

	memset(&act, 0, sizeof(act));
	act.sa_handler = on_alarm;
	act.sa_flags = SA_RESTART;
	sigemptyset(&act.sa_mask);
	sigaction(SIGALRM, &act, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	for (int i = 0; i < n; i++) {
		int s = tcp_socket(0);
		char b;
		if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			failed++;
			last_err = errno;
			if (errno == EINTR)
				eintr++;
		} else if (send(s, "x", 1, MSG_NOSIGNAL) != 1 || recv(s, &b, 1, 0) != 1) {
			/* the echo also paces us to the server's accept() */
			sendfail++;
			last_err = errno;
		}
		close(s);
	}
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	printf("connects=%d failed=%d eintr=%d sendfail=%d last=%s\n", n, failed,
	       eintr, sendfail, ename(last_err));
	return 0;
}

/* ---- swaprace ------------------------------------------------------------ */

static atomic_int sr_fd = -1;
static atomic_bool sr_stop;

static void *sr_hammer(void *arg)
{
	(void)arg;
	while (!atomic_load(&sr_stop)) {
		int fd = atomic_load(&sr_fd), v;
		struct sockaddr_storage ss;
		socklen_t len = sizeof(v);

		if (fd < 0)
			continue;
		getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len);
		len = sizeof(ss);
		getpeername(fd, (struct sockaddr *)&ss, &len);
		len = sizeof(ss);
		getsockname(fd, (struct sockaddr *)&ss, &len);
	}
	return NULL;
}

static int cmd_swaprace(char **argv)
{
	struct sockaddr_in sa = addr_of(argv[0], argv[1]);
	int n = atoi(argv[2]), connfail = 0, bad = 0, echofail = 0, last_err = 0;
	pthread_t t;

	pthread_create(&t, NULL, sr_hammer, NULL);
	for (int i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		struct sockaddr_in *in = (void *)&ss;
		socklen_t len = sizeof(ss);
		int s = tcp_socket(0);

		atomic_store(&sr_fd, s);
		if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			connfail++;
			last_err = errno;
		} else if (getpeername(s, (struct sockaddr *)&ss, &len) != 0 ||
			   ss.ss_family != AF_INET ||
			   in->sin_addr.s_addr != sa.sin_addr.s_addr ||
			   in->sin_port != sa.sin_port) {
			bad++;
		} else {
			/* one round trip: the server has accepted (a vsock backlog
			 * never fills up and resets later connects) */
			char b;
			if (send(s, "x", 1, MSG_NOSIGNAL) != 1 || recv(s, &b, 1, 0) != 1)
				echofail++;
		}
		atomic_store(&sr_fd, -1);
		close(s);
	}
	atomic_store(&sr_stop, true);
	pthread_join(t, NULL);
	printf("connects=%d connfail=%d badpeer=%d echofail=%d last=%s\n", n, connfail,
	       bad, echofail, ename(last_err));
	return 0;
}

/* ---- nbseq --------------------------------------------------------------- */

static const char *connect_res(int s, const struct sockaddr_in *sa)
{
	return connect(s, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ? "0"
									 : ename(errno);
}

static int cmd_nbseq(char **argv)
{
	struct sockaddr_in closed = addr_of(argv[0], argv[1]);
	struct sockaddr_in open_ = addr_of(argv[0], argv[2]);
	struct pollfd p;
	const char *r;
	int s = tcp_socket(SOCK_NONBLOCK), err = -1;
	socklen_t len = sizeof(err);

	printf("first %s\n", connect_res(s, &closed));
	p = (struct pollfd){ .fd = s, .events = POLLOUT };
	printf("poll ready=%d\n", poll(&p, 1, 10000));
	printf("second %s\n", connect_res(s, &closed));
	r = connect_res(s, &open_);
	printf("third %s\n", strcmp(r, "0") == 0 || strcmp(r, "EINPROGRESS") == 0 ? "started" : r);
	p = (struct pollfd){ .fd = s, .events = POLLOUT };
	poll(&p, 1, 10000);
	getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
	printf("so_error %s\n", ename(err));
	/* TCP: 0 for the first connect() after the async completion */
	printf("fourth %s\n", connect_res(s, &open_));
	if (send(s, "x", 1, MSG_NOSIGNAL) == 1)
		printf("send ok\n");
	else
		printf("send %s\n", ename(errno));
	return 0;
}

/* ---- emfile -------------------------------------------------------------- */

static int cmd_emfile(char **argv)
{
	struct sockaddr_in sa = addr_of(argv[0], argv[1]);
	int s = tcp_socket(0), one = 1, v, nul, rc;
	struct rlimit rl;
	socklen_t len;

	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("connect");
		return 2;
	}
	nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = (rlim_t)nul + 16;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		perror("setrlimit");
		return 2;
	}
	while (dup(nul) >= 0)
		;
	printf("table full: %s\n", ename(errno));
	rc = setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	printf("set TCP_NODELAY rc=%d %s\n", rc, rc ? ename(errno) : "");
	len = sizeof(v);
	rc = getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, &len);
	printf("get TCP_NODELAY rc=%d %s v=%d\n", rc, rc ? ename(errno) : "", rc ? -1 : v);
	len = sizeof(v);
	rc = getsockopt(s, IPPROTO_TCP, TCP_MAXSEG, &v, &len);
	printf("get TCP_MAXSEG rc=%d %s\n", rc, rc ? ename(errno) : "");
	len = sizeof(v);
	rc = getsockopt(s, IPPROTO_TCP, TCP_KEEPIDLE, &v, &len);
	printf("get TCP_KEEPIDLE rc=%d %s v=%d\n", rc, rc ? ename(errno) : "", rc ? -1 : v);
	v = 99;
	rc = setsockopt(s, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof(v));
	printf("set TCP_KEEPIDLE rc=%d %s\n", rc, rc ? ename(errno) : "");
	return 0;
}

/* ---- closerange ---------------------------------------------------------- */

static atomic_bool cr_stop;
static atomic_long cr_closes;

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Opens 16 files and closes them with one close_range per run of
 * consecutive numbers: only ever its own fds, never the app's.  While the
 * kernel closes a run, the other thread's accept can already get the first
 * number of it. */
static void *cr_closer(void *arg)
{
	(void)arg;
	while (!atomic_load(&cr_stop)) {
		enum { K = 16 };
		int f[K], n = 0;
		for (int k = 0; k < K; k++) {
			int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (fd >= 0)
				f[n++] = fd;
		}
		qsort(f, (size_t)n, sizeof(f[0]), cmp_int);
		for (int k = 0; k < n;) {
			int j = k;
			while (j + 1 < n && f[j + 1] == f[j] + 1)
				j++;
			if (close_range((unsigned)f[k], (unsigned)f[j], 0) == 0)
				atomic_fetch_add(&cr_closes, 1);
			k = j + 1;
		}
	}
	return NULL;
}

static bool still_inet(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int dom = -1;
	socklen_t dlen = sizeof(dom);

	return getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
	       ss.ss_family == AF_INET &&
	       getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &dlen) == 0 && dom == AF_INET;
}

static int cmd_closerange(char **argv)
{
	struct sockaddr_in bsa = addr_of(argv[0], argv[2]);
	struct sockaddr_in csa = addr_of(argv[1], argv[2]);
	int n = atoi(argv[3]), one = 1, lost = 0, accepted = 0, st;
	int l = tcp_socket(0);
	pthread_t t;
	pid_t pid;

	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&bsa, sizeof(bsa)) != 0 || listen(l, 64) != 0) {
		perror("bind/listen");
		return 2;
	}
	pid = fork();
	if (pid == 0) {
		for (int i = 0; i < n; i++) {
			int c = tcp_socket(0);
			char b;
			if (connect(c, (struct sockaddr *)&csa, sizeof(csa)) != 0) {
				perror("client connect");
				_exit(3);
			}
			while (read(c, &b, 1) > 0)
				;
			close(c);
		}
		_exit(0);
	}
	pthread_create(&t, NULL, cr_closer, NULL);
	for (int i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int a = accept(l, (struct sockaddr *)&ss, &len);
		bool ok;

		if (a < 0) {
			perror("accept");
			break;
		}
		accepted++;
		ok = ss.ss_family == AF_INET && still_inet(a);
		for (int k = 0; k < 20 && ok; k++) {
			sched_yield();
			ok = still_inet(a);
		}
		if (!ok)
			lost++;
		close(a);
	}
	atomic_store(&cr_stop, true);
	pthread_join(t, NULL);
	waitpid(pid, &st, 0);
	printf("accepted=%d lost=%d close_ranges=%ld client=%d\n", accepted, lost,
	       atomic_load(&cr_closes), WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return 0;
}

/* ---- small --------------------------------------------------------------- */

static int cmd_small(char **argv)
{
	struct sockaddr_in sa = addr_of(argv[0], argv[1]);
	unsigned char big[256];
	struct sockaddr unspec;
	socklen_t len;
	char b;
	int s = tcp_socket(0), t = tcp_socket(0), rc;

	/* (b) an address length beyond sockaddr_storage */
	memset(big, 0, sizeof(big));
	memcpy(big, &sa, sizeof(sa));
	rc = connect(t, (struct sockaddr *)big, 200);
	printf("addrlen200 rc=%d %s\n", rc, rc ? ename(errno) : "");
	close(t);

	/* (c) AF_UNSPEC disconnects; the socket can connect again */
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("connect");
		return 2;
	}
	memset(&unspec, 0, sizeof(unspec));
	unspec.sa_family = AF_UNSPEC;
	rc = connect(s, &unspec, sizeof(unspec));
	printf("unspec rc=%d %s\n", rc, rc ? ename(errno) : "");
	rc = connect(s, (struct sockaddr *)&sa, sizeof(sa));
	printf("reconnect rc=%d %s\n", rc, rc ? ename(errno) : "");
	if (rc == 0) {
		struct sockaddr_in peer;
		len = sizeof(peer);
		rc = (int)send(s, "e", 1, MSG_NOSIGNAL);
		printf("echo %s\n", rc == 1 && recv(s, &b, 1, 0) == 1 && b == 'e' ? "ok" : "failed");
		rc = getpeername(s, (struct sockaddr *)&peer, &len);
		printf("peer same=%d\n", rc == 0 && peer.sin_family == AF_INET &&
		       peer.sin_addr.s_addr == sa.sin_addr.s_addr && peer.sin_port == sa.sin_port);
	}
	fflush(stdout);

	/* (a) a bad buffer is EFAULT, not a crash */
	len = sizeof(struct sockaddr_in);
	rc = getpeername(s, (struct sockaddr *)1, &len);
	printf("efault rc=%d %s\n", rc, rc ? ename(errno) : "");
	len = sizeof(struct sockaddr_in);
	rc = getsockname(s, (struct sockaddr *)1, &len);
	printf("efault-name rc=%d %s\n", rc, rc ? ename(errno) : "");
	return 0;
}

/* ---- sigfirst ------------------------------------------------------------ */

static volatile sig_atomic_t handled;

static void on_sig_hooked(int sig)
{
	int s;

	(void)sig;
	/* async-signal-safe calls, which the shim hooks */
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s >= 0)
		close(s);
	close(-1);
	handled++;
}

static int cmd_sigfirst(void)
{
	malloc_storm(on_sig_hooked, &handled);
	printf("handled=%d\n", (int)handled);
	return 0;
}

int main(int argc, char **argv)
{
	/* a marker for strace: main has started */
	access("/vsockify-robust-main-starts", F_OK);
	if (argc < 2)
		goto usage;
	rnd_state ^= (unsigned)now_ns();
	setvbuf(stdout, NULL, _IOLBF, 0);
#define IS(name, nargs) (strcmp(argv[1], name) == 0 && argc == 2 + (nargs))
	if (IS("racefd", 4))
		return cmd_racefd(argv + 2);
	if (IS("sarestart", 3))
		return cmd_sarestart(argv + 2);
	if (IS("swaprace", 3))
		return cmd_swaprace(argv + 2);
	if (IS("nbseq", 3))
		return cmd_nbseq(argv + 2);
	if (IS("emfile", 2))
		return cmd_emfile(argv + 2);
	if (IS("closerange", 4))
		return cmd_closerange(argv + 2);
	if (IS("small", 2))
		return cmd_small(argv + 2);
	if (IS("sigfirst", 0))
		return cmd_sigfirst();
	if (IS("closeneg", 0))
		return close(-1) == -1 && errno == EBADF ? 0 : 1;
usage:
	fprintf(stderr, "usage: robust racefd|sarestart|swaprace|nbseq|emfile|"
		"closerange|small|sigfirst|closeneg ARGS...\n");
	return 2;
}
