/* One-time set-up: real symbols, configuration, inherited sockets. */
#include <dirent.h>
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <pthread.h>
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
	R(sendto); R(sendmsg);
	R(close); R(dup); R(dup2); R(dup3); R(fcntl); R(fcntl64); R(close_range);
	R(getaddrinfo); R(getnameinfo);
	R(gethostbyname); R(gethostbyname2); R(gethostbyname_r);
	R(gethostbyname2_r); R(gethostbyaddr); R(gethostbyaddr_r);
#undef R
	if (!vsk_real.fcntl64)
		vsk_real.fcntl64 = vsk_real.fcntl;
}

static const char *plain_getenv(const char *name)
{
	return getenv(name);
}

static void adopt_fd(int fd)
{
	enum vsk_app_family fam = vsk_read_mark(fd);

	if (fam && vsk_fd_claim(fd, fam))
		vsk_log(VSK_LOG_DEBUG, "fd %d: inherited vsock socket, translating", fd);
}

/* An exec'd program (sshd -R, a CGI child) may hold our sockets; the mark
 * in the kernel socket says which. */
void vsk_fd_adopt_inherited(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	if (!d) {
		for (int fd = 0; fd < 1024; fd++)
			adopt_fd(fd);
		return;
	}
	int skip = dirfd(d);
	while ((de = readdir(d))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		if (*end == '\0' && end != de->d_name && fd != skip)
			adopt_fd((int)fd);
	}
	closedir(d);
}

static void init_once_fn(void)
{
	int saved = errno;

	resolve_all();
	vsk_replay_init();
	vsk_config_load(&config, plain_getenv);
	vsk_cfg = &config;
	for (int i = 0; i < config.n_problems; i++)
		vsk_log(VSK_LOG_ERROR, "%s", config.problems[i]);
	vsk_fd_adopt_inherited();
	atomic_store_explicit(&vsk_ready, true, memory_order_release);
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

void vsk_init_slow(void)
{
	pthread_once(&init_once, init_once_fn);
}
