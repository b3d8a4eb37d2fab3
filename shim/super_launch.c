/* Starting a program under the supervisor (docs/supervisor.md).
 *
 *   vsockify (W) --fork--> supervisor (S) --fork--> program (C)
 *
 * S must be an ancestor of every process it serves: Yama's ptrace rules
 * let only an ancestor read a process's memory.  So S is C's parent and a
 * child subreaper (a daemon's orphans stay below it), and W, which the
 * user waits for, only relays: it forwards signals to C and exits with
 * C's status, which S sends it.  S serves until the last process under the
 * filter has gone, so a daemon keeps working after W returned. */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervisor.h"

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#else
#error "the supervisor knows x86-64 and aarch64"
#endif

/* ---- what the kernel must have ------------------------------------------- */

static bool kernel_at_least(int major, int minor)
{
	struct utsname u;
	int a = 0, b = 0;

	return uname(&u) == 0 && sscanf(u.release, "%d.%d", &a, &b) == 2 &&
	       (a > major || (a == major && b >= minor));
}

const char *vsk_super_unavailable(void)
{
	struct seccomp_notif_sizes sizes;
	int pidfd, fd;
	FILE *f;
	int scope = 0;

	if (!kernel_at_least(5, 14))
		return "the supervisor needs Linux 5.14 or later (seccomp user notification with "
		       "SECCOMP_ADDFD_FLAG_SEND)";
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0)
		return "this kernel has no seccomp user notification (CONFIG_SECCOMP_FILTER)";
	pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (pidfd < 0)
		return "pidfd_open is refused here (a container's seccomp profile?)";
	fd = (int)syscall(SYS_pidfd_getfd, pidfd, 0, 0);
	close(pidfd);
	if (fd < 0 && errno != EBADF)
		return "pidfd_getfd is refused here (Docker allows it only with CAP_SYS_PTRACE)";
	if (fd >= 0)
		close(fd);
	if ((f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re"))) {
		if (fscanf(f, "%d", &scope) != 1)
			scope = 0;
		fclose(f);
	}
	if (scope >= 2)
		return "kernel.yama.ptrace_scope is 2 or more: the supervisor cannot read the "
		       "program's memory";
	return NULL;
}

/* ---- the filter ------------------------------------------------------------ */

#define LOAD(field) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, field))
#define ARG_LO(i) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[i]))
#define IS(value, yes, no) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (value), (yes), (no))
#define RET(action) BPF_STMT(BPF_RET | BPF_K, (action))

/* Only the calls a decision needs trap; the data path never does.
 * getsockopt traps only for SO_ERROR (a connect's result, errno mapped),
 * SO_DOMAIN and SO_PROTOCOL (what a socket wrapped from an fd reports),
 * SO_ACCEPTCONN (0 once a listener is shut down),
 * and both socket option calls for the TCP, IP and IPv6 levels, which
 * vsock refuses and a TCP program expects to work.  shutdown traps for
 * every socket (a call per connection at most): only a listener's needs
 * an answer, and a filter cannot tell a listener from a connection.
 * Other architectures' calls (an i386 or x32 program) pass untouched. */
static int install_filter(void)
{
	struct sock_filter f[] = {
		LOAD(arch),
		IS(NATIVE_ARCH, 1, 0),
		RET(SECCOMP_RET_ALLOW),
		LOAD(nr),
#ifdef __x86_64__
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1), /* x32 */
		RET(SECCOMP_RET_ALLOW),
#endif
		IS(__NR_shutdown, 10, 0),
		IS(__NR_connect, 9, 0),
		IS(__NR_bind, 8, 0),
		IS(__NR_listen, 7, 0),
		IS(__NR_accept4, 6, 0),
#ifdef __NR_accept
		IS(__NR_accept, 5, 0),
#else
		IS(__NR_accept4, 5, 0),
#endif
		IS(__NR_getsockname, 4, 0),
		IS(__NR_getpeername, 3, 0),
		IS(__NR_getsockopt, 3, 0),
		IS(__NR_setsockopt, 9, 0),
		RET(SECCOMP_RET_ALLOW),
		RET(SECCOMP_RET_USER_NOTIF),
		/* getsockopt: SOL_SOCKET's SO_ERROR, SO_DOMAIN, SO_PROTOCOL,
		 * SO_ACCEPTCONN, or a TCP/IP level (next) */
		ARG_LO(1),
		IS(SOL_SOCKET, 0, 5),
		ARG_LO(2),
		IS(SO_ERROR, 7, 0),
		IS(SO_DOMAIN, 6, 0),
		IS(SO_PROTOCOL, 5, 0),
		IS(SO_ACCEPTCONN, 4, 5),
		/* setsockopt, and getsockopt of another level: TCP, IP, IPv6 */
		ARG_LO(1),
		IS(IPPROTO_TCP, 2, 0),
		IS(IPPROTO_IP, 1, 0),
		IS(IPPROTO_IPV6, 0, 1),
		RET(SECCOMP_RET_USER_NOTIF),
		RET(SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			    SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
}

/* ---- handing the listener over --------------------------------------------- */

static int send_fd(int sock, int fd)
{
	char byte = 'L';
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);

	memset(&u, 0, sizeof(u));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &m, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char byte;
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c;
	int fd = -1;

	if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&m);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
	    c->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* ---- the program (C) --------------------------------------------------------- */

/* Signals S ignores so that a terminal's ^C or a group-wide SIGTERM cannot
 * take the network away from the program; C gets the dispositions W had. */
static const int shielded[] = { SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGTSTP, SIGTTIN, SIGTTOU };
#define N_SHIELDED (sizeof(shielded) / sizeof(shielded[0]))

static void __attribute__((noreturn))
run_program(const struct vsk_super_opts *o, int hand, const struct sigaction *old_act,
	    const sigset_t *old_mask)
{
	int listener;

	for (size_t i = 0; i < N_SHIELDED; i++)
		sigaction(shielded[i], &old_act[i], NULL);
	sigprocmask(SIG_SETMASK, old_mask, NULL);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		fprintf(stderr, "vsockify: cannot set no_new_privs: %s\n", strerror(errno));
		_exit(2);
	}
	if (o->preload && setenv("LD_PRELOAD", o->preload, 1) != 0) {
		fprintf(stderr, "vsockify: cannot set LD_PRELOAD: %s\n", strerror(errno));
		_exit(2);
	}
	listener = install_filter();
	if (listener < 0) {
		if (errno == EBUSY)
			fprintf(stderr, "vsockify: this process is already under a seccomp "
					"supervisor (a container runtime's, or vsockify's own): "
					"use --preload\n");
		else
			fprintf(stderr, "vsockify: cannot install the seccomp filter: %s\n",
				strerror(errno));
		_exit(2);
	}
	/* Nothing between the filter and exec may trap: sendmsg, close and
	 * execve do not. */
	if (send_fd(hand, listener) != 0)
		_exit(125);
	close(listener);
	close(hand);
	execv(o->path, o->argv);
	fprintf(stderr, "vsockify: %s: %s\n", o->path, strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

/* ---- the supervisor (S) ------------------------------------------------------ */

/* Close every fd from 3 up except a and b. */
static void close_all_but(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;

	if (lo > 3)
		syscall(SYS_close_range, 3u, (unsigned)lo - 1, 0u);
	if (hi > lo + 1)
		syscall(SYS_close_range, (unsigned)lo + 1, (unsigned)hi - 1, 0u);
	syscall(SYS_close_range, (unsigned)hi + 1, ~0u, 0u);
}

static void __attribute__((noreturn))
run_supervisor(const struct vsk_super_opts *o, int status_fd)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, old_act[N_SHIELDED];
	sigset_t chld, old_mask;
	struct vsk_rules rs = { 0 };
	int hand[2], listener;
	pid_t child;

	for (size_t i = 0; i < N_SHIELDED; i++)
		sigaction(shielded[i], &ign, &old_act[i]);
	/* Every thread of S inherits this mask; the serve loop takes SIGCHLD
	 * through a signalfd. */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old_mask);
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	vsk_config_read_rules(o->cfg, &rs, NULL, NULL); /* checked by vsockify already */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, hand) != 0) {
		fprintf(stderr, "vsockify: socketpair: %s\n", strerror(errno));
		_exit(125);
	}
	child = fork();
	if (child < 0) {
		fprintf(stderr, "vsockify: fork: %s\n", strerror(errno));
		_exit(125);
	}
	if (child == 0) {
		close(hand[0]);
		close(status_fd);
		run_program(o, hand[1], old_act, &old_mask);
	}
	close(hand[1]);
	/* S may outlive vsockify (a daemon): it must not keep open anything
	 * the caller gave it (a pipe would never see its end: `$(vsockify
	 * ...)`), only what it needs. */
	{
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			close(null);
		}
		close_all_but(hand[0], status_fd);
	}
	if (write(status_fd, &child, sizeof(child)) != (ssize_t)sizeof(child))
		_exit(125);
	listener = recv_fd(hand[0]);
	close(hand[0]);
	vsk_super_log_init(o->cfg);
	if (listener < 0) {
		/* C failed before its exec and said why; pass its status on. */
		int st = 0;
		if (waitpid(child, &st, 0) == child)
			(void)!write(status_fd, &st, sizeof(st));
		_exit(0);
	}
	vsk_super_log(VSK_LOG_DEBUG, "supervising %s (pid %ld)", o->path, (long)child);
	vsk_super_serve_tree(listener, o->cfg, &rs, child, status_fd);
	_exit(0);
}

/* ---- the wrapper (W) --------------------------------------------------------- */

static volatile pid_t program_pid;

/* A signal someone sent to vsockify goes on to the program.  One the
 * terminal sent its whole process group already reached the program. */
static void forward(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (program_pid > 0 && (si->si_code == SI_USER || si->si_code == SI_QUEUE))
		kill(program_pid, sig);
}

static bool setid_program(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID)) &&
	       (st.st_mode & 0111);
}

static int read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

int vsk_supervise(const struct vsk_super_opts *o)
{
	static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
					 SIGALRM, SIGWINCH, SIGCONT, SIGTSTP };
	struct sigaction fwd = { .sa_sigaction = forward, .sa_flags = SA_SIGINFO | SA_RESTART };
	const char *why = vsk_super_unavailable();
	int status_pipe[2], st;
	pid_t super, child;

	if (why) {
		fprintf(stderr, "vsockify: cannot supervise %s: %s\n", o->path, why);
		return 2;
	}
	if (setid_program(o->path)) {
		fprintf(stderr, "vsockify: %s is setuid or setgid, which no_new_privs would "
				"disable: not running it under the supervisor\n", o->path);
		return 2;
	}
	if (pipe2(status_pipe, O_CLOEXEC) != 0) {
		fprintf(stderr, "vsockify: pipe: %s\n", strerror(errno));
		return 125;
	}
	fflush(NULL);
	super = fork();
	if (super < 0) {
		fprintf(stderr, "vsockify: fork: %s\n", strerror(errno));
		return 125;
	}
	if (super == 0) {
		close(status_pipe[0]);
		run_supervisor(o, status_pipe[1]);
	}
	close(status_pipe[1]);
	if (read_full(status_pipe[0], &child, sizeof(child)) != 0) {
		fprintf(stderr, "vsockify: the supervisor did not start\n");
		return 125;
	}
	program_pid = child;
	sigemptyset(&fwd.sa_mask);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaction(forwarded[i], &fwd, NULL);
	if (read_full(status_pipe[0], &st, sizeof(st)) != 0) {
		fprintf(stderr, "vsockify: the supervisor died before %s exited\n", o->path);
		return 125;
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 125;
}
