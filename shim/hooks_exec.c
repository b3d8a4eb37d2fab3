/* execve(): a static or Go program started from a shimmed process is
 * handed to the supervisor (docs/supervisor.md, "From the library"), which
 * the preload library cannot reach; a dynamic program of the other libc
 * (musl from glibc, or back) to the wrapper, which preloads its library.  Everything else is exec'd unchanged.
 *
 * This runs in vfork children too: no malloc, no lock, only the stack. */
#include <fcntl.h>
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

static void handoff(const char *path, char *const argv[], char *const envp[]);

VSK_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	handoff(path, argv, envp);
	return vsk_real.execve(path, argv, envp);
}

/* glibc's execv and execvp reach the kernel without our execve. */
VSK_EXPORT int execv(const char *path, char *const argv[])
{
	return execve(path, argv, environ);
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

VSK_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	char found[4096];
	const char *f = file;

	__asm__("" : "+r"(f));
	if (f && *f && !strchr(f, '/')) {
		search_path(f, found, sizeof(found));
		if (found[0])
			handoff(found, argv, envp);
	} else if (f) {
		handoff(f, argv, envp);
	}
	return vsk_real.execvpe(file, argv, envp);
}

VSK_EXPORT int execvp(const char *file, char *const argv[])
{
	return execvpe(file, argv, environ);
}

/* Exec the wrapper in place of path when path needs the supervisor.
 * Returns only to go on with the exec as asked (not ours, or the wrapper
 * could not be run). */
static void handoff(const char *path, char *const argv[], char *const envp[])
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
		return;
	size_t argc = count(argv), envc = count(envp);
	if (argc > MAX_HANDOFF_ARGS || envc > MAX_HANDOFF_ARGS)
		return;
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
				return;
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
	vsk_real.execve(vsk_cfg->wrapper, nargv, nenv);
	/* No wrapper to run (moved, removed): the program as asked. */
}
