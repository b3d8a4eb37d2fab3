/* The seccomp supervisor (docs/supervisor.md): the second way in, for
 * programs that make their socket calls without libc (Go, static
 * binaries).  It lives in the vsockify wrapper and shares the pure core
 * with the library. */
#ifndef VSOCKIFY_SUPERVISOR_H
#define VSOCKIFY_SUPERVISOR_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/core.h"

struct vsk_super_opts {
	const struct vsk_config *cfg;
	const char *preload; /* the library to preload as well, or NULL */
	const char *path;    /* the program, found on PATH */
	char **argv;
};

/* Can this kernel and this process supervise?  NULL, or why not (a
 * sentence naming the missing feature or permission). */
const char *vsk_super_unavailable(void);

/* Run o->argv under the supervisor; returns the exit status vsockify
 * gives (the program's, 128+N after signal N, or 2/125/126/127 for our
 * own failures).  Never returns in the program. */
int vsk_supervise(const struct vsk_super_opts *o);

/* The supervisor's loop over one listener: serves every process under it
 * until the last has gone, reaping its children; when child (the program)
 * exits, its wait status goes to status_fd.  Runs in the supervisor. */
void vsk_super_serve_tree(int listener, const struct vsk_config *cfg,
			  const struct vsk_rules *rs, pid_t child, int status_fd);

/* Logging for the supervisor's side (VSOCKIFY_LOG, VSOCKIFY_LOG_FILE). */
void vsk_super_log_init(const struct vsk_config *cfg);
void vsk_super_log(enum vsk_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
