/* Which fds are ours.
 *
 * A two-level table indexed by fd number: the fast path for a socket that
 * is not ours is two loads and no lock.  Chunks are published with a
 * compare-and-swap and never freed, so a reader can never see freed
 * memory and fork() copies a consistent table.
 *
 * Changes to an entry happen under a per-number lock (striped), together
 * with the one syscall that must be atomic with them: the swap's dup3.
 * close/dup2/close_range bump the number's generation under the same lock
 * before the kernel frees the number, which is how a swap knows the socket
 * it checked is still there (docs/design.md, "The swap and other threads"). */
#include <linux/futex.h>
#include <linux/kcmp.h>
#include <sys/socket.h> /* before linux/vm_sockets.h: older kernel headers need it */
#include <linux/vm_sockets.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/un.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

#define CHUNK_BITS VSK_FD_CHUNK_BITS
#define CHUNK_SIZE VSK_FD_CHUNK_SIZE
#define CHUNK_COUNT VSK_FD_CHUNK_COUNT
#define LOW_CHUNKS VSK_FD_LOW_CHUNKS

_Atomic(struct vsk_fd_entry *) vsk_fd_chunks[LOW_CHUNKS];
typedef _Atomic(struct vsk_fd_entry *) chunk_slot;
/* Slots for chunks LOW_CHUNKS..CHUNK_COUNT-1: 16 MiB of address space,
 * mapped only by a process that uses an fd above 2^20. */
static _Atomic(chunk_slot *) high_slots;
/* One past the highest chunk index ever made: bounds the scans. */
static atomic_uint chunks_end;

static void *map_zeroed(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static chunk_slot *slot_at(unsigned idx, bool create)
{
	const size_t high_size = (CHUNK_COUNT - LOW_CHUNKS) * sizeof(chunk_slot);
	chunk_slot *high, *fresh;

	if (idx < LOW_CHUNKS)
		return &vsk_fd_chunks[idx];
	if (idx >= CHUNK_COUNT)
		return NULL;
	high = atomic_load_explicit(&high_slots, memory_order_acquire);
	if (!high && create && (fresh = map_zeroed(high_size))) {
		if (atomic_compare_exchange_strong(&high_slots, &high, fresh))
			high = fresh;
		else
			munmap(fresh, high_size);
	}
	return high ? &high[idx - LOW_CHUNKS] : NULL;
}

static struct vsk_fd_entry *chunk_at(unsigned idx)
{
	chunk_slot *slot = slot_at(idx, false);

	return slot ? atomic_load_explicit(slot, memory_order_acquire) : NULL;
}

static struct vsk_fd_entry *chunk_for(int fd, bool create)
{
	unsigned idx = (unsigned)fd >> CHUNK_BITS, end;
	struct vsk_fd_entry *c, *fresh;
	chunk_slot *slot;

	if (fd < 0 || !(slot = slot_at(idx, create)))
		return NULL;
	c = atomic_load_explicit(slot, memory_order_acquire);
	if (c || !create)
		return c;
	if (!(fresh = map_zeroed(CHUNK_SIZE * sizeof(*fresh))))
		return NULL;
	if (atomic_compare_exchange_strong_explicit(slot, &c, fresh, memory_order_acq_rel,
						    memory_order_acquire))
		c = fresh;
	else
		munmap(fresh, CHUNK_SIZE * sizeof(*fresh));
	end = atomic_load(&chunks_end);
	while (end <= idx && !atomic_compare_exchange_weak(&chunks_end, &end, idx + 1))
		;
	return c;
}

struct vsk_fd_entry *vsk_fd_lookup_high(int fd)
{
	struct vsk_fd_entry *c = chunk_for(fd, false), *e;

	if (!c)
		return NULL;
	e = &c[(unsigned)fd & (CHUNK_SIZE - 1)];
	return atomic_load_explicit(&e->state, memory_order_acquire) ? e : NULL;
}

static struct vsk_fd_entry *entry_for(int fd, bool create)
{
	struct vsk_fd_entry *c = chunk_for(fd, create);

	return c ? &c[(unsigned)fd & (CHUNK_SIZE - 1)] : NULL;
}

/* ---- whose table this is ------------------------------------------------
 * The table lives in our memory.  A child with its own copy of that memory
 * (fork, _Fork, clone or clone3 without CLONE_VM, in a new PID namespace or
 * not) owns its copy and keeps it in step; a child that shares it (vfork,
 * posix_spawn, clone(CLONE_VM)) runs our hooks in its parent's memory until
 * it execs and must never change it.  Only fork() runs our atfork handler,
 * so the kernel tells the others apart: a page marked MADV_WIPEONFORK reads
 * as zeroes (COPY_NEW) in every child with its own copy of memory, however
 * it was made, and as COPY_OWNED in one that shares ours. */
enum { COPY_NEW, COPY_TAKING, COPY_OWNED };

static pid_t table_owner;
static atomic_int *copy_state; /* NULL without MADV_WIPEONFORK: pids alone decide */

#define STRIPES 1024u
#define WAITERS 0x80000000u

static atomic_uint lock_words[STRIPES];

void vsk_fd_table_init(void)
{
	size_t page_size = (size_t)sysconf(_SC_PAGESIZE);
	void *page = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	table_owner = (pid_t)syscall(SYS_getpid);
	if (page == MAP_FAILED)
		return;
	if (madvise(page, page_size, MADV_WIPEONFORK) != 0) { /* Linux < 4.14 */
		munmap(page, page_size);
		return;
	}
	atomic_store((atomic_int *)page, COPY_OWNED);
	copy_state = page;
}

/* Only the thread that made the copy exists in it (threads it started
 * since take the copy over before they lock or read rules): locks held and
 * rules being read by any other thread are void. */
static void forget_other_threads(void)
{
	for (unsigned s = 0; s < STRIPES; s++)
		atomic_store(&lock_words[s], 0);
	vsk_rules_reset_after_fork();
}

void vsk_fd_table_after_fork(void)
{
	forget_other_threads();
	table_owner = (pid_t)syscall(SYS_getpid);
	if (copy_state)
		atomic_store_explicit(copy_state, COPY_OWNED, memory_order_release);
}

/* The page is zeroed too for a CLONE_VM child of a copy that has not been
 * taken over yet (a raw clone child that spawns before any hook ran): the
 * kernel says whether our memory is our parent's. */
static bool shares_parent_memory(pid_t me)
{
	pid_t parent = (pid_t)syscall(SYS_getppid);

	return parent > 0 && syscall(SYS_kcmp, me, parent, KCMP_VM, 0, 0) == 0;
}

/* A fresh copy is taken over once, by whichever of its threads comes
 * first, with signals blocked so no handler on that thread waits for it.
 * True when this process owns the table (now). */
static bool take_over_fresh_copy(pid_t me)
{
	int saved = errno, st, expected;
	sigset_t all, old;
	bool mine;

	while ((st = atomic_load_explicit(copy_state, memory_order_acquire)) != COPY_OWNED) {
		if (st == COPY_TAKING) {
			sched_yield();
			continue;
		}
		if (shares_parent_memory(me))
			break;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		expected = COPY_NEW;
		if (atomic_compare_exchange_strong(copy_state, &expected, COPY_TAKING)) {
			forget_other_threads();
			table_owner = me;
			atomic_store_explicit(copy_state, COPY_OWNED, memory_order_release);
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	mine = table_owner == me;
	errno = saved;
	return mine;
}

/* Before anything takes a lock or reads rules: so no thread of a fresh
 * copy is inside a lock when the copy forgets the other threads'. */
void vsk_own_fresh_copy(void)
{
	if (copy_state &&
	    __builtin_expect(atomic_load_explicit(copy_state, memory_order_acquire) != COPY_OWNED, 0))
		take_over_fresh_copy((pid_t)syscall(SYS_getpid));
}

/* One getpid (and one load) when the table is ours. */
static bool table_is_mine(void)
{
	pid_t me = (pid_t)syscall(SYS_getpid);

	if (__builtin_expect(me == table_owner, 1) &&
	    (!copy_state || atomic_load_explicit(copy_state, memory_order_acquire) == COPY_OWNED))
		return true;
	return copy_state && take_over_fresh_copy(me);
}

bool vsk_fd_table_is_mine(void)
{
	return table_is_mine();
}

/* ---- per-number locks ----------------------------------------------------
 * A lock word holds its owner's id (so a signal handler on the owning
 * thread is let through instead of deadlocking) and a "waiters" bit for the
 * futex.  Stripes: fds 1024 apart share a lock, which costs only a rare
 * wait, never correctness. */
static atomic_uint next_thread_id;
static __thread unsigned thread_id;

static unsigned my_id(void)
{
	if (!thread_id)
		thread_id = (atomic_fetch_add(&next_thread_id, 1) % (WAITERS - 1)) + 1;
	return thread_id;
}

static void futex_wait(atomic_uint *w, unsigned val)
{
	syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(atomic_uint *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static bool lock_stripe(unsigned s, bool wait)
{
	atomic_uint *w = &lock_words[s];
	unsigned me = my_id(), cur = 0;

	vsk_own_fresh_copy();
	if (atomic_compare_exchange_strong(w, &cur, me))
		return true;
	if ((cur & ~WAITERS) == me || !wait)
		return false;
	for (;;) {
		cur = atomic_load(w);
		if (cur == 0) {
			/* Take it with the waiters bit: others may still sleep. */
			if (atomic_compare_exchange_weak(w, &cur, me | WAITERS))
				return true;
			continue;
		}
		if (!(cur & WAITERS) && !atomic_compare_exchange_weak(w, &cur, cur | WAITERS))
			continue;
		futex_wait(w, cur | WAITERS);
	}
}

static void unlock_stripe(unsigned s)
{
	if (atomic_exchange(&lock_words[s], 0) & WAITERS)
		futex_wake(&lock_words[s]);
}

bool vsk_fd_lock(int fd)
{
	return lock_stripe((unsigned)fd % STRIPES, true);
}

void vsk_fd_unlock(int fd, bool locked)
{
	if (locked)
		unlock_stripe((unsigned)fd % STRIPES);
}

/* ---- entries ------------------------------------------------------------- */

void vsk_fd_touch_slow(int fd, unsigned bits)
{
	struct vsk_fd_entry *e = entry_for(fd, true);

	if (e)
		atomic_fetch_or_explicit(&e->touched, bits, memory_order_relaxed);
}

unsigned vsk_fd_touched(int fd)
{
	struct vsk_fd_entry *e = entry_for(fd, false);

	return e ? atomic_load_explicit(&e->touched, memory_order_relaxed) : 0;
}

long long vsk_fd_gen(int fd)
{
	bool locked = vsk_fd_lock(fd);
	struct vsk_fd_entry *e = entry_for(fd, true);
	long long gen = e ? (long long)atomic_load(&e->gen) : -1;

	vsk_fd_unlock(fd, locked);
	return gen;
}

static void clear_locked(struct vsk_fd_entry *e)
{
	atomic_fetch_add(&e->gen, 1);
	e->early_site = 0;
	e->nregs = 0;
	atomic_store_explicit(&e->touched, 0, memory_order_relaxed);
	atomic_store_explicit(&e->state, 0, memory_order_release);
}

void vsk_fd_release(int fd)
{
	struct vsk_fd_entry *e = entry_for(fd, false);
	bool locked;

	if (!e)
		return; /* no swap can be running on it: a swap creates the entry first */
	if ((atomic_load(&e->state) || atomic_load(&e->touched)) && !table_is_mine())
		return;
	locked = vsk_fd_lock(fd);
	clear_locked(e);
	vsk_fd_unlock(fd, locked);
}

/* Every stripe the range touches, all at once.  Waiting while holding some
 * could deadlock with a signal handler on another thread, so back off and
 * retry instead. */
void vsk_fd_release_range(unsigned first, unsigned last)
{
	unsigned n = last - first >= STRIPES ? STRIPES : last - first + 1;
	bool held[STRIPES];
	unsigned got;

	if (!table_is_mine())
		return;
	for (;;) {
		for (got = 0; got < n; got++) {
			unsigned s = (first + got) % STRIPES;
			held[got] = lock_stripe(s, false);
			if (!held[got] && (atomic_load(&lock_words[s]) & ~WAITERS) != my_id())
				break;
		}
		if (got == n)
			break;
		while (got--)
			if (held[got])
				unlock_stripe((first + got) % STRIPES);
		sched_yield();
	}
	for (unsigned idx = first >> CHUNK_BITS, end = atomic_load(&chunks_end);
	     idx < end && idx <= last >> CHUNK_BITS; idx++) {
		struct vsk_fd_entry *c = chunk_at(idx);
		if (!c)
			continue;
		for (unsigned i = 0; i < CHUNK_SIZE; i++) {
			unsigned fd = (idx << CHUNK_BITS) | i;
			if (fd >= first && fd <= last)
				clear_locked(&c[i]);
		}
	}
	for (got = 0; got < n; got++)
		if (held[got])
			unlock_stripe((first + got) % STRIPES);
}

static void claim_locked(struct vsk_fd_entry *e, unsigned state)
{
	for (int i = 0; i < VSK_OPT_SLOTS; i++)
		e->opts[i].level = -1;
	e->shown.local_len = e->shown.peer_len = 0;
	e->shown.rule_plus1 = 0;
	atomic_store_explicit(&e->state, state, memory_order_release);
}

static unsigned gen_of(int fd)
{
	struct vsk_fd_entry *e = entry_for(fd, false);

	return e ? atomic_load(&e->gen) : 0;
}

/* The swap replaced the open file: register the new one wherever the app
 * had registered the old, with the same events and data (EPOLLET and
 * EPOLLONESHOT included), in epoll fds that are still the same. */
static void rearm_epoll_locked(int fd, struct vsk_fd_entry *e)
{
	for (int i = 0; i < e->nregs; i++) {
		struct epoll_event ev = { .events = e->regs[i].events,
					  .data.u64 = e->regs[i].data };
		if (gen_of(e->regs[i].epfd) == e->regs[i].epfd_gen &&
		    vsk_real.epoll_ctl(e->regs[i].epfd, EPOLL_CTL_ADD, fd, &ev) != 0 &&
		    errno != EEXIST)
			vsk_log(VSK_LOG_WARN, "fd %d: could not carry its epoll registration "
				"(epoll fd %d) over to the vsock socket: %s", fd,
				e->regs[i].epfd, strerror(errno));
	}
}

void vsk_fd_note_epoll(int epfd, int op, int fd, const struct epoll_event *ev)
{
	struct vsk_fd_entry *e, *ep;
	bool locked;
	int i;

	if (!(e = entry_for(fd, op == EPOLL_CTL_ADD)) || !(ep = entry_for(epfd, true)) ||
	    !table_is_mine())
		return;
	locked = vsk_fd_lock(fd);
	for (i = 0; i < e->nregs && e->regs[i].epfd != epfd; i++)
		;
	if (op == EPOLL_CTL_DEL) {
		if (i < e->nregs)
			e->regs[i] = e->regs[--e->nregs];
	} else if (ev && (i < e->nregs || (op == EPOLL_CTL_ADD && i < VSK_EPOLL_REGS))) {
		if (i == e->nregs)
			e->nregs++;
		e->regs[i] = (struct vsk_epoll_reg){ .epfd = epfd,
						     .epfd_gen = atomic_load(&ep->gen),
						     .events = ev->events,
						     .data = ev->data.u64 };
	}
	vsk_fd_unlock(fd, locked);
}

int vsk_fd_install(int vfd, int fd, long long gen, unsigned state, int dup_flags,
		   const struct vsk_opt_slot *opts, int nopts, const struct vsk_shown *shown)
{
	struct vsk_fd_entry *e = entry_for(fd, true);
	sigset_t all, old;
	bool locked;
	int err = 0;

	if (!e)
		return EMFILE;
	if (!table_is_mine()) {
		/* A vfork child connecting before exec: do the swap, record
		 * nothing in the parent's table. */
		return vsk_real.dup3(vfd, fd, dup_flags) < 0 ? errno : 0;
	}
	/* A signal handler on this thread that closed or dup2'd over fd
	 * between the compare and the dup3 would pass our own lock; so no
	 * handler runs in between. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	locked = vsk_fd_lock(fd);
	if ((long long)atomic_load(&e->gen) != gen) {
		/* Closed or replaced since the check: whatever holds the number
		 * now is not the socket we checked, and must not be touched. */
		err = EBADF;
	} else {
		/* Claimed before the dup3: a lock-free reader that sees "ours"
		 * but a TCP socket waits for this lock before it concludes the
		 * entry is stale, and by then the number holds our socket. */
		if (shown && (shown->local_len || shown->peer_len))
			state |= VSK_FD_SHOWN;
		claim_locked(e, state);
		memcpy(e->opts, opts, (size_t)nopts * sizeof(*opts));
		if (shown)
			e->shown = *shown;
		if (vsk_real.dup3(vfd, fd, dup_flags) < 0) {
			err = errno;
			atomic_store_explicit(&e->state, 0, memory_order_release);
		} else {
			rearm_epoll_locked(fd, e);
		}
	}
	vsk_fd_unlock(fd, locked);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

struct vsk_fd_entry *vsk_fd_claim_shown(int fd, unsigned state, const struct vsk_shown *shown)
{
	struct vsk_fd_entry *e = entry_for(fd, true);
	bool locked;

	if (!e || !table_is_mine())
		return NULL;
	locked = vsk_fd_lock(fd);
	claim_locked(e, state | VSK_FD_SHOWN);
	e->shown = *shown;
	vsk_fd_unlock(fd, locked);
	return e;
}

bool vsk_fd_get_shown(int fd, struct vsk_shown *out)
{
	struct vsk_fd_entry *e = entry_for(fd, false);
	bool locked, got = false;

	if (!e)
		return false;
	locked = vsk_fd_lock(fd);
	if (atomic_load(&e->state) & VSK_FD_SHOWN) {
		*out = e->shown;
		got = true;
	}
	vsk_fd_unlock(fd, locked);
	return got;
}

struct vsk_fd_entry *vsk_fd_claim(int fd, enum vsk_app_family fam)
{
	struct vsk_fd_entry *e = entry_for(fd, true);
	bool locked;

	if (!e || !table_is_mine())
		return NULL;
	locked = vsk_fd_lock(fd);
	claim_locked(e, VSK_FD_OURS | (unsigned)fam);
	vsk_fd_unlock(fd, locked);
	return e;
}

bool vsk_fd_update_if(int fd, long long gen, unsigned set, unsigned clear)
{
	struct vsk_fd_entry *e = entry_for(fd, false);
	bool locked, done = false;
	unsigned st;

	if (!e)
		return false;
	locked = vsk_fd_lock(fd);
	st = atomic_load(&e->state);
	if ((long long)atomic_load(&e->gen) == gen && st) {
		atomic_store_explicit(&e->state, (st & ~clear) | set, memory_order_release);
		done = true;
	}
	vsk_fd_unlock(fd, locked);
	return done;
}

struct vsk_fd_entry *vsk_fd_claim_early(int fd, enum vsk_app_family fam, unsigned site)
{
	struct vsk_fd_entry *e = entry_for(fd, true);
	bool locked;

	if (!e || !table_is_mine())
		return NULL; /* a vfork child: the parent's table is not ours to change */
	locked = vsk_fd_lock(fd);
	clear_locked(e); /* whatever a close we could not see left behind */
	e->early_site = site;
	claim_locked(e, VSK_FD_OURS | VSK_FD_EARLY | (unsigned)fam);
	vsk_fd_unlock(fd, locked);
	return e;
}

void vsk_fd_copy(int from, int to)
{
	struct vsk_fd_entry *src = entry_for(from, false), *dst;
	struct vsk_opt_slot opts[VSK_OPT_SLOTS];
	struct vsk_shown shown = { 0 };
	unsigned state = 0, touched = 0, site = 0;
	bool locked;

	if (src) {
		locked = vsk_fd_lock(from);
		state = atomic_load(&src->state);
		site = src->early_site;
		touched = atomic_load(&src->touched);
		memcpy(opts, src->opts, sizeof(opts));
		shown = src->shown;
		vsk_fd_unlock(from, locked);
	}
	dst = entry_for(to, state || touched);
	if (!dst || ((state || touched || atomic_load(&dst->state)) && !table_is_mine()))
		return;
	locked = vsk_fd_lock(to);
	if (state) {
		memcpy(dst->opts, opts, sizeof(opts));
		dst->shown = shown;
		dst->early_site = site;
	}
	dst->nregs = 0; /* epoll registers (file, number): the new number has none */
	/* A dup shares the socket, so its options too. */
	atomic_store_explicit(&dst->touched, touched, memory_order_relaxed);
	atomic_store_explicit(&dst->state, state, memory_order_release);
	vsk_fd_unlock(to, locked);
}

bool vsk_fd_drop_if_stale(int fd, bool (*is_vsock)(int fd))
{
	struct vsk_fd_entry *e = entry_for(fd, false);
	bool locked, mine, dropped = false;

	if (!e)
		return false;
	mine = table_is_mine();
	locked = vsk_fd_lock(fd);
	if (atomic_load(&e->state) && !is_vsock(fd)) {
		/* A child sharing its parent's memory may have replaced the
		 * number in its own fd table: stale here, not in the parent's. */
		if (mine) {
			atomic_store_explicit(&e->touched, 0, memory_order_relaxed);
			atomic_store_explicit(&e->state, 0, memory_order_release);
		}
		dropped = true;
	}
	vsk_fd_unlock(fd, locked);
	return dropped;
}

/* After an exec: the shown address comes from the rule the mark names (the
 * exec'd program reads the same configuration), and the port from the
 * vsock socket when the rule kept the app's.  Length; 0 if that rule
 * shows nothing. */
socklen_t vsk_shown_by_mark(int fd, int rule, enum vsk_app_family fam, bool *peer,
			    struct sockaddr_storage *out)
{
	const struct vsk_rules *rs = vsk_rules();
	struct sockaddr_vm vm;
	socklen_t vlen = sizeof(vm);
	bool side_is_peer;

	if (rule < 0 || (uint32_t)rule >= rs->n)
		return 0;
	side_is_peer = rs->rule[rule].kind == VSK_RULE_CONNECT;
	if ((side_is_peer ? vsk_real.getpeername : vsk_real.getsockname)(
		    fd, (struct sockaddr *)&vm, &vlen) != 0)
		vm.svm_family = AF_UNSPEC;
	return vsk_rule_shown_side(rs, rule, fam, &vm, peer, out);
}

/* Done when first asked, as adoption may run in a signal handler and
 * reading rules allocates. */
static void shown_from_rule_locked(int fd, struct vsk_fd_entry *e)
{
	struct sockaddr_storage shown;
	bool peer = false;
	socklen_t n = vsk_shown_by_mark(fd, (int)e->shown.rule_plus1 - 1, vsk_fd_family(e),
					&peer, &shown);

	e->shown.rule_plus1 = 0;
	if (!n)
		return;
	if (peer) {
		memcpy(e->shown.peer, &shown, n);
		e->shown.peer_len = (uint8_t)n;
	} else {
		memcpy(e->shown.local, &shown, n);
		e->shown.local_len = (uint8_t)n;
	}
}

/* An early socket that has not connected yet (its mark says early, and it
 * has no local port, which any connect would have given it) is still one
 * after an exec: the new program may connect it anywhere. */
static bool never_connected_early(int fd)
{
	unsigned long long mark = 0;
	socklen_t len = sizeof(mark);
	struct sockaddr_vm vm;
	socklen_t vlen = sizeof(vm);

	return vsk_real.getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &mark, &len) == 0 &&
	       (mark & VSK_MARK_EARLY) &&
	       vsk_real.getsockname(fd, (struct sockaddr *)&vm, &vlen) == 0 &&
	       vm.svm_family == AF_VSOCK && vm.svm_port == VMADDR_PORT_ANY;
}

struct vsk_fd_entry *vsk_fd_adopt(int fd)
{
	struct vsk_fd_entry *e;
	int rule;
	enum vsk_app_family fam = vsk_read_mark(fd, &rule);
	bool locked;

	if (!fam || vsk_cfg->supervised || !(e = entry_for(fd, true)) || !table_is_mine())
		return NULL;
	locked = vsk_fd_lock(fd);
	if (!atomic_load(&e->state) && vsk_read_mark(fd, &rule) == fam) {
		claim_locked(e, VSK_FD_OURS | (unsigned)fam | (rule >= 0 ? VSK_FD_SHOWN : 0) |
					(never_connected_early(fd) ? VSK_FD_EARLY : 0));
		e->shown.rule_plus1 = (uint32_t)(rule + 1);
	}
	vsk_fd_unlock(fd, locked);
	return atomic_load(&e->state) ? e : NULL;
}

void vsk_fd_set_shown(int fd, bool peer, const struct sockaddr *sa, socklen_t len)
{
	struct vsk_fd_entry *e = entry_for(fd, false);
	bool locked;

	if (!e || !table_is_mine() || len > VSK_SHOWN_MAX)
		return;
	locked = vsk_fd_lock(fd);
	if (atomic_load(&e->state)) {
		memcpy(peer ? e->shown.peer : e->shown.local, sa, len);
		*(peer ? &e->shown.peer_len : &e->shown.local_len) = (uint8_t)len;
		atomic_fetch_or(&e->state, VSK_FD_SHOWN);
	}
	vsk_fd_unlock(fd, locked);
}

socklen_t vsk_fd_shown(int fd, bool peer, struct sockaddr_storage *out)
{
	struct vsk_fd_entry *e = entry_for(fd, false);
	socklen_t n = 0;
	bool locked;

	if (!e)
		return 0;
	locked = vsk_fd_lock(fd);
	if (atomic_load(&e->state) & VSK_FD_SHOWN) {
		if (e->shown.rule_plus1)
			shown_from_rule_locked(fd, e);
		n = peer ? e->shown.peer_len : e->shown.local_len;
		memcpy(out, peer ? e->shown.peer : e->shown.local, n);
	}
	vsk_fd_unlock(fd, locked);
	return n;
}

static bool is_v4_address(enum vsk_app_family f)
{
	return f == VSK_APP_INET4 || f == VSK_APP_MAPPED;
}

/* Is fd's bound address cid:port (vsock), or unix_path (a hybrid one)? */
static bool bound_to(int fd, uint32_t cid, uint32_t port, const char *unix_path)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (vsk_real.getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return false;
	if (unix_path)
		return ss.ss_family == AF_UNIX &&
		       strncmp(((struct sockaddr_un *)(void *)&ss)->sun_path, unix_path,
			       sizeof(((struct sockaddr_un *)0)->sun_path)) == 0;
	struct sockaddr_vm *vm = (struct sockaddr_vm *)(void *)&ss;
	return ss.ss_family == AF_VSOCK && vm->svm_cid == cid && vm->svm_port == port;
}

/* The next fd above after that is ours and made by bind(), with its state
 * in *st; -1 when there is none.  Lock-free, like the hot path: a listener
 * added meanwhile is the caller's race to lose, as with the kernel. */
static int next_bound_listener(int after, unsigned *st)
{
	unsigned fd = (unsigned)(after + 1);

	while ((fd >> CHUNK_BITS) < atomic_load_explicit(&chunks_end, memory_order_acquire)) {
		struct vsk_fd_entry *c = chunk_at(fd >> CHUNK_BITS);
		if (!c) {
			fd = ((fd >> CHUNK_BITS) + 1) << CHUNK_BITS;
			continue;
		}
		*st = atomic_load_explicit(&c[fd & (CHUNK_SIZE - 1)].state, memory_order_acquire);
		if (*st & VSK_FD_BOUND)
			return (int)fd;
		fd++;
	}
	return -1;
}

bool vsk_fd_other_hybrid_listener(int fd, const char *unix_path)
{
	unsigned st;

	for (int other = next_bound_listener(-1, &st); other >= 0;
	     other = next_bound_listener(other, &st))
		if (other != fd && (st & VSK_FD_HYBRID) && bound_to(other, 0, 0, unix_path))
			return true;
	return false;
}

int vsk_fd_find_sibling_listener(uint32_t cid, uint32_t port, enum vsk_app_family fam,
				 const char *unix_path)
{
	int sibling = -1;
	unsigned st;

	if (fam == VSK_APP_MAPPED)
		return -1; /* TCP itself refuses ::ffff:a.b.c.d beside a.b.c.d */
	for (int fd = next_bound_listener(-1, &st); fd >= 0; fd = next_bound_listener(fd, &st)) {
		enum vsk_app_family f = (enum vsk_app_family)(st & VSK_FD_FAMILY_MASK);

		if (!(st & VSK_FD_HYBRID) != !unix_path || !bound_to(fd, cid, port, unix_path))
			continue;
		/* The same address bound twice is EADDRINUSE, as on TCP: let
		 * the kernel's bind say so. */
		if (is_v4_address(f) == is_v4_address(fam) || f == VSK_APP_MAPPED)
			return -1;
		sibling = fd;
	}
	return sibling;
}

static struct vsk_opt_slot *find_slot(struct vsk_fd_entry *e, int level,
				      int optname, bool create)
{
	struct vsk_opt_slot *free_slot = NULL;

	for (int i = 0; i < VSK_OPT_SLOTS; i++) {
		if (e->opts[i].level == level && e->opts[i].optname == optname)
			return &e->opts[i];
		if (e->opts[i].level == -1 && !free_slot)
			free_slot = &e->opts[i];
	}
	return create ? free_slot : NULL;
}

int vsk_fd_opt_get(int fd, int level, int optname, void *val, uint32_t *len)
{
	struct vsk_fd_entry *e = entry_for(fd, false);
	struct vsk_opt_slot *slot;
	bool locked;
	int rc = -1;

	if (!e)
		return -1;
	locked = vsk_fd_lock(fd);
	if ((slot = find_slot(e, level, optname, false))) {
		*len = slot->len;
		memcpy(val, slot->value, slot->len);
		rc = 0;
	}
	vsk_fd_unlock(fd, locked);
	return rc;
}

int vsk_fd_opts_copy(int fd, struct vsk_opt_slot *out)
{
	struct vsk_fd_entry *e = entry_for(fd, false);
	bool locked;
	int n = 0;

	if (!e)
		return 0;
	locked = vsk_fd_lock(fd);
	for (int i = 0; i < VSK_OPT_SLOTS; i++)
		if (e->opts[i].level != -1)
			out[n++] = e->opts[i];
	vsk_fd_unlock(fd, locked);
	return n;
}

int vsk_fd_opt_put(int fd, int level, int optname, const void *val, uint32_t len)
{
	struct vsk_fd_entry *e = entry_for(fd, false);
	struct vsk_opt_slot *slot;
	bool locked;
	int rc = -1;

	if (!e || len > VSK_OPT_VALUE_MAX)
		return -1;
	locked = vsk_fd_lock(fd);
	if ((slot = find_slot(e, level, optname, true))) {
		slot->level = level;
		slot->optname = optname;
		slot->len = len;
		memcpy(slot->value, val, len);
		rc = 0;
	}
	vsk_fd_unlock(fd, locked);
	return rc;
}

int vsk_mark_socket(int fd, enum vsk_app_family fam, int rule)
{
	unsigned long long mark = vsk_mark_encode((unsigned)fam, rule);

	return vsk_real.setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE,
				   &mark, sizeof(mark));
}

/* The mark alone: only a vsock socket answers this option. */
enum vsk_app_family vsk_read_mark(int fd, int *rule)
{
	unsigned long long mark = 0;
	socklen_t len = sizeof(mark);

	*rule = -1;
	if (vsk_real.getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &mark,
				&len) != 0 ||
	    len != sizeof(mark))
		return 0;
	return vsk_mark_decode(mark, rule, NULL);
}

/* The mark is a property of the kernel socket, so every fd and every
 * process sharing a listener sees its shutdown, as over TCP. */
int vsk_mark_listener_shut(int fd, bool set)
{
	unsigned long long mark = 0;
	socklen_t len = sizeof(mark);

	if (vsk_real.getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &mark,
				&len) != 0 ||
	    len != sizeof(mark) || (mark & VSK_MARK_MASK) != VSK_MARK_MAGIC)
		return -1;
	if (mark & VSK_MARK_SHUT)
		return 1;
	if (set) {
		mark |= VSK_MARK_SHUT;
		vsk_real.setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &mark,
				    sizeof(mark));
	}
	return 0;
}
