/* The supervisor's answers to trapped socket calls (docs/supervisor.md).
 *
 * Each call first decides "is this ours?" from the pure core (vsk_route,
 * the kernel mark); anything else is answered CONTINUE, so the kernel runs
 * the call exactly as the program made it.  For ours, the supervisor does
 * the work on its own copy of the program's socket (pidfd_getfd: one open
 * file, so flags, readiness and errors are shared) and replies with the
 * result.  It keeps no table: the mark on each vsock socket says what it
 * is, so state survives fork, exec and restarts of the same call. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/seccomp.h>
#include <sys/socket.h> /* before linux/vm_sockets.h: older kernel headers need it */
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "supervisor.h"
#include "super_dns.h"

/* Linux 6.6; Debian 12's headers predate it. */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

static int listener;
static const struct vsk_config *cfg;
static const struct vsk_rules *rules;
static struct seccomp_notif_sizes sizes;

/* ---- logging ------------------------------------------------------------- */

static enum vsk_log_level log_level;

void vsk_super_log_init(const struct vsk_config *c)
{
	log_level = c->log_level;
	cfg = c;
}

void vsk_super_log(enum vsk_log_level level, const char *fmt, ...)
{
	int saved = errno, fd = STDERR_FILENO, n;
	char line[512];
	va_list ap;

	if (level > log_level || level == VSK_LOG_OFF)
		return;
	n = snprintf(line, sizeof(line), "vsockify[%ld]: supervisor: ", (long)getpid());
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (cfg && cfg->log_file[0])
		fd = open(cfg->log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY |
						 O_NOFOLLOW | O_NONBLOCK, 0600);
	if (fd >= 0) {
		(void)!write(fd, line, (size_t)n);
		if (fd != STDERR_FILENO)
			close(fd);
	}
	errno = saved;
}

/* ---- one trapped call ------------------------------------------------------ */

struct call {
	struct seccomp_notif n;
	int pidfd; /* the calling process, opened when first needed */
	bool pidfd_kept; /* pidfd belongs to the pidfd cache, not to the call */
};

static void call_done(struct call *c)
{
	if (c->pidfd >= 0 && !c->pidfd_kept)
		close(c->pidfd);
	c->pidfd = -1;
	c->pidfd_kept = false;
}

static bool still_waiting(const struct call *c)
{
	__u64 id = c->n.id;

	return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

static bool reply(struct call *c, long long val, int err, unsigned flags)
{
	struct seccomp_notif_resp r = { .id = c->n.id, .val = val, .error = err ? -err : 0,
					.flags = flags };

	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &r) == 0)
		return true;
	/* ENOENT: the caller went away (a signal, its death). */
	if (errno != ENOENT)
		vsk_super_log(VSK_LOG_ERROR, "cannot answer a trapped call: %s", strerror(errno));
	return false;
}

/* ---- statistics: what trapped, and how much of it was ours --------------------- */

enum call_kind { K_CONNECT, K_BIND, K_LISTEN, K_ACCEPT, K_NAME, K_SOCKOPT, K_SHUTDOWN,
		 K_OTHER, K_KINDS };
static const char *const kind_names[K_KINDS] = { "connect", "bind", "listen", "accept",
						 "name", "sockopt", "shutdown", "other" };
static unsigned long trapped[K_KINDS], passed[K_KINDS];

static enum call_kind kind_of(long nr)
{
	switch (nr) {
	case __NR_connect: return K_CONNECT;
	case __NR_bind: return K_BIND;
	case __NR_listen: return K_LISTEN;
#ifdef __NR_accept
	case __NR_accept:
#endif
	case __NR_accept4: return K_ACCEPT;
	case __NR_getsockname:
	case __NR_getpeername: return K_NAME;
	case __NR_getsockopt:
	case __NR_setsockopt: return K_SOCKOPT;
	case __NR_shutdown: return K_SHUTDOWN;
	default: return K_OTHER;
	}
}

/* One line at the end, for `make bench` (notifications per connection)
 * and for anyone asking what the supervisor cost a program. */
static void log_statistics(void)
{
	unsigned long total = 0, ours = 0;
	char line[400];
	int n = 0;

	for (int k = 0; k < K_KINDS; k++) {
		unsigned long t = __atomic_load_n(&trapped[k], __ATOMIC_RELAXED);
		total += t;
		ours += t - __atomic_load_n(&passed[k], __ATOMIC_RELAXED);
		n += snprintf(line + n, sizeof(line) - (size_t)n, " %s=%lu", kind_names[k], t);
	}
	vsk_super_log(VSK_LOG_INFO, "notifications: total=%lu ours=%lu%s", total, ours, line);
}

static void pass(struct call *c)
{
	__atomic_fetch_add(&passed[kind_of((long)c->n.data.nr)], 1, __ATOMIC_RELAXED);
	(void)reply(c, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE);
}

/* false: the program did not get it */
static bool answered(struct call *c, int err)
{
	return reply(c, err ? -1 : 0, err, 0);
}

static void answer(struct call *c, int err)
{
	(void)answered(c, err);
}

/* The tgid of a thread, from /proc (notif.pid is a thread id). */
static pid_t tgid_of(pid_t tid)
{
	char path[64], buf[512];
	pid_t tgid = -1;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)tid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		char *t;
		buf[n] = '\0';
		if ((t = strstr(buf, "\nTgid:")))
			tgid = (pid_t)strtol(t + 6, NULL, 10);
	}
	return tgid;
}

/* pidfds of the processes whose main thread called lately, kept open:
 * opening and closing one per call, and the ID_VALID check a fresh one
 * needs, were three of a swapped connect's two dozen syscalls.  A kept
 * pidfd is always the process it was opened for; once that process has
 * exited, pidfd_getfd fails (ESRCH) and the slot is opened again.  The
 * main thread alone uses it. */
#define PIDFD_CACHE 16
static struct {
	pid_t pid;
	int pidfd_1; /* the pidfd + 1; 0: empty */
} pidfds[PIDFD_CACHE];
static unsigned pidfd_next;

static int kept_pidfd(pid_t pid)
{
	for (int i = 0; i < PIDFD_CACHE; i++)
		if (pidfds[i].pidfd_1 && pidfds[i].pid == pid)
			return pidfds[i].pidfd_1 - 1;
	return -1;
}

static void forget_pidfd(int pidfd)
{
	for (int i = 0; i < PIDFD_CACHE; i++) {
		if (pidfds[i].pidfd_1 == pidfd + 1) {
			close(pidfd);
			pidfds[i].pidfd_1 = 0;
		}
	}
}

static void keep_pidfd(struct call *c)
{
	unsigned slot = pidfd_next++ % PIDFD_CACHE;

	if (pidfds[slot].pidfd_1)
		close(pidfds[slot].pidfd_1 - 1);
	pidfds[slot].pid = (pid_t)c->n.pid;
	pidfds[slot].pidfd_1 = c->pidfd + 1;
	c->pidfd_kept = true;
}

/* A fresh pidfd for the caller's process.  Only one opened from the
 * caller's own id (a main thread: the id is the process's) is kept. */
static int open_pidfd(struct call *c)
{
	c->pidfd = (int)syscall(SYS_pidfd_open, c->n.pid, 0);
	if (c->pidfd >= 0) {
		keep_pidfd(c);
	} else if (errno == EINVAL || errno == ENOENT) {
		/* Not the leader: EINVAL until Linux 6.9, ENOENT since. */
		pid_t tgid = tgid_of((pid_t)c->n.pid);
		if (tgid > 0)
			c->pidfd = (int)syscall(SYS_pidfd_open, tgid, 0);
	}
	return c->pidfd;
}

/* Our copy of the caller's fd, or -1.  A fresh pidfd is checked after the
 * copy: while the call is still waiting, its thread (and so the pid we
 * mapped) is the same one that made it.  A kept one needs no check: its
 * process was alive from before this call was received until the copy,
 * so the caller's id was that process's all along. */
static int grab_fd(struct call *c, int fd)
{
	int copy;

	if (fd < 0)
		return -1;
	if (c->pidfd < 0 && (c->pidfd = kept_pidfd((pid_t)c->n.pid)) >= 0) {
		copy = (int)syscall(SYS_pidfd_getfd, c->pidfd, fd, 0);
		if (copy >= 0 || errno != ESRCH) {
			c->pidfd_kept = true;
			return copy;
		}
		forget_pidfd(c->pidfd); /* that process has gone: this caller is another */
		c->pidfd = -1;
	}
	if (c->pidfd < 0 && open_pidfd(c) < 0)
		return -1;
	copy = (int)syscall(SYS_pidfd_getfd, c->pidfd, fd, 0);
	if (copy >= 0 && !still_waiting(c)) {
		close(copy);
		return -1;
	}
	return copy;
}

static int mem_io(const struct call *c, uint64_t addr, void *buf, size_t n, bool write)
{
	struct iovec local = { buf, n }, remote = { (void *)(uintptr_t)addr, n };
	ssize_t r;

	if (!n)
		return 0;
	r = write ? process_vm_writev((pid_t)c->n.pid, &local, 1, &remote, 1, 0)
		  : process_vm_readv((pid_t)c->n.pid, &local, 1, &remote, 1, 0);
	if (r < 0 && errno == ENOSYS) { /* some kernels lack these: /proc/PID/mem */
		char path[64];
		int fd;
		snprintf(path, sizeof(path), "/proc/%ld/mem", (long)c->n.pid);
		if ((fd = open(path, (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC)) < 0)
			return -1;
		r = write ? pwrite(fd, buf, n, (off_t)addr) : pread(fd, buf, n, (off_t)addr);
		close(fd);
	}
	return r == (ssize_t)n ? 0 : -1;
}

static int mem_read(const struct call *c, uint64_t addr, void *buf, size_t n)
{
	return mem_io(c, addr, buf, n, false);
}

static int mem_write(const struct call *c, uint64_t addr, const void *buf, size_t n)
{
	return mem_io(c, addr, (void *)buf, n, true);
}

/* /proc/TID/fdinfo of the threads that called lately, kept open: a path
 * walk through /proc per swap cost as much as the rest of the swap.  Safe
 * against reuse of a thread id: the directory belongs to the task, so
 * once that task is gone it answers nothing, and is opened again by
 * number.  The main thread alone uses it. */
#define FDINFO_CACHE 32
static struct {
	pid_t tid;
	int dirfd_1; /* the directory's fd + 1; 0: empty */
} fdinfo_dirs[FDINFO_CACHE];
static unsigned fdinfo_next;

static int fdinfo_open(pid_t tid, int fd)
{
	char name[16], path[64];
	int slot = -1, f;

	snprintf(name, sizeof(name), "%d", fd);
	for (int i = 0; i < FDINFO_CACHE && slot < 0; i++) {
		if (fdinfo_dirs[i].dirfd_1 && fdinfo_dirs[i].tid == tid) {
			f = openat(fdinfo_dirs[i].dirfd_1 - 1, name, O_RDONLY | O_CLOEXEC);
			if (f >= 0)
				return f;
			slot = i; /* gone, or a new task with the same id */
		}
	}
	if (slot < 0)
		slot = (int)(fdinfo_next++ % FDINFO_CACHE);
	if (fdinfo_dirs[slot].dirfd_1)
		close(fdinfo_dirs[slot].dirfd_1 - 1);
	fdinfo_dirs[slot].dirfd_1 = 0;
	snprintf(path, sizeof(path), "/proc/%ld/fdinfo", (long)tid);
	if ((f = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	fdinfo_dirs[slot] = (typeof(fdinfo_dirs[slot])){ .tid = tid, .dirfd_1 = f + 1 };
	return openat(f, name, O_RDONLY | O_CLOEXEC);
}

/* The fdinfo files themselves, by thread and fd number, kept open too:
 * the kernel looks the number up afresh at each read, so the next socket
 * on that number reads right, and a read fails once the fd is closed or
 * the task is gone (the file is then opened again).  One pread replaces
 * openat, read and close.  A kept file holds no reference to the
 * program's socket, only to the task's id.  The main thread alone uses
 * it. */
#define FDINFO_FILES 32
static struct {
	pid_t tid;
	int fd;
	int file_1; /* the file's fd + 1; 0: empty */
} fdinfo_files[FDINFO_FILES];
static unsigned fdinfo_files_next;

static ssize_t fdinfo_read(pid_t tid, int fd, char *buf, size_t n)
{
	int slot = -1, f;
	ssize_t r;

	for (int i = 0; i < FDINFO_FILES; i++) {
		if (fdinfo_files[i].file_1 && fdinfo_files[i].tid == tid &&
		    fdinfo_files[i].fd == fd) {
			if ((r = pread(fdinfo_files[i].file_1 - 1, buf, n, 0)) > 0)
				return r;
			slot = i;
			break;
		}
	}
	if ((f = fdinfo_open(tid, fd)) < 0)
		return -1;
	if ((r = pread(f, buf, n, 0)) <= 0) {
		close(f);
		return -1;
	}
	if (slot < 0)
		slot = (int)(fdinfo_files_next++ % FDINFO_FILES);
	if (fdinfo_files[slot].file_1)
		close(fdinfo_files[slot].file_1 - 1);
	fdinfo_files[slot] = (typeof(fdinfo_files[slot])){ .tid = tid, .fd = fd, .file_1 = f + 1 };
	return r;
}

/* The caller's fd's flags as fdinfo shows them: the open file's status
 * flags (F_GETFL's), and O_CLOEXEC if the fd is close-on-exec (our copy
 * has its own fd flags).  -1 if unreadable. */
static long fd_flags(const struct call *c, int fd)
{
	char buf[256];
	ssize_t n = fdinfo_read((pid_t)c->n.pid, fd, buf, sizeof(buf) - 1);

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	const char *flags = strstr(buf, "flags:");
	return flags ? (long)strtoul(flags + 6, NULL, 8) : -1;
}

static bool fd_cloexec(const struct call *c, int fd)
{
	long fl = fd_flags(c, fd);

	return fl >= 0 && (fl & O_CLOEXEC);
}

static int sock_int(int fd, int level, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);

	return getsockopt(fd, level, opt, &v, &len) == 0 ? v : -1;
}

/* The app family our mark records on a vsock socket, or 0 (not vsock, or
 * native vsock). */
static uint64_t raw_mark(int fd)
{
	unsigned long long mark = 0;
	socklen_t len = sizeof(mark);

	if (getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &mark, &len) != 0 ||
	    len != sizeof(mark) || (mark & VSK_MARK_MASK) != VSK_MARK_MAGIC)
		return 0;
	return mark;
}

static enum vsk_app_family marked(int fd, int *rule)
{
	uint64_t mark = raw_mark(fd);

	*rule = -1;
	return mark ? vsk_mark_decode(mark, rule, NULL) : 0;
}

/* A listener's shutdown is kept in its mark, as the library keeps it, so
 * every process sharing it (and the library, in a mixed tree) sees it. */
static bool shut_down(int fd)
{
	return raw_mark(fd) & VSK_MARK_SHUT;
}

static void set_mark_bit(int fd, uint64_t bit, bool on)
{
	uint64_t m = raw_mark(fd);
	unsigned long long v = on ? m | bit : m & ~bit;

	if (m && v != m)
		setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &v, sizeof(v));
}

/* The answer to a connect on the swapped socket fd.  One the program
 * never got (a signal took its thread away after the swap) is noted on
 * the socket, so that TCP's restart, or the program's next call, says
 * EINPROGRESS or the error, where vsock would say EALREADY (on_connect). */
static void answer_connect(struct call *c, int fd, int err)
{
	if (!answered(c, err))
		set_mark_bit(fd, VSK_MARK_UNANSWERED, true);
}

static void mark(int fd, enum vsk_app_family fam, int rule)
{
	unsigned long long m = vsk_mark_encode((unsigned)fam, rule);

	setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &m, sizeof(m));
}

static uint32_t this_cid(void)
{
	static uint32_t cid; /* + 1; 0 not asked yet (a race asks twice: harmless) */
	unsigned int v = VSK_CID_ANY;
	int fd;

	if (cid)
		return cid - 1;
	if ((fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC)) >= 0) {
		if (ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &v) != 0)
			v = VSK_CID_ANY;
		close(fd);
	}
	if (v == VSK_CID_ANY)
		v = VSK_CID_LOCAL;
	cid = v + 1;
	return v;
}

/* Put the app's address of a call (args[i], length args[i+1]) in ss. */
static bool read_addr(const struct call *c, int i, struct sockaddr_storage *ss, socklen_t *len)
{
	uint64_t n = c->n.data.args[i + 1];

	if (n < sizeof(sa_family_t) || n > sizeof(*ss))
		return false; /* the kernel's answer (EINVAL) is the right one */
	memset(ss, 0, sizeof(*ss));
	*len = (socklen_t)n;
	return mem_read(c, c->n.data.args[i], ss, (size_t)n) == 0;
}

/* Write addr to the app as the kernel would: at most *lenp bytes of it,
 * then its full length in *lenp.  0 or EFAULT/EINVAL. */
static int give_addr(const struct call *c, uint64_t uaddr, uint64_t ulen,
		     const struct sockaddr_storage *addr, socklen_t full)
{
	int have;
	size_t n;

	if (mem_read(c, ulen, &have, sizeof(have)) != 0)
		return EFAULT;
	if (have < 0)
		return EINVAL;
	n = (size_t)have < full ? (size_t)have : full;
	if (n && !uaddr)
		return EFAULT;
	/* Both in one call, address first: a fault there stops the call
	 * before the length is written, as the kernel's copy does. */
	struct iovec local[2] = { { (void *)addr, n }, { &full, sizeof(full) } };
	struct iovec remote[2] = { { (void *)(uintptr_t)uaddr, n },
				   { (void *)(uintptr_t)ulen, sizeof(full) } };
	ssize_t r = process_vm_writev((pid_t)c->n.pid, local + !n, 2 - !n, remote + !n, 2 - !n, 0);
	if (r < 0 && errno == ENOSYS) { /* mem_write's /proc/PID/mem */
		if (n && mem_write(c, uaddr, addr, n) != 0)
			return EFAULT;
		return mem_write(c, ulen, &full, sizeof(full)) == 0 ? 0 : EFAULT;
	}
	return r == (ssize_t)(n + sizeof(full)) ? 0 : EFAULT;
}

static bool blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && !(fl & O_NONBLOCK);
}

/* ---- workers: calls that wait ------------------------------------------------ */

/* A blocking connect or accept runs on a worker thread, so one program
 * thread's wait never stalls another's calls.  Workers are kept for the
 * next job (a thread per job cost a fifth of a connection's time); a job
 * that finds no idle worker gets a new one, so waits never queue behind
 * each other. */
struct job {
	struct call c;
	int fd; /* our copy */
	struct sockaddr_vm vm;
	enum vsk_app_family fam;
	int rule;
	void (*run)(struct job *);
	struct job *next;
};

#define MAX_IDLE_WORKERS 8

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job *head, **tail;
	unsigned queued, idle;
} pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, &pool.head, 0, 0 };

static void job_finish(struct job *j)
{
	close(j->fd);
	call_done(&j->c);
	free(j);
}

static void *worker_main(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&pool.lock);
	for (;;) {
		struct job *j;
		while (!pool.head) {
			if (pool.idle >= MAX_IDLE_WORKERS) {
				pthread_mutex_unlock(&pool.lock);
				return NULL;
			}
			pool.idle++;
			pthread_cond_wait(&pool.wake, &pool.lock);
			pool.idle--;
		}
		j = pool.head;
		if (!(pool.head = j->next))
			pool.tail = &pool.head;
		pool.queued--;
		pthread_mutex_unlock(&pool.lock);
		j->run(j);
		job_finish(j);
		pthread_mutex_lock(&pool.lock);
	}
}

static bool new_worker(void)
{
	pthread_attr_t a;
	pthread_t t;
	bool ok;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 64 * 1024);
	ok = pthread_create(&t, &a, worker_main, NULL) == 0;
	pthread_attr_destroy(&a);
	return ok;
}

/* Take a job back out of the queue; false if a worker has it already. */
static bool unqueue(struct job *j)
{
	bool found = false;

	pthread_mutex_lock(&pool.lock);
	for (struct job **p = &pool.head; *p; p = &(*p)->next) {
		if (*p == j) {
			if (!(*p = j->next))
				pool.tail = p;
			pool.queued--;
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&pool.lock);
	return found;
}

static void start_job(struct call *c, int fd, void (*run)(struct job *), const struct job *tmpl)
{
	struct job *j = malloc(sizeof(*j));
	bool spawn;

	if (!j) {
		answer(c, ENOMEM);
		close(fd);
		return;
	}
	*j = *tmpl;
	j->c = *c;
	if (c->pidfd_kept) /* the cache's: a job needs none */
		j->c.pidfd = -1, j->c.pidfd_kept = false;
	c->pidfd = -1; /* the job owns it now */
	j->fd = fd;
	j->run = run;
	j->next = NULL;
	pthread_mutex_lock(&pool.lock);
	*pool.tail = j;
	pool.tail = &j->next;
	spawn = ++pool.queued > pool.idle;
	if (!spawn)
		pthread_cond_signal(&pool.wake);
	pthread_mutex_unlock(&pool.lock);
	if (spawn && !new_worker() && unqueue(j)) {
		answer(&j->c, EAGAIN);
		job_finish(j);
	}
}

/* ---- connect --------------------------------------------------------------- */

static int vsock_connect(int fd, const struct sockaddr_vm *vm)
{
	return connect(fd, (const struct sockaddr *)vm, sizeof(*vm)) == 0
		       ? 0
		       : vsk_map_connect_errno(errno);
}

static void connect_job(struct job *j)
{
	int err = vsock_connect(j->fd, &j->vm);

	/* Connected meanwhile (see on_connect): TCP's says 0. */
	if (err == EISCONN)
		err = 0;
	answer_connect(&j->c, j->fd, err);
}

/* A blocking connect the loop waits for, rather than a worker: the
 * connection is started here and its result answered when the socket
 * polls ready, with no thread hand-off on the way (a connection's
 * largest cost under the supervisor). */
struct waiting_connect {
	struct call c;
	int fd; /* our copy of the swapped-in vsock socket */
};
static struct waiting_connect *waiting;
static size_t n_waiting, waiting_cap;
/* The loop's poll set: the listener, the signalfd, then waiting[]. */
static struct pollfd *loop_fds;

static bool grow_waiting(void)
{
	size_t cap = waiting_cap ? 2 * waiting_cap : 16;
	struct waiting_connect *w = realloc(waiting, cap * sizeof(*w));
	struct pollfd *p;

	if (!w)
		return false;
	waiting = w;
	if (!(p = realloc(loop_fds, (2 + cap) * sizeof(*p))))
		return false;
	loop_fds = p;
	waiting_cap = cap;
	return true;
}

static ino_t ino_of(int fd);

/* A connect waiting in the loop on the same socket as fd: its caller has
 * left (this is its restart, or the program's next call), so it is
 * dropped and the new call answered in its place.  true if there was one. */
static bool take_waiting(int fd)
{
	ino_t ino = ino_of(fd);

	for (size_t i = 0; i < n_waiting; i++) {
		if (ino_of(waiting[i].fd) == ino) {
			close(waiting[i].fd);
			waiting[i] = waiting[--n_waiting];
			return true;
		}
	}
	return false;
}

static void connect_in_loop(struct call *c, int vfd, int fl, const struct sockaddr_vm *vm)
{
	/* vfd was made non-blocking (swap_in); the app's thread is in this
	 * very call, so that moment cannot be seen by it. */
	int r, err;

	r = connect(vfd, (const struct sockaddr *)vm, sizeof(*vm));
	err = errno;
	fcntl(vfd, F_SETFL, fl);
	if (r == 0 || err != EINPROGRESS) {
		answer_connect(c, vfd, r == 0 ? 0 : vsk_map_connect_errno(err));
		close(vfd);
		return;
	}
	if (n_waiting == waiting_cap && !grow_waiting()) { /* a worker waits instead */
		struct job j = { .vm = *vm };
		return start_job(c, vfd, connect_job, &j);
	}
	call_done(c);
	waiting[n_waiting++] = (struct waiting_connect){ .c = *c, .fd = vfd };
}

/* Answer the waiting connects whose sockets polled ready (ready[i] for
 * waiting[i]); with check_gone, also let go of those whose caller left
 * (a signal, its exit): the connection goes on for the program's socket,
 * as TCP's does after an interrupted connect. */
static void finish_connects(const struct pollfd *ready, bool check_gone)
{
	size_t kept = 0;

	for (size_t i = 0; i < n_waiting; i++) {
		struct waiting_connect *w = &waiting[i];
		if (ready[i].revents) {
			int err = 0;
			socklen_t len = sizeof(err);
			/* SO_ERROR is read only for a caller still there: it
			 * clears the error, which is the program's to read
			 * after an interrupted connect. */
			if ((ready[i].revents & (POLLERR | POLLHUP)) && still_waiting(&w->c) &&
			    getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
				err = errno;
			answer_connect(&w->c, w->fd, err ? vsk_map_connect_errno(err) : 0);
			close(w->fd);
		} else if (check_gone && !still_waiting(&w->c)) {
			set_mark_bit(w->fd, VSK_MARK_UNANSWERED, true);
			close(w->fd);
		} else {
			waiting[kept++] = *w;
		}
	}
	n_waiting = kept;
}

/* TCP's blocking connect waits about 127 s (SYN retries) or SO_SNDTIMEO;
 * vsock gives up after 2 s unless told. */
static void carry_timeouts(int from, int to)
{
	struct timeval tv, tcp_like = { .tv_sec = 127 };
	socklen_t len = sizeof(tv);
	bool snd = false;

	if (getsockopt(from, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) == 0 && (tv.tv_sec || tv.tv_usec)) {
		setsockopt(to, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(to, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv));
		snd = true;
	}
	len = sizeof(tv);
	if (getsockopt(from, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0 && (tv.tv_sec || tv.tv_usec))
		setsockopt(to, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!snd)
		setsockopt(to, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tcp_like,
			   sizeof(tcp_like));
	if (sock_int(from, SOL_SOCKET, SO_KEEPALIVE) == 1)
		setsockopt(to, SOL_SOCKET, SO_KEEPALIVE, &(int){ 1 }, sizeof(int));
}

/* A fresh marked vsock socket put on the app's number in place of copy
 * (the app's TCP socket; fdflags: fd_flags() of its fd).  The socket is
 * non-blocking until connect_in_loop() gives it the app's flags.  Returns
 * our copy of it, or -1 with *err. */
static int swap_in(struct call *c, int app_fd, int copy, long fdflags,
		   enum vsk_app_family fam, int rule, int *err)
{
	int vfd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct seccomp_notif_addfd add = { .id = c->n.id, .flags = SECCOMP_ADDFD_FLAG_SETFD,
					   .srcfd = 0, .newfd = (__u32)app_fd };

	if (vfd < 0) {
		*err = vsk_map_connect_errno(errno);
		vsk_super_log(VSK_LOG_ERROR, "cannot create an AF_VSOCK socket: %s",
			      strerror(errno));
		return -1;
	}
	carry_timeouts(copy, vfd);
	mark(vfd, fam, rule);
	add.srcfd = (__u32)vfd;
	add.newfd_flags = fdflags & O_CLOEXEC ? O_CLOEXEC : 0;
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0) {
		*err = errno; /* ENOENT: the caller went away before the swap */
		close(vfd);
		return -1;
	}
	return vfd;
}

static const char *addr_str(const struct sockaddr *sa, char *buf, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(buf, n, "%s:%u", ip, ntohs(in->sin_port));
	} else {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, n, "[%s]:%u", ip, ntohs(in6->sin6_port));
	}
	return buf;
}

/* A TCP stream's protocol: TCP, or MPTCP (Go makes its listeners MPTCP
 * by default since Go 1.24; the library swaps both, vsk_swap_check). */
static bool tcp_protocol(int fd)
{
	int proto = sock_int(fd, SOL_SOCKET, SO_PROTOCOL);

	return proto == IPPROTO_TCP || proto == IPPROTO_MPTCP;
}

/* Is fd a TCP socket that has never connected or listened (a bound one
 * counts), the only kind a connect may swap?  One TCP_INFO answers what
 * four calls did (MPTCP answers it from its first subflow); *tcp says
 * whether it is TCP at all. */
static bool fresh_tcp(int fd, bool *tcp)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	*tcp = getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && len >= 1 &&
	       tcp_protocol(fd);
	return *tcp && ti.tcpi_state == TCP_CLOSE;
}

/* Go's resolver connects a UDP socket to its nameserver: it is given one
 * connected to our responder instead (super_dns.c), already "connected",
 * so the call is answered 0.  false: leave the call alone. */
static bool dns_swap(struct call *c, int fd, const struct sockaddr_storage *ns, socklen_t len)
{
	int copy, dfd;
	struct seccomp_notif_addfd add = { .id = c->n.id, .flags = SECCOMP_ADDFD_FLAG_SETFD,
					   .newfd = (__u32)fd };

	if ((copy = grab_fd(c, fd)) < 0)
		return false;
	if (sock_int(copy, SOL_SOCKET, SO_TYPE) != SOCK_DGRAM ||
	    sock_int(copy, SOL_SOCKET, SO_DOMAIN) != ns->ss_family) {
		close(copy);
		return false;
	}
	close(copy);
	if (!vsk_super_dns_wanted((pid_t)c->n.pid, c->n.data.instruction_pointer, ns, len))
		return false;
	if ((dfd = vsk_super_dns_socket(ns, len)) < 0)
		return false;
	add.srcfd = (__u32)dfd;
	add.newfd_flags = fd_cloexec(c, fd) ? O_CLOEXEC : 0;
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add) >= 0) /* the fd number */
		answer(c, 0);
	close(dfd);
	return true;
}

/* A connect on a socket whose earlier connect the program never heard the
 * end of: answered as TCP answers its restart, from the socket's state
 * (its error, connected: 0, still connecting: EINPROGRESS, or, blocking,
 * the wait), not vsock's EISCONN/EALREADY. */
static void answer_restart(struct call *c, int copy, struct job *j)
{
	int err = 0;
	socklen_t len = sizeof(err);
	struct sockaddr_vm peer;
	socklen_t plen = sizeof(peer);

	set_mark_bit(copy, VSK_MARK_UNANSWERED, false);
	if (getsockopt(copy, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
		err = vsk_map_connect_errno(err);
	else if (getpeername(copy, (struct sockaddr *)&peer, &plen) == 0)
		err = 0;
	else if (blocking(copy)) {
		return start_job(c, copy, connect_job, j);
	} else
		err = EINPROGRESS;
	answer_connect(c, copy, err);
	close(copy);
}

static void on_connect(struct call *c)
{
	int fd = (int)c->n.data.args[0], copy, vfd, rule, err, existing_rule, fl;
	bool tcp;
	struct sockaddr_storage ss;
	struct vsk_target t;
	socklen_t len;
	enum vsk_route route;
	struct job j = { 0 };
	char buf[80];

	if (!read_addr(c, 1, &ss, &len) || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
		return pass(c);
	route = vsk_route(&cfg->net, rules, (struct sockaddr *)&ss, len, VSK_RULE_CONNECT, &t,
			  &rule);
	if (route == VSK_ROUTE_NOT_OURS) {
		if (((struct sockaddr_in *)&ss)->sin_port == htons(53) && dns_swap(c, fd, &ss, len))
			return;
		return pass(c);
	}
	if ((copy = grab_fd(c, fd)) < 0)
		return pass(c); /* EBADF, or gone: the kernel says */
	existing_rule = -1;
	if (!fresh_tcp(copy, &tcp)) {
		if (tcp) { /* connecting, connected or listening: the kernel says */
			close(copy);
			return pass(c);
		}
		if (sock_int(copy, SOL_SOCKET, SO_DOMAIN) == AF_VSOCK) {
			/* A socket we swapped before: the connect restarted after
			 * a signal, or a second connect; vsock's answers
			 * (EALREADY, EISCONN) are TCP's.  Native vsock: the kernel
			 * refuses the inet address itself. */
			enum vsk_app_family fam = marked(copy, &existing_rule);
			if (!fam || route != VSK_ROUTE_VSOCK) {
				close(copy);
				return pass(c);
			}
			j.vm = (struct sockaddr_vm){ .svm_family = AF_VSOCK,
						     .svm_cid = vsk_connect_cid(t.cid),
						     .svm_port = t.port };
			uint64_t m = raw_mark(copy);
			struct sockaddr_vm peer;
			socklen_t plen = sizeof(peer);
			if ((m & VSK_MARK_UNANSWERED) || take_waiting(copy))
				return answer_restart(c, copy, &j);
			if (getpeername(copy, (struct sockaddr *)&peer, &plen) == 0) {
				/* TCP's first connect to see it connected says 0,
				 * later ones EISCONN.  Which one this is cannot be
				 * known: the kernel restarts a call whose answer
				 * was sent if a signal came first.  0 never fails
				 * a program; EISCONN on a restart would. */
				answer_connect(c, copy, 0);
				close(copy);
				return;
			}
			if (blocking(copy))
				return start_job(c, copy, connect_job, &j);
			answer_connect(c, copy, vsock_connect(copy, &j.vm));
			close(copy);
			return;
		}
		/* UDP to a fake: vsock has no datagrams here (the library's
		 * answer too); a rule never takes UDP. */
		int type = sock_int(copy, SOL_SOCKET, SO_TYPE);
		close(copy);
		if (rule < 0 && type == SOCK_DGRAM && route != VSK_ROUTE_NOT_OURS)
			return answer(c, EPROTOTYPE);
		return pass(c);
	}
	if (route == VSK_ROUTE_INVALID) {
		close(copy);
		vsk_super_log(VSK_LOG_WARN, "connect %s: address names no vsock CID",
			      addr_str((struct sockaddr *)&ss, buf, sizeof(buf)));
		return answer(c, EHOSTUNREACH);
	}
	if (route == VSK_ROUTE_UNKNOWN) {
		close(copy);
		return answer(c, rules->unreadable);
	}
	if (t.family == VSK_APP_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&ss)->sin6_addr))
		t.family = VSK_APP_MAPPED;
	if (rule >= 0)
		t.family = ss.ss_family == AF_INET ? VSK_APP_INET4
			   : IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&ss)->sin6_addr)
				   ? VSK_APP_MAPPED
				   : VSK_APP_INET6;
	/* one fdinfo read: F_GETFL's flags, and whether the fd is close-on-exec */
	long fdflags = fd_flags(c, fd);
	fl = fdflags >= 0 ? (int)(fdflags & ~(long)O_CLOEXEC) : fcntl(copy, F_GETFL);
	vfd = swap_in(c, fd, copy, fdflags, t.family, rule, &err);
	if (vfd < 0) {
		close(copy);
		if (err != ENOENT)
			answer(c, err);
		return;
	}
	j.vm = (struct sockaddr_vm){ .svm_family = AF_VSOCK, .svm_cid = vsk_connect_cid(t.cid),
				     .svm_port = t.port };
	if (log_level >= VSK_LOG_DEBUG)
		vsk_super_log(VSK_LOG_DEBUG, "pid %u fd %d: connect %s -> vsock:%u:%u", c->n.pid,
			      fd, addr_str((struct sockaddr *)&ss, buf, sizeof(buf)),
			      j.vm.svm_cid, j.vm.svm_port);
	close(copy);
	if (fl >= 0 && !(fl & O_NONBLOCK))
		return connect_in_loop(c, vfd, fl, &j.vm);
	if (fl < 0)
		fcntl(vfd, F_SETFL, fcntl(vfd, F_GETFL) & ~O_NONBLOCK); /* as the app's, blocking */
	answer_connect(c, vfd, vsock_connect(vfd, &j.vm));
	close(vfd);
}

/* ---- bind and listen ------------------------------------------------------------ */

/* Port 0: the first free port from a random start in TCP's ephemeral
 * range, as the library's vsk_bind_free_port (swap.c).  vsock's own pick
 * is a random 32-bit port, which getsockname could show only folded. */
static int bind_free_port(int vfd, uint32_t cid)
{
	enum { FIRST = 32768, LAST = 60999 };
	unsigned span = LAST - FIRST + 1, start;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	start = (unsigned)(ts.tv_nsec ^ (getpid() << 8)) % span;
	for (unsigned i = 0; i < span; i++) {
		struct sockaddr_vm vm = { .svm_family = AF_VSOCK, .svm_cid = cid,
					  .svm_port = FIRST + (start + i) % span };
		if (bind(vfd, (struct sockaddr *)&vm, sizeof(vm)) == 0)
			return 0;
		if (errno != EADDRINUSE)
			return -1;
	}
	errno = EADDRINUSE;
	return -1;
}

/* copy is one of ours, bound where t asks and not listening: a bind that
 * a signal cut short after the swap, made again (SA_RESTART, or the app
 * retrying its EINTR).  Its first answer never arrived, so this one is 0. */
static bool bound_there(int copy, const struct vsk_target *t)
{
	struct sockaddr_vm vm;
	socklen_t len = sizeof(vm);
	int rule;

	if (sock_int(copy, SOL_SOCKET, SO_DOMAIN) != AF_VSOCK || !marked(copy, &rule) ||
	    sock_int(copy, SOL_SOCKET, SO_ACCEPTCONN) == 1 ||
	    getsockname(copy, (struct sockaddr *)&vm, &len) != 0 || vm.svm_cid != t->cid)
		return false;
	return t->port ? vm.svm_port == t->port : vm.svm_port != VMADDR_PORT_ANY;
}

static void on_bind(struct call *c)
{
	int fd = (int)c->n.data.args[0], copy, vfd, rule, err;
	struct sockaddr_storage ss, here;
	socklen_t len, hlen = sizeof(here);
	struct vsk_target t;
	struct sockaddr_vm vm;
	enum vsk_route route;
	char buf[80];

	if (!read_addr(c, 1, &ss, &len) || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
		return pass(c);
	route = vsk_route(&cfg->net, rules, (struct sockaddr *)&ss, len, VSK_RULE_LISTEN, &t,
			  &rule);
	if (route == VSK_ROUTE_NOT_OURS || (copy = grab_fd(c, fd)) < 0)
		return pass(c);
	if (route == VSK_ROUTE_VSOCK && bound_there(copy, &t)) {
		close(copy);
		return answer(c, 0);
	}
	if (sock_int(copy, SOL_SOCKET, SO_DOMAIN) != ss.ss_family ||
	    sock_int(copy, SOL_SOCKET, SO_TYPE) != SOCK_STREAM ||
	    !tcp_protocol(copy) ||
	    getsockname(copy, (struct sockaddr *)&here, &hlen) != 0 ||
	    ((struct sockaddr_in *)&here)->sin_port != 0) {
		/* Not a fresh TCP socket of that family (bound already: EINVAL),
		 * or UDP: the kernel answers, as for any real address. */
		int type = sock_int(copy, SOL_SOCKET, SO_TYPE);
		close(copy);
		if (rule < 0 && type == SOCK_DGRAM)
			return answer(c, EPROTOTYPE);
		return pass(c);
	}
	if (route != VSK_ROUTE_VSOCK) {
		close(copy);
		return answer(c, route == VSK_ROUTE_UNKNOWN ? rules->unreadable : EADDRNOTAVAIL);
	}
	if (ss.ss_family == AF_INET6 && t.family == VSK_APP_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&ss)->sin6_addr))
		t.family = VSK_APP_MAPPED;
	if (rule >= 0)
		t.family = ss.ss_family == AF_INET ? VSK_APP_INET4 : VSK_APP_INET6;
	/* Bound before it is put in place: a failed bind leaves the app's
	 * socket as it was, as TCP's does. */
	{
		int fl = fcntl(copy, F_GETFL);
		vfd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC |
					       (fl >= 0 && (fl & O_NONBLOCK) ? SOCK_NONBLOCK : 0), 0);
	}
	if (vfd < 0) {
		close(copy);
		return answer(c, vsk_map_connect_errno(errno));
	}
	vm = (struct sockaddr_vm){ .svm_family = AF_VSOCK, .svm_cid = t.cid,
				   .svm_port = t.port ? t.port : VMADDR_PORT_ANY };
	if ((t.port ? bind(vfd, (struct sockaddr *)&vm, sizeof(vm)) : bind_free_port(vfd, t.cid)) != 0) {
		err = errno == ENETUNREACH || errno == EADDRNOTAVAIL ? EADDRNOTAVAIL
									: vsk_map_connect_errno(errno);
		close(vfd);
		close(copy);
		vsk_super_log(VSK_LOG_INFO, "bind %s -> vsock:%u:%u: %s",
			      addr_str((struct sockaddr *)&ss, buf, sizeof(buf)), vm.svm_cid,
			      vm.svm_port, strerror(err));
		return answer(c, err);
	}
	carry_timeouts(copy, vfd);
	mark(vfd, t.family, rule);
	{
		struct seccomp_notif_addfd add = { .id = c->n.id, .flags = SECCOMP_ADDFD_FLAG_SETFD,
						   .srcfd = (__u32)vfd, .newfd = (__u32)fd,
						   .newfd_flags = fd_cloexec(c, fd) ? O_CLOEXEC : 0 };
		err = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0 ? errno : 0;
	}
	close(vfd);
	close(copy);
	if (err == ENOENT)
		return;
	vsk_super_log(VSK_LOG_DEBUG, "pid %u fd %d: bind %s -> vsock:%u:%u", c->n.pid, fd,
		      addr_str((struct sockaddr *)&ss, buf, sizeof(buf)), vm.svm_cid, vm.svm_port);
	answer(c, err);
}

/* A full accept queue makes TCP's client wait and retry, vsock's fail at
 * once: ours get the deepest queue the system allows (somaxconn). */
static void on_listen(struct call *c)
{
	int copy = grab_fd(c, (int)c->n.data.args[0]), rule;

	if (copy < 0)
		return pass(c);
	if (!marked(copy, &rule)) {
		close(copy);
		return pass(c);
	}
	answer(c, listen(copy, INT_MAX) == 0 ? 0 : errno);
	close(copy);
}

/* ---- accept ----------------------------------------------------------------- */

/* Connections a blocking accept took for a caller that had gone (a signal)
 * wait here for the next accept on the same listener. */
struct stashed {
	ino_t listener_ino;
	int fd;
	struct sockaddr_vm peer;
	struct stashed *next;
};
static struct stashed *stash;
static pthread_mutex_t stash_lock = PTHREAD_MUTEX_INITIALIZER;

static ino_t ino_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

static int unstash(ino_t ino, struct sockaddr_vm *peer)
{
	int fd = -1;

	pthread_mutex_lock(&stash_lock);
	for (struct stashed **p = &stash; *p; p = &(*p)->next) {
		if ((*p)->listener_ino == ino) {
			struct stashed *s = *p;
			*p = s->next;
			fd = s->fd;
			*peer = s->peer;
			free(s);
			break;
		}
	}
	pthread_mutex_unlock(&stash_lock);
	return fd;
}

static void keep(ino_t ino, int fd, const struct sockaddr_vm *peer)
{
	struct stashed *s = malloc(sizeof(*s));

	if (!s) {
		close(fd);
		return;
	}
	*s = (struct stashed){ ino, fd, *peer, NULL };
	pthread_mutex_lock(&stash_lock);
	s->next = stash;
	stash = s;
	pthread_mutex_unlock(&stash_lock);
}

/* Hand an accepted connection to the caller: its address shown as TCP's,
 * then the fd installed and the call answered in one step. */
static void deliver(struct call *c, int lfd, int nfd, const struct sockaddr_vm *peer,
		    enum vsk_app_family fam)
{
	int flags = (int)c->n.data.args[3];
	struct sockaddr_storage shown;
	socklen_t n = vsk_shown_addr(&cfg->net, fam, peer, true, NULL, 0, VSK_CID_ANY, &shown);
	struct seccomp_notif_addfd add = { .id = c->n.id, .flags = SECCOMP_ADDFD_FLAG_SEND,
					   .srcfd = (__u32)nfd,
					   .newfd_flags = (flags & SOCK_CLOEXEC) ? O_CLOEXEC : 0 };
	/* accept with a NULL address writes nothing, not even the length. */
	int err = c->n.data.args[1] ? give_addr(c, c->n.data.args[1], c->n.data.args[2], &shown, n) : 0;

	mark(nfd, fam, -1);
	if (err) { /* the kernel loses the connection too */
		close(nfd);
		return answer(c, err);
	}
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0) {
		if (errno == ENOENT) { /* gone meanwhile: the next accept gets it */
			keep(ino_of(lfd), nfd, peer);
			return;
		}
		answer(c, errno);
	}
	close(nfd);
}

static int take(int lfd, struct sockaddr_vm *peer, int flags)
{
	socklen_t len = sizeof(*peer);
	int nfd = unstash(ino_of(lfd), peer);

	if (nfd >= 0) {
		if (flags & SOCK_NONBLOCK)
			fcntl(nfd, F_SETFL, fcntl(nfd, F_GETFL) | O_NONBLOCK);
		return nfd;
	}
	return accept4(lfd, (struct sockaddr *)peer, &len,
		       SOCK_CLOEXEC | (flags & SOCK_NONBLOCK));
}

static void accept_job(struct job *j)
{
	int flags = (int)j->c.n.data.args[3], nfd;
	struct sockaddr_vm peer;

	/* Wait here rather than in accept: a caller that leaves (a signal,
	 * its exit, its close of the listener) is noticed within 100 ms and
	 * our copy of the listener let go. */
	for (;;) {
		struct pollfd p = { j->fd, POLLIN, 0 };
		int r = poll(&p, 1, 100);
		if (!still_waiting(&j->c))
			return;
		if (shut_down(j->fd))
			return answer(&j->c, EINVAL);
		if (r > 0)
			break;
	}
	nfd = take(j->fd, &peer, flags);
	if (nfd < 0)
		return answer(&j->c, errno);
	deliver(&j->c, j->fd, nfd, &peer, j->fam);
}

static void on_accept(struct call *c, bool is_accept4)
{
	int copy, rule, flags = is_accept4 ? (int)c->n.data.args[3] : 0, nfd;
	enum vsk_app_family fam;
	struct sockaddr_vm peer;
	struct job j = { 0 };

	if ((copy = grab_fd(c, (int)c->n.data.args[0])) < 0)
		return pass(c);
	if (!(fam = marked(copy, &rule)) || (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))) {
		close(copy);
		return pass(c); /* not ours, or bad flags: the kernel's EINVAL */
	}
	c->n.data.args[3] = (__u64)flags;
	if (shut_down(copy)) {
		close(copy);
		return answer(c, EINVAL);
	}
	if (blocking(copy)) {
		j.fam = fam;
		return start_job(c, copy, accept_job, &j);
	}
	nfd = take(copy, &peer, flags);
	if (nfd < 0)
		answer(c, errno);
	else
		deliver(c, copy, nfd, &peer, fam);
	close(copy);
}

/* ---- shutdown of a listener ----------------------------------------------------- */

/* TCP's shutdown(SHUT_RD or SHUT_RDWR) of a listener stops it: blocked and
 * later accepts fail with EINVAL; SHUT_WR does nothing.  vsock refuses a
 * listener's (ENOTCONN), so the shut goes into the mark, where every
 * accept looks (a blocked one within its 100 ms wait), in any process. */
/* A shut TCP listener polls readable (and its accepts fail), which is
 * how an event loop learns of it.  A connection of our own, queued and
 * never taken, makes the vsock listener readable too. */
static void make_readable(int lfd)
{
	struct sockaddr_vm vm;
	socklen_t len = sizeof(vm);
	int s;

	if (getsockname(lfd, (struct sockaddr *)&vm, &len) != 0 || vm.svm_family != AF_VSOCK)
		return;
	if (vm.svm_cid == VSK_CID_ANY)
		vm.svm_cid = VSK_CID_LOCAL;
	if ((s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return;
	if (connect(s, (struct sockaddr *)&vm, sizeof(vm)) != 0)
		vsk_super_log(VSK_LOG_WARN, "shutdown of a listener: cannot make it readable "
			      "over vsock loopback (vsock:%u:%u): %s; load vsock_loopback",
			      vm.svm_cid, vm.svm_port, strerror(errno));
	close(s);
}

static void on_shutdown(struct call *c)
{
	int how = (int)c->n.data.args[1], copy;
	uint64_t m;

	if ((how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) ||
	    (copy = grab_fd(c, (int)c->n.data.args[0])) < 0)
		return pass(c);
	if (!(m = raw_mark(copy))) {
		close(copy);
		return pass(c);
	}
	if (m & VSK_MARK_SHUT) { /* TCP: the socket is closed now */
		close(copy);
		return answer(c, ENOTCONN);
	}
	if (sock_int(copy, SOL_SOCKET, SO_ACCEPTCONN) != 1) {
		close(copy); /* a connection, or bound only: vsock's answer is TCP's */
		return pass(c);
	}
	if (how != SHUT_WR) {
		unsigned long long shut = m | VSK_MARK_SHUT;
		setsockopt(copy, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &shut, sizeof(shut));
		vsk_super_log(VSK_LOG_DEBUG, "pid %u fd %d: listener shut down", c->n.pid,
			      (int)c->n.data.args[0]);
		make_readable(copy);
	}
	close(copy);
	answer(c, 0);
}

/* ---- names and SO_ERROR ---------------------------------------------------------- */

static void on_name(struct call *c, bool peer)
{
	int copy = grab_fd(c, (int)c->n.data.args[0]), rule, err;
	struct sockaddr_vm vm, other;
	socklen_t vlen = sizeof(vm), olen = sizeof(other), n = 0;
	struct sockaddr_storage shown;
	enum vsk_app_family fam;
	bool rule_peer = false;

	if (copy < 0)
		return pass(c);
	if (!(fam = marked(copy, &rule))) {
		close(copy);
		return pass(c);
	}
	if ((peer ? getpeername : getsockname)(copy, (struct sockaddr *)&vm, &vlen) != 0) {
		err = errno;
		close(copy);
		return answer(c, err);
	}
	if (rule >= 0)
		n = vsk_rule_shown_side(rules, rule, fam, &vm, &rule_peer, &shown);
	if (!n || rule_peer != peer) {
		uint32_t local = VSK_CID_ANY;
		if (!peer && vm.svm_cid == VSK_CID_ANY &&
		    getpeername(copy, (struct sockaddr *)&other, &olen) == 0)
			local = vsk_shown_local_cid(other.svm_cid, this_cid);
		n = vsk_shown_addr(&cfg->net, fam, &vm, peer, NULL, 0, local, &shown);
	}
	close(copy);
	answer(c, give_addr(c, c->n.data.args[1], c->n.data.args[2], &shown, n));
}

/* getsockopt(SOL_SOCKET, SO_ERROR / SO_DOMAIN / SO_PROTOCOL /
 * SO_ACCEPTCONN) on one of ours: a connect's error as TCP's, the family
 * and protocol of the TCP socket the program believes it has (Python's
 * socket(fileno=) asks), and a listener's state after its shutdown. */
static void on_sockopt(struct call *c)
{
	int fd = (int)c->n.data.args[0], opt = (int)c->n.data.args[2], copy, rule, v;
	socklen_t have, len = sizeof(v);
	enum vsk_app_family fam;

	if (fd == -1 && opt == SO_ERROR && !c->n.data.args[3] && !c->n.data.args[4])
		return answer(c, VSK_SUPERVISED_ERRNO); /* the library's probe */
	if ((copy = grab_fd(c, fd)) < 0)
		return pass(c);
	if (!(fam = marked(copy, &rule)) || !c->n.data.args[4] ||
	    mem_read(c, c->n.data.args[4], &have, sizeof(have)) != 0 || (int)have < (int)sizeof(v)) {
		close(copy);
		return pass(c); /* the kernel's own answer, EFAULT and EINVAL included */
	}
	if (opt == SO_DOMAIN) {
		v = fam == VSK_APP_INET4 ? AF_INET : AF_INET6;
	} else if (opt == SO_ACCEPTCONN) { /* a shut listener is TCP_CLOSE */
		v = shut_down(copy) ? 0 : sock_int(copy, SOL_SOCKET, SO_ACCEPTCONN);
	} else if (opt == SO_PROTOCOL) {
		v = IPPROTO_TCP;
	} else if (getsockopt(copy, SOL_SOCKET, SO_ERROR, &v, &len) != 0) {
		v = errno;
		close(copy);
		return answer(c, v);
	} else {
		v = v ? vsk_map_connect_errno(v) : 0;
	}
	close(copy);
	answer(c, mem_write(c, c->n.data.args[3], &v, sizeof(v)) == 0 &&
			      mem_write(c, c->n.data.args[4], &len, sizeof(len)) == 0
		      ? 0
		      : EFAULT);
}

/* TCP, IP and IPv6 options on one of ours: vsock refuses them, a TCP
 * program expects them to work.  The core's table (the library's) checks
 * and normalises the options programs use; any other is tried on a
 * throwaway TCP socket, so it fails exactly when TCP's would.  Nothing is
 * remembered: reading an option back gives Linux's default. */
static void on_protocol_opt(struct call *c, bool set)
{
	int fd = (int)c->n.data.args[0], level = (int)c->n.data.args[1];
	int opt = (int)c->n.data.args[2], copy, rule, v, rc, t;
	uint64_t uval = c->n.data.args[3], ulen = c->n.data.args[4];
	unsigned char val[256];
	enum vsk_app_family fam;
	socklen_t len;
	bool inet6;

	if ((copy = grab_fd(c, fd)) < 0)
		return pass(c);
	fam = marked(copy, &rule);
	close(copy);
	if (!fam)
		return pass(c);
	inet6 = fam != VSK_APP_INET4;
	if (set) {
		len = (socklen_t)ulen;
		if ((int)len < 0)
			return answer(c, EINVAL);
		if (len > sizeof(val))
			len = sizeof(val); /* every TCP/IP option fits; the rest is ignored */
		if (len && (!uval || mem_read(c, uval, val, len) != 0))
			return answer(c, EFAULT);
		if ((rc = vsk_tcpopt_set(level, opt, inet6, val, len, &v)) >= 0)
			return answer(c, rc);
		t = socket(inet6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		rc = t < 0 ? errno : setsockopt(t, level, opt, val, len) == 0 ? 0 : errno;
		if (t >= 0)
			close(t);
		return answer(c, rc);
	}
	int have;
	if (!ulen || mem_read(c, ulen, &have, sizeof(have)) != 0)
		return answer(c, EFAULT);
	if (have < 0)
		return answer(c, EINVAL);
	if ((rc = vsk_tcpopt_default(level, opt, inet6, &v)) > 0)
		return answer(c, rc);
	if (rc == 0) {
		memcpy(val, &v, sizeof(v));
		len = sizeof(v);
	} else {
		len = sizeof(val);
		t = socket(inet6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		rc = t < 0 ? errno : getsockopt(t, level, opt, val, &len) == 0 ? 0 : errno;
		if (t >= 0)
			close(t);
		if (rc)
			return answer(c, rc);
	}
	if ((socklen_t)have < len)
		len = (socklen_t)have;
	answer(c, (len && (!uval || mem_write(c, uval, val, len) != 0)) ||
			      mem_write(c, ulen, &len, sizeof(len)) != 0
		      ? EFAULT
		      : 0);
}

/* ---- the loop ------------------------------------------------------------------- */

static void dispatch(struct call *c)
{
	long nr = c->n.data.nr;

	__atomic_fetch_add(&trapped[kind_of(nr)], 1, __ATOMIC_RELAXED);
	if (!c->n.pid) /* a process outside our PID namespace: cannot reach it */
		return pass(c);
	if (nr == __NR_connect)
		on_connect(c);
	else if (nr == __NR_bind)
		on_bind(c);
	else if (nr == __NR_listen)
		on_listen(c);
	else if (nr == __NR_accept4)
		on_accept(c, true);
#ifdef __NR_accept
	else if (nr == __NR_accept)
		on_accept(c, false);
#endif
	else if (nr == __NR_getsockname)
		on_name(c, false);
	else if (nr == __NR_getpeername)
		on_name(c, true);
	else if (nr == __NR_getsockopt && c->n.data.args[1] == SOL_SOCKET)
		on_sockopt(c);
	else if (nr == __NR_getsockopt)
		on_protocol_opt(c, false);
	else if (nr == __NR_setsockopt)
		on_protocol_opt(c, true);
	else if (nr == __NR_shutdown)
		on_shutdown(c);
	else
		pass(c);
	call_done(c);
}

/* Once the program vsockify waited for has exited, what is left is
 * daemons: the caller's stderr (a pipe, a terminal) is let go, and log
 * lines go only to VSOCKIFY_LOG_FILE. */
static void let_go_of_stderr(void)
{
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

	if (null >= 0) {
		dup2(null, STDERR_FILENO);
		close(null);
	}
}

static void reap(pid_t child, int *status_fd)
{
	int st;
	pid_t p;

	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (p == child && *status_fd >= 0) {
			(void)!write(*status_fd, &st, sizeof(st));
			close(*status_fd);
			*status_fd = -1;
			let_go_of_stderr();
		}
	}
}

void vsk_super_serve_tree(int lfd, const struct vsk_config *c, const struct vsk_rules *rs,
			  pid_t child, int status_fd)
{
	sigset_t chld;
	struct timespec last_gone_check = { 0 };
	struct pollfd *p;
	void *buf;

	listener = lfd;
	cfg = c;
	rules = rs;
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0)
		sizes.seccomp_notif = sizeof(struct seccomp_notif);
	if (sizes.seccomp_notif < sizeof(struct seccomp_notif))
		sizes.seccomp_notif = sizeof(struct seccomp_notif);
	buf = calloc(1, sizes.seccomp_notif);
	if (!buf || !(loop_fds = calloc(2, sizeof(*loop_fds)))) {
		vsk_super_log(VSK_LOG_ERROR, "out of memory");
		return;
	}
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	loop_fds[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
	loop_fds[1] = (struct pollfd){ .fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK),
				       .events = POLLIN };
	vsk_super_dns_init(c, rs);
	/* Linux 6.6+: the trapped thread hands its CPU straight to us and back,
	 * rather than waking us wherever the scheduler likes.  Older kernels
	 * refuse the ioctl, and the wake-up stays the ordinary one. */
	bool sync_wake_up = ioctl(lfd, SECCOMP_IOCTL_NOTIF_SET_FLAGS,
				  (__u64)SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) == 0;
	vsk_super_log(VSK_LOG_DEBUG, "synchronous wake-ups (Linux 6.6): %s",
		      sync_wake_up ? "on" : "not available");
	reap(child, &status_fd);
	for (;;) {
		struct timespec now;

		p = loop_fds; /* dispatch may have moved it */
		for (size_t i = 0; i < n_waiting; i++)
			p[2 + i] = (struct pollfd){ .fd = waiting[i].fd, .events = POLLOUT };
		if (poll(p, 2 + n_waiting, n_waiting ? 100 : -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (n_waiting) { /* before dispatch adds to waiting[] */
			/* The coarse clock (a tick's resolution is plenty for
			 * 100 ms) is read from the vDSO whatever the clock
			 * source; CLOCK_MONOTONIC is a syscall where the
			 * source has no vDSO mode (HPET: the test VM's). */
			clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
			bool check = (now.tv_sec - last_gone_check.tv_sec) * 1000000000L +
					     (now.tv_nsec - last_gone_check.tv_nsec) >=
				     100000000L;
			if (check)
				last_gone_check = now;
			finish_connects(p + 2, check);
		}
		if (p[1].revents) {
			struct signalfd_siginfo si;
			while (read(p[1].fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				;
			reap(child, &status_fd);
		}
		if (p[0].revents & POLLIN) {
			struct call call = { .pidfd = -1 };
			memset(buf, 0, sizes.seccomp_notif);
			if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, buf) == 0) {
				memcpy(&call.n, buf, sizeof(call.n));
				dispatch(&call);
			}
		} else if (p[0].revents & (POLLHUP | POLLERR)) {
			break; /* the last process under the filter is going */
		}
	}
	/* POLLHUP can come while the program is still exiting. */
	if (status_fd >= 0) {
		int st;
		if (waitpid(child, &st, 0) == child)
			(void)!write(status_fd, &st, sizeof(st));
	}
	reap(child, &status_fd);
	log_statistics();
}
