/* cloneserv: a server that runs each session in a child made without fork(),
 * as vsftpd does, for tests/vm/clone.bats.  The same program runs over
 * plain TCP (the oracle) and over the shim.
 *
 *   cloneserv serve MODE HOST PORT N
 *       bind+listen on HOST:PORT (AF_INET), print "listening", and accept N
 *       connections.  Each is handled in a child made by MODE:
 *         fork      fork()
 *         clone     raw clone(SIGCHLD), no new stack: a copy, like fork
 *         clonens   raw clone(SIGCHLD|CLONE_NEWPID|CLONE_NEWNET) (vsftpd's)
 *         clone3    clone3(CLONE_NEWPID|CLONE_NEWNET, exit_signal SIGCHLD)
 *         vm        clone(CLONE_VM|CLONE_VFORK|SIGCHLD) on its own stack:
 *                   shares the parent's memory
 *       The child moves the socket to fds 0 and 1 with dup2 (closing the
 *       original fd), sends back "local NAME", "peer NAME" (getsockname/
 *       getpeername on fd 0) and "dup NAME" (getsockname on a dup of fd 0,
 *       which it closes again), then accepts one more connection on the
 *       inherited listener and sends "child-accepted local/peer NAME" on it
 *       (or "child-accept error=E" on fd 1), and exits.  The parent then
 *       prints "parent listener NAME" (and, for vm, "parent accepted NAME",
 *       the accepted socket's peer name): a child must not change them.
 *   cloneserv client HOST PORT
 *       connect, print the lines the server sends up to "dup", connect a
 *       second time and print what that one receives, then the rest of the
 *       first until EOF.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sched.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *fam_name(int fam)
{
	switch (fam) {
	case AF_INET: return "AF_INET";
	case AF_INET6: return "AF_INET6";
	case AF_VSOCK: return "AF_VSOCK";
	default: return "AF_OTHER";
	}
}

/* "family=F addr=A port=P" of fd's local or peer name. */
static void name_of(int fd, int peer, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	int r;

	memset(&ss, 0, sizeof(ss));
	r = peer ? getpeername(fd, (struct sockaddr *)&ss, &sl)
		 : getsockname(fd, (struct sockaddr *)&ss, &sl);
	if (r != 0) {
		snprintf(buf, len, "error=%s", strerrorname_np(errno));
		return;
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		port = ntohs(s4->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		port = ntohs(s6->sin6_port);
	}
	snprintf(buf, len, "family=%s addr=%s port=%u", fam_name(ss.ss_family), a, port);
}

static void send_line(int fd, const char *tag, const char *name)
{
	char line[200];
	int n = snprintf(line, sizeof(line), "%s %s\n", tag, name);

	if (write(fd, line, (size_t)n) != n)
		_exit(3);
}

struct session {
	int lfd, afd;
};

/* What vsftpd's session child does first: the socket becomes fds 0/1. */
static int session(void *arg)
{
	struct session *s = arg;
	char name[160];
	int d, a;

	if (dup2(s->afd, 0) != 0 || dup2(s->afd, 1) != 1)
		_exit(4);
	close(s->afd);
	name_of(0, 0, name, sizeof(name));
	send_line(1, "local", name);
	name_of(0, 1, name, sizeof(name));
	send_line(1, "peer", name);
	if ((d = dup(0)) < 0)
		_exit(5);
	name_of(d, 0, name, sizeof(name));
	send_line(1, "dup", name);
	close(d);
	/* The client connects again once it has read "dup". */
	if ((a = accept(s->lfd, NULL, NULL)) < 0) {
		snprintf(name, sizeof(name), "error=%s", strerrorname_np(errno));
		send_line(1, "child-accept", name);
	} else {
		name_of(a, 0, name, sizeof(name));
		send_line(a, "child-accepted local", name);
		name_of(a, 1, name, sizeof(name));
		send_line(a, "child-accepted peer", name);
		close(a);
	}
	close(s->lfd);
	_exit(0);
}

static pid_t start_session(const char *mode, struct session *s)
{
	static char stack[256 * 1024] __attribute__((aligned(16)));
	pid_t pid;

	if (!strcmp(mode, "vm"))
		return clone(session, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, s);
	if (!strcmp(mode, "fork")) {
		pid = fork();
	} else if (!strcmp(mode, "clone")) {
		pid = (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, 0);
	} else if (!strcmp(mode, "clonens")) {
		pid = (pid_t)syscall(SYS_clone, SIGCHLD | CLONE_NEWPID | CLONE_NEWNET, NULL, NULL,
				     NULL, 0);
	} else if (!strcmp(mode, "clone3")) {
		struct clone_args ca;
		memset(&ca, 0, sizeof(ca));
		ca.flags = CLONE_NEWPID | CLONE_NEWNET;
		ca.exit_signal = SIGCHLD;
		pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	} else {
		fprintf(stderr, "unknown mode %s\n", mode);
		exit(2);
	}
	if (pid == 0)
		session(s);
	return pid;
}

static struct addrinfo *resolve(const char *host, const char *port, int passive)
{
	struct addrinfo hints, *res = NULL;
	int r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	if ((r = getaddrinfo(host, port, &hints, &res)) != 0) {
		printf("FAIL getaddrinfo %s: %s\n", host, gai_strerror(r));
		exit(1);
	}
	return res;
}

static int cmd_serve(char **argv)
{
	const char *mode = argv[0];
	struct addrinfo *res = resolve(argv[1], argv[2], 1);
	int n = atoi(argv[3]), one = 1, st;
	struct session s;
	char name[160];

	s.lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(s.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s.lfd, res->ai_addr, res->ai_addrlen) != 0 || listen(s.lfd, 8) != 0) {
		printf("FAIL bind/listen: %s\n", strerrorname_np(errno));
		return 1;
	}
	freeaddrinfo(res);
	printf("listening\n");
	fflush(stdout);
	for (int i = 0; i < n; i++) {
		pid_t pid;

		if ((s.afd = accept(s.lfd, NULL, NULL)) < 0) {
			printf("FAIL accept: %s\n", strerrorname_np(errno));
			return 1;
		}
		if ((pid = start_session(mode, &s)) < 0) {
			printf("FAIL %s: %s\n", mode, strerrorname_np(errno));
			return 1;
		}
		if (!strcmp(mode, "vm")) {
			name_of(s.afd, 1, name, sizeof(name));
			printf("parent accepted %s\n", name);
		}
		close(s.afd);
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			printf("FAIL child status %d\n", st);
			return 1;
		}
		name_of(s.lfd, 0, name, sizeof(name));
		printf("parent listener %s\n", name);
		fflush(stdout);
	}
	return 0;
}

static int dial(struct addrinfo *res)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
		printf("FAIL connect: %s\n", strerrorname_np(errno));
		exit(1);
	}
	return fd;
}

/* One line, byte by byte: what follows it is read later. */
static int read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len && read(fd, buf + n, 1) == 1)
		if (buf[n++] == '\n')
			break;
	buf[n] = 0;
	return (int)n;
}

static void copy_out(int fd)
{
	char buf[512];
	ssize_t r;

	while ((r = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)r, stdout);
}

static int cmd_client(char **argv)
{
	struct addrinfo *res = resolve(argv[0], argv[1], 0);
	int first = dial(res), second;
	char line[200];

	while (read_line(first, line, sizeof(line)) > 0) {
		fputs(line, stdout);
		if (!strncmp(line, "dup ", 4))
			break;
	}
	second = dial(res);
	copy_out(second);
	copy_out(first);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "serve"))
		return cmd_serve(argv + 2);
	if (argc == 4 && !strcmp(argv[1], "client"))
		return cmd_client(argv + 2);
	fprintf(stderr, "usage: cloneserv serve MODE HOST PORT N | client HOST PORT\n");
	return 2;
}
