/* Early vsock sockets: skipping the TCP socket a swap would throw away.
 *
 * A swap builds a vsock socket and dup3()s it over the app's TCP socket,
 * so each connect to vsock pays for a TCP socket that is made, closed and
 * freed unused.  Most programs connect from one call site again and again
 * (a client library's socket() call); once that site's sockets went to
 * vsock twice, its next socket() makes the AF_VSOCK socket directly, marked
 * "early".  A connect to one of our addresses then runs on it in place.
 * Anything else (a real address, bind, listen, an option vsock cannot
 * hold) first turns it back into the TCP socket the app asked for, with
 * what the app set, and tells the predictor, which then waits for two
 * more vsock connects.  docs/design.md, "Early vsock sockets". */
#include <fcntl.h>
#include <sys/socket.h> /* before linux/vm_sockets.h: older kernel headers need it */
#include <linux/vm_sockets.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "swap.h"

/* A small direct-mapped table; a collision only costs a prediction. */
#define SITES 64u
#define SITE_SCORE_MAX 3
#define SITE_SCORE_PREDICT 2

struct site {
	_Atomic uintptr_t key;
	atomic_int score;
};
static struct site sites[SITES];
static __thread unsigned last_site;
static __thread int last_fd = -1;

/* Slots are numbered from 1, so 0 means "no site". */
unsigned vsk_early_site(const void *caller, int domain)
{
	uintptr_t key = (uintptr_t)caller ^ ((uintptr_t)domain << 48);
	unsigned slot = (unsigned)(((uint64_t)key * 0x9e3779b97f4a7c15ull) >> 58);

	if (atomic_load_explicit(&sites[slot].key, memory_order_relaxed) != key) {
		/* A new site: it starts cold, and the slot's old one is forgotten. */
		atomic_store_explicit(&sites[slot].score, 0, memory_order_relaxed);
		atomic_store_explicit(&sites[slot].key, key, memory_order_relaxed);
	}
	last_site = slot + 1;
	last_fd = -1; /* until socket() returns it */
	return slot + 1;
}

void vsk_early_note_fd(int fd)
{
	last_fd = fd;
}

void vsk_early_hit_fd(int fd)
{
	if (fd == last_fd)
		vsk_early_hit(last_site);
}

void vsk_early_settle(int fd)
{
	struct vsk_fd_entry *e = vsk_fd_lookup(fd);

	int saved = errno;

	if (__builtin_expect(e != NULL, 0) && (atomic_load(&e->state) & VSK_FD_EARLY)) {
		vsk_early_to_tcp(fd, e, false, -1);
		errno = saved;
	}
}

bool vsk_early_predicted(unsigned site)
{
	return site && atomic_load_explicit(&sites[site - 1].score, memory_order_relaxed) >=
		       SITE_SCORE_PREDICT;
}

void vsk_early_hit(unsigned site)
{
	int s;

	if (!site || (s = atomic_load_explicit(&sites[site - 1].score, memory_order_relaxed)) >=
			     SITE_SCORE_MAX)
		return;
	atomic_store_explicit(&sites[site - 1].score, s + 1, memory_order_relaxed);
}

void vsk_early_miss(unsigned site)
{
	if (site)
		atomic_store_explicit(&sites[site - 1].score, 0, memory_order_relaxed);
}

int vsk_early_socket(int domain, int type, unsigned site)
{
	enum vsk_app_family fam = domain == AF_INET ? VSK_APP_INET4 : VSK_APP_INET6;
	/* TCP's blocking connect tries for about 127 s; vsock's gives up
	 * after 2 unless told otherwise (as in the swap). */
	struct timeval tcp_like = { .tv_sec = 127 };
	int saved = errno, vfd;

	vfd = vsk_real.socket(AF_VSOCK, SOCK_STREAM | (type & (SOCK_NONBLOCK | SOCK_CLOEXEC)), 0);
	if (vfd < 0) {
		errno = saved;
		return -1;
	}
	vsk_real.setsockopt(vfd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tcp_like,
			    sizeof(tcp_like));
	vsk_mark_socket(vfd, (enum vsk_app_family)(fam | VSK_MARK_EARLY), -1);
	if (!vsk_fd_claim_early(vfd, fam, site)) {
		vsk_real.close(vfd);
		errno = saved;
		return -1;
	}
	return vfd;
}

static bool has_local_port(int fd)
{
	struct sockaddr_vm vm;
	socklen_t len = sizeof(vm);

	return vsk_real.getsockname(fd, (struct sockaddr *)&vm, &len) == 0 &&
	       vm.svm_family == AF_VSOCK && vm.svm_port != VMADDR_PORT_ANY;
}

int vsk_early_to_tcp(int fd, struct vsk_fd_entry *e, bool after_failed_connect, long long gen)
{
	struct vsk_swap sw;
	unsigned touched = atomic_load_explicit(&e->touched, memory_order_relaxed);
	struct vsk_opt_slot opts[VSK_OPT_SLOTS];
	int tfd, rc, err, nopts = vsk_fd_opts_copy(fd, opts);

	if (!after_failed_connect)
		vsk_early_miss(e->early_site); /* the guess was wrong */
	if ((rc = vsk_swap_check_ours(fd, &sw)) != VSK_CHECK_OK)
		return vsk_fail(-rc);
	if (gen >= 0)
		sw.gen = gen; /* nothing may have replaced the number since then */
	if (!after_failed_connect && has_local_port(fd)) {
		/* A dup or a fork child connected it meanwhile: no longer early. */
		atomic_fetch_and(&e->state, ~VSK_FD_EARLY);
		return 0;
	}
	tfd = vsk_real.socket(sw.fam == VSK_APP_INET4 ? AF_INET : AF_INET6,
			      SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (tfd < 0) {
		err = errno;
		vsk_log(VSK_LOG_ERROR, "fd %d: its early vsock socket could not become TCP: %s%s",
			fd, strerror(err),
			err == EMFILE || err == ENFILE ? " (this needs one spare fd for a moment)"
						       : "");
		return vsk_fail(err);
	}
	if (sw.status_flags > 0 && vsk_real.fcntl(tfd, F_SETFL, sw.status_flags) != 0)
		goto fail;
	/* Only what the app set: copying a default would lock TCP's buffer
	 * autotuning, for one. */
	vsk_swap_carry_options(fd, tfd, touched);
	for (int i = 0; i < nopts; i++)
		if (vsk_real.setsockopt(tfd, opts[i].level, opts[i].optname, opts[i].value,
					opts[i].len) != 0)
			vsk_log(VSK_LOG_WARN, "fd %d: option (level %d, opt %d) could not be "
				"carried to its TCP socket: %s", fd, opts[i].level,
				opts[i].optname, strerror(errno));
	err = vsk_fd_install(tfd, fd, sw.gen, 0,
			     (sw.fd_flags > 0 && (sw.fd_flags & FD_CLOEXEC)) ? O_CLOEXEC : 0,
			     NULL, 0, NULL);
	vsk_real.close(tfd);
	if (err)
		return vsk_fail(err);
	vsk_log(VSK_LOG_DEBUG, "fd %d: early vsock socket is TCP again", fd);
	return 0;
fail:
	err = errno;
	vsk_real.close(tfd);
	return vsk_fail(err);
}
