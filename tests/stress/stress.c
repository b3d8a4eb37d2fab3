/* Stress test for vsockify: a plain TCP program that reaches vsock only
 * through the shim (fake addresses and vsock-*.local), run by T threads of
 * K operations each.  fd numbers are recycled between vsock, TCP and Unix
 * sockets and regular files, under dup2/dup3/F_DUPFD/close_range churn,
 * fork+exec and a storm of signals (with and without SA_RESTART).
 *
 * Every connection carries a token, so the receiver knows whether it reached
 * the intended peer.  Each defect class has a counter, printed at the end as
 * "counter NAME VALUE"; the exit status is 0 only if all are 0.
 *
 * --numeric resolves only the numeric fake addresses (127.128.0.1 for CID 1,
 * 127.255.255.255 for any), never vsock-*.local: a static glibc build under
 * the supervisor has no resolver that knows our names (docs/supervisor.md).
 *
 * --supervisor-limits leaves out what the supervisor documents as its limits
 * with signals (docs/supervisor.md, Limits): a signal without SA_RESTART
 * interrupts any trapped call, so EINTR from bind, listen, getsockname,
 * getpeername and getsockopt is retried (stat eintr_retried); a signal
 * during a trapped connect can leave it unstarted or restart it finished,
 * and one during a trapped accept can strand the connection where poll()
 * does not see it, so the storm's signals are blocked around connect() and
 * accept() (the SIGUSR1 cancel stays: whatever connect says then, only the
 * file on the number counts).
 *
 *   stress [--quick] [--numeric] [--supervisor-limits] [--threads T] [--ops K]
 *   stress --child-check FD ADDR PORT TOKEN   (internal, run through exec)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define COUNTERS(X)                                                              \
	X(misrouted)          /* data reached the wrong peer, or a file changed */ \
	X(untranslated)       /* AF_VSOCK shown to the app, or TCP/unix altered */ \
	X(leaked_fds)         /* /proc/self/fd count differs before/after */      \
	X(dead_after_eintr)   /* EINTR'd connect looked done, yet send failed */  \
	X(file_became_socket) /* an fd opened as a regular file is a socket */    \
	X(unexpected_errno)   /* a call failed where TCP would not */             \
	X(timeouts)           /* a peer or connection never arrived */            \
	X(child_failed)       /* the exec'd child could not check its socket */ \
	X(name_race_raw)      /* getpeername racing a dup2/close_range: AF_VSOCK */

#define STATS(X) \
	X(ops) X(vsock_connects) X(eintr_connects) X(cancelled_connects) \
	X(stale_accepts) X(children) X(signals) X(name_race_accepts) X(eintr_retried)

#define ENUM(n) C_##n,
enum counter { COUNTERS(ENUM) N_COUNTERS };
#undef ENUM
#define ENUM(n) S_##n,
enum statistic { STATS(ENUM) N_STATS };
#undef ENUM
#define NAME(n) #n,
static const char *const counter_name[] = { COUNTERS(NAME) };
static const char *const stat_name[] = { STATS(NAME) };
#undef NAME

static atomic_long counters[N_COUNTERS], stats[N_STATS];
static atomic_long errno_seen[256]; /* unexpected errnos, by value */
static atomic_int reports;
#define MAX_REPORTS 40

#define NSLOTS 8          /* fd numbers each thread owns, for dup2/close_range */
#define SLOT_BASE 512     /* above anything the kernel hands out here */
#define WAIT_MS 10000     /* TCG is slow; a healthy peer answers well within */
#define MAGIC 0x76736b21u /* "vsk!" */

struct token {
	uint32_t magic, thread, seq, salt;
};

enum slot_kind { EMPTY, FILE_SLOT, CONN_SLOT };

struct slot {
	enum slot_kind kind;
	int peer;                        /* CONN: our accepted end */
	bool vsock;                      /* CONN: through the shim */
	struct token tok;                /* FILE: its content */
	struct sockaddr_storage target;  /* CONN: what getpeername must show */
};

struct worker {
	int id;
	pthread_t th;
	atomic_bool running;
	uint64_t rng;
	uint32_t seq;
	int vlisten, tlisten, ulisten; /* vsock (via shim), TCP, Unix listeners */
	uint16_t vport, tport;
	struct sockaddr_un uaddr;
	socklen_t ualen;
	int cancel_file; /* what the SIGUSR1 handler dup2s over a connecting fd */
	struct token cancel_tok;
	struct slot slots[NSLOTS];
};

static int nthreads = 16, nops = 10000;
static bool numeric; /* --numeric: no vsock-*.local names, see the top */
static bool supervisor_limits; /* --supervisor-limits: see the top */
static struct worker *workers;
static const char *self_exe = "/proc/self/exe";

/* ---- reporting ------------------------------------------------------------ */

static void count(enum counter c, int tid, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void count(enum counter c, int tid, const char *fmt, ...)
{
	va_list ap;

	atomic_fetch_add(&counters[c], 1);
	if (atomic_fetch_add(&reports, 1) >= MAX_REPORTS)
		return;
	char msg[256];
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "stress: %s: thread %d: %s\n", counter_name[c], tid, msg);
}

static void unexpected(int tid, const char *what, int err)
{
	atomic_fetch_add(&errno_seen[err & 255], 1);
	count(C_unexpected_errno, tid, "%s: %s", what, strerror(err));
}

/* ---- small helpers --------------------------------------------------------- */

/* rc is a call's result: true if it is an EINTR to be retried. */
static bool eintr_retry(int rc)
{
	if (rc == 0 || errno != EINTR || !supervisor_limits)
		return false;
	atomic_fetch_add(&stats[S_eintr_retried], 1);
	return true;
}

/* A call TCP never interrupts, retried on EINTR only with --supervisor-limits. */
#define UNINTERRUPTED(call)                  \
	({                                   \
		int rc_;                     \
		while (eintr_retry(rc_ = (call))) \
			;                    \
		rc_;                         \
	})

/* With --supervisor-limits, the storm's signals are held back around a
 * connect() or accept() (SIGUSR1 still comes for a cancel); without it,
 * these do nothing. */
static void shield(bool cancel, sigset_t *old)
{
	sigset_t storm;

	if (!supervisor_limits)
		return;
	sigemptyset(&storm);
	sigaddset(&storm, SIGUSR2);
	if (!cancel)
		sigaddset(&storm, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &storm, old);
}

static void unshield(const sigset_t *old)
{
	int err = errno;

	if (supervisor_limits)
		pthread_sigmask(SIG_SETMASK, old, NULL);
	errno = err;
}

static int shielded_connect(int fd, const struct sockaddr *sa, socklen_t len, bool cancel)
{
	sigset_t old;
	int rc;

	shield(cancel, &old);
	rc = connect(fd, sa, len);
	unshield(&old);
	return rc;
}

static uint32_t rnd(struct worker *w, uint32_t n)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return (uint32_t)(w->rng >> 11) % n;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* poll() one fd, through any number of EINTRs: 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, int ms)
{
	long end = now_ms() + ms;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		long left = end - now_ms();
		int rc = poll(&p, 1, left > 0 ? (int)left : 0);
		if (rc >= 0 || errno != EINTR)
			return rc;
	}
}

static int send_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EAGAIN && wait_fd(fd, POLLOUT, WAIT_MS) > 0)
			continue;
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* n bytes within WAIT_MS: returns n, 0 on EOF, -1 on error, -2 on timeout. */
static ssize_t recv_exact(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		int r = wait_fd(fd, POLLIN, WAIT_MS);
		if (r <= 0)
			return r == 0 ? -2 : -1;
		ssize_t k = recv(fd, (char *)buf + got, n - got, 0);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0)
			return k;
		got += (size_t)k;
	}
	return (ssize_t)got;
}

static struct token new_token(struct worker *w)
{
	return (struct token){ MAGIC, (uint32_t)w->id, ++w->seq, rnd(w, UINT32_MAX) };
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_addr.s_addr == y->sin_addr.s_addr && x->sin_port == y->sin_port;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return !memcmp(&x->sin6_addr, &y->sin6_addr, 16) && x->sin6_port == y->sin6_port;
	}
	return true;
}

/* An AF_INET or AF_INET6 address from its text. */
static void make_addr(const char *text, uint16_t port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in = (void *)ss;
	struct sockaddr_in6 *in6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
	} else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
	}
}

static uint16_t port_in(const struct sockaddr_storage *ss)
{
	return ntohs(((const struct sockaddr_in *)ss)->sin_port); /* same spot in in6 */
}

static socklen_t sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
					: sizeof(struct sockaddr_in6);
}

/* What an app over TCP must see for fd's peer or local name: want's family,
 * and its address if it has a port.  Another family is a translation defect. */
static void check_name(int tid, int fd, bool peer, const struct sockaddr_storage *want,
		       const char *what)
{
	struct sockaddr_storage got;
	socklen_t len = sizeof(got);
	int dom = 0;
	socklen_t dlen = sizeof(dom);

	memset(&got, 0, sizeof(got));
	if (UNINTERRUPTED(peer ? getpeername(fd, (void *)&got, &len)
			       : getsockname(fd, (void *)&got, &len)) != 0) {
		unexpected(tid, what, errno);
		return;
	}
	if (got.ss_family != want->ss_family) {
		count(C_untranslated, tid, "%s: %s family %d, want %d", what,
		      peer ? "peer" : "local", got.ss_family, want->ss_family);
		return;
	}
	if (peer && port_in(want) && !same_addr(&got, want))
		count(C_misrouted, tid, "%s: peer address differs from the one connected to", what);
	if (UNINTERRUPTED(getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &dlen)) != 0)
		unexpected(tid, what, errno);
	else if (dom != want->ss_family)
		count(C_untranslated, tid, "%s: SO_DOMAIN %d, want %d", what, dom, want->ss_family);
}

static struct sockaddr_storage family_only(int family)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)family };
	return ss;
}

static void check_regular(int tid, int fd, const struct token *tok, const char *what)
{
	struct stat st;
	struct token got;

	if (fstat(fd, &st) != 0) {
		unexpected(tid, what, errno);
		return;
	}
	if (S_ISSOCK(st.st_mode)) {
		count(C_file_became_socket, tid, "%s: fd %d is a socket", what, fd);
		return;
	}
	if (pread(fd, &got, sizeof(got), 0) != (ssize_t)sizeof(got) || memcmp(&got, tok, sizeof(got)))
		count(C_misrouted, tid, "%s: fd %d: the file's content changed", what, fd);
}

static void close_quietly(int tid, int fd, bool use_close_range)
{
#ifdef __SANITIZE_THREAD__
	/* gcc 12's TSan does not intercept close_range: the number's next
	 * owner, in another thread, would be reported as a race on the fd. */
	use_close_range = false;
#endif
	int rc = use_close_range ? close_range((unsigned)fd, (unsigned)fd, 0) : close(fd);
	if (rc != 0 && errno != EINTR)
		unexpected(tid, "close", errno);
}

/* ---- the SIGUSR1 "cancel" --------------------------------------------------
 * A program may cancel a connect in progress by dup2()ing another file over
 * the fd (the usual way to abort without recycling the number).  Whatever
 * connect does, the fd must then be that file. */

static __thread volatile sig_atomic_t cancel_fd = -1, cancel_src = -1, cancelled;

static void on_usr1(int sig)
{
	int saved = errno;

	(void)sig;
	if (cancel_fd >= 0 && !cancelled) {
		dup2(cancel_src, cancel_fd);
		cancelled = 1;
	}
	errno = saved;
}

static void on_usr2(int sig)
{
	(void)sig;
}

/* ---- connections ------------------------------------------------------------ */

enum conn_kind { VSOCK4, VSOCK6, VSOCK_MAPPED, VSOCK_GAI, TCP, UNIX_LISTEN, UNIX_PAIR, N_KINDS };

struct conn {
	int c, s; /* client end, accepted end */
	bool vsock;
	struct sockaddr_storage target;
};

/* Accept the connection that carries tok.  Connections left behind by an
 * interrupted or cancelled connect are read to EOF and dropped. */
static int accept_token(struct worker *w, int lfd, int family, const struct token *tok)
{
	long end = now_ms() + WAIT_MS;

	while (now_ms() < end) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		struct token got;
		int r = wait_fd(lfd, POLLIN, (int)(end - now_ms()));
		if (r <= 0)
			break;
		sigset_t old;
		shield(false, &old);
		int s = accept4(lfd, (void *)&peer, &plen, SOCK_CLOEXEC);
		unshield(&old);
		if (s < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
				continue;
			unexpected(w->id, "accept", errno);
			return -1;
		}
		if (peer.ss_family != family)
			count(C_untranslated, w->id, "accept: family %d, want %d", peer.ss_family, family);
		ssize_t n = recv_exact(s, &got, sizeof(got));
		if (n == (ssize_t)sizeof(got) && !memcmp(&got, tok, sizeof(got)))
			return s;
		close(s);
		if (n != (ssize_t)sizeof(got) ||
		    (got.magic == MAGIC && got.thread == tok->thread && got.seq < tok->seq)) {
			atomic_fetch_add(&stats[S_stale_accepts], 1);
			continue;
		}
		count(C_misrouted, w->id, "accept: token of thread %u seq %u, want thread %u seq %u",
		      got.thread, got.seq, tok->thread, tok->seq);
		return -1;
	}
	count(C_timeouts, w->id, "no connection with seq %u reached the listener", tok->seq);
	return -1;
}

static void vsock_target(struct worker *w, enum conn_kind k, struct sockaddr_storage *ss)
{
	if (k == VSOCK4) {
		make_addr("127.128.0.1", w->vport, ss);
	} else if (k == VSOCK6) {
		make_addr("100::7673:6f63:0:1", w->vport, ss);
	} else if (k == VSOCK_MAPPED) {
		make_addr("::ffff:127.128.0.1", w->vport, ss);
	} else {
		/* The name, as a program would: either family's answer. */
		struct addrinfo hints = { .ai_family = rnd(w, 2) ? AF_INET : AF_INET6,
					  .ai_socktype = SOCK_STREAM,
					  .ai_flags = numeric ? AI_NUMERICHOST : 0 }, *ai;
		const char *host = "vsock-1.local";
		if (numeric)
			host = hints.ai_family == AF_INET ? "127.128.0.1" : "100::7673:6f63:0:1";
		char port[8];
		snprintf(port, sizeof(port), "%u", w->vport);
		int rc = getaddrinfo(host, port, &hints, &ai);
		if (rc != 0) {
			count(C_unexpected_errno, w->id, "getaddrinfo %s: %s", host, gai_strerror(rc));
			vsock_target(w, VSOCK4, ss);
			return;
		}
		memcpy(ss, ai->ai_addr, ai->ai_addrlen);
		freeaddrinfo(ai);
	}
}

/* connect() returned EINTR: as with TCP, the connect must carry on, so once
 * poll says writable with SO_ERROR 0 the socket must be usable. */
static bool finish_after_eintr(struct worker *w, int c, const struct token *tok)
{
	int err = 0;
	socklen_t len = sizeof(err);

	atomic_fetch_add(&stats[S_eintr_connects], 1);
	int r = wait_fd(c, POLLOUT, WAIT_MS);
	if (r <= 0) {
		if (r == 0)
			count(C_timeouts, w->id, "connect after EINTR never became writable");
		else
			unexpected(w->id, "poll after EINTR", errno);
		return false;
	}
	if (UNINTERRUPTED(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len)) != 0 || err != 0) {
		unexpected(w->id, "SO_ERROR after EINTR", err ? err : errno);
		return false;
	}
	if (send_all(c, tok, sizeof(*tok)) != 0) {
		if (errno == ENOTCONN || errno == EPIPE)
			count(C_dead_after_eintr, w->id, "writable, SO_ERROR 0, then send: %s",
			      strerror(errno));
		else
			unexpected(w->id, "send after EINTR", errno);
		return false;
	}
	return true;
}

/* A blocking or non-blocking connect through the shim.  Returns false (with
 * whatever went wrong counted) if there is no connection to use. */
static bool connect_vsock(struct worker *w, struct conn *cn, enum conn_kind k,
			  const struct token *tok)
{
	bool nonblock = rnd(w, 2), cancel = !nonblock && rnd(w, 3) == 0, sent = false;
	int rc, err;

	vsock_target(w, k, &cn->target);
	cn->vsock = true;
	cn->c = socket(cn->target.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (cn->c < 0) {
		unexpected(w->id, "socket", errno);
		return false;
	}
	atomic_fetch_add(&stats[S_vsock_connects], 1);
	if (cancel) {
		cancelled = 0;
		cancel_src = w->cancel_file;
		atomic_signal_fence(memory_order_seq_cst);
		cancel_fd = cn->c;
	}
	rc = shielded_connect(cn->c, (void *)&cn->target, sa_len(&cn->target), cancel);
	err = errno;
	cancel_fd = -1;
	atomic_signal_fence(memory_order_seq_cst);
	if (cancel && cancelled) {
		/* Whatever connect said, the number now belongs to the file. */
		atomic_fetch_add(&stats[S_cancelled_connects], 1);
		check_regular(w->id, cn->c, &w->cancel_tok, "cancelled connect");
		close(cn->c);
		return false;
	}
	if (rc != 0 && err == EINPROGRESS && nonblock) {
		socklen_t len = sizeof(err);
		if (wait_fd(cn->c, POLLOUT, WAIT_MS) <= 0) {
			count(C_timeouts, w->id, "non-blocking connect never completed");
			goto fail;
		}
		if (UNINTERRUPTED(getsockopt(cn->c, SOL_SOCKET, SO_ERROR, &err, &len)) != 0 ||
		    err != 0) {
			unexpected(w->id, "SO_ERROR after EINPROGRESS", err ? err : errno);
			goto fail;
		}
	} else if (rc != 0 && err == EINTR) {
		if (!finish_after_eintr(w, cn->c, tok))
			goto fail;
		sent = true;
	} else if (rc != 0) {
		unexpected(w->id, "connect", err);
		goto fail;
	}
	if (!sent && send_all(cn->c, tok, sizeof(*tok)) != 0) {
		unexpected(w->id, "send token", errno);
		goto fail;
	}
	cn->s = accept_token(w, w->vlisten, AF_INET, tok);
	if (cn->s < 0)
		goto fail;
	check_name(w->id, cn->c, true, &cn->target, "vsock client");
	struct sockaddr_storage mine = family_only(cn->target.ss_family), inet = family_only(AF_INET);
	check_name(w->id, cn->c, false, &mine, "vsock client");
	check_name(w->id, cn->s, false, &inet, "vsock accepted");
	check_name(w->id, cn->s, true, &inet, "vsock accepted");
	return true;
fail:
	close(cn->c);
	return false;
}

static bool connect_plain(struct worker *w, struct conn *cn, enum conn_kind k,
			  const struct token *tok)
{
	int lfd = k == TCP ? w->tlisten : w->ulisten;
	int family = k == TCP ? AF_INET : AF_UNIX;

	cn->vsock = false;
	memset(&cn->target, 0, sizeof(cn->target));
	if (k == UNIX_PAIR) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
			unexpected(w->id, "socketpair", errno);
			return false;
		}
		cn->c = sv[0];
		cn->s = sv[1];
		cn->target.ss_family = AF_UNIX;
		return true;
	}
	cn->c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cn->c < 0) {
		unexpected(w->id, "socket", errno);
		return false;
	}
	if (k == TCP)
		make_addr("127.0.0.1", w->tport, &cn->target);
	else
		memcpy(&cn->target, &w->uaddr, w->ualen);
	int rc;
	do
		rc = shielded_connect(cn->c, (void *)&cn->target,
				      k == TCP ? sizeof(struct sockaddr_in) : w->ualen, false);
	while (rc != 0 && errno == EINTR && k == UNIX_LISTEN);
	if (rc != 0 && errno == EINTR) /* TCP: carries on in the background */
		rc = wait_fd(cn->c, POLLOUT, WAIT_MS) > 0 ? 0 : -1;
	if (rc != 0 || send_all(cn->c, tok, sizeof(*tok)) != 0) {
		unexpected(w->id, k == TCP ? "TCP connect" : "unix connect", errno);
		close(cn->c);
		return false;
	}
	cn->s = accept_token(w, lfd, family, tok);
	if (cn->s < 0) {
		close(cn->c);
		return false;
	}
	check_name(w->id, cn->c, k == TCP, &cn->target, "plain client");
	return true;
}

static bool open_conn(struct worker *w, struct conn *cn, enum conn_kind k)
{
	struct token tok = new_token(w);
	bool ok = k <= VSOCK_GAI ? connect_vsock(w, cn, k, &tok) : connect_plain(w, cn, k, &tok);

	if (ok && k == UNIX_PAIR) { /* a pair has no listener: the token goes here */
		struct token got;
		if (send_all(cn->c, &tok, sizeof(tok)) != 0 ||
		    recv_exact(cn->s, &got, sizeof(got)) != (ssize_t)sizeof(got) ||
		    memcmp(&got, &tok, sizeof(got)))
			count(C_misrouted, w->id, "socketpair lost its token");
	}
	return ok;
}

/* A token each way through an established connection. */
static void ping(struct worker *w, int c, int s, const char *what)
{
	struct token tok = new_token(w), got;
	ssize_t n;

	if (send_all(c, &tok, sizeof(tok)) != 0 || send_all(s, &tok, sizeof(tok)) != 0) {
		unexpected(w->id, what, errno);
		return;
	}
	for (int i = 0; i < 2; i++) {
		n = recv_exact(i ? c : s, &got, sizeof(got));
		if (n == -2)
			count(C_timeouts, w->id, "%s: no reply", what);
		else if (n < 0)
			unexpected(w->id, what, errno);
		else if (n == 0 || memcmp(&got, &tok, sizeof(got)))
			count(C_misrouted, w->id, "%s: wrong or no data (%zd bytes)", what, n);
	}
}

/* ---- slots: fd numbers this thread owns ----------------------------------- */

static int slot_fd(struct worker *w, int i)
{
	return SLOT_BASE + w->id * NSLOTS + i;
}

/* The slot's old content dies (the kernel closes it); close what goes with it. */
static void slot_drop(struct worker *w, int i)
{
	if (w->slots[i].kind == CONN_SLOT)
		close(w->slots[i].peer);
	w->slots[i].kind = EMPTY;
}

/* Put fd on slot i's number, by dup2 onto a live number or F_DUPFD onto a
 * free one, and close the original. */
static bool slot_put(struct worker *w, int i, int fd)
{
	int to = slot_fd(w, i), rc;
	bool was_empty = w->slots[i].kind == EMPTY;

	switch (was_empty ? rnd(w, 4) : rnd(w, 2)) {
	case 0: rc = dup2(fd, to); break;
	case 1: rc = dup3(fd, to, O_CLOEXEC); break;
	case 2: rc = fcntl(fd, F_DUPFD, to); break;
	default: rc = fcntl(fd, F_DUPFD_CLOEXEC, to); break;
	}
	if (rc != to) {
		unexpected(w->id, "dup onto slot", rc < 0 ? errno : EBADF);
		if (rc >= 0)
			close(rc);
		close(fd);
		return false;
	}
	slot_drop(w, i);
	close_quietly(w->id, fd, rnd(w, 2));
	return true;
}

static void slot_verify(struct worker *w, int i)
{
	struct slot *sl = &w->slots[i];
	int fd = slot_fd(w, i);

	if (sl->kind == FILE_SLOT) {
		check_regular(w->id, fd, &sl->tok, "file slot");
	} else if (sl->kind == CONN_SLOT) {
		check_name(w->id, fd, sl->target.ss_family != AF_UNIX, &sl->target,
			   sl->vsock ? "vsock slot" : "plain slot");
		ping(w, fd, sl->peer, sl->vsock ? "vsock slot" : "plain slot");
	}
}

static void slots_close_all(struct worker *w)
{
	if (close_range((unsigned)slot_fd(w, 0), (unsigned)slot_fd(w, NSLOTS - 1), 0) != 0)
		unexpected(w->id, "close_range", errno);
	for (int i = 0; i < NSLOTS; i++)
		slot_drop(w, i);
}

/* fork + exec this program on a shimmed socket it inherits: the exec'd
 * image must still see AF_INET/AF_INET6 and the right peer. */
static void exec_child(struct worker *w, int i)
{
	struct slot *sl = &w->slots[i];
	struct token tok = new_token(w), got;
	char fdbuf[16], addrbuf[INET6_ADDRSTRLEN], portbuf[16], tokbuf[64];
	int fd = slot_fd(w, i), status;
	const struct sockaddr_in *in = (const void *)&sl->target;
	const struct sockaddr_in6 *in6 = (const void *)&sl->target;

	snprintf(fdbuf, sizeof(fdbuf), "%d", fd);
	inet_ntop(in->sin_family, in->sin_family == AF_INET ? (const void *)&in->sin_addr
							    : (const void *)&in6->sin6_addr,
		  addrbuf, sizeof(addrbuf));
	snprintf(portbuf, sizeof(portbuf), "%u", port_in(&sl->target));
	snprintf(tokbuf, sizeof(tokbuf), "%u:%u:%u", tok.thread, tok.seq, tok.salt);
	char *argv[] = { (char *)self_exe, "--child-check", fdbuf, addrbuf, portbuf, tokbuf, NULL };

	atomic_fetch_add(&stats[S_children], 1);
	pid_t pid = fork();
	if (pid == 0) {
		fcntl(fd, F_SETFD, 0); /* the child's copy only */
		execv(self_exe, argv);
		_exit(127);
	}
	if (pid < 0) {
		unexpected(w->id, "fork", errno);
		return;
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			unexpected(w->id, "waitpid", errno);
			return;
		}
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (code == 2)
		count(C_untranslated, w->id, "exec'd child saw its inherited socket untranslated");
	else if (code == 3)
		count(C_misrouted, w->id, "exec'd child saw the wrong peer");
	else if (code != 0)
		count(C_child_failed, w->id, "exec'd child exited with %d", code);
	else if (recv_exact(sl->peer, &got, sizeof(got)) != (ssize_t)sizeof(got) ||
		 memcmp(&got, &tok, sizeof(got)))
		count(C_misrouted, w->id, "exec'd child's token did not arrive");
}

/* The exec'd side: exit 0 if fd's peer is ADDR:PORT as the parent saw it
 * (then send TOKEN through it), 2 if untranslated, 3 if another peer. */
static int child_check(char **argv)
{
	int fd = atoi(argv[0]), dom = 0;
	struct sockaddr_storage want, got, local;
	socklen_t len = sizeof(got), llen = sizeof(local), dlen = sizeof(dom);
	struct token tok = { MAGIC, 0, 0, 0 };

	make_addr(argv[1], (uint16_t)atoi(argv[2]), &want);
	if (sscanf(argv[3], "%u:%u:%u", &tok.thread, &tok.seq, &tok.salt) != 3 ||
	    getpeername(fd, (void *)&got, &len) != 0 ||
	    getsockname(fd, (void *)&local, &llen) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &dlen) != 0)
		return 4;
	if (got.ss_family != want.ss_family || local.ss_family != want.ss_family ||
	    dom != want.ss_family)
		return 2;
	if (!same_addr(&got, &want))
		return 3;
	return send_all(fd, &tok, sizeof(tok)) == 0 ? 0 : 4;
}

/* ---- one worker ------------------------------------------------------------- */

static int listen_on(struct worker *w, int family, const void *sa, socklen_t len)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || UNINTERRUPTED(bind(fd, sa, len)) != 0 ||
	    UNINTERRUPTED(listen(fd, 128)) != 0) {
		unexpected(w->id, "listener", errno);
		exit(2);
	}
	return fd;
}

static uint16_t port_of(struct worker *w, int fd, const char *what)
{
	struct sockaddr_in in;
	socklen_t len = sizeof(in);

	if (UNINTERRUPTED(getsockname(fd, (void *)&in, &len)) != 0 || in.sin_family != AF_INET) {
		count(C_untranslated, w->id, "%s listener's getsockname", what);
		exit(2);
	}
	return ntohs(in.sin_port);
}

static void worker_setup(struct worker *w)
{
	/* vsock-any.local, as the shim's fake address; port 0 picks one. */
	struct sockaddr_in any = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7fffffff) };
	struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char path[256];

	w->vlisten = listen_on(w, AF_INET, &any, sizeof(any));
	w->vport = port_of(w, w->vlisten, "vsock");
	w->tlisten = listen_on(w, AF_INET, &lo, sizeof(lo));
	w->tport = port_of(w, w->tlisten, "TCP");
	w->uaddr.sun_family = AF_UNIX; /* abstract: nothing to clean up */
	w->ualen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			       (size_t)snprintf(w->uaddr.sun_path + 1, sizeof(w->uaddr.sun_path) - 1,
						"vsockify-stress-%d-%d", getpid(), w->id));
	w->ulisten = listen_on(w, AF_UNIX, &w->uaddr, w->ualen);

	snprintf(path, sizeof(path), "%s/vsockify-stress-%d-%d", getenv("TMPDIR") ?: "/tmp",
		 getpid(), w->id);
	w->cancel_file = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->cancel_file < 0) {
		unexpected(w->id, path, errno);
		exit(2);
	}
	unlink(path);
	w->cancel_tok = new_token(w);
	if (pwrite(w->cancel_file, &w->cancel_tok, sizeof(w->cancel_tok), 0) != sizeof(w->cancel_tok))
		unexpected(w->id, "pwrite", errno);
}

static int open_temp_file(struct worker *w, struct token *tok)
{
	char path[256];
	int fd;

	*tok = new_token(w);
	snprintf(path, sizeof(path), "%s/vsockify-stress-%d-%d-%u", getenv("TMPDIR") ?: "/tmp",
		 getpid(), w->id, tok->seq);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		unexpected(w->id, "open", errno);
		return -1;
	}
	unlink(path);
	if (pwrite(fd, tok, sizeof(*tok), 0) != sizeof(*tok))
		unexpected(w->id, "pwrite", errno);
	return fd;
}

static void one_op(struct worker *w)
{
	uint32_t r = rnd(w, 1000);
	int i = (int)rnd(w, NSLOTS);

	if (r < 550) { /* a new connection: use it, then close it or keep it in a slot */
		struct conn cn;
		enum conn_kind k = (enum conn_kind)rnd(w, N_KINDS);
		if (!open_conn(w, &cn, k))
			return;
		ping(w, cn.c, cn.s, cn.vsock ? "vsock" : "plain");
		if (!rnd(w, 2)) {
			close_quietly(w->id, cn.c, rnd(w, 2));
			close(cn.s);
		} else if (slot_put(w, i, cn.c)) {
			w->slots[i] = (struct slot){ .kind = CONN_SLOT, .peer = cn.s,
						     .vsock = cn.vsock, .target = cn.target };
			slot_verify(w, i);
		} else {
			close(cn.s);
		}
	} else if (r < 700) { /* a regular file on a recycled number */
		struct token tok;
		int fd = open_temp_file(w, &tok);
		if (fd < 0)
			return;
		check_regular(w->id, fd, &tok, "file");
		if (!rnd(w, 2)) {
			close_quietly(w->id, fd, rnd(w, 2));
		} else if (slot_put(w, i, fd)) {
			w->slots[i] = (struct slot){ .kind = FILE_SLOT, .tok = tok };
			slot_verify(w, i);
		}
	} else if (r < 850) {
		slot_verify(w, i);
	} else if (r < 930) { /* close one slot, or all of them */
		if (rnd(w, 4) == 0) {
			slots_close_all(w);
		} else if (w->slots[i].kind) {
			close_quietly(w->id, slot_fd(w, i), rnd(w, 2));
			slot_drop(w, i);
		}
	} else if (r < 995) { /* CLOSE_RANGE_CLOEXEC closes nothing */
		if (close_range((unsigned)slot_fd(w, 0), (unsigned)slot_fd(w, NSLOTS - 1),
				CLOSE_RANGE_CLOEXEC) != 0)
			unexpected(w->id, "close_range(CLOEXEC)", errno);
		for (int j = 0; j < NSLOTS; j++)
			slot_verify(w, j);
	} else { /* fork + exec: slow in the VM, so rare */
		for (int j = 0; j < NSLOTS; j++)
			if (w->slots[(i + j) % NSLOTS].kind == CONN_SLOT &&
			    w->slots[(i + j) % NSLOTS].vsock) {
				exec_child(w, (i + j) % NSLOTS);
				break;
			}
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	worker_setup(w);
	for (int op = 0; op < nops; op++) {
		one_op(w);
		atomic_fetch_add(&stats[S_ops], 1);
	}
	for (int i = 0; i < NSLOTS; i++)
		slot_verify(w, i);
	slots_close_all(w);
	close(w->vlisten);
	close(w->tlisten);
	close(w->ulisten);
	close(w->cancel_file);
	atomic_store(&w->running, false);
	return NULL;
}

/* ---- the signal storm ------------------------------------------------------- */

static atomic_bool storm_on = true;

static void *storm_main(void *arg)
{
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	struct timespec gap = { 0, 200 * 1000 };

	(void)arg;
	while (atomic_load(&storm_on)) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		struct worker *w = &workers[rng % (uint64_t)nthreads];
		if (atomic_load(&w->running) &&
		    pthread_kill(w->th, (rng >> 32) % 3 ? SIGUSR1 : SIGUSR2) == 0)
			atomic_fetch_add(&stats[S_signals], 1);
		nanosleep(&gap, NULL);
	}
	return NULL;
}

/* ---- names read while another thread replaces the number --------------------
 * One thread accepts vsock connections and asks getpeername of each while
 * another dup2s /dev/null over, or close_ranges, the number it just got.
 * Over TCP the answer is an inet address or an error, never AF_VSOCK.  Run
 * in a child process of its own: the clobbering may leave fds behind. */
static atomic_int race_fd = -1;
static atomic_bool race_on;

static void *name_race_clobber(void *arg)
{
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	uint64_t rng = 0x243f6a8885a308d3ull;

	(void)arg;
	while (atomic_load(&race_on)) {
		int fd = atomic_load(&race_fd);
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		if (fd > 2 && fd != devnull) {
			if (rng & 1)
				dup2(devnull, fd);
			else
				close_range((unsigned)fd, (unsigned)fd, 0);
		}
		for (volatile unsigned spin = (unsigned)(rng >> 40) % 2000; spin; spin--)
			;
	}
	return NULL;
}

static long name_race(int accepts)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = numeric ? AI_NUMERICHOST : 0 }, *any = NULL, *one = NULL;
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	pthread_t th;
	char port[8];
	long raw = 0;
	int lfd;

	if (getaddrinfo(numeric ? "127.255.255.255" : "vsock-any.local", "0", &hints, &any) != 0)
		return -1;
	lfd = socket(any->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, any->ai_addr, any->ai_addrlen) != 0 || listen(lfd, 64) != 0 ||
	    getsockname(lfd, (void *)&local, &llen) != 0)
		return -1;
	snprintf(port, sizeof(port), "%u", port_in(&local));
	if (getaddrinfo(numeric ? "127.128.0.1" : "vsock-1.local", port, &hints, &one) != 0)
		return -1;
	atomic_store(&race_on, true);
	pthread_create(&th, NULL, name_race_clobber, NULL);
	for (int i = 0; i < accepts; i++) {
		int c = socket(one->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), nfd;
		if (c < 0)
			continue;
		if (connect(c, one->ai_addr, one->ai_addrlen) != 0 ||
		    (nfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
			close(c);
			continue;
		}
		atomic_fetch_add(&stats[S_name_race_accepts], 1);
		atomic_store(&race_fd, nfd);
		for (int k = 0; k < 4; k++) {
			struct sockaddr_storage peer = { 0 };
			socklen_t plen = sizeof(peer);
			if (getpeername(nfd, (void *)&peer, &plen) == 0 && peer.ss_family == AF_VSOCK)
				raw++;
		}
		atomic_store(&race_fd, -1);
		close(nfd);
		close(c);
	}
	atomic_store(&race_on, false);
	pthread_join(th, NULL);
	return raw;
}

/* The race in a child; its count comes back in a pipe. */
static void run_name_race(int accepts)
{
	int p[2], status;
	long raw = -1, accepted = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0 || (pid = fork()) < 0)
		return;
	if (pid == 0) {
		long got[2];
		got[0] = name_race(accepts);
		got[1] = atomic_load(&stats[S_name_race_accepts]);
		_exit(write(p[1], got, sizeof(got)) == (ssize_t)sizeof(got) ? 0 : 1);
	}
	close(p[1]);
	long got[2];
	if (read(p[0], got, sizeof(got)) == (ssize_t)sizeof(got))
		raw = got[0], accepted = got[1];
	close(p[0]);
	waitpid(pid, &status, 0);
	atomic_store(&stats[S_name_race_accepts], accepted);
	if (raw < 0 || accepted < accepts / 2)
		count(C_timeouts, -1, "name race: only %ld of %d accepts", accepted, accepts);
	else if (raw)
		atomic_fetch_add(&counters[C_name_race_raw], raw);
}

/* ---- main --------------------------------------------------------------------- */

static int count_fds(bool show)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		n++;
		if (show && atoi(de->d_name) != dirfd(d)) {
			char link[300], target[256];
			snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
			ssize_t k = readlink(link, target, sizeof(target) - 1);
			target[k > 0 ? k : 0] = '\0';
			fprintf(stderr, "stress: open at the end: fd %s -> %s\n", de->d_name, target);
		}
	}
	closedir(d);
	return n;
}

static void install(int sig, void (*fn)(int), int flags)
{
	struct sigaction sa = { .sa_handler = fn, .sa_flags = flags };

	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv)
{
	pthread_t storm;
	struct rlimit rl;
	long total = 0;
	int before, after;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--child-check") && argc - i == 5)
			return child_check(argv + i + 1);
		if (!strcmp(argv[i], "--quick"))
			nthreads = 8, nops = 1500;
		else if (!strcmp(argv[i], "--numeric"))
			numeric = true;
		else if (!strcmp(argv[i], "--supervisor-limits"))
			supervisor_limits = true;
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			nthreads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			nops = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: stress [--quick] [--numeric] [--supervisor-limits] "
					"[--threads T] [--ops K]\n");
			return 2;
		}
	}
	if (nthreads < 1 || nops < 0 ||
	    getrlimit(RLIMIT_NOFILE, &rl) != 0 ||
	    rl.rlim_cur < (rlim_t)(SLOT_BASE + nthreads * NSLOTS)) {
		fprintf(stderr, "stress: bad --threads, or RLIMIT_NOFILE below %d\n",
			SLOT_BASE + nthreads * NSLOTS);
		return 2;
	}
	if (supervisor_limits)
		printf("stress: skipped (supervisor limits, docs/supervisor.md): signals during "
		       "connect() other than the SIGUSR1 cancel, since one can leave the connect "
		       "unstarted or restart it finished; signals during accept(), since one can "
		       "strand the connection where poll() does not see it; EINTR from bind, "
		       "listen, getsockname, getpeername, getsockopt is retried, since a signal "
		       "interrupts any trapped call\n");
	signal(SIGPIPE, SIG_IGN);
	install(SIGUSR1, on_usr1, 0);          /* interrupts: EINTR */
	install(SIGUSR2, on_usr2, SA_RESTART); /* restarts */

	before = count_fds(false);
	workers = calloc((size_t)nthreads, sizeof(*workers));
	for (int i = 0; i < nthreads; i++) {
		workers[i].id = i;
		workers[i].rng = 0x2545f4914f6cdd1dull * (uint64_t)(i + 1) ^ (uint64_t)getpid();
		atomic_store(&workers[i].running, true);
		if (pthread_create(&workers[i].th, NULL, worker_main, &workers[i]) != 0) {
			perror("pthread_create");
			return 2;
		}
	}
	pthread_create(&storm, NULL, storm_main, NULL);
	for (int i = 0; i < nthreads; i++)
		pthread_join(workers[i].th, NULL);
	atomic_store(&storm_on, false);
	pthread_join(storm, NULL);

	after = count_fds(false);
	run_name_race(nops >= 10000 ? 3000 : 500);
	if (after != before) {
		atomic_fetch_add(&counters[C_leaked_fds], after > before ? after - before : before - after);
		fprintf(stderr, "stress: %d fds open before, %d after\n", before, after);
		count_fds(true);
	}
	for (int s = 0; s < N_STATS; s++)
		printf("stat %s %ld\n", stat_name[s], atomic_load(&stats[s]));
	for (int e = 0; e < 256; e++)
		if (atomic_load(&errno_seen[e]))
			printf("stat errno_%s %ld\n", strerrorname_np(e) ?: "?", atomic_load(&errno_seen[e]));
	for (int c = 0; c < N_COUNTERS; c++) {
		printf("counter %s %ld\n", counter_name[c], atomic_load(&counters[c]));
		total += atomic_load(&counters[c]);
	}
	free(workers);
	return total ? 1 : 0;
}
