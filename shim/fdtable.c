/* Which fds are ours.
 *
 * A two-level table indexed by fd number: the fast path for a socket that
 * is not ours is two loads and no lock.  Chunks are published with a
 * compare-and-swap and never freed, so a reader can never see freed
 * memory and fork() copies a consistent table without any lock to reset. */
#include <linux/vm_sockets.h>
#include <string.h>
#include <sys/mman.h>

#include "shim.h"

#define CHUNK_BITS VSK_FD_CHUNK_BITS
#define CHUNK_SIZE VSK_FD_CHUNK_SIZE
#define CHUNK_COUNT VSK_FD_CHUNK_COUNT
#define chunks vsk_fd_chunks

_Atomic(struct vsk_fd_entry *) vsk_fd_chunks[CHUNK_COUNT];

static struct vsk_fd_entry *chunk_for(int fd, bool create)
{
	unsigned idx = (unsigned)fd >> CHUNK_BITS;
	struct vsk_fd_entry *c, *fresh;

	if (fd < 0 || idx >= CHUNK_COUNT)
		return NULL;
	c = atomic_load_explicit(&chunks[idx], memory_order_acquire);
	if (c || !create)
		return c;
	fresh = mmap(NULL, CHUNK_SIZE * sizeof(*fresh), PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fresh == MAP_FAILED)
		return NULL;
	if (atomic_compare_exchange_strong_explicit(&chunks[idx], &c, fresh,
						    memory_order_acq_rel,
						    memory_order_acquire))
		return fresh;
	munmap(fresh, CHUNK_SIZE * sizeof(*fresh));
	return c;
}

void vsk_fd_touch_slow(int fd, unsigned bits)
{
	struct vsk_fd_entry *c = chunk_for(fd, true);

	if (c)
		atomic_fetch_or_explicit(&c[(unsigned)fd & (CHUNK_SIZE - 1)].touched, bits,
					 memory_order_relaxed);
}

unsigned vsk_fd_touched(int fd)
{
	struct vsk_fd_entry *c = chunk_for(fd, false);

	return c ? atomic_load_explicit(&c[(unsigned)fd & (CHUNK_SIZE - 1)].touched,
					memory_order_relaxed)
		 : 0;
}

struct vsk_fd_entry *vsk_fd_claim(int fd, enum vsk_app_family fam)
{
	struct vsk_fd_entry *c = chunk_for(fd, true);
	struct vsk_fd_entry *e;

	if (!c)
		return NULL;
	e = &c[(unsigned)fd & (CHUNK_SIZE - 1)];
	for (int i = 0; i < VSK_OPT_SLOTS; i++)
		e->opts[i].level = -1;
	atomic_store_explicit(&e->state, VSK_FD_OURS | (unsigned)fam,
			      memory_order_release);
	return e;
}

void vsk_fd_forget(int fd)
{
	struct vsk_fd_entry *c = chunk_for(fd, false);

	if (c) {
		struct vsk_fd_entry *e = &c[(unsigned)fd & (CHUNK_SIZE - 1)];
		atomic_store_explicit(&e->touched, 0, memory_order_relaxed);
		atomic_store_explicit(&e->state, 0, memory_order_release);
	}
}

void vsk_fd_forget_range(unsigned first, unsigned last)
{
	for (unsigned idx = first >> CHUNK_BITS; idx < CHUNK_COUNT && idx <= last >> CHUNK_BITS; idx++) {
		struct vsk_fd_entry *c = atomic_load_explicit(&chunks[idx], memory_order_acquire);
		if (!c)
			continue;
		for (unsigned i = 0; i < CHUNK_SIZE; i++) {
			unsigned fd = (idx << CHUNK_BITS) | i;
			if (fd >= first && fd <= last) {
				atomic_store_explicit(&c[i].touched, 0, memory_order_relaxed);
				atomic_store_explicit(&c[i].state, 0, memory_order_release);
			}
		}
	}
}

void vsk_fd_copy(int from, int to)
{
	struct vsk_fd_entry *src = vsk_fd_lookup(from), *dst;

	if (!src) {
		unsigned touched = vsk_fd_touched(from);
		vsk_fd_forget(to);
		if (touched) /* a dup shares the socket, so its options too */
			vsk_fd_touch(to, touched);
		return;
	}
	dst = vsk_fd_claim(to, vsk_fd_family(src));
	if (dst) {
		memcpy(dst->opts, src->opts, sizeof(dst->opts));
		atomic_store_explicit(&dst->state,
				      atomic_load_explicit(&src->state, memory_order_relaxed),
				      memory_order_release);
	}
}

int vsk_mark_socket(int fd, enum vsk_app_family fam)
{
	unsigned long long mark = VSK_MARK_MAGIC | (unsigned)fam;

	return vsk_real.setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE,
				   &mark, sizeof(mark));
}

enum vsk_app_family vsk_read_mark(int fd)
{
	unsigned long long mark = 0;
	socklen_t len = sizeof(int);
	int domain = 0;

	if (vsk_real.getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 ||
	    domain != AF_VSOCK)
		return 0;
	len = sizeof(mark);
	if (vsk_real.getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &mark,
				&len) != 0 ||
	    (mark & VSK_MARK_MASK) != VSK_MARK_MAGIC)
		return 0;
	switch (mark & 0xff) {
	case VSK_APP_INET4: return VSK_APP_INET4;
	case VSK_APP_INET6: return VSK_APP_INET6;
	case VSK_APP_MAPPED: return VSK_APP_MAPPED;
	default: return 0;
	}
}
