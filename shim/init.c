/* One-time set-up: real symbols, configuration, inherited sockets. */
#include <dirent.h>
#include <dlfcn.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <link.h>
#include <stdint.h>
#include <fcntl.h>
#include <sys/socket.h> /* before linux/vm_sockets.h: older kernel headers need it */
#include <linux/vm_sockets.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "swap.h"

struct vsk_real vsk_real;
const struct vsk_config *vsk_cfg;
atomic_bool vsk_ready;

static struct vsk_config config;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* Our own object's address range, found once. */
static uintptr_t self_start, self_end;

static int find_self(struct dl_phdr_info *info, size_t size, void *base)
{
	(void)size;
	if ((void *)info->dlpi_addr != base)
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t end = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
		if (ph->p_type == PT_LOAD && end > self_end)
			self_end = end;
	}
	self_start = info->dlpi_addr;
	return 1;
}

/* dlsym(RTLD_NEXT) could hand back our own hook if we were loaded twice or
 * linked strangely; calling it would recurse forever, so refuse it. */
static void *resolve(const char *name)
{
	void *sym = dlsym(RTLD_NEXT, name);

	if (sym && (uintptr_t)sym >= self_start && (uintptr_t)sym < self_end)
		return NULL;
	return sym;
}

static void resolve_all(void)
{
	Dl_info self;

	if (dladdr((void *)vsk_init_slow, &self))
		dl_iterate_phdr(find_self, self.dli_fbase);
#define R(name) *(void **)&vsk_real.name = resolve(#name)
	R(socket); R(connect); R(bind); R(accept); R(accept4);
	R(getsockname); R(getpeername); R(getsockopt); R(setsockopt);
	R(sendto); R(sendmsg); R(recvmsg); R(listen); R(shutdown); R(epoll_ctl);
	R(close); R(dup); R(dup2); R(dup3); R(fcntl); R(fcntl64); R(close_range);
	R(execve); R(execvpe); R(posix_spawn); R(posix_spawnp);
	R(getaddrinfo); R(getnameinfo);
	R(gethostbyname); R(gethostbyname2); R(gethostbyname_r);
	R(gethostbyname2_r); R(gethostbyaddr); R(gethostbyaddr_r);
#undef R
	if (!vsk_real.fcntl64)
		vsk_real.fcntl64 = vsk_real.fcntl;
}

/* A setuid program ignores our settings, like any secure-execution
 * process should; secure_getenv already returns NULL there. */
static const char *config_getenv(const char *name)
{
	return secure_getenv(name);
}

/* An exec'd program (sshd -R, a CGI child) may hold our sockets; the mark
 * in the kernel socket says which.  Raw getdents64 on a stack buffer: no
 * malloc, so this is safe wherever initialisation happens to run. */
void vsk_fd_adopt_inherited(void)
{
	char buf[4096];
	long n;
	int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dir < 0) {
		for (int fd = 0; fd < 1024; fd++)
			if (vsk_fd_adopt(fd))
				vsk_log(VSK_LOG_DEBUG, "fd %d: inherited vsock socket, translating", fd);
		return;
	}
	while ((n = syscall(SYS_getdents64, dir, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			struct dirent64 *de = (struct dirent64 *)(void *)(buf + off);
			char *end;
			long fd = strtol(de->d_name, &end, 10);
			off += de->d_reclen;
			if (*end || end == de->d_name || fd == dir || fd > INT32_MAX)
				continue;
			if (vsk_fd_adopt((int)fd))
				vsk_log(VSK_LOG_DEBUG, "fd %ld: inherited vsock socket, translating", fd);
		}
	}
	syscall(SYS_close, dir);
}

static void after_fork_in_child(void)
{
	vsk_fd_table_after_fork();
}

/* ---- rules, read at first need ------------------------------------------- */

enum { RULES_UNREAD, RULES_READING };
struct vsk_rules vsk_rule_table;
atomic_int vsk_rules_state;
static const struct vsk_rules no_rules;

#define RULE_PROBLEMS_LOGGED 20

struct rule_report {
	int problems;
	bool quiet;
};

static void log_rule_problem(void *ctx, const char *msg)
{
	struct rule_report *r = ctx;

	if (++r->problems <= RULE_PROBLEMS_LOGGED && !r->quiet)
		vsk_log(VSK_LOG_ERROR, "%s", msg);
}

/* At the fd limit, TCP's connect still works and needs no fd, but reading
 * the rules does: then the soft limit is raised by one for the read, if
 * the hard limit allows, and put back. */
static void read_rules(struct rule_report *r, bool one_more_fd)
{
	struct rlimit lim, more;
	bool raised = false;

	if (one_more_fd && getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
		more = (struct rlimit){ .rlim_cur = lim.rlim_cur + 1, .rlim_max = lim.rlim_max };
		raised = setrlimit(RLIMIT_NOFILE, &more) == 0;
	}
	vsk_rules_free(&vsk_rule_table);
	r->problems = 0;
	vsk_config_read_rules(vsk_cfg, &vsk_rule_table, log_rule_problem, r);
	if (raised)
		setrlimit(RLIMIT_NOFILE, &lim);
}

static const struct vsk_rules *unreadable_rules(int err)
{
	static const struct vsk_rules no_fd = { .unreadable = EMFILE },
				      no_file = { .unreadable = ENFILE },
				      no_memory = { .unreadable = ENOMEM };

	return err == EMFILE ? &no_fd : err == ENFILE ? &no_file : &no_memory;
}

/* One thread reads; others wait the few hundred microseconds it takes.
 * Signals are blocked meanwhile, so a handler on the reading thread can
 * never wait for itself.  The first read is quiet: a problem that passes
 * (the fd limit) is not one to report, and real ones are read again to be
 * logged. */
const struct vsk_rules *vsk_rules_slow(void)
{
	struct rule_report report = { .quiet = true };
	int expected = RULES_UNREAD, err;
	bool one_more_fd = false;
	sigset_t all, old;

	if (!vsk_cfg)
		return &no_rules;
	vsk_own_fresh_copy(); /* a clone child forgets a read another thread left */
	while (atomic_load_explicit(&vsk_rules_state, memory_order_acquire) != VSK_RULES_READY) {
		if (!atomic_compare_exchange_strong(&vsk_rules_state, &expected, RULES_READING)) {
			expected = RULES_UNREAD;
			sched_yield();
			continue;
		}
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		read_rules(&report, false);
		if (vsk_rule_table.unreadable == EMFILE)
			read_rules(&report, one_more_fd = true);
		if (report.problems && !vsk_rule_table.unreadable) {
			report.quiet = false;
			read_rules(&report, one_more_fd);
		}
		if ((err = vsk_rule_table.unreadable)) {
			/* At the fd limit, or out of memory: that passes, so
			 * read again at the next lookup.  This one cannot tell
			 * whether a rule applies, and its call fails. */
			vsk_rules_free(&vsk_rule_table);
			atomic_store_explicit(&vsk_rules_state, RULES_UNREAD, memory_order_release);
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			vsk_log(VSK_LOG_ERROR, "the rules could not be read (%s); the call that "
				"needs them fails, and the next one reads them again", strerror(err));
			return unreadable_rules(err);
		}
		if (report.problems > RULE_PROBLEMS_LOGGED)
			vsk_log(VSK_LOG_ERROR, "... and %d more rule problems",
				report.problems - RULE_PROBLEMS_LOGGED);
		if (report.problems)
			vsk_log(VSK_LOG_ERROR, "ignoring every rule of a source with a problem; "
				"%u rules apply (see them with: vsockify --check)",
				vsk_rule_table.n);
		atomic_store_explicit(&vsk_rules_state, VSK_RULES_READY, memory_order_release);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	return &vsk_rule_table;
}

/* A fork or clone while another thread was reading: that thread is gone,
 * and its half-built table with it; read again when needed. */
void vsk_rules_reset_after_fork(void)
{
	if (atomic_load(&vsk_rules_state) == RULES_READING) {
		memset(&vsk_rule_table, 0, sizeof(vsk_rule_table));
		atomic_store(&vsk_rules_state, RULES_UNREAD);
	}
}

/* The supervisor answers this probe with VSK_SUPERVISED_ERRNO; the
 * kernel, without one, with EBADF (core.h). */
static bool under_supervisor(void)
{
	return syscall(SYS_getsockopt, -1, SOL_SOCKET, SO_ERROR, NULL, NULL) < 0 &&
	       errno == VSK_SUPERVISED_ERRNO;
}

static void init_once_fn(void)
{
	int saved = errno;

	resolve_all();
	vsk_fd_table_init();
	vsk_replay_init();
	vsk_log_init();
	vsk_config_load(&config, config_getenv);
	if (getauxval(AT_SECURE))
		config.log_file[0] = '\0';
	if (under_supervisor()) {
		/* Sockets are the supervisor's; names stay ours. */
		config.supervised = true;
		config.early_sockets = false;
	}
	vsk_cfg = &config;
	for (int i = 0; i < config.n_problems; i++)
		vsk_log(VSK_LOG_ERROR, "%s", config.problems[i]);
	if (!vsk_config_may_have_rules(&config))
		atomic_store_explicit(&vsk_rules_state, VSK_RULES_READY, memory_order_release);
	pthread_atfork(NULL, NULL, after_fork_in_child);
	errno = saved;
}

/* Asked once, when first needed: most processes never need it. */
uint32_t vsk_local_cid(void)
{
	static atomic_uint cached; /* 0: not asked yet; else CID + 1 */
	unsigned c = atomic_load_explicit(&cached, memory_order_relaxed);
	unsigned int cid = VSK_CID_ANY;
	int fd;

	if (c)
		return c - 1;
	fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) != 0)
			cid = VSK_CID_ANY;
		vsk_real.close(fd);
	}
	/* No guest transport (or no device): "this machine" is CID 1. */
	if (cid == VSK_CID_ANY)
		cid = VSK_CID_LOCAL;
	atomic_store_explicit(&cached, cid + 1, memory_order_relaxed);
	return cid;
}

/* The first hook call: the one-time set-up (already done by the
 * constructor, unless a hook ran even earlier), then adoption of inherited
 * sockets.  The scan waits for a hook because most programs never call
 * one (/bin/true pays nothing for it); it is safe in a signal handler
 * (raw syscalls, no malloc, no lock held across it), and a second scan
 * racing with it adopts nothing twice. */
void vsk_init_slow(void)
{
	int saved = errno;

	pthread_once(&init_once, init_once_fn);
	vsk_fd_adopt_inherited();
	atomic_store_explicit(&vsk_ready, true, memory_order_release);
	errno = saved;
}

/* Resolve symbols and read the configuration before main: a hook first
 * called from a signal handler must not be the one to run dlsym, malloc or
 * pthread_once.  Hooks called even earlier initialise on demand. */
__attribute__((constructor)) static void vsk_init_at_load(void)
{
	pthread_once(&init_once, init_once_fn);
}
