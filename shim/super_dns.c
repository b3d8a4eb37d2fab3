/* The supervisor's DNS responder (docs/supervisor.md, "Names").
 *
 * Go's own resolver sends each query over a UDP socket it has connected
 * to a nameserver, and checks only the reply's ID and question.  Such a
 * connect gets a socket whose other end is ours: each query is answered
 * here when it asks for one of our names (vsk_dns_respond, pure core) and
 * is otherwise sent unchanged to the nameserver the program named, whose
 * reply goes back unchanged.  One thread serves every such socket. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "super_dns.h"
#include "supervisor.h"

static const struct vsk_config *cfg;
static const struct vsk_rules *rules;
static int epfd = -1;
static pthread_once_t started = PTHREAD_ONCE_INIT;

/* One program socket: its other end and our socket to the nameserver.
 * The epoll data points at one of the two sides. */
struct pair;
struct side {
	struct pair *pair;
	bool upstream;
};
struct pair {
	int ours, up;
	struct side s_ours, s_up;
	/* The last query forwarded: a nameserver that refuses (ICMP) gets
	 * the program a SERVFAIL for it, so it moves to the next one as it
	 * would on ECONNREFUSED. */
	unsigned char last_q[512];
	size_t last_len;
	bool dead; /* closed; freed after the epoll batch that saw it */
	struct pair *next_dead;
};
static struct pair *dead_pairs;

void vsk_super_dns_init(const struct vsk_config *c, const struct vsk_rules *rs)
{
	cfg = c;
	rules = rs;
}

static void drop(struct pair *p)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, p->ours, NULL);
	close(p->ours);
	if (p->up >= 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, p->up, NULL);
		close(p->up);
	}
	p->dead = true;
	p->next_dead = dead_pairs;
	dead_pairs = p;
}

static void from_program(struct pair *p)
{
	static unsigned char q[65536], out[4096];
	size_t outlen = 0;
	ssize_t n;

	while ((n = recv(p->ours, q, sizeof(q), MSG_DONTWAIT)) > 0) {
		switch (vsk_dns_respond(&cfg->net, rules, q, (size_t)n, out, sizeof(out), &outlen)) {
		case VSK_DNS_ANSWER:
			vsk_super_log(VSK_LOG_DEBUG, "dns: answered a query for one of our names");
			send(p->ours, out, outlen, MSG_DONTWAIT | MSG_NOSIGNAL);
			break;
		case VSK_DNS_FORWARD:
			if (p->up < 0 || send(p->up, q, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
				if (vsk_dns_servfail(q, (size_t)n, out, sizeof(out), &outlen) == 0)
					send(p->ours, out, outlen, MSG_DONTWAIT | MSG_NOSIGNAL);
				break;
			}
			if ((size_t)n <= sizeof(p->last_q)) {
				memcpy(p->last_q, q, (size_t)n);
				p->last_len = (size_t)n;
			}
			break;
		default:
			break;
		}
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		drop(p); /* the program closed its socket */
}

static void from_upstream(struct pair *p)
{
	static unsigned char r[65536];
	unsigned char out[600];
	size_t outlen;
	ssize_t n;

	while ((n = recv(p->up, r, sizeof(r), MSG_DONTWAIT)) >= 0)
		send(p->ours, r, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (errno == ECONNREFUSED && p->last_len &&
	    vsk_dns_servfail(p->last_q, p->last_len, out, sizeof(out), &outlen) == 0)
		send(p->ours, out, outlen, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void *serve(void *arg)
{
	struct epoll_event ev[32];

	(void)arg;
	for (;;) {
		int n = epoll_wait(epfd, ev, 32, -1);
		for (int i = 0; i < n; i++) {
			struct side *s = ev[i].data.ptr;
			if (s->pair->dead)
				continue;
			if (s->upstream)
				from_upstream(s->pair);
			else
				from_program(s->pair);
		}
		while (dead_pairs) {
			struct pair *p = dead_pairs;
			dead_pairs = p->next_dead;
			free(p);
		}
	}
	return NULL;
}

static void start(void)
{
	pthread_t t;
	pthread_attr_t a;

	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, serve, NULL) != 0) {
		close(epfd);
		epfd = -1;
	}
	pthread_attr_destroy(&a);
}

int vsk_super_dns_socket(const struct sockaddr_storage *ns, socklen_t len)
{
	struct epoll_event e = { .events = EPOLLIN };
	struct pair *p;
	int sv[2];

	pthread_once(&started, start);
	if (epfd < 0)
		return -1;
	if (!(p = calloc(1, sizeof(*p))))
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		free(p);
		return -1;
	}
	p->ours = sv[1];
	/* A nameserver this machine cannot reach (no route: the test VM has
	 * no network card) still lets our names be answered; what would
	 * have gone to it gets SERVFAIL, and the program moves on. */
	p->up = socket(ns->ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (p->up >= 0 && connect(p->up, (const struct sockaddr *)ns, len) != 0) {
		close(p->up);
		p->up = -1;
	}
	p->s_ours = (struct side){ p, false };
	p->s_up = (struct side){ p, true };
	e.data.ptr = &p->s_up;
	if (p->up >= 0)
		epoll_ctl(epfd, EPOLL_CTL_ADD, p->up, &e);
	e.data.ptr = &p->s_ours;
	e.events = EPOLLIN | EPOLLRDHUP;
	epoll_ctl(epfd, EPOLL_CTL_ADD, p->ours, &e);
	return sv[0];
}

/* ---- whose connect is it? ----------------------------------------------- */

/* Go binaries seen, by file: classifying reads the ELF headers. */
struct seen {
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
	bool go;
};
static struct seen seen[32];
static unsigned n_seen;
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;

static long read_at(void *ctx, uint64_t off, void *buf, size_t len)
{
	return pread(*(int *)ctx, buf, len, (off_t)off);
}

static bool exe_is_go(int fd)
{
	struct stat st;
	struct vsk_prog_info info;
	bool go = false, found = false;

	if (fstat(fd, &st) != 0)
		return false;
	pthread_mutex_lock(&seen_lock);
	for (unsigned i = 0; i < n_seen && i < 32; i++)
		if (seen[i].dev == st.st_dev && seen[i].ino == st.st_ino &&
		    seen[i].mtime.tv_sec == st.st_mtim.tv_sec &&
		    seen[i].mtime.tv_nsec == st.st_mtim.tv_nsec) {
			go = seen[i].go;
			found = true;
		}
	pthread_mutex_unlock(&seen_lock);
	if (found)
		return go;
	go = vsk_classify_elf(read_at, &fd, (uint64_t)st.st_size, &info) == 0 && info.go;
	pthread_mutex_lock(&seen_lock);
	seen[n_seen++ % 32] = (struct seen){ st.st_dev, st.st_ino, st.st_mtim, go };
	pthread_mutex_unlock(&seen_lock);
	return go;
}

/* Was the call made from the program file's own code (Go's raw syscall),
 * not from a library such as libc (whose resolver checks the source of
 * each reply, which the responder cannot fake)? */
static bool called_from_exe(pid_t tid, uint64_t ip)
{
	char path[64], exe[4096], line[4600];
	ssize_t n;
	bool yes = false;
	FILE *maps;

	snprintf(path, sizeof(path), "/proc/%ld/exe", (long)tid);
	if ((n = readlink(path, exe, sizeof(exe) - 1)) <= 0)
		return false;
	exe[n] = '\0';
	snprintf(path, sizeof(path), "/proc/%ld/maps", (long)tid);
	if (!(maps = fopen(path, "re")))
		return false;
	while (fgets(line, sizeof(line), maps)) {
		unsigned long long lo, hi;
		int off = 0;
		if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %n", &lo, &hi, &off) < 2 || !off)
			continue;
		if (ip < lo || ip >= hi)
			continue;
		line[strcspn(line, "\n")] = '\0';
		yes = strcmp(line + off, exe) == 0;
		break;
	}
	fclose(maps);
	return yes;
}

bool vsk_super_dns_wanted(pid_t tid, uint64_t ip, const struct sockaddr_storage *ns,
			  socklen_t len)
{
	char path[64];
	bool go;
	int fd;

	(void)ns;
	(void)len;
	if (!called_from_exe(tid, ip))
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/exe", (long)tid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	go = exe_is_go(fd);
	close(fd);
	return go;
}
