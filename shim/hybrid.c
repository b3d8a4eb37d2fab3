/* The host side of hybrid vsock (Firecracker, Cloud Hypervisor): no
 * AF_VSOCK socket leads to such a guest; its VMM offers a Unix socket
 * instead.  Host -> guest port P: connect to the VMM's socket, send
 * "CONNECT P\n", read "OK <port>\n".  Guest -> host port P: the VMM
 * connects to "<path>_P".  docs/hybrid.md has the protocol and the choices
 * made here. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "swap.h"

#define HANDSHAKE_DEFAULT_MS 10000 /* without SO_SNDTIMEO */
#define OK_LINE_MAX 64
/* A client socket's abstract name carries what an exec'd program needs to
 * show it again: "\0vsockify-hybrid/CID/PORT/FAMILY/PID.SERIAL". */
#define CLIENT_TAG "vsockify-hybrid/"

static atomic_uint client_serial;

int vsk_hybrid_rule_for(uint32_t cid)
{
	const struct vsk_rules *rs = vsk_rules();

	return rs->n_hybrid ? vsk_rules_hybrid(rs, cid) : -1;
}

static const struct vsk_rule *rule_at(int h)
{
	return &vsk_rules()->rule[h];
}

static const char *path_of(int h)
{
	return vsk_rule_path(vsk_rules(), rule_at(h));
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static socklen_t unix_addr(struct sockaddr_un *un, const char *path)
{
	memset(un, 0, sizeof(*un));
	un->sun_family = AF_UNIX;
	snprintf(un->sun_path, sizeof(un->sun_path), "%s", path);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(un->sun_path) + 1);
}

static void put_shown(unsigned char *dst, uint8_t *dlen, enum vsk_app_family fam,
		      uint32_t cid, uint32_t port)
{
	struct sockaddr_storage ss;
	socklen_t n = vsk_encode_sockaddr(&vsk_cfg->net, fam, cid, port, &ss);

	memcpy(dst, &ss, n);
	*dlen = (uint8_t)n;
}

/* The guest's source port never reaches the host; show a stable one in the
 * ephemeral range, derived from the socket itself so an exec'd program
 * shows the same. */
static uint32_t made_up_port(int fd)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return 49152;
	return 49152 + (uint32_t)(st.st_ino % 16384);
}

/* ---- client ---------------------------------------------------------------- */

static void name_client(int ufd, uint32_t cid, uint32_t port, enum vsk_app_family fam)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int n = snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, CLIENT_TAG "%u/%u/%d/%d.%u",
			 cid, port, (int)fam, (int)getpid(), atomic_fetch_add(&client_serial, 1));

	/* Unnamed works too; the name only helps after an exec. */
	if (n > 0)
		bind(ufd, (struct sockaddr *)&un,
		     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n));
}

static void set_sndtimeo(int fd, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	vsk_real.setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A wait cut short by a signal: go on, unless TCP's blocking connect would
 * have returned EINTR (interruptible: a blocking app socket). */
static bool stop_for_signal(bool interruptible)
{
	return interruptible && !vsk_signal_handlers_restart();
}

static int dial_vmm(int ufd, const char *path, uint32_t cid, int timeout_ms,
		    bool interruptible)
{
	struct sockaddr_un un;
	socklen_t len = unix_addr(&un, path);
	int err;

	set_sndtimeo(ufd, timeout_ms > 0 ? timeout_ms : 1);
	do
		err = vsk_real.connect(ufd, (struct sockaddr *)&un, len) == 0 ? 0 : errno;
	while (err == EINTR && !stop_for_signal(interruptible));
	if (err == EINTR)
		return EINTR;
	if (!err)
		return 0;
	if (err == EAGAIN) /* SO_SNDTIMEO ran out: the VMM's backlog is full */
		return ETIMEDOUT;
	/* A path that is not there (or not ours to use) is a setup mistake:
	 * say so even at the default log level. */
	vsk_log(err == ENOENT || err == EACCES || err == ENOTSOCK ? VSK_LOG_ERROR : VSK_LOG_WARN,
		"hybrid vsock: cannot reach CID %u through the VMM socket %s: %s", cid, path,
		strerror(err));
	return ECONNREFUSED;
}

static int send_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return ECONNREFUSED;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read the VMM's answer up to and including its '\n', and not one byte
 * more: what follows is the app's data. */
static int read_answer(int ufd, long long deadline, char *line, size_t *got,
		       bool interruptible)
{
	*got = 0;
	for (;;) {
		struct pollfd p = { .fd = ufd, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;
		char *nl;
		size_t take;

		if (left <= 0)
			return ETIMEDOUT;
		n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (n < 0 && errno == EINTR) {
			/* Only before the first byte: a later call then reads
			 * the whole answer.  Half a line means the rest is on
			 * its way. */
			if (!*got && stop_for_signal(interruptible))
				return EINTR;
			continue;
		}
		if (n <= 0)
			return n == 0 ? ETIMEDOUT : errno;
		n = recv(ufd, line + *got, OK_LINE_MAX - *got, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return ECONNRESET; /* closed before a whole line */
		nl = memchr(line + *got, '\n', (size_t)n);
		take = nl ? (size_t)(nl - (line + *got)) + 1 : (size_t)n;
		if (recv(ufd, line + *got, take, MSG_DONTWAIT) != (ssize_t)take)
			return ECONNRESET;
		*got += take;
		if (nl)
			return 0;
		if (*got >= OK_LINE_MAX)
			return E2BIG;
	}
}

/* "OK <port>" (a '\r' before the '\n' is tolerated). */
static bool parse_ok(char *line, size_t n, uint32_t *host_port)
{
	uint64_t v = 0;
	size_t i = 3;

	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (n < 4 || strncmp(line, "OK ", 3) != 0)
		return false;
	for (; i < n; i++) {
		if (line[i] < '0' || line[i] > '9' || (v = v * 10 + (uint64_t)(line[i] - '0')) > UINT32_MAX)
			return false;
	}
	*host_port = (uint32_t)v;
	return true;
}

static int send_connect(int ufd, uint32_t port)
{
	char cmd[32];
	int n = snprintf(cmd, sizeof(cmd), "CONNECT %u\n", port);

	return send_all(ufd, cmd, (size_t)n);
}

/* The VMM's answer to CONNECT: 0 (with the host port), EINTR (nothing
 * read yet), or the errno TCP's connect would give. */
static int await_ok(int ufd, uint32_t cid, uint32_t port, long long deadline,
		    uint32_t *host_port, bool interruptible)
{
	char line[OK_LINE_MAX + 1], shown[3 * 24 + 8];
	size_t got = 0;
	int err = read_answer(ufd, deadline, line, &got, interruptible);

	if (err == ETIMEDOUT) {
		vsk_log(VSK_LOG_INFO, "hybrid vsock: no answer from the VMM for CID %u port %u",
			cid, port);
		return ETIMEDOUT;
	}
	if (err == ECONNRESET) {
		vsk_log(VSK_LOG_INFO, "hybrid vsock: the VMM closed the connection to CID %u "
			"port %u without OK (nothing listens there?)", cid, port);
		return ECONNREFUSED;
	}
	if (err == E2BIG) {
		vsk_log(VSK_LOG_WARN, "hybrid vsock: the VMM's answer for CID %u port %u is "
			"longer than %d bytes", cid, port, OK_LINE_MAX);
		return ECONNREFUSED;
	}
	if (err)
		return err;
	line[got] = '\0';
	if (!parse_ok(line, got, host_port)) {
		size_t o = 0;
		for (size_t i = 0; i < got && i < 24; i++)
			o += (size_t)snprintf(shown + o, sizeof(shown) - o,
					      line[i] >= 0x20 && line[i] < 0x7f ? "%c" : "\\x%02x",
					      (unsigned char)line[i]);
		vsk_log(VSK_LOG_WARN, "hybrid vsock: the VMM answered \"%s\" for CID %u port %u, "
			"not OK", shown, cid, port);
		return ECONNREFUSED;
	}
	return 0;
}

int vsk_hybrid_connect(struct vsk_swap *sw, int h, uint32_t port, const struct sockaddr *sa,
		       socklen_t len)
{
	uint32_t cid = rule_at(h)->cid, host_port = 0;
	/* Bounded and blocking, also for a non-blocking app (which gets 0):
	 * the VMM answers in one round trip to the guest, and doing it here
	 * means no byte of "OK" can ever reach the app.  docs/hybrid.md. */
	int timeout = sw->sndtimeo_ms >= 0 ? sw->sndtimeo_ms : HANDSHAKE_DEFAULT_MS;
	long long deadline = now_ms() + timeout;
	/* Only a blocking connect can be cut short by a signal. */
	bool interruptible = sw->status_flags >= 0 && !(sw->status_flags & O_NONBLOCK);
	unsigned state = VSK_FD_HYBRID | VSK_FD_SHOWN;
	bool sent = false;
	char buf[80];
	int ufd, err;

	ufd = vsk_swap_new_unix_socket(sw, &err);
	if (ufd < 0)
		return vsk_fail(err);
	name_client(ufd, cid, port, sw->fam);
	err = dial_vmm(ufd, path_of(h), cid, timeout, interruptible);
	if (!err && !(err = send_connect(ufd, port))) {
		sent = true;
		err = await_ok(ufd, cid, port, deadline, &host_port, interruptible);
	}
	if (err == EINTR && sent) {
		/* CONNECT is sent: like TCP, return EINTR now and go on in the
		 * background; the answer is read when the app asks
		 * (vsk_hybrid_finish). */
		state |= VSK_FD_CONNECTING;
		sw->shown.vm_cid = cid;
		sw->shown.vm_port = port;
	} else if (err) {
		vsk_real.close(ufd);
		return vsk_fail(err);
	}
	/* The app's own send timeout and blocking mode from here on. */
	set_sndtimeo(ufd, sw->sndtimeo_ms > 0 ? sw->sndtimeo_ms : 0);
	if (sw->status_flags >= 0)
		vsk_real.fcntl(ufd, F_SETFL, sw->status_flags);
	if (!sw->shown.peer_len) /* a connect rule shows the app's own address */
		put_shown(sw->shown.peer, &sw->shown.peer_len, sw->fam, cid, port);
	put_shown(sw->shown.local, &sw->shown.local_len, sw->fam, VSK_CID_HOST,
		  vsk_fold_port(host_port));
	if ((err = vsk_swap_install(sw, ufd, state)))
		return vsk_fail(err);
	if (state & VSK_FD_CONNECTING) {
		vsk_log(VSK_LOG_INFO, "fd %d: connect %s -> hybrid vsock CID %u port %u: "
			"interrupted by a signal, going on", sw->fd,
			vsk_addr_str(sa, len, buf, sizeof(buf)), cid, port);
		return vsk_fail(EINTR);
	}
	vsk_log(VSK_LOG_DEBUG, "fd %d: connect %s -> hybrid vsock CID %u port %u via %s", sw->fd,
		vsk_addr_str(sa, len, buf, sizeof(buf)), cid, port, path_of(h));
	return 0;
}

int vsk_hybrid_finish(int fd, bool wait, bool interruptible)
{
	struct vsk_shown s;
	struct sockaddr_storage local;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct timeval tv = { 0 };
	socklen_t tl = sizeof(tv);
	long long gen = vsk_fd_gen(fd);
	uint32_t host_port = 0;
	int timeout = HANDSHAKE_DEFAULT_MS, err;

	if (!vsk_fd_get_shown(fd, &s))
		return EBADF;
	if (!wait && poll(&p, 1, 0) == 0)
		return EALREADY;
	if (vsk_real.getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &tl) == 0 &&
	    (tv.tv_sec || tv.tv_usec))
		timeout = (int)(tv.tv_sec * 1000 + tv.tv_usec / 1000);
	err = await_ok(fd, s.vm_cid, s.vm_port, now_ms() + timeout, &host_port, interruptible);
	if (err == EINTR)
		return EINTR;
	if (!err) {
		socklen_t n = vsk_encode_sockaddr(&vsk_cfg->net, vsk_fd_family(vsk_fd_lookup(fd)),
						  VSK_CID_HOST, vsk_fold_port(host_port), &local);
		vsk_fd_set_shown(fd, false, (struct sockaddr *)&local, n);
	}
	vsk_fd_update_if(fd, gen, err ? VSK_FD_DEAD : 0, VSK_FD_CONNECTING);
	return err;
}

/* ---- listeners ------------------------------------------------------------- */

/* Is a socket in this network namespace bound to path?  /proc/net/unix
 * lists every bound one, listening or not yet: a server between its bind
 * and its listen refuses connections, but is no crashed server's file.
 * -1 if the list cannot be read. */
static int bound_in_this_netns(const char *path)
{
	FILE *f = fopen("/proc/net/unix", "re");
	char line[512];
	size_t plen = strlen(path);
	int found = 0;

	if (!f)
		return -1;
	while (!found && fgets(line, sizeof(line), f)) {
		/* "Num RefCount Protocol Flags Type St Inode Path" */
		char *p = line;
		for (int field = 0; field < 7 && p; field++) {
			p += strspn(p, " ");
			p = strchr(p, ' ');
		}
		if (!p)
			continue;
		p += strspn(p, " ");
		found = !strncmp(p, path, plen) && (p[plen] == '\n' || !p[plen]);
	}
	fclose(f);
	return found;
}

/* A socket file at path that nobody has bound (a crashed server's) may be
 * replaced; a live one, or anything that is not a socket, may not. */
static bool stale_socket(const char *path)
{
	struct sockaddr_un un;
	socklen_t len = unix_addr(&un, path);
	struct stat st;
	int probe, err;

	if (lstat(path, &st) != 0)
		return errno == ENOENT;
	if (!S_ISSOCK(st.st_mode) || bound_in_this_netns(path) == 1)
		return false;
	/* Another namespace's listener still answers. */
	probe = vsk_real.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (probe < 0)
		return false;
	err = vsk_real.connect(probe, (struct sockaddr *)&un, len) == 0 ? 0 : errno;
	vsk_real.close(probe);
	/* Asked again: a bind that was creating the file as we first looked
	 * is listed by now. */
	return err == ECONNREFUSED && bound_in_this_netns(path) != 1;
}

/* Two servers that find one stale file must not both replace it (the
 * second would unlink the first one's fresh socket): binds take turns on
 * an advisory lock of the directory, which makes no file of its own.
 * Returns the fd to close, or -1 (unlocked: a directory we cannot read). */
static int lock_directory_of(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *slash = strrchr(path, '/');
	int dfd;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	while (flock(dfd, LOCK_EX) != 0 && errno == EINTR)
		;
	return dfd;
}

/* Every bind holds the lock, so a bind that is creating its file (which
 * the kernel lists in /proc/net/unix a moment later) is never taken for a
 * stale one. */
static int bind_path(int ufd, const char *path)
{
	struct sockaddr_un un;
	socklen_t len = unix_addr(&un, path);
	int dfd = lock_directory_of(path), err;

	err = vsk_real.bind(ufd, (struct sockaddr *)&un, len) == 0 ? 0 : errno;
	if ((err == EADDRINUSE || err == EEXIST) && stale_socket(path)) {
		unlink(path);
		err = vsk_real.bind(ufd, (struct sockaddr *)&un, len) == 0 ? 0 : errno;
	}
	if (dfd >= 0)
		vsk_real.close(dfd); /* and the lock with it */
	return err == EEXIST ? EADDRINUSE : err;
}

/* The second family of a dual-stack server shares the first's socket, as
 * for vsock listeners (share_listener in hooks_listen.c). */
static int share_hybrid(struct vsk_swap *sw, const char *path, uint32_t bound_cid, uint32_t port)
{
	int sibling = vsk_fd_find_sibling_listener(0, 0, sw->fam, path), dfd, err;
	struct vsk_shown theirs;

	if (sibling < 0 || !vsk_fd_get_shown(sibling, &theirs))
		return 1;
	if ((dfd = vsk_real.fcntl(sibling, F_DUPFD_CLOEXEC, 0)) < 0)
		return -1;
	sw->vfd_nonblock = false;
	sw->shown.vm_cid = theirs.vm_cid;
	sw->shown.vm_port = theirs.vm_port;
	sw->shown.owner_pid = theirs.owner_pid;
	if (!sw->shown.local_len)
		put_shown(sw->shown.local, &sw->shown.local_len, sw->fam, bound_cid, port);
	if ((err = vsk_swap_install(sw, dfd, VSK_FD_BOUND | VSK_FD_HYBRID | VSK_FD_SHOWN)))
		return vsk_fail(err);
	return 0;
}

int vsk_hybrid_bind(struct vsk_swap *sw, int h, uint32_t bound_cid, uint32_t port,
		    const struct sockaddr *sa, socklen_t len)
{
	const char *base = path_of(h);
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)], buf[80];
	int ufd, err = EADDRINUSE, rc;

	ufd = vsk_swap_new_unix_socket(sw, &err);
	if (ufd < 0)
		return vsk_fail(err);
	/* Port 0: the first free one from a random start in the ephemeral range. */
	for (unsigned i = 0, start = (unsigned)now_ms() * 7919u; i < 64; i++) {
		uint32_t p = port ? port : 49152 + (start + i * 104729u) % 16384;
		snprintf(path, sizeof(path), "%s_%u", base, p);
		if (port && (rc = share_hybrid(sw, path, bound_cid, port)) <= 0) {
			vsk_real.close(ufd);
			return rc;
		}
		if ((err = bind_path(ufd, path)) != EADDRINUSE || port) {
			port = p;
			break;
		}
	}
	if (err) {
		vsk_real.close(ufd);
		vsk_log(VSK_LOG_INFO, "bind %s -> hybrid vsock listener %s: %s",
			vsk_addr_str(sa, len, buf, sizeof(buf)), path, strerror(err));
		return vsk_fail(err == ENOENT ? EADDRNOTAVAIL : err);
	}
	if (sw->status_flags >= 0)
		vsk_real.fcntl(ufd, F_SETFL, sw->status_flags);
	if (!sw->shown.local_len) { /* a listen rule shows the app's own address */
		put_shown(sw->shown.local, &sw->shown.local_len, sw->fam, bound_cid, port);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)sw->shown.local;
		if (!in->sin_port) /* bound to port 0: show the one picked */
			in->sin_port = htons(vsk_fold_port(port));
	}
	sw->shown.vm_cid = rule_at(h)->cid;
	sw->shown.vm_port = port;
	sw->shown.owner_pid = (int32_t)getpid();
	if ((err = vsk_swap_install(sw, ufd, VSK_FD_BOUND | VSK_FD_HYBRID | VSK_FD_SHOWN))) {
		unlink(path);
		return vsk_fail(err);
	}
	vsk_log(VSK_LOG_DEBUG, "fd %d: bind %s -> hybrid vsock listener %s", sw->fd,
		vsk_addr_str(sa, len, buf, sizeof(buf)), path);
	return 0;
}

bool vsk_hybrid_accepted(int fd, int nfd, enum vsk_app_family fam)
{
	struct vsk_shown l, shown;

	memset(&shown, 0, sizeof(shown));
	if (!vsk_fd_get_shown(fd, &l))
		memset(&l, 0, sizeof(l));
	put_shown(shown.peer, &shown.peer_len, fam, l.vm_cid, made_up_port(nfd));
	put_shown(shown.local, &shown.local_len, fam, VSK_CID_HOST, l.vm_port);
	if (!vsk_fd_claim_shown(nfd, VSK_FD_OURS | (unsigned)fam | VSK_FD_HYBRID, &shown)) {
		vsk_real.close(nfd);
		vsk_log(VSK_LOG_ERROR, "fd %d is beyond the fds vsockify can track", nfd);
		errno = EMFILE;
		return false;
	}
	return true;
}

void vsk_hybrid_closing(int fd)
{
	struct vsk_shown s;
	struct sockaddr_un un;
	socklen_t len = sizeof(un);

	/* Only the process that made the file removes it: a forked worker
	 * closing its copy must not take the file from its parent. */
	if (!vsk_fd_get_shown(fd, &s) || s.owner_pid != (int32_t)getpid() ||
	    vsk_real.getsockname(fd, (struct sockaddr *)&un, &len) != 0 ||
	    un.sun_family != AF_UNIX || !un.sun_path[0] ||
	    vsk_fd_other_hybrid_listener(fd, un.sun_path))
		return;
	unlink(un.sun_path);
}

/* ---- after an exec ------------------------------------------------------- */

static enum vsk_app_family default_family(uint32_t cid)
{
	return vsk_cid_fits4(&vsk_cfg->net, cid) ? VSK_APP_INET4 : VSK_APP_INET6;
}

static bool adopt_client(int fd, const char *name)
{
	unsigned cid, port;
	int fam;
	struct vsk_shown shown;

	if (sscanf(name, CLIENT_TAG "%u/%u/%d/", &cid, &port, &fam) != 3 ||
	    fam < VSK_APP_INET4 || fam > VSK_APP_MAPPED)
		return false;
	memset(&shown, 0, sizeof(shown));
	put_shown(shown.peer, &shown.peer_len, (enum vsk_app_family)fam, cid, port);
	put_shown(shown.local, &shown.local_len, (enum vsk_app_family)fam, VSK_CID_HOST,
		  made_up_port(fd));
	return vsk_fd_claim_shown(fd, VSK_FD_OURS | (unsigned)fam | VSK_FD_HYBRID, &shown);
}

/* "<path>_<port>" of a hybrid rule: a listener, or a connection from it. */
static bool adopt_server(int fd, const char *name)
{
	const struct vsk_rules *rs = vsk_rules();
	const char *us = strrchr(name, '_');
	struct vsk_shown shown;
	unsigned long port;
	char *end;
	int listening = 0;
	socklen_t llen = sizeof(listening);

	if (!us || !us[1])
		return false;
	port = strtoul(us + 1, &end, 10);
	if (*end || port > UINT32_MAX)
		return false;
	for (uint32_t i = 0; i < rs->n; i++) {
		const struct vsk_rule *r = &rs->rule[i];
		enum vsk_app_family fam = default_family(r->cid);
		if (r->kind != VSK_RULE_HYBRID || r->name_len != (size_t)(us - name) ||
		    strncmp(vsk_rule_path(rs, r), name, r->name_len) != 0)
			continue;
		memset(&shown, 0, sizeof(shown));
		shown.vm_cid = r->cid;
		shown.vm_port = (uint32_t)port;
		vsk_real.getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &llen);
		if (listening) {
			put_shown(shown.local, &shown.local_len, fam, r->cid, (uint32_t)port);
			return vsk_fd_claim_shown(fd, VSK_FD_OURS | (unsigned)fam | VSK_FD_HYBRID |
							      VSK_FD_BOUND,
						  &shown);
		}
		put_shown(shown.peer, &shown.peer_len, fam, r->cid, made_up_port(fd));
		put_shown(shown.local, &shown.local_len, fam, VSK_CID_HOST, (uint32_t)port);
		return vsk_fd_claim_shown(fd, VSK_FD_OURS | (unsigned)fam | VSK_FD_HYBRID, &shown);
	}
	return false;
}

bool vsk_hybrid_adopt(int fd)
{
	struct sockaddr_un un;
	socklen_t len = sizeof(un);

	if (vsk_cfg->supervised || !vsk_rules()->n_hybrid ||
	    vsk_real.getsockname(fd, (struct sockaddr *)&un, &len) != 0 ||
	    un.sun_family != AF_UNIX || len <= offsetof(struct sockaddr_un, sun_path) + 1 ||
	    len > sizeof(un))
		return false;
	((char *)&un)[len < sizeof(un) ? len : sizeof(un) - 1] = '\0';
	if (!un.sun_path[0])
		return adopt_client(fd, un.sun_path + 1);
	return adopt_server(fd, un.sun_path);
}
