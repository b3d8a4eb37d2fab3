/* exec and posix_spawn: a static or Go program started from a shimmed
 * process is handed to the supervisor (docs/supervisor.md, "From the
 * library"), which the preload library cannot reach; a dynamic program of
 * the other libc (musl from glibc, or back) to the wrapper, which preloads
 * its library.  Everything else is started unchanged.
 *
 * libc's execv*, execl* and posix_spawn* reach the kernel without its
 * public execve, so each is interposed here.
 *
 * This runs in vfork children too: no malloc, no lock, only the stack. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#include "hooks.h"

#define MAX_HANDOFF_ARGS 65536
#define SAVED_PRELOAD "VSOCKIFY_SAVED_PRELOAD="

static long read_at(void *ctx, uint64_t off, void *buf, size_t len)
{
	return pread(*(int *)ctx, buf, len, (off_t)off);
}

/* The libc this library is built for: a dynamic program of the other one
 * cannot load it, so the wrapper starts it with the library built for it. */
#ifdef __GLIBC__
#define SELF_LIBC VSK_LIBC_GLIBC
#else
#define SELF_LIBC VSK_LIBC_MUSL
#endif

/* Only a static program, or a dynamic Go one, needs the supervisor; a
 * dynamic program of the other libc needs the wrapper too (its library). */
static int needs_supervisor(const char *path)
{
	struct vsk_prog_info info;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int yes = 0;

	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    !(st.st_mode & (S_ISUID | S_ISGID)) &&
	    vsk_classify_elf(read_at, &fd, (uint64_t)st.st_size, &info) == 0 && !info.foreign_arch) {
		enum vsk_libc libc = vsk_interp_libc(info.interp);
		if (info.kind == VSK_PROG_STATIC || (info.kind == VSK_PROG_DYNAMIC && info.go))
			yes = 1;
		else if (info.kind == VSK_PROG_DYNAMIC && libc != VSK_LIBC_UNKNOWN &&
			 libc != SELF_LIBC)
			yes = 2;
	}
	vsk_real.close(fd);
	return yes;
}

static size_t count(char *const v[])
{
	size_t n = 0;

	while (v && v[n] && n <= MAX_HANDOFF_ARGS)
		n++;
	return n;
}

/* Starts the wrapper with argv and envp; returns 0 once it runs. */
typedef int (*launch_fn)(char *const argv[], char *const envp[], void *ctx);
static bool handoff(const char *path, char *const argv[], char *const envp[], launch_fn launch,
		    void *ctx);

static int exec_wrapper(char *const argv[], char *const envp[], void *unused)
{
	(void)unused;
	vsk_real.execve(vsk_cfg->wrapper, argv, envp);
	return -1; /* no wrapper to run (moved, removed): the program as asked */
}

static int exec_as_asked(const char *path, char *const argv[], char *const envp[])
{
	handoff(path, argv, envp, exec_wrapper, NULL);
	return vsk_real.execve(path, argv, envp);
}

VSK_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	return exec_as_asked(path, argv, envp);
}

VSK_EXPORT int execv(const char *path, char *const argv[])
{
	return exec_as_asked(path, argv, environ);
}

/* The first executable file on PATH, as execvp finds it; empty if none.
 * A hand-off needs it only when it is a static or Go program. */
static void search_path(const char *file, char *out, size_t cap)
{
	const char *path = getenv("PATH");
	size_t fl = strlen(file);

	out[0] = '\0';
	if (!path)
		path = "/bin:/usr/bin";
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		size_t dl = (size_t)(end - p);
		if (dl + fl + 2 <= cap) {
			memcpy(out, dl ? p : ".", dl ? dl : 1);
			dl = dl ? dl : 1;
			out[dl] = '/';
			memcpy(out + dl + 1, file, fl + 1);
			if (access(out, X_OK) == 0)
				return;
		}
		if (!*end)
			break;
		p = end;
	}
	out[0] = '\0';
}

/* The file execvp and posix_spawnp would run (PATH searched when it has no
 * slash), or NULL when none needs a look. */
static const char *file_to_run(const char *file, char *found, size_t cap)
{
	const char *f = file;

	__asm__("" : "+r"(f));
	if (!f || !*f || strchr(f, '/'))
		return f;
	search_path(f, found, cap);
	return found[0] ? found : NULL;
}

static int execvp_as_asked(const char *file, char *const argv[], char *const envp[])
{
	char found[4096];
	const char *path = file_to_run(file, found, sizeof(found));

	if (path)
		handoff(path, argv, envp, exec_wrapper, NULL);
	return vsk_real.execvpe(file, argv, envp);
}

VSK_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	return execvp_as_asked(file, argv, envp);
}

VSK_EXPORT int execvp(const char *file, char *const argv[])
{
	return execvp_as_asked(file, argv, environ);
}

/* execl*: the list made an argv, as libc does (on the stack). */
static size_t list_length(const char *arg0, va_list ap)
{
	const char *a0 = arg0; /* declared non-null, may be NULL */
	va_list more;
	size_t n;

	__asm__("" : "+r"(a0));
	va_copy(more, ap);
	for (n = a0 ? 1 : 0; n && n < INT_MAX && va_arg(more, char *); n++)
		;
	va_end(more);
	return n;
}

/* The list as argv[0..n], NULL last (then execle's envp), exec'd. */
static int exec_list(const char *file, const char *arg0, va_list ap, bool env, bool search)
{
	size_t n = list_length(arg0, ap);

	if (n >= INT_MAX)
		return errno = E2BIG, -1;
	char *argv[n + 1];
	argv[0] = (char *)arg0;
	for (size_t i = 1; i <= n; i++)
		argv[i] = va_arg(ap, char *);
	char *const *envp = env ? va_arg(ap, char *const *) : environ;
	return search ? execvp_as_asked(file, argv, envp) : exec_as_asked(file, argv, envp);
}

VSK_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;

	va_start(ap, arg);
	int r = exec_list(path, arg, ap, false, false);
	va_end(ap);
	return r;
}

VSK_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;

	va_start(ap, arg);
	int r = exec_list(path, arg, ap, true, false);
	va_end(ap);
	return r;
}

VSK_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;

	va_start(ap, arg);
	int r = exec_list(file, arg, ap, false, true);
	va_end(ap);
	return r;
}

/* posix_spawn*: the wrapper is spawned with the caller's file actions and
 * attributes, and its pid is the one the caller waits for (it exits with
 * the program's status).  A relative path with file actions is left
 * alone: an addchdir action (which cannot be read back) could make it
 * another file than the one looked at here. */
struct spawn_call {
	pid_t *pid;
	const posix_spawn_file_actions_t *actions;
	const posix_spawnattr_t *attr;
};

static int spawn_wrapper(char *const argv[], char *const envp[], void *ctx)
{
	struct spawn_call *s = ctx;

	return vsk_real.posix_spawn(s->pid, vsk_cfg->wrapper, s->actions, s->attr, argv, envp);
}

static bool spawn_handoff(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
			  const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	struct spawn_call s = { pid, actions, attr };
	const char *p = path;

	__asm__("" : "+r"(p));
	if (!p || (actions && p[0] != '/'))
		return false;
	return handoff(p, argv, envp, spawn_wrapper, &s);
}

VSK_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
			   const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	if (spawn_handoff(pid, path, actions, attr, argv, envp))
		return 0;
	return vsk_real.posix_spawn(pid, path, actions, attr, argv, envp);
}

VSK_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
			    const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	char found[4096];
	const char *path = file_to_run(file, found, sizeof(found));

	if (path && spawn_handoff(pid, path, actions, attr, argv, envp))
		return 0;
	return vsk_real.posix_spawnp(pid, file, actions, attr, argv, envp);
}

/* Start the wrapper in place of path when path needs the supervisor (or
 * the other libc's library).  False: go on as asked (not ours, or the
 * wrapper could not be started). */
static bool handoff(const char *path, char *const argv[], char *const envp[], launch_fn launch,
		    void *ctx)
{
	/* libc declares both non-null; Linux takes a NULL argv, and a NULL
	 * path gets EFAULT from the kernel: look without the compiler's
	 * assumptions. */
	const char *p0 = path;
	char *const *av = argv;
	__asm__("" : "+r"(p0), "+r"(av));
	int why;
	vsk_init();
	if (vsk_cfg->supervised || !vsk_cfg->wrapper[0] || !p0 || !av || !av[0] ||
	    !(why = needs_supervisor(path)))
		return false;
	size_t argc = count(argv), envc = count(envp);
	if (argc > MAX_HANDOFF_ARGS || envc > MAX_HANDOFF_ARGS)
		return false;
	/* vsockify --argv0 ARGV0 -- PATH ARGS...: the program keeps its
	 * argv[0] (busybox's applets are named by it) and its path (a
	 * relative one stays relative to the cwd, as execve means it). */
	char *nargv[argc + 6], dotpath[strchr(path, '/') ? 1 : strlen(path) + 3];
	const char *p = path;
	if (!strchr(path, '/')) {
		memcpy(dotpath, "./", 2);
		memcpy(dotpath + 2, path, strlen(path) + 1);
		p = dotpath;
	}
	nargv[0] = (char *)vsk_cfg->wrapper;
	nargv[1] = (char *)"--argv0";
	nargv[2] = argv[0];
	nargv[3] = (char *)"--";
	nargv[4] = (char *)p;
	for (size_t i = 1; i <= argc; i++)
		nargv[4 + i] = argv[i];
	/* The wrapper must not run with the library in it: LD_PRELOAD is
	 * kept aside for the program and put back by the wrapper. */
	char *nenv[envc + 2];
	size_t k = 0;
	char saved[4096];
	saved[0] = '\0';
	for (size_t i = 0; i < envc; i++) {
		if (!strncmp(envp[i], "LD_PRELOAD=", 11)) {
			size_t n = strlen(envp[i] + 11);
			if (n + sizeof(SAVED_PRELOAD) > sizeof(saved))
				return false;
			memcpy(saved, SAVED_PRELOAD, sizeof(SAVED_PRELOAD) - 1);
			memcpy(saved + sizeof(SAVED_PRELOAD) - 1, envp[i] + 11, n + 1);
			nenv[k++] = saved;
		} else if (strncmp(envp[i], SAVED_PRELOAD, sizeof(SAVED_PRELOAD) - 1)) {
			nenv[k++] = envp[i];
		}
	}
	nenv[k] = NULL;
	vsk_log(VSK_LOG_DEBUG, why == 1 ? "exec %s: a static or Go program, handed to the supervisor"
				       : "exec %s: a program of the other libc, handed to the wrapper",
		path);
	int saved_errno = errno;
	if (launch(nargv, nenv, ctx) == 0)
		return true;
	errno = saved_errno; /* the call as asked sets its own */
	return false;
}
